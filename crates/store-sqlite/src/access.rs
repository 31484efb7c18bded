//! Accounts, API tokens and the append-only audit trail.

use chainbreak_core::access::{AuditRecord, Role, TokenInfo, User};
use chainbreak_store::{AuditFilter, Result, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::backend;

fn ts(s: i64) -> rusqlite::Result<Timestamp> {
    Timestamp::from_second(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, Box::new(e)))
}

const USER_SELECT: &str = "SELECT u.name, u.role, u.unit, a.id, u.disabled, u.created_at
     FROM users u JOIN areas a ON a.key = u.jurisdiction";

fn user_row(r: &Row) -> rusqlite::Result<User> {
    let role: String = r.get(1)?;
    Ok(User {
        name: r.get(0)?,
        role: Role::parse(&role).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("unknown role `{role}`").into(),
            )
        })?,
        unit: r.get(2)?,
        jurisdiction: r.get(3)?,
        disabled: r.get(4)?,
        created_at: ts(r.get(5)?)?,
    })
}

const TOKEN_SELECT: &str = "SELECT t.id, u.name, t.label, t.created_at, t.expires_at, t.revoked_at
     FROM api_tokens t JOIN users u ON u.key = t.user";

fn token_row(r: &Row) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        user: r.get(1)?,
        label: r.get(2)?,
        created_at: ts(r.get(3)?)?,
        expires_at: r.get::<_, Option<i64>>(4)?.map(ts).transpose()?,
        revoked_at: r.get::<_, Option<i64>>(5)?.map(ts).transpose()?,
    })
}

pub(crate) fn user(c: &Connection, name: &str) -> Result<Option<User>> {
    c.prepare_cached(&format!("{USER_SELECT} WHERE u.name = ?1"))
        .and_then(|mut s| s.query_row([name], user_row).optional())
        .map_err(backend)
}

pub(crate) fn users(c: &Connection) -> Result<Vec<User>> {
    let mut s = c.prepare_cached(&format!("{USER_SELECT} ORDER BY u.name")).map_err(backend)?;
    s.query_map([], user_row).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn password_hash(c: &Connection, name: &str) -> Result<Option<String>> {
    c.prepare_cached("SELECT password_hash FROM users WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(backend)
}

pub(crate) fn token_user(c: &Connection, token_hash: &[u8], now: Timestamp) -> Result<Option<(User, TokenInfo)>> {
    let token = c
        .prepare_cached(&format!(
            "{TOKEN_SELECT} WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?2)"
        ))
        .and_then(|mut s| s.query_row(params![token_hash, now.as_second()], token_row).optional())
        .map_err(backend)?;
    let Some(token) = token else { return Ok(None) };
    let user = user(c, &token.user)?.ok_or_else(|| StoreError::Backend(format!("token {} has no user", token.id)))?;
    Ok(Some((user, token)))
}

pub(crate) fn add_user(c: &Connection, user: &User, password_hash: &str) -> Result<()> {
    let area: Option<i64> = c
        .prepare_cached("SELECT key FROM areas WHERE id = ?1")
        .and_then(|mut s| s.query_row([&user.jurisdiction], |r| r.get(0)).optional())
        .map_err(backend)?;
    let Some(area) = area else {
        return Err(StoreError::UnknownReference {
            index: 0,
            field: "jurisdiction",
            entity: "area",
            value: user.jurisdiction.clone(),
        });
    };
    if self::user(c, &user.name)?.is_some() {
        return Err(StoreError::Invalid {
            index: 0,
            field: "name",
            message: format!("a user `{}` exists already", user.name),
        });
    }
    c.prepare_cached(
        "INSERT INTO users(name, role, unit, jurisdiction, password_hash, disabled, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            user.name,
            user.role.as_str(),
            user.unit,
            area,
            password_hash,
            user.disabled,
            user.created_at.as_second()
        ])
    })
    .map_err(backend)?;
    Ok(())
}

fn update_user(c: &Connection, name: &str, sql: &str, value: &dyn rusqlite::ToSql) -> Result<()> {
    let n = c.prepare_cached(sql).and_then(|mut s| s.execute(params![name, value])).map_err(backend)?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("user `{name}`")));
    }
    Ok(())
}

pub(crate) fn set_user_disabled(c: &Connection, name: &str, disabled: bool) -> Result<()> {
    update_user(c, name, "UPDATE users SET disabled = ?2 WHERE name = ?1", &disabled)
}

pub(crate) fn set_password_hash(c: &Connection, name: &str, hash: &str) -> Result<()> {
    update_user(c, name, "UPDATE users SET password_hash = ?2 WHERE name = ?1", &hash)
}

pub(crate) fn add_token(
    c: &Connection,
    user: &str,
    token_hash: &[u8],
    label: &str,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
) -> Result<TokenInfo> {
    let key: i64 = c
        .prepare_cached("SELECT key FROM users WHERE name = ?1")
        .and_then(|mut s| s.query_row([user], |r| r.get(0)).optional())
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(format!("user `{user}`")))?;
    c.prepare_cached(
        "INSERT INTO api_tokens(user, token_hash, label, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![key, token_hash, label, created_at.as_second(), expires_at.map(|t| t.as_second())])
    })
    .map_err(backend)?;
    let id = c.last_insert_rowid();
    c.prepare_cached(&format!("{TOKEN_SELECT} WHERE t.id = ?1"))
        .and_then(|mut s| s.query_row([id], token_row))
        .map_err(backend)
}

pub(crate) fn revoke_token(c: &Connection, id: i64, at: Timestamp) -> Result<()> {
    let n = c
        .prepare_cached("UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
        .and_then(|mut s| s.execute(params![id, at.as_second()]))
        .map_err(backend)?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("live token {id}")));
    }
    Ok(())
}

pub(crate) fn append_audit(c: &Connection, r: &AuditRecord) -> Result<i64> {
    c.prepare_cached(
        "INSERT INTO audit(at, actor, action, entity, record, via, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| s.execute(params![r.at.as_second(), r.actor, r.action, r.entity, r.record, r.via, r.reason]))
    .map_err(backend)?;
    Ok(c.last_insert_rowid())
}

pub(crate) fn audit_records(c: &Connection, after: i64, limit: usize, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
    let mut s = c
        .prepare_cached(
            "WITH RECURSIVE sub(k) AS (SELECT key FROM areas WHERE id = ?7
               UNION SELECT a.key FROM areas a JOIN sub ON a.parent = sub.k)
             SELECT seq, at, actor, action, entity, record, via, reason FROM audit
             WHERE seq > ?1 AND (?3 IS NULL OR actor = ?3) AND (?4 IS NULL OR action = ?4)
               AND (?5 IS NULL OR entity = ?5) AND (?6 IS NULL OR record = ?6)
               AND (?7 IS NULL OR actor IN (SELECT name FROM users WHERE jurisdiction IN sub))
             ORDER BY seq LIMIT ?2",
        )
        .map_err(backend)?;
    s.query_map(params![after, limit as i64, f.actor, f.action, f.entity, f.record, f.actors_within], |r| {
        Ok(AuditRecord {
            seq: r.get(0)?,
            at: ts(r.get(1)?)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            entity: r.get(4)?,
            record: r.get(5)?,
            via: r.get(6)?,
            reason: r.get(7)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}
