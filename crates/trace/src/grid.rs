//! Grid co-location (时空伴随): who shared a location cell with a source, from location pings.
//!
//! Cells are H3 hexagons ([`h3o`]) at the resolution whose average area is nearest to a square
//! of the profile's cell side (800 m gives resolution 8, 0.74 km²). A person's consecutive
//! pings in the same cell, each at most `max_gap` after the previous one, make one stay in the
//! cell from the first ping to the last (a lone ping is a stay of no length). The stays form
//! an [`Index`] whose places are cells, so the venue rule's exact sweep answers "in the same
//! cell for at least `min` seconds" (strictly more than 10 minutes: `min` = 601 s).

use h3o::{CellIndex, LatLng, Resolution};
use rustc_hash::FxHashMap;

use crate::index::{Index, IndexBuilder};

/// A ping that is not a WGS 84 coordinate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("({lat}, {lon}) is not a WGS 84 coordinate")]
pub struct BadCoordinate {
    pub lat: f64,
    pub lon: f64,
}

/// The H3 resolution whose average cell area is nearest to a square of side `side_m` metres.
pub fn resolution_for(side_m: u32) -> Resolution {
    let target = f64::from(side_m).powi(2).ln();
    Resolution::range(Resolution::Zero, Resolution::Fifteen)
        .min_by(|a, b| (a.area_m2().ln() - target).abs().total_cmp(&(b.area_m2().ln() - target).abs()))
        .unwrap_or(Resolution::Eight)
}

/// Pings gathered for a [`CellIndex`]-keyed co-presence index.
#[derive(Debug, Clone)]
pub struct GridBuilder {
    resolution: Resolution,
    max_gap: i64,
    /// (person key as recorded, time, cell)
    pings: Vec<(u32, i64, u64)>,
}

/// The grid: stays in cells, and the cells by key.
#[derive(Debug, Clone)]
pub struct Grid {
    pub index: Index,
    cells: Vec<CellIndex>,
}

impl GridBuilder {
    /// Cells of about `side_m` metres; pings more than `max_gap` seconds apart do not join.
    pub fn new(side_m: u32, max_gap: i64) -> Self {
        GridBuilder { resolution: resolution_for(side_m), max_gap, pings: Vec::new() }
    }

    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// Adds a ping of `person` (key as recorded) at `t` (Unix seconds).
    pub fn push(&mut self, person: u32, t: i64, lat: f64, lon: f64) -> Result<(), BadCoordinate> {
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(BadCoordinate { lat, lon });
        }
        let cell = LatLng::new(lat, lon).map_err(|_| BadCoordinate { lat, lon })?.to_cell(self.resolution);
        self.pings.push((person, t, u64::from(cell)));
        Ok(())
    }

    /// The stays, indexed; persons merged as `survivors` says.
    pub fn build(mut self, survivors: Vec<u32>) -> Grid {
        self.pings.sort_unstable();
        self.pings.dedup();
        let mut cells: Vec<u64> = self.pings.iter().map(|p| p.2).collect();
        cells.sort_unstable();
        cells.dedup();
        let key: FxHashMap<u64, u32> = cells.iter().enumerate().map(|(i, c)| (*c, i as u32)).collect();
        let mut builder = IndexBuilder::new(vec![0; cells.len()], 0);
        let mut i = 0;
        while i < self.pings.len() {
            let (person, t_in, cell) = self.pings[i];
            let mut t_out = t_in;
            let mut j = i + 1;
            while let Some(&(p, t, c)) = self.pings.get(j) {
                if p != person || c != cell || t - t_out > self.max_gap {
                    break;
                }
                t_out = t;
                j += 1;
            }
            builder.push(person, key[&cell], t_in, Some(t_out));
            i = j;
        }
        let cells = cells.into_iter().filter_map(|c| CellIndex::try_from(c).ok()).collect();
        Grid { index: builder.build(survivors), cells }
    }
}

impl Grid {
    /// The cell of a key (its place in the index).
    pub fn cell(&self, key: u32) -> Option<CellIndex> {
        self.cells.get(key as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_800_metres_is_resolution_8() {
        assert_eq!(resolution_for(800), Resolution::Eight);
        assert_eq!(resolution_for(300), Resolution::Nine);
        assert!(GridBuilder::new(800, 0).push(0, 0, 91.0, 0.0).is_err());
    }

    #[test]
    fn consecutive_pings_in_a_cell_make_one_stay() {
        let mut b = GridBuilder::new(800, 1800);
        // Person 0: three pings 30 min apart in one cell, then one in a cell ~5 km away, then
        // back after a gap of more than 30 min.
        const T: i64 = 1_646_092_800; // 2022-03-01
        for (t, lat) in [(0, 31.2300), (1800, 31.2301), (3600, 31.2302), (5400, 31.28), (9000, 31.2300)] {
            b.push(0, T + t, lat, 121.47).unwrap();
        }
        // Person 1: in the first cell from 1200 to 3000.
        b.push(1, T + 1200, 31.2300, 121.47).unwrap();
        b.push(1, T + 3000, 31.2300, 121.47).unwrap();
        let g = b.build(vec![0, 1]);
        let mut stays: Vec<(u32, u32, i64, i64)> = (0..2)
            .flat_map(|p| {
                g.index
                    .stays_of(p)
                    .map(move |s| (p, s.place, crate::index::to_unix(s.t_in) - T, crate::index::to_unix(s.t_out) - T))
            })
            .collect();
        stays.sort_unstable_by_key(|s| (s.0, s.2));
        let home = stays[0].1;
        assert_eq!(
            stays,
            [(0, home, 0, 3600), (0, 1 - home, 5400, 5400), (0, home, 9000, 9000), (1, home, 1200, 3000)]
        );
        assert!(g.cell(home).is_some() && g.cell(1 - home) != g.cell(home));
        // Person 1 shared the cell with person 0 for 30 minutes: "more than 10 minutes".
        let contacts = g.index.exposures(&[(0, T)], T + 10_000, |_| Some(601), &[true, false]);
        assert_eq!(contacts.len(), 1);
        assert_eq!((contacts[0].first.start - T, contacts[0].first.end - T), (1200, 3000));
        assert!(g.index.exposures(&[(0, T)], T + 10_000, |_| Some(1801), &[true, false]).is_empty());
    }
}
