//! Alerts and their triage events, the review queue, the response clock, and reads of
//! sentinel records.

use chainbreak_core::model::{AlertState, Case, LabTest, SentinelFeed, SentinelRecord};
use chainbreak_store::{
    AlertEvent, AlertFilter, AlertKind, AlertOutcome, AlertRow, ClockRow, Result, ReviewDecision, ReviewItem,
    ReviewStatus, Scope, SentinelLast, StoreError,
};
use jiff::Timestamp;
use jiff::civil::Date;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::backend;
use crate::read::{CASE_SELECT, LAB_TEST_SELECT, case_row, lab_test_row, opt_ts, ts, vocab};
use crate::scope::{SCOPE_CTE, area_param, person_inside};

fn opt_vocab<T>(r: &Row, i: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<Option<T>> {
    let s: Option<String> = r.get(i)?;
    s.map(|s| {
        parse(&s).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, format!("unknown `{s}`").into())
        })
    })
    .transpose()
}

const ALERT_SELECT: &str = "SELECT a.id, a.kind, a.state, a.key, a.summary, a.owner_unit, ar.id, pl.id, pe.id,
       a.subject, a.details, a.outcome, a.raised_at, a.updated_at
     FROM alerts a LEFT JOIN areas ar ON ar.key = a.area LEFT JOIN places pl ON pl.key = a.place
       LEFT JOIN persons pe ON pe.key = a.person";

fn alert_row(r: &Row) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        kind: vocab(r, 1, AlertKind::parse)?,
        state: vocab(r, 2, AlertState::parse)?,
        key: r.get(3)?,
        summary: r.get(4)?,
        owner_unit: r.get(5)?,
        area_id: r.get(6)?,
        place_id: r.get(7)?,
        person_id: r.get(8)?,
        subject: r.get(9)?,
        details: r.get(10)?,
        outcome: opt_vocab(r, 11, AlertOutcome::parse)?,
        raised_at: ts(r.get(12)?)?,
        updated_at: ts(r.get(13)?)?,
    })
}

/// An alert lies in its area, at its place, or with its person.
fn alert_inside() -> String {
    format!("(a.area IN sub OR a.place IN subplaces OR {})", person_inside("a.person"))
}

pub(crate) fn alert(c: &Connection, id: i64) -> Result<Option<AlertRow>> {
    c.prepare_cached(&format!("{ALERT_SELECT} WHERE a.id = ?1"))
        .and_then(|mut s| s.query_row([id], alert_row).optional())
        .map_err(backend)
}

pub(crate) fn alerts_page(
    c: &Connection,
    scope: &Scope,
    filter: &AlertFilter,
    after: i64,
    limit: usize,
) -> Result<Vec<AlertRow>> {
    let mut conditions = vec!["a.id > :after".to_string(), format!("(:area IS NULL OR {})", alert_inside())];
    let mut ps: Vec<(&str, Value)> = vec![
        (":area", area_param(c, scope)?),
        (":after", Value::Integer(after)),
        (":limit", Value::Integer(limit as i64)),
    ];
    if let Some(kind) = filter.kind {
        conditions.push("a.kind = :kind".into());
        ps.push((":kind", Value::Text(kind.as_str().into())));
    }
    if let Some(state) = filter.state {
        conditions.push("a.state = :state".into());
        ps.push((":state", Value::Text(state.as_str().into())));
    }
    if let Some(owner) = &filter.owner_unit {
        conditions.push("a.owner_unit = :owner".into());
        ps.push((":owner", Value::Text(owner.clone())));
    }
    if filter.open {
        conditions.push("a.state <> 'closed'".into());
    }
    let sql = format!("{SCOPE_CTE} {ALERT_SELECT} WHERE {} ORDER BY a.id LIMIT :limit", conditions.join(" AND "));
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let ps: Vec<(&str, &dyn rusqlite::ToSql)> = ps.iter().map(|(n, v)| (*n, v as &dyn rusqlite::ToSql)).collect();
    stmt.query_map(ps.as_slice(), alert_row).and_then(|rows| rows.collect()).map_err(backend)
}

fn event_row(r: &Row) -> rusqlite::Result<AlertEvent> {
    Ok(AlertEvent {
        seq: r.get(0)?,
        alert_id: r.get(1)?,
        at: ts(r.get(2)?)?,
        actor: r.get(3)?,
        from: opt_vocab(r, 4, AlertState::parse)?,
        to: vocab(r, 5, AlertState::parse)?,
        owner_unit: r.get(6)?,
        outcome: opt_vocab(r, 7, AlertOutcome::parse)?,
        note: r.get(8)?,
    })
}

pub(crate) fn alert_events(c: &Connection, id: i64) -> Result<Vec<AlertEvent>> {
    let mut s = c
        .prepare_cached(
            "SELECT seq, alert, at, actor, from_state, to_state, owner_unit, outcome, note FROM alert_events
             WHERE alert = ?1 ORDER BY seq",
        )
        .map_err(backend)?;
    s.query_map([id], event_row).and_then(|rows| rows.collect()).map_err(backend)
}

fn key_or_unknown(
    c: &Connection,
    index: usize,
    table: &str,
    field: &'static str,
    entity: &'static str,
    id: Option<&String>,
) -> Result<Option<i64>> {
    let Some(id) = id else { return Ok(None) };
    let key: Option<i64> = c
        .prepare_cached(&format!("SELECT key FROM {table} WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(backend)?;
    match key {
        Some(k) => Ok(Some(k)),
        None => Err(StoreError::UnknownReference { index, field, entity, value: id.clone() }),
    }
}

fn insert_event(c: &Connection, e: &AlertEvent) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO alert_events(alert, at, actor, from_state, to_state, owner_unit, outcome, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            e.alert_id,
            e.at.as_second(),
            e.actor,
            e.from.map(|s| s.as_str()),
            e.to.as_str(),
            e.owner_unit,
            e.outcome.map(|o| o.as_str()),
            e.note
        ])
    })
    .map_err(backend)?;
    Ok(())
}

/// Inserts the alerts whose key is new; returns their ids (`None` for a key already there).
pub(crate) fn raise(c: &Connection, rows: &[AlertRow], actor: &str) -> Result<Vec<Option<i64>>> {
    let mut out = Vec::with_capacity(rows.len());
    for (i, a) in rows.iter().enumerate() {
        let area = key_or_unknown(c, i, "areas", "area_id", "area", a.area_id.as_ref())?;
        let place = key_or_unknown(c, i, "places", "place_id", "place", a.place_id.as_ref())?;
        let person = key_or_unknown(c, i, "persons", "person_id", "person", a.person_id.as_ref())?;
        let id: Option<i64> = c
            .prepare_cached(
                "INSERT INTO alerts(kind, state, key, summary, owner_unit, area, place, person, subject, details,
                   raised_at, updated_at)
                 VALUES (?1, 'new', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
                 ON CONFLICT(key) DO NOTHING RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        a.kind.as_str(),
                        a.key,
                        a.summary,
                        a.owner_unit,
                        area,
                        place,
                        person,
                        a.subject,
                        if a.details.is_empty() { "{}" } else { a.details.as_str() },
                        a.raised_at.as_second(),
                    ],
                    |r| r.get(0),
                )
                .optional()
            })
            .map_err(backend)?;
        if let Some(id) = id {
            insert_event(
                c,
                &AlertEvent {
                    seq: 0,
                    alert_id: id,
                    at: a.raised_at,
                    actor: actor.to_string(),
                    from: None,
                    to: AlertState::New,
                    owner_unit: a.owner_unit.clone(),
                    outcome: None,
                    note: None,
                },
            )?;
        }
        out.push(id);
    }
    Ok(out)
}

pub(crate) fn transition(c: &Connection, e: &AlertEvent) -> Result<AlertRow> {
    let now = alert(c, e.alert_id)?.ok_or_else(|| StoreError::NotFound(format!("alert {}", e.alert_id)))?;
    if Some(now.state) != e.from {
        return Err(StoreError::Invalid {
            index: 0,
            field: "state",
            message: format!(
                "alert {} is {}, not {}",
                e.alert_id,
                now.state,
                e.from.map(|s| s.as_str()).unwrap_or("(not raised)")
            ),
        });
    }
    c.prepare_cached(
        "UPDATE alerts SET state = ?2, owner_unit = coalesce(?3, owner_unit), outcome = coalesce(?4, outcome),
           updated_at = ?5 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![e.alert_id, e.to.as_str(), e.owner_unit, e.outcome.map(|o| o.as_str()), e.at.as_second()])
    })
    .map_err(backend)?;
    insert_event(c, e)?;
    Ok(alert(c, e.alert_id)?.expect("read above"))
}

const REVIEW_SELECT: &str = "SELECT r.id, r.series, ar.id, r.feed, r.category, r.frequency, r.period, r.method,
       r.observed, r.expected, r.upperbound, r.score, r.status, r.decided_by, r.decided_at, r.reason, r.alert,
       r.created_at
     FROM review_items r LEFT JOIN areas ar ON ar.key = r.area";

fn review_row(r: &Row) -> rusqlite::Result<ReviewItem> {
    Ok(ReviewItem {
        id: r.get(0)?,
        series: r.get(1)?,
        area_id: r.get(2)?,
        feed: r.get(3)?,
        category: r.get(4)?,
        frequency: r.get(5)?,
        period: r.get(6)?,
        method: r.get(7)?,
        observed: r.get(8)?,
        expected: r.get(9)?,
        upperbound: r.get(10)?,
        score: r.get(11)?,
        status: vocab(r, 12, ReviewStatus::parse)?,
        decided_by: r.get(13)?,
        decided_at: opt_ts(r.get(14)?)?,
        reason: r.get(15)?,
        alert_id: r.get(16)?,
        created_at: ts(r.get(17)?)?,
    })
}

pub(crate) fn review_item(c: &Connection, id: i64) -> Result<Option<ReviewItem>> {
    c.prepare_cached(&format!("{REVIEW_SELECT} WHERE r.id = ?1"))
        .and_then(|mut s| s.query_row([id], review_row).optional())
        .map_err(backend)
}

pub(crate) fn review_queue(
    c: &Connection,
    scope: &Scope,
    status: Option<ReviewStatus>,
    limit: usize,
) -> Result<Vec<ReviewItem>> {
    let sql = format!(
        "{SCOPE_CTE} {REVIEW_SELECT} WHERE (:area IS NULL OR r.area IN sub)
           AND (:status IS NULL OR r.status = :status)
         ORDER BY r.score DESC, r.id LIMIT :limit"
    );
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let status = status.map(|s| s.as_str());
    let ps: &[(&str, &dyn rusqlite::ToSql)] =
        &[(":area", &area_param(c, scope)?), (":status", &status), (":limit", &(limit as i64))];
    stmt.query_map(ps, review_row).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn queue(c: &Connection, rows: &[ReviewItem]) -> Result<Vec<Option<i64>>> {
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        if !r.score.is_finite() || !r.observed.is_finite() || !r.upperbound.is_finite() {
            return Err(StoreError::Invalid {
                index: i,
                field: "score",
                message: "observed, upperbound and score must be finite".into(),
            });
        }
        let area = key_or_unknown(c, i, "areas", "area_id", "area", r.area_id.as_ref())?;
        let id: Option<i64> = c
            .prepare_cached(
                "INSERT INTO review_items(series, area, feed, category, frequency, period, method, observed, expected,
                   upperbound, score, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending', ?12)
                 ON CONFLICT(series, period) DO NOTHING RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        r.series,
                        area,
                        r.feed,
                        r.category,
                        r.frequency,
                        r.period,
                        r.method,
                        r.observed,
                        r.expected,
                        r.upperbound,
                        r.score,
                        r.created_at.as_second()
                    ],
                    |row| row.get(0),
                )
                .optional()
            })
            .map_err(backend)?;
        out.push(id);
    }
    Ok(out)
}

pub(crate) fn decide(c: &Connection, id: i64, d: &ReviewDecision) -> Result<ReviewItem> {
    let item = review_item(c, id)?.ok_or_else(|| StoreError::NotFound(format!("review item {id}")))?;
    if item.status != ReviewStatus::Pending {
        return Err(StoreError::Invalid {
            index: 0,
            field: "status",
            message: format!("review item {id} is {} already", item.status),
        });
    }
    if d.status == ReviewStatus::Pending {
        return Err(StoreError::Invalid { index: 0, field: "status", message: "a decision is not `pending`".into() });
    }
    c.prepare_cached(
        "UPDATE review_items SET status = ?2, decided_by = ?3, decided_at = ?4, reason = ?5, alert = ?6 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![id, d.status.as_str(), d.actor, d.at.as_second(), d.reason, d.alert_id]))
    .map_err(backend)?;
    Ok(review_item(c, id)?.expect("read above"))
}

fn clock_row(r: &Row) -> rusqlite::Result<ClockRow> {
    Ok(ClockRow {
        case_id: r.get(0)?,
        item: r.get(1)?,
        start_event: r.get(2)?,
        stop_event: r.get(3)?,
        limit_hours: r.get(4)?,
        started_at: opt_ts(r.get(5)?)?,
        due_at: opt_ts(r.get(6)?)?,
        stopped_at: opt_ts(r.get(7)?)?,
    })
}

const CLOCK_SELECT: &str = "SELECT case_id, item, start_event, stop_event, limit_hours, started_at, due_at, stopped_at
     FROM response_clock";

pub(crate) fn clock_of(c: &Connection, case_id: &str) -> Result<Vec<ClockRow>> {
    let mut s = c.prepare_cached(&format!("{CLOCK_SELECT} WHERE case_id = ?1 ORDER BY item")).map_err(backend)?;
    s.query_map([case_id], clock_row).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn clocks_reported_since(c: &Connection, scope: &Scope, from: Timestamp) -> Result<Vec<ClockRow>> {
    // By the report-time index: only the recent cases are read, and their scope checked. CROSS
    // JOIN keeps SQLite's join order (cases first): the order by case id would otherwise have it
    // walk every clock row (4 million at 1M cases) to spare a sort of the few it needs.
    let sql = format!(
        "{SCOPE_CTE} SELECT r.case_id, r.item, r.start_event, r.stop_event, r.limit_hours, r.started_at, r.due_at,
           r.stopped_at
         FROM cases k CROSS JOIN response_clock r ON r.case_id = k.id
         WHERE k.reported_at >= :from AND (:area IS NULL OR {})
         ORDER BY r.case_id, r.item",
        person_inside("k.person")
    );
    let mut s = c.prepare_cached(&sql).map_err(backend)?;
    let params: &[(&str, &dyn rusqlite::ToSql)] = &[(":area", &area_param(c, scope)?), (":from", &from.as_second())];
    s.query_map(params, clock_row).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn put_clock(c: &Connection, rows: &[ClockRow]) -> Result<()> {
    for r in rows {
        c.prepare_cached(
            "INSERT INTO response_clock(case_id, item, start_event, stop_event, limit_hours, started_at, due_at,
               stopped_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(case_id, item) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                r.case_id,
                r.item,
                r.start_event,
                r.stop_event,
                r.limit_hours,
                r.started_at.map(|t| t.as_second()),
                r.due_at.map(|t| t.as_second()),
                r.stopped_at.map(|t| t.as_second())
            ])
        })
        .map_err(backend)?;
    }
    Ok(())
}

pub(crate) fn clock_event(c: &Connection, case_id: &str, event: &str, at: Timestamp) -> Result<Vec<ClockRow>> {
    let mut changed: Vec<String> = Vec::new();
    let mut s = c
        .prepare_cached(
            "UPDATE response_clock SET started_at = ?3, due_at = ?3 + 3600 * limit_hours
             WHERE case_id = ?1 AND start_event = ?2 AND started_at IS NULL RETURNING item",
        )
        .map_err(backend)?;
    let started: Vec<String> = s
        .query_map(params![case_id, event, at.as_second()], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(backend)?;
    changed.extend(started);
    let mut s = c
        .prepare_cached(
            "UPDATE response_clock SET stopped_at = ?3
             WHERE case_id = ?1 AND stop_event = ?2 AND stopped_at IS NULL RETURNING item",
        )
        .map_err(backend)?;
    let stopped: Vec<String> = s
        .query_map(params![case_id, event, at.as_second()], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(backend)?;
    changed.extend(stopped);
    Ok(clock_of(c, case_id)?.into_iter().filter(|r| changed.contains(&r.item)).collect())
}

pub(crate) fn open_cases_of(c: &Connection, person_ids: &[&str]) -> Result<Vec<Case>> {
    let mut s = c
        .prepare_cached(&format!("{CASE_SELECT} WHERE p.id = ?1 AND k.classification <> 'excluded' ORDER BY k.id"))
        .map_err(backend)?;
    let mut out = Vec::new();
    for id in person_ids {
        let rows: Vec<Case> = s.query_map([id], case_row).and_then(|rows| rows.collect()).map_err(backend)?;
        out.extend(rows);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}

pub(crate) fn pool_members(c: &Connection, pool_ids: &[&str]) -> Result<Vec<LabTest>> {
    let mut s = c.prepare_cached(&format!("{LAB_TEST_SELECT} WHERE t.pool_id = ?1 ORDER BY t.id")).map_err(backend)?;
    let mut pools: Vec<&str> = pool_ids.to_vec();
    pools.sort();
    pools.dedup();
    let mut out = Vec::new();
    for id in pools {
        let rows: Vec<LabTest> = s.query_map([id], lab_test_row).and_then(|rows| rows.collect()).map_err(backend)?;
        out.extend(rows);
    }
    Ok(out)
}

fn date(r: &Row, i: usize) -> rusqlite::Result<Date> {
    let s: String = r.get(i)?;
    s.parse().map_err(|e: jiff::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn sentinel_records(c: &Connection, scope: &Scope, from: Date, to: Date) -> Result<Vec<SentinelRecord>> {
    let sql = format!(
        "{SCOPE_CTE} SELECT l.id, coalesce(ra.id, pa.id), s.feed, s.date, s.category, s.count, s.positives
         FROM sentinel s JOIN places l ON l.key = s.place LEFT JOIN areas ra ON ra.key = s.area
           LEFT JOIN areas pa ON pa.key = l.area
         WHERE s.date >= :from AND s.date <= :to
           AND (:area IS NULL OR coalesce(s.area, l.area) IN sub)
         ORDER BY l.id, s.feed, s.category, s.date"
    );
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let ps: &[(&str, &dyn rusqlite::ToSql)] =
        &[(":area", &area_param(c, scope)?), (":from", &from.to_string()), (":to", &to.to_string())];
    stmt.query_map(ps, |r| {
        let category: String = r.get(4)?;
        Ok(SentinelRecord {
            place_id: r.get(0)?,
            area_id: r.get(1)?,
            feed: vocab(r, 2, SentinelFeed::parse)?,
            date: date(r, 3)?,
            category: (!category.is_empty()).then_some(category),
            count: r.get(5)?,
            positives: r.get(6)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

pub(crate) fn sentinel_last_reports(c: &Connection, scope: &Scope) -> Result<Vec<SentinelLast>> {
    let sql = format!(
        "{SCOPE_CTE} SELECT l.id, s.feed, coalesce(ra.id, pa.id), max(s.date)
         FROM sentinel s JOIN places l ON l.key = s.place LEFT JOIN areas ra ON ra.key = s.area
           LEFT JOIN areas pa ON pa.key = l.area
         WHERE (:area IS NULL OR coalesce(s.area, l.area) IN sub)
         GROUP BY l.id, s.feed ORDER BY l.id, s.feed"
    );
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let ps: &[(&str, &dyn rusqlite::ToSql)] = &[(":area", &area_param(c, scope)?)];
    stmt.query_map(ps, |r| {
        Ok(SentinelLast { place_id: r.get(0)?, feed: r.get(1)?, area_id: r.get(2)?, last_date: r.get(3)? })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}
