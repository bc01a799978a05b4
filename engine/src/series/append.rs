//! The write path's API on [`Engine`]: series handles, the appender, the
//! head's rebuild at open, and reads of the head.
//!
//! ```no_run
//! # fn main() -> sydra_engine::Result<()> {
//! use sydra_engine::series::{SeriesKey, Value};
//! let engine = sydra_engine::Engine::create("data", Default::default())?;
//! let cpu = engine.series(&SeriesKey::new("cpu", [("host".into(), "a".into())], "usage")?)?;
//! let mut app = engine.appender();
//! app.append(cpu, 1_700_000_000_000_000_000, Value::F64(0.5))?;
//! app.append(cpu, 1_700_000_001_000_000_000, Value::F64(0.7))?;
//! let done = app.commit()?; // durable per the sync mode when it returns
//! assert_eq!(done.points, 2);
//! # Ok(()) }
//! ```
//!
//! A commit is one group-committed set of WAL records: a definition record
//! for every series of the commit not yet in the log (so a series is always
//! in the log before its first point), then its samples. With
//! `SyncMode::Always` the points are durable when `commit` returns; with
//! the other modes, as that mode says. Points are visible to reads of the
//! head as soon as their records are queued, in log order, so the head's
//! "last write" for a timestamp is the log's; a commit that then fails to
//! become durable poisons the engine (reopen rebuilds the head from what is
//! in the log).

use ahash::AHashMap as HashMap;
use std::ops::RangeInclusive;

use super::head::{Column, HeadError, SeriesRef};
use super::key::{SeriesKey, Value, ValueType};
use super::record::{SamplesRecord, SeriesRecord, ValuesRef};
use crate::engine::Engine;
use crate::error::{Error, Result};

/// Bytes of sample payload per WAL record before a commit starts another
/// (well under the default 16 MiB record limit).
const RECORD_TARGET: usize = 1 << 20;
/// The most bytes one point takes in a samples record (two 10-byte varints).
const MAX_POINT_BYTES: usize = 20;
/// The most bytes a group's header takes (ref, type, count), with the
/// record's own header.
const GROUP_HEADER_BYTES: usize = 32;

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppendCommit {
    /// Points committed.
    pub points: u64,
    /// Series whose definition this commit logged.
    pub new_series: u64,
    /// The WAL seqs of its records (`None` for an empty commit).
    pub seqs: Option<RangeInclusive<u64>>,
}

/// Collects points, then commits them together. Dropping it without
/// `commit` discards them.
#[derive(Debug)]
pub struct Appender<'e> {
    engine: &'e Engine,
    /// Per series: timestamps and values, in append order.
    groups: HashMap<u64, (Vec<i64>, Column)>,
    points: u64,
}

impl Engine {
    /// The handle of the series `key`, made if the engine has not seen it.
    /// Cheap to call again, cheaper to keep: appends through a handle do not
    /// look the key up.
    pub fn series(&self, key: &SeriesKey) -> Result<SeriesRef> {
        Ok(self.live_head()?.series(key))
    }

    /// The head, unless its rebuild at open failed.
    /// Refused too once the engine is poisoned: the head may then hold
    /// points whose records never became durable.
    pub(crate) fn live_head(&self) -> Result<parking_lot::MutexGuard<'_, super::head::Head>> {
        self.check_poison()?;
        self.ensure_head();
        let head = self.head.lock();
        match &head.broken {
            None => Ok(head),
            Some(why) => Err(Error::Series(format!(
                "the time-series head could not be rebuilt from the WAL at open ({why}); \
                 series reads and writes are refused until that is repaired (sydra fsck, \
                 sydra wal repair)"
            ))),
        }
    }

    /// The handle of `key` if the head has it (never makes one).
    pub fn find_series(&self, key: &SeriesKey) -> Result<Option<SeriesRef>> {
        Ok(self.live_head()?.ref_of(key))
    }

    /// An appender for a batch of points.
    pub fn appender(&self) -> Appender<'_> {
        Appender {
            engine: self,
            groups: HashMap::new(),
            points: 0,
        }
    }

    /// Every series in the head (with at least one point or a type), sorted
    /// by key, with its type and the points appended to it.
    pub fn head_series(&self) -> Result<Vec<(SeriesKey, SeriesRef, ValueType, u64)>> {
        Ok(self
            .live_head()?
            .list()
            .into_iter()
            .map(|(k, r, t, n)| ((*k).clone(), r, t, n))
            .collect())
    }

    /// The head's points of a series, sorted by time, one per timestamp
    /// (the last written).
    pub fn head_points(&self, series: SeriesRef) -> Result<Vec<(i64, Value)>> {
        let snapshot = self.live_head()?.snapshot(series.0).map_err(series_error)?;
        snapshot.points().map_err(series_error)
    }

    /// About the bytes of point data the head holds (O(1); what
    /// [`Engine::maintain`] compares with `Options::series_head_max_bytes`).
    pub fn head_bytes(&self) -> usize {
        self.ensure_head();
        self.head.lock().bytes_estimate()
    }

    /// Points and bytes the head holds.
    pub fn head_stats(&self) -> (usize, u64, usize) {
        self.ensure_head();
        let h = self.head.lock();
        (h.series_count(), h.point_count(), h.bytes())
    }

    /// Rebuild the head from every series record after the head commit's
    /// applied seq (called by open). A failure (damaged WAL bytes under the
    /// head checkpoint, a record that contradicts the ones before it) does
    /// not fail the open: it is reported (`OpenReport::head_error`) and
    /// every series operation refuses with it, so nothing is read or
    /// written over a head that lacks points, while fsck, gc and the WAL
    /// repair still run.
    pub(crate) fn rebuild_head(&mut self) {
        let head = self.build_live_head();
        match &head.broken {
            Some(why) => self.report.head_error = Some(why.clone()),
            None => {
                self.report.head_series = head.series_count();
                self.report.head_points = head.point_count();
            }
        }
        *self.head.get_mut() = head;
    }

    /// With `Options::defer_head`, rebuild the head now if nothing has
    /// yet (under the head's lock, so every caller sees it whole); else
    /// nothing. Called by every path that reads or moves the head, its
    /// floor or the raw records pending.
    pub(crate) fn ensure_head(&self) {
        use std::sync::atomic::Ordering;
        if !self.head_pending.load(Ordering::Acquire) {
            return;
        }
        let mut head = self.head.lock();
        if self.head_pending.load(Ordering::Acquire) {
            *head = self.build_live_head();
            self.head_pending.store(false, Ordering::Release);
        }
    }

    /// The live head from the head commit's series index and every record
    /// after its applied seq; on failure a broken head saying why.
    fn build_live_head(&self) -> super::head::Head {
        self.try_build_live_head().unwrap_or_else(|e| {
            let mut head = super::head::Head::new(1);
            head.broken = Some(e.to_string());
            head
        })
    }

    fn try_build_live_head(&self) -> Result<super::head::Head> {
        let mut replay = self.replay_head()?;
        let (cut, block) = super::compact::cut_of(self.repo().objects(), self.head()?)?;
        self.series_cut
            .store(cut.ts, std::sync::atomic::Ordering::Release);
        if let Some(b) = block {
            self.series_block
                .store(b, std::sync::atomic::Ordering::Release);
        }
        let mut raw = Vec::new();
        let head =
            super::compact::build_head(self.repo().objects(), self.head()?, &mut replay, |seq| {
                raw.push(seq)
            })?;
        crate::engine::note_raw(&self.raw_pending, raw.into_iter());
        self.series_floor
            .store(head.floor(), std::sync::atomic::Ordering::Release);
        Ok(head)
    }
}

fn series_error(e: HeadError) -> Error {
    Error::Series(e.to_string())
}

impl Appender<'_> {
    /// Whether [`append`](Appender::append) would take this point: its
    /// series exists, it is no string, and its type is the series' (or
    /// that of this appender's earlier points of it). Lets a caller refuse
    /// a whole line of input before adding any of its points.
    pub fn check(&self, series: SeriesRef, value: &Value) -> Result<()> {
        let t = value.value_type();
        if let Some((_, col)) = self.groups.get(&series.0)
            && col.value_type() == t
        {
            // Typed by this appender's earlier points, which were checked.
            return Ok(());
        }
        let head = self.engine.live_head()?;
        let s = head
            .get(series.0)
            .ok_or(Error::Series(format!("no series with ref {}", series.0)))?;
        if t == ValueType::String {
            return Err(series_error(HeadError::StringValue {
                key: s.key.to_string(),
            }));
        }
        let has = match self.groups.get(&series.0) {
            Some((_, col)) => Some(col.value_type()),
            None => s.value_type,
        };
        match has {
            Some(has) if has != t => Err(series_error(HeadError::Type {
                key: s.key.to_string(),
                has,
                got: t,
            })),
            _ => Ok(()),
        }
    }

    /// Add a point. Refused (and nothing added) when its type differs from
    /// the series' or from this appender's earlier points of it, or when it
    /// is a string.
    pub fn append(&mut self, series: SeriesRef, timestamp: i64, value: Value) -> Result<()> {
        if !(super::segment::EARLIEST_TIMESTAMP..=super::segment::LATEST_TIMESTAMP)
            .contains(&timestamp)
        {
            return Err(Error::Series(format!(
                "timestamp {timestamp} ns is outside 1678-01-01T00:00:00Z..=2262-01-01T00:00:00Z, \
                 the times a point may have"
            )));
        }
        let t = value.value_type();
        match self.groups.get_mut(&series.0) {
            Some((ts, col)) => {
                if col.value_type() != t {
                    return Err(self.check(series, &value).err().unwrap_or_else(|| {
                        Error::Series(format!("series ref {}: {t} value refused", series.0))
                    }));
                }
                col.push(&value);
                ts.push(timestamp);
            }
            None => {
                self.check(series, &value)?;
                // `check` refused strings: every other type has a column.
                let Some(mut col) = Column::new(t) else {
                    return Err(Error::Series(format!(
                        "series ref {}: {t} value refused",
                        series.0
                    )));
                };
                col.push(&value);
                self.groups.insert(series.0, (vec![timestamp], col));
            }
        }
        self.points += 1;
        Ok(())
    }

    /// Points added so far.
    pub fn len(&self) -> u64 {
        self.points
    }

    /// Whether none were added.
    pub fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// Log every point (durable per the sync mode when this returns) and
    /// apply them to the head.
    pub fn commit(self) -> Result<AppendCommit> {
        let engine = self.engine;
        engine.check_poison()?;
        engine.ensure_head();
        if self.points == 0 {
            return Ok(AppendCommit::default());
        }
        let mut order: Vec<u64> = self.groups.keys().copied().collect();
        order.sort_unstable();
        // Types are settled, and definitions written for series the log
        // does not know yet. A series typed here but not yet logged by
        // another commit gets a definition in both; replay accepts the
        // repeat.
        // Records stay well under the log's record limit: at most `cap`
        // bytes; definitions are split at it, and so are big sample groups
        // (a point takes at most MAX_POINT_BYTES: two 10-byte varints).
        let max_record = engine.wal().options().max_record;
        let cap = (max_record / 2).clamp(GROUP_HEADER_BYTES + MAX_POINT_BYTES, RECORD_TARGET);
        let per_record = (cap - GROUP_HEADER_BYTES) / MAX_POINT_BYTES;
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut defined = Vec::new();
        {
            let mut head = engine.live_head()?;
            for &r in &order {
                let (_, col) = &self.groups[&r];
                head.type_for(r, col.value_type()).map_err(series_error)?;
            }
            let mut defs = SeriesRecord::new();
            let mut one = Vec::new();
            for &r in &order {
                if let Some(s) = head.get(r)
                    && !s.logged
                    && let Some(t) = s.value_type
                {
                    one.clear();
                    s.key.encode(&mut one);
                    if !defs.is_empty() && defs.len() + one.len() + GROUP_HEADER_BYTES > cap {
                        payloads.push(std::mem::take(&mut defs).finish());
                    }
                    defs.push(r, t, &s.key);
                    defined.push(r);
                }
            }
            if !defs.is_empty() {
                payloads.push(defs.finish());
            }
        }
        let mut rec = SamplesRecord::new();
        for &r in &order {
            let (ts, col) = &self.groups[&r];
            let mut from = 0;
            while from < ts.len() {
                let to = (from + per_record).min(ts.len());
                if !rec.is_empty()
                    && rec.len() + GROUP_HEADER_BYTES + (to - from) * MAX_POINT_BYTES > cap
                {
                    payloads.push(std::mem::take(&mut rec).finish());
                }
                let values = match col {
                    Column::F64(v) => ValuesRef::F64(&v[from..to]),
                    Column::I64(v) => ValuesRef::I64(&v[from..to]),
                    Column::Bool(v) => ValuesRef::Bool(&v[from..to]),
                };
                rec.push(r, &ts[from..to], values)
                    .map_err(|e| Error::Series(e.to_string()))?;
                from = to;
            }
        }
        if !rec.is_empty() {
            payloads.push(rec.finish());
        }
        let groups = &self.groups;
        let appended = engine.wal().append_batch_then(&payloads, |seqs| {
            // Under the log's lock, right after the records are queued:
            // the head sees commits in log order. Only copies here; full
            // groups are sealed after the log's lock is released.
            // The floor moves under the head's lock, which a compaction
            // holds while it recomputes it.
            let mut head = engine.head.lock();
            engine
                .series_floor
                .fetch_min(*seqs.start(), std::sync::atomic::Ordering::AcqRel);
            head.last_seq = head.last_seq.max(*seqs.end());
            for &r in &defined {
                head.mark_logged(r, *seqs.start());
            }
            for &r in &order {
                let (ts, col) = &groups[&r];
                head.push(r, *seqs.start(), ts, col);
            }
        });
        let (seqs, ()) = engine.note(appended.map_err(Error::from))?;
        {
            let mut head = engine.head.lock();
            for &r in &order {
                head.seal(r);
            }
        }
        Ok(AppendCommit {
            points: self.points,
            new_series: defined.len() as u64,
            seqs: Some(seqs),
        })
    }
}
