//! Error responses: the one place where error codes become HTTP statuses.
//!
//! Every error the API returns has the same JSON shape,
//! `{"error":{"code":"<stable code>","message":"...","location":{...}}}`, where `code` is
//! [`ErrorCode::as_str`] and `location` (absent when the error is not about input) is the
//! [`Location`] of the offending value, plus the column for errors found while parsing JSON.

use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chainbreak_app::AppError;
use chainbreak_core::{ErrorCode, Location};
use serde::Serialize;
use utoipa::ToSchema;

/// The HTTP status of each error code. This is the only place that decides it.
///
/// | code                      | status                     | when                                                   |
/// |---------------------------|----------------------------|--------------------------------------------------------|
/// | `input.malformed`         | 400 Bad Request            | the body is not JSON (syntax, truncated, not UTF-8)    |
/// | `input.invalid_field`     | 422 Unprocessable Content  | a value has the wrong type or is outside its vocabulary|
/// | `input.missing_field`     | 422 Unprocessable Content  | a required field is absent                             |
/// | `input.unknown_field`     | 422 Unprocessable Content  | a field the API does not know                          |
/// | `input.unknown_reference` | 422 Unprocessable Content  | a record names an unregistered person, place...        |
/// | `input.inconsistent`      | 422 Unprocessable Content  | a record breaks a rule across fields (t_out < t_in)    |
/// | `input.too_large`         | 413 Content Too Large      | body over `max_body_bytes`, batch over `max_batch_records` |
/// | `input.unsupported`       | 415 Unsupported Media Type | the body is not `application/json`                     |
/// | `profile.invalid`         | 422 Unprocessable Content  | a policy profile failed validation                     |
/// | `profile.not_found`       | 404 Not Found              | no profile of that name                                |
/// | `store.not_initialized`   | 503 Service Unavailable    | the store has not been initialised                     |
/// | `store.version`           | 503 Service Unavailable    | the store was written by a newer chainbreak            |
/// | `store.exists`            | 409 Conflict               | a store exists already                                 |
/// | `invalid_argument`        | 400 Bad Request            | a parameter is not acceptable                          |
/// | `unauthenticated`         | 401 Unauthorized           | no valid token, session or password (`WWW-Authenticate`)|
/// | `forbidden`               | 403 Forbidden              | signed in, but the role may not do this                |
/// | `not_found`               | 404 Not Found              | no such route or record                                |
/// | `method_not_allowed`      | 405 Method Not Allowed     | the route does not serve that method (`Allow` header)  |
/// | `io`                      | 500 Internal Server Error  | a file could not be read or written                    |
/// | `internal`                | 500 Internal Server Error  | a bug or a storage failure (logged; details withheld)  |
///
/// One response sets its status apart from this table: `GET /readyz` answers 503 whatever the
/// code of the store's failure.
pub fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InputMalformed | ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::InputInvalidField
        | ErrorCode::InputMissingField
        | ErrorCode::InputUnknownField
        | ErrorCode::InputUnknownReference
        | ErrorCode::InputInconsistent
        | ErrorCode::ProfileInvalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InputTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::InputUnsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::ProfileNotFound | ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::StoreNotInitialized | ErrorCode::StoreVersion => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::StoreExists => StatusCode::CONFLICT,
        ErrorCode::Io | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    /// Boxed: errors travel in `Result`s, which should stay small.
    location: Option<Box<ErrorLocation>>,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status: status_for(code), code, message: message.into(), location: None }
    }

    /// An internal failure: logged with its details, answered without them.
    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error; the server log has the details")
    }

    pub(crate) fn with_location(mut self, location: ErrorLocation) -> Self {
        self.location = if location.is_empty() { None } else { Some(Box::new(location)) };
        self
    }

    /// Overrides the status of [`status_for`]; see its documentation for the two cases.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    #[cfg(test)]
    pub(crate) fn code(&self) -> ErrorCode {
        self.code
    }

    #[cfg(test)]
    pub(crate) fn location(&self) -> Option<&ErrorLocation> {
        self.location.as_deref()
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let code = e.code();
        if matches!(code, ErrorCode::Internal | ErrorCode::Io) {
            return ApiError::internal(&e);
        }
        let location = e.location().cloned().map(ErrorLocation::from).unwrap_or_default();
        // The location travels apart from the message, so the message does not repeat it.
        let message = match &e {
            AppError::Input(f) => f.message.clone(),
            other => other.to_string(),
        };
        ApiError::new(code, message).with_location(location)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail { code: self.code.as_str(), message: self.message, location: self.location.map(|l| *l) },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.code == ErrorCode::Unauthenticated {
            // RFC 6750: a 401 names the scheme the client should use.
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "input.unknown_reference",
    "message": "person `P9` is not registered (set register_unknown to register it by id alone)",
    "location": {"json_path": "$.visits[0].person_id"}}}))]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong, and where.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable code to match on.
    #[schema(schema_with = error_code_schema)]
    code: &'static str,
    /// A sentence for people; not stable.
    message: String,
    /// Where in the input the error is (absent when it is not about input).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    location: Option<ErrorLocation>,
}

fn error_code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
        .build()
}

/// Where in the input an error is: the core's location (file, line, field, JSON path), plus
/// the column of a JSON parse error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct ErrorLocation {
    /// The file, for errors about an uploaded file.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub file: Option<String>,
    /// 1-based line (of the request body, for JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub line: Option<u64>,
    /// 1-based column of the request body, for errors found while parsing JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub column: Option<u64>,
    /// The field (or CSV column) name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// JSONPath of the offending value, e.g. `$.visits[3].t_in`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub json_path: Option<String>,
}

impl ErrorLocation {
    pub(crate) fn json_path(path: impl Into<String>) -> Self {
        ErrorLocation { json_path: Some(path.into()), ..Default::default() }
    }

    fn is_empty(&self) -> bool {
        *self == ErrorLocation::default()
    }
}

impl From<Location> for ErrorLocation {
    fn from(l: Location) -> Self {
        // Destructured in full so that a field added to Location cannot be silently dropped.
        let Location { file, line, field, json_path } = l;
        ErrorLocation { file, line, column: None, field, json_path }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_and_input_errors_are_4xx() {
        for code in ErrorCode::ALL {
            let status = status_for(*code);
            if code.as_str().starts_with("input.") {
                assert!(status.is_client_error(), "{code} -> {status}");
            }
        }
        assert_eq!(status_for(ErrorCode::Internal), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn app_errors_keep_their_code_and_location() {
        let e = AppError::Input(chainbreak_formats::FormatError::new(
            ErrorCode::InputUnknownReference,
            Location::default().with_json_path("$.visits[0].person_id"),
            "person `P9` is not registered",
        ));
        let api = ApiError::from(e);
        assert_eq!(api.code(), ErrorCode::InputUnknownReference);
        assert_eq!(api.location().and_then(|l| l.json_path.as_deref()), Some("$.visits[0].person_id"));
        let store = AppError::Store(chainbreak_store::StoreError::Backend("disk I/O error".into()));
        let api = ApiError::from(store);
        assert_eq!(api.code(), ErrorCode::Internal);
        assert!(!api.message.contains("disk"), "internal details are withheld: {}", api.message);
    }
}
