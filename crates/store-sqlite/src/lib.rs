//! The embedded default store: SQLite in WAL mode, migrations applied on open.
//!
//! Chosen over sqlx by measurement (ISSUE 2): rusqlite's multi-row prepared inserts load
//! visits faster and build faster. Bulk visit loads drop the two visit indexes inside the
//! transaction and rebuild them before commit, which is several times faster than keeping them
//! up to date row by row, and just as atomic: DDL is transactional in SQLite.

mod access;
mod batch;
mod episodes;
mod goods;
mod proposals;
mod read;
mod scope;
mod surveillance;
mod tally;
mod zones;

use std::path::{Path, PathBuf};

use chainbreak_core::access::{AuditRecord, TokenInfo, User};
use chainbreak_core::model::*;
use chainbreak_store::{
    AuditFilter, Batch, Change, Entity, Key, Meta, Proposal, ProposalFilter, Result, ScanEnd, Scope, Store, StoreError,
    StoredVisit, TraceRecord, VisitQuery, VisitRow,
};
use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

pub use batch::SqliteBatch;

/// Migrations, in order; `PRAGMA user_version` records how many have been applied.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_0002_access.sql"),
    include_str!("schema_0003_proposals.sql"),
    include_str!("schema_0004_episodes.sql"),
    include_str!("schema_0005_surveillance.sql"),
    include_str!("schema_0006_zones.sql"),
    include_str!("schema_0007_case_lists.sql"),
    include_str!("schema_0008_goods_requests.sql"),
    include_str!("schema_0009_case_counts.sql"),
    include_str!("schema_0010_scope_cache.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The connection's page cache and sorter settings (a bulk load changes them for its index
/// rebuild and puts them back).
pub(crate) const CONNECTION_CACHE: &str = "PRAGMA cache_size = -65536; PRAGMA threads = 0;";

/// The visit indexes a bulk load rebuilds: (name, definition).
pub(crate) const VISIT_INDEXES: &[(&str, &str)] = &[
    ("visits_person", "CREATE INDEX visits_person ON visits(person, t_in)"),
    ("visits_place", "CREATE INDEX visits_place ON visits(place, t_in)"),
];

/// A chainbreak store in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish()
    }
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Settings for a new store.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub time_zone: String,
    pub profile: String,
    pub area_levels: Vec<String>,
    pub created_at: Timestamp,
}

impl SqliteStore {
    /// Creates a new store at `path`; fails if one exists there.
    pub fn create(path: &Path, opts: &InitOptions) -> Result<Self> {
        if path.exists() && std::fs::metadata(path).map(|m| m.len() > 0).unwrap_or(false) {
            return Err(StoreError::Exists(path.display().to_string()));
        }
        let conn = Connection::open(path).map_err(backend)?;
        // Page size must be set before the first table and before WAL.
        conn.execute_batch("PRAGMA page_size = 16384;").map_err(backend)?;
        let mut store = Self::configure(conn, path)?;
        // Schema and settings in one transaction: a store is either whole or not there.
        store.migrate(Some(opts))?;
        Ok(store)
    }

    /// Opens an existing store, applying pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(StoreError::NotInitialized(path.display().to_string()));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(backend)?;
        let mut store = Self::configure(conn, path)?;
        let version: u32 = store.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
        if version == 0 {
            return Err(StoreError::NotInitialized(path.display().to_string()));
        }
        store.migrate(None)?;
        Ok(store)
    }

    fn configure(conn: Connection, path: &Path) -> Result<Self> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = OFF;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(backend)?;
        conn.execute_batch(CONNECTION_CACHE).map_err(backend)?;
        conn.execute_batch(scope::SCOPE_TABLES).map_err(backend)?;
        Ok(SqliteStore { conn, path: path.to_path_buf() })
    }

    /// Applies pending migrations (and, for a new store, writes its settings) in one
    /// IMMEDIATE transaction, so that two processes opening at once do not both migrate.
    fn migrate(&mut self, init: Option<&InitOptions>) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
        let version: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Version { found: version, supported: SCHEMA_VERSION });
        }
        for sql in MIGRATIONS.iter().skip(version as usize) {
            tx.execute_batch(sql).map_err(backend)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(backend)?;
        // Migration 9 brought the tallies: count what an older store holds (a new one has nothing).
        if version > 0 && version < 9 {
            tally::rebuild(&tx)?;
        }
        if let Some(opts) = init {
            let mut put = tx.prepare("INSERT INTO meta(key, value) VALUES (?1, ?2)").map_err(backend)?;
            put.execute(params!["time_zone", opts.time_zone]).map_err(backend)?;
            put.execute(params!["profile", opts.profile]).map_err(backend)?;
            let levels = serde_json::to_string(&opts.area_levels).expect("strings serialise");
            put.execute(params!["area_levels", levels]).map_err(backend)?;
            put.execute(params!["created_at", opts.created_at.as_second().to_string()]).map_err(backend)?;
        }
        tx.commit().map_err(backend)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies the WAL into the main file and truncates it.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(backend)
    }

    /// SQLite's version, for `--version` and benchmarks.
    pub fn sqlite_version() -> &'static str {
        rusqlite::version()
    }
}

impl Store for SqliteStore {
    fn meta(&self) -> Result<Meta> {
        let get = |k: &str| -> Result<String> {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()
                .map_err(backend)?
                .ok_or_else(|| StoreError::NotInitialized(self.path.display().to_string()))
        };
        let version: u32 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
        Ok(Meta {
            schema_version: version,
            time_zone: get("time_zone")?,
            profile: get("profile")?,
            area_levels: serde_json::from_str(&get("area_levels")?)
                .map_err(|e| StoreError::Backend(format!("meta.area_levels: {e}")))?,
            created_at: Timestamp::from_second(
                get("created_at")?.parse().map_err(|e| StoreError::Backend(format!("meta.created_at: {e}")))?,
            )
            .map_err(|e| StoreError::Backend(format!("meta.created_at: {e}")))?,
        })
    }

    fn begin(&mut self, at: Timestamp) -> Result<Box<dyn Batch + '_>> {
        Ok(Box::new(SqliteBatch::new(&mut self.conn, at)?))
    }

    fn person_keys(&self) -> Result<Vec<(String, Key)>> {
        read::keys(&self.conn, "SELECT id, key FROM persons")
    }

    fn place_keys(&self) -> Result<Vec<(String, Key)>> {
        read::keys(&self.conn, "SELECT id, key FROM places")
    }

    fn place_kinds(&self) -> Result<Vec<(Key, PlaceKind)>> {
        read::place_kinds(&self.conn)
    }

    fn group_members(&self) -> Result<Vec<chainbreak_store::GroupMember>> {
        read::group_members(&self.conn)
    }

    fn trip_riders(&self) -> Result<Vec<chainbreak_store::TripRider>> {
        read::trip_riders(&self.conn)
    }

    fn count(&self, entity: Entity) -> Result<u64> {
        let table = read::table_of(entity);
        self.conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).map_err(backend)
    }

    fn person(&self, id: &str) -> Result<Option<Person>> {
        read::person(&self.conn, id)
    }

    fn identifiers(&self, person_id: &str) -> Result<Vec<Identifier>> {
        read::identifiers(&self.conn, person_id)
    }

    fn canonical_person(&self, id: &str) -> Result<Option<String>> {
        read::canonical_person(&self.conn, id)
    }

    fn merges(&self, person_id: &str) -> Result<Vec<PersonMerge>> {
        read::merges(&self.conn, person_id)
    }

    fn place(&self, id: &str) -> Result<Option<Place>> {
        read::place(&self.conn, id)
    }

    fn area(&self, id: &str) -> Result<Option<Area>> {
        read::area(&self.conn, id)
    }

    fn case(&self, id: &str) -> Result<Option<Case>> {
        read::case(&self.conn, id)
    }

    fn case_history(&self, id: &str) -> Result<Vec<ClassificationChange>> {
        read::case_history(&self.conn, id)
    }

    fn lab_test(&self, id: &str) -> Result<Option<LabTest>> {
        read::lab_test(&self.conn, id)
    }

    fn visits_of_person(&self, person_id: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Visit>> {
        read::visits_of_person(&self.conn, person_id, from, to)
    }

    fn scan_visits(&self, after_row: i64, f: &mut dyn FnMut(&[StoredVisit])) -> Result<ScanEnd> {
        read::scan_visits(&self.conn, after_row, f)
    }

    fn person_survivors(&self) -> Result<Vec<Key>> {
        read::person_survivors(&self.conn)
    }

    fn scan_pings(&self, after_row: i64, f: &mut dyn FnMut(&[chainbreak_store::StoredPing])) -> Result<ScanEnd> {
        read::scan_pings(&self.conn, after_row, f)
    }

    fn persons_page(&self, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<Person>> {
        scope::persons_page(&self.conn, scope, after, limit)
    }

    fn places_page(&self, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<Place>> {
        scope::places_page(&self.conn, scope, after, limit)
    }

    fn cases_page(&self, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<Case>> {
        scope::cases_page(&self.conn, scope, after, limit)
    }

    fn lab_tests_page(&self, scope: &Scope, after: Option<&str>, limit: usize) -> Result<Vec<LabTest>> {
        scope::lab_tests_page(&self.conn, scope, after, limit)
    }

    fn visits_page(&self, scope: &Scope, query: &VisitQuery, after_row: i64, limit: usize) -> Result<Vec<VisitRow>> {
        scope::visits_page(&self.conn, scope, query, after_row, limit)
    }

    fn proposals_page(
        &self,
        scope: &Scope,
        filter: &ProposalFilter,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Proposal>> {
        proposals::page(&self.conn, scope, filter, after, limit)
    }

    fn proposal(&self, id: i64) -> Result<Option<Proposal>> {
        proposals::by_id(&self.conn, id)
    }

    fn trace_records(&self) -> Result<Vec<TraceRecord>> {
        proposals::trace_records(&self.conn)
    }

    fn scan_episode_events(&self, after: i64, f: &mut dyn FnMut(&[chainbreak_store::EpisodeEvent])) -> Result<i64> {
        episodes::scan_events(&self.conn, after, f)
    }

    fn episode_events(&self, episode_id: &str) -> Result<Vec<chainbreak_store::EpisodeEvent>> {
        episodes::events_of(&self.conn, episode_id)
    }

    fn episodes_page(
        &self,
        scope: &Scope,
        filter: &chainbreak_store::EpisodeFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<chainbreak_store::EpisodeRow>> {
        episodes::page(&self.conn, scope, filter, after, limit)
    }

    fn episode(&self, id: &str) -> Result<Option<chainbreak_store::EpisodeRow>> {
        episodes::by_id(&self.conn, id)
    }

    fn zones_page(
        &self,
        scope: &Scope,
        filter: &chainbreak_store::ZoneFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<chainbreak_store::ZoneRow>> {
        zones::page(&self.conn, scope, filter, after, limit)
    }

    fn cases_sorted(
        &self,
        scope: &Scope,
        query: &chainbreak_store::CaseQuery,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Case>> {
        scope::cases_sorted(&self.conn, scope, query, after, limit)
    }

    fn goods(&self) -> Result<(Vec<chainbreak_core::model::GoodsBatch>, Vec<chainbreak_core::model::GoodsHop>)> {
        read::goods(&self.conn)
    }

    fn zone(&self, id: &str) -> Result<Option<chainbreak_store::ZoneRow>> {
        zones::by_id(&self.conn, id)
    }

    fn zone_events(&self, zone_id: &str) -> Result<Vec<chainbreak_store::ZoneEventRow>> {
        zones::events_of(&self.conn, zone_id)
    }

    fn facilities(&self) -> Result<Vec<chainbreak_store::FacilityRow>> {
        episodes::facilities(&self.conn)
    }

    fn units(&self) -> Result<Vec<Unit>> {
        episodes::units(&self.conn)
    }

    fn staff_of(&self, place_id: &str) -> Result<Vec<StaffMember>> {
        episodes::staff_of(&self.conn, place_id)
    }

    fn units_of(&self, person_id: &str) -> Result<Vec<StaffMember>> {
        episodes::units_of(&self.conn, person_id)
    }

    fn households_of(&self, person_ids: &[&str]) -> Result<Vec<Option<String>>> {
        episodes::households_of(&self.conn, person_ids)
    }

    fn in_scope(&self, scope: &Scope, entity: Entity, ids: &[&str]) -> Result<Vec<bool>> {
        scope::in_scope(&self.conn, scope, entity, ids)
    }

    fn user(&self, name: &str) -> Result<Option<User>> {
        access::user(&self.conn, name)
    }

    fn users(&self) -> Result<Vec<User>> {
        access::users(&self.conn)
    }

    fn password_hash(&self, name: &str) -> Result<Option<String>> {
        access::password_hash(&self.conn, name)
    }

    fn token_user(&self, token_hash: &[u8], now: Timestamp) -> Result<Option<(User, TokenInfo)>> {
        access::token_user(&self.conn, token_hash, now)
    }

    fn audit_records(&self, after: i64, limit: usize, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        access::audit_records(&self.conn, after, limit, filter)
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>> {
        read::changes_since(&self.conn, after, limit)
    }

    fn last_seq(&self) -> Result<u64> {
        self.conn.query_row("SELECT coalesce(max(seq), 0) FROM changes", [], |r| r.get(0)).map_err(backend)
    }

    fn alert(&self, id: i64) -> Result<Option<chainbreak_store::AlertRow>> {
        surveillance::alert(&self.conn, id)
    }

    fn alerts_page(
        &self,
        scope: &Scope,
        filter: &chainbreak_store::AlertFilter,
        after: i64,
        limit: usize,
    ) -> Result<Vec<chainbreak_store::AlertRow>> {
        surveillance::alerts_page(&self.conn, scope, filter, after, limit)
    }

    fn alert_events(&self, id: i64) -> Result<Vec<chainbreak_store::AlertEvent>> {
        surveillance::alert_events(&self.conn, id)
    }

    fn review_queue(
        &self,
        scope: &Scope,
        status: Option<chainbreak_store::ReviewStatus>,
        limit: usize,
    ) -> Result<Vec<chainbreak_store::ReviewItem>> {
        surveillance::review_queue(&self.conn, scope, status, limit)
    }

    fn review_item(&self, id: i64) -> Result<Option<chainbreak_store::ReviewItem>> {
        surveillance::review_item(&self.conn, id)
    }

    fn sentinel_records(
        &self,
        scope: &Scope,
        from: jiff::civil::Date,
        to: jiff::civil::Date,
    ) -> Result<Vec<SentinelRecord>> {
        surveillance::sentinel_records(&self.conn, scope, from, to)
    }

    fn sentinel_last_reports(&self, scope: &Scope) -> Result<Vec<chainbreak_store::SentinelLast>> {
        surveillance::sentinel_last_reports(&self.conn, scope)
    }

    fn clock_of(&self, case_id: &str) -> Result<Vec<chainbreak_store::ClockRow>> {
        surveillance::clock_of(&self.conn, case_id)
    }

    fn clocks_reported_since(&self, scope: &Scope, from: Timestamp) -> Result<Vec<chainbreak_store::ClockRow>> {
        surveillance::clocks_reported_since(&self.conn, scope, from)
    }

    fn case_counts(&self, scope: &Scope) -> Result<Vec<chainbreak_store::CaseCount>> {
        tally::case_counts(&self.conn, scope)
    }

    fn episode_counts(&self, scope: &Scope) -> Result<Vec<chainbreak_store::EpisodeCount>> {
        tally::episode_counts(&self.conn, scope)
    }

    fn goods_responses(
        &self,
        scope: &Scope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<chainbreak_store::GoodsResponseRow>> {
        goods::responses(&self.conn, scope, after, limit)
    }

    fn goods_response(&self, id: &str) -> Result<Option<chainbreak_store::GoodsResponseRow>> {
        goods::response(&self.conn, id)
    }

    fn suspensions(&self) -> Result<Vec<chainbreak_store::SuspensionRow>> {
        goods::suspensions(&self.conn, None)
    }

    fn requests_page(
        &self,
        scope: &Scope,
        filter: &chainbreak_store::RequestFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<chainbreak_store::RequestRow>> {
        goods::requests_page(&self.conn, scope, filter, after, limit)
    }

    fn request(&self, id: &str) -> Result<Option<chainbreak_store::RequestRow>> {
        goods::request(&self.conn, id)
    }

    fn request_events(&self, request_id: &str) -> Result<Vec<chainbreak_store::RequestEventRow>> {
        goods::events_of(&self.conn, request_id)
    }
}
