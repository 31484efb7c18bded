//! `chainbreak simulate`: the synthetic city and its outbreak (crates/sim), written as import
//! files.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use chainbreak_sim::CityParams;
use chainbreak_sim::write::Stats;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum SimulateCommand {
    /// A synthetic city without an outbreak: areas, units, places, persons, staff, groups,
    /// memberships, visits, trips, passengers, arrivals (and pings with --ping-share).
    City(CityArgs),
    /// A synthetic city with an outbreak and no response: the city's files (visits of the last
    /// 14 days only, unless --all-visits or --visit-days), cases, lab tests, sentinel reports, goods batches
    /// and hops, and ground_truth.csv (who infected whom; for evaluation only).
    Outbreak(OutbreakArgs),
}

#[derive(Args)]
pub struct OutbreakArgs {
    #[command(flatten)]
    city: CityArgs,
    /// A built-in pathogen profile (omicron, ancestral) or a path to a pathogen TOML file.
    #[arg(long, default_value = "omicron")]
    pathogen: String,
    /// Write every day's visits, not only the last 14 days'.
    #[arg(long, conflicts_with = "visit_days")]
    all_visits: bool,
    /// Write the visits of the last N days only (0: no visits file; presence at places is
    /// simulated every day all the same).
    #[arg(long, default_value_t = chainbreak_sim::write::VISIT_DAYS)]
    visit_days: u32,
}

#[derive(Args)]
pub struct CityArgs {
    /// Number of persons.
    #[arg(long)]
    persons: u32,
    /// Number of days of movements.
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory (created if missing; files in it are replaced).
    #[arg(long)]
    out: PathBuf,
    /// First day (local date, Asia/Shanghai).
    #[arg(long, default_value = "2022-03-01")]
    start: jiff::civil::Date,
    /// Share of persons whose phone emits location pings (0: no pings file).
    #[arg(long, default_value_t = 0.0)]
    ping_share: f64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(command: SimulateCommand) -> anyhow::Result<()> {
    match command {
        SimulateCommand::City(a) => {
            let params = city_params(&a)?;
            let started = Instant::now();
            let bar = day_bar(a.days);
            let stats =
                chainbreak_sim::write::simulate_city(params, &a.out, &mut |done, _| bar.set_position(done as u64))
                    .with_context(|| format!("simulating into {}", a.out.display()))?;
            bar.finish_and_clear();
            report(&stats, started.elapsed().as_secs_f64(), a.json)?;
        }
        SimulateCommand::Outbreak(o) => {
            let params = city_params(&o.city)?;
            let pathogen = chainbreak_sim::Pathogen::load(&o.pathogen)?;
            let started = Instant::now();
            let bar = day_bar(o.city.days);
            let options =
                chainbreak_sim::write::OutbreakOptions { visit_days: (!o.all_visits).then_some(o.visit_days) };
            let stats =
                chainbreak_sim::write::simulate_outbreak(params, pathogen, options, &o.city.out, &mut |d, _| {
                    bar.set_position(d as u64)
                })
                .with_context(|| format!("simulating into {}", o.city.out.display()))?;
            bar.finish_and_clear();
            report(&stats, started.elapsed().as_secs_f64(), o.city.json)?;
        }
    }
    Ok(())
}

fn city_params(a: &CityArgs) -> anyhow::Result<CityParams> {
    let mut params = CityParams::new(a.persons, a.days, a.seed);
    params.start = a.start;
    params.ping_share = a.ping_share;
    params.validate()?;
    Ok(params)
}

fn day_bar(days: u32) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(days as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} day {pos}/{len} (eta {eta})")
            .expect("valid template"),
    );
    bar
}

fn report(stats: &Stats, seconds: f64, json: bool) -> anyhow::Result<()> {
    if json {
        let files: Vec<serde_json::Value> = stats
            .files
            .iter()
            .map(|(name, bytes, rows)| serde_json::json!({"file": name, "bytes": bytes, "rows": rows}))
            .collect();
        let v = serde_json::json!({
            "seconds": seconds,
            "generate_seconds": stats.generate.as_secs_f64(),
            "format_seconds": stats.format.as_secs_f64(),
            "write_seconds": stats.write.as_secs_f64(),
            "bytes": stats.bytes(),
            "files": files,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (name, bytes, rows) in &stats.files {
            println!("{name:<20} {rows:>12} rows {bytes:>15} bytes");
        }
        println!(
            "wrote {} bytes in {:.2} s (generate {:.2} s, format {:.2} s, write {:.2} s)",
            stats.bytes(),
            seconds,
            stats.generate.as_secs_f64(),
            stats.format.as_secs_f64(),
            stats.write.as_secs_f64()
        );
    }
    Ok(())
}
