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

use rayon::prelude::*;
use rustc_hash::FxHashMap;
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

/// A contact with the evidence that makes them one: the first and the longest exposure, when
/// the last one ended, and how many there were. (Every exposure is not kept: at a busy venue
/// a contact has thousands, and the aggregate is what a tracer reads.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Contact {
    /// The person's survivor key.
    pub person: u32,
    /// The exposure that starts first (ties: the least by every field).
    pub first: Exposure,
    /// The longest exposure (ties: the least by every field).
    pub longest: Exposure,
    /// The latest end of an exposure (Unix seconds).
    pub last_exposure: i64,
    /// How many (source visit, contact visit) pairs are exposures.
    pub exposures: u64,
}

impl Contact {
    fn new(person: u32, e: Exposure) -> Self {
        Contact { person, first: e, longest: e, last_exposure: e.end, exposures: 1 }
    }

    fn add(&mut self, e: Exposure) {
        self.merge(&Contact::new(self.person, e));
    }

    /// Folds in the aggregate of other exposures of the same person (commutative and
    /// associative: the result does not depend on the order of the work).
    fn merge(&mut self, other: &Contact) {
        let e = other.longest;
        self.first = self.first.min(other.first);
        if (std::cmp::Reverse(e.end - e.start), e)
            < (std::cmp::Reverse(self.longest.end - self.longest.start), self.longest)
        {
            self.longest = e;
        }
        self.last_exposure = self.last_exposure.max(other.last_exposure);
        self.exposures += other.exposures;
    }

    /// The start of the first exposure (`e` of the rule).
    pub fn first_exposure(&self) -> i64 {
        self.first.start
    }
}

/// The contacts found, each tier by person key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Traced {
    /// The index persons (survivor keys, deduplicated, sorted).
    pub index_persons: Vec<u32>,
    pub close: Vec<Contact>,
    pub secondary: Vec<Contact>,
}

/// Contacts gathered so far: a dense slot per person key, so that the inner loop does not
/// hash.
struct Found {
    slot: Vec<u32>,
    contacts: Vec<Contact>,
}

impl Found {
    fn new(persons: usize) -> Self {
        Found { slot: vec![u32::MAX; persons], contacts: Vec::new() }
    }

    fn add(&mut self, person: u32, e: Exposure) {
        let slot = &mut self.slot[person as usize];
        if *slot == u32::MAX {
            *slot = self.contacts.len() as u32;
            self.contacts.push(Contact::new(person, e));
        } else {
            self.contacts[*slot as usize].add(e);
        }
    }

    fn absorb(&mut self, other: Found) {
        for c in other.contacts {
            let slot = &mut self.slot[c.person as usize];
            if *slot == u32::MAX {
                *slot = self.contacts.len() as u32;
                self.contacts.push(c);
            } else {
                self.contacts[*slot as usize].merge(&c);
            }
        }
    }

    fn into_contacts(self) -> Vec<Contact> {
        let mut out = self.contacts;
        out.sort_unstable_by_key(|c| c.person);
        out
    }
}

/// One sweep of exposures to some sources, excluding some persons (`excluded[key]`).
struct Scan<'a> {
    index: &'a Index,
    q: &'a VenueOverlap,
    excluded: &'a [bool],
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
            if self.excluded[person as usize] {
                continue;
            }
            self.found.add(
                person,
                Exposure {
                    start: start + EPOCH,
                    end: end + EPOCH,
                    place: a.place,
                    source,
                    contact_check_out_assumed: b.assumed_check_out(),
                    source_check_out_assumed: a.assumed_check_out(),
                },
            );
        }
    }
}

impl Index {
    /// Every exposure to the stays of `sources` (survivor, window start) up to `to`, of persons
    /// not `excluded`, on all cores; the aggregates merge the same whatever the split.
    fn sweep(&self, sources: &[(u32, i64)], q: &VenueOverlap, excluded: &[bool]) -> Vec<Contact> {
        let persons = self.persons();
        let parts = rayon::current_num_threads().max(1);
        let chunk = sources.len().div_ceil(parts).max(1);
        let found = sources
            .par_chunks(chunk)
            .map(|part| {
                let mut scan = Scan { index: self, q, excluded, found: Found::new(persons) };
                for &(p, from) in part {
                    scan.person(p, from, q.to);
                }
                scan.found
            })
            .reduce_with(|mut a, b| {
                a.absorb(b);
                a
            });
        found.map(Found::into_contacts).unwrap_or_default()
    }

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

        let mut excluded = vec![false; self.persons()];
        for &p in &index {
            excluded[p as usize] = true;
        }
        let close = self.sweep(&sources, q, &excluded);
        if q.depth < 2 {
            return Traced { index_persons: index, close, secondary: Vec::new() };
        }
        for c in &close {
            excluded[c.person as usize] = true;
        }
        let sources: Vec<(u32, i64)> = close.iter().map(|c| (c.person, c.first_exposure())).collect();
        let secondary = self.sweep(&sources, q, &excluded);
        Traced { index_persons: index, close, secondary }
    }
}
