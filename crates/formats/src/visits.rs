//! The fast path for the one file that is large: venue check-ins in CSV.
//!
//! A city of a million people makes ~54 million check-ins in 14 days. [`VisitReader`] reads
//! them without allocating per row: each row is handed out as a [`RawVisit`] that borrows the
//! ids as bytes, with instants already parsed. Columns may come in any order; `t_out` and
//! `source` are optional columns, and an empty `t_out` means the person did not check out.

use std::io::Read;

use chainbreak_core::model::VisitSource;
use chainbreak_core::time::parse_instant;
use chainbreak_core::{ErrorCode, Location};

use crate::reader::{FormatError, RecordError};

/// One visit row, borrowing its ids from the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawVisit<'a> {
    pub line: u64,
    pub person_id: &'a [u8],
    pub place_id: &'a [u8],
    /// Unix seconds.
    pub t_in: i64,
    /// Unix seconds; `None` when the person did not check out.
    pub t_out: Option<i64>,
    pub source: VisitSource,
}

/// Reads the visits CSV row by row.
pub struct VisitReader<R: Read> {
    file: String,
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    col_person: usize,
    col_place: usize,
    col_t_in: usize,
    col_t_out: Option<usize>,
    col_source: Option<usize>,
    line: u64,
}

const KNOWN: &[&str] = &["person_id", "place_id", "t_in", "t_out", "source"];

impl<R: Read> VisitReader<R> {
    /// Reads and checks the header.
    pub fn new(input: R, file: impl Into<String>) -> Result<Self, FormatError> {
        let file = file.into();
        let mut reader = csv::ReaderBuilder::new().has_headers(true).buffer_capacity(1 << 20).from_reader(input);
        let headers = reader.byte_headers().map_err(|e| header_error(&file, e))?.clone();
        let names: Vec<String> = headers.iter().map(|h| String::from_utf8_lossy(h).trim().to_string()).collect();
        if names.is_empty() {
            // An empty file: no header, no visits.
            return Ok(VisitReader {
                col_person: 0,
                col_place: 0,
                col_t_in: 0,
                col_t_out: None,
                col_source: None,
                file,
                reader,
                record: csv::ByteRecord::new(),
                line: 1,
            });
        }
        for n in &names {
            if !KNOWN.contains(&n.as_str()) {
                return Err(FormatError::new(
                    ErrorCode::InputUnknownField,
                    Location::file(&file).with_line(1).with_field(n.clone()),
                    format!("unknown column `{n}`; a visits file has columns {}", KNOWN.join(",")),
                ));
            }
        }
        let find = |name: &str| names.iter().position(|n| n == name);
        let required = |name: &str| {
            find(name).ok_or_else(|| {
                FormatError::new(
                    ErrorCode::InputMissingField,
                    Location::file(&file).with_line(1).with_field(name),
                    format!("missing column `{name}`"),
                )
            })
        };
        Ok(VisitReader {
            col_person: required("person_id")?,
            col_place: required("place_id")?,
            col_t_in: required("t_in")?,
            col_t_out: find("t_out"),
            col_source: find("source"),
            file,
            reader,
            record: csv::ByteRecord::new(),
            line: 1,
        })
    }

    /// The file's name as used in errors.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Bytes consumed so far (for progress reporting).
    pub fn position_bytes(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The next row, `None` at the end. After a non-fatal error, reading may go on.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<RawVisit<'_>, RecordError>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                self.line = self.record.position().map(|p| p.line()).unwrap_or(self.line + 1);
                Some(self.parse_current())
            }
            Err(e) => {
                let fatal = matches!(e.kind(), csv::ErrorKind::Io(_));
                let line = e.position().map(|p| p.line()).unwrap_or(self.line + 1);
                self.line = line;
                let msg = match e.kind() {
                    csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                        format!("record has {len} fields but the header has {expected_len}")
                    }
                    other => format!("{other:?}"),
                };
                let code = if fatal { ErrorCode::Io } else { ErrorCode::InputMalformed };
                Some(Err(RecordError {
                    raw: String::new(),
                    error: FormatError::new(code, Location::file(&self.file).with_line(line), msg),
                    fatal,
                }))
            }
        }
    }

    fn parse_current(&self) -> Result<RawVisit<'_>, RecordError> {
        let r = &self.record;
        let line = self.line;
        let err = |field: &str, msg: String, code: ErrorCode| RecordError {
            raw: String::from_utf8_lossy(r.as_slice()).into_owned(),
            error: FormatError::new(code, Location::file(&self.file).with_line(line).with_field(field), msg),
            fatal: false,
        };
        let id = |col: usize, field: &str| {
            let v = trim(&r[col]);
            if v.is_empty() {
                Err(err(field, format!("empty {field}"), ErrorCode::InputMissingField))
            } else if std::str::from_utf8(v).is_err() {
                Err(err(field, format!("{field} is not valid UTF-8"), ErrorCode::InputMalformed))
            } else {
                Ok(v)
            }
        };
        let person_id = id(self.col_person, "person_id")?;
        let place_id = id(self.col_place, "place_id")?;
        let t_in = instant(&r[self.col_t_in])
            .ok_or_else(|| err("t_in", "empty t_in".into(), ErrorCode::InputMissingField))?
            .map_err(|m| err("t_in", m, ErrorCode::InputInvalidField))?;
        let t_out = match self.col_t_out {
            Some(c) => instant(&r[c]).transpose().map_err(|m| err("t_out", m, ErrorCode::InputInvalidField))?,
            None => None,
        };
        if let Some(t_out) = t_out
            && t_out < t_in
        {
            return Err(err("t_out", format!("t_out {t_out} is before t_in {t_in}"), ErrorCode::InputInconsistent));
        }
        let source = match self.col_source.map(|c| trim(&r[c])) {
            None | Some(b"") => VisitSource::VenueCode,
            Some(s) => {
                let s = std::str::from_utf8(s).unwrap_or("");
                VisitSource::parse(s).ok_or_else(|| {
                    err(
                        "source",
                        format!("unknown value `{s}`; expected one of: {}", VisitSource::expected()),
                        ErrorCode::InputInvalidField,
                    )
                })?
            }
        };
        Ok(RawVisit { line, person_id, place_id, t_in, t_out, source })
    }
}

fn header_error(file: &str, e: csv::Error) -> FormatError {
    FormatError::new(
        ErrorCode::InputMalformed,
        Location::file(file).with_line(1),
        format!("cannot read the header: {e}"),
    )
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Parses integer seconds quickly, RFC 3339 otherwise; `None` for an empty field.
fn instant(b: &[u8]) -> Option<Result<i64, String>> {
    let b = trim(b);
    if b.is_empty() {
        return None;
    }
    if b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
        let mut v: i64 = 0;
        for d in b {
            v = v * 10 + (d - b'0') as i64;
        }
        if let Err(e) = jiff::Timestamp::from_second(v) {
            return Some(Err(format!("{v} is out of range: {e}")));
        }
        return Some(Ok(v));
    }
    let s = match std::str::from_utf8(b) {
        Ok(s) => s,
        Err(_) => return Some(Err("not valid UTF-8".into())),
    };
    Some(parse_instant(s).map(|t| t.as_second()))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (u64, String, String, i64, Option<i64>);

    fn all(text: &str) -> Vec<Result<Row, FormatError>> {
        let mut r = VisitReader::new(text.as_bytes(), "v.csv").unwrap();
        let mut out = Vec::new();
        while let Some(x) = r.next() {
            out.push(
                x.map(|v| {
                    (
                        v.line,
                        String::from_utf8(v.person_id.to_vec()).unwrap(),
                        String::from_utf8(v.place_id.to_vec()).unwrap(),
                        v.t_in,
                        v.t_out,
                    )
                })
                .map_err(|e| e.error),
            );
        }
        out
    }

    #[test]
    fn reads_both_instant_spellings_and_empty_t_out() {
        let rows = all("person_id,place_id,t_in,t_out\nP1,L1,100,200\nP2,L2,1970-01-01T00:01:40Z,\n");
        assert_eq!(rows[0].as_ref().unwrap(), &(2, "P1".into(), "L1".into(), 100, Some(200)));
        assert_eq!(rows[1].as_ref().unwrap(), &(3, "P2".into(), "L2".into(), 100, None));
    }

    #[test]
    fn columns_in_any_order_and_optional() {
        let rows = all("t_in,place_id,person_id\n5,L,P\n");
        assert_eq!(rows[0].as_ref().unwrap(), &(2, "P".into(), "L".into(), 5, None));
    }

    #[test]
    fn errors_name_line_and_field() {
        let rows = all("person_id,place_id,t_in,t_out\nP1,L1,100,50\nP1,,100,\nP1,L1,soon,\nP1,L1\n");
        let e = rows[0].as_ref().unwrap_err();
        assert_eq!(
            (e.code, e.location.to_string()),
            (ErrorCode::InputInconsistent, "v.csv: line 2, field `t_out`".into())
        );
        assert_eq!(rows[1].as_ref().unwrap_err().location.field.as_deref(), Some("place_id"));
        assert_eq!(rows[2].as_ref().unwrap_err().location.to_string(), "v.csv: line 4, field `t_in`");
        assert_eq!(rows[3].as_ref().unwrap_err().code, ErrorCode::InputMalformed);
        assert!(VisitReader::new("person_id,place\n".as_bytes(), "v.csv").is_err());
        let far = all("person_id,place_id,t_in\nP1,L1,999999999999\n");
        assert_eq!(far[0].as_ref().unwrap_err().location.field.as_deref(), Some("t_in"));
        let mut bad_utf8 = b"person_id,place_id,t_in\nP\xff,L1,5\n".to_vec();
        let mut r = VisitReader::new(bad_utf8.as_slice(), "v.csv").unwrap();
        let e = r.next().unwrap().unwrap_err().error;
        assert_eq!((e.code, e.location.field.as_deref()), (ErrorCode::InputMalformed, Some("person_id")));
        bad_utf8.clear();
        assert!(VisitReader::new("person_id,t_in\n".as_bytes(), "v.csv").is_err());
    }
}
