//! What the goods and services side of the store holds (issue 10): the response recorded for
//! each positive goods or environment sample, the positives counted at foreign plants and the
//! supplier suspension list, and service requests in controlled zones with their events.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

/// The response to one positive sample, recorded once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoodsResponseRow {
    /// The sample: `lab_test:<id>`, or a sentinel report's key.
    pub id: String,
    /// `goods` or `environment`.
    pub subject_kind: String,
    /// The batch, or the sampled place.
    pub subject: String,
    pub positive_at: Timestamp,
    /// Where it lies for scoped reads (the sampled place, or the first place reached); a place id.
    pub place_id: Option<String>,
    /// The response as JSON text (its shape belongs to the application layer).
    #[serde(skip)]
    pub response: String,
    pub created_at: Timestamp,
}

/// A positive sample counted at a foreign plant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PlantPositive {
    pub plant: String,
    pub sample: String,
    pub day: Date,
}

/// One entry of the supplier suspension list: the `nth` positive at `plant` suspends its
/// imports from `from` until (not including) `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuspensionRow {
    pub plant: String,
    pub nth: u32,
    pub from: Date,
    pub until: Date,
    /// The positive sample it follows.
    pub sample: String,
    pub updated_at: Timestamp,
}

/// One event of a service request as stored: the engine's event as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestEventRow {
    /// Assigned by the store (ignored when written).
    pub seq: i64,
    pub request_id: String,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
}

/// A service request as its last event left it, with the columns lists filter on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRow {
    pub id: String,
    pub person_id: String,
    pub kind: String,
    pub priority: String,
    /// `open`, `in_progress` or `closed`.
    pub state: String,
    pub owner_unit: String,
    /// Where it sits after its recorded escalations.
    pub unit: String,
    pub due: Timestamp,
    pub escalation: u32,
    pub outcome: Option<String>,
    pub filed_at: Timestamp,
    pub updated_at: Timestamp,
    pub events: u32,
    /// The request as the engine left it, as JSON text.
    #[serde(skip)]
    pub request: String,
}

/// Which service requests a page holds (every given field must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only those not closed.
    pub open: bool,
    pub person_id: Option<String>,
    /// Only those sitting at this unit now.
    pub unit: Option<String>,
    /// Only those due before this instant.
    pub due_before: Option<Timestamp>,
}
