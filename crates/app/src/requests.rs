//! Service requests in controlled zones over the store (封控区服务保障, issue 10): the engine's
//! requests ([`chainbreak_closedloop::requests`]) kept as their events.
//!
//! - [`file`]: a resident under a zone or home measure (an open `zone_resident` episode, or one
//!   whose measure has a home quarantine or home monitoring phase), or a staff member for them,
//!   files a request with a kind, a priority (the profile's default for the kind when not given),
//!   an owning unit (the measure's owner when not given) and the deadline the profile's
//!   `[service_requests]` gives the kind and priority.
//! - [`act`]: accept, hand to another unit, comment, close — only with an outcome.
//! - [`escalate`]: each open request past its deadline goes one unit up the units' hierarchy
//!   every `escalate_every_minutes` (as the episodes' tasks), recorded as an event (the server
//!   runs it every minute).
//! - Every change is its event, the request's row and an audit record in one batch; each act
//!   replays the request's stored events first, so nothing depends on memory and a restart
//!   loses nothing.

use std::collections::BTreeMap;

use chainbreak_closedloop::Category;
use chainbreak_closedloop::requests::{RequestEvent, ServiceRequest, replay};
use chainbreak_core::access::{Permission, User};
use chainbreak_core::model::MeasureKind;
use chainbreak_core::profile::{RequestKind, RequestPriority, ServiceRequests};
use chainbreak_store::{Batch, Entity, RequestEventRow, RequestFilter, RequestRow, Scope};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::accounts::Actor;
use crate::reads::{Page, require, scope_of};
use crate::{AppError, Deployment};

/// A request to file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub person_id: String,
    pub kind: RequestKind,
    /// The profile's default for the kind when absent.
    #[serde(default)]
    pub priority: Option<RequestPriority>,
    /// The unit owning the person's measure when absent.
    #[serde(default)]
    pub owner_unit: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A move on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum RequestAct {
    Accept {
        #[serde(default)]
        note: Option<String>,
    },
    Reassign {
        owner_unit: String,
    },
    Close {
        outcome: chainbreak_closedloop::requests::RequestOutcome,
        #[serde(default)]
        note: Option<String>,
    },
    Comment {
        note: String,
    },
}

/// A request as readers see it: its row, and whether it is late now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestView {
    #[serde(flatten)]
    pub row: RequestRow,
    pub overdue: bool,
}

/// A request with its history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestDetail {
    #[serde(flatten)]
    pub view: RequestView,
    pub basis: String,
    pub history: Vec<HistoryItem>,
}

/// One event of a request's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryItem {
    pub at: Timestamp,
    pub actor: String,
    pub event: serde_json::Value,
}

fn rules(dep: &Deployment) -> Result<&ServiceRequests, AppError> {
    dep.profile.service_requests.as_ref().ok_or_else(|| AppError::InvalidArgument {
        argument: "profile",
        message: format!("profile `{}` has no [service_requests] section: requests cannot be filed", dep.profile.name),
    })
}

/// Free text trimmed; blank is none.
fn trimmed(note: Option<String>) -> Option<String> {
    note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
}

fn row_of(r: &ServiceRequest, at: Timestamp) -> RequestRow {
    RequestRow {
        id: r.id.clone(),
        person_id: r.person.clone(),
        kind: r.kind.as_str().to_string(),
        priority: r.priority.as_str().to_string(),
        state: r.state.as_str().to_string(),
        owner_unit: r.owner.clone(),
        unit: r.unit.clone(),
        due: r.due,
        escalation: r.escalation,
        outcome: r.outcome.map(|o| o.as_str().to_string()),
        filed_at: r.filed_at,
        updated_at: at,
        events: r.events,
        request: serde_json::to_string(r).expect("a request serialises"),
    }
}

fn view(row: RequestRow, now: Timestamp) -> RequestView {
    let overdue = row.state != "closed" && now > row.due;
    RequestView { row, overdue }
}

/// The request as its stored events make it (inside `batch`).
fn load(batch: &dyn Batch, id: &str) -> Result<ServiceRequest, AppError> {
    let events = batch.request_events_of(id)?;
    if events.is_empty() {
        return Err(AppError::NotFound(format!("service request `{id}` not found")));
    }
    let mut parsed = Vec::with_capacity(events.len());
    for e in events {
        let event: RequestEvent = serde_json::from_str(&e.action).map_err(|err| AppError::InvalidArgument {
            argument: "service_request",
            message: format!("stored event {} of request {id} is unreadable: {err}", e.seq),
        })?;
        parsed.push((e.at, event));
    }
    replay(id, &parsed).map_err(|why| AppError::InvalidArgument { argument: "service_request", message: why })
}

fn write(
    batch: &mut dyn Batch,
    r: &ServiceRequest,
    event: &RequestEvent,
    actor: &Actor,
    at: Timestamp,
) -> Result<(), AppError> {
    let action = serde_json::to_string(event).expect("an event serialises");
    let row = RequestEventRow { seq: 0, request_id: r.id.clone(), at, actor: actor.name.clone(), action };
    batch.append_request_events(&[row], &[row_of(r, at)])?;
    batch.append_audit(&actor.audit(at, &format!("request_{}", event.name()), "service_request", &r.id))?;
    Ok(())
}

fn check_user(dep: &Deployment, user: Option<&User>, permission: Permission, person: &str) -> Result<(), AppError> {
    if let Some(u) = user {
        require(u, permission)?;
        let scope = scope_of(&*dep.store, u)?;
        if scope != Scope::All && !dep.store.in_scope(&scope, Entity::Person, &[person])?[0] {
            return Err(AppError::NotFound(format!("person `{person}` not found in your jurisdiction")));
        }
    }
    Ok(())
}

/// The open episode that makes a person eligible: a zone resident's measure, or a measure with
/// a home phase. Its id and owner.
fn basis(dep: &mut Deployment, person: &str) -> Result<Option<(String, String)>, AppError> {
    let home = |k: MeasureKind| matches!(k, MeasureKind::HomeQuarantine | MeasureKind::HomeMonitoring);
    Ok(crate::episodes::current(dep)?
        .into_iter()
        .filter(|(_, e)| e.person == person)
        .find(|(_, e)| e.category == Category::ZoneResident || e.plan.phases.iter().any(|p| home(p.kind)))
        .map(|(id, e)| (id, e.owner)))
}

/// Files a request (see the module's documentation) for `user` (`manage_episodes`, the person
/// inside the jurisdiction; none: the console operator).
pub fn file(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    new: NewRequest,
) -> Result<RequestView, AppError> {
    check_user(dep, user, Permission::ManageEpisodes, &new.person_id)?;
    let rules = rules(dep)?.clone();
    if dep.store.person(&new.person_id)?.is_none() {
        return Err(AppError::NotFound(format!("person `{}` is not registered", new.person_id)));
    }
    let (basis, measure_owner) = basis(dep, &new.person_id)?.ok_or_else(|| AppError::InvalidArgument {
        argument: "person_id",
        message: format!(
            "person `{}` is under no zone or home measure: service requests are for residents of controlled zones",
            new.person_id
        ),
    })?;
    let owner = trimmed(new.owner_unit).unwrap_or(measure_owner);
    let kind = new.kind;
    let priority =
        new.priority.unwrap_or_else(|| rules.rule(kind).map_or(RequestPriority::Normal, |r| r.default_priority));
    let at = dep.clock.now();
    let due = chainbreak_closedloop::requests::due(&rules, kind, priority, at).ok_or_else(|| {
        AppError::InvalidArgument { argument: "kind", message: format!("the profile gives no deadline for `{kind}`") }
    })?;
    let event = RequestEvent::File {
        person: new.person_id.clone(),
        kind,
        priority,
        owner,
        due,
        basis,
        note: trimmed(new.note),
    };
    let base = format!("SR-{}-{}", new.person_id, at.as_second());
    let mut batch = dep.store.begin(at)?;
    let mut id = base.clone();
    let mut n = 1;
    while !batch.request_events_of(&id)?.is_empty() {
        n += 1;
        id = format!("{base}-{n}");
    }
    let r = ServiceRequest::file(&id, &event, at)
        .map_err(|why| AppError::InvalidArgument { argument: "request", message: why })?;
    write(&mut *batch, &r, &event, actor, at)?;
    batch.commit()?;
    Ok(view(row_of(&r, at), at))
}

/// Moves a request (`manage_episodes`; the person inside the user's jurisdiction): the engine
/// refuses what the request's state does not allow, and nothing is written then.
pub fn act(
    dep: &mut Deployment,
    actor: &Actor,
    user: Option<&User>,
    id: &str,
    act: RequestAct,
) -> Result<RequestView, AppError> {
    let row = dep.store.request(id)?.ok_or_else(|| AppError::NotFound(format!("service request `{id}` not found")))?;
    check_user(dep, user, Permission::ManageEpisodes, &row.person_id).map_err(|e| {
        if matches!(e, AppError::NotFound(_)) {
            AppError::NotFound(format!("service request `{id}` not found in your jurisdiction"))
        } else {
            e
        }
    })?;
    let event = match act {
        RequestAct::Accept { note } => RequestEvent::Accept { note: trimmed(note) },
        RequestAct::Reassign { owner_unit } => RequestEvent::Reassign { owner: owner_unit.trim().to_string() },
        RequestAct::Close { outcome, note } => RequestEvent::Close { outcome, note: trimmed(note) },
        RequestAct::Comment { note } => RequestEvent::Comment { note: note.trim().to_string() },
    };
    let at = dep.clock.now();
    let mut batch = dep.store.begin(at)?;
    let mut r = load(&*batch, id)?;
    r.apply(&event, at).map_err(|why| AppError::InvalidArgument { argument: "action", message: why })?;
    write(&mut *batch, &r, &event, actor, at)?;
    batch.commit()?;
    Ok(view(row_of(&r, at), at))
}

/// The units from `owner` up its parents (the owner first; a cycle in the records stops it).
fn chain(parents: &BTreeMap<String, Option<String>>, owner: &str) -> Vec<String> {
    let mut chain = vec![owner.to_string()];
    while let Some(Some(parent)) = parents.get(chain.last().expect("not empty")) {
        if chain.contains(parent) {
            break;
        }
        chain.push(parent.clone());
    }
    chain
}

/// Records the escalation of every open request past its deadline that has not gone as far up
/// as its lateness says, in one batch: those of the user's jurisdiction (`manage_episodes`), or
/// all (none: the system). Returns the requests escalated.
pub fn escalate(dep: &mut Deployment, actor: &Actor, user: Option<&User>) -> Result<Vec<RequestView>, AppError> {
    let scope = match user {
        Some(u) => {
            require(u, Permission::ManageEpisodes)?;
            scope_of(&*dep.store, u)?
        }
        None => Scope::All,
    };
    let Some(rules) = dep.profile.service_requests.clone() else { return Ok(Vec::new()) };
    let at = dep.clock.now();
    let filter = RequestFilter { open: true, due_before: Some(at), ..Default::default() };
    let mut late = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = dep.store.requests_page(&scope, &filter, after.as_deref(), 1000)?;
        let n = page.len();
        after = page.last().map(|r| r.id.clone());
        late.extend(page);
        if n < 1000 {
            break;
        }
    }
    if late.is_empty() {
        return Ok(Vec::new());
    }
    let parents: BTreeMap<String, Option<String>> = dep.store.units()?.into_iter().map(|u| (u.id, u.parent)).collect();
    let mut out = Vec::new();
    let mut batch = dep.store.begin(at)?;
    for row in late {
        let mut r = load(&*batch, &row.id)?;
        let Some(event) = r.escalation_due(&rules, &chain(&parents, &r.owner), at) else { continue };
        r.apply(&event, at).map_err(|why| AppError::InvalidArgument { argument: "escalate", message: why })?;
        write(&mut *batch, &r, &event, actor, at)?;
        out.push(view(row_of(&r, at), at));
    }
    batch.commit()?;
    Ok(out)
}

/// A page of the requests of persons living in the user's jurisdiction (`read_records`).
pub fn list(
    dep: &Deployment,
    user: Option<&User>,
    filter: &RequestFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<RequestView>, AppError> {
    let scope = match user {
        Some(u) => {
            require(u, Permission::ReadRecords)?;
            scope_of(&*dep.store, u)?
        }
        None => Scope::All,
    };
    let now = dep.clock.now();
    let items: Vec<RequestView> =
        dep.store.requests_page(&scope, filter, after, limit)?.into_iter().map(|r| view(r, now)).collect();
    let next = if items.len() == limit { items.last().map(|r| r.row.id.clone()) } else { None };
    Ok(Page { items, next })
}

/// One request with its history (`read_records`; the person inside the jurisdiction).
pub fn show(dep: &Deployment, user: Option<&User>, id: &str) -> Result<RequestDetail, AppError> {
    let absent = || AppError::NotFound(format!("service request `{id}` not found in your jurisdiction"));
    let row = dep.store.request(id)?.ok_or_else(absent)?;
    check_user(dep, user, Permission::ReadRecords, &row.person_id).map_err(|e| match e {
        AppError::NotFound(_) => absent(),
        e => e,
    })?;
    let mut basis = String::new();
    let mut history = Vec::new();
    for e in dep.store.request_events(id)? {
        let event: serde_json::Value = serde_json::from_str(&e.action).unwrap_or(serde_json::Value::Null);
        if let Some(b) = event.get("basis").and_then(|b| b.as_str()) {
            basis = b.to_string();
        }
        history.push(HistoryItem { at: e.at, actor: e.actor, event });
    }
    Ok(RequestDetail { view: view(row, dep.clock.now()), basis, history })
}
