// Triggers, alerts and triage, detection runs, the review queue, silent sentinels and Rt, on
// real SQLite files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chainbreak_app::accounts::Actor;
use chainbreak_app::alerts::{self, AlertAction, ManualAlert};
use chainbreak_app::import::{ImportOptions, import_file};
use chainbreak_app::ingest::{self, Writer};
use chainbreak_app::surveillance::{self, SeriesQuery, Verdict};
use chainbreak_app::triggers::Triggers;
use chainbreak_app::{AppError, Deployment, NoProgress};
use chainbreak_core::access::{Role, User};
use chainbreak_core::model::{
    AlertState, Classification, LabTest, SentinelFeed, SentinelRecord, SubjectKind, TestMethod, TestResult,
};
use chainbreak_core::time::{Clock, ManualClock};
use chainbreak_formats::Kind;
use chainbreak_store::{AlertFilter, AlertKind, AlertOutcome, AuditFilter, Entity, ReviewStatus, Scope};
use jiff::{SignedDuration, Timestamp};

fn t0() -> Timestamp {
    "2022-03-15T00:00:00Z".parse().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    dep: Deployment,
}

/// City C1 with districts D1 (residence H1 of P1 and P2, pharmacy L1, lab LAB) and D2
/// (residence H2 of P3, cold-chain warehouse W2).
fn fresh() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let db = dir.path().join("s.db");
    chainbreak_app::init(&db, "Asia/Shanghai", "cn-2022-9th", &*clock).unwrap();
    let store = chainbreak_app::open(&db).unwrap();
    let dep = Deployment::new(Box::new(store), clock.clone()).unwrap();
    let mut f = Fixture { dir, clock, dep };
    f.import(Kind::Areas, "areas.csv", "id,name,level,parent\nC1,City,city,\nD1,One,district,C1\nD2,Two,district,C1\n")
        .unwrap();
    f.import(
        Kind::Places,
        "places.csv",
        "id,kind,area\nH1,residence,D1\nL1,pharmacy,D1\nLAB,hospital,D1\nH2,residence,D2\nW2,cold_chain_warehouse,D2\n",
    )
    .unwrap();
    f.import(Kind::Persons, "persons.csv", "id,residence\nP1,H1\nP2,H1\nP3,H2\n").unwrap();
    f
}

fn actor(name: &str) -> Actor {
    Actor { name: name.into(), via: "test".into(), reason: None }
}

fn user(name: &str, role: Role, area: &str) -> User {
    User {
        name: name.into(),
        role,
        unit: format!("{area}-CDC"),
        jurisdiction: area.into(),
        disabled: false,
        created_at: t0(),
    }
}

impl Fixture {
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn import(&mut self, kind: Kind, name: &str, text: &str) -> Result<chainbreak_app::import::ImportReport, AppError> {
        let path = self.file(name, text);
        let opts = ImportOptions {
            triggers: Some(Triggers::from_profile(&self.dep.profile)),
            actor: Some(actor("importer")),
            ..Default::default()
        };
        import_file(&mut *self.dep.store, kind, Path::new(&path), &opts, self.clock.now(), &mut NoProgress)
    }

    fn alerts(&self) -> Vec<chainbreak_store::AlertRow> {
        alerts::list(&self.dep, None, &AlertFilter::default(), 0, 1000).unwrap()
    }
}

const LAB_HEADER: &str = "id,subject_kind,subject_id,pool_id,method,result,sampled_at,reported_at,lab_id\n";

#[test]
fn a_positive_opens_a_suspected_case_once_and_starts_its_response_clock() {
    let mut f = fresh();
    let text = format!(
        "{LAB_HEADER}T1,person,P1,,pcr,positive,2022-03-14T08:00:00Z,2022-03-14T20:00:00Z,LAB\n\
         T2,person,P2,,pcr,negative,2022-03-14T08:00:00Z,,LAB\n"
    );
    let report = f.import(Kind::LabTests, "lab.csv", &text).unwrap();
    assert_eq!(report.triggered.suspected_cases, ["S-T1"]);
    let case = f.dep.store.case("S-T1").unwrap().unwrap();
    assert_eq!((case.person_id.as_str(), case.classification), ("P1", Classification::Suspected));
    assert_eq!(f.dep.store.case_history("S-T1").unwrap().len(), 1, "through the ordinary cases path");
    let alerts = f.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!((alerts[0].kind, alerts[0].subject.as_deref()), (AlertKind::PositivePerson, Some("S-T1")));
    let view = alerts::show(&f.dep, None, alerts[0].id).unwrap();
    let reported = view.response_clock.iter().find(|c| c.item.item == "case_reported").unwrap();
    let result_at: Timestamp = "2022-03-14T20:00:00Z".parse().unwrap();
    assert_eq!(reported.item.started_at, Some(result_at));
    assert_eq!(reported.item.due_at, Some(result_at + SignedDuration::from_hours(2)), "the profile's 2 hours");
    assert!(reported.late, "t0 is hours after the due time and nobody reported the case");
    let trail = view.response_clock.iter().find(|c| c.item.item == "core_trail_signed_off").unwrap();
    assert_eq!(trail.item.started_at, None, "starts when the case is reported");

    // The same file again, and a second positive of the same person: no second case, no alert.
    let again = f.import(Kind::LabTests, "lab.csv", &text).unwrap();
    assert_eq!(again.triggered, Default::default());
    let second = format!("{LAB_HEADER}T3,person,P1,,antigen,positive,2022-03-15T01:00:00Z,,LAB\n");
    assert_eq!(f.import(Kind::LabTests, "lab2.csv", &second).unwrap().triggered, Default::default());
    assert_eq!(f.dep.store.count(Entity::Case).unwrap(), 1);
    assert_eq!(f.alerts().len(), 1);
}

#[test]
fn a_pooled_positive_names_its_members_for_retests_and_opens_no_case() {
    let mut f = fresh();
    let earlier = format!("{LAB_HEADER}M1,person,P1,POOL7,pcr,pending,2022-03-14T08:00:00Z,,LAB\n");
    f.import(Kind::LabTests, "a.csv", &earlier).unwrap();
    let text = format!(
        "{LAB_HEADER}M2,person,P2,POOL7,pcr,positive,2022-03-14T08:00:00Z,2022-03-14T12:00:00Z,LAB\n\
         M3,person,P3,POOL7,pcr,positive,2022-03-14T08:00:00Z,2022-03-14T12:00:00Z,LAB\n"
    );
    let report = f.import(Kind::LabTests, "b.csv", &text).unwrap();
    assert!(report.triggered.suspected_cases.is_empty());
    assert_eq!(f.dep.store.count(Entity::Case).unwrap(), 0, "a pool names nobody positive");
    let alerts = f.alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!((alerts[0].kind, alerts[0].place_id.as_deref()), (AlertKind::PooledPositive, Some("LAB")));
    let view = alerts::show(&f.dep, None, alerts[0].id).unwrap();
    assert_eq!(view.details["members"], serde_json::json!(["P1", "P2", "P3"]));
    assert_eq!(view.details["retest_due"], "2022-03-14T18:00:00Z", "the profile's 6 hours after the result");
    assert_eq!(view.details["tasks"].as_array().unwrap().len(), 3);
}

#[test]
fn environment_and_cold_chain_positives_raise_alerts_for_the_goods_trace() {
    let mut f = fresh();
    let text = "place_id,feed,date,category,count,positives\n\
                W2,cold_chain,2022-03-14,surface,12,2\n\
                W2,cold_chain,2022-03-13,surface,12,0\n\
                L1,pharmacy,2022-03-14,antipyretic,40,\n";
    let report = f.import(Kind::Sentinel, "sentinel.csv", text).unwrap();
    assert_eq!(report.triggered.alerts.len(), 1);
    let lab = format!(
        "{LAB_HEADER}E1,environment,L1,,pcr,positive,2022-03-14T08:00:00Z,,LAB\n\
         G1,goods,GB1,,pcr,positive,2022-03-14T08:00:00Z,,LAB\n"
    );
    f.import(Kind::LabTests, "env.csv", &lab).unwrap();
    let kinds: Vec<(AlertKind, Option<String>)> = f.alerts().into_iter().map(|a| (a.kind, a.place_id)).collect();
    assert_eq!(
        kinds,
        [
            (AlertKind::GoodsPositive, Some("W2".into())),
            (AlertKind::EnvironmentPositive, Some("L1".into())),
            (AlertKind::GoodsPositive, Some("LAB".into()))
        ]
    );
    // Scoped: the cold-chain alert lies in D2.
    let d2 = user("d2", Role::Epidemiologist, "D2");
    let seen: Vec<AlertKind> =
        alerts::list(&f.dep, Some(&d2), &AlertFilter::default(), 0, 10).unwrap().into_iter().map(|a| a.kind).collect();
    assert_eq!(seen, [AlertKind::GoodsPositive]);
}

#[test]
fn a_refused_batch_triggers_nothing() {
    let mut f = fresh();
    // The second line names nobody: the file is refused whole.
    let text = format!(
        "{LAB_HEADER}T1,person,P1,,pcr,positive,2022-03-14T08:00:00Z,,LAB\n\
         T2,person,NOBODY,,pcr,positive,2022-03-14T08:00:00Z,,LAB\n"
    );
    assert!(f.import(Kind::LabTests, "lab.csv", &text).is_err());
    let batch = "place_id,feed,date,count,positives\nW2,environment,2022-03-14,3,1\nW2,environment,2022-03-15,3,4\n";
    assert!(f.import(Kind::Sentinel, "s.csv", batch).is_err(), "positives over count");
    // Over the API: the lab test of P3 lies outside D1, so nothing of the batch is written.
    let writer = Writer { scope: Scope::Within("D1".into()), actor: actor("feed"), pseudonymizer: None };
    let test = |id: &str, person: &str| LabTest {
        id: id.into(),
        subject_kind: SubjectKind::Person,
        subject_id: person.into(),
        pool_id: None,
        method: TestMethod::Pcr,
        result: TestResult::Positive,
        ct: None,
        sampled_at: t0(),
        reported_at: None,
        lab_id: None,
        variant: None,
    };
    let triggers = Triggers::from_profile(&f.dep.profile);
    let mut tests = [test("A1", "P1"), test("A2", "P3")];
    let e =
        ingest::ingest_lab_tests_triggering(&mut *f.dep.store, &writer, &mut tests, Some(&triggers), t0()).unwrap_err();
    assert_eq!(e.location().and_then(|l| l.json_path.as_deref()), Some("$.lab_tests[1]"));
    let rows = [SentinelRecord {
        place_id: "W2".into(),
        area_id: None,
        feed: SentinelFeed::Environment,
        date: "2022-03-14".parse().unwrap(),
        category: None,
        count: 3,
        positives: Some(1),
    }];
    assert!(ingest::ingest_sentinel(&mut *f.dep.store, &writer, &rows, t0()).is_err(), "W2 lies in D2");
    assert_eq!(f.dep.store.count(Entity::Case).unwrap(), 0);
    assert_eq!(f.dep.store.count(Entity::Alert).unwrap(), 0);
    assert_eq!(f.dep.store.count(Entity::LabTest).unwrap(), 0);
    // Accepted, the same batch triggers.
    let mut ok = [test("A1", "P1")];
    let (_, triggered) =
        ingest::ingest_lab_tests_triggering(&mut *f.dep.store, &writer, &mut ok, Some(&triggers), t0()).unwrap();
    assert_eq!(triggered.suspected_cases, ["S-A1"]);
}

#[test]
fn triage_moves_forward_audited_and_refusals_change_nothing() {
    let mut f = fresh();
    let epi = user("epi", Role::Epidemiologist, "D1");
    let viewer = user("viewer", Role::Viewer, "D1");
    let outsider = user("out", Role::Epidemiologist, "D2");
    let manual =
        ManualAlert { summary: "fever cluster at L1".into(), place_id: Some("L1".into()), ..Default::default() };
    let raised = alerts::raise_manual(&mut f.dep, &actor("epi"), Some(&epi), manual.clone()).unwrap();
    let id = raised.alert.id;
    assert_eq!((raised.alert.state, raised.alert.kind), (AlertState::New, AlertKind::Manual));
    assert!(matches!(
        alerts::raise_manual(&mut f.dep, &actor("viewer"), Some(&viewer), manual.clone()),
        Err(AppError::Forbidden(_))
    ));
    let elsewhere = ManualAlert { place_id: Some("W2".into()), ..manual };
    assert!(matches!(
        alerts::raise_manual(&mut f.dep, &actor("epi"), Some(&epi), elsewhere),
        Err(AppError::NotFound(_))
    ));

    let seq = f.dep.store.last_seq().unwrap();
    let e = alerts::transition(&mut f.dep, &actor("epi"), Some(&epi), id, &AlertAction::Investigate).unwrap_err();
    assert!(e.to_string().contains("acknowledge the alert first"), "{e}");
    let close = AlertAction::Close { outcome: AlertOutcome::FalseAlarm };
    assert!(alerts::transition(&mut f.dep, &actor("epi"), Some(&epi), id, &close).is_err());
    assert!(matches!(
        alerts::transition(
            &mut f.dep,
            &actor("out"),
            Some(&outsider),
            id,
            &AlertAction::Acknowledge { owner_unit: None }
        ),
        Err(AppError::NotFound(_))
    ));
    assert!(matches!(
        alerts::transition(
            &mut f.dep,
            &actor("viewer"),
            Some(&viewer),
            id,
            &AlertAction::Acknowledge { owner_unit: None }
        ),
        Err(AppError::Forbidden(_))
    ));
    assert_eq!(f.dep.store.last_seq().unwrap(), seq, "refused moves change nothing");

    f.clock.advance(SignedDuration::from_mins(5));
    let mut noting = actor("epi");
    noting.reason = Some("on it".into());
    let acked = alerts::transition(&mut f.dep, &noting, Some(&epi), id, &AlertAction::Acknowledge { owner_unit: None })
        .unwrap();
    assert_eq!((acked.alert.state, acked.alert.owner_unit.as_deref()), (AlertState::Acknowledged, Some("D1-CDC")));
    alerts::transition(&mut f.dep, &actor("epi"), Some(&epi), id, &AlertAction::Investigate).unwrap();
    let closed = alerts::transition(&mut f.dep, &actor("epi"), Some(&epi), id, &close).unwrap();
    assert_eq!((closed.alert.state, closed.alert.outcome), (AlertState::Closed, Some(AlertOutcome::FalseAlarm)));
    let steps: Vec<(AlertState, &str, Option<&str>)> =
        closed.history.iter().map(|e| (e.to, e.actor.as_str(), e.note.as_deref())).collect();
    assert_eq!(
        steps,
        [
            (AlertState::New, "epi", None),
            (AlertState::Acknowledged, "epi", Some("on it")),
            (AlertState::Investigating, "epi", None),
            (AlertState::Closed, "epi", None)
        ]
    );
    assert_eq!(closed.history[1].at, t0() + SignedDuration::from_mins(5));
    let e = alerts::transition(&mut f.dep, &actor("epi"), Some(&epi), id, &AlertAction::Investigate).unwrap_err();
    assert!(e.to_string().contains("closed"), "{e}");
    let filter = AuditFilter { action: Some("alert_transition".into()), ..Default::default() };
    let audit = f.dep.store.audit_records(0, 100, &filter).unwrap();
    assert_eq!(audit.len(), 3);
    assert_eq!(audit[2].record, format!("{id}: investigating → closed (false_alarm)"));
    assert_eq!(audit[0].reason.as_deref(), Some("on it"));
}

fn pharmacy_days(f: &mut Fixture, days: std::ops::RangeInclusive<u32>, spike_on: u32, skip: u32) {
    let mut text = String::from("place_id,feed,date,category,count\n");
    for d in days {
        if d == skip {
            continue;
        }
        let count = if d == spike_on { 90 } else { 10 + d % 3 };
        text.push_str(&format!("L1,pharmacy,2022-03-{d:02},antipyretic,{count}\n"));
    }
    f.import(Kind::Sentinel, "pharmacy.csv", &text).unwrap();
}

#[test]
fn detection_queues_alarms_once_ranked_and_reviewers_escalate_or_dismiss() {
    let mut f = fresh();
    // Daily antipyretic sales at L1, a missing report on the 3rd, a spike on the 14th (whose
    // C2 reference, the 5th to the 11th, is whole: a missing day there makes the bound NA, as
    // in R).
    pharmacy_days(&mut f, 1..=14, 14, 3);
    let series = surveillance::series(&f.dep, None, &SeriesQuery::default()).unwrap();
    let daily = series.iter().find(|s| s.series == "D1/pharmacy/antipyretic/daily").unwrap();
    assert_eq!(daily.method, "ears_c2");
    assert_eq!(daily.points.len(), 15, "the 1st to today, the 15th (not yet reported)");
    assert_eq!(daily.points[2].observed, None, "a missing report is not a zero");
    assert_eq!(daily.points[11].alarm, None, "the 12th's reference holds the missing 3rd");
    assert_eq!(daily.points[13].alarm, Some(true));
    assert_eq!(daily.points[14].observed, None);
    assert!(
        series
            .iter()
            .any(|s| s.series == "D1/pharmacy/antipyretic/weekly" && s.points.iter().all(|p| p.upperbound.is_none())),
        "two weeks are far too short for Farrington"
    );

    let system = actor("scheduler");
    let run = surveillance::run(&mut f.dep, &system, None).unwrap();
    assert_eq!((run.alarms, run.queued), (1, 1), "{run:?}");
    let again = surveillance::run(&mut f.dep, &system, None).unwrap();
    assert_eq!((again.alarms, again.queued), (1, 0), "one item per series and period");
    let queue = surveillance::review_queue(&f.dep, None, Some(ReviewStatus::Pending), 10).unwrap();
    assert_eq!(queue.len(), 1);
    let item = &queue[0];
    assert_eq!((item.period.as_str(), item.observed), ("2022-03-14", 90.0));
    assert!((item.score - surveillance::score(90.0, item.upperbound)).abs() < 1e-12);

    let epi = user("epi", Role::Epidemiologist, "D1");
    let outsider = user("out", Role::Epidemiologist, "D2");
    assert!(matches!(
        surveillance::decide_review(&mut f.dep, &actor("out"), Some(&outsider), item.id, Verdict::Escalate, None),
        Err(AppError::NotFound(_))
    ));
    assert!(
        surveillance::decide_review(&mut f.dep, &actor("epi"), Some(&epi), item.id, Verdict::Dismiss, None).is_err()
    );
    let decided = surveillance::decide_review(
        &mut f.dep,
        &actor("epi"),
        Some(&epi),
        item.id,
        Verdict::Escalate,
        Some("real".into()),
    )
    .unwrap();
    assert_eq!(decided.status, ReviewStatus::Escalated);
    let alert = alerts::show(&f.dep, Some(&epi), decided.alert_id.unwrap()).unwrap();
    assert_eq!((alert.alert.kind, alert.alert.area_id.as_deref()), (AlertKind::Aberration, Some("D1")));
    assert!(
        surveillance::decide_review(&mut f.dep, &actor("epi"), Some(&epi), item.id, Verdict::Dismiss, Some("x".into()))
            .is_err(),
        "decided once"
    );
}

#[test]
fn a_silent_sentinel_raises_one_alert_per_silence() {
    let mut f = fresh();
    pharmacy_days(&mut f, 1..=10, 0, 0);
    // Today is the 15th: the last report was 5 days ago, more than the profile's 2.
    let silent = surveillance::silent(&f.dep, None).unwrap();
    assert_eq!(silent.len(), 1);
    assert_eq!((silent[0].last.place_id.as_str(), silent[0].days_silent), ("L1", 5));
    assert_eq!(surveillance::run(&mut f.dep, &actor("s"), None).unwrap().silent_alerts, 1);
    f.clock.advance(SignedDuration::from_hours(24));
    assert_eq!(surveillance::run(&mut f.dep, &actor("s"), None).unwrap().silent_alerts, 0, "not one per day");
    let silent_alerts = AlertFilter { kind: Some(AlertKind::SilentSentinel), ..Default::default() };
    assert_eq!(alerts::list(&f.dep, None, &silent_alerts, 0, 10).unwrap().len(), 1);
    // Reporting again ends the silence; a later silence is a new alert.
    pharmacy_days(&mut f, 16..=16, 0, 0);
    assert!(surveillance::silent(&f.dep, None).unwrap().is_empty());
    f.clock.advance(SignedDuration::from_hours(24 * 5));
    assert_eq!(surveillance::run(&mut f.dep, &actor("s"), None).unwrap().silent_alerts, 1);
    assert_eq!(alerts::list(&f.dep, None, &silent_alerts, 0, 10).unwrap().len(), 2);
}

#[test]
fn rt_is_estimated_over_the_stores_cases_by_onset() {
    let mut f = fresh();
    let mut text = String::from("id,person_id,classification,onset,reported_at,imported\n");
    let mut n = 0;
    for day in 1..=14u32 {
        for _ in 0..(day / 2 + 1) {
            n += 1;
            let person = ["P1", "P2", "P3"][n % 3];
            text.push_str(&format!(
                "K{n},{person},confirmed,2022-03-{day:02},2022-03-{day:02}T12:00:00Z,{}\n",
                day == 1
            ));
        }
    }
    text.push_str("KX,P1,excluded,2022-03-14,2022-03-14T12:00:00Z,false\n");
    f.import(Kind::Cases, "cases.csv", &text).unwrap();
    let rt = surveillance::rt(&f.dep, None, Some("2022-03-14".parse().unwrap())).unwrap();
    assert_eq!(rt.days.len(), 14);
    assert_eq!(rt.local.iter().sum::<f64>() + rt.imported.iter().sum::<f64>(), n as f64, "excluded left out");
    assert_eq!(rt.imported[0], 1.0);
    assert_eq!(rt.estimates.len(), 14 - 7);
    assert!(rt.estimates.iter().all(|e| e.mean.is_some_and(|m| m > 0.5 && m < 5.0)), "{:?}", rt.estimates);
    assert_eq!(rt.estimates[0].t_start.to_string(), "2022-03-02");
    assert_eq!(rt.estimates[0].t_end.to_string(), "2022-03-08");
    // Scoped: D2 holds only P3's cases.
    let d2 = user("d2", Role::Viewer, "D2");
    let scoped = surveillance::rt(&f.dep, Some(&d2), Some("2022-03-14".parse().unwrap())).unwrap();
    assert!(scoped.local.iter().sum::<f64>() + scoped.imported.iter().sum::<f64>() < n as f64);
}

/// A positive starts the response at once (issue 6): the suspected case it opens is isolated
/// and traced, its household and the co-workers it met proposed as close contacts for tracers
/// to confirm; tracing it again proposes nothing new; a case that cannot be traced is named.
/// Its response clock runs by itself: contacts determined, reported, transferred.
#[test]
fn a_positive_is_isolated_and_traced_at_once() {
    use chainbreak_app::{episodes, proposals};
    use chainbreak_store::{ProposalFilter, ProposalStatus};
    let mut f = fresh();
    f.import(Kind::Groups, "groups.csv", "id,kind,name,place_id,start,end\nHH1,household,,H1,,\n").unwrap();
    f.import(Kind::Memberships, "members.csv", "group_id,person_id,role\nHH1,P1,head\nHH1,P2,\n").unwrap();
    // P1 and P3 at the cold-chain warehouse W2 the day before the sample.
    f.import(
        Kind::Visits,
        "visits.csv",
        "person_id,place_id,t_in,t_out\nP1,W2,2022-03-13T01:00:00Z,2022-03-13T04:00:00Z\n\
         P3,W2,2022-03-13T02:00:00Z,2022-03-13T06:00:00Z\n",
    )
    .unwrap();
    let text = format!("{LAB_HEADER}T1,person,P1,,pcr,positive,2022-03-14T08:00:00Z,2022-03-14T20:00:00Z,LAB\n");
    let report = f.import(Kind::LabTests, "lab.csv", &text).unwrap();
    let isolated = episodes::isolate_cases(&mut f.dep, &actor("importer"), &report.triggered.cases, "intake").unwrap();
    assert_eq!(isolated.opened, 1);
    let traced = proposals::trace_cases(&mut f.dep, &actor("importer"), &["S-T1".to_string()]).unwrap();
    assert_eq!((traced.traced.as_slice(), traced.skipped.len()), (&["S-T1".to_string()][..], 0));
    assert_eq!((traced.recorded.indexes, traced.recorded.proposed), (1, 2), "{traced:?}");
    let epi = user("epi", Role::Epidemiologist, "C1");
    let filter = ProposalFilter { case_id: Some("S-T1".into()), status: None };
    let page = proposals::list(&*f.dep.store, &epi, &filter, None, 100).unwrap();
    let mut found: Vec<(&str, &str, ProposalStatus)> = page
        .items
        .iter()
        .map(|p| (p.proposal.contact_id.as_str(), p.proposal.category.as_str(), p.proposal.status))
        .collect();
    found.sort();
    assert_eq!(found, [("P2", "close", ProposalStatus::Proposed), ("P3", "close", ProposalStatus::Proposed)]);
    let w2 = page.items.iter().find(|p| p.proposal.contact_id == "P3").unwrap();
    assert!(w2.evidence.to_string().contains("W2"), "the evidence names the place: {}", w2.evidence);

    // Traced again (a second import, a restart): nothing new; an unknown case is named, not traced.
    let again =
        proposals::trace_cases(&mut f.dep, &actor("importer"), &["S-T1".to_string(), "S-NONE".to_string()]).unwrap();
    assert_eq!(again.recorded.proposed, 0);
    assert_eq!(again.skipped.len(), 1);
    assert_eq!(again.skipped[0].0, "S-NONE");
    let none = proposals::trace_cases(&mut f.dep, &actor("importer"), &["S-NONE".to_string()]).unwrap();
    assert_eq!((none.traced.len(), none.recorded), (0, Default::default()));

    // The response clock runs by itself. The tracer decides both proposals: the case's
    // contacts are determined (before the case is reported: met once its clock starts).
    let clock_item = |f: &Fixture, case: &str, item: &str| {
        f.dep.store.clock_of(case).unwrap().into_iter().find(|c| c.item == item).unwrap()
    };
    let ids: Vec<i64> = page.items.iter().map(|p| p.proposal.id).collect();
    let decided_at = f.clock.now();
    proposals::decide_and_open(&mut f.dep, None, &actor("tracer"), &ids[..1], proposals::Verdict::Confirm, None, "U1")
        .unwrap();
    assert_eq!(clock_item(&f, "S-T1", "contacts_determined").stopped_at, None, "one proposal is still open");
    proposals::decide_and_open(&mut f.dep, None, &actor("tracer"), &ids[1..], proposals::Verdict::Confirm, None, "U1")
        .unwrap();
    assert_eq!(clock_item(&f, "S-T1", "contacts_determined").stopped_at, Some(decided_at));
    // The case is reported (under its own id K1) an hour after the result: the suspected case's
    // report item stops in time, the items that run from the report start.
    let report = f
        .import(
            Kind::Cases,
            "cases.csv",
            "id,person_id,classification,sampled_at,reported_at\nK1,P1,confirmed,2022-03-14T08:00:00Z,2022-03-14T21:00:00Z\n",
        )
        .unwrap();
    episodes::isolate_cases(&mut f.dep, &actor("importer"), &report.cases, "intake").unwrap();
    let reported: Timestamp = "2022-03-14T21:00:00Z".parse().unwrap();
    let item = clock_item(&f, "S-T1", "case_reported");
    assert_eq!((item.stopped_at, item.due_at), (Some(reported), Some(reported + SignedDuration::from_hours(1))));
    let item = clock_item(&f, "S-T1", "contacts_determined");
    assert_eq!((item.started_at, item.stopped_at), (Some(reported), Some(decided_at)));
    let item = clock_item(&f, "K1", "case_transferred");
    assert_eq!((item.started_at, item.stopped_at), (Some(reported), None), "K1 has its own clock from its report");
    // Taken to the isolation facility: transferred, for both cases the isolation names.
    let room = chainbreak_store::RoomRow { id: "1".into(), capacity: 1, state: "clean".into() };
    let hospital =
        chainbreak_store::FacilityRow { id: "DH".into(), name: "Hospital".into(), area: None, rooms: vec![room] };
    episodes::put_facilities(&mut f.dep, &actor("importer"), None, &[hospital]).unwrap();
    let iso = episodes::list(&f.dep, None, &Default::default(), None, 100)
        .unwrap()
        .into_iter()
        .find(|e| e.person_id == "P1" && e.category == "case")
        .unwrap()
        .id;
    let transfer = chainbreak_closedloop::Action::Transfer { facility: "DH".into(), room: String::new() };
    let act = |a| episodes::Request::Act { episode: iso.clone(), action: a };
    episodes::transition(
        &mut f.dep,
        &actor("tracer"),
        None,
        &[act(chainbreak_closedloop::Action::Notify), act(transfer)],
    )
    .unwrap();
    for case in ["S-T1", "K1"] {
        assert_eq!(clock_item(&f, case, "case_transferred").stopped_at, Some(f.clock.now()), "{case}");
    }
}
