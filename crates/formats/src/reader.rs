//! Reading records of any kind from CSV or JSON Lines, with errors that name the line and field.

use std::io::{BufRead, BufReader, Read};
use std::marker::PhantomData;

use chainbreak_core::{ErrorCode, Location};
use serde::de::DeserializeOwned;

use crate::Format;

/// An error in an input file: a stable code, where, and what.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize)]
#[error("{location}: {message}")]
pub struct FormatError {
    pub code: ErrorCode,
    pub location: Location,
    pub message: String,
}

impl FormatError {
    pub fn new(code: ErrorCode, location: Location, message: impl Into<String>) -> Self {
        FormatError { code, location, message: message.into() }
    }
}

/// The stable code of a serde data error, from its message (serde has no error kinds):
/// missing field, unknown field, or any other invalid value.
pub fn classify(message: &str) -> ErrorCode {
    if message.starts_with("missing field") {
        ErrorCode::InputMissingField
    } else if message.starts_with("unknown field") {
        ErrorCode::InputUnknownField
    } else {
        ErrorCode::InputInvalidField
    }
}

/// Extracts the field name from serde's "missing field `x`" / "unknown field `x`" messages.
pub(crate) fn quoted_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `").or_else(|| message.strip_prefix("unknown field `"))?;
    Some(rest.split('`').next()?.to_string())
}

/// Reads records of type `T` one at a time, each with its line number.
pub struct RecordReader<T, R: Read> {
    file: String,
    inner: Inner<R>,
    _t: PhantomData<T>,
}

enum Inner<R: Read> {
    Csv { reader: csv::Reader<R>, headers: csv::StringRecord, record: csv::StringRecord },
    Json { reader: BufReader<R>, line: u64, buf: Vec<u8> },
}

impl<T: DeserializeOwned, R: Read> RecordReader<T, R> {
    /// A reader over `input`, named `file` in error messages. For CSV the header is read at once.
    pub fn new(input: R, format: Format, file: impl Into<String>) -> Result<Self, FormatError> {
        let file = file.into();
        let inner = match format {
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(input);
                let headers = reader.headers().map_err(|e| csv_error(&file, e))?.clone();
                let headers = csv::StringRecord::from(headers.iter().map(|h| h.trim()).collect::<Vec<_>>());
                Inner::Csv { reader, headers, record: csv::StringRecord::new() }
            }
            Format::JsonLines => Inner::Json { reader: BufReader::new(input), line: 0, buf: Vec::new() },
            Format::GeoJson => {
                return Err(FormatError::new(
                    ErrorCode::InputUnsupported,
                    Location::file(file),
                    "GeoJSON is read by geojson_areas::read_areas",
                ));
            }
        };
        Ok(RecordReader { file, inner, _t: PhantomData })
    }

    /// The CSV header (empty for JSON Lines).
    pub fn headers(&self) -> Vec<String> {
        match &self.inner {
            Inner::Csv { headers, .. } => headers.iter().map(str::to_string).collect(),
            Inner::Json { .. } => Vec::new(),
        }
    }

    /// The next record with its 1-based line number, or `None` at the end.
    ///
    /// An error for one record does not end the stream: the caller may skip it and go on.
    pub fn next_record(&mut self) -> Option<Result<(u64, T), RecordError>> {
        match &mut self.inner {
            Inner::Csv { reader, headers, record } => match reader.read_record(record) {
                Ok(false) => None,
                Ok(true) => {
                    let line = record.position().map(|p| p.line()).unwrap_or(0);
                    Some(record.deserialize::<T>(Some(headers)).map(|t| (line, t)).map_err(|e| RecordError {
                        raw: record.iter().collect::<Vec<_>>().join(","),
                        error: csv_record_error(&self.file, line, headers, record, e),
                        fatal: false,
                    }))
                }
                Err(e) => {
                    let error = csv_error(&self.file, e);
                    let fatal = error.code == ErrorCode::Io;
                    Some(Err(RecordError { raw: String::new(), error, fatal }))
                }
            },
            Inner::Json { reader, line, buf } => loop {
                buf.clear();
                *line += 1;
                match reader.read_until(b'\n', buf) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => {
                        return Some(Err(RecordError {
                            raw: String::new(),
                            error: FormatError::new(
                                ErrorCode::Io,
                                Location::file(&self.file).with_line(*line),
                                format!("cannot read: {e}"),
                            ),
                            fatal: true,
                        }));
                    }
                }
                let Ok(text) = std::str::from_utf8(buf) else {
                    return Some(Err(RecordError {
                        raw: String::from_utf8_lossy(buf).trim().to_string(),
                        error: FormatError::new(
                            ErrorCode::InputMalformed,
                            Location::file(&self.file).with_line(*line),
                            "the line is not valid UTF-8",
                        ),
                        fatal: false,
                    }));
                };
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                let de = &mut serde_json::Deserializer::from_str(text);
                return Some(match serde_path_to_error::deserialize::<_, T>(de) {
                    Ok(t) => Ok((*line, t)),
                    Err(e) => {
                        let path = e.path().to_string();
                        let inner = e.into_inner();
                        let msg = inner.to_string();
                        let code = if inner.is_syntax() || inner.is_eof() {
                            ErrorCode::InputMalformed
                        } else {
                            classify(&msg)
                        };
                        let mut loc = Location::file(&self.file).with_line(*line);
                        let json_path = match (path.as_str(), quoted_field(&msg)) {
                            ("." | "", Some(f)) => format!("$.{f}"),
                            (".", None) | ("", None) => "$".to_string(),
                            (p, _) => format!("${}{p}", if p.starts_with('[') { "" } else { "." }),
                        };
                        loc = loc.with_json_path(json_path);
                        Err(RecordError {
                            raw: text.to_string(),
                            error: FormatError::new(code, loc, msg),
                            fatal: false,
                        })
                    }
                });
            },
        }
    }
}

impl<T: DeserializeOwned, R: Read> Iterator for RecordReader<T, R> {
    type Item = Result<(u64, T), RecordError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

/// One record that could not be read: the error and the raw text (for a rejects file).
#[derive(Debug, Clone)]
pub struct RecordError {
    pub raw: String,
    pub error: FormatError,
    /// Reading cannot go on after this error (the file itself failed).
    pub fatal: bool,
}

fn csv_error(file: &str, e: csv::Error) -> FormatError {
    let line = e.position().map(|p| p.line());
    let mut loc = Location::file(file);
    if let Some(l) = line {
        loc = loc.with_line(l);
    }
    match e.into_kind() {
        csv::ErrorKind::Io(io) => FormatError::new(ErrorCode::Io, loc, format!("cannot read: {io}")),
        csv::ErrorKind::Utf8 { err, .. } => {
            FormatError::new(ErrorCode::InputMalformed, loc, format!("invalid UTF-8 in field {}", err.field() + 1))
        }
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => FormatError::new(
            ErrorCode::InputMalformed,
            loc,
            format!("record has {len} fields but the header has {expected_len}"),
        ),
        other => FormatError::new(ErrorCode::InputMalformed, loc, format!("{other:?}")),
    }
}

fn csv_record_error(
    file: &str,
    line: u64,
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
    e: csv::Error,
) -> FormatError {
    let loc = Location::file(file).with_line(line);
    match e.into_kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let msg = err.kind().to_string();
            let field = err
                .field()
                .and_then(|i| headers.get(i as usize))
                .map(str::to_string)
                .or_else(|| quoted_field(&msg))
                .or_else(|| column_holding_quoted_value(&msg, headers, record));
            let loc = match field {
                Some(f) => loc.with_field(f),
                None => loc,
            };
            FormatError::new(classify(&msg), loc, msg)
        }
        other => FormatError::new(ErrorCode::InputMalformed, loc, format!("{other:?}")),
    }
}

/// serde does not say which field an enum error came from; the message quotes the bad value
/// (`unknown variant `x``), so name the column that holds it.
fn column_holding_quoted_value(msg: &str, headers: &csv::StringRecord, record: &csv::StringRecord) -> Option<String> {
    let value = msg.split('`').nth(1)?;
    let mut holding = record.iter().enumerate().filter(|(_, v)| *v == value);
    match (holding.next(), holding.next()) {
        (Some((i, _)), None) => headers.get(i).map(str::to_string),
        _ => None, // none or several: do not guess
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainbreak_core::model::{Person, Place, PlaceKind, Visit};

    fn read_all<T: DeserializeOwned>(text: &str, format: Format) -> Vec<Result<(u64, T), RecordError>> {
        RecordReader::<T, _>::new(text.as_bytes(), format, "f").unwrap().collect()
    }

    #[test]
    fn csv_records_with_optional_columns() {
        let rows = read_all::<Place>("id,kind,key_place\nL1,mall,true\nL2,pharmacy,false\n", Format::Csv);
        let (line, p) = rows[1].as_ref().unwrap();
        assert_eq!(*line, 3);
        assert_eq!(p.kind, PlaceKind::Pharmacy);
        assert!(p.area.is_none());
    }

    #[test]
    fn csv_error_names_line_and_field() {
        let rows = read_all::<Place>("id,kind\nL1,mall\nL2,spaceport\n", Format::Csv);
        let e = &rows[1].as_ref().unwrap_err().error;
        assert_eq!(e.code, ErrorCode::InputInvalidField);
        assert_eq!(e.location.line, Some(3));
        assert_eq!(e.location.field.as_deref(), Some("kind"));
        assert!(e.message.contains("spaceport"), "{}", e.message);
        let v = read_all::<Visit>("person_id,place_id,t_in,t_out\nP1,L1,100,\nP1,L1,abc,\n", Format::Csv);
        assert!(v[0].is_ok());
        let e = &v[1].as_ref().unwrap_err().error;
        assert_eq!(e.location.to_string(), "f: line 3, field `t_in`");
    }

    #[test]
    fn csv_unknown_and_missing_columns() {
        let rows = read_all::<Person>("id,shoe_size\nP1,42\n", Format::Csv);
        let e = &rows[0].as_ref().unwrap_err().error;
        assert_eq!(e.code, ErrorCode::InputUnknownField);
        assert_eq!(e.location.field.as_deref(), Some("shoe_size"));
        let rows = read_all::<Place>("id\nL1\n", Format::Csv);
        let e = &rows[0].as_ref().unwrap_err().error;
        assert_eq!(e.code, ErrorCode::InputMissingField);
        assert_eq!(e.location.field.as_deref(), Some("kind"));
        let rows = read_all::<Place>("id,kind\nL1,mall,extra\n", Format::Csv);
        assert_eq!(rows[0].as_ref().unwrap_err().error.code, ErrorCode::InputMalformed);
    }

    #[test]
    fn json_lines_errors_carry_a_json_path() {
        let text = "{\"id\":\"L1\",\"kind\":\"mall\"}\n\n{\"id\":\"L2\",\"kind\":\"mall\",\"lat\":\"north\"}\n{\"id\":\"L3\"}\n{oops\n";
        let rows = read_all::<Place>(text, Format::JsonLines);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].as_ref().unwrap().0, 1);
        let e = &rows[1].as_ref().unwrap_err().error;
        assert_eq!((e.location.line, e.location.json_path.as_deref()), (Some(3), Some("$.lat")));
        let e = &rows[2].as_ref().unwrap_err().error;
        assert_eq!((e.code, e.location.json_path.as_deref()), (ErrorCode::InputMissingField, Some("$.kind")));
        assert_eq!(rows[3].as_ref().unwrap_err().error.code, ErrorCode::InputMalformed);
    }
}
