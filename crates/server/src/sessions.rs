//! Browser sessions: sign in with a user name and password, get an HttpOnly, `SameSite=Strict`
//! session cookie valid for `session_hours`; sign out to end it. Every attempt is audited
//! (`sign_in`, `sign_in_refused`, `sign_out`). API clients use bearer tokens instead.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chainbreak_app::accounts;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Authenticated, Credential, SESSION_COOKIE};
use crate::body::read_json;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::with_deployment;
use crate::users::UserView;

/// A sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    #[schema(example = "li.wei")]
    name: String,
    password: String,
}

/// An open session (the token itself is only in the cookie, out of reach of scripts).
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionView {
    user: UserView,
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
}

pub(crate) fn session_cookie(value: &str, max_age_seconds: i64, secure: bool) -> Result<HeaderValue, ApiError> {
    let cookie = cookie::Cookie::build((SESSION_COOKIE, value.to_string()))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_seconds))
        .build();
    HeaderValue::from_str(&cookie.to_string()).map_err(|e| ApiError::internal(format_args!("session cookie: {e}")))
}

/// Signs in and opens a browser session.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions",
    request_body(content = SignIn, content_type = "application/json"),
    responses(
        (status = 201, description = "Signed in: the `chainbreak_session` cookie (HttpOnly, SameSite=Strict) \
            is set", body = SessionView, headers(("set-cookie" = String, description = "the session cookie"))),
        (status = 400, description = "`input.malformed`: the body is not JSON", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: wrong user name or password, or a disabled account",
            body = ErrorBody),
        (status = 422, description = "`input.missing_field`, `input.unknown_field`...", body = ErrorBody),
    ))]
pub(crate) async fn create_session(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let SignIn { name, password } = read_json(req, state.config.max_body_bytes).await?;
    let hours = state.config.session_hours;
    let opened = with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        accounts::start_session(&mut *dep.store, &name, &password, hours, now, "POST /api/v1/sessions")
    })
    .await?;
    let (token, info, user) = opened.map_err(|refused| {
        tracing::info!(reason = %refused, "sign-in refused");
        ApiError::new(chainbreak_core::ErrorCode::Unauthenticated, "wrong user name or password, or a disabled account")
    })?;
    let expires_at = info.expires_at.unwrap_or(info.created_at);
    let cookie = session_cookie(&token, i64::from(hours) * 3600, state.config.secure_cookies)?;
    let body = Json(SessionView { user: user.into(), expires_at });
    Ok((StatusCode::CREATED, [(SET_COOKIE, cookie)], body).into_response())
}

/// Signs out: ends the session (or revokes the bearer token) the request came with.
#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = "sessions",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a cross-site request", body = ErrorBody),
    ))]
pub(crate) async fn end_session(State(state): State<AppState>, auth: Authenticated) -> Result<Response, ApiError> {
    let Authenticated(_, credential) = auth;
    let token = credential.token().to_string();
    with_deployment(&state.deployment, move |dep| {
        let now = dep.clock.now();
        accounts::end_session(&mut *dep.store, &token, now, "DELETE /api/v1/sessions/current")
    })
    .await?;
    match credential {
        Credential::Session(_) => {
            let cleared = session_cookie("", 0, state.config.secure_cookies)?;
            Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cleared)]).into_response())
        }
        Credential::Bearer(_) => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
