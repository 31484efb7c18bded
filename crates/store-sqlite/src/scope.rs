//! Reads scoped by jurisdiction: pages of records and "does this record lie in the scope".
//!
//! A scope is an area's subtree, computed by a recursive CTE over `areas.parent` (the
//! hierarchy cannot cycle: `put_areas` refuses it). Where each kind of record lies is said on
//! [`Scope`]; here it is one SQL predicate per kind, all built from two sets: `sub` (the
//! subtree's area keys) and `subplaces` (the keys of the places in it).

use std::collections::HashSet;

use chainbreak_core::model::{Case, LabTest, Person, Place, Visit, VisitSource};
use chainbreak_store::{Entity, Result, Scope, StoreError, VisitQuery, VisitRow};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};

use crate::backend;
use crate::read::{
    CASE_SELECT, LAB_TEST_SELECT, PERSON_SELECT, PLACE_SELECT, case_row, lab_test_row, opt_ts, person_row, place_row,
    ts,
};

/// The subtree (`sub`) of the area `:area` and the places in it (`subplaces`); both empty when
/// `:area` is NULL (the scope is everything, and predicates test `:area IS NULL` first). Read
/// from the connection's scope tables, which [`area_param`] fills: every query using this binds
/// `:area` with it.
pub(crate) const SCOPE_CTE: &str = "WITH
  sub(k) AS (SELECT k FROM temp.scope_areas WHERE scope = :area),
  subplaces(k) AS (SELECT k FROM temp.scope_places WHERE scope = :area)";

/// The connection's scope tables (temporary: each connection has its own, gone when it closes):
/// for each scope asked for, its areas and the places in them, as of `meta.geo_version`.
pub(crate) const SCOPE_TABLES: &str = "
  CREATE TEMP TABLE IF NOT EXISTS scope_areas (scope TEXT NOT NULL, k INTEGER NOT NULL, PRIMARY KEY (scope, k))
    WITHOUT ROWID;
  CREATE TEMP TABLE IF NOT EXISTS scope_places (scope TEXT NOT NULL, k INTEGER NOT NULL, PRIMARY KEY (scope, k))
    WITHOUT ROWID;
  CREATE TEMP TABLE IF NOT EXISTS scope_versions (scope TEXT PRIMARY KEY, version TEXT NOT NULL) WITHOUT ROWID;";

/// The value of `:area` for [`SCOPE_CTE`]: NULL for everything, else the area's id, its scope
/// tables filled for the current area tree first (a few microseconds when they are current).
pub(crate) fn area_param(c: &Connection, scope: &Scope) -> Result<Value> {
    let area = match scope {
        Scope::All => return Ok(Value::Null),
        Scope::Within(area) => area,
    };
    let version: String = c
        .prepare_cached("SELECT value FROM meta WHERE key = 'geo_version'")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(backend)?;
    let cached: Option<String> = c
        .prepare_cached("SELECT version FROM temp.scope_versions WHERE scope = ?1")
        .and_then(|mut s| s.query_row([area], |r| r.get(0)).optional())
        .map_err(backend)?;
    if cached.as_deref() != Some(version.as_str()) {
        c.execute_batch("SAVEPOINT scope_fill").map_err(backend)?;
        let filled = (|| {
            c.prepare_cached("DELETE FROM temp.scope_areas WHERE scope = ?1").and_then(|mut s| s.execute([area]))?;
            c.prepare_cached("DELETE FROM temp.scope_places WHERE scope = ?1").and_then(|mut s| s.execute([area]))?;
            // The tree cannot cycle (`put_areas` refuses it), so each area comes once.
            c.prepare_cached(
                "INSERT INTO temp.scope_areas(scope, k)
                 WITH RECURSIVE sub(k) AS (SELECT key FROM areas WHERE id = ?1
                   UNION ALL SELECT a.key FROM areas a JOIN sub ON a.parent = sub.k)
                 SELECT ?1, k FROM sub",
            )
            .and_then(|mut s| s.execute([area]))?;
            c.prepare_cached(
                "INSERT INTO temp.scope_places(scope, k)
                 SELECT ?1, p.key FROM places p WHERE p.area IN (SELECT k FROM temp.scope_areas WHERE scope = ?1)",
            )
            .and_then(|mut s| s.execute([area]))?;
            c.prepare_cached("INSERT OR REPLACE INTO temp.scope_versions(scope, version) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute([area, &version]))
        })();
        match filled {
            Ok(_) => c.execute_batch("RELEASE scope_fill").map_err(backend)?,
            Err(e) => {
                c.execute_batch("ROLLBACK TO scope_fill; RELEASE scope_fill").map_err(backend)?;
                return Err(backend(e));
            }
        }
    }
    Ok(Value::Text(area.clone()))
}

/// A person (alias `x`) lies in the scope by their residence.
pub(crate) fn person_inside(person_key: &str) -> String {
    format!("EXISTS (SELECT 1 FROM persons x WHERE x.key = {person_key} AND x.residence IN subplaces)")
}

/// How to list one kind of record: its SELECT, id column, scope predicate and row mapper.
struct Listing<T> {
    select: &'static str,
    id_column: &'static str,
    predicate: String,
    map: fn(&Row) -> rusqlite::Result<T>,
}

impl<T> Listing<T> {
    fn page(&self, c: &Connection, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<T>> {
        let Listing { select, id_column, predicate, map } = self;
        let sql = format!(
            "{SCOPE_CTE} {select} WHERE (:area IS NULL OR {predicate}) AND {id_column} > :after
             ORDER BY {id_column} LIMIT :limit"
        );
        let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
        let params: &[(&str, &dyn rusqlite::ToSql)] =
            &[(":area", &area_param(c, scope)?), (":after", &after.unwrap_or("")), (":limit", &(limit as i64))];
        stmt.query_map(params, *map).and_then(|rows| rows.collect()).map_err(backend)
    }
}

pub(crate) fn persons_page(c: &Connection, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<Person>> {
    let predicate = "p.residence IN subplaces".into();
    Listing { select: PERSON_SELECT, id_column: "p.id", predicate, map: person_row }.page(c, scope, after, limit)
}

pub(crate) fn places_page(c: &Connection, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<Place>> {
    let predicate = "p.area IN sub".into();
    Listing { select: PLACE_SELECT, id_column: "p.id", predicate, map: place_row }.page(c, scope, after, limit)
}

pub(crate) fn cases_page(c: &Connection, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<Case>> {
    let predicate = person_inside("k.person");
    Listing { select: CASE_SELECT, id_column: "k.id", predicate, map: case_row }.page(c, scope, after, limit)
}

pub(crate) fn cases_sorted(
    c: &Connection,
    scope: &Scope,
    query: &chainbreak_store::CaseQuery,
    after: Option<(&str, &str)>,
    limit: usize,
) -> Result<Vec<Case>> {
    use chainbreak_store::CaseSort;
    // The sort column as it compares (an onset's absence as the empty text, first).
    let column = match query.sort {
        // The id alone (a constant sort key beside it kept SQLite from reading the id's index).
        CaseSort::Id => "k.id",
        CaseSort::Reported => "k.reported_at",
        CaseSort::Onset => "COALESCE(k.onset, '')",
        CaseSort::Classification => "k.classification",
    };
    let (dir, cmp) = if query.descending { ("DESC", "<") } else { ("ASC", ">") };
    let mut conditions = vec![format!("(:area IS NULL OR {})", person_inside("k.person"))];
    let mut ps: Vec<(&str, Value)> = vec![(":area", area_param(c, scope)?), (":limit", Value::Integer(limit as i64))];
    if let Some(class) = query.classification {
        conditions.push("k.classification = :class".into());
        ps.push((":class", Value::Text(class.as_str().into())));
    }
    if let Some((_, id)) = after
        && query.sort == CaseSort::Id
    {
        conditions.push(format!("k.id {cmp} :id"));
        ps.push((":id", Value::Text(id.to_string())));
    } else if let Some((value, id)) = after {
        // SQLite seeks a row value in an index of plain columns, but in the index on the onset's
        // expression only by a bound on the expression alone (a row value alone read that index
        // from its start: 54 ms in the middle of 1M); that bound on a plain column, though, would
        // make it seek by the column alone and scan its ties.
        if query.sort == CaseSort::Onset {
            conditions.push(format!("{column} {cmp}= :value"));
        }
        conditions.push(format!("({column}, k.id) {cmp} (:value, :id)"));
        let value = match query.sort {
            CaseSort::Reported => Value::Integer(value.parse::<i64>().map_err(|_| StoreError::Invalid {
                index: 0,
                field: "after",
                message: format!("`{value}` is not a report time cursor"),
            })?),
            _ => Value::Text(value.to_string()),
        };
        ps.push((":value", value));
        ps.push((":id", Value::Text(id.to_string())));
    }
    let order = match query.sort {
        CaseSort::Id => format!("k.id {dir}"),
        _ => format!("{column} {dir}, k.id {dir}"),
    };
    let sql = format!("{SCOPE_CTE} {CASE_SELECT} WHERE {} ORDER BY {order} LIMIT :limit", conditions.join(" AND "));
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let ps: Vec<(&str, &dyn rusqlite::ToSql)> = ps.iter().map(|(n, v)| (*n, v as &dyn rusqlite::ToSql)).collect();
    stmt.query_map(ps.as_slice(), case_row).and_then(|rows| rows.collect()).map_err(backend)
}

pub(crate) fn lab_tests_page(c: &Connection, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<LabTest>> {
    let predicate = format!("(t.lab IN subplaces OR {})", person_inside("t.person"));
    Listing { select: LAB_TEST_SELECT, id_column: "t.id", predicate, map: lab_test_row }.page(c, scope, after, limit)
}

pub(crate) fn visits_page(
    c: &Connection,
    scope: &Scope,
    query: &VisitQuery,
    after_row: i64,
    limit: usize,
) -> Result<Vec<VisitRow>> {
    // Only the conditions given go into the SQL, so that SQLite can use the person or place
    // index instead of walking every visit.
    let mut ctes = String::from(SCOPE_CTE);
    let mut conditions = vec![
        "v.id > :after".to_string(),
        format!("(:area IS NULL OR v.place IN subplaces OR {})", person_inside("v.person")),
    ];
    let mut params: Vec<(&str, Value)> = vec![
        (":area", area_param(c, scope)?),
        (":after", Value::Integer(after_row)),
        (":limit", Value::Integer(limit as i64)),
    ];
    if let Some(person) = &query.person {
        ctes.push_str(
            ",\n  fam(k) AS (SELECT key FROM persons WHERE id = :person
               UNION SELECT p.key FROM persons p JOIN fam ON p.merged_into = fam.k)",
        );
        conditions.push("v.person IN fam".into());
        params.push((":person", Value::Text(person.clone())));
    }
    if let Some(place) = &query.place {
        conditions.push("v.place = (SELECT key FROM places WHERE id = :place)".into());
        params.push((":place", Value::Text(place.clone())));
    }
    if let Some(from) = query.from {
        conditions.push("v.t_in >= :from".into());
        params.push((":from", Value::Integer(from.as_second())));
    }
    if let Some(to) = query.to {
        conditions.push("v.t_in < :to".into());
        params.push((":to", Value::Integer(to.as_second())));
    }
    let sql = format!(
        "{ctes} SELECT v.id, pe.id, pl.id, v.t_in, v.t_out, v.source FROM visits v
           JOIN persons pe ON pe.key = v.person JOIN places pl ON pl.key = v.place
         WHERE {} ORDER BY v.id LIMIT :limit",
        conditions.join(" AND ")
    );
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let params: Vec<(&str, &dyn rusqlite::ToSql)> =
        params.iter().map(|(name, value)| (*name, value as &dyn rusqlite::ToSql)).collect();
    stmt.query_map(params.as_slice(), |r| {
        let code: u8 = r.get(5)?;
        Ok(VisitRow {
            row: r.get(0)?,
            visit: Visit {
                person_id: r.get(1)?,
                place_id: r.get(2)?,
                t_in: ts(r.get(3)?)?,
                t_out: opt_ts(r.get(4)?)?,
                source: VisitSource::from_code(code).unwrap_or(VisitSource::VenueCode),
            },
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(backend)
}

/// The keys of the areas in `area`'s subtree (empty when the area is unknown), from the
/// connection's scope tables (filled by [`area_param`] once per version of the tree).
fn subtree(c: &Connection, scope: &Scope) -> Result<HashSet<i64>> {
    let area = area_param(c, scope)?;
    let mut stmt = c.prepare_cached("SELECT k FROM temp.scope_areas WHERE scope = ?1").map_err(backend)?;
    stmt.query_map([area], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(backend)
}

/// For each id, the areas the record lies in (any one inside the scope is enough).
pub(crate) fn in_scope(c: &Connection, scope: &Scope, entity: Entity, ids: &[&str]) -> Result<Vec<bool>> {
    if *scope == Scope::All {
        return Ok(vec![true; ids.len()]);
    }
    let sub = subtree(c, scope)?;
    // Each query returns the area keys (up to two) where the record lies.
    let sql = match entity {
        Entity::Area => "SELECT key, NULL FROM areas WHERE id = ?1",
        Entity::Place => "SELECT area, NULL FROM places WHERE id = ?1",
        Entity::Person => {
            "SELECT r.area, NULL FROM persons p LEFT JOIN places r ON r.key = p.residence WHERE p.id = ?1"
        }
        Entity::Case => {
            "SELECT r.area, NULL FROM cases k JOIN persons p ON p.key = k.person
             LEFT JOIN places r ON r.key = p.residence WHERE k.id = ?1"
        }
        Entity::LabTest => {
            "SELECT r.area, l.area FROM lab_tests t LEFT JOIN persons p ON p.key = t.person
             LEFT JOIN places r ON r.key = p.residence LEFT JOIN places l ON l.key = t.lab WHERE t.id = ?1"
        }
        other => {
            return Err(StoreError::Backend(format!("scope checks do not cover `{other}` records")));
        }
    };
    let mut stmt = c.prepare_cached(sql).map_err(backend)?;
    ids.iter()
        .map(|id| {
            let located: Option<(Option<i64>, Option<i64>)> =
                stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(backend)?;
            Ok(located.is_some_and(|(a, b)| [a, b].into_iter().flatten().any(|k| sub.contains(&k))))
        })
        .collect()
}
