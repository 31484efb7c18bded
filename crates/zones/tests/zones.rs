//! The zone engine on the sample district (data/sample): cases read from the import files,
//! their residences placed in the area tree, their stays from the visits of their infectious
//! window, their source known when they are linked to an earlier case.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chainbreak_core::model::{Case, DEFAULT_AREA_LEVELS, Person, Place, StaffMember, Visit, ZoneLevel};
use chainbreak_core::profile::Profile;
use chainbreak_formats::{Format, RecordReader};
use chainbreak_zones::{AreaTree, CaseFacts, Entered, Target, Why, ZoneState, designate, schedule};

fn sample(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/sample").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rows<T: serde::de::DeserializeOwned>(file: &str) -> Vec<T> {
    let text = sample(file);
    RecordReader::new(text.as_bytes(), Format::Csv, file).unwrap().map(|r| r.unwrap().1).collect()
}

struct District {
    tree: AreaTree,
    cases: Vec<Case>,
    facts: Vec<CaseFacts>,
    /// place → its area.
    place_area: BTreeMap<String, String>,
}

fn district() -> District {
    let areas = chainbreak_formats::geojson_areas::read_areas(&sample("areas.geojson"), "areas.geojson").unwrap();
    let tree = AreaTree::new(
        DEFAULT_AREA_LEVELS,
        areas.iter().map(|a| (a.id.as_str(), a.level.as_str(), a.parent.as_deref())),
    )
    .unwrap();
    let places: Vec<Place> = rows("places.csv");
    let place_area: BTreeMap<String, String> =
        places.iter().filter_map(|p| Some((p.id.clone(), p.area.clone()?))).collect();
    let persons: BTreeMap<String, Person> =
        rows::<Person>("persons.csv").into_iter().map(|p| (p.id.clone(), p)).collect();
    let staff: Vec<StaffMember> = rows("staff.csv");
    let visits: Vec<Visit> = rows("visits.csv");
    let cases: Vec<Case> = rows("cases.csv");
    let facts = cases
        .iter()
        .map(|c| {
            let person = &persons[&c.person_id];
            // The infectious window: 4 days before onset (or sampling) until the report.
            let anchor = match c.onset {
                Some(d) => d.to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap()).unwrap().timestamp(),
                None => c.sampled_at.unwrap_or(c.reported_at),
            };
            let from = anchor - jiff::SignedDuration::from_hours(96);
            let stayed: BTreeSet<String> = visits
                .iter()
                .filter(|v| v.person_id == c.person_id && v.t_in >= from && v.t_in < c.reported_at)
                .filter(|v| !v.place_id.starts_with('R'))
                .map(|v| v.place_id.clone())
                .collect();
            CaseFacts {
                case_id: c.id.clone(),
                residence: person.residence.as_ref().and_then(|r| place_area.get(r).cloned()),
                units: staff.iter().filter(|s| s.person_id == c.person_id).map(|s| s.place_id.clone()).collect(),
                stayed: stayed.into_iter().collect(),
                source_known: c.infector_case_id.is_some(),
            }
        })
        .collect();
    District { tree, cases, facts, place_area }
}

#[test]
fn the_sample_districts_cases_draw_zones_by_both_chinese_profiles() {
    let d = district();
    assert_eq!(d.cases.len(), 5);
    let ninth = Profile::builtin("cn-2022-9th").unwrap().zones;
    let z = designate(&ninth, &d.tree, &d.facts).unwrap();
    assert!(z.undecided.is_empty(), "{:?}", z.undecided);
    let level_of = |t: &Target| z.proposals.iter().find(|p| &p.target == t).map(|p| p.level);
    for f in &d.facts {
        let home = f.residence.as_deref().unwrap();
        // A zone on the case's compound as soon as the case is in, high.
        let compound = d.tree.ancestor_at(home, "compound").unwrap();
        assert_eq!(level_of(&Target::Area(compound.into())), Some(ZoneLevel::High), "{}", f.case_id);
        // Every place it stayed at is at least medium.
        for p in &f.stayed {
            assert!(level_of(&Target::Place(p.clone())).is_some(), "{} stayed at {p}", f.case_id);
        }
        // The county is low.
        let county = d.tree.ancestor_at(home, "district").unwrap();
        assert_eq!(level_of(&Target::Area(county.into())), Some(ZoneLevel::Low));
    }
    // Cases of unknown source widen their compound to the community, and only those.
    let unknown: BTreeSet<&str> = d.facts.iter().filter(|f| !f.source_known).map(|f| f.case_id.as_str()).collect();
    assert!(!unknown.is_empty() && unknown.len() < d.facts.len());
    let widened: BTreeSet<&str> = z
        .proposals
        .iter()
        .flat_map(|p| &p.reasons)
        .filter(|r| r.why == Why::UnknownSource)
        .map(|r| r.case_id.as_str())
        .collect();
    assert_eq!(widened, unknown);
    for p in z.proposals.iter().filter(|p| p.widening) {
        let Target::Area(a) = &p.target else { panic!("{p:?}") };
        assert_eq!(d.tree.level_of(a), Some("community"));
        assert!(p.needs_confirmation);
    }
    // Every reason names a case, and every target is a known area or place.
    let ids: BTreeSet<&str> = d.cases.iter().map(|c| c.id.as_str()).collect();
    for p in &z.proposals {
        assert!(!p.reasons.is_empty() && p.reasons.iter().all(|r| ids.contains(r.case_id.as_str())), "{p:?}");
        match &p.target {
            Target::Area(a) => assert!(d.tree.level_of(a).is_some()),
            Target::Place(pl) => assert!(d.place_area.contains_key(pl), "{pl}"),
        }
    }

    // 20 measures: high by building (and unit), low; no medium, no widening.
    let twenty = Profile::builtin("cn-2022-20-measures").unwrap().zones;
    let z = designate(&twenty, &d.tree, &d.facts).unwrap();
    assert!(z.proposals.iter().all(|p| p.level != ZoneLevel::Medium && !p.widening));
    for f in &d.facts {
        let home = f.residence.as_deref().unwrap();
        assert!(
            z.proposals.iter().any(|p| p.target == Target::Area(home.into()) && p.level == ZoneLevel::High),
            "{}",
            f.case_id
        );
        let compound = d.tree.ancestor_at(home, "compound").unwrap();
        assert!(z.proposals.iter().all(|p| p.target != Target::Area(compound.into())));
    }
}

#[test]
fn a_high_zone_of_the_sample_lifts_on_the_day_the_rule_says() {
    let d = district();
    let ninth = Profile::builtin("cn-2022-9th").unwrap().zones;
    // The zone of the last case's compound, designated on its report date; its cases' report
    // dates are the new infections; daily rounds, all negative from the day after.
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    let local = |t: jiff::Timestamp| t.to_zoned(tz.clone()).date();
    let last = d.cases.iter().max_by_key(|c| c.reported_at).unwrap();
    let home = d.facts.iter().find(|f| f.case_id == last.id).unwrap().residence.clone().unwrap();
    let compound = d.tree.ancestor_at(&home, "compound").unwrap().to_string();
    let in_zone: Vec<jiff::civil::Date> = d
        .facts
        .iter()
        .zip(&d.cases)
        .filter(|(f, _)| f.residence.as_deref().and_then(|h| d.tree.ancestor_at(h, "compound")) == Some(&compound))
        .map(|(_, c)| local(c.reported_at))
        .collect();
    let since = *in_zone.iter().min().unwrap();
    let latest = *in_zone.iter().max().unwrap();
    let rounds: Vec<jiff::civil::Date> =
        (1..40).map(|k| since.checked_add(jiff::Span::new().days(k)).unwrap()).collect();
    let until = since.checked_add(jiff::Span::new().days(40)).unwrap();
    let start = ZoneState { level: ZoneLevel::High, entered: Entered::Designated, since };
    let changes = schedule(&ninth, start, &in_zone, &rounds, until);
    assert_eq!(changes.len(), 2, "{changes:?}");
    let day = |n: i64| latest.checked_add(jiff::Span::new().days(n)).unwrap();
    assert_eq!((changes[0].on, changes[0].to), (day(7), ZoneLevel::Medium));
    assert_eq!((changes[1].on, changes[1].to), (day(10), ZoneLevel::Low));
}
