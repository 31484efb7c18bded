//! A drill: the closed loop run over a simulated outbreak, with the faults of real work.
//!
//! Each simulated day, the cases the simulator reports get their household members proposed
//! and confirmed as close contacts; the open episodes then move as field teams would move them,
//! with random delays past deadlines, people unreachable or refusing, missed test days made up
//! later, hand-overs to other jurisdictions, and tests whose results come from the simulator's
//! ground truth (a positive converts, and the person is isolated in the simulation; a person in
//! their measure is quarantined there). Every few days the deployment restarts: its episodes are
//! rebuilt from the store's events. After the outbreak's days the drill keeps working until
//! every episode has ended. It checks, after every day, that every open episode has a deadline,
//! and at the end that every episode ended with an outcome. Deterministic for a seed.
//!
//! Cases get their own isolation: each reported case, and each contact converted by a positive
//! test, has an isolation episode that is confirmed (the report), notified, transferred to the
//! designated hospital `H1` (or started at home where the profile allows), tested daily from
//! the simulator's detection window and discharged when the profile's discharge rule allows.
//! `episodes` and `outcomes` count the contacts' episodes, as before; `isolations` and
//! `isolation_outcomes` the cases'; `open_without_deadline` and `left_open` count both.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chainbreak_closedloop::{Action, Category, Reason, Rules, TestResult};
use chainbreak_core::model::{EpisodeState, MeasureKind, Person};
use chainbreak_core::time::{Clock, ManualClock};
use chainbreak_sim::Outbreak;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::accounts::Actor;
use crate::episodes::{self, Request};
use crate::{AppError, Deployment};

/// What a drill did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DrillReport {
    pub persons: u32,
    pub days: u32,
    pub cases: u64,
    /// Contacts' episodes (quarantine).
    pub episodes: usize,
    /// Cases' own isolation episodes.
    pub isolations: usize,
    pub events: u64,
    pub restarts: u32,
    /// Person-days someone notified for central quarantine waited for a free room.
    pub waited_for_a_room: u64,
    /// Days worked after the outbreak's last day until every episode ended.
    pub extra_days: u32,
    /// Contacts' episodes by final state.
    pub outcomes: BTreeMap<String, usize>,
    /// Isolation episodes by final state.
    pub isolation_outcomes: BTreeMap<String, usize>,
    /// Open episodes seen without a deadline (must be 0), and left open at the end (must be 0).
    pub open_without_deadline: usize,
    pub left_open: usize,
    pub seconds: f64,
}

/// A small deterministic generator (splitmix64) for the drill's faults.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn hours(&mut self, lo: i64, hi: i64) -> SignedDuration {
        SignedDuration::from_hours(lo + (self.next() % (hi - lo) as u64) as i64)
    }
}

fn sim_error(e: chainbreak_sim::SimError) -> AppError {
    AppError::InvalidArgument { argument: "simulation", message: e.to_string() }
}

fn ts(unix: i64) -> Timestamp {
    Timestamp::from_second(unix).expect("the simulator's instants are valid")
}

/// Runs the drill on a fresh store at `path` (replaced), under `profile`, for the outbreak
/// `sim` over its `days`.
pub fn run(path: &std::path::Path, profile: &str, mut sim: Outbreak, seed: u64) -> Result<DrillReport, AppError> {
    let started = Instant::now();
    let days = sim.city.params.days;
    let n = sim.city.persons.len();
    let _ = std::fs::remove_file(path);
    let t0 = ts(sim.city.t0);
    let clock = Arc::new(ManualClock::new(t0));
    let mut store = crate::init(path, "Asia/Shanghai", profile, &*clock)?;
    {
        let persons: Vec<Person> = (0..n as u32)
            .map(|i| Person {
                id: sim.ids.persons.get(i).to_string(),
                residence: None,
                birth_year: None,
                sex: None,
                occupation: None,
            })
            .collect();
        let mut b = chainbreak_store::Store::begin(&mut store, t0)?;
        b.put_persons(&persons)?;
        let rooms = || {
            (0..n / 20 + 10)
                .map(|r| chainbreak_store::RoomRow { id: format!("{r:06}"), capacity: 1, state: "clean".into() })
                .collect()
        };
        b.put_facilities(&[
            chainbreak_store::FacilityRow { id: "F1".into(), name: "Drill hotel".into(), area: None, rooms: rooms() },
            chainbreak_store::FacilityRow {
                id: "H1".into(),
                name: "Drill hospital".into(),
                area: None,
                rooms: rooms(),
            },
        ])?;
        b.commit()?;
    }
    let mut dep = Deployment::new(Box::new(store), clock.clone())?;
    let (profile, calendar) = (dep.profile.clone(), dep.calendar.clone());
    let actor = Actor { name: "drill".into(), via: "drill".into(), reason: None };
    let key: BTreeMap<String, u32> = (0..n as u32).map(|i| (sim.ids.persons.get(i).to_string(), i)).collect();
    let mut rng = Mix(seed ^ 0x0064_7269_6c6c);
    let mut report = DrillReport { persons: n as u32, days, ..Default::default() };
    let mut all_ids: std::collections::BTreeSet<String> = Default::default();
    let mut day = 0u32;
    loop {
        let outbreak_day = day < days;
        let day_start = ts(sim.city.day_start(day));
        // The simulated day: its cases, reported during it.
        let cases = if outbreak_day { sim.step_day().map_err(sim_error)?.cases } else { Vec::new() };
        clock.set(day_start + SignedDuration::from_hours(20));
        let now = clock.now();
        report.cases += cases.len() as u64;
        let mut opens = Vec::new();
        for case in &cases {
            let Some(&p) = key.get(&case.person_id) else { continue };
            let (first, size) = sim.city.households[sim.city.persons[p as usize].household as usize];
            for m in (first..first + size).filter(|m| *m != p) {
                opens.push(Request::Open {
                    id: None,
                    person: sim.ids.persons.get(m).to_string(),
                    category: Category::Close,
                    plan: None,
                    reason: Reason {
                        source: case.id.clone(),
                        via: None,
                        at: case.reported_at.min(now),
                        evidence: None,
                    },
                    owner: "U1".into(),
                    confirmed: true,
                });
            }
        }
        for chunk in opens.chunks(1000) {
            for o in episodes::transition(&mut dep, &actor, None, chunk)? {
                all_ids.insert(o.episode_id);
            }
        }
        // The cases themselves: isolated (the report confirms it).
        episodes::isolate_cases(&mut dep, &actor, &cases, "U1")?;

        // The field work of the day, on the episodes open now.
        let open = episodes::current(&mut dep)?;
        // The rooms left yesterday are disinfected in the morning.
        let waiting: Vec<(String, Vec<String>)> = dep
            .store
            .facilities()?
            .into_iter()
            .map(|f| (f.id, f.rooms.into_iter().filter(|r| r.state == "to_disinfect").map(|r| r.id).collect()))
            .filter(|(_, rooms): &(String, Vec<String>)| !rooms.is_empty())
            .collect();
        for (facility, rooms) in &waiting {
            let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
            episodes::rooms_disinfected(&mut dep, &actor, None, facility, &rooms)?;
        }
        // Transfers only into the rooms free today; the others wait for a room.
        let views = episodes::facility_views(&mut dep, 1)?;
        let free = |id: &str| views.iter().filter(|f| f.id == id).map(|f| f.occupancy.clean).sum::<usize>();
        let (mut free_rooms, mut free_beds) = (free("F1"), free("H1"));
        let rules = Rules { profile: &profile, calendar: &calendar };
        let mut moves = Vec::new();
        let mut confine = Vec::new();
        let mut isolate = Vec::new();
        for (id, ep) in &open {
            if ep.deadline(&rules).is_none() {
                report.open_without_deadline += 1;
            }
            // Some days nobody gets to it: the deadline may pass and the task escalates.
            if rng.chance(0.15) {
                continue;
            }
            let person = key[&ep.person];
            let isolation = ep.category == Category::Case;
            let action = match ep.state {
                // Opened by a positive test: the case is reported.
                EpisodeState::Proposed if isolation => Some(Action::Confirm),
                EpisodeState::Confirmed if rng.chance(0.08) => Some(Action::Unreachable),
                EpisodeState::Confirmed | EpisodeState::Unreachable | EpisodeState::Refused => Some(Action::Notify),
                EpisodeState::Notified if rng.chance(0.03) => Some(Action::Refuse),
                EpisodeState::Notified if rng.chance(0.02) => Some(Action::HandOver { to: "D9".into() }),
                EpisodeState::Notified if isolation && profile.closed_loop.isolation.transfer_required => {
                    if free_beds == 0 {
                        None
                    } else {
                        free_beds -= 1;
                        Some(Action::Transfer { facility: "H1".into(), room: String::new() })
                    }
                }
                EpisodeState::Notified if ep.kind() == MeasureKind::CentralQuarantine => {
                    if free_rooms == 0 {
                        report.waited_for_a_room += 1;
                        None
                    } else {
                        free_rooms -= 1;
                        Some(Action::Transfer { facility: "F1".into(), room: String::new() })
                    }
                }
                EpisodeState::Notified | EpisodeState::Transferred => {
                    confine.push(person);
                    Some(Action::Start)
                }
                EpisodeState::HandedOver => Some(Action::Acknowledge),
                // In isolation: discharged when the rule allows, else a test a day (10% missed),
                // found positive within the simulator's detection window.
                EpisodeState::InMeasure | EpisodeState::Extended if isolation => {
                    isolate.push(person);
                    let today = calendar.day_of(now);
                    let tested_today = ep.tests.iter().any(|t| calendar.day_of(t.taken_at) == today);
                    if ep.dischargeable(&rules, now).is_ok() {
                        Some(Action::Discharge { criteria: "drill: the clinical criteria are met".into() })
                    } else if !tested_today && !rng.chance(0.10) {
                        let taken_at = now - rng.hours(1, 10);
                        let result = if sim.detectable(person, taken_at.as_second()) {
                            TestResult::Positive
                        } else {
                            TestResult::Negative
                        };
                        Some(Action::Test { taken_at, result, lab_test: None })
                    } else {
                        None
                    }
                }
                EpisodeState::InMeasure | EpisodeState::Extended => {
                    confine.push(person);
                    let pending = ep.scheduled_tests(&calendar, &ep.test_days()).into_iter().find(|(_, t)| t.is_none());
                    let today = calendar.day_of(now);
                    let due_day = pending.map(|(d, _)| {
                        ep.day_zero(&calendar).checked_add(jiff::Span::new().days(i64::from(d))).unwrap_or(today)
                    });
                    match due_day {
                        // Tests are taken on their day (or made up later); 10% are missed.
                        Some(due) if due <= today && !rng.chance(0.10) => {
                            let taken_at = now - rng.hours(1, 10);
                            // Detectable from a day after infection (the simulator's truth).
                            let infected = sim.infected_at(person).is_some_and(|t| t + 86_400 <= taken_at.as_second());
                            let result = if infected { TestResult::Positive } else { TestResult::Negative };
                            Some(Action::Test { taken_at, result, lab_test: None })
                        }
                        Some(_) => None,
                        None if ep.releasable(&rules, now).is_ok() => Some(Action::Release),
                        None => None,
                    }
                }
                _ => None,
            };
            if let Some(action) = action {
                moves.push(Request::Act { episode: id.clone(), action });
            }
        }
        let person_of: BTreeMap<&str, u32> = open.iter().map(|(id, e)| (id.as_str(), key[&e.person])).collect();
        for chunk in moves.chunks(1000) {
            for o in episodes::transition(&mut dep, &actor, None, chunk)? {
                if outbreak_day
                    && o.state == EpisodeState::ConvertedToCase
                    && let Some(&person) = person_of.get(o.episode_id.as_str())
                {
                    sim.isolate(person, sim.now()).map_err(sim_error)?;
                }
            }
        }
        if outbreak_day {
            for person in confine {
                sim.quarantine(person, sim.now()).map_err(sim_error)?;
            }
            for person in isolate {
                sim.isolate(person, sim.now()).map_err(sim_error)?;
            }
        }
        // A restart every seventh day: the episodes are rebuilt from the store.
        if day % 7 == 6 {
            let before = episodes::current(&mut dep)?.len();
            let store = crate::open(path)?;
            dep = Deployment::new(Box::new(store), clock.clone())?;
            let after = episodes::current(&mut dep)?.len();
            if before != after {
                return Err(AppError::InvalidArgument {
                    argument: "drill",
                    message: format!("day {day}: {before} open episodes before the restart, {after} after"),
                });
            }
            report.restarts += 1;
        }
        day += 1;
        if !outbreak_day {
            report.extra_days += 1;
            if episodes::current(&mut dep)?.is_empty() || report.extra_days > 60 {
                break;
            }
        }
    }
    // The outcome of every episode.
    for id in &all_ids {
        let shown = episodes::show(&mut dep, None, id)?;
        report.events += shown.history.len() as u64;
        if shown.episode.is_open() {
            report.left_open += 1;
        }
        *report.outcomes.entry(shown.episode.state.as_str().to_string()).or_default() += 1;
    }
    report.episodes = all_ids.len();
    // The cases' isolations.
    let mut after: Option<String> = None;
    loop {
        let page = episodes::list(&dep, None, &chainbreak_store::EpisodeFilter::default(), after.as_deref(), 1000)?;
        for row in page.iter().filter(|r| r.category == Category::Case.as_str()) {
            report.isolations += 1;
            if chainbreak_closedloop::is_open(row.state) {
                report.left_open += 1;
            }
            *report.isolation_outcomes.entry(row.state.as_str().to_string()).or_default() += 1;
        }
        match page.last() {
            Some(last) if page.len() == 1000 => after = Some(last.id.clone()),
            _ => break,
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
