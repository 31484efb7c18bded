//! `chainbreak import KIND FILE`: every kind of file, all-or-nothing.
//!
//! A file is imported in one store batch: if anything is wrong and `--skip-invalid` is not
//! given, the batch is dropped and the store is as it was. With `--skip-invalid`, each bad
//! record is written to a rejects file (line, code, field, message, the record) and the rest
//! is imported. A crash or a kill drops the batch too.
//!
//! Visits take a fast path ([`visits`]): parsing and id mapping on one thread, SQLite on
//! another, keys looked up in memory, indexes rebuilt once at the end.

mod idmap;
mod visits;

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chainbreak_core::model::*;
use chainbreak_core::{ErrorCode, Location};
use chainbreak_formats::reader::RecordError;
use chainbreak_formats::{Format, FormatError, Kind, RecordReader, geojson_areas};
use chainbreak_store::{Batch, Store, StoreError};
use serde::de::DeserializeOwned;

use crate::{AppError, Progress};

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Register persons and places that visits name but the store does not know, by id alone.
    pub register_unknown: bool,
    /// Skip invalid records, writing them to `rejects` (default: FILE.rejects.csv).
    pub skip_invalid: bool,
    pub rejects: Option<PathBuf>,
    /// The format; by default from the file's extension.
    pub format: Option<Format>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ImportReport {
    pub kind: String,
    pub file: String,
    pub imported: u64,
    pub rejected: u64,
    pub registered_persons: u64,
    pub registered_places: u64,
    pub rejects_file: Option<String>,
    /// The store's change sequence after the import.
    pub last_seq: u64,
    pub seconds: f64,
}

/// Records per store call on the generic path.
const CHUNK: usize = 2_000;

/// Writes rejected records as CSV: `line,code,field,message,record`.
pub(crate) struct Rejects {
    path: PathBuf,
    writer: Option<csv::Writer<BufWriter<File>>>,
    pub(crate) count: u64,
}

impl Rejects {
    fn new(path: PathBuf) -> Self {
        Rejects {
            path,
            writer: None,
            count: 0,
        }
    }

    pub(crate) fn add(&mut self, error: &FormatError, raw: &str) -> Result<(), AppError> {
        if self.writer.is_none() {
            let f = File::create(&self.path).map_err(|e| AppError::io(&self.path, e))?;
            let mut w = csv::Writer::from_writer(BufWriter::new(f));
            w.write_record(["line", "code", "field", "message", "record"])
                .map_err(|e| self.csv_err(e))?;
            self.writer = Some(w);
        }
        let field = error
            .location
            .field
            .clone()
            .or_else(|| error.location.json_path.clone())
            .unwrap_or_default();
        let line = error
            .location
            .line
            .map(|l| l.to_string())
            .unwrap_or_default();
        let w = self.writer.as_mut().expect("opened above");
        let res = w.write_record([
            line.as_str(),
            error.code.as_str(),
            field.as_str(),
            error.message.as_str(),
            raw,
        ]);
        res.map_err(|e| AppError::Io {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        self.count += 1;
        Ok(())
    }

    fn csv_err(&self, e: csv::Error) -> AppError {
        AppError::Io {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn finish(self) -> Result<Option<String>, AppError> {
        match self.writer {
            None => Ok(None),
            Some(mut w) => {
                w.flush().map_err(|e| AppError::io(&self.path, e))?;
                Ok(Some(self.path.display().to_string()))
            }
        }
    }
}

/// Imports one file of one kind into `store`.
pub fn import_file(
    store: &mut dyn Store,
    kind: Kind,
    path: &Path,
    opts: &ImportOptions,
    at: jiff::Timestamp,
    progress: &mut dyn Progress,
) -> Result<ImportReport, AppError> {
    let started = std::time::Instant::now();
    let name = path.display().to_string();
    let format = match opts.format.or_else(|| Format::from_path(path)) {
        Some(f) => f,
        None => {
            return Err(FormatError::new(
                ErrorCode::InputUnsupported,
                Location::file(&name),
                "cannot tell the format from the file name; use .csv, .jsonl or .geojson, or give --format",
            )
            .into());
        }
    };
    if !kind.accepts(format) {
        return Err(FormatError::new(
            ErrorCode::InputUnsupported,
            Location::file(&name),
            format!("{kind} files are CSV or JSON Lines, not {format}"),
        )
        .into());
    }
    let file = File::open(path).map_err(|e| AppError::io(path, e))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let rejects_path = opts.rejects.clone().unwrap_or_else(|| {
        let mut p = path.as_os_str().to_owned();
        p.push(".rejects.csv");
        PathBuf::from(p)
    });
    let mut rejects = Rejects::new(rejects_path);
    progress.start(size, "bytes");

    let mut report = ImportReport {
        kind: kind.to_string(),
        file: name.clone(),
        ..Default::default()
    };
    let mut batch = store.begin(at)?;
    if kind == Kind::Visits && format == Format::Csv {
        let (persons, places) = (batch_keys(&*batch, true)?, batch_keys(&*batch, false)?);
        visits::import_csv(
            &mut *batch,
            file,
            size,
            &name,
            persons,
            places,
            opts,
            &mut rejects,
            &mut report,
            progress,
        )?;
    } else {
        let counting = CountingReader {
            inner: file,
            count: Arc::new(AtomicU64::new(0)),
        };
        import_generic(
            &mut *batch,
            kind,
            format,
            counting,
            &name,
            opts,
            &mut rejects,
            &mut report,
            progress,
        )?;
    }
    report.last_seq = batch.commit()?;
    report.rejected = rejects.count;
    report.rejects_file = rejects.finish()?;
    report.seconds = started.elapsed().as_secs_f64();
    progress.finish(&format!("{} {} imported", report.imported, kind));
    Ok(report)
}

/// The id → key maps for persons or places, read through the batch's store.
fn batch_keys(batch: &dyn Batch, persons: bool) -> Result<idmap::IdMap, AppError> {
    Ok(idmap::IdMap::from_pairs(if persons {
        batch.person_keys()?
    } else {
        batch.place_keys()?
    }))
}

/// Counts bytes read, for progress.
pub(crate) struct CountingReader<R> {
    pub(crate) inner: R,
    pub(crate) count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[allow(clippy::too_many_arguments)]
fn import_generic<R: Read>(
    batch: &mut dyn Batch,
    kind: Kind,
    format: Format,
    input: CountingReader<R>,
    name: &str,
    opts: &ImportOptions,
    rejects: &mut Rejects,
    report: &mut ImportReport,
    progress: &mut dyn Progress,
) -> Result<(), AppError> {
    macro_rules! go {
        ($t:ty, $put:ident) => {
            import_records::<$t, R>(
                batch,
                format,
                input,
                name,
                opts,
                rejects,
                report,
                progress,
                &|b, rows| b.$put(rows),
            )
        };
    }
    match kind {
        Kind::Areas if format == Format::GeoJson => {
            let mut input = input;
            let mut text = String::new();
            input.read_to_string(&mut text).map_err(|e| AppError::Io {
                path: name.into(),
                message: e.to_string(),
            })?;
            let areas = geojson_areas::read_areas(&text, name)?;
            let lines: Vec<(u64, String)> = (0..areas.len())
                .map(|i| (0, format!("$.features[{i}]")))
                .collect();
            put_chunk(
                batch,
                areas,
                lines,
                name,
                opts,
                rejects,
                report,
                &|b, rows: &[Area]| b.put_areas(rows),
            )
        }
        Kind::Areas => go!(Area, put_areas),
        Kind::Units => go!(Unit, put_units),
        Kind::Places => go!(Place, put_places),
        Kind::Persons => go!(Person, put_persons),
        Kind::Identifiers => go!(Identifier, put_identifiers),
        Kind::Staff => go!(StaffMember, put_staff),
        Kind::Groups => go!(Group, put_groups),
        Kind::Memberships => go!(Membership, put_memberships),
        Kind::Visits => visits::import_visit_records(
            batch, format, input, name, opts, rejects, report, progress,
        ),
        Kind::Trips => go!(Trip, put_trips),
        Kind::Passengers => go!(TripPassenger, put_passengers),
        Kind::Pings => go!(LocationPing, put_pings),
        Kind::Cases => go!(Case, put_cases),
        Kind::LabTests => go!(LabTest, put_lab_tests),
        Kind::Arrivals => go!(Arrival, put_arrivals),
        Kind::GoodsBatches => go!(GoodsBatch, put_goods_batches),
        Kind::GoodsHops => go!(GoodsHop, put_goods_hops),
        Kind::Sentinel => go!(SentinelRecord, put_sentinel),
    }
}

type PutFn<'f, T> = dyn Fn(&mut dyn Batch, &[T]) -> Result<(), StoreError> + 'f;

/// Handles one unreadable record: reject it, or fail the whole import.
pub(crate) fn reject_or_fail(
    e: RecordError,
    opts: &ImportOptions,
    rejects: &mut Rejects,
) -> Result<(), AppError> {
    if opts.skip_invalid && !e.fatal {
        rejects.add(&e.error, &e.raw)
    } else {
        Err(e.error.into())
    }
}

#[allow(clippy::too_many_arguments)]
fn import_records<T: DeserializeOwned + serde::Serialize, R: Read>(
    batch: &mut dyn Batch,
    format: Format,
    input: CountingReader<R>,
    name: &str,
    opts: &ImportOptions,
    rejects: &mut Rejects,
    report: &mut ImportReport,
    progress: &mut dyn Progress,
    put: &PutFn<'_, T>,
) -> Result<(), AppError> {
    let read = input.count.clone();
    let mut reader = RecordReader::<T, _>::new(input, format, name)?;
    let mut rows = Vec::with_capacity(CHUNK);
    let mut lines = Vec::with_capacity(CHUNK);
    let mut n = 0u64;
    while let Some(next) = reader.next_record() {
        match next {
            Ok((line, t)) => {
                rows.push(t);
                lines.push((line, String::new()));
            }
            Err(e) => reject_or_fail(e, opts, rejects)?,
        }
        if rows.len() == CHUNK {
            put_chunk(
                batch,
                std::mem::take(&mut rows),
                std::mem::take(&mut lines),
                name,
                opts,
                rejects,
                report,
                put,
            )?;
        }
        n += 1;
        if n.is_multiple_of(4096) {
            progress.set(read.load(Ordering::Relaxed));
        }
    }
    put_chunk(batch, rows, lines, name, opts, rejects, report, put)
}

/// Writes a chunk; a row the store refuses is rejected (or fails the import) and the rest of
/// the chunk is written again without it.
#[allow(clippy::too_many_arguments)]
fn put_chunk<T: serde::Serialize>(
    batch: &mut dyn Batch,
    mut rows: Vec<T>,
    mut lines: Vec<(u64, String)>,
    name: &str,
    opts: &ImportOptions,
    rejects: &mut Rejects,
    report: &mut ImportReport,
    put: &PutFn<'_, T>,
) -> Result<(), AppError> {
    while !rows.is_empty() {
        match put(batch, &rows) {
            Ok(()) => {
                report.imported += rows.len() as u64;
                return Ok(());
            }
            Err(e) => {
                let (index, field) = match &e {
                    StoreError::UnknownReference { index, field, .. }
                    | StoreError::Invalid { index, field, .. } => (*index, *field),
                    _ => return Err(e.into()),
                };
                let (line, path) = &lines[index];
                let mut loc = Location::file(name);
                if *line > 0 {
                    loc = loc.with_line(*line).with_field(field);
                } else {
                    loc = loc.with_json_path(format!("{path}.properties.{field}"));
                }
                let err = FormatError::new(e.code(), loc, e.to_string());
                if !opts.skip_invalid {
                    return Err(err.into());
                }
                let raw = serde_json::to_string(&rows[index]).unwrap_or_default();
                rejects.add(&err, &raw)?;
                rows.remove(index);
                lines.remove(index);
            }
        }
    }
    Ok(())
}
