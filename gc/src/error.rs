//! The error type of garbage collection, retention, fsck and stats.

use std::io;
use std::path::PathBuf;

use crate::mark::Problem;

/// Everything GC, retention, fsck and stats can fail with. Problems that
/// fsck *finds* are not errors (they are findings in its report); these are
/// the failures that stop an operation. Every variant names the object,
/// file or directory concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the object layer.
    #[error(transparent)]
    Objects(#[from] sydra_objects::Error),
    /// From the ref layer (listing refs, reading reflogs).
    #[error(transparent)]
    Refs(#[from] sydra_refs::Error),
    /// A filesystem operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An fsync failed while writing the retention file. Whether the file is
    /// durable is unknown; an engine poisons itself.
    #[error("cannot sync {}: {source}", path.display())]
    Sync {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another garbage collection, or an fsck (in this process or another),
    /// holds the GC lock.
    #[error(
        "a garbage collection or fsck is already running on {}{}; only one may run at a time",
        dir.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Running {
        /// The data directory.
        dir: PathBuf,
        /// The pid recorded in the lock file, when it could be read.
        pid: Option<u32>,
    },
    /// The mark found reachable objects that are missing or unreadable, so
    /// the reachable set is not known and nothing was deleted.
    #[error(
        "garbage collection deleted nothing: {} reachable object(s) are missing or unreadable, first {}; run `sydra fsck`",
        problems.len(),
        first(problems)
    )]
    Damaged {
        /// Every problem the mark found.
        problems: Vec<Problem>,
    },
    /// The retention file does not parse.
    #[error("retention file {} is corrupt at line {line}: {reason}", path.display())]
    CorruptHorizon {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The visited set cannot hold more ids.
    #[error("cannot mark more than {max} objects in one pass")]
    TooManyObjects {
        /// The limit.
        max: u64,
    },
}

fn first(problems: &[Problem]) -> String {
    problems
        .first()
        .map_or_else(|| "(none)".to_owned(), ToString::to_string)
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub(crate) fn sync(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Sync { path, source }
    }

    /// Whether durability of earlier writes is unknown (a failed fsync), so
    /// an engine must poison itself.
    pub fn is_sync_failure(&self) -> bool {
        match self {
            Error::Sync { .. } => true,
            Error::Objects(e) => e.is_sync_failure(),
            Error::Refs(e) => e.is_sync_failure(),
            _ => false,
        }
    }

    /// Whether a filesystem operation (not an fsync) failed for want of
    /// space: the disk or the quota is full.
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::Io { source, .. } => {
                source.kind() == io::ErrorKind::StorageFull
                    || source.kind() == io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }

    /// Whether this is "another GC holds the lock".
    pub fn is_running(&self) -> bool {
        match self {
            Error::Running { .. } => true,
            Error::Objects(e) => matches!(e, sydra_objects::Error::GcRunning),
            _ => false,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
