//! Stored WAL ranges: the bytes of another store's WAL chunks, kept so
//! that commits fetched from it replay here exactly as there
//! (docs/FORMAT.md §20, docs/DECISIONS.md 48).
//!
//! A chunk names its bytes by segment first seq and offsets, and every
//! store's WAL starts at seq 1: a fetched commit's chunks must never be
//! looked up in this store's own `wal/`. Their bytes are kept under
//! `<dir>/walchunks/<2 hex>/<62 hex>`, named by the chunk blob's id (which
//! commits to the segment, offsets, seqs, CRC32 and BLAKE3), as the source
//! segment's 16-byte header followed by the chunk's bytes. Replay looks
//! here first; fsck verifies what it finds here instead of the local
//! segment; GC removes ranges no reachable commit needs.
//!
//! Written like an object (temp file in `walchunks/tmp/`, verified,
//! fsynced, renamed, directory fsynced) before any ref can reach the
//! commit naming it.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sydra_objects::ObjectId;
use sydra_objects::map::{Mmap, map_file};

use super::chunk::Chunk;
use super::record::{SEGMENT_HEADER_LEN, parse_segment_header_version};
use crate::error::{Error, Result};

/// The directory of stored ranges, beside `wal/`.
pub const RANGES_DIR: &str = "walchunks";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `walchunks/` of the data directory whose WAL directory is `wal_dir`.
pub fn ranges_dir(wal_dir: &Path) -> PathBuf {
    wal_dir
        .parent()
        .map_or_else(|| PathBuf::from(RANGES_DIR), |p| p.join(RANGES_DIR))
}

/// Where the range of chunk blob `id` is kept.
pub fn range_path(ranges: &Path, id: &ObjectId) -> PathBuf {
    let hex = id.to_hex();
    ranges.join(&hex[..2]).join(&hex[2..])
}

/// A stored range, mapped and verified.
#[derive(Debug)]
pub struct StoredRange {
    /// Its file.
    pub path: PathBuf,
    /// The source segment's record format version.
    pub version: u8,
    pub(super) map: Mmap,
}

impl StoredRange {
    /// The whole file: the segment header, then the chunk's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The chunk's bytes.
    pub fn range(&self) -> &[u8] {
        &self.map[SEGMENT_HEADER_LEN..]
    }
}

fn bad(path: &Path, id: &ObjectId, reason: String) -> Error {
    Error::ChunkMismatch {
        chunk: *id,
        path: path.to_path_buf(),
        reason,
    }
}

/// Check a stored range's bytes against its chunk: the header names the
/// chunk's segment, the rest is exactly the chunk (length, CRC32, and the
/// BLAKE3 when `blake3`).
fn check_with(bytes: &[u8], chunk: &Chunk, blake3: bool) -> std::result::Result<u8, String> {
    let version = check_header(bytes, chunk)?;
    let range = &bytes[SEGMENT_HEADER_LEN..];
    if blake3 {
        chunk.verify(range)?;
    } else {
        chunk.verify_crc(range)?;
    }
    Ok(version)
}

/// The stored segment header (the first bytes of `bytes`) names the
/// chunk's segment; returns its record format version.
fn check_header(bytes: &[u8], chunk: &Chunk) -> std::result::Result<u8, String> {
    let (first, version) = parse_segment_header_version(bytes)?;
    if first != chunk.segment {
        return Err(format!(
            "the stored header names segment {first}, the chunk segment {}",
            chunk.segment
        ));
    }
    Ok(version)
}

/// Open and verify the stored range of chunk `id`; `None` when none is
/// stored.
pub fn open(wal_dir: &Path, id: &ObjectId, chunk: &Chunk) -> Result<Option<StoredRange>> {
    open_checked(wal_dir, id, chunk, true)
}

fn open_checked(
    wal_dir: &Path,
    id: &ObjectId,
    chunk: &Chunk,
    blake3: bool,
) -> Result<Option<StoredRange>> {
    let path = range_path(&ranges_dir(wal_dir), id);
    let file = match sydra_objects::fs::open_regular(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path)(e)),
    };
    let map = sydra_objects::fault::point("wal.map")
        .and_then(|()| map_file(&file))
        .map_err(Error::io("map", &path))?;
    let version = check_with(&map, chunk, blake3).map_err(|r| bad(&path, id, r))?;
    Ok(Some(StoredRange { path, version, map }))
}

/// [`open`] with only the CRC32 checked, not the BLAKE3 (a sender's read:
/// its receiver recomputes the BLAKE3).
pub fn open_crc(wal_dir: &Path, id: &ObjectId, chunk: &Chunk) -> Result<Option<StoredRange>> {
    open_checked(wal_dir, id, chunk, false)
}

/// Whether chunk `id`'s range is stored here (no content check).
pub fn exists(wal_dir: &Path, id: &ObjectId) -> bool {
    range_path(&ranges_dir(wal_dir), id).is_file()
}

/// Store chunk `id`'s range (`header` is the source segment's first
/// `SEGMENT_HEADER_LEN` bytes, `bytes` the chunk's), verified, made durable
/// before it is visible. An existing valid copy is kept.
pub fn write(
    wal_dir: &Path,
    id: &ObjectId,
    chunk: &Chunk,
    header: &[u8],
    bytes: &[u8],
) -> Result<()> {
    if let Ok(Some(_)) = open(wal_dir, id, chunk) {
        return Ok(());
    }
    let mut w = RangeWriter::new(wal_dir, id)?;
    w.write(header.get(..SEGMENT_HEADER_LEN).unwrap_or(header))?;
    w.write(bytes)?;
    place(vec![w.finish(chunk)?])
}

/// Blocks (or shared pieces) a range's writing thread lets wait: a range
/// is a few MB, several are written at once behind a transfer's reader
/// (`receive.rs`), and together they wait on the disk, so each keeps a
/// short queue (at most seven blocks held).
const RANGE_QUEUE: usize = 4;

/// A stored range written as its bytes arrive (the segment header, then
/// the chunk's bytes) into a temp file in `walchunks/tmp/`;
/// [`RangeWriter::finish`] verifies it against its chunk, syncs it and
/// renames it into place. Dropped unfinished, the temp file is removed.
#[derive(Debug)]
pub struct RangeWriter {
    tmp: PathBuf,
    dst: PathBuf,
    shard: PathBuf,
    id: ObjectId,
    /// Writes the bytes, and digests the chunk's bytes after the segment
    /// header, on a thread of its own: the range is verified as it streams
    /// past, never read back.
    out: Option<sydra_objects::fs::WriteBehind<super::RangeDigest>>,
    /// The segment header.
    header: Vec<u8>,
}

impl RangeWriter {
    /// Start the range of chunk `id` in the store whose WAL directory is
    /// `wal_dir`.
    pub fn new(wal_dir: &Path, id: &ObjectId) -> Result<RangeWriter> {
        let ranges = ranges_dir(wal_dir);
        let dst = range_path(&ranges, id);
        let tmp_dir = ranges.join("tmp");
        let shard = dst
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| ranges.clone());
        // A new directory's entry is synced by `place`, not here: a clone
        // makes a shard per range, and syncing `walchunks/` for each held
        // the transfer's reader 3.5 ms a time.
        for d in [&ranges, &tmp_dir, &shard] {
            match sydra_objects::fault::point("walchunks.mkdir").and_then(|()| fs::create_dir(d)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("create directory", d)(e)),
            }
        }
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = tmp_dir.join(format!("range-{}-{n}.tmp", std::process::id()));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(Error::io("create", &tmp))?;
        let digest: sydra_objects::fs::BlockDigest<super::RangeDigest> = Box::new(|d, at, b| {
            let skip = (SEGMENT_HEADER_LEN as u64).saturating_sub(at) as usize;
            d.update(&b[skip.min(b.len())..]);
        });
        let out = sydra_objects::fs::WriteBehind::with_end(
            f,
            super::RangeDigest::default(),
            digest,
            "walchunks.write",
            sydra_objects::fs::AtEnd::Settle,
            RANGE_QUEUE,
        )
        .map_err(Error::io("start writing", &tmp))?;
        Ok(RangeWriter {
            out: Some(out),
            tmp,
            dst,
            shard,
            id: *id,
            header: Vec::with_capacity(SEGMENT_HEADER_LEN),
        })
    }

    /// Append the next bytes.
    pub fn write(&mut self, b: &[u8]) -> Result<()> {
        self.note_header(b);
        let out = self.out()?;
        out.write(b).map_err(Error::io("write", &self.tmp))
    }

    /// Append the next bytes, written where they are (a download's chunk
    /// is not copied).
    pub fn write_shared(&mut self, b: bytes::Bytes) -> Result<()> {
        self.note_header(&b);
        let out = self.out()?;
        out.write_shared(b).map_err(Error::io("write", &self.tmp))
    }

    /// Keep the segment header's bytes among `b`.
    fn note_header(&mut self, b: &[u8]) {
        let to_header = (SEGMENT_HEADER_LEN - self.header.len()).min(b.len());
        self.header.extend_from_slice(&b[..to_header]);
    }

    fn out(&mut self) -> Result<&mut sydra_objects::fs::WriteBehind<super::RangeDigest>> {
        self.out
            .as_mut()
            .ok_or_else(|| Error::io("write", &self.tmp)(io::ErrorKind::Other.into()))
    }

    /// The last byte is written: let the writing thread finish on its
    /// own (write back the file and drop its pages) while the caller
    /// reads the next range; [`RangeWriter::finish`] waits for it.
    pub fn close(&mut self) -> Result<()> {
        let out = self.out()?;
        out.close().map_err(Error::io("write", &self.tmp))
    }

    /// Wait for the writing thread and verify what was written against
    /// `chunk` (the header names its segment; length, CRC32 and BLAKE3
    /// match). The range is not yet durable or visible: [`place`] does
    /// that, for many ranges at once.
    pub fn finish(mut self, chunk: &Chunk) -> Result<VerifiedRange> {
        let out = self
            .out
            .take()
            .ok_or_else(|| Error::io("write", &self.tmp)(io::ErrorKind::Other.into()))?;
        let (file, digest) = out.finish().map_err(Error::io("write", &self.tmp))?;
        check_header(&self.header, chunk)
            .and_then(|_| chunk.matches(&digest))
            .map_err(|r| bad(&self.dst, &self.id, r))?;
        Ok(VerifiedRange {
            id: self.id,
            file: Some(file),
            tmp: std::mem::take(&mut self.tmp),
            dst: std::mem::take(&mut self.dst),
            shard: std::mem::take(&mut self.shard),
        })
    }

    /// The chunk whose range it is.
    pub fn id(&self) -> &ObjectId {
        &self.id
    }
}

impl Drop for RangeWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.out = None;
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A range written and verified, still in `walchunks/tmp/` and not yet
/// synced; dropped unplaced, its temp file is removed.
#[derive(Debug)]
pub struct VerifiedRange {
    id: ObjectId,
    file: Option<fs::File>,
    tmp: PathBuf,
    dst: PathBuf,
    shard: PathBuf,
}

impl VerifiedRange {
    /// The chunk whose range it is.
    pub fn id(&self) -> &ObjectId {
        &self.id
    }
}

impl Drop for VerifiedRange {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Make verified ranges durable and visible: sync every file, rename each
/// into place, then sync each directory they entered, once. Syncing them
/// together, after the last has arrived, lets the disk write one range
/// while the next streams in (each file's writeback was started when its
/// last byte was written); one by one, a clone of 79 ranges spent 0.45 s
/// of its 2.3 s waiting for a sync per range and two per directory.
pub fn place(mut ranges: Vec<VerifiedRange>) -> Result<()> {
    for r in &mut ranges {
        if let Some(f) = r.file.take() {
            sydra_objects::fault::point("walchunks.sync")
                .and_then(|()| f.sync_data())
                .map_err(|e| {
                    Error::Objects(sydra_objects::Error::Sync {
                        path: r.tmp.clone(),
                        source: e,
                    })
                })?;
        }
    }
    let mut shards = std::collections::BTreeSet::new();
    let mut failed = None;
    for r in &mut ranges {
        match sydra_objects::fault::point("walchunks.rename")
            .and_then(|()| fs::rename(&r.tmp, &r.dst))
        {
            Ok(()) => {
                // Renamed: nothing left for drop to remove.
                r.tmp = PathBuf::new();
                shards.insert(std::mem::take(&mut r.shard));
            }
            Err(e) => {
                failed = Some(Error::io("rename into", &r.dst)(e));
                break;
            }
        }
    }
    // Every directory a range entered is synced, also when a rename or a
    // sync failed: a visible range counts as held (a later transfer skips
    // it), so it must not be lost to a power cut.
    if let Err(e) = sync_entries(&shards) {
        failed.get_or_insert(e);
    }
    failed.map_or(Ok(()), Err)
}

/// Make durable the entries that lead to stored ranges a transfer found
/// already here and skipped (`ids`): a transfer that died between a
/// rename and its directory syncs left them visible but perhaps not
/// durable, and a ref is about to depend on them.
pub fn make_held_durable(wal_dir: &Path, ids: &[ObjectId]) -> Result<()> {
    let ranges = ranges_dir(wal_dir);
    let shards: std::collections::BTreeSet<PathBuf> = ids
        .iter()
        .filter_map(|id| range_path(&ranges, id).parent().map(Path::to_path_buf))
        .collect();
    sync_entries(&shards)
}

/// Sync each shard directory, then the shards' own entries
/// (`walchunks/`), then that of `walchunks/` in the data directory: a
/// shard may have been made by this transfer or by one that failed
/// before it synced anything. Every directory is tried; the first error
/// is returned.
fn sync_entries(shards: &std::collections::BTreeSet<PathBuf>) -> Result<()> {
    let up = |dirs: &std::collections::BTreeSet<PathBuf>| {
        dirs.iter()
            .filter_map(|d| d.parent().map(Path::to_path_buf))
            .collect::<std::collections::BTreeSet<_>>()
    };
    let ranges_dirs = up(shards);
    let data_dirs = up(&ranges_dirs);
    let mut failed = None;
    for dir in shards.iter().chain(&ranges_dirs).chain(&data_dirs) {
        if let Err(e) = sync_dir(dir) {
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

fn sync_dir(dir: &Path) -> Result<()> {
    sydra_objects::fs::sync_dir(dir, || sydra_objects::fault::point("walchunks.dir.sync"))
        .map_err(|e| Error::Objects(e.into()))
}

/// Every stored range's chunk id (files named otherwise are skipped).
pub fn list(wal_dir: &Path) -> Result<Vec<(ObjectId, PathBuf)>> {
    let ranges = ranges_dir(wal_dir);
    let mut out = Vec::new();
    let rd = match fs::read_dir(&ranges) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("list", &ranges)(e)),
    };
    for shard in rd {
        let shard = shard.map_err(Error::io("list", &ranges))?.path();
        let Some(prefix) = shard
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        if prefix.len() != 2 || !shard.is_dir() {
            continue;
        }
        for f in fs::read_dir(&shard).map_err(Error::io("list", &shard))? {
            let p = f.map_err(Error::io("list", &shard))?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Ok(id) = format!("{prefix}{name}").parse::<ObjectId>() {
                out.push((id, p));
            }
        }
    }
    out.sort();
    Ok(out)
}
