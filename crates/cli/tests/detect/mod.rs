//! `chainbreak detect` and `chainbreak rt` end to end against R: the series and R's outputs are
//! the fixtures of crates/detect (written by its `tests/r/make_fixtures.R` with surveillance
//! 1.20.3 and EpiEstim 2.2-4). Every (series, setting) of the fixtures that the command line can
//! express is run as a process and compared with R within issue 7's `1e-6 · max(1, |R|)`, alarms
//! identical, `NA` where R has `NA`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::{ok, run, s};

type Row = HashMap<String, String>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../detect/tests/fixtures")
}

fn read_csv(text: &str) -> Vec<Row> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| headers.iter().zip(rec.unwrap().iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect())
        .collect()
}

fn fixture(name: &str) -> Vec<Row> {
    read_csv(&std::fs::read_to_string(fixtures().join(name)).unwrap())
}

/// Rows grouped by (series, config), in file order.
fn grouped(rows: Vec<Row>) -> BTreeMap<(String, String), Vec<Row>> {
    let mut g: BTreeMap<(String, String), Vec<Row>> = BTreeMap::new();
    for r in rows {
        g.entry((r["series"].clone(), r["config"].clone())).or_default().push(r);
    }
    g
}

struct SeriesFile {
    path: PathBuf,
    freq: usize,
    n: usize,
}

/// Writes each fixture series as the CSV `chainbreak detect --series` reads.
fn series_files(dir: &Path) -> BTreeMap<String, SeriesFile> {
    let mut text: BTreeMap<String, (usize, usize, String)> = BTreeMap::new();
    for r in fixture("series.csv") {
        let e = text
            .entry(r["series"].clone())
            .or_insert_with(|| (r["freq"].parse().unwrap(), 0, "t,observed,date,population\n".to_string()));
        e.1 += 1;
        e.2.push_str(&format!("{},{},{},{}\n", r["t"], r["observed"], r["date"], r["population"]));
    }
    text.into_iter()
        .map(|(name, (freq, n, body))| {
            let path = dir.join(format!("{name}.csv"));
            std::fs::write(&path, body).unwrap();
            (name, SeriesFile { path, freq, n })
        })
        .collect()
}

#[derive(Default)]
struct Check {
    values: usize,
    failures: Vec<String>,
}

impl Check {
    fn num(&mut self, what: &str, ours: &str, r: &str) {
        self.values += 1;
        let na = |v: &str| v == "NA" || v == "NaN";
        let ok = match (na(ours), na(r)) {
            (true, true) => true,
            (false, false) => {
                let (a, b): (f64, f64) = (ours.parse().unwrap(), r.parse().unwrap());
                (a - b).abs() <= 1e-6 * b.abs().max(1.0)
            }
            _ => false,
        };
        if !ok {
            self.failures.push(format!("{what}: ours {ours}, R {r}"));
        }
    }

    fn alarm(&mut self, what: &str, ours: &str, r: &str) {
        self.values += 1;
        let r = match r {
            "1" => "true",
            "0" => "false",
            other => other,
        };
        if ours != r {
            self.failures.push(format!("{what} alarm: ours {ours}, R {r}"));
        }
    }

    /// Compares the command's output rows with R's, column by column.
    fn rows(&mut self, what: &str, ours: &[Row], r: &[Row], columns: &[(&str, &str)], alarm: bool) {
        if ours.len() != r.len() {
            self.failures.push(format!("{what}: {} rows, R has {}", ours.len(), r.len()));
            return;
        }
        for (o, rr) in ours.iter().zip(r) {
            let t = rr.get("t").or_else(|| rr.get("t_start")).unwrap();
            let what = format!("{what} t={t}");
            for (ours_col, r_col) in columns {
                self.num(&format!("{what} {ours_col}"), &o[*ours_col], &rr[*r_col]);
            }
            if alarm {
                self.alarm(&what, &o["alarm"], &rr["alarm"]);
            }
        }
    }

    fn finish(self, name: &str, at_least: usize) {
        for f in self.failures.iter().take(30) {
            eprintln!("{f}");
        }
        assert!(self.failures.is_empty(), "{name}: {} of {} values differ from R", self.failures.len(), self.values);
        assert!(self.values >= at_least, "{name}: only {} values compared", self.values);
    }
}

fn detect(file: &Path, method: &str, extra: &[String]) -> Vec<Row> {
    let mut args: Vec<String> = vec!["detect".into(), "--method".into(), method.into(), "--series".into(), s(file)];
    args.extend(extra.iter().cloned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    read_csv(&ok(&refs))
}

fn flags(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

const POINT: &[(&str, &str)] = &[("observed", "observed"), ("expected", "expected"), ("upperbound", "upperbound")];

#[test]
fn detect_ears_equals_r() {
    let dir = tempfile::tempdir().unwrap();
    let files = series_files(dir.path());
    let mut check = Check::default();
    for ((series, config), rows) in grouped(fixture("ears.csv")) {
        let f = &files[&series];
        let (method, mut extra) = match config.as_str() {
            "C1" => ("ears-c1", vec![]),
            "C2" => ("ears-c2", vec![]),
            "C3" => ("ears-c3", vec![]),
            "C1_b10_ms1" => ("ears-c1", flags("--baseline 10 --min-sigma 1 --alpha 0.01")),
            "C2_ms05" => ("ears-c2", flags("--min-sigma 0.5 --alpha 0.05")),
            "C3_b5" => ("ears-c3", flags("--baseline 5 --min-sigma 0.2 --alpha 0.01")),
            "C2_range" => ("ears-c2", flags("--range 30:60")),
            other => panic!("unknown config {other}"),
        };
        if config != "C2_range" && f.n > 400 {
            extra.extend(flags(&format!("--range {}:{}", f.n - 299, f.n)));
        }
        let ours = detect(&f.path, method, &extra);
        check.rows(&format!("{series} {config}"), &ours, &rows, POINT, true);
    }
    check.finish("EARS", 90_000);
}

#[test]
fn detect_cusum_equals_r() {
    let dir = tempfile::tempdir().unwrap();
    let files = series_files(dir.path());
    let mut check = Check::default();
    for ((series, config), rows) in grouped(fixture("cusum.csv")) {
        let f = &files[&series];
        let settings = match config.as_str() {
            "standard" => "--trans standard",
            "rossi" => "--trans rossi",
            "anscombe" => "--trans anscombe",
            "anscombe2nd" => "--trans anscombe2nd",
            "pearsonNegBin" => "--trans pearsonNegBin --alpha 0.2",
            "anscombeNegBin" => "--trans anscombeNegBin --alpha 0.2 --h 3",
            "anscombeNegBin_big" => "--trans anscombeNegBin --alpha 0.9 --k 0.5",
            "none" => "--trans none --k 6 --h 12",
            "standard_k2_h4" => "--k 0.5 --h 4",
            "m_given" => "--m 9",
            "m_glm" => "--m glm",
            "m_glm_rossi" => "--m glm --trans rossi",
            other => panic!("unknown config {other}"),
        };
        let mut extra = flags(settings);
        extra.extend(flags(&format!("--range {}:{} --frequency {}", rows[0]["t"], f.n, f.freq)));
        let ours = detect(&f.path, "cusum", &extra);
        check.rows(&format!("{series} {config}"), &ours, &rows, POINT, true);
    }
    check.finish("CUSUM", 60_000);
}

#[test]
fn detect_farrington_equals_r() {
    let dir = tempfile::tempdir().unwrap();
    let files = series_files(dir.path());
    let mut check = Check::default();
    let noufaily = "--no-periods 10 --past-weeks-not-included 26 --weights-threshold 2.58";
    for ((series, config), rows) in grouped(fixture("farrington.csv")) {
        let f = &files[&series];
        let settings = match config.as_str() {
            "original" => "--b 5 --w 3 --weights-threshold 1 --no-periods 1 --threshold-method delta".to_string(),
            "original_b3_alpha01" => {
                "--b 3 --w 2 --weights-threshold 1 --no-periods 1 --threshold-method delta --alpha 0.01 \
                 --p-threshold-trend 1"
                    .to_string()
            }
            "noufaily_nbPlugin" => format!("--b 5 --w 3 {noufaily} --threshold-method nbPlugin"),
            "noufaily_muan" => format!("--b 5 --w 3 {noufaily} --threshold-method muan"),
            "noufaily_nbPlugin_trend1" => {
                format!("--b 4 --w 3 {noufaily} --threshold-method nbPlugin --p-threshold-trend 1 --alpha 0.01")
            }
            "original_population" => "--weights-threshold 1 --no-periods 1 --population-offset".to_string(),
            "noufaily_population" => format!("{noufaily} --threshold-method nbPlugin --population-offset true"),
            "plain_half" => "--b 4 --w 2 --reweight false --trend false --powertrans 1/2 --limit54 3,2".to_string(),
            "plain_none" => {
                "--b 5 --w 1 --reweight --weights-threshold 1.5 --powertrans none --limit54 0,1".to_string()
            }
            // Daily data with dates: the frequency (365) comes from the dates.
            "daily_original" => "--b 3 --w 3 --weights-threshold 1 --threshold-method delta".to_string(),
            "daily_noufaily" => format!("--b 3 --w 3 {noufaily} --threshold-method muan"),
            other => panic!("unknown config {other}"),
        };
        let mut extra = flags(&settings);
        extra.extend(flags(&format!("--range {}:{}", rows[0]["t"], f.n)));
        let ours = detect(&f.path, "farrington", &extra);
        check.rows(&format!("{series} {config}"), &ours, &rows, POINT, true);
    }
    check.finish("Farrington", 14_000);
}

#[test]
fn rt_equals_epiestim() {
    let dir = tempfile::tempdir().unwrap();
    let mut incidence: BTreeMap<String, String> = BTreeMap::new();
    for r in fixture("incidence.csv") {
        let body = incidence.entry(r["series"].clone()).or_insert_with(|| "t,local,imported\n".to_string());
        body.push_str(&format!("{},{},{}\n", r["t"], r["local"], r["imported"]));
    }
    let mut si: BTreeMap<String, String> = BTreeMap::new();
    for r in fixture("si_distr.csv") {
        let body = si.entry(r["name"].clone()).or_insert_with(|| "k,p\n".to_string());
        body.push_str(&format!("{},{}\n", r["k"], r["p"]));
    }
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        s(&p)
    };
    let mut check = Check::default();
    let columns: &[(&str, &str)] = &[
        ("t_start", "t_start"),
        ("t_end", "t_end"),
        ("mean", "mean"),
        ("std", "sd"),
        ("q025", "q025"),
        ("q05", "q05"),
        ("q25", "q25"),
        ("median", "median"),
        ("q75", "q75"),
        ("q95", "q95"),
        ("q975", "q975"),
    ];
    for ((series, config), rows) in grouped(fixture("epiestim.csv")) {
        let inc = write(&format!("inc-{series}.csv"), &incidence[&series]);
        let extra: Vec<String> = match config.as_str() {
            "parametric" => flags("--si-mean 2.6 --si-sd 1.5"),
            "parametric_long" => flags("--si-mean 8.4 --si-sd 3.8"),
            "parametric_prior" => flags("--si-mean 4.8 --si-sd 2.3 --mean-prior 2 --std-prior 1"),
            "nonparametric" => {
                let d = match series.as_str() {
                    "measles1861" | "sars2003" | "smallpox1972" => series.as_str(),
                    _ => "flu2009",
                };
                vec!["--si-distr".into(), write(&format!("si-{d}.csv"), &si[d])]
            }
            // Given 4-day windows: not a sliding window, not on the command line.
            "windows" => continue,
            other => panic!("unknown config {other}"),
        };
        let mut args = vec!["rt".to_string(), "--incidence".into(), inc];
        args.extend(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let ours = read_csv(&ok(&refs));
        check.rows(&format!("{series} {config}"), &ours, &rows, columns, false);
    }
    check.finish("EpiEstim", 20_000);
}

fn fails(args: &[&str], needle: &str) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(err.contains(needle), "{args:?}: `{needle}` not in: {err}");
}

#[test]
fn detect_reads_several_series_and_refuses_what_r_would_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let files = series_files(dir.path());
    let one = s(&files["salmonella_agona"].path);
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        s(&p)
    };

    // Several series in one file, in parallel: each as alone.
    let a = std::fs::read_to_string(&files["weekly_seasonal"].path).unwrap();
    let b = std::fs::read_to_string(&files["weekly_trend_outbreaks"].path).unwrap();
    let mut both = "series,t,observed,date,population\n".to_string();
    for (id, text) in [("A", &a), ("B,2", &b)] {
        for line in text.lines().skip(1) {
            both.push_str(&format!("\"{id}\",{line}\n"));
        }
    }
    let both = write("both.csv", &both);
    let settings = ["--no-periods", "10", "--past-weeks-not-included", "26", "--threshold-method", "muan"];
    let together = ok(&[&["detect", "--method", "farrington", "--series", &both][..], &settings].concat());
    let alone = |p: &Path| ok(&[&["detect", "--method", "farrington", "--series", &s(p)][..], &settings].concat());
    let expected: String =
        [("A", alone(&files["weekly_seasonal"].path)), ("\"B,2\"", alone(&files["weekly_trend_outbreaks"].path))]
            .iter()
            .flat_map(|(id, out)| out.lines().skip(1).map(move |l| format!("{id},{l}\n")).collect::<Vec<_>>())
            .collect();
    assert_eq!(together, format!("series,t,observed,expected,upperbound,alarm\n{expected}"));

    // A flag the method does not read.
    fails(&["detect", "--method", "ears-c1", "--series", &one, "--b", "3"], "--b does not apply to --method ears-c1");
    fails(
        &["detect", "--method", "farrington", "--series", &one, "--k", "1", "--trans", "rossi"],
        "--k, --trans do not apply to --method farrington",
    );
    fails(&["detect", "--method", "cusum", "--series", &one, "--baseline", "3", "--range", "100:312"], "--baseline");
    // R's algo.cusum has no default range.
    fails(&["detect", "--method", "cusum", "--series", &one], "cusum needs --range");
    fails(&["detect", "--method", "farrington", "--series", &one, "--threshold-method", "nbplugin"], "nbPlugin");
    fails(&["detect", "--method", "ears-c1", "--series", &one, "--range", "300:400"], "outside the series");
    // Too short for five years back, as R.
    fails(&["detect", "--method", "farrington", "--series", &one, "--range", "100:120"], "too short");
    fails(&["detect", "--method", "farrington", "--series", &one, "--population-offset"], "population");

    // Bad files: file, line and field.
    let bad = write("bad.csv", "t,observed\n1,3\n2,x\n");
    fails(
        &["detect", "--method", "ears-c1", "--series", &bad],
        "bad.csv: line 3, field `observed`: `x` is not a count",
    );
    let gap = write("gap.csv", "t,observed\n1,3\n2,4\n4,5\n");
    fails(&["detect", "--method", "ears-c1", "--series", &gap], "gap.csv: line 4, field `t`");
    let extra = write("extra.csv", "t,observed,weather\n1,3,rain\n");
    fails(&["detect", "--method", "ears-c1", "--series", &extra], "extra.csv: line 1, field `weather`: unknown column");
    let missing = write("missing.csv", "t,count\n1,3\n");
    fails(&["detect", "--method", "ears-c1", "--series", &missing], "field `count`");
    let date = write("date.csv", "t,observed,date\n1,3,2020-01-06\n2,3,2020-13-01\n");
    fails(&["detect", "--method", "ears-c1", "--series", &date], "date.csv: line 3, field `date`");
    let ragged = write("ragged.csv", "t,observed\n1,3\n2\n");
    fails(&["detect", "--method", "ears-c1", "--series", &ragged], "ragged.csv: line 3");
    fails(&["detect", "--method", "ears-c1", "--series", "/nonexistent/x.csv"], "/nonexistent/x.csv");

    // Missing counts are NA in and NA out, never zeros.
    let out = ok(&["detect", "--method", "ears-c1", "--series", &s(&files["daily_missing"].path), "--range", "15:23"]);
    assert!(out.lines().nth(1).unwrap().starts_with("15,NA,"), "{out}");
}

#[test]
fn rt_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        s(&p)
    };
    let body: String =
        std::iter::once("t,local\n".to_string()).chain((1..=20).map(|t| format!("{t},{}\n", t % 7))).collect();
    let inc = write("inc.csv", &body);
    fails(&["rt", "--incidence", &inc], "--si-mean M --si-sd S or as --si-distr FILE");
    fails(&["rt", "--incidence", &inc, "--si-mean", "2.6"], "--si-sd");
    fails(&["rt", "--incidence", &inc, "--si-mean", "0.5", "--si-sd", "1"], "mean_si must be > 1");
    fails(&["rt", "--incidence", &inc, "--si-mean", "2.6", "--si-sd", "1.5", "--window", "25"], "--window 25");
    let na = write("na.csv", "t,local\n1,1\n2,NA\n3,4\n");
    fails(&["rt", "--incidence", &na, "--si-mean", "2.6", "--si-sd", "1.5"], "na.csv: line 3, field `local`");
    let si = write("si.csv", "k,p\n0,0\n1,0.5\n3,0.5\n");
    fails(&["rt", "--incidence", &inc, "--si-distr", &si], "si.csv: line 4, field `k`");
    let out = ok(&["rt", "--incidence", &inc, "--si-mean", "2.6", "--si-sd", "1.5", "--window", "3"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "t_start,t_end,mean,std,q025,q05,q25,median,q75,q95,q975");
    assert_eq!(lines.len(), 1 + 17); // t_start 2..=18
    assert!(lines[1].starts_with("2,4,"));
}
