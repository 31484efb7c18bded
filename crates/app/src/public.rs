//! What the public sees (issue 9 "public page", DESIGN.md §6): the zones in force, the daily
//! counts of new cases and the latest bulletin — no personal data, no count finer than the
//! deployment, and no small count, shown or recoverable.
//!
//! Statistical disclosure control ([`protect`]): every count under 5 is shown as "<5"; where a
//! row or column total would let a reader recover a hidden count by subtraction (or by the
//! bounds the display itself gives: "<5" is 0 to 4, a complementary hidden cell is 5 or more),
//! more counts are hidden ("x"), the smallest first, until the bounds a reader can derive by
//! propagating every row and column equation leave every hidden count at least two possible
//! values. A property test checks this against a brute-force reader who tries every table.

use std::collections::BTreeMap;

use chainbreak_core::model::Classification;
use chainbreak_store::Scope;
use jiff::civil::Date;
use serde::Serialize;

use crate::zones::PublicZone;
use crate::{AppError, Deployment};

/// A published count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "shown", content = "value")]
pub enum Cell {
    Count(u64),
    /// Under 5 (0 to 4).
    Small,
    /// Hidden so that a small count cannot be recovered (5 or more).
    Hidden,
}

impl Cell {
    /// How the cell reads: the count, `<5` or `x`.
    pub fn text(self) -> String {
        match self {
            Cell::Count(n) => n.to_string(),
            Cell::Small => "<5".to_string(),
            Cell::Hidden => "x".to_string(),
        }
    }
}

/// The threshold: counts under it are small.
const SMALL: u64 = 5;

/// A table of counts with its row totals (last column) and column totals (last row), protected:
/// `body[i][j]` for `i < rows`, `j < cols`. The result has `rows + 1` rows of `cols + 1` cells.
pub fn protect(body: &[Vec<u64>]) -> Vec<Vec<Cell>> {
    let rows = body.len();
    let cols = body.first().map_or(0, Vec::len);
    // The full table with margins.
    let mut v = vec![vec![0u64; cols + 1]; rows + 1];
    for (i, row) in body.iter().enumerate() {
        assert_eq!(row.len(), cols, "a table's rows have the same length");
        for (j, &x) in row.iter().enumerate() {
            v[i][j] = x;
            v[i][cols] += x;
            v[rows][j] += x;
            v[rows][cols] += x;
        }
    }
    let mut shown: Vec<Vec<Cell>> =
        v.iter().map(|r| r.iter().map(|&x| if x < SMALL { Cell::Small } else { Cell::Count(x) }).collect()).collect();
    loop {
        let exposed = audit(&v, &shown);
        let Some((i, j)) = exposed else { break };
        // Hide the smallest count still shown on a line through the exposed cell, or, when
        // those lines show none (the reader pins it through other lines), anywhere.
        let mut candidates: Vec<(u64, usize, usize)> = Vec::new();
        for (jj, c) in shown[i].iter().enumerate() {
            if let Cell::Count(x) = c {
                candidates.push((*x, i, jj));
            }
        }
        for (ii, row) in shown.iter().enumerate() {
            if let Cell::Count(x) = row[j] {
                candidates.push((x, ii, j));
            }
        }
        if candidates.is_empty() {
            for (ii, row) in shown.iter().enumerate() {
                for (jj, c) in row.iter().enumerate() {
                    if let Cell::Count(x) = c {
                        candidates.push((*x, ii, jj));
                    }
                }
            }
        }
        match candidates.into_iter().min() {
            Some((_, a, b)) => shown[a][b] = Cell::Hidden,
            // Everything is hidden: nothing more to do.
            None => break,
        }
    }
    shown
}

/// The first hidden cell whose value a reader can pin down, by propagating the bounds of every
/// row and column equation to a fixpoint; none when every hidden cell keeps two values.
fn audit(v: &[Vec<u64>], shown: &[Vec<Cell>]) -> Option<(usize, usize)> {
    let rows = v.len() - 1;
    let cols = v[0].len() - 1;
    // What a reader knows of the grand total bounds every cell.
    let cap = match shown[rows][cols] {
        Cell::Count(x) => x,
        Cell::Small => SMALL - 1,
        Cell::Hidden => u64::MAX / 4,
    };
    let mut lo = vec![vec![0u64; cols + 1]; rows + 1];
    let mut hi = vec![vec![0u64; cols + 1]; rows + 1];
    for i in 0..=rows {
        for j in 0..=cols {
            (lo[i][j], hi[i][j]) = match shown[i][j] {
                Cell::Count(x) => (x, x),
                Cell::Small => (0, SMALL - 1),
                Cell::Hidden => (SMALL, cap.max(SMALL)),
            };
        }
    }
    // Each line: its cells and its total, as coordinates.
    type At = (usize, usize);
    let mut lines: Vec<(Vec<At>, At)> = Vec::new();
    for i in 0..=rows {
        lines.push(((0..cols).map(|j| (i, j)).collect(), (i, cols)));
    }
    for j in 0..=cols {
        lines.push(((0..rows).map(|i| (i, j)).collect(), (rows, j)));
    }
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds < 1000 {
        changed = false;
        rounds += 1;
        for (cells, total) in &lines {
            let sum_lo: u64 = cells.iter().map(|&(i, j)| lo[i][j]).sum();
            let sum_hi: u64 = cells.iter().map(|&(i, j)| hi[i][j]).fold(0u64, u64::saturating_add);
            let (ti, tj) = *total;
            // The total lies between the sums of its cells' bounds.
            let (new_lo, new_hi) = (lo[ti][tj].max(sum_lo), hi[ti][tj].min(sum_hi));
            if (new_lo, new_hi) != (lo[ti][tj], hi[ti][tj]) {
                (lo[ti][tj], hi[ti][tj]) = (new_lo, new_hi);
                changed = true;
            }
            // Each cell is the total less the others.
            for &(i, j) in cells {
                let others_lo = sum_lo - lo[i][j];
                let others_hi = sum_hi.saturating_sub(hi[i][j]);
                let cell_lo = lo[ti][tj].saturating_sub(others_hi);
                let cell_hi = hi[ti][tj].saturating_sub(others_lo);
                let (new_lo, new_hi) = (lo[i][j].max(cell_lo), hi[i][j].min(cell_hi));
                if (new_lo, new_hi) != (lo[i][j], hi[i][j]) {
                    (lo[i][j], hi[i][j]) = (new_lo, new_hi);
                    changed = true;
                }
            }
        }
    }
    (0..=rows)
        .flat_map(|i| (0..=cols).map(move |j| (i, j)))
        .find(|&(i, j)| !matches!(shown[i][j], Cell::Count(_)) && lo[i][j] >= hi[i][j])
}

/// One day of new cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayCounts {
    pub date: Date,
    pub confirmed: Cell,
    pub asymptomatic: Cell,
    pub total: Cell,
}

/// The latest complete day, in numbers a bulletin can say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bulletin {
    pub date: Date,
    pub confirmed: Cell,
    pub asymptomatic: Cell,
    pub high_zones: usize,
    pub medium_zones: usize,
}

/// The public summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Today, in the deployment's calendar (the counts end the day before: today is not complete).
    pub today: Date,
    pub days: Vec<DayCounts>,
    /// The period's totals.
    pub confirmed: Cell,
    pub asymptomatic: Cell,
    pub total: Cell,
    pub zones: Vec<PublicZone>,
    pub bulletin: Bulletin,
}

/// The public summary over the `days` complete days before today: new confirmed and
/// asymptomatic cases by report date (protected by [`protect`]), the zones in force and the
/// latest day's bulletin.
pub fn summary(dep: &Deployment, days: u32) -> Result<Summary, AppError> {
    let days = days.clamp(1, 366);
    let today = dep.calendar.day_of(dep.clock.now());
    let first = today
        .checked_sub(jiff::Span::new().days(i64::from(days)))
        .map_err(|e| AppError::InvalidArgument { argument: "days", message: e.to_string() })?;
    let mut counts: BTreeMap<Date, [u64; 2]> = BTreeMap::new();
    // Counts kept by the store (a few rows per day, whatever the number of cases).
    for c in dep.store.case_counts(&Scope::All)? {
        let column = match c.classification {
            Classification::Confirmed => 0,
            Classification::Asymptomatic => 1,
            _ => continue,
        };
        if c.reported >= first && c.reported < today {
            counts.entry(c.reported).or_default()[column] += c.n;
        }
    }
    let dates: Vec<Date> = first.series(jiff::Span::new().days(1)).take_while(|d| *d < today).collect();
    let body: Vec<Vec<u64>> = dates.iter().map(|d| counts.get(d).copied().unwrap_or_default().to_vec()).collect();
    let table = protect(&body);
    let day_rows: Vec<DayCounts> = dates
        .iter()
        .zip(&table)
        .map(|(date, r)| DayCounts { date: *date, confirmed: r[0], asymptomatic: r[1], total: r[2] })
        .collect();
    let totals = &table[dates.len()];
    let zones = crate::zones::published(dep)?;
    let last = day_rows.last().expect("at least one day");
    let bulletin = Bulletin {
        date: last.date,
        confirmed: last.confirmed,
        asymptomatic: last.asymptomatic,
        high_zones: zones.iter().filter(|z| z.level == chainbreak_core::model::ZoneLevel::High).count(),
        medium_zones: zones.iter().filter(|z| z.level == chainbreak_core::model::ZoneLevel::Medium).count(),
    };
    Ok(Summary {
        today,
        confirmed: totals[0],
        asymptomatic: totals[1],
        total: totals[2],
        days: day_rows,
        zones,
        bulletin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shown(table: &[Vec<Cell>]) -> Vec<Vec<String>> {
        table.iter().map(|r| r.iter().map(|c| c.text()).collect()).collect()
    }

    #[test]
    fn small_counts_and_what_would_reveal_them_are_hidden() {
        // Row 0 has one small cell: its row total would give it away, so another is hidden.
        let t = protect(&[vec![3, 20], vec![10, 30]]);
        assert_eq!(t[0][0], Cell::Small);
        let hidden = t.iter().flatten().filter(|c| !matches!(c, Cell::Count(_))).count();
        assert!(hidden >= 4, "{:?}", shown(&t));
        assert_eq!(audit_table(&[vec![3, 20], vec![10, 30]], &t), None);
        // Nothing small: everything shown.
        let t = protect(&[vec![7, 20], vec![10, 30]]);
        assert!(t.iter().flatten().all(|c| matches!(c, Cell::Count(_))));
        // Two small cells whose sum pins them (4 + 4 = 8 with each at most 4) are protected too.
        let t = protect(&[vec![4, 4, 10]]);
        assert_eq!(audit_table(&[vec![4, 4, 10]], &t), None);
        assert!(matches!(t[0][3], Cell::Hidden | Cell::Small) || matches!(t[0][2], Cell::Hidden), "{:?}", shown(&t));
    }

    fn audit_table(body: &[Vec<u64>], t: &[Vec<Cell>]) -> Option<(usize, usize)> {
        let rows = body.len();
        let cols = body[0].len();
        let mut v = vec![vec![0u64; cols + 1]; rows + 1];
        for (i, r) in body.iter().enumerate() {
            for (j, &x) in r.iter().enumerate() {
                v[i][j] = x;
                v[i][cols] += x;
                v[rows][j] += x;
                v[rows][cols] += x;
            }
        }
        audit(&v, t)
    }

    /// A brute-force reader: every table of body values within what the display says (small:
    /// 0..=4; hidden: 5..=`cap`) that agrees with every shown cell and every margin; for each
    /// hidden or small cell, the values it takes across them.
    fn readings(t: &[Vec<Cell>], rows: usize, cols: usize, cap: u64) -> Vec<Vec<std::collections::BTreeSet<u64>>> {
        let range = |c: Cell| -> Vec<u64> {
            match c {
                Cell::Count(x) => vec![x],
                Cell::Small => (0..SMALL).collect(),
                Cell::Hidden => (SMALL..=cap).collect(),
            }
        };
        let mut seen = vec![vec![std::collections::BTreeSet::new(); cols + 1]; rows + 1];
        let cells: Vec<(usize, usize)> = (0..rows).flat_map(|i| (0..cols).map(move |j| (i, j))).collect();
        let ranges: Vec<Vec<u64>> = cells.iter().map(|&(i, j)| range(t[i][j])).collect();
        let mut pick = vec![0usize; cells.len()];
        loop {
            let mut v = vec![vec![0u64; cols + 1]; rows + 1];
            for (k, &(i, j)) in cells.iter().enumerate() {
                let x = ranges[k][pick[k]];
                v[i][j] = x;
                v[i][cols] += x;
                v[rows][j] += x;
                v[rows][cols] += x;
            }
            let fits = (0..=rows).all(|i| {
                (0..=cols).all(|j| match t[i][j] {
                    Cell::Count(x) => v[i][j] == x,
                    Cell::Small => v[i][j] < SMALL,
                    Cell::Hidden => v[i][j] >= SMALL,
                })
            });
            if fits {
                for i in 0..=rows {
                    for j in 0..=cols {
                        seen[i][j].insert(v[i][j]);
                    }
                }
            }
            // Next combination.
            let mut k = 0;
            loop {
                if k == cells.len() {
                    return seen;
                }
                pick[k] += 1;
                if pick[k] < ranges[k].len() {
                    break;
                }
                pick[k] = 0;
                k += 1;
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn no_hidden_count_can_be_recovered(
            rows in 1usize..=3,
            cols in 1usize..=2,
            values in prop::collection::vec(prop_oneof![3 => 0u64..5, 2 => 5u64..9], 6),
        ) {
            let body: Vec<Vec<u64>> = (0..rows).map(|i| (0..cols).map(|j| values[i * cols + j]).collect()).collect();
            let t = protect(&body);
            // Shown counts are true; small counts are small; every published value is what the
            // table says.
            for (i, row) in t.iter().enumerate() {
                for (j, c) in row.iter().enumerate() {
                    if let Cell::Count(x) = c { prop_assert!(*x >= SMALL, "{i},{j}"); }
                }
            }
            // The reader's tables include the true one; every hidden or small cell keeps at
            // least two values (a reader limited to values up to 12 already finds them).
            let seen = readings(&t, rows, cols, 12);
            for i in 0..=rows {
                for j in 0..=cols {
                    if !matches!(t[i][j], Cell::Count(_)) {
                        prop_assert!(seen[i][j].len() >= 2, "cell {i},{j} of {body:?} recovered as {:?}: {:?}", seen[i][j], shown(&t));
                    }
                }
            }
        }
    }
}

/// An outline on the public map.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapArea {
    pub id: String,
    pub name: String,
    pub geometry: Option<geojson::Geometry>,
}

/// The public map: the counties the zones lie in (the profile's low-zone level) as the base,
/// and each zone in force with its shape (an area's polygon, a place's point).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicMap {
    pub base: Vec<MapArea>,
    pub zones: Vec<(PublicZone, Option<geojson::Geometry>)>,
}

/// The map of the zones in force.
pub fn map(dep: &Deployment) -> Result<PublicMap, AppError> {
    let features = crate::zones::published_geojson(dep)?;
    let zones_now = crate::zones::published(dep)?;
    let targets: Vec<(&str, &str)> = zones_now.iter().map(|z| (z.target_kind, z.target_id.as_str())).collect();
    let base = base_areas(dep, &targets)?;
    let zones = zones_now.into_iter().zip(features.features.into_iter().map(|f| f.geometry)).collect();
    Ok(PublicMap { base, zones })
}

/// The counties (the profile's low-zone level) that zones on these targets (`area` or `place`,
/// id) lie in: the base of a zone map.
pub fn base_areas(dep: &Deployment, targets: &[(&str, &str)]) -> Result<Vec<MapArea>, AppError> {
    let base_level = dep
        .profile
        .zones
        .levels
        .iter()
        .find(|l| l.level == chainbreak_core::model::ZoneLevel::Low)
        .and_then(|l| l.drawn_at.first().cloned())
        .unwrap_or_else(|| "district".to_string());
    let mut base: BTreeMap<String, MapArea> = BTreeMap::new();
    for (kind, id) in targets {
        // The area the zone lies in: its own, or its place's.
        let start = match *kind {
            "area" => Some(id.to_string()),
            _ => dep.store.place(id)?.and_then(|p| p.area),
        };
        if let Some(area) = crate::zones::area_and_above(dep, start)?.into_iter().find(|a| a.level == base_level) {
            base.entry(area.id.clone()).or_insert(MapArea { id: area.id, name: area.name, geometry: area.geometry });
        }
    }
    Ok(base.into_values().collect())
}
