//! Pseudonymous ids from identifying numbers, by a keyed hash.
//!
//! A feed may name a person by an identifier instead of a pseudonymous id: in any person field
//! (`person_id`, a person's `id`, a person lab test's `subject_id`), the value
//! `id_document:<number>`, `phone:<number>` or `passport:<number>` is a *person reference*. At
//! ingest it becomes the person's pseudonymous id, HMAC-SHA256 under the deployment's key of
//! the kind and the normalised number, the first 96 bits in URL-safe base64 (16 characters),
//! and the identifier itself goes only into the personal-data table. Visits, traces, logs,
//! rejects files and exports carry the pseudonymous id alone.
//!
//! The key lives in the deployment's configuration (a key file named by
//! `--pseudonym-key-file` or `CHAINBREAK_PSEUDONYM_KEY_FILE`), never in the store: without it
//! a stolen store does not let anyone compute the pseudonym of a known phone number. The same
//! key must be used for the deployment's whole life (a new key gives new pseudonyms). The same
//! person named by phone in one feed and by document in another gets two pseudonyms; merging
//! them is deduplication's job (`chainbreak person merge`).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chainbreak_core::model::{
    Area, Arrival, Case, GoodsBatch, GoodsHop, Group, Identifier, IdentifierKind, LabTest, LocationPing, Membership,
    Person, Place, SentinelRecord, StaffMember, SubjectKind, Trip, TripPassenger, Unit, Visit,
};
use hmac::{Hmac, Mac};
use rustc_hash::{FxHashMap, FxHashSet};
use sha2::Sha256;

use crate::AppError;

/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// The identifier kinds that may name a person in a feed.
pub const REFERENCE_KINDS: &[IdentifierKind] =
    &[IdentifierKind::IdDocument, IdentifierKind::Phone, IdentifierKind::Passport];

/// Why a person reference could not be turned into a pseudonymous id. The messages never
/// repeat the identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PseudonymError {
    #[error(
        "the field names a person by an identifier ({0}:...) but no pseudonymisation key is configured \
         (--pseudonym-key-file or CHAINBREAK_PSEUDONYM_KEY_FILE); nothing was written"
    )]
    NoKey(IdentifierKind),
    #[error("the {kind} number is not valid: {reason}")]
    Invalid { kind: IdentifierKind, reason: &'static str },
}

/// Computes pseudonymous ids under one deployment key.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(key withheld)")
    }
}

impl Pseudonymizer {
    /// A pseudonymizer under `key` (at least [`MIN_KEY_BYTES`] bytes).
    pub fn from_key(key: &[u8]) -> Result<Self, AppError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(AppError::InvalidArgument {
                argument: "pseudonym key",
                message: format!("the key has {} bytes; at least {MIN_KEY_BYTES} are needed", key.len()),
            });
        }
        let mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|e| AppError::InvalidArgument { argument: "pseudonym key", message: e.to_string() })?;
        Ok(Pseudonymizer { mac })
    }

    /// Reads a key file: the key in standard base64 on one line (as `chainbreak key generate`
    /// writes it).
    pub fn from_key_file(path: &Path) -> Result<Self, AppError> {
        let text = std::fs::read_to_string(path).map_err(|e| AppError::io(path, e))?;
        let key = STANDARD.decode(text.trim()).map_err(|e| AppError::InvalidArgument {
            argument: "--pseudonym-key-file",
            message: format!("{}: not a base64 key ({e}); make one with `chainbreak key generate`", path.display()),
        })?;
        Self::from_key(&key).map_err(|e| AppError::InvalidArgument {
            argument: "--pseudonym-key-file",
            message: format!("{}: {e}", path.display()),
        })
    }

    /// The pseudonymous id of an identifier already normalised ([`normalise`]).
    pub fn pseudonym(&self, kind: IdentifierKind, normalised: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(kind.as_str().as_bytes());
        mac.update(b":");
        mac.update(normalised.as_bytes());
        let digest = mac.finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&digest[..12])
    }
}

/// Writes a new random key to `path` (which must not exist), readable by its owner only.
pub fn generate_key_file(path: &Path) -> Result<(), AppError> {
    use std::io::Write;
    let mut key = [0u8; MIN_KEY_BYTES];
    getrandom::fill(&mut key)
        .map_err(|e| AppError::Io { path: "the OS random source".into(), message: e.to_string() })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| AppError::io(path, e))?;
    writeln!(file, "{}", STANDARD.encode(key)).map_err(|e| AppError::io(path, e))?;
    file.sync_all().map_err(|e| AppError::io(path, e))
}

/// The kind and number of a person reference (`phone:+86 138...`), if `value` is one.
pub fn parse_reference(value: &str) -> Option<(IdentifierKind, &str)> {
    let (prefix, number) = value.split_once(':')?;
    let kind = IdentifierKind::parse(prefix)?;
    REFERENCE_KINDS.contains(&kind).then_some((kind, number))
}

/// The canonical spelling of an identifying number: phones keep a leading `+` and their
/// digits (spaces, dashes, dots and brackets dropped); document and passport numbers keep
/// their letters, upper-cased, and digits.
pub fn normalise(kind: IdentifierKind, number: &str) -> Result<String, PseudonymError> {
    let invalid = |reason| Err(PseudonymError::Invalid { kind, reason });
    match kind {
        IdentifierKind::Phone => {
            let trimmed = number.trim();
            let (plus, rest) = match trimmed.strip_prefix('+') {
                Some(rest) => ("+", rest),
                None => ("", trimmed),
            };
            let mut out = String::from(plus);
            for c in rest.chars() {
                match c {
                    '0'..='9' => out.push(c),
                    ' ' | '-' | '.' | '(' | ')' => {}
                    _ => return invalid("a phone number has digits, an optional leading +, spaces and dashes"),
                }
            }
            let digits = out.len() - plus.len();
            if !(5..=20).contains(&digits) {
                return invalid("a phone number has 5 to 20 digits");
            }
            Ok(out)
        }
        _ => {
            let mut out = String::new();
            for c in number.trim().chars() {
                match c {
                    'a'..='z' | 'A'..='Z' | '0'..='9' => out.push(c.to_ascii_uppercase()),
                    ' ' | '-' => {}
                    _ => return invalid("a document number has letters, digits, spaces and dashes"),
                }
            }
            if !(5..=32).contains(&out.len()) {
                return invalid("a document number has 5 to 32 letters and digits");
            }
            Ok(out)
        }
    }
}

/// Replaces every person reference in `text` (a raw record for a rejects file, an error
/// message) with `<kind>:(withheld)`. A reference runs to the next `,`, `"`, `}`, `]` or line
/// end, which covers CSV and JSON records.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'outer: while !rest.is_empty() {
        for kind in REFERENCE_KINDS {
            let prefix = kind.as_str();
            if rest.len() > prefix.len()
                && rest.starts_with(prefix)
                && rest.as_bytes()[prefix.len()] == b':'
                && out.chars().last().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
            {
                let tail = &rest[prefix.len() + 1..];
                let end = tail.find([',', '"', '}', ']', '\n', '\r']).unwrap_or(tail.len());
                out.push_str(prefix);
                out.push_str(":(withheld)");
                rest = &tail[end..];
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Turns the person references of one import or ingest into pseudonymous ids, remembering
/// each identifier met (to be written to the personal-data table).
#[derive(Debug, Default)]
pub struct Pseudonymise {
    key: Option<Pseudonymizer>,
    cache: FxHashMap<String, String>,
    recorded: FxHashSet<(String, IdentifierKind)>,
    /// Identifiers met and not yet taken ([`Self::take_identifiers`]).
    fresh: Vec<Identifier>,
}

impl Pseudonymise {
    pub fn new(key: Option<Pseudonymizer>) -> Self {
        Pseudonymise { key, ..Default::default() }
    }

    /// The pseudonymous id for `value` when it is a person reference (`None`: a plain id).
    pub fn map(&mut self, value: &str) -> Result<Option<String>, PseudonymError> {
        let Some((kind, number)) = parse_reference(value) else {
            return Ok(None);
        };
        if let Some(id) = self.cache.get(value) {
            return Ok(Some(id.clone()));
        }
        let key = self.key.as_ref().ok_or(PseudonymError::NoKey(kind))?;
        let normalised = normalise(kind, number)?;
        let id = key.pseudonym(kind, &normalised);
        if self.recorded.insert((id.clone(), kind)) {
            self.fresh.push(Identifier { person_id: id.clone(), kind, value: normalised });
        }
        self.cache.insert(value.to_string(), id.clone());
        Ok(Some(id))
    }

    /// Replaces the person references of `record` in place; on error, names the field.
    pub fn apply<T: PersonRefs>(&mut self, record: &mut T) -> Result<(), (&'static str, PseudonymError)> {
        for (field, value) in record.person_refs() {
            if let Some(id) = self.map(value).map_err(|e| (field, e))? {
                *value = id;
            }
        }
        Ok(())
    }

    /// The identifiers met since the last call.
    pub fn take_identifiers(&mut self) -> Vec<Identifier> {
        std::mem::take(&mut self.fresh)
    }
}

/// The fields of a record that name a person.
pub trait PersonRefs {
    /// (field name, value) of each field naming a person.
    fn person_refs(&mut self) -> Vec<(&'static str, &mut String)>;
}

macro_rules! person_refs {
    ($($t:ty => |$r:ident| $body:expr;)+) => {
        $(impl PersonRefs for $t {
            fn person_refs(&mut self) -> Vec<(&'static str, &mut String)> {
                let $r = self;
                $body
            }
        })+
    };
}

person_refs! {
    Person => |r| vec![("id", &mut r.id)];
    Identifier => |r| vec![("person_id", &mut r.person_id)];
    StaffMember => |r| vec![("person_id", &mut r.person_id)];
    Membership => |r| vec![("person_id", &mut r.person_id)];
    Visit => |r| vec![("person_id", &mut r.person_id)];
    TripPassenger => |r| vec![("person_id", &mut r.person_id)];
    LocationPing => |r| vec![("person_id", &mut r.person_id)];
    Case => |r| vec![("person_id", &mut r.person_id)];
    Arrival => |r| vec![("person_id", &mut r.person_id)];
    LabTest => |r| if r.subject_kind == SubjectKind::Person { vec![("subject_id", &mut r.subject_id)] } else { vec![] };
    Area => |_r| vec![];
    Unit => |_r| vec![];
    Place => |_r| vec![];
    Group => |_r| vec![];
    Trip => |_r| vec![];
    GoodsBatch => |_r| vec![];
    GoodsHop => |_r| vec![];
    SentinelRecord => |_r| vec![];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Pseudonymizer {
        Pseudonymizer::from_key(&[7u8; 32]).unwrap()
    }

    #[test]
    fn pseudonyms_are_keyed_stable_and_normalised() {
        let k = key();
        let a = k.pseudonym(IdentifierKind::Phone, "+8613800000001");
        assert_eq!(a.len(), 16);
        assert_eq!(a, key().pseudonym(IdentifierKind::Phone, "+8613800000001"), "stable");
        let other = Pseudonymizer::from_key(&[8u8; 32]).unwrap();
        assert_ne!(a, other.pseudonym(IdentifierKind::Phone, "+8613800000001"), "keyed");
        assert_ne!(a, k.pseudonym(IdentifierKind::Passport, "+8613800000001"), "the kind counts");
        let mut p = Pseudonymise::new(Some(k));
        let spaced = p.map("phone:+86 138-0000-0001").unwrap().unwrap();
        assert_eq!(spaced, a, "normalised before hashing");
        assert_eq!(p.map("P001").unwrap(), None, "plain ids pass");
        assert_eq!(p.map("name:Li").unwrap(), None, "only document, phone and passport are references");
        assert_eq!(p.map("id_document:11010519491231002x").unwrap().unwrap().len(), 16);
        let ids = p.take_identifiers();
        assert_eq!(ids.len(), 2);
        assert_eq!((ids[0].kind, ids[0].value.as_str()), (IdentifierKind::Phone, "+8613800000001"));
        assert_eq!(ids[1].value, "11010519491231002X");
        p.map("phone:+8613800000001").unwrap();
        assert!(p.take_identifiers().is_empty(), "each identifier is reported once");
    }

    #[test]
    fn bad_references_and_missing_keys_are_errors_that_do_not_repeat_the_number() {
        let mut p = Pseudonymise::new(Some(key()));
        let e = p.map("phone:call me").unwrap_err();
        assert!(!e.to_string().contains("call me"), "{e}");
        assert!(matches!(p.map("passport:E1"), Err(PseudonymError::Invalid { .. })));
        let mut none = Pseudonymise::new(None);
        let e = none.map("phone:+8613800000001").unwrap_err();
        assert_eq!(e, PseudonymError::NoKey(IdentifierKind::Phone));
        assert!(!e.to_string().contains("13800000001"));
        assert!(Pseudonymizer::from_key(&[1u8; 16]).is_err(), "short keys are refused");
    }

    #[test]
    fn scrub_withholds_every_reference_in_csv_and_json() {
        assert_eq!(scrub("phone:+86 138 0000 0001,L1,2022-03-01"), "phone:(withheld),L1,2022-03-01");
        assert_eq!(
            scrub(r#"{"person_id":"passport:E12345678","place_id":"L1"}"#),
            r#"{"person_id":"passport:(withheld)","place_id":"L1"}"#
        );
        assert_eq!(scrub("a,id_document:1101 x,b\nc"), "a,id_document:(withheld),b\nc");
        assert_eq!(scrub("microphone:123,P1"), "microphone:123,P1", "only at a field start");
        assert_eq!(scrub("P1,L1,phone"), "P1,L1,phone");
    }

    #[test]
    fn record_fields_are_replaced_in_place() {
        let mut p = Pseudonymise::new(Some(key()));
        let mut test = LabTest {
            id: "T1".into(),
            subject_kind: SubjectKind::Person,
            subject_id: "phone:+8613800000001".into(),
            pool_id: None,
            method: chainbreak_core::model::TestMethod::Pcr,
            result: chainbreak_core::model::TestResult::Negative,
            ct: None,
            sampled_at: jiff::Timestamp::UNIX_EPOCH,
            reported_at: None,
            lab_id: None,
            variant: None,
        };
        p.apply(&mut test).unwrap();
        assert_eq!(test.subject_id, key().pseudonym(IdentifierKind::Phone, "+8613800000001"));
        test.subject_kind = SubjectKind::Environment;
        test.subject_id = "phone:booth".into();
        p.apply(&mut test).unwrap();
        assert_eq!(test.subject_id, "phone:booth", "only person subjects are references");
        let mut visit = Visit {
            person_id: "phone:12".into(),
            place_id: "L1".into(),
            t_in: jiff::Timestamp::UNIX_EPOCH,
            t_out: None,
            source: chainbreak_core::model::VisitSource::VenueCode,
        };
        assert_eq!(p.apply(&mut visit).unwrap_err().0, "person_id");
    }
}
