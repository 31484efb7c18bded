//! The structural knobs of the synthetic city, with documented defaults.
//!
//! These shape the city (how many restaurants per person, how long people stay at work, what
//! share of check-ins lack a check-out); they are not policy or pathogen numbers, which live in
//! profile TOML files. Every field can be overridden; [`CityParams::validate`] rejects bad values
//! before any work starts.

use chainbreak_core::model::PlaceKind;
use jiff::civil::Date;

use crate::SimError;

/// How many places of one kind the city has, and how heavy-tailed their sizes are.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceKindParams {
    pub kind: PlaceKind,
    /// Residents per place of this kind (1 place per `persons_per_place` residents).
    pub persons_per_place: f64,
    /// At least this many places of the kind, whatever the city's size.
    pub min_count: u32,
    /// Pareto shape of the place's attractiveness (visitors and staff); smaller is heavier-tailed.
    pub size_alpha: f64,
    /// Whether places of this kind are key places (their own testing regime).
    pub key_place: bool,
}

/// An occupation and where its workers work.
#[derive(Debug, Clone, PartialEq)]
pub struct OccupationParams {
    pub name: &'static str,
    /// Share of employed persons with this occupation (shares are normalised).
    pub share: f64,
    /// The place kinds its workplaces are drawn from.
    pub kinds: &'static [PlaceKind],
    /// Works on weekends too (shift work) with this probability per weekend day.
    pub weekend_work: f64,
}

/// The synthetic city's parameters. `CityParams::new(persons, days, seed)` gives the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CityParams {
    pub persons: u32,
    pub days: u32,
    pub seed: u64,
    /// First simulated day (local calendar day).
    pub start: Date,
    /// Offset of local time from UTC in hours (Asia/Shanghai: 8, no daylight saving time).
    pub utc_offset_hours: i32,
    /// South-west corner of the city (WGS 84).
    pub origin_lon: f64,
    pub origin_lat: f64,
    /// Side of one building's grid cell in degrees (~0.0015° ≈ 150 m).
    pub cell_deg: f64,
    /// Mean households per residential building (uniform between half and 1.5 times this).
    pub households_per_building: f64,
    /// Household size shares for sizes 1, 2, ... 6 (China's 2020 census: mean ≈ 2.6).
    pub household_size_shares: Vec<f64>,
    /// Share of persons aged 23–59 who work.
    pub employment_rate: f64,
    /// Share of persons aged 18–22 who study (the rest work).
    pub university_share: f64,
    /// Workers whose workplace is drawn among places near home (the rest: anywhere, by size).
    pub local_work_share: f64,
    /// Commuters who take the metro (check in at a transit station near home and near work).
    pub transit_share: f64,
    /// Commuters who take a bus (recorded as a trip passenger with a seat row).
    pub bus_share: f64,
    /// Office-type workers who go out for lunch on a working day.
    pub lunch_out_share: f64,
    /// Probability of an errand on the way home from work or school.
    pub evening_errand_share: f64,
    /// Probability that a person without work or school that day goes out.
    pub outing_share: f64,
    /// Probability of a second outing in the afternoon.
    pub second_outing_share: f64,
    /// Students attending school on a weekday; workers going to work on a weekday.
    pub attendance: f64,
    /// Adults returning from a journey by train or plane, per person-day.
    pub travel_return_rate: f64,
    /// Of those, the share coming by plane (the rest: by train).
    pub flight_share: f64,
    /// Of flights, the share from abroad.
    pub abroad_flight_share: f64,
    /// Share of venue check-ins that are never recorded (no scan) although the person was there.
    pub missed_checkin_share: f64,
    /// Share of recorded check-ins without a check-out (`t_out` empty).
    pub no_checkout_share: f64,
    /// Share of persons whose phone app emits location pings (0: no pings file).
    pub ping_share: f64,
    /// Interval between pings of an app user while at a place, in minutes.
    pub ping_interval_min: u32,
    /// Students per class.
    pub class_size: u32,
    /// Staff per team at workplaces.
    pub team_size: u32,
    /// Number of nearby places of each kind a building's residents choose from.
    pub near_candidates: usize,
    /// Places per kind.
    pub place_kinds: Vec<PlaceKindParams>,
    /// Occupations of employed persons.
    pub occupations: Vec<OccupationParams>,
}

use PlaceKind as K;

fn kind(kind: PlaceKind, persons_per_place: f64, min_count: u32, size_alpha: f64, key_place: bool) -> PlaceKindParams {
    PlaceKindParams { kind, persons_per_place, min_count, size_alpha, key_place }
}

fn occ(name: &'static str, share: f64, kinds: &'static [PlaceKind], weekend_work: f64) -> OccupationParams {
    OccupationParams { name, share, kinds, weekend_work }
}

impl CityParams {
    /// The defaults for a city of `persons` people simulated for `days` days.
    pub fn new(persons: u32, days: u32, seed: u64) -> CityParams {
        CityParams {
            persons,
            days,
            seed,
            start: jiff::civil::date(2022, 3, 1),
            utc_offset_hours: 8,
            origin_lon: 114.20,
            origin_lat: 30.45,
            cell_deg: 0.0015,
            households_per_building: 60.0,
            household_size_shares: vec![0.25, 0.30, 0.21, 0.13, 0.07, 0.04],
            employment_rate: 0.80,
            university_share: 0.45,
            local_work_share: 0.5,
            transit_share: 0.40,
            bus_share: 0.10,
            lunch_out_share: 0.5,
            evening_errand_share: 0.55,
            outing_share: 0.85,
            second_outing_share: 0.6,
            attendance: 0.96,
            travel_return_rate: 0.002,
            flight_share: 0.35,
            abroad_flight_share: 0.2,
            missed_checkin_share: 0.05,
            no_checkout_share: 0.12,
            ping_share: 0.0,
            ping_interval_min: 30,
            class_size: 40,
            team_size: 12,
            near_candidates: 8,
            place_kinds: vec![
                kind(K::Workplace, 40.0, 1, 1.6, false),
                kind(K::School, 1500.0, 1, 2.5, true),
                kind(K::Hospital, 50_000.0, 1, 2.0, true),
                kind(K::FeverClinic, 40_000.0, 1, 2.5, true),
                kind(K::Pharmacy, 3_000.0, 1, 2.5, false),
                kind(K::Market, 2_500.0, 1, 2.0, false),
                kind(K::Mall, 30_000.0, 1, 1.5, false),
                kind(K::Restaurant, 400.0, 1, 1.8, false),
                kind(K::TransitStation, 5_000.0, 1, 2.0, false),
                kind(K::Airport, 2_000_000.0, 1, 2.0, true),
                kind(K::TrainStation, 500_000.0, 1, 2.0, true),
                kind(K::ColdChainWarehouse, 100_000.0, 1, 2.0, false),
                kind(K::QuarantineFacility, 200_000.0, 1, 2.0, false),
                kind(K::Other, 1_200.0, 1, 1.8, false),
            ],
            occupations: vec![
                occ("office_worker", 0.50, &[K::Workplace], 0.05),
                occ("factory_worker", 0.12, &[K::Workplace], 0.3),
                occ("retail_worker", 0.07, &[K::Market, K::Mall, K::Pharmacy], 0.6),
                occ("restaurant_worker", 0.06, &[K::Restaurant], 0.7),
                occ("service_worker", 0.05, &[K::Other], 0.5),
                occ("transport_worker", 0.03, &[K::TransitStation, K::TrainStation, K::Airport], 0.6),
                occ("health_worker", 0.035, &[K::Hospital, K::FeverClinic], 0.5),
                occ("teacher", 0.05, &[K::School], 0.0),
                occ("courier", 0.025, &[K::Workplace], 0.5),
                occ("cold_chain_worker", 0.006, &[K::ColdChainWarehouse], 0.4),
                occ("port_worker", 0.006, &[K::Other], 0.4),
                occ("quarantine_staff", 0.003, &[K::QuarantineFacility], 0.6),
            ],
        }
    }

    /// Checks every parameter; the error names the field and the accepted range.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |field: &str, msg: String| Err(SimError::Param { field: field.to_string(), message: msg });
        if self.persons < 50 {
            return bad("persons", format!("{} is too few: a city needs at least 50 persons", self.persons));
        }
        if self.persons > 50_000_000 {
            return bad("persons", format!("{} is more than the 50,000,000 supported", self.persons));
        }
        if self.days == 0 || self.days > 3660 {
            return bad("days", format!("{} is outside 1..=3660", self.days));
        }
        if !(-12..=14).contains(&self.utc_offset_hours) {
            return bad("utc_offset_hours", format!("{} is outside -12..=14", self.utc_offset_hours));
        }
        if !(-180.0..=180.0).contains(&self.origin_lon) || !(-85.0..=85.0).contains(&self.origin_lat) {
            return bad("origin", "longitude must be in -180..=180 and latitude in -85..=85".into());
        }
        if !(self.cell_deg > 0.0 && self.cell_deg <= 0.1) {
            return bad("cell_deg", format!("{} is outside (0, 0.1]", self.cell_deg));
        }
        if !(self.households_per_building >= 1.0 && self.households_per_building <= 10_000.0) {
            return bad("households_per_building", format!("{} is outside 1..=10000", self.households_per_building));
        }
        if self.household_size_shares.is_empty()
            || self.household_size_shares.iter().any(|s| !(s.is_finite() && *s >= 0.0))
            || self.household_size_shares.iter().sum::<f64>() <= 0.0
        {
            return bad("household_size_shares", "need at least one share, all finite and ≥ 0, sum > 0".into());
        }
        for (field, v) in [
            ("employment_rate", self.employment_rate),
            ("university_share", self.university_share),
            ("local_work_share", self.local_work_share),
            ("transit_share", self.transit_share),
            ("bus_share", self.bus_share),
            ("lunch_out_share", self.lunch_out_share),
            ("evening_errand_share", self.evening_errand_share),
            ("outing_share", self.outing_share),
            ("second_outing_share", self.second_outing_share),
            ("attendance", self.attendance),
            ("travel_return_rate", self.travel_return_rate),
            ("flight_share", self.flight_share),
            ("abroad_flight_share", self.abroad_flight_share),
            ("missed_checkin_share", self.missed_checkin_share),
            ("no_checkout_share", self.no_checkout_share),
            ("ping_share", self.ping_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(field, format!("{v} is not a share in 0..=1"));
            }
        }
        if self.transit_share + self.bus_share > 1.0 {
            return bad("bus_share", "transit_share + bus_share must not exceed 1".into());
        }
        if self.ping_interval_min == 0 || self.ping_interval_min > 1440 {
            return bad("ping_interval_min", format!("{} is outside 1..=1440", self.ping_interval_min));
        }
        if self.class_size == 0 || self.team_size == 0 {
            return bad("class_size", "class and team sizes must be at least 1".into());
        }
        if self.near_candidates == 0 || self.near_candidates > 64 {
            return bad("near_candidates", format!("{} is outside 1..=64", self.near_candidates));
        }
        for k in PlaceKind::ALL.iter().filter(|k| **k != PlaceKind::Residence) {
            let Some(p) = self.place_kinds.iter().find(|p| p.kind == *k) else {
                return bad("place_kinds", format!("no entry for place kind `{k}`"));
            };
            if !(p.persons_per_place >= 1.0 && p.persons_per_place.is_finite()) {
                return bad("place_kinds", format!("`{k}`: persons_per_place {} must be ≥ 1", p.persons_per_place));
            }
            if !(p.size_alpha > 1.0 && p.size_alpha <= 10.0) {
                return bad("place_kinds", format!("`{k}`: size_alpha {} is outside (1, 10]", p.size_alpha));
            }
        }
        if self.place_kinds.iter().any(|p| p.kind == PlaceKind::Residence) {
            return bad("place_kinds", "residences are one per building, not a place_kinds entry".into());
        }
        if self.occupations.is_empty()
            || self.occupations.iter().any(|o| o.share.is_nan() || o.share < 0.0 || o.kinds.is_empty())
        {
            return bad("occupations", "need occupations with shares ≥ 0 and at least one place kind each".into());
        }
        // Names are written as they are into CSV columns (persons, staff): plain words only.
        if let Some(o) = self.occupations.iter().find(|o| {
            o.name.is_empty() || !o.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        }) {
            return bad("occupations", format!("name {:?} is not a word of a-z, 0-9 and _", o.name));
        }
        if self.occupations.iter().map(|o| o.share).sum::<f64>() <= 0.0 {
            return bad("occupations", "occupation shares sum to 0".into());
        }
        Ok(())
    }

    /// The parameters of a place kind (every kind but residence has one after `validate`).
    pub fn kind_params(&self, kind: PlaceKind) -> Option<&PlaceKindParams> {
        self.place_kinds.iter().find(|p| p.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_mean_household_is_about_2_6() {
        let p = CityParams::new(1000, 14, 1);
        p.validate().unwrap();
        let s = &p.household_size_shares;
        let total: f64 = s.iter().sum();
        let mean: f64 = s.iter().enumerate().map(|(i, w)| (i + 1) as f64 * w).sum::<f64>() / total;
        assert!((mean - 2.6).abs() < 0.1, "{mean}");
    }

    #[test]
    fn bad_values_are_named() {
        let mut p = CityParams::new(1000, 14, 1);
        p.no_checkout_share = 1.5;
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("no_checkout_share") && e.contains("1.5"), "{e}");
        let e = CityParams::new(10, 14, 1).validate().unwrap_err().to_string();
        assert!(e.contains("persons"), "{e}");
        let e = CityParams::new(100, 0, 1).validate().unwrap_err().to_string();
        assert!(e.contains("days"), "{e}");
        let mut p = CityParams::new(1000, 14, 1);
        p.occupations[0].name = "office, worker";
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("occupations") && e.contains("office, worker"), "{e}");
    }
}
