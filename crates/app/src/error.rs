//! Application errors, each with a stable code (see ARCHITECTURE.md).

use chainbreak_core::profile::ProfileError;
use chainbreak_core::{ErrorCode, Location};
use chainbreak_formats::FormatError;
use chainbreak_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input, located.
    #[error(transparent)]
    Input(#[from] FormatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("{argument}: {message}")]
    InvalidArgument { argument: &'static str, message: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// The user's role or jurisdiction does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// No such record (or none the user may see: outside a jurisdiction reads as absent).
    #[error("{0}")]
    NotFound(String),
}

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Input(e) => e.code,
            AppError::Store(e) => e.code(),
            AppError::Profile(e) => e.code(),
            AppError::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            AppError::Io { .. } => ErrorCode::Io,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
        }
    }

    /// Where in the input the error is, when it is about input.
    pub fn location(&self) -> Option<&Location> {
        match self {
            AppError::Input(e) => Some(&e.location),
            _ => None,
        }
    }

    pub fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        AppError::Io { path: path.display().to_string(), message: e.to_string() }
    }
}
