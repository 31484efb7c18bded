//! `chainbreak detect` and `chainbreak rt`: the surveillance statistics of crates/detect on count
//! series read from CSV files (issue 7, item 6).
//!
//! The flags carry the names of R's control lists (`b`, `w`, `weightsThreshold` as
//! `--weights-threshold`...) and default to R's defaults, so a call reads like the R call it
//! stands for. A flag that the chosen method does not read is refused rather than ignored.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use chainbreak_core::{ErrorCode, Location};
use chainbreak_detect::epiestim::{self, Incidence, SerialInterval};
use chainbreak_detect::farrington::{self, PowerTrans, ThresholdMethod};
use chainbreak_detect::{Point, cusum, ears};
use chainbreak_formats::FormatError;
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// EARS C1 (`earsC`, method "C1").
    #[value(name = "ears-c1")]
    EarsC1,
    /// EARS C2 (`earsC`, method "C2").
    #[value(name = "ears-c2")]
    EarsC2,
    /// EARS C3 (`earsC`, method "C3").
    #[value(name = "ears-c3")]
    EarsC3,
    /// `farringtonFlexible` (1996 or Noufaily et al. 2013 settings by the flags).
    Farrington,
    /// `algo.cusum`.
    Cusum,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::EarsC1 => "ears-c1",
            Method::EarsC2 => "ears-c2",
            Method::EarsC3 => "ears-c3",
            Method::Farrington => "farrington",
            Method::Cusum => "cusum",
        }
    }
}

#[derive(Args)]
pub struct DetectArgs {
    /// The method, as in R's surveillance 1.20.3.
    #[arg(long, value_enum)]
    method: Method,
    /// CSV with columns `t,observed` and optionally `date` (ISO date of the period's start; with
    /// dates, Farrington finds reference periods by date as R does), `population` (for
    /// --population-offset) and `series` (an id: several series in one file, each in its own
    /// consecutive rows, output with the id). `t` counts periods one by one; a missing count is
    /// empty or `NA`, never a zero.
    #[arg(long)]
    series: PathBuf,
    /// Periods a year: 52 (weekly) or 365 (daily). Default: from the spacing of the dates (7 or 1
    /// days), else 52 (R's `sts` default). Farrington and CUSUM (`--m glm`) only.
    #[arg(long, value_parser = parse_frequency)]
    frequency: Option<usize>,
    /// The monitored range FROM:TO, inclusive, in the file's `t`. Default: R's (EARS: from the
    /// first point with a full reference; Farrington: from `frequency·b + w + 1`; CUSUM has no
    /// default in R and needs it).
    #[arg(long, value_parser = parse_range)]
    range: Option<(i64, i64)>,
    /// EARS: number of reference values (default 7).
    #[arg(long, help_heading = "EARS (earsC)")]
    baseline: Option<usize>,
    /// EARS: least standard deviation (`minSigma`, default 0).
    #[arg(long, help_heading = "EARS (earsC)")]
    min_sigma: Option<f64>,
    /// EARS, Farrington, CUSUM: EARS's level (default 0.001 for C1 and C2, 0.025 for C3),
    /// Farrington's (default 0.05), CUSUM's overdispersion of the negative-binomial
    /// transformations (default 0.1).
    #[arg(long)]
    alpha: Option<f64>,
    /// Farrington: years back (default 5).
    #[arg(long = "b", help_heading = "Farrington (farringtonFlexible)")]
    b: Option<usize>,
    /// Farrington: half-window around each reference period (default 3).
    #[arg(long = "w", help_heading = "Farrington (farringtonFlexible)")]
    w: Option<usize>,
    /// Farrington: refit with weights from the Anscombe residuals (true|false, default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_r_bool,
          help_heading = "Farrington (farringtonFlexible)")]
    reweight: Option<bool>,
    /// Farrington: residual above which a period is down-weighted (default 2.58; 1 in the 1996
    /// method).
    #[arg(long, help_heading = "Farrington (farringtonFlexible)")]
    weights_threshold: Option<f64>,
    /// Farrington: latest periods left out of the fit (default: w; 26 in Noufaily et al.).
    #[arg(long, help_heading = "Farrington (farringtonFlexible)")]
    past_weeks_not_included: Option<usize>,
    /// Farrington: seasonal periods of the year (default 1; 10 in Noufaily et al.).
    #[arg(long, help_heading = "Farrington (farringtonFlexible)")]
    no_periods: Option<usize>,
    /// Farrington: delta (1996), nbPlugin or muan (Noufaily et al.); default delta.
    #[arg(long, value_parser = parse_threshold_method, help_heading = "Farrington (farringtonFlexible)")]
    threshold_method: Option<ThresholdMethod>,
    /// Farrington: fit a time trend (true|false, default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_r_bool,
          help_heading = "Farrington (farringtonFlexible)")]
    trend: Option<bool>,
    /// Farrington: p-value below which the trend is kept (default 0.05).
    #[arg(long, help_heading = "Farrington (farringtonFlexible)")]
    p_threshold_trend: Option<f64>,
    /// Farrington: offset log(population) from the `population` column (true|false, default false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = parse_r_bool,
          help_heading = "Farrington (farringtonFlexible)")]
    population_offset: Option<bool>,
    /// Farrington: power transformation of the delta bound: 2/3, 1/2 or none (default 2/3).
    #[arg(long, value_parser = parse_powertrans, help_heading = "Farrington (farringtonFlexible)")]
    powertrans: Option<PowerTrans>,
    /// Farrington: CASES,PERIODS: no alarm without at least CASES cases in the last PERIODS
    /// periods (default 5,4).
    #[arg(long, value_parser = parse_limit54, help_heading = "Farrington (farringtonFlexible)")]
    limit54: Option<(f64, usize)>,
    /// CUSUM: reference value (default 1.04).
    #[arg(long = "k", help_heading = "CUSUM (algo.cusum)")]
    k: Option<f64>,
    /// CUSUM: decision interval (default 2.26).
    #[arg(long = "h", help_heading = "CUSUM (algo.cusum)")]
    h: Option<f64>,
    /// CUSUM: standard, rossi, anscombe, anscombe2nd, pearsonNegBin, anscombeNegBin or none
    /// (default standard).
    #[arg(long, value_parser = parse_trans, help_heading = "CUSUM (algo.cusum)")]
    trans: Option<cusum::Trans>,
    /// CUSUM: the reference mean: a number, or `glm` (a seasonal Poisson GLM on the counts before
    /// the range, time counted from the first row's `t`); default: the mean of those counts.
    #[arg(long = "m", value_parser = parse_m, help_heading = "CUSUM (algo.cusum)")]
    m: Option<MeanArg>,
    /// Print on stderr, as one JSON line, the seconds spent reading, computing and writing (for
    /// Farrington, which computes each series beside the reading of the next: the seconds until
    /// the file was read and the computing after that).
    #[arg(long)]
    timings: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MeanArg {
    Value(f64),
    Glm,
}

#[derive(Args)]
pub struct RtArgs {
    /// CSV with columns `t,local` and optionally `imported` (cases per time step; the first step's
    /// cases count as imported, as EpiEstim makes them).
    #[arg(long, required_unless_present = "db")]
    incidence: Option<PathBuf>,
    /// Instead of a file: the deployment's cases by day of onset (else sampling, else report),
    /// local and imported, with the profile's serial interval and window; prints JSON.
    #[arg(long, conflicts_with_all = ["incidence", "si_mean", "si_sd", "si_distr"])]
    db: Option<PathBuf>,
    /// With --db: the last day (default: today in the deployment's zone).
    #[arg(long)]
    to: Option<jiff::civil::Date>,
    /// Mean of the serial interval (a gamma discretised as `discr_si`; `method = "parametric_si"`).
    #[arg(long, requires = "si_sd", conflicts_with = "si_distr")]
    si_mean: Option<f64>,
    /// Standard deviation of the serial interval.
    #[arg(long, requires = "si_mean")]
    si_sd: Option<f64>,
    /// CSV of the serial interval's distribution (`method = "non_parametric_si"`): a column `p`
    /// (the probability of a lag of 0, 1, 2... days, the first 0) and optionally `k` (the lags).
    #[arg(long)]
    si_distr: Option<PathBuf>,
    /// Length of the sliding windows (R's default: 7, `t_start = 2..T−6`).
    #[arg(long, default_value_t = 7)]
    window: usize,
    /// Mean of the gamma prior of R (`mean_prior`).
    #[arg(long, default_value_t = 5.0)]
    mean_prior: f64,
    /// Standard deviation of the prior (`std_prior`).
    #[arg(long, default_value_t = 5.0)]
    std_prior: f64,
}

fn parse_frequency(s: &str) -> Result<usize, String> {
    match s {
        "52" => Ok(52),
        "365" => Ok(365),
        _ => Err(format!("`{s}`: the frequency is 52 (weekly) or 365 (daily)")),
    }
}

fn parse_range(s: &str) -> Result<(i64, i64), String> {
    let bad = || format!("`{s}` is not a range FROM:TO of t values (like 261:312)");
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let (a, b) = (a.trim().parse::<i64>().map_err(|_| bad())?, b.trim().parse::<i64>().map_err(|_| bad())?);
    if a > b {
        return Err(format!("`{s}`: FROM is after TO"));
    }
    Ok((a, b))
}

/// R's logicals as written on a command line.
fn parse_r_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "TRUE" | "True" | "T" | "1" | "yes" => Ok(true),
        "false" | "FALSE" | "False" | "F" | "0" | "no" => Ok(false),
        _ => Err(format!("`{s}` is not true or false")),
    }
}

fn parse_threshold_method(s: &str) -> Result<ThresholdMethod, String> {
    match s {
        "delta" => Ok(ThresholdMethod::Delta),
        "nbPlugin" => Ok(ThresholdMethod::NbPlugin),
        "muan" => Ok(ThresholdMethod::Muan),
        _ => Err(format!("`{s}`: the threshold method is delta, nbPlugin or muan")),
    }
}

fn parse_powertrans(s: &str) -> Result<PowerTrans, String> {
    match s {
        "2/3" => Ok(PowerTrans::TwoThirds),
        "1/2" => Ok(PowerTrans::Half),
        "none" => Ok(PowerTrans::None),
        _ => Err(format!("`{s}`: powertrans is 2/3, 1/2 or none")),
    }
}

fn parse_limit54(s: &str) -> Result<(f64, usize), String> {
    let bad = || format!("`{s}` is not CASES,PERIODS (like 5,4)");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    Ok((a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?))
}

fn parse_trans(s: &str) -> Result<cusum::Trans, String> {
    use cusum::Trans::*;
    Ok(match s {
        "standard" => Standard,
        "rossi" => Rossi,
        "anscombe" => Anscombe,
        "anscombe2nd" => Anscombe2nd,
        "pearsonNegBin" => PearsonNegBin,
        "anscombeNegBin" => AnscombeNegBin,
        "none" => None,
        _ => {
            return Err(format!(
                "`{s}`: trans is standard, rossi, anscombe, anscombe2nd, pearsonNegBin, anscombeNegBin or none"
            ));
        }
    })
}

fn parse_m(s: &str) -> Result<MeanArg, String> {
    if s == "glm" {
        return Ok(MeanArg::Glm);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(MeanArg::Value(v)),
        _ => Err(format!("`{s}`: m is a positive number or glm")),
    }
}

// ------------------------------------------------------------------------------------ input

/// One series of the input file.
struct SeriesIn {
    id: Option<String>,
    /// `t` of the first row.
    t0: i64,
    observed: Vec<Option<f64>>,
    /// Days since 1970-01-01, if the file has dates.
    dates: Option<Vec<i64>>,
    population: Vec<Option<f64>>,
    /// The line of the first row, for messages.
    line: u64,
}

impl SeriesIn {
    fn name(&self) -> String {
        match &self.id {
            Some(id) => format!("series `{id}`"),
            None => "the series".to_string(),
        }
    }
}

/// A CSV file read with the project's located errors (file, line, field).
struct Table {
    file: String,
    reader: csv::Reader<std::fs::File>,
    columns: Vec<String>,
}

impl Table {
    fn open(path: &Path, required: &[&str], optional: &[&str]) -> Result<Table, FormatError> {
        let file = path.display().to_string();
        let f = std::fs::File::open(path)
            .map_err(|e| FormatError::new(ErrorCode::Io, Location::file(&file), format!("cannot open: {e}")))?;
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(f);
        let headers = reader.headers().map_err(|e| csv_error(&file, e))?;
        let columns: Vec<String> = headers.iter().map(str::to_string).collect();
        for c in &columns {
            if !required.contains(&c.as_str()) && !optional.contains(&c.as_str()) {
                return Err(FormatError::new(
                    ErrorCode::InputUnknownField,
                    Location::file(&file).with_line(1).with_field(c.as_str()),
                    format!(
                        "unknown column; the columns are {} and optionally {}",
                        required.join(","),
                        optional.join(",")
                    ),
                ));
            }
        }
        for r in required {
            if !columns.iter().any(|c| c == r) {
                return Err(FormatError::new(
                    ErrorCode::InputMissingField,
                    Location::file(&file).with_line(1).with_field(*r),
                    "missing column",
                ));
            }
        }
        Ok(Table { file, reader, columns })
    }

    fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    fn error(&self, line: u64, field: &str, message: impl Into<String>) -> FormatError {
        FormatError::new(
            ErrorCode::InputInvalidField,
            Location::file(&self.file).with_line(line).with_field(field),
            message,
        )
    }

    /// The next record and its line, or `None` at the end.
    fn next(&mut self, record: &mut csv::StringRecord) -> Result<Option<u64>, FormatError> {
        match self.reader.read_record(record) {
            Ok(false) => Ok(None),
            Ok(true) => Ok(Some(record.position().map_or(0, |p| p.line()))),
            Err(e) => Err(csv_error(&self.file, e)),
        }
    }
}

fn csv_error(file: &str, e: csv::Error) -> FormatError {
    let mut loc = Location::file(file);
    if let Some(p) = e.position() {
        loc = loc.with_line(p.line());
    }
    match e.into_kind() {
        csv::ErrorKind::Io(io) => FormatError::new(ErrorCode::Io, loc, format!("cannot read: {io}")),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => FormatError::new(
            ErrorCode::InputMalformed,
            loc,
            format!("record has {len} fields but the header has {expected_len}"),
        ),
        csv::ErrorKind::Utf8 { err, .. } => {
            FormatError::new(ErrorCode::InputMalformed, loc, format!("invalid UTF-8 in field {}", err.field() + 1))
        }
        other => FormatError::new(ErrorCode::InputMalformed, loc, format!("{other:?}")),
    }
}

/// A count: a non-negative number, or missing (empty, `NA`, `NaN`).
fn count(t: &Table, line: u64, field: &str, v: &str) -> Result<Option<f64>, FormatError> {
    if v.is_empty() || v == "NA" || v == "NaN" {
        return Ok(None);
    }
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
        _ => Err(t.error(line, field, format!("`{v}` is not a count (a number >= 0, or NA when missing)"))),
    }
}

fn integer(t: &Table, line: u64, field: &str, v: &str) -> Result<i64, FormatError> {
    v.parse::<i64>().map_err(|_| t.error(line, field, format!("`{v}` is not an integer")))
}

fn read_series(path: &Path) -> Result<Vec<SeriesIn>, FormatError> {
    let mut out = Vec::new();
    read_series_each(path, |s| out.push(s))?;
    Ok(out)
}

/// Reads the series of a file and hands each to `each` as soon as its last row is read, in the
/// order of the file.
fn read_series_each(path: &Path, mut each: impl FnMut(SeriesIn)) -> Result<(), FormatError> {
    let mut t = Table::open(path, &["t", "observed"], &["date", "population", "series"])?;
    let (it, io) = (t.index("t").unwrap_or(0), t.index("observed").unwrap_or(0));
    let (idate, ipop, iseries) = (t.index("date"), t.index("population"), t.index("series"));
    // The series being read (the last one of the file so far).
    let mut out: Option<SeriesIn> = None;
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut record = csv::StringRecord::new();
    while let Some(line) = t.next(&mut record)? {
        let id = iseries.map(|i| &record[i]);
        let tv = integer(&t, line, "t", &record[it])?;
        let observed = count(&t, line, "observed", &record[io])?;
        let date = match idate.map(|i| &record[i]) {
            None | Some("") | Some("NA") => None,
            Some(d) => {
                let d: jiff::civil::Date =
                    d.parse().map_err(|_| t.error(line, "date", format!("`{d}` is not an ISO date (YYYY-MM-DD)")))?;
                Some(farrington::days_from_civil(i64::from(d.year()), d.month() as u32, d.day() as u32))
            }
        };
        let population = match ipop.map(|i| &record[i]) {
            None | Some("") | Some("NA") => None,
            Some(p) => match p.parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 => Some(x),
                _ => return Err(t.error(line, "population", format!("`{p}` is not a population (a number > 0)"))),
            },
        };
        let new = match &out {
            None => true,
            Some(s) => s.id.as_deref() != id,
        };
        if new {
            let id = id.map(str::to_string);
            if let Some(id) = &id
                && !seen.insert(id.clone())
            {
                return Err(t.error(
                    line,
                    "series",
                    format!("series `{id}` again: the rows of a series must be together"),
                ));
            }
            let next = SeriesIn {
                id,
                t0: tv,
                observed: Vec::new(),
                dates: date.map(|_| Vec::new()),
                population: Vec::new(),
                line,
            };
            if let Some(done) = out.replace(next) {
                each(done);
            }
        }
        let s = out.as_mut().expect("a series is being read");
        let expected_t = s.t0 + s.observed.len() as i64;
        if tv != expected_t {
            return Err(t.error(
                line,
                "t",
                format!("t is {tv} where {expected_t} follows: one row per period, in order"),
            ));
        }
        match (&mut s.dates, date) {
            (Some(d), Some(day)) => {
                if let Some(&prev) = d.last()
                    && day <= prev
                {
                    return Err(t.error(line, "date", "dates must increase"));
                }
                d.push(day);
            }
            (None, None) => {}
            _ => return Err(t.error(line, "date", "either every row of a series has a date or none has")),
        }
        s.observed.push(observed);
        s.population.push(population);
    }
    match out {
        Some(last) => {
            each(last);
            Ok(())
        }
        None => Err(FormatError::new(ErrorCode::InputMissingField, Location::file(&t.file), "no rows")),
    }
}

// ----------------------------------------------------------------------------------- detect

/// Which flags a method reads.
fn allowed(method: Method, flag: &str) -> bool {
    const EARS: &[&str] = &["--range", "--baseline", "--min-sigma", "--alpha"];
    const FARRINGTON: &[&str] = &[
        "--range",
        "--frequency",
        "--alpha",
        "--b",
        "--w",
        "--reweight",
        "--weights-threshold",
        "--past-weeks-not-included",
        "--no-periods",
        "--threshold-method",
        "--trend",
        "--p-threshold-trend",
        "--population-offset",
        "--powertrans",
        "--limit54",
    ];
    const CUSUM: &[&str] = &["--range", "--frequency", "--alpha", "--k", "--h", "--trans", "--m"];
    match method {
        Method::EarsC1 | Method::EarsC2 | Method::EarsC3 => EARS.contains(&flag),
        Method::Farrington => FARRINGTON.contains(&flag),
        Method::Cusum => CUSUM.contains(&flag),
    }
}

fn check_flags(a: &DetectArgs) -> anyhow::Result<()> {
    let given = [
        ("--frequency", a.frequency.is_some()),
        ("--range", a.range.is_some()),
        ("--baseline", a.baseline.is_some()),
        ("--min-sigma", a.min_sigma.is_some()),
        ("--alpha", a.alpha.is_some()),
        ("--b", a.b.is_some()),
        ("--w", a.w.is_some()),
        ("--reweight", a.reweight.is_some()),
        ("--weights-threshold", a.weights_threshold.is_some()),
        ("--past-weeks-not-included", a.past_weeks_not_included.is_some()),
        ("--no-periods", a.no_periods.is_some()),
        ("--threshold-method", a.threshold_method.is_some()),
        ("--trend", a.trend.is_some()),
        ("--p-threshold-trend", a.p_threshold_trend.is_some()),
        ("--population-offset", a.population_offset.is_some()),
        ("--powertrans", a.powertrans.is_some()),
        ("--limit54", a.limit54.is_some()),
        ("--k", a.k.is_some()),
        ("--h", a.h.is_some()),
        ("--trans", a.trans.is_some()),
        ("--m", a.m.is_some()),
    ];
    let wrong: Vec<&str> = given.iter().filter(|(f, g)| *g && !allowed(a.method, f)).map(|(f, _)| *f).collect();
    if !wrong.is_empty() {
        bail!(
            "{} {} not apply to --method {}",
            wrong.join(", "),
            if wrong.len() == 1 { "does" } else { "do" },
            a.method.name()
        );
    }
    Ok(())
}

/// The 1-based positions of a range of `t` values in a series.
fn positions(s: &SeriesIn, range: (i64, i64)) -> anyhow::Result<(usize, usize)> {
    let last = s.t0 + s.observed.len() as i64 - 1;
    if range.0 < s.t0 || range.1 > last {
        bail!("--range {}:{} lies outside {} (t {}..{})", range.0, range.1, s.name(), s.t0, last);
    }
    Ok(((range.0 - s.t0 + 1) as usize, (range.1 - s.t0 + 1) as usize))
}

fn frequency(a: &DetectArgs, s: &SeriesIn) -> anyhow::Result<usize> {
    if let Some(f) = a.frequency {
        return Ok(f);
    }
    match &s.dates {
        Some(d) if d.len() >= 2 => match d[1] - d[0] {
            7 => Ok(52),
            1 => Ok(365),
            other => bail!("{}: dates {other} days apart; say --frequency 52 or 365", s.name()),
        },
        _ => Ok(52),
    }
}

fn engine_error(s: &SeriesIn, e: chainbreak_detect::Error) -> anyhow::Error {
    let hint = match e {
        chainbreak_detect::Error::TooShort => {
            " (R stops here too; monitor a later --range or use fewer reference periods)"
        }
        _ => "",
    };
    anyhow::anyhow!("{} (from line {}): {e}{hint}", s.name(), s.line)
}

fn ears_control(a: &DetectArgs, s: &SeriesIn) -> anyhow::Result<ears::Control> {
    let method = match a.method {
        Method::EarsC1 => ears::Method::C1,
        Method::EarsC2 => ears::Method::C2,
        _ => ears::Method::C3,
    };
    let mut c = ears::Control::new(method);
    if let Some(b) = a.baseline {
        c.baseline = b;
    }
    if let Some(m) = a.min_sigma {
        c.min_sigma = m;
    }
    c.alpha = a.alpha;
    c.range = a.range.map(|r| positions(s, r)).transpose()?;
    Ok(c)
}

fn farrington_control(a: &DetectArgs) -> farrington::Control {
    fn set<T: Copy>(v: Option<T>, to: &mut T) {
        if let Some(v) = v {
            *to = v;
        }
    }
    let mut c = farrington::Control::default();
    set(a.b, &mut c.b);
    set(a.w, &mut c.w);
    set(a.reweight, &mut c.reweight);
    set(a.weights_threshold, &mut c.weights_threshold);
    set(a.alpha, &mut c.alpha);
    set(a.trend, &mut c.trend);
    set(a.p_threshold_trend, &mut c.p_threshold_trend);
    set(a.population_offset, &mut c.population_offset);
    set(a.no_periods, &mut c.no_periods);
    set(a.threshold_method, &mut c.threshold_method);
    set(a.powertrans, &mut c.powertrans);
    set(a.limit54, &mut c.limit54);
    c.past_weeks_not_included = a.past_weeks_not_included;
    c
}

fn cusum_control(a: &DetectArgs, s: &SeriesIn) -> anyhow::Result<cusum::Control> {
    let Some(range) = a.range else {
        bail!("cusum needs --range FROM:TO (R's algo.cusum has no default range; the counts before FROM give m)");
    };
    let mut c = cusum::Control::new(positions(s, range)?);
    if let Some(k) = a.k {
        c.k = k;
    }
    if let Some(h) = a.h {
        c.h = h;
    }
    if let Some(t) = a.trans {
        c.trans = t;
    }
    if let Some(alpha) = a.alpha {
        c.alpha = alpha;
    }
    c.m = match a.m {
        None => cusum::Mean::Past,
        Some(MeanArg::Value(v)) => cusum::Mean::Value(v),
        Some(MeanArg::Glm) => cusum::Mean::Glm { freq: frequency(a, s)? as f64, start: s.t0 as f64 },
    };
    Ok(c)
}

/// A number as R writes it: shortest round trip, `NA` when missing.
fn num(v: Option<f64>) -> String {
    match v {
        None => "NA".to_string(),
        Some(x) if x.is_nan() => "NA".to_string(),
        Some(x) if x == f64::INFINITY => "Inf".to_string(),
        Some(x) if x == f64::NEG_INFINITY => "-Inf".to_string(),
        Some(x) => x.to_string(),
    }
}

fn lgl(v: Option<bool>) -> &'static str {
    match v {
        None => "NA",
        Some(true) => "true",
        Some(false) => "false",
    }
}

/// What came of one series in the Farrington path.
enum Outcome {
    Points(Vec<Point>),
    /// The flags do not fit the series (refused before anything is computed, as R would).
    Control(anyhow::Error),
    /// The engine stopped on the series (as R would stop).
    Engine(anyhow::Error),
}

/// The series of the input with their points, and the seconds spent reading and computing.
struct Computed {
    series: Vec<SeriesIn>,
    results: Vec<Vec<Point>>,
    read_s: f64,
    compute_s: f64,
}

/// Farrington on every series of the file, each computed on rayon's threads as soon as its last
/// row is read (reading runs on a thread of its own beside the computing). Each series is
/// computed alone with its own control, so the results do not depend on the order in which they
/// finish or on the number of threads; they are put back in the order of the file, and the errors
/// are reported as reading the whole file first would report them: a reading error, else the
/// first series whose flags do not fit, else the first series the engine stops on. The reading
/// time is until the file was read, the computing time what came after.
fn farrington_streamed(a: &DetectArgs) -> anyhow::Result<Computed> {
    use rayon::iter::{ParallelBridge, ParallelIterator};
    let started = Instant::now();
    let base = farrington_control(a);
    let compute = |s: &SeriesIn| -> Outcome {
        let control = || -> anyhow::Result<(farrington::Control, usize, Option<Vec<f64>>)> {
            let mut c = base.clone();
            c.range = a.range.map(|r| positions(s, r)).transpose()?;
            let population: Option<Vec<f64>> = if c.population_offset {
                match s.population.iter().position(Option::is_none) {
                    Some(i) => bail!(
                        "--population-offset needs a population on every row; {} has none at t {}",
                        s.name(),
                        s.t0 + i as i64
                    ),
                    None => Some(s.population.iter().flatten().copied().collect()),
                }
            } else {
                None
            };
            Ok((c, frequency(a, s)?, population))
        };
        match control() {
            Err(e) => Outcome::Control(e),
            Ok((c, freq, population)) => {
                let input = farrington::Series {
                    observed: &s.observed,
                    freq,
                    dates: s.dates.as_deref(),
                    population: population.as_deref(),
                };
                match farrington::farrington_flexible(&input, &c) {
                    Ok(p) => Outcome::Points(p.into_iter().map(|p| p.point).collect()),
                    Err(e) => Outcome::Engine(engine_error(s, e)),
                }
            }
        }
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, SeriesIn)>(256);
    let path = a.series.as_path();
    let ((read, read_s), mut done) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut i = 0;
            let read = read_series_each(path, |s| {
                // The receiver lives until every series is computed.
                let _ = tx.send((i, s));
                i += 1;
            });
            (read, started.elapsed().as_secs_f64())
        });
        let done: Vec<(usize, SeriesIn, Outcome)> = rx
            .into_iter()
            .par_bridge()
            .map(|(i, s)| {
                let outcome = compute(&s);
                (i, s, outcome)
            })
            .collect();
        (reader.join().expect("the reader thread does not panic"), done)
    });
    read?;
    let compute_s = started.elapsed().as_secs_f64() - read_s;
    done.sort_unstable_by_key(|d| d.0);
    if let Some(i) = done.iter().position(|d| matches!(d.2, Outcome::Control(_))) {
        let Outcome::Control(e) = done.swap_remove(i).2 else { unreachable!("a control error") };
        return Err(e);
    }
    let mut series = Vec::with_capacity(done.len());
    let mut results = Vec::with_capacity(done.len());
    for (_, s, outcome) in done {
        match outcome {
            Outcome::Points(p) => results.push(p),
            Outcome::Control(e) | Outcome::Engine(e) => return Err(e),
        }
        series.push(s);
    }
    Ok(Computed { series, results, read_s, compute_s })
}

pub fn run_detect(a: DetectArgs) -> anyhow::Result<()> {
    check_flags(&a)?;
    let Computed { series, results, read_s, compute_s } = if a.method == Method::Farrington {
        farrington_streamed(&a)?
    } else {
        let started = Instant::now();
        let series = read_series(&a.series)?;
        let read_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let results: Vec<Vec<Point>> = match a.method {
            Method::EarsC1 | Method::EarsC2 | Method::EarsC3 => series
                .iter()
                .map(|s| ears::ears_c(&s.observed, &ears_control(&a, s)?).map_err(|e| engine_error(s, e)))
                .collect::<anyhow::Result<_>>()?,
            Method::Cusum => series
                .iter()
                .map(|s| {
                    let c = cusum_control(&a, s)?;
                    let p = cusum::cusum(&s.observed, &c).map_err(|e| engine_error(s, e))?;
                    Ok(p.into_iter().map(|p| p.point).collect())
                })
                .collect::<anyhow::Result<_>>()?,
            Method::Farrington => unreachable!("streamed above"),
        };
        Computed { series, results, read_s, compute_s: started.elapsed().as_secs_f64() }
    };
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let with_id = series.iter().any(|s| s.id.is_some());
    if with_id {
        out.write_all(b"series,")?;
    }
    writeln!(out, "t,observed,expected,upperbound,alarm")?;
    let mut rows = 0usize;
    for (s, points) in series.iter().zip(&results) {
        let id = s.id.as_deref().map(csv_field);
        for p in points {
            if let Some(id) = &id {
                write!(out, "{id},")?;
            }
            writeln!(
                out,
                "{},{},{},{},{}",
                s.t0 + p.t as i64 - 1,
                num(p.observed),
                num(p.expected),
                num(p.upperbound),
                lgl(p.alarm)
            )?;
            rows += 1;
        }
    }
    out.flush().context("writing the output")?;
    if a.timings {
        eprintln!(
            "{{\"series\":{},\"points\":{},\"read_s\":{:.6},\"compute_s\":{:.6},\"write_s\":{:.6}}}",
            series.len(),
            rows,
            read_s,
            compute_s,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// A CSV field, quoted when it has to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

// --------------------------------------------------------------------------------------- rt

fn read_incidence(path: &Path) -> Result<(i64, Incidence), FormatError> {
    let mut t = Table::open(path, &["t", "local"], &["imported"])?;
    let (it, il, ii) = (t.index("t").unwrap_or(0), t.index("local").unwrap_or(0), t.index("imported"));
    let mut record = csv::StringRecord::new();
    let mut t0 = None;
    let mut inc = Incidence::default();
    while let Some(line) = t.next(&mut record)? {
        let tv = integer(&t, line, "t", &record[it])?;
        let first = *t0.get_or_insert(tv);
        let expected_t = first + inc.local.len() as i64;
        if tv != expected_t {
            return Err(t.error(line, "t", format!("t is {tv} where {expected_t} follows: one row per time step")));
        }
        let local = count(&t, line, "local", &record[il])?;
        if local.is_none() {
            return Err(t.error(line, "local", "a missing count: EpiEstim's estimate_R stops on NA, give every count"));
        }
        inc.local.push(local);
        if let Some(ii) = ii {
            let imported = count(&t, line, "imported", &record[ii])?;
            if imported.is_none() {
                return Err(t.error(line, "imported", "a missing count: give every count (0 for none)"));
            }
            inc.imported.push(imported);
        }
    }
    match t0 {
        Some(t0) => Ok((t0, inc)),
        None => Err(FormatError::new(ErrorCode::InputMissingField, Location::file(&t.file), "no rows")),
    }
}

fn read_si_distr(path: &Path) -> Result<Vec<f64>, FormatError> {
    let mut t = Table::open(path, &["p"], &["k"])?;
    let (ip, ik) = (t.index("p").unwrap_or(0), t.index("k"));
    let mut record = csv::StringRecord::new();
    let mut p = Vec::new();
    while let Some(line) = t.next(&mut record)? {
        if let Some(ik) = ik {
            let k = integer(&t, line, "k", &record[ik])?;
            if k != p.len() as i64 {
                return Err(t.error(
                    line,
                    "k",
                    format!("k is {k} where {} follows: lags 0, 1, 2... in order", p.len()),
                ));
            }
        }
        let v = &record[ip];
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => p.push(x),
            _ => return Err(t.error(line, "p", format!("`{v}` is not a probability"))),
        }
    }
    Ok(p)
}

pub fn run_rt(a: RtArgs, clock: std::sync::Arc<dyn chainbreak_core::time::Clock>) -> anyhow::Result<()> {
    if let Some(db) = &a.db {
        let store = chainbreak_app::open(db)?;
        let dep = chainbreak_app::Deployment::new(Box::new(store), clock)?;
        let view = chainbreak_app::surveillance::rt(&dep, None, a.to)?;
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    if a.to.is_some() {
        bail!("--to DATE goes with --db (a file's estimates cover its time steps)");
    }
    let incidence = a.incidence.as_ref().context("--incidence FILE or --db DB")?;
    let si = match (a.si_mean, a.si_sd, &a.si_distr) {
        (Some(mean), Some(sd), None) => SerialInterval::Parametric { mean, sd },
        (None, None, Some(file)) => SerialInterval::NonParametric(read_si_distr(file)?),
        _ => bail!("give the serial interval as --si-mean M --si-sd S or as --si-distr FILE"),
    };
    let (t0, inc) = read_incidence(incidence)?;
    let t_len = inc.local.len();
    if a.window == 0 || a.window + 1 > t_len {
        bail!("--window {} needs at least {} time steps; {} has {t_len}", a.window, a.window + 1, incidence.display());
    }
    let mut config = epiestim::Config::new(si);
    config.mean_prior = a.mean_prior;
    config.std_prior = a.std_prior;
    config.windows = Some((2..=t_len + 1 - a.window).map(|s| (s, s + a.window - 1)).collect());
    let out = epiestim::estimate_r(&inc, &config).map_err(|e| anyhow::anyhow!("{}: {e}", incidence.display()))?;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    writeln!(w, "t_start,t_end,mean,std,q025,q05,q25,median,q75,q95,q975")?;
    for e in &out.estimates {
        write!(w, "{},{},{},{}", t0 + e.t_start as i64 - 1, t0 + e.t_end as i64 - 1, num(e.mean), num(e.sd))?;
        for i in 0..7 {
            write!(w, ",{}", num(e.quantiles.map(|q| q[i])))?;
        }
        writeln!(w)?;
    }
    w.flush().context("writing the output")?;
    Ok(())
}
