//! The batch writer: the objects of a batch go into one pack (temp pack
//! and fsync, temp index and fsync, two renames, one directory fsync:
//! three syncs whatever the count), nothing visible before it is durable.
//! A batch of a single object is published loose, as a single put is.
//!
//! Objects below the mmap threshold are staged in one memory arena, at
//! most [`ARENA_MAX`] bytes; larger ones, and any beyond that, are staged
//! as temp files and copied into the pack at commit. The pack lists
//! commits first, then trees (parents before children: the reverse of the
//! order a tree builder writes them), then blobs in the order they were
//! put, which is the order readers and the GC's mark walk them.

use std::collections::HashSet;
use std::io::Read;
use std::ops::Range;

use super::header::{HEADER_LEN, Header};
use super::packs::{PACK_BATCH_MIN, RepackOptions};
use super::write::{Existing, TempFile};
use super::{AUTO_REPACK_PACKS, Durability, MMAP_THRESHOLD, Pinned, Store};
use crate::error::{Error, Result};
use crate::pack::PackWriter;
use crate::{Kind, ObjectId};

/// The most bytes a batch stages in memory.
pub const ARENA_MAX: usize = 256 << 20;

#[derive(Debug)]
enum Repr {
    /// Encoded object file bytes in the arena.
    Arena(Range<usize>),
    /// A complete object file of this length.
    File(TempFile, u64),
}

#[derive(Debug)]
struct Staged {
    id: ObjectId,
    kind: Kind,
    repr: Repr,
}

/// A set of objects written together. Nothing is visible under a final name
/// until [`Batch::commit`]; dropping the batch without committing removes
/// its temp files. Every id put (written or deduplicated) stays pinned
/// against GC until the [`Pinned`] returned by `commit` is dropped.
#[derive(Debug)]
pub struct Batch {
    store: Store,
    durability: Durability,
    staged: Vec<Staged>,
    arena: Vec<u8>,
    seen: HashSet<ObjectId>,
    pinned: Pinned,
    deduped: usize,
    /// Ids whose loose file was found damaged: removed once the pack
    /// holding a good copy is durable.
    replace_loose: Vec<ObjectId>,
}

/// Counts from a committed batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Objects newly written.
    pub written: usize,
    /// Objects that already existed (freshened instead).
    pub deduped: usize,
    /// The pack the written objects went into (`None`: loose).
    pub pack: Option<ObjectId>,
}

impl Batch {
    pub(crate) fn new(store: Store, durability: Durability) -> Self {
        let pinned = Pinned::new(store.inner.pins.clone());
        Batch {
            store,
            durability,
            staged: Vec::new(),
            arena: Vec::new(),
            seen: HashSet::new(),
            pinned,
            deduped: 0,
            replace_loose: Vec::new(),
        }
    }

    /// Stage an object from memory.
    pub fn put(&mut self, kind: Kind, payload: &[u8]) -> Result<ObjectId> {
        let id = ObjectId::compute(kind, payload);
        if !self.admit(id)? {
            return Ok(id);
        }
        let repr = if (payload.len() as u64) < MMAP_THRESHOLD && self.arena.len() < ARENA_MAX {
            let start = self.arena.len();
            self.arena
                .extend_from_slice(&Header::raw(kind, payload.len() as u64, id).encode());
            self.arena.extend_from_slice(payload);
            let crc = crc32fast::hash(&self.arena[start..]);
            self.arena.extend_from_slice(&crc.to_le_bytes());
            Repr::Arena(start..self.arena.len())
        } else {
            let tmp = self.store.write_temp(kind, id, payload, false)?;
            Repr::File(tmp, (HEADER_LEN + payload.len() + 4) as u64)
        };
        self.staged.push(Staged { id, kind, repr });
        Ok(id)
    }

    /// Stage an object streamed from `reader` (exactly `len` bytes).
    pub fn put_reader(&mut self, kind: Kind, len: u64, mut reader: impl Read) -> Result<ObjectId> {
        let (id, tmp) = self
            .store
            .write_temp_stream(kind, len, &mut reader, false)?;
        if self.admit(id)? {
            let file_len = len + (HEADER_LEN + 4) as u64;
            self.staged.push(Staged {
                id,
                kind,
                repr: Repr::File(tmp, file_len),
            });
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
            Existing::Absent => Ok(true),
            Existing::Invalid => {
                self.replace_loose.push(id);
                Ok(true)
            }
        }
    }

    /// Objects staged for writing so far.
    pub fn staged(&self) -> usize {
        self.staged.len()
    }

    /// Make every staged object durable and visible. On error nothing
    /// should be treated as written (objects already visible stay,
    /// unreferenced, for GC to collect; temp files are removed).
    pub fn commit(mut self) -> Result<(Pinned, BatchStats)> {
        let mut stats = BatchStats {
            written: self.staged.len(),
            deduped: self.deduped,
            pack: None,
        };
        let staged = std::mem::take(&mut self.staged);
        let pinned =
            std::mem::replace(&mut self.pinned, Pinned::new(self.store.inner.pins.clone()));
        if staged.is_empty() {
            return Ok((pinned, stats));
        }
        if staged.len() < PACK_BATCH_MIN {
            self.commit_loose(staged)?;
            return Ok((pinned, stats));
        }
        stats.pack = Some(self.commit_pack(staged)?);
        Ok((pinned, stats))
    }

    fn commit_pack(&mut self, mut staged: Vec<Staged>) -> Result<ObjectId> {
        // Commits, trees parents-first, blobs in put order.
        let n = staged.len();
        let mut order: Vec<(u8, usize)> = staged
            .iter()
            .enumerate()
            .map(|(i, s)| match s.kind {
                Kind::Commit => (0, i),
                Kind::Tree => (1, n - i),
                _ => (2, i),
            })
            .collect();
        order.sort_unstable();
        let mut w = PackWriter::new(&self.store, n)?;
        for (rank, key) in order {
            let i = if rank == 1 { n - key } else { key };
            let s = &mut staged[i];
            match &mut s.repr {
                Repr::Arena(r) => w.add(s.id, &self.arena[r.clone()])?,
                Repr::File(tmp, len) => {
                    let f =
                        crate::fs::open_regular(&tmp.path).map_err(Error::io("open", &tmp.path))?;
                    w.add_reader(s.id, *len, &mut std::io::BufReader::new(f))?;
                }
            }
        }
        let pack = w.finish(self.durability != Durability::None)?;
        let hash = pack.hash();
        self.store.add_pack(pack);
        for id in std::mem::take(&mut self.replace_loose) {
            // The pack is durable: the damaged loose copy is no longer
            // needed as evidence of anything.
            let _ = self.store.delete(&id);
        }
        if !self.store.inner.options.manual_repack && self.store.packs().len() > AUTO_REPACK_PACKS {
            // Best effort: every object is already durable in the new pack;
            // a merge that fails leaves the packs as they were.
            let _ = self.store.repack(&RepackOptions::default());
        }
        Ok(hash)
    }

    fn commit_loose(&mut self, staged: Vec<Staged>) -> Result<()> {
        let sync = self.durability != Durability::None;
        let mut files = Vec::with_capacity(staged.len());
        for s in staged {
            let tmp = match s.repr {
                Repr::Arena(r) => self.store.write_temp_file(&self.arena[r], sync)?,
                Repr::File(tmp, _) => {
                    if sync {
                        let f = crate::fs::open_regular(&tmp.path)
                            .map_err(Error::io("open", &tmp.path))?;
                        crate::fault::point("objects.tmp.sync")
                            .and_then(|()| f.sync_data())
                            .map_err(Error::sync(&tmp.path))?;
                    }
                    tmp
                }
            };
            files.push((s.id, tmp));
        }
        for (id, mut tmp) in files {
            self.store.promote(&mut tmp, &id, sync)?;
        }
        Ok(())
    }
}
