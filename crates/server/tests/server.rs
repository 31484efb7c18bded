//! The server over real HTTP, on a real SQLite store in a temporary directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use chainbreak_app::accounts::{self, Actor};
use chainbreak_core::access::{Permission, Role, User};
use chainbreak_core::model::{
    Area, Case, Classification, Identifier, IdentifierKind, LabTest, Person, Place, PlaceKind, SubjectKind, TestMethod,
    TestResult,
};
use chainbreak_core::time::{ManualClock, SystemClock};
use chainbreak_server::{AppState, ServerConfig, serve};
use chainbreak_store::{Entity, Store};
use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

/// A server on 127.0.0.1:0 over a fresh store holding the city C1 with districts D1 and D2;
/// in D1 the residence H1 (P1 lives there) and the place L1, in D2 the residence H2 (P2) and
/// the place L2; cases K1 (P1) and K2 (P2); lab tests LT1 (P1) and LT2 (P2); and the users
/// `admin`, `tracer` and `lab` (of those roles, jurisdiction C1: everything) with a token each.
struct TestServer {
    base: String,
    /// The tokens of `admin`, `tracer` and `lab`.
    admin: String,
    tracer: String,
    lab: String,
    db: PathBuf,
    client: Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

fn now() -> Timestamp {
    "2022-03-05T00:00:00Z".parse().unwrap()
}

fn place(id: &str) -> Place {
    Place { id: id.into(), name: None, kind: PlaceKind::Restaurant, key_place: false, lat: None, lon: None, area: None }
}

fn fixture_actor() -> Actor {
    Actor { name: "system".into(), via: "test fixture".into(), reason: None }
}

/// Adds a user of `role` with jurisdiction C1 (everything) and returns a token of theirs.
fn add_user_with_token(store: &mut dyn Store, name: &str, role: Role) -> String {
    add_user_in(store, name, role, "C1")
}

/// Adds a user of `role` with the jurisdiction `area` and returns a token of theirs.
fn add_user_in(store: &mut dyn Store, name: &str, role: Role, area: &str) -> String {
    let user = User {
        name: name.into(),
        role,
        unit: "U1".into(),
        jurisdiction: area.into(),
        disabled: false,
        created_at: now(),
    };
    accounts::add_user(store, &user, "a long enough password", &fixture_actor()).unwrap();
    accounts::issue_token(store, name, "test", None, now(), &fixture_actor()).unwrap().0
}

fn person(id: &str, residence: &str) -> Person {
    Person { id: id.into(), residence: Some(residence.into()), birth_year: Some(1980), sex: None, occupation: None }
}

fn area(id: &str, level: &str, parent: Option<&str>) -> Area {
    Area {
        id: id.into(),
        name: format!("{id} name"),
        level: level.into(),
        parent: parent.map(Into::into),
        geometry: None,
    }
}

fn fixture_case(id: &str, person: &str) -> Case {
    Case {
        id: id.into(),
        person_id: person.into(),
        classification: Classification::Confirmed,
        onset: None,
        sampled_at: Some("2022-03-03T00:00:00Z".parse().unwrap()),
        reported_at: now(),
        imported: false,
        detection: None,
        severity: None,
        outcome: None,
        vaccine_doses: None,
        infector_case_id: None,
        cluster: None,
    }
}

fn fixture_lab_test(id: &str, person: &str) -> LabTest {
    LabTest {
        id: id.into(),
        subject_kind: SubjectKind::Person,
        subject_id: person.into(),
        pool_id: None,
        method: TestMethod::Pcr,
        result: TestResult::Positive,
        ct: None,
        sampled_at: now(),
        reported_at: None,
        lab_id: None,
        variant: None,
    }
}

impl TestServer {
    fn start() -> Self {
        Self::start_with(|_| {})
    }

    fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("chainbreak.db");
        let mut store = chainbreak_app::init(&db, "Asia/Shanghai", "cn-2022-9th", &SystemClock).unwrap();
        let mut batch = store.begin(now()).unwrap();
        batch
            .put_areas(&[
                area("C1", "city", None),
                area("D1", "district", Some("C1")),
                area("D2", "district", Some("C1")),
            ])
            .unwrap();
        let located = |id: &str, kind: PlaceKind, area: &str| Place { kind, area: Some(area.into()), ..place(id) };
        batch
            .put_places(&[
                located("H1", PlaceKind::Residence, "D1"),
                located("L1", PlaceKind::Restaurant, "D1"),
                located("H2", PlaceKind::Residence, "D2"),
                located("L2", PlaceKind::Restaurant, "D2"),
            ])
            .unwrap();
        batch.put_persons(&[person("P1", "H1"), person("P2", "H2")]).unwrap();
        batch
            .put_identifiers(&[
                Identifier { person_id: "P1".into(), kind: IdentifierKind::Phone, value: "+86 138 0000 0001".into() },
                Identifier { person_id: "P2".into(), kind: IdentifierKind::Phone, value: "+86 138 0000 0002".into() },
            ])
            .unwrap();
        batch.put_cases(&[fixture_case("K1", "P1"), fixture_case("K2", "P2")]).unwrap();
        batch.put_lab_tests(&[fixture_lab_test("LT1", "P1"), fixture_lab_test("LT2", "P2")]).unwrap();
        batch.commit().unwrap();
        drop(store);
        Self::launch(dir, db, now(), "C1", configure)
    }

    /// Adds the users `admin`, `tracer` and `lab` (jurisdiction `top`) to the store at `db` and
    /// serves it with the clock at `at`.
    fn launch(
        dir: tempfile::TempDir,
        db: PathBuf,
        at: Timestamp,
        top: &str,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let mut store = chainbreak_app::open(&db).unwrap();
        let admin = add_user_in(&mut store, "admin", Role::Admin, top);
        let tracer = add_user_in(&mut store, "tracer", Role::Tracer, top);
        let lab = add_user_in(&mut store, "lab", Role::Lab, top);
        drop(store);

        let mut config = ServerConfig { db: db.clone(), ..Default::default() };
        configure(&mut config);
        let state = AppState::open(config, Arc::new(ManualClock::new(at))).unwrap();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                addr_tx.send(listener.local_addr()?).unwrap();
                serve(listener, state, async move {
                    let _ = stop.await;
                })
                .await
            })
        });
        let addr = addr_rx.recv().expect("the server starts");
        TestServer {
            base: format!("http://{addr}"),
            admin,
            tracer,
            lab,
            db,
            client: Client::new(),
            shutdown: Some(shutdown),
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().unwrap()
    }

    /// The token of the fixture user whose role serves `path`: `lab` for lab tests, `tracer`
    /// for visits, sentinel reports and goods, `admin` for the rest.
    fn token_for(&self, path: &str) -> &str {
        if path.starts_with("/api/v1/lab-tests") {
            &self.lab
        } else if path.starts_with("/api/v1/visits")
            || path.starts_with("/api/v1/sentinel")
            || path.starts_with("/api/v1/goods:batch")
        {
            &self.tracer
        } else {
            &self.admin
        }
    }

    /// POSTs JSON with the token of [`Self::token_for`].
    fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).bearer_auth(self.token_for(path)).json(body).send().unwrap()
    }

    fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::blocking::Body>) -> Response {
        let request = self.client.post(self.url(path)).bearer_auth(self.token_for(path));
        request.header("content-type", content_type).body(body).send().unwrap()
    }

    /// A request with `token` (none: no Authorization header) and an optional JSON body.
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Response {
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().unwrap()
    }

    /// A second connection to the store, to see what the server wrote.
    fn store(&self) -> Box<dyn Store> {
        Box::new(chainbreak_app::open(&self.db).unwrap())
    }

    fn stop(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().expect("the server thread does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Status and JSON body, checking the content type is JSON.
fn json_of(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(ct.starts_with("application/json"), "{status}: content-type {ct:?}");
    (status, r.json().unwrap())
}

fn visit(person: &str, place: &str, t_in: Value) -> Value {
    json!({"person_id": person, "place_id": place, "t_in": t_in})
}

/// Asserts the error shape and returns (code, location).
fn error_of(r: Response, expected: StatusCode) -> (String, Value) {
    let (status, body) = json_of(r);
    assert_eq!(status, expected, "{body}");
    let error = body["error"].as_object().unwrap_or_else(|| panic!("no error object: {body}"));
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    (error["code"].as_str().unwrap().to_string(), error.get("location").cloned().unwrap_or(Value::Null))
}

fn window() -> (Timestamp, Timestamp) {
    ("2022-01-01T00:00:00Z".parse().unwrap(), "2023-01-01T00:00:00Z".parse().unwrap())
}

// ---------------------------------------------------------------- operations

#[test]
fn healthz_and_readyz() {
    let server = TestServer::start();
    let (status, body) = json_of(server.get("/healthz"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));

    let (status, body) = json_of(server.get("/readyz"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["profile"], "cn-2022-9th");
    assert_eq!(body["time_zone"], "Asia/Shanghai");
    assert!(body["schema_version"].as_u64().unwrap() >= 1);
    assert_eq!(body["last_seq"].as_u64().unwrap(), server.store().last_seq().unwrap());
}

#[test]
fn readyz_is_503_when_the_store_does_not_answer() {
    let server = TestServer::start();
    let conn = rusqlite::Connection::open(&server.db).unwrap();
    conn.execute("DELETE FROM meta WHERE key = 'profile'", []).unwrap();
    let (code, _) = error_of(server.get("/readyz"), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code, "store.not_initialized");
    // Liveness does not depend on the store.
    assert_eq!(server.get("/healthz").status(), StatusCode::OK);
}

#[test]
fn shutdown_is_graceful() {
    let mut server = TestServer::start();
    assert_eq!(server.get("/healthz").status(), StatusCode::OK);
    server.stop().expect("serve returns Ok after shutdown");
    assert!(server.client.get(server.url("/healthz")).send().is_err(), "nothing listens any more");
}

// ---------------------------------------------------------------- visits

#[test]
fn visits_batch_is_written_and_visible() {
    let server = TestServer::start();
    let before = server.store().last_seq().unwrap();
    let body = json!({"visits": [
        visit("P1", "L1", json!("2022-03-02T08:00:00Z")),
        {"person_id": "P1", "place_id": "L2", "t_in": 1646215200, "t_out": "2022-03-02T11:00:00Z", "source": "ticket"},
        visit("P2", "L1", json!(1646208000)),
    ]});
    let (status, report) = json_of(server.post_json("/api/v1/visits:batch", &body));
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["accepted"], 3);
    assert_eq!(report["registered_persons"], 0);
    assert_eq!(report["registered_places"], 0);
    assert!(report["last_seq"].as_u64().unwrap() > before);

    let store = server.store();
    let (from, to) = window();
    let visits = store.visits_of_person("P1", from, to).unwrap();
    assert_eq!(visits.len(), 2);
    assert_eq!(visits[0].place_id, "L1");
    assert_eq!(visits[0].t_in, "2022-03-02T08:00:00Z".parse().unwrap());
    assert_eq!(visits[1].place_id, "L2");
    assert_eq!(visits[1].t_out, Some("2022-03-02T11:00:00Z".parse().unwrap()));
    assert_eq!(report["last_seq"].as_u64().unwrap(), store.last_seq().unwrap());
}

#[test]
fn unknown_person_is_422_and_nothing_is_written() {
    let server = TestServer::start();
    let before = server.store().last_seq().unwrap();
    let body = json!({"visits": [visit("P9", "L1", json!(1646208000)), visit("P1", "L1", json!(1646208000))]});
    let r = server.post_json("/api/v1/visits:batch", &body);
    let (status, body) = json_of(r);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "input.unknown_reference");
    assert_eq!(body["error"]["location"]["json_path"], "$.visits[0].person_id");
    insta::assert_json_snapshot!("error_unknown_person", body);

    let store = server.store();
    assert_eq!(store.count(Entity::Visit).unwrap(), 0);
    assert_eq!(store.last_seq().unwrap(), before);
    assert!(store.person("P9").unwrap().is_none());
}

#[test]
fn unknown_place_is_located_too() {
    let server = TestServer::start();
    let body = json!({"visits": [visit("P1", "L1", json!(0)), visit("P1", "L7", json!(0))]});
    let (code, loc) = error_of(server.post_json("/api/v1/visits:batch", &body), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code, "input.unknown_reference");
    assert_eq!(loc["json_path"], "$.visits[1].place_id");
}

#[test]
fn register_unknown_registers() {
    let server = TestServer::start();
    let body = json!({"visits": [visit("P9", "L9", json!(1646208000)), visit("P9", "L1", json!(1646211600))],
        "register_unknown": true});
    let (status, report) = json_of(server.post_json("/api/v1/visits:batch", &body));
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["accepted"], 2);
    assert_eq!(report["registered_persons"], 1);
    assert_eq!(report["registered_places"], 1);
    let store = server.store();
    assert!(store.person("P9").unwrap().is_some());
    assert!(store.place("L9").unwrap().is_some());
    let (from, to) = window();
    assert_eq!(store.visits_of_person("P9", from, to).unwrap().len(), 2);
}

#[test]
fn inconsistent_visit_is_422() {
    let server = TestServer::start();
    let body = json!({"visits": [{"person_id": "P1", "place_id": "L1", "t_in": 1646208000, "t_out": 1646200000}]});
    let (code, loc) = error_of(server.post_json("/api/v1/visits:batch", &body), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code, "input.inconsistent");
    assert_eq!(loc["json_path"], "$.visits[0].t_out");
}

#[test]
fn malformed_json_is_400_with_line_and_column() {
    let server = TestServer::start();
    let body =
        "{\"visits\": [\n  {\"person_id\": \"P1\", \"place_id\": \"L1\", \"t_in\": 0},\n  {\"person_id\": \"P1\",,\n]}";
    let (code, loc) =
        error_of(server.post_raw("/api/v1/visits:batch", "application/json", body), StatusCode::BAD_REQUEST);
    assert_eq!(code, "input.malformed");
    assert_eq!(loc["line"], 3);
    assert_eq!(loc["column"], 22);
    assert_eq!(loc["json_path"], "$.visits[1]");

    let (code, _) = error_of(server.post_raw("/api/v1/visits:batch", "application/json", ""), StatusCode::BAD_REQUEST);
    assert_eq!(code, "input.malformed");
    let (code, _) = error_of(
        server.post_raw("/api/v1/visits:batch", "application/json", b"\xff\xfe".to_vec()),
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(code, "input.malformed");
}

#[test]
fn wrong_type_is_422_with_exact_path() {
    let server = TestServer::start();
    let body = json!({"visits": [visit("P1", "L1", json!(0)), visit("P1", "L1", json!(true))]});
    let r = server.post_json("/api/v1/visits:batch", &body);
    let (code, loc) = error_of(r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code, "input.invalid_field");
    assert_eq!(loc["json_path"], "$.visits[1].t_in");
    assert_eq!(loc["line"], 1);

    let body = json!({"visits": [visit("P1", "L1", json!("yesterday"))]});
    let (code, loc) = error_of(server.post_json("/api/v1/visits:batch", &body), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code, "input.invalid_field");
    assert_eq!(loc["json_path"], "$.visits[0].t_in");

    let body = json!({"visits": [{"person_id": "P1", "place_id": "L1", "t_in": 0, "colour": "red"}]});
    let (code, loc) = error_of(server.post_json("/api/v1/visits:batch", &body), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code, "input.unknown_field");
    assert_eq!(loc["json_path"], "$.visits[0].colour");

    let body = json!({"visits": [{"person_id": "P1", "t_in": 0}]});
    let (code, loc) = error_of(server.post_json("/api/v1/visits:batch", &body), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code, "input.missing_field");
    assert_eq!(loc["json_path"], "$.visits[0].place_id");

    let (code, loc) = error_of(server.post_json("/api/v1/visits:batch", &json!({})), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code, "input.missing_field");
    assert_eq!(loc["json_path"], "$.visits");

    assert_eq!(server.store().count(Entity::Visit).unwrap(), 0);
}

#[test]
fn oversized_body_is_413() {
    let server = TestServer::start_with(|c| c.max_body_bytes = 1024);
    let visits: Vec<Value> = (0..40).map(|i| visit("P1", "L1", json!(1646208000 + i))).collect();
    let body = serde_json::to_string(&json!({"visits": visits})).unwrap();
    assert!(body.len() > 1024);
    // With a Content-Length: refused before reading.
    let (code, _) = error_of(
        server.post_raw("/api/v1/visits:batch", "application/json", body.clone()),
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    assert_eq!(code, "input.too_large");
    // Chunked, without a Content-Length: refused by the body limit while reading.
    let chunked = reqwest::blocking::Body::new(std::io::Cursor::new(body.into_bytes()));
    let (code, _) =
        error_of(server.post_raw("/api/v1/visits:batch", "application/json", chunked), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code, "input.too_large");
    assert_eq!(server.store().count(Entity::Visit).unwrap(), 0);
    // A body under the limit goes through.
    let body = json!({"visits": [visit("P1", "L1", json!(1646208000))]});
    assert_eq!(server.post_json("/api/v1/visits:batch", &body).status(), StatusCode::OK);
}

#[test]
fn too_many_records_is_413() {
    let server = TestServer::start_with(|c| c.max_batch_records = 3);
    let visits: Vec<Value> = (0..4).map(|i| visit("P1", "L1", json!(1646208000 + i))).collect();
    let (code, loc) =
        error_of(server.post_json("/api/v1/visits:batch", &json!({"visits": visits})), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code, "input.too_large");
    assert_eq!(loc["json_path"], "$.visits");
    let tests: Vec<Value> = (0..4).map(|i| lab_test(&format!("T{i}"), "P1")).collect();
    let (code, loc) = error_of(
        server.post_json("/api/v1/lab-tests:batch", &json!({"lab_tests": tests})),
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    assert_eq!(code, "input.too_large");
    assert_eq!(loc["json_path"], "$.lab_tests");
    assert_eq!(server.store().count(Entity::Visit).unwrap(), 0);
    assert_eq!(server.store().count(Entity::LabTest).unwrap(), 2, "the fixture's two, no more");
}

#[test]
fn wrong_content_type_is_415() {
    let server = TestServer::start();
    let body = serde_json::to_string(&json!({"visits": [visit("P1", "L1", json!(0))]})).unwrap();
    let (code, _) = error_of(
        server.post_raw("/api/v1/visits:batch", "text/plain", body.clone()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    );
    assert_eq!(code, "input.unsupported");
    let r = server
        .client
        .post(server.url("/api/v1/visits:batch"))
        .bearer_auth(&server.tracer)
        .body(body.clone())
        .send()
        .unwrap();
    let (code, _) = error_of(r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(code, "input.unsupported");
    let r = server.post_raw("/api/v1/visits:batch", "application/json; charset=utf-8", body);
    assert_eq!(r.status(), StatusCode::OK);
}

#[test]
fn unknown_route_is_404_json_and_wrong_method_405() {
    let server = TestServer::start();
    let (code, loc) = error_of(server.get("/api/v1/nothing"), StatusCode::NOT_FOUND);
    assert_eq!(code, "not_found");
    assert!(loc.is_null());
    let (code, _) = error_of(server.get("/api/v1/visits:batch"), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code, "method_not_allowed");
    let r = server.post_json("/healthz", &json!({}));
    assert_eq!(r.headers().get("allow").unwrap(), "GET,HEAD");
    error_of(r, StatusCode::METHOD_NOT_ALLOWED);
}

// ---------------------------------------------------------------- lab tests

fn lab_test(id: &str, person: &str) -> Value {
    json!({"id": id, "subject_kind": "person", "subject_id": person, "method": "pcr", "result": "positive",
        "ct": 28.5, "sampled_at": "2022-03-02T08:00:00Z", "reported_at": 1646240400})
}

#[test]
fn lab_tests_batch() {
    let server = TestServer::start();
    let body = json!({"lab_tests": [lab_test("T1", "P1"),
        {"id": "T2", "subject_kind": "environment", "subject_id": "L2 door handle", "pool_id": "POOL-7",
         "method": "pcr", "result": "negative", "sampled_at": 1646208000, "lab_id": "L1"}]});
    let (status, report) = json_of(server.post_json("/api/v1/lab-tests:batch", &body));
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["accepted"], 2);
    let store = server.store();
    let t1 = store.lab_test("T1").unwrap().expect("T1 is stored");
    assert_eq!(t1.subject_id, "P1");
    assert_eq!(t1.ct, Some(28.5));
    assert_eq!(store.lab_test("T2").unwrap().unwrap().pool_id.as_deref(), Some("POOL-7"));

    let body = json!({"lab_tests": [lab_test("T3", "P1"), lab_test("T4", "P9")]});
    let (code, loc) = error_of(server.post_json("/api/v1/lab-tests:batch", &body), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code, "input.unknown_reference");
    assert_eq!(loc["json_path"], "$.lab_tests[1].subject_id");
    assert!(server.store().lab_test("T3").unwrap().is_none(), "all or nothing");

    let mut bad = lab_test("T5", "P1");
    bad["result"] = json!("maybe");
    let (code, loc) = error_of(
        server.post_json("/api/v1/lab-tests:batch", &json!({"lab_tests": [bad]})),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(code, "input.invalid_field");
    assert_eq!(loc["json_path"], "$.lab_tests[0].result");
}

/// A positive of a person without a case opens a suspected case that is isolated and traced at
/// once: the contact it met is proposed for tracers to confirm (issue 6).
#[test]
fn a_positive_over_http_is_isolated_and_traced_at_once() {
    let server = TestServer::start();
    let body = json!({"register_unknown": true, "visits": [
        {"person_id": "P3", "place_id": "L2", "t_in": "2022-03-01T11:00:00Z", "t_out": "2022-03-01T12:00:00Z"},
        {"person_id": "P2", "place_id": "L2", "t_in": "2022-03-01T11:30:00Z", "t_out": "2022-03-01T13:00:00Z"}]});
    let (status, report) = json_of(server.post_json("/api/v1/visits:batch", &body));
    assert_eq!(status, StatusCode::OK, "{report}");
    let (status, report) =
        json_of(server.post_json("/api/v1/lab-tests:batch", &json!({"lab_tests": [lab_test("T3", "P3")]})));
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["suspected_cases"], json!(["S-T3"]));
    assert_eq!(report["traced"], json!({"cases": ["S-T3"], "proposed": 1, "updated": 0, "skipped": []}));
    let (status, page) = json_of(server.call("get", "/api/v1/proposals?case=S-T3", Some(&server.admin), None));
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!((&items[0]["contact_id"], &items[0]["status"]), (&json!("P2"), &json!("proposed")));
    let (status, episodes) = json_of(server.call("get", "/api/v1/episodes?person=P3", Some(&server.admin), None));
    assert_eq!(status, StatusCode::OK, "{episodes}");
    assert_eq!(episodes["items"][0]["category"], "case", "{episodes}");
    // Its zones are proposed at once: P3 lives nowhere known, but stayed at L2.
    let (status, zones) = json_of(server.call("get", "/api/v1/zones?open=true", Some(&server.admin), None));
    assert_eq!(status, StatusCode::OK, "{zones}");
    let l2 = zones["items"].as_array().unwrap().iter().find(|z| z["target"]["id"] == "L2").unwrap();
    assert_eq!((&l2["level"], &l2["reasons"][0]["case_id"]), (&json!("medium"), &json!("S-T3")), "{l2}");
}

// ---------------------------------------------------------------- metrics and OpenAPI

#[test]
fn metrics_count_requests_and_records() {
    let server = TestServer::start();
    server.get("/healthz");
    server.get("/healthz");
    server.get("/no/such/route");
    let body = json!({"visits": [visit("P1", "L1", json!(0)), visit("P2", "L2", json!(0))]});
    let (_, report) = json_of(server.post_json("/api/v1/visits:batch", &body));
    server.post_json("/api/v1/lab-tests:batch", &json!({"lab_tests": [lab_test("T1", "P1")]}));
    server.post_raw("/api/v1/visits:batch", "application/json", "{");

    let r = server.get("/metrics");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = r.text().unwrap();
    let last_seq = server.store().last_seq().unwrap();
    assert!(last_seq >= report["last_seq"].as_u64().unwrap());
    for line in [
        r#"chainbreak_http_requests_total{route="/healthz",method="GET",status="200"} 2"#,
        r#"chainbreak_http_requests_total{route="unmatched",method="GET",status="404"} 1"#,
        r#"chainbreak_http_requests_total{route="/api/v1/visits:batch",method="POST",status="200"} 1"#,
        r#"chainbreak_http_requests_total{route="/api/v1/visits:batch",method="POST",status="400"} 1"#,
        r#"chainbreak_http_requests_total{route="/api/v1/lab-tests:batch",method="POST",status="200"} 1"#,
        r#"chainbreak_ingested_records_total{kind="visit"} 2"#,
        r#"chainbreak_ingested_records_total{kind="lab_test"} 1"#,
        &format!("chainbreak_store_last_seq {last_seq}"),
        "# TYPE chainbreak_http_request_duration_seconds histogram",
        r#"chainbreak_http_request_duration_seconds_count{route="/healthz"} 2"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }
}

#[test]
fn openapi_document() {
    let server = TestServer::start();
    let (status, mut doc) = json_of(server.get("/openapi.json"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc, serde_json::to_value(chainbreak_server::openapi()).unwrap());
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/api/v1/visits:batch", "/api/v1/lab-tests:batch", "/healthz", "/readyz", "/metrics", "/openapi.json"]
    {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    for status in ["200", "400", "413", "415", "422", "500"] {
        assert!(doc["paths"]["/api/v1/visits:batch"]["post"]["responses"][status].is_object(), "{status}");
    }
    for schema in ["Visit", "LabTest", "ErrorBody", "VisitsBatch", "LabTestsBatch", "IngestReport"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema} is a component");
    }
    // The version changes with every release; the API does not.
    doc["info"]["version"] = json!("[version]");
    insta::assert_json_snapshot!("openapi", doc);
}

// ---------------------------------------------------------------- logs

/// Everything logged by this test binary (the subscriber is global: the server logs from its
/// own threads), as JSON lines.
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || LogWriter(logs))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
        logs
    })
}

struct LogWriter(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn one_log_event_per_request() {
    let logs = captured_logs();
    let server = TestServer::start();
    // DELETE /readyz is made by this test only.
    let r = server.client.delete(server.url("/readyz")).send().unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| {
            e["fields"]["message"] == "request"
                && e["fields"]["method"] == "DELETE"
                && e["fields"]["route"] == "/readyz"
        })
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    let e = &events[0];
    assert_eq!(e["target"], "chainbreak_server::http");
    assert_eq!(e["fields"]["route"], "/readyz");
    assert_eq!(e["fields"]["status"], 405);
    assert!(e["fields"]["latency_ms"].as_f64().is_some(), "{e}");
}

// ---------------------------------------------------------------- authentication and authorisation

/// Asserts a 401 in the error shape with the `WWW-Authenticate: Bearer` challenge, and returns
/// the message.
fn assert_unauthenticated(r: Response) -> String {
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    let (status, body) = json_of(r);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");
    body["error"]["message"].as_str().unwrap().to_string()
}

/// How a route meets jurisdictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scoped {
    /// Not about records (operations, accounts, audit).
    No,
    /// One record: `{id}` is tried with a record inside (200) and outside (404) the user's
    /// jurisdiction; the pair is (inside, outside).
    Record(&'static str, &'static str),
    /// A list: every item lies inside; the pair names an item inside and one outside.
    List(&'static str, &'static str),
    /// A write: a batch inside is accepted, the same batch outside is refused (403).
    Write,
    /// A query about a record: inside answers, outside reads as absent (404).
    Query,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone (operations, sign-in).
    Public,
    /// Any signed-in user, whatever the role (sign-out).
    SignedIn,
    /// Signed-in users whose role has the permission.
    Needs(Permission),
}

/// Every (method, route) the API serves, with who may call it and how it meets jurisdictions.
/// The matrix test fails when the OpenAPI document lists a route that is not here. Sign-out
/// comes last: it ends the credential it is called with.
const ROUTES: &[(&str, &str, Access, Scoped)] = &[
    ("get", "/healthz", Access::Public, Scoped::No),
    ("get", "/readyz", Access::Public, Scoped::No),
    ("get", "/metrics", Access::Public, Scoped::No),
    ("get", "/openapi.json", Access::Public, Scoped::No),
    ("post", "/api/v1/sessions", Access::Public, Scoped::No),
    ("post", "/api/v1/visits:batch", Access::Needs(Permission::IngestData), Scoped::Write),
    ("post", "/api/v1/lab-tests:batch", Access::Needs(Permission::IngestLabResults), Scoped::Write),
    ("post", "/api/v1/trace", Access::Needs(Permission::ConfirmContacts), Scoped::Query),
    // Proposal 1: case K1's contact P2 (lives in D2); proposal 2: case K2's contact P1 (D1).
    ("get", "/api/v1/proposals", Access::Needs(Permission::ReadRecords), Scoped::List("P1", "P2")),
    ("get", "/api/v1/proposals/{id}", Access::Needs(Permission::ReadRecords), Scoped::Record("2", "1")),
    ("post", "/api/v1/proposals/decisions", Access::Needs(Permission::ConfirmContacts), Scoped::Query),
    // Episode E1: P1's (D1); E2: P2's (D2). Facility F1.
    ("get", "/api/v1/episodes", Access::Needs(Permission::ReadRecords), Scoped::List("E1", "E2")),
    ("post", "/api/v1/episodes", Access::Needs(Permission::ConfirmContacts), Scoped::Query),
    ("get", "/api/v1/episodes/{id}", Access::Needs(Permission::ReadRecords), Scoped::Record("E1", "E2")),
    (
        "post",
        "/api/v1/episodes/{id}/transitions",
        Access::Needs(Permission::ManageEpisodes),
        Scoped::Record("E1", "E2"),
    ),
    ("get", "/api/v1/tasks", Access::Needs(Permission::ReadRecords), Scoped::List("E1", "E2")),
    ("get", "/api/v1/facilities", Access::Needs(Permission::ReadRecords), Scoped::No),
    ("post", "/api/v1/facilities", Access::Needs(Permission::ManageFacilities), Scoped::No),
    (
        "post",
        "/api/v1/facilities/{id}/rooms/{room}/disinfected",
        Access::Needs(Permission::ManageFacilities),
        Scoped::No,
    ),
    ("post", "/api/v1/sentinel:batch", Access::Needs(Permission::IngestData), Scoped::Write),
    // Alert 1 and review item 1 lie in D1, alert 2 and review item 2 in D2 (`seed_alerts`).
    ("get", "/api/v1/alerts", Access::Needs(Permission::ReadRecords), Scoped::List("1", "2")),
    ("post", "/api/v1/alerts", Access::Needs(Permission::TriageAlerts), Scoped::Query),
    ("get", "/api/v1/alerts/{id}", Access::Needs(Permission::ReadRecords), Scoped::Record("1", "2")),
    ("post", "/api/v1/alerts/{id}/transitions", Access::Needs(Permission::TriageAlerts), Scoped::Record("1", "2")),
    ("get", "/api/v1/series", Access::Needs(Permission::ReadRecords), Scoped::No),
    ("get", "/api/v1/review-queue", Access::Needs(Permission::ReadRecords), Scoped::List("1", "2")),
    // Decided once: the jurisdiction is checked in `surveillance_over_http`.
    ("post", "/api/v1/review-queue/{id}/decision", Access::Needs(Permission::TriageAlerts), Scoped::No),
    ("post", "/api/v1/detect/runs", Access::Needs(Permission::TriageAlerts), Scoped::No),
    ("get", "/api/v1/sentinels/silent", Access::Needs(Permission::ReadRecords), Scoped::No),
    ("get", "/api/v1/rt", Access::Needs(Permission::ReadRecords), Scoped::No),
    ("post", "/api/v1/cases/{id}/clock", Access::Needs(Permission::TriageAlerts), Scoped::Record("K1", "K2")),
    // Zones area:D1:1 and area:D2:1: the districts' low zones of K1 and K2 (`seed_zones`).
    ("get", "/api/v1/zones", Access::Needs(Permission::ReadRecords), Scoped::List("area:D1:1", "area:D2:1")),
    ("post", "/api/v1/zones:propose", Access::Needs(Permission::ManageZones), Scoped::Query),
    ("post", "/api/v1/zones/review", Access::Needs(Permission::ManageZones), Scoped::No),
    ("get", "/api/v1/zones/{id}", Access::Needs(Permission::ReadRecords), Scoped::Record("area:D1:1", "area:D2:1")),
    // Decided and rounds entered once: the jurisdiction is checked in `zones_over_http`.
    ("post", "/api/v1/zones/{id}/decision", Access::Needs(Permission::ManageZones), Scoped::No),
    ("post", "/api/v1/zones/{id}/rounds", Access::Needs(Permission::IngestData), Scoped::No),
    // Goods responses lab_test:ENV1 at L1 (D1) and lab_test:ENV2 at L2 (D2); service requests of
    // P1 (D1) and P2 (D2) filed at `now()` (`seed_goods_and_requests`).
    ("post", "/api/v1/goods:batch", Access::Needs(Permission::IngestData), Scoped::Write),
    ("get", "/api/v1/goods/batches/{id}/trace", Access::Needs(Permission::ReadRecords), Scoped::No),
    (
        "get",
        "/api/v1/goods/responses",
        Access::Needs(Permission::ReadRecords),
        Scoped::List("lab_test:ENV1", "lab_test:ENV2"),
    ),
    ("post", "/api/v1/goods/responses", Access::Needs(Permission::ConfirmContacts), Scoped::No),
    (
        "get",
        "/api/v1/goods/responses/{id}",
        Access::Needs(Permission::ReadRecords),
        Scoped::Record("lab_test:ENV1", "lab_test:ENV2"),
    ),
    ("get", "/api/v1/goods/suspensions", Access::Needs(Permission::ReadRecords), Scoped::No),
    (
        "get",
        "/api/v1/requests",
        Access::Needs(Permission::ReadRecords),
        Scoped::List("SR-P1-1646438400", "SR-P2-1646438400"),
    ),
    ("post", "/api/v1/requests", Access::Needs(Permission::ManageEpisodes), Scoped::Query),
    ("post", "/api/v1/requests/escalations", Access::Needs(Permission::ManageEpisodes), Scoped::No),
    (
        "get",
        "/api/v1/requests/{id}",
        Access::Needs(Permission::ReadRecords),
        Scoped::Record("SR-P1-1646438400", "SR-P2-1646438400"),
    ),
    (
        "post",
        "/api/v1/requests/{id}/actions",
        Access::Needs(Permission::ManageEpisodes),
        Scoped::Record("SR-P1-1646438400", "SR-P2-1646438400"),
    ),
    ("get", "/api/v1/public/zones", Access::Public, Scoped::No),
    ("get", "/api/v1/public/summary", Access::Public, Scoped::No),
    ("get", "/api/v1/public/zones.geojson", Access::Public, Scoped::No),
    ("get", "/api/v1/persons", Access::Needs(Permission::ReadRecords), Scoped::List("P1", "P2")),
    ("get", "/api/v1/persons/{id}", Access::Needs(Permission::ReadRecords), Scoped::Record("P1", "P2")),
    ("get", "/api/v1/places", Access::Needs(Permission::ReadRecords), Scoped::List("L1", "L2")),
    ("get", "/api/v1/places/{id}", Access::Needs(Permission::ReadRecords), Scoped::Record("L1", "L2")),
    ("get", "/api/v1/cases", Access::Needs(Permission::ReadRecords), Scoped::List("K1", "K2")),
    ("get", "/api/v1/cases/{id}", Access::Needs(Permission::ReadRecords), Scoped::Record("K1", "K2")),
    ("get", "/api/v1/lab-tests", Access::Needs(Permission::ReadRecords), Scoped::List("LT1", "LT2")),
    ("get", "/api/v1/lab-tests/{id}", Access::Needs(Permission::ReadRecords), Scoped::Record("LT1", "LT2")),
    ("get", "/api/v1/visits", Access::Needs(Permission::ReadRecords), Scoped::List("P1@L1", "P2@L2")),
    ("get", "/api/v1/users", Access::Needs(Permission::ManageUsers), Scoped::No),
    ("post", "/api/v1/users", Access::Needs(Permission::ManageUsers), Scoped::No),
    ("post", "/api/v1/users/{name}:disable", Access::Needs(Permission::ManageUsers), Scoped::No),
    ("post", "/api/v1/users/{name}:enable", Access::Needs(Permission::ManageUsers), Scoped::No),
    ("post", "/api/v1/users/{name}:reset-password", Access::Needs(Permission::ManageUsers), Scoped::No),
    ("post", "/api/v1/users/{name}/tokens", Access::Needs(Permission::ManageUsers), Scoped::No),
    ("delete", "/api/v1/tokens/{id}", Access::Needs(Permission::ManageUsers), Scoped::No),
    ("get", "/api/v1/audit", Access::Needs(Permission::ReadAudit), Scoped::No),
    ("delete", "/api/v1/sessions/current", Access::SignedIn, Scoped::No),
];

/// The body of a request to `route`; for writes, a batch lying inside D1 (`inside`) or D2.
fn matrix_body(route: &str, inside: bool) -> Option<Value> {
    let (person, place) = if inside { ("P1", "L1") } else { ("P2", "L2") };
    match route {
        "/api/v1/visits:batch" => Some(json!({"visits": [visit(person, place, json!(1646208000))]})),
        // Negative: a positive would convert E1 (the episode the routes below move).
        "/api/v1/lab-tests:batch" => {
            let mut test = lab_test("M1", person);
            test["result"] = json!("negative");
            Some(json!({"lab_tests": [test]}))
        }
        "/api/v1/users" => Some(json!({"name": "matrix-new", "role": "viewer", "unit": "U1", "jurisdiction": "D1",
            "password": "a long enough password"})),
        "/api/v1/users/{name}:reset-password" => Some(json!({"password": "another long password"})),
        "/api/v1/users/{name}/tokens" => Some(json!({"label": "matrix"})),
        "/api/v1/sessions" => Some(json!({"name": "target", "password": "a long enough password"})),
        "/api/v1/trace" => Some(json!({"cases": [if inside { "K1" } else { "K2" }]})),
        "/api/v1/proposals/decisions" => Some(json!({"ids": [if inside { 2 } else { 1 }], "decision": "confirm"})),
        "/api/v1/episodes" => Some(open_body(if inside { "E1" } else { "E2" }, person)),
        // The same reason again: accepted every time, changes nothing.
        "/api/v1/episodes/{id}/transitions" => {
            Some(json!({"action": "add_reason", "reason": {"source": "K1", "at": "2022-03-03T12:00:00Z"}}))
        }
        "/api/v1/facilities" => Some(json!({"id": "F9", "name": "Matrix hotel", "rooms": [{"id": "1"}]})),
        "/api/v1/sentinel:batch" => {
            Some(json!({"sentinel": [{"place_id": place, "feed": "pharmacy", "date": "2022-03-01", "count": 3}]}))
        }
        "/api/v1/alerts" => Some(json!({"summary": "matrix", "place_id": place})),
        // A note: accepted in every state, changes no state.
        "/api/v1/alerts/{id}/transitions" => Some(json!({"action": "comment", "note": "matrix"})),
        "/api/v1/review-queue/{id}/decision" => Some(json!({"decision": "escalate"})),
        "/api/v1/cases/{id}/clock" => Some(json!({"event": "case_reported", "at": "2022-03-04T00:00:00Z"})),
        "/api/v1/zones:propose" => Some(json!({"case_ids": [if inside { "K1" } else { "K2" }]})),
        "/api/v1/zones/review" => Some(json!({})),
        "/api/v1/zones/{id}/decision" => Some(json!({"decision": "confirm"})),
        "/api/v1/zones/{id}/rounds" => Some(json!({"on": "2022-03-05", "tested": 10, "positives": 0})),
        "/api/v1/goods:batch" => Some(json!({"hops": [{"batch_id": "GB1", "kind": "transfer", "to_place": place,
            "date": "2022-03-01"}]})),
        // A person's positive is no goods sample: refused (400) to whoever may ask.
        "/api/v1/goods/responses" => Some(json!({"lab_test_id": "LT1"})),
        "/api/v1/requests" => Some(json!({"person_id": person, "kind": "food"})),
        // A note: accepted in every state, changes no state.
        "/api/v1/requests/{id}/actions" => Some(json!({"action": "comment", "note": "matrix"})),
        _ => None,
    }
}

/// The (method, path) of every operation in the OpenAPI document.
fn documented_operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "options", "head", "patch", "trace"] {
            if item.get(method).is_some() {
                out.push((method.to_string(), path.clone()));
            }
        }
    }
    out.sort();
    out
}

/// The ids of a page's items (`person@place` for visits, the contact for proposals, the
/// episode for tasks).
fn item_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page has items: {page}"))
        .iter()
        .map(|item| match (item["id"].as_str(), item["contact_id"].as_str()) {
            (Some(id), _) => id.to_string(),
            (None, Some(contact)) => contact.to_string(),
            (None, None) if item["episode_id"].is_string() => item["episode_id"].as_str().unwrap().to_string(),
            (None, None) if item["id"].is_i64() => item["id"].as_i64().unwrap().to_string(),
            (None, None) => {
                format!("{}@{}", item["person_id"].as_str().unwrap(), item["place_id"].as_str().unwrap())
            }
        })
        .collect()
}

fn assert_allowed(r: Response, what: &str) -> Response {
    let status = r.status();
    assert!(
        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN && !status.is_server_error(),
        "{what}: {status} {}",
        r.text().unwrap()
    );
    r
}

#[test]
fn authorisation_matrix() {
    let server = TestServer::start();
    let doc = serde_json::to_value(chainbreak_server::openapi()).unwrap();
    let mut listed: Vec<(String, String)> = ROUTES.iter().map(|(m, p, ..)| (m.to_string(), p.to_string())).collect();
    listed.sort();
    assert_eq!(documented_operations(&doc), listed, "every documented route has a row in ROUTES, and no other");

    // One user of each role in district D1, and a user for the routes about a user to act on.
    // One visit inside D1 and one in D2 for the visit lists.
    let mut store = server.store();
    let tokens: Vec<(Role, String)> =
        Role::ALL.iter().map(|r| (*r, add_user_in(&mut *store, &format!("m-{r}"), *r, "D1"))).collect();
    add_user_in(&mut *store, "target", Role::Viewer, "D1");
    drop(store);
    let visits = json!({"visits": [visit("P1", "L1", json!(1646208000)), visit("P2", "L2", json!(1646208000))]});
    assert_eq!(server.post_json("/api/v1/visits:batch", &visits).status(), StatusCode::OK);
    record_k1_and_k2(&server);
    open_e1_and_e2(&server);
    seed_alerts(&server);
    seed_zones(&server);
    seed_goods_and_requests(&server);

    for (method, route, access, scoped) in ROUTES {
        let path = match scoped {
            Scoped::Record(inside, _) => route.replace("{id}", inside),
            // No token has this id: allowed roles get 404, the rest 403.
            _ => route.replace("{name}", "target").replace("{id}", "999999").replace("{room}", "101"),
        };
        let body = matrix_body(route, true);
        let what = format!("{} {route}", method.to_uppercase());
        // The document says which routes need a token.
        let security = &doc["paths"][route][method]["security"];
        let public = *access == Access::Public;
        if public {
            assert!(security.is_null(), "{what} is public: {security}");
        } else {
            assert_eq!(security, &json!([{"bearer": []}, {"session": []}]), "{what}: a token or a session");
        }

        let r = server.call(method, &path, None, body.as_ref());
        if public {
            assert!(r.status().is_success(), "{what} without a token: {}", r.status());
        } else {
            assert_unauthenticated(r);
            assert_unauthenticated(server.call(method, &path, Some("cbt_not-a-token"), body.as_ref()));
        }

        for (role, token) in &tokens {
            let allowed = match access {
                Access::Public | Access::SignedIn => true,
                Access::Needs(p) => role.may(*p),
            };
            let what = format!("{what} as {role} of D1");
            if !allowed {
                let (code, _) = error_of(server.call(method, &path, Some(token), body.as_ref()), StatusCode::FORBIDDEN);
                assert_eq!(code, "forbidden", "{what}");
                continue;
            }
            let r = assert_allowed(server.call(method, &path, Some(token), body.as_ref()), &what);
            match scoped {
                Scoped::No => {}
                Scoped::Record(_, outside) => {
                    let status = r.status();
                    assert_eq!(status, StatusCode::OK, "{what}, inside: {}", r.text().unwrap_or_default());
                    let (code, _) = error_of(
                        server.call(method, &route.replace("{id}", outside), Some(token), None),
                        StatusCode::NOT_FOUND,
                    );
                    assert_eq!(code, "not_found", "{what}, outside reads as absent");
                }
                Scoped::List(inside, outside) => {
                    let (status, page) = json_of(r);
                    assert_eq!(status, StatusCode::OK, "{what}: {page}");
                    let ids = item_ids(&page);
                    assert!(ids.contains(&inside.to_string()), "{what} lists {inside}: {ids:?}");
                    assert!(!ids.contains(&outside.to_string()), "{what} hides {outside}: {ids:?}");
                    // The whole city's user sees both: the test is not passing on an empty list.
                    let (_, all) = json_of(server.call(method, &path, Some(&server.tracer), None));
                    assert!(item_ids(&all).contains(&outside.to_string()), "{what}: {all}");
                }
                Scoped::Query => {
                    assert_eq!(r.status(), StatusCode::OK, "{what}, inside");
                    let outside = matrix_body(route, false);
                    let r = server.call(method, &path, Some(token), outside.as_ref());
                    assert_eq!(error_of(r, StatusCode::NOT_FOUND).0, "not_found", "{what}, outside");
                }
                Scoped::Write => {
                    assert_eq!(r.status(), StatusCode::OK, "{what}, inside");
                    let outside = matrix_body(route, false);
                    let r = server.call(method, &path, Some(token), outside.as_ref());
                    let (code, location) = error_of(r, StatusCode::FORBIDDEN);
                    assert_eq!(
                        (code.as_str(), &location["json_path"]),
                        (
                            "forbidden",
                            &json!(format!(
                                "${}[0]",
                                if route.contains("visits") {
                                    ".visits"
                                } else if route.contains("sentinel") {
                                    ".sentinel"
                                } else if route.contains("goods") {
                                    ".hops"
                                } else {
                                    ".lab_tests"
                                }
                            ))
                        ),
                        "{what}, outside"
                    );
                }
            }
        }
    }
}

#[test]
fn revoked_expired_and_disabled_tokens_are_401_alike() {
    let server = TestServer::start();
    let body = json!({"visits": []});
    let mut store = server.store();
    let live = add_user_with_token(&mut *store, "li", Role::Tracer);
    let actor = fixture_actor();
    let long_ago = now() - jiff::SignedDuration::from_hours(24 * 3);
    let (expired, _) = accounts::issue_token(&mut *store, "li", "old", Some(1), long_ago, &actor).unwrap();
    let (revoked, info) = accounts::issue_token(&mut *store, "li", "lost", None, now(), &actor).unwrap();
    let mut batch = store.begin(now()).unwrap();
    batch.revoke_token(info.id, now()).unwrap();
    batch.commit().unwrap();
    let other = add_user_with_token(&mut *store, "zhang", Role::Tracer);
    accounts::set_disabled(&mut *store, "zhang", true, now(), &actor).unwrap();
    drop(store);

    assert_eq!(server.call("post", "/api/v1/visits:batch", Some(&live), Some(&body)).status(), StatusCode::OK);
    let messages: Vec<String> =
        [None, Some("cbt_unknown"), Some("Basic"), Some(&*expired), Some(&*revoked), Some(&*other)]
            .into_iter()
            .map(|token| assert_unauthenticated(server.call("post", "/api/v1/visits:batch", token, Some(&body))))
            .collect();
    assert!(messages.iter().all(|m| *m == messages[0]), "the message does not say what was wrong: {messages:?}");
    // A malformed Authorization header is refused the same way.
    let r = server.client.get(server.url("/api/v1/users")).header("authorization", "Token abc").send().unwrap();
    assert_unauthenticated(r);
}

#[test]
fn users_are_managed_over_http() {
    let server = TestServer::start();
    let admin = Some(server.admin.as_str());
    let new = json!({"name": "li.wei", "role": "tracer", "unit": "CDC", "jurisdiction": "D1",
        "password": "a long enough password"});
    let (status, user) = json_of(server.call("post", "/api/v1/users", admin, Some(&new)));
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["name"], "li.wei");
    assert_eq!(user["role"], "tracer");
    assert_eq!(user["disabled"], false);

    // Listed, without any password or hash.
    let (status, users) = json_of(server.call("get", "/api/v1/users", admin, None));
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = users.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"li.wei") && names.contains(&"admin"), "{names:?}");
    for u in users.as_array().unwrap() {
        let mut keys: Vec<&String> = u.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["created_at", "disabled", "jurisdiction", "name", "role", "unit"]);
    }
    assert!(!users.to_string().contains("argon2"));

    // A token, shown once, that works.
    let (status, issued) = json_of(server.call(
        "post",
        "/api/v1/users/li.wei/tokens",
        admin,
        Some(&json!({"label": "phone", "days": 30})),
    ));
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let token = issued["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("cbt_"));
    assert_eq!(issued["info"]["user"], "li.wei");
    assert_eq!(issued["info"]["label"], "phone");
    assert!(issued["info"]["expires_at"].is_string());
    let visits = json!({"visits": [visit("P1", "L1", json!(0))]});
    assert_eq!(server.call("post", "/api/v1/visits:batch", Some(&token), Some(&visits)).status(), StatusCode::OK);
    let (code, _) = error_of(server.call("get", "/api/v1/users", Some(&token), None), StatusCode::FORBIDDEN);
    assert_eq!(code, "forbidden");

    // Disabled: the token is refused; enabled again: accepted.
    let (status, user) = json_of(server.call("post", "/api/v1/users/li.wei:disable", admin, None));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["disabled"], true);
    assert_unauthenticated(server.call("post", "/api/v1/visits:batch", Some(&token), Some(&visits)));
    let (_, user) = json_of(server.call("post", "/api/v1/users/li.wei:enable", admin, None));
    assert_eq!(user["disabled"], false);
    assert_eq!(server.call("post", "/api/v1/visits:batch", Some(&token), Some(&visits)).status(), StatusCode::OK);

    // Revoked by its id: refused from then on; revoking again is 404.
    let revoke = format!("/api/v1/tokens/{}", issued["info"]["id"]);
    assert_eq!(server.call("delete", &revoke, admin, None).status(), StatusCode::NO_CONTENT);
    assert_unauthenticated(server.call("post", "/api/v1/visits:batch", Some(&token), Some(&visits)));
    assert_eq!(error_of(server.call("delete", &revoke, admin, None), StatusCode::NOT_FOUND).0, "not_found");
    assert_eq!(
        error_of(server.call("delete", "/api/v1/tokens/x", admin, None), StatusCode::BAD_REQUEST).0,
        "invalid_argument"
    );

    // Passwords.
    let r = server.call("post", "/api/v1/users/li.wei:reset-password", admin, Some(&json!({"password": "short"})));
    assert_eq!(error_of(r, StatusCode::BAD_REQUEST).0, "invalid_argument");
    let r = server.call(
        "post",
        "/api/v1/users/li.wei:reset-password",
        admin,
        Some(&json!({"password": "a new long password"})),
    );
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let signed_in = accounts::sign_in(&*server.store(), "li.wei", "a new long password").unwrap();
    assert_eq!(signed_in.unwrap().name, "li.wei");

    // Errors.
    let r = server.call("post", "/api/v1/users", admin, Some(&new));
    assert_eq!(error_of(r, StatusCode::UNPROCESSABLE_ENTITY).0, "input.inconsistent", "the name is taken");
    let mut elsewhere = new.clone();
    elsewhere["name"] = json!("zhang");
    elsewhere["jurisdiction"] = json!("D9");
    let r = server.call("post", "/api/v1/users", admin, Some(&elsewhere));
    assert_eq!(error_of(r, StatusCode::UNPROCESSABLE_ENTITY).0, "input.unknown_reference");
    let mut short = new.clone();
    short["name"] = json!("zhang");
    short["password"] = json!("short");
    let r = server.call("post", "/api/v1/users", admin, Some(&short));
    assert_eq!(error_of(r, StatusCode::BAD_REQUEST).0, "invalid_argument");
    let mut bad_role = short.clone();
    bad_role["role"] = json!("emperor");
    let (code, loc) =
        error_of(server.call("post", "/api/v1/users", admin, Some(&bad_role)), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((code.as_str(), &loc["json_path"]), ("input.invalid_field", &json!("$.role")));
    assert!(server.store().user("zhang").unwrap().is_none());
    for path in ["/api/v1/users/nobody:disable", "/api/v1/users/nobody:enable", "/api/v1/users/li.wei:promote"] {
        assert_eq!(error_of(server.call("post", path, admin, None), StatusCode::NOT_FOUND).0, "not_found", "{path}");
    }
    let r = server.call("post", "/api/v1/users/nobody/tokens", admin, Some(&json!({"label": "x"})));
    assert_eq!(error_of(r, StatusCode::NOT_FOUND).0, "not_found");
    let r = server.call("post", "/api/v1/users/li.wei/tokens", admin, Some(&json!({"label": "x", "days": 0})));
    assert_eq!(error_of(r, StatusCode::BAD_REQUEST).0, "invalid_argument");
}

#[test]
fn audit_shows_who_changed_users() {
    let server = TestServer::start();
    let admin = Some(server.admin.as_str());
    let new = json!({"name": "li.wei", "role": "viewer", "unit": "CDC", "jurisdiction": "D1",
        "password": "a long enough password"});
    assert_eq!(server.call("post", "/api/v1/users", admin, Some(&new)).status(), StatusCode::CREATED);
    server.call("post", "/api/v1/users/li.wei/tokens", admin, Some(&json!({"label": "x"})));

    let (status, records) = json_of(server.call("get", "/api/v1/audit?action=user_add&record=li.wei", admin, None));
    assert_eq!(status, StatusCode::OK);
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["actor"], "admin");
    assert_eq!(r["action"], "user_add");
    assert_eq!(r["entity"], "user");
    assert_eq!(r["record"], "li.wei");
    assert_eq!(r["via"], "POST /api/v1/users");
    assert_eq!(r["at"], "2022-03-05T00:00:00Z");

    // Filters, paging and limits.
    let (_, by_admin) = json_of(server.call("get", "/api/v1/audit?actor=admin&action=&entity=user", admin, None));
    let actions: Vec<&str> = by_admin.as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["user_add", "token_issue"]);
    let (_, all) = json_of(server.call("get", "/api/v1/audit", admin, None));
    let all = all.as_array().unwrap();
    assert!(all.len() >= 8, "the fixture's users and tokens are audited too: {all:?}");
    let second = all[1]["seq"].as_i64().unwrap();
    let (_, page) = json_of(server.call("get", &format!("/api/v1/audit?after={second}&limit=2"), admin, None));
    let seqs: Vec<i64> = page.as_array().unwrap().iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [all[2]["seq"].as_i64().unwrap(), all[3]["seq"].as_i64().unwrap()]);
    for query in ["limit=0", "limit=1001", "after=soon"] {
        let r = server.call("get", &format!("/api/v1/audit?{query}"), admin, None);
        assert_eq!(error_of(r, StatusCode::BAD_REQUEST).0, "invalid_argument", "{query}");
    }
    let (code, _) = error_of(server.call("get", "/api/v1/audit", Some(&server.tracer), None), StatusCode::FORBIDDEN);
    assert_eq!(code, "forbidden");
}

// ---------------------------------------------------------------- reads and personal data

/// The `read_personal_data` audit records, as (actor, record, via, reason).
fn personal_reads(server: &TestServer) -> Vec<(String, String, String, Option<String>)> {
    let filter = chainbreak_store::AuditFilter { action: Some("read_personal_data".into()), ..Default::default() };
    let records = server.store().audit_records(0, 1000, &filter).unwrap();
    records.into_iter().map(|r| (r.actor, r.record, r.via, r.reason)).collect()
}

#[test]
fn personal_data_is_shown_on_request_only_and_every_read_is_audited() {
    let server = TestServer::start();
    let tracer = Some(server.tracer.as_str());

    // Pseudonymous reads: no identifiers, no audit.
    let (status, page) = json_of(server.call("get", "/api/v1/persons", tracer, None));
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page["items"].as_array().unwrap().iter().all(|p| p.get("identifiers").is_none()), "{page}");
    let (_, one) = json_of(server.call("get", "/api/v1/persons/P1", tracer, None));
    assert!(one.get("identifiers").is_none(), "{one}");
    assert!(personal_reads(&server).is_empty());

    // Personal data on request: one audit record per person, with the reason.
    let (status, page) = json_of(server.call("get", "/api/v1/persons?personal=true&reason=case%20K1", tracer, None));
    assert_eq!(status, StatusCode::OK, "{page}");
    insta::assert_json_snapshot!("persons_page_with_personal_data", page);
    let (_, one) = json_of(server.call("get", "/api/v1/persons/P2?personal=true", tracer, None));
    assert_eq!(one["identifiers"][0]["value"], "+86 138 0000 0002");
    let reason = Some("case K1".to_string());
    assert_eq!(
        personal_reads(&server),
        [
            ("tracer".into(), "P1".into(), "GET /api/v1/persons".into(), reason.clone()),
            ("tracer".into(), "P2".into(), "GET /api/v1/persons".into(), reason),
            ("tracer".into(), "P2".into(), "GET /api/v1/persons/{id}".into(), None),
        ]
    );

    // A role without read_personal_data is refused, and nothing is read or recorded.
    let mut store = server.store();
    let viewer = add_user_with_token(&mut *store, "viewer", Role::Viewer);
    drop(store);
    for path in ["/api/v1/persons?personal=true", "/api/v1/persons/P1?personal=true"] {
        let (code, _) = error_of(server.call("get", path, Some(&viewer), None), StatusCode::FORBIDDEN);
        assert_eq!(code, "forbidden", "{path}");
    }
    assert_eq!(personal_reads(&server).len(), 3);
    // The viewer still reads pseudonymous records.
    assert_eq!(server.call("get", "/api/v1/persons/P1", Some(&viewer), None).status(), StatusCode::OK);
}

#[test]
fn pages_follow_their_cursor_and_check_their_parameters() {
    let server = TestServer::start();
    let tracer = Some(server.tracer.as_str());
    let mut seen = Vec::new();
    let mut path = "/api/v1/places?limit=3".to_string();
    loop {
        let (status, page) = json_of(server.call("get", &path, tracer, None));
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(item_ids(&page));
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/places?limit=3&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["H1", "H2", "L1", "L2"]);

    let visits = json!({"visits": [visit("P1", "L1", json!(1646208000)), visit("P1", "L2", json!(1646211600)),
        visit("P2", "L2", json!(1646215200))]});
    assert_eq!(server.post_json("/api/v1/visits:batch", &visits).status(), StatusCode::OK);
    let (_, page) = json_of(server.call("get", "/api/v1/visits?person=P1&limit=1", tracer, None));
    assert_eq!(item_ids(&page), ["P1@L1"]);
    let next = page["next"].as_str().unwrap().to_string();
    let (_, page) = json_of(server.call("get", &format!("/api/v1/visits?person=P1&after={next}"), tracer, None));
    assert_eq!(item_ids(&page), ["P1@L2"]);
    assert_eq!(page["next"], Value::Null);
    let (_, page) = json_of(server.call("get", "/api/v1/visits?place=L2&from=2022-03-02T09:30:00Z", tracer, None));
    assert_eq!(item_ids(&page), ["P2@L2"]);
    insta::assert_json_snapshot!("visits_page", page);

    let (_, case) = json_of(server.call("get", "/api/v1/cases/K1", tracer, None));
    assert_eq!(case["person_id"], "P1");
    assert_eq!(case["history"][0]["to"], "confirmed", "{case}");

    for bad in [
        "/api/v1/places?limit=0",
        "/api/v1/places?limit=5000",
        "/api/v1/places?colour=red",
        "/api/v1/visits?after=abc",
        "/api/v1/visits?from=yesterday",
        "/api/v1/persons?personal=maybe",
    ] {
        let (code, _) = error_of(server.call("get", bad, tracer, None), StatusCode::BAD_REQUEST);
        assert_eq!(code, "invalid_argument", "{bad}");
    }
    let (code, _) = error_of(server.call("get", "/api/v1/places/NOPE", tracer, None), StatusCode::NOT_FOUND);
    assert_eq!(code, "not_found");
}

// ---------------------------------------------------------------- pseudonymisation

#[test]
fn identifiers_in_batches_become_pseudonyms_and_never_reach_the_logs() {
    const NUMBER: &str = "13900000009";
    let logs = captured_logs();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("pseudonym.key");
    chainbreak_app::pseudonym::generate_key_file(&key).unwrap();
    let server = TestServer::start_with(|c| c.pseudonym_key_file = Some(key.clone()));

    let body = json!({"visits": [visit("phone:+86 139 0000 0009", "L1", json!(1646208000))], "register_unknown": true});
    let (status, report) = json_of(server.post_json("/api/v1/visits:batch", &body));
    assert_eq!(status, StatusCode::OK, "{report}");
    let tracer = Some(server.tracer.as_str());
    let (_, page) = json_of(server.call("get", "/api/v1/visits?place=L1", tracer, None));
    let pseudonym = page["items"][0]["person_id"].as_str().unwrap().to_string();
    assert_eq!(pseudonym.len(), 16, "{page}");
    assert!(!page.to_string().contains(NUMBER), "{page}");
    // The number is personal data of the pseudonym, for those who may read it.
    let (_, person) = json_of(server.call("get", &format!("/api/v1/persons/{pseudonym}?personal=true"), tracer, None));
    assert_eq!(person["identifiers"][0]["value"], format!("+86{NUMBER}"), "{person}");

    // A bad number is refused at its path, without repeating it.
    let body = json!({"visits": [visit("phone:+86 139 CALL ME", "L1", json!(1646208000))]});
    let r = server.post_json("/api/v1/visits:batch", &body);
    let (status, error) = json_of(r);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["location"]["json_path"], "$.visits[0].person_id");
    assert!(!error.to_string().contains("CALL ME"), "{error}");
    // Lab results too.
    let body = json!({"lab_tests": [lab_test("PT1", "phone:+86 139 0000 0009")]});
    assert_eq!(server.post_json("/api/v1/lab-tests:batch", &body).status(), StatusCode::OK);
    assert_eq!(server.store().lab_test("PT1").unwrap().unwrap().subject_id, pseudonym);

    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(text.contains("/api/v1/visits:batch"), "the requests were logged");
    assert!(!text.contains(NUMBER) && !text.contains("139 0000"), "an identifier reached the logs");

    // Without a key, such a batch is refused whole.
    let plain = TestServer::start();
    let body = json!({"visits": [visit("phone:+86 139 0000 0009", "L1", json!(1646208000))], "register_unknown": true});
    let (code, location) = error_of(plain.post_json("/api/v1/visits:batch", &body), StatusCode::BAD_REQUEST);
    assert_eq!((code.as_str(), &location["json_path"]), ("invalid_argument", &json!("$.visits[0].person_id")));
    assert_eq!(plain.store().count(Entity::Visit).unwrap(), 0);
}

// ---------------------------------------------------------------- retention

#[test]
fn the_server_purges_expired_location_data_on_schedule() {
    let server = TestServer::start_with(|c| {
        c.purge_every = Some(std::time::Duration::from_millis(50));
        let mut store = chainbreak_app::open(&c.db).unwrap();
        let old = |person: &str, t_in: &str| chainbreak_core::model::Visit {
            person_id: person.into(),
            place_id: "L1".into(),
            t_in: t_in.parse().unwrap(),
            t_out: None,
            source: chainbreak_core::model::VisitSource::VenueCode,
        };
        let writer = chainbreak_app::ingest::Writer {
            scope: chainbreak_store::Scope::All,
            actor: fixture_actor(),
            pseudonymizer: None,
        };
        // The clock says 2022-03-05: the first visit is 63 days old, the second 3.
        let mut visits = [old("P1", "2022-01-01T08:00:00Z"), old("P2", "2022-03-02T08:00:00Z")];
        chainbreak_app::ingest::ingest_visits(&mut store, &writer, &mut visits, false, now()).unwrap();
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.store().count(Entity::Visit).unwrap() != 1 {
        assert!(std::time::Instant::now() < deadline, "the purge did not run");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (_, page) = json_of(server.call("get", "/api/v1/visits", Some(&server.tracer), None));
    assert_eq!(item_ids(&page), ["P2@L1"]);
    let filter = chainbreak_store::AuditFilter { action: Some("purge".into()), ..Default::default() };
    let audit = server.store().audit_records(0, 10, &filter).unwrap();
    assert_eq!(audit.len(), 1, "later runs find nothing to purge: {audit:?}");
    assert_eq!((audit[0].actor.as_str(), audit[0].via.as_str()), ("system", "scheduled purge"));
}

// ---------------------------------------------------------------- browser sessions

fn with_cookie(server: &TestServer, method: &str, path: &str, cookie: &str, origin: Option<&str>) -> Response {
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let mut request = server.client.request(method, server.url(path)).header("cookie", cookie);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(body) = matrix_body(path, true) {
        request = request.json(&body);
    }
    request.send().unwrap()
}

fn audit_actions(server: &TestServer) -> Vec<(String, String, String)> {
    let records = server.store().audit_records(0, 1000, &Default::default()).unwrap();
    records.into_iter().filter(|r| r.action.starts_with("sign_")).map(|r| (r.action, r.actor, r.record)).collect()
}

#[test]
fn browser_sessions_sign_in_work_like_tokens_and_sign_out() {
    let server = TestServer::start();
    let sign_in = |password: &str| {
        server
            .client
            .post(server.url("/api/v1/sessions"))
            .json(&json!({"name": "tracer", "password": password}))
            .send()
            .unwrap()
    };
    let (code, _) = error_of(sign_in("not the password"), StatusCode::UNAUTHORIZED);
    assert_eq!(code, "unauthenticated");

    let r = sign_in("a long enough password");
    assert_eq!(r.status(), StatusCode::CREATED);
    let set_cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let session: Value = r.json().unwrap();
    insta::assert_json_snapshot!("session", session);
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("chainbreak_session=cbs_"), "{cookie}");

    // Every route answers a session as it answers the same user's token.
    record_k1_and_k2(&server);
    open_e1_and_e2(&server);
    seed_alerts(&server);
    seed_zones(&server);
    seed_goods_and_requests(&server);
    for (method, route, access, _) in ROUTES {
        if *access != Access::Needs(Permission::ReadRecords) && *access != Access::Needs(Permission::IngestData) {
            continue;
        }
        // A round is entered once, on a zone in force (`zones_over_http`).
        if route.ends_with("/rounds") {
            continue;
        }
        let path = route.replace("{id}", "P1").replace("/places/P1", "/places/L1");
        let path = path.replace("/cases/P1", "/cases/K1").replace("/lab-tests/P1", "/lab-tests/LT1");
        let path = path.replace("/proposals/P1", "/proposals/2").replace("/episodes/P1", "/episodes/E1");
        let path = path.replace("/alerts/P1", "/alerts/1").replace("/zones/P1", "/zones/area:D1:1");
        let path = path
            .replace("/goods/batches/P1", "/goods/batches/GB1")
            .replace("/responses/P1", "/responses/lab_test:ENV1");
        let path = path.replace("/requests/P1", "/requests/SR-P1-1646438400");
        let by_token = server.call(method, &path, Some(&server.tracer), matrix_body(route, true).as_ref()).status();
        let by_cookie = with_cookie(&server, method, &path, &cookie, None).status();
        assert_eq!(by_cookie, by_token, "{method} {path}");
        assert!(by_cookie.is_success(), "{method} {path}: {by_cookie}");
    }
    // A change from another site is refused; from the same origin it goes through.
    let origin = server.base.clone();
    let (code, _) = error_of(
        with_cookie(&server, "post", "/api/v1/visits:batch", &cookie, Some("https://elsewhere.example")),
        StatusCode::FORBIDDEN,
    );
    assert_eq!(code, "forbidden");
    assert_eq!(with_cookie(&server, "post", "/api/v1/visits:batch", &cookie, Some(&origin)).status(), StatusCode::OK);

    // Signing out ends the session and clears the cookie.
    let r = with_cookie(&server, "delete", "/api/v1/sessions/current", &cookie, Some(&origin));
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.headers().get("set-cookie").unwrap().to_str().unwrap().contains("Max-Age=0"));
    assert_unauthenticated(with_cookie(&server, "get", "/api/v1/persons", &cookie, None));

    let actions = audit_actions(&server);
    let names: Vec<&str> = actions.iter().map(|(a, ..)| a.as_str()).collect();
    assert_eq!(names, ["sign_in_refused", "sign_in", "sign_out"]);
    assert_eq!((actions[0].1.as_str(), actions[0].2.as_str()), ("anonymous", "tracer"));
    assert_eq!(actions[1].1, "tracer");
}

#[test]
fn administrators_manage_only_accounts_within_their_jurisdiction() {
    let server = TestServer::start();
    let mut store = server.store();
    let d1_admin = add_user_in(&mut *store, "d1-admin", Role::Admin, "D1");
    add_user_in(&mut *store, "d1-viewer", Role::Viewer, "D1");
    add_user_in(&mut *store, "d2-viewer", Role::Viewer, "D2");
    drop(store);
    let admin = Some(d1_admin.as_str());

    let (_, users) = json_of(server.call("get", "/api/v1/users", admin, None));
    let names: Vec<&str> = users.as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["d1-admin", "d1-viewer"], "not the city's accounts, not D2's");

    let new = |jurisdiction: &str| {
        json!({"name": format!("new-{jurisdiction}"), "role": "viewer", "unit": "U1", "jurisdiction": jurisdiction,
            "password": "a long enough password"})
    };
    assert_eq!(server.call("post", "/api/v1/users", admin, Some(&new("D1"))).status(), StatusCode::CREATED);
    for wider in ["C1", "D2"] {
        let (code, _) = error_of(server.call("post", "/api/v1/users", admin, Some(&new(wider))), StatusCode::FORBIDDEN);
        assert_eq!(code, "forbidden", "{wider}");
    }
    // Accounts outside read as absent, whatever the action.
    let outside = [
        ("/api/v1/users/d2-viewer:disable", None),
        ("/api/v1/users/tracer:reset-password", Some(json!({"password": "another long password"}))),
        ("/api/v1/users/d2-viewer/tokens", Some(json!({"label": "x"}))),
    ];
    for (path, body) in outside {
        let (code, _) = error_of(server.call("post", path, admin, body.as_ref()), StatusCode::NOT_FOUND);
        assert_eq!(code, "not_found", "{path}");
    }
    assert_eq!(server.call("post", "/api/v1/users/d1-viewer:disable", admin, None).status(), StatusCode::OK);
    assert!(server.store().user("d2-viewer").unwrap().is_some_and(|u| !u.disabled));

    // The audit trail: what the users of D1 did, not what the city's users did.
    let (_, persons) = json_of(server.call("get", "/api/v1/persons?personal=true", Some(&server.tracer), None));
    assert!(!persons["items"].as_array().unwrap().is_empty());
    let (_, trail) = json_of(server.call("get", "/api/v1/audit", admin, None));
    let actors: std::collections::BTreeSet<&str> =
        trail.as_array().unwrap().iter().map(|r| r["actor"].as_str().unwrap()).collect();
    assert_eq!(actors.into_iter().collect::<Vec<_>>(), ["d1-admin"], "{trail}");
    let (_, everything) =
        json_of(server.call("get", "/api/v1/audit?action=read_personal_data", Some(&server.admin), None));
    assert_eq!(everything.as_array().unwrap().len(), 2, "the city's admin sees the tracer's reads");
}

// ---------------------------------------------------------------- tracing

#[test]
fn tracing_over_http_finds_contacts_with_evidence_and_marks_other_jurisdictions() {
    let server = TestServer::start();
    // P1 (case K1, lives in D1) and P2 (lives in D2) at L1 together for an hour.
    let visits = json!({"visits": [visit("P1", "L1", json!("2022-03-03T08:00:00Z")),
        visit("P2", "L1", json!("2022-03-03T08:30:00Z"))]});
    let mut visits = visits;
    visits["visits"][0]["t_out"] = json!("2022-03-03T10:00:00Z");
    visits["visits"][1]["t_out"] = json!("2022-03-03T09:30:00Z");
    assert_eq!(server.post_json("/api/v1/visits:batch", &visits).status(), StatusCode::OK);

    let body = json!({"cases": ["K1"], "to": "2022-03-05T00:00:00Z"});
    let (status, report) = json_of(server.call("post", "/api/v1/trace", Some(&server.tracer), Some(&body)));
    assert_eq!(status, StatusCode::OK, "{report}");
    insta::assert_json_snapshot!("trace_report", report);
    let close = &report["tiers"][0]["contacts"];
    assert_eq!(close[0]["person_id"], "P2");
    assert_eq!(close[0]["evidence"][0]["overlap_minutes"], 60.0);
    assert!(close[0].get("outside_jurisdiction").is_none(), "the city's tracer sees every district");

    // A tracer of D1 traces their case; P2 lives in D2: a contact to hand over.
    let mut store = server.store();
    let d1 = add_user_in(&mut *store, "d1-tracer", Role::Tracer, "D1");
    drop(store);
    let (_, report) = json_of(server.call("post", "/api/v1/trace", Some(&d1), Some(&body)));
    assert_eq!(report["tiers"][0]["contacts"][0]["outside_jurisdiction"], true, "{report}");
    let (code, _) = error_of(
        server.call("post", "/api/v1/trace", Some(&d1), Some(&json!({"cases": ["K2"]}))),
        StatusCode::NOT_FOUND,
    );
    assert_eq!(code, "not_found");

    // New visits are seen by the next trace (the index follows the store).
    let more = json!({"visits": [{"person_id": "P1", "place_id": "L2", "t_in": "2022-03-04T08:00:00Z",
        "t_out": "2022-03-04T09:00:00Z"}, {"person_id": "P2", "place_id": "L2", "t_in": "2022-03-04T08:00:00Z",
        "t_out": "2022-03-04T09:00:00Z"}]});
    assert_eq!(server.post_json("/api/v1/visits:batch", &more).status(), StatusCode::OK);
    let (_, report) = json_of(server.call("post", "/api/v1/trace", Some(&server.tracer), Some(&body)));
    assert_eq!(report["tiers"][0]["contacts"][0]["exposures"], 2, "{report}");

    let (code, _) = error_of(
        server.call("post", "/api/v1/trace", Some(&server.tracer), Some(&json!({"cases": [], "depth": 3}))),
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(code, "invalid_argument");
}

// ---------------------------------------------------------------- contact proposals

/// P1 (case K1) and P2 (case K2) dine together at L1 on 3 March; each case is traced and
/// recorded apart: proposal 1 is K1's contact P2 (lives in D2), proposal 2 K2's contact P1 (D1).
fn record_k1_and_k2(server: &TestServer) {
    let dinner = json!({"visits": [
        {"person_id": "P1", "place_id": "L1", "t_in": "2022-03-03T12:00:00Z", "t_out": "2022-03-03T13:00:00Z"},
        {"person_id": "P2", "place_id": "L1", "t_in": "2022-03-03T12:00:00Z", "t_out": "2022-03-03T13:00:00Z"}]});
    assert_eq!(server.post_json("/api/v1/visits:batch", &dinner).status(), StatusCode::OK);
    for case in ["K1", "K2"] {
        let body = json!({"cases": [case], "rule": "venue-overlap", "record": true});
        let (status, answer) = json_of(server.call("post", "/api/v1/trace", Some(&server.tracer), Some(&body)));
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["recorded"]["proposed"], 1, "{answer}");
    }
}

#[test]
fn proposals_are_recorded_listed_decided_and_recomputed_over_http() {
    let server = TestServer::start_with(|c| c.recompute_every = None);
    let tracer = Some(server.tracer.as_str());
    record_k1_and_k2(&server);
    // Recording the same result again changes nothing.
    let body = json!({"cases": ["K1"], "rule": "venue-overlap", "record": true});
    let (_, answer) = json_of(server.call("post", "/api/v1/trace", tracer, Some(&body)));
    insta::assert_json_snapshot!("trace_recorded_again", answer["recorded"]);

    let (status, page) = json_of(server.call("get", "/api/v1/proposals?case=K1", tracer, None));
    assert_eq!(status, StatusCode::OK, "{page}");
    insta::assert_json_snapshot!("proposals_page", page);
    let (_, one) = json_of(server.call("get", "/api/v1/proposals/1", tracer, None));
    assert_eq!(one, page["items"][0]);
    assert_eq!((one["status"].as_str(), one["contact_id"].as_str()), (Some("proposed"), Some("P2")));

    // Decisions: a rejection needs a reason; a tracer of D1 cannot touch K1's contact P2 (D2).
    let decide =
        |token: &str, body: Value| server.call("post", "/api/v1/proposals/decisions", Some(token), Some(&body));
    let (code, _) =
        error_of(decide(&server.tracer, json!({"ids": [1], "decision": "reject"})), StatusCode::BAD_REQUEST);
    assert_eq!(code, "invalid_argument");
    let (code, location) =
        error_of(decide(&server.tracer, json!({"ids": [1], "decision": "maybe"})), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((code.as_str(), &location["json_path"]), ("input.invalid_field", &json!("$.decision")));
    let mut store = server.store();
    let d1 = add_user_in(&mut *store, "d1-tracer", Role::Tracer, "D1");
    drop(store);
    let (code, _) = error_of(decide(&d1, json!({"ids": [2, 1], "decision": "confirm"})), StatusCode::NOT_FOUND);
    assert_eq!(code, "not_found");
    assert_eq!(
        error_of(server.call("get", "/api/v1/proposals/1", Some(&d1), None), StatusCode::NOT_FOUND).0,
        "not_found"
    );
    let (status, decided) = json_of(decide(&d1, json!({"ids": [2], "decision": "confirm"})));
    assert_eq!(status, StatusCode::OK, "{decided}");
    let (status, decided) =
        json_of(decide(&server.tracer, json!({"ids": [1], "decision": "reject", "reason": "a glass wall between"})));
    assert_eq!(status, StatusCode::OK, "{decided}");
    insta::assert_json_snapshot!("proposals_decided", decided);
    let (_, confirmed) = json_of(server.call("get", "/api/v1/proposals?status=confirmed", tracer, None));
    assert_eq!(item_ids(&confirmed), ["P1"]);
    // The confirmed contact has their measure episode, confirmed, owned by the deciding user's
    // unit; the rejected one has none.
    let (_, episodes) = json_of(server.call("get", "/api/v1/episodes", tracer, None));
    let opened: Vec<(&str, &str, &str)> = episodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["person_id"].as_str().unwrap(), e["state"].as_str().unwrap(), e["owner_unit"].as_str().unwrap()))
        .collect();
    assert_eq!(opened, [("P1", "confirmed", "U1")]);
    let path = format!("/api/v1/episodes/{}", episodes["items"][0]["id"].as_str().unwrap());
    let (_, episode) = json_of(server.call("get", &path, tracer, None));
    assert_eq!(episode["reasons"][0]["evidence"], "proposal:2", "the episode names the proposal behind it");
    let (_, page) = json_of(server.call("get", "/api/v1/proposals?limit=1", tracer, None));
    assert_eq!(page["next"], "1");
    let (_, page) = json_of(server.call("get", "/api/v1/proposals?limit=1&after=1", tracer, None));
    assert_eq!(item_ids(&page), ["P1"]);
    for bad in ["/api/v1/proposals?status=maybe", "/api/v1/proposals?after=x", "/api/v1/proposals/x"] {
        assert_eq!(
            error_of(server.call("get", bad, tracer, None), StatusCode::BAD_REQUEST).0,
            "invalid_argument",
            "{bad}"
        );
    }
    let audit = server.store().audit_records(0, 1000, &Default::default()).unwrap();
    let reject = audit.iter().find(|r| r.action == "proposal_reject").expect("audited");
    assert_eq!((reject.actor.as_str(), reject.record.as_str()), ("tracer", "1"));
    assert_eq!(reject.reason.as_deref(), Some("a glass wall between"));

    // A late visit: they met again. The background recompute after the batch flags the
    // rejected proposal (its evidence changed) without undoing the rejection.
    let late = json!({"visits": [
        {"person_id": "P1", "place_id": "L2", "t_in": "2022-03-04T12:00:00Z", "t_out": "2022-03-04T13:00:00Z"},
        {"person_id": "P2", "place_id": "L2", "t_in": "2022-03-04T12:00:00Z", "t_out": "2022-03-04T13:00:00Z"}]});
    assert_eq!(server.post_json("/api/v1/visits:batch", &late).status(), StatusCode::OK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let one = loop {
        let (_, one) = json_of(server.call("get", "/api/v1/proposals/1", tracer, None));
        if one["changed_since_decision"] == true {
            break one;
        }
        assert!(std::time::Instant::now() < deadline, "the recompute did not run: {one}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!((one["status"].as_str(), one["exposures"].as_u64()), (Some("rejected"), Some(2)), "{one}");
    assert_eq!(one["decision_reason"], "a glass wall between");
}

// ---------------------------------------------------------------- closed-loop management

/// The body opening episode `id` for `person` as a close contact of K1.
fn open_body(id: &str, person: &str) -> Value {
    json!({"id": id, "person_id": person, "category": "close", "source": "K1",
        "exposure": "2022-03-03T12:00:00Z", "owner_unit": "U1"})
}

/// Facility F1 (rooms 101, 102) and episodes E1 (P1, in D1) and E2 (P2, in D2), confirmed.
fn open_e1_and_e2(server: &TestServer) {
    let mut store = server.store();
    let mut batch = store.begin(now()).unwrap();
    let room = |id: &str| chainbreak_store::RoomRow { id: id.into(), capacity: 1, state: "clean".into() };
    batch
        .put_facilities(&[chainbreak_store::FacilityRow {
            id: "F1".into(),
            name: "Hotel".into(),
            area: Some("D1".into()),
            rooms: vec![room("101"), room("102")],
        }])
        .unwrap();
    batch.commit().unwrap();
    drop(store);
    for (id, person) in [("E1", "P1"), ("E2", "P2")] {
        let (status, body) =
            json_of(server.call("post", "/api/v1/episodes", Some(&server.tracer), Some(&open_body(id, person))));
        assert_eq!((status, &body["state"]), (StatusCode::OK, &json!("confirmed")), "{body}");
    }
}

#[test]
fn episodes_go_through_the_loop_over_http() {
    let server = TestServer::start();
    open_e1_and_e2(&server);
    let mut store = server.store();
    let manager = add_user_with_token(&mut *store, "manager", Role::FacilityManager);
    drop(store);
    let call = |method: &str, path: &str, body: Option<Value>| {
        json_of(server.call(method, path, Some(&manager), body.as_ref()))
    };
    let step = |body: Value| call("post", "/api/v1/episodes/E1/transitions", Some(body));

    assert_eq!(step(json!({"action": "notify"})).0, StatusCode::OK);
    let (status, moved) = step(json!({"action": "transfer", "facility": "F1", "room": "", "note": "bus 3"}));
    assert_eq!(status, StatusCode::OK, "{moved}");
    insta::assert_json_snapshot!("episode_transferred", moved);
    assert_eq!(step(json!({"action": "start"})).0, StatusCode::OK);

    // Refused, with the reason: release before the measure's end; a second transfer.
    let (status, refused) = step(json!({"action": "release"}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("release refused"), "{refused}");
    let (status, _) = step(json!({"action": "transfer", "facility": "F1", "room": "102"}));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = step(json!({"action": "fly"}));
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, episode) = call("get", "/api/v1/episodes/E1", None);
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!("episode", episode);
    let (_, page) = call("get", "/api/v1/episodes?state=in_measure", None);
    assert_eq!(item_ids(&page), ["E1"]);
    let (_, page) = call("get", "/api/v1/episodes?facility=F1&limit=1", None);
    assert_eq!((item_ids(&page), &page["next"]), (vec!["E1".to_string()], &json!("E1")));
    let (status, _) = call("get", "/api/v1/episodes?state=asleep", None);
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, facilities) = call("get", "/api/v1/facilities", None);
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!("facilities", facilities);

    // A positive test: converted, the room left to disinfect, then clean.
    let (_, converted) = step(json!({"action": "test", "taken_at": "2022-03-05T00:00:00Z", "result": "positive"}));
    // ...and the person's own isolation is proposed in the same batch, named by the effects.
    let isolation = converted["effects"][1].as_str().unwrap().strip_prefix("isolation:").unwrap().to_string();
    assert_eq!(converted["effects"][0], json!("suspected_case:P1:2022-03-05T00:00:00Z"), "{converted}");
    let r = server.call("post", "/api/v1/facilities/F1/rooms/101/disinfected", Some(&manager), None);
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = server.call("post", "/api/v1/facilities/F1/rooms/101/disinfected", Some(&manager), None);
    assert_eq!(error_of(r, StatusCode::BAD_REQUEST).0, "invalid_argument", "clean already");

    // Reported as a case (category `case`): the proposed isolation is confirmed, not duplicated,
    // and must see the person transferred within 2 h.
    let case = json!({"person_id": "P1", "category": "case", "source": "K1", "exposure": "2022-03-04T20:00:00Z",
        "owner_unit": "U1", "evidence": "case K1"});
    let (status, opened) = json_of(server.call("post", "/api/v1/episodes", Some(&server.tracer), Some(&case)));
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(
        (&opened["episode_id"], &opened["state"], &opened["deadline"]),
        (&json!(isolation), &json!("confirmed"), &json!("2022-03-05T02:00:00Z"))
    );
    let path = format!("/api/v1/episodes/{isolation}/transitions");
    let step = |body: Value| call("post", &path, Some(body));
    for body in [
        json!({"action": "notify"}),
        json!({"action": "transfer", "facility": "F1", "room": ""}),
        json!({"action": "start"}),
        json!({"action": "test", "taken_at": "2022-03-03T01:00:00Z", "result": "negative"}),
    ] {
        let (status, moved) = step(body);
        assert_eq!(status, StatusCode::OK, "{moved}");
    }
    // Discharge: not by days (`release` is refused), not with one negative test, and only by
    // the roles that may discharge (not a community worker, not a tracer).
    let (status, refused) = step(json!({"action": "release"}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let discharge = json!({"action": "discharge", "criteria": "afebrile for 3 days, symptoms improved",
        "note": "ward round"});
    let (status, refused) = step(discharge.clone());
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("discharge refused"), "{refused}");
    assert_eq!(
        step(json!({"action": "test", "taken_at": "2022-03-04T02:00:00Z", "result": "negative"})).0,
        StatusCode::OK
    );
    let mut store = server.store();
    let worker = add_user_with_token(&mut *store, "worker", Role::CommunityWorker);
    drop(store);
    for token in [&worker, &server.tracer] {
        let r = server.call("post", &path, Some(token), Some(&discharge));
        assert_eq!(error_of(r, StatusCode::FORBIDDEN).0, "forbidden");
    }
    let (status, discharged) = step(discharge);
    assert_eq!((status, &discharged["state"]), (StatusCode::OK, &json!("released")), "{discharged}");
    let (_, episode) = call("get", &format!("/api/v1/episodes/{isolation}"), None);
    insta::assert_json_snapshot!("episode_discharged", episode);
}

// ---------------------------------------------------------------- surveillance

/// Alert 1 (at L1, in D1) and 2 (at L2, in D2); review items 1 (D1) and 2 (D2).
/// The zones of cases K1 (P1, district D1) and K2 (P2, D2), proposed: the fixture has no
/// compounds, so each case's county is its zone (`area:D1:1`, `area:D2:1`), low.
fn seed_zones(server: &TestServer) {
    let clock = Arc::new(ManualClock::new(now()));
    let mut dep = chainbreak_app::Deployment::new(server.store(), clock).unwrap();
    let actor = Actor { name: "fixture".into(), via: "test".into(), reason: None };
    let done = chainbreak_app::zones::record(&mut dep, &actor, None, &["K1".into(), "K2".into()]).unwrap();
    for zone in ["area:D1:1", "area:D2:1"] {
        assert!(done.proposed.iter().any(|z| z == zone), "{done:?}");
    }
}

/// Goods batch GB1; the responses to environment samples ENV1 at L1 (D1) and ENV2 at L2 (D2);
/// a food request of P1 and of P2 (under E1 and E2, whose measures end at home), filed at `now()`.
fn seed_goods_and_requests(server: &TestServer) {
    use chainbreak_app::goods::{GoodsResponse, PlaceToSeal, PositiveSample};
    let mut store = server.store();
    let mut batch = store.begin(now()).unwrap();
    batch
        .put_goods_batches(&[chainbreak_core::model::GoodsBatch {
            id: "GB1".into(),
            product: "frozen shrimp".into(),
            origin_country: "EC".into(),
            plant: Some("EC-PLANT-1".into()),
            port: None,
            entry_date: None,
            inspection_cert: None,
            test_cert: None,
            disinfection_cert: None,
            trace_code: None,
            parent_batch_id: None,
        }])
        .unwrap();
    for (sample, place) in [("ENV1", "L1"), ("ENV2", "L2")] {
        let response = GoodsResponse {
            sample: PositiveSample {
                id: format!("lab_test:{sample}"),
                kind: SubjectKind::Environment,
                subject: place.into(),
                sampled_at: now(),
                positive_at: now(),
            },
            recall: vec![],
            plants: vec![],
            sibling_batches: vec![],
            places_to_seal: vec![PlaceToSeal {
                place: place.into(),
                batches: vec![],
                last_holder: true,
                exposed_from: now(),
                exposed_to: now(),
            }],
            workers: vec![],
            suspensions: vec![],
            notes: vec![],
            responded_at: now(),
        };
        let row = chainbreak_store::GoodsResponseRow {
            id: response.sample.id.clone(),
            subject_kind: "environment".into(),
            subject: place.into(),
            positive_at: now(),
            place_id: Some(place.into()),
            response: serde_json::to_string(&response).unwrap(),
            created_at: now(),
        };
        assert!(batch.put_goods_response(&row).unwrap());
    }
    batch.commit().unwrap();
    let mut dep = chainbreak_app::Deployment::new(store, Arc::new(ManualClock::new(now()))).unwrap();
    for person in ["P1", "P2"] {
        let new = chainbreak_app::requests::NewRequest {
            person_id: person.into(),
            kind: chainbreak_core::profile::RequestKind::Food,
            priority: None,
            owner_unit: None,
            note: None,
        };
        let filed = chainbreak_app::requests::file(&mut dep, &fixture_actor(), None, new).unwrap();
        assert_eq!(filed.row.id, format!("SR-{person}-1646438400"));
    }
}

fn seed_alerts(server: &TestServer) {
    use chainbreak_store::{AlertKind, AlertRow, ReviewItem, ReviewStatus};
    let mut store = server.store();
    let mut batch = store.begin(now()).unwrap();
    let alert = |key: &str, place: &str| AlertRow {
        id: 0,
        kind: AlertKind::Manual,
        state: chainbreak_core::model::AlertState::New,
        key: key.into(),
        summary: format!("at {place}"),
        owner_unit: None,
        area_id: None,
        place_id: Some(place.into()),
        person_id: None,
        subject: None,
        details: "{}".into(),
        outcome: None,
        raised_at: now(),
        updated_at: now(),
    };
    let ids = batch.raise_alerts(&[alert("m1", "L1"), alert("m2", "L2")], "fixture").unwrap();
    assert_eq!(ids, [Some(1), Some(2)]);
    let item = |area: &str, score: f64| ReviewItem {
        id: 0,
        series: format!("{area}/pharmacy/-/daily"),
        area_id: Some(area.into()),
        feed: "pharmacy".into(),
        category: None,
        frequency: "daily".into(),
        period: "2022-03-04".into(),
        method: "ears_c2".into(),
        observed: 30.0,
        expected: Some(10.0),
        upperbound: 20.0,
        score,
        status: ReviewStatus::Pending,
        decided_by: None,
        decided_at: None,
        reason: None,
        alert_id: None,
        created_at: now(),
    };
    assert_eq!(batch.queue_review_items(&[item("D1", 0.5), item("D2", 0.7)]).unwrap(), [Some(1), Some(2)]);
    batch.commit().unwrap();
}

/// Daily pharmacy reports at `place` from 2022-02-10 to `last`, 10 to 12 a day, and `spike` on
/// the last day.
fn pharmacy_reports(place: &str, last: &str, spike: u32) -> Value {
    let mut rows = Vec::new();
    let mut day: jiff::civil::Date = "2022-02-10".parse().unwrap();
    let end: jiff::civil::Date = last.parse().unwrap();
    while day <= end {
        let count = if day == end { spike } else { 10 + (day.day() as u32) % 3 };
        rows.push(json!({"place_id": place, "feed": "pharmacy", "category": "antipyretic", "date": day.to_string(),
            "count": count}));
        day = day.tomorrow().unwrap();
    }
    json!({"sentinel": rows})
}

#[test]
fn surveillance_over_http() {
    let server = TestServer::start_with(|c| c.detect_every = None);
    let mut store = server.store();
    let epi = add_user_with_token(&mut *store, "epi", Role::Epidemiologist);
    let epi_d2 = add_user_in(&mut *store, "epi-d2", Role::Epidemiologist, "D2");
    // P3 lives in D1 and, unlike P1 and P2, is no case yet.
    let mut batch = store.begin(now()).unwrap();
    batch.put_persons(&[person("P3", "H1")]).unwrap();
    batch.commit().unwrap();
    drop(store);
    let as_epi =
        |method: &str, path: &str, body: Option<Value>| json_of(server.call(method, path, Some(&epi), body.as_ref()));

    // A positive opens a suspected case and raises an alert, with the batch.
    let mut positive = lab_test("T9", "P3");
    positive["result"] = json!("positive");
    positive["reported_at"] = json!("2022-03-04T22:00:00Z");
    let (status, report) = json_of(server.post_json("/api/v1/lab-tests:batch", &json!({"lab_tests": [positive]})));
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!((&report["suspected_cases"], &report["alerts"]), (&json!(["S-T9"]), &json!([1])));
    let (_, case) = as_epi("get", "/api/v1/cases/S-T9", None);
    assert_eq!((&case["classification"], &case["person_id"]), (&json!("suspected"), &json!("P3")));

    // A refused batch (an unknown person after a positive) leaves cases and alerts as they were.
    let before = (server.store().count(Entity::Case).unwrap(), server.store().count(Entity::Alert).unwrap());
    let mut second = lab_test("T10", "P2");
    second["result"] = json!("positive");
    let refused = json!({"lab_tests": [second, lab_test("T11", "NOBODY")]});
    let (code, location) =
        error_of(server.post_json("/api/v1/lab-tests:batch", &refused), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (code.as_str(), &location["json_path"]),
        ("input.unknown_reference", &json!("$.lab_tests[1].subject_id"))
    );
    let bad_sentinel = json!({"sentinel": [{"place_id": "L2", "feed": "environment", "date": "2022-03-04", "count": 5,
        "positives": 1}, {"place_id": "L2", "feed": "environment", "date": "2022-03-05", "count": 1, "positives": 2}]});
    let (code, location) =
        error_of(server.post_json("/api/v1/sentinel:batch", &bad_sentinel), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((code.as_str(), &location["json_path"]), ("input.inconsistent", &json!("$.sentinel[1].positives")));
    assert_eq!((server.store().count(Entity::Case).unwrap(), server.store().count(Entity::Alert).unwrap()), before);

    // Triage, with the case's response clock.
    let (status, alert) = as_epi("get", "/api/v1/alerts/1", None);
    assert_eq!(status, StatusCode::OK, "{alert}");
    insta::assert_json_snapshot!("alert_positive_person", alert);
    let (status, clock) = as_epi(
        "post",
        "/api/v1/cases/S-T9/clock",
        Some(json!({"event": "case_reported", "at": "2022-03-04T23:00:00Z"})),
    );
    assert_eq!(status, StatusCode::OK, "{clock}");
    let reported = clock.as_array().unwrap().iter().find(|c| c["item"] == "case_reported").unwrap();
    assert_eq!((&reported["stopped_at"], &reported["late"]), (&json!("2022-03-04T23:00:00Z"), &json!(false)));
    let trail = clock.as_array().unwrap().iter().find(|c| c["item"] == "core_trail_signed_off").unwrap();
    assert_eq!(trail["due_at"], "2022-03-05T03:00:00Z", "4 hours from the report");
    let (status, _) = as_epi("post", "/api/v1/cases/S-T9/clock", Some(json!({"event": "lunch"})));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, refusal) = as_epi("post", "/api/v1/alerts/1/transitions", Some(json!({"action": "investigate"})));
    assert_eq!((status, &refusal["error"]["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_argument")), "{refusal}");
    assert!(refusal["error"]["message"].as_str().unwrap().contains("acknowledge the alert first"), "{refusal}");
    for body in [
        json!({"action": "acknowledge", "owner_unit": "CDC", "note": "taking it"}),
        json!({"action": "investigate"}),
        json!({"action": "close", "outcome": "confirmed", "note": "case reported"}),
    ] {
        let (status, moved) = as_epi("post", "/api/v1/alerts/1/transitions", Some(body));
        assert_eq!(status, StatusCode::OK, "{moved}");
    }
    let (status, _) = as_epi("post", "/api/v1/alerts/1/transitions", Some(json!({"action": "acknowledge"})));
    assert_eq!(status, StatusCode::BAD_REQUEST, "closed stays closed");
    let (_, closed) = as_epi("get", "/api/v1/alerts/1", None);
    insta::assert_json_snapshot!("alert_closed", closed["history"]);
    let (_, open) = as_epi("get", "/api/v1/alerts?open=true", None);
    assert!(open["items"].as_array().unwrap().is_empty(), "{open}");
    let (status, _) = json_of(server.call(
        "post",
        "/api/v1/alerts/1/transitions",
        Some(&server.tracer),
        Some(&json!({"action": "comment", "note": "x"})),
    ));
    assert_eq!(status, StatusCode::FORBIDDEN, "a tracer does not triage");

    // Sentinel feeds: L1 (D1) reports daily with a spike today's eve; L2 (D2) stopped on 28 Feb.
    for body in [pharmacy_reports("L1", "2022-03-04", 60), pharmacy_reports("L2", "2022-02-28", 11)] {
        let (status, report) = json_of(server.post_json("/api/v1/sentinel:batch", &body));
        assert_eq!(status, StatusCode::OK, "{report}");
    }
    let cold = json!({"sentinel": [{"place_id": "L2", "feed": "cold_chain", "date": "2022-03-04", "category": "surface",
        "count": 8, "positives": 1}]});
    let (_, report) = json_of(server.post_json("/api/v1/sentinel:batch", &cold));
    assert_eq!(report["alerts"], json!([2]), "{report}");

    let (_, series) = as_epi("get", "/api/v1/series?place=L1", None);
    assert_eq!(series["error"]["code"], "invalid_argument", "unknown parameters are refused: {series}");
    let (status, series) = as_epi("get", "/api/v1/series?area=D1&feed=pharmacy&frequency=daily&from=2022-02-25", None);
    assert_eq!(status, StatusCode::OK, "{series}");
    insta::assert_json_snapshot!("series_daily", series);
    let (_, silent) = as_epi("get", "/api/v1/sentinels/silent", None);
    insta::assert_json_snapshot!("sentinels_silent", silent);

    let (status, run) = as_epi("post", "/api/v1/detect/runs", None);
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!((&run["queued"], &run["silent_alerts"]), (&json!(1), &json!(1)), "{run}");
    let (_, again) = as_epi("post", "/api/v1/detect/runs", None);
    assert_eq!((&again["queued"], &again["silent_alerts"]), (&json!(0), &json!(0)), "once per period and silence");
    let (_, queue) = as_epi("get", "/api/v1/review-queue", None);
    insta::assert_json_snapshot!("review_queue", queue);
    let id = queue["items"][0]["id"].as_i64().unwrap();
    let decision = json!({"decision": "escalate", "reason": "real rise"});
    let (status, _) =
        json_of(server.call("post", &format!("/api/v1/review-queue/{id}/decision"), Some(&epi_d2), Some(&decision)));
    assert_eq!(status, StatusCode::NOT_FOUND, "a D1 alarm is absent to D2");
    let (status, decided) = as_epi("post", &format!("/api/v1/review-queue/{id}/decision"), Some(decision.clone()));
    assert_eq!((status, &decided["status"]), (StatusCode::OK, &json!("escalated")), "{decided}");
    let (status, _) = as_epi("post", &format!("/api/v1/review-queue/{id}/decision"), Some(decision));
    assert_eq!(status, StatusCode::BAD_REQUEST, "decided once");
    let (_, aberration) = as_epi("get", &format!("/api/v1/alerts/{}", decided["alert_id"]), None);
    assert_eq!(aberration["kind"], "aberration");
    let (_, d2_alerts) = json_of(server.call("get", "/api/v1/alerts", Some(&epi_d2), None));
    let kinds: Vec<&str> = d2_alerts["items"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["goods_positive", "silent_sentinel"], "{d2_alerts}");

    let (status, rt) = as_epi("get", "/api/v1/rt?to=2022-03-05", None);
    assert_eq!(status, StatusCode::OK, "{rt}");
    insta::assert_json_snapshot!("rt", rt);
}

/// A cold chain in D1: batch GB1 of plant EC-PLANT-1 comes to the cold store W1 on 1 March, is
/// repacked into GB1-A on the 2nd, which goes to the restaurant L1 on the 3rd. P3 works at W1;
/// P1 ate at L1 on the 3rd (after the goods came), P2 on the 2nd (before).
fn seed_cold_chain(server: &TestServer) {
    use chainbreak_core::model::{GoodsBatch, GoodsHop, HopKind, StaffMember};
    let mut store = server.store();
    let mut batch = store.begin(now()).unwrap();
    batch.put_places(&[Place { kind: PlaceKind::ColdChainWarehouse, area: Some("D1".into()), ..place("W1") }]).unwrap();
    batch.put_persons(&[person("P3", "H1")]).unwrap();
    batch
        .put_staff(&[StaffMember { place_id: "W1".into(), person_id: "P3".into(), role: Some("porter".into()) }])
        .unwrap();
    let goods = |id: &str, plant: Option<&str>, parent: Option<&str>| GoodsBatch {
        id: id.into(),
        product: "frozen shrimp".into(),
        origin_country: "EC".into(),
        plant: plant.map(Into::into),
        port: Some("Tianjin".into()),
        entry_date: Some(jiff::civil::date(2022, 3, 1)),
        inspection_cert: None,
        test_cert: None,
        disinfection_cert: None,
        trace_code: None,
        parent_batch_id: parent.map(Into::into),
    };
    batch.commit().unwrap();
    drop(store);
    // The goods registry over HTTP: a hop naming an unknown batch is refused at its path, and
    // nothing of the request is written.
    let hop = |b: &str, from: Option<&str>, to: &str, d: i8| GoodsHop {
        batch_id: b.into(),
        kind: HopKind::Transfer,
        from_place: from.map(Into::into),
        to_place: Some(to.into()),
        to_batch_id: None,
        date: jiff::civil::date(2022, 3, d),
        quantity: None,
    };
    let batches = [goods("GB1", Some("EC-PLANT-1"), None), goods("GB1-A", None, Some("GB1"))];
    let bad = json!({"batches": batches, "hops": [hop("GB1", None, "W1", 1), hop("GB9", Some("W1"), "L1", 3)]});
    let (code, location) = error_of(server.post_json("/api/v1/goods:batch", &bad), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((code.as_str(), &location["json_path"]), ("input.unknown_reference", &json!("$.hops[1].batch_id")));
    assert_eq!(server.store().goods().unwrap().0.len(), 0, "all or nothing");
    let good = json!({"batches": batches, "hops": [hop("GB1", None, "W1", 1), hop("GB1-A", Some("W1"), "L1", 3)]});
    let (status, report) = json_of(server.post_json("/api/v1/goods:batch", &good));
    assert_eq!((status, &report["accepted"]), (StatusCode::OK, &json!(4)), "{report}");
    let visits = json!({"visits": [
        {"person_id": "P1", "place_id": "L1", "t_in": "2022-03-03T12:00:00Z", "t_out": "2022-03-03T13:00:00Z"},
        {"person_id": "P2", "place_id": "L1", "t_in": "2022-03-02T04:00:00Z", "t_out": "2022-03-02T05:00:00Z"}]});
    assert_eq!(server.post_json("/api/v1/visits:batch", &visits).status(), StatusCode::OK);
}

#[test]
fn a_positive_cold_chain_sample_over_http_gives_the_recall_list_sealed_places_workers_episodes_and_suspension() {
    let server = TestServer::start();
    seed_cold_chain(&server);
    let sample = json!({"lab_tests": [{"id": "G1", "subject_kind": "goods", "subject_id": "GB1", "method": "pcr",
        "result": "positive", "sampled_at": "2022-03-04T02:00:00Z", "reported_at": "2022-03-04T10:00:00Z"}]});
    let (status, report) = json_of(server.post_json("/api/v1/lab-tests:batch", &sample));
    assert_eq!(status, StatusCode::OK, "{report}");
    let response = &report["goods_responses"][0];
    assert_eq!(response["recall"], json!(["GB1", "GB1-A"]));
    let sealed: Vec<(&str, bool)> = response["places_to_seal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["place"].as_str().unwrap(), p["last_holder"].as_bool().unwrap()))
        .collect();
    assert_eq!(sealed, [("L1", true), ("W1", false)]);
    let workers: Vec<(&str, &str)> = response["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["person_id"].as_str().unwrap(), w["evidence"][0]["via"].as_str().unwrap()))
        .collect();
    assert_eq!(workers, [("P1", "visit"), ("P3", "staff")], "not P2, who ate there before the goods came");
    assert_eq!(
        response["suspensions"][0].as_object().map(|s| (
            s["plant"].clone(),
            s["nth"].clone(),
            s["from"].clone(),
            s["until"].clone()
        )),
        Some((json!("EC-PLANT-1"), json!(1), json!("2022-03-04"), json!("2022-03-11")))
    );
    insta::assert_json_snapshot!("goods_response", response);

    // The same over the reads: the response, the workers' proposed episodes with the goods as
    // their reason, the suspension in force and its alert.
    let (status, stored) =
        json_of(server.call("get", "/api/v1/goods/responses/lab_test:G1", Some(&server.tracer), None));
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["workers"], response["workers"]);
    for w in response["workers"].as_array().unwrap() {
        let id = w["episode_id"].as_str().unwrap();
        let (status, ep) = json_of(server.call("get", &format!("/api/v1/episodes/{id}"), Some(&server.tracer), None));
        assert_eq!(status, StatusCode::OK, "{ep}");
        assert_eq!((&ep["state"], &ep["category"]), (&json!("proposed"), &json!("co_exposed")), "{ep}");
        assert_eq!(ep["reasons"][0]["source"], "goods:lab_test:G1", "{ep}");
    }
    let (_, list) = json_of(server.call("get", "/api/v1/goods/suspensions?in_force=true", Some(&server.tracer), None));
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["plant"], "EC-PLANT-1");
    let (_, alerts) =
        json_of(server.call("get", "/api/v1/alerts?kind=supplier_suspension", Some(&server.tracer), None));
    assert_eq!(alerts["items"].as_array().map(Vec::len), Some(1), "{alerts}");

    // The batch traced by a user of D2: the places in D1 are not theirs to see.
    let mut store = server.store();
    let d2 = add_user_in(&mut *store, "epi-d2", Role::Epidemiologist, "D2");
    drop(store);
    let (status, trace) = json_of(server.call("get", "/api/v1/goods/batches/GB1/trace", Some(&d2), None));
    assert_eq!(status, StatusCode::OK, "{trace}");
    assert_eq!(
        (&trace["downstream"]["batches"], &trace["downstream"]["places"]),
        (&json!(["GB1", "GB1-A"]), &json!([]))
    );
    let (_, trace) = json_of(server.call("get", "/api/v1/goods/batches/GB1/trace", Some(&server.tracer), None));
    assert_eq!(trace["workers"][0]["person_id"], "P3");
    // Asking again by hand responds to nothing new.
    let (status, again) = json_of(server.call(
        "post",
        "/api/v1/goods/responses",
        Some(&server.tracer),
        Some(&json!({"lab_test_id": "G1"})),
    ));
    assert_eq!((status, again), (StatusCode::OK, Value::Null));
}

#[test]
fn service_requests_are_filed_moved_and_closed_only_with_an_outcome_over_http() {
    let server = TestServer::start();
    open_e1_and_e2(&server);
    let mut store = server.store();
    let worker = add_user_in(&mut *store, "cw-d1", Role::CommunityWorker, "D1");
    drop(store);
    let call = |method: &str, path: &str, body: Option<Value>| {
        json_of(server.call(method, path, Some(&worker), body.as_ref()))
    };
    let (status, filed) = call("post", "/api/v1/requests", Some(json!({"person_id": "P1", "kind": "dialysis"})));
    assert_eq!(status, StatusCode::OK, "{filed}");
    // Urgent by default, within the hour; owned by the unit of P1's measure.
    assert_eq!(
        (&filed["priority"], &filed["due"], &filed["owner_unit"]),
        (&json!("urgent"), &json!("2022-03-05T01:00:00Z"), &json!("U1"))
    );
    insta::assert_json_snapshot!("service_request", filed);
    let (status, e) = call("post", "/api/v1/requests", Some(json!({"person_id": "P1", "kind": "helicopter"})));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (status, _) = call("post", "/api/v1/requests", Some(json!({"person_id": "P2", "kind": "food"})));
    assert_eq!(status, StatusCode::NOT_FOUND, "P2 lives in D2");
    let id = filed["id"].as_str().unwrap();
    let act = |body: Value| call("post", &format!("/api/v1/requests/{id}/actions"), Some(body));
    let (status, e) = act(json!({"action": "close"}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("only with an outcome"), "{e}");
    let (status, e) = act(json!({"action": "close", "outcome": "unfulfilled"}));
    assert_eq!(status, StatusCode::BAD_REQUEST, "an unfulfilled request says why: {e}");
    assert_eq!(act(json!({"action": "accept"})).0, StatusCode::OK);
    // The board and the zone page list it, in either language.
    let r = server
        .client
        .post(server.url("/api/v1/sessions"))
        .json(&json!({"name": "cw-d1", "password": "a long enough password"}))
        .send()
        .unwrap();
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    for (page, text) in [("/board?lang=en", "Dialysis"), ("/zones?lang=zh-CN", "透析")] {
        let html = with_cookie(&server, "get", page, &cookie, None).text().unwrap();
        let row = html.split(&format!(r#"data-request="{id}""#)).nth(1).unwrap_or_else(|| panic!("{page}: {html}"));
        let row = row.split("</tr>").next().unwrap();
        assert!(row.contains(text) && row.contains("P1") && row.contains("2022-03-05T01:00:00Z"), "{page}: {row}");
    }
    let (status, open) = call("get", "/api/v1/requests?open=true", None);
    assert_eq!((status, open["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{open}");
    assert_eq!(open["items"][0]["state"], "in_progress");
    let (status, closed) = act(json!({"action": "close", "outcome": "fulfilled", "note": "at the dialysis centre"}));
    assert_eq!((status, &closed["state"], &closed["outcome"]), (StatusCode::OK, &json!("closed"), &json!("fulfilled")));
    assert_eq!(act(json!({"action": "accept"})).0, StatusCode::BAD_REQUEST, "closed stays closed");
    let (_, detail) = call("get", &format!("/api/v1/requests/{id}"), None);
    let actions: Vec<&str> =
        detail["history"].as_array().unwrap().iter().map(|h| h["event"]["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["file", "accept", "close"]);
    let (_, open) = call("get", "/api/v1/requests?open=true", None);
    assert_eq!(open["items"], json!([]));
    let board = with_cookie(&server, "get", "/board?lang=en", &cookie, None).text().unwrap();
    assert!(board.contains("No open service request.") && !board.contains("data-request="), "closed: off the board");
    let (status, escalated) = call("post", "/api/v1/requests/escalations", None);
    assert_eq!((status, escalated), (StatusCode::OK, json!([])), "nothing late");
}

#[test]
fn zones_over_http() {
    let server = TestServer::start();
    let visits = json!({"visits": [visit("P1", "L1", json!(1646208000)), visit("P2", "L2", json!(1646208000))]});
    assert_eq!(server.post_json("/api/v1/visits:batch", &visits).status(), StatusCode::OK);
    let mut store = server.store();
    let commander = add_user_in(&mut *store, "cmdr-d1", Role::Commander, "D1");
    drop(store);
    seed_zones(&server);
    let call = |method: &str, path: &str, body: Option<Value>| {
        json_of(server.call(method, path, Some(&commander), body.as_ref()))
    };
    // K1 stayed at L1 (a restaurant in D1): a medium zone there; its county D1 low.
    let (status, page) = call("get", "/api/v1/zones?open=true", None);
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(item_ids(&page), ["area:D1:1", "place:L1:1"], "D1's zones only");
    let (status, bad) = call("get", "/api/v1/zones?level=severe", None);
    assert_eq!((status, bad["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_argument")));
    // Proposing again changes nothing; a case of D2 is outside the commander's jurisdiction.
    let (status, again) = call("post", "/api/v1/zones:propose", Some(json!({"case_ids": ["K1"]})));
    assert_eq!((status, again["proposed"].clone(), again["updated"].clone()), (StatusCode::OK, json!([]), json!([])));
    let (status, _) = call("post", "/api/v1/zones:propose", Some(json!({"case_ids": ["K2"]})));
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Decisions: a rejection needs a note; D2's zone reads as absent.
    let decide = |id: &str, body: Value| call("post", &format!("/api/v1/zones/{id}/decision"), Some(body));
    assert_eq!(decide("place:L1:1", json!({"decision": "reject"})).0, StatusCode::BAD_REQUEST);
    assert_eq!(decide("area:D2:1", json!({"decision": "confirm"})).0, StatusCode::NOT_FOUND);
    let (status, confirmed) = decide("place:L1:1", json!({"decision": "confirm", "note": "K1 dined there"}));
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!((confirmed["status"].as_str(), confirmed["since"].as_str()), (Some("confirmed"), Some("2022-03-05")));
    assert_eq!(decide("place:L1:1", json!({"decision": "confirm"})).0, StatusCode::BAD_REQUEST, "confirmed once");
    // A round; the commander's role may not enter one (ingest), a tracer may.
    let round = json!({"on": "2022-03-05", "tested": 12, "positives": 0, "completed_at": "2022-03-05T10:00:00Z"});
    assert_eq!(call("post", "/api/v1/zones/place:L1:1/rounds", Some(round.clone())).0, StatusCode::FORBIDDEN);
    let r = server.call("post", "/api/v1/zones/place:L1:1/rounds", Some(&server.tracer), Some(&round));
    assert_eq!(r.status(), StatusCode::OK);
    let (status, review) = call("post", "/api/v1/zones/review", Some(json!({})));
    assert_eq!((status, review["today"].as_str()), (StatusCode::OK, Some("2022-03-05")), "{review}");
    let (status, zone) = call("get", "/api/v1/zones/place:L1:1", None);
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!("zone", zone);
    // The public sees only the zone in force, without a token, and no case.
    let (status, public) = json_of(server.get("/api/v1/public/zones"));
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!("public_zones", public);
    let (status, geo) = json_of(server.get("/api/v1/public/zones.geojson"));
    assert_eq!((status, geo["features"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{geo}");
    assert!(!geo.to_string().contains("K1"));
}

#[test]
fn the_public_page_shows_the_zones_and_counts_in_either_language_and_nothing_personal() {
    let server = TestServer::start();
    let visits = json!({"visits": [visit("P1", "L1", json!(1646208000))]});
    assert_eq!(server.post_json("/api/v1/visits:batch", &visits).status(), StatusCode::OK);
    seed_zones(&server);
    let mut store = server.store();
    let commander = add_user_in(&mut *store, "cmdr", Role::Commander, "C1");
    drop(store);
    let r = server.call(
        "post",
        "/api/v1/zones/place:L1:1/decision",
        Some(&commander),
        Some(&json!({"decision": "confirm"})),
    );
    assert_eq!(r.status(), StatusCode::OK);

    let page = |lang: Option<&str>, accept: Option<&str>| {
        let mut req = server
            .client
            .get(server.url(&format!("/public{}", lang.map(|l| format!("?lang={l}")).unwrap_or_default())));
        if let Some(a) = accept {
            req = req.header("accept-language", a);
        }
        let r = req.send().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        r.text().unwrap()
    };
    let en = page(Some("en"), None);
    assert!(en.contains("Risk zones in force") && en.contains("Medium risk"), "{en}");
    assert!(en.contains(r#"data-zone="place:L1:1""#), "the zone is listed");
    assert!(en.contains("&lt;5"), "small counts read <5: {en}");
    let zh = page(None, Some("zh-CN,zh;q=0.9,en;q=0.8"));
    assert!(zh.contains("现行风险区域") && zh.contains(r#"lang="zh-CN""#), "{zh}");
    assert!(page(None, Some("en-US")).contains("Risk zones in force"));
    for text in [&en, &zh] {
        for secret in ["K1", "K2", "P1", "P2", "+86"] {
            assert!(!text.contains(secret), "{secret} on the public page");
        }
    }
    let (status, summary) = json_of(server.get("/api/v1/public/summary?days=3"));
    assert_eq!(status, StatusCode::OK);
    insta::assert_json_snapshot!("public_summary", summary);
    let (status, _) = json_of(server.get("/api/v1/public/summary?days=3&person=P1"));
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

mod browser {
    //! The pages in a real headless Chromium (Debian's `chromium` and `chromium-driver`, which
    //! `.ci/run` installs), driven over WebDriver; screenshots are kept under
    //! `target/browser-artefacts/`.

    use std::path::Path;
    use std::process::{Child, Command, Stdio};

    use chainbreak_app::import::{ImportOptions, import_file};
    use chainbreak_formats::Kind;
    use fantoccini::{Client as Browser, ClientBuilder, Locator};

    use super::*;

    /// chromedriver on a free port of 127.0.0.1, stopped on drop.
    struct Driver {
        child: Child,
        url: String,
    }

    impl Driver {
        fn start() -> Driver {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver runs (Debian package chromium-driver; .ci/run installs it)");
            // Stopped by `drop` on every path, the panic below included.
            let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return driver;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            panic!("chromedriver did not listen on {}", driver.url);
        }
    }

    impl Drop for Driver {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn browser(driver: &Driver, lang: &str) -> Browser {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1600", format!("--lang={lang}")], "prefs": {"intl.accept_languages": lang}}),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("a headless Chromium session")
    }

    /// Waits until the browser is at a path starting with `prefix` (a click's navigation ends
    /// after the click returns); the path it is at.
    async fn wait_for(b: &Browser, prefix: &str) -> String {
        let mut path = String::new();
        for _ in 0..100 {
            path = b.current_url().await.unwrap().path().to_string();
            if path.starts_with(prefix) && b.find(Locator::Css("body")).await.is_ok() {
                return path;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the browser stayed at {path}, not {prefix}");
    }

    /// Clicks what leads to another page and waits until the new page is there (the old one's
    /// root element gone stale).
    async fn follow(b: &Browser, what: Locator<'_>) {
        let old = b.find(Locator::Css("html")).await.unwrap();
        b.find(what).await.unwrap().click().await.unwrap();
        for _ in 0..200 {
            if old.tag_name().await.is_err() && b.find(Locator::Css("body")).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the click led to no new page");
    }

    async fn screenshot(b: &Browser, name: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-artefacts");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), b.screenshot().await.unwrap()).unwrap();
    }

    /// The sample district with K1's compound and the county confirmed, served on 13 March 2022.
    fn sample_server() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("chainbreak.db");
        let at: Timestamp = "2022-03-13T04:00:00Z".parse().unwrap();
        let clock = Arc::new(ManualClock::new(at));
        let mut store = chainbreak_app::init(&db, "Asia/Shanghai", "cn-2022-9th", &*clock).unwrap();
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample");
        for (kind, file) in [
            (Kind::Areas, "areas.geojson"),
            (Kind::Places, "places.csv"),
            (Kind::Persons, "persons.csv"),
            (Kind::Groups, "groups.csv"),
            (Kind::Memberships, "memberships.csv"),
            (Kind::Visits, "visits.csv"),
            (Kind::Cases, "cases.csv"),
            (Kind::Sentinel, "sentinel.csv"),
        ] {
            import_file(
                &mut store,
                kind,
                &sample.join(file),
                &ImportOptions::default(),
                at,
                &mut chainbreak_app::NoProgress,
            )
            .unwrap();
        }
        let mut dep = chainbreak_app::Deployment::new(Box::new(store), clock).unwrap();
        let actor = Actor { name: "commander".into(), via: "test".into(), reason: None };
        chainbreak_app::zones::record(&mut dep, &actor, None, &["K1".into()]).unwrap();
        chainbreak_app::surveillance::run(&mut dep, &actor, None).unwrap();
        let traced = chainbreak_app::proposals::trace_cases(&mut dep, &actor, &["K1".into()]).unwrap();
        assert!(traced.recorded.proposed > 0, "{traced:?}");
        for zone in ["area:HS-S1-C2-K2:1", "area:HS:1"] {
            let confirm = chainbreak_app::zones::Decision::Confirm { note: None };
            chainbreak_app::zones::decide(&mut dep, &actor, None, zone, confirm, "U").unwrap();
        }
        let commander = User {
            name: "commander".into(),
            role: Role::Commander,
            unit: "U1".into(),
            jurisdiction: "HB".into(),
            disabled: false,
            created_at: at,
        };
        accounts::add_user(&mut *dep.store, &commander, "a long enough password", &actor).unwrap();
        drop(dep);
        TestServer::launch(dir, db, at, "HB", |_| {})
    }

    #[test]
    fn the_public_page_and_the_command_centre_in_a_real_browser() {
        let server = sample_server();
        let driver = Driver::start();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            // The browser's language is English: the page is in English.
            let b = browser(&driver, "en-US").await;
            b.goto(&server.url("/public")).await.unwrap();
            let title = b.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
            assert_eq!(title, "Epidemic situation and risk zones");
            // The compound's high zone is drawn on the map, over the county's low zone.
            let high = b.find_all(Locator::Css("#map svg path.zone.high")).await.unwrap();
            assert_eq!(high.len(), 1);
            assert_eq!(high[0].attr("data-zone").await.unwrap().as_deref(), Some("area:HS-S1-C2-K2:1"));
            assert_eq!(b.find_all(Locator::Css("#map svg path.zone.low")).await.unwrap().len(), 1);
            let rows = b.find_all(Locator::Css("#zones tr.zone")).await.unwrap();
            assert_eq!(rows.len(), 2);
            let bulletin = b.find(Locator::Css("#bulletin p")).await.unwrap().text().await.unwrap();
            assert!(bulletin.contains("1 high-risk"), "{bulletin}");
            let body = b.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
            assert!(!body.contains("K1") && !body.contains("P071"), "no case, no person: {body}");
            screenshot(&b, "public-en").await;
            // The switch: Chinese.
            follow(&b, Locator::Id("switch-language")).await;
            let title = b.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
            assert_eq!(title, "疫情通报与风险区域");
            let level = b.find(Locator::Css("#zones td.level-high")).await.unwrap().text().await.unwrap();
            assert_eq!(level, "高风险");
            screenshot(&b, "public-zh").await;
            // The command centre: a page asked for without a session leads to the sign-in.
            b.goto(&server.url("/dashboard?lang=en")).await.unwrap();
            assert!(b.current_url().await.unwrap().path().starts_with("/sign-in"));
            b.find(Locator::Id("name")).await.unwrap().send_keys("tracer").await.unwrap();
            b.find(Locator::Id("password")).await.unwrap().send_keys("wrong password").await.unwrap();
            follow(&b, Locator::Id("sign-in")).await;
            assert!(b.find(Locator::Id("sign-in-error")).await.is_ok(), "a refused sign-in says so");
            b.find(Locator::Id("name")).await.unwrap().send_keys("tracer").await.unwrap();
            b.find(Locator::Id("password")).await.unwrap().send_keys("a long enough password").await.unwrap();
            follow(&b, Locator::Id("sign-in")).await;
            assert_eq!(wait_for(&b, "/dashboard").await, "/dashboard");
            let h1 = b.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
            assert!(h1.starts_with("Overview"), "{h1}");
            let confirmed =
                b.find(Locator::Css("#classifications tr[data-classification=confirmed] td.n")).await.unwrap();
            assert_eq!(confirmed.text().await.unwrap(), "0", "none reported today (13 March)");
            assert!(!b.find_all(Locator::Css("#curve-onset svg rect.day")).await.unwrap().is_empty());
            let who = b.find(Locator::Id("who")).await.unwrap().text().await.unwrap();
            assert!(who.contains("tracer"), "{who}");
            screenshot(&b, "overview-en").await;
            follow(&b, Locator::Id("switch-language")).await;
            let h1 = b.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
            assert!(h1.starts_with("总览"), "{h1}");
            screenshot(&b, "overview-zh").await;
            // A case: its trail over the infectious window, its contacts; the tracer confirms one.
            follow(&b, Locator::Id("nav-cases")).await;
            // Newest report first by default; by onset on a click; confirmed only by the filter.
            let ids = |b: Browser| async move {
                let mut out = Vec::new();
                for row in b.find_all(Locator::Css("tr.case")).await.unwrap() {
                    out.push(row.attr("data-case").await.unwrap().unwrap());
                }
                out
            };
            assert_eq!(ids(b.clone()).await.first().map(String::as_str), Some("K4"), "reported last");
            follow(&b, Locator::Css(r#"a.sort[data-sort="onset"]"#)).await;
            assert_eq!(ids(b.clone()).await, ["K3", "K5", "K1", "K2", "K4"], "no onset first, then by onset");
            b.find(Locator::Css("#classification option[value=confirmed]")).await.unwrap().click().await.unwrap();
            follow(&b, Locator::Id("filter")).await;
            assert_eq!(ids(b.clone()).await, ["K1", "K2"], "still by onset");
            follow(&b, Locator::Css(r#"tr.case[data-case="K1"] a"#)).await;
            assert!(!b.find_all(Locator::Css("#trail svg rect.stay")).await.unwrap().is_empty(), "a trail");
            let contacts = b.find_all(Locator::Css("#contacts tr.contact")).await.unwrap();
            assert!(!contacts.is_empty());
            let first = contacts[0].attr("data-proposal").await.unwrap().unwrap();
            let row = format!(r#"#contacts tr.contact[data-proposal="{first}"]"#);
            follow(&b, Locator::Css(&format!("{row} button.confirm"))).await;
            let status = b.find(Locator::Css(&row)).await.unwrap().attr("data-status").await.unwrap();
            assert_eq!(status.as_deref(), Some("confirmed"));
            screenshot(&b, "case-en").await;
            // The chains: K1 infected K2 and K3 (the records say).
            follow(&b, Locator::Id("nav-chains")).await;
            for case in ["K1", "K2", "K3"] {
                assert_eq!(
                    b.find_all(Locator::Css(&format!(r#"#chains circle[data-case="{case}"]"#))).await.unwrap().len(),
                    1
                );
            }
            assert_eq!(b.find_all(Locator::Css("#chains line")).await.unwrap().len(), 2);
            screenshot(&b, "chains").await;
            // Surveillance: the sentinel series with their bounds, the alarms to review.
            follow(&b, Locator::Id("nav-surveillance")).await;
            assert!(!b.find_all(Locator::Css("#series figure.series svg")).await.unwrap().is_empty());
            screenshot(&b, "surveillance").await;
            // The zones: the compound in force, the widened community proposed; a commander
            // confirms it on the page, and a rejection without a note is refused, saying why.
            follow(&b, Locator::Id("nav-zones")).await;
            wait_for(&b, "/zones").await;
            let in_force = b.find_all(Locator::Css("#zone-map svg .zone.in-force")).await.unwrap();
            let proposed = b.find_all(Locator::Css("#zone-map svg .zone.proposed")).await.unwrap();
            assert!(!in_force.is_empty() && !proposed.is_empty());
            let row = r#"tr.zone[data-zone="area:HS-S1-C2:1"]"#;
            let status = b.find(Locator::Css(row)).await.unwrap().attr("data-status").await.unwrap();
            assert_eq!(status.as_deref(), Some("proposed"));
            assert!(
                b.find_all(Locator::Css(&format!("{row} button.confirm"))).await.unwrap().is_empty(),
                "a tracer may not decide zones"
            );
            follow(&b, Locator::Id("sign-out")).await;
            wait_for(&b, "/sign-in").await;
            b.goto(&server.url("/zones?lang=en")).await.unwrap();
            wait_for(&b, "/sign-in").await;
            b.find(Locator::Id("name")).await.unwrap().send_keys("commander").await.unwrap();
            b.find(Locator::Id("password")).await.unwrap().send_keys("a long enough password").await.unwrap();
            follow(&b, Locator::Id("sign-in")).await;
            assert_eq!(wait_for(&b, "/zones").await, "/zones");
            follow(&b, Locator::Css(&format!("{row} button.reject"))).await;
            assert!(b.find(Locator::Id("message")).await.is_ok(), "a rejection needs a note");
            follow(&b, Locator::Css(&format!("{row} button.confirm"))).await;
            let status = b.find(Locator::Css(row)).await.unwrap().attr("data-status").await.unwrap();
            assert_eq!(status.as_deref(), Some("confirmed"));
            // Its history: proposed by the engine's run, confirmed by the commander.
            let history = b.find(Locator::Css(&format!("{row} ol.history"))).await.unwrap().html(true).await.unwrap();
            assert!(history.contains("Proposed") && history.contains("Confirmed · commander"), "{history}");
            screenshot(&b, "zones-en").await;
            // The closed-loop board: the residents' measures the confirmations proposed.
            follow(&b, Locator::Id("nav-board")).await;
            let by_state = b.find(Locator::Css("#by-state svg")).await.unwrap().text().await.unwrap();
            assert!(by_state.contains("Proposed"), "{by_state}");
            screenshot(&b, "board-en").await;
            follow(&b, Locator::Id("sign-out")).await;
            wait_for(&b, "/sign-in").await;
            b.goto(&server.url("/dashboard")).await.unwrap();
            assert!(b.current_url().await.unwrap().path().starts_with("/sign-in"), "signed out");
            b.close().await.unwrap();
            // A Chinese browser gets Chinese first.
            let b = browser(&driver, "zh-CN").await;
            b.goto(&server.url("/public")).await.unwrap();
            assert_eq!(b.find(Locator::Css("h1")).await.unwrap().text().await.unwrap(), "疫情通报与风险区域");
            b.close().await.unwrap();
        });
    }
}
