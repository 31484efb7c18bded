//! Reading JSON request bodies ourselves (rather than with axum's `Json`), so that every error
//! names the exact JSON path, line and column of the offending value.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use chainbreak_core::ErrorCode;
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use crate::error::{ApiError, ErrorLocation};

/// Reads a JSON body of at most `max_bytes` (the [`axum::extract::DefaultBodyLimit`] in force
/// is the same number) and parses it into `T`.
pub(crate) async fn read_json<T: DeserializeOwned>(req: Request, max_bytes: usize) -> Result<T, ApiError> {
    require_json(req.headers())?;
    let declared =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared
        && n > max_bytes as u64
    {
        return Err(too_large(max_bytes));
    }
    let bytes = Bytes::from_request(req, &()).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(max_bytes)
        } else {
            ApiError::new(ErrorCode::InputMalformed, format!("cannot read the request body: {rejection}"))
        }
    })?;
    parse_json(&bytes)
}

fn too_large(max_bytes: usize) -> ApiError {
    ApiError::new(
        ErrorCode::InputTooLarge,
        format!("the request body is larger than {max_bytes} bytes; split the batch"),
    )
}

/// Accepts `application/json`, with or without parameters (`; charset=utf-8`).
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers.get(CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = value.as_deref().map(|v| v.split(';').next().unwrap_or_default().trim());
    match essence {
        Some(e) if e.eq_ignore_ascii_case("application/json") => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::InputUnsupported,
            format!("the request body must be application/json, not `{}`", value.unwrap_or_default()),
        )),
        None => Err(ApiError::new(
            ErrorCode::InputUnsupported,
            "the request has no Content-Type; send the body as application/json",
        )),
    }
}

/// Parses a whole JSON document; trailing content is an error.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = render_path(e.path());
        json_error(e.into_inner(), path)
    })?;
    de.end().map_err(|e| json_error(e, "$".to_string()))?;
    Ok(value)
}

fn json_error(e: serde_json::Error, mut json_path: String) -> ApiError {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    let code = match e.classify() {
        serde_json::error::Category::Data => chainbreak_formats::reader::classify(&message),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            ErrorCode::InputMalformed
        }
    };
    // serde reports a missing field at the object that lacks it: point at the field itself.
    if code == ErrorCode::InputMissingField
        && let Some(field) = quoted(&message)
    {
        push_key(&mut json_path, field);
    }
    let mut location = ErrorLocation::json_path(json_path);
    if line > 0 {
        location.line = Some(line as u64);
        location.column = Some(column as u64);
    }
    ApiError::new(code, message).with_location(location)
}

/// The name in serde's "missing field `x`" and "unknown field `x`, expected ..." messages.
fn quoted(message: &str) -> Option<&str> {
    let rest = message.split_once('`')?.1;
    Some(rest.split_once('`')?.0)
}

/// Renders a serde path as JSONPath: `$.visits[3].t_in`; keys that are not plain names are
/// quoted (`$['odd key']`). A path that serde could not follow to the end (a syntax error where
/// a key was due) stops at the nearest known ancestor.
fn render_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::from("$");
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => push_key(&mut out, key),
            Segment::Enum { variant } => push_key(&mut out, variant),
            Segment::Unknown => break,
        }
    }
    out
}

fn push_key(out: &mut String, key: &str) {
    let plain = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        out.push('.');
        out.push_str(key);
    } else {
        out.push_str("['");
        for c in key.chars() {
            match c {
                '\'' => out.push_str("\\'"),
                '\\' => out.push_str("\\\\"),
                c => out.push(c),
            }
        }
        out.push_str("']");
    }
}

/// A free-text field as given: trimmed, and absent when blank.
pub(crate) fn given(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        visits: Vec<chainbreak_core::model::Visit>,
    }

    fn err(body: &str) -> (ErrorCode, ErrorLocation) {
        let e = parse_json::<Doc>(body.as_bytes()).unwrap_err();
        (e.code(), e.location().cloned().unwrap_or_default())
    }

    #[test]
    fn paths_are_exact() {
        let ok = r#"{"person_id":"P1","place_id":"L1","t_in":0}"#;
        let (code, loc) = err(&format!(r#"{{"visits":[{ok},{{"person_id":"P1","place_id":"L1","t_in":true}}]}}"#));
        assert_eq!(code, ErrorCode::InputInvalidField);
        assert_eq!(loc.json_path.as_deref(), Some("$.visits[1].t_in"));
        assert_eq!(loc.line, Some(1));

        let (code, loc) = err(r#"{"visits":[{"person_id":"P1","place_id":"L1"}]}"#);
        assert_eq!(code, ErrorCode::InputMissingField);
        assert_eq!(loc.json_path.as_deref(), Some("$.visits[0].t_in"));

        let (code, loc) = err(r#"{"visits":[{"person_id":"P1","place_id":"L1","t_in":0,"colour":1}]}"#);
        assert_eq!(code, ErrorCode::InputUnknownField);
        assert_eq!(loc.json_path.as_deref(), Some("$.visits[0].colour"));

        let (code, loc) = err(r#"{"visits":[], "odd key": 1}"#);
        assert_eq!(code, ErrorCode::InputUnknownField);
        assert_eq!(loc.json_path.as_deref(), Some("$['odd key']"));

        let (code, loc) = err(r#"{"visits":[{"person_id":"P1","place_id":"L1","t_in":0,"source":"fax"}]}"#);
        assert_eq!(code, ErrorCode::InputInvalidField);
        assert_eq!(loc.json_path.as_deref(), Some("$.visits[0].source"));
    }

    #[test]
    fn syntax_errors_are_malformed_with_line_and_column() {
        let (code, loc) = err("{\"visits\": [\n  {\"person_id\": \"P1\",,}\n]}");
        assert_eq!(code, ErrorCode::InputMalformed);
        assert_eq!((loc.line, loc.column), (Some(2), Some(22)));
        assert_eq!(err("").0, ErrorCode::InputMalformed);
        assert_eq!(err(r#"{"visits":[]} x"#).0, ErrorCode::InputMalformed);
        assert_eq!(err("{\"visits\":[\"\u{0}\"]}").0, ErrorCode::InputMalformed);
    }

    #[test]
    fn content_type_must_be_json() {
        let mut h = HeaderMap::new();
        assert!(require_json(&h).is_err());
        h.insert(CONTENT_TYPE, "application/json; charset=utf-8".parse().unwrap());
        assert!(require_json(&h).is_ok());
        h.insert(CONTENT_TYPE, "Application/JSON".parse().unwrap());
        assert!(require_json(&h).is_ok());
        h.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(require_json(&h).unwrap_err().code(), ErrorCode::InputUnsupported);
    }
}
