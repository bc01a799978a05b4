//! Reading objects: `get`, `stat`, `contains`, `iter`, prefix lookup.

use std::fs::{self, File, ReadDir};
use std::io::{self, Read};
use std::ops::{Deref, Range};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};

use super::header::{self, HEADER_LEN, Header, MIN_FILE_LEN};
use super::{MMAP_THRESHOLD, Store, TMP_DIR};
use crate::commit::CommitRef;
use crate::error::{Error, Result};
use crate::id::Prefix;
use crate::map::{Mmap, map_file};
use crate::pack::Pack;
use crate::tree::TreeRef;
use crate::{Kind, ObjectId};

/// Why a symlink under an object's name is refused.
pub(super) const SYMLINK: &str = "is a symbolic link, not an object file (refusing to follow it)";
/// Why a directory (or anything else) under an object's name is refused.
pub(super) const NOT_A_FILE: &str = "not a regular file";

/// An object's payload: in a buffer for small objects, mapped for large ones.
#[derive(Debug, Clone)]
pub struct Data {
    repr: Repr,
    range: Range<usize>,
}

#[derive(Debug, Clone)]
enum Repr {
    Owned(Arc<Vec<u8>>),
    Mapped(Arc<Mmap>),
}

impl Data {
    /// Whether the payload is served from a memory map (no copy was made).
    pub fn is_mapped(&self) -> bool {
        matches!(self.repr, Repr::Mapped(_))
    }
}

impl Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.repr {
            Repr::Owned(v) => &v[self.range.clone()],
            Repr::Mapped(m) => &m[self.range.clone()],
        }
    }
}

impl AsRef<[u8]> for Data {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

/// A verified object.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its id.
    pub id: ObjectId,
    /// Its kind.
    pub kind: Kind,
    /// Its payload.
    pub data: Data,
}

impl Object {
    /// Decode as a tree (errors name the object).
    pub fn tree(&self) -> Result<TreeRef<'_>> {
        decode_tree(&self.id, self.kind, &self.data)
    }

    /// A tree's entries with the framing checked but not the names (see
    /// [`TreeRef::raw_entries`]): for reachability walks.
    pub fn raw_tree(&self) -> Result<Vec<crate::tree::RawEntry<'_>>> {
        expect_kind(&self.id, self.kind, Kind::Tree)?;
        TreeRef::raw_entries(&self.data).map_err(|source| Error::Decode {
            id: self.id,
            source,
        })
    }

    /// Decode as a commit (errors name the object).
    pub fn commit(&self) -> Result<CommitRef<'_>> {
        decode_commit(&self.id, self.kind, &self.data)
    }

    /// Fail with [`Error::WrongKind`] unless the object is of `kind`.
    pub fn expect(&self, kind: Kind) -> Result<()> {
        expect_kind(&self.id, self.kind, kind)
    }
}

/// [`Error::WrongKind`] unless `actual` is `expected`.
pub(super) fn expect_kind(id: &ObjectId, actual: Kind, expected: Kind) -> Result<()> {
    if actual != expected {
        return Err(Error::WrongKind {
            id: *id,
            expected,
            actual,
        });
    }
    Ok(())
}

/// Decode the payload of object `id` (of `kind`) as a tree.
pub(super) fn decode_tree<'a>(id: &ObjectId, kind: Kind, payload: &'a [u8]) -> Result<TreeRef<'a>> {
    expect_kind(id, kind, Kind::Tree)?;
    TreeRef::decode(payload).map_err(|source| Error::Decode { id: *id, source })
}

/// Decode the payload of object `id` (of `kind`) as a commit.
pub(super) fn decode_commit<'a>(
    id: &ObjectId,
    kind: Kind,
    payload: &'a [u8],
) -> Result<CommitRef<'a>> {
    expect_kind(id, kind, Kind::Commit)?;
    CommitRef::decode(payload).map_err(|source| Error::Decode { id: *id, source })
}

/// Kind and size, from the header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Object kind.
    pub kind: Kind,
    /// Payload length.
    pub size: u64,
    /// Length of the file on disk.
    pub file_len: u64,
}

impl Store {
    pub(super) fn corrupt(&self, id: &ObjectId, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            id: *id,
            path: self.path_of(id),
            reason: reason.into(),
        }
    }

    /// Open the shard directory `objects/<shard>/` (for `*at` calls);
    /// `None` if it does not exist. Refuses a symlink in its place.
    pub(super) fn open_shard_dir(&self, shard: &str) -> Result<Option<OwnedFd>> {
        let path = self.dir().join(shard);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::open(&path, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(fd)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io("open shard directory", &path)(e.into())),
        }
    }

    fn open_object(&self, id: &ObjectId) -> Result<(File, PathBuf, u64)> {
        let path = self.path_of(id);
        let file = match crate::fs::open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound(*id)),
            Err(e) if crate::fs::is_symlink_error(&e) => {
                return Err(self.corrupt(id, SYMLINK));
            }
            Err(e) if crate::fs::is_not_regular_error(&e) => {
                return Err(self.corrupt(id, e.to_string()));
            }
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        let meta = file.metadata().map_err(Error::io("stat", &path))?;
        if !meta.is_file() {
            return Err(self.corrupt(id, NOT_A_FILE));
        }
        Ok((file, path, meta.len()))
    }

    /// Read and verify an object (BLAKE3 recomputed only if the store was
    /// opened with `verify_hash_on_read`).
    pub fn get(&self, id: &ObjectId) -> Result<Object> {
        self.read(id, self.inner.options.verify_hash_on_read)
    }

    /// Read an object and recompute its BLAKE3 id.
    pub fn get_verified(&self, id: &ObjectId) -> Result<Object> {
        self.read(id, true)
    }

    fn read(&self, id: &ObjectId, verify_hash: bool) -> Result<Object> {
        let packed = match self.read_packed(id, verify_hash) {
            Ok(Some(obj)) => return Ok(obj),
            Ok(None) => None,
            // A damaged packed copy: a loose one may still be good.
            Err(e) => Some(e),
        };
        match self.read_loose(id, verify_hash) {
            Err(e) if e.is_not_found() => match packed {
                Some(e) => Err(e),
                None if self.refresh_packs()? => match self.read_packed(id, verify_hash)? {
                    Some(obj) => Ok(obj),
                    None => self.read_fallback(id, e),
                },
                None => self.read_fallback(id, e),
            },
            // A replica's cached copy is written without fsync: one torn
            // by a crash is dropped and fetched again.
            Err(e @ Error::Corrupt { .. }) if self.fallback_has(id) => {
                self.drop_cached(id);
                self.read_fallback(id, e)
            }
            other => other,
        }
    }

    /// Remove the loose copy of `id` (a damaged cached copy; best effort).
    pub(super) fn drop_cached(&self, id: &ObjectId) {
        let _ = fs::remove_file(self.path_of(id));
    }

    /// After a local miss (`miss`): the object from the fallback, if any.
    fn read_fallback(&self, id: &ObjectId, miss: Error) -> Result<Object> {
        match self.fault_in(id)? {
            Some(f) => Ok(Object {
                id: *id,
                kind: f.kind,
                data: Data {
                    repr: Repr::Owned(Arc::new(f.bytes)),
                    range: f.range,
                },
            }),
            None => Err(miss),
        }
    }

    /// Read `id` from a live pack: `None` when no pack lists it. The
    /// payload is a slice of the mapped pack (no copy).
    pub(super) fn read_packed(&self, id: &ObjectId, verify_hash: bool) -> Result<Option<Object>> {
        let Some((pack, offset)) = self.find_packed(id) else {
            return Ok(None);
        };
        Self::read_at(&pack, id, offset, verify_hash).map(Some)
    }

    fn read_at(pack: &Arc<Pack>, id: &ObjectId, offset: u64, verify_hash: bool) -> Result<Object> {
        let (entry, range) = pack.entry(id, offset, verify_hash)?;
        Ok(Object {
            id: *id,
            kind: entry.kind,
            data: Data {
                repr: Repr::Mapped(pack.mapped().clone()),
                range,
            },
        })
    }

    /// [`Store::get`] of `id` where [`Store::locate_packed`] found it, or
    /// by searching when it did not.
    pub fn get_located(&self, id: &ObjectId, at: Option<&(Arc<Pack>, u64)>) -> Result<Object> {
        match at {
            Some((pack, offset)) => {
                Self::read_at(pack, id, *offset, self.inner.options.verify_hash_on_read)
            }
            None => self.get(id),
        }
    }

    /// [`Store::stat`] of `id` where [`Store::locate_packed`] found it, or
    /// by searching when it did not.
    pub fn stat_located(&self, id: &ObjectId, at: Option<&(Arc<Pack>, u64)>) -> Result<Stat> {
        match at {
            Some((pack, offset)) => self.stat_in(pack, id, *offset),
            None => self.stat(id),
        }
    }

    /// Read and verify the loose copy of `id` only (fsck checks loose
    /// files and packs separately).
    pub fn get_loose(&self, id: &ObjectId, verify_hash: bool) -> Result<Object> {
        self.read_loose(id, verify_hash)
    }

    fn read_loose(&self, id: &ObjectId, verify_hash: bool) -> Result<Object> {
        let (file, _, len) = self.open_object(id)?;
        let mut buf = Vec::new();
        let (map, kind, range) = self.load(id, &file, len, &mut buf, verify_hash)?;
        let repr = match map {
            Some(map) => Repr::Mapped(Arc::new(map)),
            None => Repr::Owned(Arc::new(buf)),
        };
        Ok(Object {
            id: *id,
            kind,
            data: Data { repr, range },
        })
    }

    /// Read and verify the open file of object `id`, `len` bytes long (as
    /// fstat reported): below the mmap threshold into `buf` (exactly `len`
    /// bytes, no size probe, no EOF read), else mapped, and then framing,
    /// lengths, header id and CRC checked, BLAKE3 too when asked. Returns
    /// the mapping if there is one, the kind and the payload's range in the
    /// bytes. Every reader of object files goes through here (`get`, the
    /// many-object [`Reader`](super::Reader), the sweep).
    pub(super) fn load(
        &self,
        id: &ObjectId,
        mut file: &File,
        len: u64,
        buf: &mut Vec<u8>,
        verify_hash: bool,
    ) -> Result<(Option<Mmap>, Kind, Range<usize>)> {
        if len < MIN_FILE_LEN as u64 {
            return Err(self.corrupt(
                id,
                format!("file is {len} bytes, shorter than the {MIN_FILE_LEN}-byte minimum"),
            ));
        }
        let map = if len - (MIN_FILE_LEN as u64) < MMAP_THRESHOLD {
            buf.clear();
            buf.resize(len as usize, 0);
            match file.read_exact(buf) {
                Ok(()) => None,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(self.corrupt(
                        id,
                        format!("file shrank below its {len} bytes while being read"),
                    ));
                }
                Err(e) => return Err(Error::io("read", self.path_of(id))(e)),
            }
        } else {
            let map = crate::fault::point("objects.map")
                .and_then(|()| map_file(file))
                .map_err(Error::io("map", self.path_of(id)))?;
            Some(map)
        };
        let bytes: &[u8] = map.as_deref().unwrap_or(buf);
        let (h, range) = header::parse_file(bytes, Some(id)).map_err(|r| self.corrupt(id, r))?;
        if verify_hash {
            let actual = ObjectId::compute(h.kind, &bytes[range.clone()]);
            if actual != *id {
                return Err(self.corrupt(id, format!("content hashes to {actual}")));
            }
        }
        Ok((map, h.kind, range))
    }

    /// Kind and size from the header, without reading the payload. Checks
    /// magic, version, header id and file length, not the CRC.
    pub fn stat(&self, id: &ObjectId) -> Result<Stat> {
        if let Some(st) = self.stat_packed(id)? {
            return Ok(st);
        }
        let (mut file, path, len) = match self.open_object(id) {
            Err(e) if e.is_not_found() => {
                if self.refresh_packs()?
                    && let Some(st) = self.stat_packed(id)?
                {
                    return Ok(st);
                }
                return match self.fault_in(id)? {
                    Some(f) => Ok(Stat {
                        kind: f.kind,
                        size: f.range.len() as u64,
                        file_len: f.bytes.len() as u64,
                    }),
                    None => Err(e),
                };
            }
            other => other?,
        };
        let mut h = [0u8; HEADER_LEN];
        if let Err(e) = file.read_exact(&mut h) {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                return Err(
                    self.corrupt(id, format!("file is {len} bytes, shorter than its header"))
                );
            }
            return Err(Error::io("read", &path)(e));
        }
        let header = Header::decode(&h).map_err(|r| self.corrupt(id, r))?;
        header.check(id, len).map_err(|r| self.corrupt(id, r))?;
        Ok(Stat {
            kind: header.kind,
            size: header.payload_len,
            file_len: len,
        })
    }

    pub(super) fn stat_packed(&self, id: &ObjectId) -> Result<Option<Stat>> {
        let Some((pack, offset)) = self.find_packed(id) else {
            return Ok(None);
        };
        self.stat_in(&pack, id, offset).map(Some)
    }

    /// Kind and size of `id` from its entry header at `offset` in `pack`.
    pub(super) fn stat_in(
        &self,
        pack: &crate::pack::Pack,
        id: &ObjectId,
        offset: u64,
    ) -> Result<Stat> {
        let start = offset as usize;
        let h = pack
            .bytes()
            .get(start..start + HEADER_LEN)
            .and_then(|h| <[u8; HEADER_LEN]>::try_from(h).ok())
            .ok_or_else(|| self.corrupt_packed(pack, id, offset, "entry header is cut short"))?;
        let header = Header::decode(&h).map_err(|r| self.corrupt_packed(pack, id, offset, &r))?;
        let file_len = header
            .file_len()
            .ok_or_else(|| self.corrupt_packed(pack, id, offset, "length overflows"))?;
        header
            .check(id, file_len)
            .map_err(|r| self.corrupt_packed(pack, id, offset, &r))?;
        let body = pack.bytes().len().saturating_sub(crate::pack::TRAILER) as u64;
        if offset.saturating_add(file_len) > body {
            return Err(self.corrupt_packed(
                pack,
                id,
                offset,
                "entry runs past the end of the pack",
            ));
        }
        Ok(Stat {
            kind: header.kind,
            size: header.payload_len,
            file_len,
        })
    }

    fn corrupt_packed(
        &self,
        pack: &crate::pack::Pack,
        id: &ObjectId,
        offset: u64,
        why: &str,
    ) -> Error {
        Error::Corrupt {
            id: *id,
            path: pack.path().to_path_buf(),
            reason: format!("entry at offset {offset}: {why}"),
        }
    }

    /// Whether the object is in a live pack or a file exists under its
    /// loose name (no content check).
    pub fn contains(&self, id: &ObjectId) -> Result<bool> {
        if self.contains_packed(id) {
            return Ok(true);
        }
        if self.contains_loose(id)? {
            return Ok(true);
        }
        Ok((self.refresh_packs()? && self.contains_packed(id)) || self.fallback_has(id))
    }

    /// Whether a file exists under the id's loose name.
    pub fn contains_loose(&self, id: &ObjectId) -> Result<bool> {
        let path = self.path_of(id);
        match fs::symlink_metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("stat", &path)(e)),
        }
    }

    /// Every object id in the store, once: the live packs' ids, then the
    /// loose ids not also packed. Holds the packed ids in memory (32 bytes
    /// each).
    pub fn all_ids(&self) -> Result<Vec<ObjectId>> {
        self.refresh_packs()?;
        let mut out: Vec<ObjectId> = Vec::new();
        for p in self.packs().iter() {
            let v = p.index();
            out.extend((0..v.len()).map(|i| v.id(i)));
        }
        for id in self.iter()? {
            out.push(id?);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Every loose object id in the store, shard by shard. Files whose
    /// names are not object ids are skipped (fsck reports them). Packed
    /// objects are listed by [`Store::packs`] or [`Store::all_ids`].
    pub fn iter(&self) -> Result<Iter> {
        let mut shards = Vec::new();
        let rd = fs::read_dir(self.dir()).map_err(Error::io("list", self.dir()))?;
        for entry in rd {
            let entry = entry.map_err(Error::io("list", self.dir()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name != TMP_DIR && is_shard_name(name) {
                shards.push(name.to_owned());
            }
        }
        shards.sort_unstable();
        shards.reverse();
        Ok(Iter {
            dir: self.dir().to_path_buf(),
            shards,
            current: None,
        })
    }

    /// Ids in one shard directory (`00`..`ff`), sorted.
    pub fn list_shard(&self, shard: &str) -> Result<Vec<ObjectId>> {
        let dir = self.dir().join(shard);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(Error::io("list", &dir))?;
            if let Some(id) = id_from_names(shard, &entry.file_name()) {
                out.push(id);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Resolve a unique prefix (4..=64 hex digits) to an id.
    pub fn resolve_prefix(&self, prefix: &Prefix) -> Result<ObjectId> {
        if let Some(full) = prefix.as_full() {
            return if self.contains(&full)? {
                Ok(full)
            } else {
                Err(Error::NotFound(full))
            };
        }
        let mut matches: Vec<ObjectId> = self
            .list_shard(prefix.shard())?
            .into_iter()
            .filter(|id| prefix.matches(id))
            .collect();
        self.refresh_packs()?;
        let first = u8::from_str_radix(prefix.shard(), 16).unwrap_or(0);
        let mut bytes = Vec::new();
        let hex = prefix.as_str().as_bytes();
        for pair in hex.chunks_exact(2) {
            let s = std::str::from_utf8(pair).unwrap_or("00");
            bytes.push(u8::from_str_radix(s, 16).unwrap_or(0));
        }
        for pack in self.packs().iter() {
            let v = pack.index();
            let (mut at, end) = v.lower_bound(first, &bytes);
            while at < end {
                let id = v.id(at);
                if !prefix.matches(&id) {
                    break;
                }
                matches.push(id);
                at += 1;
            }
        }
        matches.sort_unstable();
        matches.dedup();
        match matches.len() {
            0 => Err(Error::PrefixNotFound(prefix.to_string())),
            1 => Ok(matches[0]),
            _ => Err(Error::Ambiguous {
                prefix: prefix.to_string(),
                candidates: matches,
            }),
        }
    }

    /// Remove an object's file. Returns whether it existed. For GC; beside a
    /// live writer use a [`ShardSweep`](super::ShardSweep).
    pub fn delete(&self, id: &ObjectId) -> Result<bool> {
        let path = self.path_of(id);
        match crate::fault::point("objects.delete").and_then(|()| fs::remove_file(&path)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("delete", &path)(e)),
        }
    }
}

fn is_shard_name(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn id_from_names(shard: &str, file: &std::ffi::OsStr) -> Option<ObjectId> {
    let rest = file.to_str()?;
    if rest.len() != ObjectId::HEX_LEN - 2
        || !rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    format!("{shard}{rest}").parse().ok()
}

/// Iterator over every object id; see [`Store::iter`].
#[derive(Debug)]
pub struct Iter {
    dir: PathBuf,
    shards: Vec<String>,
    current: Option<(String, ReadDir)>,
}

impl Iterator for Iter {
    type Item = Result<ObjectId>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((shard, rd)) = self.current.as_mut() {
                match rd.next() {
                    Some(Ok(entry)) => {
                        if let Some(id) = id_from_names(shard, &entry.file_name()) {
                            return Some(Ok(id));
                        }
                        continue;
                    }
                    Some(Err(e)) => {
                        let path = self.dir.join(shard.as_str());
                        self.current = None;
                        return Some(Err(Error::io("list", path)(e)));
                    }
                    None => self.current = None,
                }
            }
            let shard = self.shards.pop()?;
            let path = self.dir.join(&shard);
            match fs::read_dir(&path) {
                Ok(rd) => self.current = Some((shard, rd)),
                // Removed by a concurrent GC after listing: nothing in it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Some(Err(Error::io("list", &path)(e))),
            }
        }
    }
}

/// Parse a shard directory name and file name into an id (for fsck and GC).
pub fn id_from_path(path: &Path) -> Option<ObjectId> {
    let file = path.file_name()?;
    let shard = path.parent()?.file_name()?.to_str()?;
    if !is_shard_name(shard) {
        return None;
    }
    id_from_names(shard, file)
}
