//! chainbreak's core: the domain model, time and the injected clock, policy profiles and the
//! stable error codes. Synchronous, deterministic, free of IO (profiles are parsed from text
//! handed in; reading the file is the caller's business or a thin helper).

pub mod access;
pub mod error;
pub mod model;
pub mod profile;
pub mod time;

pub use error::{ErrorCode, Location};
