//! Alerts and their triage (issue 7): raised by triggers ([`crate::triggers`]), by reviewers
//! escalating aberration alarms ([`crate::surveillance`]), by silent sentinels, or by a person;
//! owned by a unit and moved `new → acknowledged → investigating → closed` with an outcome.
//!
//! Every move is checked here (role `triage_alerts`, jurisdiction, the workflow) and written in
//! one batch with the alert's event (actor, time, note) and an audit record `alert_transition`;
//! a refused move changes nothing and says why. An alert lies in its area, at its place or with
//! its person ([`chainbreak_store::AlertRow`]); outside a user's jurisdiction it reads as absent.

use chainbreak_core::access::{Permission, User};
use chainbreak_core::model::AlertState;
use chainbreak_store::{AlertEvent, AlertFilter, AlertKind, AlertOutcome, AlertRow, Batch, ClockRow, Entity, Scope};
use serde::{Deserialize, Serialize};

use crate::accounts::Actor;
use crate::{AppError, Deployment};

/// A triage move.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertAction {
    /// `new → acknowledged`: the unit owns it (the given one, else the user's).
    Acknowledge {
        #[serde(default)]
        owner_unit: Option<String>,
    },
    /// `acknowledged → investigating`.
    Investigate,
    /// `acknowledged` or `investigating` → `closed`, with how it ended.
    Close { outcome: AlertOutcome },
    /// A note on the alert (its `note`), in any state; the state stays.
    Comment,
}

impl AlertAction {
    /// The state the move leads to from `from`, or why it is refused.
    pub fn next(&self, from: AlertState) -> Result<AlertState, String> {
        use AlertState::*;
        match (self, from) {
            (AlertAction::Comment, s) => Ok(s),
            (_, Closed) => Err("the alert is closed; nothing moves it any more".into()),
            (AlertAction::Acknowledge { .. }, New) => Ok(Acknowledged),
            (AlertAction::Acknowledge { .. }, s) => Err(format!("only a new alert is acknowledged; this one is {s}")),
            (AlertAction::Investigate, Acknowledged) => Ok(Investigating),
            (AlertAction::Investigate, Investigating) => Err("the alert is under investigation already".into()),
            (AlertAction::Investigate, New) => Err("acknowledge the alert first: it needs an owner".into()),
            (AlertAction::Close { .. }, New) => Err("acknowledge the alert first: it is closed by its owner".into()),
            (AlertAction::Close { .. }, Acknowledged | Investigating) => Ok(Closed),
        }
    }
}

/// An alert as a reader sees it: the row, its details, its triage history and, for a case's
/// alert, the case's response clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    #[serde(flatten)]
    pub alert: AlertRow,
    pub details: serde_json::Value,
    pub history: Vec<AlertEvent>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_clock: Vec<ClockView>,
}

/// One item of a case's response clock, with whether it is late at the time of reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockView {
    #[serde(flatten)]
    pub item: ClockRow,
    /// Stopped after its due time, or not stopped and due already.
    pub late: bool,
}

/// Raises an alert in `batch` with an audit record `alert_raise`; `Some(id)` when it is new
/// (an alert with its key exists otherwise).
pub(crate) fn raise_in(batch: &mut dyn Batch, row: AlertRow, actor: &Actor) -> Result<Option<i64>, AppError> {
    let at = row.raised_at;
    let (kind, key) = (row.kind, row.key.clone());
    let id = batch.raise_alerts(&[row], &actor.name)?.remove(0);
    if let Some(id) = id {
        batch.append_audit(&actor.audit(at, "alert_raise", "alert", &format!("{id}: {kind} {key}")))?;
    }
    Ok(id)
}

fn scope_for(dep: &Deployment, user: Option<&User>, p: Permission) -> Result<Scope, AppError> {
    match user {
        Some(u) => {
            crate::reads::require(u, p)?;
            crate::reads::scope_of(&*dep.store, u)
        }
        None => Ok(Scope::All),
    }
}

/// Whether the alert lies in `scope`.
fn inside(dep: &Deployment, scope: &Scope, a: &AlertRow) -> Result<bool, AppError> {
    if *scope == Scope::All {
        return Ok(true);
    }
    for (entity, id) in [(Entity::Area, &a.area_id), (Entity::Place, &a.place_id), (Entity::Person, &a.person_id)] {
        if let Some(id) = id
            && dep.store.in_scope(scope, entity, &[id.as_str()])?[0]
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn found(dep: &Deployment, scope: &Scope, id: i64) -> Result<AlertRow, AppError> {
    let not_found = || AppError::NotFound(format!("alert {id} not found"));
    let a = dep.store.alert(id)?.ok_or_else(not_found)?;
    if !inside(dep, scope, &a)? {
        return Err(not_found());
    }
    Ok(a)
}

/// A page of alerts of the user's jurisdiction (every alert for the console), by id.
pub fn list(
    dep: &Deployment,
    user: Option<&User>,
    filter: &AlertFilter,
    after: i64,
    limit: usize,
) -> Result<Vec<AlertRow>, AppError> {
    let scope = scope_for(dep, user, Permission::ReadRecords)?;
    Ok(dep.store.alerts_page(&scope, filter, after, limit)?)
}

/// One alert with its details, history and response clock.
pub fn show(dep: &Deployment, user: Option<&User>, id: i64) -> Result<AlertView, AppError> {
    let scope = scope_for(dep, user, Permission::ReadRecords)?;
    let alert = found(dep, &scope, id)?;
    let details = serde_json::from_str(&alert.details).unwrap_or(serde_json::Value::Null);
    let history = dep.store.alert_events(id)?;
    let now = dep.clock.now();
    let response_clock = match (alert.kind, &alert.subject) {
        (AlertKind::PositivePerson, Some(case)) => clock_views(dep.store.clock_of(case)?, now),
        _ => vec![],
    };
    Ok(AlertView { alert, details, history, response_clock })
}

/// What a person raises by hand: where it lies (at least one of area, place, person, inside
/// the user's jurisdiction).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualAlert {
    pub summary: String,
    #[serde(default)]
    pub area_id: Option<String>,
    #[serde(default)]
    pub place_id: Option<String>,
    #[serde(default)]
    pub person_id: Option<String>,
    #[serde(default)]
    pub owner_unit: Option<String>,
}

/// Raises an alert by hand (`triage_alerts`), audited.
pub fn raise_manual(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    body: ManualAlert,
) -> Result<AlertView, AppError> {
    let scope = scope_for(dep, user, Permission::TriageAlerts)?;
    if body.summary.trim().is_empty() {
        return Err(AppError::InvalidArgument { argument: "summary", message: "say what the alert is about".into() });
    }
    let at = dep.clock.now();
    let mut row = crate::triggers::new_alert(
        AlertKind::Manual,
        format!("manual:{}:{}", actor.name, at.as_nanosecond()),
        body.summary,
        at,
    );
    row.area_id = body.area_id;
    row.place_id = body.place_id;
    row.person_id = body.person_id;
    row.owner_unit = body.owner_unit;
    if row.area_id.is_none() && row.place_id.is_none() && row.person_id.is_none() && scope != Scope::All {
        return Err(AppError::InvalidArgument {
            argument: "area_id",
            message: "name the area, place or person the alert is about (one inside your jurisdiction)".into(),
        });
    }
    // Unknown references are refused by the store; outside the jurisdiction reads as absent.
    for (entity, id) in [(Entity::Area, &row.area_id), (Entity::Place, &row.place_id), (Entity::Person, &row.person_id)]
    {
        if let Some(id) = id
            && !dep.store.in_scope(&scope, entity, &[id.as_str()])?[0]
        {
            return Err(AppError::NotFound(format!("{entity} `{id}` not found")));
        }
    }
    let mut batch = dep.store.begin(at)?;
    let id = raise_in(&mut *batch, row, actor)?.expect("a manual alert's key is new");
    batch.commit()?;
    show(dep, user, id)
}

/// Moves an alert of the user's jurisdiction (`triage_alerts`; the console may). A refused move
/// changes nothing and is `invalid_argument` with the reason.
pub fn transition(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    id: i64,
    action: &AlertAction,
) -> Result<AlertView, AppError> {
    // Outside the jurisdiction the alert is absent, whatever the role.
    let read_scope = scope_for(dep, user, Permission::ReadRecords)?;
    let alert = found(dep, &read_scope, id)?;
    if let Some(u) = user {
        crate::reads::require(u, Permission::TriageAlerts)?;
    }
    if *action == AlertAction::Comment && actor.reason.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(AppError::InvalidArgument { argument: "note", message: "a comment needs a note".into() });
    }
    let to = action
        .next(alert.state)
        .map_err(|why| AppError::InvalidArgument { argument: "action", message: format!("alert {id}: {why}") })?;
    let at = dep.clock.now();
    let (owner_unit, outcome) = match action {
        AlertAction::Acknowledge { owner_unit } => {
            (owner_unit.clone().filter(|u| !u.is_empty()).or_else(|| user.map(|u| u.unit.clone())), None)
        }
        AlertAction::Investigate | AlertAction::Comment => (None, None),
        AlertAction::Close { outcome } => (None, Some(*outcome)),
    };
    let event = AlertEvent {
        seq: 0,
        alert_id: id,
        at,
        actor: actor.name.clone(),
        from: Some(alert.state),
        to,
        owner_unit,
        outcome,
        note: actor.reason.clone(),
    };
    let mut batch = dep.store.begin(at)?;
    batch.transition_alert(&event)?;
    let record = format!("{id}: {} → {to}{}", alert.state, outcome.map(|o| format!(" ({o})")).unwrap_or_default());
    batch.append_audit(&actor.audit(at, "alert_transition", "alert", &record))?;
    batch.commit()?;
    show(dep, user, id)
}

/// Records that a response-clock event happened to a case of the user's jurisdiction at `at`
/// (`triage_alerts`; the console may): the case's items starting with it start, items stopping
/// with it stop (before they start too: met). Audited as `clock_event`. Returns the case's
/// whole clock. chainbreak records `positive_result` (a positive's suspected case),
/// `case_reported` (a case imported as confirmed or asymptomatic, also for the person's open
/// suspected cases), `case_transferred` (the case's isolation transferred) and
/// `contacts_determined` (the last proposal of the case decided) by itself; the others
/// (`trail_signed_off`) are recorded here.
pub fn clock_event(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    case_id: &str,
    event: chainbreak_core::profile::ClockEvent,
    at: jiff::Timestamp,
) -> Result<Vec<ClockView>, AppError> {
    let scope = scope_for(dep, user, Permission::ReadRecords)?;
    let not_found = || AppError::NotFound(format!("case `{case_id}` not found"));
    if dep.store.case(case_id)?.is_none() || !dep.store.in_scope(&scope, Entity::Case, &[case_id])?[0] {
        return Err(not_found());
    }
    if let Some(u) = user {
        crate::reads::require(u, Permission::TriageAlerts)?;
    }
    let now = dep.clock.now();
    if at > now {
        return Err(AppError::InvalidArgument { argument: "at", message: format!("{at} is in the future") });
    }
    let mut batch = dep.store.begin(now)?;
    let changed = batch.clock_event(case_id, event.as_str(), at)?;
    let items: Vec<&str> = changed.iter().map(|c| c.item.as_str()).collect();
    let record = format!("{case_id}: {event} at {at} ({})", items.join(", "));
    batch.append_audit(&actor.audit(now, "clock_event", "case", &record))?;
    batch.commit()?;
    Ok(clock_views(dep.store.clock_of(case_id)?, now))
}

fn clock_views(rows: Vec<ClockRow>, now: jiff::Timestamp) -> Vec<ClockView> {
    rows.into_iter()
        .map(|item| {
            let late = match (item.due_at, item.stopped_at) {
                (Some(due), Some(stop)) => stop > due,
                (Some(due), None) => now > due,
                _ => false,
            };
            ClockView { item, late }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_moves_forward_only() {
        use AlertState::*;
        let ack = AlertAction::Acknowledge { owner_unit: None };
        let close = AlertAction::Close { outcome: AlertOutcome::FalseAlarm };
        assert_eq!(ack.next(New), Ok(Acknowledged));
        assert_eq!(AlertAction::Investigate.next(Acknowledged), Ok(Investigating));
        assert_eq!(close.next(Investigating), Ok(Closed));
        assert_eq!(close.next(Acknowledged), Ok(Closed));
        assert_eq!(AlertAction::Comment.next(Closed), Ok(Closed), "a note changes no state");
        assert!(AlertAction::Investigate.next(New).unwrap_err().contains("acknowledge the alert first"));
        assert!(close.next(New).is_err());
        assert!(ack.next(Acknowledged).unwrap_err().contains("only a new alert"));
        for action in [&ack, &AlertAction::Investigate, &close] {
            assert!(action.next(Closed).unwrap_err().contains("closed"));
        }
    }

    #[test]
    fn actions_read_as_json() {
        let a: AlertAction = serde_json::from_str(r#"{"action":"close","outcome":"false_alarm"}"#).unwrap();
        assert_eq!(a, AlertAction::Close { outcome: AlertOutcome::FalseAlarm });
        let a: AlertAction = serde_json::from_str(r#"{"action":"acknowledge"}"#).unwrap();
        assert_eq!(a, AlertAction::Acknowledge { owner_unit: None });
        assert!(serde_json::from_str::<AlertAction>(r#"{"action":"close"}"#).is_err(), "an outcome is needed");
    }
}
