//! Authentication and authorisation: the one place where a request becomes a user.
//!
//! Every endpoint but the operational ones (`/healthz`, `/readyz`, `/metrics`,
//! `/openapi.json`) and sign-in takes an [`Authenticated`] user, read from `Authorization:
//! Bearer <token>` (API clients) or from the `chainbreak_session` cookie (browsers; set by
//! `POST /api/v1/sessions`), and checked by [`accounts::authenticate_token`]. A missing,
//! unknown, revoked or expired credential and a disabled user all answer the same 401
//! `unauthenticated` (with `WWW-Authenticate: Bearer`), so that the answer does not tell which
//! part was wrong. A signed-in user whose role lacks the endpoint's [`Permission`] gets 403
//! `forbidden`.
//!
//! Cookies ride along with any request the browser makes, so a request authenticated by the
//! session cookie that changes something (any method but GET, HEAD and OPTIONS) must come from
//! the same origin: the cookie is `SameSite=Strict`, and a cross-site `Origin` or
//! `Sec-Fetch-Site` header is refused with 403 `forbidden` (cross-site request forgery).

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use chainbreak_app::accounts::{self, Actor};
use chainbreak_core::ErrorCode;
use chainbreak_core::access::{Permission, User};

use crate::AppState;
use crate::error::ApiError;
use crate::handlers::with_deployment;

/// The name of the browser-session cookie.
pub(crate) const SESSION_COOKIE: &str = "chainbreak_session";

/// The user a request's bearer token or session cookie belongs to (live, enabled account),
/// and the credential itself (to end a session with).
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub(crate) User, pub(crate) Credential);

/// How a request proved who it is.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    Bearer(String),
    Session(String),
}

impl Credential {
    pub(crate) fn token(&self) -> &str {
        match self {
            Credential::Bearer(t) | Credential::Session(t) => t,
        }
    }
}

impl Authenticated {
    /// The user, if their role may do `p`; 403 `forbidden` otherwise.
    /// The user, when the role has one of `ps` (the handler checks which action needs which).
    pub(crate) fn require_any(self, ps: &[Permission]) -> Result<User, ApiError> {
        match ps.iter().find(|p| self.0.role.may(**p)) {
            Some(_) => Ok(self.0),
            None => Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "the role `{}` may not do this (it needs one of the permissions {})",
                    self.0.role,
                    ps.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    pub(crate) fn require(self, p: Permission) -> Result<User, ApiError> {
        if self.0.role.may(p) {
            Ok(self.0)
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("the role `{}` may not do this (it needs the permission `{p}`)", self.0.role),
            ))
        }
    }
}

/// The actor of audit records written on behalf of `user` through `via` (`POST /api/v1/users`).
pub(crate) fn actor(user: &User, via: &str) -> Actor {
    Actor { name: user.name.clone(), via: via.to_string(), reason: None }
}

fn unauthenticated() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthenticated,
        "a valid API token or session is required: send `Authorization: Bearer <token>` with a live token of an \
         enabled user, or sign in (POST /api/v1/sessions)",
    )
}

/// The session token of the request's `chainbreak_session` cookie.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE && !c.value().is_empty())
        .map(|c| c.value().to_string())
}

/// Whether a cookie-authenticated request may change things: not from another site.
fn same_origin(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let header = |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => {
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let credential = match (bearer(&parts.headers), session_cookie(&parts.headers)) {
            (Some(token), _) => Credential::Bearer(token.to_string()),
            (None, Some(token)) => {
                if !same_origin(&parts.method, &parts.headers) {
                    return Err(ApiError::new(
                        ErrorCode::Forbidden,
                        "a cross-site request may not use the session cookie to change anything",
                    ));
                }
                Credential::Session(token)
            }
            (None, None) => return Err(unauthenticated()),
        };
        let token = credential.token().to_string();
        let checked = with_deployment(&state.deployment, move |dep| {
            let now = dep.clock.now();
            accounts::authenticate_token(&*dep.store, &token, now)
        })
        .await?;
        match checked {
            Ok(user) => Ok(Authenticated(user, credential)),
            Err(refused) => {
                // Which part was wrong goes to the log, not to the client.
                tracing::info!(reason = %refused, "request refused");
                Err(unauthenticated())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, "Bearer cbt_abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("cbt_abc"));
        h.insert(AUTHORIZATION, "bearer  cbt_abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("cbt_abc"));
        h.insert(AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        assert_eq!(session_cookie(&h), None);
        h.insert(COOKIE, "theme=dark; chainbreak_session=cbs_abc; lang=zh".parse().unwrap());
        assert_eq!(session_cookie(&h).as_deref(), Some("cbs_abc"));
        h.insert(COOKIE, "chainbreak_session=".parse().unwrap());
        assert_eq!(session_cookie(&h), None);
    }

    #[test]
    fn cookie_requests_that_change_things_must_be_same_origin() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin(&Method::GET, &headers(&[("origin", "https://evil.example")])));
        assert!(same_origin(&Method::POST, &headers(&[host])), "no Origin: not a browser's cross-site form");
        assert!(same_origin(&Method::POST, &headers(&[host, ("origin", "http://127.0.0.1:8080")])));
        assert!(!same_origin(&Method::POST, &headers(&[host, ("origin", "https://evil.example")])));
        assert!(!same_origin(&Method::DELETE, &headers(&[host, ("sec-fetch-site", "cross-site")])));
        assert!(same_origin(&Method::POST, &headers(&[host, ("sec-fetch-site", "same-origin")])));
    }
}
