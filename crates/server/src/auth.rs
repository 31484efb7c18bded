//! Authentication and authorisation: the one place where a request becomes a user.
//!
//! Every endpoint but the operational ones (`/healthz`, `/readyz`, `/metrics`,
//! `/openapi.json`) takes an [`Authenticated`] user, read from `Authorization: Bearer <token>`
//! and checked by [`accounts::authenticate_token`]. A missing, unknown, revoked or expired token
//! and a disabled user all answer the same 401 `unauthenticated` (with `WWW-Authenticate:
//! Bearer`), so that the answer does not tell which part was wrong. A signed-in user whose
//! role lacks the endpoint's [`Permission`] gets 403 `forbidden`.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chainbreak_app::accounts::{self, Actor};
use chainbreak_core::ErrorCode;
use chainbreak_core::access::{Permission, User};

use crate::AppState;
use crate::error::ApiError;
use crate::handlers::with_deployment;

/// The user a request's bearer token belongs to (live token, enabled account).
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub(crate) User);

impl Authenticated {
    /// The user, if their role may do `p`; 403 `forbidden` otherwise.
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
        "a valid API token is required: send `Authorization: Bearer <token>` with a live token of an enabled user",
    )
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
        let token = bearer(&parts.headers).ok_or_else(unauthenticated)?.to_string();
        let checked = with_deployment(&state.deployment, move |dep| {
            let now = dep.clock.now();
            accounts::authenticate_token(&*dep.store, &token, now)
        })
        .await?;
        match checked {
            Ok(user) => Ok(Authenticated(user)),
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
}
