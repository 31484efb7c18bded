//! `chainbreak import KIND FILE`: every kind of file, all-or-nothing.
//!
//! A file is imported in one store batch: if anything is wrong and `--skip-invalid` is not
//! given, the batch is dropped and the store is as it was. With `--skip-invalid`, each bad
//! record is written to a rejects file (line, code, field, message, the record) and the rest
//! is imported. A crash or a kill drops the batch too.
//!
//! Person references (`phone:...`, `id_document:...`, `passport:...`) in person fields become
//! pseudonymous ids as they are read ([`crate::pseudonym`]); the identifiers they carried go to
//! the personal-data table, and rejects files never show them.
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

use crate::pseudonym::{self, PersonRefs, PseudonymError, Pseudonymise, Pseudonymizer};
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
    /// Who imports, through what (the audit record's actor); `system` when not given.
    pub actor: Option<crate::accounts::Actor>,
    /// The deployment's pseudonymisation key: person references (`phone:...`) become
    /// pseudonymous ids (see [`crate::pseudonym`]); without it a file holding one is refused.
    pub pseudonymizer: Option<Pseudonymizer>,
    /// Set off what lab results and sentinel reports trigger ([`crate::triggers`]), in the
    /// import's batch; `None`: nothing is triggered (the CLI always gives the profile's).
    pub triggers: Option<crate::triggers::Triggers>,
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
    /// The arrivals imported (an arrivals file), as stored, for the closed loop to propose
    /// their measures.
    #[serde(skip)]
    pub arrivals: Vec<Arrival>,
    /// The lab tests imported (a lab tests file), as stored, for the closed loop.
    #[serde(skip)]
    pub lab_tests: Vec<LabTest>,
    /// The ids of the cases imported as excluded (a cases file), for the closed loop.
    #[serde(skip)]
    pub excluded_cases: Vec<String>,
    /// The cases imported as suspected, confirmed or asymptomatic (a cases file), for the
    /// closed loop: each is isolated.
    #[serde(skip)]
    pub cases: Vec<Case>,
    /// The sentinel records imported (a sentinel file), for the triggers.
    #[serde(skip)]
    pub sentinel: Vec<SentinelRecord>,
    /// What the records triggered: suspected cases opened, alerts raised.
    pub triggered: crate::triggers::TriggerReport,
}

/// Records per store call on the generic path.
const CHUNK: usize = 2_000;

/// Writes rejected records as CSV: `line,code,field,message,record`.
pub(crate) struct Rejects {
    path: PathBuf,
    /// Leave the record out (personal data: identifiers).
    withhold_records: bool,
    writer: Option<csv::Writer<BufWriter<File>>>,
    pub(crate) count: u64,
}

impl Rejects {
    fn new(path: PathBuf, withhold_records: bool) -> Self {
        Rejects { path, withhold_records, writer: None, count: 0 }
    }

    pub(crate) fn add(&mut self, error: &FormatError, raw: &str) -> Result<(), AppError> {
        if self.writer.is_none() {
            let f = File::create(&self.path).map_err(|e| AppError::io(&self.path, e))?;
            let mut w = csv::Writer::from_writer(BufWriter::new(f));
            w.write_record(["line", "code", "field", "message", "record"]).map_err(|e| self.csv_err(e))?;
            self.writer = Some(w);
        }
        let field = error.location.field.clone().or_else(|| error.location.json_path.clone()).unwrap_or_default();
        let line = error.location.line.map(|l| l.to_string()).unwrap_or_default();
        // Identifiers never reach a rejects file: the identifiers kind is withheld whole, and
        // person references elsewhere are scrubbed from the record and the message.
        let raw = if self.withhold_records {
            "(withheld: personal data; see the line in the file)".to_string()
        } else {
            pseudonym::scrub(raw)
        };
        let message = pseudonym::scrub(&error.message);
        let w = self.writer.as_mut().expect("opened above");
        let res = w.write_record([line.as_str(), error.code.as_str(), field.as_str(), message.as_str(), raw.as_str()]);
        res.map_err(|e| AppError::Io { path: self.path.display().to_string(), message: e.to_string() })?;
        self.count += 1;
        Ok(())
    }

    fn csv_err(&self, e: csv::Error) -> AppError {
        AppError::Io { path: self.path.display().to_string(), message: e.to_string() }
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

/// One file's import in progress: what it reads, where rejects and counts go.
pub(crate) struct Run<'a> {
    pub(crate) name: String,
    pub(crate) format: Format,
    pub(crate) opts: &'a ImportOptions,
    pub(crate) rejects: Rejects,
    pub(crate) report: ImportReport,
    pub(crate) progress: &'a mut dyn Progress,
    /// Person references met so far, and the identifiers to record.
    pub(crate) pseudo: Pseudonymise,
}

impl Run<'_> {
    /// Handles one unreadable record: reject it, or fail the whole import.
    pub(crate) fn reject_or_fail(&mut self, e: RecordError) -> Result<(), AppError> {
        if self.opts.skip_invalid && !e.fatal { self.rejects.add(&e.error, &e.raw) } else { Err(e.error.into()) }
    }

    /// Where a field of the record on `line` is (line 0: the GeoJSON feature at `path`).
    fn location(&self, line: u64, path: &str, field: &str) -> Location {
        let loc = Location::file(&self.name);
        match (line, self.format) {
            (0, _) => loc.with_json_path(format!("{path}.properties.{field}")),
            (_, Format::Csv) => loc.with_line(line).with_field(field),
            _ => loc.with_line(line).with_json_path(format!("$.{field}")),
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
    progress.start(size, "bytes");
    let mut run = Run {
        report: ImportReport { kind: kind.to_string(), file: name.clone(), ..Default::default() },
        name,
        format,
        opts,
        rejects: Rejects::new(rejects_path, kind == Kind::Identifiers),
        progress,
        pseudo: Pseudonymise::new(opts.pseudonymizer.clone()),
    };
    let after_seq = store.last_seq()?;
    let mut batch = store.begin(at)?;
    if kind == Kind::Visits && format == Format::Csv {
        let (persons, places) = (batch_keys(&*batch, true)?, batch_keys(&*batch, false)?);
        visits::import_csv(&mut *batch, file, size, persons, places, &mut run)?;
    } else {
        let counting = CountingReader { inner: file, count: Arc::new(AtomicU64::new(0)) };
        import_generic(&mut *batch, kind, counting, &mut run)?;
    }
    let Run { mut report, rejects, progress, mut pseudo, .. } = run;
    record_identifiers(&mut *batch, pseudo.take_identifiers())?;
    // The audit record goes in the same batch: no import without its record.
    let actor = opts.actor.clone().unwrap_or_else(|| crate::accounts::Actor {
        name: "system".into(),
        via: "import".into(),
        reason: None,
    });
    // What the records trigger is written with them: all or nothing.
    if let Some(triggers) = &opts.triggers {
        report.triggered = match kind {
            Kind::LabTests => crate::triggers::on_lab_tests(&mut *batch, triggers, &report.lab_tests, &actor, at)?,
            Kind::Sentinel => crate::triggers::on_sentinel(&mut *batch, &report.sentinel, &actor, at)?,
            Kind::Cases => {
                crate::triggers::on_cases(&mut *batch, triggers, &report.cases)?;
                Default::default()
            }
            _ => Default::default(),
        };
    }
    let record = format!("{}: {} records, changes after seq {after_seq}", report.file, report.imported);
    batch.append_audit(&actor.audit(at, "import", kind.as_str(), &record))?;
    report.last_seq = batch.commit()?;
    report.rejected = rejects.count;
    report.rejects_file = rejects.finish()?;
    report.seconds = started.elapsed().as_secs_f64();
    progress.finish(&format!("{} {} imported", report.imported, kind));
    Ok(report)
}

/// Writes the identifiers that person references carried, for the persons that exist (a
/// reference on a rejected row may name nobody).
pub(crate) fn record_identifiers(batch: &mut dyn Batch, identifiers: Vec<Identifier>) -> Result<(), AppError> {
    if identifiers.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = identifiers.iter().map(|i| i.person_id.as_str()).collect();
    let known = batch.lookup_persons(&ids)?;
    let rows: Vec<Identifier> =
        identifiers.iter().zip(known).filter(|(_, k)| k.is_some()).map(|(i, _)| i.clone()).collect();
    batch.put_identifiers(&rows)?;
    Ok(())
}

/// The located error of a person reference that cannot be pseudonymised; a missing key is
/// fatal (every other reference would fail too).
pub(crate) fn pseudonym_error(location: Location, error: PseudonymError, raw: String) -> RecordError {
    let fatal = matches!(error, PseudonymError::NoKey(_));
    let code = if fatal { ErrorCode::InvalidArgument } else { ErrorCode::InputInvalidField };
    RecordError { raw: pseudonym::scrub(&raw), error: FormatError::new(code, location, error.to_string()), fatal }
}

/// The id → key maps for persons or places, read through the batch's store.
fn batch_keys(batch: &dyn Batch, persons: bool) -> Result<idmap::IdMap, AppError> {
    Ok(idmap::IdMap::from_pairs(if persons { batch.person_keys()? } else { batch.place_keys()? }))
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

fn import_generic<R: Read>(
    batch: &mut dyn Batch,
    kind: Kind,
    input: CountingReader<R>,
    run: &mut Run<'_>,
) -> Result<(), AppError> {
    macro_rules! go {
        ($t:ty, $put:ident) => {
            import_records::<$t, R>(batch, input, run, &|b, rows| b.$put(rows))
        };
    }
    match kind {
        Kind::Areas if run.format == Format::GeoJson => {
            let mut input = input;
            let mut text = String::new();
            input
                .read_to_string(&mut text)
                .map_err(|e| AppError::Io { path: run.name.clone(), message: e.to_string() })?;
            let mut areas = Vec::new();
            let mut lines = Vec::new();
            for (i, feature) in geojson_areas::read_area_features(&text, &run.name)?.into_iter().enumerate() {
                match feature {
                    Ok(area) => {
                        areas.push(area);
                        lines.push((0, format!("$.features[{i}]")));
                    }
                    Err(error) => {
                        let raw = format!("$.features[{i}]");
                        run.reject_or_fail(RecordError { raw, error, fatal: false })?
                    }
                }
            }
            put_chunk(batch, areas, lines, run, &|b, rows: &[Area]| b.put_areas(rows))
        }
        Kind::Areas => go!(Area, put_areas),
        Kind::Units => go!(Unit, put_units),
        Kind::Places => go!(Place, put_places),
        Kind::Persons => go!(Person, put_persons),
        Kind::Identifiers => go!(Identifier, put_identifiers),
        Kind::Staff => go!(StaffMember, put_staff),
        Kind::Groups => go!(Group, put_groups),
        Kind::Memberships => go!(Membership, put_memberships),
        Kind::Visits => visits::import_visit_records(batch, input, run),
        Kind::Trips => go!(Trip, put_trips),
        Kind::Passengers => go!(TripPassenger, put_passengers),
        Kind::Pings => go!(LocationPing, put_pings),
        Kind::Cases => {
            let kept = import_keeping(batch, input, run, &|b, rows: &[Case]| b.put_cases(rows), |c| Some(c.clone()))?;
            let (excluded, cases): (Vec<Case>, Vec<Case>) =
                kept.into_iter().partition(|c| c.classification == Classification::Excluded);
            run.report.excluded_cases = excluded.into_iter().map(|c| c.id).collect();
            run.report.cases = cases;
            Ok(())
        }
        Kind::LabTests => {
            let put = |b: &mut dyn Batch, rows: &[LabTest]| b.put_lab_tests(rows);
            run.report.lab_tests = import_keeping(batch, input, run, &put, |t| Some(t.clone()))?;
            Ok(())
        }
        Kind::Arrivals => {
            let put = |b: &mut dyn Batch, rows: &[Arrival]| b.put_arrivals(rows);
            run.report.arrivals = import_keeping(batch, input, run, &put, |a| Some(a.clone()))?;
            Ok(())
        }
        Kind::GoodsBatches => go!(GoodsBatch, put_goods_batches),
        Kind::GoodsHops => go!(GoodsHop, put_goods_hops),
        Kind::Sentinel => {
            let put = |b: &mut dyn Batch, rows: &[SentinelRecord]| b.put_sentinel(rows);
            run.report.sentinel = import_keeping(batch, input, run, &put, |r| Some(r.clone()))?;
            Ok(())
        }
    }
}

type PutFn<'f, T> = dyn Fn(&mut dyn Batch, &[T]) -> Result<(), StoreError> + 'f;

/// Imports records as `put` stores them, and keeps what `keep` takes of each stored record
/// (for the closed loop to act on once the import has committed).
fn import_keeping<T: DeserializeOwned + serde::Serialize + PersonRefs, R: Read, K>(
    batch: &mut dyn Batch,
    input: CountingReader<R>,
    run: &mut Run<'_>,
    put: &PutFn<'_, T>,
    keep: impl Fn(&T) -> Option<K>,
) -> Result<Vec<K>, AppError> {
    let kept = std::cell::RefCell::new(Vec::new());
    import_records::<T, R>(batch, input, run, &|b, rows| {
        put(b, rows)?;
        kept.borrow_mut().extend(rows.iter().filter_map(&keep));
        Ok(())
    })?;
    Ok(kept.into_inner())
}

fn import_records<T: DeserializeOwned + serde::Serialize + PersonRefs, R: Read>(
    batch: &mut dyn Batch,
    input: CountingReader<R>,
    run: &mut Run<'_>,
    put: &PutFn<'_, T>,
) -> Result<(), AppError> {
    let read = input.count.clone();
    let mut reader = RecordReader::<T, _>::new(input, run.format, run.name.clone())?;
    let mut rows = Vec::with_capacity(CHUNK);
    let mut lines = Vec::with_capacity(CHUNK);
    let mut n = 0u64;
    while let Some(next) = reader.next_record() {
        match next {
            Ok((line, mut t)) => match run.pseudo.apply(&mut t) {
                Ok(()) => {
                    rows.push(t);
                    lines.push((line, String::new()));
                }
                Err((field, e)) => {
                    let raw = serde_json::to_string(&t).unwrap_or_default();
                    run.reject_or_fail(pseudonym_error(run.location(line, "", field), e, raw))?
                }
            },
            Err(e) => run.reject_or_fail(e)?,
        }
        if rows.len() == CHUNK {
            put_chunk(batch, std::mem::take(&mut rows), std::mem::take(&mut lines), run, put)?;
        }
        n += 1;
        if n.is_multiple_of(4096) {
            run.progress.set(read.load(Ordering::Relaxed));
        }
    }
    put_chunk(batch, rows, lines, run, put)
}

/// Writes a chunk; a row the store refuses is rejected (or fails the import) and the rest of
/// the chunk is written again without it.
fn put_chunk<T: serde::Serialize>(
    batch: &mut dyn Batch,
    mut rows: Vec<T>,
    mut lines: Vec<(u64, String)>,
    run: &mut Run<'_>,
    put: &PutFn<'_, T>,
) -> Result<(), AppError> {
    while !rows.is_empty() {
        match put(batch, &rows) {
            Ok(()) => {
                run.report.imported += rows.len() as u64;
                return Ok(());
            }
            Err(e) => {
                let (index, field) = match &e {
                    StoreError::UnknownReference { index, field, .. } | StoreError::Invalid { index, field, .. } => {
                        (*index, *field)
                    }
                    _ => return Err(e.into()),
                };
                let (line, path) = &lines[index];
                let err = FormatError::new(e.code(), run.location(*line, path, field), e.to_string());
                if !run.opts.skip_invalid {
                    return Err(err.into());
                }
                let raw = serde_json::to_string(&rows[index]).unwrap_or_default();
                run.rejects.add(&err, &raw)?;
                rows.remove(index);
                lines.remove(index);
            }
        }
    }
    Ok(())
}
