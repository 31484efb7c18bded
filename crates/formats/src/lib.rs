//! The file formats chainbreak imports and exports (documented in FORMATS.md).
//!
//! One implementation serves both sides: the importer reads with [`RecordReader`] (and, for
//! the one file that is large, [`visits::VisitReader`]); the simulator and exports write with
//! [`RecordWriter`]. Every record is a flat struct of `chainbreak_core::model`, spelled the same
//! in CSV (with a header) and in JSON Lines. Areas may also come as a GeoJSON FeatureCollection.
//!
//! Errors name the file, the line and the field (CSV column or JSON path).

// Errors carry their location (file, line, field, JSON path) by value: they are built only on
// the cold path, so their size costs nothing where it matters.
#![allow(clippy::result_large_err)]

pub mod geojson_areas;
pub mod kind;
pub mod reader;
pub mod visits;
pub mod writer;

pub use kind::{Format, Kind};
pub use reader::{FormatError, RecordReader};
pub use writer::RecordWriter;
