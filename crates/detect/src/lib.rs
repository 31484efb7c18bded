//! chainbreak's surveillance statistics: aberration detection on count series (EARS C1, C2, C3;
//! CUSUM; Farrington, original and improved) and the reproduction number of Cori et al. 2013,
//! each computing what R's `surveillance` 1.20.3 and `EpiEstim` 2.2-4 compute.
//!
//! The crate is an engine: synchronous, deterministic, no IO. Series are slices of
//! `Option<f64>`: `None` is a missing report (R's `NA`), never a zero; each algorithm treats it as
//! its R function does (documented on the function). Time points are 1-based, as in R.

pub mod cusum;
pub mod ears;
pub mod epiestim;
pub mod farrington;
pub mod glm;
mod hypgeom_table;
pub mod stats;

/// Why a computation cannot be done (R would `stop()`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The series is too short for the baseline or reference period asked for.
    #[error("the series is too short for the reference period")]
    TooShort,
    /// A value the method cannot do without is missing (R stops on `NA` there).
    #[error("a value is missing where the method needs every value")]
    Missing,
    /// A parameter is outside what the method accepts.
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
}

/// One monitored time point of an aberration-detection method.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// 1-based index of the time point in the series.
    pub t: usize,
    /// The observed count (`None`: missing).
    pub observed: Option<f64>,
    /// The expected count, the centre the upper bound is built on (`None` where undefined).
    pub expected: Option<f64>,
    /// The upper bound (`None` where R gives `NA`/`NaN`).
    pub upperbound: Option<f64>,
    /// Whether the observed count is above the bound (`None` where R gives `NA`).
    pub alarm: Option<bool>,
}

/// R's value (`NA` and `NaN` both `None`).
pub(crate) fn r_value(x: f64) -> Option<f64> {
    if x.is_nan() { None } else { Some(x) }
}

/// A series value as R sees it: `NA` as NaN, to propagate as R's arithmetic does.
pub(crate) fn r_num(x: Option<f64>) -> f64 {
    x.unwrap_or(f64::NAN)
}

/// R's `pmax(a, b)` for one pair: NA (NaN) wins.
pub(crate) fn pmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

/// R's `mean(x)` (no `na.rm`): NaN if any value is missing.
///
/// R sums in long double and refines the quotient, so its mean is the exact mean rounded once to
/// a double. Here the sum is kept exactly as a double-double (Knuth's two-sum) and divided with a
/// fused remainder, which rounds the same way. The last bit matters: CUSUM's `anscombeNegBin`
/// looks `−alpha·m` up in a table by the nearest entry, and a mean one unit in the last place off
/// picks the other neighbour at a tie.
pub(crate) fn r_mean(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mut hi, mut lo) = (0.0_f64, 0.0_f64);
    for &v in x {
        let s = hi + v;
        let bb = s - hi;
        lo += (hi - (s - bb)) + (v - bb);
        hi = s;
    }
    let q = hi / n;
    if !q.is_finite() {
        return q;
    }
    // (hi + lo − q·n)/n, with q·n's rounding error taken exactly by the fused multiply-add.
    q + ((-q).mul_add(n, hi) + lo) / n
}

/// R's `sd(x)`: sample standard deviation, NaN if any value is missing.
pub(crate) fn r_sd(x: &[f64]) -> f64 {
    let m = r_mean(x);
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() as f64 - 1.0)).sqrt()
}

/// R's `observed > bound`, `NA` if either is.
pub(crate) fn r_greater(observed: f64, bound: f64) -> Option<bool> {
    if observed.is_nan() || bound.is_nan() { None } else { Some(observed > bound) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_is_rounded_once_as_in_r() {
        // 11 ones among 60 values: R's mean is 0.18333333333333332 (11/60 rounded once).
        let mut x = vec![0.0; 60];
        for v in x.iter_mut().step_by(5).take(11) {
            *v = 1.0;
        }
        assert_eq!(r_mean(&x), 11.0 / 60.0);
        assert_eq!(r_mean(&[0.1, 0.2, 0.3]), 0.2);
        assert!(r_mean(&[1.0, f64::NAN]).is_nan());
    }

    #[test]
    fn pmax_propagates_missing() {
        assert!(pmax(0.0, f64::NAN).is_nan());
        assert_eq!(pmax(0.0, -1.0), 0.0);
        assert_eq!(r_greater(f64::NAN, 1.0), None);
    }
}
