//! Areas as a GeoJSON FeatureCollection: each Feature's `properties` hold `id`, `name`, `level`
//! and `parent` (absent or null at the top), its `geometry` the area's outline.

use chainbreak_core::model::Area;
use chainbreak_core::{ErrorCode, Location};
use geojson::{Feature, FeatureCollection, GeoJson, JsonObject, JsonValue};

use crate::reader::FormatError;

/// Reads every area of a GeoJSON document (a FeatureCollection, or a single Feature); the
/// first bad feature is an error.
pub fn read_areas(text: &str, file: &str) -> Result<Vec<Area>, FormatError> {
    read_area_features(text, file)?.into_iter().collect()
}

/// Reads a GeoJSON document of areas feature by feature: an error for the document as a whole
/// (not GeoJSON), else one result per feature, so that bad features can be skipped.
pub fn read_area_features(text: &str, file: &str) -> Result<Vec<Result<Area, FormatError>>, FormatError> {
    let gj: GeoJson = text.parse().map_err(|e: geojson::Error| {
        FormatError::new(ErrorCode::InputMalformed, Location::file(file), format!("not GeoJSON: {e}"))
    })?;
    let features = match gj {
        GeoJson::FeatureCollection(fc) => fc.features,
        GeoJson::Feature(f) => vec![f],
        GeoJson::Geometry(_) => {
            return Err(FormatError::new(
                ErrorCode::InputMalformed,
                Location::file(file),
                "expected a FeatureCollection of areas, found a bare Geometry",
            ));
        }
    };
    Ok(features.into_iter().enumerate().map(|(i, f)| area_of(f, i, file)).collect())
}

fn area_of(f: Feature, i: usize, file: &str) -> Result<Area, FormatError> {
    let at = |field: &str| Location::file(file).with_json_path(format!("$.features[{i}].properties.{field}"));
    let props = f.properties.unwrap_or_default();
    let text = |field: &str, required: bool| -> Result<Option<String>, FormatError> {
        match props.get(field) {
            Some(JsonValue::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(JsonValue::Number(n)) => Ok(Some(n.to_string())),
            None | Some(JsonValue::Null) if !required => Ok(None),
            None | Some(JsonValue::Null) => {
                Err(FormatError::new(ErrorCode::InputMissingField, at(field), format!("missing field `{field}`")))
            }
            Some(other) => Err(FormatError::new(
                ErrorCode::InputInvalidField,
                at(field),
                format!("`{field}` must be a non-empty string, found {other}"),
            )),
        }
    };
    for key in props.keys() {
        if !["id", "name", "level", "parent"].contains(&key.as_str()) {
            return Err(FormatError::new(
                ErrorCode::InputUnknownField,
                at(key),
                format!("unknown property `{key}`; an area has id, name, level, parent"),
            ));
        }
    }
    let id = text("id", true)?.expect("required");
    Ok(Area {
        name: text("name", false)?.unwrap_or_else(|| id.clone()),
        level: text("level", true)?.expect("required"),
        parent: text("parent", false)?,
        geometry: f.geometry,
        id,
    })
}

/// Writes areas as a FeatureCollection.
pub fn write_areas(areas: &[Area]) -> String {
    let features = areas
        .iter()
        .map(|a| {
            let mut props = JsonObject::new();
            props.insert("id".into(), a.id.clone().into());
            props.insert("name".into(), a.name.clone().into());
            props.insert("level".into(), a.level.clone().into());
            props.insert("parent".into(), a.parent.clone().map(JsonValue::String).unwrap_or(JsonValue::Null));
            Feature {
                bbox: None,
                geometry: a.geometry.clone(),
                id: None,
                properties: Some(props),
                foreign_members: None,
            }
        })
        .collect();
    GeoJson::FeatureCollection(FeatureCollection { bbox: None, features, foreign_members: None }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"id":"D1","name":"Hongshan","level":"district","parent":null},"geometry":null},
      {"type":"Feature","properties":{"id":"B1","name":"Building 1","level":"building","parent":"D1"},
       "geometry":{"type":"Polygon","coordinates":[[[114.3,30.5],[114.31,30.5],[114.31,30.51],[114.3,30.5]]]}}]}"#;

    #[test]
    fn areas_round_trip() {
        let areas = read_areas(DOC, "a.geojson").unwrap();
        assert_eq!(areas.len(), 2);
        assert_eq!(areas[1].parent.as_deref(), Some("D1"));
        assert!(areas[1].geometry.is_some());
        assert_eq!(read_areas(&write_areas(&areas), "b").unwrap(), areas);
    }

    #[test]
    fn errors_carry_json_paths() {
        let bad = DOC.replace(r#""level":"building","#, "");
        let e = read_areas(&bad, "a.geojson").unwrap_err();
        assert_eq!(e.code, ErrorCode::InputMissingField);
        assert_eq!(e.location.json_path.as_deref(), Some("$.features[1].properties.level"));
        let e = read_areas("{", "a.geojson").unwrap_err();
        assert_eq!(e.code, ErrorCode::InputMalformed);
    }
}
