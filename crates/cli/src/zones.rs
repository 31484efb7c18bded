//! `chainbreak zones`: risk zones proposed from cases by the profile's rules (issue 8; read
//! only for now: nothing is recorded, confirmed or lifted).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use chainbreak_core::time::Clock;
use clap::{Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum ZonesCommand {
    /// The zones the profile draws for these cases (high, medium, low; widened for unknown
    /// sources), each with its reasons; what the data cannot draw is listed as undecided.
    Propose {
        /// A case id (repeat for several).
        #[arg(long = "case", required = true)]
        cases: Vec<String>,
        /// `json` (the proposals, undecided and skipped cases) or `geojson` (a
        /// FeatureCollection: area polygons, place points, the proposal as properties).
        #[arg(long, value_enum, default_value_t = ZoneFormat::Json)]
        format: ZoneFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ZoneFormat {
    Json,
    Geojson,
}

pub(crate) fn run(db: &Path, command: ZonesCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let dep = crate::alerts::deployment(db, clock)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match command {
        ZonesCommand::Propose { cases, format } => {
            let plan = chainbreak_app::zones::propose(&dep, &cases)?;
            match format {
                ZoneFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?,
                ZoneFormat::Geojson => {
                    let fc = chainbreak_app::zones::to_geojson(&dep, &plan)?;
                    writeln!(out, "{}", serde_json::to_string_pretty(&fc)?)?
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}
