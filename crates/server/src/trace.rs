//! `POST /api/v1/trace`: the contacts of cases or index persons, with evidence, behind access
//! control (`confirm_contacts`; cases and index persons inside the user's jurisdiction;
//! contacts living elsewhere marked `outside_jurisdiction`).

use axum::Json;
use axum::extract::{Request, State};
use chainbreak_app::proposals::{RecordReport, RecordedRequest};
use chainbreak_app::trace::{IndexEntry, Rule, TraceReport, TraceRequest, trace_for};
use chainbreak_core::access::Permission;
use chainbreak_core::time::ts;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Authenticated;
use crate::body::read_json;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::with_deployment;

/// The contact rule.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) enum RuleBody {
    /// The policy profile's settings per place kind (close, co-exposed, secondary).
    #[default]
    #[serde(rename = "profile")]
    Profile,
    /// Every place is a close-contact setting (the plain venue rule of the benchmark).
    #[serde(rename = "venue-overlap")]
    VenueOverlap,
}

/// An index person and the start of their window.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndexPersonBody {
    person_id: String,
    /// Unix seconds or RFC 3339.
    #[serde(with = "ts")]
    #[schema(value_type = String, format = DateTime)]
    from: Timestamp,
}

fn fifteen() -> u32 {
    15
}

fn two() -> u8 {
    2
}

/// What to trace: cases (each from the start of its infectious period) and/or index persons.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TraceBody {
    #[serde(default)]
    cases: Vec<String>,
    #[serde(default)]
    persons: Vec<IndexPersonBody>,
    /// The end of every window (isolation); default: the end of the data.
    #[serde(default, with = "chainbreak_core::time::opt_ts")]
    #[schema(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    #[serde(default = "fifteen")]
    #[schema(default = 15)]
    min_overlap_minutes: u32,
    /// 1: close contacts; 2: also secondary contacts.
    #[serde(default = "two")]
    #[schema(default = 2)]
    depth: u8,
    #[serde(default)]
    rule: RuleBody,
    /// Store the result as contact proposals for tracers to confirm or reject (DESIGN.md §4a),
    /// recomputed when late visits arrive or a case's dates change.
    #[serde(default)]
    record: bool,
}

/// A trace report, and what recording it as proposals did (with `"record": true`).
#[derive(Debug, Serialize)]
pub(crate) struct TraceAnswer {
    #[serde(flatten)]
    report: TraceReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded: Option<RecordReport>,
}

/// Traces cases or index persons.
#[utoipa::path(post, path = "/api/v1/trace", tag = "tracing", security(("bearer" = []), ("session" = [])),
    request_body(content = TraceBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`{rule, index, to, min_overlap_minutes, depth, tiers: [{tier, category, count, \\
            contacts: [{person_id, first_exposure, last_exposure, exposures, evidence, outside_jurisdiction}]}], hash}`; \
            with `\"record\": true` also `recorded: {indexes, changed, proposed, updated, withdrawn, flagged}`",
            body = Object),
        (status = 400, description = "`invalid_argument`: nothing to trace, a depth other than 1 or 2; \\
            `input.malformed`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not trace (`confirm_contacts`)", body = ErrorBody),
        (status = 404, description = "`not_found`: a case or person not in the user's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.invalid_field`, `input.unknown_field`...", body = ErrorBody),
    ))]
pub(crate) async fn trace(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<TraceAnswer>, ApiError> {
    let user = auth.require(Permission::ConfirmContacts)?;
    let body: TraceBody = read_json(req, state.config.max_body_bytes).await?;
    let TraceBody { cases, persons, to, min_overlap_minutes, depth, rule, record } = body;
    let rule = match rule {
        RuleBody::Profile => Rule::Profile,
        RuleBody::VenueOverlap => Rule::VenueOverlap,
    };
    let index =
        persons.into_iter().map(|p| IndexEntry { person_id: p.person_id, from: p.from, case_id: None }).collect();
    let min_overlap = SignedDuration::from_mins(i64::from(min_overlap_minutes));
    let request = TraceRequest { rule, index, to, min_overlap, depth };
    let answer = with_deployment(&state.deployment, move |dep| {
        let recorded_request = RecordedRequest::of(&request, &cases);
        let actor = crate::auth::actor(&user, "POST /api/v1/trace");
        let report = trace_for(dep, &user, &cases, request)?;
        let recorded = match record {
            true => Some(chainbreak_app::proposals::record(dep, &recorded_request, &report, &actor)?),
            false => None,
        };
        Ok(TraceAnswer { report, recorded })
    })
    .await?;
    Ok(Json(answer))
}
