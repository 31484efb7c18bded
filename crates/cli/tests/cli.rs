//! The `chainbreak` binary end to end: real processes, real files, real HTTP on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chainbreak_store::{Entity, Store};

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
    for (kind, file) in
        [("areas", "areas.geojson"), ("places", "places.csv"), ("persons", "persons.csv"), ("visits", "visits.csv")]
    {
        let out = ok(&["import", kind, &s(&sample().join(file)), "--db", &db]);
        assert!(out.starts_with("imported "), "{out}");
    }
    ok(&["user", "add", "li", "--db", &db, "--role", "tracer", "--unit", "CDC", "--jurisdiction", "HS"]);
    let token = ok(&["user", "token", "li", "--db", &db, "--label", "test"]).trim().to_string();
    let child = bin().args(["serve", "--db", &db, "--addr", "127.0.0.1:0"]).stderr(Stdio::piped()).spawn().unwrap();
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
