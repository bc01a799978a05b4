//! The batch writer: many objects made durable with one sync pass before
//! any of them is visible, then promoted, then one more sync pass.

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;

use super::write::{Existing, TempFile};
use super::{Durability, Pinned, Store};
use crate::error::{Error, Result};
use crate::{Kind, ObjectId};

/// A set of objects written together. Nothing is visible under a final name
/// until [`Batch::commit`]; dropping the batch without committing removes
/// its temp files. Every id put (written or deduplicated) stays pinned
/// against GC until the [`Pinned`] returned by `commit` is dropped.
#[derive(Debug)]
pub struct Batch {
    store: Store,
    durability: Durability,
    staged: Vec<(ObjectId, TempFile)>,
    seen: HashSet<ObjectId>,
    pinned: Pinned,
    deduped: usize,
}

/// Counts from a committed batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Objects newly written.
    pub written: usize,
    /// Objects that already existed (freshened instead).
    pub deduped: usize,
}

impl Batch {
    pub(crate) fn new(store: Store, durability: Durability) -> Self {
        let pinned = Pinned::new(store.inner.pins.clone());
        Batch {
            store,
            durability,
            staged: Vec::new(),
            seen: HashSet::new(),
            pinned,
            deduped: 0,
        }
    }

    fn sync_each(&self) -> bool {
        self.durability == Durability::Each
    }

    /// Stage an object from memory.
    pub fn put(&mut self, kind: Kind, payload: &[u8]) -> Result<ObjectId> {
        let id = ObjectId::compute(kind, payload);
        if !self.admit(id)? {
            return Ok(id);
        }
        let tmp = self.store.write_temp(kind, id, payload, self.sync_each())?;
        self.staged.push((id, tmp));
        Ok(id)
    }

    /// Stage an object streamed from `reader` (exactly `len` bytes).
    pub fn put_reader(&mut self, kind: Kind, len: u64, mut reader: impl Read) -> Result<ObjectId> {
        let (id, tmp) = self
            .store
            .write_temp_stream(kind, len, &mut reader, self.sync_each())?;
        if self.admit(id)? {
            self.staged.push((id, tmp));
        }
        Ok(id)
    }

    /// Pin `id`; returns whether it still has to be written.
    fn admit(&mut self, id: ObjectId) -> Result<bool> {
        if !self.seen.insert(id) {
            return Ok(false);
        }
        let existing = self.store.check_existing(&id, true)?;
        self.pinned.push(id);
        match existing {
            Existing::Valid => {
                self.deduped += 1;
                Ok(false)
            }
            Existing::Absent | Existing::Invalid => Ok(true),
        }
    }

    /// Objects staged for writing so far.
    pub fn staged(&self) -> usize {
        self.staged.len()
    }

    /// Make every staged object durable and visible. On error, objects
    /// already promoted stay (unreferenced, for GC to collect) and the rest
    /// are removed; nothing should be treated as written.
    pub fn commit(mut self) -> Result<(Pinned, BatchStats)> {
        let stats = BatchStats {
            written: self.staged.len(),
            deduped: self.deduped,
        };
        let staged = std::mem::take(&mut self.staged);
        let pinned =
            std::mem::replace(&mut self.pinned, Pinned::new(self.store.inner.pins.clone()));
        if staged.is_empty() {
            return Ok((pinned, stats));
        }
        match self.durability {
            Durability::None => {
                for (id, mut tmp) in staged {
                    self.store.promote(&mut tmp, &id, false)?;
                }
            }
            Durability::Each => {
                for (id, mut tmp) in staged {
                    self.store.promote(&mut tmp, &id, true)?;
                }
            }
            Durability::Batch => self.commit_batch(staged)?,
        }
        Ok((pinned, stats))
    }

    #[cfg(target_os = "linux")]
    fn commit_batch(&self, staged: Vec<(ObjectId, TempFile)>) -> Result<()> {
        // One syncfs makes every temp file's data and inode durable; only then
        // may any of them appear under a final name. A crash before the
        // second syncfs may lose renames, never expose torn content.
        syncfs(self.store.tmp_dir())?;
        for (id, mut tmp) in staged {
            self.store.promote(&mut tmp, &id, false)?;
        }
        syncfs(self.store.dir())
    }

    #[cfg(not(target_os = "linux"))]
    fn commit_batch(&self, staged: Vec<(ObjectId, TempFile)>) -> Result<()> {
        for (_, tmp) in &staged {
            let f = crate::fs::open_regular(&tmp.path).map_err(Error::io("open", &tmp.path))?;
            f.sync_data().map_err(Error::sync(&tmp.path))?;
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (id, mut tmp) in staged {
            dirs.push(self.store.promote(&mut tmp, &id, false)?);
        }
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            crate::fs::sync_dir(&d, super::write::dir_sync_fault)?;
        }
        Ok(crate::fs::sync_dir(
            self.store.dir(),
            super::write::dir_sync_fault,
        )?)
    }
}

/// Flush the whole filesystem holding `path` (Linux `syncfs`).
#[cfg(target_os = "linux")]
pub(crate) fn syncfs(path: &std::path::Path) -> Result<()> {
    // O_DIRECTORY: anything else in its place fails at once (never a
    // blocking open of a FIFO).
    let flags =
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
    let f = rustix::fs::open(path, flags, rustix::fs::Mode::empty())
        .map_err(|e| Error::io("open directory", path)(e.into()))?;
    crate::fault::point("objects.syncfs")
        .and_then(|()| rustix::fs::syncfs(&f).map_err(std::io::Error::from))
        .map_err(|e| Error::Sync {
            path: PathBuf::from(path),
            source: e,
        })
}
