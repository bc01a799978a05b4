//! Pins: how a writer in this process keeps a concurrent garbage collection
//! from deleting objects it is about to reference.
//!
//! Protocol (see docs/ARCHITECTURE.md, "GC beside a live writer"):
//! - Every write or dedup hit first *registers* its id under the id's shard
//!   lock, then checks the final file and freshens it, still under the lock.
//! - A batch keeps its ids *pinned* until the caller drops the [`Pinned`]
//!   guard, i.e. until the ref that reaches them has been updated.
//! - While a [`GcGuard`] is alive, every id pinned at its start and every id
//!   registered since is *protected*: the sweep checks protection and
//!   deletes under the same shard lock, so a writer either sees the file gone
//!   (and writes it again) or the sweep sees the registration (and skips).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::Store;
use crate::ObjectId;
use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    counts: HashMap<ObjectId, usize>,
    protect: Option<HashSet<ObjectId>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    shards: Vec<Mutex<()>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pins(Arc<Shared>);

impl Default for Pins {
    fn default() -> Self {
        Pins(Arc::new(Shared {
            state: Mutex::new(State::default()),
            shards: (0..256).map(|_| Mutex::new(())).collect(),
        }))
    }
}

impl Pins {
    /// The lock serialising dedup checks and sweeps for one shard.
    pub(crate) fn shard_lock(&self, id: &ObjectId) -> MutexGuard<'_, ()> {
        self.0.shards[usize::from(id.as_bytes()[0])].lock()
    }

    /// Every shard lock, in order: nothing can register a dedup hit while
    /// they are held.
    pub(crate) fn lock_all_shards(&self) -> Vec<MutexGuard<'_, ()>> {
        self.0.shards.iter().map(|m| m.lock()).collect()
    }

    /// Record that `id` is being written or reused; `hold` keeps it pinned
    /// until released.
    pub(crate) fn register(&self, id: ObjectId, hold: bool) {
        let mut st = self.0.state.lock();
        if hold {
            *st.counts.entry(id).or_insert(0) += 1;
        }
        if let Some(p) = st.protect.as_mut() {
            p.insert(id);
        }
    }

    fn release(&self, ids: &[ObjectId]) {
        let mut st = self.0.state.lock();
        for id in ids {
            if let Some(c) = st.counts.get_mut(id) {
                *c -= 1;
                if *c == 0 {
                    st.counts.remove(id);
                }
            }
        }
    }
}

/// Ids kept pinned until this guard is dropped. Hold it until the ref update
/// that makes the objects reachable has completed.
#[derive(Debug)]
pub struct Pinned {
    pins: Pins,
    ids: Vec<ObjectId>,
}

impl Pinned {
    pub(crate) fn new(pins: Pins) -> Self {
        Pinned {
            pins,
            ids: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, id: ObjectId) {
        self.ids.push(id);
    }

    /// The pinned ids (written or reused), in order of registration.
    pub fn ids(&self) -> &[ObjectId] {
        &self.ids
    }

    /// Merge another guard into this one.
    pub fn absorb(&mut self, mut other: Pinned) {
        self.ids.append(&mut other.ids);
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        self.pins.release(&self.ids);
    }
}

/// An in-process garbage collection session. At most one exists per store
/// at a time; while it lives, writes are recorded as protected.
#[derive(Debug)]
pub struct GcGuard {
    pub(super) store: Store,
    pinned_at_start: Vec<ObjectId>,
}

impl Store {
    /// Begin a GC session. Fails with [`Error::GcRunning`] if one is active.
    pub fn begin_gc(&self) -> Result<GcGuard> {
        let pins = &self.inner.pins;
        let mut st = pins.0.state.lock();
        if st.protect.is_some() {
            return Err(Error::GcRunning);
        }
        let pinned: Vec<ObjectId> = st.counts.keys().copied().collect();
        st.protect = Some(pinned.iter().copied().collect());
        Ok(GcGuard {
            store: self.clone(),
            pinned_at_start: pinned,
        })
    }
}

impl Store {
    /// Pin `ids` (present already: received, say) against a GC of this
    /// process until the guard is dropped, as a batch pins what it writes
    /// or reuses: registered under their shard locks, so a GC running now
    /// sees them as protected.
    pub fn pin(&self, ids: impl IntoIterator<Item = ObjectId>) -> Pinned {
        let pins = &self.inner.pins;
        let mut pinned = Pinned::new(pins.clone());
        for id in ids {
            let _shard = pins.shard_lock(&id);
            pins.register(id, true);
            pinned.push(id);
        }
        pinned
    }
}

impl GcGuard {
    /// Ids pinned by in-flight writes when the session began; mark them as
    /// roots.
    pub fn pinned_roots(&self) -> &[ObjectId] {
        &self.pinned_at_start
    }

    /// Whether `id` has been pinned or written since the session began.
    pub fn is_protected(&self, id: &ObjectId) -> bool {
        let st = self.store.inner.pins.0.state.lock();
        st.protect.as_ref().is_some_and(|p| p.contains(id))
    }
}

impl Drop for GcGuard {
    fn drop(&mut self) {
        self.store.inner.pins.0.state.lock().protect = None;
    }
}
