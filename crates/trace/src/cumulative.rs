//! The cumulative rule (CDC: "a cumulative total of 15 minutes or more over a 24-hour
//! period"): a person is a contact of a source when their overlaps with the source's visits
//! (clipped to its window) at the setting places, counted once where they coincide, add up to
//! at least `total` seconds within some period of `period` seconds.
//!
//! The evidence of a contact is every overlap with the sources it qualifies for: `first` is
//! the least exposure (by start, end, place, source, flags), `last` the one that ends last
//! (ties: the least), and `exposures` the number of (source visit, contact visit) pairs that
//! overlap by more than nothing.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::index::{Index, to_unix};
use crate::venue::{Contact, Exposure, Source};

/// The most of `intervals` (sorted by start, disjoint) that any period of `period` covers.
fn most_in_a_period(intervals: &[(i64, i64)], period: i64) -> i64 {
    let mut best = 0;
    for (i, &(start, _)) in intervals.iter().enumerate() {
        let until = start + period;
        let mut covered = 0;
        for &(a, b) in &intervals[i..] {
            if a >= until {
                break;
            }
            covered += b.min(until) - a;
        }
        best = best.max(covered);
    }
    best
}

/// The union of `spans`, sorted and disjoint.
fn union(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

impl Index {
    /// The contacts of `sources` (survivor, window start) up to `to` (Unix seconds) by the
    /// cumulative rule at the places `setting` accepts, of persons not `excluded`; by person.
    pub fn cumulative_exposures(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        setting: impl Fn(u32) -> bool + Sync,
        total: i64,
        period: i64,
        excluded: &[bool],
    ) -> Vec<Contact> {
        let min_at = |place| setting(place).then_some(1);
        // Everyone with an overlap of more than nothing, then their overlaps one by one.
        let candidates = self.exposures(sources, to, min_at, excluded);
        let visits: Vec<Source> = self.source_visits(sources, to, &min_at);
        let mut contacts: Vec<Contact> = candidates
            .par_iter()
            .filter_map(|c| {
                let mut by_source: FxHashMap<u32, Vec<Exposure>> = FxHashMap::default();
                for key in self.family(c.person) {
                    for b in self.stays_of(key) {
                        let lo = visits.partition_point(|a| a.place < b.place);
                        for a in visits[lo..].iter().take_while(|a| a.place == b.place) {
                            let (start, end) = (a.from.max(b.t_in), a.to.min(b.t_out));
                            if end > start {
                                by_source.entry(a.person()).or_default().push(Exposure {
                                    start: to_unix(start),
                                    end: to_unix(end),
                                    place: b.place,
                                    source: a.person(),
                                    contact_check_out_assumed: b.assumed_check_out(),
                                    source_check_out_assumed: a.open(),
                                });
                            }
                        }
                    }
                }
                let mut found: Option<Contact> = None;
                for exposures in by_source.into_values() {
                    let spans = union(exposures.iter().map(|e| (e.start, e.end)).collect());
                    if most_in_a_period(&spans, period) < total {
                        continue;
                    }
                    for e in exposures {
                        let one = Contact { person: c.person, first: e, last: e, exposures: 1 };
                        match &mut found {
                            Some(f) => f.merge(&one),
                            None => found = Some(one),
                        }
                    }
                }
                found
            })
            .collect();
        contacts.sort_unstable_by_key(|c| c.person);
        contacts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_a_period_covers() {
        assert_eq!(most_in_a_period(&[], 10), 0);
        assert_eq!(most_in_a_period(&[(0, 5), (8, 12), (30, 40)], 10), 10);
        assert_eq!(most_in_a_period(&[(0, 5), (8, 12), (30, 34)], 10), 7);
        assert_eq!(most_in_a_period(&[(0, 5), (8, 12), (30, 40)], 100), 19);
        assert_eq!(union(vec![(5, 9), (0, 6), (10, 11), (11, 12)]), [(0, 9), (10, 12)]);
    }
}
