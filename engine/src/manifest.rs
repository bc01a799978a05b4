//! Segment manifests: the blob describing one compacted segment of one
//! series at one rollup, stored at `series/<series>/<rollup>/<segment>/manifest`
//! beside its `columns/<name>` blobs.
//!
//! Encoding (all integers little-endian):
//! ```text
//! 4    magic "SYSM"
//! 1    version = 1
//! 3    reserved, 0
//! u16 len + UTF-8   series id       (a valid tree entry name)
//! u16 len + UTF-8   rollup          (a valid tree entry name)
//! u16 len + UTF-8   segment id      (a valid tree entry name)
//! i64  min timestamp (ns)
//! i64  max timestamp (ns)           min <= max
//! u64  row count
//! u32  column count, then per column, strictly ascending by name bytes:
//!      u16 len + UTF-8   name       (a valid tree entry name)
//!      u8   type   1 f64, 2 i64, 3 u64, 4 bool, 5 bytes, 6 timestamp
//!      u8   codec  0 raw, 1 delta-of-delta varint, 2 Gorilla XOR, 3 zigzag varint
//!      u64  value count (non-null)
//!      u64  null count               value count + null count = row count
//!      u16 len + bytes  min          empty = none; 8 bytes LE for numeric types, 1 for bool
//!      u16 len + bytes  max          same rules
//!      u64  stored bytes (size of the column blob)
//! u32  meta count, then per pair, strictly ascending by key bytes:
//!      u16 len + UTF-8 key, u32 len + value bytes
//! ```
//! The decoder accepts exactly what the encoder writes (canonical), rejects
//! trailing bytes and never allocates more than the input can justify.

use std::collections::BTreeMap;

use sydra_objects::decode::{Cursor, DecodeError, What};
use sydra_objects::validate_name;

const MAGIC: [u8; 4] = *b"SYSM";
const VERSION: u8 = 1;
const WHAT: What = What::Other("segment manifest");

/// A column's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ColumnType {
    /// IEEE 754 double.
    F64 = 1,
    /// Signed 64-bit.
    I64 = 2,
    /// Unsigned 64-bit.
    U64 = 3,
    /// Boolean.
    Bool = 4,
    /// Opaque bytes.
    Bytes = 5,
    /// Nanoseconds since the epoch (i64).
    Timestamp = 6,
}

impl ColumnType {
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => ColumnType::F64,
            2 => ColumnType::I64,
            3 => ColumnType::U64,
            4 => ColumnType::Bool,
            5 => ColumnType::Bytes,
            6 => ColumnType::Timestamp,
            _ => return None,
        })
    }

    /// Allowed lengths of an encoded min/max (besides 0 = none).
    fn stat_len(self) -> Option<usize> {
        match self {
            ColumnType::F64 | ColumnType::I64 | ColumnType::U64 | ColumnType::Timestamp => Some(8),
            ColumnType::Bool => Some(1),
            ColumnType::Bytes => None,
        }
    }
}

/// How a column blob is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Codec {
    /// Values as they are.
    Raw = 0,
    /// Delta-of-delta, zigzag varints (timestamps).
    DeltaOfDelta = 1,
    /// Gorilla-style XOR of consecutive f64 bit patterns.
    GorillaXor = 2,
    /// Zigzag varints.
    Varint = 3,
}

impl Codec {
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Codec::Raw,
            1 => Codec::DeltaOfDelta,
            2 => Codec::GorillaXor,
            3 => Codec::Varint,
            _ => return None,
        })
    }
}

/// Statistics of one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnStats {
    /// Column name (its blob is `columns/<name>`).
    pub name: String,
    /// Value type.
    pub ty: ColumnType,
    /// Encoding of the column blob.
    pub codec: Codec,
    /// Non-null values.
    pub value_count: u64,
    /// Nulls.
    pub null_count: u64,
    /// Smallest value, encoded (empty: none).
    pub min: Vec<u8>,
    /// Largest value, encoded (empty: none).
    pub max: Vec<u8>,
    /// Size of the column blob.
    pub stored_bytes: u64,
}

/// The manifest of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentManifest {
    /// Series id.
    pub series: String,
    /// Rollup (e.g. `raw`, `1m`, `1h`).
    pub rollup: String,
    /// Segment id (e.g. the hour it covers).
    pub segment: String,
    /// Earliest timestamp, ns.
    pub min_ts: i64,
    /// Latest timestamp, ns.
    pub max_ts: i64,
    /// Rows.
    pub row_count: u64,
    /// Columns, ascending by name.
    pub columns: Vec<ColumnStats>,
    /// Extra metadata.
    pub meta: BTreeMap<String, Vec<u8>>,
}

/// Why a manifest cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid segment manifest: {0}")]
pub struct ManifestError(pub String);

fn put_str16(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s);
}

impl SegmentManifest {
    /// The tree path of this segment: `series/<series>/<rollup>/<segment>`.
    pub fn path(&self) -> String {
        segment_path(&self.series, &self.rollup, &self.segment)
    }

    /// Check every rule the decoder enforces.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let e = |m: String| Err(ManifestError(m));
        for (what, n) in [
            ("series", &self.series),
            ("rollup", &self.rollup),
            ("segment", &self.segment),
        ] {
            if let Err(err) = validate_name(n.as_bytes()) {
                return e(format!("{what} {n:?}: {err}"));
            }
        }
        if self.min_ts > self.max_ts {
            return e(format!(
                "min timestamp {} is after max timestamp {}",
                self.min_ts, self.max_ts
            ));
        }
        for w in self.columns.windows(2) {
            if w[0].name.as_bytes() >= w[1].name.as_bytes() {
                return e(format!(
                    "columns {:?} and {:?} are not strictly ascending",
                    w[0].name, w[1].name
                ));
            }
        }
        for c in &self.columns {
            if let Err(err) = validate_name(c.name.as_bytes()) {
                return e(format!("column {:?}: {err}", c.name));
            }
            if c.value_count.checked_add(c.null_count) != Some(self.row_count) {
                return e(format!(
                    "column {:?}: {} values + {} nulls != {} rows",
                    c.name, c.value_count, c.null_count, self.row_count
                ));
            }
            for (which, v) in [("min", &c.min), ("max", &c.max)] {
                if v.len() > usize::from(u16::MAX) {
                    return e(format!("column {:?}: {which} is too long", c.name));
                }
                if let Some(l) = c.ty.stat_len()
                    && !v.is_empty()
                    && v.len() != l
                {
                    return e(format!(
                        "column {:?}: {which} must be 0 or {l} bytes for {:?}",
                        c.name, c.ty
                    ));
                }
            }
        }
        for (k, v) in &self.meta {
            if k.len() > usize::from(u16::MAX) || v.len() > u32::MAX as usize {
                return e(format!("meta {k:?} is too long"));
            }
        }
        Ok(())
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Result<Vec<u8>, ManifestError> {
        self.validate()?;
        let mut out = Vec::with_capacity(64 + self.columns.len() * 64);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&[0, 0, 0]);
        for s in [&self.series, &self.rollup, &self.segment] {
            put_str16(&mut out, s.as_bytes());
        }
        out.extend_from_slice(&self.min_ts.to_le_bytes());
        out.extend_from_slice(&self.max_ts.to_le_bytes());
        out.extend_from_slice(&self.row_count.to_le_bytes());
        out.extend_from_slice(&(self.columns.len() as u32).to_le_bytes());
        for c in &self.columns {
            put_str16(&mut out, c.name.as_bytes());
            out.push(c.ty as u8);
            out.push(c.codec as u8);
            out.extend_from_slice(&c.value_count.to_le_bytes());
            out.extend_from_slice(&c.null_count.to_le_bytes());
            put_str16(&mut out, &c.min);
            put_str16(&mut out, &c.max);
            out.extend_from_slice(&c.stored_bytes.to_le_bytes());
        }
        out.extend_from_slice(&(self.meta.len() as u32).to_le_bytes());
        for (k, v) in &self.meta {
            put_str16(&mut out, k.as_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
        Ok(out)
    }

    /// Strict decoding.
    pub fn decode(b: &[u8]) -> Result<SegmentManifest, DecodeError> {
        let mut c = Cursor::new(b, WHAT);
        if c.array::<4>("magic")? != MAGIC {
            return Err(c.err_at(0, "bad magic (expected \"SYSM\")"));
        }
        let v = c.u8("version")?;
        if v != VERSION {
            return Err(c.err_at(4, format!("unsupported version {v}")));
        }
        if c.array::<3>("reserved")? != [0, 0, 0] {
            return Err(c.err_at(5, "reserved bytes are not zero"));
        }
        let str16 = |c: &mut Cursor<'_>, field: &str| -> Result<String, DecodeError> {
            let n = usize::from(c.u16(field)?);
            let at = c.pos();
            let raw = c.take(n, field)?;
            std::str::from_utf8(raw)
                .map(str::to_owned)
                .map_err(|_| c.err_at(at, format!("{field} is not UTF-8")))
        };
        let series = str16(&mut c, "series")?;
        let rollup = str16(&mut c, "rollup")?;
        let segment = str16(&mut c, "segment")?;
        let min_ts = c.i64("min timestamp")?;
        let max_ts = c.i64("max timestamp")?;
        let row_count = c.u64("row count")?;
        let n = c.count("column count", 2 + 1 + 1 + 8 + 8 + 2 + 2 + 8)?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            let name = str16(&mut c, "column name")?;
            let at = c.pos();
            let ty = c.u8("column type")?;
            let ty = ColumnType::from_code(ty)
                .ok_or_else(|| c.err_at(at, format!("unknown column type {ty}")))?;
            let codec = c.u8("codec")?;
            let codec = Codec::from_code(codec)
                .ok_or_else(|| c.err_at(at + 1, format!("unknown codec {codec}")))?;
            let value_count = c.u64("value count")?;
            let null_count = c.u64("null count")?;
            let l = usize::from(c.u16("min length")?);
            let min = c.take(l, "min")?.to_vec();
            let l = usize::from(c.u16("max length")?);
            let max = c.take(l, "max")?.to_vec();
            let stored_bytes = c.u64("stored bytes")?;
            columns.push(ColumnStats {
                name,
                ty,
                codec,
                value_count,
                null_count,
                min,
                max,
                stored_bytes,
            });
        }
        let n = c.count("meta count", 2 + 4)?;
        let mut meta = BTreeMap::new();
        let mut last: Option<String> = None;
        for _ in 0..n {
            let at = c.pos();
            let k = str16(&mut c, "meta key")?;
            if last.as_ref().is_some_and(|p| p.as_bytes() >= k.as_bytes()) {
                return Err(c.err_at(at, format!("meta key {k:?} is not strictly ascending")));
            }
            let l = c.u32("meta value length")? as usize;
            let v = c.take(l, "meta value")?.to_vec();
            last = Some(k.clone());
            meta.insert(k, v);
        }
        c.finish()?;
        let m = SegmentManifest {
            series,
            rollup,
            segment,
            min_ts,
            max_ts,
            row_count,
            columns,
            meta,
        };
        m.validate().map_err(|e| DecodeError {
            what: WHAT,
            offset: 0,
            reason: e.0,
        })?;
        Ok(m)
    }
}

/// `series/<series>/<rollup>/<segment>`.
pub fn segment_path(series: &str, rollup: &str, segment: &str) -> String {
    format!("series/{series}/{rollup}/{segment}")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> SegmentManifest {
        SegmentManifest {
            series: "cpu.host-a".into(),
            rollup: "raw".into(),
            segment: "2026-11-21T10".into(),
            min_ts: 10,
            max_ts: 20,
            row_count: 3,
            columns: vec![
                ColumnStats {
                    name: "ts".into(),
                    ty: ColumnType::Timestamp,
                    codec: Codec::DeltaOfDelta,
                    value_count: 3,
                    null_count: 0,
                    min: 10i64.to_le_bytes().to_vec(),
                    max: 20i64.to_le_bytes().to_vec(),
                    stored_bytes: 5,
                },
                ColumnStats {
                    name: "value".into(),
                    ty: ColumnType::F64,
                    codec: Codec::GorillaXor,
                    value_count: 2,
                    null_count: 1,
                    min: 1.5f64.to_le_bytes().to_vec(),
                    max: vec![],
                    stored_bytes: 9,
                },
            ],
            meta: [("unit".to_owned(), b"percent".to_vec())]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn round_trip_and_rules() {
        let m = sample();
        let b = m.encode().unwrap();
        assert_eq!(SegmentManifest::decode(&b).unwrap(), m);
        let mut t = b.clone();
        t.push(0);
        assert!(SegmentManifest::decode(&t).is_err());
        let mut bad = m.clone();
        bad.columns[1].null_count = 0;
        assert!(bad.encode().is_err());
        let mut bad = m.clone();
        bad.columns.swap(0, 1);
        assert!(bad.encode().is_err());
        let mut bad = m.clone();
        bad.series = "a/b".into();
        assert!(bad.encode().is_err());
        let mut bad = m;
        bad.columns[0].min = vec![1, 2];
        assert!(bad.encode().is_err());
        for i in 0..b.len() {
            let mut f = b.clone();
            f[i] ^= 0xff;
            if let Ok(d) = SegmentManifest::decode(&f) {
                assert_eq!(
                    d.encode().unwrap(),
                    f,
                    "accepted flip at {i} must be canonical"
                );
            }
        }
    }
}
