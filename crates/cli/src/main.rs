//! `chainbreak`: the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chainbreak_app::import::{ImportOptions, import_file};
use chainbreak_app::{AppError, Progress};
use chainbreak_core::profile::Profile;
use chainbreak_core::time::{Clock, SystemClock};
use chainbreak_formats::{Format, Kind};
use chainbreak_store::Store;
use clap::{Parser, Subcommand, ValueEnum};

mod simulate;

#[derive(Parser)]
#[command(name = "chainbreak", version = version(), about = "Outbreak surveillance and response engine")]
struct Cli {
    /// Log format for structured logs (to stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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
    },
    /// Serve the API on 127.0.0.1.
    Serve {
        #[arg(long, env = "CHAINBREAK_DB")]
        db: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
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

fn cli_actor(actor: Option<String>, via: &str) -> chainbreak_app::accounts::Actor {
    let name = actor.unwrap_or_else(|| format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into())));
    chainbreak_app::accounts::Actor { name, via: format!("chainbreak {via}"), reason: None }
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e
                .downcast_ref::<AppError>()
                .map(AppError::code)
                .or_else(|| e.downcast_ref::<chainbreak_store::StoreError>().map(|s| s.code()));
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

fn run(command: Command) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
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
        Command::Import { kind, file, db, format, register_unknown, skip_invalid, rejects, json } => {
            let mut store = chainbreak_app::open(&db)?;
            let opts = ImportOptions { register_unknown, skip_invalid, rejects, format };
            let mut bar = Bar(indicatif::ProgressBar::new(0));
            let report = import_file(&mut store, kind, &file, &opts, clock.now(), &mut bar)?;
            if kind == Kind::Visits || kind == Kind::Pings {
                let started = std::time::Instant::now();
                store.checkpoint()?;
                tracing::debug!(seconds = started.elapsed().as_secs_f64(), "checkpointed");
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
            }
        }
        Command::Serve { db, addr } => {
            let config = chainbreak_server::ServerConfig { db, ..Default::default() };
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
        Command::Audit { db, actor, action, entity, record, after, limit } => {
            let store = chainbreak_app::open(&db)?;
            let filter = chainbreak_store::AuditFilter { actor, action, entity, record };
            for r in store.audit_records(after, limit, &filter)? {
                println!("{}", serde_json::to_string(&r)?);
            }
        }
        Command::Person { command } => match command {
            PersonCommand::Merge { db, survivor, duplicate, reason, actor } => {
                let mut store = chainbreak_app::open(&db)?;
                let mut batch = store.begin(clock.now())?;
                let m =
                    batch.merge_persons(&survivor, &duplicate, &reason, &actor, clock.now()).map_err(AppError::from)?;
                batch.commit()?;
                println!("merge {}: {} merged into {}", m.id, m.duplicate, m.survivor);
            }
            PersonCommand::Unmerge { db, merge_id } => {
                let mut store = chainbreak_app::open(&db)?;
                let mut batch = store.begin(clock.now())?;
                let m = batch.unmerge_persons(merge_id, clock.now()).map_err(AppError::from)?;
                batch.commit()?;
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
