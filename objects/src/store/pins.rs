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

use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::Store;
use crate::ObjectId;
use crate::error::{Error, Result};

/// Keyed randomly (ahash): a received pack pins every id it holds, a
/// quarter of a million for a 1 GB clone.
#[derive(Debug, Default)]
struct State {
    counts: ahash::AHashMap<ObjectId, usize>,
    protect: Option<ahash::AHashSet<ObjectId>>,
}

/// The shard an id's registration and sweep serialise on.
fn shard_of(id: &ObjectId) -> u8 {
    id.as_bytes()[0]
}

impl State {
    fn register(&mut self, id: ObjectId, hold: bool) {
        if hold {
            *self.counts.entry(id).or_insert(0) += 1;
        }
        if let Some(p) = self.protect.as_mut() {
            p.insert(id);
        }
    }
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
        self.0.shards[usize::from(shard_of(id))].lock()
    }

    /// Every shard lock, in order: nothing can register a dedup hit while
    /// they are held.
    pub(crate) fn lock_all_shards(&self) -> Vec<MutexGuard<'_, ()>> {
        self.0.shards.iter().map(|m| m.lock()).collect()
    }

    /// Record that `id` is being written or reused; `hold` keeps it pinned
    /// until released.
    pub(crate) fn register(&self, id: ObjectId, hold: bool) {
        self.0.state.lock().register(id, hold);
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
    ///
    /// Many ids are registered a shard at a time, each shard's lock (and
    /// the pins' state) taken once.
    pub fn pin(&self, ids: impl IntoIterator<Item = ObjectId>) -> Pinned {
        let pins = &self.inner.pins;
        let mut pinned = Pinned::new(pins.clone());
        pinned.ids = ids.into_iter().collect();
        pinned.ids.sort_unstable_by_key(shard_of);
        for shard in pinned.ids.chunk_by(|a, b| shard_of(a) == shard_of(b)) {
            let _shard = pins.shard_lock(&shard[0]);
            let mut st = pins.0.state.lock();
            for id in shard {
                st.register(*id, true);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_pinned_together_are_roots_of_a_gc_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::create(dir.path().join("objects"), crate::store::Options::default()).unwrap();
        // Ids in many shards, one of them twice (pinned twice, released
        // twice).
        let mut ids: Vec<ObjectId> = (0..600u32)
            .map(|i| ObjectId::compute(crate::Kind::Blob, &i.to_le_bytes()))
            .collect();
        ids.push(ids[3]);
        let pinned = store.pin(ids.iter().copied());
        assert_eq!(pinned.ids().len(), ids.len());
        let gc = store.begin_gc().unwrap();
        let mut roots = gc.pinned_roots().to_vec();
        roots.sort();
        let mut want = ids.clone();
        want.sort();
        want.dedup();
        assert_eq!(roots, want);
        // Pinned during a GC: protected too.
        let late = ObjectId::compute(crate::Kind::Blob, b"late");
        let held = store.pin([late]);
        assert!(gc.is_protected(&late));
        drop(gc);
        drop((pinned, held));
        let gc = store.begin_gc().unwrap();
        assert!(gc.pinned_roots().is_empty());
    }
}
