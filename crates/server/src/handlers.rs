//! The endpoints.

use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, extract::MatchedPath};
use chainbreak_app::{AppError, Deployment, ingest, reads};
use chainbreak_core::ErrorCode;
use chainbreak_core::access::{Permission, User};
use chainbreak_core::model::{LabTest, Visit};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Authenticated, actor};
use crate::body::read_json;
use crate::error::{ApiError, ErrorBody, ErrorLocation};
use crate::openapi::{LabTestSchema, VisitSchema};

/// Runs `f` on the deployment in a blocking thread, holding the lock there (SQLite blocks).
pub(crate) async fn with_deployment<T, F>(deployment: &Arc<Mutex<Deployment>>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Deployment) -> Result<T, AppError> + Send + 'static,
{
    let deployment = Arc::clone(deployment);
    let joined = tokio::task::spawn_blocking(move || {
        // A panic while the lock was held left no half-written batch (a batch dropped without
        // commit rolls back), so the deployment is still usable.
        let mut guard = deployment.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    })
    .await;
    match joined {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(format_args!("store task failed: {e}"))),
    }
}

// ---------------------------------------------------------------- operations

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// Liveness: answers while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is running", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness, with the deployment's settings.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ready {
    /// Always `ready`.
    #[schema(example = "ready")]
    status: &'static str,
    /// The store's schema version.
    schema_version: u32,
    /// The store's newest change sequence number (0 for an empty store).
    last_seq: u64,
    /// The policy profile in force.
    #[schema(example = "cn-2022-9th")]
    profile: String,
    /// The IANA time zone of the deployment's calendar.
    #[schema(example = "Asia/Shanghai")]
    time_zone: String,
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "The store answers", body = Ready),
        (status = 503, description = "The store does not answer; `code` says why \
            (`store.not_initialized`, `store.version`, `internal`...)", body = ErrorBody),
    ))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let result = with_deployment(&state.deployment, |dep| {
        let meta = dep.store.meta()?;
        let last_seq = dep.store.last_seq()?;
        Ok((meta, last_seq))
    })
    .await;
    match result {
        Ok((meta, last_seq)) => {
            state.metrics.set_last_seq(last_seq);
            Json(Ready {
                status: "ready",
                schema_version: meta.schema_version,
                last_seq,
                profile: meta.profile,
                time_zone: meta.time_zone,
            })
            .into_response()
        }
        Err(e) => {
            tracing::warn!(error = ?e, "not ready");
            e.with_status(StatusCode::SERVICE_UNAVAILABLE).into_response()
        }
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Metrics in the OpenMetrics text format: \
            `chainbreak_http_requests_total{route,method,status}`, \
            `chainbreak_http_request_duration_seconds{route}` (histogram), \
            `chainbreak_ingested_records_total{kind}`, `chainbreak_store_last_seq`",
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 500, description = "The metrics could not be encoded", body = ErrorBody),
    ))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    // Refresh the store gauge, unless an ingest holds the store (it updates the gauge itself).
    let deployment = Arc::clone(&state.deployment);
    let seq = tokio::task::spawn_blocking(move || match deployment.try_lock() {
        Ok(dep) => dep.store.last_seq().ok(),
        Err(_) => None,
    })
    .await
    .ok()
    .flatten();
    if let Some(seq) = seq {
        state.metrics.set_last_seq(seq);
    }
    match state.metrics.encode() {
        Ok(text) => {
            ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
        }
        Err(e) => ApiError::internal(format_args!("cannot encode metrics: {e}")).into_response(),
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API", content_type = "application/json",
        body = Object)))]
pub(crate) async fn openapi_json() -> Response {
    match crate::openapi().to_json() {
        Ok(json) => ([(CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => ApiError::internal(format_args!("cannot serialise the OpenAPI document: {e}")).into_response(),
    }
}

// ---------------------------------------------------------------- ingest

/// A batch of visits, all-or-nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VisitsBatch {
    /// The visits, at most `max_batch_records` (default 100 000).
    #[schema(value_type = Vec<VisitSchema>)]
    visits: Vec<Visit>,
    /// Register persons and places that are not yet known, by id alone, instead of rejecting
    /// the batch.
    #[serde(default)]
    #[schema(default = false)]
    register_unknown: bool,
}

/// A batch of lab tests (upserted by id), all-or-nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LabTestsBatch {
    /// The lab tests, at most `max_batch_records` (default 100 000).
    #[schema(value_type = Vec<LabTestSchema>)]
    lab_tests: Vec<LabTest>,
}

/// What an ingest did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IngestReport {
    /// Records written.
    accepted: u64,
    /// Persons registered by id alone (`register_unknown`).
    registered_persons: u64,
    /// Places registered by id alone (`register_unknown`).
    registered_places: u64,
    /// The store's change sequence number after the ingest.
    last_seq: u64,
    /// Lab tests: the suspected cases their positives opened (pending confirmation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suspected_cases: Vec<String>,
    /// Lab tests: the alerts their positives raised.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    alerts: Vec<i64>,
    /// Lab tests: the trace the suspected cases started at once (their contacts proposed for
    /// tracers to confirm; `GET /api/v1/proposals`).
    #[serde(skip_serializing_if = "Option::is_none")]
    traced: Option<TracedCases>,
    /// Lab tests: the responses to positive goods and environment samples (the recall list, the
    /// places to seal, the workers proposed a measure, the supplier suspensions; as
    /// `GET /api/v1/goods/responses/{id}` gives them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    goods_responses: Vec<chainbreak_app::goods::GoodsResponse>,
}

/// The trace that new suspected cases started.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TracedCases {
    /// The cases traced (together).
    cases: Vec<String>,
    /// New contact proposals.
    proposed: usize,
    /// Proposals that took new evidence.
    updated: usize,
    /// Cases that could not be traced, with why.
    skipped: Vec<SkippedCase>,
}

/// A case not traced.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SkippedCase {
    case_id: String,
    reason: String,
}

impl From<chainbreak_app::proposals::CaseTraces> for TracedCases {
    fn from(t: chainbreak_app::proposals::CaseTraces) -> Self {
        TracedCases {
            cases: t.traced,
            proposed: t.recorded.proposed,
            updated: t.recorded.updated,
            skipped: t.skipped.into_iter().map(|(case_id, reason)| SkippedCase { case_id, reason }).collect(),
        }
    }
}

impl From<ingest::IngestReport> for IngestReport {
    fn from(r: ingest::IngestReport) -> Self {
        // Destructured in full so that a field added to the app's report cannot be dropped.
        let ingest::IngestReport { accepted, registered_persons, registered_places, last_seq } = r;
        IngestReport {
            accepted,
            registered_persons,
            registered_places,
            last_seq,
            suspected_cases: vec![],
            alerts: vec![],
            traced: None,
            goods_responses: vec![],
        }
    }
}

/// Who writes a batch through `via`: the user's jurisdiction and the deployment's key.
pub(crate) fn writer(dep: &Deployment, user: &User, via: &str) -> Result<ingest::Writer, AppError> {
    Ok(ingest::Writer {
        scope: reads::scope_of(&*dep.store, user)?,
        actor: actor(user, via),
        pseudonymizer: dep.pseudonymizer.clone(),
    })
}

pub(crate) fn check_batch_size(array: &str, n: usize, max: usize) -> Result<(), ApiError> {
    if n > max {
        return Err(ApiError::new(
            ErrorCode::InputTooLarge,
            format!("the batch has {n} records; at most {max} are accepted per request, split it"),
        )
        .with_location(ErrorLocation::json_path(format!("$.{array}"))));
    }
    Ok(())
}

/// Ingests visits.
///
/// All or nothing: on any error nothing is written. A person or place that is not registered
/// is an error (`input.unknown_reference` at `$.visits[i].person_id` / `place_id`) unless
/// `register_unknown` is set.
#[utoipa::path(post, path = "/api/v1/visits:batch", tag = "ingest", security(("bearer" = []), ("session" = [])),
    request_body(content = VisitsBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The visits were written", body = IngestReport),
        (status = 400, description = "`input.malformed`: the body is not JSON; `location` has the line, column \
            and JSON path", body = ErrorBody),
        (status = 413, description = "`input.too_large`: the body is over `max_body_bytes` or the batch over \
            `max_batch_records`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no live token of an enabled user", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not ingest data (`ingest_data`), or a visit \
            lies outside the user's jurisdiction (neither its place nor its person; at `$.visits[i]`)", body = ErrorBody),
        (status = 415, description = "`input.unsupported`: the body is not `application/json`", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.missing_field`, `input.unknown_field`, \
            `input.unknown_reference` or `input.inconsistent`, at a JSON path such as `$.visits[3].t_in`",
            body = ErrorBody),
        (status = 500, description = "`internal`: the store failed", body = ErrorBody),
    ))]
pub(crate) async fn visits_batch(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<IngestReport>, ApiError> {
    let user = auth.require(Permission::IngestData)?;
    let batch: VisitsBatch = read_json(req, state.config.max_body_bytes).await?;
    check_batch_size("visits", batch.visits.len(), state.config.max_batch_records)?;
    let VisitsBatch { mut visits, register_unknown } = batch;
    let report = with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        let writer = writer(dep, &user, "POST /api/v1/visits:batch")?;
        ingest::ingest_visits(&mut *dep.store, &writer, &mut visits, register_unknown, now)
    })
    .await?;
    state.metrics.ingested("visit", report.accepted);
    state.metrics.set_last_seq(report.last_seq);
    state.recompute.notify_one();
    Ok(Json(report.into()))
}

/// Ingests lab tests (upserted by id).
///
/// All or nothing. A test of a person names a registered person in `subject_id`
/// (`input.unknown_reference` at `$.lab_tests[i].subject_id` otherwise); `lab_id`, when given,
/// names a registered place.
#[utoipa::path(post, path = "/api/v1/lab-tests:batch", tag = "ingest", security(("bearer" = []), ("session" = [])),
    request_body(content = LabTestsBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The lab tests were written", body = IngestReport),
        (status = 400, description = "`input.malformed`: the body is not JSON; `location` has the line, column \
            and JSON path", body = ErrorBody),
        (status = 413, description = "`input.too_large`: the body is over `max_body_bytes` or the batch over \
            `max_batch_records`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no live token of an enabled user", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not ingest lab results (`ingest_lab_results`), \
            or a test lies outside the user's jurisdiction (neither its person nor its lab; at `$.lab_tests[i]`)",
            body = ErrorBody),
        (status = 415, description = "`input.unsupported`: the body is not `application/json`", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.missing_field`, `input.unknown_field`, \
            `input.unknown_reference` or `input.inconsistent`, at a JSON path such as `$.lab_tests[0].subject_id`",
            body = ErrorBody),
        (status = 500, description = "`internal`: the store failed", body = ErrorBody),
    ))]
pub(crate) async fn lab_tests_batch(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<IngestReport>, ApiError> {
    let user = auth.require(Permission::IngestLabResults)?;
    let batch: LabTestsBatch = read_json(req, state.config.max_body_bytes).await?;
    check_batch_size("lab_tests", batch.lab_tests.len(), state.config.max_batch_records)?;
    let LabTestsBatch { mut lab_tests } = batch;
    let report = with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        let writer = writer(dep, &user, "POST /api/v1/lab-tests:batch")?;
        // Positives open suspected cases and raise alerts in the same batch.
        let triggers = chainbreak_app::triggers::Triggers::from_profile(&dep.profile);
        let (report, triggered) =
            ingest::ingest_lab_tests_triggering(&mut *dep.store, &writer, &mut lab_tests, Some(&triggers), now)?;
        // The results move the episodes of the tested persons (and of the secondary contacts
        // who hang on them). The results are stored either way; a failure here is logged and
        // made up by the next batch or `chainbreak episodes` (each result is recorded once).
        let actor = crate::auth::actor(&user, "POST /api/v1/lab-tests:batch");
        match chainbreak_app::episodes::record_lab_results(dep, &actor, &lab_tests) {
            Ok(moved) if moved != Default::default() => tracing::info!(?moved, "lab results moved episodes"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "lab results could not move episodes"),
        }
        // The suspected cases the positives opened are isolated, owned by the submitting lab's
        // unit of intake like imported cases (made up by `chainbreak episodes` on a failure).
        // They are traced at once: their contacts are proposed for tracers to confirm (a failure
        // is logged; `chainbreak trace --record` or `POST /api/v1/trace` makes it up).
        let mut traced = None;
        if !triggered.cases.is_empty() {
            match chainbreak_app::episodes::isolate_cases(dep, &actor, &triggered.cases, INTAKE_UNIT) {
                Ok(isolated) => tracing::info!(?isolated, "suspected cases isolated"),
                Err(e) => tracing::error!(error = ?e, "suspected cases could not be isolated"),
            }
            let ids: Vec<String> = triggered.cases.iter().map(|c| c.id.clone()).collect();
            match chainbreak_app::proposals::trace_cases(dep, &actor, &ids) {
                Ok(t) => {
                    tracing::info!(traced = t.traced.len(), proposed = t.recorded.proposed, "suspected cases traced");
                    traced = Some(t);
                }
                Err(e) => tracing::error!(error = ?e, "suspected cases could not be traced"),
            }
            // Their zones are proposed at once, for a commander to decide (a failure is logged;
            // `POST /api/v1/zones:propose` makes it up).
            match chainbreak_app::zones::record(dep, &actor, None, &ids) {
                Ok(z) => tracing::info!(proposed = z.proposed.len(), updated = z.updated.len(), "zones proposed"),
                Err(e) => tracing::error!(error = ?e, "zones could not be proposed"),
            }
        }
        // Positive goods and environment samples: traced at once, their places to seal and
        // recall list recorded, their workers proposed a measure, the supplier suspension list
        // brought up to date (a failure is logged; `POST /api/v1/goods/responses` makes it up).
        let goods = respond_to_samples(dep, &actor, &triggered.samples);
        Ok((report, triggered, traced, goods))
    })
    .await?;
    let (report, triggered, traced, goods_responses) = report;
    state.metrics.ingested("lab_test", report.accepted);
    state.metrics.set_last_seq(report.last_seq);
    let mut body: IngestReport = report.into();
    body.suspected_cases = triggered.suspected_cases;
    body.alerts = triggered.alerts;
    body.traced = traced.map(TracedCases::from);
    body.goods_responses = goods_responses;
    Ok(Json(body))
}

/// The responses to the positive samples a batch set off, owned by the unit of intake; a
/// failure is logged (the samples stay unanswered until responded to by hand).
pub(crate) fn respond_to_samples(
    dep: &mut chainbreak_app::Deployment,
    actor: &chainbreak_app::accounts::Actor,
    samples: &[chainbreak_app::goods::PositiveSample],
) -> Vec<chainbreak_app::goods::GoodsResponse> {
    if samples.is_empty() {
        return Vec::new();
    }
    match chainbreak_app::goods::respond(dep, actor, None, samples, INTAKE_UNIT) {
        Ok(done) => {
            tracing::info!(responses = done.len(), "positive goods and environment samples responded to");
            done
        }
        Err(e) => {
            tracing::error!(error = ?e, "positive goods or environment samples could not be responded to");
            Vec::new()
        }
    }
}

/// The unit that owns the isolations of suspected cases opened over HTTP, as `chainbreak import
/// --owner-unit` does by default.
const INTAKE_UNIT: &str = "intake";

// ---------------------------------------------------------------- fallbacks

/// No route: 404 in the API's error shape.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route; GET /openapi.json lists them")
}

/// A route called with a method it does not serve: 405 (axum adds the `Allow` header).
pub(crate) async fn method_not_allowed(method: Method, matched: Option<MatchedPath>) -> ApiError {
    let route = matched.as_ref().map(MatchedPath::as_str).unwrap_or("this route");
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{route} does not serve {method}; the Allow header lists what it serves"),
    )
}
