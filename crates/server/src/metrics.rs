//! Prometheus metrics and the per-request log event.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tracing::Instrument;

use crate::AppState;

/// The route label of requests that matched no route (raw paths are never labels or logged:
/// they could carry identifiers, and they would make the label set unbounded).
const UNMATCHED: &str = "unmatched";

/// The target of the request span and event (`RUST_LOG=chainbreak_server::http=info`).
const LOG_TARGET: &str = "chainbreak_server::http";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The server's metrics and their registry.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    ingested: Family<KindLabels, Counter>,
    last_seq: Gauge,
}

fn duration_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("chainbreak");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by route, method and status", requests.clone());
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from receiving a request to its response, by route",
            Unit::Seconds,
            duration.clone(),
        );
        let ingested = Family::<KindLabels, Counter>::default();
        registry.register("ingested_records", "Records accepted by the ingest API, by kind", ingested.clone());
        let last_seq = Gauge::default();
        registry.register("store_last_seq", "The store's newest change sequence number", last_seq.clone());
        Metrics { registry, requests, duration, ingested, last_seq }
    }

    /// Counts records accepted by an ingest (`kind` is `visit` or `lab_test`).
    pub(crate) fn ingested(&self, kind: &'static str, n: u64) {
        self.ingested.get_or_create(&KindLabels { kind }).inc_by(n);
    }

    pub(crate) fn set_last_seq(&self, seq: u64) {
        self.last_seq.set(i64::try_from(seq).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text exposition.
    pub(crate) fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Marks a response with the route that served it (the router's `route_layer`, which runs
/// after routing, so [`MatchedPath`] is known).
pub(crate) async fn tag_route(matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if let Some(m) = matched {
        response.extensions_mut().insert(m);
    }
    response
}

/// The outermost layer: one span and one log event per request, and the request metrics.
pub(crate) async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let span = tracing::info_span!(
        target: LOG_TARGET,
        "http_request",
        method,
        route = tracing::field::Empty,
        status = tracing::field::Empty
    );
    let response = next.run(req).instrument(span.clone()).await;
    let elapsed = start.elapsed();
    let route = response.extensions().get::<MatchedPath>().map(|m| m.as_str()).unwrap_or(UNMATCHED).to_string();
    let status = response.status().as_u16();
    span.record("route", route.as_str());
    span.record("status", status);
    let m = &state.metrics;
    m.requests
        .get_or_create(&RequestLabels { route: route.clone(), method: method.to_string(), status: status.to_string() })
        .inc();
    m.duration.get_or_create(&RouteLabels { route: route.clone() }).observe(elapsed.as_secs_f64());
    tracing::info!(
        target: LOG_TARGET,
        parent: &span,
        method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1e3,
        "request"
    );
    response
}

/// Known methods by name, anything else as `other` (the label set stays bounded).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
