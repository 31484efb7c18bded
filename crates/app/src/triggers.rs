//! Multi-point triggering (多点触发) on ingest: what lab results and sentinel reports set off,
//! written in the same batch as the records that set it off (so a refused batch sets off
//! nothing).
//!
//! - A person's positive test (not pooled) opens a suspected case at once, pending
//!   confirmation, through the ordinary cases path (`put_cases`: the case is in the change feed
//!   and its classification history like any other), unless the person has an open case
//!   (not excluded) already; it raises a `positive_person` alert and starts the case's response
//!   clock (the profile's case items: those starting at `positive_result` start at the result's
//!   report time). A test that set this off once does not again (the alert's key is the test).
//! - A positive pooled test (混采, a `pool_id`) names no one: it raises one `pooled_positive`
//!   alert per pool listing the pool's members (every person tested in the pool, in this batch
//!   or earlier) to sample singly within the profile's `surveillance.pooled_retest_hours`.
//! - A positive environment or goods sample raises an `environment_positive` or
//!   `goods_positive` alert for the goods trace; so does a `sentinel` report of the
//!   `environment` or `cold_chain` feed with positives. Each such new alert's sample is in
//!   `TriggerReport::samples`, for the caller to respond to (`goods::respond`) once the batch is
//!   committed.

use std::collections::BTreeMap;

use chainbreak_core::model::{
    AlertState, Case, Classification, LabTest, SentinelFeed, SentinelRecord, SubjectKind, TestResult,
};
use chainbreak_core::profile::{ClockItem, ClockSubject, Profile};
use chainbreak_store::{AlertKind, AlertRow, Batch, ClockRow};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::json;

use crate::AppError;
use crate::accounts::Actor;

/// What the triggers need of the profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Triggers {
    /// The response clock's items for cases.
    pub clock: Vec<ClockItem>,
    pub pooled_retest_hours: u32,
}

impl Triggers {
    pub fn from_profile(p: &Profile) -> Self {
        Triggers {
            clock: p.response_clock.items.iter().filter(|c| c.subject == ClockSubject::Case).cloned().collect(),
            pooled_retest_hours: p.surveillance.pooled_retest_hours,
        }
    }
}

/// What the triggers did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TriggerReport {
    /// The suspected cases opened.
    pub suspected_cases: Vec<String>,
    /// The alerts raised (ids).
    pub alerts: Vec<i64>,
    /// The suspected cases opened, as stored: each is isolated by the caller
    /// (`episodes::isolate_cases`) once the batch is committed.
    #[serde(skip)]
    pub cases: Vec<Case>,
    /// The trace the suspected cases started (`proposals::trace_cases`), set by the caller once
    /// they are isolated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traced: Option<crate::proposals::CaseTraces>,
    /// The zones reported cases proposed (`zones::record`), set by the caller once they are
    /// isolated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zones: Option<ZonesProposed>,
    /// The positive goods and environment samples this batch raised alerts for: each is
    /// responded to by the caller once the batch is committed (`goods::respond`).
    #[serde(skip)]
    pub samples: Vec<crate::goods::PositiveSample>,
    /// The responses to them (`goods::respond`), set by the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goods: Option<Vec<crate::goods::GoodsResponse>>,
}

/// The zones a batch of cases proposed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ZonesProposed {
    /// New zones, proposed.
    pub proposed: Vec<String>,
    /// Open zones that gained reasons.
    pub updated: Vec<String>,
}

impl TriggerReport {
    fn add(&mut self, other: TriggerReport) {
        self.suspected_cases.extend(other.suspected_cases);
        self.alerts.extend(other.alerts);
        self.cases.extend(other.cases);
        self.samples.extend(other.samples);
    }
}

/// A new alert (`id` and state are the store's).
pub(crate) fn new_alert(kind: AlertKind, key: String, summary: String, at: Timestamp) -> AlertRow {
    AlertRow {
        id: 0,
        kind,
        state: AlertState::New,
        key,
        summary,
        owner_unit: None,
        area_id: None,
        place_id: None,
        person_id: None,
        subject: None,
        details: "{}".into(),
        outcome: None,
        raised_at: at,
        updated_at: at,
    }
}

fn raise(batch: &mut dyn Batch, row: AlertRow, actor: &Actor) -> Result<Option<i64>, AppError> {
    crate::alerts::raise_in(batch, row, actor)
}

/// The suspected case a positive test opens.
pub fn suspected_case_id(test_id: &str) -> String {
    format!("S-{test_id}")
}

/// Sets off what `tests` (as stored in `batch`) trigger.
pub fn on_lab_tests(
    batch: &mut dyn Batch,
    triggers: &Triggers,
    tests: &[LabTest],
    actor: &Actor,
    at: Timestamp,
) -> Result<TriggerReport, AppError> {
    let mut report = TriggerReport::default();
    let positive: Vec<&LabTest> = tests.iter().filter(|t| t.result == TestResult::Positive).collect();
    // Pools first: their members are named in the alert, not made cases.
    let mut pools: BTreeMap<&str, Vec<&LabTest>> = BTreeMap::new();
    for t in positive.iter().filter(|t| t.pool_id.is_some()) {
        pools.entry(t.pool_id.as_deref().expect("filtered")).or_default().push(t);
    }
    if !pools.is_empty() {
        let ids: Vec<&str> = pools.keys().copied().collect();
        let members = batch.pool_members(&ids)?;
        for (pool, hits) in &pools {
            let mut persons: Vec<&str> = members
                .iter()
                .filter(|m| m.pool_id.as_deref() == Some(pool) && m.subject_kind == SubjectKind::Person)
                .map(|m| m.subject_id.as_str())
                .collect();
            persons.sort();
            persons.dedup();
            let result_at = hits.iter().map(|t| t.reported_at.unwrap_or(at)).min().unwrap_or(at);
            let due = result_at + SignedDuration::from_hours(triggers.pooled_retest_hours.into());
            let mut row = new_alert(
                AlertKind::PooledPositive,
                format!("pooled_positive:{pool}"),
                format!("pool {pool} tested positive: {} members to sample singly by {due}", persons.len()),
                at,
            );
            row.place_id = hits.iter().find_map(|t| t.lab_id.clone());
            row.subject = Some(pool.to_string());
            let tasks: Vec<_> =
                persons.iter().map(|p| json!({"kind": "retest", "person_id": p, "due": due.to_string()})).collect();
            row.details = json!({
                "pool_id": pool,
                "lab_tests": hits.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
                "members": persons,
                "retest_due": due.to_string(),
                "tasks": tasks,
            })
            .to_string();
            if let Some(id) = raise(batch, row, actor)? {
                report.alerts.push(id);
            }
        }
    }
    for t in positive.iter().filter(|t| t.pool_id.is_none()) {
        match t.subject_kind {
            SubjectKind::Person => report.add(positive_person(batch, triggers, t, actor, at)?),
            SubjectKind::Environment | SubjectKind::Goods => {
                let (kind, what) = if t.subject_kind == SubjectKind::Goods {
                    (AlertKind::GoodsPositive, "goods batch")
                } else {
                    (AlertKind::EnvironmentPositive, "environment sample")
                };
                let mut row = new_alert(
                    kind,
                    format!("lab_test:{}", t.id),
                    format!("{what} `{}` tested positive ({}): trace the goods", t.subject_id, t.id),
                    at,
                );
                // The sample's place when it names one, else the lab's.
                let sampled_place = match t.subject_kind {
                    SubjectKind::Environment => {
                        batch.lookup_places(&[t.subject_id.as_str()])?[0].is_some().then(|| t.subject_id.clone())
                    }
                    _ => None,
                };
                row.place_id = sampled_place.or_else(|| t.lab_id.clone());
                row.subject = Some(t.subject_id.clone());
                row.details = json!({"lab_test": t.id, "subject_kind": t.subject_kind, "subject_id": t.subject_id,
                    "sampled_at": t.sampled_at.to_string(), "variant": t.variant})
                .to_string();
                if let Some(id) = raise(batch, row, actor)? {
                    report.alerts.push(id);
                    report.samples.extend(crate::goods::samples_of_lab_tests(std::slice::from_ref(*t), at));
                }
            }
        }
    }
    Ok(report)
}

fn positive_person(
    batch: &mut dyn Batch,
    triggers: &Triggers,
    t: &LabTest,
    actor: &Actor,
    at: Timestamp,
) -> Result<TriggerReport, AppError> {
    let positive = Positive {
        key: t.id.clone(),
        person_id: t.subject_id.clone(),
        what: format!("{} test {}", t.method, t.id),
        sampled_at: t.sampled_at,
        result_at: t.reported_at.unwrap_or(at),
        details: json!({"lab_test": t.id, "method": t.method, "ct": t.ct}),
    };
    open_suspected_case(batch, triggers, positive, actor, at)
}

/// A person's positive, from a lab result or entered by hand on an episode.
#[derive(Debug, Clone)]
pub(crate) struct Positive {
    /// What names it: the lab test's id (the case is `S-<key>`, the alert's key `lab_test:<key>`).
    pub key: String,
    pub person_id: String,
    /// How the alert names the test.
    pub what: String,
    pub sampled_at: Timestamp,
    pub result_at: Timestamp,
    /// More of the alert's details.
    pub details: serde_json::Value,
}

/// Opens the suspected case a person's positive sets off (see the module's documentation),
/// unless the person has an open case or this positive did already.
pub(crate) fn open_suspected_case(
    batch: &mut dyn Batch,
    triggers: &Triggers,
    p: Positive,
    actor: &Actor,
    at: Timestamp,
) -> Result<TriggerReport, AppError> {
    let mut report = TriggerReport::default();
    if !batch.open_cases_of(&[p.person_id.as_str()])?.is_empty() {
        return Ok(report);
    }
    let case_id = suspected_case_id(&p.key);
    let result_at = p.result_at;
    let mut row = new_alert(
        AlertKind::PositivePerson,
        format!("lab_test:{}", p.key),
        format!("{} of person {} positive: suspected case {case_id} opened, pending confirmation", p.what, p.person_id),
        at,
    );
    row.person_id = Some(p.person_id.clone());
    row.subject = Some(case_id.clone());
    let mut details = json!({"case_id": case_id, "sampled_at": p.sampled_at.to_string(),
        "result_at": result_at.to_string()});
    if let (Some(d), Some(more)) = (details.as_object_mut(), p.details.as_object()) {
        d.extend(more.clone());
    }
    row.details = details.to_string();
    let Some(id) = raise(batch, row, actor)? else { return Ok(report) };
    report.alerts.push(id);
    let case = Case {
        id: case_id.clone(),
        person_id: p.person_id.clone(),
        classification: Classification::Suspected,
        onset: None,
        sampled_at: Some(p.sampled_at),
        reported_at: result_at,
        imported: false,
        detection: None,
        severity: None,
        outcome: None,
        vaccine_doses: None,
        infector_case_id: None,
        cluster: None,
    };
    batch.put_cases(std::slice::from_ref(&case))?;
    report.cases.push(case);
    batch.put_clock(&clock_rows(triggers, &case_id))?;
    batch.clock_event(&case_id, "positive_result", result_at)?;
    report.suspected_cases.push(case_id);
    Ok(report)
}

/// The response-clock rows of a case: every case item of the profile, not started.
fn clock_rows(triggers: &Triggers, case_id: &str) -> Vec<ClockRow> {
    triggers
        .clock
        .iter()
        .map(|c| ClockRow {
            case_id: case_id.to_string(),
            item: c.name.clone(),
            start_event: c.start.as_str().into(),
            stop_event: c.stop.as_str().into(),
            limit_hours: c.limit_hours,
            started_at: None,
            due_at: None,
            stopped_at: None,
        })
        .collect()
}

/// Sets off what reported cases (as stored in `batch`; not excluded) trigger on the response
/// clock (DESIGN.md §4): each case gets the profile's case items (kept if it has them); a
/// confirmed or asymptomatic case is `case_reported` at its report time, which stops its own
/// `positive_result → case_reported` item and starts the items that run from the report — and
/// so is each open suspected case of the same person (the positive's suspected case `S-<test>`
/// reported under the case's own id).
pub fn on_cases(batch: &mut dyn Batch, triggers: &Triggers, cases: &[Case]) -> Result<(), AppError> {
    for c in cases.iter().filter(|c| c.classification != Classification::Excluded) {
        batch.put_clock(&clock_rows(triggers, &c.id))?;
        if c.classification == Classification::Suspected {
            continue;
        }
        batch.clock_event(&c.id, "case_reported", c.reported_at)?;
        for s in batch.open_cases_of(&[c.person_id.as_str()])? {
            if s.id != c.id && s.classification == Classification::Suspected {
                batch.clock_event(&s.id, "case_reported", c.reported_at)?;
            }
        }
    }
    Ok(())
}

/// Sets off what sentinel reports trigger: positives in the environment and cold-chain feeds.
pub fn on_sentinel(
    batch: &mut dyn Batch,
    rows: &[SentinelRecord],
    actor: &Actor,
    at: Timestamp,
) -> Result<TriggerReport, AppError> {
    let mut report = TriggerReport::default();
    for r in rows {
        let kind = match r.feed {
            SentinelFeed::Environment => AlertKind::EnvironmentPositive,
            SentinelFeed::ColdChain => AlertKind::GoodsPositive,
            _ => continue,
        };
        let positives = r.positives.unwrap_or(0);
        if positives == 0 {
            continue;
        }
        let category = r.category.as_deref().unwrap_or("");
        let mut row = new_alert(
            kind,
            format!("sentinel:{}:{}:{}:{category}", r.place_id, r.feed, r.date),
            format!(
                "{} sentinel {} reported {positives} positive of {} on {}: trace the goods",
                r.feed, r.place_id, r.count, r.date
            ),
            at,
        );
        row.place_id = Some(r.place_id.clone());
        row.area_id = r.area_id.clone();
        row.subject = Some(r.place_id.clone());
        row.details = json!({"feed": r.feed, "date": r.date.to_string(), "category": r.category, "count": r.count,
            "positives": positives})
        .to_string();
        if let Some(id) = raise(batch, row, actor)? {
            report.alerts.push(id);
            report.samples.extend(crate::goods::samples_of_sentinel(std::slice::from_ref(r), at));
        }
    }
    Ok(report)
}
