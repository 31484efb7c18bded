//! The visits fast path.
//!
//! One thread parses the CSV and maps string ids to keys through in-memory maps
//! ([`IdMap`]); the calling thread writes chunks of keyed visits into the store batch.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use chainbreak_core::model::VisitSource;
use chainbreak_core::model::{Identifier, Visit};
use chainbreak_core::{ErrorCode, Location};
use chainbreak_formats::visits::{RawVisit, VisitReader};
use chainbreak_formats::{FormatError, RecordReader};
use chainbreak_store::{Batch, Key, KeyedVisit};

use super::idmap::{IdMap, Packed};
use super::{CountingReader, Run, pseudonym_error, record_identifiers};
use crate::AppError;
use crate::pseudonym::Pseudonymise;

/// Rows per chunk handed from the parser to the writer.
const CHUNK_ROWS: usize = 64 * 1024;

/// Rows parsed before their ids are resolved together (see [`idmap`](super::idmap)).
const BLOCK_ROWS: usize = 1024;

/// A parsed, keyed chunk.
struct Chunk {
    rows: Vec<KeyedVisit>,
    /// Ids to register by id alone, with the keys the parser gave them (consecutive).
    new_persons: Vec<(String, Key)>,
    new_places: Vec<(String, Key)>,
    rejects: Vec<(FormatError, String)>,
    /// Identifiers carried by person references, first met in this chunk.
    identifiers: Vec<Identifier>,
    /// Bytes of input consumed so far.
    position: u64,
}

impl Chunk {
    fn new() -> Self {
        Chunk {
            rows: Vec::with_capacity(CHUNK_ROWS),
            new_persons: Vec::new(),
            new_places: Vec::new(),
            rejects: Vec::new(),
            identifiers: Vec::new(),
            position: 0,
        }
    }
}

/// An id held by a block: packed inline, or (rarely) an index into the block's long ids.
#[derive(Clone, Copy)]
enum BlockId {
    Packed(Packed),
    Long(usize),
}

/// A parsed row waiting for its ids to be resolved.
struct Pending {
    line: u64,
    person: BlockId,
    place: BlockId,
    t_in: i64,
    t_out: Option<i64>,
    source: VisitSource,
}

/// A row of a block: parsed, or refused by the reader (kept in place so that errors are
/// reported in line order).
enum Entry {
    Row(Pending),
    Bad(Box<(FormatError, String)>),
}

/// Rows parsed together, their ids resolved in one tight loop.
#[derive(Default)]
struct Block {
    rows: Vec<Entry>,
    long: Vec<Box<[u8]>>,
}

impl Block {
    fn id(&mut self, bytes: &[u8]) -> BlockId {
        match Packed::new(bytes) {
            Some(p) => BlockId::Packed(p),
            None => {
                self.long.push(bytes.into());
                BlockId::Long(self.long.len() - 1)
            }
        }
    }

    fn push(&mut self, v: &RawVisit<'_>) {
        let person = self.id(v.person_id);
        let place = self.id(v.place_id);
        self.rows.push(Entry::Row(Pending {
            line: v.line,
            person,
            place,
            t_in: v.t_in,
            t_out: v.t_out,
            source: v.source,
        }));
    }

    fn push_bad(&mut self, error: FormatError, raw: String) {
        self.rows.push(Entry::Bad(Box::new((error, raw))));
    }

    fn bytes(&self, id: BlockId) -> Vec<u8> {
        match id {
            BlockId::Packed(p) => p.bytes(),
            BlockId::Long(i) => self.long[i].to_vec(),
        }
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.long.clear();
    }
}

/// Resolves ids to keys, registering unknown ones when asked.
struct Resolver {
    persons: IdMap,
    places: IdMap,
    next_person: Key,
    next_place: Key,
    register_unknown: bool,
}

impl Resolver {
    fn new(persons: IdMap, places: IdMap, register_unknown: bool) -> Self {
        let next_person = persons.max_key() + 1;
        let next_place = places.max_key() + 1;
        Resolver { persons, places, next_person, next_place, register_unknown }
    }

    /// Resolves every row of a block into `chunk`, or into its rejects in line order.
    fn resolve_block(&mut self, block: &Block, file: &str, chunk: &mut Chunk) {
        for entry in &block.rows {
            let row = match entry {
                Entry::Row(row) => row,
                Entry::Bad(bad) => {
                    chunk.rejects.push((bad.0.clone(), bad.1.clone()));
                    continue;
                }
            };
            let person = match row.person {
                BlockId::Packed(p) => self.persons.get_packed(p),
                BlockId::Long(i) => self.persons.get(&block.long[i]),
            };
            let place = match row.place {
                BlockId::Packed(p) => self.places.get_packed(p),
                BlockId::Long(i) => self.places.get(&block.long[i]),
            };
            let keys = match (person, place) {
                (Some(p), Some(l)) => Ok((p, l)),
                _ => self.slow(person, place, &block.bytes(row.person), &block.bytes(row.place), row.line, file, chunk),
            };
            match keys {
                Ok((person, place)) => {
                    chunk.rows.push(KeyedVisit { person, place, t_in: row.t_in, t_out: row.t_out, source: row.source })
                }
                Err(e) => {
                    let raw = raw_text(&block.bytes(row.person), &block.bytes(row.place), row.t_in, row.t_out);
                    chunk.rejects.push((e, raw));
                }
            }
        }
    }

    /// A row with an unknown id: register it, or report it.
    #[allow(clippy::too_many_arguments)]
    fn slow(
        &mut self,
        person: Option<Key>,
        place: Option<Key>,
        person_id: &[u8],
        place_id: &[u8],
        line: u64,
        file: &str,
        chunk: &mut Chunk,
    ) -> Result<(Key, Key), FormatError> {
        // Registered earlier in this import?
        let person = match person.or_else(|| self.persons.get(person_id)) {
            Some(k) => k,
            None => self.unknown(person_id, true, line, file, chunk)?,
        };
        let place = match place.or_else(|| self.places.get(place_id)) {
            Some(k) => k,
            None => self.unknown(place_id, false, line, file, chunk)?,
        };
        Ok((person, place))
    }

    fn resolve(&mut self, v: &RawVisit<'_>, file: &str, chunk: &mut Chunk) -> Result<KeyedVisit, FormatError> {
        let (person, place) = self.slow(None, None, v.person_id, v.place_id, v.line, file, chunk)?;
        Ok(KeyedVisit { person, place, t_in: v.t_in, t_out: v.t_out, source: v.source })
    }

    fn unknown(
        &mut self,
        id: &[u8],
        person: bool,
        line: u64,
        file: &str,
        chunk: &mut Chunk,
    ) -> Result<Key, FormatError> {
        let (field, what) = if person { ("person_id", "person") } else { ("place_id", "place") };
        let text = String::from_utf8_lossy(id).into_owned();
        if !self.register_unknown {
            return Err(FormatError::new(
                ErrorCode::InputUnknownReference,
                Location::file(file).with_line(line).with_field(field),
                format!("{what} `{text}` is not registered; import {what}s first, or give --register-unknown"),
            ));
        }
        let (map, next, list) = if person {
            (&mut self.persons, &mut self.next_person, &mut chunk.new_persons)
        } else {
            (&mut self.places, &mut self.next_place, &mut chunk.new_places)
        };
        let key = *next;
        *next += 1;
        map.insert(id, key);
        list.push((text, key));
        Ok(key)
    }
}

fn raw_text(person: &[u8], place: &[u8], t_in: i64, t_out: Option<i64>) -> String {
    format!(
        "{},{},{},{}",
        String::from_utf8_lossy(person),
        String::from_utf8_lossy(place),
        t_in,
        t_out.map(|t| t.to_string()).unwrap_or_default()
    )
}

/// Estimates the rows of a CSV file from its first megabyte.
fn estimate_rows(file: &mut File, size: u64) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    while n < buf.len() {
        let r = file.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    file.seek(SeekFrom::Start(0))?;
    let lines = buf[..n].iter().filter(|b| **b == b'\n').count().max(1) as u64;
    Ok(size.saturating_mul(lines) / n.max(1) as u64)
}

/// The parser thread's loop: read a block, resolve it, send full chunks; stop at the first
/// fatal error.
fn parse_loop(
    mut reader: VisitReader<File>,
    mut resolver: Resolver,
    mut pseudo: Pseudonymise,
    skip_invalid: bool,
    tx: SyncSender<Result<Chunk, AppError>>,
) {
    let file = reader.file().to_string();
    let mut chunk = Chunk::new();
    let mut block = Block::default();
    let started = std::time::Instant::now();
    let mut blocked = std::time::Duration::ZERO;
    loop {
        let mut done = false;
        while block.rows.len() < BLOCK_ROWS {
            match reader.next() {
                None => {
                    done = true;
                    break;
                }
                // Person references are rare and contain `:`; plain ids take no detour.
                Some(Ok(v)) if v.person_id.contains(&b':') => {
                    let text = String::from_utf8_lossy(v.person_id);
                    match pseudo.map(&text) {
                        Ok(None) => block.push(&v),
                        Ok(Some(id)) => block.push(&RawVisit { person_id: id.as_bytes(), ..v }),
                        Err(e) => {
                            let location = Location::file(&file).with_line(v.line).with_field("person_id");
                            let raw = raw_text(v.person_id, v.place_id, v.t_in, v.t_out);
                            let e = pseudonym_error(location, e, raw);
                            if e.fatal {
                                let _ = tx.send(Err(e.error.into()));
                                return;
                            }
                            block.push_bad(e.error, e.raw);
                            if !skip_invalid {
                                break;
                            }
                        }
                    }
                }
                Some(Ok(v)) => block.push(&v),
                Some(Err(e)) if !e.fatal => {
                    block.push_bad(e.error, e.raw);
                    if !skip_invalid {
                        break; // the rows before it may hold an earlier error
                    }
                }
                Some(Err(e)) => {
                    let _ = tx.send(Err(e.error.into()));
                    return;
                }
            }
        }
        resolver.resolve_block(&block, &file, &mut chunk);
        block.clear();
        if !skip_invalid && let Some((e, _)) = chunk.rejects.first() {
            let _ = tx.send(Err(e.clone().into()));
            return;
        }
        if done || chunk.rows.len() >= CHUNK_ROWS || chunk.rejects.len() >= CHUNK_ROWS {
            chunk.position = reader.position_bytes();
            chunk.identifiers = pseudo.take_identifiers();
            let waiting = std::time::Instant::now();
            if tx.send(Ok(std::mem::replace(&mut chunk, Chunk::new()))).is_err() {
                return; // the writer gave up
            }
            blocked += waiting.elapsed();
        }
        if done {
            tracing::debug!(
                seconds = started.elapsed().as_secs_f64(),
                waiting_for_writer = blocked.as_secs_f64(),
                "visit parser finished"
            );
            return;
        }
    }
}

/// Writes one chunk into the batch.
fn write_chunk(batch: &mut dyn Batch, chunk: Chunk, run: &mut Run<'_>) -> Result<(), AppError> {
    register(batch, &chunk.new_persons, true)?;
    register(batch, &chunk.new_places, false)?;
    run.report.registered_persons += chunk.new_persons.len() as u64;
    run.report.registered_places += chunk.new_places.len() as u64;
    record_identifiers(batch, chunk.identifiers)?;
    batch.insert_visits(&chunk.rows)?;
    run.report.imported += chunk.rows.len() as u64;
    for (e, raw) in &chunk.rejects {
        run.rejects.add(e, raw)?;
    }
    Ok(())
}

fn register(batch: &mut dyn Batch, new: &[(String, Key)], persons: bool) -> Result<(), AppError> {
    if new.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = new.iter().map(|(id, _)| id.as_str()).collect();
    let keys = if persons { batch.register_persons(&ids)? } else { batch.register_places(&ids)? };
    for ((id, expected), got) in new.iter().zip(keys) {
        if *expected != got {
            return Err(chainbreak_store::StoreError::Backend(format!(
                "registering `{id}` gave key {got}, expected {expected}: another writer changed the store"
            ))
            .into());
        }
    }
    Ok(())
}

pub(crate) fn import_csv(
    batch: &mut dyn Batch,
    mut file: File,
    size: u64,
    persons: IdMap,
    places: IdMap,
    run: &mut Run<'_>,
) -> Result<(), AppError> {
    let estimate =
        estimate_rows(&mut file, size).map_err(|e| AppError::Io { path: run.name.clone(), message: e.to_string() })?;
    batch.expect_visits(estimate)?;
    let reader = VisitReader::new(file, run.name.clone())?;
    let resolver = Resolver::new(persons, places, run.opts.register_unknown);
    let skip = run.opts.skip_invalid;
    let pseudo = Pseudonymise::new(run.opts.pseudonymizer.clone());
    std::thread::scope(|s| {
        let (tx, rx): (SyncSender<Result<Chunk, AppError>>, Receiver<_>) = sync_channel(6);
        let parser = s.spawn(move || parse_loop(reader, resolver, pseudo, skip, tx));
        let result = (|| {
            for msg in rx.iter() {
                let chunk = msg?;
                let position = chunk.position;
                write_chunk(batch, chunk, run)?;
                run.progress.set(position);
            }
            Ok(())
        })();
        drop(rx);
        parser.join().expect("the visit parser does not panic");
        result
    })
}

/// Visits in JSON Lines: the generic reader, the same id mapping.
pub(crate) fn import_visit_records<R: Read>(
    batch: &mut dyn Batch,
    input: CountingReader<R>,
    run: &mut Run<'_>,
) -> Result<(), AppError> {
    let mut resolver = Resolver::new(
        IdMap::from_pairs(batch.person_keys()?),
        IdMap::from_pairs(batch.place_keys()?),
        run.opts.register_unknown,
    );
    let read = input.count.clone();
    let mut reader = RecordReader::<Visit, _>::new(input, run.format, run.name.clone())?;
    let mut chunk = Chunk::new();
    while let Some(next) = reader.next_record() {
        match next {
            Ok((line, mut v)) => {
                if let Err((field, e)) = run.pseudo.apply(&mut v) {
                    let location = Location::file(&run.name).with_line(line).with_json_path(format!("$.{field}"));
                    let raw = serde_json::to_string(&v).unwrap_or_default();
                    run.reject_or_fail(pseudonym_error(location, e, raw))?;
                    continue;
                }
                let raw = RawVisit {
                    line,
                    person_id: v.person_id.as_bytes(),
                    place_id: v.place_id.as_bytes(),
                    t_in: v.t_in.as_second(),
                    t_out: v.t_out.map(|t| t.as_second()),
                    source: v.source,
                };
                let resolved = if raw.t_out.is_some_and(|t_out| t_out < raw.t_in) {
                    Err(FormatError::new(
                        ErrorCode::InputInconsistent,
                        Location::file(&run.name).with_line(line).with_field("t_out"),
                        format!("t_out {} is before t_in {}", v.t_out.expect("some"), v.t_in),
                    ))
                } else {
                    resolver.resolve(&raw, &run.name, &mut chunk)
                };
                match resolved.map_err(as_json_path) {
                    Ok(k) => chunk.rows.push(k),
                    Err(e) if run.opts.skip_invalid => {
                        run.rejects.add(&e, &serde_json::to_string(&v).unwrap_or_default())?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => run.reject_or_fail(e)?,
        }
        if chunk.rows.len() >= CHUNK_ROWS {
            chunk.identifiers = run.pseudo.take_identifiers();
            write_chunk(batch, std::mem::replace(&mut chunk, Chunk::new()), run)?;
            run.progress.set(read.load(std::sync::atomic::Ordering::Relaxed));
        }
    }
    chunk.identifiers = run.pseudo.take_identifiers();
    write_chunk(batch, chunk, run)
}

/// In JSON Lines a field is named by its JSON path.
fn as_json_path(mut e: FormatError) -> FormatError {
    if let Some(field) = e.location.field.take() {
        e.location.json_path = Some(format!("$.{field}"));
    }
    e
}
