//! The goods benchmark (issue 10): a seeded synthetic cold chain of `--batches` batches and
//! `--hops` hops (default 1,000,000 and 10,000,000), indexed once, then the downstream trace of
//! positive batches chosen by a seeded rule, each timed `--runs` times (median kept), reported
//! by the size of what it reaches (hops followed).
//!
//! The chain: a fifth of the batches are imported (each from one of `--plants` plants, through
//! a port to a cold store); the others are repacked from an earlier batch (an imported one with
//! a heavy-tailed choice, so a few batches are split into thousands; one in ten from a batch
//! itself repacked), half by the batch's `parent_batch_id` and half by a `repack` hop; the rest
//! of the hops are transfers of a batch chosen at random from where it is to one of `--places`
//! places, day by day. Deterministic: the same arguments give the same records.
//!
//!     cargo run --release -p chainbreak-goods --example goods_bench -- --batches 1000000 --hops 10000000
//!
//! Prints one JSON object (generation and index seconds, and per bucket of reachable hops the
//! traces' count, the median, 99th percentile and maximum of their median times in ms for the
//! trace (`Goods::reach`: every batch and place reached with its dates, by index), the maximum
//! of their fastest runs (on a loaded machine, the closest to a trace's own cost), and the
//! median and maximum with every id spelled out (`Goods::downstream`, what the application
//! reads)).

use std::time::Instant;

use chainbreak_core::model::{GoodsBatch, GoodsHop, HopKind};
use chainbreak_goods::Goods;
use jiff::civil::{Date, date};

/// splitmix64: a small seeded generator, enough for a benchmark's records.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Args {
    batches: usize,
    hops: usize,
    places: usize,
    plants: usize,
    traces: usize,
    runs: usize,
    seed: u64,
}

fn args() -> Args {
    let mut a =
        Args { batches: 1_000_000, hops: 10_000_000, places: 100_000, plants: 5_000, traces: 2_000, runs: 5, seed: 1 };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = || -> u64 {
            pair.get(1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{} needs a number", pair[0]))
        };
        match pair[0].as_str() {
            "--batches" => a.batches = value() as usize,
            "--hops" => a.hops = value() as usize,
            "--places" => a.places = value() as usize,
            "--plants" => a.plants = value() as usize,
            "--traces" => a.traces = value() as usize,
            "--runs" => a.runs = value() as usize,
            "--seed" => a.seed = value(),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn day(start: Date, d: u64) -> Date {
    start.checked_add(jiff::Span::new().days(d as i64)).expect("in range")
}

fn generate(a: &Args) -> (Vec<GoodsBatch>, Vec<GoodsHop>) {
    let mut r = Rng(a.seed);
    let start = date(2022, 1, 1);
    let imported = (a.batches / 5).max(1);
    let id = |b: usize| format!("B{b:07}");
    let place = |p: u64| format!("L{p:06}");
    let mut batches = Vec::with_capacity(a.batches);
    let mut hops = Vec::with_capacity(a.hops);
    // Where each batch is now, and its day.
    let mut at: Vec<(u64, u64)> = Vec::with_capacity(a.batches);
    for b in 0..a.batches {
        let mut batch = GoodsBatch {
            id: id(b),
            product: "frozen shrimp".into(),
            origin_country: "EC".into(),
            plant: None,
            port: None,
            entry_date: None,
            inspection_cert: None,
            test_cert: None,
            disinfection_cert: None,
            trace_code: None,
            parent_batch_id: None,
        };
        if b < imported {
            let d = r.below(60);
            let (port, store) = (r.below(20), 20 + r.below(500));
            batch.plant = Some(format!("EC-PLANT-{:05}", r.below(a.plants as u64)));
            batch.entry_date = Some(day(start, d));
            hops.push(GoodsHop {
                batch_id: id(b),
                kind: HopKind::Transfer,
                from_place: Some(place(port)),
                to_place: Some(place(store)),
                to_batch_id: None,
                date: day(start, d),
                quantity: None,
            });
            at.push((store, d));
        } else {
            // Heavy-tailed: a few imported batches are split into thousands.
            let parent = if r.below(10) == 0 && b > imported {
                imported + r.below((b - imported) as u64) as usize
            } else {
                (imported as f64 * r.unit().powi(3)) as usize
            };
            let (p, d) = at[parent];
            let d = d + 1 + r.below(3);
            if r.below(2) == 0 {
                batch.parent_batch_id = Some(id(parent));
            } else {
                hops.push(GoodsHop {
                    batch_id: id(parent),
                    kind: HopKind::Repack,
                    from_place: Some(place(p)),
                    to_place: None,
                    to_batch_id: Some(id(b)),
                    date: day(start, d),
                    quantity: None,
                });
            }
            at.push((p, d));
        }
        batches.push(batch);
    }
    while hops.len() < a.hops {
        let b = r.below(a.batches as u64) as usize;
        let (from, d) = at[b];
        let to = r.below(a.places as u64);
        let d = d + r.below(2);
        hops.push(GoodsHop {
            batch_id: id(b),
            kind: HopKind::Transfer,
            from_place: Some(place(from)),
            to_place: Some(place(to)),
            to_batch_id: None,
            date: day(start, d),
            quantity: None,
        });
        at[b] = (to, d);
    }
    (batches, hops)
}

/// The `p` quantile of sorted values, as JSON (`null` when there are none).
fn percentile(sorted: &[f64], p: f64) -> String {
    match sorted.is_empty() {
        true => "null".into(),
        false => format!("{:.3}", sorted[((sorted.len() - 1) as f64 * p).round() as usize]),
    }
}

fn main() {
    let a = args();
    let t = Instant::now();
    let (batches, hops) = generate(&a);
    let generated = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let goods = Goods::new(&batches, &hops).expect("the generated records are consistent");
    let indexed = t.elapsed().as_secs_f64();
    // Positive batches by a seeded rule: uniform over all batches, and as many again among the
    // imported ones (the heavy fan-outs), so every size of reach is represented.
    let mut r = Rng(a.seed ^ 0x00C0_FFEE);
    let imported = (a.batches / 5).max(1) as u64;
    let chosen: Vec<String> = (0..a.traces)
        .map(|i| {
            let b = if i % 2 == 0 { r.below(a.batches as u64) } else { (imported as f64 * r.unit().powi(2)) as u64 };
            format!("B{b:07}")
        })
        .collect();
    drop(batches);
    drop(hops);
    // Buckets of reachable hops: ≤ 100, ≤ 1,000, ≤ 10,000, more.
    let bounds = [100usize, 1_000, 10_000, usize::MAX];
    let mut by_bucket: Vec<Vec<f64>> = vec![Vec::new(); bounds.len()];
    // Each trace's fastest run: on a loaded machine, the closest to its own cost.
    let mut best_by_bucket: Vec<Vec<f64>> = vec![Vec::new(); bounds.len()];
    // The same traces with every batch and place spelled out by id (`Goods::downstream`).
    let mut named_by_bucket: Vec<Vec<f64>> = vec![Vec::new(); bounds.len()];
    let mut reach_max = [0usize; 4];
    let mut checksum = 0usize;
    for b in &chosen {
        let mut times = Vec::with_capacity(a.runs);
        let mut named = Vec::with_capacity(a.runs);
        let mut hops_followed = 0;
        for _ in 0..a.runs {
            let t = Instant::now();
            let r = goods.reach(b).expect("a generated batch");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            hops_followed = r.hops;
            checksum = checksum.wrapping_add(r.places.len() + r.batches.len());
            let t = Instant::now();
            let d = goods.downstream(b).expect("a generated batch");
            named.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!((d.hops, d.places.len(), d.batches.len()), (r.hops, r.places.len(), r.batches.len()));
        }
        times.sort_by(f64::total_cmp);
        named.sort_by(f64::total_cmp);
        let k = bounds.iter().position(|&m| hops_followed <= m).expect("the last bound is MAX");
        by_bucket[k].push(times[times.len() / 2]);
        best_by_bucket[k].push(times[0]);
        named_by_bucket[k].push(named[named.len() / 2]);
        reach_max[k] = reach_max[k].max(hops_followed);
    }
    let names = ["<=100", "101-1000", "1001-10000", ">10000"];
    let buckets: Vec<String> = by_bucket
        .iter_mut()
        .zip(best_by_bucket.iter_mut())
        .zip(named_by_bucket.iter_mut())
        .zip(names)
        .zip(reach_max)
        .map(|((((v, best), named), name), most)| {
            v.sort_by(f64::total_cmp);
            best.sort_by(f64::total_cmp);
            named.sort_by(f64::total_cmp);
            format!(
                r#"{{"reachable_hops": "{name}", "traces": {}, "largest_reach": {most}, "median_ms": {}, "p99_ms": {}, "max_ms": {}, "max_best_of_runs_ms": {}, "named_median_ms": {}, "named_max_ms": {}}}"#,
                v.len(),
                percentile(v, 0.5),
                percentile(v, 0.99),
                percentile(v, 1.0),
                percentile(best, 1.0),
                percentile(named, 0.5),
                percentile(named, 1.0)
            )
        })
        .collect();
    println!(
        r#"{{"batches": {}, "hops": {}, "places": {}, "seed": {}, "runs": {}, "generate_s": {generated:.2}, "index_s": {indexed:.2}, "checksum": {checksum}, "buckets": [{}]}}"#,
        a.batches,
        a.hops,
        a.places,
        a.seed,
        a.runs,
        buckets.join(", ")
    );
}
