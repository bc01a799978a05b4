//! Reading series: the live data (segments of the head commit and the
//! in-memory head) or the data as of any commit (its segments and the
//! points its WAL chunks hold beyond them).
//!
//! ```no_run
//! # fn main() -> sydra_engine::Result<()> {
//! # let engine = sydra_engine::Engine::open("data", Default::default())?;
//! let before = engine.view(Some("snapshots/nightly"))?;
//! for (key, _type) in before.series()? {
//!     let points = before.points(&key)?; // sorted by time, last write wins
//!     println!("{key}: {} points", points.len());
//! }
//! # Ok(()) }
//! ```

use sydra_objects::ObjectId;

use std::sync::Arc;

use super::compact::{build_head, index_of};
use super::head::{Head, Snapshot};
use super::key::{SeriesKey, Value, ValueType};
use crate::engine::Engine;
use crate::error::{Error, Result};

/// As-of heads kept ([`Engine::view`]), newest last.
const ASOF_CACHE_ENTRIES: usize = 4;
/// The largest as-of head kept (about its point bytes).
const ASOF_CACHE_MAX_BYTES: usize = 64 << 20;

/// A read of the series as of one version: see the module docs.
#[derive(Debug)]
pub struct View<'e> {
    engine: &'e Engine,
    /// The commit read (`None` for the live view: the head commit at each
    /// read).
    commit: Option<ObjectId>,
    /// The head as of `commit` (`None` for the live view).
    head: Option<Arc<Head>>,
}

impl Engine {
    /// The series as of `as_of` (a revision: ref, commit, snapshot,
    /// `REV@{TIME}`), or live (`None`): segments plus every acknowledged
    /// point not yet compacted.
    pub fn view(&self, as_of: Option<&str>) -> Result<View<'_>> {
        let Some(rev) = as_of else {
            drop(self.live_head()?);
            return Ok(View {
                engine: self,
                commit: None,
                head: None,
            });
        };
        let id = self.repo().resolve(rev)?;
        self.repo().expect_commit(id)?;
        let cached = self
            .series_asof
            .lock()
            .iter()
            .find(|(c, _)| *c == id)
            .map(|(_, h)| h.clone());
        let head = match cached {
            Some(h) => h,
            None => {
                let mut replay = self.replay(rev)?;
                let h = Arc::new(build_head(
                    self.repo().objects(),
                    Some(id),
                    &mut replay,
                    |_| {},
                )?);
                if h.bytes_estimate() <= ASOF_CACHE_MAX_BYTES {
                    let mut cache = self.series_asof.lock();
                    cache.retain(|(c, _)| *c != id);
                    cache.push((id, h.clone()));
                    if cache.len() > ASOF_CACHE_ENTRIES {
                        cache.remove(0);
                    }
                }
                h
            }
        };
        Ok(View {
            engine: self,
            commit: Some(id),
            head: Some(head),
        })
    }
}

impl<'e> View<'e> {
    /// The commit an as-of view reads (`None` when live).
    pub fn commit(&self) -> Option<ObjectId> {
        self.commit
    }

    /// The engine read.
    pub fn engine(&self) -> &'e Engine {
        self.engine
    }

    /// Every series of this version, sorted by key, with its type.
    pub fn series(&self) -> Result<Vec<(SeriesKey, ValueType)>> {
        Ok(self
            .series_arcs()?
            .into_iter()
            .map(|(k, t)| ((*k).clone(), t))
            .collect())
    }

    /// [`View::series`] without copying the keys.
    pub(crate) fn series_arcs(&self) -> Result<Vec<(Arc<SeriesKey>, ValueType)>> {
        self.series_where(None, &[], |_| true)
    }

    /// The series of this version whose key satisfies `keep`, by key (only
    /// those of `measurement` with every (tag, value) of `tags` looked at:
    /// see `Head::list_where`).
    pub(crate) fn series_where(
        &self,
        measurement: Option<&str>,
        tags: &[(&str, &str)],
        keep: impl FnMut(&SeriesKey) -> bool,
    ) -> Result<Vec<(Arc<SeriesKey>, ValueType)>> {
        let list = match &self.head {
            Some(h) => h.list_where(measurement, tags, keep),
            None => self.engine.live_head()?.list_where(measurement, tags, keep),
        };
        Ok(list.into_iter().map(|(k, _, t, _)| (k, t)).collect())
    }

    /// The type of `key` in this version, if it holds the series.
    pub fn series_type(&self, key: &SeriesKey) -> Result<Option<ValueType>> {
        let of = |h: &Head| {
            h.ref_of(key)
                .and_then(|r| h.get(r.0))
                .and_then(|s| s.value_type)
        };
        Ok(match &self.head {
            Some(h) => of(h),
            None => of(&*self.engine.live_head()?),
        })
    }

    /// The head's data of `key` and then the commit whose segments go with
    /// it. Live, the head is read first and the head commit after it: a
    /// compaction removes points from the head only after its commit
    /// landed, so every point is in one or the other (or both: the head's
    /// copy is the same or later).
    pub(crate) fn head_and_commit(
        &self,
        key: &SeriesKey,
    ) -> Result<(Option<Snapshot>, Option<ObjectId>)> {
        let snap = |h: &Head| {
            h.ref_of(key)
                .map(|r| h.snapshot(r.0))
                .transpose()
                .map_err(|e| Error::Series(e.to_string()))
        };
        match &self.head {
            Some(h) => Ok((snap(h)?, self.commit)),
            None => {
                let s = snap(&*self.engine.live_head()?)?;
                Ok((s, self.engine.head()?))
            }
        }
    }

    /// The points of `key` in this version, sorted by time, one per
    /// timestamp (the last written). Empty for a series it does not hold.
    pub fn points(&self, key: &SeriesKey) -> Result<Vec<(i64, Value)>> {
        let Some(t) = self.series_type(key)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for b in self.query_series(Arc::new(key.clone()), t, i64::MIN, i64::MAX) {
            out.extend(b?.points);
        }
        Ok(out)
    }

    /// The series the index of this version's commit holds (without the
    /// head's newer ones).
    pub fn indexed_series(&self) -> Result<Vec<(SeriesKey, ValueType)>> {
        let commit = match self.commit {
            Some(c) => Some(c),
            None => self.engine.head()?,
        };
        let Some(c) = commit else {
            return Ok(Vec::new());
        };
        let store = self.engine.repo().objects();
        let tree = store.get(&c)?.commit()?.tree;
        let mut v: Vec<_> = index_of(store, tree)?
            .into_iter()
            .map(|d| (d.key, d.value_type))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    }
}
