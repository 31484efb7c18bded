//! Closed-loop management (闭环管理) over the store: the engine's episodes ([`chainbreak_closedloop`])
//! kept in memory, rebuilt from the stored events on start and brought up to date with events
//! other processes wrote; transitions checked (role, jurisdiction, the engine's rules, rooms)
//! and written all or nothing, each as an event with the episode's new state and an audit
//! record.

use std::collections::BTreeMap;
use std::time::Instant;

use chainbreak_closedloop::facility::{Facility, FacilityError, Occupant, RoomState};
use chainbreak_closedloop::{Action, Category, Episode, Event, Reason, Registry, Rules, Task};
use chainbreak_core::access::{Permission, User};
use chainbreak_core::model::{EpisodeState, OriginRisk, ZoneLevel};
use chainbreak_store::{Entity, EpisodeEvent, EpisodeFilter, EpisodeRow, FacilityRow, Scope, Store};
use jiff::Timestamp;
use serde::Serialize;

use crate::accounts::Actor;
use crate::{AppError, Deployment};

/// The episodes in memory, current to a stored event `seq`.
#[derive(Debug, Default)]
pub struct ClosedLoop {
    registry: Registry,
    seq: i64,
}

/// What loading took.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadStats {
    pub episodes: usize,
    pub open: usize,
    pub events: u64,
    pub seconds: f64,
}

fn rules(dep: &Deployment) -> Rules<'_> {
    Rules { profile: &dep.profile, calendar: &dep.calendar }
}

fn stored(e: &EpisodeEvent) -> Result<Event, AppError> {
    serde_json::from_str(&e.action).map_err(|err| AppError::InvalidArgument {
        argument: "episode_events",
        message: format!("event {} of episode `{}` cannot be read: {err}", e.seq, e.episode_id),
    })
}

impl ClosedLoop {
    /// Rebuilds every episode from the store's events (a restart).
    pub fn load(store: &dyn Store, rules: &Rules) -> Result<(Self, LoadStats), AppError> {
        let started = Instant::now();
        let mut me = ClosedLoop::default();
        let events = me.catch_up(store, rules)?;
        let stats = LoadStats {
            episodes: me.registry.episodes.len(),
            open: me.registry.episodes.values().filter(|e| e.is_open()).count(),
            events,
            seconds: started.elapsed().as_secs_f64(),
        };
        Ok((me, stats))
    }

    /// Applies the events stored since the last one seen (written by another process).
    pub fn catch_up(&mut self, store: &dyn Store, rules: &Rules) -> Result<u64, AppError> {
        let mut n = 0u64;
        let mut bad = None;
        let registry = &mut self.registry;
        self.seq = store.scan_episode_events(self.seq, &mut |batch| {
            // Reading the JSON is the cost of a restart: in parallel; applying, in order.
            use rayon::prelude::*;
            let parsed: Vec<Result<Event, AppError>> = batch.par_iter().map(stored).collect();
            for (e, event) in batch.iter().zip(parsed) {
                n += 1;
                let applied = event.and_then(|event| {
                    registry.replay(&e.episode_id, &event, rules).map_err(|why| AppError::InvalidArgument {
                        argument: "episode_events",
                        message: format!("event {} of episode `{}` no longer applies: {why}", e.seq, e.episode_id),
                    })
                });
                if let Err(err) = applied {
                    // Accepted when written: the profile changed since, or the store was
                    // edited by hand. Kept, logged, never fatal.
                    tracing::warn!(%err, "episode event skipped");
                    bad.get_or_insert(err);
                }
            }
        })?;
        Ok(n)
    }

    pub fn episode(&self, id: &str) -> Option<&Episode> {
        self.registry.episodes.get(id)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// The open episodes now, as their events make them, by id.
pub fn current(dep: &mut Deployment) -> Result<Vec<(String, Episode)>, AppError> {
    let mut lp = dep.closed_loop.take().unwrap_or_default();
    let caught = lp.catch_up(&*dep.store, &rules(dep));
    let open =
        lp.registry.episodes.iter().filter(|(_, e)| e.is_open()).map(|(id, e)| (id.clone(), e.clone())).collect();
    dep.closed_loop = Some(lp);
    caught?;
    Ok(open)
}

/// Zone residents' measures by the zone source they name ([`chainbreak_closedloop::zone_source`]).
#[derive(Debug, Clone, Default)]
pub struct ZoneMeasures {
    /// The open ones, by person (episode id).
    pub open: BTreeMap<String, String>,
    /// The persons whose such measure was closed without the zone ending it — rejected,
    /// closed, lost —: their recorded exemption.
    pub exempt: std::collections::BTreeSet<String>,
}

/// Every zone residents' measure, by the zone sources its reasons name (one pass over the
/// episodes).
pub fn zone_measures(dep: &mut Deployment) -> Result<BTreeMap<String, ZoneMeasures>, AppError> {
    let mut lp = dep.closed_loop.take().unwrap_or_default();
    let caught = lp.catch_up(&*dep.store, &rules(dep));
    let mut out: BTreeMap<String, ZoneMeasures> = BTreeMap::new();
    for (id, e) in lp.registry.episodes.iter().filter(|(_, e)| e.category == Category::ZoneResident) {
        for r in &e.reasons {
            let m = out.entry(r.source.clone()).or_default();
            if e.is_open() {
                m.open.insert(e.person.clone(), id.clone());
            } else {
                m.exempt.insert(e.person.clone());
            }
        }
    }
    dep.closed_loop = Some(lp);
    caught?;
    Ok(out)
}

/// Rebuilds the deployment's episodes from the stored events (what a restart does), and says
/// how long it took.
pub fn load(dep: &mut Deployment) -> Result<LoadStats, AppError> {
    let (lp, stats) = ClosedLoop::load(&*dep.store, &rules(dep))?;
    dep.closed_loop = Some(lp);
    Ok(stats)
}

/// The episode row for the store's lists.
fn row(id: &str, ep: &Episode, rules: &Rules, at: Timestamp) -> EpisodeRow {
    let in_room = matches!(ep.state, EpisodeState::Transferred | EpisodeState::InMeasure | EpisodeState::Extended);
    EpisodeRow {
        id: id.to_string(),
        person_id: ep.person.clone(),
        category: ep.category.as_str().to_string(),
        state: ep.state,
        owner_unit: ep.owner.clone(),
        deadline: ep.deadline(rules),
        facility_id: ep.facility.as_ref().filter(|_| in_room).map(|f| f.0.clone()),
        room_id: ep.facility.as_ref().filter(|_| in_room).map(|f| f.1.clone()),
        opened_at: ep.opened,
        updated_at: at,
        events: ep.events as u32,
    }
}

/// One transition asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Open an episode (or add the reason to the person's open one of the category);
    /// `confirmed`: opened by a person's decision, confirmed at once (DESIGN.md §4a).
    Open {
        /// The new episode's id (default `EP-{person}-{category}-{unix time}`).
        id: Option<String>,
        person: String,
        category: Category,
        /// The measure (default: the profile's for the category).
        plan: Option<chainbreak_core::profile::MeasurePlan>,
        reason: Reason,
        owner: String,
        confirmed: bool,
    },
    /// Any other action on an episode. A transfer with an empty room takes the first room the
    /// facility's rules allow.
    Act { episode: String, action: Action },
}

/// What a transition did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub episode_id: String,
    pub state: EpisodeState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// A positive test: a suspected case to open and trace; a promotion.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<String>,
    /// What a positive set off ([`respond_to_positives`]), when the caller ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<PositiveResponse>,
}

/// The measure plan of a category under the profile.
fn plan_of(dep: &Deployment, category: Category) -> Result<chainbreak_core::profile::MeasurePlan, AppError> {
    let p = &dep.profile;
    let plan = match category {
        Category::Close => Some(p.close_contact_measure.clone()),
        Category::Secondary => p.secondary_contact.measure.clone(),
        Category::Grid => p.grid.measure.clone(),
        // A case's own episode: isolation until discharge, by `[closed_loop.isolation]`.
        Category::Case => Some(chainbreak_closedloop::isolation_plan()),
        _ => None,
    };
    plan.ok_or_else(|| AppError::InvalidArgument {
        argument: "category",
        message: format!("profile `{}` gives no measure for `{}`", p.name, category.as_str()),
    })
}

/// Quarantine facilities as the engine sees them: rooms and their states from the store, and
/// who is in them from the open episodes.
fn facilities(dep: &Deployment, lp: &ClosedLoop) -> Result<BTreeMap<String, Facility>, AppError> {
    let mut out = BTreeMap::new();
    for f in dep.store.facilities()? {
        let rooms: Vec<(&str, u32)> = f.rooms.iter().map(|r| (r.id.as_str(), r.capacity)).collect();
        let mut facility = Facility::new(&f.id, &rooms)
            .map_err(|e| AppError::InvalidArgument { argument: "facility", message: e.to_string() })?;
        for r in &f.rooms {
            if let Some(room) = facility.rooms.get_mut(&r.id) {
                room.state = match r.state.as_str() {
                    "occupied" => RoomState::Occupied,
                    "to_disinfect" => RoomState::ToDisinfect,
                    _ => RoomState::Clean,
                };
            }
        }
        out.insert(f.id, facility);
    }
    let occupants: Vec<(&String, &Episode, &String, &String)> = lp
        .registry
        .episodes
        .iter()
        .filter(|(_, ep)| {
            matches!(ep.state, EpisodeState::Transferred | EpisodeState::InMeasure | EpisodeState::Extended)
        })
        .filter_map(|(id, ep)| ep.facility.as_ref().map(|(f, r)| (id, ep, f, r)))
        .collect();
    // Households matter only where the profile lets them share a room.
    let households = if dep.profile.closed_loop.household_may_share {
        let persons: Vec<&str> = occupants.iter().map(|o| o.1.person.as_str()).collect();
        dep.store.households_of(&persons)?
    } else {
        vec![None; occupants.len()]
    };
    for ((id, ep, fid, rid), household) in occupants.into_iter().zip(households) {
        if let Some(room) = out.get_mut(fid).and_then(|f| f.rooms.get_mut(rid)) {
            room.occupants.push(Occupant {
                episode: id.clone(),
                person: ep.person.clone(),
                household,
                group: ep.category,
            });
            room.state = RoomState::Occupied;
        }
    }
    Ok(out)
}

/// A new episode id for a person and category at `at` (`EP-{person}-{category}-{unix time}`,
/// with `-2`, `-3`... when taken).
fn fresh_id(registry: &Registry, person: &str, category: Category, at: Timestamp) -> String {
    let base = format!("EP-{person}-{}-{}", category.as_str(), at.as_second());
    let mut id = base.clone();
    let mut n = 1;
    while registry.episodes.contains_key(&id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    id
}

/// Applies transitions, all or nothing: each is checked (the user's role and jurisdiction —
/// none: the console operator —, the engine's rules, the rooms) in order before anything is
/// written; then the events, the episodes' new states, room states and one audit record per
/// transition go to the store in one batch.
pub fn transition(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    requests: &[Request],
) -> Result<Vec<Outcome>, AppError> {
    Ok(transition_with(dep, actor, user, requests, |_| Ok(()))?.0)
}

/// [`transition`], with more writes (`also`) in the same batch: the transitions and they are
/// stored together or not at all (a confirmed proposal and the episode it opens).
pub fn transition_with<T>(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    requests: &[Request],
    also: impl FnOnce(&mut dyn chainbreak_store::Batch) -> Result<T, AppError>,
) -> Result<(Vec<Outcome>, T), AppError> {
    let at = dep.clock.now();
    let scope = match user {
        Some(u) => crate::reads::scope_of(&*dep.store, u)?,
        None => Scope::All,
    };
    let mut lp = dep.closed_loop.take().unwrap_or_default();
    if let Err(e) = lp.catch_up(&*dep.store, &rules(dep)) {
        dep.closed_loop = Some(lp);
        return Err(e);
    }
    lp.registry.begin();
    let result = (|| {
        let work = &mut lp;
        // Rooms are read only when a transition moves someone into or out of one.
        let mut rooms: Option<BTreeMap<String, Facility>> = None;
        let mut events: Vec<(String, Event)> = Vec::new();
        let mut room_states: BTreeMap<(String, String), &'static str> = BTreeMap::new();
        let mut outcomes = Vec::new();
        for (i, req) in requests.iter().enumerate() {
            let refused =
                |why: String| AppError::InvalidArgument { argument: "transition", message: format!("[{i}] {why}") };
            let (person, permission) = match req {
                Request::Open { person, .. } => (person.clone(), Permission::ConfirmContacts),
                Request::Act { episode, action } => {
                    let ep = work
                        .registry
                        .episodes
                        .get(episode)
                        .ok_or_else(|| AppError::NotFound(format!("episode `{episode}` not found")))?;
                    let p = match action {
                        Action::Confirm | Action::Reject => Permission::ConfirmContacts,
                        Action::Discharge { .. } => Permission::DischargeCases,
                        _ => Permission::ManageEpisodes,
                    };
                    (ep.person.clone(), p)
                }
            };
            if let Some(u) = user {
                crate::reads::require(u, permission)?;
                if dep.store.in_scope(&scope, Entity::Person, &[person.as_str()])?.first() != Some(&true) {
                    return Err(match req {
                        Request::Act { episode, .. } => {
                            AppError::NotFound(format!("episode `{episode}` not found in your jurisdiction"))
                        }
                        Request::Open { .. } => {
                            AppError::NotFound(format!("person `{person}` not found in your jurisdiction"))
                        }
                    });
                }
            }
            let rules = rules(dep);
            let (id, event, effects) = match req {
                Request::Open { id: wanted, person, category, plan, reason, owner, confirmed } => {
                    if dep.store.person(person)?.is_none() {
                        return Err(AppError::NotFound(format!("person `{person}` is not registered")));
                    }
                    let open = Event {
                        at,
                        actor: actor.name.clone(),
                        action: Action::Open {
                            person: person.clone(),
                            category: *category,
                            plan: match plan {
                                Some(p) => p.clone(),
                                None => plan_of(dep, *category)?,
                            },
                            reason: reason.clone(),
                            owner: owner.clone(),
                        },
                        note: actor.reason.clone(),
                    };
                    let new_id = match wanted {
                        Some(id) if id.trim().is_empty() || id.len() > 128 => {
                            return Err(refused("an episode id is 1 to 128 characters".into()));
                        }
                        Some(id) => id.clone(),
                        None => fresh_id(&work.registry, person, *category, at),
                    };
                    let (id, applied) =
                        work.registry.open_or_add(&new_id, &open, &rules).map_err(|why| refused(why.to_string()))?;
                    events.push((id.clone(), applied));
                    if *confirmed && work.registry.episodes[&id].state == EpisodeState::Proposed {
                        let confirm = Event { at, actor: actor.name.clone(), action: Action::Confirm, note: None };
                        work.registry.apply(&id, &confirm, &rules).map_err(|why| refused(why.to_string()))?;
                        events.push((id.clone(), confirm));
                    }
                    (id, None, Vec::new())
                }
                Request::Act { episode, action } => {
                    let mut action = action.clone();
                    let ep = &work.registry.episodes[episode];
                    let was_in = ep.facility.clone().filter(|_| {
                        matches!(ep.state, EpisodeState::Transferred | EpisodeState::InMeasure | EpisodeState::Extended)
                    });
                    if (matches!(action, Action::Transfer { .. }) || was_in.is_some()) && rooms.is_none() {
                        rooms = Some(facilities(dep, work)?);
                    }
                    let ep = &work.registry.episodes[episode];
                    if let Action::Transfer { facility, room } = &mut action {
                        let f = rooms
                            .as_mut()
                            .expect("read above")
                            .get_mut(facility.as_str())
                            .ok_or_else(|| AppError::NotFound(format!("facility `{facility}` not found")))?;
                        let household = if dep.profile.closed_loop.household_may_share {
                            dep.store.households_of(&[ep.person.as_str()])?.pop().flatten()
                        } else {
                            None
                        };
                        let who = Occupant {
                            episode: episode.clone(),
                            person: ep.person.clone(),
                            household,
                            group: ep.category,
                        };
                        if room.is_empty() {
                            *room = f
                                .assign(who, dep.profile.closed_loop.household_may_share)
                                .map_err(|e| refused(e.to_string()))?;
                        } else {
                            f.place(who, room, dep.profile.closed_loop.household_may_share).map_err(|e| match e {
                                FacilityError::UnknownRoom(..) => AppError::NotFound(e.to_string()),
                                e => refused(e.to_string()),
                            })?;
                        }
                        room_states.insert((facility.clone(), room.clone()), "occupied");
                    }
                    let mut event = Event { at, actor: actor.name.clone(), action, note: actor.reason.clone() };
                    let mut effects =
                        work.registry.apply(episode, &event, &rules).map_err(|why| refused(why.to_string()))?;
                    // A positive converted the episode: the person's own isolation opens (or,
                    // open already, takes the reason), proposed for the case's report to
                    // confirm; the converted episode's event names it.
                    let mut isolations = Vec::new();
                    for effect in &effects {
                        if let chainbreak_closedloop::Effect::SuspectedCase { person, sampled_at } = effect {
                            let lab = match &event.action {
                                Action::Test { lab_test: Some(t), .. } => Some(t.clone()),
                                _ => None,
                            };
                            let source = format!(
                                "{}{}",
                                chainbreak_closedloop::POSITIVE_SOURCE,
                                lab.as_deref().unwrap_or(episode.as_str())
                            );
                            let evidence = match &lab {
                                Some(t) => format!("positive lab test {t} converted episode {episode}"),
                                None => format!("positive test converted episode {episode}"),
                            };
                            let owner = work.registry.episodes[episode].owner.clone();
                            let open = Event {
                                at,
                                actor: actor.name.clone(),
                                action: Action::Open {
                                    person: person.clone(),
                                    category: Category::Case,
                                    plan: plan_of(dep, Category::Case)?,
                                    reason: Reason { source, via: None, at: *sampled_at, evidence: Some(evidence) },
                                    owner,
                                },
                                note: None,
                            };
                            let new_id = fresh_id(&work.registry, person, Category::Case, at);
                            let (iso, applied) = work
                                .registry
                                .open_or_add(&new_id, &open, &rules)
                                .map_err(|why| refused(format!("the isolation of `{person}`: {why}")))?;
                            isolations.push((iso, applied));
                        }
                    }
                    if !isolations.is_empty() {
                        let named: Vec<&str> = isolations.iter().map(|(id, _)| id.as_str()).collect();
                        let chain = format!("isolation: {}", named.join(", "));
                        event.note = Some(match event.note.take() {
                            Some(n) => format!("{n}; {chain}"),
                            None => chain,
                        });
                    }
                    let ep = &work.registry.episodes[episode];
                    let still_in = matches!(
                        ep.state,
                        EpisodeState::Transferred | EpisodeState::InMeasure | EpisodeState::Extended
                    );
                    if let (Some((fid, rid)), false) = (was_in, still_in)
                        && let Some(f) = rooms.as_mut().and_then(|r| r.get_mut(&fid))
                        && let Ok(room) = f.leave(episode)
                    {
                        let state = if f.rooms[&room].occupants.is_empty() { "to_disinfect" } else { "occupied" };
                        room_states.insert((fid, rid), state);
                    }
                    events.push((episode.clone(), event));
                    for (iso, applied) in isolations {
                        effects.push(chainbreak_closedloop::Effect::Isolation { episode: iso.clone() });
                        events.push((iso, applied));
                    }
                    (episode.clone(), None::<()>, effects)
                }
            };
            let ep = &work.registry.episodes[&id];
            let _ = event;
            outcomes.push(Outcome {
                episode_id: id.clone(),
                state: ep.state,
                deadline: ep.deadline(&rules),
                effects: effects
                    .iter()
                    .map(|e| match e {
                        chainbreak_closedloop::Effect::SuspectedCase { person, sampled_at } => {
                            format!("suspected_case:{person}:{sampled_at}")
                        }
                        chainbreak_closedloop::Effect::Promoted => "promoted".to_string(),
                        chainbreak_closedloop::Effect::Isolation { episode } => format!("isolation:{episode}"),
                    })
                    .collect(),
                response: None,
            });
        }
        // Write: the events, each touched episode's state after them, the rooms, the audit.
        let rules = rules(dep);
        let stored_events: Vec<EpisodeEvent> = events
            .iter()
            .map(|(id, e)| EpisodeEvent {
                seq: 0,
                episode_id: id.clone(),
                at: e.at,
                actor: e.actor.clone(),
                action: serde_json::to_string(e).expect("events serialise"),
            })
            .collect();
        let mut rows = Vec::new();
        for id in events.iter().map(|(id, _)| id).collect::<std::collections::BTreeSet<_>>() {
            rows.push(row(id, &work.registry.episodes[id], &rules, at));
        }
        let mut batch = dep.store.begin(at)?;
        batch.append_episode_events(&stored_events, &rows)?;
        for ((facility, room), state) in &room_states {
            batch.set_room_state(facility, room, state)?;
        }
        for (id, e) in &events {
            let what = serde_json::to_value(&e.action).ok().and_then(|v| v["action"].as_str().map(String::from));
            batch.append_audit(&actor.audit(
                at,
                "episode_transition",
                "episode",
                &format!("{id} {}", what.unwrap_or_default()),
            ))?;
        }
        // The response clock (DESIGN.md §4): a case taken to its isolation facility is
        // `case_transferred` for every case its isolation names.
        for (id, e) in &events {
            let ep = &work.registry.episodes[id];
            if ep.category == Category::Case && matches!(e.action, Action::Transfer { .. }) {
                // Reasons that are cases (a positive without a case record has no clock).
                for r in ep.reasons.iter().filter(|r| !r.source.starts_with(chainbreak_closedloop::POSITIVE_SOURCE)) {
                    batch.clock_event(&r.source, "case_transferred", e.at)?;
                }
            }
        }
        let extra = also(&mut *batch)?;
        batch.commit()?;
        Ok((outcomes, stored_events, extra))
    })();
    let result = match result {
        Ok((outcomes, written, extra)) => {
            lp.registry.commit();
            // The store now ends with what was written; skip past it, unless another process
            // wrote in between: then rebuild from the store, the authority.
            let mut after = Vec::new();
            let caught = dep.store.scan_episode_events(lp.seq, &mut |batch| after.extend_from_slice(batch));
            match caught {
                Ok(last)
                    if after.len() == written.len()
                        && after
                            .iter()
                            .zip(&written)
                            .all(|(a, b)| a.episode_id == b.episode_id && a.action == b.action) =>
                {
                    lp.seq = last;
                }
                _ => match ClosedLoop::load(&*dep.store, &rules(dep)) {
                    Ok((fresh, _)) => lp = fresh,
                    Err(e) => {
                        dep.closed_loop = None;
                        return Err(e);
                    }
                },
            }
            Ok((outcomes, extra))
        }
        Err(e) => {
            lp.registry.rollback();
            Err(e)
        }
    };
    dep.closed_loop = Some(lp);
    result
}

/// An episode with its events and what is due now.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodeView {
    pub id: String,
    #[serde(flatten)]
    pub episode: Episode,
    pub deadline: Option<Timestamp>,
    pub tasks: Vec<Task>,
    pub history: Vec<Event>,
}

fn visible(dep: &Deployment, user: Option<&User>, person: &str) -> Result<bool, AppError> {
    let Some(u) = user else { return Ok(true) };
    crate::reads::require(u, Permission::ReadRecords)?;
    let scope = crate::reads::scope_of(&*dep.store, u)?;
    Ok(dep.store.in_scope(&scope, Entity::Person, &[person])?.first() == Some(&true))
}

/// One episode, as its events make it, with its tasks at the deployment's now.
pub fn show(dep: &mut Deployment, user: Option<&User>, id: &str) -> Result<EpisodeView, AppError> {
    let mut lp = dep.closed_loop.take().unwrap_or_default();
    let r = lp.catch_up(&*dep.store, &rules(dep));
    let found = lp.episode(id).cloned();
    dep.closed_loop = Some(lp);
    r?;
    let not_found = || AppError::NotFound(format!("episode `{id}` not found"));
    let ep = found.ok_or_else(not_found)?;
    if !visible(dep, user, &ep.person)? {
        return Err(not_found());
    }
    let history = dep.store.episode_events(id)?.iter().map(stored).collect::<Result<Vec<_>, _>>()?;
    let rules = rules(dep);
    let now = dep.clock.now();
    Ok(EpisodeView {
        id: id.to_string(),
        deadline: ep.deadline(&rules),
        tasks: ep.tasks(&rules, now),
        episode: ep,
        history,
    })
}

/// A page of episodes in the user's jurisdiction (all for the console operator).
pub fn list(
    dep: &Deployment,
    user: Option<&User>,
    filter: &EpisodeFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<EpisodeRow>, AppError> {
    let scope = match user {
        Some(u) => {
            crate::reads::require(u, Permission::ReadRecords)?;
            crate::reads::scope_of(&*dep.store, u)?
        }
        None => Scope::All,
    };
    Ok(dep.store.episodes_page(&scope, filter, after, limit)?)
}

/// Adds or changes quarantine facilities (needs `manage_facilities`; the console may).
pub fn put_facilities(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    rows: &[FacilityRow],
) -> Result<(), AppError> {
    if let Some(u) = user {
        crate::reads::require(u, Permission::ManageFacilities)?;
    }
    let at = dep.clock.now();
    let mut batch = dep.store.begin(at)?;
    batch.put_facilities(rows)?;
    for f in rows {
        batch.append_audit(&actor.audit(at, "facility_put", "facility", &f.id))?;
    }
    batch.commit()?;
    Ok(())
}

/// Rooms of a facility were disinfected: clean again (each must be waiting for it), all or
/// nothing.
pub fn rooms_disinfected(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    facility: &str,
    rooms: &[&str],
) -> Result<(), AppError> {
    if let Some(u) = user {
        crate::reads::require(u, Permission::ManageFacilities)?;
    }
    let lp = dep.closed_loop.take().unwrap_or_default();
    let states = facilities(dep, &lp).map(|f| {
        rooms.iter().map(|room| f.get(facility).and_then(|f| f.rooms.get(*room)).map(|r| r.state)).collect::<Vec<_>>()
    });
    dep.closed_loop = Some(lp);
    for (room, state) in rooms.iter().zip(states?) {
        match state {
            None => return Err(AppError::NotFound(format!("room `{room}` of facility `{facility}` not found"))),
            Some(RoomState::ToDisinfect) => {}
            Some(other) => {
                return Err(AppError::InvalidArgument {
                    argument: "room",
                    message: format!("room `{room}` is {other:?}, not waiting for disinfection"),
                });
            }
        }
    }
    let at = dep.clock.now();
    let mut batch = dep.store.begin(at)?;
    for room in rooms {
        batch.set_room_state(facility, room, "clean")?;
        batch.append_audit(&actor.audit(at, "room_disinfected", "facility", &format!("{facility}/{room}")))?;
    }
    batch.commit()?;
    Ok(())
}

/// A facility's occupancy now and the rooms needed over the next `days` days (from the
/// episodes in it and those on their way to central quarantine), short days flagged.
#[derive(Debug, Clone, Serialize)]
pub struct FacilityView {
    pub id: String,
    pub name: String,
    /// The staff of the place with the facility's id (`staff` import), by person.
    pub staff: Vec<chainbreak_core::model::StaffMember>,
    pub occupancy: chainbreak_closedloop::facility::Occupancy,
    pub forecast: Vec<chainbreak_closedloop::facility::ForecastDay>,
    /// One alert for each forecast day with more rooms needed than there are (also logged as
    /// a warning).
    pub alerts: Vec<String>,
}

pub fn facility_views(dep: &mut Deployment, days: u32) -> Result<Vec<FacilityView>, AppError> {
    let mut lp = dep.closed_loop.take().unwrap_or_default();
    let r = lp.catch_up(&*dep.store, &rules(dep));
    let result = r.and_then(|_| {
        let rows = dep.store.facilities()?;
        let engine = facilities(dep, &lp)?;
        let cal = &dep.calendar;
        let today = cal.day_of(dep.clock.now());
        // The last local day of central quarantine of an episode.
        // A case's isolation has no last day: it stays over the whole forecast.
        let horizon = today.checked_add(jiff::Span::new().days(i64::from(days))).unwrap_or(today);
        let last_day = |ep: &Episode| {
            if ep.is_isolation() {
                return horizon;
            }
            let days = i64::from(ep.plan.phases.first().map_or(0, |p| p.days));
            ep.day_zero(cal).checked_add(jiff::Span::new().days(days)).unwrap_or(today)
        };
        // Those on their way are not yet in a facility: counted against every facility's
        // forecast only when there is one facility (no assignment is guessed).
        let expected: Vec<jiff::civil::Date> = lp
            .registry
            .episodes
            .values()
            .filter(|e| {
                matches!(e.state, EpisodeState::Confirmed | EpisodeState::Notified)
                    && (e.kind() == chainbreak_core::model::MeasureKind::CentralQuarantine
                        || (e.is_isolation() && dep.profile.closed_loop.isolation.transfer_required))
            })
            .map(last_day)
            .collect();
        let single = rows.len() == 1;
        rows.into_iter()
            .map(|f| {
                let facility = &engine[&f.id];
                let staying: Vec<jiff::civil::Date> = facility
                    .rooms
                    .values()
                    .filter_map(|r| r.occupants.iter().filter_map(|o| lp.episode(&o.episode).map(last_day)).max())
                    .collect();
                let forecast = chainbreak_closedloop::facility::forecast(
                    today,
                    days,
                    facility.rooms.len(),
                    &staying,
                    if single { &expected } else { &[] },
                );
                let alerts: Vec<String> = forecast
                    .iter()
                    .filter(|d| d.short)
                    .map(|d| format!("{}: {} rooms needed, {} rooms", d.date, d.rooms_needed, d.rooms))
                    .collect();
                if let Some(first) = alerts.first() {
                    tracing::warn!(facility = %f.id, %first, days = alerts.len(), "quarantine rooms will run short");
                }
                Ok(FacilityView {
                    staff: dep.store.staff_of(&f.id)?,
                    occupancy: facility.occupancy(),
                    forecast,
                    alerts,
                    id: f.id,
                    name: f.name,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()
    });
    dep.closed_loop = Some(lp);
    result
}

/// Raises a `facility_shortage` alert for each quarantine facility whose 7-day forecast
/// ([`facility_views`]) needs more rooms than it has, keyed by the facility and its first short
/// day (a shortage forecast for the same day is raised once, a new one again), in the
/// facility's area. All in one batch, audited. Returns the ids raised.
pub fn raise_shortage_alerts(dep: &mut Deployment, actor: &Actor) -> Result<Vec<i64>, AppError> {
    const DAYS: u32 = 7;
    let views = facility_views(dep, DAYS)?;
    let areas: BTreeMap<String, Option<String>> = dep.store.facilities()?.into_iter().map(|f| (f.id, f.area)).collect();
    let at = dep.clock.now();
    let mut rows = Vec::new();
    for v in views {
        let short: Vec<_> = v.forecast.iter().filter(|d| d.short).collect();
        let Some(first) = short.first() else { continue };
        let mut row = crate::triggers::new_alert(
            chainbreak_store::AlertKind::FacilityShortage,
            format!("facility_shortage:{}:{}", v.id, first.date),
            format!(
                "quarantine facility {} ({}) will be short of rooms from {}: {} needed, {} rooms",
                v.id, v.name, first.date, first.rooms_needed, first.rooms
            ),
            at,
        );
        row.area_id = areas.get(&v.id).cloned().flatten();
        row.subject = Some(v.id.clone());
        row.details = serde_json::json!({"facility": v.id, "short_days": short}).to_string();
        rows.push(row);
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut batch = dep.store.begin(at)?;
    let mut raised = Vec::new();
    for row in rows {
        raised.extend(crate::alerts::raise_in(&mut *batch, row, actor)?);
    }
    batch.commit()?;
    Ok(raised)
}

/// What proposing measures for arrivals did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ArrivalProposals {
    /// New episodes, proposed for a person to confirm.
    pub proposed: usize,
    /// Arrivals of persons with an open arrival episode: the reason was added to it.
    pub added: usize,
    /// Arrivals whose origin has no measure in the profile.
    pub without_measure: usize,
}

/// Proposes for each arrival the profile's measure for its origin's risk (DESIGN.md §4
/// "arrivals"), owned by `owner`, all or nothing.
pub fn propose_arrivals(
    dep: &mut Deployment,
    actor: &Actor,
    arrivals: &[chainbreak_core::model::Arrival],
    owner: &str,
) -> Result<ArrivalProposals, AppError> {
    let mut report = ArrivalProposals::default();
    let mut requests = Vec::new();
    for a in arrivals {
        // From a zone of this deployment in force: its level's rule, if stricter (issue 8).
        let mut a = a.clone();
        let zone = match a.origin_risk {
            OriginRisk::Abroad => None,
            _ => crate::zones::origin_zone(dep, &a.origin)?,
        };
        if let Some((_, level)) = &zone {
            let risk = match level {
                ZoneLevel::High => OriginRisk::High,
                ZoneLevel::Medium => OriginRisk::Medium,
                ZoneLevel::Low => OriginRisk::Low,
            };
            if risk < a.origin_risk {
                a.origin_risk = risk;
            }
        }
        match chainbreak_closedloop::arrival_proposal(&dep.profile, &a, owner) {
            Some(Action::Open { person, category, plan, mut reason, owner }) => {
                if let (Some((id, level)), Some(evidence)) = (&zone, reason.evidence.as_mut()) {
                    evidence.push_str(&format!("; origin in {level} zone {id}"));
                }
                requests.push(Request::Open {
                    id: None,
                    person,
                    category,
                    plan: Some(plan),
                    reason,
                    owner,
                    confirmed: false,
                })
            }
            _ => report.without_measure += 1,
        }
    }
    if requests.is_empty() {
        return Ok(report);
    }
    let before: std::collections::BTreeSet<String> = {
        let mut lp = dep.closed_loop.take().unwrap_or_default();
        let caught = lp.catch_up(&*dep.store, &rules(dep));
        let ids = lp.registry.episodes.keys().cloned().collect();
        dep.closed_loop = Some(lp);
        caught?;
        ids
    };
    let done = transition(dep, actor, None, &requests)?;
    let mut new = std::collections::BTreeSet::new();
    for o in done {
        if !before.contains(&o.episode_id) && new.insert(o.episode_id) {
            report.proposed += 1;
        } else {
            report.added += 1;
        }
    }
    Ok(report)
}

/// What recording lab results in the closed loop did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LabResults {
    /// Tests recorded on the tested persons' open episodes.
    pub tests: usize,
    /// Tests recorded on the secondary contacts who hang on a tested close contact.
    pub linked: usize,
    /// Episodes converted by a positive test: suspected cases to open and trace.
    pub converted: usize,
    /// Secondary contacts who became close contacts.
    pub promoted: usize,
}

/// Records person lab results (positive or negative) in the closed loop, once each: as a test
/// on every open episode of the person — a positive converts it — and as a linked test on
/// every open secondary episode hanging on the person. Pooled, goods and environment results
/// are not a person's test. Written all or nothing, audited under `actor`.
pub fn record_lab_results(
    dep: &mut Deployment,
    actor: &Actor,
    tests: &[chainbreak_core::model::LabTest],
) -> Result<LabResults, AppError> {
    use chainbreak_core::model::{SubjectKind, TestResult as LabResult};
    let now = dep.clock.now();
    let mut lp = dep.closed_loop.take().unwrap_or_default();
    let caught = lp.catch_up(&*dep.store, &rules(dep));
    let mut requests = Vec::new();
    let mut report = LabResults::default();
    if caught.is_ok() {
        // The open episodes of the tested persons, and those hanging on them, in one pass.
        let tested: std::collections::BTreeSet<&str> =
            tests.iter().filter(|t| t.subject_kind == SubjectKind::Person).map(|t| t.subject_id.as_str()).collect();
        let mut concerned: BTreeMap<&str, Vec<(&String, &Episode)>> = BTreeMap::new();
        for (id, ep) in lp.registry.episodes.iter().filter(|(_, e)| e.is_open()) {
            let mut persons: Vec<&str> = ep.reasons.iter().filter_map(|r| r.via.as_deref()).collect();
            persons.push(&ep.person);
            persons.sort_unstable();
            persons.dedup();
            for p in persons.into_iter().filter(|p| tested.contains(p)) {
                concerned.entry(p).or_default().push((id, ep));
            }
        }
        // Per episode, nothing after a positive (it closes the episode).
        let mut done: std::collections::BTreeSet<String> = Default::default();
        for t in tests {
            let result = match (t.subject_kind, t.result) {
                // A positive pool is not the member's own positive: the members are retested
                // (the trigger raises the pool's alert); a negative pool clears each member.
                (SubjectKind::Person, LabResult::Positive) if t.pool_id.is_some() => continue,
                (SubjectKind::Person, LabResult::Positive) => chainbreak_closedloop::TestResult::Positive,
                (SubjectKind::Person, LabResult::Negative) => chainbreak_closedloop::TestResult::Negative,
                _ => continue,
            };
            let taken_at = t.sampled_at.min(now);
            for &(id, ep) in concerned.get(t.subject_id.as_str()).into_iter().flatten() {
                if done.contains(id) || ep.lab_tests.contains(&t.id) {
                    continue;
                }
                let action = if ep.person == t.subject_id {
                    report.tests += 1;
                    Action::Test { taken_at, result, lab_test: Some(t.id.clone()) }
                } else if ep.category == Category::Secondary
                    && ep.reasons.iter().any(|r| r.via.as_deref() == Some(t.subject_id.as_str()))
                {
                    report.linked += 1;
                    Action::LinkedTest { contact: t.subject_id.clone(), taken_at, result, lab_test: Some(t.id.clone()) }
                } else {
                    continue;
                };
                // A positive closes a contact's episode; a case's isolation records on.
                if result == chainbreak_closedloop::TestResult::Positive && ep.category != Category::Case {
                    done.insert(id.clone());
                }
                requests.push(Request::Act { episode: id.clone(), action });
            }
        }
    }
    dep.closed_loop = Some(lp);
    caught?;
    if requests.is_empty() {
        return Ok(report);
    }
    for o in transition(dep, actor, None, &requests)? {
        for e in &o.effects {
            if e.starts_with("suspected_case:") {
                report.converted += 1;
            } else if e == "promoted" {
                report.promoted += 1;
            }
        }
    }
    Ok(report)
}

/// A task of an episode, with the unit it has escalated to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    pub episode_id: String,
    pub person_id: String,
    pub state: EpisodeState,
    /// The unit owning the episode.
    pub owner_unit: String,
    /// Where the task sits now: the owner, or the unit `escalation` steps up its hierarchy.
    pub unit: String,
    #[serde(flatten)]
    pub task: Task,
}

/// The tasks of the open episodes in the user's jurisdiction at the deployment's now, overdue
/// first (then by due time): each at the unit it has escalated to up the units' hierarchy
/// (the top unit keeps what escalates past it). `overdue`: only those; `unit`: only those
/// sitting at that unit now.
pub fn tasks(
    dep: &mut Deployment,
    user: Option<&User>,
    overdue: bool,
    unit: Option<&str>,
) -> Result<Vec<TaskView>, AppError> {
    let scope = match user {
        Some(u) => {
            crate::reads::require(u, Permission::ReadRecords)?;
            crate::reads::scope_of(&*dep.store, u)?
        }
        None => Scope::All,
    };
    let mut lp = dep.closed_loop.take().unwrap_or_default();
    let caught = lp.catch_up(&*dep.store, &rules(dep));
    let result = caught.and_then(|_| {
        let parents: BTreeMap<String, Option<String>> =
            dep.store.units()?.into_iter().map(|u| (u.id, u.parent)).collect();
        let chain = |owner: &str| {
            let mut chain = vec![owner.to_string()];
            while let Some(Some(parent)) = parents.get(chain.last().expect("not empty")) {
                if chain.contains(parent) {
                    break;
                }
                chain.push(parent.clone());
            }
            chain
        };
        let rules = rules(dep);
        let now = dep.clock.now();
        let mut out = Vec::new();
        // Each owner's chain of units once (a jurisdiction can have a million open episodes and a
        // few hundred units).
        let mut chains: std::collections::HashMap<&str, Vec<String>> = std::collections::HashMap::new();
        // The overdue ones from the registry's index by due time; else every open episode.
        let ids: Vec<String> = if overdue {
            lp.registry.overdue(&rules, now)
        } else {
            lp.registry.episodes.iter().filter(|(_, e)| e.is_open()).map(|(id, _)| id.clone()).collect()
        };
        for id in &ids {
            let Some(ep) = lp.registry.episodes.get(id) else { continue };
            let tasks = ep.tasks(&rules, now);
            let chain = chains.entry(ep.owner.as_str()).or_insert_with(|| chain(&ep.owner));
            for task in tasks {
                if overdue && !task.overdue {
                    continue;
                }
                let at = chainbreak_closedloop::escalated_owner(chain, task.escalation).cloned().unwrap_or_default();
                if unit.is_some_and(|u| u != at) {
                    continue;
                }
                out.push(TaskView {
                    episode_id: id.clone(),
                    person_id: ep.person.clone(),
                    state: ep.state,
                    owner_unit: ep.owner.clone(),
                    unit: at,
                    task,
                });
            }
        }
        // The scope is checked for the persons with tasks to show only (a jurisdiction can have a
        // million open episodes, and few of them tasks at a time).
        if scope != Scope::All {
            let mut persons: Vec<&str> = out.iter().map(|t| t.person_id.as_str()).collect();
            persons.sort_unstable();
            persons.dedup();
            let inside = dep.store.in_scope(&scope, Entity::Person, &persons)?;
            let inside: std::collections::HashSet<String> =
                persons.iter().zip(inside).filter(|(_, i)| *i).map(|(p, _)| p.to_string()).collect();
            out.retain(|t| inside.contains(&t.person_id));
        }
        out.sort_by(|a, b| {
            (!a.task.overdue, a.task.due, &a.episode_id, a.task.day).cmp(&(
                !b.task.overdue,
                b.task.due,
                &b.episode_id,
                b.task.day,
            ))
        });
        Ok(out)
    });
    dep.closed_loop = Some(lp);
    result
}

/// Index cases excluded: the reasons that come from them leave every episode, and an episode
/// left without reasons closes (`excluded`); the excluded case's own isolation closes
/// (`excluded`) unless another case record of the person still stands. All or nothing.
pub fn exclude_sources(dep: &mut Deployment, actor: &Actor, sources: &[String]) -> Result<usize, AppError> {
    // The persons of the excluded cases (a source that is no case has none).
    let mut case_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in sources {
        if let Some(case) = dep.store.case(s)? {
            case_of.entry(case.person_id).or_default().push(s.clone());
        }
    }
    let mut lp = dep.closed_loop.take().unwrap_or_default();
    let caught = lp.catch_up(&*dep.store, &rules(dep));
    let requests: Vec<Request> = lp
        .registry
        .episodes
        .iter()
        .filter(|(_, e)| e.is_open())
        .flat_map(|(id, e)| {
            let own = if e.category == Category::Case { case_of.get(&e.person) } else { None };
            sources
                .iter()
                .filter(move |s| e.reasons.iter().any(|r| &r.source == *s) || own.is_some_and(|o| o.contains(s)))
                .map(|s| Request::Act { episode: id.clone(), action: Action::SourceExcluded { source: s.clone() } })
        })
        .collect();
    dep.closed_loop = Some(lp);
    caught?;
    if requests.is_empty() {
        return Ok(0);
    }
    Ok(transition(dep, actor, None, &requests)?.len())
}

/// What isolating reported cases did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CaseIsolations {
    /// New isolation episodes, confirmed by the case's report.
    pub opened: usize,
    /// Cases of persons already isolated: the case was added as a reason (never a duplicate).
    pub added: usize,
    /// Cases an isolation of the person already names (open or ended: a file imported again).
    pub known: usize,
    /// Cases classified `excluded` (see [`exclude_sources`]).
    pub excluded: usize,
    /// Cases whose outcome is `deceased`: the person's open isolation closed (`deceased`); none
    /// is opened for them.
    pub deceased: usize,
}

/// Opens each reported case's own isolation (DESIGN.md §1 "closed-loop handling"): a suspected,
/// confirmed or asymptomatic case gets an episode of kind `isolation`, category `case`, its
/// reason the case (source: the case id; day 0: onset, else the positive sample, else the
/// report), owned by `owner`, confirmed at once — the case's report is the decision. A person
/// with an open isolation gets the case as a reason instead; a case an isolation of the person
/// already names is left alone, so importing a file again reopens nothing; a case whose outcome
/// is `deceased` closes the person's open isolation (`deceased`). All or nothing.
pub fn isolate_cases(
    dep: &mut Deployment,
    actor: &Actor,
    cases: &[chainbreak_core::model::Case],
    owner: &str,
) -> Result<CaseIsolations, AppError> {
    use chainbreak_core::model::{Classification, Outcome};
    let mut report = CaseIsolations::default();
    let mut lp = dep.closed_loop.take().unwrap_or_default();
    let caught = lp.catch_up(&*dep.store, &rules(dep));
    // The case ids each person's isolations name already, and who is isolated now.
    let mut named: std::collections::BTreeSet<(&str, &str)> = Default::default();
    for ep in lp.registry.episodes.values().filter(|e| e.category == Category::Case) {
        named.extend(ep.reasons.iter().map(|r| (ep.person.as_str(), r.source.as_str())));
    }
    let open: BTreeMap<String, String> = lp
        .registry
        .episodes
        .iter()
        .filter(|(_, e)| e.category == Category::Case && e.is_open())
        .map(|(id, e)| (e.person.clone(), id.clone()))
        .collect();
    let mut isolated: std::collections::BTreeSet<String> = open.keys().cloned().collect();
    let mut closed: std::collections::BTreeSet<&str> = Default::default();
    let mut requests = Vec::new();
    for c in cases {
        if c.classification == Classification::Excluded {
            report.excluded += 1;
            continue;
        }
        if c.outcome == Some(Outcome::Deceased) {
            report.deceased += 1;
            if let Some(id) = open.get(&c.person_id)
                && closed.insert(id)
            {
                let close = Action::Close { reason: chainbreak_closedloop::CloseReason::Deceased };
                requests.push(Request::Act { episode: id.clone(), action: close });
            }
            continue;
        }
        if named.contains(&(c.person_id.as_str(), c.id.as_str())) {
            report.known += 1;
            continue;
        }
        let at = c.onset.map(|d| dep.calendar.start_of(d)).or(c.sampled_at).unwrap_or(c.reported_at);
        named.insert((c.person_id.as_str(), c.id.as_str()));
        if isolated.insert(c.person_id.clone()) {
            report.opened += 1;
        } else {
            report.added += 1;
        }
        requests.push(Request::Open {
            id: None,
            person: c.person_id.clone(),
            category: Category::Case,
            plan: None,
            reason: Reason {
                source: c.id.clone(),
                via: None,
                at,
                evidence: Some(format!("case {} ({}) reported at {}", c.id, c.classification, c.reported_at)),
            },
            owner: owner.to_string(),
            confirmed: true,
        });
    }
    dep.closed_loop = Some(lp);
    caught?;
    if !requests.is_empty() {
        transition(dep, actor, None, &requests)?;
    }
    Ok(report)
}

/// What [`respond_to_positives`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PositiveResponse {
    /// The suspected cases opened (pending confirmation).
    pub suspected_cases: Vec<String>,
    /// The alerts raised.
    pub alerts: Vec<i64>,
    /// The cases linked to the isolations the conversions opened.
    pub isolations: CaseIsolations,
    /// The trace the cases started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traced: Option<crate::proposals::CaseTraces>,
}

/// Sets off for positive tests entered on episodes (`requests`, answered by `outcomes` of
/// [`transition`]) what a positive lab result sets off on ingest (`triggers`): each positive
/// that converted an episode opens a suspected case `S-<lab test>` (or `S-<episode>` for a
/// test without a lab record), pending confirmation, with its `positive_person` alert and its
/// response clock, unless the person has an open case already (a lab result ingested before
/// opened it); the case is added to the isolation the conversion opened, owned by the
/// converted episode's unit; and the cases are traced at once (their contacts proposed).
pub fn respond_to_positives(
    dep: &mut Deployment,
    actor: &Actor,
    requests: &[Request],
    outcomes: &[Outcome],
) -> Result<PositiveResponse, AppError> {
    let mut out = PositiveResponse::default();
    let mut positives = Vec::new();
    for (request, outcome) in requests.iter().zip(outcomes) {
        let Request::Act { episode, action: Action::Test { taken_at, lab_test, .. } } = request else { continue };
        if !outcome.effects.iter().any(|e| e.starts_with("suspected_case:")) {
            continue;
        }
        let Some(ep) = dep.closed_loop.as_ref().and_then(|lp| lp.registry.episodes.get(episode)) else { continue };
        let key = lab_test.clone().unwrap_or_else(|| episode.clone());
        let what = match lab_test {
            Some(t) => format!("test {t} entered on episode {episode}"),
            None => format!("test entered on episode {episode}"),
        };
        let positive = crate::triggers::Positive {
            key,
            person_id: ep.person.clone(),
            what,
            sampled_at: *taken_at,
            result_at: dep.clock.now(),
            details: serde_json::json!({"episode": episode, "lab_test": lab_test}),
        };
        positives.push((positive, ep.owner.clone()));
    }
    if positives.is_empty() {
        return Ok(out);
    }
    let triggers = crate::triggers::Triggers::from_profile(&dep.profile);
    let now = dep.clock.now();
    let mut batch = dep.store.begin(now)?;
    let mut opened: Vec<(chainbreak_core::model::Case, String)> = Vec::new();
    for (positive, owner) in positives {
        let report = crate::triggers::open_suspected_case(&mut *batch, &triggers, positive, actor, now)?;
        out.suspected_cases.extend(report.suspected_cases);
        out.alerts.extend(report.alerts);
        opened.extend(report.cases.into_iter().map(|c| (c, owner.clone())));
    }
    batch.commit()?;
    let mut by_owner: BTreeMap<String, Vec<chainbreak_core::model::Case>> = BTreeMap::new();
    for (case, owner) in opened {
        by_owner.entry(owner).or_default().push(case);
    }
    for (owner, cases) in &by_owner {
        let i = isolate_cases(dep, actor, cases, owner)?;
        out.isolations.opened += i.opened;
        out.isolations.added += i.added;
        out.isolations.known += i.known;
    }
    if !out.suspected_cases.is_empty() {
        out.traced = Some(crate::proposals::trace_cases(dep, actor, &out.suspected_cases)?);
    }
    Ok(out)
}
