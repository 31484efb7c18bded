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

use rustc_hash::FxHashMap;
use serde::Serialize;

use rayon::prelude::*;

use crate::index::{Bits, EPOCH, Index, MAX_PERSON, OPEN, Stay, index_time_clamped, seek};
use crate::sweep::{Group, prefetch};

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

/// The sources of a query as a pass over the places reads them: each source survivor's window
/// start in index time, the set of source persons (read for every stay in the windows: a bit
/// each stays in the cache; the starts are read for the sources only), the earliest start, and
/// the end of the windows.
pub(crate) struct Starts {
    start_of: Vec<u32>,
    is_source: Bits,
    earliest: u32,
    to: u32,
}

impl Starts {
    /// `None` when no source has a start in the index's range.
    pub(crate) fn new(index: &Index, sources: &[(u32, i64)], to: i64) -> Option<Starts> {
        let mut start_of = vec![u32::MAX; index.persons()];
        let mut is_source = Bits::new(index.persons());
        let mut earliest = u32::MAX;
        for &(person, from) in sources {
            if let Some(s) = start_of.get_mut(person as usize) {
                let from = index_time_clamped(from);
                *s = (*s).min(from);
                is_source.insert(person as usize);
                earliest = earliest.min(from);
            }
        }
        (earliest != u32::MAX).then(|| Starts { start_of, is_source, earliest, to: index_time_clamped(to) })
    }
}

/// Working space for reading the sources at a place, reused from place to place.
#[derive(Default)]
pub(crate) struct PlaceScratch {
    /// The positions of the sources' stays among the place's stays in the windows.
    picked: Vec<u32>,
    /// Sources clipped at their window's start, to be merged in by start.
    late: Vec<Source>,
    /// The stays in the windows of persons not excluded: `eligible[..eligible_len]`.
    eligible: Vec<Stay>,
    eligible_len: usize,
}

impl PlaceScratch {
    /// The stays of persons not excluded found by the last [`Index::sources_at`] given the
    /// excluded persons.
    pub(crate) fn eligible(&self) -> &[Stay] {
        &self.eligible[..self.eligible_len]
    }
}

/// A source visit clipped to its window (index time): what contacts are exposed to. Sixteen
/// bytes (a query at city scale reads millions of them): the flag "no check-out" rides in the
/// person's top bit, as in [`Stay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) place: u32,
    /// Start and end, seconds since [`EPOCH`] (a clipped stay's times are a stay's).
    pub(crate) from: u32,
    pub(crate) to: u32,
    person_and_flag: u32,
}

impl Source {
    /// `person`'s stay `a` clipped to `[from, to)` (index time).
    pub(crate) fn clipped(a: &Stay, person: u32, from: u32, to: u32) -> Source {
        let flag = if a.assumed_check_out() { OPEN } else { 0 };
        Source { place: a.place, from, to, person_and_flag: person | flag }
    }

    /// The source person (survivor key).
    pub(crate) fn person(&self) -> u32 {
        self.person_and_flag & MAX_PERSON
    }

    /// Whether the source visit's check-out was assumed.
    pub(crate) fn open(&self) -> bool {
        self.person_and_flag & OPEN != 0
    }

    /// [`Source::first_rank`] as a tuple (the tests check that both order alike).
    #[cfg(test)]
    pub(crate) fn first_key(&self) -> (u32, u32, u32, bool) {
        (self.from, self.to, self.person(), self.open())
    }

    /// [`Source::last_rank`] as a tuple (the tests check that both order alike).
    #[cfg(test)]
    pub(crate) fn last_key(&self) -> (std::cmp::Reverse<u32>, u32, u32, bool) {
        (std::cmp::Reverse(self.to), self.from, self.person(), self.open())
    }

    /// The order the exposure "to the source that began first" is chosen by: start, end,
    /// person, then the flag, as one number.
    #[inline]
    pub(crate) fn first_rank(&self) -> u128 {
        (u128::from(self.from) << 96)
            | (u128::from(self.to) << 64)
            | (u128::from(self.person()) << 32)
            | u128::from(self.open())
    }

    /// The order the exposure "to the source that ended last" is chosen by: the latest end,
    /// then start, person and the flag, as one number.
    #[inline]
    pub(crate) fn last_rank(&self) -> u128 {
        (u128::from(u32::MAX - self.to) << 96)
            | (u128::from(self.from) << 64)
            | (u128::from(self.person()) << 32)
            | u128::from(self.open())
    }

    /// The total order sources are listed in: place, then [`Source::first_rank`].
    fn key(&self) -> (u32, u128) {
        (self.place, self.first_rank())
    }
}

impl PartialOrd for Source {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Source {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
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
    /// A person given twice counts from the earlier start. Sorted (by place, then start).
    pub(crate) fn source_visits(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        min_at: &(impl Fn(u32) -> Option<i64> + Sync),
    ) -> Vec<Source> {
        if self.many_source_visits(sources) {
            let mut visits = self.source_visits_by_place(sources, to, min_at).concat();
            visits.par_sort_unstable();
            visits
        } else {
            self.source_visits_by_person(sources, to, min_at)
        }
    }

    /// [`Index::source_visits`], reading each source person's visits.
    pub(crate) fn source_visits_by_person(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        min_at: &(impl Fn(u32) -> Option<i64> + Sync),
    ) -> Vec<Source> {
        let mut starts: Vec<(u32, i64)> = sources.to_vec();
        starts.sort_unstable();
        starts.dedup_by_key(|s| s.0);
        let to = index_time_clamped(to);
        let mut out = Vec::new();
        for &(person, from) in &starts {
            let from = index_time_clamped(from);
            for key in self.family(person) {
                for a in self.stays_of(key) {
                    let Some(min) = min_at(a.place) else { continue };
                    let (a_from, a_to) = (from.max(a.t_in), to.min(a.t_out));
                    if a_to > a_from && i64::from(a_to - a_from) >= min {
                        out.push(Source::clipped(a, person, a_from, a_to));
                    }
                }
            }
        }
        if out.len() > 1 << 16 {
            out.par_sort_unstable();
        } else {
            out.sort_unstable();
        }
        out
    }

    /// [`Index::source_visits`], in one pass over every place's visits in the windows, places
    /// spread over cores (a run per range of places). Within a place the sources are in order
    /// of start only (what the sweep needs), ties as the index lists their stays.
    pub(crate) fn source_visits_by_place(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        min_at: &(impl Fn(u32) -> Option<i64> + Sync),
    ) -> Vec<Vec<Source>> {
        let Some(starts) = Starts::new(self, sources, to) else { return Vec::new() };
        let parts = self.place_ranges(4 * rayon::current_num_threads());
        let starts = &starts;
        parts
            .into_par_iter()
            .map(|places| {
                let (mut out, mut w) = (Vec::new(), PlaceScratch::default());
                for place in places {
                    if let Some(min) = min_at(place) {
                        self.sources_at(place, min, starts, &mut out, &mut w, None);
                    }
                }
                out
            })
            .collect()
    }

    /// Appends to `out` the sources at `place` (at least `min` long in their windows), in
    /// order of start. Given `excluded`, also lists in `w.eligible` the place's stays in the
    /// windows of persons not excluded: the only candidates a sweep needs to look at.
    pub(crate) fn sources_at(
        &self,
        place: u32,
        min: i64,
        starts: &Starts,
        out: &mut Vec<Source>,
        w: &mut PlaceScratch,
        excluded: Option<&Bits>,
    ) {
        let Starts { start_of, is_source, earliest, to } = starts;
        let (merged, to) = (self.has_merges(), *to);
        let all = self.stays_at(place);
        // A visit ending after the earliest start began at most the longest stay before it;
        // one beginning after `to` has nothing in any window nor touches any source (one
        // beginning at `to` is no source, but touches those ending then).
        let lo = seek(all, earliest.saturating_sub(self.max_stay(place)));
        let window = &all[lo..lo + seek(&all[lo..], to.saturating_add(1))];
        // The sources' stays picked out first without a branch (a third of the stays, in no
        // pattern a branch predictor could learn), then read with their starts.
        if w.picked.len() < window.len() {
            w.picked.resize(window.len(), 0);
        }
        let mut n = 0;
        match excluded {
            None => {
                for (i, a) in window.iter().enumerate() {
                    w.picked[n] = i as u32;
                    n += usize::from(is_source.contains(self.counted(a, merged) as usize));
                }
            }
            Some(excluded) => {
                if w.eligible.len() < window.len() {
                    w.eligible.resize(window.len(), *window.first().expect("not empty"));
                }
                let mut e = 0;
                for (i, a) in window.iter().enumerate() {
                    let person = self.counted(a, merged) as usize;
                    w.picked[n] = i as u32;
                    n += usize::from(is_source.contains(person));
                    w.eligible[e] = *a;
                    e += usize::from(!excluded.contains(person));
                }
                w.eligible_len = e;
            }
        }
        let first = out.len();
        for (j, &i) in w.picked[..n].iter().enumerate() {
            if let Some(&ahead) = w.picked[..n].get(j + 8) {
                prefetch(&start_of[self.counted(&window[ahead as usize], merged) as usize]);
            }
            let a = &window[i as usize];
            let person = self.counted(a, merged);
            let from = start_of[person as usize];
            let (a_from, a_to) = (from.max(a.t_in), to.min(a.t_out));
            if a_to > a_from && i64::from(a_to - a_from) >= min {
                // In order of start already, but for visits clipped at their window's start:
                // those are set aside and merged in.
                let to_list = if a_from == a.t_in { &mut *out } else { &mut w.late };
                to_list.push(Source::clipped(a, person, a_from, a_to));
            }
        }
        merge_by_start(out, first, &mut w.late);
    }

    /// Every exposure to the stays of `sources` (survivor, window start) up to `to` (Unix
    /// seconds), of persons not `excluded`, at the places where `min_at(place)` gives the least
    /// overlap (`None`: the place is not a setting of this category). Source visits are grouped
    /// by place and nearby time and each group swept once ([`crate::sweep`]); the groups are
    /// split over cores by their number of candidate stays, and the per-person aggregates merge
    /// the same whatever the split.
    pub fn exposures(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        min_at: impl Fn(u32) -> Option<i64> + Sync,
        excluded: &[bool],
    ) -> Vec<Contact> {
        self.exposures_in(sources, to, min_at, excluded, None)
    }

    /// [`Index::exposures`] with the sweep's work in `parts` parts (default: by its size).
    pub(crate) fn exposures_in(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        min_at: impl Fn(u32) -> Option<i64> + Sync,
        excluded: &[bool],
        parts: Option<usize>,
    ) -> Vec<Contact> {
        if self.many_source_visits(sources) {
            self.exposures_by_place(sources, to, &min_at, excluded, parts)
        } else {
            self.exposures_by_person(sources, to, &min_at, excluded, parts)
        }
    }

    /// Whether the sources' visits are many (more than a 32nd of the index): then one pass
    /// over the places is cheaper than a random read per visit, a sort of them all and the
    /// merge of the cores' sums. (At a million persons: 3.2 million source visits, K=10's,
    /// took 204 ms this way against 286 ms person by person; 0.46 million, K=1's, 125 ms
    /// against 110 ms.)
    fn many_source_visits(&self, sources: &[(u32, i64)]) -> bool {
        // Counted until the answer is known (at city scale the close contacts are many).
        let enough = self.len() / 32;
        let mut visits = 0;
        sources.iter().flat_map(|&(person, _)| self.family(person)).any(|key| {
            visits += self.stay_count(key);
            visits > enough
        })
    }

    /// [`Index::exposures_in`], reading the sources' visits person by person, then sweeping
    /// their groups.
    pub(crate) fn exposures_by_person(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        min_at: &(impl Fn(u32) -> Option<i64> + Sync),
        excluded: &[bool],
        parts: Option<usize>,
    ) -> Vec<Contact> {
        let visits = self.source_visits_by_person(sources, to, min_at);
        self.sweep(&self.groups(&visits, min_at), excluded, parts)
    }

    /// [`Index::exposures_in`], in one pass over the places ([`Index::sweep_places`]).
    pub(crate) fn exposures_by_place(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        min_at: &(impl Fn(u32) -> Option<i64> + Sync),
        excluded: &[bool],
        parts: Option<usize>,
    ) -> Vec<Contact> {
        match Starts::new(self, sources, to) {
            Some(starts) => self.sweep_places(&starts, min_at, excluded, parts),
            None => Vec::new(),
        }
    }

    /// The groups of `visits` (sorted, whole places): consecutive sources at a place whose
    /// candidate ranges overlap (a source's candidates check in between
    /// `from + min − longest stay` and `to − min`), with their candidates.
    pub(crate) fn groups<'a>(&'a self, visits: &'a [Source], min_at: &impl Fn(u32) -> Option<i64>) -> Vec<Group<'a>> {
        self.groups_among(visits, min_at, None)
    }

    /// [`Index::groups`], their candidates taken from `among` when given (some of the stays
    /// at the one place of `visits`, by check-in) instead of all the place's stays.
    pub(crate) fn groups_among<'a>(
        &'a self,
        visits: &'a [Source],
        min_at: &impl Fn(u32) -> Option<i64>,
        among: Option<&'a [Stay]>,
    ) -> Vec<Group<'a>> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut start = 0;
        let mut reach = i64::MIN; // the latest `to` of the open group
        for (i, a) in visits.iter().enumerate() {
            let min = min_at(a.place).unwrap_or(0);
            let joins = i > start
                && a.place == visits[start].place
                && i64::from(a.from) + min - i64::from(self.max_stay(a.place)) <= reach - min;
            if !joins {
                if i > start {
                    spans.push((start, i));
                }
                start = i;
                reach = i64::MIN;
            }
            reach = reach.max(i64::from(a.to));
        }
        if start < visits.len() {
            spans.push((start, visits.len()));
        }
        spans
            .into_iter()
            .filter_map(|(from, until)| {
                let group = &visits[from..until];
                let min = min_at(group[0].place).expect("only the visits at settings are sources");
                let first = group.iter().map(|a| i64::from(a.from)).min().expect("a group is not empty");
                let last = group.iter().map(|a| i64::from(a.to)).max().expect("a group is not empty");
                let place = group[0].place;
                let candidates = match among {
                    Some(stays) => self.candidates_among(stays, place, first, last, min),
                    None => self.candidates(place, first, last, min),
                };
                (!candidates.is_empty()).then_some(Group { sources: group, min, candidates })
            })
            .collect()
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

/// Merges `late` (in any order) into `out[first..]` (in order of start), by start; empties
/// `late`. Ties keep `out`'s first, then `late`'s in their order: the same input gives the same
/// output.
fn merge_by_start(out: &mut Vec<Source>, first: usize, late: &mut Vec<Source>) {
    if late.is_empty() {
        return;
    }
    late.sort_by_key(|s| s.from);
    let (mut i, mut j) = (out.len(), late.len());
    out.extend_from_slice(late);
    let mut w = out.len();
    while j > 0 {
        w -= 1;
        if i > first && out[i - 1].from > late[j - 1].from {
            i -= 1;
            out[w] = out[i];
        } else {
            j -= 1;
            out[w] = late[j];
        }
    }
    late.clear();
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
                if exposed == a.person() {
                    continue;
                }
                let (start, end) = (i64::from(a.from.max(b.t_in)), i64::from(a.to.min(b.t_out)));
                if end - start < min {
                    continue;
                }
                let e = Exposure {
                    start: start + EPOCH,
                    end: end + EPOCH,
                    place,
                    source: a.person(),
                    contact_check_out_assumed: b.assumed_check_out(),
                    source_check_out_assumed: a.open(),
                };
                found
                    .entry((a.person(), exposed))
                    .and_modify(|l| {
                        l.first = l.first.min(e);
                        l.exposures += 1;
                    })
                    .or_insert(Link { source: a.person(), exposed, first: e, exposures: 1 });
            }
        }
        found.into_values().collect()
    }
}
