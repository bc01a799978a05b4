//! The head: the points of every series that compaction has not yet moved
//! into segments, in memory, rebuilt from the WAL at open.
//!
//! Each series keeps its points in append order (which is log order: the
//! appender applies a commit's points under the log's lock, right after its
//! records are queued; see [`crate::wal::Wal::append_batch_then`]). Full
//! groups of [`CHUNK_POINTS`] are sealed with the series column codecs, so a
//! point costs its compressed size plus a share of the open group's 16 bytes;
//! reading a series decodes its chunks, sorts by time (stable) and keeps the
//! last point of each timestamp — last write wins, exactly as replaying the
//! log would decide.
//!
//! Invariants:
//! - a series' type is set once; every point it holds has that type;
//! - a series is `logged` once a definition record for it is in the log,
//!   and no sample record of it is queued before that (the appender adds a
//!   definition to any commit whose series is not yet logged, and replay
//!   accepts a repeated, identical definition);
//! - refs are never reused: `next_ref` is above every ref the log names.

use ahash::AHashMap as HashMap;
use std::sync::Arc;

use super::codec;
use super::key::{SeriesKey, Value, ValueType};
use super::record::{SampleGroup, SeriesDef, Values};

/// Points per sealed chunk.
pub const CHUNK_POINTS: usize = 128;

/// The highest series ref a log may name (refs count up from 1; the bound
/// keeps `next_ref` far from overflow whatever a damaged log says).
pub const MAX_REF: u64 = 1 << 62;

/// A handle to a series, from [`crate::Engine::series`]: reuse it for every
/// point of that series so its key is not looked up again. Valid for the
/// engine that returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesRef(pub(crate) u64);

impl SeriesRef {
    /// The number the log knows the series by.
    pub fn id(self) -> u64 {
        self.0
    }
}

/// A column of values of one type, in memory.
#[derive(Clone, Debug)]
pub(crate) enum Column {
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl Column {
    /// The type of its values.
    pub(crate) fn value_type(&self) -> ValueType {
        match self {
            Column::F64(_) => ValueType::Float,
            Column::I64(_) => ValueType::Integer,
            Column::Bool(_) => ValueType::Boolean,
        }
    }

    /// An empty column of type `t` (none for strings, which are not stored).
    pub(crate) fn new(t: ValueType) -> Option<Column> {
        match t {
            ValueType::Float => Some(Column::F64(Vec::new())),
            ValueType::Integer => Some(Column::I64(Vec::new())),
            ValueType::Boolean => Some(Column::Bool(Vec::new())),
            _ => None,
        }
    }

    /// Append `v`; false (nothing appended) when its type is not the column's.
    pub(crate) fn push(&mut self, v: &Value) -> bool {
        match (self, v) {
            (Column::F64(c), Value::F64(x)) => c.push(*x),
            (Column::I64(c), Value::I64(x)) => c.push(*x),
            (Column::Bool(c), Value::Bool(x)) => c.push(*x),
            _ => return false,
        }
        true
    }

    fn get(&self, i: usize) -> Option<Value> {
        match self {
            Column::F64(c) => c.get(i).map(|v| Value::F64(*v)),
            Column::I64(c) => c.get(i).map(|v| Value::I64(*v)),
            Column::Bool(c) => c.get(i).map(|v| Value::Bool(*v)),
        }
    }

    fn encode_range(&self, start: usize, end: usize) -> Vec<u8> {
        match self {
            Column::F64(c) => codec::encode_f64(&c[start..end]),
            Column::I64(c) => codec::encode_i64(&c[start..end]),
            Column::Bool(c) => codec::encode_bool(&c[start..end]),
        }
    }

    fn drain_front(&mut self, n: usize) {
        match self {
            Column::F64(c) => drop(c.drain(..n)),
            Column::I64(c) => drop(c.drain(..n)),
            Column::Bool(c) => drop(c.drain(..n)),
        }
    }

    fn decode(t: ValueType, b: &[u8]) -> Result<Column, crate::codec::CodecError> {
        Ok(match t {
            ValueType::Integer => Column::I64(codec::decode_i64(b)?),
            ValueType::Boolean => Column::Bool(codec::decode_bool(b)?),
            _ => Column::F64(codec::decode_f64(b)?),
        })
    }
}

/// A sealed group of points: both columns compressed.
#[derive(Debug)]
struct Chunk {
    timestamps: Box<[u8]>,
    values: Box<[u8]>,
}

#[derive(Debug)]
pub(crate) struct HeadSeries {
    pub(crate) key: Arc<SeriesKey>,
    pub(crate) value_type: Option<ValueType>,
    pub(crate) logged: bool,
    chunks: Vec<Arc<Chunk>>,
    open_ts: Vec<i64>,
    open: Option<Column>,
    points: u64,
}

impl HeadSeries {
    fn new(key: Arc<SeriesKey>) -> HeadSeries {
        HeadSeries {
            key,
            value_type: None,
            logged: false,
            chunks: Vec::new(),
            open_ts: Vec::new(),
            open: None,
            points: 0,
        }
    }

    /// Bytes this series holds in memory (points only).
    fn bytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.timestamps.len() + c.values.len())
            .sum::<usize>()
            + self.open_ts.len() * 16
    }
}

/// A series' head data, copied out under the lock (sealed chunks shared).
#[derive(Debug)]
pub(crate) struct Snapshot {
    key: Arc<SeriesKey>,
    value_type: Option<ValueType>,
    chunks: Vec<Arc<Chunk>>,
    open_ts: Vec<i64>,
    open: Option<Column>,
    points: u64,
}

impl Snapshot {
    /// The points, sorted by time, one per timestamp (the last written).
    pub(crate) fn points(self) -> Result<Vec<(i64, Value)>, HeadError> {
        let s = self;
        let Some(t) = s.value_type else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(i64, Value)> = Vec::with_capacity(s.points as usize);
        for c in &s.chunks {
            let ts = codec::decode_timestamps(&c.timestamps)
                .map_err(|e| HeadError::Log(format!("head chunk of {}: {e}", s.key)))?;
            let vals = Column::decode(t, &c.values)
                .map_err(|e| HeadError::Log(format!("head chunk of {}: {e}", s.key)))?;
            for (i, t) in ts.into_iter().enumerate() {
                if let Some(v) = vals.get(i) {
                    out.push((t, v));
                }
            }
        }
        if let Some(open) = &s.open {
            for (i, &t) in s.open_ts.iter().enumerate() {
                if let Some(v) = open.get(i) {
                    out.push((t, v));
                }
            }
        }
        // Stable: equal timestamps keep append order, and the last wins.
        out.sort_by_key(|p| p.0);
        let mut dedup: Vec<(i64, Value)> = Vec::with_capacity(out.len());
        for p in out {
            match dedup.last_mut() {
                Some(last) if last.0 == p.0 => *last = p,
                _ => dedup.push(p),
            }
        }
        Ok(dedup)
    }
}

/// Why the head refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// A point of another type than its series holds.
    #[error("series {key} holds {has} values, not {}", got.with_article())]
    Type {
        /// The series.
        key: String,
        /// Its type.
        has: ValueType,
        /// The point's.
        got: ValueType,
    },
    /// String values are not stored.
    #[error("series {key}: string values are not stored (only float, integer and boolean)")]
    StringValue {
        /// The series.
        key: String,
    },
    /// A ref this engine never handed out.
    #[error("no series with ref {0}")]
    UnknownRef(u64),
    /// A log record that contradicts the head.
    #[error("{0}")]
    Log(String),
}

/// The head. Guarded by one mutex in the engine.
#[derive(Debug, Default)]
pub(crate) struct Head {
    /// Why the rebuild at open failed, if it did: every series operation
    /// then refuses with it (the engine still opens, for fsck, gc and
    /// `wal repair`).
    pub(crate) broken: Option<String>,
    by_key: HashMap<Arc<SeriesKey>, u64>,
    series: HashMap<u64, HeadSeries>,
    next_ref: u64,
    points: u64,
}

impl Head {
    pub(crate) fn new(next_ref: u64) -> Head {
        Head {
            next_ref: next_ref.max(1),
            ..Head::default()
        }
    }

    /// The ref of `key`, made (untyped, not yet logged) if it is new.
    pub(crate) fn series(&mut self, key: &SeriesKey) -> SeriesRef {
        if let Some(&r) = self.by_key.get(key) {
            return SeriesRef(r);
        }
        let r = self.next_ref;
        self.next_ref += 1;
        let key = Arc::new(key.clone());
        self.by_key.insert(key.clone(), r);
        self.series.insert(r, HeadSeries::new(key));
        SeriesRef(r)
    }

    pub(crate) fn get(&self, r: u64) -> Option<&HeadSeries> {
        self.series.get(&r)
    }

    pub(crate) fn ref_of(&self, key: &SeriesKey) -> Option<SeriesRef> {
        self.by_key.get(key).map(|&r| SeriesRef(r))
    }

    /// Check `t` against the series' type, setting it if it has none.
    pub(crate) fn type_for(&mut self, r: u64, t: ValueType) -> Result<(), HeadError> {
        let s = self.series.get_mut(&r).ok_or(HeadError::UnknownRef(r))?;
        if t == ValueType::String {
            return Err(HeadError::StringValue {
                key: s.key.to_string(),
            });
        }
        match s.value_type {
            None => {
                s.value_type = Some(t);
                s.open = Column::new(t);
                Ok(())
            }
            Some(has) if has == t => Ok(()),
            Some(has) => Err(HeadError::Type {
                key: s.key.to_string(),
                has,
                got: t,
            }),
        }
    }

    /// Mark a series' definition as in the log.
    pub(crate) fn mark_logged(&mut self, r: u64) {
        if let Some(s) = self.series.get_mut(&r) {
            s.logged = true;
        }
    }

    /// Append points to a typed series (the caller checked the type).
    /// Only copies: [`seal`](Head::seal) compresses full groups later, so
    /// the appender's call under the log's lock stays short.
    pub(crate) fn push(&mut self, r: u64, ts: &[i64], values: &Column) {
        let Some(s) = self.series.get_mut(&r) else {
            return;
        };
        let Some(open) = s.open.as_mut() else {
            return;
        };
        for (i, &t) in ts.iter().enumerate() {
            let Some(v) = values.get(i) else { break };
            if !open.push(&v) {
                break;
            }
            s.open_ts.push(t);
            s.points += 1;
            self.points += 1;
        }
    }

    /// Compress every full group of the series' open points, oldest first
    /// (order is kept, so sealing never changes which write is last).
    pub(crate) fn seal(&mut self, r: u64) {
        let Some(s) = self.series.get_mut(&r) else {
            return;
        };
        let Some(open) = s.open.as_mut() else {
            return;
        };
        if s.open_ts.len() < CHUNK_POINTS {
            return;
        }
        let full = s.open_ts.len() / CHUNK_POINTS * CHUNK_POINTS;
        for start in (0..full).step_by(CHUNK_POINTS) {
            let end = start + CHUNK_POINTS;
            s.chunks.push(Arc::new(Chunk {
                timestamps: codec::encode_timestamps(&s.open_ts[start..end]).into_boxed_slice(),
                values: open.encode_range(start, end).into_boxed_slice(),
            }));
        }
        s.open_ts.drain(..full);
        open.drain_front(full);
    }

    /// Apply a definition read from the log (seq names it in errors).
    pub(crate) fn replay_def(&mut self, seq: u64, d: &SeriesDef) -> Result<(), HeadError> {
        if d.series == 0 || d.series > MAX_REF {
            return Err(HeadError::Log(format!(
                "record {seq} defines series ref {}, outside 1..={MAX_REF}",
                d.series
            )));
        }
        if let Some(s) = self.series.get(&d.series) {
            if *s.key != d.key || s.value_type != Some(d.value_type) {
                return Err(HeadError::Log(format!(
                    "record {seq} defines series ref {} as {} ({}), but it is already {} ({})",
                    d.series,
                    d.key,
                    d.value_type,
                    s.key,
                    s.value_type
                        .map_or("untyped".to_string(), |t| t.to_string())
                )));
            }
            return Ok(());
        }
        if let Some(&other) = self.by_key.get(&d.key) {
            return Err(HeadError::Log(format!(
                "record {seq} defines {} as series ref {}, but it is ref {other}",
                d.key, d.series
            )));
        }
        if d.value_type == ValueType::String {
            return Err(HeadError::Log(format!(
                "record {seq} defines {} with string values, which are not stored",
                d.key
            )));
        }
        let key = Arc::new(d.key.clone());
        let mut s = HeadSeries::new(key.clone());
        s.value_type = Some(d.value_type);
        s.open = Column::new(d.value_type);
        s.logged = true;
        self.by_key.insert(key, d.series);
        self.series.insert(d.series, s);
        self.next_ref = self.next_ref.max(d.series.saturating_add(1));
        Ok(())
    }

    /// Apply a sample group read from the log.
    pub(crate) fn replay_samples(&mut self, seq: u64, g: &SampleGroup) -> Result<(), HeadError> {
        let Some(s) = self.series.get(&g.series) else {
            return Err(HeadError::Log(format!(
                "record {seq} holds samples of series ref {}, which no earlier record defines",
                g.series
            )));
        };
        let t = g.values.value_type();
        if s.value_type != Some(t) {
            return Err(HeadError::Log(format!(
                "record {seq} holds {t} samples of {}, which holds {}",
                s.key,
                s.value_type
                    .map_or("untyped".to_string(), |t| t.to_string())
            )));
        }
        let column = match &g.values {
            Values::F64(v) => Column::F64(v.clone()),
            Values::I64(v) => Column::I64(v.clone()),
            Values::Bool(v) => Column::Bool(v.clone()),
            _ => {
                return Err(HeadError::Log(format!("record {seq} holds string samples")));
            }
        };
        self.push(g.series, &g.timestamps, &column);
        self.seal(g.series);
        Ok(())
    }

    /// Every series in the head with its type (typed ones only), by key.
    pub(crate) fn list(&self) -> Vec<(Arc<SeriesKey>, SeriesRef, ValueType, u64)> {
        let mut v: Vec<_> = self
            .series
            .iter()
            .filter_map(|(&r, s)| Some((s.key.clone(), SeriesRef(r), s.value_type?, s.points)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// What reading a series needs, taken under the head's lock; the
    /// decoding happens after it is released ([`Snapshot::points`]).
    pub(crate) fn snapshot(&self, r: u64) -> Result<Snapshot, HeadError> {
        let s = self.series.get(&r).ok_or(HeadError::UnknownRef(r))?;
        Ok(Snapshot {
            key: s.key.clone(),
            value_type: s.value_type,
            chunks: s.chunks.clone(),
            open_ts: s.open_ts.clone(),
            open: s.open.clone(),
            points: s.points,
        })
    }

    /// Points held (as appended, duplicates included).
    pub(crate) fn point_count(&self) -> u64 {
        self.points
    }

    /// Series with a type.
    pub(crate) fn series_count(&self) -> usize {
        self.series
            .values()
            .filter(|s| s.value_type.is_some())
            .count()
    }

    /// Bytes of point data in memory.
    pub(crate) fn bytes(&self) -> usize {
        self.series.values().map(HeadSeries::bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: &str) -> SeriesKey {
        SeriesKey::new("m", Vec::<(String, String)>::new(), f).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn last_write_wins_across_chunks_and_order_is_by_time() {
        let mut h = Head::new(1);
        let r = h.series(&key("f"));
        h.type_for(r.0, ValueType::Float)
            .unwrap_or_else(|e| panic!("{e}"));
        let ts: Vec<i64> = (0..300).rev().collect();
        let vals = Column::F64(ts.iter().map(|&t| t as f64).collect());
        h.push(r.0, &ts, &vals);
        // Overwrite t = 5 twice, the second write wins.
        h.push(r.0, &[5, 5], &Column::F64(vec![-1.0, -2.0]));
        h.seal(r.0);
        let p = h
            .snapshot(r.0)
            .and_then(Snapshot::points)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.len(), 300);
        assert!(p.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(p[5], (5, Value::F64(-2.0)));
        assert_eq!(p[299], (299, Value::F64(299.0)));
        assert!(h.bytes() < 302 * 16, "chunks are compressed: {}", h.bytes());
    }

    #[test]
    fn types_are_fixed_and_strings_refused() {
        let mut h = Head::new(1);
        let r = h.series(&key("f"));
        assert!(h.type_for(r.0, ValueType::String).is_err());
        h.type_for(r.0, ValueType::Integer)
            .unwrap_or_else(|e| panic!("{e}"));
        let e = h.type_for(r.0, ValueType::Float).unwrap_err().to_string();
        assert!(e.contains("integer") && e.contains("float"), "{e}");
    }

    #[test]
    fn replayed_definitions_must_agree() {
        let mut h = Head::new(1);
        let d = SeriesDef {
            series: 7,
            value_type: ValueType::Float,
            key: key("f"),
        };
        h.replay_def(1, &d).unwrap_or_else(|e| panic!("{e}"));
        h.replay_def(2, &d).unwrap_or_else(|e| panic!("{e}"));
        let mut other = d.clone();
        other.value_type = ValueType::Integer;
        assert!(h.replay_def(3, &other).is_err());
        let mut moved = d.clone();
        moved.series = 8;
        assert!(h.replay_def(4, &moved).is_err());
        assert_eq!(h.series(&key("g")).0, 8, "refs continue after the log's");
        let g = SampleGroup {
            series: 99,
            timestamps: vec![1],
            values: Values::F64(vec![1.0]),
        };
        assert!(
            h.replay_samples(5, &g)
                .unwrap_err()
                .to_string()
                .contains("99")
        );
    }
}
