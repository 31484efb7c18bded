//! Closed-loop management over HTTP: measure episodes (lists, one episode with its history and
//! tasks, opening, transitions) and quarantine facilities (occupancy and forecast, rooms,
//! disinfection). An episode lies where its person lives: outside the user's jurisdiction it
//! reads as absent (404) and cannot be moved.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use chainbreak_app::episodes::{self, EpisodeView, FacilityView, Outcome, TaskView};
use chainbreak_app::reads::{self, Page};
use chainbreak_closedloop::{Action, Category, Reason};
use chainbreak_core::ErrorCode;
use chainbreak_core::access::Permission;
use chainbreak_core::model::EpisodeState;
use chainbreak_store::{EpisodeFilter, EpisodeRow, FacilityRow, RoomRow};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Authenticated, actor};
use crate::body::read_json;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::with_deployment;
use crate::records::{path_id, query};

/// Which episodes, and paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct EpisodesQuery {
    /// `proposed`, `confirmed`, `notified`, `transferred`, `in_measure`, `extended`, `released`,
    /// `converted_to_case`, `handed_over`, `unreachable`, `refused`, `lost`, `closed`.
    state: Option<String>,
    /// The owning unit.
    owner: Option<String>,
    /// Episodes in this facility.
    facility: Option<String>,
    /// Episodes of this person.
    person: Option<String>,
    /// `true`: only those past their deadline now.
    overdue: Option<bool>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// At most this many records (default 100, at most 1000).
    limit: Option<usize>,
}

/// An episode to open (or a reason to add to the person's open episode of the category).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenBody {
    /// The new episode's id (default: one made of the person, category and time).
    #[serde(default)]
    id: Option<String>,
    person_id: String,
    /// `close`, `secondary` or `grid`: the profile's measure for it; `case`: the person's own
    /// isolation, until discharge (`exposure` is then the onset or positive sample).
    category: String,
    /// The case (zone, arrival...) it comes from.
    source: String,
    /// Through whom (a secondary contact's close contact).
    #[serde(default)]
    via: Option<String>,
    /// The last exposure: day 0 is its local date.
    exposure: String,
    /// The evidence behind it (a proposal, a record...).
    #[serde(default)]
    evidence: Option<String>,
    /// The owning unit.
    owner_unit: String,
    /// Why, for the event and the audit trail.
    #[serde(default)]
    note: Option<String>,
}

/// A transition: the engine's action (`{"action": "notify"}`, `{"action": "transfer",
/// "facility": "F1", "room": ""}` (empty: the first room the rules allow), `{"action": "test",
/// "taken_at": "...", "result": "negative"}`, `release`, `{"action": "discharge", "criteria": "..."}`
/// (a case's isolation), `hand_over` with `to`, `close` with `reason`...), and why.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct TransitionBody {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    action: Action,
    #[serde(default)]
    note: Option<String>,
}

/// A facility and its rooms (capacity 1 by default; a room left out is kept).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FacilityBody {
    id: String,
    name: String,
    #[serde(default)]
    area: Option<String>,
    rooms: Vec<RoomBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoomBody {
    id: String,
    #[serde(default = "one")]
    capacity: u32,
}

fn one() -> u32 {
    1
}

fn bad(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

const EPISODE_FIELDS: &str = "the episode as its events make it: `id`, `person`, `category`, `plan` (the measure), \
    `state`, `entered`, `confirmed`, `reasons` (`source`, `via`, `at`), `owner`, `tests`, `linked_tests`, \
    `facility` ([facility, room]), `handed_to`, `closed`, `events`; its `deadline`; `tasks` due now (`kind`, \
    `day`, `due`, `overdue`, `responsibility`, `escalation`); and the `history` of events";

/// Lists the measure episodes of the user's jurisdiction (by where the person lives).
#[utoipa::path(get, path = "/api/v1/episodes", tag = "closed loop", security(("bearer" = []), ("session" = [])),
    params(EpisodesQuery),
    responses(
        (status = 200, description = "`{\"items\": [episode...], \"next\": cursor|null}` by id; an item has `id`, \
            `person_id`, `category`, `state`, `owner_unit`, `deadline`, `facility_id`, `room_id`, `opened_at`, \
            `updated_at`, `events`", body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_episodes(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<EpisodeRow>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: EpisodesQuery = query(&uri)?;
    let limit = reads::page_size(q.limit)?;
    let state_filter = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            EpisodeState::parse(s)
                .ok_or_else(|| bad(format!("state: `{s}` is not one of {}", EpisodeState::expected())))?,
        ),
    };
    let page = with_deployment(&state.deployment, move |dep| {
        let filter = EpisodeFilter {
            state: state_filter,
            owner_unit: q.owner.filter(|s| !s.is_empty()),
            facility_id: q.facility.filter(|s| !s.is_empty()),
            person_id: q.person.filter(|s| !s.is_empty()),
            due_before: q.overdue.unwrap_or(false).then(|| dep.clock.now()),
        };
        let items = episodes::list(dep, Some(&user), &filter, q.after.as_deref(), limit)?;
        let next = (items.len() == limit).then(|| items.last().map(|e| e.id.clone())).flatten();
        Ok(Page { items, next })
    })
    .await?;
    Ok(Json(page))
}

/// One episode of the user's jurisdiction, with its history and what is due.
#[utoipa::path(get, path = "/api/v1/episodes/{id}", tag = "closed loop", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The episode's id")),
    responses(
        (status = 200, description = EPISODE_FIELDS, body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
        (status = 404, description = "`not_found`: no such episode in the user's jurisdiction", body = ErrorBody),
    ))]
pub(crate) async fn get_episode(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<EpisodeView>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let id = path_id(path)?;
    Ok(Json(with_deployment(&state.deployment, move |dep| episodes::show(dep, Some(&user), &id)).await?))
}

/// Opens an episode for a person of the user's jurisdiction, confirmed by the user (DESIGN.md
/// §4a), or adds the reason to the person's open episode of the category.
#[utoipa::path(post, path = "/api/v1/episodes", tag = "closed loop", security(("bearer" = []), ("session" = [])),
    request_body(content = OpenBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"episode_id\", \"state\", \"deadline\"}`; an audit record \
            `episode_transition` per event", body = Object),
        (status = 400, description = "`invalid_argument`: a category without a measure in the profile, a bad \
            instant or id", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not confirm contacts", body = ErrorBody),
        (status = 404, description = "`not_found`: no such person in the user's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn open_episode(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<Outcome>, ApiError> {
    let user = auth.require(Permission::ConfirmContacts)?;
    let body: OpenBody = read_json(req, state.config.max_body_bytes).await?;
    let category = Category::parse(&body.category)
        .ok_or_else(|| bad(format!("category: `{}` is not one of {}", body.category, Category::expected())))?;
    let at = chainbreak_core::time::parse_instant(&body.exposure).map_err(|m| bad(format!("exposure: {m}")))?;
    let request = episodes::Request::Open {
        id: body.id,
        person: body.person_id,
        category,
        plan: None,
        reason: Reason { source: body.source, via: body.via, at, evidence: body.evidence },
        owner: body.owner_unit,
        confirmed: true,
    };
    let mut done = with_deployment(&state.deployment, move |dep| {
        let mut actor = actor(&user, "POST /api/v1/episodes");
        actor.reason = body.note;
        episodes::transition(dep, &actor, Some(&user), &[request])
    })
    .await?;
    Ok(Json(done.remove(0)))
}

/// Moves an episode of the user's jurisdiction (confirm and reject need `confirm_contacts`,
/// a case's `discharge` `discharge_cases`, the rest `manage_episodes`). Refused transitions (release without the tests, a full or
/// mixed room, a state that does not allow it) change nothing and say why.
#[utoipa::path(post, path = "/api/v1/episodes/{id}/transitions", tag = "closed loop",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The episode's id")),
    request_body(content = TransitionBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"episode_id\", \"state\", \"deadline\", \"effects\"}`: effects name a \
            suspected case to open and trace (`suspected_case:PERSON:SAMPLED_AT`) and the person's isolation \
            opened for it (`isolation:EPISODE`), or a promotion", body = Object),
        (status = 400, description = "`invalid_argument`: the transition is refused, with the reason", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not", body = ErrorBody),
        (status = 404, description = "`not_found`: no such episode in the user's jurisdiction, or facility or room",
            body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn transition_episode(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<Json<Outcome>, ApiError> {
    let user = auth.require_any(&[Permission::ManageEpisodes, Permission::ConfirmContacts])?;
    let id = path_id(path)?;
    // Outside the jurisdiction the episode is absent, whatever the body says.
    let (u, i) = (user.clone(), id.clone());
    with_deployment(&state.deployment, move |dep| episodes::show(dep, Some(&u), &i).map(|_| ())).await?;
    let body: TransitionBody = read_json(req, state.config.max_body_bytes).await?;
    let mut done = with_deployment(&state.deployment, move |dep| {
        let mut actor = actor(&user, "POST /api/v1/episodes/{id}/transitions");
        actor.reason = body.note;
        let requests = [episodes::Request::Act { episode: id, action: body.action }];
        let mut done = episodes::transition(dep, &actor, Some(&user), &requests)?;
        // A positive opens a suspected case and starts tracing, as a lab result does (the
        // transition is written either way; a failure here is logged).
        match episodes::respond_to_positives(dep, &actor, &requests, &done) {
            Ok(r) if r != Default::default() => done[0].response = Some(r),
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "the positive's response could not be set off"),
        }
        Ok(done)
    })
    .await?;
    Ok(Json(done.remove(0)))
}

/// Every quarantine facility: occupancy now and the rooms needed over the next 7 days.
#[utoipa::path(get, path = "/api/v1/facilities", tag = "closed loop", security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "An array of `{\"id\", \"name\", \"occupancy\": {rooms, clean, occupied, \
            to_disinfect, people}, \"forecast\": [{date, rooms_needed, rooms, short}]}`", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_facilities(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Vec<FacilityView>>, ApiError> {
    auth.require(Permission::ReadRecords)?;
    Ok(Json(with_deployment(&state.deployment, move |dep| episodes::facility_views(dep, 7)).await?))
}

/// Adds or changes a quarantine facility and its rooms.
#[utoipa::path(post, path = "/api/v1/facilities", tag = "closed loop", security(("bearer" = []), ("session" = [])),
    request_body(content = FacilityBody, content_type = "application/json"),
    responses(
        (status = 204, description = "Stored (audited as `facility_put`)"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage facilities", body = ErrorBody),
        (status = 422, description = "`input.unknown_reference` (an area), `input.invalid_field` (a capacity of \
            0), `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn put_facility(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<StatusCode, ApiError> {
    let user = auth.require(Permission::ManageFacilities)?;
    let body: FacilityBody = read_json(req, state.config.max_body_bytes).await?;
    let row = FacilityRow {
        id: body.id,
        name: body.name,
        area: body.area,
        rooms: body
            .rooms
            .into_iter()
            .map(|r| RoomRow { id: r.id, capacity: r.capacity, state: "clean".into() })
            .collect(),
    };
    with_deployment(&state.deployment, move |dep| {
        episodes::put_facilities(dep, &actor(&user, "POST /api/v1/facilities"), Some(&user), &[row])
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A room was disinfected after its last occupant left: clean again.
#[utoipa::path(post, path = "/api/v1/facilities/{id}/rooms/{room}/disinfected", tag = "closed loop",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The facility"), ("room" = String, Path, description = "The room")),
    responses(
        (status = 204, description = "Clean (audited as `room_disinfected`)"),
        (status = 400, description = "`invalid_argument`: the room is not waiting for disinfection", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage facilities", body = ErrorBody),
        (status = 404, description = "`not_found`: no such facility or room", body = ErrorBody),
    ))]
pub(crate) async fn room_disinfected(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let user = auth.require(Permission::ManageFacilities)?;
    let Path((facility, room)) = path.map_err(|e| bad(e.body_text()))?;
    with_deployment(&state.deployment, move |dep| {
        let actor = actor(&user, "POST /api/v1/facilities/{id}/rooms/{room}/disinfected");
        episodes::rooms_disinfected(dep, &actor, Some(&user), &facility, &[room.as_str()])
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which tasks.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct TasksQuery {
    /// `true`: only those past due.
    overdue: Option<bool>,
    /// Only the tasks sitting at this unit now (after escalation).
    unit: Option<String>,
}

/// What the open episodes of the user's jurisdiction need now: the next move by its deadline
/// and each untested test day, overdue first, each at the unit it has escalated to.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "closed loop", security(("bearer" = []), ("session" = [])),
    params(TasksQuery),
    responses(
        (status = 200, description = "`{\"items\": [task...], \"next\": null}`: a task has `episode_id`, \
            `person_id`, `state`, `owner_unit`, `unit` (where it sits after escalation), `kind` (`advance`, \
            `review` (a case in isolation: a test or the discharge) or `test`), `day`, `due`, `overdue`, `responsibility` (`territorial`, `departmental`, `unit`, \
            `individual`), `escalation` (steps up the units' hierarchy)", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_tasks(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<TaskView>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: TasksQuery = query(&uri)?;
    let items = with_deployment(&state.deployment, move |dep| {
        episodes::tasks(dep, Some(&user), q.overdue.unwrap_or(false), q.unit.as_deref().filter(|u| !u.is_empty()))
    })
    .await?;
    Ok(Json(Page { items, next: None }))
}
