//! Writes: one SQLite transaction per batch, one savepoint per `put_*` call.

use chainbreak_core::access::{AuditRecord, TokenInfo, User};
use chainbreak_core::model::*;
use chainbreak_store::{Batch, ChangeOp, Entity, Key, KeyedVisit, Result, StoreError};
use jiff::Timestamp;
use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::{VISIT_INDEXES, backend, tally};

/// Rows per multi-row visit insert (5 parameters each, under SQLite's 32,766 limit).
const VISIT_CHUNK: usize = 256;

/// A batch in progress; dropping it without `commit` rolls everything back.
pub struct SqliteBatch<'a> {
    tx: Transaction<'a>,
    at: Timestamp,
    /// Visit row ids written by this batch, logged as one change at commit.
    visit_rows: Option<(i64, i64)>,
    ping_rows: Option<(i64, i64)>,
    /// Indexes dropped for a bulk load, rebuilt at commit.
    dropped_indexes: bool,
}

impl<'a> SqliteBatch<'a> {
    pub(crate) fn new(conn: &'a mut Connection, at: Timestamp) -> Result<Self> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
        Ok(SqliteBatch { tx, at, visit_rows: None, ping_rows: None, dropped_indexes: false })
    }

    /// Runs `f` under a savepoint: on error nothing of it stays.
    fn atomically<T>(&mut self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let sp = self.tx.savepoint().map_err(backend)?;
        let out = f(&sp)?;
        sp.commit().map_err(backend)?;
        Ok(out)
    }
}

/// Whether making `parent` the parent of `me` would close a loop: walks up from `parent`.
fn would_cycle(c: &Connection, table: &str, column: &str, me: i64, parent: i64) -> Result<bool> {
    let sql = format!("SELECT {column} FROM {table} WHERE key = ?1");
    let mut cur = Some(parent);
    let mut steps = 0;
    while let Some(k) = cur {
        if k == me || steps > 100_000 {
            return Ok(true);
        }
        cur = c.prepare_cached(&sql).and_then(|mut s| s.query_row([k], |r| r.get(0))).map_err(backend)?;
        steps += 1;
    }
    Ok(false)
}

/// The deployment's area levels, top first.
fn area_levels(c: &Connection) -> Result<Vec<String>> {
    let text: String =
        c.query_row("SELECT value FROM meta WHERE key = 'area_levels'", [], |r| r.get(0)).map_err(backend)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Backend(format!("meta.area_levels: {e}")))
}

fn log(conn: &Connection, entity: Entity, op: ChangeOp, from: i64, to: i64) -> Result<u64> {
    let op = match op {
        ChangeOp::Upsert => "upsert",
        ChangeOp::Delete => "delete",
        ChangeOp::Merge => "merge",
        ChangeOp::Unmerge => "unmerge",
    };
    conn.prepare_cached("INSERT INTO changes(entity, op, key_from, key_to) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut s| s.execute(params![entity.as_str(), op, from, to]))
        .map_err(backend)?;
    Ok(conn.last_insert_rowid() as u64)
}

pub(crate) fn key_of(conn: &Connection, table: &str, id: &str) -> Result<Option<i64>> {
    conn.prepare_cached(&format!("SELECT key FROM {table} WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(backend)
}

/// Resolves a required reference, or names what is missing.
fn need(
    conn: &Connection,
    index: usize,
    field: &'static str,
    entity: &'static str,
    table: &str,
    id: &str,
) -> Result<i64> {
    key_of(conn, table, id)?.ok_or_else(|| StoreError::UnknownReference { index, field, entity, value: id.to_string() })
}

/// Resolves an optional reference.
fn maybe(
    conn: &Connection,
    index: usize,
    field: &'static str,
    entity: &'static str,
    table: &str,
    id: Option<&String>,
) -> Result<Option<i64>> {
    id.map(|id| need(conn, index, field, entity, table, id)).transpose()
}

fn upsert_returning_key(conn: &Connection, sql: &str, p: &[&dyn ToSql]) -> Result<i64> {
    conn.prepare_cached(sql).and_then(|mut s| s.query_row(p, |r| r.get(0))).map_err(backend)
}

fn exec(conn: &Connection, sql: &str, p: &[&dyn ToSql]) -> Result<usize> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute(p)).map_err(backend)
}

fn secs(t: &Timestamp) -> i64 {
    t.as_second()
}

fn opt_secs(t: &Option<Timestamp>) -> Option<i64> {
    t.as_ref().map(secs)
}

fn date_text(d: &Option<jiff::civil::Date>) -> Option<String> {
    d.map(|d| d.to_string())
}

impl Batch for SqliteBatch<'_> {
    fn person_keys(&self) -> Result<Vec<(String, Key)>> {
        crate::read::keys(&self.tx, "SELECT id, key FROM persons")
    }

    fn place_keys(&self) -> Result<Vec<(String, Key)>> {
        crate::read::keys(&self.tx, "SELECT id, key FROM places")
    }

    fn lookup_persons(&self, ids: &[&str]) -> Result<Vec<Option<Key>>> {
        ids.iter().map(|id| Ok(key_of(&self.tx, "persons", id)?.map(|k| k as Key))).collect()
    }

    fn lookup_places(&self, ids: &[&str]) -> Result<Vec<Option<Key>>> {
        ids.iter().map(|id| Ok(key_of(&self.tx, "places", id)?.map(|k| k as Key))).collect()
    }

    fn put_areas(&mut self, rows: &[Area]) -> Result<()> {
        self.atomically(|c| {
            let levels = area_levels(c)?;
            let rank = |level: &str| levels.iter().position(|l| l == level);
            // Parents may come later in the same call: insert every row first, then link.
            for (i, a) in rows.iter().enumerate() {
                if rank(&a.level).is_none() {
                    return Err(StoreError::Invalid {
                        index: i,
                        field: "level",
                        message: format!(
                            "unknown area level `{}`; the deployment's levels are {}",
                            a.level,
                            levels.join(", ")
                        ),
                    });
                }
                let geometry = a.geometry.as_ref().map(|g| g.to_string());
                let key = upsert_returning_key(
                    c,
                    "INSERT INTO areas(id, name, level, geometry) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(id) DO UPDATE SET name = excluded.name, level = excluded.level,
                       geometry = excluded.geometry RETURNING key",
                    &[&a.id, &a.name, &a.level, &geometry],
                )?;
                log(c, Entity::Area, ChangeOp::Upsert, key, key)?;
                // A changed level must stay above the area's existing children.
                let children: Vec<(String, String)> = c
                    .prepare_cached("SELECT id, level FROM areas WHERE parent = ?1")
                    .and_then(|mut st| st.query_map([key], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                    .map_err(backend)?;
                if let Some((child, child_level)) = children.iter().find(|(_, l)| rank(l) <= rank(&a.level)) {
                    return Err(StoreError::Invalid {
                        index: i,
                        field: "level",
                        message: format!(
                            "area `{}` cannot become a {} while `{child}` ({child_level}) lies in it",
                            a.id, a.level
                        ),
                    });
                }
            }
            // A parent is always of a higher level than its child, so the hierarchy has no cycle.
            let mut reparented = false;
            for (i, a) in rows.iter().enumerate() {
                let parent = maybe(c, i, "parent", "area", "areas", a.parent.as_ref())?;
                if let Some(p) = parent {
                    let parent_level: String = c
                        .prepare_cached("SELECT level FROM areas WHERE key = ?1")
                        .and_then(|mut s| s.query_row([p], |r| r.get(0)))
                        .map_err(backend)?;
                    if rank(&parent_level) >= rank(&a.level) {
                        return Err(StoreError::Invalid {
                            index: i,
                            field: "parent",
                            message: format!(
                                "area `{}` ({}) cannot lie in `{}` ({}): a parent is of a higher level",
                                a.id,
                                a.level,
                                a.parent.as_deref().unwrap_or_default(),
                                parent_level
                            ),
                        });
                    }
                }
                // Counts kept under an area's ancestors follow a move of a counted area: recount.
                let moved =
                    exec(c, "UPDATE areas SET parent = ?2 WHERE id = ?1 AND parent IS NOT ?2", &[&a.id, &parent])?;
                if moved > 0
                    && c.prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM tallies WHERE area = (SELECT key FROM areas WHERE id = ?1))",
                    )
                    .and_then(|mut s| s.query_row([&a.id], |r| r.get::<_, bool>(0)))
                    .map_err(backend)?
                {
                    reparented = true;
                }
            }
            if reparented {
                tally::rebuild(c)?;
            }
            Ok(())
        })
    }

    fn put_units(&mut self, rows: &[Unit]) -> Result<()> {
        self.atomically(|c| {
            for u in rows {
                let key = upsert_returning_key(
                    c,
                    "INSERT INTO units(id, name) VALUES (?1, ?2)
                     ON CONFLICT(id) DO UPDATE SET name = excluded.name RETURNING key",
                    &[&u.id, &u.name],
                )?;
                log(c, Entity::Unit, ChangeOp::Upsert, key, key)?;
            }
            for (i, u) in rows.iter().enumerate() {
                let parent = maybe(c, i, "parent", "unit", "units", u.parent.as_ref())?;
                let me = key_of(c, "units", &u.id)?.expect("inserted above");
                if let Some(p) = parent
                    && would_cycle(c, "units", "parent", me, p)?
                {
                    return Err(StoreError::Invalid {
                        index: i,
                        field: "parent",
                        message: format!("unit `{}` would be above itself", u.id),
                    });
                }
                let area = maybe(c, i, "area", "area", "areas", u.area.as_ref())?;
                exec(c, "UPDATE units SET parent = ?2, area = ?3 WHERE id = ?1", &[&u.id, &parent, &area])?;
            }
            Ok(())
        })
    }

    fn put_places(&mut self, rows: &[Place]) -> Result<()> {
        self.atomically(|c| {
            for (i, p) in rows.iter().enumerate() {
                let area = maybe(c, i, "area", "area", "areas", p.area.as_ref())?;
                let key = upsert_returning_key(
                    c,
                    "INSERT INTO places(id, name, kind, key_place, lat, lon, area) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                       key_place = excluded.key_place, lat = excluded.lat, lon = excluded.lon, area = excluded.area
                     RETURNING key",
                    &[&p.id, &p.name, &p.kind.as_str(), &p.key_place, &p.lat, &p.lon, &area],
                )?;
                log(c, Entity::Place, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn put_persons(&mut self, rows: &[Person]) -> Result<()> {
        self.atomically(|c| {
            for (i, p) in rows.iter().enumerate() {
                let residence = maybe(c, i, "residence", "place", "places", p.residence.as_ref())?;
                let key = upsert_returning_key(
                    c,
                    "INSERT INTO persons(id, residence, birth_year, sex, occupation) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(id) DO UPDATE SET residence = excluded.residence, birth_year = excluded.birth_year,
                       sex = excluded.sex, occupation = excluded.occupation
                     RETURNING key",
                    &[&p.id, &residence, &p.birth_year, &p.sex.map(Sex::as_str), &p.occupation],
                )?;
                log(c, Entity::Person, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn put_identifiers(&mut self, rows: &[Identifier]) -> Result<()> {
        self.atomically(|c| {
            for (i, r) in rows.iter().enumerate() {
                let person = need(c, i, "person_id", "person", "persons", &r.person_id)?;
                exec(
                    c,
                    "INSERT OR IGNORE INTO person_identifiers(person, kind, value) VALUES (?1, ?2, ?3)",
                    &[&person, &r.kind.as_str(), &r.value],
                )?;
                log(c, Entity::Identifier, ChangeOp::Upsert, person, person)?;
            }
            Ok(())
        })
    }

    fn put_staff(&mut self, rows: &[StaffMember]) -> Result<()> {
        self.atomically(|c| {
            for (i, r) in rows.iter().enumerate() {
                let place = need(c, i, "place_id", "place", "places", &r.place_id)?;
                let person = need(c, i, "person_id", "person", "persons", &r.person_id)?;
                exec(
                    c,
                    "INSERT INTO staff(place, person, role) VALUES (?1, ?2, ?3)
                     ON CONFLICT(place, person) DO UPDATE SET role = excluded.role",
                    &[&place, &person, &r.role],
                )?;
                log(c, Entity::Staff, ChangeOp::Upsert, place, person)?;
            }
            Ok(())
        })
    }

    fn put_groups(&mut self, rows: &[Group]) -> Result<()> {
        self.atomically(|c| {
            for (i, g) in rows.iter().enumerate() {
                let place = maybe(c, i, "place_id", "place", "places", g.place_id.as_ref())?;
                if let (Some(s), Some(e)) = (g.start, g.end)
                    && e < s
                {
                    return Err(StoreError::Invalid { index: i, field: "end", message: "end is before start".into() });
                }
                let key = upsert_returning_key(
                    c,
                    "INSERT INTO groups(id, kind, name, place, t_start, t_end) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, name = excluded.name, place = excluded.place,
                       t_start = excluded.t_start, t_end = excluded.t_end
                     RETURNING key",
                    &[&g.id, &g.kind.as_str(), &g.name, &place, &opt_secs(&g.start), &opt_secs(&g.end)],
                )?;
                log(c, Entity::Group, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn put_memberships(&mut self, rows: &[Membership]) -> Result<()> {
        self.atomically(|c| {
            for (i, m) in rows.iter().enumerate() {
                let grp = need(c, i, "group_id", "group", "groups", &m.group_id)?;
                let person = need(c, i, "person_id", "person", "persons", &m.person_id)?;
                exec(
                    c,
                    "INSERT INTO memberships(grp, person, role) VALUES (?1, ?2, ?3)
                     ON CONFLICT(grp, person) DO UPDATE SET role = excluded.role",
                    &[&grp, &person, &m.role],
                )?;
                log(c, Entity::Membership, ChangeOp::Upsert, grp, person)?;
            }
            Ok(())
        })
    }

    fn put_trips(&mut self, rows: &[Trip]) -> Result<()> {
        self.atomically(|c| {
            for (i, t) in rows.iter().enumerate() {
                if let Some(a) = t.arrival
                    && a < t.departure
                {
                    return Err(StoreError::Invalid {
                        index: i,
                        field: "arrival",
                        message: "arrival is before departure".into(),
                    });
                }
                let key = upsert_returning_key(
                    c,
                    "INSERT INTO trips(id, mode, number, departure, arrival, origin, destination, sealed)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT(id) DO UPDATE SET mode = excluded.mode, number = excluded.number,
                       departure = excluded.departure, arrival = excluded.arrival, origin = excluded.origin,
                       destination = excluded.destination, sealed = excluded.sealed
                     RETURNING key",
                    &[
                        &t.id,
                        &t.mode.as_str(),
                        &t.number,
                        &secs(&t.departure),
                        &opt_secs(&t.arrival),
                        &t.origin,
                        &t.destination,
                        &t.sealed,
                    ],
                )?;
                log(c, Entity::Trip, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn put_passengers(&mut self, rows: &[TripPassenger]) -> Result<()> {
        self.atomically(|c| {
            for (i, p) in rows.iter().enumerate() {
                let trip = need(c, i, "trip_id", "trip", "trips", &p.trip_id)?;
                let person = need(c, i, "person_id", "person", "persons", &p.person_id)?;
                exec(
                    c,
                    "INSERT INTO trip_passengers(trip, person, role, carriage, seat_row, seat) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(trip, person) DO UPDATE SET role = excluded.role, carriage = excluded.carriage,
                       seat_row = excluded.seat_row, seat = excluded.seat",
                    &[&trip, &person, &p.role.as_str(), &p.carriage, &p.seat_row, &p.seat],
                )?;
                log(c, Entity::Passenger, ChangeOp::Upsert, trip, person)?;
            }
            Ok(())
        })
    }

    fn put_pings(&mut self, rows: &[LocationPing]) -> Result<()> {
        let range = self.atomically(|c| {
            let mut range: Option<(i64, i64)> = None;
            for (i, p) in rows.iter().enumerate() {
                let person = need(c, i, "person_id", "person", "persons", &p.person_id)?;
                if !(-90.0..=90.0).contains(&p.lat) || !(-180.0..=180.0).contains(&p.lon) {
                    return Err(StoreError::Invalid {
                        index: i,
                        field: "lat",
                        message: format!("({}, {}) is not a WGS 84 coordinate", p.lat, p.lon),
                    });
                }
                exec(
                    c,
                    "INSERT INTO pings(person, t, lat, lon, accuracy_m) VALUES (?1, ?2, ?3, ?4, ?5)",
                    &[&person, &secs(&p.t), &p.lat, &p.lon, &p.accuracy_m],
                )?;
                let row = c.last_insert_rowid();
                range = Some(range.map_or((row, row), |(a, _)| (a, row)));
            }
            Ok(range)
        })?;
        extend(&mut self.ping_rows, range);
        Ok(())
    }

    fn put_cases(&mut self, rows: &[Case]) -> Result<()> {
        let at = self.at.as_second();
        self.atomically(|c| {
            let cal = tally::calendar(c)?;
            let mut deltas = tally::Deltas::default();
            for (i, k) in rows.iter().enumerate() {
                let person = need(c, i, "person_id", "person", "persons", &k.person_id)?;
                let old: Option<(tally::CaseFacts, Option<i64>)> = c
                    .prepare_cached(&format!("SELECT {}, tally_area FROM cases WHERE id = ?1", tally::CASE_FACTS))
                    .and_then(|mut s| s.query_row([&k.id], |r| Ok((tally::case_facts(r, 0)?, r.get(6)?))).optional())
                    .map_err(backend)?;
                if let Some((facts, area)) = &old {
                    deltas.add(c, *area, tally::CASES, &tally::case_key(&cal, facts)?, -1)?;
                }
                let before = old.map(|o| o.0.0);
                let area = tally::residence_area(c, person)?;
                let facts = (
                    k.classification.as_str().to_string(),
                    k.reported_at.as_second(),
                    date_text(&k.onset),
                    k.sampled_at.map(|t| t.as_second()),
                    k.detection.map(|d| d.as_str().to_string()),
                    k.imported,
                );
                let key = tally::case_key(&cal, &facts)?;
                deltas.add(c, area, tally::CASES, &key, 1)?;
                let key = upsert_returning_key(
                    c,
                    "INSERT INTO cases(id, person, classification, onset, sampled_at, reported_at, imported, detection,
                       severity, outcome, vaccine_doses, infector, cluster, tally_area)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                     ON CONFLICT(id) DO UPDATE SET person = excluded.person, classification = excluded.classification,
                       onset = excluded.onset, sampled_at = excluded.sampled_at, reported_at = excluded.reported_at,
                       imported = excluded.imported, detection = excluded.detection, severity = excluded.severity,
                       outcome = excluded.outcome, vaccine_doses = excluded.vaccine_doses, infector = excluded.infector,
                       cluster = excluded.cluster, tally_area = excluded.tally_area
                     RETURNING key",
                    &[
                        &k.id,
                        &person,
                        &k.classification.as_str(),
                        &date_text(&k.onset),
                        &opt_secs(&k.sampled_at),
                        &secs(&k.reported_at),
                        &k.imported,
                        &k.detection.map(DetectionRoute::as_str),
                        &k.severity.map(Severity::as_str),
                        &k.outcome.map(Outcome::as_str),
                        &k.vaccine_doses,
                        &k.infector_case_id,
                        &k.cluster,
                        &area,
                    ],
                )?;
                let seq = log(c, Entity::Case, ChangeOp::Upsert, key, key)?;
                if before.as_deref() != Some(k.classification.as_str()) {
                    exec(
                        c,
                        "INSERT INTO case_classifications(case_key, from_class, to_class, at, seq) VALUES (?1, ?2, ?3, ?4, ?5)",
                        &[&key, &before, &k.classification.as_str(), &at, &(seq as i64)],
                    )?;
                }
            }
            deltas.flush(c)
        })
    }

    fn put_lab_tests(&mut self, rows: &[LabTest]) -> Result<()> {
        self.atomically(|c| {
            for (i, t) in rows.iter().enumerate() {
                let person = match t.subject_kind {
                    SubjectKind::Person => Some(need(c, i, "subject_id", "person", "persons", &t.subject_id)?),
                    _ => None,
                };
                let lab = maybe(c, i, "lab_id", "place", "places", t.lab_id.as_ref())?;
                if let Some(r) = t.reported_at
                    && r < t.sampled_at
                {
                    return Err(StoreError::Invalid {
                        index: i,
                        field: "reported_at",
                        message: "reported_at is before sampled_at".into(),
                    });
                }
                let key = upsert_returning_key(
                    c,
                    "INSERT INTO lab_tests(id, subject_kind, subject_id, person, pool_id, method, result, ct, sampled_at,
                       reported_at, lab, variant)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT(id) DO UPDATE SET subject_kind = excluded.subject_kind, subject_id = excluded.subject_id,
                       person = excluded.person, pool_id = excluded.pool_id, method = excluded.method,
                       result = excluded.result, ct = excluded.ct, sampled_at = excluded.sampled_at,
                       reported_at = excluded.reported_at, lab = excluded.lab, variant = excluded.variant
                     RETURNING key",
                    &[
                        &t.id,
                        &t.subject_kind.as_str(),
                        &t.subject_id,
                        &person,
                        &t.pool_id,
                        &t.method.as_str(),
                        &t.result.as_str(),
                        &t.ct,
                        &secs(&t.sampled_at),
                        &opt_secs(&t.reported_at),
                        &lab,
                        &t.variant,
                    ],
                )?;
                log(c, Entity::LabTest, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn put_arrivals(&mut self, rows: &[Arrival]) -> Result<()> {
        self.atomically(|c| {
            for (i, a) in rows.iter().enumerate() {
                let person = need(c, i, "person_id", "person", "persons", &a.person_id)?;
                let trip = maybe(c, i, "trip_id", "trip", "trips", a.trip_id.as_ref())?;
                let dest = maybe(c, i, "destination", "place", "places", a.destination.as_ref())?;
                if a.arrived_at < a.left_origin_at {
                    return Err(StoreError::Invalid {
                        index: i,
                        field: "arrived_at",
                        message: "arrived_at is before left_origin_at".into(),
                    });
                }
                let key = upsert_returning_key(
                    c,
                    "INSERT INTO arrivals(person, origin, origin_risk, left_origin_at, arrived_at, trip, destination)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(person, arrived_at) DO UPDATE SET origin = excluded.origin,
                       origin_risk = excluded.origin_risk, left_origin_at = excluded.left_origin_at,
                       trip = excluded.trip, destination = excluded.destination
                     RETURNING key",
                    &[
                        &person,
                        &a.origin,
                        &a.origin_risk.as_str(),
                        &secs(&a.left_origin_at),
                        &secs(&a.arrived_at),
                        &trip,
                        &dest,
                    ],
                )?;
                log(c, Entity::Arrival, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn put_goods_batches(&mut self, rows: &[GoodsBatch]) -> Result<()> {
        self.atomically(|c| {
            for b in rows {
                let key = upsert_returning_key(
                    c,
                    "INSERT INTO goods_batches(id, product, origin_country, plant, port, entry_date, inspection_cert,
                       test_cert, disinfection_cert, trace_code)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT(id) DO UPDATE SET product = excluded.product, origin_country = excluded.origin_country,
                       plant = excluded.plant, port = excluded.port, entry_date = excluded.entry_date,
                       inspection_cert = excluded.inspection_cert, test_cert = excluded.test_cert,
                       disinfection_cert = excluded.disinfection_cert, trace_code = excluded.trace_code
                     RETURNING key",
                    &[
                        &b.id,
                        &b.product,
                        &b.origin_country,
                        &b.plant,
                        &b.port,
                        &date_text(&b.entry_date),
                        &b.inspection_cert,
                        &b.test_cert,
                        &b.disinfection_cert,
                        &b.trace_code,
                    ],
                )?;
                log(c, Entity::GoodsBatch, ChangeOp::Upsert, key, key)?;
            }
            for (i, b) in rows.iter().enumerate() {
                let parent =
                    maybe(c, i, "parent_batch_id", "goods batch", "goods_batches", b.parent_batch_id.as_ref())?;
                let me = key_of(c, "goods_batches", &b.id)?.expect("inserted above");
                if let Some(p) = parent
                    && would_cycle(c, "goods_batches", "parent", me, p)?
                {
                    return Err(StoreError::Invalid {
                        index: i,
                        field: "parent_batch_id",
                        message: format!("batch `{}` would be derived from itself", b.id),
                    });
                }
                exec(c, "UPDATE goods_batches SET parent = ?2 WHERE id = ?1", &[&b.id, &parent])?;
            }
            Ok(())
        })
    }

    fn put_goods_hops(&mut self, rows: &[GoodsHop]) -> Result<()> {
        self.atomically(|c| {
            for (i, h) in rows.iter().enumerate() {
                let batch = need(c, i, "batch_id", "goods batch", "goods_batches", &h.batch_id)?;
                let from = maybe(c, i, "from_place", "place", "places", h.from_place.as_ref())?;
                let to = maybe(c, i, "to_place", "place", "places", h.to_place.as_ref())?;
                let to_batch = maybe(c, i, "to_batch_id", "goods batch", "goods_batches", h.to_batch_id.as_ref())?;
                if h.kind == HopKind::Repack && to_batch.is_none() {
                    return Err(StoreError::Invalid {
                        index: i,
                        field: "to_batch_id",
                        message: "a repack names the derived batch in to_batch_id".into(),
                    });
                }
                if h.kind == HopKind::Transfer && to.is_none() {
                    return Err(StoreError::Invalid {
                        index: i,
                        field: "to_place",
                        message: "a transfer names the receiving place in to_place".into(),
                    });
                }
                exec(
                    c,
                    "INSERT INTO goods_hops(batch, kind, from_place, to_place, to_batch, date, quantity)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &[&batch, &h.kind.as_str(), &from, &to, &to_batch, &h.date.to_string(), &h.quantity],
                )?;
                let key = c.last_insert_rowid();
                log(c, Entity::GoodsHop, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn put_sentinel(&mut self, rows: &[SentinelRecord]) -> Result<()> {
        self.atomically(|c| {
            for (i, s) in rows.iter().enumerate() {
                let place = need(c, i, "place_id", "place", "places", &s.place_id)?;
                let area = maybe(c, i, "area_id", "area", "areas", s.area_id.as_ref())?;
                if let Some(p) = s.positives
                    && p > s.count
                {
                    return Err(StoreError::Invalid {
                        index: i,
                        field: "positives",
                        message: format!("positives ({p}) exceed count ({})", s.count),
                    });
                }
                exec(
                    c,
                    "INSERT INTO sentinel(place, feed, date, category, area, count, positives)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(place, feed, date, category) DO UPDATE SET area = excluded.area,
                       count = excluded.count, positives = excluded.positives",
                    &[
                        &place,
                        &s.feed.as_str(),
                        &s.date.to_string(),
                        &s.category.clone().unwrap_or_default(),
                        &area,
                        &s.count,
                        &s.positives,
                    ],
                )?;
                log(c, Entity::Sentinel, ChangeOp::Upsert, place, place)?;
            }
            Ok(())
        })
    }

    fn register_persons(&mut self, ids: &[&str]) -> Result<Vec<Key>> {
        self.atomically(|c| register(c, "persons", Entity::Person, ids, "INSERT INTO persons(id) VALUES (?1)"))
    }

    fn register_places(&mut self, ids: &[&str]) -> Result<Vec<Key>> {
        self.atomically(|c| {
            register(c, "places", Entity::Place, ids, "INSERT INTO places(id, kind) VALUES (?1, 'other')")
        })
    }

    fn expect_visits(&mut self, expected_rows: u64) -> Result<()> {
        let existing: i64 = self.tx.query_row("SELECT count(*) FROM visits", [], |r| r.get(0)).map_err(backend)?;
        // Rebuilding an index costs about as much as sorting every row once; keeping it
        // current costs a random B-tree insert per new row. Rebuild when the load is large.
        if !self.dropped_indexes && expected_rows >= 100_000 && expected_rows as i64 >= existing / 4 {
            for (name, _) in VISIT_INDEXES {
                self.tx.execute_batch(&format!("DROP INDEX IF EXISTS {name}")).map_err(backend)?;
            }
            self.dropped_indexes = true;
        }
        Ok(())
    }

    fn insert_visits(&mut self, rows: &[KeyedVisit]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let range = self.atomically(|c| {
            let mut chunks = rows.chunks_exact(VISIT_CHUNK);
            let mut many = c.prepare_cached(&multi_insert(VISIT_CHUNK)).map_err(backend)?;
            let mut first_row = None;
            let mut vals: Vec<(i64, i64, i64, Option<i64>, i64)> = Vec::with_capacity(VISIT_CHUNK);
            for chunk in &mut chunks {
                vals.clear();
                vals.extend(
                    chunk.iter().map(|v| (v.person as i64, v.place as i64, v.t_in, v.t_out, v.source.code() as i64)),
                );
                let mut p: Vec<&dyn ToSql> = Vec::with_capacity(VISIT_CHUNK * 5);
                for v in &vals {
                    p.extend_from_slice(&[&v.0, &v.1, &v.2, &v.3, &v.4]);
                }
                many.execute(p.as_slice()).map_err(backend)?;
                // A multi-row insert takes consecutive ids: the last is last_insert_rowid.
                first_row.get_or_insert(c.last_insert_rowid() - VISIT_CHUNK as i64 + 1);
            }
            let mut one = c.prepare_cached(&multi_insert(1)).map_err(backend)?;
            for v in chunks.remainder() {
                one.execute(params![v.person, v.place, v.t_in, v.t_out, v.source.code()]).map_err(backend)?;
                first_row.get_or_insert(c.last_insert_rowid());
            }
            Ok(first_row.map(|f| (f, c.last_insert_rowid())))
        })?;
        extend(&mut self.visit_rows, range);
        Ok(())
    }

    fn purge_before(&mut self, entity: Entity, before: Timestamp) -> Result<u64> {
        let (select, delete) = match entity {
            Entity::Visit => (
                "SELECT id FROM visits WHERE coalesce(t_out, t_in) < ?1 ORDER BY id",
                "DELETE FROM visits WHERE coalesce(t_out, t_in) < ?1",
            ),
            Entity::Ping => ("SELECT id FROM pings WHERE t < ?1 ORDER BY id", "DELETE FROM pings WHERE t < ?1"),
            other => return Err(StoreError::Backend(format!("`{other}` records are not purged by age"))),
        };
        let cutoff = before.as_second();
        self.atomically(|c| {
            // Runs of consecutive ids, streamed (a purge may cover tens of millions of rows,
            // usually in a few runs: rows arrive roughly in time order).
            let mut runs: Vec<(i64, i64)> = Vec::new();
            let mut stmt = c.prepare(select).map_err(backend)?;
            let mut rows = stmt.query([cutoff]).map_err(backend)?;
            while let Some(row) = rows.next().map_err(backend)? {
                let id: i64 = row.get(0).map_err(backend)?;
                match runs.last_mut() {
                    Some((_, last)) if *last + 1 == id => *last = id,
                    _ => runs.push((id, id)),
                }
            }
            drop(rows);
            drop(stmt);
            let deleted = c.execute(delete, [cutoff]).map_err(backend)?;
            for (from, to) in runs {
                log(c, entity, ChangeOp::Delete, from, to)?;
            }
            Ok(deleted as u64)
        })
    }

    fn merge_persons(
        &mut self,
        survivor: &str,
        duplicate: &str,
        reason: &str,
        actor: &str,
        at: Timestamp,
    ) -> Result<PersonMerge> {
        self.atomically(|c| {
            let s = need(c, 0, "survivor", "person", "persons", survivor)?;
            let d = need(c, 0, "duplicate", "person", "persons", duplicate)?;
            let invalid = |field: &'static str, message: String| StoreError::Invalid { index: 0, field, message };
            if s == d {
                return Err(invalid("survivor", format!("cannot merge `{survivor}` into itself")));
            }
            let merged_into = |k: i64| -> Result<Option<i64>> {
                c.prepare_cached("SELECT merged_into FROM persons WHERE key = ?1")
                    .and_then(|mut st| st.query_row([k], |r| r.get(0)))
                    .map_err(backend)
            };
            if merged_into(d)?.is_some() {
                return Err(invalid("duplicate", format!("`{duplicate}` is already merged into another person")));
            }
            if merged_into(s)?.is_some() {
                return Err(invalid(
                    "survivor",
                    format!("`{survivor}` is itself merged; merge into the person it was merged into"),
                ));
            }
            exec(c, "UPDATE persons SET merged_into = ?1 WHERE key = ?2", &[&s, &d])?;
            exec(
                c,
                "INSERT INTO person_merges(survivor, duplicate, reason, actor, merged_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                &[&s, &d, &reason, &actor, &at.as_second()],
            )?;
            let id = c.last_insert_rowid();
            log(c, Entity::Person, ChangeOp::Merge, d, s)?;
            Ok(PersonMerge {
                id,
                survivor: survivor.to_string(),
                duplicate: duplicate.to_string(),
                reason: reason.to_string(),
                actor: actor.to_string(),
                merged_at: Timestamp::from_second(at.as_second()).expect("in range"),
                unmerged_at: None,
            })
        })
    }

    fn unmerge_persons(&mut self, merge_id: i64, at: Timestamp) -> Result<PersonMerge> {
        self.atomically(|c| {
            let row = crate::read::merge_by_id(c, merge_id)?
                .ok_or_else(|| StoreError::NotFound(format!("merge {merge_id}")))?;
            if row.unmerged_at.is_some() {
                return Err(StoreError::Invalid {
                    index: 0,
                    field: "merge_id",
                    message: format!("merge {merge_id} was already undone"),
                });
            }
            let d = key_of(c, "persons", &row.duplicate)?.expect("merged persons exist");
            let s = key_of(c, "persons", &row.survivor)?.expect("merged persons exist");
            exec(c, "UPDATE persons SET merged_into = NULL WHERE key = ?1", &[&d])?;
            exec(c, "UPDATE person_merges SET unmerged_at = ?2 WHERE id = ?1", &[&merge_id, &at.as_second()])?;
            log(c, Entity::Person, ChangeOp::Unmerge, d, s)?;
            Ok(PersonMerge { unmerged_at: Some(Timestamp::from_second(at.as_second()).expect("in range")), ..row })
        })
    }

    fn add_user(&mut self, user: &User, password_hash: &str) -> Result<()> {
        self.atomically(|c| crate::access::add_user(c, user, password_hash))
    }

    fn set_user_disabled(&mut self, name: &str, disabled: bool) -> Result<()> {
        self.atomically(|c| crate::access::set_user_disabled(c, name, disabled))
    }

    fn set_password_hash(&mut self, name: &str, password_hash: &str) -> Result<()> {
        self.atomically(|c| crate::access::set_password_hash(c, name, password_hash))
    }

    fn add_token(
        &mut self,
        user: &str,
        token_hash: &[u8],
        label: &str,
        created_at: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<TokenInfo> {
        self.atomically(|c| crate::access::add_token(c, user, token_hash, label, created_at, expires_at))
    }

    fn revoke_token(&mut self, id: i64, at: Timestamp) -> Result<()> {
        self.atomically(|c| crate::access::revoke_token(c, id, at))
    }

    fn proposals_of(&self, index: &chainbreak_store::ProposalIndex) -> Result<Vec<chainbreak_store::Proposal>> {
        crate::proposals::of_index(&self.tx, index)
    }

    fn record_proposals(
        &mut self,
        record: &chainbreak_store::TraceRecord,
        rows: &[chainbreak_store::Proposal],
    ) -> Result<Vec<i64>> {
        self.atomically(|c| {
            let ids = crate::proposals::record(c, record, rows)?;
            for id in &ids {
                log(c, Entity::Proposal, ChangeOp::Upsert, *id, *id)?;
            }
            Ok(ids)
        })
    }

    fn decide_proposals(
        &mut self,
        ids: &[i64],
        decision: &chainbreak_store::Decision,
    ) -> Result<Vec<chainbreak_store::Proposal>> {
        self.atomically(|c| {
            let decided = crate::proposals::decide(c, ids, decision)?;
            for id in ids {
                log(c, Entity::Proposal, ChangeOp::Upsert, *id, *id)?;
            }
            Ok(decided)
        })
    }

    fn append_episode_events(
        &mut self,
        events: &[chainbreak_store::EpisodeEvent],
        rows: &[chainbreak_store::EpisodeRow],
    ) -> Result<()> {
        self.atomically(|c| {
            for key in crate::episodes::append(c, events, rows)? {
                log(c, Entity::Episode, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn append_zone_events(
        &mut self,
        events: &[chainbreak_store::ZoneEventRow],
        rows: &[chainbreak_store::ZoneRow],
    ) -> Result<()> {
        self.atomically(|c| {
            for key in crate::zones::append(c, events, rows)? {
                log(c, Entity::Zone, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn put_facilities(&mut self, rows: &[chainbreak_store::FacilityRow]) -> Result<()> {
        self.atomically(|c| {
            for key in crate::episodes::put_facilities(c, rows)? {
                log(c, Entity::Facility, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn set_room_state(&mut self, facility_id: &str, room_id: &str, state: &str) -> Result<()> {
        self.atomically(|c| {
            let key = crate::episodes::set_room_state(c, facility_id, room_id, state)?;
            log(c, Entity::Facility, ChangeOp::Upsert, key, key)?;
            Ok(())
        })
    }

    fn append_audit(&mut self, record: &AuditRecord) -> Result<i64> {
        self.atomically(|c| crate::access::append_audit(c, record))
    }

    fn open_cases_of(&self, person_ids: &[&str]) -> Result<Vec<Case>> {
        crate::surveillance::open_cases_of(&self.tx, person_ids)
    }

    fn pool_members(&self, pool_ids: &[&str]) -> Result<Vec<LabTest>> {
        crate::surveillance::pool_members(&self.tx, pool_ids)
    }

    fn raise_alerts(&mut self, rows: &[chainbreak_store::AlertRow], actor: &str) -> Result<Vec<Option<i64>>> {
        self.atomically(|c| {
            let ids = crate::surveillance::raise(c, rows, actor)?;
            for id in ids.iter().flatten() {
                log(c, Entity::Alert, ChangeOp::Upsert, *id, *id)?;
            }
            Ok(ids)
        })
    }

    fn transition_alert(&mut self, event: &chainbreak_store::AlertEvent) -> Result<chainbreak_store::AlertRow> {
        self.atomically(|c| {
            let row = crate::surveillance::transition(c, event)?;
            log(c, Entity::Alert, ChangeOp::Upsert, row.id, row.id)?;
            Ok(row)
        })
    }

    fn queue_review_items(&mut self, rows: &[chainbreak_store::ReviewItem]) -> Result<Vec<Option<i64>>> {
        self.atomically(|c| {
            let ids = crate::surveillance::queue(c, rows)?;
            for id in ids.iter().flatten() {
                log(c, Entity::ReviewItem, ChangeOp::Upsert, *id, *id)?;
            }
            Ok(ids)
        })
    }

    fn decide_review_item(
        &mut self,
        id: i64,
        decision: &chainbreak_store::ReviewDecision,
    ) -> Result<chainbreak_store::ReviewItem> {
        self.atomically(|c| {
            let item = crate::surveillance::decide(c, id, decision)?;
            log(c, Entity::ReviewItem, ChangeOp::Upsert, id, id)?;
            Ok(item)
        })
    }

    fn put_clock(&mut self, rows: &[chainbreak_store::ClockRow]) -> Result<()> {
        self.atomically(|c| crate::surveillance::put_clock(c, rows))
    }

    fn clock_event(&mut self, case_id: &str, event: &str, at: Timestamp) -> Result<Vec<chainbreak_store::ClockRow>> {
        self.atomically(|c| crate::surveillance::clock_event(c, case_id, event, at))
    }

    fn put_goods_response(&mut self, row: &chainbreak_store::GoodsResponseRow) -> Result<bool> {
        self.atomically(|c| match crate::goods::put_response(c, row)? {
            Some(key) => {
                log(c, Entity::GoodsResponse, ChangeOp::Upsert, key, key)?;
                Ok(true)
            }
            None => Ok(false),
        })
    }

    fn record_plant_positive(&mut self, positive: &chainbreak_store::PlantPositive) -> Result<bool> {
        self.atomically(|c| crate::goods::record_positive(c, positive))
    }

    fn plant_positives_of(&self, plant: &str) -> Result<Vec<chainbreak_store::PlantPositive>> {
        crate::goods::positives_of(&self.tx, plant)
    }

    fn suspensions_of(&self, plant: &str) -> Result<Vec<chainbreak_store::SuspensionRow>> {
        crate::goods::suspensions(&self.tx, Some(plant))
    }

    fn put_suspensions(&mut self, rows: &[chainbreak_store::SuspensionRow]) -> Result<()> {
        self.atomically(|c| {
            for key in crate::goods::put_suspensions(c, rows)? {
                log(c, Entity::Suspension, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn request_events_of(&self, request_id: &str) -> Result<Vec<chainbreak_store::RequestEventRow>> {
        crate::goods::events_of(&self.tx, request_id)
    }

    fn append_request_events(
        &mut self,
        events: &[chainbreak_store::RequestEventRow],
        rows: &[chainbreak_store::RequestRow],
    ) -> Result<()> {
        self.atomically(|c| {
            for key in crate::goods::append(c, events, rows)? {
                log(c, Entity::ServiceRequest, ChangeOp::Upsert, key, key)?;
            }
            Ok(())
        })
    }

    fn commit(self: Box<Self>) -> Result<u64> {
        if self.dropped_indexes {
            tracing::debug!(rows = ?self.visit_rows, "visits written; rebuilding indexes");
            // SQLite's sorter sizes its in-memory runs from the page cache: small runs merged
            // are measured 2-4x faster here than one large in-memory sort (bench/README.md).
            self.tx.execute_batch("PRAGMA cache_size = -8192; PRAGMA threads = 2;").map_err(backend)?;
            let rebuilt = VISIT_INDEXES.iter().try_for_each(|(name, sql)| {
                let started = std::time::Instant::now();
                self.tx.execute_batch(sql).map_err(backend)?;
                tracing::debug!(index = name, seconds = started.elapsed().as_secs_f64(), "visit index rebuilt");
                Ok(())
            });
            // Connection settings, not part of the transaction: put them back whatever happened.
            self.tx.execute_batch(crate::CONNECTION_CACHE).map_err(backend)?;
            rebuilt?;
        }
        if let Some((a, b)) = self.visit_rows {
            log(&self.tx, Entity::Visit, ChangeOp::Upsert, a, b)?;
        }
        if let Some((a, b)) = self.ping_rows {
            log(&self.tx, Entity::Ping, ChangeOp::Upsert, a, b)?;
        }
        let seq: u64 =
            self.tx.query_row("SELECT coalesce(max(seq), 0) FROM changes", [], |r| r.get(0)).map_err(backend)?;
        let SqliteBatch { tx, .. } = *self;
        let started = std::time::Instant::now();
        tx.commit().map_err(backend)?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "committed");
        Ok(seq)
    }
}

fn extend(acc: &mut Option<(i64, i64)>, new: Option<(i64, i64)>) {
    if let Some((a, b)) = new {
        *acc = Some(acc.map_or((a, b), |(x, _)| (x, b)));
    }
}

fn multi_insert(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO visits(person, place, t_in, t_out, source) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?)");
    }
    sql
}

fn register(c: &Connection, table: &str, entity: Entity, ids: &[&str], insert: &str) -> Result<Vec<Key>> {
    let mut keys = Vec::with_capacity(ids.len());
    for id in ids {
        let key = match key_of(c, table, id)? {
            Some(k) => k,
            None => {
                exec(c, insert, &[id])?;
                let k = c.last_insert_rowid();
                log(c, entity, ChangeOp::Upsert, k, k)?;
                k
            }
        };
        keys.push(key as Key);
    }
    Ok(keys)
}
