//! Compaction from the head: points older than the block boundary move from
//! memory into segments (FORMAT.md §18) in one commit that also advances
//! `wal.applied_seq`; and the head's rebuild from a commit.
//!
//! The log is never rewritten. A compaction commit records a *cut*:
//! `series.cut_seq` = S, the last record its snapshot of the head
//! reflected, and `series.cut_ts` = T, the block boundary: every point of
//! a record at or below S with a timestamp before T is in segments; every
//! other point of the log after `wal.applied_seq` is in the head. The
//! commit's `wal.applied_seq` is the seq just below the oldest record the
//! head still needs (its oldest surviving point, or the definition of a
//! series the index does not yet hold). Rebuilding the head from a commit
//! therefore loads the series index, then replays the log after
//! `wal.applied_seq`, dropping a record's points before T when its seq is
//! at most S. T only grows from one compaction to the next, so a point a
//! compaction moved is never replayed into the head again.
//!
//! `compact --all` moves every point the snapshot holds, whatever its
//! time (the open block becomes a segment a later compaction replaces);
//! the head then needs nothing at or below S.
//!
//! A delete (series/delete.rs) is a compaction of everything that leaves
//! the deleted points out; its `cut_ts` is at least the end of the newest
//! block of its snapshot, so its cut covers every point the snapshot held
//! even when raw records keep `wal.applied_seq` below `cut_seq`.
//!
//! Late points — older than a block already compacted — stay in the head
//! until the next compaction, which merges them into that block's segment
//! and writes it anew (the previous version stays in history). A read
//! merges segments and head, the head winning a timestamp both hold.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sydra_objects::{Batch, Kind, ObjectId, Store, TreeBuilder};

use super::delete::{Erase, Erased};
use super::head::{CompactSeries, Head, SeriesRef, last_per_timestamp};
use super::key::{SeriesKey, Value, ValueType};
use super::record::{self, Record, SeriesDef};
use super::rollup;
use super::segment;
use crate::engine::{Edited, Engine};
use crate::error::{Error, Result};
use crate::index::tree_at;
use crate::replay::Replay;

/// Commit meta: the last record a compaction's snapshot reflected.
pub const META_CUT_SEQ: &str = "series.cut_seq";
/// Commit meta: the block boundary of the last compaction (ns).
pub const META_CUT_TS: &str = "series.cut_ts";
/// Commit meta: the block length segments were cut with (ns).
pub const META_BLOCK: &str = "series.block";

/// What to compact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactOptions {
    /// Move every point of the head, the newest block's too.
    pub all: bool,
    /// Retention by data time: drop points before this time (ns) instead of
    /// writing them, and remove segments whose block ends at or before it.
    pub retention_before: Option<i64>,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// The compaction commit (`None` when there was nothing to do).
    pub commit: Option<ObjectId>,
    /// Points moved from the head into segments.
    pub points: u64,
    /// Segments written for blocks that had none.
    pub segments_added: u64,
    /// Segments written anew because late points arrived for their block.
    pub segments_replaced: u64,
    /// Segments merged away into a wider level's segment.
    pub segments_merged: u64,
    /// Segments removed by retention.
    pub segments_expired: u64,
    /// Head points dropped by retention.
    pub points_expired: u64,
    /// Series added to the series index.
    pub series_indexed: u64,
    /// Points before this time moved (`None` with `--all`: every point).
    pub cut: Option<i64>,
    /// The commit's `wal.applied_seq`.
    pub applied_seq: u64,
    /// Points left in the head.
    pub head_points: u64,
}

/// A commit's cut (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    pub(crate) seq: u64,
    pub(crate) ts: i64,
}

impl Cut {
    /// Whether the head holds a point of record `seq` at time `t`.
    pub(crate) fn in_head(&self, seq: u64, t: i64) -> bool {
        seq > self.seq || t >= self.ts
    }
}

fn meta_i64(c: &sydra_objects::CommitRef<'_>, key: &str) -> Option<i64> {
    std::str::from_utf8(c.meta(key)?).ok()?.parse().ok()
}

/// The cut and block length a commit records.
pub(crate) fn cut_of(store: &Store, commit: Option<ObjectId>) -> Result<(Cut, Option<i64>)> {
    let none = Cut {
        seq: 0,
        ts: i64::MIN,
    };
    let Some(id) = commit else {
        return Ok((none, None));
    };
    let obj = store.get(&id)?;
    let c = obj.commit()?;
    let cut = Cut {
        seq: c.meta_u64(META_CUT_SEQ).unwrap_or(0),
        ts: meta_i64(&c, META_CUT_TS).unwrap_or(i64::MIN),
    };
    Ok((cut, meta_i64(&c, META_BLOCK).filter(|b| *b > 0)))
}

/// Every series the index of tree `root` holds.
pub(crate) fn index_of(store: &Store, root: ObjectId) -> Result<Vec<SeriesDef>> {
    let Some(dir) = tree_at(store, root, "index/series")? else {
        return Ok(Vec::new());
    };
    let obj = store.get(&dir)?;
    let mut out = Vec::new();
    for e in obj.tree()?.entries {
        if e.name == segment::INDEX_ALL && e.kind == Kind::Blob {
            let blob = store.get(&e.id)?;
            let defs = segment::decode_index_all(&blob.data).map_err(|err| Error::Segment {
                path: format!("index/series/{}", e.name),
                reason: err.0,
            })?;
            out.extend(defs);
            continue;
        }
        let aa = u8::from_str_radix(e.name, 16)
            .ok()
            .filter(|_| e.name.len() == 2 && e.kind == Kind::Blob)
            .ok_or_else(|| Error::Segment {
                path: format!("index/series/{}", e.name),
                reason: "not a two-hex-digit index blob".into(),
            })?;
        let blob = store.get(&e.id)?;
        let defs = segment::decode_index(aa, &blob.data).map_err(|err| Error::Segment {
            path: format!("index/series/{}", e.name),
            reason: err.0,
        })?;
        out.extend(defs);
    }
    Ok(out)
}

/// The index blob at `path` in `b`, decoded (`aa`: its bucket; `None` for
/// `index/series/all`), or nothing.
fn read_index(
    store: &Store,
    b: &mut TreeBuilder<'_>,
    path: &str,
    aa: Option<u8>,
) -> Result<Option<Vec<SeriesDef>>> {
    let Some(id) = b.get(path)?.and_then(|l| l.id) else {
        return Ok(None);
    };
    let blob = store.get(&id)?;
    match aa {
        Some(aa) => segment::decode_index(aa, &blob.data),
        None => segment::decode_index_all(&blob.data),
    }
    .map(Some)
    .map_err(|e| Error::Segment {
        path: path.to_owned(),
        reason: e.0,
    })
}

/// Add the series of `new` (by id prefix) to the index in `b`: one blob,
/// `index/series/all`, while the store has at most
/// [`segment::INDEX_ALL_MAX`] series (an open or an as-of read then loads
/// one object), one blob per id prefix past that (a compaction then
/// rewrites only the prefixes that gained series). The switch happens once,
/// in the compaction that crosses the bound; a store that fanned out stays
/// fanned out (series never leave the index).
fn write_index(
    store: &Store,
    b: &mut TreeBuilder<'_>,
    batch: &mut Batch,
    new_index: std::collections::BTreeMap<u8, Vec<SeriesDef>>,
) -> Result<()> {
    let all_path = format!("index/series/{}", segment::INDEX_ALL);
    let bucket = |aa: u8| format!("index/series/{aa:02x}");
    let put = |b: &mut TreeBuilder<'_>, batch: &mut Batch, path: &str, defs: Vec<SeriesDef>| {
        let mut keyed: Vec<_> = defs.into_iter().map(|d| (d.key.id(), d)).collect();
        let id = batch.put(Kind::Blob, &segment::encode_index(&mut keyed))?;
        b.upsert(path, Kind::Blob, id)?;
        Ok::<(), Error>(())
    };
    let added: usize = new_index.values().map(Vec::len).sum();
    let small = match read_index(store, b, &all_path, None)? {
        Some(old) => Some(old),
        None => {
            let mut fanned = false;
            for aa in 0..=255u8 {
                if b.get(&bucket(aa))?.is_some() {
                    fanned = true;
                    break;
                }
            }
            (!fanned).then(Vec::new)
        }
    };
    match small {
        Some(mut all) if all.len() + added <= segment::INDEX_ALL_MAX => {
            all.extend(new_index.into_values().flatten());
            put(b, batch, &all_path, all)
        }
        Some(all) => {
            // Crossing the bound: fan out, once.
            let mut by: std::collections::BTreeMap<u8, Vec<SeriesDef>> = new_index;
            for d in all {
                by.entry(d.key.id().0[0]).or_default().push(d);
            }
            for (aa, defs) in by {
                put(b, batch, &bucket(aa), defs)?;
            }
            b.remove(&all_path)?;
            Ok(())
        }
        None => {
            for (aa, mut defs) in new_index {
                let path = bucket(aa);
                if let Some(old) = read_index(store, b, &path, Some(aa))? {
                    defs.extend(old);
                }
                put(b, batch, &path, defs)?;
            }
            Ok(())
        }
    }
}

/// A head as of `commit`: its series index, then the log `replay` streams
/// (records after its applied seq), minus what its cut says is in segments.
pub(crate) fn build_head(
    store: &Store,
    commit: Option<ObjectId>,
    replay: &mut Replay,
    mut raw: impl FnMut(u64),
) -> Result<Head> {
    let (cut, _) = cut_of(store, commit)?;
    let mut head = Head::new(1);
    if let Some(id) = commit {
        let tree = store.get(&id)?.commit()?.tree;
        for d in index_of(store, tree)? {
            head.load_indexed(&d).map_err(|e| Error::Segment {
                path: format!("index/series (series {})", d.key),
                reason: e.to_string(),
            })?;
        }
    }
    head.last_seq = cut.seq.max(replay.applied_seq());
    while let Some(r) = replay.next_record() {
        let (seq, payload) = r?;
        if !record::is_series_record(payload) {
            raw(seq);
            continue;
        }
        let bad = |reason: String| Error::SeriesRecord { seq, reason };
        let rec = record::decode(payload).map_err(|e| bad(e.to_string()))?;
        match &rec {
            Record::Series(defs) => defs.iter().try_for_each(|d| head.replay_def(seq, d)),
            Record::Samples(groups) => groups
                .iter()
                .try_for_each(|g| head.replay_samples(seq, g, |t| cut.in_head(seq, t))),
        }
        .map_err(|e| bad(e.to_string()))?;
        head.last_seq = head.last_seq.max(seq);
    }
    Ok(head)
}

/// The blob paths of every segment under `root`'s `series/` whose block
/// (of `span` ns) ends at or before `horizon`.
fn expired_segments(store: &Store, root: ObjectId, span: i64, horizon: i64) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let Some(series) = tree_at(store, root, "series")? else {
        return Ok(out);
    };
    let top = store.get(&series)?;
    for aa in top.tree()?.entries.iter().filter(|e| e.kind == Kind::Tree) {
        let fan = store.get(&aa.id)?;
        for dir in fan.tree()?.entries.iter().filter(|e| e.kind == Kind::Tree) {
            let obj = store.get(&dir.id)?;
            let t = obj.tree()?;
            for e in t.entries.iter().filter(|e| e.kind == Kind::Blob) {
                let Some(name) = e.name.strip_suffix(".v") else {
                    continue;
                };
                let Some(block) = segment::parse_block_name(name) else {
                    continue;
                };
                // Not over even at the store's block length: skip without
                // reading; else its header says how far it reaches (a
                // merged segment spans a level).
                if block.saturating_add(span) > horizon {
                    continue;
                }
                let path = format!("series/{}/{}/{name}", aa.name, dir.name);
                let vb = store.get(&e.id)?;
                let st = segment::decode_stats(&vb.data).map_err(|err| Error::Segment {
                    path: format!("{path}.v"),
                    reason: err.0,
                })?;
                if block.saturating_add(st.span) > horizon {
                    continue;
                }
                for x in t.entries.iter().filter(|x| x.kind == Kind::Blob) {
                    if x.name.split_once('.').is_some_and(|(n, _)| n == name) {
                        out.push(format!("series/{}/{}/{}", aa.name, dir.name, x.name));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// A segment's two blob paths.
pub(super) fn segment_paths(dir: &str, block: i64) -> (String, String) {
    let name = segment::block_name(block);
    (format!("{dir}/{name}.t"), format!("{dir}/{name}.v"))
}

/// Write the segment of `block` under `dir` — its timestamps and value
/// blobs, and its rollup where one pays ([`rollup::encode`]; a stale one is
/// removed) — through `b`.
pub(crate) fn put_segment(
    b: &mut TreeBuilder<'_>,
    batch: &mut Batch,
    dir: &str,
    block: i64,
    span: i64,
    ts: &[i64],
    col: &super::head::Column,
) -> Result<()> {
    let Some((tb, vb)) = segment::encode(span, ts, col) else {
        return Err(Error::Series("an empty segment".into()));
    };
    let (tp, vp) = segment_paths(dir, block);
    let tid = batch.put(Kind::Blob, &tb)?;
    let vid = batch.put(Kind::Blob, &vb)?;
    b.upsert(&tp, Kind::Blob, tid)?;
    b.upsert(&vp, Kind::Blob, vid)?;
    let rp = rollup_path(dir, block);
    // A block of a minute or less has its minute's statistics in the
    // segment header already.
    match rollup::encode(ts, col).filter(|_| span > rollup::ROLLUP_STEP) {
        Some(rb) => {
            let rid = batch.put(Kind::Blob, &rb)?;
            b.upsert(&rp, Kind::Blob, rid)?;
        }
        None => {
            b.remove(&rp)?;
        }
    }
    Ok(())
}

/// Remove the segment of `block` under `dir` (its two blobs and its
/// rollup) through `b`.
pub(crate) fn remove_segment(b: &mut TreeBuilder<'_>, dir: &str, block: i64) -> Result<()> {
    let (tp, vp) = segment_paths(dir, block);
    b.remove(&tp)?;
    b.remove(&vp)?;
    b.remove(&rollup_path(dir, block))?;
    Ok(())
}

/// A segment's rollup blob path.
pub(crate) fn rollup_path(dir: &str, block: i64) -> String {
    format!(
        "{dir}/{}.{}",
        segment::block_name(block),
        rollup::ROLLUP_SUFFIX
    )
}

/// The segment under `dir` (through `b`) whose range holds `t`: the only
/// candidates are the windows of each level and of the store's `span` that
/// hold `t`, widest first. Returns its start and the segment, or the start
/// of `t`'s block and nothing.
///
/// `written` lists the segments (start, span) this compaction already wrote
/// for the series: their blobs are not in the store yet, and the points
/// being placed come after them, so they are never rewritten here.
fn covering_segment(
    store: &Store,
    b: &mut TreeBuilder<'_>,
    dir: &str,
    t: i64,
    span: i64,
    written: &[(i64, i64)],
) -> Result<(i64, Option<segment::Segment>)> {
    let levels = segment::LEVELS
        .iter()
        .rev()
        .filter(|l| **l > span && **l % span == 0);
    for w in levels
        .map(|l| segment::block_start(t, *l))
        .chain([segment::block_start(t, span)])
    {
        if let Some(&(_, s)) = written.iter().find(|x| x.0 == w) {
            if t < w.saturating_add(s) {
                return Err(Error::Series(format!(
                    "compaction placed a point at {t} into a segment it already wrote"
                )));
            }
            continue;
        }
        if let Some(seg) = existing_segment(store, b, dir, w)?
            && t < w.saturating_add(seg.stats.span)
        {
            return Ok((w, Some(seg)));
        }
    }
    Ok((segment::block_start(t, span), None))
}

/// Merge a series' segments into the next level where a window has closed
/// (it ends at or before `cut_ts`) and its segments, at least two, hold at
/// most [`segment::LEVEL_MAX_POINTS`] together: one segment spanning the
/// window replaces them (history keeps them). Looks at the segments of the
/// head commit `commit` and leaves alone windows this compaction wrote
/// into (`written`: their starts); one level per window per compaction.
/// Returns the segments merged away.
#[allow(clippy::too_many_arguments)]
fn merge_levels(
    store: &Store,
    b: &mut TreeBuilder<'_>,
    batch: &mut Batch,
    commit: ObjectId,
    snap: &CompactSeries,
    span: i64,
    cut_ts: i64,
    written: &[i64],
) -> Result<u64> {
    let dir = segment::series_dir(&snap.key.id());
    let root = store.get(&commit)?.commit()?.tree;
    let Some(t) = tree_at(store, root, &dir)? else {
        return Ok(0);
    };
    let mut segs = super::query::list_segments(store, t, &snap.key)?;
    let mut merged = 0;
    let mut busy = written.to_vec();
    for level in segment::LEVELS
        .iter()
        .filter(|l| **l > span && **l % span == 0)
    {
        let mut k = 0;
        while k < segs.len() {
            let w = segment::block_start(segs[k].block, *level);
            let end = w.saturating_add(*level);
            let n = segs[k..].partition_point(|s| s.block < end);
            let touched = busy.iter().any(|&x| x >= w && x < end);
            if n < 2 || end > cut_ts || touched {
                k += n.max(1);
                continue;
            }
            let mut count = 0u64;
            let mut decoded = Vec::with_capacity(n);
            for s in &segs[k..k + n] {
                let vb = store.get(&s.values)?;
                let st = segment::decode_stats(&vb.data).map_err(|e| Error::Segment {
                    path: segment_paths(&dir, s.block).1,
                    reason: e.0,
                })?;
                count += st.count;
                if count > segment::LEVEL_MAX_POINTS || s.block.saturating_add(st.span) > end {
                    break;
                }
                decoded.push((s.block, s.ts, vb));
            }
            if decoded.len() < n {
                k += n;
                continue;
            }
            let mut points = Vec::with_capacity(count as usize);
            for (block, ts, vb) in &decoded {
                let tb = store.get(ts)?;
                let seg =
                    segment::decode(*block, &tb.data, &vb.data).map_err(|e| Error::Segment {
                        path: segment_paths(&dir, *block).1,
                        reason: e.0,
                    })?;
                points.extend(seg.points());
            }
            for (block, _, _) in &decoded {
                remove_segment(b, &dir, *block)?;
            }
            let col = column_of(snap.value_type, &points);
            let ts: Vec<i64> = points.into_iter().map(|p| p.0).collect();
            put_segment(b, batch, &dir, w, *level, &ts, &col)?;
            merged += n as u64 - 1;
            // The window is one new segment now: out of this pass (the next
            // level's window holding it counts as written to).
            segs.drain(k..k + n);
            busy.push(w);
        }
    }
    Ok(merged)
}

/// Read and verify the segment of `block` at `dir` through `b`, if any.
fn existing_segment(
    store: &Store,
    b: &mut TreeBuilder<'_>,
    dir: &str,
    block: i64,
) -> Result<Option<segment::Segment>> {
    let (tp, vp) = segment_paths(dir, block);
    let (Some(t), Some(v)) = (b.get(&tp)?, b.get(&vp)?) else {
        return Ok(None);
    };
    let (Some(t), Some(v)) = (t.id, v.id) else {
        return Ok(None);
    };
    let tb = store.get(&t)?;
    let vb = store.get(&v)?;
    segment::decode(block, &tb.data, &vb.data)
        .map(Some)
        .map_err(|e| Error::Segment {
            path: vp,
            reason: e.0,
        })
}

pub(super) fn column_of(t: ValueType, points: &[(i64, Value)]) -> super::head::Column {
    let mut col = super::head::Column::new(t).unwrap_or(super::head::Column::F64(Vec::new()));
    for (_, v) in points {
        col.push(v);
    }
    col
}

impl Engine {
    /// Move the head's points older than the newest block's start (all of
    /// them with `all`) into segments, in one commit on `refs/heads/main`.
    /// Safe beside writers: points they append meanwhile stay in the head.
    pub fn compact(&self, options: CompactOptions) -> Result<CompactReport> {
        self.compact_erasing(options, None).map(|(r, _)| r)
    }

    /// [`Engine::compact`], and with `erase` a delete (series/delete.rs):
    /// everything moves (as `all`), and the series it selects lose their
    /// points in its range, from the moved points and from the segments of
    /// the head commit alike, in the same commit.
    pub(crate) fn compact_erasing(
        &self,
        options: CompactOptions,
        erase: Option<&Erase<'_>>,
    ) -> Result<(CompactReport, Erased)> {
        let options = CompactOptions {
            all: options.all || erase.is_some(),
            ..options
        };
        let _one = self.compact_lock.lock();
        let (s_seq, max_ts, snaps) = {
            let head = self.live_head()?;
            let (s, snaps) = head.compaction_snapshot();
            (s, head.max_ts, snaps)
        };
        // Everything the snapshot reflects must be durable before a commit
        // claims it: its seqs must never be reused after a crash.
        if s_seq > 0 {
            self.note(self.wal().sync().map_err(Error::from))?;
        }
        let store = self.repo().objects();
        let _commit = self.commit_lock.lock();
        let head_commit = self.head()?;
        let (prev, stored_block) = cut_of(store, head_commit)?;
        let span = stored_block.unwrap_or(self.options().series_block_ns);
        if span <= 0 || span % 1_000_000_000 != 0 || span > segment::MAX_BLOCK_NS {
            return Err(Error::Series(format!(
                "the series block length {span} ns is not a whole number of seconds \
                 between 1 s and 100 days"
            )));
        }
        let candidate = max_ts.map(|m| segment::block_start(m, span));
        let mut cut_ts = match candidate {
            Some(c) => c.max(prev.ts),
            None => prev.ts,
        };
        if erase.is_some()
            && let Some(c) = candidate
        {
            // A delete's cut covers every point its snapshot holds (they are
            // all before the end of the newest block): raw records not yet
            // applied can hold `wal.applied_seq` below `cut_seq`, and a
            // rebuild replaying a record at or below it must not bring a
            // deleted point back.
            cut_ts = cut_ts.max(c.saturating_add(span));
        }
        let moves_before = (!options.all).then_some(cut_ts);
        // The tree the level decisions look at: the head commit's, or an
        // empty one before the first commit.
        let base_root = match head_commit {
            Some(c) => Some(store.get(&c)?.commit()?.tree),
            None => None,
        };
        let mut report = CompactReport {
            cut: moves_before,
            ..CompactReport::default()
        };
        let mut cut_head: Vec<(SeriesRef, u64, Vec<Arc<super::head::Chunk>>)> = Vec::new();
        let mut indexed: Vec<SeriesRef> = Vec::new();
        let mut floor = s_seq.saturating_add(1);
        let mut work = false;
        let mut erased = Erased::default();
        let message = erase.map_or_else(|| "compaction".to_string(), Erase::message);
        let r = self.checkpoint_locked(None, &message, |b, batch| {
            let mut new_index: std::collections::BTreeMap<u8, Vec<SeriesDef>> = Default::default();
            for snap in &snaps {
                let split = snap
                    .split(moves_before)
                    .map_err(|e| Error::Series(e.to_string()))?;
                if let Some(f) = split.first_seq {
                    floor = floor.min(f);
                }
                if !snap.indexed {
                    new_index
                        .entry(snap.key.id().0[0])
                        .or_default()
                        .push(SeriesDef {
                            series: snap.series,
                            value_type: snap.value_type,
                            key: (*snap.key).clone(),
                        });
                    indexed.push(SeriesRef(snap.series));
                }
                let mut split = split;
                if let Some(h) = options.retention_before {
                    let before = split.moved.len();
                    split.moved.retain(|p| p.0 >= h);
                    report.points_expired += (before - split.moved.len()) as u64;
                }
                let range = erase.and_then(|e| e.range_for(&snap.key, &mut erased));
                if !split.moved.is_empty() {
                    let mut written = Vec::new();
                    let levels = match (erase, candidate) {
                        (None, Some(close)) => Some((base_root, close)),
                        _ => None,
                    };
                    report.points += self.write_segments(
                        store,
                        b,
                        batch,
                        snap,
                        split.moved,
                        span,
                        range,
                        &mut report,
                        &mut erased,
                        &mut written,
                        levels,
                    )?;
                    // Levels: a delete leaves the layout alone (its second
                    // pass rewrites the head commit's segments by name).
                    if erase.is_none()
                        && let Some(c) = head_commit
                    {
                        report.segments_merged +=
                            merge_levels(store, b, batch, c, snap, span, cut_ts, &written)?;
                    }
                }
                cut_head.push((SeriesRef(snap.series), snap.n, split.survivors));
            }
            if let (Some(h), Some(c)) = (options.retention_before, head_commit) {
                let tree = store.get(&c)?.commit()?.tree;
                for path in expired_segments(store, tree, span, h)? {
                    if b.remove(&path)? && path.ends_with(".v") {
                        report.segments_expired += 1;
                    }
                }
            }
            if let (Some(e), Some(c)) = (erase, head_commit) {
                let tree = store.get(&c)?.commit()?.tree;
                for d in index_of(store, tree)? {
                    if let Some((from, to)) = e.range_for(&d.key, &mut erased) {
                        super::delete::erase_segments(
                            store,
                            b,
                            batch,
                            tree,
                            &d.key,
                            (from, to),
                            &mut erased,
                        )?;
                    }
                }
            }
            if !new_index.is_empty() {
                write_index(store, b, batch, new_index)?;
            }
            report.series_indexed = indexed.len() as u64;
            work = match erase {
                // A delete that removes nothing changes nothing.
                Some(_) => erased.points > 0,
                None => {
                    report.points > 0
                        || report.series_indexed > 0
                        || report.segments_expired > 0
                        || report.points_expired > 0
                }
            };
            if !work {
                return Ok(Edited::Abandon);
            }
            // Raw records the caller has not applied stay unapplied.
            let raw_floor = self.raw_pending.lock().front().copied().unwrap_or(u64::MAX);
            let mut meta = vec![
                (META_CUT_SEQ.to_string(), s_seq.to_string()),
                (META_CUT_TS.to_string(), cut_ts.to_string()),
                (META_BLOCK.to_string(), span.to_string()),
            ];
            if let Some(e) = erase {
                meta.extend(e.meta());
            }
            Ok(Edited::CommitWith {
                applied: floor.min(raw_floor).saturating_sub(1),
                meta,
            })
        });
        let checkpoint = match self.note(r)? {
            Some(c) => c,
            None => {
                // Nothing moved (a delete that matched no point abandons
                // the compaction it rode on too).
                let report = CompactReport {
                    head_points: self.head.lock().point_count(),
                    cut: report.cut,
                    ..CompactReport::default()
                };
                return Ok((report, erased));
            }
        };
        report.commit = Some(checkpoint.commit);
        self.series_cut.store(cut_ts, Ordering::Release);
        self.series_block.store(span, Ordering::Release);
        report.applied_seq = checkpoint.applied_seq;
        let mut head = self.head.lock();
        for (r, n, survivors) in cut_head {
            head.replace_front(r.0, n, survivors)
                .map_err(|e| Error::Series(e.to_string()))?;
        }
        for r in indexed {
            head.mark_indexed(r.0);
        }
        self.series_floor
            .store(head.floor(), std::sync::atomic::Ordering::Release);
        report.head_points = head.point_count();
        Ok((report, erased))
    }

    /// The compaction an embedder should run now, if any: run it. Call it
    /// after commits (cheap when there is nothing to do: one look at the
    /// head and the head commit's cut). It compacts when the head holds
    /// points of a block before the newest one (the blocks a compaction
    /// would move), and compacts everything when the head holds more than
    /// `Options::series_head_max_bytes` — the bound on the head's memory.
    pub fn maintain(&self) -> Result<Option<CompactReport>> {
        let (max_ts, bytes) = {
            let head = self.live_head()?;
            (head.max_ts, head.bytes_estimate())
        };
        if bytes > self.options().series_head_max_bytes {
            return self
                .compact(CompactOptions {
                    all: true,
                    retention_before: None,
                })
                .map(Some);
        }
        let Some(max_ts) = max_ts else {
            return Ok(None);
        };
        let span = self.series_block.load(Ordering::Acquire);
        let cut = self.series_cut.load(Ordering::Acquire);
        if span <= 0 || segment::block_start(max_ts, span) <= cut {
            return Ok(None);
        }
        self.compact(CompactOptions::default()).map(Some)
    }

    /// Write the segments of one series' moved points (merged with the
    /// segments already there), without the points in `erase` (a delete's
    /// range); returns the points moved.
    #[allow(clippy::too_many_arguments)]
    fn write_segments(
        &self,
        store: &Store,
        b: &mut TreeBuilder<'_>,
        batch: &mut Batch,
        snap: &CompactSeries,
        moved: Vec<(i64, Value)>,
        span: i64,
        erase: Option<(i64, i64)>,
        report: &mut CompactReport,
        erased: &mut Erased,
        written: &mut Vec<i64>,
        levels: Option<(Option<ObjectId>, i64)>,
    ) -> Result<u64> {
        let n = moved.len() as u64;
        let points = last_per_timestamp(moved).map_err(|e| Error::Series(e.to_string()))?;
        let dir = segment::series_dir(&snap.key.id());
        let mut spans: Vec<(i64, i64)> = Vec::new();
        // Levels: where the head commit has no segment in a closed window
        // and the points moving into it are few, they go straight into one
        // segment of that level (a bulk load of a slow series does not
        // write an hour segment per point).
        let (existing, close) = match levels {
            Some((root, close)) => {
                let found = match root {
                    Some(r) => tree_at(store, r, &dir)?,
                    None => None,
                };
                let starts: Vec<i64> = match found {
                    Some(t) => super::query::list_segments(store, t, &snap.key)?
                        .iter()
                        .map(|s| s.block)
                        .collect(),
                    None => Vec::new(),
                };
                (starts, Some(close))
            }
            None => (Vec::new(), None),
        };
        let mut i = 0;
        while i < points.len() {
            // The segment already covering this point (of any level), else
            // a new one: of the widest level that fits, or the store's block.
            let (mut block, old) = covering_segment(store, b, &dir, points[i].0, span, &spans)?;
            let mut seg_span = old.as_ref().map_or(span, |o| o.stats.span);
            if old.is_none()
                && let Some(close) = close
            {
                for level in segment::LEVELS
                    .iter()
                    .rev()
                    .filter(|l| **l > span && **l % span == 0)
                {
                    let w = segment::block_start(points[i].0, *level);
                    let end = w.saturating_add(*level);
                    let k = existing.partition_point(|&x| x < w);
                    // Nothing in the window yet: not in the head commit,
                    // not written by this compaction.
                    let empty = existing.get(k).is_none_or(|&x| x >= end)
                        && !spans.iter().any(|&(x, _)| x >= w && x < end);
                    let n = points[i..].partition_point(|p| p.0 < end) as u64;
                    if end <= close && empty && n <= segment::LEVEL_MAX_POINTS {
                        (block, seg_span) = (w, *level);
                        break;
                    }
                }
            }
            let end = block.saturating_add(seg_span);
            // At least one point: a block end saturated at i64::MAX must not
            // stall the loop.
            let j = i + points[i..].partition_point(|p| p.0 < end).max(1);
            let mut block_points = points[i..j].to_vec();
            let had_old = old.is_some();
            if let Some(old) = old {
                if old.value_type() != snap.value_type {
                    return Err(Error::Segment {
                        path: segment_paths(&dir, block).1,
                        reason: format!(
                            "holds {} values, the head's {} holds {}",
                            old.value_type(),
                            snap.key,
                            snap.value_type
                        ),
                    });
                }
                let mut all = old.points();
                all.extend(block_points);
                block_points = last_per_timestamp(all).map_err(|e| Error::Series(e.to_string()))?;
            }
            let mut gone = 0;
            if let Some((from, to)) = erase {
                let before = block_points.len();
                block_points.retain(|p| p.0 < from || p.0 > to);
                gone = (before - block_points.len()) as u64;
                erased.points += gone;
                erased.touched.insert((dir.clone(), block));
                if gone > 0 {
                    erased.affected.insert(snap.key.id());
                }
            }
            if block_points.is_empty() {
                // Every point of the block was deleted.
                if had_old {
                    remove_segment(b, &dir, block)?;
                    erased.removed += 1;
                }
                i = j;
                continue;
            }
            match (had_old, gone > 0) {
                (true, true) => erased.rewritten += 1,
                (true, false) => report.segments_replaced += 1,
                (false, _) => report.segments_added += 1,
            }
            let col = column_of(snap.value_type, &block_points);
            let ts: Vec<i64> = block_points.into_iter().map(|p| p.0).collect();
            written.push(block);
            spans.push((block, seg_span));
            put_segment(b, batch, &dir, block, seg_span, &ts, &col).map_err(|e| match e {
                Error::Series(why) => Error::Series(format!("{}: {why}", snap.key)),
                e => e,
            })?;
            i = j;
        }
        Ok(n)
    }

    /// The segments of series `key` in commit `commit`'s tree, verified, in
    /// time order, with their block starts.
    pub fn segments(&self, commit: ObjectId, key: &SeriesKey) -> Result<Vec<segment::Segment>> {
        let store = self.repo().objects();
        let tree = store.get(&commit)?.commit()?.tree;
        let dir = segment::series_dir(&key.id());
        let Some(raw) = tree_at(store, tree, &dir)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for s in super::query::list_segments(store, raw, key)? {
            let tb = store.get(&s.ts)?;
            let vb = store.get(&s.values)?;
            let seg =
                segment::decode(s.block, &tb.data, &vb.data).map_err(|err| Error::Segment {
                    path: super::query::seg_path(key, s.block),
                    reason: err.0,
                })?;
            out.push(seg);
        }
        Ok(out)
    }
}
