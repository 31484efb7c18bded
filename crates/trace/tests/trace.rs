//! The trace engine against brute-force oracles on small random cities.

use std::collections::{BTreeMap, BTreeSet};

use chainbreak_trace::{Contact, Exposure, IndexBuilder, IndexPerson, Traced, VenueOverlap};
use proptest::prelude::*;

/// 2022-03-01T00:00:00Z.
const BASE: i64 = 1_646_092_800;
const MINUTE: i64 = 60;

#[derive(Debug, Clone)]
struct City {
    /// (person, place, t_in, t_out) in Unix seconds.
    visits: Vec<(u32, u32, i64, Option<i64>)>,
    /// Assumed stay per place, seconds.
    dwell: Vec<u32>,
    /// Survivor of each person key.
    survivors: Vec<u32>,
    index: Vec<IndexPerson>,
    query: VenueOverlap,
}

const PERSONS: u32 = 9;
const PLACES: u32 = 4;

fn city() -> impl Strategy<Value = City> {
    let visit = (0..PERSONS, 0..PLACES, 0i64..40, prop::option::of(0i64..14));
    (
        prop::collection::vec(visit, 0..40),
        prop::collection::vec(1u32..12, PLACES as usize),
        prop::collection::vec(prop::option::of(0..PERSONS), PERSONS as usize),
        prop::collection::vec((0..PERSONS, 0i64..30), 1..4),
        (30i64..60, prop::sample::select(vec![0i64, 5, 15, 20]), 1u8..3),
    )
        .prop_map(|(raw, dwell, merges, index, (to, min, depth))| {
            // Times on a 5-minute grid so that overlaps hit thresholds exactly.
            let visits = raw
                .into_iter()
                .map(|(p, l, t, d)| (p, l, BASE + t * 5 * MINUTE, d.map(|d| BASE + (t + d) * 5 * MINUTE)))
                .collect();
            let dwell = dwell.into_iter().map(|d| d * 5 * MINUTE as u32).collect();
            // A person may be merged into a person who is not merged themselves.
            let mut survivors: Vec<u32> = (0..PERSONS).collect();
            for (k, into) in merges.into_iter().enumerate() {
                if let Some(into) = into
                    && into as usize != k
                    && survivors[into as usize] == into
                    && !survivors.iter().enumerate().any(|(j, s)| *s == k as u32 && j != k)
                {
                    survivors[k] = into;
                }
            }
            // Each index person has their own start; the end is common.
            let index = index
                .into_iter()
                .map(|(person, from)| IndexPerson { person, from: BASE + from * 5 * MINUTE })
                .collect();
            let query = VenueOverlap { to: BASE + to * 5 * MINUTE, min_overlap: min * MINUTE, depth };
            City { visits, dwell, survivors, index, query }
        })
}

fn build(c: &City, reversed: bool) -> chainbreak_trace::Index {
    let mut b = IndexBuilder::new(c.dwell.clone(), 3600);
    let mut visits = c.visits.clone();
    if reversed {
        visits.reverse();
    }
    for (p, l, t_in, t_out) in visits {
        b.push(p, l, t_in, t_out);
    }
    b.build(c.survivors.clone())
}

/// Every visit as (survivor, place, t_in, t_out with the assumed stay filled in, open).
fn effective_visits(c: &City) -> Vec<(u32, u32, i64, i64, bool)> {
    c.visits
        .iter()
        .map(|&(p, l, t_in, t_out)| {
            let out = t_out.map(|t| t.max(t_in)).unwrap_or(t_in + i64::from(c.dwell[l as usize]));
            (c.survivors[p as usize], l, t_in, out, t_out.is_none())
        })
        .collect()
}

/// Each index survivor's earliest window start.
fn index_starts(c: &City) -> BTreeMap<u32, i64> {
    let mut starts: BTreeMap<u32, i64> = BTreeMap::new();
    for ip in &c.index {
        let from = starts.entry(c.survivors[ip.person as usize]).or_insert(ip.from);
        *from = (*from).min(ip.from);
    }
    starts
}

/// The rule, by nested loops over every pair of visits.
fn oracle(c: &City) -> Traced {
    let q = &c.query;
    let eff = effective_visits(c);
    let starts = index_starts(c);
    let index: BTreeSet<u32> = starts.keys().copied().collect();
    // Per contact visit b: its exposures (pairs), summed up by the exposure to the source
    // visit that began first (ties: ended first, least source) and the one to the source visit
    // that ended last (ties: began first, least source); per person: the least first, the
    // latest-ending last, the number of pairs.
    let sweep = |sources: &BTreeMap<u32, i64>, excluded: &dyn Fn(u32) -> bool| {
        // (b index) -> (first key, first exposure), (last key, last exposure), pairs
        type Key = (i64, i64, u32, bool);
        type Chosen = (Key, Exposure);
        let mut per_b: BTreeMap<usize, (Chosen, Chosen, u64)> = BTreeMap::new();
        for a in &eff {
            let Some(&from) = sources.get(&a.0) else { continue };
            let (a_in, a_out) = (a.2.max(from), a.3.min(q.to));
            if a_out <= a_in {
                continue;
            }
            for (bi, b) in eff.iter().enumerate() {
                if b.1 != a.1 || excluded(b.0) {
                    continue;
                }
                let (start, end) = (a_in.max(b.2), a_out.min(b.3));
                if end - start >= q.min_overlap {
                    let e = Exposure {
                        start,
                        end,
                        place: a.1,
                        source: a.0,
                        contact_check_out_assumed: b.4,
                        source_check_out_assumed: a.4,
                    };
                    let first_key = (a_in, a_out, a.0, a.4);
                    let last_key = (-a_out, a_in, a.0, a.4);
                    let entry = per_b.entry(bi).or_insert(((first_key, e), (last_key, e), 0));
                    if first_key < entry.0.0 {
                        entry.0 = (first_key, e);
                    }
                    if last_key < entry.1.0 {
                        entry.1 = (last_key, e);
                    }
                    entry.2 += 1;
                }
            }
        }
        let mut found: BTreeMap<u32, Contact> = BTreeMap::new();
        for (bi, ((_, first), (_, last), pairs)) in per_b {
            let person = eff[bi].0;
            let c = found.entry(person).or_insert(Contact { person, first, last, exposures: 0 });
            c.first = c.first.min(first);
            if (std::cmp::Reverse(last.end), last) < (std::cmp::Reverse(c.last.end), c.last) {
                c.last = last;
            }
            c.exposures += pairs;
        }
        found.into_values().collect::<Vec<_>>()
    };
    let close = sweep(&starts, &|x| index.contains(&x));
    let secondary = if q.depth >= 2 {
        let close_set: BTreeSet<u32> = close.iter().map(|c| c.person).collect();
        let sources: BTreeMap<u32, i64> = close.iter().map(|c| (c.person, c.first.start)).collect();
        sweep(&sources, &|x| index.contains(&x) || close_set.contains(&x))
    } else {
        Vec::new()
    };
    Traced { index_persons: index.into_iter().collect(), close, secondary }
}

/// Links between index persons, by every pair of their visits.
fn oracle_links(c: &City) -> Vec<chainbreak_trace::Link> {
    let q = &c.query;
    let starts = index_starts(c);
    let eff = effective_visits(c);
    let mut found: BTreeMap<(u32, u32), chainbreak_trace::Link> = BTreeMap::new();
    for a in &eff {
        let Some(&from) = starts.get(&a.0) else { continue };
        let (a_in, a_out) = (a.2.max(from), a.3.min(q.to));
        if a_out <= a_in || a_out - a_in < q.min_overlap {
            continue;
        }
        for b in &eff {
            if b.1 != a.1 || b.0 == a.0 || !starts.contains_key(&b.0) {
                continue;
            }
            let (start, end) = (a_in.max(b.2), a_out.min(b.3));
            if end - start >= q.min_overlap {
                let e = Exposure {
                    start,
                    end,
                    place: a.1,
                    source: a.0,
                    contact_check_out_assumed: b.4,
                    source_check_out_assumed: a.4,
                };
                let l = found.entry((a.0, b.0)).or_insert(chainbreak_trace::Link {
                    source: a.0,
                    exposed: b.0,
                    first: e,
                    exposures: 0,
                });
                l.first = l.first.min(e);
                l.exposures += 1;
            }
        }
    }
    found.into_values().collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_2026),
        ..ProptestConfig::default()
    })]

    #[test]
    fn venue_overlap_matches_the_oracle(c in city()) {
        let index = build(&c, false);
        let got = index.venue_overlap(&c.index, &c.query);
        prop_assert_eq!(&got, &oracle(&c));
        prop_assert_eq!(index.links(&c.index, &c.query), oracle_links(&c));
        // Arrival order does not matter, nor the number of threads.
        prop_assert_eq!(&build(&c, true).venue_overlap(&c.index, &c.query), &got);
        // Built in two steps (visits arriving later) it answers the same.
        let half = c.visits.len() / 2;
        let mut first = IndexBuilder::new(c.dwell.clone(), 3600);
        for &(p, l, t_in, t_out) in &c.visits[..half] {
            first.push(p, l, t_in, t_out);
        }
        let mut later = IndexBuilder::new(c.dwell.clone(), 3600);
        for &(p, l, t_in, t_out) in &c.visits[half..] {
            later.push(p, l, t_in, t_out);
        }
        let mut grown = first.build(c.survivors.clone());
        grown.extend(later);
        prop_assert_eq!(&grown.venue_overlap(&c.index, &c.query), &got);
        let threads = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        prop_assert_eq!(&threads(1).install(|| index.venue_overlap(&c.index, &c.query)), &got);
        prop_assert_eq!(&threads(3).install(|| index.venue_overlap(&c.index, &c.query)), &got);
    }
}

#[test]
fn the_edges_of_the_rule() {
    let m = |x: i64| BASE + x * MINUTE;
    // Person 0 is the index case, at place 0 from 0 to 60 min; the window is [10, 50).
    let visits = [
        (0, 0, m(0), Some(m(60))),
        (1, 0, m(35), Some(m(90))), // overlaps the clipped visit [35, 50): exactly 15 min
        (2, 0, m(36), Some(m(90))), // 14 min: not an exposure
        (3, 0, m(0), Some(m(10))),  // only before the window
        (4, 0, m(45), None),        // open: assumed 30 min, overlaps [45, 50) = 5 min: no
        (0, 1, m(20), Some(m(40))), // the index case again, at place 1
        (5, 1, m(20), Some(m(35))), // 15 min at place 1: close contact, first exposure at 20
        (5, 2, m(25), Some(m(45))), // the close contact at place 2 from 25...
        (6, 2, m(10), Some(m(40))), // ...with 6 for 15 min: secondary contact
        (7, 2, m(0), Some(m(24))),  // before the close contact arrived: no
        (1, 1, m(50), Some(m(80))), // the index case is gone from place 1 by then
    ];
    let mut b = IndexBuilder::new(vec![1800, 1800, 1800], 1800);
    for (p, l, t_in, t_out) in visits {
        b.push(p, l, t_in, t_out);
    }
    let index = b.build(Vec::new());
    let q = VenueOverlap { to: m(50), min_overlap: 15 * MINUTE, depth: 2 };
    let from = |person| IndexPerson { person, from: m(10) };
    let t = index.venue_overlap(&[from(0), IndexPerson { person: 0, from: m(30) }], &q);
    assert_eq!(t.index_persons, [0]);
    let close: Vec<(u32, i64)> = t.close.iter().map(|c| (c.person, c.first.start)).collect();
    assert_eq!(close, [(1, m(35)), (5, m(20))]);
    let secondary: Vec<u32> = t.secondary.iter().map(|c| c.person).collect();
    assert_eq!(secondary, [6]);
    let e = t.secondary[0].first;
    assert_eq!(t.secondary[0].last, e, "one exposure: the first is the last");
    assert_eq!((e.source, e.start, e.end, t.secondary[0].exposures), (5, m(25), m(40), 1));

    // Depth 1 stops at close contacts; a person both index and exposed is only an index person.
    let t = index.venue_overlap(&[from(0), from(1)], &VenueOverlap { depth: 1, ..q });
    assert_eq!(t.close.iter().map(|c| c.person).collect::<Vec<_>>(), [5]);
    assert!(t.secondary.is_empty());
}

#[test]
fn merged_persons_count_as_their_survivor() {
    let m = |x: i64| BASE + x * MINUTE;
    let mut b = IndexBuilder::new(vec![600], 600);
    b.push(0, 0, m(0), Some(m(30)));
    b.push(1, 0, m(0), Some(m(30))); // 1 is merged into 2
    b.push(3, 0, m(0), Some(m(30)));
    let index = b.build(vec![0, 2, 2, 3]);
    let q = VenueOverlap { to: m(60), min_overlap: 0, depth: 1 };
    let from = |person| IndexPerson { person, from: m(0) };
    let t = index.venue_overlap(&[from(0)], &q);
    assert_eq!(t.close.iter().map(|c| c.person).collect::<Vec<_>>(), [2, 3]);
    // Tracing the duplicate traces the survivor, with the duplicate's visits.
    let t = index.venue_overlap(&[from(1)], &q);
    assert_eq!(t.index_persons, [2]);
    assert_eq!(t.close.iter().map(|c| c.person).collect::<Vec<_>>(), [0, 3]);
}

/// The random cities are not vacuous: many have close contacts, some secondary ones.
#[test]
fn the_generator_exercises_every_tier() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut close, mut sec, mut links, mut n) = (0, 0, 0, 0);
    for _ in 0..2000 {
        let c = city().new_tree(&mut runner).unwrap().current();
        let t = oracle(&c);
        n += 1;
        close += (!t.close.is_empty()) as u32;
        sec += (!t.secondary.is_empty()) as u32;
        links += (!oracle_links(&c).is_empty()) as u32;
    }
    assert!(links * 20 > n, "{n} cities: {links} with links between index persons");
    assert!(close * 4 > n && sec * 40 > n, "{n} cities: {close} with close contacts, {sec} with secondary");
}

#[test]
fn a_snapshot_reads_back_the_same_index() {
    let m = |x: i64| BASE + x * MINUTE;
    let mut b = IndexBuilder::new(vec![600, 1200], 600);
    b.push(0, 0, m(0), Some(m(30)));
    b.push(1, 0, m(10), None);
    b.push(2, 1, m(0), Some(m(90)));
    b.push(3, 1, m(20), Some(m(40)));
    let index = b.build(vec![0, 1, 3, 3]);
    let mut bytes = Vec::new();
    index.write_snapshot(&mut bytes).unwrap();
    let back = chainbreak_trace::Index::read_snapshot(&mut bytes.as_slice()).unwrap();
    let q = VenueOverlap { to: m(120), min_overlap: 5 * MINUTE, depth: 2 };
    let who = [IndexPerson { person: 0, from: m(0) }, IndexPerson { person: 2, from: m(0) }];
    assert_eq!(back.venue_overlap(&who, &q), index.venue_overlap(&who, &q));
    assert_eq!((back.len(), back.survivor(2)), (4, 3));
    // Cut short or not a snapshot: an error, never a wrong index.
    assert!(chainbreak_trace::Index::read_snapshot(&mut &bytes[..bytes.len() - 3]).is_err());
    assert!(chainbreak_trace::Index::read_snapshot(&mut &b"CBTRACE0"[..]).is_err());
}

// ---------------------------------------------------------------- the cumulative rule

/// The cumulative rule by brute force: every pair of visits; the union of a contact's overlaps
/// with one source measured inside every period that starts at one of them.
fn oracle_cumulative(c: &City, places: &[bool], total: i64, period: i64) -> Vec<Contact> {
    let q = &c.query;
    let eff = effective_visits(c);
    let starts = index_starts(c);
    // (contact, source) -> exposures
    let mut pairs: BTreeMap<(u32, u32), Vec<Exposure>> = BTreeMap::new();
    for a in &eff {
        let Some(&from) = starts.get(&a.0) else { continue };
        if !places[a.1 as usize] {
            continue;
        }
        let (a_in, a_out) = (a.2.max(from), a.3.min(q.to));
        for b in &eff {
            if b.1 != a.1 || starts.contains_key(&b.0) {
                continue;
            }
            let (start, end) = (a_in.max(b.2), a_out.min(b.3));
            if end > start {
                pairs.entry((b.0, a.0)).or_default().push(Exposure {
                    start,
                    end,
                    place: a.1,
                    source: a.0,
                    contact_check_out_assumed: b.4,
                    source_check_out_assumed: a.4,
                });
            }
        }
    }
    let covered = |spans: &[(i64, i64)], from: i64, until: i64| -> i64 {
        // Second by second would be too slow; minutes are exact on the 5-minute grid.
        (from..until).step_by(60).filter(|&t| spans.iter().any(|&(a, b)| a <= t && t < b)).count() as i64 * 60
    };
    let mut found: BTreeMap<u32, Contact> = BTreeMap::new();
    for ((person, _), exposures) in pairs {
        let spans: Vec<(i64, i64)> = exposures.iter().map(|e| (e.start, e.end)).collect();
        if !spans.iter().any(|&(s, _)| covered(&spans, s, s + period) >= total) {
            continue;
        }
        for e in exposures {
            let c = found.entry(person).or_insert(Contact { person, first: e, last: e, exposures: 0 });
            c.first = c.first.min(e);
            if (std::cmp::Reverse(e.end), e) < (std::cmp::Reverse(c.last.end), c.last) {
                c.last = e;
            }
            c.exposures += 1;
        }
    }
    found.into_values().collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 500,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_2027),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_cumulative_rule_matches_the_oracle(
        c in city(),
        places in prop::collection::vec(any::<bool>(), PLACES as usize),
        total in prop::sample::select(vec![5 * MINUTE, 15 * MINUTE, 40 * MINUTE]),
        period in prop::sample::select(vec![30 * MINUTE, 60 * MINUTE, 24 * 60 * MINUTE]),
    ) {
        let index = build(&c, false);
        let sources = index.sources(&c.index);
        let mut excluded = vec![false; index.persons()];
        for (p, _) in &sources {
            excluded[*p as usize] = true;
        }
        let got = index.cumulative_exposures(&sources, c.query.to, |p| places[p as usize], total, period, &excluded);
        prop_assert_eq!(&got, &oracle_cumulative(&c, &places, total, period));
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let again = one.install(|| {
            build(&c, true).cumulative_exposures(&sources, c.query.to, |p| places[p as usize], total, period, &excluded)
        });
        prop_assert_eq!(&again, &got);
    }
}

// ---------------------------------------------------------------- trips

use chainbreak_trace::trips::{FlightRows, Mode, Rider, TrainBays, Why};
use chainbreak_trace::{SeatRules, TripHit, TripInfo, Trips};

/// A rider as (trip, person, crew, carriage, row).
type RiderRow = (u32, u32, bool, Option<u32>, Option<u32>);

#[derive(Debug, Clone)]
struct Journeys {
    /// Trip number -> info; riders as (trip, person, crew, carriage, row).
    trips: Vec<TripInfo>,
    riders: Vec<RiderRow>,
    sources: Vec<(u32, i64)>,
    to: i64,
    rules: SeatRules,
    excluded: Vec<bool>,
}

fn journeys() -> impl Strategy<Value = Journeys> {
    let mode = prop::sample::select(vec![Mode::Flight, Mode::Train, Mode::Bus, Mode::Ship]);
    let trip = (mode, 0i64..20, prop::option::of(0i64..6), any::<bool>());
    let rider = (
        0u32..4,
        0u32..8,
        prop::bool::weighted(0.2),
        prop::option::weighted(0.8, 1u32..3),
        prop::option::weighted(0.8, 1u32..9),
    );
    let rules = (
        prop::option::of((0u32..4, any::<bool>())),
        prop::option::of((any::<bool>(), 0u32..3)),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![0i64, 15, 60]),
    );
    (
        prop::collection::vec(trip, 4),
        prop::collection::vec(rider, 0..24),
        prop::collection::vec((0u32..8, 0i64..20), 1..3),
        10i64..30,
        rules,
        prop::collection::vec(prop::bool::weighted(0.1), 8),
    )
        .prop_map(|(trips, riders, sources, to, (flight, train, bus, ship, proximity, min), excluded)| {
            let h = |x: i64| BASE + x * 3600;
            Journeys {
                trips: trips
                    .into_iter()
                    .map(|(mode, dep, len, sealed)| TripInfo {
                        mode,
                        departure: h(dep),
                        arrival: len.map(|l| h(dep + l)),
                        sealed,
                    })
                    .collect(),
                riders,
                sources: sources.into_iter().map(|(p, from)| (p, h(from))).collect(),
                to: h(to),
                rules: SeatRules {
                    flight: flight.map(|(rows_either_side, crew)| FlightRows { rows_either_side, crew }),
                    train: train.map(|(sealed_whole_carriage, bays_either_side)| TrainBays {
                        sealed_whole_carriage,
                        bays_either_side,
                    }),
                    bus_sealed_everyone: bus,
                    ship_same_cabin: ship,
                    proximity,
                    min_overlap: min * MINUTE,
                },
                excluded,
            }
        })
}

/// The seat rules read as a table, rider pair by rider pair.
fn oracle_trips(j: &Journeys) -> Vec<TripHit> {
    let mut seen = BTreeSet::new();
    // The first seat of each (trip, person).
    let riders: Vec<_> = j.riders.iter().filter(|r| seen.insert((r.0, r.1))).copied().collect();
    let mut sources: BTreeMap<u32, i64> = BTreeMap::new();
    for &(p, from) in &j.sources {
        let e = sources.entry(p).or_insert(from);
        *e = (*e).min(from);
    }
    let mut hits = Vec::new();
    for (&source, &from) in &sources {
        for me in riders.iter().filter(|r| r.1 == source) {
            let info = j.trips[me.0 as usize];
            let end = info.arrival.unwrap_or(info.departure);
            let (start, stop) = (from.max(info.departure), j.to.min(end));
            let aboard = if end == info.departure {
                from <= info.departure && info.departure < j.to && j.rules.min_overlap == 0
            } else {
                stop > start && stop - start >= j.rules.min_overlap
            };
            if !aboard {
                continue;
            }
            for other in riders.iter().filter(|r| r.0 == me.0 && r.1 != source && !j.excluded[r.1 as usize]) {
                let r = &j.rules;
                let rows = match (me.4, other.4) {
                    (Some(a), Some(b)) => Some(a.abs_diff(b)),
                    _ => None,
                };
                let same_car = match (me.3, other.3) {
                    (Some(a), Some(b)) => Some(a == b),
                    _ => None,
                };
                let prox = r.proximity.then_some(Why::Proximity);
                let why = match (info.mode, r.flight, r.train) {
                    (Mode::Flight, None, _) | (Mode::Train, _, None) => prox,
                    (Mode::Flight, Some(_), _) if me.2 => Some(Why::Crew),
                    (Mode::Flight, Some(f), _) if other.2 => f.crew.then_some(Why::Crew),
                    (Mode::Flight, Some(f), _) => match rows {
                        None => Some(Why::SeatUnknown),
                        Some(d) if d <= f.rows_either_side => Some(Why::Rows(d)),
                        Some(_) => None,
                    },
                    (Mode::Train, _, Some(t)) => match (same_car, info.sealed && t.sealed_whole_carriage, rows) {
                        (None, ..) => Some(Why::SeatUnknown),
                        (Some(false), ..) => None,
                        (Some(true), true, _) => Some(Why::Carriage),
                        (Some(true), false, None) => Some(Why::SeatUnknown),
                        (Some(true), false, Some(d)) => (d <= t.bays_either_side).then_some(Why::Bays(d)),
                    },
                    (Mode::Bus, ..) if info.sealed && r.bus_sealed_everyone => Some(Why::Sealed),
                    (Mode::Bus, ..) => prox,
                    (Mode::Ship, ..) if !r.ship_same_cabin => prox,
                    (Mode::Ship, ..) => match same_car {
                        None => Some(Why::SeatUnknown),
                        Some(same) => same.then_some(Why::Cabin),
                    },
                };
                if let Some(why) = why {
                    hits.push(TripHit { person: other.1, from: start, to: stop.max(start), trip: me.0, source, why });
                }
            }
        }
    }
    hits.sort_unstable();
    hits
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_2028),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_seat_rules_match_the_oracle(j in journeys()) {
        let mut trips = Trips::default();
        for &(trip, person, crew, carriage, row) in &j.riders {
            trips.add_rider(trip, j.trips[trip as usize], Rider { person, crew, carriage, row });
        }
        let mut sources: BTreeMap<u32, i64> = BTreeMap::new();
        for &(p, from) in &j.sources {
            let e = sources.entry(p).or_insert(from);
            *e = (*e).min(from);
        }
        let sources: Vec<(u32, i64)> = sources.into_iter().collect();
        prop_assert_eq!(trips.hits(&sources, j.to, &j.rules, &j.excluded), oracle_trips(&j));
    }
}

/// The random journeys and cumulative cases are not vacuous either.
#[test]
fn the_generators_exercise_trips_and_sums() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut whys = std::collections::HashSet::new();
    let (mut cumulative, mut n) = (0, 0);
    for _ in 0..2000 {
        let j = journeys().new_tree(&mut runner).unwrap().current();
        whys.extend(oracle_trips(&j).iter().map(|h| std::mem::discriminant(&h.why)));
        let c = city().new_tree(&mut runner).unwrap().current();
        n += 1;
        cumulative += (!oracle_cumulative(&c, &[true, true, false, true], 15 * MINUTE, 60 * MINUTE).is_empty()) as u32;
    }
    assert_eq!(whys.len(), 8, "every reason a rider is a hit occurs");
    assert!(cumulative * 5 > n, "{n} cities: {cumulative} with cumulative contacts");
}
