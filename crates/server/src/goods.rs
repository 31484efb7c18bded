//! Goods and service requests over HTTP (issue 10): a batch traced both ways, the responses to
//! positive samples (recorded by the lab-tests and sentinel batches, or asked for by hand), the
//! supplier suspension list, and service requests in controlled zones — filed, moved, escalated
//! and listed. A response lies at its place, a request with its person (where they live):
//! outside the user's jurisdiction either reads as absent (404).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::Uri;
use chainbreak_app::goods::{self, GoodsResponse, GoodsTrace, ResponseView, SuspensionView};
use chainbreak_app::reads::{self, Page};
use chainbreak_app::requests::{self, NewRequest, RequestAct, RequestDetail, RequestView};
use chainbreak_core::access::Permission;
use chainbreak_store::RequestFilter;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Authenticated, actor};
use crate::body::read_json;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::with_deployment;
use crate::records::{PageQuery, path_id, query};

/// Which suspensions.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuspensionsQuery {
    /// `true`: only those in force today (local).
    in_force: Option<bool>,
}

/// Which requests, and paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestsQuery {
    /// `true`: only those not closed.
    open: Option<bool>,
    /// Only those of this person.
    person_id: Option<String>,
    /// Only those sitting at this unit now (after escalations).
    unit: Option<String>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// At most this many records (default 100, at most 1000).
    limit: Option<usize>,
}

/// Goods records to ingest, as the `goods_batches` and `goods_hops` kinds' JSON Lines spell
/// them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GoodsBody {
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    batches: Vec<chainbreak_core::model::GoodsBatch>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    hops: Vec<chainbreak_core::model::GoodsHop>,
}

/// What a goods batch wrote.
#[derive(Debug, serde::Serialize, ToSchema)]
pub(crate) struct GoodsIngested {
    /// Batches and hops written.
    accepted: u64,
    last_seq: u64,
}

/// A positive sample to respond to by hand (after its batch was registered, say).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RespondBody {
    /// A stored positive lab test of a goods batch or an environment sample.
    lab_test_id: String,
    /// The unit that owns the workers' measures (default: the user's unit).
    #[serde(default)]
    owner_unit: Option<String>,
}

/// A service request to file.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestBody {
    person_id: String,
    /// `medicine`, `dialysis`, `medical_care`, `childbirth`, `food` or `other`.
    kind: String,
    /// `urgent`, `high` or `normal` (default: the profile's for the kind).
    #[serde(default)]
    priority: Option<String>,
    /// Default: the unit owning the person's measure.
    #[serde(default)]
    owner_unit: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// A move on a service request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActBody {
    /// `accept`, `reassign` (with `owner_unit`), `close` (with `outcome`: fulfilled, referred,
    /// withdrawn, unfulfilled — the last with a `note`) or `comment` (with `note`).
    action: String,
    #[serde(default)]
    owner_unit: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

fn bad(message: String) -> ApiError {
    ApiError::new(chainbreak_core::ErrorCode::InvalidArgument, message)
}

const RESPONSE_FIELDS: &str = "`{\"id\", \"created_at\", \"sample\": {id, kind, subject, sampled_at, positive_at}, \
    \"recall\": [batch], \"plants\", \"sibling_batches\", \"places_to_seal\": [{place, batches, last_holder, \
    exposed_from, exposed_to}], \"workers\": [{person_id, last_exposure, evidence: [{place, via: staff|visit, \
    batches, from, to}], episode_id}], \"suspensions\": [{plant, nth, from, until, alert}], \"notes\", \
    \"responded_at\"}`";

/// Ingests goods batches (upserted by id) and their hops (appended), all or nothing: the goods
/// registry. A hop lies in the jurisdiction by the place it went to or left.
#[utoipa::path(post, path = "/api/v1/goods:batch", tag = "goods", security(("bearer" = []), ("session" = [])),
    request_body(content = GoodsBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"accepted\", \"last_seq\"}`", body = Object),
        (status = 400, description = "`input.malformed`: the body is not JSON", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not ingest data, or a hop lies outside the user's \
            jurisdiction (at `$.hops[i]`)", body = ErrorBody),
        (status = 413, description = "`input.too_large`", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_reference` (a hop's batch or place), \
            `input.inconsistent` (a transfer without `to_place`, a repack without `to_batch_id`) at a JSON path \
            such as `$.hops[0].batch_id`", body = ErrorBody),
    ))]
pub(crate) async fn goods_batch(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<GoodsIngested>, ApiError> {
    let user = auth.require(Permission::IngestData)?;
    let body: GoodsBody = read_json(req, state.config.max_body_bytes).await?;
    crate::handlers::check_batch_size("goods", body.batches.len() + body.hops.len(), state.config.max_batch_records)?;
    let report = with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        let writer = crate::handlers::writer(dep, &user, "POST /api/v1/goods:batch")?;
        chainbreak_app::ingest::ingest_goods(&mut *dep.store, &writer, &body.batches, &body.hops, now)
    })
    .await?;
    state.metrics.ingested("goods", report.accepted);
    state.metrics.set_last_seq(report.last_seq);
    Ok(Json(GoodsIngested { accepted: report.accepted, last_seq: report.last_seq }))
}

/// A batch traced both ways: downstream (every derived batch, every place they went to, the
/// last holders: the recall list and the places to seal, within the user's jurisdiction, with
/// their staff) and upstream (the batches it came from, their plants, the plants' siblings).
#[utoipa::path(get, path = "/api/v1/goods/batches/{id}/trace", tag = "goods", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The batch's id")),
    responses(
        (status = 200, description = "`{\"batch\", \"downstream\": {batches, places: [{place, batches, first, last, \
            last_holder}], hops}, \"upstream\": {ancestors, plants, siblings}, \"workers\": [staff]}`", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
        (status = 404, description = "`not_found`: no such batch", body = ErrorBody),
    ))]
pub(crate) async fn trace_batch(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<GoodsTrace>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let id = path_id(path)?;
    Ok(Json(with_deployment(&state.deployment, move |dep| goods::trace_for(dep, &user, &id)).await?))
}

/// The responses to positive samples in the user's jurisdiction (by the sampled place, or the
/// first place the goods reached), by id.
#[utoipa::path(get, path = "/api/v1/goods/responses", tag = "goods", security(("bearer" = []), ("session" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "`{\"items\": [response...], \"next\": cursor|null}`; a response as \
            `GET /api/v1/goods/responses/{id}` gives it", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_responses(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<ResponseView>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: PageQuery = query(&uri)?;
    let limit = reads::page_size(q.limit)?;
    Ok(Json(
        with_deployment(&state.deployment, move |dep| goods::responses(dep, Some(&user), q.after.as_deref(), limit))
            .await?,
    ))
}

/// One response to a positive sample.
#[utoipa::path(get, path = "/api/v1/goods/responses/{id}", tag = "goods", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The sample: `lab_test:<id>` or a sentinel report's key")),
    responses(
        (status = 200, description = RESPONSE_FIELDS, body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
        (status = 404, description = "`not_found`: no such response in the user's jurisdiction", body = ErrorBody),
    ))]
pub(crate) async fn get_response(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ResponseView>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let id = path_id(path)?;
    Ok(Json(with_deployment(&state.deployment, move |dep| goods::response(dep, Some(&user), &id)).await?))
}

/// Responds to a stored positive goods or environment test by hand (the lab-tests batch does
/// it by itself): the trace, the workers' proposed measures and the suspensions, once per
/// sample. Answers the new response, or `null` when the sample was responded to already.
#[utoipa::path(post, path = "/api/v1/goods/responses", tag = "goods", security(("bearer" = []), ("session" = [])),
    request_body(content = RespondBody, content_type = "application/json"),
    responses(
        (status = 200, description = RESPONSE_FIELDS, body = Object),
        (status = 400, description = "`invalid_argument`: not a positive goods or environment test", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not confirm contacts", body = ErrorBody),
        (status = 404, description = "`not_found`: no such lab test", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn respond(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<Option<GoodsResponse>>, ApiError> {
    let user = auth.require(Permission::ConfirmContacts)?;
    let body: RespondBody = read_json(req, state.config.max_body_bytes).await?;
    let owner = crate::body::given(body.owner_unit).unwrap_or_else(|| user.unit.clone());
    Ok(Json(
        with_deployment(&state.deployment, move |dep| {
            let sample = goods::sample_of_lab_test(dep, &body.lab_test_id)?;
            let actor = actor(&user, "POST /api/v1/goods/responses");
            Ok(goods::respond(dep, &actor, Some(&user), &[sample], &owner)?.pop())
        })
        .await?,
    ))
}

/// The supplier suspension list: each foreign plant's suspensions by the profile's ladder, with
/// whether each is in force today.
#[utoipa::path(get, path = "/api/v1/goods/suspensions", tag = "goods", security(("bearer" = []), ("session" = [])),
    params(SuspensionsQuery),
    responses(
        (status = 200, description = "An array of `{\"plant\", \"nth\", \"from\", \"until\" (first day allowed again), \
            \"sample\", \"updated_at\", \"in_force\"}` by plant and positive number", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_suspensions(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Vec<SuspensionView>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: SuspensionsQuery = query(&uri)?;
    Ok(Json(
        with_deployment(&state.deployment, move |dep| {
            goods::suspensions(dep, Some(&user), q.in_force.unwrap_or(false))
        })
        .await?,
    ))
}

const REQUEST_FIELDS: &str = "`{\"id\", \"person_id\", \"kind\", \"priority\", \"state\" (open, in_progress, closed), \
    \"owner_unit\", \"unit\" (where it sits after escalations), \"due\", \"escalation\", \"outcome\", \"filed_at\", \
    \"updated_at\", \"events\", \"overdue\"}`";

/// The service requests of persons living in the user's jurisdiction, by id.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", security(("bearer" = []), ("session" = [])),
    params(RequestsQuery),
    responses(
        (status = 200, description = "`{\"items\": [request...], \"next\": cursor|null}`", body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_requests(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<RequestView>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: RequestsQuery = query(&uri)?;
    let limit = reads::page_size(q.limit)?;
    Ok(Json(
        with_deployment(&state.deployment, move |dep| {
            let filter =
                RequestFilter { open: q.open.unwrap_or(false), person_id: q.person_id, unit: q.unit, due_before: None };
            requests::list(dep, Some(&user), &filter, q.after.as_deref(), limit)
        })
        .await?,
    ))
}

/// Files a service request for a resident under a zone or home measure: its deadline from the
/// profile's `[service_requests]` for the kind and priority.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", security(("bearer" = []), ("session" = [])),
    request_body(content = RequestBody, content_type = "application/json"),
    responses(
        (status = 200, description = REQUEST_FIELDS, body = Object),
        (status = 400, description = "`invalid_argument`: a kind or priority not in the vocabulary, a person under \
            no zone or home measure", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage episodes", body = ErrorBody),
        (status = 404, description = "`not_found`: no such person in the user's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn file_request(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<RequestView>, ApiError> {
    use chainbreak_core::profile::{RequestKind, RequestPriority};
    let user = auth.require(Permission::ManageEpisodes)?;
    let body: RequestBody = read_json(req, state.config.max_body_bytes).await?;
    let kind = RequestKind::parse(&body.kind)
        .ok_or_else(|| bad(format!("kind: `{}` is not one of {}", body.kind, RequestKind::expected())))?;
    let priority = match crate::body::given(body.priority) {
        None => None,
        Some(p) => Some(
            RequestPriority::parse(&p)
                .ok_or_else(|| bad(format!("priority: `{p}` is not one of {}", RequestPriority::expected())))?,
        ),
    };
    let new = NewRequest { person_id: body.person_id, kind, priority, owner_unit: body.owner_unit, note: body.note };
    Ok(Json(
        with_deployment(&state.deployment, move |dep| {
            requests::file(dep, &actor(&user, "POST /api/v1/requests"), Some(&user), new)
        })
        .await?,
    ))
}

/// One service request with its history.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request's fields with `basis` (the episode that makes the person eligible) \
            and `history` (`at`, `actor`, `event`)", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
        (status = 404, description = "`not_found`: no such request in the user's jurisdiction", body = ErrorBody),
    ))]
pub(crate) async fn get_request(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RequestDetail>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let id = path_id(path)?;
    Ok(Json(with_deployment(&state.deployment, move |dep| requests::show(dep, Some(&user), &id)).await?))
}

/// Moves a service request: accept, hand to another unit, comment, or close — only with an
/// outcome. A move the request's state does not allow changes nothing.
#[utoipa::path(post, path = "/api/v1/requests/{id}/actions", tag = "requests", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The request's id")),
    request_body(content = ActBody, content_type = "application/json"),
    responses(
        (status = 200, description = REQUEST_FIELDS, body = Object),
        (status = 400, description = "`invalid_argument`: the state does not allow it, a close without an outcome, \
            an unfulfilled close without a note", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage episodes", body = ErrorBody),
        (status = 404, description = "`not_found`: no such request in the user's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn act_on_request(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<Json<RequestView>, ApiError> {
    use chainbreak_closedloop::requests::RequestOutcome;
    let user = auth.require(Permission::ManageEpisodes)?;
    let id = path_id(path)?;
    // Outside the jurisdiction the request is absent, whatever the body says.
    let (u, i) = (user.clone(), id.clone());
    with_deployment(&state.deployment, move |dep| requests::show(dep, Some(&u), &i).map(|_| ())).await?;
    let body: ActBody = read_json(req, state.config.max_body_bytes).await?;
    let note = crate::body::given(body.note);
    let act = match body.action.as_str() {
        "accept" => RequestAct::Accept { note },
        "reassign" => RequestAct::Reassign {
            owner_unit: crate::body::given(body.owner_unit)
                .ok_or_else(|| bad("owner_unit: a `reassign` names the unit".into()))?,
        },
        "close" => {
            let outcome = body.outcome.ok_or_else(|| bad("outcome: a request closes only with an outcome".into()))?;
            let outcome = RequestOutcome::parse(&outcome)
                .ok_or_else(|| bad(format!("outcome: `{outcome}` is not one of {}", RequestOutcome::expected())))?;
            RequestAct::Close { outcome, note }
        }
        "comment" => RequestAct::Comment { note: note.ok_or_else(|| bad("note: a `comment` needs text".into()))? },
        other => return Err(bad(format!("action: `{other}` is not one of accept, reassign, close, comment"))),
    };
    Ok(Json(
        with_deployment(&state.deployment, move |dep| {
            requests::act(dep, &actor(&user, "POST /api/v1/requests/{id}/actions"), Some(&user), &id, act)
        })
        .await?,
    ))
}

/// Records now the escalation of every open request of the user's jurisdiction past its
/// deadline (the server does it every minute for all): one unit up per
/// `escalate_every_minutes` late.
#[utoipa::path(post, path = "/api/v1/requests/escalations", tag = "requests", security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "An array of the requests escalated", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage episodes", body = ErrorBody),
    ))]
pub(crate) async fn escalate_requests(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    let user = auth.require(Permission::ManageEpisodes)?;
    Ok(Json(
        with_deployment(&state.deployment, move |dep| {
            requests::escalate(dep, &actor(&user, "POST /api/v1/requests/escalations"), Some(&user))
        })
        .await?,
    ))
}
