//! The application layer on real SQLite files: imports of every kind, atomicity, rejects,
//! registration, and ingest.

mod goods;
mod surveillance;
mod zones;

use std::path::{Path, PathBuf};

use chainbreak_app::import::{ImportOptions, ImportReport, import_file};
use chainbreak_app::ingest::Writer;
use chainbreak_app::{AppError, NoProgress};
use chainbreak_core::ErrorCode;
use chainbreak_core::model::{Visit, VisitSource};
use chainbreak_core::time::{Clock, ManualClock};
use chainbreak_formats::Kind;
use chainbreak_store::{AuditFilter, Entity, Scope, Store};
use chainbreak_store_sqlite::SqliteStore;
use jiff::Timestamp;

fn t0() -> Timestamp {
    "2022-03-15T00:00:00Z".parse().unwrap()
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample")
}

struct Fixture {
    dir: tempfile::TempDir,
    store: SqliteStore,
}

fn fresh() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let store = chainbreak_app::init(&dir.path().join("s.db"), "Asia/Shanghai", "cn-2022-9th", &clock).unwrap();
    Fixture { dir, store }
}

impl Fixture {
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn import(&mut self, kind: Kind, path: &Path, opts: &ImportOptions) -> Result<ImportReport, AppError> {
        import_file(&mut self.store, kind, path, opts, t0(), &mut NoProgress)
    }

    fn places_and_persons(&mut self) {
        let places = self.file("places.csv", "id,kind\nL1,mall\nL2,restaurant\n");
        let persons = self.file("persons.csv", "id\nP1\nP2\nP3\n");
        self.import(Kind::Places, &places, &ImportOptions::default()).unwrap();
        self.import(Kind::Persons, &persons, &ImportOptions::default()).unwrap();
    }
}

fn input_error(e: AppError) -> chainbreak_formats::FormatError {
    match e {
        AppError::Input(f) => f,
        other => panic!("expected an input error, got {other:?}"),
    }
}

fn rows_in(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().unwrap() == "geojson" {
        return text.matches("\"Feature\"").count() as u64;
    }
    text.lines().count() as u64 - 1
}

#[test]
fn the_sample_district_imports_kind_by_kind() {
    let mut f = fresh();
    let files = [
        (Kind::Areas, "areas.geojson", Entity::Area),
        (Kind::Units, "units.csv", Entity::Unit),
        (Kind::Places, "places.csv", Entity::Place),
        (Kind::Persons, "persons.csv", Entity::Person),
        (Kind::Identifiers, "identifiers.csv", Entity::Identifier),
        (Kind::Staff, "staff.csv", Entity::Staff),
        (Kind::Groups, "groups.csv", Entity::Group),
        (Kind::Memberships, "memberships.csv", Entity::Membership),
        (Kind::Visits, "visits.csv", Entity::Visit),
        (Kind::Trips, "trips.csv", Entity::Trip),
        (Kind::Passengers, "passengers.csv", Entity::Passenger),
        (Kind::Pings, "pings.csv", Entity::Ping),
        (Kind::Cases, "cases.csv", Entity::Case),
        (Kind::LabTests, "lab_tests.csv", Entity::LabTest),
        (Kind::Arrivals, "arrivals.csv", Entity::Arrival),
        (Kind::GoodsBatches, "goods_batches.csv", Entity::GoodsBatch),
        (Kind::GoodsHops, "goods_hops.csv", Entity::GoodsHop),
        (Kind::Sentinel, "sentinel.csv", Entity::Sentinel),
    ];
    assert_eq!(files.len(), Kind::ALL.len(), "the sample has a file of every kind");
    let mut last_seq = 0;
    for (kind, name, entity) in files {
        let path = sample().join(name);
        let report = f.import(kind, &path, &ImportOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let rows = rows_in(&path);
        assert_eq!(report.imported, rows, "{name}");
        assert_eq!(report.rejected, 0);
        assert_eq!(f.store.count(entity).unwrap(), rows, "{name}: one stored row per record");
        assert!(report.last_seq > last_seq, "{name}: the change feed moves on");
        last_seq = report.last_seq;
    }
    let case = f.store.case("K2").unwrap().unwrap();
    assert_eq!(case.infector_case_id.as_deref(), Some("K1"));
    let area = f.store.area("HS-S1-C1-K1-B1").unwrap().unwrap();
    assert_eq!(area.level, "building");
    assert!(area.geometry.is_some());
}

#[test]
fn the_same_file_in_json_lines_imports_the_same() {
    let mut f = fresh();
    f.places_and_persons();
    let csv =
        f.file("v.csv", "person_id,place_id,t_in,t_out\nP1,L1,1646092800,1646096400\nP2,L2,2022-03-01T01:00:00Z,\n");
    let jsonl = f.file(
        "v.jsonl",
        "{\"person_id\":\"P1\",\"place_id\":\"L1\",\"t_in\":1646092800,\"t_out\":1646096400}\n\
         {\"person_id\":\"P2\",\"place_id\":\"L2\",\"t_in\":\"2022-03-01T01:00:00Z\",\"t_out\":null}\n",
    );
    f.import(Kind::Visits, &csv, &ImportOptions::default()).unwrap();
    let a = f.store.visits_of_person("P2", t0() - jiff::SignedDuration::from_hours(24 * 30), t0()).unwrap();
    f.import(Kind::Visits, &jsonl, &ImportOptions::default()).unwrap();
    let b = f.store.visits_of_person("P2", t0() - jiff::SignedDuration::from_hours(24 * 30), t0()).unwrap();
    assert_eq!(b, [a.clone(), a].concat());
    assert_eq!(b[0].t_out, None);
    assert_eq!(b[0].source, VisitSource::VenueCode);
}

#[test]
fn a_bad_csv_is_refused_with_its_line_and_field_and_the_store_is_unchanged() {
    let mut f = fresh();
    f.places_and_persons();
    let seq = f.store.last_seq().unwrap();
    let path = f.file("visits.csv", "person_id,place_id,t_in,t_out\nP1,L1,100,200\nP2,L1,150,\nP3,L2,2022-13-01,\n");
    let e = input_error(f.import(Kind::Visits, &path, &ImportOptions::default()).unwrap_err());
    assert_eq!(e.code, ErrorCode::InputInvalidField);
    assert_eq!((e.location.line, e.location.field.as_deref()), (Some(4), Some("t_in")));
    assert!(e.to_string().starts_with(&format!("{}: line 4, field `t_in`", path.display())), "{e}");
    assert_eq!(f.store.count(Entity::Visit).unwrap(), 0, "the good rows before it were not kept");
    assert_eq!(f.store.last_seq().unwrap(), seq);

    let cases =
        f.file("cases.csv", "id,person_id,classification,reported_at\nK1,P1,confirmed,100\nK2,P2,recovered,100\n");
    let e = input_error(f.import(Kind::Cases, &cases, &ImportOptions::default()).unwrap_err());
    assert_eq!((e.location.line, e.location.field.as_deref()), (Some(3), Some("classification")));
    assert!(e.message.contains("recovered") && e.message.contains("confirmed"), "{}", e.message);
    assert_eq!(f.store.count(Entity::Case).unwrap(), 0);
}

#[test]
fn a_bad_json_line_is_refused_with_its_json_path() {
    let mut f = fresh();
    f.places_and_persons();
    let path = f.file(
        "places.jsonl",
        "{\"id\":\"L9\",\"kind\":\"mall\"}\n{\"id\":\"L10\",\"kind\":\"mall\",\"key_place\":\"yes\"}\n",
    );
    let e = input_error(f.import(Kind::Places, &path, &ImportOptions::default()).unwrap_err());
    assert_eq!((e.location.line, e.location.json_path.as_deref()), (Some(2), Some("$.key_place")));
    assert!(f.store.place("L9").unwrap().is_none(), "nothing of the file was written");
}

#[test]
fn references_are_checked_and_located() {
    let mut f = fresh();
    f.places_and_persons();
    let visits = f.file("visits.csv", "person_id,place_id,t_in\nP1,L1,100\nP404,L1,100\n");
    let e = input_error(f.import(Kind::Visits, &visits, &ImportOptions::default()).unwrap_err());
    assert_eq!(e.code, ErrorCode::InputUnknownReference);
    assert_eq!((e.location.line, e.location.field.as_deref()), (Some(3), Some("person_id")));
    assert!(e.message.contains("P404"));

    let places = f.file("more-places.csv", "id,kind,area\nL7,mall,\nL8,mall,NOWHERE\n");
    let e = input_error(f.import(Kind::Places, &places, &ImportOptions::default()).unwrap_err());
    assert_eq!(e.code, ErrorCode::InputUnknownReference);
    assert_eq!((e.location.line, e.location.field.as_deref()), (Some(3), Some("area")));
    assert!(f.store.place("L7").unwrap().is_none());
}

#[test]
fn register_unknown_registers_persons_and_places_by_id() {
    let mut f = fresh();
    f.places_and_persons();
    let visits = f.file("visits.csv", "person_id,place_id,t_in\nP1,L1,100\nP9,L1,100\nP9,L9,200\nP1,L9,300\n");
    let opts = ImportOptions { register_unknown: true, ..Default::default() };
    let r = f.import(Kind::Visits, &visits, &opts).unwrap();
    assert_eq!((r.imported, r.registered_persons, r.registered_places), (4, 1, 1));
    assert!(f.store.person("P9").unwrap().is_some());
    assert_eq!(f.store.place("L9").unwrap().unwrap().kind, chainbreak_core::model::PlaceKind::Other);
    let trail = f.store.visits_of_person("P9", Timestamp::UNIX_EPOCH, t0()).unwrap();
    assert_eq!(trail.iter().map(|v| v.place_id.as_str()).collect::<Vec<_>>(), ["L1", "L9"]);
}

#[test]
fn skip_invalid_imports_the_rest_and_writes_the_rejects() {
    let mut f = fresh();
    f.places_and_persons();
    let visits = f.file(
        "visits.csv",
        "person_id,place_id,t_in,t_out\nP1,L1,100,200\nP1,L1,soon,\nP404,L1,100,\nP2,L2,300,250\nP2,L2,400,\nP3,L1\n",
    );
    let opts = ImportOptions { skip_invalid: true, ..Default::default() };
    let r = f.import(Kind::Visits, &visits, &opts).unwrap();
    assert_eq!((r.imported, r.rejected), (2, 4));
    let rejects = std::fs::read_to_string(r.rejects_file.unwrap()).unwrap();
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(lines[0], "line,code,field,message,record");
    assert!(lines[1].starts_with("3,input.invalid_field,t_in,"), "{}", lines[1]);
    assert!(lines[2].starts_with("4,input.unknown_reference,person_id,"), "{}", lines[2]);
    assert!(lines[3].starts_with("5,input.inconsistent,t_out,"), "{}", lines[3]);
    assert!(lines[4].starts_with("7,input.malformed,"), "{}", lines[4]);
    assert_eq!(f.store.count(Entity::Visit).unwrap(), 2);

    // The generic path too: a store-side reference error is rejected, the rest kept.
    let persons = f.file("persons2.csv", "id,residence\nP5,L1\nP6,NOPE\nP7,\n");
    let r = f.import(Kind::Persons, &persons, &opts).unwrap();
    assert_eq!((r.imported, r.rejected), (2, 1));
    let rejects = std::fs::read_to_string(r.rejects_file.unwrap()).unwrap();
    assert!(rejects.lines().nth(1).unwrap().starts_with("3,input.unknown_reference,residence,"), "{rejects}");
    assert!(f.store.person("P6").unwrap().is_none() && f.store.person("P7").unwrap().is_some());
}

#[test]
fn a_bulk_load_rebuilds_the_indexes_and_keeps_them_atomic() {
    let mut f = fresh();
    f.places_and_persons();
    let mut text = String::from("person_id,place_id,t_in,t_out\n");
    for i in 0..150_000u32 {
        let t = 1_646_092_800 + i as i64;
        text.push_str(&format!("P{},L{},{t},{}\n", 1 + i % 3, 1 + i % 2, t + 60));
    }
    let good = f.file("big.csv", &text);
    text.push_str("P1,L1,oops,\n");
    let bad = f.file("big-bad.csv", &text);
    let e = input_error(f.import(Kind::Visits, &bad, &ImportOptions::default()).unwrap_err());
    assert_eq!(e.location.line, Some(150_002));
    assert_eq!(f.store.count(Entity::Visit).unwrap(), 0);
    let r = f.import(Kind::Visits, &good, &ImportOptions::default()).unwrap();
    assert_eq!(r.imported, 150_000);
    let from = Timestamp::from_second(1_646_092_800).unwrap();
    let trail = f.store.visits_of_person("P2", from, from + jiff::SignedDuration::from_secs(30)).unwrap();
    assert_eq!(trail.len(), 10, "i = 1, 4, ..., 28");
    let mut scanned = 0;
    f.store.scan_visits(0, &mut |b| scanned += b.len()).unwrap();
    assert_eq!(scanned, 150_000);
}

#[test]
fn formats_and_kinds_are_checked_before_reading() {
    let mut f = fresh();
    let txt = f.file("visits.txt", "person_id,place_id,t_in\n");
    let e = input_error(f.import(Kind::Visits, &txt, &ImportOptions::default()).unwrap_err());
    assert_eq!(e.code, ErrorCode::InputUnsupported);
    let gj = f.file("visits.geojson", "{}");
    assert_eq!(
        input_error(f.import(Kind::Visits, &gj, &ImportOptions::default()).unwrap_err()).code,
        ErrorCode::InputUnsupported
    );
    let missing = f.dir.path().join("missing.csv");
    assert_eq!(f.import(Kind::Visits, &missing, &ImportOptions::default()).unwrap_err().code(), ErrorCode::Io);
}

#[test]
fn ingest_is_all_or_nothing_with_json_paths() {
    let mut f = fresh();
    f.places_and_persons();
    let clock = ManualClock::new(t0());
    let v = |p: &str, l: &str| Visit {
        person_id: p.into(),
        place_id: l.into(),
        t_in: Timestamp::from_second(100).unwrap(),
        t_out: None,
        source: VisitSource::Ticket,
    };
    let writer = Writer { scope: Scope::All, actor: test_actor(), pseudonymizer: None };
    let e = chainbreak_app::ingest::ingest_visits(
        &mut f.store,
        &writer,
        &mut [v("P1", "L1"), v("P1", "L404")],
        false,
        clock.now(),
    )
    .unwrap_err();
    let e = input_error(e);
    assert_eq!(e.location.json_path.as_deref(), Some("$.visits[1].place_id"));
    assert_eq!(f.store.count(Entity::Visit).unwrap(), 0);
    let r = chainbreak_app::ingest::ingest_visits(
        &mut f.store,
        &writer,
        &mut [v("P1", "L1"), v("P8", "L1"), v("P8", "L1")],
        true,
        clock.now(),
    )
    .unwrap();
    assert_eq!((r.accepted, r.registered_persons), (3, 1));
    // One audit record for the batch that was written, none for the one refused.
    let filter = AuditFilter { action: Some("ingest".into()), ..Default::default() };
    let audit = f.store.audit_records(0, 10, &filter).unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!((audit[0].actor.as_str(), audit[0].entity.as_str()), ("tester", "visit"));
    assert!(audit[0].record.starts_with("3 records"), "{}", audit[0].record);
}

fn test_actor() -> chainbreak_app::accounts::Actor {
    chainbreak_app::accounts::Actor { name: "tester".into(), via: "app tests".into(), reason: None }
}

#[test]
fn init_refuses_a_bad_zone_or_profile() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let e = chainbreak_app::init(&dir.path().join("a.db"), "Mars/Olympus", "cn-2022-9th", &clock).unwrap_err();
    assert!(e.to_string().contains("Mars/Olympus"));
    let e = chainbreak_app::init(&dir.path().join("b.db"), "UTC", "no-such-profile", &clock).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ProfileNotFound);
    assert!(!dir.path().join("b.db").exists() || std::fs::metadata(dir.path().join("b.db")).unwrap().len() == 0);
}

#[test]
fn a_deployment_keeps_using_the_profile_file_it_was_made_with() {
    use chainbreak_core::profile::Profile;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    // A file edited from a built-in, keeping its name: the file is what counts.
    let mut edited = Profile::builtin("cn-2022-9th").unwrap();
    edited.open_visits.default_dwell_minutes = 45;
    let file = dir.path().join("local.toml");
    std::fs::write(&file, edited.to_toml_string()).unwrap();
    let store = chainbreak_app::init(&dir.path().join("s.db"), "UTC", file.to_str().unwrap(), &clock).unwrap();
    let deployment = chainbreak_app::Deployment::new(Box::new(store), std::sync::Arc::new(clock)).unwrap();
    assert_eq!(deployment.profile.open_visits.default_dwell_minutes, 45);
    assert!(deployment.store.meta().unwrap().profile.ends_with("local.toml"));
}

mod accounts {
    use super::*;
    use chainbreak_app::accounts::{self, Actor, AuthError};
    use chainbreak_core::access::{Role, User};
    use chainbreak_store::AuditFilter;

    fn actor() -> Actor {
        Actor { name: "admin1".into(), via: "test".into(), reason: None }
    }

    fn with_area() -> Fixture {
        let mut f = fresh();
        let areas = f.file("areas.csv", "id,name,level\nD1,District,district\n");
        f.import(Kind::Areas, &areas, &ImportOptions::default()).unwrap();
        f
    }

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            role: Role::Tracer,
            unit: "CDC".into(),
            jurisdiction: "D1".into(),
            disabled: false,
            created_at: t0(),
        }
    }

    #[test]
    fn passwords_are_hashed_checked_and_audited() {
        let mut f = with_area();
        let e = accounts::add_user(&mut f.store, &user("li"), "short", &actor()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        accounts::add_user(&mut f.store, &user("li"), "correct horse battery", &actor()).unwrap();
        let hash = f.store.password_hash("li").unwrap().unwrap();
        assert!(hash.starts_with("$argon2id$") && !hash.contains("correct horse"), "{hash}");
        assert_eq!(accounts::sign_in(&f.store, "li", "correct horse battery").unwrap(), Ok(user("li")));
        assert_eq!(accounts::sign_in(&f.store, "li", "wrong horse battery").unwrap(), Err(AuthError::BadCredentials));
        assert_eq!(
            accounts::sign_in(&f.store, "nobody", "correct horse battery").unwrap(),
            Err(AuthError::BadCredentials)
        );
        accounts::reset_password(&mut f.store, "li", "another long password", t0(), &actor()).unwrap();
        assert!(accounts::sign_in(&f.store, "li", "another long password").unwrap().is_ok());
        accounts::set_disabled(&mut f.store, "li", true, t0(), &actor()).unwrap();
        assert_eq!(accounts::sign_in(&f.store, "li", "another long password").unwrap(), Err(AuthError::Disabled));
        let actions: Vec<String> = f
            .store
            .audit_records(0, 100, &AuditFilter { record: Some("li".into()), ..Default::default() })
            .unwrap()
            .into_iter()
            .map(|r| {
                assert_eq!((r.actor.as_str(), r.via.as_str()), ("admin1", "test"));
                r.action
            })
            .collect();
        assert_eq!(actions, ["user_add", "user_reset_password", "user_disable"]);
    }

    #[test]
    fn tokens_are_shown_once_stored_hashed_and_expire() {
        let mut f = with_area();
        accounts::add_user(&mut f.store, &user("li"), "correct horse battery", &actor()).unwrap();
        let (token, info) = accounts::issue_token(&mut f.store, "li", "laptop", Some(1), t0(), &actor()).unwrap();
        assert!(token.starts_with(accounts::TOKEN_PREFIX) && token.len() > 40);
        assert_eq!(info.expires_at, Some(t0() + jiff::SignedDuration::from_hours(24)));
        let soon = t0() + jiff::SignedDuration::from_hours(1);
        assert_eq!(accounts::authenticate_token(&f.store, &token, soon).unwrap().unwrap().name, "li");
        let later = t0() + jiff::SignedDuration::from_hours(25);
        assert_eq!(accounts::authenticate_token(&f.store, &token, later).unwrap(), Err(AuthError::BadToken));
        assert_eq!(accounts::authenticate_token(&f.store, "cbt_guess", soon).unwrap(), Err(AuthError::BadToken));
        assert_eq!(accounts::authenticate_token(&f.store, "not-a-token", soon).unwrap(), Err(AuthError::BadToken));
        let (other, other_info) = accounts::issue_token(&mut f.store, "li", "phone", None, t0(), &actor()).unwrap();
        assert!(accounts::authenticate_token(&f.store, &other, soon).unwrap().is_ok());
        accounts::revoke_token(&mut f.store, other_info.id, soon, &actor()).unwrap();
        assert_eq!(accounts::authenticate_token(&f.store, &other, soon).unwrap(), Err(AuthError::BadToken));
        assert!(accounts::revoke_token(&mut f.store, other_info.id, soon, &actor()).is_err(), "revoked once");
        let revocations = f
            .store
            .audit_records(0, 100, &AuditFilter { action: Some("token_revoke".into()), ..Default::default() })
            .unwrap();
        assert_eq!(revocations.len(), 1);
        assert_eq!(revocations[0].record, other_info.id.to_string());
        accounts::set_disabled(&mut f.store, "li", true, t0(), &actor()).unwrap();
        assert_eq!(accounts::authenticate_token(&f.store, &token, soon).unwrap(), Err(AuthError::Disabled));
        // The token itself is nowhere in the store file.
        drop(f.store);
        let bytes = std::fs::read(f.dir.path().join("s.db")).unwrap();
        let wal = std::fs::read(f.dir.path().join("s.db-wal")).unwrap_or_default();
        let needle = token.as_bytes();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle) && !wal.windows(needle.len()).any(|w| w == needle));
    }
}

#[test]
fn every_import_leaves_an_audit_record_and_a_refused_one_none() {
    let mut f = fresh();
    f.places_and_persons();
    let visits = f.file("v.csv", "person_id,place_id,t_in\nP1,L1,2022-03-01T08:00:00Z\nP2,L2,2022-03-01T09:00:00Z\n");
    let opts = ImportOptions { actor: Some(test_actor()), ..Default::default() };
    f.import(Kind::Visits, &visits, &opts).unwrap();
    let bad = f.file("bad.csv", "person_id,place_id,t_in\nP1,L404,2022-03-01T08:00:00Z\n");
    f.import(Kind::Visits, &bad, &opts).unwrap_err();
    let audit = f.store.audit_records(0, 100, &AuditFilter { action: Some("import".into()), ..Default::default() });
    let audit = audit.unwrap();
    // places and persons (by `system`), then the visits by the tester; nothing for the refused file.
    let seen: Vec<(&str, &str)> = audit.iter().map(|r| (r.actor.as_str(), r.entity.as_str())).collect();
    assert_eq!(seen, [("system", "places"), ("system", "persons"), ("tester", "visits")]);
    assert!(audit[2].record.contains("v.csv: 2 records"), "{}", audit[2].record);
}

// ---------------------------------------------------------------- pseudonymisation

const PHONE: &str = "13800000001";

#[test]
fn person_references_become_pseudonyms_and_identifiers_go_only_to_personal_data() {
    use chainbreak_app::pseudonym::{Pseudonymizer, generate_key_file};
    use chainbreak_core::model::IdentifierKind;
    let mut f = fresh();
    f.places_and_persons();
    let key_file = f.dir.path().join("pseudonym.key");
    generate_key_file(&key_file).unwrap();
    assert!(generate_key_file(&key_file).is_err(), "an existing key is never overwritten");
    let key = Pseudonymizer::from_key_file(&key_file).unwrap();
    let pseudonym = key.pseudonym(IdentifierKind::Phone, &format!("+86{PHONE}"));

    let visits = f.file(
        "v.csv",
        &format!(
            "person_id,place_id,t_in\nphone:+86 {PHONE},L1,2022-03-01T08:00:00Z\n\
             phone:+86-{PHONE},L2,2022-03-01T09:00:00Z\nphone:+86 {PHONE},L2,yesterday\n\
             phone:not a number,L1,2022-03-01T08:00:00Z\nP1,L1,2022-03-01T10:00:00Z\n"
        ),
    );
    // Without the key the file is refused whole, and the message does not repeat the number.
    let e = f.import(Kind::Visits, &visits, &ImportOptions { register_unknown: true, ..Default::default() });
    let e = e.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert!(!e.to_string().contains(PHONE), "{e}");
    assert_eq!(f.store.count(Entity::Visit).unwrap(), 0);

    let opts = ImportOptions {
        register_unknown: true,
        skip_invalid: true,
        pseudonymizer: Some(key.clone()),
        ..Default::default()
    };
    let report = f.import(Kind::Visits, &visits, &opts).unwrap();
    assert_eq!((report.imported, report.rejected, report.registered_persons), (3, 2, 1));
    let rejects = std::fs::read_to_string(report.rejects_file.unwrap()).unwrap();
    assert!(!rejects.contains(PHONE) && !rejects.contains("not a number"), "{rejects}");
    assert!(rejects.contains("phone:(withheld)"), "{rejects}");

    // The visits name the pseudonym; the phone is personal data of that pseudonym.
    let rows = f.store.visits_page(&Scope::All, &Default::default(), 0, 100).unwrap();
    let persons: Vec<&str> = rows.iter().map(|r| r.visit.person_id.as_str()).collect();
    assert_eq!(persons, [pseudonym.as_str(), pseudonym.as_str(), "P1"]);
    let ids = f.store.identifiers(&pseudonym).unwrap();
    assert_eq!((ids[0].kind, ids[0].value.as_str()), (IdentifierKind::Phone, "+8613800000001"));
    // Nowhere else: not in persons, the audit trail or the change feed.
    let persons = f.store.persons_page(&Scope::All, None, 1000).unwrap();
    assert!(persons.iter().all(|p| !p.id.contains(PHONE)));
    let audit = f.store.audit_records(0, 1000, &AuditFilter::default()).unwrap();
    assert!(!format!("{audit:?}").contains(PHONE));
    // The key is not in the store.
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    let db = std::fs::read(f.dir.path().join("s.db")).unwrap();
    let key_bytes = base64_decode(key_text.trim());
    assert!(!contains(&db, key_text.trim().as_bytes()) && !contains(&db, &key_bytes));

    // The generic path (JSON Lines, cases) maps the same number to the same pseudonym.
    let cases = f.file(
        "c.jsonl",
        &format!(
            r#"{{"id":"K1","person_id":"phone:+86 {PHONE}","classification":"confirmed","reported_at":"2022-03-02T00:00:00Z"}}
"#
        ),
    );
    f.import(Kind::Cases, &cases, &ImportOptions { pseudonymizer: Some(key), ..Default::default() }).unwrap();
    assert_eq!(f.store.case("K1").unwrap().unwrap().person_id, pseudonym);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

// ---------------------------------------------------------------- retention

#[test]
fn purge_deletes_what_the_profile_no_longer_allows_and_audits_it() {
    use chainbreak_core::profile::Profile;
    let mut f = fresh();
    f.places_and_persons();
    // t0 is 2022-03-15; with 28 days, visits that ended before 2022-02-15 go.
    let visits = f.file(
        "v.csv",
        "person_id,place_id,t_in,t_out\nP1,L1,2022-02-01T08:00:00Z,2022-02-01T09:00:00Z\n\
         P2,L1,2022-02-14T23:00:00Z,2022-02-15T01:00:00Z\nP3,L2,2022-02-10T08:00:00Z,\n\
         P1,L2,2022-03-14T08:00:00Z,2022-03-14T09:00:00Z\n",
    );
    f.import(Kind::Visits, &visits, &ImportOptions::default()).unwrap();
    let pings = f
        .file("p.csv", "person_id,t,lat,lon\nP1,2022-01-01T00:00:00Z,30.5,114.3\nP1,2022-03-14T00:00:00Z,30.5,114.3\n");
    f.import(Kind::Pings, &pings, &ImportOptions::default()).unwrap();

    let profile = Profile::builtin("cn-2022-9th").unwrap();
    assert_eq!((profile.retention.visit_days, profile.retention.location_days), (28, 28));
    let report = chainbreak_app::retention::purge(&mut f.store, &profile.retention, &test_actor(), t0()).unwrap();
    assert_eq!((report.visits, report.pings), (2, 1), "{report:?}");
    assert_eq!(report.visits_before.to_string(), "2022-02-15T00:00:00Z");
    let left: Vec<String> = f
        .store
        .visits_page(&Scope::All, &Default::default(), 0, 100)
        .unwrap()
        .into_iter()
        .map(|r| format!("{}@{}", r.visit.person_id, r.visit.place_id))
        .collect();
    assert_eq!(left, ["P2@L1", "P1@L2"], "the visit that ended after the cutoff stays");
    assert_eq!(f.store.count(Entity::Ping).unwrap(), 1);
    let audit = f.store.audit_records(0, 10, &AuditFilter { action: Some("purge".into()), ..Default::default() });
    let audit = audit.unwrap();
    let seen: Vec<(&str, &str)> = audit.iter().map(|r| (r.entity.as_str(), r.actor.as_str())).collect();
    assert_eq!(seen, [("visit", "tester"), ("ping", "tester")]);
    assert!(audit[0].record.starts_with("2 rows older than 2022-02-15"), "{}", audit[0].record);

    // Run again: nothing to delete, nothing audited.
    let again = chainbreak_app::retention::purge(&mut f.store, &profile.retention, &test_actor(), t0()).unwrap();
    assert_eq!((again.visits, again.pings), (0, 0));
    let n = f.store.audit_records(0, 10, &AuditFilter { action: Some("purge".into()), ..Default::default() });
    assert_eq!(n.unwrap().len(), 2);
}

// ---------------------------------------------------------------- tracing

#[test]
fn the_trace_index_follows_the_change_feed() {
    use chainbreak_app::trace::{IndexEntry, Refresh, TraceRequest, Tracer};
    use chainbreak_core::profile::Profile;
    let mut f = fresh();
    f.places_and_persons();
    let profile = Profile::builtin("cn-2022-9th").unwrap();
    let visits = f.file(
        "v.csv",
        "person_id,place_id,t_in,t_out\nP1,L1,2022-03-01T08:00:00Z,2022-03-01T09:00:00Z\n\
         P2,L1,2022-03-01T08:30:00Z,2022-03-01T09:30:00Z\n",
    );
    f.import(Kind::Visits, &visits, &ImportOptions::default()).unwrap();
    let (mut tracer, stats) = Tracer::load(&f.store, &profile).unwrap();
    assert_eq!(stats.visits, 2);
    let request = TraceRequest {
        rule: chainbreak_app::trace::Rule::VenueOverlap,
        index: vec![IndexEntry {
            person_id: "P1".into(),
            from: "2022-03-01T00:00:00Z".parse().unwrap(),
            case_id: None,
        }],
        to: Some("2022-03-03T00:00:00Z".parse().unwrap()),
        min_overlap: jiff::SignedDuration::from_mins(15),
        depth: 2,
    };
    let close = |t: &Tracer| -> Vec<String> {
        t.trace(&request).unwrap().tiers[0].contacts().map(|c| c.person_id.to_string()).collect()
    };
    assert_eq!(close(&tracer), ["P2"]);
    assert_eq!(tracer.refresh(&f.store, &profile).unwrap(), Refresh::Current);

    // New visits, a new person registered with them: merged in.
    let more = f.file(
        "more.csv",
        "person_id,place_id,t_in,t_out\nP3,L2,2022-03-02T08:00:00Z,2022-03-02T09:00:00Z\n\
         P1,L2,2022-03-02T08:00:00Z,2022-03-02T09:00:00Z\nP9,L1,2022-03-01T08:00:00Z,\n",
    );
    f.import(Kind::Visits, &more, &ImportOptions { register_unknown: true, ..Default::default() }).unwrap();
    assert_eq!(tracer.refresh(&f.store, &profile).unwrap(), Refresh::Extended(3));
    assert_eq!(close(&tracer), ["P2", "P3", "P9"], "P9's open visit lasts the mall's assumed stay");

    // The retention purge deletes visits: the index is rebuilt without them.
    let report = chainbreak_app::retention::purge(
        &mut f.store,
        &profile.retention,
        &test_actor(),
        "2022-03-30T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    assert_eq!(report.visits, 3, "those of 1 March");
    assert_eq!(tracer.refresh(&f.store, &profile).unwrap(), Refresh::Rebuilt);
    assert_eq!(close(&tracer), ["P3"]);
}

/// Trips by the seat rules, grid companions from pings, and the CDC's cumulative rule, through
/// the profile rule on a real store.
#[test]
fn the_profile_rule_traces_trips_grid_cells_and_cumulative_overlaps() {
    use chainbreak_app::trace::{ContactView, IndexEntry, Refresh, Rule, TraceRequest, Tracer};
    use chainbreak_core::profile::Profile;
    let mut f = fresh();
    let persons = f.file("persons.csv", &(1..=9).fold("id\n".to_string(), |s, i| format!("{s}P{i}\n")));
    f.import(Kind::Persons, &persons, &ImportOptions::default()).unwrap();
    let places = f.file("places.csv", "id,kind\nL1,mall\nR1,restaurant\n");
    f.import(Kind::Places, &places, &ImportOptions::default()).unwrap();
    let trips = f.file(
        "trips.csv",
        "id,mode,number,departure,arrival,sealed\nF1,flight,CZ3456,2022-03-02T08:00:00Z,2022-03-02T10:00:00Z,false\n\
         T1,train,G101,2022-03-03T08:00:00Z,2022-03-03T12:00:00Z,true\n\
         F0,flight,CZ1000,2022-02-20T08:00:00Z,2022-02-20T10:00:00Z,false\n",
    );
    f.import(Kind::Trips, &trips, &ImportOptions::default()).unwrap();
    let passengers = f.file(
        "passengers.csv",
        "trip_id,person_id,role,carriage,seat_row\nF1,P1,passenger,,10\nF1,P2,passenger,,13\nF1,P3,passenger,,14\n\
         F1,P4,crew,,\nT1,P1,passenger,3,5\nT1,P5,passenger,3,12\nT1,P6,passenger,4,5\n\
         F0,P1,passenger,,10\nF0,P9,passenger,,10\n",
    );
    f.import(Kind::Passengers, &passengers, &ImportOptions::default()).unwrap();
    // P1 and P7 in one cell from 08:00 to 09:00 (pings every 30 minutes); P8 pinged there once.
    let pings = f.file(
        "pings.csv",
        "person_id,t,lat,lon\nP1,2022-03-04T08:00:00Z,31.2300,121.4700\nP1,2022-03-04T08:30:00Z,31.2301,121.4700\n\
         P1,2022-03-04T09:00:00Z,31.2300,121.4701\nP7,2022-03-04T08:20:00Z,31.2302,121.4700\n\
         P7,2022-03-04T08:50:00Z,31.2300,121.4700\nP8,2022-03-04T08:40:00Z,31.2300,121.4700\n",
    );
    f.import(Kind::Pings, &pings, &ImportOptions::default()).unwrap();

    let profile = Profile::builtin("cn-2022-9th").unwrap();
    let (mut tracer, _) = Tracer::load(&f.store, &profile).unwrap();
    let request = TraceRequest {
        rule: Rule::Profile,
        index: vec![IndexEntry {
            person_id: "P1".into(),
            from: "2022-03-01T00:00:00Z".parse().unwrap(),
            case_id: None,
        }],
        to: Some("2022-03-05T00:00:00Z".parse().unwrap()),
        min_overlap: jiff::SignedDuration::ZERO,
        depth: 2,
    };
    let tier = |t: &Tracer, category: &str| -> Vec<ContactView> {
        let report = t.trace(&request).unwrap();
        report.tiers.into_iter().find(|t| t.category == category).map(|t| t.contacts().collect()).unwrap_or_default()
    };
    let close = tier(&tracer, "close");
    let seen: Vec<(&str, &str, bool)> = close
        .iter()
        .map(|c| (&*c.person_id, c.evidence[0].seat_rule.unwrap(), c.evidence[0].needs_confirmation))
        .collect();
    // P3 sat 4 rows away, P6 in another carriage, P9 flew before the window.
    assert_eq!(seen, [("P2", "rows", false), ("P4", "crew", true), ("P5", "carriage", false)]);
    let p2 = &close[0].evidence[0];
    assert_eq!(
        (p2.trip_id.as_deref(), p2.seat_row, p2.rows_apart, p2.overlap_minutes),
        (Some("F1"), Some(13), Some(3), 120.0)
    );

    // P1 and P2 both cases: linked both ways by the flight (rows 10 and 13).
    let both = TraceRequest {
        index: vec![
            request.index[0].clone(),
            IndexEntry { person_id: "P2".into(), from: "2022-03-01T00:00:00Z".parse().unwrap(), case_id: None },
        ],
        ..request.clone()
    };
    let links: Vec<(String, String, Option<&str>)> = tracer
        .trace(&both)
        .unwrap()
        .links
        .iter()
        .map(|l| (l.source.clone(), l.exposed.clone(), l.evidence.seat_rule))
        .collect();
    let link = |a: &str, b: &str| (a.to_string(), b.to_string(), Some("rows"));
    assert_eq!(links, [link("P1", "P2"), link("P2", "P1")]);

    let trail = &tracer.trace(&request).unwrap().trails[0];
    let rode: Vec<(&str, Option<u32>)> = trail.trips.iter().map(|t| (t.trip_id.as_str(), t.seat_row)).collect();
    assert_eq!(rode, [("F1", Some(10)), ("T1", Some(5))], "the trail has the trips in the window, not F0");

    let grid = tier(&tracer, "grid");
    assert_eq!(grid.len(), 1, "P8's lone ping is no stay: {grid:?}");
    assert_eq!(&*grid[0].person_id, "P7");
    let e = &grid[0].evidence[0];
    assert_eq!((e.overlap_minutes, e.place_id.as_deref()), (30.0, None), "08:20 to 08:50");
    assert_eq!(e.cell.as_deref().map(str::len), Some(15), "an H3 cell: {e:?}");

    // Late data: another ping of P8 makes a stay of 20 minutes with P1.
    let late = f.file("late.csv", "person_id,t,lat,lon\nP8,2022-03-04T09:00:00Z,31.2300,121.4700\n");
    f.import(Kind::Pings, &late, &ImportOptions::default()).unwrap();
    assert!(matches!(tracer.refresh(&f.store, &profile).unwrap(), Refresh::Extended(_)));
    let grid: Vec<String> = tier(&tracer, "grid").into_iter().map(|c| c.person_id.to_string()).collect();
    assert_eq!(grid, ["P7", "P8"]);

    // The CDC's rule: overlaps with the case summed over 24 hours, at least 15 minutes.
    let visits = f.file(
        "visits.csv",
        "person_id,place_id,t_in,t_out\nP1,R1,2022-03-02T12:00:00Z,2022-03-02T12:10:00Z\n\
         P1,R1,2022-03-02T18:00:00Z,2022-03-02T18:10:00Z\nP2,R1,2022-03-02T12:00:00Z,2022-03-02T12:10:00Z\n\
         P2,R1,2022-03-02T18:00:00Z,2022-03-02T18:10:00Z\nP3,R1,2022-03-02T12:00:00Z,2022-03-02T12:10:00Z\n\
         P1,R1,2022-03-04T12:00:00Z,2022-03-04T12:10:00Z\nP3,R1,2022-03-04T12:00:00Z,2022-03-04T12:10:00Z\n",
    );
    f.import(Kind::Visits, &visits, &ImportOptions::default()).unwrap();
    let cdc = Profile::builtin("cdc-2020-12").unwrap();
    let (tracer, _) = Tracer::load(&f.store, &cdc).unwrap();
    let close = tier(&tracer, "close");
    let at_places: Vec<(&str, Vec<f64>)> = close
        .iter()
        .filter(|c| c.evidence.iter().any(|e| e.place_id.is_some()))
        .map(|c| {
            let minutes = c.evidence.iter().filter(|e| e.place_id.is_some()).map(|e| e.overlap_minutes).collect();
            (&*c.person_id, minutes)
        })
        .collect();
    // P2: 10 + 10 minutes within 24 hours (first and last shown); P3: 10 minutes twice, 48
    // hours apart.
    assert_eq!(at_places, [("P2", vec![10.0, 10.0])]);
    assert_eq!(close[0].exposures, 3, "two overlaps and a flight");
    assert!(close.iter().find(|c| &*c.person_id == "P2").unwrap().evidence.iter().all(|e| e.needs_confirmation));
    // No seat rules: everyone who rode with the case for 15 minutes is a proximity proposal.
    let riders: Vec<&str> = close
        .iter()
        .filter(|c| c.evidence.iter().any(|e| e.seat_rule == Some("proximity")))
        .map(|c| &*c.person_id)
        .collect();
    assert_eq!(riders, ["P2", "P3", "P4", "P5", "P6"]);
    assert!(tier(&tracer, "grid").is_empty(), "the CDC's guidance has no grid rule");
}

// ---------------------------------------------------------------- the profile rule against an oracle

mod profile_rule_oracle {
    use std::collections::{BTreeMap, BTreeSet};

    use chainbreak_app::trace::{IndexEntry, Rule, Tier, TraceRequest, Tracer};
    use chainbreak_core::model::PlaceKind;
    use chainbreak_core::profile::{PlaceSetting, Profile};
    use proptest::prelude::*;

    use super::*;

    const BASE: i64 = 1_646_092_800; // 2022-03-01T00:00:00Z
    const KINDS: [PlaceKind; 5] = [
        PlaceKind::Residence,
        PlaceKind::Restaurant,
        PlaceKind::Mall,
        PlaceKind::Workplace,
        PlaceKind::QuarantineFacility,
    ];

    #[derive(Debug, Clone)]
    struct Town {
        /// Place kinds, by place number.
        places: Vec<usize>,
        /// (person, place, t_in, t_out) in 5-minute steps from BASE.
        visits: Vec<(u32, usize, i64, Option<i64>)>,
        /// Household of each person (a number; people of the same number live together).
        households: Vec<u8>,
        /// One flight: (person, row, crew), departing at `flight_at` for two hours.
        riders: Vec<(u32, u32, bool)>,
        flight_at: i64,
        /// The index person's window start and the common end, in 5-minute steps.
        from: i64,
        to: i64,
    }

    fn town() -> impl Strategy<Value = Town> {
        (
            prop::collection::vec(0..KINDS.len(), 4),
            prop::collection::vec((0u32..8, 0usize..4, 0i64..60, prop::option::weighted(0.8, 0i64..12)), 0..30),
            prop::collection::vec(0u8..4, 8),
            prop::collection::vec((0u32..8, 1u32..12, prop::bool::weighted(0.15)), 0..6),
            0i64..60,
            0i64..20,
            30i64..70,
        )
            .prop_map(|(places, visits, households, riders, flight_at, from, to)| Town {
                places,
                visits: visits.into_iter().map(|(p, l, t, d)| (p, l, t, d.map(|d| t + d))).collect(),
                households,
                riders,
                flight_at,
                from,
                to,
            })
    }

    fn at(step: i64) -> Timestamp {
        Timestamp::from_second(BASE + step * 300).unwrap()
    }

    /// The profile rule of `profile` read literally, pair by pair: (category, person) sorted.
    fn oracle(t: &Town, profile: &Profile) -> BTreeSet<(String, String)> {
        let setting = |table: &[PlaceSetting], place: usize| {
            table.iter().find(|s| s.kind == KINDS[t.places[place]]).map(|s| s.min_overlap_minutes as i64 * 60)
        };
        let eff: Vec<(u32, usize, i64, i64)> = t
            .visits
            .iter()
            .map(|&(p, l, t_in, t_out)| {
                let t_in = BASE + t_in * 300;
                let dwell = i64::from(profile.open_visits.dwell_minutes(KINDS[t.places[l]])) * 60;
                (p, l, t_in, t_out.map_or(t_in + dwell, |o| BASE + o * 300))
            })
            .collect();
        let to = BASE + t.to * 300;
        // Persons exposed to `sources` (person → window start) at the places of `table`, not
        // `excluded`; each with their first exposure.
        let exposed = |sources: &BTreeMap<u32, i64>, table: &[PlaceSetting], excluded: &BTreeSet<u32>| {
            let mut found: BTreeMap<u32, i64> = BTreeMap::new();
            for a in &eff {
                let Some(&from) = sources.get(&a.0) else { continue };
                let Some(min) = setting(table, a.1) else { continue };
                let (a_in, a_out) = (a.2.max(from), a.3.min(to));
                if a_out <= a_in {
                    continue;
                }
                for b in eff.iter().filter(|b| b.1 == a.1 && !excluded.contains(&b.0)) {
                    let start = a_in.max(b.2);
                    if a_out.min(b.3) - start >= min {
                        let e = found.entry(b.0).or_insert(start);
                        *e = (*e).min(start);
                    }
                }
            }
            found
        };
        let from = BASE + t.from * 300;
        let sources = BTreeMap::from([(0u32, from)]);
        let mut excluded = BTreeSet::from([0u32]);
        let cc = &profile.close_contact;
        let mut close = exposed(&sources, &cc.places, &excluded);
        let add = |close: &mut BTreeMap<u32, i64>, p: u32, e: i64| {
            let first = close.entry(p).or_insert(e);
            *first = (*first).min(e);
        };
        if to >= from {
            for p in (1..8u32).filter(|p| t.households[*p as usize] == t.households[0]) {
                add(&mut close, p, from);
            }
        }
        // The flight: rows ±3 and the crew, when the source was on board inside the window.
        let (dep, arr) = (BASE + t.flight_at * 300, BASE + t.flight_at * 300 + 7200);
        let mut seen = BTreeSet::new();
        let riders: Vec<_> = t.riders.iter().filter(|r| seen.insert(r.0)).collect();
        if let Some(me) = riders.iter().find(|r| r.0 == 0)
            && from.max(dep) < to.min(arr)
        {
            let rows = cc.flight.as_ref().unwrap().rows_either_side;
            for other in riders.iter().filter(|r| r.0 != 0) {
                if me.2 || other.2 || me.1.abs_diff(other.1) <= rows {
                    add(&mut close, other.0, from.max(dep));
                }
            }
        }
        excluded.extend(close.keys());
        let mut out: BTreeSet<(String, String)> =
            close.keys().map(|p| ("close".to_string(), format!("P{p}"))).collect();
        if profile.co_exposed.enabled {
            for p in exposed(&sources, &profile.co_exposed.places, &excluded).keys() {
                out.insert(("co_exposed".into(), format!("P{p}")));
            }
        }
        let sc = &profile.secondary_contact;
        if sc.enabled {
            let mut secondary: BTreeSet<u32> = exposed(&close, &sc.places, &excluded).into_keys().collect();
            for (&c, &e) in &close {
                if to >= e {
                    let home = t.households[c as usize];
                    secondary.extend((0..8u32).filter(|p| t.households[*p as usize] == home && !excluded.contains(p)));
                }
            }
            out.extend(secondary.into_iter().map(|p| ("secondary".to_string(), format!("P{p}"))));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 60,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_2029),
            ..ProptestConfig::default()
        })]

        #[test]
        fn the_profile_rule_matches_the_oracle(t in town()) {
            let f = imported(&t, &(0..8).collect::<Vec<_>>());
            let profile = Profile::builtin("cn-2022-9th").unwrap();
            let (tracer, _) = Tracer::load(&f.store, &profile).unwrap();
            let report = tracer
                .trace(&TraceRequest {
                    rule: Rule::Profile,
                    index: vec![IndexEntry { person_id: "P0".into(), from: at(t.from), case_id: None }],
                    to: Some(at(t.to)),
                    min_overlap: jiff::SignedDuration::ZERO,
                    depth: 2,
                })
                .unwrap();
            let got: BTreeSet<(String, String)> = report
                .tiers
                .iter()
                .flat_map(|tier| tier.contacts().map(|c| (tier.category.to_string(), c.person_id.to_string())))
                .collect();
            prop_assert_eq!(got, oracle(&t, &profile));
        }

        /// A report keeps its contacts at places by key: it serialises exactly as the report of
        /// the same contacts spelled in ids, and its hash is that of the sorted lines, whatever
        /// the order persons were registered in (keys in or out of the ids' order).
        #[test]
        fn a_report_serialises_as_its_contacts_spelled(
            t in town(),
            order in Just((0..8u32).collect::<Vec<_>>()).prop_shuffle(),
            sources in prop::collection::btree_set(0u32..8, 1..4),
            venue in any::<bool>(),
            outside in prop::collection::vec(any::<bool>(), 8),
        ) {
            use sha2::Digest;
            let f = imported(&t, &order);
            let profile = Profile::builtin("cn-2022-9th").unwrap();
            let (tracer, _) = Tracer::load(&f.store, &profile).unwrap();
            let mut report = tracer
                .trace(&TraceRequest {
                    rule: if venue { Rule::VenueOverlap } else { Rule::Profile },
                    index: sources
                        .iter()
                        .map(|p| IndexEntry { person_id: format!("P{p}"), from: at(t.from), case_id: None })
                        .collect(),
                    to: Some(at(t.to)),
                    min_overlap: jiff::SignedDuration::from_mins(10),
                    depth: 2,
                })
                .unwrap();
            let spelled = |r: &chainbreak_app::trace::TraceReport| chainbreak_app::trace::TraceReport {
                tiers: r.tiers.iter().map(|t| Tier::new(t.tier, t.category, t.contacts().collect())).collect(),
                // Its digest taken from its own tiers.
                hash: Default::default(),
                ..r.clone()
            };
            let naive = spelled(&report);
            prop_assert_eq!(serde_json::to_string(&report).unwrap(), serde_json::to_string(&naive).unwrap());
            prop_assert_eq!(&report, &naive);
            // The hash, from the spelled contacts.
            let mut lines: Vec<(u8, String)> = naive
                .tiers
                .iter()
                .flat_map(|t| t.contacts().map(|c| (t.tier, c.person_id.to_string())).collect::<Vec<_>>())
                .collect();
            lines.sort();
            let mut h = sha2::Sha256::new();
            for (tier, id) in &lines {
                h.update(format!("{tier}\t{id}\n").as_bytes());
            }
            let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
            prop_assert_eq!(report.hash(), hex.as_str());
            // Contacts in the order of their ids.
            for tier in &naive.tiers {
                let ids: Vec<String> = tier.contacts().map(|c| c.person_id.to_string()).collect();
                prop_assert!(ids.is_sorted(), "{:?}", ids);
                prop_assert_eq!(tier.person_ids().map(|id| id.to_string()).collect::<Vec<_>>(), ids);
            }
            // Contacts marked outside the jurisdiction serialise so, either way.
            for tier in &mut report.tiers {
                let flags: Vec<bool> = (0..tier.len()).map(|i| outside[i % outside.len()]).collect();
                tier.set_outside_jurisdiction(&flags);
                prop_assert_eq!(tier.contacts().map(|c| c.outside_jurisdiction).collect::<Vec<_>>(), flags);
            }
            let naive = spelled(&report);
            prop_assert_eq!(serde_json::to_string(&report).unwrap(), serde_json::to_string(&naive).unwrap());
        }
    }

    /// The town imported, persons registered in `order` (their keys in that order).
    fn imported(t: &Town, order: &[u32]) -> Fixture {
        let mut f = fresh();
        let persons = f.file("persons.csv", &order.iter().fold("id\n".to_string(), |s, i| format!("{s}P{i}\n")));
        f.import(Kind::Persons, &persons, &ImportOptions::default()).unwrap();
        let places = t
            .places
            .iter()
            .enumerate()
            .fold("id,kind\n".to_string(), |s, (i, k)| format!("{s}L{i},{}\n", KINDS[*k].as_str()));
        f.import(Kind::Places, &f.file("places.csv", &places), &ImportOptions::default()).unwrap();
        let visits = t.visits.iter().fold("person_id,place_id,t_in,t_out\n".to_string(), |s, v| {
            format!("{s}P{},L{},{},{}\n", v.0, v.1, at(v.2), v.3.map(|o| at(o).to_string()).unwrap_or_default())
        });
        f.import(Kind::Visits, &f.file("visits.csv", &visits), &ImportOptions::default()).unwrap();
        let groups = (0..4).fold("id,kind\n".to_string(), |s, h| format!("{s}H{h},household\n"));
        f.import(Kind::Groups, &f.file("groups.csv", &groups), &ImportOptions::default()).unwrap();
        let members = t
            .households
            .iter()
            .enumerate()
            .fold("group_id,person_id\n".to_string(), |s, (p, h)| format!("{s}H{h},P{p}\n"));
        f.import(Kind::Memberships, &f.file("members.csv", &members), &ImportOptions::default()).unwrap();
        let trips =
            format!("id,mode,number,departure,arrival\nF1,flight,CZ1,{},{}\n", at(t.flight_at), at(t.flight_at + 24));
        f.import(Kind::Trips, &f.file("trips.csv", &trips), &ImportOptions::default()).unwrap();
        let mut seen = BTreeSet::new();
        let riders = t
            .riders
            .iter()
            .filter(|r| seen.insert(r.0))
            .fold("trip_id,person_id,role,seat_row\n".to_string(), |s, r| {
                format!("{s}F1,P{},{},{}\n", r.0, if r.2 { "crew" } else { "passenger" }, r.1)
            });
        f.import(Kind::Passengers, &f.file("riders.csv", &riders), &ImportOptions::default()).unwrap();
        f
    }

    /// The random towns are not vacuous: each category turns up.
    #[test]
    fn the_towns_exercise_every_category() {
        use proptest::strategy::ValueTree;
        let profile = Profile::builtin("cn-2022-9th").unwrap();
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..300 {
            let t = town().new_tree(&mut runner).unwrap().current();
            for category in oracle(&t, &profile).into_iter().map(|(c, _)| c).collect::<BTreeSet<_>>() {
                *seen.entry(category).or_default() += 1;
            }
        }
        assert!(seen.values().all(|n| *n >= 20) && seen.len() == 3, "{seen:?}");
    }
}

// ---------------------------------------------------------------- contact proposals

mod proposals {
    use std::sync::Arc;

    use chainbreak_app::Deployment;
    use chainbreak_app::accounts::Actor;
    use chainbreak_app::proposals::{self, RecordedCase, RecordedRequest, Verdict};
    use chainbreak_app::trace::Rule;
    use chainbreak_core::access::{Role, User};
    use chainbreak_core::model::{Area, Case, Classification, Person, Place, PlaceKind, Visit, VisitSource};
    use chainbreak_core::time::ManualClock;
    use chainbreak_store::{AuditFilter, ProposalFilter, ProposalStatus, Scope, Store};

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn user(name: &str, jurisdiction: &str) -> User {
        User {
            name: name.into(),
            role: Role::Tracer,
            unit: "CDC".into(),
            jurisdiction: jurisdiction.into(),
            disabled: false,
            created_at: t0(),
        }
    }

    fn actor(name: &str) -> Actor {
        Actor { name: name.into(), via: "test".into(), reason: None }
    }

    fn case(onset: Option<jiff::civil::Date>) -> Case {
        Case {
            id: "K1".into(),
            person_id: "P1".into(),
            classification: Classification::Confirmed,
            onset,
            sampled_at: Some(at("2022-03-05T00:00:00Z")),
            reported_at: at("2022-03-05T06:00:00Z"),
            imported: false,
            detection: None,
            severity: None,
            outcome: None,
            vaccine_doses: None,
            infector_case_id: None,
            cluster: None,
        }
    }

    fn visit(person: &str, place: &str, from: &str, to: &str) -> Visit {
        Visit {
            person_id: person.into(),
            place_id: place.into(),
            t_in: at(from),
            t_out: Some(at(to)),
            source: VisitSource::VenueCode,
        }
    }

    /// City C1 with districts D1 (H1, L1) and D2 (H2, L2); P1 (case K1, no onset, sampled on
    /// 5 March: window from 1 March), P2, P3, P5, P6 live in D1, P4 in D2.
    fn deployment(dir: &Path) -> Deployment {
        let path = dir.join("p.db");
        let clock = ManualClock::new(t0());
        let mut store = chainbreak_app::init(&path, "Asia/Shanghai", "cn-2022-9th", &clock).unwrap();
        let mut b = store.begin(t0()).unwrap();
        let area = |id: &str, level: &str, parent: Option<&str>| Area {
            id: id.into(),
            name: id.into(),
            level: level.into(),
            parent: parent.map(Into::into),
            geometry: None,
        };
        b.put_areas(&[
            area("C1", "city", None),
            area("D1", "district", Some("C1")),
            area("D2", "district", Some("C1")),
        ])
        .unwrap();
        let place = |id: &str, kind: PlaceKind, area: &str| Place {
            id: id.into(),
            name: None,
            kind,
            key_place: false,
            lat: None,
            lon: None,
            area: Some(area.into()),
        };
        b.put_places(&[
            place("H1", PlaceKind::Residence, "D1"),
            place("L1", PlaceKind::Restaurant, "D1"),
            place("H2", PlaceKind::Residence, "D2"),
            place("L2", PlaceKind::Restaurant, "D2"),
        ])
        .unwrap();
        let person = |id: &str, home: &str| Person {
            id: id.into(),
            residence: Some(home.into()),
            birth_year: None,
            sex: None,
            occupation: None,
        };
        b.put_persons(&[
            person("P1", "H1"),
            person("P2", "H1"),
            person("P3", "H1"),
            person("P4", "H2"),
            person("P5", "H1"),
            person("P6", "H1"),
        ])
        .unwrap();
        b.put_cases(&[case(None)]).unwrap();
        b.commit().unwrap();
        let dep = Deployment::new(Box::new(store), Arc::new(ManualClock::new(t0()))).unwrap();
        assert!(!dep.auto_confirm, "automatic confirmation is off unless a simulation sets it");
        dep
    }

    fn ingest(dep: &mut Deployment, visits: Vec<Visit>) {
        let writer = Writer { scope: Scope::All, actor: actor("feed"), pseudonymizer: None };
        let mut visits = visits;
        chainbreak_app::ingest::ingest_visits(&mut *dep.store, &writer, &mut visits, false, t0()).unwrap();
    }

    /// (contact, category, status, changed_since_decision, in_result) of K1's proposals.
    fn states(dep: &Deployment) -> Vec<(String, String, ProposalStatus, bool, bool)> {
        let filter = ProposalFilter { case_id: Some("K1".into()), ..Default::default() };
        let page = proposals::list_within(&*dep.store, &Scope::All, &filter, None, 1000).unwrap();
        let mut out: Vec<_> = page
            .items
            .into_iter()
            .map(|v| {
                let p = v.proposal;
                (p.contact_id, p.category, p.status, p.changed_since_decision, p.in_result)
            })
            .collect();
        out.sort();
        out
    }

    fn id_of(dep: &Deployment, contact: &str) -> i64 {
        let page = proposals::list_within(&*dep.store, &Scope::All, &ProposalFilter::default(), None, 1000).unwrap();
        page.items.iter().find(|v| v.proposal.contact_id == contact).unwrap().proposal.id
    }

    fn row(
        contact: &str,
        category: &str,
        status: ProposalStatus,
        changed: bool,
        in_result: bool,
    ) -> (String, String, ProposalStatus, bool, bool) {
        (contact.into(), category.into(), status, changed, in_result)
    }

    #[test]
    fn proposals_are_recorded_decided_and_recomputed_without_undoing_a_decision() {
        use ProposalStatus::*;
        let dir = tempfile::tempdir().unwrap();
        let mut dep = deployment(dir.path());
        ingest(
            &mut dep,
            vec![
                visit("P1", "L1", "2022-03-03T08:00:00Z", "2022-03-03T10:00:00Z"),
                visit("P2", "L1", "2022-03-03T08:30:00Z", "2022-03-03T09:30:00Z"),
                visit("P3", "L1", "2022-03-03T09:00:00Z", "2022-03-03T10:00:00Z"),
                visit("P4", "L1", "2022-03-03T09:30:00Z", "2022-03-03T10:30:00Z"),
                // P5 meets the close contact P2 the next day: a secondary contact.
                visit("P2", "L2", "2022-03-04T12:00:00Z", "2022-03-04T13:00:00Z"),
                visit("P5", "L2", "2022-03-04T12:00:00Z", "2022-03-04T13:00:00Z"),
            ],
        );
        let request = RecordedRequest {
            rule: Rule::VenueOverlap.as_str().into(),
            depth: 2,
            min_overlap_seconds: 15 * 60,
            to: Some(at("2022-03-10T00:00:00Z")),
            cases: vec![RecordedCase { case_id: "K1".into(), from: None }],
            persons: Vec::new(),
        };
        let (report, recorded) = proposals::trace_and_record(&mut dep, &request, &actor("li")).unwrap();
        assert_eq!(report.tiers[0].count, 3);
        assert_eq!((recorded.indexes, recorded.proposed), (1, 4));
        assert_eq!(
            states(&dep),
            [
                row("P2", "close", Proposed, false, true),
                row("P3", "close", Proposed, false, true),
                row("P4", "close", Proposed, false, true),
                row("P5", "secondary", Proposed, false, true),
            ]
        );
        // Recording the same result again writes nothing.
        let (_, again) = proposals::trace_and_record(&mut dep, &request, &actor("li")).unwrap();
        assert_eq!((again.indexes, again.changed), (1, 0));

        // A tracer of D1 confirms P2 and rejects P3 (with a reason); P4 lives in D2.
        let d1 = user("d1-tracer", "D1");
        let d2 = user("d2-tracer", "D2");
        let (p2, p3, p4) = (id_of(&dep, "P2"), id_of(&dep, "P3"), id_of(&dep, "P4"));
        let err = proposals::decide(&mut *dep.store, &d1, &actor("d1-tracer"), &[p3], Verdict::Reject, Some(" "), t0())
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "a rejection needs a reason");
        let err = proposals::decide(&mut *dep.store, &d1, &actor("d1-tracer"), &[p2, p4], Verdict::Confirm, None, t0())
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound, "P4 lives outside D1: absent, and nothing is decided");
        assert_eq!(dep.store.proposal(p2).unwrap().unwrap().status, Proposed);
        proposals::decide(&mut *dep.store, &d1, &actor("d1-tracer"), &[p2], Verdict::Confirm, None, t0()).unwrap();
        let rejected = proposals::decide(
            &mut *dep.store,
            &d1,
            &actor("d1-tracer"),
            &[p3],
            Verdict::Reject,
            Some("behind glass"),
            t0(),
        )
        .unwrap();
        assert_eq!(rejected[0].proposal.decision_reason.as_deref(), Some("behind glass"));
        // Another district's tracer neither sees nor decides them.
        let err = proposals::decide(&mut *dep.store, &d2, &actor("d2-tracer"), &[p2], Verdict::Reject, Some("x"), t0())
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
        assert_eq!(proposals::get(&*dep.store, &d2, p2).unwrap_err().code(), ErrorCode::NotFound);
        let seen = proposals::list(&*dep.store, &d2, &ProposalFilter::default(), None, 100).unwrap();
        assert_eq!(seen.items.iter().map(|v| v.proposal.contact_id.as_str()).collect::<Vec<_>>(), ["P4"]);
        let seen = proposals::list(&*dep.store, &d1, &ProposalFilter::default(), None, 100).unwrap();
        assert_eq!(seen.items.len(), 3, "P2, P3 and P5 live in D1");
        // A viewer may read but not decide.
        let viewer = User { role: Role::Viewer, ..user("v", "D1") };
        assert!(proposals::get(&*dep.store, &viewer, p2).is_ok());
        let err =
            proposals::decide(&mut *dep.store, &viewer, &actor("v"), &[p2], Verdict::Confirm, None, t0()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden);
        // Every decision is audited, with the reason.
        let audit = |action: &str| {
            let f = AuditFilter { action: Some(action.into()), ..Default::default() };
            dep.store.audit_records(0, 100, &f).unwrap()
        };
        let confirmed = audit("proposal_confirm");
        assert_eq!(confirmed.len(), 1);
        assert_eq!((confirmed[0].actor.as_str(), confirmed[0].record.clone()), ("d1-tracer", p2.to_string()));
        let rejected = audit("proposal_reject");
        assert_eq!(rejected[0].reason.as_deref(), Some("behind glass"));
        assert_eq!(audit("proposals_record").len(), 1, "the first recording (the second changed nothing)");

        // Nothing relevant happened: a recompute traces nothing.
        let r = proposals::recompute(&mut dep, &actor("system")).unwrap();
        assert_eq!((r.indexes, r.stale, r.traced, r.recorded.changed), (1, 0, 0, 0));
        // Late batches of visits outside K1's window (1 to 10 March) change nothing: nothing
        // is traced. (A batch is judged by the time all its visits span.)
        for day in ["2022-02-20", "2022-03-12"] {
            let (from, to) = (format!("{day}T08:00:00Z"), format!("{day}T10:00:00Z"));
            ingest(&mut dep, vec![visit("P1", "L1", &from, &to), visit("P6", "L1", &from, &to)]);
        }
        let r = proposals::recompute(&mut dep, &actor("system")).unwrap();
        assert_eq!((r.stale, r.traced), (0, 0));
        assert_eq!(dep.store.trace_records().unwrap()[0].seq, r.seq, "current: the feed is read from there next");

        // Late visits: P6 was at L1 with P1 (a new close contact), and P1 met P2 again.
        ingest(
            &mut dep,
            vec![
                visit("P6", "L1", "2022-03-03T08:00:00Z", "2022-03-03T09:00:00Z"),
                visit("P1", "L2", "2022-03-06T18:00:00Z", "2022-03-06T19:00:00Z"),
                visit("P2", "L2", "2022-03-06T18:00:00Z", "2022-03-06T19:00:00Z"),
            ],
        );
        let r = proposals::recompute(&mut dep, &actor("system")).unwrap();
        assert_eq!((r.stale, r.traced, r.recorded.changed, r.recorded.proposed, r.recorded.flagged), (1, 1, 1, 1, 1));
        assert_eq!(
            states(&dep),
            [
                row("P2", "close", Confirmed, true, true),
                row("P3", "close", Rejected, false, true),
                row("P4", "close", Proposed, false, true),
                row("P5", "secondary", Proposed, false, true),
                row("P6", "close", Proposed, false, true),
            ],
            "the new contact is proposed; P2's evidence changed after the decision: flagged, still confirmed"
        );
        let p2_now = proposals::get(&*dep.store, &d1, p2).unwrap();
        assert_eq!(p2_now.proposal.exposures, 2);
        assert_eq!(p2_now.evidence.as_array().unwrap().len(), 2, "{:?}", p2_now.evidence);
        // A person looks again and confirms: the flag is cleared.
        proposals::decide(&mut *dep.store, &d1, &actor("d1-tracer"), &[p2], Verdict::Confirm, Some("seen again"), t0())
            .unwrap();
        assert!(!dep.store.proposal(p2).unwrap().unwrap().changed_since_decision);

        // Another case is reported, and K1 is updated without new dates: K1's window does not
        // move, so nothing is traced again.
        let mut b = dep.store.begin(t0()).unwrap();
        b.put_cases(&[Case { id: "K9".into(), person_id: "P4".into(), ..case(None) }]).unwrap();
        b.put_cases(&[Case { severity: Some(chainbreak_core::model::Severity::Mild), ..case(None) }]).unwrap();
        b.commit().unwrap();
        let r = proposals::recompute(&mut dep, &actor("system")).unwrap();
        assert_eq!((r.stale, r.traced), (0, 0));

        // The case's onset is entered: 8 March, so the window opens on 4 March (local), after
        // the dinner at L1. P2 stays a contact (6 March), with other evidence.
        let mut b = dep.store.begin(t0()).unwrap();
        b.put_cases(&[case(Some(jiff::civil::date(2022, 3, 8)))]).unwrap();
        b.commit().unwrap();
        let r = proposals::recompute(&mut dep, &actor("system")).unwrap();
        assert_eq!((r.stale, r.recorded.withdrawn, r.recorded.flagged), (1, 3, 2));
        assert_eq!(
            states(&dep),
            [
                row("P2", "close", Confirmed, true, true),
                row("P3", "close", Rejected, true, false),
                row("P4", "close", Withdrawn, false, false),
                row("P5", "secondary", Withdrawn, false, false),
                row("P6", "close", Withdrawn, false, false),
            ],
            "undecided contacts no longer found are withdrawn; decided ones keep their decision, flagged"
        );
        let record = dep.store.trace_records().unwrap();
        assert_eq!(record[0].from, at("2022-03-03T16:00:00Z"), "4 days before onset, local midnight");
        // A withdrawn proposal is not decided.
        let err = proposals::decide(&mut *dep.store, &d2, &actor("d2-tracer"), &[p4], Verdict::Confirm, None, t0())
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InputInconsistent);
        // The changes are in the change feed like any other record's.
        let changes = dep.store.changes_since(0, 100_000).unwrap();
        assert!(changes.iter().any(|c| c.entity == Entity::Proposal && c.key_from == p4));
    }

    #[test]
    fn a_contact_needing_no_confirmation_is_still_a_proposal_unless_a_simulation_confirms_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut dep = deployment(dir.path());
        ingest(
            &mut dep,
            vec![
                visit("P1", "L1", "2022-03-03T08:00:00Z", "2022-03-03T10:00:00Z"),
                visit("P2", "L1", "2022-03-03T08:30:00Z", "2022-03-03T09:30:00Z"),
            ],
        );
        let request = RecordedRequest {
            rule: Rule::VenueOverlap.as_str().into(),
            depth: 1,
            min_overlap_seconds: 15 * 60,
            to: None,
            cases: vec![RecordedCase { case_id: "K1".into(), from: None }],
            persons: Vec::new(),
        };
        proposals::trace_and_record(&mut dep, &request, &actor("li")).unwrap();
        assert_eq!(dep.store.proposal(id_of(&dep, "P2")).unwrap().unwrap().status, ProposalStatus::Proposed);

        let dir2 = tempfile::tempdir().unwrap();
        let mut sim = deployment(dir2.path());
        sim.auto_confirm = true;
        ingest(
            &mut sim,
            vec![
                visit("P1", "L1", "2022-03-03T08:00:00Z", "2022-03-03T10:00:00Z"),
                visit("P2", "L1", "2022-03-03T08:30:00Z", "2022-03-03T09:30:00Z"),
            ],
        );
        let (_, r) = proposals::trace_and_record(&mut sim, &request, &actor("sim")).unwrap();
        assert_eq!(r.auto_confirmed, 1);
        let p = sim.store.proposal(id_of(&sim, "P2")).unwrap().unwrap();
        assert_eq!(
            (p.status, p.decided_by.as_deref()),
            (ProposalStatus::Confirmed, Some(proposals::AUTO_CONFIRM_ACTOR))
        );
    }

    #[test]
    fn purged_visits_withdraw_what_they_alone_supported() {
        let dir = tempfile::tempdir().unwrap();
        let mut dep = deployment(dir.path());
        ingest(
            &mut dep,
            vec![
                visit("P1", "L1", "2022-03-03T08:00:00Z", "2022-03-03T10:00:00Z"),
                visit("P2", "L1", "2022-03-03T08:30:00Z", "2022-03-03T09:30:00Z"),
                visit("P1", "L2", "2022-03-20T08:00:00Z", "2022-03-20T10:00:00Z"),
                visit("P3", "L2", "2022-03-20T08:30:00Z", "2022-03-20T09:30:00Z"),
            ],
        );
        let request = RecordedRequest {
            rule: Rule::VenueOverlap.as_str().into(),
            depth: 1,
            min_overlap_seconds: 15 * 60,
            to: None,
            cases: vec![RecordedCase { case_id: "K1".into(), from: None }],
            persons: Vec::new(),
        };
        proposals::trace_and_record(&mut dep, &request, &actor("li")).unwrap();
        let p3 = id_of(&dep, "P3");
        proposals::decide_within(&mut *dep.store, &Scope::All, &actor("li"), &[p3], Verdict::Confirm, None, t0())
            .unwrap();
        // 28 days of retention on 1 April: the visits of 3 March go.
        let retention = dep.profile.retention.clone();
        chainbreak_app::retention::purge(&mut *dep.store, &retention, &actor("system"), at("2022-04-01T00:00:00Z"))
            .unwrap();
        let r = proposals::recompute(&mut dep, &actor("system")).unwrap();
        assert_eq!((r.stale, r.recorded.withdrawn, r.recorded.flagged), (1, 1, 0));
        use ProposalStatus::*;
        assert_eq!(
            states(&dep),
            [row("P2", "close", Withdrawn, false, false), row("P3", "close", Confirmed, false, true)]
        );
    }
}

// ---------------------------------------------------------------- closed-loop management

mod closed_loop {
    use std::sync::Arc;

    use chainbreak_app::Deployment;
    use chainbreak_app::accounts::Actor;
    use chainbreak_app::episodes::{self, Request};
    use chainbreak_closedloop::{Action, Category, Reason, TestResult};
    use chainbreak_core::access::{Role, User};
    use chainbreak_core::model::{Area, EpisodeState, MeasureKind, Person, Place, PlaceKind};
    use chainbreak_core::time::ManualClock;
    use chainbreak_store::{AuditFilter, EpisodeFilter, FacilityRow, RoomRow, Store};

    use super::*;

    fn user(role: Role, jurisdiction: &str) -> User {
        User {
            name: format!("{}-{jurisdiction}", role.as_str()),
            role,
            unit: "U1".into(),
            jurisdiction: jurisdiction.into(),
            disabled: false,
            created_at: t0(),
        }
    }

    fn actor() -> Actor {
        Actor { name: "tester".into(), via: "test".into(), reason: None }
    }

    /// City C1, districts D1 (P1, P2 at H1) and D2 (P4 at H2); facility F1 with rooms 101, 102.
    fn deployment(dir: &Path) -> (Deployment, Arc<ManualClock>) {
        let path = dir.join("e.db");
        let clock = Arc::new(ManualClock::new(t0()));
        let mut store = chainbreak_app::init(&path, "Asia/Shanghai", "cn-2022-9th", &*clock).unwrap();
        let mut b = store.begin(t0()).unwrap();
        let area = |id: &str, level: &str, parent: Option<&str>| Area {
            id: id.into(),
            name: id.into(),
            level: level.into(),
            parent: parent.map(Into::into),
            geometry: None,
        };
        b.put_areas(&[
            area("C1", "city", None),
            area("D1", "district", Some("C1")),
            area("D2", "district", Some("C1")),
        ])
        .unwrap();
        let place = |id: &str, area: &str| Place {
            id: id.into(),
            name: None,
            kind: PlaceKind::Residence,
            key_place: false,
            lat: None,
            lon: None,
            area: Some(area.into()),
        };
        b.put_places(&[place("H1", "D1"), place("H2", "D2")]).unwrap();
        let person = |id: &str, home: &str| Person {
            id: id.into(),
            residence: Some(home.into()),
            birth_year: None,
            sex: None,
            occupation: None,
        };
        b.put_persons(&[person("P1", "H1"), person("P2", "H1"), person("P4", "H2")]).unwrap();
        b.commit().unwrap();
        let mut dep = Deployment::new(Box::new(store), clock.clone()).unwrap();
        let room = |id: &str| RoomRow { id: id.into(), capacity: 1, state: "clean".into() };
        let facility =
            FacilityRow { id: "F1".into(), name: "Hotel".into(), area: None, rooms: vec![room("101"), room("102")] };
        episodes::put_facilities(&mut dep, &actor(), None, &[facility]).unwrap();
        (dep, clock)
    }

    fn open(person: &str, exposure: &str) -> Request {
        Request::Open {
            id: None,
            person: person.into(),
            category: Category::Close,
            plan: None,
            reason: Reason { source: "K1".into(), via: None, at: exposure.parse().unwrap(), evidence: None },
            owner: "U1".into(),
            confirmed: true,
        }
    }

    fn act(episode: &str, action: Action) -> Request {
        Request::Act { episode: episode.into(), action }
    }

    #[test]
    fn episodes_go_through_the_loop_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut dep, clock) = deployment(dir.path());
        // t0 is 2022-03-15T00:00Z; exposed on 14 March (local), confirmed by a tracer at once.
        let out = episodes::transition(&mut dep, &actor(), None, &[open("P1", "2022-03-14T02:00:00Z")]).unwrap();
        let id = out[0].episode_id.clone();
        assert_eq!(out[0].state, EpisodeState::Confirmed);
        // Traced again: the reason goes onto the open episode, no duplicate.
        let again = episodes::transition(&mut dep, &actor(), None, &[open("P1", "2022-03-13T02:00:00Z")]).unwrap();
        assert_eq!(again[0].episode_id, id);

        clock.advance(jiff::SignedDuration::from_hours(2));
        let transfer = Action::Transfer { facility: "F1".into(), room: String::new() };
        let out = episodes::transition(
            &mut dep,
            &actor(),
            None,
            &[act(&id, Action::Notify), act(&id, transfer), act(&id, Action::Start)],
        )
        .unwrap();
        assert_eq!(out.last().unwrap().state, EpisodeState::InMeasure);
        let row = dep.store.episode(&id).unwrap().unwrap();
        assert_eq!(
            (row.facility_id.as_deref(), row.room_id.as_deref()),
            (Some("F1"), Some("101")),
            "the first clean room"
        );
        let view = &episodes::facility_views(&mut dep, 7).unwrap()[0];
        assert_eq!((view.occupancy.occupied, view.occupancy.people), (1, 1));
        assert!(view.alerts.is_empty() && view.staff.is_empty(), "{view:?}");

        // A refused transition in a set writes nothing of the set.
        let seq = dep.store.last_seq().unwrap();
        let refused = episodes::transition(
            &mut dep,
            &actor(),
            None,
            &[
                act(&id, Action::Test { taken_at: t0(), result: TestResult::Negative, lab_test: None }),
                act(&id, Action::Release),
            ],
        );
        assert!(refused.is_err(), "release before the measure's end");
        assert_eq!(dep.store.last_seq().unwrap(), seq);
        assert_eq!(episodes::show(&mut dep, None, &id).unwrap().episode.tests.len(), 0, "the test was rolled back too");

        // Jurisdiction: a community worker of D2 cannot see or move P1's episode; a viewer may
        // not manage episodes at all.
        let d2 = user(Role::CommunityWorker, "D2");
        assert!(matches!(episodes::show(&mut dep, Some(&d2), &id), Err(AppError::NotFound(_))));
        assert!(matches!(
            episodes::transition(&mut dep, &actor(), Some(&d2), &[act(&id, Action::Unreachable)]),
            Err(AppError::NotFound(_))
        ));
        let viewer = user(Role::Viewer, "C1");
        assert!(episodes::transition(&mut dep, &actor(), Some(&viewer), &[act(&id, Action::Lost)]).is_err());
        let d1 = user(Role::CommunityWorker, "D1");
        assert_eq!(episodes::list(&dep, Some(&d1), &EpisodeFilter::default(), None, 10).unwrap().len(), 1);
        assert!(episodes::list(&dep, Some(&d2), &EpisodeFilter::default(), None, 10).unwrap().is_empty());

        // A positive test converts the episode; the room is left to disinfect.
        clock.advance(jiff::SignedDuration::from_hours(30));
        let positive = Action::Test { taken_at: clock.now(), result: TestResult::Positive, lab_test: None };
        let out = episodes::transition(&mut dep, &actor(), Some(&d1), &[act(&id, positive)]).unwrap();
        assert_eq!(out[0].state, EpisodeState::ConvertedToCase);
        assert!(out[0].effects[0].starts_with("suspected_case:P1:"), "{:?}", out[0].effects);
        assert!(out[0].effects[1].starts_with("isolation:EP-P1-case-"), "{:?}", out[0].effects);
        let rooms = dep.store.facilities().unwrap();
        assert_eq!(rooms[0].rooms[0].state, "to_disinfect");
        assert!(episodes::rooms_disinfected(&mut dep, &actor(), None, "F1", &["102"]).is_err(), "102 is clean");
        episodes::rooms_disinfected(&mut dep, &actor(), None, "F1", &["101"]).unwrap();
        assert_eq!(dep.store.facilities().unwrap()[0].rooms[0].state, "clean");

        // Audit: one record per transition.
        let audit = dep.store.audit_records(
            0,
            100,
            &AuditFilter { action: Some("episode_transition".into()), ..Default::default() },
        );
        assert_eq!(audit.unwrap().len(), 8, "open+confirm, add_reason, notify, transfer, start, test, isolation open");

        // A restart: the episodes are rebuilt from their events.
        let shown = episodes::show(&mut dep, None, &id).unwrap();
        let store = chainbreak_app::open(&dir.path().join("e.db")).unwrap();
        let mut restarted = Deployment::new(Box::new(store), clock.clone()).unwrap();
        let again = episodes::show(&mut restarted, None, &id).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&shown).unwrap());
        assert_eq!(again.history.len(), 7);
    }

    /// A facility whose forecast needs more rooms than it has raises one alert for the
    /// shortage (not one per run), in the scheduled review run.
    #[test]
    fn a_facility_short_of_rooms_raises_an_alert_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut dep, _clock) = deployment(dir.path());
        // Three close contacts to quarantine centrally, two rooms.
        let opened = episodes::transition(
            &mut dep,
            &actor(),
            None,
            &[
                open("P1", "2022-03-14T02:00:00Z"),
                open("P2", "2022-03-14T02:00:00Z"),
                open("P4", "2022-03-14T02:00:00Z"),
            ],
        )
        .unwrap();
        assert_eq!(opened.len(), 3);
        let view = &episodes::facility_views(&mut dep, 7).unwrap()[0];
        assert!(view.forecast.iter().any(|d| d.short), "{view:?}");
        let run = chainbreak_app::surveillance::run(&mut dep, &actor(), None).unwrap();
        assert_eq!(run.shortage_alerts, 1);
        let listed = chainbreak_app::alerts::list(&dep, None, &Default::default(), 0, 100).unwrap();
        let alert = listed.iter().find(|a| a.kind == chainbreak_store::AlertKind::FacilityShortage).unwrap();
        assert_eq!(alert.subject.as_deref(), Some("F1"));
        assert!(alert.summary.contains("3 needed, 2 rooms"), "{}", alert.summary);
        assert_eq!(chainbreak_app::surveillance::run(&mut dep, &actor(), None).unwrap().shortage_alerts, 0);
    }

    /// A positive entered on a contact's episode (no lab record) sets off what a positive lab
    /// result does: a suspected case with its alert and response clock, added to the isolation
    /// the conversion opened, and traced at once; entered again, nothing more.
    #[test]
    fn a_positive_entered_on_an_episode_opens_a_suspected_case_and_traces_it() {
        use chainbreak_core::model::Classification;
        let dir = tempfile::tempdir().unwrap();
        let (mut dep, clock) = deployment(dir.path());
        let out = episodes::transition(&mut dep, &actor(), None, &[open("P4", "2022-03-14T02:00:00Z")]).unwrap();
        let id = out[0].episode_id.clone();
        clock.advance(jiff::SignedDuration::from_hours(30));
        let taken: jiff::Timestamp = "2022-03-16T01:00:00Z".parse().unwrap();
        let test = Action::Test { taken_at: taken, result: TestResult::Positive, lab_test: None };
        let requests = [act(&id, test)];
        let out = episodes::transition(&mut dep, &actor(), None, &requests).unwrap();
        assert!(out[0].effects.iter().any(|e| e.starts_with("suspected_case:P4:")), "{:?}", out[0].effects);
        let response = episodes::respond_to_positives(&mut dep, &actor(), &requests, &out).unwrap();
        let case_id = format!("S-{id}");
        assert_eq!(response.suspected_cases, std::slice::from_ref(&case_id));
        assert_eq!(response.alerts.len(), 1);
        let case = dep.store.case(&case_id).unwrap().unwrap();
        assert_eq!(
            (case.person_id.as_str(), case.classification, case.sampled_at),
            ("P4", Classification::Suspected, Some(taken))
        );
        assert_eq!((response.isolations.opened, response.isolations.added), (0, 1), "the conversion's isolation");
        let iso = case_episode(&mut dep, "P4").unwrap();
        let ep = episodes::show(&mut dep, None, &iso).unwrap().episode;
        assert!(ep.reasons.iter().any(|r| r.source == case_id), "{:?}", ep.reasons);
        let traced = response.traced.unwrap();
        assert_eq!((traced.traced.as_slice(), traced.recorded.indexes), (&[case_id.clone()][..], 1));
        // The same requests answered again: the person has an open case, nothing more opens.
        let again = episodes::respond_to_positives(&mut dep, &actor(), &requests, &out).unwrap();
        assert_eq!(again, Default::default());
    }

    fn lab(
        id: &str,
        person: &str,
        result: chainbreak_core::model::TestResult,
        sampled: &str,
    ) -> chainbreak_core::model::LabTest {
        chainbreak_core::model::LabTest {
            id: id.into(),
            subject_kind: chainbreak_core::model::SubjectKind::Person,
            subject_id: person.into(),
            pool_id: None,
            method: chainbreak_core::model::TestMethod::Pcr,
            result,
            ct: None,
            sampled_at: sampled.parse().unwrap(),
            reported_at: None,
            lab_id: None,
            variant: None,
        }
    }

    #[test]
    fn the_rooms_forecast_raises_an_alert_when_short_and_lists_the_staff() {
        let dir = tempfile::tempdir().unwrap();
        let (mut dep, _) = deployment(dir.path());
        // F1 has 2 rooms; three close contacts on their way to central quarantine.
        for p in ["P1", "P2", "P4"] {
            episodes::transition(&mut dep, &actor(), None, &[open(p, "2022-03-14T02:00:00Z")]).unwrap();
        }
        let view = &episodes::facility_views(&mut dep, 7).unwrap()[0];
        assert_eq!((view.forecast[0].rooms_needed, view.forecast[0].rooms), (3, 2));
        assert_eq!(view.alerts.len(), 7, "short on every day of the week: {:?}", view.alerts);
        assert!(view.alerts[0].ends_with("3 rooms needed, 2 rooms"), "{:?}", view.alerts);
        // The staff of the place with the facility's id.
        let mut b = dep.store.begin(t0()).unwrap();
        b.put_places(&[Place {
            id: "F1".into(),
            name: None,
            kind: PlaceKind::QuarantineFacility,
            key_place: false,
            lat: None,
            lon: None,
            area: Some("D1".into()),
        }])
        .unwrap();
        b.put_staff(&[chainbreak_core::model::StaffMember {
            place_id: "F1".into(),
            person_id: "P2".into(),
            role: Some("nurse".into()),
        }])
        .unwrap();
        b.commit().unwrap();
        let view = &episodes::facility_views(&mut dep, 7).unwrap()[0];
        assert_eq!(view.staff.iter().map(|s| s.person_id.as_str()).collect::<Vec<_>>(), ["P2"]);
    }

    #[test]
    fn lab_results_move_the_episodes_once() {
        use chainbreak_core::model::TestResult as R;
        let dir = tempfile::tempdir().unwrap();
        let (mut dep, clock) = deployment(dir.path());
        let close = episodes::transition(&mut dep, &actor(), None, &[open("P1", "2022-03-14T02:00:00Z")]).unwrap();
        let secondary = Request::Open {
            id: Some("S2".into()),
            person: "P2".into(),
            category: Category::Secondary,
            plan: None,
            reason: Reason {
                source: "K1".into(),
                via: Some("P1".into()),
                at: "2022-03-14T03:00:00Z".parse().unwrap(),
                evidence: None,
            },
            owner: "U1".into(),
            confirmed: true,
        };
        episodes::transition(&mut dep, &actor(), None, &[secondary]).unwrap();
        clock.advance(jiff::SignedDuration::from_hours(3));

        let first = [
            lab("LT1", "P1", R::Negative, "2022-03-15T01:00:00Z"),
            lab("LT9", "P4", R::Pending, "2022-03-15T01:00:00Z"),
        ];
        let moved = episodes::record_lab_results(&mut dep, &actor(), &first).unwrap();
        assert_eq!((moved.tests, moved.linked, moved.converted, moved.promoted), (1, 1, 0, 0));
        // The same results again: recorded once.
        assert_eq!(episodes::record_lab_results(&mut dep, &actor(), &first).unwrap(), Default::default());

        // P1 positive in their second test: P1's episode is converted, P2 becomes a close contact.
        let second = [lab("LT2", "P1", R::Positive, "2022-03-15T02:00:00Z")];
        let moved = episodes::record_lab_results(&mut dep, &actor(), &second).unwrap();
        assert_eq!((moved.tests, moved.linked, moved.converted, moved.promoted), (1, 1, 1, 1));
        let p1 = episodes::show(&mut dep, None, &close[0].episode_id).unwrap();
        assert_eq!(p1.episode.state, EpisodeState::ConvertedToCase);
        let p2 = episodes::show(&mut dep, None, "S2").unwrap();
        assert_eq!((p2.episode.category, p2.episode.state), (Category::Close, EpisodeState::Confirmed));
        assert_eq!(p2.episode.linked_tests["P1"].len(), 2);
    }

    #[test]
    fn late_tasks_escalate_up_the_units_and_excluded_cases_close_episodes() {
        use chainbreak_core::model::Unit;
        let dir = tempfile::tempdir().unwrap();
        let (mut dep, clock) = deployment(dir.path());
        let unit = |id: &str, parent: Option<&str>| Unit {
            id: id.into(),
            name: id.into(),
            parent: parent.map(Into::into),
            area: None,
        };
        let mut b = dep.store.begin(t0()).unwrap();
        b.put_units(&[unit("CMD", None), unit("SUB", Some("CMD")), unit("COM", Some("SUB"))]).unwrap();
        b.commit().unwrap();
        let mut request = open("P1", "2022-03-14T02:00:00Z");
        if let Request::Open { owner, .. } = &mut request {
            *owner = "COM".into();
        }
        let id = episodes::transition(&mut dep, &actor(), None, &[request]).unwrap()[0].episode_id.clone();
        // Confirmed at t0: in quarantine within 12 h. 12 h late: one step up (every 12 h), 36 h
        // late: at the top, and it stays there.
        let at_unit = |dep: &mut Deployment| -> Vec<(String, bool, u32)> {
            episodes::tasks(dep, None, false, None)
                .unwrap()
                .into_iter()
                .map(|t| (t.unit, t.task.overdue, t.task.escalation))
                .collect()
        };
        assert_eq!(at_unit(&mut dep), [("COM".to_string(), false, 0)]);
        clock.advance(jiff::SignedDuration::from_hours(12 + 13));
        assert_eq!(at_unit(&mut dep), [("SUB".to_string(), true, 1)]);
        clock.advance(jiff::SignedDuration::from_hours(36));
        assert_eq!(at_unit(&mut dep), [("CMD".to_string(), true, 4)]);
        assert_eq!(episodes::tasks(&mut dep, None, true, Some("SUB")).unwrap().len(), 0);
        let d2 = user(Role::CommunityWorker, "D2");
        assert!(episodes::tasks(&mut dep, Some(&d2), false, None).unwrap().is_empty(), "P1 lives in D1");

        // K1 is excluded: the episode hangs only on it, so it closes.
        assert_eq!(episodes::exclude_sources(&mut dep, &actor(), &["K9".into()]).unwrap(), 0);
        assert_eq!(episodes::exclude_sources(&mut dep, &actor(), &["K1".into()]).unwrap(), 1);
        let shown = episodes::show(&mut dep, None, &id).unwrap();
        assert_eq!(
            (shown.episode.state, shown.episode.closed),
            (EpisodeState::Closed, Some(chainbreak_closedloop::CloseReason::Excluded))
        );
        assert!(episodes::tasks(&mut dep, None, false, None).unwrap().is_empty());
    }

    fn case_episode(dep: &mut Deployment, person: &str) -> Option<String> {
        let filter = EpisodeFilter { person_id: Some(person.into()), ..Default::default() };
        episodes::list(dep, None, &filter, None, 100)
            .unwrap()
            .into_iter()
            .filter(|e| e.category == "case")
            .map(|e| e.id)
            .next_back()
    }

    /// A case imported from a file gets its own isolation: confirmed by the report, due within
    /// the response clock's 2 h, open-ended until a facility manager discharges it with the
    /// profile's negative tests; a restart replays it; importing the file again reopens nothing;
    /// an excluded case's isolation closes; a contact's positive opens the person's isolation.
    #[test]
    fn a_case_is_isolated_until_discharge_on_a_real_store() {
        use chainbreak_core::model::TestResult as R;
        let dir = tempfile::tempdir().unwrap();
        let (mut dep, clock) = deployment(dir.path());
        let file = dir.path().join("cases.csv");
        std::fs::write(
            &file,
            "id,person_id,classification,onset,sampled_at,reported_at\n\
             K1,P1,confirmed,2022-03-14,2022-03-14T20:00:00Z,2022-03-14T23:00:00Z\n\
             K2,P2,asymptomatic,,2022-03-14T21:00:00Z,2022-03-14T23:30:00Z\n",
        )
        .unwrap();
        let import = |dep: &mut Deployment, file: &Path| {
            let report = import_file(
                &mut *dep.store,
                Kind::Cases,
                file,
                &ImportOptions::default(),
                dep.clock.now(),
                &mut NoProgress,
            )
            .unwrap();
            let isolated = episodes::isolate_cases(dep, &actor(), &report.cases, "U1").unwrap();
            let closed = episodes::exclude_sources(dep, &actor(), &report.excluded_cases).unwrap();
            (isolated, closed)
        };
        let (isolated, _) = import(&mut dep, &file);
        assert_eq!((isolated.opened, isolated.added, isolated.known), (2, 0, 0));
        let id = case_episode(&mut dep, "P1").unwrap();
        let shown = episodes::show(&mut dep, None, &id).unwrap();
        let ep = &shown.episode;
        assert_eq!(
            (ep.category, ep.kind(), ep.state),
            (Category::Case, MeasureKind::Isolation, EpisodeState::Confirmed)
        );
        assert_eq!((ep.reasons[0].source.as_str(), ep.reasons.len()), ("K1", 1));
        assert!(ep.reasons[0].evidence.as_deref().unwrap().contains("case K1 (confirmed)"));
        let two_hours = t0() + jiff::SignedDuration::from_hours(2);
        assert_eq!(shown.deadline, Some(two_hours), "transferred within 2 h of the report");
        assert_eq!(dep.store.episode(&id).unwrap().unwrap().deadline, Some(two_hours));

        // Importing the file again opens nothing new.
        let (again, _) = import(&mut dep, &file);
        assert_eq!((again.opened, again.added, again.known), (0, 0, 2));

        // Notified and transferred to a room (never shared with contacts), in isolation.
        clock.advance(jiff::SignedDuration::from_hours(1));
        let transfer = Action::Transfer { facility: "F1".into(), room: String::new() };
        let out = episodes::transition(
            &mut dep,
            &actor(),
            None,
            &[act(&id, Action::Notify), act(&id, transfer), act(&id, Action::Start)],
        )
        .unwrap();
        assert_eq!(out[2].state, EpisodeState::InMeasure);
        // No last day: the isolation (and P2's, on its way) fills rooms over the whole forecast.
        let view = &episodes::facility_views(&mut dep, 7).unwrap()[0];
        assert!(view.forecast.iter().all(|d| d.rooms_needed == 2), "{:?}", view.forecast);
        let review = out[2].deadline.unwrap();
        assert_eq!(review, clock.now() + jiff::SignedDuration::from_hours(24), "a review every 24 h");
        let tasks = episodes::tasks(&mut dep, None, false, None).unwrap();
        assert!(tasks.iter().any(|t| t.episode_id == id && t.task.kind == "review"), "{tasks:?}");

        // Discharge: only with the two negative tests 24 h apart, and only by roles that may.
        let discharge = || act(&id, Action::Discharge { criteria: "afebrile 3 days, symptoms improved".into() });
        let manager = user(Role::FacilityManager, "D1");
        assert!(matches!(
            episodes::transition(&mut dep, &actor(), Some(&manager), &[discharge()]),
            Err(AppError::InvalidArgument { .. })
        ));
        clock.advance(jiff::SignedDuration::from_hours(50));
        let labs = [
            lab("LT1", "P1", R::Negative, "2022-03-16T01:00:00Z"),
            lab("LT2", "P1", R::Negative, "2022-03-17T02:00:00Z"),
        ];
        let moved = episodes::record_lab_results(&mut dep, &actor(), &labs).unwrap();
        assert_eq!((moved.tests, moved.converted), (2, 0));
        let worker = user(Role::CommunityWorker, "D1");
        assert!(matches!(
            episodes::transition(&mut dep, &actor(), Some(&worker), &[discharge()]),
            Err(AppError::Forbidden(_))
        ));
        let out = episodes::transition(&mut dep, &actor(), Some(&manager), &[discharge()]).unwrap();
        assert_eq!((out[0].state, out[0].deadline), (EpisodeState::Released, None));
        assert_eq!(dep.store.facilities().unwrap()[0].rooms[0].state, "to_disinfect");

        // A restart replays the same isolation; discharged, it reopens on no import.
        let shown = episodes::show(&mut dep, None, &id).unwrap();
        let store = chainbreak_app::open(&dir.path().join("e.db")).unwrap();
        let mut dep = Deployment::new(Box::new(store), clock.clone()).unwrap();
        let again = episodes::show(&mut dep, None, &id).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&shown).unwrap());
        assert!(matches!(again.history.last().unwrap().action, Action::Discharge { .. }));
        let (isolated, _) = import(&mut dep, &file);
        assert_eq!(isolated.opened, 0);

        // K2 is excluded: P2's isolation closes.
        let p2 = case_episode(&mut dep, "P2").unwrap();
        let excluded = dir.path().join("excluded.csv");
        std::fs::write(&excluded, "id,person_id,classification,reported_at\nK2,P2,excluded,2022-03-15T06:00:00Z\n")
            .unwrap();
        let (_, closed) = import(&mut dep, &excluded);
        assert_eq!(closed, 1);
        let ep = episodes::show(&mut dep, None, &p2).unwrap().episode;
        assert_eq!((ep.state, ep.closed), (EpisodeState::Closed, Some(chainbreak_closedloop::CloseReason::Excluded)));

        // A close contact's positive: converted, and the person's isolation proposed with the
        // response clock's 2 h; the converted episode names it.
        let contact = episodes::transition(&mut dep, &actor(), None, &[open("P4", "2022-03-16T02:00:00Z")]).unwrap();
        let contact = contact[0].episode_id.clone();
        // A positive pool the contact was in is not their own positive: nothing converts.
        let mut pooled = lab("LT2P", "P4", R::Positive, "2022-03-16T20:00:00Z");
        pooled.pool_id = Some("POOL-1".into());
        let moved = episodes::record_lab_results(&mut dep, &actor(), &[pooled]).unwrap();
        assert_eq!((moved.tests, moved.converted), (0, 0));
        let positive = [lab("LT3", "P4", R::Positive, "2022-03-17T01:00:00Z")];
        assert_eq!(episodes::record_lab_results(&mut dep, &actor(), &positive).unwrap().converted, 1);
        let iso = case_episode(&mut dep, "P4").unwrap();
        let shown = episodes::show(&mut dep, None, &iso).unwrap();
        assert_eq!(shown.episode.state, EpisodeState::Proposed);
        assert_eq!(shown.deadline, Some(clock.now() + jiff::SignedDuration::from_hours(2)));
        assert_eq!(shown.episode.reasons[0].source, "positive:LT3");
        let converted = episodes::show(&mut dep, None, &contact).unwrap();
        let last = converted.history.last().unwrap();
        assert_eq!(last.note.as_deref(), Some(format!("isolation: {iso}").as_str()));
        // Reported as a case: the report confirms the proposed isolation, no duplicate.
        let k3 = dir.path().join("k3.csv");
        std::fs::write(&k3, "id,person_id,classification,sampled_at,reported_at\nK3,P4,suspected,2022-03-17T01:00:00Z,2022-03-17T04:00:00Z\n")
            .unwrap();
        let (isolated, _) = import(&mut dep, &k3);
        assert_eq!((isolated.opened, isolated.added), (0, 1));
        let ep = episodes::show(&mut dep, None, &iso).unwrap().episode;
        assert_eq!((ep.state, ep.reasons.len()), (EpisodeState::Confirmed, 2));
        assert_eq!(case_episode(&mut dep, "P4"), Some(iso.clone()));
        // The case's outcome: deceased. The isolation closes with that reason.
        std::fs::write(
            &k3,
            "id,person_id,classification,sampled_at,reported_at,outcome\n\
             K3,P4,confirmed,2022-03-17T01:00:00Z,2022-03-17T04:00:00Z,deceased\n",
        )
        .unwrap();
        let (isolated, _) = import(&mut dep, &k3);
        assert_eq!((isolated.opened, isolated.deceased), (0, 1));
        let ep = episodes::show(&mut dep, None, &iso).unwrap().episode;
        assert_eq!((ep.state, ep.closed), (EpisodeState::Closed, Some(chainbreak_closedloop::CloseReason::Deceased)));
    }
}

/// The closed loop over a small simulated outbreak with field faults and restarts: every
/// episode (contacts' and cases' isolations) ends with an outcome, none is ever open without a
/// deadline (`drill`; the benchmark runs it at ≥ 100,000 episodes).
#[test]
fn a_drill_over_a_simulated_outbreak_leaves_nobody_out() {
    let dir = tempfile::tempdir().unwrap();
    let sim = chainbreak_sim::Outbreak::new(
        chainbreak_sim::CityParams::new(20_000, 40, 7),
        chainbreak_sim::Pathogen::load("omicron").unwrap(),
    )
    .unwrap();
    let report = chainbreak_app::drill::run(&dir.path().join("drill.db"), "cn-2022-9th", sim, 7).unwrap();
    assert!(report.episodes > 100, "{report:?}");
    assert_eq!((report.open_without_deadline, report.left_open), (0, 0), "{report:?}");
    assert!(report.restarts >= 5, "{report:?}");
    // Household contacts of a calibrated outbreak are often infected already: about half are
    // converted to cases; most of the rest are released, few closed otherwise.
    let released = report.outcomes.get("released").copied().unwrap_or(0);
    let converted = report.outcomes.get("converted_to_case").copied().unwrap_or(0);
    assert!(released * 10 > report.episodes * 4, "{report:?}");
    assert!((released + converted) * 100 > report.episodes * 95, "{report:?}");
    assert_eq!(report.outcomes.values().sum::<usize>(), report.episodes);
    // The cases' own isolations: every reported or converted case, each discharged in the end.
    assert!(report.isolations as u64 >= report.cases.min(1), "{report:?}");
    assert_eq!(report.isolation_outcomes.values().sum::<usize>(), report.isolations);
    assert!(report.isolation_outcomes.get("released").copied().unwrap_or(0) > report.isolations / 2, "{report:?}");
}
