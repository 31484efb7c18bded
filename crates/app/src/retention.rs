//! Retention: location data older than the profile allows is deleted, and the deletion is
//! audited.
//!
//! `[retention]` in the profile gives, per record type, how long it is kept: `visit_days` for
//! venue check-ins (counted from when the visit ended, or began when it has no end) and
//! `location_days` for location pings. [`purge`] deletes what has expired in one batch, with
//! one `purge` audit record per record type that lost rows, and the store logs `Delete`
//! changes so that engines holding the rows in memory drop them. `chainbreak purge` runs it
//! once; `chainbreak serve` runs it on start and then every hour.

use chainbreak_core::profile::Retention;
use chainbreak_store::{Entity, Store};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::AppError;
use crate::accounts::Actor;

/// What a purge deleted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurgeReport {
    /// Visits deleted (they ended before `visits_before`).
    pub visits: u64,
    pub visits_before: Timestamp,
    /// Pings deleted (taken before `pings_before`).
    pub pings: u64,
    pub pings_before: Timestamp,
    /// The store's change sequence after the purge.
    pub last_seq: u64,
}

fn days_before(now: Timestamp, days: u32, field: &'static str) -> Result<Timestamp, AppError> {
    let out_of_range = |e: jiff::Error| AppError::InvalidArgument {
        argument: field,
        message: format!("{days} days before {now} is out of range: {e}"),
    };
    // Whole seconds: the store keeps instants in seconds.
    let before = now.checked_sub(SignedDuration::from_hours(i64::from(days) * 24)).map_err(out_of_range)?;
    Timestamp::from_second(before.as_second()).map_err(out_of_range)
}

/// Deletes the visits and pings older than `retention` allows at `now`, for `actor`.
pub fn purge(
    store: &mut dyn Store,
    retention: &Retention,
    actor: &Actor,
    now: Timestamp,
) -> Result<PurgeReport, AppError> {
    let visits_before = days_before(now, retention.visit_days, "retention.visit_days")?;
    let pings_before = days_before(now, retention.location_days, "retention.location_days")?;
    let mut batch = store.begin(now)?;
    let visits = batch.purge_before(Entity::Visit, visits_before)?;
    let pings = batch.purge_before(Entity::Ping, pings_before)?;
    for (entity, count, before, days) in
        [("visit", visits, visits_before, retention.visit_days), ("ping", pings, pings_before, retention.location_days)]
    {
        if count > 0 {
            let record = format!("{count} rows older than {before} (retention {days} days)");
            batch.append_audit(&actor.audit(now, "purge", entity, &record))?;
        }
    }
    let last_seq = batch.commit()?;
    tracing::info!(visits, pings, %visits_before, %pings_before, "retention purge");
    Ok(PurgeReport { visits, visits_before, pings, pings_before, last_seq })
}
