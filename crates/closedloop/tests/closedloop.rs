//! The closed-loop engine under the built-in profiles: paths through the states, the rules
//! that move episodes, deadlines and escalation, and random event sequences.

use chainbreak_closedloop::{
    Action, Category, CloseReason, Effect, Episode, Event, POSITIVE_SOURCE, Reason, Refusal, Registry, Rules,
    TestResult, escalated_owner, isolation_plan, zone_resident_plan, zone_source,
};
use chainbreak_core::model::EpisodeState as S;
use chainbreak_core::profile::Profile;
use chainbreak_core::time::Calendar;
use jiff::Timestamp;
use proptest::prelude::*;

/// 2022-03-01T00:00:00+08:00 (local midnight in Asia/Shanghai), plus hours.
fn h(hours: i64) -> Timestamp {
    Timestamp::from_second(1_646_064_000 + hours * 3600).unwrap()
}

fn ev(at: Timestamp, action: Action) -> Event {
    Event { at, actor: "tester".into(), action, note: None }
}

struct World {
    profile: Profile,
    calendar: Calendar,
}

impl World {
    fn new(profile: &str) -> Self {
        World { profile: Profile::builtin(profile).unwrap(), calendar: Calendar::new("Asia/Shanghai").unwrap() }
    }

    fn rules(&self) -> Rules<'_> {
        Rules { profile: &self.profile, calendar: &self.calendar }
    }

    /// A close contact of case K1 last exposed at `exposure`, proposed at `at`.
    fn open_close(&self, at: Timestamp, exposure: Timestamp) -> Event {
        ev(
            at,
            Action::Open {
                person: "P1".into(),
                category: Category::Close,
                plan: self.profile.close_contact_measure.clone(),
                reason: Reason { source: "K1".into(), via: None, at: exposure, evidence: None },
                owner: "U-community".into(),
            },
        )
    }
}

fn negative(at: Timestamp) -> Action {
    Action::Test { taken_at: at, result: TestResult::Negative, lab_test: None }
}

#[test]
fn a_close_contact_goes_through_central_quarantine_to_release() {
    let w = World::new("cn-2022-9th");
    let r = w.rules();
    // Last exposure on 1 March (local): day 0. 7 days central + 3 home: released from 11 March.
    let mut ep = Episode::open(&w.open_close(h(30), h(10))).unwrap();
    assert_eq!((ep.state, ep.deadline(&r)), (S::Proposed, Some(h(30 + 24))));
    ep.apply(&ev(h(31), Action::Confirm), &r).unwrap();
    assert_eq!(ep.deadline(&r), Some(h(31 + 12)), "in quarantine within 12 h of determination");
    ep.apply(&ev(h(33), Action::Notify), &r).unwrap();
    assert_eq!(ep.deadline(&r), Some(h(31 + 12)), "the same clock runs through notification");
    // Home quarantine is not this plan's first phase: the person is transferred first.
    assert!(matches!(ep.apply(&ev(h(34), Action::Start), &r), Err(Refusal::NotInState { .. })));
    ep.apply(&ev(h(35), Action::Transfer { facility: "F1".into(), room: "101".into() }), &r).unwrap();
    ep.apply(&ev(h(36), Action::Start), &r).unwrap();
    assert_eq!(ep.state, S::InMeasure);
    assert_eq!(ep.deadline(&r), Some(h(24 * 11)), "due at the end of day 10");
    assert_eq!(ep.test_days(), [1, 2, 3, 5, 7, 10]);

    // Tests on days 1, 2, 3, 5 and 7; day 10 (home day 3) is still due.
    for day in [1, 2, 3, 5, 7] {
        ep.apply(&ev(h(24 * day + 20), negative(h(24 * day + 18))), &r).unwrap();
    }
    let tasks = ep.tasks(&r, h(24 * 10 + 12));
    let tests: Vec<Option<u32>> = tasks.iter().filter(|t| t.kind == "test").map(|t| t.day).collect();
    assert_eq!(tests, [Some(10)]);
    let early = ep.apply(&ev(h(24 * 10 + 12), Action::Release), &r);
    assert!(matches!(&early, Err(Refusal::NotReleasable(why)) if why.contains("day 10")), "{early:?}");
    let before = ep.clone();
    let missing = ep.apply(&ev(h(24 * 11 + 1), Action::Release), &r);
    assert!(matches!(&missing, Err(Refusal::NotReleasable(why)) if why.contains("no negative test on day 10")));
    assert_eq!(ep, before, "a refused event changes nothing");
    // A test on day 9 does not count for day 10; one made up on day 11 does.
    ep.apply(&ev(h(24 * 11 + 2), negative(h(24 * 9 + 20))), &r).unwrap();
    assert!(ep.apply(&ev(h(24 * 11 + 2), Action::Release), &r).is_err());
    ep.apply(&ev(h(24 * 11 + 2), negative(h(24 * 11 + 1))), &r).unwrap();
    ep.apply(&ev(h(24 * 11 + 3), Action::Release), &r).unwrap();
    assert_eq!((ep.state, ep.deadline(&r)), (S::Released, None));
    assert!(ep.tasks(&r, h(24 * 20)).is_empty());
    assert!(matches!(ep.apply(&ev(h(24 * 12), Action::Notify), &r), Err(Refusal::NotInState { .. })));
}

#[test]
fn a_positive_test_converts_and_a_later_exposure_extends() {
    let w = World::new("cn-2022-9th");
    let r = w.rules();
    let mut ep = Episode::open(&w.open_close(h(30), h(10))).unwrap();
    for (t, a) in [
        (31, Action::Confirm),
        (32, Action::Notify),
        (33, Action::Transfer { facility: "F1".into(), room: "1".into() }),
        (34, Action::Start),
    ] {
        ep.apply(&ev(h(t), a), &r).unwrap();
    }
    // Exposed again on 3 March: day 0 moves, the measure is extended.
    let later = Reason { source: "K2".into(), via: None, at: h(24 * 2 + 10), evidence: None };
    ep.apply(&ev(h(80), Action::AddReason { reason: later.clone() }), &r).unwrap();
    assert_eq!((ep.state, ep.deadline(&r)), (S::Extended, Some(h(24 * 13))));
    ep.apply(&ev(h(81), Action::AddReason { reason: later }), &r).unwrap();
    assert_eq!(ep.reasons.len(), 2, "the same reason is not added twice");
    let effects = ep
        .apply(&ev(h(90), Action::Test { taken_at: h(89), result: TestResult::Positive, lab_test: None }), &r)
        .unwrap();
    assert_eq!(effects, [Effect::SuspectedCase { person: "P1".into(), sampled_at: h(89) }]);
    assert_eq!((ep.state, ep.deadline(&r)), (S::ConvertedToCase, None));
}

#[test]
fn secondary_contacts_follow_their_close_contact() {
    let w = World::new("cn-2022-9th");
    let r = w.rules();
    let plan = w.profile.secondary_contact.measure.clone().unwrap();
    let open = |person: &str, via: &str| {
        ev(
            h(30),
            Action::Open {
                person: person.into(),
                category: Category::Secondary,
                plan: plan.clone(),
                reason: Reason { source: "K1".into(), via: Some(via.into()), at: h(10), evidence: None },
                owner: "U1".into(),
            },
        )
    };
    let linked = |at: i64, result| Action::LinkedTest { contact: "C1".into(), taken_at: h(at), result, lab_test: None };
    let mut ep = Episode::open(&open("S1", "C1")).unwrap();
    for (t, a) in [(31, Action::Confirm), (32, Action::Notify), (33, Action::Start)] {
        ep.apply(&ev(h(t), a), &r).unwrap();
    }
    for day in [1, 4, 7] {
        ep.apply(&ev(h(24 * day + 9), negative(h(24 * day + 8))), &r).unwrap();
    }
    // Day 7 is over, the tests are negative, but the close contact has one test so far.
    let refused = ep.apply(&ev(h(24 * 8 + 1), Action::Release), &r);
    assert!(matches!(&refused, Err(Refusal::NotReleasable(why)) if why.contains("`C1`")), "{refused:?}");
    ep.apply(&ev(h(24 * 8 + 2), linked(40, TestResult::Negative)), &r).unwrap();
    ep.apply(&ev(h(24 * 8 + 3), linked(60, TestResult::Negative)), &r).unwrap();
    ep.apply(&ev(h(24 * 8 + 4), Action::Release), &r).unwrap();
    assert_eq!(ep.state, S::Released);

    // Another secondary contact whose close contact is positive in their second test: a close
    // contact now, under the close-contact measure, to be notified and transferred again.
    let mut reg = Registry::default();
    reg.open_or_add("E2", &open("S2", "C1"), &r).unwrap();
    for (t, a) in [(31, Action::Confirm), (32, Action::Notify), (33, Action::Start)] {
        reg.apply("E2", &ev(h(t), a), &r).unwrap();
    }
    reg.apply("E2", &ev(h(50), linked(40, TestResult::Negative)), &r).unwrap();
    let effects = reg.apply("E2", &ev(h(70), linked(60, TestResult::Positive)), &r).unwrap();
    assert_eq!(effects, [Effect::Promoted]);
    let ep = &reg.episodes["E2"];
    assert_eq!((ep.category, ep.state, ep.plan.total_days()), (Category::Close, S::Confirmed, 10));
    assert_eq!(reg.open_episode("S2", Category::Close).map(String::as_str), Some("E2"));
    assert_eq!(reg.open_episode("S2", Category::Secondary), None);
    // Not hanging on that contact: refused.
    let other =
        Action::LinkedTest { contact: "C9".into(), taken_at: h(80), result: TestResult::Positive, lab_test: None };
    assert!(reg.apply("E2", &ev(h(80), other), &r).is_err());
}

#[test]
fn traced_again_adds_a_reason_and_an_excluded_case_closes_what_hangs_on_it() {
    let w = World::new("cn-2022-9th");
    let r = w.rules();
    let mut reg = Registry::default();
    let (first, _) = reg.open_or_add("E1", &w.open_close(h(30), h(10)), &r).unwrap();
    let mut again = w.open_close(h(40), h(20));
    if let Action::Open { reason, .. } = &mut again.action {
        reason.source = "K2".into();
    }
    let (id, applied) = reg.open_or_add("E9", &again, &r).unwrap();
    assert_eq!(id, first, "no duplicate episode");
    assert!(matches!(applied.action, Action::AddReason { .. }));
    assert_eq!(reg.episodes.len(), 1);
    assert_eq!(reg.episodes["E1"].reasons.len(), 2);
    reg.apply("E1", &ev(h(41), Action::SourceExcluded { source: "K1".into() }), &r).unwrap();
    assert!(reg.episodes["E1"].is_open(), "K2 still holds it");
    reg.apply("E1", &ev(h(42), Action::SourceExcluded { source: "K2".into() }), &r).unwrap();
    let ep = &reg.episodes["E1"];
    assert_eq!((ep.state, ep.closed), (S::Closed, Some(CloseReason::Excluded)));
    assert_eq!(reg.open_episode("P1", Category::Close), None);
    // Now a new episode can be opened for the person.
    assert_eq!(reg.open_or_add("E3", &w.open_close(h(50), h(45)), &r).unwrap().0, "E3");
}

#[test]
fn hand_over_completes_on_acknowledgement_and_overdue_tasks_escalate() {
    let w = World::new("cn-2022-9th");
    let r = w.rules();
    let mut ep = Episode::open(&w.open_close(h(30), h(10))).unwrap();
    // Nobody confirms: overdue after 24 h, one level up every 12 h after that.
    let tasks = ep.tasks(&r, h(30 + 24 + 25));
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    assert!(t.overdue);
    assert_eq!((t.kind, t.escalation, t.responsibility.as_str()), ("advance", 2, "departmental"));
    let chain: Vec<String> = ["community", "subdistrict", "district", "command"].map(String::from).to_vec();
    assert_eq!(escalated_owner(&chain, t.escalation).map(String::as_str), Some("district"));
    assert_eq!(escalated_owner(&chain, 40).map(String::as_str), Some("command"));
    assert!(!ep.tasks(&r, h(31)).first().unwrap().overdue);

    ep.apply(&ev(h(31), Action::Confirm), &r).unwrap();
    ep.apply(&ev(h(32), Action::HandOver { to: "D9".into() }), &r).unwrap();
    assert_eq!((ep.state, ep.deadline(&r)), (S::HandedOver, Some(h(32 + 24))));
    assert!(ep.apply(&ev(h(33), Action::Close { reason: CloseReason::HandedOver }), &r).is_err());
    ep.apply(&ev(h(40), Action::Acknowledge), &r).unwrap();
    assert_eq!((ep.state, ep.closed), (S::Closed, Some(CloseReason::HandedOver)));
}

#[test]
fn early_release_and_test_series() {
    // CDC: 10 days, or 7 with a negative test on day 5 or later.
    let w = World::new("cdc-2020-12");
    let r = w.rules();
    let start = |ep: &mut Episode| {
        for (t, a) in [(31, Action::Confirm), (32, Action::Notify), (33, Action::Start)] {
            ep.apply(&ev(h(t), a), &r).unwrap();
        }
    };
    let mut ep = Episode::open(&w.open_close(h(30), h(10))).unwrap();
    start(&mut ep);
    assert_eq!(ep.deadline(&r), Some(h(24 * 11)));
    ep.apply(&ev(h(24 * 5 + 10), negative(h(24 * 5 + 9))), &r).unwrap();
    assert_eq!(ep.deadline(&r), Some(h(24 * 8)), "a negative test on day 5: released after day 7");
    ep.apply(&ev(h(24 * 8), Action::Release), &r).unwrap();

    // Low-risk arrivals under cn-2022-9th: 2 tests within 3 days, at least 24 h apart.
    let w = World::new("cn-2022-9th");
    let r = w.rules();
    let plan = w.profile.arrivals.low.clone().unwrap();
    let open = ev(
        h(1),
        Action::Open {
            person: "A1".into(),
            category: Category::Arrival,
            plan,
            reason: Reason { source: "arrival:A1".into(), via: None, at: h(1), evidence: None },
            owner: "U1".into(),
        },
    );
    let mut ep = Episode::open(&open).unwrap();
    for (t, a) in [(2, Action::Confirm), (3, Action::Notify), (4, Action::Start)] {
        ep.apply(&ev(h(t), a), &r).unwrap();
    }
    ep.apply(&ev(h(30), negative(h(30))), &r).unwrap();
    ep.apply(&ev(h(40), negative(h(40))), &r).unwrap();
    let refused = ep.apply(&ev(h(24 * 4), Action::Release), &r);
    assert!(matches!(&refused, Err(Refusal::NotReleasable(why)) if why.contains("1 of 2")), "{refused:?}");
    ep.apply(&ev(h(24 * 4), negative(h(24 * 3 + 10))), &r).unwrap();
    ep.apply(&ev(h(24 * 4), Action::Release), &r).unwrap();
    assert_eq!(ep.state, S::Released);
}

// ---------------------------------------------------------------- random event sequences

fn action(step: u8, at: i64) -> Action {
    match step % 16 {
        0 => Action::Confirm,
        1 => Action::Reject,
        2 => Action::Notify,
        3 => Action::Unreachable,
        4 => Action::Refuse,
        5 => Action::Transfer { facility: "F1".into(), room: format!("{}", step / 16) },
        6 | 7 => Action::Start,
        8 | 9 => Action::Test {
            taken_at: h(at - 1),
            result: if step.is_multiple_of(37) { TestResult::Positive } else { TestResult::Negative },
            lab_test: None,
        },
        10 => Action::AddReason {
            reason: Reason { source: format!("K{}", step % 3), via: None, at: h(at - 2), evidence: None },
        },
        11 => Action::SourceExcluded { source: format!("K{}", step % 3) },
        12 | 13 => Action::Release,
        14 => Action::HandOver { to: "D9".into() },
        _ => match step % 5 {
            0 => Action::Acknowledge,
            1 => Action::Lost,
            _ => Action::LinkedTest {
                contact: "C1".into(),
                taken_at: h(at - 1),
                result: TestResult::Negative,
                lab_test: None,
            },
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_2030),
        ..ProptestConfig::default()
    })]

    /// Whatever happens, in whatever order, with restarts: every open episode is in one state
    /// with a deadline; nobody has two open episodes of a category; nobody is released without
    /// the tests; a refused event changes nothing; replaying the accepted events (a restart)
    /// gives the same episodes.
    #[test]
    fn random_events_keep_the_loop_closed(steps in steps(), profile in profiles()) {
        drive(steps, profile)?;
    }
}

type Steps = Vec<(u8, u8, i64)>;

/// Persons 0–2 are contacts (whose positives open their isolation), 3–5 cases.
fn steps() -> impl Strategy<Value = Steps> {
    prop::collection::vec((0u8..6, 0u8..255, 1i64..20), 1..120)
}

/// An event for a case's isolation: the contacts' events, with discharges for some releases.
fn case_action(step: u8, at: i64) -> Action {
    match step % 16 {
        12 => Action::Discharge { criteria: "afebrile, symptoms improved".into() },
        _ => action(step, at),
    }
}

fn open_case(person: &str, source: String, at: Timestamp, sampled: Timestamp) -> Event {
    ev(
        at,
        Action::Open {
            person: person.into(),
            category: Category::Case,
            plan: isolation_plan(),
            reason: Reason { source, via: None, at: sampled, evidence: None },
            owner: "U1".into(),
        },
    )
}

fn profiles() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["cn-2022-9th", "cn-2022-20-measures", "cdc-2020-12"])
}

/// Runs the steps (person, what, hours later), checking the invariants; the states reached.
fn drive(steps: Steps, profile: &str) -> Result<std::collections::BTreeSet<&'static str>, TestCaseError> {
    let mut reached = std::collections::BTreeSet::new();
    let w = World::new(profile);
    let r = w.rules();
    let mut reg = Registry::default();
    let mut accepted: std::collections::BTreeMap<String, Vec<Event>> = Default::default();
    let mut now = 30;
    for (i, (person, step, gap)) in steps.into_iter().enumerate() {
        // The overdue episodes kept by the registry are those whose tasks say so, whenever asked.
        let probe = h(now + 24 * i64::from(step % 7));
        let want: Vec<String> = reg
            .episodes
            .iter()
            .filter(|(_, e)| e.is_open() && e.tasks(&r, probe).iter().any(|t| t.overdue))
            .map(|(id, _)| id.clone())
            .collect();
        let mut got = reg.overdue(&r, probe);
        got.sort();
        prop_assert_eq!(got, want);
        now += gap;
        let case = person >= 3;
        let person = format!("P{person}");
        let open = if case {
            reg.open_episode(&person, Category::Case).cloned()
        } else {
            reg.open_episode(&person, Category::Close).or(reg.open_episode(&person, Category::Secondary)).cloned()
        };
        match open {
            None if case => {
                let event = open_case(&person, format!("K{}", step % 3), h(now), h(now - 5));
                let (id, applied) = reg.open_or_add(&format!("E{i}"), &event, &r).unwrap();
                accepted.entry(id).or_default().push(applied);
            }
            None => {
                let secondary = step.is_multiple_of(4);
                let plan = if secondary {
                    w.profile.secondary_contact.measure.clone().unwrap_or(w.profile.close_contact_measure.clone())
                } else {
                    w.profile.close_contact_measure.clone()
                };
                let event = ev(
                    h(now),
                    Action::Open {
                        person: person.clone(),
                        category: if secondary { Category::Secondary } else { Category::Close },
                        plan,
                        reason: Reason {
                            source: format!("K{}", step % 3),
                            via: secondary.then(|| "C1".into()),
                            at: h(now - 5),
                            evidence: None,
                        },
                        owner: "U1".into(),
                    },
                );
                let (id, applied) = reg.open_or_add(&format!("E{i}"), &event, &r).unwrap();
                accepted.entry(id).or_default().push(applied);
            }
            Some(id) => {
                let event = ev(h(now), if case { case_action(step, now) } else { action(step, now) });
                let before = reg.episodes[&id].clone();
                match reg.apply(&id, &event, &r) {
                    Ok(effects) => {
                        accepted.get_mut(&id).unwrap().push(event.clone());
                        let ep = &reg.episodes[&id];
                        reached.insert(ep.state.as_str());
                        if ep.state == S::Released && ep.category == Category::Case {
                            prop_assert!(before.dischargeable(&r, event.at).is_ok());
                            let discharged = matches!(event.action, Action::Discharge { .. });
                            prop_assert!(discharged, "left isolation by {:?}", event.action);
                            reached.insert("discharged");
                        } else if ep.state == S::Released {
                            prop_assert!(before.releasable(&r, event.at).is_ok());
                            prop_assert!(matches!(event.action, Action::Release));
                        }
                        if ep.category == Category::Case {
                            prop_assert!(effects.is_empty(), "a case's positive converts nothing");
                        }
                        // A positive converts a contact: their isolation opens (or takes the reason).
                        for effect in effects {
                            if let Effect::SuspectedCase { person, sampled_at } = effect {
                                let open = open_case(&person, format!("{POSITIVE_SOURCE}{id}"), h(now), sampled_at);
                                let (iso, applied) = reg.open_or_add(&format!("I{i}"), &open, &r).unwrap();
                                accepted.entry(iso).or_default().push(applied);
                            }
                        }
                    }
                    Err(_) => prop_assert_eq!(&reg.episodes[&id], &before),
                }
            }
        }
        // Invariants after every event.
        let mut open_keys = std::collections::BTreeSet::new();
        let mut open_kinds = std::collections::BTreeSet::new();
        for ep in reg.episodes.values().filter(|e| e.is_open()) {
            prop_assert!(ep.deadline(&r).is_some(), "{:?} has no deadline", ep.state);
            prop_assert!(!ep.tasks(&r, h(now)).is_empty());
            prop_assert!(open_keys.insert((ep.person.clone(), ep.category)), "two open episodes");
            prop_assert!(open_kinds.insert((ep.person.clone(), ep.kind())), "two open episodes of one kind");
            prop_assert!(!ep.owner.is_empty(), "an owner");
            prop_assert_eq!(ep.category == Category::Case, ep.kind() == chainbreak_core::model::MeasureKind::Isolation);
        }
    }
    // A restart: the episodes are what their accepted events make.
    for (id, events) in &accepted {
        let replayed = Episode::replay(events, &r).unwrap();
        prop_assert_eq!(&replayed, &reg.episodes[id]);
    }
    Ok(reached)
}

/// The random sequences are not vacuous: they reach every state.
#[test]
fn random_events_reach_every_state() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut reached = std::collections::BTreeSet::new();
    for _ in 0..400 {
        let (s, p) =
            (steps().new_tree(&mut runner).unwrap().current(), profiles().new_tree(&mut runner).unwrap().current());
        reached.extend(drive(s, p).unwrap());
    }
    let all: Vec<&str> = S::ALL.iter().map(|s| s.as_str()).filter(|s| *s != "proposed").collect();
    let missing: Vec<&&str> = all.iter().filter(|s| !reached.contains(**s)).collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
    assert!(reached.contains("discharged"), "no case was ever discharged");
}

#[test]
fn arrivals_get_the_measure_of_their_origin() {
    use chainbreak_closedloop::arrival_proposal;
    use chainbreak_core::model::{Arrival, OriginRisk};
    let w = World::new("cn-2022-9th");
    let arrival = |risk| Arrival {
        person_id: "A1".into(),
        origin: "XX".into(),
        origin_risk: risk,
        left_origin_at: h(-30),
        arrived_at: h(2),
        trip_id: None,
        destination: None,
    };
    let Some(Action::Open { plan, reason, category, .. }) =
        arrival_proposal(&w.profile, &arrival(OriginRisk::High), "U1")
    else {
        panic!("a high-risk origin has a measure")
    };
    assert_eq!((category, plan.total_days(), reason.at), (Category::Arrival, 7, h(-30)), "clock from leaving");
    let Some(Action::Open { plan, .. }) = arrival_proposal(&w.profile, &arrival(OriginRisk::Abroad), "U1") else {
        panic!("abroad has a measure")
    };
    assert_eq!(plan.total_days(), 10, "7 central + 3 home");
    assert!(arrival_proposal(&World::new("cdc-2020-12").profile, &arrival(OriginRisk::High), "U1").is_none());
}

// ---------------------------------------------------------------- a fault run

/// A small deterministic generator (splitmix64) for the fault run.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi` (hours, say).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Episodes from a synthetic outbreak's contacts and arrivals, with random delays, missed and
/// made-up tests, unreachable and refusing people, hand-overs, positives, promotions and
/// restarts (replays compared with the live state): every episode ends with an outcome, and
/// none was ever open without a deadline. `CHAINBREAK_FAULT_RUN_EPISODES` sets how many
/// (the benchmark runs 100,000).
#[test]
fn a_fault_run_leaves_nobody_out_of_the_loop() {
    let n: usize = std::env::var("CHAINBREAK_FAULT_RUN_EPISODES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let w = World::new("cn-2022-9th");
    let r = w.rules();
    let mut rng = Mix(2026);
    let mut outcomes: std::collections::BTreeMap<&str, usize> = Default::default();
    let (mut events, mut replays) = (0usize, 0usize);
    for i in 0..n {
        let opened = rng.range(0, 24 * 30);
        let roll = rng.range(0, 10);
        let (category, plan, via) = match roll {
            0..=6 => (Category::Close, w.profile.close_contact_measure.clone(), None),
            7 | 8 => (Category::Secondary, w.profile.secondary_contact.measure.clone().unwrap(), Some(format!("C{i}"))),
            _ => (Category::Arrival, w.profile.arrivals.high.clone().unwrap(), None),
        };
        let open = ev(
            h(opened),
            Action::Open {
                person: format!("P{i}"),
                category,
                plan,
                reason: Reason {
                    source: format!("K{}", i % 97),
                    via: via.clone(),
                    at: h(opened - rng.range(1, 48)),
                    evidence: None,
                },
                owner: "U1".into(),
            },
        );
        let mut log = vec![open.clone()];
        let mut ep = Episode::open(&open).unwrap();
        let mut t = opened;
        let mut refusals = 0;
        while ep.is_open() {
            assert!(ep.deadline(&r).is_some(), "an open episode without a deadline: {ep:?}");
            let action = match ep.state {
                S::Proposed => {
                    t += rng.range(1, 30);
                    if rng.chance(0.03) { Action::Reject } else { Action::Confirm }
                }
                S::Confirmed => {
                    t += rng.range(1, 6);
                    match rng.range(0, 100) {
                        0..=9 => Action::Unreachable,
                        10..=13 => Action::HandOver { to: "D9".into() },
                        _ => Action::Notify,
                    }
                }
                S::Unreachable => {
                    t += rng.range(1, 8);
                    if rng.chance(0.05) { Action::Lost } else { Action::Notify }
                }
                S::HandedOver => {
                    t += rng.range(1, 30);
                    Action::Acknowledge
                }
                S::Refused => {
                    t += rng.range(1, 4);
                    Action::Notify
                }
                S::Notified => {
                    t += rng.range(1, 10);
                    if rng.chance(0.03) {
                        Action::Refuse
                    } else if ep.kind() == chainbreak_core::model::MeasureKind::CentralQuarantine {
                        Action::Transfer { facility: "F1".into(), room: format!("{i}") }
                    } else {
                        Action::Start
                    }
                }
                S::Transferred => {
                    t += rng.range(0, 3);
                    Action::Start
                }
                _ => {
                    // In the measure: the next untested test day (taken that day, or missed and
                    // made up a day later), the close contact's tests, then release when due.
                    let zero = ep.day_zero(&w.calendar);
                    let pending =
                        ep.scheduled_tests(&w.calendar, &ep.test_days()).into_iter().find(|(_, t)| t.is_none());
                    let linked = ep.linked_tests.values().map(Vec::len).sum::<usize>();
                    if let Some((day, _)) = pending {
                        let late = if rng.chance(0.15) { 1 } else { 0 };
                        let date = zero.checked_add(jiff::Span::new().days(i64::from(day) + late)).unwrap();
                        let at = (w.calendar.start_of(date).as_second() - h(0).as_second()) / 3600 + rng.range(8, 20);
                        t = t.max(at) + 1;
                        let result = if rng.chance(0.01) { TestResult::Positive } else { TestResult::Negative };
                        Action::Test { taken_at: h(t - 1), result, lab_test: None }
                    } else if ep.category == Category::Secondary && linked < 2 {
                        t += rng.range(1, 30);
                        let result = if rng.chance(0.05) { TestResult::Positive } else { TestResult::Negative };
                        Action::LinkedTest { contact: via.clone().unwrap(), taken_at: h(t - 1), result, lab_test: None }
                    } else {
                        let due = (ep.deadline(&r).unwrap().as_second() - h(0).as_second()) / 3600;
                        t = t.max(due) + rng.range(0, 20);
                        Action::Release
                    }
                }
            };
            let event = ev(h(t), action);
            match ep.apply(&event, &r) {
                Ok(_) => log.push(event),
                Err(why) => {
                    refusals += 1;
                    assert!(refusals < 20, "stuck in {:?}: {why}", ep.state);
                    t += 24;
                }
            }
            events += 1;
            if rng.chance(0.05) {
                // A restart: the state is what the events make.
                replays += 1;
                assert_eq!(Episode::replay(&log, &r).unwrap(), ep);
            }
        }
        assert!(ep.tasks(&r, h(t + 1000)).is_empty(), "a closed episode has no tasks");
        *outcomes.entry(ep.state.as_str()).or_default() += 1;
    }
    assert_eq!(outcomes.values().sum::<usize>(), n, "every episode ended");
    assert!(outcomes["released"] * 10 > n * 8, "{outcomes:?}");
    for outcome in ["converted_to_case", "closed", "lost"] {
        assert!(outcomes.get(outcome).copied().unwrap_or(0) > 0, "{outcome} never happened: {outcomes:?}");
    }
    eprintln!("fault run: {n} episodes, {events} events, {replays} replays: {outcomes:?}");
}

#[test]
fn a_unit_of_work_rolls_back_whole() {
    let w = World::new("cn-2022-9th");
    let r = w.rules();
    let mut reg = Registry::default();
    reg.open_or_add("E1", &w.open_close(h(30), h(10)), &r).unwrap();
    let before = reg.episodes.clone();
    reg.begin();
    reg.apply("E1", &ev(h(31), Action::Confirm), &r).unwrap();
    let mut other = w.open_close(h(32), h(12));
    if let Action::Open { person, .. } = &mut other.action {
        *person = "P2".into();
    }
    reg.open_or_add("E2", &other, &r).unwrap();
    reg.rollback();
    assert_eq!(reg.episodes, before);
    assert_eq!(reg.open_episode("P2", Category::Close), None);
    assert_eq!(reg.open_episode("P1", Category::Close).map(String::as_str), Some("E1"));
    reg.begin();
    reg.apply("E1", &ev(h(31), Action::Confirm), &r).unwrap();
    reg.commit();
    reg.rollback();
    assert_eq!(reg.episodes["E1"].state, S::Confirmed, "nothing to roll back after a commit");
}

// ---------------------------------------------------------------- a case's own isolation

impl World {
    fn open_case(&self, at: Timestamp, sampled: Timestamp) -> Event {
        open_case("P1", "K1".into(), at, sampled)
    }
}

fn discharge() -> Action {
    Action::Discharge { criteria: "temperature normal for 3 days, symptoms improved".into() }
}

#[test]
fn a_case_is_isolated_until_a_clinician_discharges_them() {
    let w = World::new("cn-2022-9th");
    let r = w.rules();
    let mut ep = Episode::open(&w.open_case(h(1), h(-2))).unwrap();
    assert_eq!(
        (ep.category, ep.kind(), ep.state),
        (Category::Case, chainbreak_core::model::MeasureKind::Isolation, S::Proposed)
    );
    // The response clock: reported within 2 h of the positive, transferred within 2 h of the report.
    assert_eq!(ep.deadline(&r), Some(h(3)));
    ep.apply(&ev(h(2), Action::Confirm), &r).unwrap();
    assert_eq!(ep.deadline(&r), Some(h(4)));
    ep.apply(&ev(h(2), Action::Notify), &r).unwrap();
    assert_eq!(ep.deadline(&r), Some(h(4)), "the clock keeps running from the report");
    // The profile wants cases in a facility: no isolation at home.
    assert!(matches!(ep.apply(&ev(h(3), Action::Start), &r), Err(Refusal::NotInState { .. })));
    ep.apply(&ev(h(3), Action::Transfer { facility: "H1".into(), room: "1".into() }), &r).unwrap();
    assert_eq!(ep.deadline(&r), Some(h(5)));
    ep.apply(&ev(h(4), Action::Start), &r).unwrap();
    // In isolation: a review (a test) every 24 h; no fixed end.
    assert_eq!(ep.deadline(&r), Some(h(28)));
    let tasks = ep.tasks(&r, h(30));
    assert_eq!((tasks.len(), tasks[0].kind, tasks[0].overdue), (1, "review", true));
    assert!(matches!(ep.apply(&ev(h(30), Action::Release), &r), Err(Refusal::NotInState { .. })), "no release by days");
    // A positive in isolation is follow-up, not a conversion.
    let effects =
        ep.apply(&ev(h(30), Action::Test { taken_at: h(29), result: TestResult::Positive, lab_test: None }), &r);
    assert_eq!(effects, Ok(vec![]));
    assert_eq!((ep.state, ep.deadline(&r)), (S::InMeasure, Some(h(29 + 24))));
    assert!(matches!(ep.apply(&ev(h(40), discharge()), &r), Err(Refusal::NotDischargeable(_))));
    ep.apply(&ev(h(60), negative(h(50))), &r).unwrap();
    ep.apply(&ev(h(70), negative(h(60))), &r).unwrap();
    let refused = ep.apply(&ev(h(70), discharge()), &r).unwrap_err();
    assert!(refused.to_string().contains("24 h apart"), "{refused}");
    ep.apply(&ev(h(90), negative(h(84))), &r).unwrap();
    let before = ep.clone();
    let empty = ep.apply(&ev(h(90), Action::Discharge { criteria: " ".into() }), &r);
    assert!(matches!(empty, Err(Refusal::Invalid(_))));
    assert_eq!(ep, before, "a refusal changes nothing");
    ep.apply(&ev(h(90), discharge()), &r).unwrap();
    assert_eq!((ep.state, ep.deadline(&r)), (S::Released, None));
    // Contacts are released, not discharged.
    let mut contact = Episode::open(&w.open_close(h(0), h(0))).unwrap();
    contact.apply(&ev(h(1), Action::Confirm), &r).unwrap();
    contact.apply(&ev(h(1), Action::Notify), &r).unwrap();
    contact.apply(&ev(h(2), Action::Transfer { facility: "F1".into(), room: "1".into() }), &r).unwrap();
    contact.apply(&ev(h(3), Action::Start), &r).unwrap();
    assert!(matches!(contact.apply(&ev(h(300), discharge()), &r), Err(Refusal::NotInState { .. })));
}

#[test]
fn cdc_cases_isolate_at_home_for_the_least_days_and_discharge_without_tests() {
    let w = World::new("cdc-2020-12");
    let r = w.rules();
    let mut ep = Episode::open(&w.open_case(h(1), h(0))).unwrap();
    assert_eq!(ep.deadline(&r), Some(h(25)), "no clock of its own: the general 24 h");
    for (t, a) in [(2, Action::Confirm), (3, Action::Notify), (4, Action::Start)] {
        ep.apply(&ev(h(t), a), &r).unwrap();
    }
    // A later record of the same case (a positive two days on) does not move day 0: the
    // isolation counts from the onset or first positive.
    let later = Reason { source: "K7".into(), via: None, at: h(48), evidence: None };
    ep.apply(&ev(h(5), Action::AddReason { reason: later }), &r).unwrap();
    // Day 0 is 1 March (local); at least 10 days: from the start of 12 March.
    let earliest = h(24 * 11);
    assert_eq!((ep.state, ep.earliest_discharge(&r), ep.deadline(&r)), (S::InMeasure, earliest, Some(earliest)));
    let refused = ep.apply(&ev(h(24 * 5), discharge()), &r).unwrap_err();
    assert!(refused.to_string().contains("day 10"), "{refused}");
    assert!(ep.tasks(&r, earliest + jiff::SignedDuration::from_hours(1))[0].overdue);
    ep.apply(&ev(earliest, discharge()), &r).unwrap();
    assert_eq!(ep.state, S::Released);
}

#[test]
fn an_excluded_case_closes_its_isolation_unless_another_case_stands() {
    let w = World::new("cn-2022-9th");
    let r = w.rules();
    let mut reg = Registry::default();
    // Converted by a positive test, then reported as case K1.
    let positive = open_case("P1", format!("{POSITIVE_SOURCE}E0"), h(1), h(0));
    reg.open_or_add("I1", &positive, &r).unwrap();
    let (id, added) = reg.open_or_add("I2", &w.open_case(h(2), h(0)), &r).unwrap();
    assert_eq!((id.as_str(), matches!(added.action, Action::AddReason { .. })), ("I1", true), "never a duplicate");
    assert_eq!(reg.episodes.len(), 1);
    reg.apply("I1", &ev(h(3), Action::SourceExcluded { source: "K1".into() }), &r).unwrap();
    let ep = &reg.episodes["I1"];
    assert_eq!((ep.state, ep.closed), (S::Closed, Some(CloseReason::Excluded)), "the positive fell with the case");
    assert_eq!(reg.open_episode("P1", Category::Case), None);
    // Two case records (duplicates): excluding one leaves the other.
    reg.open_or_add("I3", &open_case("P2", "K2".into(), h(4), h(0)), &r).unwrap();
    reg.open_or_add("I4", &open_case("P2", "K3".into(), h(4), h(0)), &r).unwrap();
    reg.apply("I3", &ev(h(5), Action::SourceExcluded { source: "K2".into() }), &r).unwrap();
    assert!(reg.episodes["I3"].is_open());
    // Closed for other reasons: deceased.
    reg.apply("I3", &ev(h(6), Action::Close { reason: CloseReason::Deceased }), &r).unwrap();
    assert_eq!(reg.episodes["I3"].closed, Some(CloseReason::Deceased));
    // A case's episode is an isolation.
    let wrong = ev(
        h(7),
        Action::Open {
            person: "P3".into(),
            category: Category::Case,
            plan: w.profile.close_contact_measure.clone(),
            reason: Reason { source: "K4".into(), via: None, at: h(0), evidence: None },
            owner: "U1".into(),
        },
    );
    assert!(matches!(Episode::open(&wrong), Err(Refusal::Invalid(_))));
}

#[test]
fn discharge_events_round_trip_as_json() {
    let e = ev(h(1), discharge());
    let text = serde_json::to_string(&e).unwrap();
    assert!(text.contains("\"action\":\"discharge\"") && text.contains("\"criteria\""), "{text}");
    assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
}

/// The fault run for cases' isolations: random delays, unreachable cases, hand-overs, missed
/// daily tests, positives before the negatives, deaths and restarts, under each profile. Every
/// isolation ends (discharged, closed or lost), none is ever open without a deadline, none is
/// discharged before the profile's rule allows, and a restart rebuilds each one.
#[test]
fn a_fault_run_of_isolations_ends_every_one() {
    let n: usize = std::env::var("CHAINBREAK_FAULT_RUN_EPISODES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    for profile in ["cn-2022-9th", "cdc-2020-12"] {
        let w = World::new(profile);
        let r = w.rules();
        let mut rng = Mix(2027);
        let mut outcomes: std::collections::BTreeMap<&str, usize> = Default::default();
        for i in 0..n / 2 {
            let opened = rng.range(0, 24 * 30);
            // Proposed (as by a positive test), confirmed by the report.
            let open = open_case(&format!("P{i}"), format!("K{i}"), h(opened), h(opened - rng.range(1, 48)));
            let mut log = vec![open.clone()];
            let mut ep = Episode::open(&open).unwrap();
            let mut t = opened;
            // Positive for this many days of tests, then negative.
            let shedding = rng.range(0, 12);
            let mut refusals = 0;
            while ep.is_open() {
                assert!(ep.deadline(&r).is_some(), "an open isolation without a deadline: {ep:?}");
                let action = match ep.state {
                    S::Proposed => {
                        t += rng.range(0, 4);
                        Action::Confirm
                    }
                    S::Confirmed | S::Unreachable | S::Refused => {
                        t += rng.range(0, 3);
                        match rng.range(0, 100) {
                            0..=4 => Action::Unreachable,
                            5 => Action::Lost,
                            6..=7 => Action::HandOver { to: "D9".into() },
                            _ => Action::Notify,
                        }
                    }
                    S::HandedOver => {
                        t += rng.range(1, 30);
                        Action::Acknowledge
                    }
                    S::Notified => {
                        t += rng.range(0, 3);
                        if w.profile.closed_loop.isolation.transfer_required || rng.chance(0.3) {
                            Action::Transfer { facility: "H1".into(), room: format!("{i}") }
                        } else {
                            Action::Start
                        }
                    }
                    S::Transferred => {
                        t += rng.range(0, 3);
                        Action::Start
                    }
                    _ if rng.chance(0.002) => Action::Close { reason: CloseReason::Deceased },
                    _ if ep.dischargeable(&r, h(t)).is_ok() => Action::Discharge { criteria: "criteria met".into() },
                    _ => {
                        // A test a day, one in ten missed; positive while shedding.
                        t += if rng.chance(0.1) { 48 } else { 24 };
                        let day = (t - opened) / 24;
                        let result = if day < shedding { TestResult::Positive } else { TestResult::Negative };
                        Action::Test { taken_at: h(t - rng.range(1, 6)), result, lab_test: None }
                    }
                };
                let event = ev(h(t), action);
                let before = ep.clone();
                match ep.apply(&event, &r) {
                    Ok(effects) => {
                        assert!(effects.is_empty(), "an isolation has no effects");
                        if ep.state == S::Released {
                            assert!(before.dischargeable(&r, event.at).is_ok());
                        }
                        log.push(event);
                    }
                    Err(why) => {
                        refusals += 1;
                        assert!(refusals < 40, "stuck in {:?}: {why}", ep.state);
                        t += 24;
                    }
                }
                if rng.chance(0.05) {
                    assert_eq!(Episode::replay(&log, &r).unwrap(), ep);
                }
            }
            assert!(ep.tasks(&r, h(t + 1000)).is_empty());
            *outcomes.entry(ep.state.as_str()).or_default() += 1;
        }
        assert_eq!(outcomes.values().sum::<usize>(), n / 2, "every isolation ended");
        assert!(outcomes["released"] * 10 > n / 2 * 8, "{profile}: {outcomes:?}");
        eprintln!("fault run of isolations under {profile}: {outcomes:?}");
    }
}

#[test]
fn a_zone_resident_stays_under_the_measure_until_every_zone_of_theirs_ends() {
    use chainbreak_core::model::MeasureKind;
    let w = World::new("cn-2022-9th");
    let r = w.rules();
    let reason = |zone: &str| Reason { source: zone_source(zone), via: None, at: h(10), evidence: None };
    let open = ev(
        h(10),
        Action::Open {
            person: "P1".into(),
            category: Category::ZoneResident,
            plan: zone_resident_plan(MeasureKind::HomeQuarantine),
            reason: reason("area:K1:1"),
            owner: "U-community".into(),
        },
    );
    let mut ep = Episode::open(&open).unwrap();
    ep.apply(&ev(h(11), Action::Confirm), &r).unwrap();
    ep.apply(&ev(h(12), Action::Notify), &r).unwrap();
    ep.apply(&ev(h(13), Action::Start), &r).unwrap();
    assert_eq!((ep.state, ep.deadline(&r)), (S::InMeasure, None), "the zone's review ends it, not a day count");
    assert!(ep.tasks(&r, h(24 * 30)).is_empty());
    // Not released by hand; a second zone adds a reason without extending anything.
    assert!(ep.apply(&ev(h(24 * 30), Action::Release), &r).is_err());
    ep.apply(&ev(h(14), Action::AddReason { reason: reason("area:M1:1") }), &r).unwrap();
    assert_eq!(ep.state, S::InMeasure);
    assert!(ep.apply(&ev(h(15), Action::ZoneEnded { zone: "area:K9:1".into() }), &r).is_err(), "not its zone");
    ep.apply(&ev(h(24 * 8), Action::ZoneEnded { zone: "area:K1:1".into() }), &r).unwrap();
    assert_eq!(ep.state, S::InMeasure, "still under the widened zone");
    ep.apply(&ev(h(24 * 9), Action::ZoneEnded { zone: "area:M1:1".into() }), &r).unwrap();
    assert_eq!(ep.state, S::Released);
}
