//! EARS C1, C2 and C3, as `surveillance::earsC` 1.20.3.
//!
//! For a time point `t` the reference values are the `baseline` counts before `t` (C1) or before
//! `t − 2` (C2, C3: a lag of two). C1 and C2: `upperbound = mean + qnorm(1 − alpha) ·
//! max(sd, minSigma)`; the expected value reported is the mean. C3, as the package computes it:
//! with `C2(s) = (x_s − mean_s) / max(sd_s, minSigma)` for `s = t−2, t−1`,
//! `upperbound = max(0, x_t + max(sd_t, minSigma) · (z − max(0, C2(t−2) − 1) − max(0, C2(t−1) − 1)))`,
//! so the alarm (`x_t > upperbound`) fires when the two previous C2 excesses sum above `z` (the
//! package's quirk: the current C2 is not in the sum, and the bound contains `x_t` itself). The
//! expected value reported for C3 is the C2 mean at `t`.
//!
//! Missing values propagate as in R (`mean`, `sd` without `na.rm`): a missing reference value
//! makes the bound missing, and a missing bound or observation makes the alarm missing. A flat
//! reference (sd 0) with `minSigma = 0` gives C3 a `NaN` (missing) or infinite C2, as in R.

use crate::stats::qnorm;
use crate::{Error, Point, pmax, r_greater, r_mean, r_num, r_sd, r_value};

/// The C statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// C1: the 7 days before.
    C1,
    /// C2: the 7 days before, after a 2-day lag.
    C2,
    /// C3: C2 with the two previous C2 excesses.
    C3,
}

/// `control` of `earsC`.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    /// The statistic.
    pub method: Method,
    /// Number of reference values (default 7, at least 3).
    pub baseline: usize,
    /// Lower limit of the standard deviation (default 0).
    pub min_sigma: f64,
    /// `None`: 0.001 for C1 and C2, 0.025 for C3 (the package's defaults).
    pub alpha: Option<f64>,
    /// 1-based inclusive range of time points monitored; `None`: from the first point with a full
    /// reference (`baseline + 1`, `+ 3`, `+ 5` for C1, C2, C3) to the end.
    pub range: Option<(usize, usize)>,
}

impl Control {
    /// The package defaults for a method.
    pub fn new(method: Method) -> Self {
        Control { method, baseline: 7, min_sigma: 0.0, alpha: None, range: None }
    }
}

/// `earsC(sts, control)` on one series.
pub fn ears_c(observed: &[Option<f64>], control: &Control) -> Result<Vec<Point>, Error> {
    let baseline = control.baseline;
    if control.min_sigma < 0.0 || control.min_sigma.is_nan() {
        return Err(Error::InvalidParameter("minSigma must be >= 0"));
    }
    if baseline < 3 {
        return Err(Error::InvalidParameter("the minimum baseline is 3"));
    }
    let (lag, first, default_alpha) = match control.method {
        Method::C1 => (0, baseline + 1, 0.001),
        Method::C2 => (2, baseline + 3, 0.001),
        Method::C3 => (2, baseline + 5, 0.025),
    };
    let alpha = control.alpha.unwrap_or(default_alpha);
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::InvalidParameter("alpha must be in (0, 1)"));
    }
    let (from, to) = control.range.unwrap_or((first, observed.len()));
    if from < first || to < first {
        return Err(Error::TooShort);
    }
    if from > to || to > observed.len() {
        return Err(Error::InvalidParameter("range outside the series"));
    }
    let z = qnorm(1.0 - alpha);
    let x: Vec<f64> = observed.iter().map(|&v| r_num(v)).collect();
    // Mean and sigma of the reference of 1-based time point t.
    let reference = |t: usize| {
        let refs = &x[t - lag - baseline - 1..t - lag - 1];
        (r_mean(refs), pmax(r_sd(refs), control.min_sigma))
    };
    Ok((from..=to)
        .map(|t| {
            let (mean, sigma) = reference(t);
            let bound = match control.method {
                Method::C1 | Method::C2 => mean + z * sigma,
                Method::C3 => {
                    let c2 = |s: usize| {
                        let (m, sg) = reference(s);
                        (x[s - 1] - m) / sg
                    };
                    let part2 = pmax(0.0, c2(t - 2) - 1.0);
                    let part1 = pmax(0.0, c2(t - 1) - 1.0);
                    pmax(0.0, x[t - 1] + sigma * (z - (part2 + part1)))
                }
            };
            Point {
                t,
                observed: observed[t - 1],
                expected: r_value(mean),
                upperbound: r_value(bound),
                alarm: r_greater(x[t - 1], bound),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().map(|&x| Some(x)).collect()
    }

    #[test]
    fn c1_by_hand() {
        let x = some(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 20.0]);
        let p = ears_c(&x, &Control::new(Method::C1)).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].t, 8);
        let sd = (28.0f64 / 6.0).sqrt();
        assert!((p[0].upperbound.unwrap() - (4.0 + qnorm(0.999) * sd)).abs() < 1e-12);
        assert_eq!(p[0].expected, Some(4.0));
        assert_eq!(p[0].alarm, Some(true));
    }

    #[test]
    fn too_short() {
        let x = some(&[1.0; 7]);
        assert_eq!(ears_c(&x, &Control::new(Method::C1)), Err(Error::TooShort));
        let x = some(&[1.0; 11]);
        assert_eq!(ears_c(&x, &Control::new(Method::C3)), Err(Error::TooShort));
        assert!(ears_c(&some(&[1.0; 12]), &Control::new(Method::C3)).is_ok());
    }

    #[test]
    fn missing_reference_makes_bound_and_alarm_missing() {
        let mut x = some(&[2.0; 12]);
        x[3] = None;
        let p = ears_c(&x, &Control::new(Method::C1)).unwrap();
        // t = 8..=11 have index 4 (t = 4) in their reference; t = 12 does not.
        assert!(p[..4].iter().all(|p| p.upperbound.is_none() && p.alarm.is_none()));
        assert_eq!(p[4].upperbound, Some(2.0));
        assert_eq!(p[4].alarm, Some(false));
        let mut y = some(&[2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0]);
        y[8] = None;
        let p = ears_c(&y, &Control::new(Method::C1)).unwrap();
        assert!(p[1].upperbound.is_some() && p[1].alarm.is_none());
    }

    #[test]
    fn zeros_give_a_zero_bound_and_min_sigma_lifts_it() {
        let x = some(&[0.0; 14]);
        let p = ears_c(&x, &Control::new(Method::C2)).unwrap();
        assert!(p.iter().all(|p| p.upperbound == Some(0.0) && p.alarm == Some(false)));
        let mut c = Control::new(Method::C2);
        c.min_sigma = 0.5;
        let p = ears_c(&x, &c).unwrap();
        assert!((p[0].upperbound.unwrap() - 0.5 * qnorm(0.999)).abs() < 1e-12);
        // C3 on a flat series without minSigma: 0/0 in C2, R gives NaN.
        let p = ears_c(&x, &Control::new(Method::C3)).unwrap();
        assert!(p.iter().all(|p| p.upperbound.is_none() && p.alarm.is_none()));
    }

    #[test]
    fn rejects_bad_control() {
        let x = some(&[1.0; 20]);
        let mut c = Control::new(Method::C1);
        c.baseline = 2;
        assert!(ears_c(&x, &c).is_err());
        let mut c = Control::new(Method::C1);
        c.min_sigma = -1.0;
        assert!(ears_c(&x, &c).is_err());
    }
}
