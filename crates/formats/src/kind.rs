//! The kinds of import file and their encodings.

use std::path::Path;

use chainbreak_core::vocabulary;

vocabulary!(
    /// Every kind of file chainbreak imports, in a workable import order (referenced before
    /// referencing).
    Kind {
        Areas = "areas", Units = "units", Places = "places", Persons = "persons",
        Identifiers = "identifiers", Staff = "staff", Groups = "groups", Memberships = "memberships",
        Visits = "visits", Trips = "trips", Passengers = "passengers", Pings = "pings",
        Cases = "cases", LabTests = "lab_tests", Arrivals = "arrivals", GoodsBatches = "goods_batches",
        GoodsHops = "goods_hops", Sentinel = "sentinel"
    }
);

vocabulary!(
    /// How a file is encoded.
    Format { Csv = "csv", JsonLines = "jsonl", GeoJson = "geojson" }
);

impl Format {
    /// The format a file's name implies: `.csv`, `.jsonl` / `.ndjson`, `.geojson` / `.json`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".csv") {
            Some(Format::Csv)
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            Some(Format::JsonLines)
        } else if name.ends_with(".geojson") || name.ends_with(".json") {
            Some(Format::GeoJson)
        } else {
            None
        }
    }
}

impl Kind {
    /// Whether files of this kind may be in `format`.
    pub fn accepts(self, format: Format) -> bool {
        match format {
            Format::Csv | Format::JsonLines => true,
            Format::GeoJson => self == Kind::Areas,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_extensions() {
        assert_eq!(Format::from_path(Path::new("a/visits.CSV")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("v.ndjson")), Some(Format::JsonLines));
        assert_eq!(Format::from_path(Path::new("areas.geojson")), Some(Format::GeoJson));
        assert_eq!(Format::from_path(Path::new("visits.txt")), None);
        assert!(Kind::Areas.accepts(Format::GeoJson) && !Kind::Visits.accepts(Format::GeoJson));
    }
}
