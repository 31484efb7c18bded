//! Contact tracing: the trace engine ([`chainbreak_trace`]) built from the store and queried
//! by id.
//!
//! [`Tracer::load`] builds the co-presence index from one consistent scan of the store's
//! visits, with the profile's assumed stays for visits without a check-out and the store's
//! merges; [`Tracer::trace`] runs a rule for index persons (or cases: [`case_index`]) and
//! answers with ids, the evidence of every contact and a hash of the contact sets (SHA-256 of
//! the lines `{tier}\t{person_id}\n` sorted by tier then id, the same as the benchmark's
//! reference implementation computes).

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chainbreak_core::model::{Classification, GroupKind, PlaceKind, TripMode, TripRole};
use chainbreak_core::profile::Profile;
use chainbreak_core::time::Calendar;
use chainbreak_store::Store;
use chainbreak_trace::trips::{FlightRows, Mode, Rider, TrainBays, Why};
use chainbreak_trace::{
    Contact, Exposure, Grid, GridBuilder, GroupHit, Groups, Index, IndexBuilder, IndexPerson, SeatRules, TripHit,
    TripInfo, Trips, VenueOverlap,
};
use jiff::{SignedDuration, Timestamp};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AppError;

/// A person's or place's id in answers: shared with the tracer's tables, so that an answer
/// of a million contacts does not copy a million strings.
pub type Id = std::sync::Arc<str>;

/// The ids a tracer answers in and its places' kinds: shared with its reports, which keep
/// keys and spell ids only when they are read or serialised.
#[derive(Debug, Clone, Default)]
struct Names {
    person_ids: Vec<Id>,
    /// Each person key's rank by id (see [`ranks`]).
    person_rank: Option<Vec<u32>>,
    /// The person ids one after the other in the order of the ids, and where each one ends: the
    /// contacts of a report, in that order, read them in sequence (the shared ids lie wherever
    /// the allocator put them).
    spelled: String,
    spelled_end: Vec<usize>,
    place_ids: Vec<Id>,
    /// Place kinds by key.
    kinds: Vec<PlaceKind>,
}

impl Names {
    fn new(person_ids: Vec<Id>, place_ids: Vec<Id>, kinds: Vec<PlaceKind>) -> Names {
        let person_rank = ranks(&person_ids);
        let mut by_rank: Vec<u32> = (0..person_ids.len() as u32).collect();
        if let Some(rank) = &person_rank {
            for (key, r) in rank.iter().enumerate() {
                by_rank[*r as usize] = key as u32;
            }
        }
        let mut spelled = String::with_capacity(person_ids.iter().map(|id| id.len()).sum());
        let mut spelled_end = Vec::with_capacity(person_ids.len());
        for key in by_rank {
            spelled.push_str(&person_ids[key as usize]);
            spelled_end.push(spelled.len());
        }
        Names { person_ids, person_rank, spelled, spelled_end, place_ids, kinds }
    }

    fn person_id(&self, key: u32) -> Id {
        self.person_ids.get(key as usize).cloned().unwrap_or_else(|| format!("#{key}").into())
    }

    fn place_id(&self, key: u32) -> Id {
        self.place_ids.get(key as usize).cloned().unwrap_or_else(|| format!("#{key}").into())
    }

    /// [`Names::person_id`] without a copy when the key is known.
    fn person_str(&self, key: u32) -> Cow<'_, str> {
        let at = match &self.person_rank {
            Some(rank) => rank.get(key as usize).map(|r| *r as usize),
            None => Some(key as usize),
        };
        match at.and_then(|at| self.spelled_end.get(at).map(|end| (at, *end))) {
            Some((at, end)) => {
                let start = if at == 0 { 0 } else { self.spelled_end[at - 1] };
                Cow::Borrowed(&self.spelled[start..end])
            }
            None => Cow::Owned(format!("#{key}")),
        }
    }

    /// [`Names::place_id`] without a copy when the key is known.
    fn place_str(&self, key: u32) -> Cow<'_, str> {
        match self.place_ids.get(key as usize) {
            Some(id) => Cow::Borrowed(id),
            None => Cow::Owned(format!("#{key}")),
        }
    }

    fn kind(&self, place: u32) -> PlaceKind {
        self.kinds.get(place as usize).copied().unwrap_or(PlaceKind::Other)
    }

    /// The setting of `place` in `settings` (by place kind), if it is one.
    fn setting<'a>(&self, settings: Option<&'a [Option<Setting>]>, place: u32) -> Option<&'a Setting> {
        settings.and_then(|s| s.get(self.kind(place) as usize)).and_then(Option::as_ref)
    }

    /// A piece of evidence at a place.
    fn evidence(&self, e: &Exposure) -> Result<Evidence, AppError> {
        Ok(Evidence {
            place_id: Some(self.place_id(e.place)),
            from: ts(e.start)?,
            to: ts(e.end)?,
            overlap_minutes: (e.end - e.start) as f64 / 60.0,
            exposed_to: self.person_id(e.source),
            check_out_assumed: e.contact_check_out_assumed || e.source_check_out_assumed,
            ..Evidence::default()
        })
    }
}

/// The evidence shown for a contact found at places: the first exposure, and the last when it
/// is another.
fn shown(c: &Contact) -> impl ExactSizeIterator<Item = &Exposure> + Clone {
    let n = if c.last != c.first { 2 } else { 1 };
    [&c.first, &c.last].into_iter().take(n)
}

/// How long loading took and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadStats {
    /// Where the index came from: `store` (a full scan) or `snapshot` (then caught up with the
    /// change feed).
    pub source: &'static str,
    pub load_seconds: f64,
    pub visits: u64,
    pub index_bytes: usize,
    /// Visits left out (outside the index's time range).
    pub dropped: u64,
    /// The change `seq` the index is current to.
    pub seq: u64,
}

/// The trace engine with the ids it answers in.
pub struct Tracer {
    index: Index,
    /// Person and place ids and place kinds, shared with the reports.
    names: Arc<Names>,
    person_keys: FxHashMap<String, u32>,
    /// Assumed stay (seconds) by place key, and for places beyond.
    dwell: Vec<u32>,
    default_dwell: u32,
    /// The profile's contact settings.
    settings: Settings,
    /// Groups (households, classes, teams, gatherings): their ids by number, and members.
    group_ids: Vec<String>,
    groups: Groups,
    /// Trips: their ids by number, and riders.
    trip_ids: Vec<String>,
    trips: Trips,
    /// Cell stays from location pings (when the profile traces grid co-location).
    grid: Option<Grid>,
    /// The change `seq` read up to, and the last visit row in the index.
    seq: u64,
    last_row: i64,
}

/// What [`Tracer::refresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Nothing had changed.
    Current,
    /// New visits (this many) were merged into the index.
    Extended(u64),
    /// Something the index cannot take in place (deleted visits, merges, a place's kind) made
    /// it rebuild from the store.
    Rebuilt,
}

/// Where a query's time went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QueryTimings {
    /// Finding the contacts of every category on the index (keys and compact evidence).
    pub contacts_seconds: f64,
    /// The answer in ids: evidence, the hash of the contact sets, links and trails.
    pub report_seconds: f64,
}

/// The first bytes of a snapshot file.
const SNAPSHOT_MAGIC: &[u8; 8] = b"CBSNAP01";

/// What a snapshot file says about itself.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SnapshotMeta {
    fingerprint: String,
    seq: u64,
    last_row: i64,
}

/// The snapshot at `path`, if there is a readable one (anything else is a reason to rebuild,
/// logged, never an error).
fn read_snapshot(path: &Path) -> Option<(SnapshotMeta, Index)> {
    let file = std::fs::File::open(path).ok()?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, file);
    let mut read = || -> Result<(SnapshotMeta, Index), String> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).map_err(|e| e.to_string())?;
        if &magic != SNAPSHOT_MAGIC {
            return Err("not a chainbreak snapshot".into());
        }
        let mut len = [0u8; 4];
        r.read_exact(&mut len).map_err(|e| e.to_string())?;
        let mut header = vec![0u8; u32::from_le_bytes(len) as usize];
        r.read_exact(&mut header).map_err(|e| e.to_string())?;
        let meta: SnapshotMeta = serde_json::from_slice(&header).map_err(|e| e.to_string())?;
        let index = Index::read_snapshot(&mut r).map_err(|e| e.to_string())?;
        Ok((meta, index))
    };
    match read() {
        Ok(found) => Some(found),
        Err(why) => {
            tracing::warn!(path = %path.display(), %why, "trace snapshot not used; building from the store");
            None
        }
    }
}

/// The assumed stay by place key from the profile, and the places' kinds.
fn dwell_by_place(store: &dyn Store, profile: &Profile) -> Result<(Vec<u32>, u32, Vec<PlaceKind>), AppError> {
    let kinds = store.place_kinds()?;
    let n_places = kinds.iter().map(|(k, _)| *k as usize + 1).max().unwrap_or(0);
    let default = profile.open_visits.default_dwell_minutes * 60;
    let mut dwell = vec![default; n_places];
    let mut by_key = vec![PlaceKind::Other; n_places];
    for (key, kind) in kinds {
        dwell[key as usize] = profile.open_visits.dwell_minutes(kind) * 60;
        by_key[key as usize] = kind;
    }
    Ok((dwell, default, by_key))
}

/// The contacts of one category as the engine found them.
struct Category<'a> {
    tier: u8,
    name: &'static str,
    /// Contacts at places (or, for the grid, in cells).
    contacts: Vec<Contact>,
    /// The settings of the places (none for the venue-overlap rule).
    settings: Option<&'a Vec<Option<Setting>>>,
    groups: Vec<GroupHit>,
    trips: Vec<TripHit>,
    /// The contacts' places are grid cells.
    grid: bool,
}

impl<'a> Category<'a> {
    fn at_places(
        tier: u8,
        name: &'static str,
        contacts: Vec<Contact>,
        settings: Option<&'a Vec<Option<Setting>>>,
    ) -> Self {
        Category { tier, name, contacts, settings, groups: Vec::new(), trips: Vec::new(), grid: false }
    }
}

/// Every trip rider (trips' ids by number), as survivors.
fn load_trips(store: &dyn Store, index: &Index) -> Result<(Vec<String>, Trips), AppError> {
    let mut ids: Vec<String> = Vec::new();
    let mut trips = Trips::default();
    let mut last_key = None;
    for r in store.trip_riders()? {
        if last_key != Some(r.trip) {
            last_key = Some(r.trip);
            ids.push(r.trip_id);
        }
        let mode = match r.mode {
            TripMode::Flight => Mode::Flight,
            TripMode::Train => Mode::Train,
            TripMode::Bus => Mode::Bus,
            TripMode::Ship => Mode::Ship,
        };
        let info = TripInfo { mode, departure: r.departure, arrival: r.arrival, sealed: r.sealed };
        let rider = Rider {
            person: index.survivor(r.person),
            crew: r.role == TripRole::Crew,
            carriage: r.carriage,
            row: r.seat_row,
        };
        trips.add_rider(ids.len() as u32 - 1, info, rider);
    }
    Ok((ids, trips))
}

/// The grid of cell stays from every ping, when the profile traces grid co-location.
fn load_grid(store: &dyn Store, profile: &Profile, index: &Index) -> Result<Option<Grid>, AppError> {
    let g = &profile.grid;
    let (true, Some(side), Some(gap)) = (g.enabled, g.cell_size_m, g.max_ping_gap_minutes) else {
        return Ok(None);
    };
    let mut builder = GridBuilder::new(side, i64::from(gap) * 60);
    let mut bad = None;
    store.scan_pings(0, &mut |batch| {
        for p in batch {
            if let Err(e) = builder.push(p.person, p.t, p.lat, p.lon) {
                bad.get_or_insert(e);
            }
        }
    })?;
    if let Some(e) = bad {
        // The store refuses such pings at ingest: one here is a damaged store.
        return Err(AppError::InvalidArgument { argument: "pings", message: e.to_string() });
    }
    let survivors = (0..index.persons() as u32).map(|k| index.survivor(k)).collect();
    Ok(Some(builder.build(survivors)))
}

/// Every group (its id by number) and who is in it, as survivors.
fn load_groups(store: &dyn Store, index: &Index) -> Result<(Vec<String>, Groups), AppError> {
    let mut ids: Vec<String> = Vec::new();
    let mut groups = Groups::default();
    let mut last_key = None;
    for m in store.group_members()? {
        if last_key != Some(m.group) {
            last_key = Some(m.group);
            ids.push(m.group_id);
        }
        let number = ids.len() as u32 - 1;
        groups.add_member(number, m.kind as u8, m.start, m.end, index.survivor(m.person));
    }
    Ok((ids, groups))
}

/// One category's setting at a kind of place.
#[derive(Debug, Clone, Default)]
struct Setting {
    min_overlap: i64,
    needs_confirmation: bool,
    condition: String,
}

/// The profile's place settings per category, by place kind (`None`: not a setting), and its
/// group settings by group kind.
#[derive(Debug, Clone, Default)]
struct Settings {
    close: Vec<Option<Setting>>,
    close_groups: Vec<Option<Setting>>,
    secondary_groups: Vec<Option<Setting>>,
    co_exposed: Option<Vec<Option<Setting>>>,
    secondary: Option<Vec<Option<Setting>>>,
    /// The profile sums overlaps over a window: (the total, the window), seconds.
    cumulative: Option<(i64, i64)>,
    /// The seat rules for trips.
    seats: SeatRules,
    /// Flight crew are proposals to confirm.
    crew_needs_confirmation: bool,
    /// What the proximity rule asks a person to confirm.
    proximity: String,
    /// Grid co-location: the least time in a cell (seconds) and how far back (seconds).
    grid: Option<(i64, i64)>,
}

fn by_kind(places: &[chainbreak_core::profile::PlaceSetting]) -> Vec<Option<Setting>> {
    let mut out = vec![None; PlaceKind::ALL.len()];
    for p in places {
        out[p.kind as usize] = Some(Setting {
            min_overlap: i64::from(p.min_overlap_minutes) * 60,
            needs_confirmation: p.needs_confirmation,
            condition: p.condition.clone(),
        });
    }
    out
}

fn by_group_kind(groups: &[chainbreak_core::profile::GroupSetting]) -> Vec<Option<Setting>> {
    let mut out = vec![None; GroupKind::ALL.len()];
    for g in groups {
        out[g.kind as usize] =
            Some(Setting { min_overlap: 0, needs_confirmation: g.needs_confirmation, condition: g.condition.clone() });
    }
    out
}

impl Settings {
    fn of(profile: &Profile) -> Settings {
        let secondary = &profile.secondary_contact;
        Settings {
            close: by_kind(&profile.close_contact.places),
            close_groups: by_group_kind(&profile.close_contact.groups),
            secondary_groups: if secondary.enabled { by_group_kind(&secondary.groups) } else { Vec::new() },
            co_exposed: profile.co_exposed.enabled.then(|| by_kind(&profile.co_exposed.places)),
            secondary: profile.secondary_contact.enabled.then(|| by_kind(&profile.secondary_contact.places)),
            cumulative: profile.close_contact.cumulative_window_hours.map(|hours| {
                let total = profile.close_contact.places.first().map_or(0, |p| i64::from(p.min_overlap_minutes) * 60);
                (total, i64::from(hours) * 3600)
            }),
            seats: seat_rules(profile),
            crew_needs_confirmation: profile.close_contact.flight.as_ref().is_some_and(|f| f.crew_needs_confirmation),
            proximity: profile
                .close_contact
                .proximity
                .as_ref()
                .map_or_else(String::new, |p| format!("within {} {} of the case", p.max_distance, p.unit.as_str())),
            grid: match (&profile.grid, profile.grid.more_than_minutes, profile.grid.within_days) {
                (g, Some(more), Some(days)) if g.enabled => Some((i64::from(more) * 60 + 1, i64::from(days) * 86_400)),
                _ => None,
            },
        }
    }
}

/// The profile's seat rules for the engine.
fn seat_rules(profile: &Profile) -> SeatRules {
    let cc = &profile.close_contact;
    SeatRules {
        flight: cc
            .flight
            .as_ref()
            .map(|f| FlightRows { rows_either_side: f.rows_either_side, crew: f.crew_serving_rows }),
        train: cc.train.as_ref().map(|t| TrainBays {
            sealed_whole_carriage: t.sealed_whole_carriage,
            bays_either_side: t.unsealed_bays_either_side,
        }),
        bus_sealed_everyone: cc.bus.as_ref().is_some_and(|b| b.sealed_everyone),
        ship_same_cabin: cc.ship.as_ref().is_some_and(|s| s.same_cabin),
        proximity: cc.proximity.is_some(),
        // Under a cumulative rule the time on board counts like time at a place.
        min_overlap: cc
            .cumulative_window_hours
            .map_or(0, |_| cc.places.first().map_or(0, |p| i64::from(p.min_overlap_minutes) * 60)),
    }
}

/// Ids by key.
fn ids_by_key(mut pairs: Vec<(String, u32)>) -> Vec<Id> {
    // Made in key order, the shared ids lie in memory in the order answers read them.
    pairs.sort_unstable_by_key(|p| p.1);
    let empty: Id = "".into();
    let mut ids = Vec::new();
    for (id, key) in pairs {
        if ids.len() <= key as usize {
            ids.resize(key as usize + 1, empty.clone());
        }
        ids[key as usize] = id.into();
    }
    ids
}

/// Each key's rank in the order of the ids (bytewise; ties by key), or `None` when keys are
/// already in that order (ids registered in order): answers list contacts by id, and sorting
/// keys by rank is cheaper than comparing strings.
fn ranks(ids: &[Id]) -> Option<Vec<u32>> {
    if ids.is_sorted() {
        return None;
    }
    let mut keys: Vec<u32> = (0..ids.len() as u32).collect();
    keys.par_sort_unstable_by(|a, b| ids[*a as usize].cmp(&ids[*b as usize]).then(a.cmp(b)));
    let mut rank = vec![0; ids.len()];
    for (r, k) in keys.into_iter().enumerate() {
        rank[k as usize] = r as u32;
    }
    Some(rank)
}

/// An index person and the start of their infectious window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexEntry {
    pub person_id: String,
    pub from: Timestamp,
    /// The case that made them an index person, when traced by case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
}

/// Which contact rule to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rule {
    /// The profile's settings: close-contact places with their least overlap, co-exposed
    /// places, secondary contacts at the profile's secondary places; evidence says which need
    /// a person to confirm them, and what.
    #[default]
    Profile,
    /// Every place is a close-contact setting, one least overlap for all (the benchmark's).
    VenueOverlap,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Profile => "profile",
            Rule::VenueOverlap => "venue-overlap",
        }
    }
}

/// What to trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRequest {
    pub rule: Rule,
    pub index: Vec<IndexEntry>,
    /// The end of every window (isolation); the end of the data when absent.
    pub to: Option<Timestamp>,
    /// The least overlap that is an exposure (the venue-overlap rule; the profile rule takes
    /// it per place kind from the profile).
    pub min_overlap: SignedDuration,
    /// 1: close contacts; 2: close and secondary contacts.
    pub depth: u8,
}

/// One piece of evidence: the contact and `exposed_to` shared `place_id` from `from` to `to`,
/// or belong to the group `group_id` (household, class, team, gathering).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place_id: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// A trip the contact rode with `exposed_to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trip_id: Option<String>,
    /// The trip's seat rule that applied: `rows` (plane, within the rows), `crew`,
    /// `carriage` (sealed train), `bays` (train), `sealed` (bus), `cabin` (ship),
    /// `seat_unknown` (a seat the rule needs is not known) or `proximity` (no seat rule: a
    /// distance for a person to confirm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_rule: Option<&'static str>,
    /// The contact's carriage (train) or cabin (ship) and row (plane, bus) or bay (train).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carriage: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_row: Option<u32>,
    /// Rows or bays between the contact and `exposed_to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_apart: Option<u32>,
    /// The H3 cell (hex) shared with `exposed_to` (grid co-location).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    pub from: Timestamp,
    pub to: Timestamp,
    pub overlap_minutes: f64,
    /// The index person (close contacts) or close contact (secondary contacts).
    pub exposed_to: Id,
    /// Either visit had no check-out, and the profile's assumed stay was used.
    pub check_out_assumed: bool,
    /// The data cannot decide the profile's rule for this setting: a person confirms
    /// `condition` (the profile rule only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub needs_confirmation: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub condition: String,
}

/// A contact with their evidence: the first exposure, and the last when it is another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactView {
    pub person_id: Id,
    pub first_exposure: Timestamp,
    pub last_exposure: Timestamp,
    /// How many (source visit, contact visit) pairs are exposures.
    pub exposures: u64,
    pub evidence: Vec<Evidence>,
    /// The contact lives outside the requesting user's jurisdiction: a case for the
    /// jurisdiction where they live (协查).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outside_jurisdiction: bool,
}

/// The contacts of one tier. Contacts found at places are kept as the engine's keys and spelled
/// in ids when read ([`Tier::contacts`]) or serialised (the same JSON either way).
#[derive(Debug, Clone)]
pub struct Tier {
    pub tier: u8,
    pub category: &'static str,
    pub count: usize,
    contacts: Contacts,
}

/// A tier's contacts: spelled, or by key.
#[derive(Debug, Clone)]
enum Contacts {
    Views(Vec<ContactView>),
    Found(Found),
}

/// Contacts at places by key, in the order of their ids, with what spells them.
#[derive(Debug, Clone)]
struct Found {
    names: Arc<Names>,
    contacts: Vec<Contact>,
    /// The category's settings by place kind (the profile rule), which say what a person must
    /// confirm.
    settings: Option<Vec<Option<Setting>>>,
    /// Which contacts live outside the requesting user's jurisdiction (empty: none).
    outside: Vec<bool>,
}

impl Found {
    /// The `i`th contact, spelled.
    fn view(&self, i: usize) -> Result<ContactView, AppError> {
        let c = &self.contacts[i];
        let names = &*self.names;
        let evidence = shown(c)
            .map(|e| {
                let mut ev = names.evidence(e)?;
                if let Some(s) = names.setting(self.settings.as_deref(), e.place) {
                    ev.needs_confirmation = s.needs_confirmation;
                    ev.condition = s.condition.clone();
                }
                Ok(ev)
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        Ok(ContactView {
            person_id: names.person_id(c.person),
            first_exposure: ts(c.first.start)?,
            last_exposure: ts(c.last_exposure())?,
            exposures: c.exposures,
            evidence,
            outside_jurisdiction: self.outside.get(i).copied().unwrap_or(false),
        })
    }
}

impl Tier {
    /// A tier of spelled contacts (in the order of their ids).
    pub fn new(tier: u8, category: &'static str, contacts: Vec<ContactView>) -> Tier {
        Tier { tier, category, count: contacts.len(), contacts: Contacts::Views(contacts) }
    }

    /// How many contacts.
    pub fn len(&self) -> usize {
        match &self.contacts {
            Contacts::Views(v) => v.len(),
            Contacts::Found(f) => f.contacts.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`th contact, spelled in ids.
    pub fn contact(&self, i: usize) -> ContactView {
        match &self.contacts {
            Contacts::Views(v) => v[i].clone(),
            // The engine's instants lie between 2000 and 2136: always instants.
            Contacts::Found(f) => f.view(i).expect("the index's instants are instants"),
        }
    }

    /// The contacts, spelled in ids, in the order of their ids.
    pub fn contacts(&self) -> impl ExactSizeIterator<Item = ContactView> + '_ {
        (0..self.len()).map(|i| self.contact(i))
    }

    /// The contacts' person ids, in order.
    pub fn person_ids(&self) -> impl ExactSizeIterator<Item = Cow<'_, str>> + '_ {
        (0..self.len()).map(|i| match &self.contacts {
            Contacts::Views(v) => Cow::Borrowed(&*v[i].person_id),
            Contacts::Found(f) => f.names.person_str(f.contacts[i].person),
        })
    }

    /// Marks the contacts living outside the requesting user's jurisdiction (one flag per
    /// contact, in order).
    pub fn set_outside_jurisdiction(&mut self, outside: &[bool]) {
        match &mut self.contacts {
            Contacts::Views(v) => {
                for (c, o) in v.iter_mut().zip(outside) {
                    c.outside_jurisdiction = *o;
                }
            }
            Contacts::Found(f) => {
                f.outside = outside.to_vec();
                f.outside.resize(f.contacts.len(), false);
            }
        }
    }

    /// Whether the contacts are in the order of their ids (bytewise), as the hash reads them.
    fn in_id_order(&self) -> bool {
        match &self.contacts {
            // Sorted by the ids' ranks when made.
            Contacts::Found(_) => true,
            Contacts::Views(v) => v.is_sorted_by(|a, b| a.person_id <= b.person_id),
        }
    }
}

impl PartialEq for Tier {
    /// Equal as spelled.
    fn eq(&self, other: &Tier) -> bool {
        self.tier == other.tier
            && self.category == other.category
            && self.count == other.count
            && self.len() == other.len()
            && self.contacts().eq(other.contacts())
    }
}

impl Serialize for Tier {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Tier", 4)?;
        s.serialize_field("tier", &self.tier)?;
        s.serialize_field("category", self.category)?;
        s.serialize_field("count", &self.count)?;
        match &self.contacts {
            Contacts::Views(v) => s.serialize_field("contacts", v)?,
            Contacts::Found(f) => s.serialize_field("contacts", &FoundOut(f))?,
        }
        s.end()
    }
}

/// Serialises [`Found`] contacts as their [`ContactView`]s would be, without making them.
struct FoundOut<'a>(&'a Found);

impl Serialize for FoundOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let f = self.0;
        let names = &*f.names;
        let ts = |t: i64| ts(t).map_err(S::Error::custom);
        let mut seq = serializer.serialize_seq(Some(f.contacts.len()))?;
        for (i, c) in f.contacts.iter().enumerate() {
            let mut evidence = [None, None];
            for (slot, e) in evidence.iter_mut().zip(shown(c)) {
                let setting = names.setting(f.settings.as_deref(), e.place);
                *slot = Some(EvidenceOut {
                    place_id: names.place_str(e.place),
                    from: ts(e.start)?,
                    to: ts(e.end)?,
                    overlap_minutes: (e.end - e.start) as f64 / 60.0,
                    exposed_to: names.person_str(e.source),
                    check_out_assumed: e.contact_check_out_assumed || e.source_check_out_assumed,
                    needs_confirmation: setting.is_some_and(|s| s.needs_confirmation),
                    condition: setting.map_or("", |s| &s.condition),
                });
            }
            seq.serialize_element(&ContactOut {
                person_id: names.person_str(c.person),
                first_exposure: ts(c.first.start)?,
                last_exposure: ts(c.last_exposure())?,
                exposures: c.exposures,
                evidence: EvidenceList(&evidence),
                outside_jurisdiction: f.outside.get(i).copied().unwrap_or(false),
            })?;
        }
        seq.end()
    }
}

/// [`ContactView`] as it serialises, borrowing its ids.
#[derive(Serialize)]
struct ContactOut<'a> {
    person_id: Cow<'a, str>,
    first_exposure: Timestamp,
    last_exposure: Timestamp,
    exposures: u64,
    evidence: EvidenceList<'a>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    outside_jurisdiction: bool,
}

/// The one or two pieces of evidence of a contact at places.
struct EvidenceList<'a>(&'a [Option<EvidenceOut<'a>>; 2]);

impl Serialize for EvidenceList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().flatten())
    }
}

/// [`Evidence`] at a place as it serialises (the fields a place's evidence has, in order).
#[derive(Serialize)]
struct EvidenceOut<'a> {
    place_id: Cow<'a, str>,
    from: Timestamp,
    to: Timestamp,
    overlap_minutes: f64,
    exposed_to: Cow<'a, str>,
    check_out_assumed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    needs_confirmation: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    condition: &'a str,
}

/// The answer of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceReport {
    pub rule: &'static str,
    pub index: Vec<IndexEntry>,
    pub to: Timestamp,
    /// The least overlap of the venue-overlap rule (the profile rule takes it per place kind;
    /// not written when `None`).
    pub min_overlap_minutes: Option<f64>,
    pub depth: u8,
    pub tiers: Vec<Tier>,
    /// Links between index persons: who could have infected whom (for clusters and chains).
    pub links: Vec<CaseLink>,
    /// Each index person's activity trail (流调轨迹) in their window: their visits, by
    /// check-in, clipped to the window.
    pub trails: Vec<Trail>,
    /// The digest of the contact sets: see [`TraceReport::hash`] (`LazyDigest::default()`:
    /// taken from `tiers` when asked for).
    pub hash: LazyDigest,
}

/// A digest computed when first asked for (equal whenever what it digests is).
#[derive(Debug, Clone, Default)]
pub struct LazyDigest(std::sync::OnceLock<String>);

impl LazyDigest {
    /// A digest known already.
    pub(crate) fn known(digest: String) -> LazyDigest {
        LazyDigest(std::sync::OnceLock::from(digest))
    }
}

impl PartialEq for LazyDigest {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl TraceReport {
    /// SHA-256 of `{tier}\t{person_id}\n` lines sorted by tier and id: a digest to check the
    /// answer by (against an oracle or another system), taken when first read or written, not
    /// while the contacts are found.
    pub fn hash(&self) -> &str {
        self.hash.0.get_or_init(|| contact_hash(&self.tiers))
    }
}

impl Serialize for TraceReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("TraceReport", 9)?;
        s.serialize_field("rule", &self.rule)?;
        s.serialize_field("index", &self.index)?;
        s.serialize_field("to", &self.to)?;
        match self.min_overlap_minutes {
            Some(minutes) => s.serialize_field("min_overlap_minutes", &minutes)?,
            None => s.skip_field("min_overlap_minutes")?,
        }
        s.serialize_field("depth", &self.depth)?;
        s.serialize_field("tiers", &self.tiers)?;
        s.serialize_field("links", &self.links)?;
        s.serialize_field("trails", &self.trails)?;
        s.serialize_field("hash", self.hash())?;
        s.end()
    }
}

/// `exposed` was exposed to `source` while `source` was infectious.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseLink {
    pub source: String,
    pub exposed: String,
    /// The first exposure.
    pub evidence: Evidence,
    pub exposures: u64,
}

/// Where an index person was while infectious.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trail {
    pub person_id: String,
    pub visits: Vec<TrailVisit>,
    /// The trips they rode in the window, by departure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trips: Vec<TrailTrip>,
}

/// A trip of a trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrailTrip {
    pub trip_id: String,
    pub departure: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arrival: Option<Timestamp>,
    pub crew: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carriage: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_row: Option<u32>,
}

/// One stop of a trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrailVisit {
    pub place_id: String,
    pub from: Timestamp,
    pub to: Timestamp,
    /// The visit had no check-out: its end is the profile's assumed stay.
    pub check_out_assumed: bool,
}

fn ts(unix: i64) -> Result<Timestamp, AppError> {
    Timestamp::from_second(unix)
        .map_err(|e| AppError::InvalidArgument { argument: "time", message: format!("{unix} is not an instant: {e}") })
}

impl Tracer {
    /// Builds the index from the store: every visit (one consistent scan), the assumed stays
    /// of `profile`, and the store's merges.
    pub fn load(store: &dyn Store, profile: &Profile) -> Result<(Self, LoadStats), AppError> {
        let started = Instant::now();
        let places = dwell_by_place(store, profile)?;
        let mut builder = IndexBuilder::new(places.0.clone(), places.1);
        builder.reserve(store.count(chainbreak_store::Entity::Visit)? as usize);
        let end = store.scan_visits(0, &mut |batch| {
            for v in batch {
                builder.push(v.visit.person, v.visit.place, v.visit.t_in, v.visit.t_out);
            }
        })?;
        let index = builder.build(store.person_survivors()?);
        let tracer = Tracer::assemble(store, profile, places, index, end.seq, end.last_row)?;
        let index = &tracer.index;
        let stats = LoadStats {
            source: "store",
            load_seconds: started.elapsed().as_secs_f64(),
            visits: index.len() as u64,
            index_bytes: index.heap_bytes(),
            dropped: index.dropped(),
            seq: end.seq,
        };
        Ok((tracer, stats))
    }

    /// A tracer around `index`, with the ids, place kinds, settings and groups it answers with.
    fn assemble(
        store: &dyn Store,
        profile: &Profile,
        (dwell, default_dwell, kinds): (Vec<u32>, u32, Vec<PlaceKind>),
        index: Index,
        seq: u64,
        last_row: i64,
    ) -> Result<Self, AppError> {
        let person_keys: FxHashMap<String, u32> = store.person_keys()?.into_iter().collect();
        let person_ids = ids_by_key(person_keys.iter().map(|(id, k)| (id.clone(), *k)).collect());
        let names = Arc::new(Names::new(person_ids, ids_by_key(store.place_keys()?), kinds));
        let (group_ids, groups) = load_groups(store, &index)?;
        let (trip_ids, trips) = load_trips(store, &index)?;
        let grid = load_grid(store, profile, &index)?;
        index.warm();
        Ok(Tracer {
            index,
            names,
            person_keys,
            dwell,
            default_dwell,
            settings: Settings::of(profile),
            group_ids,
            groups,
            trip_ids,
            trips,
            grid,
            seq,
            last_row,
        })
    }

    /// What a snapshot must match to be used: the store (by its creation instant) and the
    /// profile's assumed stays.
    fn snapshot_fingerprint(store: &dyn Store, profile: &Profile) -> Result<String, AppError> {
        let meta = store.meta()?;
        let stays = serde_json::to_string(&profile.open_visits).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(meta.created_at.to_string().as_bytes());
        h.update(b"\n");
        h.update(stays.as_bytes());
        Ok(hex(&h.finalize()))
    }

    /// Writes the index to `path` (atomically: a temporary file renamed), to be loaded by
    /// [`Tracer::load_or_snapshot`] instead of a full scan.
    pub fn save_snapshot(&self, path: &Path, store: &dyn Store, profile: &Profile) -> Result<(), AppError> {
        let meta = SnapshotMeta {
            fingerprint: Self::snapshot_fingerprint(store, profile)?,
            seq: self.seq,
            last_row: self.last_row,
        };
        let tmp = path.with_extension("tmp");
        let io = |e: std::io::Error| AppError::io(&tmp, e);
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        let header = serde_json::to_vec(&meta).unwrap_or_default();
        w.write_all(SNAPSHOT_MAGIC).map_err(io)?;
        w.write_all(&(header.len() as u32).to_le_bytes()).map_err(io)?;
        w.write_all(&header).map_err(io)?;
        self.index.write_snapshot(&mut w).map_err(io)?;
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| AppError::io(path, e))
    }

    /// Loads the index from the snapshot at `path` when it matches this store and profile,
    /// and brings it up to the change feed; otherwise builds it from the store. Returns
    /// whether the snapshot is stale (to be saved again).
    pub fn load_or_snapshot(
        store: &dyn Store,
        profile: &Profile,
        path: &Path,
    ) -> Result<(Self, LoadStats, bool), AppError> {
        let started = Instant::now();
        let Some((meta, index)) = read_snapshot(path) else {
            let (t, stats) = Self::load(store, profile)?;
            return Ok((t, stats, true));
        };
        if meta.fingerprint != Self::snapshot_fingerprint(store, profile)? || meta.seq > store.last_seq()? {
            let (t, stats) = Self::load(store, profile)?;
            return Ok((t, stats, true));
        }
        let places = dwell_by_place(store, profile)?;
        let mut tracer = Tracer::assemble(store, profile, places, index, meta.seq, meta.last_row)?;
        let refreshed = tracer.refresh(store, profile)?;
        let stats = LoadStats {
            source: if refreshed == Refresh::Rebuilt { "store" } else { "snapshot" },
            load_seconds: started.elapsed().as_secs_f64(),
            visits: tracer.index.len() as u64,
            index_bytes: tracer.index.heap_bytes(),
            dropped: tracer.index.dropped(),
            seq: tracer.seq,
        };
        Ok((tracer, stats, refreshed != Refresh::Current))
    }

    /// Brings the index up to the store's change feed: new visits are merged in; deleted
    /// visits (the retention purge), merges and changed place kinds rebuild it.
    pub fn refresh(&mut self, store: &dyn Store, profile: &Profile) -> Result<Refresh, AppError> {
        use chainbreak_store::{ChangeOp, Entity};
        let mut after = self.seq;
        let (mut new_persons, mut new_places, mut new_visits, mut new_groups) = (false, false, false, false);
        let (mut new_trips, mut new_pings) = (false, false);
        loop {
            let changes = store.changes_since(after, 10_000)?;
            let Some(last) = changes.last() else { break };
            after = last.seq;
            for c in &changes {
                let rebuild = match (c.entity, c.op) {
                    (Entity::Visit, ChangeOp::Upsert) => {
                        new_visits = true;
                        false
                    }
                    (Entity::Visit, _) | (_, ChangeOp::Merge | ChangeOp::Unmerge) => true,
                    (Entity::Place, _) if c.key_from < self.names.place_ids.len() as i64 => true,
                    (Entity::Place, _) => {
                        new_places = true;
                        false
                    }
                    (Entity::Person, _) => {
                        new_persons |= c.key_from >= self.names.person_ids.len() as i64;
                        false
                    }
                    (Entity::Group | Entity::Membership, _) => {
                        new_groups = true;
                        false
                    }
                    (Entity::Trip | Entity::Passenger, _) => {
                        new_trips = true;
                        false
                    }
                    (Entity::Ping, _) => {
                        new_pings = true;
                        false
                    }
                    _ => false,
                };
                if rebuild {
                    *self = Tracer::load(store, profile)?.0;
                    return Ok(Refresh::Rebuilt);
                }
            }
        }
        if after == self.seq {
            return Ok(Refresh::Current);
        }
        if new_places {
            let kinds;
            (self.dwell, self.default_dwell, kinds) = dwell_by_place(store, profile)?;
            let names = Arc::make_mut(&mut self.names);
            names.kinds = kinds;
            names.place_ids = ids_by_key(store.place_keys()?);
        }
        if new_persons {
            self.person_keys = store.person_keys()?.into_iter().collect();
            let person_ids = ids_by_key(self.person_keys.iter().map(|(id, k)| (id.clone(), *k)).collect());
            self.names = Arc::new(Names::new(person_ids, self.names.place_ids.clone(), self.names.kinds.clone()));
        }
        let mut added = 0u64;
        if new_visits {
            let mut builder = IndexBuilder::new(self.dwell.clone(), self.default_dwell);
            let end = store.scan_visits(self.last_row, &mut |batch| {
                for v in batch {
                    builder.push(v.visit.person, v.visit.place, v.visit.t_in, v.visit.t_out);
                    added += 1;
                }
            })?;
            self.index.extend(builder);
            self.last_row = end.last_row;
        }
        if new_groups || new_persons {
            (self.group_ids, self.groups) = load_groups(store, &self.index)?;
        }
        if new_trips || new_persons {
            (self.trip_ids, self.trips) = load_trips(store, &self.index)?;
        }
        if new_pings || new_persons {
            // Cell stays join consecutive pings, so new pings (or purged ones) rebuild the grid.
            self.grid = load_grid(store, profile, &self.index)?;
        }
        // Changes after `after` are read next time; visits they add are already in (only
        // rows past `last_row` are scanned).
        self.seq = after;
        Ok(Refresh::Extended(added))
    }

    /// The change `seq` the index is current to.
    /// Whether `person_id` is a registered person the tracer can trace from.
    pub fn knows(&self, person_id: &str) -> bool {
        self.person_keys.contains_key(person_id)
    }

    /// The working memory the sweeps keep between queries (apart from the index), in bytes.
    pub fn scratch_bytes(&self) -> usize {
        self.index.scratch_bytes()
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    fn person_id(&self, key: u32) -> Id {
        self.names.person_id(key)
    }

    fn place_id(&self, key: u32) -> Id {
        self.names.place_id(key)
    }

    /// Runs the plain venue-overlap rule.
    pub fn trace(&self, request: &TraceRequest) -> Result<TraceReport, AppError> {
        self.trace_timed(request).map(|(report, _)| report)
    }

    /// [`Tracer::trace`], with the time spent finding the contacts apart from the time spent
    /// answering in ids with the evidence, the links and the trails.
    pub fn trace_timed(&self, request: &TraceRequest) -> Result<(TraceReport, QueryTimings), AppError> {
        if request.index.is_empty() {
            return Err(AppError::InvalidArgument {
                argument: "index",
                message: "give at least one index person or case".into(),
            });
        }
        if !(1..=2).contains(&request.depth) {
            return Err(AppError::InvalidArgument { argument: "--depth", message: "the depth is 1 or 2".into() });
        }
        if request.min_overlap.is_negative() {
            return Err(AppError::InvalidArgument {
                argument: "--min-overlap",
                message: "the minimum overlap is not negative".into(),
            });
        }
        let mut index = Vec::with_capacity(request.index.len());
        for entry in &request.index {
            let Some(&person) = self.person_keys.get(&entry.person_id) else {
                return Err(AppError::NotFound(format!("person `{}` is not registered", entry.person_id)));
            };
            index.push(IndexPerson { person, from: entry.from.as_second() });
        }
        let to = match request.to {
            Some(t) => t.as_second(),
            None => self.index.end_of_data().unwrap_or_else(|| Timestamp::now().as_second()),
        };
        let q = VenueOverlap { to, min_overlap: request.min_overlap.as_secs(), depth: request.depth };
        let started = Instant::now();
        let found: Vec<Category<'_>> = match request.rule {
            Rule::VenueOverlap => {
                let traced = self.index.venue_overlap(&index, &q);
                let mut found = vec![Category::at_places(1, "close", traced.close, None)];
                if request.depth >= 2 {
                    found.push(Category::at_places(2, "secondary", traced.secondary, None));
                }
                found
            }
            Rule::Profile => self.profile_rule(&index, to, request.depth)?,
        };
        let found_at = Instant::now();
        let mut tiers = Vec::new();
        for mut found in found {
            // By id: the engine answers by key.
            match &self.names.person_rank {
                Some(rank) => found
                    .contacts
                    .par_sort_unstable_by_key(|c| rank.get(c.person as usize).copied().unwrap_or(u32::MAX)),
                // Ids in key order.
                None if !found.contacts.is_sorted_by_key(|c| c.person) => {
                    found.contacts.par_sort_unstable_by_key(|c| c.person)
                }
                None => {}
            }
            let known = self.names.person_ids.len();
            if found.groups.is_empty()
                && found.trips.is_empty()
                && !found.grid
                && found.contacts.iter().all(|c| (c.person as usize) < known)
            {
                // Contacts at places only: kept by key, spelled when read.
                let count = found.contacts.len();
                let contacts = Contacts::Found(Found {
                    names: self.names.clone(),
                    contacts: found.contacts,
                    settings: found.settings.cloned(),
                    outside: Vec::new(),
                });
                tiers.push(Tier { tier: found.tier, category: found.name, count, contacts });
                continue;
            }
            let settings = found.settings.map(Vec::as_slice);
            let mut contacts =
                found.contacts.par_iter().map(|c| self.view(c, settings, found.grid)).collect::<Result<Vec<_>, _>>()?;
            if !found.groups.is_empty() || !found.trips.is_empty() {
                self.add_group_hits(&mut contacts, &found.groups, found.tier)?;
                self.add_trip_hits(&mut contacts, &found.trips)?;
            }
            if !contacts.is_sorted_by(|a, b| a.person_id <= b.person_id) {
                contacts.par_sort_by(|a, b| a.person_id.cmp(&b.person_id));
            }
            tiers.push(Tier::new(found.tier, found.name, contacts));
        }
        let links = self
            .index
            .links(&index, &q)
            .iter()
            .map(|l| {
                Ok(CaseLink {
                    source: self.person_id(l.source).to_string(),
                    exposed: self.person_id(l.exposed).to_string(),
                    evidence: self.evidence(&l.first)?,
                    exposures: l.exposures,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let links = match request.rule {
            Rule::Profile => self.links_by_groups_and_trips(&index, to, links)?,
            Rule::VenueOverlap => links,
        };
        let mut trails = Vec::new();
        for (person, start) in self.index.sources(&index) {
            let mut visits = Vec::new();
            for key in self.index.family(person) {
                for stay in self.index.stays_of(key) {
                    let (from, until) = (
                        start.max(chainbreak_trace::index::to_unix(stay.t_in)),
                        to.min(chainbreak_trace::index::to_unix(stay.t_out)),
                    );
                    if until > from {
                        visits.push((from, until, stay.place, stay.assumed_check_out()));
                    }
                }
            }
            visits.sort_unstable();
            let visits = visits
                .into_iter()
                .map(|(from, until, place, assumed)| {
                    Ok(TrailVisit {
                        place_id: self.place_id(place).to_string(),
                        from: ts(from)?,
                        to: ts(until)?,
                        check_out_assumed: assumed,
                    })
                })
                .collect::<Result<Vec<_>, AppError>>()?;
            let mut trips = Vec::new();
            for &trip in self.trips.of(person) {
                let Some((info, riders)) = self.trips.get(trip) else { continue };
                let end = info.arrival.unwrap_or(info.departure);
                let Some(me) = riders.iter().find(|r| r.person == person) else { continue };
                if info.departure < to && end >= start {
                    trips.push(TrailTrip {
                        trip_id: self.trip_ids.get(trip as usize).cloned().unwrap_or_default(),
                        departure: ts(info.departure)?,
                        arrival: info.arrival.map(ts).transpose()?,
                        crew: me.crew,
                        carriage: me.carriage,
                        seat_row: me.row,
                    });
                }
            }
            trips.sort_by(|a, b| (a.departure, &a.trip_id).cmp(&(b.departure, &b.trip_id)));
            trails.push(Trail { person_id: self.person_id(person).to_string(), visits, trips });
        }
        let report = TraceReport {
            rule: request.rule.as_str(),
            index: request.index.clone(),
            to: ts(to)?,
            min_overlap_minutes: (request.rule == Rule::VenueOverlap).then(|| request.min_overlap.as_secs_f64() / 60.0),
            depth: request.depth,
            tiers,
            links,
            trails,
            hash: LazyDigest::default(),
        };
        let timings = QueryTimings {
            contacts_seconds: (found_at - started).as_secs_f64(),
            report_seconds: found_at.elapsed().as_secs_f64(),
        };
        Ok((report, timings))
    }

    fn kind(&self, place: u32) -> PlaceKind {
        self.names.kind(place)
    }

    /// The profile rule: close contacts at the profile's close-contact places (each kind with
    /// its least overlap, or summed over the profile's window), through its groups and by its
    /// seat rules on trips; co-exposed persons at its co-exposure places; grid companions
    /// (neither of those) from location pings; and secondary contacts at its secondary places
    /// and groups from each close contact's first exposure.
    fn profile_rule(&self, index: &[IndexPerson], to: i64, depth: u8) -> Result<Vec<Category<'_>>, AppError> {
        let settings = &self.settings;
        let sources = self.index.sources(index);
        // Every person key: those with visits, and those known only from trips, groups or pings.
        let persons = self.index.persons().max(self.names.person_ids.len());
        let mut excluded = vec![false; persons];
        for (p, _) in &sources {
            excluded[*p as usize] = true;
        }
        fn min_at<'a>(tracer: &'a Tracer, table: &'a [Option<Setting>]) -> impl Fn(u32) -> Option<i64> + Sync + 'a {
            move |place| table.get(tracer.kind(place) as usize).and_then(|s| s.as_ref()).map(|s| s.min_overlap)
        }
        let close = match settings.cumulative {
            None => self.index.exposures(&sources, to, min_at(self, &settings.close), &excluded),
            Some((total, period)) => {
                let setting = |place| min_at(self, &settings.close)(place).is_some();
                self.index.cumulative_exposures(&sources, to, setting, total, period, &excluded)
            }
        };
        let close_hits = self.group_hits(&sources, to, &settings.close_groups, &excluded);
        let trip_hits = self.trips.hits(&sources, to, &settings.seats, &excluded);
        // Each close contact's first exposure, by a place, a group or a trip: their secondary
        // window opens there.
        let mut close_first: FxHashMap<u32, i64> = close.iter().map(|c| (c.person, c.first_exposure())).collect();
        for (person, from) in
            close_hits.iter().map(|h| (h.person, h.from)).chain(trip_hits.iter().map(|h| (h.person, h.from)))
        {
            let e = close_first.entry(person).or_insert(from);
            *e = (*e).min(from);
        }
        for p in close_first.keys() {
            excluded[*p as usize] = true;
        }
        let mut found = vec![Category {
            groups: close_hits,
            trips: trip_hits,
            ..Category::at_places(1, "close", close, Some(&settings.close))
        }];
        // Grid companions are neither close contacts nor co-exposed persons.
        let mut not_grid = excluded.clone();
        if let Some(table) = &settings.co_exposed {
            let co = self.index.exposures(&sources, to, min_at(self, table), &excluded);
            for c in &co {
                not_grid[c.person as usize] = true;
            }
            found.push(Category::at_places(1, "co_exposed", co, Some(table)));
        }
        self.grid_companions(&sources, to, &not_grid, &mut found);
        if depth >= 2
            && let Some(table) = &settings.secondary
        {
            let mut from_close: Vec<(u32, i64)> = close_first.into_iter().collect();
            from_close.sort_unstable();
            let secondary = self.index.exposures(&from_close, to, min_at(self, table), &excluded);
            let hits = self.group_hits(&from_close, to, &settings.secondary_groups, &excluded);
            found.push(Category { groups: hits, ..Category::at_places(2, "secondary", secondary, Some(table)) });
        }
        Ok(found)
    }

    /// Grid companions (时空伴随): persons not `excluded` who shared a cell with a source for
    /// longer than the profile's least time, looking back the profile's days from `to`.
    fn grid_companions(&self, sources: &[(u32, i64)], to: i64, excluded: &[bool], found: &mut Vec<Category<'_>>) {
        let (Some((min, back)), Some(grid)) = (self.settings.grid, &self.grid) else { return };
        let from: Vec<(u32, i64)> = sources.iter().map(|&(p, _)| (p, to - back)).collect();
        let mut excluded = excluded.to_vec();
        excluded.resize(excluded.len().max(grid.index.persons()), false);
        let contacts = grid.index.exposures(&from, to, |_| Some(min), &excluded);
        found.push(Category { grid: true, ..Category::at_places(1, "grid", contacts, None) });
    }

    /// The members of the sources' groups that are settings in `table`, not `excluded`, each
    /// from the source's window start (a gathering: its overlap with the window; a gathering
    /// outside the window gives nobody).
    fn group_hits(
        &self,
        sources: &[(u32, i64)],
        to: i64,
        table: &[Option<Setting>],
        excluded: &[bool],
    ) -> Vec<GroupHit> {
        self.groups.hits(sources, to, |kind| table.get(kind as usize).is_some_and(|s| s.is_some()), excluded)
    }

    /// Adds to the links at places those through the profile's close-contact groups and seat
    /// rules: index persons sharing a household (class, team, gathering) or seated by the
    /// rules near another index person while that one was infectious. A pair linked several
    /// ways keeps the earliest evidence and counts every way.
    fn links_by_groups_and_trips(
        &self,
        index: &[IndexPerson],
        to: i64,
        links: Vec<CaseLink>,
    ) -> Result<Vec<CaseLink>, AppError> {
        let sources = self.index.sources(index);
        let persons = self.index.persons().max(self.names.person_ids.len());
        let mut not_index = vec![true; persons];
        for (p, _) in &sources {
            not_index[*p as usize] = false;
        }
        let groups = self.group_hits(&sources, to, &self.settings.close_groups, &not_index);
        let trips = self.trips.hits(&sources, to, &self.settings.seats, &not_index);
        let mut by_pair: std::collections::BTreeMap<(String, String), CaseLink> =
            links.into_iter().map(|l| ((l.source.clone(), l.exposed.clone()), l)).collect();
        for &(source, _) in &sources {
            let mut views = Vec::new();
            let groups: Vec<GroupHit> = groups.iter().filter(|h| h.source == source).copied().collect();
            let trips: Vec<TripHit> = trips.iter().filter(|h| h.source == source).copied().collect();
            self.add_group_hits(&mut views, &groups, 1)?;
            self.add_trip_hits(&mut views, &trips)?;
            for v in views {
                let Some(first) = v.evidence.iter().min_by_key(|e| e.from).cloned() else { continue };
                let key = (self.person_id(source).to_string(), v.person_id.to_string());
                match by_pair.get_mut(&key) {
                    Some(l) => {
                        if first.from < l.evidence.from {
                            l.evidence = first;
                        }
                        l.exposures += v.exposures;
                    }
                    None => {
                        let link = CaseLink {
                            source: key.0.clone(),
                            exposed: key.1.clone(),
                            evidence: first,
                            exposures: v.exposures,
                        };
                        by_pair.insert(key, link);
                    }
                }
            }
        }
        Ok(by_pair.into_values().collect())
    }

    /// Adds contacts through groups to `contacts` (a person already there gets the evidence).
    fn add_group_hits(&self, contacts: &mut Vec<ContactView>, hits: &[GroupHit], tier: u8) -> Result<(), AppError> {
        if hits.is_empty() {
            return Ok(());
        }
        let table = if tier == 1 { &self.settings.close_groups } else { &self.settings.secondary_groups };
        let mut at: FxHashMap<Id, usize> = contacts.iter().enumerate().map(|(i, c)| (c.person_id.clone(), i)).collect();
        for h in hits {
            let kind = self.groups.get(h.group).map_or(0, |g| g.kind);
            let setting = table.get(kind as usize).cloned().flatten().unwrap_or_default();
            let evidence = Evidence {
                group_id: self.group_ids.get(h.group as usize).cloned(),
                from: ts(h.from)?,
                to: ts(h.to)?,
                overlap_minutes: (h.to - h.from) as f64 / 60.0,
                exposed_to: self.person_id(h.source),
                needs_confirmation: setting.needs_confirmation,
                condition: setting.condition,
                ..Evidence::default()
            };
            add_evidence(contacts, &mut at, self.person_id(h.person), evidence);
        }
        Ok(())
    }

    /// Adds contacts by trips to `contacts` (a person already there gets the evidence).
    fn add_trip_hits(&self, contacts: &mut Vec<ContactView>, hits: &[TripHit]) -> Result<(), AppError> {
        if hits.is_empty() {
            return Ok(());
        }
        let mut at: FxHashMap<Id, usize> = contacts.iter().enumerate().map(|(i, c)| (c.person_id.clone(), i)).collect();
        for h in hits {
            let rider = self.trips.get(h.trip).and_then(|(_, riders)| riders.iter().find(|r| r.person == h.person));
            let (rule, apart, needs_confirmation, condition) = match h.why {
                Why::Rows(d) => ("rows", Some(d), false, String::new()),
                Why::Crew => (
                    "crew",
                    None,
                    self.settings.crew_needs_confirmation,
                    "crew member who served the case's rows (or worked with the case)".to_string(),
                ),
                Why::Carriage => ("carriage", None, false, String::new()),
                Why::Bays(d) => ("bays", Some(d), false, String::new()),
                Why::Sealed => ("sealed", None, false, String::new()),
                Why::Cabin => ("cabin", None, false, String::new()),
                Why::SeatUnknown => (
                    "seat_unknown",
                    None,
                    true,
                    "the seat rule applies but a seat (carriage or row) is not known: check the seats".to_string(),
                ),
                Why::Proximity => ("proximity", None, true, self.settings.proximity.clone()),
            };
            let evidence = Evidence {
                trip_id: self.trip_ids.get(h.trip as usize).cloned(),
                seat_rule: Some(rule),
                carriage: rider.and_then(|r| r.carriage),
                seat_row: rider.and_then(|r| r.row),
                rows_apart: apart,
                from: ts(h.from)?,
                to: ts(h.to)?,
                overlap_minutes: (h.to - h.from) as f64 / 60.0,
                exposed_to: self.person_id(h.source),
                needs_confirmation,
                condition,
                ..Evidence::default()
            };
            add_evidence(contacts, &mut at, self.person_id(h.person), evidence);
        }
        Ok(())
    }

    fn evidence(&self, e: &Exposure) -> Result<Evidence, AppError> {
        self.names.evidence(e)
    }

    /// A contact with the evidence of their first and last exposure (`grid`: in cells).
    fn view(&self, c: &Contact, settings: Option<&[Option<Setting>]>, grid: bool) -> Result<ContactView, AppError> {
        let mut evidence = shown(c).map(|e| self.evidence(e)).collect::<Result<Vec<_>, AppError>>()?;
        if grid {
            for (ev, e) in evidence.iter_mut().zip(shown(c)) {
                ev.place_id = None;
                ev.cell = self.grid.as_ref().and_then(|g| g.cell(e.place)).map(|c| c.to_string());
            }
        }
        for (ev, e) in evidence.iter_mut().zip(shown(c)) {
            if let Some(s) = self.names.setting(settings, e.place) {
                ev.needs_confirmation = s.needs_confirmation;
                ev.condition = s.condition.clone();
            }
        }
        Ok(ContactView {
            person_id: self.person_id(c.person),
            first_exposure: ts(c.first.start)?,
            last_exposure: ts(c.last_exposure())?,
            exposures: c.exposures,
            evidence,
            outside_jurisdiction: false,
        })
    }
}

/// Adds a piece of evidence to `person_id`'s contact in `contacts` (found through `at`, the
/// index by person), opening the contact when they are not there yet.
fn add_evidence(contacts: &mut Vec<ContactView>, at: &mut FxHashMap<Id, usize>, person_id: Id, evidence: Evidence) {
    let i = *at.entry(person_id.clone()).or_insert_with(|| {
        contacts.push(ContactView {
            person_id,
            first_exposure: evidence.from,
            last_exposure: evidence.to,
            exposures: 0,
            evidence: Vec::new(),
            outside_jurisdiction: false,
        });
        contacts.len() - 1
    });
    let c = &mut contacts[i];
    c.first_exposure = c.first_exposure.min(evidence.from);
    c.last_exposure = c.last_exposure.max(evidence.to);
    c.exposures += 1;
    c.evidence.push(evidence);
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 hex of `{tier}\t{person_id}\n` lines sorted by tier, then id (bytewise).
pub fn contact_hash(tiers: &[Tier]) -> String {
    let mut h = Sha256::new();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut line = |tier: &[u8], id: &str, h: &mut Sha256| {
        if buf.len() + tier.len() + id.len() + 2 > buf.capacity() {
            h.update(&buf);
            buf.clear();
        }
        buf.extend_from_slice(tier);
        buf.push(b'\t');
        buf.extend_from_slice(id.as_bytes());
        buf.push(b'\n');
    };
    let mut numbers: Vec<u8> = tiers.iter().map(|t| t.tier).collect();
    numbers.sort_unstable();
    numbers.dedup();
    for number in numbers {
        let text = number.to_string();
        let of: Vec<&Tier> = tiers.iter().filter(|t| t.tier == number).collect();
        if let [tier] = of[..]
            && tier.in_id_order()
        {
            // One category in the tier, in id order: its lines stream in order.
            for id in tier.person_ids() {
                line(text.as_bytes(), &id, &mut h);
            }
        } else {
            let mut ids: Vec<Cow<'_, str>> = of.iter().flat_map(|t| t.person_ids()).collect();
            ids.par_sort_unstable();
            for id in &ids {
                line(text.as_bytes(), id, &mut h);
            }
        }
    }
    h.update(&buf);
    hex(&h.finalize())
}

/// The index persons of cases, each from the start of their infectious period: the profile's
/// days before symptom onset (a local calendar day), or before the first positive sample for
/// a case without onset. Excluded cases are refused.
pub fn case_index(
    store: &dyn Store,
    profile: &Profile,
    calendar: &Calendar,
    case_ids: &[String],
) -> Result<Vec<IndexEntry>, AppError> {
    let period = &profile.infectious_period;
    case_ids
        .iter()
        .map(|id| {
            let case = store.case(id)?.ok_or_else(|| AppError::NotFound(format!("case `{id}` not found")))?;
            if case.classification == Classification::Excluded {
                return Err(AppError::InvalidArgument {
                    argument: "--case",
                    message: format!("case `{id}` is excluded: there is nothing to trace"),
                });
            }
            let from = match (case.onset, case.sampled_at) {
                (Some(onset), _) => {
                    // Calendar days in the deployment's zone: midnight, whatever the offset.
                    let day = onset.checked_sub(jiff::Span::new().days(i64::from(period.days_before_onset))).map_err(
                        |e| AppError::InvalidArgument { argument: "--case", message: format!("case `{id}`: {e}") },
                    )?;
                    calendar.start_of(day)
                }
                (None, Some(sampled)) => {
                    sampled - SignedDuration::from_hours(24 * i64::from(period.days_before_sampling))
                }
                (None, None) => {
                    return Err(AppError::InvalidArgument {
                        argument: "--case",
                        message: format!(
                            "case `{id}` has neither an onset nor a sampling time: give --person with --from instead"
                        ),
                    });
                }
            };
            let person_id = store.canonical_person(&case.person_id)?.unwrap_or(case.person_id);
            Ok(IndexEntry { person_id, from, case_id: Some(case.id) })
        })
        .collect()
}

/// A trace asked for by a user (over HTTP): cases and index persons must lie in the user's
/// jurisdiction (others read as absent); contacts living outside it are marked.
pub fn trace_for(
    dep: &mut crate::Deployment,
    user: &chainbreak_core::access::User,
    case_ids: &[String],
    mut request: TraceRequest,
) -> Result<TraceReport, AppError> {
    crate::reads::require(user, chainbreak_core::access::Permission::ConfirmContacts)?;
    let scope = crate::reads::scope_of(&*dep.store, user)?;
    let store = &*dep.store;
    for (entity, id) in case_ids
        .iter()
        .map(|c| (chainbreak_store::Entity::Case, c))
        .chain(request.index.iter().map(|e| (chainbreak_store::Entity::Person, &e.person_id)))
    {
        if store.in_scope(&scope, entity, &[id.as_str()])?.first() != Some(&true) {
            return Err(AppError::NotFound(format!("{entity} `{id}` not found in your jurisdiction")));
        }
    }
    let mut index = case_index(store, &dep.profile, &dep.calendar, case_ids)?;
    index.append(&mut request.index);
    request.index = index;
    let mut report = dep.tracer()?.trace(&request)?;
    if scope != chainbreak_store::Scope::All {
        for tier in &mut report.tiers {
            let ids: Vec<Cow<'_, str>> = tier.person_ids().collect();
            let ids: Vec<&str> = ids.iter().map(|id| &**id).collect();
            let inside = dep.store.in_scope(&scope, chainbreak_store::Entity::Person, &ids)?;
            let outside: Vec<bool> = inside.into_iter().map(|inside| !inside).collect();
            tier.set_outside_jurisdiction(&outside);
        }
    }
    Ok(report)
}
