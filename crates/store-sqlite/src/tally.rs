//! Counts kept by area, so that the overview, the public summary and the board read a few
//! hundred rows instead of every case and episode of a jurisdiction.
//!
//! A tallied record (a case, an episode) is counted under the area of its person's residence at
//! the time it was written (`tally_area` on its row, so that a later change takes away exactly
//! what was added) and under every ancestor of that area, and under [`ALL`] (the whole
//! deployment). A scope reads the rows of its one area. Keys are text: for a case
//! `classification|report day|onset day|in quarantine|epidemic day|imported` (days local, in
//! the store's time zone; flags 0 or 1; the epidemic day is the onset, else the sampling, else
//! the report), for an episode `state|owner unit`. [`rebuild`] recounts everything from the
//! records: after a migration and whenever the area tree changes; the conformance suite checks
//! that what writes keep equals a rebuild.

use std::collections::HashMap;

use chainbreak_core::time::Calendar;
use chainbreak_store::{CaseCount, EpisodeCount, Result, Scope, StoreError};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use crate::backend;

/// The area key under which everything is counted (area keys start at 1).
pub(crate) const ALL: i64 = 0;

pub(crate) const CASES: &str = "cases";
pub(crate) const EPISODES: &str = "episodes";

/// The store's calendar (its time zone, from `meta`).
pub(crate) fn calendar(c: &Connection) -> Result<Calendar> {
    let zone: String =
        c.query_row("SELECT value FROM meta WHERE key = 'time_zone'", [], |r| r.get(0)).map_err(backend)?;
    Calendar::new(&zone).map_err(|e| StoreError::Backend(format!("meta.time_zone `{zone}`: {e}")))
}

/// The area of a person's residence (none when the person has no residence, or it no area).
pub(crate) fn residence_area(c: &Connection, person_key: i64) -> Result<Option<i64>> {
    c.prepare_cached("SELECT pl.area FROM persons p JOIN places pl ON pl.key = p.residence WHERE p.key = ?1")
        .and_then(|mut s| s.query_row([person_key], |r| r.get::<_, Option<i64>>(0)).optional())
        .map(Option::flatten)
        .map_err(backend)
}

/// What a case is counted by: its row's `classification, reported_at, onset, sampled_at,
/// detection, imported`.
pub(crate) type CaseFacts = (String, i64, Option<String>, Option<i64>, Option<String>, bool);

/// The columns of [`CaseFacts`], in order.
pub(crate) const CASE_FACTS: &str = "classification, reported_at, onset, sampled_at, detection, imported";

pub(crate) fn case_facts(r: &rusqlite::Row, first: usize) -> rusqlite::Result<CaseFacts> {
    Ok((r.get(first)?, r.get(first + 1)?, r.get(first + 2)?, r.get(first + 3)?, r.get(first + 4)?, r.get(first + 5)?))
}

/// A case's key (see the module's documentation).
pub(crate) fn case_key(cal: &Calendar, facts: &CaseFacts) -> Result<String> {
    let (classification, reported_at, onset, sampled_at, detection, imported) = facts;
    let instant = |s: i64| Timestamp::from_second(s).map_err(|e| StoreError::Backend(e.to_string()));
    let reported = cal.day_of(instant(*reported_at)?);
    let in_quarantine = u8::from(detection.as_deref() == Some("in_quarantine"));
    // The day an epidemic curve and Rt count the case on: onset, else sampling, else report.
    let epi_day = match (onset, sampled_at) {
        (Some(d), _) => d.clone(),
        (None, Some(s)) => cal.day_of(instant(*s)?).to_string(),
        (None, None) => reported.to_string(),
    };
    Ok(format!(
        "{classification}|{reported}|{}|{in_quarantine}|{epi_day}|{}",
        onset.as_deref().unwrap_or(""),
        u8::from(*imported)
    ))
}

/// An episode's key.
pub(crate) fn episode_key(state: &str, owner: &str) -> String {
    format!("{state}|{owner}")
}

/// Changes to the counts, gathered over a write and applied at once.
#[derive(Default)]
pub(crate) struct Deltas {
    counts: HashMap<(i64, &'static str, String), i64>,
    /// Each area with its ancestors (itself first).
    lines: HashMap<i64, Vec<i64>>,
}

impl Deltas {
    /// Counts `delta` records of `kind` with `key` under `area`, its ancestors and [`ALL`].
    pub(crate) fn add(
        &mut self,
        c: &Connection,
        area: Option<i64>,
        kind: &'static str,
        key: &str,
        delta: i64,
    ) -> Result<()> {
        if let Some(area) = area {
            let line = match self.lines.entry(area) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(ancestors(c, area)?),
            };
            for &a in line.iter() {
                *self.counts.entry((a, kind, key.to_string())).or_default() += delta;
            }
        }
        *self.counts.entry((ALL, kind, key.to_string())).or_default() += delta;
        Ok(())
    }

    /// Writes the changes (rows counting nothing are deleted).
    pub(crate) fn flush(self, c: &Connection) -> Result<()> {
        let mut up = c
            .prepare_cached(
                "INSERT INTO tallies(area, kind, key, n) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(area, kind, key) DO UPDATE SET n = n + excluded.n",
            )
            .map_err(backend)?;
        let mut zero = c
            .prepare_cached("DELETE FROM tallies WHERE area = ?1 AND kind = ?2 AND key = ?3 AND n = 0")
            .map_err(backend)?;
        for ((area, kind, key), n) in self.counts {
            if n != 0 {
                up.execute(params![area, kind, key, n]).map_err(backend)?;
                zero.execute(params![area, kind, key]).map_err(backend)?;
            }
        }
        Ok(())
    }
}

/// An area and its ancestors, itself first (the tree cannot cycle: `put_areas` refuses it).
fn ancestors(c: &Connection, area: i64) -> Result<Vec<i64>> {
    let mut s = c.prepare_cached("SELECT parent FROM areas WHERE key = ?1").map_err(backend)?;
    let mut line = vec![area];
    let mut cur = area;
    while let Some(Some(parent)) = s.query_row([cur], |r| r.get::<_, Option<i64>>(0)).optional().map_err(backend)? {
        if line.contains(&parent) {
            break;
        }
        line.push(parent);
        cur = parent;
    }
    Ok(line)
}

/// Recounts every tally from the records (each record's `tally_area` set to its person's
/// residence's area now).
pub(crate) fn rebuild(c: &Connection) -> Result<()> {
    let cal = calendar(c)?;
    c.execute_batch(
        "DELETE FROM tallies;
         UPDATE cases SET tally_area = (SELECT pl.area FROM persons p JOIN places pl ON pl.key = p.residence
                                        WHERE p.key = cases.person);
         UPDATE episodes SET tally_area = (SELECT pl.area FROM persons p JOIN places pl ON pl.key = p.residence
                                           WHERE p.key = episodes.person);",
    )
    .map_err(backend)?;
    let mut deltas = Deltas::default();
    {
        let mut s = c.prepare(&format!("SELECT tally_area, {CASE_FACTS} FROM cases")).map_err(backend)?;
        let mut rows = s.query([]).map_err(backend)?;
        while let Some(r) = rows.next().map_err(backend)? {
            let area: Option<i64> = r.get(0).map_err(backend)?;
            let key = case_key(&cal, &case_facts(r, 1).map_err(backend)?)?;
            deltas.add(c, area, CASES, &key, 1)?;
        }
    }
    {
        let mut s = c.prepare("SELECT tally_area, state, owner_unit FROM episodes").map_err(backend)?;
        let mut rows = s.query([]).map_err(backend)?;
        while let Some(r) = rows.next().map_err(backend)? {
            let area: Option<i64> = r.get(0).map_err(backend)?;
            let state: String = r.get(1).map_err(backend)?;
            let owner: String = r.get(2).map_err(backend)?;
            deltas.add(c, area, EPISODES, &episode_key(&state, &owner), 1)?;
        }
    }
    deltas.flush(c)
}

/// The rows of one kind within a scope (an unknown area has none).
fn read(c: &Connection, scope: &Scope, kind: &str) -> Result<Vec<(String, u64)>> {
    let area: Option<i64> = match scope {
        Scope::All => Some(ALL),
        Scope::Within(id) => crate::batch::key_of(c, "areas", id)?,
    };
    let Some(area) = area else { return Ok(Vec::new()) };
    let mut s = c
        .prepare_cached("SELECT key, n FROM tallies WHERE area = ?1 AND kind = ?2 AND n > 0 ORDER BY key")
        .map_err(backend)?;
    s.query_map(params![area, kind], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
        .and_then(|rows| rows.collect())
        .map_err(backend)
}

fn malformed(key: &str) -> StoreError {
    StoreError::Backend(format!("tallies: malformed key `{key}`"))
}

pub(crate) fn case_counts(c: &Connection, scope: &Scope) -> Result<Vec<CaseCount>> {
    read(c, scope, CASES)?
        .into_iter()
        .map(|(key, n)| {
            let mut parts = key.split('|');
            let mut next = || parts.next().ok_or_else(|| malformed(&key));
            let class = next()?;
            let classification = chainbreak_core::model::Classification::parse(class).ok_or_else(|| malformed(&key))?;
            let reported = next()?.parse().map_err(|_| malformed(&key))?;
            let onset = match next()? {
                "" => None,
                d => Some(d.parse().map_err(|_| malformed(&key))?),
            };
            let in_quarantine = next()? == "1";
            let epi_day = next()?.parse().map_err(|_| malformed(&key))?;
            let imported = next()? == "1";
            Ok(CaseCount { classification, reported, onset, in_quarantine, epi_day, imported, n })
        })
        .collect()
}

pub(crate) fn episode_counts(c: &Connection, scope: &Scope) -> Result<Vec<EpisodeCount>> {
    read(c, scope, EPISODES)?
        .into_iter()
        .map(|(key, n)| {
            let (state, owner) = key.split_once('|').ok_or_else(|| malformed(&key))?;
            Ok(EpisodeCount { state: state.to_string(), owner_unit: owner.to_string(), n })
        })
        .collect()
}
