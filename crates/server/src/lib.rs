//! chainbreak's HTTP API (axum): health and readiness, batch ingest, reads of records scoped by
//! jurisdiction, user administration, the audit trail, the OpenAPI document and Prometheus metrics.
//!
//! Every endpoint but `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and sign-in
//! (`POST /api/v1/sessions`) needs a bearer token or a browser session, and a role with the
//! endpoint's permission (`auth`).
//!
//! This crate is the only one that knows HTTP: it turns requests into calls on the application
//! layer ([`chainbreak_app`]) and [`chainbreak_core::ErrorCode`]s into statuses (one function,
//! `error::status_for`, with the table). Store work is blocking (SQLite), so it runs in
//! [`tokio::task::spawn_blocking`], holding the deployment's mutex there.
//!
//! Every error answers `{"error":{"code","message","location"}}`. Logs: one `http_request`
//! span and one `request` event per request, with method, matched route (never the raw path,
//! which could carry identifiers), status and latency; request bodies are never logged.

mod alerts;
mod auth;
mod body;
mod dashboard;
mod episodes;
mod error;
mod goods;
mod handlers;
mod i18n;
mod metrics;
mod openapi;
mod pages;
mod proposals;
mod records;
mod sessions;
mod svg;
mod trace;
mod users;
mod zones;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{delete, get, post};
use chainbreak_app::{AppError, Deployment};
use chainbreak_core::time::Clock;

use crate::metrics::Metrics;

/// How the server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The deployment's store (created by `chainbreak init`).
    pub db: PathBuf,
    /// The largest request body accepted, in bytes (default 16 MiB); larger is 413.
    pub max_body_bytes: usize,
    /// The most records accepted in one batch (default 100 000); more is 413.
    pub max_batch_records: usize,
    /// How long a browser session lasts, in hours (default 12).
    pub session_hours: u32,
    /// Mark the session cookie `Secure` (set when the server is reached over HTTPS).
    pub secure_cookies: bool,
    /// How often the retention purge runs (first on start); `None`: never (then run
    /// `chainbreak purge` from a scheduler).
    pub purge_every: Option<std::time::Duration>,
    /// How often stored contact proposals are brought up to the store when no ingest batch
    /// asked for it (changes written by other processes: file imports, merges); `None`: only
    /// after ingest batches. A recompute also runs after every accepted ingest batch.
    pub recompute_every: Option<std::time::Duration>,
    /// How often aberration detection runs over the sentinel feeds (queueing alarms for review
    /// and raising silent sentinels' alerts), and the zones' daily review with it, first a
    /// minute after start; `None`: never (then `chainbreak detect run` or `POST
    /// /api/v1/detect/runs`, and `chainbreak zones review` or `POST /api/v1/zones/review`).
    pub detect_every: Option<std::time::Duration>,
    /// The deployment's pseudonymisation key file (`chainbreak key generate`); without it,
    /// batches naming persons by identifier (`phone:...`) are refused.
    pub pseudonym_key_file: Option<PathBuf>,
    /// Confirm new contact proposals that need no person's confirmation as they are recorded.
    /// DESIGN.md §4a allows it for simulation and the demo only: only `chainbreak demo` sets it.
    pub auto_confirm: bool,
    /// How often late service requests' escalations are recorded (default every minute; how
    /// far a late request goes is the profile's `[service_requests]`); `None`: never (then
    /// `chainbreak requests escalate` or `POST /api/v1/requests/escalations`).
    pub escalate_every: Option<std::time::Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            db: PathBuf::from("chainbreak.db"),
            max_body_bytes: 16 * 1024 * 1024,
            max_batch_records: 100_000,
            pseudonym_key_file: None,
            purge_every: Some(std::time::Duration::from_secs(3600)),
            recompute_every: Some(std::time::Duration::from_secs(300)),
            detect_every: Some(std::time::Duration::from_secs(3600)),
            session_hours: 12,
            secure_cookies: false,
            auto_confirm: false,
            escalate_every: Some(std::time::Duration::from_secs(60)),
        }
    }
}

/// What every request handler shares: the deployment (behind a mutex: the store is `Send` but
/// not `Sync`), the configuration and the metrics.
#[derive(Clone)]
pub struct AppState {
    deployment: Arc<Mutex<Deployment>>,
    config: Arc<ServerConfig>,
    metrics: Arc<Metrics>,
    /// Wakes the background recompute of contact proposals (after an ingest batch).
    recompute: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// Opens the deployment's store at `config.db`.
    pub fn open(config: ServerConfig, clock: Arc<dyn Clock>) -> Result<Self, AppError> {
        let store = chainbreak_app::open(&config.db)?;
        let mut deployment = Deployment::new(Box::new(store), clock)?;
        if let Some(path) = &config.pseudonym_key_file {
            deployment.pseudonymizer = Some(chainbreak_app::pseudonym::Pseudonymizer::from_key_file(path)?);
        }
        deployment.auto_confirm = config.auto_confirm;
        let metrics = Metrics::new();
        metrics.set_last_seq(deployment.store.last_seq()?);
        Ok(AppState {
            deployment: Arc::new(Mutex::new(deployment)),
            config: Arc::new(config),
            metrics: Arc::new(metrics),
            recompute: Arc::new(tokio::sync::Notify::new()),
        })
    }
}

/// The API's routes, with body limit, metrics and request logging.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi_json))
        .route("/api/v1/visits:batch", post(handlers::visits_batch))
        .route("/api/v1/lab-tests:batch", post(handlers::lab_tests_batch))
        .route("/api/v1/sessions", post(sessions::create_session))
        .route("/api/v1/sessions/current", delete(sessions::end_session))
        .route("/api/v1/trace", post(trace::trace))
        .route("/api/v1/proposals", get(proposals::list_proposals))
        .route("/api/v1/proposals/decisions", post(proposals::decide_proposals))
        .route("/api/v1/proposals/{id}", get(proposals::get_proposal))
        .route("/api/v1/episodes", get(episodes::list_episodes).post(episodes::open_episode))
        .route("/api/v1/episodes/{id}", get(episodes::get_episode))
        .route("/api/v1/episodes/{id}/transitions", post(episodes::transition_episode))
        .route("/api/v1/tasks", get(episodes::list_tasks))
        .route("/api/v1/facilities", get(episodes::list_facilities).post(episodes::put_facility))
        .route("/api/v1/facilities/{id}/rooms/{room}/disinfected", post(episodes::room_disinfected))
        .route("/api/v1/sentinel:batch", post(alerts::sentinel_batch))
        .route("/api/v1/alerts", get(alerts::list_alerts).post(alerts::raise_alert))
        .route("/api/v1/alerts/{id}", get(alerts::get_alert))
        .route("/api/v1/alerts/{id}/transitions", post(alerts::transition_alert))
        .route("/api/v1/series", get(alerts::list_series))
        .route("/api/v1/review-queue", get(alerts::review_queue))
        .route("/api/v1/review-queue/{id}/decision", post(alerts::decide_review))
        .route("/api/v1/detect/runs", post(alerts::run_detection))
        .route("/api/v1/sentinels/silent", get(alerts::silent_sentinels))
        .route("/api/v1/rt", get(alerts::rt))
        .route("/api/v1/cases/{id}/clock", post(alerts::case_clock_event))
        .route("/api/v1/zones", get(zones::list_zones))
        .route("/api/v1/zones:propose", post(zones::propose_zones))
        .route("/api/v1/zones/review", post(zones::review_zones))
        .route("/api/v1/zones/{id}", get(zones::get_zone))
        .route("/api/v1/zones/{id}/decision", post(zones::decide_zone))
        .route("/api/v1/zones/{id}/rounds", post(zones::zone_round))
        .route("/api/v1/goods:batch", post(goods::goods_batch))
        .route("/api/v1/goods/batches/{id}/trace", get(goods::trace_batch))
        .route("/api/v1/goods/responses", get(goods::list_responses).post(goods::respond))
        .route("/api/v1/goods/responses/{id}", get(goods::get_response))
        .route("/api/v1/goods/suspensions", get(goods::list_suspensions))
        .route("/api/v1/requests", get(goods::list_requests).post(goods::file_request))
        .route("/api/v1/requests/escalations", post(goods::escalate_requests))
        .route("/api/v1/requests/{id}", get(goods::get_request))
        .route("/api/v1/requests/{id}/actions", post(goods::act_on_request))
        .route("/public", get(pages::public_page))
        .route("/sign-in", get(dashboard::sign_in_page).post(dashboard::sign_in))
        .route("/sign-out", post(dashboard::sign_out))
        .route("/dashboard", get(dashboard::dashboard))
        .route("/zones", get(dashboard::zones))
        .route("/board", get(dashboard::board))
        .route("/chains", get(dashboard::chains))
        .route("/surveillance", get(dashboard::surveillance))
        .route("/surveillance/review/{id}", post(dashboard::decide_review))
        .route("/cases", get(dashboard::cases))
        .route("/cases/{id}", get(dashboard::case))
        .route("/cases/{id}/proposals", post(dashboard::decide_proposal))
        .route("/zones/{id}/decision", post(dashboard::decide_zone))
        .route("/api/v1/public/summary", get(pages::public_summary))
        .route("/api/v1/public/zones", get(zones::public_zones))
        .route("/api/v1/public/zones.geojson", get(zones::public_zones_geojson))
        .route("/api/v1/persons", get(records::list_persons))
        .route("/api/v1/persons/{id}", get(records::get_person))
        .route("/api/v1/places", get(records::list_places))
        .route("/api/v1/places/{id}", get(records::get_place))
        .route("/api/v1/cases", get(records::list_cases))
        .route("/api/v1/cases/{id}", get(records::get_case))
        .route("/api/v1/lab-tests", get(records::list_lab_tests))
        .route("/api/v1/lab-tests/{id}", get(records::get_lab_test))
        .route("/api/v1/visits", get(records::list_visits))
        .route("/api/v1/users", get(users::list_users).post(users::create_user))
        // `{name}:disable`, `{name}:enable`, `{name}:reset-password` (see `users::user_action`).
        .route("/api/v1/users/{name_action}", post(users::user_action))
        .route("/api/v1/users/{name}/tokens", post(users::issue_token))
        .route("/api/v1/tokens/{id}", delete(users::revoke_token))
        .route("/api/v1/audit", get(users::audit))
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .route_layer(from_fn(metrics::tag_route))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(from_fn_with_state(state.clone(), metrics::observe))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then lets requests in flight
/// finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, db = %state.config.db.display(), "serving the chainbreak API");
    let purger = state.config.purge_every.map(|every| tokio::spawn(purge_every(state.clone(), every)));
    let recomputer = tokio::spawn(recompute_proposals(state.clone(), state.config.recompute_every));
    let detector = state.config.detect_every.map(|every| tokio::spawn(detect_every(state.clone(), every)));
    let escalator = state.config.escalate_every.map(|every| tokio::spawn(escalate_every(state.clone(), every)));
    let served = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await;
    if let Some(purger) = purger {
        purger.abort();
    }
    recomputer.abort();
    if let Some(detector) = detector {
        detector.abort();
    }
    if let Some(escalator) = escalator {
        escalator.abort();
    }
    served?;
    tracing::info!("server stopped");
    Ok(())
}

/// Runs the retention purge now and then every `every`, as `system`. A failed purge is logged
/// and tried again at the next tick.
async fn purge_every(state: AppState, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let done = handlers::with_deployment(&state.deployment, |dep| {
            let actor =
                chainbreak_app::accounts::Actor { name: "system".into(), via: "scheduled purge".into(), reason: None };
            let now = dep.clock.now();
            let retention = dep.profile.retention.clone();
            chainbreak_app::retention::purge(&mut *dep.store, &retention, &actor, now)
        })
        .await;
        match done {
            Ok(report) => state.metrics.set_last_seq(report.last_seq),
            Err(e) => tracing::error!(error = ?e, "retention purge failed"),
        }
    }
}

/// Runs aberration detection a minute after start and then every `every`, as `system`: alarms
/// go to the review queue, silent sentinels raise their alerts; then the zones' review (new
/// residents' measures owned by `command`). A failed run is logged and tried again at the
/// next tick.
async fn detect_every(state: AppState, every: std::time::Duration) {
    let start = tokio::time::Instant::now() + every.min(std::time::Duration::from_secs(60));
    let mut ticks = tokio::time::interval_at(start, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let done = handlers::with_deployment(&state.deployment, |dep| {
            let actor = chainbreak_app::accounts::Actor {
                name: "system".into(),
                via: "scheduled detection".into(),
                reason: None,
            };
            let detection = chainbreak_app::surveillance::run(dep, &actor, None);
            // The zones' daily review runs with it (lowering and lifting are by local day).
            let actor = chainbreak_app::accounts::Actor { via: "scheduled zone review".into(), ..actor };
            Ok((detection, chainbreak_app::zones::review(dep, &actor, None, "command")))
        })
        .await;
        let (detection, zones) = match done {
            Ok(both) => both,
            Err(e) => {
                tracing::error!(error = ?e, "scheduled detection failed");
                continue;
            }
        };
        match detection {
            Ok(report) if report.queued > 0 || report.silent_alerts > 0 => {
                tracing::info!(?report, "aberration detection queued alarms or raised alerts")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "aberration detection failed"),
        }
        match zones {
            Ok(r) if !(r.lowered.is_empty() && r.lapsed.is_empty() && r.lifted.is_empty()) => {
                tracing::info!(
                    lowered = r.lowered.len(),
                    lifted = r.lifted.len(),
                    lapsed = r.lapsed.len(),
                    "zones reviewed"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "the zones' review failed"),
        }
    }
}

/// Records the escalations of late service requests every `every`, as `system`. A failure is
/// logged and tried again at the next tick.
async fn escalate_every(state: AppState, every: std::time::Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let done = handlers::with_deployment(&state.deployment, |dep| {
            let actor = chainbreak_app::accounts::Actor {
                name: "system".into(),
                via: "scheduled escalation".into(),
                reason: None,
            };
            chainbreak_app::requests::escalate(dep, &actor, None)
        })
        .await;
        match done {
            Ok(escalated) if !escalated.is_empty() => {
                tracing::info!(escalated = escalated.len(), "late service requests escalated")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "escalating service requests failed"),
        }
    }
}

/// Brings the stored contact proposals up to the store after each ingest batch (coalesced:
/// batches arriving while a recompute runs wake one more) and every `every`, as `system`. A
/// failed recompute is logged and tried again at the next wake-up.
async fn recompute_proposals(state: AppState, every: Option<std::time::Duration>) {
    loop {
        match every {
            Some(every) => {
                tokio::select! {
                    _ = state.recompute.notified() => {}
                    _ = tokio::time::sleep(every) => {}
                }
            }
            None => state.recompute.notified().await,
        }
        let done = handlers::with_deployment(&state.deployment, |dep| {
            let actor = chainbreak_app::accounts::Actor {
                name: "system".into(),
                via: "background recompute".into(),
                reason: None,
            };
            chainbreak_app::proposals::recompute(dep, &actor)
        })
        .await;
        match done {
            Ok(report) if report.recorded.changed > 0 => {
                tracing::info!(
                    stale = report.stale,
                    changed = report.recorded.changed,
                    proposed = report.recorded.proposed,
                    withdrawn = report.recorded.withdrawn,
                    flagged = report.recorded.flagged,
                    "contact proposals recomputed"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "recomputing contact proposals failed"),
        }
    }
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    openapi::ApiDoc::openapi()
}
