//! Conformance checks of alerts, the review queue, the response clock and sentinel reads.

use chainbreak_core::model::*;

use super::{area, lab, seed, simple_case, t};
use crate::{
    AlertEvent, AlertFilter, AlertKind, AlertOutcome, AlertRow, ClockRow, Entity, ReviewDecision, ReviewItem,
    ReviewStatus, Scope, Store, StoreError,
};

fn alert(key: &str, kind: AlertKind, area: Option<&str>, place: Option<&str>, person: Option<&str>) -> AlertRow {
    AlertRow {
        id: 0,
        kind,
        state: AlertState::New,
        key: key.into(),
        summary: format!("{key} summary"),
        owner_unit: None,
        area_id: area.map(Into::into),
        place_id: place.map(Into::into),
        person_id: person.map(Into::into),
        subject: Some(key.into()),
        details: r#"{"x":1}"#.into(),
        outcome: None,
        raised_at: t(10),
        updated_at: t(10),
    }
}

fn event(id: i64, from: AlertState, to: AlertState, at: i64) -> AlertEvent {
    AlertEvent {
        seq: 0,
        alert_id: id,
        at: t(at),
        actor: "triager".into(),
        from: Some(from),
        to,
        owner_unit: None,
        outcome: None,
        note: Some("why".into()),
    }
}

fn listed(store: &dyn Store, scope: &Scope, filter: &AlertFilter) -> Vec<i64> {
    store.alerts_page(scope, filter, 0, 10).unwrap().into_iter().map(|a| a.id).collect()
}

fn order(store: &dyn Store, scope: &Scope, status: Option<ReviewStatus>) -> Vec<f64> {
    store.review_queue(scope, status, 10).unwrap().into_iter().map(|r| r.score).collect()
}

pub fn alerts_are_raised_once_and_moved_with_their_events(store: &mut dyn Store) {
    seed(store);
    let mut b = store.begin(t(1)).unwrap();
    b.put_areas(&[area("D2", "district", None)]).unwrap();
    b.commit().unwrap();
    let before = store.last_seq().unwrap();
    let mut b = store.begin(t(10)).unwrap();
    let ids = b
        .raise_alerts(
            &[
                alert("a", AlertKind::PositivePerson, None, None, Some("P1")),
                alert("b", AlertKind::EnvironmentPositive, None, Some("M1"), None),
                alert("c", AlertKind::SilentSentinel, Some("D2"), None, None),
                alert("a", AlertKind::PositivePerson, None, None, Some("P1")),
            ],
            "system",
        )
        .unwrap();
    assert!(ids[0].is_some() && ids[1].is_some() && ids[2].is_some() && ids[3].is_none(), "{ids:?}");
    // The same key again in a later call is not raised again either.
    assert_eq!(b.raise_alerts(&[alert("b", AlertKind::EnvironmentPositive, None, None, None)], "x").unwrap(), [None]);
    // All or nothing: an unknown reference raises nothing of the call.
    let bad =
        [alert("d", AlertKind::Manual, None, None, None), alert("e", AlertKind::Manual, Some("nowhere"), None, None)];
    assert!(matches!(b.raise_alerts(&bad, "x"), Err(StoreError::UnknownReference { index: 1, .. })));
    b.commit().unwrap();
    let changes: Vec<Entity> = store.changes_since(before, 10).unwrap().iter().map(|c| c.entity).collect();
    assert_eq!(changes, [Entity::Alert, Entity::Alert, Entity::Alert]);
    let (a, b_id, c) = (ids[0].unwrap(), ids[1].unwrap(), ids[2].unwrap());
    let first = store.alert(a).unwrap().unwrap();
    assert_eq!(
        (first.state, first.kind, first.person_id.as_deref()),
        (AlertState::New, AlertKind::PositivePerson, Some("P1"))
    );
    assert_eq!(first.details, r#"{"x":1}"#);
    assert_eq!(store.alert(9999).unwrap(), None);

    // Scope: by person (P1 lives in B1 under D1), place (M1 in D1), area (D2).
    assert_eq!(listed(&*store, &Scope::All, &Default::default()), [a, b_id, c]);
    assert_eq!(listed(&*store, &Scope::Within("D1".into()), &Default::default()), [a, b_id]);
    assert_eq!(listed(&*store, &Scope::Within("D2".into()), &Default::default()), [c]);
    let kind = AlertFilter { kind: Some(AlertKind::SilentSentinel), ..Default::default() };
    assert_eq!(listed(&*store, &Scope::All, &kind), [c]);
    assert_eq!(store.alerts_page(&Scope::All, &Default::default(), a, 10).unwrap().len(), 2);

    // Moves: the state must be the one the event starts from.
    let mut b = store.begin(t(20)).unwrap();
    let mut ack = event(a, AlertState::New, AlertState::Acknowledged, 20);
    ack.owner_unit = Some("CDC".into());
    let moved = b.transition_alert(&ack).unwrap();
    assert_eq!(
        (moved.state, moved.owner_unit.as_deref(), moved.updated_at),
        (AlertState::Acknowledged, Some("CDC"), t(20))
    );
    let stale = event(a, AlertState::New, AlertState::Acknowledged, 21);
    assert!(matches!(b.transition_alert(&stale), Err(StoreError::Invalid { .. })));
    assert!(matches!(
        b.transition_alert(&event(9999, AlertState::New, AlertState::Closed, 21)),
        Err(StoreError::NotFound(_))
    ));
    let mut close = event(a, AlertState::Acknowledged, AlertState::Closed, 22);
    close.outcome = Some(AlertOutcome::FalseAlarm);
    b.transition_alert(&close).unwrap();
    b.commit().unwrap();
    let closed = store.alert(a).unwrap().unwrap();
    assert_eq!(
        (closed.state, closed.outcome, closed.owner_unit.as_deref()),
        (AlertState::Closed, Some(AlertOutcome::FalseAlarm), Some("CDC"))
    );
    let events = store.alert_events(a).unwrap();
    let steps: Vec<(Option<AlertState>, AlertState, &str)> =
        events.iter().map(|e| (e.from, e.to, e.actor.as_str())).collect();
    assert_eq!(
        steps,
        [
            (None, AlertState::New, "system"),
            (Some(AlertState::New), AlertState::Acknowledged, "triager"),
            (Some(AlertState::Acknowledged), AlertState::Closed, "triager")
        ]
    );
    assert_eq!(events[2].outcome, Some(AlertOutcome::FalseAlarm));
    let open = AlertFilter { open: true, ..Default::default() };
    assert_eq!(listed(&*store, &Scope::All, &open), [b_id, c]);

    // A dropped batch moves nothing.
    let mut b = store.begin(t(30)).unwrap();
    b.transition_alert(&event(c, AlertState::New, AlertState::Acknowledged, 30)).unwrap();
    drop(b);
    assert_eq!(store.alert(c).unwrap().unwrap().state, AlertState::New);
    assert_eq!(store.alert_events(c).unwrap().len(), 1);
}

fn review(series: &str, period: &str, score: f64, area: Option<&str>) -> ReviewItem {
    ReviewItem {
        id: 0,
        series: series.into(),
        area_id: area.map(Into::into),
        feed: "pharmacy".into(),
        category: Some("antipyretic".into()),
        frequency: "daily".into(),
        period: period.into(),
        method: "ears_c2".into(),
        observed: 10.0,
        expected: Some(2.0),
        upperbound: 5.0,
        score,
        status: ReviewStatus::Pending,
        decided_by: None,
        decided_at: None,
        reason: None,
        alert_id: None,
        created_at: t(5),
    }
}

pub fn review_items_are_queued_once_ranked_and_decided(store: &mut dyn Store) {
    seed(store);
    let mut b = store.begin(t(5)).unwrap();
    b.put_areas(&[area("D2", "district", None)]).unwrap();
    let ids = b
        .queue_review_items(&[
            review("D1/pharmacy", "2022-03-01", 1.0, Some("D1")),
            review("D1/pharmacy", "2022-03-02", 3.0, Some("B1")),
            review("D2/pharmacy", "2022-03-01", 2.0, Some("D2")),
            review("D1/pharmacy", "2022-03-01", 9.0, Some("D1")),
        ])
        .unwrap();
    assert!(ids[..3].iter().all(Option::is_some) && ids[3].is_none(), "one per series and period: {ids:?}");
    assert!(b.queue_review_items(&[review("x", "2022-03-01", f64::NAN, None)]).is_err());
    assert!(matches!(
        b.queue_review_items(&[review("y", "2022-03-01", 1.0, Some("nowhere"))]),
        Err(StoreError::UnknownReference { .. })
    ));
    b.commit().unwrap();
    assert_eq!(order(&*store, &Scope::All, None), [3.0, 2.0, 1.0], "highest first");
    assert_eq!(order(&*store, &Scope::Within("D1".into()), None), [3.0, 1.0]);
    let first = ids[0].unwrap();
    let mut b = store.begin(t(6)).unwrap();
    let d = ReviewDecision {
        status: ReviewStatus::Dismissed,
        actor: "rev".into(),
        reason: Some("holiday".into()),
        alert_id: None,
        at: t(6),
    };
    let decided = b.decide_review_item(first, &d).unwrap();
    assert_eq!(
        (decided.status, decided.decided_by.as_deref(), decided.decided_at),
        (ReviewStatus::Dismissed, Some("rev"), Some(t(6)))
    );
    assert!(matches!(b.decide_review_item(first, &d), Err(StoreError::Invalid { .. })), "decided once");
    assert!(matches!(b.decide_review_item(9999, &d), Err(StoreError::NotFound(_))));
    // Queued again after the decision: kept as decided.
    assert_eq!(b.queue_review_items(&[review("D1/pharmacy", "2022-03-01", 1.0, Some("D1"))]).unwrap(), [None]);
    b.commit().unwrap();
    assert_eq!(order(&*store, &Scope::All, Some(ReviewStatus::Pending)), [3.0, 2.0]);
    assert_eq!(store.review_item(first).unwrap().unwrap().reason.as_deref(), Some("holiday"));
}

pub fn response_clock_starts_and_stops_on_events(store: &mut dyn Store) {
    seed(store);
    let row = |item: &str, start: &str, stop: &str, hours: u32| ClockRow {
        case_id: "K1".into(),
        item: item.into(),
        start_event: start.into(),
        stop_event: stop.into(),
        limit_hours: hours,
        started_at: None,
        due_at: None,
        stopped_at: None,
    };
    let mut b = store.begin(t(0)).unwrap();
    b.put_clock(&[
        row("reported", "positive_result", "case_reported", 2),
        row("trail", "case_reported", "trail_signed_off", 4),
    ])
    .unwrap();
    let started = b.clock_event("K1", "positive_result", t(100)).unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!((started[0].started_at, started[0].due_at), (Some(t(100)), Some(t(100 + 7200))));
    // Put again: kept as it is.
    b.put_clock(&[row("reported", "positive_result", "case_reported", 2)]).unwrap();
    b.commit().unwrap();
    let mut b = store.begin(t(0)).unwrap();
    let changed = b.clock_event("K1", "case_reported", t(200)).unwrap();
    assert_eq!(changed.len(), 2, "one stops, one starts: {changed:?}");
    // An item stops only once started, and only once.
    assert_eq!(b.clock_event("K1", "case_reported", t(300)).unwrap(), []);
    b.commit().unwrap();
    let clock = store.clock_of("K1").unwrap();
    let view: Vec<(&str, Option<_>, Option<_>)> =
        clock.iter().map(|r| (r.item.as_str(), r.started_at, r.stopped_at)).collect();
    assert_eq!(view, [("reported", Some(t(100)), Some(t(200))), ("trail", Some(t(200)), None)]);
    assert_eq!(store.clock_of("K9").unwrap(), []);
    // The clocks of the cases reported since an instant, within a scope: K1 (P1, in D1) reported
    // at 50, K2 (P3, who lives nowhere) at 500.
    let mut b = store.begin(t(600)).unwrap();
    let mut k1 = simple_case("K1", "P1");
    k1.reported_at = t(50);
    let mut k2 = simple_case("K2", "P3");
    k2.reported_at = t(500);
    b.put_cases(&[k1, k2]).unwrap();
    b.put_clock(&[ClockRow { case_id: "K2".into(), ..row("reported", "positive_result", "case_reported", 2) }])
        .unwrap();
    b.commit().unwrap();
    let since = |scope: &Scope, from: i64| -> Vec<(String, String)> {
        store.clocks_reported_since(scope, t(from)).unwrap().into_iter().map(|r| (r.case_id, r.item)).collect()
    };
    let pair = |c: &str, i: &str| (c.to_string(), i.to_string());
    assert_eq!(since(&Scope::All, 0), [pair("K1", "reported"), pair("K1", "trail"), pair("K2", "reported")]);
    assert_eq!(since(&Scope::All, 51), [pair("K2", "reported")]);
    assert_eq!(since(&Scope::Within("D1".into()), 0), [pair("K1", "reported"), pair("K1", "trail")]);
    assert_eq!(since(&Scope::Within("D1".into()), 51), []);
}

pub fn sentinel_records_and_batch_lookups_read_what_was_written(store: &mut dyn Store) {
    seed(store);
    let d = |s: &str| -> jiff::civil::Date { s.parse().unwrap() };
    let rec = |place: &str, area: Option<&str>, date: &str, category: Option<&str>, count: u32| SentinelRecord {
        place_id: place.into(),
        area_id: area.map(Into::into),
        feed: SentinelFeed::Pharmacy,
        date: d(date),
        category: category.map(Into::into),
        count,
        positives: None,
    };
    let mut b = store.begin(t(0)).unwrap();
    b.put_areas(&[area("D2", "district", None)]).unwrap();
    b.put_sentinel(&[
        rec("M1", None, "2022-03-01", Some("cough"), 4),
        rec("M1", None, "2022-03-03", Some("cough"), 5),
        rec("W1", Some("D2"), "2022-03-02", None, 7),
    ])
    .unwrap();
    let mut pooled = lab("T1", SubjectKind::Person, "P1", None);
    pooled.pool_id = Some("POOL1".into());
    let mut pooled2 = lab("T2", SubjectKind::Person, "P2", None);
    pooled2.pool_id = Some("POOL1".into());
    b.put_lab_tests(&[pooled, pooled2, lab("T3", SubjectKind::Person, "P3", None)]).unwrap();
    let mut excluded = simple_case("K2", "P2");
    excluded.classification = Classification::Excluded;
    b.put_cases(&[simple_case("K1", "P1"), excluded]).unwrap();
    let members: Vec<String> = b.pool_members(&["POOL1", "POOL1", "NONE"]).unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(members, ["T1", "T2"]);
    let open: Vec<String> = b.open_cases_of(&["P1", "P2", "P3"]).unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(open, ["K1"], "excluded cases are not open");
    b.commit().unwrap();

    let all = store.sentinel_records(&Scope::All, d("2022-03-01"), d("2022-03-02")).unwrap();
    let view: Vec<String> =
        all.iter().map(|r| format!("{} {:?} {} {:?} {}", r.place_id, r.area_id, r.date, r.category, r.count)).collect();
    assert_eq!(
        view,
        [r#"M1 Some("D1") 2022-03-01 Some("cough") 4"#, r#"W1 Some("D2") 2022-03-02 None 7"#],
        "the place's area when the record has none; dates inclusive"
    );
    let d2 = store.sentinel_records(&Scope::Within("D2".into()), d("2022-01-01"), d("2022-12-31")).unwrap();
    assert_eq!(d2.len(), 1);
    let last: Vec<(String, String)> =
        store.sentinel_last_reports(&Scope::All).unwrap().into_iter().map(|l| (l.place_id, l.last_date)).collect();
    assert_eq!(last, [("M1".to_string(), "2022-03-03".to_string()), ("W1".to_string(), "2022-03-02".to_string())]);
    assert_eq!(store.sentinel_last_reports(&Scope::Within("D1".into())).unwrap().len(), 1);
}
