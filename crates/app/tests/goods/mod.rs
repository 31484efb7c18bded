// The response to positive goods and environment samples, the supplier suspension list, and
// service requests in controlled zones, on real SQLite files.

use std::path::Path;
use std::sync::Arc;

use chainbreak_app::accounts::Actor;
use chainbreak_app::goods::{self, PositiveSample};
use chainbreak_app::import::{ImportOptions, import_file};
use chainbreak_app::triggers::Triggers;
use chainbreak_app::{AppError, Deployment, NoProgress};
use chainbreak_closedloop::Category;
use chainbreak_core::model::{EpisodeState, SubjectKind};
use chainbreak_core::time::{Clock, ManualClock};
use chainbreak_formats::Kind;
use chainbreak_store::{AlertFilter, AlertKind};
use jiff::Timestamp;
use jiff::civil::date;

mod requests;

fn t0() -> Timestamp {
    "2022-03-15T00:00:00Z".parse().unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub dep: Deployment,
}

pub(crate) fn actor(name: &str) -> Actor {
    Actor { name: name.into(), via: "test".into(), reason: None }
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let db = dir.path().join("s.db");
        chainbreak_app::init(&db, "Asia/Shanghai", "cn-2022-9th", &*clock).unwrap();
        let dep = Deployment::new(Box::new(chainbreak_app::open(&db).unwrap()), clock.clone()).unwrap();
        Fixture { dir, clock, dep }
    }

    /// A restart: the deployment opened again from its file.
    pub fn restart(&mut self) {
        let db = self.dir.path().join("s.db");
        self.dep = Deployment::new(Box::new(chainbreak_app::open(&db).unwrap()), self.clock.clone()).unwrap();
    }

    pub fn import(
        &mut self,
        kind: Kind,
        name: &str,
        text: &str,
    ) -> Result<chainbreak_app::import::ImportReport, AppError> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let opts = ImportOptions {
            triggers: Some(Triggers::from_profile(&self.dep.profile)),
            actor: Some(actor("importer")),
            ..Default::default()
        };
        import_file(&mut *self.dep.store, kind, Path::new(&path), &opts, self.clock.now(), &mut NoProgress)
    }
}

/// A port, a cold store W2 and a restaurant R1 in district D1; batch GB1 of plant EC-1 comes
/// in through the port to W2 on 8 March, is repacked into GB2 on the 9th, which goes to R1 on
/// the 10th. P1 works at W2, P2 at R1; P3 ate at R1 on the 11th, P4 on the 9th (before the
/// goods), P5 was at W2 on the 11th (after they left).
fn cold_chain() -> Fixture {
    let mut f = Fixture::new();
    f.import(Kind::Areas, "areas.csv", "id,name,level,parent\nC1,City,city,\nD1,One,district,C1\n").unwrap();
    f.import(
        Kind::Places,
        "places.csv",
        "id,kind,area\nPORT,other,D1\nW2,cold_chain_warehouse,D1\nR1,restaurant,D1\nH1,residence,D1\nLAB,hospital,D1\n",
    )
    .unwrap();
    f.import(Kind::Persons, "persons.csv", "id,residence\nP1,H1\nP2,H1\nP3,H1\nP4,H1\nP5,H1\n").unwrap();
    f.import(Kind::Staff, "staff.csv", "place_id,person_id,role\nW2,P1,porter\nR1,P2,cook\n").unwrap();
    f.import(
        Kind::Visits,
        "visits.csv",
        "person_id,place_id,t_in,t_out\n\
         P3,R1,2022-03-11T04:00:00Z,2022-03-11T05:00:00Z\n\
         P4,R1,2022-03-09T04:00:00Z,2022-03-09T05:00:00Z\n\
         P5,W2,2022-03-11T02:00:00Z,2022-03-11T03:00:00Z\n",
    )
    .unwrap();
    f.import(
        Kind::GoodsBatches,
        "batches.csv",
        "id,product,origin_country,plant,entry_date\n\
         GB1,frozen shrimp,EC,EC-1,2022-03-08\nGB2,frozen shrimp 1 kg,EC,,\n\
         GB3,frozen shrimp,EC,EC-1,2022-03-09\nGB4,frozen shrimp,EC,EC-1,2022-03-09\n",
    )
    .unwrap();
    f.import(
        Kind::GoodsHops,
        "hops.csv",
        "batch_id,kind,from_place,to_place,to_batch_id,date\n\
         GB1,transfer,PORT,W2,,2022-03-08\nGB1,repack,W2,,GB2,2022-03-09\nGB2,transfer,W2,R1,,2022-03-10\n",
    )
    .unwrap();
    f
}

const LAB_HEADER: &str = "id,subject_kind,subject_id,method,result,sampled_at,reported_at,lab_id\n";

fn suspension_alerts(f: &Fixture) -> Vec<String> {
    let filter = AlertFilter { kind: Some(AlertKind::SupplierSuspension), ..Default::default() };
    chainbreak_app::alerts::list(&f.dep, None, &filter, 0, 100).unwrap().into_iter().map(|a| a.key).collect()
}

#[test]
fn a_positive_batch_gives_the_recall_list_the_places_to_seal_the_workers_episodes_and_the_suspension() {
    let mut f = cold_chain();
    let report = f
        .import(
            Kind::LabTests,
            "lab.csv",
            &format!("{LAB_HEADER}G1,goods,GB1,pcr,positive,2022-03-12T02:00:00Z,2022-03-12T10:00:00Z,LAB\n"),
        )
        .unwrap();
    assert_eq!(report.triggered.samples.len(), 1, "the alert's sample, for the response");
    let responses = goods::respond(&mut f.dep, &actor("system"), None, &report.triggered.samples, "CDC").unwrap();
    let r = &responses[0];
    assert_eq!(r.recall, ["GB1", "GB2"]);
    assert_eq!(
        (r.plants.clone(), r.sibling_batches.clone()),
        (vec!["EC-1".to_string()], vec!["GB3".into(), "GB4".into()])
    );
    let seal: Vec<(&str, bool, Timestamp, Timestamp)> =
        r.places_to_seal.iter().map(|p| (p.place.as_str(), p.last_holder, p.exposed_from, p.exposed_to)).collect();
    assert_eq!(
        seal,
        [
            // From the local day the goods came to the local day after they left (Asia/Shanghai).
            ("PORT", false, ts("2022-03-07T16:00:00Z"), ts("2022-03-08T16:00:00Z")),
            ("R1", true, ts("2022-03-09T16:00:00Z"), ts("2022-03-12T10:00:00Z")),
            ("W2", false, ts("2022-03-07T16:00:00Z"), ts("2022-03-10T16:00:00Z")),
        ]
    );
    let workers: Vec<(&str, &str)> =
        r.workers.iter().map(|w| (w.person_id.as_str(), w.evidence[0].via.as_str())).collect();
    assert_eq!(workers, [("P1", "staff"), ("P2", "staff"), ("P3", "visit")], "not P4 (before), not P5 (after)");
    let p3 = &r.workers[2];
    assert_eq!(
        (p3.last_exposure, p3.evidence[0].batches.clone()),
        (ts("2022-03-11T05:00:00Z"), vec!["GB2".to_string()])
    );

    // Each worker proposed the profile's co-exposed measure, with the goods as the reason.
    let episodes = chainbreak_app::episodes::current(&mut f.dep).unwrap();
    for w in &r.workers {
        let id = w.episode_id.as_deref().unwrap();
        let (_, ep) = episodes.iter().find(|(e, _)| e == id).unwrap();
        assert_eq!(
            (ep.person.as_str(), ep.category, ep.state),
            (w.person_id.as_str(), Category::CoExposed, EpisodeState::Proposed)
        );
        assert_eq!(ep.reasons[0].source, "goods:lab_test:G1");
        assert!(ep.reasons[0].evidence.as_deref().unwrap().contains(&w.evidence[0].place), "{:?}", ep.reasons);
    }

    // The first positive at EC-1 suspends it a week from the sample's local day.
    assert_eq!(r.suspensions.len(), 1);
    let s = &r.suspensions[0];
    assert_eq!((s.plant.as_str(), s.nth, s.from, s.until), ("EC-1", 1, date(2022, 3, 12), date(2022, 3, 19)));
    assert_eq!(suspension_alerts(&f), ["suspension:EC-1:1:2022-03-12:2022-03-19"]);
    let list = goods::suspensions(&f.dep, None, true).unwrap();
    assert_eq!(list.len(), 1, "in force on the 15th");

    // Recorded once, readable after a restart; responding again does nothing.
    f.restart();
    assert!(goods::respond(&mut f.dep, &actor("system"), None, &report.triggered.samples, "CDC").unwrap().is_empty());
    let stored = goods::response(&f.dep, None, "lab_test:G1").unwrap();
    assert_eq!(stored.response, *r);
    assert_eq!(chainbreak_app::episodes::current(&mut f.dep).unwrap().len(), 3);
}

#[test]
fn the_suspension_ladder_is_data_and_every_change_raises_an_alert() {
    let mut f = cold_chain();
    let sample = |id: &str, batch: &str, sampled: &str| PositiveSample {
        id: format!("lab_test:{id}"),
        kind: SubjectKind::Goods,
        subject: batch.into(),
        sampled_at: ts(sampled),
        positive_at: ts(sampled),
    };
    let respond = |f: &mut Fixture, s: PositiveSample| {
        goods::respond(&mut f.dep, &actor("system"), None, &[s], "CDC").unwrap().remove(0)
    };
    respond(&mut f, sample("A", "GB1", "2022-03-12T02:00:00Z"));
    let second = respond(&mut f, sample("B", "GB3", "2022-03-13T02:00:00Z"));
    assert_eq!(second.suspensions.len(), 1);
    assert_eq!((second.suspensions[0].nth, second.suspensions[0].until), (2, date(2022, 3, 20)));
    // A positive sampled earlier, known later: it is the first now, and every entry moves.
    let late = respond(&mut f, sample("C", "GB4", "2022-03-10T02:00:00Z"));
    let moved: Vec<(u32, jiff::civil::Date, jiff::civil::Date)> =
        late.suspensions.iter().map(|s| (s.nth, s.from, s.until)).collect();
    assert_eq!(
        moved,
        [
            (1, date(2022, 3, 10), date(2022, 3, 17)),
            (2, date(2022, 3, 12), date(2022, 3, 19)),
            (3, date(2022, 3, 13), date(2022, 4, 10)),
        ]
    );
    let list: Vec<(u32, String)> =
        goods::suspensions(&f.dep, None, false).unwrap().into_iter().map(|v| (v.row.nth, v.row.sample)).collect();
    assert_eq!(list, [(1, "lab_test:C".into()), (2, "lab_test:A".into()), (3, "lab_test:B".into())]);
    assert_eq!(suspension_alerts(&f).len(), 5, "2 entries added, then 1 moved, 1 moved and 1 added");
}

#[test]
fn a_positive_cold_store_environment_seals_it_and_lists_the_goods_it_held() {
    let mut f = cold_chain();
    let report = f
        .import(
            Kind::Sentinel,
            "sentinel.csv",
            "place_id,feed,date,category,count,positives\nW2,cold_chain,2022-03-14,surface,12,1\n",
        )
        .unwrap();
    assert_eq!(report.triggered.samples.len(), 1);
    let r = goods::respond(&mut f.dep, &actor("system"), None, &report.triggered.samples, "CDC").unwrap().remove(0);
    assert_eq!(r.recall, ["GB1"], "what came to W2 within the look-back");
    assert_eq!(r.places_to_seal.iter().map(|p| p.place.as_str()).collect::<Vec<_>>(), ["W2"]);
    let workers: Vec<&str> = r.workers.iter().map(|w| w.person_id.as_str()).collect();
    assert_eq!(workers, ["P1", "P5"], "its staff and everyone there in the window");
    assert!(r.suspensions.is_empty(), "an environment names no plant");
    // The same report again raises nothing and responds to nothing.
    let again = f
        .import(
            Kind::Sentinel,
            "sentinel.csv",
            "place_id,feed,date,category,count,positives\nW2,cold_chain,2022-03-14,surface,12,1\n",
        )
        .unwrap();
    assert!(again.triggered.samples.is_empty());
}

#[test]
fn an_unregistered_batch_is_named_for_a_person_and_answered_once_registered() {
    let mut f = cold_chain();
    let s = PositiveSample {
        id: "lab_test:X".into(),
        kind: SubjectKind::Goods,
        subject: "GB9".into(),
        sampled_at: ts("2022-03-12T02:00:00Z"),
        positive_at: ts("2022-03-12T02:00:00Z"),
    };
    let before = f.dep.store.last_seq().unwrap();
    let r = goods::respond(&mut f.dep, &actor("system"), None, std::slice::from_ref(&s), "CDC").unwrap().remove(0);
    assert_eq!(r.recall, ["GB9"]);
    assert!(r.notes[0].contains("not registered"), "{:?}", r.notes);
    assert!(r.workers.is_empty() && r.suspensions.is_empty());
    assert_eq!(f.dep.store.last_seq().unwrap(), before, "nothing recorded");
    // Once the batch and its hop are in, the same sample gets its whole response.
    f.import(Kind::GoodsBatches, "b9.csv", "id,product,origin_country,plant\nGB9,frozen beef,BR,BR-2\n").unwrap();
    f.import(Kind::GoodsHops, "h9.csv", "batch_id,kind,to_place,date\nGB9,transfer,R1,2022-03-10\n").unwrap();
    let r = goods::respond(&mut f.dep, &actor("system"), None, std::slice::from_ref(&s), "CDC").unwrap().remove(0);
    assert_eq!((r.places_to_seal.len(), r.workers.len(), r.suspensions.len()), (1, 2, 1), "{r:?}");
    assert!(goods::response(&f.dep, None, "lab_test:X").is_ok());

    // A response without an owner for its workers' measures is refused: no record, no episode,
    // no suspension.
    let s = PositiveSample { id: "lab_test:Y".into(), subject: "GB1".into(), ..s };
    let before = f.dep.store.last_seq().unwrap();
    assert!(goods::respond(&mut f.dep, &actor("system"), None, &[s], " ").is_err());
    assert_eq!(f.dep.store.last_seq().unwrap(), before);
    assert!(goods::response(&f.dep, None, "lab_test:Y").is_err());
}
