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

/// A contact with the evidence that makes them one: their first and their last exposure and
/// how many there were. (Every exposure is not kept: at a busy venue a contact has thousands,
/// and the aggregate is what a tracer reads.)
///
/// For each visit of the contact, the exposures it has are summed up by two: the one to the
/// source visit that began first (ties: ended first, then the least source key) and the one to
/// the source visit that ended last (ties: began first, then the least source key). Over all
/// the contact's visits, `first` is the least of the former by every field (so it starts
/// first) and `last` the latest-ending of the latter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Contact {
    /// The person's survivor key.
    pub person: u32,
    /// The exposure that starts first; its start is the `e` of the rule.
    pub first: Exposure,
    /// The exposure that ends last (ties: the least by every field).
    pub last: Exposure,
    /// How many (source visit, contact visit) pairs are exposures.
    pub exposures: u64,
}

/// The order `last` is chosen by: the latest end first, then the least by every field.
fn last_key(e: &Exposure) -> (std::cmp::Reverse<i64>, Exposure) {
    (std::cmp::Reverse(e.end), *e)
}

impl Contact {
    /// Folds in the aggregate of other exposures of the same person (commutative and
    /// associative: the result does not depend on the order of the work).
    pub(crate) fn merge(&mut self, other: &Contact) {
        self.first = self.first.min(other.first);
        if last_key(&other.last) < last_key(&self.last) {
            self.last = other.last;
        }
        self.exposures += other.exposures;
    }

    /// The start of the first exposure (`e` of the rule).
    pub fn first_exposure(&self) -> i64 {
        self.first.start
    }

    /// The end of the last exposure.
    pub fn last_exposure(&self) -> i64 {
        self.last.end
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

    fn add(&mut self, c: Contact) {
        let slot = &mut self.slot[c.person as usize];
        if *slot == u32::MAX {
            *slot = self.contacts.len() as u32;
            self.contacts.push(c);
        } else {
            self.contacts[*slot as usize].merge(&c);
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

/// A source visit clipped to its window (index time): what contacts are exposed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Source {
    pub(crate) place: u32,
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) person: u32,
    pub(crate) open: bool,
}

impl Source {
    /// The order the exposure "to the source that began first" is chosen by.
    fn first_key(&self) -> (i64, i64, u32, bool) {
        (self.from, self.to, self.person, self.open)
    }

    /// The order the exposure "to the source that ended last" is chosen by.
    fn last_key(&self) -> (std::cmp::Reverse<i64>, i64, u32, bool) {
        (std::cmp::Reverse(self.to), self.from, self.person, self.open)
    }
}

/// A Fenwick tree counting values by rank.
struct Counts(Vec<u32>);

impl Counts {
    fn add(&mut self, rank: usize) {
        let mut i = rank + 1;
        while i < self.0.len() {
            self.0[i] += 1;
            i += i & i.wrapping_neg();
        }
    }

    /// How many values have a rank below `rank`.
    fn below(&self, rank: usize) -> u32 {
        let (mut i, mut n) = (rank, 0);
        while i > 0 {
            n += self.0[i];
            i -= i & i.wrapping_neg();
        }
        n
    }
}

impl Index {
    /// Index persons as the rules count them: each survivor once, from their earliest start,
    /// by key.
    pub fn sources(&self, index_persons: &[IndexPerson]) -> Vec<(u32, i64)> {
        let mut starts: FxHashMap<u32, i64> = FxHashMap::default();
        for ip in index_persons {
            let from = starts.entry(self.survivor(ip.person)).or_insert(ip.from);
            *from = (*from).min(ip.from);
        }
        let mut sources: Vec<(u32, i64)> = starts.into_iter().collect();
        sources.sort_unstable();
        sources
    }

    /// The clipped visits of `sources` (survivor, window start) up to `to` (Unix seconds) that
    /// can expose anyone: at least `min` long inside the window.
    pub(crate) fn source_visits(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        min_at: &(impl Fn(u32) -> Option<i64> + Sync),
    ) -> Vec<Source> {
        let mut out = Vec::new();
        for &(person, from) in sources {
            let (from, to) = (from - EPOCH, to - EPOCH);
            for key in self.family(person) {
                for a in self.stays_of(key) {
                    let Some(min) = min_at(a.place) else { continue };
                    let (a_from, a_to) = (from.max(i64::from(a.t_in)), to.min(i64::from(a.t_out)));
                    if a_to > a_from && a_to - a_from >= min {
                        out.push(Source {
                            place: a.place,
                            from: a_from,
                            to: a_to,
                            person,
                            open: a.assumed_check_out(),
                        });
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The exposures to a group of sources at one place (sorted by `from`, their candidate
    /// ranges overlapping), in three sweeps over the candidates instead of one scan per source:
    /// a visit `b` is exposed to a source `a` exactly when `a.from ≤ b.t_out − min` and
    /// `a.to ≥ b.t_in + min` (both visits being at least `min` long).
    fn sweep_group(&self, group: &[Source], min: i64, excluded: &[bool], found: &mut Found) {
        let place = group[0].place;
        let from = group.iter().map(|a| a.from).min().expect("a group is not empty");
        let to = group.iter().map(|a| a.to).max().expect("a group is not empty");
        let candidates: Vec<&Stay> = self
            .candidates(place, from, to, min)
            .iter()
            .filter(|b| i64::from(b.t_out) - i64::from(b.t_in) >= min && !excluded[self.survivor(b.person()) as usize])
            .collect();
        if candidates.is_empty() {
            return;
        }
        let n = candidates.len();

        // 1. The first-beginning qualifying source: candidates by t_in descending, sources by
        //    `to` descending; the least `first_key` among sources with to ≥ t_in + min
        //    qualifies when its `from` ≤ t_out − min.
        let mut by_to: Vec<&Source> = group.iter().collect();
        by_to.sort_unstable_by_key(|a| std::cmp::Reverse(a.to));
        let mut first: Vec<Option<&Source>> = vec![None; n];
        let mut best: Option<&Source> = None;
        let mut next = 0;
        for i in (0..n).rev() {
            let b = candidates[i];
            let y = i64::from(b.t_in) + min;
            while next < by_to.len() && by_to[next].to >= y {
                let a = by_to[next];
                if best.is_none_or(|x| a.first_key() < x.first_key()) {
                    best = Some(a);
                }
                next += 1;
            }
            if let Some(a) = best
                && a.from <= i64::from(b.t_out) - min
            {
                first[i] = Some(a);
            }
        }

        // 2. and 3. By t_out ascending, sources by `from` ascending: the latest-ending source
        //    with from ≤ t_out − min qualifies when its `to` ≥ t_in + min; the count of those
        //    with to ≥ t_in + min comes from a Fenwick tree over the ranks of `to`.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_unstable_by_key(|&i| candidates[i].t_out);
        let mut tos: Vec<i64> = group.iter().map(|a| a.to).collect();
        tos.sort_unstable();
        tos.dedup();
        let mut counts = Counts(vec![0; tos.len() + 1]);
        let mut latest: Option<&Source> = None;
        let mut inserted = 0u32;
        let mut next = 0;
        for &i in &order {
            let b = candidates[i];
            let Some(first_a) = first[i] else { continue };
            let x = i64::from(b.t_out) - min;
            while next < group.len() && group[next].from <= x {
                let a = &group[next];
                if latest.is_none_or(|l| a.last_key() < l.last_key()) {
                    latest = Some(a);
                }
                counts.add(tos.partition_point(|t| *t < a.to));
                inserted += 1;
                next += 1;
            }
            let y = i64::from(b.t_in) + min;
            let last_a = latest.expect("the first qualifying source was inserted");
            debug_assert!(last_a.to >= y, "the first qualifying source ends late enough, so does the latest");
            let pairs = inserted - counts.below(tos.partition_point(|t| *t < y));
            let exposure = |a: &Source| Exposure {
                start: a.from.max(i64::from(b.t_in)) + EPOCH,
                end: a.to.min(i64::from(b.t_out)) + EPOCH,
                place,
                source: a.person,
                contact_check_out_assumed: b.assumed_check_out(),
                source_check_out_assumed: a.open,
            };
            found.add(Contact {
                person: self.survivor(b.person()),
                first: exposure(first_a),
                last: exposure(last_a),
                exposures: u64::from(pairs),
            });
        }
    }

    /// Every exposure to the stays of `sources` (survivor, window start) up to `to` (Unix
    /// seconds), of persons not `excluded`, at the places where `min_at(place)` gives the least
    /// overlap (`None`: the place is not a setting of this category). Source visits are grouped
    /// by place and nearby time, each group swept once, groups spread over cores; the
    /// aggregates merge the same whatever the split.
    pub fn exposures(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        min_at: impl Fn(u32) -> Option<i64> + Sync,
        excluded: &[bool],
    ) -> Vec<Contact> {
        let visits = self.source_visits(sources, to, &min_at);
        // Groups: consecutive sources at a place whose candidate ranges overlap (a source's
        // candidates check in between `from + min − longest stay` and `to − min`).
        let mut groups: Vec<&[Source]> = Vec::new();
        let mut start = 0;
        let mut reach = i64::MIN; // the latest `to` of the open group
        for (i, a) in visits.iter().enumerate() {
            let min = min_at(a.place).unwrap_or(0);
            let joins = i > start
                && a.place == visits[start].place
                && a.from + min - i64::from(self.max_stay(a.place)) <= reach - min;
            if !joins {
                if i > start {
                    groups.push(&visits[start..i]);
                }
                start = i;
                reach = i64::MIN;
            }
            reach = reach.max(a.to);
        }
        if start < visits.len() {
            groups.push(&visits[start..]);
        }
        let persons = self.persons();
        let parts = rayon::current_num_threads().max(1);
        let chunk = groups.len().div_ceil(parts).max(1);
        let found = groups
            .par_chunks(chunk)
            .map(|part| {
                let mut found = Found::new(persons);
                for group in part {
                    let min = min_at(group[0].place).expect("only the visits at settings are sources");
                    self.sweep_group(group, min, excluded, &mut found);
                }
                found
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
        let sources = self.sources(index_persons);
        let index: Vec<u32> = sources.iter().map(|(p, _)| *p).collect();

        let mut excluded = vec![false; self.persons()];
        for &p in &index {
            excluded[p as usize] = true;
        }
        let min_at = |_| Some(q.min_overlap);
        let close = self.exposures(&sources, q.to, min_at, &excluded);
        if q.depth < 2 {
            return Traced { index_persons: index, close, secondary: Vec::new() };
        }
        for c in &close {
            excluded[c.person as usize] = true;
        }
        let sources: Vec<(u32, i64)> = close.iter().map(|c| (c.person, c.first_exposure())).collect();
        let secondary = self.exposures(&sources, q.to, min_at, &excluded);
        Traced { index_persons: index, close, secondary }
    }
}

/// A link between two index persons: `exposed` was exposed (by the same rule) to `source`
/// while `source` was infectious, so `source` could have infected `exposed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Link {
    pub source: u32,
    pub exposed: u32,
    /// The exposure that starts first (ties: the least by every field).
    pub first: Exposure,
    /// How many (source visit, exposed visit) pairs are exposures.
    pub exposures: u64,
}

impl Index {
    /// The links between index persons (who could have infected whom): each ordered pair with
    /// an exposure of the second to a visit of the first inside the first's window. Only the
    /// index persons' own visits are compared, place by place.
    pub fn links(&self, index_persons: &[IndexPerson], q: &VenueOverlap) -> Vec<Link> {
        let sources = self.sources(index_persons);
        let clipped = self.source_visits(&sources, q.to, &|_| Some(q.min_overlap));
        // The index persons' own visits, unclipped, by place.
        let mut own: Vec<(u32, &Stay, u32)> = Vec::new();
        for &(person, _) in &sources {
            for key in self.family(person) {
                own.extend(self.stays_of(key).map(|s| (s.place, s, person)));
            }
        }
        own.sort_unstable_by_key(|(place, s, person)| (*place, s.t_in, *person));
        let mut found: std::collections::BTreeMap<(u32, u32), Link> = std::collections::BTreeMap::new();
        let min = q.min_overlap;
        for a in &clipped {
            let lo = own.partition_point(|(place, ..)| *place < a.place);
            for &(place, b, exposed) in own[lo..].iter().take_while(|(place, ..)| *place == a.place) {
                if exposed == a.person {
                    continue;
                }
                let (start, end) = (a.from.max(i64::from(b.t_in)), a.to.min(i64::from(b.t_out)));
                if end - start < min {
                    continue;
                }
                let e = Exposure {
                    start: start + EPOCH,
                    end: end + EPOCH,
                    place,
                    source: a.person,
                    contact_check_out_assumed: b.assumed_check_out(),
                    source_check_out_assumed: a.open,
                };
                found
                    .entry((a.person, exposed))
                    .and_modify(|l| {
                        l.first = l.first.min(e);
                        l.exposures += 1;
                    })
                    .or_insert(Link { source: a.person, exposed, first: e, exposures: 1 });
            }
        }
        found.into_values().collect()
    }
}
