//! Batch ingest over the API: visits and lab tests as JSON, all-or-nothing per request.
//! Errors carry the JSON path of the offending record (`$.visits[3].person_id`).
//!
//! A user writes only inside their jurisdiction: a visit lies in it by its place or by its
//! person, a lab test by its person subject or by its lab (see [`Scope`]); a record outside is
//! refused (`forbidden`, at its JSON path) and nothing of the batch is written. Every batch
//! leaves one `ingest` audit record naming how many records it wrote and the change sequence
//! it follows (the change feed lists the rows themselves).

use chainbreak_core::model::{Identifier, LabTest, SentinelRecord, SubjectKind, Visit};
use chainbreak_core::{ErrorCode, Location};
use chainbreak_formats::FormatError;
use chainbreak_store::{Entity, KeyedVisit, Scope, Store, StoreError};
use jiff::Timestamp;

use crate::AppError;
use crate::accounts::Actor;
use crate::import::record_identifiers;
use crate::pseudonym::{PersonRefs, PseudonymError, Pseudonymise, Pseudonymizer};
use crate::triggers::{TriggerReport, Triggers};

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IngestReport {
    pub accepted: u64,
    pub registered_persons: u64,
    pub registered_places: u64,
    /// The store's change sequence after the ingest.
    pub last_seq: u64,
}

fn at_path(array: &str, index: usize, field: &str) -> Location {
    Location::default().with_json_path(format!("$.{array}[{index}].{field}"))
}

/// Fails at the first record for which neither of its two ways of lying in `scope` holds.
fn check_scope(
    store: &dyn Store,
    scope: &Scope,
    array: &str,
    first: (Entity, &[Option<&str>]),
    second: (Entity, &[Option<&str>]),
) -> Result<(), AppError> {
    if *scope == Scope::All {
        return Ok(());
    }
    let inside = |(entity, ids): (Entity, &[Option<&str>])| -> Result<Vec<bool>, AppError> {
        let given: Vec<&str> = ids.iter().map(|id| id.unwrap_or("")).collect();
        let found = store.in_scope(scope, entity, &given)?;
        Ok(found.into_iter().zip(ids).map(|(inside, id)| inside && id.is_some()).collect())
    };
    let (a, b) = (inside(first)?, inside(second)?);
    if let Some(i) = a.iter().zip(&b).position(|(a, b)| !a && !b) {
        let Scope::Within(area) = scope else { unreachable!("Scope::All returned above") };
        return Err(FormatError::new(
            ErrorCode::Forbidden,
            Location::default().with_json_path(format!("$.{array}[{i}]")),
            format!("the record lies outside your jurisdiction (area `{area}`); it was not written, nor was the rest of the batch"),
        )
        .into());
    }
    Ok(())
}

/// The audit record of a batch written by `actor`.
fn audit_batch(
    batch: &mut dyn chainbreak_store::Batch,
    actor: &Actor,
    entity: &str,
    count: usize,
    after_seq: u64,
    at: Timestamp,
) -> Result<(), AppError> {
    let record = format!("{count} records, changes after seq {after_seq}");
    batch.append_audit(&actor.audit(at, "ingest", entity, &record))?;
    Ok(())
}

/// Who writes a batch: their jurisdiction, the actor of the audit record, and the deployment's
/// pseudonymisation key (person references in the batch become pseudonymous ids; without a key
/// a batch holding one is refused).
#[derive(Debug, Clone)]
pub struct Writer {
    pub scope: Scope,
    pub actor: Actor,
    pub pseudonymizer: Option<Pseudonymizer>,
}

/// Replaces the person references of `records` with pseudonymous ids, failing at the first one
/// that cannot be; returns the identifiers they carried.
fn pseudonymise<T: PersonRefs>(
    records: &mut [T],
    array: &str,
    pseudonymizer: Option<&Pseudonymizer>,
) -> Result<Vec<Identifier>, AppError> {
    let mut pseudo = Pseudonymise::new(pseudonymizer.cloned());
    for (i, record) in records.iter_mut().enumerate() {
        if let Err((field, e)) = pseudo.apply(record) {
            let code = if matches!(e, PseudonymError::NoKey(_)) {
                ErrorCode::InvalidArgument
            } else {
                ErrorCode::InputInvalidField
            };
            return Err(FormatError::new(code, at_path(array, i, field), e.to_string()).into());
        }
    }
    Ok(pseudo.take_identifiers())
}

/// Ingests visits for `writer`; unknown persons or places are an error unless
/// `register_unknown`.
pub fn ingest_visits(
    store: &mut dyn Store,
    writer: &Writer,
    visits: &mut [Visit],
    register_unknown: bool,
    at: Timestamp,
) -> Result<IngestReport, AppError> {
    let Writer { scope, actor, pseudonymizer } = writer;
    let identifiers = pseudonymise(visits, "visits", pseudonymizer.as_ref())?;
    for (i, v) in visits.iter().enumerate() {
        if let Some(t_out) = v.t_out
            && t_out < v.t_in
        {
            return Err(FormatError::new(
                ErrorCode::InputInconsistent,
                at_path("visits", i, "t_out"),
                format!("t_out {t_out} is before t_in {}", v.t_in),
            )
            .into());
        }
    }
    let person_ids: Vec<&str> = visits.iter().map(|v| v.person_id.as_str()).collect();
    let place_ids: Vec<&str> = visits.iter().map(|v| v.place_id.as_str()).collect();
    let (persons_given, places_given): (Vec<_>, Vec<_>) =
        visits.iter().map(|v| (Some(v.person_id.as_str()), Some(v.place_id.as_str()))).unzip();
    check_scope(&*store, scope, "visits", (Entity::Place, &places_given), (Entity::Person, &persons_given))?;
    let mut report = IngestReport::default();
    let after_seq = store.last_seq()?;
    let mut batch = store.begin(at)?;
    let mut persons = batch.lookup_persons(&person_ids)?;
    let mut places = batch.lookup_places(&place_ids)?;
    for (keys, ids, field, what, is_person) in [
        (&mut persons, &person_ids, "person_id", "person", true),
        (&mut places, &place_ids, "place_id", "place", false),
    ] {
        let missing: Vec<usize> = keys.iter().enumerate().filter(|(_, k)| k.is_none()).map(|(i, _)| i).collect();
        if missing.is_empty() {
            continue;
        }
        if !register_unknown {
            let i = missing[0];
            return Err(FormatError::new(
                ErrorCode::InputUnknownReference,
                at_path("visits", i, field),
                format!("{what} `{}` is not registered (set register_unknown to register it by id alone)", ids[i]),
            )
            .into());
        }
        let names: Vec<&str> = missing.iter().map(|i| ids[*i]).collect();
        let new = if is_person { batch.register_persons(&names)? } else { batch.register_places(&names)? };
        let distinct = names.iter().collect::<std::collections::HashSet<_>>().len() as u64;
        if is_person {
            report.registered_persons = distinct;
        } else {
            report.registered_places = distinct;
        }
        for (i, k) in missing.iter().zip(new) {
            keys[*i] = Some(k);
        }
    }
    record_identifiers(&mut *batch, identifiers)?;
    let rows: Vec<KeyedVisit> = visits
        .iter()
        .zip(persons.iter().zip(&places))
        .map(|(v, (p, l))| KeyedVisit {
            person: p.expect("resolved above"),
            place: l.expect("resolved above"),
            t_in: v.t_in.as_second(),
            t_out: v.t_out.map(|t| t.as_second()),
            source: v.source,
        })
        .collect();
    batch.insert_visits(&rows)?;
    audit_batch(&mut *batch, actor, "visit", rows.len(), after_seq, at)?;
    report.accepted = rows.len() as u64;
    report.last_seq = batch.commit()?;
    Ok(report)
}

/// Ingests lab tests (upserted by id) for `writer`, triggering nothing.
pub fn ingest_lab_tests(
    store: &mut dyn Store,
    writer: &Writer,
    tests: &mut [LabTest],
    at: Timestamp,
) -> Result<IngestReport, AppError> {
    ingest_lab_tests_triggering(store, writer, tests, None, at).map(|(report, _)| report)
}

/// Ingests lab tests (upserted by id) for `writer` and sets off what they trigger
/// ([`crate::triggers`]) in the same batch: a refused batch triggers nothing.
pub fn ingest_lab_tests_triggering(
    store: &mut dyn Store,
    writer: &Writer,
    tests: &mut [LabTest],
    triggers: Option<&Triggers>,
    at: Timestamp,
) -> Result<(IngestReport, TriggerReport), AppError> {
    let Writer { scope, actor, pseudonymizer } = writer;
    let identifiers = pseudonymise(tests, "lab_tests", pseudonymizer.as_ref())?;
    let (subjects, labs): (Vec<_>, Vec<_>) = tests
        .iter()
        .map(|t| ((t.subject_kind == SubjectKind::Person).then_some(t.subject_id.as_str()), t.lab_id.as_deref()))
        .unzip();
    check_scope(&*store, scope, "lab_tests", (Entity::Person, &subjects), (Entity::Place, &labs))?;
    let after_seq = store.last_seq()?;
    let mut batch = store.begin(at)?;
    batch.put_lab_tests(tests).map_err(|e| located("lab_tests", e))?;
    record_identifiers(&mut *batch, identifiers)?;
    audit_batch(&mut *batch, actor, "lab_test", tests.len(), after_seq, at)?;
    let triggered = match triggers {
        Some(t) => crate::triggers::on_lab_tests(&mut *batch, t, tests, actor, at)?,
        None => TriggerReport::default(),
    };
    let last_seq = batch.commit()?;
    Ok((IngestReport { accepted: tests.len() as u64, last_seq, ..Default::default() }, triggered))
}

/// Ingests sentinel reports (upserted by place, feed, date and category) for `writer` and sets
/// off what they trigger, all or nothing. A report lies in the jurisdiction by its place or by
/// its area.
pub fn ingest_sentinel(
    store: &mut dyn Store,
    writer: &Writer,
    rows: &[SentinelRecord],
    at: Timestamp,
) -> Result<(IngestReport, TriggerReport), AppError> {
    let Writer { scope, actor, .. } = writer;
    let (places, areas): (Vec<_>, Vec<_>) =
        rows.iter().map(|r| (Some(r.place_id.as_str()), r.area_id.as_deref())).unzip();
    check_scope(&*store, scope, "sentinel", (Entity::Place, &places), (Entity::Area, &areas))?;
    let after_seq = store.last_seq()?;
    let mut batch = store.begin(at)?;
    batch.put_sentinel(rows).map_err(|e| located("sentinel", e))?;
    audit_batch(&mut *batch, actor, "sentinel", rows.len(), after_seq, at)?;
    let triggered = crate::triggers::on_sentinel(&mut *batch, rows, actor, at)?;
    let last_seq = batch.commit()?;
    Ok((IngestReport { accepted: rows.len() as u64, last_seq, ..Default::default() }, triggered))
}

/// Ingests goods batches and their hops for `writer`, all or nothing: a hop lies in the
/// jurisdiction by the place it went to or the place it left (batches name no place and are
/// taken from any writer); hops are appended, batches upserted by id.
pub fn ingest_goods(
    store: &mut dyn Store,
    writer: &Writer,
    batches: &[chainbreak_core::model::GoodsBatch],
    hops: &[chainbreak_core::model::GoodsHop],
    at: Timestamp,
) -> Result<IngestReport, AppError> {
    let Writer { scope, actor, .. } = writer;
    let (to, from): (Vec<_>, Vec<_>) = hops.iter().map(|h| (h.to_place.as_deref(), h.from_place.as_deref())).unzip();
    check_scope(&*store, scope, "hops", (Entity::Place, &to), (Entity::Place, &from))?;
    let after_seq = store.last_seq()?;
    let mut batch = store.begin(at)?;
    batch.put_goods_batches(batches).map_err(|e| located("batches", e))?;
    batch.put_goods_hops(hops).map_err(|e| located("hops", e))?;
    audit_batch(&mut *batch, actor, "goods", batches.len() + hops.len(), after_seq, at)?;
    let last_seq = batch.commit()?;
    Ok(IngestReport { accepted: (batches.len() + hops.len()) as u64, last_seq, ..Default::default() })
}

/// A store's refusal of a record (an unknown reference, an invalid value) as an error at the
/// record's JSON path in the batch; other store errors as they are.
fn located(kind: &str, e: StoreError) -> AppError {
    match &e {
        StoreError::UnknownReference { index, field, .. } | StoreError::Invalid { index, field, .. } => {
            FormatError::new(e.code(), at_path(kind, *index, field), e.to_string()).into()
        }
        _ => e.into(),
    }
}
