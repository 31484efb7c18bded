//! Farrington's algorithm as `surveillance::farringtonFlexible` 1.20.3: the original method of
//! Farrington et al. (1996) and the improved method of Noufaily et al. (2013).
//!
//! For each monitored time point `k`:
//! 1. Reference points: `k` and the same point 1..=b years before (`k − i·freq`; with dates, the
//!    same calendar day `i` years before, moved to the nearest same weekday for weekly data).
//! 2. Blocks: a window `±w` around each reference point (and `k − w..=k`) forms the period
//!    `noPeriods`; with `noPeriods > 1` the weeks between consecutive windows are split into
//!    `noPeriods − 1` blocks (the earlier ones one week longer when the split is uneven). The
//!    last `pastWeeksNotIncluded` weeks before `k` and `k` itself are left out; missing counts are
//!    dropped (but their block still counts as a factor level, as in R).
//! 3. A quasi-Poisson GLM `response ~ 1 + wtime (+ offset(log(population))) (+ seasgroups)`; if it
//!    does not converge, again without the trend; if that fails, the point has no result
//!    (alarm, bound and expected missing). `phi = max(dispersion, 1)`. With `reweight`, Anscombe
//!    residuals `s = 3/2 (y^{2/3} μ^{−1/6} − μ^{1/2}) / √(φ(1 − h))` give weights `γ s⁻²` above
//!    `weightsThreshold` and `γ` elsewhere (`γ` making them average 1), and the model is fitted
//!    again with them; `phi` again.
//! 4. The trend is kept when `b ≥ 3`, its p-value (t test) is below `pThresholdTrend` and the
//!    prediction at `k` is at most the largest count in the data; otherwise the model is fitted
//!    again without it.
//! 5. The bound: `delta` (the 1996 method): `(μ₀^{2/3} + z_{1−α} · √(4/9 μ₀^{1/3} (φ + se²/μ₀)))^{3/2}`;
//!    `nbPlugin`: the `1 − α` quantile of a negative binomial of mean `exp(η₀)` and dispersion
//!    `φ` (Poisson when `φ = 1`); `muan`: the same with mean `exp(η₀ + z_{1−α} se(η₀))`.
//!    An alarm needs `score = (y − fit)/(bound − fit) > 1`, `y ≠ 0` and at least `limit54.0`
//!    cases in the last `limit54.1` weeks; without those cases bound and expected are missing.
//!
//! Quirks of the package kept here (each changes numbers):
//! - the standard errors (of the trend's t test and of the prediction) use `summary.glm`'s
//!   dispersion after `model$weights` was replaced by the reweighting weights `ω`, i.e.
//!   `Σ ω r² / df` with working residuals `r = (y − μ)/μ`, not the dispersion `φ` of the fit
//!   (`predict.glm` ignores the `dispersion` column the package puts in `newdata`);
//! - for `nbPlugin` and `muan` the score is computed on the link scale for the fit:
//!   `(y − η₀)/(bound − η₀)`;
//! - the bound of `delta` uses `qnorm(1 − α)` (one-sided), unlike `algo.farrington`;
//! - with dates, `wtime` counts from the first week of the reference data but the prediction
//!   counts from the first week whose count is not missing;
//! - the convergence of the reweighted fit is not checked.

use crate::stats::{pt, qnbinom_prob, qnorm, qpois};
use crate::{Error, Point, glm};

/// How the bound is computed (`thresholdMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdMethod {
    /// The 1996 method: a power-transformed normal approximation (`powertrans`).
    Delta,
    /// Noufaily et al.: negative-binomial quantile at the predicted mean.
    NbPlugin,
    /// Noufaily et al.: negative-binomial quantile at the upper `1 − α` limit of the mean.
    Muan,
}

/// The power transformation of `delta` (`powertrans`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerTrans {
    /// `"none"`.
    None,
    /// `"1/2"`.
    Half,
    /// `"2/3"` (default).
    TwoThirds,
}

/// `control` of `farringtonFlexible`.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    /// 1-based inclusive range; `None`: `freq·b + w + 1` to the end.
    pub range: Option<(usize, usize)>,
    /// Years back (default 5).
    pub b: usize,
    /// Half-window (default 3).
    pub w: usize,
    /// Reweighting (default true).
    pub reweight: bool,
    /// Threshold on the Anscombe residuals (default 2.58; the 1996 method used 1).
    pub weights_threshold: f64,
    /// Default 0.05.
    pub alpha: f64,
    /// Fit a trend (default true).
    pub trend: bool,
    /// Default 0.05.
    pub p_threshold_trend: f64,
    /// At least `.0` cases in the last `.1` periods for an alarm (default (5, 4)).
    pub limit54: (f64, usize),
    /// Default `TwoThirds`.
    pub powertrans: PowerTrans,
    /// Offset `log(population)` (default false).
    pub population_offset: bool,
    /// Number of seasonal periods (default 1).
    pub no_periods: usize,
    /// `None`: `w`.
    pub past_weeks_not_included: Option<usize>,
    /// Default `Delta`.
    pub threshold_method: ThresholdMethod,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            range: None,
            b: 5,
            w: 3,
            reweight: true,
            weights_threshold: 2.58,
            alpha: 0.05,
            trend: true,
            p_threshold_trend: 0.05,
            limit54: (5.0, 4),
            powertrans: PowerTrans::TwoThirds,
            population_offset: false,
            no_periods: 1,
            past_weeks_not_included: None,
            threshold_method: ThresholdMethod::Delta,
        }
    }
}

impl Control {
    /// Farrington et al. 1996 (`noPeriods = 1`, `weightsThreshold = 1`, `delta`).
    pub fn original() -> Self {
        Control { weights_threshold: 1.0, ..Control::default() }
    }

    /// Noufaily et al. 2013 (`noPeriods = 10`, `pastWeeksNotIncluded = 26`,
    /// `weightsThreshold = 2.58`) with the given threshold method.
    pub fn noufaily(method: ThresholdMethod) -> Self {
        Control {
            no_periods: 10,
            past_weeks_not_included: Some(26),
            weights_threshold: 2.58,
            threshold_method: method,
            ..Control::default()
        }
    }
}

/// A series for Farrington.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// Counts.
    pub observed: &'a [Option<f64>],
    /// Periods a year (52 weekly, 365 daily, 12 monthly).
    pub freq: usize,
    /// Dates of the periods as days since 1970-01-01 (R's `epochAsDate`), or none: periods are
    /// then numbered 1, 2, ... and reference points are `freq` apart.
    pub dates: Option<&'a [i64]>,
    /// Population per period (for `population_offset`).
    pub population: Option<&'a [f64]>,
}

/// One monitored point with the fit's details.
#[derive(Debug, Clone, PartialEq)]
pub struct FarringtonPoint {
    /// Expected value, bound, alarm.
    pub point: Point,
    /// `phi` of the final model (`None`: no model).
    pub phi: Option<f64>,
    /// Whether the final model kept the trend.
    pub trend: Option<bool>,
    /// The score (`(y − fit)/(bound − fit)`).
    pub score: Option<f64>,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// R's `seq(date, length.out = b + 1, by = "-1 year")` then, for weekly data, the nearest day
/// with the same weekday (`algo.farrington.referencetimepoints`).
fn reference_dates(day: i64, b: usize, weekly: bool) -> Vec<i64> {
    let (y, m, d) = civil_from_days(day);
    (0..=b)
        .map(|i| {
            // POSIXlt normalisation: 29 February of a common year is 1 March.
            let r = days_from_civil(y - i as i64, m, 1) + i64::from(d) - 1;
            if !weekly {
                return r;
            }
            let wd = |x: i64| (x + 4).rem_euclid(7);
            let a = r - (wd(r) - wd(day));
            let bb = a + if a > r { -7 } else { 7 };
            if (a - r).abs() > (bb - r).abs() { bb } else { a }
        })
        .collect()
}

/// The block (seasonal period) of each position into `f`, 1-based positions (`f[0]` unused);
/// `None` outside the blocks. `refs` is a buffer.
#[allow(clippy::too_many_arguments)] // the parameters of the package's blocks()
fn blocks(
    f: &mut Vec<Option<usize>>,
    refs: &mut Vec<usize>,
    reference_positions: &[usize],
    now: usize,
    n: usize,
    b: usize,
    w: usize,
    p: usize,
) -> Result<(), Error> {
    f.clear();
    f.resize(n + 1, None);
    // R's a:b (either direction) set to v.
    let mut set = |a: i64, b: i64, v: usize| -> Result<(), Error> {
        for i in a.min(b)..=a.max(b) {
            if i < 1 || i as usize > n {
                return Err(Error::TooShort);
            }
            f[i as usize] = Some(v);
        }
        Ok(())
    };
    let (w_i, now_i) = (w as i64, now as i64);
    set(now_i - w_i, now_i, p)?;
    // referenceWeeks: positions in decreasing order.
    refs.clear();
    refs.extend_from_slice(reference_positions);
    refs.sort_unstable_by(|a, b| b.cmp(a));
    refs.dedup();
    if refs.len() < b + 1 {
        return Err(Error::TooShort);
    }
    for i in 0..b {
        let ref_week = refs[i + 1] as i64;
        set(ref_week - w_i, ref_week + w_i, p)?;
        if p != 1 {
            let period = refs[i] as i64 - 2 * w_i - 1 - ref_week;
            if period < p as i64 - (2 * w_i + 1) {
                return Err(Error::InvalidParameter("number of periods too big"));
            }
            let q = (p - 1) as i64;
            let len = period.div_euclid(q);
            let rest = period.rem_euclid(q);
            // The first j blocks hold j·len weeks and one more for each of the first `rest`.
            let cum = |j: i64| j * len + j.min(rest);
            for j in 1..p {
                let start = ref_week + w_i + 1 + cum(j as i64 - 1);
                let end = ref_week + w_i + 1 + cum(j as i64) - 1;
                set(start, end, j)?;
            }
        }
    }
    Ok(())
}

/// The rows of one monitored week's model, in buffers reused from week to week.
#[derive(Default)]
struct Data {
    rows: glm::GroupedRows,
    /// `y^(2/3)` of each row (the Anscombe residual's), from the series'.
    y23: Vec<f64>,
    /// The levels present (block numbers, sorted).
    levels: Vec<usize>,
}

/// A model's fit: the grouped one in the caller's [`glm::GroupedFit`], or a dense one where R's QR
/// aliases a column.
enum Fitted {
    Grouped,
    Dense(Box<glm::Fit>),
}

/// What the algorithm reads of a fit, of either kind.
trait FitView {
    fn converged(&self) -> bool;
    fn mu(&self) -> &[f64];
    fn hat(&self) -> &[f64];
    /// `summary.glm`'s dispersion with the working weights.
    fn dispersion(&self) -> f64;
    /// The same with the prior weights as `model$weights` (the package's after reweighting).
    fn dispersion_prior(&self) -> f64;
    fn df_residual(&self) -> usize;
    /// The trend's coefficient and its unscaled variance.
    fn trend(&self) -> (f64, f64);
    /// `predict.glm(type = "link", se.fit = TRUE)` at a row of level `level` (0-based, 0 the
    /// baseline) and trend value `t` (if the model has the trend).
    fn predict_link(&self, level: usize, t: Option<f64>, dispersion: f64) -> (f64, f64);
}

impl FitView for glm::GroupedFit {
    fn converged(&self) -> bool {
        self.converged
    }
    fn mu(&self) -> &[f64] {
        &self.mu
    }
    fn hat(&self) -> &[f64] {
        &self.hat
    }
    fn dispersion(&self) -> f64 {
        glm::GroupedFit::dispersion(self)
    }
    fn dispersion_prior(&self) -> f64 {
        glm::GroupedFit::dispersion_prior(self)
    }
    fn df_residual(&self) -> usize {
        self.df_residual
    }
    fn trend(&self) -> (f64, f64) {
        (self.coef[1], self.trend_variance())
    }
    fn predict_link(&self, level: usize, t: Option<f64>, dispersion: f64) -> (f64, f64) {
        let (eta, var) = glm::GroupedFit::predict_link(self, level, t.unwrap_or(0.0));
        (eta, (var * dispersion).sqrt())
    }
}

impl FitView for glm::Fit {
    fn converged(&self) -> bool {
        self.converged
    }
    fn mu(&self) -> &[f64] {
        &self.mu
    }
    fn hat(&self) -> &[f64] {
        &self.hat
    }
    fn dispersion(&self) -> f64 {
        glm::Fit::dispersion(self)
    }
    fn dispersion_prior(&self) -> f64 {
        self.dispersion_with(&self.prior)
    }
    fn df_residual(&self) -> usize {
        self.df_residual
    }
    fn trend(&self) -> (f64, f64) {
        (self.coef[1], self.cov_unscaled[1][1])
    }
    fn predict_link(&self, level: usize, t: Option<f64>, dispersion: f64) -> (f64, f64) {
        // x0: the intercept, the trend, the dummies of levels 1.. (1 for `level`).
        let mut x0 = vec![1.0];
        x0.extend(t);
        let levels = self.coef.len() - x0.len() + 1;
        x0.extend((1..levels).map(|l| if l == level { 1.0 } else { 0.0 }));
        glm::Fit::predict_link(self, &x0, dispersion)
    }
}

impl Fitted {
    fn view<'a>(&'a self, grouped: &'a glm::GroupedFit) -> &'a dyn FitView {
        match self {
            Fitted::Grouped => grouped,
            Fitted::Dense(f) => f.as_ref(),
        }
    }
}

struct Model {
    fit: Fitted,
    /// Whether `model$weights` are the reweighting weights ω (else the working weights).
    reweighted: bool,
    phi: f64,
    has_trend: bool,
}

impl Model {
    /// `summary.glm(model)$dispersion` with `model$weights` as the package leaves them (ω after
    /// reweighting, the fit's prior weights).
    fn dispersion(&self, grouped: &glm::GroupedFit) -> f64 {
        let v = self.fit.view(grouped);
        if self.reweighted { v.dispersion_prior() } else { v.dispersion() }
    }
}

/// The quasi-Poisson fit of `response ~ 1 (+ wtime) (+ seasgroups)`, solved by group means (see
/// [`glm::GroupedFit`]; without the factor, one group), or densely where R's QR aliases a column.
fn glm_fit(d: &Data, fit: &mut glm::GroupedFit, trend: bool, weights: Option<&[f64]>) -> Fitted {
    if fit.fit(&d.rows, trend, weights) {
        return Fitted::Grouped;
    }
    let r = &d.rows;
    let design = glm::Design::Grouped { trend: trend.then_some(r.t()), group: r.group(), levels: r.levels() };
    Fitted::Dense(Box::new(glm::fit_design(design, r.y(), weights, r.offset())))
}

fn fit_flexible(d: &Data, fit: &mut glm::GroupedFit, omega: &mut Vec<f64>, trend: bool, c: &Control) -> Option<Model> {
    let mut trend = trend;
    let mut f = glm_fit(d, fit, trend, None);
    if !f.view(fit).converged() {
        if trend {
            trend = false;
            f = glm_fit(d, fit, false, None);
        }
        if !f.view(fit).converged() {
            return None;
        }
    }
    let mut phi = f.view(fit).dispersion().max(1.0);
    if c.reweight {
        // μ^(−1/6) first (see GroupedFit::mu_pow), then the Anscombe residuals in place.
        match &f {
            Fitted::Grouped => {
                fit.compute_hat(&d.rows);
                fit.mu_pow(-1.0 / 6.0, omega, &d.rows);
            }
            Fitted::Dense(dense) => {
                omega.clear();
                omega.extend(dense.mu.iter().map(|m| m.powf(-1.0 / 6.0)));
            }
        }
        let v = f.view(fit);
        let (mu, hat) = (v.mu(), v.hat());
        for (i, s) in omega.iter_mut().enumerate() {
            *s = 1.5 * (d.y23[i] * *s - mu[i].sqrt()) / (phi * (1.0 - hat[i])).sqrt();
        }
        let thr = c.weights_threshold;
        let denom: f64 = omega.iter().map(|&s| if s > thr { s.powi(-2) } else { 1.0 }).sum();
        let gamma = omega.len() as f64 / denom;
        for s in omega.iter_mut() {
            *s = if *s > thr { gamma * s.powi(-2) } else { gamma };
        }
        f = glm_fit(d, fit, trend, Some(omega));
        phi = f.view(fit).dispersion().max(1.0);
    }
    Some(Model { fit: f, reweighted: c.reweight, phi, has_trend: trend })
}

/// `farringtonFlexible(sts, control)` on one series.
pub fn farrington_flexible(series: &Series<'_>, control: &Control) -> Result<Vec<FarringtonPoint>, Error> {
    let obs = series.observed;
    let n = obs.len();
    let freq = series.freq;
    let c = control;
    if c.limit54.1 == 0 || c.limit54.0 < 0.0 {
        return Err(Error::InvalidParameter("limit54: cases >= 0 and period > 0"));
    }
    if c.no_periods == 0 {
        return Err(Error::InvalidParameter("noPeriods must be at least 1"));
    }
    if let Some(d) = series.dates
        && (d.len() != n || d.len() < 2)
    {
        return Err(Error::InvalidParameter("one date per count"));
    }
    if c.population_offset && series.population.is_none_or(|p| p.len() != n) {
        return Err(Error::InvalidParameter("population offset without one population per count"));
    }
    let (from, to) = c.range.unwrap_or((freq * c.b + c.w + 1, n));
    if c.range.is_none() && from > to {
        return Err(Error::TooShort);
    }
    if from == 0 || from > to || to > n {
        return Err(Error::InvalidParameter("range outside the series"));
    }
    let pwni = c.past_weeks_not_included.unwrap_or(c.w);
    let factors = c.no_periods != 1;
    let z = qnorm(1.0 - c.alpha);
    // Per count, once for all the weeks that use it.
    let value = |o: &Option<f64>| o.filter(|v| !v.is_nan());
    let starts: Vec<glm::Start> =
        obs.iter().map(|o| value(o).map_or_else(glm::Start::default, glm::Start::of)).collect();
    let y23s: Vec<f64> = obs.iter().map(|o| value(o).map_or(f64::NAN, |y| y.powf(2.0 / 3.0))).collect();
    let mut out = Vec::with_capacity(to - from + 1);
    let mut f: Vec<Option<usize>> = Vec::new();
    let (mut refs, mut ref_pos, mut included) = (Vec::new(), Vec::new(), Vec::new());
    let mut level_index = vec![usize::MAX; c.no_periods + 1];
    let mut d = Data::default();
    let mut fit = glm::GroupedFit::default();
    let mut omega = Vec::new();
    for k in from..=to {
        // Reference points as positions.
        ref_pos.clear();
        match series.dates {
            None => {
                for i in 0..=c.b {
                    let back = i * freq;
                    if back >= k {
                        return Err(Error::TooShort);
                    }
                    ref_pos.push(k - back);
                }
            }
            Some(dates) => {
                for r in reference_dates(dates[k - 1], c.b, freq == 52) {
                    match dates.iter().position(|&d| d == r) {
                        Some(i) => ref_pos.push(i + 1),
                        None => return Err(Error::TooShort),
                    }
                }
            }
        }
        blocks(&mut f, &mut refs, &ref_pos, k, n, c.b, c.w, c.no_periods)?;
        if pwni >= k {
            return Err(Error::TooShort);
        }
        included.clear();
        included.extend((1..=n).filter(|&i| f[i].is_some() && !(k - pwni..=k).contains(&i)));
        // The levels present (sorted), and each one's index.
        level_index.iter_mut().for_each(|v| *v = usize::MAX);
        for &i in &included {
            level_index[f[i].unwrap_or(0)] = 0;
        }
        d.levels.clear();
        for (l, v) in level_index.iter_mut().enumerate() {
            if *v == 0 {
                *v = d.levels.len();
                d.levels.push(l);
            }
        }
        let wtime_of = |i: usize, origin: usize| match series.dates {
            None => i as f64,
            Some(d) => (d[i - 1] - d[origin - 1]) as f64 / (d[1] - d[0]) as f64,
        };
        let first = included.first().copied().ok_or(Error::TooShort)?;
        d.rows.clear(if factors { d.levels.len() } else { 1 }, c.population_offset);
        d.y23.clear();
        let mut first_row = None;
        for &i in &included {
            if let Some(y) = value(&obs[i - 1]) {
                first_row.get_or_insert(i);
                let group = if factors { level_index[f[i].unwrap_or(0)] } else { 0 };
                let offset = if c.population_offset { series.population.map_or(0.0, |p| p[i - 1].ln()) } else { 0.0 };
                d.rows.push(y, starts[i - 1], wtime_of(i, first), group, offset);
                d.y23.push(y23s[i - 1]);
            }
        }
        let none = || FarringtonPoint {
            point: Point { t: k, observed: obs[k - 1], expected: None, upperbound: None, alarm: None },
            phi: None,
            trend: None,
            score: None,
        };
        let Some(first_row) = first_row else {
            out.push(none());
            continue;
        };
        // The prediction row at k: its trend value and the level whose dummy is 1 (the window's,
        // `noPeriods`; the baseline if that is the first level or absent).
        let wtime_k = match series.dates {
            None => k as f64,
            Some(_) => wtime_of(k, first_row),
        };
        let level_k = if factors { d.levels.iter().position(|&l| l == c.no_periods).unwrap_or(0) } else { 0 };
        let off_k = if c.population_offset { series.population.map_or(0.0, |p| p[k - 1].ln()) } else { 0.0 };
        let Some(mut model) = fit_flexible(&d, &mut fit, &mut omega, c.trend, c) else {
            out.push(none());
            continue;
        };
        let mut do_trend = false;
        if model.has_trend {
            let v = model.fit.view(&fit);
            let disp = model.dispersion(&fit);
            let (eta, _) = v.predict_link(level_k, Some(wtime_k), disp);
            let mu = (eta + off_k).exp().max(f64::EPSILON);
            let (coef, var) = v.trend();
            let se_b = (var * disp).sqrt();
            let tval = coef / se_b;
            let pval = 2.0 * pt(-tval.abs(), v.df_residual() as f64);
            let significant = pval < c.p_threshold_trend;
            let max_y = d.rows.y().iter().copied().fold(f64::NEG_INFINITY, f64::max);
            do_trend = c.b >= 3 && significant && mu <= max_y;
            if !do_trend {
                match fit_flexible(&d, &mut fit, &mut omega, false, c) {
                    Some(m) => model = m,
                    None => {
                        out.push(none());
                        continue;
                    }
                }
            }
        }
        let v = model.fit.view(&fit);
        let disp = model.dispersion(&fit);
        let (eta_raw, se_eta) = v.predict_link(level_k, model.has_trend.then_some(wtime_k), disp);
        let eta0 = eta_raw + off_k;
        let phi = model.phi;
        let y = obs[k - 1].unwrap_or(f64::NAN);
        let (upper, fit_value) = match c.threshold_method {
            ThresholdMethod::Delta => {
                let mu0 = eta0.exp().max(f64::EPSILON);
                let se_fit = se_eta * mu0;
                let tau = phi + se_fit * se_fit / mu0;
                let (se, e) = match c.powertrans {
                    PowerTrans::None => ((mu0 * tau).sqrt(), 1.0),
                    PowerTrans::Half => ((0.25 * tau).sqrt(), 0.5),
                    PowerTrans::TwoThirds => ((4.0 / 9.0 * mu0.powf(1.0 / 3.0) * tau).sqrt(), 2.0 / 3.0),
                };
                let lo = (mu0.powf(e) - z * se).powf(1.0 / e);
                let hi = (mu0.powf(e) + z * se).powf(1.0 / e);
                // sort(c(lo, hi), na.last = FALSE)[2]
                let upper = match (lo.is_nan(), hi.is_nan()) {
                    (false, false) => lo.max(hi),
                    (true, false) => hi,
                    (false, true) => lo,
                    (true, true) => f64::NAN,
                };
                (upper, mu0)
            }
            ThresholdMethod::NbPlugin | ThresholdMethod::Muan => {
                let mu_q = if c.threshold_method == ThresholdMethod::NbPlugin {
                    eta0.exp()
                } else {
                    (eta0 + se_eta * z).exp()
                };
                let upper = if mu_q.is_infinite() {
                    f64::NAN
                } else if phi > 1.0 {
                    qnbinom_prob(1.0 - c.alpha, mu_q / (phi - 1.0), 1.0 / phi)
                } else {
                    qpois(1.0 - c.alpha, mu_q)
                };
                (upper, eta0)
            }
        };
        let score = if upper.is_nan() { f64::NAN } else { (y - fit_value) / (upper - fit_value) };
        let enough = if c.limit54.1 > k {
            None
        } else {
            let s: f64 = (k + 1 - c.limit54.1.min(k)..=k).map(|i| obs[i - 1].unwrap_or(f64::NAN)).sum();
            if s.is_nan() { None } else { Some(s >= c.limit54.0) }
        };
        let x = if enough == Some(true) { score } else { f64::NAN };
        let alarm = !x.is_nan() && x > 1.0 && y != 0.0;
        let upperbound = if enough == Some(true) { crate::r_value(upper) } else { None };
        let expected = if !upper.is_nan() && enough == Some(true) { Some(eta0.exp().max(f64::EPSILON)) } else { None };
        out.push(FarringtonPoint {
            point: Point { t: k, observed: obs[k - 1], expected, upperbound, alarm: Some(alarm) },
            phi: Some(phi),
            trend: Some(do_trend),
            score: crate::r_value(score),
        });
    }
    Ok(out)
}

/// [`farrington_flexible`] on many series with one control, the series spread over rayon's
/// threads (`RAYON_NUM_THREADS`). Each series is computed alone and the results come back in the
/// order of the series, so the output does not depend on the number of threads.
pub fn farrington_flexible_many(series: &[Series<'_>], control: &Control) -> Vec<Result<Vec<FarringtonPoint>, Error>> {
    use rayon::prelude::*;
    series.par_iter().map(|s| farrington_flexible(s, control)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        for z in [-1000, 0, 11017, 19000, 20000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn reference_dates_keep_the_weekday() {
        let day = days_from_civil(2012, 2, 29); // a Wednesday
        let refs = reference_dates(day, 3, true);
        assert_eq!(refs[0], day);
        for r in &refs {
            assert_eq!((r + 4).rem_euclid(7), (day + 4).rem_euclid(7));
        }
        // 2011-03-01 (29 Feb normalised) is a Tuesday; the nearest Wednesday is 2 March.
        assert_eq!(refs[1], days_from_civil(2011, 3, 2));
    }

    #[test]
    fn blocks_split_the_year() {
        let n = 200;
        let k = 200;
        let refs = vec![200, 148, 96];
        let mut f = Vec::new();
        blocks(&mut f, &mut Vec::new(), &refs, k, n, 2, 3, 10).unwrap();
        assert_eq!(f[200], Some(10));
        assert_eq!(f[148 - 3], Some(10));
        assert_eq!(f[148 + 3], Some(10));
        // 200 − 7 − 148 = 45 weeks in 9 blocks of 5.
        assert_eq!(f[152], Some(1));
        assert_eq!(f[156], Some(1));
        assert_eq!(f[157], Some(2));
        assert_eq!(f[196], Some(9));
        assert_eq!(f[92], None);
    }

    #[test]
    fn too_short_for_the_default_range() {
        let x: Vec<Option<f64>> = vec![Some(3.0); 263];
        let s = Series { observed: &x, freq: 52, dates: None, population: None };
        assert_eq!(farrington_flexible(&s, &Control::original()), Err(Error::TooShort));
        let x: Vec<Option<f64>> = vec![Some(3.0); 264];
        let s = Series { observed: &x, freq: 52, dates: None, population: None };
        assert_eq!(farrington_flexible(&s, &Control::original()).unwrap().len(), 1);
    }

    #[test]
    fn too_short_for_b_years() {
        let x: Vec<Option<f64>> = vec![Some(3.0); 200];
        let s = Series { observed: &x, freq: 52, dates: None, population: None };
        let mut c = Control::original();
        c.range = Some((150, 200));
        assert_eq!(farrington_flexible(&s, &c), Err(Error::TooShort));
    }

    #[test]
    fn flat_counts_give_no_alarm_and_a_bound_above() {
        let x: Vec<Option<f64>> = (0..320).map(|i| Some(f64::from(4 + (i % 3)))).collect();
        let s = Series { observed: &x, freq: 52, dates: None, population: None };
        for c in [
            Control::original(),
            Control::noufaily(ThresholdMethod::NbPlugin),
            Control::noufaily(ThresholdMethod::Muan),
        ] {
            let p = farrington_flexible(&s, &c).unwrap();
            assert_eq!(p.len(), 320 - (52 * 5 + 3));
            for p in p {
                assert_eq!(p.point.alarm, Some(false));
                assert!(p.point.upperbound.unwrap() >= p.point.expected.unwrap());
            }
        }
    }

    #[test]
    fn many_series_give_each_series_alone_whatever_the_threads() {
        let xs: Vec<Vec<Option<f64>>> = (0..6)
            .map(|s| (0..320).map(|i| Some(f64::from((i * (7 + s) + 3 * s) % (5 + s) + i % 4))).collect())
            .collect();
        let series: Vec<Series<'_>> =
            xs.iter().map(|x| Series { observed: x, freq: 52, dates: None, population: None }).collect();
        let c = Control::noufaily(ThresholdMethod::Muan);
        let alone: Vec<_> = series.iter().map(|s| farrington_flexible(s, &c)).collect();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            assert_eq!(pool.install(|| farrington_flexible_many(&series, &c)), alone);
        }
    }

    #[test]
    fn zeros_have_no_bound_for_want_of_cases() {
        let x: Vec<Option<f64>> = vec![Some(0.0); 300];
        let s = Series { observed: &x, freq: 52, dates: None, population: None };
        let p = farrington_flexible(&s, &Control::original()).unwrap();
        assert!(p.iter().all(|p| p.point.alarm == Some(false) && p.point.upperbound.is_none()));
    }
}
