//! User accounts, passwords and API tokens, every change audited.
//!
//! Passwords are hashed with argon2id (the `argon2` crate's defaults, a random 16-byte salt).
//! API tokens are 256 random bits shown once as `cbt_<base64url>`; the store keeps only their
//! SHA-256, which is enough for a secret that cannot be guessed.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chainbreak_core::ErrorCode;
use chainbreak_core::access::{AuditRecord, Role, TokenInfo, User};
use chainbreak_store::Store;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::AppError;

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The prefix of every API token (so that a leaked one is recognisable).
pub const TOKEN_PREFIX: &str = "cbt_";

/// The prefix of every browser-session token (kept in an HttpOnly cookie).
pub const SESSION_PREFIX: &str = "cbs_";

/// The label of the token rows that are browser sessions.
pub const SESSION_LABEL: &str = "browser session";

/// Who is acting, through what, and why: what every audit record says besides the action.
#[derive(Debug, Clone)]
pub struct Actor {
    /// A user name, or `system`.
    pub name: String,
    /// The endpoint or command.
    pub via: String,
    /// The case or task in hand, when given.
    pub reason: Option<String>,
}

impl Actor {
    pub(crate) fn audit(&self, at: Timestamp, action: &str, entity: &str, record: &str) -> AuditRecord {
        AuditRecord {
            seq: 0,
            at,
            actor: self.name.clone(),
            action: action.into(),
            entity: entity.into(),
            record: record.into(),
            via: self.via.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// Why a sign-in or a token was refused. The messages do not say which part was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("the token is unknown, revoked or expired")]
    BadToken,
    #[error("the account is disabled")]
    Disabled,
}

fn invalid(argument: &'static str, message: impl Into<String>) -> AppError {
    AppError::InvalidArgument { argument, message: message.into() }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| AppError::Io { path: "the OS random source".into(), message: e.to_string() })?;
    Ok(buf)
}

/// Hashes a password with argon2id and a fresh salt.
pub fn hash_password(password: &str) -> Result<String, AppError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid("password", format!("a password has at least {MIN_PASSWORD_CHARS} characters")));
    }
    let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|e| invalid("password", e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| invalid("password", e.to_string()))
}

/// A new random password (for accounts created without one), 24 URL-safe characters.
pub fn generate_password() -> Result<String, AppError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<18>()?))
}

/// The SHA-256 a token is stored and looked up by.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Adds a user; the password is hashed here and never stored in clear.
pub fn add_user(store: &mut dyn Store, user: &User, password: &str, actor: &Actor) -> Result<(), AppError> {
    let hash = hash_password(password)?;
    let mut batch = store.begin(user.created_at)?;
    batch.add_user(user, &hash)?;
    batch.append_audit(&actor.audit(user.created_at, "user_add", "user", &user.name))?;
    batch.commit()?;
    Ok(())
}

/// Disables (or enables again) a user.
pub fn set_disabled(
    store: &mut dyn Store,
    name: &str,
    disabled: bool,
    at: Timestamp,
    actor: &Actor,
) -> Result<(), AppError> {
    let mut batch = store.begin(at)?;
    batch.set_user_disabled(name, disabled)?;
    batch.append_audit(&actor.audit(at, if disabled { "user_disable" } else { "user_enable" }, "user", name))?;
    batch.commit()?;
    Ok(())
}

/// Replaces a user's password.
pub fn reset_password(
    store: &mut dyn Store,
    name: &str,
    password: &str,
    at: Timestamp,
    actor: &Actor,
) -> Result<(), AppError> {
    let hash = hash_password(password)?;
    let mut batch = store.begin(at)?;
    batch.set_password_hash(name, &hash)?;
    batch.append_audit(&actor.audit(at, "user_reset_password", "user", name))?;
    batch.commit()?;
    Ok(())
}

/// Issues an API token for a user, valid for `days` (none: until revoked). The token is
/// returned once and never again.
pub fn issue_token(
    store: &mut dyn Store,
    user: &str,
    label: &str,
    days: Option<u32>,
    at: Timestamp,
    actor: &Actor,
) -> Result<(String, TokenInfo), AppError> {
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    let expires = days.map(|d| at + SignedDuration::from_hours(24 * d as i64));
    let mut batch = store.begin(at)?;
    let info = batch.add_token(user, &token_hash(&token), label, at, expires)?;
    batch.append_audit(&actor.audit(at, "token_issue", "user", user))?;
    batch.commit()?;
    Ok((token, info))
}

/// Revokes an API token by its id (as listed when it was issued); it is refused from now on.
pub fn revoke_token(store: &mut dyn Store, id: i64, at: Timestamp, actor: &Actor) -> Result<(), AppError> {
    let mut batch = store.begin(at)?;
    batch.revoke_token(id, at)?;
    batch.append_audit(&actor.audit(at, "token_revoke", "token", &id.to_string()))?;
    batch.commit()?;
    Ok(())
}

/// Checks a user name and password.
pub fn sign_in(store: &dyn Store, name: &str, password: &str) -> Result<Result<User, AuthError>, AppError> {
    let (Some(user), Some(hash)) = (store.user(name)?, store.password_hash(name)?) else {
        // Spend the same effort as a real check, so that timing does not tell which names exist.
        let _ =
            Argon2::default().hash_password(password.as_bytes(), &SaltString::encode_b64(&[0u8; 16]).expect("valid"));
        return Ok(Err(AuthError::BadCredentials));
    };
    let parsed = PasswordHash::new(&hash).map_err(|e| AppError::Io { path: "users".into(), message: e.to_string() })?;
    if Argon2::default().verify_password(password.as_bytes(), &parsed).is_err() {
        return Ok(Err(AuthError::BadCredentials));
    }
    if user.disabled {
        return Ok(Err(AuthError::Disabled));
    }
    Ok(Ok(user))
}

/// Signs `name` in with their password and opens a browser session for `hours`. Every
/// attempt is audited: `sign_in` by the user, or `sign_in_refused` (by `anonymous`, naming
/// the account tried) without saying why to the caller.
pub fn start_session(
    store: &mut dyn Store,
    name: &str,
    password: &str,
    hours: u32,
    at: Timestamp,
    via: &str,
) -> Result<Result<(String, TokenInfo, User), AuthError>, AppError> {
    let checked = sign_in(&*store, name, password)?;
    let mut batch = store.begin(at)?;
    let user = match checked {
        Ok(user) => user,
        Err(refused) => {
            let anonymous = Actor { name: "anonymous".into(), via: via.into(), reason: Some(refused.to_string()) };
            batch.append_audit(&anonymous.audit(at, "sign_in_refused", "user", name))?;
            batch.commit()?;
            return Ok(Err(refused));
        }
    };
    let token = format!("{SESSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    let expires = at + SignedDuration::from_hours(i64::from(hours.max(1)));
    let info = batch.add_token(&user.name, &token_hash(&token), SESSION_LABEL, at, Some(expires))?;
    let actor = Actor { name: user.name.clone(), via: via.into(), reason: None };
    batch.append_audit(&actor.audit(at, "sign_in", "user", &user.name))?;
    batch.commit()?;
    Ok(Ok((token, info, user)))
}

/// Ends the browser session (or revokes the API token) `token`; unknown or dead tokens are
/// left as they are. Audited as `sign_out`.
pub fn end_session(store: &mut dyn Store, token: &str, at: Timestamp, via: &str) -> Result<(), AppError> {
    let Some((user, info)) = store.token_user(&token_hash(token), at)? else {
        return Ok(());
    };
    let mut batch = store.begin(at)?;
    batch.revoke_token(info.id, at)?;
    let actor = Actor { name: user.name.clone(), via: via.into(), reason: None };
    batch.append_audit(&actor.audit(at, "sign_out", "token", &info.id.to_string()))?;
    batch.commit()?;
    Ok(())
}

/// The user a bearer token or session token belongs to, if the token is live and the user
/// enabled.
pub fn authenticate_token(store: &dyn Store, token: &str, now: Timestamp) -> Result<Result<User, AuthError>, AppError> {
    if !token.starts_with(TOKEN_PREFIX) && !token.starts_with(SESSION_PREFIX) {
        return Ok(Err(AuthError::BadToken));
    }
    match store.token_user(&token_hash(token), now)? {
        None => Ok(Err(AuthError::BadToken)),
        Some((user, _)) if user.disabled => Ok(Err(AuthError::Disabled)),
        Some((user, _)) => Ok(Ok(user)),
    }
}

/// Parses a role name for arguments and requests.
pub fn parse_role(s: &str) -> Result<Role, AppError> {
    s.parse::<Role>().map_err(|e| invalid("role", e.to_string()))
}

impl AuthError {
    /// The stable code of a refused sign-in or token.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Unauthenticated
    }
}

/// Whether `admin` may manage an account whose jurisdiction is `area`: only inside their own
/// jurisdiction, so that no administrator can make an account that sees more than they do.
pub fn may_manage(store: &dyn Store, admin: &User, area: &str) -> Result<bool, AppError> {
    let scope = crate::reads::scope_of(store, admin)?;
    Ok(store.in_scope(&scope, chainbreak_store::Entity::Area, &[area])?.first() == Some(&true))
}

/// Fails unless `admin` may give an account the jurisdiction `area` (an unknown area is left
/// for the store to refuse, with its own error).
pub fn check_may_grant(store: &dyn Store, admin: &User, area: &str) -> Result<(), AppError> {
    if store.area(area)?.is_some() && !may_manage(store, admin, area)? {
        return Err(AppError::Forbidden(format!(
            "the jurisdiction `{area}` lies outside yours (`{}`); an account may not see more than its administrator",
            admin.jurisdiction
        )));
    }
    Ok(())
}

/// The account `name`, if `admin` may manage it; `not_found` otherwise (as if it did not exist).
pub fn managed_user(store: &dyn Store, admin: &User, name: &str) -> Result<User, AppError> {
    match store.user(name)? {
        Some(user) if may_manage(store, admin, &user.jurisdiction)? => Ok(user),
        _ => Err(AppError::NotFound(format!("no user `{name}` in your jurisdiction"))),
    }
}
