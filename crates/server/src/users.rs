//! Administration: user accounts and API tokens (`manage_users`), and the audit trail
//! (`read_audit`). Every change goes through [`chainbreak_app::accounts`] with the signed-in
//! user as the actor, so it is audited.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chainbreak_app::accounts;
use chainbreak_core::ErrorCode;
use chainbreak_core::access::{AuditRecord, Permission, Role, TokenInfo, User};
use chainbreak_store::AuditFilter;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Authenticated, actor};
use crate::body::read_json;
use crate::error::{ApiError, ErrorBody, ErrorLocation};
use crate::handlers::with_deployment;

/// The most audit records one request returns.
pub(crate) const MAX_AUDIT_LIMIT: usize = 1000;
const DEFAULT_AUDIT_LIMIT: usize = 100;

fn role_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(Role::ALL.iter().map(|r| r.as_str())))
        .description(Some("The user's role; it decides what the user may do."))
        .build()
}

/// A user account (never its password hash).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    #[schema(example = "li.wei")]
    name: String,
    #[schema(schema_with = role_schema)]
    role: Role,
    /// The unit the user works for.
    unit: String,
    /// The area whose subtree the user may see and change.
    jurisdiction: String,
    /// A disabled user cannot sign in and their tokens are refused.
    disabled: bool,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        // Destructured in full so that a field added to User is a decision here.
        let User { name, role, unit, jurisdiction, disabled, created_at } = u;
        UserView { name, role, unit, jurisdiction, disabled, created_at }
    }
}

/// A new user account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    /// Letters, digits, `.`, `_`, `-` and `@`.
    #[schema(example = "li.wei")]
    name: String,
    #[schema(schema_with = role_schema)]
    role: Role,
    unit: String,
    /// A registered area id.
    jurisdiction: String,
    /// At least 12 characters; stored only as an argon2id hash.
    password: String,
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPassword {
    /// At least 12 characters.
    password: String,
}

/// A token to issue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// What the token is for (`lab-feed`, `laptop`...).
    label: String,
    /// Days of validity (at least 1); absent: until revoked.
    #[serde(default)]
    #[schema(minimum = 1)]
    days: Option<u32>,
}

/// An API token's description (the token itself is stored only hashed).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenInfoView {
    id: i64,
    user: String,
    label: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    revoked_at: Option<Timestamp>,
}

impl From<TokenInfo> for TokenInfoView {
    fn from(t: TokenInfo) -> Self {
        let TokenInfo { id, user, label, created_at, expires_at, revoked_at } = t;
        TokenInfoView { id, user, label, created_at, expires_at, revoked_at }
    }
}

/// A newly issued token: shown this once, never again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IssuedToken {
    /// Send as `Authorization: Bearer <token>`.
    #[schema(example = "cbt_...")]
    token: String,
    info: TokenInfoView,
}

/// One audit record: who did what to which record, when, through what, and why.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEntry {
    /// Increasing; pass the last one seen as `after` to page on.
    seq: i64,
    #[schema(value_type = String, format = DateTime)]
    at: Timestamp,
    /// The user name, or `system`.
    actor: String,
    /// `user_add`, `token_issue`, `read_personal_data`...
    action: String,
    /// The kind of record (`user`, `person`...).
    entity: String,
    /// The record's id.
    record: String,
    /// The endpoint or command.
    via: String,
    /// The case or task in hand, when given.
    reason: Option<String>,
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        let AuditRecord { seq, at, actor, action, entity, record, via, reason } = r;
        AuditEntry { seq, at, actor, action, entity, record, via, reason }
    }
}

/// Filters of the audit trail; empty values are ignored.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only records by this actor.
    actor: Option<String>,
    /// Only records of this action.
    action: Option<String>,
    /// Only records about this kind of record.
    entity: Option<String>,
    /// Only records about this record id.
    record: Option<String>,
    /// Only records with a `seq` above this (default 0).
    after: Option<i64>,
    /// At most this many records (default 100, at most 1000).
    limit: Option<usize>,
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::InputInvalidField, "a user name is 1 to 64 letters, digits, `.`, `_`, `-` or `@`")
            .with_location(ErrorLocation::json_path("$.name")))
    }
}

fn path_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(name)| name).map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.body_text()))
}

/// Lists the user accounts.
#[utoipa::path(get, path = "/api/v1/users", tag = "admin", security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The user accounts within the administrator's jurisdiction, by name",
            body = Vec<UserView>),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage users", body = ErrorBody),
    ))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let admin = auth.require(Permission::ManageUsers)?;
    let users = with_deployment(&state.deployment, move |dep| {
        let mut mine = Vec::new();
        for user in dep.store.users()? {
            if accounts::may_manage(&*dep.store, &admin, &user.jurisdiction)? {
                mine.push(user);
            }
        }
        Ok(mine)
    })
    .await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

/// Adds a user account (audited as `user_add`).
#[utoipa::path(post, path = "/api/v1/users", tag = "admin", security(("bearer" = []), ("session" = [])),
    request_body(content = NewUser, content_type = "application/json"),
    responses(
        (status = 201, description = "The user was added", body = UserView),
        (status = 400, description = "`invalid_argument`: the password is too short; `input.malformed`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage users, or the jurisdiction lies \
            outside the administrator's", body = ErrorBody),
        (status = 415, description = "`input.unsupported`: the body is not `application/json`", body = ErrorBody),
        (status = 422, description = "`input.unknown_reference`: no such jurisdiction; `input.inconsistent`: the \
            name is taken; `input.invalid_field`, `input.missing_field`, `input.unknown_field`", body = ErrorBody),
    ))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    auth: Authenticated,
    req: Request,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let admin = auth.require(Permission::ManageUsers)?;
    let NewUser { name, role, unit, jurisdiction, password } = read_json(req, state.config.max_body_bytes).await?;
    check_name(&name)?;
    let actor = actor(&admin, "POST /api/v1/users");
    let user = with_deployment(&state.deployment, move |dep| {
        accounts::check_may_grant(&*dep.store, &admin, &jurisdiction)?;
        let user = User { name, role, unit, jurisdiction, disabled: false, created_at: dep.clock.now() };
        accounts::add_user(&mut *dep.store, &user, &password, &actor)?;
        Ok(user)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// `POST /api/v1/users/{name}:<action>`: the router cannot match a parameter followed by a
/// suffix in one segment, so one route serves the three actions.
pub(crate) async fn user_action(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let admin = auth.require(Permission::ManageUsers)?;
    let target = path_name(path)?;
    let no_route = || ApiError::new(ErrorCode::NotFound, "no such route; GET /openapi.json lists them");
    let (name, action) = target.rsplit_once(':').ok_or_else(no_route)?;
    let name = name.to_string();
    match action {
        "disable" => set_disabled(state, admin, name, true).await,
        "enable" => set_disabled(state, admin, name, false).await,
        "reset-password" => reset_password(state, admin, name, req).await,
        _ => Err(no_route()),
    }
}

async fn set_disabled(state: AppState, admin: User, name: String, disabled: bool) -> Result<Response, ApiError> {
    let via = if disabled { "POST /api/v1/users/{name}:disable" } else { "POST /api/v1/users/{name}:enable" };
    let actor = actor(&admin, via);
    let user = with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        accounts::managed_user(&*dep.store, &admin, &name)?;
        accounts::set_disabled(&mut *dep.store, &name, disabled, now, &actor)?;
        Ok(dep.store.user(&name)?)
    })
    .await?
    .ok_or_else(|| not_found("the user"))?;
    Ok(Json(UserView::from(user)).into_response())
}

/// Disables a user (audited as `user_disable`): their tokens are refused from now on.
#[utoipa::path(post, path = "/api/v1/users/{name}:disable", tag = "admin", security(("bearer" = []), ("session" = [])),
    params(("name" = String, Path, description = "The user name")),
    responses(
        (status = 200, description = "The user, disabled", body = UserView),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage users", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user in the administrator's jurisdiction", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn disable_user() {}

/// Enables a disabled user again (audited as `user_enable`).
#[utoipa::path(post, path = "/api/v1/users/{name}:enable", tag = "admin", security(("bearer" = []), ("session" = [])),
    params(("name" = String, Path, description = "The user name")),
    responses(
        (status = 200, description = "The user, enabled", body = UserView),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage users", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user in the administrator's jurisdiction", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn enable_user() {}

/// Replaces a user's password (audited as `user_reset_password`).
#[utoipa::path(post, path = "/api/v1/users/{name}:reset-password", tag = "admin", security(("bearer" = []), ("session" = [])),
    params(("name" = String, Path, description = "The user name")),
    request_body(content = NewPassword, content_type = "application/json"),
    responses(
        (status = 204, description = "The password was replaced"),
        (status = 400, description = "`invalid_argument`: the password is too short; `input.malformed`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage users", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user in the administrator's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.missing_field`, `input.unknown_field`...", body = ErrorBody),
    ))]
#[allow(dead_code)]
fn reset_user_password() {}

async fn reset_password(state: AppState, admin: User, name: String, req: Request) -> Result<Response, ApiError> {
    let NewPassword { password } = read_json(req, state.config.max_body_bytes).await?;
    let actor = actor(&admin, "POST /api/v1/users/{name}:reset-password");
    with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        accounts::managed_user(&*dep.store, &admin, &name)?;
        accounts::reset_password(&mut *dep.store, &name, &password, now, &actor)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Issues an API token for a user (audited as `token_issue`); the token is shown once.
#[utoipa::path(post, path = "/api/v1/users/{name}/tokens", tag = "admin", security(("bearer" = []), ("session" = [])),
    params(("name" = String, Path, description = "The user name")),
    request_body(content = NewToken, content_type = "application/json"),
    responses(
        (status = 201, description = "The token, shown this once", body = IssuedToken),
        (status = 400, description = "`invalid_argument`: `days` is 0; `input.malformed`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage users", body = ErrorBody),
        (status = 404, description = "`not_found`: no such user in the administrator's jurisdiction", body = ErrorBody),
        (status = 422, description = "`input.missing_field`, `input.unknown_field`...", body = ErrorBody),
    ))]
pub(crate) async fn issue_token(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let admin = auth.require(Permission::ManageUsers)?;
    let name = path_name(path)?;
    let NewToken { label, days } = read_json(req, state.config.max_body_bytes).await?;
    if days == Some(0) {
        return Err(ApiError::new(ErrorCode::InvalidArgument, "`days` is at least 1; leave it out for no expiry")
            .with_location(ErrorLocation::json_path("$.days")));
    }
    let actor = actor(&admin, "POST /api/v1/users/{name}/tokens");
    let (token, info) = with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        accounts::managed_user(&*dep.store, &admin, &name)?;
        accounts::issue_token(&mut *dep.store, &name, &label, days, now, &actor)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(IssuedToken { token, info: info.into() })))
}

/// Reads the audit trail, oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", security(("bearer" = []), ("session" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "Audit records with `seq > after`, oldest first; a reader whose \
            jurisdiction is not at the top of the area tree sees only the records of users within it",
            body = Vec<AuditEntry>),
        (status = 400, description = "`invalid_argument`: a parameter is not acceptable", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not read the audit trail", body = ErrorBody),
    ))]
pub(crate) async fn audit(
    State(state): State<AppState>,
    auth: Authenticated,
    uri: Uri,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let reader = auth.require(Permission::ReadAudit)?;
    let Query(q) = Query::<AuditQuery>::try_from_uri(&uri)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if limit == 0 || limit > MAX_AUDIT_LIMIT {
        return Err(ApiError::new(ErrorCode::InvalidArgument, format!("`limit` is 1 to {MAX_AUDIT_LIMIT}")));
    }
    let some = |v: Option<String>| v.filter(|s| !s.is_empty());
    let mut filter = AuditFilter {
        actor: some(q.actor),
        action: some(q.action),
        entity: some(q.entity),
        record: some(q.record),
        actors_within: None,
    };
    let after = q.after.unwrap_or(0);
    let records = with_deployment(&state.deployment, move |dep| {
        // A reader below the top of the area tree sees what the users of their jurisdiction did.
        if let chainbreak_store::Scope::Within(area) = chainbreak_app::reads::scope_of(&*dep.store, &reader)? {
            filter.actors_within = Some(area);
        }
        Ok(dep.store.audit_records(after, limit, &filter)?)
    })
    .await?;
    Ok(Json(records.into_iter().map(AuditEntry::from).collect()))
}

/// Revokes an API token or browser session by its id (audited as `token_revoke`).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "admin", security(("bearer" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The token's id (as shown when it was issued)")),
    responses(
        (status = 204, description = "Revoked: the token is refused from now on"),
        (status = 400, description = "`invalid_argument`: the id is not a number", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role may not manage users", body = ErrorBody),
        (status = 404, description = "`not_found`: no live token with this id", body = ErrorBody),
    ))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    auth: Authenticated,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let admin = auth.require(Permission::ManageUsers)?;
    let Path(id) = path.map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.body_text()))?;
    let actor = actor(&admin, "DELETE /api/v1/tokens/{id}");
    with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        accounts::revoke_token(&mut *dep.store, id, now, &actor)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
