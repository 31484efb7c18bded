//! `chainbreak demo`: a synthetic city with an outbreak, served live (issue 9). The simulator
//! builds the city; its people, places and groups are imported into a fresh embedded store;
//! the server starts on an accelerated clock; then each simulated day, once the clock has passed
//! it, is replayed through the real ingest API — the day's check-ins and lab results — and the
//! response is fed back: persons under a measure are quarantined in the simulation and cases
//! isolated, so the response bends the curve. Household contacts are confirmed as they come, the
//! simulated tracers' work (DESIGN.md §4a allows automatic confirmation for the demo only); the
//! other proposals are left for the demo's user to decide;
//! zones are proposed for a commander — the demo user — to confirm on the zone page.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chainbreak_app::Deployment;
use chainbreak_app::accounts::{self, Actor};
use chainbreak_app::import::{ImportOptions, import_file};
use chainbreak_closedloop::Category;
use chainbreak_core::access::{Role, User};
use chainbreak_core::model::{EpisodeState, Visit, VisitSource};
use chainbreak_core::time::{AcceleratedClock, Clock};
use chainbreak_formats::Kind;
use chainbreak_sim::day::Rec;
use jiff::Timestamp;

/// The demo's settings.
pub(crate) struct DemoOptions {
    pub persons: u32,
    pub days: u32,
    pub seed: u64,
    /// Simulated seconds per real second.
    pub speed: f64,
    pub dir: PathBuf,
    pub addr: std::net::SocketAddr,
    pub profile: String,
}

/// The demo user's name and password (printed; the store is a throwaway).
const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "chainbreak-demo";
/// Records per ingest request.
const BATCH: usize = 20_000;

fn ts(unix: i64) -> Timestamp {
    Timestamp::from_second(unix).expect("the simulator's instants are valid")
}

/// Builds the city, imports it, and returns the store's path and the top area.
fn build(
    sim: &chainbreak_sim::Outbreak,
    dir: &Path,
    profile: &str,
    at: Timestamp,
) -> anyhow::Result<(PathBuf, String)> {
    let city_dir = dir.join("city");
    let mut out = chainbreak_sim::write::Output::create(&city_dir).context("writing the city's files")?;
    chainbreak_sim::write::write_city(&sim.city, &sim.ids, &mut out).context("writing the city's files")?;
    out.finish().context("writing the city's files")?;
    let db = dir.join("demo.db");
    for f in ["demo.db", "demo.db-wal", "demo.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let clock = chainbreak_core::time::ManualClock::new(at);
    let mut store = chainbreak_app::init(&db, "Asia/Shanghai", profile, &clock)?;
    for (kind, file) in [
        (Kind::Areas, "areas.geojson"),
        (Kind::Units, "units.csv"),
        (Kind::Places, "places.csv"),
        (Kind::Persons, "persons.csv"),
        (Kind::Staff, "staff.csv"),
        (Kind::Groups, "groups.csv"),
        (Kind::Memberships, "memberships.csv"),
    ] {
        let path = city_dir.join(file);
        if path.exists() {
            import_file(&mut store, kind, &path, &ImportOptions::default(), at, &mut chainbreak_app::NoProgress)
                .with_context(|| format!("importing {}", path.display()))?;
        }
    }
    let top = chainbreak_sim::write::areas(&sim.city)
        .into_iter()
        .find(|a| a.parent.is_none())
        .map(|a| a.id)
        .context("the city has a top area")?;
    Ok((db, top))
}

/// Adds a user with a token; returns the token.
fn user_with_token(
    store: &mut dyn chainbreak_store::Store,
    name: &str,
    role: Role,
    top: &str,
    at: Timestamp,
) -> anyhow::Result<String> {
    let actor = Actor { name: "demo".into(), via: "chainbreak demo".into(), reason: None };
    let user = User {
        name: name.into(),
        role,
        unit: "command".into(),
        jurisdiction: top.into(),
        disabled: false,
        created_at: at,
    };
    accounts::add_user(store, &user, DEMO_PASSWORD, &actor)?;
    Ok(accounts::issue_token(store, name, "demo", None, at, &actor)?.0)
}

/// Runs the demo until interrupted (or, with `days` done, keeps serving).
pub(crate) fn run(o: DemoOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&o.dir).with_context(|| format!("creating {}", o.dir.display()))?;
    let params = chainbreak_sim::CityParams::new(o.persons, o.days, o.seed);
    let pathogen = chainbreak_sim::Pathogen::load("omicron").context("the pathogen profile")?;
    let mut sim = chainbreak_sim::Outbreak::new(params, pathogen).context("building the city")?;
    let t0 = ts(sim.city.t0);
    eprintln!("building a city of {} persons and importing it into {} ...", o.persons, o.dir.display());
    let (db, top) = build(&sim, &o.dir, &o.profile, t0)?;
    let mut store = chainbreak_app::open(&db)?;
    user_with_token(&mut store, DEMO_USER, Role::Commander, &top, t0)?;
    let feeds = user_with_token(&mut store, "demo-feeds", Role::Epidemiologist, &top, t0)?;
    let lab = user_with_token(&mut store, "demo-lab", Role::Lab, &top, t0)?;
    let zones = accounts::issue_token(
        &mut store,
        DEMO_USER,
        "demo zones",
        None,
        t0,
        &Actor { name: "demo".into(), via: "chainbreak demo".into(), reason: None },
    )?
    .0;
    drop(store);

    let clock: Arc<dyn Clock> = Arc::new(AcceleratedClock::new(t0, o.speed));
    let config = chainbreak_server::ServerConfig {
        db: db.clone(),
        auto_confirm: true,
        detect_every: Some(std::time::Duration::from_secs(30)),
        ..Default::default()
    };
    let state = chainbreak_server::AppState::open(config, clock.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    let listener = rt.block_on(tokio::net::TcpListener::bind(o.addr)).with_context(|| format!("binding {}", o.addr))?;
    let addr = listener.local_addr()?;
    println!("chainbreak demo: http://{addr}/dashboard  (sign in as `{DEMO_USER}`, password `{DEMO_PASSWORD}`)");
    println!("public page:     http://{addr}/public");
    println!(
        "replaying {} days of an outbreak in {} persons, a simulated day every {:.0} s; Ctrl-C stops",
        o.days,
        o.persons,
        86_400.0 / o.speed
    );
    let server = rt.spawn(async move {
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        chainbreak_server::serve(listener, state, shutdown).await
    });
    let base = format!("http://{addr}");
    let replay = std::thread::spawn(move || replay(&mut sim, &db, clock, &base, &feeds, &lab, &zones));
    let served = rt.block_on(server).context("the server task")?;
    served.context("serving")?;
    if replay.is_finished() {
        replay.join().map_err(|_| anyhow::anyhow!("the replay panicked"))??;
    }
    Ok(())
}

/// Posts a JSON body with a token; the answer's JSON.
fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    body: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let r = client.post(url).bearer_auth(token).json(body).send().with_context(|| format!("POST {url}"))?;
    let status = r.status();
    let text = r.text()?;
    anyhow::ensure!(status.is_success(), "POST {url}: {status}: {text}");
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// Confirms, through the API as the demo's tracers, the proposed close contacts in a household
/// (`households`: the groups of that kind); how many.
fn confirm_proposals(
    client: &reqwest::blocking::Client,
    base: &str,
    token: &str,
    households: &std::collections::HashSet<String>,
) -> anyhow::Result<usize> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(a) => format!("{base}/api/v1/proposals?status=proposed&limit=1000&after={a}"),
            None => format!("{base}/api/v1/proposals?status=proposed&limit=1000"),
        };
        let r = client.get(&url).bearer_auth(token).send().with_context(|| format!("GET {url}"))?;
        anyhow::ensure!(r.status().is_success(), "GET {url}: {}", r.status());
        let page: serde_json::Value = r.json()?;
        // The simulated tracers confirm what a phone call settles: close contacts in the case's
        // household; the rest (venues, workplaces, classes, secondary contacts) is left for the
        // demo's user to decide.
        let settled = |p: &serde_json::Value| {
            p["category"].as_str() == Some("close")
                && p["evidence"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|x| x["group_id"].as_str().is_some_and(|g| households.contains(g))))
        };
        ids.extend(
            page["items"].as_array().into_iter().flatten().filter(|p| settled(p)).filter_map(|p| p["id"].as_i64()),
        );
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    for chunk in ids.chunks(1000) {
        let body = serde_json::json!({ "ids": chunk, "decision": "confirm", "reason": "demo: confirmed by the simulated tracers" });
        post(client, &format!("{base}/api/v1/proposals/decisions"), token, &body)?;
    }
    Ok(ids.len())
}

/// Each simulated day, once the clock has passed it: the day's check-ins and lab results
/// through the API, zones proposed for the new cases, and the measures fed back.
fn replay(
    sim: &mut chainbreak_sim::Outbreak,
    db: &Path,
    clock: Arc<dyn Clock>,
    base: &str,
    feeds: &str,
    lab: &str,
    zones: &str,
) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(600)).build()?;
    let index: HashMap<String, u32> =
        (0..sim.city.persons.len() as u32).map(|i| (sim.ids.persons.get(i).to_string(), i)).collect();
    let mut dep = Deployment::new(Box::new(chainbreak_app::open(db)?), clock.clone())?;
    let households: std::collections::HashSet<String> = dep
        .store
        .group_members()?
        .into_iter()
        .filter(|m| m.kind == chainbreak_core::model::GroupKind::Household)
        .map(|m| m.group_id)
        .collect();
    let (mut quarantined, mut isolated) = (BTreeSet::new(), BTreeSet::new());
    for day in 0..sim.city.params.days {
        // Wait for the day to end on the demo's clock.
        let end = ts(sim.city.t0 + i64::from(day + 1) * 86_400);
        while clock.now() < end {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let r = sim.step_day().context("simulating a day")?;
        let visits: Vec<Visit> = r
            .chunks
            .iter()
            .flat_map(|c| c.stays.iter())
            .filter(|s| s.rec != Rec::Missing)
            .map(|s| Visit {
                person_id: sim.ids.persons.get(s.person).to_string(),
                place_id: sim.ids.places.get(s.place).to_string(),
                t_in: ts(s.t_in),
                t_out: (s.rec == Rec::Full && s.t_out != chainbreak_sim::day::NO_END).then(|| ts(s.t_out)),
                source: VisitSource::VenueCode,
            })
            .collect();
        for chunk in visits.chunks(BATCH) {
            post(&client, &format!("{base}/api/v1/visits:batch"), feeds, &serde_json::json!({ "visits": chunk }))?;
        }
        let mut suspected = Vec::new();
        for chunk in r.lab_tests.chunks(BATCH) {
            let answer = post(
                &client,
                &format!("{base}/api/v1/lab-tests:batch"),
                lab,
                &serde_json::json!({ "lab_tests": chunk }),
            )?;
            if let Some(cases) = answer["suspected_cases"].as_array() {
                suspected.extend(cases.iter().filter_map(|c| c.as_str().map(String::from)));
            }
        }
        if !suspected.is_empty() {
            post(
                &client,
                &format!("{base}/api/v1/zones:propose"),
                zones,
                &serde_json::json!({ "case_ids": suspected }),
            )?;
        }
        // The tracers' work, in the demo only (DESIGN.md §4a): household contacts confirmed,
        // which opens their measures.
        let confirmed = confirm_proposals(&client, base, feeds, &households)?;
        // The response, fed back: measures keep people home, isolation keeps cases away.
        let now = sim.now();
        for (_, e) in chainbreak_app::episodes::current(&mut dep)? {
            let Some(&p) = index.get(&e.person) else { continue };
            let active = matches!(
                e.state,
                EpisodeState::Confirmed
                    | EpisodeState::Notified
                    | EpisodeState::Transferred
                    | EpisodeState::InMeasure
                    | EpisodeState::Extended
            );
            if !active {
                continue;
            }
            if e.category == Category::Case {
                if isolated.insert(p) {
                    sim.isolate(p, now).context("isolating in the simulation")?;
                }
            } else if quarantined.insert(p) {
                sim.quarantine(p, now).context("quarantining in the simulation")?;
            }
        }
        eprintln!(
            "day {:>3}: {:>8} check-ins, {:>5} lab results, {:>4} new suspected cases, {:>5} contacts confirmed; {} quarantined, {} isolated so far",
            day + 1,
            visits.len(),
            r.lab_tests.len(),
            suspected.len(),
            confirmed,
            quarantined.len(),
            isolated.len()
        );
        sim.recycle(r);
    }
    eprintln!("the outbreak's {} days are replayed; still serving (Ctrl-C stops)", sim.city.params.days);
    Ok(())
}
