//! Deleting points (DESIGN.md §10: "delete SELECTOR --from --to: a commit
//! rewriting the affected segments").
//!
//! A delete is a compaction of everything (`compact --all`, series/compact.rs)
//! that, for every series the selector matches, leaves out the points in
//! `[from, to]`: those the head moves into segments, and those of every
//! segment of the head commit whose header says it may hold some (the
//! segment is written anew without them, or removed — both blobs — when
//! nothing is left). One commit on `refs/heads/main`; its meta says what
//! was deleted (FORMAT.md §18).
//!
//! Guarantees:
//! - The points deleted are those acknowledged before the delete began:
//!   its snapshot of the head is taken first, and every point in it moves
//!   into segments (or is dropped) with the commit's cut covering it
//!   (`series.cut_seq` = the snapshot's last seq, `series.cut_ts` past its
//!   newest block), so no rebuild of the head, after a crash or `--as-of`,
//!   replays a deleted point. Points appended while the delete runs are
//!   newer writes and stay.
//! - A crash before the ref moves leaves the previous commit and the head
//!   as they were (the delete did not happen); after, the delete happened.
//! - A live read running while the delete commits may still see some of
//!   the deleted points (the head drops them just after the commit lands);
//!   a read that starts after `delete` returns sees none.
//! - History is not rewritten: every earlier commit still holds the old
//!   segments, so `--as-of` an earlier revision shows the deleted points
//!   until the history horizon (`gc --retain`) lets GC reclaim them.
//! - A series left without points stays in the series index (and in
//!   `sydra series`): its type stays fixed, and a later write may add
//!   points again.

use std::collections::HashSet;

use sydra_objects::{Batch, ObjectId, Store, TreeBuilder};

use super::compact::{CompactOptions, CompactReport, column_of, put_segment, remove_segment};
use super::key::{SeriesId, SeriesKey};
use super::segment;
use super::selector::Selector;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::index::tree_at;
use crate::time::format_rfc3339;

/// Commit meta of a delete: the selector, canonically written.
pub const META_DELETE_SELECTOR: &str = "delete.selector";
/// Commit meta of a delete: the first time deleted (ns, inclusive).
pub const META_DELETE_FROM: &str = "delete.from";
/// Commit meta of a delete: the last time deleted (ns, inclusive).
pub const META_DELETE_TO: &str = "delete.to";

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// The delete commit (`None` when no point matched: nothing changed).
    pub commit: Option<ObjectId>,
    /// Points deleted: (series, timestamp) pairs that no longer hold a value.
    pub points_deleted: u64,
    /// Series the selector matched.
    pub series_matched: u64,
    /// Series that lost at least one point.
    pub series_affected: u64,
    /// Segments written anew without the deleted points.
    pub segments_rewritten: u64,
    /// Segments removed because every point of theirs was deleted.
    pub segments_removed: u64,
    /// The compaction the delete rode on: the head's points moved into
    /// segments (deleted ones included), segments added or replaced for
    /// them, series indexed, the head points left.
    pub compaction: CompactReport,
}

/// A delete as a compaction carries it out.
#[derive(Debug)]
pub(crate) struct Erase<'a> {
    sel: &'a Selector,
    from: i64,
    to: i64,
}

/// What an [`Erase`] did so far, within one compaction.
#[derive(Debug, Default)]
pub(crate) struct Erased {
    pub(crate) points: u64,
    pub(crate) rewritten: u64,
    pub(crate) removed: u64,
    pub(crate) matched: HashSet<SeriesId>,
    pub(crate) affected: HashSet<SeriesId>,
    /// (series directory, block) of the segments the moved points were
    /// merged into (already without the range): not to be read again.
    pub(crate) touched: HashSet<(String, i64)>,
}

impl Erase<'_> {
    /// The range to delete from `key`'s points, when the selector matches it.
    pub(crate) fn range_for(&self, key: &SeriesKey, erased: &mut Erased) -> Option<(i64, i64)> {
        if !self.sel.matches(key) {
            return None;
        }
        erased.matched.insert(key.id());
        Some((self.from, self.to))
    }

    /// The commit message: `delete SELECTOR from T to T`.
    pub(crate) fn message(&self) -> String {
        let end = |t: i64, open: i64, word: &str| {
            if t == open {
                word.to_string()
            } else {
                format_rfc3339(t)
            }
        };
        format!(
            "delete {} from {} to {}",
            self.sel,
            end(self.from, i64::MIN, "the beginning"),
            end(self.to, i64::MAX, "the end")
        )
    }

    /// The commit meta recording the delete.
    pub(crate) fn meta(&self) -> [(String, String); 3] {
        [
            (META_DELETE_SELECTOR.to_string(), self.sel.to_string()),
            (META_DELETE_FROM.to_string(), self.from.to_string()),
            (META_DELETE_TO.to_string(), self.to.to_string()),
        ]
    }
}

/// Write anew, without the points in `[from, to]`, every segment of `key`
/// in tree `tree` that holds some (by its header's bounds), except the
/// blocks the compaction already wrote; remove a segment left empty.
pub(crate) fn erase_segments(
    store: &Store,
    b: &mut TreeBuilder<'_>,
    batch: &mut Batch,
    tree: ObjectId,
    key: &SeriesKey,
    (from, to): (i64, i64),
    erased: &mut Erased,
) -> Result<()> {
    let dir = segment::series_dir(&key.id());
    let Some(raw) = tree_at(store, tree, &dir)? else {
        return Ok(());
    };
    let obj = store.get(&raw)?;
    let t = obj.tree()?;
    for e in &t.entries {
        let Some(name) = e.name.strip_suffix(".v") else {
            continue;
        };
        let bad = |reason: String| Error::Segment {
            path: format!("{dir}/{}", e.name),
            reason,
        };
        let block = segment::parse_block_name(name)
            .ok_or_else(|| bad("not a block name (YYYYMMDDTHHMMSSZ.v)".into()))?;
        if block > to || erased.touched.contains(&(dir.clone(), block)) {
            continue;
        }
        let vb = store.get(&e.id)?;
        let stats = segment::decode_stats(&vb.data).map_err(|err| bad(err.0))?;
        if stats.max_ts < from || stats.min_ts > to {
            continue;
        }
        if from <= stats.min_ts && stats.max_ts <= to {
            // Wholly inside the range: gone without decoding its columns.
            remove_segment(b, &dir, block)?;
            erased.points += stats.count;
            erased.removed += 1;
            erased.affected.insert(key.id());
            continue;
        }
        let ts = t
            .find(&format!("{name}.t"))
            .ok_or_else(|| bad("has no timestamps blob beside it".into()))?;
        let tb = store.get(&ts.id)?;
        let seg = segment::decode(block, &tb.data, &vb.data).map_err(|err| bad(err.0))?;
        let mut points = seg.points();
        let before = points.len();
        points.retain(|p| p.0 < from || p.0 > to);
        let gone = (before - points.len()) as u64;
        if gone == 0 {
            continue;
        }
        erased.points += gone;
        erased.affected.insert(key.id());
        // Not empty: the header's min or max lies outside the range.
        let ts: Vec<i64> = points.iter().map(|p| p.0).collect();
        let col = column_of(seg.value_type(), &points);
        put_segment(b, batch, &dir, block, seg.stats.span, &ts, &col)
            .map_err(|e| bad(format!("rewriting it after a delete: {e}")))?;
        erased.rewritten += 1;
    }
    Ok(())
}

impl Engine {
    /// Delete the points of the series `sel` selects with
    /// `from <= t <= to` (ns, both inclusive; `i64::MIN..=i64::MAX` for all
    /// time), in one commit on `refs/heads/main` that also compacts every
    /// point of the head: see the module docs for what it guarantees. No
    /// commit when nothing matched.
    pub fn delete(&self, sel: &Selector, from: i64, to: i64) -> Result<DeleteReport> {
        if from > to {
            return Err(Error::Series(format!(
                "the range to delete starts at {from} ns, after its end at {to} ns"
            )));
        }
        let erase = Erase { sel, from, to };
        let (compaction, erased) = self.compact_erasing(CompactOptions::default(), Some(&erase))?;
        Ok(DeleteReport {
            commit: compaction.commit,
            points_deleted: erased.points,
            series_matched: erased.matched.len() as u64,
            series_affected: erased.affected.len() as u64,
            segments_rewritten: erased.rewritten,
            segments_removed: erased.removed,
            compaction,
        })
    }
}
