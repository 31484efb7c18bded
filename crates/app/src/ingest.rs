//! Batch ingest over the API: visits and lab tests as JSON, all-or-nothing per request.
//! Errors carry the JSON path of the offending record (`$.visits[3].person_id`).

use chainbreak_core::model::{LabTest, Visit};
use chainbreak_core::{ErrorCode, Location};
use chainbreak_formats::FormatError;
use chainbreak_store::{KeyedVisit, Store, StoreError};
use jiff::Timestamp;

use crate::AppError;

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

/// Ingests visits; unknown persons or places are an error unless `register_unknown`.
pub fn ingest_visits(
    store: &mut dyn Store,
    visits: &[Visit],
    register_unknown: bool,
    at: Timestamp,
) -> Result<IngestReport, AppError> {
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
    let mut report = IngestReport::default();
    let mut batch = store.begin(at)?;
    let person_ids: Vec<&str> = visits.iter().map(|v| v.person_id.as_str()).collect();
    let place_ids: Vec<&str> = visits.iter().map(|v| v.place_id.as_str()).collect();
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
    report.accepted = rows.len() as u64;
    report.last_seq = batch.commit()?;
    Ok(report)
}

/// Ingests lab tests (upserted by id).
pub fn ingest_lab_tests(store: &mut dyn Store, tests: &[LabTest], at: Timestamp) -> Result<IngestReport, AppError> {
    let mut batch = store.begin(at)?;
    match batch.put_lab_tests(tests) {
        Ok(()) => {}
        Err(e @ (StoreError::UnknownReference { .. } | StoreError::Invalid { .. })) => {
            let (index, field) = match &e {
                StoreError::UnknownReference { index, field, .. } | StoreError::Invalid { index, field, .. } => {
                    (*index, *field)
                }
                _ => unreachable!("matched above"),
            };
            return Err(FormatError::new(e.code(), at_path("lab_tests", index, field), e.to_string()).into());
        }
        Err(e) => return Err(e.into()),
    }
    let last_seq = batch.commit()?;
    Ok(IngestReport { accepted: tests.len() as u64, last_seq, ..Default::default() })
}
