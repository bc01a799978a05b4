//! The write-ahead log: CRC-framed records in numbered segment files, with
//! group commit, tail repair at open, and chunk hashing for checkpoints.
//!
//! Files: `wal/<first seq, 20 digits>.wal`. Byte layouts are in
//! [`record`] and [`chunk`] and in docs/FORMAT.md.
//!
//! Guarantees:
//! - Seqs start at 1 and are contiguous across segments; a record never
//!   spans segments.
//! - With [`SyncMode::Always`], `append` returns only once its record is
//!   durable (fdatasync). Concurrent appenders share one write + fdatasync
//!   per round (group commit).
//! - A segment is fdatasynced before the next one is created, so only the
//!   last segment can have a torn tail: bad bytes that run to its end with
//!   no valid record after them. Open truncates that tail to the last valid
//!   record, fsyncs what it keeps and reports it; bad bytes followed by a
//!   valid record (damage to acknowledged records), and damage anywhere
//!   else, are errors naming the file and offset, and change nothing. Only
//!   the explicit [`repair`] cuts there, recording the seqs it gives up so
//!   that no seq is ever assigned twice.
//! - A failed write or sync poisons the log: every later operation fails
//!   until it is reopened (a failed fsync is never retried).

pub mod chunk;
mod hashing;
pub mod ranges;
pub mod reader;
pub mod record;
mod recovery;
pub mod repair;
mod writer;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub use chunk::{Chunk, ChunkHasher, RangeDigest};
pub use reader::{SegmentView, list_segments};
pub use recovery::RecoveryReport;
pub(crate) use recovery::not_torn;
pub use writer::{IoHold, Position, Wal, WalStats};

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `append` returns once the record is durable (written and
    /// fdatasynced). Concurrent appenders are group-committed.
    Always,
    /// `append` returns once the record is buffered in memory; a background
    /// thread writes and fdatasyncs at this interval. A crash (of the process
    /// or the machine) loses at most the appends of the last interval.
    Interval(Duration),
    /// `append` returns once the record is buffered in memory. Buffers are
    /// written when full, and on `flush`, `sync`, checkpoint, rotation and
    /// drop; fdatasync happens only on `sync`, checkpoint and rotation. A
    /// process crash loses the unwritten buffer; a power cut loses anything
    /// not yet synced.
    Never,
}

/// WAL settings.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// Rotate to a new segment before a record would make the current one
    /// larger than this (default 64 MiB).
    pub segment_size: u64,
    /// Refuse records with larger payloads (default 16 MiB; at most
    /// `segment_size` minus the segment and record headers).
    pub max_record: usize,
    /// When appends are acknowledged.
    pub sync: SyncMode,
    /// Buffered bytes that trigger a write in the non-`Always` modes
    /// (default 1 MiB).
    pub buffer_size: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 64 << 20,
            max_record: 16 << 20,
            sync: SyncMode::Always,
            buffer_size: 1 << 20,
        }
    }
}

/// Errors of the WAL. Each names the file and, for damage, the offset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// A filesystem operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// fdatasync/fsync failed; the log is poisoned.
    #[error("cannot sync {}: {source}; the WAL is poisoned until reopened", path.display())]
    Sync {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Bytes that are not what the format says.
    #[error("WAL segment {} is corrupt at offset {offset}: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record larger than `max_record`.
    #[error("WAL record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An earlier write or sync failed.
    #[error("the WAL is poisoned by an earlier failure ({reason}); reopen to recover")]
    Poisoned {
        /// The first failure.
        reason: String,
    },
    /// Inconsistent options.
    #[error("invalid WAL options: {0}")]
    Config(String),
    /// A seq that the log does not hold.
    #[error("WAL seq {seq} is not available: {reason}")]
    Missing {
        /// The seq.
        seq: u64,
        /// Why.
        reason: String,
    },
}

impl From<sydra_objects::fs::SyncDirError> for WalError {
    fn from(e: sydra_objects::fs::SyncDirError) -> WalError {
        use sydra_objects::fs::SyncDirError as E;
        match e {
            E::Open { path, source } => WalError::Io {
                op: "open directory",
                path,
                source,
            },
            E::Sync { path, source } => WalError::Sync { path, source },
        }
    }
}

impl WalError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> WalError {
        let path = path.into();
        move |source| WalError::Io { op, path, source }
    }
    pub(crate) fn sync(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> WalError {
        let path = path.into();
        move |source| WalError::Sync { path, source }
    }
}
