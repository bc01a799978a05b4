//! A reader for passes that visit many objects (the GC's mark, fsck's
//! connectivity walk): the same checks as [`Store::get`] and the same
//! errors, at a lower cost per object.
//!
//! - Each shard directory is opened once and objects are opened relative
//!   to it (`openat`, `statat`), so the kernel resolves one path component
//!   per call instead of the whole path from the root, and no path is
//!   built unless an error has to name it.
//! - One buffer is reused for every object below the mmap threshold;
//!   larger ones are mapped, as by `get`.
//!
//! A cached shard descriptor can go stale only if the directory is removed
//! (a GC removes empty shards) and created again; an object not found
//! through a cached descriptor is looked up once more through a freshly
//! opened one before it is reported missing.

use std::ops::{Deref, Range};
use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, FileType, Mode};
use rustix::io::Errno;

use super::Store;
use super::read::{NOT_A_FILE, SYMLINK, decode_commit, decode_tree};
use crate::commit::CommitRef;
use crate::error::{Error, Result};
use crate::map::Mmap;
use crate::tree::TreeRef;
use crate::{Kind, ObjectId};

/// See the module documentation. Not shared between threads: each pass
/// makes its own.
#[derive(Debug)]
pub struct Reader {
    store: Store,
    dirs: Vec<Option<OwnedFd>>,
    buf: Vec<u8>,
    /// The live packs when the reader was made (or last refreshed on a
    /// miss): a lookup takes no lock.
    packs: std::sync::Arc<Vec<std::sync::Arc<crate::pack::Pack>>>,
}

impl Store {
    /// A reader for visiting many objects (see [`Reader`]).
    pub fn reader(&self) -> Reader {
        Reader {
            store: self.clone(),
            dirs: (0..256).map(|_| None).collect(),
            buf: Vec::new(),
            packs: self.packs(),
        }
    }
}

/// A verified object's payload, read by a [`Reader`].
#[derive(Debug)]
pub struct Payload {
    id: ObjectId,
    kind: Kind,
    bytes: Bytes,
    range: Range<usize>,
}

#[derive(Debug)]
enum Bytes {
    Buf(Vec<u8>),
    Map(Mmap),
    Pack(std::sync::Arc<Mmap>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Buf(b) => b,
            Bytes::Map(m) => m,
            Bytes::Pack(m) => m,
        }
    }
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes.as_slice()[self.range.clone()]
    }
}

impl Payload {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Decode as a tree (errors name the object, as [`Object::tree`]).
    ///
    /// [`Object::tree`]: super::Object::tree
    pub fn tree(&self) -> Result<TreeRef<'_>> {
        decode_tree(&self.id, self.kind, self)
    }

    /// Decode as a commit (errors name the object).
    pub fn commit(&self) -> Result<CommitRef<'_>> {
        decode_commit(&self.id, self.kind, self)
    }
}

impl Reader {
    /// Read and verify an object, as [`Store::get`] does (BLAKE3 when
    /// `verify_hash`). The payload owns the reader's buffer; hand it back
    /// with [`Reader::recycle`] to reuse it.
    pub fn read(&mut self, id: &ObjectId, verify_hash: bool) -> Result<Payload> {
        if let Some(p) = self.read_packed(id, verify_hash)? {
            return Ok(p);
        }
        let Some(fd) = self.at(id, "open", |dir, name| {
            rustix::fs::openat(dir, name, crate::fs::READ_FLAGS, Mode::empty())
        })?
        else {
            if self.refresh()?
                && let Some(p) = self.read_packed(id, verify_hash)?
            {
                return Ok(p);
            }
            return self.read_fallback(id);
        };
        let store = &self.store;
        let file = match crate::fs::into_regular(fd) {
            Ok(f) => f,
            Err(e) if crate::fs::is_not_regular_error(&e) => {
                return Err(store.corrupt(id, e.to_string()));
            }
            Err(e) => return Err(Error::io("stat", store.path_of(id))(e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::io("stat", store.path_of(id))(e))?;
        let mut buf = std::mem::take(&mut self.buf);
        let (map, kind, range) = match store.load(id, &file, meta.len(), &mut buf, verify_hash) {
            Ok(v) => v,
            // A damaged cached copy of a replica's: dropped, fetched again.
            Err(Error::Corrupt { .. }) if store.fallback_has(id) => {
                self.buf = buf;
                store.drop_cached(id);
                return self.read_fallback(id);
            }
            Err(e) => return Err(e),
        };
        let bytes = match map {
            Some(map) => {
                self.buf = buf;
                Bytes::Map(map)
            }
            None => Bytes::Buf(buf),
        };
        Ok(Payload {
            id: *id,
            kind,
            bytes,
            range,
        })
    }

    /// `id` from the store's fallback (verified and kept), or not found.
    fn read_fallback(&self, id: &ObjectId) -> Result<Payload> {
        match self.store.fault_in(id)? {
            Some(f) => Ok(Payload {
                id: *id,
                kind: f.kind,
                bytes: Bytes::Buf(f.bytes),
                range: f.range,
            }),
            None => Err(Error::NotFound(*id)),
        }
    }

    fn find_packed(&self, id: &ObjectId) -> Option<(std::sync::Arc<crate::pack::Pack>, u64)> {
        self.packs
            .iter()
            .find_map(|p| p.find(id).map(|off| (p.clone(), off)))
    }

    /// After a miss: take the store's current pack list (another process's
    /// packs included); whether it changed.
    fn refresh(&mut self) -> Result<bool> {
        let changed = self.store.refresh_packs()?;
        let now = self.store.packs();
        let differs = !std::sync::Arc::ptr_eq(&now, &self.packs);
        self.packs = now;
        Ok(changed || differs)
    }

    fn read_packed(&mut self, id: &ObjectId, verify_hash: bool) -> Result<Option<Payload>> {
        let Some((pack, offset)) = self.find_packed(id) else {
            return Ok(None);
        };
        let (entry, range) = pack.entry(id, offset, verify_hash)?;
        Ok(Some(Payload {
            id: *id,
            kind: entry.kind,
            bytes: Bytes::Pack(pack.mapped().clone()),
            range,
        }))
    }

    /// Give a payload's buffer back for the next [`Reader::read`].
    pub fn recycle(&mut self, payload: Payload) {
        if let Bytes::Buf(buf) = payload.bytes
            && buf.capacity() >= self.buf.capacity()
        {
            self.buf = buf;
        }
    }

    /// The length of the object's file, without opening it (`lstat`): an
    /// existence check. [`Error::NotFound`] when there is no file; a
    /// symlink or anything else that is not a regular file is corrupt.
    pub fn file_len(&mut self, id: &ObjectId) -> Result<u64> {
        if let Some((pack, offset)) = self.find_packed(id) {
            return Ok(self.store.stat_in(&pack, id, offset)?.file_len);
        }
        let Some(st) = self.at(id, "stat", |dir, name| {
            rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        })?
        else {
            if self.refresh()?
                && let Some(st) = self.store.stat_packed(id)?
            {
                return Ok(st.file_len);
            }
            return match self.store.fault_in(id)? {
                Some(f) => Ok(f.bytes.len() as u64),
                None => Err(Error::NotFound(*id)),
            };
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(self.store.corrupt(id, NOT_A_FILE));
        }
        Ok(st.st_size as u64)
    }

    /// [`Reader::file_len`] of every id of `ids`, in order, into `out`.
    /// The lookups in the largest pack go in stages over groups of ids
    /// (every first index probe loaded, then the searches, then every
    /// offset, then every entry header), so their cache misses overlap
    /// instead of coming one after another; what that pack lacks goes
    /// through `file_len`.
    pub fn file_lens(&mut self, ids: &[ObjectId], out: &mut Vec<Result<u64>>) {
        const GROUP: usize = 16;
        out.reserve(ids.len());
        let Some(pack) = self.packs.first().cloned() else {
            out.extend(ids.iter().map(|id| self.file_len(id)));
            return;
        };
        let v = pack.index();
        let bytes = pack.bytes();
        for group in ids.chunks(GROUP) {
            // Touch each first probe (independent loads overlap).
            let mut touch = 0u8;
            for id in group {
                touch ^= v.id_bytes(v.first_probe(id))[0];
            }
            let mut at = [None; GROUP];
            for (slot, id) in at.iter_mut().zip(group) {
                *slot = v.find(id);
            }
            let mut offsets = [None; GROUP];
            for (o, i) in offsets.iter_mut().zip(&at) {
                *o = i.map(|i| v.offset(i));
            }
            for o in offsets.iter().flatten() {
                if let Some(b) = bytes.get(*o as usize) {
                    touch ^= *b;
                }
            }
            std::hint::black_box(touch);
            for (id, o) in group.iter().zip(offsets) {
                out.push(match o {
                    Some(o) => self.store.stat_in(&pack, id, o).map(|st| st.file_len),
                    None => self.file_len(id),
                });
            }
        }
    }

    /// Run `op` (named `what` in errors) on the object's name relative to
    /// its shard directory, retrying once through a freshly opened
    /// directory when the name is not found; `None` when it is not there.
    /// ELOOP (a symlink under `NOFOLLOW`) is corruption.
    fn at<T>(
        &mut self,
        id: &ObjectId,
        what: &'static str,
        op: impl Fn(&OwnedFd, &[u8]) -> rustix::io::Result<T>,
    ) -> Result<Option<T>> {
        let hex = id.hex_bytes();
        let (shard_name, name) = hex.split_at(2);
        let shard = usize::from(id.as_bytes()[0]);
        for fresh in [false, true] {
            if fresh || self.dirs[shard].is_none() {
                let shard_name = std::str::from_utf8(shard_name).unwrap_or_default();
                self.dirs[shard] = self.store.open_shard_dir(shard_name)?;
            }
            let Some(dir) = &self.dirs[shard] else {
                return Ok(None);
            };
            match op(dir, name) {
                Ok(v) => return Ok(Some(v)),
                Err(Errno::NOENT) if !fresh => {}
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::LOOP) => return Err(self.store.corrupt(id, SYMLINK)),
                Err(e) => return Err(Error::io(what, self.store.path_of(id))(e.into())),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::{Durability, Options};

    #[test]
    fn batched_file_lens_answer_as_file_len_does_one_by_one() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::create(d.path().join("objects"), Options::default()).unwrap();
        let mut b = store.batch(Durability::Batch);
        let mut ids: Vec<ObjectId> = (0..40u32)
            .map(|i| b.put(Kind::Blob, &vec![7u8; i as usize * 3]).unwrap())
            .collect();
        b.commit().unwrap();
        assert_eq!(store.pack_stats().objects, 40, "the batch is a pack");
        ids.push(store.put(Kind::Blob, b"a loose one").unwrap());
        ids.push(ObjectId::compute(Kind::Blob, b"nowhere"));
        ids.rotate_left(3);
        let mut r = store.reader();
        let mut batched = Vec::new();
        r.file_lens(&ids, &mut batched);
        assert_eq!(batched.len(), ids.len());
        for (id, got) in ids.iter().zip(batched) {
            match (got, r.file_len(id)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{id}"),
                (Err(a), Err(b)) => assert!(a.is_not_found() && b.is_not_found(), "{id}"),
                (a, b) => panic!("{id}: batched {a:?}, one by one {b:?}"),
            }
        }
    }
}
