//! Stable error codes and input locations.
//!
//! Every error a user or client can see carries an [`ErrorCode`]: a stable dotted string that
//! scripts can match on, documented in ARCHITECTURE.md's error table. Errors about input also
//! carry a [`Location`] (file, line, field or JSON path) so the message names what to fix.

use std::fmt;

use serde::Serialize;

/// The stable codes. The HTTP status of each is decided by the server crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ErrorCode {
    /// A CSV or JSON Lines record could not be read (syntax, wrong column count, bad UTF-8).
    #[serde(rename = "input.malformed")]
    InputMalformed,
    /// A field has a value of the wrong type or outside its vocabulary.
    #[serde(rename = "input.invalid_field")]
    InputInvalidField,
    /// A required field or column is absent.
    #[serde(rename = "input.missing_field")]
    InputMissingField,
    /// A field or column that the format does not know.
    #[serde(rename = "input.unknown_field")]
    InputUnknownField,
    /// A record names a person, place, area... that is not registered.
    #[serde(rename = "input.unknown_reference")]
    InputUnknownReference,
    /// A record breaks a rule across fields (t_out before t_in, a cycle in area parents...).
    #[serde(rename = "input.inconsistent")]
    InputInconsistent,
    /// A request body or batch is larger than allowed.
    #[serde(rename = "input.too_large")]
    InputTooLarge,
    /// The file kind or format is not one chainbreak imports.
    #[serde(rename = "input.unsupported")]
    InputUnsupported,
    /// A policy profile failed validation.
    #[serde(rename = "profile.invalid")]
    ProfileInvalid,
    /// No built-in profile of that name and no file at that path.
    #[serde(rename = "profile.not_found")]
    ProfileNotFound,
    /// The store has not been initialised (`chainbreak init`).
    #[serde(rename = "store.not_initialized")]
    StoreNotInitialized,
    /// The store was written by a newer chainbreak.
    #[serde(rename = "store.version")]
    StoreVersion,
    /// The store exists already (init on an existing store).
    #[serde(rename = "store.exists")]
    StoreExists,
    /// A command-line argument or request parameter is not acceptable (a time zone...).
    #[serde(rename = "invalid_argument")]
    InvalidArgument,
    /// No valid credentials (token, session or password) came with the request.
    #[serde(rename = "unauthenticated")]
    Unauthenticated,
    /// Signed in, but the user's role may not do this.
    #[serde(rename = "forbidden")]
    Forbidden,
    /// The record or route asked for does not exist.
    #[serde(rename = "not_found")]
    NotFound,
    /// The route exists but does not serve that method.
    #[serde(rename = "method_not_allowed")]
    MethodNotAllowed,
    /// A file could not be opened, read or written.
    #[serde(rename = "io")]
    Io,
    /// Something went wrong inside chainbreak; a bug or a storage failure.
    #[serde(rename = "internal")]
    Internal,
}

impl ErrorCode {
    /// Every code, for the documentation table and its test.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InputMalformed,
        ErrorCode::InputInvalidField,
        ErrorCode::InputMissingField,
        ErrorCode::InputUnknownField,
        ErrorCode::InputUnknownReference,
        ErrorCode::InputInconsistent,
        ErrorCode::InputTooLarge,
        ErrorCode::InputUnsupported,
        ErrorCode::ProfileInvalid,
        ErrorCode::ProfileNotFound,
        ErrorCode::StoreNotInitialized,
        ErrorCode::StoreVersion,
        ErrorCode::StoreExists,
        ErrorCode::InvalidArgument,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Io,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InputMalformed => "input.malformed",
            ErrorCode::InputInvalidField => "input.invalid_field",
            ErrorCode::InputMissingField => "input.missing_field",
            ErrorCode::InputUnknownField => "input.unknown_field",
            ErrorCode::InputUnknownReference => "input.unknown_reference",
            ErrorCode::InputInconsistent => "input.inconsistent",
            ErrorCode::InputTooLarge => "input.too_large",
            ErrorCode::InputUnsupported => "input.unsupported",
            ErrorCode::ProfileInvalid => "profile.invalid",
            ErrorCode::ProfileNotFound => "profile.not_found",
            ErrorCode::StoreNotInitialized => "store.not_initialized",
            ErrorCode::StoreVersion => "store.version",
            ErrorCode::StoreExists => "store.exists",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Io => "io",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in the input an error is: any of file, line (1-based, the header being line 1 of a
/// CSV file), field (column name) and JSON path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
}

impl Location {
    pub fn file(file: impl Into<String>) -> Self {
        Location { file: Some(file.into()), ..Default::default() }
    }
    pub fn with_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn with_json_path(mut self, path: impl Into<String>) -> Self {
        self.json_path = Some(path.into());
        self
    }
    pub fn is_empty(&self) -> bool {
        self.file.is_none() && self.line.is_none() && self.field.is_none() && self.json_path.is_none()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            sep = ":";
        }
        if let Some(line) = self.line {
            write!(f, "{sep}{}line {line}", if sep.is_empty() { "" } else { " " })?;
            sep = ",";
        }
        if let Some(field) = &self.field {
            write!(f, "{sep}{}field `{field}`", if sep.is_empty() { "" } else { " " })?;
            sep = ",";
        }
        if let Some(path) = &self.json_path {
            write!(f, "{sep}{}at {path}", if sep.is_empty() { "" } else { " " })?;
        }
        Ok(())
    }
}

/// A value outside a closed vocabulary.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown value `{value}`; expected one of: {expected}")]
pub struct UnknownValue {
    pub value: String,
    pub expected: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_serialize_as_their_string() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()));
            assert_eq!(serde_json::to_string(c).unwrap(), format!("\"{}\"", c.as_str()));
        }
    }

    #[test]
    fn location_reads_naturally() {
        let l = Location::file("visits.csv").with_line(12).with_field("t_in");
        assert_eq!(l.to_string(), "visits.csv: line 12, field `t_in`");
        assert_eq!(Location::default().with_json_path("$[3].t_in").to_string(), "at $[3].t_in");
    }
}
