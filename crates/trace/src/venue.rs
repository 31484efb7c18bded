//! The plain venue rule (`venue-overlap`): every place is a close-contact setting.
//!
//! Exactly: an index person's visit `a` is clipped to the window `[W0, W1)` (a visit with no
//! time left in it is dropped); another person's visit `b` at the same place is an exposure
//! when `min(a.t_out, b.t_out) − max(a.t_in, b.t_in) ≥ min_overlap`. Close contacts are the
//! persons, not index persons, with an exposure; a close contact's first exposure `e` is the
//! earliest `max(a.t_in, b.t_in)`. Secondary contacts (depth 2) are the persons, neither index
//! persons nor close contacts, exposed in the same way to any visit of a close contact clipped
//! to `[e, W1)`. Visits without a check-out have the assumed stay of their place's kind (see
//! [`crate::index`]). Persons are counted as their merge survivors.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::index::{EPOCH, Index, Stay};

/// An index person and the start of their window (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexPerson {
    pub person: u32,
    pub from: i64,
}

/// A venue-overlap query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueOverlap {
    /// The end of every window (exclusive), Unix seconds: isolation, or the end of the data.
    pub to: i64,
    /// The least overlap that is an exposure, in seconds (0: any overlap, touching included).
    pub min_overlap: i64,
    /// 1: close contacts; 2: close and secondary contacts.
    pub depth: u8,
}

/// One exposure: the contact and `source` (an index person, or for secondary contacts the
/// close contact) were both at `place` from `start` to `end` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Exposure {
    pub start: i64,
    pub end: i64,
    pub place: u32,
    /// The person (survivor key) the contact was exposed to.
    pub source: u32,
    /// The contact's visit had no check-out: its end was assumed.
    pub contact_check_out_assumed: bool,
    /// The source's visit had no check-out: its end was assumed.
    pub source_check_out_assumed: bool,
}

/// A contact with the evidence that makes them one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    /// The person's survivor key.
    pub person: u32,
    /// The earliest exposure start (Unix seconds).
    pub first_exposure: i64,
    /// The latest exposure end (Unix seconds).
    pub last_exposure: i64,
    /// Every exposure, by start, without repeats.
    pub exposures: Vec<Exposure>,
}

/// The contacts found, each tier by person key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Traced {
    /// The index persons (survivor keys, deduplicated, sorted).
    pub index_persons: Vec<u32>,
    pub close: Vec<Contact>,
    pub secondary: Vec<Contact>,
}

/// Exposures gathered per person.
#[derive(Default)]
struct Found(FxHashMap<u32, Vec<Exposure>>);

impl Found {
    fn into_contacts(self) -> Vec<Contact> {
        let mut out: Vec<Contact> = self
            .0
            .into_iter()
            .map(|(person, mut exposures)| {
                exposures.sort_unstable();
                exposures.dedup();
                let first_exposure = exposures.iter().map(|e| e.start).min().unwrap_or_default();
                let last_exposure = exposures.iter().map(|e| e.end).max().unwrap_or_default();
                Contact { person, first_exposure, last_exposure, exposures }
            })
            .collect();
        out.sort_unstable_by_key(|c| c.person);
        out
    }
}

/// One sweep of exposures to some sources, excluding some persons.
struct Scan<'a> {
    index: &'a Index,
    q: &'a VenueOverlap,
    excluded: &'a dyn Fn(u32) -> bool,
    found: Found,
}

impl Scan<'_> {
    /// Exposures to the stays of the survivor `source`, clipped to `[from, to)` (Unix seconds).
    fn person(&mut self, source: u32, from: i64, to: i64) {
        let (from, to) = (from - EPOCH, to - EPOCH);
        for key in self.index.family(source) {
            for a in self.index.stays_of(key) {
                let (a_from, a_to) = (from.max(i64::from(a.t_in)), to.min(i64::from(a.t_out)));
                if a_to <= a_from {
                    continue; // no time in the window
                }
                self.stay(a, a_from, a_to, source);
            }
        }
    }

    /// Exposures to the stay `a` of `source`, clipped to `[from, to)` (index time).
    fn stay(&mut self, a: &Stay, from: i64, to: i64, source: u32) {
        let min = self.q.min_overlap;
        for b in self.index.candidates(a.place, from, to, min) {
            let start = from.max(i64::from(b.t_in));
            let end = to.min(i64::from(b.t_out));
            if end - start < min {
                continue;
            }
            let person = self.index.survivor(b.person());
            if (self.excluded)(person) {
                continue;
            }
            self.found.0.entry(person).or_default().push(Exposure {
                start: start + EPOCH,
                end: end + EPOCH,
                place: a.place,
                source,
                contact_check_out_assumed: b.assumed_check_out(),
                source_check_out_assumed: a.assumed_check_out(),
            });
        }
    }
}

impl Index {
    /// The plain venue rule for index persons (person keys; merged ones count as their
    /// survivors, a person given twice from the earlier start).
    pub fn venue_overlap(&self, index_persons: &[IndexPerson], q: &VenueOverlap) -> Traced {
        let mut starts: FxHashMap<u32, i64> = FxHashMap::default();
        for ip in index_persons {
            let from = starts.entry(self.survivor(ip.person)).or_insert(ip.from);
            *from = (*from).min(ip.from);
        }
        let mut sources: Vec<(u32, i64)> = starts.into_iter().collect();
        sources.sort_unstable();
        let index: Vec<u32> = sources.iter().map(|(p, _)| *p).collect();
        let index_set: FxHashSet<u32> = index.iter().copied().collect();

        let is_index = |x: u32| index_set.contains(&x);
        let mut scan = Scan { index: self, q, excluded: &is_index, found: Found::default() };
        for &(p, from) in &sources {
            scan.person(p, from, q.to);
        }
        let close = scan.found.into_contacts();
        if q.depth < 2 {
            return Traced { index_persons: index, close, secondary: Vec::new() };
        }

        let close_set: FxHashSet<u32> = close.iter().map(|c| c.person).collect();
        let excluded = |x: u32| index_set.contains(&x) || close_set.contains(&x);
        let mut scan = Scan { index: self, q, excluded: &excluded, found: Found::default() };
        for c in &close {
            scan.person(c.person, c.first_exposure, q.to);
        }
        let secondary = scan.found.into_contacts();
        Traced { index_persons: index, close, secondary }
    }
}
