//! Range queries and aggregates over a [`View`] (DESIGN.md §10, read path):
//! selector → the view's series set → per series, its segments that
//! overlap the range (pruned by block name, then by the header's min/max)
//! merged with its head points → the points, or the aggregate per bucket.
//!
//! Results are exact: every acknowledged point of the range once, and for
//! a timestamp written twice the last write (the head's copy wins over a
//! segment's). Reads stream one series at a time and, within a series, one
//! segment at a time, so memory is bounded by a segment plus the series'
//! head points, not by the size of the answer.
//!
//! ```no_run
//! # fn main() -> sydra_engine::Result<()> {
//! use sydra_engine::series::{Agg, Selector};
//! # let engine = sydra_engine::Engine::open("data", Default::default())?;
//! let view = engine.view(Some("snapshots/nightly"))?;
//! let sel = Selector::parse(r#"cpu{host="a"}"#)?;
//! for batch in view.query(&sel, i64::MIN, i64::MAX)? {
//!     let batch = batch?;
//!     println!("{}: {} points", batch.key, batch.points.len());
//! }
//! for series in view.aggregate(&sel, 0, i64::MAX, 60_000_000_000, Agg::Mean)? {
//!     let (key, buckets) = series?;
//!     println!("{key}: {} minutes", buckets.len());
//! }
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::sync::Arc;

use ahash::AHashMap as HashMap;
use sydra_objects::{Kind, ObjectId, Store};

use super::head::{Column, Snapshot};
use super::key::{SeriesKey, Value, ValueType};
use super::rollup;
use super::segment::{self, SegmentStats, Sum};
use super::selector::Selector;
use super::view::View;
use crate::error::{Error, Result};
use crate::index::tree_at;

/// A run of one series' points, in time order. Consecutive batches of the
/// same series continue each other (later times).
#[derive(Debug, Clone)]
pub struct Batch {
    /// The series.
    pub key: Arc<SeriesKey>,
    /// Its type.
    pub value_type: ValueType,
    /// The points, strictly increasing in time.
    pub points: Vec<(i64, Value)>,
}

/// A run of one series' points as columns ([`Points::next_columns`]):
/// what a reader that wants plain numbers takes, without a [`Value`] per
/// point.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnBatch {
    /// The series.
    pub key: Arc<SeriesKey>,
    /// Timestamps, strictly increasing.
    pub timestamps: Vec<i64>,
    /// The values, one per timestamp, of the series' type.
    pub values: Column,
}

impl ColumnBatch {
    /// The points, as [`Batch`] holds them.
    pub fn points(&self) -> Vec<(i64, Value)> {
        self.values
            .points_at(&self.timestamps, 0..self.timestamps.len())
    }

    /// Append a point, refusing one of another type than the column's.
    fn push(&mut self, t: i64, v: &Value) -> Result<()> {
        if !self.values.push(v) {
            return Err(Error::Series(format!(
                "series {} holds {} values, and a {} value at {t}",
                self.key,
                self.values.value_type(),
                v.value_type()
            )));
        }
        self.timestamps.push(t);
        Ok(())
    }

    fn push_all(&mut self, pts: impl IntoIterator<Item = (i64, Value)>) -> Result<()> {
        pts.into_iter().try_for_each(|(t, v)| self.push(t, &v))
    }

    /// Append the head's points at `r`.
    fn extend_head(&mut self, head: &HeadRun, r: std::ops::Range<usize>) -> Result<()> {
        let Some(v) = &head.values else {
            return Ok(());
        };
        if !self.values.extend_from(v, r.clone()) {
            return Err(Error::Series(format!(
                "series {} holds {} values, and its head {} values",
                self.key,
                self.values.value_type(),
                v.value_type()
            )));
        }
        self.timestamps.extend_from_slice(&head.ts[r]);
        Ok(())
    }
}

/// An aggregate function ([`View::aggregate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// Points in the bucket (an integer).
    Count,
    /// Their sum: floats a float; integers an integer (a float when it
    /// overflows i64); booleans the count of `true`.
    Sum,
    /// The smallest value (booleans: `false` if any).
    Min,
    /// The largest value.
    Max,
    /// The mean, a float (booleans: the fraction that are `true`).
    Mean,
    /// The earliest point's value.
    First,
    /// The latest point's value.
    Last,
}

impl std::str::FromStr for Agg {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Agg, String> {
        Ok(match s {
            "count" => Agg::Count,
            "sum" => Agg::Sum,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "mean" | "avg" => Agg::Mean,
            "first" => Agg::First,
            "last" => Agg::Last,
            _ => {
                return Err(format!(
                    "{s:?} is not an aggregate (count, sum, min, max, mean, first, last)"
                ));
            }
        })
    }
}

/// What a query read, for `--stats` and the benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Series selected.
    pub series: u64,
    /// Segments whose columns were decoded.
    pub segments_decoded: u64,
    /// Segments whose decoded columns an earlier read left in the
    /// engine's cache (`Options::segment_cache_bytes`): no blob read.
    pub segments_cached: u64,
    /// Segments answered from their header's statistics alone.
    pub segments_from_stats: u64,
    /// Segments answered from their per-minute rollups.
    pub segments_from_rollups: u64,
    /// Segments skipped by their block or header min/max.
    pub segments_pruned: u64,
    /// Points read from the head.
    pub head_points: u64,
}

/// One segment of a series in a commit's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegRef {
    pub(super) block: i64,
    pub(super) ts: ObjectId,
    pub(super) values: ObjectId,
    /// Its per-minute rollup, where one was written.
    pub(super) rollup: Option<ObjectId>,
}

/// The subtrees of a tree, by name: the first lookup reads the tree and
/// finds one entry; a second builds a sorted table for the rest (a query
/// of one series allocates nothing per entry, one of many decodes each
/// tree once).
#[derive(Debug, Default)]
struct Names {
    tree: Option<ObjectId>,
    looked: bool,
    built: Option<Vec<(Box<str>, ObjectId)>>,
}

impl Names {
    fn new(tree: Option<ObjectId>) -> Names {
        Names {
            tree,
            ..Names::default()
        }
    }

    fn get(&mut self, store: &Store, name: &str) -> Result<Option<ObjectId>> {
        let Some(tree) = self.tree else {
            return Ok(None);
        };
        if self.built.is_none() {
            let obj = store.get(&tree)?;
            let t = obj.tree()?;
            if !self.looked {
                self.looked = true;
                return Ok(t.find(name).filter(|e| e.kind == Kind::Tree).map(|e| e.id));
            }
            let mut v: Vec<(Box<str>, ObjectId)> = t
                .entries
                .iter()
                .filter(|e| e.kind == Kind::Tree)
                .map(|e| (e.name.into(), e.id))
                .collect();
            v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            self.built = Some(v);
        }
        Ok(self.built.as_ref().and_then(|v| {
            v.binary_search_by(|e| (*e.0).cmp(name))
                .ok()
                .map(|i| v[i].1)
        }))
    }
}

/// The series directories of one commit's tree, read lazily and kept, so a
/// query over many series decodes each fan-out tree once.
#[derive(Debug)]
pub(super) struct Trees {
    commit: Option<ObjectId>,
    root: Option<ObjectId>,
    /// `aa` → the id of `series/<aa>` (read with the first lookup).
    fanout_ids: Option<Names>,
    /// `aa` → (`30 hex` → the series directory).
    fanout: HashMap<u8, Names>,
}

impl Trees {
    pub(super) fn new() -> Trees {
        Trees {
            commit: None,
            root: None,
            fanout_ids: None,
            fanout: HashMap::new(),
        }
    }

    /// Point at `commit` (dropping what was read of another one).
    pub(super) fn set(&mut self, store: &Store, commit: Option<ObjectId>) -> Result<()> {
        if self.commit == commit && (commit.is_none() || self.root.is_some()) {
            return Ok(());
        }
        self.commit = commit;
        self.fanout_ids = None;
        self.fanout.clear();
        self.root = match commit {
            Some(c) => Some(store.get(&c)?.commit()?.tree),
            None => None,
        };
        Ok(())
    }

    /// The id of the fan-out tree `series/<aa>`, if the commit has one.
    pub(super) fn fanout_id(&mut self, store: &Store, aa: &str) -> Result<Option<ObjectId>> {
        let Some(root) = self.root else {
            return Ok(None);
        };
        if self.fanout_ids.is_none() {
            self.fanout_ids = Some(Names::new(tree_at(store, root, "series")?));
        }
        match self.fanout_ids.as_mut() {
            Some(m) => m.get(store, aa),
            None => Ok(None),
        }
    }

    /// The id of `key`'s series directory, if the commit has one.
    pub(super) fn series_tree(
        &mut self,
        store: &Store,
        key: &SeriesKey,
    ) -> Result<Option<ObjectId>> {
        let dir = segment::series_dir(&key.id());
        let (aa, rest) = (&dir[7..9], &dir[10..]);
        let Ok(byte) = u8::from_str_radix(aa, 16) else {
            return Ok(None);
        };
        if !self.fanout.contains_key(&byte) {
            let m = Names::new(self.fanout_id(store, aa)?);
            self.fanout.insert(byte, m);
        }
        match self.fanout.get_mut(&byte) {
            Some(m) => m.get(store, rest),
            None => Ok(None),
        }
    }

    /// The segments of `key` whose blocks overlap `[from, to]`, by time.
    fn segments(
        &mut self,
        store: &Store,
        key: &SeriesKey,
        from: i64,
        to: i64,
        stats: &mut QueryStats,
    ) -> Result<Vec<SegRef>> {
        let Some(series_tree) = self.series_tree(store, key)? else {
            return Ok(Vec::new());
        };
        let mut out = list_segments(store, series_tree, key)?;
        // A segment ends before the next one starts (segments never
        // overlap; a merged one spans a level, which only its header
        // says), so the next start bounds it without a read.
        let ends: Vec<i64> = out
            .iter()
            .skip(1)
            .map(|s| s.block)
            .chain([i64::MAX])
            .collect();
        let mut k = 0;
        out.retain(|s| {
            let keep = s.block <= to && ends[k] > from;
            k += 1;
            if !keep {
                stats.segments_pruned += 1;
            }
            keep
        });
        Ok(out)
    }
}

/// Every segment in `key`'s series directory `tree`, by time.
pub(super) fn list_segments(store: &Store, tree: ObjectId, key: &SeriesKey) -> Result<Vec<SegRef>> {
    let obj = store.get(&tree)?;
    let t = obj.tree()?;
    let bad = |name: &str, reason: &str| Error::Segment {
        path: format!("{}/{name}", segment::series_dir(&key.id())),
        reason: reason.into(),
    };
    // Entries are sorted by name, so a block's blobs (`<block>.1m`,
    // `<block>.t`, `<block>.v`) stand together: one pass pairs them.
    let rollup_name = |stem: &str, name: &str| {
        name.strip_prefix(stem)
            .and_then(|r| r.strip_prefix('.'))
            .is_some_and(|r| r == rollup::ROLLUP_SUFFIX)
    };
    let mut out = Vec::new();
    for (i, e) in t.entries.iter().enumerate() {
        let Some(name) = e.name.strip_suffix(".v") else {
            continue;
        };
        let block = segment::parse_block_name(name)
            .ok_or_else(|| bad(e.name, "not a block name (YYYYMMDDTHHMMSSZ.v)"))?;
        let before = &t.entries[i.saturating_sub(2)..i];
        let (ts, rollup) = match before
            .iter()
            .position(|x| x.name.strip_suffix(".t") == Some(name))
        {
            Some(at) => (
                before[at].id,
                before[..at]
                    .iter()
                    .find(|x| rollup_name(name, x.name))
                    .map(|r| r.id),
            ),
            // Not where this format puts it: look it up by name.
            None => (
                t.find(&format!("{name}.t"))
                    .ok_or_else(|| bad(e.name, "has no timestamps blob beside it"))?
                    .id,
                t.find(&format!("{name}.{}", rollup::ROLLUP_SUFFIX))
                    .map(|r| r.id),
            ),
        };
        out.push(SegRef {
            block,
            ts,
            values: e.id,
            rollup,
        });
    }
    out.sort_by_key(|s| s.block);
    Ok(out)
}

pub(super) fn head_err(e: impl std::fmt::Display) -> Error {
    Error::Series(e.to_string())
}

/// What [`Source::header`] found to read a segment from.
#[derive(Debug)]
enum Held {
    /// The engine's cache had it decoded.
    Decoded(Arc<segment::Segment>),
    /// Its value blob, read and verified.
    Blob(sydra_objects::Object),
}

/// The points of one series being read.
#[derive(Debug)]
struct Current {
    key: Arc<SeriesKey>,
    value_type: ValueType,
    /// Its head points in the range, by time; taken from the front.
    head: HeadRun,
    segs: VecDeque<SegRef>,
}

/// The engine side of a query: the view, the selected series, and the
/// trees read so far.
#[derive(Debug)]
struct Source<'v, 'e> {
    view: &'v View<'e>,
    series: VecDeque<(Arc<SeriesKey>, ValueType)>,
    from: i64,
    to: i64,
    trees: Trees,
    stats: QueryStats,
}

impl<'v, 'e> Source<'v, 'e> {
    fn new(view: &'v View<'e>, sel: &Selector, from: i64, to: i64) -> Result<Source<'v, 'e>> {
        // An empty range holds no point of any series.
        let series: VecDeque<_> = if from > to {
            VecDeque::new()
        } else {
            view.series_where(sel.measurement_eq(), &sel.tags_eq(), |k| sel.matches(k))?
                .into()
        };
        Ok(Source::of(view, series, from, to))
    }

    fn of(
        view: &'v View<'e>,
        mut series: VecDeque<(Arc<SeriesKey>, ValueType)>,
        from: i64,
        to: i64,
    ) -> Source<'v, 'e> {
        if from > to {
            series.clear();
        }
        let stats = QueryStats {
            series: series.len() as u64,
            ..QueryStats::default()
        };
        Source {
            view,
            series,
            from,
            to,
            trees: Trees::new(),
            stats,
        }
    }

    /// Start reading the next selected series: its head points, then the
    /// commit to read its segments from (in that order, so a compaction
    /// in between cannot hide a point: see [`View::points`]).
    fn next_series(&mut self) -> Option<Result<Current>> {
        let (key, value_type) = self.series.pop_front()?;
        Some(self.open(key, value_type))
    }

    fn open(&mut self, key: Arc<SeriesKey>, value_type: ValueType) -> Result<Current> {
        let (snap, commit) = self.view.head_and_commit(&key)?;
        let mut head = HeadRun::default();
        if let Some((ts, values)) = snap
            .map(Snapshot::columns)
            .transpose()
            .map_err(head_err)?
            .flatten()
        {
            let pos = ts.partition_point(|&t| t < self.from);
            let end = ts.partition_point(|&t| t <= self.to);
            head = HeadRun {
                ts,
                values: Some(values),
                pos,
                end: end.max(pos),
            };
        }
        self.stats.head_points += head.len() as u64;
        let store = self.view.engine().repo().objects();
        self.trees.set(store, commit)?;
        let segs: VecDeque<SegRef> = self
            .trees
            .segments(store, &key, self.from, self.to, &mut self.stats)?
            .into();
        // A read replica fetches them together (coalesced, concurrent);
        // a local store returns at once.
        let ids: Vec<ObjectId> = segs.iter().flat_map(|s| [s.ts, s.values]).collect();
        store.prefetch(&ids)?;
        Ok(Current {
            key,
            value_type,
            head,
            segs,
        })
    }

    fn store(&self) -> &'e Store {
        self.view.engine().repo().objects()
    }

    /// The statistics in a segment's header, and what to read its points
    /// from: the decoded segment when the engine's cache holds it, else
    /// its value blob.
    fn header(&self, key: &SeriesKey, s: &SegRef) -> Result<(Held, SegmentStats)> {
        if let Some(seg) = self.view.engine().segments.get(&s.ts, &s.values, s.block) {
            let st = seg.stats.clone();
            return Ok((Held::Decoded(seg), st));
        }
        let vb = self.store().get(&s.values)?;
        let st = segment::decode_stats(&vb.data).map_err(|e| Error::Segment {
            path: seg_path(key, s.block),
            reason: e.0,
        })?;
        Ok((Held::Blob(vb), st))
    }

    /// A segment, decoded and verified (or as the cache holds it, decoded
    /// and verified before); a decoded one is offered to the cache.
    fn segment(
        &mut self,
        key: &SeriesKey,
        s: &SegRef,
        held: &Held,
    ) -> Result<Arc<segment::Segment>> {
        let vb = match held {
            Held::Decoded(seg) => {
                self.stats.segments_cached += 1;
                return Ok(seg.clone());
            }
            Held::Blob(vb) => vb,
        };
        let tb = self.store().get(&s.ts)?;
        let seg = segment::decode(s.block, &tb.data, &vb.data).map_err(|e| Error::Segment {
            path: seg_path(key, s.block),
            reason: e.0,
        })?;
        self.stats.segments_decoded += 1;
        let seg = Arc::new(seg);
        self.view
            .engine()
            .segments
            .put(s.ts, s.values, s.block, seg.clone());
        Ok(seg)
    }

    /// A segment's points in the range.
    fn points(&mut self, key: &SeriesKey, s: &SegRef, vb: &Held) -> Result<Vec<(i64, Value)>> {
        let seg = self.segment(key, s, vb)?;
        let (from, to) = (self.from, self.to);
        Ok(seg
            .points()
            .into_iter()
            .filter(|p| p.0 >= from && p.0 <= to)
            .collect())
    }
}

pub(super) fn seg_path(key: &SeriesKey, block: i64) -> String {
    format!(
        "{}/{}.v",
        segment::series_dir(&key.id()),
        segment::block_name(block)
    )
}

/// Merge a segment's points with the head's points of the same block (the
/// head wins a timestamp both hold).
pub(super) fn merge(seg: Vec<(i64, Value)>, head: Vec<(i64, Value)>) -> Vec<(i64, Value)> {
    if head.is_empty() {
        return seg;
    }
    let mut out = Vec::with_capacity(seg.len() + head.len());
    let mut h = head.into_iter().peekable();
    for p in seg {
        while let Some(q) = h.next_if(|q| q.0 < p.0) {
            out.push(q);
        }
        match h.next_if(|q| q.0 == p.0) {
            Some(q) => out.push(q),
            None => out.push(p),
        }
    }
    out.extend(h);
    out
}

/// A series' head points in the query's range, as columns, with a
/// cursor: each segment takes those before its end off the front.
#[derive(Debug, Default)]
struct HeadRun {
    ts: Vec<i64>,
    values: Option<Column>,
    /// The next point not taken.
    pos: usize,
    /// One past the last point in the range.
    end: usize,
}

impl HeadRun {
    /// Points not yet taken.
    fn len(&self) -> usize {
        self.end - self.pos
    }

    fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    /// Take the points before `t`.
    fn take_before(&mut self, t: i64) -> std::ops::Range<usize> {
        let n = self.ts[self.pos..self.end].partition_point(|&x| x < t);
        let r = self.pos..self.pos + n;
        self.pos += n;
        r
    }

    /// Take every point left.
    fn take_rest(&mut self) -> std::ops::Range<usize> {
        let r = self.pos..self.end;
        self.pos = self.end;
        r
    }

    /// The points at `r`, each with its [`Value`].
    fn points(&self, r: std::ops::Range<usize>) -> Vec<(i64, Value)> {
        self.values
            .as_ref()
            .map_or_else(Vec::new, |v| v.points_at(&self.ts, r))
    }
}

/// Take the head points before `t` off the front.
fn head_before(head: &mut HeadRun, t: i64) -> Vec<(i64, Value)> {
    let r = head.take_before(t);
    head.points(r)
}

/// The iterator [`View::query`] returns.
#[derive(Debug)]
pub struct Points<'v, 'e> {
    src: Source<'v, 'e>,
    cur: Option<Current>,
    failed: bool,
}

impl Points<'_, '_> {
    /// What the query has read so far.
    pub fn stats(&self) -> QueryStats {
        self.src.stats
    }

    fn step(&mut self) -> Result<Option<ColumnBatch>> {
        loop {
            let Some(cur) = self.cur.as_mut() else {
                match self.src.next_series() {
                    None => return Ok(None),
                    Some(c) => {
                        self.cur = Some(c?);
                        continue;
                    }
                }
            };
            let values = Column::new(cur.value_type).ok_or_else(|| {
                Error::Series(format!(
                    "series {} is of type {}, which is not stored",
                    cur.key, cur.value_type
                ))
            })?;
            let mut batch = ColumnBatch {
                key: cur.key.clone(),
                timestamps: Vec::new(),
                values,
            };
            if let Some(s) = cur.segs.pop_front() {
                let before = cur.head.take_before(s.block);
                batch.extend_head(&cur.head, before)?;
                let (vb, st) = self.src.header(&cur.key, &s)?;
                let end = s.block.saturating_add(st.span);
                let in_block = cur.head.take_before(end);
                if st.max_ts < self.src.from || st.min_ts > self.src.to {
                    self.src.stats.segments_pruned += 1;
                    batch.extend_head(&cur.head, in_block)?;
                } else if in_block.is_empty() {
                    // The common case: the segment's points in the range,
                    // copied column by column.
                    let seg = self.src.segment(&cur.key, &s, &vb)?;
                    let ts = &seg.timestamps;
                    let lo = ts.partition_point(|&t| t < self.src.from);
                    let hi = ts.partition_point(|&t| t <= self.src.to).max(lo);
                    if !batch.values.extend_from(&seg.values, lo..hi) {
                        return Err(Error::Segment {
                            path: seg_path(&cur.key, s.block),
                            reason: format!(
                                "holds {} values in a series of {} values",
                                seg.value_type(),
                                cur.value_type
                            ),
                        });
                    }
                    batch.timestamps.extend_from_slice(&ts[lo..hi]);
                } else {
                    let seg = self.src.points(&cur.key, &s, &vb)?;
                    batch.push_all(merge(seg, cur.head.points(in_block)))?;
                }
            } else {
                let rest = cur.head.take_rest();
                batch.extend_head(&cur.head, rest)?;
            }
            if cur.segs.is_empty() && cur.head.is_empty() {
                self.cur = None;
            }
            if !batch.timestamps.is_empty() {
                return Ok(Some(batch));
            }
        }
    }

    /// The next run of points as columns: what [`Iterator::next`] gives,
    /// without a [`Value`] per point. The two may be mixed.
    pub fn next_columns(&mut self) -> Option<Result<ColumnBatch>> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(b) => b.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for Points<'_, '_> {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Result<Batch>> {
        self.next_columns().map(|r| {
            r.map(|c| Batch {
                value_type: c.values.value_type(),
                points: c.points(),
                key: c.key,
            })
        })
    }
}

/// One bucket being folded, holding only what its aggregate reads: the
/// count always, the sum for sums and means, and for the others the one
/// value they keep (the min, max, first or last so far).
#[derive(Debug, Clone)]
struct Acc {
    start: i64,
    count: u64,
    sum: Sum,
    pick: Value,
}

/// What an [`Acc`] holds in place of a value its aggregate does not keep.
const NO_PICK: Value = Value::Bool(false);

impl Acc {
    /// The bucket starting at `start` holding the one value `v`.
    fn of_point(start: i64, v: &Value, agg: Agg) -> Acc {
        let (sum, pick) = match agg {
            Agg::Count => (Sum::Trues(0), NO_PICK),
            Agg::Sum | Agg::Mean => (Sum::of(v), NO_PICK),
            Agg::Min | Agg::Max | Agg::First | Agg::Last => (Sum::Trues(0), v.clone()),
        };
        Acc {
            start,
            count: 1,
            sum,
            pick,
        }
    }

    /// The bucket starting at `start` holding a whole segment.
    fn of_stats(start: i64, st: &SegmentStats, agg: Agg) -> Acc {
        let pick = match agg {
            Agg::Count | Agg::Sum | Agg::Mean => NO_PICK,
            Agg::Min => st.min.clone(),
            Agg::Max => st.max.clone(),
            Agg::First => st.first.clone(),
            Agg::Last => st.last.clone(),
        };
        Acc {
            start,
            count: st.count,
            sum: st.sum,
            pick,
        }
    }

    /// Fold in `o`, which comes later in time.
    fn add(&mut self, o: Acc, agg: Agg) {
        self.count += o.count;
        match agg {
            Agg::Count | Agg::First => {}
            Agg::Sum | Agg::Mean => self.sum = self.sum.plus(o.sum),
            Agg::Min => self.pick = rollup::extreme(&self.pick, &o.pick, false),
            Agg::Max => self.pick = rollup::extreme(&self.pick, &o.pick, true),
            Agg::Last => self.pick = o.pick,
        }
    }

    /// The value `agg` takes for this bucket.
    fn value(self, agg: Agg) -> Value {
        match agg {
            Agg::Count => Value::I64(i64::try_from(self.count).unwrap_or(i64::MAX)),
            Agg::Sum => match self.sum {
                Sum::F64(s) => Value::F64(s),
                Sum::I128(s) => i64::try_from(s).map_or(Value::F64(s as f64), Value::I64),
                Sum::Trues(n) => Value::I64(i64::try_from(n).unwrap_or(i64::MAX)),
            },
            Agg::Mean => {
                let n = self.count as f64;
                Value::F64(match self.sum {
                    Sum::F64(s) => s / n,
                    Sum::I128(s) => s as f64 / n,
                    Sum::Trues(t) => t as f64 / n,
                })
            }
            Agg::Min | Agg::Max | Agg::First | Agg::Last => self.pick,
        }
    }
}

/// The step of [`View::aggregate`] that makes one bucket of the whole
/// range, labelled by its start.
pub const WHOLE_RANGE: i64 = i64::MAX;

/// The start of the bucket of `step` ns holding `t` (aligned to multiples
/// of `step` since the Unix epoch).
pub fn bucket_of(t: i64, step: i64) -> i64 {
    // A step that does not divide i64::MIN would take the first bucket
    // below it; such a bucket is labelled i64::MIN.
    t.div_euclid(step).checked_mul(step).unwrap_or(i64::MIN)
}

/// The iterator [`View::aggregate`] returns: per series with points in the
/// range, its buckets (start, value) in time order, empty buckets omitted.
#[derive(Debug)]
pub struct Buckets<'v, 'e> {
    src: Source<'v, 'e>,
    step: i64,
    agg: Agg,
    failed: bool,
    /// Whether segment statistics and rollups may answer.
    summaries: bool,
}

impl Buckets<'_, '_> {
    /// What the query has read so far.
    pub fn stats(&self) -> QueryStats {
        self.src.stats
    }

    /// Fold every point: no segment statistics, no rollups (to verify
    /// them, or to measure what they save). Call before iterating.
    #[must_use]
    pub fn raw(mut self) -> Self {
        self.summaries = false;
        self
    }

    /// The bucket of `t`: aligned, or the whole range for [`WHOLE_RANGE`].
    fn bucket(&self, t: i64) -> i64 {
        if self.step == WHOLE_RANGE {
            self.src.from
        } else {
            bucket_of(t, self.step)
        }
    }

    fn fold_point(&self, out: &mut Vec<Acc>, t: i64, v: &Value) {
        self.fold_in(out, Acc::of_point(self.bucket(t), v, self.agg));
    }

    /// Fold `a` into the last bucket of `out`, or start the next one.
    fn fold_in(&self, out: &mut Vec<Acc>, a: Acc) {
        match out.last_mut() {
            Some(last) if last.start == a.start => last.add(a, self.agg),
            _ => out.push(a),
        }
    }

    fn series(&mut self, mut cur: Current) -> Result<Vec<Acc>> {
        let mut out: Vec<Acc> = Vec::new();
        let (from, to) = (self.src.from, self.src.to);
        while let Some(s) = cur.segs.pop_front() {
            for (t, v) in head_before(&mut cur.head, s.block) {
                self.fold_point(&mut out, t, &v);
            }
            let (vb, st) = self.src.header(&cur.key, &s)?;
            let end = s.block.saturating_add(st.span);
            let in_block = head_before(&mut cur.head, end);
            if st.max_ts < from || st.min_ts > to {
                self.src.stats.segments_pruned += 1;
                for (t, v) in in_block {
                    self.fold_point(&mut out, t, &v);
                }
                continue;
            }
            let start = self.bucket(st.min_ts);
            if self.summaries
                && in_block.is_empty()
                && st.min_ts >= from
                && st.max_ts <= to
                && start == self.bucket(st.max_ts)
            {
                // The whole segment in one bucket and in the range, and the
                // head holds nothing of its block: its header answers.
                self.src.stats.segments_from_stats += 1;
                self.fold_in(&mut out, Acc::of_stats(start, &st, self.agg));
                continue;
            }
            if let Some(rid) = s.rollup.filter(|_| {
                self.summaries
                    && in_block.is_empty()
                    && st.min_ts >= from
                    && st.max_ts <= to
                    && self.step != WHOLE_RANGE
                    && self.step % rollup::ROLLUP_STEP == 0
            }) {
                // Whole minutes inside the range: each lies in exactly one
                // bucket of a step that is a multiple of a minute.
                let rb = self.src.store().get(&rid)?;
                let need = match self.agg {
                    Agg::Count => rollup::Need {
                        sum: false,
                        min_max: false,
                        first_last: false,
                    },
                    Agg::Sum | Agg::Mean => rollup::Need {
                        sum: true,
                        min_max: false,
                        first_last: false,
                    },
                    Agg::Min | Agg::Max => rollup::Need {
                        sum: false,
                        min_max: true,
                        first_last: false,
                    },
                    Agg::First | Agg::Last => rollup::Need {
                        sum: false,
                        min_max: false,
                        first_last: true,
                    },
                };
                let cols = rollup::decode_columns(s.block, &st, &rb.data, need).map_err(|e| {
                    Error::Segment {
                        path: format!(
                            "{}/{}.{}",
                            segment::series_dir(&cur.key.id()),
                            segment::block_name(s.block),
                            rollup::ROLLUP_SUFFIX
                        ),
                        reason: e.0,
                    }
                })?;
                for i in 0..cols.len() {
                    let (sum, pick) = match self.agg {
                        Agg::Count => (Sum::Trues(0), NO_PICK),
                        Agg::Sum | Agg::Mean => (cols.sum(i), NO_PICK),
                        Agg::Min => (Sum::Trues(0), cols.min(i)),
                        Agg::Max => (Sum::Trues(0), cols.max(i)),
                        Agg::First => (Sum::Trues(0), cols.first(i)),
                        Agg::Last => (Sum::Trues(0), cols.last(i)),
                    };
                    let a = Acc {
                        start: if self.step == rollup::ROLLUP_STEP {
                            // Already a multiple of the step.
                            cols.starts[i]
                        } else {
                            bucket_of(cols.starts[i], self.step)
                        },
                        count: cols.counts[i],
                        sum,
                        pick,
                    };
                    self.fold_in(&mut out, a);
                }
                self.src.stats.segments_from_rollups += 1;
                continue;
            }
            let seg = self.src.points(&cur.key, &s, &vb)?;
            for (t, v) in merge(seg, in_block) {
                self.fold_point(&mut out, t, &v);
            }
        }
        let rest = cur.head.take_rest();
        for (t, v) in cur.head.points(rest) {
            self.fold_point(&mut out, t, &v);
        }
        Ok(out)
    }
}

/// One series' aggregate: its key and (bucket start, value) pairs.
pub type SeriesBuckets = (Arc<SeriesKey>, Vec<(i64, Value)>);

impl Iterator for Buckets<'_, '_> {
    type Item = Result<SeriesBuckets>;
    fn next(&mut self) -> Option<Result<SeriesBuckets>> {
        while !self.failed {
            let cur = match self.src.next_series()? {
                Ok(c) => c,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            let key = cur.key.clone();
            match self.series(cur) {
                Ok(accs) if accs.is_empty() => continue,
                Ok(accs) => {
                    let agg = self.agg;
                    let v = accs.into_iter().map(|a| (a.start, a.value(agg))).collect();
                    return Some(Ok((key, v)));
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl<'e> View<'e> {
    /// The series `sel` selects in this version, by key, with their types.
    pub fn select(&self, sel: &Selector) -> Result<Vec<(Arc<SeriesKey>, ValueType)>> {
        self.series_where(sel.measurement_eq(), &sel.tags_eq(), |k| sel.matches(k))
    }

    /// The points of one series in `[from, to]`.
    pub(crate) fn query_series<'v>(
        &'v self,
        key: Arc<SeriesKey>,
        value_type: ValueType,
        from: i64,
        to: i64,
    ) -> Points<'v, 'e> {
        Points {
            src: Source::of(self, VecDeque::from([(key, value_type)]), from, to),
            cur: None,
            failed: false,
        }
    }

    /// The points of the series `sel` selects with `from <= t <= to`
    /// (nanoseconds, both inclusive), series by series in key order, each in
    /// time order, as batches ([`Batch`]).
    pub fn query<'v>(&'v self, sel: &Selector, from: i64, to: i64) -> Result<Points<'v, 'e>> {
        Ok(Points {
            src: Source::new(self, sel, from, to)?,
            cur: None,
            failed: false,
        })
    }

    /// `agg` of the points of each selected series in `[from, to]`, per
    /// bucket of `step` ns (aligned to multiples of `step` since the epoch,
    /// labelled by their start; empty buckets omitted); a step of
    /// [`WHOLE_RANGE`] makes one bucket labelled `from`. A segment wholly
    /// inside one bucket and the range is answered from its header's
    /// statistics without decoding it. Float sums add per-segment partial
    /// sums, so they may differ from a strictly time-ordered sum in the last
    /// bits.
    pub fn aggregate<'v>(
        &'v self,
        sel: &Selector,
        from: i64,
        to: i64,
        step: i64,
        agg: Agg,
    ) -> Result<Buckets<'v, 'e>> {
        if step <= 0 {
            return Err(Error::Series(format!(
                "the step of an aggregate must be positive, not {step} ns"
            )));
        }
        Ok(Buckets {
            src: Source::new(self, sel, from, to)?,
            step,
            agg,
            failed: false,
            summaries: true,
        })
    }
}
