//! Risk zones proposed from the store's cases (issue 8): the facts the zone engine needs,
//! gathered from cases, persons, places, visits and areas, and its proposals with their
//! reasons, as JSON or as GeoJSON (area polygons, place points). A first, read-only step:
//! nothing is recorded, confirmed or lifted yet.

use std::collections::{BTreeMap, BTreeSet};

use chainbreak_core::model::PlaceKind;
use chainbreak_zones::{AreaTree, CaseFacts, Designation, Target, designate};
use serde::Serialize;

use crate::{AppError, Deployment};

/// The proposals for a set of cases, and the cases that could not be considered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZonePlan {
    pub profile: String,
    #[serde(flatten)]
    pub designation: Designation,
    /// (case id, why it was left out).
    pub skipped: Vec<(String, String)>,
}

/// Proposes zones for `case_ids` by the deployment's profile: each case's residence (its
/// residence place's area), its units (the places it is on the staff of) and the places it
/// stayed at from the start of its infectious window (the profile's look-back) to its
/// report; its source is known when it is linked to an infector case or imported.
pub fn propose(dep: &Deployment, case_ids: &[String]) -> Result<ZonePlan, AppError> {
    let meta = dep.store.meta()?;
    let mut ids = case_ids.to_vec();
    ids.sort();
    ids.dedup();
    let mut areas: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    let mut kinds: BTreeMap<String, Option<PlaceKind>> = BTreeMap::new();
    let mut facts = Vec::new();
    let mut skipped = Vec::new();
    for id in ids {
        let entries =
            match crate::trace::case_index(&*dep.store, &dep.profile, &dep.calendar, std::slice::from_ref(&id)) {
                Ok(e) => e,
                Err(e @ (AppError::NotFound(_) | AppError::InvalidArgument { .. })) => {
                    skipped.push((id, e.to_string()));
                    continue;
                }
                Err(e) => return Err(e),
            };
        let case = dep.store.case(&id)?.ok_or_else(|| AppError::NotFound(format!("case `{id}` not found")))?;
        let from = entries.iter().map(|e| e.from).min().unwrap_or(case.reported_at);
        let person = dep.store.person(&case.person_id)?;
        let home = match person.and_then(|p| p.residence) {
            Some(place) => dep.store.place(&place)?.and_then(|p| p.area),
            None => None,
        };
        // The residence's area and its ancestors.
        let mut next = home.clone();
        while let Some(a) = next.take() {
            if areas.contains_key(&a) {
                break;
            }
            let area = dep.store.area(&a)?.ok_or_else(|| AppError::NotFound(format!("area `{a}` not found")))?;
            next = area.parent.clone();
            areas.insert(a, (area.level, area.parent));
        }
        let mut stayed = BTreeSet::new();
        for v in dep.store.visits_of_person(&case.person_id, from, case.reported_at)? {
            if !kinds.contains_key(&v.place_id) {
                let kind = dep.store.place(&v.place_id)?.map(|p| p.kind);
                kinds.insert(v.place_id.clone(), kind);
            }
            if kinds[&v.place_id].is_some_and(|k| k != PlaceKind::Residence) {
                stayed.insert(v.place_id);
            }
        }
        facts.push(CaseFacts {
            case_id: id,
            residence: home,
            units: dep.store.units_of(&case.person_id)?.into_iter().map(|s| s.place_id).collect(),
            stayed: stayed.into_iter().collect(),
            source_known: case.infector_case_id.is_some() || case.imported,
        });
    }
    let levels: Vec<&str> = meta.area_levels.iter().map(String::as_str).collect();
    let tree = AreaTree::new(
        &levels,
        areas.iter().map(|(id, (level, parent))| (id.as_str(), level.as_str(), parent.as_deref())),
    )
    .map_err(|e| AppError::InvalidArgument { argument: "areas", message: e.to_string() })?;
    let designation = designate(&dep.profile.zones, &tree, &facts)
        .map_err(|e| AppError::InvalidArgument { argument: "profile", message: e.to_string() })?;
    Ok(ZonePlan { profile: dep.profile.name.clone(), designation, skipped })
}

/// The proposals as a GeoJSON FeatureCollection: an area's polygon from its geometry, a
/// place's point from its coordinates; targets without either have no geometry (`null`).
pub fn to_geojson(dep: &Deployment, plan: &ZonePlan) -> Result<geojson::FeatureCollection, AppError> {
    let mut features = Vec::new();
    for p in &plan.designation.proposals {
        let geometry = match &p.target {
            Target::Area(id) => dep.store.area(id)?.and_then(|a| a.geometry),
            Target::Place(id) => dep.store.place(id)?.and_then(|pl| match (pl.lon, pl.lat) {
                (Some(lon), Some(lat)) => Some(geojson::Geometry::new(geojson::Value::Point(vec![lon, lat]))),
                _ => None,
            }),
        };
        let mut properties = match serde_json::to_value(p).expect("a proposal serialises") {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("a proposal is an object"),
        };
        properties.remove("target");
        let (kind, id) = match &p.target {
            Target::Area(id) => ("area", id),
            Target::Place(id) => ("place", id),
        };
        properties.insert("target_kind".into(), kind.into());
        properties.insert("target_id".into(), id.clone().into());
        features.push(geojson::Feature {
            bbox: None,
            geometry,
            id: Some(geojson::feature::Id::String(format!("{kind}:{id}"))),
            properties: Some(properties),
            foreign_members: None,
        });
    }
    Ok(geojson::FeatureCollection { bbox: None, features, foreign_members: None })
}
