//! The sweep behind every place rule: the exposures of the stays at a place to a group of
//! source visits there, summed up per person.
//!
//! A stay `b` (at least `min` long) is exposed to a source `a` (a clipped visit, at least `min`
//! long) exactly when `a.from ≤ x` and `a.to ≥ y`, with `x = b.t_out − min` and
//! `y = b.t_in + min`. A source that ends before `y` began before `x` (it is `min` long and `b`
//! is too), so the number of sources `b` is exposed to is `#(from ≤ x) − #(to < y)`: two counts
//! on sorted arrays. The source that began first among those exposing `b` is the least (by
//! [`Source::first_rank`]) of the sources with `to ≥ y`: in order of start, the first source
//! with `to ≥ y` and the sources starting with it; the one that ended last is the least (by
//! [`Source::last_rank`]) of those with `from ≤ x`: a prefix minimum over the sources by `from`.
//! Stays come sorted by check-in, so `y` only grows: `#(to < y)` and the first source with
//! `to ≥ y` are moving pointers; `#(from ≤ x)` is a search without branches.
//!
//! The sums per person live in dense arrays (one per part of the work, reused from query to
//! query), and parts merge by commutative rules, so the answer does not depend on the split.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::index::{Bits, EPOCH, Index, Stay};
use crate::venue::{Contact, Exposure, PlaceScratch, Source, Starts};

/// The sources of one place whose candidate stays overlap, and those stays (sorted by
/// check-in).
pub(crate) struct Group<'a> {
    pub(crate) sources: &'a [Source],
    pub(crate) min: i64,
    pub(crate) candidates: &'a [Stay],
}

/// An exposure in index time, ordered as [`Exposure`] is (start, end, place, source, then
/// the contact's and the source's assumed check-outs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Ex {
    start: u32,
    end: u32,
    place: u32,
    source: u32,
    /// Bit 1: the contact's check-out was assumed; bit 0: the source's.
    flags: u8,
}

impl Ex {
    /// The exposure of stay `b` to source `a` (which overlap).
    fn of(a: &Source, b: &Stay) -> Ex {
        // Sources are clipped stays: their times lie in the index's u32 range.
        Ex {
            start: a.from.max(b.t_in),
            end: a.to.min(b.t_out),
            place: a.place,
            source: a.person(),
            flags: (u8::from(b.assumed_check_out()) << 1) | u8::from(a.open()),
        }
    }

    /// Whether `self` comes before `other` in the order the last exposure is chosen by: the
    /// latest end, then the least by every field.
    fn ends_later(&self, other: &Ex) -> bool {
        (std::cmp::Reverse(self.end), self) < (std::cmp::Reverse(other.end), other)
    }

    fn exposure(&self) -> Exposure {
        Exposure {
            start: i64::from(self.start) + EPOCH,
            end: i64::from(self.end) + EPOCH,
            place: self.place,
            source: self.source,
            contact_check_out_assumed: self.flags & 2 != 0,
            source_check_out_assumed: self.flags & 1 != 0,
        }
    }
}

/// One person's sums, set in the query whose number is `query` (a slot of an earlier query
/// is empty: emptying the sums for the next query writes nothing).
/// A cache line each: the 52 bytes aligned so that an update, which the sweep makes at random
/// among a million persons, reads and writes one line and never two.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Sum {
    exposures: u64,
    first: Ex,
    last: Ex,
    query: u32,
}

impl Sum {
    /// The contact `person` with these sums.
    fn contact(&self, person: u32) -> Contact {
        Contact { person, first: self.first.exposure(), last: self.last.exposure(), exposures: self.exposures }
    }

    fn fold(&mut self, exposures: u64, first: Ex, last: Ex) {
        self.exposures += exposures;
        if first < self.first {
            self.first = first;
        }
        if last.ends_later(&self.last) {
            self.last = last;
        }
    }
}

/// The sums of one part of the work: a slot per person key, the keys touched, and the number
/// of the query (slots of other numbers are empty; never 0, the number of a fresh slot).
#[derive(Debug)]
pub(crate) struct Sums {
    by_person: Vec<Sum>,
    touched: Vec<u32>,
    query: u32,
}

impl Default for Sums {
    fn default() -> Self {
        Sums { by_person: Vec::new(), touched: Vec::new(), query: 1 }
    }
}

/// How many candidate stays ahead a sweep asks for the sums it will update.
const AHEAD: usize = 12;

/// Asks the processor to bring `value` into the cache (a hint: it reads nothing and never
/// fails).
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that cannot fault or change memory, of a reference's address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

impl Sums {
    /// Brings `person`'s slot into the cache ahead of an update (the sums are far larger than
    /// the cache and updated in no order: waiting for each slot in turn is most of a sweep).
    #[inline(always)]
    fn prefetch(&self, person: u32) {
        if let Some(sum) = self.by_person.get(person as usize) {
            prefetch(sum);
        }
    }

    /// The slot of `person` if it was set in this query.
    fn get(&self, person: usize) -> Option<&Sum> {
        self.by_person.get(person).filter(|s| s.query == self.query)
    }

    fn add(&mut self, person: u32, exposures: u64, first: Ex, last: Ex) {
        let sum = &mut self.by_person[person as usize];
        if sum.query != self.query {
            *sum = Sum { exposures, first, last, query: self.query };
            self.touched.push(person);
        } else {
            sum.fold(exposures, first, last);
        }
    }

    /// Empties the sums for the next query: a new number (the slots are written again only
    /// when the numbers run out).
    fn clear(&mut self) {
        self.touched.clear();
        if self.query == u32::MAX {
            self.by_person.fill(Sum::default());
            self.query = 0;
        }
        self.query += 1;
    }

    /// The contacts, by person key.
    fn contacts(&mut self) -> Vec<Contact> {
        self.touched.sort_unstable();
        self.touched.iter().map(|&p| self.by_person[p as usize].contact(p)).collect()
    }
}

/// Sums kept from query to query, so that a query does not fault in fresh pages for them.
#[derive(Debug, Default)]
pub(crate) struct Pool(Mutex<Vec<Sums>>);

impl Clone for Pool {
    fn clone(&self) -> Self {
        Pool::default()
    }
}

impl Pool {
    fn take(&self, persons: usize) -> Sums {
        let mut sums = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
        if sums.by_person.len() < persons {
            sums.by_person.resize(persons, Sum::default());
        }
        sums
    }

    fn give(&self, mut sums: Sums) {
        sums.clear();
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(sums);
    }

    /// Makes sure `parts` sums of `persons` slots are kept, their pages touched, so that the
    /// first queries do not pay for them.
    pub(crate) fn warm(&self, parts: usize, persons: usize) {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        while pool.len() < parts {
            pool.push(Sums::default());
        }
        for sums in pool.iter_mut() {
            if sums.by_person.len() < persons {
                sums.by_person.resize(persons, Sum::default());
            }
        }
    }

    /// The memory the kept sums hold, in bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        let pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        pool.iter().map(|s| s.by_person.capacity() * size_of::<Sum>() + s.touched.capacity() * 4).sum()
    }
}

/// Working arrays of one group, reused from group to group.
#[derive(Default)]
struct Scratch {
    /// The sources' starts, in order (the group is sorted by start).
    froms: Vec<u32>,
    /// `best_last[i]`: the least by `last_rank` of sources `0..=i`.
    best_last: Vec<u32>,
    /// The sources' ends, in order.
    tos: Vec<u32>,
    /// The exposed stays of the chunk being swept.
    hits: Vec<Hit>,
}

/// An exposed stay: its place in the chunk, `#(to < y)`, `#(from <= x)` and the first source
/// (in order of start) with `to >= y` for it.
#[derive(Clone, Copy)]
struct Hit {
    stay: u32,
    q: u32,
    p: u32,
    f: u32,
}

/// The fewest candidate stays a sweep shares among the cores (below, starting and merging the
/// parts costs more than the other cores save).
const SHARED: usize = 1 << 16;

/// How many candidate stays a sweep looks at before it updates the sums of those exposed.
const HITS: usize = 4096;

/// Above how many sources a group's ends are sorted by radix (most of the sources of a city's
/// query are in groups of hundreds).
const RADIX: usize = 64;

/// How many persons' sums a core merges at a time when gathering most persons' sums.
const GATHERED: usize = 1 << 15;

/// A piece of work: a group, and the part of its candidates to sweep.
struct Piece {
    group: usize,
    from: usize,
    to: usize,
}

impl Index {
    /// Sweeps `candidates` (a part of the group's) against the group's sources into `sums`,
    /// passing over the stays of `excluded` persons (`None`: the candidates are of persons not
    /// excluded already).
    fn sweep_piece(
        &self,
        group: &Group<'_>,
        candidates: &[Stay],
        excluded: Option<&Bits>,
        w: &mut Scratch,
        sums: &mut Sums,
    ) {
        let sources = group.sources;
        let (m, min) = (sources.len(), group.min);
        w.froms.clear();
        w.froms.extend(sources.iter().map(|a| a.from));
        w.best_last.clear();
        // In order of start, a source ranks before the best so far by `last_rank` when it ends
        // later, or ends and starts with it and ranks before it (one starting later never does).
        debug_assert!(sources.is_sorted_by_key(|a| a.from));
        let mut best = 0;
        for (i, a) in sources.iter().enumerate() {
            let b = &sources[best];
            if a.to > b.to || (a.to == b.to && a.from == b.from && a.last_rank() < b.last_rank()) {
                best = i;
            }
            w.best_last.push(best as u32);
        }
        w.tos.clear();
        w.tos.extend(sources.iter().map(|a| a.to));
        if m > RADIX {
            radsort::sort(&mut w.tos);
        } else {
            w.tos.sort_unstable();
        }

        let merged = self.has_merges();
        let mut q = 0; // #(to < y): y grows with the check-in
        let mut f = 0; // the first source with to >= y: y grows
        // The stays exposed are found first, a chunk at a time, then their persons' sums
        // updated: most stays of a busy place are not exposed (or are excluded), and asking for
        // the sums of those only would fill the memory's bandwidth with lines never used.
        for chunk in candidates.chunks(HITS) {
            w.hits.clear();
            for (i, b) in chunk.iter().enumerate() {
                let (t_in, t_out) = (i64::from(b.t_in), i64::from(b.t_out));
                if t_out - t_in < min {
                    continue;
                }
                // Both lie in the stay, so in the index's range.
                let (x, y) = ((t_out - min) as u32, (t_in + min) as u32);
                while q < m && w.tos[q] < y {
                    q += 1;
                }
                if q == m {
                    break; // no source ends late enough for this stay or any later one
                }
                if excluded.is_some_and(|e| e.contains(self.counted(b, merged) as usize)) {
                    continue;
                }
                // #(from <= x): x moves in no order, and a search without branches over a
                // group's sources costs less than one from the last stay's answer.
                let p = w.froms.partition_point(|&from| from <= x);
                if p > q {
                    // Some source ends at y or later (q < m): the pointer stops at one.
                    while sources[f].to < y {
                        f += 1;
                    }
                    w.hits.push(Hit { stay: i as u32, q: q as u32, p: p as u32, f: f as u32 });
                }
            }
            for (j, h) in w.hits.iter().enumerate() {
                if !merged && let Some(ahead) = w.hits.get(j + AHEAD) {
                    sums.prefetch(chunk[ahead.stay as usize].person());
                }
                let b = &chunk[h.stay as usize];
                // The first source with to >= y, or one starting with it that ranks before it.
                let y = (i64::from(b.t_in) + min) as u32;
                let mut best = &sources[h.f as usize];
                for a in sources[h.f as usize + 1..].iter().take_while(|a| a.from == best.from) {
                    if a.to >= y && a.first_rank() < best.first_rank() {
                        best = a;
                    }
                }
                let first = Ex::of(best, b);
                let last = Ex::of(&sources[w.best_last[h.p as usize - 1] as usize], b);
                sums.add(self.counted(b, merged), u64::from(h.p - h.q), first, last);
            }
            if q == m {
                break;
            }
        }
    }

    /// The exposures of every group's candidates, summed per person (by key), in `parts`
    /// parts of about equal numbers of candidate stays (a big group is cut into pieces); by
    /// default one part for small queries and one per core for others.
    pub(crate) fn sweep(&self, groups: &[Group<'_>], excluded: &[bool], parts: Option<usize>) -> Vec<Contact> {
        let total: usize = groups.iter().map(|g| g.candidates.len()).sum();
        if total == 0 {
            return Vec::new();
        }
        let parts = parts.unwrap_or(if total < SHARED { 1 } else { rayon::current_num_threads() }).clamp(1, total);
        let share = total.div_ceil(parts);
        let mut pieces: Vec<Vec<Piece>> = (0..parts).map(|_| Vec::new()).collect();
        let (mut part, mut filled) = (0, 0);
        for (g, group) in groups.iter().enumerate() {
            let mut from = 0;
            while from < group.candidates.len() {
                let take = (group.candidates.len() - from).min(share - filled);
                pieces[part].push(Piece { group: g, from, to: from + take });
                from += take;
                filled += take;
                if filled == share && part + 1 < parts {
                    part += 1;
                    filled = 0;
                }
            }
        }
        let persons = self.persons();
        let excluded = Bits::of(excluded);
        let excluded = &excluded;
        let done: Vec<Sums> = pieces
            .into_par_iter()
            .map(|pieces| {
                let mut sums = self.pool.take(persons);
                let mut scratch = Scratch::default();
                for piece in pieces {
                    let group = &groups[piece.group];
                    let candidates = &group.candidates[piece.from..piece.to];
                    self.sweep_piece(group, candidates, Some(excluded), &mut scratch, &mut sums);
                }
                sums
            })
            .collect();
        self.gather(done)
    }

    /// The sweeps' sums of every part, merged into the contacts by person key; the sums are
    /// emptied and kept for the next query.
    fn gather(&self, mut done: Vec<Sums>) -> Vec<Contact> {
        let persons = self.persons();
        let touched: usize = done.iter().map(|s| s.touched.len()).sum();
        let contacts = if touched > persons / 8 {
            // Most persons: the parts' sums merged and read out in one pass over the persons
            // (cheaper than sorting their keys), cut into ranges spread over cores, each range
            // writing its contacts straight into its share of the answer (counted first from
            // the keys each part touched): no list per range copied into the answer after.
            let ranges: Vec<std::ops::Range<usize>> =
                (0..persons).step_by(GATHERED).map(|p| p..(p + GATHERED).min(persons)).collect();
            let seen: Vec<Bits> = done
                .par_iter()
                .map(|d| {
                    let mut bits = Bits::new(persons);
                    for &p in &d.touched {
                        bits.insert(p as usize);
                    }
                    bits
                })
                .collect();
            let counts: Vec<usize> = ranges.par_iter().map(|r| Bits::count_union(&seen, r.clone())).collect();
            let mut contacts: Vec<Contact> = Vec::with_capacity(counts.iter().sum());
            let mut shares = Vec::with_capacity(ranges.len());
            let mut spare = &mut contacts.spare_capacity_mut()[..];
            for &n in &counts {
                let (share, rest) = spare.split_at_mut(n);
                shares.push(share);
                spare = rest;
            }
            let done = &done;
            ranges.into_par_iter().zip(shares).for_each(|(range, share)| {
                let mut slots = share.iter_mut();
                for p in range {
                    let mut all = Sum::default();
                    for s in done.iter().filter_map(|d| d.get(p)) {
                        if all.exposures == 0 {
                            all = *s;
                        } else {
                            all.fold(s.exposures, s.first, s.last);
                        }
                    }
                    if all.exposures > 0 {
                        slots.next().expect("counted").write(all.contact(p as u32));
                    }
                }
                assert!(slots.next().is_none(), "every counted person written");
            });
            // SAFETY: every share was written whole (asserted above), and the shares cover
            // `counts`' sum, the length set.
            unsafe { contacts.set_len(contacts.capacity()) };
            contacts
        } else {
            let mut all = done.remove(0);
            for other in done.drain(..) {
                for &p in &other.touched {
                    let s = other.by_person[p as usize];
                    all.add(p, s.exposures, s.first, s.last);
                }
                self.pool.give(other);
            }
            let contacts = all.contacts();
            done.push(all);
            contacts
        };
        // Emptied for the next query, on every core.
        done.into_par_iter().for_each(|sums| self.pool.give(sums));
        contacts
    }

    /// The exposures to `starts`' sources at every place `min_at` makes a setting, read and
    /// swept place by place: each place's sources are collected from its stays in the windows
    /// and its stays swept against them while they are in the cache. Places are shared out
    /// among `parts` workers (default: one per core) in ranges of about equal numbers of stays,
    /// taken in turn; each worker sums into its own arrays, merged at the end (the answer does
    /// not depend on which worker took which place).
    pub(crate) fn sweep_places(
        &self,
        starts: &Starts,
        min_at: &(impl Fn(u32) -> Option<i64> + Sync),
        excluded: &[bool],
        parts: Option<usize>,
    ) -> Vec<Contact> {
        let workers = parts.unwrap_or_else(rayon::current_num_threads).max(1);
        let ranges = self.place_ranges(16 * workers);
        let next = AtomicUsize::new(0);
        let persons = self.persons();
        let excluded = Bits::of(excluded);
        let (excluded, ranges, next) = (&excluded, &ranges, &next);
        let done: Vec<Sums> = (0..workers)
            .into_par_iter()
            .map(|_| {
                let mut sums = self.pool.take(persons);
                let mut scratch = Scratch::default();
                let (mut sources, mut place_scratch) = (Vec::new(), PlaceScratch::default());
                while let Some(places) = ranges.get(next.fetch_add(1, Ordering::Relaxed)) {
                    for place in places.clone() {
                        let Some(min) = min_at(place) else { continue };
                        sources.clear();
                        self.sources_at(place, min, starts, &mut sources, &mut place_scratch, Some(excluded));
                        for group in self.groups_among(&sources, min_at, Some(place_scratch.eligible())) {
                            // The candidates are the stays of persons not excluded.
                            self.sweep_piece(&group, group.candidates, None, &mut scratch, &mut sums);
                        }
                    }
                }
                sums
            })
            .collect();
        self.gather(done)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::index::{EPOCH, IndexBuilder};
    use crate::venue::Source;

    /// Visits (person, place, check-in, check-out), survivors, sources (person, window
    /// start), the least overlap and the end of the windows.
    type City = (Vec<(u32, u32, i64, Option<i64>)>, Vec<u32>, Vec<(u32, i64)>, i64, i64);

    /// A random city: visits of 40 persons at 5 places over a day, some open, some merged.
    fn city() -> impl Strategy<Value = City> {
        let visit = (0u32..40, 0u32..5, 0i64..96, prop::option::of(0i64..16));
        (
            prop::collection::vec(visit, 1..300),
            prop::collection::vec(prop::option::of(0u32..40), 40),
            prop::collection::vec((0u32..40, 0i64..96), 1..12),
            prop::sample::select(vec![0i64, 15, 30]),
            60i64..97,
        )
            .prop_map(|(raw, merges, sources, min, to)| {
                let base = EPOCH + 700_000_000;
                let visits = raw
                    .into_iter()
                    .map(|(p, l, t, d)| (p, l, base + t * 900, d.map(|d| base + (t + d) * 900)))
                    .collect();
                let mut survivors: Vec<u32> = (0..40).collect();
                for (k, into) in merges.into_iter().enumerate() {
                    if let Some(into) = into
                        && into as usize != k
                        && survivors[into as usize] == into
                        && !survivors.iter().enumerate().any(|(j, s)| *s == k as u32 && j != k)
                    {
                        survivors[k] = into;
                    }
                }
                let mut sources: Vec<(u32, i64)> = sources
                    .into_iter()
                    .filter(|(p, _)| survivors[*p as usize] == *p)
                    .map(|(p, t)| (p, base + t * 900))
                    .collect();
                sources.sort_unstable();
                sources.dedup_by_key(|s| s.0);
                (visits, survivors, sources, min * 60, base + to * 900)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 300,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_5eed),
            ..ProptestConfig::default()
        })]

        /// The ranks order sources as their keys do.
        #[test]
        fn ranks_order_sources_as_keys_do(
            a in (0u32..4, 0u32..4, 0u32..3, any::<bool>()),
            b in (0u32..4, 0u32..4, 0u32..3, any::<bool>()),
        ) {
            let stay = |open: bool| {
                let mut builder = IndexBuilder::new(vec![], 60);
                builder.push(0, 0, EPOCH, if open { None } else { Some(EPOCH + 60) });
                builder.build(vec![]).stays_at(0)[0]
            };
            let source = |(from, to, person, open): (u32, u32, u32, bool)| Source::clipped(&stay(open), person, from, to);
            let (a, b) = (source(a), source(b));
            prop_assert_eq!(a.first_rank().cmp(&b.first_rank()), a.first_key().cmp(&b.first_key()));
            prop_assert_eq!(a.last_rank().cmp(&b.last_rank()), a.last_key().cmp(&b.last_key()));
        }

        /// However the work is cut (groups split into pieces, pieces over parts and threads;
        /// places shared out among workers) and whichever way the sources are read, the sums
        /// are the same.
        #[test]
        fn the_split_does_not_change_the_answer((visits, survivors, sources, min, to) in city()) {
            let mut b = IndexBuilder::new(vec![1800, 3600, 600, 7200, 900], 3600);
            for (p, l, t_in, t_out) in visits {
                b.push(p, l, t_in, t_out);
            }
            let index = b.build(survivors);
            let mut excluded = vec![false; index.persons()];
            for (p, _) in &sources {
                excluded[*p as usize] = true;
            }
            let min_at = |place: u32| (place != 4).then_some(min);
            // Both ways of reading the sources' visits give the same, by place and start.
            let by_person = index.source_visits_by_person(&sources, to, &min_at);
            prop_assert!(by_person.is_sorted());
            let mut by_place = index.source_visits_by_place(&sources, to, &min_at).concat();
            prop_assert!(by_place.is_sorted_by_key(|s| (s.place, s.from)));
            by_place.sort_unstable();
            prop_assert_eq!(&by_place, &by_person);
            let one = index.exposures_by_person(&sources, to, &min_at, &excluded, Some(1));
            for parts in [1, 2, 3, 7, 1000] {
                prop_assert_eq!(&index.exposures_by_person(&sources, to, &min_at, &excluded, Some(parts)), &one);
                prop_assert_eq!(&index.exposures_by_place(&sources, to, &min_at, &excluded, Some(parts)), &one);
            }
            let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
            prop_assert_eq!(&pool.install(|| index.exposures_by_person(&sources, to, &min_at, &excluded, Some(5))), &one);
            prop_assert_eq!(&pool.install(|| index.exposures_by_place(&sources, to, &min_at, &excluded, None)), &one);
            // The sums kept for the next query were emptied.
            prop_assert_eq!(&index.exposures_in(&sources, to, min_at, &excluded, Some(2)), &one);
        }
    }
}
