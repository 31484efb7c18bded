//! The trace engine: an in-memory co-presence index ([`index`]) and the contact rules that
//! run on it ([`venue`]: the plain venue-overlap rule); [`groups`]: who shares a household,
//! class, team or gathering; [`trips`]: who rode with whom by the seat rules; [`grid`]: who
//! shared a location cell (pings made into cell stays, indexed like visits).
//!
//! Synchronous, deterministic and free of IO: the application layer feeds the index from the
//! store's bulk scan and change feed, and turns keys back into ids. Results do not depend on
//! the order visits arrived in.

pub mod cumulative;
pub mod grid;
pub mod groups;
pub mod index;
mod sweep;
pub mod trips;
pub mod venue;

pub use grid::{Grid, GridBuilder};
pub use groups::{Group, GroupHit, Groups};
pub use index::{EPOCH, Index, IndexBuilder, Stay};
pub use trips::{SeatRules, TripHit, TripInfo, Trips};
pub use venue::{Contact, Exposure, IndexPerson, Link, Traced, VenueOverlap};
