//! The time-series data model: series keys and point values (DESIGN.md §10).
//!
//! A series is a measurement, a tag set and one field key, as in InfluxDB
//! line protocol. Keys are validated once, when a `SeriesKey` is built, so
//! every key the engine holds can be written back as line protocol and read
//! again to the same key (the export round trip depends on it):
//!
//! - no part is empty, and no part holds `\n`, `\r` or NUL (line protocol
//!   has no escape for a line break; NUL is refused as in tree names);
//! - a measurement does not start with `#` (it would read as a comment)
//!   or a tab (parsers skip leading blanks; a tab has no escape);
//! - tag keys are unique, kept sorted by their bytes, and none is `_field`,
//!   the pseudo-tag selectors use to name the field.
//!
//! The series id is BLAKE3 over a length-prefixed encoding of the parts, so
//! no two distinct keys share an encoding whatever bytes their parts hold.

use std::fmt;

/// The most bytes one part of a key (measurement, tag key or value, field)
/// may hold. InfluxDB allows 64 KiB for a whole series key; one part of that
/// size is already unreasonable, and the bound keeps every length a `u16`.
pub const MAX_PART_LEN: usize = 16 * 1024;

/// The most tags one series may carry.
pub const MAX_TAGS: usize = 256;

/// The tag key selectors reserve for the field name.
pub const FIELD_TAG: &str = "_field";

/// A value of one point.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A float (`1.5`, `-2`, `3e-4`).
    F64(f64),
    /// A signed integer (`3i`).
    I64(i64),
    /// A boolean (`t`, `true`, `F`, …).
    Bool(bool),
    /// A string (`"text"`). Parsed so the caller can name the line that holds
    /// it; the store may refuse it.
    Str(String),
}

/// The type a series holds; a series never mixes two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ValueType {
    /// f64.
    Float,
    /// i64.
    Integer,
    /// bool.
    Boolean,
    /// UTF-8 text.
    String,
}

impl Value {
    /// The type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::F64(_) => ValueType::Float,
            Value::I64(_) => ValueType::Integer,
            Value::Bool(_) => ValueType::Boolean,
            Value::Str(_) => ValueType::String,
        }
    }

    /// Whether two values are the same bit for bit (floats compared by their
    /// bits, so `-0.0 != 0.0` and a NaN equals itself).
    pub fn same_bits(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::F64(a), Value::F64(b)) => a.to_bits() == b.to_bits(),
            _ => self == other,
        }
    }

    /// The value as a float: integers converted, booleans 1 and 0, strings
    /// NaN (for charts and Prometheus's float-only samples).
    pub fn as_f64(&self) -> f64 {
        match self {
            Value::F64(x) => *x,
            Value::I64(x) => *x as f64,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Str(_) => f64::NAN,
        }
    }

    /// The value as JSON: numbers, booleans and strings as themselves;
    /// NaN and the infinities (which JSON lacks) as their names in strings.
    #[cfg(any(feature = "cli", feature = "http"))]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::F64(x) if x.is_finite() => serde_json::json!(x),
            Value::F64(x) => serde_json::json!(x.to_string()),
            Value::I64(x) => serde_json::json!(x),
            Value::Bool(b) => serde_json::json!(b),
            Value::Str(s) => serde_json::json!(s),
        }
    }
}

impl ValueType {
    /// "a float value", "an integer value", …: for messages.
    pub fn with_article(self) -> &'static str {
        match self {
            ValueType::Float => "a float value",
            ValueType::Integer => "an integer value",
            ValueType::Boolean => "a boolean value",
            ValueType::String => "a string value",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Float => "float",
            ValueType::Integer => "integer",
            ValueType::Boolean => "boolean",
            ValueType::String => "string",
        })
    }
}

/// Why a series key was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A part is empty.
    #[error("empty {0}")]
    Empty(&'static str),
    /// A part is longer than [`MAX_PART_LEN`].
    #[error("{what} is {len} bytes long (at most {MAX_PART_LEN})")]
    TooLong {
        /// Which part.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A part holds a byte line protocol cannot carry.
    #[error("{what} {text:?} contains {byte}, which line protocol cannot carry")]
    BadByte {
        /// Which part.
        what: &'static str,
        /// The part.
        text: String,
        /// The byte, spelled out.
        byte: &'static str,
    },
    /// The measurement starts with `#`.
    #[error("measurement {0:?} starts with '#', which line protocol reads as a comment")]
    CommentMeasurement(String),
    /// The same tag key twice.
    #[error("duplicate tag key {0:?}")]
    DuplicateTag(String),
    /// The reserved tag key.
    #[error("tag key {FIELD_TAG:?} is reserved for the field name")]
    ReservedTag,
    /// Too many tags.
    #[error("{0} tags (at most {MAX_TAGS})")]
    TooManyTags(usize),
}

fn check_part(what: &'static str, s: &str) -> Result<(), KeyError> {
    if s.is_empty() {
        return Err(KeyError::Empty(what));
    }
    if s.len() > MAX_PART_LEN {
        return Err(KeyError::TooLong { what, len: s.len() });
    }
    let bad = s.bytes().find_map(|b| match b {
        b'\n' => Some("a line feed"),
        b'\r' => Some("a carriage return"),
        0 => Some("a NUL byte"),
        _ => None,
    });
    match bad {
        Some(byte) => Err(KeyError::BadByte {
            what,
            text: s.to_owned(),
            byte,
        }),
        None => Ok(()),
    }
}

/// A series: measurement, tags sorted by key, and field. Immutable once
/// built; every constructor validates (module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    measurement: String,
    tags: Vec<(String, String)>,
    field: String,
}

impl SeriesKey {
    /// Build a key; tags may come in any order and are sorted here.
    pub fn new(
        measurement: impl Into<String>,
        tags: impl IntoIterator<Item = (String, String)>,
        field: impl Into<String>,
    ) -> Result<SeriesKey, KeyError> {
        let measurement = measurement.into();
        let field = field.into();
        check_part("measurement", &measurement)?;
        if measurement.starts_with('#') {
            return Err(KeyError::CommentMeasurement(measurement));
        }
        if measurement.starts_with('\t') {
            // A parser skips leading blanks; a space is escaped on output,
            // a tab has no escape.
            return Err(KeyError::BadByte {
                what: "measurement",
                text: measurement,
                byte: "a leading tab",
            });
        }
        check_part("field key", &field)?;
        let mut tags: Vec<(String, String)> = tags.into_iter().collect();
        if tags.len() > MAX_TAGS {
            return Err(KeyError::TooManyTags(tags.len()));
        }
        for (k, v) in &tags {
            check_part("tag key", k)?;
            check_part("tag value", v)?;
            if k == FIELD_TAG {
                return Err(KeyError::ReservedTag);
            }
        }
        tags.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = tags.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(KeyError::DuplicateTag(w[0].0.clone()));
        }
        Ok(SeriesKey {
            measurement,
            tags,
            field,
        })
    }

    /// The measurement.
    pub fn measurement(&self) -> &str {
        &self.measurement
    }

    /// The tags, sorted by key, keys unique.
    pub fn tags(&self) -> &[(String, String)] {
        &self.tags
    }

    /// The value of a tag; selectors treat a missing tag as `""`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.tags[i].1.as_str())
    }

    /// The field key.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The unambiguous byte encoding the id hashes: for the measurement,
    /// each tag key and value, and the field, `u16 LE length || bytes`,
    /// with the tag count (`u16 LE`) after the measurement.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Lengths are bounded by MAX_PART_LEN and counts by MAX_TAGS at
        // construction, so each fits a u16.
        fn part(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&(s.len() as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        part(out, &self.measurement);
        out.extend_from_slice(&(self.tags.len() as u16).to_le_bytes());
        for (k, v) in &self.tags {
            part(out, k);
            part(out, v);
        }
        part(out, &self.field);
    }

    /// The series id: BLAKE3 of [`SeriesKey::encode`].
    pub fn id(&self) -> SeriesId {
        let mut bytes = Vec::with_capacity(64);
        self.encode(&mut bytes);
        SeriesId(*blake3::hash(&bytes).as_bytes())
    }

    /// The series part of the canonical line (measurement and tags, escaped
    /// as line protocol), without the field: `cpu,host=a\ b`.
    pub fn series_string(&self) -> String {
        let mut s = String::new();
        crate::series::lineproto::write_series(&mut s, self);
        s
    }
}

impl fmt::Display for SeriesKey {
    /// `series_string` then ` field` (the field escaped), e.g. `cpu,host=a usage`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.series_string();
        s.push(' ');
        crate::series::lineproto::escape_into(&mut s, &self.field, false);
        f.write_str(&s)
    }
}

/// A series id: 32 bytes of BLAKE3.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub [u8; 32]);

impl fmt::Debug for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeriesId({self})")
    }
}

impl fmt::Display for SeriesId {
    /// 64 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[(&str, &str)]) -> Vec<(String, String)> {
        t.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tags_are_sorted_and_ids_ignore_input_order() {
        let a = SeriesKey::new("cpu", tags(&[("z", "1"), ("a", "2")]), "usage");
        let b = SeriesKey::new("cpu", tags(&[("a", "2"), ("z", "1")]), "usage");
        let (a, b) = (
            a.unwrap_or_else(|e| panic!("{e}")),
            b.unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(a.tags()[0].0, "a");
        assert_eq!(a.id(), b.id());
        assert_eq!(a.tag("z"), Some("1"));
        assert_eq!(a.tag("y"), None);
    }

    #[test]
    fn parts_cannot_alias_through_the_encoding() {
        // "ab" + tag ("c","d") must not collide with "a" + tag ("bc","d"), etc.
        let k1 = SeriesKey::new("ab", tags(&[("c", "d")]), "f");
        let k2 = SeriesKey::new("a", tags(&[("bc", "d")]), "f");
        let (k1, k2) = (
            k1.unwrap_or_else(|e| panic!("{e}")),
            k2.unwrap_or_else(|e| panic!("{e}")),
        );
        assert_ne!(k1.id(), k2.id());
    }

    #[test]
    fn bad_keys_are_refused_naming_the_part() {
        let err = |r: Result<SeriesKey, KeyError>| r.err().map(|e| e.to_string());
        assert_eq!(
            err(SeriesKey::new("", tags(&[]), "f")).as_deref(),
            Some("empty measurement")
        );
        assert_eq!(
            err(SeriesKey::new("m", tags(&[("k", "")]), "f")).as_deref(),
            Some("empty tag value")
        );
        assert_eq!(
            err(SeriesKey::new("m", tags(&[("k", "1"), ("k", "2")]), "f")).as_deref(),
            Some("duplicate tag key \"k\"")
        );
        assert!(err(SeriesKey::new("m", tags(&[("_field", "x")]), "f")).is_some());
        assert!(err(SeriesKey::new("#m", tags(&[]), "f")).is_some());
        assert!(err(SeriesKey::new("\tm", tags(&[]), "f")).is_some());
        assert!(err(SeriesKey::new("m\nx", tags(&[]), "f")).is_some());
        assert!(err(SeriesKey::new("m", tags(&[]), "f".repeat(MAX_PART_LEN + 1))).is_some());
    }
}
