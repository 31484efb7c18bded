//! A Poisson / quasi-Poisson GLM with log link, fitted as R's `glm.fit` fits it.
//!
//! The iteration is R's step for step, so that coefficients agree with R to rounding rather than
//! only to its convergence tolerance: starting values `mu = y + 0.1`; iteratively reweighted
//! least squares with working weights `w² = prior · mu` and working response
//! `z = eta − offset + (y − mu)/mu`, each least-squares problem solved by a Householder QR that,
//! like LINPACK's `dqrdc2` with R's tolerance `min(1e-7, epsilon/1000)`, drops a column whose
//! remaining norm falls below that fraction of its original norm (an aliased coefficient, 0 in the
//! fit and `NA` in R's output); stop when `|dev − dev_old| / (|dev| + 0.1) < 1e-8`, at most 25
//! iterations; step halving when the deviance is not finite. `mu = max(exp(eta), DBL_EPSILON)`.
//!
//! What R keeps from the last iteration is kept too: the working weights and the QR are those the
//! last coefficients were solved with (computed from the `mu` before them), while the residuals
//! and fitted values use the final `mu`. `summary.glm`'s dispersion, covariance and hat values
//! are built from exactly these.

/// The fit, in R's terms.
#[derive(Debug, Clone)]
pub struct Fit {
    /// Coefficients, `NaN` for an aliased column (R's `NA`).
    pub coef: Vec<f64>,
    /// Linear predictor, offset included.
    pub eta: Vec<f64>,
    /// Fitted means.
    pub mu: Vec<f64>,
    /// Working weights of the last iteration (`model$weights`).
    pub weights: Vec<f64>,
    /// Working residuals `(y − mu)/mu` (`model$residuals`).
    pub residuals: Vec<f64>,
    /// Whether the deviance converged within 25 iterations.
    pub converged: bool,
    /// Rank of the design.
    pub rank: usize,
    /// Observations with positive prior weight minus rank.
    pub df_residual: usize,
    /// Unscaled covariance of the non-aliased coefficients, full `p × p` with zero rows and
    /// columns for aliased ones (`summary.glm`'s `cov.unscaled`).
    pub cov_unscaled: Vec<Vec<f64>>,
    /// Diagonal of the hat matrix (`hatvalues`).
    pub hat: Vec<f64>,
    /// Prior weights.
    pub prior: Vec<f64>,
    /// Response.
    pub y: Vec<f64>,
}

const EPSILON: f64 = 1e-8;
const MAXIT: usize = 25;

fn linkinv(eta: f64) -> f64 {
    eta.exp().max(f64::EPSILON)
}

fn deviance(y: &[f64], mu: &[f64], wt: &[f64]) -> f64 {
    y.iter()
        .zip(mu)
        .zip(wt)
        .map(|((&y, &mu), &wt)| if y > 0.0 { 2.0 * wt * (y * (y / mu).ln() - (y - mu)) } else { 2.0 * mu * wt })
        .sum()
}

/// Least squares by Householder QR with `dqrdc2`-style dropping of near-dependent columns.
struct Qr {
    /// Kept column indices, in order.
    kept: Vec<usize>,
    /// Upper-triangular R over the kept columns (rank × rank), row-major.
    r: Vec<Vec<f64>>,
    /// The weighted design's kept columns, to compute hat values.
    a_kept: Vec<Vec<f64>>,
}

fn qr_solve(a: &[Vec<f64>], y: &[f64], tol: f64) -> (Vec<f64>, Qr) {
    // a: columns (p vectors of length n).
    let n = y.len();
    let p = a.len();
    let mut cols: Vec<Vec<f64>> = a.to_vec();
    let norms0: Vec<f64> = cols.iter().map(|c| c.iter().map(|v| v * v).sum::<f64>().sqrt()).collect();
    let mut yv = y.to_vec();
    let mut kept = Vec::new();
    let mut vs: Vec<(Vec<f64>, usize)> = Vec::new(); // reflectors with their start row
    let mut rcols: Vec<Vec<f64>> = Vec::new(); // for each kept column, its R column (length rank+1)
    for j in 0..p {
        let k = kept.len();
        // Apply the previous reflections to column j (already done incrementally below).
        let col = &cols[j];
        let norm: f64 = col[k..].iter().map(|v| v * v).sum::<f64>().sqrt();
        if k >= n || norm < tol * norms0[j] || norms0[j] == 0.0 {
            continue;
        }
        let mut v = col[k..].to_vec();
        let alpha = if v[0] > 0.0 { -norm } else { norm };
        v[0] -= alpha;
        let vnorm2: f64 = v.iter().map(|x| x * x).sum();
        let mut rcol: Vec<f64> = col[..k].to_vec();
        rcol.push(alpha);
        rcols.push(rcol);
        if vnorm2 > 0.0 {
            let apply = |c: &mut [f64]| {
                let d: f64 = v.iter().zip(&c[k..]).map(|(a, b)| a * b).sum::<f64>() * 2.0 / vnorm2;
                for (ci, vi) in c[k..].iter_mut().zip(&v) {
                    *ci -= d * vi;
                }
            };
            for c in cols.iter_mut().skip(j + 1) {
                apply(c);
            }
            apply(&mut yv);
            vs.push((v, k));
        }
        kept.push(j);
    }
    let rank = kept.len();
    // R as rank × rank upper triangular: r[i][c] = rcols[c][i].
    let mut r = vec![vec![0.0; rank]; rank];
    for (c, rc) in rcols.iter().enumerate() {
        for (i, &val) in rc.iter().enumerate() {
            r[i][c] = val;
        }
    }
    // Back substitution.
    let mut b = vec![0.0; rank];
    for i in (0..rank).rev() {
        let s: f64 = (i + 1..rank).map(|c| r[i][c] * b[c]).sum();
        b[i] = (yv[i] - s) / r[i][i];
    }
    let mut coef = vec![0.0; p];
    for (i, &j) in kept.iter().enumerate() {
        coef[j] = b[i];
    }
    let a_kept = kept.iter().map(|&j| a[j].clone()).collect();
    (coef, Qr { kept, r, a_kept })
}

impl Qr {
    /// (RᵀR)⁻¹ over the kept columns.
    fn inverse_rtr(&self) -> Vec<Vec<f64>> {
        let k = self.r.len();
        // R⁻¹ (upper triangular).
        let mut rinv = vec![vec![0.0; k]; k];
        #[allow(clippy::needless_range_loop)] // triangular indices read clearer than iterators
        for c in 0..k {
            rinv[c][c] = 1.0 / self.r[c][c];
            for i in (0..c).rev() {
                let s: f64 = (i + 1..=c).map(|m| self.r[i][m] * rinv[m][c]).sum();
                rinv[i][c] = -s / self.r[i][i];
            }
        }
        let mut out = vec![vec![0.0; k]; k];
        for (i, row) in out.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (i.max(j)..k).map(|m| rinv[i][m] * rinv[j][m]).sum();
            }
        }
        out
    }

    /// Diagonal of A (AᵀA)⁻¹ Aᵀ for the weighted design A.
    fn hat(&self, n: usize) -> Vec<f64> {
        let k = self.r.len();
        (0..n)
            .map(|row| {
                // Solve Rᵀ v = a_row.
                let mut v = vec![0.0; k];
                for i in 0..k {
                    let s: f64 = (0..i).map(|m| self.r[m][i] * v[m]).sum();
                    v[i] = (self.a_kept[i][row] - s) / self.r[i][i];
                }
                v.iter().map(|x| x * x).sum()
            })
            .collect()
    }
}

/// The design of a fit.
#[derive(Debug, Clone, Copy)]
pub enum Design<'a> {
    /// Columns of the model matrix, the intercept included by the caller.
    Dense(&'a [Vec<f64>]),
    /// An intercept, an optional trend column and treatment-coded dummies of a factor, in that
    /// column order (R's `~ 1 + wtime + seasgroups`): `group[i]` is the 0-based level of row `i`
    /// (level 0 is the baseline), `levels` the number of levels. Solved in O(n) by group means
    /// (Frisch–Waugh) instead of a QR of the dense matrix; the same least-squares problem, so
    /// the same numbers to rounding. Falls back to the dense QR where R's QR would find a column
    /// aliased (a level without rows, or no variation of the trend within any level).
    Grouped {
        /// The trend column (`wtime`), if any.
        trend: Option<&'a [f64]>,
        /// Level of each row.
        group: &'a [usize],
        /// Number of levels.
        levels: usize,
    },
}

impl Design<'_> {
    fn dense(&self, n: usize) -> Vec<Vec<f64>> {
        match self {
            Design::Dense(x) => x.to_vec(),
            Design::Grouped { trend, group, levels } => {
                let mut x = vec![vec![1.0; n]];
                if let Some(t) = trend {
                    x.push(t.to_vec());
                }
                for l in 1..*levels {
                    x.push(group.iter().map(|&g| if g == l { 1.0 } else { 0.0 }).collect());
                }
                x
            }
        }
    }
}

/// Fits `y ~ x` (columns of `x`, intercept included by the caller) with log link, prior weights
/// and an offset, as `glm.fit(x, y, weights, offset = offset, family = quasipoisson())`.
/// Observations must be non-missing (R's `na.omit` is the caller's).
pub fn fit(x: &[Vec<f64>], y: &[f64], weights: Option<&[f64]>, offset: Option<&[f64]>) -> Fit {
    fit_design(Design::Dense(x), y, weights, offset)
}

/// Fits a design as [`fit`] does.
pub fn fit_design(design: Design<'_>, y: &[f64], weights: Option<&[f64]>, offset: Option<&[f64]>) -> Fit {
    match design {
        Design::Dense(x) => fit_dense(x, y, weights, offset),
        Design::Grouped { trend, group, levels } => {
            let rows = GroupedRows::from_slices(y, trend, group, levels, offset);
            let mut g = GroupedFit::default();
            if g.fit(&rows, trend.is_some(), weights) {
                g.compute_hat(&rows);
                g.to_fit(&rows)
            } else {
                // Where R's QR would alias a column, take the dense path, which does what R does.
                fit_dense(&design.dense(y.len()), y, weights, offset)
            }
        }
    }
}

/// [`fit_design`] of a [`Design::Dense`]: R's iteration with a QR a step.
fn fit_dense(x: &[Vec<f64>], y: &[f64], weights: Option<&[f64]>, offset: Option<&[f64]>) -> Fit {
    let n = y.len();
    let p = x.len();
    let prior: Vec<f64> = weights.map_or_else(|| vec![1.0; n], <[f64]>::to_vec);
    let offset: Vec<f64> = offset.map_or_else(|| vec![0.0; n], <[f64]>::to_vec);
    let tol = 1e-7_f64.min(EPSILON / 1000.0);
    let mut mu: Vec<f64> = y.iter().map(|y| y + 0.1).collect();
    let mut eta: Vec<f64> = mu.iter().map(|m| m.ln()).collect();
    mu = eta.iter().map(|&e| linkinv(e)).collect();
    let mut devold = deviance(y, &mu, &prior);
    let mut coefold: Option<Vec<f64>> = None;
    let mut converged = false;
    let mut coef = vec![0.0; p];
    let mut w2 = vec![0.0; n];
    let mut qr = None;
    for _ in 0..MAXIT {
        let good: Vec<usize> = (0..n).filter(|&i| prior[i] > 0.0).collect();
        let mut ws = vec![0.0; n];
        let mut zw = Vec::with_capacity(good.len());
        for &i in &good {
            let mueta = mu[i]; // mu.eta(eta) = max(exp(eta), DBL_EPSILON) = mu for the log link
            let z = (eta[i] - offset[i]) + (y[i] - mu[i]) / mueta;
            let w = (prior[i] * mueta * mueta / mu[i]).sqrt();
            ws[i] = w;
            zw.push(z * w);
        }
        w2 = ws.iter().map(|w| w * w).collect();
        let a: Vec<Vec<f64>> = x.iter().map(|col| good.iter().map(|&i| col[i] * ws[i]).collect()).collect();
        let (mut start, q) = qr_solve(&a, &zw, tol);
        let compute = |start: &[f64]| {
            let eta: Vec<f64> = (0..n).map(|i| (0..p).map(|j| x[j][i] * start[j]).sum::<f64>() + offset[i]).collect();
            let mu: Vec<f64> = eta.iter().map(|&e| linkinv(e)).collect();
            (eta, mu)
        };
        let (mut e, mut m) = compute(&start);
        let mut dev = deviance(y, &m, &prior);
        if (!dev.is_finite() || m.iter().any(|v| !v.is_finite()))
            && let Some(old) = &coefold
        {
            for _ in 0..MAXIT {
                start = start.iter().zip(old).map(|(a, b)| (a + b) / 2.0).collect();
                (e, m) = compute(&start);
                dev = deviance(y, &m, &prior);
                if dev.is_finite() && m.iter().all(|v| v.is_finite()) {
                    break;
                }
            }
        }
        eta = e;
        mu = m;
        coef = start;
        qr = Some((q, good));
        if (dev - devold).abs() / (dev.abs() + 0.1) < EPSILON {
            converged = true;
            break;
        }
        devold = dev;
        coefold = Some(coef.clone());
    }
    let good_count = (0..n).filter(|&i| prior[i] > 0.0).count();
    let (q, good) = qr.expect("at least one iteration");
    for (j, c) in coef.iter_mut().enumerate() {
        if !q.kept.contains(&j) {
            *c = f64::NAN;
        }
    }
    let inv = q.inverse_rtr();
    let mut cov_unscaled = vec![vec![0.0; p]; p];
    for (a, &ja) in q.kept.iter().enumerate() {
        for (b, &jb) in q.kept.iter().enumerate() {
            cov_unscaled[ja][jb] = inv[a][b];
        }
    }
    let hat_good = q.hat(good.len());
    let mut hat = vec![0.0; n];
    for (h, &i) in hat_good.iter().zip(&good) {
        hat[i] = *h;
    }
    let rank = q.kept.len();
    let residuals: Vec<f64> = (0..n).map(|i| (y[i] - mu[i]) / mu[i]).collect();
    let df_residual = good_count.saturating_sub(rank);
    Fit { coef, eta, mu, weights: w2, residuals, converged, rank, df_residual, cov_unscaled, hat, prior, y: y.to_vec() }
}

/// What every fit of a response value from R's starting values needs, computed once per value
/// (a count of a series is a row of up to 4 fits in each of many monitored weeks): the values
/// are those of [`fit`]'s start, so gathering them changes no number.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Start {
    /// `log(y + 0.1)`, the starting linear predictor (`mustart = y + 0.1`).
    pub eta: f64,
    /// `max(exp(eta), DBL_EPSILON)`.
    pub mu: f64,
    /// `log y` (0 for `y = 0`).
    pub ln_y: f64,
    /// The deviance term at the start without its factor `2·prior`: `y log(y/μ) − (y − μ)`, or
    /// `μ` for `y = 0`.
    pub dev: f64,
}

impl Start {
    /// The start of a response value `y ≥ 0`.
    pub fn of(y: f64) -> Start {
        let eta = (y + 0.1).ln();
        let mu = linkinv(eta);
        let (ln_y, dev) = if y > 0.0 { (y.ln(), y * (y / mu).ln() - (y - mu)) } else { (0.0, mu) };
        Start { eta, mu, ln_y, dev }
    }
}

/// The rows of a [`Design::Grouped`] fit, filled once and fitted several times (with and
/// without the trend, with several prior weights): response, [`Start`]s, trend column, level,
/// offset, and what the fits derive from them (the runs of rows of one level, the trend as
/// integers).
#[derive(Debug, Clone, Default)]
pub struct GroupedRows {
    y: Vec<f64>,
    start: Vec<Start>,
    t: Vec<f64>,
    group: Vec<usize>,
    offset: Vec<f64>,
    levels: usize,
    has_offset: bool,
    /// (first row, end, level) of each run of consecutive rows of one level.
    runs: Vec<(usize, usize, usize)>,
    /// The trend as integers, while every value is one in `0..65536`.
    t_int: Vec<u32>,
    t_integral: bool,
    t_int_lo: u32,
    t_int_hi: u32,
    /// Per level: rows, Σ t (in row order), first t; whether t varies within some level.
    level_rows: Vec<usize>,
    level_t_sum: Vec<f64>,
    level_first_t: Vec<f64>,
    t_varies: bool,
}

impl GroupedRows {
    /// Empties the rows for a design of `levels` levels, with an offset or not.
    pub fn clear(&mut self, levels: usize, has_offset: bool) {
        self.y.clear();
        self.start.clear();
        self.t.clear();
        self.group.clear();
        self.offset.clear();
        self.runs.clear();
        self.t_int.clear();
        self.levels = levels;
        self.has_offset = has_offset;
        self.t_integral = true;
        self.t_int_lo = u32::MAX;
        self.t_int_hi = 0;
        self.level_rows.clear();
        self.level_rows.resize(levels, 0);
        self.level_t_sum.clear();
        self.level_t_sum.resize(levels, 0.0);
        self.level_first_t.clear();
        self.level_first_t.resize(levels, f64::NAN);
        self.t_varies = false;
    }

    /// Adds a row: response `y ≥ 0` with its [`Start::of`], trend value `t`, 0-based level
    /// `group < levels`, offset (ignored without one).
    #[inline]
    pub fn push(&mut self, y: f64, start: Start, t: f64, group: usize, offset: f64) {
        let i = self.y.len();
        self.level_rows[group] += 1;
        self.level_t_sum[group] += t;
        if self.level_rows[group] == 1 {
            self.level_first_t[group] = t;
        } else {
            self.t_varies |= self.level_first_t[group] != t;
        }
        self.y.push(y);
        self.start.push(start);
        self.t.push(t);
        self.group.push(group);
        if self.has_offset {
            self.offset.push(offset);
        }
        match self.runs.last_mut() {
            Some((_, end, g)) if *g == group => *end = i + 1,
            _ => self.runs.push((i, i + 1, group)),
        }
        if (0.0..65536.0).contains(&t) && t == f64::from(t as u32) {
            self.t_int.push(t as u32);
            self.t_int_lo = self.t_int_lo.min(t as u32);
            self.t_int_hi = self.t_int_hi.max(t as u32);
        } else {
            self.t_integral = false;
        }
    }

    /// The rows of a design from slices ([`Start`]s computed here).
    pub fn from_slices(
        y: &[f64],
        trend: Option<&[f64]>,
        group: &[usize],
        levels: usize,
        offset: Option<&[f64]>,
    ) -> GroupedRows {
        let mut rows = GroupedRows::default();
        rows.clear(levels, offset.is_some());
        for i in 0..y.len() {
            let t = trend.map_or(0.0, |t| t[i]);
            rows.push(y[i], Start::of(y[i]), t, group[i], offset.map_or(0.0, |o| o[i]));
        }
        rows
    }

    /// The response.
    pub fn y(&self) -> &[f64] {
        &self.y
    }

    /// The trend column.
    pub fn t(&self) -> &[f64] {
        &self.t
    }

    /// The level of each row.
    pub fn group(&self) -> &[usize] {
        &self.group
    }

    /// The number of levels.
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// The offset, if any.
    pub fn offset(&self) -> Option<&[f64]> {
        self.has_offset.then_some(self.offset.as_slice())
    }
}

/// Per level, of one weighted least-squares step: Σ W, Σ W z and, with `c` the level's centre of
/// the trend, Σ W (t − c), Σ W (t − c)², Σ (t − c) W z.
#[derive(Debug, Clone, Default)]
struct Sums {
    w: Vec<f64>,
    wz: Vec<f64>,
    wt: Vec<f64>,
    wtt: Vec<f64>,
    wtz: Vec<f64>,
}

impl Sums {
    fn reset(&mut self, levels: usize) {
        for v in [&mut self.w, &mut self.wz, &mut self.wt, &mut self.wtt, &mut self.wtz] {
            v.clear();
            v.resize(levels, 0.0);
        }
    }

    #[inline(always)]
    fn add(&mut self, g: usize, s: [f64; 5]) {
        self.w[g] += s[0];
        self.wz[g] += s[1];
        self.wt[g] += s[2];
        self.wtt[g] += s[3];
        self.wtz[g] += s[4];
    }
}

/// A fit of a [`Design::Grouped`] and the buffers it was computed in, reused from fit to fit.
///
/// The iteration is [`fit`]'s (R's): the same start, steps, convergence test, step halving and
/// what is kept from the last step; each weighted least-squares step is solved by group means
/// (Frisch–Waugh: the levels' intercepts are weighted means once the trend is taken out, the
/// trend's coefficient is a weighted regression on the within-level deviations), from sums that
/// one pass over the rows an iteration collects while it computes the previous step's `μ` and
/// deviance. Shortcuts equal to rounding, each removing work from that pass:
/// - the working weight `prior·μ` (R: `prior·μ²/μ`) and the working response only as the
///   product `W z = prior·(μ (η − offset) + y − μ)`, which is all the sums need (R forms
///   `z = η − offset + (y − μ)/μ`, then `z·√W`): no division a row;
/// - the within-level sums of squares and cross products of the trend about a centre `c_g` of
///   each level (the level's previous weighted mean of `t`, first its plain mean), corrected to
///   the current weighted mean `t̄_g` as `S_tt = Σ W (t − c)² − t̄'·Σ W (t − c)` and
///   `S_tz = Σ (t − c) W z − z̄ Σ W (t − c) − t̄' (Σ W z − z̄ Σ W)` with `t̄' = t̄_g − c_g`:
///   mathematically R's `Σ W (t − t̄_g)²` and `Σ W (t − t̄_g)(z − z̄_g)`, and with `c_g` within a
///   few weeks of `t̄_g` the corrections are small (no cancellation beyond a few bits);
/// - sums added a run of consecutive rows of one level at a time (the deviance too), not row by
///   row into one total;
/// - the deviance's `log(y/μ)` as `log y − η` (`log y` once per value, in [`Start`]) where `μ` is
///   not clipped at `DBL_EPSILON`, and its factor 2 applied to the sum;
/// - with a trend, integer `wtime` and no offset, `μ = exp(η)` for `η = α_g + b t` as
///   `exp(α_g) · (exp(16 b ⌊t/16⌋) · exp(b (t mod 16)))`: one `exp` a level and ~35 a step
///   instead of one a row. Each factor is within half an ulp of its exact value and each product
///   adds half an ulp, so `μ` is within ~2.5 ulp of `exp(η)` (the rounding of `η` itself, ~1 ulp of
///   `|η|`, is as large); only where all exponents are below 300 in magnitude, so nothing
///   overflows or underflows (else one `exp` a row). Without a trend `μ` is one `exp` a level,
///   the same number as a row's.
///
/// The convergence test reads the deviance only through `|dev − dev_old| / (|dev| + 0.1) < 1e-8`:
/// rounding-level differences change where the iteration stops only when that ratio falls within
/// rounding of 1e-8. (Group means round differently from R's QR anyway; the fixtures agree with
/// R to ~1e-13.)
#[derive(Debug, Clone, Default)]
pub struct GroupedFit {
    /// Coefficients in R's parametrisation: intercept, trend, the levels' dummies.
    pub coef: Vec<f64>,
    /// Fitted means.
    pub mu: Vec<f64>,
    /// Working weights of the last iteration (`model$weights`).
    pub weights: Vec<f64>,
    /// Working residuals `(y − μ)/μ`.
    pub residuals: Vec<f64>,
    /// Diagonal of the hat matrix, after [`GroupedFit::compute_hat`].
    pub hat: Vec<f64>,
    /// Whether the deviance converged within 25 iterations.
    pub converged: bool,
    /// Rows with positive prior weight minus the number of coefficients.
    pub df_residual: usize,
    /// `summary.glm`'s dispersion with the working weights, and with the prior weights standing
    /// for them (`Σ w r² / df` over the rows of positive weight).
    dispersion: f64,
    dispersion_prior: f64,
    /// Σ W per level of the last step.
    level_w: Vec<f64>,
    /// Weighted mean of the trend per level of the last step.
    tbar: Vec<f64>,
    /// Σ W (t − t̄_g)² of the last step (∞ without a trend).
    s_tt: f64,
    has_trend: bool,
    mu_by: MuBy,
    /// Whether the last pass computed μ as factors.
    factored: bool,
    // Buffers.
    prior: Vec<f64>,
    /// μ the last step's sums were computed from.
    mu_prev: Vec<f64>,
    cur: Sums,
    next: Sums,
    /// The centre of the trend per level of `next` (and, once swapped, of `cur`).
    centre: Vec<f64>,
    centre_cur: Vec<f64>,
    zbar: Vec<f64>,
    /// Per level: η without the trend, and `exp` of it (or `μ_g` without a trend).
    level_eta: Vec<f64>,
    level_exp: Vec<f64>,
    /// `exp(16 b q)` from `q_lo`, `exp(b r)` for r < 16.
    exp_hi: Vec<f64>,
    exp_lo: [f64; 16],
    q_lo: usize,
    coefold: Vec<f64>,
    count: Vec<usize>,
    first_t: Vec<f64>,
}

/// How the pass over the rows computes `μ`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum MuBy {
    /// One value a level (no trend, no offset).
    #[default]
    Level,
    /// `exp(α_g) · exp(16 b q) · exp(b r)`.
    Factors,
    /// `exp(η)` a row.
    Row,
}

#[allow(clippy::needless_range_loop)] // rows index several slices at once
impl GroupedFit {
    /// Fits the rows, with or without the trend, with prior weights (`None`: 1), as
    /// [`fit_design`] does. Returns false, leaving the fit undefined, where R's QR would find a
    /// column aliased (a level without rows of positive weight, or a trend constant within every
    /// level): the caller then fits the dense design.
    pub fn fit(&mut self, d: &GroupedRows, trend: bool, weights: Option<&[f64]>) -> bool {
        let n = d.y.len();
        let levels = d.levels;
        let idx = 1 + usize::from(trend);
        let p = idx + levels - 1;
        self.has_trend = trend;
        self.prior.clear();
        match weights {
            Some(w) => self.prior.extend_from_slice(&w[..n]),
            None => self.prior.resize(n, 1.0),
        }
        // Aliasing, as R's QR would find it; the centres of the trend (from the rows' own
        // counts where every prior weight is positive, the usual case).
        self.count.clear();
        self.centre.clear();
        let (good, varies) = if self.prior.iter().all(|&w| w > 0.0) {
            self.count.extend_from_slice(&d.level_rows);
            self.centre.extend_from_slice(&d.level_t_sum);
            (n, d.t_varies)
        } else {
            self.count.resize(levels, 0);
            self.first_t.clear();
            self.first_t.resize(levels, f64::NAN);
            self.centre.resize(levels, 0.0);
            let mut varies = false;
            let mut good = 0usize;
            for i in 0..n {
                if self.prior[i] > 0.0 {
                    good += 1;
                    let g = d.group[i];
                    self.count[g] += 1;
                    self.centre[g] += d.t[i];
                    if self.count[g] == 1 {
                        self.first_t[g] = d.t[i];
                    } else {
                        varies |= self.first_t[g] != d.t[i];
                    }
                }
            }
            (good, varies)
        };
        if self.count.contains(&0) || (trend && !varies) {
            return false;
        }
        for g in 0..levels {
            self.centre[g] /= self.count[g] as f64;
        }
        self.mu_by = match (trend, d.has_offset) {
            (false, false) => MuBy::Level,
            (true, false) if d.t_integral => MuBy::Factors,
            _ => MuBy::Row,
        };
        for v in [&mut self.mu, &mut self.mu_prev, &mut self.residuals] {
            v.resize(n, 0.0);
        }
        self.zbar.resize(levels, 0.0);
        self.tbar.clear();
        self.tbar.resize(levels, 0.0);
        self.level_eta.resize(levels, 0.0);
        self.level_exp.resize(levels, 0.0);
        // The first step's sums from the start.
        self.next.reset(levels);
        let mut devold = 0.0;
        for &(s, e, g) in &d.runs {
            let c = self.centre[g];
            let mut sums = [0.0; 5];
            let mut dev = 0.0;
            for i in s..e {
                let (y, st, wt) = (d.y[i], d.start[i], self.prior[i]);
                self.mu[i] = st.mu;
                dev += wt * st.dev;
                let eta = if d.has_offset { st.eta - d.offset[i] } else { st.eta };
                let w = wt * st.mu;
                let wz = wt * (st.mu * eta + (y - st.mu));
                let tc = d.t[i] - c;
                sums[0] += w;
                sums[1] += wz;
                sums[2] += w * tc;
                sums[3] += w * tc * tc;
                sums[4] += tc * wz;
            }
            devold += dev;
            self.next.add(g, sums);
        }
        devold *= 2.0;
        self.coef.clear();
        self.coef.resize(p, 0.0);
        self.converged = false;
        for iter in 0..MAXIT {
            std::mem::swap(&mut self.cur, &mut self.next);
            std::mem::swap(&mut self.mu, &mut self.mu_prev);
            self.solve(d, idx);
            let (mut dev, mut finite) = self.pass(d);
            if (!dev.is_finite() || !finite) && iter > 0 {
                for _ in 0..MAXIT {
                    for (c, o) in self.coef.iter_mut().zip(&self.coefold) {
                        *c = (*c + o) / 2.0;
                    }
                    (dev, finite) = self.pass(d);
                    if dev.is_finite() && finite {
                        break;
                    }
                }
            }
            if (dev - devold).abs() / (dev.abs() + 0.1) < EPSILON {
                self.converged = true;
                break;
            }
            devold = dev;
            self.coefold.clear();
            self.coefold.extend_from_slice(&self.coef);
        }
        // What R keeps: the weights and sums of the last step, μ of its coefficients.
        self.level_w.clear();
        self.level_w.extend_from_slice(&self.cur.w);
        self.weights.resize(n, 0.0);
        let (mut pearson, mut pearson_prior) = (0.0, 0.0);
        {
            let (prior, mu, mu_prev) = (&self.prior[..n], &self.mu[..n], &self.mu_prev[..n]);
            let (w, res) = (&mut self.weights[..n], &mut self.residuals[..n]);
            for &(s, e, _) in &d.runs {
                let (mut sp, mut spp) = (0.0, 0.0);
                for i in s..e {
                    // The working weight of the last step, as its pass computed it.
                    let wi = prior[i] * mu_prev[i];
                    w[i] = wi;
                    let r = (d.y[i] - mu[i]) / mu[i];
                    res[i] = r;
                    if wi > 0.0 {
                        sp += wi * r * r;
                    }
                    if prior[i] > 0.0 {
                        spp += prior[i] * r * r;
                    }
                }
                pearson += sp;
                pearson_prior += spp;
            }
        }
        self.df_residual = good.saturating_sub(p);
        let df = self.df_residual as f64;
        (self.dispersion, self.dispersion_prior) =
            if self.df_residual == 0 { (f64::NAN, f64::NAN) } else { (pearson / df, pearson_prior / df) };
        true
    }

    /// The diagonal of the hat matrix into `hat`: `W/ΣW_g + W (t − t̄_g)²/S_tt`, with the
    /// reciprocals of `ΣW_g` and `S_tt` taken once (within an ulp of R's; only the reweighting
    /// reads the hat values, through `√(φ(1 − h))`).
    pub fn compute_hat(&mut self, d: &GroupedRows) {
        let n = d.y.len();
        self.hat.resize(n, 0.0);
        let inv_stt = 1.0 / self.s_tt;
        for &(s, e, g) in &d.runs {
            let (inv_w, tb) = (1.0 / self.level_w[g], self.tbar[g]);
            for i in s..e {
                let w = self.weights[i];
                let mut h = w * inv_w;
                if self.has_trend {
                    let dt = d.t[i] - tb;
                    h += w * dt * dt * inv_stt;
                }
                self.hat[i] = h;
            }
        }
    }

    /// The weighted least-squares step of the sums in `cur` into `coef`; the next centres.
    fn solve(&mut self, d: &GroupedRows, idx: usize) {
        let levels = d.levels;
        // The sums in `cur` were taken about the centres now in `centre`.
        std::mem::swap(&mut self.centre, &mut self.centre_cur);
        self.centre.clear();
        self.centre.extend_from_slice(&self.centre_cur);
        let cur = &self.cur;
        for g in 0..levels {
            self.zbar[g] = cur.wz[g] / cur.w[g];
        }
        let b = if self.has_trend {
            let (mut stt, mut stz) = (0.0, 0.0);
            for g in 0..levels {
                let (w, zbar) = (cur.w[g], self.zbar[g]);
                let tb = cur.wt[g] / w; // t̄_g − c_g
                stt += cur.wtt[g] - tb * cur.wt[g];
                stz += (cur.wtz[g] - zbar * cur.wt[g]) - tb * (cur.wz[g] - zbar * w);
                self.tbar[g] = self.centre_cur[g] + tb;
            }
            self.s_tt = stt;
            // The next sums about the current means.
            self.centre.copy_from_slice(&self.tbar);
            stz / stt
        } else {
            self.s_tt = f64::INFINITY;
            0.0
        };
        let a0 = self.zbar[0] - b * self.tbar[0];
        self.coef[0] = a0;
        if self.has_trend {
            self.coef[1] = b;
        }
        for g in 1..levels {
            self.coef[idx + g - 1] = (self.zbar[g] - b * self.tbar[g]) - a0;
        }
    }

    /// μ and the deviance of `coef`, and the next step's sums into `next` (about `centre`).
    /// Returns the deviance and whether every μ is finite.
    fn pass(&mut self, d: &GroupedRows) -> (f64, bool) {
        let n = d.y.len();
        let levels = d.levels;
        let idx = 1 + usize::from(self.has_trend);
        let c0 = self.coef[0];
        let b = if self.has_trend { self.coef[1] } else { 0.0 };
        let mut mu_by = self.mu_by;
        for g in 0..levels {
            // η of the level's rows without the trend, as a row adds it up.
            self.level_eta[g] = if g == 0 { 0.0 } else { self.coef[idx + g - 1] };
        }
        match mu_by {
            MuBy::Level => {
                for g in 0..levels {
                    let v = if g == 0 { c0 } else { c0 + self.level_eta[g] };
                    self.level_eta[g] = v;
                    self.level_exp[g] = linkinv(v);
                }
            }
            MuBy::Factors => {
                let (t_lo, t_hi) = (d.t_int_lo, d.t_int_hi);
                let mut ok = (b * f64::from(t_hi)).abs() < 300.0 && b.abs() < 16.0;
                for g in 0..levels {
                    let a = if g == 0 { c0 } else { c0 + self.level_eta[g] };
                    ok &= a.abs() < 300.0;
                    self.level_exp[g] = a.exp();
                }
                if ok {
                    self.q_lo = (t_lo >> 4) as usize;
                    let q_hi = (t_hi >> 4) as usize;
                    self.exp_hi.clear();
                    self.exp_hi.extend((self.q_lo..=q_hi).map(|q| (b * (16 * q) as f64).exp()));
                    for (r, e) in self.exp_lo.iter_mut().enumerate() {
                        *e = (b * r as f64).exp();
                    }
                } else {
                    mu_by = MuBy::Row;
                }
            }
            MuBy::Row => {}
        }
        self.factored = mu_by == MuBy::Factors;
        self.next.reset(levels);
        let mut dev = 0.0;
        let mut finite = true;
        let mut clipped = false;
        let prior = &self.prior[..n];
        let mu = &mut self.mu[..n];
        for &(s, e, g) in &d.runs {
            let (dg, eg, c) = (self.level_eta[g], self.level_exp[g], self.centre[g]);
            let (y, st, t, wt) = (&d.y[s..e], &d.start[s..e], &d.t[s..e], &prior[s..e]);
            let mu = &mut mu[s..e];
            let mut sums = [0.0; 5];
            let mut dev_run = 0.0;
            // The row's deviance term and sums from its η (offset included) and μ.
            macro_rules! row {
                ($j:expr, $v:expr, $mv:expr, $eta_no_offset:expr, $trend:expr) => {{
                    let (j, v, mv) = ($j, $v, $mv);
                    let (y, wt) = (y[j], wt[j]);
                    mu[j] = mv;
                    // y log(y/μ) − (y − μ) with log(y/μ) = log y − η; for y = 0 this is μ.
                    dev_run += wt * (y * (st[j].ln_y - v) - (y - mv));
                    let w = wt * mv;
                    let wz = wt * (mv * $eta_no_offset + (y - mv));
                    sums[0] += w;
                    sums[1] += wz;
                    if $trend {
                        let tc = t[j] - c;
                        sums[2] += w * tc;
                        sums[3] += w * tc * tc;
                        sums[4] += tc * wz;
                    }
                }};
            }
            match mu_by {
                MuBy::Level => {
                    clipped |= eg <= f64::EPSILON;
                    finite &= eg.is_finite();
                    for j in 0..y.len() {
                        row!(j, dg, eg, dg, false);
                    }
                }
                MuBy::Factors => {
                    let ti = &d.t_int[s..e];
                    let (hi, lo, q_lo) = (&self.exp_hi, &self.exp_lo, self.q_lo);
                    for j in 0..y.len() {
                        let k = ti[j] as usize;
                        let v = (c0 + b * t[j]) + dg;
                        let mv = (eg * (hi[(k >> 4) - q_lo] * lo[k & 15])).max(f64::EPSILON);
                        clipped |= mv <= f64::EPSILON;
                        row!(j, v, mv, v, true);
                    }
                }
                MuBy::Row => {
                    let has_trend = self.has_trend;
                    for j in 0..y.len() {
                        let mut v = c0;
                        if has_trend {
                            v += b * t[j];
                        }
                        if g > 0 {
                            v += dg;
                        }
                        let o = if d.has_offset { d.offset[s + j] } else { 0.0 };
                        let v = v + o;
                        let mv = linkinv(v);
                        finite &= mv.is_finite();
                        clipped |= mv <= f64::EPSILON; // (NaN: the deviance is NaN either way)
                        row!(j, v, mv, v - o, has_trend);
                    }
                }
            }
            dev += dev_run;
            self.next.add(g, sums);
        }
        dev *= 2.0;
        if clipped {
            // log(y/μ) where μ is clipped, as R (and `deviance`) computes it.
            dev = deviance(&d.y, &self.mu, &self.prior);
        }
        (dev, finite)
    }

    /// `μ^e` for each row into `out`: `μ.powf(e)`, or where μ is a product of factors
    /// ([`GroupedFit`]) the product of the factors' powers, `exp(e α_g) · exp(16 e b q) ·
    /// exp(e b r)`, within a few ulp of `μ.powf(e)` (the factors' rounding, as for μ).
    pub fn mu_pow(&mut self, e: f64, out: &mut Vec<f64>, d: &GroupedRows) {
        let n = d.y.len();
        out.clear();
        let factors = self.factored && self.mu.iter().all(|&m| m > f64::EPSILON);
        if self.mu_by == MuBy::Level {
            // μ is one value a level.
            for g in 0..d.levels {
                self.level_exp[g] = self.level_exp[g].powf(e);
            }
        } else if factors {
            let b = self.coef[1];
            let c0 = self.coef[0];
            for g in 0..d.levels {
                let a = if g == 0 { c0 } else { c0 + self.coef[2 + g - 1] };
                self.level_exp[g] = (e * a).exp();
            }
            for (q, x) in self.exp_hi.iter_mut().enumerate() {
                *x = (e * (b * (16 * (q + self.q_lo)) as f64)).exp();
            }
            for (r, x) in self.exp_lo.iter_mut().enumerate() {
                *x = (e * (b * r as f64)).exp();
            }
        } else {
            out.extend(self.mu[..n].iter().map(|&m| m.powf(e)));
            return;
        }
        out.resize(n, 0.0);
        for &(s, end, g) in &d.runs {
            let a = self.level_exp[g];
            if factors {
                for i in s..end {
                    let k = d.t_int[i] as usize;
                    out[i] = a * (self.exp_hi[(k >> 4) - self.q_lo] * self.exp_lo[k & 15]);
                }
            } else {
                out[s..end].fill(a);
            }
        }
    }

    /// The linear predictor at a new row of level `level` (0-based, 0 the baseline) and trend
    /// value `t` (offset excluded), and its variance without the dispersion: `predict.glm`'s
    /// `x₀ β` and `x₀ᵀ (XᵀWX)⁻¹ x₀`, the latter as `1/ΣW_g + (t − t̄_g)²/S_tt`.
    pub fn predict_link(&self, level: usize, t: f64) -> (f64, f64) {
        let idx = 1 + usize::from(self.has_trend);
        let mut eta = self.coef[0];
        let mut var = 1.0 / self.level_w[level];
        if self.has_trend {
            eta += t * self.coef[1];
            let dt = t - self.tbar[level];
            var += dt * dt / self.s_tt;
        }
        if level > 0 {
            eta += self.coef[idx + level - 1];
        }
        (eta, var)
    }

    /// The unscaled variance of the trend's coefficient (`1/S_tt`).
    pub fn trend_variance(&self) -> f64 {
        1.0 / self.s_tt
    }

    /// `summary.glm(model)$dispersion`.
    pub fn dispersion(&self) -> f64 {
        self.dispersion
    }

    /// `summary.glm(model)$dispersion` after `model$weights` was replaced by the prior weights
    /// (as `farringtonFlexible` does after reweighting).
    pub fn dispersion_prior(&self) -> f64 {
        self.dispersion_prior
    }

    /// The linear predictor of each row (offset included).
    pub fn eta(&self, d: &GroupedRows) -> Vec<f64> {
        let idx = 1 + usize::from(self.has_trend);
        (0..d.y.len())
            .map(|i| {
                let mut v = self.coef[0];
                if self.has_trend {
                    v += self.coef[1] * d.t[i];
                }
                if d.group[i] > 0 {
                    v += self.coef[idx + d.group[i] - 1];
                }
                if d.has_offset { v + d.offset[i] } else { v }
            })
            .collect()
    }

    /// The fit as [`fit_design`] returns it.
    pub fn to_fit(&self, d: &GroupedRows) -> Fit {
        let p = self.coef.len();
        let g = Groups { w: self.level_w.clone(), tbar: self.tbar.clone(), s_tt: self.has_trend.then_some(self.s_tt) };
        Fit {
            coef: self.coef.clone(),
            eta: self.eta(d),
            mu: self.mu.clone(),
            weights: self.weights.clone(),
            residuals: self.residuals.clone(),
            converged: self.converged,
            rank: p,
            df_residual: self.df_residual,
            cov_unscaled: g.cov_unscaled(p),
            hat: self.hat.clone(),
            prior: self.prior.clone(),
            y: d.y.clone(),
        }
    }
}

fn dispersion(df_residual: usize, weights: &[f64], residuals: &[f64]) -> f64 {
    if df_residual == 0 {
        return f64::NAN;
    }
    let s: f64 = weights.iter().zip(residuals).filter(|(w, _)| **w > 0.0).map(|(w, r)| w * r * r).sum();
    s / df_residual as f64
}

/// Group sums of a weighted least-squares step of a [`Design::Grouped`].
struct Groups {
    /// Σ W per level.
    w: Vec<f64>,
    /// Weighted mean of the trend per level.
    tbar: Vec<f64>,
    /// Σ W (t − t̄_g)², if there is a trend.
    s_tt: Option<f64>,
}

impl Groups {
    /// (XᵀWX)⁻¹ in R's parametrisation, from the covariance of (a_0..a_{L−1}, b).
    fn cov_unscaled(&self, p: usize) -> Vec<Vec<f64>> {
        let levels = self.w.len();
        let has_trend = self.s_tt.is_some();
        let stt = self.s_tt.unwrap_or(f64::INFINITY);
        // θ = (a_0, ..., a_{L−1}, b).
        let cov_theta = |i: usize, j: usize| -> f64 {
            match (i < levels, j < levels) {
                (true, true) => {
                    let d = if i == j { 1.0 / self.w[i] } else { 0.0 };
                    if has_trend { d + self.tbar[i] * self.tbar[j] / stt } else { d }
                }
                (true, false) => -self.tbar[i] / stt,
                (false, true) => -self.tbar[j] / stt,
                (false, false) => 1.0 / stt,
            }
        };
        // β_k = Σ A[k] θ: intercept a_0; trend b; dummy of level g a_g − a_0.
        let mut rows: Vec<Vec<(usize, f64)>> = vec![vec![(0, 1.0)]];
        if has_trend {
            rows.push(vec![(levels, 1.0)]);
        }
        for g in 1..levels {
            rows.push(vec![(g, 1.0), (0, -1.0)]);
        }
        debug_assert_eq!(rows.len(), p);
        let mut c = vec![vec![0.0; p]; p];
        for (k, rk) in rows.iter().enumerate() {
            for (l, rl) in rows.iter().enumerate() {
                c[k][l] = rk.iter().map(|&(i, a)| rl.iter().map(|&(j, b)| a * b * cov_theta(i, j)).sum::<f64>()).sum();
            }
        }
        c
    }
}

impl Fit {
    /// `summary.glm(model)$dispersion` for a quasi family, with `weights` standing for
    /// `model$weights` (the working weights, unless a caller replaced them).
    pub fn dispersion_with(&self, weights: &[f64]) -> f64 {
        dispersion(self.df_residual, weights, &self.residuals)
    }

    /// `summary.glm(model)$dispersion` with the working weights.
    pub fn dispersion(&self) -> f64 {
        self.dispersion_with(&self.weights)
    }

    /// The linear predictor at a new row `x0` (offset included by the caller) and its standard
    /// error with the given dispersion (`predict.glm(..., se.fit = TRUE, type = "link")`).
    pub fn predict_link(&self, x0: &[f64], dispersion: f64) -> (f64, f64) {
        let p = self.coef.len();
        let fit: f64 = (0..p).filter(|&j| !self.coef[j].is_nan()).map(|j| x0[j] * self.coef[j]).sum();
        let mut v = 0.0;
        for a in 0..p {
            for b in 0..p {
                v += x0[a] * self.cov_unscaled[a][b] * x0[b];
            }
        }
        (fit, (v * dispersion).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intercept_only_is_the_log_mean() {
        let y = [3.0, 5.0, 4.0, 8.0];
        let f = fit(&[vec![1.0; 4]], &y, None, None);
        assert!(f.converged);
        assert!((f.coef[0] - 5.0f64.ln()).abs() < 1e-9);
        // R 4.2.2: summary(glm(c(3,5,4,8) ~ 1, family = quasipoisson))$dispersion (the working
        // weights are those of the last iteration, so not exactly 14/15).
        assert!((f.dispersion() - 0.933_335_250_975_483_6).abs() < 1e-14);
        let h: f64 = f.hat.iter().sum();
        assert!((h - 1.0).abs() < 1e-12);
    }

    #[test]
    fn aliased_column_is_nan() {
        let y = [1.0, 2.0, 4.0, 8.0, 16.0];
        let t: Vec<f64> = (0..5).map(f64::from).collect();
        let f = fit(&[vec![1.0; 5], t.clone(), t.iter().map(|v| 2.0 * v).collect()], &y, None, None);
        assert_eq!(f.rank, 2);
        assert!(f.coef[2].is_nan());
        assert!((f.coef[1] - 2f64.ln()).abs() < 1e-7);
    }

    fn close(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-10 * b.abs().max(1.0)
    }

    fn same_fit(a: &Fit, b: &Fit) {
        assert_eq!(a.converged, b.converged);
        assert_eq!(a.rank, b.rank);
        assert_eq!(a.df_residual, b.df_residual);
        for (x, y) in a.coef.iter().zip(&b.coef) {
            assert!(close(*x, *y), "coef {x} {y}");
        }
        for (x, y) in a.mu.iter().zip(&b.mu).chain(a.hat.iter().zip(&b.hat)) {
            assert!(close(*x, *y), "{x} {y}");
        }
        for (ra, rb) in a.cov_unscaled.iter().zip(&b.cov_unscaled) {
            for (x, y) in ra.iter().zip(rb) {
                assert!(close(*x, *y), "cov {x} {y}");
            }
        }
        assert!(close(a.dispersion(), b.dispersion()));
    }

    #[test]
    fn grouped_design_is_the_dense_fit() {
        let n = 120;
        let levels = 10;
        let t: Vec<f64> = (0..n).map(|i| f64::from(i) + 100.0).collect();
        let group: Vec<usize> = (0..n).map(|i| (i as usize / 7) % levels).collect();
        let y: Vec<f64> = (0..n).map(|i| f64::from((i * 37 + 11) % 13 + (i % 7) * 2)).collect();
        let w: Vec<f64> = (0..n).map(|i| 0.5 + f64::from(i % 5) / 4.0).collect();
        for trend in [true, false] {
            for weights in [None, Some(w.as_slice())] {
                let g = Design::Grouped { trend: trend.then_some(t.as_slice()), group: &group, levels };
                let x = g.dense(n as usize);
                same_fit(&fit_design(g, &y, weights, None), &fit(&x, &y, weights, None));
            }
        }
        // A level without rows, and a trend constant within each level: R's QR aliases a column,
        // and so does the fallback.
        let g = Design::Grouped { trend: Some(&t), group: &group, levels: levels + 1 };
        let f = fit_design(g, &y, None, None);
        assert_eq!(f.rank, 1 + 1 + levels - 1);
        assert!(f.coef.last().unwrap().is_nan());
        let flat: Vec<f64> = group.iter().map(|&g| g as f64).collect();
        let g = Design::Grouped { trend: Some(&flat), group: &group, levels };
        let f = fit_design(g, &y, None, None);
        assert_eq!(f.rank, levels);
    }
}
