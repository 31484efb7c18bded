//! Writing records as CSV (with a header) or JSON Lines: what the simulator and exports use.

use std::io::Write;

use serde::Serialize;

use crate::Format;

/// Writes records of one kind.
pub struct RecordWriter<W: Write> {
    inner: WInner<W>,
}

enum WInner<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Json(W),
}

/// A failure to write.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot write: {0}")]
    Io(#[from] std::io::Error),
    #[error("GeoJSON is written by geojson_areas::write_areas")]
    GeoJson,
    #[error("JSON Lines records are written whole (RecordWriter::write), not as fields")]
    NotCsv,
}

impl<W: Write> RecordWriter<W> {
    pub fn new(out: W, format: Format) -> Result<Self, WriteError> {
        Ok(RecordWriter {
            inner: match format {
                Format::Csv => WInner::Csv(Box::new(csv::WriterBuilder::new().has_headers(true).from_writer(out))),
                Format::JsonLines => WInner::Json(out),
                Format::GeoJson => return Err(WriteError::GeoJson),
            },
        })
    }

    /// A writer that continues a file already begun: CSV without a header row, for chunks
    /// formatted apart (e.g. in parallel) and appended in order after a first chunk written by
    /// [`RecordWriter::new`]. JSON Lines has no header, so this is the same as `new` there.
    pub fn continuation(out: W, format: Format) -> Result<Self, WriteError> {
        Ok(RecordWriter {
            inner: match format {
                Format::Csv => WInner::Csv(Box::new(csv::WriterBuilder::new().has_headers(false).from_writer(out))),
                Format::JsonLines => WInner::Json(out),
                Format::GeoJson => return Err(WriteError::GeoJson),
            },
        })
    }

    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<(), WriteError> {
        match &mut self.inner {
            WInner::Csv(w) => w.serialize(record)?,
            WInner::Json(w) => {
                serde_json::to_writer(&mut *w, record)?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    /// Writes one CSV record from fields already formatted, in the columns' order: the fast path
    /// for writers of many rows (no serde); the csv crate still quotes what needs quoting. A
    /// header row is not written for it (write the column names as the first record). CSV only.
    pub fn write_fields<I, F>(&mut self, fields: I) -> Result<(), WriteError>
    where
        I: IntoIterator<Item = F>,
        F: AsRef<[u8]>,
    {
        match &mut self.inner {
            WInner::Csv(w) => Ok(w.write_record(fields)?),
            WInner::Json(_) => Err(WriteError::NotCsv),
        }
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W, WriteError> {
        match self.inner {
            WInner::Csv(w) => w.into_inner().map_err(|e| WriteError::Io(e.into_error())),
            WInner::Json(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordReader;
    use chainbreak_core::model::{Case, Classification, Visit, VisitSource};

    fn visits() -> Vec<Visit> {
        vec![
            Visit {
                person_id: "P1".into(),
                place_id: "L1".into(),
                t_in: jiff::Timestamp::from_second(1_646_100_000).unwrap(),
                t_out: None,
                source: VisitSource::VenueCode,
            },
            Visit {
                person_id: "P,2".into(),
                place_id: "L\"2".into(),
                t_in: jiff::Timestamp::from_second(1_646_100_600).unwrap(),
                t_out: Some(jiff::Timestamp::from_second(1_646_104_200).unwrap()),
                source: VisitSource::Interview,
            },
        ]
    }

    #[test]
    fn fields_written_are_the_records_serialised() {
        let mut by_serde = RecordWriter::continuation(Vec::new(), Format::Csv).unwrap();
        let mut by_fields = RecordWriter::continuation(Vec::new(), Format::Csv).unwrap();
        for v in visits() {
            by_serde.write(&v).unwrap();
            let t_out = v.t_out.map(|t| t.to_string()).unwrap_or_default();
            let fields = [v.person_id.clone(), v.place_id.clone(), v.t_in.to_string(), t_out, v.source.to_string()];
            by_fields.write_fields(&fields).unwrap();
        }
        assert_eq!(by_fields.finish().unwrap(), by_serde.finish().unwrap(), "quoted alike");
        let mut json = RecordWriter::new(Vec::new(), Format::JsonLines).unwrap();
        assert!(matches!(json.write_fields(["a"]), Err(WriteError::NotCsv)));
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        for format in [Format::Csv, Format::JsonLines] {
            let mut w = RecordWriter::new(Vec::new(), format).unwrap();
            for v in visits() {
                w.write(&v).unwrap();
            }
            let bytes = w.finish().unwrap();
            let back: Vec<Visit> =
                RecordReader::new(bytes.as_slice(), format, "x").unwrap().map(|r| r.unwrap().1).collect();
            assert_eq!(back, visits(), "{format}");
        }
    }

    #[test]
    fn a_continuation_appends_rows_without_a_header() {
        let all = visits();
        let mut whole = RecordWriter::new(Vec::new(), Format::Csv).unwrap();
        for v in &all {
            whole.write(v).unwrap();
        }
        let whole = whole.finish().unwrap();
        let mut first = RecordWriter::new(Vec::new(), Format::Csv).unwrap();
        first.write(&all[0]).unwrap();
        let mut bytes = first.finish().unwrap();
        let mut rest = RecordWriter::continuation(Vec::new(), Format::Csv).unwrap();
        rest.write(&all[1]).unwrap();
        bytes.extend(rest.finish().unwrap());
        assert_eq!(bytes, whole);
    }

    #[test]
    fn cases_round_trip_with_dates() {
        let case = Case {
            id: "C1".into(),
            person_id: "P1".into(),
            classification: Classification::Confirmed,
            onset: Some(jiff::civil::date(2022, 3, 2)),
            sampled_at: None,
            reported_at: "2022-03-03T08:00:00Z".parse().unwrap(),
            imported: false,
            detection: None,
            severity: None,
            outcome: None,
            vaccine_doses: Some(3),
            infector_case_id: None,
            cluster: Some("K1".into()),
        };
        for format in [Format::Csv, Format::JsonLines] {
            let mut w = RecordWriter::new(Vec::new(), format).unwrap();
            w.write(&case).unwrap();
            let bytes = w.finish().unwrap();
            let back: Vec<Case> =
                RecordReader::new(bytes.as_slice(), format, "x").unwrap().map(|r| r.unwrap().1).collect();
            assert_eq!(back, vec![case.clone()]);
        }
    }
}
