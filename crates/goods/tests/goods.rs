//! The goods engine: hop chains with cycles and splits, a batch reaching one place twice,
//! repacking, a late hop, the suspension ladder, and random goods against a brute-force
//! reading of the same records.

use std::collections::BTreeSet;

use chainbreak_core::model::{GoodsBatch, GoodsHop, HopKind};
use chainbreak_core::profile::Profile;
use chainbreak_goods::{Goods, GoodsError, suspended, suspensions};
use jiff::civil::Date;
use proptest::prelude::*;

fn day(d: i8) -> Date {
    jiff::civil::date(2022, 3, d)
}

fn batch(id: &str, plant: Option<&str>, parent: Option<&str>) -> GoodsBatch {
    GoodsBatch {
        id: id.into(),
        product: "frozen shrimp".into(),
        origin_country: "EC".into(),
        plant: plant.map(Into::into),
        port: Some("PORT".into()),
        entry_date: Some(day(1)),
        inspection_cert: None,
        test_cert: None,
        disinfection_cert: None,
        trace_code: None,
        parent_batch_id: parent.map(Into::into),
    }
}

fn transfer(b: &str, from: Option<&str>, to: &str, d: i8) -> GoodsHop {
    GoodsHop {
        batch_id: b.into(),
        kind: HopKind::Transfer,
        from_place: from.map(Into::into),
        to_place: Some(to.into()),
        to_batch_id: None,
        date: day(d),
        quantity: None,
    }
}

fn repack(b: &str, to: &str, d: i8) -> GoodsHop {
    GoodsHop {
        batch_id: b.into(),
        kind: HopKind::Repack,
        from_place: None,
        to_place: None,
        to_batch_id: Some(to.into()),
        date: day(d),
        quantity: None,
    }
}

#[test]
fn a_positive_batch_reaches_every_holder_through_splits_combinations_and_cycles() {
    let batches = [
        batch("B1", Some("PLANT-7"), None),
        batch("B2", Some("PLANT-7"), None),
        batch("B3", Some("PLANT-9"), None),
        // Split of B1 into S1 and S2 (one by the batch's parent, one by a repack hop).
        batch("S1", None, Some("B1")),
        batch("S2", None, None),
        // Combination of S2 and B3 into M.
        batch("M", None, None),
    ];
    let hops = [
        transfer("B1", Some("PORT"), "WH1", 2),
        repack("B1", "S2", 3),
        repack("S2", "M", 4),
        repack("B3", "M", 4),
        transfer("S1", Some("WH1"), "MARKET", 4),
        transfer("S1", Some("MARKET"), "SHOP", 5),
        // The same batch at the shop twice.
        transfer("S1", Some("MARKET"), "SHOP", 6),
        transfer("M", Some("WH1"), "RESTAURANT", 6),
        // A cycle in the records: M repacked back into S2.
        repack("M", "S2", 7),
        transfer("B2", Some("PORT"), "WH2", 2),
    ];
    let g = Goods::new(&batches, &hops).unwrap();
    let d = g.downstream("B1").unwrap();
    assert_eq!(d.batches, ["B1", "M", "S1", "S2"]);
    let places: Vec<(&str, bool)> = d.places.iter().map(|p| (p.place.as_str(), p.last_holder)).collect();
    assert_eq!(places, [("MARKET", false), ("PORT", false), ("RESTAURANT", true), ("SHOP", true), ("WH1", false)]);
    let shop = d.places.iter().find(|p| p.place == "SHOP").unwrap();
    assert_eq!((shop.first, shop.last, shop.batches.clone()), (day(5), day(6), vec!["S1".to_string()]));
    assert!(!d.places.iter().any(|p| p.place == "WH2"), "B2 is another batch");
    // Upstream of M: its sources and their plants; the plants' other batches are siblings.
    let u = g.upstream("M").unwrap();
    assert_eq!(u.ancestors, ["B1", "B3", "S2"]);
    assert_eq!(u.plants, ["PLANT-7", "PLANT-9"]);
    assert_eq!(u.siblings, ["B2"]);
    assert!(g.downstream("NOPE").is_none());
    // An environment positive at WH1 on day 4: the batches brought there in the window.
    assert_eq!(g.held_at("WH1", day(1), day(4)), ["B1"]);
    assert_eq!(g.held_at("WH1", day(3), day(4)), Vec::<String>::new(), "B1 came on day 2");
    assert_eq!(g.held_at("SHOP", day(1), day(9)), ["S1"], "once, though it came twice");
    assert!(g.held_at("NOWHERE", day(1), day(9)).is_empty());
}

#[test]
fn a_late_hop_is_in_the_next_trace_and_bad_records_are_named() {
    let batches = [batch("B1", Some("P"), None)];
    let mut hops = vec![transfer("B1", Some("PORT"), "WH1", 2)];
    let before = Goods::new(&batches, &hops).unwrap().downstream("B1").unwrap();
    hops.push(transfer("B1", Some("WH1"), "SHOP", 9));
    let after = Goods::new(&batches, &hops).unwrap().downstream("B1").unwrap();
    assert_eq!(before.places.len() + 1, after.places.len());
    assert!(after.places.iter().any(|p| p.place == "SHOP" && p.last_holder));
    assert_eq!(
        Goods::new(&batches, &[transfer("B9", None, "X", 1)]).unwrap_err(),
        GoodsError::UnknownBatch { index: 0, batch: "B9".into() }
    );
    assert!(matches!(Goods::new(&[batches[0].clone(), batches[0].clone()], &[]), Err(GoodsError::Duplicate(_))));
    let mut no_target = repack("B1", "B1", 1);
    no_target.to_batch_id = None;
    assert_eq!(Goods::new(&batches, &[no_target]).unwrap_err(), GoodsError::RepackWithoutTarget { index: 0 });
    assert!(matches!(Goods::new(&[batch("S", None, Some("GONE"))], &[]), Err(GoodsError::UnknownParent { .. })));
}

#[test]
fn the_supplier_ladder_suspends_one_week_one_week_then_four() {
    let rules = Profile::builtin("cn-2022-9th").unwrap().cold_chain;
    let positives = [
        ("PLANT-7".to_string(), day(1)),
        ("PLANT-7".to_string(), day(10)),
        ("PLANT-9".to_string(), day(3)),
        ("PLANT-7".to_string(), day(20)),
        ("PLANT-7".to_string(), day(25)),
    ];
    let s = suspensions(&rules, &positives);
    let seven: Vec<(u32, Date, Date)> =
        s.iter().filter(|s| s.plant == "PLANT-7").map(|s| (s.nth, s.from, s.until)).collect();
    assert_eq!(
        seven,
        [
            (1, day(1), day(8)),
            (2, day(10), day(17)),
            (3, day(20), jiff::civil::date(2022, 4, 17)),
            (4, day(25), jiff::civil::date(2022, 4, 22)),
        ]
    );
    assert!(suspended(&s, "PLANT-7", day(7)) && !suspended(&s, "PLANT-7", day(8)));
    assert!(suspended(&s, "PLANT-9", day(9)) && !suspended(&s, "PLANT-9", day(10)));
    let cdc = Profile::builtin("cdc-2020-12").unwrap().cold_chain;
    assert!(suspensions(&cdc, &positives).is_empty(), "no supplier rule under the CDC's profile");
}

/// Random goods: `n` batches, repack and transfer hops among them.
fn goods() -> impl Strategy<Value = (Vec<GoodsBatch>, Vec<GoodsHop>)> {
    (2usize..10).prop_flat_map(|n| {
        let hop = (0..n, 0..n, 0usize..5, 0usize..5, any::<bool>(), 1i8..28).prop_map(|(a, b, p, q, is_repack, d)| {
            let id = |k: usize| format!("B{k}");
            if is_repack {
                repack(&id(a), &id(b), d)
            } else {
                transfer(&id(a), Some(&format!("L{p}")), &format!("L{q}"), d)
            }
        });
        let plants = prop::collection::vec(prop::option::of(0usize..3), n);
        (plants, prop::collection::vec(hop, 0..30)).prop_map(move |(plants, hops)| {
            let batches =
                (0..n).map(|k| batch(&format!("B{k}"), plants[k].map(|p| format!("P{p}")).as_deref(), None)).collect();
            (batches, hops)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn the_trace_agrees_with_the_records_read_to_a_fixpoint((batches, hops) in goods(), start in 0usize..10) {
        let g = Goods::new(&batches, &hops).unwrap();
        let start = format!("B{}", start % batches.len());
        // Brute force: repeat over every hop until nothing new.
        let mut reach: BTreeSet<String> = BTreeSet::from([start.clone()]);
        loop {
            let before = reach.len();
            let more: Vec<String> = hops
                .iter()
                .filter(|h| h.kind == HopKind::Repack && reach.contains(&h.batch_id))
                .map(|h| h.to_batch_id.clone().unwrap())
                .collect();
            reach.extend(more);
            if reach.len() == before { break; }
        }
        let mut places: BTreeSet<String> = BTreeSet::new();
        let mut left: BTreeSet<String> = BTreeSet::new();
        for h in hops.iter().filter(|h| h.kind == HopKind::Transfer && reach.contains(&h.batch_id)) {
            places.insert(h.to_place.clone().unwrap());
            let from = h.from_place.clone().unwrap();
            places.insert(from.clone());
            left.insert(from);
        }
        let d = g.downstream(&start).unwrap();
        prop_assert_eq!(d.batches.iter().cloned().collect::<BTreeSet<_>>(), reach.clone());
        prop_assert_eq!(d.places.iter().map(|p| p.place.clone()).collect::<BTreeSet<_>>(), places);
        for p in &d.places {
            prop_assert_eq!(p.last_holder, !left.contains(&p.place), "{}", p.place);
        }
        // Upstream is downstream read backwards: `start` is downstream of each ancestor.
        for a in g.upstream(&start).unwrap().ancestors {
            prop_assert!(g.downstream(&a).unwrap().batches.contains(&start));
        }
    }
}
