//! Packs: many objects in one file (docs/FORMAT.md, "Packs").
//!
//! ```text
//! offset  size  field
//!      0     4  magic "SYPK"
//!      4     1  version = 1
//!      5     3  reserved, 0
//!      8     8  object count n, u64 LE
//!     16     …  n entries back to back, each byte for byte a loose object
//!               file (header, stored payload, CRC32)
//!  end-32    32  BLAKE3 of every preceding byte: the pack's name
//! ```
//!
//! A pack is the durable truth; its index (`pack-<hash>.idx`, see
//! [`index`]) is derived and can always be rebuilt from it, because every
//! entry frames and checks itself. A pack is *live* once its index exists
//! under its final name; readers only look at live packs.

pub mod index;
mod scanner;
mod verify;
mod write;

use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use index::IndexView;
pub(crate) use scanner::EntryScanner;
pub use scanner::OnEntry;
pub use verify::{PackVerify, verify_pack};
pub(crate) use write::{
    PackWriter, ensure_dir, fault_dir_sync, publish, remove_files, rename, write_index,
};

use crate::error::{Error, Result};
use crate::map::{Mmap, map_file};
use crate::store::header::{self, HEADER_LEN, Header, MIN_FILE_LEN};
use crate::{Kind, ObjectId};

/// The pack directory inside the object directory.
pub const PACK_DIR: &str = "pack";
/// Pack magic.
pub const MAGIC: [u8; 4] = *b"SYPK";
/// Pack format version.
pub const VERSION: u8 = 1;
/// Length of the pack header.
pub const HEADER: usize = 16;
/// Length of the trailer hash.
pub const TRAILER: usize = 32;

/// The file name of pack `hash` with extension `ext` (`pack` or `idx`).
pub fn file_name(hash: &ObjectId, ext: &str) -> String {
    format!("pack-{}.{ext}", hash.to_hex())
}

/// Parse `pack-<64 hex>.<ext>` into the hash and extension.
pub fn parse_file_name(name: &str) -> Option<(ObjectId, &str)> {
    let rest = name.strip_prefix("pack-")?;
    let (hex, ext) = rest.split_once('.')?;
    if hex.len() != ObjectId::HEX_LEN
        || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    Some((hex.parse().ok()?, ext))
}

/// The pack header: the declared object count.
pub fn parse_header(bytes: &[u8]) -> std::result::Result<u64, String> {
    if bytes.len() < HEADER + TRAILER {
        return Err(format!(
            "pack is {} bytes, shorter than the {}-byte minimum",
            bytes.len(),
            HEADER + TRAILER
        ));
    }
    if bytes[..4] != MAGIC {
        return Err(format!(
            "bad magic {:02x?} (expected \"SYPK\")",
            &bytes[..4]
        ));
    }
    if bytes[4] != VERSION {
        return Err(format!("unsupported pack version {}", bytes[4]));
    }
    if bytes[5..8] != [0; 3] {
        return Err("reserved bytes 5..8 are not zero".into());
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[8..16]);
    Ok(u64::from_le_bytes(n))
}

/// The hash a pack's trailer records.
pub fn trailer(bytes: &[u8]) -> Option<ObjectId> {
    let at = bytes.len().checked_sub(TRAILER)?;
    ObjectId::from_slice(&bytes[at..])
}

/// One entry of a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The id its header records.
    pub id: ObjectId,
    /// Its kind.
    pub kind: Kind,
    /// Offset of its first byte in the pack.
    pub offset: u64,
    /// Its length (a whole loose object file).
    pub len: u64,
}

/// The entry at `offset` from its header alone (magic, version, kind,
/// lengths, bounds; not the CRC). Returns the entry and the offset just
/// past it.
pub fn entry_header(bytes: &[u8], offset: u64) -> std::result::Result<(Entry, u64), String> {
    let body = bytes.len().saturating_sub(TRAILER);
    let start = usize::try_from(offset)
        .ok()
        .filter(|&s| s >= HEADER && s <= body);
    let Some(start) = start else {
        return Err(format!("offset {offset} is outside the pack's entries"));
    };
    if body - start < MIN_FILE_LEN {
        return Err(format!(
            "entry at offset {offset} is cut short by the end of the pack"
        ));
    }
    let mut h = [0u8; HEADER_LEN];
    h.copy_from_slice(&bytes[start..start + HEADER_LEN]);
    let hd = Header::decode(&h).map_err(|r| format!("entry at offset {offset}: {r}"))?;
    let len = hd
        .file_len()
        .filter(|&l| l <= (body - start) as u64)
        .ok_or_else(|| {
            format!(
                "entry at offset {offset} ({}) runs past the end of the pack",
                hd.id
            )
        })?;
    Ok((
        Entry {
            id: hd.id,
            kind: hd.kind,
            offset,
            len,
        },
        offset + len,
    ))
}

/// Read the entry at `offset`: header, bounds, CRC (BLAKE3 too with
/// `verify_hash`), and, when given, that it is `expected`. Returns the
/// entry and its payload's byte range in `bytes`.
pub fn entry_at(
    bytes: &[u8],
    offset: u64,
    expected: Option<&ObjectId>,
    verify_hash: bool,
) -> std::result::Result<(Entry, Range<usize>), String> {
    let (e, _) = entry_header(bytes, offset)?;
    let start = offset as usize;
    let len = e.len;
    let file = &bytes[start..start + len as usize];
    let (hd, range) = header::parse_file(file, expected)
        .map_err(|r| format!("entry at offset {offset} ({}): {r}", e.id))?;
    if verify_hash {
        let actual = ObjectId::compute(hd.kind, &file[range.clone()]);
        if actual != hd.id {
            return Err(format!(
                "entry at offset {offset} ({}) hashes to {actual}",
                hd.id
            ));
        }
    }
    Ok((
        Entry {
            id: hd.id,
            kind: hd.kind,
            offset,
            len,
        },
        start + range.start..start + range.end,
    ))
}

/// Walk a whole pack in memory: the header, every entry (framing, CRC,
/// BLAKE3 with `verify_hash`), that the entries fill it exactly, that the
/// count matches, that no id repeats (with `f` deciding), and the trailer.
/// Returns the trailer hash. Errors name the offset; memory does not depend
/// on the declared count.
pub fn scan(
    bytes: &[u8],
    verify_hash: bool,
    f: impl FnMut(Entry) -> std::result::Result<(), String>,
) -> std::result::Result<ObjectId, String> {
    scan_entries(bytes, verify_hash, f)?;
    let body = bytes.len() - TRAILER;
    let actual = blake3::hash(&bytes[..body]);
    if actual.as_bytes()[..] != bytes[body..] {
        return Err("pack trailer does not match its content".into());
    }
    Ok(trailer(bytes).unwrap_or_default())
}

/// [`scan`] as a receiver runs it: the pack fed to the streaming scanner
/// in pieces of `step` bytes, then its trailer checked. Accepts exactly
/// what `scan` with `verify_hash` accepts, with the same entries (for
/// tests and fuzzing).
pub fn scan_streamed(bytes: &[u8], step: usize) -> std::result::Result<Vec<Entry>, String> {
    parse_header(bytes)?;
    let body = bytes.len() - TRAILER;
    let mut s = EntryScanner::new(bytes.len() as u64);
    for piece in bytes[..body].chunks(step.max(1)) {
        s.feed(piece, &mut |_, _, _| Ok(()))?;
    }
    let (entries, _) = s.finish()?;
    if blake3::hash(&bytes[..body]).as_bytes()[..] != bytes[body..] {
        return Err("pack trailer does not match its content".into());
    }
    Ok(entries)
}

/// [`scan`] without the trailer: for a pack whose hash was computed as it
/// was written.
pub fn scan_entries(
    bytes: &[u8],
    verify_hash: bool,
    mut f: impl FnMut(Entry) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let declared = parse_header(bytes)?;
    let body = bytes.len() - TRAILER;
    let mut at = HEADER as u64;
    let mut seen = 0u64;
    while (at as usize) < body {
        let (e, _) = entry_at(bytes, at, None, verify_hash)?;
        seen += 1;
        if seen > declared {
            return Err(format!(
                "entry at offset {at} is beyond the {declared} the header declares"
            ));
        }
        f(e)?;
        at += e.len;
    }
    if seen != declared {
        return Err(format!(
            "header declares {declared} entries, the pack holds {seen}"
        ));
    }
    Ok(())
}

/// A live pack: the pack and its index, both mapped.
#[derive(Debug)]
pub struct Pack {
    hash: ObjectId,
    path: PathBuf,
    data: Arc<Mmap>,
    idx: Mmap,
    n: usize,
    /// Seconds since the epoch of this process's last freshen.
    freshened: AtomicU64,
}

fn map_regular(path: &Path) -> Result<Mmap> {
    let file = crate::fs::open_regular(path).map_err(Error::io("open", path))?;
    crate::fault::point("objects.map")
        .and_then(|()| map_file(&file))
        .map_err(Error::io("map", path))
}

impl Pack {
    /// Open the live pack `hash` in `dir`: map both files and check the
    /// index's structure and that it belongs to this pack.
    pub fn open(dir: &Path, hash: ObjectId) -> Result<Pack> {
        let path = dir.join(file_name(&hash, "pack"));
        let idx_path = dir.join(file_name(&hash, "idx"));
        Pack::open_files(&path, &idx_path, path.clone(), hash)
    }

    /// [`Pack::open`] of the files at `path` and `idx_path`, for the pack
    /// that will live at `live_path` (a publisher maps its temp files
    /// before renaming them in: a repack in another thread may merge the
    /// pack and unlink it the moment it is live, and the mappings stay
    /// valid).
    pub(crate) fn open_files(
        path: &Path,
        idx_path: &Path,
        live_path: PathBuf,
        hash: ObjectId,
    ) -> Result<Pack> {
        let idx = map_regular(idx_path)?;
        let data = map_regular(path)?;
        let bad = |p: &Path, reason: String| Error::BadPack {
            path: p.to_path_buf(),
            reason,
        };
        let view = IndexView::parse(&idx).map_err(|r| bad(idx_path, r))?;
        if view.pack_hash() != hash {
            return Err(bad(
                idx_path,
                format!("index belongs to pack {}", view.pack_hash()),
            ));
        }
        let declared = parse_header(&data).map_err(|r| bad(path, r))?;
        if declared != view.len() as u64 {
            return Err(bad(
                path,
                format!(
                    "header declares {declared} entries, its index {}",
                    view.len()
                ),
            ));
        }
        if trailer(&data) != Some(hash) {
            return Err(bad(path, "trailer does not match the file name".into()));
        }
        let n = view.len();
        Ok(Pack {
            hash,
            path: live_path,
            data: Arc::new(data),
            idx,
            n,
            freshened: AtomicU64::new(0),
        })
    }

    /// The pack's hash (its name).
    pub fn hash(&self) -> ObjectId {
        self.hash
    }

    /// The `.pack` file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `.idx` file.
    pub fn idx_path(&self) -> PathBuf {
        self.path.with_extension("idx")
    }

    /// Objects in it.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether it holds no object.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Bytes of the pack file.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Bytes of the index file.
    pub fn idx_bytes(&self) -> &[u8] {
        &self.idx
    }

    pub(crate) fn mapped(&self) -> &Arc<Mmap> {
        &self.data
    }

    /// The index.
    pub fn index(&self) -> IndexView<'_> {
        // Parsed at open: the map cannot change (packs and indexes are
        // never modified in place).
        IndexView::checked(&self.idx, self.n)
    }

    /// The entry offset of `id`, if the index lists it.
    pub fn find(&self, id: &ObjectId) -> Option<u64> {
        let v = self.index();
        v.find(id).map(|i| v.offset(i))
    }

    /// Read the entry of `id` at `offset` (see [`entry_at`]).
    pub fn entry(
        &self,
        id: &ObjectId,
        offset: u64,
        verify_hash: bool,
    ) -> Result<(Entry, Range<usize>)> {
        entry_at(&self.data, offset, Some(id), verify_hash).map_err(|reason| Error::Corrupt {
            id: *id,
            path: self.path.clone(),
            reason,
        })
    }

    /// Mark the pack as used now (its mtime), so a GC in another process
    /// gives its unreachable objects a new grace period. At most once a
    /// second per pack and process.
    pub fn freshen(&self) -> Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.freshened.swap(now, Ordering::Relaxed) == now {
            return Ok(());
        }
        let file = crate::fs::open_regular(&self.path).map_err(Error::io("open", &self.path))?;
        crate::fault::point("objects.freshen")
            .and_then(|()| file.set_modified(SystemTime::now()))
            .map_err(Error::io("freshen", &self.path))
    }

    /// The mtime of the pack file.
    pub fn modified(&self) -> io::Result<SystemTime> {
        fs::metadata(&self.path)?.modified()
    }
}
