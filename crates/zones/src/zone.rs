//! A zone's record (issue 8 "history and publication"): every zone is event-sourced. Its
//! events are the history — proposed with reasons, confirmed or rejected by a commander,
//! lowered by a rule, lifted, lapsed, each screening round completed — and [`Zone`] is what
//! they leave. [`Zone::apply`] refuses what the zone's state does not allow, so a stored
//! history always replays.

use chainbreak_core::model::ZoneLevel;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::lifecycle::{Change, Entered, ZoneState};
use crate::{Reason, Target, Why, severity};

/// Where a zone is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Proposed by the engine; nothing is in force until a commander confirms it.
    Proposed,
    /// In force at its level.
    Confirmed,
    /// A commander rejected the proposal.
    Rejected,
    /// Lowered to low by its rules, or lifted by a commander.
    Lifted,
    /// A widening whose reason passed (the source was found, or its period ended).
    Lapsed,
}

impl Status {
    /// Proposed or confirmed: the zone may still change.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Proposed | Status::Confirmed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Proposed => "proposed",
            Status::Confirmed => "confirmed",
            Status::Rejected => "rejected",
            Status::Lifted => "lifted",
            Status::Lapsed => "lapsed",
        }
    }
}

/// A completed screening round of a zone's area (or place).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// The round's day (the deployment's local date).
    pub on: Date,
    pub tested: u32,
    pub positives: u32,
    pub completed_at: Timestamp,
}

impl Round {
    /// An all-negative round: the only kind that counts towards lowering a zone.
    pub fn all_negative(&self) -> bool {
        self.positives == 0 && self.tested > 0
    }
}

/// What happens to a zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ZoneAction {
    /// The engine proposes the zone, with its reasons.
    Propose { target: Target, level: ZoneLevel, needs_confirmation: bool, widening: bool, reasons: Vec<Reason> },
    /// More reasons: another case in the zone. At a higher level than the zone's, a raise for a
    /// commander to confirm.
    AddReasons { level: ZoneLevel, reasons: Vec<Reason> },
    /// A commander confirms the proposal (or the pending raise); the zone is in force from
    /// `on`.
    Confirm { note: Option<String> },
    /// A commander rejects the proposal (or the pending raise), saying why.
    Reject { note: String },
    /// The profile's rule lowers the zone (to low: the zone is lifted).
    Lower { change: Change },
    /// A commander lifts the zone before its rule does, saying why.
    Lift { note: String },
    /// A widening lapses: its cases' sources were found, or its period passed.
    Lapse { why: String },
    /// A screening round of the zone was completed.
    Round { round: Round },
}

impl ZoneAction {
    pub fn name(&self) -> &'static str {
        match self {
            ZoneAction::Propose { .. } => "propose",
            ZoneAction::AddReasons { .. } => "add_reasons",
            ZoneAction::Confirm { .. } => "confirm",
            ZoneAction::Reject { .. } => "reject",
            ZoneAction::Lower { .. } => "lower",
            ZoneAction::Lift { .. } => "lift",
            ZoneAction::Lapse { .. } => "lapse",
            ZoneAction::Round { .. } => "round",
        }
    }
}

/// One event of a zone's history: when (instant and the deployment's local date), by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneEvent {
    pub zone: String,
    pub at: Timestamp,
    pub on: Date,
    pub actor: String,
    pub action: ZoneAction,
}

/// Why an event cannot apply to a zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("zone {zone}: the first event must be a proposal")]
    NotProposed { zone: String },
    #[error("zone {zone} is {status}: `{action}` does not apply")]
    WrongStatus { zone: String, status: &'static str, action: &'static str },
    #[error("zone {zone}: {why}")]
    Invalid { zone: String, why: String },
}

/// A zone as its events left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub id: String,
    pub target: Target,
    pub status: Status,
    /// The level proposed, or in force once confirmed.
    pub level: ZoneLevel,
    /// A higher level proposed while the zone is in force, awaiting a commander.
    pub raise: Option<ZoneLevel>,
    /// How it reached its level, and since which day (set on confirmation).
    pub entered: Entered,
    pub since: Option<Date>,
    pub needs_confirmation: bool,
    /// Drawn only by widening for cases of unknown source.
    pub widening: bool,
    pub reasons: Vec<Reason>,
    pub rounds: Vec<Round>,
    pub proposed_on: Date,
    /// The day it ended (lifted, lapsed, rejected).
    pub ended_on: Option<Date>,
    pub updated_at: Timestamp,
    pub events: u32,
}

impl Zone {
    /// The zone its first event proposes.
    pub fn open(event: &ZoneEvent) -> Result<Zone, Refusal> {
        let ZoneAction::Propose { target, level, needs_confirmation, widening, reasons } = &event.action else {
            return Err(Refusal::NotProposed { zone: event.zone.clone() });
        };
        if reasons.is_empty() {
            return Err(Refusal::Invalid { zone: event.zone.clone(), why: "a proposal gives its reasons".into() });
        }
        Ok(Zone {
            id: event.zone.clone(),
            target: target.clone(),
            status: Status::Proposed,
            level: *level,
            raise: None,
            entered: Entered::Designated,
            since: None,
            needs_confirmation: *needs_confirmation,
            widening: *widening,
            reasons: reasons.clone(),
            rounds: Vec::new(),
            proposed_on: event.on,
            ended_on: None,
            updated_at: event.at,
            events: 1,
        })
    }

    /// Replays a history.
    pub fn replay(events: &[ZoneEvent]) -> Result<Zone, Refusal> {
        let (first, rest) = events.split_first().ok_or(Refusal::NotProposed { zone: String::new() })?;
        let mut zone = Zone::open(first)?;
        for e in rest {
            zone.apply(e)?;
        }
        Ok(zone)
    }

    /// The zone's state for the lowering rules, once in force.
    pub fn state(&self) -> Option<ZoneState> {
        match (self.status, self.since) {
            (Status::Confirmed, Some(since)) => Some(ZoneState { level: self.level, entered: self.entered, since }),
            _ => None,
        }
    }

    /// The cases that count as infections in the zone: those living in it or that stayed there
    /// (not those of the county around it).
    pub fn infection_cases(&self) -> Vec<&str> {
        let mut ids: Vec<&str> =
            self.reasons.iter().filter(|r| r.why != Why::County).map(|r| r.case_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Applies an event the zone's status allows.
    pub fn apply(&mut self, event: &ZoneEvent) -> Result<(), Refusal> {
        let wrong = |z: &Zone| Refusal::WrongStatus {
            zone: z.id.clone(),
            status: z.status.as_str(),
            action: event.action.name(),
        };
        let invalid = |z: &Zone, why: String| Refusal::Invalid { zone: z.id.clone(), why };
        if event.zone != self.id {
            return Err(invalid(self, format!("event of zone {} applied here", event.zone)));
        }
        match &event.action {
            ZoneAction::Propose { .. } => return Err(wrong(self)),
            ZoneAction::AddReasons { level, reasons } => {
                if !self.status.is_open() {
                    return Err(wrong(self));
                }
                if reasons.is_empty() {
                    return Err(invalid(self, "no reasons to add".into()));
                }
                if severity(*level) > severity(self.level) {
                    if self.status == Status::Proposed {
                        self.level = *level;
                    } else if self.raise.is_none_or(|r| severity(*level) > severity(r)) {
                        self.raise = Some(*level);
                    }
                }
                let drawn = reasons.iter().any(|r| r.why != Why::UnknownSource);
                if drawn {
                    // A rule draws the zone now, not only the widening.
                    self.widening = false;
                }
                for r in reasons {
                    if !self.reasons.contains(r) {
                        self.reasons.push(r.clone());
                    }
                }
            }
            ZoneAction::Confirm { .. } => match (self.status, self.raise) {
                (Status::Proposed, _) => {
                    self.status = Status::Confirmed;
                    self.entered = Entered::Designated;
                    self.since = Some(event.on);
                }
                (Status::Confirmed, Some(raise)) => {
                    self.level = raise;
                    self.raise = None;
                    self.entered = Entered::Designated;
                    self.since = Some(event.on);
                }
                _ => return Err(wrong(self)),
            },
            ZoneAction::Reject { note } => {
                if note.trim().is_empty() {
                    return Err(invalid(self, "a rejection says why".into()));
                }
                match (self.status, self.raise) {
                    (Status::Proposed, _) => {
                        self.status = Status::Rejected;
                        self.ended_on = Some(event.on);
                    }
                    (Status::Confirmed, Some(_)) => self.raise = None,
                    _ => return Err(wrong(self)),
                }
            }
            ZoneAction::Lower { change } => {
                if self.status != Status::Confirmed {
                    return Err(wrong(self));
                }
                if change.from != self.level || severity(change.to) >= severity(change.from) {
                    return Err(invalid(
                        self,
                        format!("lowering from {} to {} does not fit a {} zone", change.from, change.to, self.level),
                    ));
                }
                self.level = change.to;
                self.entered = Entered::Downgraded;
                self.since = Some(change.on);
                self.raise = None;
                if change.to == ZoneLevel::Low {
                    self.status = Status::Lifted;
                    self.ended_on = Some(change.on);
                }
            }
            ZoneAction::Lift { note } => {
                if self.status != Status::Confirmed {
                    return Err(wrong(self));
                }
                if note.trim().is_empty() {
                    return Err(invalid(self, "a lifting by hand says why".into()));
                }
                self.status = Status::Lifted;
                self.raise = None;
                self.ended_on = Some(event.on);
            }
            ZoneAction::Lapse { why } => {
                if !self.status.is_open() {
                    return Err(wrong(self));
                }
                if !self.widening {
                    return Err(invalid(self, "only a widening lapses".into()));
                }
                if why.trim().is_empty() {
                    return Err(invalid(self, "a lapse says why".into()));
                }
                self.status = Status::Lapsed;
                self.ended_on = Some(event.on);
            }
            ZoneAction::Round { round } => {
                if self.status != Status::Confirmed {
                    return Err(wrong(self));
                }
                if self.since.is_some_and(|s| round.on < s) {
                    return Err(invalid(
                        self,
                        format!("a round on {} is before the zone's day {:?}", round.on, self.since),
                    ));
                }
                if round.positives > round.tested {
                    return Err(invalid(self, format!("{} positives of {} tested", round.positives, round.tested)));
                }
                let at = self.rounds.partition_point(|r| r.on <= round.on);
                self.rounds.insert(at, round.clone());
            }
        }
        self.updated_at = event.at;
        self.events += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: i8) -> Date {
        jiff::civil::date(2022, 4, d)
    }

    fn ev(d: i8, action: ZoneAction) -> ZoneEvent {
        ZoneEvent {
            zone: "area:K1:1".into(),
            at: day(d).to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp(),
            on: day(d),
            actor: "commander".into(),
            action,
        }
    }

    fn reason(case: &str, why: Why) -> Reason {
        Reason { case_id: case.into(), why, from: "B1".into() }
    }

    fn proposed() -> Zone {
        Zone::open(&ev(
            1,
            ZoneAction::Propose {
                target: Target::Area("K1".into()),
                level: ZoneLevel::High,
                needs_confirmation: true,
                widening: false,
                reasons: vec![reason("C1", Why::Residence)],
            },
        ))
        .unwrap()
    }

    #[test]
    fn a_zone_is_in_force_only_once_confirmed_and_lowered_by_rule() {
        let mut z = proposed();
        assert_eq!(z.state(), None);
        z.apply(&ev(2, ZoneAction::Confirm { note: None })).unwrap();
        assert_eq!(z.state(), Some(ZoneState { level: ZoneLevel::High, entered: Entered::Designated, since: day(2) }));
        let lower = |on, from, to| Change { on, from, to, rule: 0, counted_from: day(2), round: None };
        // A lowering that does not fit the zone's level is refused.
        assert!(
            z.apply(&ev(9, ZoneAction::Lower { change: lower(day(9), ZoneLevel::Medium, ZoneLevel::Low) })).is_err()
        );
        z.apply(&ev(9, ZoneAction::Lower { change: lower(day(9), ZoneLevel::High, ZoneLevel::Medium) })).unwrap();
        assert_eq!((z.level, z.entered, z.since), (ZoneLevel::Medium, Entered::Downgraded, Some(day(9))));
        z.apply(&ev(12, ZoneAction::Lower { change: lower(day(12), ZoneLevel::Medium, ZoneLevel::Low) })).unwrap();
        assert_eq!((z.status, z.ended_on), (Status::Lifted, Some(day(12))));
        assert!(z.apply(&ev(13, ZoneAction::Confirm { note: None })).is_err());
        assert_eq!(z.events, 4);
    }

    #[test]
    fn a_raise_waits_for_a_commander_and_rejections_say_why() {
        let mut z = proposed();
        z.level = ZoneLevel::Medium;
        z.apply(&ev(2, ZoneAction::Confirm { note: None })).unwrap();
        z.apply(&ev(3, ZoneAction::AddReasons { level: ZoneLevel::High, reasons: vec![reason("C2", Why::Residence)] }))
            .unwrap();
        assert_eq!((z.level, z.raise), (ZoneLevel::Medium, Some(ZoneLevel::High)));
        assert!(z.apply(&ev(3, ZoneAction::Reject { note: " ".into() })).is_err());
        z.apply(&ev(4, ZoneAction::Confirm { note: Some("two cases".into()) })).unwrap();
        assert_eq!((z.level, z.raise, z.since), (ZoneLevel::High, None, Some(day(4))));
        assert_eq!(z.infection_cases(), vec!["C1", "C2"]);
    }

    #[test]
    fn only_widenings_lapse_and_rounds_come_in_order() {
        let mut z = proposed();
        assert!(z.apply(&ev(2, ZoneAction::Lapse { why: "source found".into() })).is_err());
        z.widening = true;
        z.apply(&ev(2, ZoneAction::Confirm { note: None })).unwrap();
        let round = |d: i8, positives| Round {
            on: day(d),
            tested: 10,
            positives,
            completed_at: ev(d, ZoneAction::Confirm { note: None }).at,
        };
        assert!(z.apply(&ev(1, ZoneAction::Round { round: round(1, 0) })).is_err(), "before the zone");
        z.apply(&ev(4, ZoneAction::Round { round: round(4, 1) })).unwrap();
        z.apply(&ev(4, ZoneAction::Round { round: round(3, 0) })).unwrap();
        assert_eq!(
            z.rounds.iter().map(|r| (r.on, r.all_negative())).collect::<Vec<_>>(),
            vec![(day(3), true), (day(4), false)]
        );
        z.apply(&ev(5, ZoneAction::Lapse { why: "source of C1 found".into() })).unwrap();
        assert_eq!(z.status, Status::Lapsed);
    }

    #[test]
    fn a_history_replays_and_serialises() {
        let events = vec![
            ev(
                1,
                ZoneAction::Propose {
                    target: Target::Place("L1".into()),
                    level: ZoneLevel::Medium,
                    needs_confirmation: false,
                    widening: false,
                    reasons: vec![reason("C1", Why::Stayed)],
                },
            ),
            ev(2, ZoneAction::Confirm { note: None }),
            ev(3, ZoneAction::Lift { note: "venue closed and disinfected".into() }),
        ];
        let json = serde_json::to_string(&events).unwrap();
        let back: Vec<ZoneEvent> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, events);
        let z = Zone::replay(&back).unwrap();
        assert_eq!((z.status, z.events), (Status::Lifted, 3));
        assert!(Zone::replay(&events[1..]).is_err());
    }
}
