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
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Floats.
    F64(Vec<f64>),
    /// Integers.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
}

impl Column {
    /// The type of its values.
    pub fn value_type(&self) -> ValueType {
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

    /// Room for `more` values, growing by half (not doubling): an open
    /// group of a few points then wastes less (see [`grow`]).
    fn reserve(&mut self, more: usize) {
        match self {
            Column::F64(c) => grow(c, more),
            Column::I64(c) => grow(c, more),
            Column::Bool(c) => grow(c, more),
        }
    }

    /// The value at `i`.
    pub fn get(&self, i: usize) -> Option<Value> {
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

    /// How many values it holds.
    pub fn len(&self) -> usize {
        match self {
            Column::F64(c) => c.len(),
            Column::I64(c) => c.len(),
            Column::Bool(c) => c.len(),
        }
    }

    /// `(ts[i], value i)` for each `i` in `range`: a timestamp column and
    /// this value column as points.
    pub(crate) fn points_at(&self, ts: &[i64], range: std::ops::Range<usize>) -> Vec<(i64, Value)> {
        range
            .filter_map(|i| Some((*ts.get(i)?, self.get(i)?)))
            .collect()
    }

    /// The values at `at`, in that order.
    pub(crate) fn gather(&self, at: &[usize]) -> Column {
        match self {
            Column::F64(c) => Column::F64(at.iter().map(|&i| c[i]).collect()),
            Column::I64(c) => Column::I64(at.iter().map(|&i| c[i]).collect()),
            Column::Bool(c) => Column::Bool(at.iter().map(|&i| c[i]).collect()),
        }
    }

    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append the values of `o` at `range` (nothing, and false, when the
    /// types differ).
    pub(crate) fn extend_from(&mut self, o: &Column, range: std::ops::Range<usize>) -> bool {
        match (self, o) {
            (Column::F64(a), Column::F64(b)) => a.extend_from_slice(&b[range]),
            (Column::I64(a), Column::I64(b)) => a.extend_from_slice(&b[range]),
            (Column::Bool(a), Column::Bool(b)) => a.extend_from_slice(&b[range]),
            _ => return false,
        }
        true
    }

    /// The values at `keep`'s true positions.
    fn select(&self, keep: &[bool]) -> Column {
        fn pick<T: Copy>(c: &[T], keep: &[bool]) -> Vec<T> {
            c.iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| *v)
                .collect()
        }
        match self {
            Column::F64(c) => Column::F64(pick(c, keep)),
            Column::I64(c) => Column::I64(pick(c, keep)),
            Column::Bool(c) => Column::Bool(pick(c, keep)),
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

/// Make room for `more` elements, growing by half of the length (at least
/// four): a million series of ten open points hold 13 slots each, not 16.
fn grow<T>(v: &mut Vec<T>, more: usize) {
    let need = v.len() + more;
    if need > v.capacity() {
        let want = need.max(v.len() + v.len() / 2).max(4);
        v.reserve_exact(want - v.len());
    }
}

/// A sealed group of points: both columns compressed.
#[derive(Debug)]
pub(crate) struct Chunk {
    timestamps: Box<[u8]>,
    values: Box<[u8]>,
    /// Points in it.
    len: u32,
    /// Its earliest timestamp.
    min_ts: i64,
    /// A WAL seq at or below that of the record of its first point (the
    /// log must be replayed from here to rebuild it).
    first_seq: u64,
}

impl Chunk {
    fn new(ts: &[i64], values: &Column, start: usize, end: usize, first_seq: u64) -> Chunk {
        let part = &ts[start..end];
        Chunk {
            timestamps: codec::encode_timestamps(part).into_boxed_slice(),
            values: values.encode_range(start, end).into_boxed_slice(),
            len: part.len() as u32,
            min_ts: part.iter().copied().min().unwrap_or(0),
            first_seq,
        }
    }

    /// Its points in append order.
    fn decode(&self, t: ValueType, key: &SeriesKey) -> Result<(Vec<i64>, Column), HeadError> {
        let bad = |e: crate::codec::CodecError| HeadError::Log(format!("head chunk of {key}: {e}"));
        let ts = codec::decode_timestamps(&self.timestamps).map_err(bad)?;
        let vals = Column::decode(t, &self.values).map_err(bad)?;
        if ts.len() != self.len as usize || vals.len() != ts.len() {
            return Err(HeadError::Log(format!(
                "head chunk of {key}: {} timestamps and {} values, expected {}",
                ts.len(),
                vals.len(),
                self.len
            )));
        }
        Ok((ts, vals))
    }
}

#[derive(Debug)]
pub(crate) struct HeadSeries {
    pub(crate) key: Arc<SeriesKey>,
    pub(crate) value_type: Option<ValueType>,
    pub(crate) logged: bool,
    /// Whether the series index of the head commit holds it.
    pub(crate) indexed: bool,
    /// A seq at or below its definition record's (while not indexed, the
    /// log must be replayed from here to know the series).
    def_seq: u64,
    chunks: Vec<Arc<Chunk>>,
    open_ts: Vec<i64>,
    open: Option<Column>,
    /// `(index into open_ts, seq)`: the record seq from each index on.
    open_seqs: Vec<(u32, u64)>,
    points: u64,
}

impl HeadSeries {
    fn new(key: Arc<SeriesKey>) -> HeadSeries {
        HeadSeries {
            key,
            value_type: None,
            logged: false,
            indexed: false,
            def_seq: 0,
            chunks: Vec::new(),
            open_ts: Vec::new(),
            open: None,
            open_seqs: Vec::new(),
            points: 0,
        }
    }

    /// The lowest seq the log must be replayed from to rebuild its points
    /// (and, until it is indexed, its definition).
    fn first_seq(&self) -> Option<u64> {
        let points = match self.chunks.first() {
            Some(c) => Some(c.first_seq),
            None => self.open_seqs.first().map(|r| r.1),
        };
        let def = (self.logged && !self.indexed).then_some(self.def_seq);
        match (points, def) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The seq of open point `i`.
    fn open_seq(&self, i: usize) -> u64 {
        let at = self.open_seqs.partition_point(|r| r.0 as usize <= i);
        self.open_seqs[at.saturating_sub(1)].1
    }

    /// Bytes this series holds in memory (points only).
    fn bytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.timestamps.len() + c.values.len())
            .sum::<usize>()
            + self.chunks.len() * std::mem::size_of::<Chunk>()
            + self.open_ts.len() * 16
            + self.open_seqs.len() * 12
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
    /// The points as a timestamp and a value column, sorted by time, one
    /// per timestamp (the last written); `None` for a series not yet typed.
    /// [`Snapshot::points`] reads these.
    pub(crate) fn columns(self) -> Result<Option<(Vec<i64>, Column)>, HeadError> {
        let s = self;
        let Some(t) = s.value_type else {
            return Ok(None);
        };
        let Some(mut vals) = Column::new(t) else {
            return Ok(None);
        };
        let mismatch = || HeadError::Log(format!("head of {}: a chunk of another type", s.key));
        let mut ts: Vec<i64> = Vec::with_capacity(s.points as usize);
        for c in &s.chunks {
            let (cts, cv) = c.decode(t, &s.key)?;
            let n = cts.len().min(cv.len());
            ts.extend_from_slice(&cts[..n]);
            if !vals.extend_from(&cv, 0..n) {
                return Err(mismatch());
            }
        }
        if let Some(open) = &s.open {
            let n = s.open_ts.len().min(open.len());
            ts.extend_from_slice(&s.open_ts[..n]);
            if !vals.extend_from(open, 0..n) {
                return Err(mismatch());
            }
        }
        if ts.windows(2).all(|w| w[0] < w[1]) {
            return Ok(Some((ts, vals)));
        }
        // Out of order or written twice: by time (stable), the last of each.
        let mut order: Vec<usize> = (0..ts.len()).collect();
        order.sort_by_key(|&i| ts[i]);
        let mut keep: Vec<usize> = Vec::with_capacity(order.len());
        for i in order {
            match keep.last_mut() {
                Some(l) if ts[*l] == ts[i] => *l = i,
                _ => keep.push(i),
            }
        }
        Ok(Some((
            keep.iter().map(|&i| ts[i]).collect(),
            vals.gather(&keep),
        )))
    }

    /// The points, sorted by time, one per timestamp (the last written).
    pub(crate) fn points(self) -> Result<Vec<(i64, Value)>, HeadError> {
        Ok(match self.columns()? {
            Some((ts, vals)) => vals.points_at(&ts, 0..ts.len()),
            None => Vec::new(),
        })
    }
}

/// Sort points by time (stably: equal timestamps keep append order) and
/// keep the last of each timestamp — last write wins.
pub(crate) fn last_per_timestamp(
    mut out: Vec<(i64, Value)>,
) -> Result<Vec<(i64, Value)>, HeadError> {
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
    /// The refs of each measurement's series, in the order made: a
    /// selector naming its measurement reads these, not every series.
    by_measurement: HashMap<Box<str>, Vec<u64>>,
    /// Per measurement, its series by tag value, built when a selector
    /// first names the measurement and a tag value (see [`TagIndex`]).
    by_tag: parking_lot::Mutex<HashMap<Box<str>, TagIndex>>,
    /// Boxed: a map bucket is then 16 bytes, and at a million series the
    /// table's spare buckets cost 16 bytes each, not a whole `HeadSeries`.
    series: HashMap<u64, Box<HeadSeries>>,
    next_ref: u64,
    points: u64,
    /// The seq of the last series record applied (the head reflects exactly
    /// the records up to it).
    pub(crate) last_seq: u64,
    /// The latest timestamp pushed since open (compaction's block cut).
    pub(crate) max_ts: Option<i64>,
    /// Bytes and points in sealed chunks (kept current for
    /// [`Head::bytes_estimate`]).
    sealed_bytes: usize,
    sealed_points: u64,
}

fn chunk_bytes(chunks: &[Arc<Chunk>]) -> (usize, u64) {
    chunks.iter().fold((0, 0), |(b, p), c| {
        (
            b + c.timestamps.len() + c.values.len() + std::mem::size_of::<Chunk>(),
            p + u64::from(c.len),
        )
    })
}

/// One measurement's series by tag value, as Prometheus's postings: the
/// refs of the series holding `tag=value`, under a hash of the pair (a
/// collision only lengthens a list: every key is still tested by the whole
/// selector). Built the first time a selector names the measurement and a
/// tag value, and brought up to date at each such read from the
/// measurement's list, which only grows; a measurement never read that way
/// costs nothing (the head's memory goal, 1M series with one unique tag
/// each, would not hold a per-series entry for every tag).
#[derive(Debug, Default)]
pub(crate) struct TagIndex {
    /// How much of the measurement's list is indexed.
    indexed: usize,
    lists: HashMap<u64, Vec<u64>>,
}

fn tag_hash(tag: &str, value: &str) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    // Fixed seeds: the same pair hashes the same at every read.
    let mut h = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
    tag.hash(&mut h);
    value.hash(&mut h);
    h.finish()
}

impl TagIndex {
    /// The shortest list among `tags` (each a pair every selected key
    /// holds), or `None` when the measurement's own list `all` is as short.
    fn shortest<'a>(
        &'a mut self,
        all: &'a [u64],
        tags: &[(&str, &str)],
        series: &HashMap<u64, Box<HeadSeries>>,
    ) -> Option<&'a [u64]> {
        for &r in &all[self.indexed.min(all.len())..] {
            if let Some(s) = series.get(&r) {
                for (t, v) in s.key.tags() {
                    self.lists.entry(tag_hash(t, v)).or_default().push(r);
                }
            }
        }
        self.indexed = all.len();
        tags.iter()
            .map(|(t, v)| {
                self.lists
                    .get(&tag_hash(t, v))
                    .map_or(&[][..], Vec::as_slice)
            })
            .min_by_key(|l| l.len())
            .filter(|l| l.len() < all.len())
    }
}

impl Head {
    pub(crate) fn new(next_ref: u64) -> Head {
        Head {
            next_ref: next_ref.max(1),
            ..Head::default()
        }
    }

    fn index_measurement(&mut self, key: &SeriesKey, r: u64) {
        match self.by_measurement.get_mut(key.measurement()) {
            Some(refs) => refs.push(r),
            None => {
                self.by_measurement
                    .insert(key.measurement().into(), vec![r]);
            }
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
        self.index_measurement(&key, r);
        self.series.insert(r, Box::new(HeadSeries::new(key)));
        SeriesRef(r)
    }

    pub(crate) fn get(&self, r: u64) -> Option<&HeadSeries> {
        self.series.get(&r).map(|b| &**b)
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

    /// Mark a series' definition as in the log at (or after) `seq`.
    pub(crate) fn mark_logged(&mut self, r: u64, seq: u64) {
        if let Some(s) = self.series.get_mut(&r)
            && !s.logged
        {
            s.logged = true;
            s.def_seq = seq;
        }
    }

    /// Append points of record `seq` to a typed series (the caller
    /// checked the type). Only copies: [`seal`](Head::seal) compresses full
    /// groups later, so the appender's call under the log's lock stays short.
    pub(crate) fn push(&mut self, r: u64, seq: u64, ts: &[i64], values: &Column) {
        let Some(s) = self.series.get_mut(&r) else {
            return;
        };
        let Some(open) = s.open.as_mut() else {
            return;
        };
        if s.open_seqs.last().is_none_or(|run| run.1 != seq) {
            if s.open_seqs.is_empty() {
                // Most series see one run per group: no room for four.
                s.open_seqs.reserve_exact(1);
            }
            s.open_seqs.push((s.open_ts.len() as u32, seq));
        }
        let n = ts.len().min(values.len());
        grow(&mut s.open_ts, n);
        open.reserve(n);
        for (i, &t) in ts.iter().enumerate() {
            let Some(v) = values.get(i) else { break };
            if !open.push(&v) {
                break;
            }
            s.open_ts.push(t);
            s.points += 1;
            self.points += 1;
            self.max_ts = Some(self.max_ts.map_or(t, |m| m.max(t)));
        }
    }

    /// Compress every full group of the series' open points, oldest first
    /// (order is kept, so sealing never changes which write is last).
    pub(crate) fn seal(&mut self, r: u64) {
        let Some(s) = self.series.get_mut(&r) else {
            return;
        };
        if s.open_ts.len() < CHUNK_POINTS {
            return;
        }
        let full = s.open_ts.len() / CHUNK_POINTS * CHUNK_POINTS;
        let mut sealed = Vec::with_capacity(full / CHUNK_POINTS);
        if let Some(open) = &s.open {
            for start in (0..full).step_by(CHUNK_POINTS) {
                let seq = s.open_seq(start);
                sealed.push(Arc::new(Chunk::new(
                    &s.open_ts,
                    open,
                    start,
                    start + CHUNK_POINTS,
                    seq,
                )));
            }
        }
        let rest_seq = s.open_seq(full);
        let (b, p) = chunk_bytes(&sealed);
        self.sealed_bytes += b;
        self.sealed_points += p;
        s.chunks.extend(sealed);
        s.open_ts.drain(..full);
        if let Some(open) = s.open.as_mut() {
            open.drain_front(full);
        }
        let mut runs = vec![(0u32, rest_seq)];
        runs.extend(
            s.open_seqs
                .iter()
                .filter(|r| r.0 as usize > full)
                .map(|r| (r.0 - full as u32, r.1)),
        );
        if s.open_ts.is_empty() {
            runs.clear();
        }
        s.open_seqs = runs;
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
        s.def_seq = seq;
        self.index_measurement(&key, d.series);
        self.by_key.insert(key, d.series);
        self.series.insert(d.series, Box::new(s));
        self.next_ref = self.next_ref.max(d.series.saturating_add(1));
        Ok(())
    }

    /// Apply a sample group read from the log, keeping only the points
    /// `keep` accepts (those compaction has not moved into segments).
    pub(crate) fn replay_samples(
        &mut self,
        seq: u64,
        g: &SampleGroup,
        keep: impl Fn(i64) -> bool,
    ) -> Result<(), HeadError> {
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
        let mask: Vec<bool> = g.timestamps.iter().map(|&t| keep(t)).collect();
        if mask.iter().all(|k| *k) {
            self.push(g.series, seq, &g.timestamps, &column);
        } else {
            let ts: Vec<i64> = g
                .timestamps
                .iter()
                .zip(&mask)
                .filter(|(_, k)| **k)
                .map(|(t, _)| *t)
                .collect();
            self.push(g.series, seq, &ts, &column.select(&mask));
        }
        self.seal(g.series);
        Ok(())
    }

    /// Load a series from the series index of the head commit.
    pub(crate) fn load_indexed(&mut self, d: &SeriesDef) -> Result<(), HeadError> {
        self.replay_def(0, d)?;
        if let Some(s) = self.series.get_mut(&d.series) {
            s.indexed = true;
        }
        Ok(())
    }

    /// Note that the series index of the head commit now holds `r`.
    pub(crate) fn mark_indexed(&mut self, r: u64) {
        if let Some(s) = self.series.get_mut(&r) {
            s.indexed = true;
        }
    }

    /// The lowest seq the log must be replayed from to rebuild the head's
    /// points (`u64::MAX` when it holds none).
    pub(crate) fn floor(&self) -> u64 {
        self.series
            .values()
            .filter_map(|s| s.first_seq())
            .min()
            .unwrap_or(u64::MAX)
    }

    /// What a compaction reads: every logged series (with its points up to
    /// now, shared or copied), and the seq of the last record they reflect.
    pub(crate) fn compaction_snapshot(&self) -> (u64, Vec<CompactSeries>) {
        let mut out = Vec::new();
        for (&r, s) in &self.series {
            let (Some(t), Some(open)) = (s.value_type, &s.open) else {
                continue;
            };
            if !s.logged || (s.points == 0 && s.indexed) {
                continue;
            }
            out.push(CompactSeries {
                series: r,
                key: s.key.clone(),
                value_type: t,
                indexed: s.indexed,
                chunks: s.chunks.clone(),
                open_ts: s.open_ts.clone(),
                open: open.clone(),
                open_seqs: s.open_seqs.clone(),
                n: s.points,
            });
        }
        out.sort_by_key(|c| c.series);
        (self.last_seq, out)
    }

    /// After a compaction commit landed: the first `n` points of series `r`
    /// (append order, as its snapshot saw them) become `survivors`; later
    /// points are kept as they are.
    pub(crate) fn replace_front(
        &mut self,
        r: u64,
        n: u64,
        survivors: Vec<Arc<Chunk>>,
    ) -> Result<(), HeadError> {
        let Some(s) = self.series.get_mut(&r) else {
            return Err(HeadError::UnknownRef(r));
        };
        let (Some(t), Some(open)) = (s.value_type, s.open.as_mut()) else {
            return Err(HeadError::UnknownRef(r));
        };
        let kept: u64 = survivors.iter().map(|c| u64::from(c.len)).sum();
        let mut chunks = survivors;
        let mut pos = 0u64;
        let mut cut_open = 0usize;
        for c in &s.chunks {
            let len = u64::from(c.len);
            if pos + len <= n {
                // Wholly covered by the snapshot: replaced by the survivors.
            } else if pos >= n {
                chunks.push(c.clone());
            } else {
                let (ts, vals) = c.decode(t, &s.key)?;
                let from = (n - pos) as usize;
                chunks.push(Arc::new(Chunk::new(
                    &ts,
                    &vals,
                    from,
                    ts.len(),
                    c.first_seq,
                )));
            }
            pos += len;
        }
        if n > pos {
            cut_open = ((n - pos) as usize).min(s.open_ts.len());
        }
        if cut_open > 0 {
            let rest_seq = (cut_open < s.open_ts.len()).then(|| {
                let at = s
                    .open_seqs
                    .partition_point(|run| run.0 as usize <= cut_open);
                s.open_seqs[at.saturating_sub(1)].1
            });
            s.open_ts.drain(..cut_open);
            open.drain_front(cut_open);
            let mut runs: Vec<(u32, u64)> = rest_seq.into_iter().map(|q| (0, q)).collect();
            runs.extend(
                s.open_seqs
                    .iter()
                    .filter(|run| run.0 as usize > cut_open)
                    .map(|run| (run.0 - cut_open as u32, run.1)),
            );
            s.open_seqs = runs;
        }
        let removed = n.saturating_sub(kept);
        let (ob, op) = chunk_bytes(&s.chunks);
        let (nb, np) = chunk_bytes(&chunks);
        self.sealed_bytes = (self.sealed_bytes + nb).saturating_sub(ob);
        self.sealed_points = (self.sealed_points + np).saturating_sub(op);
        s.chunks = chunks;
        s.points = s.points.saturating_sub(removed);
        self.points = self.points.saturating_sub(removed);
        Ok(())
    }

    /// Every series in the head with its type (typed ones only), by key.
    pub(crate) fn list(&self) -> Vec<(Arc<SeriesKey>, SeriesRef, ValueType, u64)> {
        self.list_where(None, &[], |_| true)
    }

    /// [`Head::list`] of the series whose key satisfies `keep` (filtered
    /// before sorting, so a selective read sorts only what it reads).
    /// The typed series whose key satisfies `keep`, by key; only those of
    /// `measurement` are looked at when it is given.
    /// `tags` are (tag, value) pairs every kept key holds (a selector's
    /// equality matchers with a non-empty value): only the shortest list
    /// among them and the measurement's is looked at, `keep` still decides.
    pub(crate) fn list_where(
        &self,
        measurement: Option<&str>,
        tags: &[(&str, &str)],
        mut keep: impl FnMut(&SeriesKey) -> bool,
    ) -> Vec<(Arc<SeriesKey>, SeriesRef, ValueType, u64)> {
        let mut v = Vec::new();
        let mut take = |r: u64, s: &HeadSeries| {
            if let Some(t) = s.value_type
                && keep(&s.key)
            {
                v.push((s.key.clone(), SeriesRef(r), t, s.points));
            }
        };
        match measurement {
            Some(m) => {
                let all = self.by_measurement.get(m).map_or(&[][..], Vec::as_slice);
                let mut index = self.by_tag.lock();
                let narrowed = match tags {
                    [] => None,
                    _ => index
                        .entry(m.into())
                        .or_default()
                        .shortest(all, tags, &self.series),
                };
                for &r in narrowed.unwrap_or(all) {
                    if let Some(s) = self.series.get(&r) {
                        take(r, s);
                    }
                }
            }
            None => {
                for (&r, s) in &self.series {
                    take(r, s);
                }
            }
        }
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
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

    /// About the bytes of point data in memory, in O(1): sealed chunks
    /// exactly, open points at 16 bytes each.
    pub(crate) fn bytes_estimate(&self) -> usize {
        self.sealed_bytes + (self.points.saturating_sub(self.sealed_points) as usize) * 16
    }

    /// Bytes of point data in memory.
    pub(crate) fn bytes(&self) -> usize {
        self.series.values().map(|s| s.bytes()).sum()
    }
}

/// One series as a compaction reads it (see [`Head::compaction_snapshot`]).
#[derive(Debug)]
pub(crate) struct CompactSeries {
    pub(crate) series: u64,
    pub(crate) key: Arc<SeriesKey>,
    pub(crate) value_type: ValueType,
    /// Whether the head commit's series index already holds it.
    pub(crate) indexed: bool,
    chunks: Vec<Arc<Chunk>>,
    open_ts: Vec<i64>,
    open: Column,
    open_seqs: Vec<(u32, u64)>,
    /// Its points in the head when the snapshot was taken.
    pub(crate) n: u64,
}

/// A series split by a compaction: the points that go into segments, and
/// the chunks that stay in the head.
#[derive(Debug, Default)]
pub(crate) struct Split {
    /// Points moving to segments, in append order.
    pub(crate) moved: Vec<(i64, Value)>,
    /// What stays, as chunks, in append order.
    pub(crate) survivors: Vec<Arc<Chunk>>,
    /// The lowest seq the survivors need replayed.
    pub(crate) first_seq: Option<u64>,
}

impl CompactSeries {
    /// Split the points: those before `cut` (all of them for `None`) go to
    /// segments.
    pub(crate) fn split(&self, cut: Option<i64>) -> Result<Split, HeadError> {
        let moves = |t: i64| cut.is_none_or(|c| t < c);
        let mut out = Split::default();
        let keep_part = |ts: &[i64], vals: &Column, first_seq: u64, out: &mut Split| {
            let mask: Vec<bool> = ts.iter().map(|&t| !moves(t)).collect();
            let mut kept_ts = Vec::new();
            for (i, &t) in ts.iter().enumerate() {
                if mask[i] {
                    kept_ts.push(t);
                } else if let Some(v) = vals.get(i) {
                    out.moved.push((t, v));
                }
            }
            if !kept_ts.is_empty() {
                let kept = vals.select(&mask);
                out.survivors.push(Arc::new(Chunk::new(
                    &kept_ts,
                    &kept,
                    0,
                    kept_ts.len(),
                    first_seq,
                )));
            }
        };
        for c in &self.chunks {
            if !moves(c.min_ts) {
                out.survivors.push(c.clone());
                continue;
            }
            let (ts, vals) = c.decode(self.value_type, &self.key)?;
            keep_part(&ts, &vals, c.first_seq, &mut out);
        }
        // Open points: survivors keep the seq of the first of them.
        let first_kept = self.open_ts.iter().position(|&t| !moves(t));
        if let Some(i) = first_kept {
            let at = self.open_seqs.partition_point(|run| run.0 as usize <= i);
            let seq = self.open_seqs.get(at.saturating_sub(1)).map_or(0, |r| r.1);
            keep_part(&self.open_ts, &self.open, seq, &mut out);
        } else {
            for (i, &t) in self.open_ts.iter().enumerate() {
                if let Some(v) = self.open.get(i) {
                    out.moved.push((t, v));
                }
            }
        }
        out.first_seq = out.survivors.iter().map(|c| c.first_seq).min();
        Ok(out)
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
        h.push(r.0, 1, &ts, &vals);
        // Overwrite t = 5 twice, the second write wins.
        h.push(r.0, 2, &[5, 5], &Column::F64(vec![-1.0, -2.0]));
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
        // The columns say the same, sealed and with an open group after an
        // out-of-order rewrite.
        h.push(r.0, 3, &[7, 400, 7], &Column::F64(vec![1.5, 4.0, 2.5]));
        for sealed in [false, true] {
            if sealed {
                h.seal(r.0);
            }
            let snap = || h.snapshot(r.0).unwrap_or_else(|e| panic!("{e}"));
            let p = snap().points().unwrap_or_else(|e| panic!("{e}"));
            let (ts, vals) = snap()
                .columns()
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("typed"));
            assert_eq!(p.len(), 301);
            assert_eq!(p[7], (7, Value::F64(2.5)));
            let from_columns: Vec<(i64, Value)> = ts
                .iter()
                .enumerate()
                .map(|(i, &t)| (t, vals.get(i).unwrap_or_else(|| panic!("short"))))
                .collect();
            assert_eq!(from_columns, p, "sealed: {sealed}");
        }
    }

    #[test]
    fn a_compaction_cut_keeps_later_appends_and_the_floor_follows() {
        let mut h = Head::new(1);
        let r = h.series(&key("f"));
        h.type_for(r.0, ValueType::Integer)
            .unwrap_or_else(|e| panic!("{e}"));
        h.mark_logged(r.0, 1);
        // 300 points from seqs 1..=3, times 0..300.
        for (seq, range) in [(1u64, 0..100i64), (2, 100..200), (3, 200..300)] {
            let ts: Vec<i64> = range.collect();
            h.push(r.0, seq, &ts, &Column::I64(ts.clone()));
            h.seal(r.0);
        }
        let (_, snaps) = h.compaction_snapshot();
        let split = snaps[0].split(Some(150)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(split.moved.len(), 150);
        assert!(
            split.first_seq.is_some_and(|s| s <= 2),
            "{:?}",
            split.first_seq
        );
        // A late write (t = 10) and a new one arrive before the commit lands.
        h.push(r.0, 4, &[10, 400], &Column::I64(vec![-10, 400]));
        h.seal(r.0);
        h.replace_front(r.0, snaps[0].n, split.survivors)
            .unwrap_or_else(|e| panic!("{e}"));
        h.mark_indexed(r.0);
        let p = h
            .snapshot(r.0)
            .and_then(Snapshot::points)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.len(), 152, "150 survivors and the two later points");
        assert_eq!(p[0], (10, Value::I64(-10)));
        assert_eq!(p[1], (150, Value::I64(150)));
        assert_eq!(p[151], (400, Value::I64(400)));
        assert_eq!(h.point_count(), 152);
        assert!(h.floor() >= 1 && h.floor() <= 2);
        // Everything moved: the floor is the later points' seq.
        let (_, snaps) = h.compaction_snapshot();
        let split = snaps[0].split(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(split.moved.len(), 152);
        h.replace_front(r.0, snaps[0].n, split.survivors)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.point_count(), 0);
        assert_eq!(h.floor(), u64::MAX);
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
            h.replay_samples(5, &g, |_| true)
                .unwrap_err()
                .to_string()
                .contains("99")
        );
    }
}
