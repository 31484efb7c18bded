//! The application layer: owns the store (and, as they arrive, the engines), and carries out
//! what the CLI and the server ask: initialise a deployment, import files, ingest batches.
//! Knows neither HTTP nor terminals: progress is reported through [`Progress`].

pub mod accounts;
pub mod alerts;
pub mod drill;
pub mod episodes;
pub mod error;
pub mod goods;
pub mod import;
pub mod ingest;
pub mod overview;
pub mod persons;
pub mod proposals;
pub mod pseudonym;
pub mod public;
pub mod reads;
pub mod requests;
pub mod retention;
pub mod surveillance;
pub mod trace;
pub mod triggers;
pub mod zones;

use std::path::Path;
use std::sync::Arc;

use chainbreak_core::profile::Profile;
use chainbreak_core::time::{Calendar, Clock};
use chainbreak_store::Store;
use chainbreak_store_sqlite::{InitOptions, SqliteStore};

pub use error::AppError;

/// Receives progress of long operations (the CLI draws a bar; the server ignores it).
pub trait Progress: Send {
    /// The total amount of work, in `unit`s (e.g. bytes of the input file).
    fn start(&mut self, total: u64, unit: &str);
    /// Work done so far, in the same unit.
    fn set(&mut self, done: u64);
    /// The work is over.
    fn finish(&mut self, message: &str);
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _: u64, _: &str) {}
    fn set(&mut self, _: u64) {}
    fn finish(&mut self, _: &str) {}
}

/// Creates a new deployment store at `path`.
pub fn init(path: &Path, time_zone: &str, profile: &str, clock: &dyn Clock) -> Result<SqliteStore, AppError> {
    Calendar::new(time_zone).map_err(|e| AppError::InvalidArgument {
        argument: "--tz",
        message: format!("`{time_zone}` is not an IANA time zone: {e}"),
    })?;
    Profile::load(profile)?;
    let opts = InitOptions {
        time_zone: time_zone.to_string(),
        // A built-in by name; a file by its absolute path, so that the deployment keeps using
        // that file (not a built-in that happens to share its name).
        profile: if Profile::builtin(profile).is_some() {
            profile.to_string()
        } else {
            std::fs::canonicalize(profile).map_err(|e| AppError::io(Path::new(profile), e))?.display().to_string()
        },
        area_levels: chainbreak_core::model::DEFAULT_AREA_LEVELS.iter().map(|s| s.to_string()).collect(),
        created_at: clock.now(),
    };
    Ok(SqliteStore::create(path, &opts)?)
}

/// Opens an existing deployment store.
pub fn open(path: &Path) -> Result<SqliteStore, AppError> {
    Ok(SqliteStore::open(path)?)
}

/// A deployment: its store, clock, calendar and profile, and its pseudonymisation key (from
/// the deployment's configuration, never from the store).
pub struct Deployment {
    pub store: Box<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub calendar: Calendar,
    pub profile: Profile,
    pub pseudonymizer: Option<pseudonym::Pseudonymizer>,
    /// Confirm new contact proposals that need no person's confirmation as they are recorded.
    /// Off by default; DESIGN.md §4a allows it for simulation and the demo only, so no
    /// production path (server, CLI) sets it.
    pub auto_confirm: bool,
    /// The trace engine, built on first use and kept current with the change feed.
    tracer: Option<trace::Tracer>,
    /// The measure episodes, rebuilt from their events on first use.
    pub(crate) closed_loop: Option<episodes::ClosedLoop>,
}

impl Deployment {
    /// Opens the deployment kept in `store`, with the profile named in its settings.
    pub fn new(store: Box<dyn Store>, clock: Arc<dyn Clock>) -> Result<Self, AppError> {
        let meta = store.meta()?;
        let calendar = Calendar::new(&meta.time_zone).map_err(|e| AppError::InvalidArgument {
            argument: "time_zone",
            message: format!("the store's zone `{}` is unknown: {e}", meta.time_zone),
        })?;
        let profile = Profile::load(&meta.profile)?;
        Ok(Deployment {
            store,
            clock,
            calendar,
            profile,
            pseudonymizer: None,
            auto_confirm: false,
            tracer: None,
            closed_loop: None,
        })
    }

    /// The trace engine, current with the store: built on first use, then brought up to the
    /// change feed (new visits merged in; deletions and merges rebuild it).
    pub fn tracer(&mut self) -> Result<&trace::Tracer, AppError> {
        match &mut self.tracer {
            Some(t) => {
                let refreshed = t.refresh(&*self.store, &self.profile)?;
                if refreshed != trace::Refresh::Current {
                    tracing::info!(?refreshed, "trace index refreshed");
                }
            }
            None => {
                let (t, stats) = trace::Tracer::load(&*self.store, &self.profile)?;
                tracing::info!(
                    visits = stats.visits,
                    seconds = stats.load_seconds,
                    bytes = stats.index_bytes,
                    "trace index built"
                );
                self.tracer = Some(t);
            }
        }
        Ok(self.tracer.as_ref().expect("set above"))
    }

    /// The change `seq` the trace engine is current to, without refreshing it (none before
    /// its first use).
    pub fn tracer_seq(&self) -> Option<u64> {
        self.tracer.as_ref().map(trace::Tracer::seq)
    }
}
