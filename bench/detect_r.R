#!/usr/bin/env Rscript
# R's side of the surveillance benchmark (issue 7): surveillance::farringtonFlexible with the
# Noufaily et al. 2013 settings on the first N series of the benchmark file, the same control as
# bench/detect.sh gives chainbreak.
#
#   Rscript bench/detect_r.R SERIES.csv N FROM TO OUT.csv
#
# Prints one line `r_fit_seconds=S fits=F` (the time of the farringtonFlexible calls alone,
# reading the file excluded) and writes the results as OUT.csv (series,t,observed,expected,
# upperbound,alarm) so that the benchmark can check that both give the same numbers.
Sys.setenv(TZ = "UTC")
suppressPackageStartupMessages(library(surveillance))
args <- commandArgs(trailingOnly = TRUE)
file <- args[1]; n <- as.integer(args[2]); from <- as.integer(args[3]); to <- as.integer(args[4]); out <- args[5]
d <- read.csv(file, colClasses = c("character", "integer", "numeric"), na.strings = "NA")
ids <- unique(d$series)[seq_len(n)]
series <- lapply(ids, function(s) d$observed[d$series == s])
ctl <- list(range = from:to, b = 5, w = 3, noPeriods = 10, pastWeeksNotIncluded = 26, weightsThreshold = 2.58,
            thresholdMethod = "nbPlugin")
res <- vector("list", length(ids))
t0 <- proc.time()[["elapsed"]]
for (i in seq_along(ids)) {
  s <- sts(observed = series[[i]], frequency = 52, start = c(2000, 1))
  res[[i]] <- suppressWarnings(farringtonFlexible(s, control = ctl))
}
elapsed <- proc.time()[["elapsed"]] - t0
num <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
lgl <- function(x) ifelse(is.na(x), "NA", ifelse(x, "true", "false"))
rows <- do.call(rbind, lapply(seq_along(ids), function(i) {
  r <- res[[i]]
  data.frame(series = ids[i], t = from:to, observed = num(as.vector(observed(r))),
             expected = num(as.vector(r@control$expected)), upperbound = num(as.vector(upperbound(r))),
             alarm = lgl(as.vector(alarms(r))))
}))
write.csv(rows, out, row.names = FALSE, quote = FALSE)
cat(sprintf("r_fit_seconds=%.3f fits=%d\n", elapsed, length(ids) * (to - from + 1)))
