//! The closed-loop engine (闭环管理): every person under a measure has an [`Episode`], a state
//! machine driven by [`Event`]s, that carries them from proposal to release (or another
//! recorded outcome) with a deadline in every open state, so that nobody falls out of the loop.
//!
//! Episodes are event-sourced: the state is what [`Episode::replay`] derives from the events,
//! and [`Episode::apply`] either applies an event or refuses it with a reason, changing
//! nothing. Synchronous, deterministic and free of IO; numbers come from the policy profile
//! (measure plans, `[closed_loop]` deadlines, the secondary-contact rules) and local calendar
//! days from the deployment's [`Calendar`].
//!
//! - States and moves: `proposed → confirmed → notified → (transferred →) in_measure →
//!   released`, with `unreachable`, `refused`, `extended`, `handed_over` (closed when the
//!   receiving side acknowledges), `converted_to_case`, `lost` and `closed` (with a reason).
//! - Rules: a positive test converts the episode (the caller opens a suspected case and
//!   traces); a later exposure extends the measure from its date; a secondary contact whose
//!   linked close contact is positive in one of their first tests becomes a close contact;
//!   release needs the plan's negative tests, one for each test day taken that day or made up
//!   later (and, for secondary contacts, the linked close contact's); when an index case is excluded, the reasons that hang on it go, and an
//!   episode left without reasons closes.
//! - A case's own episode (category `case`, kind `isolation`, [`isolation_plan`]) has no number
//!   of days: it ends on a [`Action::Discharge`] that the profile's `[closed_loop.isolation]`
//!   allows (least stay, last negative tests; the clinician attests the rest), or closes with a
//!   reason; its positive tests are follow-up, and its deadlines may be the profile's own for
//!   the kind (the response clock's 2 h for cases).
//! - [`Registry`] keeps one open episode per person and category: a person traced again gets
//!   the new reason on the open episode.
//! - [`Episode::tasks`]: what is due (the next move, each test day) with its deadline, the
//!   responsibility it falls under (四方责任) and how far it has escalated.
//! - [`facility`]: quarantine facilities, rooms and their assignment, occupancy and forecast.
//! - [`requests`]: service requests of residents under a zone or home measure (软服务), with
//!   deadlines by kind, escalation like tasks, and an outcome to close.

pub mod facility;
pub mod requests;

use std::collections::BTreeMap;

use chainbreak_core::model::{EpisodeState, MeasureKind, Responsibility};
use chainbreak_core::profile::{DeadlineFrom, MeasurePlan, Profile};
use chainbreak_core::time::Calendar;
use chainbreak_core::vocabulary;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

vocabulary!(
    /// Why a person is under a measure, by kind.
    Category {
        Close = "close", Secondary = "secondary", CoExposed = "co_exposed", Grid = "grid",
        Arrival = "arrival", ZoneResident = "zone_resident", Case = "case"
    }
);

vocabulary!(
    /// Why an episode closed without a release.
    CloseReason {
        Rejected = "rejected", Excluded = "excluded", WrongPerson = "wrong_person", Deceased = "deceased",
        MergedDuplicate = "merged_duplicate", HandedOver = "handed_over"
    }
);

vocabulary!(
    /// A test result.
    TestResult { Negative = "negative", Positive = "positive" }
);

/// The source of a case's isolation reason that is a positive test rather than a case record
/// (`positive:{lab test or episode}`): when the case is excluded, such reasons fall with it.
pub const POSITIVE_SOURCE: &str = "positive:";

/// The measure of a case's own episode: isolation, open-ended (its one phase has no days; the
/// episode ends on discharge, by the profile's `[closed_loop.isolation]`).
pub fn isolation_plan() -> MeasurePlan {
    use chainbreak_core::profile::{DayZero, Phase};
    MeasurePlan {
        day_zero: DayZero::Diagnosis,
        phases: vec![Phase { kind: MeasureKind::Isolation, days: 0, test_days: Vec::new(), tests: None }],
        early_release: None,
    }
}

/// The source of a zone resident's reason: `zone:<zone id>`.
pub fn zone_source(zone: &str) -> String {
    format!("zone:{zone}")
}

/// The measure of a zone's residents: the profile's kind for the zone's level, open-ended (its
/// one phase has no days); it lasts as long as the zone, and ends with [`Action::ZoneEnded`].
pub fn zone_resident_plan(kind: MeasureKind) -> MeasurePlan {
    use chainbreak_core::profile::{DayZero, Phase};
    MeasurePlan {
        day_zero: DayZero::Notified,
        phases: vec![Phase { kind, days: 0, test_days: Vec::new(), tests: None }],
        early_release: None,
    }
}

/// One reason for a measure: what put the person there, and the date the measure counts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The case, zone or arrival it comes from.
    pub source: String,
    /// Through whom (a secondary contact's close contact), or the evidence's reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The last exposure (contacts), leaving the origin or arriving (arrivals), notification.
    pub at: Timestamp,
    /// The evidence behind it (a contact proposal `proposal:12`, an arrival record...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// What happened to an episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// A new episode, proposed.
    Open {
        person: String,
        category: Category,
        plan: MeasurePlan,
        reason: Reason,
        owner: String,
    },
    /// A tracer confirms the proposal (DESIGN.md §4a).
    Confirm,
    /// A tracer rejects the proposal.
    Reject,
    Notify,
    Unreachable,
    Refuse,
    /// Taken to a quarantine facility.
    Transfer {
        facility: String,
        room: String,
    },
    /// The measure starts (at home, or in the facility's room).
    Start,
    /// A test taken at `taken_at` (`lab_test`: the lab result it comes from; a result is
    /// recorded once).
    Test {
        taken_at: Timestamp,
        result: TestResult,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lab_test: Option<String>,
    },
    /// A test of the close contact a secondary contact hangs on.
    LinkedTest {
        contact: String,
        taken_at: Timestamp,
        result: TestResult,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lab_test: Option<String>,
    },
    /// Traced again, or another reason (a later exposure extends the measure).
    AddReason {
        reason: Reason,
    },
    /// An index case was excluded: the reasons that come from it go.
    SourceExcluded {
        source: String,
    },
    Release,
    /// A case leaves isolation: a clinician (or the facility) records that the profile's
    /// discharge criteria are met (`criteria`: what they attest); the engine checks the days
    /// and the negative tests. The only way out of an isolation but a closing reason.
    Discharge {
        criteria: String,
    },
    /// Handed over to another jurisdiction; complete when it acknowledges.
    HandOver {
        to: String,
    },
    Acknowledge,
    Lost,
    Close {
        reason: CloseReason,
    },
    /// A zone a resident is under a measure for was lowered or lifted: its reason goes, and
    /// with no reason left the measure ends (released). The only way out of a zone resident's
    /// measure but a closing reason.
    ZoneEnded {
        zone: String,
    },
}

/// An event: who did what when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub actor: String,
    #[serde(flatten)]
    pub action: Action,
    /// Why, in the actor's words, or the data it comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Why an event was refused (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("`{action}` is not possible in state `{state}`")]
    NotInState { action: &'static str, state: &'static str },
    #[error("release refused: {0}")]
    NotReleasable(String),
    #[error("discharge refused: {0}")]
    NotDischargeable(String),
    #[error("the first event of an episode opens it")]
    NotOpened,
    #[error("an episode is opened once")]
    AlreadyOpen,
    #[error("events go forward in time: {at} is before {last}")]
    OutOfOrder { at: Timestamp, last: Timestamp },
    #[error("{0}")]
    Invalid(String),
}

/// What the caller must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A positive test: open a suspected case for the person and trace it.
    SuspectedCase { person: String, sampled_at: Timestamp },
    /// A secondary contact became a close contact (a new measure: notify and transfer again).
    Promoted,
    /// The person's own isolation, opened (or given the reason) after a positive test converted
    /// their episode (the application opens it; the engine never does).
    Isolation { episode: String },
}

/// The profile's rules and the deployment's calendar.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub profile: &'a Profile,
    pub calendar: &'a Calendar,
}

/// A test of the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestRecord {
    pub taken_at: Timestamp,
    pub result: TestResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lab_test: Option<String>,
}

/// A person's episode, as its events make it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Episode {
    pub person: String,
    pub category: Category,
    pub plan: MeasurePlan,
    pub state: EpisodeState,
    /// When it was opened.
    pub opened: Timestamp,
    /// When the current state was entered.
    pub entered: Timestamp,
    pub confirmed: Option<Timestamp>,
    pub reasons: Vec<Reason>,
    pub owner: String,
    pub tests: Vec<TestRecord>,
    /// Tests of the close contacts a secondary contact hangs on, in order, by contact.
    pub linked_tests: BTreeMap<String, Vec<TestResult>>,
    /// The lab results recorded (as tests or linked tests), each once.
    pub lab_tests: std::collections::BTreeSet<String>,
    pub facility: Option<(String, String)>,
    pub handed_to: Option<String>,
    pub closed: Option<CloseReason>,
    /// The events applied (a restart replays them).
    pub events: usize,
    last: Timestamp,
}

/// A piece of work an episode needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    /// `advance` (leave the current state), `review` (a case in isolation: a test or the
    /// discharge) or `test`.
    pub kind: &'static str,
    /// The test day (from day 0), for tests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<u32>,
    pub due: Timestamp,
    pub overdue: bool,
    pub responsibility: Responsibility,
    /// How many units up the hierarchy it has gone (0: the owning unit).
    pub escalation: u32,
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Open { .. } => "open",
        Action::Confirm => "confirm",
        Action::Reject => "reject",
        Action::Notify => "notify",
        Action::Unreachable => "unreachable",
        Action::Refuse => "refuse",
        Action::Transfer { .. } => "transfer",
        Action::Start => "start",
        Action::Test { .. } => "test",
        Action::LinkedTest { .. } => "linked_test",
        Action::AddReason { .. } => "add_reason",
        Action::SourceExcluded { .. } => "source_excluded",
        Action::Release => "release",
        Action::Discharge { .. } => "discharge",
        Action::HandOver { .. } => "hand_over",
        Action::Acknowledge => "acknowledge",
        Action::Lost => "lost",
        Action::Close { .. } => "close",
        Action::ZoneEnded { .. } => "zone_ended",
    }
}

/// Whether a state is open (the loop is not yet closed).
pub fn is_open(state: EpisodeState) -> bool {
    !matches!(state, EpisodeState::Released | EpisodeState::ConvertedToCase | EpisodeState::Lost | EpisodeState::Closed)
}

impl Episode {
    /// Opens an episode from its first event.
    pub fn open(event: &Event) -> Result<Episode, Refusal> {
        let Action::Open { person, category, plan, reason, owner } = &event.action else {
            return Err(Refusal::NotOpened);
        };
        if plan.phases.is_empty() {
            return Err(Refusal::Invalid("a measure plan has at least one phase".into()));
        }
        if *category == Category::Case && plan.phases[0].kind != MeasureKind::Isolation {
            return Err(Refusal::Invalid("a case's own episode is an isolation".into()));
        }
        Ok(Episode {
            person: person.clone(),
            category: *category,
            plan: plan.clone(),
            state: EpisodeState::Proposed,
            opened: event.at,
            entered: event.at,
            confirmed: None,
            reasons: vec![reason.clone()],
            owner: owner.clone(),
            tests: Vec::new(),
            linked_tests: BTreeMap::new(),
            lab_tests: Default::default(),
            facility: None,
            handed_to: None,
            closed: None,
            events: 1,
            last: event.at,
        })
    }

    /// The episode its events make; the index of the first refused event otherwise.
    pub fn replay(events: &[Event], rules: &Rules) -> Result<Episode, (usize, Refusal)> {
        let first = events.first().ok_or((0, Refusal::NotOpened))?;
        let mut ep = Episode::open(first).map_err(|r| (0, r))?;
        for (i, e) in events.iter().enumerate().skip(1) {
            ep.apply(e, rules).map_err(|r| (i, r))?;
        }
        Ok(ep)
    }

    pub fn is_open(&self) -> bool {
        is_open(self.state)
    }

    /// Day 0: the local date of the latest reason; for a case's isolation, of the earliest (its
    /// onset or first positive sample).
    pub fn day_zero(&self, calendar: &Calendar) -> Date {
        let at = self.reasons.iter().map(|r| r.at);
        let day = if self.is_isolation() { at.min() } else { at.max() };
        calendar.day_of(day.unwrap_or(self.entered))
    }

    /// The start of local day `day` counted from day 0.
    fn day_start(&self, calendar: &Calendar, day: i64) -> Timestamp {
        let date = self.day_zero(calendar).checked_add(jiff::Span::new().days(day)).unwrap_or(Date::MAX);
        calendar.start_of(date)
    }

    /// The local day (from day 0) an instant falls on.
    fn day_of(&self, calendar: &Calendar, t: Timestamp) -> i64 {
        let zero = self.day_zero(calendar);
        i64::from((calendar.day_of(t) - zero).get_days())
    }

    /// The measure's scheduled test days (from day 0), in order.
    pub fn test_days(&self) -> Vec<u32> {
        let mut days = Vec::new();
        let mut offset = 0;
        for phase in &self.plan.phases {
            days.extend(phase.test_days.iter().map(|d| offset + d));
            offset += phase.days;
        }
        days
    }

    /// Each of `days` (scheduled test days, in order) with the negative test that counts for
    /// it: the earliest one not counted for an earlier day, taken that day or later (a missed
    /// test is made up by a later one).
    pub fn scheduled_tests(&self, calendar: &Calendar, days: &[u32]) -> Vec<(u32, Option<Timestamp>)> {
        let mut negatives: Vec<(i64, Timestamp)> = self
            .tests
            .iter()
            .filter(|t| t.result == TestResult::Negative)
            .map(|t| (self.day_of(calendar, t.taken_at), t.taken_at))
            .collect();
        negatives.sort_unstable();
        let mut next = 0;
        days.iter()
            .map(|&day| {
                while next < negatives.len() && negatives[next].0 < i64::from(day) {
                    next += 1;
                }
                let found = negatives.get(next).map(|t| t.1);
                if found.is_some() {
                    next += 1;
                }
                (day, found)
            })
            .collect()
    }

    /// The measure's kind now: that of its first phase (central quarantine is where a person
    /// is transferred to).
    pub fn kind(&self) -> MeasureKind {
        self.plan.phases[0].kind
    }

    /// A case's own episode: isolation until discharge.
    pub fn is_isolation(&self) -> bool {
        self.category == Category::Case
    }

    /// A zone resident's measure: it lasts as long as its zones.
    pub fn is_zone_resident(&self) -> bool {
        self.category == Category::ZoneResident
    }

    /// Whether the measure is in a facility a person is transferred to.
    fn transferable(&self) -> bool {
        matches!(self.kind(), MeasureKind::CentralQuarantine | MeasureKind::Isolation)
    }

    /// Whether the measure may start only in a facility.
    fn must_transfer(&self, rules: &Rules) -> bool {
        match self.kind() {
            MeasureKind::CentralQuarantine => true,
            MeasureKind::Isolation => rules.profile.closed_loop.isolation.transfer_required,
            _ => false,
        }
    }

    /// The earliest discharge the profile allows: the end of its least stay after day 0 (the
    /// local date of the case's onset or first positive sample).
    pub fn earliest_discharge(&self, rules: &Rules) -> Timestamp {
        let min = rules.profile.closed_loop.isolation.discharge.min_days;
        if min == 0 { self.entered } else { self.day_start(rules.calendar, i64::from(min) + 1).max(self.entered) }
    }

    /// Whether a case may be discharged at `at`, or why not: the least stay is over and the
    /// last tests are negative, the profile's number of them, spaced as it says.
    pub fn dischargeable(&self, rules: &Rules, at: Timestamp) -> Result<(), String> {
        let d = &rules.profile.closed_loop.isolation.discharge;
        if d.min_days > 0 && at < self.day_start(rules.calendar, i64::from(d.min_days) + 1) {
            return Err(format!(
                "isolation lasts at least until the end of day {} after day 0 ({})",
                d.min_days,
                self.day_zero(rules.calendar)
            ));
        }
        let need = d.negative_tests as usize;
        if need == 0 {
            return Ok(());
        }
        let mut tests: Vec<&TestRecord> = self.tests.iter().filter(|t| t.taken_at <= at).collect();
        tests.sort_by_key(|t| t.taken_at);
        let last = &tests[tests.len().saturating_sub(need)..];
        let gap = SignedDuration::from_hours(i64::from(d.min_gap_hours));
        let spaced = last.windows(2).all(|w| w[1].taken_at.duration_since(w[0].taken_at) >= gap);
        if last.len() < need || last.iter().any(|t| t.result != TestResult::Negative) || !spaced {
            return Err(format!(
                "the last {need} tests must be negative and taken at least {} h apart ({} tests recorded)",
                d.min_gap_hours,
                tests.len()
            ));
        }
        Ok(())
    }

    /// Applies an event, or refuses it and changes nothing.
    pub fn apply(&mut self, event: &Event, rules: &Rules) -> Result<Vec<Effect>, Refusal> {
        if event.at < self.last {
            return Err(Refusal::OutOfOrder { at: event.at, last: self.last });
        }
        let mut next = self.clone();
        let effects = next.step(event, rules)?;
        next.events += 1;
        next.last = event.at;
        *self = next;
        Ok(effects)
    }

    fn enter(&mut self, state: EpisodeState, at: Timestamp) {
        self.state = state;
        self.entered = at;
    }

    fn step(&mut self, event: &Event, rules: &Rules) -> Result<Vec<Effect>, Refusal> {
        use EpisodeState as S;
        let at = event.at;
        let refuse = || Refusal::NotInState { action: action_name(&event.action), state: self.state.as_str() };
        if !self.is_open() {
            return Err(refuse());
        }
        let state = self.state;
        match &event.action {
            Action::Open { .. } => return Err(Refusal::AlreadyOpen),
            Action::Confirm if state == S::Proposed => {
                self.confirmed = Some(at);
                self.enter(S::Confirmed, at);
            }
            Action::Reject if state == S::Proposed => {
                self.closed = Some(CloseReason::Rejected);
                self.enter(S::Closed, at);
            }
            Action::Notify if matches!(state, S::Confirmed | S::Unreachable | S::Refused) => {
                self.enter(S::Notified, at)
            }
            Action::Unreachable if matches!(state, S::Confirmed | S::Notified | S::Unreachable) => {
                self.enter(S::Unreachable, at)
            }
            Action::Refuse if matches!(state, S::Notified | S::Refused) => self.enter(S::Refused, at),
            Action::Transfer { facility, room } if matches!(state, S::Notified | S::Refused) && self.transferable() => {
                self.facility = Some((facility.clone(), room.clone()));
                self.enter(S::Transferred, at);
            }
            Action::Start
                if state == S::Transferred
                    || (matches!(state, S::Notified | S::Refused) && !self.must_transfer(rules)) =>
            {
                self.enter(S::InMeasure, at)
            }
            Action::Test { lab_test: Some(id), .. } | Action::LinkedTest { lab_test: Some(id), .. }
                if self.lab_tests.contains(id) =>
            {
                return Err(Refusal::Invalid(format!("lab result `{id}` is recorded already")));
            }
            Action::Test { taken_at, result, lab_test } => {
                if *taken_at > at {
                    return Err(Refusal::Invalid(format!(
                        "a test taken at {taken_at} is reported before then, at {at}"
                    )));
                }
                self.tests.push(TestRecord { taken_at: *taken_at, result: *result, lab_test: lab_test.clone() });
                self.lab_tests.extend(lab_test.iter().cloned());
                // A case's positive test is its follow-up, not a conversion.
                if *result == TestResult::Positive && !self.is_isolation() {
                    self.enter(S::ConvertedToCase, at);
                    return Ok(vec![Effect::SuspectedCase { person: self.person.clone(), sampled_at: *taken_at }]);
                }
            }
            Action::LinkedTest { contact, result, lab_test, .. } => {
                if self.category != Category::Secondary || !self.reasons.iter().any(|r| r.via.as_ref() == Some(contact))
                {
                    return Err(Refusal::Invalid(format!("the episode does not hang on close contact `{contact}`")));
                }
                self.lab_tests.extend(lab_test.iter().cloned());
                let tests = self.linked_tests.entry(contact.clone()).or_default();
                tests.push(*result);
                let sc = &rules.profile.secondary_contact;
                let first = sc.release_needs_linked_negative_tests.unwrap_or(0) as usize;
                let promote = sc.linked_positive_makes_close_contact == Some(true)
                    && *result == TestResult::Positive
                    && tests.len() <= first.max(1);
                if promote {
                    self.category = Category::Close;
                    self.plan = rules.profile.close_contact_measure.clone();
                    self.facility = None;
                    self.confirmed = Some(at);
                    self.enter(S::Confirmed, at);
                    return Ok(vec![Effect::Promoted]);
                }
            }
            Action::AddReason { reason } => {
                let before = self.day_zero(rules.calendar);
                if !self.reasons.contains(reason) {
                    self.reasons.push(reason.clone());
                }
                if self.day_zero(rules.calendar) > before
                    && state == S::InMeasure
                    && !self.is_isolation()
                    && !self.is_zone_resident()
                {
                    self.enter(S::Extended, at);
                }
            }
            Action::SourceExcluded { source } => {
                self.reasons.retain(|r| &r.source != source);
                // An isolation left with positive tests only (no case record stands): the
                // excluded case judged them.
                if self.reasons.is_empty()
                    || (self.is_isolation() && self.reasons.iter().all(|r| r.source.starts_with(POSITIVE_SOURCE)))
                {
                    self.closed = Some(CloseReason::Excluded);
                    self.enter(S::Closed, at);
                }
            }
            Action::ZoneEnded { zone } if self.is_zone_resident() => {
                let source = zone_source(zone);
                if !self.reasons.iter().any(|r| r.source == source) {
                    return Err(Refusal::Invalid(format!("the episode has no reason from zone {zone}")));
                }
                self.reasons.retain(|r| r.source != source);
                if self.reasons.is_empty() {
                    self.enter(S::Released, at);
                }
            }
            Action::Release
                if matches!(state, S::InMeasure | S::Extended) && !self.is_isolation() && !self.is_zone_resident() =>
            {
                self.releasable(rules, at).map_err(Refusal::NotReleasable)?;
                self.enter(S::Released, at);
            }
            Action::Discharge { criteria } if matches!(state, S::InMeasure | S::Extended) && self.is_isolation() => {
                if criteria.trim().is_empty() {
                    return Err(Refusal::Invalid(format!(
                        "a discharge says which criteria are met (the profile's: {})",
                        rules.profile.closed_loop.isolation.discharge.criteria
                    )));
                }
                self.dischargeable(rules, at).map_err(Refusal::NotDischargeable)?;
                self.enter(S::Released, at);
            }
            Action::HandOver { to } if state != S::HandedOver => {
                self.handed_to = Some(to.clone());
                self.enter(S::HandedOver, at);
            }
            Action::Acknowledge if state == S::HandedOver => {
                self.closed = Some(CloseReason::HandedOver);
                self.enter(S::Closed, at);
            }
            Action::Lost if !matches!(state, S::Proposed | S::HandedOver) => self.enter(S::Lost, at),
            Action::Close { reason } if *reason != CloseReason::HandedOver => {
                self.closed = Some(*reason);
                self.enter(S::Closed, at);
            }
            _ => return Err(refuse()),
        }
        Ok(Vec::new())
    }

    /// Whether the person may be released at `at`, or why not: the measure's days are over
    /// (or its early release applies), every scheduled test day has a negative test, test
    /// series are complete, and a secondary contact's close contacts had their first tests
    /// negative as the profile requires.
    pub fn releasable(&self, rules: &Rules, at: Timestamp) -> Result<(), String> {
        let cal = rules.calendar;
        let total = i64::from(self.plan.total_days());
        let end = match &self.plan.early_release {
            Some(early)
                if self.tests.iter().any(|t| {
                    t.result == TestResult::Negative
                        && self.day_of(cal, t.taken_at) >= i64::from(early.negative_test_from_day)
                }) =>
            {
                i64::from(early.release_day)
            }
            _ => total,
        };
        if at < self.day_start(cal, end + 1) {
            return Err(format!("the measure runs until the end of day {end} after day 0 ({})", self.day_zero(cal)));
        }
        let due: Vec<u32> = self.test_days().into_iter().filter(|d| i64::from(*d) <= end).collect();
        if let Some((day, _)) = self.scheduled_tests(cal, &due).into_iter().find(|(_, t)| t.is_none()) {
            return Err(format!("no negative test on day {day} (or a later one making up for it)"));
        }
        let mut offset = 0;
        for phase in &self.plan.phases {
            if let Some(series) = &phase.tests {
                let (from, to) = (offset + 1, offset + i64::from(phase.days));
                let mut taken: Vec<Timestamp> = self
                    .tests
                    .iter()
                    .filter(|t| t.result == TestResult::Negative && (from..=to).contains(&self.day_of(cal, t.taken_at)))
                    .map(|t| t.taken_at)
                    .collect();
                taken.sort_unstable();
                // Greedy: the earliest tests spaced at least the gap apart.
                let gap = SignedDuration::from_hours(i64::from(series.min_gap_hours));
                let mut count = 0;
                let mut last: Option<Timestamp> = None;
                for t in taken {
                    if last.is_none_or(|l| t.duration_since(l) >= gap) {
                        count += 1;
                        last = Some(t);
                    }
                }
                if count < series.count {
                    return Err(format!(
                        "{count} of {} negative tests {} h apart in days {from}–{to}",
                        series.count, series.min_gap_hours
                    ));
                }
            }
            offset += i64::from(phase.days);
        }
        if self.category == Category::Secondary {
            let need = rules.profile.secondary_contact.release_needs_linked_negative_tests.unwrap_or(0) as usize;
            for via in self.reasons.iter().filter_map(|r| r.via.as_ref()) {
                let tests = self.linked_tests.get(via).map_or(&[][..], Vec::as_slice);
                if tests.len() < need || tests[..need].iter().any(|r| *r != TestResult::Negative) {
                    return Err(format!("close contact `{via}` has not had {need} negative tests"));
                }
            }
        }
        Ok(())
    }

    /// The deadline of the current state: the profile's for a timed state, the end of the
    /// measure in it; none once closed.
    pub fn deadline(&self, rules: &Rules) -> Option<Timestamp> {
        use EpisodeState as S;
        match self.state {
            S::InMeasure | S::Extended if self.is_isolation() => {
                let iso = &rules.profile.closed_loop.isolation;
                let earliest = self.earliest_discharge(rules);
                let last = self.tests.iter().map(|t| t.taken_at).max().map_or(self.entered, |t| t.max(self.entered));
                Some(earliest.max(last + SignedDuration::from_hours(i64::from(iso.review_every_hours))))
            }
            // A zone resident's measure ends with its zones, reviewed by the zone engine.
            S::InMeasure | S::Extended if self.is_zone_resident() => None,
            S::InMeasure | S::Extended => {
                let end = self
                    .plan
                    .early_release
                    .as_ref()
                    .filter(|e| {
                        self.tests.iter().any(|t| {
                            t.result == TestResult::Negative
                                && self.day_of(rules.calendar, t.taken_at) >= i64::from(e.negative_test_from_day)
                        })
                    })
                    .map_or(i64::from(self.plan.total_days()), |e| i64::from(e.release_day));
                Some(self.day_start(rules.calendar, end + 1))
            }
            s if is_open(s) => {
                let d = rules.profile.closed_loop.deadline_for(self.kind(), s)?;
                let from = match d.from {
                    DeadlineFrom::Entered => self.entered,
                    DeadlineFrom::Confirmed => self.confirmed.unwrap_or(self.entered),
                };
                Some(from + SignedDuration::from_hours(i64::from(d.hours)))
            }
            _ => None,
        }
    }

    /// What is due at `now`: leaving the current state by its deadline, and in the measure
    /// each scheduled test day without a test (due at the end of that local day).
    pub fn tasks(&self, rules: &Rules, now: Timestamp) -> Vec<Task> {
        use EpisodeState as S;
        let mut tasks = Vec::new();
        let every = i64::from(rules.profile.closed_loop.escalate_every_hours.max(1)) * 3600;
        let task = |kind, day, due: Timestamp, responsibility| {
            let late = now.as_second() - due.as_second();
            Task {
                kind,
                day,
                due,
                overdue: late > 0,
                responsibility,
                escalation: if late > 0 { (late / every) as u32 } else { 0 },
            }
        };
        let Some(due) = self.deadline(rules) else { return tasks };
        let responsibility = match self.state {
            S::Proposed => Responsibility::Departmental,
            S::Refused => Responsibility::Individual,
            S::InMeasure | S::Extended => Responsibility::Unit,
            _ => Responsibility::Territorial,
        };
        let in_isolation = self.is_isolation() && matches!(self.state, S::InMeasure | S::Extended);
        tasks.push(task(if in_isolation { "review" } else { "advance" }, None, due, responsibility));
        if matches!(self.state, S::InMeasure | S::Extended) {
            for (day, test) in self.scheduled_tests(rules.calendar, &self.test_days()) {
                if test.is_none() {
                    tasks.push(task(
                        "test",
                        Some(day),
                        self.day_start(rules.calendar, i64::from(day) + 1),
                        Responsibility::Unit,
                    ));
                }
            }
        }
        tasks
    }
}

/// The proposal for an arrival (DESIGN.md §4 "arrivals"): the profile's measure for the
/// origin's risk, counted from leaving the origin or from arriving as the plan says (from
/// notification: from arriving, the earliest it can be); none when the origin has no measure.
pub fn arrival_proposal(profile: &Profile, arrival: &chainbreak_core::model::Arrival, owner: &str) -> Option<Action> {
    use chainbreak_core::profile::DayZero;
    let plan = profile.arrivals.for_origin(arrival.origin_risk)?;
    let at = match plan.day_zero {
        DayZero::LeftOrigin => arrival.left_origin_at,
        DayZero::Arrival | DayZero::Notified | DayZero::LastExposure | DayZero::Diagnosis => arrival.arrived_at,
    };
    Some(Action::Open {
        person: arrival.person_id.clone(),
        category: Category::Arrival,
        plan: plan.clone(),
        reason: Reason {
            source: format!("arrival:{}:{}", arrival.person_id, arrival.arrived_at),
            via: None,
            at,
            evidence: Some(format!(
                "arrival from {} ({}){}",
                arrival.origin,
                arrival.origin_risk.as_str(),
                arrival.trip_id.as_ref().map(|t| format!(" on {t}")).unwrap_or_default()
            )),
        },
        owner: owner.to_string(),
    })
}

/// The owner of a task escalated `level` steps up `chain` (the owning unit first, then its
/// parents up to the command); the top when the chain is shorter.
pub fn escalated_owner(chain: &[String], level: u32) -> Option<&String> {
    chain.get((level as usize).min(chain.len().saturating_sub(1)))
}

/// Episodes by id, with at most one open episode per person and category.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub episodes: BTreeMap<String, Episode>,
    open: BTreeMap<(String, Category), String>,
    /// While a unit of work is open: each touched episode as it was before (none: it did not
    /// exist), to roll back.
    journal: Option<BTreeMap<String, Option<Episode>>>,
    /// The earliest due time of each open episode's tasks (those that have tasks), as computed
    /// since the episode last changed; the same by time ([`Registry::overdue`]).
    due_of: BTreeMap<String, Timestamp>,
    by_due: std::collections::BTreeSet<(Timestamp, String)>,
    /// Episodes touched since their due time was computed.
    stale: std::collections::BTreeSet<String>,
}

impl Registry {
    /// Starts a unit of work: changes from here on can be rolled back.
    pub fn begin(&mut self) {
        self.journal = Some(BTreeMap::new());
    }

    /// Ends the unit of work, keeping its changes.
    pub fn commit(&mut self) {
        self.journal = None;
    }

    /// Undoes every change since [`Registry::begin`].
    pub fn rollback(&mut self) {
        let Some(journal) = self.journal.take() else { return };
        for (id, before) in journal {
            self.stale.insert(id.clone());
            self.open.retain(|_, v| *v != id);
            match before {
                Some(ep) => {
                    if ep.is_open() {
                        self.open.insert((ep.person.clone(), ep.category), id.clone());
                    }
                    self.episodes.insert(id, ep);
                }
                None => {
                    self.episodes.remove(&id);
                }
            }
        }
    }

    /// Records `id`'s state before it is first touched in the unit of work.
    fn touch(&mut self, id: &str) {
        self.stale.insert(id.to_string());
        if let Some(journal) = &mut self.journal
            && !journal.contains_key(id)
        {
            journal.insert(id.to_string(), self.episodes.get(id).cloned());
        }
    }

    /// Opens an episode under `id`, or, when the person already has an open one of the
    /// category, adds the reason to it. Returns the id the event went to and the event as
    /// applied (the `open`, or the `add_reason` it became), to be stored.
    pub fn open_or_add(&mut self, id: &str, event: &Event, rules: &Rules) -> Result<(String, Event), Refusal> {
        let Action::Open { person, category, reason, .. } = &event.action else { return Err(Refusal::NotOpened) };
        if let Some(existing) = self.open.get(&(person.clone(), *category)).cloned() {
            let add = Event {
                at: event.at,
                actor: event.actor.clone(),
                action: Action::AddReason { reason: reason.clone() },
                note: event.note.clone(),
            };
            self.apply(&existing, &add, rules)?;
            return Ok((existing, add));
        }
        if self.episodes.contains_key(id) {
            return Err(Refusal::AlreadyOpen);
        }
        let ep = Episode::open(event)?;
        self.touch(id);
        self.open.insert((person.clone(), *category), id.to_string());
        self.episodes.insert(id.to_string(), ep);
        Ok((id.to_string(), event.clone()))
    }

    /// Applies an event to episode `id`.
    pub fn apply(&mut self, id: &str, event: &Event, rules: &Rules) -> Result<Vec<Effect>, Refusal> {
        self.touch(id);
        let ep = self.episodes.get_mut(id).ok_or_else(|| Refusal::Invalid(format!("no episode `{id}`")))?;
        let before = (ep.person.clone(), ep.category);
        let mut effects = ep.apply(event, rules)?;
        let (open, after) = (ep.is_open(), (ep.person.clone(), ep.category));
        if self.open.get(&before).map(String::as_str) == Some(id) {
            self.open.remove(&before);
        }
        if !open {
            return Ok(effects);
        }
        match self.open.get(&after).cloned() {
            // Promoted into a category the person already has an open episode of: that one
            // takes the reasons, this one closes as its duplicate.
            Some(other) if other != id => {
                let reasons = self.episodes[id].reasons.clone();
                for reason in reasons {
                    let add = Event {
                        at: event.at,
                        actor: event.actor.clone(),
                        action: Action::AddReason { reason },
                        note: None,
                    };
                    effects.extend(self.apply(&other, &add, rules)?);
                }
                let close = Event {
                    at: event.at,
                    actor: event.actor.clone(),
                    action: Action::Close { reason: CloseReason::MergedDuplicate },
                    note: Some(format!("merged into {other}")),
                };
                if let Some(ep) = self.episodes.get_mut(id) {
                    ep.apply(&close, rules)?;
                }
            }
            _ => {
                self.open.insert(after, id.to_string());
            }
        }
        Ok(effects)
    }

    /// Applies a stored event as it was accepted (a restart, or events another process wrote):
    /// an `open` opens the episode under `id`, anything else applies to it. No merging of
    /// duplicates: that was decided when the event was first accepted.
    pub fn replay(&mut self, id: &str, event: &Event, rules: &Rules) -> Result<(), Refusal> {
        self.touch(id);
        if let Action::Open { .. } = event.action {
            let ep = Episode::open(event)?;
            self.open.insert((ep.person.clone(), ep.category), id.to_string());
            self.episodes.insert(id.to_string(), ep);
            return Ok(());
        }
        let ep = self.episodes.get_mut(id).ok_or_else(|| Refusal::Invalid(format!("no episode `{id}`")))?;
        let before = (ep.person.clone(), ep.category);
        ep.apply(event, rules)?;
        let (open, after) = (ep.is_open(), (ep.person.clone(), ep.category));
        if self.open.get(&before).map(String::as_str) == Some(id) {
            self.open.remove(&before);
        }
        if open {
            self.open.insert(after, id.to_string());
        }
        Ok(())
    }

    /// The open episode of a person in a category.
    pub fn open_episode(&self, person: &str, category: Category) -> Option<&String> {
        self.open.get(&(person.to_string(), category))
    }

    /// The open episodes with a task due before `now` (overdue), by id. A task's due time does
    /// not depend on the time of asking, so each episode's earliest is kept until the episode
    /// changes: a call costs the episodes changed since the last one and the overdue ones, not
    /// every open episode (a million isolations at the peak of an outbreak). `rules` must be
    /// the same at every call (the deployment's).
    pub fn overdue(&mut self, rules: &Rules, now: Timestamp) -> Vec<String> {
        for id in std::mem::take(&mut self.stale) {
            if let Some(old) = self.due_of.remove(&id) {
                self.by_due.remove(&(old, id.clone()));
            }
            let Some(ep) = self.episodes.get(&id).filter(|e| e.is_open()) else { continue };
            if let Some(due) = ep.tasks(rules, now).iter().map(|t| t.due).min() {
                self.due_of.insert(id.clone(), due);
                self.by_due.insert((due, id));
            }
        }
        self.by_due.range(..(now, String::new())).map(|(_, id)| id.clone()).collect()
    }
}
