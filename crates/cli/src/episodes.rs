//! `chainbreak episodes` and `chainbreak facilities`: closed-loop management at the console
//! (the operator sees every jurisdiction; every transition is audited under `--actor`).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chainbreak_app::episodes::{self, Request};
use chainbreak_app::{AppError, Deployment};
use chainbreak_closedloop::{Action, Category, CloseReason, Reason, TestResult};
use chainbreak_core::model::EpisodeState;
use chainbreak_core::time::{Clock, parse_instant};
use chainbreak_store::{EpisodeFilter, FacilityRow, RoomRow};
use clap::{Subcommand, ValueEnum};

#[derive(Subcommand)]
pub(crate) enum EpisodesCommand {
    /// List episodes by id.
    List {
        /// Only episodes in this state (proposed, confirmed, notified, transferred, in_measure...).
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        facility: Option<String>,
        #[arg(long)]
        person: Option<String>,
        /// Only those past their deadline now.
        #[arg(long)]
        overdue: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One episode as its events make it: state, deadline, reasons, tests, tasks and history.
    Show { id: String },
    /// What is due, overdue first, each at the unit it has escalated to (JSON lines).
    Tasks {
        #[arg(long)]
        overdue: bool,
        /// Only the tasks sitting at this unit now.
        #[arg(long)]
        unit: Option<String>,
    },
    /// Open an episode (or add the reason to the person's open one of that category), confirmed
    /// by the operator (DESIGN.md §4a: the person running this decides).
    Open {
        #[arg(long)]
        person: String,
        /// close, secondary or grid (the profile's measure for it), or case (the person's own
        /// isolation until discharge; --exposure is then the onset or positive sample).
        #[arg(long)]
        category: String,
        /// The case (or zone, arrival...) it comes from.
        #[arg(long)]
        source: String,
        /// Through whom (a secondary contact's close contact).
        #[arg(long)]
        via: Option<String>,
        /// The last exposure (day 0 is its local date).
        #[arg(long)]
        exposure: String,
        /// The owning unit.
        #[arg(long)]
        owner: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Move an episode: confirm, reject, notify, unreachable, refuse, transfer (--facility,
    /// --room or the first room the rules allow), start, test (--taken-at, --result),
    /// linked-test (--contact, --taken-at, --result), add-reason (--source, --via, --exposure),
    /// source-excluded (--source), release, discharge (a case's isolation; --criteria: what is
    /// met), hand-over (--to), acknowledge, lost, close (--close-reason).
    Transition {
        id: String,
        action: String,
        #[arg(long)]
        facility: Option<String>,
        #[arg(long)]
        room: Option<String>,
        #[arg(long)]
        taken_at: Option<String>,
        #[arg(long)]
        result: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        close_reason: Option<String>,
        /// The close contact a linked test is of.
        #[arg(long)]
        contact: Option<String>,
        /// A reason's source (case, zone, arrival), for add-reason and source-excluded.
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        via: Option<String>,
        #[arg(long)]
        exposure: Option<String>,
        /// For discharge: the profile's discharge criteria the clinician attests are met.
        #[arg(long)]
        criteria: Option<String>,
        /// Why, for the event and the audit trail.
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum FacilitiesCommand {
    /// Add or change a facility and its rooms (`--room 101` or `--room 101:2` for a capacity).
    Add {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        area: Option<String>,
        #[arg(long = "room")]
        rooms: Vec<String>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Occupancy now and the rooms needed over the coming days (JSON).
    List {
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// A room was disinfected: clean again.
    Disinfected {
        facility: String,
        room: String,
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// One JSON object per line.
    Json,
    Table,
}

fn bad(argument: &'static str, message: String) -> AppError {
    AppError::InvalidArgument { argument, message }
}

fn instant(argument: &'static str, s: &str) -> Result<jiff::Timestamp, AppError> {
    parse_instant(s).map_err(|m| bad(argument, m))
}

fn deployment(db: &Path, clock: Arc<dyn Clock>) -> anyhow::Result<Deployment> {
    let store = chainbreak_app::open(db)?;
    Ok(Deployment::new(Box::new(store), clock)?)
}

pub(crate) fn run(db: &Path, command: EpisodesCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let mut dep = deployment(db, clock)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match command {
        EpisodesCommand::List { state, owner, facility, person, overdue, format } => {
            let state = match state.as_deref() {
                None => None,
                Some(s) => Some(
                    EpisodeState::parse(s)
                        .ok_or_else(|| bad("--state", format!("`{s}` is not one of {}", EpisodeState::expected())))?,
                ),
            };
            let filter = EpisodeFilter {
                state,
                owner_unit: owner,
                facility_id: facility,
                person_id: person,
                due_before: overdue.then(|| dep.clock.now()),
            };
            if let Format::Table = format {
                writeln!(
                    out,
                    "{:<36} {:<10} {:<10} {:<18} {:<10} {:<26} room",
                    "episode", "person", "category", "state", "owner", "deadline"
                )?;
            }
            let mut after: Option<String> = None;
            loop {
                let page = episodes::list(&dep, None, &filter, after.as_deref(), 1000)?;
                for e in &page {
                    match format {
                        Format::Json => writeln!(out, "{}", serde_json::to_string(e)?)?,
                        Format::Table => writeln!(
                            out,
                            "{:<36} {:<10} {:<10} {:<18} {:<10} {:<26} {}",
                            e.id,
                            e.person_id,
                            e.category,
                            e.state.as_str(),
                            e.owner_unit,
                            e.deadline.map(|d| d.to_string()).unwrap_or_default(),
                            match (&e.facility_id, &e.room_id) {
                                (Some(f), Some(r)) => format!("{f}/{r}"),
                                _ => String::new(),
                            }
                        )?,
                    }
                }
                match page.last() {
                    Some(last) if page.len() == 1000 => after = Some(last.id.clone()),
                    _ => break,
                }
            }
        }
        EpisodesCommand::Tasks { overdue, unit } => {
            for t in episodes::tasks(&mut dep, None, overdue, unit.as_deref())? {
                writeln!(out, "{}", serde_json::to_string(&t)?)?;
            }
        }
        EpisodesCommand::Show { id } => {
            let view = episodes::show(&mut dep, None, &id)?;
            serde_json::to_writer_pretty(&mut out, &view)?;
            writeln!(out)?;
        }
        EpisodesCommand::Open { person, category, source, via, exposure, owner, actor } => {
            let category = Category::parse(&category)
                .ok_or_else(|| bad("--category", format!("`{category}` is not one of {}", Category::expected())))?;
            let reason = Reason { source, via, at: instant("--exposure", &exposure)?, evidence: None };
            let actor = crate::cli_actor(actor, "chainbreak episodes open");
            let request = Request::Open { id: None, person, category, plan: None, reason, owner, confirmed: true };
            let done = episodes::transition(&mut dep, &actor, None, &[request])?;
            writeln!(out, "{}", serde_json::to_string(&done[0])?)?;
        }
        EpisodesCommand::Transition {
            id,
            action,
            facility,
            room,
            taken_at,
            result: result_arg,
            to,
            close_reason,
            contact,
            source,
            via,
            exposure,
            criteria,
            note,
            actor,
        } => {
            let result = |r: Option<String>| -> anyhow::Result<TestResult> {
                let r = r.context("a test needs --result negative|positive")?;
                Ok(TestResult::parse(&r).ok_or_else(|| bad("--result", format!("`{r}`: negative or positive")))?)
            };
            let action = match action.as_str() {
                "confirm" => Action::Confirm,
                "reject" => Action::Reject,
                "notify" => Action::Notify,
                "unreachable" => Action::Unreachable,
                "refuse" => Action::Refuse,
                "transfer" => Action::Transfer {
                    facility: facility.context("transfer needs --facility")?,
                    room: room.unwrap_or_default(),
                },
                "start" => Action::Start,
                "test" => Action::Test {
                    taken_at: instant("--taken-at", taken_at.as_deref().context("test needs --taken-at")?)?,
                    result: result(result_arg.clone())?,
                    lab_test: None,
                },
                "linked-test" | "linked_test" => Action::LinkedTest {
                    contact: contact.context("linked-test needs --contact")?,
                    taken_at: instant("--taken-at", taken_at.as_deref().context("linked-test needs --taken-at")?)?,
                    result: result(result_arg.clone())?,
                    lab_test: None,
                },
                "add-reason" | "add_reason" => Action::AddReason {
                    reason: Reason {
                        source: source.context("add-reason needs --source")?,
                        via,
                        at: instant("--exposure", exposure.as_deref().context("add-reason needs --exposure")?)?,
                        evidence: note.clone(),
                    },
                },
                "source-excluded" | "source_excluded" => {
                    Action::SourceExcluded { source: source.context("source-excluded needs --source")? }
                }
                "release" => Action::Release,
                "discharge" => Action::Discharge { criteria: criteria.context("discharge needs --criteria")? },
                "hand-over" | "hand_over" => Action::HandOver { to: to.context("hand-over needs --to")? },
                "acknowledge" => Action::Acknowledge,
                "lost" => Action::Lost,
                "close" => Action::Close {
                    reason: {
                        let r = close_reason.context("close needs --close-reason")?;
                        CloseReason::parse(&r).ok_or_else(|| {
                            bad("--close-reason", format!("`{r}` is not one of {}", CloseReason::expected()))
                        })?
                    },
                },
                other => return Err(bad("action", format!("`{other}` is not an action (see --help)")).into()),
            };
            let mut actor = crate::cli_actor(actor, "chainbreak episodes transition");
            if note.is_some() {
                actor.reason = note;
            }
            let requests = [Request::Act { episode: id, action }];
            let mut done = episodes::transition(&mut dep, &actor, None, &requests)?;
            // A positive opens a suspected case and starts tracing, as a lab result does.
            let response = episodes::respond_to_positives(&mut dep, &actor, &requests, &done)
                .context("the transition is recorded, but the positive's response failed (trace the case by hand)")?;
            if response != Default::default() {
                done[0].response = Some(response);
            }
            writeln!(out, "{}", serde_json::to_string(&done[0])?)?;
        }
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn run_facilities(db: &Path, command: FacilitiesCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let mut dep = deployment(db, clock)?;
    match command {
        FacilitiesCommand::Add { id, name, area, rooms, actor } => {
            let rooms = rooms
                .iter()
                .map(|r| {
                    let (room, capacity) = match r.split_once(':') {
                        Some((room, c)) => {
                            (room, c.parse().map_err(|_| bad("--room", format!("`{r}`: ROOM or ROOM:CAPACITY")))?)
                        }
                        None => (r.as_str(), 1),
                    };
                    Ok(RoomRow { id: room.to_string(), capacity, state: "clean".into() })
                })
                .collect::<Result<Vec<_>, AppError>>()?;
            let n = rooms.len();
            let actor = crate::cli_actor(actor, "chainbreak facilities add");
            episodes::put_facilities(&mut dep, &actor, None, &[FacilityRow { id: id.clone(), name, area, rooms }])?;
            println!("facility {id}: {n} rooms added or changed");
        }
        FacilitiesCommand::List { days } => {
            let views = episodes::facility_views(&mut dep, days)?;
            println!("{}", serde_json::to_string_pretty(&views)?);
        }
        FacilitiesCommand::Disinfected { facility, room, actor } => {
            let actor = crate::cli_actor(actor, "chainbreak facilities disinfected");
            episodes::rooms_disinfected(&mut dep, &actor, None, &facility, &[room.as_str()])?;
            println!("room {room} of {facility} is clean");
        }
    }
    Ok(())
}
