//! What the surveillance side of the store holds (issue 7): alerts with their triage events,
//! the review queue of aberration alarms, and the response clock of cases.

use chainbreak_core::model::AlertState;
use jiff::Timestamp;
use serde::Serialize;

chainbreak_core::vocabulary!(
    /// What raised an alert.
    AlertKind {
        /// A reviewer escalated an aberration alarm of a series.
        Aberration = "aberration",
        /// A sentinel point stopped reporting.
        SilentSentinel = "silent_sentinel",
        /// A person's positive test opened a suspected case.
        PositivePerson = "positive_person",
        /// A pooled test (混采) was positive: its members are to be retested.
        PooledPositive = "pooled_positive",
        /// An environment sample was positive (for the goods trace).
        EnvironmentPositive = "environment_positive",
        /// A goods or cold-chain sample was positive (for the goods trace).
        GoodsPositive = "goods_positive",
        /// The supplier suspension list changed: a plant's imports suspended, or its suspension
        /// moved by a later-counted earlier positive.
        SupplierSuspension = "supplier_suspension",
        /// A quarantine facility's 7-day forecast needs more rooms than it has.
        FacilityShortage = "facility_shortage",
        /// Raised by a person.
        Manual = "manual"
    }
);

chainbreak_core::vocabulary!(
    /// How a closed alert ended.
    AlertOutcome {
        /// A real event, handled.
        Confirmed = "confirmed",
        /// Nothing behind it.
        FalseAlarm = "false_alarm",
        /// Another alert covers it.
        Duplicate = "duplicate",
        /// Resolved without being an event (a sentinel back to reporting...).
        Resolved = "resolved"
    }
);

/// An alert: raised by a trigger, an aberration or a person, owned by a unit, moved through
/// triage (`new → acknowledged → investigating → closed` with an outcome).
///
/// An alert lies in its area, at its place (by the place's area) or with its person (by their
/// residence): inside a jurisdiction if any of them is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    /// Assigned by the store (ignored when raised).
    pub id: i64,
    pub kind: AlertKind,
    pub state: AlertState,
    /// What makes two alerts one: raising an alert whose key exists does nothing.
    pub key: String,
    pub summary: String,
    pub owner_unit: Option<String>,
    pub area_id: Option<String>,
    pub place_id: Option<String>,
    pub person_id: Option<String>,
    /// What it is about (a case, a pool, a lab test, a series...).
    pub subject: Option<String>,
    /// Details as JSON text (their shape belongs to the application layer).
    #[serde(skip)]
    pub details: String,
    pub outcome: Option<AlertOutcome>,
    pub raised_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One step of an alert's triage (its raising included: `from` is then `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertEvent {
    /// Assigned by the store (ignored when written).
    pub seq: i64,
    pub alert_id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub from: Option<AlertState>,
    pub to: AlertState,
    pub owner_unit: Option<String>,
    pub outcome: Option<AlertOutcome>,
    pub note: Option<String>,
}

/// Which alerts a page holds (every given field must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    pub kind: Option<AlertKind>,
    pub state: Option<AlertState>,
    pub owner_unit: Option<String>,
    /// Only alerts not closed.
    pub open: bool,
}

chainbreak_core::vocabulary!(
    /// Where an aberration alarm stands in the review queue.
    ReviewStatus {
        Pending = "pending", Escalated = "escalated", Dismissed = "dismissed"
    }
);

/// An aberration alarm waiting for a reviewer: one per series and period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewItem {
    /// Assigned by the store (ignored when written).
    pub id: i64,
    /// The series' key (`area/feed/category/frequency`); with `period`, what makes two items one.
    pub series: String,
    pub area_id: Option<String>,
    pub feed: String,
    pub category: Option<String>,
    /// `daily` or `weekly`.
    pub frequency: String,
    /// The period's first day (`YYYY-MM-DD`).
    pub period: String,
    /// The detection method that raised it (`ears_c2`, `farrington_noufaily`...).
    pub method: String,
    pub observed: f64,
    pub expected: Option<f64>,
    pub upperbound: f64,
    /// How far above the bound: `(observed − upperbound) / max(upperbound, 1)`; the queue is
    /// ranked by it, highest first.
    pub score: f64,
    pub status: ReviewStatus,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub reason: Option<String>,
    /// The alert it was escalated to.
    pub alert_id: Option<i64>,
    pub created_at: Timestamp,
}

/// A reviewer's decision on a review item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewDecision {
    /// [`ReviewStatus::Escalated`] or [`ReviewStatus::Dismissed`].
    pub status: ReviewStatus,
    pub actor: String,
    pub reason: Option<String>,
    pub alert_id: Option<i64>,
    pub at: Timestamp,
}

/// One item of a case's response clock (DESIGN.md §4): `stop` is due within `limit_hours` of
/// `start`. `started_at` is empty until the start event happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockRow {
    pub case_id: String,
    /// The profile's item name (`case_reported`...).
    pub item: String,
    pub start_event: String,
    pub stop_event: String,
    pub limit_hours: u32,
    pub started_at: Option<Timestamp>,
    pub due_at: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
}

/// The last report of a sentinel point's feed (category ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentinelLast {
    pub place_id: String,
    pub feed: String,
    pub area_id: Option<String>,
    /// `YYYY-MM-DD`.
    pub last_date: String,
}
