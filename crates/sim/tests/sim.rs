//! The simulator end to end: written files import cleanly, output is byte-identical for a seed
//! whatever the thread count, and properties of the synthetic city hold.

use std::collections::BTreeMap;
use std::path::Path;

use chainbreak_app::NoProgress;
use chainbreak_app::import::{ImportOptions, import_file};
use chainbreak_core::time::ManualClock;
use chainbreak_formats::Kind;
use chainbreak_sim::day::{DayMods, DayOut, NO_END, Rec, plan_chunk};
use chainbreak_sim::{City, CityParams};
use proptest::prelude::*;

fn read_dir_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn simulate_city_with_threads(params: CityParams, dir: &Path, threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| chainbreak_sim::write::simulate_city(params, dir, &mut |_, _| {}).unwrap());
}

#[test]
fn same_seed_same_bytes_whatever_the_thread_count() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut params = CityParams::new(40_000, 2, 7);
    params.ping_share = 0.02;
    simulate_city_with_threads(params.clone(), dirs[0].path(), 1);
    simulate_city_with_threads(params.clone(), dirs[1].path(), 2);
    params.seed = 8;
    simulate_city_with_threads(params, dirs[2].path(), 2);
    let one = read_dir_bytes(dirs[0].path());
    let two = read_dir_bytes(dirs[1].path());
    assert!(one.contains_key("visits.csv") && one.contains_key("pings.csv"), "{:?}", one.keys());
    // More than one chunk of persons, so the parallel formatting really splits.
    assert!(one["persons.csv"].len() > 1_000_000);
    assert_eq!(one.keys().collect::<Vec<_>>(), two.keys().collect::<Vec<_>>());
    for (name, bytes) in &one {
        assert!(bytes == &two[name], "{name} differs between 1 and 2 threads");
    }
    let other = read_dir_bytes(dirs[2].path());
    assert_ne!(one["visits.csv"], other["visits.csv"]);
}

#[test]
fn written_files_import_cleanly() {
    let out = tempfile::tempdir().unwrap();
    let mut params = CityParams::new(3_000, 3, 42);
    params.ping_share = 0.05;
    let stats = chainbreak_sim::write::simulate_city(params, out.path(), &mut |_, _| {}).unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let t0: jiff::Timestamp = "2022-03-10T00:00:00Z".parse().unwrap();
    let clock = ManualClock::new(t0);
    let mut store =
        chainbreak_app::init(&store_dir.path().join("s.db"), "Asia/Shanghai", "cn-2022-9th", &clock).unwrap();
    let order = [
        (Kind::Areas, "areas.geojson"),
        (Kind::Units, "units.csv"),
        (Kind::Places, "places.csv"),
        (Kind::Persons, "persons.csv"),
        (Kind::Staff, "staff.csv"),
        (Kind::Groups, "groups.csv"),
        (Kind::Memberships, "memberships.csv"),
        (Kind::Visits, "visits.csv"),
        (Kind::Trips, "trips.csv"),
        (Kind::Passengers, "passengers.csv"),
        (Kind::Arrivals, "arrivals.csv"),
        (Kind::Pings, "pings.csv"),
    ];
    for (kind, file) in order {
        let path = out.path().join(file);
        let report = import_file(&mut store, kind, &path, &ImportOptions::default(), t0, &mut NoProgress)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(report.rejected, 0, "{file}");
        if file != "areas.geojson" {
            assert_eq!(report.imported, stats.rows(file), "{file}");
        }
        assert!(report.imported > 0, "{file} is empty");
    }
}

#[test]
fn bad_parameters_fail_before_any_work() {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("never");
    let mut params = CityParams::new(1_000, 3, 1);
    params.missed_checkin_share = -0.1;
    let e = chainbreak_sim::write::simulate_city(params, &target, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("missed_checkin_share"), "{e}");
    assert!(!target.exists(), "nothing is written for bad parameters");
}

/// Every stay and ride of a city's days (ground truth), per day.
fn all_days(city: &City) -> Vec<DayOut> {
    (0..city.params.days)
        .map(|day| {
            let mut out = DayOut::default();
            plan_chunk(city, day, 0, city.persons.len() as u32, |_| DayMods::default(), &mut out);
            out
        })
        .collect()
}

proptest! {
    // Fixed seed: the same cities on every run.
    #![proptest_config(ProptestConfig {
        cases: 12,
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x51_c17e),
        ..ProptestConfig::default()
    })]

    #[test]
    fn city_properties_hold(persons in 800u32..4_000, seed in any::<u64>(), days in 1u32..8) {
        let city = City::build(CityParams::new(persons, days, seed)).unwrap();
        // Households: 1 to 6 persons, mean about 2.6.
        prop_assert!(city.households.iter().all(|h| (1..=6).contains(&h.1)));
        let mean = persons as f64 / city.households.len() as f64;
        prop_assert!((2.2..3.0).contains(&mean), "mean household {}", mean);
        let all = all_days(&city);
        let mut recorded = 0u64;
        let mut no_checkout = 0u64;
        for day in &all {
            // Nobody in two places at once: a person's stays and rides never overlap.
            let mut spans: Vec<(u32, i64, i64)> = day.stays.iter().map(|s| (s.person, s.t_in, s.t_out)).collect();
            spans.extend(day.rides.iter().map(|r| (r.person, r.t_in, r.t_out)));
            spans.sort_unstable();
            for w in spans.windows(2) {
                prop_assert!(w[0].1 < w[0].2, "empty stay {:?}", w[0]);
                if w[0].0 == w[1].0 {
                    prop_assert!(w[0].2 <= w[1].1, "overlap {:?} {:?}", w[0], w[1]);
                }
            }
            for s in &day.stays {
                prop_assert!(s.t_out == NO_END || s.t_out > s.t_in);
                match s.rec {
                    Rec::Missing => {}
                    Rec::Full => recorded += 1,
                    Rec::NoCheckout => { recorded += 1; no_checkout += 1; }
                }
            }
        }
        // Check-ins per person-day, and the share without check-out.
        let per_person_day = recorded as f64 / (persons as f64 * days as f64);
        prop_assert!((3.0..=6.0).contains(&per_person_day), "{} check-ins per person-day", per_person_day);
        let share = no_checkout as f64 / recorded as f64;
        prop_assert!((0.08..0.20).contains(&share), "{} without check-out", share);
    }
}
