//! `chainbreak goods`: imported cold-chain and other high-risk goods (issue 10; read only for
//! now).

use std::path::Path;
use std::sync::Arc;

use chainbreak_core::time::Clock;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum GoodsCommand {
    /// A batch traced downstream (every batch derived from it and every place they went to,
    /// with the last holders and the workers on their staff: the recall list and the places to
    /// seal) and upstream (the batches it came from, their plants and sibling batches), as JSON.
    Trace {
        #[arg(long)]
        batch: String,
    },
}

pub(crate) fn run(db: &Path, command: GoodsCommand, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let dep = crate::alerts::deployment(db, clock)?;
    match command {
        GoodsCommand::Trace { batch } => {
            println!("{}", serde_json::to_string_pretty(&chainbreak_app::goods::trace(&dep, &batch)?)?);
        }
    }
    Ok(())
}
