//! The conformance suite: what every backend must do, checked on a real instance.
//!
//! A backend's integration tests call [`conformance_tests!`] with an expression that makes a
//! fresh, initialised store; each check becomes its own `#[test]`.
//!
//! ```ignore
//! chainbreak_store::conformance_tests!(fresh_store());
//! ```

mod surveillance;

use chainbreak_core::model::*;
use jiff::Timestamp;

pub use surveillance::*;

use chainbreak_core::access::{AuditRecord, Role, User};

use crate::{
    AuditFilter, ChangeOp, Decision, Entity, KeyedVisit, Proposal, ProposalFilter, ProposalIndex, ProposalStatus,
    Scope, Store, StoreError, TraceRecord, VisitQuery,
};

/// Generates one `#[test]` per conformance check.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            meta_is_kept, entities_round_trip, unknown_references_are_refused_and_nothing_is_written,
            a_dropped_batch_leaves_the_store_unchanged, visits_scan_and_trail, bulk_visits_keep_every_index,
            change_feed_is_monotone, merge_and_unmerge_with_history, registration_by_id_is_idempotent,
            area_levels_are_data_and_order_the_hierarchy, case_classification_history,
            accounts_and_tokens, audit_is_appended_and_filtered, scoped_reads_follow_the_area_tree,
            purge_deletes_old_location_data_and_logs_each_run, proposals_are_recorded_by_index_atomically,
            proposals_are_decided_all_or_nothing, proposals_are_listed_by_case_status_and_scope,
            episodes_are_events_with_a_current_state, facilities_keep_their_rooms, zones_are_events_with_a_current_state, case_lists_sort_and_page_by_keyset,
            case_and_episode_counts_follow_every_write, scoped_reads_see_the_tree_as_it_is_now,
            goods_read_back_as_written,
            alerts_are_raised_once_and_moved_with_their_events, review_items_are_queued_once_ranked_and_decided,
            response_clock_starts_and_stops_on_events, sentinel_records_and_batch_lookups_read_what_was_written,
            goods_responses_and_suspensions_are_kept, service_requests_are_events_with_a_current_state);
    };
    (@each $make:expr; $($name:ident),+) => {
        $(
            #[test]
            fn $name() {
                let mut store = $make;
                $crate::conformance::$name(&mut *store);
            }
        )+
    };
}

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_646_092_800 + s).expect("in range") // 2022-03-01T00:00:00Z + s
}

fn place(id: &str, kind: PlaceKind, area: Option<&str>) -> Place {
    Place {
        id: id.into(),
        name: Some(format!("{id} name")),
        kind,
        key_place: false,
        lat: Some(30.5),
        lon: Some(114.3),
        area: area.map(Into::into),
    }
}

fn person(id: &str, residence: Option<&str>) -> Person {
    Person {
        id: id.into(),
        residence: residence.map(Into::into),
        birth_year: Some(1980),
        sex: Some(Sex::Female),
        occupation: Some("teacher".into()),
    }
}

fn area(id: &str, level: &str, parent: Option<&str>) -> Area {
    Area {
        id: id.into(),
        name: format!("{id} name"),
        level: level.into(),
        parent: parent.map(Into::into),
        geometry: None,
    }
}

/// A small world: two areas, three places, three persons.
fn seed(store: &mut dyn Store) {
    let mut b = store.begin(t(0)).expect("begin");
    b.put_areas(&[area("D1", "district", None), area("B1", "building", Some("D1"))]).expect("areas");
    b.put_places(&[
        place("H1", PlaceKind::Residence, Some("B1")),
        place("M1", PlaceKind::Mall, Some("D1")),
        place("W1", PlaceKind::Workplace, None),
    ])
    .expect("places");
    b.put_persons(&[person("P1", Some("H1")), person("P2", Some("H1")), person("P3", None)]).expect("persons");
    b.commit().expect("commit");
}

fn key_of(store: &dyn Store, id: &str, persons: bool) -> u32 {
    let keys = if persons { store.person_keys() } else { store.place_keys() }.expect("keys");
    keys.into_iter().find(|(i, _)| i == id).map(|(_, k)| k).unwrap_or_else(|| panic!("{id} has a key"))
}

fn visit(store: &dyn Store, p: &str, l: &str, t_in: i64, t_out: Option<i64>) -> KeyedVisit {
    KeyedVisit {
        person: key_of(store, p, true),
        place: key_of(store, l, false),
        t_in: t(t_in).as_second(),
        t_out: t_out.map(|x| t(x).as_second()),
        source: VisitSource::VenueCode,
    }
}

pub fn meta_is_kept(store: &mut dyn Store) {
    let m = store.meta().expect("meta");
    assert!(m.schema_version >= 1);
    assert!(!m.time_zone.is_empty() && !m.profile.is_empty());
    assert!(!m.area_levels.is_empty());
    assert_eq!(store.last_seq().unwrap(), 0, "a fresh store has no changes");
}

pub fn entities_round_trip(store: &mut dyn Store) {
    seed(store);
    let geometry: geojson::Geometry =
        r#"{"type":"Polygon","coordinates":[[[114.3,30.5],[114.31,30.5],[114.31,30.51],[114.3,30.5]]]}"#.parse().unwrap();
    let mut b = store.begin(t(10)).unwrap();
    let mut b1 = area("B1", "building", Some("D1"));
    b1.geometry = Some(geometry.clone());
    b.put_areas(&[b1.clone()]).unwrap();
    b.put_identifiers(&[
        Identifier { person_id: "P1".into(), kind: IdentifierKind::Phone, value: "13800000000".into() },
        Identifier { person_id: "P1".into(), kind: IdentifierKind::IdDocument, value: "420000".into() },
    ])
    .unwrap();
    let lab = LabTest {
        id: "T1".into(),
        subject_kind: SubjectKind::Person,
        subject_id: "P1".into(),
        pool_id: Some("POOL9".into()),
        method: TestMethod::Pcr,
        result: TestResult::Positive,
        ct: Some(28.5),
        sampled_at: t(3600),
        reported_at: Some(t(7200)),
        lab_id: Some("W1".into()),
        variant: Some("BA.2".into()),
    };
    b.put_lab_tests(std::slice::from_ref(&lab)).unwrap();
    b.put_staff(&[StaffMember { place_id: "W1".into(), person_id: "P3".into(), role: Some("clerk".into()) }]).unwrap();
    b.put_groups(&[Group {
        id: "G1".into(),
        kind: GroupKind::Household,
        name: None,
        place_id: Some("H1".into()),
        start: None,
        end: None,
    }])
    .unwrap();
    b.put_memberships(&[Membership { group_id: "G1".into(), person_id: "P1".into(), role: None }]).unwrap();
    b.put_trips(&[Trip {
        id: "F1".into(),
        mode: TripMode::Flight,
        number: "CZ3456".into(),
        departure: t(0),
        arrival: Some(t(7200)),
        origin: Some("CAN".into()),
        destination: Some("WUH".into()),
        sealed: true,
    }])
    .unwrap();
    b.put_passengers(&[TripPassenger {
        trip_id: "F1".into(),
        person_id: "P2".into(),
        role: TripRole::Passenger,
        carriage: None,
        seat_row: Some(12),
        seat: Some("12C".into()),
    }])
    .unwrap();
    b.put_arrivals(&[Arrival {
        person_id: "P2".into(),
        origin: "HK".into(),
        origin_risk: OriginRisk::Abroad,
        left_origin_at: t(0),
        arrived_at: t(7200),
        trip_id: Some("F1".into()),
        destination: Some("H1".into()),
    }])
    .unwrap();
    b.put_goods_batches(&[GoodsBatch {
        id: "GB1".into(),
        product: "frozen shrimp".into(),
        origin_country: "EC".into(),
        plant: Some("EC-123".into()),
        port: Some("Tianjin".into()),
        entry_date: Some(jiff::civil::date(2022, 2, 20)),
        inspection_cert: None,
        test_cert: None,
        disinfection_cert: None,
        trace_code: Some("TC1".into()),
        parent_batch_id: None,
    }])
    .unwrap();
    b.put_goods_hops(&[GoodsHop {
        batch_id: "GB1".into(),
        kind: HopKind::Transfer,
        from_place: Some("W1".into()),
        to_place: Some("M1".into()),
        to_batch_id: None,
        date: jiff::civil::date(2022, 2, 22),
        quantity: Some(40.0),
    }])
    .unwrap();
    b.put_sentinel(&[SentinelRecord {
        place_id: "M1".into(),
        area_id: Some("D1".into()),
        feed: SentinelFeed::Pharmacy,
        date: jiff::civil::date(2022, 3, 1),
        category: Some("antipyretic".into()),
        count: 12,
        positives: None,
    }])
    .unwrap();
    b.put_pings(&[LocationPing { person_id: "P1".into(), t: t(60), lat: 30.5, lon: 114.3, accuracy_m: Some(50.0) }])
        .unwrap();
    b.put_units(&[Unit { id: "U1".into(), name: "Community station".into(), parent: None, area: Some("D1".into()) }])
        .unwrap();
    b.commit().unwrap();

    assert_eq!(store.person("P1").unwrap(), Some(person("P1", Some("H1"))));
    assert_eq!(store.person("nobody").unwrap(), None);
    let members = store.group_members().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].group_id.as_str(), members[0].kind), ("G1", GroupKind::Household));
    assert_eq!(members[0].person, key_of(store, "P1", true));
    assert_eq!(store.households_of(&["P1", "P2", "nobody"]).unwrap(), [Some("G1".to_string()), None, None]);
    let staff = store.staff_of("W1").unwrap();
    assert_eq!((staff.len(), staff[0].person_id.as_str(), staff[0].role.as_deref()), (1, "P3", Some("clerk")));
    assert!(store.staff_of("M1").unwrap().is_empty());
    let units = store.units_of("P3").unwrap();
    assert_eq!((units.len(), units[0].place_id.as_str()), (1, "W1"));
    assert!(store.units_of("P1").unwrap().is_empty());
    let riders = store.trip_riders().unwrap();
    assert_eq!(riders.len(), 1);
    let r = &riders[0];
    assert_eq!(
        (r.trip_id.as_str(), r.mode, r.departure, r.arrival, r.sealed),
        ("F1", TripMode::Flight, t(0).as_second(), Some(t(7200).as_second()), true)
    );
    assert_eq!(
        (r.person, r.role, r.carriage, r.seat_row),
        (key_of(store, "P2", true), TripRole::Passenger, None, Some(12))
    );
    let mut pings = Vec::new();
    let end = store.scan_pings(0, &mut |batch| pings.extend_from_slice(batch)).unwrap();
    assert_eq!(pings.len(), 1);
    assert_eq!(
        (pings[0].person, pings[0].t, pings[0].lat, pings[0].lon),
        (key_of(store, "P1", true), t(60).as_second(), 30.5, 114.3)
    );
    assert_eq!(end.last_row, pings[0].row);
    let mut more = 0;
    assert_eq!(store.scan_pings(end.last_row, &mut |b| more += b.len()).unwrap().last_row, end.last_row);
    assert_eq!(more, 0, "nothing after the last row");
    assert_eq!(store.place("H1").unwrap(), Some(place("H1", PlaceKind::Residence, Some("B1"))));
    assert_eq!(store.area("B1").unwrap(), Some(b1));
    assert_eq!(store.area("D1").unwrap().unwrap().parent, None);
    assert_eq!(store.lab_test("T1").unwrap(), Some(lab));
    let ids = store.identifiers("P1").unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().any(|i| i.kind == IdentifierKind::Phone && i.value == "13800000000"));
    for (entity, n) in [
        (Entity::Area, 2),
        (Entity::Place, 3),
        (Entity::Person, 3),
        (Entity::Identifier, 2),
        (Entity::Staff, 1),
        (Entity::Group, 1),
        (Entity::Membership, 1),
        (Entity::Trip, 1),
        (Entity::Passenger, 1),
        (Entity::Arrival, 1),
        (Entity::GoodsBatch, 1),
        (Entity::GoodsHop, 1),
        (Entity::Sentinel, 1),
        (Entity::Ping, 1),
        (Entity::Unit, 1),
        (Entity::LabTest, 1),
    ] {
        assert_eq!(store.count(entity).unwrap(), n, "{entity}");
    }
    // Upserts replace, they do not duplicate.
    let mut b = store.begin(t(20)).unwrap();
    let mut p1 = person("P1", None);
    p1.occupation = Some("courier".into());
    b.put_persons(&[p1.clone()]).unwrap();
    b.commit().unwrap();
    assert_eq!(store.person("P1").unwrap(), Some(p1));
    assert_eq!(store.count(Entity::Person).unwrap(), 3);
}

pub fn unknown_references_are_refused_and_nothing_is_written(store: &mut dyn Store) {
    seed(store);
    let mut b = store.begin(t(10)).unwrap();
    let err = b.put_persons(&[person("P9", Some("H1")), person("P10", Some("NOPE"))]).unwrap_err();
    match err {
        StoreError::UnknownReference { index, field, value, .. } => {
            assert_eq!((index, field, value.as_str()), (1, "residence", "NOPE"));
        }
        other => panic!("expected UnknownReference, got {other:?}"),
    }
    assert_eq!(err_code_of_unknown(), chainbreak_core::ErrorCode::InputUnknownReference);
    // The failed call wrote nothing, and the batch goes on.
    b.put_persons(&[person("P11", None)]).unwrap();
    b.commit().unwrap();
    assert_eq!(store.person("P9").unwrap(), None, "nothing of the failed call was written");
    assert!(store.person("P11").unwrap().is_some());
    let mut b = store.begin(t(11)).unwrap();
    let err = b.put_lab_tests(&[LabTest {
        id: "T1".into(),
        subject_kind: SubjectKind::Person,
        subject_id: "P404".into(),
        pool_id: None,
        method: TestMethod::Antigen,
        result: TestResult::Negative,
        ct: None,
        sampled_at: t(0),
        reported_at: None,
        lab_id: None,
        variant: None,
    }]);
    assert!(matches!(err, Err(StoreError::UnknownReference { field: "subject_id", .. })));
}

fn err_code_of_unknown() -> chainbreak_core::ErrorCode {
    StoreError::UnknownReference { index: 0, field: "x", entity: "person", value: String::new() }.code()
}

pub fn a_dropped_batch_leaves_the_store_unchanged(store: &mut dyn Store) {
    seed(store);
    let seq = store.last_seq().unwrap();
    {
        let mut b = store.begin(t(10)).unwrap();
        b.put_persons(&[person("P7", None)]).unwrap();
        b.expect_visits(200_000).unwrap();
        let v = KeyedVisit { person: 1, place: 1, t_in: 0, t_out: None, source: VisitSource::VenueCode };
        b.insert_visits(&vec![v; 1000]).unwrap();
        // dropped here: an error, a crash or a kill before commit
    }
    assert_eq!(store.person("P7").unwrap(), None);
    assert_eq!(store.count(Entity::Visit).unwrap(), 0);
    assert_eq!(store.last_seq().unwrap(), seq);
    // The indexes dropped for the bulk load are back: a trail query still works.
    assert!(store.visits_of_person("P1", t(-10), t(10)).unwrap().is_empty());
}

pub fn visits_scan_and_trail(store: &mut dyn Store) {
    seed(store);
    let rows = vec![
        visit(store, "P1", "M1", 100, Some(200)),
        visit(store, "P2", "M1", 150, None),
        visit(store, "P1", "W1", 50, Some(90)),
        visit(store, "P1", "H1", 5000, None),
    ];
    let mut b = store.begin(t(10)).unwrap();
    b.insert_visits(&rows).unwrap();
    b.commit().unwrap();
    let mut seen = Vec::new();
    let end = store.scan_visits(0, &mut |batch| seen.extend_from_slice(batch)).unwrap();
    assert_eq!(seen.iter().map(|s| s.visit).collect::<Vec<_>>(), rows, "scan returns rows in arrival order");
    assert!(seen.windows(2).all(|w| w[0].row < w[1].row));
    assert_eq!(end.last_row, seen.last().unwrap().row);
    assert_eq!(end.seq, store.last_seq().unwrap(), "the scan says which change it is current to");
    let mut tail = Vec::new();
    store.scan_visits(seen[1].row, &mut |batch| tail.extend_from_slice(batch)).unwrap();
    assert_eq!(tail.len(), 2, "a scan can resume after a row");
    let trail = store.visits_of_person("P1", t(0), t(1000)).unwrap();
    assert_eq!(trail.iter().map(|v| v.place_id.as_str()).collect::<Vec<_>>(), ["W1", "M1"], "by t_in, within range");
    assert_eq!(trail[1].t_out, Some(t(200)));
    assert!(store.visits_of_person("P404", t(0), t(1000)).unwrap().is_empty());
}

pub fn bulk_visits_keep_every_index(store: &mut dyn Store) {
    seed(store);
    let (p1, p2) = (key_of(store, "P1", true), key_of(store, "P2", true));
    let m1 = key_of(store, "M1", false);
    let n = 150_000u32;
    let rows: Vec<KeyedVisit> = (0..n)
        .map(|i| KeyedVisit {
            person: if i % 2 == 0 { p1 } else { p2 },
            place: m1,
            t_in: t(i as i64 * 10).as_second(),
            t_out: Some(t(i as i64 * 10 + 5).as_second()),
            source: VisitSource::VenueCode,
        })
        .collect();
    let mut b = store.begin(t(10)).unwrap();
    b.expect_visits(n as u64).unwrap();
    for chunk in rows.chunks(10_000) {
        b.insert_visits(chunk).unwrap();
    }
    b.commit().unwrap();
    assert_eq!(store.count(Entity::Visit).unwrap(), n as u64);
    let trail = store.visits_of_person("P2", t(0), t(100)).unwrap();
    assert_eq!(trail.len(), 5, "odd rows at t = 10, 30, 50, 70, 90");
    let mut total = 0usize;
    store.scan_visits(0, &mut |b| total += b.len()).unwrap();
    assert_eq!(total, n as usize);
}

pub fn change_feed_is_monotone(store: &mut dyn Store) {
    seed(store);
    let after_seed = store.last_seq().unwrap();
    assert!(after_seed >= 8, "every seeded row is a change");
    let rows = vec![visit(store, "P1", "M1", 0, None), visit(store, "P2", "M1", 1, None)];
    let mut b = store.begin(t(10)).unwrap();
    b.insert_visits(&rows).unwrap();
    b.put_persons(&[person("P4", None)]).unwrap();
    let seq = b.commit().unwrap();
    assert_eq!(seq, store.last_seq().unwrap());
    let all = store.changes_since(0, 10_000).unwrap();
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all.last().unwrap().seq, seq);
    let new = store.changes_since(after_seed, 100).unwrap();
    let v = new.iter().find(|c| c.entity == Entity::Visit).expect("a visit change");
    assert_eq!((v.op, v.key_to - v.key_from + 1), (ChangeOp::Upsert, 2), "one change names the row range");
    assert!(new.iter().any(|c| c.entity == Entity::Person && c.op == ChangeOp::Upsert));
    let paged = store.changes_since(0, 3).unwrap();
    assert_eq!(paged.len(), 3);
    assert_eq!(paged, all[..3]);
}

pub fn merge_and_unmerge_with_history(store: &mut dyn Store) {
    seed(store);
    let rows = vec![visit(store, "P1", "M1", 10, None), visit(store, "P3", "W1", 20, None)];
    let mut b = store.begin(t(10)).unwrap();
    b.insert_visits(&rows).unwrap();
    b.commit().unwrap();
    let (p1, p3) = (key_of(store, "P1", true), key_of(store, "P3", true));

    let mut b = store.begin(t(100)).unwrap();
    let m = b.merge_persons("P1", "P3", "same ID document", "tracer-7", t(100)).unwrap();
    assert!(b.merge_persons("P1", "P1", "x", "y", t(100)).is_err(), "no self-merge");
    assert!(b.merge_persons("P2", "P3", "x", "y", t(100)).is_err(), "a duplicate merges once");
    assert!(b.merge_persons("P3", "P2", "x", "y", t(100)).is_err(), "no merge into a merged person");
    b.commit().unwrap();
    assert_eq!(store.canonical_person("P3").unwrap().as_deref(), Some("P1"));
    let trail = store.visits_of_person("P1", t(0), t(1000)).unwrap();
    assert_eq!(trail.len(), 2, "the survivor's trail includes the duplicate's visits");
    assert!(trail.iter().all(|v| v.person_id == "P1"));
    let mut persons = Vec::new();
    store.scan_visits(0, &mut |b| persons.extend(b.iter().map(|s| s.visit.person))).unwrap();
    assert_eq!(persons, [p1, p3], "scans give persons as recorded");
    let survivors = store.person_survivors().unwrap();
    assert_eq!((survivors[p1 as usize], survivors[p3 as usize]), (p1, p1), "the survivor map resolves them");
    let changes = store.changes_since(0, 10_000).unwrap();
    assert!(changes.iter().any(|c| c.op == ChangeOp::Merge && c.key_from == p3 as i64 && c.key_to == p1 as i64));

    let mut b = store.begin(t(200)).unwrap();
    let undone = b.unmerge_persons(m.id, t(200)).unwrap();
    assert!(b.unmerge_persons(m.id, t(201)).is_err(), "a merge is undone once");
    b.commit().unwrap();
    assert_eq!(undone.unmerged_at, Some(t(200)));
    assert_eq!(store.canonical_person("P3").unwrap().as_deref(), Some("P3"));
    assert_eq!(store.person_survivors().unwrap()[p3 as usize], p3);
    assert_eq!(store.visits_of_person("P1", t(0), t(1000)).unwrap().len(), 1);
    let history = store.merges("P3").unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].reason.as_str(), history[0].actor.as_str()), ("same ID document", "tracer-7"));
    assert_eq!(history[0].merged_at, t(100));
    assert_eq!(history[0].unmerged_at, Some(t(200)));
}

pub fn registration_by_id_is_idempotent(store: &mut dyn Store) {
    seed(store);
    let mut b = store.begin(t(10)).unwrap();
    let k = b.register_persons(&["P1", "NEW1", "NEW1"]).unwrap();
    assert_eq!(k[1], k[2]);
    let l = b.register_places(&["M1", "NEWPLACE"]).unwrap();
    b.commit().unwrap();
    assert_eq!(k[0], key_of(store, "P1", true));
    assert_eq!(l[0], key_of(store, "M1", false));
    assert_eq!(store.place("NEWPLACE").unwrap().unwrap().kind, PlaceKind::Other);
    let kinds = store.place_kinds().unwrap();
    let newplace = key_of(store, "NEWPLACE", false);
    assert!(kinds.contains(&(newplace, PlaceKind::Other)), "{kinds:?}");
    assert_eq!(kinds.len() as u64, store.count(Entity::Place).unwrap());
    assert_eq!(store.person("NEW1").unwrap().unwrap().residence, None);
}

pub fn area_levels_are_data_and_order_the_hierarchy(store: &mut dyn Store) {
    seed(store);
    let mut b = store.begin(t(10)).unwrap();
    let err = b.put_areas(&[area("D1", "district", Some("B1"))]).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { index: 0, field: "parent", .. }), "a cycle is refused: {err:?}");
    let err = b.put_areas(&[area("X1", "galaxy", None)]).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "level", .. }), "{err:?}");
    let err = b.put_areas(&[area("C1", "community", Some("B1"))]).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "parent", .. }), "a community is not inside a building");
    // Changing a level may not put an area below its own children (that would allow a cycle).
    let err = b.put_areas(&[area("D1", "building", None)]).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "level", .. }), "{err:?}");
    // A parent may come after its child in the same call.
    b.put_areas(&[area("K1", "compound", Some("S1")), area("S1", "subdistrict", Some("D1"))]).unwrap();
    b.commit().unwrap();
    assert_eq!(store.area("D1").unwrap().unwrap().parent, None);
    assert_eq!(store.area("D1").unwrap().unwrap().level, "district");
    assert_eq!(store.area("K1").unwrap().unwrap().parent.as_deref(), Some("S1"));
}

pub fn case_classification_history(store: &mut dyn Store) {
    seed(store);
    let mut case = Case {
        id: "C1".into(),
        person_id: "P1".into(),
        classification: Classification::Suspected,
        onset: Some(jiff::civil::date(2022, 3, 1)),
        sampled_at: Some(t(0)),
        reported_at: t(3600),
        imported: false,
        detection: Some(DetectionRoute::Community),
        severity: Some(Severity::Mild),
        outcome: Some(Outcome::Ongoing),
        vaccine_doses: Some(2),
        infector_case_id: None,
        cluster: Some("K1".into()),
    };
    for (at, class) in
        [(10, Classification::Suspected), (20, Classification::Confirmed), (30, Classification::Confirmed)]
    {
        case.classification = class;
        let mut b = store.begin(t(at)).unwrap();
        b.put_cases(std::slice::from_ref(&case)).unwrap();
        b.commit().unwrap();
    }
    assert_eq!(store.case("C1").unwrap(), Some(case));
    let h = store.case_history("C1").unwrap();
    assert_eq!(h.len(), 2, "a change of classification is recorded once");
    assert_eq!((h[0].from, h[0].to, h[0].at), (None, Classification::Suspected, t(10)));
    assert_eq!((h[1].from, h[1].to, h[1].at), (Some(Classification::Suspected), Classification::Confirmed, t(20)));
}

fn user(name: &str, jurisdiction: &str) -> User {
    User {
        name: name.into(),
        role: Role::Tracer,
        unit: "CDC".into(),
        jurisdiction: jurisdiction.into(),
        disabled: false,
        created_at: t(0),
    }
}

pub fn accounts_and_tokens(store: &mut dyn Store) {
    seed(store);
    let mut b = store.begin(t(0)).unwrap();
    b.add_user(&user("li", "D1"), "$argon2id$fake").unwrap();
    let err = b.add_user(&user("li", "D1"), "x").unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "name", .. }), "{err:?}");
    let err = b.add_user(&user("wang", "NOWHERE"), "x").unwrap_err();
    assert!(matches!(err, StoreError::UnknownReference { field: "jurisdiction", .. }), "{err:?}");
    b.add_user(&user("zhao", "B1"), "$argon2id$other").unwrap();
    let live = b.add_token("li", &[7u8; 32], "laptop", t(0), None).unwrap();
    let expiring = b.add_token("li", &[8u8; 32], "phone", t(0), Some(t(100))).unwrap();
    let revoked = b.add_token("zhao", &[9u8; 32], "old", t(0), None).unwrap();
    b.revoke_token(revoked.id, t(5)).unwrap();
    assert!(b.revoke_token(revoked.id, t(6)).is_err(), "a token is revoked once");
    assert!(matches!(b.add_token("nobody", &[1u8; 32], "x", t(0), None), Err(StoreError::NotFound(_))));
    b.commit().unwrap();

    assert_eq!(store.user("li").unwrap(), Some(user("li", "D1")));
    assert_eq!(store.users().unwrap().iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["li", "zhao"]);
    assert_eq!(store.password_hash("li").unwrap().as_deref(), Some("$argon2id$fake"));
    let (u, tok) = store.token_user(&[7u8; 32], t(50)).unwrap().unwrap();
    assert_eq!((u.name.as_str(), tok.id, tok.label.as_str()), ("li", live.id, "laptop"));
    assert!(store.token_user(&[8u8; 32], t(50)).unwrap().is_some());
    assert!(store.token_user(&[8u8; 32], t(100)).unwrap().is_none(), "expired at expires_at");
    assert_eq!(expiring.expires_at, Some(t(100)));
    assert!(store.token_user(&[9u8; 32], t(50)).unwrap().is_none(), "revoked");
    assert!(store.token_user(&[1u8; 32], t(50)).unwrap().is_none(), "unknown");

    let mut b = store.begin(t(10)).unwrap();
    b.set_user_disabled("li", true).unwrap();
    b.set_password_hash("zhao", "$argon2id$new").unwrap();
    assert!(matches!(b.set_user_disabled("nobody", true), Err(StoreError::NotFound(_))));
    b.commit().unwrap();
    assert!(store.user("li").unwrap().unwrap().disabled);
    assert!(store.token_user(&[7u8; 32], t(50)).unwrap().unwrap().0.disabled, "the token says whose it is");
    assert_eq!(store.password_hash("zhao").unwrap().as_deref(), Some("$argon2id$new"));
}

pub fn audit_is_appended_and_filtered(store: &mut dyn Store) {
    let rec = |actor: &str, action: &str, record: &str| AuditRecord {
        seq: 0,
        at: t(1),
        actor: actor.into(),
        action: action.into(),
        entity: "person".into(),
        record: record.into(),
        via: "GET /api/v1/persons".into(),
        reason: Some("case C1".into()),
    };
    let mut b = store.begin(t(1)).unwrap();
    let s1 = b.append_audit(&rec("li", "read_personal_data", "P1")).unwrap();
    let s2 = b.append_audit(&rec("zhao", "read_personal_data", "P2")).unwrap();
    b.commit().unwrap();
    {
        let mut b = store.begin(t(2)).unwrap();
        b.append_audit(&rec("li", "dropped", "P3")).unwrap();
        // dropped: the audit record goes with the batch it belongs to
    }
    assert!(s2 > s1);
    let all = store.audit_records(0, 100, &AuditFilter::default()).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], AuditRecord { seq: s1, ..rec("li", "read_personal_data", "P1") });
    let li = store.audit_records(0, 100, &AuditFilter { actor: Some("li".into()), ..Default::default() }).unwrap();
    assert_eq!(li.len(), 1);
    let p2 = store.audit_records(0, 100, &AuditFilter { record: Some("P2".into()), ..Default::default() }).unwrap();
    assert_eq!(p2[0].actor, "zhao");
    assert_eq!(store.audit_records(s1, 100, &AuditFilter::default()).unwrap().len(), 1, "paged by seq");

    // By the jurisdiction of the acting users: li works in B1 (inside D1), zhao in D2.
    seed(store);
    let mut b = store.begin(t(3)).unwrap();
    b.put_areas(&[area("D2", "district", None)]).unwrap();
    b.add_user(&user("li", "B1"), "$argon2id$x").unwrap();
    b.add_user(&user("zhao", "D2"), "$argon2id$x").unwrap();
    b.commit().unwrap();
    let within = |area: &str| {
        let f = AuditFilter { actors_within: Some(area.into()), ..Default::default() };
        store.audit_records(0, 100, &f).unwrap().into_iter().map(|r| r.actor).collect::<Vec<_>>()
    };
    assert_eq!(within("D1"), ["li"]);
    assert_eq!(within("B1"), ["li"]);
    assert_eq!(within("D2"), ["zhao"]);
    assert!(within("NOWHERE").is_empty());
}

fn lab(id: &str, kind: SubjectKind, subject: &str, lab_id: Option<&str>) -> LabTest {
    LabTest {
        id: id.into(),
        subject_kind: kind,
        subject_id: subject.into(),
        pool_id: None,
        method: TestMethod::Pcr,
        result: TestResult::Negative,
        ct: None,
        sampled_at: t(0),
        reported_at: None,
        lab_id: lab_id.map(Into::into),
        variant: None,
    }
}

fn simple_case(id: &str, person: &str) -> Case {
    Case {
        id: id.into(),
        person_id: person.into(),
        classification: Classification::Confirmed,
        onset: None,
        sampled_at: None,
        reported_at: t(0),
        imported: false,
        detection: None,
        severity: None,
        outcome: None,
        vaccine_doses: None,
        infector_case_id: None,
        cluster: None,
    }
}

pub fn scoped_reads_follow_the_area_tree(store: &mut dyn Store) {
    seed(store);
    // A second district: P4 lives in D2 and visits the mall M1 in D1.
    let mut b = store.begin(t(1)).unwrap();
    b.put_areas(&[area("D2", "district", None), area("B2", "building", Some("D2"))]).unwrap();
    b.put_places(&[place("H2", PlaceKind::Residence, Some("B2"))]).unwrap();
    b.put_persons(&[person("P4", Some("H2"))]).unwrap();
    b.put_cases(&[simple_case("C1", "P1"), simple_case("C4", "P4")]).unwrap();
    b.put_lab_tests(&[
        lab("T1", SubjectKind::Person, "P1", None),
        lab("T4", SubjectKind::Person, "P4", Some("M1")),
        lab("T5", SubjectKind::Environment, "a door handle", None),
    ])
    .unwrap();
    b.commit().unwrap();
    let visits = [
        visit(store, "P1", "M1", 0, Some(600)),
        visit(store, "P3", "W1", 10, None),
        visit(store, "P4", "M1", 20, Some(900)),
        visit(store, "P4", "H2", 3600, None),
    ];
    let mut b = store.begin(t(2)).unwrap();
    b.insert_visits(&visits).unwrap();
    b.commit().unwrap();

    let within = |a: &str| Scope::Within(a.to_string());
    let ids = |v: Vec<String>| v.join(",");
    let persons = |s: &Scope| ids(store.persons_page(s, None, 100).unwrap().into_iter().map(|p| p.id).collect());
    assert_eq!(persons(&Scope::All), "P1,P2,P3,P4", "everything, the person who lives nowhere included");
    assert_eq!(persons(&within("D1")), "P1,P2", "by residence, through the subtree");
    assert_eq!(persons(&within("B1")), "P1,P2");
    assert_eq!(persons(&within("D2")), "P4");
    assert_eq!(persons(&within("NOWHERE")), "", "an unknown area holds nothing");
    // Keyset pagination by id.
    let first = store.persons_page(&Scope::All, None, 2).unwrap();
    assert_eq!(ids(first.iter().map(|p| p.id.clone()).collect()), "P1,P2");
    let next = store.persons_page(&Scope::All, Some("P2"), 2).unwrap();
    assert_eq!(ids(next.into_iter().map(|p| p.id).collect()), "P3,P4");

    let places = |s: &Scope| ids(store.places_page(s, None, 100).unwrap().into_iter().map(|p| p.id).collect());
    assert_eq!(places(&Scope::All), "H1,H2,M1,W1");
    assert_eq!(places(&within("D1")), "H1,M1");
    assert_eq!(places(&within("B1")), "H1");
    assert_eq!(places(&within("D2")), "H2");
    let cases = |s: &Scope| ids(store.cases_page(s, None, 100).unwrap().into_iter().map(|c| c.id).collect());
    assert_eq!(cases(&within("D1")), "C1");
    assert_eq!(cases(&within("D2")), "C4");
    let tests = |s: &Scope| ids(store.lab_tests_page(s, None, 100).unwrap().into_iter().map(|c| c.id).collect());
    assert_eq!(tests(&Scope::All), "T1,T4,T5");
    assert_eq!(tests(&within("D1")), "T1,T4", "T4's lab is in D1");
    assert_eq!(tests(&within("D2")), "T4", "T4's person lives in D2");
    assert_eq!(store.lab_tests_page(&Scope::All, Some("T1"), 1).unwrap()[0].id, "T4");

    let visits = |s: &Scope, q: &VisitQuery, after: i64| {
        store
            .visits_page(s, q, after, 100)
            .unwrap()
            .into_iter()
            .map(|r| format!("{}@{}", r.visit.person_id, r.visit.place_id))
            .collect::<Vec<_>>()
            .join(",")
    };
    let all = VisitQuery::default();
    assert_eq!(visits(&Scope::All, &all, 0), "P1@M1,P3@W1,P4@M1,P4@H2");
    assert_eq!(visits(&within("D1"), &all, 0), "P1@M1,P4@M1", "by the place or by the person");
    assert_eq!(visits(&within("D2"), &all, 0), "P4@M1,P4@H2");
    assert_eq!(visits(&within("B1"), &all, 0), "P1@M1", "P1 lives in B1; M1 lies in D1 only");
    let p4 = VisitQuery { person: Some("P4".into()), ..Default::default() };
    assert_eq!(visits(&within("D1"), &p4, 0), "P4@M1");
    let m1_late = VisitQuery { place: Some("M1".into()), from: Some(t(15)), to: Some(t(3600)), ..Default::default() };
    assert_eq!(visits(&Scope::All, &m1_late, 0), "P4@M1");
    let rows = store.visits_page(&Scope::All, &all, 0, 2).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(visits(&Scope::All, &all, rows[1].row), "P4@M1,P4@H2", "pages by row id");

    let d1 = within("D1");
    assert_eq!(store.in_scope(&d1, Entity::Person, &["P1", "P3", "P4", "NOPE"]).unwrap(), [true, false, false, false]);
    assert_eq!(store.in_scope(&d1, Entity::Place, &["M1", "W1", "H2"]).unwrap(), [true, false, false]);
    assert_eq!(store.in_scope(&d1, Entity::Area, &["B1", "D1", "D2"]).unwrap(), [true, true, false]);
    assert_eq!(store.in_scope(&d1, Entity::Case, &["C1", "C4"]).unwrap(), [true, false]);
    assert_eq!(store.in_scope(&d1, Entity::LabTest, &["T1", "T4", "T5"]).unwrap(), [true, true, false]);
    assert_eq!(store.in_scope(&Scope::All, Entity::Person, &["P3", "NOPE"]).unwrap(), [true, true]);
}

pub fn purge_deletes_old_location_data_and_logs_each_run(store: &mut dyn Store) {
    seed(store);
    let visits = [
        visit(store, "P1", "M1", 0, Some(600)),    // ended before the cutoff
        visit(store, "P2", "M1", 100, None),       // open, began before it
        visit(store, "P1", "H1", 500, Some(1500)), // ended after it
        visit(store, "P3", "W1", 200, None),
    ];
    let ping = |at: i64| LocationPing { person_id: "P1".into(), t: t(at), lat: 30.5, lon: 114.3, accuracy_m: None };
    let mut b = store.begin(t(1)).unwrap();
    b.insert_visits(&visits).unwrap();
    b.put_pings(&[ping(0), ping(999), ping(1000), ping(2000)]).unwrap();
    b.commit().unwrap();
    let before = store.last_seq().unwrap();

    let mut b = store.begin(t(3000)).unwrap();
    assert!(b.purge_before(Entity::Case, t(1000)).is_err(), "only location data is purged by age");
    assert_eq!(b.purge_before(Entity::Visit, t(1000)).unwrap(), 3);
    assert_eq!(b.purge_before(Entity::Ping, t(1000)).unwrap(), 2);
    b.commit().unwrap();

    let mut rows = Vec::new();
    store.scan_visits(0, &mut |batch| rows.extend(batch.iter().map(|v| v.row))).unwrap();
    assert_eq!(rows, [3], "only the visit that ended after the cutoff is left");
    assert_eq!(store.count(Entity::Ping).unwrap(), 2);
    let deletes: Vec<(Entity, i64, i64)> = store
        .changes_since(before, 100)
        .unwrap()
        .into_iter()
        .map(|c| {
            assert_eq!(c.op, ChangeOp::Delete, "{c:?}");
            (c.entity, c.key_from, c.key_to)
        })
        .collect();
    assert_eq!(deletes, [(Entity::Visit, 1, 2), (Entity::Visit, 4, 4), (Entity::Ping, 1, 2)]);

    // Nothing old is left: a second purge deletes nothing and logs nothing.
    let seq = store.last_seq().unwrap();
    let mut b = store.begin(t(3000)).unwrap();
    assert_eq!(b.purge_before(Entity::Visit, t(1000)).unwrap(), 0);
    b.commit().unwrap();
    assert_eq!(store.last_seq().unwrap(), seq);
}

fn case_index(case: &str, person: &str) -> ProposalIndex {
    ProposalIndex { case_id: Some(case.into()), person_id: person.into() }
}

fn trace_record(index: &ProposalIndex, digest: &str, seq: u64) -> TraceRecord {
    TraceRecord {
        index: index.clone(),
        from: t(0),
        request: r#"{"rule":"profile"}"#.into(),
        digest: digest.into(),
        seq,
        recorded_at: t(100),
    }
}

fn proposal(index: &ProposalIndex, contact: &str, category: &str, evidence: &str) -> Proposal {
    Proposal {
        id: 0,
        index: index.clone(),
        contact_id: contact.into(),
        category: category.into(),
        tier: if category == "secondary" { 2 } else { 1 },
        first_exposure: t(10),
        last_exposure: t(20),
        exposures: 2,
        evidence: evidence.into(),
        evidence_digest: format!("digest of {evidence}"),
        needs_confirmation: false,
        in_result: true,
        status: ProposalStatus::Proposed,
        decided_by: None,
        decided_at: None,
        decision_reason: None,
        changed_since_decision: false,
        created_at: t(100),
        updated_at: t(100),
    }
}

/// The seed, a second district with P4 living there, and cases C1 (P1) and C4 (P4).
fn seed_cases(store: &mut dyn Store) {
    seed(store);
    let mut b = store.begin(t(1)).unwrap();
    b.put_areas(&[area("D2", "district", None)]).unwrap();
    b.put_places(&[place("H2", PlaceKind::Residence, Some("D2"))]).unwrap();
    b.put_persons(&[person("P4", Some("H2"))]).unwrap();
    b.put_cases(&[simple_case("C1", "P1"), simple_case("C4", "P4")]).unwrap();
    b.commit().unwrap();
}

pub fn proposals_are_recorded_by_index_atomically(store: &mut dyn Store) {
    seed_cases(store);
    let c1 = case_index("C1", "P1");
    let before = store.last_seq().unwrap();
    let mut b = store.begin(t(100)).unwrap();
    assert!(b.proposals_of(&c1).unwrap().is_empty());
    let ids = b
        .record_proposals(
            &trace_record(&c1, "d1", 7),
            &[
                proposal(&c1, "P2", "close", "[1]"),
                proposal(&c1, "P4", "close", "[2]"),
                proposal(&c1, "P4", "secondary", "[3]"),
            ],
        )
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(b.proposals_of(&c1).unwrap().len(), 3, "a batch sees its own writes");
    b.commit().unwrap();
    let changes = store.changes_since(before, 100).unwrap();
    let logged: Vec<i64> = changes.iter().filter(|c| c.entity == Entity::Proposal).map(|c| c.key_from).collect();
    assert_eq!(logged, ids, "each written proposal is in the change feed");

    let p = store.proposal(ids[0]).unwrap().unwrap();
    assert_eq!(p, Proposal { id: ids[0], ..proposal(&c1, "P2", "close", "[1]") }, "everything round-trips");
    assert_eq!(store.proposal(999_999).unwrap(), None);
    let records = store.trace_records().unwrap();
    assert_eq!(records, [trace_record(&c1, "d1", 7)]);

    // The same index, contact and category is the same proposal: replaced, id and created_at kept.
    let mut again = proposal(&c1, "P2", "close", "[1, 4]");
    again.status = ProposalStatus::Confirmed;
    again.decided_by = Some("li".into());
    again.decided_at = Some(t(150));
    again.decision_reason = Some("seen".into());
    again.changed_since_decision = true;
    again.created_at = t(200);
    again.updated_at = t(200);
    let mut b = store.begin(t(200)).unwrap();
    let ids2 = b.record_proposals(&trace_record(&c1, "d2", 9), std::slice::from_ref(&again)).unwrap();
    b.commit().unwrap();
    assert_eq!(ids2, [ids[0]]);
    let p = store.proposal(ids[0]).unwrap().unwrap();
    assert_eq!(p, Proposal { id: ids[0], created_at: t(100), ..again.clone() });
    assert_eq!(store.trace_records().unwrap(), [trace_record(&c1, "d2", 9)], "one record per index");

    // A person index is another index than the case of the same person.
    let by_person = ProposalIndex { case_id: None, person_id: "P1".into() };
    let mut b = store.begin(t(300)).unwrap();
    b.record_proposals(&trace_record(&by_person, "d3", 9), &[proposal(&by_person, "P2", "close", "[]")]).unwrap();
    // All or nothing: a row of another index, or an unknown contact, and nothing of the call is written.
    let err = b
        .record_proposals(
            &trace_record(&c1, "d4", 10),
            &[proposal(&c1, "P3", "close", "[]"), proposal(&by_person, "P3", "close", "[]")],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { index: 1, .. }), "{err:?}");
    let err = b.record_proposals(&trace_record(&c1, "d4", 10), &[proposal(&c1, "NOBODY", "close", "[]")]).unwrap_err();
    assert!(matches!(err, StoreError::UnknownReference { field: "contact_id", .. }), "{err:?}");
    let err = b.record_proposals(&trace_record(&case_index("C404", "P1"), "d", 1), &[]).unwrap_err();
    assert!(matches!(err, StoreError::UnknownReference { field: "case_id", .. }), "{err:?}");
    b.commit().unwrap();
    assert_eq!(store.proposals_page(&Scope::All, &ProposalFilter::default(), 0, 100).unwrap().len(), 4);
    let records = store.trace_records().unwrap();
    assert_eq!(records.len(), 2);
    assert!(records.iter().any(|r| r.index == c1 && r.digest == "d2"), "the failed calls changed nothing");

    // A dropped batch leaves the proposals as they were.
    {
        let mut b = store.begin(t(400)).unwrap();
        b.record_proposals(&trace_record(&c1, "d5", 11), &[proposal(&c1, "P3", "close", "[]")]).unwrap();
    }
    assert_eq!(store.proposals_page(&Scope::All, &ProposalFilter::default(), 0, 100).unwrap().len(), 4);
}

pub fn proposals_are_decided_all_or_nothing(store: &mut dyn Store) {
    seed_cases(store);
    let c1 = case_index("C1", "P1");
    let mut b = store.begin(t(100)).unwrap();
    let mut withdrawn = proposal(&c1, "P3", "close", "[]");
    withdrawn.status = ProposalStatus::Withdrawn;
    withdrawn.in_result = false;
    let ids = b
        .record_proposals(
            &trace_record(&c1, "d", 1),
            &[proposal(&c1, "P2", "close", "[]"), proposal(&c1, "P4", "close", "[]"), withdrawn],
        )
        .unwrap();
    b.commit().unwrap();
    let decision = |status, reason: Option<&str>| Decision {
        status,
        actor: "li".into(),
        reason: reason.map(Into::into),
        at: t(500),
    };
    let before = store.last_seq().unwrap();
    let mut b = store.begin(t(500)).unwrap();
    let err = b.decide_proposals(&[ids[0], 999_999], &decision(ProposalStatus::Confirmed, None)).unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = b.decide_proposals(&[ids[0], ids[2]], &decision(ProposalStatus::Confirmed, None)).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { index: 1, .. }), "a withdrawn proposal is not decided: {err:?}");
    let err = b.decide_proposals(&[ids[0]], &decision(ProposalStatus::Withdrawn, None)).unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert_eq!(store_status(&*b, &c1, ids[0]), ProposalStatus::Proposed, "the failed calls wrote nothing");
    let done = b.decide_proposals(&[ids[0]], &decision(ProposalStatus::Confirmed, None)).unwrap();
    assert_eq!(done[0].status, ProposalStatus::Confirmed);
    let done = b.decide_proposals(&[ids[1]], &decision(ProposalStatus::Rejected, Some("not there"))).unwrap();
    assert_eq!(done[0].decision_reason.as_deref(), Some("not there"));
    b.commit().unwrap();
    let p = store.proposal(ids[1]).unwrap().unwrap();
    assert_eq!(
        (p.status, p.decided_by.as_deref(), p.decided_at, p.updated_at, p.changed_since_decision),
        (ProposalStatus::Rejected, Some("li"), Some(t(500)), t(500), false)
    );
    let logged: Vec<i64> = store
        .changes_since(before, 100)
        .unwrap()
        .into_iter()
        .filter(|c| c.entity == Entity::Proposal)
        .map(|c| c.key_from)
        .collect();
    assert_eq!(logged, [ids[0], ids[1]]);
}

fn store_status(b: &dyn crate::Batch, index: &ProposalIndex, id: i64) -> ProposalStatus {
    b.proposals_of(index).unwrap().into_iter().find(|p| p.id == id).expect("there").status
}

pub fn proposals_are_listed_by_case_status_and_scope(store: &mut dyn Store) {
    seed_cases(store);
    let (c1, c4) = (case_index("C1", "P1"), case_index("C4", "P4"));
    let mut b = store.begin(t(100)).unwrap();
    // P2 lives in B1 (inside D1), P3 nowhere, P4 in D2.
    let a = b
        .record_proposals(
            &trace_record(&c1, "d", 1),
            &[
                proposal(&c1, "P2", "close", "[]"),
                proposal(&c1, "P3", "close", "[]"),
                proposal(&c1, "P4", "close", "[]"),
            ],
        )
        .unwrap();
    let c = b.record_proposals(&trace_record(&c4, "d", 1), &[proposal(&c4, "P2", "secondary", "[]")]).unwrap();
    b.decide_proposals(
        &[a[1]],
        &Decision { status: ProposalStatus::Confirmed, actor: "li".into(), reason: None, at: t(101) },
    )
    .unwrap();
    b.commit().unwrap();
    let ids = |scope: &Scope, filter: &ProposalFilter, after: i64, limit: usize| -> Vec<i64> {
        store.proposals_page(scope, filter, after, limit).unwrap().into_iter().map(|p| p.id).collect()
    };
    let all = ProposalFilter::default();
    assert_eq!(ids(&Scope::All, &all, 0, 100), [a[0], a[1], a[2], c[0]]);
    let of_c1 = ProposalFilter { case_id: Some("C1".into()), ..Default::default() };
    assert_eq!(ids(&Scope::All, &of_c1, 0, 100), a);
    let confirmed = ProposalFilter { status: Some(ProposalStatus::Confirmed), ..Default::default() };
    assert_eq!(ids(&Scope::All, &confirmed, 0, 100), [a[1]]);
    let proposed_c4 = ProposalFilter { case_id: Some("C4".into()), status: Some(ProposalStatus::Proposed) };
    assert_eq!(ids(&Scope::All, &proposed_c4, 0, 100), c);
    let unknown = ProposalFilter { case_id: Some("C404".into()), ..Default::default() };
    assert!(ids(&Scope::All, &unknown, 0, 100).is_empty());
    // Keyset pages by id.
    assert_eq!(ids(&Scope::All, &all, 0, 2), [a[0], a[1]]);
    assert_eq!(ids(&Scope::All, &all, a[1], 2), [a[2], c[0]]);
    // A proposal lies where its contact lives, whoever the index case is.
    assert_eq!(ids(&Scope::Within("D1".into()), &all, 0, 100), [a[0], c[0]]);
    assert_eq!(ids(&Scope::Within("B1".into()), &all, 0, 100), [a[0], c[0]]);
    assert_eq!(ids(&Scope::Within("D2".into()), &all, 0, 100), [a[2]]);
    assert!(ids(&Scope::Within("NOWHERE".into()), &all, 0, 100).is_empty());
}

fn episode_row(id: &str, person: &str, state: EpisodeState, deadline: Option<i64>, events: u32) -> crate::EpisodeRow {
    crate::EpisodeRow {
        id: id.into(),
        person_id: person.into(),
        category: "close".into(),
        state,
        owner_unit: "U1".into(),
        deadline: deadline.map(t),
        facility_id: None,
        room_id: None,
        opened_at: t(10),
        updated_at: t(10 + i64::from(events)),
        events,
    }
}

fn episode_event(id: &str, at: i64, action: &str) -> crate::EpisodeEvent {
    crate::EpisodeEvent { seq: 0, episode_id: id.into(), at: t(at), actor: "tester".into(), action: action.into() }
}

pub fn episodes_are_events_with_a_current_state(store: &mut dyn Store) {
    seed(store);
    let before = store.last_seq().unwrap();
    let mut b = store.begin(t(20)).unwrap();
    b.append_episode_events(
        &[episode_event("E1", 10, r#"{"action":"open"}"#), episode_event("E2", 11, r#"{"action":"open"}"#)],
        &[
            episode_row("E1", "P1", EpisodeState::Proposed, Some(100), 1),
            episode_row("E2", "P3", EpisodeState::Proposed, Some(50), 1),
        ],
    )
    .unwrap();
    b.append_episode_events(
        &[episode_event("E1", 12, r#"{"action":"confirm"}"#)],
        &[episode_row("E1", "P1", EpisodeState::Confirmed, Some(200), 2)],
    )
    .unwrap();
    b.commit().unwrap();
    let changes: Vec<Entity> = store.changes_since(before, 10).unwrap().iter().map(|c| c.entity).collect();
    assert_eq!(changes, [Entity::Episode, Entity::Episode, Entity::Episode]);

    let events = store.episode_events("E1").unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, [r#"{"action":"open"}"#, r#"{"action":"confirm"}"#]);
    assert!(events[0].seq < events[1].seq && events[1].at == t(12));
    let mut all = Vec::new();
    let last =
        store.scan_episode_events(0, &mut |batch| all.extend(batch.iter().map(|e| e.episode_id.clone()))).unwrap();
    assert_eq!(all, ["E1", "E2", "E1"]);
    assert_eq!(store.scan_episode_events(last, &mut |_| panic!("nothing after the last")).unwrap(), last);

    let e1 = store.episode("E1").unwrap().unwrap();
    assert_eq!((e1.state, e1.deadline, e1.events, e1.opened_at), (EpisodeState::Confirmed, Some(t(200)), 2, t(10)));
    assert_eq!(store.episode("E9").unwrap(), None);
    let ids = |scope: &Scope, filter: &crate::EpisodeFilter| -> Vec<String> {
        store.episodes_page(scope, filter, None, 10).unwrap().into_iter().map(|e| e.id).collect()
    };
    assert_eq!(ids(&Scope::All, &Default::default()), ["E1", "E2"]);
    assert_eq!(ids(&Scope::Within("D1".into()), &Default::default()), ["E1"], "P3 lives nowhere");
    let confirmed = crate::EpisodeFilter { state: Some(EpisodeState::Confirmed), ..Default::default() };
    assert_eq!(ids(&Scope::All, &confirmed), ["E1"]);
    let overdue = crate::EpisodeFilter { due_before: Some(t(60)), ..Default::default() };
    assert_eq!(ids(&Scope::All, &overdue), ["E2"]);
    let of_p3 = crate::EpisodeFilter { person_id: Some("P3".into()), ..Default::default() };
    assert_eq!(ids(&Scope::All, &of_p3), ["E2"]);
    assert_eq!(store.episodes_page(&Scope::All, &Default::default(), Some("E1"), 10).unwrap().len(), 1);

    // All or nothing: an unknown person, or events without their row, write nothing.
    let seq = store.last_seq().unwrap();
    let mut b = store.begin(t(30)).unwrap();
    assert!(
        b.append_episode_events(
            &[episode_event("E3", 30, "{}")],
            &[episode_row("E3", "nobody", EpisodeState::Proposed, None, 1)]
        )
        .is_err()
    );
    assert!(b.append_episode_events(&[episode_event("E4", 30, "{}")], &[]).is_err());
    b.commit().unwrap();
    assert_eq!(store.last_seq().unwrap(), seq);
    assert_eq!(store.episode_events("E3").unwrap(), []);
    assert_eq!(store.episode_events("E4").unwrap(), []);
}

fn zone_row(
    id: &str,
    target: (&str, &str),
    status: &str,
    level: ZoneLevel,
    review: Option<i8>,
    events: u32,
) -> crate::ZoneRow {
    crate::ZoneRow {
        id: id.into(),
        target_kind: target.0.into(),
        target_id: target.1.into(),
        status: status.into(),
        level,
        next_review: review.map(|d| jiff::civil::date(2022, 3, d)),
        updated_at: t(10 + i64::from(events)),
        events,
        state: format!(r#"{{"status":"{status}"}}"#),
    }
}

fn zone_event(id: &str, at: i64, action: &str) -> crate::ZoneEventRow {
    crate::ZoneEventRow { seq: 0, zone_id: id.into(), at: t(at), actor: "commander".into(), action: action.into() }
}

pub fn zones_are_events_with_a_current_state(store: &mut dyn Store) {
    seed(store);
    let before = store.last_seq().unwrap();
    let mut b = store.begin(t(20)).unwrap();
    b.append_zone_events(
        &[
            zone_event("area:B1:1", 10, r#"{"type":"propose"}"#),
            zone_event("place:M1:1", 11, r#"{"type":"propose"}"#),
            zone_event("place:W1:1", 11, r#"{"type":"propose"}"#),
        ],
        &[
            zone_row("area:B1:1", ("area", "B1"), "proposed", ZoneLevel::High, None, 1),
            zone_row("place:M1:1", ("place", "M1"), "proposed", ZoneLevel::Medium, None, 1),
            zone_row("place:W1:1", ("place", "W1"), "proposed", ZoneLevel::High, None, 1),
        ],
    )
    .unwrap();
    b.append_zone_events(
        &[zone_event("area:B1:1", 12, r#"{"type":"confirm"}"#)],
        &[zone_row("area:B1:1", ("area", "B1"), "confirmed", ZoneLevel::High, Some(8), 2)],
    )
    .unwrap();
    b.commit().unwrap();
    let changes: Vec<Entity> = store.changes_since(before, 10).unwrap().iter().map(|c| c.entity).collect();
    assert_eq!(changes, [Entity::Zone; 4]);

    let events = store.zone_events("area:B1:1").unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, [r#"{"type":"propose"}"#, r#"{"type":"confirm"}"#]);
    assert!(events[0].seq < events[1].seq && events[1].at == t(12) && events[1].actor == "commander");
    let z = store.zone("area:B1:1").unwrap().unwrap();
    assert_eq!(z, zone_row("area:B1:1", ("area", "B1"), "confirmed", ZoneLevel::High, Some(8), 2));
    assert_eq!(store.zone("area:B9:1").unwrap(), None);

    let ids = |scope: &Scope, filter: &crate::ZoneFilter| -> Vec<String> {
        store.zones_page(scope, filter, None, 10).unwrap().into_iter().map(|z| z.id).collect()
    };
    assert_eq!(ids(&Scope::All, &Default::default()), ["area:B1:1", "place:M1:1", "place:W1:1"]);
    // A zone lies in its area, or in its place's area (W1 has none: only a scope of all).
    assert_eq!(ids(&Scope::Within("D1".into()), &Default::default()), ["area:B1:1", "place:M1:1"]);
    assert_eq!(ids(&Scope::Within("B1".into()), &Default::default()), ["area:B1:1"]);
    let confirmed = crate::ZoneFilter { status: Some("confirmed".into()), ..Default::default() };
    assert_eq!(ids(&Scope::All, &confirmed), ["area:B1:1"]);
    let high = crate::ZoneFilter { level: Some(ZoneLevel::High), open: true, ..Default::default() };
    assert_eq!(ids(&Scope::All, &high), ["area:B1:1", "place:W1:1"]);
    let on_m1 = crate::ZoneFilter { target: Some(("place".into(), "M1".into())), ..Default::default() };
    assert_eq!(ids(&Scope::All, &on_m1), ["place:M1:1"]);
    let due = |d: i8| crate::ZoneFilter { review_by: Some(jiff::civil::date(2022, 3, d)), ..Default::default() };
    assert_eq!(ids(&Scope::All, &due(8)), ["area:B1:1"]);
    assert!(ids(&Scope::All, &due(7)).is_empty());
    assert_eq!(store.zones_page(&Scope::All, &Default::default(), Some("area:B1:1"), 1).unwrap().len(), 1);

    // All or nothing: an unknown target, a bad kind, or events without their row write nothing.
    let seq = store.last_seq().unwrap();
    let mut b = store.begin(t(30)).unwrap();
    let unknown = b.append_zone_events(
        &[zone_event("area:X:1", 30, "{}")],
        &[zone_row("area:X:1", ("area", "X"), "proposed", ZoneLevel::High, None, 1)],
    );
    assert!(matches!(unknown, Err(StoreError::UnknownReference { field: "target_id", .. })), "{unknown:?}");
    assert!(
        b.append_zone_events(
            &[zone_event("unit:U1/1", 30, "{}")],
            &[zone_row("unit:U1/1", ("unit", "U1"), "proposed", ZoneLevel::High, None, 1)],
        )
        .is_err()
    );
    assert!(b.append_zone_events(&[zone_event("area:B1:1", 30, "{}")], &[]).is_err());
    b.commit().unwrap();
    assert_eq!(store.last_seq().unwrap(), seq);
    assert_eq!(store.zone_events("area:X:1").unwrap(), []);
    assert_eq!(store.zone_events("area:B1:1").unwrap().len(), 2);
}

pub fn case_lists_sort_and_page_by_keyset(store: &mut dyn Store) {
    seed(store);
    // Six cases: reports and onsets out of id order, ties, a missing onset, two classifications;
    // P3 lives nowhere (outside every district).
    let mut cases = Vec::new();
    for (i, (person, reported, onset, class)) in [
        ("P1", 50, Some(3), Classification::Confirmed),
        ("P2", 10, None, Classification::Asymptomatic),
        ("P1", 30, Some(1), Classification::Confirmed),
        ("P3", 30, Some(2), Classification::Suspected),
        ("P2", 70, Some(1), Classification::Confirmed),
        ("P1", 10, Some(5), Classification::Asymptomatic),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = simple_case(&format!("C{i}"), person);
        c.reported_at = t(reported);
        c.onset = onset.map(|d| jiff::civil::date(2022, 3, d));
        c.classification = class;
        cases.push(c);
    }
    let mut b = store.begin(t(100)).unwrap();
    b.put_cases(&cases).unwrap();
    b.commit().unwrap();
    for sort in
        [crate::CaseSort::Id, crate::CaseSort::Reported, crate::CaseSort::Onset, crate::CaseSort::Classification]
    {
        for descending in [false, true] {
            for (scope, class) in
                [(Scope::All, None), (Scope::Within("D1".into()), None), (Scope::All, Some(Classification::Confirmed))]
            {
                let q = crate::CaseQuery { classification: class, sort, descending };
                // The oracle: every case in scope and class, sorted by (key, id).
                let mut want: Vec<&Case> = cases
                    .iter()
                    .filter(|c| class.is_none_or(|k| c.classification == k))
                    .filter(|c| matches!(scope, Scope::All) || c.person_id != "P3")
                    .collect();
                let order = |c: &&Case| -> (String, String) {
                    let key = match sort {
                        crate::CaseSort::Reported => format!("{:020}", c.reported_at.as_second()),
                        _ => q.key_of(c),
                    };
                    (key, c.id.clone())
                };
                want.sort_by_key(order);
                if descending {
                    want.reverse();
                }
                let want: Vec<String> = want.into_iter().map(|c| c.id.clone()).collect();
                // Pages of two, each after the last row of the one before.
                let mut got = Vec::new();
                let mut after: Option<(String, String)> = None;
                loop {
                    let page = store
                        .cases_sorted(&scope, &q, after.as_ref().map(|(v, i)| (v.as_str(), i.as_str())), 2)
                        .unwrap();
                    got.extend(page.iter().map(|c| c.id.clone()));
                    match page.last() {
                        Some(last) if page.len() == 2 => after = Some((q.key_of(last), last.id.clone())),
                        _ => break,
                    }
                }
                assert_eq!(got, want, "{sort:?} descending={descending} {scope:?} {class:?}");
            }
        }
    }
    let bad = crate::CaseQuery { classification: None, sort: crate::CaseSort::Reported, descending: false };
    assert!(store.cases_sorted(&Scope::All, &bad, Some(("soon", "C1")), 2).is_err());
}

/// The counts the store keeps ([`Store::case_counts`], [`Store::episode_counts`]) equal, in every
/// scope, what a walk over the records gives, through a seeded sequence of writes: new cases,
/// cases written again with other facts or another person, episodes changing state and owner,
/// a dropped batch, and an area moved under another district.
pub fn case_and_episode_counts_follow_every_write(store: &mut dyn Store) {
    use jiff::civil::Date;
    use std::collections::BTreeMap;
    // Classification, report day, onset day, in quarantine, epidemic day, imported.
    type CountKey = (Classification, Date, Option<Date>, bool, Date, bool);
    seed(store);
    let mut b = store.begin(t(0)).unwrap();
    b.put_areas(&[area("D2", "district", None), area("B2", "building", Some("D2"))]).unwrap();
    b.put_places(&[place("H2", PlaceKind::Residence, Some("B2"))]).unwrap();
    b.put_persons(&[person("P4", Some("H2"))]).unwrap();
    b.commit().unwrap();
    let cal = chainbreak_core::time::Calendar::new(&store.meta().unwrap().time_zone).unwrap();
    let persons = ["P1", "P2", "P3", "P4"];
    let residence = |p: &str, moved: bool| -> Vec<&'static str> {
        // The areas a person's cases lie in: the residence's building and its district.
        match (p, moved) {
            ("P1" | "P2", false) => vec!["B1", "D1"],
            ("P1" | "P2", true) => vec!["B1", "D2"],
            ("P4", _) => vec!["B2", "D2"],
            _ => vec![],
        }
    };
    let classes =
        [Classification::Confirmed, Classification::Asymptomatic, Classification::Suspected, Classification::Excluded];
    let states = [EpisodeState::Proposed, EpisodeState::InMeasure, EpisodeState::Released];
    let mut rng: u64 = 0x5eed_0009;
    let mut next = |n: u64| {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    let mut cases: BTreeMap<String, Case> = BTreeMap::new();
    let mut episodes: BTreeMap<String, crate::EpisodeRow> = BTreeMap::new();
    let mut moved = false;
    for round in 0..60u64 {
        let mut b = store.begin(t(1000 + round as i64)).unwrap();
        let mut written = Vec::new();
        for _ in 0..1 + next(4) {
            let id = format!("K{}", next(12));
            let mut c = simple_case(&id, persons[next(4) as usize]);
            c.classification = classes[next(4) as usize];
            // Reports around local midnight, so that the local day and the UTC day differ.
            c.reported_at = t(next(5) as i64 * 86_400 + 57_000 + next(2) as i64 * 3_600);
            c.onset = (next(3) > 0).then(|| jiff::civil::date(2022, 2, 20 + next(8) as i8));
            c.sampled_at = (next(2) > 0).then(|| t(next(4) as i64 * 86_400 + 60_000));
            c.detection = [None, Some(DetectionRoute::InQuarantine), Some(DetectionRoute::Community)][next(3) as usize];
            c.imported = next(5) == 0;
            written.push(c);
        }
        b.put_cases(&written).unwrap();
        let id = format!("E{}", next(6));
        let person = persons[next(4) as usize];
        let mut row = episode_row(&id, person, states[next(3) as usize], None, 1 + round as u32);
        row.owner_unit = ["U1", "U2"][next(2) as usize].into();
        b.append_episode_events(&[episode_event(&id, 10 + round as i64, r#"{"action":"x"}"#)], &[row.clone()]).unwrap();
        if round % 7 == 3 {
            // Dropped: nothing of it counts.
            drop(b);
            continue;
        }
        if round == 30 {
            // B1 (with P1's and P2's cases) moves to D2: counted there from now on.
            b.put_areas(&[area("B1", "building", Some("D2"))]).unwrap();
            moved = true;
        }
        b.commit().unwrap();
        for c in written {
            cases.insert(c.id.clone(), c);
        }
        episodes.insert(row.id.clone(), row);
        for scope in ["", "D1", "D2", "B1", "B2", "nowhere"] {
            let within = |p: &str| scope.is_empty() || residence(p, moved).contains(&scope);
            let mut want: BTreeMap<CountKey, u64> = BTreeMap::new();
            for c in cases.values().filter(|c| within(&c.person_id)) {
                let epi = c.onset.or(c.sampled_at.map(|s| cal.day_of(s))).unwrap_or(cal.day_of(c.reported_at));
                let in_q = c.detection == Some(DetectionRoute::InQuarantine);
                *want
                    .entry((c.classification, cal.day_of(c.reported_at), c.onset, in_q, epi, c.imported))
                    .or_default() += 1;
            }
            let scope_of = if scope.is_empty() { Scope::All } else { Scope::Within(scope.into()) };
            let got: BTreeMap<_, u64> = store
                .case_counts(&scope_of)
                .unwrap()
                .into_iter()
                .map(|k| ((k.classification, k.reported, k.onset, k.in_quarantine, k.epi_day, k.imported), k.n))
                .collect();
            assert_eq!(got, want, "cases in {scope:?} after round {round}");
            let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
            for e in episodes.values().filter(|e| within(&e.person_id)) {
                *want.entry((e.state.as_str().to_string(), e.owner_unit.clone())).or_default() += 1;
            }
            let got: BTreeMap<(String, String), u64> =
                store.episode_counts(&scope_of).unwrap().into_iter().map(|k| ((k.state, k.owner_unit), k.n)).collect();
            assert_eq!(got, want, "episodes in {scope:?} after round {round}");
        }
    }
}

/// A scoped read after the area tree or a place changed sees the change (a backend that keeps a
/// scope's areas and places between reads must notice), also inside the batch that changes it.
pub fn scoped_reads_see_the_tree_as_it_is_now(store: &mut dyn Store) {
    seed(store);
    let d1 = Scope::Within("D1".into());
    let ids = |store: &dyn Store| -> Vec<String> {
        store.persons_page(&d1, None, 100).unwrap().into_iter().map(|p| p.id).collect()
    };
    assert_eq!(ids(store), ["P1", "P2"]);
    // A new building in D1, a home in it, a person living there.
    let mut b = store.begin(t(10)).unwrap();
    b.put_areas(&[area("B9", "building", Some("D1"))]).unwrap();
    b.put_places(&[place("H9", PlaceKind::Residence, Some("B9"))]).unwrap();
    b.put_persons(&[person("P9", Some("H9"))]).unwrap();
    b.commit().unwrap();
    assert_eq!(ids(store), ["P1", "P2", "P9"]);
    // The home moves out of every district; then the building moves to another district.
    let mut b = store.begin(t(20)).unwrap();
    b.put_places(&[place("H9", PlaceKind::Residence, None)]).unwrap();
    b.commit().unwrap();
    assert_eq!(ids(store), ["P1", "P2"]);
    let mut b = store.begin(t(30)).unwrap();
    b.put_areas(&[area("D2", "district", None), area("B1", "building", Some("D2"))]).unwrap();
    b.commit().unwrap();
    assert_eq!(ids(store), Vec::<String>::new());
    assert_eq!(
        store
            .persons_page(&Scope::Within("D2".into()), None, 100)
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect::<Vec<_>>(),
        ["P1", "P2"]
    );
    // A dropped batch changes nothing, the scope included.
    let mut b = store.begin(t(40)).unwrap();
    b.put_areas(&[area("B1", "building", Some("D1"))]).unwrap();
    drop(b);
    assert_eq!(ids(store), Vec::<String>::new());
}

pub fn goods_read_back_as_written(store: &mut dyn Store) {
    seed(store);
    let batch = |id: &str, parent: Option<&str>| GoodsBatch {
        id: id.into(),
        product: "frozen shrimp, 1 kg".into(),
        origin_country: "EC".into(),
        plant: Some("EC-PLANT-1".into()),
        port: None,
        entry_date: Some(jiff::civil::date(2022, 2, 15)),
        inspection_cert: Some("CIQ-1".into()),
        test_cert: None,
        disinfection_cert: None,
        trace_code: Some("TC-1".into()),
        parent_batch_id: parent.map(Into::into),
    };
    let batches = vec![batch("G1", None), batch("G2", Some("G1"))];
    let hop = |b: &str, kind: HopKind, from: Option<&str>, to: Option<&str>, to_batch: Option<&str>, d: i8| GoodsHop {
        batch_id: b.into(),
        kind,
        from_place: from.map(Into::into),
        to_place: to.map(Into::into),
        to_batch_id: to_batch.map(Into::into),
        date: jiff::civil::date(2022, 3, d),
        quantity: Some(12.5),
    };
    let hops = vec![
        hop("G1", HopKind::Transfer, None, Some("W1"), None, 2),
        hop("G1", HopKind::Repack, Some("W1"), None, Some("G2"), 3),
        hop("G2", HopKind::Transfer, Some("W1"), Some("M1"), None, 4),
    ];
    let mut b = store.begin(t(10)).unwrap();
    b.put_goods_batches(&batches).unwrap();
    b.put_goods_hops(&hops).unwrap();
    b.commit().unwrap();
    assert_eq!(store.goods().unwrap(), (batches, hops));
}

pub fn facilities_keep_their_rooms(store: &mut dyn Store) {
    seed(store);
    let room = |id: &str, capacity: u32| crate::RoomRow { id: id.into(), capacity, state: "clean".into() };
    let mut b = store.begin(t(20)).unwrap();
    b.put_facilities(&[crate::FacilityRow {
        id: "F1".into(),
        name: "Hotel".into(),
        area: Some("D1".into()),
        rooms: vec![room("101", 1), room("102", 2)],
    }])
    .unwrap();
    b.commit().unwrap();
    let mut b = store.begin(t(21)).unwrap();
    // Renamed, a room added: the rooms left out are kept.
    b.put_facilities(&[crate::FacilityRow {
        id: "F1".into(),
        name: "Hotel A".into(),
        area: None,
        rooms: vec![room("103", 1)],
    }])
    .unwrap();
    b.set_room_state("F1", "101", "occupied").unwrap();
    assert!(b.set_room_state("F1", "999", "clean").is_err());
    assert!(b.set_room_state("F1", "101", "dirty").is_err());
    let bad = crate::FacilityRow { id: "F2".into(), name: "x".into(), area: Some("nowhere".into()), rooms: vec![] };
    assert!(b.put_facilities(&[bad]).is_err());
    b.commit().unwrap();
    let f = store.facilities().unwrap();
    assert_eq!(f.len(), 1);
    let mut b = store.begin(t(22)).unwrap();
    let unit = |id: &str, parent: Option<&str>| Unit {
        id: id.into(),
        name: id.into(),
        parent: parent.map(Into::into),
        area: None,
    };
    b.put_units(&[unit("CMD", None), unit("SUB", Some("CMD")), unit("COM", Some("SUB"))]).unwrap();
    b.commit().unwrap();
    let units: Vec<(String, Option<String>)> = store.units().unwrap().into_iter().map(|u| (u.id, u.parent)).collect();
    assert_eq!(units, [("CMD".into(), None), ("COM".into(), Some("SUB".into())), ("SUB".into(), Some("CMD".into()))]);
    assert_eq!((f[0].name.as_str(), f[0].area.as_deref()), ("Hotel A", None));
    let rooms: Vec<(&str, u32, &str)> =
        f[0].rooms.iter().map(|r| (r.id.as_str(), r.capacity, r.state.as_str())).collect();
    assert_eq!(rooms, [("101", 1, "occupied"), ("102", 2, "clean"), ("103", 1, "clean")]);
}

pub fn goods_responses_and_suspensions_are_kept(store: &mut dyn Store) {
    seed(store);
    let before = store.last_seq().unwrap();
    let response = |id: &str, place: Option<&str>| crate::GoodsResponseRow {
        id: id.into(),
        subject_kind: "goods".into(),
        subject: "G1".into(),
        positive_at: t(5),
        place_id: place.map(Into::into),
        response: r#"{"recall":["G1"]}"#.into(),
        created_at: t(6),
    };
    let positive = |plant: &str, sample: &str, d: i8| crate::PlantPositive {
        plant: plant.into(),
        sample: sample.into(),
        day: jiff::civil::date(2022, 3, d),
    };
    let suspension = |nth: u32, from: i8, until: i8| crate::SuspensionRow {
        plant: "EC-1".into(),
        nth,
        from: jiff::civil::date(2022, 3, from),
        until: jiff::civil::date(2022, 3, until),
        sample: format!("lab_test:L{nth}"),
        updated_at: t(7),
    };
    let mut b = store.begin(t(20)).unwrap();
    assert!(b.put_goods_response(&response("lab_test:L1", Some("M1"))).unwrap());
    assert!(!b.put_goods_response(&response("lab_test:L1", Some("W1"))).unwrap(), "recorded once");
    assert!(b.put_goods_response(&response("lab_test:L2", None)).unwrap());
    // An unknown place is refused, and the batch goes on.
    assert!(matches!(
        b.put_goods_response(&response("lab_test:L3", Some("NOPE"))),
        Err(StoreError::UnknownReference { .. })
    ));
    assert!(b.record_plant_positive(&positive("EC-1", "lab_test:L2", 9)).unwrap());
    assert!(b.record_plant_positive(&positive("EC-1", "lab_test:L1", 2)).unwrap());
    assert!(!b.record_plant_positive(&positive("EC-1", "lab_test:L1", 2)).unwrap(), "counted once");
    assert!(b.record_plant_positive(&positive("BR-7", "lab_test:L1", 2)).unwrap());
    assert_eq!(
        b.plant_positives_of("EC-1").unwrap(),
        [positive("EC-1", "lab_test:L1", 2), positive("EC-1", "lab_test:L2", 9)],
        "by day"
    );
    b.put_suspensions(&[suspension(1, 2, 9), suspension(2, 9, 16)]).unwrap();
    b.put_suspensions(&[suspension(2, 10, 17)]).unwrap();
    assert_eq!(b.suspensions_of("EC-1").unwrap(), [suspension(1, 2, 9), suspension(2, 10, 17)]);
    assert!(b.suspensions_of("BR-7").unwrap().is_empty());
    b.commit().unwrap();
    let changes: Vec<Entity> = store.changes_since(before, 10).unwrap().iter().map(|c| c.entity).collect();
    assert_eq!(
        changes,
        [Entity::GoodsResponse, Entity::GoodsResponse, Entity::Suspension, Entity::Suspension, Entity::Suspension]
    );
    assert_eq!(store.suspensions().unwrap(), [suspension(1, 2, 9), suspension(2, 10, 17)]);
    assert_eq!(store.goods_response("lab_test:L1").unwrap(), Some(response("lab_test:L1", Some("M1"))));
    assert_eq!(store.goods_response("lab_test:L9").unwrap(), None);
    let ids = |scope: &Scope| -> Vec<String> {
        store.goods_responses(scope, None, 10).unwrap().into_iter().map(|r| r.id).collect()
    };
    assert_eq!(ids(&Scope::All), ["lab_test:L1", "lab_test:L2"]);
    // A response lies at its place (M1 is in D1); one without a place only in everything.
    assert_eq!(ids(&Scope::Within("D1".into())), ["lab_test:L1"]);
    assert!(ids(&Scope::Within("B1".into())).is_empty());
    assert_eq!(store.goods_responses(&Scope::All, Some("lab_test:L1"), 10).unwrap().len(), 1);
    // A dropped batch writes nothing.
    let mut b = store.begin(t(30)).unwrap();
    b.put_goods_response(&response("lab_test:L5", None)).unwrap();
    b.put_suspensions(&[suspension(3, 20, 27)]).unwrap();
    drop(b);
    assert_eq!(store.goods_response("lab_test:L5").unwrap(), None);
    assert_eq!(store.suspensions().unwrap().len(), 2);
}

pub fn service_requests_are_events_with_a_current_state(store: &mut dyn Store) {
    seed(store);
    let before = store.last_seq().unwrap();
    let row = |id: &str, person: &str, state: &str, unit: &str, due: i64, events: u32| crate::RequestRow {
        id: id.into(),
        person_id: person.into(),
        kind: "dialysis".into(),
        priority: "urgent".into(),
        state: state.into(),
        owner_unit: "S1".into(),
        unit: unit.into(),
        due: t(due),
        escalation: u32::from(unit != "S1"),
        outcome: (state == "closed").then(|| "fulfilled".to_string()),
        filed_at: t(10),
        updated_at: t(10 + i64::from(events)),
        events,
        request: format!(r#"{{"state":"{state}"}}"#),
    };
    let event = |id: &str, at: i64, action: &str| crate::RequestEventRow {
        seq: 0,
        request_id: id.into(),
        at: t(at),
        actor: "worker".into(),
        action: action.into(),
    };
    let mut b = store.begin(t(20)).unwrap();
    b.append_request_events(
        &[event("R1", 10, r#"{"action":"file"}"#), event("R2", 10, r#"{"action":"file"}"#)],
        &[row("R1", "P1", "open", "S1", 70, 1), row("R2", "P3", "open", "S1", 90, 1)],
    )
    .unwrap();
    assert_eq!(b.request_events_of("R1").unwrap().len(), 1, "seen inside the batch");
    b.append_request_events(
        &[event("R1", 80, r#"{"action":"escalate"}"#)],
        &[row("R1", "P1", "open", "D1-OFFICE", 70, 2)],
    )
    .unwrap();
    // Events without a row, or a row for an unknown person: refused, nothing of the call written.
    assert!(b.append_request_events(&[event("R9", 80, "{}")], &[]).is_err());
    assert!(matches!(
        b.append_request_events(&[event("R3", 80, "{}")], &[row("R3", "P404", "open", "S1", 90, 1)]),
        Err(StoreError::UnknownReference { .. })
    ));
    assert!(b.request_events_of("R3").unwrap().is_empty());
    b.append_request_events(&[event("R2", 95, r#"{"action":"close"}"#)], &[row("R2", "P3", "closed", "S1", 90, 2)])
        .unwrap();
    b.commit().unwrap();
    let changes: Vec<Entity> = store.changes_since(before, 10).unwrap().iter().map(|c| c.entity).collect();
    assert_eq!(changes, [Entity::ServiceRequest; 4]);
    let events = store.request_events("R1").unwrap();
    assert_eq!(
        events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        [r#"{"action":"file"}"#, r#"{"action":"escalate"}"#]
    );
    assert!(events[0].seq < events[1].seq && events[1].at == t(80));
    assert_eq!(store.request("R1").unwrap(), Some(row("R1", "P1", "open", "D1-OFFICE", 70, 2)));
    assert_eq!(store.request("R3").unwrap(), None);
    let ids = |scope: &Scope, filter: &crate::RequestFilter| -> Vec<String> {
        store.requests_page(scope, filter, None, 10).unwrap().into_iter().map(|r| r.id).collect()
    };
    assert_eq!(ids(&Scope::All, &Default::default()), ["R1", "R2"]);
    assert_eq!(ids(&Scope::All, &crate::RequestFilter { open: true, ..Default::default() }), ["R1"]);
    assert_eq!(
        ids(&Scope::All, &crate::RequestFilter { unit: Some("D1-OFFICE".into()), ..Default::default() }),
        ["R1"]
    );
    assert_eq!(ids(&Scope::All, &crate::RequestFilter { due_before: Some(t(80)), ..Default::default() }), ["R1"]);
    assert_eq!(ids(&Scope::All, &crate::RequestFilter { person_id: Some("P3".into()), ..Default::default() }), ["R2"]);
    // By where the person lives: P1 in H1 (B1, D1); P3 nowhere.
    assert_eq!(ids(&Scope::Within("B1".into()), &Default::default()), ["R1"]);
    assert_eq!(store.requests_page(&Scope::All, &Default::default(), Some("R1"), 10).unwrap().len(), 1);
}
