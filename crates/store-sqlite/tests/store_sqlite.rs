//! The SQLite store against the conformance suite, on real files, plus SQLite-specific checks.

use chainbreak_store::Store;
use chainbreak_store_sqlite::{InitOptions, SqliteStore};

fn opts() -> InitOptions {
    InitOptions {
        time_zone: "Asia/Shanghai".into(),
        profile: "cn-2022-9th".into(),
        area_levels: chainbreak_core::model::DEFAULT_AREA_LEVELS.iter().map(|s| s.to_string()).collect(),
        created_at: "2022-03-01T00:00:00Z".parse().unwrap(),
    }
}

/// A fresh store in its own temporary directory (kept alive for the test's duration).
fn fresh() -> Box<dyn Store> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chainbreak.db");
    let store = SqliteStore::create(&path, &opts()).unwrap();
    std::mem::forget(dir); // removed with the OS temp dir; the store must outlive this function
    Box::new(store)
}

chainbreak_store::conformance_tests!(fresh());

#[test]
fn create_refuses_an_existing_store_and_open_refuses_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::create(&path, &opts()).unwrap());
    assert!(matches!(SqliteStore::create(&path, &opts()), Err(chainbreak_store::StoreError::Exists(_))));
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.meta().unwrap().time_zone, "Asia/Shanghai");
    assert!(matches!(
        SqliteStore::open(&dir.path().join("missing.db")),
        Err(chainbreak_store::StoreError::NotInitialized(_))
    ));
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::create(&path, &opts()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(SqliteStore::open(&path), Err(chainbreak_store::StoreError::Version { found: 99, .. })));
}

#[test]
fn the_store_is_in_wal_mode_with_every_visit_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::create(&path, &opts()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'visits'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn audit_records_cannot_be_changed_or_deleted_even_with_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = SqliteStore::create(&path, &opts()).unwrap();
    let mut b = store.begin("2022-03-01T00:00:00Z".parse().unwrap()).unwrap();
    b.append_audit(&chainbreak_core::access::AuditRecord {
        seq: 0,
        at: "2022-03-01T00:00:00Z".parse().unwrap(),
        actor: "li".into(),
        action: "read_personal_data".into(),
        entity: "person".into(),
        record: "P1".into(),
        via: "test".into(),
        reason: None,
    })
    .unwrap();
    b.commit().unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let e = conn.execute("UPDATE audit SET actor = 'someone else'", []).unwrap_err();
    assert!(e.to_string().contains("cannot be changed"), "{e}");
    let e = conn.execute("DELETE FROM audit", []).unwrap_err();
    assert!(e.to_string().contains("cannot be deleted"), "{e}");
    let n: i64 = conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
}
