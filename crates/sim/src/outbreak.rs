//! The outbreak: agent-based transmission over the city's days, and how it shows in the feeds.
//!
//! Each day is closed at once ([`Outbreak::step_day`], or hour by hour with
//! [`Outbreak::step_hour`]): everyone's day is planned (ill persons stay home or seek care,
//! quarantined and isolated persons stop moving at their time), then infections happen
//!
//! - in households: hazard ∝ the members' infectiousness × hours at home;
//! - at places: ∝ infectiousness × overlap hours × the place kind's weight, damped in crowds;
//! - on trips: ∝ infectiousness × overlap × exp(-|Δrow| / scale), same carriage only;
//! - from contaminated cold-chain batches to the workers on shift at the warehouse;
//! - by importation: arriving travellers, by their origin's risk; and seeds on day 0.
//!
//! Each setting's infections are drawn apart, with its own random stream (a place's routine
//! visitors by geometric skips bounded by the place's whole-day pressure, so that the work
//! follows the infections rather than the visitors); a person infected in several settings is
//! infected by the first, which gives the same probability as one draw on the summed hazard.
//!
//! Infectiousness follows the generation-time density (gamma, stretched in time by
//! [`Outbreak::stretch`]) from the day after infection. Before the first day a pilot week on a
//! sample of persons sets two numbers: the global scale `beta`, so that the expected number of
//! secondary infections of a case meets the profile's `target_r` (cases weighted by how likely
//! they are to be infected, their infector and the close contacts it also exposed taken out),
//! and the stretch, so that the realised generation times (shortened by those who stay home
//! when ill and by close contacts infected early) give `target_doubling_days` by Euler–Lotka.
//! Every number comes from the [`Pathogen`].
//!
//! Observations: ill persons visit fever clinics (tested) or buy drugs at pharmacies, workers
//! of high-risk occupations are screened, lab results come back after a delay, positives
//! become cases; sentinel reports aggregate them per place and day. The ground truth (who
//! infected whom, when, where, by which route) is kept apart for evaluation only.

use std::sync::Arc;

use rustc_hash::{FxHashMap as HashMap, FxHashSet};

use chainbreak_core::model::{
    Case, Classification, DetectionRoute, GoodsBatch, GoodsHop, HopKind, LabTest, OriginRisk, Outcome, PlaceKind,
    SentinelFeed, SentinelRecord, Severity, SubjectKind, TestMethod, TestResult,
};
use jiff::Timestamp;
use rand::RngExt;
use rand_distr::{Distribution, LogNormal, Poisson};
use rayon::prelude::*;

use crate::SimError;
use crate::city::{City, NONE};
use crate::day::{DayMods, DayOut, NO_END, Rec, Stay, TripKey};
use crate::pathogen::{DRUG_CLASSES, Pathogen};
use crate::rng::{Pcg, Stream, mix, rng};
use crate::write::{CHUNK, CityIds, person_chunks, trip_id, trip_origin};

/// Never infected.
pub const NEVER: i64 = i64::MIN;
/// No time (no onset, not confined).
pub const NO_TIME: i64 = i64::MAX;
const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
/// "No slot" in a dense index.
const NO_SLOT: u32 = u32::MAX;

/// How an infection happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// A seed on day 0 (no infector).
    Seed,
    /// An arriving traveller infected before arrival.
    Imported,
    Household,
    Place,
    Trip,
    /// Handling a contaminated cold-chain batch.
    Goods,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Seed => "seed",
            Route::Imported => "imported",
            Route::Household => "household",
            Route::Place => "place",
            Route::Trip => "trip",
            Route::Goods => "goods",
        }
    }
}

/// One infection of the ground truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Infection {
    pub infectee: u32,
    /// `NONE` for seeds, importations and goods.
    pub infector: u32,
    /// Unix seconds.
    pub t: i64,
    pub route: Route,
    /// The place (route place), residence (household), warehouse (goods); `NONE` otherwise.
    pub place: u32,
    pub trip: Option<TripKey>,
    /// Goods batch index (route goods).
    pub batch: u32,
}

/// Quarantine or isolation (both stop movement and transmission from their time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confinement {
    Quarantine,
    Isolation,
}

/// Care a person seeks on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Care {
    None,
    FeverClinic,
    /// Buys a drug of this class (index into `DRUG_CLASSES`).
    Pharmacy(u8),
}

/// The outputs of one closed day.
#[derive(Debug, Default)]
pub struct DayResult {
    pub day: u32,
    /// Everyone's day (chunks in person order).
    pub chunks: Vec<DayOut>,
    pub infections: Vec<Infection>,
    /// The onset of each of `infections`' infectee (`NO_TIME`: asymptomatic), drawn at infection.
    pub onsets: Vec<i64>,
    pub lab_tests: Vec<LabTest>,
    pub cases: Vec<Case>,
    pub sentinel: Vec<SentinelRecord>,
    pub goods_batches: Vec<GoodsBatch>,
    pub goods_hops: Vec<GoodsHop>,
}

/// The simulation: a city, a pathogen, and everyone's state.
pub struct Outbreak {
    /// The city, shared (read-only) with whoever writes its files while the days run.
    pub city: Arc<City>,
    pub pathogen: Pathogen,
    pub ids: Arc<CityIds>,
    /// The global transmission scale found for `target_r`.
    pub beta: f64,
    /// The time scale of the infectiousness profile relative to the generation-time gamma,
    /// found for `target_doubling_days` (see [`Outbreak::new`]).
    pub stretch: f64,
    /// The open day, and hours of it already stepped.
    day: u32,
    hour: u32,
    t_inf: Vec<i64>,
    onset: Vec<i64>,
    rel: Vec<f32>,
    ill_home: Vec<bool>,
    /// Care day and kind per person (symptomatic only).
    care: Vec<(u32, Care)>,
    confined: Vec<i64>,
    has_case: Vec<bool>,
    imported: Vec<bool>,
    active: Vec<u32>,
    /// The whole ground truth so far.
    pub infections: Vec<Infection>,
    cdf: Vec<f64>,
    next_case: u64,
    next_test: u64,
    next_batch: u32,
    /// The persons whose occupation is screened, in person order: (person, screening interval
    /// in days, workplace).
    screened: Vec<(u32, u32, u32)>,
    /// Workers whose workplace is a cold-chain warehouse, in person order.
    warehouse_workers: Vec<u32>,
    /// Day buffers handed back by [`Outbreak::recycle`], reused for the next day's plans.
    spare: Vec<DayOut>,
    /// Days from this one on are planned for everyone (see [`Outbreak::plan_everyone_from`]).
    full_from: u32,
    /// Seconds spent so far: pilot week, planning, goods and importation, transmission, observation.
    pub phase_seconds: [f64; 5],
    /// Per place: the profile's weight of its kind (looked up once, not per stay).
    place_w: Vec<f64>,
}

/// Weight of a place kind in the profile.
fn place_weight(p: &Pathogen, k: PlaceKind) -> f64 {
    p.transmission.place_weight.get(&k).copied().unwrap_or(0.0)
}

fn uniform(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// ln Γ(x) (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

impl Outbreak {
    /// Builds the city and the outbreak's state; checks every parameter first, then finds
    /// `beta` and `stretch` on a pilot week.
    pub fn new(params: crate::CityParams, pathogen: Pathogen) -> Result<Outbreak, SimError> {
        params.validate()?;
        pathogen.validate().map_err(|message| SimError::Profile { source_name: pathogen.name.clone(), message })?;
        let city = Arc::new(City::build(params)?);
        let ids = Arc::new(CityIds::new(&city));
        Outbreak::with_city(city, ids, pathogen)
    }

    /// The outbreak's state in a city already built (with its weekly routine) and its ids
    /// (`CityIds::new(&city)`); checks the pathogen, then finds `beta` and `stretch` on a pilot
    /// week.
    pub fn with_city(city: Arc<City>, ids: Arc<CityIds>, pathogen: Pathogen) -> Result<Outbreak, SimError> {
        pathogen.validate().map_err(|message| SimError::Profile { source_name: pathogen.name.clone(), message })?;
        if city.week.is_empty() {
            return Err(SimError::State("the city's weekly routine is not planned".into()));
        }
        let n = city.persons.len();
        let mut o = Outbreak {
            city,
            pathogen,
            ids,
            beta: 0.0,
            day: 0,
            hour: 0,
            t_inf: vec![NEVER; n],
            onset: vec![NO_TIME; n],
            rel: vec![0.0; n],
            ill_home: vec![false; n],
            care: vec![(u32::MAX, Care::None); n],
            confined: vec![NO_TIME; n],
            has_case: vec![false; n],
            imported: vec![false; n],
            active: Vec::new(),
            infections: Vec::new(),
            cdf: Vec::new(),
            stretch: 1.0,
            next_case: 0,
            next_test: 0,
            next_batch: 0,
            phase_seconds: [0.0; 5],
            screened: Vec::new(),
            warehouse_workers: Vec::new(),
            spare: Vec::new(),
            full_from: 0,
            place_w: Vec::new(),
        };
        o.place_w = o.city.places.iter().map(|pl| place_weight(&o.pathogen, pl.kind)).collect();
        o.screened = (0..n as u32)
            .filter_map(|p| {
                let every = o
                    .city
                    .occupation(p)
                    .and_then(|occ| o.pathogen.testing.screening_interval_days.get(occ))
                    .copied()
                    .unwrap_or(0);
                (every > 0).then(|| (p, every, o.city.persons[p as usize].anchor))
            })
            .collect();
        o.warehouse_workers = (0..n as u32)
            .filter(|p| {
                let a = o.city.persons[*p as usize].anchor;
                a != NONE && o.city.places[a as usize].kind == PlaceKind::ColdChainWarehouse
            })
            .collect();
        let t = std::time::Instant::now();
        (o.beta, o.stretch, o.cdf) = o.calibrate();
        o.phase_seconds[0] = t.elapsed().as_secs_f64();
        Ok(o)
    }

    /// The share of infectiousness between `a` and `b` seconds after infection.
    fn infectiousness(&self, a: i64, b: i64) -> f64 {
        infectiousness_in(&self.cdf, a, b)
    }

    /// The instant the simulation has reached.
    pub fn now(&self) -> i64 {
        self.city.day_start(self.day) + self.hour as i64 * HOUR
    }

    /// The open day (not yet closed).
    pub fn day(&self) -> u32 {
        self.day
    }

    /// Orders a person into quarantine from `t` (Unix seconds): from then on they stay where
    /// they are put, and neither move nor infect. `t` must not be before the open day.
    pub fn quarantine(&mut self, person: u32, t: i64) -> Result<(), SimError> {
        self.confine(person, t, Confinement::Quarantine)
    }

    /// Isolates a person from `t` (as [`Self::quarantine`]).
    pub fn isolate(&mut self, person: u32, t: i64) -> Result<(), SimError> {
        self.confine(person, t, Confinement::Isolation)
    }

    fn confine(&mut self, person: u32, t: i64, _kind: Confinement) -> Result<(), SimError> {
        if person as usize >= self.confined.len() {
            return Err(SimError::State(format!("no person {person} (the city has {})", self.confined.len())));
        }
        let open = self.city.day_start(self.day);
        if t < open {
            return Err(SimError::State(format!(
                "cannot confine from {t}: day {} (from {open}) is already closed",
                self.day.saturating_sub(1)
            )));
        }
        self.confined[person as usize] = self.confined[person as usize].min(t);
        Ok(())
    }

    /// Whether a person is infected (at or before now).
    pub fn infected_at(&self, person: u32) -> Option<i64> {
        let t = self.t_inf[person as usize];
        (t != NEVER).then_some(t)
    }

    /// From day `day` on, each closed day's [`DayResult::chunks`] hold everyone's stays (the
    /// default from day 0). Before it, they hold the stays only of those whose day was not their
    /// weekly routine (ill, seeking care, quarantined, travelling), with everyone's rides: the
    /// outbreak itself reads the others' routine, which saves planning days whose visits no one
    /// writes.
    pub fn plan_everyone_from(&mut self, day: u32) {
        self.full_from = day;
    }

    /// Hands a closed day's buffers back, so that the next day plans into them instead of
    /// fresh memory (optional; only saves allocation).
    pub fn recycle(&mut self, result: DayResult) {
        self.spare = result.chunks;
    }

    /// Advances one hour; closes the day when it ends (then returns its results).
    pub fn step_hour(&mut self) -> Result<Option<DayResult>, SimError> {
        self.hour += 1;
        if self.hour == 24 { self.close_day().map(Some) } else { Ok(None) }
    }

    /// Advances to the end of the open day and closes it.
    pub fn step_day(&mut self) -> Result<DayResult, SimError> {
        self.close_day()
    }

    fn mods(&self, person: u32, day: u32) -> (DayMods, Care) {
        let p = person as usize;
        let start = self.city.day_start(day);
        let end = start + DAY;
        let c = self.confined[p];
        if c <= start {
            return (DayMods { home: true, ..Default::default() }, Care::None);
        }
        let until = (c < end).then_some(c);
        let (care_day, care) = self.care[p];
        if care_day == day && care != Care::None {
            let kind = if care == Care::FeverClinic { PlaceKind::FeverClinic } else { PlaceKind::Pharmacy };
            return (DayMods { home: false, care: Some(kind), until }, care);
        }
        if self.onset[p] != NO_TIME && self.ill_home[p] && self.onset[p] < start {
            return (DayMods { home: true, ..Default::default() }, Care::None);
        }
        // Illness from other causes: a fever-clinic visit or a drug purchase.
        let bg = &self.pathogen.background;
        let u = uniform(mix(self.city.params.seed ^ mix(0xB6 ^ (person as u64) << 20 ^ day as u64)));
        let fever = bg.fever_clinic_visits_per_100k / 100_000.0;
        let pharm = bg.pharmacy_buyers_per_100k / 100_000.0;
        if u < fever {
            return (DayMods { home: false, care: Some(PlaceKind::FeverClinic), until }, Care::FeverClinic);
        }
        if u < fever + pharm {
            let v = (u - fever) / pharm;
            return (
                DayMods { home: false, care: Some(PlaceKind::Pharmacy), until },
                Care::Pharmacy(draw_class(&bg.drug_shares, v)),
            );
        }
        (DayMods { home: false, care: None, until }, Care::None)
    }

    fn infect(&mut self, inf: Infection) {
        let p = inf.infectee as usize;
        debug_assert_eq!(self.t_inf[p], NEVER);
        self.t_inf[p] = inf.t;
        let nh = &self.pathogen.natural_history;
        let bh = &self.pathogen.behaviour;
        let mut r = rng(self.city.params.seed, Stream::History, inf.infectee as u64, 0);
        let asym = r.random_bool(nh.asymptomatic_share);
        self.rel[p] = if asym { nh.asymptomatic_relative_infectiousness as f32 } else { 1.0 };
        if !asym {
            let m = nh.incubation_mean_days;
            let s = nh.incubation_sd_days;
            let s2 = (1.0 + (s / m).powi(2)).ln();
            let ln = LogNormal::new(m.ln() - s2 / 2.0, s2.sqrt()).expect("validated");
            let incubation = ln.sample(&mut r);
            let onset = inf.t + (incubation * DAY as f64) as i64;
            self.onset[p] = onset;
            self.ill_home[p] = r.random_bool(bh.stay_home_when_ill);
            let u = r.random::<f64>();
            let onset_day = ((onset - self.city.t0).div_euclid(DAY)) as u32;
            let delay = r.random_range(0..=bh.care_delay_max_days);
            let v = r.random::<f64>();
            let care = if u < bh.fever_clinic_share {
                Care::FeverClinic
            } else if u < bh.fever_clinic_share + bh.pharmacy_share {
                Care::Pharmacy(draw_class(&bh.drug_shares, v))
            } else {
                Care::None
            };
            self.care[p] = (onset_day + delay, care);
        }
        self.imported[p] = inf.route == Route::Imported;
        self.active.push(inf.infectee);
        self.infections.push(inf);
    }

    fn close_day(&mut self) -> Result<DayResult, SimError> {
        let day = self.day;
        let start = self.city.day_start(day);
        let end = start + DAY;
        let seed = self.city.params.seed;
        let n = self.city.persons.len() as u32;
        let mut result = DayResult { day, ..Default::default() };
        let before = self.infections.len();

        // ---- seeds on day 0
        if day == 0 {
            let mut r = rng(seed, Stream::Seeding, 0, 0);
            let want = self.pathogen.importation.initial_infections.min(n);
            let mut seeded = 0;
            while seeded < want {
                let p = r.random_range(0..n);
                if self.t_inf[p as usize] == NEVER {
                    let t = start + r.random_range(0..DAY);
                    self.infect(Infection {
                        infectee: p,
                        infector: NONE,
                        t,
                        route: Route::Seed,
                        place: NONE,
                        trip: None,
                        batch: NONE,
                    });
                    seeded += 1;
                }
            }
        }

        // ---- everyone's day
        let clock = std::time::Instant::now();
        let chunks = person_chunks(n);
        let mut spare = std::mem::take(&mut self.spare);
        spare.resize_with(chunks.len(), DayOut::default);
        let this = &*self;
        // Each chunk's day, and who in it seeks care today (in person order).
        // A full day plans everyone's day (it is written, or pings are); other days plan only
        // those whose day is not their routine, and copy everyone else's rides.
        let full = day >= self.full_from || self.city.params.ping_share > 0.0;
        let planned: Vec<Planned> = chunks
            .par_iter()
            .zip(spare.into_par_iter())
            .map(|(&(a, b), mut o)| {
                o.clear();
                let mut cares = Vec::new();
                let mut odd = Vec::new();
                let city = &this.city;
                for p in a..b {
                    o.begin_person();
                    let (mods, care) = this.mods(p, day);
                    if care != Care::None {
                        cares.push((p, care));
                    }
                    let routine = mods == DayMods::default() && !crate::day::travels(city, p, day);
                    if !routine {
                        odd.push(p);
                    }
                    if full || !routine {
                        crate::day::day_of(city, p, day, mods, &mut o);
                    } else {
                        city.week.copy_rides(city, p, day, &mut o);
                    }
                }
                o.end();
                (o, cares, odd)
            })
            .collect();
        let mut outs = Vec::with_capacity(planned.len());
        let mut cares = Vec::with_capacity(planned.len());
        let mut odd_list = Vec::new();
        for (o, c, d) in planned {
            outs.push(o);
            cares.push(c);
            odd_list.extend(d);
        }
        let mut odd = vec![false; n as usize];
        for &p in &odd_list {
            odd[p as usize] = true;
        }

        self.phase_seconds[1] += clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        // ---- importations by arriving travellers
        let prevalence = self.pathogen.importation.traveller_prevalence.clone();
        for (person, key) in outs.iter().flat_map(|o| o.arrivals.iter().copied()).collect::<Vec<_>>() {
            if self.t_inf[person as usize] != NEVER {
                continue;
            }
            let (_, risk) = trip_origin(&self.city, key);
            let mut r = rng(seed, Stream::Seeding, person as u64, day as u64 + 1);
            if r.random_bool(prevalence.get(&risk).copied().unwrap_or(0.0)) {
                let (_, arr) = crate::day::long_trip_times(&self.city, key);
                let t = (start + arr - r.random_range(0..3 * DAY)).min(start - 1);
                self.infect(Infection {
                    infectee: person,
                    infector: NONE,
                    t,
                    route: Route::Imported,
                    place: NONE,
                    trip: Some(key),
                    batch: NONE,
                });
            }
        }

        let today = Today { day, full, outs: &outs, odd, odd_list };
        // ---- cold-chain goods
        self.goods(day, &today, &mut result);

        self.phase_seconds[2] += clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        // ---- transmission
        let new = self.transmit(day, &today);
        for inf in new {
            if self.t_inf[inf.infectee as usize] == NEVER {
                self.infect(inf);
            }
        }
        result.infections = self.infections[before..].to_vec();
        result.onsets = result.infections.iter().map(|inf| self.onset[inf.infectee as usize]).collect();

        self.phase_seconds[3] += clock.elapsed().as_secs_f64();
        let clock = std::time::Instant::now();
        // ---- observations
        self.observe(day, &today, &cares, &mut result);
        self.phase_seconds[4] += clock.elapsed().as_secs_f64();

        // ---- the active set: drop those past their infectious days
        let horizon = self.pathogen.natural_history.infectious_days as i64 * DAY;
        let t_inf = &self.t_inf;
        self.active.retain(|p| t_inf[*p as usize] + horizon > end);
        // In person order, so that the next day reads their state in memory order.
        self.active.sort_unstable();
        drop(today);
        result.chunks = outs;
        self.day += 1;
        self.hour = 0;
        Ok(result)
    }

    /// Infectiousness of a person over a day (0 when infected that day or confined before it),
    /// and the share of the day before confinement (for the household).
    fn day_infectiousness(&self, p: u32, start: i64) -> (f64, f64) {
        let t = self.t_inf[p as usize];
        if t == NEVER || t >= start {
            return (0.0, 0.0);
        }
        let c = self.confined[p as usize];
        if c <= start {
            return (0.0, 0.0);
        }
        let w = self.rel[p as usize] as f64 * self.infectiousness(start - t, start + DAY - t);
        let frac = if c < start + DAY { (c - start) as f64 / DAY as f64 } else { 1.0 };
        (w, frac)
    }

    /// New infections of day `day`; `odd` lists, per chunk, the persons whose day is not their
    /// weekly routine.
    fn transmit(&self, day: u32, today: &Today) -> Vec<Infection> {
        let start = self.city.day_start(day);
        let tr = &self.pathogen.transmission;
        let beta = self.beta;
        let city = &self.city;
        let place_w = &self.place_w;
        let week = &city.week;
        // Infectious persons today in person order: (person, infectiousness over the day, share
        // of the day free).
        let mut infectious: Vec<(u32, f64, f64)> = self
            .active
            .par_iter()
            .with_min_len(4096)
            .filter_map(|&p| {
                let (w, frac) = self.day_infectiousness(p, start);
                (w > 0.0).then_some((p, w, frac))
            })
            .collect();
        if infectious.is_empty() {
            return Vec::new();
        }
        infectious.par_sort_unstable_by_key(|x| x.0);
        // Households: (household, member, infectiousness at home), grouped by household.
        let mut at_home: Vec<(u32, u32, f64)> = infectious
            .par_iter()
            .with_min_len(4096)
            .map(|&(p, w, frac)| (city.persons[p as usize].household, p, w * frac))
            .collect();
        at_home.par_sort_unstable_by_key(|x| (x.0, x.1));
        // The stays of the infectious, read in parallel and gathered by place in person order
        // (a stable counting sort of lists in person order: the same whatever the thread count).
        let away: Vec<(u32, InfStay)> = infectious
            .par_chunks(1024)
            .flat_map_iter(|block| {
                let mut out = Vec::with_capacity(block.len() * 4);
                for &(p, w, _) in block {
                    today.each_away(city, p, |place, t_in, t_out| {
                        if t_out != NO_END && place_w[place as usize] > 0.0 {
                            out.push((place, (t_in, t_out, w, p)));
                        }
                    });
                }
                out
            })
            .collect();
        let (stays, lists) = group_by_place(&away, place_w.len());
        // place → index into `lists` (NO_SLOT: no infectious stay there today); a list is the
        // place and its range in `stays`.
        let mut place_slot = vec![NO_SLOT; place_w.len()];
        for (k, (place, _)) in lists.iter().enumerate() {
            place_slot[*place as usize] = k as u32;
        }
        let mut on_trip: HashMap<TripKey, Vec<InfRide>> = HashMap::default();
        for &(p, w, _) in &infectious {
            for r in today.rides_of(p) {
                on_trip.entry(r.trip).or_default().push((r.t_in, r.t_out, w, p, r.carriage, r.row));
            }
        }
        // Per place: its weight × crowd damping (by its usual number of visitors that weekday),
        // the infectious stays, and their cumulative pressure.
        let places: Vec<PlaceDay> = lists
            .into_par_iter()
            .map(|(place, range)| {
                let visitors = week.visits(day, place).len();
                let ratio = tr.crowd_reference / (visitors as f64).max(1.0);
                let crowd = if tr.crowd_exponent == 1.0 { ratio } else { ratio.powf(tr.crowd_exponent) }.min(1.0);
                let kw = beta * place_w[place as usize] * crowd;
                let list = &stays[range];
                (place, kw, list, Pressure::new(list))
            })
            .collect();
        let place_slot = &place_slot;
        let place_day = |place: u32| -> Option<&PlaceDay> {
            let k = place_slot[place as usize];
            (k != NO_SLOT).then(|| &places[k as usize])
        };
        let trip_hazard = |w: f64, lo: i64, hi: i64, d: f64| {
            beta * tr.trip_weight * (-d / tr.trip_row_scale).exp() * w * (hi - lo) as f64 / HOUR as f64
        };
        let seed = city.params.seed;
        let hh_h = beta * tr.household_weight * tr.household_hours;
        // Who can be infected today: not yet infected, not confined all day.
        let susceptible = |q: u32| self.t_inf[q as usize] == NEVER && self.confined[q as usize] > start;
        let stay_h = |s: &crate::day::Stay| -> f64 {
            match place_day(s.place) {
                Some((_, kw, _, pr)) if s.t_out != NO_END => kw * pr.exposure(s.t_in, s.t_out) / HOUR as f64,
                _ => 0.0,
            }
        };
        let ride_h = |p: u32, r: &crate::day::Ride| -> f64 {
            on_trip.get(&r.trip).map_or(0.0, |list| {
                list.iter()
                    .filter(|x| x.3 != p && x.4 == r.carriage)
                    .map(|x| {
                        let (lo, hi) = (x.0.max(r.t_in), x.1.min(r.t_out));
                        if hi > lo { trip_hazard(x.2, lo, hi, (x.5 as f64 - r.row as f64).abs()) } else { 0.0 }
                    })
                    .sum()
            })
        };
        // A source at a place for a stay [a, b) of `p` (by hazard, `u` uniform), and when.
        let source_at = |place: u32, p: u32, a: i64, b: i64, r: &mut Pcg| -> Option<Infection> {
            let (_, kw, list, _) = place_day(place)?;
            let overlaps: Vec<(f64, u32, i64, i64)> = list
                .iter()
                .filter_map(|&(t_in, t_out, w, q)| {
                    let (lo, hi) = (t_in.max(a), t_out.min(b));
                    (hi > lo && q != p).then(|| (kw * w * (hi - lo) as f64 / HOUR as f64, q, lo, hi))
                })
                .collect();
            let total: f64 = overlaps.iter().map(|o| o.0).sum();
            if total <= 0.0 {
                return None;
            }
            let (q, lo, hi) = pick(&overlaps, r.random::<f64>() * total, |o| o.0, |o| (o.1, o.2, o.3));
            Some(Infection {
                infectee: p,
                infector: q,
                t: r.random_range(lo..hi),
                route: Route::Place,
                place,
                trip: None,
                batch: NONE,
            })
        };
        // Each setting's infections are drawn apart, each with its own stream: a person exposed
        // in several settings is infected with probability 1 − Π exp(−hᵢ) = 1 − exp(−Σ hᵢ), the
        // same as one draw on the summed hazard, and by the setting that infects first.
        //
        // 1. The routine visitors of each infectious place (whoever keeps their routine today):
        // no visitor's hazard exceeds the place's whole-day pressure H, so the visitors are
        // visited by geometric skips at rate 1 − exp(−H) and each one met is infected with
        // probability (1 − exp(−h)) / (1 − exp(−H)): work in proportion to the infections, not to
        // the visitors.
        let mut found: Vec<Vec<Infection>> = places
            .par_iter()
            .map(|(place, kw, _, pr)| {
                let mut out = Vec::new();
                let (first, last) = pr.span();
                let whole = kw * pr.exposure(first, last) / HOUR as f64;
                if whole <= 0.0 {
                    return out;
                }
                let p_max = -(-whole).exp_m1();
                let visits = week.visits(day, *place);
                let mut r = rng(seed, Stream::Exposure, *place as u64, day as u64);
                let ln_miss = (-whole).max(-700.0); // ln(1 − p_max)
                let mut i = 0usize;
                loop {
                    // Visitors skipped before the next one met: ⌊ln U / ln(1 − p_max)⌋.
                    let u: f64 = r.random();
                    let skip = ((1.0 - u).ln() / ln_miss).floor();
                    if !skip.is_finite() || skip >= (visits.len() - i) as f64 {
                        break;
                    }
                    i += skip as usize;
                    let v = &visits[i];
                    i += 1;
                    let (a, b) = (start + v.t_in as i64, start + v.t_out as i64);
                    let h = kw * pr.exposure(a, b) / HOUR as f64;
                    let accept: f64 = r.random();
                    if h > 0.0
                        && accept * p_max < -(-h).exp_m1()
                        && susceptible(v.person)
                        && !today.odd[v.person as usize]
                        && let Some(inf) = source_at(*place, v.person, a, b, &mut r)
                    {
                        out.push(inf);
                    }
                    if i >= visits.len() {
                        break;
                    }
                }
                out
            })
            .collect();
        // 2. Those whose day is not their routine, over their own stays.
        found.push(
            today
                .odd_list
                .par_iter()
                .with_min_len(256)
                .filter(|q| susceptible(**q))
                .filter_map(|&q| {
                    let stays = today.planned_stays(q);
                    let h: f64 = stays.iter().map(stay_h).sum();
                    if h <= 0.0 {
                        return None;
                    }
                    let mut r = rng(seed, Stream::Transmit, q as u64, day as u64);
                    if !r.random_bool(-(-h).exp_m1()) {
                        return None;
                    }
                    let s = pick(stays, r.random::<f64>() * h, stay_h, |s| *s);
                    source_at(s.place, q, s.t_in, s.t_out, &mut r)
                })
                .collect(),
        );
        // 3. The riders of the infectious trips, per ride.
        if !on_trip.is_empty() {
            found.extend(
                today
                    .outs
                    .par_iter()
                    .map(|o| {
                        o.rides
                            .iter()
                            .filter(|r| on_trip.contains_key(&r.trip) && susceptible(r.person))
                            .filter_map(|ride| {
                                let h = ride_h(ride.person, ride);
                                if h <= 0.0 {
                                    return None;
                                }
                                let key = mix(ride.trip.0) ^ ride.person as u64;
                                let mut r = rng(seed, Stream::Exposure, key, (1 << 32) | day as u64);
                                if !r.random_bool(-(-h).exp_m1()) {
                                    return None;
                                }
                                let overlaps: Vec<(f64, u32, i64, i64)> = on_trip[&ride.trip]
                                    .iter()
                                    .filter_map(|x| {
                                        let (lo, hi) = (x.0.max(ride.t_in), x.1.min(ride.t_out));
                                        (hi > lo && x.3 != ride.person && x.4 == ride.carriage).then(|| {
                                            let d = (x.5 as f64 - ride.row as f64).abs();
                                            (trip_hazard(x.2, lo, hi, d), x.3, lo, hi)
                                        })
                                    })
                                    .collect();
                                let (q, lo, hi) = pick(&overlaps, r.random::<f64>() * h, |o| o.0, |o| (o.1, o.2, o.3));
                                Some(Infection {
                                    infectee: ride.person,
                                    infector: q,
                                    t: r.random_range(lo..hi),
                                    route: Route::Trip,
                                    place: NONE,
                                    trip: Some(ride.trip),
                                    batch: NONE,
                                })
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>(),
            );
        }
        // 4. The households of the infectious.
        let homes: Vec<Infection> = at_home
            .par_chunk_by(|a, b| a.0 == b.0)
            .flat_map_iter(|list| {
                let (first, size) = city.households[list[0].0 as usize];
                (first..first + size).filter(|q| susceptible(*q)).filter_map(move |q| {
                    let h: f64 = list.iter().filter(|x| x.1 != q).map(|x| hh_h * x.2).sum();
                    if h <= 0.0 {
                        return None;
                    }
                    let mut r = rng(seed, Stream::Exposure, q as u64, (2 << 32) | day as u64);
                    if !r.random_bool(-(-h).exp_m1()) {
                        return None;
                    }
                    let members: Vec<&(u32, u32, f64)> = list.iter().filter(|x| x.1 != q).collect();
                    let infector = pick(&members, r.random::<f64>() * h, |x| hh_h * x.2, |x| x.1);
                    // While the infector is at large (not after their isolation).
                    let free = (self.confined[infector as usize] - start).clamp(1, DAY);
                    Some(Infection {
                        infectee: q,
                        infector,
                        t: start + r.random_range(0..free),
                        route: Route::Household,
                        place: city.persons[q as usize].building,
                        trip: None,
                        batch: NONE,
                    })
                })
            })
            .collect();
        found.push(homes);
        // A person infected in several settings: by the first (then in the order above).
        let mut all: Vec<(usize, Infection)> = found.into_iter().flatten().enumerate().collect();
        all.sort_unstable_by_key(|(k, inf)| (inf.infectee, inf.t, *k));
        all.dedup_by_key(|(_, inf)| inf.infectee);
        all.into_iter().map(|(_, inf)| inf).collect()
    }

    fn goods(&mut self, day: u32, today: &Today, result: &mut DayResult) {
        let im = self.pathogen.importation.clone();
        if im.batches_per_warehouse_per_day <= 0.0 {
            return;
        }
        let seed = self.city.params.seed;
        let start = self.city.day_start(day);
        let date = self.city.params.start + jiff::Span::new().days(day as i64);
        let warehouses = self.city.by_kind[PlaceKind::ColdChainWarehouse as usize].places.clone();
        let ports: Vec<u32> = self.city.by_kind[PlaceKind::Other as usize]
            .places
            .iter()
            .copied()
            .filter(|p| self.city.places[*p as usize].port)
            .collect();
        let poisson = Poisson::new(im.batches_per_warehouse_per_day).expect("validated > 0");
        // Stays at warehouses today (workers on shift).
        let city = &self.city;
        let workers = &self.warehouse_workers;
        let chunks = person_chunks(city.persons.len() as u32);
        let on_shift: Vec<Vec<(u32, u32, i64, i64)>> = chunks
            .par_iter()
            .map(|&(a, b)| {
                let from = workers.partition_point(|p| *p < a);
                let to = workers.partition_point(|p| *p < b);
                let mut v = Vec::new();
                for &p in &workers[from..to] {
                    let anchor = city.persons[p as usize].anchor;
                    today.each_away(city, p, |place, t_in, t_out| {
                        if place == anchor {
                            v.push((place, p, t_in, t_out));
                        }
                    });
                }
                v
            })
            .collect();
        let mut shift: HashMap<u32, Vec<(u32, i64, i64)>> = HashMap::default();
        for (place, person, t_in, t_out) in on_shift.into_iter().flatten() {
            shift.entry(place).or_default().push((person, t_in, t_out));
        }
        const PRODUCTS: [&str; 5] = ["frozen pork", "frozen beef", "frozen shrimp", "frozen salmon", "frozen chicken"];
        const COUNTRIES: [&str; 6] = ["BR", "AR", "EC", "NO", "NZ", "RU"];
        for &w in &warehouses {
            let mut r = rng(seed, Stream::Goods, w as u64, day as u64);
            let count = poisson.sample(&mut r) as u32;
            for _ in 0..count {
                let b = self.next_batch;
                self.next_batch += 1;
                let id = format!("GB{:07}", b + 1);
                let country = COUNTRIES[r.random_range(0..COUNTRIES.len())];
                let plant = format!("{country}-PLANT-{:02}", r.random_range(1..=20));
                let port = ports[r.random_range(0..ports.len())];
                let contaminated = r.random_bool(im.contaminated_share);
                result.goods_batches.push(GoodsBatch {
                    id: id.clone(),
                    product: PRODUCTS[r.random_range(0..PRODUCTS.len())].to_string(),
                    origin_country: country.to_string(),
                    plant: Some(plant),
                    port: Some(self.ids.places.get(port).to_string()),
                    entry_date: Some(date),
                    inspection_cert: Some(format!("IC-{}", b + 1)),
                    test_cert: Some(format!("TC-{}", b + 1)),
                    disinfection_cert: Some(format!("DC-{}", b + 1)),
                    trace_code: Some(format!("TRACE-{:08X}", mix(seed ^ b as u64) as u32)),
                    parent_batch_id: None,
                });
                result.goods_hops.push(GoodsHop {
                    batch_id: id.clone(),
                    kind: HopKind::Transfer,
                    from_place: Some(self.ids.places.get(port).to_string()),
                    to_place: Some(self.ids.places.get(w).to_string()),
                    to_batch_id: None,
                    date,
                    quantity: Some(r.random_range(5..40) as f64),
                });
                // Sampled at the warehouse at 10:00, reported the next morning.
                let positive = contaminated && r.random_bool(im.goods_test_sensitivity);
                let sampled = start + 10 * HOUR;
                self.next_test += 1;
                result.lab_tests.push(lab_test_record(
                    &self.ids,
                    self.next_test,
                    SubjectKind::Goods,
                    id.clone(),
                    positive,
                    sampled,
                    sampled + 20 * HOUR,
                    w,
                    None,
                ));
                if contaminated {
                    for &(person, t_in, t_out) in shift.get(&w).map(|v| v.as_slice()).unwrap_or(&[]) {
                        if self.t_inf[person as usize] == NEVER && r.random_bool(im.worker_infection_probability) {
                            let t = r.random_range(t_in..t_out.max(t_in + 1));
                            self.infect(Infection {
                                infectee: person,
                                infector: NONE,
                                t,
                                route: Route::Goods,
                                place: w,
                                trip: None,
                                batch: b,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Whether a test of person `p` taken at `t` (Unix seconds) finds the infection (the
    /// pathogen's `detectable_from_days` and `detectable_for_days` after infection).
    pub fn detectable(&self, p: u32, t: i64) -> bool {
        let ti = self.t_inf[p as usize];
        if ti == NEVER {
            return false;
        }
        let nh = &self.pathogen.natural_history;
        let from = ti + (nh.detectable_from_days * DAY as f64) as i64;
        let to = from + (nh.detectable_for_days * DAY as f64) as i64;
        t >= from && t < to
    }

    fn observe(&mut self, day: u32, today: &Today, cares: &[Vec<(u32, Care)>], result: &mut DayResult) {
        let seed = self.city.params.seed;
        let date = self.city.params.start + jiff::Span::new().days(day as i64);
        let te = self.pathogen.testing.clone();
        let mut fever: std::collections::BTreeMap<u32, (u32, u32)> = Default::default();
        let mut pharmacy: std::collections::BTreeMap<(u32, u8), u32> = Default::default();
        let mut screening: std::collections::BTreeMap<u32, (u32, u32)> = Default::default();
        // (person, sampled at, site, detection) of every person test today, in person order.
        let mut tests: Vec<(u32, i64, u32, DetectionRoute)> = Vec::new();
        // What each chunk saw, in person order (replayed in chunk order below).
        enum Seen {
            Fever(u32),
            Pharmacy(u32, u8),
            Screened(u32),
            Test(u32, i64, u32, DetectionRoute),
        }
        let this = &*self;
        let chunks = person_chunks(self.city.persons.len() as u32);
        let seen: Vec<Vec<Seen>> = today
            .outs
            .par_iter()
            .zip(cares.par_iter())
            .zip(chunks.par_iter())
            .map(|((o, cares), &(a, b))| {
                // (person, care first then screening, what) in person order.
                let mut seen: Vec<(u32, u8, Seen)> = Vec::new();
                for &(p, care) in cares {
                    let kind = if care == Care::FeverClinic { PlaceKind::FeverClinic } else { PlaceKind::Pharmacy };
                    if let Some(s) = o.stays_of(p - a).iter().find(|s| this.city.places[s.place as usize].kind == kind)
                    {
                        match care {
                            Care::FeverClinic => {
                                seen.push((p, 0, Seen::Fever(s.place)));
                                seen.push((p, 1, Seen::Test(p, s.t_in + 15 * 60, s.place, DetectionRoute::Community)));
                            }
                            Care::Pharmacy(class) => seen.push((p, 0, Seen::Pharmacy(s.place, class))),
                            Care::None => {}
                        }
                    }
                }
                let screened = &this.screened;
                let from = screened.partition_point(|x| x.0 < a);
                let to = screened.partition_point(|x| x.0 < b);
                for &(p, every, anchor) in &screened[from..to] {
                    if !(day + p).is_multiple_of(every) {
                        continue;
                    }
                    let mut at = None;
                    today.each_away(&this.city, p, |place, t_in, _| {
                        if place == anchor && at.is_none() {
                            at = Some(t_in);
                        }
                    });
                    if let Some(t_in) = at {
                        seen.push((p, 2, Seen::Screened(anchor)));
                        seen.push((p, 3, Seen::Test(p, t_in + 30 * 60, anchor, DetectionRoute::Screening)));
                    }
                }
                seen.sort_by_key(|x| (x.0, x.1));
                seen.into_iter().map(|x| x.2).collect()
            })
            .collect();
        for s in seen.into_iter().flatten() {
            match s {
                Seen::Fever(place) => fever.entry(place).or_default().0 += 1,
                Seen::Pharmacy(place, class) => *pharmacy.entry((place, class)).or_default() += 1,
                Seen::Screened(place) => screening.entry(place).or_default().0 += 1,
                Seen::Test(p, t, place, route) => tests.push((p, t, place, route)),
            }
        }
        // The tests' draws and records in parallel (each test's own stream; numbered in order),
        // then who becomes a case, in order.
        let first = self.next_test;
        let this = &*self;
        let drawn: Vec<(LabTest, bool, i64, f64, f64)> = tests
            .par_iter()
            .enumerate()
            .with_min_len(256)
            .map(|(k, &(p, sampled, site, _))| {
                let mut r = rng(seed, Stream::Observe, p as u64, day as u64);
                let positive = this.detectable(p, sampled) && r.random_bool(te.pcr_sensitivity);
                let delay = r.random_range(te.lab_delay_min_hours..=te.lab_delay_max_hours);
                let reported = sampled + (delay * HOUR as f64) as i64;
                let ct = 18.0 + r.random::<f64>() * 17.0;
                let test = lab_test_record(
                    &this.ids,
                    first + k as u64 + 1,
                    SubjectKind::Person,
                    this.ids.persons.get(p).to_string(),
                    positive,
                    sampled,
                    reported,
                    site,
                    Some((ct * 10.0).round() / 10.0),
                );
                // The draws of a case's report delay and severity, should it become one.
                let (u_report, u_severity) = if positive { (r.random(), r.random()) } else { (0.0, 0.0) };
                (test, positive, reported, u_report, u_severity)
            })
            .collect();
        self.next_test += tests.len() as u64;
        for ((p, sampled, site, route), (test, positive, reported, u_report, u_severity)) in
            tests.into_iter().zip(drawn)
        {
            result.lab_tests.push(test);
            if positive {
                match route {
                    DetectionRoute::Screening => screening.entry(site).or_default().1 += 1,
                    _ => fever.entry(site).or_default().1 += 1,
                }
            }
            if positive && !self.has_case[p as usize] {
                self.has_case[p as usize] = true;
                self.next_case += 1;
                let report = reported + (u_report * te.report_delay_max_hours * HOUR as f64) as i64;
                let onset = self.onset[p as usize];
                let symptomatic = onset != NO_TIME && onset <= report;
                let imported = self.imported[p as usize];
                let severity = if !symptomatic {
                    Severity::Asymptomatic
                } else {
                    match u_severity {
                        x if x < 0.85 => Severity::Mild,
                        x if x < 0.96 => Severity::Moderate,
                        x if x < 0.99 => Severity::Severe,
                        _ => Severity::Critical,
                    }
                };
                result.cases.push(Case {
                    id: format!("K{:07}", self.next_case),
                    person_id: self.ids.persons.get(p).to_string(),
                    classification: if symptomatic { Classification::Confirmed } else { Classification::Asymptomatic },
                    onset: symptomatic.then(|| local_date(&self.city, onset)),
                    sampled_at: Some(ts(sampled)),
                    reported_at: ts(report),
                    imported,
                    detection: Some(route),
                    severity: Some(severity),
                    outcome: Some(Outcome::Ongoing),
                    vaccine_doses: None,
                    infector_case_id: None,
                    cluster: None,
                });
            }
        }
        let area = |place: u32| {
            Some(crate::write::area_id(crate::city::Level::Building, self.city.places[place as usize].building))
        };
        for (place, (count, positives)) in fever {
            result.sentinel.push(SentinelRecord {
                place_id: self.ids.places.get(place).to_string(),
                area_id: area(place),
                feed: SentinelFeed::FeverClinic,
                date,
                category: Some("pcr".into()),
                count,
                positives: Some(positives),
            });
        }
        for ((place, class), count) in pharmacy {
            result.sentinel.push(SentinelRecord {
                place_id: self.ids.places.get(place).to_string(),
                area_id: area(place),
                feed: SentinelFeed::Pharmacy,
                date,
                category: Some(DRUG_CLASSES[class as usize].to_string()),
                count,
                positives: None,
            });
        }
        for (place, (count, positives)) in screening {
            result.sentinel.push(SentinelRecord {
                place_id: self.ids.places.get(place).to_string(),
                area_id: area(place),
                feed: SentinelFeed::Screening,
                date,
                category: Some("pcr".into()),
                count,
                positives: Some(positives),
            });
        }
    }

    /// Finds `beta`, the stretch of the infectiousness profile and its hourly CDF: on a sample
    /// of persons, each infected in turn on each weekday of a pilot week, the strength of each
    /// contact per day of their infection (household, places, trips; staying home when ill);
    /// for a stretch, `beta` is solved so that the case-weighted expected number of secondary
    /// infections (each contact infected at most once: `1 - exp(-Σ hazard)`, day by day) meets
    /// `target_r`, and the stretch so that the same sum discounted by `exp(-r τ)` at the target
    /// growth rate `r` is 1 (Euler–Lotka).
    fn calibrate(&self) -> (f64, f64, Vec<f64>) {
        let city = &self.city;
        let n = city.persons.len() as u32;
        let tr = &self.pathogen.transmission;
        let samples = n.min(2_000);
        let stride = (n / samples).max(1);
        let sample: Vec<u32> = (0..samples).map(|i| i * stride).collect();
        // contacts[i][dow]: (contact, hazard per unit infectiousness and beta)
        let mut contacts: Vec<Vec<Vec<(u32, f64)>>> = vec![vec![Vec::new(); 7]; sample.len()];
        // Contacts in crowds (places with more than CROWDED visitors that day) are each weak: only
        // their sum is kept, where 1 - exp(-x) ≈ x.
        const CROWDED: f64 = 100.0;
        let mut crowd_sum: Vec<[f64; 7]> = vec![[0.0; 7]; sample.len()];
        let week = &city.week;
        for dow in 0..7u32 {
            // The samples' routine days (journeys left out: the pilot reads routines only).
            let base = city.day_start(dow);
            // The samples' own rides (read by person), then one pass over everyone's for the
            // riders of those trips.
            let own: Vec<Vec<crate::day::Ride>> =
                sample.iter().map(|&p| week.rides_of(p, dow, base).collect()).collect();
            let wanted_trips: FxHashSet<TripKey> = own.iter().flatten().map(|r| r.trip).collect();
            let mut by_trip: HashMap<TripKey, Vec<PilotRide>> = HashMap::default();
            if !wanted_trips.is_empty() {
                for r in week.rides(dow, base) {
                    if wanted_trips.contains(&r.trip) {
                        by_trip.entry(r.trip).or_default().push((r.person, r.t_in, r.t_out, r.carriage, r.row));
                    }
                }
            }
            // The crowded places the samples visit, each with its occupancy over the day.
            let mut crowded_places: Vec<u32> = sample
                .iter()
                .flat_map(|&p| week.stays_of(p, dow, base))
                .filter(|&(place, _, t_out)| {
                    self.place_w[place as usize] > 0.0
                        && t_out != NO_END
                        && week.visits(dow, place).len() as f64 > CROWDED
                })
                .map(|(place, _, _)| place)
                .collect();
            // A place visited by few samples is summed visit by visit (a pass each); one visited
            // by many gets the sorted occupancy (the same integers).
            crowded_places.sort_unstable();
            let many: Vec<u32> =
                crowded_places.chunk_by(|a, b| a == b).filter(|run| run.len() > 8).map(|run| run[0]).collect();
            let occupancy: HashMap<u32, Occupancy> =
                many.par_iter().map(|&place| (place, Occupancy::new(week.visits(dow, place)))).collect();
            let per_sample: Vec<(Vec<(u32, f64)>, f64)> = sample
                .par_iter()
                .map(|&p| {
                    let mut list = Vec::new();
                    let mut crowded_sum = 0.0;
                    for (place, t_in, t_out) in week.stays_of(p, dow, base) {
                        let kw = self.place_w[place as usize];
                        if kw <= 0.0 || t_out == NO_END {
                            continue;
                        }
                        let visits = week.visits(dow, place);
                        let visitors = visits.len() as f64;
                        let crowd = (tr.crowd_reference / visitors.max(1.0)).powf(tr.crowd_exponent).min(1.0);
                        if visitors > CROWDED {
                            // Everyone else's overlap with the stay: the occupancy's integral over
                            // it, less the sample's own visit (the stay itself).
                            let (a, b) = (t_in - base, t_out - base);
                            let overlap = match occupancy.get(&place) {
                                Some(occupancy) => occupancy.overlap(a, b),
                                None => visits
                                    .iter()
                                    .map(|v| ((v.t_out as i64).min(b) - (v.t_in as i64).max(a)).max(0))
                                    .sum::<i64>(),
                            } - (b - a);
                            crowded_sum += kw * crowd * overlap as f64 / HOUR as f64;
                            continue;
                        }
                        for v in visits {
                            let overlap = (base + v.t_out as i64).min(t_out) - (base + v.t_in as i64).max(t_in);
                            if v.person != p && overlap > 0 {
                                list.push((v.person, kw * crowd * overlap as f64 / HOUR as f64));
                            }
                        }
                    }
                    (list, crowded_sum)
                })
                .collect();
            for (i, (list, crowded)) in per_sample.into_iter().enumerate() {
                contacts[i][dow as usize] = list;
                crowd_sum[i][dow as usize] = crowded;
            }
            for (i, r) in own.iter().enumerate().flat_map(|(i, rides)| rides.iter().map(move |r| (i, r))) {
                for &(q, t_in, t_out, carriage, row) in &by_trip[&r.trip] {
                    let overlap = t_out.min(r.t_out) - t_in.max(r.t_in);
                    if q != r.person && overlap > 0 && carriage == r.carriage {
                        let d = (row as f64 - r.row as f64).abs();
                        let h = tr.trip_weight * (-d / tr.trip_row_scale).exp() * overlap as f64 / HOUR as f64;
                        contacts[i][dow as usize].push((q, h));
                    }
                }
            }
        }
        // Per sample and weekday: the strongest contacts kept one by one (their infection
        // probability saturates), the many weak ones (crowds) summed, where 1 - exp(-x) ≈ x.
        const KEEP: usize = 48;
        let split: Vec<Vec<Contacts>> = contacts
            .into_par_iter()
            .zip(crowd_sum.into_par_iter())
            .map(|(per_day, crowded)| {
                per_day
                    .into_iter()
                    .zip(crowded)
                    .map(|(list, crowded)| {
                        let mut sum: HashMap<u32, f64> = HashMap::default();
                        for (q, h) in list {
                            *sum.entry(q).or_default() += h;
                        }
                        let mut v: Vec<(u32, f64)> = sum.into_iter().collect();
                        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                        let weak: f64 = crowded + v.iter().skip(KEEP).map(|c| c.1).sum::<f64>();
                        v.truncate(KEEP);
                        (v, weak)
                    })
                    .collect()
            })
            .collect();
        // Each sample infected at a random time of each start weekday: its contacts' strength
        // per day of its infection (without its infectiousness, which depends on the time scale):
        // the strongest one by one (their infection saturates), the rest summed per day.
        let nh = &self.pathogen.natural_history;
        let bh = &self.pathogen.behaviour;
        let m = nh.incubation_mean_days;
        let s2 = (1.0 + (nh.incubation_sd_days / m).powi(2)).ln();
        let ln = LogNormal::new(m.ln() - s2 / 2.0, s2.sqrt()).expect("validated");
        let days = nh.infectious_days as usize + 1;
        const STRONG: usize = 24;
        let cases: Vec<PilotCase> = (0..sample.len() * 7)
            .into_par_iter()
            .map(|k| {
                let (i, first) = (k / 7, (k % 7) as u32);
                let p = sample[i];
                let mut r = rng(city.params.seed, Stream::History, p as u64, 1 + first as u64);
                let asym = r.random_bool(nh.asymptomatic_share);
                let rel = if asym { nh.asymptomatic_relative_infectiousness } else { 1.0 };
                let t_inf = r.random_range(0..DAY);
                let onset = if asym { NO_TIME } else { t_inf + (ln.sample(&mut r) * DAY as f64) as i64 };
                let home = !asym && r.random_bool(bh.stay_home_when_ill);
                let mut per: HashMap<u32, Vec<f64>> = HashMap::default();
                let mut weak = vec![0.0; days];
                let person = &city.persons[p as usize];
                let (hf, hs) = city.households[person.household as usize];
                #[allow(clippy::needless_range_loop)] // d is the day, indexing several lists
                for d in 1..days {
                    let start = d as i64 * DAY;
                    for q in hf..hf + hs {
                        if q != p {
                            per.entry(q).or_insert_with(|| vec![0.0; days])[d] +=
                                tr.household_weight * tr.household_hours;
                        }
                    }
                    if home && onset < start {
                        continue;
                    }
                    let dow = (first as usize + d) % 7;
                    let (strong, rest) = &split[i][dow];
                    for &(q, c) in strong {
                        per.entry(q).or_insert_with(|| vec![0.0; days])[d] += c;
                    }
                    weak[d] += rest;
                }
                // Strongest first (each contact's total computed once).
                let mut v: Vec<(f64, u32, Vec<f64>)> =
                    per.into_iter().map(|(q, c)| (c.iter().sum::<f64>(), q, c)).collect();
                v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                for (_, _, c) in v.iter().skip(STRONG) {
                    for d in 0..days {
                        weak[d] += c[d];
                    }
                }
                v.truncate(STRONG);
                PilotCase { rel, t_inf, strong: v.into_iter().flat_map(|(_, _, c)| c).collect(), weak }
            })
            .collect();
        // For a time scale and beta: per sample, its expected secondary infections R and their
        // Laplace transform at the target growth rate, L = Σ P(infection on day d) e^(-r τ_d).
        let target_growth = std::f64::consts::LN_2 / tr.target_doubling_days;
        let (k, theta) = self.pathogen.generation_gamma();
        // Infectiousness per day of infection and the discount e^(-r τ_d), for a time scale.
        let profile = |cdf: &[f64]| -> Vec<(Vec<f64>, Vec<f64>)> {
            cases
                .par_iter()
                .map(|c| {
                    let mut w = vec![0.0; days];
                    let mut disc = vec![0.0; days];
                    for d in 1..days {
                        let start = d as i64 * DAY;
                        w[d] = c.rel * infectiousness_in(cdf, start - c.t_inf, start + DAY - c.t_inf);
                        disc[d] = (-target_growth * (start + DAY / 2 - c.t_inf) as f64 / DAY as f64).exp();
                    }
                    (w, disc)
                })
                .collect()
        };
        // Per case and contact j, the probability p_j of infecting j (at most once over the days:
        // 1 − Π_d exp(−β w_d c_jd) = 1 − exp(−β Σ_d w_d c_jd)), and its discounted share l_j
        // (Σ_d P(infected on day d) e^(−r τ_d)); per case the sums R = Σ p_j + β Σ_d w_d weak_d and
        // L likewise, Σ p_j², Σ p_j l_j and Σ p_j over the strong contacts only.
        let eval = |profile: &[(Vec<f64>, Vec<f64>)], beta: f64| -> Vec<[f64; 5]> {
            cases
                .par_iter()
                .zip(profile.par_iter())
                .map(|(c, (w, disc))| {
                    let mut x = [0.0; 5];
                    for contact in c.strong.chunks(days) {
                        let (mut survive, mut pj, mut lj) = (1.0, 0.0, 0.0);
                        for d in 1..days {
                            if contact[d] > 0.0 && w[d] > 0.0 {
                                let escape = (-beta * w[d] * contact[d]).exp();
                                let p = survive * (1.0 - escape);
                                survive *= escape;
                                pj += p;
                                lj += p * disc[d];
                            }
                        }
                        x[0] += pj;
                        x[1] += lj;
                        x[2] += pj * pj;
                        x[3] += pj * lj;
                    }
                    x[4] = x[0];
                    for d in 1..days {
                        let p = beta * w[d] * c.weak[d];
                        x[0] += p;
                        x[1] += p * disc[d];
                    }
                    x
                })
                .collect()
        };
        // The same for R alone, from each case's contacts' summed exposure (Σ_d w_d c_jd, and
        // Σ_d w_d weak_d last): one exponential per contact instead of one per contact-day.
        let exposures = |profile: &[(Vec<f64>, Vec<f64>)]| -> Vec<Vec<f64>> {
            cases
                .par_iter()
                .zip(profile.par_iter())
                .map(|(c, (w, _))| {
                    let mut e: Vec<f64> =
                        c.strong.chunks(days).map(|contact| (1..days).map(|d| w[d] * contact[d]).sum()).collect();
                    e.push((1..days).map(|d| w[d] * c.weak[d]).sum());
                    e
                })
                .collect()
        };
        let eval_r = |exposures: &[Vec<f64>], beta: f64| -> Vec<[f64; 5]> {
            exposures
                .par_iter()
                .map(|e| {
                    let (weak, strong) = e.split_last().expect("the weak sum is last");
                    let mut x = [0.0; 5];
                    for &a in strong {
                        let pj = -(-beta * a).exp_m1();
                        x[0] += pj;
                        x[2] += pj * pj;
                    }
                    x[4] = x[0];
                    x[0] += beta * weak;
                    x
                })
                .collect()
        };
        // Who is infected in a growing epidemic: a sample in proportion to the hazard it
        // receives, which (contacts being symmetric) is its own expected number of secondary
        // infections; and its infector is one of its contacts j, with probability ∝ p_j, who
        // is no longer susceptible: R = Σ_i (R_i² - Σ_j p_j²) / Σ_i R_i, over samples and starts.
        let combine = |per_case: &[[f64; 5]]| -> (f64, f64) {
            let (mut num_r, mut num_l, mut den) = (0.0, 0.0, 0.0);
            for per_sample in per_case.chunks(7) {
                let weight = per_sample.iter().map(|x| x[0]).sum::<f64>() / 7.0;
                for x in per_sample {
                    // Its close contacts (household, team, class) were also exposed to its
                    // infector, who came from among them with probability `close`: those
                    // already infected are lost too (p_jk ≈ p_ik for contacts of both).
                    let close = if x[0] > 0.0 { x[4] / x[0] } else { 0.0 };
                    num_r += (weight * x[0] - x[2] * (1.0 + close)) / 7.0;
                    num_l += (weight * x[1] - x[3] * (1.0 + close)) / 7.0;
                }
                den += weight;
            }
            if den > 0.0 { (num_r / den, num_l / den) } else { (0.0, 0.0) }
        };
        // What the pilot aims at: R read from the ground truth of a clustered city falls short
        // of the pilot's expectation by the profile's `clustering_gain`.
        let pilot_r = tr.target_r * tr.clustering_gain;
        // The last beta found: the next stretch's beta is near it.
        let last = std::cell::Cell::new(0.0f64);
        let beta_for = |profile: &[(Vec<f64>, Vec<f64>)]| -> (f64, f64) {
            let exposures = exposures(profile);
            let r = |beta: f64| combine(&eval_r(&exposures, beta)).0;
            let guess = last.get();
            let (mut lo, mut hi) = if guess > 0.0 { (guess * 0.7, guess * 1.4) } else { (0.0, 1.0) };
            while r(hi) < pilot_r && hi < 1e9 {
                (lo, hi) = (hi, hi * 2.0);
            }
            while lo > 0.0 && r(lo) > pilot_r {
                (lo, hi) = (lo * 0.5, lo);
            }
            let beta = solve(|b| r(b) - pilot_r, lo, hi, 1e-7);
            last.set(beta);
            (beta, combine(&eval(profile, beta)).1)
        };
        // The time scale: a longer infectiousness profile gives a longer realised generation
        // time, so a smaller L; L = 1 is Euler–Lotka at the target growth rate.
        // (beta, L) per stretch, each stretch solved once.
        let solved: std::cell::RefCell<Vec<(f64, (f64, f64))>> = Default::default();
        let at = |stretch: f64| -> (f64, f64) {
            if let Some(&(_, found)) = solved.borrow().iter().find(|(s, _)| *s == stretch) {
                return found;
            }
            let found = beta_for(&profile(&gamma_cdf(k, theta * stretch, nh.infectious_days)));
            solved.borrow_mut().push((stretch, found));
            found
        };
        let l_minus_1 = |stretch: f64| at(stretch).1 - 1.0;
        let (lo, hi) = (0.5, 3.0);
        let stretch = if l_minus_1(lo) <= 0.0 {
            lo
        } else if l_minus_1(hi) >= 0.0 {
            hi
        } else {
            solve(l_minus_1, lo, hi, 1e-6)
        };
        let (beta, _) = at(stretch);
        (beta, stretch, gamma_cdf(k, theta * stretch, nh.infectious_days))
    }
}

/// Lab test number `number` (its id `LT…`).
#[allow(clippy::too_many_arguments)]
fn lab_test_record(
    ids: &CityIds,
    number: u64,
    kind: SubjectKind,
    subject: String,
    positive: bool,
    sampled: i64,
    reported: i64,
    site: u32,
    ct: Option<f64>,
) -> LabTest {
    LabTest {
        id: format!("LT{number:09}"),
        subject_kind: kind,
        subject_id: subject,
        pool_id: None,
        method: TestMethod::Pcr,
        result: if positive { TestResult::Positive } else { TestResult::Negative },
        ct: if positive { ct } else { None },
        sampled_at: ts(sampled),
        reported_at: Some(ts(reported)),
        lab_id: Some(ids.places.get(site).to_string()),
        variant: None,
    }
}

/// A pilot sample infected on one start weekday: its relative infectiousness, the second of
/// its day it is infected, its strongest contacts' strength per day (`days` values each), and
/// the summed strength of the others per day.
struct PilotCase {
    rel: f64,
    t_inf: i64,
    strong: Vec<f64>,
    weak: Vec<f64>,
}

/// The routine occupancy of a crowded place on a weekday: its visits' check-ins and check-outs
/// sorted (seconds from midnight), each with the prefix sums of the times before it, so that the
/// total overlap of all visits with an interval is four binary searches, in exact integers.
struct Occupancy {
    ins: Vec<i64>,
    in_sums: Vec<i64>,
    outs: Vec<i64>,
    out_sums: Vec<i64>,
}

impl Occupancy {
    fn new(visits: &[crate::day::PlaceVisit]) -> Occupancy {
        let sorted = |times: Vec<i64>| -> (Vec<i64>, Vec<i64>) {
            let mut times = times;
            times.sort_unstable();
            let mut sums = Vec::with_capacity(times.len() + 1);
            sums.push(0);
            for &t in &times {
                sums.push(sums[sums.len() - 1] + t);
            }
            (times, sums)
        };
        let (ins, in_sums) = sorted(visits.iter().map(|v| v.t_in as i64).collect());
        let (outs, out_sums) = sorted(visits.iter().map(|v| v.t_out as i64).collect());
        Occupancy { ins, in_sums, outs, out_sums }
    }

    /// Σ over the visits of the length of their overlap with `[a, b)`: ∫ₐᵇ (visitors in − visitors
    /// out) dt, where ∫ₐᵇ #{t_v ≤ t} dt = G(b) − G(a) with G(x) = Σ (x − t_v)⁺.
    fn overlap(&self, a: i64, b: i64) -> i64 {
        let g = |times: &[i64], sums: &[i64], x: i64| -> i64 {
            let k = times.partition_point(|&t| t < x);
            k as i64 * x - sums[k]
        };
        (g(&self.ins, &self.in_sums, b) - g(&self.ins, &self.in_sums, a))
            - (g(&self.outs, &self.out_sums, b) - g(&self.outs, &self.out_sums, a))
    }
}

/// A root of an increasing or decreasing `f` with a sign change over `[lo, hi]`, to
/// `|f| < tolerance` (Illinois regula falsi: a few evaluations for a smooth `f`).
fn solve(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64, tolerance: f64) -> f64 {
    let (mut f_lo, mut f_hi) = (f(lo), f(hi));
    if f_lo == 0.0 {
        return lo;
    }
    if f_hi == 0.0 || f_lo.signum() == f_hi.signum() {
        return hi;
    }
    let mut side = 0;
    for _ in 0..60 {
        let x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo);
        let fx = f(x);
        if fx.abs() < tolerance || (hi - lo).abs() <= 1e-9 * x.abs().max(1e-12) {
            return x;
        }
        if fx.signum() == f_hi.signum() {
            hi = x;
            f_hi = fx;
            if side == -1 {
                f_lo /= 2.0;
            }
            side = -1;
        } else {
            lo = x;
            f_lo = fx;
            if side == 1 {
                f_hi /= 2.0;
            }
            side = 1;
        }
    }
    (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
}

/// Hourly CDF of a gamma (shape `k`, scale `theta` in days), cut at `days` and renormalised.
fn gamma_cdf(k: f64, theta: f64, days: u32) -> Vec<f64> {
    let hours = days as usize * 24;
    let mut cdf = vec![0.0; hours + 1];
    let ln_norm = ln_gamma(k) + k * theta.ln();
    let pdf = |d: f64| if d <= 0.0 { 0.0 } else { ((k - 1.0) * d.ln() - d / theta - ln_norm).exp() };
    for h in 1..=hours {
        // Simpson's rule over the hour (in days).
        let (a, b) = ((h - 1) as f64 / 24.0, h as f64 / 24.0);
        cdf[h] = cdf[h - 1] + (b - a) / 6.0 * (pdf(a) + 4.0 * pdf((a + b) / 2.0) + pdf(b));
    }
    let total = cdf[hours];
    for c in &mut cdf {
        *c /= total;
    }
    cdf
}

/// The share of infectiousness between `a` and `b` seconds after infection, from an hourly CDF.
fn infectiousness_in(cdf: &[f64], a: i64, b: i64) -> f64 {
    let at = |s: i64| -> f64 {
        if s <= 0 {
            return 0.0;
        }
        let h = s as f64 / HOUR as f64;
        let i = h.floor() as usize;
        if i + 1 >= cdf.len() {
            return 1.0;
        }
        let f = h - i as f64;
        cdf[i] * (1.0 - f) + cdf[i + 1] * f
    };
    at(b) - at(a)
}

/// An infectious person's stay at a place: (t_in, t_out, infectiousness, person).
type InfStay = (i64, i64, f64, u32);
/// An infectious person's ride: (t_in, t_out, infectiousness, person, carriage, row).
type InfRide = (i64, i64, f64, u32, u8, u8);
/// A place on a day: weight × crowd damping, infectious stays (t_in, t_out, w, person), pressure.
type PlaceDay<'a> = (u32, f64, &'a [InfStay], Pressure);
/// A ride in the pilot week: (person, t_in, t_out, carriage, row).
type PilotRide = (u32, i64, i64, u8, u8);
/// A sample's contacts on a weekday: the strongest one by one, the sum of the rest.
type Contacts = (Vec<(u32, f64)>, f64);

/// A chunk's planned day, its care seekers and the persons off their routine.
type Planned = (DayOut, Vec<(u32, Care)>, Vec<u32>);

/// A day as the outbreak sees it: on a full day everyone's planned day; on other days the
/// planned days of those whose day is not their routine (`odd`), and everyone's rides.
struct Today<'a> {
    day: u32,
    full: bool,
    outs: &'a [DayOut],
    odd: Vec<bool>,
    odd_list: Vec<u32>,
}

impl Today<'_> {
    /// Calls `f(place, check-in, check-out)` for each of a person's stays today at a place that
    /// is not a residence (whose evening stay may end otherwise: see [`Today::person`]).
    fn each_away(&self, city: &City, p: u32, mut f: impl FnMut(u32, i64, i64)) {
        if self.full || self.odd[p as usize] {
            for s in self.planned_stays(p) {
                f(s.place, s.t_in, s.t_out);
            }
        } else {
            for (place, t_in, t_out) in city.week.stays_of(p, self.day, city.day_start(self.day)) {
                f(place, t_in, t_out);
            }
        }
    }

    /// A person's planned stays today (a full day's, or of one whose day is not their routine).
    fn planned_stays(&self, p: u32) -> &[Stay] {
        debug_assert!(self.full || self.odd[p as usize], "person {p}'s day is not planned");
        self.outs[(p / CHUNK) as usize].stays_of(p % CHUNK)
    }

    /// A person's rides today.
    fn rides_of(&self, p: u32) -> &[crate::day::Ride] {
        self.outs[(p / CHUNK) as usize].rides_of(p % CHUNK)
    }
}

/// Items gathered by place (a stable counting sort over `places` places): the items in place
/// order, each place's in their order in `items`, and each place that has any with its range.
fn group_by_place<T: Copy>(items: &[(u32, T)], places: usize) -> (Vec<T>, Vec<(u32, std::ops::Range<usize>)>) {
    let mut starts = vec![0usize; places + 1];
    for (place, _) in items {
        starts[*place as usize + 1] += 1;
    }
    let mut lists = Vec::new();
    for place in 0..places {
        let count = starts[place + 1];
        starts[place + 1] += starts[place];
        if count > 0 {
            lists.push((place as u32, starts[place]..starts[place + 1]));
        }
    }
    let Some(&(_, fill)) = items.first() else { return (Vec::new(), lists) };
    let mut sorted = vec![fill; items.len()];
    for (place, item) in items {
        let k = &mut starts[*place as usize];
        sorted[*k] = *item;
        *k += 1;
    }
    (sorted, lists)
}

/// Picks an item by weight (`x` in 0..Σ weights; rounding falls on the last item).
fn pick<T, R>(items: &[T], mut x: f64, weight: impl Fn(&T) -> f64, value: impl Fn(&T) -> R) -> R {
    for item in items {
        let w = weight(item);
        if x < w {
            return value(item);
        }
        x -= w;
    }
    value(items.last().expect("at least one item"))
}

/// Piecewise-constant infectious pressure at a place over a day, and its integral, so that a
/// stay's exposure is two binary searches whatever the number of infectious visitors.
struct Pressure {
    /// (time, ∫ pressure up to it, pressure from it on), in time order: one allocation.
    points: Vec<(i64, f64, f64)>,
    /// For long lists: `starts[b]` = how many times are before `points[0].0 + b × BUCKET`, so
    /// that a look-up searches one bucket only.
    starts: Vec<u32>,
}

/// Bucket of [`Pressure::starts`], in seconds.
const BUCKET: i64 = 900;

impl Pressure {
    fn new(stays: &[(i64, i64, f64, u32)]) -> Pressure {
        let mut events: Vec<(i64, f64)> = Vec::with_capacity(stays.len() * 2);
        for &(t_in, t_out, w, _) in stays {
            events.push((t_in, w));
            events.push((t_out, -w));
        }
        // Unstable: events equal in (time, total order of the weight) are the same bits.
        events.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut points: Vec<(i64, f64, f64)> = Vec::with_capacity(events.len());
        let (mut cum, mut level) = (0.0, 0.0);
        for (t, dw) in events {
            if let Some(last) = points.last_mut() {
                cum += level * (t - last.0) as f64;
                if t == last.0 {
                    level += dw;
                    last.2 = level.max(0.0);
                    continue;
                }
            }
            level += dw;
            points.push((t, cum, level.max(0.0)));
        }
        let mut starts = Vec::new();
        if points.len() > 32 {
            let origin = points[0].0;
            let buckets = ((points[points.len() - 1].0 - origin) / BUCKET + 2) as usize;
            starts.reserve(buckets);
            let mut k = 0;
            for b in 0..buckets {
                let from = origin + b as i64 * BUCKET;
                while k < points.len() && points[k].0 < from {
                    k += 1;
                }
                starts.push(k as u32);
            }
        }
        Pressure { points, starts }
    }

    /// The first and last instants at which the pressure changes (none outside them).
    fn span(&self) -> (i64, i64) {
        (self.points.first().map_or(0, |p| p.0), self.points.last().map_or(0, |p| p.0))
    }

    /// How many of the points are at or before `t`.
    fn rank(&self, t: i64) -> usize {
        if self.starts.is_empty() {
            return self.points.partition_point(|x| x.0 <= t);
        }
        let origin = self.points[0].0;
        if t < origin {
            return 0;
        }
        let b = ((t - origin) / BUCKET) as usize;
        if b + 1 >= self.starts.len() {
            return self.points.len();
        }
        let (lo, hi) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        lo + self.points[lo..hi].partition_point(|x| x.0 <= t)
    }

    fn at(&self, t: i64) -> f64 {
        let k = self.rank(t);
        if k == 0 {
            0.0
        } else {
            let (time, cum, level) = self.points[k - 1];
            cum + level * (t - time) as f64
        }
    }

    /// ∫ pressure over [a, b] (pressure × seconds).
    fn exposure(&self, a: i64, b: i64) -> f64 {
        (self.at(b) - self.at(a)).max(0.0)
    }
}

fn draw_class(shares: &std::collections::BTreeMap<String, f64>, u: f64) -> u8 {
    let mut x = u;
    for (i, c) in DRUG_CLASSES.iter().enumerate() {
        let s = shares.get(*c).copied().unwrap_or(0.0);
        if x < s {
            return i as u8;
        }
        x -= s;
    }
    0
}

fn ts(t: i64) -> Timestamp {
    Timestamp::from_second(t).expect("in range")
}

fn local_date(city: &City, t: i64) -> jiff::civil::Date {
    let day = (t - city.t0).div_euclid(DAY);
    city.params.start + jiff::Span::new().days(day)
}

/// A ground-truth row: who infected whom, when, where, by which route.
#[derive(Debug, serde::Serialize)]
pub struct GroundTruthRow {
    pub infectee_id: String,
    pub infector_id: Option<String>,
    pub t: i64,
    pub route: &'static str,
    pub place_id: Option<String>,
    pub trip_id: Option<String>,
    pub batch_id: Option<String>,
    pub asymptomatic: bool,
    pub onset: Option<i64>,
}

impl GroundTruthRow {
    /// The row of an infection whose infectee has symptoms from `onset` (`NO_TIME`: none).
    pub fn new(ids: &CityIds, inf: &Infection, onset: i64) -> GroundTruthRow {
        GroundTruthRow {
            infectee_id: ids.persons.get(inf.infectee).to_string(),
            infector_id: (inf.infector != NONE).then(|| ids.persons.get(inf.infector).to_string()),
            t: inf.t,
            route: inf.route.as_str(),
            place_id: (inf.place != NONE).then(|| ids.places.get(inf.place).to_string()),
            trip_id: inf.trip.map(trip_id),
            batch_id: (inf.batch != NONE).then(|| format!("GB{:07}", inf.batch + 1)),
            asymptomatic: onset == NO_TIME,
            onset: (onset != NO_TIME).then_some(onset),
        }
    }
}

impl Outbreak {
    /// The ground-truth row of an infection.
    pub fn truth_row(&self, inf: &Infection) -> GroundTruthRow {
        GroundTruthRow::new(&self.ids, inf, self.onset[inf.infectee as usize])
    }

    /// Whether the origin risk of an arrival is one the profile gives a prevalence for.
    pub fn prevalence(&self, risk: OriginRisk) -> f64 {
        self.pathogen.importation.traveller_prevalence.get(&risk).copied().unwrap_or(0.0)
    }

    /// Stays that record in the visits feed (for evaluation of what the feed shows).
    pub fn recorded(stay: &crate::day::Stay) -> bool {
        stay.rec != Rec::Missing
    }
}

/// Early growth measured on a ground truth: the doubling time of daily infections (a
/// log-linear fit over days `from..=to`) and R (the mean number of infections caused by those
/// infected on days `from..=to`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    pub doubling_days: f64,
    pub r: f64,
    /// Infections on days `from..=to`.
    pub infections: u64,
}

/// Measures [`Growth`] from infections (`t0`: Unix second of day 0's start).
pub fn early_growth(infections: &[Infection], t0: i64, from: u32, to: u32) -> Growth {
    let day_of = |t: i64| (t - t0).div_euclid(DAY);
    let mut daily = vec![0u64; (to - from + 1) as usize];
    let mut offspring: HashMap<u32, u64> = HashMap::default();
    for inf in infections {
        if inf.infector != NONE {
            *offspring.entry(inf.infector).or_default() += 1;
        }
    }
    let mut children = 0u64;
    let mut parents = 0u64;
    for inf in infections {
        let d = day_of(inf.t);
        if d >= from as i64 && d <= to as i64 {
            daily[(d - from as i64) as usize] += 1;
            parents += 1;
            children += offspring.get(&inf.infectee).copied().unwrap_or(0);
        }
    }
    // Least squares on ln(count) (days without infections are left out).
    let pts: Vec<(f64, f64)> =
        daily.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| (i as f64, (*c as f64).ln())).collect();
    let n = pts.len() as f64;
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
    let (mx, my) = (sx / n, sy / n);
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    Growth {
        doubling_days: if slope > 0.0 { std::f64::consts::LN_2 / slope } else { f64::INFINITY },
        r: if parents > 0 { children as f64 / parents as f64 } else { 0.0 },
        infections: parents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_looks_up_long_lists_by_bucket_as_by_binary_search() {
        let mut r = rng(1, Stream::Transmit, 0, 0);
        for n in [3usize, 40, 500] {
            let stays: Vec<(i64, i64, f64, u32)> = (0..n)
                .map(|i| {
                    let t_in = r.random_range(0..80_000i64) / 60 * 60;
                    (t_in, t_in + r.random_range(60..20_000), r.random::<f64>(), i as u32)
                })
                .collect();
            let p = Pressure::new(&stays);
            assert_eq!(p.starts.is_empty(), n <= 16);
            for t in (-1_000..110_000).step_by(97).chain(stays.iter().flat_map(|s| [s.0, s.1, s.0 - 1, s.1 + 1])) {
                assert_eq!(p.rank(t), p.points.partition_point(|x| x.0 <= t), "n {n}, t {t}");
            }
        }
    }

    #[test]
    fn occupancy_overlap_is_the_sum_of_each_visits_overlap() {
        let mut r = rng(1, Stream::Transmit, 0, 2);
        let visits: Vec<crate::day::PlaceVisit> = (0..300)
            .map(|i| {
                let t_in = r.random_range(20_000..80_000);
                crate::day::PlaceVisit { person: i, t_in, t_out: t_in + r.random_range(60..9_000) }
            })
            .collect();
        let occ = Occupancy::new(&visits);
        for _ in 0..2_000 {
            let a = r.random_range(0..100_000i64);
            let b = a + r.random_range(1..20_000);
            let want: i64 = visits.iter().map(|v| ((v.t_out as i64).min(b) - (v.t_in as i64).max(a)).max(0)).sum();
            assert_eq!(occ.overlap(a, b), want, "[{a}, {b})");
        }
    }

    #[test]
    fn grouping_by_place_is_a_stable_sort() {
        let mut r = rng(1, Stream::Transmit, 0, 1);
        let items: Vec<(u32, u32)> = (0..2_000).map(|i| (r.random_range(0..50u32), i)).collect();
        let (grouped, lists) = group_by_place(&items, 60);
        let mut sorted = items.clone();
        sorted.sort_by_key(|x| x.0);
        assert_eq!(grouped, sorted.iter().map(|x| x.1).collect::<Vec<_>>());
        let places: Vec<u32> = sorted.chunk_by(|a, b| a.0 == b.0).map(|run| run[0].0).collect();
        assert_eq!(lists.iter().map(|l| l.0).collect::<Vec<_>>(), places);
        for (place, range) in lists {
            assert!(sorted[range.clone()].iter().all(|x| x.0 == place));
            assert_eq!(range.len(), items.iter().filter(|x| x.0 == place).count());
        }
        assert_eq!(group_by_place::<u32>(&[], 5), (vec![], vec![]));
    }

    #[test]
    fn solve_finds_roots_of_increasing_and_decreasing_functions() {
        let x = solve(|x| x * x - 2.0, 0.0, 2.0, 1e-12);
        assert!((x - 2f64.sqrt()).abs() < 1e-9, "{x}");
        let y = solve(|x| 1.0 / x - 0.25, 0.5, 10.0, 1e-12);
        assert!((y - 4.0).abs() < 1e-9, "{y}");
    }
}
