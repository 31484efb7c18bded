//! Contact proposals (DESIGN.md §4a: the engine proposes, people decide).
//!
//! [`record`] turns a trace report into proposals, one per (index case, contact, category):
//! a new contact is `proposed`; a `proposed` one takes the new evidence; a `confirmed` or
//! `rejected` one keeps its decision, takes the new evidence and is flagged
//! `changed_since_decision` when the evidence changed; a `proposed` contact no longer in the
//! result is `withdrawn`; a decided one no longer in the result keeps its decision and is
//! flagged. A decision is never undone by the engine: only a person changes it ([`decide`]).
//!
//! With several index persons in one trace, a contact is proposed under every index person
//! its evidence names (`exposed_to`; for secondary contacts, the index persons of the close
//! contacts it names). The evidence shown is the first and last exposure (and every group),
//! so a contact exposed to three index persons of one trace may be proposed under two.
//!
//! Each index's request is stored with its proposals, so that [`recompute`] can run it again
//! when the change feed says visits, cases, places, groups or merges changed since: cases are
//! resolved again ([`case_index`]: a moved onset moves the window), and only the indexes whose
//! proposals' digest differs are written.

use std::collections::{BTreeMap, BTreeSet};

use chainbreak_core::access::{Permission, User};
use chainbreak_store::{
    Batch, ChangeOp, Decision, Entity, Proposal, ProposalFilter, ProposalIndex, ProposalStatus, Scope, Store,
    TraceRecord,
};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::accounts::Actor;
use crate::reads::{Page, require, scope_of};
use crate::trace::{ContactView, IndexEntry, Rule, Tier, TraceReport, TraceRequest, case_index};
use crate::{AppError, Deployment};

/// The actor named on proposals confirmed by [`Deployment::auto_confirm`].
pub const AUTO_CONFIRM_ACTOR: &str = "auto_confirm";

/// A case of a recorded request; `from` fixes its window's start (otherwise it comes from the
/// case's dates each time the request runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedCase {
    pub case_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
}

/// An index person of a recorded request, from `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedPerson {
    pub person_id: String,
    pub from: Timestamp,
}

/// A trace request as stored with the proposals it made, to be run again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `profile` or `venue-overlap`.
    pub rule: String,
    pub depth: u8,
    pub min_overlap_seconds: i64,
    /// The end of every window; the end of the data (whatever it is then) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    #[serde(default)]
    pub cases: Vec<RecordedCase>,
    #[serde(default)]
    pub persons: Vec<RecordedPerson>,
}

impl RecordedRequest {
    /// The request to store for `request` (its index persons are `persons`; `cases` are the
    /// cases traced, each with its fixed start or none).
    pub fn new(request: &TraceRequest, cases: Vec<RecordedCase>, persons: Vec<RecordedPerson>) -> Self {
        RecordedRequest {
            rule: request.rule.as_str().to_string(),
            depth: request.depth,
            min_overlap_seconds: request.min_overlap.as_secs(),
            to: request.to,
            cases,
            persons,
        }
    }

    /// The request of a trace by `cases` (windows from their dates) and the index persons in
    /// `request.index` without a case.
    pub fn of(request: &TraceRequest, cases: &[String]) -> Self {
        let persons = request
            .index
            .iter()
            .filter(|e| e.case_id.is_none())
            .map(|e| RecordedPerson { person_id: e.person_id.clone(), from: e.from })
            .collect();
        let cases = cases.iter().map(|c| RecordedCase { case_id: c.clone(), from: None }).collect();
        Self::new(request, cases, persons)
    }

    fn json(&self) -> String {
        serde_json::to_string(self).expect("a request serialises")
    }

    fn rule(&self) -> Result<Rule, AppError> {
        match self.rule.as_str() {
            "profile" => Ok(Rule::Profile),
            "venue-overlap" => Ok(Rule::VenueOverlap),
            other => Err(AppError::InvalidArgument {
                argument: "rule",
                message: format!("a recorded request names the unknown rule `{other}`"),
            }),
        }
    }

    /// The trace request as of now: each case's window from its current dates (unless fixed).
    /// Cases that can no longer be traced (excluded, deleted, without dates) are left out and
    /// returned apart, with why.
    fn resolve(&self, dep: &Deployment) -> Result<(TraceRequest, Vec<(String, AppError)>), AppError> {
        let mut index = Vec::new();
        let mut dropped = Vec::new();
        for c in &self.cases {
            match case_index(&*dep.store, &dep.profile, &dep.calendar, std::slice::from_ref(&c.case_id)) {
                Ok(mut entries) => {
                    if let Some(from) = c.from {
                        entries.iter_mut().for_each(|e| e.from = from);
                    }
                    index.extend(entries);
                }
                Err(e @ (AppError::NotFound(_) | AppError::InvalidArgument { .. })) => {
                    dropped.push((c.case_id.clone(), e))
                }
                Err(e) => return Err(e),
            }
        }
        index.extend(self.persons.iter().map(|p| IndexEntry {
            person_id: p.person_id.clone(),
            from: p.from,
            case_id: None,
        }));
        let request = TraceRequest {
            rule: self.rule()?,
            index,
            to: self.to,
            min_overlap: SignedDuration::from_secs(self.min_overlap_seconds),
            depth: self.depth,
        };
        Ok((request, dropped))
    }
}

/// A proposal as readers see it: the record and its evidence (as recorded: the fields the
/// trace engine wrote then).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposalView {
    #[serde(flatten)]
    pub proposal: Proposal,
    pub evidence: serde_json::Value,
}

impl From<Proposal> for ProposalView {
    fn from(proposal: Proposal) -> Self {
        let evidence = serde_json::from_str(&proposal.evidence).unwrap_or(serde_json::Value::Null);
        ProposalView { proposal, evidence }
    }
}

/// What recording did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordReport {
    /// Index cases and persons recorded.
    pub indexes: usize,
    /// Of those, the ones whose proposals changed (written).
    pub changed: usize,
    /// New proposals.
    pub proposed: usize,
    /// Proposals that took new evidence (or came back into the result).
    pub updated: usize,
    /// Undecided proposals no longer in the result.
    pub withdrawn: usize,
    /// Decided proposals whose evidence changed or that left the result: a person must look.
    pub flagged: usize,
    /// New proposals confirmed by [`Deployment::auto_confirm`] (simulation and demo only).
    pub auto_confirmed: usize,
}

impl RecordReport {
    fn add(&mut self, o: &RecordReport) {
        self.indexes += o.indexes;
        self.changed += o.changed;
        self.proposed += o.proposed;
        self.updated += o.updated;
        self.withdrawn += o.withdrawn;
        self.flagged += o.flagged;
        self.auto_confirmed += o.auto_confirmed;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A proposal freshly found for `index`, as `proposed`.
fn found(index: &ProposalIndex, tier: u8, category: &str, c: &ContactView, at: Timestamp) -> Proposal {
    let evidence = serde_json::to_string(&c.evidence).expect("evidence serialises");
    let mut h = Sha256::new();
    h.update(format!("{tier}\t{category}\t{}\t{}\t{}\n", c.first_exposure, c.last_exposure, c.exposures).as_bytes());
    h.update(evidence.as_bytes());
    Proposal {
        id: 0,
        index: index.clone(),
        contact_id: c.person_id.to_string(),
        category: category.to_string(),
        tier,
        first_exposure: c.first_exposure,
        last_exposure: c.last_exposure,
        exposures: c.exposures,
        evidence,
        evidence_digest: hex(&h.finalize()),
        needs_confirmation: c.evidence.iter().any(|e| e.needs_confirmation),
        in_result: true,
        status: ProposalStatus::Proposed,
        decided_by: None,
        decided_at: None,
        decision_reason: None,
        changed_since_decision: false,
        created_at: at,
        updated_at: at,
    }
}

/// The digest of an index's result: its contacts, categories and evidence.
fn digest(found: &[Proposal]) -> String {
    let mut lines: Vec<String> =
        found.iter().map(|p| format!("{}\t{}\t{}\n", p.contact_id, p.category, p.evidence_digest)).collect();
    lines.sort_unstable();
    let mut h = Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
    }
    hex(&h.finalize())
}

/// The contacts of a report by index: each contact under every index person its evidence
/// names (secondary contacts: through the close contacts they name).
fn split(report: &TraceReport, at: Timestamp) -> BTreeMap<ProposalIndex, Vec<Proposal>> {
    let mut indexes: BTreeMap<&str, Vec<ProposalIndex>> = BTreeMap::new();
    let mut out: BTreeMap<ProposalIndex, Vec<Proposal>> = BTreeMap::new();
    for e in &report.index {
        let index = ProposalIndex { case_id: e.case_id.clone(), person_id: e.person_id.clone() };
        indexes.entry(e.person_id.as_str()).or_default().push(index.clone());
        out.entry(index).or_default();
    }
    // The tiers' contacts spelled in ids.
    let tiers: Vec<(&Tier, Vec<ContactView>)> = report.tiers.iter().map(|t| (t, t.contacts().collect())).collect();
    // The index persons behind each close contact.
    let mut behind: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (tier, contacts) in tiers.iter().filter(|(t, _)| t.tier == 1) {
        for c in contacts {
            let named = c.evidence.iter().map(|e| &*e.exposed_to).filter(|p| indexes.contains_key(p));
            if tier.category == "close" {
                behind.entry(&*c.person_id).or_default().extend(named);
            }
        }
    }
    for (tier, contacts) in &tiers {
        for c in contacts {
            let mut persons: BTreeSet<&str> = BTreeSet::new();
            for e in &c.evidence {
                if tier.tier == 1 {
                    if indexes.contains_key(&*e.exposed_to) {
                        persons.insert(&*e.exposed_to);
                    }
                } else if let Some(b) = behind.get(&*e.exposed_to) {
                    persons.extend(b.iter().copied());
                }
            }
            if persons.is_empty() {
                // Evidence that names nobody known (should not happen): the first index.
                persons.extend(report.index.first().map(|e| e.person_id.as_str()));
            }
            for p in persons {
                for index in &indexes[p] {
                    out.get_mut(index).expect("every index has an entry").push(found(
                        index,
                        tier.tier,
                        tier.category,
                        c,
                        at,
                    ));
                }
            }
        }
    }
    out
}

/// The proposals to write for one index: `fresh` (what the trace found) merged into
/// `existing` (what is stored), and what that did.
fn merge(
    existing: Vec<Proposal>,
    fresh: Vec<Proposal>,
    at: Timestamp,
    auto_confirm: bool,
) -> (Vec<Proposal>, RecordReport) {
    let mut report = RecordReport::default();
    let mut stored: BTreeMap<(String, String), Proposal> =
        existing.into_iter().map(|p| ((p.contact_id.clone(), p.category.clone()), p)).collect();
    let mut out = Vec::new();
    for mut f in fresh {
        match stored.remove(&(f.contact_id.clone(), f.category.clone())) {
            None => {
                if auto_confirm && !f.needs_confirmation {
                    f.status = ProposalStatus::Confirmed;
                    f.decided_by = Some(AUTO_CONFIRM_ACTOR.into());
                    f.decided_at = Some(at);
                    f.decision_reason = Some("confirmed automatically (simulation or demo setting)".into());
                    report.auto_confirmed += 1;
                }
                report.proposed += 1;
                out.push(f);
            }
            Some(e) => {
                let same = e.evidence_digest == f.evidence_digest && e.in_result && e.tier == f.tier;
                match e.status {
                    ProposalStatus::Proposed | ProposalStatus::Withdrawn => {
                        if same && e.status == ProposalStatus::Proposed {
                            continue;
                        }
                        report.updated += 1;
                        out.push(Proposal { id: e.id, created_at: e.created_at, ..f });
                    }
                    ProposalStatus::Confirmed | ProposalStatus::Rejected => {
                        if same {
                            continue;
                        }
                        if !e.changed_since_decision {
                            report.flagged += 1;
                        }
                        report.updated += 1;
                        out.push(Proposal {
                            id: e.id,
                            status: e.status,
                            decided_by: e.decided_by,
                            decided_at: e.decided_at,
                            decision_reason: e.decision_reason,
                            changed_since_decision: true,
                            created_at: e.created_at,
                            ..f
                        });
                    }
                }
            }
        }
    }
    for (_, e) in stored {
        match e.status {
            ProposalStatus::Withdrawn => {}
            ProposalStatus::Proposed => {
                report.withdrawn += 1;
                out.push(Proposal { status: ProposalStatus::Withdrawn, in_result: false, updated_at: at, ..e });
            }
            ProposalStatus::Confirmed | ProposalStatus::Rejected => {
                if e.in_result || !e.changed_since_decision {
                    if !e.changed_since_decision {
                        report.flagged += 1;
                    }
                    out.push(Proposal { in_result: false, changed_since_decision: true, updated_at: at, ..e });
                }
            }
        }
    }
    (out, report)
}

/// Records one index's result in `batch` (with its request), writing only what changed.
fn record_index(
    batch: &mut dyn Batch,
    record: TraceRecord,
    fresh: Vec<Proposal>,
    actor: &Actor,
    auto_confirm: bool,
) -> Result<RecordReport, AppError> {
    let at = record.recorded_at;
    let existing = batch.proposals_of(&record.index)?;
    let (mut rows, mut report) = merge(existing, fresh, at, auto_confirm);
    // A case's person may have changed since (a merge): the proposals follow the case.
    for row in &mut rows {
        row.index = record.index.clone();
    }
    report.indexes = 1;
    if !rows.is_empty() {
        report.changed = 1;
    }
    let what = match &record.index.case_id {
        Some(case) => ("case", case.clone()),
        None => ("person", record.index.person_id.clone()),
    };
    batch.record_proposals(&record, &rows)?;
    if !rows.is_empty() {
        let actor = Actor {
            reason: Some(format!(
                "{} proposed, {} updated, {} withdrawn, {} flagged",
                report.proposed, report.updated, report.withdrawn, report.flagged
            )),
            ..actor.clone()
        };
        batch.append_audit(&actor.audit(at, "proposals_record", what.0, &what.1))?;
    }
    Ok(report)
}

/// Whether two indexes are one: the same case (whoever its person is now), or the same person
/// traced without a case.
fn same_index(a: &ProposalIndex, b: &ProposalIndex) -> bool {
    match (&a.case_id, &b.case_id) {
        (Some(x), Some(y)) => x == y,
        (None, None) => a.person_id == b.person_id,
        _ => false,
    }
}

/// Stores `report` (the answer to `request`) as proposals, per index case or person, in one
/// batch; `seq` is the change `seq` the trace was current to. Only the indexes in `only` are
/// written when it is given.
fn record_report(
    dep: &mut Deployment,
    request: &RecordedRequest,
    report: &TraceReport,
    seq: u64,
    actor: &Actor,
    only: Option<&BTreeSet<ProposalIndex>>,
    dropped: &[(ProposalIndex, Timestamp)],
) -> Result<RecordReport, AppError> {
    let at = dep.clock.now();
    let auto_confirm = dep.auto_confirm;
    let text = request.json();
    let from: BTreeMap<ProposalIndex, Timestamp> = report
        .index
        .iter()
        .map(|e| (ProposalIndex { case_id: e.case_id.clone(), person_id: e.person_id.clone() }, e.from))
        .chain(dropped.iter().cloned())
        .collect();
    let mut by_index = split(report, at);
    for (index, _) in dropped {
        by_index.entry(index.clone()).or_default();
    }
    let mut total = RecordReport::default();
    let mut batch = dep.store.begin(at)?;
    for (index, fresh) in by_index {
        if only.is_some_and(|only| !only.iter().any(|o| same_index(o, &index))) {
            continue;
        }
        let record = TraceRecord {
            from: from.get(&index).copied().unwrap_or(at),
            request: text.clone(),
            digest: digest(&fresh),
            seq,
            recorded_at: at,
            index,
        };
        total.add(&record_index(&mut *batch, record, fresh, actor, auto_confirm)?);
    }
    batch.commit()?;
    Ok(total)
}

/// Stores a trace's result as proposals (see the module's documentation). `report` is the
/// answer to `request`, computed by the deployment's tracer as it is now.
pub fn record(
    dep: &mut Deployment,
    request: &RecordedRequest,
    report: &TraceReport,
    actor: &Actor,
) -> Result<RecordReport, AppError> {
    let seq = match dep.tracer_seq() {
        Some(seq) => seq,
        None => dep.tracer()?.seq(),
    };
    record_report(dep, request, report, seq, actor, None, &[])
}

/// Traces `request` and stores the result as proposals: what `chainbreak trace --record`
/// does.
pub fn trace_and_record(
    dep: &mut Deployment,
    request: &RecordedRequest,
    actor: &Actor,
) -> Result<(TraceReport, RecordReport), AppError> {
    let (trace_request, dropped) = request.resolve(dep)?;
    if let Some((_, e)) = dropped.into_iter().next() {
        return Err(e);
    }
    let report = dep.tracer()?.trace(&trace_request)?;
    let recorded = record(dep, request, &report, actor)?;
    Ok((report, recorded))
}

/// What [`trace_cases`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaseTraces {
    /// The cases traced (together, in one request).
    pub traced: Vec<String>,
    /// The cases that could not be traced, with why (excluded meanwhile, no dates, a person
    /// the tracer does not know).
    pub skipped: Vec<(String, String)>,
    /// What recording the result did.
    pub recorded: RecordReport,
}

/// Starts tracing new cases at once (DESIGN.md §1: a positive starts the response; issue 6: a
/// positive "converts the episode to a suspected case and starts tracing"): traces `case_ids`
/// together under the deployment's profile rule, close and secondary contacts, each case's
/// window from its dates (the profile's look-back from onset, else from sampling) to the end
/// of the data, and records the result as proposals for tracers to confirm, as `chainbreak
/// trace --record --case …` does. [`recompute`] keeps them current like any recorded trace.
/// Cases that cannot be traced are left out and named in the answer; nothing is recorded when
/// none can.
pub fn trace_cases(dep: &mut Deployment, actor: &Actor, case_ids: &[String]) -> Result<CaseTraces, AppError> {
    let mut ids: Vec<String> = case_ids.to_vec();
    ids.sort();
    ids.dedup();
    let mut request = RecordedRequest {
        rule: Rule::Profile.as_str().to_string(),
        depth: 2,
        // The profile rule takes the least overlap per setting from the profile.
        min_overlap_seconds: 0,
        to: None,
        cases: ids.into_iter().map(|case_id| RecordedCase { case_id, from: None }).collect(),
        persons: Vec::new(),
    };
    let (mut trace_request, dropped) = request.resolve(dep)?;
    let mut out =
        CaseTraces { skipped: dropped.into_iter().map(|(c, e)| (c, e.to_string())).collect(), ..Default::default() };
    // The tracer catches up with the store first: the cases' persons may be new.
    let tracer = dep.tracer()?;
    trace_request.index.retain(|e| {
        let known = tracer.knows(&e.person_id);
        if !known && let Some(c) = &e.case_id {
            out.skipped.push((c.clone(), format!("person `{}` is not registered", e.person_id)));
        }
        known
    });
    out.skipped.sort();
    out.traced = trace_request.index.iter().filter_map(|e| e.case_id.clone()).collect();
    if out.traced.is_empty() {
        return Ok(out);
    }
    request.cases.retain(|c| out.traced.contains(&c.case_id));
    let report = tracer.trace(&trace_request)?;
    out.recorded = record(dep, &request, &report, actor)?;
    Ok(out)
}

/// What [`recompute`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecomputeReport {
    /// Indexes with stored proposals.
    pub indexes: usize,
    /// Indexes with a relevant change since they were recorded (the others were not traced).
    pub stale: usize,
    /// Trace requests run again (indexes traced together share one).
    pub traced: usize,
    /// What recording the results again did.
    pub recorded: RecordReport,
    /// The change `seq` the proposals are now current to.
    pub seq: u64,
}

/// Whether a change can alter any trace result: visits, places (their kinds), groups and
/// memberships, merges. (New visits alter only the results whose windows they meet: see
/// [`visit_spans`]; case changes only the results of that case: see [`window_moved`].)
fn relevant(entity: Entity, op: ChangeOp) -> bool {
    match entity {
        Entity::Visit | Entity::Place | Entity::Group | Entity::Membership => true,
        Entity::Person => matches!(op, ChangeOp::Merge | ChangeOp::Unmerge),
        _ => false,
    }
}

/// For each change that added visits, its `seq` and the time its visits span (from the
/// earliest check-in to the latest check-out; an open visit reaches to the end of time).
fn visit_spans(store: &dyn Store, changes: &[(u64, i64, i64)]) -> Result<Vec<(u64, i64, i64)>, AppError> {
    let Some(first_row) = changes.iter().map(|c| c.1).min() else { return Ok(Vec::new()) };
    let mut spans: Vec<(u64, i64, i64)> = changes.iter().map(|c| (c.0, i64::MAX, i64::MIN)).collect();
    store.scan_visits(first_row - 1, &mut |batch| {
        for v in batch {
            // Row ranges grow with `seq`: the change holding this row, if any.
            let i = changes.partition_point(|c| c.2 < v.row);
            if let Some(c) = changes.get(i)
                && c.1 <= v.row
            {
                let span = &mut spans[i];
                span.1 = span.1.min(v.visit.t_in);
                span.2 = span.2.max(v.visit.t_out.unwrap_or(i64::MAX));
            }
        }
    })?;
    Ok(spans)
}

/// Whether the case of `record` would now be traced from elsewhere (its dates changed, it was
/// excluded or its person merged) than when it was recorded.
fn window_moved(dep: &Deployment, request: &RecordedRequest, record: &TraceRecord) -> bool {
    let Some(case) = &record.index.case_id else { return false };
    let fixed = request.cases.iter().find(|c| &c.case_id == case).and_then(|c| c.from);
    match case_index(&*dep.store, &dep.profile, &dep.calendar, std::slice::from_ref(case)) {
        Ok(entries) => {
            entries.first().map(|e| (fixed.unwrap_or(e.from), e.person_id.as_str()))
                != Some((record.from, record.index.person_id.as_str()))
        }
        Err(_) => true,
    }
}

/// Brings the stored proposals up to the store: the tracer catches up with the change feed;
/// the requests with a relevant change since they were recorded (new visits within their
/// windows; purged visits, places, groups, merges; a case of theirs now traced from
/// elsewhere) are traced again (cases from their current dates) and recorded again, writing
/// only the indexes whose result changed.
/// Decisions are kept (see [`record`]).
pub fn recompute(dep: &mut Deployment, actor: &Actor) -> Result<RecomputeReport, AppError> {
    let records = dep.store.trace_records()?;
    let Some(oldest) = records.iter().map(|r| r.seq).min() else { return Ok(RecomputeReport::default()) };
    let seq = dep.tracer()?.seq();
    let mut out = RecomputeReport { indexes: records.len(), seq, ..Default::default() };
    // The newest change that can alter any result, and the newest case change (up to what the
    // tracer has taken in).
    let (mut newest_data, mut newest_case) = (0, 0);
    // New visits, by change: (seq, first row, last row).
    let mut visit_changes: Vec<(u64, i64, i64)> = Vec::new();
    let mut after = oldest;
    'feed: loop {
        let changes = dep.store.changes_since(after, 10_000)?;
        let Some(last) = changes.last() else { break };
        after = last.seq;
        for c in &changes {
            if c.seq > seq {
                break 'feed;
            }
            if (c.entity, c.op) == (Entity::Visit, ChangeOp::Upsert) {
                visit_changes.push((c.seq, c.key_from, c.key_to));
            } else if relevant(c.entity, c.op) {
                newest_data = c.seq;
            } else if c.entity == Entity::Case {
                newest_case = c.seq;
            }
        }
    }
    let spans = visit_spans(&*dep.store, &visit_changes)?;
    let mut current: Vec<TraceRecord> = Vec::new();
    // Indexes traced together are traced again together (each one's result depends on the
    // others': an index person is nobody's contact, a close contact nobody's secondary one).
    let mut by_request: BTreeMap<String, Vec<TraceRecord>> = BTreeMap::new();
    for r in records {
        by_request.entry(r.request.clone()).or_default().push(r);
    }
    for (text, records) in by_request {
        let request: RecordedRequest = serde_json::from_str(&text).map_err(|e| AppError::InvalidArgument {
            argument: "request",
            message: format!("a stored request: {e}"),
        })?;
        // The request's windows as recorded: new visits wholly outside them change nothing
        // (an exposure needs an overlap with a source visit clipped to a window).
        let start = records.iter().map(|r| r.from.as_second()).min().unwrap_or(i64::MIN);
        let end = request.to.map_or(i64::MAX, |t| t.as_second());
        let stale = records.iter().any(|r| {
            newest_data > r.seq
                || spans.iter().any(|&(at, lo, hi)| at > r.seq && hi >= start && lo < end)
                || (newest_case > r.seq && window_moved(dep, &request, r))
        });
        if !stale {
            // Current as of `seq`: the next recompute reads the change feed from there.
            current.extend(records.into_iter().filter(|r| r.seq < seq).map(|r| TraceRecord { seq, ..r }));
            continue;
        }
        out.stale += records.len();
        let indexes: BTreeSet<ProposalIndex> = records.iter().map(|r| r.index.clone()).collect();
        let from_of: BTreeMap<ProposalIndex, Timestamp> = records.iter().map(|r| (r.index.clone(), r.from)).collect();
        let (trace_request, dropped) = request.resolve(dep)?;
        // Cases that can no longer be traced: their proposals are recorded as found nowhere.
        let dropped: Vec<(ProposalIndex, Timestamp)> = indexes
            .iter()
            .filter(|i| i.case_id.as_ref().is_some_and(|c| dropped.iter().any(|(d, _)| d == c)))
            .map(|i| (i.clone(), from_of[i]))
            .collect();
        let report = if trace_request.index.is_empty() {
            empty_report(&trace_request)
        } else {
            dep.tracer()?.trace(&trace_request)?
        };
        out.traced += 1;
        let recorded = record_report(dep, &request, &report, seq, actor, Some(&indexes), &dropped)?;
        out.recorded.add(&recorded);
    }
    if !current.is_empty() {
        let mut batch = dep.store.begin(dep.clock.now())?;
        for r in &current {
            batch.record_proposals(r, &[])?;
        }
        batch.commit()?;
    }
    Ok(out)
}

/// The answer when nothing is left to trace.
fn empty_report(request: &TraceRequest) -> TraceReport {
    TraceReport {
        rule: request.rule.as_str(),
        index: Vec::new(),
        to: request.to.unwrap_or(Timestamp::UNIX_EPOCH),
        min_overlap_minutes: None,
        depth: request.depth,
        tiers: Vec::new(),
        links: Vec::new(),
        trails: Vec::new(),
        hash: crate::trace::LazyDigest::known(String::new()),
    }
}

/// The response clock (DESIGN.md §4): an index case whose proposals are all decided by these
/// decisions (none left `proposed`) has its contacts `contacts_determined` at `at`.
fn contacts_determined(batch: &mut dyn Batch, decided: &[Proposal], at: Timestamp) -> Result<(), AppError> {
    let indexes: BTreeSet<&ProposalIndex> = decided.iter().map(|p| &p.index).filter(|i| i.case_id.is_some()).collect();
    for index in indexes {
        if batch.proposals_of(index)?.iter().all(|p| p.status != ProposalStatus::Proposed) {
            batch.clock_event(index.case_id.as_deref().expect("filtered"), "contacts_determined", at)?;
        }
    }
    Ok(())
}

/// A person's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Confirm,
    Reject,
}

/// Confirms or rejects proposals in bulk for `user` (`confirm_contacts`): each must lie in
/// the user's jurisdiction (where the contact lives; others read as absent), a rejection needs
/// a reason, and every decision is audited in the batch that records it. All or nothing.
///
/// This records the decisions only. The server and the CLI confirm through
/// [`decide_and_open`], which also opens the confirmed contacts' measure episodes in the same
/// batch; use this where no deployment is at hand and the episodes are opened otherwise.
pub fn decide(
    store: &mut dyn Store,
    user: &User,
    actor: &Actor,
    ids: &[i64],
    verdict: Verdict,
    reason: Option<&str>,
    at: Timestamp,
) -> Result<Vec<ProposalView>, AppError> {
    require(user, Permission::ConfirmContacts)?;
    let scope = scope_of(store, user)?;
    decide_within(store, &scope, actor, ids, verdict, reason, at)
}

/// [`decide`] for the operator at the console, or any caller that has checked the role:
/// proposals outside `scope` read as absent.
pub fn decide_within(
    store: &mut dyn Store,
    scope: &Scope,
    actor: &Actor,
    ids: &[i64],
    verdict: Verdict,
    reason: Option<&str>,
    at: Timestamp,
) -> Result<Vec<ProposalView>, AppError> {
    if ids.is_empty() {
        return Err(AppError::InvalidArgument { argument: "ids", message: "name the proposals to decide".into() });
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if verdict == Verdict::Reject && reason.is_none() {
        return Err(AppError::InvalidArgument {
            argument: "reason",
            message: "a rejection needs a reason (why this person is not a contact)".into(),
        });
    }
    for id in ids {
        visible(&*store, scope, *id)?;
    }
    let status = match verdict {
        Verdict::Confirm => ProposalStatus::Confirmed,
        Verdict::Reject => ProposalStatus::Rejected,
    };
    let decision = Decision { status, actor: actor.name.clone(), reason: reason.map(String::from), at };
    let mut batch = store.begin(at)?;
    let decided = batch.decide_proposals(ids, &decision)?;
    let actor = Actor { reason: reason.map(String::from), ..actor.clone() };
    let action = match verdict {
        Verdict::Confirm => "proposal_confirm",
        Verdict::Reject => "proposal_reject",
    };
    for p in &decided {
        batch.append_audit(&actor.audit(at, action, "proposal", &p.id.to_string()))?;
    }
    contacts_determined(&mut *batch, &decided, at)?;
    batch.commit()?;
    Ok(decided.into_iter().map(ProposalView::from).collect())
}

/// [`decide`] through the deployment: confirming also opens (or adds the reason to) each
/// contact's measure episode — close, secondary and grid contacts, under the profile's measure
/// for the category, from the last exposure, owned by `owner` — in the same batch as the
/// decisions (co-exposed persons get tests, not an episode). `user` none: the console operator.
pub fn decide_and_open(
    dep: &mut crate::Deployment,
    user: Option<&User>,
    actor: &Actor,
    ids: &[i64],
    verdict: Verdict,
    reason: Option<&str>,
    owner: &str,
) -> Result<(Vec<ProposalView>, Vec<crate::episodes::Outcome>), AppError> {
    let at = dep.clock.now();
    let scope = match user {
        Some(u) => {
            require(u, Permission::ConfirmContacts)?;
            scope_of(&*dep.store, u)?
        }
        None => Scope::All,
    };
    if verdict == Verdict::Reject || ids.is_empty() {
        let decided = decide_within(&mut *dep.store, &scope, actor, ids, verdict, reason, at)?;
        return Ok((decided, Vec::new()));
    }
    let mut requests = Vec::new();
    for id in ids {
        let p = visible(&*dep.store, &scope, *id)?;
        let category = match p.category.as_str() {
            "close" => chainbreak_closedloop::Category::Close,
            "secondary" => chainbreak_closedloop::Category::Secondary,
            "grid" => chainbreak_closedloop::Category::Grid,
            _ => continue,
        };
        let evidence: serde_json::Value = serde_json::from_str(&p.evidence).unwrap_or_default();
        let via = (category == chainbreak_closedloop::Category::Secondary)
            .then(|| evidence.get(0).and_then(|e| e["exposed_to"].as_str()).map(String::from))
            .flatten();
        requests.push(crate::episodes::Request::Open {
            id: None,
            person: p.contact_id.clone(),
            category,
            plan: None,
            reason: chainbreak_closedloop::Reason {
                source: p.index.case_id.clone().unwrap_or_else(|| format!("person:{}", p.index.person_id)),
                via,
                at: p.last_exposure,
                evidence: Some(format!("proposal:{}", p.id)),
            },
            owner: owner.to_string(),
            confirmed: true,
        });
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty()).map(String::from);
    let decision =
        Decision { status: ProposalStatus::Confirmed, actor: actor.name.clone(), reason: reason.clone(), at };
    let audit_actor = Actor { reason, ..actor.clone() };
    let ids = ids.to_vec();
    let (outcomes, decided) = crate::episodes::transition_with(dep, actor, user, &requests, move |batch| {
        let decided = batch.decide_proposals(&ids, &decision)?;
        for p in &decided {
            batch.append_audit(&audit_actor.audit(at, "proposal_confirm", "proposal", &p.id.to_string()))?;
        }
        contacts_determined(batch, &decided, at)?;
        Ok(decided)
    })?;
    Ok((decided.into_iter().map(ProposalView::from).collect(), outcomes))
}

/// The proposal, when it exists and its contact lives in `scope`.
fn visible(store: &dyn Store, scope: &Scope, id: i64) -> Result<Proposal, AppError> {
    let absent = || AppError::NotFound(format!("proposal {id} not found in your jurisdiction"));
    let p = store.proposal(id)?.ok_or_else(absent)?;
    if store.in_scope(scope, Entity::Person, &[p.contact_id.as_str()])?.first() == Some(&true) {
        Ok(p)
    } else {
        Err(absent())
    }
}

/// A page of the proposals of the user's jurisdiction (by where the contact lives), by id.
pub fn list(
    store: &dyn Store,
    user: &User,
    filter: &ProposalFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<ProposalView>, AppError> {
    require(user, Permission::ReadRecords)?;
    list_within(store, &scope_of(store, user)?, filter, after, limit)
}

/// [`list`] within `scope`.
pub fn list_within(
    store: &dyn Store,
    scope: &Scope,
    filter: &ProposalFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<ProposalView>, AppError> {
    let after = match after {
        None => 0,
        Some(s) => s.parse::<i64>().map_err(|_| AppError::InvalidArgument {
            argument: "after",
            message: format!("`{s}` is not a proposal cursor (the `next` of the previous page)"),
        })?,
    };
    let items: Vec<ProposalView> =
        store.proposals_page(scope, filter, after, limit)?.into_iter().map(ProposalView::from).collect();
    let next = if items.len() == limit { items.last().map(|p| p.proposal.id.to_string()) } else { None };
    Ok(Page { items, next })
}

/// One proposal of the user's jurisdiction.
pub fn get(store: &dyn Store, user: &User, id: i64) -> Result<ProposalView, AppError> {
    require(user, Permission::ReadRecords)?;
    Ok(visible(store, &scope_of(store, user)?, id)?.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Evidence;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_646_092_800 + s).unwrap()
    }

    fn evidence(to: &str, minutes: f64, needs_confirmation: bool) -> Evidence {
        Evidence {
            place_id: Some("L1".into()),
            from: t(0),
            to: t((minutes * 60.0) as i64),
            overlap_minutes: minutes,
            exposed_to: to.into(),
            needs_confirmation,
            ..Evidence::default()
        }
    }

    fn contact(person: &str, evidence: Vec<Evidence>) -> ContactView {
        ContactView {
            person_id: person.into(),
            first_exposure: t(0),
            last_exposure: t(60),
            exposures: evidence.len() as u64,
            evidence,
            outside_jurisdiction: false,
        }
    }

    fn report(index: &[(&str, Option<&str>)], tiers: Vec<(u8, &'static str, Vec<ContactView>)>) -> TraceReport {
        TraceReport {
            rule: "profile",
            index: index
                .iter()
                .map(|(p, c)| IndexEntry { person_id: p.to_string(), from: t(0), case_id: c.map(String::from) })
                .collect(),
            to: t(1000),
            min_overlap_minutes: None,
            depth: 2,
            tiers: tiers.into_iter().map(|(tier, category, contacts)| Tier::new(tier, category, contacts)).collect(),
            links: Vec::new(),
            trails: Vec::new(),
            hash: crate::trace::LazyDigest::known(String::new()),
        }
    }

    fn ix(case: &str, person: &str) -> ProposalIndex {
        ProposalIndex { case_id: Some(case.into()), person_id: person.into() }
    }

    #[test]
    fn contacts_go_to_the_index_persons_their_evidence_names() {
        let r = report(
            &[("A", Some("K1")), ("B", Some("K2"))],
            vec![
                (
                    1,
                    "close",
                    vec![
                        contact("X", vec![evidence("A", 30.0, false)]),
                        contact("Y", vec![evidence("A", 20.0, false), evidence("B", 20.0, false)]),
                    ],
                ),
                (2, "secondary", vec![contact("Z", vec![evidence("X", 30.0, true)])]),
            ],
        );
        let split = split(&r, t(5));
        let names = |i: &ProposalIndex| -> Vec<(String, String)> {
            split[i].iter().map(|p| (p.contact_id.clone(), p.category.clone())).collect()
        };
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(names(&ix("K1", "A")), [s("X", "close"), s("Y", "close"), s("Z", "secondary")]);
        assert_eq!(names(&ix("K2", "B")), [s("Y", "close")]);
        let z = &split[&ix("K1", "A")][2];
        assert!(z.needs_confirmation, "any evidence that needs confirmation makes the proposal need it");
        assert_eq!(z.status, ProposalStatus::Proposed);
        assert_eq!(z.tier, 2);
    }

    #[test]
    fn decisions_are_kept_and_flagged_never_undone() {
        let i = ix("K1", "A");
        let fresh = |person: &str, minutes: f64| {
            found(&i, 1, "close", &contact(person, vec![evidence("A", minutes, false)]), t(10))
        };
        // First recording: all proposed.
        let (rows, r) = merge(Vec::new(), vec![fresh("X", 30.0), fresh("Y", 30.0), fresh("Z", 30.0)], t(10), false);
        assert_eq!((r.proposed, rows.len()), (3, 3));
        let mut stored: Vec<Proposal> =
            rows.into_iter().enumerate().map(|(n, p)| Proposal { id: n as i64 + 1, ..p }).collect();
        stored[0].status = ProposalStatus::Confirmed; // X
        stored[1].status = ProposalStatus::Rejected; // Y
        // The same result again: nothing to write.
        let (rows, r) = merge(stored.clone(), vec![fresh("X", 30.0), fresh("Y", 30.0), fresh("Z", 30.0)], t(20), false);
        assert!(rows.is_empty(), "{rows:?}");
        assert_eq!(r, RecordReport::default());
        // X's evidence changes, Y and Z leave the result, W comes.
        let (rows, r) = merge(stored.clone(), vec![fresh("X", 45.0), fresh("W", 30.0)], t(30), false);
        let by = |c: &str| rows.iter().find(|p| p.contact_id == c).unwrap().clone();
        assert_eq!(
            (by("X").status, by("X").changed_since_decision, by("X").in_result),
            (ProposalStatus::Confirmed, true, true)
        );
        assert_eq!(by("X").id, 1);
        assert_eq!(
            (by("Y").status, by("Y").changed_since_decision, by("Y").in_result),
            (ProposalStatus::Rejected, true, false)
        );
        assert_eq!((by("Z").status, by("Z").in_result), (ProposalStatus::Withdrawn, false));
        assert_eq!((by("W").status, by("W").id), (ProposalStatus::Proposed, 0));
        assert_eq!((r.proposed, r.updated, r.withdrawn, r.flagged), (1, 1, 1, 2));
    }

    #[test]
    fn auto_confirm_confirms_only_what_needs_no_person_and_only_when_set() {
        let i = ix("K1", "A");
        let household = found(&i, 1, "close", &contact("H", vec![evidence("A", 600.0, false)]), t(0));
        let office = found(&i, 1, "close", &contact("O", vec![evidence("A", 60.0, true)]), t(0));
        let (rows, _) = merge(Vec::new(), vec![household.clone(), office.clone()], t(0), false);
        assert!(rows.iter().all(|p| p.status == ProposalStatus::Proposed), "the default: people decide");
        let (rows, r) = merge(Vec::new(), vec![household, office], t(0), true);
        assert_eq!(rows[0].status, ProposalStatus::Confirmed);
        assert_eq!(rows[0].decided_by.as_deref(), Some(AUTO_CONFIRM_ACTOR));
        assert_eq!(rows[1].status, ProposalStatus::Proposed);
        assert_eq!(r.auto_confirmed, 1);
    }

    #[test]
    fn a_recorded_request_round_trips() {
        let r = RecordedRequest {
            rule: "venue-overlap".into(),
            depth: 1,
            min_overlap_seconds: 900,
            to: None,
            cases: vec![RecordedCase { case_id: "K1".into(), from: None }],
            persons: vec![RecordedPerson { person_id: "P7".into(), from: t(0) }],
        };
        let back: RecordedRequest = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.rule().unwrap(), Rule::VenueOverlap);
    }
}
