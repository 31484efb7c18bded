//! A person's day: where they are from when to when (stays), the trips they ride, and how
//! their check-ins are recorded. Each (person, day) draws from its own random streams, so a
//! day is the same whichever thread plans it; the evening's residence stay ends at the next
//! day's departure, drawn from that day's own "head" stream.

use chainbreak_core::model::{PlaceKind, TripMode};
use rand::RngExt;
use rand_pcg::Pcg64Mcg;

use crate::city::{City, Commute, NONE, Role};
use crate::rng::{Stream, mix, rng};

/// The stay has no known end (a residence stay before a day at home).
pub const NO_END: i64 = i64::MAX;

/// How a stay shows in the venue-code feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rec {
    /// Check-in and check-out recorded.
    Full,
    /// Checked in, no check-out.
    NoCheckout,
    /// Not scanned at all (the person was there, the feed does not show it).
    Missing,
}

/// A person at a place (ground truth), and how the feed records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    pub person: u32,
    pub place: u32,
    pub t_in: i64,
    /// True end; [`NO_END`] when unknown.
    pub t_out: i64,
    pub rec: Rec,
}

/// A trip, identified by mode, day and line/service and slot: `mode << 56 | day << 32 | line << 8 | slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TripKey(pub u64);

impl TripKey {
    pub fn new(mode: TripMode, day: u32, line: u32, slot: u32) -> TripKey {
        TripKey((mode as u64) << 56 | (day as u64) << 32 | (line as u64) << 8 | slot as u64)
    }
    pub fn mode(self) -> TripMode {
        TripMode::ALL[(self.0 >> 56) as usize]
    }
    pub fn day(self) -> u32 {
        ((self.0 >> 32) & 0xFF_FFFF) as u32
    }
    pub fn line(self) -> u32 {
        ((self.0 >> 8) & 0xFF_FFFF) as u32
    }
    pub fn slot(self) -> u32 {
        (self.0 & 0xFF) as u32
    }
}

/// A person on a trip (ground truth and the passengers feed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ride {
    pub person: u32,
    pub trip: TripKey,
    pub t_in: i64,
    pub t_out: i64,
    /// Carriage (trains), 0 when none.
    pub carriage: u8,
    pub row: u8,
    /// Seat letter index (A = 0), 255 when none.
    pub seat: u8,
}

/// A location ping of an app user.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ping {
    pub person: u32,
    pub t: i64,
    pub lat: f64,
    pub lon: f64,
}

/// What changes a person's day (the outbreak's doing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayMods {
    /// Stays home all day (quarantined, isolated, or too ill to go out).
    pub home: bool,
    /// Goes out only to seek care at a place of this kind near home.
    pub care: Option<PlaceKind>,
    /// Stops everything at this instant (quarantine or isolation from then on).
    pub until: Option<i64>,
}

/// One person-day's output.
#[derive(Debug, Default)]
pub struct DayOut {
    pub stays: Vec<Stay>,
    pub rides: Vec<Ride>,
    /// Travellers arriving by train or plane: (person, trip).
    pub arrivals: Vec<(u32, TripKey)>,
    pub pings: Vec<Ping>,
    /// When persons are appended in order with [`DayOut::begin_person`] (then [`DayOut::end`]):
    /// the `i`-th person's stays are `stays[stay_starts[i]..stay_starts[i + 1]]`, rides likewise.
    stay_starts: Vec<u32>,
    ride_starts: Vec<u32>,
}

impl DayOut {
    pub fn clear(&mut self) {
        self.stays.clear();
        self.rides.clear();
        self.arrivals.clear();
        self.pings.clear();
        self.stay_starts.clear();
        self.ride_starts.clear();
    }

    /// Marks where the next person's stays and rides begin (persons appended in order, each
    /// one marked, then [`DayOut::end`]), so that [`DayOut::stays_of`] and [`DayOut::rides_of`]
    /// find them without a search.
    pub fn begin_person(&mut self) {
        self.stay_starts.push(self.stays.len() as u32);
        self.ride_starts.push(self.rides.len() as u32);
    }

    /// Closes the index of [`DayOut::begin_person`] after the last person.
    pub fn end(&mut self) {
        self.begin_person();
    }

    /// The stays of the `i`-th person marked by [`DayOut::begin_person`].
    pub fn stays_of(&self, i: u32) -> &[Stay] {
        let i = i as usize;
        &self.stays[self.stay_starts[i] as usize..self.stay_starts[i + 1] as usize]
    }

    /// The rides of the `i`-th person marked by [`DayOut::begin_person`].
    pub fn rides_of(&self, i: u32) -> &[Ride] {
        let i = i as usize;
        &self.rides[self.ride_starts[i] as usize..self.ride_starts[i + 1] as usize]
    }
}

/// The kind of day a person has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    Home,
    Work,
    School,
    Out,
    TravelReturn,
}

const MIN: i64 = 60;
const HOUR: i64 = 3600;
/// Bus departures: every 15 minutes from 05:00, 72 a day.
const BUS_FIRST: i64 = 5 * HOUR;
const BUS_EVERY: i64 = 15 * MIN;
const BUS_SLOTS: i64 = 72;

/// Trains arriving per day.
pub fn trains_per_day(city: &City) -> u32 {
    (city.params.persons / 50_000).max(2)
}

/// Flights arriving per day.
pub fn flights_per_day(city: &City) -> u32 {
    (city.params.persons / 100_000).max(1)
}

/// Schedule of a train or flight: (departure, arrival) in seconds from the day's midnight.
pub fn long_trip_times(city: &City, key: TripKey) -> (i64, i64) {
    let per_day = if key.mode() == TripMode::Train { trains_per_day(city) } else { flights_per_day(city) } as i64;
    let arrival = 8 * HOUR + key.line() as i64 * (13 * HOUR) / per_day.max(1) + (key.line() as i64 % 4) * 7 * MIN;
    let hash = crate::rng::mix(city.params.seed ^ key.0);
    let duration = if key.mode() == TripMode::Train {
        2 * HOUR + (hash % 240) as i64 * MIN
    } else {
        HOUR + (hash % 600) as i64 * MIN
    };
    // Departs after 01:00 of its day, so that the traveller's last night at home ends first.
    (arrival - duration.min(arrival - HOUR), arrival)
}

/// The train or flight a person returning from a journey on `day` arrives by.
pub fn travel(city: &City, person: u32, day: u32) -> TripKey {
    let mut r = rng(city.params.seed, Stream::Head, person as u64, day as u64 | 1 << 40);
    let (mode, n) = if r.random_bool(city.params.flight_share) {
        (TripMode::Flight, flights_per_day(city))
    } else {
        (TripMode::Train, trains_per_day(city))
    };
    TripKey::new(mode, day, r.random_range(0..n), 0)
}

/// Schedule of a bus trip: (departure, arrival) in seconds from the day's midnight.
pub fn bus_times(key: TripKey) -> (i64, i64) {
    let dep = BUS_FIRST + key.slot() as i64 * BUS_EVERY;
    (dep, dep + bus_ride(key.line()))
}

fn bus_ride(line: u32) -> i64 {
    (18 + (line % 5) as i64 * 5) * MIN
}

/// Whether a person returns from a journey on `day` (adults only; drawn per day, never part
/// of the weekly routine).
pub fn travels(city: &City, person: u32, day: u32) -> bool {
    let prm = &city.params;
    if prm.travel_return_rate <= 0.0 {
        return false;
    }
    // The draw first: it rules out most persons without reading them.
    let h = mix(prm.seed ^ mix(TRAVEL_TAG ^ mix((day as u64) << 32 | person as u64)));
    unit(h) < prm.travel_return_rate && city.age(person) >= 18
}

/// The kind of a person's day and when they leave home (seconds after midnight): a journey's
/// return when they travel that day, else their weekly routine's day.
pub fn head(city: &City, person: u32, day: u32) -> (DayKind, Option<i64>) {
    if travels(city, person, day) {
        // Away until the trip back: "departure" is the trip's (the night at home ends then).
        return (DayKind::TravelReturn, Some(long_trip_times(city, travel(city, person, day)).0));
    }
    routine_head(city, person, day % 7)
}

/// The kind and departure of a person's routine day `slot` (0..7, the weekday of day `slot`).
fn routine_head(city: &City, person: u32, slot: u32) -> (DayKind, Option<i64>) {
    let p = &city.persons[person as usize];
    let prm = &city.params;
    let mut r = rng(prm.seed, Stream::Head, person as u64, slot as u64);
    let weekend = city.weekend(slot);
    let kind = match p.role {
        Role::Infant => DayKind::Home,
        Role::Student if !weekend && r.random_bool(prm.attendance) => DayKind::School,
        Role::Worker => {
            let occ = &prm.occupations[p.occupation as usize];
            let works = if weekend { r.random_bool(occ.weekend_work) } else { r.random_bool(prm.attendance) };
            if works {
                DayKind::Work
            } else if r.random_bool(prm.outing_share) {
                DayKind::Out
            } else {
                DayKind::Home
            }
        }
        _ if r.random_bool(prm.outing_share) => DayKind::Out,
        _ => DayKind::Home,
    };
    let depart = match kind {
        DayKind::Home => None,
        DayKind::School => Some(7 * HOUR + r.random_range(0..40) * MIN),
        DayKind::Work => Some(6 * HOUR + 30 * MIN + r.random_range(0..150) * MIN),
        DayKind::Out => Some(8 * HOUR + r.random_range(0..180) * MIN),
        DayKind::TravelReturn => unreachable!(),
    };
    (kind, depart)
}

/// Absolute departure of a person's day `day` ([`NO_END`] when they stay home).
fn departure(city: &City, person: u32, day: u32) -> i64 {
    match head(city, person, day) {
        (_, Some(depart)) => city.day_start(day) + depart,
        (_, None) => NO_END,
    }
}

const TRAVEL_TAG: u64 = 0x7A4E_11E5;
const REC_TAG: u64 = 0x2EC0_4D5F;

/// A uniform draw in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// How the feed records a stay, from a uniform draw `x` (`evening`: the residence stay that
/// ends at the next day's departure, unrecorded check-out when that is unknown).
fn rec_of(prm: &crate::CityParams, x: f64, evening: bool, t_out: i64) -> Rec {
    if x < prm.missed_checkin_share {
        Rec::Missing
    } else if evening {
        if x < prm.missed_checkin_share + prm.no_checkout_share || t_out == NO_END {
            Rec::NoCheckout
        } else {
            Rec::Full
        }
    } else if x < prm.missed_checkin_share + prm.no_checkout_share * (1.0 - prm.missed_checkin_share) {
        Rec::NoCheckout
    } else {
        Rec::Full
    }
}

/// Plans a person's day `day` afresh into `out` (appending), whatever their routine: the day
/// of a journey's return, of seeking care, or cut by quarantine. `mods` come from the outbreak.
pub fn plan(city: &City, person: u32, day: u32, mods: DayMods, out: &mut DayOut) {
    let stays_from = out.stays.len();
    plan_as(city, person, day, mods, head(city, person, day), departure(city, person, day + 1), out);
    pings(city, person, day, stays_from, out);
}

/// Plans day `day` of a person whose day is `head`, the next departure being `next`.
fn plan_as(
    city: &City,
    person: u32,
    day: u32,
    mods: DayMods,
    (kind, depart): (DayKind, Option<i64>),
    next: i64,
    out: &mut DayOut,
) {
    let prm = &city.params;
    let mut r = rng(prm.seed, Stream::Plan, person as u64, day as u64);
    let base = city.day_start(day);
    let p = &city.persons[person as usize];
    let home_b = p.building;
    let stays_from = out.stays.len();
    let rides_from = out.rides.len();
    let mut pl = Planner { city, person, base, next, r: &mut r, out };
    if mods.home {
        return;
    }
    if let Some(care) = mods.care {
        let t = 8 * HOUR + 30 * MIN + pl.r.random_range(0..90) * MIN;
        let place = city.near(home_b, care).pick(pl.r);
        let dwell = if care == PlaceKind::Pharmacy { pl.r.random_range(5..20) } else { pl.r.random_range(60..150) };
        let t_in = t + pl.r.random_range(5..20) * MIN;
        let end = pl.stay(place, t_in, dwell * MIN);
        let back = end + pl.r.random_range(5..20) * MIN;
        pl.go_home(back, day);
    } else {
        match (kind, depart) {
            (DayKind::Home, _) | (_, None) => {}
            (DayKind::Work, Some(t)) => pl.work_day(t, day),
            (DayKind::School, Some(t)) => {
                let school = p.anchor;
                let t_in = t + pl.r.random_range(10..25) * MIN;
                let t_out = 16 * HOUR + pl.r.random_range(0..90) * MIN;
                let end = pl.stay(school, t_in, t_out - t_in);
                let mut t = end + pl.r.random_range(5..20) * MIN;
                if pl.r.random_bool(prm.evening_errand_share * 0.8) {
                    t = pl.errand(home_b, t, false);
                }
                pl.go_home(t, day);
            }
            (DayKind::Out, Some(t)) => {
                let mut t = t;
                let n = pl.r.random_range(2..=4);
                for _ in 0..n {
                    t = pl.errand(home_b, t, city.weekend(day));
                }
                if pl.r.random_bool(prm.second_outing_share) {
                    let back = 14 * HOUR + pl.r.random_range(0..120) * MIN;
                    let t = t + pl.r.random_range(5..20) * MIN;
                    if back > t + 30 * MIN {
                        pl.stay(home_b, t, back - t);
                        let mut t = back;
                        for _ in 0..pl.r.random_range(1..=2) {
                            t = pl.errand(home_b, t, city.weekend(day));
                        }
                        pl.go_home(t, day);
                    } else {
                        pl.go_home(t, day);
                    }
                } else {
                    pl.go_home(t, day);
                }
            }
            (DayKind::TravelReturn, Some(_)) => {
                let key = travel(city, person, day);
                let flight = key.mode() == TripMode::Flight;
                let kind = if flight { PlaceKind::Airport } else { PlaceKind::TrainStation };
                let (dep, arr) = long_trip_times(city, key);
                let (carriage, row, seat) = if flight {
                    (0, pl.r.random_range(1..=32), pl.r.random_range(0..6))
                } else {
                    (pl.r.random_range(1..=16), pl.r.random_range(1..=18), pl.r.random_range(0..5))
                };
                pl.out.rides.push(Ride { person, trip: key, t_in: base + dep, t_out: base + arr, carriage, row, seat });
                pl.out.arrivals.push((person, key));
                let station = city.by_kind[kind as usize].pick(pl.r);
                let dwell = pl.r.random_range(10..40) * MIN;
                let end = pl.stay(station, arr + 5 * MIN, dwell);
                let back = end + pl.r.random_range(20..60) * MIN;
                pl.go_home(back, day);
            }
        }
    }
    if let Some(until) = mods.until {
        cut(pl.out, stays_from, rides_from, until);
    }
}

/// Location pings of an app user over their stays from `stays_from` on (their day `day`).
fn pings(city: &City, person: u32, day: u32, stays_from: usize, out: &mut DayOut) {
    let prm = &city.params;
    let base = city.day_start(day);
    if prm.ping_share > 0.0 && is_app_user(city, person) {
        let every = prm.ping_interval_min as i64 * MIN;
        let day_end = base + 86_400;
        let mut pr = rng(prm.seed, Stream::Pings, person as u64, day as u64);
        for i in stays_from..out.stays.len() {
            let s = out.stays[i];
            let place = &city.places[s.place as usize];
            let mut t = s.t_in + pr.random_range(0..every.min(600));
            while t < s.t_out.min(day_end) {
                let j = prm.cell_deg * 0.3;
                out.pings.push(Ping {
                    person,
                    t,
                    lat: place.lat + pr.random_range(-j..j),
                    lon: place.lon + pr.random_range(-j..j),
                });
                t += every;
            }
        }
    }
}

/// Whether a person's phone app emits location pings.
pub fn is_app_user(city: &City, person: u32) -> bool {
    let h = crate::rng::mix(city.params.seed ^ crate::rng::mix(0xA99 ^ person as u64));
    (h >> 11) as f64 / (1u64 << 53) as f64 <= city.params.ping_share
}

struct Planner<'a> {
    city: &'a City,
    person: u32,
    base: i64,
    /// The next day's departure (absolute), [`NO_END`] when unknown.
    next: i64,
    r: &'a mut Pcg64Mcg,
    out: &'a mut DayOut,
}

impl Planner<'_> {
    /// Adds a stay from `t_in` for `dwell` seconds (from midnight); returns its end.
    fn stay(&mut self, place: u32, t_in: i64, dwell: i64) -> i64 {
        let rec = rec_of(&self.city.params, self.r.random::<f64>(), false, 0);
        let dwell = dwell.max(MIN);
        self.out.stays.push(Stay {
            person: self.person,
            place,
            t_in: self.base + t_in,
            t_out: self.base + t_in + dwell,
            rec,
        });
        t_in + dwell
    }

    /// Arrives home at `t` and stays until the next day's departure.
    fn go_home(&mut self, t: i64, _day: u32) {
        let home = self.city.persons[self.person as usize].building;
        let next = self.next;
        let rec = rec_of(&self.city.params, self.r.random::<f64>(), true, next);
        self.out.stays.push(Stay { person: self.person, place: home, t_in: self.base + t, t_out: next, rec });
    }

    /// Travels to an errand near building `b` from `t`; returns when the person leaves it.
    fn errand(&mut self, b: u32, t: i64, weekend: bool) -> i64 {
        let x = self.r.random::<f64>();
        let kind = if weekend {
            match x {
                x if x < 0.30 => PlaceKind::Market,
                x if x < 0.55 => PlaceKind::Restaurant,
                x if x < 0.75 => PlaceKind::Mall,
                x if x < 0.82 => PlaceKind::Pharmacy,
                _ => PlaceKind::Other,
            }
        } else {
            match x {
                x if x < 0.40 => PlaceKind::Market,
                x if x < 0.62 => PlaceKind::Restaurant,
                x if x < 0.70 => PlaceKind::Mall,
                x if x < 0.80 => PlaceKind::Pharmacy,
                _ => PlaceKind::Other,
            }
        };
        let dwell = match kind {
            PlaceKind::Market => self.r.random_range(10..50),
            PlaceKind::Restaurant => self.r.random_range(30..90),
            PlaceKind::Mall => self.r.random_range(40..150),
            PlaceKind::Pharmacy => self.r.random_range(5..15),
            _ => self.r.random_range(20..90),
        } * MIN;
        let place = self.city.near(b, kind).pick(self.r);
        let t_in = t + self.r.random_range(5..20) * MIN;
        self.stay(place, t_in, dwell)
    }

    /// Commutes from building `from` at `t`; returns the arrival time.
    fn commute(&mut self, from: u32, t: i64, day: u32) -> i64 {
        let p = &self.city.persons[self.person as usize];
        match p.commute {
            Commute::Walk => t + self.r.random_range(5..25) * MIN,
            Commute::Metro => {
                let st = self.city.near(from, PlaceKind::TransitStation).pick(self.r);
                let t_in = t + self.r.random_range(3..10) * MIN;
                let dwell = self.r.random_range(3..8) * MIN;
                let end = self.stay(st, t_in, dwell);
                end + self.r.random_range(10..40) * MIN
            }
            Commute::Bus => {
                let station = self.city.near(from, PlaceKind::TransitStation).first();
                let line = self.city.by_kind[PlaceKind::TransitStation as usize]
                    .places
                    .binary_search(&station)
                    .expect("a transit station") as u32;
                let at_stop = t + self.r.random_range(3..10) * MIN;
                let slot = ((at_stop - BUS_FIRST).max(0) + BUS_EVERY - 1) / BUS_EVERY;
                if slot >= BUS_SLOTS {
                    return at_stop + 30 * MIN;
                }
                let key = TripKey::new(TripMode::Bus, day, line, slot as u32);
                let (dep, arr) = bus_times(key);
                let row = self.r.random_range(1..=12);
                self.out.rides.push(Ride {
                    person: self.person,
                    trip: key,
                    t_in: self.base + dep,
                    t_out: self.base + arr,
                    carriage: 0,
                    row,
                    seat: 255,
                });
                arr + self.r.random_range(2..10) * MIN
            }
        }
    }

    fn work_day(&mut self, depart: i64, day: u32) {
        let city = self.city;
        let p = &city.persons[self.person as usize];
        let home_b = p.building;
        let work = p.anchor;
        let work_b = city.places[work as usize].building;
        let occ = city.params.occupations[p.occupation as usize].name;
        let mut t = self.commute(home_b, depart, day);
        if occ == "courier" {
            let dwell = self.r.random_range(20..40) * MIN;
            t = self.stay(work, t, dwell);
            let n = self.r.random_range(4..=8);
            for _ in 0..n {
                t += self.r.random_range(8..20) * MIN;
                let x = self.r.random::<f64>();
                let place = if x < 0.35 {
                    // A residence near the depot.
                    let b = (work_b as i64 + self.r.random_range(-20..=20)).clamp(0, city.buildings as i64 - 1);
                    b as u32
                } else {
                    let kind = match x {
                        x if x < 0.55 => PlaceKind::Market,
                        x if x < 0.75 => PlaceKind::Restaurant,
                        x if x < 0.9 => PlaceKind::Mall,
                        _ => PlaceKind::Other,
                    };
                    city.near(work_b, kind).pick(self.r)
                };
                let dwell = self.r.random_range(3..10) * MIN;
                t = self.stay(place, t, dwell);
                if t > 18 * HOUR {
                    break;
                }
            }
        } else {
            let dwell = if matches!(occ, "office_worker" | "teacher") {
                self.r.random_range(480..570)
            } else {
                self.r.random_range(420..600)
            } * MIN;
            let end = t + dwell;
            let lunch = matches!(occ, "office_worker" | "factory_worker" | "service_worker")
                && t < 11 * HOUR + 45 * MIN
                && end > 13 * HOUR + 30 * MIN
                && self.r.random_bool(city.params.lunch_out_share);
            if lunch {
                let out_at = 12 * HOUR + self.r.random_range(0..15) * MIN;
                self.stay(work, t, out_at - t);
                let place = city.near(work_b, PlaceKind::Restaurant).pick(self.r);
                let dwell = self.r.random_range(25..50) * MIN;
                let back = self.stay(place, out_at + 5 * MIN, dwell);
                let t_in = back + 5 * MIN;
                t = self.stay(work, t_in, (end - t_in).max(HOUR));
            } else {
                t = self.stay(work, t, dwell);
            }
        }
        let leave = t + self.r.random_range(2..10) * MIN;
        let mut t = self.commute(work_b, leave, day);
        if self.r.random_bool(city.params.evening_errand_share) && t < 21 * HOUR {
            t = self.errand(home_b, t, false);
        }
        self.go_home(t, day);
    }
}

/// Every person's day `day` for persons `from..to` (a chunk), with `mods` giving each
/// person's modifiers (see [`day_of`]).
pub fn plan_chunk(city: &City, day: u32, from: u32, to: u32, mods: impl Fn(u32) -> DayMods, out: &mut DayOut) {
    for person in from..to {
        day_of(city, person, day, mods(person), out);
    }
}

/// A person's day `day` into `out` (appending): their weekly routine's day (the same places
/// and times as on the same weekday of every week, each check-in recorded or not afresh),
/// ending at the next day's departure; planned afresh instead when they return from a journey
/// or seek care that day. Quarantine (`mods.until`) cuts it; `mods.home` keeps them home.
pub fn day_of(city: &City, person: u32, day: u32, mods: DayMods, out: &mut DayOut) {
    if mods.home {
        return;
    }
    if mods.care.is_some() || travels(city, person, day) || city.week.is_empty() {
        plan(city, person, day, mods, out);
        return;
    }
    let stays_from = out.stays.len();
    let rides_from = out.rides.len();
    city.week.copy(city, person, day, out);
    if let Some(until) = mods.until {
        cut(out, stays_from, rides_from, until);
    }
    pings(city, person, day, stays_from, out);
}

/// Quarantined or isolated from `until`: nothing after it; a stay under way ends there.
fn cut(out: &mut DayOut, stays_from: usize, rides_from: usize, until: i64) {
    out.stays.truncate(stays_from + out.stays[stays_from..].iter().take_while(|s| s.t_in < until).count());
    for s in &mut out.stays[stays_from..] {
        if s.t_out > until {
            s.t_out = until;
        }
    }
    out.rides.truncate(rides_from + out.rides[rides_from..].iter().take_while(|s| s.t_in < until).count());
    for s in &mut out.rides[rides_from..] {
        s.t_out = s.t_out.min(until);
    }
}

/// Everyone's weekly routine: for each weekday (slot `d % 7` of day `d`), each person's stays
/// and rides as planned for day `slot` of the first week without journeys, with times from
/// the day's midnight. 12 bytes a stay.
#[derive(Debug, Default)]
pub struct Week {
    days: Vec<WeekDay>,
}

#[derive(Debug, Default)]
struct WeekDay {
    /// The routines of the persons of each chunk of [`crate::write::CHUNK`] persons, as planned
    /// (kept apart rather than copied into one list).
    parts: Vec<WeekPart>,
    /// Visits of place `pl` (residences left out): `visits[place_starts[pl]..place_starts[pl + 1]]`,
    /// in person order.
    place_starts: Vec<u32>,
    visits: Vec<PlaceVisit>,
}

/// One chunk's routines: its `i`-th person's stays are `stays[starts[i]..starts[i + 1]]`,
/// rides likewise.
#[derive(Debug, Default)]
struct WeekPart {
    starts: Vec<u32>,
    stays: Vec<WeekStay>,
    ride_starts: Vec<u32>,
    rides: Vec<WeekRide>,
}

impl WeekDay {
    /// A person's chunk and their index in it.
    fn part(&self, person: u32) -> (&WeekPart, usize) {
        (&self.parts[(person / crate::write::CHUNK) as usize], (person % crate::write::CHUNK) as usize)
    }

    fn stays(&self, person: u32) -> &[WeekStay] {
        let (part, i) = self.part(person);
        &part.stays[part.starts[i] as usize..part.starts[i + 1] as usize]
    }

    fn rides(&self, person: u32) -> &[WeekRide] {
        let (part, i) = self.part(person);
        &part.rides[part.ride_starts[i] as usize..part.ride_starts[i + 1] as usize]
    }
}

/// A routine stay seen from its place.
#[derive(Debug, Clone, Copy)]
pub struct PlaceVisit {
    pub person: u32,
    /// Seconds from the day's midnight.
    pub t_in: i32,
    pub t_out: i32,
}

#[derive(Debug, Clone, Copy)]
struct WeekStay {
    place: u32,
    /// Seconds from the day's midnight.
    t_in: i32,
    /// Seconds from the day's midnight; `i32::MAX` when unknown.
    t_out: i32,
}

#[derive(Debug, Clone, Copy)]
struct WeekRide {
    person: u32,
    /// The trip's key with day 0.
    trip: u64,
    t_in: i32,
    t_out: i32,
    carriage: u8,
    row: u8,
    seat: u8,
}

const DAY_BITS: u64 = 0xFF_FFFF << 32;

impl Week {
    /// Plans everyone's routine (in parallel over chunks of persons; the same whatever the
    /// thread count).
    pub fn build(city: &City) -> Week {
        use rayon::prelude::*;
        let n = city.persons.len() as u32;
        let chunks = crate::write::person_chunks(n);
        // Each person's seven routine heads, drawn once (a day's head and the next day's
        // departure are both read): per chunk, person-major.
        let heads: Vec<Vec<(DayKind, Option<i64>)>> = chunks
            .par_iter()
            .map(|&(a, b)| (a..b).flat_map(|p| (0..7).map(move |slot| routine_head(city, p, slot))).collect())
            .collect();
        let residence: Vec<bool> = city.places.iter().map(|pl| pl.kind == PlaceKind::Residence).collect();
        // The weekdays in parallel too, so that one day's serial counting sort overlaps another
        // day's planning.
        let days = (0..7u32)
            .into_par_iter()
            .map(|slot| {
                let parts: Vec<WeekPart> = chunks
                    .par_iter()
                    .zip(&heads)
                    .map(|(&(a, b), heads)| {
                        let mut o = DayOut::default();
                        let mut part = WeekPart::default();
                        let base = city.day_start(slot);
                        for p in a..b {
                            o.clear();
                            let at = (p - a) as usize * 7;
                            let head = heads[at + slot as usize];
                            let next = match heads[at + ((slot + 1) % 7) as usize] {
                                (_, Some(depart)) => base + 86_400 + depart,
                                (_, None) => NO_END,
                            };
                            plan_as(city, p, slot, DayMods::default(), head, next, &mut o);
                            part.starts.push(part.stays.len() as u32);
                            part.ride_starts.push(part.rides.len() as u32);
                            part.stays.extend(o.stays.iter().map(|s| WeekStay {
                                place: s.place,
                                t_in: (s.t_in - base) as i32,
                                t_out: if s.t_out == NO_END { i32::MAX } else { (s.t_out - base) as i32 },
                            }));
                            part.rides.extend(o.rides.iter().map(|r| WeekRide {
                                person: r.person,
                                trip: r.trip.0 & !DAY_BITS,
                                t_in: (r.t_in - base) as i32,
                                t_out: (r.t_out - base) as i32,
                                carriage: r.carriage,
                                row: r.row,
                                seat: r.seat,
                            }));
                        }
                        part.starts.push(part.stays.len() as u32);
                        part.ride_starts.push(part.rides.len() as u32);
                        part.stays.shrink_to_fit();
                        part.rides.shrink_to_fit();
                        part
                    })
                    .collect();
                let mut day = WeekDay { parts, ..Default::default() };
                // Visitors by place (a counting sort; persons come in order).
                let places = city.places.len();
                let mut starts = vec![0u32; places + 1];
                for st in day.parts.iter().flat_map(|part| &part.stays) {
                    if !residence[st.place as usize] {
                        starts[st.place as usize + 1] += 1;
                    }
                }
                for i in 0..places {
                    starts[i + 1] += starts[i];
                }
                let mut fill = starts.clone();
                let mut visits = vec![PlaceVisit { person: 0, t_in: 0, t_out: 0 }; starts[places] as usize];
                for p in 0..n {
                    for st in day.stays(p) {
                        if !residence[st.place as usize] {
                            let k = &mut fill[st.place as usize];
                            visits[*k as usize] = PlaceVisit { person: p, t_in: st.t_in, t_out: st.t_out };
                            *k += 1;
                        }
                    }
                }
                day.place_starts = starts;
                day.visits = visits;
                day
            })
            .collect();
        Week { days }
    }

    /// Whether no routine was planned (a city being built).
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// The routine visits of place `place` (not a residence) on day `day`'s weekday, in person
    /// order (times from that day's midnight; check-out known: only residence stays lack one).
    pub fn visits(&self, day: u32, place: u32) -> &[PlaceVisit] {
        let w = &self.days[(day % 7) as usize];
        &w.visits[w.place_starts[place as usize] as usize..w.place_starts[place as usize + 1] as usize]
    }

    /// A person's routine stays of day `day` as (place, check-in, check-out) without how the
    /// feed records them; the evening residence stay may end otherwise (see [`Week::copy`]).
    pub fn stays_of(&self, person: u32, day: u32, base: i64) -> impl Iterator<Item = (u32, i64, i64)> + '_ {
        let w = &self.days[(day % 7) as usize];
        w.stays(person).iter().map(move |s| {
            (s.place, base + s.t_in as i64, if s.t_out == i32::MAX { NO_END } else { base + s.t_out as i64 })
        })
    }

    /// Every routine ride of day `day`, in person order.
    pub fn rides(&self, day: u32, base: i64) -> impl Iterator<Item = Ride> + '_ {
        let w = &self.days[(day % 7) as usize];
        w.parts.iter().flat_map(|part| &part.rides).map(move |r| week_ride(r, day, base))
    }

    /// A person's routine rides of day `day`.
    pub fn rides_of(&self, person: u32, day: u32, base: i64) -> impl Iterator<Item = Ride> + '_ {
        let w = &self.days[(day % 7) as usize];
        w.rides(person).iter().map(move |r| week_ride(r, day, base))
    }

    /// Appends a person's routine rides of day `day` to `out` (no stays).
    pub fn copy_rides(&self, city: &City, person: u32, day: u32, out: &mut DayOut) {
        let w = &self.days[(day % 7) as usize];
        let base = city.day_start(day);
        out.rides.extend(w.rides(person).iter().map(|r| week_ride(r, day, base)));
    }

    /// Stays in the routine, all weekdays.
    pub fn stays(&self) -> usize {
        self.days.iter().flat_map(|d| &d.parts).map(|part| part.stays.len()).sum()
    }

    /// Appends a person's routine day `day` to `out`: the evening stay ends at the next
    /// day's real departure (a journey's, if they travel then).
    pub fn copy(&self, city: &City, person: u32, day: u32, out: &mut DayOut) {
        let w = &self.days[(day % 7) as usize];
        let base = city.day_start(day);
        let stays = w.stays(person);
        if !stays.is_empty() {
            let prm = &city.params;
            let h = mix(prm.seed ^ mix(REC_TAG ^ mix((day as u64) << 32 | person as u64)));
            let last = stays.len() - 1;
            for (i, s) in stays.iter().enumerate() {
                let evening = i == last;
                let t_out = if evening && travels(city, person, day + 1) {
                    departure(city, person, day + 1)
                } else if s.t_out == i32::MAX {
                    NO_END
                } else {
                    base + s.t_out as i64
                };
                let rec = rec_of(prm, unit(mix(h ^ i as u64)), evening, t_out);
                out.stays.push(Stay { person, place: s.place, t_in: base + s.t_in as i64, t_out, rec });
            }
        }
        out.rides.extend(w.rides(person).iter().map(|r| week_ride(r, day, base)));
    }
}

fn week_ride(r: &WeekRide, day: u32, base: i64) -> Ride {
    Ride {
        person: r.person,
        trip: TripKey(r.trip | (day as u64) << 32),
        t_in: base + r.t_in as i64,
        t_out: base + r.t_out as i64,
        carriage: r.carriage,
        row: r.row,
        seat: r.seat,
    }
}

/// The place of a person's workplace or school, if any.
pub fn anchor(city: &City, person: u32) -> Option<u32> {
    let a = city.persons[person as usize].anchor;
    (a != NONE).then_some(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CityParams;

    #[test]
    fn days_are_reproducible_and_never_overlap() {
        let city = City::build(CityParams::new(3000, 7, 11)).unwrap();
        for day in 0..7 {
            let mut a = DayOut::default();
            let mut b = DayOut::default();
            plan_chunk(&city, day, 0, 3000, |_| DayMods::default(), &mut a);
            plan_chunk(&city, day, 0, 3000, |_| DayMods::default(), &mut b);
            assert_eq!(a.stays, b.stays);
            for w in a.stays.windows(2) {
                if w[0].person == w[1].person {
                    assert!(w[0].t_out <= w[1].t_in, "{w:?}");
                }
                assert!(w[0].t_in < w[0].t_out);
            }
        }
    }

    #[test]
    fn marked_persons_are_found_without_a_search() {
        let city = City::build(CityParams::new(2000, 3, 5)).unwrap();
        let (mut marked, mut plain) = (DayOut::default(), DayOut::default());
        for p in 100..400 {
            marked.begin_person();
            day_of(&city, p, 1, DayMods::default(), &mut marked);
        }
        marked.end();
        plan_chunk(&city, 1, 100, 400, |_| DayMods::default(), &mut plain);
        assert_eq!(marked.stays, plain.stays);
        for p in 100..400u32 {
            let stays: Vec<Stay> = plain.stays.iter().filter(|s| s.person == p).copied().collect();
            let rides: Vec<Ride> = plain.rides.iter().filter(|r| r.person == p).copied().collect();
            assert_eq!(marked.stays_of(p - 100), &stays[..]);
            assert_eq!(marked.rides_of(p - 100), &rides[..]);
        }
        marked.clear();
        assert!(marked.stay_starts.is_empty() && marked.ride_starts.is_empty());
    }

    #[test]
    fn quarantine_cuts_the_day() {
        let city = City::build(CityParams::new(2000, 3, 2)).unwrap();
        let day = 1;
        let noon = city.day_start(day) + 12 * HOUR;
        let mut out = DayOut::default();
        plan_chunk(&city, day, 0, 2000, |_| DayMods { until: Some(noon), ..Default::default() }, &mut out);
        assert!(!out.stays.is_empty());
        assert!(out.stays.iter().all(|s| s.t_in < noon && s.t_out <= noon));
        let mut home = DayOut::default();
        plan_chunk(&city, day, 0, 2000, |_| DayMods { home: true, ..Default::default() }, &mut home);
        assert!(home.stays.is_empty() && home.rides.is_empty());
    }
}
