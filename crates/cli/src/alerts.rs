//! `chainbreak alerts`, `chainbreak review` and `chainbreak sentinels`: alert triage, the review
//! queue of aberration alarms and the sentinel feeds at the console (the operator sees every
//! jurisdiction; every move is audited under `--actor`).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use chainbreak_app::alerts::{self, AlertAction, ManualAlert};
use chainbreak_app::surveillance::{self, Frequency, SeriesQuery, Verdict};
use chainbreak_app::{AppError, Deployment};
use chainbreak_core::model::{AlertState, SentinelFeed};
use chainbreak_core::time::Clock;
use chainbreak_store::{AlertFilter, AlertKind, AlertOutcome, ReviewStatus};
use clap::Subcommand;

use crate::cli_actor;

#[derive(Subcommand)]
pub(crate) enum AlertsCommand {
    /// List alerts by id (JSON lines).
    List {
        /// aberration, silent_sentinel, positive_person, pooled_positive, environment_positive,
        /// goods_positive, manual.
        #[arg(long)]
        kind: Option<String>,
        /// new, acknowledged, investigating, closed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        /// Only alerts not closed.
        #[arg(long)]
        open: bool,
    },
    /// One alert with its details, history and (a suspected case's) response clock (JSON).
    Show { id: i64 },
    /// Raise an alert by hand about an area, place or person.
    Raise {
        #[arg(long)]
        summary: String,
        #[arg(long)]
        area: Option<String>,
        #[arg(long)]
        place: Option<String>,
        #[arg(long)]
        person: Option<String>,
        #[arg(long)]
        owner_unit: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// new → acknowledged: the unit owns it.
    Ack {
        id: i64,
        #[arg(long)]
        owner_unit: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// acknowledged → investigating.
    Investigate {
        id: i64,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// acknowledged or investigating → closed, with the outcome (confirmed, false_alarm,
    /// duplicate, resolved).
    Close {
        id: i64,
        #[arg(long)]
        outcome: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Record a response-clock event of a case (case_reported, case_transferred,
    /// trail_signed_off, contacts_determined): items starting with it start, those stopping
    /// with it stop. Prints the case's clock (JSON).
    Clock {
        case: String,
        #[arg(long)]
        event: String,
        /// When it happened (default now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// A note on the alert; its state stays.
    Comment {
        id: i64,
        #[arg(long)]
        note: String,
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum ReviewCommand {
    /// Run aberration detection over the sentinel series now: alarms of the profile's review
    /// window go to the queue (once per series and period), silent sentinels raise their alerts.
    /// `serve` does this every hour.
    Run {
        #[arg(long)]
        actor: Option<String>,
    },
    /// The review queue, highest score first (JSON lines).
    List {
        /// pending (default), escalated, dismissed or all.
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Escalate an alarm to an `aberration` alert.
    Escalate {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Dismiss an alarm (a reason is required).
    Dismiss {
        id: i64,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum SentinelsCommand {
    /// The sentinel points whose feed stopped reporting (JSON lines).
    Silent,
    /// The count series with expected values, bounds and alarms (JSON lines, one series a line).
    Series {
        #[arg(long)]
        area: Option<String>,
        #[arg(long)]
        feed: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// daily or weekly (default both).
        #[arg(long)]
        frequency: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
}

fn bad(argument: &'static str, message: String) -> AppError {
    AppError::InvalidArgument { argument, message }
}

fn vocab<T>(
    argument: &'static str,
    v: Option<String>,
    parse: fn(&str) -> Option<T>,
    expected: String,
) -> Result<Option<T>, AppError> {
    v.map(|s| parse(&s).ok_or_else(|| bad(argument, format!("`{s}` is not one of {expected}")))).transpose()
}

fn date(argument: &'static str, v: Option<String>) -> Result<Option<jiff::civil::Date>, AppError> {
    v.map(|s| s.parse().map_err(|_| bad(argument, format!("`{s}` is not a date (YYYY-MM-DD)")))).transpose()
}

pub(crate) fn deployment(db: &Path, clock: Arc<dyn Clock>) -> anyhow::Result<Deployment> {
    let store = chainbreak_app::open(db)?;
    Ok(Deployment::new(Box::new(store), clock)?)
}

fn noted(actor: Option<String>, via: &str, note: Option<String>) -> chainbreak_app::accounts::Actor {
    let mut a = cli_actor(actor, via);
    a.reason = note;
    a
}

pub(crate) fn run_alerts(db: &Path, command: AlertsCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let mut dep = deployment(db, clock)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let moved = |dep: &mut Deployment, id: i64, action: AlertAction, actor| -> anyhow::Result<String> {
        let view = alerts::transition(dep, &actor, None, id, &action)?;
        Ok(format!("alert {id}: {}", view.alert.state))
    };
    match command {
        AlertsCommand::List { kind, state, owner, open } => {
            let filter = AlertFilter {
                kind: vocab("--kind", kind, AlertKind::parse, AlertKind::expected())?,
                state: vocab("--state", state, AlertState::parse, AlertState::expected())?,
                owner_unit: owner,
                open,
            };
            let mut after = 0;
            loop {
                let page = alerts::list(&dep, None, &filter, after, 1000)?;
                for a in &page {
                    writeln!(out, "{}", serde_json::to_string(a)?)?;
                }
                match page.last() {
                    Some(a) if page.len() == 1000 => after = a.id,
                    _ => break,
                }
            }
        }
        AlertsCommand::Show { id } => {
            writeln!(out, "{}", serde_json::to_string_pretty(&alerts::show(&dep, None, id)?)?)?;
        }
        AlertsCommand::Raise { summary, area, place, person, owner_unit, note, actor } => {
            let body = ManualAlert { summary, area_id: area, place_id: place, person_id: person, owner_unit };
            let view = alerts::raise_manual(&mut dep, &noted(actor, "alerts raise", note), None, body)?;
            writeln!(out, "raised alert {}", view.alert.id)?;
        }
        AlertsCommand::Ack { id, owner_unit, note, actor } => {
            let line = moved(&mut dep, id, AlertAction::Acknowledge { owner_unit }, noted(actor, "alerts ack", note))?;
            writeln!(out, "{line}")?;
        }
        AlertsCommand::Investigate { id, note, actor } => {
            let line = moved(&mut dep, id, AlertAction::Investigate, noted(actor, "alerts investigate", note))?;
            writeln!(out, "{line}")?;
        }
        AlertsCommand::Close { id, outcome, note, actor } => {
            let outcome =
                vocab("--outcome", Some(outcome), AlertOutcome::parse, AlertOutcome::expected())?.expect("given");
            let line = moved(&mut dep, id, AlertAction::Close { outcome }, noted(actor, "alerts close", note))?;
            writeln!(out, "{line}")?;
        }
        AlertsCommand::Clock { case, event, at, actor } => {
            use chainbreak_core::profile::ClockEvent;
            let event = vocab("--event", Some(event), ClockEvent::parse, ClockEvent::expected())?.expect("given");
            let at = match at {
                Some(a) => chainbreak_core::time::parse_instant(&a).map_err(|m| bad("--at", m))?,
                None => dep.clock.now(),
            };
            let clock = alerts::clock_event(&mut dep, &cli_actor(actor, "alerts clock"), None, &case, event, at)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&clock)?)?;
        }
        AlertsCommand::Comment { id, note, actor } => {
            let line = moved(&mut dep, id, AlertAction::Comment, noted(actor, "alerts comment", Some(note)))?;
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn run_review(db: &Path, command: ReviewCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let mut dep = deployment(db, clock)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match command {
        ReviewCommand::Run { actor } => {
            let report = surveillance::run(&mut dep, &cli_actor(actor, "review run"), None)?;
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
        }
        ReviewCommand::List { status, limit } => {
            let status = match status.as_str() {
                "all" => None,
                s => Some(ReviewStatus::parse(s).ok_or_else(|| {
                    bad("--status", format!("`{s}` is not one of {}, all", ReviewStatus::expected()))
                })?),
            };
            for item in surveillance::review_queue(&dep, None, status, limit)? {
                writeln!(out, "{}", serde_json::to_string(&item)?)?;
            }
        }
        ReviewCommand::Escalate { id, reason, actor } => {
            let item = surveillance::decide_review(
                &mut dep,
                &cli_actor(actor, "review escalate"),
                None,
                id,
                Verdict::Escalate,
                reason,
            )?;
            writeln!(out, "review item {id}: escalated to alert {}", item.alert_id.unwrap_or_default())?;
        }
        ReviewCommand::Dismiss { id, reason, actor } => {
            surveillance::decide_review(
                &mut dep,
                &cli_actor(actor, "review dismiss"),
                None,
                id,
                Verdict::Dismiss,
                Some(reason),
            )?;
            writeln!(out, "review item {id}: dismissed")?;
        }
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn run_sentinels(db: &Path, command: SentinelsCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let dep = deployment(db, clock)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match command {
        SentinelsCommand::Silent => {
            for s in surveillance::silent(&dep, None)? {
                writeln!(out, "{}", serde_json::to_string(&s)?)?;
            }
        }
        SentinelsCommand::Series { area, feed, category, frequency, from, to } => {
            let q = SeriesQuery {
                area_id: area,
                feed: vocab("--feed", feed, SentinelFeed::parse, SentinelFeed::expected())?,
                category,
                frequency: vocab("--frequency", frequency, Frequency::parse, "daily, weekly".into())?,
                from: date("--from", from)?,
                to: date("--to", to)?,
            };
            for s in surveillance::series(&dep, None, &q)? {
                writeln!(out, "{}", serde_json::to_string(&s)?)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
