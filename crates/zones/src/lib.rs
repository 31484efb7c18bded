//! The zone engine (issue 8; DESIGN.md §1 and §4, 精准管控): risk zones drawn at the finest
//! level the data allows, widened one level up while a case's source is unknown (先严先扩),
//! lowered and lifted by the profile's rules once clean days pass (再调再收).
//!
//! Pure and deterministic: the caller gives the area tree, the cases' facts, and the days of
//! new infections and all-negative screening rounds as local dates of the deployment. Every
//! designation is a [`Proposal`] with its reasons, for a commander to confirm (DESIGN.md §4a);
//! what cannot be drawn from the data is named in [`Designation::undecided`], never guessed.

use std::collections::BTreeMap;

use chainbreak_core::model::ZoneLevel;
use chainbreak_core::profile::Zones;
use serde::{Deserialize, Serialize};

mod lifecycle;
mod screening;
mod zone;

pub use lifecycle::{Change, Entered, ZoneState, schedule};
pub use screening::{RoundDue, next_round};
pub use zone::{Refusal, Round, Status, Zone, ZoneAction, ZoneEvent};

/// Bad area data: which area and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("area {area}: level `{level}` is not one of the deployment's levels")]
    UnknownLevel { area: String, level: String },
    #[error("area {area}: parent {parent} is not a known area")]
    UnknownParent { area: String, parent: String },
    #[error("area {area}: its parent {parent} is not at a coarser level")]
    ParentNotCoarser { area: String, parent: String },
    #[error("area {area} is listed twice")]
    Duplicate { area: String },
    #[error("zones.widening.cap_level `{0}` is not one of the deployment's levels")]
    UnknownCap(String),
}

/// The deployment's areas: each with its level (rank in the level list, top first) and parent.
#[derive(Debug, Clone, Default)]
pub struct AreaTree {
    levels: Vec<String>,
    areas: BTreeMap<String, (usize, Option<String>)>,
}

impl AreaTree {
    /// `levels` top first (`province` … `building`); `areas` as (id, level, parent). A parent
    /// must be known and at a coarser level, so the tree has no cycle.
    pub fn new<'a>(
        levels: &[&str],
        areas: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>)>,
    ) -> Result<AreaTree, ZoneError> {
        let mut tree = AreaTree { levels: levels.iter().map(|l| l.to_string()).collect(), areas: BTreeMap::new() };
        let mut parents = Vec::new();
        for (id, level, parent) in areas {
            let rank = tree
                .rank(level)
                .ok_or_else(|| ZoneError::UnknownLevel { area: id.to_string(), level: level.to_string() })?;
            if tree.areas.insert(id.to_string(), (rank, parent.map(str::to_string))).is_some() {
                return Err(ZoneError::Duplicate { area: id.to_string() });
            }
            if let Some(p) = parent {
                parents.push((id.to_string(), rank, p.to_string()));
            }
        }
        for (id, rank, parent) in parents {
            match tree.areas.get(&parent) {
                None => return Err(ZoneError::UnknownParent { area: id, parent }),
                Some((r, _)) if *r >= rank => return Err(ZoneError::ParentNotCoarser { area: id, parent }),
                Some(_) => {}
            }
        }
        Ok(tree)
    }

    fn rank(&self, level: &str) -> Option<usize> {
        self.levels.iter().position(|l| l == level)
    }

    /// The level of an area.
    pub fn level_of(&self, id: &str) -> Option<&str> {
        self.areas.get(id).map(|(r, _)| self.levels[*r].as_str())
    }

    /// The parent of an area.
    pub fn parent(&self, id: &str) -> Option<&str> {
        self.areas.get(id)?.1.as_deref()
    }

    /// The area itself or its ancestor at `level`, if the chain of parents reaches it.
    pub fn ancestor_at<'a>(&'a self, id: &'a str, level: &str) -> Option<&'a str> {
        let want = self.rank(level)?;
        let mut at = self.areas.get_key_value(id)?;
        loop {
            let (key, (rank, parent)) = at;
            if *rank == want {
                return Some(key.as_str());
            }
            if *rank < want {
                return None;
            }
            at = self.areas.get_key_value(parent.as_deref()?)?;
        }
    }
}

/// What a case tells the zone engine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaseFacts {
    pub case_id: String,
    /// The area the case lives in (a building, or the finest level known).
    pub residence: Option<String>,
    /// The case's units (workplaces or schools), place ids.
    pub units: Vec<String>,
    /// Places the case stayed at while infectious (place ids).
    pub stayed: Vec<String>,
    /// Whether the source is known: a link to a known case (trace engine) or a known exposure.
    pub source_known: bool,
}

/// What a zone covers: an area, or a place (a venue) itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Target {
    Area(String),
    Place(String),
}

/// Why a case puts a zone on a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// The case lives there.
    Residence,
    /// The case's unit (workplace or school).
    Unit,
    /// The case stayed there.
    Stayed,
    /// The county (district) the case's zones lie in.
    County,
    /// The case's source is unknown: its zone widened one level up.
    UnknownSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub case_id: String,
    pub why: Why,
    /// The area or place the reason comes from (for a widening: the zone widened).
    pub from: String,
}

/// A zone proposed on a target, with every reason for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proposal {
    pub target: Target,
    pub level: ZoneLevel,
    /// The profile says the data cannot decide this alone ("frequent" places, widenings).
    pub needs_confirmation: bool,
    /// Proposed only by widening for unknown sources (lapses when the source is found).
    pub widening: bool,
    pub reasons: Vec<Reason>,
}

/// The proposals for a set of cases, and what could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Designation {
    /// One per target, by target; a target some rules put at several levels gets the highest.
    pub proposals: Vec<Proposal>,
    /// (case id, why a rule could not be applied).
    pub undecided: Vec<(String, String)>,
}

/// How severe a level is (high > medium > low).
pub fn severity(level: ZoneLevel) -> u8 {
    match level {
        ZoneLevel::High => 3,
        ZoneLevel::Medium => 2,
        ZoneLevel::Low => 1,
    }
}

/// The zones the profile draws for `cases`: each level's rule at each of its `drawn_at`
/// levels (an area level: the ancestor of the case's residence there; `place`: the case's unit
/// for high zones, the places it stayed at for the others), and, when widening is on, each
/// high area of a case of unknown source widened one level up, never above the cap.
pub fn designate(rules: &Zones, tree: &AreaTree, cases: &[CaseFacts]) -> Result<Designation, ZoneError> {
    let cap = match (&rules.widening.cap_level, rules.widening.enabled) {
        (Some(c), true) => Some(tree.rank(c).ok_or_else(|| ZoneError::UnknownCap(c.clone()))?),
        _ => None,
    };
    let mut by_target: BTreeMap<Target, Proposal> = BTreeMap::new();
    let mut undecided = Vec::new();
    let mut offer = |target: Target, level: ZoneLevel, needs: bool, widening: bool, reason: Reason| {
        let p = by_target.entry(target.clone()).or_insert_with(|| Proposal {
            target,
            level,
            needs_confirmation: needs,
            widening,
            reasons: Vec::new(),
        });
        if severity(level) > severity(p.level) {
            *p = Proposal { target: p.target.clone(), level, needs_confirmation: needs, widening, reasons: Vec::new() };
        } else if severity(level) < severity(p.level) {
            return;
        } else if !p.reasons.is_empty() {
            // The same level from another rule: confirmed only if every rule lets it be, a
            // widening only if nothing else draws it.
            p.needs_confirmation |= needs;
            p.widening &= widening;
        }
        if !p.reasons.contains(&reason) {
            p.reasons.push(reason);
        }
    };
    for case in cases {
        let reason = |why: Why, from: &str| Reason { case_id: case.case_id.clone(), why, from: from.to_string() };
        let mut high_areas: Vec<&str> = Vec::new();
        for rule in &rules.levels {
            for at in &rule.drawn_at {
                if at == "place" {
                    // High zones at the case's units, the others at the places it stayed at.
                    let (places, why) = if rule.level == ZoneLevel::High {
                        (&case.units, Why::Unit)
                    } else {
                        (&case.stayed, Why::Stayed)
                    };
                    for p in places {
                        offer(Target::Place(p.clone()), rule.level, rule.needs_confirmation, false, reason(why, p));
                    }
                    continue;
                }
                let Some(home) = case.residence.as_deref() else {
                    undecided.push((
                        case.case_id.clone(),
                        format!("no residence: the {} zone at `{at}` is not drawn", rule.level),
                    ));
                    continue;
                };
                let Some(area) = tree.ancestor_at(home, at) else {
                    undecided.push((
                        case.case_id.clone(),
                        format!(
                            "residence {home} has no area at level `{at}`: the {} zone there is not drawn",
                            rule.level
                        ),
                    ));
                    continue;
                };
                let why = if rule.level == ZoneLevel::Low { Why::County } else { Why::Residence };
                offer(Target::Area(area.to_string()), rule.level, rule.needs_confirmation, false, reason(why, home));
                if rule.level == ZoneLevel::High {
                    high_areas.push(area);
                }
            }
        }
        if let Some(cap) = cap
            && !case.source_known
        {
            let needs = rules.widening.needs_confirmation.unwrap_or(true);
            for area in high_areas {
                let Some(parent) = tree.parent(area) else { continue };
                let rank = tree.rank(tree.level_of(parent).expect("known parent")).expect("known level");
                if rank >= cap {
                    offer(
                        Target::Area(parent.to_string()),
                        ZoneLevel::High,
                        needs,
                        true,
                        reason(Why::UnknownSource, area),
                    );
                }
            }
        }
    }
    Ok(Designation { proposals: by_target.into_values().collect(), undecided })
}

/// Whether a widening made on `widened_on` has lapsed by `today`: the source was found (when
/// the profile says so) or the profile's period has passed.
pub fn widening_lapsed(
    rules: &Zones,
    widened_on: jiff::civil::Date,
    source_found_on: Option<jiff::civil::Date>,
    today: jiff::civil::Date,
) -> bool {
    let w = &rules.widening;
    let found = w.lapse_when_source_found.unwrap_or(true) && source_found_on.is_some_and(|d| d <= today);
    let expired = w.lapse_days.is_some_and(|n| lifecycle::add_days(widened_on, n as i64) <= today);
    found || expired
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainbreak_core::profile::Profile;

    fn tree() -> AreaTree {
        AreaTree::new(
            &["district", "subdistrict", "community", "compound", "building"],
            [
                ("D1", "district", None),
                ("S1", "subdistrict", Some("D1")),
                ("M1", "community", Some("S1")),
                ("K1", "compound", Some("M1")),
                ("K2", "compound", Some("M1")),
                ("B1", "building", Some("K1")),
                ("B2", "building", Some("K1")),
                ("B3", "building", Some("K2")),
            ],
        )
        .unwrap()
    }

    fn case(id: &str, home: &str, source_known: bool) -> CaseFacts {
        CaseFacts {
            case_id: id.into(),
            residence: Some(home.into()),
            units: vec!["L9".into()],
            stayed: vec!["L1".into(), "L9".into()],
            source_known,
        }
    }

    fn find(d: &Designation, t: Target) -> &Proposal {
        d.proposals.iter().find(|p| p.target == t).unwrap_or_else(|| panic!("{t:?} in {d:?}"))
    }

    #[test]
    fn the_tree_refuses_bad_areas() {
        let levels = ["district", "building"];
        assert!(matches!(AreaTree::new(&levels, [("X", "planet", None)]), Err(ZoneError::UnknownLevel { .. })));
        assert!(matches!(AreaTree::new(&levels, [("B", "building", Some("D"))]), Err(ZoneError::UnknownParent { .. })));
        assert!(matches!(
            AreaTree::new(&levels, [("D", "district", Some("B")), ("B", "building", Some("D"))]),
            Err(ZoneError::ParentNotCoarser { .. })
        ));
        assert!(matches!(
            AreaTree::new(&levels, [("D", "district", None), ("D", "district", None)]),
            Err(ZoneError::Duplicate { .. })
        ));
        let t = tree();
        assert_eq!(t.ancestor_at("B1", "compound"), Some("K1"));
        assert_eq!(t.ancestor_at("B1", "building"), Some("B1"));
        assert_eq!(t.ancestor_at("K1", "building"), None);
        assert_eq!(t.ancestor_at("B3", "district"), Some("D1"));
    }

    #[test]
    fn ninth_edition_high_compound_medium_places_low_county_and_widening() {
        let rules = Profile::builtin("cn-2022-9th").unwrap().zones;
        let d = designate(&rules, &tree(), &[case("C1", "B1", false), case("C2", "B3", true)]).unwrap();
        // High: the residence compounds; the unit proposed for a person to judge ("frequent").
        let k1 = find(&d, Target::Area("K1".into()));
        assert_eq!((k1.level, k1.widening), (ZoneLevel::High, false));
        assert_eq!(k1.reasons, vec![Reason { case_id: "C1".into(), why: Why::Residence, from: "B1".into() }]);
        assert_eq!(find(&d, Target::Area("K2".into())).level, ZoneLevel::High);
        let unit = find(&d, Target::Place("L9".into()));
        assert_eq!((unit.level, unit.needs_confirmation), (ZoneLevel::High, true));
        // Medium: the other places stayed at (the unit stays high).
        assert_eq!(find(&d, Target::Place("L1".into())).level, ZoneLevel::Medium);
        // Low: the county.
        let county = find(&d, Target::Area("D1".into()));
        assert_eq!(county.level, ZoneLevel::Low);
        assert_eq!(county.reasons.len(), 2);
        // C1's source is unknown: its compound widens to the community, once, for confirmation;
        // C2's is known: K2 does not widen.
        let m1 = find(&d, Target::Area("M1".into()));
        assert_eq!((m1.level, m1.widening, m1.needs_confirmation), (ZoneLevel::High, true, true));
        assert_eq!(m1.reasons, vec![Reason { case_id: "C1".into(), why: Why::UnknownSource, from: "K1".into() }]);
        assert!(d.undecided.is_empty());
        // Never above the cap (community): a community-level high zone would not widen further.
        assert!(d.proposals.iter().all(|p| p.target != Target::Area("S1".into())));
    }

    #[test]
    fn twenty_measures_high_by_building_and_unit_no_medium_no_widening() {
        let rules = Profile::builtin("cn-2022-20-measures").unwrap().zones;
        let d = designate(&rules, &tree(), &[case("C1", "B1", false)]).unwrap();
        let levels: Vec<(Target, ZoneLevel)> = d.proposals.iter().map(|p| (p.target.clone(), p.level)).collect();
        assert_eq!(
            levels,
            vec![
                (Target::Area("B1".into()), ZoneLevel::High),
                (Target::Area("D1".into()), ZoneLevel::Low),
                (Target::Place("L9".into()), ZoneLevel::High),
            ]
        );
    }

    #[test]
    fn what_the_data_cannot_draw_is_named() {
        let rules = Profile::builtin("cn-2022-9th").unwrap().zones;
        let mut c = case("C1", "B1", true);
        c.residence = None;
        let d = designate(&rules, &tree(), &[c]).unwrap();
        assert!(d.undecided.iter().any(|(id, why)| id == "C1" && why.contains("no residence")), "{d:?}");
        // The places are still drawn.
        assert_eq!(find(&d, Target::Place("L1".into())).level, ZoneLevel::Medium);
    }

    #[test]
    fn a_widening_lapses_when_the_source_is_found_or_its_period_passes() {
        let mut rules = Profile::builtin("cn-2022-9th").unwrap().zones;
        let day = |d: i8| jiff::civil::date(2022, 4, d);
        assert!(!widening_lapsed(&rules, day(1), None, day(20)));
        assert!(!widening_lapsed(&rules, day(1), Some(day(5)), day(4)));
        assert!(widening_lapsed(&rules, day(1), Some(day(5)), day(5)));
        rules.widening.lapse_days = Some(7);
        assert!(!widening_lapsed(&rules, day(1), None, day(7)));
        assert!(widening_lapsed(&rules, day(1), None, day(8)));
    }
}
