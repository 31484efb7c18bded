//! The domain model: people, places and goods, and what links them.
//!
//! Every entity here is a flat record with an external, pseudonymous string id, so that the
//! same struct is a row of an import file (see `chainbreak-formats` and FORMATS.md), a row of
//! the store, and the value an engine works on. Stores map string ids to compact integer keys
//! internally; engines work on those keys.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::time::{opt_ts, ts};

/// Declares a closed vocabulary: a serde enum in snake_case with `as_str` / `parse` / `ALL`,
/// so that files, the store and the API all spell each value the same way.
#[macro_export]
macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $text)] $variant),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The value's spelling in files, the store and the API.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text),+ } }
            /// Parses the spelling produced by [`Self::as_str`].
            pub fn parse(s: &str) -> Option<Self> { match s { $($text => Some($name::$variant),)+ _ => None } }
            /// The accepted spellings, for error messages.
            pub fn expected() -> String {
                [$($text),+].join(", ")
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl std::str::FromStr for $name {
            type Err = $crate::error::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s).ok_or_else(|| $crate::error::UnknownValue { value: s.to_string(), expected: Self::expected() })
            }
        }
    };
}

// ---------------------------------------------------------------- people

vocabulary!(
    /// Sex as recorded.
    Sex { Female = "female", Male = "male", Other = "other", Unknown = "unknown" }
);

/// A person, known only by a pseudonymous id. Names and identifying numbers live apart, in
/// [`Identifier`] records that only roles entitled to them can read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub id: String,
    /// The residence building, a place of kind `residence`.
    #[serde(default)]
    pub residence: Option<String>,
    #[serde(default)]
    pub birth_year: Option<i32>,
    #[serde(default)]
    pub sex: Option<Sex>,
    /// Free text, or one of the high-risk occupations the profiles name
    /// (`cold_chain_worker`, `port_worker`, `courier`, `health_worker`, `quarantine_staff`, `teacher`...).
    #[serde(default)]
    pub occupation: Option<String>,
}

vocabulary!(
    /// What an identifier is.
    IdentifierKind {
        IdDocument = "id_document", Phone = "phone", Passport = "passport",
        Name = "name", Address = "address", Other = "other"
    }
);

/// Personal data: one identifying value of a person (ID-document number, phone, passport,
/// name...). Kept in its own table, apart from the pseudonymous model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifier {
    pub person_id: String,
    pub kind: IdentifierKind,
    pub value: String,
}

/// A recorded merge of a duplicate person into a survivor (reversible: see `unmerged_at`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonMerge {
    pub id: i64,
    pub survivor: String,
    pub duplicate: String,
    pub reason: String,
    pub actor: String,
    #[serde(with = "ts")]
    pub merged_at: Timestamp,
    #[serde(default, with = "opt_ts")]
    pub unmerged_at: Option<Timestamp>,
}

// ---------------------------------------------------------------- areas and places

/// An administrative or physical area. Levels are data: the deployment names them
/// (default province → city → district → subdistrict → community → compound → building).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    pub id: String,
    pub name: String,
    pub level: String,
    #[serde(default)]
    pub parent: Option<String>,
    /// GeoJSON geometry (Polygon or MultiPolygon), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry: Option<geojson::Geometry>,
}

/// The default area levels, top first.
pub const DEFAULT_AREA_LEVELS: &[&str] =
    &["province", "city", "district", "subdistrict", "community", "compound", "building"];

vocabulary!(
    /// What a place is. Profiles decide which kinds are close-contact settings.
    PlaceKind {
        Residence = "residence", Workplace = "workplace", School = "school", Hospital = "hospital",
        FeverClinic = "fever_clinic", Pharmacy = "pharmacy", Market = "market", Mall = "mall",
        Restaurant = "restaurant", TransitStation = "transit_station", Airport = "airport",
        TrainStation = "train_station", ColdChainWarehouse = "cold_chain_warehouse",
        QuarantineFacility = "quarantine_facility", Other = "other"
    }
);

/// A venue: anywhere people check in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub kind: PlaceKind,
    /// A key place (机场、火车站、学校、医院...) with its own testing regime.
    #[serde(default)]
    pub key_place: bool,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    /// The finest area the place lies in (usually a building or compound).
    #[serde(default)]
    pub area: Option<String>,
}

/// A person on a place's staff list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffMember {
    pub place_id: String,
    pub person_id: String,
    #[serde(default)]
    pub role: Option<String>,
}

// ---------------------------------------------------------------- movements

vocabulary!(
    /// Where a visit record came from.
    VisitSource { VenueCode = "venue_code", Ticket = "ticket", Interview = "interview", Ping = "ping" }
);

fn venue_code() -> VisitSource {
    VisitSource::VenueCode
}

impl VisitSource {
    /// A compact code for storage.
    pub fn code(self) -> u8 {
        self as u8
    }
    /// The inverse of [`Self::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(code as usize).copied()
    }
}

/// A person at a place from `t_in` until `t_out` (unknown when the person did not check out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visit {
    pub person_id: String,
    pub place_id: String,
    #[serde(with = "ts")]
    pub t_in: Timestamp,
    #[serde(default, with = "opt_ts")]
    pub t_out: Option<Timestamp>,
    #[serde(default = "venue_code")]
    pub source: VisitSource,
}

vocabulary!(
    /// A trip's mode of transport.
    TripMode { Flight = "flight", Train = "train", Bus = "bus", Ship = "ship" }
);

/// A scheduled journey (flight, train, bus or ship) whose passengers can be traced by seat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trip {
    pub id: String,
    pub mode: TripMode,
    /// Flight or train number, bus line...
    pub number: String,
    #[serde(with = "ts")]
    pub departure: Timestamp,
    #[serde(default, with = "opt_ts")]
    pub arrival: Option<Timestamp>,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub destination: Option<String>,
    /// A sealed train car or bus (the whole car is a close-contact setting).
    #[serde(default)]
    pub sealed: bool,
}

vocabulary!(
    /// A person's role on a trip.
    TripRole { Passenger = "passenger", Crew = "crew" }
);

/// A person on a trip, with their seat where known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripPassenger {
    pub trip_id: String,
    pub person_id: String,
    pub role: TripRole,
    /// Train carriage (or ship cabin) number.
    #[serde(default)]
    pub carriage: Option<u32>,
    /// Seat row (plane, train bay, bus).
    #[serde(default)]
    pub seat_row: Option<u32>,
    #[serde(default)]
    pub seat: Option<String>,
}

vocabulary!(
    /// What kind of group.
    GroupKind { Household = "household", Class = "class", Team = "team", Gathering = "gathering" }
);

/// A household, class, team or gathering; gatherings have a place and a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: String,
    pub kind: GroupKind,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub place_id: Option<String>,
    #[serde(default, with = "opt_ts")]
    pub start: Option<Timestamp>,
    #[serde(default, with = "opt_ts")]
    pub end: Option<Timestamp>,
}

/// A person's membership of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    pub group_id: String,
    pub person_id: String,
    #[serde(default)]
    pub role: Option<String>,
}

/// A location ping (retained only for the profile's retention period).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationPing {
    pub person_id: String,
    #[serde(with = "ts")]
    pub t: Timestamp,
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub accuracy_m: Option<f64>,
}

/// An arrival from abroad or from a risk area (closed-loop management of arrivals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    pub person_id: String,
    /// Country (ISO code) or area id of origin.
    pub origin: String,
    pub origin_risk: OriginRisk,
    #[serde(with = "ts")]
    pub left_origin_at: Timestamp,
    #[serde(with = "ts")]
    pub arrived_at: Timestamp,
    #[serde(default)]
    pub trip_id: Option<String>,
    /// Where the person is going to stay (a place id).
    #[serde(default)]
    pub destination: Option<String>,
}

vocabulary!(
    /// Risk of where an arrival comes from.
    OriginRisk { Abroad = "abroad", High = "high", Medium = "medium", Low = "low" }
);

// ---------------------------------------------------------------- cases and tests

vocabulary!(
    /// A case's classification.
    Classification {
        Suspected = "suspected", Asymptomatic = "asymptomatic", Confirmed = "confirmed", Excluded = "excluded"
    }
);

vocabulary!(
    /// How a case was found.
    DetectionRoute { InQuarantine = "in_quarantine", Screening = "screening", Community = "community", Arrival = "arrival" }
);

vocabulary!(
    /// Clinical severity.
    Severity { Asymptomatic = "asymptomatic", Mild = "mild", Moderate = "moderate", Severe = "severe", Critical = "critical" }
);

vocabulary!(
    /// Clinical outcome so far.
    Outcome { Ongoing = "ongoing", Recovered = "recovered", Deceased = "deceased" }
);

/// A case: a person with a classification, its dates and its links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub person_id: String,
    pub classification: Classification,
    /// Symptom onset, a calendar day in the deployment's zone (none when asymptomatic).
    #[serde(default)]
    pub onset: Option<Date>,
    #[serde(default, with = "opt_ts")]
    pub sampled_at: Option<Timestamp>,
    #[serde(with = "ts")]
    pub reported_at: Timestamp,
    #[serde(default)]
    pub imported: bool,
    #[serde(default)]
    pub detection: Option<DetectionRoute>,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Vaccine doses received.
    #[serde(default)]
    pub vaccine_doses: Option<u8>,
    /// The case this one was infected by, when known.
    #[serde(default)]
    pub infector_case_id: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
}

/// One step of a case's classification history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationChange {
    pub case_id: String,
    #[serde(default)]
    pub from: Option<Classification>,
    pub to: Classification,
    #[serde(with = "ts")]
    pub at: Timestamp,
    pub seq: u64,
}

vocabulary!(
    /// What a lab test was taken from.
    SubjectKind { Person = "person", Goods = "goods", Environment = "environment" }
);

vocabulary!(
    /// Test method.
    TestMethod { Pcr = "pcr", Antigen = "antigen", Antibody = "antibody", Sequencing = "sequencing" }
);

vocabulary!(
    /// Test result.
    TestResult { Positive = "positive", Negative = "negative", Inconclusive = "inconclusive", Pending = "pending" }
);

/// A lab test of a person, a goods batch or an environment sample; single or pooled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabTest {
    pub id: String,
    pub subject_kind: SubjectKind,
    /// Person id, goods batch id, or environment sample description / place id.
    pub subject_id: String,
    /// The pool this sample was tested in (pooled testing, 混采); empty for a single test.
    #[serde(default)]
    pub pool_id: Option<String>,
    pub method: TestMethod,
    pub result: TestResult,
    #[serde(default)]
    pub ct: Option<f64>,
    #[serde(with = "ts")]
    pub sampled_at: Timestamp,
    #[serde(default, with = "opt_ts")]
    pub reported_at: Option<Timestamp>,
    /// The testing lab or sampling site (a place id).
    #[serde(default)]
    pub lab_id: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
}

// ---------------------------------------------------------------- goods

/// A batch of imported cold-chain food or other high-risk goods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoodsBatch {
    pub id: String,
    pub product: String,
    pub origin_country: String,
    #[serde(default)]
    pub plant: Option<String>,
    #[serde(default)]
    pub port: Option<String>,
    #[serde(default)]
    pub entry_date: Option<Date>,
    #[serde(default)]
    pub inspection_cert: Option<String>,
    #[serde(default)]
    pub test_cert: Option<String>,
    #[serde(default)]
    pub disinfection_cert: Option<String>,
    #[serde(default)]
    pub trace_code: Option<String>,
    /// Batch this one was repacked from (split or combined: one row per parent in `goods_hops`
    /// with `kind = repack` for combinations).
    #[serde(default)]
    pub parent_batch_id: Option<String>,
}

vocabulary!(
    /// A movement of goods, or a repacking into another batch.
    HopKind { Transfer = "transfer", Repack = "repack" }
);

/// A distribution hop of a batch between holders (places), or a repack into a derived batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoodsHop {
    pub batch_id: String,
    pub kind: HopKind,
    #[serde(default)]
    pub from_place: Option<String>,
    #[serde(default)]
    pub to_place: Option<String>,
    /// For a repack: the derived batch.
    #[serde(default)]
    pub to_batch_id: Option<String>,
    pub date: Date,
    #[serde(default)]
    pub quantity: Option<f64>,
}

// ---------------------------------------------------------------- sentinels

vocabulary!(
    /// A sentinel feed.
    SentinelFeed {
        FeverClinic = "fever_clinic", Pharmacy = "pharmacy", Screening = "screening",
        QuarantineSite = "quarantine_site", Hospital = "hospital", ColdChain = "cold_chain",
        Environment = "environment", Genomic = "genomic"
    }
);

/// A daily aggregate report from a sentinel point (a fever clinic's visits, a pharmacy's
/// real-name sales of one watched drug class, a screening site's tests...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelRecord {
    pub place_id: String,
    #[serde(default)]
    pub area_id: Option<String>,
    pub feed: SentinelFeed,
    /// Calendar day reported.
    pub date: Date,
    /// Drug class for pharmacies (`antipyretic`, `cough`, `antiviral`, `antibiotic`), test kind...
    #[serde(default)]
    pub category: Option<String>,
    pub count: u32,
    #[serde(default)]
    pub positives: Option<u32>,
}

// ---------------------------------------------------------------- organisation and response

/// An organisation that owns work (community station, subdistrict office, CDC, command centre).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub parent: Option<String>,
    /// The area the unit is responsible for.
    #[serde(default)]
    pub area: Option<String>,
}

vocabulary!(
    /// The kind of measure a person is under.
    MeasureKind {
        CentralQuarantine = "central_quarantine", HomeQuarantine = "home_quarantine",
        HomeMonitoring = "home_monitoring", Isolation = "isolation", TestsOnly = "tests_only"
    }
);

vocabulary!(
    /// States of a measure episode (closed-loop management).
    EpisodeState {
        Proposed = "proposed", Confirmed = "confirmed", Notified = "notified", Transferred = "transferred",
        InMeasure = "in_measure", Extended = "extended", Released = "released", ConvertedToCase = "converted_to_case",
        HandedOver = "handed_over", Unreachable = "unreachable", Refused = "refused", Lost = "lost", Closed = "closed"
    }
);

/// A person's measure episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureEpisode {
    pub id: String,
    pub person_id: String,
    pub kind: MeasureKind,
    pub state: EpisodeState,
    /// Why: evidence references (case ids, zone ids, arrival...).
    pub reasons: Vec<String>,
    #[serde(default)]
    pub owner_unit: Option<String>,
    #[serde(with = "ts")]
    pub opened_at: Timestamp,
    #[serde(default, with = "opt_ts")]
    pub deadline: Option<Timestamp>,
}

vocabulary!(
    /// Risk level of a zone.
    ZoneLevel { High = "high", Medium = "medium", Low = "low" }
);

vocabulary!(
    /// Triage state of an alert.
    AlertState { New = "new", Acknowledged = "acknowledged", Investigating = "investigating", Closed = "closed" }
);

/// An alert raised by a trigger or an aberration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub kind: String,
    pub state: AlertState,
    pub summary: String,
    #[serde(default)]
    pub owner_unit: Option<String>,
    #[serde(with = "ts")]
    pub raised_at: Timestamp,
}

vocabulary!(
    /// The four-party responsibility (四方责任) a task falls under.
    Responsibility { Territorial = "territorial", Departmental = "departmental", Unit = "unit", Individual = "individual" }
);

/// A piece of work with an owner and a deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub kind: String,
    pub owner_unit: String,
    pub responsibility: Responsibility,
    #[serde(with = "ts")]
    pub due: Timestamp,
    pub done: bool,
    pub subject: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_round_trips_and_codes_are_dense() {
        for k in PlaceKind::ALL {
            assert_eq!(PlaceKind::parse(k.as_str()), Some(*k));
            assert_eq!(serde_json::to_string(k).unwrap(), format!("\"{}\"", k.as_str()));
        }
        for s in VisitSource::ALL {
            assert_eq!(VisitSource::from_code(s.code()), Some(*s));
        }
        let err = "hotel".parse::<PlaceKind>().unwrap_err();
        assert!(err.to_string().contains("hotel") && err.to_string().contains("fever_clinic"));
    }

    #[test]
    fn visit_accepts_unix_seconds_and_rfc3339() {
        let v: Visit = serde_json::from_str(
            r#"{"person_id":"P1","place_id":"L1","t_in":1700000000,"t_out":"2023-11-14T22:13:20Z"}"#,
        )
        .unwrap();
        assert_eq!(v.t_in.as_second(), 1_700_000_000);
        assert_eq!(v.t_out.unwrap().as_second(), 1_700_000_000);
        assert_eq!(v.source, VisitSource::VenueCode);
        let err =
            serde_json::from_str::<Visit>(r#"{"person_id":"P1","place_id":"L1","t_in":"yesterday"}"#).unwrap_err();
        assert!(err.to_string().contains("yesterday"), "{err}");
    }
}
