//! `chainbreak goods`: imported cold-chain and other high-risk goods (issue 10) — a batch
//! traced both ways, the responses to positive samples, the supplier suspension list — and
//! `chainbreak requests`: service requests of residents in controlled zones.

use std::path::Path;
use std::sync::Arc;

use chainbreak_app::requests::{self, NewRequest, RequestAct};
use chainbreak_closedloop::requests::RequestOutcome;
use chainbreak_core::profile::{RequestKind, RequestPriority};
use chainbreak_core::time::Clock;
use chainbreak_store::RequestFilter;
use clap::Subcommand;

use crate::cli_actor;

#[derive(Subcommand)]
pub enum GoodsCommand {
    /// A batch traced downstream (every batch derived from it and every place they went to,
    /// with the last holders and the workers on their staff: the recall list and the places to
    /// seal) and upstream (the batches it came from, their plants and sibling batches), as JSON.
    Trace {
        #[arg(long)]
        batch: String,
    },
    /// Responds to a stored positive goods or environment test (the import of lab results does
    /// it by itself): the recall list, the places to seal, the workers proposed the profile's
    /// co-exposed measure with the goods evidence, the supplier suspensions; once per sample.
    Respond {
        /// The lab test's id.
        #[arg(long)]
        lab_test: String,
        /// The unit that owns the workers' measures.
        #[arg(long, default_value = "intake")]
        owner_unit: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// The recorded responses to positive samples, as JSON lines.
    Responses,
    /// One recorded response (`lab_test:<id>` or a sentinel report's key), as JSON.
    Response { id: String },
    /// The supplier suspension list, as JSON lines.
    Suspensions {
        /// Only those in force today.
        #[arg(long)]
        in_force: bool,
    },
}

#[derive(Subcommand)]
pub enum RequestsCommand {
    /// Files a request for a resident under a zone or home measure; prints it as JSON.
    File {
        #[arg(long)]
        person: String,
        /// medicine, dialysis, medical_care, childbirth, food, other.
        #[arg(long)]
        kind: String,
        /// urgent, high, normal (default: the profile's for the kind).
        #[arg(long)]
        priority: Option<String>,
        /// Default: the unit owning the person's measure.
        #[arg(long)]
        owner_unit: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Requests as JSON lines.
    List {
        /// Only those not closed.
        #[arg(long)]
        open: bool,
        /// Only those sitting at this unit now.
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        person: Option<String>,
    },
    /// One request with its history, as JSON.
    Show { id: String },
    /// The owner takes a request on.
    Accept {
        id: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Hands a request to another unit.
    Reassign {
        id: String,
        #[arg(long)]
        owner_unit: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Closes a request with its outcome: fulfilled, referred, withdrawn, unfulfilled (with a
    /// note saying why).
    Close {
        id: String,
        #[arg(long)]
        outcome: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Records the escalations of late requests now (`chainbreak serve` does it every minute).
    Escalate,
}

fn vocab<T>(what: &str, value: &str, parse: fn(&str) -> Option<T>, expected: String) -> anyhow::Result<T> {
    parse(value).ok_or_else(|| {
        chainbreak_app::AppError::InvalidArgument {
            argument: "value",
            message: format!("--{what}: `{value}` is not one of {expected}"),
        }
        .into()
    })
}

pub(crate) fn run(db: &Path, command: GoodsCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let mut dep = crate::alerts::deployment(db, clock)?;
    match command {
        GoodsCommand::Trace { batch } => {
            println!("{}", serde_json::to_string_pretty(&chainbreak_app::goods::trace(&dep, &batch)?)?);
        }
        GoodsCommand::Respond { lab_test, owner_unit, actor } => {
            let sample = chainbreak_app::goods::sample_of_lab_test(&dep, &lab_test)?;
            let actor = cli_actor(actor, "goods respond");
            let done = chainbreak_app::goods::respond(&mut dep, &actor, None, &[sample], &owner_unit)?;
            match done.first() {
                Some(r) => println!("{}", serde_json::to_string_pretty(r)?),
                None => eprintln!(
                    "lab test {lab_test} was responded to already (chainbreak goods response lab_test:{lab_test})"
                ),
            }
        }
        GoodsCommand::Responses => {
            let mut after: Option<String> = None;
            loop {
                let page = chainbreak_app::goods::responses(&dep, None, after.as_deref(), 1000)?;
                for r in &page.items {
                    println!("{}", serde_json::to_string(r)?);
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        GoodsCommand::Response { id } => {
            println!("{}", serde_json::to_string_pretty(&chainbreak_app::goods::response(&dep, None, &id)?)?);
        }
        GoodsCommand::Suspensions { in_force } => {
            for s in chainbreak_app::goods::suspensions(&dep, None, in_force)? {
                println!("{}", serde_json::to_string(&s)?);
            }
        }
    }
    Ok(())
}

/// Prints a value as pretty JSON.
macro_rules! pretty {
    ($v:expr) => {
        println!("{}", serde_json::to_string_pretty(&$v)?)
    };
}

pub(crate) fn run_requests(db: &Path, command: RequestsCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let mut dep = crate::alerts::deployment(db, clock)?;
    match command {
        RequestsCommand::File { person, kind, priority, owner_unit, note, actor } => {
            let kind = vocab("kind", &kind, RequestKind::parse, RequestKind::expected())?;
            let priority = priority
                .map(|p| vocab("priority", &p, RequestPriority::parse, RequestPriority::expected()))
                .transpose()?;
            let new = NewRequest { person_id: person, kind, priority, owner_unit, note };
            pretty!(requests::file(&mut dep, &cli_actor(actor, "requests file"), None, new)?);
        }
        RequestsCommand::List { open, unit, person } => {
            let filter = RequestFilter { open, unit, person_id: person, due_before: None };
            let mut after: Option<String> = None;
            loop {
                let page = requests::list(&dep, None, &filter, after.as_deref(), 1000)?;
                for r in &page.items {
                    println!("{}", serde_json::to_string(r)?);
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        RequestsCommand::Show { id } => pretty!(requests::show(&dep, None, &id)?),
        RequestsCommand::Accept { id, note, actor } => {
            pretty!(requests::act(
                &mut dep,
                &cli_actor(actor, "requests accept"),
                None,
                &id,
                RequestAct::Accept { note }
            )?)
        }
        RequestsCommand::Reassign { id, owner_unit, actor } => {
            let act = RequestAct::Reassign { owner_unit };
            pretty!(requests::act(&mut dep, &cli_actor(actor, "requests reassign"), None, &id, act)?)
        }
        RequestsCommand::Close { id, outcome, note, actor } => {
            let outcome = vocab("outcome", &outcome, RequestOutcome::parse, RequestOutcome::expected())?;
            let act = RequestAct::Close { outcome, note };
            pretty!(requests::act(&mut dep, &cli_actor(actor, "requests close"), None, &id, act)?)
        }
        RequestsCommand::Escalate => {
            for r in requests::escalate(&mut dep, &cli_actor(None, "requests escalate"), None)? {
                println!("{}", serde_json::to_string(&r)?);
            }
        }
    }
    Ok(())
}
