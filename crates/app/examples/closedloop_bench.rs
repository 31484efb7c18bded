//! The closed-loop benchmark's chainbreak side (run by `bench/closedloop.sh`): durable episode
//! transitions per second through `chainbreak_app::episodes::transition` on a real SQLite file,
//! and the time a restart takes to rebuild the episodes from their events.
//!
//! Usage: closedloop_bench DB_PATH EPISODES BATCH
//!
//! Registers EPISODES persons, then opens an episode for each (opened and confirmed: two events)
//! and moves each through notify and start (home quarantine plans: secondary contacts under
//! cn-2022-9th), BATCH transitions per committed batch, and prints one JSON object: the
//! events written, seconds and events/s per phase, then the restart's load time.

use std::sync::Arc;
use std::time::Instant;

use chainbreak_app::Deployment;
use chainbreak_app::accounts::Actor;
use chainbreak_app::episodes::{self, Request};
use chainbreak_closedloop::{Action, Category, Reason};
use chainbreak_core::model::Person;
use chainbreak_core::time::{Clock, ManualClock};
use jiff::{SignedDuration, Timestamp};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, n, batch] = args.as_slice() else {
        anyhow::bail!("usage: closedloop_bench DB_PATH EPISODES BATCH");
    };
    let (n, batch): (usize, usize) = (n.parse()?, batch.parse()?);
    let path = std::path::Path::new(db);
    let _ = std::fs::remove_file(path);
    let t0: Timestamp = "2022-03-10T00:00:00Z".parse()?;
    let clock = Arc::new(ManualClock::new(t0));
    let mut store = chainbreak_app::init(path, "Asia/Shanghai", "cn-2022-9th", &*clock)?;
    {
        let persons: Vec<Person> = (0..n)
            .map(|i| Person { id: format!("P{i:07}"), residence: None, birth_year: None, sex: None, occupation: None })
            .collect();
        let mut b = chainbreak_store::Store::begin(&mut store, t0)?;
        b.put_persons(&persons)?;
        b.commit()?;
    }
    let mut dep = Deployment::new(Box::new(store), clock.clone())?;
    let actor = Actor { name: "bench".into(), via: "closedloop_bench".into(), reason: None };
    let exposure = t0 - SignedDuration::from_hours(20);
    let mut phases = Vec::new();

    // Open (and confirm: two events each).
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(batch) {
        let requests: Vec<Request> = chunk
            .iter()
            .map(|i| Request::Open {
                id: Some(format!("E{i:07}")),
                person: format!("P{i:07}"),
                category: Category::Secondary,
                plan: None,
                reason: Reason { source: "K1".into(), via: Some("C1".into()), at: exposure, evidence: None },
                owner: "U1".into(),
                confirmed: true,
            })
            .collect();
        for o in episodes::transition(&mut dep, &actor, None, &requests)? {
            ids.push(o.episode_id);
        }
        clock.advance(SignedDuration::from_secs(1));
    }
    phases.push(("open_and_confirm", 2 * n, started.elapsed().as_secs_f64()));

    for (name, action) in [("notify", Action::Notify), ("start", Action::Start)] {
        let started = Instant::now();
        for chunk in ids.chunks(batch) {
            let requests: Vec<Request> =
                chunk.iter().map(|id| Request::Act { episode: id.clone(), action: action.clone() }).collect();
            episodes::transition(&mut dep, &actor, None, &requests)?;
            clock.advance(SignedDuration::from_secs(1));
        }
        phases.push((name, n, started.elapsed().as_secs_f64()));
    }
    let events: usize = phases.iter().map(|p| p.1).sum();
    let seconds: f64 = phases.iter().map(|p| p.2).sum();
    drop(dep);

    // A restart: every episode rebuilt from its events.
    let store = chainbreak_app::open(path)?;
    let mut dep = Deployment::new(Box::new(store), clock.clone())?;
    let loaded = episodes::load(&mut dep)?;
    let shown = episodes::show(&mut dep, None, &ids[n / 2])?;
    anyhow::ensure!(shown.episode.state == chainbreak_core::model::EpisodeState::InMeasure, "state after restart");

    let phases: Vec<serde_json::Value> = phases
        .iter()
        .map(|(name, count, secs)| {
            serde_json::json!({"phase": name, "events": count, "seconds": secs, "events_per_second": *count as f64 / secs})
        })
        .collect();
    let report = serde_json::json!({
        "episodes": n,
        "batch": batch,
        "events": events,
        "seconds": seconds,
        "events_per_second": events as f64 / seconds,
        "phases": phases,
        "restart": loaded,
        "now": clock.now().to_string(),
    });
    println!("{report}");
    Ok(())
}
