//! Contact proposals (DESIGN.md §4a): lists and single proposals for readers of records, and
//! bulk decisions for roles that may confirm contacts. A proposal lies where its contact lives:
//! outside the user's jurisdiction it reads as absent (404), and cannot be decided.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::Uri;
use chainbreak_app::proposals::{self, ProposalView, Verdict};
use chainbreak_app::reads::{self, Page};
use chainbreak_core::ErrorCode;
use chainbreak_core::access::Permission;
use chainbreak_store::{ProposalFilter, ProposalStatus};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Authenticated, actor};
use crate::body::read_json;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::with_deployment;
use crate::records::{path_id, query};

/// Which proposals, and paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProposalsQuery {
    /// Proposals of this index case.
    case: Option<String>,
    /// `proposed`, `confirmed`, `rejected` or `withdrawn`.
    status: Option<String>,
    /// The `next` of the previous page.
    after: Option<String>,
    /// At most this many records (default 100, at most 1000).
    limit: Option<usize>,
}

/// What a person decides.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DecisionKind {
    /// The person is a contact of the category proposed.
    Confirm,
    /// The person is not (a reason is required).
    Reject,
}

/// A decision on proposals.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionBody {
    /// The proposals' ids.
    ids: Vec<i64>,
    decision: DecisionKind,
    /// Why (required to reject); goes into each proposal and the audit trail.
    #[serde(default)]
    reason: Option<String>,
}

const PROPOSAL_FIELDS: &str = "a proposal has `id`, `case_id` (absent when traced by person), `index_person_id`, \
    `contact_id`, `category`, `tier`, `first_exposure`, `last_exposure`, `exposures`, `evidence` (as the trace \
    report's), `needs_confirmation`, `in_result`, `status` (`proposed`, `confirmed`, `rejected`, `withdrawn`), \
    `decided_by`, `decided_at`, `decision_reason`, `changed_since_decision`, `created_at`, `updated_at`";

/// Lists the contact proposals of the user's jurisdiction (by where the contact lives).
#[utoipa::path(get, path = "/api/v1/proposals", tag = "tracing", security(("bearer" = []), ("session" = [])),
    params(ProposalsQuery),
    responses(
        (status = 200, description = "`{\"items\": [proposal...], \"next\": cursor|null}`, by id; see \
            `GET /api/v1/proposals/{id}` for the fields", body = Object),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
    ))]
pub(crate) async fn list_proposals(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Page<ProposalView>>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let q: ProposalsQuery = query(&uri)?;
    let limit = reads::page_size(q.limit)?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(ProposalStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidArgument,
                format!("status: `{s}` is not one of {}", ProposalStatus::expected()),
            )
        })?),
    };
    let filter = ProposalFilter { case_id: q.case.filter(|c| !c.is_empty()), status };
    let after = q.after;
    let page = with_deployment(&state.deployment, move |dep| {
        proposals::list(&*dep.store, &user, &filter, after.as_deref(), limit)
    })
    .await?;
    Ok(Json(page))
}

/// One contact proposal of the user's jurisdiction.
#[utoipa::path(get, path = "/api/v1/proposals/{id}", tag = "tracing", security(("bearer" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The proposal's id")),
    responses(
        (status = 200, description = PROPOSAL_FIELDS, body = Object),
        (status = 400, description = "`invalid_argument`: the id is not a number", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read records", body = ErrorBody),
        (status = 404, description = "`not_found`: no such proposal in the user's jurisdiction", body = ErrorBody),
    ))]
pub(crate) async fn get_proposal(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ProposalView>, ApiError> {
    let user = auth.require(Permission::ReadRecords)?;
    let id = path_id(path)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::InvalidArgument, format!("`{id}` is not a proposal id (a number)")))?;
    Ok(Json(with_deployment(&state.deployment, move |dep| proposals::get(&*dep.store, &user, id)).await?))
}

/// Confirms or rejects contact proposals, all or nothing.
#[utoipa::path(post, path = "/api/v1/proposals/decisions", tag = "tracing",
    security(("bearer" = []), ("session" = [])),
    request_body(content = DecisionBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The proposals as decided (an array; fields as `GET /api/v1/proposals/{id}`); \
            each decision leaves an audit record (`proposal_confirm`, `proposal_reject`) with the reason; a \
            confirmed close, secondary or grid contact gets their measure episode (owned by the user's unit) in the \
            same batch",
            body = Object),
        (status = 400, description = "`invalid_argument`: no ids, or a rejection without a reason", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not confirm contacts (`confirm_contacts`)",
            body = ErrorBody),
        (status = 404, description = "`not_found`: a proposal not in the user's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.inconsistent`: a withdrawn proposal (no longer in the trace result); \
            `input.invalid_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn decide_proposals(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<Json<Vec<ProposalView>>, ApiError> {
    let user = auth.require(Permission::ConfirmContacts)?;
    let body: DecisionBody = read_json(req, state.config.max_body_bytes).await?;
    let decided = with_deployment(&state.deployment, move |dep| {
        let actor = actor(&user, "POST /api/v1/proposals/decisions");
        let verdict = match body.decision {
            DecisionKind::Confirm => Verdict::Confirm,
            DecisionKind::Reject => Verdict::Reject,
        };
        let owner = user.unit.clone();
        proposals::decide_and_open(dep, Some(&user), &actor, &body.ids, verdict, body.reason.as_deref(), &owner)
            .map(|(decided, _)| decided)
    })
    .await?;
    Ok(Json(decided))
}
