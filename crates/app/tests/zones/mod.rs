//! Risk zones end to end on the sample district (a real SQLite file): proposals recorded from
//! cases, a commander's decisions, residents' measures, widening that lapses, screening rounds,
//! lowering and lifting on the days the rules say in the deployment's time zone, publication,
//! and arrivals from a zone; and a property: every resident of a confirmed high zone has an
//! open measure or a recorded exemption.

use std::collections::BTreeSet;
use std::sync::Arc;

use chainbreak_app::Deployment;
use chainbreak_app::accounts::Actor;
use chainbreak_app::zones::{self, Decision};
use chainbreak_closedloop::Action;
use chainbreak_core::model::{Arrival, OriginRisk, ZoneLevel};
use chainbreak_core::time::ManualClock;
use chainbreak_store::{Scope, ZoneFilter};
use chainbreak_zones::{Round, Status, Target, Why};
use jiff::civil::Date;

use super::*;

fn actor() -> Actor {
    Actor { name: "commander".into(), via: "test".into(), reason: None }
}

/// 2022-03-`d` at `h`:`m` local time (Asia/Shanghai, UTC+8).
fn local(d: i8, h: i8, m: i8) -> Timestamp {
    jiff::civil::date(2022, 3, d)
        .at(h, m, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .unwrap()
        .timestamp()
}

fn day(d: i8) -> Date {
    jiff::civil::date(2022, 3, d)
}

/// The sample district, with the clock at 2022-03-13 12:00 local.
fn sample_deployment(dir: &Path, profile: &str) -> (Deployment, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(local(13, 12, 0)));
    let mut store = chainbreak_app::init(&dir.join("z.db"), "Asia/Shanghai", profile, &*clock).unwrap();
    for (kind, name) in [
        (Kind::Areas, "areas.geojson"),
        (Kind::Units, "units.csv"),
        (Kind::Places, "places.csv"),
        (Kind::Persons, "persons.csv"),
        (Kind::Staff, "staff.csv"),
        (Kind::Visits, "visits.csv"),
        (Kind::Cases, "cases.csv"),
    ] {
        import_file(&mut store, kind, &sample().join(name), &ImportOptions::default(), t0(), &mut NoProgress)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let dep = Deployment::new(Box::new(store), clock.clone()).unwrap();
    (dep, clock)
}

/// Imports one case, given as `id,person_id,classification,onset,sampled_at,reported_at`.
fn import_case(dir: &Path, store: &mut chainbreak_store_sqlite::SqliteStore, row: &str) {
    let path = dir.join("case.csv");
    std::fs::write(&path, format!("id,person_id,classification,onset,sampled_at,reported_at\n{row}\n")).unwrap();
    import_file(store, Kind::Cases, &path, &ImportOptions::default(), t0(), &mut NoProgress).unwrap();
}

/// The residents' measures naming a zone.
fn measures(dep: &mut Deployment, zone: &str) -> chainbreak_app::episodes::ZoneMeasures {
    let mut all = chainbreak_app::episodes::zone_measures(dep).unwrap();
    all.remove(&chainbreak_closedloop::zone_source(zone)).unwrap_or_default()
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn zone_on(dep: &Deployment, kind: &str, id: &str) -> zones::ZoneView {
    let filter = ZoneFilter { target: Some((kind.into(), id.into())), open: true, ..Default::default() };
    let mut found = zones::list(dep, None, &filter).unwrap();
    assert_eq!(found.len(), 1, "one open zone on {kind} {id}: {found:?}");
    found.pop().unwrap()
}

fn residents_of(dep: &Deployment, area: &str) -> BTreeSet<String> {
    dep.store.persons_page(&Scope::Within(area.into()), None, 100_000).unwrap().into_iter().map(|p| p.id).collect()
}

/// Residents of confirmed zones whose level has a resident measure who have neither an open
/// measure naming the zone nor a recorded exemption (a closed one naming it).
fn uncovered(dep: &mut Deployment) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let confirmed = ZoneFilter { status: Some("confirmed".into()), level: Some(ZoneLevel::High), ..Default::default() };
    for z in zones::list(dep, None, &confirmed).unwrap() {
        let Target::Area(area) = &z.zone.target else { continue };
        let m = measures(dep, &z.zone.id);
        let (open, exempt) = (m.open, m.exempt);
        for person in residents_of(dep, area) {
            if !open.contains_key(&person) && !exempt.contains(&person) {
                out.push((z.zone.id.clone(), person));
            }
        }
    }
    out
}

#[test]
fn a_case_s_compound_is_proposed_confirmed_lowered_and_lifted_on_the_rule_s_days() {
    let dir = tempfile::tempdir().unwrap();
    let (mut dep, clock) = sample_deployment(dir.path(), "cn-2022-9th");
    // K1 (source unknown) and K2, K3 (infected by K1).
    let rec = zones::record(&mut dep, &actor(), None, &ids(&["K1", "K2", "K3"])).unwrap();
    assert!(!rec.proposed.is_empty() && rec.updated.is_empty(), "{rec:?}");
    // K1 lives in R11, building HS-S1-C2-K2-B2 of compound HS-S1-C2-K2: a high zone proposed on
    // the compound, with K1's residence as its reason.
    let compound = zone_on(&dep, "area", "HS-S1-C2-K2");
    assert_eq!((compound.zone.status, compound.zone.level), (Status::Proposed, ZoneLevel::High));
    assert!(compound.zone.reasons.iter().any(|r| r.case_id == "K1" && r.why == Why::Residence), "{compound:?}");
    // K1's source is unknown: the community around widens, for a commander to confirm.
    let widened = zone_on(&dep, "area", "HS-S1-C2");
    assert!(widened.zone.widening && widened.zone.needs_confirmation, "{widened:?}");
    // Recording again adds nothing: each reason once per target.
    let again = zones::record(&mut dep, &actor(), None, &ids(&["K1", "K2", "K3"])).unwrap();
    assert!(again.proposed.is_empty() && again.updated.is_empty(), "{again:?}");
    assert_eq!(again.unchanged, rec.plan.designation.proposals.len());

    // Nothing is in force until confirmed; confirming proposes the residents' measure.
    assert!(uncovered(&mut dep).is_empty());
    let residents = residents_of(&dep, "HS-S1-C2-K2");
    assert!(residents.len() >= 10, "{residents:?}");
    let confirm = Decision::Confirm { note: Some("K1's compound".into()) };
    let done = zones::decide(&mut dep, &actor(), None, &compound.zone.id, confirm, "U-community").unwrap();
    assert_eq!(done.residents_proposed, residents.len());
    assert_eq!(done.zone.zone.since, Some(day(13)));
    assert!(uncovered(&mut dep).is_empty());
    // A resident's measure rejected with a reason is their exemption.
    let open = measures(&mut dep, &compound.zone.id).open;
    let (person, episode) = open.iter().next().map(|(p, e)| (p.clone(), e.clone())).unwrap();
    let reject = chainbreak_app::episodes::Request::Act { episode, action: Action::Reject };
    chainbreak_app::episodes::transition(&mut dep, &actor(), None, &[reject]).unwrap();
    assert!(uncovered(&mut dep).is_empty(), "{person} is exempt");

    // The county's low zone, confirmed too.
    let county = zone_on(&dep, "area", "HS");
    assert_eq!(county.zone.level, ZoneLevel::Low);
    zones::decide(&mut dep, &actor(), None, &county.zone.id, Decision::Confirm { note: None }, "U").unwrap();

    // Screening rounds: daily from the day in force (the 17th's is missed); all negative.
    for d in 13..=19 {
        clock.set(local(d, 20, 0));
        let round = Round { on: day(d), tested: 40, positives: 0, completed_at: local(d, 20, 0) };
        if d != 17 {
            zones::record_round(&mut dep, &actor(), None, &compound.zone.id, round).unwrap();
        }
        let review = zones::review(&mut dep, &actor(), None, "U").unwrap();
        assert!(review.lowered.is_empty(), "day {d}: {review:?}");
        // Only the zones that can be lowered have rounds; the missed one is late by the 18th.
        assert!(review.rounds_due.iter().all(|r| r.zone == compound.zone.id), "{review:?}");
    }
    // Day 7 after 13 March is 20 March (local time): not lowered in the 19th's last minute, nor
    // on the 20th before its all-negative round is in; lowered once it is.
    let z = zone_on(&dep, "area", "HS-S1-C2-K2");
    assert_eq!((z.zone.level, z.next_review), (ZoneLevel::High, Some(day(20))));
    clock.set(local(20, 0, 0) - jiff::SignedDuration::from_secs(60));
    assert!(zones::review(&mut dep, &actor(), None, "U").unwrap().lowered.is_empty());
    clock.set(local(20, 0, 0));
    let review = zones::review(&mut dep, &actor(), None, "U").unwrap();
    assert!(review.lowered.is_empty(), "{review:?}");
    assert_eq!(review.rounds_due.iter().map(|r| (r.due.on, r.late)).collect::<Vec<_>>(), [(day(20), false)]);
    clock.set(local(20, 18, 0));
    let round = Round { on: day(20), tested: 40, positives: 0, completed_at: local(20, 18, 0) };
    zones::record_round(&mut dep, &actor(), None, &compound.zone.id, round).unwrap();
    let review = zones::review(&mut dep, &actor(), None, "U").unwrap();
    let lowered: Vec<_> = review.lowered.iter().filter(|l| l.zone == compound.zone.id).collect();
    assert_eq!(lowered.len(), 1, "{review:?}");
    assert_eq!((lowered[0].change.on, lowered[0].change.to), (day(20), ZoneLevel::Medium));
    // Medium has no resident measure: the residents' measures end with the high level.
    assert_eq!(review.measures_ended, residents.len() - 1, "{review:?}");
    assert!(measures(&mut dep, &compound.zone.id).open.is_empty());
    // A medium zone that came from high: low (lifted) 3 clean days later, on the 23rd.
    clock.set(local(22, 23, 59));
    assert!(zones::review(&mut dep, &actor(), None, "U").unwrap().lifted.is_empty());
    clock.set(local(23, 0, 0));
    let review = zones::review(&mut dep, &actor(), None, "U").unwrap();
    assert!(review.lifted.contains(&compound.zone.id), "{review:?}");
    // With no higher zone left in it, the county's low zone is lifted too.
    assert!(review.lifted.contains(&county.zone.id), "{review:?}");
    let history = zones::show(&dep, None, &compound.zone.id).unwrap();
    let names: Vec<&str> = history.events.iter().map(|e| e.action.name()).collect();
    assert_eq!(names.first(), Some(&"propose"));
    assert!(names.contains(&"confirm") && names.iter().filter(|n| **n == "lower").count() == 2, "{names:?}");
    assert_eq!(history.zone.zone.status, Status::Lifted);
    assert_eq!(history.zone.zone.ended_on, Some(day(23)));
}

#[test]
fn a_new_case_on_the_last_clean_day_restarts_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let (mut dep, clock) = sample_deployment(dir.path(), "cn-2022-9th");
    zones::record(&mut dep, &actor(), None, &ids(&["K1"])).unwrap();
    let compound = zone_on(&dep, "area", "HS-S1-C2-K2");
    zones::decide(&mut dep, &actor(), None, &compound.zone.id, Decision::Confirm { note: None }, "U").unwrap();
    let mut store = chainbreak_store_sqlite::SqliteStore::open(&dir.path().join("z.db")).unwrap();
    let day_of = |d: i8, dep: &mut Deployment| {
        clock.set(local(d, 18, 0));
        let round = Round { on: day(d), tested: 30, positives: 0, completed_at: local(d, 18, 0) };
        zones::record_round(dep, &actor(), None, &compound.zone.id, round).unwrap();
        zones::review(dep, &actor(), None, "U").unwrap()
    };
    for d in 13..=19 {
        assert!(day_of(d, &mut dep).lowered.is_empty());
    }
    // On the 20th, the last clean day, P021 of the same compound (building B3) is reported.
    import_case(dir.path(), &mut store, "K7,P021,confirmed,2022-03-19,2022-03-20T01:00:00Z,2022-03-20T03:00:00Z");
    clock.set(local(20, 12, 0));
    let rec = zones::record(&mut dep, &actor(), None, &ids(&["K7"])).unwrap();
    assert!(rec.updated.contains(&compound.zone.id), "{rec:?}");
    // The count restarts from the 20th: not lowered that day, nor until the 27th.
    for d in 20..=26 {
        assert!(day_of(d, &mut dep).lowered.is_empty(), "day {d}");
    }
    let review = day_of(27, &mut dep);
    let lowered: Vec<_> = review.lowered.iter().filter(|l| l.zone == compound.zone.id).collect();
    assert_eq!(lowered.len(), 1, "{review:?}");
    assert_eq!((lowered[0].change.on, lowered[0].change.counted_from), (day(27), day(20)));
}

#[test]
fn a_widening_lapses_when_the_source_is_found_and_a_case_is_widened_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut dep, clock) = sample_deployment(dir.path(), "cn-2022-9th");
    zones::record(&mut dep, &actor(), None, &ids(&["K1"])).unwrap();
    let widened = zone_on(&dep, "area", "HS-S1-C2");
    let community = residents_of(&dep, "HS-S1-C2");
    let done =
        zones::decide(&mut dep, &actor(), None, &widened.zone.id, Decision::Confirm { note: None }, "U").unwrap();
    assert_eq!(done.residents_proposed, community.len());
    assert!(uncovered(&mut dep).is_empty());
    // The source is found: K1 turns out imported. The widening lapses at the next review, and
    // its residents' measures end.
    clock.set(local(14, 9, 0));
    let cases = sample().join("cases.csv");
    let text = std::fs::read_to_string(&cases).unwrap().replace(
        "K1,P071,confirmed,2022-03-08,2022-03-09T02:00:00Z,2022-03-09T08:00:00Z,false,",
        "K1,P071,confirmed,2022-03-08,2022-03-09T02:00:00Z,2022-03-09T08:00:00Z,true,",
    );
    let path = dir.path().join("cases.csv");
    std::fs::write(&path, text).unwrap();
    let mut store = chainbreak_store_sqlite::SqliteStore::open(&dir.path().join("z.db")).unwrap();
    import_file(&mut store, Kind::Cases, &path, &ImportOptions::default(), t0(), &mut NoProgress).unwrap();
    let review = zones::review(&mut dep, &actor(), None, "U").unwrap();
    assert_eq!(review.lapsed, vec![widened.zone.id.clone()], "{review:?}");
    assert_eq!(review.measures_ended, community.len());
    let history = zones::show(&dep, None, &widened.zone.id).unwrap();
    assert_eq!(history.zone.zone.status, Status::Lapsed);
    // K1's widening is recorded once: proposing for K1 again does not widen again.
    let again = zones::record(&mut dep, &actor(), None, &ids(&["K1"])).unwrap();
    assert!(!again.proposed.iter().any(|z| z.starts_with("area:HS-S1-C2:")), "{again:?}");
}

#[test]
fn a_case_the_trace_engine_links_to_an_earlier_case_does_not_widen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut dep, _clock) = sample_deployment(dir.path(), "cn-2022-9th");
    let mut store = chainbreak_store_sqlite::SqliteStore::open(&dir.path().join("z.db")).unwrap();
    for (kind, name) in [(Kind::Groups, "groups.csv"), (Kind::Memberships, "memberships.csv")] {
        import_file(&mut store, kind, &sample().join(name), &ImportOptions::default(), t0(), &mut NoProgress).unwrap();
    }
    // K6: P072, of K1's household (H027), fell ill on 11 March, no infector on record. K1 (ill
    // on the 8th) and K2 (the 10th) were infectious at home: the trace engine links K6 to one
    // of them. K1 fell ill first: K6 is not K1's source, and K1 still widens.
    import_case(dir.path(), &mut store, "K6,P072,confirmed,2022-03-11,2022-03-11T02:00:00Z,2022-03-11T09:00:00Z");
    let linked = zones::linked_sources(&mut dep, &ids(&["K1", "K6"])).unwrap();
    // K1 or K2 (ill on the 10th), both infectious at home before K6 fell ill.
    assert!(matches!(linked.get("K6").map(String::as_str), Some("K1" | "K2")), "{linked:?}");
    assert!(!linked.contains_key("K1"), "{linked:?}");
    let plan = zones::propose(&mut dep, &ids(&["K1", "K6"])).unwrap();
    let widened: Vec<&str> = plan
        .designation
        .proposals
        .iter()
        .flat_map(|p| p.reasons.iter().filter(|r| r.why == Why::UnknownSource).map(|r| r.case_id.as_str()))
        .collect();
    assert_eq!(widened, ["K1"], "{plan:?}");
}

#[test]
fn confirmed_zones_are_published_without_cases_and_arrivals_from_them_get_their_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (mut dep, _clock) = sample_deployment(dir.path(), "cn-2022-20-measures");
    zones::record(&mut dep, &actor(), None, &ids(&["K1"])).unwrap();
    assert!(zones::published(&dep).unwrap().is_empty(), "nothing confirmed, nothing published");
    // 20 measures: high by building, no widening.
    let building = zone_on(&dep, "area", "HS-S1-C2-K2-B2");
    assert!(
        !zones::list(&dep, None, &ZoneFilter { open: true, ..Default::default() })
            .unwrap()
            .iter()
            .any(|z| z.zone.widening)
    );
    zones::decide(&mut dep, &actor(), None, &building.zone.id, Decision::Confirm { note: None }, "U").unwrap();
    let public = zones::published(&dep).unwrap();
    assert_eq!(public.len(), 1);
    assert_eq!((public[0].level, public[0].drawn_at.as_str()), (ZoneLevel::High, "building"));
    let text = serde_json::to_string(&zones::published_geojson(&dep).unwrap()).unwrap();
    assert!(text.contains("Polygon") && !text.contains("K1") && !text.contains("P071"), "{text}");
    // An arrival whose origin lies in the high zone gets the high-risk arrival rule (7 days at
    // home under this profile), though its record says low.
    let arrival = Arrival {
        person_id: "P001".into(),
        origin: "R11".into(),
        origin_risk: OriginRisk::Low,
        left_origin_at: local(13, 8, 0),
        arrived_at: local(13, 10, 0),
        trip_id: None,
        destination: None,
    };
    let report = chainbreak_app::episodes::propose_arrivals(&mut dep, &actor(), &[arrival], "U").unwrap();
    assert_eq!(report.proposed, 1);
    let open = chainbreak_app::episodes::current(&mut dep).unwrap();
    let (_, ep) = open.iter().find(|(_, e)| e.person == "P001").unwrap();
    assert_eq!(ep.plan, dep.profile.arrivals.for_origin(OriginRisk::High).unwrap().clone());
    assert!(ep.reasons[0].evidence.as_deref().unwrap().contains(&building.zone.id), "{ep:?}");
}

mod property {
    //! Random commanders over a small random district: whatever they do, every person living in
    //! a confirmed high zone has an open measure naming it or a recorded exemption once the
    //! zone is confirmed or reviewed; and no open measure names a zone that is not in force at
    //! a level with a resident measure.

    use chainbreak_core::model::{Area, Case, Classification, Person, Place, PlaceKind};
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Record zones for these cases (a bit mask over the cases).
        Record(u8),
        /// Confirm the n-th proposed zone.
        Confirm(u8),
        /// Reject the n-th proposed zone.
        Reject(u8),
        /// Lift the n-th confirmed zone by hand.
        Lift(u8),
        /// Reject the n-th open resident's measure (the person's recorded exemption).
        Exempt(u8),
        /// An all-negative (or positive) round today on the n-th confirmed zone.
        Round(u8, bool),
        /// Move the clock by this many hours and review.
        Review(u8),
        /// Person n moves to building b (the next review catches up).
        Move(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => any::<u8>().prop_map(Op::Record),
            3 => any::<u8>().prop_map(Op::Confirm),
            1 => any::<u8>().prop_map(Op::Reject),
            1 => any::<u8>().prop_map(Op::Lift),
            1 => any::<u8>().prop_map(Op::Exempt),
            2 => (any::<u8>(), prop::bool::weighted(0.2)).prop_map(|(z, p)| Op::Round(z, p)),
            3 => (1u8..72).prop_map(Op::Review),
            1 => (any::<u8>(), any::<u8>()).prop_map(|(p, b)| Op::Move(p, b)),
        ]
    }

    const BUILDINGS: [&str; 6] = ["B11", "B12", "B21", "B22", "B31", "B32"];

    fn area(id: &str, level: &str, parent: Option<&str>) -> Area {
        Area { id: id.into(), name: id.into(), level: level.into(), parent: parent.map(Into::into), geometry: None }
    }

    fn residence(b: &str) -> Place {
        Place {
            id: format!("R-{b}"),
            name: None,
            kind: PlaceKind::Residence,
            key_place: false,
            lat: None,
            lon: None,
            area: Some(b.into()),
        }
    }

    /// District D → subdistrict S → community M → compounds K1..K3 → two buildings each; 24
    /// persons; four cases (some of unknown source) reported over the first days.
    fn world(dir: &Path, profile: &str, homes: &[u8], sources: &[bool]) -> (Deployment, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(local(10, 9, 0)));
        let mut store = chainbreak_app::init(&dir.join("p.db"), "Asia/Shanghai", profile, &*clock).unwrap();
        let mut b = store.begin(local(10, 9, 0)).unwrap();
        let mut areas =
            vec![area("D", "district", None), area("S", "subdistrict", Some("D")), area("M", "community", Some("S"))];
        for k in 1..=3 {
            areas.push(area(&format!("K{k}"), "compound", Some("M")));
            for n in 1..=2 {
                areas.push(area(&format!("B{k}{n}"), "building", Some(&format!("K{k}"))));
            }
        }
        b.put_areas(&areas).unwrap();
        b.put_places(&BUILDINGS.map(residence)).unwrap();
        let persons: Vec<Person> = homes
            .iter()
            .enumerate()
            .map(|(i, h)| Person {
                id: format!("P{i:02}"),
                residence: Some(format!("R-{}", BUILDINGS[*h as usize % BUILDINGS.len()])),
                birth_year: None,
                sex: None,
                occupation: None,
            })
            .collect();
        b.put_persons(&persons).unwrap();
        let cases: Vec<Case> = sources
            .iter()
            .enumerate()
            .map(|(i, known)| Case {
                id: format!("K{i}"),
                person_id: format!("P{:02}", i * 5),
                classification: Classification::Confirmed,
                onset: None,
                sampled_at: Some(local(8 + i as i8, 8, 0)),
                reported_at: local(8 + i as i8, 12, 0),
                imported: *known,
                detection: None,
                severity: None,
                outcome: None,
                vaccine_doses: None,
                infector_case_id: None,
                cluster: None,
            })
            .collect();
        b.put_cases(&cases).unwrap();
        b.commit().unwrap();
        let dep = Deployment::new(Box::new(store), clock.clone()).unwrap();
        (dep, clock)
    }

    fn zones_with(dep: &Deployment, status: &str) -> Vec<String> {
        let filter = ZoneFilter { status: Some(status.into()), ..Default::default() };
        zones::list(dep, None, &filter).unwrap().into_iter().map(|z| z.zone.id).collect()
    }

    fn pick(ids: &[String], n: u8) -> Option<&String> {
        (!ids.is_empty()).then(|| &ids[n as usize % ids.len()])
    }

    /// Open zone residents' measures naming zones not in force at a level with a measure.
    fn stray(dep: &mut Deployment) -> Vec<(String, String)> {
        let in_force: BTreeSet<String> = zones::list(
            dep,
            None,
            &ZoneFilter { status: Some("confirmed".into()), level: Some(ZoneLevel::High), ..Default::default() },
        )
        .unwrap()
        .into_iter()
        .map(|z| chainbreak_closedloop::zone_source(&z.zone.id))
        .collect();
        let mut out = Vec::new();
        for (id, ep) in chainbreak_app::episodes::current(dep).unwrap() {
            if ep.category != chainbreak_closedloop::Category::ZoneResident {
                continue;
            }
            for r in &ep.reasons {
                if !in_force.contains(&r.source) {
                    out.push((id.clone(), r.source.clone()));
                }
            }
        }
        out
    }

    fn run(profile: &str, homes: &[u8], sources: &[bool], ops: &[Op]) -> Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        let (mut dep, clock) = world(dir.path(), profile, homes, sources);
        let cases: Vec<String> = (0..sources.len()).map(|i| format!("K{i}")).collect();
        let mut now = local(10, 9, 0);
        // A person moved in since the last review: the next review catches them up.
        let mut moved = false;
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Record(mask) => {
                    let chosen: Vec<String> = cases
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) != 0)
                        .map(|(_, c)| c.clone())
                        .collect();
                    if !chosen.is_empty() {
                        zones::record(&mut dep, &actor(), None, &chosen).unwrap();
                    }
                }
                Op::Confirm(n) => {
                    if let Some(id) = pick(&zones_with(&dep, "proposed"), *n) {
                        zones::decide(&mut dep, &actor(), None, id, Decision::Confirm { note: None }, "U").unwrap();
                    }
                }
                Op::Reject(n) => {
                    if let Some(id) = pick(&zones_with(&dep, "proposed"), *n) {
                        let note = "not warranted".to_string();
                        zones::decide(&mut dep, &actor(), None, id, Decision::Reject { note }, "U").unwrap();
                    }
                }
                Op::Lift(n) => {
                    if let Some(id) = pick(&zones_with(&dep, "confirmed"), *n) {
                        let note = "lifted by the command".to_string();
                        zones::decide(&mut dep, &actor(), None, id, Decision::Lift { note }, "U").unwrap();
                    }
                }
                Op::Exempt(n) => {
                    let open: Vec<String> = chainbreak_app::episodes::current(&mut dep)
                        .unwrap()
                        .into_iter()
                        .filter(|(_, e)| {
                            e.category == chainbreak_closedloop::Category::ZoneResident
                                && e.state == chainbreak_core::model::EpisodeState::Proposed
                        })
                        .map(|(id, _)| id)
                        .collect();
                    if let Some(id) = pick(&open, *n) {
                        let reject =
                            chainbreak_app::episodes::Request::Act { episode: id.clone(), action: Action::Reject };
                        chainbreak_app::episodes::transition(&mut dep, &actor(), None, &[reject]).unwrap();
                    }
                }
                Op::Round(n, positive) => {
                    if let Some(id) = pick(&zones_with(&dep, "confirmed"), *n) {
                        let z = zones::show(&dep, None, id).unwrap().zone.zone;
                        let today = dep.calendar.day_of(now);
                        if z.since.is_some_and(|s| s <= today) {
                            let round =
                                Round { on: today, tested: 20, positives: u32::from(*positive), completed_at: now };
                            zones::record_round(&mut dep, &actor(), None, id, round).unwrap();
                        }
                    }
                }
                Op::Review(hours) => {
                    now += jiff::SignedDuration::from_hours(i64::from(*hours));
                    clock.set(now);
                    zones::review(&mut dep, &actor(), None, "U").unwrap();
                    moved = false;
                }
                Op::Move(p, b) => {
                    let id = format!("P{:02}", *p as usize % homes.len());
                    let mut person = dep.store.person(&id).unwrap().unwrap();
                    person.residence = Some(format!("R-{}", BUILDINGS[*b as usize % BUILDINGS.len()]));
                    let mut batch = dep.store.begin(now).unwrap();
                    batch.put_persons(&[person]).unwrap();
                    batch.commit().unwrap();
                    moved = true;
                }
            }
            if !moved {
                let missing = uncovered(&mut dep);
                prop_assert!(missing.is_empty(), "after step {step} {op:?}: {missing:?}");
            }
            let stray = stray(&mut dep);
            prop_assert!(stray.is_empty(), "after step {step} {op:?}: measures of zones not in force {stray:?}");
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn every_resident_of_a_confirmed_high_zone_has_a_measure_or_an_exemption(
            twenty in any::<bool>(),
            homes in prop::collection::vec(any::<u8>(), 24),
            sources in prop::collection::vec(any::<bool>(), 4),
            ops in prop::collection::vec(op(), 1..24),
        ) {
            let profile = if twenty { "cn-2022-20-measures" } else { "cn-2022-9th" };
            run(profile, &homes, &sources, &ops)?;
        }
    }
}
