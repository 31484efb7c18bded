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
    fn columns(&self) -> usize {
        match self {
            Design::Dense(x) => x.len(),
            Design::Grouped { trend, levels, .. } => 1 + usize::from(trend.is_some()) + levels - 1,
        }
    }

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

/// The solution of one weighted least-squares step.
enum Solved {
    Qr(Qr, Vec<usize>),
    Grouped(Groups),
}

/// Group sums of a weighted least-squares step of a [`Design::Grouped`].
struct Groups {
    /// Σ W per level.
    w: Vec<f64>,
    /// Weighted mean of the trend per level.
    tbar: Vec<f64>,
    /// Σ W (t − t̄_g)², if there is a trend.
    s_tt: Option<f64>,
    /// W per row.
    wrow: Vec<f64>,
}

/// Solves min Σ W (z − a_g − b t)² and returns the coefficients in R's parametrisation.
fn grouped_solve(
    wrow: Vec<f64>,
    z: &[f64],
    trend: Option<&[f64]>,
    group: &[usize],
    levels: usize,
) -> (Vec<f64>, Groups) {
    let mut w = vec![0.0; levels];
    let mut tz = vec![0.0; levels];
    let mut zz = vec![0.0; levels];
    for i in 0..z.len() {
        let g = group[i];
        w[g] += wrow[i];
        zz[g] += wrow[i] * z[i];
        if let Some(t) = trend {
            tz[g] += wrow[i] * t[i];
        }
    }
    let zbar: Vec<f64> = zz.iter().zip(&w).map(|(s, w)| s / w).collect();
    let tbar: Vec<f64> = tz.iter().zip(&w).map(|(s, w)| s / w).collect();
    let (b, s_tt) = match trend {
        Some(t) => {
            let (mut stt, mut stz) = (0.0, 0.0);
            for i in 0..z.len() {
                let g = group[i];
                let dt = t[i] - tbar[g];
                stt += wrow[i] * dt * dt;
                stz += wrow[i] * dt * (z[i] - zbar[g]);
            }
            (stz / stt, Some(stt))
        }
        None => (0.0, None),
    };
    let a: Vec<f64> = (0..levels).map(|g| zbar[g] - b * tbar[g]).collect();
    let mut coef = vec![a[0]];
    if trend.is_some() {
        coef.push(b);
    }
    coef.extend((1..levels).map(|g| a[g] - a[0]));
    (coef, Groups { w, tbar, s_tt, wrow })
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

    fn hat(&self, trend: Option<&[f64]>, group: &[usize]) -> Vec<f64> {
        (0..self.wrow.len())
            .map(|i| {
                let g = group[i];
                let w = self.wrow[i];
                if w == 0.0 {
                    return 0.0;
                }
                let mut h = w / self.w[g];
                if let (Some(t), Some(stt)) = (trend, self.s_tt) {
                    let dt = t[i] - self.tbar[g];
                    h += w * dt * dt / stt;
                }
                h
            })
            .collect()
    }
}

/// Fits a design as [`fit`] does.
pub fn fit_design(design: Design<'_>, y: &[f64], weights: Option<&[f64]>, offset: Option<&[f64]>) -> Fit {
    let n = y.len();
    let prior_check: Vec<f64> = weights.map_or_else(|| vec![1.0; n], <[f64]>::to_vec);
    if let Design::Grouped { trend, group, levels } = design {
        // Where R's QR would alias a column, take the dense path, which does what R does.
        let mut rows = vec![0usize; levels];
        let mut first_t: Vec<Option<f64>> = vec![None; levels];
        let mut varies = false;
        for i in 0..n {
            if prior_check[i] > 0.0 {
                rows[group[i]] += 1;
                if let Some(t) = trend {
                    match first_t[group[i]] {
                        None => first_t[group[i]] = Some(t[i]),
                        Some(t0) => varies |= t0 != t[i],
                    }
                }
            }
        }
        if rows.contains(&0) || (trend.is_some() && !varies) {
            let x = design.dense(n);
            return fit_design(Design::Dense(&x), y, weights, offset);
        }
    }
    if let Design::Grouped { trend, group, levels } = design {
        return fit_grouped(trend, group, levels, y, weights, offset);
    }
    let p = design.columns();
    let x_dense: &[Vec<f64>] = match design {
        Design::Dense(x) => x,
        Design::Grouped { .. } => &[],
    };
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
        let (start, solved) = match design {
            Design::Dense(x) => {
                let a: Vec<Vec<f64>> = x.iter().map(|col| good.iter().map(|&i| col[i] * ws[i]).collect()).collect();
                let (start, q) = qr_solve(&a, &zw, tol);
                (start, Solved::Qr(q, good.clone()))
            }
            Design::Grouped { trend, group, levels } => {
                // z itself (zw / w) for the good rows, 0 weight elsewhere.
                let mut z = vec![0.0; n];
                for (k, &i) in good.iter().enumerate() {
                    z[i] = zw[k] / ws[i];
                }
                let (start, g) = grouped_solve(w2.clone(), &z, trend, group, levels);
                (start, Solved::Grouped(g))
            }
        };
        let mut start = start;
        let compute = |start: &[f64]| {
            let eta: Vec<f64> = match design {
                Design::Dense(_) => {
                    (0..n).map(|i| (0..p).map(|j| x_dense[j][i] * start[j]).sum::<f64>() + offset[i]).collect()
                }
                Design::Grouped { trend, group, .. } => {
                    let off = 1 + usize::from(trend.is_some());
                    (0..n)
                        .map(|i| {
                            let mut e = start[0];
                            if let Some(t) = trend {
                                e += start[1] * t[i];
                            }
                            if group[i] > 0 {
                                e += start[off + group[i] - 1];
                            }
                            e + offset[i]
                        })
                        .collect()
                }
            };
            let mu: Vec<f64> = eta.iter().map(|&e| linkinv(e)).collect();
            (eta, mu)
        };
        let (mut e, mut m) = compute(&start);
        let mut dev = deviance(y, &m, &prior);
        if (!dev.is_finite() || m.iter().any(|v| !v.is_finite()))
            && let Some(old) = &coefold
        {
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
        }
        eta = e;
        mu = m;
        coef = start;
        qr = Some(solved);
        if (dev - devold).abs() / (dev.abs() + 0.1) < EPSILON {
            converged = true;
            break;
        }
        devold = dev;
        coefold = Some(coef.clone());
    }
    let good_count = (0..n).filter(|&i| prior[i] > 0.0).count();
    let (rank, cov_unscaled, hat) = match qr.expect("at least one iteration") {
        Solved::Qr(q, good) => {
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
            (q.kept.len(), cov_unscaled, hat)
        }
        Solved::Grouped(g) => {
            let (trend, group) = match design {
                Design::Grouped { trend, group, .. } => (trend, group),
                Design::Dense(_) => unreachable!("grouped solution of a dense design"),
            };
            (p, g.cov_unscaled(p), g.hat(trend, group))
        }
    };
    let residuals: Vec<f64> = (0..n).map(|i| (y[i] - mu[i]) / mu[i]).collect();
    let df_residual = good_count.saturating_sub(rank);
    Fit { coef, eta, mu, weights: w2, residuals, converged, rank, df_residual, cov_unscaled, hat, prior, y: y.to_vec() }
}

/// [`fit_design`] of a [`Design::Grouped`] without aliasing: the same iteration as the general
/// path (R's), with the working vectors allocated once, the passes over the rows fused, and three
/// shortcuts equal to rounding: the working weight `prior·μ` (R: `prior·μ²/μ`), the working
/// response without R's `z·w` (the group means need no QR), and the deviance's `log(y/μ)` as
/// `log y − η` (`log y` once per fit). Only the convergence test reads the deviance, so the
/// iterations are R's unless a ratio falls within rounding of the 1e-8 tolerance. (The group
/// means themselves round differently from R's QR anyway; the fixtures agree to ~1e-13.)
fn fit_grouped(
    trend: Option<&[f64]>,
    group: &[usize],
    levels: usize,
    y: &[f64],
    weights: Option<&[f64]>,
    offset: Option<&[f64]>,
) -> Fit {
    let n = y.len();
    let p = 1 + usize::from(trend.is_some()) + levels - 1;
    let prior: Vec<f64> = weights.map_or_else(|| vec![1.0; n], <[f64]>::to_vec);
    let off = |i: usize| offset.map_or(0.0, |o| o[i]);
    let good_count = prior.iter().filter(|&&w| w > 0.0).count();
    let mut mu: Vec<f64> = y.iter().map(|y| linkinv((y + 0.1).ln())).collect();
    let mut eta: Vec<f64> = y.iter().map(|y| (y + 0.1).ln()).collect();
    let mut devold = deviance(y, &mu, &prior);
    let ln_y: Vec<f64> = y.iter().map(|&y| if y > 0.0 { y.ln() } else { 0.0 }).collect();
    let mut coefold: Option<Vec<f64>> = None;
    let mut coef = vec![0.0; p];
    let mut converged = false;
    let mut w2 = vec![0.0; n];
    let mut z = vec![0.0; n];
    let mut e = vec![0.0; n];
    let mut m = vec![0.0; n];
    let mut groups = None;
    // Group sums, reused.
    let mut gw = vec![0.0; levels];
    let mut gz = vec![0.0; levels];
    let mut gt = vec![0.0; levels];
    let idx = 1 + usize::from(trend.is_some());
    // eta and mu of coefficients into (e, m), and the deviance; whether all mu are finite.
    let compute = |start: &[f64], e: &mut [f64], m: &mut [f64]| -> (f64, bool) {
        let mut dev = 0.0;
        let mut finite = true;
        for i in 0..n {
            let mut v = start[0];
            if let Some(t) = trend {
                v += start[1] * t[i];
            }
            let g = group[i];
            if g > 0 {
                v += start[idx + g - 1];
            }
            let v = v + off(i);
            let mv = linkinv(v);
            e[i] = v;
            m[i] = mv;
            finite &= mv.is_finite();
            let (yi, wt) = (y[i], prior[i]);
            dev += if yi > 0.0 {
                // log(y/μ) as log y − η: μ = e^η unless clipped, equal to rounding.
                let l = if mv > f64::EPSILON { ln_y[i] - v } else { (yi / mv).ln() };
                2.0 * wt * (yi * l - (yi - mv))
            } else {
                2.0 * mv * wt
            };
        }
        (dev, finite)
    };
    for _ in 0..MAXIT {
        gw.iter_mut().for_each(|v| *v = 0.0);
        gz.iter_mut().for_each(|v| *v = 0.0);
        gt.iter_mut().for_each(|v| *v = 0.0);
        // Working response and weights: rows independent of each other.
        for i in 0..n {
            if prior[i] > 0.0 {
                // z and w² of glm.fit for the log link (mu.eta = variance = μ): w² = prior·μ²/μ
                // taken as prior·μ, and z itself rather than z·w solved back (the group means
                // need no QR): equal to rounding, three divisions and a square root a row fewer.
                let m = mu[i];
                z[i] = (eta[i] - off(i)) + (y[i] - m) / m;
                w2[i] = prior[i] * m;
            } else {
                w2[i] = 0.0;
                z[i] = 0.0;
            }
        }
        // Group sums, each added in row order as before, in registers over each run of rows of
        // one group (the blocks are runs of consecutive weeks).
        let mut i = 0;
        while i < n {
            let g = group[i];
            let (mut sw, mut sz, mut st) = (gw[g], gz[g], gt[g]);
            while i < n && group[i] == g {
                if prior[i] > 0.0 {
                    let ww = w2[i];
                    sw += ww;
                    sz += ww * z[i];
                    if let Some(t) = trend {
                        st += ww * t[i];
                    }
                }
                i += 1;
            }
            (gw[g], gz[g], gt[g]) = (sw, sz, st);
        }
        let zbar: Vec<f64> = gz.iter().zip(&gw).map(|(s, w)| s / w).collect();
        let tbar: Vec<f64> = gt.iter().zip(&gw).map(|(s, w)| s / w).collect();
        let (b, s_tt) = match trend {
            Some(t) => {
                let (mut stt, mut stz) = (0.0, 0.0);
                for i in 0..n {
                    let g = group[i];
                    let dt = t[i] - tbar[g];
                    stt += w2[i] * dt * dt;
                    stz += w2[i] * dt * (z[i] - zbar[g]);
                }
                (stz / stt, Some(stt))
            }
            None => (0.0, None),
        };
        let a0 = zbar[0] - b * tbar[0];
        let mut start = Vec::with_capacity(p);
        start.push(a0);
        if trend.is_some() {
            start.push(b);
        }
        start.extend((1..levels).map(|g| (zbar[g] - b * tbar[g]) - a0));
        let (mut dev, mut finite) = compute(&start, &mut e, &mut m);
        if (!dev.is_finite() || !finite)
            && let Some(old) = &coefold
        {
            for _ in 0..MAXIT {
                start = start.iter().zip(old).map(|(a, b)| (a + b) / 2.0).collect();
                (dev, finite) = compute(&start, &mut e, &mut m);
                if dev.is_finite() && finite {
                    break;
                }
            }
        }
        std::mem::swap(&mut eta, &mut e);
        std::mem::swap(&mut mu, &mut m);
        coef = start;
        groups = Some((gw.clone(), tbar, s_tt));
        if (dev - devold).abs() / (dev.abs() + 0.1) < EPSILON {
            converged = true;
            break;
        }
        devold = dev;
        coefold = Some(coef.clone());
    }
    let (w, tbar, s_tt) = groups.expect("at least one iteration");
    let g = Groups { w, tbar, s_tt, wrow: w2 };
    let cov_unscaled = g.cov_unscaled(p);
    let hat = g.hat(trend, group);
    let residuals: Vec<f64> = (0..n).map(|i| (y[i] - mu[i]) / mu[i]).collect();
    Fit {
        coef,
        eta,
        mu,
        weights: g.wrow,
        residuals,
        converged,
        rank: p,
        df_residual: good_count.saturating_sub(p),
        cov_unscaled,
        hat,
        prior,
        y: y.to_vec(),
    }
}

impl Fit {
    /// `summary.glm(model)$dispersion` for a quasi family, with `weights` standing for
    /// `model$weights` (the working weights, unless a caller replaced them).
    pub fn dispersion_with(&self, weights: &[f64]) -> f64 {
        if self.df_residual == 0 {
            return f64::NAN;
        }
        let s: f64 = weights.iter().zip(&self.residuals).filter(|(w, _)| **w > 0.0).map(|(w, r)| w * r * r).sum();
        s / self.df_residual as f64
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
