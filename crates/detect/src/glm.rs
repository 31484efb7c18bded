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

/// Fits `y ~ x` (columns of `x`, intercept included by the caller) with log link, prior weights
/// and an offset, as `glm.fit(x, y, weights, offset = offset, family = quasipoisson())`.
/// Observations must be non-missing (R's `na.omit` is the caller's).
pub fn fit(x: &[Vec<f64>], y: &[f64], weights: Option<&[f64]>, offset: Option<&[f64]>) -> Fit {
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
            let mueta = eta[i].exp().max(f64::EPSILON);
            let z = (eta[i] - offset[i]) + (y[i] - mu[i]) / mueta;
            let w = (prior[i] * mueta * mueta / mu[i]).sqrt();
            ws[i] = w;
            zw.push(z * w);
        }
        let a: Vec<Vec<f64>> = x.iter().map(|col| good.iter().map(|&i| col[i] * ws[i]).collect()).collect();
        let (start, q) = qr_solve(&a, &zw, tol);
        w2 = ws.iter().map(|w| w * w).collect();
        let mut start = start;
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
        qr = Some((q, good));
        if (dev - devold).abs() / (dev.abs() + 0.1) < EPSILON {
            converged = true;
            break;
        }
        devold = dev;
        coefold = Some(coef.clone());
    }
    let (q, good) = qr.expect("at least one iteration");
    let rank = q.kept.len();
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
    let residuals: Vec<f64> = (0..n).map(|i| (y[i] - mu[i]) / eta[i].exp().max(f64::EPSILON)).collect();
    let df_residual = good.len().saturating_sub(rank);
    Fit { coef, eta, mu, weights: w2, residuals, converged, rank, df_residual, cov_unscaled, hat, prior, y: y.to_vec() }
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
}
