//! Policy profiles: the rules of a public-health policy as data.
//!
//! A profile is a versioned TOML file (see `profiles/README.md` for every field, its unit and
//! the source of its number). Every number the engines apply — look-back windows, contact
//! settings, quarantine lengths and test days, zone lifting, screening rounds, response-clock
//! limits, cold-chain suspensions, retention — is a field here, never a constant in code.
//! Three profiles are built in ([`Profile::builtin_names`]); a deployment may load its own file
//! ([`Profile::load`]).
//!
//! Loading is strict: unknown fields are refused, and every error names the dotted path of the
//! offending field (`close_contact.flight.rows_either_side`) and its line. After parsing, a
//! semantic validation ([`Profile::validate`]) checks what types cannot (test days inside the
//! measure, consistent zone transitions, no duplicate place kinds...).
//!
//! A rule the data cannot decide (a distance, "frequent", "same room") is never a number the
//! engine guesses with: it carries `needs_confirmation = true` and a `condition` text, and the
//! engine proposes it for a person to confirm.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::model::{EpisodeState, GroupKind, MeasureKind, OriginRisk, PlaceKind, ZoneLevel};
use crate::vocabulary;

/// The profile format this chainbreak reads and writes.
pub const FORMAT_VERSION: u32 = 1;

// ---------------------------------------------------------------- the profile

/// A policy profile. Each section is a public struct the engines read directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Must be [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Short stable name (`cn-2022-9th`): lowercase letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Human title.
    pub title: String,
    /// The document the numbers come from.
    pub source: Source,
    /// How far back a case is considered infectious.
    pub infectious_period: InfectiousPeriod,
    /// Which co-presences make a close contact.
    pub close_contact: CloseContact,
    /// The measure a close contact is placed under.
    pub close_contact_measure: MeasurePlan,
    /// Persons who shared a public place with a case without meeting a close-contact rule.
    pub co_exposed: CoExposed,
    /// Grid co-location (时空伴随) from location data.
    pub grid: Grid,
    /// Contacts of close contacts (密接的密接).
    pub secondary_contact: SecondaryContact,
    /// Risk zones: levels, how they are drawn and lifted, widening for unknown sources.
    pub zones: Zones,
    /// Area-wide screening rounds.
    pub screening: Screening,
    /// Measures for arrivals, by risk of the origin.
    pub arrivals: Arrivals,
    /// The response clock: deadlines between events of a case or a contact.
    pub response_clock: ResponseClock,
    /// Closed-loop management: how long an episode may stay in each state, and escalation.
    pub closed_loop: ClosedLoop,
    /// Suspension of imports from foreign plants with positive samples.
    pub cold_chain: ColdChain,
    /// Retention of personal location data.
    pub retention: Retention,
    /// How long a visit without a check-out is taken to have lasted.
    pub open_visits: OpenVisits,
    /// Sentinel feeds: silent sentinels, aberration detection, pooled retests, Rt.
    pub surveillance: Surveillance,
    /// Service requests of residents under a zone or home measure (封控区服务保障): deadlines
    /// by kind and priority, escalation. Absent: requests cannot be filed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_requests: Option<ServiceRequests>,
}

/// The citation of a profile's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Full citation: issuer, title, document number, date.
    pub citation: String,
    /// Document number (文号), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Date of issue, `YYYY-MM-DD` or `YYYY-MM`.
    pub issued: String,
    /// How the numbers were taken from the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

vocabulary!(
    /// Until when a case counts as infectious.
    InfectiousUntil { Isolation = "isolation" }
);

/// The infectious look-back window of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfectiousPeriod {
    /// Days before symptom onset (symptomatic cases).
    pub days_before_onset: u32,
    /// Days before the first positive sample (asymptomatic cases).
    pub days_before_sampling: u32,
    /// The end of the window.
    pub until: InfectiousUntil,
}

// ---------------------------------------------------------------- contacts

/// A place kind that is a contact setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceSetting {
    pub kind: PlaceKind,
    /// Minimum overlap with the case, in minutes (0 = any overlap).
    pub min_overlap_minutes: u32,
    /// The data cannot decide the rule (same room, shared meal...): propose for a person to
    /// confirm `condition`.
    pub needs_confirmation: bool,
    /// What a person confirms; required when `needs_confirmation`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
}

/// A group kind that is a contact setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSetting {
    pub kind: GroupKind,
    /// The data cannot decide the rule: propose for a person to confirm `condition`.
    pub needs_confirmation: bool,
    /// What a person confirms; required when `needs_confirmation`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
}

vocabulary!(
    /// Unit of a distance.
    DistanceUnit { Metre = "m", Foot = "ft" }
);

vocabulary!(
    /// Where a proximity rule applies.
    ProximityScope { Vehicles = "vehicles", Everywhere = "everywhere" }
);

/// "Within this distance of the case": never decidable from check-ins, seats or pings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proximity {
    pub max_distance: f64,
    pub unit: DistanceUnit,
    pub scope: ProximityScope,
    /// Must be `true`: a distance is a proposal for a person to confirm.
    pub needs_confirmation: bool,
}

/// Plane seat rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlightRule {
    /// The case's row plus this many rows in front and behind.
    pub rows_either_side: u32,
    /// The crew serving those rows are close contacts.
    pub crew_serving_rows: bool,
    /// The data does not show which rows a crew member served.
    pub crew_needs_confirmation: bool,
}

/// Train seat rule (`seat_row` is the bay, `carriage` the car).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainRule {
    /// Sealed train: everyone in the case's carriage.
    pub sealed_whole_carriage: bool,
    /// Non-sealed train: the case's bay plus this many bays either side.
    pub unsealed_bays_either_side: u32,
}

/// Bus rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusRule {
    /// Sealed bus: everyone on board. (Unsealed buses: the proximity rule.)
    pub sealed_everyone: bool,
}

/// Ship rule (`carriage` is the cabin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipRule {
    /// Everyone in the case's cabin.
    pub same_cabin: bool,
}

/// Close-contact settings. A venue or group not listed is not a close-contact setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseContact {
    /// Overlaps with the same case are summed over this many hours (absent: each overlap
    /// counts alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative_window_hours: Option<u32>,
    #[serde(default)]
    pub places: Vec<PlaceSetting>,
    #[serde(default)]
    pub groups: Vec<GroupSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proximity: Option<Proximity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flight: Option<FlightRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<BusRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship: Option<ShipRule>,
}

/// Co-exposed risk persons (其他风险人员 / 一般接触者).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoExposed {
    pub enabled: bool,
    /// Required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<MeasureKind>,
    /// Co-exposure settings; required (non-empty) when enabled.
    #[serde(default)]
    pub places: Vec<PlaceSetting>,
}

/// Grid co-location (时空伴随): sharing a location cell with a case. Never a close contact
/// by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    pub enabled: bool,
    /// Side of a grid cell, in metres. The remaining fields are required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_size_m: Option<u32>,
    /// Co-located for strictly more than this many minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_than_minutes: Option<u32>,
    /// Looking back this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_days: Option<u32>,
    /// A person's consecutive pings in one cell at most this many minutes apart count as one
    /// continuous stay there (chainbreak's working assumption about ping data, not a rule of
    /// the source document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ping_gap_minutes: Option<u32>,
    /// Whether grid co-location alone makes a close contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_contact_by_itself: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<MeasurePlan>,
}

vocabulary!(
    /// An event in a close contact's exposure history.
    LinkedEvent { FirstExposure = "first_exposure", Isolation = "isolation" }
);

/// Secondary contacts: persons exposed to a close contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondaryContact {
    pub enabled: bool,
    /// Exposure to the close contact counts from this event of the close contact (the
    /// remaining fields are required when enabled)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_from: Option<LinkedEvent>,
    /// ...until this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_until: Option<LinkedEvent>,
    /// Released at the end of the measure only if the linked close contact's first this-many
    /// tests were negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_needs_linked_negative_tests: Option<u32>,
    /// Becomes a close contact if one of those tests was positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_positive_makes_close_contact: Option<bool>,
    #[serde(default)]
    pub places: Vec<PlaceSetting>,
    #[serde(default)]
    pub groups: Vec<GroupSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<MeasurePlan>,
}

// ---------------------------------------------------------------- measures

vocabulary!(
    /// What day 0 of a measure is (a local calendar date in the deployment's zone).
    DayZero {
        LastExposure = "last_exposure", LeftOrigin = "left_origin", Arrival = "arrival",
        Notified = "notified", Diagnosis = "diagnosis"
    }
);

/// A measure: consecutive phases from day 0, optionally with early release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurePlan {
    pub day_zero: DayZero,
    /// At least one. The first phase runs days 1..=days after day 0, the next one follows.
    pub phases: Vec<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_release: Option<EarlyRelease>,
}

impl MeasurePlan {
    /// Days from day 0 to the end of the last phase.
    pub fn total_days(&self) -> u32 {
        self.phases.iter().map(|p| p.days).sum()
    }
}

/// One phase of a measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub kind: MeasureKind,
    pub days: u32,
    /// Test days, numbered 1..=days from the start of this phase, strictly increasing.
    pub test_days: Vec<u32>,
    /// Tests on free days within the phase ("2 tests in 3 days, 24 h apart").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestSeries>,
}

/// `count` tests anywhere within a phase, at least `min_gap_hours` apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSeries {
    pub count: u32,
    pub min_gap_hours: u32,
}

/// Release before the end of the measure ("7 days with a negative test on day 5 or later").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyRelease {
    /// Released at the end of this day (counted from day 0)...
    pub release_day: u32,
    /// ...given a negative test taken on this day or later.
    pub negative_test_from_day: u32,
}

/// Measures for arrivals by origin risk; an absent origin has no measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrivals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abroad: Option<MeasurePlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<MeasurePlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<MeasurePlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<MeasurePlan>,
}

impl Arrivals {
    /// The measure for an arrival from an origin of this risk, if any.
    pub fn for_origin(&self, risk: OriginRisk) -> Option<&MeasurePlan> {
        match risk {
            OriginRisk::Abroad => self.abroad.as_ref(),
            OriginRisk::High => self.high.as_ref(),
            OriginRisk::Medium => self.medium.as_ref(),
            OriginRisk::Low => self.low.as_ref(),
        }
    }
}

// ---------------------------------------------------------------- zones and screening

/// How zones of one level are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneLevelRule {
    pub level: ZoneLevel,
    /// Area levels (`compound`, `building`, `district`...) or `place` (the venues themselves).
    pub drawn_at: Vec<String>,
    /// The data cannot decide the rule ("frequent"): propose for a person to confirm.
    pub needs_confirmation: bool,
    /// What the zone covers, in words.
    pub condition: String,
    /// The measure its residents are under while the zone is in force at this level (proposed
    /// for each resident when a commander confirms the zone; ends when the zone is lowered
    /// below it or lifted). Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_measure: Option<MeasureKind>,
}

vocabulary!(
    /// How a zone reached the level a transition starts from.
    ZoneEntry { Any = "any", Designated = "designated", Downgraded = "downgraded" }
);

/// A zone is lowered after clean days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneTransition {
    pub from: ZoneLevel,
    pub to: ZoneLevel,
    /// Applies to zones designated at `from`, downgraded to `from`, or any.
    pub entered: ZoneEntry,
    /// Consecutive days without a new infection.
    pub clean_days: u32,
    /// An all-negative screening round on this day (1..=clean_days) is also required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_round_on_day: Option<u32>,
    /// A new case restarts the count.
    pub restart_on_new_case: bool,
}

/// Automatic widening of zones around cases of unknown source (先严先扩).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Widening {
    pub enabled: bool,
    /// Widen at most to this area level. Required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_level: Option<String>,
    /// The widening lapses once the source is found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lapse_when_source_found: Option<bool>,
    /// The widening lapses after this many days (absent: no fixed period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lapse_days: Option<u32>,
    /// Widened zones are proposals for a commander to confirm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_confirmation: Option<bool>,
}

/// Risk zones. Empty `levels`: the policy has no zones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zones {
    /// Whether a person may enlarge a zone beyond what its rule draws.
    pub manual_enlargement_allowed: bool,
    /// The levels used, one entry each.
    pub levels: Vec<ZoneLevelRule>,
    pub transitions: Vec<ZoneTransition>,
    pub widening: Widening,
}

/// Area-wide screening rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Screening {
    pub enabled: bool,
    /// Days between rounds. The remaining fields are required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_days: Option<u32>,
    /// Stop after this many consecutive rounds without a community case...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_after_clean_rounds: Option<u32>,
    /// ...then one final round this many days later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_round_after_days: Option<u32>,
    /// An area's round is completed within this many hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_completion_hours: Option<u32>,
}

// ---------------------------------------------------------------- response clock

vocabulary!(
    /// Whose clock an item is.
    ClockSubject { Case = "case", Contact = "contact" }
);

vocabulary!(
    /// An event the response clock measures between.
    ClockEvent {
        PositiveResult = "positive_result", CaseReported = "case_reported",
        CaseTransferred = "case_transferred", TrailSignedOff = "trail_signed_off",
        ContactsDetermined = "contacts_determined", ContactDetermined = "contact_determined",
        ContactInMeasure = "contact_in_measure"
    }
);

impl ClockEvent {
    /// Whether the event belongs to one contact rather than to the case.
    pub fn is_contact_event(self) -> bool {
        matches!(self, ClockEvent::ContactDetermined | ClockEvent::ContactInMeasure)
    }
}

/// One deadline: `stop` within `limit_hours` of `start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockItem {
    pub name: String,
    pub subject: ClockSubject,
    pub start: ClockEvent,
    pub stop: ClockEvent,
    pub limit_hours: u32,
}

/// The response clock. Empty: the policy sets no deadlines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseClock {
    pub items: Vec<ClockItem>,
}

// ---------------------------------------------------------------- closed loop

vocabulary!(
    /// Where a state's deadline counts from.
    DeadlineFrom { Entered = "entered", Confirmed = "confirmed" }
);

/// How long an episode may stay in one open state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateDeadline {
    pub state: EpisodeState,
    /// Only for episodes of this measure kind (`isolation`: a case's own episode); absent: for
    /// every kind without an entry of its own for the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MeasureKind>,
    pub hours: u32,
    /// From entering the state, or from the episode's confirmation (a clock that keeps
    /// running through notification and transfer).
    pub from: DeadlineFrom,
    /// Where the number comes from.
    pub source: String,
}

/// Closed-loop management (闭环管理). An episode in its measure is due at the measure's end;
/// the other open states have a deadline each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedLoop {
    /// One for each of `proposed`, `confirmed`, `notified`, `transferred`, `unreachable`,
    /// `refused` and `handed_over`.
    pub deadlines: Vec<StateDeadline>,
    /// An overdue task moves one unit up the hierarchy each time this many hours pass.
    pub escalate_every_hours: u32,
    /// Members of one household (of one risk group) may share a quarantine room.
    pub household_may_share: bool,
    /// A case's own episode: isolation (or treatment) until discharge.
    pub isolation: Isolation,
}

/// A case's isolation (隔离治疗): open-ended, it ends on a discharge that a clinician records,
/// not after a number of days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Isolation {
    /// Cases are transferred to a facility (a designated hospital, a makeshift hospital); false:
    /// isolation may start at home.
    pub transfer_required: bool,
    /// While in isolation, a review (a test) is due this often, counted from entering it or from
    /// the last test taken, and not before the earliest discharge.
    pub review_every_hours: u32,
    pub discharge: Discharge,
}

/// What discharge from isolation needs. The engine checks the days and the tests; the
/// clinician attests `criteria` (temperature, symptoms), which the engine cannot see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discharge {
    /// What the clinician attests (the discharge event carries their statement).
    pub criteria: String,
    /// Not before the end of this day after day 0 (the local date of the case's onset or first
    /// positive sample); 0: no least stay.
    pub min_days: u32,
    /// The last this many tests negative (0: none needed)...
    pub negative_tests: u32,
    /// ...taken at least this many hours apart.
    pub min_gap_hours: u32,
    /// Where the numbers come from.
    pub source: String,
}

impl ClosedLoop {
    /// The states that have a deadline of their own.
    pub const TIMED: [EpisodeState; 7] = [
        EpisodeState::Proposed,
        EpisodeState::Confirmed,
        EpisodeState::Notified,
        EpisodeState::Transferred,
        EpisodeState::Unreachable,
        EpisodeState::Refused,
        EpisodeState::HandedOver,
    ];

    /// The deadline of a state for every kind without one of its own.
    pub fn deadline(&self, state: EpisodeState) -> Option<&StateDeadline> {
        self.deadlines.iter().find(|d| d.state == state && d.kind.is_none())
    }

    /// The deadline of a state for an episode of measure `kind`: the kind's own, or the general.
    pub fn deadline_for(&self, kind: MeasureKind, state: EpisodeState) -> Option<&StateDeadline> {
        self.deadlines.iter().find(|d| d.state == state && d.kind == Some(kind)).or_else(|| self.deadline(state))
    }
}

// ---------------------------------------------------------------- goods and retention

/// Suspension after the `positives`-th positive at the same foreign plant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlantSuspension {
    pub positives: u32,
    pub suspend_weeks: u32,
}

/// Cold-chain rules. Entries are for the 1st, 2nd... positive in order; the last entry
/// applies to every later positive. Empty: no suspensions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColdChain {
    pub plant_suspensions: Vec<PlantSuspension>,
    /// The workers of the places a positive batch reached (staff, and persons with visits there
    /// in the exposure window): absent, none are proposed a measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<ColdChainWorkers>,
}

/// The co-exposed persons of a positive goods or environment sample: the staff of each place
/// the goods reached (or the sampled place), and the persons with visits there while the goods
/// were there, no earlier than `lookback_days` before the sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColdChainWorkers {
    /// How far before the sample an exposure counts, in days.
    pub lookback_days: u32,
    /// The measure they are proposed (day 0 from the last exposure).
    pub measure: MeasurePlan,
    /// Where the numbers come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

vocabulary!(
    /// What a resident under a zone or home measure asks for.
    RequestKind {
        Medicine = "medicine", Dialysis = "dialysis", MedicalCare = "medical_care", Childbirth = "childbirth",
        Food = "food", Other = "other"
    }
);

vocabulary!(
    /// How urgent a service request is.
    RequestPriority { Urgent = "urgent", High = "high", Normal = "normal" }
);

/// Service requests in controlled zones (封控区服务保障: hard control, soft service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRequests {
    /// A request past its deadline goes one unit up the hierarchy every this many minutes.
    pub escalate_every_minutes: u32,
    /// One entry per kind, every kind listed.
    pub kinds: Vec<RequestKindRule>,
    /// Where the numbers come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A kind's default priority and the minutes to answer at each priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestKindRule {
    pub kind: RequestKind,
    pub default_priority: RequestPriority,
    pub urgent_minutes: u32,
    pub high_minutes: u32,
    pub normal_minutes: u32,
}

impl ServiceRequests {
    /// The rule of a kind (validation makes sure every kind has one).
    pub fn rule(&self, kind: RequestKind) -> Option<&RequestKindRule> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    /// Minutes to answer a request of `kind` at `priority`.
    pub fn deadline_minutes(&self, kind: RequestKind, priority: RequestPriority) -> Option<u32> {
        self.rule(kind).map(|r| match priority {
            RequestPriority::Urgent => r.urgent_minutes,
            RequestPriority::High => r.high_minutes,
            RequestPriority::Normal => r.normal_minutes,
        })
    }
}

impl ColdChain {
    /// Weeks of suspension after the `nth` positive (1-based) at a plant.
    pub fn suspension_weeks(&self, nth: u32) -> Option<u32> {
        self.plant_suspensions.iter().rev().find(|s| s.positives <= nth).map(|s| s.suspend_weeks)
    }
}

/// How long a visit without a check-out is taken to have lasted, by place kind. Venue-code
/// feeds often lack the check-out; the trace engine fills it in with these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenVisits {
    /// For kinds not listed.
    pub default_dwell_minutes: u32,
    #[serde(default)]
    pub places: Vec<PlaceDwell>,
}

/// The assumed stay at one kind of place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceDwell {
    pub kind: PlaceKind,
    pub dwell_minutes: u32,
}

impl OpenVisits {
    /// The assumed stay at a place of `kind`, in minutes.
    pub fn dwell_minutes(&self, kind: PlaceKind) -> u32 {
        self.places.iter().find(|p| p.kind == kind).map_or(self.default_dwell_minutes, |p| p.dwell_minutes)
    }
}

/// Retention of personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Location data (pings, grid cells) is purged after this many days.
    pub location_days: u32,
    /// Venue check-ins (visits) are purged this many days after they ended.
    pub visit_days: u32,
}

// ---------------------------------------------------------------- surveillance

vocabulary!(
    /// The aberration-detection method run on daily series (`surveillance::earsC`).
    DailyMethod { EarsC1 = "ears_c1", EarsC2 = "ears_c2", EarsC3 = "ears_c3" }
);

vocabulary!(
    /// The aberration-detection method run on weekly series (`surveillance::farringtonFlexible`):
    /// the 1996 settings, or Noufaily et al. 2013 (`noPeriods = 10`, `pastWeeksNotIncluded = 26`,
    /// `weightsThreshold = 2.58`).
    WeeklyMethod { Farrington = "farrington", FarringtonNoufaily = "farrington_noufaily" }
);

vocabulary!(
    /// Farrington's threshold (`thresholdMethod`).
    ThresholdMethod { Delta = "delta", NbPlugin = "nb_plugin", Muan = "muan" }
);

/// Daily series: EARS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyDetection {
    pub method: DailyMethod,
    /// Reference days (`baseline`, at least 3).
    pub baseline: u32,
    /// `alpha`, in (0, 1).
    pub alpha: f64,
    /// `minSigma`, at least 0.
    pub min_sigma: f64,
}

/// Weekly series: Farrington.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyDetection {
    pub method: WeeklyMethod,
    /// Years back (`b`).
    pub b: u32,
    /// Half-window of weeks around the same week of earlier years (`w`).
    pub w: u32,
    /// `alpha`, in (0, 1).
    pub alpha: f64,
    pub threshold_method: ThresholdMethod,
}

/// Sentinel feeds (issue 7): when a sentinel is silent, how series are watched, how soon the
/// members of a positive pool are retested, and the serial interval Rt is estimated with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Surveillance {
    /// A sentinel point's feed without a report for more than this many days is silent.
    pub silent_after_days: u32,
    /// Each detection run queues the alarms of the periods that start within this many days.
    pub review_window_days: u32,
    /// The members of a positive pool are to be sampled singly within this many hours of the
    /// pool's result.
    pub pooled_retest_hours: u32,
    /// The serial interval (gamma, days) for Rt: mean (more than 1) and standard deviation.
    pub serial_interval_mean_days: f64,
    pub serial_interval_sd_days: f64,
    /// Rt's sliding window, in days (at least 2).
    pub rt_window_days: u32,
    pub daily: DailyDetection,
    pub weekly: WeeklyDetection,
}

// ---------------------------------------------------------------- errors

/// Why a profile could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("no built-in profile named `{name}` and no file at that path (built-in: {})", Profile::builtin_names().join(", "))]
    NotFound { name: String },
    #[error("cannot read profile {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `path` is the dotted field path (`close_contact.places[2].kind`), empty for the whole
    /// document; `line` is 1-based.
    #[error("profile {origin}: {}{}", describe(path, message), line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Invalid { origin: String, path: String, line: Option<usize>, message: String },
}

fn describe(path: &str, message: &str) -> String {
    if path.is_empty() || message.starts_with("unknown field ") {
        message.to_string()
    } else {
        format!("field {path}: {message}")
    }
}

impl ProfileError {
    /// The stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProfileError::NotFound { .. } => ErrorCode::ProfileNotFound,
            ProfileError::Io { .. } => ErrorCode::Io,
            ProfileError::Invalid { .. } => ErrorCode::ProfileInvalid,
        }
    }
}

/// A semantic problem, before the origin and line are known.
struct Issue {
    path: String,
    message: String,
}

fn issue<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, Issue> {
    Err(Issue { path: path.into(), message: message.into() })
}

// ---------------------------------------------------------------- loading

const BUILTINS: &[(&str, &str)] = &[
    ("cn-2022-9th", include_str!("../../../profiles/cn-2022-9th.toml")),
    ("cn-2022-20-measures", include_str!("../../../profiles/cn-2022-20-measures.toml")),
    ("cdc-2020-12", include_str!("../../../profiles/cdc-2020-12.toml")),
];

const BUILTIN_NAMES: &[&str] = &["cn-2022-9th", "cn-2022-20-measures", "cdc-2020-12"];

impl Profile {
    /// Parses and validates a profile. `origin` names the text in errors (a file name).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let invalid = |path: String, span: Option<Range<usize>>, message: String| {
            let line = span.or_else(|| span_of(text, &path)).map(|s| line_of(text, s.start));
            ProfileError::Invalid { origin: origin.to_string(), path, line, message }
        };
        let de = toml::de::Deserializer::parse(text)
            .map_err(|e| invalid(String::new(), e.span(), format!("invalid TOML: {}", e.message().trim_end())))?;
        let profile: Profile = serde_path_to_error::deserialize(de).map_err(|e| {
            let (path, message) = field_error(&e.path().to_string(), e.inner().message());
            invalid(path, e.inner().span(), message)
        })?;
        profile.check().map_err(|i| invalid(i.path, None, i.message))?;
        Ok(profile)
    }

    /// A built-in profile by name (see [`Profile::builtin_names`]).
    pub fn builtin(name: &str) -> Option<Profile> {
        let (file, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
        let origin = format!("{file}.toml");
        Some(Profile::from_toml_str(text, &origin).expect("built-in profiles are valid"))
    }

    /// The names of the built-in profiles.
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// A built-in profile by name, else a profile file at that path.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        if let Some(p) = Profile::builtin(name_or_path) {
            return Ok(p);
        }
        let path = Path::new(name_or_path);
        match std::fs::read_to_string(path) {
            Ok(text) => Profile::from_toml_str(&text, name_or_path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ProfileError::NotFound { name: name_or_path.to_string() })
            }
            Err(source) => Err(ProfileError::Io { path: path.to_path_buf(), source }),
        }
    }

    /// The profile as TOML text that [`Profile::from_toml_str`] reads back to an equal profile
    /// (keys sorted; comments of the original file are not kept).
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).expect("a profile serialises to TOML")
    }

    /// Semantic validation (what types cannot check). `from_toml_str` runs it; call it again
    /// after building or changing a profile in code.
    pub fn validate(&self) -> Result<(), ProfileError> {
        self.check().map_err(|i| ProfileError::Invalid {
            origin: self.name.clone(),
            path: i.path,
            line: None,
            message: i.message,
        })
    }

    fn check(&self) -> Result<(), Issue> {
        if self.format_version != FORMAT_VERSION {
            return issue(
                "format_version",
                format!("unsupported format_version {}; this chainbreak reads {FORMAT_VERSION}", self.format_version),
            );
        }
        if self.name.is_empty()
            || !self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        {
            return issue("name", "must be non-empty: lowercase letters, digits, `-`, `_`, `.`");
        }
        non_empty("title", &self.title)?;
        non_empty("source.citation", &self.source.citation)?;
        check_issued(&self.source.issued)?;
        self.check_close_contact()?;
        check_plan("close_contact_measure", &self.close_contact_measure)?;
        self.check_co_exposed()?;
        self.check_grid()?;
        self.check_secondary()?;
        self.check_zones()?;
        self.check_screening()?;
        self.check_closed_loop()?;
        let a = &self.arrivals;
        for (key, plan) in [("abroad", &a.abroad), ("high", &a.high), ("medium", &a.medium), ("low", &a.low)] {
            if let Some(plan) = plan {
                check_plan(&format!("arrivals.{key}"), plan)?;
            }
        }
        self.check_clock()?;
        positive("open_visits.default_dwell_minutes", self.open_visits.default_dwell_minutes)?;
        for (i, d) in self.open_visits.places.iter().enumerate() {
            positive(&format!("open_visits.places[{i}].dwell_minutes"), d.dwell_minutes)?;
            if self.open_visits.places[..i].iter().any(|e| e.kind == d.kind) {
                return issue(format!("open_visits.places[{i}].kind"), format!("`{}` is listed twice", d.kind));
            }
        }
        for (i, s) in self.cold_chain.plant_suspensions.iter().enumerate() {
            let p = format!("cold_chain.plant_suspensions[{i}]");
            if s.positives as usize != i + 1 {
                return issue(
                    format!("{p}.positives"),
                    format!(
                        "entry {} must be for positive number {} (entries are the 1st, 2nd... positive in order; the last applies to every later one)",
                        i + 1,
                        i + 1
                    ),
                );
            }
            positive(&format!("{p}.suspend_weeks"), s.suspend_weeks)?;
        }
        if let Some(w) = &self.cold_chain.workers {
            positive("cold_chain.workers.lookback_days", w.lookback_days)?;
            check_plan("cold_chain.workers.measure", &w.measure)?;
        }
        positive("retention.location_days", self.retention.location_days)?;
        positive("retention.visit_days", self.retention.visit_days)?;
        self.check_service_requests()?;
        self.check_surveillance()
    }

    fn check_service_requests(&self) -> Result<(), Issue> {
        let Some(r) = &self.service_requests else { return Ok(()) };
        positive("service_requests.escalate_every_minutes", r.escalate_every_minutes)?;
        for (i, k) in r.kinds.iter().enumerate() {
            let p = format!("service_requests.kinds[{i}]");
            if let Some(j) = r.kinds[..i].iter().position(|o| o.kind == k.kind) {
                return issue(format!("{p}.kind"), format!("`{}` is listed twice (first at kinds[{j}])", k.kind));
            }
            positive(&format!("{p}.urgent_minutes"), k.urgent_minutes)?;
            positive(&format!("{p}.high_minutes"), k.high_minutes)?;
            positive(&format!("{p}.normal_minutes"), k.normal_minutes)?;
            if !(k.urgent_minutes <= k.high_minutes && k.high_minutes <= k.normal_minutes) {
                return issue(
                    format!("{p}.high_minutes"),
                    "a more urgent priority must not have a later deadline (urgent ≤ high ≤ normal)",
                );
            }
        }
        if let Some(missing) = RequestKind::ALL.iter().find(|k| r.rule(**k).is_none()) {
            return issue("service_requests.kinds", format!("kind `{missing}` has no entry (every kind needs one)"));
        }
        Ok(())
    }

    fn check_surveillance(&self) -> Result<(), Issue> {
        let s = &self.surveillance;
        positive("surveillance.silent_after_days", s.silent_after_days)?;
        positive("surveillance.review_window_days", s.review_window_days)?;
        positive("surveillance.pooled_retest_hours", s.pooled_retest_hours)?;
        if !(s.serial_interval_mean_days > 1.0 && s.serial_interval_mean_days.is_finite()) {
            return issue("surveillance.serial_interval_mean_days", "must be more than 1 (EpiEstim's rule)");
        }
        if !(s.serial_interval_sd_days > 0.0 && s.serial_interval_sd_days.is_finite()) {
            return issue("surveillance.serial_interval_sd_days", "must be more than 0");
        }
        if s.rt_window_days < 2 {
            return issue("surveillance.rt_window_days", "must be at least 2");
        }
        if s.daily.baseline < 3 {
            return issue("surveillance.daily.baseline", "must be at least 3");
        }
        for (path, alpha) in
            [("surveillance.daily.alpha", s.daily.alpha), ("surveillance.weekly.alpha", s.weekly.alpha)]
        {
            if !(alpha > 0.0 && alpha < 1.0) {
                return issue(path, "must be in (0, 1)");
            }
        }
        if !(s.daily.min_sigma >= 0.0 && s.daily.min_sigma.is_finite()) {
            return issue("surveillance.daily.min_sigma", "must be at least 0");
        }
        positive("surveillance.weekly.b", s.weekly.b)
    }

    fn check_close_contact(&self) -> Result<(), Issue> {
        let cc = &self.close_contact;
        if let Some(h) = cc.cumulative_window_hours {
            positive("close_contact.cumulative_window_hours", h)?;
            if let Some(first) = cc.places.first()
                && let Some(i) = cc.places.iter().position(|p| p.min_overlap_minutes != first.min_overlap_minutes)
            {
                return issue(
                    format!("close_contact.places[{i}].min_overlap_minutes"),
                    "with cumulative_window_hours every close-contact place has the same least overlap: \
                     the cumulative total",
                );
            }
        }
        if cc.places.is_empty() && cc.groups.is_empty() {
            return issue("close_contact", "needs at least one place or group setting");
        }
        check_places("close_contact.places", &cc.places)?;
        check_groups("close_contact.groups", &cc.groups)?;
        if let Some(p) = &cc.proximity {
            if !(p.max_distance.is_finite() && p.max_distance > 0.0) {
                return issue("close_contact.proximity.max_distance", "must be a positive number");
            }
            if !p.needs_confirmation {
                return issue(
                    "close_contact.proximity.needs_confirmation",
                    "must be true: check-ins, seats and pings cannot show a distance, so a person confirms it",
                );
            }
        }
        Ok(())
    }

    fn check_co_exposed(&self) -> Result<(), Issue> {
        let c = &self.co_exposed;
        if c.enabled {
            required("co_exposed.measure", &c.measure)?;
            if c.places.is_empty() {
                return issue("co_exposed.places", "needs at least one place kind when enabled");
            }
        }
        check_places("co_exposed.places", &c.places)
    }

    fn check_closed_loop(&self) -> Result<(), Issue> {
        let c = &self.closed_loop;
        positive("closed_loop.escalate_every_hours", c.escalate_every_hours)?;
        for (i, d) in c.deadlines.iter().enumerate() {
            let path = format!("closed_loop.deadlines[{i}]");
            if !ClosedLoop::TIMED.contains(&d.state) {
                return issue(
                    format!("{path}.state"),
                    format!(
                        "`{}` has no deadline of its own (in a measure: the measure's end; final states: none)",
                        d.state.as_str()
                    ),
                );
            }
            if c.deadlines[..i].iter().any(|e| e.state == d.state && e.kind == d.kind) {
                let of = d.kind.map(|k| format!(" for kind `{k}`")).unwrap_or_default();
                return issue(format!("{path}.state"), format!("`{}` is given twice{of}", d.state.as_str()));
            }
            positive(&format!("{path}.hours"), d.hours)?;
            non_empty(&format!("{path}.source"), &d.source)?;
        }
        if let Some(missing) = ClosedLoop::TIMED.iter().find(|s| c.deadline(**s).is_none()) {
            return issue(
                "closed_loop.deadlines",
                format!("needs a deadline without `kind` for `{}`", missing.as_str()),
            );
        }
        let iso = &c.isolation;
        positive("closed_loop.isolation.review_every_hours", iso.review_every_hours)?;
        let d = &iso.discharge;
        non_empty("closed_loop.isolation.discharge.criteria", &d.criteria)?;
        non_empty("closed_loop.isolation.discharge.source", &d.source)?;
        if d.negative_tests > 1 {
            positive("closed_loop.isolation.discharge.min_gap_hours", d.min_gap_hours)?;
        }
        Ok(())
    }

    fn check_grid(&self) -> Result<(), Issue> {
        let g = &self.grid;
        if !g.enabled {
            return Ok(());
        }
        positive("grid.cell_size_m", *required("grid.cell_size_m", &g.cell_size_m)?)?;
        required("grid.more_than_minutes", &g.more_than_minutes)?;
        positive("grid.within_days", *required("grid.within_days", &g.within_days)?)?;
        positive("grid.max_ping_gap_minutes", *required("grid.max_ping_gap_minutes", &g.max_ping_gap_minutes)?)?;
        required("grid.close_contact_by_itself", &g.close_contact_by_itself)?;
        check_plan("grid.measure", required("grid.measure", &g.measure)?)
    }

    fn check_secondary(&self) -> Result<(), Issue> {
        let s = &self.secondary_contact;
        check_places("secondary_contact.places", &s.places)?;
        check_groups("secondary_contact.groups", &s.groups)?;
        if !s.enabled {
            return Ok(());
        }
        let from = required("secondary_contact.window_from", &s.window_from)?;
        let until = required("secondary_contact.window_until", &s.window_until)?;
        if from == until {
            return issue("secondary_contact.window_until", "must differ from window_from");
        }
        required("secondary_contact.release_needs_linked_negative_tests", &s.release_needs_linked_negative_tests)?;
        required("secondary_contact.linked_positive_makes_close_contact", &s.linked_positive_makes_close_contact)?;
        if s.places.is_empty() && s.groups.is_empty() {
            return issue("secondary_contact", "needs at least one place or group setting when enabled");
        }
        check_plan("secondary_contact.measure", required("secondary_contact.measure", &s.measure)?)
    }

    fn check_zones(&self) -> Result<(), Issue> {
        let z = &self.zones;
        for (i, l) in z.levels.iter().enumerate() {
            let p = format!("zones.levels[{i}]");
            if let Some(j) = z.levels[..i].iter().position(|o| o.level == l.level) {
                return issue(
                    format!("{p}.level"),
                    format!("level `{}` is listed twice (first at zones.levels[{j}])", l.level),
                );
            }
            if l.drawn_at.is_empty() {
                return issue(format!("{p}.drawn_at"), "needs at least one area level or `place`");
            }
            for (j, d) in l.drawn_at.iter().enumerate() {
                non_empty(&format!("{p}.drawn_at[{j}]"), d)?;
            }
            non_empty(&format!("{p}.condition"), &l.condition)?;
            if l.resident_measure == Some(MeasureKind::Isolation) {
                return issue(format!("{p}.resident_measure"), "isolation is for cases, not for a zone's residents");
            }
        }
        let used = |level: ZoneLevel| z.levels.iter().any(|l| l.level == level);
        for (i, t) in z.transitions.iter().enumerate() {
            let p = format!("zones.transitions[{i}]");
            for (key, level) in [("from", t.from), ("to", t.to)] {
                if !used(level) {
                    return issue(format!("{p}.{key}"), format!("level `{level}` is not in zones.levels"));
                }
            }
            if t.to <= t.from {
                return issue(
                    format!("{p}.to"),
                    format!("a transition lowers the level; `{}` is not lower than `{}`", t.to, t.from),
                );
            }
            positive(&format!("{p}.clean_days"), t.clean_days)?;
            let outside = |d: &u32| !(1..=t.clean_days).contains(d);
            if let Some(d) = t.negative_round_on_day.filter(outside) {
                return issue(
                    format!("{p}.negative_round_on_day"),
                    format!("day {d} is outside the clean days 1..={}", t.clean_days),
                );
            }
            if t.entered == ZoneEntry::Downgraded && !z.transitions.iter().any(|o| o.to == t.from) {
                return issue(
                    format!("{p}.entered"),
                    format!("no transition leads down to `{}`, so no zone is downgraded to it", t.from),
                );
            }
            if let Some(j) = z.transitions[..i].iter().position(|o| {
                o.from == t.from
                    && (o.entered == t.entered || o.entered == ZoneEntry::Any || t.entered == ZoneEntry::Any)
            }) {
                return issue(
                    format!("{p}.entered"),
                    format!("overlaps zones.transitions[{j}]: two rules lift the same `{}` zones", t.from),
                );
            }
        }
        // Every level but the lowest used must have a way down, for each way a zone enters it.
        let lowest = z.levels.iter().map(|l| l.level).max();
        for (i, l) in z.levels.iter().enumerate() {
            if Some(l.level) == lowest {
                continue;
            }
            let out = |e: ZoneEntry| {
                z.transitions.iter().any(|t| t.from == l.level && (t.entered == e || t.entered == ZoneEntry::Any))
            };
            let downgraded_into = z.transitions.iter().any(|t| t.to == l.level);
            if !out(ZoneEntry::Designated) || (downgraded_into && !out(ZoneEntry::Downgraded)) {
                return issue(
                    format!("zones.levels[{i}].level"),
                    format!("no transition lifts every `{}` zone (designated and downgraded)", l.level),
                );
            }
        }
        let w = &z.widening;
        if w.enabled {
            if z.levels.is_empty() {
                return issue("zones.widening.enabled", "widening needs zone levels");
            }
            non_empty("zones.widening.cap_level", required("zones.widening.cap_level", &w.cap_level)?)?;
            let lapse = required("zones.widening.lapse_when_source_found", &w.lapse_when_source_found)?;
            if !lapse && w.lapse_days.is_none() {
                return issue(
                    "zones.widening.lapse_days",
                    "a widening must lapse: set lapse_days or lapse_when_source_found = true",
                );
            }
            required("zones.widening.needs_confirmation", &w.needs_confirmation)?;
        }
        if let Some(d) = w.lapse_days {
            positive("zones.widening.lapse_days", d)?;
        }
        Ok(())
    }

    fn check_screening(&self) -> Result<(), Issue> {
        let s = &self.screening;
        if !s.enabled {
            return Ok(());
        }
        for (key, value) in [
            ("interval_days", s.interval_days),
            ("stop_after_clean_rounds", s.stop_after_clean_rounds),
            ("final_round_after_days", s.final_round_after_days),
            ("round_completion_hours", s.round_completion_hours),
        ] {
            let p = format!("screening.{key}");
            positive(&p, *required(&p, &value)?)?;
        }
        Ok(())
    }

    fn check_clock(&self) -> Result<(), Issue> {
        let items = &self.response_clock.items;
        for (i, c) in items.iter().enumerate() {
            let p = format!("response_clock.items[{i}]");
            non_empty(&format!("{p}.name"), &c.name)?;
            if let Some(j) = items[..i].iter().position(|o| o.name == c.name) {
                return issue(
                    format!("{p}.name"),
                    format!("name `{}` is used twice (first at response_clock.items[{j}])", c.name),
                );
            }
            if c.start == c.stop {
                return issue(format!("{p}.stop"), "must differ from start");
            }
            if c.subject == ClockSubject::Case {
                for (key, e) in [("start", c.start), ("stop", c.stop)] {
                    if e.is_contact_event() {
                        return issue(format!("{p}.{key}"), format!("`{e}` is a contact's event; subject is `case`"));
                    }
                }
            } else if !c.stop.is_contact_event() {
                return issue(format!("{p}.stop"), format!("`{}` is a case's event; subject is `contact`", c.stop));
            }
            positive(&format!("{p}.limit_hours"), c.limit_hours)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- validation helpers

fn non_empty(path: &str, value: &str) -> Result<(), Issue> {
    if value.trim().is_empty() { issue(path, "must not be empty") } else { Ok(()) }
}

fn positive(path: &str, value: u32) -> Result<(), Issue> {
    if value == 0 { issue(path, "must be greater than 0") } else { Ok(()) }
}

fn required<'a, T>(path: &str, value: &'a Option<T>) -> Result<&'a T, Issue> {
    match value {
        Some(v) => Ok(v),
        None => issue(path, "required when the section is enabled"),
    }
}

fn check_issued(issued: &str) -> Result<(), Issue> {
    let full = if issued.len() == 7 { format!("{issued}-01") } else { issued.to_string() };
    if full.len() != 10 || full.parse::<jiff::civil::Date>().is_err() {
        return issue("source.issued", format!("`{issued}` is not a date YYYY-MM-DD or YYYY-MM"));
    }
    Ok(())
}

fn check_places(path: &str, places: &[PlaceSetting]) -> Result<(), Issue> {
    for (i, s) in places.iter().enumerate() {
        if let Some(j) = places[..i].iter().position(|o| o.kind == s.kind) {
            return issue(
                format!("{path}[{i}].kind"),
                format!("place kind `{}` is listed twice (first at {path}[{j}])", s.kind),
            );
        }
        if s.needs_confirmation {
            non_empty(&format!("{path}[{i}].condition"), &s.condition)?;
        }
    }
    Ok(())
}

fn check_groups(path: &str, groups: &[GroupSetting]) -> Result<(), Issue> {
    for (i, s) in groups.iter().enumerate() {
        if let Some(j) = groups[..i].iter().position(|o| o.kind == s.kind) {
            return issue(
                format!("{path}[{i}].kind"),
                format!("group kind `{}` is listed twice (first at {path}[{j}])", s.kind),
            );
        }
        if s.needs_confirmation {
            non_empty(&format!("{path}[{i}].condition"), &s.condition)?;
        }
    }
    Ok(())
}

fn check_plan(path: &str, plan: &MeasurePlan) -> Result<(), Issue> {
    if plan.phases.is_empty() {
        return issue(format!("{path}.phases"), "needs at least one phase");
    }
    for (i, ph) in plan.phases.iter().enumerate() {
        let p = format!("{path}.phases[{i}]");
        positive(&format!("{p}.days"), ph.days)?;
        let mut previous = 0;
        for (j, &d) in ph.test_days.iter().enumerate() {
            let pj = format!("{p}.test_days[{j}]");
            if !(1..=ph.days).contains(&d) {
                return issue(
                    pj,
                    format!(
                        "test day {d} is outside the phase's days 1..={} ({} phase of {} days)",
                        ph.days, ph.kind, ph.days
                    ),
                );
            }
            if d <= previous {
                return issue(pj, format!("test days must be strictly increasing ({d} follows {previous})"));
            }
            previous = d;
        }
        if let Some(t) = &ph.tests {
            positive(&format!("{p}.tests.count"), t.count)?;
            let span = u64::from(t.count - 1) * u64::from(t.min_gap_hours);
            if span > u64::from(ph.days) * 24 {
                return issue(
                    format!("{p}.tests"),
                    format!("{} tests {} h apart do not fit in {} days", t.count, t.min_gap_hours, ph.days),
                );
            }
        }
        if ph.kind == MeasureKind::TestsOnly && ph.test_days.is_empty() && ph.tests.is_none() {
            return issue(format!("{p}.test_days"), "a tests_only phase needs test_days or tests");
        }
    }
    if let Some(er) = &plan.early_release {
        let total = plan.total_days();
        let p = format!("{path}.early_release");
        if !(1..total).contains(&er.release_day) {
            return issue(
                format!("{p}.release_day"),
                format!("day {} is not before the end of the {total}-day measure", er.release_day),
            );
        }
        if !(1..=er.release_day).contains(&er.negative_test_from_day) {
            return issue(
                format!("{p}.negative_test_from_day"),
                format!("day {} is outside days 1..={}", er.negative_test_from_day, er.release_day),
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- error locations

/// Turns a serde error at `path` into (dotted field path, message): an unknown or missing
/// field gets its own name appended to the path of its table.
fn field_error(path: &str, message: &str) -> (String, String) {
    let path = if path == "." { "" } else { path };
    // serde_path_to_error already ends the path with an unknown key, not with a missing one.
    let join = |field: &str| match path.rsplit('.').next() {
        _ if path.is_empty() => field.to_string(),
        Some(last) if last == field => path.to_string(),
        _ => format!("{path}.{field}"),
    };
    let quoted = |rest: &str| -> Option<(String, String)> {
        let rest = rest.strip_prefix('`')?;
        let end = rest.find('`')?;
        Some((rest[..end].to_string(), rest[end + 1..].trim_start_matches(',').trim().to_string()))
    };
    if let Some((field, tail)) = message.strip_prefix("unknown field ").and_then(quoted) {
        let full = join(&field);
        let message =
            if tail.is_empty() { format!("unknown field {full}") } else { format!("unknown field {full}; {tail}") };
        return (full, message);
    }
    if let Some((field, _)) = message.strip_prefix("missing field ").and_then(quoted) {
        return (join(&field), "missing required field".to_string());
    }
    (path.to_string(), message.to_string())
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The span of the deepest part of a dotted path (`a.b[2].c`) present in the document: the
/// key of a table entry, or an array element.
fn span_of(text: &str, path: &str) -> Option<Range<usize>> {
    use toml::de::{DeTable, DeValue};
    let root = DeValue::Table(DeTable::parse(text).ok()?.into_inner());
    let mut current = &root;
    let mut found = None;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        let DeValue::Table(table) = current else {
            break;
        };
        let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == key) else {
            break;
        };
        found = Some(k.span());
        current = v.get_ref();
        for index in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
            let (Ok(index), DeValue::Array(items)) = (index.parse::<usize>(), current) else {
                return found;
            };
            let Some(item) = items.get(index) else {
                return found;
            };
            found = Some(item.span());
            current = item.get_ref();
        }
    }
    found
}

// ---------------------------------------------------------------- TOML writing

#[cfg(test)]
mod tests {
    use super::*;

    fn nine() -> Profile {
        Profile::builtin("cn-2022-9th").unwrap()
    }

    fn builtin_text(name: &str) -> &'static str {
        BUILTINS.iter().find(|(n, _)| *n == name).unwrap().1
    }

    /// The 9th-edition text with `from` replaced by `to` (exactly once).
    fn edited(from: &str, to: &str) -> String {
        let text = builtin_text("cn-2022-9th");
        assert_eq!(text.matches(from).count(), 1, "`{from}` must occur once");
        text.replacen(from, to, 1)
    }

    fn invalid(text: &str) -> (String, Option<usize>, String, String) {
        let err = Profile::from_toml_str(text, "test.toml").unwrap_err();
        assert_eq!(err.code(), ErrorCode::ProfileInvalid);
        let shown = err.to_string();
        match err {
            ProfileError::Invalid { path, line, message, origin } => {
                assert_eq!(origin, "test.toml");
                (path, line, message, shown)
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn line_containing(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).expect("needle in text") + 1
    }

    #[test]
    fn builtins_load_validate_and_carry_their_name() {
        assert_eq!(Profile::builtin_names().len(), BUILTINS.len());
        for name in Profile::builtin_names() {
            let p = Profile::builtin(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(p.name, *name);
            assert_eq!(p.format_version, FORMAT_VERSION);
            p.validate().unwrap();
            assert_eq!(Profile::load(name).unwrap(), p);
        }
        assert!(Profile::builtin("cn-2022-10th").is_none());
    }

    #[test]
    fn ninth_edition_numbers_match_the_design() {
        let p = nine();
        assert!(p.source.citation.contains("联防联控机制综发〔2022〕71号"));
        assert_eq!(p.source.issued, "2022-06-28");
        assert_eq!(p.infectious_period.days_before_onset, 4);
        assert_eq!(p.infectious_period.days_before_sampling, 4);
        assert_eq!(p.infectious_period.until, InfectiousUntil::Isolation);

        let cc = &p.close_contact;
        assert_eq!(cc.cumulative_window_hours, None);
        assert_eq!(cc.flight.as_ref().unwrap().rows_either_side, 3);
        assert!(cc.flight.as_ref().unwrap().crew_serving_rows);
        assert!(cc.train.as_ref().unwrap().sealed_whole_carriage);
        assert_eq!(cc.train.as_ref().unwrap().unsealed_bays_either_side, 1);
        assert!(cc.bus.as_ref().unwrap().sealed_everyone);
        assert!(cc.ship.as_ref().unwrap().same_cabin);
        let prox = cc.proximity.as_ref().unwrap();
        assert_eq!((prox.max_distance, prox.unit, prox.scope), (1.0, DistanceUnit::Metre, ProximityScope::Vehicles));
        assert!(prox.needs_confirmation);
        let kinds: Vec<_> = cc.places.iter().map(|s| s.kind).collect();
        for k in
            [PlaceKind::Residence, PlaceKind::Workplace, PlaceKind::School, PlaceKind::Restaurant, PlaceKind::Hospital]
        {
            assert!(kinds.contains(&k), "{k}");
        }
        assert!(cc.groups.iter().any(|g| g.kind == GroupKind::Household && !g.needs_confirmation));

        let m = &p.close_contact_measure;
        assert_eq!(m.day_zero, DayZero::LastExposure);
        assert_eq!(m.phases.len(), 2);
        assert_eq!((m.phases[0].kind, m.phases[0].days), (MeasureKind::CentralQuarantine, 7));
        assert_eq!(m.phases[0].test_days, [1, 2, 3, 5, 7]);
        assert_eq!((m.phases[1].kind, m.phases[1].days), (MeasureKind::HomeMonitoring, 3));
        assert_eq!(m.phases[1].test_days, [3]);
        assert_eq!(m.total_days(), 10);

        assert!(p.co_exposed.enabled);
        assert_eq!(p.co_exposed.measure, Some(MeasureKind::TestsOnly));
        assert!(p.co_exposed.places.iter().any(|s| s.kind == PlaceKind::Mall));
        assert!(p.co_exposed.places.iter().any(|s| s.kind == PlaceKind::Market));

        let g = &p.grid;
        assert!(g.enabled);
        assert_eq!((g.cell_size_m, g.more_than_minutes, g.within_days), (Some(800), Some(10), Some(14)));
        assert_eq!(g.max_ping_gap_minutes, Some(30));
        assert_eq!(g.close_contact_by_itself, Some(false));
        let gm = &g.measure.as_ref().unwrap().phases[0];
        assert_eq!((gm.kind, gm.days), (MeasureKind::TestsOnly, 3));
        assert_eq!(gm.tests, Some(TestSeries { count: 2, min_gap_hours: 24 }));

        let s = &p.secondary_contact;
        assert!(s.enabled);
        assert_eq!((s.window_from, s.window_until), (Some(LinkedEvent::FirstExposure), Some(LinkedEvent::Isolation)));
        assert_eq!(s.release_needs_linked_negative_tests, Some(2));
        assert_eq!(s.linked_positive_makes_close_contact, Some(true));
        let sm = &s.measure.as_ref().unwrap().phases[0];
        assert_eq!((sm.kind, sm.days), (MeasureKind::HomeQuarantine, 7));
        assert_eq!(sm.test_days, [1, 4, 7]);

        let z = &p.zones;
        let levels: Vec<_> = z.levels.iter().map(|l| l.level).collect();
        assert_eq!(levels, [ZoneLevel::High, ZoneLevel::Medium, ZoneLevel::Low]);
        assert!(z.levels[0].needs_confirmation, "\"frequent\" high-risk places are confirmed by a person");
        let t = |from, entered| z.transitions.iter().find(|t| t.from == from && t.entered == entered).unwrap();
        let hm = t(ZoneLevel::High, ZoneEntry::Any);
        assert_eq!((hm.to, hm.clean_days, hm.negative_round_on_day), (ZoneLevel::Medium, 7, Some(7)));
        assert!(hm.restart_on_new_case);
        assert_eq!(t(ZoneLevel::Medium, ZoneEntry::Downgraded).clean_days, 3);
        assert_eq!(t(ZoneLevel::Medium, ZoneEntry::Designated).clean_days, 7);
        assert!(z.widening.enabled);
        assert_eq!(z.widening.cap_level.as_deref(), Some("community"));

        let sc = &p.screening;
        assert!(sc.enabled);
        assert_eq!(
            (sc.interval_days, sc.stop_after_clean_rounds, sc.final_round_after_days, sc.round_completion_hours),
            (Some(1), Some(3), Some(3), Some(24))
        );

        let a = &p.arrivals;
        let abroad = a.for_origin(OriginRisk::Abroad).unwrap();
        assert_eq!(abroad.phases.iter().map(|p| p.days).collect::<Vec<_>>(), [7, 3]);
        assert_eq!(abroad.day_zero, DayZero::LeftOrigin);
        assert_eq!(a.high.as_ref().unwrap().phases[0].test_days, [1, 2, 3, 5, 7]);
        assert_eq!(a.high.as_ref().unwrap().phases[0].kind, MeasureKind::CentralQuarantine);
        assert_eq!(a.medium.as_ref().unwrap().phases[0].test_days, [1, 4, 7]);
        assert_eq!(a.medium.as_ref().unwrap().phases[0].kind, MeasureKind::HomeQuarantine);
        assert_eq!(a.low.as_ref().unwrap().phases[0].tests, Some(TestSeries { count: 2, min_gap_hours: 24 }));

        let clock: Vec<_> = p.response_clock.items.iter().map(|c| (c.start, c.stop, c.limit_hours)).collect();
        assert_eq!(
            clock,
            [
                (ClockEvent::PositiveResult, ClockEvent::CaseReported, 2),
                (ClockEvent::CaseReported, ClockEvent::CaseTransferred, 2),
                (ClockEvent::CaseReported, ClockEvent::TrailSignedOff, 4),
                (ClockEvent::CaseReported, ClockEvent::ContactsDetermined, 24),
                (ClockEvent::ContactDetermined, ClockEvent::ContactInMeasure, 12),
            ]
        );

        // A case's isolation: the response clock's 2 h for the report and the transfer; discharge
        // by the profile, its numbers working assumptions.
        let cl = &p.closed_loop;
        let iso = |s| cl.deadline_for(MeasureKind::Isolation, s).map(|d| (d.hours, d.from));
        assert_eq!(iso(EpisodeState::Proposed), Some((2, DeadlineFrom::Entered)));
        assert_eq!(iso(EpisodeState::Confirmed), Some((2, DeadlineFrom::Confirmed)));
        assert_eq!(iso(EpisodeState::Notified), Some((2, DeadlineFrom::Confirmed)));
        assert_eq!(iso(EpisodeState::Refused), Some((2, DeadlineFrom::Entered)), "the general one");
        assert_eq!(cl.deadline(EpisodeState::Confirmed).map(|d| d.hours), Some(12), "contacts keep theirs");
        assert_eq!(cl.deadline_for(MeasureKind::CentralQuarantine, EpisodeState::Confirmed).map(|d| d.hours), Some(12));
        assert!(cl.isolation.transfer_required);
        let d = &cl.isolation.discharge;
        assert_eq!((d.min_days, d.negative_tests, d.min_gap_hours), (0, 2, 24));
        assert!(d.source.contains("working assumption"));

        let cold = &p.cold_chain;
        assert_eq!([1, 2, 3, 4, 9].map(|n| cold.suspension_weeks(n)), [Some(1), Some(1), Some(4), Some(4), Some(4)]);
        assert_eq!(cold.suspension_weeks(0), None);
        assert_eq!(p.retention.location_days, 28);
        assert_eq!(p.open_visits.dwell_minutes(PlaceKind::Residence), 600);
        assert_eq!(p.open_visits.dwell_minutes(PlaceKind::Other), 60, "not listed: the default");
    }

    #[test]
    fn twenty_measures_numbers_match_the_design() {
        let p = Profile::builtin("cn-2022-20-measures").unwrap();
        assert_eq!(p.source.issued, "2022-11-11");
        assert_eq!(p.infectious_period.days_before_onset, 4);
        let m = &p.close_contact_measure;
        assert_eq!(m.phases.iter().map(|p| p.days).collect::<Vec<_>>(), [5, 3]);
        assert_eq!(m.phases[0].test_days, [1, 2, 3, 5]);
        assert_eq!(m.phases[1].test_days, [1, 3]);
        assert!(!p.secondary_contact.enabled);
        assert!(!p.grid.enabled);
        assert!(p.co_exposed.enabled);
        let levels: Vec<_> = p.zones.levels.iter().map(|l| l.level).collect();
        assert_eq!(levels, [ZoneLevel::High, ZoneLevel::Low]);
        assert!(p.zones.levels[0].drawn_at.contains(&"building".to_string()));
        let t = &p.zones.transitions;
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].from, t[0].to, t[0].clean_days, t[0].negative_round_on_day),
            (ZoneLevel::High, ZoneLevel::Low, 5, Some(5))
        );
        assert!(!p.zones.widening.enabled);
        assert!(!p.zones.manual_enlargement_allowed);
        let abroad = p.arrivals.abroad.as_ref().unwrap();
        assert_eq!(abroad.phases.iter().map(|p| p.days).collect::<Vec<_>>(), [5, 3]);
        let high = &p.arrivals.high.as_ref().unwrap().phases[0];
        assert_eq!((high.kind, high.days), (MeasureKind::HomeQuarantine, 7));
        assert_eq!(high.test_days, [1, 3, 5, 7]);
        assert!(p.arrivals.medium.is_none());
        assert_eq!(p.response_clock, nine().response_clock);
        assert_eq!(p.closed_loop.deadlines, nine().closed_loop.deadlines);
        assert_eq!(p.closed_loop.isolation.discharge.negative_tests, 2);
        assert_eq!(p.cold_chain, nine().cold_chain);
        assert_eq!(p.screening, nine().screening);
        assert_eq!(p.close_contact, nine().close_contact);
    }

    #[test]
    fn cdc_numbers_match_the_design_and_none_is_representable() {
        let p = Profile::builtin("cdc-2020-12").unwrap();
        assert_eq!(p.infectious_period.days_before_onset, 2);
        assert_eq!(p.infectious_period.days_before_sampling, 2);
        let cc = &p.close_contact;
        assert_eq!(cc.cumulative_window_hours, Some(24));
        assert!(cc.places.iter().all(|s| s.min_overlap_minutes == 15 && s.needs_confirmation));
        let prox = cc.proximity.as_ref().unwrap();
        assert_eq!((prox.max_distance, prox.unit, prox.scope), (6.0, DistanceUnit::Foot, ProximityScope::Everywhere));
        assert!(cc.flight.is_none() && cc.train.is_none());
        let m = &p.close_contact_measure;
        assert_eq!(m.total_days(), 10);
        assert_eq!(m.early_release, Some(EarlyRelease { release_day: 7, negative_test_from_day: 5 }));
        assert!(!p.co_exposed.enabled && !p.grid.enabled && !p.secondary_contact.enabled);
        assert!(p.zones.levels.is_empty() && p.zones.transitions.is_empty() && !p.zones.widening.enabled);
        assert!(!p.screening.enabled);
        assert!(OriginRisk::ALL.iter().all(|r| p.arrivals.for_origin(*r).is_none()));
        assert!(p.response_clock.items.is_empty());
        assert!(p.cold_chain.plant_suspensions.is_empty());
        assert_eq!(p.cold_chain.suspension_weeks(1), None);
        assert_eq!(p.retention.location_days, 28);
        // A case's isolation: no clock of its own; home isolation, at least 10 days, no tests.
        let iso = &p.closed_loop.isolation;
        assert!(!iso.transfer_required);
        assert_eq!((iso.discharge.min_days, iso.discharge.negative_tests), (10, 0));
        assert!(iso.discharge.source.contains("working assumption"));
        let general = p.closed_loop.deadline(EpisodeState::Confirmed);
        assert_eq!(p.closed_loop.deadline_for(MeasureKind::Isolation, EpisodeState::Confirmed), general);
    }

    #[test]
    fn service_requests_and_goods_workers_come_from_the_profile() {
        let p = nine();
        let r = p.service_requests.as_ref().unwrap();
        // Urgent medical requests within an hour; every kind has its rule.
        for kind in [RequestKind::Medicine, RequestKind::Dialysis, RequestKind::MedicalCare, RequestKind::Childbirth] {
            assert_eq!(r.deadline_minutes(kind, RequestPriority::Urgent), Some(60), "{kind}");
        }
        assert!(RequestKind::ALL.iter().all(|k| r.rule(*k).is_some()));
        assert_eq!(r.rule(RequestKind::Childbirth).unwrap().default_priority, RequestPriority::Urgent);
        let w = p.cold_chain.workers.as_ref().unwrap();
        assert_eq!((w.lookback_days, w.measure.phases[0].kind), (14, MeasureKind::TestsOnly));
        let cdc = Profile::builtin("cdc-2020-12").unwrap();
        assert!(cdc.service_requests.is_none() && cdc.cold_chain.workers.is_none());

        // A kind left out, listed twice, or a more urgent priority answered later: refused by name.
        let text = edited("kind = \"other\"\ndefault_priority", "kind = \"food\"\ndefault_priority");
        let (path, _, message, _) = invalid(&text);
        assert_eq!(path, "service_requests.kinds[5].kind", "{message}");
        let text = edited(
            "urgent_minutes = 120\nhigh_minutes = 480\nnormal_minutes = 2880",
            "urgent_minutes = 600\nhigh_minutes = 480\nnormal_minutes = 2880",
        );
        let (path, _, message, _) = invalid(&text);
        assert_eq!(path, "service_requests.kinds[5].high_minutes", "{message}");
        let text = edited("lookback_days = 14", "lookback_days = 0");
        let (path, _, _, _) = invalid(&text);
        assert_eq!(path, "cold_chain.workers.lookback_days");
    }

    #[test]
    fn misspelled_field_is_refused_with_its_dotted_path_and_line() {
        let text = edited("rows_either_side = 3", "plain_rows = 3");
        let (path, line, message, shown) = invalid(&text);
        assert_eq!(path, "close_contact.flight.plain_rows");
        assert!(message.starts_with("unknown field close_contact.flight.plain_rows"), "{message}");
        assert!(message.contains("rows_either_side"), "the message lists the expected fields: {message}");
        assert_eq!(line, Some(line_containing(&text, "plain_rows")));
        assert!(shown.starts_with("profile test.toml: unknown field close_contact.flight.plain_rows"), "{shown}");

        let text = edited("[retention]", "[retentoin]");
        let (path, _, message, _) = invalid(&text);
        assert_eq!(path, "retentoin", "{message}");
    }

    #[test]
    fn wrong_type_names_the_field_and_line() {
        let text = edited("rows_either_side = 3", "rows_either_side = \"three\"");
        let (path, line, message, shown) = invalid(&text);
        assert_eq!(path, "close_contact.flight.rows_either_side");
        assert_eq!(line, Some(line_containing(&text, "\"three\"")));
        assert!(message.contains("three") && message.contains("u32"), "{message}");
        assert!(
            shown.starts_with("profile test.toml: field close_contact.flight.rows_either_side: invalid type")
                && shown.ends_with(&format!("(line {})", line.unwrap())),
            "{shown}"
        );

        // An element of an array of tables, and a vocabulary value.
        let text = edited("kind = \"cold_chain_warehouse\"\nmin_overlap", "kind = \"hotel\"\nmin_overlap");
        let (path, line, message, _) = invalid(&text);
        assert_eq!(path, "close_contact.places[2].kind");
        assert_eq!(line, Some(line_containing(&text, "hotel")));
        assert!(message.contains("hotel") && message.contains("residence"), "{message}");
    }

    #[test]
    fn missing_field_and_syntax_errors_are_located() {
        let text = edited("days_before_sampling = 4\n", "");
        let (path, line, message, _) = invalid(&text);
        assert_eq!(path, "infectious_period.days_before_sampling");
        assert_eq!(message, "missing required field");
        assert!(line.is_some());

        let text = edited("[retention]", "[retention");
        let (path, line, message, _) = invalid(&text);
        assert_eq!(path, "");
        assert!(message.starts_with("invalid TOML"), "{message}");
        assert_eq!(line, Some(line_containing(&text, "[retention")));
    }

    #[test]
    fn semantic_errors_name_the_field_and_line() {
        let text = edited(
            "test_days = [1, 2, 3, 5, 7]\n\n[[close_contact_measure",
            "test_days = [1, 2, 3, 5, 9]\n\n[[close_contact_measure",
        );
        let (path, line, message, shown) = invalid(&text);
        assert_eq!(path, "close_contact_measure.phases[0].test_days[4]");
        assert!(message.contains("test day 9") && message.contains("1..=7"), "{message}");
        assert_eq!(line, Some(line_containing(&text, "[1, 2, 3, 5, 9]")));
        assert!(shown.contains("field close_contact_measure.phases[0].test_days[4]: test day 9"), "{shown}");

        let cases: &[(&str, &str, &str)] = &[
            ("kind = \"school\"\nmin_overlap", "kind = \"workplace\"\nmin_overlap", "close_contact.places[3].kind"),
            (
                "test_days = [1, 4, 7]\n\n# Low",
                "test_days = [1, 7, 4]\n\n# Low",
                "arrivals.medium.phases[0].test_days[2]",
            ),
            (
                "test_days = [1, 4, 7]\n\n# ---",
                "test_days = [0, 4, 7]\n\n# ---",
                "secondary_contact.measure.phases[0].test_days[0]",
            ),
            ("clean_days = 3", "clean_days = 0", "zones.transitions[1].clean_days"),
            ("negative_round_on_day = 7", "negative_round_on_day = 8", "zones.transitions[0].negative_round_on_day"),
            ("entered = \"designated\"", "entered = \"downgraded\"", "zones.transitions[2].entered"),
            ("from = \"high\"", "from = \"low\"", "zones.transitions[0].to"),
            ("cell_size_m = 800\n", "", "grid.cell_size_m"),
            ("state = \"handed_over\"", "state = \"released\"", "closed_loop.deadlines[6].state"),
            ("state = \"refused\"", "state = \"proposed\"", "closed_loop.deadlines[5].state"),
            ("escalate_every_hours = 12", "escalate_every_hours = 0", "closed_loop.escalate_every_hours"),
            ("review_every_hours = 24", "review_every_hours = 0", "closed_loop.isolation.review_every_hours"),
            ("state = \"notified\"\nkind", "state = \"confirmed\"\nkind", "closed_loop.deadlines[9].state"),
            ("state = \"proposed\"\nkind", "state = \"in_measure\"\nkind", "closed_loop.deadlines[7].state"),
            (
                "min_gap_hours = 24\nsource",
                "min_gap_hours = 0\nsource",
                "closed_loop.isolation.discharge.min_gap_hours",
            ),
            (
                "unit = \"m\"\nscope = \"vehicles\"\nneeds_confirmation = true",
                "unit = \"m\"\nscope = \"vehicles\"\nneeds_confirmation = false",
                "close_contact.proximity.needs_confirmation",
            ),
            ("positives = 2", "positives = 3", "cold_chain.plant_suspensions[1].positives"),
            ("limit_hours = 12", "limit_hours = 0", "response_clock.items[4].limit_hours"),
            ("stop = \"contact_in_measure\"", "stop = \"contact_determined\"", "response_clock.items[4].stop"),
            ("format_version = 1", "format_version = 2", "format_version"),
            ("issued = \"2022-06-28\"", "issued = \"June 2022\"", "source.issued"),
            ("location_days = 28", "location_days = 0", "retention.location_days"),
            ("default_dwell_minutes = 60", "default_dwell_minutes = 0", "open_visits.default_dwell_minutes"),
            ("dwell_minutes = 600", "dwell_minutes = 0", "open_visits.places[0].dwell_minutes"),
            ("kind = \"workplace\"\ndwell", "kind = \"residence\"\ndwell", "open_visits.places[1].kind"),
            (
                "tests = { count = 2, min_gap_hours = 24 }\n\n# ---------------------------------------------------------------- secondary",
                "tests = { count = 5, min_gap_hours = 24 }\n\n# ---------------------------------------------------------------- secondary",
                "grid.measure.phases[0].tests",
            ),
            (
                "tests = { count = 2, min_gap_hours = 24 }\n\n# ---------------------------------------------------------------- response",
                "tests = { count = 0, min_gap_hours = 24 }\n\n# ---------------------------------------------------------------- response",
                "arrivals.low.phases[0].tests.count",
            ),
        ];
        for (from, to, expected) in cases {
            let text = edited(from, to);
            let (path, line, message, _) = invalid(&text);
            assert_eq!(&path, expected, "{from} -> {to}: {message}");
            assert!(line.is_some(), "{expected}: no line");
        }
    }

    #[test]
    fn validate_reports_problems_of_profiles_built_in_code() {
        let mut p = nine();
        p.close_contact_measure.phases[0].days = 0;
        let err = p.validate().unwrap_err();
        assert_eq!(err.code(), ErrorCode::ProfileInvalid);
        assert!(err.to_string().contains("close_contact_measure.phases[0].days"), "{err}");

        let mut p = Profile::builtin("cdc-2020-12").unwrap();
        p.close_contact_measure.early_release = Some(EarlyRelease { release_day: 10, negative_test_from_day: 5 });
        assert!(p.validate().unwrap_err().to_string().contains("early_release.release_day"));
    }

    #[test]
    fn round_trip_through_toml_text() {
        for name in Profile::builtin_names() {
            let p = Profile::builtin(name).unwrap();
            let text = p.to_toml_string();
            let back =
                Profile::from_toml_str(&text, "round-trip.toml").unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
            assert_eq!(back, p, "{name}");
            assert_eq!(back.to_toml_string(), text, "{name}: writing is stable");
        }
    }

    #[test]
    fn load_reads_files_and_reports_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        let text = builtin_text("cn-2022-9th").replacen("name = \"cn-2022-9th\"", "name = \"mine\"", 1);
        std::fs::write(&path, text).unwrap();
        let p = Profile::load(path.to_str().unwrap()).unwrap();
        assert_eq!(p.name, "mine");

        std::fs::write(&path, "format_version = \"one\"\n").unwrap();
        let err = Profile::load(path.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("field format_version") && err.to_string().contains("(line 1)"), "{err}");

        let missing = dir.path().join("absent.toml");
        let err = Profile::load(missing.to_str().unwrap()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ProfileNotFound);
        assert!(err.to_string().contains("cn-2022-9th"), "lists the built-ins: {err}");
        let err = Profile::load("nonesuch").unwrap_err();
        assert!(matches!(err, ProfileError::NotFound { ref name } if name == "nonesuch"));

        let err = Profile::load(dir.path().to_str().unwrap()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Io, "{err}");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 64,
                rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_9f11),
                ..ProptestConfig::default()
            })]

            /// A central phase of any length is accepted exactly when its test days fit, and
            /// whatever is accepted survives the round trip.
            #[test]
            fn test_days_must_fit_the_phase(days in 0u32..12, last in 1u32..12) {
                let text = edited(
                    "days = 7\ntest_days = [1, 2, 3, 5, 7]\n\n[[close_contact_measure",
                    &format!("days = {days}\ntest_days = [1, 2, 3, 5, {}]\n\n[[close_contact_measure", last.max(6)),
                );
                match Profile::from_toml_str(&text, "prop.toml") {
                    Ok(p) => {
                        prop_assert!(days >= last.max(6));
                        prop_assert_eq!(Profile::from_toml_str(&p.to_toml_string(), "again").unwrap(), p);
                    }
                    Err(ProfileError::Invalid { path, line, .. }) => {
                        prop_assert!(days < last.max(6));
                        prop_assert!(path.starts_with("close_contact_measure.phases[0]"), "{}", path);
                        prop_assert!(line.is_some());
                    }
                    Err(other) => prop_assert!(false, "{}", other),
                }
            }
        }
    }
}
