//! A rough timing of Farrington with the Noufaily settings (b = 4): `series` weekly series of 312
//! weeks, the last 52 weeks of each monitored.
//!
//!     cargo run --release -p chainbreak-detect --example farrington_speed -- 200
//!
//! Deterministic counts (a seasonal mean with a multiplicative hash as noise); not a benchmark of
//! record (issue 7 asks for one in BENCHMARKS.md).

use std::time::Instant;

use chainbreak_detect::farrington::{Control, Series, ThresholdMethod, farrington_flexible};

fn main() {
    let n_series: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let weeks = 312;
    let all: Vec<Vec<Option<f64>>> = (0..n_series)
        .map(|s| {
            (0..weeks)
                .map(|w| {
                    let mean = 6.0 * (1.0 + 0.5 * (2.0 * std::f64::consts::PI * w as f64 / 52.0).sin());
                    let h = ((s * 7919 + w * 104729) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                    let noise = (h % 1000) as f64 / 1000.0 - 0.5;
                    Some((mean * (1.0 + noise)).round().max(0.0))
                })
                .collect()
        })
        .collect();
    let mut control = if std::env::args().nth(2).as_deref() == Some("original") {
        Control::original()
    } else {
        Control::noufaily(ThresholdMethod::NbPlugin)
    };
    // Six years hold 52 monitored weeks only with b = 4 (b = 5 needs week 264 onwards).
    control.b = 4;
    control.range = Some((weeks - 51, weeks));
    let start = Instant::now();
    let mut alarms = 0;
    for x in &all {
        let s = Series { observed: x, freq: 52, dates: None, population: None };
        alarms += farrington_flexible(&s, &control).unwrap().iter().filter(|p| p.point.alarm == Some(true)).count();
    }
    let secs = start.elapsed().as_secs_f64();
    let points = n_series * 52;
    println!(
        "{n_series} series, {points} time points in {secs:.2} s: {:.1} µs a point, {alarms} alarms",
        secs * 1e6 / points as f64
    );
}
