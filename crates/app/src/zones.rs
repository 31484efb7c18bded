//! Risk zones over the store (issue 8): the facts the zone engine needs, gathered from cases,
//! persons, places, visits and areas; its proposals recorded as zones with their reasons;
//! commanders' decisions (confirm, reject, lift); screening rounds; the daily review that
//! lowers and lifts zones by the profile's rules and lapses widenings; the measures of the
//! residents of zones in force; and publication as JSON or GeoJSON.

use std::collections::{BTreeMap, BTreeSet};

use chainbreak_core::model::PlaceKind;
use chainbreak_zones::{AreaTree, CaseFacts, Designation, Target, designate};
use serde::Serialize;

use crate::{AppError, Deployment};

/// The proposals for a set of cases, and the cases that could not be considered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZonePlan {
    pub profile: String,
    #[serde(flatten)]
    pub designation: Designation,
    /// (case id, why it was left out).
    pub skipped: Vec<(String, String)>,
}

/// Proposes zones for `case_ids` by the deployment's profile: each case's residence (its
/// residence place's area), its units (the places it is on the staff of) and the places it
/// stayed at from the start of its infectious window (the profile's look-back) to its
/// report; its source is known when it has an infector case, is imported, or the trace engine
/// links it to another case ([`linked_sources`]).
pub fn propose(dep: &mut Deployment, case_ids: &[String]) -> Result<ZonePlan, AppError> {
    let meta = dep.store.meta()?;
    let mut ids = case_ids.to_vec();
    ids.sort();
    ids.dedup();
    let mut areas: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    let mut kinds: BTreeMap<String, Option<PlaceKind>> = BTreeMap::new();
    let mut facts = Vec::new();
    let mut skipped = Vec::new();
    for id in ids {
        let entries =
            match crate::trace::case_index(&*dep.store, &dep.profile, &dep.calendar, std::slice::from_ref(&id)) {
                Ok(e) => e,
                Err(e @ (AppError::NotFound(_) | AppError::InvalidArgument { .. })) => {
                    skipped.push((id, e.to_string()));
                    continue;
                }
                Err(e) => return Err(e),
            };
        let case = dep.store.case(&id)?.ok_or_else(|| AppError::NotFound(format!("case `{id}` not found")))?;
        let from = entries.iter().map(|e| e.from).min().unwrap_or(case.reported_at);
        let person = dep.store.person(&case.person_id)?;
        let home = match person.and_then(|p| p.residence) {
            Some(place) => dep.store.place(&place)?.and_then(|p| p.area),
            None => None,
        };
        // The residence's area and its ancestors.
        let mut next = home.clone();
        while let Some(a) = next.take() {
            if areas.contains_key(&a) {
                break;
            }
            let area = dep.store.area(&a)?.ok_or_else(|| AppError::NotFound(format!("area `{a}` not found")))?;
            next = area.parent.clone();
            areas.insert(a, (area.level, area.parent));
        }
        let mut stayed = BTreeSet::new();
        for v in dep.store.visits_of_person(&case.person_id, from, case.reported_at)? {
            if !kinds.contains_key(&v.place_id) {
                let kind = dep.store.place(&v.place_id)?.map(|p| p.kind);
                kinds.insert(v.place_id.clone(), kind);
            }
            if kinds[&v.place_id].is_some_and(|k| k != PlaceKind::Residence) {
                stayed.insert(v.place_id);
            }
        }
        facts.push(CaseFacts {
            case_id: id,
            residence: home,
            units: dep.store.units_of(&case.person_id)?.into_iter().map(|s| s.place_id).collect(),
            stayed: stayed.into_iter().collect(),
            source_known: case.infector_case_id.is_some() || case.imported,
        });
    }
    let unknown: Vec<String> = facts.iter().filter(|f| !f.source_known).map(|f| f.case_id.clone()).collect();
    let linked = linked_sources(dep, &unknown)?;
    for f in &mut facts {
        f.source_known |= linked.contains_key(&f.case_id);
    }
    let levels: Vec<&str> = meta.area_levels.iter().map(String::as_str).collect();
    let tree = AreaTree::new(
        &levels,
        areas.iter().map(|(id, (level, parent))| (id.as_str(), level.as_str(), parent.as_deref())),
    )
    .map_err(|e| AppError::InvalidArgument { argument: "areas", message: e.to_string() })?;
    let designation = designate(&dep.profile.zones, &tree, &facts)
        .map_err(|e| AppError::InvalidArgument { argument: "profile", message: e.to_string() })?;
    Ok(ZonePlan { profile: dep.profile.name.clone(), designation, skipped })
}

/// A target's geometry: an area's polygon, a place's point; none when the store has neither.
pub fn geometry(dep: &Deployment, target: &Target) -> Result<Option<geojson::Geometry>, AppError> {
    Ok(match target {
        Target::Area(id) => dep.store.area(id)?.and_then(|a| a.geometry),
        Target::Place(id) => dep.store.place(id)?.and_then(|pl| match (pl.lon, pl.lat) {
            (Some(lon), Some(lat)) => Some(geojson::Geometry::new(geojson::Value::Point(vec![lon, lat]))),
            _ => None,
        }),
    })
}

/// The cases among `candidates` whose source the trace engine finds, with that source: traced
/// together with every other case of the deployment that is not excluded (the profile rule,
/// close contacts only), a candidate exposed to another case's person while that one was
/// infectious — at a place, in a household or group, on a trip — first before its own onset
/// (or sampling, or report), is linked to it, and the chain is no longer unclear. The source
/// fell ill (or was sampled) before the candidate; a case the records say the candidate
/// infected is not its source. Cases the engine cannot trace (no
/// dates, an unknown person) link nothing.
pub fn linked_sources(dep: &mut Deployment, candidates: &[String]) -> Result<BTreeMap<String, String>, AppError> {
    let mut out = BTreeMap::new();
    if candidates.is_empty() {
        return Ok(out);
    }
    let mut cases = Vec::new();
    // Each case: the latest an exposure can have infected it, and its recorded infector.
    let mut known: BTreeMap<String, (Timestamp, Option<String>)> = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = dep.store.cases_page(&Scope::All, after.as_deref(), PAGE)?;
        for c in page.iter().filter(|c| c.classification != chainbreak_core::model::Classification::Excluded) {
            let bound = match (c.onset, c.sampled_at) {
                (Some(onset), _) => dep.calendar.start_of(onset),
                (None, Some(sampled)) => sampled,
                (None, None) => c.reported_at,
            };
            known.insert(c.id.clone(), (bound, c.infector_case_id.clone()));
            cases.push(c.id.clone());
        }
        if page.len() < PAGE {
            break;
        }
        after = page.last().map(|c| c.id.clone());
    }
    let mut index = Vec::new();
    for id in &cases {
        match crate::trace::case_index(&*dep.store, &dep.profile, &dep.calendar, std::slice::from_ref(id)) {
            Ok(mut e) => index.append(&mut e),
            Err(AppError::NotFound(_) | AppError::InvalidArgument { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    let mut cases_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &index {
        if let Some(c) = &e.case_id {
            cases_of.entry(e.person_id.clone()).or_default().push(c.clone());
        }
    }
    let tracer = dep.tracer()?;
    index.retain(|e| tracer.knows(&e.person_id));
    if index.len() < 2 {
        return Ok(out);
    }
    let request = crate::trace::TraceRequest {
        rule: crate::trace::Rule::Profile,
        index,
        to: None,
        min_overlap: jiff::SignedDuration::ZERO,
        depth: 1,
    };
    let report = tracer.trace(&request)?;
    for link in &report.links {
        let (Some(exposed), Some(sources)) = (cases_of.get(&link.exposed), cases_of.get(&link.source)) else {
            continue;
        };
        for case in exposed.iter().filter(|c| candidates.contains(c)) {
            if known.get(case).is_some_and(|(bound, _)| link.evidence.from > *bound) {
                continue;
            }
            // The source fell ill (or was sampled) first, and was not infected by the candidate.
            let plausible = |s: &&String| {
                *s != case
                    && known.get(*s).is_some_and(|(bound, infector)| {
                        known.get(case).is_some_and(|(own, _)| bound < own) && infector.as_ref() != Some(case)
                    })
            };
            if let Some(source) = sources.iter().find(plausible) {
                out.entry(case.clone()).or_insert_with(|| source.clone());
            }
        }
    }
    Ok(out)
}

/// The proposals as a GeoJSON FeatureCollection: an area's polygon from its geometry, a
/// place's point from its coordinates; targets without either have no geometry (`null`).
pub fn to_geojson(dep: &Deployment, plan: &ZonePlan) -> Result<geojson::FeatureCollection, AppError> {
    let mut features = Vec::new();
    for p in &plan.designation.proposals {
        let geometry = geometry(dep, &p.target)?;
        let mut properties = match serde_json::to_value(p).expect("a proposal serialises") {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("a proposal is an object"),
        };
        properties.remove("target");
        let (kind, id) = match &p.target {
            Target::Area(id) => ("area", id),
            Target::Place(id) => ("place", id),
        };
        properties.insert("target_kind".into(), kind.into());
        properties.insert("target_id".into(), id.clone().into());
        features.push(geojson::Feature {
            bbox: None,
            geometry,
            id: Some(geojson::feature::Id::String(format!("{kind}:{id}"))),
            properties: Some(properties),
            foreign_members: None,
        });
    }
    Ok(geojson::FeatureCollection { bbox: None, features, foreign_members: None })
}

// ---------------------------------------------------------------- recorded zones

use chainbreak_closedloop::{Action, Category, Reason as MeasureReason, zone_resident_plan, zone_source};
use chainbreak_core::access::{Permission, User};
use chainbreak_core::model::ZoneLevel;
use chainbreak_store::{Scope, ZoneEventRow, ZoneFilter, ZoneRow};
use chainbreak_zones::{
    Change, Round, RoundDue, Status, Why, Zone, ZoneAction, ZoneEvent, next_round, schedule, widening_lapsed,
};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::accounts::Actor;
use crate::episodes::Request;
use crate::reads::{require, scope_of};

const PAGE: usize = 1000;

/// A zone as it is shown: the engine's zone, with its next screening round and review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneView {
    #[serde(flatten)]
    pub zone: Zone,
    /// The next screening round due, and whether it is late (not completed within the
    /// profile's hours of the start of its day).
    pub next_round: Option<RoundDue>,
    pub round_late: bool,
    /// The next day its rules may change it.
    pub next_review: Option<Date>,
}

/// A zone's history: each event as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneHistory {
    pub zone: ZoneView,
    pub events: Vec<ZoneEvent>,
}

fn target_parts(t: &Target) -> (&'static str, &str) {
    match t {
        Target::Area(id) => ("area", id),
        Target::Place(id) => ("place", id),
    }
}

fn unreadable(what: &str, id: &str, err: serde_json::Error) -> AppError {
    AppError::InvalidArgument { argument: "zones", message: format!("{what} of zone `{id}` cannot be read: {err}") }
}

fn zone_of(row: &ZoneRow) -> Result<Zone, AppError> {
    serde_json::from_str(&row.state).map_err(|e| unreadable("the state", &row.id, e))
}

/// The zones matching `filter` in `scope`, every page.
fn zones_where(dep: &Deployment, scope: &Scope, filter: &ZoneFilter) -> Result<Vec<Zone>, AppError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = dep.store.zones_page(scope, filter, after.as_deref(), PAGE)?;
        for row in &page {
            out.push(zone_of(row)?);
        }
        if page.len() < PAGE {
            return Ok(out);
        }
        after = page.last().map(|r| r.id.clone());
    }
}

fn user_scope(dep: &Deployment, user: Option<&User>, permission: Permission) -> Result<Scope, AppError> {
    match user {
        Some(u) => {
            require(u, permission)?;
            scope_of(&*dep.store, u)
        }
        None => Ok(Scope::All),
    }
}

/// The zone, when it exists and lies in `scope`.
fn visible(dep: &Deployment, scope: &Scope, id: &str) -> Result<Zone, AppError> {
    let missing = || AppError::NotFound(format!("zone `{id}` not found"));
    let row = dep.store.zone(id)?.ok_or_else(missing)?;
    if let Scope::Within(_) = scope {
        let filter =
            ZoneFilter { target: Some((row.target_kind.clone(), row.target_id.clone())), ..Default::default() };
        if !dep.store.zones_page(scope, &filter, None, PAGE)?.iter().any(|r| r.id == id) {
            return Err(AppError::NotFound(format!("zone `{id}` not found in your jurisdiction")));
        }
    }
    zone_of(&row)
}

/// The report dates (local) of the cases that count as infections in the zone (an excluded
/// case does not).
fn infections(dep: &Deployment, zone: &Zone) -> Result<Vec<Date>, AppError> {
    let mut days = Vec::new();
    for id in zone.infection_cases() {
        if let Some(case) = dep.store.case(id)?
            && case.classification != chainbreak_core::model::Classification::Excluded
        {
            days.push(dep.calendar.day_of(case.reported_at));
        }
    }
    Ok(days)
}

/// The days of the zone's all-negative rounds completed by `now` (a round entered ahead of its
/// completion does not count yet).
fn negative_rounds(zone: &Zone, now: Timestamp) -> Vec<Date> {
    zone.rounds.iter().filter(|r| r.all_negative() && r.completed_at <= now).map(|r| r.on).collect()
}

/// The zone with its next round and review, as of `now`.
fn view(dep: &Deployment, zone: Zone, now: Timestamp) -> Result<ZoneView, AppError> {
    let Some(state) = zone.state() else {
        return Ok(ZoneView { zone, next_round: None, round_late: false, next_review: None });
    };
    let infections = infections(dep, &zone)?;
    let next = next_round(&dep.profile.screening, &dep.profile.zones, state, &infections, &zone.rounds);
    let hours = i64::from(dep.profile.screening.round_completion_hours.unwrap_or(24));
    let round_late = next.is_some_and(|r| now > dep.calendar.start_of(r.on) + jiff::SignedDuration::from_hours(hours));
    let negative = negative_rounds(&zone, now);
    // The day the rules would change it if nothing new happens (a round due waits for it).
    let horizon = lifecycle_horizon(state.since);
    let change = schedule(&dep.profile.zones, state, &infections, &negative, horizon).first().map(|c| c.on);
    let next_review = match (change, next) {
        (Some(c), Some(r)) => Some(c.min(r.on)),
        (c, r) => c.or(r.map(|r| r.on)),
    };
    Ok(ZoneView { zone, next_round: next, round_late, next_review })
}

fn lifecycle_horizon(since: Date) -> Date {
    since.checked_add(jiff::Span::new().days(366)).unwrap_or(since)
}

/// Stages an event on a zone (applied in memory; written by [`write`]).
struct Staged {
    events: Vec<ZoneEvent>,
    zones: BTreeMap<String, Zone>,
}

impl Staged {
    fn new() -> Self {
        Staged { events: Vec::new(), zones: BTreeMap::new() }
    }

    fn open(&mut self, event: ZoneEvent) -> Result<(), AppError> {
        let zone = Zone::open(&event).map_err(refused)?;
        self.zones.insert(zone.id.clone(), zone);
        self.events.push(event);
        Ok(())
    }

    fn apply(&mut self, zone: &Zone, event: ZoneEvent) -> Result<&Zone, AppError> {
        let z = self.zones.entry(zone.id.clone()).or_insert_with(|| zone.clone());
        z.apply(&event).map_err(refused)?;
        self.events.push(event);
        Ok(z)
    }

    /// The events and rows to write, with one audit record per event.
    fn prepare(&self, dep: &Deployment, actor: &Actor) -> Result<Prepared, AppError> {
        let at = dep.clock.now();
        let events: Vec<ZoneEventRow> = self
            .events
            .iter()
            .map(|e| ZoneEventRow {
                seq: 0,
                zone_id: e.zone.clone(),
                at: e.at,
                actor: e.actor.clone(),
                action: serde_json::to_string(&e.action).expect("zone actions serialise"),
            })
            .collect();
        let mut rows = Vec::new();
        for zone in self.zones.values() {
            let v = view(dep, zone.clone(), at)?;
            let (kind, id) = target_parts(&zone.target);
            rows.push(ZoneRow {
                id: zone.id.clone(),
                target_kind: kind.into(),
                target_id: id.into(),
                status: zone.status.as_str().into(),
                level: zone.level,
                next_review: v.next_review,
                updated_at: zone.updated_at,
                events: zone.events,
                state: serde_json::to_string(zone).expect("zones serialise"),
            });
        }
        let audits = self
            .events
            .iter()
            .map(|e| actor.audit(at, &format!("zone_{}", e.action.name()), "zone", &e.zone))
            .collect();
        Ok(Prepared { events, rows, audits })
    }
}

/// Zone events and rows ready to write, with their audit records.
struct Prepared {
    events: Vec<ZoneEventRow>,
    rows: Vec<ZoneRow>,
    audits: Vec<chainbreak_core::access::AuditRecord>,
}

impl Prepared {
    fn write(&self, batch: &mut dyn chainbreak_store::Batch) -> Result<(), AppError> {
        if !self.events.is_empty() {
            batch.append_zone_events(&self.events, &self.rows)?;
        }
        for a in &self.audits {
            batch.append_audit(a)?;
        }
        Ok(())
    }
}

fn refused(r: chainbreak_zones::Refusal) -> AppError {
    AppError::InvalidArgument { argument: "zone", message: r.to_string() }
}

fn event(dep: &Deployment, actor: &Actor, zone: &str, action: ZoneAction) -> ZoneEvent {
    let at = dep.clock.now();
    ZoneEvent { zone: zone.to_string(), at, on: dep.calendar.day_of(at), actor: actor.name.clone(), action }
}

/// What recording proposals did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    pub plan: ZonePlan,
    /// New zones, proposed.
    pub proposed: Vec<String>,
    /// Open zones that gained reasons (a raise when at a higher level).
    pub updated: Vec<String>,
    /// Proposals whose every reason is recorded already (on this target's zones, open or past:
    /// a case widens a zone once).
    pub unchanged: usize,
}

/// Proposes zones for `case_ids` ([`propose`]; every case in the user's jurisdiction) and
/// records them, each zone `{area|place}:{target}:{n}` (the target's n-th zone): a new zone on a target with
/// no open zone, or the new reasons added to the open one. A reason recorded once on a target
/// (on any of its zones, past ones included) is not proposed again.
pub fn record(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    case_ids: &[String],
) -> Result<Recorded, AppError> {
    let scope = user_scope(dep, user, Permission::ManageZones)?;
    if let Scope::Within(_) = scope {
        let ids: Vec<&str> = case_ids.iter().map(String::as_str).collect();
        for (id, inside) in ids.iter().zip(dep.store.in_scope(&scope, chainbreak_store::Entity::Case, &ids)?) {
            if !inside {
                return Err(AppError::NotFound(format!("case `{id}` not found in your jurisdiction")));
            }
        }
    }
    let plan = propose(dep, case_ids)?;
    let mut staged = Staged::new();
    let (mut proposed, mut updated, mut unchanged) = (Vec::new(), Vec::new(), 0);
    for p in &plan.designation.proposals {
        let (kind, id) = target_parts(&p.target);
        let filter = ZoneFilter { target: Some((kind.into(), id.into())), ..Default::default() };
        let existing = zones_where(dep, &Scope::All, &filter)?;
        let new: Vec<chainbreak_zones::Reason> =
            p.reasons.iter().filter(|r| !existing.iter().any(|z| z.reasons.contains(r))).cloned().collect();
        if new.is_empty() {
            unchanged += 1;
            continue;
        }
        match existing.iter().find(|z| z.status.is_open()) {
            Some(open) => {
                let e = event(dep, actor, &open.id, ZoneAction::AddReasons { level: p.level, reasons: new });
                staged.apply(open, e)?;
                updated.push(open.id.clone());
            }
            None => {
                let zone_id = format!("{kind}:{id}:{}", existing.len() + 1);
                let e = event(
                    dep,
                    actor,
                    &zone_id,
                    ZoneAction::Propose {
                        target: p.target.clone(),
                        level: p.level,
                        needs_confirmation: p.needs_confirmation,
                        widening: p.widening,
                        reasons: new,
                    },
                );
                staged.open(e)?;
                proposed.push(zone_id);
            }
        }
    }
    if !staged.events.is_empty() {
        let prepared = staged.prepare(dep, actor)?;
        let mut batch = dep.store.begin(dep.clock.now())?;
        prepared.write(&mut *batch)?;
        batch.commit()?;
    }
    Ok(Recorded { plan, proposed, updated, unchanged })
}

/// The zones in the user's jurisdiction matching `filter`, as of now.
pub fn list(dep: &Deployment, user: Option<&User>, filter: &ZoneFilter) -> Result<Vec<ZoneView>, AppError> {
    let scope = user_scope(dep, user, Permission::ReadRecords)?;
    let now = dep.clock.now();
    zones_where(dep, &scope, filter)?.into_iter().map(|z| view(dep, z, now)).collect()
}

/// A page of the zones in the user's jurisdiction matching `filter`, by id after `after`.
pub fn page(
    dep: &Deployment,
    user: Option<&User>,
    filter: &ZoneFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<ZoneView>, AppError> {
    let scope = user_scope(dep, user, Permission::ReadRecords)?;
    let now = dep.clock.now();
    dep.store.zones_page(&scope, filter, after, limit)?.iter().map(|r| view(dep, zone_of(r)?, now)).collect()
}

/// A zone with its whole history.
pub fn show(dep: &Deployment, user: Option<&User>, id: &str) -> Result<ZoneHistory, AppError> {
    let scope = user_scope(dep, user, Permission::ReadRecords)?;
    let zone = visible(dep, &scope, id)?;
    let events = dep
        .store
        .zone_events(id)?
        .into_iter()
        .map(|e| {
            let action = serde_json::from_str(&e.action).map_err(|err| unreadable("an event", id, err))?;
            Ok(ZoneEvent { zone: e.zone_id, at: e.at, on: dep.calendar.day_of(e.at), actor: e.actor, action })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    // The event's own day, where it carries one (a lowering is dated by its rule).
    let events = events
        .into_iter()
        .map(|mut e| {
            if let ZoneAction::Lower { change } = &e.action {
                e.on = change.on;
            }
            e
        })
        .collect();
    Ok(ZoneHistory { zone: view(dep, zone, dep.clock.now())?, events })
}

/// A commander's decision on a zone (DESIGN.md §4a).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Confirm the proposal, or its pending raise.
    Confirm { note: Option<String> },
    /// Reject the proposal, or its pending raise.
    Reject { note: String },
    /// Lift the zone before its rule does.
    Lift { note: String },
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decided {
    #[serde(flatten)]
    pub zone: ZoneView,
    /// Residents whose measure was proposed (or whose open measure took this zone's reason).
    pub residents_proposed: usize,
    /// Residents' measures that ended or lost this zone's reason.
    pub measures_ended: usize,
}

/// The persons a zone's measure is for: those living in its area, or the staff of its place.
fn residents(dep: &Deployment, zone: &Zone) -> Result<Vec<String>, AppError> {
    match &zone.target {
        Target::Area(area) => {
            let scope = Scope::Within(area.clone());
            let mut out = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = dep.store.persons_page(&scope, after.as_deref(), PAGE)?;
                out.extend(page.iter().map(|p| p.id.clone()));
                if page.len() < PAGE {
                    return Ok(out);
                }
                after = page.last().map(|p| p.id.clone());
            }
        }
        Target::Place(place) => Ok(dep.store.staff_of(place)?.into_iter().map(|s| s.person_id).collect()),
    }
}

/// The measure a zone in force at its level puts its residents under.
fn resident_measure(dep: &Deployment, zone: &Zone) -> Option<chainbreak_core::model::MeasureKind> {
    if zone.status != Status::Confirmed {
        return None;
    }
    dep.profile.zones.levels.iter().find(|l| l.level == zone.level).and_then(|l| l.resident_measure)
}

/// The requests that put every resident of `zone` without a measure or an exemption for it
/// under the level's measure, proposed; and (when the zone no longer asks for one) those that
/// end its residents' measures.
fn measure_requests(
    dep: &Deployment,
    measures: &BTreeMap<String, crate::episodes::ZoneMeasures>,
    zone: &Zone,
    owner: &str,
) -> Result<(Vec<Request>, usize, usize), AppError> {
    let source = zone_source(&zone.id);
    let none = crate::episodes::ZoneMeasures::default();
    let crate::episodes::ZoneMeasures { open, exempt } = measures.get(&source).unwrap_or(&none);
    let mut requests = Vec::new();
    match resident_measure(dep, zone) {
        Some(kind) => {
            let (kind_of_target, target) = target_parts(&zone.target);
            for person in residents(dep, zone)? {
                if open.contains_key(&person) || exempt.contains(&person) {
                    continue;
                }
                requests.push(Request::Open {
                    id: None,
                    person,
                    category: Category::ZoneResident,
                    plan: Some(zone_resident_plan(kind)),
                    reason: MeasureReason {
                        source: source.clone(),
                        via: None,
                        at: dep.clock.now(),
                        evidence: Some(format!("{} zone {} on {kind_of_target} {target}", zone.level, zone.id)),
                    },
                    owner: owner.to_string(),
                    confirmed: false,
                });
            }
            let n = requests.len();
            Ok((requests, n, 0))
        }
        None => {
            for episode in open.values() {
                requests.push(Request::Act {
                    episode: episode.clone(),
                    action: Action::ZoneEnded { zone: zone.id.clone() },
                });
            }
            let n = requests.len();
            Ok((requests, 0, n))
        }
    }
}

/// A commander confirms, rejects or lifts a zone; confirming a level with a resident measure
/// proposes it for each resident, lifting ends them — in the same batch as the decision.
/// `owner`: the unit that owns the residents' new measures.
pub fn decide(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    id: &str,
    decision: Decision,
    owner: &str,
) -> Result<Decided, AppError> {
    let scope = user_scope(dep, user, Permission::ManageZones)?;
    let zone = visible(dep, &scope, id)?;
    let action = match decision {
        Decision::Confirm { note } => ZoneAction::Confirm { note },
        Decision::Reject { note } => ZoneAction::Reject { note },
        Decision::Lift { note } => ZoneAction::Lift { note },
    };
    let mut staged = Staged::new();
    let after = staged.apply(&zone, event(dep, actor, id, action))?.clone();
    let measures = crate::episodes::zone_measures(dep)?;
    let (requests, residents_proposed, measures_ended) = measure_requests(dep, &measures, &after, owner)?;
    let prepared = staged.prepare(dep, actor)?;
    apply_with_measures(dep, actor, &requests, prepared)?;
    Ok(Decided { zone: view(dep, after, dep.clock.now())?, residents_proposed, measures_ended })
}

/// Writes zone changes and the residents' measure requests in one batch, all or nothing.
fn apply_with_measures(
    dep: &mut Deployment,
    actor: &Actor,
    requests: &[Request],
    prepared: Prepared,
) -> Result<(), AppError> {
    if requests.is_empty() {
        let mut batch = dep.store.begin(dep.clock.now())?;
        prepared.write(&mut *batch)?;
        batch.commit()?;
        return Ok(());
    }
    crate::episodes::transition_with(dep, actor, None, requests, |batch| prepared.write(batch))?;
    Ok(())
}

/// Records a completed screening round of a confirmed zone (its day, how many were tested and
/// found positive; completed now unless said).
pub fn record_round(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    id: &str,
    round: Round,
) -> Result<ZoneView, AppError> {
    let scope = user_scope(dep, user, Permission::IngestData)?;
    let zone = visible(dep, &scope, id)?;
    let mut staged = Staged::new();
    let after = staged.apply(&zone, event(dep, actor, id, ZoneAction::Round { round }))?.clone();
    let prepared = staged.prepare(dep, actor)?;
    let mut batch = dep.store.begin(dep.clock.now())?;
    prepared.write(&mut *batch)?;
    batch.commit()?;
    view(dep, after, dep.clock.now())
}

/// Whether a case's record says where it came from: an infector case, or imported.
fn source_known(dep: &Deployment, case_id: &str) -> Result<bool, AppError> {
    Ok(dep.store.case(case_id)?.is_some_and(|c| c.infector_case_id.is_some() || c.imported))
}

/// A zone lowered by its rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lowered {
    pub zone: String,
    #[serde(flatten)]
    pub change: Change,
}

/// A screening round due.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundTask {
    pub zone: String,
    #[serde(flatten)]
    pub due: RoundDue,
    pub late: bool,
}

/// What a review did and what is due.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    pub today: Date,
    pub lowered: Vec<Lowered>,
    /// Lowered to low by their rule, or county zones with no zone left in them.
    pub lifted: Vec<String>,
    pub lapsed: Vec<String>,
    pub residents_proposed: usize,
    pub measures_ended: usize,
    pub rounds_due: Vec<RoundTask>,
}

/// The daily review of the zones in the user's jurisdiction, as of now: widenings whose cases'
/// sources are all found (or whose period passed) lapse; zones in force are lowered and lifted
/// on the days their rules say; a county's low zone is lifted once no higher zone in force
/// lies in it;
/// residents of zones in force with a resident measure who have neither a measure nor an
/// exemption get one proposed, and measures of zones that no longer ask for one end. All in
/// one batch. `owner`: the unit that owns new residents' measures.
pub fn review(dep: &mut Deployment, actor: &Actor, user: Option<&User>, owner: &str) -> Result<Review, AppError> {
    let scope = user_scope(dep, user, Permission::ManageZones)?;
    let now = dep.clock.now();
    let today = dep.calendar.day_of(now);
    let open = zones_where(dep, &scope, &ZoneFilter { open: true, ..Default::default() })?;
    let mut staged = Staged::new();
    let mut report = Review {
        today,
        lowered: Vec::new(),
        lifted: Vec::new(),
        lapsed: Vec::new(),
        residents_proposed: 0,
        measures_ended: 0,
        rounds_due: Vec::new(),
    };
    // The widenings' cases whose source the trace engine now finds.
    let mut widened: Vec<String> = open
        .iter()
        .filter(|z| z.widening)
        .flat_map(|z| z.reasons.iter().filter(|r| r.why == Why::UnknownSource).map(|r| r.case_id.clone()))
        .collect();
    widened.sort();
    widened.dedup();
    let linked = linked_sources(dep, &widened)?;
    for zone in &open {
        if zone.widening {
            let mut unknown: Vec<&str> =
                zone.reasons.iter().filter(|r| r.why == Why::UnknownSource).map(|r| r.case_id.as_str()).collect();
            unknown.dedup();
            let mut all_found = !unknown.is_empty();
            for c in &unknown {
                all_found &= linked.contains_key(*c) || source_known(dep, c)?;
            }
            let widened_on = zone.since.unwrap_or(zone.proposed_on);
            if widening_lapsed(&dep.profile.zones, widened_on, all_found.then_some(today), today) {
                let why = if all_found {
                    format!("the source of {} is found", unknown.join(", "))
                } else {
                    "the widening's period passed".to_string()
                };
                staged.apply(zone, event(dep, actor, &zone.id, ZoneAction::Lapse { why }))?;
                report.lapsed.push(zone.id.clone());
                continue;
            }
        }
        let Some(state) = zone.state() else { continue };
        let infections = infections(dep, zone)?;
        let negative = negative_rounds(zone, now);
        for change in schedule(&dep.profile.zones, state, &infections, &negative, today) {
            let mut e = event(dep, actor, &zone.id, ZoneAction::Lower { change });
            e.on = change.on;
            let after = staged.apply(zone, e)?;
            report.lowered.push(Lowered { zone: zone.id.clone(), change });
            if after.status == Status::Lifted {
                report.lifted.push(zone.id.clone());
            }
        }
    }
    // A county's low zone stays while a higher zone in force lies in it (proposals are not).
    for zone in &open {
        let Target::Area(area) = &zone.target else { continue };
        let now_zone = staged.zones.get(&zone.id).unwrap_or(zone);
        if now_zone.status != Status::Confirmed
            || now_zone.level != ZoneLevel::Low
            || !zone.reasons.iter().all(|r| r.why == Why::County)
        {
            continue;
        }
        let inside = zones_where(dep, &Scope::Within(area.clone()), &ZoneFilter { open: true, ..Default::default() })?;
        let higher = inside.iter().any(|z| {
            let z = staged.zones.get(&z.id).unwrap_or(z);
            z.id != zone.id && z.status == Status::Confirmed && z.level != ZoneLevel::Low
        });
        if !higher {
            let note = "no high or medium zone remains in it".to_string();
            staged.apply(zone, event(dep, actor, &zone.id, ZoneAction::Lift { note }))?;
            report.lifted.push(zone.id.clone());
        }
    }
    // Residents' measures, and rounds due, by each zone as it now stands.
    let mut requests = Vec::new();
    let measures = crate::episodes::zone_measures(dep)?;
    for zone in &open {
        let z = staged.zones.get(&zone.id).unwrap_or(zone).clone();
        let (mut r, proposed, ended) = measure_requests(dep, &measures, &z, owner)?;
        requests.append(&mut r);
        report.residents_proposed += proposed;
        report.measures_ended += ended;
        let v = view(dep, z, now)?;
        if let Some(due) = v.next_round {
            report.rounds_due.push(RoundTask { zone: zone.id.clone(), due, late: v.round_late });
        }
    }
    let prepared = staged.prepare(dep, actor)?;
    apply_with_measures(dep, actor, &requests, prepared)?;
    Ok(report)
}

/// A zone as the public sees it (DESIGN.md §6: no case, no person).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicZone {
    pub id: String,
    pub level: ZoneLevel,
    pub target_kind: &'static str,
    pub target_id: String,
    /// The area's or the place's name.
    pub name: Option<String>,
    /// The area's level, or `place`.
    pub drawn_at: String,
    pub since: Option<Date>,
    pub next_review: Option<Date>,
}

/// The zones in force (confirmed), for the public page.
pub fn published(dep: &Deployment) -> Result<Vec<PublicZone>, AppError> {
    let now = dep.clock.now();
    let mut out = Vec::new();
    for zone in zones_where(dep, &Scope::All, &ZoneFilter { status: Some("confirmed".into()), ..Default::default() })? {
        let (kind, id) = target_parts(&zone.target);
        let (name, drawn_at) = match &zone.target {
            Target::Area(a) => dep.store.area(a)?.map(|a| (Some(a.name), a.level)).unwrap_or_default(),
            Target::Place(p) => (dep.store.place(p)?.and_then(|p| p.name), "place".to_string()),
        };
        let (kind, id) = (kind, id.to_string());
        let v = view(dep, zone, now)?;
        out.push(PublicZone {
            id: v.zone.id.clone(),
            level: v.zone.level,
            target_kind: kind,
            target_id: id,
            name,
            drawn_at,
            since: v.zone.since,
            next_review: v.next_review,
        });
    }
    Ok(out)
}

/// The published zones as a GeoJSON FeatureCollection (area polygons, place points).
pub fn published_geojson(dep: &Deployment) -> Result<geojson::FeatureCollection, AppError> {
    let mut features = Vec::new();
    for z in published(dep)? {
        let target = if z.target_kind == "area" {
            Target::Area(z.target_id.clone())
        } else {
            Target::Place(z.target_id.clone())
        };
        let properties = match serde_json::to_value(&z).expect("a zone serialises") {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("a zone is an object"),
        };
        features.push(geojson::Feature {
            bbox: None,
            geometry: geometry(dep, &target)?,
            id: Some(geojson::feature::Id::String(z.id.clone())),
            properties: Some(properties),
            foreign_members: None,
        });
    }
    Ok(geojson::FeatureCollection { bbox: None, features, foreign_members: None })
}

/// The open zones (proposed or confirmed) of the user's jurisdiction with their shapes, and the
/// counties they lie in: the command centre's zone map.
#[allow(clippy::type_complexity)]
pub fn map(
    dep: &Deployment,
    user: Option<&User>,
) -> Result<(Vec<crate::public::MapArea>, Vec<(ZoneView, Option<geojson::Geometry>)>), AppError> {
    let open = list(dep, user, &ZoneFilter { open: true, ..Default::default() })?;
    let targets: Vec<(&str, &str)> = open.iter().map(|z| target_parts(&z.zone.target)).collect();
    let base = crate::public::base_areas(dep, &targets)?;
    let mut out = Vec::new();
    for z in open {
        let g = geometry(dep, &z.zone.target)?;
        out.push((z, g));
    }
    Ok((base, out))
}

/// The area `start` (when known) and every area above it, finest first (the store refuses
/// cycles in the hierarchy; an area seen twice ends the walk all the same).
pub(crate) fn area_and_above(
    dep: &Deployment,
    start: Option<String>,
) -> Result<Vec<chainbreak_core::model::Area>, AppError> {
    let mut out: Vec<chainbreak_core::model::Area> = Vec::new();
    let mut next = start;
    while let Some(id) = next.take() {
        if out.iter().any(|a| a.id == id) {
            break;
        }
        let Some(area) = dep.store.area(&id)? else { break };
        next = area.parent.clone();
        out.push(area);
    }
    Ok(out)
}

/// The highest zone in force over an origin (an area or a place id of this deployment): a zone
/// on the place, on its area or on any area above; none when no confirmed zone covers it.
pub fn origin_zone(dep: &Deployment, origin: &str) -> Result<Option<(String, ZoneLevel)>, AppError> {
    let mut targets = vec![("place", origin.to_string())];
    let start = match dep.store.place(origin)? {
        Some(p) => p.area,
        None => Some(origin.to_string()),
    };
    targets.extend(area_and_above(dep, start)?.into_iter().map(|a| ("area", a.id)));
    let mut best: Option<(String, ZoneLevel)> = None;
    for (kind, id) in targets {
        let filter =
            ZoneFilter { target: Some((kind.to_string(), id)), status: Some("confirmed".into()), ..Default::default() };
        for row in dep.store.zones_page(&Scope::All, &filter, None, PAGE)? {
            if best.as_ref().is_none_or(|(_, l)| chainbreak_zones::severity(row.level) > chainbreak_zones::severity(*l))
            {
                best = Some((row.id, row.level));
            }
        }
    }
    Ok(best)
}
