//! The loose object store: one file per object under
//! `objects/<2 hex>/<62 hex>`, published durably and verified on read.
//!
//! Guarantees:
//! - A file under its final name is complete: objects are written to
//!   `objects/tmp/` and renamed into place, so a crash leaves either nothing
//!   or a whole object (plus, at worst, a stray temp file).
//! - With [`Durability::Each`] or [`Durability::Batch`], an object is durable
//!   before it is visible under its final name.
//! - Every read checks magic, version, lengths, the id in the header against
//!   the path, and the CRC; BLAKE3 is recomputed when asked.

mod batch;
mod fallback;
pub mod header;
mod packs;
mod pins;
mod read;
mod reader;
mod sweep;
mod write;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::{Mutex, RwLock};

use crate::pack::Pack;

pub use batch::{Batch, BatchStats};
pub use fallback::Fallback;
pub use packs::{
    IngestCheck, PACK_BATCH_MIN, PackIds, PackRepair, PackSink, PackStats, PackSweep,
    RepackOptions, RepackReport, StagedPack,
};
pub use pins::{GcGuard, Pinned};
pub use read::{Data, Iter, Object, Stat, id_from_path};
pub use reader::{Payload, Reader};
pub use sweep::{ShardSweep, SweepCheck, SweepOutcome};
pub(crate) use write::TempFile;

use crate::ObjectId;
use crate::error::{Error, Result};

/// Objects at least this large are read through mmap instead of into a
/// buffer.
pub const MMAP_THRESHOLD: u64 = 64 * 1024;

/// How much durability a write buys before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// No fsync. The object survives a process crash (the kernel has it) but
    /// may be lost or absent after a power cut. Never torn: it is still
    /// renamed into place only once complete.
    None,
    /// Objects of a batch are made durable together: a batch of two or
    /// more becomes one pack, published with three syncs (the pack, its
    /// index, the pack directory) before anything is visible. A single
    /// `put`, or a batch of one, behaves like [`Durability::Each`].
    #[default]
    Batch,
    /// Every object is fsynced, renamed, and its shard directory fsynced
    /// before the call returns.
    Each,
}

/// Store settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Recompute BLAKE3 on every read (always done by fsck).
    pub verify_hash_on_read: bool,
    /// Durability of [`Store::put`] and [`Store::put_reader`].
    pub durability: Durability,
    /// Never merge packs after a batch publishes one (the default merges
    /// the smallest packs geometrically once there are more than
    /// [`AUTO_REPACK_PACKS`]); packs are then merged only by a repack or
    /// a GC.
    pub manual_repack: bool,
}

/// Once a batch leaves more live packs than this, the smallest are merged
/// (see [`Store::repack`]).
pub const AUTO_REPACK_PACKS: usize = 12;

/// A handle on an object directory. Cheap to clone; all clones share pins.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    tmp: PathBuf,
    options: Options,
    pins: pins::Pins,
    tmp_counter: AtomicU64,
    pack_dir: PathBuf,
    /// The hash of the pack the last lookup found its object in (its first
    /// 8 bytes): tried first, as consecutive lookups often hit the same
    /// pack (a stat then a read, a walk through one commit's objects). A
    /// hint only: any value is safe.
    last_pack: AtomicU64,
    /// The live packs, largest first; replaced whole (readers clone the Arc).
    packs: RwLock<Arc<Vec<Arc<Pack>>>>,
    /// The mtime of `pack/` when it was last listed, and when that was.
    pack_scan: Mutex<Option<(Option<std::time::SystemTime>, std::time::SystemTime)>>,
    /// Where misses go (a read replica's remote), if anywhere.
    fallback: std::sync::OnceLock<Arc<dyn Fallback>>,
}

/// Name of the temp directory inside the object directory.
pub const TMP_DIR: &str = "tmp";

impl Store {
    /// Create the object directory (and `tmp/`) if missing, durably, and
    /// open it.
    pub fn create(dir: impl AsRef<Path>, options: Options) -> Result<Store> {
        let dir = dir.as_ref();
        let tmp = dir.join(TMP_DIR);
        let created = !dir.exists();
        crate::fault::point("objects.create.mkdir")
            .and_then(|()| fs::create_dir_all(&tmp))
            .map_err(Error::io("create directory", &tmp))?;
        crate::fs::sync_dir(dir, write::dir_sync_fault)?;
        if created && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::fs::sync_dir(parent, write::dir_sync_fault)?;
        }
        Store::open(dir, options)
    }

    /// Open an existing object directory.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(Error::NotAStore(dir));
        }
        let tmp = dir.join(TMP_DIR);
        if !tmp.is_dir() {
            fs::create_dir(&tmp).map_err(Error::io("create directory", &tmp))?;
        }
        let pack_dir = dir.join(crate::pack::PACK_DIR);
        let store = Store {
            inner: Arc::new(Inner {
                dir,
                tmp,
                options,
                pins: pins::Pins::default(),
                tmp_counter: AtomicU64::new(0),
                last_pack: AtomicU64::new(0),
                pack_dir,
                packs: RwLock::new(Arc::new(Vec::new())),
                pack_scan: Mutex::new(None),
                fallback: std::sync::OnceLock::new(),
            }),
        };
        store.rescan_packs()?;
        Ok(store)
    }

    /// The pack directory (`objects/pack/`).
    pub fn pack_dir(&self) -> &Path {
        &self.inner.pack_dir
    }

    /// The object directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The temp directory.
    pub fn tmp_dir(&self) -> &Path {
        &self.inner.tmp
    }

    /// Settings in force.
    pub fn options(&self) -> Options {
        self.inner.options
    }

    /// Where the object with this id lives (whether or not it exists).
    pub fn path_of(&self, id: &ObjectId) -> PathBuf {
        let hex = id.to_hex();
        self.inner.dir.join(&hex[..2]).join(&hex[2..])
    }

    fn shard_dir(&self, id: &ObjectId) -> PathBuf {
        self.inner.dir.join(&id.to_hex()[..2])
    }

    /// Start a batch: objects written through it become durable together.
    pub fn batch(&self, durability: Durability) -> Batch {
        Batch::new(self.clone(), durability)
    }
}
