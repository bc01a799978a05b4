//! Rollups (FORMAT.md §18): per-minute statistics of a segment, written
//! beside it at compaction, so an aggregate whose step is a whole number of
//! minutes reads one value per minute instead of every point.
//!
//! ```text
//! series/<aa>/<30 hex>/<block>.1m
//! ```
//!
//! A rollup is written only where it pays: when the segment averages at
//! least [`MIN_POINTS_PER_BUCKET`] points per minute it covers (a series
//! scraped every 30 s or faster); a slower series' raw points are already
//! as small. Integer segments whose per-minute sums leave i64 get none.
//!
//! The blob:
//!
//! ```text
//! 0  4  magic "SYRU"
//! 4  1  version = 1
//! 5  1  type: 1 float, 2 integer, 3 boolean
//! 6  …  varint step (ns), varint bucket count n (>= 1),
//!       then columns, each a varint byte length and a series codec column
//!       of n values: bucket starts (timestamps), counts (integers),
//!       sums (floats; integers; booleans: count of true as integers),
//!       firsts, lasts, and — not for booleans — mins, maxs (the type's
//!       column).
//! ```
//!
//! A decoder checks the starts are strictly increasing multiples of the
//! step inside the segment's block, every count is at least 1 and they add
//! up to the segment's count, and the first and last values equal the
//! segment header's.

use super::codec;
use super::head::Column;
use super::key::{Value, ValueType};
use super::segment::{SegmentError, SegmentStats, Sum};
use crate::varint::put as put_varint;

const MAGIC: &[u8; 4] = b"SYRU";
const VERSION: u8 = 1;

/// The rollup step: one minute.
pub const ROLLUP_STEP: i64 = 60_000_000_000;
/// The blob name's suffix after the block name.
pub const ROLLUP_SUFFIX: &str = "1m";
/// Points per bucket, on average, below which no rollup is written.
pub const MIN_POINTS_PER_BUCKET: usize = 2;

/// One minute's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Its start (a multiple of the step since the epoch).
    pub start: i64,
    /// Points in it (>= 1).
    pub count: u64,
    /// Their sum (floats in time order).
    pub sum: Sum,
    /// Smallest (floats: NaN ignored unless all are NaN).
    pub min: Value,
    /// Largest.
    pub max: Value,
    /// Earliest point's value.
    pub first: Value,
    /// Latest point's value.
    pub last: Value,
}

fn bad<T>(why: impl Into<String>) -> Result<T, SegmentError> {
    Err(SegmentError(why.into()))
}

/// `a` and `b` folded by `f64::min`/`max` (NaN ignored unless both are),
/// integer order, or boolean and/or.
pub(crate) fn extreme(a: &Value, b: &Value, max: bool) -> Value {
    match (a, b) {
        (Value::F64(x), Value::F64(y)) => Value::F64(if max { x.max(*y) } else { x.min(*y) }),
        (Value::I64(x), Value::I64(y)) => Value::I64(if max { *x.max(y) } else { *x.min(y) }),
        (Value::Bool(x), Value::Bool(y)) => Value::Bool(if max { *x | *y } else { *x & *y }),
        (a, _) => a.clone(),
    }
}

impl Bucket {
    /// The bucket starting at `start` holding the one value `v`.
    pub(crate) fn of_point(start: i64, v: &Value) -> Bucket {
        Bucket {
            start,
            count: 1,
            sum: Sum::of(v),
            min: v.clone(),
            max: v.clone(),
            first: v.clone(),
            last: v.clone(),
        }
    }

    /// Fold in `o`, which comes later in time.
    pub(crate) fn add(&mut self, o: Bucket) {
        self.count += o.count;
        self.sum = self.sum.plus(o.sum);
        self.min = extreme(&self.min, &o.min, false);
        self.max = extreme(&self.max, &o.max, true);
        self.last = o.last;
    }
}

/// The buckets of sorted, unique points of one type.
pub(crate) fn buckets(ts: &[i64], values: &Column, step: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for (i, &t) in ts.iter().enumerate() {
        let Some(v) = values.get(i) else { break };
        let b = Bucket::of_point(t.div_euclid(step).saturating_mul(step), &v);
        match out.last_mut() {
            Some(last) if last.start == b.start => last.add(b),
            _ => out.push(b),
        }
    }
    out
}

fn column(t: ValueType, vals: impl Iterator<Item = Value>) -> Column {
    let mut c = Column::new(t).unwrap_or(Column::F64(Vec::new()));
    for v in vals {
        c.push(&v);
    }
    c
}

fn encode_column(c: &Column) -> Vec<u8> {
    match c {
        Column::F64(x) => codec::encode_f64(x),
        Column::I64(x) => codec::encode_i64(x),
        Column::Bool(x) => codec::encode_bool(x),
    }
}

/// The rollup blob of a segment's points, or `None` where none is written
/// (too few points per minute, an integer sum past i64, no points).
pub(crate) fn encode(ts: &[i64], values: &Column) -> Option<Vec<u8>> {
    let bs = buckets(ts, values, ROLLUP_STEP);
    if bs.is_empty() || ts.len() < bs.len() * MIN_POINTS_PER_BUCKET {
        return None;
    }
    let t = values.value_type();
    let mut out = Vec::with_capacity(64 + bs.len() * 8);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(match t {
        ValueType::Float => 1,
        ValueType::Integer => 2,
        _ => 3,
    });
    put_varint(&mut out, ROLLUP_STEP as u64);
    put_varint(&mut out, bs.len() as u64);
    let mut put = |col: Vec<u8>| {
        put_varint(&mut out, col.len() as u64);
        out.extend_from_slice(&col);
    };
    put(codec::encode_timestamps(
        &bs.iter().map(|b| b.start).collect::<Vec<_>>(),
    ));
    put(codec::encode_i64(
        &bs.iter().map(|b| b.count as i64).collect::<Vec<_>>(),
    ));
    let sums = match t {
        ValueType::Float => Column::F64(
            bs.iter()
                .map(|b| match b.sum {
                    Sum::F64(s) => s,
                    _ => 0.0,
                })
                .collect(),
        ),
        _ => Column::I64(
            bs.iter()
                .map(|b| match b.sum {
                    Sum::I128(s) => i64::try_from(s).ok(),
                    Sum::Trues(n) => i64::try_from(n).ok(),
                    Sum::F64(_) => None,
                })
                .collect::<Option<Vec<i64>>>()?,
        ),
    };
    put(encode_column(&sums));
    put(encode_column(&column(
        t,
        bs.iter().map(|b| b.first.clone()),
    )));
    put(encode_column(&column(t, bs.iter().map(|b| b.last.clone()))));
    if t != ValueType::Boolean {
        put(encode_column(&column(t, bs.iter().map(|b| b.min.clone()))));
        put(encode_column(&column(t, bs.iter().map(|b| b.max.clone()))));
    }
    Some(out)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn varint(&mut self, what: &str) -> Result<u64, SegmentError> {
        crate::varint::read(self.b, &mut self.pos)
            .map_err(|e| SegmentError(format!("rollup {what} at byte {}: {e}", self.pos)))
    }
    fn column(&mut self, what: &str) -> Result<&[u8], SegmentError> {
        let n = self.varint(what)?;
        let rest = self.b.len() - self.pos;
        if n > rest as u64 {
            return bad(format!(
                "rollup {what} column of {n} bytes, {rest} left at byte {}",
                self.pos
            ));
        }
        let s = &self.b[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
}

fn decode_column(t: ValueType, b: &[u8], what: &str) -> Result<Column, SegmentError> {
    match t {
        ValueType::Float => codec::decode_f64(b).map(Column::F64),
        ValueType::Integer => codec::decode_i64(b).map(Column::I64),
        _ => codec::decode_bool(b).map(Column::Bool),
    }
    .map_err(|e| SegmentError(format!("rollup {what}: {e}")))
}

/// Which columns of a rollup a reader needs (the starts and counts always).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The sums (booleans: the count of trues, which their min and max
    /// come from too).
    pub sum: bool,
    /// The mins and maxs.
    pub min_max: bool,
    /// The firsts and lasts.
    pub first_last: bool,
}

impl Need {
    /// Every column.
    pub const ALL: Need = Need {
        sum: true,
        min_max: true,
        first_last: true,
    };
}

/// Decode and verify the rollup of the segment of `block` whose header is
/// `seg`.
pub fn decode(block: i64, seg: &SegmentStats, b: &[u8]) -> Result<Vec<Bucket>, SegmentError> {
    let c = decode_columns(block, seg, b, Need::ALL)?;
    Ok((0..c.len())
        .map(|i| Bucket {
            start: c.starts[i],
            count: c.counts[i],
            sum: c.sum(i),
            min: c.min(i),
            max: c.max(i),
            first: c.first(i),
            last: c.last(i),
        })
        .collect())
}

/// A rollup's columns, decoded and checked against its segment: the starts
/// and counts always, the others where [`Need`] asked for them.
#[derive(Debug)]
pub(crate) struct Columns {
    ty: ValueType,
    /// Bucket starts, strictly increasing.
    pub(crate) starts: Vec<i64>,
    /// Points per bucket, each at least 1.
    pub(crate) counts: Vec<u64>,
    /// Sums (booleans: counts of trues).
    sums: Option<Column>,
    firsts: Option<Column>,
    lasts: Option<Column>,
    mins: Option<Column>,
    maxs: Option<Column>,
}

impl Columns {
    /// Buckets.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// The zero of the type, for a column that was not decoded.
    fn zero(&self) -> Value {
        match self.ty {
            ValueType::Float => Value::F64(0.0),
            ValueType::Integer => Value::I64(0),
            _ => Value::Bool(false),
        }
    }

    fn at(&self, c: Option<&Column>, i: usize) -> Value {
        c.and_then(|c| c.get(i)).unwrap_or_else(|| self.zero())
    }

    /// Bucket `i`'s sum (zero when the sums were not decoded).
    pub(crate) fn sum(&self, i: usize) -> Sum {
        match (&self.sums, self.ty) {
            (Some(Column::F64(s)), _) => Sum::F64(s[i]),
            (Some(Column::I64(s)), ValueType::Boolean) => Sum::Trues(s[i] as u64),
            (Some(Column::I64(s)), _) => Sum::I128(i128::from(s[i])),
            (_, ValueType::Float) => Sum::F64(0.0),
            (_, ValueType::Boolean) => Sum::Trues(0),
            _ => Sum::I128(0),
        }
    }

    /// Bucket `i`'s smallest value (a boolean's comes from its trues).
    pub(crate) fn min(&self, i: usize) -> Value {
        match (self.ty, self.sum(i)) {
            (ValueType::Boolean, Sum::Trues(n)) => Value::Bool(n == self.counts[i]),
            _ => self.at(self.mins.as_ref(), i),
        }
    }

    /// Bucket `i`'s largest value.
    pub(crate) fn max(&self, i: usize) -> Value {
        match (self.ty, self.sum(i)) {
            (ValueType::Boolean, Sum::Trues(n)) => Value::Bool(n > 0),
            _ => self.at(self.maxs.as_ref(), i),
        }
    }

    /// Bucket `i`'s earliest value.
    pub(crate) fn first(&self, i: usize) -> Value {
        self.at(self.firsts.as_ref(), i)
    }

    /// Bucket `i`'s latest value.
    pub(crate) fn last(&self, i: usize) -> Value {
        self.at(self.lasts.as_ref(), i)
    }
}

/// The columns of the rollup `b` of the segment of `block` whose header is
/// `seg`, decoding only those `need` names (with the starts and counts):
/// every column's framing is still read, but a skipped column's values are
/// not decoded or checked, and read as zeros (or `false`); an aggregate
/// reads only what it asked for (a mean reads counts and sums).
pub(crate) fn decode_columns(
    block: i64,
    seg: &SegmentStats,
    b: &[u8],
    need: Need,
) -> Result<Columns, SegmentError> {
    if b.len() < 6 || &b[..4] != MAGIC {
        return bad("rollup blob does not start with SYRU");
    }
    if b[4] != VERSION {
        return bad(format!("rollup version {} (this build reads 1)", b[4]));
    }
    let t = match b[5] {
        1 => ValueType::Float,
        2 => ValueType::Integer,
        3 => ValueType::Boolean,
        x => return bad(format!("rollup value type {x} is not 1, 2 or 3")),
    };
    if t != seg.first.value_type() {
        return bad(format!(
            "rollup of {} values beside a segment of {} values",
            t,
            seg.first.value_type()
        ));
    }
    let mut r = Reader { b, pos: 6 };
    let step = r.varint("step")?;
    if step != ROLLUP_STEP as u64 {
        return bad(format!(
            "rollup step {step} ns (this build reads rollups of {ROLLUP_STEP} ns)"
        ));
    }
    // A constant, so the checks below divide by multiplying.
    let step = ROLLUP_STEP;
    let n = r.varint("bucket count")?;
    if n == 0 || n > seg.count {
        return bad(format!(
            "rollup of {n} buckets for a segment of {} points",
            seg.count
        ));
    }
    let n = n as usize;
    let starts = codec::decode_timestamps(r.column("starts")?)
        .map_err(|e| SegmentError(format!("rollup starts: {e}")))?;
    let counts = codec::decode_i64(r.column("counts")?)
        .map_err(|e| SegmentError(format!("rollup counts: {e}")))?;
    let sum_type = if t == ValueType::Float {
        ValueType::Float
    } else {
        ValueType::Integer
    };
    // A boolean's min and max come from its count of trues.
    let need_sum = need.sum || (need.min_max && t == ValueType::Boolean);
    // The next column, decoded as `ty` when `on`.
    let mut next = |name: &str, ty: ValueType, on: bool| -> Result<Option<Column>, SegmentError> {
        let c = r.column(name)?;
        if !on {
            return Ok(None);
        }
        let c = decode_column(ty, c, name)?;
        if c.len() != n {
            return bad(format!(
                "rollup of {n} buckets has a {name} column of {} values",
                c.len()
            ));
        }
        Ok(Some(c))
    };
    let sums = next("sums", sum_type, need_sum)?;
    let firsts = next("firsts", t, need.first_last)?;
    let lasts = next("lasts", t, need.first_last)?;
    let (mins, maxs) = if t == ValueType::Boolean {
        (None, None)
    } else {
        let lo = next("mins", t, need.min_max)?;
        (lo, next("maxs", t, need.min_max)?)
    };
    if r.pos != b.len() {
        return bad(format!(
            "rollup has {} bytes after its columns",
            b.len() - r.pos
        ));
    }
    if starts.len() != n || counts.len() != n {
        return bad(format!(
            "rollup of {n} buckets has {} starts and {} counts",
            starts.len(),
            counts.len()
        ));
    }
    let end = block.saturating_add(seg.span);
    let floor = block.div_euclid(step).saturating_mul(step);
    let mut prev_start = None;
    for (i, &start) in starts.iter().enumerate() {
        if start.rem_euclid(step) != 0
            || prev_start.is_some_and(|p| p >= start)
            || start < floor
            || start >= end
        {
            return bad(format!(
                "rollup bucket {i} starts at {start}: not a strictly increasing multiple of {step} in [{block}, {end})"
            ));
        }
        prev_start = Some(start);
    }
    let mut total = 0u64;
    let counts = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let c = u64::try_from(c)
                .ok()
                .filter(|&c| c >= 1)
                .ok_or_else(|| SegmentError(format!("rollup bucket {i} counts {c}")))?;
            total = total.saturating_add(c);
            Ok(c)
        })
        .collect::<Result<Vec<u64>, SegmentError>>()?;
    if total != seg.count {
        return disagree(total, seg);
    }
    if let (ValueType::Boolean, Some(Column::I64(s))) = (t, &sums)
        && let Some(i) = (0..n).find(|&i| u64::try_from(s[i]).map_or(true, |x| x > counts[i]))
    {
        return bad(format!(
            "rollup bucket {i}: {} trues of {}",
            s[i], counts[i]
        ));
    }
    let c = Columns {
        ty: t,
        starts,
        counts,
        sums,
        firsts,
        lasts,
        mins,
        maxs,
    };
    if need.first_last && (!c.first(0).same_bits(&seg.first) || !c.last(n - 1).same_bits(&seg.last))
    {
        return disagree(total, seg);
    }
    Ok(c)
}

fn disagree<T>(total: u64, seg: &SegmentStats) -> Result<T, SegmentError> {
    bad(format!(
        "rollup disagrees with its segment (its buckets count {total} points so far, the segment {}; \
         or its first or last value differs)",
        seg.count
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let ts: Vec<i64> = (0..600).map(|i| i * 1_000_000_000).collect();
        let vals = Column::F64((0..600).map(|i| f64::from(i % 17)).collect());
        let blob = encode(&ts, &vals).unwrap_or_default();
        let seg = SegmentStats {
            count: 600,
            min_ts: 0,
            max_ts: ts[599],
            span: 3_600_000_000_000,
            first: Value::F64(0.0),
            last: Value::F64(f64::from(599 % 17)),
            min: Value::F64(0.0),
            max: Value::F64(16.0),
            sum: Sum::F64(0.0),
        };
        let bs = decode(0, &seg, &blob).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bs.len(), 10);
        assert_eq!(bs, buckets(&ts, &vals, ROLLUP_STEP));
        assert!(bs.iter().all(|b| b.count == 60));
        // Every truncation and every single-byte change is refused or
        // decodes to exactly what it says (never a panic).
        for cut in 0..blob.len() {
            assert!(decode(0, &seg, &blob[..cut]).is_err(), "cut at {cut}");
        }
        let mut other = seg.clone();
        other.count = 599;
        assert!(decode(0, &other, &blob).is_err());
        // One point a minute: no rollup.
        let sparse: Vec<i64> = (0..60).map(|i| i * ROLLUP_STEP).collect();
        assert!(encode(&sparse, &Column::I64(vec![1; 60])).is_none());
    }
}
