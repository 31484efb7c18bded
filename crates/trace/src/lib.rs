//! The trace engine: an in-memory co-presence index ([`index`]) and the contact rules that
//! run on it ([`venue`]: the plain venue-overlap rule); [`groups`]: who shares a household,
//! class, team or gathering.
//!
//! Synchronous, deterministic and free of IO: the application layer feeds the index from the
//! store's bulk scan and change feed, and turns keys back into ids. Results do not depend on
//! the order visits arrived in.

pub mod groups;
pub mod index;
pub mod venue;

pub use groups::{Group, GroupHit, Groups};
pub use index::{EPOCH, Index, IndexBuilder, Stay};
pub use venue::{Contact, Exposure, IndexPerson, Link, Traced, VenueOverlap};
