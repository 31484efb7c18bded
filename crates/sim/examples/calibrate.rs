//! Prints early growth (days 10–30) for a few seeds: `cargo run --release -p chainbreak-sim
//! --example calibrate -- PERSONS SEEDS PATHOGEN [INITIAL]`.

use chainbreak_sim::outbreak::early_growth;
use chainbreak_sim::{CityParams, Outbreak, Pathogen};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let persons: u32 = args.get(1).map_or(100_000, |a| a.parse().unwrap());
    let seeds: u64 = args.get(2).map_or(3, |a| a.parse().unwrap());
    let mut pathogen = Pathogen::load(args.get(3).map_or("omicron", |s| s.as_str())).unwrap();
    if let Some(i) = args.get(4) {
        pathogen.importation.initial_infections = i.parse().unwrap();
    }
    // Means over the runs that took off (≥ 100 infections in the window), as the CI test.
    let (mut td, mut r, mut grown) = (0.0, 0.0, 0u32);
    for seed in 1..=seeds {
        let t = std::time::Instant::now();
        let mut sim = Outbreak::new(CityParams::new(persons, 45, seed), pathogen.clone()).unwrap();
        for _ in 0..45 {
            sim.step_day().unwrap();
        }
        let g = early_growth(&sim.infections, sim.city.t0, 10, 30);
        let total = sim.infections.len();
        let when: std::collections::HashMap<u32, i64> = sim.infections.iter().map(|i| (i.infectee, i.t)).collect();
        let mut by_route: std::collections::BTreeMap<&str, (f64, u64)> = Default::default();
        for i in &sim.infections {
            if let Some(t) = when.get(&i.infector) {
                let e = by_route.entry(i.route.as_str()).or_default();
                e.0 += (i.t - t) as f64 / 86400.0;
                e.1 += 1;
            }
        }
        let mut daily = vec![0u32; 45];
        for i in &sim.infections {
            let d = ((i.t - sim.city.t0).div_euclid(86400)).clamp(0, 44) as usize;
            daily[d] += 1;
        }
        println!("  daily: {daily:?}");
        for (route, (sum, n)) in by_route {
            println!("  {route}: {n} infections, mean generation {:.2} d", sum / n as f64);
        }
        println!(
            "seed {seed}: beta {:.4} stretch {:.3} doubling {:.2} d, R {:.2}, {} infections days 10-30, {total} total, {:.1} s",
            sim.beta,
            sim.stretch,
            g.doubling_days,
            g.r,
            g.infections,
            t.elapsed().as_secs_f64()
        );
        if g.infections >= 100 {
            td += g.doubling_days;
            r += g.r;
            grown += 1;
        }
    }
    println!(
        "{grown} of {seeds} runs took off: mean doubling {:.2} d (target {}), mean R {:.3} (target {})",
        td / grown.max(1) as f64,
        pathogen.transmission.target_doubling_days,
        r / grown.max(1) as f64,
        pathogen.transmission.target_r
    );
}
