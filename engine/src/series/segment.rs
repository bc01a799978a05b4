//! Compacted series data in the tree (FORMAT.md §18): where a series'
//! segments and its index entry live, and the byte format of a segment.
//!
//! ```text
//! series/<aa>/<30 hex>/<block>.t   timestamps (series codec column)
//! series/<aa>/<30 hex>/<block>.v   header with stats + values column
//! index/series/<aa>                    the series whose id starts with aa
//! index/series/all                     instead, every series (small stores)
//! ```
//!
//! `<aa><30 hex>` is the first 16 bytes of the series id (BLAKE3 of the
//! key) in hex: 256 directories of about 4,000 series each at a million
//! series. `<block>` is the UTC start of the segment's block as
//! `YYYYMMDDTHHMMSSZ`, so a series' segments list in time order. The
//! timestamps are a blob of their own: series scraped together have equal
//! timestamp columns, which the object store then keeps once.
//!
//! A value blob:
//!
//! ```text
//! 0  4  magic "SYSG"
//! 4  1  version = 1
//! 5  1  type: 1 float, 2 integer, 3 boolean
//! 6  …  varint count (>= 1), zigzag varint min_ts, varint max_ts - min_ts,
//!       varint span (the block's length in ns),
//!       stats — float: first, last, min, max, sum as 8-byte LE IEEE bits;
//!               integer: first, last, min, max as zigzag varints, sum as
//!               16-byte LE i128; boolean: first, last as one byte each,
//!               varint count of true values —
//!       then the values column (series codec) to the end.
//! ```
//!
//! Float min and max ignore NaN unless every value is NaN; the sum is taken
//! in time order. A decoder recomputes every statistic from the columns
//! and refuses a blob whose header disagrees, whose timestamps are not
//! strictly increasing or outside `[block, block + span)`, or whose
//! column counts differ: a segment is trusted only after it verified.
//!
//! The series index blob is a series-definition record (FORMAT.md §17):
//! `ref`, type and key of each series, ordered by series id, every id
//! starting with the blob's `aa`.

use super::codec;
use super::head::Column;
use super::key::{SeriesId, Value, ValueType};
use super::record::{self, Record, SeriesDef, SeriesRecord};
use crate::varint::{put as put_varint, unzigzag, zigzag};

const MAGIC: &[u8; 4] = b"SYSG";
const VERSION: u8 = 1;

/// Why a segment or index blob is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SegmentError(pub String);

fn bad<T>(why: impl Into<String>) -> Result<T, SegmentError> {
    Err(SegmentError(why.into()))
}

/// The directory of a series' data: `series/<aa>/<30 hex>`.
pub fn series_dir(id: &SeriesId) -> String {
    let hex = id.to_string();
    format!("series/{}/{}", &hex[..2], &hex[2..32])
}

/// The index blob holding a series: `index/series/<aa>`.
pub fn index_path(id: &SeriesId) -> String {
    format!("index/series/{:02x}", id.0[0])
}

/// `YYYYMMDDTHHMMSSZ` of a block start (whole seconds).
pub fn block_name(start: i64) -> String {
    let t = crate::time::format_rfc3339(start);
    // 2013-01-01T00:00:00.000000000Z → 20130101T000000Z
    let b = t.as_bytes();
    if b.len() < 19 {
        return format!("{start}");
    }
    let mut s = String::with_capacity(16);
    for &c in &b[..19] {
        if c != b'-' && c != b':' {
            s.push(c as char);
        }
    }
    s.push('Z');
    s
}

/// The block start a [`block_name`] names.
pub fn parse_block_name(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    // Digits only, each field in its calendar range (the `time` crate
    // checks month lengths and leap years): then the name is exactly what
    // [`block_name`] writes for the time it names, since every field is
    // printed zero-padded to its width. A test checks this against the
    // round trip through the text form.
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let (h, m, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let t = time::Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(sec).ok()?,
    )
    .ok()?;
    let ns = time::PrimitiveDateTime::new(date, t)
        .assume_utc()
        .unix_timestamp_nanos();
    i64::try_from(ns).ok()
}

/// [`parse_block_name`] through the text form: the reference its tests
/// compare with.
#[cfg(test)]
fn parse_block_name_by_text(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &name[0..4],
        &name[4..6],
        &name[6..8],
        &name[9..11],
        &name[11..13],
        &name[13..15]
    );
    let t = crate::time::parse_time(&rfc).ok()?;
    (block_name(t) == name).then_some(t)
}

/// The start of the block holding `t` (blocks are `span` long, aligned to
/// multiples of it since the epoch).
pub fn block_start(t: i64, span: i64) -> i64 {
    // Saturating: timestamps before [`EARLIEST_TIMESTAMP`] are refused at
    // the appender, so this never clamps for points the engine took.
    t.div_euclid(span).saturating_mul(span)
}

/// Compaction levels: the spans, above the store's block, into which a
/// series' adjacent segments merge once their window has closed and they
/// hold few points together (a day, then 30 days; aligned to multiples
/// since the epoch). A level applies where it is a multiple of the
/// store's block.
pub const LEVELS: [i64; 2] = [86_400 * 1_000_000_000, 30 * 86_400 * 1_000_000_000];

/// The most points a merged segment may hold: segments of a window merge
/// only while together they hold at most this many.
pub const LEVEL_MAX_POINTS: u64 = 4096;

/// The longest series block: 100 days. With [`EARLIEST_TIMESTAMP`], every
/// block start of every point stays within i64.
pub const MAX_BLOCK_NS: i64 = 100 * 86_400 * 1_000_000_000;

/// The earliest timestamp a point may have: 1678-01-01T00:00:00Z (i64 ns
/// reach back to 1677-09-21; the gap keeps every block start, for blocks up
/// to [`MAX_BLOCK_NS`], representable).
pub const EARLIEST_TIMESTAMP: i64 = -9_214_560_000_000_000_000;

/// The latest timestamp a point may have: 2262-01-01T00:00:00Z (i64 ns
/// reach to 2262-04-11; the gap keeps every block end, for blocks up to
/// [`MAX_BLOCK_NS`], representable).
pub const LATEST_TIMESTAMP: i64 = 9_214_646_400_000_000_000;

/// What a segment's header says about its points.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentStats {
    /// Points.
    pub count: u64,
    /// Earliest and latest timestamps.
    pub min_ts: i64,
    /// Latest timestamp.
    pub max_ts: i64,
    /// The block's length in ns.
    pub span: i64,
    /// First value (by time).
    pub first: Value,
    /// Last value.
    pub last: Value,
    /// Smallest value (booleans: false if any).
    pub min: Value,
    /// Largest value.
    pub max: Value,
    /// Sum (floats: f64 in time order; integers: exact; booleans: trues).
    pub sum: Sum,
}

/// A segment's sum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sum {
    /// Of floats, in time order.
    F64(f64),
    /// Of integers, exact.
    I128(i128),
    /// Count of true values.
    Trues(u64),
}

impl Sum {
    /// The sum of the one value `v` (a string counts as no true).
    pub(crate) fn of(v: &Value) -> Sum {
        match v {
            Value::F64(x) => Sum::F64(*x),
            Value::I64(x) => Sum::I128(i128::from(*x)),
            Value::Bool(b) => Sum::Trues(u64::from(*b)),
            Value::Str(_) => Sum::Trues(0),
        }
    }

    /// `self` and the later `o` added (integers saturating; sums of
    /// different kinds keep `self`).
    pub(crate) fn plus(self, o: Sum) -> Sum {
        match (self, o) {
            (Sum::F64(a), Sum::F64(b)) => Sum::F64(a + b),
            (Sum::I128(a), Sum::I128(b)) => Sum::I128(a.saturating_add(b)),
            (Sum::Trues(a), Sum::Trues(b)) => Sum::Trues(a + b),
            (a, _) => a,
        }
    }
}

fn stats_of(ts: &[i64], values: &Column, span: i64) -> Option<SegmentStats> {
    let (first_ts, last_ts) = (*ts.first()?, *ts.last()?);
    let (first, last, min, max, sum) = match values {
        Column::F64(v) => {
            let mut min = *v.first()?;
            let mut max = min;
            let mut sum = 0.0f64;
            for &x in v {
                min = min.min(x);
                max = max.max(x);
                sum += x;
            }
            (
                Value::F64(*v.first()?),
                Value::F64(*v.last()?),
                Value::F64(min),
                Value::F64(max),
                Sum::F64(sum),
            )
        }
        Column::I64(v) => (
            Value::I64(*v.first()?),
            Value::I64(*v.last()?),
            Value::I64(*v.iter().min()?),
            Value::I64(*v.iter().max()?),
            Sum::I128(v.iter().map(|&x| i128::from(x)).sum()),
        ),
        Column::Bool(v) => (
            Value::Bool(*v.first()?),
            Value::Bool(*v.last()?),
            Value::Bool(v.iter().all(|&b| b)),
            Value::Bool(v.iter().any(|&b| b)),
            Sum::Trues(v.iter().filter(|&&b| b).count() as u64),
        ),
    };
    Some(SegmentStats {
        count: ts.len() as u64,
        min_ts: first_ts,
        max_ts: last_ts,
        span,
        first,
        last,
        min,
        max,
        sum,
    })
}

fn type_code(t: ValueType) -> u8 {
    match t {
        ValueType::Float => 1,
        ValueType::Integer => 2,
        _ => 3,
    }
}

/// Encode a segment of sorted, unique timestamps and their values as its
/// timestamps blob and value blob. `None` for no points or mismatched
/// lengths.
pub(crate) fn encode(span: i64, ts: &[i64], values: &Column) -> Option<(Vec<u8>, Vec<u8>)> {
    if ts.len() != values.len() {
        return None;
    }
    let st = stats_of(ts, values, span)?;
    let mut v = Vec::with_capacity(64 + ts.len() * 2);
    v.extend_from_slice(MAGIC);
    v.push(VERSION);
    v.push(type_code(values.value_type()));
    put_varint(&mut v, st.count);
    put_varint(&mut v, zigzag(st.min_ts));
    put_varint(&mut v, st.max_ts.wrapping_sub(st.min_ts) as u64);
    put_varint(&mut v, span as u64);
    match (&st.first, &st.last, &st.min, &st.max, st.sum) {
        (Value::F64(a), Value::F64(b), Value::F64(c), Value::F64(d), Sum::F64(e)) => {
            for x in [a, b, c, d, &e] {
                v.extend_from_slice(&x.to_bits().to_le_bytes());
            }
        }
        (Value::I64(a), Value::I64(b), Value::I64(c), Value::I64(d), Sum::I128(e)) => {
            for x in [a, b, c, d] {
                put_varint(&mut v, zigzag(*x));
            }
            v.extend_from_slice(&e.to_le_bytes());
        }
        (Value::Bool(a), Value::Bool(b), _, _, Sum::Trues(n)) => {
            v.push(u8::from(*a));
            v.push(u8::from(*b));
            put_varint(&mut v, n);
        }
        _ => return None,
    }
    let column = match values {
        Column::F64(x) => codec::encode_f64(x),
        Column::I64(x) => codec::encode_i64(x),
        Column::Bool(x) => codec::encode_bool(x),
    };
    v.extend_from_slice(&column);
    Some((codec::encode_timestamps(ts), v))
}

/// A decoded, verified segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Its header.
    pub stats: SegmentStats,
    /// Timestamps, strictly increasing.
    pub timestamps: Vec<i64>,
    pub(crate) values: Column,
}

impl Segment {
    /// The value type.
    pub fn value_type(&self) -> ValueType {
        self.values.value_type()
    }

    /// The points, in time order.
    pub fn points(&self) -> Vec<(i64, Value)> {
        self.values
            .points_at(&self.timestamps, 0..self.timestamps.len())
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn varint(&mut self, what: &str) -> Result<u64, SegmentError> {
        crate::varint::read(self.b, &mut self.pos)
            .map_err(|e| SegmentError(format!("{what} at byte {}: {e}", self.pos)))
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], SegmentError> {
        if self.b.len() - self.pos < n {
            return bad(format!("truncated {what} at byte {}", self.pos));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn f64(&mut self, what: &str) -> Result<f64, SegmentError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(f64::from_bits(u64::from_le_bytes(a)))
    }
    fn i64(&mut self, what: &str) -> Result<i64, SegmentError> {
        Ok(unzigzag(self.varint(what)?))
    }
    fn bool(&mut self, what: &str) -> Result<bool, SegmentError> {
        match self.take(1, what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            x => bad(format!("{what} is {x}, not 0 or 1")),
        }
    }
}

fn same_stat(a: &Value, b: &Value) -> bool {
    a.same_bits(b)
}

/// A value blob's header, read without decoding the columns, and where
/// its values column starts.
fn header(v_blob: &[u8]) -> Result<(ValueType, SegmentStats, usize), SegmentError> {
    if v_blob.len() < 6 || &v_blob[..4] != MAGIC {
        return bad("value blob does not start with SYSG");
    }
    if v_blob[4] != VERSION {
        return bad(format!(
            "value blob version {} (this build reads 1)",
            v_blob[4]
        ));
    }
    let t = match v_blob[5] {
        1 => ValueType::Float,
        2 => ValueType::Integer,
        3 => ValueType::Boolean,
        x => return bad(format!("value type {x} is not 1, 2 or 3")),
    };
    let mut r = Reader { b: v_blob, pos: 6 };
    let count = r.varint("count")?;
    if count == 0 {
        return bad("a segment must hold at least one point");
    }
    let min_ts = r.i64("min_ts")?;
    let max_ts = min_ts
        .checked_add_unsigned(r.varint("max_ts")?)
        .ok_or_else(|| SegmentError("max_ts is past the range of i64".into()))?;
    let span = r.varint("span")?;
    if span == 0 || span > i64::MAX as u64 {
        return bad(format!("block span {span} ns is out of range"));
    }
    let span = span as i64;
    let (first, last, min, max, sum) = match t {
        ValueType::Float => {
            let a = r.f64("first")?;
            let b = r.f64("last")?;
            let c = r.f64("min")?;
            let d = r.f64("max")?;
            let e = r.f64("sum")?;
            (
                Value::F64(a),
                Value::F64(b),
                Value::F64(c),
                Value::F64(d),
                Sum::F64(e),
            )
        }
        ValueType::Integer => {
            let a = r.i64("first")?;
            let b = r.i64("last")?;
            let c = r.i64("min")?;
            let d = r.i64("max")?;
            let mut s = [0u8; 16];
            s.copy_from_slice(r.take(16, "sum")?);
            (
                Value::I64(a),
                Value::I64(b),
                Value::I64(c),
                Value::I64(d),
                Sum::I128(i128::from_le_bytes(s)),
            )
        }
        _ => {
            let a = r.bool("first")?;
            let b = r.bool("last")?;
            let n = r.varint("trues")?;
            if n > count {
                return bad(format!("{n} true values in a segment of {count} points"));
            }
            // Not stored: they follow from the count of trues.
            (
                Value::Bool(a),
                Value::Bool(b),
                Value::Bool(n == count),
                Value::Bool(n > 0),
                Sum::Trues(n),
            )
        }
    };
    let stats = SegmentStats {
        count,
        min_ts,
        max_ts,
        span,
        first,
        last,
        min,
        max,
        sum,
    };
    Ok((t, stats, r.pos))
}

/// A segment's statistics from its value blob's header alone (no column
/// decoded): what a query answers counts, bounds, sums, firsts and lasts
/// from when a whole segment lies inside one bucket. The blob itself was
/// verified by its BLAKE3 id when read; [`decode`] also checks the header
/// against the columns.
pub fn decode_stats(v_blob: &[u8]) -> Result<SegmentStats, SegmentError> {
    let (_, stats, _) = header(v_blob)?;
    if stats.max_ts < stats.min_ts {
        return bad("max_ts is before min_ts");
    }
    Ok(stats)
}

/// Decode and verify a segment of the block starting at `block` from its
/// two blobs.
pub fn decode(block: i64, ts_blob: &[u8], v_blob: &[u8]) -> Result<Segment, SegmentError> {
    let (t, st, pos) = header(v_blob)?;
    let SegmentStats {
        count,
        min_ts,
        max_ts,
        span,
        first,
        last,
        min,
        max,
        sum,
    } = st;
    let r = Reader { b: v_blob, pos };
    let column = &v_blob[r.pos..];
    let values = match t {
        ValueType::Float => codec::decode_f64(column).map(Column::F64),
        ValueType::Integer => codec::decode_i64(column).map(Column::I64),
        _ => codec::decode_bool(column).map(Column::Bool),
    }
    .map_err(|e| SegmentError(format!("values column: {e}")))?;
    let timestamps =
        codec::decode_timestamps(ts_blob).map_err(|e| SegmentError(format!("timestamps: {e}")))?;
    if timestamps.len() as u64 != count || values.len() as u64 != count {
        return bad(format!(
            "header says {count} points, the columns hold {} timestamps and {} values",
            timestamps.len(),
            values.len()
        ));
    }
    if let Some(w) = timestamps.windows(2).find(|w| w[0] >= w[1]) {
        return bad(format!(
            "timestamps not strictly increasing ({} then {})",
            w[0], w[1]
        ));
    }
    let end = block.saturating_add(span);
    if timestamps.first().is_some_and(|&t| t < block)
        || timestamps.last().is_some_and(|&t| t >= end)
    {
        return bad(format!(
            "timestamps {min_ts}..={max_ts} outside the block [{block}, {end})"
        ));
    }
    let Some(want) = stats_of(&timestamps, &values, span) else {
        return bad("a segment must hold at least one point");
    };
    let ok = want.count == count
        && want.min_ts == min_ts
        && want.max_ts == max_ts
        && same_stat(&want.first, &first)
        && same_stat(&want.last, &last)
        && same_stat(&want.min, &min)
        && same_stat(&want.max, &max)
        && match (want.sum, sum) {
            (Sum::F64(a), Sum::F64(b)) => a.to_bits() == b.to_bits(),
            (a, b) => a == b,
        };
    if !ok {
        return bad(format!(
            "header statistics disagree with the columns (header: count {count}, \
             {min_ts}..={max_ts}, first {first:?}, last {last:?}; columns: count {}, {}..={}, \
             first {:?}, last {:?})",
            want.count, want.min_ts, want.max_ts, want.first, want.last
        ));
    }
    Ok(Segment {
        stats: want,
        timestamps,
        values,
    })
}

/// Encode the index blob for `aa` from its series (any order).
pub fn encode_index(series: &mut [(SeriesId, SeriesDef)]) -> Vec<u8> {
    series.sort_by_key(|a| a.0);
    let mut rec = SeriesRecord::new();
    for (_, d) in series.iter() {
        rec.push(d.series, d.value_type, &d.key);
    }
    rec.finish()
}

/// Decode and check the index blob at `index/series/<aa>`.
pub fn decode_index(aa: u8, b: &[u8]) -> Result<Vec<SeriesDef>, SegmentError> {
    decode_defs(Some(aa), b)
}

/// Decode and check the one index blob of a small store,
/// `index/series/all` ([`INDEX_ALL`]).
pub fn decode_index_all(b: &[u8]) -> Result<Vec<SeriesDef>, SegmentError> {
    decode_defs(None, b)
}

/// The name of the single index blob a store with at most
/// [`INDEX_ALL_MAX`] series keeps instead of one blob per id prefix.
pub const INDEX_ALL: &str = "all";
/// The most series `index/series/all` holds; past it, the index fans out
/// into `index/series/<aa>`.
pub const INDEX_ALL_MAX: usize = 4096;

fn decode_defs(aa: Option<u8>, b: &[u8]) -> Result<Vec<SeriesDef>, SegmentError> {
    let defs = match record::decode(b) {
        Ok(Record::Series(d)) => d,
        Ok(_) => return bad("not a series-definition record"),
        Err(e) => return bad(e.to_string()),
    };
    if aa.is_none() && defs.len() > INDEX_ALL_MAX {
        return bad(format!(
            "{} series in index/series/all, which holds at most {INDEX_ALL_MAX}",
            defs.len()
        ));
    }
    let mut prev: Option<SeriesId> = None;
    for d in &defs {
        let id = d.key.id();
        if let Some(aa) = aa
            && id.0[0] != aa
        {
            return bad(format!(
                "series {} (id {id}) is not in bucket {aa:02x}",
                d.key
            ));
        }
        if prev.is_some_and(|p| p >= id) {
            return bad(format!("series {} is out of order or repeated", d.key));
        }
        if d.value_type == ValueType::String {
            return bad(format!("series {} is typed string", d.key));
        }
        prev = Some(id);
    }
    Ok(defs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_names_parse_as_their_text_round_trip_does() {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1442695040888963407);
            seed >> 17
        };
        let mut names: Vec<String> = Vec::new();
        for _ in 0..20_000 {
            // Whole seconds across the i64 range of nanoseconds.
            let secs = (next() % 18_000_000_000) as i64 - 9_000_000_000;
            names.push(block_name(secs * 1_000_000_000));
            // Plausible-looking names with out-of-range fields.
            let f = |n: u64, w: usize| format!("{:0w$}", n % 10u64.pow(w as u32), w = w);
            names.push(format!(
                "{}{}{}T{}{}{}Z",
                f(next() % 3000, 4),
                f(next() % 14, 2),
                f(next() % 33, 2),
                f(next() % 26, 2),
                f(next() % 62, 2),
                f(next() % 62, 2)
            ));
        }
        names.extend(
            [
                "00000101T000000Z",
                "16770921T001245Z",
                "22620411T234748Z",
                "22620411T234747Z",
                "20240229T000000Z",
                "20230229T000000Z",
                "2024022ST000000Z",
                "+0240229T000000Z",
                "20240229T00000 Z",
            ]
            .map(String::from),
        );
        for n in &names {
            assert_eq!(parse_block_name(n), parse_block_name_by_text(n), "{n}");
        }
        assert!(
            names
                .iter()
                .filter(|n| parse_block_name(n).is_some())
                .count()
                > 20_000
        );
    }

    #[test]
    fn block_names_round_trip_and_sort() {
        let h = 3_600_000_000_000i64;
        let a = block_start(1_357_000_000_000_000_000, h);
        assert_eq!(block_name(a), "20130101T000000Z");
        assert_eq!(parse_block_name(&block_name(a)), Some(a));
        assert!(block_name(a) < block_name(a + h));
        assert_eq!(parse_block_name("20121231T000000"), None);
        assert_eq!(parse_block_name("20121331T000000Z"), None);
        assert_eq!(block_start(-1, h), -h);
    }

    #[test]
    fn segments_round_trip_and_damage_is_refused() {
        let h = 3_600_000_000_000i64;
        let ts: Vec<i64> = (0..100).map(|i| i * 1_000_000_000).collect();
        let vals = Column::F64((0..100).map(|i| f64::from(i) / 4.0).collect());
        let (t, v) = encode(h, &ts, &vals).unwrap_or_else(|| panic!("encode"));
        let s = decode(0, &t, &v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.timestamps, ts);
        assert_eq!(
            s.stats.sum,
            Sum::F64((0..100).map(|i| f64::from(i) / 4.0).sum())
        );
        assert_eq!(s.stats.max, Value::F64(24.75));
        // Outside its block.
        assert!(decode(h, &t, &v).is_err());
        // Every single-byte change of the value blob is refused or decodes
        // to a verified segment (never a panic).
        for i in 0..v.len() {
            let mut w = v.clone();
            w[i] ^= 0x40;
            if let Ok(s2) = decode(0, &t, &w) {
                assert_eq!(s2.timestamps, ts);
            }
        }
        // A header that lies about the sum.
        let mut w = v.clone();
        let sum_at = v.len()
            - codec::encode_f64(match &vals {
                Column::F64(x) => x,
                _ => unreachable!(),
            })
            .len()
            - 8;
        w[sum_at] ^= 1;
        assert!(decode(0, &t, &w).unwrap_err().0.contains("statistics"));
    }
}
