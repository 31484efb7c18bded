//! `chainbreak zones`: risk zones (issue 8) at the console — proposed from cases by the
//! profile's rules, recorded, confirmed, rejected or lifted by the commander running the
//! command (DESIGN.md §4a), screening rounds entered, the daily review run, the zones in force
//! published. Every change is audited under `--actor`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chainbreak_app::zones::{self, Decision};
use chainbreak_core::model::ZoneLevel;
use chainbreak_core::time::{Clock, parse_instant};
use chainbreak_store::ZoneFilter;
use chainbreak_zones::Round;
use clap::{Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum ZonesCommand {
    /// The zones the profile draws for these cases (high, medium, low; widened for unknown
    /// sources), each with its reasons; what the data cannot draw is listed as undecided.
    /// With --record, they are recorded as proposed zones (or new reasons of open ones).
    Propose {
        /// A case id (repeat for several).
        #[arg(long = "case", required = true)]
        cases: Vec<String>,
        /// Record the proposals (each reason once per target) for a commander to decide.
        #[arg(long)]
        record: bool,
        /// `json` (the proposals, undecided and skipped cases) or `geojson` (a
        /// FeatureCollection: area polygons, place points, the proposal as properties).
        #[arg(long, value_enum, default_value_t = ZoneFormat::Json)]
        format: ZoneFormat,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Recorded zones by id, with their next screening round and review.
    List {
        /// proposed, confirmed, rejected, lifted or lapsed.
        #[arg(long)]
        status: Option<String>,
        /// Only proposed or confirmed zones.
        #[arg(long)]
        open: bool,
        /// high, medium or low.
        #[arg(long)]
        level: Option<String>,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// One zone with its whole history.
    Show { id: String },
    /// Confirm a proposed zone (or its pending raise): in force from today; its residents get
    /// the level's measure proposed.
    Confirm {
        id: String,
        #[arg(long)]
        note: Option<String>,
        /// The unit that owns the residents' measures.
        #[arg(long, default_value = "command")]
        owner: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Reject a proposed zone (or its pending raise), saying why.
    Reject {
        id: String,
        #[arg(long)]
        note: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Lift a zone in force before its rule does, saying why; its residents' measures end.
    Lift {
        id: String,
        #[arg(long)]
        note: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Enter a completed screening round of a zone in force.
    Round {
        id: String,
        /// The round's day (a local date, YYYY-MM-DD).
        #[arg(long)]
        on: String,
        #[arg(long)]
        tested: u32,
        #[arg(long)]
        positives: u32,
        /// When it was completed (RFC 3339; default now).
        #[arg(long)]
        completed_at: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// The daily review, as of now: widenings lapse, zones are lowered and lifted by their
    /// rules, residents' measures are proposed or ended; prints what it did and the rounds due.
    Review {
        /// The unit that owns new residents' measures.
        #[arg(long, default_value = "command")]
        owner: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// The zones in force, for the public (no cases, no persons).
    Publish {
        #[arg(long, value_enum, default_value_t = ZoneFormat::Json)]
        format: ZoneFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ZoneFormat {
    Json,
    Geojson,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

fn actor(actor: Option<String>, via: &str, note: Option<&str>) -> chainbreak_app::accounts::Actor {
    let mut a = crate::cli_actor(actor, via);
    a.reason = note.map(String::from);
    a
}

/// Prints a value as pretty JSON.
macro_rules! json {
    ($out:expr, $value:expr) => {
        writeln!($out, "{}", serde_json::to_string_pretty(&$value)?)?
    };
}

pub(crate) fn run(db: &Path, command: ZonesCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let mut dep = crate::alerts::deployment(db, clock)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match command {
        ZonesCommand::Propose { cases, record: false, format, .. } => {
            let plan = zones::propose(&mut dep, &cases)?;
            match format {
                ZoneFormat::Json => json!(out, &plan),
                ZoneFormat::Geojson => json!(out, &zones::to_geojson(&dep, &plan)?),
            }
        }
        ZonesCommand::Propose { cases, record: true, format, actor: who } => {
            let recorded = zones::record(&mut dep, &actor(who, "zones propose --record", None), None, &cases)?;
            match format {
                ZoneFormat::Json => json!(out, &recorded),
                ZoneFormat::Geojson => json!(out, &zones::to_geojson(&dep, &recorded.plan)?),
            }
        }
        ZonesCommand::List { status, open, level, format } => {
            let level = match level.as_deref() {
                Some(l) => {
                    Some(ZoneLevel::parse(l).with_context(|| format!("--level: `{l}` is not high, medium or low"))?)
                }
                None => None,
            };
            let filter = ZoneFilter { status, open, level, ..Default::default() };
            let zones = zones::list(&dep, None, &filter)?;
            match format {
                ListFormat::Json => json!(out, &zones),
                ListFormat::Table => {
                    writeln!(
                        out,
                        "{:<28} {:<10} {:<7} {:<11} {:<11} {:<11} reasons",
                        "zone", "status", "level", "since", "next_round", "review"
                    )?;
                    for z in &zones {
                        let date =
                            |d: Option<jiff::civil::Date>| d.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
                        let round = z.next_round.map(|r| format!("{}{}", r.on, if z.round_late { "!" } else { "" }));
                        writeln!(
                            out,
                            "{:<28} {:<10} {:<7} {:<11} {:<11} {:<11} {}",
                            z.zone.id,
                            z.zone.status.as_str(),
                            z.zone.level.as_str(),
                            date(z.zone.since),
                            round.unwrap_or_else(|| "-".into()),
                            date(z.next_review),
                            z.zone.reasons.len()
                        )?;
                    }
                }
            }
        }
        ZonesCommand::Show { id } => json!(out, &zones::show(&dep, None, &id)?),
        ZonesCommand::Confirm { id, note, owner, actor: who } => {
            let a = actor(who, "zones confirm", note.as_deref());
            json!(out, &zones::decide(&mut dep, &a, None, &id, Decision::Confirm { note }, &owner)?)
        }
        ZonesCommand::Reject { id, note, actor: who } => {
            let a = actor(who, "zones reject", Some(&note));
            json!(out, &zones::decide(&mut dep, &a, None, &id, Decision::Reject { note }, "command")?)
        }
        ZonesCommand::Lift { id, note, actor: who } => {
            let a = actor(who, "zones lift", Some(&note));
            json!(out, &zones::decide(&mut dep, &a, None, &id, Decision::Lift { note }, "command")?)
        }
        ZonesCommand::Round { id, on, tested, positives, completed_at, actor: who } => {
            let on: jiff::civil::Date =
                on.parse().with_context(|| format!("--on: `{on}` is not a date (YYYY-MM-DD)"))?;
            let completed_at = match completed_at {
                Some(t) => parse_instant(&t).map_err(|e| anyhow::anyhow!("--completed-at: {e}"))?,
                None => dep.clock.now(),
            };
            let round = Round { on, tested, positives, completed_at };
            json!(out, &zones::record_round(&mut dep, &actor(who, "zones round", None), None, &id, round)?)
        }
        ZonesCommand::Review { owner, actor: who } => {
            json!(out, &zones::review(&mut dep, &actor(who, "zones review", None), None, &owner)?)
        }
        ZonesCommand::Publish { format } => match format {
            ZoneFormat::Json => json!(out, &zones::published(&dep)?),
            ZoneFormat::Geojson => json!(out, &zones::published_geojson(&dep)?),
        },
    }
    out.flush()?;
    Ok(())
}
