//! Measure episodes (their events and current state) and quarantine facilities.

use chainbreak_core::model::EpisodeState;
use chainbreak_store::{EpisodeEvent, EpisodeFilter, EpisodeRow, FacilityRow, Result, RoomRow, Scope, StoreError};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::backend;
use crate::read::{opt_ts, ts, vocab};
use crate::scope::{SCOPE_CTE, area_param, person_inside};

const EVENT_BATCH: usize = 16 * 1024;

fn event_row(r: &Row) -> rusqlite::Result<EpisodeEvent> {
    Ok(EpisodeEvent { seq: r.get(0)?, episode_id: r.get(1)?, at: ts(r.get(2)?)?, actor: r.get(3)?, action: r.get(4)? })
}

pub(crate) fn scan_events(c: &Connection, after: i64, f: &mut dyn FnMut(&[EpisodeEvent])) -> Result<i64> {
    let tx = c.unchecked_transaction().map_err(backend)?;
    let mut s = tx
        .prepare("SELECT seq, episode, at, actor, action FROM episode_events WHERE seq > ?1 ORDER BY seq")
        .map_err(backend)?;
    let mut rows = s.query([after]).map_err(backend)?;
    let (mut buf, mut last) = (Vec::with_capacity(EVENT_BATCH), after);
    while let Some(r) = rows.next().map_err(backend)? {
        let e = event_row(r).map_err(backend)?;
        last = e.seq;
        buf.push(e);
        if buf.len() == EVENT_BATCH {
            f(&buf);
            buf.clear();
        }
    }
    if !buf.is_empty() {
        f(&buf);
    }
    Ok(last)
}

pub(crate) fn events_of(c: &Connection, episode: &str) -> Result<Vec<EpisodeEvent>> {
    let mut s = c
        .prepare_cached("SELECT seq, episode, at, actor, action FROM episode_events WHERE episode = ?1 ORDER BY seq")
        .map_err(backend)?;
    s.query_map([episode], event_row).and_then(|rows| rows.collect()).map_err(backend)
}

const EPISODE_SELECT: &str = "SELECT e.id, p.id, e.category, e.state, e.owner_unit, e.deadline, e.facility, e.room,
       e.opened_at, e.updated_at, e.events
     FROM episodes e JOIN persons p ON p.key = e.person";

fn episode_row(r: &Row) -> rusqlite::Result<EpisodeRow> {
    Ok(EpisodeRow {
        id: r.get(0)?,
        person_id: r.get(1)?,
        category: r.get(2)?,
        state: vocab(r, 3, EpisodeState::parse)?,
        owner_unit: r.get(4)?,
        deadline: opt_ts(r.get(5)?)?,
        facility_id: r.get(6)?,
        room_id: r.get(7)?,
        opened_at: ts(r.get(8)?)?,
        updated_at: ts(r.get(9)?)?,
        events: r.get(10)?,
    })
}

pub(crate) fn page(
    c: &Connection,
    scope: &Scope,
    filter: &EpisodeFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<EpisodeRow>> {
    let mut conditions = vec!["e.id > :after".to_string(), format!("(:area IS NULL OR {})", person_inside("e.person"))];
    let mut params: Vec<(&str, Value)> = vec![
        (":area", area_param(c, scope)?),
        (":after", Value::Text(after.unwrap_or("").to_string())),
        (":limit", Value::Integer(limit as i64)),
    ];
    if let Some(state) = filter.state {
        conditions.push("e.state = :state".into());
        params.push((":state", Value::Text(state.as_str().into())));
    }
    if let Some(owner) = &filter.owner_unit {
        conditions.push("e.owner_unit = :owner".into());
        params.push((":owner", Value::Text(owner.clone())));
    }
    if let Some(facility) = &filter.facility_id {
        conditions.push("e.facility = :facility".into());
        params.push((":facility", Value::Text(facility.clone())));
    }
    if let Some(person) = &filter.person_id {
        conditions.push("p.id = :person".into());
        params.push((":person", Value::Text(person.clone())));
    }
    if let Some(before) = filter.due_before {
        conditions.push("e.deadline < :due".into());
        params.push((":due", Value::Integer(before.as_second())));
    }
    let sql = format!("{SCOPE_CTE} {EPISODE_SELECT} WHERE {} ORDER BY e.id LIMIT :limit", conditions.join(" AND "));
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let params: Vec<(&str, &dyn rusqlite::ToSql)> =
        params.iter().map(|(name, value)| (*name, value as &dyn rusqlite::ToSql)).collect();
    stmt.query_map(params.as_slice(), episode_row).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn by_id(c: &Connection, id: &str) -> Result<Option<EpisodeRow>> {
    c.prepare_cached(&format!("{EPISODE_SELECT} WHERE e.id = ?1"))
        .and_then(|mut s| s.query_row([id], episode_row).optional())
        .map_err(backend)
}

/// Appends the events and upserts the rows; returns the episodes' keys.
pub(crate) fn append(c: &Connection, events: &[EpisodeEvent], rows: &[EpisodeRow]) -> Result<Vec<i64>> {
    // Checked against a set: a batch of a million isolations must not compare every event with
    // every row.
    let ids: std::collections::HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    for (i, e) in events.iter().enumerate() {
        if !ids.contains(e.episode_id.as_str()) {
            return Err(StoreError::Invalid {
                index: i,
                field: "episode_id",
                message: format!("episode `{}` has events but no row", e.episode_id),
            });
        }
        c.prepare_cached("INSERT INTO episode_events(episode, at, actor, action) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![e.episode_id, e.at.as_second(), e.actor, e.action]))
            .map_err(backend)?;
    }
    let mut keys = Vec::with_capacity(rows.len());
    let mut deltas = crate::tally::Deltas::default();
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
        let old: Option<(String, String, Option<i64>)> = c
            .prepare_cached("SELECT state, owner_unit, tally_area FROM episodes WHERE id = ?1")
            .and_then(|mut s| s.query_row([&r.id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).optional())
            .map_err(backend)?;
        if let Some((state, owner, area)) = old {
            deltas.add(c, area, crate::tally::EPISODES, &crate::tally::episode_key(&state, &owner), -1)?;
        }
        let area = crate::tally::residence_area(c, person)?;
        deltas.add(c, area, crate::tally::EPISODES, &crate::tally::episode_key(r.state.as_str(), &r.owner_unit), 1)?;
        let key: i64 = c
            .prepare_cached(
                "INSERT INTO episodes(id, person, category, state, owner_unit, deadline, facility, room, opened_at,
                   updated_at, events, tally_area) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT(id) DO UPDATE SET person = excluded.person, category = excluded.category,
                   state = excluded.state, owner_unit = excluded.owner_unit, deadline = excluded.deadline,
                   facility = excluded.facility, room = excluded.room, updated_at = excluded.updated_at,
                   events = excluded.events, tally_area = excluded.tally_area
                 RETURNING key",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        r.id,
                        person,
                        r.category,
                        r.state.as_str(),
                        r.owner_unit,
                        r.deadline.map(|t| t.as_second()),
                        r.facility_id,
                        r.room_id,
                        r.opened_at.as_second(),
                        r.updated_at.as_second(),
                        r.events,
                        area,
                    ],
                    |row| row.get(0),
                )
            })
            .map_err(backend)?;
        keys.push(key);
    }
    deltas.flush(c)?;
    Ok(keys)
}

pub(crate) fn facilities(c: &Connection) -> Result<Vec<FacilityRow>> {
    let mut s = c
        .prepare_cached(
            "SELECT f.id, f.name, a.id, r.id, r.capacity, r.state FROM facilities f LEFT JOIN areas a ON a.key = f.area
             LEFT JOIN rooms r ON r.facility = f.key ORDER BY f.id, r.id",
        )
        .map_err(backend)?;
    let mut rows = s.query([]).map_err(backend)?;
    let mut out: Vec<FacilityRow> = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let id: String = r.get(0).map_err(backend)?;
        if out.last().is_none_or(|f| f.id != id) {
            out.push(FacilityRow {
                id,
                name: r.get(1).map_err(backend)?,
                area: r.get(2).map_err(backend)?,
                rooms: vec![],
            });
        }
        if let Some(room) = r.get::<_, Option<String>>(3).map_err(backend)? {
            let f = out.last_mut().expect("pushed above");
            f.rooms.push(RoomRow { id: room, capacity: r.get(4).map_err(backend)?, state: r.get(5).map_err(backend)? });
        }
    }
    Ok(out)
}

const ROOM_STATES: [&str; 3] = ["clean", "occupied", "to_disinfect"];

pub(crate) fn put_facilities(c: &Connection, rows: &[FacilityRow]) -> Result<Vec<i64>> {
    let mut keys = Vec::new();
    for (i, f) in rows.iter().enumerate() {
        let area: Option<i64> = match &f.area {
            None => None,
            Some(a) => Some(
                c.prepare_cached("SELECT key FROM areas WHERE id = ?1")
                    .and_then(|mut s| s.query_row([a], |r| r.get(0)).optional())
                    .map_err(backend)?
                    .ok_or_else(|| StoreError::UnknownReference {
                        index: i,
                        field: "area",
                        entity: "area",
                        value: a.clone(),
                    })?,
            ),
        };
        let key: i64 = c
            .prepare_cached(
                "INSERT INTO facilities(id, name, area) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, area = excluded.area RETURNING key",
            )
            .and_then(|mut s| s.query_row(params![f.id, f.name, area], |r| r.get(0)))
            .map_err(backend)?;
        for room in &f.rooms {
            if room.capacity == 0 || !ROOM_STATES.contains(&room.state.as_str()) {
                return Err(StoreError::Invalid {
                    index: i,
                    field: "rooms",
                    message: format!("room `{}`: capacity at least 1, state one of {ROOM_STATES:?}", room.id),
                });
            }
            c.prepare_cached(
                "INSERT INTO rooms(facility, id, capacity, state) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(facility, id) DO UPDATE SET capacity = excluded.capacity, state = excluded.state",
            )
            .and_then(|mut s| s.execute(params![key, room.id, room.capacity, room.state]))
            .map_err(backend)?;
        }
        keys.push(key);
    }
    Ok(keys)
}

pub(crate) fn set_room_state(c: &Connection, facility: &str, room: &str, state: &str) -> Result<i64> {
    if !ROOM_STATES.contains(&state) {
        return Err(StoreError::Invalid {
            index: 0,
            field: "state",
            message: format!("`{state}` is not one of {ROOM_STATES:?}"),
        });
    }
    let key: Option<i64> = c
        .prepare_cached(
            "UPDATE rooms SET state = ?3 WHERE facility = (SELECT key FROM facilities WHERE id = ?1) AND id = ?2
             RETURNING facility",
        )
        .and_then(|mut s| s.query_row(params![facility, room, state], |r| r.get(0)).optional())
        .map_err(backend)?;
    key.ok_or_else(|| StoreError::NotFound(format!("room `{room}` of facility `{facility}`")))
}

pub(crate) fn units(c: &Connection) -> Result<Vec<chainbreak_core::model::Unit>> {
    let mut s = c
        .prepare_cached(
            "SELECT u.id, u.name, p.id, a.id FROM units u LEFT JOIN units p ON p.key = u.parent
             LEFT JOIN areas a ON a.key = u.area ORDER BY u.id",
        )
        .map_err(backend)?;
    s.query_map([], |r| {
        Ok(chainbreak_core::model::Unit { id: r.get(0)?, name: r.get(1)?, parent: r.get(2)?, area: r.get(3)? })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

pub(crate) fn households_of(c: &Connection, person_ids: &[&str]) -> Result<Vec<Option<String>>> {
    let mut s = c
        .prepare_cached(
            "SELECT min(g.id) FROM persons p JOIN memberships m ON m.person = p.key
             JOIN groups g ON g.key = m.grp AND g.kind = 'household' WHERE p.id = ?1",
        )
        .map_err(backend)?;
    person_ids.iter().map(|id| s.query_row([id], |r| r.get(0)).map_err(backend)).collect()
}

/// The places a person is on the staff of (their units), by place id.
pub(crate) fn units_of(c: &Connection, person_id: &str) -> Result<Vec<chainbreak_core::model::StaffMember>> {
    staff_rows(c, "p.id = ?1 ORDER BY l.id", person_id)
}

/// The staff of a place, by person id.
pub(crate) fn staff_of(c: &Connection, place_id: &str) -> Result<Vec<chainbreak_core::model::StaffMember>> {
    staff_rows(c, "l.id = ?1 ORDER BY p.id", place_id)
}

/// Staff rows with ids, filtered and ordered by `filter` (a constant of the callers above).
fn staff_rows(c: &Connection, filter: &str, id: &str) -> Result<Vec<chainbreak_core::model::StaffMember>> {
    let sql = format!(
        "SELECT l.id, p.id, s.role FROM staff s JOIN places l ON l.key = s.place JOIN persons p ON p.key = s.person
         WHERE {filter}"
    );
    let mut s = c.prepare_cached(&sql).map_err(backend)?;
    s.query_map([id], |r| {
        Ok(chainbreak_core::model::StaffMember { place_id: r.get(0)?, person_id: r.get(1)?, role: r.get(2)? })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}
