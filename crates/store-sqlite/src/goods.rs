//! Goods responses, plant positives and the supplier suspension list, and service requests
//! with their events.

use chainbreak_store::{
    GoodsResponseRow, PlantPositive, RequestEventRow, RequestFilter, RequestRow, Result, Scope, StoreError,
    SuspensionRow,
};
use jiff::civil::Date;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::backend;
use crate::read::ts;
use crate::scope::{SCOPE_CTE, area_param, person_inside};

fn date(r: &Row, i: usize) -> rusqlite::Result<Date> {
    let text: String = r.get(i)?;
    text.parse::<Date>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

const RESPONSE_SELECT: &str = "SELECT g.id, g.subject_kind, g.subject, g.positive_at, p.id, g.response, g.created_at
     FROM goods_responses g LEFT JOIN places p ON p.key = g.place";

fn response_row(r: &Row) -> rusqlite::Result<GoodsResponseRow> {
    Ok(GoodsResponseRow {
        id: r.get(0)?,
        subject_kind: r.get(1)?,
        subject: r.get(2)?,
        positive_at: ts(r.get(3)?)?,
        place_id: r.get(4)?,
        response: r.get(5)?,
        created_at: ts(r.get(6)?)?,
    })
}

pub(crate) fn responses(
    c: &Connection,
    scope: &Scope,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<GoodsResponseRow>> {
    let sql = format!(
        "{SCOPE_CTE} {RESPONSE_SELECT} WHERE (:area IS NULL OR g.place IN subplaces) AND g.id > :after
         ORDER BY g.id LIMIT :limit"
    );
    let mut s = c.prepare_cached(&sql).map_err(backend)?;
    let ps: &[(&str, &dyn rusqlite::ToSql)] =
        &[(":area", &area_param(c, scope)?), (":after", &after.unwrap_or("")), (":limit", &(limit as i64))];
    s.query_map(ps, response_row).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn response(c: &Connection, id: &str) -> Result<Option<GoodsResponseRow>> {
    c.prepare_cached(&format!("{RESPONSE_SELECT} WHERE g.id = ?1"))
        .and_then(|mut s| s.query_row([id], response_row).optional())
        .map_err(backend)
}

/// Inserts a response unless its id exists: its key, or `None`.
pub(crate) fn put_response(c: &Connection, row: &GoodsResponseRow) -> Result<Option<i64>> {
    let place: Option<i64> = match &row.place_id {
        None => None,
        Some(p) => Some(
            c.prepare_cached("SELECT key FROM places WHERE id = ?1")
                .and_then(|mut s| s.query_row([p], |r| r.get(0)).optional())
                .map_err(backend)?
                .ok_or_else(|| StoreError::UnknownReference {
                    index: 0,
                    field: "place_id",
                    entity: "place",
                    value: p.clone(),
                })?,
        ),
    };
    c.prepare_cached(
        "INSERT INTO goods_responses(id, subject_kind, subject, positive_at, place, response, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO NOTHING RETURNING key",
    )
    .and_then(|mut s| {
        s.query_row(
            params![
                row.id,
                row.subject_kind,
                row.subject,
                row.positive_at.as_second(),
                place,
                row.response,
                row.created_at.as_second()
            ],
            |r| r.get(0),
        )
        .optional()
    })
    .map_err(backend)
}

pub(crate) fn record_positive(c: &Connection, p: &PlantPositive) -> Result<bool> {
    let n = c
        .prepare_cached("INSERT INTO plant_positives(plant, sample, day) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
        .and_then(|mut s| s.execute(params![p.plant, p.sample, p.day.to_string()]))
        .map_err(backend)?;
    Ok(n == 1)
}

pub(crate) fn positives_of(c: &Connection, plant: &str) -> Result<Vec<PlantPositive>> {
    let mut s = c
        .prepare_cached("SELECT plant, sample, day FROM plant_positives WHERE plant = ?1 ORDER BY day, sample")
        .map_err(backend)?;
    s.query_map([plant], |r| Ok(PlantPositive { plant: r.get(0)?, sample: r.get(1)?, day: date(r, 2)? }))
        .and_then(|rows| rows.collect())
        .map_err(backend)
}

const SUSPENSION_SELECT: &str = "SELECT plant, nth, from_day, until_day, sample, updated_at FROM plant_suspensions";

fn suspension_row(r: &Row) -> rusqlite::Result<SuspensionRow> {
    Ok(SuspensionRow {
        plant: r.get(0)?,
        nth: r.get(1)?,
        from: date(r, 2)?,
        until: date(r, 3)?,
        sample: r.get(4)?,
        updated_at: ts(r.get(5)?)?,
    })
}

pub(crate) fn suspensions(c: &Connection, plant: Option<&str>) -> Result<Vec<SuspensionRow>> {
    let mut s = c
        .prepare_cached(&format!("{SUSPENSION_SELECT} WHERE ?1 IS NULL OR plant = ?1 ORDER BY plant, nth"))
        .map_err(backend)?;
    s.query_map([plant], suspension_row).and_then(|rows| rows.collect()).map_err(backend)
}

/// Upserts suspension entries; their keys.
pub(crate) fn put_suspensions(c: &Connection, rows: &[SuspensionRow]) -> Result<Vec<i64>> {
    let mut keys = Vec::with_capacity(rows.len());
    for r in rows {
        let key: i64 = c
            .prepare_cached(
                "INSERT INTO plant_suspensions(plant, nth, from_day, until_day, sample, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(plant, nth) DO UPDATE SET from_day = excluded.from_day, until_day = excluded.until_day,
                   sample = excluded.sample, updated_at = excluded.updated_at
                 RETURNING key",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        r.plant,
                        r.nth,
                        r.from.to_string(),
                        r.until.to_string(),
                        r.sample,
                        r.updated_at.as_second()
                    ],
                    |row| row.get(0),
                )
            })
            .map_err(backend)?;
        keys.push(key);
    }
    Ok(keys)
}

fn event_row(r: &Row) -> rusqlite::Result<RequestEventRow> {
    Ok(RequestEventRow {
        seq: r.get(0)?,
        request_id: r.get(1)?,
        at: ts(r.get(2)?)?,
        actor: r.get(3)?,
        action: r.get(4)?,
    })
}

pub(crate) fn events_of(c: &Connection, id: &str) -> Result<Vec<RequestEventRow>> {
    let mut s = c
        .prepare_cached(
            "SELECT seq, request, at, actor, action FROM service_request_events WHERE request = ?1 ORDER BY seq",
        )
        .map_err(backend)?;
    s.query_map([id], event_row).and_then(|rows| rows.collect()).map_err(backend)
}

const REQUEST_SELECT: &str = "SELECT r.id, p.id, r.kind, r.priority, r.state, r.owner_unit, r.unit, r.due,
       r.escalation, r.outcome, r.filed_at, r.updated_at, r.events, r.request
     FROM service_requests r JOIN persons p ON p.key = r.person";

fn request_row(r: &Row) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        person_id: r.get(1)?,
        kind: r.get(2)?,
        priority: r.get(3)?,
        state: r.get(4)?,
        owner_unit: r.get(5)?,
        unit: r.get(6)?,
        due: ts(r.get(7)?)?,
        escalation: r.get(8)?,
        outcome: r.get(9)?,
        filed_at: ts(r.get(10)?)?,
        updated_at: ts(r.get(11)?)?,
        events: r.get(12)?,
        request: r.get(13)?,
    })
}

pub(crate) fn request(c: &Connection, id: &str) -> Result<Option<RequestRow>> {
    c.prepare_cached(&format!("{REQUEST_SELECT} WHERE r.id = ?1"))
        .and_then(|mut s| s.query_row([id], request_row).optional())
        .map_err(backend)
}

pub(crate) fn requests_page(
    c: &Connection,
    scope: &Scope,
    filter: &RequestFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<RequestRow>> {
    let mut conditions = vec!["r.id > :after".to_string(), format!("(:area IS NULL OR {})", person_inside("r.person"))];
    let mut ps: Vec<(&str, Value)> = vec![
        (":area", area_param(c, scope)?),
        (":after", Value::Text(after.unwrap_or("").to_string())),
        (":limit", Value::Integer(limit as i64)),
    ];
    if filter.open {
        conditions.push("r.state != 'closed'".into());
    }
    if let Some(p) = &filter.person_id {
        conditions.push("p.id = :person".into());
        ps.push((":person", Value::Text(p.clone())));
    }
    if let Some(u) = &filter.unit {
        conditions.push("r.unit = :unit".into());
        ps.push((":unit", Value::Text(u.clone())));
    }
    if let Some(t) = filter.due_before {
        conditions.push("r.due < :due".into());
        ps.push((":due", Value::Integer(t.as_second())));
    }
    let sql = format!("{SCOPE_CTE} {REQUEST_SELECT} WHERE {} ORDER BY r.id LIMIT :limit", conditions.join(" AND "));
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let ps: Vec<(&str, &dyn rusqlite::ToSql)> = ps.iter().map(|(n, v)| (*n, v as &dyn rusqlite::ToSql)).collect();
    stmt.query_map(ps.as_slice(), request_row).and_then(|rows| rows.collect()).map_err(backend)
}

/// Appends the events and upserts the rows; returns the requests' keys.
pub(crate) fn append(c: &Connection, events: &[RequestEventRow], rows: &[RequestRow]) -> Result<Vec<i64>> {
    for (i, e) in events.iter().enumerate() {
        if !rows.iter().any(|r| r.id == e.request_id) {
            return Err(StoreError::Invalid {
                index: i,
                field: "request_id",
                message: format!("request `{}` has events but no row", e.request_id),
            });
        }
        c.prepare_cached("INSERT INTO service_request_events(request, at, actor, action) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![e.request_id, e.at.as_second(), e.actor, e.action]))
            .map_err(backend)?;
    }
    let mut keys = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let person: i64 = c
            .prepare_cached("SELECT key FROM persons WHERE id = ?1")
            .and_then(|mut s| s.query_row([&r.person_id], |row| row.get(0)).optional())
            .map_err(backend)?
            .ok_or_else(|| StoreError::UnknownReference {
                index: i,
                field: "person_id",
                entity: "person",
                value: r.person_id.clone(),
            })?;
        let key: i64 = c
            .prepare_cached(
                "INSERT INTO service_requests(id, person, kind, priority, state, owner_unit, unit, due, escalation,
                   outcome, filed_at, updated_at, events, request)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT(id) DO UPDATE SET priority = excluded.priority, state = excluded.state,
                   owner_unit = excluded.owner_unit, unit = excluded.unit, due = excluded.due,
                   escalation = excluded.escalation, outcome = excluded.outcome, updated_at = excluded.updated_at,
                   events = excluded.events, request = excluded.request
                 RETURNING key",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        r.id,
                        person,
                        r.kind,
                        r.priority,
                        r.state,
                        r.owner_unit,
                        r.unit,
                        r.due.as_second(),
                        r.escalation,
                        r.outcome,
                        r.filed_at.as_second(),
                        r.updated_at.as_second(),
                        r.events,
                        r.request
                    ],
                    |row| row.get(0),
                )
            })
            .map_err(backend)?;
        keys.push(key);
    }
    Ok(keys)
}
