//! Risk zones over HTTP (issue 8): the zone engine's proposals recorded from cases, the list
//! and one zone with its history, a commander's decisions, screening rounds, the daily review;
//! and the zones in force for the public, as JSON and GeoJSON, with no case and no person. A
//! zone lies in its area (or its place's area): outside the user's jurisdiction it reads as
//! absent (404).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::Uri;
use chainbreak_app::reads::{self, Page};
use chainbreak_app::zones::{self, Decided, Decision, PublicZone, Recorded, Review, ZoneHistory, ZoneView};
use chainbreak_core::ErrorCode;
use chainbreak_core::access::Permission;
use chainbreak_core::model::ZoneLevel;
use chainbreak_store::ZoneFilter;
use chainbreak_zones::Round;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Authenticated, actor};
use crate::body::read_json;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::with_deployment;
use crate::records::{path_id, query};

/// Which zones, and paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ZonesQuery {
    /// `proposed`, `confirmed`, `rejected`, `lifted` or `lapsed`.
    status: Option<String>,
    /// `true`: only proposed or confirmed zones.
    open: Option<bool>,
    /// `high`, `medium` or `low`.
    level: Option<String>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// At most this many records (default 100, at most 1000).
    limit: Option<usize>,
}

/// Cases to propose zones for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProposeBody {
    case_ids: Vec<String>,
}

/// A commander's decision on a zone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionBody {
    /// `confirm` (the proposal or its pending raise), `reject` (the same) or `lift` (a zone in
    /// force, before its rule does).
    decision: String,
    /// Why: required to reject or lift.
    #[serde(default)]
    note: Option<String>,
    /// The unit that owns the residents' measures (default: the user's unit).
    #[serde(default)]
    owner_unit: Option<String>,
}

/// A completed screening round.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoundBody {
    /// The round's day, a local date (`YYYY-MM-DD`).
    on: String,
    tested: u32,
    positives: u32,
    /// When it was completed (default: now).
    #[serde(default)]
    completed_at: Option<String>,
}

/// The daily review's options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewBody {
    /// The unit that owns new residents' measures (default: the user's unit).
    #[serde(default)]
    owner_unit: Option<String>,
}

fn bad(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

const ZONE_FIELDS: &str = "the zone as its events make it: `id`, `target` (`kind` area or place, `id`), `status` \
    (proposed, confirmed, rejected, lifted, lapsed), `level`, `raise` (a higher level awaiting confirmation), \
    `entered` (designated or downgraded), `since`, `needs_confirmation`, `widening`, `reasons` (`case_id`, `why`: \
    residence, unit, stayed, county, unknown_source; `from`), `rounds` (`on`, `tested`, `positives`, \
    `completed_at`), `proposed_on`, `ended_on`, `updated_at`, `events`; its `next_round` (`on`, `why`: cadence, \
    final, rule), `round_late` and `next_review` — under `zone`, with its history under `events` (`zone`, `at`, \
    `on`, `actor`, `action`)";

/// Lists the zones of the user's jurisdiction, by id.
#[utoipa::path(get, path = "/api/v1/zones", tag = "zones", security(("bearer" = []), ("session" = [])),
    params(ZonesQuery),
    responses(
        (status = 200, description = "`{\"items\": [zone...], \"next\": cursor|null}` by id; a zone as \
            `GET /api/v1/zones/{id}` gives it under `zone`", body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_zones(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<ZoneView>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: ZonesQuery = query(&uri)?;
    let limit = reads::page_size(q.limit)?;
    let level = match q.level.as_deref() {
        None | Some("") => None,
        Some(l) => Some(
            ZoneLevel::parse(l).ok_or_else(|| bad(format!("level: `{l}` is not one of {}", ZoneLevel::expected())))?,
        ),
    };
    const STATUSES: [&str; 5] = ["proposed", "confirmed", "rejected", "lifted", "lapsed"];
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) if STATUSES.contains(&s) => Some(s.to_string()),
        Some(s) => return Err(bad(format!("status: `{s}` is not one of {}", STATUSES.join(", ")))),
    };
    let page = with_deployment(&state.deployment, move |dep| {
        let filter = ZoneFilter { status, open: q.open.unwrap_or(false), level, ..Default::default() };
        let items = zones::page(dep, Some(&user), &filter, q.after.as_deref(), limit)?;
        let next = (items.len() == limit).then(|| items.last().map(|z| z.zone.id.clone())).flatten();
        Ok(Page { items, next })
    })
    .await?;
    Ok(Json(page))
}

/// One zone of the user's jurisdiction, with its whole history.
#[utoipa::path(get, path = "/api/v1/zones/{id}", tag = "zones", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The zone's id (`area:ID/N` or `place:ID/N`)")),
    responses(
        (status = 200, description = ZONE_FIELDS, body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
        (status = 404, description = "`not_found`: no such zone in the user's jurisdiction", body = ErrorBody),
    ))]
pub(crate) async fn get_zone(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ZoneHistory>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let id = path_id(path)?;
    Ok(Json(with_deployment(&state.deployment, move |dep| zones::show(dep, Some(&user), &id)).await?))
}

/// Proposes zones for cases by the profile's rules and records them for a commander to decide:
/// new zones, or new reasons of open ones (each reason once per target).
#[utoipa::path(post, path = "/api/v1/zones:propose", tag = "zones", security(("bearer" = []), ("session" = [])),
    request_body(content = ProposeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"plan\": {profile, proposals, undecided, skipped}, \"proposed\": [zone id], \
            \"updated\": [zone id], \"unchanged\": n}`; an audit record `zone_propose` or `zone_add_reasons` per \
            event", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage zones", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn propose_zones(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<Recorded>, ApiError> {
    let user = auth.require(Permission::ManageZones)?;
    let body: ProposeBody = read_json(req, state.config.max_body_bytes).await?;
    Ok(Json(
        with_deployment(&state.deployment, move |dep| {
            zones::record(dep, &actor(&user, "POST /api/v1/zones:propose"), Some(&user), &body.case_ids)
        })
        .await?,
    ))
}

/// A commander confirms, rejects or lifts a zone of their jurisdiction (DESIGN.md §4a).
/// Confirming a level with a resident measure proposes it for each resident; lifting, or a
/// level without one, ends theirs — in the same write as the decision.
#[utoipa::path(post, path = "/api/v1/zones/{id}/decision", tag = "zones", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The zone's id")),
    request_body(content = DecisionBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The zone after the decision, with `residents_proposed` and \
            `measures_ended`", body = Object),
        (status = 400, description = "`invalid_argument`: the zone's status does not allow it, or a rejection or \
            lifting without a note", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage zones", body = ErrorBody),
        (status = 404, description = "`not_found`: no such zone in the user's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn decide_zone(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<Json<Decided>, ApiError> {
    let user = auth.require(Permission::ManageZones)?;
    let id = path_id(path)?;
    let body: DecisionBody = read_json(req, state.config.max_body_bytes).await?;
    let note = crate::body::given(body.note);
    let decision = match (body.decision.as_str(), note.clone()) {
        ("confirm", note) => Decision::Confirm { note },
        ("reject", Some(note)) => Decision::Reject { note },
        ("lift", Some(note)) => Decision::Lift { note },
        ("reject" | "lift", None) => return Err(bad(format!("note: a `{}` says why", body.decision))),
        (other, _) => return Err(bad(format!("decision: `{other}` is not one of confirm, reject, lift"))),
    };
    let owner = body.owner_unit.unwrap_or_else(|| user.unit.clone());
    Ok(Json(
        with_deployment(&state.deployment, move |dep| {
            let mut actor = actor(&user, "POST /api/v1/zones/{id}/decision");
            actor.reason = note;
            zones::decide(dep, &actor, Some(&user), &id, decision, &owner)
        })
        .await?,
    ))
}

/// Enters a completed screening round of a zone in force.
#[utoipa::path(post, path = "/api/v1/zones/{id}/rounds", tag = "zones", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "The zone's id")),
    request_body(content = RoundBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The zone with the round, its next round and review", body = Object),
        (status = 400, description = "`invalid_argument`: a zone not in force, a round before it, more positives \
            than tested, a bad date", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not ingest data", body = ErrorBody),
        (status = 404, description = "`not_found`: no such zone in the user's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn zone_round(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<Json<ZoneView>, ApiError> {
    let user = auth.require(Permission::IngestData)?;
    let id = path_id(path)?;
    let body: RoundBody = read_json(req, state.config.max_body_bytes).await?;
    let on: jiff::civil::Date =
        body.on.parse().map_err(|e| bad(format!("on: `{}` is not a date (YYYY-MM-DD): {e}", body.on)))?;
    let completed_at = match &body.completed_at {
        Some(t) => Some(chainbreak_core::time::parse_instant(t).map_err(|m| bad(format!("completed_at: {m}")))?),
        None => None,
    };
    Ok(Json(
        with_deployment(&state.deployment, move |dep| {
            let round = Round {
                on,
                tested: body.tested,
                positives: body.positives,
                completed_at: completed_at.unwrap_or_else(|| dep.clock.now()),
            };
            zones::record_round(dep, &actor(&user, "POST /api/v1/zones/{id}/rounds"), Some(&user), &id, round)
        })
        .await?,
    ))
}

/// Runs the daily review of the zones of the user's jurisdiction now (the server also runs it
/// with each detection run).
#[utoipa::path(post, path = "/api/v1/zones/review", tag = "zones", security(("bearer" = []), ("session" = [])),
    request_body(content = ReviewBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"today\", \"lowered\": [{zone, on, from, to, rule, counted_from, round}], \
            \"lifted\", \"lapsed\", \"residents_proposed\", \"measures_ended\", \"rounds_due\": [{zone, on, why, \
            late}]}`", body = Object),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage zones", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn review_zones(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<Review>, ApiError> {
    let user = auth.require(Permission::ManageZones)?;
    let body: ReviewBody = read_json(req, state.config.max_body_bytes).await?;
    let owner = body.owner_unit.unwrap_or_else(|| user.unit.clone());
    Ok(Json(
        with_deployment(&state.deployment, move |dep| {
            zones::review(dep, &actor(&user, "POST /api/v1/zones/review"), Some(&user), &owner)
        })
        .await?,
    ))
}

/// The zones in force, for the public: no case, no person, no token needed.
#[utoipa::path(get, path = "/api/v1/public/zones", tag = "public",
    responses(
        (status = 200, description = "An array of `{\"id\", \"level\", \"target_kind\", \"target_id\", \"name\", \"drawn_at\", \
            \"since\", \"next_review\"}`", body = Object),
    ))]
pub(crate) async fn public_zones(State(state): State<AppState>) -> Result<Json<Vec<PublicZone>>, ApiError> {
    Ok(Json(with_deployment(&state.deployment, |dep| zones::published(dep)).await?))
}

/// The zones in force as a GeoJSON FeatureCollection (area polygons, place points), for the
/// public map: no case, no person, no token needed.
#[utoipa::path(get, path = "/api/v1/public/zones.geojson", tag = "public",
    responses(
        (status = 200, description = "A FeatureCollection; each feature's properties are a public zone", body = Object),
    ))]
pub(crate) async fn public_zones_geojson(
    State(state): State<AppState>,
) -> Result<Json<geojson::FeatureCollection>, ApiError> {
    Ok(Json(with_deployment(&state.deployment, |dep| zones::published_geojson(dep)).await?))
}
