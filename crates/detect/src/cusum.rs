//! CUSUM as `surveillance::algo.cusum` 1.20.3 (Rossi et al. 1999 and its variants).
//!
//! The reference mean `m` is the mean of all counts before the monitored range (`m = NULL`), a
//! given number, or the fitted means of a Poisson GLM `x ~ 1 + cos(2πt/p) + sin(2πt/p)` on those
//! counts predicted over the range (`m = "glm"`, `t` numbered from the series' start week/day).
//! The monitored counts are standardised (`trans`), and
//! `S_t = max(0, S_{t−1} + z_t − k)`, alarm when `S_t ≥ h`. The upper bound is the count that
//! would have made `S_t` reach `h`, back-transformed as the package does (rounded up for
//! `standard`; `h − S_t` for `none`).
//!
//! Transformations covered: all the package has: `standard`, `rossi`, `anscombe`, `anscombe2nd`,
//! `pearsonNegBin` and `anscombeNegBin` (with `alpha`), `none`. `anscombeNegBin` evaluates the
//! hypergeometric function as the package does, from its table (`hypgeom2F1special`: the nearest
//! tabulated argument from 0 to −10 in steps of 0.01, linear interpolation between the integers
//! from −10 to −100, missing beyond); like R it needs a single `m` (R stops with `m = "glm"`) and
//! no missing count in the range (R stops), and its bound is `h − S_t`.
//!
//! Missing values, as R computes them: a missing count before the range makes `m = NULL` missing
//! and everything after it missing; a missing monitored count makes that `S_t` and every later
//! one missing (R's `max(0, NA)` is `NA`), and so the alarms. R then sets every missing upper
//! bound to 0 (`upperbound[is.na(upperbound)] <- 0`), and so does this function (a quirk: a 0
//! bound there means "unknown"). The GLM for `m = "glm"` leaves missing counts out (`na.omit`).

use crate::{Error, Point, glm, r_mean, r_num};

/// The standardisation of the counts (`trans`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trans {
    /// `(x − m)/√m`.
    Standard,
    /// `(x − 3m + 2√(xm))/(2√m)`.
    Rossi,
    /// `3/2 (x^{2/3} − m^{2/3})/m^{1/6}`.
    Anscombe,
    /// `(x^{2/3} − (m^{2/3} − m^{−1/3}/9))/(2/3 m^{1/6})`.
    Anscombe2nd,
    /// `(x − m)/√(m + alpha m²)`.
    PearsonNegBin,
    /// The Anscombe residual of a negative binomial with overdispersion `alpha`.
    AnscombeNegBin,
    /// The counts themselves.
    None,
}

/// The reference mean (`m`).
#[derive(Debug, Clone, PartialEq)]
pub enum Mean {
    /// `m = NULL`: the mean of the counts before the range.
    Past,
    /// A given value.
    Value(f64),
    /// `m = "glm"`: a seasonal Poisson GLM on the counts before the range.
    Glm {
        /// `freq` of the series (52, 365...).
        freq: f64,
        /// `start[2]`: the week (or day) number of the first count.
        start: f64,
    },
}

/// `control` of `algo.cusum`.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    /// 1-based inclusive range monitored; the first must be at least 2.
    pub range: (usize, usize),
    /// Reference value (default 1.04).
    pub k: f64,
    /// Decision interval (default 2.26).
    pub h: f64,
    /// The reference mean.
    pub m: Mean,
    /// The transformation (default `Standard`).
    pub trans: Trans,
    /// Overdispersion of `pearsonNegBin` (default 0.1).
    pub alpha: f64,
}

impl Control {
    /// The package defaults on a range.
    pub fn new(range: (usize, usize)) -> Self {
        Control { range, k: 1.04, h: 2.26, m: Mean::Past, trans: Trans::Standard, alpha: 0.1 }
    }
}

/// One monitored point, with the CUSUM statistic.
#[derive(Debug, Clone, PartialEq)]
pub struct CusumPoint {
    /// The point: `expected` is `m`, `upperbound` and `alarm` as R.
    pub point: Point,
    /// `S_t` (`None` where R has `NA`).
    pub cusum: Option<f64>,
}

/// `algo.cusum(disProg, control)`.
pub fn cusum(observed: &[Option<f64>], control: &Control) -> Result<Vec<CusumPoint>, Error> {
    let (from, to) = control.range;
    if from < 2 || from > to || to > observed.len() {
        return Err(Error::InvalidParameter("range must lie in 2..=n"));
    }
    let x_all: Vec<f64> = observed.iter().map(|&v| r_num(v)).collect();
    let len = to - from + 1;
    let m: Vec<f64> = match &control.m {
        Mean::Past => vec![r_mean(&x_all[..from - 1]); len],
        Mean::Value(v) => vec![*v; len],
        Mean::Glm { freq, start } => {
            let (freq, start) = (*freq, *start);
            let omega = 2.0 * std::f64::consts::PI / freq;
            let rows: Vec<usize> = (0..from - 1).filter(|&i| !x_all[i].is_nan()).collect();
            let t = |i: usize| start + (i + 1) as f64 - 1.0;
            let design = vec![
                vec![1.0; rows.len()],
                rows.iter().map(|&i| (omega * t(i)).cos()).collect(),
                rows.iter().map(|&i| (omega * t(i)).sin()).collect(),
            ];
            let y: Vec<f64> = rows.iter().map(|&i| x_all[i]).collect();
            if y.is_empty() {
                return Err(Error::TooShort);
            }
            let f = glm::fit(&design, &y, None, None);
            let c = |j: usize| if f.coef[j].is_nan() { 0.0 } else { f.coef[j] };
            (from..=to)
                .map(|tt| (c(0) + c(1) * (omega * t(tt - 1)).cos() + c(2) * (omega * t(tt - 1)).sin()).exp())
                .collect()
        }
    };
    let (k, h, alpha) = (control.k, control.h, control.alpha);
    if control.trans == Trans::AnscombeNegBin {
        if matches!(control.m, Mean::Glm { .. }) {
            return Err(Error::InvalidParameter("anscombeNegBin needs a single m, not m = \"glm\""));
        }
        if x_all[from - 1..to].iter().any(|x| x.is_nan()) {
            return Err(Error::Missing);
        }
    }
    let mut s_prev = 0.0_f64;
    let mut out = Vec::with_capacity(len);
    for (i, t) in (from..=to).enumerate() {
        let x = x_all[t - 1];
        let m = m[i];
        let z = match control.trans {
            Trans::Rossi => (x - 3.0 * m + 2.0 * (x * m).sqrt()) / (2.0 * m.sqrt()),
            Trans::Standard => (x - m) / m.sqrt(),
            Trans::Anscombe => 1.5 * (x.powf(2.0 / 3.0) - m.powf(2.0 / 3.0)) / m.powf(1.0 / 6.0),
            Trans::Anscombe2nd => {
                (x.powf(2.0 / 3.0) - (m.powf(2.0 / 3.0) - m.powf(-1.0 / 3.0) / 9.0)) / (2.0 / 3.0 * m.powf(1.0 / 6.0))
            }
            Trans::PearsonNegBin => (x - m) / (m + alpha * m * m).sqrt(),
            Trans::AnscombeNegBin => anscombe_nb(x, m, alpha),
            Trans::None => x,
        };
        // R's max(0, NA) is NA; NaN (0/0) likewise.
        let s = if s_prev.is_nan() || z.is_nan() { f64::NAN } else { 0.0_f64.max(s_prev + (z - k)) };
        let c = s_prev; // C_{t−1}
        let bound = match control.trans {
            Trans::Rossi => {
                2.0 * h * m.sqrt() + 2.0 * k * m.sqrt() - 2.0 * c * m.sqrt() + 5.0 * m
                    - 2.0 * (4.0 * m * m + 2.0 * m.powf(1.5) * h + 2.0 * m.powf(1.5) * k - 2.0 * m.powf(1.5) * c).sqrt()
            }
            Trans::Standard => (m.sqrt() * (h + k - c) + m).ceil(),
            Trans::Anscombe => {
                let base = (2.0 / 3.0) * m.powf(1.0 / 6.0) * (h + k - c) + m.powf(2.0 / 3.0);
                if base < 0.0 { 0.0 } else { base.powf(1.5) }
            }
            Trans::Anscombe2nd => {
                // The package's bound uses m^(1/3)/9 where the transform has m^(-1/3)/9 (kept).
                let base =
                    (2.0 / 3.0) * m.powf(1.0 / 6.0) * (h + k - c) + (m.powf(2.0 / 3.0) - m.powf(1.0 / 3.0) / 9.0);
                if base < 0.0 { 0.0 } else { base.powf(1.5) }
            }
            Trans::PearsonNegBin => (m + alpha * m * m).sqrt() * (h + k - c) + m,
            Trans::AnscombeNegBin | Trans::None => h - s,
        };
        let bound = if bound.is_nan() || bound < 0.0 { 0.0 } else { bound };
        let alarm = if s.is_nan() { None } else { Some(s >= h) };
        out.push(CusumPoint {
            point: Point { t, observed: observed[t - 1], expected: crate::r_value(m), upperbound: Some(bound), alarm },
            cusum: crate::r_value(s),
        });
        s_prev = s;
    }
    Ok(out)
}

/// surveillance's `hypgeom2F1special(x)`: ₂F₁ from the package's table.
fn hypgeom_2f1_special(x: f64) -> f64 {
    use crate::hypgeom_table::{HYP, Z};
    if x.is_nan() {
        return f64::NAN;
    }
    // which.min(abs(z − x)): the first of the nearest.
    let mut idx = 0;
    let mut best = f64::INFINITY;
    for (i, z) in Z.iter().enumerate() {
        let d = (z - x).abs();
        if d < best {
            best = d;
            idx = i;
        }
    }
    if x >= -10.0 {
        return HYP[idx];
    }
    let (low, up) = if x - Z[idx] < 0.0 { (idx + 1, idx) } else { (idx, idx.wrapping_sub(1)) };
    match (HYP.get(low), HYP.get(up)) {
        (Some(&hl), Some(&hu)) => hl + (hu - hl) * (x - Z[low]),
        _ => f64::NAN, // R indexes past the table: NA
    }
}

/// surveillance's `anscombeNB(y, mu, alpha)` for one count.
fn anscombe_nb(y: f64, mu: f64, alpha: f64) -> f64 {
    let hyp_mu = 1.5 * mu.powf(2.0 / 3.0) * hypgeom_2f1_special(-alpha * mu);
    let up = 1.5 * y.powf(2.0 / 3.0) * hypgeom_2f1_special(-alpha * y) - hyp_mu;
    up / (mu + alpha * mu * mu).powf(1.0 / 6.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().map(|&x| Some(x)).collect()
    }

    #[test]
    fn standard_by_hand() {
        // m = 4; z = (x − 4)/2; k = 1.04, h = 2.26.
        let x = some(&[4.0, 4.0, 4.0, 4.0, 10.0, 9.0, 2.0]);
        let p = cusum(&x, &Control::new((5, 7))).unwrap();
        assert!((p[0].cusum.unwrap() - 1.96).abs() < 1e-12);
        assert_eq!(p[0].point.alarm, Some(false));
        assert!((p[1].cusum.unwrap() - (1.96 + 2.5 - 1.04)).abs() < 1e-12);
        assert_eq!(p[1].point.alarm, Some(true));
        assert_eq!(p[0].point.upperbound, Some((2.0f64 * 3.3 + 4.0).ceil()));
        assert_eq!(p[0].point.expected, Some(4.0));
    }

    #[test]
    fn missing_counts_propagate_and_bounds_become_zero() {
        let mut x = some(&[3.0, 5.0, 4.0, 6.0, 5.0, 7.0, 3.0]);
        x[5] = None;
        let p = cusum(&x, &Control::new((5, 7))).unwrap();
        assert!(p[0].cusum.is_some());
        assert!(p[1].cusum.is_none() && p[1].point.alarm.is_none());
        assert!(p[2].cusum.is_none() && p[2].point.upperbound == Some(0.0));
        let mut y = some(&[3.0, 5.0, 4.0, 6.0, 5.0, 7.0, 3.0]);
        y[1] = None;
        let p = cusum(&y, &Control::new((5, 7))).unwrap();
        assert!(p.iter().all(|p| p.point.expected.is_none() && p.point.alarm.is_none()));
    }

    #[test]
    fn range_must_leave_a_past() {
        let x = some(&[1.0; 5]);
        assert!(cusum(&x, &Control::new((1, 5))).is_err());
        assert!(cusum(&x, &Control::new((2, 6))).is_err());
    }

    #[test]
    fn zero_past_mean_gives_missing_statistic() {
        // m = 0: (x − 0)/0 is Inf or NaN, as in R.
        let x = some(&[0.0, 0.0, 0.0, 1.0]);
        let p = cusum(&x, &Control::new((4, 4))).unwrap();
        assert_eq!(p[0].cusum, Some(f64::INFINITY));
        let x = some(&[0.0, 0.0, 0.0, 0.0]);
        let p = cusum(&x, &Control::new((4, 4))).unwrap();
        assert_eq!(p[0].cusum, None);
    }

    #[test]
    #[allow(clippy::excessive_precision)] // R's printed digits
    fn anscombe_negbin_as_r() {
        // R 4.2.2, surveillance 1.20.3: surveillance:::anscombeNB(0:3, mu = 0.3, alpha = 0.9)
        let r = [-0.76385810367056317, 0.83999701660625403, 1.62243409410302153, 2.20985677696209093];
        for (y, r) in r.iter().enumerate() {
            assert!((anscombe_nb(y as f64, 0.3, 0.9) - r).abs() < 1e-15);
        }
        // surveillance:::hypgeom2F1special(-0.27), (-2.7); beyond the table R gives NA.
        assert_eq!(hypgeom_2f1_special(-0.27), 0.96752328119999997);
        assert_eq!(hypgeom_2f1_special(-2.7), 0.81148667549999998);
        assert!(hypgeom_2f1_special(-100.5).is_nan());
    }

    #[test]
    fn anscombe_negbin_refuses_what_r_stops_on() {
        let mut x = some(&[3.0, 5.0, 4.0, 6.0, 5.0, 7.0, 3.0]);
        let mut c = Control::new((5, 7));
        c.trans = Trans::AnscombeNegBin;
        assert!(cusum(&x, &c).is_ok());
        c.m = Mean::Glm { freq: 52.0, start: 1.0 };
        assert!(cusum(&x, &c).is_err());
        c.m = Mean::Past;
        x[5] = None;
        assert_eq!(cusum(&x, &c), Err(Error::Missing));
    }
}
