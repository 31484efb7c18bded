#!/usr/bin/env Rscript
# Reference outputs for chainbreak-detect from R's surveillance and EpiEstim.
#
#   Rscript crates/detect/tests/r/make_fixtures.R crates/detect/tests/fixtures
#
# Needs R with the Debian packages r-cran-surveillance (1.20.3) and r-cran-epiestim (2.2-4).
# Writes the input series and the outputs of each method as CSV; the Rust tests read both.
# Numbers are written with 17 significant digits so that the files carry R's doubles exactly.
Sys.setenv(TZ = "UTC")
suppressPackageStartupMessages({
  library(surveillance)
  library(EpiEstim)
})
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[1] else "crates/detect/tests/fixtures"
dir.create(out, showWarnings = FALSE, recursive = TRUE)

num <- function(x) ifelse(is.na(x), "NA", ifelse(is.nan(x), "NaN", sprintf("%.17g", x)))
lgl <- function(x) ifelse(is.na(x), "NA", ifelse(x, "1", "0"))
write_table <- function(df, file) {
  for (col in names(df)) {
    if (is.logical(df[[col]])) df[[col]] <- lgl(df[[col]])
    else if (is.numeric(df[[col]])) df[[col]] <- num(df[[col]])
  }
  write.csv(df, file.path(out, file), row.names = FALSE, quote = FALSE, na = "NA")
}

# ---------------------------------------------------------------- series
set.seed(20261129)
series <- list()
add <- function(name, observed, freq, dates = NULL, population = NULL) {
  series[[name]] <<- list(observed = observed, freq = freq, dates = dates, population = population)
}
data(salmonella.agona)  # weekly, 1990-1995, 312 weeks
add("salmonella_agona", salmonella.agona$observed, 52)
data(stsNewport)        # weekly with dates, 2004-2018, 773 weeks
add("newport", as.vector(observed(stsNewport)), 52, as.Date(stsNewport@epoch, origin = "1970-01-01"))
data(ha)                # hepatitis A in Berlin, weekly, summed over districts
add("hepatitis_a", rowSums(ha$observed), 52)
data(campyDE)           # campylobacteriosis in Germany, weekly with dates, 2002-2011
add("campylobacter", campyDE$case, 52, campyDE$date)
data(momo)              # deaths in Denmark (MOMO), weekly with dates, summed over age groups
add("momo_deaths", rowSums(observed(momo)), 52, as.Date(momo@epoch, origin = "1970-01-01"))
# Newport with missing weeks, among them weeks that begin the reference data of some monitored
# weeks (with dates, the prediction's time origin then moves: a quirk of the package).
nm <- as.vector(observed(stsNewport)); nm[c(seq(460, 520, by = 3), 600, 700, 740)] <- NA
add("newport_missing", nm, 52, as.Date(stsNewport@epoch, origin = "1970-01-01"))
# Synthetic daily series for EARS and CUSUM (a syndromic feed: pharmacy sales, clinic visits).
n <- 120
add("daily_flat", rpois(n, 12), 365)
add("daily_trend", rpois(n, exp(log(5) + 0.015 * (1:n))), 365)
out_d <- rpois(n, 8); out_d[70:78] <- out_d[70:78] + c(4, 9, 15, 22, 25, 18, 10, 5, 2)
add("daily_outbreak", out_d, 365)
add("daily_zeros", rbinom(n, 1, 0.12) * rpois(n, 1.5), 365)
gap <- rpois(n, 6); gap[c(15, 40, 41, 42, 90)] <- NA
add("daily_missing", gap, 365)
# Synthetic weekly series, 6 years, seasonal, with a trend and outbreaks (Farrington).
wk <- 1:312
season <- exp(1.8 + 0.6 * sin(2 * pi * wk / 52) + 0.3 * cos(2 * pi * wk / 52))
add("weekly_seasonal", rnbinom(312, mu = season, size = 8), 52)
tr <- rnbinom(312, mu = season * exp(0.004 * wk), size = 5)
tr[c(150:153, 290:294)] <- tr[c(150:153, 290:294)] + c(8, 14, 9, 4, 6, 15, 25, 14, 6)
add("weekly_trend_outbreaks", tr, 52)
add("weekly_zeros", rnbinom(312, mu = 0.4 * season / 6, size = 0.8), 52)
wm <- rpois(312, 0.8 * season); wm[c(100, 101, 250, 305)] <- NA
add("weekly_missing", wm, 52)
# A weekly series with a growing population (Farrington's population offset).
pop <- round(50000 * exp(0.002 * wk))
add("weekly_population", rpois(312, season * pop / 50000), 52, population = pop)
# Four years of daily counts with dates, from a Tuesday (Farrington with daily data).
dd <- as.Date("2019-01-01") + 0:(4 * 365 + 30)
add("daily_dates", rpois(length(dd), exp(2 + 0.4 * sin(2 * pi * as.numeric(dd) / 365.25))), 365, dates = dd)

rows <- do.call(rbind, lapply(names(series), function(s) {
  x <- series[[s]]
  data.frame(series = s, t = seq_along(x$observed), freq = x$freq,
             date = if (is.null(x$dates)) "" else format(x$dates),
             population = if (is.null(x$population)) NA else x$population, observed = x$observed)
}))
write_table(rows, "series.csv")

mk_sts <- function(s) {
  x <- series[[s]]
  pop <- if (is.null(x$population)) NULL else as.matrix(x$population)
  if (is.null(x$dates)) sts(observed = x$observed, frequency = x$freq, start = c(2000, 1), population = pop)
  else sts(observed = x$observed, epoch = x$dates, frequency = x$freq, epochAsDate = TRUE, population = pop)
}
# EARS and CUSUM run on every series but the long daily one.
short <- setdiff(names(series), "daily_dates")

# ---------------------------------------------------------------- EARS
ears_rows <- list()
ears_cfg <- list(
  C1 = list(method = "C1"), C2 = list(method = "C2"), C3 = list(method = "C3"),
  C1_b10_ms1 = list(method = "C1", baseline = 10, minSigma = 1, alpha = 0.01),
  C2_ms05 = list(method = "C2", minSigma = 0.5, alpha = 0.05),
  C3_b5 = list(method = "C3", baseline = 5, minSigma = 0.2, alpha = 0.01),
  C2_range = list(method = "C2", range = 30:60)
)
for (s in short) for (cn in names(ears_cfg)) {
  ctl <- ears_cfg[[cn]]
  # The long weekly series: the last 300 weeks only, to keep the file small.
  n <- length(series[[s]]$observed)
  if (is.null(ctl$range) && n > 400) ctl$range <- (n - 299):n
  res <- earsC(mk_sts(s), control = ctl)
  x <- series[[s]]$observed
  b <- if (is.null(ctl$baseline)) 7 else ctl$baseline
  lag <- if (ctl$method == "C1") 0 else 2
  tt <- if (is.null(ctl$range)) (length(x) - nrow(res) + 1):length(x) else sort(ctl$range)
  expected <- sapply(tt, function(t) mean(x[(t - lag - b):(t - lag - 1)]))
  ears_rows[[length(ears_rows) + 1]] <- data.frame(
    series = s, config = cn, t = tt, observed = as.vector(observed(res)), expected = expected,
    upperbound = as.vector(upperbound(res)), alarm = as.vector(alarms(res)))
}
write_table(do.call(rbind, ears_rows), "ears.csv")

# ---------------------------------------------------------------- CUSUM
cusum_rows <- list()
cusum_cfg <- list(
  standard = list(trans = "standard"),
  rossi = list(trans = "rossi"),
  anscombe = list(trans = "anscombe"),
  anscombe2nd = list(trans = "anscombe2nd"),
  pearsonNegBin = list(trans = "pearsonNegBin", alpha = 0.2),
  anscombeNegBin = list(trans = "anscombeNegBin", alpha = 0.2, h = 3),
  anscombeNegBin_big = list(trans = "anscombeNegBin", alpha = 0.9, k = 0.5),
  none = list(trans = "none", k = 6, h = 12),
  standard_k2_h4 = list(trans = "standard", k = 0.5, h = 4),
  m_given = list(trans = "standard", m = 9),
  m_glm = list(trans = "standard", m = "glm"),
  m_glm_rossi = list(trans = "rossi", m = "glm")
)
for (s in short) for (cn in names(cusum_cfg)) {
  x <- series[[s]]
  n <- length(x$observed)
  from <- if (x$freq == 52) n - 103 else 61
  ctl <- cusum_cfg[[cn]]
  ctl$range <- from:n
  dp <- list(observed = x$observed, state = 0 * x$observed, freq = x$freq, start = c(2000, 1))
  class(dp) <- "disProg"
  if (grepl("anscombeNegBin", cn) && anyNA(x$observed[from:n])) next  # R stops on NA there
  res <- algo.cusum(dp, control = ctl)
  m <- res$control$m
  cusum_rows[[length(cusum_rows) + 1]] <- data.frame(
    series = s, config = cn, t = from:n, observed = x$observed[from:n],
    expected = if (length(m) == 1) rep(m, n - from + 1) else as.vector(m),
    upperbound = as.vector(res$upperbound), alarm = as.logical(res$alarm), cusum = as.vector(res$cusum))
}
write_table(do.call(rbind, cusum_rows), "cusum.csv")

# ---------------------------------------------------------------- Farrington
farr_rows <- list()
farr_cfg <- list(
  # Farrington et al. 1996 as farringtonFlexible offers it: no seasonal factor, reweighting with
  # threshold 1, the 2/3-power delta-method bound.
  original = list(b = 5, w = 3, weightsThreshold = 1, noPeriods = 1, thresholdMethod = "delta"),
  original_b3_alpha01 = list(b = 3, w = 2, weightsThreshold = 1, noPeriods = 1, thresholdMethod = "delta",
                             alpha = 0.01, pThresholdTrend = 1),
  # Noufaily et al. 2013.
  noufaily_nbPlugin = list(b = 5, w = 3, noPeriods = 10, pastWeeksNotIncluded = 26, weightsThreshold = 2.58,
                           thresholdMethod = "nbPlugin"),
  noufaily_muan = list(b = 5, w = 3, noPeriods = 10, pastWeeksNotIncluded = 26, weightsThreshold = 2.58,
                       thresholdMethod = "muan"),
  noufaily_nbPlugin_trend1 = list(b = 4, w = 3, noPeriods = 10, pastWeeksNotIncluded = 26, weightsThreshold = 2.58,
                                  thresholdMethod = "nbPlugin", pThresholdTrend = 1, alpha = 0.01)
)
farr_cfg$original_population <- list(b = 5, w = 3, weightsThreshold = 1, noPeriods = 1, thresholdMethod = "delta",
                                     populationOffset = TRUE)
farr_cfg$noufaily_population <- list(b = 5, w = 3, noPeriods = 10, pastWeeksNotIncluded = 26, weightsThreshold = 2.58,
                                     thresholdMethod = "nbPlugin", populationOffset = TRUE)
farr_cfg$plain_half <- list(b = 4, w = 2, reweight = FALSE, trend = FALSE, powertrans = "1/2", limit54 = c(3, 2))
farr_cfg$plain_none <- list(b = 5, w = 1, reweight = TRUE, weightsThreshold = 1.5, powertrans = "none", limit54 = c(0, 1))
farr_cfg$daily_original <- list(b = 3, w = 3, weightsThreshold = 1, noPeriods = 1, thresholdMethod = "delta")
farr_cfg$daily_noufaily <- list(b = 3, w = 3, noPeriods = 10, pastWeeksNotIncluded = 26, weightsThreshold = 2.58,
                                thresholdMethod = "muan")
for (s in names(series)) {
  x <- series[[s]]
  n <- length(x$observed)
  for (cn in names(farr_cfg)) {
    if (x$freq != 52 && s != "daily_dates") next
    if ((s == "daily_dates") != (cn %in% c("daily_original", "daily_noufaily"))) next
    if (grepl("population", cn) != !is.null(x$population)) next
    ctl <- farr_cfg[[cn]]
    first <- max(n - 51, x$freq * ctl$b + ctl$w + 1)
    ctl$range <- first:n
    res <- suppressWarnings(farringtonFlexible(mk_sts(s), control = ctl))
    farr_rows[[length(farr_rows) + 1]] <- data.frame(
      series = s, config = cn, t = first:n, observed = as.vector(observed(res)),
      expected = as.vector(res@control$expected), upperbound = as.vector(upperbound(res)),
      alarm = as.vector(alarms(res)), phi = as.vector(res@control$phiVector),
      trend = as.vector(res@control$trend), score = as.vector(res@control$score))
  }
}
write_table(do.call(rbind, farr_rows), "farrington.csv")

# ---------------------------------------------------------------- EpiEstim
data(Flu2009)
data(Measles1861)
data(SARS2003)
data(Flu1918)
data(Smallpox1972)
data(mers_2014_15)
flu_local <- Flu2009$incidence$I
# An incidence curve with imported cases: local transmission seeded and fed by arrivals.
imp <- c(4, 2, 3, 1, 0, 2, 5, 1, 0, 0, 3, 0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
loc <- c(0, 1, 2, 2, 4, 3, 6, 8, 7, 11, 12, 15, 14, 19, 22, 20, 26, 25, 29, 27, 24, 26, 22, 19, 18, 15, 14, 11, 9,
         10, 7, 6, 5, 4, 3)
loc_na <- flu_local; loc_na[c(12, 20)] <- NA
inc <- list(
  flu2009 = data.frame(local = c(0, flu_local[-1]), imported = c(flu_local[1], rep(0, length(flu_local) - 1))),
  measles1861 = data.frame(local = c(0, Measles1861$incidence[-1]),
                           imported = c(Measles1861$incidence[1], rep(0, length(Measles1861$incidence) - 1))),
  sars2003 = data.frame(local = c(0, SARS2003$incidence[-1]),
                        imported = c(SARS2003$incidence[1], rep(0, length(SARS2003$incidence) - 1))),
  imported = data.frame(local = loc, imported = imp),
  flu1918 = data.frame(local = c(0, Flu1918$incidence[-1]),
                       imported = c(Flu1918$incidence[1], rep(0, length(Flu1918$incidence) - 1))),
  smallpox1972 = data.frame(local = c(0, Smallpox1972$incidence[-1]),
                            imported = c(Smallpox1972$incidence[1], rep(0, length(Smallpox1972$incidence) - 1))),
  # MERS in South Korea and Saudi Arabia 2014-15: local and imported cases, as shipped.
  mers2014 = data.frame(local = mers_2014_15$incidence$local, imported = mers_2014_15$incidence$imported)
)
# A missing count: EpiEstim 2.2-4 stops (process_I's `incid[which(is.na(incid))] <- 0` fails on a data
# frame), so chainbreak refuses missing counts too; recorded here so the test can check that R stops.
na_stops <- inherits(try(suppressMessages(estimate_R(loc_na, method = "parametric_si",
  config = make_config(list(mean_si = 2.6, std_si = 1.5)))), silent = TRUE), "try-error")
writeLines(paste("estimate_R stops on NA:", na_stops), file.path(out, "epiestim_na.txt"))
inc_rows <- do.call(rbind, lapply(names(inc), function(s) data.frame(series = s, t = seq_len(nrow(inc[[s]])),
                                                                     local = inc[[s]]$local, imported = inc[[s]]$imported)))
write_table(inc_rows, "incidence.csv")
si_rows <- rbind(data.frame(name = "flu2009", k = seq_along(Flu2009$si_distr) - 1, p = Flu2009$si_distr),
                 data.frame(name = "measles1861", k = seq_along(Measles1861$si_distr) - 1, p = Measles1861$si_distr),
                 data.frame(name = "sars2003", k = seq_along(SARS2003$si_distr) - 1, p = SARS2003$si_distr),
                 data.frame(name = "smallpox1972", k = seq_along(Smallpox1972$si_distr) - 1, p = Smallpox1972$si_distr))
write_table(si_rows, "si_distr.csv")
rt_cfg <- list(
  parametric = function(s, T) list(method = "parametric_si", config = make_config(list(mean_si = 2.6, std_si = 1.5))),
  parametric_long = function(s, T) list(method = "parametric_si", config = make_config(list(mean_si = 8.4, std_si = 3.8))),
  parametric_prior = function(s, T) list(method = "parametric_si",
                                         config = make_config(list(mean_si = 4.8, std_si = 2.3, mean_prior = 2, std_prior = 1))),
  nonparametric = function(s, T) {
    d <- switch(s, measles1861 = Measles1861$si_distr, sars2003 = SARS2003$si_distr,
                smallpox1972 = Smallpox1972$si_distr, Flu2009$si_distr)
    list(method = "non_parametric_si", config = make_config(list(si_distr = d)))
  },
  windows = function(s, T) {
    st <- seq(2, T - 3, by = 4)
    list(method = "parametric_si", config = make_config(list(mean_si = 3.1, std_si = 2.0, t_start = st,
                                                             t_end = pmin(st + 3, T))))
  }
)
rt_rows <- list()
disc_rows <- list()
for (s in names(inc)) for (cn in names(rt_cfg)) {
  cfg <- rt_cfg[[cn]](s, nrow(inc[[s]]))
  res <- suppressMessages(suppressWarnings(estimate_R(inc[[s]], method = cfg$method, config = cfg$config)))
  R <- res$R
  rt_rows[[length(rt_rows) + 1]] <- data.frame(
    series = s, config = cn, t_start = R$t_start, t_end = R$t_end, mean = R[["Mean(R)"]], sd = R[["Std(R)"]],
    q025 = R[["Quantile.0.025(R)"]], q05 = R[["Quantile.0.05(R)"]], q25 = R[["Quantile.0.25(R)"]],
    median = R[["Median(R)"]], q75 = R[["Quantile.0.75(R)"]], q95 = R[["Quantile.0.95(R)"]],
    q975 = R[["Quantile.0.975(R)"]])
}
write_table(do.call(rbind, rt_rows), "epiestim.csv")
for (p in list(c(2.6, 1.5), c(8.4, 3.8), c(4.8, 2.3), c(1.5, 0.4), c(20, 12))) {
  disc_rows[[length(disc_rows) + 1]] <- data.frame(mean = p[1], sd = p[2], k = 0:40, p = discr_si(0:40, p[1], p[2]))
}
write_table(do.call(rbind, disc_rows), "discr_si.csv")

# ---------------------------------------------------------------- distribution quantiles
# The quantile functions the methods rely on, over wide parameter ranges, including p exactly at a
# step of the discrete distributions (where R's fuzz decides).
set.seed(7)
nq <- 400
mu <- exp(runif(nq, log(0.01), log(500)))
phi <- c(rep(1, nq / 4), 1 + exp(runif(3 * nq / 4, log(0.01), log(20))))
p <- sample(c(0.9, 0.95, 0.99, 0.995, 0.999, 0.5, 0.05), nq, replace = TRUE)
size <- mu / (phi - 1)
tie <- seq_len(nq) %% 5 == 0
xq <- floor(mu)
p[tie & phi == 1] <- ppois(xq, mu)[tie & phi == 1]
p[tie & phi > 1] <- pnbinom(xq, size = size, prob = 1 / phi)[tie & phi > 1]
q <- ifelse(phi == 1, qpois(p, mu), qnbinom(p, size = size, prob = 1 / phi))
write_table(data.frame(kind = ifelse(phi == 1, "pois", "nbinom"), p = p, mu = mu, size = ifelse(phi == 1, NA, size),
                       prob = ifelse(phi == 1, NA, 1 / phi), q = q), "discrete_quantiles.csv")
shape <- exp(runif(nq, log(0.02), log(20000)))
scale <- exp(runif(nq, log(0.001), log(100)))
pg <- sample(c(0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975, 1e-6, 0.999999), nq, replace = TRUE)
write_table(data.frame(p = pg, shape = shape, scale = scale, q = qgamma(pg, shape = shape, scale = scale)),
            "gamma_quantiles.csv")

writeLines(c(
  paste("R:", R.version.string),
  paste("surveillance:", packageVersion("surveillance")),
  paste("EpiEstim:", packageVersion("EpiEstim"))
), file.path(out, "VERSIONS"))
