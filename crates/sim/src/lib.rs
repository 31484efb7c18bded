//! The simulator: a deterministic synthetic city in which an outbreak spreads, producing the
//! feeds a real deployment receives, in the import formats of FORMATS.md.
//!
//! The engine is synchronous and deterministic: every random draw comes from a PCG stream
//! seeded by a hash of (seed, purpose, person or place, day), so the output is the same byte
//! for byte whatever the number of threads (rayon only splits work over persons; chunks are
//! merged in order). The generator does no IO; [`write`] writes through `chainbreak-formats`.
//!
//! - [`params`]: the structural knobs of the city ([`CityParams`]).
//! - [`city`]: the city (areas, places, persons, households, workplaces, schools).
//! - [`day`]: a person's day (stays at places, rides on trips), recorded as check-ins.
//! - [`pathogen`]: pathogen profiles (TOML, two built in).
//! - [`outbreak`]: transmission, observations (cases, lab tests, sentinels), ground truth,
//!   stepping and interventions.
//! - [`write`]: writing the city and its days as import files.

pub mod city;
pub mod day;
pub mod outbreak;
pub mod params;
pub mod pathogen;
pub(crate) mod rng;
pub mod write;

pub use city::City;
pub use outbreak::Outbreak;
pub use params::CityParams;
pub use pathogen::Pathogen;

/// Everything that can go wrong in the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A parameter is out of range (named, with the accepted range), found before any work.
    #[error("invalid parameter `{field}`: {message}")]
    Param { field: String, message: String },
    /// A pathogen profile failed to parse or validate.
    #[error("pathogen profile {source_name}: {message}")]
    Profile { source_name: String, message: String },
    /// An intervention or step that the simulation's state does not allow.
    #[error("{0}")]
    State(String),
    /// An output file could not be written.
    #[error("cannot write {file}: {message}")]
    Write { file: String, message: String },
}
