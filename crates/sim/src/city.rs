//! The synthetic city: an area hierarchy over a grid of residential buildings, places of every
//! kind with heavy-tailed sizes, households, persons with ages and occupations, workplaces,
//! schools and classes. Built once from [`CityParams`]; immutable afterwards.

use chainbreak_core::model::{PlaceKind, Sex};
use rand::RngExt;
use rand_distr::{Distribution, Pareto};
use rayon::prelude::*;

use crate::SimError;
use crate::params::CityParams;
use crate::rng::{Stream, rng};

/// "No such index".
pub const NONE: u32 = u32::MAX;

/// Buildings per level block, finest first: 3×3 buildings a compound, 2×2 compounds a
/// community, 3×3 communities a subdistrict, 3×3 subdistricts a district.
const BLOCK_SIDES: [u32; 4] = [3, 2, 3, 3];

/// A level of the area hierarchy below the city (`DEFAULT_AREA_LEVELS` from district down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    District = 0,
    Subdistrict = 1,
    Community = 2,
    Compound = 3,
    Building = 4,
}

/// What a person does on weekdays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Too young for school: stays home.
    Infant,
    Student,
    Worker,
    /// Retired or not working: errands.
    AtHome,
}

/// How a commuter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commute {
    Walk,
    Metro,
    Bus,
}

/// A person (index = position in the city's vectors; id `P{index+1:07}`).
#[derive(Debug, Clone)]
pub struct Person {
    pub birth_year: i32,
    pub sex: Sex,
    pub household: u32,
    /// The residence building (= its residence place index).
    pub building: u32,
    pub role: Role,
    /// Index into `CityParams::occupations` for workers; `NONE` otherwise.
    pub occupation: u32,
    /// Workplace or school place; `NONE` for infants and persons at home.
    pub anchor: u32,
    /// Class (students) or team (workers) group index; `NONE` otherwise.
    pub group: u32,
    pub commute: Commute,
}

/// A place (index = position; id `L{index+1:07}`). Places `0..buildings` are the residences.
#[derive(Debug, Clone)]
pub struct Place {
    pub kind: PlaceKind,
    /// The building whose cell the place lies in.
    pub building: u32,
    pub lat: f64,
    pub lon: f64,
    /// Attractiveness (heavy-tailed): visitors and staff are drawn in proportion.
    pub weight: f32,
    /// A port terminal (kind `other`): where port workers work and goods enter.
    pub port: bool,
    /// Ordinal within its kind (for names).
    pub ordinal: u32,
}

/// A group: household, class or team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Household,
    Class,
    Team,
}

/// Nearby places of one kind from one building, with cumulative weights for drawing.
#[derive(Debug, Clone, Default)]
pub struct Near {
    pub places: Vec<u32>,
    pub cumulative: Vec<f32>,
}

impl Near {
    pub fn pick<R: rand::Rng>(&self, r: &mut R) -> u32 {
        pick_cumulative(&self.places, &self.cumulative, r)
    }
    pub fn first(&self) -> u32 {
        self.places[0]
    }
}

fn pick_cumulative<R: rand::Rng>(items: &[u32], cumulative: &[f32], r: &mut R) -> u32 {
    let total = *cumulative.last().expect("non-empty");
    let x = r.random::<f32>() * total;
    let i = cumulative.partition_point(|c| *c <= x).min(items.len() - 1);
    items[i]
}

/// The kinds residents pick near home (errands, transit, care).
pub const NEAR_KINDS: [PlaceKind; 9] = [
    PlaceKind::Market,
    PlaceKind::Pharmacy,
    PlaceKind::Restaurant,
    PlaceKind::Mall,
    PlaceKind::Other,
    PlaceKind::TransitStation,
    PlaceKind::FeverClinic,
    PlaceKind::School,
    PlaceKind::Workplace,
];

fn near_slot(kind: PlaceKind) -> Option<usize> {
    NEAR_KINDS.iter().position(|k| *k == kind)
}

/// The synthetic city.
#[derive(Debug)]
pub struct City {
    pub params: CityParams,
    pub buildings: u32,
    /// Districts laid out in a grid this many wide.
    pub district_cols: u32,
    pub persons: Vec<Person>,
    pub places: Vec<Place>,
    /// Households: (first person, size); persons of a household are contiguous.
    pub households: Vec<(u32, u32)>,
    /// Classes and teams: (place, members); group ids follow households.
    pub groups: Vec<(GroupKind, u32, Vec<u32>)>,
    /// Places of each kind (indexed by `PlaceKind as usize`), with cumulative weights.
    pub by_kind: Vec<Near>,
    /// For each building, for each of [`NEAR_KINDS`], the nearby places.
    pub near: Vec<Vec<Near>>,
    /// Staff of each place (persons whose anchor it is, except students).
    pub staff: Vec<Vec<u32>>,
    /// Unix second of local midnight of the first day.
    pub t0: i64,
    /// Weekday (Monday = 1 ... Sunday = 7) of the first day.
    pub first_weekday: i8,
    /// Everyone's weekly routine (planned last, once the rest of the city stands).
    pub week: crate::day::Week,
}

impl City {
    /// Builds the city with everyone's weekly routine. Checks the parameters first.
    pub fn build(params: CityParams) -> Result<City, SimError> {
        let mut city = City::build_without_week(params)?;
        city.week = crate::day::Week::build(&city);
        Ok(city)
    }

    /// Builds the city without planning the weekly routine ([`City::week`] empty), for callers
    /// that plan it with [`crate::day::Week::build`] while doing other work on the city (such as
    /// writing its files). Checks the parameters first.
    pub fn build_without_week(params: CityParams) -> Result<City, SimError> {
        params.validate()?;
        let seed = params.seed;
        let start = params.start;
        let t0 = start
            .to_zoned(jiff::tz::TimeZone::fixed(
                jiff::tz::Offset::from_hours(params.utc_offset_hours as i8).expect("validated"),
            ))
            .map_err(|e| SimError::Param { field: "start".into(), message: e.to_string() })?
            .timestamp()
            .as_second();
        let first_weekday = start.weekday().to_monday_one_offset();

        // ---- households and persons
        let mut r = rng(seed, Stream::Persons, 0, 0);
        let shares = &params.household_size_shares;
        let share_total: f64 = shares.iter().sum();
        let year = start.year() as i32;
        let mut persons: Vec<Person> = Vec::with_capacity(params.persons as usize);
        let mut households = Vec::new();
        while (persons.len() as u32) < params.persons {
            let mut x = r.random::<f64>() * share_total;
            let mut size = shares.len();
            for (i, s) in shares.iter().enumerate() {
                if x < *s {
                    size = i + 1;
                    break;
                }
                x -= s;
            }
            let size = (size as u32).min(params.persons - persons.len() as u32);
            let h = households.len() as u32;
            households.push((persons.len() as u32, size));
            let head_age: i32 = if r.random_bool(0.72) { r.random_range(22..60) } else { r.random_range(60..88) };
            for m in 0..size {
                let age = match m {
                    0 => head_age,
                    1 => (head_age + r.random_range(-5..=5)).max(20),
                    _ if head_age < 55 => r.random_range(0..=(head_age - 20).clamp(0, 17)),
                    _ if r.random_bool(0.5) => r.random_range(20..45),
                    _ => r.random_range(60..92),
                };
                let sex = if m == 1 && size >= 2 {
                    if persons.last().map(|p: &Person| p.sex) == Some(Sex::Male) { Sex::Female } else { Sex::Male }
                } else if r.random_bool(0.5) {
                    Sex::Female
                } else {
                    Sex::Male
                };
                let role = match age {
                    0..=2 => Role::Infant,
                    3..=17 => Role::Student,
                    18..=22 if r.random_bool(params.university_share) => Role::Student,
                    18..=59 if r.random_bool(params.employment_rate) => Role::Worker,
                    60..=64 if r.random_bool(0.2) => Role::Worker,
                    _ => Role::AtHome,
                };
                let commute = {
                    let x = r.random::<f64>();
                    if x < params.transit_share {
                        Commute::Metro
                    } else if x < params.transit_share + params.bus_share {
                        Commute::Bus
                    } else {
                        Commute::Walk
                    }
                };
                persons.push(Person {
                    birth_year: year - age,
                    sex,
                    household: h,
                    building: NONE,
                    role,
                    occupation: NONE,
                    anchor: NONE,
                    group: NONE,
                    commute,
                });
            }
        }

        // ---- buildings: households fill buildings in order
        let hpb = params.households_per_building;
        let mut building = 0u32;
        let mut left = r.random_range((hpb * 0.5).max(1.0)..=(hpb * 1.5).max(1.0)).round() as u32;
        for &(first, size) in &households {
            if left == 0 {
                building += 1;
                left = r.random_range((hpb * 0.5).max(1.0)..=(hpb * 1.5).max(1.0)).round() as u32;
            }
            left -= 1;
            for p in first..first + size {
                persons[p as usize].building = building;
            }
        }
        let buildings = building + 1;
        let per_district: u32 = BLOCK_SIDES.iter().map(|s| s * s).product();
        let districts = buildings.div_ceil(per_district);
        let district_cols = (districts as f64).sqrt().ceil() as u32;

        let mut city = City {
            params,
            buildings,
            district_cols,
            persons,
            places: Vec::new(),
            households,
            groups: Vec::new(),
            by_kind: vec![Near::default(); PlaceKind::ALL.len()],
            near: Vec::new(),
            staff: Vec::new(),
            t0,
            first_weekday,
            week: Default::default(),
        };

        // ---- places: a residence per building, then every other kind
        for b in 0..buildings {
            let (lon, lat) = city.cell_center(b);
            city.places.push(Place {
                kind: PlaceKind::Residence,
                building: b,
                lat,
                lon,
                weight: 1.0,
                port: false,
                ordinal: b,
            });
        }
        let mut r = rng(seed, Stream::Places, 0, 0);
        let n = city.params.persons as f64;
        for kp in city.params.place_kinds.clone() {
            let count = ((n / kp.persons_per_place).round() as u32).max(kp.min_count);
            let pareto = Pareto::new(1.0, kp.size_alpha).expect("validated");
            for i in 0..count {
                let b = r.random_range(0..buildings);
                let (lon, lat) = city.cell_center(b);
                let d = city.params.cell_deg * 0.35;
                let weight = pareto.sample(&mut r).min(1000.0) as f32;
                city.places.push(Place {
                    kind: kp.kind,
                    building: b,
                    lat: lat + r.random_range(-d..d),
                    lon: lon + r.random_range(-d..d),
                    weight,
                    port: false,
                    ordinal: i,
                });
            }
        }
        // Ports: `other` places where port workers work (at least one).
        let ports = ((n / 500_000.0).round() as u32).max(1);
        for p in city.places.iter_mut().filter(|p| p.kind == PlaceKind::Other).take(ports as usize) {
            p.port = true;
            p.weight = p.weight.max(5.0);
        }
        for (i, p) in city.places.iter().enumerate() {
            if p.kind == PlaceKind::Residence {
                continue;
            }
            let e = &mut city.by_kind[p.kind as usize];
            let last = e.cumulative.last().copied().unwrap_or(0.0);
            e.places.push(i as u32);
            e.cumulative.push(last + p.weight);
        }

        // ---- nearby places of each kind, per building (nearest by distance, weighted by size)
        let k = city.params.near_candidates;
        // The grid cell of each place of each kind, looked up once rather than per building.
        let cells: Vec<Vec<(u32, u32)>> = NEAR_KINDS
            .iter()
            .map(|kind| {
                let all = &city.by_kind[*kind as usize].places;
                all.iter().map(|&pl| city.cell(city.places[pl as usize].building)).collect()
            })
            .collect();
        let near: Vec<Vec<Near>> = (0..buildings)
            .into_par_iter()
            .map(|b| {
                let (bx, by) = city.cell(b);
                NEAR_KINDS
                    .iter()
                    .zip(&cells)
                    .map(|(kind, cells)| {
                        let all = &city.by_kind[*kind as usize].places;
                        let mut d: Vec<(u64, u32)> = all
                            .iter()
                            .zip(cells)
                            .map(|(&pl, &(x, y))| {
                                let dx = x as i64 - bx as i64;
                                let dy = y as i64 - by as i64;
                                (((dx * dx + dy * dy) as u64) << 32 | pl as u64, pl)
                            })
                            .collect();
                        let take = k.min(d.len());
                        if take < d.len() {
                            d.select_nth_unstable(take);
                            d.truncate(take);
                        }
                        d.sort_unstable();
                        let mut near = Near::default();
                        let mut acc = 0.0f32;
                        for (rank, (_, pl)) in d.iter().enumerate() {
                            // Nearer places are likelier: weight × 1 / (1 + rank).
                            acc += city.places[*pl as usize].weight / (1.0 + rank as f32);
                            near.places.push(*pl);
                            near.cumulative.push(acc);
                        }
                        near
                    })
                    .collect()
            })
            .collect();
        city.near = near;

        // ---- occupations, workplaces and schools
        let occ_total: f64 = city.params.occupations.iter().map(|o| o.share).sum();
        let mut staff: Vec<Vec<u32>> = vec![Vec::new(); city.places.len()];
        let mut students_at: Vec<Vec<u32>> = vec![Vec::new(); city.places.len()];
        for i in 0..city.persons.len() {
            let mut r = rng(seed, Stream::Persons, 1, i as u64);
            let p = &city.persons[i];
            let home = p.building as usize;
            let age = year - p.birth_year;
            match p.role {
                Role::Worker => {
                    let mut x = r.random::<f64>() * occ_total;
                    let mut o = city.params.occupations.len() - 1;
                    for (j, oc) in city.params.occupations.iter().enumerate() {
                        if x < oc.share {
                            o = j;
                            break;
                        }
                        x -= oc.share;
                    }
                    let occ = &city.params.occupations[o];
                    let kind = occ.kinds[r.random_range(0..occ.kinds.len())];
                    let place = if occ.name == "port_worker" {
                        let ports: Vec<u32> = city.by_kind[PlaceKind::Other as usize]
                            .places
                            .iter()
                            .copied()
                            .filter(|pl| city.places[*pl as usize].port)
                            .collect();
                        ports[r.random_range(0..ports.len())]
                    } else if let Some(slot) = near_slot(kind).filter(|_| r.random_bool(city.params.local_work_share)) {
                        city.near[home][slot].pick(&mut r)
                    } else {
                        city.by_kind[kind as usize].pick(&mut r)
                    };
                    let p = &mut city.persons[i];
                    p.occupation = o as u32;
                    p.anchor = place;
                    staff[place as usize].push(i as u32);
                }
                Role::Student => {
                    let school_slot = near_slot(PlaceKind::School).expect("school is a near kind");
                    let place = if age >= 18 {
                        city.by_kind[PlaceKind::School as usize].pick(&mut r)
                    } else if r.random_bool(0.8) {
                        city.near[home][school_slot].first()
                    } else {
                        city.near[home][school_slot].pick(&mut r)
                    };
                    city.persons[i].anchor = place;
                    students_at[place as usize].push(i as u32);
                }
                Role::Infant | Role::AtHome => {}
            }
        }

        // ---- classes (students of a school by birth year, in classes of class_size) and teams
        let class_size = city.params.class_size as usize;
        let team_size = city.params.team_size as usize;
        for (place, mut studs) in students_at.into_iter().enumerate() {
            studs.sort_by_key(|s| (city.persons[*s as usize].birth_year, *s));
            let years: Vec<i32> = studs.iter().map(|s| city.persons[*s as usize].birth_year).collect();
            let mut cohorts = Vec::new();
            let mut i = 0;
            while i < studs.len() {
                let j = i + years[i..].iter().take_while(|y| **y == years[i]).count();
                cohorts.push(&studs[i..j]);
                i = j;
            }
            for cohort in cohorts {
                for class in cohort.chunks(class_size) {
                    let g = city.groups.len() as u32;
                    for s in class {
                        city.persons[*s as usize].group = g;
                    }
                    city.groups.push((GroupKind::Class, place as u32, class.to_vec()));
                }
            }
        }
        for (place, members) in staff.iter().enumerate() {
            if city.places[place].kind != PlaceKind::Workplace {
                continue;
            }
            for team in members.chunks(team_size) {
                let g = city.groups.len() as u32;
                for s in team {
                    city.persons[*s as usize].group = g;
                }
                city.groups.push((GroupKind::Team, place as u32, team.to_vec()));
            }
        }
        city.staff = staff;
        Ok(city)
    }

    /// Grid cell (x, y) of a building.
    pub fn cell(&self, b: u32) -> (u32, u32) {
        let (mut x, mut y) = (0u32, 0u32);
        let mut rest = b;
        let mut unit = 1u32;
        for side in BLOCK_SIDES {
            let digit = rest % (side * side);
            rest /= side * side;
            x += (digit % side) * unit;
            y += (digit / side) * unit;
            unit *= side;
        }
        x += (rest % self.district_cols) * unit;
        y += (rest / self.district_cols) * unit;
        (x, y)
    }

    /// Centre (lon, lat) of a building's cell.
    pub fn cell_center(&self, b: u32) -> (f64, f64) {
        let (x, y) = self.cell(b);
        let c = self.params.cell_deg;
        (self.params.origin_lon + (x as f64 + 0.5) * c, self.params.origin_lat + (y as f64 + 0.5) * c)
    }

    /// Number of buildings per block at a level.
    pub fn block(level: Level) -> u32 {
        let sides = &BLOCK_SIDES[..(4 - level as usize)];
        sides.iter().map(|s| s * s).product()
    }

    /// Side of a level's block in cells.
    pub fn block_side(level: Level) -> u32 {
        BLOCK_SIDES[..(4 - level as usize)].iter().product()
    }

    /// Index of the area at `level` that holds building `b`.
    pub fn area_of(b: u32, level: Level) -> u32 {
        b / City::block(level)
    }

    /// Local day index → Unix second of its local midnight.
    pub fn day_start(&self, day: u32) -> i64 {
        self.t0 + day as i64 * 86_400
    }

    /// Whether a day is a weekend day (Saturday or Sunday).
    pub fn weekend(&self, day: u32) -> bool {
        (self.first_weekday as u32 - 1 + day) % 7 >= 5
    }

    /// Age in whole years at the start.
    pub fn age(&self, person: u32) -> i32 {
        self.params.start.year() as i32 - self.persons[person as usize].birth_year
    }

    /// Near places of `kind` from building `b` (kind must be one of [`NEAR_KINDS`]).
    pub fn near(&self, b: u32, kind: PlaceKind) -> &Near {
        &self.near[b as usize][near_slot(kind).expect("a near kind")]
    }

    /// Occupation name of a worker.
    pub fn occupation(&self, person: u32) -> Option<&'static str> {
        let o = self.persons[person as usize].occupation;
        (o != NONE).then(|| self.params.occupations[o as usize].name)
    }

    /// Total groups: households, then classes and teams.
    pub fn group_count(&self) -> usize {
        self.households.len() + self.groups.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_distinct_and_blocks_nest() {
        let city = City::build(CityParams::new(20_000, 1, 3)).unwrap();
        let mut seen = std::collections::HashSet::new();
        for b in 0..city.buildings {
            let (x, y) = city.cell(b);
            assert!(seen.insert((x, y)));
            // A building lies inside its compound's block.
            let side = City::block_side(Level::Compound);
            let k = City::area_of(b, Level::Compound);
            let (kx, ky) = city.cell(k * City::block(Level::Compound));
            assert!(x >= kx && x < kx + side && y >= ky && y < ky + side);
        }
    }

    #[test]
    fn households_average_about_2_6_and_every_kind_has_places() {
        let city = City::build(CityParams::new(30_000, 1, 5)).unwrap();
        let mean = city.persons.len() as f64 / city.households.len() as f64;
        assert!((2.4..2.8).contains(&mean), "{mean}");
        assert!(city.households.iter().all(|h| (1..=6).contains(&h.1)));
        for k in PlaceKind::ALL {
            assert!(city.places.iter().any(|p| p.kind == *k), "{k}");
        }
        let high_risk = ["cold_chain_worker", "port_worker", "courier", "health_worker", "quarantine_staff", "teacher"];
        for occ in high_risk {
            assert!((0..city.persons.len() as u32).any(|p| city.occupation(p) == Some(occ)), "{occ}");
        }
        // Heavy tail: the largest workplace has many times the median staff.
        let mut sizes: Vec<usize> = city
            .staff
            .iter()
            .zip(&city.places)
            .filter(|(_, p)| p.kind == PlaceKind::Workplace)
            .map(|(s, _)| s.len())
            .collect();
        sizes.sort_unstable();
        assert!(sizes[sizes.len() - 1] > 8 * sizes[sizes.len() / 2].max(1), "{:?}", &sizes[sizes.len() - 5..]);
    }
}
