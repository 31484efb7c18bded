//! `chainbreak contacts`: contact proposals at the console (the operator sees every
//! jurisdiction; every decision is audited under `--actor`).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use chainbreak_app::proposals::{self, ProposalView, Verdict};
use chainbreak_app::{AppError, Deployment};
use chainbreak_core::time::Clock;
use chainbreak_store::{ProposalFilter, ProposalStatus, Scope};
use clap::{Subcommand, ValueEnum};

#[derive(Subcommand)]
pub(crate) enum ContactsCommand {
    /// List proposals, oldest first.
    List {
        /// Only the proposals of this index case.
        #[arg(long)]
        case: Option<String>,
        /// Only proposals in this state: proposed, confirmed, rejected, withdrawn.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Confirm proposals (by id): close, secondary and grid contacts get their measure
    /// episode (opened, or the reason added to their open one), in the same batch.
    Confirm {
        #[arg(required = true)]
        ids: Vec<i64>,
        #[arg(long)]
        reason: Option<String>,
        /// The unit that owns the episodes opened.
        #[arg(long, default_value = "intake")]
        owner_unit: String,
        /// Who decides, for the proposals and the audit trail (default: cli:$USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Reject proposals (by id), with the reason.
    Reject {
        #[arg(required = true)]
        ids: Vec<i64>,
        #[arg(long)]
        reason: String,
        /// Who decides, for the proposals and the audit trail (default: cli:$USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Bring the stored proposals up to the store: trace again the cases with new visits or
    /// changed dates since they were recorded (decisions are kept; changes are flagged).
    Recompute {
        /// Who runs it, for the audit trail (default: cli:$USER).
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ListFormat {
    /// One JSON object per line.
    Json,
    Table,
}

pub(crate) fn run(db: &Path, command: ContactsCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let store = chainbreak_app::open(db)?;
    let mut dep = Deployment::new(Box::new(store), clock)?;
    let now = dep.clock.now();
    match command {
        ContactsCommand::List { case, status, format } => {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(ProposalStatus::parse(s).ok_or_else(|| AppError::InvalidArgument {
                    argument: "--status",
                    message: format!("`{s}` is not one of {}", ProposalStatus::expected()),
                })?),
            };
            let filter = ProposalFilter { case_id: case, status };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            if let ListFormat::Table = format {
                writeln!(
                    out,
                    "{:>6}  {:<10} {:<12} {:<12} {:<10} {:<22} {:>9}  {:<10} note",
                    "id", "case", "index", "contact", "category", "first exposure", "exposures", "status"
                )?;
            }
            let mut after: Option<String> = None;
            loop {
                let page = proposals::list_within(&*dep.store, &Scope::All, &filter, after.as_deref(), 1000)?;
                for p in &page.items {
                    match format {
                        ListFormat::Json => writeln!(out, "{}", serde_json::to_string(p)?)?,
                        ListFormat::Table => write_row(&mut out, p)?,
                    }
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            out.flush()?;
        }
        ContactsCommand::Confirm { ids, reason, actor, owner_unit } => {
            let actor = crate::cli_actor(actor, "contacts confirm");
            let (done, episodes) = proposals::decide_and_open(
                &mut dep,
                None,
                &actor,
                &ids,
                Verdict::Confirm,
                reason.as_deref(),
                &owner_unit,
            )?;
            println!(
                "confirmed {} proposal(s); {} measure episode(s) opened or given the reason",
                done.len(),
                episodes.len()
            );
        }
        ContactsCommand::Reject { ids, reason, actor } => {
            let actor = crate::cli_actor(actor, "contacts reject");
            let done = proposals::decide_within(
                &mut *dep.store,
                &Scope::All,
                &actor,
                &ids,
                Verdict::Reject,
                Some(&reason),
                now,
            )?;
            println!("rejected {} proposal(s)", done.len());
        }
        ContactsCommand::Recompute { actor } => {
            let actor = crate::cli_actor(actor, "contacts recompute");
            let r = proposals::recompute(&mut dep, &actor)?;
            println!("{}", serde_json::to_string(&r)?);
        }
    }
    Ok(())
}

fn write_row(out: &mut impl Write, v: &ProposalView) -> anyhow::Result<()> {
    let p = &v.proposal;
    let mut notes = Vec::new();
    if p.needs_confirmation {
        notes.push("needs confirmation".to_string());
    }
    if p.changed_since_decision {
        notes.push(if p.in_result { "evidence changed since decided" } else { "left the result since decided" }.into());
    }
    if let Some(reason) = &p.decision_reason {
        notes.push(format!("reason: {reason}"));
    }
    writeln!(
        out,
        "{:>6}  {:<10} {:<12} {:<12} {:<10} {:<22} {:>9}  {:<10} {}",
        p.id,
        p.index.case_id.as_deref().unwrap_or("-"),
        p.index.person_id,
        p.contact_id,
        p.category,
        p.first_exposure.to_string(),
        p.exposures,
        p.status.as_str(),
        notes.join("; ")
    )?;
    Ok(())
}
