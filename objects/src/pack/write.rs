//! Writing and publishing a pack: entries streamed into a temp file in
//! `objects/tmp/` (hashed as they go), fsync; the index into a second temp
//! file, fsync; rename the pack into `objects/pack/`, then the index; fsync
//! `objects/pack/`. Three syncs whatever the object count. Nothing is
//! visible before it is durable: a pack without its index is not live.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::{HEADER, MAGIC, Pack, VERSION, file_name, index};
use crate::ObjectId;
use crate::error::{Error, Result};
use crate::fault;
use crate::store::{Store, TempFile};

/// Writes one pack of a known number of objects.
#[derive(Debug)]
pub(crate) struct PackWriter {
    store: Store,
    tmp: TempFile,
    out: Option<BufWriter<File>>,
    entries: Vec<(ObjectId, u64)>,
    pos: u64,
}

pub(crate) fn fault_dir_sync() -> io::Result<()> {
    fault::point("pack.dir.sync")
}

impl PackWriter {
    /// Start a pack; `hint` is the expected number of objects.
    pub(crate) fn new(store: &Store, hint: usize) -> Result<PackWriter> {
        let mut tmp = store.new_temp()?;
        let file = tmp
            .file
            .take()
            .ok_or_else(|| Error::io("write", &tmp.path)(io::ErrorKind::Other.into()))?;
        let mut w = PackWriter {
            store: store.clone(),
            tmp,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            entries: Vec::with_capacity(hint.min(1 << 20)),
            pos: 0,
        };
        // The count is written over the placeholder at `finish`.
        let mut h = [0u8; HEADER];
        h[..4].copy_from_slice(&MAGIC);
        h[4] = VERSION;
        w.write(&h)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let path = &self.tmp.path;
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| Error::io("write", path)(io::ErrorKind::Other.into()))?;
        fault::point("pack.write")
            .and_then(|()| out.write_all(bytes))
            .map_err(Error::io("write", path))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Objects added so far.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Append an entry: `file` is a complete loose object file of `id`.
    pub(crate) fn add(&mut self, id: ObjectId, file: &[u8]) -> Result<()> {
        self.entries.push((id, self.pos));
        self.write(file)
    }

    /// Append an entry of `len` bytes (a complete object file) read from
    /// `r`.
    pub(crate) fn add_reader(&mut self, id: ObjectId, len: u64, r: &mut dyn Read) -> Result<()> {
        self.entries.push((id, self.pos));
        let mut buf = vec![0u8; len.min(1 << 20) as usize];
        let mut left = len;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            r.read_exact(&mut buf[..want])
                .map_err(Error::io("read staged object for", &self.tmp.path))?;
            self.write(&buf[..want])?;
            left -= want as u64;
        }
        Ok(())
    }

    /// Finish and publish (syncing when `sync`); returns the live pack.
    /// The count goes into the header, then the whole file is hashed
    /// (read back through a mapping: the pages are still cached) and the
    /// hash appended.
    pub(crate) fn finish(mut self, sync: bool) -> Result<Arc<Pack>> {
        let tmp_path = self.tmp.path.clone();
        let out = self
            .out
            .take()
            .ok_or_else(|| Error::io("write", &tmp_path)(io::ErrorKind::Other.into()))?;
        let file = out
            .into_inner()
            .map_err(|e| Error::io("write", &tmp_path)(e.into_error()))?;
        let count = (self.entries.len() as u64).to_le_bytes();
        fault::point("pack.write")
            .and_then(|()| file.write_all_at(&count, 8))
            .map_err(Error::io("write", &tmp_path))?;
        let hash = {
            let map = crate::map::map_file(&file).map_err(Error::io("map", &tmp_path))?;
            ObjectId::from_bytes(*blake3::hash(&map).as_bytes())
        };
        fault::point("pack.write")
            .and_then(|()| file.write_all_at(hash.as_bytes(), self.pos))
            .map_err(Error::io("write", &tmp_path))?;
        if sync {
            fault::point("pack.sync")
                .and_then(|()| file.sync_data())
                .map_err(Error::sync(&tmp_path))?;
        }
        drop(file);
        let mut idx_tmp = write_index(&self.store, &hash, &mut self.entries, sync, &tmp_path)?;
        publish(&self.store, &mut self.tmp, &mut idx_tmp, &hash, sync)
    }
}

/// Make pack `hash` live: rename its temp file (written and synced) into
/// `objects/pack/`, then its index's (likewise), then sync the directory
/// when `sync`. Returns the opened pack; the caller adds it to the store.
pub(crate) fn publish(
    store: &Store,
    pack_tmp: &mut TempFile,
    idx_tmp: &mut TempFile,
    hash: &ObjectId,
    sync: bool,
) -> Result<Arc<Pack>> {
    let dir = store.pack_dir().to_path_buf();
    ensure_dir(store, &dir, sync)?;
    let pack_dst = dir.join(file_name(hash, "pack"));
    let idx_dst = dir.join(file_name(hash, "idx"));
    // Mapped before it is live: once renamed in, a repack in another
    // thread may merge it and unlink it before it could be opened.
    let pack = Pack::open_files(&pack_tmp.path, &idx_tmp.path, pack_dst.clone(), *hash)?;
    rename(pack_tmp, &pack_dst, "pack.rename")?;
    rename(idx_tmp, &idx_dst, "pack.idx.rename")?;
    if sync {
        crate::fs::sync_dir(&dir, fault_dir_sync)?;
    }
    Ok(Arc::new(pack))
}

/// Write the index of pack `hash` (entries: id, offset; sorted here) into
/// a new temp file, streamed, fsynced when `sync`. `pack` names the pack
/// in errors about its entries (a repeated id).
pub(crate) fn write_index(
    store: &Store,
    hash: &ObjectId,
    entries: &mut [(ObjectId, u64)],
    sync: bool,
    pack: &std::path::Path,
) -> Result<TempFile> {
    let mut idx_tmp = store.new_temp()?;
    let idx_path = idx_tmp.path.clone();
    let f = idx_tmp
        .file
        .as_mut()
        .ok_or_else(|| Error::io("write", &idx_path)(io::ErrorKind::Other.into()))?;
    let mut out = BufWriter::with_capacity(1 << 20, &mut *f);
    fault::point("pack.idx.write")
        .and_then(|()| index::encode_to(&mut out, hash, entries))
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => Error::BadPack {
                path: pack.to_path_buf(),
                reason: e.to_string(),
            },
            _ => Error::io("write", &idx_path)(e),
        })?;
    drop(out);
    if sync {
        fault::point("pack.idx.sync")
            .and_then(|()| f.sync_data())
            .map_err(Error::sync(&idx_path))?;
    }
    idx_tmp.file = None;
    Ok(idx_tmp)
}

pub(crate) fn rename(tmp: &mut TempFile, dst: &PathBuf, point: &'static str) -> Result<()> {
    fault::point(point)
        .and_then(|()| fs::rename(&tmp.path, dst))
        .map_err(Error::io("rename into", dst))?;
    tmp.promoted = true;
    Ok(())
}

/// Create `objects/pack/` if missing (durably when `sync`).
pub(crate) fn ensure_dir(store: &Store, dir: &PathBuf, sync: bool) -> Result<()> {
    match fault::point("pack.mkdir").and_then(|()| fs::create_dir(dir)) {
        Ok(()) => {
            if sync {
                crate::fs::sync_dir(store.dir(), fault_dir_sync)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create directory", dir)(e)),
    }
}

/// Unlink a pack: the `.pack` first (so a crash between the two leaves an
/// index without its pack, which open removes, never a pack that would be
/// re-indexed back to life), then the `.idx`.
pub(crate) fn remove_files(pack: &Pack) -> Result<()> {
    for (path, point) in [
        (pack.path().to_path_buf(), "pack.unlink"),
        (pack.idx_path(), "pack.idx.unlink"),
    ] {
        match fault::point(point).and_then(|()| fs::remove_file(&path)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("delete", &path)(e)),
        }
    }
    Ok(())
}
