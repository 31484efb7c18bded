//! Goods over the store (issue 10, 物防): the goods engine ([`chainbreak_goods`]) over the
//! stored batches and hops, and the response to a positive sample.
//!
//! - [`trace`]: a batch both ways — the recall list, the places to seal and the workers on
//!   their staff, and where it came from.
//! - [`respond`]: what a positive goods or environment sample sets off, once per sample, in one
//!   batch: the response recorded (the recall list, the places to seal with the exposure
//!   window at each, and the exposed workers — the staff of each place, and the persons with
//!   visits there in the window — with the goods evidence); each worker proposed the profile's
//!   `[cold_chain.workers]` measure as a co-exposed person (an episode in state `proposed`, for
//!   a person to confirm or close, DESIGN.md §4a; the goods evidence is its reason); the
//!   positive counted at the batch's foreign plants and the supplier suspension list brought
//!   to the profile's ladder, with a `supplier_suspension` alert for each entry added or moved.
//!   Lab results (`import lab_tests`, `POST /api/v1/lab-tests:batch`) and sentinel reports
//!   with positives (`import sentinel`, `POST /api/v1/sentinel:batch`) start it once their
//!   batch is committed; `chainbreak goods respond` and `POST /api/v1/goods/responses` do it by
//!   hand.

use std::collections::BTreeMap;

use chainbreak_closedloop::{Category, Reason};
use chainbreak_core::access::{Permission, User};
use chainbreak_core::model::{StaffMember, SubjectKind};
use chainbreak_goods::{Downstream, Goods, Upstream};
use chainbreak_store::{AlertKind, Batch, Entity, GoodsResponseRow, PlantPositive, Scope, SuspensionRow, VisitQuery};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts::Actor;
use crate::reads::{Page, require, scope_of};
use crate::{AppError, Deployment};

/// A batch traced both ways.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoodsTrace {
    pub batch: String,
    pub downstream: Downstream,
    pub upstream: Upstream,
    /// The staff of every place the goods reached, by place then person: the workers to trace.
    pub workers: Vec<StaffMember>,
}

fn index(dep: &Deployment) -> Result<Goods, AppError> {
    let (batches, hops) = dep.store.goods()?;
    Goods::new(&batches, &hops).map_err(|e| AppError::InvalidArgument { argument: "goods", message: e.to_string() })
}

/// Traces a batch through the stored goods records.
pub fn trace(dep: &Deployment, batch_id: &str) -> Result<GoodsTrace, AppError> {
    trace_within(dep, &Scope::All, batch_id)
}

/// [`trace`] for a user (`read_records`): the places outside the jurisdiction, and their
/// staff, are left out (the batches are not personal and are all listed).
pub fn trace_for(dep: &Deployment, user: &User, batch_id: &str) -> Result<GoodsTrace, AppError> {
    require(user, Permission::ReadRecords)?;
    trace_within(dep, &scope_of(&*dep.store, user)?, batch_id)
}

fn trace_within(dep: &Deployment, scope: &Scope, batch_id: &str) -> Result<GoodsTrace, AppError> {
    let goods = index(dep)?;
    let missing = || AppError::NotFound(format!("goods batch `{batch_id}` not found"));
    let mut downstream = goods.downstream(batch_id).ok_or_else(missing)?;
    let upstream = goods.upstream(batch_id).ok_or_else(missing)?;
    if *scope != Scope::All {
        let ids: Vec<&str> = downstream.places.iter().map(|p| p.place.as_str()).collect();
        let inside = dep.store.in_scope(scope, Entity::Place, &ids)?;
        let mut inside = inside.into_iter();
        downstream.places.retain(|_| inside.next().unwrap_or(false));
    }
    let mut workers = Vec::new();
    for p in &downstream.places {
        workers.extend(dep.store.staff_of(&p.place)?);
    }
    Ok(GoodsTrace { batch: batch_id.to_string(), downstream, upstream, workers })
}

/// The sample a stored lab test is, when it is a positive goods or environment test.
pub fn sample_of_lab_test(dep: &Deployment, lab_test_id: &str) -> Result<PositiveSample, AppError> {
    let t = dep
        .store
        .lab_test(lab_test_id)?
        .ok_or_else(|| AppError::NotFound(format!("lab test `{lab_test_id}` not found")))?;
    samples_of_lab_tests(std::slice::from_ref(&t), dep.clock.now()).pop().ok_or_else(|| AppError::InvalidArgument {
        argument: "lab_test_id",
        message: format!("lab test `{lab_test_id}` is not a positive goods or environment sample"),
    })
}

/// A positive goods or environment sample to respond to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositiveSample {
    /// What names it: `lab_test:<id>`, or a sentinel report's key (the response's id).
    pub id: String,
    /// `goods` (the subject is a batch) or `environment` (the subject is the sampled place).
    pub kind: SubjectKind,
    pub subject: String,
    pub sampled_at: Timestamp,
    /// When the positive was known (the result's report time).
    pub positive_at: Timestamp,
}

/// A place to seal, with the window its workers were exposed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceToSeal {
    pub place: String,
    /// The traced batches that were there (none for the sampled place of an environment sample).
    pub batches: Vec<String>,
    /// No traced batch left it: a last holder (retailer, restaurant...).
    pub last_holder: bool,
    pub exposed_from: Timestamp,
    pub exposed_to: Timestamp,
}

/// How a worker was exposed at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerEvidence {
    pub place: String,
    /// `staff` (on the place's staff list) or `visit` (a visit in the window).
    pub via: String,
    pub batches: Vec<String>,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// A worker proposed as a co-exposed person, with the goods evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposedWorker {
    pub person_id: String,
    pub last_exposure: Timestamp,
    pub evidence: Vec<WorkerEvidence>,
    /// The episode proposed (or the open one the reason was added to); none when the profile
    /// gives workers no measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode_id: Option<String>,
}

/// A supplier suspension entry the response added or moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspensionChange {
    pub plant: String,
    pub nth: u32,
    pub from: Date,
    pub until: Date,
    /// The alert raised for the change.
    pub alert: Option<i64>,
}

/// The response to one positive sample, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoodsResponse {
    pub sample: PositiveSample,
    /// Products to recall: the positive batch and every batch derived from it (goods), or the
    /// batches brought to the sampled place in the window (environment: to test and hold).
    pub recall: Vec<String>,
    /// The foreign plants the batch came from (its own and its ancestors').
    pub plants: Vec<String>,
    /// The other batches of those plants, to check.
    pub sibling_batches: Vec<String>,
    pub places_to_seal: Vec<PlaceToSeal>,
    pub workers: Vec<ExposedWorker>,
    /// The supplier suspension list's entries this positive added or moved.
    pub suspensions: Vec<SuspensionChange>,
    /// What the data could not answer (an unregistered batch or place...), for a person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub responded_at: Timestamp,
}

/// The source of a goods worker's episode reason: `goods:<sample>`.
pub fn goods_source(sample: &str) -> String {
    format!("goods:{sample}")
}

/// The response's trace part: recall list, plants, places to seal with their windows.
fn plan(dep: &Deployment, goods: &Goods, s: &PositiveSample, lookback: SignedDuration) -> GoodsResponse {
    let earliest = s.sampled_at - lookback;
    let mut r = GoodsResponse {
        sample: s.clone(),
        recall: Vec::new(),
        plants: Vec::new(),
        sibling_batches: Vec::new(),
        places_to_seal: Vec::new(),
        workers: Vec::new(),
        suspensions: Vec::new(),
        notes: Vec::new(),
        responded_at: s.positive_at,
    };
    match s.kind {
        SubjectKind::Goods => match (goods.downstream(&s.subject), goods.upstream(&s.subject)) {
            (Some(down), Some(up)) => {
                r.recall = down.batches;
                r.plants = up.plants;
                r.sibling_batches = up.siblings;
                for p in down.places {
                    let from = dep.calendar.start_of(p.first).max(earliest);
                    let to = if p.last_holder {
                        s.positive_at
                    } else {
                        let after_last = p.last.tomorrow().unwrap_or(p.last);
                        dep.calendar.start_of(after_last).min(s.positive_at)
                    };
                    if to <= from {
                        continue;
                    }
                    r.places_to_seal.push(PlaceToSeal {
                        place: p.place,
                        batches: p.batches,
                        last_holder: p.last_holder,
                        exposed_from: from,
                        exposed_to: to,
                    });
                }
            }
            _ => {
                r.recall = vec![s.subject.clone()];
                r.notes.push(format!(
                    "batch `{}` is not registered: nothing was recorded; register it and its hops (import \
                     goods_batches, goods_hops), then respond (chainbreak goods respond, POST /api/v1/goods/responses)",
                    s.subject
                ));
            }
        },
        SubjectKind::Environment | SubjectKind::Person => {
            let from_day = dep.calendar.day_of(earliest);
            let to_day = dep.calendar.day_of(s.sampled_at);
            r.recall = goods.held_at(&s.subject, from_day, to_day);
            r.places_to_seal.push(PlaceToSeal {
                place: s.subject.clone(),
                batches: Vec::new(),
                last_holder: true,
                exposed_from: earliest,
                exposed_to: s.positive_at,
            });
        }
    }
    r
}

/// The workers of the places to seal: the staff over the whole window, and everyone with a
/// visit there in the window; each with every piece of evidence, by person.
fn workers(dep: &Deployment, places: &[PlaceToSeal]) -> Result<Vec<ExposedWorker>, AppError> {
    let mut out: BTreeMap<String, ExposedWorker> = BTreeMap::new();
    let mut add = |person: &str, e: WorkerEvidence, last: Timestamp| {
        let w = out.entry(person.to_string()).or_insert_with(|| ExposedWorker {
            person_id: person.to_string(),
            last_exposure: last,
            evidence: Vec::new(),
            episode_id: None,
        });
        w.last_exposure = w.last_exposure.max(last);
        if !w.evidence.contains(&e) {
            w.evidence.push(e);
        }
    };
    for p in places {
        for s in dep.store.staff_of(&p.place)? {
            let e = WorkerEvidence {
                place: p.place.clone(),
                via: "staff".into(),
                batches: p.batches.clone(),
                from: p.exposed_from,
                to: p.exposed_to,
            };
            add(&s.person_id, e, p.exposed_to);
        }
        // Visits that began before the window and last into it count too: the profile's
        // longest assumed stay is at most a day, so look a day earlier.
        let query = VisitQuery {
            person: None,
            place: Some(p.place.clone()),
            from: Some(p.exposed_from - SignedDuration::from_hours(24)),
            to: Some(p.exposed_to),
        };
        let mut after = 0;
        loop {
            let page = dep.store.visits_page(&Scope::All, &query, after, 5000)?;
            for v in &page {
                let end = v.visit.t_out.unwrap_or(v.visit.t_in);
                if end < p.exposed_from {
                    continue;
                }
                let from = v.visit.t_in.max(p.exposed_from);
                let to = end.min(p.exposed_to).max(from);
                let e = WorkerEvidence {
                    place: p.place.clone(),
                    via: "visit".into(),
                    batches: p.batches.clone(),
                    from,
                    to,
                };
                add(&v.visit.person_id, e, to);
            }
            match page.last() {
                Some(last) if page.len() == 5000 => after = last.row,
                _ => break,
            }
        }
    }
    Ok(out.into_values().collect())
}

/// Counts the positive at its plants and brings their suspension entries to the profile's
/// ladder, raising an alert for each entry added or moved.
fn suspend(
    batch: &mut dyn Batch,
    dep_rules: &chainbreak_core::profile::ColdChain,
    r: &GoodsResponse,
    day: Date,
    actor: &Actor,
    at: Timestamp,
) -> Result<Vec<SuspensionChange>, AppError> {
    let mut changes = Vec::new();
    for plant in &r.plants {
        let positive = PlantPositive { plant: plant.clone(), sample: r.sample.id.clone(), day };
        if !batch.record_plant_positive(&positive)? {
            continue;
        }
        let positives: Vec<(String, Date)> =
            batch.plant_positives_of(plant)?.into_iter().map(|p| (p.plant, p.day)).collect();
        let samples: Vec<String> = batch.plant_positives_of(plant)?.into_iter().map(|p| p.sample).collect();
        let stored = batch.suspensions_of(plant)?;
        let mut rows = Vec::new();
        for s in chainbreak_goods::suspensions(dep_rules, &positives) {
            if stored.iter().any(|e| e.nth == s.nth && e.from == s.from && e.until == s.until) {
                continue;
            }
            let sample = samples.get(s.nth as usize - 1).cloned().unwrap_or_else(|| r.sample.id.clone());
            rows.push(SuspensionRow {
                plant: s.plant.clone(),
                nth: s.nth,
                from: s.from,
                until: s.until,
                sample,
                updated_at: at,
            });
        }
        batch.put_suspensions(&rows)?;
        for row in rows {
            let mut alert = crate::triggers::new_alert(
                AlertKind::SupplierSuspension,
                format!("suspension:{}:{}:{}:{}", row.plant, row.nth, row.from, row.until),
                format!(
                    "imports from plant {} suspended from {} until {} (positive number {}, {})",
                    row.plant, row.from, row.until, row.nth, row.sample
                ),
                at,
            );
            alert.subject = Some(row.plant.clone());
            alert.details = json!({"plant": row.plant, "nth": row.nth, "from": row.from.to_string(),
                "until": row.until.to_string(), "sample": row.sample, "batch": r.sample.subject})
            .to_string();
            let id = crate::alerts::raise_in(batch, alert, actor)?;
            changes.push(SuspensionChange {
                plant: row.plant,
                nth: row.nth,
                from: row.from,
                until: row.until,
                alert: id,
            });
        }
    }
    Ok(changes)
}

/// Responds to positive samples (see the module's documentation), each in one batch with the
/// workers' episodes, owned by `owner`; a sample responded to already is skipped, and one whose
/// batch is not registered is answered with a note and not recorded (respond again once it is).
/// `user` none: the system or the console operator. Returns the new responses.
pub fn respond(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    samples: &[PositiveSample],
    owner: &str,
) -> Result<Vec<GoodsResponse>, AppError> {
    if let Some(u) = user {
        require(u, Permission::ConfirmContacts)?;
    }
    let mut out = Vec::new();
    if samples.is_empty() {
        return Ok(out);
    }
    if owner.trim().is_empty() {
        return Err(AppError::InvalidArgument {
            argument: "owner",
            message: "name the unit that owns the workers' measures".into(),
        });
    }
    let goods = index(dep)?;
    let workers_rule = dep.profile.cold_chain.workers.clone();
    let lookback = SignedDuration::from_hours(24 * i64::from(workers_rule.as_ref().map_or(14, |w| w.lookback_days)));
    for s in samples {
        if dep.store.goods_response(&s.id)?.is_some() {
            continue;
        }
        let at = dep.clock.now();
        let mut r = plan(dep, &goods, s, lookback);
        r.responded_at = at;
        if s.kind == SubjectKind::Goods && goods.downstream(&s.subject).is_none() {
            // Nothing to trace yet: not recorded, so that responding once the batch is
            // registered does the whole response.
            out.push(r);
            continue;
        }
        let known: Vec<bool> = {
            let ids: Vec<&str> = r.places_to_seal.iter().map(|p| p.place.as_str()).collect();
            dep.store.in_scope(&Scope::All, Entity::Place, &ids)?
        };
        for (p, known) in r.places_to_seal.iter().zip(&known) {
            if !known {
                r.notes.push(format!("place `{}` is not registered: its staff and visits are unknown", p.place));
            }
        }
        r.workers = workers(dep, &r.places_to_seal)?;
        let mut requests: Vec<crate::episodes::Request> = Vec::new();
        if let Some(w) = &workers_rule {
            // A worker with an open co-exposed episode gets the reason added to it; the others a
            // new episode named after the sample.
            let open: BTreeMap<String, String> = crate::episodes::current(dep)?
                .into_iter()
                .filter(|(_, e)| e.category == Category::CoExposed)
                .map(|(id, e)| (e.person, id))
                .collect();
            for x in &mut r.workers {
                let id = open
                    .get(&x.person_id)
                    .cloned()
                    .unwrap_or_else(|| format!("EP-{}-co_exposed-{}", x.person_id, s.id));
                x.episode_id = Some(id.clone());
                requests.push(crate::episodes::Request::Open {
                    id: Some(id),
                    person: x.person_id.clone(),
                    category: Category::CoExposed,
                    plan: Some(w.measure.clone()),
                    reason: Reason {
                        source: goods_source(&s.id),
                        via: x.evidence.first().map(|e| e.place.clone()),
                        at: x.last_exposure,
                        evidence: Some(evidence_text(x)),
                    },
                    owner: owner.to_string(),
                    confirmed: false,
                });
            }
        }
        let place_id = r.places_to_seal.iter().zip(&known).find(|(_, k)| **k).map(|(p, _)| p.place.clone());
        let day = dep.calendar.day_of(s.sampled_at);
        let rules = dep.profile.cold_chain.clone();
        // The episodes, the suspensions and their alerts, and the record: one batch.
        // The response is the deployment's (like the trace a positive starts): its workers are
        // proposed wherever they live, whoever asked for it.
        let (_, recorded) = crate::episodes::transition_with(dep, actor, None, &requests, move |batch| {
            r.suspensions = suspend(batch, &rules, &r, day, actor, at)?;
            let row = GoodsResponseRow {
                id: r.sample.id.clone(),
                subject_kind: r.sample.kind.as_str().to_string(),
                subject: r.sample.subject.clone(),
                positive_at: r.sample.positive_at,
                place_id,
                response: serde_json::to_string(&r).expect("a response serialises"),
                created_at: at,
            };
            if !batch.put_goods_response(&row)? {
                return Err(AppError::InvalidArgument {
                    argument: "sample",
                    message: format!("sample `{}` was responded to meanwhile", row.id),
                });
            }
            batch.append_audit(&actor.audit(at, "goods_respond", "goods_response", &row.id))?;
            Ok(r)
        })?;
        out.push(recorded);
    }
    Ok(out)
}

fn evidence_text(w: &ExposedWorker) -> String {
    w.evidence
        .iter()
        .map(|e| {
            let goods = if e.batches.is_empty() { String::new() } else { format!(" with {}", e.batches.join(", ")) };
            format!("{} at {}{goods}, {} to {}", e.via, e.place, e.from, e.to)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A recorded response as readers see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseView {
    pub id: String,
    pub created_at: Timestamp,
    #[serde(flatten)]
    pub response: GoodsResponse,
}

fn view(row: GoodsResponseRow) -> Result<ResponseView, AppError> {
    let response: GoodsResponse = serde_json::from_str(&row.response).map_err(|e| AppError::InvalidArgument {
        argument: "goods_response",
        message: format!("stored response `{}` is unreadable: {e}", row.id),
    })?;
    Ok(ResponseView { id: row.id, created_at: row.created_at, response })
}

fn scope_for(dep: &Deployment, user: Option<&User>) -> Result<Scope, AppError> {
    match user {
        Some(u) => {
            require(u, Permission::ReadRecords)?;
            scope_of(&*dep.store, u)
        }
        None => Ok(Scope::All),
    }
}

/// A page of the recorded responses in the user's jurisdiction (by their place), by id.
pub fn responses(
    dep: &Deployment,
    user: Option<&User>,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<ResponseView>, AppError> {
    let scope = scope_for(dep, user)?;
    let items =
        dep.store.goods_responses(&scope, after, limit)?.into_iter().map(view).collect::<Result<Vec<_>, _>>()?;
    let next = if items.len() == limit { items.last().map(|r| r.id.clone()) } else { None };
    Ok(Page { items, next })
}

/// One recorded response in the user's jurisdiction.
pub fn response(dep: &Deployment, user: Option<&User>, id: &str) -> Result<ResponseView, AppError> {
    let scope = scope_for(dep, user)?;
    let absent = || AppError::NotFound(format!("goods response `{id}` not found in your jurisdiction"));
    let row = dep.store.goods_response(id)?.ok_or_else(absent)?;
    if scope != Scope::All {
        let inside = match &row.place_id {
            Some(p) => dep.store.in_scope(&scope, Entity::Place, &[p.as_str()])?[0],
            None => false,
        };
        if !inside {
            return Err(absent());
        }
    }
    view(row)
}

/// A supplier suspension entry as readers see it: in force on the deployment's today or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuspensionView {
    #[serde(flatten)]
    pub row: SuspensionRow,
    pub in_force: bool,
}

/// The supplier suspension list (`read_records`), by plant then positive number; `in_force`
/// only those in force today (local).
pub fn suspensions(dep: &Deployment, user: Option<&User>, in_force: bool) -> Result<Vec<SuspensionView>, AppError> {
    if let Some(u) = user {
        require(u, Permission::ReadRecords)?;
    }
    let today = dep.calendar.day_of(dep.clock.now());
    Ok(dep
        .store
        .suspensions()?
        .into_iter()
        .map(|row| {
            let on = row.from <= today && today < row.until;
            SuspensionView { row, in_force: on }
        })
        .filter(|v| !in_force || v.in_force)
        .collect())
}

/// The positive goods and environment samples among lab tests (as ingested): goods tests name
/// their batch, environment tests the sampled place.
pub fn samples_of_lab_tests(tests: &[chainbreak_core::model::LabTest], at: Timestamp) -> Vec<PositiveSample> {
    use chainbreak_core::model::TestResult;
    tests
        .iter()
        .filter(|t| t.result == TestResult::Positive && t.subject_kind != SubjectKind::Person)
        .map(|t| PositiveSample {
            id: format!("lab_test:{}", t.id),
            kind: t.subject_kind,
            subject: t.subject_id.clone(),
            sampled_at: t.sampled_at,
            positive_at: t.reported_at.unwrap_or(at),
        })
        .collect()
}

/// The positive samples among sentinel reports of the cold-chain and environment feeds: the
/// reporting point is the sampled place; the report names a day, not an instant, so the
/// sample counts as taken when the report arrived (`at`), which the exposure window covers.
pub fn samples_of_sentinel(rows: &[chainbreak_core::model::SentinelRecord], at: Timestamp) -> Vec<PositiveSample> {
    use chainbreak_core::model::SentinelFeed;
    rows.iter()
        .filter(|r| matches!(r.feed, SentinelFeed::ColdChain | SentinelFeed::Environment))
        .filter(|r| r.positives.unwrap_or(0) > 0)
        .map(|r| PositiveSample {
            id: format!("sentinel:{}:{}:{}:{}", r.place_id, r.feed, r.date, r.category.as_deref().unwrap_or("")),
            kind: SubjectKind::Environment,
            subject: r.place_id.clone(),
            sampled_at: at,
            positive_at: at,
        })
        .collect()
}
