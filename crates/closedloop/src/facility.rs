//! Quarantine facilities: rooms, who is in them, and how many will be needed.
//!
//! A room has a capacity (1 by default) and a state: clean, occupied, or to disinfect (after
//! its last occupant left, until someone records the disinfection). [`Facility::assign`]
//! never puts people of different risk groups (episode categories) in one room, respects
//! capacity, and puts members of one household together when the profile allows a household
//! to share; otherwise it takes the first clean empty room (rooms in id order, so the result
//! is deterministic). [`forecast`] projects the rooms needed over the coming days from the
//! episodes in and on their way to central quarantine.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::Serialize;

use crate::Category;

/// A room's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomState {
    Clean,
    Occupied,
    ToDisinfect,
}

/// A person in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Occupant {
    pub episode: String,
    pub person: String,
    pub household: Option<String>,
    pub group: Category,
}

/// A room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Room {
    pub id: String,
    pub capacity: u32,
    pub state: RoomState,
    pub occupants: Vec<Occupant>,
}

/// Why a facility refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FacilityError {
    #[error("no clean room is free in facility `{0}`")]
    Full(String),
    #[error("room `{0}` is not in facility `{1}`")]
    UnknownRoom(String, String),
    #[error("room `{room}` is {state:?}, not to disinfect")]
    NotToDisinfect { room: String, state: RoomState },
    #[error("episode `{0}` is in no room here")]
    NotHere(String),
    #[error("episode `{0}` already has a room here")]
    AlreadyHere(String),
    #[error("a room's capacity is at least 1 (room `{0}`)")]
    NoCapacity(String),
    #[error(
        "room `{0}` cannot take this person: full, waiting for disinfection, or shared with another risk group or household"
    )]
    Unfit(String),
}

/// A quarantine facility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facility {
    pub id: String,
    /// By id.
    pub rooms: BTreeMap<String, Room>,
}

/// Rooms by state, and people in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Occupancy {
    pub rooms: usize,
    pub clean: usize,
    pub occupied: usize,
    pub to_disinfect: usize,
    pub people: usize,
}

impl Facility {
    /// A facility with rooms `(id, capacity)`.
    pub fn new(id: &str, rooms: &[(&str, u32)]) -> Result<Facility, FacilityError> {
        let mut out = BTreeMap::new();
        for &(room, capacity) in rooms {
            if capacity == 0 {
                return Err(FacilityError::NoCapacity(room.to_string()));
            }
            out.insert(
                room.to_string(),
                Room { id: room.to_string(), capacity, state: RoomState::Clean, occupants: Vec::new() },
            );
        }
        Ok(Facility { id: id.to_string(), rooms: out })
    }

    /// The room of an episode.
    pub fn room_of(&self, episode: &str) -> Option<&Room> {
        self.rooms.values().find(|r| r.occupants.iter().any(|o| o.episode == episode))
    }

    /// Gives `who` a room: with their household when `household_may_share` and one of them is
    /// in a room of the same risk group with space; otherwise the first clean empty room.
    pub fn assign(&mut self, who: Occupant, household_may_share: bool) -> Result<String, FacilityError> {
        if self.room_of(&who.episode).is_some() {
            return Err(FacilityError::AlreadyHere(who.episode));
        }
        let shared = household_may_share
            .then(|| {
                let household = who.household.as_ref()?;
                self.rooms.values().find(|r| {
                    r.state == RoomState::Occupied
                        && (r.occupants.len() as u32) < r.capacity
                        && r.occupants.iter().all(|o| o.group == who.group && o.household.as_ref() == Some(household))
                })
            })
            .flatten()
            .map(|r| r.id.clone());
        let room = match shared {
            Some(room) => room,
            None => self
                .rooms
                .values()
                .find(|r| r.state == RoomState::Clean && r.occupants.is_empty())
                .map(|r| r.id.clone())
                .ok_or_else(|| FacilityError::Full(self.id.clone()))?,
        };
        let r = self.rooms.get_mut(&room).expect("found above");
        r.occupants.push(who);
        r.state = RoomState::Occupied;
        Ok(room)
    }

    /// Puts `who` in the room named: clean or occupied (not waiting for disinfection), with
    /// space, and its occupants (if any) of the same risk group and — only where the profile
    /// lets a household share — of the same household.
    pub fn place(&mut self, who: Occupant, room: &str, household_may_share: bool) -> Result<(), FacilityError> {
        if self.room_of(&who.episode).is_some() {
            return Err(FacilityError::AlreadyHere(who.episode));
        }
        let id = self.id.clone();
        let r = self.rooms.get_mut(room).ok_or_else(|| FacilityError::UnknownRoom(room.into(), id))?;
        let shares = |o: &Occupant| {
            o.group == who.group && household_may_share && who.household.is_some() && o.household == who.household
        };
        if r.state == RoomState::ToDisinfect
            || r.occupants.len() as u32 >= r.capacity
            || !r.occupants.iter().all(shares)
        {
            return Err(FacilityError::Unfit(room.into()));
        }
        r.occupants.push(who);
        r.state = RoomState::Occupied;
        Ok(())
    }

    /// The episode leaves its room; an emptied room is to be disinfected.
    pub fn leave(&mut self, episode: &str) -> Result<String, FacilityError> {
        let room = self.room_of(episode).map(|r| r.id.clone()).ok_or_else(|| FacilityError::NotHere(episode.into()))?;
        let r = self.rooms.get_mut(&room).expect("found above");
        r.occupants.retain(|o| o.episode != episode);
        if r.occupants.is_empty() {
            r.state = RoomState::ToDisinfect;
        }
        Ok(room)
    }

    /// A room was disinfected: clean again.
    pub fn disinfected(&mut self, room: &str) -> Result<(), FacilityError> {
        let id = self.id.clone();
        let r = self.rooms.get_mut(room).ok_or_else(|| FacilityError::UnknownRoom(room.into(), id))?;
        if r.state != RoomState::ToDisinfect {
            return Err(FacilityError::NotToDisinfect { room: room.into(), state: r.state });
        }
        r.state = RoomState::Clean;
        Ok(())
    }

    pub fn occupancy(&self) -> Occupancy {
        let count = |s| self.rooms.values().filter(|r| r.state == s).count();
        Occupancy {
            rooms: self.rooms.len(),
            clean: count(RoomState::Clean),
            occupied: count(RoomState::Occupied),
            to_disinfect: count(RoomState::ToDisinfect),
            people: self.rooms.values().map(|r| r.occupants.len()).sum(),
        }
    }
}

/// One day of a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ForecastDay {
    pub date: Date,
    /// Rooms needed: those occupied by people still in central quarantine that day, plus one
    /// for each person expected to arrive and still there.
    pub rooms_needed: usize,
    pub rooms: usize,
    /// More rooms needed than there are.
    pub short: bool,
}

/// The rooms needed on each of `days` days from `today`: `staying` are the rooms occupied now
/// with the last day their occupants stay (the latest of them); `expected` the people on their
/// way (confirmed or notified for central quarantine) with the last day they will stay.
pub fn forecast(today: Date, days: u32, rooms: usize, staying: &[Date], expected: &[Date]) -> Vec<ForecastDay> {
    (0..days as i64)
        .filter_map(|d| today.checked_add(jiff::Span::new().days(d)).ok())
        .map(|date| {
            let needed = staying.iter().chain(expected).filter(|last| **last >= date).count();
            ForecastDay { date, rooms_needed: needed, rooms, short: needed > rooms }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(episode: &str, household: Option<&str>, group: Category) -> Occupant {
        Occupant {
            episode: episode.into(),
            person: format!("P-{episode}"),
            household: household.map(String::from),
            group,
        }
    }

    #[test]
    fn rooms_are_never_mixed_and_households_share_when_allowed() {
        let mut f = Facility::new("F1", &[("101", 1), ("102", 3), ("103", 3)]).unwrap();
        assert_eq!(f.assign(who("E1", Some("H1"), Category::Close), true).unwrap(), "101");
        // 101 is full (capacity 1): the household member goes to the next clean room.
        assert_eq!(f.assign(who("E2", Some("H1"), Category::Close), true).unwrap(), "102");
        // ...and the next member joins them there.
        assert_eq!(f.assign(who("E3", Some("H1"), Category::Close), true).unwrap(), "102");
        // Same household, another risk group: never in the same room.
        assert_eq!(f.assign(who("E4", Some("H1"), Category::Arrival), true).unwrap(), "103");
        assert!(matches!(f.assign(who("E5", None, Category::Close), true), Err(FacilityError::Full(_))));
        assert!(matches!(f.assign(who("E1", None, Category::Close), true), Err(FacilityError::AlreadyHere(_))));
        assert_eq!(f.occupancy(), Occupancy { rooms: 3, clean: 0, occupied: 3, to_disinfect: 0, people: 4 });

        // Leaving: a room emptied is to disinfect, and only then clean again.
        assert_eq!(f.leave("E1").unwrap(), "101");
        assert!(matches!(f.assign(who("E5", None, Category::Close), true), Err(FacilityError::Full(_))));
        assert!(f.disinfected("102").is_err(), "still occupied");
        f.disinfected("101").unwrap();
        assert_eq!(f.assign(who("E5", None, Category::Close), false).unwrap(), "101");
        assert!(f.leave("E9").is_err());

        // A room named: only where it fits.
        let mut h = Facility::new("F4", &[("1", 2), ("2", 2)]).unwrap();
        h.place(who("A", Some("H"), Category::Close), "1", true).unwrap();
        assert!(matches!(h.place(who("B", Some("K"), Category::Close), "1", true), Err(FacilityError::Unfit(_))));
        assert!(matches!(h.place(who("B", Some("H"), Category::Arrival), "1", true), Err(FacilityError::Unfit(_))));
        assert!(matches!(h.place(who("B", Some("H"), Category::Close), "1", false), Err(FacilityError::Unfit(_))));
        h.place(who("B", Some("H"), Category::Close), "1", true).unwrap();
        assert!(
            matches!(h.place(who("C", Some("H"), Category::Close), "1", true), Err(FacilityError::Unfit(_))),
            "full"
        );
        assert!(matches!(h.place(who("C", None, Category::Close), "9", true), Err(FacilityError::UnknownRoom(..))));
        h.place(who("C", None, Category::Close), "2", false).unwrap();

        // Without household sharing everyone gets their own room.
        let mut g = Facility::new("F2", &[("1", 2), ("2", 2)]).unwrap();
        assert_eq!(g.assign(who("A", Some("H"), Category::Close), false).unwrap(), "1");
        assert_eq!(g.assign(who("B", Some("H"), Category::Close), false).unwrap(), "2");
        assert!(Facility::new("F3", &[("x", 0)]).is_err());
    }

    #[test]
    fn the_forecast_counts_who_stays_and_who_comes() {
        let d = |day| jiff::civil::date(2022, 3, day);
        let f = forecast(d(10), 4, 3, &[d(10), d(12), d(20)], &[d(11), d(13)]);
        let needed: Vec<(usize, bool)> = f.iter().map(|x| (x.rooms_needed, x.short)).collect();
        assert_eq!(needed, [(5, true), (4, true), (3, false), (2, false)]);
        assert_eq!(f[3].date, d(13));
    }
}
