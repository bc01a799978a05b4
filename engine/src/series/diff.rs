//! Series diff between two versions: per series, the points added, changed
//! (old → new value) and removed — late corrections, retention, anything a
//! commit rewrote.
//!
//! The cost follows the segments that differ, not the data, as the tree
//! diff ([`crate::diff`]) prunes by subtree id: the data of a version is
//! its commit's segments merged with the points its WAL chunks hold beyond
//! them (the as-of head, bounded by compaction). A series whose directory
//! has the same id on both sides — known without reading it when its
//! fan-out tree `series/<aa>` has the same id — and which has no head point
//! on either side is skipped; otherwise, a block whose two blobs have the
//! same ids on both sides and holds no head point of either side is
//! skipped. Only the remaining segments are decoded, merged with the head
//! points (the head winning a timestamp both hold, as a read does) and
//! compared by timestamp; values compare bit for bit
//! ([`Value::same_bits`]).
//!
//! Skipping a block is exact because a series' segments never overlap
//! (each covers its block, `[start, start + span)`, with one block length
//! per store): the points of that range are the segment's on both sides.
//!
//! ```no_run
//! # fn main() -> sydra_engine::Result<()> {
//! use sydra_engine::series::Selector;
//! # let engine = sydra_engine::Engine::open("data", Default::default())?;
//! let mut diffs = engine.diff_series("snapshots/monday", "snapshots/tuesday", &Selector::all())?;
//! for d in diffs.by_ref() {
//!     let d = d?;
//!     println!("{}: +{} ~{} -{}", d.key, d.added.len(), d.changed.len(), d.removed.len());
//! }
//! println!("{} segments decoded", diffs.stats().segments_decoded);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::sync::Arc;

use sydra_objects::{ObjectId, Store};

use super::head::Snapshot;
use super::key::{SeriesKey, Value};
use super::query::{SegRef, Trees, head_err, list_segments, merge, seg_path};
use super::segment;
use super::selector::Selector;
use super::view::View;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// How one series differs between two versions. Each list is in time
/// order; a series only on the new side is all added, one only on the old
/// side all removed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesDiff {
    /// The series.
    pub key: Arc<SeriesKey>,
    /// Points only the new side has.
    pub added: Vec<(i64, Value)>,
    /// Timestamps both sides hold with different values: (time, old, new).
    pub changed: Vec<(i64, Value, Value)>,
    /// Points only the old side has.
    pub removed: Vec<(i64, Value)>,
}

impl SeriesDiff {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// What a series diff read, for `--stats` and the tests of its pruning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Series selected on either side.
    pub series: u64,
    /// Series skipped whole: the same directory id on both sides and no
    /// head point.
    pub series_skipped: u64,
    /// Segments skipped: the same blob ids on both sides and no head point
    /// in their block (counted once per pair, in the directories read).
    pub segments_skipped: u64,
    /// Segments decoded (each side's counted).
    pub segments_decoded: u64,
    /// Head points read (both sides).
    pub head_points: u64,
}

/// One side of the diff: a view and the trees read of its commit.
#[derive(Debug)]
struct Side<'e> {
    view: View<'e>,
    trees: Trees,
}

impl<'e> Side<'e> {
    fn store(&self) -> &'e Store {
        self.view.engine().repo().objects()
    }

    /// The head points of `key` (sorted, one per timestamp), after pointing
    /// the trees at the commit that goes with them.
    fn head(&mut self, key: &SeriesKey) -> Result<Vec<(i64, Value)>> {
        let (snap, commit) = self.view.head_and_commit(key)?;
        let store = self.store();
        self.trees.set(store, commit)?;
        match snap {
            Some(s) => Snapshot::points(s).map_err(head_err),
            None => Ok(Vec::new()),
        }
    }

    fn decode(&self, key: &SeriesKey, s: &SegRef, out: &mut Vec<(i64, Value)>) -> Result<()> {
        let store = self.store();
        let tb = store.get(&s.ts)?;
        let vb = store.get(&s.values)?;
        let seg = segment::decode(s.block, &tb.data, &vb.data).map_err(|e| Error::Segment {
            path: seg_path(key, s.block),
            reason: e.0,
        })?;
        out.extend(seg.points());
        Ok(())
    }
}

/// Whether sorted `points` hold a time in `[from, from + span)`.
fn any_in(points: &[(i64, Value)], from: i64, span: i64) -> bool {
    let i = points.partition_point(|p| p.0 < from);
    points
        .get(i)
        .is_some_and(|p| p.0 < from.saturating_add(span))
}

/// The iterator [`Engine::diff_series`] and [`View::diff`] return: one
/// [`SeriesDiff`] per selected series that differs, in key order.
#[derive(Debug)]
pub struct SeriesDiffs<'e> {
    old: Side<'e>,
    new: Side<'e>,
    series: VecDeque<Arc<SeriesKey>>,
    stats: DiffStats,
    failed: bool,
}

impl SeriesDiffs<'_> {
    /// What the diff has read so far.
    pub fn stats(&self) -> DiffStats {
        self.stats
    }

    /// The diff of one series (`None` when nothing differs).
    fn series(&mut self, key: Arc<SeriesKey>) -> Result<Option<SeriesDiff>> {
        let old_head = self.old.head(&key)?;
        let new_head = self.new.head(&key)?;
        self.stats.head_points += (old_head.len() + new_head.len()) as u64;
        let store = self.old.store();
        let dir = segment::series_dir(&key.id());
        let aa = &dir[7..9];
        let heads_empty = old_head.is_empty() && new_head.is_empty();
        let same_fanout = {
            let a = self.old.trees.fanout_id(store, aa)?;
            a == self.new.trees.fanout_id(store, aa)?
        };
        if same_fanout && heads_empty {
            self.stats.series_skipped += 1;
            return Ok(None);
        }
        let old_dir = self.old.trees.series_tree(store, &key)?;
        let new_dir = if same_fanout {
            old_dir
        } else {
            self.new.trees.series_tree(store, &key)?
        };
        if old_dir == new_dir && heads_empty {
            self.stats.series_skipped += 1;
            return Ok(None);
        }
        let list = |d: Option<ObjectId>| match d {
            Some(t) => list_segments(store, t, &key),
            None => Ok(Vec::new()),
        };
        let old_segs = list(old_dir)?;
        let new_segs = if new_dir == old_dir {
            old_segs.clone()
        } else {
            list(new_dir)?
        };
        let (mut old_pts, mut new_pts) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < old_segs.len() || j < new_segs.len() {
            let (o, n) = match (old_segs.get(i), new_segs.get(j)) {
                (Some(o), Some(n)) if o.block == n.block => (Some(o), Some(n)),
                (Some(o), Some(n)) if o.block < n.block => (Some(o), None),
                (Some(o), None) => (Some(o), None),
                (_, n) => (None, n),
            };
            i += usize::from(o.is_some());
            j += usize::from(n.is_some());
            if let (Some(o), Some(n)) = (o, n)
                && o == n
            {
                // The segment's range: up to the next segment on either
                // side bounds it without a read; only when a head point
                // falls there does its header say exactly (a merged
                // segment spans a level).
                let next = [old_segs.get(i), new_segs.get(j)]
                    .into_iter()
                    .flatten()
                    .map(|s| s.block)
                    .min()
                    .unwrap_or(i64::MAX);
                let bound = next.saturating_sub(o.block);
                let mut clear =
                    !any_in(&old_head, o.block, bound) && !any_in(&new_head, o.block, bound);
                if !clear {
                    let vb = store.get(&o.values)?;
                    let st = segment::decode_stats(&vb.data).map_err(|e| Error::Segment {
                        path: seg_path(&key, o.block),
                        reason: e.0,
                    })?;
                    let span = st.span.min(bound);
                    clear = !any_in(&old_head, o.block, span) && !any_in(&new_head, o.block, span);
                }
                if clear {
                    self.stats.segments_skipped += 1;
                    continue;
                }
            }
            if let Some(o) = o {
                self.old.decode(&key, o, &mut old_pts)?;
                self.stats.segments_decoded += 1;
            }
            if let Some(n) = n {
                self.new.decode(&key, n, &mut new_pts)?;
                self.stats.segments_decoded += 1;
            }
        }
        let old_pts = merge(old_pts, old_head);
        let new_pts = merge(new_pts, new_head);
        let d = compare(key, old_pts, new_pts);
        Ok((!d.is_empty()).then_some(d))
    }
}

/// The diff of two point lists, each strictly increasing in time.
fn compare(key: Arc<SeriesKey>, old: Vec<(i64, Value)>, new: Vec<(i64, Value)>) -> SeriesDiff {
    let mut d = SeriesDiff {
        key,
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
    };
    let mut o = old.into_iter().peekable();
    let mut n = new.into_iter().peekable();
    loop {
        match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some(a), Some(b)) if a.0 == b.0 => {
                if let (Some(a), Some(b)) = (o.next(), n.next())
                    && !a.1.same_bits(&b.1)
                {
                    d.changed.push((a.0, a.1, b.1));
                }
            }
            (Some(a), Some(b)) if a.0 < b.0 => d.removed.extend(o.next()),
            (Some(_), None) => d.removed.extend(o.next()),
            _ => d.added.extend(n.next()),
        }
    }
    d
}

impl Iterator for SeriesDiffs<'_> {
    type Item = Result<SeriesDiff>;
    fn next(&mut self) -> Option<Result<SeriesDiff>> {
        while !self.failed {
            let key = self.series.pop_front()?;
            match self.series(key) {
                Ok(None) => continue,
                Ok(Some(d)) => return Some(Ok(d)),
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
    /// How the series `sel` selects (in either view) differ from this view
    /// to `new`: see the module docs.
    pub fn diff(self, new: View<'e>, sel: &Selector) -> Result<SeriesDiffs<'e>> {
        let mut keys: Vec<Arc<SeriesKey>> = self
            .select(sel)?
            .into_iter()
            .chain(new.select(sel)?)
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        keys.dedup();
        Ok(SeriesDiffs {
            stats: DiffStats {
                series: keys.len() as u64,
                ..DiffStats::default()
            },
            series: keys.into(),
            old: Side {
                view: self,
                trees: Trees::new(),
            },
            new: Side {
                view: new,
                trees: Trees::new(),
            },
            failed: false,
        })
    }
}

impl Engine {
    /// How the series `sel` selects differ from revision `a` to revision
    /// `b` (each a ref, commit, snapshot or `REV@{TIME}`): per series that
    /// differs, in key order, the points added, changed and removed. See
    /// [`crate::series::diff`].
    pub fn diff_series(&self, a: &str, b: &str, sel: &Selector) -> Result<SeriesDiffs<'_>> {
        self.view(Some(a))?.diff(self.view(Some(b))?, sel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_sorts_points_into_added_changed_removed() {
        let key = Arc::new(SeriesKey::new("m", Vec::new(), "f").unwrap());
        let f = Value::F64;
        let old = vec![(1, f(1.0)), (2, f(2.0)), (3, f(0.0)), (5, f(f64::NAN))];
        let new = vec![(2, f(2.5)), (3, f(-0.0)), (4, f(4.0)), (5, f(f64::NAN))];
        let d = compare(key, old, new);
        assert_eq!(d.removed, vec![(1, f(1.0))]);
        assert_eq!(d.added, vec![(4, f(4.0))]);
        // -0.0 and 0.0 differ in their bits; a NaN equals itself.
        assert_eq!(d.changed, vec![(2, f(2.0), f(2.5)), (3, f(0.0), f(-0.0))]);
    }

    #[test]
    fn any_in_looks_inside_the_block_only() {
        let p = vec![(10, Value::I64(0)), (20, Value::I64(0))];
        assert!(any_in(&p, 10, 5));
        assert!(!any_in(&p, 11, 9));
        assert!(any_in(&p, 11, 10));
        assert!(!any_in(&p, 21, i64::MAX));
    }
}
