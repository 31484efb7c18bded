//! The server over real HTTP, on a real SQLite store in a temporary directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use chainbreak_core::model::{Person, Place, PlaceKind};
use chainbreak_core::time::{ManualClock, SystemClock};
use chainbreak_server::{AppState, ServerConfig, serve};
use chainbreak_store::{Entity, Store};
use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

/// A server on 127.0.0.1:0 over a fresh store holding places L1, L2 and persons P1, P2.
struct TestServer {
    base: String,
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

fn person(id: &str) -> Person {
    Person { id: id.into(), residence: None, birth_year: Some(1980), sex: None, occupation: None }
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
        batch.put_places(&[place("L1"), place("L2")]).unwrap();
        batch.put_persons(&[person("P1"), person("P2")]).unwrap();
        batch.commit().unwrap();
        drop(store);

        let mut config = ServerConfig { db: db.clone(), ..Default::default() };
        configure(&mut config);
        let state = AppState::open(config, Arc::new(ManualClock::new(now()))).unwrap();
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

    fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().unwrap()
    }

    fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::blocking::Body>) -> Response {
        self.client.post(self.url(path)).header("content-type", content_type).body(body).send().unwrap()
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
    assert_eq!(server.store().count(Entity::LabTest).unwrap(), 0);
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
    let r = server.client.post(server.url("/api/v1/visits:batch")).body(body.clone()).send().unwrap();
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
            .with_max_level(tracing::Level::INFO)
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
        .filter(|e| e["fields"]["message"] == "request" && e["fields"]["method"] == "DELETE")
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    let e = &events[0];
    assert_eq!(e["target"], "chainbreak_server::http");
    assert_eq!(e["fields"]["route"], "/readyz");
    assert_eq!(e["fields"]["status"], 405);
    assert!(e["fields"]["latency_ms"].as_f64().is_some(), "{e}");
}
