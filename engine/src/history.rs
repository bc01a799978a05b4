//! The history index: a derived, disposable file per ref listing its
//! first-parent chain (timestamp, commit id), memory-mapped and
//! binary-searched, so `REF@{TIME}` costs O(log R) instead of a walk.
//!
//! File `<dir>/index/history/<refname>` (e.g. `index/history/refs/heads/main`):
//! ```text
//! offset size field
//!      0    4 magic "SYHI"
//!      4    1 version = 1
//!      5    1 flags: bit 0 = timestamps non-decreasing from root to tip
//!      6    2 reserved, 0
//!      8    8 entry count n, u64 LE
//!     16   32 tip commit id (the last entry)
//!     48    4 CRC32 of all entry bytes, u32 LE
//!     52    8 reserved, 0
//!     60    4 CRC32 of header bytes [0, 60), u32 LE
//!     64  40n entries, root first: i64 LE timestamp (ns), 32-byte commit id
//! ```
//!
//! Trust: the index is never trusted over the objects. A missing, short or
//! header-corrupt file is rebuilt by walking the chain. A stale one (the ref
//! moved on) is extended by walking from the new tip back to the indexed tip,
//! or rebuilt when the indexed tip is no longer on the chain. Every answer is
//! checked against the commit objects (its timestamp, and the next entry's
//! parent link and timestamp); on a mismatch the index is rebuilt from the
//! objects and the lookup repeated. The file is written without fsync: a
//! crash can only make it stale or corrupt, which the checks above catch.
//!
//! Sharing: several threads and processes may read, extend and rebuild the
//! same index at once, and a lookup may hold a file mapped for as long as
//! its ref does not move. So a published index file is immutable: every
//! write (a rebuild or an extension) goes to a new temp file in
//! `<dir>/index/tmp/`, created with `O_EXCL` under a name unique to the
//! writer, and is renamed over the index. No temp file is ever at the
//! live index path of any ref (those are all under `index/history/`), an
//! existing mapping keeps its inode, and whoever opens the path gets one
//! complete file, the old or the new. A writer answers from the file it
//! wrote, never from whatever is at the path after its rename.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sydra_objects::ObjectId;
use sydra_objects::map::map_file;
use sydra_refs::RefName;

use crate::error::{Error, Result};
use crate::repo::Repository;

const MAGIC: [u8; 4] = *b"SYHI";
const VERSION: u8 = 1;
const FLAG_MONOTONIC: u8 = 1;
const HEADER_LEN: usize = 64;
const ENTRY_LEN: usize = 8 + ObjectId::LEN;

/// One point of a first-parent chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Commit timestamp, ns.
    pub timestamp: i64,
    /// The commit.
    pub id: ObjectId,
}

struct Header {
    monotonic: bool,
    count: u64,
    tip: ObjectId,
    entries_crc: u32,
}

fn encode_header(h: &Header) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..4].copy_from_slice(&MAGIC);
    b[4] = VERSION;
    b[5] = if h.monotonic { FLAG_MONOTONIC } else { 0 };
    b[8..16].copy_from_slice(&h.count.to_le_bytes());
    b[16..48].copy_from_slice(h.tip.as_bytes());
    b[48..52].copy_from_slice(&h.entries_crc.to_le_bytes());
    let crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode_header(b: &[u8], file_len: u64) -> Option<Header> {
    let b = b.get(..HEADER_LEN)?;
    if b[0..4] != MAGIC || b[4] != VERSION || b[5] & !FLAG_MONOTONIC != 0 {
        return None;
    }
    if crc32fast::hash(&b[..60]).to_le_bytes() != b[60..64] {
        return None;
    }
    let count = u64::from_le_bytes(b[8..16].try_into().ok()?);
    if count
        .checked_mul(ENTRY_LEN as u64)?
        .checked_add(HEADER_LEN as u64)?
        != file_len
        || count == 0
    {
        return None;
    }
    Some(Header {
        monotonic: b[5] & FLAG_MONOTONIC != 0,
        count,
        tip: ObjectId::from_slice(&b[16..48])?,
        entries_crc: u32::from_le_bytes(b[48..52].try_into().ok()?),
    })
}

fn encode_entries(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        out.extend_from_slice(&e.timestamp.to_le_bytes());
        out.extend_from_slice(e.id.as_bytes());
    }
    out
}

fn entry_at(map: &[u8], i: u64) -> Option<Entry> {
    let off = HEADER_LEN + usize::try_from(i).ok()? * ENTRY_LEN;
    let b = map.get(off..off + ENTRY_LEN)?;
    Some(Entry {
        timestamp: i64::from_le_bytes(b[..8].try_into().ok()?),
        id: ObjectId::from_slice(&b[8..])?,
    })
}

fn is_monotonic(entries: &[Entry]) -> bool {
    entries.windows(2).all(|w| w[0].timestamp <= w[1].timestamp)
}

/// The index file of `name`.
pub fn index_path(repo: &Repository, name: &RefName) -> PathBuf {
    repo.layout()
        .root()
        .join("index/history")
        .join(name.as_str())
}

/// Where index files are written before they are renamed into place:
/// outside `index/history/`, so no temp file is the index of any ref.
pub fn temp_dir(repo: &Repository) -> PathBuf {
    repo.layout().root().join("index/tmp")
}

/// Tells apart the temp files of one process (the pid tells processes
/// apart; `O_EXCL` catches a leftover of a dead process with the same pid).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Walk the first-parent chain from `tip` back, stopping after `stop` (not
/// included) or at the root. Returns the entries newest first and whether
/// `stop` was reached.
fn walk_back(
    repo: &Repository,
    tip: ObjectId,
    stop: Option<ObjectId>,
) -> Result<(Vec<Entry>, bool)> {
    let horizon = repo.history_horizon()?;
    let mut out = Vec::new();
    let mut cur = Some(tip);
    while let Some(id) = cur {
        if Some(id) == stop {
            return Ok((out, true));
        }
        // Verified: a forged self-parent would grow `out` without end
        // (see `crate::revision`).
        let obj = repo.objects().get_verified(&id)?;
        let c = obj.commit()?;
        out.push(Entry {
            timestamp: c.timestamp,
            id,
        });
        // History before a retention boundary is gone: the chain ends here.
        cur = c.first_parent().filter(|_| !horizon.is_boundary(&id));
    }
    Ok((out, false))
}

/// A usable index for `name` at its current tip: brought up to date or
/// rebuilt as needed. `None` when the ref does not exist.
pub struct Index {
    map: Option<sydra_objects::map::Mmap>,
    header: Header,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("count", &self.header.count)
            .field("tip", &self.header.tip)
            .finish()
    }
}

impl Index {
    /// Number of commits on the chain.
    pub fn len(&self) -> u64 {
        self.header.count
    }

    /// Whether the chain is empty (never: an index has at least the tip).
    pub fn is_empty(&self) -> bool {
        self.header.count == 0
    }

    /// Entry `i` (0 = root).
    pub fn get(&self, i: u64) -> Option<Entry> {
        entry_at(self.map.as_deref()?, i)
    }

    /// Position of the newest entry with timestamp <= `t`.
    pub fn position_at(&self, t: i64) -> Option<u64> {
        let n = self.header.count;
        if self.header.monotonic {
            // First index whose timestamp is > t; the answer is just before it.
            let (mut lo, mut hi) = (0u64, n);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.get(mid)?.timestamp <= t {
                    lo = mid + 1
                } else {
                    hi = mid
                }
            }
            lo.checked_sub(1)
        } else {
            (0..n)
                .rev()
                .find(|&i| self.get(i).is_some_and(|e| e.timestamp <= t))
        }
    }
}

type Cache = parking_lot::Mutex<std::collections::HashMap<PathBuf, Arc<Index>>>;

/// Mapped indexes of this process, by file. An entry is used only while its
/// tip is still the ref's value; no writer ever changes the bytes of a
/// published file (every write is a new file renamed into place).
fn cache() -> &'static Cache {
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Most indexes kept mapped at once.
const CACHE_ENTRIES: usize = 64;

fn forget(path: &Path) {
    cache().lock().remove(path);
}

/// Drop every index this process has mapped, so the next lookup reads the
/// files again (for tests and tools that rewrite or damage index files).
pub fn clear_cache() {
    cache().lock().clear();
}

/// Open the index of `name`, extending or rebuilding it from the objects.
pub fn open(repo: &Repository, name: &RefName) -> Result<Option<Arc<Index>>> {
    let Some(tip) = repo.refs().resolve(name)? else {
        return Ok(None);
    };
    let path = index_path(repo, name);
    if let Some(hit) = cache().lock().get(&path).filter(|i| i.header.tip == tip) {
        return Ok(Some(Arc::clone(hit)));
    }
    let idx = Arc::new(open_file(repo, &path, tip)?);
    remember(path, Arc::clone(&idx));
    Ok(Some(idx))
}

fn remember(path: PathBuf, idx: Arc<Index>) {
    let mut c = cache().lock();
    if c.len() >= CACHE_ENTRIES {
        c.clear();
    }
    c.insert(path, idx);
}

fn open_file(repo: &Repository, path: &Path, tip: ObjectId) -> Result<Index> {
    if let Some(existing) = read(path)? {
        if existing.header.tip == tip {
            return Ok(existing);
        }
        let (newer, found) = walk_back(repo, tip, Some(existing.header.tip))?;
        if found {
            return extend(repo, path, &existing, newer);
        }
        let mut all = newer;
        all.reverse();
        return write_new(repo, path, &all);
    }
    rebuild(repo, path, tip)
}

fn rebuild(repo: &Repository, path: &Path, tip: ObjectId) -> Result<Index> {
    let (mut all, _) = walk_back(repo, tip, None)?;
    all.reverse();
    write_new(repo, path, &all)
}

fn read(path: &Path) -> Result<Option<Index>> {
    let file = match sydra_objects::fs::open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path)(e)),
    };
    map_index(&file, path)
}

/// Map an open index file; `None` when its header is not valid for its
/// length (missing, torn or damaged: rebuilt by the caller).
fn map_index(file: &File, path: &Path) -> Result<Option<Index>> {
    let len = file.metadata().map_err(Error::io("stat", path))?.len();
    let map = sydra_objects::fault::point("history.map")
        .and_then(|()| map_file(file))
        .map_err(Error::io("map", path))?;
    Ok(decode_header(&map, len).map(|header| Index {
        map: Some(map),
        header,
    }))
}

fn write_new(repo: &Repository, path: &Path, entries: &[Entry]) -> Result<Index> {
    let Some(last) = entries.last() else {
        return Err(Error::revision(
            &path.display().to_string(),
            "empty history",
        ));
    };
    let body = encode_entries(entries);
    let header = Header {
        monotonic: is_monotonic(entries),
        count: entries.len() as u64,
        tip: last.id,
        entries_crc: crc32fast::hash(&body),
    };
    publish(repo, path, &header, &[&body])
}

/// A new file holding `old`'s entries followed by `newer` (newest first),
/// whose stop was `old`'s tip. The published `old` file is left as it is:
/// it may be mapped elsewhere.
fn extend(repo: &Repository, path: &Path, old: &Index, mut newer: Vec<Entry>) -> Result<Index> {
    newer.reverse();
    let last_old = old.get(old.header.count - 1);
    let mut chain = Vec::with_capacity(newer.len() + 1);
    chain.extend(last_old);
    chain.extend_from_slice(&newer);
    let old_entries = old
        .map
        .as_deref()
        .and_then(|m| m.get(HEADER_LEN..))
        .unwrap_or_default();
    let body = encode_entries(&newer);
    let mut crc =
        crc32fast::Hasher::new_with_initial_len(old.header.entries_crc, old_entries.len() as u64);
    let mut add = crc32fast::Hasher::new();
    add.update(&body);
    crc.combine(&add);
    let header = Header {
        monotonic: old.header.monotonic && is_monotonic(&chain),
        count: old.header.count + newer.len() as u64,
        tip: newer.last().map_or(old.header.tip, |e| e.id),
        entries_crc: crc.finalize(),
    };
    publish(repo, path, &header, &[old_entries, &body])
}

/// A temp file of this writer's own in [`temp_dir`], removed on drop
/// unless renamed into place.
struct TempIndex {
    path: PathBuf,
    published: bool,
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        if !self.published {
            // Best effort on an error path: a leftover temp file is never
            // read as an index, and `index/` may be deleted whole.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Write `header` and `parts` to a new temp file, map it, and rename it
/// over `path`. Returns the mapping of the file written here: after the
/// rename, `path` may already hold another writer's file.
fn publish(repo: &Repository, path: &Path, header: &Header, parts: &[&[u8]]) -> Result<Index> {
    let dir = temp_dir(repo);
    fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(Error::io("create directory", parent))?;
    }
    let pid = std::process::id();
    let (mut file, mut tmp) = loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("history-{pid}-{n}.tmp"));
        // Read access too: the file is mapped after writing.
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => {
                break (
                    f,
                    TempIndex {
                        path: tmp,
                        published: false,
                    },
                );
            }
            // Left by a dead process that had our pid.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create", &tmp)(e)),
        }
    };
    sydra_objects::fault::point("history.write")
        .and_then(|()| file.write_all(&encode_header(header)))
        .and_then(|()| parts.iter().try_for_each(|p| file.write_all(p)))
        .map_err(Error::io("write", &tmp.path))?;
    let index = map_index(&file, &tmp.path)?.ok_or_else(|| {
        Error::revision(
            &tmp.path.display().to_string(),
            "history index unreadable after writing",
        )
    })?;
    drop(file);
    // A crash before this rename leaves only the temp file; the index at
    // `path` is still the old one, complete.
    sydra_objects::fault::point("history.rename")
        .and_then(|()| fs::rename(&tmp.path, path))
        .map_err(Error::io("rename", path))?;
    tmp.published = true;
    Ok(index)
}

/// Check an answer against the objects: the commit has the indexed
/// timestamp, and the next entry (if any) is its child with a later time.
fn verify(repo: &Repository, idx: &Index, pos: u64, t: i64) -> Result<bool> {
    let Some(e) = idx.get(pos) else {
        return Ok(false);
    };
    let obj = match repo.objects().get(&e.id) {
        Ok(o) => o,
        Err(err) if err.is_not_found() => return Ok(false),
        Err(err) => return Err(err.into()),
    };
    if obj.commit()?.timestamp != e.timestamp || e.timestamp > t {
        return Ok(false);
    }
    if let Some(next) = idx.get(pos + 1) {
        let nobj = match repo.objects().get(&next.id) {
            Ok(o) => o,
            Err(err) if err.is_not_found() => return Ok(false),
            Err(err) => return Err(err.into()),
        };
        let nc = nobj.commit()?;
        if nc.first_parent() != Some(e.id)
            || nc.timestamp != next.timestamp
            || (idx.header.monotonic && nc.timestamp <= t)
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The answer `idx` gives for `t`, checked against the objects: `None`
/// when the index disagrees with them.
fn answer(repo: &Repository, idx: &Index, t: i64) -> Result<Option<Option<ObjectId>>> {
    let Some(pos) = idx.position_at(t) else {
        // Before the first commit: check the root really is later.
        let root_ok = match idx.get(0) {
            Some(root) => repo.objects().get(&root.id)?.commit()?.timestamp > t,
            None => false,
        };
        return Ok(root_ok.then_some(None));
    };
    if verify(repo, idx, pos, t)? {
        return Ok(Some(idx.get(pos).map(|e| e.id)));
    }
    Ok(None)
}

/// The newest commit on `name`'s first-parent chain with timestamp <= `t`.
pub fn at(repo: &Repository, name: &RefName, t: i64) -> Result<Option<ObjectId>> {
    let Some(idx) = open(repo, name)? else {
        return Ok(None);
    };
    if let Some(found) = answer(repo, &idx, t)? {
        return Ok(found);
    }
    // The index disagrees with the objects: rebuild it from them and answer
    // from the file built here (not from the path, which a concurrent
    // writer may have replaced meanwhile).
    let path = index_path(repo, name);
    let tip = idx.header.tip;
    drop(idx);
    forget(&path);
    let rebuilt = Arc::new(rebuild(repo, &path, tip)?);
    if let Some(found) = answer(repo, &rebuilt, t)? {
        remember(path, rebuilt);
        return Ok(found);
    }
    Err(Error::revision(
        name.as_str(),
        "the history index disagrees with the objects even after a rebuild",
    ))
}

/// Brute force: walk the first-parent chain from `tip` (for commits that
/// are not ref tips, and as the reference the tests compare against).
pub fn at_by_walk(repo: &Repository, tip: ObjectId, t: i64) -> Result<Option<ObjectId>> {
    let horizon = repo.history_horizon()?;
    let mut cur = Some(tip);
    let mut best = None;
    while let Some(id) = cur {
        // Verified, as in `walk_back`.
        let obj = repo.objects().get_verified(&id)?;
        let c = obj.commit()?;
        if c.timestamp <= t {
            // Newest (closest to the tip) wins: the first one found.
            best = Some(id);
            break;
        }
        cur = c.first_parent().filter(|_| !horizon.is_boundary(&id));
    }
    Ok(best)
}
