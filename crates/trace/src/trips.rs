//! Trips (flights, trains, buses, ships): who rode with a source, by the profile's seat rules.
//!
//! A source rode a trip in its window when the trip's time on board `[departure, arrival)`
//! (a trip without an arrival: the instant of departure) shares at least `min_overlap` with
//! the window `[from, to)` (with `min_overlap` 0, a departure inside the window is enough).
//! Every other rider, not excluded, is then a hit when a rule covers them:
//!
//! - **flight** (a [`FlightRows`] rule): passengers whose row is within `rows_either_side`
//!   rows of the source's ([`Why::Rows`]); the crew when the rule counts them ([`Why::Crew`]);
//!   a source who is crew: every other rider ([`Why::Crew`], the data does not show which rows
//!   they served);
//! - **train** (a [`TrainBays`] rule): a sealed train with `sealed_whole_carriage`, everyone in
//!   the source's carriage ([`Why::Carriage`]); otherwise riders in the same carriage within
//!   `bays_either_side` bays (`seat_row` is the bay, [`Why::Bays`]);
//! - **bus**: a sealed bus with `bus_sealed_everyone`, everyone ([`Why::Sealed`]);
//! - **ship** with `ship_same_cabin`: the source's cabin (`carriage`, [`Why::Cabin`]);
//! - where a seat rule needs a carriage or row that the source or the rider lacks, the rule
//!   cannot be decided: the rider is a hit with [`Why::SeatUnknown`], for a person to confirm;
//! - where no seat rule covers the trip (no rule for the mode, an unsealed bus, a train or
//!   bus rule whose sealed clause does not apply and has nothing else), riders are hits by the
//!   proximity rule when it applies ([`Why::Proximity`]: a distance, never read from seats).
//!
//! A rider who was several times on trips with sources gets a hit for each (source, trip).

use rustc_hash::FxHashMap;

/// A trip's mode of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Flight,
    Train,
    Bus,
    Ship,
}

/// What a rule needs of a trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TripInfo {
    pub mode: Mode,
    /// Unix seconds.
    pub departure: i64,
    /// Unix seconds; the instant of departure when absent.
    pub arrival: Option<i64>,
    /// A sealed train car or bus.
    pub sealed: bool,
}

/// A person on a trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rider {
    /// The survivor key.
    pub person: u32,
    pub crew: bool,
    /// Train carriage or ship cabin.
    pub carriage: Option<u32>,
    /// Seat row (plane), bay (train), row (bus).
    pub row: Option<u32>,
}

/// The plane rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlightRows {
    pub rows_either_side: u32,
    /// The crew (serving those rows) count.
    pub crew: bool,
}

/// The train rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainBays {
    pub sealed_whole_carriage: bool,
    pub bays_either_side: u32,
}

/// The seat rules of a profile; a mode without a rule has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeatRules {
    pub flight: Option<FlightRows>,
    pub train: Option<TrainBays>,
    pub bus_sealed_everyone: bool,
    pub ship_same_cabin: bool,
    /// A proximity rule applies to riders no seat rule covers.
    pub proximity: bool,
    /// The least time on board shared with the window, seconds.
    pub min_overlap: i64,
}

/// Why a rider is a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Why {
    /// Passenger within the rule's rows (this many rows apart).
    Rows(u32),
    /// Crew of the flight (or a rider of a flight the source crewed).
    Crew,
    /// Same carriage of a sealed train.
    Carriage,
    /// Same carriage, this many bays apart (non-sealed train).
    Bays(u32),
    /// On a sealed bus.
    Sealed,
    /// Same ship cabin.
    Cabin,
    /// A seat rule applies but the source's or the rider's carriage or row is not known.
    SeatUnknown,
    /// No seat rule covers the trip; the proximity rule asks for a distance.
    Proximity,
}

/// `person` rode `trip` with `source`, sharing `[from, to)` of the source's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TripHit {
    pub person: u32,
    pub from: i64,
    pub to: i64,
    pub trip: u32,
    pub source: u32,
    pub why: Why,
}

/// Every trip and its riders, and each person's trips.
#[derive(Debug, Clone, Default)]
pub struct Trips {
    trips: Vec<Option<TripInfo>>,
    riders: Vec<Vec<Rider>>,
    of: FxHashMap<u32, Vec<u32>>,
}

impl Trips {
    /// Adds a rider to trip number `trip` (the caller's dense number for it). A person given
    /// twice on a trip keeps the first seat.
    pub fn add_rider(&mut self, trip: u32, info: TripInfo, rider: Rider) {
        let t = trip as usize;
        if self.trips.len() <= t {
            self.trips.resize(t + 1, None);
            self.riders.resize(t + 1, Vec::new());
        }
        self.trips[t] = Some(info);
        if self.riders[t].iter().any(|r| r.person == rider.person) {
            return;
        }
        self.riders[t].push(rider);
        self.of.entry(rider.person).or_default().push(trip);
    }

    pub fn get(&self, trip: u32) -> Option<(&TripInfo, &[Rider])> {
        let t = trip as usize;
        Some((self.trips.get(t)?.as_ref()?, &self.riders[t]))
    }

    /// The trips `person` (a survivor key) rode, by number.
    pub fn of(&self, person: u32) -> &[u32] {
        self.of.get(&person).map_or(&[], Vec::as_slice)
    }

    /// How many riders there are.
    pub fn len(&self) -> usize {
        self.riders.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every rider the rules make a hit, for sources (survivor, window start) up to `to`,
    /// not `excluded`; sorted.
    pub fn hits(&self, sources: &[(u32, i64)], to: i64, rules: &SeatRules, excluded: &[bool]) -> Vec<TripHit> {
        let mut hits = Vec::new();
        for &(source, from) in sources {
            for &trip in self.of.get(&source).into_iter().flatten() {
                let Some((info, riders)) = self.get(trip) else { continue };
                let board_to = info.arrival.unwrap_or(info.departure).max(info.departure);
                let (start, end) = (from.max(info.departure), to.min(board_to));
                let on_board = if board_to == info.departure {
                    (from..to).contains(&info.departure) && rules.min_overlap == 0
                } else {
                    end > start && end - start >= rules.min_overlap
                };
                if !on_board {
                    continue;
                }
                let end = end.max(start);
                let Some(me) = riders.iter().find(|r| r.person == source) else { continue };
                for other in riders {
                    if other.person == source || excluded.get(other.person as usize).copied().unwrap_or(false) {
                        continue;
                    }
                    if let Some(why) = why(info, me, other, rules) {
                        hits.push(TripHit { person: other.person, from: start, to: end, trip, source, why });
                    }
                }
            }
        }
        hits.sort_unstable();
        hits
    }
}

/// Rows or bays apart, when both are known.
fn apart(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    Some(a?.abs_diff(b?))
}

/// Why `other` is a hit of `me` on a trip, by the rules (none: not a hit).
fn why(info: &TripInfo, me: &Rider, other: &Rider, rules: &SeatRules) -> Option<Why> {
    let proximity = rules.proximity.then_some(Why::Proximity);
    match info.mode {
        Mode::Flight => {
            let Some(rule) = rules.flight else { return proximity };
            if me.crew {
                return Some(Why::Crew);
            }
            if other.crew {
                return rule.crew.then_some(Why::Crew);
            }
            match apart(me.row, other.row) {
                None => Some(Why::SeatUnknown),
                Some(d) => (d <= rule.rows_either_side).then_some(Why::Rows(d)),
            }
        }
        Mode::Train => {
            let Some(rule) = rules.train else { return proximity };
            let (Some(a), Some(b)) = (me.carriage, other.carriage) else { return Some(Why::SeatUnknown) };
            if a != b {
                return None;
            }
            if info.sealed && rule.sealed_whole_carriage {
                return Some(Why::Carriage);
            }
            match apart(me.row, other.row) {
                None => Some(Why::SeatUnknown),
                Some(d) => (d <= rule.bays_either_side).then_some(Why::Bays(d)),
            }
        }
        Mode::Bus => {
            if info.sealed && rules.bus_sealed_everyone {
                Some(Why::Sealed)
            } else {
                proximity
            }
        }
        Mode::Ship => {
            if !rules.ship_same_cabin {
                return proximity;
            }
            match (me.carriage, other.carriage) {
                (Some(a), Some(b)) => (a == b).then_some(Why::Cabin),
                _ => Some(Why::SeatUnknown),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rider(person: u32, carriage: Option<u32>, row: Option<u32>) -> Rider {
        Rider { person, crew: false, carriage, row }
    }

    fn cn() -> SeatRules {
        SeatRules {
            flight: Some(FlightRows { rows_either_side: 3, crew: true }),
            train: Some(TrainBays { sealed_whole_carriage: true, bays_either_side: 1 }),
            bus_sealed_everyone: true,
            ship_same_cabin: true,
            proximity: true,
            min_overlap: 0,
        }
    }

    fn hits_of(trips: &Trips, rules: &SeatRules) -> Vec<(u32, Why)> {
        trips.hits(&[(1, 0)], 10_000, rules, &[false; 64]).iter().map(|h| (h.person, h.why)).collect()
    }

    #[test]
    fn flight_rows_and_crew() {
        let mut t = Trips::default();
        let info = TripInfo { mode: Mode::Flight, departure: 100, arrival: Some(2000), sealed: false };
        for r in [rider(1, None, Some(10)), rider(2, None, Some(13)), rider(3, None, Some(14)), rider(4, None, None)] {
            t.add_rider(0, info, r);
        }
        t.add_rider(0, info, Rider { person: 5, crew: true, carriage: None, row: None });
        assert_eq!(hits_of(&t, &cn()), [(2, Why::Rows(3)), (4, Why::SeatUnknown), (5, Why::Crew)]);
        let no_crew = SeatRules { flight: Some(FlightRows { rows_either_side: 3, crew: false }), ..cn() };
        assert_eq!(hits_of(&t, &no_crew), [(2, Why::Rows(3)), (4, Why::SeatUnknown)]);
        // A crew member as the source: everyone else.
        let from_crew: Vec<u32> = t.hits(&[(5, 0)], 10_000, &cn(), &[false; 8]).iter().map(|h| h.person).collect();
        assert_eq!(from_crew, [1, 2, 3, 4]);
        // No seat rule for planes: the proximity rule, or nothing.
        let cdc = SeatRules { proximity: true, ..SeatRules::default() };
        assert_eq!(hits_of(&t, &cdc).len(), 4);
        assert!(hits_of(&t, &SeatRules::default()).is_empty());
    }

    #[test]
    fn trains_buses_and_ships() {
        let mut t = Trips::default();
        let train = TripInfo { mode: Mode::Train, departure: 100, arrival: Some(2000), sealed: false };
        for r in [
            rider(1, Some(3), Some(5)),
            rider(2, Some(3), Some(6)),
            rider(3, Some(3), Some(8)),
            rider(4, Some(4), Some(5)),
        ] {
            t.add_rider(0, train, r);
        }
        t.add_rider(0, train, rider(6, None, None));
        assert_eq!(hits_of(&t, &cn()), [(2, Why::Bays(1)), (6, Why::SeatUnknown)]);
        let mut sealed = Trips::default();
        for r in [rider(1, Some(3), Some(5)), rider(3, Some(3), Some(8)), rider(4, Some(4), Some(5))] {
            sealed.add_rider(0, TripInfo { sealed: true, ..train }, r);
        }
        assert_eq!(hits_of(&sealed, &cn()), [(3, Why::Carriage)]);

        let mut bus = Trips::default();
        let info = TripInfo { mode: Mode::Bus, departure: 100, arrival: Some(700), sealed: false };
        bus.add_rider(0, info, rider(1, None, Some(1)));
        bus.add_rider(0, info, rider(2, None, Some(9)));
        assert_eq!(hits_of(&bus, &cn()), [(2, Why::Proximity)]);
        assert!(hits_of(&bus, &SeatRules { proximity: false, ..cn() }).is_empty());
        let mut sealed_bus = Trips::default();
        sealed_bus.add_rider(0, TripInfo { sealed: true, ..info }, rider(1, None, None));
        sealed_bus.add_rider(0, TripInfo { sealed: true, ..info }, rider(2, None, None));
        assert_eq!(hits_of(&sealed_bus, &cn()), [(2, Why::Sealed)]);

        let mut ship = Trips::default();
        let info = TripInfo { mode: Mode::Ship, departure: 100, arrival: None, sealed: false };
        for r in [rider(1, Some(7), None), rider(2, Some(7), None), rider(3, Some(8), None), rider(4, None, None)] {
            ship.add_rider(0, info, r);
        }
        assert_eq!(hits_of(&ship, &cn()), [(2, Why::Cabin), (4, Why::SeatUnknown)]);
    }

    #[test]
    fn the_window_and_the_least_overlap() {
        let mut t = Trips::default();
        let info = TripInfo { mode: Mode::Bus, departure: 100, arrival: Some(700), sealed: true };
        t.add_rider(0, info, rider(1, None, None));
        t.add_rider(0, info, rider(2, None, None));
        let rules = cn();
        let at = |from: i64, to: i64, min: i64| {
            t.hits(&[(1, from)], to, &SeatRules { min_overlap: min, ..rules }, &[false; 4])
                .iter()
                .map(|h| (h.from, h.to))
                .collect::<Vec<_>>()
        };
        assert_eq!(at(0, 10_000, 0), [(100, 700)]);
        assert_eq!(at(400, 10_000, 0), [(400, 700)], "the window opens on board");
        assert_eq!(at(400, 10_000, 300), [(400, 700)], "300 s shared, exactly the least");
        assert!(at(401, 10_000, 300).is_empty(), "299 s shared");
        assert!(at(700, 10_000, 0).is_empty(), "the trip was over when the window opened");
        assert!(at(0, 100, 0).is_empty(), "the window closed at departure");
        // Excluded persons are not hits; a trip without arrival is an instant.
        assert!(t.hits(&[(1, 0)], 10_000, &rules, &[false, false, true]).is_empty());
        let mut instant = Trips::default();
        let info = TripInfo { arrival: None, ..info };
        instant.add_rider(0, info, rider(1, None, None));
        instant.add_rider(0, info, rider(2, None, None));
        assert_eq!(instant.hits(&[(1, 100)], 101, &rules, &[false; 4]).len(), 1);
        assert!(instant.hits(&[(1, 101)], 10_000, &rules, &[false; 4]).is_empty());
        assert!(instant.hits(&[(1, 0)], 10_000, &SeatRules { min_overlap: 1, ..rules }, &[false; 4]).is_empty());
    }
}
