//! Surveillance over HTTP (issue 7): alerts and their triage, the watched series, the review
//! queue of aberration alarms, detection runs, silent sentinels, Rt over the store's cases,
//! and the sentinel feeds' batch ingest. An alert lies in its area, at its place or with its
//! person, a review item in its series' area: outside the user's jurisdiction they read as
//! absent (404) and cannot be moved.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::Uri;
use chainbreak_app::alerts::{self, AlertAction, AlertView, ManualAlert};
use chainbreak_app::reads::{self, Page};
use chainbreak_app::surveillance::{
    self, Frequency, RtView, RunReport, SeriesQuery, SeriesView, SilentSentinel, Verdict,
};
use chainbreak_core::ErrorCode;
use chainbreak_core::access::Permission;
use chainbreak_core::model::{AlertState, SentinelFeed, SentinelRecord};
use chainbreak_store::{AlertFilter, AlertKind, AlertRow, ReviewItem, ReviewStatus};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Authenticated, actor};
use crate::body::read_json;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::with_deployment;
use crate::records::{path_id, query};

fn bad(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

fn parse_id(path: Result<Path<String>, PathRejection>, what: &str) -> Result<i64, ApiError> {
    let id = path_id(path)?;
    id.parse().map_err(|_| bad(format!("`{id}` is not {what} id (a number)")))
}

fn vocab<T>(
    name: &str,
    value: Option<String>,
    parse: fn(&str) -> Option<T>,
    expected: String,
) -> Result<Option<T>, ApiError> {
    match value.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| bad(format!("{name}: `{v}` is not one of {expected}"))),
    }
}

fn date(name: &str, value: Option<String>) -> Result<Option<Date>, ApiError> {
    match value.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| bad(format!("{name}: `{v}` is not a date (YYYY-MM-DD)"))),
    }
}

/// Which alerts, and paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertsQuery {
    /// `aberration`, `silent_sentinel`, `positive_person`, `pooled_positive`, `environment_positive`,
    /// `goods_positive`, `manual`.
    kind: Option<String>,
    /// `new`, `acknowledged`, `investigating`, `closed`.
    state: Option<String>,
    /// The owning unit.
    owner: Option<String>,
    /// `true`: only alerts not closed.
    open: Option<bool>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// At most this many records (default 100, at most 1000).
    limit: Option<usize>,
}

/// Lists the alerts of the user's jurisdiction, by id.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "surveillance", security(("bearer" = []), ("session" = [])),
    params(AlertsQuery),
    responses(
        (status = 200, description = "`{\"items\": [alert...], \"next\": cursor|null}`; an alert has `id`, `kind`, \
            `state`, `key`, `summary`, `owner_unit`, `area_id`, `place_id`, `person_id`, `subject`, `outcome`, \
            `raised_at`, `updated_at`", body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_alerts(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<AlertRow>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: AlertsQuery = query(&uri)?;
    let limit = reads::page_size(q.limit)?;
    let after = match q.after.as_deref() {
        None | Some("") => 0,
        Some(a) => a.parse().map_err(|_| bad(format!("after: `{a}` is not an alert id")))?,
    };
    let filter = AlertFilter {
        kind: vocab("kind", q.kind, AlertKind::parse, AlertKind::expected())?,
        state: vocab("state", q.state, AlertState::parse, AlertState::expected())?,
        owner_unit: q.owner.filter(|s| !s.is_empty()),
        open: q.open.unwrap_or(false),
    };
    let page = with_deployment(&state.deployment, move |dep| {
        let items = alerts::list(dep, Some(&user), &filter, after, limit)?;
        let next = (items.len() == limit).then(|| items.last().map(|a| a.id.to_string())).flatten();
        Ok(Page { items, next })
    })
    .await?;
    Ok(Json(page))
}

/// One alert of the user's jurisdiction with its details, triage history and, for a suspected
/// case's alert, the case's response clock.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "surveillance", security(("bearer" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "The alert (`id`, `kind`, `state`... as in the list), its `details` (by kind: \
            the lab test and case, the pool's `members` and retest `tasks`, the series' numbers...), its `history` \
            (`from`, `to`, `actor`, `at`, `owner_unit`, `outcome`, `note`) and `response_clock` (`item`, \
            `start_event`, `stop_event`, `limit_hours`, `started_at`, `due_at`, `stopped_at`, `late`)", body = Object),
        (status = 400, description = "`invalid_argument`: the id is not a number", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
        (status = 404, description = "`not_found`: no such alert in the user's jurisdiction", body = ErrorBody),
    ))]
pub(crate) async fn get_alert(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<AlertView>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let id = parse_id(path, "an alert")?;
    Ok(Json(with_deployment(&state.deployment, move |dep| alerts::show(dep, Some(&user), id)).await?))
}

/// An alert raised by hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RaiseBody {
    summary: String,
    #[serde(default)]
    area_id: Option<String>,
    #[serde(default)]
    place_id: Option<String>,
    #[serde(default)]
    person_id: Option<String>,
    #[serde(default)]
    owner_unit: Option<String>,
    /// Why, for the audit trail.
    #[serde(default)]
    note: Option<String>,
}

/// Raises an alert by hand (kind `manual`) about an area, place or person of the user's
/// jurisdiction.
#[utoipa::path(post, path = "/api/v1/alerts", tag = "surveillance", security(("bearer" = []), ("session" = [])),
    request_body(content = RaiseBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The alert as `GET /api/v1/alerts/{id}` shows it; audited as `alert_raise`",
            body = Object),
        (status = 400, description = "`invalid_argument`: no summary, or nothing it lies in", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not triage alerts", body = ErrorBody),
        (status = 404, description = "`not_found`: the area, place or person is not in the user's jurisdiction",
            body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn raise_alert(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<AlertView>, ApiError> {
    let user = auth.require(Permission::TriageAlerts)?;
    let body: RaiseBody = read_json(req, state.config.max_body_bytes).await?;
    let manual = ManualAlert {
        summary: body.summary,
        area_id: body.area_id,
        place_id: body.place_id,
        person_id: body.person_id,
        owner_unit: body.owner_unit,
    };
    let view = with_deployment(&state.deployment, move |dep| {
        let mut actor = actor(&user, "POST /api/v1/alerts");
        actor.reason = body.note;
        alerts::raise_manual(dep, &actor, Some(&user), manual)
    })
    .await?;
    Ok(Json(view))
}

/// A triage move: `{"action": "acknowledge", "owner_unit": "CDC"}` (default: the user's unit),
/// `{"action": "investigate"}`, `{"action": "close", "outcome": "confirmed"|"false_alarm"|
/// "duplicate"|"resolved"}`, `{"action": "comment"}` (with a `note`); each with an optional
/// `note`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct AlertTransitionBody {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    action: AlertAction,
    #[serde(default)]
    note: Option<String>,
}

/// Moves an alert of the user's jurisdiction through triage (`new → acknowledged →
/// investigating → closed` with an outcome). A refused move changes nothing and says why.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/transitions", tag = "surveillance",
    security(("bearer" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The alert's id")),
    request_body(content = AlertTransitionBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The alert as moved, with its history; audited as `alert_transition`",
            body = Object),
        (status = 400, description = "`invalid_argument`: the move is refused, with the reason", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not triage alerts", body = ErrorBody),
        (status = 404, description = "`not_found`: no such alert in the user's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn transition_alert(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<Json<AlertView>, ApiError> {
    let user = auth.require(Permission::TriageAlerts)?;
    let id = parse_id(path, "an alert")?;
    // Outside the jurisdiction the alert is absent, whatever the body says.
    let u = user.clone();
    with_deployment(&state.deployment, move |dep| alerts::show(dep, Some(&u), id).map(|_| ())).await?;
    let body: AlertTransitionBody = read_json(req, state.config.max_body_bytes).await?;
    let view = with_deployment(&state.deployment, move |dep| {
        let mut actor = actor(&user, "POST /api/v1/alerts/{id}/transitions");
        actor.reason = body.note;
        alerts::transition(dep, &actor, Some(&user), id, &body.action)
    })
    .await?;
    Ok(Json(view))
}

/// A response-clock event of a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClockEventBody {
    /// `case_reported`, `case_transferred`, `trail_signed_off`, `contacts_determined` (or
    /// `positive_result`).
    event: String,
    /// When it happened (default now).
    #[serde(default)]
    at: Option<String>,
}

/// Records that a response-clock event happened to a case of the user's jurisdiction: the
/// items starting with it start, those stopping with it stop (DESIGN.md §4, response clock).
#[utoipa::path(post, path = "/api/v1/cases/{id}/clock", tag = "surveillance",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The case's id")),
    request_body(content = ClockEventBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The case's clock: `[{\"item\", \"start_event\", \"stop_event\", \
            \"limit_hours\", \"started_at\", \"due_at\", \"stopped_at\", \"late\"}]`; audited as `clock_event`",
            body = Object),
        (status = 400, description = "`invalid_argument`: an unknown event, or a time in the future", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not triage alerts", body = ErrorBody),
        (status = 404, description = "`not_found`: no such case in the user's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn case_clock_event(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<Json<Vec<alerts::ClockView>>, ApiError> {
    use chainbreak_core::profile::ClockEvent;
    let user = auth.require(Permission::TriageAlerts)?;
    let id = path_id(path)?;
    // Outside the jurisdiction the case is absent, whatever the body says.
    let (u, i) = (user.clone(), id.clone());
    with_deployment(&state.deployment, move |dep| reads::case(&*dep.store, &u, &i).map(|_| ())).await?;
    let body: ClockEventBody = read_json(req, state.config.max_body_bytes).await?;
    let event = ClockEvent::parse(&body.event)
        .ok_or_else(|| bad(format!("event: `{}` is not one of {}", body.event, ClockEvent::expected())))?;
    let at = body
        .at
        .as_deref()
        .map(chainbreak_core::time::parse_instant)
        .transpose()
        .map_err(|m| bad(format!("at: {m}")))?;
    let clock = with_deployment(&state.deployment, move |dep| {
        let at = at.unwrap_or_else(|| dep.clock.now());
        alerts::clock_event(dep, &actor(&user, "POST /api/v1/cases/{id}/clock"), Some(&user), &id, event, at)
    })
    .await?;
    Ok(Json(clock))
}

/// Which series.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeriesParams {
    /// The area (the record's, else its place's).
    area: Option<String>,
    /// `fever_clinic`, `pharmacy`, `screening`, `quarantine_site`, `hospital`, `cold_chain`, `environment`,
    /// `genomic`.
    feed: Option<String>,
    /// The category (drug class, test kind...).
    category: Option<String>,
    /// `daily` or `weekly` (default both).
    frequency: Option<String>,
    /// Show periods from this date (the method still sees the whole series).
    from: Option<String>,
    /// The last date (default today in the deployment's zone).
    to: Option<String>,
}

/// A list without paging.
#[derive(Debug, Serialize)]
pub(crate) struct Items<T> {
    items: Vec<T>,
}

/// The count series of the sentinel feeds of the user's jurisdiction, per area, feed and
/// category, daily and weekly, with the profile's method's expected value, bound and alarm.
#[utoipa::path(get, path = "/api/v1/series", tag = "surveillance", security(("bearer" = []), ("session" = [])),
    params(SeriesParams),
    responses(
        (status = 200, description = "`{\"items\": [{\"series\", \"area_id\", \"feed\", \"category\", \"frequency\", \
            \"method\", \"points\": [{\"period\", \"observed\", \"expected\", \"upperbound\", \"alarm\"}]}]}`; \
            `observed` is null for a period without a report (missing, not zero); the rest null where the method \
            says nothing (before a full reference, or R's NA)", body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_series(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Items<SeriesView>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: SeriesParams = query(&uri)?;
    let sq = SeriesQuery {
        area_id: q.area.filter(|s| !s.is_empty()),
        feed: vocab("feed", q.feed, SentinelFeed::parse, SentinelFeed::expected())?,
        category: q.category.filter(|s| !s.is_empty()),
        frequency: vocab("frequency", q.frequency, Frequency::parse, "daily, weekly".into())?,
        from: date("from", q.from)?,
        to: date("to", q.to)?,
    };
    let items = with_deployment(&state.deployment, move |dep| surveillance::series(dep, Some(&user), &sq)).await?;
    Ok(Json(Items { items }))
}

/// Which review items.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewParams {
    /// `pending` (default), `escalated`, `dismissed`, or `all`.
    status: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<usize>,
}

/// The review queue of the user's jurisdiction: aberration alarms, highest score first.
#[utoipa::path(get, path = "/api/v1/review-queue", tag = "surveillance", security(("bearer" = []), ("session" = [])),
    params(ReviewParams),
    responses(
        (status = 200, description = "`{\"items\": [item...], \"next\": null}` by `score` = (observed − upperbound) / \
            max(upperbound, 1), highest first; an item has `id`, `series`, `area_id`, `feed`, `category`, \
            `frequency`, `period`, `method`, `observed`, `expected`, `upperbound`, `score`, `status`, `decided_by`, \
            `decided_at`, `reason`, `alert_id`, `created_at`", body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn review_queue(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<ReviewItem>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: ReviewParams = query(&uri)?;
    let limit = reads::page_size(q.limit)?;
    let status = match q.status.as_deref() {
        None | Some("") => Some(ReviewStatus::Pending),
        Some("all") => None,
        Some(s) => Some(
            ReviewStatus::parse(s)
                .ok_or_else(|| bad(format!("status: `{s}` is not one of {}, all", ReviewStatus::expected())))?,
        ),
    };
    let items =
        with_deployment(&state.deployment, move |dep| surveillance::review_queue(dep, Some(&user), status, limit))
            .await?;
    Ok(Json(Page { items, next: None }))
}

/// A reviewer's decision on an alarm.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewDecisionBody {
    /// `escalate` (raises an `aberration` alert) or `dismiss` (needs a reason).
    #[schema(value_type = String)]
    decision: Verdict,
    #[serde(default)]
    reason: Option<String>,
}

/// Decides a pending alarm of the user's jurisdiction: escalate it to an alert, or dismiss it.
#[utoipa::path(post, path = "/api/v1/review-queue/{id}/decision", tag = "surveillance",
    security(("bearer" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The review item's id")),
    request_body(content = ReviewDecisionBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The item as decided (`alert_id`: the alert escalated to); audited as \
            `review_escalate` or `review_dismiss`", body = Object),
        (status = 400, description = "`invalid_argument`: decided already, or a dismissal without a reason",
            body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not triage alerts", body = ErrorBody),
        (status = 404, description = "`not_found`: no such item in the user's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn decide_review(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<Json<ReviewItem>, ApiError> {
    let user = auth.require(Permission::TriageAlerts)?;
    let id = parse_id(path, "a review item")?;
    let body: ReviewDecisionBody = read_json(req, state.config.max_body_bytes).await?;
    let item = with_deployment(&state.deployment, move |dep| {
        let actor = actor(&user, "POST /api/v1/review-queue/{id}/decision");
        surveillance::decide_review(dep, &actor, Some(&user), id, body.decision, body.reason)
    })
    .await?;
    Ok(Json(item))
}

/// Runs aberration detection over the series of the user's jurisdiction now (the server also
/// runs it on a schedule), queueing alarms and raising silent sentinels' alerts.
#[utoipa::path(post, path = "/api/v1/detect/runs", tag = "surveillance", security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{\"series\", \"alarms\", \"queued\", \"silent\", \"silent_alerts\", \"shortage_alerts\"}` (facilities short of rooms); audited \
            as `detect_run`", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not triage alerts", body = ErrorBody),
    ))]
pub(crate) async fn run_detection(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<RunReport>, ApiError> {
    let user = auth.require(Permission::TriageAlerts)?;
    let report = with_deployment(&state.deployment, move |dep| {
        surveillance::run(dep, &actor(&user, "POST /api/v1/detect/runs"), Some(&user))
    })
    .await?;
    Ok(Json(report))
}

/// The sentinel points of the user's jurisdiction whose feed has stopped reporting (more than
/// the profile's `surveillance.silent_after_days`).
#[utoipa::path(get, path = "/api/v1/sentinels/silent", tag = "surveillance",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "`{\"items\": [{\"place_id\", \"feed\", \"area_id\", \"last_date\", \
            \"days_silent\"}]}`", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn silent_sentinels(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Items<SilentSentinel>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let items = with_deployment(&state.deployment, move |dep| surveillance::silent(dep, Some(&user))).await?;
    Ok(Json(Items { items }))
}

/// Until when.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RtParams {
    /// The last day (default today in the deployment's zone).
    to: Option<String>,
}

/// Rt over the cases of the user's jurisdiction (EpiEstim's `estimate_R`, parametric serial
/// interval from the profile, sliding windows).
#[utoipa::path(get, path = "/api/v1/rt", tag = "surveillance", security(("bearer" = []), ("session" = [])),
    params(RtParams),
    responses(
        (status = 200, description = "`{\"si_mean\", \"si_sd\", \"window_days\", \"days\", \"local\", \"imported\", \
            \"estimates\": [{\"t_start\", \"t_end\", \"mean\", \"std\", \"quantiles\" (2.5, 5, 25, 50, 75, 95, \
            97.5%)}], \"note\"}`: daily counts of non-excluded cases by onset (else sampling, else report day)",
            body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn rt(State(state): State<AppState>, auth: Authenticated, uri: Uri) -> Result<Json<RtView>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: RtParams = query(&uri)?;
    let to = date("to", q.to)?;
    Ok(Json(with_deployment(&state.deployment, move |dep| surveillance::rt(dep, Some(&user), to)).await?))
}

/// A batch of sentinel reports (upserted by place, feed, date and category), all-or-nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SentinelBatch {
    /// Records spelled as the `sentinel` kind's JSON Lines (FORMATS.md).
    #[schema(value_type = Vec<Object>)]
    sentinel: Vec<SentinelRecord>,
}

/// What a sentinel batch wrote and triggered.
#[derive(Debug, Serialize)]
pub(crate) struct SentinelReport {
    accepted: u64,
    last_seq: u64,
    /// Alerts raised by positives in the environment and cold-chain feeds.
    alerts: Vec<i64>,
    /// The responses to them (the reporting point sealed, the goods it held, its workers proposed
    /// a measure; as `GET /api/v1/goods/responses/{id}` gives them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    goods_responses: Vec<chainbreak_app::goods::GoodsResponse>,
}

/// Ingests sentinel reports; positives of the environment and cold-chain feeds raise alerts in
/// the same batch. A report lies in the jurisdiction by its place or its area.
#[utoipa::path(post, path = "/api/v1/sentinel:batch", tag = "ingest", security(("bearer" = []), ("session" = [])),
    request_body(content = SentinelBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"accepted\", \"last_seq\", \"alerts\"}`", body = Object),
        (status = 400, description = "`input.malformed`: the body is not JSON", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not ingest data, or a report lies outside the \
            user's jurisdiction (at `$.sentinel[i]`)", body = ErrorBody),
        (status = 413, description = "`input.too_large`", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_reference`, `input.inconsistent` \
            (positives over count) at a JSON path such as `$.sentinel[0].place_id`", body = ErrorBody),
    ))]
pub(crate) async fn sentinel_batch(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<SentinelReport>, ApiError> {
    let user = auth.require(Permission::IngestData)?;
    let batch: SentinelBatch = read_json(req, state.config.max_body_bytes).await?;
    crate::handlers::check_batch_size("sentinel", batch.sentinel.len(), state.config.max_batch_records)?;
    let rows = batch.sentinel;
    let (report, triggered) = with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        let writer = crate::handlers::writer(dep, &user, "POST /api/v1/sentinel:batch")?;
        let (report, triggered) = chainbreak_app::ingest::ingest_sentinel(&mut *dep.store, &writer, &rows, now)?;
        let actor = crate::auth::actor(&user, "POST /api/v1/sentinel:batch");
        let goods = crate::handlers::respond_to_samples(dep, &actor, &triggered.samples);
        Ok((report, (triggered, goods)))
    })
    .await?;
    let (triggered, goods_responses) = triggered;
    state.metrics.ingested("sentinel", report.accepted);
    state.metrics.set_last_seq(report.last_seq);
    Ok(Json(SentinelReport {
        accepted: report.accepted,
        last_seq: report.last_seq,
        alerts: triggered.alerts,
        goods_responses,
    }))
}
