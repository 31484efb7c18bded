//! Service requests in controlled zones (封控区服务保障: hard control, soft service).
//!
//! A resident under a zone or home measure (or a staff member for them) files a request —
//! medicine, dialysis or other medical care, childbirth, food, other — with a priority, an
//! owning unit and a deadline by kind and priority from the profile. A request is its events:
//! [`ServiceRequest::apply`] applies one or refuses it with a reason and changes nothing, so a
//! stored history replays ([`replay`]) to the same request after a restart. A request closes
//! only with an outcome; a late one escalates one unit up every `escalate_every_minutes`, as
//! the episodes' tasks do ([`crate::escalated_owner`]), and the escalation pass records each
//! step as an event ([`ServiceRequest::escalation_due`]).

use chainbreak_core::profile::{RequestKind, RequestPriority, ServiceRequests};
use chainbreak_core::vocabulary;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

vocabulary!(
    /// Where a request stands.
    RequestState { Open = "open", InProgress = "in_progress", Closed = "closed" }
);

vocabulary!(
    /// How a request ended.
    RequestOutcome {
        /// Delivered or done (medicine brought, taken to dialysis, admitted for childbirth...).
        Fulfilled = "fulfilled",
        /// Handed to another service (a hospital, the emergency line) that took it.
        Referred = "referred",
        /// The resident no longer needs it.
        Withdrawn = "withdrawn",
        /// It could not be done; the note says why.
        Unfulfilled = "unfulfilled"
    }
);

/// What happened to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RequestEvent {
    /// Filed for `person`, by the resident or a staff member (`filed_by`), with the deadline the
    /// profile gave it then.
    File {
        person: String,
        kind: RequestKind,
        priority: RequestPriority,
        owner: String,
        due: Timestamp,
        /// The measure or zone that makes the person eligible (an episode id).
        basis: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The owner took it on.
    Accept {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Handed to another unit.
    Reassign { owner: String },
    /// Past its deadline: it went `level` units up, to `unit` (recorded by the escalation pass).
    Escalate { level: u32, unit: String },
    /// Closed, with its outcome.
    Close {
        outcome: RequestOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A note on the record.
    Comment { note: String },
}

impl RequestEvent {
    pub fn name(&self) -> &'static str {
        match self {
            RequestEvent::File { .. } => "file",
            RequestEvent::Accept { .. } => "accept",
            RequestEvent::Reassign { .. } => "reassign",
            RequestEvent::Escalate { .. } => "escalate",
            RequestEvent::Close { .. } => "close",
            RequestEvent::Comment { .. } => "comment",
        }
    }
}

/// A service request, as its events left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceRequest {
    pub id: String,
    pub person: String,
    pub kind: RequestKind,
    pub priority: RequestPriority,
    pub owner: String,
    pub state: RequestState,
    pub basis: String,
    pub filed_at: Timestamp,
    pub due: Timestamp,
    /// How many units up it has gone (as recorded).
    pub escalation: u32,
    /// The unit it sits at after the recorded escalations (the owner when none).
    pub unit: String,
    pub outcome: Option<RequestOutcome>,
    pub closed_at: Option<Timestamp>,
    /// The events applied.
    pub events: u32,
}

/// The deadline of a new request: `filed_at` plus the profile's minutes for its kind and
/// priority; none when the profile has no rule for the kind.
pub fn due(
    rules: &ServiceRequests,
    kind: RequestKind,
    priority: RequestPriority,
    filed_at: Timestamp,
) -> Option<Timestamp> {
    let minutes = rules.deadline_minutes(kind, priority)?;
    Some(filed_at + SignedDuration::from_mins(i64::from(minutes)))
}

fn note_ok(note: &Option<String>) -> Result<(), String> {
    match note {
        Some(n) if n.trim().is_empty() => Err("a note, when given, must not be blank".into()),
        _ => Ok(()),
    }
}

impl ServiceRequest {
    /// A request from its first event (which must be `File`).
    pub fn file(id: &str, event: &RequestEvent, at: Timestamp) -> Result<ServiceRequest, String> {
        let RequestEvent::File { person, kind, priority, owner, due, basis, note } = event else {
            return Err(format!("request `{id}` does not exist: its first event must be `file`"));
        };
        note_ok(note)?;
        if person.trim().is_empty() || owner.trim().is_empty() {
            return Err("a request names its person and its owning unit".into());
        }
        if *due < at {
            return Err(format!("the deadline {due} is before the filing {at}"));
        }
        Ok(ServiceRequest {
            id: id.to_string(),
            person: person.clone(),
            kind: *kind,
            priority: *priority,
            owner: owner.clone(),
            state: RequestState::Open,
            basis: basis.clone(),
            filed_at: at,
            due: *due,
            escalation: 0,
            unit: owner.clone(),
            outcome: None,
            closed_at: None,
            events: 1,
        })
    }

    pub fn is_open(&self) -> bool {
        self.state != RequestState::Closed
    }

    /// Applies `event` at `at`, or refuses it (and changes nothing).
    pub fn apply(&mut self, event: &RequestEvent, at: Timestamp) -> Result<(), String> {
        if !self.is_open() && !matches!(event, RequestEvent::Comment { .. }) {
            return Err(format!("request {} is closed ({})", self.id, self.outcome.map_or("", |o| o.as_str())));
        }
        match event {
            RequestEvent::File { .. } => return Err(format!("request {} is filed already", self.id)),
            RequestEvent::Accept { note } => {
                note_ok(note)?;
                if self.state != RequestState::Open {
                    return Err(format!("request {} is {}, not open", self.id, self.state));
                }
                self.state = RequestState::InProgress;
            }
            RequestEvent::Reassign { owner } => {
                if owner.trim().is_empty() {
                    return Err("name the unit to hand the request to".into());
                }
                if *owner == self.owner {
                    return Err(format!("request {} is owned by {owner} already", self.id));
                }
                self.owner = owner.clone();
                self.unit = owner.clone();
                self.escalation = 0;
            }
            RequestEvent::Escalate { level, unit } => {
                if *level <= self.escalation {
                    return Err(format!("request {} has escalated {} levels already", self.id, self.escalation));
                }
                self.escalation = *level;
                self.unit = unit.clone();
            }
            RequestEvent::Close { outcome, note } => {
                note_ok(note)?;
                if *outcome == RequestOutcome::Unfulfilled && note.is_none() {
                    return Err("an unfulfilled request needs a note saying why".into());
                }
                self.state = RequestState::Closed;
                self.outcome = Some(*outcome);
                self.closed_at = Some(at);
            }
            RequestEvent::Comment { note } => {
                if note.trim().is_empty() {
                    return Err("a comment needs text".into());
                }
            }
        }
        self.events += 1;
        Ok(())
    }

    /// Whether it is past its deadline at `now` (open requests only).
    pub fn overdue(&self, now: Timestamp) -> bool {
        self.is_open() && now > self.due
    }

    /// How many units up an open request should be at `now`: as a task's escalation, one step
    /// per `escalate_every_minutes` past the deadline (0 in the first period).
    pub fn escalation_at(&self, rules: &ServiceRequests, now: Timestamp) -> u32 {
        let late = now.as_second() - self.due.as_second();
        if !self.is_open() || late <= 0 {
            return 0;
        }
        (late / (i64::from(rules.escalate_every_minutes.max(1)) * 60)) as u32
    }

    /// The escalation to record at `now` up `chain` (the owner first, then its parent units):
    /// none when the request is where it should be.
    pub fn escalation_due(&self, rules: &ServiceRequests, chain: &[String], now: Timestamp) -> Option<RequestEvent> {
        let level = self.escalation_at(rules, now);
        if level <= self.escalation {
            return None;
        }
        let unit = crate::escalated_owner(chain, level).cloned().unwrap_or_else(|| self.owner.clone());
        Some(RequestEvent::Escalate { level, unit })
    }
}

/// A request from its events in order (a restart); the first refusal is an error.
pub fn replay(id: &str, events: &[(Timestamp, RequestEvent)]) -> Result<ServiceRequest, String> {
    let ((at, first), rest) = events.split_first().ok_or_else(|| format!("request `{id}` has no events"))?;
    let mut r = ServiceRequest::file(id, first, *at)?;
    for (at, e) in rest {
        r.apply(e, *at).map_err(|why| format!("request {id}: stored event `{}` refused: {why}", e.name()))?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainbreak_core::profile::Profile;

    fn rules() -> ServiceRequests {
        Profile::builtin("cn-2022-9th").unwrap().service_requests.unwrap()
    }

    fn t(minutes: i64) -> Timestamp {
        Timestamp::from_second(1_650_000_000 + minutes * 60).unwrap()
    }

    fn filed(kind: RequestKind, priority: RequestPriority) -> (RequestEvent, ServiceRequest) {
        let e = RequestEvent::File {
            person: "P1".into(),
            kind,
            priority,
            owner: "STATION-1".into(),
            due: due(&rules(), kind, priority, t(0)).unwrap(),
            basis: "EP-P1".into(),
            note: None,
        };
        let r = ServiceRequest::file("R1", &e, t(0)).unwrap();
        (e, r)
    }

    #[test]
    fn urgent_medical_is_due_within_the_hour_and_escalates_each_period_late() {
        let (_, r) = filed(RequestKind::Dialysis, RequestPriority::Urgent);
        assert_eq!(r.due, t(60));
        let chain: Vec<String> = ["STATION-1", "SUBDISTRICT", "DISTRICT"].map(String::from).to_vec();
        assert!(!r.overdue(t(60)) && r.overdue(t(61)));
        assert_eq!(r.escalation_due(&rules(), &chain, t(100)), None, "the first period stays with the owner");
        let step = r.escalation_due(&rules(), &chain, t(121)).unwrap();
        assert_eq!(step, RequestEvent::Escalate { level: 1, unit: "SUBDISTRICT".into() });
        let mut r2 = r.clone();
        r2.apply(&step, t(121)).unwrap();
        assert_eq!(r2.escalation_due(&rules(), &chain, t(150)), None, "recorded once");
        // Far past: the top keeps it.
        assert_eq!(
            r2.escalation_due(&rules(), &chain, t(60 + 60 * 9)),
            Some(RequestEvent::Escalate { level: 9, unit: "DISTRICT".into() })
        );
        // A lower level than recorded is refused.
        assert!(r2.clone().apply(&RequestEvent::Escalate { level: 1, unit: "X".into() }, t(200)).is_err());
    }

    #[test]
    fn a_request_closes_only_with_an_outcome_and_stays_closed() {
        let (file, mut r) = filed(RequestKind::Food, RequestPriority::Normal);
        assert_eq!(r.due, t(24 * 60));
        let unfulfilled = RequestEvent::Close { outcome: RequestOutcome::Unfulfilled, note: None };
        let before = r.clone();
        assert!(r.apply(&unfulfilled, t(5)).is_err());
        assert_eq!(r, before, "a refusal changes nothing");
        r.apply(&RequestEvent::Accept { note: None }, t(5)).unwrap();
        let close = RequestEvent::Close { outcome: RequestOutcome::Fulfilled, note: Some("delivered".into()) };
        r.apply(&close, t(30)).unwrap();
        assert_eq!(
            (r.state, r.outcome, r.closed_at),
            (RequestState::Closed, Some(RequestOutcome::Fulfilled), Some(t(30)))
        );
        assert!(r.apply(&RequestEvent::Accept { note: None }, t(31)).is_err());
        assert_eq!(r.escalation_at(&rules(), t(100_000)), 0, "a closed request never escalates");
        // Replay gives the same request; a history that does not start with filing is refused.
        let history = [(t(0), file), (t(5), RequestEvent::Accept { note: None }), (t(30), close)];
        assert_eq!(replay("R1", &history).unwrap(), r);
        assert!(replay("R1", &history[1..]).is_err());
    }
}
