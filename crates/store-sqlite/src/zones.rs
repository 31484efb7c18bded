//! Risk zones: their events (the history) and current state.

use chainbreak_core::model::ZoneLevel;
use chainbreak_store::{Result, Scope, StoreError, ZoneEventRow, ZoneFilter, ZoneRow};
use jiff::civil::Date;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::backend;
use crate::read::{ts, vocab};
use crate::scope::{SCOPE_CTE, area_param};

fn event_row(r: &Row) -> rusqlite::Result<ZoneEventRow> {
    Ok(ZoneEventRow { seq: r.get(0)?, zone_id: r.get(1)?, at: ts(r.get(2)?)?, actor: r.get(3)?, action: r.get(4)? })
}

pub(crate) fn events_of(c: &Connection, zone: &str) -> Result<Vec<ZoneEventRow>> {
    let mut s = c
        .prepare_cached("SELECT seq, zone, at, actor, action FROM zone_events WHERE zone = ?1 ORDER BY seq")
        .map_err(backend)?;
    s.query_map([zone], event_row).and_then(|rows| rows.collect()).map_err(backend)
}

const ZONE_SELECT: &str =
    "SELECT z.id, z.target_kind, z.target_id, z.status, z.level, z.next_review, z.updated_at, z.events, z.state
     FROM zones z";

fn date(r: &Row, i: usize) -> rusqlite::Result<Option<Date>> {
    let text: Option<String> = r.get(i)?;
    text.map(|t| {
        t.parse::<Date>()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
    })
    .transpose()
}

fn zone_row(r: &Row) -> rusqlite::Result<ZoneRow> {
    Ok(ZoneRow {
        id: r.get(0)?,
        target_kind: r.get(1)?,
        target_id: r.get(2)?,
        status: r.get(3)?,
        level: vocab(r, 4, ZoneLevel::parse)?,
        next_review: date(r, 5)?,
        updated_at: ts(r.get(6)?)?,
        events: r.get(7)?,
        state: r.get(8)?,
    })
}

pub(crate) fn page(
    c: &Connection,
    scope: &Scope,
    filter: &ZoneFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<ZoneRow>> {
    let mut conditions = vec!["z.id > :after".to_string(), "(:area IS NULL OR z.area IN sub)".to_string()];
    let mut ps: Vec<(&str, Value)> = vec![
        (":area", area_param(c, scope)?),
        (":after", Value::Text(after.unwrap_or("").to_string())),
        (":limit", Value::Integer(limit as i64)),
    ];
    if let Some(status) = &filter.status {
        conditions.push("z.status = :status".into());
        ps.push((":status", Value::Text(status.clone())));
    }
    if filter.open {
        conditions.push("z.status IN ('proposed', 'confirmed')".into());
    }
    if let Some(level) = filter.level {
        conditions.push("z.level = :level".into());
        ps.push((":level", Value::Text(level.as_str().into())));
    }
    if let Some((kind, id)) = &filter.target {
        conditions.push("z.target_kind = :kind AND z.target_id = :target".into());
        ps.push((":kind", Value::Text(kind.clone())));
        ps.push((":target", Value::Text(id.clone())));
    }
    if let Some(by) = filter.review_by {
        conditions.push("z.next_review <= :review".into());
        ps.push((":review", Value::Text(by.to_string())));
    }
    let sql = format!("{SCOPE_CTE} {ZONE_SELECT} WHERE {} ORDER BY z.id LIMIT :limit", conditions.join(" AND "));
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let ps: Vec<(&str, &dyn rusqlite::ToSql)> = ps.iter().map(|(n, v)| (*n, v as &dyn rusqlite::ToSql)).collect();
    stmt.query_map(ps.as_slice(), zone_row).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn by_id(c: &Connection, id: &str) -> Result<Option<ZoneRow>> {
    c.prepare_cached(&format!("{ZONE_SELECT} WHERE z.id = ?1"))
        .and_then(|mut s| s.query_row([id], zone_row).optional())
        .map_err(backend)
}

/// Appends the events and upserts the rows; returns the zones' keys.
pub(crate) fn append(c: &Connection, events: &[ZoneEventRow], rows: &[ZoneRow]) -> Result<Vec<i64>> {
    for (i, e) in events.iter().enumerate() {
        if !rows.iter().any(|r| r.id == e.zone_id) {
            return Err(StoreError::Invalid {
                index: i,
                field: "zone_id",
                message: format!("zone `{}` has events but no row", e.zone_id),
            });
        }
        c.prepare_cached("INSERT INTO zone_events(zone, at, actor, action) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![e.zone_id, e.at.as_second(), e.actor, e.action]))
            .map_err(backend)?;
    }
    let mut keys = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let area: Option<i64> = match r.target_kind.as_str() {
            "area" => c
                .prepare_cached("SELECT key FROM areas WHERE id = ?1")
                .and_then(|mut s| s.query_row([&r.target_id], |row| row.get(0)).optional())
                .map_err(backend)?
                .map(Some),
            "place" => c
                .prepare_cached("SELECT area FROM places WHERE id = ?1")
                .and_then(|mut s| s.query_row([&r.target_id], |row| row.get(0)).optional())
                .map_err(backend)?,
            other => {
                return Err(StoreError::Invalid {
                    index: i,
                    field: "target_kind",
                    message: format!("a zone's target is an `area` or a `place`, not `{other}`"),
                });
            }
        }
        .ok_or_else(|| StoreError::UnknownReference {
            index: i,
            field: "target_id",
            entity: if r.target_kind == "area" { "area" } else { "place" },
            value: r.target_id.clone(),
        })?;
        let key: i64 = c
            .prepare_cached(
                "INSERT INTO zones(id, target_kind, target_id, area, status, level, next_review, updated_at, events, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(id) DO UPDATE SET status = excluded.status, level = excluded.level,
                   next_review = excluded.next_review, updated_at = excluded.updated_at, events = excluded.events,
                   state = excluded.state
                 RETURNING key",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        r.id,
                        r.target_kind,
                        r.target_id,
                        area,
                        r.status,
                        r.level.as_str(),
                        r.next_review.map(|d| d.to_string()),
                        r.updated_at.as_second(),
                        r.events,
                        r.state
                    ],
                    |row| row.get(0),
                )
            })
            .map_err(backend)?;
        keys.push(key);
    }
    Ok(keys)
}
