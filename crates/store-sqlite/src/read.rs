//! Reads.

use chainbreak_core::model::*;
use chainbreak_store::{Change, ChangeOp, Entity, Key, KeyedVisit, Result, ScanEnd, StoreError, StoredVisit};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row};

use crate::backend;

/// Rows handed to a `scan_visits` callback at a time.
const SCAN_BATCH: usize = 64 * 1024;

pub(crate) fn table_of(entity: Entity) -> &'static str {
    match entity {
        Entity::Area => "areas",
        Entity::Unit => "units",
        Entity::Place => "places",
        Entity::Person => "persons",
        Entity::Identifier => "person_identifiers",
        Entity::Staff => "staff",
        Entity::Group => "groups",
        Entity::Membership => "memberships",
        Entity::Visit => "visits",
        Entity::Trip => "trips",
        Entity::Passenger => "trip_passengers",
        Entity::Ping => "pings",
        Entity::Case => "cases",
        Entity::LabTest => "lab_tests",
        Entity::Arrival => "arrivals",
        Entity::GoodsBatch => "goods_batches",
        Entity::GoodsHop => "goods_hops",
        Entity::Sentinel => "sentinel",
        Entity::Proposal => "proposals",
        Entity::Episode => "episodes",
        Entity::Facility => "facilities",
        Entity::Alert => "alerts",
        Entity::ReviewItem => "review_items",
        Entity::Zone => "zones",
        Entity::GoodsResponse => "goods_responses",
        Entity::Suspension => "plant_suspensions",
        Entity::ServiceRequest => "service_requests",
    }
}

pub(crate) fn ts(s: i64) -> rusqlite::Result<Timestamp> {
    Timestamp::from_second(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, Box::new(e)))
}

pub(crate) fn opt_ts(s: Option<i64>) -> rusqlite::Result<Option<Timestamp>> {
    s.map(ts).transpose()
}

pub(crate) fn vocab<T>(row: &Row, i: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let s: String = row.get(i)?;
    parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, format!("unknown value `{s}`").into())
    })
}

fn opt_vocab<T>(row: &Row, i: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<Option<T>> {
    let s: Option<String> = row.get(i)?;
    s.map(|s| {
        parse(&s).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                i,
                rusqlite::types::Type::Text,
                format!("unknown value `{s}`").into(),
            )
        })
    })
    .transpose()
}

fn date(row: &Row, i: usize) -> rusqlite::Result<Option<jiff::civil::Date>> {
    let s: Option<String> = row.get(i)?;
    s.map(|s| {
        s.parse().map_err(|e: jiff::Error| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    })
    .transpose()
}

pub(crate) fn keys(c: &Connection, sql: &str) -> Result<Vec<(String, Key)>> {
    let mut stmt = c.prepare(sql).map_err(backend)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Key>(1)?))).map_err(backend)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
}

pub(crate) fn place_kinds(c: &Connection) -> Result<Vec<(Key, PlaceKind)>> {
    let mut s = c.prepare("SELECT key, kind FROM places ORDER BY key").map_err(backend)?;
    s.query_map([], |r| Ok((r.get(0)?, vocab(r, 1, PlaceKind::parse)?)))
        .and_then(|rows| rows.collect())
        .map_err(backend)
}

pub(crate) fn group_members(c: &Connection) -> Result<Vec<chainbreak_store::GroupMember>> {
    let mut s = c
        .prepare(
            "SELECT g.key, g.id, g.kind, g.t_start, g.t_end, m.person FROM memberships m JOIN groups g ON g.key = m.grp
             ORDER BY g.key, m.person",
        )
        .map_err(backend)?;
    s.query_map([], |r| {
        Ok(chainbreak_store::GroupMember {
            group: r.get(0)?,
            group_id: r.get(1)?,
            kind: vocab(r, 2, GroupKind::parse)?,
            start: r.get(3)?,
            end: r.get(4)?,
            person: r.get(5)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

pub(crate) fn trip_riders(c: &Connection) -> Result<Vec<chainbreak_store::TripRider>> {
    let mut s = c
        .prepare(
            "SELECT t.key, t.id, t.mode, t.departure, t.arrival, t.sealed, p.person, p.role, p.carriage, p.seat_row
             FROM trip_passengers p JOIN trips t ON t.key = p.trip ORDER BY t.key, p.person",
        )
        .map_err(backend)?;
    s.query_map([], |r| {
        Ok(chainbreak_store::TripRider {
            trip: r.get(0)?,
            trip_id: r.get(1)?,
            mode: vocab(r, 2, TripMode::parse)?,
            departure: r.get(3)?,
            arrival: r.get(4)?,
            sealed: r.get(5)?,
            person: r.get(6)?,
            role: vocab(r, 7, TripRole::parse)?,
            carriage: r.get(8)?,
            seat_row: r.get(9)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

pub(crate) const PERSON_SELECT: &str = "SELECT p.id, r.id, p.birth_year, p.sex, p.occupation FROM persons p
     LEFT JOIN places r ON r.key = p.residence";

pub(crate) fn person_row(r: &Row) -> rusqlite::Result<Person> {
    Ok(Person {
        id: r.get(0)?,
        residence: r.get(1)?,
        birth_year: r.get(2)?,
        sex: opt_vocab(r, 3, Sex::parse)?,
        occupation: r.get(4)?,
    })
}

pub(crate) fn person(c: &Connection, id: &str) -> Result<Option<Person>> {
    c.prepare_cached(&format!("{PERSON_SELECT} WHERE p.id = ?1"))
        .and_then(|mut s| s.query_row([id], person_row).optional())
        .map_err(backend)
}

pub(crate) fn identifiers(c: &Connection, person_id: &str) -> Result<Vec<Identifier>> {
    let mut s = c
        .prepare_cached(
            "SELECT p.id, i.kind, i.value FROM person_identifiers i JOIN persons p ON p.key = i.person
             WHERE p.id = ?1 ORDER BY i.kind, i.value",
        )
        .map_err(backend)?;
    s.query_map([person_id], |r| {
        Ok(Identifier { person_id: r.get(0)?, kind: vocab(r, 1, IdentifierKind::parse)?, value: r.get(2)? })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

pub(crate) fn canonical_person(c: &Connection, id: &str) -> Result<Option<String>> {
    let mut cur: Option<(String, Option<i64>)> = c
        .query_row("SELECT id, merged_into FROM persons WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(backend)?;
    let mut steps = 0;
    while let Some((pid, Some(next))) = &cur {
        if steps > 64 {
            return Err(StoreError::Backend(format!("merge chain of `{pid}` does not end")));
        }
        cur = c
            .query_row("SELECT id, merged_into FROM persons WHERE key = ?1", [next], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(backend)?;
        steps += 1;
    }
    Ok(cur.map(|(pid, _)| pid))
}

const MERGE_SELECT: &str = "SELECT m.id, s.id, d.id, m.reason, m.actor, m.merged_at, m.unmerged_at FROM person_merges m
     JOIN persons s ON s.key = m.survivor JOIN persons d ON d.key = m.duplicate";

fn merge_row(r: &Row) -> rusqlite::Result<PersonMerge> {
    Ok(PersonMerge {
        id: r.get(0)?,
        survivor: r.get(1)?,
        duplicate: r.get(2)?,
        reason: r.get(3)?,
        actor: r.get(4)?,
        merged_at: ts(r.get(5)?)?,
        unmerged_at: opt_ts(r.get(6)?)?,
    })
}

pub(crate) fn merges(c: &Connection, person_id: &str) -> Result<Vec<PersonMerge>> {
    let mut s =
        c.prepare_cached(&format!("{MERGE_SELECT} WHERE s.id = ?1 OR d.id = ?1 ORDER BY m.id")).map_err(backend)?;
    s.query_map([person_id], merge_row).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn merge_by_id(c: &Connection, id: i64) -> Result<Option<PersonMerge>> {
    c.prepare_cached(&format!("{MERGE_SELECT} WHERE m.id = ?1"))
        .and_then(|mut s| s.query_row([id], merge_row).optional())
        .map_err(backend)
}

pub(crate) const PLACE_SELECT: &str = "SELECT p.id, p.name, p.kind, p.key_place, p.lat, p.lon, a.id FROM places p
     LEFT JOIN areas a ON a.key = p.area";

pub(crate) fn place_row(r: &Row) -> rusqlite::Result<Place> {
    Ok(Place {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: vocab(r, 2, PlaceKind::parse)?,
        key_place: r.get(3)?,
        lat: r.get(4)?,
        lon: r.get(5)?,
        area: r.get(6)?,
    })
}

pub(crate) fn place(c: &Connection, id: &str) -> Result<Option<Place>> {
    c.prepare_cached(&format!("{PLACE_SELECT} WHERE p.id = ?1"))
        .and_then(|mut s| s.query_row([id], place_row).optional())
        .map_err(backend)
}

pub(crate) fn area(c: &Connection, id: &str) -> Result<Option<Area>> {
    type AreaRow = (String, String, String, Option<String>, Option<String>);
    let row: Option<AreaRow> = c
        .prepare_cached(
            "SELECT a.id, a.name, a.level, p.id, a.geometry FROM areas a LEFT JOIN areas p ON p.key = a.parent WHERE a.id = ?1",
        )
        .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).optional())
        .map_err(backend)?;
    row.map(|(id, name, level, parent, geometry)| {
        let geometry = geometry
            .map(|g| g.parse::<geojson::Geometry>().map_err(Box::new))
            .transpose()
            .map_err(|e| StoreError::Backend(format!("area {id} geometry: {e}")))?;
        Ok(Area { id, name, level, parent, geometry })
    })
    .transpose()
}

pub(crate) const CASE_SELECT: &str =
    "SELECT k.id, p.id, k.classification, k.onset, k.sampled_at, k.reported_at, k.imported, k.detection, k.severity,
       k.outcome, k.vaccine_doses, k.infector, k.cluster
     FROM cases k JOIN persons p ON p.key = k.person";

pub(crate) fn case_row(r: &Row) -> rusqlite::Result<Case> {
    Ok(Case {
        id: r.get(0)?,
        person_id: r.get(1)?,
        classification: vocab(r, 2, Classification::parse)?,
        onset: date(r, 3)?,
        sampled_at: opt_ts(r.get(4)?)?,
        reported_at: ts(r.get(5)?)?,
        imported: r.get(6)?,
        detection: opt_vocab(r, 7, DetectionRoute::parse)?,
        severity: opt_vocab(r, 8, Severity::parse)?,
        outcome: opt_vocab(r, 9, Outcome::parse)?,
        vaccine_doses: r.get(10)?,
        infector_case_id: r.get(11)?,
        cluster: r.get(12)?,
    })
}

pub(crate) fn case(c: &Connection, id: &str) -> Result<Option<Case>> {
    c.prepare_cached(&format!("{CASE_SELECT} WHERE k.id = ?1"))
        .and_then(|mut s| s.query_row([id], case_row).optional())
        .map_err(backend)
}

pub(crate) fn case_history(c: &Connection, id: &str) -> Result<Vec<ClassificationChange>> {
    let mut s = c
        .prepare_cached(
            "SELECT k.id, h.from_class, h.to_class, h.at, h.seq FROM case_classifications h
             JOIN cases k ON k.key = h.case_key WHERE k.id = ?1 ORDER BY h.seq",
        )
        .map_err(backend)?;
    s.query_map([id], |r| {
        Ok(ClassificationChange {
            case_id: r.get(0)?,
            from: opt_vocab(r, 1, Classification::parse)?,
            to: vocab(r, 2, Classification::parse)?,
            at: ts(r.get(3)?)?,
            seq: r.get(4)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

pub(crate) const LAB_TEST_SELECT: &str =
    "SELECT t.id, t.subject_kind, t.subject_id, t.pool_id, t.method, t.result, t.ct, t.sampled_at, t.reported_at,
       l.id, t.variant
     FROM lab_tests t LEFT JOIN places l ON l.key = t.lab";

pub(crate) fn lab_test_row(r: &Row) -> rusqlite::Result<LabTest> {
    Ok(LabTest {
        id: r.get(0)?,
        subject_kind: vocab(r, 1, SubjectKind::parse)?,
        subject_id: r.get(2)?,
        pool_id: r.get(3)?,
        method: vocab(r, 4, TestMethod::parse)?,
        result: vocab(r, 5, TestResult::parse)?,
        ct: r.get(6)?,
        sampled_at: ts(r.get(7)?)?,
        reported_at: opt_ts(r.get(8)?)?,
        lab_id: r.get(9)?,
        variant: r.get(10)?,
    })
}

pub(crate) fn lab_test(c: &Connection, id: &str) -> Result<Option<LabTest>> {
    c.prepare_cached(&format!("{LAB_TEST_SELECT} WHERE t.id = ?1"))
        .and_then(|mut s| s.query_row([id], lab_test_row).optional())
        .map_err(backend)
}

/// The keys of a survivor and of every person merged into it (transitively).
pub(crate) fn merged_family(c: &Connection, canonical: &str) -> Result<Vec<i64>> {
    let mut s = c
        .prepare_cached(
            "WITH RECURSIVE fam(key, id) AS (
               SELECT key, id FROM persons WHERE id = ?1
               UNION SELECT p.key, p.id FROM persons p JOIN fam ON p.merged_into = fam.key)
             SELECT key FROM fam",
        )
        .map_err(backend)?;
    s.query_map([canonical], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn visits_of_person(c: &Connection, person_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Visit>> {
    let Some(canonical) = canonical_person(c, person_id)? else {
        return Ok(Vec::new());
    };
    let family = merged_family(c, &canonical)?;
    let mut s = c
        .prepare_cached(
            "SELECT l.id, v.t_in, v.t_out, v.source FROM visits v JOIN places l ON l.key = v.place
             WHERE v.person = ?1 AND v.t_in >= ?2 AND v.t_in < ?3",
        )
        .map_err(backend)?;
    let mut out = Vec::new();
    for key in &family {
        let rows = s
            .query_map(rusqlite::params![key, from.as_second(), to.as_second()], |r| {
                let code: u8 = r.get(3)?;
                Ok(Visit {
                    person_id: canonical.clone(),
                    place_id: r.get(0)?,
                    t_in: ts(r.get(1)?)?,
                    t_out: opt_ts(r.get(2)?)?,
                    source: VisitSource::from_code(code).unwrap_or(VisitSource::VenueCode),
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(backend)?;
        out.extend(rows);
    }
    out.sort_by(|a, b| (a.t_in, &a.place_id).cmp(&(b.t_in, &b.place_id)));
    Ok(out)
}

/// The survivor key of every person key (index = key), following merge chains.
pub(crate) fn person_survivors(c: &Connection) -> Result<Vec<Key>> {
    let max: i64 = c.query_row("SELECT coalesce(max(key), 0) FROM persons", [], |r| r.get(0)).map_err(backend)?;
    let mut canon: Vec<Key> = (0..=max as Key).collect();
    let mut s = c
        .prepare(
            "SELECT key, merged_into FROM persons WHERE merged_into IS NOT NULL AND key <= ?1 AND merged_into <= ?1",
        )
        .map_err(backend)?;
    let pairs: Vec<(Key, Key)> =
        s.query_map([max], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|rows| rows.collect()).map_err(backend)?;
    for (k, into) in &pairs {
        canon[*k as usize] = *into;
    }
    // Follow chains (a merged into b merged into c); merges never form a cycle.
    for (k, _) in &pairs {
        let mut cur = canon[*k as usize];
        let mut steps = 0;
        while canon[cur as usize] != cur && steps < 64 {
            cur = canon[cur as usize];
            steps += 1;
        }
        canon[*k as usize] = cur;
    }
    Ok(canon)
}

pub(crate) fn scan_visits(c: &Connection, after_row: i64, f: &mut dyn FnMut(&[StoredVisit])) -> Result<ScanEnd> {
    // One read transaction: the rows and the seq are of the same snapshot.
    let tx = c.unchecked_transaction().map_err(backend)?;
    let seq: u64 = tx.query_row("SELECT coalesce(max(seq), 0) FROM changes", [], |r| r.get(0)).map_err(backend)?;
    let mut s = tx
        .prepare("SELECT id, person, place, t_in, t_out, source FROM visits WHERE id > ?1 ORDER BY id")
        .map_err(backend)?;
    let mut rows = s.query([after_row]).map_err(backend)?;
    let mut buf = Vec::with_capacity(SCAN_BATCH);
    let mut last = after_row;
    while let Some(r) = rows.next().map_err(backend)? {
        let row: i64 = r.get(0).map_err(backend)?;
        let code: u8 = r.get(5).map_err(backend)?;
        buf.push(StoredVisit {
            row,
            visit: KeyedVisit {
                person: r.get(1).map_err(backend)?,
                place: r.get(2).map_err(backend)?,
                t_in: r.get(3).map_err(backend)?,
                t_out: r.get(4).map_err(backend)?,
                source: VisitSource::from_code(code).unwrap_or(VisitSource::VenueCode),
            },
        });
        last = row;
        if buf.len() == SCAN_BATCH {
            f(&buf);
            buf.clear();
        }
    }
    if !buf.is_empty() {
        f(&buf);
    }
    Ok(ScanEnd { last_row: last, seq })
}

pub(crate) fn scan_pings(
    c: &Connection,
    after_row: i64,
    f: &mut dyn FnMut(&[chainbreak_store::StoredPing]),
) -> Result<ScanEnd> {
    let tx = c.unchecked_transaction().map_err(backend)?;
    let seq: u64 = tx.query_row("SELECT coalesce(max(seq), 0) FROM changes", [], |r| r.get(0)).map_err(backend)?;
    let mut s = tx.prepare("SELECT id, person, t, lat, lon FROM pings WHERE id > ?1 ORDER BY id").map_err(backend)?;
    let mut rows = s.query([after_row]).map_err(backend)?;
    let mut buf = Vec::with_capacity(SCAN_BATCH);
    let mut last = after_row;
    while let Some(r) = rows.next().map_err(backend)? {
        let row: i64 = r.get(0).map_err(backend)?;
        buf.push(chainbreak_store::StoredPing {
            row,
            person: r.get(1).map_err(backend)?,
            t: r.get(2).map_err(backend)?,
            lat: r.get(3).map_err(backend)?,
            lon: r.get(4).map_err(backend)?,
        });
        last = row;
        if buf.len() == SCAN_BATCH {
            f(&buf);
            buf.clear();
        }
    }
    if !buf.is_empty() {
        f(&buf);
    }
    Ok(ScanEnd { last_row: last, seq })
}

pub(crate) fn changes_since(c: &Connection, after: u64, limit: usize) -> Result<Vec<Change>> {
    let mut s = c
        .prepare_cached("SELECT seq, entity, op, key_from, key_to FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .map_err(backend)?;
    s.query_map(rusqlite::params![after as i64, limit as i64], |r| {
        let op: String = r.get(2)?;
        Ok(Change {
            seq: r.get(0)?,
            entity: vocab(r, 1, Entity::parse)?,
            op: match op.as_str() {
                "upsert" => ChangeOp::Upsert,
                "delete" => ChangeOp::Delete,
                "merge" => ChangeOp::Merge,
                _ => ChangeOp::Unmerge,
            },
            key_from: r.get(3)?,
            key_to: r.get(4)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

/// Every goods batch, by id, and every hop, in the order written.
pub(crate) fn goods(c: &Connection) -> Result<(Vec<GoodsBatch>, Vec<GoodsHop>)> {
    let date = |r: &Row, i: usize| -> rusqlite::Result<Option<jiff::civil::Date>> {
        let text: Option<String> = r.get(i)?;
        text.map(|t| {
            t.parse()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
        })
        .transpose()
    };
    let batches = c
        .prepare(
            "SELECT b.id, b.product, b.origin_country, b.plant, b.port, b.entry_date, b.inspection_cert, b.test_cert,
                    b.disinfection_cert, b.trace_code, p.id
             FROM goods_batches b LEFT JOIN goods_batches p ON p.key = b.parent ORDER BY b.id",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok(GoodsBatch {
                    id: r.get(0)?,
                    product: r.get(1)?,
                    origin_country: r.get(2)?,
                    plant: r.get(3)?,
                    port: r.get(4)?,
                    entry_date: date(r, 5)?,
                    inspection_cert: r.get(6)?,
                    test_cert: r.get(7)?,
                    disinfection_cert: r.get(8)?,
                    trace_code: r.get(9)?,
                    parent_batch_id: r.get(10)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(backend)?;
    let hops = c
        .prepare(
            "SELECT b.id, h.kind, f.id, t.id, d.id, h.date, h.quantity
             FROM goods_hops h JOIN goods_batches b ON b.key = h.batch
             LEFT JOIN places f ON f.key = h.from_place LEFT JOIN places t ON t.key = h.to_place
             LEFT JOIN goods_batches d ON d.key = h.to_batch ORDER BY h.key",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok(GoodsHop {
                    batch_id: r.get(0)?,
                    kind: vocab(r, 1, HopKind::parse)?,
                    from_place: r.get(2)?,
                    to_place: r.get(3)?,
                    to_batch_id: r.get(4)?,
                    date: date(r, 5)?.ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            5,
                            rusqlite::types::Type::Null,
                            "a hop has a date".into(),
                        )
                    })?,
                    quantity: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(backend)?;
    Ok((batches, hops))
}
