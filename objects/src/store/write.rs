//! Writing objects: temp file, optional fsync, rename into place, directory
//! fsync; dedup that distrusts a bare `exists()`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::header::{self, HEADER_LEN, Header};
use super::{Durability, Store};
use crate::error::{Error, Result};
use crate::fault;
use crate::id::IdHasher;
use crate::{Kind, ObjectId};

/// The fault point of every object-store directory fsync.
pub(crate) fn dir_sync_fault() -> io::Result<()> {
    fault::point("objects.dir.sync")
}

/// A temp file under `objects/tmp/` that is removed on drop unless it was
/// promoted. A crash before promotion leaves it behind for open/GC to clean.
#[derive(Debug)]
pub(crate) struct TempFile {
    pub(crate) path: PathBuf,
    /// Open only while being written.
    pub(crate) file: Option<File>,
    pub(crate) promoted: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.promoted {
            self.file = None;
            // Best effort: a leftover temp file is harmless and collected later.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// State of the file under an object's final name.
pub(crate) enum Existing {
    /// No file.
    Absent,
    /// A file whose header and length match the id; freshened.
    Valid,
    /// A file that is torn, zero-filled or otherwise wrong: replace it.
    Invalid,
}

impl Store {
    pub(crate) fn new_temp(&self) -> Result<TempFile> {
        let pid = std::process::id();
        loop {
            let n = self.inner.tmp_counter.fetch_add(1, Ordering::Relaxed);
            let path = self.inner.tmp.join(format!("obj-{pid}-{n}.tmp"));
            let opened = fault::point("objects.tmp.create").and_then(|()| {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
            });
            match opened {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                        promoted: false,
                    });
                }
                // A leftover from an earlier process with the same pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create temp file", &path)(e)),
            }
        }
    }

    /// Register `id` (see pins), then look at the file under its final
    /// name; a valid file is freshened so a GC grace period restarts.
    pub(crate) fn check_existing(&self, id: &ObjectId, hold: bool) -> Result<Existing> {
        let pins = &self.inner.pins;
        let _shard = pins.shard_lock(id);
        pins.register(*id, hold);
        // A packed copy counts (looked up under the shard lock, so a GC
        // retiring its pack either sees this registration or is seen).
        // A repack may have just moved it to a new pack and unlinked the
        // one found: look again.
        for _ in 0..3 {
            let Some((pack, _)) = self.find_packed(id) else {
                break;
            };
            match pack.freshen() {
                Ok(()) => return Ok(Existing::Valid),
                Err(e)
                    if e.io_error()
                        .is_some_and(|e| e.kind() == io::ErrorKind::NotFound) =>
                {
                    self.rescan_packs()?;
                }
                Err(e) => return Err(e),
            }
        }
        let path = self.path_of(id);
        let mut file = match crate::fs::open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Absent),
            // A symlink, FIFO or anything else that is not a regular file
            // under an object's name is replaced: rename swaps the entry
            // itself, never a link's target, and never opens a FIFO.
            Err(e) if crate::fs::is_symlink_error(&e) || crate::fs::is_not_regular_error(&e) => {
                return Ok(Existing::Invalid);
            }
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        let len = file.metadata().map_err(Error::io("stat", &path))?.len();
        let mut h = [0u8; HEADER_LEN];
        if file.read_exact(&mut h).is_err() {
            return Ok(Existing::Invalid);
        }
        match Header::decode(&h).and_then(|hd| hd.check(id, len)) {
            Ok(()) => {
                fault::point("objects.freshen")
                    .and_then(|()| file.set_modified(SystemTime::now()))
                    .map_err(Error::io("freshen", &path))?;
                Ok(Existing::Valid)
            }
            Err(_) => Ok(Existing::Invalid),
        }
    }

    /// Write the bytes of a complete object file into a new temp file;
    /// fsync it if `sync`.
    pub(crate) fn write_temp_file(&self, file_bytes: &[u8], sync: bool) -> Result<TempFile> {
        self.write_temp_parts(&[file_bytes], sync)
    }

    /// Write a complete object into a new temp file; fsync it if `sync`.
    pub(crate) fn write_temp(
        &self,
        kind: Kind,
        id: ObjectId,
        payload: &[u8],
        sync: bool,
    ) -> Result<TempFile> {
        if payload.len() < 64 * 1024 {
            return self.write_temp_parts(&[&header::encode_file(kind, id, payload)], sync);
        }
        // Large: no copy of the payload, the CRC computed over the parts.
        let h = Header::raw(kind, payload.len() as u64, id).encode();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&h);
        crc.update(payload);
        let crc = crc.finalize().to_le_bytes();
        self.write_temp_parts(&[&h, payload, &crc], sync)
    }

    /// Write `parts` one after another into a new temp file, fsynced if
    /// `sync`, closed (a batch may stage far more files than the fd limit).
    fn write_temp_parts(&self, parts: &[&[u8]], sync: bool) -> Result<TempFile> {
        let mut tmp = self.new_temp()?;
        let path = tmp.path.clone();
        let file = tmp
            .file
            .as_mut()
            .ok_or_else(|| Error::io("write", &path)(io::ErrorKind::Other.into()))?;
        fault::point("objects.tmp.write").map_err(Error::io("write", &path))?;
        for part in parts {
            file.write_all(part).map_err(Error::io("write", &path))?;
        }
        if sync {
            fault::point("objects.tmp.sync")
                .and_then(|()| file.sync_data())
                .map_err(Error::sync(&path))?;
        }
        tmp.file = None;
        Ok(tmp)
    }

    /// Stream `len` payload bytes from `reader` into a temp file, hashing as
    /// it goes. Returns the id and the (unsynced unless `sync`) temp file.
    pub(crate) fn write_temp_stream(
        &self,
        kind: Kind,
        len: u64,
        reader: &mut dyn Read,
        sync: bool,
    ) -> Result<(ObjectId, TempFile)> {
        let mut tmp = self.new_temp()?;
        let path = tmp.path.clone();
        let file = tmp
            .file
            .as_mut()
            .ok_or_else(|| Error::io("write", &path)(io::ErrorKind::Other.into()))?;
        let mut hasher = IdHasher::new(kind, len);
        let mut crc_payload = crc32fast::Hasher::new();
        let mut buf = vec![0u8; len.saturating_add(1).min(256 * 1024) as usize];
        let mut seen: u64 = 0;
        let mut limited = reader.take(len.saturating_add(1));
        let mut offset = HEADER_LEN as u64;
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read input for", &path)(e)),
            };
            seen += n as u64;
            if seen > len {
                break;
            }
            hasher.update(&buf[..n]);
            crc_payload.update(&buf[..n]);
            fault::point("objects.tmp.write")
                .and_then(|()| file.write_all_at(&buf[..n], offset))
                .map_err(Error::io("write", &path))?;
            offset += n as u64;
        }
        if seen != len {
            return Err(Error::LengthMismatch {
                kind,
                expected: len,
                actual: seen,
            });
        }
        let id = hasher.finalize();
        let h = Header::raw(kind, len, id).encode();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&h);
        crc.combine(&crc_payload);
        file.write_all_at(&h, 0)
            .map_err(Error::io("write", &path))?;
        file.write_all_at(&crc.finalize().to_le_bytes(), offset)
            .map_err(Error::io("write", &path))?;
        if sync {
            fault::point("objects.tmp.sync")
                .and_then(|()| file.sync_data())
                .map_err(Error::sync(&path))?;
        }
        tmp.file = None;
        Ok((id, tmp))
    }

    /// Rename a temp file to the object's final name, creating the shard
    /// directory if it is missing (a GC may have removed it while empty).
    /// With `sync`, the directories touched are fsynced.
    pub(crate) fn promote(&self, tmp: &mut TempFile, id: &ObjectId, sync: bool) -> Result<PathBuf> {
        let dst = self.path_of(id);
        let shard = self.shard_dir(id);
        tmp.file = None;
        let rename = || fault::point("objects.rename").and_then(|()| fs::rename(&tmp.path, &dst));
        // A missing shard directory (never made, or removed by a GC while
        // empty, possibly again between our mkdir and rename) is recreated
        // and the rename retried; a missing temp file fails after a few tries.
        let mut tries = 0;
        loop {
            match rename() {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 8 => {
                    tries += 1;
                    self.ensure_shard(&shard, sync)?;
                }
                Err(e) => return Err(Error::io("rename into", &dst)(e)),
            }
        }
        tmp.promoted = true;
        if sync {
            crate::fs::sync_dir(&shard, dir_sync_fault)?;
        }
        Ok(shard)
    }

    fn ensure_shard(&self, shard: &Path, sync: bool) -> Result<()> {
        match fault::point("objects.shard.mkdir").and_then(|()| fs::create_dir(shard)) {
            Ok(()) => {
                if sync {
                    crate::fs::sync_dir(self.dir(), dir_sync_fault)?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::io("create directory", shard)(e)),
        }
    }

    /// Store an object from memory with the store's default durability.
    /// Returns its id; an existing valid copy is freshened, not rewritten.
    pub fn put(&self, kind: Kind, payload: &[u8]) -> Result<ObjectId> {
        self.put_with(kind, payload, self.inner.options.durability)
    }

    /// Store an object with an explicit durability.
    pub fn put_with(&self, kind: Kind, payload: &[u8], durability: Durability) -> Result<ObjectId> {
        let id = ObjectId::compute(kind, payload);
        if let Existing::Valid = self.check_existing(&id, false)? {
            return Ok(id);
        }
        let sync = durability != Durability::None;
        let mut tmp = self.write_temp(kind, id, payload, sync)?;
        self.promote(&mut tmp, &id, sync)?;
        Ok(id)
    }

    /// Store an object streamed from `reader`, which must yield exactly `len`
    /// bytes; memory use does not depend on `len`.
    pub fn put_reader(&self, kind: Kind, len: u64, mut reader: impl Read) -> Result<ObjectId> {
        let sync = self.inner.options.durability != Durability::None;
        // The id is known only once the stream is read: write unsynced, and
        // pay for the fsync only if the object is not there already.
        let (id, mut tmp) = self.write_temp_stream(kind, len, &mut reader, false)?;
        if let Existing::Valid = self.check_existing(&id, false)? {
            return Ok(id);
        }
        if sync {
            let f = crate::fs::open_regular(&tmp.path).map_err(Error::io("open", &tmp.path))?;
            fault::point("objects.tmp.sync")
                .and_then(|()| f.sync_data())
                .map_err(Error::sync(&tmp.path))?;
        }
        self.promote(&mut tmp, &id, sync)?;
        Ok(id)
    }
}
