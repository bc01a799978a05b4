//! Deleting unreachable objects, one shard directory at a time.
//!
//! A [`ShardSweep`] holds the shard directory open and works relative to
//! that descriptor (`openat`, `unlinkat`), so a candidate costs one path
//! lookup of a single component per system call instead of a walk from the
//! root, and the `fstat` of the open file gives its length and mtime. Per
//! candidate, in this order:
//!
//! 1. open without following a symlink, `fstat` (length, mtime);
//! 2. protected (pinned, written or freshened since the GC began in this
//!    process): kept; modified at or after the cutoff (the grace period):
//!    kept;
//! 3. read in full and verified (framing, lengths, header id against the
//!    name, CRC32; BLAKE3 too when asked): a file that fails is kept and
//!    reported — it is evidence, and fsck names it;
//! 4. under the shard lock that writers take for their dedup check,
//!    protection is checked again and the name unlinked, so an in-process
//!    writer either finds the file gone (and writes it again) or the sweep
//!    sees its registration.
//!
//! Another process's writer is protected by the grace period alone, as in
//! git: its freshen (a new mtime) is seen unless it lands between step 1
//! and the unlink, a window of one read of the file.

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::SystemTime;

use rustix::fs::{AtFlags, Mode};

use super::GcGuard;
use super::read::{NOT_A_FILE, SYMLINK};
use crate::ObjectId;
use crate::error::{Error, Result};

/// How a sweep judges a candidate.
#[derive(Debug, Clone, Copy)]
pub struct SweepCheck {
    /// Files modified at or after this are kept.
    pub cutoff: SystemTime,
    /// Recompute BLAKE3 as well as the CRC before deleting.
    pub verify_hash: bool,
    /// Judge, but unlink nothing.
    pub dry_run: bool,
}

/// What the sweep did with one candidate. Lengths are the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepOutcome {
    /// Unlinked.
    Deleted(u64),
    /// Would have been unlinked (dry run).
    WouldDelete(u64),
    /// Pinned, or written or reused since the GC began: kept.
    Protected(u64),
    /// Modified within the grace period: kept.
    Recent(u64),
    /// Failed verification: kept as evidence.
    Corrupt {
        /// The file's length.
        len: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Not there (already gone).
    Missing,
}

/// One shard directory (`objects/<2 hex>/`) opened for sweeping.
#[derive(Debug)]
pub struct ShardSweep<'g> {
    guard: &'g GcGuard,
    dir: OwnedFd,
    path: PathBuf,
    shard: [u8; 2],
    buf: Vec<u8>,
}

impl GcGuard {
    /// Open the shard directory named `shard` (two lowercase hex digits) for
    /// sweeping; `None` if it does not exist.
    pub fn open_shard(&self, shard: &str) -> Result<Option<ShardSweep<'_>>> {
        let path = self.store.dir().join(shard);
        let Ok(shard_bytes) = <[u8; 2]>::try_from(shard.as_bytes()) else {
            return Err(Error::io("open shard directory", path)(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a two-digit shard name",
            )));
        };
        Ok(self.store.open_shard_dir(shard)?.map(|dir| ShardSweep {
            guard: self,
            dir,
            path,
            shard: shard_bytes,
            buf: Vec::new(),
        }))
    }

    /// Judge one candidate and, unless it is kept, delete it. Opens its
    /// shard for this one call; a sweep of many uses [`GcGuard::open_shard`].
    pub fn sweep_one(&self, id: &ObjectId, check: &SweepCheck) -> Result<SweepOutcome> {
        let hex = id.hex_bytes();
        let shard = std::str::from_utf8(&hex[..2]).unwrap_or("00");
        match self.open_shard(shard)? {
            Some(mut s) => s.sweep(id, check),
            None => Ok(SweepOutcome::Missing),
        }
    }
}

impl ShardSweep<'_> {
    /// The shard directory.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Judge `id` (which must belong to this shard) and delete it unless it
    /// is kept. See the module documentation for the order of the checks.
    /// Errors name the object's file.
    pub fn sweep(&mut self, id: &ObjectId, check: &SweepCheck) -> Result<SweepOutcome> {
        let store = &self.guard.store;
        let hex = id.hex_bytes();
        if hex[..2] != self.shard {
            return Err(Error::io("sweep", store.path_of(id))(io::Error::new(
                io::ErrorKind::InvalidInput,
                "object id does not belong to this shard directory",
            )));
        }
        let name = &hex[2..];
        let fd = match rustix::fs::openat(&self.dir, name, crate::fs::READ_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(SweepOutcome::Missing),
            Err(rustix::io::Errno::LOOP) => {
                return Ok(SweepOutcome::Corrupt {
                    len: 0,
                    reason: SYMLINK.into(),
                });
            }
            Err(e) => return Err(Error::io("open", store.path_of(id))(e.into())),
        };
        let file = match crate::fs::into_regular(fd) {
            Ok(f) => f,
            Err(e) if crate::fs::is_not_regular_error(&e) => {
                return Ok(SweepOutcome::Corrupt {
                    len: 0,
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(Error::io("stat", store.path_of(id))(e)),
        };
        let meta = file
            .metadata()
            .map_err(Error::io("stat", store.path_of(id)))?;
        let len = meta.len();
        if !meta.is_file() {
            return Ok(SweepOutcome::Corrupt {
                len,
                reason: NOT_A_FILE.into(),
            });
        }
        let modified = meta
            .modified()
            .map_err(Error::io("read mtime of", store.path_of(id)))?;
        if self.guard.is_protected(id) {
            return Ok(SweepOutcome::Protected(len));
        }
        if modified >= check.cutoff {
            return Ok(SweepOutcome::Recent(len));
        }
        match store.load(id, &file, len, &mut self.buf, check.verify_hash) {
            Ok(_) => {}
            Err(Error::Corrupt { reason, .. }) => return Ok(SweepOutcome::Corrupt { len, reason }),
            Err(e) => return Err(e),
        }
        drop(file);
        if check.dry_run {
            return Ok(SweepOutcome::WouldDelete(len));
        }
        let _shard = store.inner.pins.shard_lock(id);
        if self.guard.is_protected(id) {
            return Ok(SweepOutcome::Protected(len));
        }
        match crate::fault::point("objects.delete").and_then(|()| {
            rustix::fs::unlinkat(&self.dir, name, AtFlags::empty()).map_err(io::Error::from)
        }) {
            Ok(()) => Ok(SweepOutcome::Deleted(len)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(SweepOutcome::Missing),
            Err(e) => Err(Error::io("delete", store.path_of(id))(e)),
        }
    }
}
