// Service requests: filing by eligibility, deadlines from the profile, acts refused by state,
// and a property test over random filings, acts, escalations, interrupted writes and restarts:
// no request is ever lost, and each closes only with an outcome.

use chainbreak_app::requests::{self, NewRequest, RequestAct};
use chainbreak_closedloop::requests::RequestOutcome;
use chainbreak_closedloop::{Category, Reason};
use chainbreak_core::model::MeasureKind;
use chainbreak_core::profile::{RequestKind, RequestPriority};
use chainbreak_core::time::Clock;
use chainbreak_formats::Kind;
use chainbreak_store::{RequestEventRow, RequestFilter, Scope};
use jiff::SignedDuration;
use proptest::prelude::*;

use super::{Fixture, actor};

/// Units S1 → D1U → CITY; Q1..Q3 under the home quarantine of a zone owned by S1; Q4 under no
/// measure.
fn zone() -> Fixture {
    let mut f = Fixture::new();
    f.import(Kind::Areas, "areas.csv", "id,name,level,parent\nC1,City,city,\nD1,One,district,C1\n").unwrap();
    f.import(
        Kind::Units,
        "units.csv",
        "id,name,parent\nCITY,City command,\nD1U,District office,CITY\nS1,Station,D1U\n",
    )
    .unwrap();
    f.import(Kind::Places, "places.csv", "id,kind,area\nH1,residence,D1\n").unwrap();
    f.import(Kind::Persons, "persons.csv", "id,residence\nQ1,H1\nQ2,H1\nQ3,H1\nQ4,H1\n").unwrap();
    let open: Vec<chainbreak_app::episodes::Request> = ["Q1", "Q2", "Q3"]
        .iter()
        .map(|p| chainbreak_app::episodes::Request::Open {
            id: None,
            person: p.to_string(),
            category: Category::ZoneResident,
            plan: Some(chainbreak_closedloop::zone_resident_plan(MeasureKind::HomeQuarantine)),
            reason: Reason { source: "zone:area:D1:1".into(), via: None, at: f.clock.now(), evidence: None },
            owner: "S1".into(),
            confirmed: true,
        })
        .collect();
    chainbreak_app::episodes::transition(&mut f.dep, &actor("commander"), None, &open).unwrap();
    f
}

fn new(person: &str, kind: RequestKind, priority: Option<RequestPriority>) -> NewRequest {
    NewRequest { person_id: person.into(), kind, priority, owner_unit: None, note: None }
}

#[test]
fn requests_are_for_residents_under_a_measure_and_close_only_with_an_outcome() {
    let mut f = zone();
    let a = actor("worker");
    let r = requests::file(&mut f.dep, &a, None, new("Q1", RequestKind::Dialysis, None)).unwrap();
    // Urgent by default for dialysis: within the hour; owned by the measure's unit.
    assert_eq!((r.row.priority.as_str(), r.row.owner_unit.as_str()), ("urgent", "S1"));
    assert_eq!(r.row.due, f.clock.now() + SignedDuration::from_hours(1));
    let food = requests::file(&mut f.dep, &a, None, new("Q2", RequestKind::Food, None)).unwrap();
    assert_eq!(food.row.due, f.clock.now() + SignedDuration::from_hours(24));
    let e = requests::file(&mut f.dep, &a, None, new("Q4", RequestKind::Food, None)).unwrap_err();
    assert!(e.to_string().contains("under no zone or home measure"), "{e}");
    assert!(requests::file(&mut f.dep, &a, None, new("Q404", RequestKind::Food, None)).is_err());

    let id = r.row.id.clone();
    let e = requests::act(
        &mut f.dep,
        &a,
        None,
        &id,
        RequestAct::Close { outcome: RequestOutcome::Unfulfilled, note: None },
    )
    .unwrap_err();
    assert!(e.to_string().contains("needs a note"), "{e}");
    requests::act(&mut f.dep, &a, None, &id, RequestAct::Accept { note: Some("on the way".into()) }).unwrap();
    let closed = requests::act(
        &mut f.dep,
        &a,
        None,
        &id,
        RequestAct::Close { outcome: RequestOutcome::Fulfilled, note: Some("taken to the dialysis centre".into()) },
    )
    .unwrap();
    assert_eq!((closed.row.state.as_str(), closed.row.outcome.as_deref()), ("closed", Some("fulfilled")));
    assert!(requests::act(&mut f.dep, &a, None, &id, RequestAct::Accept { note: None }).is_err());
    let detail = requests::show(&f.dep, None, &id).unwrap();
    let actions: Vec<&str> = detail.history.iter().map(|h| h.event["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["file", "accept", "close"]);

    // Late: one unit up per hour past the deadline, recorded once.
    f.clock.advance(SignedDuration::from_hours(27));
    let escalated = requests::escalate(&mut f.dep, &actor("system"), None).unwrap();
    assert_eq!(escalated.len(), 1);
    assert_eq!((escalated[0].row.escalation, escalated[0].row.unit.as_str()), (3, "CITY"), "27 h − 24 h");
    assert!(requests::escalate(&mut f.dep, &actor("system"), None).unwrap().is_empty());
    let overdue = requests::list(&f.dep, None, &RequestFilter { open: true, ..Default::default() }, None, 10).unwrap();
    assert!(overdue.items[0].overdue);
}

#[derive(Debug, Clone)]
enum Op {
    File {
        person: usize,
        kind: usize,
        priority: Option<usize>,
    },
    Accept(usize),
    Reassign(usize),
    Close {
        request: usize,
        outcome: usize,
        note: bool,
    },
    Advance(i64),
    Escalate,
    Restart,
    /// A write begun and dropped (a crash before commit).
    Interrupted(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..6usize, proptest::option::of(0..3usize))
            .prop_map(|(person, kind, priority)| Op::File { person, kind, priority }),
        2 => (0..16usize).prop_map(Op::Accept),
        1 => (0..16usize).prop_map(Op::Reassign),
        2 => (0..16usize, 0..4usize, any::<bool>()).prop_map(|(request, outcome, note)| Op::Close { request, outcome, note }),
        3 => (1..400i64).prop_map(Op::Advance),
        2 => Just(Op::Escalate),
        2 => Just(Op::Restart),
        1 => (0..16usize).prop_map(Op::Interrupted),
    ]
}

fn chain_of(owner: &str) -> Vec<&'static str> {
    match owner {
        "S1" => vec!["S1", "D1U", "CITY"],
        "D1U" => vec!["D1U", "CITY"],
        _ => vec!["CITY"],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn no_request_is_lost_across_filings_escalations_and_restarts(ops in proptest::collection::vec(op(), 1..30)) {
        let mut f = zone();
        let a = actor("worker");
        // What the callers were told: every filed request, and how the closed ones ended.
        let mut filed: Vec<String> = Vec::new();
        let mut closed: std::collections::BTreeMap<String, String> = Default::default();
        for op in ops {
            match op {
                Op::File { person, kind, priority } => {
                    let p = ["Q1", "Q2", "Q3", "Q4"][person];
                    let got = requests::file(
                        &mut f.dep,
                        &a,
                        None,
                        new(p, RequestKind::ALL[kind], priority.map(|i| RequestPriority::ALL[i])),
                    );
                    match got {
                        Ok(v) => filed.push(v.row.id),
                        Err(e) => prop_assert_eq!(p, "Q4", "refused: {}", e),
                    }
                }
                Op::Accept(i) | Op::Reassign(i) | Op::Close { request: i, .. } if filed.is_empty() => { let _ = i; }
                Op::Accept(i) => {
                    let id = &filed[i % filed.len()];
                    let _ = requests::act(&mut f.dep, &a, None, id, RequestAct::Accept { note: None });
                }
                Op::Reassign(i) => {
                    let id = &filed[i % filed.len()];
                    let _ = requests::act(&mut f.dep, &a, None, id, RequestAct::Reassign { owner_unit: "D1U".into() });
                }
                Op::Close { request, outcome, note } => {
                    let id = filed[request % filed.len()].clone();
                    let outcome = RequestOutcome::ALL[outcome];
                    let act = RequestAct::Close { outcome, note: note.then(|| "done".to_string()) };
                    match requests::act(&mut f.dep, &a, None, &id, act) {
                        Ok(v) => {
                            prop_assert!(!closed.contains_key(&id), "closed twice");
                            closed.insert(id, v.row.outcome.unwrap());
                        }
                        Err(_) => prop_assert!(
                            closed.contains_key(&id) || (outcome == RequestOutcome::Unfulfilled && !note),
                            "a close refused for no reason"
                        ),
                    }
                }
                Op::Advance(minutes) => f.clock.advance(SignedDuration::from_mins(minutes)),
                Op::Escalate => {
                    requests::escalate(&mut f.dep, &actor("system"), None).unwrap();
                    let every = 60 * 60;
                    let now = f.clock.now();
                    for r in requests::list(&f.dep, None, &RequestFilter { open: true, ..Default::default() }, None, 1000)
                        .unwrap()
                        .items
                    {
                        let late = now.as_second() - r.row.due.as_second();
                        let level = if late > 0 { (late / every) as u32 } else { 0 };
                        if level > 0 {
                            prop_assert!(r.row.escalation >= level, "{} not escalated: {:?}", r.row.id, r.row);
                            let chain = chain_of(&r.row.owner_unit);
                            prop_assert_eq!(&r.row.unit, chain[(r.row.escalation as usize).min(chain.len() - 1)]);
                        }
                    }
                }
                Op::Restart => f.restart(),
                Op::Interrupted(i) => {
                    if let Some(id) = filed.get(i % filed.len().max(1)) {
                        let row = f.dep.store.request(id).unwrap().unwrap();
                        let mut b = f.dep.store.begin(f.clock.now()).unwrap();
                        let e = RequestEventRow {
                            seq: 0,
                            request_id: id.clone(),
                            at: f.clock.now(),
                            actor: "crash".into(),
                            action: r#"{"action":"comment","note":"lost"}"#.into(),
                        };
                        b.append_request_events(&[e], &[chainbreak_store::RequestRow { state: "closed".into(), ..row }]).unwrap();
                        drop(b);
                    }
                }
            }
            // Nothing lost, nothing invented: every request the callers were told of is stored,
            // open unless closed with an outcome, and its row is what its events replay to.
            let all = f.dep.store.requests_page(&Scope::All, &RequestFilter::default(), None, 1000).unwrap();
            let mut ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
            ids.sort();
            let mut want: Vec<&str> = filed.iter().map(String::as_str).collect();
            want.sort();
            prop_assert_eq!(ids, want);
            for r in &all {
                match closed.get(&r.id) {
                    Some(outcome) => {
                        prop_assert_eq!(r.state.as_str(), "closed");
                        prop_assert_eq!(r.outcome.as_ref(), Some(outcome));
                    }
                    None => prop_assert!(r.state != "closed" && r.outcome.is_none(), "{:?}", r),
                }
                let events = f.dep.store.request_events(&r.id).unwrap();
                prop_assert_eq!(events.len() as u32, r.events);
                prop_assert!(events.iter().all(|e| e.actor != "crash"));
            }
        }
    }
}
