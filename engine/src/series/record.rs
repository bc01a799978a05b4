//! The time-series layer's WAL records (FORMAT.md §17): series definitions
//! and samples, carried as WAL record payloads.
//!
//! ```text
//! offset 0  4  magic FF 'S' 'Y' 'T'
//!        4  1  version = 1
//!        5  1  kind: 1 = series definitions, 2 = samples
//!        6  …  one or more entries of that kind, back to back, to the end
//! ```
//!
//! A series definition: `varint ref`, `u8 type` (1 float, 2 integer,
//! 3 boolean, 4 string), then the key as [`SeriesKey::encode`] writes it
//! (`u16 LE` length-prefixed measurement, `u16 LE` tag count, tag keys and
//! values, field; tags strictly ascending by key).
//!
//! A sample group: `varint ref`, `u8 type`, `varint n` (`>= 1`), the first
//! timestamp as a zigzag varint and `n − 1` zigzag varint differences
//! (wrapping) to the previous one, then `n` values: float 8 bytes (IEEE
//! bits, LE), integer zigzag varint, boolean one byte 0 or 1, string
//! `varint len` + UTF-8.
//!
//! The type is repeated in each group so a record decodes without the
//! series table; replay checks it against the series' type. Decoding is
//! strict and canonical: varints minimal, no trailing bytes, counts bounded
//! by the bytes left, every key valid — `encode(decode(b)) == b`.
//!
//! The magic's first byte is not text, so a record appended as a line of
//! text (`sydra wal append`) never starts with it; the engine refuses raw
//! appends that do.

use super::key::{MAX_PART_LEN, SeriesKey, ValueType};
use crate::varint::{put as put_varint, unzigzag, zigzag};

/// The first four bytes of every series record.
pub const MAGIC: [u8; 4] = [0xFF, b'S', b'Y', b'T'];
/// The record version written and read.
pub const VERSION: u8 = 1;
const KIND_SERIES: u8 = 1;
const KIND_SAMPLES: u8 = 2;

/// Whether a WAL payload is a series record (by its magic).
pub fn is_series_record(payload: &[u8]) -> bool {
    payload.starts_with(&MAGIC)
}

/// Why a series record does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid series record at byte {offset}: {reason}")]
pub struct RecordError {
    /// Offset in the payload.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

/// A new series and the ref its samples use.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesDef {
    /// The ref, unique for the life of the store.
    pub series: u64,
    /// The one type its values have.
    pub value_type: ValueType,
    /// The key.
    pub key: SeriesKey,
}

/// The values of one sample group, one type.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Values {
    /// Floats.
    F64(Vec<f64>),
    /// Integers.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
    /// Strings.
    Str(Vec<String>),
}

impl Values {
    /// How many values.
    pub fn len(&self) -> usize {
        match self {
            Values::F64(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Str(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Their type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Values::F64(_) => ValueType::Float,
            Values::I64(_) => ValueType::Integer,
            Values::Bool(_) => ValueType::Boolean,
            Values::Str(_) => ValueType::String,
        }
    }
}

/// Samples of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleGroup {
    /// The series ref.
    pub series: u64,
    /// Timestamps, ns; as many as values.
    pub timestamps: Vec<i64>,
    /// Values.
    pub values: Values,
}

/// A decoded series record.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// New series.
    Series(Vec<SeriesDef>),
    /// Samples.
    Samples(Vec<SampleGroup>),
}

fn type_code(t: ValueType) -> u8 {
    match t {
        ValueType::Float => 1,
        ValueType::Integer => 2,
        ValueType::Boolean => 3,
        ValueType::String => 4,
    }
}

fn header(out: &mut Vec<u8>, kind: u8) {
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind);
}

/// Builds a series-definition record.
#[derive(Debug, Default)]
pub struct SeriesRecord {
    buf: Vec<u8>,
}

impl SeriesRecord {
    /// An empty record.
    pub fn new() -> SeriesRecord {
        SeriesRecord::default()
    }

    /// Add a definition.
    pub fn push(&mut self, series: u64, value_type: ValueType, key: &SeriesKey) {
        if self.buf.is_empty() {
            header(&mut self.buf, KIND_SERIES);
        }
        put_varint(&mut self.buf, series);
        self.buf.push(type_code(value_type));
        key.encode(&mut self.buf);
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes so far (to cut records at a size).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The payload (empty if nothing was added).
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Builds a samples record, one group at a time.
#[derive(Debug, Default)]
pub struct SamplesRecord {
    buf: Vec<u8>,
}

/// The values of one group, borrowed.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum ValuesRef<'a> {
    /// Floats.
    F64(&'a [f64]),
    /// Integers.
    I64(&'a [i64]),
    /// Booleans.
    Bool(&'a [bool]),
    /// Strings.
    Str(&'a [String]),
}

impl SamplesRecord {
    /// An empty record.
    pub fn new() -> SamplesRecord {
        SamplesRecord::default()
    }

    /// Bytes so far (to cut records at a size).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Add a group; an empty one is skipped. Refused (and nothing added)
    /// when `timestamps` and `values` differ in length.
    pub fn push(
        &mut self,
        series: u64,
        timestamps: &[i64],
        values: ValuesRef<'_>,
    ) -> Result<(), RecordError> {
        let (n, code) = match values {
            ValuesRef::F64(v) => (v.len(), 1),
            ValuesRef::I64(v) => (v.len(), 2),
            ValuesRef::Bool(v) => (v.len(), 3),
            ValuesRef::Str(v) => (v.len(), 4),
        };
        if n != timestamps.len() {
            return Err(RecordError {
                offset: self.buf.len(),
                reason: format!(
                    "{} timestamps for {n} values of series {series}",
                    timestamps.len()
                ),
            });
        }
        if n == 0 {
            return Ok(());
        }
        if self.buf.is_empty() {
            header(&mut self.buf, KIND_SAMPLES);
        }
        put_varint(&mut self.buf, series);
        self.buf.push(code);
        put_varint(&mut self.buf, n as u64);
        let mut prev = 0i64;
        for &t in &timestamps[..n] {
            put_varint(&mut self.buf, zigzag(t.wrapping_sub(prev)));
            prev = t;
        }
        match values {
            ValuesRef::F64(v) => {
                for x in &v[..n] {
                    self.buf.extend_from_slice(&x.to_bits().to_le_bytes());
                }
            }
            ValuesRef::I64(v) => {
                for &x in &v[..n] {
                    put_varint(&mut self.buf, zigzag(x));
                }
            }
            ValuesRef::Bool(v) => self.buf.extend(v[..n].iter().map(|&b| u8::from(b))),
            ValuesRef::Str(v) => {
                for s in &v[..n] {
                    put_varint(&mut self.buf, s.len() as u64);
                    self.buf.extend_from_slice(s.as_bytes());
                }
            }
        }
        Ok(())
    }

    /// The payload (empty if nothing was added).
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn err<T>(&self, reason: impl Into<String>) -> Result<T, RecordError> {
        Err(RecordError {
            offset: self.pos,
            reason: reason.into(),
        })
    }

    fn left(&self) -> usize {
        self.b.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.left() < n {
            return self.err(format!("truncated: {n} bytes needed, {} left", self.left()));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, RecordError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn varint(&mut self) -> Result<u64, RecordError> {
        let r = crate::varint::read(self.b, &mut self.pos);
        r.or_else(|reason| self.err(reason))
    }

    fn str(&mut self, what: &str) -> Result<&'a str, RecordError> {
        let len = usize::from(self.u16()?);
        if len > MAX_PART_LEN {
            return self.err(format!("{what} of {len} bytes is over the limit"));
        }
        let at = self.pos;
        let b = self.take(len)?;
        std::str::from_utf8(b).map_err(|_| RecordError {
            offset: at,
            reason: format!("{what} is not UTF-8"),
        })
    }

    fn value_type(&mut self) -> Result<ValueType, RecordError> {
        match self.u8()? {
            1 => Ok(ValueType::Float),
            2 => Ok(ValueType::Integer),
            3 => Ok(ValueType::Boolean),
            4 => Ok(ValueType::String),
            t => {
                self.pos -= 1;
                self.err(format!("unknown value type {t}"))
            }
        }
    }
}

/// Decode a series record payload.
pub fn decode(payload: &[u8]) -> Result<Record, RecordError> {
    let mut c = Cursor { b: payload, pos: 0 };
    if c.take(4)? != MAGIC {
        return Err(RecordError {
            offset: 0,
            reason: "not a series record (magic)".into(),
        });
    }
    let version = c.u8()?;
    if version != VERSION {
        c.pos -= 1;
        return c.err(format!(
            "series record version {version} (this build reads {VERSION})"
        ));
    }
    let kind = c.u8()?;
    if c.left() == 0 {
        return c.err("a record with no entries");
    }
    match kind {
        KIND_SERIES => {
            let mut defs = Vec::new();
            while c.left() > 0 {
                let series = c.varint()?;
                let value_type = c.value_type()?;
                let at = c.pos;
                let measurement = c.str("measurement")?;
                let count = usize::from(c.u16()?);
                let mut tags: Vec<(String, String)> = Vec::new();
                for _ in 0..count {
                    let k = c.str("tag key")?;
                    let v = c.str("tag value")?;
                    if tags.last().is_some_and(|(p, _)| p.as_str() >= k) {
                        return c.err("tag keys not strictly ascending");
                    }
                    tags.push((k.to_owned(), v.to_owned()));
                }
                let field = c.str("field key")?;
                let key = SeriesKey::new(measurement, tags, field).map_err(|e| RecordError {
                    offset: at,
                    reason: format!("invalid series key: {e}"),
                })?;
                defs.push(SeriesDef {
                    series,
                    value_type,
                    key,
                });
            }
            Ok(Record::Series(defs))
        }
        KIND_SAMPLES => {
            let mut groups = Vec::new();
            while c.left() > 0 {
                let series = c.varint()?;
                let value_type = c.value_type()?;
                let n = c.varint()?;
                // Each sample takes at least two bytes (timestamp and value).
                let n = match usize::try_from(n) {
                    Ok(n) if n >= 1 && n <= c.left() / 2 => n,
                    _ => return c.err(format!("sample count {n} does not fit the record")),
                };
                let mut timestamps = Vec::with_capacity(n);
                let mut prev = 0i64;
                for _ in 0..n {
                    prev = prev.wrapping_add(unzigzag(c.varint()?));
                    timestamps.push(prev);
                }
                let values = match value_type {
                    ValueType::Float => {
                        let mut v = Vec::with_capacity(n);
                        for _ in 0..n {
                            let b = c.take(8)?;
                            let mut a = [0u8; 8];
                            a.copy_from_slice(b);
                            v.push(f64::from_bits(u64::from_le_bytes(a)));
                        }
                        Values::F64(v)
                    }
                    ValueType::Integer => {
                        let mut v = Vec::with_capacity(n);
                        for _ in 0..n {
                            v.push(unzigzag(c.varint()?));
                        }
                        Values::I64(v)
                    }
                    ValueType::Boolean => {
                        let mut v = Vec::with_capacity(n);
                        for _ in 0..n {
                            v.push(match c.u8()? {
                                0 => false,
                                1 => true,
                                b => {
                                    c.pos -= 1;
                                    return c.err(format!("boolean byte {b}"));
                                }
                            });
                        }
                        Values::Bool(v)
                    }
                    ValueType::String => {
                        let mut v = Vec::with_capacity(n);
                        for _ in 0..n {
                            let len = c.varint()?;
                            let len = match usize::try_from(len) {
                                Ok(l) if l <= c.left() => l,
                                _ => return c.err(format!("string of {len} bytes past the end")),
                            };
                            let at = c.pos;
                            let s = std::str::from_utf8(c.take(len)?).map_err(|_| RecordError {
                                offset: at,
                                reason: "string value is not UTF-8".into(),
                            })?;
                            v.push(s.to_owned());
                        }
                        Values::Str(v)
                    }
                };
                groups.push(SampleGroup {
                    series,
                    timestamps,
                    values,
                });
            }
            Ok(Record::Samples(groups))
        }
        k => {
            c.pos -= 1;
            c.err(format!("unknown series record kind {k}"))
        }
    }
}

/// Encode a decoded record again (the inverse of [`decode`]). Refused when
/// a group's timestamps and values differ in length.
pub fn encode(record: &Record) -> Result<Vec<u8>, RecordError> {
    match record {
        Record::Series(defs) => {
            let mut r = SeriesRecord::new();
            for d in defs {
                r.push(d.series, d.value_type, &d.key);
            }
            Ok(r.finish())
        }
        Record::Samples(groups) => {
            let mut r = SamplesRecord::new();
            for g in groups {
                let values = match &g.values {
                    Values::F64(v) => ValuesRef::F64(v),
                    Values::I64(v) => ValuesRef::I64(v),
                    Values::Bool(v) => ValuesRef::Bool(v),
                    Values::Str(v) => ValuesRef::Str(v),
                };
                r.push(g.series, &g.timestamps, values)?;
            }
            Ok(r.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(m: &str, tags: &[(&str, &str)], f: &str) -> SeriesKey {
        SeriesKey::new(
            m,
            tags.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            f,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn series_and_samples_round_trip() {
        let mut s = SeriesRecord::new();
        s.push(
            7,
            ValueType::Float,
            &key("cpu", &[("host", "a"), ("dc", "x")], "usage"),
        );
        s.push(8, ValueType::String, &key("log", &[], "msg"));
        let payload = s.finish();
        assert!(is_series_record(&payload));
        let rec = decode(&payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(encode(&rec), Ok(payload.clone()));
        let Record::Series(defs) = &rec else {
            panic!("{rec:?}")
        };
        assert_eq!(defs[0].key.tags()[0].0, "dc");

        let mut r = SamplesRecord::new();
        r.push(
            7,
            &[10, 5, i64::MAX],
            ValuesRef::F64(&[1.5, -0.0, f64::NAN]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        r.push(9, &[i64::MIN], ValuesRef::I64(&[-3]))
            .unwrap_or_else(|e| panic!("{e}"));
        r.push(10, &[1, 2], ValuesRef::Bool(&[true, false]))
            .unwrap_or_else(|e| panic!("{e}"));
        r.push(8, &[3], ValuesRef::Str(&["é \"x\"".to_string()]))
            .unwrap_or_else(|e| panic!("{e}"));
        r.push(11, &[], ValuesRef::I64(&[]))
            .unwrap_or_else(|e| panic!("{e}"));
        let payload = r.finish();
        let rec = decode(&payload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(encode(&rec), Ok(payload.clone()));
        let Record::Samples(groups) = &rec else {
            panic!("{rec:?}")
        };
        assert_eq!(groups.len(), 4);
        assert!(r_mismatch().is_err());
        assert_eq!(groups[0].timestamps, vec![10, 5, i64::MAX]);
        let Values::F64(v) = &groups[0].values else {
            panic!()
        };
        assert_eq!(v[1].to_bits(), (-0.0f64).to_bits());
        assert!(v[2].is_nan());
    }

    fn r_mismatch() -> Result<(), RecordError> {
        SamplesRecord::new().push(1, &[1, 2], ValuesRef::I64(&[1]))
    }

    #[test]
    fn damage_is_refused_with_its_offset() {
        let mut r = SamplesRecord::new();
        r.push(1, &[1, 2], ValuesRef::Bool(&[true, false]))
            .unwrap_or_else(|e| panic!("{e}"));
        let good = r.finish();
        // Truncation anywhere after the header.
        for cut in 6..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        // Header only: no entries.
        assert!(decode(&good[..6]).is_err());
        let mut bad = good.clone();
        bad[4] = 2;
        assert!(
            decode(&bad)
                .map_err(|e| e.to_string())
                .unwrap_err()
                .contains("version 2")
        );
        let mut bad = good.clone();
        *bad.last_mut().unwrap_or(&mut 0) = 7;
        assert!(
            decode(&bad)
                .map_err(|e| e.to_string())
                .unwrap_err()
                .contains("boolean byte 7")
        );
        let mut bad = good.clone();
        bad.push(0);
        assert!(decode(&bad).is_err(), "trailing byte");
        // A huge count allocates nothing.
        let mut huge = MAGIC.to_vec();
        huge.extend([VERSION, 2, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode(&huge).is_err());
    }
}
