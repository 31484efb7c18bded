//! The `chainbreak` binary end to end: real processes, real files, real HTTP on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chainbreak_store::{Entity, Store};
use serde_json::json;

mod detect;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chainbreak"));
    c.env("CHAINBREAK_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("chainbreak runs")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample")
}

fn init(dir: &Path) -> String {
    let db = dir.join("s.db").display().to_string();
    ok(&["init", "--db", &db, "--tz", "Asia/Shanghai", "--profile", "cn-2022-9th"]);
    db
}

/// Imports sample files of these kinds (areas from GeoJSON, the rest from CSV), in order.
fn import_sample(db: &str, kinds: &[&str]) {
    for kind in kinds {
        let file = if *kind == "areas" { "areas.geojson".to_string() } else { format!("{kind}.csv") };
        let out = ok(&["import", kind, &s(&sample().join(file)), "--db", db]);
        assert!(out.starts_with("imported "), "{out}");
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A server process that is killed however the test ends (a leftover would hold the test's
/// output pipe open and hang the run).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn version_names_the_embedded_sqlite() {
    assert!(ok(&["--version"]).contains("SQLite 3."));
}

#[test]
fn the_sample_serves_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons", "visits"]);
    ok(&["user", "add", "li", "--db", &db, "--role", "tracer", "--unit", "CDC", "--jurisdiction", "HS"]);
    let token = ok(&["user", "token", "li", "--db", &db, "--label", "test"]).trim().to_string();
    // The sample is of March 2022: on the system clock the retention purge would empty it.
    let args = ["--demo-clock", "2022-03-15T08:00:00+08:00", "serve", "--db", &db, "--addr", "127.0.0.1:0"];
    let child = bin().args(args).stderr(Stdio::piped()).spawn().unwrap();
    let mut server = Server(child);
    let mut lines = BufReader::new(server.0.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server says where it listens").unwrap();
        if let Some(rest) = line.split("serving on http://").nth(1) {
            break rest.trim().to_string();
        }
    };
    let ready: serde_json::Value = reqwest::blocking::get(format!("http://{addr}/readyz")).unwrap().json().unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["profile"], "cn-2022-9th");
    let batch = r#"{"visits":[{"person_id":"P001","place_id":"V01","t_in":"2022-03-15T08:00:00Z"}]}"#;
    let client = reqwest::blocking::Client::new();
    let url = format!("http://{addr}/api/v1/visits:batch");
    let refused = client.post(&url).header("content-type", "application/json").body(batch).send().unwrap();
    assert_eq!(refused.status(), 401, "no token, no ingest");
    let res =
        client.post(&url).header("content-type", "application/json").bearer_auth(&token).body(batch).send().unwrap();
    assert_eq!(res.status(), 200);
    drop(server);
    let store = chainbreak_store_sqlite::SqliteStore::open(Path::new(&db)).unwrap();
    assert_eq!(store.count(Entity::Visit).unwrap(), 5301);
}

#[test]
fn a_bad_file_fails_with_a_located_message_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    ok(&["import", "areas", &s(&sample().join("areas.geojson")), "--db", &db]);
    ok(&["import", "places", &s(&sample().join("places.csv")), "--db", &db]);
    let bad = dir.path().join("persons.csv");
    std::fs::write(&bad, "id,residence,sex\nP1,R01,female\nP2,R01,dragon\n").unwrap();
    let out = run(&["import", "persons", &s(&bad), "--db", &db]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[input.invalid_field]"), "{err}");
    assert!(err.contains("persons.csv: line 3, field `sex`"), "{err}");
    assert_eq!(err.matches("dragon").count(), 1, "said once: {err}");
    let store = chainbreak_store_sqlite::SqliteStore::open(Path::new(&db)).unwrap();
    assert_eq!(store.count(Entity::Person).unwrap(), 0);
}

#[test]
fn a_killed_import_leaves_the_store_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let places = dir.path().join("places.csv");
    let persons = dir.path().join("persons.csv");
    std::fs::write(&places, "id,kind\nL1,mall\nL2,market\n").unwrap();
    let mut text = String::from("id\n");
    for i in 0..1000 {
        text.push_str(&format!("P{i}\n"));
    }
    std::fs::write(&persons, text).unwrap();
    ok(&["import", "places", &s(&places), "--db", &db]);
    ok(&["import", "persons", &s(&persons), "--db", &db]);
    let visits = dir.path().join("visits.csv");
    let mut text = String::with_capacity(64 << 20);
    text.push_str("person_id,place_id,t_in,t_out\n");
    for i in 0..2_000_000u64 {
        text.push_str(&format!("P{},L{},{},{}\n", i % 1000, 1 + i % 2, 1_646_092_800 + i, 1_646_092_860 + i));
    }
    std::fs::write(&visits, text).unwrap();
    let before = chainbreak_store_sqlite::SqliteStore::open(Path::new(&db)).unwrap().last_seq().unwrap();

    let mut child = bin().args(["import", "visits", &s(&visits), "--db", &db]).spawn().unwrap();
    // Kill it once it has written something: the WAL grows as the transaction spills.
    let wal = PathBuf::from(format!("{db}-wal"));
    let started = Instant::now();
    while std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) < (4 << 20)
        && started.elapsed() < Duration::from_secs(60)
    {
        if child.try_wait().unwrap().is_some() {
            panic!("the import finished before it could be killed; make the file larger");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();

    let store = chainbreak_store_sqlite::SqliteStore::open(Path::new(&db)).unwrap();
    assert_eq!(store.count(Entity::Visit).unwrap(), 0, "no visit of the killed import is visible");
    assert_eq!(store.last_seq().unwrap(), before);
    drop(store);
    // The store takes the next import as if nothing had happened.
    let small = dir.path().join("small.csv");
    std::fs::write(&small, "person_id,place_id,t_in\nP1,L1,1646092800\n").unwrap();
    let out = ok(&["import", "visits", &s(&small), "--db", &db]);
    assert!(out.starts_with("imported 1 visits"), "{out}");
}

#[test]
fn profiles_are_listed_checked_and_a_wrong_field_is_named() {
    let list = ok(&["profile", "list"]);
    for name in ["cn-2022-9th", "cn-2022-20-measures", "cdc-2020-12"] {
        assert!(list.contains(name), "{list}");
        assert!(ok(&["profile", "check", name]).contains("valid"));
    }
    let dir = tempfile::tempdir().unwrap();
    let text = ok(&["profile", "show", "cn-2022-9th"]);
    let good = dir.path().join("good.toml");
    std::fs::write(&good, &text).unwrap();
    assert!(ok(&["profile", "check", &s(&good)]).contains("valid"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, text.replacen("location_days", "location_dayz", 1)).unwrap();
    let out = run(&["profile", "check", &s(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[profile.invalid]") && err.contains("retention.location_dayz"), "{err}");
}

#[test]
fn persons_merge_and_unmerge_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let persons = dir.path().join("persons.csv");
    std::fs::write(&persons, "id\nP1\nP2\n").unwrap();
    ok(&["import", "persons", &s(&persons), "--db", &db]);
    let out = ok(&[
        "person",
        "merge",
        "--db",
        &db,
        "--survivor",
        "P1",
        "--duplicate",
        "P2",
        "--reason",
        "same phone",
        "--actor",
        "t1",
    ]);
    assert!(out.contains("P2 merged into P1"), "{out}");
    let id = out.split_whitespace().nth(1).unwrap().trim_end_matches(':').to_string();
    ok(&["person", "unmerge", "--db", &db, "--merge-id", &id]);
    let history = ok(&["person", "history", "--db", &db, "P2"]);
    let entry: serde_json::Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    assert_eq!(entry["reason"], "same phone");
    assert!(entry["unmerged_at"].is_string());
    let audit = ok(&["audit", "--db", &db, "--entity", "person"]);
    let actions: Vec<serde_json::Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(actions.len(), 2, "{audit}");
    assert_eq!((&actions[0]["action"], &actions[0]["actor"]), (&json!("person_merge"), &json!("t1")));
    assert_eq!(actions[0]["reason"], "same phone");
    assert_eq!(actions[1]["action"], "person_unmerge");
}

#[test]
fn users_tokens_and_the_audit_trail_from_the_command_line() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    ok(&["import", "areas", &s(&sample().join("areas.geojson")), "--db", &db]);
    let mut child = bin()
        .args(["user", "add", "li", "--db", &db, "--role", "tracer", "--unit", "CDC", "--jurisdiction", "HS"])
        .args(["--password-stdin", "--actor", "admin1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"correct horse battery\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let out =
        ok(&["user", "add", "wang", "--db", &db, "--role", "viewer", "--unit", "CS11", "--jurisdiction", "HS-S1"]);
    assert!(out.contains("password (shown once): "), "{out}");
    let bad = run(&["user", "add", "zhao", "--db", &db, "--role", "boss", "--unit", "X", "--jurisdiction", "HS"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("error[invalid_argument]"));
    let list = ok(&["user", "list", "--db", &db]);
    assert_eq!(list.lines().count(), 2);
    assert!(!list.contains("argon2"), "hashes never leave the store");
    let token = ok(&["user", "token", "li", "--db", &db, "--label", "laptop", "--days", "30"]);
    assert!(token.trim().starts_with("cbt_"));
    ok(&["user", "disable", "wang", "--db", &db]);
    let audit = ok(&["audit", "--db", &db, "--record", "li"]);
    let actions: Vec<String> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["user_add", "token_issue"]);
    assert!(audit.contains("\"actor\":\"admin1\"") && audit.contains("chainbreak user add"));
    assert!(!audit.contains(token.trim()), "tokens are not audited in clear");
}

#[test]
fn a_pseudonymisation_key_is_made_once_and_imports_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    let key = s(&dir.path().join("pseudonym.key"));
    ok(&["key", "generate", &key]);
    let again = run(&["key", "generate", &key]);
    assert!(!again.status.success(), "an existing key is never overwritten");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let persons = dir.path().join("persons.csv");
    std::fs::write(&persons, "id,birth_year\npassport:E 1234 5678,1990\n").unwrap();
    let out = run(&["import", "persons", &s(&persons), "--db", &db]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[invalid_argument]") && !stderr.contains("1234"), "{stderr}");
    let out = bin()
        .args(["import", "persons", &s(&persons), "--db", &db])
        .env("CHAINBREAK_PSEUDONYM_KEY_FILE", &key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let store = chainbreak_app::open(Path::new(&db)).unwrap();
    let persons = store.persons_page(&chainbreak_store::Scope::All, None, 10).unwrap();
    assert_eq!(persons.len(), 1);
    assert_eq!(persons[0].id.len(), 16);
    assert_eq!(store.identifiers(&persons[0].id).unwrap()[0].value, "E12345678");
}

#[test]
fn purge_deletes_expired_location_data_and_says_what() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons", "visits"]);
    // On 2022-03-20 (28 days of retention) every sample visit is kept.
    let kept = ok(&["--demo-clock", "2022-03-20T00:00:00Z", "purge", "--db", &db, "--json"]);
    let kept: serde_json::Value = serde_json::from_str(&kept).unwrap();
    assert_eq!(kept["visits"], 0, "{kept}");
    // On 2022-04-05, the visits that ended before 2022-03-08 go.
    let out = ok(&["--demo-clock", "2022-04-05T00:00:00Z", "purge", "--db", &db, "--json", "--actor", "ops"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["visits_before"], "2022-03-08T00:00:00Z");
    let purged = report["visits"].as_u64().unwrap();
    let store = chainbreak_store_sqlite::SqliteStore::open(Path::new(&db)).unwrap();
    let left = store.count(Entity::Visit).unwrap();
    assert!(purged > 1000 && left > 1000, "purged {purged}, left {left}");
    assert_eq!(purged + left, 5300);
    let audit = ok(&["audit", "--db", &db, "--action", "purge"]);
    assert!(audit.contains("\"actor\":\"ops\"") && audit.contains("chainbreak purge"), "{audit}");
}

#[test]
fn trace_finds_the_contacts_of_a_sample_case_with_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons", "visits", "cases"]);
    let args = ["trace", "--db", &db, "--case", "K1", "--rule", "venue-overlap", "--format", "json", "--timings"];
    let out = bin().args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let timings: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(timings["visits"], 5300);
    assert!(timings["query_median_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(report["rule"], "venue-overlap");
    // K1's onset is 2022-03-08: infectious from 4 local days before (Asia/Shanghai midnight).
    assert_eq!(report["index"][0]["from"], "2022-03-03T16:00:00Z");
    assert_eq!(report["index"][0]["case_id"], "K1");
    let tiers = report["tiers"].as_array().unwrap();
    assert_eq!((tiers[0]["tier"].as_u64(), tiers[0]["category"].as_str()), (Some(1), Some("close")));
    assert_eq!((tiers[1]["tier"].as_u64(), tiers[1]["category"].as_str()), (Some(2), Some("secondary")));
    let close = tiers[0]["contacts"].as_array().unwrap();
    assert!(!close.is_empty() && tiers[0]["count"] == close.len());
    let first = &close[0];
    let evidence = &first["evidence"][0];
    assert_eq!(evidence["exposed_to"], "P071", "K1's person");
    assert!(evidence["overlap_minutes"].as_f64().unwrap() >= 15.0);
    assert_eq!(report["hash"].as_str().unwrap().len(), 64);
    // K1's activity trail: where P071 was while infectious, by check-in.
    let trail = report["trails"][0]["visits"].as_array().unwrap();
    assert_eq!(report["trails"][0]["person_id"], "P071");
    assert!(!trail.is_empty());
    assert!(trail.windows(2).all(|w| w[0]["from"].as_str() <= w[1]["from"].as_str()));
    assert!(trail.iter().any(|v| v["place_id"] == evidence["place_id"]), "the evidence is on the trail");

    // K1 and K3 traced together: K3's person worked beside K1's (the sample's chain K1 → K3).
    let both =
        ok(&["trace", "--db", &db, "--case", "K1", "--case", "K3", "--rule", "venue-overlap", "--format", "json"]);
    let both: serde_json::Value = serde_json::from_str(&both).unwrap();
    let links = both["links"].as_array().unwrap();
    assert!(links.iter().any(|l| l["source"] == "P071" && l["exposed"] == "P093"), "{links:?}");
    assert!(links.iter().all(|l| l["evidence"]["overlap_minutes"].as_f64().unwrap() >= 15.0));

    // The same through --person and --from, depth 1, as CSV.
    let out = ok(&[
        "trace",
        "--db",
        &db,
        "--person",
        "P071",
        "--from",
        "2022-03-03T16:00:00Z",
        "--rule",
        "venue-overlap",
        "--depth",
        "1",
        "--format",
        "csv",
    ]);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("tier,category,person_id,first_exposure"));
    let persons: std::collections::BTreeSet<&str> = lines.map(|l| l.split(',').nth(2).unwrap()).collect();
    let from_json: std::collections::BTreeSet<&str> = close.iter().map(|c| c["person_id"].as_str().unwrap()).collect();
    assert_eq!(persons, from_json);

    // The summary: counts and the same hash, no contacts.
    let summary = ok(&["trace", "--db", &db, "--case", "K1", "--rule", "venue-overlap", "--format", "summary"]);
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["hash"], report["hash"]);
    assert_eq!(summary["tiers"][0]["count"], report["tiers"][0]["count"]);
    assert!(summary["tiers"][0].get("contacts").is_none());
    // Another profile for this trace only: the 20 measures have no secondary contacts.
    let other = ok(&["trace", "--db", &db, "--case", "K1", "--profile", "cn-2022-20-measures", "--format", "summary"]);
    assert!(!other.contains("secondary"), "{other}");

    let refused = run(&["trace", "--db", &db, "--person", "P071"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("error[invalid_argument]"));
    let unknown = run(&["trace", "--db", &db, "--case", "K404"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("error[not_found]"));
}

#[test]
fn a_trace_snapshot_loads_instead_of_a_scan_and_catches_up_with_new_visits() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons", "visits"]);
    let snapshot = s(&dir.path().join("trace.snapshot"));
    let trace = || {
        let args = [
            "trace",
            "--db",
            &db,
            "--person",
            "P071",
            "--from",
            "2022-03-03T16:00:00Z",
            "--format",
            "json",
            "--timings",
            "--snapshot",
            &snapshot,
        ];
        let out = bin().args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let timings: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
        (
            report["hash"].as_str().unwrap().to_string(),
            timings["load_source"].as_str().unwrap().to_string(),
            timings["visits"].as_u64().unwrap(),
        )
    };
    let (first, source, visits) = trace();
    assert_eq!((source.as_str(), visits), ("store", 5300));
    assert!(Path::new(&snapshot).exists());
    let (again, source, _) = trace();
    assert_eq!((again.as_str(), source.as_str()), (first.as_str(), "snapshot"));

    // New visits: the snapshot is caught up from the change feed, and answers like a scan.
    let more = dir.path().join("more.csv");
    std::fs::write(&more, "person_id,place_id,t_in,t_out\nP001,V13,2022-03-09T05:00:00Z,2022-03-09T06:00:00Z\n")
        .unwrap();
    ok(&["import", "visits", &s(&more), "--db", &db]);
    let (caught_up, source, visits) = trace();
    assert_eq!((source.as_str(), visits), ("snapshot", 5301));
    std::fs::remove_file(&snapshot).unwrap();
    let (scanned, source, _) = trace();
    assert_eq!((caught_up, source.as_str()), (scanned, "store"));
}

#[test]
fn the_profile_rule_sorts_contacts_by_setting_and_says_what_to_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(
        &db,
        &["areas", "places", "persons", "groups", "memberships", "visits", "cases", "trips", "passengers", "pings"],
    );
    let out = ok(&["trace", "--db", &db, "--case", "K1", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["rule"], "profile");
    let categories: Vec<&str> =
        report["tiers"].as_array().unwrap().iter().map(|t| t["category"].as_str().unwrap()).collect();
    assert_eq!(categories, ["close", "co_exposed", "grid", "secondary"], "cn-2022-9th has all four");
    let close = report["tiers"][0]["contacts"].as_array().unwrap();
    assert!(!close.is_empty());
    // Check-ins cannot show the room: close contacts at venues are proposals to confirm.
    let e = close
        .iter()
        .flat_map(|c| c["evidence"].as_array().unwrap())
        .find(|e| e.get("place_id").is_some())
        .expect("venue evidence");
    assert_eq!(e["needs_confirmation"], true, "{e}");
    assert!(!e["condition"].as_str().unwrap().is_empty());
    // Nobody is in two of the first tier's categories.
    let ids = |i: usize| -> std::collections::BTreeSet<String> {
        report["tiers"][i]["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["person_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(ids(0).is_disjoint(&ids(1)) && ids(0).is_disjoint(&ids(2)) && ids(1).is_disjoint(&ids(2)));
    assert!(ids(0).is_disjoint(&ids(3)));
    // K1's household (H027): P070 is a close contact from the data alone, nothing to confirm.
    let p070 = close.iter().find(|c| c["person_id"] == "P070").expect("the household member is a close contact");
    let household = p070["evidence"].as_array().unwrap().iter().find(|e| e["group_id"] == "H027").unwrap();
    assert!(household.get("needs_confirmation").is_none() && household.get("place_id").is_none(), "{household}");

    // The 20-measures profile has no secondary contacts.
    let p20 = init_with(dir.path(), "s20.db", "cn-2022-20-measures");
    import_sample(&p20, &["areas", "places", "persons", "visits", "cases"]);
    let out = ok(&["trace", "--db", &p20, "--case", "K1", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report["tiers"].as_array().unwrap().iter().all(|t| t["category"] != "secondary"), "{}", report["tiers"]);
}

fn init_with(dir: &Path, name: &str, profile: &str) -> String {
    let db = dir.join(name).display().to_string();
    ok(&["init", "--db", &db, "--tz", "Asia/Shanghai", "--profile", profile]);
    db
}

#[test]
fn simulate_city_writes_importable_files_and_rejects_bad_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("city");
    let report = ok(&["simulate", "city", "--persons", "1500", "--days", "2", "--seed", "3", "--out", &s(&out)]);
    assert!(report.contains("visits.csv") && report.contains("wrote"), "{report}");
    let db = init(dir.path());
    for (kind, file) in [("areas", "areas.geojson"), ("places", "places.csv"), ("persons", "persons.csv")] {
        ok(&["import", kind, &s(&out.join(file)), "--db", &db]);
    }
    let imported = ok(&["import", "visits", &s(&out.join("visits.csv")), "--db", &db]);
    assert!(imported.contains("rejected 0"), "{imported}");
    let bad = run(&["simulate", "city", "--persons", "10", "--out", &s(&dir.path().join("bad"))]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("persons"), "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(!dir.path().join("bad").exists());
}

#[test]
fn simulate_outbreak_writes_the_ground_truth_and_names_a_bad_pathogen() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("outbreak");
    let report = ok(&[
        "simulate",
        "outbreak",
        "--persons",
        "3000",
        "--days",
        "5",
        "--seed",
        "2",
        "--pathogen",
        "ancestral",
        "--out",
        &s(&out),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let files: Vec<&str> = report["files"].as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap()).collect();
    assert!(files.contains(&"ground_truth.csv") && files.contains(&"lab_tests.csv"), "{files:?}");
    let truth = std::fs::read_to_string(out.join("ground_truth.csv")).unwrap();
    assert!(truth.starts_with("infectee_id,infector_id,t,route,"), "{truth}");
    // What is written does not change what is simulated: with the visits of the last 2 days
    // or none, the same ground truth; visits of exactly the days asked for.
    let visit_dates = |dir: &std::path::Path| -> std::collections::BTreeSet<i64> {
        let text = std::fs::read_to_string(dir.join("visits.csv")).unwrap();
        // Local dates (Asia/Shanghai, UTC+8) of the check-ins.
        let local = |t: &str| (t.parse::<i64>().unwrap() + 8 * 3600).div_euclid(86_400);
        text.lines().skip(1).map(|l| local(l.split(',').nth(2).unwrap())).collect()
    };
    assert_eq!(visit_dates(&out).len(), 5);
    for (days, visits) in [("2", true), ("0", false)] {
        let other = dir.path().join(format!("visits-{days}"));
        let args = ["simulate", "outbreak", "--persons", "3000", "--days", "5", "--seed", "2"];
        ok(&[&args[..], &["--pathogen", "ancestral", "--visit-days", days, "--out", &s(&other)]].concat());
        assert_eq!(std::fs::read_to_string(other.join("ground_truth.csv")).unwrap(), truth, "--visit-days {days}");
        assert_eq!(other.join("visits.csv").exists(), visits, "--visit-days {days}");
        if visits {
            let (all, last) = (visit_dates(&out), visit_dates(&other));
            assert_eq!(last.len(), 2);
            assert!(last.iter().all(|d| *d >= *all.iter().nth(3).unwrap()), "{last:?} of {all:?}");
        }
    }
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "format_version = 1\nname = \"x\"\n").unwrap();
    let failed = run(&[
        "simulate",
        "outbreak",
        "--persons",
        "3000",
        "--pathogen",
        &s(&bad),
        "--out",
        &s(&dir.path().join("no")),
    ]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("missing field") && stderr.contains("title"), "{stderr}");
    assert!(!dir.path().join("no").exists());
}

#[test]
fn traces_are_recorded_as_proposals_decided_and_recomputed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons", "visits", "cases"]);
    let args = ["trace", "--db", &db, "--case", "K1", "--rule", "venue-overlap", "--format", "json", "--record"];
    let out = bin().args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: usize = report["tiers"].as_array().unwrap().iter().map(|t| t["count"].as_u64().unwrap() as usize).sum();
    assert!(found >= 2, "{report}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{found} proposed")), "the record is reported");

    let list = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["contacts", "list", "--db", &db, "--format", "json"];
        args.extend_from_slice(extra);
        ok(&args).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let proposals = list(&["--case", "K1"]);
    assert_eq!(proposals.len(), found);
    assert!(proposals.iter().all(|p| p["status"] == "proposed" && p["case_id"] == "K1"));
    let contacts: std::collections::BTreeSet<String> =
        proposals.iter().map(|p| p["contact_id"].as_str().unwrap().to_string()).collect();
    let (first, second) = (proposals[0]["id"].to_string(), proposals[1]["id"].to_string());

    // Decisions, audited under the actor; a rejection needs a reason.
    let refused = run(&["contacts", "reject", &second, "--db", &db]);
    assert!(!refused.status.success());
    assert!(ok(&["contacts", "confirm", &first, "--db", &db, "--actor", "tracer-3"]).contains("confirmed 1"));
    let rejected = ok(&["contacts", "reject", &second, "--db", &db, "--reason", "not there", "--actor", "tracer-3"]);
    assert!(rejected.contains("rejected 1"));
    assert_eq!(list(&["--status", "confirmed"]).len(), 1);
    let rejected = list(&["--status", "rejected"]);
    assert_eq!(
        (rejected[0]["decided_by"].as_str(), rejected[0]["decision_reason"].as_str()),
        (Some("tracer-3"), Some("not there"))
    );
    let audit = ok(&["audit", "--db", &db, "--actor", "tracer-3"]);
    assert!(audit.contains("proposal_confirm") && audit.contains("proposal_reject"), "{audit}");
    let table = ok(&["contacts", "list", "--db", &db]);
    assert!(table.contains("reason: not there"), "{table}");

    // Nothing new: a recompute traces nothing.
    let r: serde_json::Value = serde_json::from_str(&ok(&["contacts", "recompute", "--db", &db])).unwrap();
    assert_eq!((r["stale"].as_u64(), r["traced"].as_u64()), (Some(0), Some(0)), "{r}");

    // A late visit: someone not yet a contact sat with K1's person for an hour.
    let place = report["tiers"][0]["contacts"][0]["evidence"][0]["place_id"].as_str().unwrap().to_string();
    let newcomer = (1..=300).map(|n| format!("P{n:03}")).find(|p| !contacts.contains(p) && p != "P071").unwrap();
    let late = dir.path().join("late.csv");
    std::fs::write(
        &late,
        format!(
            "person_id,place_id,t_in,t_out\nP071,{place},2022-03-06T10:00:00Z,2022-03-06T11:00:00Z\n\
             {newcomer},{place},2022-03-06T10:00:00Z,2022-03-06T11:00:00Z\n"
        ),
    )
    .unwrap();
    ok(&["import", "visits", &s(&late), "--db", &db]);
    let r: serde_json::Value = serde_json::from_str(&ok(&["contacts", "recompute", "--db", &db])).unwrap();
    assert_eq!((r["stale"].as_u64(), r["traced"].as_u64()), (Some(1), Some(1)), "{r}");
    assert_eq!(r["recorded"]["indexes"].as_u64(), Some(1), "{r}");
    assert!(r["recorded"]["proposed"].as_u64().unwrap() >= 1, "{r}");
    let now = list(&["--case", "K1"]);
    assert!(now.iter().any(|p| p["contact_id"] == newcomer.as_str() && p["status"] == "proposed"), "{now:?}");
    assert_eq!(now.iter().filter(|p| p["status"] == "confirmed").count(), 1, "the decisions are kept");
    assert_eq!(now.iter().filter(|p| p["status"] == "rejected").count(), 1);

    let bad = run(&["contacts", "list", "--db", &db, "--status", "maybe"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("error[invalid_argument]"));
    let conflict = run(&["trace", "--db", &db, "--case", "K1", "--record", "--profile", "cn-2022-20-measures"]);
    assert!(!conflict.status.success(), "a recorded trace runs under the deployment's profile");
}

#[test]
fn episodes_and_facilities_at_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons"]);
    // On the real clock: exposed yesterday, so the measure runs for days yet.
    let exposure = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24)).to_string();
    ok(&["facilities", "add", "F1", "--name", "Hotel", "--room", "101", "--room", "102:2", "--db", &db]);
    let opened = ok(&[
        "episodes",
        "open",
        "--person",
        "P001",
        "--category",
        "close",
        "--source",
        "K1",
        "--exposure",
        &exposure,
        "--owner",
        "U1",
        "--actor",
        "tracer-1",
        "--db",
        &db,
    ]);
    let opened: serde_json::Value = serde_json::from_str(&opened).unwrap();
    assert_eq!(opened["state"], "confirmed");
    let id = opened["episode_id"].as_str().unwrap().to_string();
    for action in ["notify", "transfer", "start"] {
        let mut args = vec!["episodes", "transition", &id, action, "--db", &db];
        if action == "transfer" {
            args.extend(["--facility", "F1"]);
        }
        ok(&args);
    }
    let shown: serde_json::Value = serde_json::from_str(&ok(&["episodes", "show", &id, "--db", &db])).unwrap();
    assert_eq!(shown["state"], "in_measure");
    assert_eq!(shown["facility"], serde_json::json!(["F1", "101"]));
    assert_eq!(shown["history"].as_array().unwrap().len(), 5, "open, confirm, notify, transfer, start");
    assert!(shown["tasks"].as_array().unwrap().iter().any(|t| t["kind"] == "test"));
    let listed = ok(&["episodes", "list", "--state", "in_measure", "--db", &db]);
    assert!(listed.contains(&id) && listed.contains("F1/101"), "{listed}");

    // Refused: release before the measure ends; the reason is said, nothing changes.
    let refused = run(&["episodes", "transition", &id, "release", "--db", &db]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("release refused"), "{refused:?}");

    // Another reason, then its source excluded: the episode keeps K1 and stays open.
    ok(&["episodes", "transition", &id, "add-reason", "--source", "K2", "--exposure", &exposure, "--db", &db]);
    ok(&["episodes", "transition", &id, "source-excluded", "--source", "K2", "--db", &db]);
    let shown: serde_json::Value = serde_json::from_str(&ok(&["episodes", "show", &id, "--db", &db])).unwrap();
    assert_eq!((shown["reasons"].as_array().unwrap().len(), &shown["state"]), (1, &serde_json::json!("in_measure")));
    let tasks = ok(&["episodes", "tasks", "--db", &db]);
    let tasks: Vec<serde_json::Value> = tasks.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(tasks.iter().any(|t| t["kind"] == "advance" && t["unit"] == "U1"), "{tasks:?}");
    assert!(ok(&["episodes", "tasks", "--overdue", "--db", &db]).is_empty(), "nothing is late yet");
    let facilities: serde_json::Value = serde_json::from_str(&ok(&["facilities", "list", "--db", &db])).unwrap();
    assert_eq!(facilities[0]["occupancy"]["people"], 1);
    assert_eq!(facilities[0]["forecast"].as_array().unwrap().len(), 7);
    let audit = ok(&["audit", "--db", &db, "--action", "episode_transition"]);
    assert!(audit.contains("tracer-1"), "{audit}");

    // A positive entered on the episode: a suspected case opens, joins the person's isolation
    // and is traced at once (P001's household proposed).
    import_sample(&db, &["groups", "memberships"]);
    let taken = jiff::Timestamp::now().to_string();
    let out = ok(&["episodes", "transition", &id, "test", "--taken-at", &taken, "--result", "positive", "--db", &db]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let case = format!("S-{id}");
    assert_eq!(out["response"]["suspected_cases"], serde_json::json!([case]), "{out}");
    assert_eq!(out["response"]["traced"]["traced"], serde_json::json!([case]), "{out}");
    let listed = ok(&["contacts", "list", "--case", &case, "--format", "json", "--db", &db]);
    assert!(listed.contains("\"P002\""), "{listed}");
}

#[test]
fn imported_cases_are_isolated_until_discharged_at_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons"]);
    let out = ok(&["import", "cases", &s(&sample().join("cases.csv")), "--db", &db, "--owner-unit", "U-hospital"]);
    // K1–K4 are reported, K5 excluded.
    assert!(out.contains("cases: 4 isolations opened, 0 added"), "{out}");
    let again = ok(&["import", "cases", &s(&sample().join("cases.csv")), "--db", &db]);
    assert!(again.contains("cases: 0 isolations opened, 0 added to open isolations, 4 already"), "{again}");
    let listed = ok(&["episodes", "list", "--person", "P071", "--format", "json", "--db", &db]);
    let rows: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(
        (&rows[0]["category"], &rows[0]["state"], &rows[0]["owner_unit"]),
        (&"case".into(), &"confirmed".into(), &"U-hospital".into())
    );
    let id = rows[0]["id"].as_str().unwrap().to_string();
    ok(&["facilities", "add", "H1", "--name", "Designated hospital", "--room", "1", "--db", &db]);
    for action in ["notify", "transfer", "start"] {
        let mut args = vec!["episodes", "transition", &id, action, "--db", &db];
        if action == "transfer" {
            args.extend(["--facility", "H1"]);
        }
        ok(&args);
    }
    let hours_ago = |h: i64| (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(h)).to_string();
    let discharge = ["episodes", "transition", &id, "discharge", "--criteria", "afebrile 3 days", "--db", &db];
    let refused = run(&discharge);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("discharge refused"), "{refused:?}");
    let missing = run(&["episodes", "transition", &id, "discharge", "--db", &db]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--criteria"), "{missing:?}");
    for taken in [hours_ago(30), hours_ago(2)] {
        ok(&["episodes", "transition", &id, "test", "--taken-at", &taken, "--result", "negative", "--db", &db]);
    }
    let done: serde_json::Value = serde_json::from_str(&ok(&discharge)).unwrap();
    assert_eq!(done["state"], "released");
    let shown: serde_json::Value = serde_json::from_str(&ok(&["episodes", "show", &id, "--db", &db])).unwrap();
    assert_eq!(shown["history"].as_array().unwrap().last().unwrap()["action"], "discharge");
}

#[test]
fn imported_arrivals_get_their_origins_measure_proposed() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons", "trips"]);
    let out = ok(&["import", "arrivals", &s(&sample().join("arrivals.csv")), "--db", &db, "--owner-unit", "U-port"]);
    let line = out.lines().find(|l| l.starts_with("arrivals: ")).unwrap_or_else(|| panic!("{out}"));
    let proposed: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(proposed > 0, "{out}");
    let listed = ok(&["episodes", "list", "--state", "proposed", "--format", "json", "--db", &db]);
    let rows: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), proposed);
    assert!(rows.iter().all(|r| r["category"] == "arrival" && r["owner_unit"] == "U-port"), "{listed}");
    // Importing the same file again adds the reasons to the open episodes: no duplicates.
    let again = ok(&["import", "arrivals", &s(&sample().join("arrivals.csv")), "--db", &db]);
    assert!(again.contains("arrivals: 0 measures proposed"), "{again}");
}

#[test]
fn a_positive_lab_result_raises_an_alert_that_is_triaged_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons", "groups", "memberships", "visits"]);
    let lab = dir.path().join("lab.csv");
    std::fs::write(
        &lab,
        "id,subject_kind,subject_id,method,result,sampled_at,reported_at\n\
         X1,person,P001,pcr,positive,2022-03-14T01:00:00Z,2022-03-14T09:00:00Z\n",
    )
    .unwrap();
    let out = ok(&["import", "lab_tests", &s(&lab), "--db", &db]);
    assert!(out.contains("triggered: 1 suspected cases opened (S-X1), 1 alerts raised"), "{out}");
    // The suspected case is isolated at once, like a reported case (its report is the decision),
    // and traced at once: its contacts are proposed for tracers to confirm.
    assert!(out.contains("cases: 1 isolations opened, 0 added"), "{out}");
    assert!(out.contains("traced: 1 suspected cases; "), "{out}");
    let listed = ok(&["contacts", "list", "--case", "S-X1", "--format", "json", "--db", &db]);
    let proposals: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(proposals.iter().any(|p| p["contact_id"] == "P002" && p["category"] == "close"), "{listed}");
    assert!(proposals.iter().all(|p| p["status"] == "proposed"), "{listed}");
    let proposed = proposals.len();
    assert!(out.contains(&format!("traced: 1 suspected cases; {proposed} contacts proposed")), "{out}");
    // And its zones are proposed at once: P001's compound, with the case as its reason.
    assert!(out.contains("zones: ") && !out.contains("zones: 0 proposed"), "{out}");
    let zones: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&["zones", "list", "--open", "--format", "json", "--db", &db])).unwrap();
    assert!(
        zones.iter().any(|z| z["level"] == "high"
            && z["reasons"].as_array().unwrap().iter().any(|r| r["case_id"] == "S-X1" && r["why"] == "residence")),
        "{zones:?}"
    );
    let listed = ok(&["episodes", "list", "--person", "P001", "--format", "json", "--db", &db]);
    let rows: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(
        (&rows[0]["category"], &rows[0]["state"], &rows[0]["owner_unit"]),
        (&"case".into(), &"confirmed".into(), &"intake".into())
    );
    let listed = ok(&["alerts", "list", "--kind", "positive_person", "--db", &db]);
    let alert: serde_json::Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert_eq!((&alert["state"], &alert["subject"]), (&json!("new"), &json!("S-X1")));
    let id = alert["id"].to_string();
    // Refused: an alert is acknowledged before it is investigated; nothing changes.
    let refused = run(&["alerts", "investigate", &id, "--db", &db]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("acknowledge the alert first"));
    assert!(ok(&["alerts", "ack", &id, "--owner-unit", "CDC", "--note", "mine", "--db", &db]).contains("acknowledged"));
    assert!(ok(&["alerts", "investigate", &id, "--db", &db]).contains("investigating"));
    assert!(ok(&["alerts", "close", &id, "--outcome", "confirmed", "--db", &db]).contains("closed"));
    let shown: serde_json::Value = serde_json::from_str(&ok(&["alerts", "show", &id, "--db", &db])).unwrap();
    assert_eq!(shown["history"].as_array().unwrap().len(), 4);
    assert_eq!(shown["response_clock"][0]["started_at"], "2022-03-14T09:00:00Z");
    let clock: serde_json::Value = serde_json::from_str(&ok(&[
        "alerts",
        "clock",
        "S-X1",
        "--event",
        "case_reported",
        "--at",
        "2022-03-14T10:00:00Z",
        "--db",
        &db,
    ]))
    .unwrap();
    assert_eq!((&clock[0]["stopped_at"], &clock[0]["late"]), (&json!("2022-03-14T10:00:00Z"), &json!(false)));

    // The sample's sentinel feeds: detection queues alarms, silent sentinels are listed.
    import_sample(&db, &["sentinel"]);
    let run_report: serde_json::Value =
        serde_json::from_str(&ok(&["--demo-clock", "2022-03-15T00:00:00Z", "review", "run", "--db", &db])).unwrap();
    assert!(run_report["series"].as_u64().unwrap() > 0, "{run_report}");
    let queued = ok(&["review", "list", "--status", "all", "--db", &db]);
    assert_eq!(queued.lines().count() as u64, run_report["queued"].as_u64().unwrap());
    ok(&["sentinels", "silent", "--db", &db]);
}

/// `chainbreak rt --db` estimates Rt over the deployment's cases by onset day with the
/// profile's serial interval (the numbers are EpiEstim's: `rt_equals_epiestim`).
#[test]
fn rt_over_the_deployments_cases() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons", "cases"]);
    let out = ok(&["rt", "--db", &db, "--to", "2022-03-31"]);
    let view: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((view["si_mean"].as_f64(), view["window_days"].as_u64()), (Some(3.5), Some(7)), "{view}");
    let days = view["days"].as_array().unwrap();
    assert_eq!((days.first().unwrap(), days.last().unwrap()), (&json!("2022-03-08"), &json!("2022-03-31")));
    let cases: f64 = ["local", "imported"]
        .iter()
        .flat_map(|k| view[*k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .sum();
    assert_eq!(cases, 4.0, "the sample's cases but the excluded K5, by onset or sampling: {view}");
    assert!(!view["estimates"].as_array().unwrap().is_empty(), "{view}");
    // A file or a deployment, not both; the date only with a deployment.
    let both = run(&["rt", "--db", &db, "--incidence", "x.csv"]);
    assert!(!both.status.success());
    let to = run(&["rt", "--incidence", "x.csv", "--si-mean", "3", "--si-sd", "1", "--to", "2022-03-31"]);
    assert!(String::from_utf8_lossy(&to.stderr).contains("--db"), "{to:?}");
}

#[test]
fn zones_are_proposed_from_the_sample_cases_as_json_and_geojson() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons", "staff", "visits", "cases"]);
    let args = ["zones", "propose", "--db", &db, "--case", "K1", "--case", "K2", "--case", "NOPE"];
    let plan: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(plan["profile"], "cn-2022-9th");
    assert_eq!(plan["skipped"][0][0], "NOPE", "{plan:#}");
    let proposals = plan["proposals"].as_array().unwrap();
    // Each case's residence compound is high, its places stayed at medium, the county low.
    let level = |kind: &str, id: &str| {
        proposals
            .iter()
            .find(|p| p["target"]["kind"] == kind && p["target"]["id"] == id)
            .map(|p| p["level"].as_str().unwrap().to_string())
    };
    let high: Vec<&serde_json::Value> = proposals.iter().filter(|p| p["level"] == "high").collect();
    assert!(!high.is_empty(), "{plan:#}");
    for p in &high {
        assert!(p["reasons"].as_array().unwrap().iter().all(|r| r["case_id"] == "K1" || r["case_id"] == "K2"));
    }
    assert!(proposals.iter().any(|p| p["level"] == "medium" && p["target"]["kind"] == "place"), "{plan:#}");
    assert!(proposals.iter().any(|p| p["level"] == "low" && p["target"]["kind"] == "area"), "{plan:#}");
    assert_eq!(level("area", "HS"), Some("low".into()), "{plan:#}");
    // K1's unit (P071 works at V23) is proposed high, for a person to judge ("frequent").
    let unit = proposals.iter().find(|p| p["target"]["kind"] == "place" && p["target"]["id"] == "V23").unwrap();
    assert_eq!((unit["level"].as_str(), unit["needs_confirmation"].as_bool()), (Some("high"), Some(true)), "{unit:#}");
    assert!(unit["reasons"].as_array().unwrap().iter().any(|r| r["why"] == "unit" && r["case_id"] == "K1"));
    assert!(plan["undecided"].as_array().unwrap().is_empty(), "{plan:#}");
    // GeoJSON: a feature per proposal, areas with their polygons.
    let geo: serde_json::Value = serde_json::from_str(&ok(&[&args[..], &["--format", "geojson"]].concat())).unwrap();
    assert_eq!(geo["type"], "FeatureCollection");
    let features = geo["features"].as_array().unwrap();
    assert_eq!(features.len(), proposals.len());
    let county = features.iter().find(|f| f["properties"]["target_id"] == "HS").unwrap();
    assert_eq!(county["properties"]["level"], "low");
    assert!(county["geometry"]["type"] == "Polygon" || county["geometry"]["type"] == "MultiPolygon", "{county:#}");
    assert!(features.iter().any(|f| f["geometry"]["type"] == "Point"), "{geo:#}");
}

#[test]
fn zones_are_recorded_confirmed_reviewed_and_published_at_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons", "staff", "visits"]);
    let at = |t: &str, args: &[&str]| ok(&[&["--demo-clock", t][..], args].concat());
    let day13 = "2022-03-13T12:00:00+08:00";
    // Imported confirmed and asymptomatic cases propose their zones at once.
    let cases = s(&sample().join("cases.csv"));
    let imported: serde_json::Value =
        serde_json::from_str(&at(day13, &["import", "cases", &cases, "--db", &db, "--json"])).unwrap();
    let proposed: Vec<&str> =
        imported["triggered"]["zones"]["proposed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(proposed.contains(&"area:HS-S1-C2-K2:1"), "{imported:#}");
    // Recording again adds nothing.
    let rec: serde_json::Value =
        serde_json::from_str(&at(day13, &["zones", "propose", "--record", "--db", &db, "--case", "K1"])).unwrap();
    assert_eq!((rec["proposed"].as_array().unwrap().len(), rec["updated"].as_array().unwrap().len()), (0, 0));
    let table = at(day13, &["zones", "list", "--db", &db, "--open"]);
    assert!(table.lines().any(|l| l.starts_with("area:HS-S1-C2-K2:1") && l.contains("proposed")), "{table}");
    // A rejection needs a note; confirming puts the zone in force and proposes the residents'
    // measure.
    assert!(!run(&["zones", "reject", "area:HS-S1-C2-K2:1", "--db", &db]).status.success());
    let done: serde_json::Value = serde_json::from_str(&at(
        day13,
        &["zones", "confirm", "area:HS-S1-C2-K2:1", "--db", &db, "--note", "K1's compound", "--actor", "cmdr"],
    ))
    .unwrap();
    assert_eq!(done["status"], "confirmed", "{done:#}");
    assert!(done["residents_proposed"].as_u64().unwrap() >= 10, "{done:#}");
    assert_eq!(done["next_round"]["on"], "2022-03-13");
    let round = ["zones", "round", "area:HS-S1-C2-K2:1", "--db", &db, "--on", "2022-03-13", "--tested", "40"];
    let view: serde_json::Value =
        serde_json::from_str(&at(day13, &[&round[..], &["--positives", "0"]].concat())).unwrap();
    assert_eq!(view["rounds"][0]["tested"], 40, "{view:#}");
    let review: serde_json::Value =
        serde_json::from_str(&at("2022-03-14T09:00:00+08:00", &["zones", "review", "--db", &db])).unwrap();
    assert_eq!(review["today"], "2022-03-14");
    assert!(review["lowered"].as_array().unwrap().is_empty(), "{review:#}");
    // Published: only the zone in force, as GeoJSON with its polygon and no case.
    let public = at(day13, &["zones", "publish", "--db", &db, "--format", "geojson"]);
    let geo: serde_json::Value = serde_json::from_str(&public).unwrap();
    assert_eq!(geo["features"].as_array().unwrap().len(), 1, "{geo:#}");
    assert_eq!(geo["features"][0]["properties"]["level"], "high");
    assert!(!public.contains("K1") && !public.contains("P071"));
    // The history names who confirmed it.
    let show: serde_json::Value =
        serde_json::from_str(&at(day13, &["zones", "show", "area:HS-S1-C2-K2:1", "--db", &db])).unwrap();
    let events = show["events"].as_array().unwrap();
    assert_eq!(events[1]["action"]["type"], "confirm");
    assert_eq!(events[1]["actor"], "cmdr");
}

#[test]
fn a_simulated_outbreak_s_cases_propose_their_compounds_as_soon_as_they_are_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("outbreak");
    ok(&["simulate", "outbreak", "--persons", "3000", "--days", "20", "--seed", "2", "--out", &s(&out)]);
    let db = init(dir.path());
    for (kind, file) in [
        ("areas", "areas.geojson"),
        ("units", "units.csv"),
        ("places", "places.csv"),
        ("persons", "persons.csv"),
        ("staff", "staff.csv"),
        ("visits", "visits.csv"),
    ] {
        ok(&["import", kind, &s(&out.join(file)), "--db", &db]);
    }
    // Where each person lives: person → residence place → building → compound.
    let read = |file: &str| -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        text.lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect()
    };
    let place_area: std::collections::HashMap<String, String> =
        read("places.csv").into_iter().map(|r| (r[0].clone(), r[6].clone())).collect();
    let areas: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("areas.geojson")).unwrap()).unwrap();
    let parent: std::collections::HashMap<String, String> = areas["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| {
            Some((f["properties"]["id"].as_str()?.to_string(), f["properties"]["parent"].as_str()?.to_string()))
        })
        .collect();
    let compound_of: std::collections::HashMap<String, String> =
        read("persons.csv").into_iter().map(|r| (r[0].clone(), parent[&place_area[&r[1]]].clone())).collect();

    // The cases come in: each confirmed or asymptomatic case's compound is proposed at once,
    // with the case's residence as a reason.
    let clock = "2022-03-25T12:00:00+08:00";
    let at = |args: &[&str]| ok(&[&["--demo-clock", clock][..], args].concat());
    let imported: serde_json::Value =
        serde_json::from_str(&at(&["import", "cases", &s(&out.join("cases.csv")), "--db", &db, "--json"])).unwrap();
    assert!(!imported["triggered"]["zones"]["proposed"].as_array().unwrap().is_empty(), "{imported:#}");
    let zones: Vec<serde_json::Value> =
        serde_json::from_str(&at(&["zones", "list", "--db", &db, "--open", "--format", "json"])).unwrap();
    let cases: Vec<(String, String)> = read("cases.csv")
        .into_iter()
        .filter(|r| r[2] == "confirmed" || r[2] == "asymptomatic")
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert!(cases.len() >= 10, "the outbreak took off: {} cases", cases.len());
    for (case, person) in &cases {
        let compound = &compound_of[person];
        let zone = zones
            .iter()
            .find(|z| z["target"]["kind"] == "area" && z["target"]["id"] == compound.as_str())
            .unwrap_or_else(|| panic!("case {case}: no zone on compound {compound}"));
        assert_eq!(zone["level"], "high");
        assert!(
            zone["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["case_id"] == case.as_str() && r["why"] == "residence"),
            "case {case} on {zone:#}"
        );
    }
    // A commander confirms one: everyone living there gets the measure proposed.
    let (_, person) = &cases[0];
    let compound = &compound_of[person];
    let id = zones.iter().find(|z| z["target"]["id"] == compound.as_str()).unwrap()["id"].as_str().unwrap().to_string();
    let done: serde_json::Value = serde_json::from_str(&at(&["zones", "confirm", &id, "--db", &db])).unwrap();
    let living_there = compound_of.values().filter(|c| *c == compound).count();
    assert_eq!(done["residents_proposed"].as_u64(), Some(living_there as u64), "{done:#}");

    // Widening: a case of unknown source widens its compound's zone to the community, once.
    let unknown: Vec<(String, String)> = zones
        .iter()
        .flat_map(|z| {
            let id = z["id"].as_str().unwrap().to_string();
            z["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["why"] == "unknown_source")
                .map(move |r| (r["case_id"].as_str().unwrap().to_string(), id.clone()))
        })
        .collect();
    assert!(!unknown.is_empty(), "the simulated cases carry no infector: some are of unknown source");
    let mut widened_cases: Vec<&String> = unknown.iter().map(|(c, _)| c).collect();
    widened_cases.sort();
    let n = widened_cases.len();
    widened_cases.dedup();
    assert_eq!(widened_cases.len(), n, "each case widens once");
    // It lapses when the sources are found: the cases turn out imported.
    let (_, widened) = &unknown[0];
    let confirm = at(&["zones", "confirm", widened, "--db", &db]);
    assert!(confirm.contains("\"confirmed\""), "{confirm}");
    let theirs: std::collections::BTreeSet<&str> =
        unknown.iter().filter(|(_, z)| z == widened).map(|(c, _)| c.as_str()).collect();
    let text = std::fs::read_to_string(out.join("cases.csv")).unwrap();
    let mut fixed = String::new();
    for (k, line) in text.lines().enumerate() {
        let mut cols: Vec<&str> = line.split(',').collect();
        if k > 0 && theirs.contains(cols[0]) {
            cols[6] = "true";
        }
        if k == 0 || theirs.contains(cols[0]) {
            fixed.push_str(&cols.join(","));
            fixed.push('\n');
        }
    }
    let found = dir.path().join("found.csv");
    std::fs::write(&found, fixed).unwrap();
    at(&["import", "cases", &s(&found), "--db", &db, "--no-zones"]);
    let review: serde_json::Value = serde_json::from_str(&at(&["zones", "review", "--db", &db])).unwrap();
    assert!(review["lapsed"].as_array().unwrap().iter().any(|z| z == widened.as_str()), "{review:#}");

    // Lifting on the rule's day: the confirmed compound (since the 25th) with all-negative
    // rounds is lowered on day 7 (1 April, local), not the minute before.
    let day = |d: &str, hm: &str| format!("{d}T{hm}:00+08:00");
    let round_on = |d: &str| {
        let t = day(d, "18:00");
        let round = ["zones", "round", &id, "--db", &db, "--on", d, "--tested", "300", "--positives", "0"];
        ok(&[&["--demo-clock", t.as_str()][..], &round[..]].concat());
    };
    for d in ["2022-03-25", "2022-03-26", "2022-03-27", "2022-03-28", "2022-03-29", "2022-03-30", "2022-03-31"] {
        round_on(d);
    }
    let review_at = |t: &str| -> serde_json::Value {
        serde_json::from_str(&ok(&["--demo-clock", t, "zones", "review", "--db", &db])).unwrap()
    };
    let lowered = |r: &serde_json::Value| r["lowered"].as_array().unwrap().iter().any(|l| l["zone"] == id.as_str());
    assert!(!lowered(&review_at(&day("2022-03-31", "23:59"))));
    // Day 7 has come, its all-negative round not yet: the zone waits for it.
    assert!(!lowered(&review_at(&day("2022-04-01", "00:00"))));
    round_on("2022-04-01");
    let r = review_at(&day("2022-04-01", "18:05"));
    assert!(lowered(&r), "{r:#}");
    let l = r["lowered"].as_array().unwrap().iter().find(|l| l["zone"] == id.as_str()).unwrap();
    assert_eq!((l["on"].as_str(), l["to"].as_str()), (Some("2022-04-01"), Some("medium")), "{l:#}");
}

#[test]
fn the_demo_replays_an_outbreak_through_the_api_and_serves_the_pages() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["demo", "--persons", "3000", "--days", "8", "--speed", "172800", "--addr", "127.0.0.1:0", "--dir"])
        .arg(dir.path().join("demo"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let _guard = Kill(child);
    // Keep reading the output (a closed pipe would end the demo).
    let mut out_lines = BufReader::new(stdout).lines();
    let first = out_lines.next().unwrap().unwrap();
    std::thread::spawn(move || out_lines.for_each(drop));
    // "chainbreak demo: http://127.0.0.1:PORT/dashboard  (sign in as `demo`, ...)"
    let url = first.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();
    let base = url.trim_end_matches("/dashboard").to_string();
    assert!(first.contains("`demo`") && first.contains("chainbreak-demo"), "{first}");
    // The replay reports each day, then that it is done.
    let mut days = 0;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.starts_with("day ") {
            days += 1;
        }
        if line.contains("replayed") {
            break;
        }
    }
    assert_eq!(days, 8);
    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let public = client.get(format!("{base}/public?lang=en")).send().unwrap();
    assert_eq!(public.status(), 200);
    assert!(public.text().unwrap().contains("Risk zones in force"));
    // The check-ins went through the API: the visits are there, for the demo user to read.
    let session = client
        .post(format!("{base}/api/v1/sessions"))
        .json(&serde_json::json!({"name": "demo", "password": "chainbreak-demo"}))
        .send()
        .unwrap();
    assert_eq!(session.status(), 201);
    let cookie = session.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let overview = client.get(format!("{base}/dashboard?lang=en")).header("cookie", &cookie).send().unwrap();
    assert_eq!(overview.status(), 200);
    assert!(overview.text().unwrap().contains("Overview"));
    let visits: serde_json::Value =
        client.get(format!("{base}/api/v1/visits?limit=5")).header("cookie", &cookie).send().unwrap().json().unwrap();
    assert_eq!(visits["items"].as_array().unwrap().len(), 5, "{visits}");
}

#[test]
fn a_goods_batch_is_traced_to_its_holders_and_back_to_its_plant() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "places", "persons", "staff", "goods_batches", "goods_hops"]);
    let t: serde_json::Value =
        serde_json::from_str(&ok(&["goods", "trace", "--batch", "GB-EC-0215", "--db", &db])).unwrap();
    // The imported batch and its repacked 1 kg bags; the warehouse V23 and the market V12.
    assert_eq!(t["downstream"]["batches"], json!(["GB-EC-0215", "GB-EC-0215-A"]), "{t:#}");
    let places: Vec<&str> =
        t["downstream"]["places"].as_array().unwrap().iter().map(|p| p["place"].as_str().unwrap()).collect();
    assert!(places.contains(&"V23") && places.contains(&"V12"), "{t:#}");
    let v12 = t["downstream"]["places"].as_array().unwrap().iter().find(|p| p["place"] == "V12").unwrap();
    assert_eq!(v12["last_holder"], true, "{v12:#}");
    // The warehouse's workers are handed on (K1's P071 works at V23, a cold-chain worker).
    assert!(
        t["workers"].as_array().unwrap().iter().any(|w| w["person_id"] == "P071" && w["place_id"] == "V23"),
        "{t:#}"
    );
    // Upstream of the bags: the imported batch and its plant.
    let up: serde_json::Value =
        serde_json::from_str(&ok(&["goods", "trace", "--batch", "GB-EC-0215-A", "--db", &db])).unwrap();
    assert_eq!(up["upstream"]["ancestors"], json!(["GB-EC-0215"]));
    assert_eq!(up["upstream"]["plants"], json!(["EC-PLANT-0571"]));
    assert!(!run(&["goods", "trace", "--batch", "NOPE", "--db", &db]).status.success());
}

#[test]
fn a_positive_sample_on_a_simulated_cold_chain_batch_gives_its_response_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("outbreak");
    ok(&["simulate", "outbreak", "--persons", "3000", "--days", "5", "--seed", "2", "--out", &s(&out)]);
    let db = init(dir.path());
    for (kind, file) in [
        ("areas", "areas.geojson"),
        ("units", "units.csv"),
        ("places", "places.csv"),
        ("persons", "persons.csv"),
        ("staff", "staff.csv"),
        ("visits", "visits.csv"),
        ("goods_batches", "goods_batches.csv"),
        ("goods_hops", "goods_hops.csv"),
    ] {
        ok(&["import", kind, &s(&out.join(file)), "--db", &db]);
    }
    let read = |file: &str| -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        text.lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect()
    };
    // The simulation's first imported batch: its plant, and the cold store it went to.
    let batch = read("goods_batches.csv").remove(0);
    let (id, plant) = (batch[0].clone(), batch[3].clone());
    let hop = read("goods_hops.csv").into_iter().find(|h| h[0] == id).unwrap();
    let (port, store) = (hop[2].clone(), hop[3].clone());
    let staff: Vec<String> = read("staff.csv").into_iter().filter(|r| r[0] == store).map(|r| r[1].clone()).collect();
    assert!(!staff.is_empty(), "the cold store has workers");
    let areas: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("areas.geojson")).unwrap()).unwrap();
    let top = areas["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["parent"].is_null())
        .map(|f| f["properties"]["id"].as_str().unwrap().to_string())
        .unwrap();
    ok(&["user", "add", "lab", "--db", &db, "--role", "lab", "--unit", "LAB", "--jurisdiction", &top]);
    ok(&["user", "add", "epi", "--db", &db, "--role", "epidemiologist", "--unit", "CDC", "--jurisdiction", &top]);
    let lab = ok(&["user", "token", "lab", "--db", &db, "--label", "test"]).trim().to_string();
    let epi = ok(&["user", "token", "epi", "--db", &db, "--label", "test"]).trim().to_string();

    let args = ["--demo-clock", "2022-03-06T12:00:00+08:00", "serve", "--db", &db, "--addr", "127.0.0.1:0"];
    let child = bin().args(args).stderr(Stdio::piped()).spawn().unwrap();
    let mut server = Server(child);
    let mut lines = BufReader::new(server.0.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server says where it listens").unwrap();
        if let Some(rest) = line.split("serving on http://").nth(1) {
            break rest.trim().to_string();
        }
    };
    let client = reqwest::blocking::Client::new();
    let sample = json!({"lab_tests": [{"id": "COLD-1", "subject_kind": "goods", "subject_id": id, "method": "pcr",
        "result": "positive", "sampled_at": "2022-03-05T02:00:00Z", "reported_at": "2022-03-05T10:00:00Z"}]});
    let r =
        client.post(format!("http://{addr}/api/v1/lab-tests:batch")).bearer_auth(&lab).json(&sample).send().unwrap();
    assert_eq!(r.status(), 200);
    let report: serde_json::Value = r.json().unwrap();
    let response = &report["goods_responses"][0];
    // The recall list, and the places to seal: the cold store (the last holder) and the port.
    assert_eq!(response["recall"], json!([id]), "{response:#}");
    let sealed: Vec<(&str, bool)> = response["places_to_seal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["place"].as_str().unwrap(), p["last_holder"].as_bool().unwrap()))
        .collect();
    assert!(sealed.contains(&(store.as_str(), true)) && sealed.contains(&(port.as_str(), false)), "{sealed:?}");
    // Every worker of the cold store is proposed the co-exposed measure, with the goods as evidence.
    let get = |path: &str| -> serde_json::Value {
        client.get(format!("http://{addr}{path}")).bearer_auth(&epi).send().unwrap().json().unwrap()
    };
    let workers = response["workers"].as_array().unwrap();
    for person in &staff {
        let w = workers.iter().find(|w| w["person_id"] == person.as_str()).unwrap_or_else(|| panic!("{person}"));
        let episode = get(&format!("/api/v1/episodes/{}", w["episode_id"].as_str().unwrap()));
        assert_eq!(
            (&episode["state"], &episode["category"]),
            (&json!("proposed"), &json!("co_exposed")),
            "{episode:#}"
        );
        assert_eq!(episode["reasons"][0]["source"], "goods:lab_test:COLD-1");
    }
    // The batch's plant is suspended a week, on the list and with an alert.
    assert_eq!(response["suspensions"][0]["plant"], plant.as_str(), "{response:#}");
    let list = get("/api/v1/goods/suspensions?in_force=true");
    assert_eq!(list[0]["plant"], plant.as_str(), "{list:#}");
    assert_eq!((&list[0]["from"], &list[0]["until"]), (&json!("2022-03-05"), &json!("2022-03-12")));
    let alerts = get("/api/v1/alerts?kind=supplier_suspension");
    assert_eq!(alerts["items"][0]["subject"], plant.as_str(), "{alerts:#}");
    assert_eq!(get("/api/v1/goods/responses/lab_test:COLD-1")["workers"], response["workers"]);
}

#[test]
fn the_sample_s_positive_shrimp_is_responded_to_and_a_resident_s_request_is_closed_with_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let db = init(dir.path());
    import_sample(&db, &["areas", "units", "places", "persons", "staff", "visits", "goods_batches", "goods_hops"]);
    let clock = "2022-03-09T12:00:00+08:00";
    let at = |args: &[&str]| ok(&[&["--demo-clock", clock][..], args].concat());
    // The lab results: the shrimp's positive (LT7) is responded to in the import.
    let out = at(&["import", "lab_tests", &s(&sample().join("lab_tests.csv")), "--db", &db]);
    assert!(out.contains("goods: lab_test:LT7 — recall 2 batches"), "{out}");
    let r: serde_json::Value = serde_json::from_str(&at(&["goods", "response", "lab_test:LT7", "--db", &db])).unwrap();
    assert!(r["workers"].as_array().unwrap().iter().any(|w| w["person_id"] == "P071"), "{r:#}");
    let list = at(&["goods", "suspensions", "--in-force", "--db", &db]);
    let s0: serde_json::Value = serde_json::from_str(list.lines().next().unwrap()).unwrap();
    assert_eq!((&s0["plant"], &s0["nth"]), (&json!("EC-PLANT-0571"), &json!(1)));
    // Once only: by hand, it says so and changes nothing.
    let again =
        bin().args(["--demo-clock", clock, "goods", "respond", "--lab-test", "LT7", "--db", &db]).output().unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("responded to already"));

    // A resident under a measure ending at home asks for medicine; it closes only with an outcome.
    at(&[
        "episodes",
        "open",
        "--person",
        "P007",
        "--category",
        "close",
        "--source",
        "K1",
        "--exposure",
        "2022-03-08T12:00:00+08:00",
        "--owner",
        "CDC",
        "--db",
        &db,
    ]);
    let filed: serde_json::Value =
        serde_json::from_str(&at(&["requests", "file", "--person", "P007", "--kind", "medicine", "--db", &db]))
            .unwrap();
    assert_eq!((&filed["priority"], &filed["owner_unit"]), (&json!("high"), &json!("CDC")), "{filed:#}");
    let id = filed["id"].as_str().unwrap();
    let refused = bin()
        .args(["--demo-clock", clock, "requests", "close", id, "--outcome", "done", "--db", &db])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("error[invalid_argument]"));
    at(&["requests", "close", id, "--outcome", "fulfilled", "--note", "delivered", "--db", &db]);
    assert_eq!(at(&["requests", "list", "--open", "--db", &db]), "");
    let shown: serde_json::Value = serde_json::from_str(&at(&["requests", "show", id, "--db", &db])).unwrap();
    assert_eq!((&shown["state"], &shown["outcome"]), (&json!("closed"), &json!("fulfilled")));
}
