//! The instantaneous reproduction number of Cori et al. (2013), as `EpiEstim::estimate_R` 2.2-4
//! with `method = "parametric_si"` or `"non_parametric_si"`.
//!
//! Quirks of the package kept here, so that the numbers are its numbers:
//! - a missing count (`None`, R's `NA`) is refused with [`Error::Missing`]: `process_I` means to set
//!   it to 0 (`incid[which(is.na(incid))] <- 0`) but that assignment on a data frame stops with an
//!   error in 2.2-4 whatever the position (checked by the fixture script, `epiestim_na.txt`);
//! - all cases of the first time step are imported: local cases there are moved to the imported
//!   column (`process_I`, with a warning in R);
//! - the parametric serial interval is `discr_si(0:(T-1), mean, sd)`, padded with zeros to `T + 1`
//!   values; a given distribution is padded likewise;
//! - a window whose end is not after the mean of the (discrete) serial interval has no estimate
//!   (all outputs `None`), as R gives `NA`.

use crate::Error;
use crate::stats::{pgamma, qgamma};

/// The posterior quantiles reported, as in R's output columns.
pub const QUANTILES: [f64; 7] = [0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975];

/// The serial interval.
#[derive(Debug, Clone, PartialEq)]
pub enum SerialInterval {
    /// `method = "parametric_si"`: a gamma distribution, discretised as `discr_si`.
    Parametric {
        /// `mean_si`, greater than 1.
        mean: f64,
        /// `std_si`, positive.
        sd: f64,
    },
    /// `method = "non_parametric_si"`: `si_distr`, the probability of each lag 0, 1, 2, ...; the
    /// first must be 0 and the sum 1 (within 0.01, as the package checks).
    NonParametric(Vec<f64>),
}

/// The configuration: R's `make_config` fields that these methods use.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The serial interval.
    pub si: SerialInterval,
    /// `mean_prior` (default 5).
    pub mean_prior: f64,
    /// `std_prior` (default 5).
    pub std_prior: f64,
    /// Windows as 1-based `(t_start, t_end)` pairs, both in `2..=T`; `None`: sliding weekly
    /// windows `t_start = 2..=T-6`, `t_end = t_start + 6`.
    pub windows: Option<Vec<(usize, usize)>>,
}

impl Config {
    /// The package defaults with this serial interval.
    pub fn new(si: SerialInterval) -> Self {
        Config { si, mean_prior: 5.0, std_prior: 5.0, windows: None }
    }
}

/// Incidence: local cases and imported cases per time step. Imported cases infect but are not
/// counted as infected by the cases before them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Incidence {
    /// Locally infected cases.
    pub local: Vec<Option<f64>>,
    /// Imported cases; empty means none.
    pub imported: Vec<Option<f64>>,
}

impl Incidence {
    /// Incidence with local cases only (R's vector `incid`).
    pub fn local(counts: &[Option<f64>]) -> Self {
        Incidence { local: counts.to_vec(), imported: Vec::new() }
    }
}

/// One window's estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// 1-based first time step of the window.
    pub t_start: usize,
    /// 1-based last time step of the window.
    pub t_end: usize,
    /// Shape of the gamma posterior (`None` where R gives NA).
    pub shape: Option<f64>,
    /// Scale of the gamma posterior.
    pub scale: Option<f64>,
    /// `Mean(R)`.
    pub mean: Option<f64>,
    /// `Std(R)`.
    pub sd: Option<f64>,
    /// The posterior quantiles at [`QUANTILES`] (the fourth is `Median(R)`).
    pub quantiles: Option<[f64; 7]>,
}

/// The whole result.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// One estimate per window.
    pub estimates: Vec<Estimate>,
    /// The serial interval used, lags 0..=T (R's `si_distr`).
    pub si_distr: Vec<f64>,
    /// Mean and standard deviation of `si_distr` (R's `SI.Moments`).
    pub si_mean: f64,
    /// See `si_mean`.
    pub si_sd: f64,
    /// The overall infectivity Λ per time step (index 0 is time step 1, where it is undefined).
    pub lambda: Vec<Option<f64>>,
    /// Local cases as used (after the first step's cases were moved to imported).
    pub local: Vec<f64>,
    /// Imported cases as used.
    pub imported: Vec<f64>,
}

/// `EpiEstim::discr_si(k, mu, sigma)`: the discretised gamma serial interval at lags `k` (mean
/// `mu > 1`, sd `sigma > 0`, the gamma being shifted by one day).
pub fn discr_si(k: &[f64], mu: f64, sigma: f64) -> Result<Vec<f64>, Error> {
    if sigma.is_nan() || sigma <= 0.0 {
        return Err(Error::InvalidParameter("std_si must be > 0"));
    }
    if mu.is_nan() || mu <= 1.0 {
        return Err(Error::InvalidParameter("mean_si must be > 1"));
    }
    let a = ((mu - 1.0) / sigma).powi(2);
    let b = sigma * sigma / (mu - 1.0);
    let cdf = |k: f64, a: f64| pgamma(k, a, b);
    Ok(k.iter()
        .map(|&k| {
            let mut res = k * cdf(k, a) + (k - 2.0) * cdf(k - 2.0, a) - 2.0 * (k - 1.0) * cdf(k - 1.0, a);
            res += a * b * (2.0 * cdf(k - 1.0, a + 1.0) - cdf(k - 2.0, a + 1.0) - cdf(k, a + 1.0));
            if res.is_nan() { res } else { res.max(0.0) }
        })
        .collect())
}

/// `EpiEstim::estimate_R` for the parametric and non-parametric serial interval methods.
pub fn estimate_r(incid: &Incidence, config: &Config) -> Result<Output, Error> {
    let t_len = incid.local.len();
    if !incid.imported.is_empty() && incid.imported.len() != t_len {
        return Err(Error::InvalidParameter("local and imported must have the same length"));
    }
    if t_len < 2 {
        return Err(Error::TooShort);
    }
    let value = |v: &Option<f64>| v.filter(|x| !x.is_nan()).ok_or(Error::Missing);
    let mut local: Vec<f64> = incid.local.iter().map(value).collect::<Result<_, _>>()?;
    let mut imported: Vec<f64> = if incid.imported.is_empty() {
        vec![0.0; t_len]
    } else {
        incid.imported.iter().map(value).collect::<Result<_, _>>()?
    };
    if local.iter().chain(&imported).any(|&x| x < 0.0 || !x.is_finite()) {
        return Err(Error::InvalidParameter("incidence must be non-negative"));
    }
    if local[0] > 0.0 {
        imported[0] += local[0];
        local[0] = 0.0;
    }
    if config.mean_prior.is_nan() || config.mean_prior <= 0.0 || config.std_prior.is_nan() || config.std_prior <= 0.0 {
        return Err(Error::InvalidParameter("mean_prior and std_prior must be > 0"));
    }
    let windows: Vec<(usize, usize)> = match &config.windows {
        Some(w) => w.clone(),
        None => {
            if t_len < 8 {
                return Err(Error::TooShort);
            }
            (2..=t_len - 6).map(|s| (s, s + 6)).collect()
        }
    };
    for &(s, e) in &windows {
        if s > e || s < 2 || e > t_len {
            return Err(Error::InvalidParameter("windows need 2 <= t_start <= t_end <= T"));
        }
    }
    let mut si_distr = match &config.si {
        SerialInterval::Parametric { mean, sd } => {
            let k: Vec<f64> = (0..t_len).map(|k| k as f64).collect();
            discr_si(&k, *mean, *sd)?
        }
        SerialInterval::NonParametric(d) => {
            if d.is_empty() || d[0] != 0.0 {
                return Err(Error::InvalidParameter("si_distr[0] must be 0"));
            }
            if d.iter().any(|&p| p.is_nan() || p < 0.0) {
                return Err(Error::InvalidParameter("si_distr must be non-negative"));
            }
            if (d.iter().sum::<f64>() - 1.0).abs() > 0.01 {
                return Err(Error::InvalidParameter("si_distr must sum to 1"));
            }
            d.clone()
        }
    };
    if si_distr.len() < t_len + 1 {
        si_distr.resize(t_len + 1, 0.0);
    }
    let si_mean: f64 = si_distr.iter().enumerate().map(|(k, p)| p * k as f64).sum();
    let si_sd = (si_distr.iter().enumerate().map(|(k, p)| p * (k * k) as f64).sum::<f64>() - si_mean * si_mean).sqrt();

    // overall_infectivity: Λ_t = Σ_{s=0}^{t-1} w_s (local + imported)_{t-s}, undefined at t = 1.
    let total: Vec<f64> = local.iter().zip(&imported).map(|(l, i)| l + i).collect();
    let mut lambda = vec![None; t_len];
    for t in 1..t_len {
        let l: f64 = (0..=t).map(|s| si_distr[s] * total[t - s]).sum();
        lambda[t] = Some(l);
    }

    let a_prior = (config.mean_prior / config.std_prior).powi(2);
    let b_prior = config.std_prior * config.std_prior / config.mean_prior;
    let estimates = windows
        .iter()
        .map(|&(s, e)| {
            let mut est =
                Estimate { t_start: s, t_end: e, shape: None, scale: None, mean: None, sd: None, quantiles: None };
            if (e as f64) > si_mean {
                let a = a_prior + local[s - 1..e].iter().sum::<f64>();
                let lam: f64 = lambda[s - 1..e].iter().map(|l| l.unwrap_or(f64::NAN)).sum();
                let b = 1.0 / (1.0 / b_prior + lam);
                est.shape = Some(a);
                est.scale = Some(b);
                est.mean = Some(a * b);
                est.sd = Some(a.sqrt() * b);
                est.quantiles = Some(QUANTILES.map(|p| qgamma(p, a, b)));
            }
            est
        })
        .collect();
    Ok(Output { estimates, si_distr, si_mean, si_sd, lambda, local, imported })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().map(|&x| Some(x)).collect()
    }

    #[test]
    fn discr_si_sums_to_one_and_starts_at_zero() {
        let k: Vec<f64> = (0..60).map(f64::from).collect();
        let w = discr_si(&k, 4.8, 2.3).unwrap();
        assert_eq!(w[0], 0.0);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let mean: f64 = w.iter().enumerate().map(|(k, p)| k as f64 * p).sum();
        assert!((mean - 4.8).abs() < 1e-6, "{mean}");
    }

    #[test]
    fn discr_si_rejects_bad_parameters() {
        assert!(discr_si(&[1.0], 1.0, 1.0).is_err());
        assert!(discr_si(&[1.0], 3.0, 0.0).is_err());
    }

    #[test]
    fn first_day_cases_are_imported_and_missing_is_refused() {
        let mut inc = Incidence::local(&counts(&[3.0, 1.0, 2.0, 4.0, 3.0, 5.0, 6.0, 7.0, 9.0]));
        let cfg = Config::new(SerialInterval::Parametric { mean: 2.6, sd: 1.5 });
        let out = estimate_r(&inc, &cfg).unwrap();
        assert_eq!(out.local[0], 0.0);
        assert_eq!(out.imported[0], 3.0);
        inc.local[4] = None;
        assert_eq!(estimate_r(&inc, &cfg), Err(Error::Missing));
        assert_eq!(out.estimates.len(), 2);
        assert_eq!((out.estimates[0].t_start, out.estimates[0].t_end), (2, 8));
    }

    #[test]
    fn too_short_for_weekly_windows() {
        let inc = Incidence::local(&counts(&[1.0; 7]));
        let cfg = Config::new(SerialInterval::Parametric { mean: 2.6, sd: 1.5 });
        assert_eq!(estimate_r(&inc, &cfg), Err(Error::TooShort));
    }

    #[test]
    fn windows_before_the_mean_serial_interval_have_no_estimate() {
        let inc = Incidence::local(&counts(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]));
        let mut cfg = Config::new(SerialInterval::NonParametric(vec![0.0, 0.0, 0.0, 0.0, 0.5, 0.5]));
        cfg.windows = Some(vec![(2, 3), (2, 4), (2, 5)]);
        let out = estimate_r(&inc, &cfg).unwrap();
        assert_eq!(out.si_mean, 4.5);
        assert!(out.estimates[0].mean.is_none() && out.estimates[1].mean.is_none());
        assert!(out.estimates[2].mean.is_some());
    }

    #[test]
    fn non_parametric_checks() {
        let inc = Incidence::local(&counts(&[1.0; 10]));
        for bad in [vec![0.1, 0.9], vec![0.0, 0.5], vec![0.0, 1.2, -0.2]] {
            assert!(estimate_r(&inc, &Config::new(SerialInterval::NonParametric(bad))).is_err());
        }
    }
}
