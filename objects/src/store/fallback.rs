//! A second source for objects a store does not hold: a read replica's
//! remote. On a miss, the store asks the fallback for the object's file
//! bytes, checks them as it checks a file of its own (framing, header id,
//! CRC) and always recomputes BLAKE3 (the bytes crossed a network), keeps
//! a loose copy without fsync (a cache: a lost copy is fetched again),
//! and serves the bytes it checked.

use std::sync::Arc;

use super::Store;
use super::header;
use crate::ObjectId;
use crate::error::{Error, Result};
use crate::kind::Kind;

/// Where a [`Store`] looks for objects it lacks (see the module docs).
pub trait Fallback: Send + Sync + std::fmt::Debug {
    /// Whether the source holds `id`, answered without a request.
    fn has(&self, id: &ObjectId) -> bool;
    /// The object's file bytes (docs/FORMAT.md §3), `None` when the
    /// source does not hold it. The store verifies them.
    fn fetch(&self, id: &ObjectId) -> Result<Option<Vec<u8>>>;
    /// The store has kept a loose copy of `id`, `file_len` bytes: the
    /// source may now evict older copies to bound the cache.
    fn kept(&self, store: &Store, id: &ObjectId, file_len: u64);
    /// Where `id` comes from, for errors (a URL and offset, say).
    fn origin(&self, id: &ObjectId) -> String;
    /// Hand `sink` the file bytes of as many of `ids` as the source
    /// holds, in any order, possibly with other objects it fetched along
    /// the way (a source batches and coalesces requests here, holding a
    /// bounded batch in memory at a time). One by one unless a source
    /// does better.
    fn fetch_many(
        &self,
        ids: &[ObjectId],
        sink: &mut dyn FnMut(ObjectId, Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        for id in ids {
            if let Some(b) = self.fetch(id)? {
                sink(*id, b)?;
            }
        }
        Ok(())
    }
}

/// An object fetched from the fallback: its kind, file bytes and payload
/// range.
pub(super) struct Fetched {
    pub kind: Kind,
    pub bytes: Vec<u8>,
    pub range: std::ops::Range<usize>,
}

impl Store {
    /// Use `fallback` for objects this store lacks. Set once; `false` if a
    /// fallback was already set.
    pub fn set_fallback(&self, fallback: Arc<dyn Fallback>) -> bool {
        self.inner.fallback.set(fallback).is_ok()
    }

    /// Whether the fallback (if any) holds `id`.
    pub(super) fn fallback_has(&self, id: &ObjectId) -> bool {
        self.inner.fallback.get().is_some_and(|f| f.has(id))
    }

    /// Fetch `id` from the fallback, verify it whole and keep a loose copy;
    /// `None` without a fallback or when it lacks `id`.
    pub(super) fn fault_in(&self, id: &ObjectId) -> Result<Option<Fetched>> {
        let Some(fb) = self.inner.fallback.get() else {
            return Ok(None);
        };
        let Some(bytes) = fb.fetch(id)? else {
            return Ok(None);
        };
        self.keep_fetched(fb.as_ref(), id, bytes).map(Some)
    }

    /// Bring those of `ids` this store lacks from the fallback in one
    /// batch (a no-op without a fallback): what a reader about to read
    /// them all asks for, so a remote source can coalesce its requests.
    pub fn prefetch(&self, ids: &[ObjectId]) -> Result<()> {
        let Some(fb) = self.inner.fallback.get() else {
            return Ok(());
        };
        let mut missing = Vec::new();
        for id in ids {
            if !self.contains_packed(id) && !self.contains_loose(id)? && fb.has(id) {
                missing.push(*id);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        fb.fetch_many(&missing, &mut |id, bytes| {
            if !self.contains_loose(&id)? {
                self.keep_fetched(fb.as_ref(), &id, bytes)?;
            }
            Ok(())
        })
    }

    /// Verify fetched file bytes of `id` whole and keep a loose copy.
    fn keep_fetched(&self, fb: &dyn Fallback, id: &ObjectId, bytes: Vec<u8>) -> Result<Fetched> {
        let bad = |reason: String| Error::Corrupt {
            id: *id,
            path: fb.origin(id).into(),
            reason,
        };
        let (h, range) = header::parse_file(&bytes, Some(id)).map_err(bad)?;
        let actual = ObjectId::compute(h.kind, &bytes[range.clone()]);
        if actual != *id {
            return Err(bad(format!("content hashes to {actual}")));
        }
        self.put_with(h.kind, &bytes[range.clone()], super::Durability::None)?;
        fb.kept(self, id, bytes.len() as u64);
        Ok(Fetched {
            kind: h.kind,
            bytes,
            range,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::store::{Options, header::encode_file};

    /// Objects in memory, counting fetches; `damage` flips a byte of every
    /// file it hands out.
    #[derive(Debug, Default)]
    struct Memory {
        files: HashMap<ObjectId, Vec<u8>>,
        fetches: AtomicU64,
        kept: AtomicU64,
        damage: bool,
    }

    impl Memory {
        fn add(&mut self, kind: Kind, payload: &[u8]) -> ObjectId {
            let id = ObjectId::compute(kind, payload);
            self.files.insert(id, encode_file(kind, id, payload));
            id
        }
    }

    impl Fallback for Memory {
        fn has(&self, id: &ObjectId) -> bool {
            self.files.contains_key(id)
        }
        fn fetch(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
            self.fetches.fetch_add(1, Ordering::Relaxed);
            Ok(self.files.get(id).cloned().map(|mut f| {
                if self.damage {
                    let mid = f.len() / 2;
                    f[mid] ^= 1;
                }
                f
            }))
        }
        fn kept(&self, _: &Store, _: &ObjectId, _: u64) {
            self.kept.fetch_add(1, Ordering::Relaxed);
        }
        fn origin(&self, _: &ObjectId) -> String {
            "memory".into()
        }
    }

    #[test]
    fn a_miss_is_fetched_verified_and_kept_and_a_damaged_copy_refused() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::create(d.path().join("objects"), Options::default()).unwrap();
        let mut mem = Memory::default();
        let a = mem.add(Kind::Blob, b"segment bytes");
        let b = mem.add(Kind::Blob, b"more segment bytes");
        let absent = ObjectId::compute(Kind::Blob, b"nowhere");
        let mem = Arc::new(mem);
        assert!(store.set_fallback(mem.clone()));
        assert!(!store.set_fallback(mem.clone()), "set once");

        assert!(store.contains(&a).unwrap() && !store.contains(&absent).unwrap());
        assert_eq!(&store.get(&a).unwrap().data[..], b"segment bytes");
        assert!(store.contains_loose(&a).unwrap(), "kept as a loose copy");
        store.get(&a).unwrap();
        assert_eq!(
            mem.fetches.load(Ordering::Relaxed),
            1,
            "the copy serves the second read"
        );
        assert!(store.get(&absent).unwrap_err().is_not_found());

        // A cached copy torn by a crash (written without fsync) is dropped
        // and fetched again, by `get` and by a `Reader` alike.
        std::fs::write(store.path_of(&a), b"torn").unwrap();
        assert_eq!(&store.get(&a).unwrap().data[..], b"segment bytes");
        assert_eq!(mem.fetches.load(Ordering::Relaxed), 3);
        std::fs::write(store.path_of(&a), b"torn again").unwrap();
        assert_eq!(
            &store.reader().read(&a, true).unwrap()[..],
            b"segment bytes"
        );
        assert_eq!(mem.fetches.load(Ordering::Relaxed), 4);

        store.prefetch(&[a, b]).unwrap();
        assert_eq!(mem.fetches.load(Ordering::Relaxed), 5, "only b fetched");
        assert_eq!(store.stat(&b).unwrap().size, 18);
        assert_eq!(mem.kept.load(Ordering::Relaxed), 4);

        let d2 = tempfile::tempdir().unwrap();
        let store = Store::create(d2.path().join("objects"), Options::default()).unwrap();
        let mut bad = Memory {
            damage: true,
            ..Memory::default()
        };
        let c = bad.add(Kind::Blob, b"damaged on the way");
        store.set_fallback(Arc::new(bad));
        let e = store.get(&c).unwrap_err().to_string();
        assert!(e.contains("is corrupt (memory)"), "{e}");
        assert!(
            !store.contains_loose(&c).unwrap(),
            "nothing damaged is kept"
        );
    }
}
