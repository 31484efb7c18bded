//! Writing the city and its days as import files, through `chainbreak-formats` (the same code
//! that reads them). The one module of the crate that does IO.
//!
//! Large files (visits, passengers, pings) are formatted in chunks in parallel, each chunk by
//! its own [`RecordWriter`] (the first one of a file with the CSV header, the others as
//! continuations), and appended in order: the bytes do not depend on the number of threads.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chainbreak_core::model::{Area, Arrival, OriginRisk, Place, PlaceKind, Sex, Trip, TripMode, Unit};
use chainbreak_formats::{Format, RecordWriter, geojson_areas};
use jiff::Timestamp;
use rayon::prelude::*;
use serde::Serialize;

use crate::SimError;
use crate::city::{City, GroupKind, Level, Role};
use crate::day::{DayOut, Rec, TripKey, bus_times, long_trip_times};
use crate::outbreak::GroundTruthRow;

/// Fixed-width ids (`P0000001`...) kept in one buffer.
pub struct Ids {
    buf: String,
    width: usize,
}

impl Ids {
    pub fn new(prefix: char, n: usize) -> Ids {
        let digits = (n.max(1)).to_string().len().max(7);
        let width = digits + 1;
        let mut buf = String::with_capacity(n * width);
        for i in 0..n {
            use std::fmt::Write as _;
            write!(buf, "{prefix}{:0digits$}", i + 1).expect("string");
        }
        Ids { buf, width }
    }
    pub fn get(&self, i: u32) -> &str {
        let i = i as usize * self.width;
        &self.buf[i..i + self.width]
    }
}

/// The ids of a city's persons and places.
pub struct CityIds {
    pub persons: Ids,
    pub places: Ids,
}

impl CityIds {
    pub fn new(city: &City) -> CityIds {
        CityIds { persons: Ids::new('P', city.persons.len()), places: Ids::new('L', city.places.len()) }
    }
}

/// A pings row: the columns of `model::LocationPing`.
#[derive(Serialize)]
pub struct PingRow<'a> {
    pub person_id: &'a str,
    pub t: i64,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: f64,
}

/// Where the time went and what was written.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Building the city and planning days (and, for an outbreak, transmission).
    pub generate: Duration,
    /// Turning records into bytes (CSV, GeoJSON).
    pub format: Duration,
    /// Writing bytes to files.
    pub write: Duration,
    /// Bytes written per file name, in the order files were first written.
    pub files: Vec<(String, u64, u64)>,
}

impl Stats {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.1).sum()
    }
    pub fn rows(&self, file: &str) -> u64 {
        self.files.iter().find(|f| f.0 == file).map_or(0, |f| f.2)
    }
    fn add(&mut self, file: &str, bytes: u64, rows: u64) {
        match self.files.iter_mut().find(|f| f.0 == file) {
            Some(f) => {
                f.1 += bytes;
                f.2 += rows;
            }
            None => self.files.push((file.to_string(), bytes, rows)),
        }
    }
}

fn werr(file: &str, e: impl std::fmt::Display) -> SimError {
    SimError::Write { file: file.to_string(), message: e.to_string() }
}

/// Formats rows with a `RecordWriter` (with the CSV header when `header`).
pub fn format_rows<T: Serialize>(
    file: &str,
    rows: impl IntoIterator<Item = T>,
    header: bool,
) -> Result<(Vec<u8>, u64), SimError> {
    let mut w = if header {
        RecordWriter::new(Vec::new(), Format::Csv)
    } else {
        RecordWriter::continuation(Vec::new(), Format::Csv)
    }
    .map_err(|e| werr(file, e))?;
    let mut n = 0;
    for row in rows {
        w.write(&row).map_err(|e| werr(file, e))?;
        n += 1;
    }
    Ok((w.finish().map_err(|e| werr(file, e))?, n))
}

/// An output directory: files are created on first write and appended to. The bytes are
/// written by a thread of their own, so that writing overlaps the next day's work; at most
/// [`IN_FLIGHT`] buffers wait for it.
pub struct Output {
    dir: PathBuf,
    /// Files begun, by name; a file's number is its place here.
    begun: Vec<String>,
    tx: Option<SyncSender<(usize, WriteJob)>>,
    writer: Option<std::thread::JoinHandle<Result<Duration, SimError>>>,
    /// Buffers the writer has emptied, for the next chunks to format into (fresh memory costs
    /// a page fault every 4 KiB).
    pool: Arc<Mutex<Pool>>,
    pub stats: Stats,
}

/// Empty buffers kept for reuse, up to [`POOL_BYTES`] of capacity.
#[derive(Default)]
struct Pool {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
}

const POOL_BYTES: usize = 128 << 20;

impl Pool {
    /// An empty buffer: a kept one, or a new one of 1 MiB.
    fn take(pool: &Mutex<Pool>) -> Vec<u8> {
        let mut p = pool.lock().expect("pool lock");
        match p.bufs.pop() {
            Some(b) => {
                p.bytes -= b.capacity();
                b
            }
            None => Vec::with_capacity(1 << 20),
        }
    }

    /// Keeps `buf` (emptied) for reuse if there is room.
    fn give(pool: &Mutex<Pool>, mut buf: Vec<u8>) {
        let mut p = pool.lock().expect("pool lock");
        if p.bytes + buf.capacity() <= POOL_BYTES {
            buf.clear();
            p.bytes += buf.capacity();
            p.bufs.push(buf);
        }
    }
}

/// Buffers waiting for the writer thread, at most (a day's visits are ~60 buffers of ~2 MB).
const IN_FLIGHT: usize = 64;

enum WriteJob {
    Open(String, File),
    Bytes(Vec<u8>),
}

/// The writer thread: writes the buffers in the order received; stops at the first error.
fn write_jobs(rx: Receiver<(usize, WriteJob)>, pool: Arc<Mutex<Pool>>) -> Result<Duration, SimError> {
    let mut files: Vec<(String, File)> = Vec::new();
    let mut busy = Duration::ZERO;
    for (i, job) in rx {
        let t = Instant::now();
        match job {
            WriteJob::Open(name, f) => files.push((name, f)),
            WriteJob::Bytes(bytes) => {
                let (name, f) = &mut files[i];
                f.write_all(&bytes).map_err(|e| werr(name, e))?;
                Pool::give(&pool, bytes);
            }
        }
        busy += t.elapsed();
    }
    Ok(busy)
}

impl Output {
    pub fn create(dir: &Path) -> Result<Output, SimError> {
        std::fs::create_dir_all(dir).map_err(|e| werr(&dir.display().to_string(), e))?;
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let pool = Arc::new(Mutex::new(Pool::default()));
        let kept = pool.clone();
        let writer = std::thread::Builder::new()
            .name("sim-writer".into())
            .spawn(move || write_jobs(rx, kept))
            .map_err(|e| werr(&dir.display().to_string(), e))?;
        Ok(Output {
            dir: dir.to_path_buf(),
            begun: Vec::new(),
            tx: Some(tx),
            writer: Some(writer),
            pool,
            stats: Stats::default(),
        })
    }

    /// Whether `file` has been begun (its header written).
    pub fn begun(&self, file: &str) -> bool {
        self.begun.iter().any(|f| f == file)
    }

    /// Appends formatted bytes to `file` (created on its first bytes).
    pub fn append(&mut self, file: &str, bytes: Vec<u8>, rows: u64) -> Result<(), SimError> {
        let i = match self.begun.iter().position(|f| f == file) {
            Some(i) => i,
            None => {
                let f = File::create(self.dir.join(file)).map_err(|e| werr(file, e))?;
                self.send(self.begun.len(), WriteJob::Open(file.to_string(), f))?;
                self.begun.push(file.to_string());
                self.begun.len() - 1
            }
        };
        self.stats.add(file, bytes.len() as u64, rows);
        self.send(i, WriteJob::Bytes(bytes))
    }

    fn send(&mut self, i: usize, job: WriteJob) -> Result<(), SimError> {
        let tx = self.tx.as_ref().expect("open until finished");
        if tx.send((i, job)).is_err() {
            // The writer stopped at an error: report it.
            self.join()?;
            return Err(werr(&self.begun[i], "the writer thread stopped"));
        }
        Ok(())
    }

    /// Waits for the writer thread; its time writing goes to `stats.write`.
    fn join(&mut self) -> Result<(), SimError> {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let busy = w.join().map_err(|_| werr(&self.dir.display().to_string(), "the writer thread panicked"))??;
            self.stats.write += busy;
        }
        Ok(())
    }

    /// Formats and appends rows to `file` (a small file: on this thread). No rows, no file.
    pub fn rows<T: Serialize>(&mut self, file: &str, rows: impl IntoIterator<Item = T>) -> Result<(), SimError> {
        let t = Instant::now();
        let (bytes, n) = format_rows(file, rows, !self.begun(file))?;
        self.stats.format += t.elapsed();
        if n == 0 {
            return Ok(());
        }
        self.append(file, bytes, n)
    }

    /// Formats chunks of rows in parallel and appends them in order.
    pub fn chunked<C: Sync, T: Serialize + Send>(
        &mut self,
        file: &str,
        chunks: &[C],
        rows: impl Fn(&C) -> Vec<T> + Sync,
    ) -> Result<(), SimError> {
        self.chunked_iter(file, chunks, |c, w| {
            for row in rows(c) {
                w(row)?;
            }
            Ok(())
        })
    }

    /// Formats chunks in parallel: `each(chunk, emit)` calls `emit` for every row of the chunk.
    /// The file's first non-empty chunk carries the CSV header; a file with no rows is not made.
    pub fn chunked_iter<C: Sync, T: Serialize>(
        &mut self,
        file: &str,
        chunks: &[C],
        each: impl Fn(&C, &mut dyn FnMut(T) -> Result<(), SimError>) -> Result<(), SimError> + Sync,
    ) -> Result<(), SimError> {
        let t = Instant::now();
        let pool = &*self.pool;
        let format = |c: &C, header: bool| -> Result<(Vec<u8>, u64), SimError> {
            let out = Pool::take(pool);
            let mut w =
                if header { RecordWriter::new(out, Format::Csv) } else { RecordWriter::continuation(out, Format::Csv) }
                    .map_err(|e| werr(file, e))?;
            let mut n = 0u64;
            each(c, &mut |row| {
                n += 1;
                w.write(&row).map_err(|e| werr(file, e))
            })?;
            Ok((w.finish().map_err(|e| werr(file, e))?, n))
        };
        let mut parts: Vec<(Vec<u8>, u64)> =
            chunks.par_iter().map(|c| format(c, false)).collect::<Result<Vec<_>, SimError>>()?;
        if !self.begun(file)
            && let Some(i) = parts.iter().position(|p| p.1 > 0)
        {
            parts[i] = format(&chunks[i], true)?;
        }
        self.stats.format += t.elapsed();
        for (bytes, n) in parts {
            if n > 0 {
                self.append(file, bytes, n)?;
            } else {
                Pool::give(&self.pool, bytes);
            }
        }
        Ok(())
    }

    /// As [`Output::chunked_iter`] for rows given as fields already formatted (`N` columns
    /// named by `header`): the fast path of the biggest files, without serde or the csv crate.
    /// The fields must never need quoting (ids, numbers, fixed words: no comma, quote or line
    /// break); then the bytes are the csv crate's (see [`push_csv_row`]).
    pub fn chunked_fields<C: Sync, const N: usize>(
        &mut self,
        file: &str,
        header: [&str; N],
        chunks: &[C],
        each: impl Fn(&C, &mut dyn FnMut([&[u8]; N])) + Sync,
    ) -> Result<(), SimError> {
        let t = Instant::now();
        let pool = &*self.pool;
        let parts: Vec<(Vec<u8>, u64)> = chunks
            .par_iter()
            .map(|c| {
                let mut buf = Pool::take(pool);
                let mut n = 0u64;
                each(c, &mut |fields| {
                    n += 1;
                    push_csv_row(&mut buf, fields);
                });
                (buf, n)
            })
            .collect();
        let head = (!self.begun(file) && parts.iter().any(|p| p.1 > 0)).then(|| {
            let mut buf = Vec::new();
            push_csv_row(&mut buf, header.map(str::as_bytes));
            buf
        });
        self.stats.format += t.elapsed();
        if let Some(head) = head {
            self.append(file, head, 0)?;
        }
        for (bytes, n) in parts {
            if n > 0 {
                self.append(file, bytes, n)?;
            } else {
                Pool::give(&self.pool, bytes);
            }
        }
        Ok(())
    }

    /// Writes a whole file at once (GeoJSON).
    pub fn whole(&mut self, file: &str, text: &str) -> Result<(), SimError> {
        self.append(file, text.as_bytes().to_vec(), 0)
    }

    /// Waits for every byte to be written and closes the files; returns the statistics.
    pub fn finish(mut self) -> Result<Stats, SimError> {
        self.join()?;
        Ok(self.stats)
    }
}

/// Appends a CSV row of fields that need no quoting (no comma, quote or line break in them):
/// the fields joined by commas and ended by `\n`, as the csv crate writes such a row of two
/// fields or more (checked in debug builds).
fn push_csv_row<const N: usize>(buf: &mut Vec<u8>, fields: [&[u8]; N]) {
    const { assert!(N >= 2, "a row of one empty field would be quoted") };
    for (i, f) in fields.iter().enumerate() {
        debug_assert!(!f.iter().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')), "a field to quote: {f:?}");
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(f);
    }
    buf.push(b'\n');
}

/// The id of an area at `level` with index `i`.
pub fn area_id(level: Level, i: u32) -> String {
    match level {
        Level::District => format!("D{:02}", i + 1),
        Level::Subdistrict => format!("S{:03}", i + 1),
        Level::Community => format!("M{:04}", i + 1),
        Level::Compound => format!("K{:05}", i + 1),
        Level::Building => format!("B{:06}", i + 1),
    }
}

const LEVELS: [(Level, &str); 5] = [
    (Level::District, "district"),
    (Level::Subdistrict, "subdistrict"),
    (Level::Community, "community"),
    (Level::Compound, "compound"),
    (Level::Building, "building"),
];

fn rect(city: &City, x: u32, y: u32, side_x: u32, side_y: u32) -> geojson::Geometry {
    let c = city.params.cell_deg;
    let r6 = |v: f64| (v * 1e6).round() / 1e6;
    let lon0 = r6(city.params.origin_lon + x as f64 * c);
    let lat0 = r6(city.params.origin_lat + y as f64 * c);
    let lon1 = r6(city.params.origin_lon + (x + side_x) as f64 * c);
    let lat1 = r6(city.params.origin_lat + (y + side_y) as f64 * c);
    geojson::Geometry::new(geojson::Value::Polygon(vec![vec![
        vec![lon0, lat0],
        vec![lon1, lat0],
        vec![lon1, lat1],
        vec![lon0, lat1],
        vec![lon0, lat0],
    ]]))
}

/// The area hierarchy: province, city, then every block that holds a building.
pub fn areas(city: &City) -> Vec<Area> {
    let side = City::block_side(Level::District);
    let rows = city.buildings.div_ceil(City::block(Level::District)).div_ceil(city.district_cols);
    let mut out = vec![
        Area {
            id: "PROV".into(),
            name: "Synthetic province".into(),
            level: "province".into(),
            parent: None,
            geometry: Some(rect(city, 0, 0, side * city.district_cols, side * rows)),
        },
        Area {
            id: "CITY".into(),
            name: "Synthetic city".into(),
            level: "city".into(),
            parent: Some("PROV".into()),
            geometry: Some(rect(city, 0, 0, side * city.district_cols, side * rows)),
        },
    ];
    for (li, (level, name)) in LEVELS.iter().enumerate() {
        let block = City::block(*level);
        let side = City::block_side(*level);
        for a in 0..city.buildings.div_ceil(block) {
            let (x, y) = city.cell(a * block);
            let parent = if li == 0 {
                "CITY".to_string()
            } else {
                let (pl, _) = LEVELS[li - 1];
                area_id(pl, City::area_of(a * block, pl))
            };
            out.push(Area {
                id: area_id(*level, a),
                name: format!("{} {}", capitalise(name), a + 1),
                level: name.to_string(),
                parent: Some(parent),
                geometry: Some(rect(city, x, y, side, side)),
            });
        }
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

fn kind_title(kind: PlaceKind) -> String {
    capitalise(&kind.as_str().replace('_', " "))
}

/// Writes the city's static files: areas, units, places, persons, staff, groups, memberships.
pub fn write_city(city: &City, ids: &CityIds, out: &mut Output) -> Result<(), SimError> {
    let t = Instant::now();
    let text = geojson_areas::write_areas(&areas(city));
    out.stats.format += t.elapsed();
    out.whole("areas.geojson", &text)?;

    let mut units = vec![
        Unit { id: "CMD".into(), name: "City epidemic command centre".into(), parent: None, area: Some("CITY".into()) },
        Unit { id: "CDC".into(), name: "City CDC".into(), parent: Some("CMD".into()), area: Some("CITY".into()) },
    ];
    for s in 0..city.buildings.div_ceil(City::block(Level::Subdistrict)) {
        units.push(Unit {
            id: format!("SO{:03}", s + 1),
            name: format!("Subdistrict office {}", s + 1),
            parent: Some("CMD".into()),
            area: Some(area_id(Level::Subdistrict, s)),
        });
    }
    for m in 0..city.buildings.div_ceil(City::block(Level::Community)) {
        let s = m * City::block(Level::Community) / City::block(Level::Subdistrict);
        units.push(Unit {
            id: format!("CS{:04}", m + 1),
            name: format!("Community station {}", m + 1),
            parent: Some(format!("SO{:03}", s + 1)),
            area: Some(area_id(Level::Community, m)),
        });
    }
    out.rows("units.csv", units)?;

    out.rows(
        "places.csv",
        city.places.iter().enumerate().map(|(i, p)| {
            let name = if p.kind == PlaceKind::Residence {
                format!("Residence {}", area_id(Level::Building, p.building))
            } else if p.port {
                format!("Port terminal {}", p.ordinal + 1)
            } else {
                format!("{} {}", kind_title(p.kind), p.ordinal + 1)
            };
            Place {
                id: ids.places.get(i as u32).to_string(),
                name: Some(name),
                kind: p.kind,
                key_place: city.params.kind_params(p.kind).is_some_and(|k| k.key_place),
                lat: Some((p.lat * 1e6).round() / 1e6),
                lon: Some((p.lon * 1e6).round() / 1e6),
                area: Some(area_id(Level::Building, p.building)),
            }
        }),
    )?;

    let year = city.params.start.year() as i32;
    let chunks: Vec<std::ops::Range<u32>> = (0..city.persons.len() as u32)
        .step_by(65_536)
        .map(|a| a..(a + 65_536).min(city.persons.len() as u32))
        .collect();
    // Persons and staff formatted in parallel as plain rows: the columns of `model::Person` and
    // `model::StaffMember` (ids, numbers, fixed words and occupation names, which
    // `CityParams::validate` keeps to plain words; tested equal to their serde rows).
    out.chunked_fields(
        "persons.csv",
        ["id", "residence", "birth_year", "sex", "occupation"],
        &chunks,
        |range, emit| {
            let mut birth_year = itoa::Buffer::new();
            for i in range.clone() {
                let p = &city.persons[i as usize];
                let occupation: &str = match p.role {
                    Role::Worker => city.occupation(i).unwrap_or(""),
                    Role::Student => "student",
                    Role::AtHome if year - p.birth_year >= 60 => "retired",
                    Role::AtHome => "unemployed",
                    Role::Infant => "",
                };
                let sex: &[u8] = if p.sex == Sex::Female { b"female" } else { b"male" };
                emit([
                    ids.persons.get(i).as_bytes(),
                    ids.places.get(p.building).as_bytes(),
                    birth_year.format(p.birth_year).as_bytes(),
                    sex,
                    occupation.as_bytes(),
                ]);
            }
        },
    )?;

    let places: Vec<std::ops::Range<usize>> =
        (0..city.staff.len()).step_by(4_096).map(|a| a..(a + 4_096).min(city.staff.len())).collect();
    out.chunked_fields("staff.csv", ["place_id", "person_id", "role"], &places, |range, emit| {
        for place in range.clone() {
            for &m in &city.staff[place] {
                let role = city.occupation(m).unwrap_or("");
                emit([ids.places.get(place as u32).as_bytes(), ids.persons.get(m).as_bytes(), role.as_bytes()]);
            }
        }
    })?;

    let group_id = |g: usize| -> String {
        if g < city.households.len() {
            format!("H{:07}", g + 1)
        } else {
            let (kind, _, _) = &city.groups[g - city.households.len()];
            match kind {
                GroupKind::Class => format!("C{:06}", g - city.households.len() + 1),
                GroupKind::Team => format!("T{:06}", g - city.households.len() + 1),
                GroupKind::Household => unreachable!("households come first"),
            }
        }
    };
    // Groups and memberships (1.5 million rows at 1M persons) formatted in parallel as plain
    // rows: the columns of `model::Group` and `model::Membership` (ids, fixed words and names,
    // nothing to quote; tested equal to their serde rows).
    let groups: Vec<std::ops::Range<usize>> =
        (0..city.group_count()).step_by(16_384).map(|a| a..(a + 16_384).min(city.group_count())).collect();
    out.chunked_fields("groups.csv", ["id", "kind", "name", "place_id", "start", "end"], &groups, |range, emit| {
        let mut name = String::new();
        for g in range.clone() {
            let (kind, place): (&[u8], u32) = if g < city.households.len() {
                name.clear();
                let (first, _) = city.households[g];
                (b"household", city.persons[first as usize].building)
            } else {
                let (kind, place, _) = &city.groups[g - city.households.len()];
                let (kind, title): (&[u8], &str) =
                    if *kind == GroupKind::Class { (b"class", "Class ") } else { (b"team", "Team ") };
                name.clear();
                name.push_str(title);
                push_padded(&mut name, (g - city.households.len() + 1) as u32, 0);
                (kind, *place)
            };
            emit([group_id(g).as_bytes(), kind, name.as_bytes(), ids.places.get(place).as_bytes(), b"", b""]);
        }
    })?;
    out.chunked_fields("memberships.csv", ["group_id", "person_id", "role"], &groups, |range, emit| {
        for g in range.clone() {
            let gid = group_id(g);
            if g < city.households.len() {
                let (first, size) = city.households[g];
                for (k, p) in (first..first + size).enumerate() {
                    let role: &[u8] = if k == 0 { b"head" } else { b"member" };
                    emit([gid.as_bytes(), ids.persons.get(p).as_bytes(), role]);
                }
            } else {
                let (kind, _, members) = &city.groups[g - city.households.len()];
                let role: &[u8] = if *kind == GroupKind::Class { b"student" } else { b"member" };
                for &p in members {
                    emit([gid.as_bytes(), ids.persons.get(p).as_bytes(), role]);
                }
            }
        }
    })?;
    Ok(())
}

const DOMESTIC: [&str; 10] = [
    "Beijing",
    "Shanghai",
    "Guangzhou",
    "Shenzhen",
    "Chengdu",
    "Xi'an",
    "Changsha",
    "Nanjing",
    "Hangzhou",
    "Zhengzhou",
];
const ABROAD: [&str; 8] = ["HK", "SG", "KR", "JP", "DE", "US", "TH", "AE"];

/// A trip's id.
pub fn trip_id(key: TripKey) -> String {
    let mut s = String::new();
    write_trip_id(key, &mut s);
    s
}

/// Appends a trip's id to `out` (without `fmt`: one per passenger row).
fn write_trip_id(key: TripKey, out: &mut String) {
    let (prefix, first, first_width, second, second_width) = match key.mode() {
        TripMode::Bus => {
            out.push_str("BUS");
            push_padded(out, key.line() + 1, 0);
            out.push('-');
            push_padded(out, key.day() + 1, 3);
            out.push('-');
            push_padded(out, key.slot(), 2);
            return;
        }
        TripMode::Train => ("TRN-", key.day() + 1, 3, key.line() + 1, 2),
        TripMode::Flight => ("FLT-", key.day() + 1, 3, key.line() + 1, 2),
        TripMode::Ship => ("SHP-", key.day() + 1, 3, key.line() + 1, 2),
    };
    out.push_str(prefix);
    push_padded(out, first, first_width);
    out.push('-');
    push_padded(out, second, second_width);
}

/// Appends `n` in decimal, zero-padded to `width` digits (as `{n:0width$}`).
fn push_padded(out: &mut String, n: u32, width: usize) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

/// `TripRole::Passenger` as the CSV writes it.
const PASSENGER_ROLE: &str = "passenger";

/// A ride's seat letter (flights ABCDEF, other modes ABCDF); the ride has a seat.
fn seat_letter(r: &crate::day::Ride) -> char {
    let letters = if r.trip.mode() == TripMode::Flight { "ABCDEF" } else { "ABCDF" };
    letters.as_bytes()[r.seat as usize] as char
}

/// Whether a flight comes from abroad, and its origin.
pub fn trip_origin(city: &City, key: TripKey) -> (String, OriginRisk) {
    let h = crate::rng::mix(city.params.seed ^ crate::rng::mix(key.0 ^ 0x0516));
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    match key.mode() {
        TripMode::Flight if u < city.params.abroad_flight_share => {
            (ABROAD[(h % ABROAD.len() as u64) as usize].to_string(), OriginRisk::Abroad)
        }
        _ => {
            let origin = DOMESTIC[(h % DOMESTIC.len() as u64) as usize];
            // Domestic risk areas change weekly: 3% high, 10% medium.
            let w = crate::rng::mix(city.params.seed ^ (h % DOMESTIC.len() as u64) ^ ((key.day() / 7) as u64) << 20);
            let v = (w >> 11) as f64 / (1u64 << 53) as f64;
            let risk = if v < 0.03 {
                OriginRisk::High
            } else if v < 0.13 {
                OriginRisk::Medium
            } else {
                OriginRisk::Low
            };
            (origin.to_string(), risk)
        }
    }
}

fn ts(t: i64) -> Timestamp {
    Timestamp::from_second(t).expect("in range")
}

/// The trip record of a key.
pub fn trip_record(city: &City, ids: &CityIds, key: TripKey) -> Trip {
    let base = city.day_start(key.day());
    match key.mode() {
        TripMode::Bus => {
            let (dep, arr) = bus_times(key);
            let station = city.by_kind[PlaceKind::TransitStation as usize].places[key.line() as usize];
            Trip {
                id: trip_id(key),
                mode: TripMode::Bus,
                number: format!("{}", key.line() + 1),
                departure: ts(base + dep),
                arrival: Some(ts(base + arr)),
                origin: Some(ids.places.get(station).to_string()),
                destination: Some(format!("Line {} terminus", key.line() + 1)),
                sealed: true,
            }
        }
        mode => {
            let (dep, arr) = long_trip_times(city, key);
            let (origin, _) = trip_origin(city, key);
            let number = if mode == TripMode::Train {
                format!("G{}", 100 + (key.line() * 37 + key.day() * 11) % 900)
            } else {
                format!("CZ{}", 3000 + (key.line() * 53 + key.day() * 7) % 900)
            };
            Trip {
                id: trip_id(key),
                mode,
                number,
                departure: ts(base + dep),
                arrival: Some(ts(base + arr)),
                origin: Some(origin),
                destination: Some("Synthetic city".into()),
                sealed: mode == TripMode::Train,
            }
        }
    }
}

/// What of a day to write.
#[derive(Debug, Clone, Copy)]
pub struct DayFiles {
    pub visits: bool,
    pub pings: bool,
}

/// Writes one day's feeds from its chunks (in person order): visits, trips, passengers,
/// arrivals and pings.
pub fn write_day(
    city: &City,
    ids: &CityIds,
    chunks: &[DayOut],
    what: DayFiles,
    out: &mut Output,
) -> Result<(), SimError> {
    if what.visits {
        // The biggest file by far, formatted here without serde: the columns of `model::Visit`
        // (source left to its default, `venue_code`), instants as Unix seconds, no allocation.
        out.chunked_fields("visits.csv", ["person_id", "place_id", "t_in", "t_out"], chunks, |c: &DayOut, emit| {
            let (mut t_in, mut t_out) = (itoa::Buffer::new(), itoa::Buffer::new());
            for s in &c.stays {
                if s.rec == Rec::Missing {
                    continue;
                }
                let out: &[u8] = if s.rec == Rec::Full && s.t_out != crate::day::NO_END {
                    t_out.format(s.t_out).as_bytes()
                } else {
                    b""
                };
                let (person, place) = (ids.persons.get(s.person).as_bytes(), ids.places.get(s.place).as_bytes());
                emit([person, place, t_in.format(s.t_in).as_bytes(), out]);
            }
        })?;
    }
    let t = Instant::now();
    let mut keys: Vec<TripKey> = chunks.iter().flat_map(|c| c.rides.iter().map(|r| r.trip)).collect();
    keys.sort_unstable();
    keys.dedup();
    out.stats.format += t.elapsed();
    out.rows("trips.csv", keys.iter().map(|k| trip_record(city, ids, *k)))?;
    // Formatted without serde: the columns of `model::TripPassenger` (the tests hold the file
    // equal to its rows written through serde).
    out.chunked_fields(
        "passengers.csv",
        ["trip_id", "person_id", "role", "carriage", "seat_row", "seat"],
        chunks,
        |c: &DayOut, emit| {
            let (mut trip, mut seat) = (String::new(), String::new());
            let (mut carriage, mut row) = (itoa::Buffer::new(), itoa::Buffer::new());
            for r in &c.rides {
                trip.clear();
                write_trip_id(r.trip, &mut trip);
                seat.clear();
                if r.seat != 255 {
                    push_padded(&mut seat, r.row as u32, 0);
                    seat.push(seat_letter(r));
                }
                let carriage: &[u8] = if r.carriage > 0 { carriage.format(r.carriage).as_bytes() } else { b"" };
                emit([
                    trip.as_bytes(),
                    ids.persons.get(r.person).as_bytes(),
                    PASSENGER_ROLE.as_bytes(),
                    carriage,
                    row.format(r.row).as_bytes(),
                    seat.as_bytes(),
                ]);
            }
        },
    )?;
    let t = Instant::now();
    let arrivals: Vec<Arrival> = chunks
        .iter()
        .flat_map(|c| c.arrivals.iter())
        .map(|(person, key)| {
            let base = city.day_start(key.day());
            let (dep, arr) = long_trip_times(city, *key);
            let (origin, origin_risk) = trip_origin(city, *key);
            Arrival {
                person_id: ids.persons.get(*person).to_string(),
                origin,
                origin_risk,
                left_origin_at: ts(base + dep),
                arrived_at: ts(base + arr),
                trip_id: Some(trip_id(*key)),
                destination: Some(ids.places.get(city.persons[*person as usize].building).to_string()),
            }
        })
        .collect();
    out.stats.format += t.elapsed();
    out.rows("arrivals.csv", arrivals)?;
    if what.pings {
        out.chunked_iter("pings.csv", chunks, |c: &DayOut, emit| {
            for p in &c.pings {
                emit(PingRow {
                    person_id: ids.persons.get(p.person),
                    t: p.t,
                    lat: (p.lat * 1e6).round() / 1e6,
                    lon: (p.lon * 1e6).round() / 1e6,
                    accuracy_m: 30.0,
                })?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Builds the city of `params` and writes its files (areas, units, places, persons, staff,
/// groups, memberships) while its weekly routine is planned; returns the city and its ids.
fn build_and_write_city(params: crate::CityParams, out: &mut Output) -> Result<(City, CityIds), SimError> {
    let mut city = City::build_without_week(params)?;
    let ids = CityIds::new(&city);
    let (week, written) = rayon::join(|| crate::day::Week::build(&city), || write_city(&city, &ids, out));
    written?;
    city.week = week;
    Ok((city, ids))
}

/// Persons per chunk of parallel work.
pub const CHUNK: u32 = 16_384;

/// Splits persons into chunks.
pub fn person_chunks(n: u32) -> Vec<(u32, u32)> {
    (0..n).step_by(CHUNK as usize).map(|a| (a, (a + CHUNK).min(n))).collect()
}

/// Generates the city of `params` and its days without an outbreak, writing every file into
/// `dir`. `progress(done, total)` is called after each day.
pub fn simulate_city(
    params: crate::CityParams,
    dir: &Path,
    progress: &mut dyn FnMut(u32, u32),
) -> Result<Stats, SimError> {
    params.validate()?;
    let t = Instant::now();
    let mut out = Output::create(dir)?;
    let (city, ids) = build_and_write_city(params, &mut out)?;
    out.stats.generate += t.elapsed();
    let chunks = person_chunks(city.persons.len() as u32);
    let what = DayFiles { visits: true, pings: city.params.ping_share > 0.0 };
    for day in 0..city.params.days {
        let t = Instant::now();
        let outs: Vec<DayOut> = chunks
            .par_iter()
            .map(|&(a, b)| {
                let mut o = DayOut::default();
                crate::day::plan_chunk(&city, day, a, b, |_| Default::default(), &mut o);
                o
            })
            .collect();
        out.stats.generate += t.elapsed();
        write_day(&city, &ids, &outs, what, &mut out)?;
        progress(day + 1, city.params.days);
    }
    out.finish()
}

/// What an outbreak run writes besides the city.
#[derive(Debug, Clone, Copy)]
pub struct OutbreakOptions {
    /// How many of the last days' visits are written (0: no visits file; `None`: every day's).
    /// Presence at places is simulated every day whatever is written.
    pub visit_days: Option<u32>,
}

impl Default for OutbreakOptions {
    fn default() -> Self {
        OutbreakOptions { visit_days: Some(VISIT_DAYS) }
    }
}

/// Days of visits an outbreak run writes unless asked for all.
pub const VISIT_DAYS: u32 = 14;

/// Writes one closed outbreak day: the city's feeds (visits only when `visits`), then lab
/// tests, cases, sentinel reports, goods and the ground truth.
pub fn write_outbreak_day(
    city: &City,
    ids: &CityIds,
    day: &crate::outbreak::DayResult,
    visits: bool,
    out: &mut Output,
) -> Result<(), SimError> {
    let what = DayFiles { visits, pings: city.params.ping_share > 0.0 };
    write_day(city, ids, &day.chunks, what, out)?;
    out.rows("goods_batches.csv", &day.goods_batches)?;
    out.rows("goods_hops.csv", &day.goods_hops)?;
    // The day's feeds, formatted in parallel in blocks of rows.
    const BLOCK: usize = 2048;
    out.chunked_iter("lab_tests.csv", &day.lab_tests.chunks(BLOCK).collect::<Vec<_>>(), |rows, emit| {
        rows.iter().try_for_each(emit)
    })?;
    out.chunked_iter("cases.csv", &day.cases.chunks(BLOCK).collect::<Vec<_>>(), |rows, emit| {
        rows.iter().try_for_each(emit)
    })?;
    out.chunked_iter("sentinel.csv", &day.sentinel.chunks(BLOCK).collect::<Vec<_>>(), |rows, emit| {
        rows.iter().try_for_each(emit)
    })?;
    let truth: Vec<_> = day.infections.chunks(BLOCK).zip(day.onsets.chunks(BLOCK)).collect();
    out.chunked_iter("ground_truth.csv", &truth, |(rows, onsets), emit| {
        rows.iter().zip(onsets.iter()).try_for_each(|(i, onset)| emit(GroundTruthRow::new(ids, i, *onset)))
    })?;
    Ok(())
}

/// Runs an outbreak in a new city with no response, writing every file into `dir`.
/// `progress(done, total)` is called after each day.
pub fn simulate_outbreak(
    params: crate::CityParams,
    pathogen: crate::Pathogen,
    options: OutbreakOptions,
    dir: &Path,
    progress: &mut dyn FnMut(u32, u32),
) -> Result<Stats, SimError> {
    params.validate()?;
    pathogen.validate().map_err(|message| SimError::Profile { source_name: pathogen.name.clone(), message })?;
    let t = Instant::now();
    let days = params.days;
    let mut out = Output::create(dir)?;
    let (city, ids) = build_and_write_city(params, &mut out)?;
    let mut sim = crate::Outbreak::with_city(Arc::new(city), Arc::new(ids), pathogen)?;
    out.stats.generate += t.elapsed();
    // Visits are written from this day on: only then is everyone's day planned in full.
    let visits_from = options.visit_days.map_or(0, |k| days.saturating_sub(k));
    sim.plan_everyone_from(visits_from);
    let (city, ids) = (sim.city.clone(), sim.ids.clone());
    // Day d is simulated while day d - 1's files are formatted (in the same order as one after
    // the other: the bytes are the same); its buffers go back to the simulation once written.
    let mut written: Option<(u32, crate::outbreak::DayResult)> = None;
    for d in 0..=days {
        let write = |out: &mut Output| -> Result<(), SimError> {
            match &written {
                Some((w, result)) => write_outbreak_day(&city, &ids, result, *w >= visits_from, out),
                None => Ok(()),
            }
        };
        let (stepped, wrote) = if d < days {
            let (stepped, wrote) = rayon::join(
                || {
                    let t = Instant::now();
                    sim.step_day().map(|r| (r, t.elapsed()))
                },
                || write(&mut out),
            );
            (Some(stepped?), wrote)
        } else {
            (None, write(&mut out))
        };
        wrote?;
        if let Some((w, result)) = written.take() {
            sim.recycle(result);
            progress(w + 1, days);
        }
        if let Some((result, elapsed)) = stepped {
            out.stats.generate += elapsed;
            written = Some((d, result));
        }
    }
    if std::env::var_os("CHAINBREAK_SIM_PHASES").is_some() {
        eprintln!("phases (s): pilot, plan, goods+importation, transmission, observation: {:.2?}", sim.phase_seconds);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rows_are_the_csv_crates_bytes() {
        let rows: [[&[u8]; 4]; 4] = [
            [b"person_id", b"place_id", b"t_in", b"t_out"],
            [b"P0000001", b"L0032766", b"1646062440", b"1646063100"],
            [b"P0000002", b"L0000001", b"1646062440", b""],
            [b"", b"", b"", b""],
        ];
        let mut w = RecordWriter::continuation(Vec::new(), Format::Csv).unwrap();
        let mut plain = Vec::new();
        for row in rows {
            w.write_fields(row).unwrap();
            push_csv_row(&mut plain, row);
        }
        assert_eq!(String::from_utf8(plain).unwrap(), String::from_utf8(w.finish().unwrap()).unwrap());
    }

    #[test]
    fn trip_ids_are_formatted_as_by_fmt() {
        for &mode in TripMode::ALL {
            for (day, line, slot) in [(0, 0, 0), (8, 41, 7), (99, 99, 71), (999, 1234, 0), (1000, 5, 3)] {
                let key = TripKey::new(mode, day, line, slot);
                let want = match mode {
                    TripMode::Bus => format!("BUS{}-{:03}-{:02}", line + 1, day + 1, slot),
                    TripMode::Train => format!("TRN-{:03}-{:02}", day + 1, line + 1),
                    TripMode::Flight => format!("FLT-{:03}-{:02}", day + 1, line + 1),
                    TripMode::Ship => format!("SHP-{:03}-{:02}", day + 1, line + 1),
                };
                assert_eq!(trip_id(key), want);
            }
        }
    }
}
