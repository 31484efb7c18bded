//! Storage traits for chainbreak, the change feed, and the conformance suite every backend
//! must pass ([`conformance`]).
//!
//! A store holds the durable truth; engines keep their own in-memory indexes, built from a
//! [`Store::scan_visits`] on start and kept current by reading [`Store::changes_since`].
//! All writes go through a [`Batch`]: nothing is visible until [`Batch::commit`], and a batch
//! dropped without commit (an error, a crash, a kill) leaves the store as it was.

pub mod conformance;
mod goods;
mod surveillance;

pub use goods::*;
pub use surveillance::*;

use chainbreak_core::access::{AuditRecord, TokenInfo, User};
use chainbreak_core::model::*;
use chainbreak_core::{ErrorCode, model::VisitSource};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

/// The compact key a store gives each person, place, area...: dense, starting at 1.
pub type Key = u32;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Row `index` of the slice handed to a `put_*` call names an id that is not registered.
    #[error("{entity} `{value}` named in `{field}` is not registered")]
    UnknownReference { index: usize, field: &'static str, entity: &'static str, value: String },
    /// Row `index` breaks a rule of the model.
    #[error("{message}")]
    Invalid { index: usize, field: &'static str, message: String },
    #[error("the store at {0} has not been initialised; run `chainbreak init` first")]
    NotInitialized(String),
    #[error("a store exists already at {0}")]
    Exists(String),
    #[error("the store has schema version {found}, newer than this chainbreak ({supported}); upgrade chainbreak")]
    Version { found: u32, supported: u32 },
    #[error("{0} not found")]
    NotFound(String),
    #[error("storage backend: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::UnknownReference { .. } => ErrorCode::InputUnknownReference,
            StoreError::Invalid { .. } => ErrorCode::InputInconsistent,
            StoreError::NotInitialized(_) => ErrorCode::StoreNotInitialized,
            StoreError::Exists(_) => ErrorCode::StoreExists,
            StoreError::Version { .. } => ErrorCode::StoreVersion,
            StoreError::NotFound(_) => ErrorCode::NotFound,
            StoreError::Backend(_) => ErrorCode::Internal,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Deployment settings fixed at `init`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Meta {
    pub schema_version: u32,
    /// IANA zone of the deployment's calendar.
    pub time_zone: String,
    /// The policy profile in force (a built-in name or a path).
    pub profile: String,
    /// Area levels, top first.
    pub area_levels: Vec<String>,
    pub created_at: Timestamp,
}

/// A visit as the store keeps it: keys instead of ids, instants as Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct KeyedVisit {
    pub person: Key,
    pub place: Key,
    pub t_in: i64,
    pub t_out: Option<i64>,
    pub source: VisitSource,
}

/// What a change was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// Rows inserted or replaced.
    Upsert,
    /// Rows deleted.
    Delete,
    /// A person merged into another (`key_from` = duplicate, `key_to` = survivor).
    Merge,
    /// A merge undone (`key_from` = duplicate, `key_to` = survivor).
    Unmerge,
}

/// One entry of the change feed. `seq` is strictly increasing across the store's life.
/// For visits and pings, `key_from..=key_to` is a range of row ids (never reused); for links
/// (staff, membership, passenger) the two keys linked (place or group or trip, then person);
/// for sentinel records the place's key; for merges the duplicate and the survivor; for other
/// entities both are the entity's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub seq: u64,
    pub entity: Entity,
    pub op: ChangeOp,
    pub key_from: i64,
    pub key_to: i64,
}

chainbreak_core::vocabulary!(
    /// The entities a store holds.
    Entity {
        Area = "area", Unit = "unit", Place = "place", Person = "person", Identifier = "identifier",
        Staff = "staff", Group = "group", Membership = "membership", Visit = "visit", Trip = "trip",
        Passenger = "passenger", Ping = "ping", Case = "case", LabTest = "lab_test", Arrival = "arrival",
        GoodsBatch = "goods_batch", GoodsHop = "goods_hop", Sentinel = "sentinel", Proposal = "proposal",
        Episode = "episode", Facility = "facility", Alert = "alert", ReviewItem = "review_item",
        Zone = "zone", GoodsResponse = "goods_response", Suspension = "suspension",
        ServiceRequest = "service_request"
    }
);

chainbreak_core::vocabulary!(
    /// Where a contact proposal stands (DESIGN.md §4a: the engine proposes, people decide).
    ProposalStatus {
        /// Found by the engine, waiting for a person.
        Proposed = "proposed",
        /// A person confirmed it.
        Confirmed = "confirmed",
        /// A person rejected it, with a reason.
        Rejected = "rejected",
        /// No longer in the trace result before anyone decided it.
        Withdrawn = "withdrawn"
    }
);

/// What a contact proposal hangs on: the index case, or the index person when traced by person
/// (then `case_id` is absent). Two proposals with the same index, contact and category are one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProposalIndex {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    /// The index person (the case's person when traced by case).
    #[serde(rename = "index_person_id")]
    pub person_id: String,
}

/// A contact proposal: the engine's finding that `person_id` is a contact of `category` of an
/// index case, with the evidence, and what people decided about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    /// Assigned by the store (ignored when written).
    pub id: i64,
    #[serde(flatten)]
    pub index: ProposalIndex,
    /// The contact.
    pub contact_id: String,
    /// `close`, `co_exposed`, `secondary`, ... (as the trace report's tiers).
    pub category: String,
    pub tier: u8,
    pub first_exposure: Timestamp,
    pub last_exposure: Timestamp,
    pub exposures: u64,
    /// The evidence as JSON text (an array; its shape belongs to the application layer, so
    /// that new fields need no new columns).
    #[serde(skip)]
    pub evidence: String,
    /// A digest of the evidence, to tell whether it changed.
    #[serde(skip)]
    pub evidence_digest: String,
    /// Some piece of evidence needs a person to confirm what the data cannot decide.
    pub needs_confirmation: bool,
    /// The contact is in the latest trace result.
    pub in_result: bool,
    pub status: ProposalStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub decision_reason: Option<String>,
    /// The evidence changed, or the contact left the result, after a person decided.
    pub changed_since_decision: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The trace request an index case's proposals were recorded from, to run again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceRecord {
    pub index: ProposalIndex,
    /// The start of the index's window when recorded.
    pub from: Timestamp,
    /// The request as JSON text (its shape belongs to the application layer).
    pub request: String,
    /// A digest of the index's proposals as recorded.
    pub digest: String,
    /// The change `seq` the trace was current to.
    pub seq: u64,
    pub recorded_at: Timestamp,
}

/// Which proposals a page holds (every given field must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProposalFilter {
    /// Proposals of this index case.
    pub case_id: Option<String>,
    pub status: Option<ProposalStatus>,
}

/// A person's decision on proposals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// [`ProposalStatus::Confirmed`] or [`ProposalStatus::Rejected`].
    pub status: ProposalStatus,
    pub actor: String,
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// A stored visit with its row id (the change feed's unit for visits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StoredVisit {
    pub row: i64,
    pub visit: KeyedVisit,
}

/// Which audit records to read (every given field must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub entity: Option<String>,
    pub record: Option<String>,
    /// Only records by users whose jurisdiction lies in this area's subtree (what a reader
    /// scoped to that area may see of the trail).
    pub actors_within: Option<String>,
}

/// A person's membership of a group, with what an engine needs of the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupMember {
    pub group: Key,
    pub group_id: String,
    pub kind: GroupKind,
    /// A gathering's start and end (Unix seconds), when known.
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// The person as recorded (resolve merges with [`Store::person_survivors`]).
    pub person: Key,
}

/// A person on a trip, with what an engine needs of the trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TripRider {
    pub trip: Key,
    pub trip_id: String,
    pub mode: TripMode,
    /// Unix seconds.
    pub departure: i64,
    pub arrival: Option<i64>,
    pub sealed: bool,
    /// The person as recorded (resolve merges with [`Store::person_survivors`]).
    pub person: Key,
    pub role: TripRole,
    pub carriage: Option<u32>,
    pub seat_row: Option<u32>,
}

/// A stored location ping with its row id (the change feed's unit for pings).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StoredPing {
    pub row: i64,
    /// The person as recorded.
    pub person: Key,
    /// Unix seconds.
    pub t: i64,
    pub lat: f64,
    pub lon: f64,
}

/// One event of a measure episode as stored: the closed-loop engine's action as JSON text
/// (its shape belongs to the engine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EpisodeEvent {
    /// Assigned by the store (ignored when written).
    pub seq: i64,
    pub episode_id: String,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
}

/// An episode's current state, as its latest event left it (for lists and deadlines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EpisodeRow {
    pub id: String,
    pub person_id: String,
    /// `close`, `secondary`, `arrival`... (the engine's category).
    pub category: String,
    pub state: EpisodeState,
    pub owner_unit: String,
    pub deadline: Option<Timestamp>,
    pub facility_id: Option<String>,
    pub room_id: Option<String>,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    /// How many events made it.
    pub events: u32,
}

/// Which episodes a page holds (every given field must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpisodeFilter {
    pub state: Option<EpisodeState>,
    pub owner_unit: Option<String>,
    pub facility_id: Option<String>,
    pub person_id: Option<String>,
    /// Only those whose deadline is before this instant (overdue then).
    pub due_before: Option<Timestamp>,
}

/// One event of a risk zone as stored: the zone engine's action as JSON text (its shape
/// belongs to the engine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneEventRow {
    /// Assigned by the store (ignored when written).
    pub seq: i64,
    pub zone_id: String,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
}

/// A zone's current state, as its latest event left it: the engine's zone as JSON text, with
/// the fields lists filter on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneRow {
    pub id: String,
    /// `area` or `place`.
    pub target_kind: String,
    pub target_id: String,
    /// `proposed`, `confirmed`, `rejected`, `lifted`, `lapsed` (the engine's status).
    pub status: String,
    pub level: ZoneLevel,
    /// The next local date the zone's rules may change it.
    pub next_review: Option<Date>,
    pub updated_at: Timestamp,
    pub events: u32,
    pub state: String,
}

chainbreak_core::vocabulary!(
    /// The order of a case list.
    CaseSort { Id = "id", Reported = "reported", Onset = "onset", Classification = "classification" }
);

/// Which cases a sorted list holds and in what order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseQuery {
    pub classification: Option<Classification>,
    pub sort: CaseSort,
    pub descending: bool,
}

impl CaseQuery {
    /// The cursor value of a case in this order (with its id, the keyset of the next page).
    pub fn key_of(&self, c: &Case) -> String {
        match self.sort {
            CaseSort::Id => String::new(),
            CaseSort::Reported => c.reported_at.as_second().to_string(),
            CaseSort::Onset => c.onset.map(|d| d.to_string()).unwrap_or_default(),
            CaseSort::Classification => c.classification.as_str().to_string(),
        }
    }
}

/// How many cases share a classification, a local report day, a local onset day and whether
/// they were found in quarantine ([`Store::case_counts`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CaseCount {
    pub classification: Classification,
    pub reported: Date,
    pub onset: Option<Date>,
    pub in_quarantine: bool,
    /// The day the case counts from for the reproduction number: onset, else sampling, else
    /// report.
    pub epi_day: Date,
    pub imported: bool,
    pub n: u64,
}

/// How many episodes share a state and an owning unit ([`Store::episode_counts`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EpisodeCount {
    pub state: String,
    pub owner_unit: String,
    pub n: u64,
}

/// Which zones a page holds (every given field must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneFilter {
    pub status: Option<String>,
    /// Only proposed or confirmed zones.
    pub open: bool,
    pub level: Option<ZoneLevel>,
    /// (`area` or `place`, id).
    pub target: Option<(String, String)>,
    /// Only those whose next review is on or before this date.
    pub review_by: Option<Date>,
}

/// A quarantine facility and its rooms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacilityRow {
    pub id: String,
    pub name: String,
    pub area: Option<String>,
    pub rooms: Vec<RoomRow>,
}

/// A room of a facility: `clean`, `occupied` or `to_disinfect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomRow {
    pub id: String,
    pub capacity: u32,
    pub state: String,
}

/// Where a bulk scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScanEnd {
    /// The last row id handed over (`after_row` when there was none).
    pub last_row: i64,
    /// The newest change `seq` the scanned snapshot includes.
    pub seq: u64,
}

/// Which records a read may see: a user's jurisdiction.
///
/// Where a record lies: an area in its own subtree; a place by its `area`; a person by their
/// residence's area; a case by its person; a lab test by its person subject or by its lab; a
/// visit by its place or by its person (either inside is enough). A record that lies nowhere
/// (no area, no residence) is seen only with [`Scope::All`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every record: a jurisdiction at the top of the area tree, or the operator at the console.
    All,
    /// Records lying inside this area's subtree (the area included).
    Within(String),
}

/// Which visits a page of visits holds (every given field must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitQuery {
    /// Visits of this person and of the persons merged into them.
    pub person: Option<String>,
    /// Visits at this place.
    pub place: Option<String>,
    /// `t_in >= from`.
    pub from: Option<Timestamp>,
    /// `t_in < to`.
    pub to: Option<Timestamp>,
}

/// A visit with its row id (the cursor of visit pages).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisitRow {
    pub row: i64,
    #[serde(flatten)]
    pub visit: Visit,
}

/// What a store can do. Reads see committed data only.
pub trait Store: Send {
    /// Deployment settings.
    fn meta(&self) -> Result<Meta>;
    /// Starts an all-or-nothing batch of writes made at `at` (the injected clock's now).
    fn begin(&mut self, at: Timestamp) -> Result<Box<dyn Batch + '_>>;

    /// Every person's id and key (merged duplicates included), for mapping ids at import.
    fn person_keys(&self) -> Result<Vec<(String, Key)>>;
    /// Every place's id and key.
    fn place_keys(&self) -> Result<Vec<(String, Key)>>;
    /// Every place's key and kind (for engines that treat kinds differently).
    fn place_kinds(&self) -> Result<Vec<(Key, PlaceKind)>>;
    /// Every membership with its group (for engines: households, classes, teams, gatherings),
    /// by group then person.
    fn group_members(&self) -> Result<Vec<GroupMember>>;
    /// Every passenger and crew member with their trip (for engines: seat rules), by trip then
    /// person.
    fn trip_riders(&self) -> Result<Vec<TripRider>>;
    /// How many rows of an entity there are.
    fn count(&self, entity: Entity) -> Result<u64>;

    fn person(&self, id: &str) -> Result<Option<Person>>;
    /// The person's personal data (identifiers).
    fn identifiers(&self, person_id: &str) -> Result<Vec<Identifier>>;
    /// The survivor a person was merged into, following chains; the person itself if not merged.
    fn canonical_person(&self, id: &str) -> Result<Option<String>>;
    /// A person's merge history (as survivor or as duplicate), oldest first.
    fn merges(&self, person_id: &str) -> Result<Vec<PersonMerge>>;
    fn place(&self, id: &str) -> Result<Option<Place>>;
    fn area(&self, id: &str) -> Result<Option<Area>>;
    fn case(&self, id: &str) -> Result<Option<Case>>;
    /// A case's classification history, oldest first.
    fn case_history(&self, id: &str) -> Result<Vec<ClassificationChange>>;
    fn lab_test(&self, id: &str) -> Result<Option<LabTest>>;

    /// A person's visits (and those of duplicates merged into them) with `t_in` in
    /// `[from, to)`, by `t_in`.
    fn visits_of_person(&self, person_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Visit>>;
    /// Every visit with row id greater than `after_row`, in row order, handed over in batches,
    /// from one consistent snapshot. Persons are as recorded (resolve merges with
    /// [`Store::person_survivors`]). Returns the last row id seen and the change `seq` the
    /// snapshot includes, from which to follow [`Store::changes_since`].
    fn scan_visits(&self, after_row: i64, f: &mut dyn FnMut(&[StoredVisit])) -> Result<ScanEnd>;
    /// For every person key (the index), the key of the survivor it is merged into (itself
    /// when not merged), following chains.
    fn person_survivors(&self) -> Result<Vec<Key>>;
    /// Every location ping with row id greater than `after_row`, in row order, in batches,
    /// from one consistent snapshot (as [`Store::scan_visits`]).
    fn scan_pings(&self, after_row: i64, f: &mut dyn FnMut(&[StoredPing])) -> Result<ScanEnd>;

    /// Up to `limit` persons in `scope` with id greater than `after`, by id.
    fn persons_page(&self, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<Person>>;
    /// Up to `limit` places in `scope` with id greater than `after`, by id.
    fn places_page(&self, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<Place>>;
    /// Up to `limit` cases in `scope` with id greater than `after`, by id.
    fn cases_page(&self, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<Case>>;
    /// Up to `limit` lab tests in `scope` with id greater than `after`, by id.
    fn lab_tests_page(&self, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<LabTest>>;
    /// Up to `limit` visits in `scope` matching `query` with row id greater than `after_row`,
    /// by row id. Persons are as recorded.
    fn visits_page(&self, scope: &Scope, query: &VisitQuery, after_row: i64, limit: usize) -> Result<Vec<VisitRow>>;
    /// Up to `limit` contact proposals in `scope` (a proposal lies where its contact lives)
    /// matching `filter`, with id greater than `after`, by id.
    fn proposals_page(&self, scope: &Scope, filter: &ProposalFilter, after: i64, limit: usize)
    -> Result<Vec<Proposal>>;
    /// One contact proposal.
    fn proposal(&self, id: i64) -> Result<Option<Proposal>>;
    /// Every recorded trace request, one per index case or person.
    fn trace_records(&self) -> Result<Vec<TraceRecord>>;
    /// Every episode event with `seq` greater than `after`, in order, in batches (a restart
    /// rebuilds the episodes from them). Returns the last `seq` handed over.
    fn scan_episode_events(&self, after: i64, f: &mut dyn FnMut(&[EpisodeEvent])) -> Result<i64>;
    /// One episode's events, in order.
    fn episode_events(&self, episode_id: &str) -> Result<Vec<EpisodeEvent>>;
    /// Up to `limit` episodes in `scope` (an episode lies where its person lives) matching
    /// `filter`, with id greater than `after`, by id.
    fn episodes_page(
        &self,
        scope: &Scope,
        filter: &EpisodeFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EpisodeRow>>;
    fn episode(&self, id: &str) -> Result<Option<EpisodeRow>>;
    /// A page of the cases in the scope, in the query's order (ties by id), after the row whose
    /// (sort value as [`CaseQuery::key_of`] gives it, id) is `after`. Cases without an onset sort
    /// first by onset.
    fn cases_sorted(
        &self,
        scope: &Scope,
        query: &CaseQuery,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Case>>;
    /// Every goods batch (by id) and every hop (in the order written): the goods engine's input.
    fn goods(&self) -> Result<(Vec<GoodsBatch>, Vec<GoodsHop>)>;
    /// A page of zones lying in the scope (a zone lies in its area, or in its place's area),
    /// by id, after `after`.
    fn zones_page(&self, scope: &Scope, filter: &ZoneFilter, after: Option<&str>, limit: usize)
    -> Result<Vec<ZoneRow>>;
    fn zone(&self, id: &str) -> Result<Option<ZoneRow>>;
    /// A zone's history, in order.
    fn zone_events(&self, zone_id: &str) -> Result<Vec<ZoneEventRow>>;
    /// Every facility with its rooms, by id.
    fn facilities(&self) -> Result<Vec<FacilityRow>>;
    /// Every unit (the administrative hierarchy tasks escalate up), by id.
    fn units(&self) -> Result<Vec<Unit>>;
    /// The staff of a place (a quarantine facility's staff are those of the place with its id),
    /// by person.
    fn staff_of(&self, place_id: &str) -> Result<Vec<StaffMember>>;
    /// The places a person is on the staff of (their units), by place id.
    fn units_of(&self, person_id: &str) -> Result<Vec<StaffMember>>;
    /// The household (group id) of each person named, where they have one (the least id when
    /// several).
    fn households_of(&self, person_ids: &[&str]) -> Result<Vec<Option<String>>>;
    /// Whether each record of `entity` (area, place, person, case or lab test) named by `ids`
    /// lies in `scope`; an unknown id lies nowhere (but everything is in [`Scope::All`]).
    fn in_scope(&self, scope: &Scope, entity: Entity, ids: &[&str]) -> Result<Vec<bool>>;

    /// A user account.
    fn user(&self, name: &str) -> Result<Option<User>>;
    /// Every user account, by name.
    fn users(&self) -> Result<Vec<User>>;
    /// A user's argon2 password hash.
    fn password_hash(&self, name: &str) -> Result<Option<String>>;
    /// The user a live (unrevoked, unexpired at `now`) token belongs to, with the token.
    fn token_user(&self, token_hash: &[u8], now: Timestamp) -> Result<Option<(User, TokenInfo)>>;
    /// Audit records with `seq > after`, oldest first, at most `limit`, matching the filter.
    fn audit_records(&self, after: i64, limit: usize, filter: &AuditFilter) -> Result<Vec<AuditRecord>>;

    /// Changes with `seq > after`, oldest first, at most `limit`.
    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>>;
    /// The newest change's `seq` (0 for an empty store).
    fn last_seq(&self) -> Result<u64>;

    /// One alert.
    fn alert(&self, id: i64) -> Result<Option<AlertRow>>;
    /// Up to `limit` alerts in `scope` (by area, place or person) matching `filter`, with id
    /// greater than `after`, by id.
    fn alerts_page(&self, scope: &Scope, filter: &AlertFilter, after: i64, limit: usize) -> Result<Vec<AlertRow>>;
    /// An alert's triage events, oldest first.
    fn alert_events(&self, id: i64) -> Result<Vec<AlertEvent>>;
    /// Up to `limit` review items in `scope` (by area) with the given status, highest score
    /// first (then by id).
    fn review_queue(&self, scope: &Scope, status: Option<ReviewStatus>, limit: usize) -> Result<Vec<ReviewItem>>;
    fn review_item(&self, id: i64) -> Result<Option<ReviewItem>>;
    /// The sentinel records in `scope` (by their area, or their place's) dated `from..=to`,
    /// by place, feed, category and date; `area_id` is the record's or else its place's.
    fn sentinel_records(&self, scope: &Scope, from: Date, to: Date) -> Result<Vec<SentinelRecord>>;
    /// The last report of every sentinel point and feed in `scope`, by place and feed.
    fn sentinel_last_reports(&self, scope: &Scope) -> Result<Vec<SentinelLast>>;
    /// A case's response clock, by item name.
    fn clock_of(&self, case_id: &str) -> Result<Vec<ClockRow>>;
    /// The response clocks of the cases in `scope` reported at or after `from`, by case id then
    /// item.
    fn clocks_reported_since(&self, scope: &Scope, from: Timestamp) -> Result<Vec<ClockRow>>;
    /// The cases in `scope` counted by classification, local report day, local onset day and
    /// detection in quarantine (kept as cases are written: reads a few rows per day, not every
    /// case). A case lies where its person lived when the case was last written.
    fn case_counts(&self, scope: &Scope) -> Result<Vec<CaseCount>>;
    /// The episodes in `scope` counted by state and owning unit (kept as episodes are written).
    fn episode_counts(&self, scope: &Scope) -> Result<Vec<EpisodeCount>>;

    /// A page of the goods responses (by id, after `after`) lying in `scope` by their place
    /// (a response without a place lies only in [`Scope::All`]).
    fn goods_responses(&self, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<GoodsResponseRow>>;
    fn goods_response(&self, id: &str) -> Result<Option<GoodsResponseRow>>;
    /// The supplier suspension list, by plant then `nth`.
    fn suspensions(&self) -> Result<Vec<SuspensionRow>>;
    /// A page of service requests of persons living in `scope`, matching `filter`, by id after
    /// `after`.
    fn requests_page(
        &self,
        scope: &Scope,
        filter: &RequestFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RequestRow>>;
    fn request(&self, id: &str) -> Result<Option<RequestRow>>;
    /// A service request's events, in order.
    fn request_events(&self, request_id: &str) -> Result<Vec<RequestEventRow>>;
}

/// An all-or-nothing batch of writes. Each `put_*` call is itself atomic: on error nothing of
/// that call is written, and the batch can go on (the importer uses this to skip bad rows).
pub trait Batch {
    /// Every person's id and key as seen inside this batch.
    fn person_keys(&self) -> Result<Vec<(String, Key)>>;
    /// Every place's id and key as seen inside this batch.
    fn place_keys(&self) -> Result<Vec<(String, Key)>>;
    /// The keys of the given person ids (`None` where not registered).
    fn lookup_persons(&self, ids: &[&str]) -> Result<Vec<Option<Key>>>;
    /// The keys of the given place ids (`None` where not registered).
    fn lookup_places(&self, ids: &[&str]) -> Result<Vec<Option<Key>>>;

    fn put_areas(&mut self, rows: &[Area]) -> Result<()>;
    fn put_units(&mut self, rows: &[Unit]) -> Result<()>;
    fn put_places(&mut self, rows: &[Place]) -> Result<()>;
    fn put_persons(&mut self, rows: &[Person]) -> Result<()>;
    fn put_identifiers(&mut self, rows: &[Identifier]) -> Result<()>;
    fn put_staff(&mut self, rows: &[StaffMember]) -> Result<()>;
    fn put_groups(&mut self, rows: &[Group]) -> Result<()>;
    fn put_memberships(&mut self, rows: &[Membership]) -> Result<()>;
    fn put_trips(&mut self, rows: &[Trip]) -> Result<()>;
    fn put_passengers(&mut self, rows: &[TripPassenger]) -> Result<()>;
    fn put_pings(&mut self, rows: &[LocationPing]) -> Result<()>;
    fn put_cases(&mut self, rows: &[Case]) -> Result<()>;
    fn put_lab_tests(&mut self, rows: &[LabTest]) -> Result<()>;
    fn put_arrivals(&mut self, rows: &[Arrival]) -> Result<()>;
    fn put_goods_batches(&mut self, rows: &[GoodsBatch]) -> Result<()>;
    fn put_goods_hops(&mut self, rows: &[GoodsHop]) -> Result<()>;
    fn put_sentinel(&mut self, rows: &[SentinelRecord]) -> Result<()>;

    /// Registers persons by id alone (those already registered keep their key); returns keys.
    fn register_persons(&mut self, ids: &[&str]) -> Result<Vec<Key>>;
    /// Registers places by id alone (kind `other`); returns keys.
    fn register_places(&mut self, ids: &[&str]) -> Result<Vec<Key>>;
    /// Appends visits whose keys the caller has resolved.
    fn insert_visits(&mut self, rows: &[KeyedVisit]) -> Result<()>;
    /// Tells the store that `expected_rows` visits are coming in this batch, so that it can
    /// choose a bulk strategy (e.g. build indexes after the load).
    fn expect_visits(&mut self, expected_rows: u64) -> Result<()>;

    /// Merges `duplicate` into `survivor`: reads resolve the duplicate's records to the survivor.
    fn merge_persons(
        &mut self,
        survivor: &str,
        duplicate: &str,
        reason: &str,
        actor: &str,
        at: Timestamp,
    ) -> Result<PersonMerge>;
    /// Undoes a merge.
    fn unmerge_persons(&mut self, merge_id: i64, at: Timestamp) -> Result<PersonMerge>;

    /// Adds a user account with its argon2 password hash (the jurisdiction must be an area).
    fn add_user(&mut self, user: &User, password_hash: &str) -> Result<()>;
    /// Disables or enables a user; their tokens stop or start working with them.
    fn set_user_disabled(&mut self, name: &str, disabled: bool) -> Result<()>;
    /// Replaces a user's password hash.
    fn set_password_hash(&mut self, name: &str, password_hash: &str) -> Result<()>;
    /// Stores an API token by its hash.
    fn add_token(
        &mut self,
        user: &str,
        token_hash: &[u8],
        label: &str,
        created_at: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<TokenInfo>;
    /// Revokes a token.
    fn revoke_token(&mut self, id: i64, at: Timestamp) -> Result<()>;
    /// Deletes the location data of `entity` that is older than `before`: visits ([`Entity::Visit`])
    /// that ended before it (`t_out`, or `t_in` when the visit has none) and pings
    /// ([`Entity::Ping`]) taken before it. Each run of consecutive row ids deleted goes into the
    /// change feed as one `Delete` change (`key_from..=key_to`), so that engines holding the rows
    /// in memory drop them. Returns how many rows were deleted.
    fn purge_before(&mut self, entity: Entity, before: Timestamp) -> Result<u64>;
    /// The proposals of one index, as seen inside this batch.
    fn proposals_of(&self, index: &ProposalIndex) -> Result<Vec<Proposal>>;
    /// Writes the proposals of one index and the request they came from, all or nothing:
    /// each row is inserted, or replaces the one with the same index, contact and category
    /// (its `id` and `created_at` are kept). Every row's index must be `record.index`.
    /// Each written proposal is an `Upsert` change of [`Entity::Proposal`]. Returns the ids.
    fn record_proposals(&mut self, record: &TraceRecord, rows: &[Proposal]) -> Result<Vec<i64>>;
    /// Records a person's decision on proposals, all or nothing: a missing id is
    /// [`StoreError::NotFound`], a withdrawn proposal [`StoreError::Invalid`]. Clears
    /// `changed_since_decision`. Returns the proposals as decided.
    fn decide_proposals(&mut self, ids: &[i64], decision: &Decision) -> Result<Vec<Proposal>>;
    /// Appends episode events and writes the state each episode is in after them, all or
    /// nothing. Every episode of `events` must have its row in `rows`; its person must be
    /// registered. Each row written is an `Upsert` change of [`Entity::Episode`].
    fn append_episode_events(&mut self, events: &[EpisodeEvent], rows: &[EpisodeRow]) -> Result<()>;
    /// Adds or replaces facilities with their rooms (a room left out is kept), all or nothing.
    /// Appends zone events and upserts the zones' rows (every event's zone has its row here;
    /// the target must be a known area or place). All or nothing.
    fn append_zone_events(&mut self, events: &[ZoneEventRow], rows: &[ZoneRow]) -> Result<()>;
    fn put_facilities(&mut self, rows: &[FacilityRow]) -> Result<()>;
    /// Sets a room's state (`clean`, `occupied`, `to_disinfect`).
    fn set_room_state(&mut self, facility_id: &str, room_id: &str, state: &str) -> Result<()>;
    /// Appends an audit record (its `seq` is assigned); audit records are never changed.
    fn append_audit(&mut self, record: &AuditRecord) -> Result<i64>;

    /// The non-excluded cases of the given persons, as seen inside this batch, by id.
    fn open_cases_of(&self, person_ids: &[&str]) -> Result<Vec<Case>>;
    /// Every lab test of the given pools, as seen inside this batch, by pool then id.
    fn pool_members(&self, pool_ids: &[&str]) -> Result<Vec<LabTest>>;
    /// Raises alerts, all or nothing: each row is inserted in state `new` with a first event
    /// by `actor`, unless an alert with its key exists (then `None` in its place). Areas,
    /// places and persons named must exist. Each alert raised is an `Upsert` change of
    /// [`Entity::Alert`]. Returns the new ids.
    fn raise_alerts(&mut self, rows: &[AlertRow], actor: &str) -> Result<Vec<Option<i64>>>;
    /// Moves an alert as `event` says (`event.from` must be its state now, else
    /// [`StoreError::Invalid`]; a missing alert is [`StoreError::NotFound`]), setting the owner
    /// and outcome the event gives; appends the event. Returns the alert as moved.
    fn transition_alert(&mut self, event: &AlertEvent) -> Result<AlertRow>;
    /// Queues aberration alarms, all or nothing: one item per series and period, so an item
    /// already queued (whatever its status) is kept and `None` comes back in its place.
    fn queue_review_items(&mut self, rows: &[ReviewItem]) -> Result<Vec<Option<i64>>>;
    /// Records a reviewer's decision on a pending item ([`StoreError::Invalid`] if decided
    /// already, [`StoreError::NotFound`] if missing). Returns the item as decided.
    fn decide_review_item(&mut self, id: i64, decision: &ReviewDecision) -> Result<ReviewItem>;
    /// Starts the response clock of cases: each row inserted unless the case has that item.
    fn put_clock(&mut self, rows: &[ClockRow]) -> Result<()>;
    /// Records that `event` happened to a case at `at`: items starting with it start (due
    /// `limit_hours` later), items stopping with it stop — also before they start (the work
    /// was done before its clock ran: met when it starts). Returns the items changed.
    fn clock_event(&mut self, case_id: &str, event: &str, at: Timestamp) -> Result<Vec<ClockRow>>;

    /// Records the response to a positive sample, unless one with its id exists (then
    /// `false`, and nothing is written). A place named must exist. A `GoodsResponse` change.
    fn put_goods_response(&mut self, row: &GoodsResponseRow) -> Result<bool>;
    /// Counts a positive sample at a plant, unless it is counted there already (`false`).
    fn record_plant_positive(&mut self, positive: &PlantPositive) -> Result<bool>;
    /// The positives counted at a plant, as seen inside this batch, by day then sample.
    fn plant_positives_of(&self, plant: &str) -> Result<Vec<PlantPositive>>;
    /// The suspension list's entries of a plant, as seen inside this batch, by `nth`.
    fn suspensions_of(&self, plant: &str) -> Result<Vec<SuspensionRow>>;
    /// Upserts suspension entries by (plant, `nth`); each a `Suspension` change.
    fn put_suspensions(&mut self, rows: &[SuspensionRow]) -> Result<()>;
    /// A service request's events as seen inside this batch, in order.
    fn request_events_of(&self, request_id: &str) -> Result<Vec<RequestEventRow>>;
    /// Appends service-request events and upserts the requests' rows (every event's request
    /// has its row here; the person must exist). All or nothing; each row a `ServiceRequest`
    /// change.
    fn append_request_events(&mut self, events: &[RequestEventRow], rows: &[RequestRow]) -> Result<()>;

    /// Makes everything visible at once; returns the last change `seq`.
    fn commit(self: Box<Self>) -> Result<u64>;
}
