//! The co-presence index: every stay at every place, sorted for range scans, and every
//! person's stays, in 20 bytes a visit.
//!
//! A stay is 16 bytes: place, check-in, person (with the "no check-out" flag in its top bit)
//! and check-out, instants in seconds since [`EPOCH`] as `u32` (good until 2136). Stays are
//! sorted by (place, check-in), so the people at a place in a time interval are one binary
//! search and a short scan away; a second array of `u32` positions lists each person's stays.
//! A visit without a check-out is given the assumed stay of its place's kind (the profile's
//! `[open_visits]`) when it enters the index, and keeps the flag so that evidence can say so.

use rustc_hash::FxHashMap;

/// The index's clock starts at 2000-01-01T00:00:00Z (Unix seconds).
pub const EPOCH: i64 = 946_684_800;

/// The top bit of [`Stay::person`]: the visit had no check-out.
pub(crate) const OPEN: u32 = 1 << 31;

/// The largest person key the index takes (the top bit is the open flag).
pub const MAX_PERSON: u32 = OPEN - 1;

/// One visit in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stay {
    pub place: u32,
    /// Check-in, seconds since [`EPOCH`].
    pub t_in: u32,
    /// The person's key, with [`OPEN`] set when the check-out was assumed.
    person_and_flag: u32,
    /// Check-out (or assumed check-out), seconds since [`EPOCH`].
    pub t_out: u32,
}

impl Stay {
    /// The person as recorded (see [`Index::survivor`] for merges).
    pub fn person(&self) -> u32 {
        self.person_and_flag & MAX_PERSON
    }

    /// Whether the check-out was assumed (the visit had none).
    pub fn assumed_check_out(&self) -> bool {
        self.person_and_flag & OPEN != 0
    }
}

/// Converts Unix seconds to index time, if in range.
pub fn to_index_time(unix: i64) -> Option<u32> {
    u32::try_from(unix - EPOCH).ok()
}

/// Converts Unix seconds to index time, clamped to the index's range (a bound before 2000 is
/// 2000, one after 2136 is the end of the range).
pub(crate) fn index_time_clamped(unix: i64) -> u32 {
    u32::try_from((unix - EPOCH).max(0)).unwrap_or(u32::MAX)
}

/// A set of small integers (person keys), a bit each: read for every stay a query looks at,
/// a set of a million persons is 128 KB and stays in the cache.
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    /// The empty set of keys below `n`.
    pub(crate) fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }

    /// The set of the `flags` that are set.
    pub(crate) fn of(flags: &[bool]) -> Bits {
        // A word from each 64 flags, without a branch.
        Bits(flags.chunks(64).map(|c| c.iter().rev().fold(0, |w, &f| (w << 1) | u64::from(f))).collect())
    }

    /// Adds `i` (below the set's `n`).
    pub(crate) fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    /// How many keys in `range` (of whole words but at the end) are in any of `sets`.
    pub(crate) fn count_union(sets: &[Bits], range: std::ops::Range<usize>) -> usize {
        debug_assert!(range.start.is_multiple_of(64), "a range starts at a word");
        let words = range.start / 64..range.end.div_ceil(64);
        words
            .map(|w| sets.iter().fold(0u64, |all, set| all | set.0.get(w).copied().unwrap_or(0)).count_ones() as usize)
            .sum()
    }

    /// Whether `i` is in the set (keys beyond `n` are not).
    #[inline(always)]
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// The number of `stays` (sorted by check-in) that check in before `t`: what
/// `partition_point(|s| s.t_in < t)` gives, in fewer reads of memory. Check-ins at a place
/// spread over the days fairly evenly, so the position is first guessed from the times at the
/// ends, then found from the guess by [`partition_from`].
pub(crate) fn seek(stays: &[Stay], t: u32) -> usize {
    let n = stays.len();
    if n < 64 {
        return stays.partition_point(|s| s.t_in < t);
    }
    let (first, last) = (stays[0].t_in, stays[n - 1].t_in);
    if t <= first {
        return 0;
    }
    if t > last {
        return n;
    }
    // first < t <= last, so the guess lies in 0..n.
    let guess = ((u64::from(t - first) * (n as u64 - 1)) / u64::from(last - first)) as usize;
    partition_from(stays, guess, |s| s.t_in < t)
}

/// `v.partition_point(pred)` (`pred` holds for a prefix of `v`), searched from `hint`: steps
/// doubling away from it bracket the answer, then a binary search within the bracket. Reads
/// about `2 log d` elements for an answer `d` away from the hint, the first ones next to it.
pub(crate) fn partition_from<T>(v: &[T], hint: usize, pred: impl Fn(&T) -> bool) -> usize {
    let n = v.len();
    let h = hint.min(n);
    // Invariant: `pred` holds for v[..lo] and not for v[hi..].
    let (lo, hi) = if h < n && pred(&v[h]) {
        let (mut lo, mut step) = (h + 1, 1);
        while lo + step <= n && pred(&v[lo + step - 1]) {
            lo += step;
            step *= 2;
        }
        (lo, (lo + step - 1).min(n))
    } else {
        let (mut hi, mut step) = (h, 1);
        while hi >= step && !pred(&v[hi - step]) {
            hi -= step;
            step *= 2;
        }
        ((hi + 1).saturating_sub(step), hi)
    };
    lo + v[lo..hi].partition_point(pred)
}

/// Converts index time to Unix seconds.
pub fn to_unix(t: u32) -> i64 {
    i64::from(t) + EPOCH
}

/// Collects visits, then sorts them into an [`Index`].
#[derive(Debug)]
pub struct IndexBuilder {
    /// Assumed stay (seconds) at each place key, for visits without a check-out.
    dwell: Vec<u32>,
    default_dwell: u32,
    stays: Vec<Stay>,
    dropped: u64,
}

impl IndexBuilder {
    /// `dwell[place]` is the assumed stay in seconds at that place when a visit has no
    /// check-out; places beyond the vector get `default_dwell`.
    pub fn new(dwell: Vec<u32>, default_dwell: u32) -> Self {
        IndexBuilder { dwell, default_dwell, stays: Vec::new(), dropped: 0 }
    }

    /// Room for `n` more visits.
    pub fn reserve(&mut self, n: usize) {
        self.stays.reserve(n);
    }

    /// Adds a visit (Unix seconds). Visits outside the index's time range (2000 to 2136) or
    /// with a person key above [`MAX_PERSON`] are counted as dropped.
    pub fn push(&mut self, person: u32, place: u32, t_in: i64, t_out: Option<i64>) {
        let Some(start) = to_index_time(t_in) else {
            self.dropped += 1;
            return;
        };
        if person > MAX_PERSON {
            self.dropped += 1;
            return;
        }
        let (end, flag) = match t_out {
            Some(t) => (to_index_time(t.max(t_in)).unwrap_or(u32::MAX), 0),
            None => {
                let dwell = self.dwell.get(place as usize).copied().unwrap_or(self.default_dwell);
                (start.saturating_add(dwell), OPEN)
            }
        };
        self.stays.push(Stay { place, t_in: start, person_and_flag: person | flag, t_out: end });
    }

    /// Sorts the stays and builds the lookups. `survivors[k]` is the person key `k` is merged
    /// into (itself when not merged); keys beyond it are their own survivors.
    pub fn build(self, survivors: Vec<u32>) -> Index {
        let IndexBuilder { mut stays, dropped, .. } = self;
        // A total order on every field: equal stays are identical, so the result does not
        // depend on the sort's stability or on the order visits arrived in.
        stays.sort_unstable();
        let mut survivor: Vec<u32> = (0..survivors.len() as u32).collect();
        let mut family: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for (k, s) in survivors.iter().enumerate() {
            if *s as usize != k {
                survivor[k] = *s;
                family.entry(*s).or_default().push(k as u32);
            }
        }
        let mut index = Index {
            stays,
            place_start: Vec::new(),
            place_max_stay: Vec::new(),
            person_start: Vec::new(),
            by_person: Vec::new(),
            survivor,
            family,
            dropped,
            end: None,
            pool: Default::default(),
        };
        index.derive();
        index
    }
}

/// The co-presence index (see the module documentation).
#[derive(Debug, Clone)]
pub struct Index {
    stays: Vec<Stay>,
    place_start: Vec<u32>,
    place_max_stay: Vec<u32>,
    person_start: Vec<u32>,
    by_person: Vec<u32>,
    survivor: Vec<u32>,
    family: FxHashMap<u32, Vec<u32>>,
    dropped: u64,
    end: Option<u32>,
    /// Working memory of the sweeps, kept from query to query.
    pub(crate) pool: crate::sweep::Pool,
}

impl Index {
    /// Builds every lookup from the sorted stays.
    fn derive(&mut self) {
        let stays = &self.stays;
        let n_places = stays.last().map_or(0, |s| s.place as usize + 1);
        let mut place_start = vec![0u32; n_places + 1];
        let mut place_max_stay = vec![0u32; n_places];
        for s in stays {
            place_start[s.place as usize + 1] += 1;
            let max = &mut place_max_stay[s.place as usize];
            *max = (*max).max(s.t_out - s.t_in);
        }
        for i in 0..n_places {
            place_start[i + 1] += place_start[i];
        }
        let n_persons = stays.iter().map(|s| s.person() as usize + 1).max().unwrap_or(0).max(self.survivor.len());
        let mut person_start = vec![0u32; n_persons + 1];
        for s in stays {
            person_start[s.person() as usize + 1] += 1;
        }
        for i in 0..n_persons {
            person_start[i + 1] += person_start[i];
        }
        let mut fill = person_start.clone();
        let mut by_person = vec![0u32; stays.len()];
        for (i, s) in stays.iter().enumerate() {
            let slot = &mut fill[s.person() as usize];
            by_person[*slot as usize] = i as u32;
            *slot += 1;
        }
        // Persons first seen here are their own survivors.
        let known = self.survivor.len() as u32;
        self.survivor.extend(known..n_persons as u32);
        self.end = stays.iter().map(|s| s.t_out).max();
        self.place_start = place_start;
        self.place_max_stay = place_max_stay;
        self.person_start = person_start;
        self.by_person = by_person;
    }

    /// Adds visits that arrived since the index was built (one sorted merge and the lookups
    /// rebuilt: linear in the index, far cheaper than a new scan of the store). Merges are
    /// not changed: rebuild after one.
    pub fn extend(&mut self, more: IndexBuilder) {
        let IndexBuilder { stays: mut new, dropped, .. } = more;
        if new.is_empty() && dropped == 0 {
            return;
        }
        new.sort_unstable();
        let old = std::mem::take(&mut self.stays);
        let mut merged = Vec::with_capacity(old.len() + new.len());
        let (mut i, mut j) = (0, 0);
        while i < old.len() && j < new.len() {
            if old[i] <= new[j] {
                merged.push(old[i]);
                i += 1;
            } else {
                merged.push(new[j]);
                j += 1;
            }
        }
        merged.extend_from_slice(&old[i..]);
        merged.extend_from_slice(&new[j..]);
        self.stays = merged;
        self.dropped += dropped;
        self.derive();
    }

    /// The latest check-out in the index (Unix seconds): the end of the data.
    pub fn end_of_data(&self) -> Option<i64> {
        self.end.map(to_unix)
    }

    /// How many visits the index holds.
    pub fn len(&self) -> usize {
        self.stays.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stays.is_empty()
    }

    /// Visits left out at build (out of the time range, person key too large).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The memory the index holds, in bytes.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.stays.capacity() * size_of::<Stay>()
            + (self.place_start.capacity() + self.place_max_stay.capacity()) * 4
            + (self.person_start.capacity() + self.by_person.capacity() + self.survivor.capacity()) * 4
            + self.family.values().map(|v| v.capacity() * 4 + 32).sum::<usize>()
    }

    /// How many person keys the index knows (every survivor is below it).
    pub fn persons(&self) -> usize {
        self.survivor.len()
    }

    /// Whether any person is merged into another.
    pub fn has_merges(&self) -> bool {
        !self.family.is_empty()
    }

    /// Allocates the working memory of the sweeps (a sum slot per person for each core) ahead
    /// of the first query.
    pub fn warm(&self) {
        self.pool.warm(rayon::current_num_threads(), self.persons());
    }

    /// The working memory the sweeps keep between queries, in bytes (apart from
    /// [`Index::heap_bytes`]).
    pub fn scratch_bytes(&self) -> usize {
        self.pool.heap_bytes()
    }

    /// The person `key` is merged into (itself when not merged).
    pub fn survivor(&self, key: u32) -> u32 {
        self.survivor.get(key as usize).copied().unwrap_or(key)
    }

    /// The person a stay counts for: its person's survivor (looked up only when the index has
    /// merges, which `merged` says: [`Index::has_merges`], read once by the caller's loop).
    #[inline(always)]
    pub(crate) fn counted(&self, stay: &Stay, merged: bool) -> u32 {
        if merged { self.survivor(stay.person()) } else { stay.person() }
    }

    /// The recorded person keys whose stays are `survivor`'s: itself and those merged into it.
    pub fn family(&self, survivor: u32) -> impl Iterator<Item = u32> + '_ {
        std::iter::once(survivor).chain(self.family.get(&survivor).into_iter().flatten().copied())
    }

    /// The stays of the recorded person `key`.
    pub fn stays_of(&self, key: u32) -> impl Iterator<Item = &Stay> + '_ {
        let range = match (self.person_start.get(key as usize), self.person_start.get(key as usize + 1)) {
            (Some(a), Some(b)) => *a as usize..*b as usize,
            _ => 0..0,
        };
        self.by_person[range].iter().map(|i| &self.stays[*i as usize])
    }

    /// How many stays the recorded person `key` has.
    pub(crate) fn stay_count(&self, key: u32) -> usize {
        match (self.person_start.get(key as usize), self.person_start.get(key as usize + 1)) {
            (Some(a), Some(b)) => (b - a) as usize,
            _ => 0,
        }
    }

    /// The longest stay at `place` (seconds).
    pub fn max_stay(&self, place: u32) -> u32 {
        self.place_max_stay.get(place as usize).copied().unwrap_or(0)
    }

    /// Every stay at `place`, by check-in.
    pub(crate) fn stays_at(&self, place: u32) -> &[Stay] {
        let p = place as usize;
        match (self.place_start.get(p), self.place_start.get(p + 1)) {
            (Some(&a), Some(&b)) => &self.stays[a as usize..b as usize],
            _ => &[],
        }
    }

    /// The places cut into `parts` consecutive ranges of about equal numbers of stays.
    pub(crate) fn place_ranges(&self, parts: usize) -> Vec<std::ops::Range<u32>> {
        let n_places = self.place_start.len().saturating_sub(1);
        let share = self.stays.len().div_ceil(parts.max(1)).max(1);
        let mut out = Vec::new();
        let mut from = 0;
        while from < n_places {
            let goal = self.place_start[from] as usize + share;
            let to = (from + 1).max(self.place_start.partition_point(|&s| (s as usize) < goal).min(n_places));
            out.push(from as u32..to as u32);
            from = to;
        }
        out
    }

    /// The stays at `place` that can overlap `[from, to)` by at least `min` seconds: every stay
    /// whose check-in lies in `[from + min - longest stay there, to - min]`, a superset that the
    /// caller filters.
    pub fn candidates(&self, place: u32, from: i64, to: i64, min: i64) -> &[Stay] {
        self.candidates_among(self.stays_at(place), place, from, to, min)
    }

    /// [`Index::candidates`] among `stays`, some of the stays at `place` (by check-in).
    pub(crate) fn candidates_among<'a>(
        &self,
        stays: &'a [Stay],
        place: u32,
        from: i64,
        to: i64,
        min: i64,
    ) -> &'a [Stay] {
        let lowest = from + min - i64::from(self.max_stay(place));
        let highest = to - min;
        let clamp = |t: i64| u32::try_from(t.max(0)).unwrap_or(u32::MAX);
        let lo = seek(stays, clamp(lowest));
        // The stays checking in at `highest` or before: those before `highest + 1`.
        let hi = if highest < 0 { 0 } else { lo + seek(&stays[lo..], clamp(highest.saturating_add(1))) };
        if lo >= hi { &[] } else { &stays[lo..hi] }
    }
}

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a chainbreak trace snapshot (or one of another version)")]
    Format,
    #[error("the snapshot is cut short: {0}")]
    Io(#[from] std::io::Error),
}

/// The first bytes of a snapshot.
const SNAPSHOT_MAGIC: &[u8; 8] = b"CBTRACE1";

impl Index {
    /// Writes the index in its snapshot form: the sorted stays and the merge survivors, little
    /// endian; the lookups are derived again when it is read.
    pub fn write_snapshot(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        w.write_all(SNAPSHOT_MAGIC)?;
        for n in [self.stays.len() as u64, self.dropped, self.survivor.len() as u64] {
            w.write_all(&n.to_le_bytes())?;
        }
        let mut buf = Vec::with_capacity(64 * 1024);
        for chunk in self.stays.chunks(4096) {
            buf.clear();
            for s in chunk {
                for v in [s.place, s.t_in, s.person_and_flag, s.t_out] {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
            }
            w.write_all(&buf)?;
        }
        for chunk in self.survivor.chunks(16 * 1024) {
            buf.clear();
            for v in chunk {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            w.write_all(&buf)?;
        }
        Ok(())
    }

    /// Reads an index written by [`Index::write_snapshot`].
    pub fn read_snapshot(r: &mut impl std::io::Read) -> Result<Index, SnapshotError> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if &magic != SNAPSHOT_MAGIC {
            return Err(SnapshotError::Format);
        }
        let mut word = [0u8; 8];
        let mut next_u64 = |r: &mut dyn std::io::Read| -> Result<u64, SnapshotError> {
            r.read_exact(&mut word)?;
            Ok(u64::from_le_bytes(word))
        };
        let n_stays = usize::try_from(next_u64(r)?).map_err(|_| SnapshotError::Format)?;
        let dropped = next_u64(r)?;
        let n_survivors = usize::try_from(next_u64(r)?).map_err(|_| SnapshotError::Format)?;
        let mut stays = Vec::with_capacity(n_stays);
        let mut buf = vec![0u8; 16 * 4096];
        let mut left = n_stays;
        while left > 0 {
            let take = left.min(4096);
            r.read_exact(&mut buf[..take * 16])?;
            for c in buf[..take * 16].chunks_exact(16) {
                let v = |i: usize| u32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
                stays.push(Stay { place: v(0), t_in: v(4), person_and_flag: v(8), t_out: v(12) });
            }
            left -= take;
        }
        if !stays.is_sorted() {
            return Err(SnapshotError::Format);
        }
        let mut survivors = vec![0u8; n_survivors * 4];
        r.read_exact(&mut survivors)?;
        let survivors: Vec<u32> =
            survivors.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if survivors.iter().any(|s| *s as usize >= survivors.len()) {
            return Err(SnapshotError::Format);
        }
        let builder = IndexBuilder { dwell: Vec::new(), default_dwell: 0, stays, dropped };
        Ok(builder.build(survivors))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Bits, Stay, partition_from, seek};

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 500,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eec),
            ..ProptestConfig::default()
        })]

        /// `seek` and `partition_from` (from any hint) are `partition_point` by check-in, on
        /// runs of any shape: even, clustered, with long ties, and for times before, inside
        /// and after them.
        #[test]
        fn seek_and_partition_from_find_what_partition_point_finds(
            mut times in prop::collection::vec(prop_oneof![0u32..100, 0u32..5, 1_000u32..1_000_000], 0..400),
            probes in prop::collection::vec(0u32..1_100_000, 1..20),
        ) {
            times.sort_unstable();
            let stays: Vec<Stay> = times.iter().map(|&t| Stay { place: 0, t_in: t, person_and_flag: 0, t_out: t }).collect();
            for t in probes.into_iter().chain(times.iter().copied()).chain([0, 1, u32::MAX]) {
                let want = stays.partition_point(|s| s.t_in < t);
                prop_assert_eq!(seek(&stays, t), want, "t = {}", t);
                for hint in [0, 1, want.saturating_sub(1), want, want + 1, times.len() / 2, times.len(), usize::MAX] {
                    prop_assert_eq!(partition_from(&stays, hint, |s| s.t_in < t), want, "t = {}, hint = {}", t, hint);
                }
            }
        }

        /// A set of flags holds exactly the flags set, and no key beyond them.
        #[test]
        fn bits_hold_the_flags_set(flags in prop::collection::vec(any::<bool>(), 0..300)) {
            let bits = Bits::of(&flags);
            for (i, &f) in flags.iter().enumerate() {
                prop_assert_eq!(bits.contains(i), f, "key {}", i);
            }
            prop_assert!(!bits.contains(flags.len()) && !bits.contains(usize::MAX / 2));
        }
    }
}
