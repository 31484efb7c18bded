//! The closed loop over a simulated outbreak (`chainbreak_app::drill`): prints its report as
//! JSON. Usage: closedloop_drill DB_PATH PERSONS DAYS SEED [PROFILE]
//!
//! `bench/closedloop.sh --drill` runs it at 1,000,000 persons × 60 days (≥ 100,000 episodes).

use chainbreak_sim::{CityParams, Outbreak, Pathogen};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, persons, days, seed, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: closedloop_drill DB_PATH PERSONS DAYS SEED [PROFILE]");
    };
    let profile = rest.first().map_or("cn-2022-9th", String::as_str);
    let seed: u64 = seed.parse()?;
    let sim = Outbreak::new(CityParams::new(persons.parse()?, days.parse()?, seed), Pathogen::load("omicron")?)?;
    let report = chainbreak_app::drill::run(std::path::Path::new(db), profile, sim, seed)?;
    println!("{}", serde_json::to_string(&report)?);
    anyhow::ensure!(report.open_without_deadline == 0 && report.left_open == 0, "the loop lost someone");
    Ok(())
}
