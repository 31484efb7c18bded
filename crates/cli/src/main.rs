//! `chainbreak`: the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chainbreak_app::import::{ImportOptions, import_file};
use chainbreak_app::pseudonym::Pseudonymizer;
use chainbreak_app::{AppError, Progress};
use chainbreak_core::model::Classification;
use chainbreak_core::profile::Profile;
use chainbreak_core::time::{Clock, SystemClock};
use chainbreak_formats::{Format, Kind};
use chainbreak_store::Store;
use clap::{Parser, Subcommand, ValueEnum};

mod alerts;
mod contacts;
mod demo;
mod detect;
mod episodes;
mod goods;
mod simulate;
mod trace;
mod zones;

#[derive(Parser)]
#[command(name = "chainbreak", version = version(), about = "Outbreak surveillance and response engine")]
struct Cli {
    /// Log format for structured logs (to stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Run on a demo clock that starts at this instant (RFC 3339 or Unix seconds) instead of
    /// the system clock: for the sample, demos and replays of past data.
    #[arg(long, global = true, value_parser = parse_instant)]
    demo_clock: Option<jiff::Timestamp>,
    /// How many times faster than real time the demo clock runs.
    #[arg(long, global = true, default_value_t = 1.0, requires = "demo_clock")]
    demo_speed: f64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new deployment store.
    Init {
        #[arg(long, env = "CHAINBREAK_DB")]
        db: PathBuf,
        /// The deployment's IANA time zone (calendar days are counted in it).
        #[arg(long, default_value = "Asia/Shanghai")]
        tz: String,
        /// A built-in profile name or a path to a profile TOML file.
        #[arg(long, default_value = "cn-2022-9th")]
        profile: String,
    },
    /// Import a file (CSV, JSON Lines, or GeoJSON for areas) into the store, all or nothing.
    Import {
        /// What the file holds.
        #[arg(value_parser = parse_kind)]
        kind: Kind,
        file: PathBuf,
        #[arg(long, env = "CHAINBREAK_DB")]
        db: PathBuf,
        /// csv, jsonl or geojson (default: from the file's extension).
        #[arg(long, value_parser = parse_format)]
        format: Option<Format>,
        /// Register persons and places that visits name but the store lacks, by id alone.
        #[arg(long)]
        register_unknown: bool,
        /// Import the valid records and write the invalid ones, with reasons, to a rejects file.
        #[arg(long)]
        skip_invalid: bool,
        /// Where rejected records go (default: FILE.rejects.csv).
        #[arg(long)]
        rejects: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// The deployment's pseudonymisation key (person references such as `phone:...` become
        /// pseudonymous ids); never stored in the database.
        #[arg(long, env = "CHAINBREAK_PSEUDONYM_KEY_FILE")]
        pseudonym_key_file: Option<PathBuf>,
        /// Arrivals, cases and lab tests: the unit that owns the measures proposed for arrivals
        /// and the isolations of reported cases and of the suspected cases positives open.
        #[arg(long, default_value = "intake")]
        owner_unit: String,
        /// Lab tests: do not trace the suspected cases that positives open (leave them to
        /// `chainbreak trace --record`), e.g. when loading a backlog.
        #[arg(long)]
        no_trace: bool,
        /// Cases and lab tests: do not propose zones for the confirmed and asymptomatic cases,
        /// nor for the suspected cases positives open (leave them to `chainbreak zones propose
        /// --record`), e.g. when loading a backlog.
        #[arg(long)]
        no_zones: bool,
    },
    /// A live demo: a synthetic city with an outbreak, replayed through the real API on an
    /// accelerated clock into a fresh store, with the dashboard and the public page served.
    Demo {
        /// The city's people.
        #[arg(long, default_value_t = 20_000)]
        persons: u32,
        /// The outbreak's days.
        #[arg(long, default_value_t = 60)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Simulated seconds per real second (8640: a day every 10 s).
        #[arg(long, default_value_t = 8640.0)]
        speed: f64,
        /// Where the demo's store and city files go (replaced).
        #[arg(long, default_value = "chainbreak-demo")]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// The policy profile.
        #[arg(long, default_value = "cn-2022-9th")]
        profile: String,
    },
    /// Serve the API on 127.0.0.1.
    Serve {
        #[arg(long, env = "CHAINBREAK_DB")]
        db: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// The deployment's pseudonymisation key (see `import`).
        #[arg(long, env = "CHAINBREAK_PSEUDONYM_KEY_FILE")]
        pseudonym_key_file: Option<PathBuf>,
        /// Run the retention purge on start and then every this many minutes (0: never).
        #[arg(long, default_value_t = 60)]
        purge_every_minutes: u64,
        /// Run aberration detection over the sentinel feeds every this many minutes, first a
        /// minute after start (0: never; then `chainbreak review run`).
        #[arg(long, default_value_t = 60)]
        detect_every_minutes: u64,
    },
    /// Delete the location data older than the profile's retention allows (audited). `serve`
    /// does this every hour; run this from a scheduler when no server runs.
    Purge {
        #[arg(long, env = "CHAINBREAK_DB")]
        db: PathBuf,
        /// Who runs it, for the audit trail (default: cli:$USER).
        #[arg(long)]
        actor: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Find the contacts of index persons or cases, with the evidence for each.
    Trace(TraceArgs),
    /// Contact proposals (stored by `trace --record`): list, confirm or reject (audited), and
    /// bring them up to the store after late visits or changed case dates.
    Contacts {
        #[arg(long, env = "CHAINBREAK_DB", global = true)]
        db: Option<PathBuf>,
        #[command(subcommand)]
        command: contacts::ContactsCommand,
    },
    /// Closed-loop management: measure episodes (list, show, open, transition; audited).
    Episodes {
        #[arg(long, env = "CHAINBREAK_DB", global = true)]
        db: Option<PathBuf>,
        #[command(subcommand)]
        command: episodes::EpisodesCommand,
    },
    /// Alerts and their triage (list, show, raise, ack, investigate, close, comment; audited).
    Alerts {
        #[arg(long, env = "CHAINBREAK_DB", global = true)]
        db: Option<PathBuf>,
        #[command(subcommand)]
        command: alerts::AlertsCommand,
    },
    /// The review queue of aberration alarms: run detection, list, escalate, dismiss.
    Review {
        #[arg(long, env = "CHAINBREAK_DB", global = true)]
        db: Option<PathBuf>,
        #[command(subcommand)]
        command: alerts::ReviewCommand,
    },
    /// Risk zones: proposed from cases by the profile's rules, confirmed, lowered, lifted, published.
    Zones {
        #[arg(long, env = "CHAINBREAK_DB", global = true)]
        db: Option<PathBuf>,
        #[command(subcommand)]
        command: zones::ZonesCommand,
    },
    /// Imported cold-chain and other high-risk goods: a batch traced both ways, the responses to
    /// positive samples, the supplier suspension list.
    Goods {
        #[arg(long, env = "CHAINBREAK_DB", global = true)]
        db: Option<PathBuf>,
        #[command(subcommand)]
        command: goods::GoodsCommand,
    },
    /// Service requests of residents in controlled zones: filed, taken on, escalated when late,
    /// closed only with an outcome.
    Requests {
        #[arg(long, env = "CHAINBREAK_DB", global = true)]
        db: Option<PathBuf>,
        #[command(subcommand)]
        command: goods::RequestsCommand,
    },
    /// Sentinel feeds: silent sentinels, count series with aberration detection.
    Sentinels {
        #[arg(long, env = "CHAINBREAK_DB", global = true)]
        db: Option<PathBuf>,
        #[command(subcommand)]
        command: alerts::SentinelsCommand,
    },
    /// Quarantine facilities: rooms, occupancy and forecast, disinfection.
    Facilities {
        #[arg(long, env = "CHAINBREAK_DB", global = true)]
        db: Option<PathBuf>,
        #[command(subcommand)]
        command: episodes::FacilitiesCommand,
    },
    /// The deployment's pseudonymisation key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Policy profiles.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// Duplicate persons: merge and unmerge, with history.
    Person {
        #[command(subcommand)]
        command: PersonCommand,
    },
    /// User accounts and API tokens (every change is audited).
    User {
        #[arg(long, env = "CHAINBREAK_DB", global = true)]
        db: Option<PathBuf>,
        /// Who is acting, for the audit trail (default: cli:$USER).
        #[arg(long, global = true)]
        actor: Option<String>,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Generate a synthetic city (and outbreak) as import files.
    Simulate {
        #[command(subcommand)]
        command: simulate::SimulateCommand,
    },
    /// Aberration detection on count series from a CSV file, as R's surveillance 1.20.3 computes
    /// it: EARS C1-C3 (earsC), Farrington (farringtonFlexible), CUSUM (algo.cusum).
    Detect(detect::DetectArgs),
    /// The reproduction number of Cori et al. 2013 from an incidence CSV file, as EpiEstim
    /// 2.2-4's estimate_R computes it (sliding windows).
    Rt(detect::RtArgs),
    /// Read the audit trail (JSON Lines, oldest first).
    Audit {
        #[arg(long, env = "CHAINBREAK_DB")]
        db: PathBuf,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        entity: Option<String>,
        #[arg(long)]
        record: Option<String>,
        /// Only records after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. Without --password-stdin a random password is made and printed once.
    Add {
        name: String,
        /// admin, commander, epidemiologist, tracer, community_worker, facility_manager, lab, viewer
        #[arg(long)]
        role: String,
        /// The unit the user works for.
        #[arg(long)]
        unit: String,
        /// The area (id) whose subtree the user may see and change.
        #[arg(long)]
        jurisdiction: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Disable a user (their tokens stop working too).
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Set a new password (from stdin, or a random one printed once).
    ResetPassword {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Revoke an API token by its id (printed when it was issued).
    RevokeToken {
        #[arg(long)]
        id: i64,
    },
    /// Issue an API token (printed once; only its hash is kept).
    Token {
        name: String,
        #[arg(long)]
        label: String,
        /// Valid for this many days (default: until revoked).
        #[arg(long)]
        days: Option<u32>,
    },
}

#[derive(clap::Args)]
struct TraceArgs {
    #[arg(long, env = "CHAINBREAK_DB")]
    db: PathBuf,
    /// A case to trace (repeatable): its person, from the start of its infectious period.
    #[arg(long = "case")]
    cases: Vec<String>,
    /// A file of case ids, one per line.
    #[arg(long)]
    cases_file: Option<PathBuf>,
    /// An index person (repeatable), traced from --from.
    #[arg(long = "person")]
    persons: Vec<String>,
    /// A file of index person ids, one per line.
    #[arg(long)]
    persons_file: Option<PathBuf>,
    /// The contact rule: `profile` (the policy profile's settings per place kind: close,
    /// co-exposed and secondary contacts, with what a person must confirm) or `venue-overlap`
    /// (every place a close-contact setting, one least overlap).
    #[arg(long, value_enum, default_value_t = TraceRule::Profile)]
    rule: TraceRule,
    /// The start of the window (required for --person; for cases it replaces the start of
    /// their infectious period).
    #[arg(long, value_parser = parse_instant)]
    from: Option<jiff::Timestamp>,
    /// The end of the window (isolation); default: the end of the data.
    #[arg(long, value_parser = parse_instant)]
    to: Option<jiff::Timestamp>,
    /// The least overlap that is an exposure (`15m`, `1h`, `0s`; venue-overlap rule).
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    min_overlap: jiff::SignedDuration,
    /// 1: close contacts; 2: also secondary contacts.
    #[arg(long, default_value_t = 2)]
    depth: u8,
    #[arg(long, value_enum, default_value_t = TraceFormat::Table)]
    format: TraceFormat,
    /// Print on stderr, as one JSON line, the load-and-index time and the query times apart.
    #[arg(long)]
    timings: bool,
    /// Run the query this many times on the loaded index (warm timings); print the last.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Trace under this profile (a built-in name or a path) instead of the deployment's.
    #[arg(long)]
    profile: Option<String>,
    /// Keep the index in this snapshot file: load it from there when it matches the store
    /// and profile (then catch up with the change feed), and write it back when it was stale.
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// Store the result as contact proposals for tracers to confirm or reject (`chainbreak
    /// contacts`), recomputed by `contacts recompute` (and by the server) as data comes in.
    #[arg(long, conflicts_with_all = ["profile", "snapshot", "repeat"])]
    record: bool,
    /// Who records, for the audit trail (with --record; default: cli:$USER).
    #[arg(long, requires = "record")]
    actor: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum TraceRule {
    Profile,
    VenueOverlap,
}

#[derive(Clone, Copy, ValueEnum)]
enum TraceFormat {
    Json,
    Csv,
    Table,
    /// JSON with the counts and the hash of each tier, without the contacts (for large runs).
    Summary,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Write a new random key (256 bits, base64) to FILE, readable by its owner only. Keep it
    /// with the deployment's configuration and back it up: a new key gives new pseudonyms.
    Generate { file: PathBuf },
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// List the built-in profiles.
    List,
    /// Validate a profile (a built-in name or a path).
    Check { profile: String },
    /// Print a profile as TOML.
    Show { profile: String },
}

#[derive(Subcommand)]
enum PersonCommand {
    /// Merge a duplicate into a survivor.
    Merge {
        #[arg(long, env = "CHAINBREAK_DB")]
        db: PathBuf,
        #[arg(long)]
        survivor: String,
        #[arg(long)]
        duplicate: String,
        #[arg(long)]
        reason: String,
        /// Who decided the merge.
        #[arg(long)]
        actor: String,
    },
    /// Undo a merge.
    Unmerge {
        #[arg(long, env = "CHAINBREAK_DB")]
        db: PathBuf,
        #[arg(long)]
        merge_id: i64,
        /// Who undoes it, for the audit trail (default: cli:$USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Show a person's merge history.
    History {
        #[arg(long, env = "CHAINBREAK_DB")]
        db: PathBuf,
        person: String,
    },
}

fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
        Ok((line.trim_end_matches(['\r', '\n']).to_string(), false))
    } else {
        Ok((chainbreak_app::accounts::generate_password()?, true))
    }
}

pub(crate) fn cli_actor(actor: Option<String>, via: &str) -> chainbreak_app::accounts::Actor {
    let name = actor.unwrap_or_else(|| format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into())));
    chainbreak_app::accounts::Actor { name, via: format!("chainbreak {via}"), reason: None }
}

fn parse_duration(s: &str) -> Result<jiff::SignedDuration, String> {
    s.parse::<jiff::SignedDuration>().map_err(|e| format!("`{s}` is not a duration like 15m, 1h or 90s: {e}"))
}

fn parse_instant(s: &str) -> Result<jiff::Timestamp, String> {
    chainbreak_core::time::parse_instant(s)
}

fn version() -> String {
    format!("{} (SQLite {})", env!("CARGO_PKG_VERSION"), chainbreak_store_sqlite::SqliteStore::sqlite_version())
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    s.parse::<Kind>().map_err(|e| e.to_string())
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse::<Format>().map_err(|e| e.to_string())
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn start(&mut self, total: u64, _unit: &str) {
        self.0.set_length(total);
        self.0.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
            )
            .expect("valid template"),
        );
    }
    fn set(&mut self, done: u64) {
        self.0.set_position(done);
    }
    fn finish(&mut self, message: &str) {
        self.0.finish_and_clear();
        tracing::debug!("{message}");
    }
}

/// Keeps the memory a query frees for the next one: glibc maps big allocations (always those
/// above 32 MiB: a city's contacts, the sweeps' lists) apart and hands them back to the kernel
/// when freed, so every query faulted their pages in again (at a million persons ~12,000 faults
/// a query, 5-10% of its time); from the heap they are reused. The peak memory is no higher.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: `mallopt` only sets glibc's allocator parameters, here before any other thread
    // runs; a parameter it refuses leaves the default.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    keep_freed_memory();
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match run(cli.command, cli.demo_clock, cli.demo_speed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e
                .downcast_ref::<AppError>()
                .map(AppError::code)
                .or_else(|| e.downcast_ref::<chainbreak_store::StoreError>().map(|s| s.code()))
                .or_else(|| e.downcast_ref::<chainbreak_formats::FormatError>().map(|f| f.code));
            match code {
                Some(code) => eprintln!("error[{code}]: {e:#}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHAINBREAK_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(command: Command, demo_clock: Option<jiff::Timestamp>, demo_speed: f64) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = match demo_clock {
        Some(start) if demo_speed.is_finite() && demo_speed > 0.0 => {
            Arc::new(chainbreak_core::time::AcceleratedClock::new(start, demo_speed))
        }
        Some(_) => anyhow::bail!("--demo-speed is a positive number"),
        None => Arc::new(SystemClock),
    };
    match command {
        Command::Init { db, tz, profile } => {
            let store = chainbreak_app::init(&db, &tz, &profile, &*clock)?;
            let meta = store.meta()?;
            println!(
                "initialised {} (zone {}, profile {}, schema {})",
                db.display(),
                meta.time_zone,
                meta.profile,
                meta.schema_version
            );
        }
        Command::Import {
            kind,
            file,
            db,
            format,
            register_unknown,
            skip_invalid,
            rejects,
            json,
            pseudonym_key_file,
            owner_unit,
            no_trace,
            no_zones,
        } => {
            let pseudonymizer = pseudonym_key_file.as_deref().map(Pseudonymizer::from_key_file).transpose()?;
            let mut store = chainbreak_app::open(&db)?;
            let actor = Some(cli_actor(None, "import"));
            // Lab results and sentinel reports trigger in the import's batch (suspected cases,
            // alerts), under the deployment's profile.
            let triggers =
                Some(chainbreak_app::triggers::Triggers::from_profile(&Profile::load(&store.meta()?.profile)?));
            let opts =
                ImportOptions { register_unknown, skip_invalid, rejects, format, actor, pseudonymizer, triggers };
            let mut bar = Bar(indicatif::ProgressBar::new(0));
            let mut report = import_file(&mut store, kind, &file, &opts, clock.now(), &mut bar)?;
            if kind == Kind::Visits || kind == Kind::Pings {
                let started = std::time::Instant::now();
                store.checkpoint()?;
                tracing::debug!(seconds = started.elapsed().as_secs_f64(), "checkpointed");
            }
            // Arrivals: the profile's measure for each origin, proposed for a person to confirm.
            let proposals = if kind == Kind::Arrivals && !report.arrivals.is_empty() {
                let mut dep = chainbreak_app::Deployment::new(Box::new(store), clock.clone())?;
                let actor = cli_actor(None, "import arrivals");
                Some(chainbreak_app::episodes::propose_arrivals(&mut dep, &actor, &report.arrivals, &owner_unit)?)
            } else {
                None
            };
            // Reported cases are isolated; excluded cases: the episodes that hang only on them
            // close, and their own isolation.
            let isolated = if kind == Kind::Cases && !report.cases.is_empty() {
                let store = chainbreak_app::open(&db)?;
                let mut dep = chainbreak_app::Deployment::new(Box::new(store), clock.clone())?;
                let actor = cli_actor(None, "import cases");
                Some(chainbreak_app::episodes::isolate_cases(&mut dep, &actor, &report.cases, &owner_unit)?)
            } else {
                None
            };
            let closed = if kind == Kind::Cases && !report.excluded_cases.is_empty() {
                let store = chainbreak_app::open(&db)?;
                let mut dep = chainbreak_app::Deployment::new(Box::new(store), clock.clone())?;
                let actor = cli_actor(None, "import cases");
                Some(chainbreak_app::episodes::exclude_sources(&mut dep, &actor, &report.excluded_cases)?)
            } else {
                None
            };
            // Lab results move the tested persons' episodes (each result recorded once).
            let moved = if kind == Kind::LabTests && !report.lab_tests.is_empty() {
                let store = chainbreak_app::open(&db)?;
                let mut dep = chainbreak_app::Deployment::new(Box::new(store), clock.clone())?;
                let actor = cli_actor(None, "import lab_tests");
                Some(chainbreak_app::episodes::record_lab_results(&mut dep, &actor, &report.lab_tests)?)
            } else {
                None
            };
            // Confirmed and asymptomatic cases propose their zones at once, for a commander to
            // decide (DESIGN.md §4a).
            if kind == Kind::Cases && !no_zones {
                let ids: Vec<String> = report
                    .cases
                    .iter()
                    .filter(|c| matches!(c.classification, Classification::Confirmed | Classification::Asymptomatic))
                    .map(|c| c.id.clone())
                    .collect();
                if !ids.is_empty() {
                    let store = chainbreak_app::open(&db)?;
                    let mut dep = chainbreak_app::Deployment::new(Box::new(store), clock.clone())?;
                    let actor = cli_actor(None, "import cases");
                    let recorded = chainbreak_app::zones::record(&mut dep, &actor, None, &ids)?;
                    report.triggered.zones = Some(chainbreak_app::triggers::ZonesProposed {
                        proposed: recorded.proposed,
                        updated: recorded.updated,
                    });
                }
            }
            // The suspected cases that positives opened are isolated like reported cases, and
            // traced at once: their contacts are proposed for tracers to confirm.
            let isolated = if kind == Kind::LabTests && !report.triggered.cases.is_empty() {
                let store = chainbreak_app::open(&db)?;
                let mut dep = chainbreak_app::Deployment::new(Box::new(store), clock.clone())?;
                let actor = cli_actor(None, "import lab_tests");
                let isolated =
                    chainbreak_app::episodes::isolate_cases(&mut dep, &actor, &report.triggered.cases, &owner_unit)?;
                let ids: Vec<String> = report.triggered.cases.iter().map(|c| c.id.clone()).collect();
                if !no_trace {
                    report.triggered.traced = Some(chainbreak_app::proposals::trace_cases(&mut dep, &actor, &ids)?);
                }
                if !no_zones {
                    let recorded = chainbreak_app::zones::record(&mut dep, &actor, None, &ids)?;
                    report.triggered.zones = Some(chainbreak_app::triggers::ZonesProposed {
                        proposed: recorded.proposed,
                        updated: recorded.updated,
                    });
                }
                Some(isolated)
            } else {
                isolated
            };
            // Positive goods and environment samples (lab results, cold-chain and environment
            // sentinel reports): traced at once, their places to seal, recall list and workers'
            // proposed measures recorded, the supplier suspension list brought up to date.
            if !report.triggered.samples.is_empty() {
                let store = chainbreak_app::open(&db)?;
                let mut dep = chainbreak_app::Deployment::new(Box::new(store), clock.clone())?;
                let actor = cli_actor(None, &format!("import {kind}"));
                let samples = std::mem::take(&mut report.triggered.samples);
                report.triggered.goods =
                    Some(chainbreak_app::goods::respond(&mut dep, &actor, None, &samples, &owner_unit)?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let rate = report.imported as f64 / report.seconds.max(1e-9);
                println!(
                    "imported {} {} from {} in {:.2} s ({:.0}/s); rejected {}{}; registered {} persons, {} places",
                    report.imported,
                    report.kind,
                    report.file,
                    report.seconds,
                    rate,
                    report.rejected,
                    report.rejects_file.as_ref().map(|f| format!(" (see {f})")).unwrap_or_default(),
                    report.registered_persons,
                    report.registered_places
                );
                if let Some(i) = isolated {
                    println!(
                        "cases: {} isolations opened, {} added to open isolations, {} already isolated for that case, \
                         {} deceased",
                        i.opened, i.added, i.known, i.deceased
                    );
                }
                if !report.triggered.suspected_cases.is_empty() || !report.triggered.alerts.is_empty() {
                    println!(
                        "triggered: {} suspected cases opened ({}), {} alerts raised",
                        report.triggered.suspected_cases.len(),
                        report.triggered.suspected_cases.join(", "),
                        report.triggered.alerts.len()
                    );
                }
                if let Some(n) = closed {
                    println!("episodes: {n} reasons from excluded cases withdrawn");
                }
                for g in report.triggered.goods.iter().flatten() {
                    println!(
                        "goods: {} — recall {} batches, seal {} places, {} workers proposed a measure, {} supplier \
                         suspensions changed (chainbreak goods response {})",
                        g.sample.id,
                        g.recall.len(),
                        g.places_to_seal.len(),
                        g.workers.len(),
                        g.suspensions.len(),
                        g.sample.id
                    );
                }
                if let Some(z) = &report.triggered.zones {
                    println!(
                        "zones: {} proposed, {} open zones with new reasons (chainbreak zones list --open)",
                        z.proposed.len(),
                        z.updated.len()
                    );
                }
                if let Some(t) = &report.triggered.traced {
                    let r = &t.recorded;
                    println!(
                        "traced: {} suspected cases; {} contacts proposed, {} updated, {} withdrawn, {} flagged{}",
                        t.traced.len(),
                        r.proposed,
                        r.updated,
                        r.withdrawn,
                        r.flagged,
                        if t.skipped.is_empty() {
                            String::new()
                        } else {
                            let why: Vec<String> = t.skipped.iter().map(|(c, why)| format!("{c}: {why}")).collect();
                            format!("; not traced: {}", why.join("; "))
                        }
                    );
                }
                if let Some(m) = moved {
                    println!(
                        "episodes: {} tests and {} linked tests recorded; {} converted to suspected cases, {} promoted to close contacts",
                        m.tests, m.linked, m.converted, m.promoted
                    );
                }
                if let Some(p) = proposals {
                    println!(
                        "arrivals: {} measures proposed, {} added to open episodes, {} without a measure for their origin",
                        p.proposed, p.added, p.without_measure
                    );
                }
            }
        }
        Command::Purge { db, actor, json } => {
            let store = chainbreak_app::open(&db)?;
            let mut deployment = chainbreak_app::Deployment::new(Box::new(store), clock)?;
            let now = deployment.clock.now();
            let retention = deployment.profile.retention.clone();
            let report =
                chainbreak_app::retention::purge(&mut *deployment.store, &retention, &cli_actor(actor, "purge"), now)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "purged {} visits that ended before {} and {} pings taken before {}",
                    report.visits, report.visits_before, report.pings, report.pings_before
                );
            }
        }
        Command::Trace(args) => trace::run(args, clock)?,
        Command::Contacts { db, command } => {
            let db = db.context("--db (or CHAINBREAK_DB) is required")?;
            contacts::run(&db, command, clock)?;
        }
        Command::Episodes { db, command } => {
            let db = db.context("--db (or CHAINBREAK_DB) is required")?;
            episodes::run(&db, command, clock)?;
        }
        Command::Alerts { db, command } => {
            let db = db.context("--db (or CHAINBREAK_DB) is required")?;
            alerts::run_alerts(&db, command, clock)?;
        }
        Command::Review { db, command } => {
            let db = db.context("--db (or CHAINBREAK_DB) is required")?;
            alerts::run_review(&db, command, clock)?;
        }
        Command::Zones { db, command } => {
            let db = db.context("--db (or CHAINBREAK_DB) is required")?;
            zones::run(&db, command, clock)?;
        }
        Command::Goods { db, command } => {
            let db = db.context("--db (or CHAINBREAK_DB) is required")?;
            goods::run(&db, command, clock)?;
        }
        Command::Requests { db, command } => {
            let db = db.context("--db (or CHAINBREAK_DB) is required")?;
            goods::run_requests(&db, command, clock)?;
        }
        Command::Sentinels { db, command } => {
            let db = db.context("--db (or CHAINBREAK_DB) is required")?;
            alerts::run_sentinels(&db, command, clock)?;
        }
        Command::Facilities { db, command } => {
            let db = db.context("--db (or CHAINBREAK_DB) is required")?;
            episodes::run_facilities(&db, command, clock)?;
        }
        Command::Key { command: KeyCommand::Generate { file } } => {
            chainbreak_app::pseudonym::generate_key_file(&file)?;
            println!("wrote a new pseudonymisation key to {}", file.display());
        }
        Command::Demo { persons, days, seed, speed, dir, addr, profile } => {
            anyhow::ensure!(speed.is_finite() && speed > 0.0, "--speed is a positive number");
            demo::run(demo::DemoOptions { persons, days, seed, speed, dir, addr, profile })?;
        }
        Command::Serve { db, addr, pseudonym_key_file, purge_every_minutes, detect_every_minutes } => {
            let purge_every =
                (purge_every_minutes > 0).then(|| std::time::Duration::from_secs(purge_every_minutes * 60));
            let detect_every =
                (detect_every_minutes > 0).then(|| std::time::Duration::from_secs(detect_every_minutes * 60));
            let config = chainbreak_server::ServerConfig {
                db,
                pseudonym_key_file,
                purge_every,
                detect_every,
                ..Default::default()
            };
            let state = chainbreak_server::AppState::open(config, clock)?;
            let rt =
                tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
                let addr = listener.local_addr().context("reading the bound address")?;
                tracing::info!(%addr, "chainbreak serving");
                eprintln!("chainbreak serving on http://{addr}");
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                chainbreak_server::serve(listener, state, shutdown).await.context("serving")
            })?;
        }
        Command::Profile { command } => match command {
            ProfileCommand::List => {
                for name in Profile::builtin_names() {
                    let p = Profile::builtin(name).expect("built-ins load");
                    println!("{name}\t{}", p.title);
                }
            }
            ProfileCommand::Check { profile } => {
                let p = Profile::load(&profile).map_err(AppError::from)?;
                println!("{}: valid (format_version {})", p.name, p.format_version);
            }
            ProfileCommand::Show { profile } => {
                print!("{}", Profile::load(&profile).map_err(AppError::from)?.to_toml_string());
            }
        },
        Command::User { db, actor, command } => {
            let db = db.context("--db (or CHAINBREAK_DB) is required")?;
            let mut store = chainbreak_app::open(&db)?;
            match command {
                UserCommand::Add { name, role, unit, jurisdiction, password_stdin } => {
                    let user = chainbreak_core::access::User {
                        name,
                        role: chainbreak_app::accounts::parse_role(&role)?,
                        unit,
                        jurisdiction,
                        disabled: false,
                        created_at: clock.now(),
                    };
                    let (pw, generated) = password(password_stdin)?;
                    chainbreak_app::accounts::add_user(&mut store, &user, &pw, &cli_actor(actor, "user add"))?;
                    println!(
                        "added {} ({}, unit {}, jurisdiction {})",
                        user.name, user.role, user.unit, user.jurisdiction
                    );
                    if generated {
                        println!("password (shown once): {pw}");
                    }
                }
                UserCommand::List => {
                    for u in store.users()? {
                        println!("{}", serde_json::to_string(&u)?);
                    }
                }
                UserCommand::Disable { name } => {
                    chainbreak_app::accounts::set_disabled(
                        &mut store,
                        &name,
                        true,
                        clock.now(),
                        &cli_actor(actor, "user disable"),
                    )?;
                    println!("disabled {name}");
                }
                UserCommand::Enable { name } => {
                    chainbreak_app::accounts::set_disabled(
                        &mut store,
                        &name,
                        false,
                        clock.now(),
                        &cli_actor(actor, "user enable"),
                    )?;
                    println!("enabled {name}");
                }
                UserCommand::ResetPassword { name, password_stdin } => {
                    let (pw, generated) = password(password_stdin)?;
                    chainbreak_app::accounts::reset_password(
                        &mut store,
                        &name,
                        &pw,
                        clock.now(),
                        &cli_actor(actor, "user reset-password"),
                    )?;
                    println!("new password set for {name}");
                    if generated {
                        println!("password (shown once): {pw}");
                    }
                }
                UserCommand::RevokeToken { id } => {
                    chainbreak_app::accounts::revoke_token(
                        &mut store,
                        id,
                        clock.now(),
                        &cli_actor(actor, "user revoke-token"),
                    )?;
                    println!("revoked token {id}");
                }
                UserCommand::Token { name, label, days } => {
                    let (token, info) = chainbreak_app::accounts::issue_token(
                        &mut store,
                        &name,
                        &label,
                        days,
                        clock.now(),
                        &cli_actor(actor, "user token"),
                    )?;
                    eprintln!("token {} for {} ({}); shown once:", info.id, info.user, info.label);
                    println!("{token}");
                }
            }
        }
        Command::Simulate { command } => simulate::run(command)?,
        Command::Detect(args) => detect::run_detect(args)?,
        Command::Rt(args) => detect::run_rt(args, clock)?,
        Command::Audit { db, actor, action, entity, record, after, limit } => {
            let store = chainbreak_app::open(&db)?;
            let filter = chainbreak_store::AuditFilter { actor, action, entity, record, actors_within: None };
            for r in store.audit_records(after, limit, &filter)? {
                println!("{}", serde_json::to_string(&r)?);
            }
        }
        Command::Person { command } => match command {
            PersonCommand::Merge { db, survivor, duplicate, reason, actor } => {
                let mut store = chainbreak_app::open(&db)?;
                let actor = cli_actor(Some(actor), "person merge");
                let m =
                    chainbreak_app::persons::merge(&mut store, &survivor, &duplicate, &reason, &actor, clock.now())?;
                println!("merge {}: {} merged into {}", m.id, m.duplicate, m.survivor);
            }
            PersonCommand::Unmerge { db, merge_id, actor } => {
                let mut store = chainbreak_app::open(&db)?;
                let actor = cli_actor(actor, "person unmerge");
                let m = chainbreak_app::persons::unmerge(&mut store, merge_id, &actor, clock.now())?;
                println!("merge {} undone: {} is separate from {} again", m.id, m.duplicate, m.survivor);
            }
            PersonCommand::History { db, person } => {
                let store = chainbreak_app::open(&db)?;
                for m in store.merges(&person)? {
                    println!("{}", serde_json::to_string(&m)?);
                }
            }
        },
    }
    Ok(())
}
