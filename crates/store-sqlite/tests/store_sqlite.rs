//! The SQLite store against the conformance suite, on real files, plus SQLite-specific checks.

use chainbreak_store::Store;
use chainbreak_store_sqlite::{InitOptions, SqliteStore};

fn opts() -> InitOptions {
    InitOptions {
        time_zone: "Asia/Shanghai".into(),
        profile: "cn-2022-9th".into(),
        area_levels: chainbreak_core::model::DEFAULT_AREA_LEVELS.iter().map(|s| s.to_string()).collect(),
        created_at: "2022-03-01T00:00:00Z".parse().unwrap(),
    }
}

/// A fresh store in its own temporary directory (kept alive for the test's duration).
fn fresh() -> Box<dyn Store> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chainbreak.db");
    let store = SqliteStore::create(&path, &opts()).unwrap();
    std::mem::forget(dir); // removed with the OS temp dir; the store must outlive this function
    Box::new(store)
}

chainbreak_store::conformance_tests!(fresh());

#[test]
fn create_refuses_an_existing_store_and_open_refuses_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::create(&path, &opts()).unwrap());
    assert!(matches!(SqliteStore::create(&path, &opts()), Err(chainbreak_store::StoreError::Exists(_))));
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.meta().unwrap().time_zone, "Asia/Shanghai");
    assert!(matches!(
        SqliteStore::open(&dir.path().join("missing.db")),
        Err(chainbreak_store::StoreError::NotInitialized(_))
    ));
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::create(&path, &opts()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(SqliteStore::open(&path), Err(chainbreak_store::StoreError::Version { found: 99, .. })));
}

#[test]
fn the_store_is_in_wal_mode_with_every_visit_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::create(&path, &opts()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'visits'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn audit_records_cannot_be_changed_or_deleted_even_with_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = SqliteStore::create(&path, &opts()).unwrap();
    let mut b = store.begin("2022-03-01T00:00:00Z".parse().unwrap()).unwrap();
    b.append_audit(&chainbreak_core::access::AuditRecord {
        seq: 0,
        at: "2022-03-01T00:00:00Z".parse().unwrap(),
        actor: "li".into(),
        action: "read_personal_data".into(),
        entity: "person".into(),
        record: "P1".into(),
        via: "test".into(),
        reason: None,
    })
    .unwrap();
    b.commit().unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let e = conn.execute("UPDATE audit SET actor = 'someone else'", []).unwrap_err();
    assert!(e.to_string().contains("cannot be changed"), "{e}");
    let e = conn.execute("DELETE FROM audit", []).unwrap_err();
    assert!(e.to_string().contains("cannot be deleted"), "{e}");
    let n: i64 = conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
}

// ---------------------------------------------------------------- scope against an oracle

mod scope_oracle {
    use std::collections::BTreeSet;

    use chainbreak_core::model::*;
    use chainbreak_store::{Entity, KeyedVisit, Scope, Store, VisitQuery};
    use proptest::prelude::*;

    /// A random small world: areas as a forest (each area's parent is an earlier area of a
    /// higher level, or none), places in an area or none, persons with a residence or none,
    /// visits and person lab tests with or without a lab.
    #[derive(Debug, Clone)]
    struct World {
        areas: Vec<(usize, Option<usize>)>, // (level, parent)
        places: Vec<Option<usize>>,         // area
        persons: Vec<Option<usize>>,        // residence place
        visits: Vec<(usize, usize)>,        // (person, place)
        tests: Vec<(usize, Option<usize>)>, // (person, lab place)
    }

    fn world() -> impl Strategy<Value = World> {
        (1usize..8, 1usize..8, 1usize..10).prop_flat_map(|(n_areas, n_places, n_persons)| {
            (
                prop::collection::vec((0usize..7, any::<prop::sample::Index>(), any::<bool>()), n_areas),
                prop::collection::vec(prop::option::of(0..n_areas), n_places),
                prop::collection::vec(prop::option::of(0..n_places), n_persons),
                prop::collection::vec((0..n_persons, 0..n_places), 0..15),
                prop::collection::vec((0..n_persons, prop::option::of(0..n_places)), 0..6),
            )
                .prop_map(|(raw_areas, places, persons, visits, tests)| {
                    let mut areas: Vec<(usize, Option<usize>)> = Vec::new();
                    for (level, pick, rooted) in raw_areas {
                        let higher: Vec<usize> = (0..areas.len()).filter(|&j| areas[j].0 < level).collect();
                        let parent =
                            if rooted || higher.is_empty() { None } else { Some(higher[pick.index(higher.len())]) };
                        areas.push((level, parent));
                    }
                    World { areas, places, persons, visits, tests }
                })
        })
    }

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_646_092_800 + s).unwrap()
    }

    fn load(store: &mut dyn Store, w: &World) {
        let mut b = store.begin(t(0)).unwrap();
        let areas: Vec<Area> = w
            .areas
            .iter()
            .enumerate()
            .map(|(i, (level, parent))| Area {
                id: format!("A{i}"),
                name: format!("area {i}"),
                level: DEFAULT_AREA_LEVELS[*level].to_string(),
                parent: parent.map(|p| format!("A{p}")),
                geometry: None,
            })
            .collect();
        b.put_areas(&areas).unwrap();
        let places: Vec<Place> = w
            .places
            .iter()
            .enumerate()
            .map(|(i, area)| Place {
                id: format!("L{i}"),
                name: None,
                kind: PlaceKind::Residence,
                key_place: false,
                lat: None,
                lon: None,
                area: area.map(|a| format!("A{a}")),
            })
            .collect();
        b.put_places(&places).unwrap();
        let persons: Vec<Person> = w
            .persons
            .iter()
            .enumerate()
            .map(|(i, home)| Person {
                id: format!("P{i}"),
                residence: home.map(|h| format!("L{h}")),
                birth_year: None,
                sex: None,
                occupation: None,
            })
            .collect();
        b.put_persons(&persons).unwrap();
        let tests: Vec<LabTest> = w
            .tests
            .iter()
            .enumerate()
            .map(|(i, (person, lab))| LabTest {
                id: format!("T{i}"),
                subject_kind: SubjectKind::Person,
                subject_id: format!("P{person}"),
                pool_id: None,
                method: TestMethod::Pcr,
                result: TestResult::Negative,
                ct: None,
                sampled_at: t(0),
                reported_at: None,
                lab_id: lab.map(|l| format!("L{l}")),
                variant: None,
            })
            .collect();
        b.put_lab_tests(&tests).unwrap();
        let persons = b
            .lookup_persons(
                &(0..w.persons.len())
                    .map(|i| format!("P{i}"))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        let places = b
            .lookup_places(
                &(0..w.places.len())
                    .map(|i| format!("L{i}"))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        let visits: Vec<KeyedVisit> = w
            .visits
            .iter()
            .enumerate()
            .map(|(i, (p, l))| KeyedVisit {
                person: persons[*p].unwrap(),
                place: places[*l].unwrap(),
                t_in: t(i as i64).as_second(),
                t_out: None,
                source: VisitSource::VenueCode,
            })
            .collect();
        b.insert_visits(&visits).unwrap();
        b.commit().unwrap();
    }

    /// The oracle: what lies in `root`'s subtree, by walking parents.
    fn inside_area(w: &World, root: usize, mut a: usize) -> bool {
        loop {
            if a == root {
                return true;
            }
            match w.areas[a].1 {
                Some(p) => a = p,
                None => return false,
            }
        }
    }

    fn place_inside(w: &World, root: usize, l: usize) -> bool {
        w.places[l].is_some_and(|a| inside_area(w, root, a))
    }

    fn person_inside(w: &World, root: usize, p: usize) -> bool {
        w.persons[p].is_some_and(|l| place_inside(w, root, l))
    }

    fn ids(prefix: &str, n: usize, keep: impl Fn(usize) -> bool) -> BTreeSet<String> {
        (0..n).filter(|&i| keep(i)).map(|i| format!("{prefix}{i}")).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, rng_seed: proptest::test_runner::RngSeed::Fixed(20261129), ..ProptestConfig::default() })]

        #[test]
        fn scoped_reads_match_the_oracle(w in world()) {
            let mut store = super::fresh();
            load(&mut *store, &w);
            for root in 0..w.areas.len() {
                let scope = Scope::Within(format!("A{root}"));
                // Pages of 3, concatenated, are the whole set, in id order.
                let mut persons = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let page = store.persons_page(&scope, after.as_deref(), 3).unwrap();
                    let done = page.len() < 3;
                    after = page.last().map(|p| p.id.clone());
                    persons.extend(page.into_iter().map(|p| p.id));
                    if done { break; }
                }
                let mut sorted = persons.clone();
                sorted.sort();
                prop_assert_eq!(&persons, &sorted);
                let persons: BTreeSet<String> = persons.into_iter().collect();
                prop_assert_eq!(persons, ids("P", w.persons.len(), |p| person_inside(&w, root, p)));

                let places: BTreeSet<String> = store.places_page(&scope, None, 1000).unwrap().into_iter().map(|p| p.id).collect();
                prop_assert_eq!(places, ids("L", w.places.len(), |l| place_inside(&w, root, l)));

                let tests: BTreeSet<String> = store.lab_tests_page(&scope, None, 1000).unwrap().into_iter().map(|t| t.id).collect();
                let expected = ids("T", w.tests.len(), |i| {
                    let (p, lab) = w.tests[i];
                    person_inside(&w, root, p) || lab.is_some_and(|l| place_inside(&w, root, l))
                });
                prop_assert_eq!(tests, expected);

                let visits: Vec<i64> = store.visits_page(&scope, &VisitQuery::default(), 0, 1000).unwrap().into_iter().map(|v| v.row).collect();
                let expected: Vec<i64> = (0..w.visits.len())
                    .filter(|&i| { let (p, l) = w.visits[i]; person_inside(&w, root, p) || place_inside(&w, root, l) })
                    .map(|i| i as i64 + 1)
                    .collect();
                prop_assert_eq!(visits, expected);

                let person_ids: Vec<String> = (0..w.persons.len()).map(|i| format!("P{i}")).collect();
                let refs: Vec<&str> = person_ids.iter().map(String::as_str).collect();
                let got = store.in_scope(&scope, Entity::Person, &refs).unwrap();
                let want: Vec<bool> = (0..w.persons.len()).map(|p| person_inside(&w, root, p)).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}

/// A store of schema 8 (before the counts by area) opened by this version: migrations 9 and 10
/// run and count every case and episode it holds, as the writes would have.
#[test]
fn opening_a_schema_8_store_counts_its_cases_and_episodes() {
    use chainbreak_core::model::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let t = |s: i64| jiff::Timestamp::from_second(1_646_092_800 + s).unwrap();
    let mut store = SqliteStore::create(&path, &opts()).unwrap();
    let mut b = store.begin(t(0)).unwrap();
    b.put_areas(&[
        Area { id: "D1".into(), name: "D1".into(), level: "district".into(), parent: None, geometry: None },
        Area {
            id: "B1".into(),
            name: "B1".into(),
            level: "building".into(),
            parent: Some("D1".into()),
            geometry: None,
        },
    ])
    .unwrap();
    b.put_places(&[Place {
        id: "H1".into(),
        name: None,
        kind: PlaceKind::Residence,
        key_place: false,
        lat: None,
        lon: None,
        area: Some("B1".into()),
    }])
    .unwrap();
    let person = |id: &str, home: Option<&str>| Person {
        id: id.into(),
        residence: home.map(Into::into),
        birth_year: None,
        sex: None,
        occupation: None,
    };
    b.put_persons(&[person("P1", Some("H1")), person("P2", None)]).unwrap();
    let cases: Vec<Case> = (0..30)
        .map(|i| Case {
            id: format!("C{i}"),
            person_id: if i % 3 == 0 { "P2" } else { "P1" }.into(),
            classification: [Classification::Confirmed, Classification::Asymptomatic][i % 2],
            onset: (i % 4 != 0).then(|| jiff::civil::date(2022, 2, 20 + (i % 7) as i8)),
            sampled_at: None,
            reported_at: t(i as i64 * 20_000),
            imported: i % 5 == 0,
            detection: (i % 3 == 1).then_some(DetectionRoute::InQuarantine),
            severity: None,
            outcome: None,
            vaccine_doses: None,
            infector_case_id: None,
            cluster: None,
        })
        .collect();
    b.put_cases(&cases).unwrap();
    b.commit().unwrap();
    let scopes = [chainbreak_store::Scope::All, chainbreak_store::Scope::Within("D1".into())];
    let before: Vec<_> = scopes.iter().map(|s| store.case_counts(s).unwrap()).collect();
    assert_eq!(before[0].iter().map(|c| c.n).sum::<u64>(), 30);
    assert_eq!(before[1].iter().map(|c| c.n).sum::<u64>(), 20);
    drop(store);
    // Back to schema 8, as a store written by the previous version is.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE tallies; ALTER TABLE cases DROP COLUMN tally_area; ALTER TABLE episodes DROP COLUMN tally_area;
         DROP INDEX cases_onset_key_id; CREATE INDEX cases_onset_id ON cases(onset, id);
         DROP INDEX cases_class_reported_id; DROP INDEX cases_class_onset_id; DELETE FROM meta WHERE key = 'geo_version';
         DROP TRIGGER areas_geo_insert; DROP TRIGGER areas_geo_update; DROP TRIGGER areas_geo_delete;
         DROP TRIGGER places_geo_insert; DROP TRIGGER places_geo_update; DROP TRIGGER places_geo_delete;
         PRAGMA user_version = 8;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    let after: Vec<_> = scopes.iter().map(|s| store.case_counts(s).unwrap()).collect();
    assert_eq!(after, before);
}
