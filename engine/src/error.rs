//! The engine's error type.

use std::io;
use std::path::PathBuf;

/// Everything the engine and repository layer can fail with. Messages name
/// the directory, file, object or revision concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the object layer.
    #[error(transparent)]
    Objects(#[from] sydra_objects::Error),
    /// From the ref layer.
    #[error(transparent)]
    Refs(#[from] sydra_refs::Error),
    /// From garbage collection, retention, fsck or stats.
    #[error(transparent)]
    Gc(#[from] sydra_gc::Error),
    /// A remote, or a transfer to or from it, failed.
    #[error("remote {remote}: {reason}")]
    Remote {
        /// The remote's name or URL.
        remote: String,
        /// What went wrong.
        reason: String,
    },
    /// A push that would lose history on the remote (not a fast-forward).
    #[error("push of {name} rejected: {reason}")]
    PushRejected {
        /// The ref.
        name: String,
        /// Why.
        reason: String,
    },
    /// The directory has no `FORMAT` file.
    #[error("{} is not a sydra data directory (no FORMAT file; run `sydra init`)", .0.display())]
    NotARepository(PathBuf),
    /// The data directory does not exist (only `sydra init` and
    /// `Engine::create` make one).
    #[error("{} does not exist; run `sydra init` to create a data directory there", .0.display())]
    NoSuchDirectory(PathBuf),
    /// `init` was pointed at a directory that holds something else.
    #[error("{} is not empty and not a sydra data directory (it holds {}); `sydra init` creates a data directory only in a new or empty directory", dir.display(), entry.display())]
    NotEmpty {
        /// The directory.
        dir: PathBuf,
        /// The first entry (by name) that init did not create.
        entry: PathBuf,
    },
    /// The `FORMAT` file names a format this build does not read.
    #[error("{} holds {found:?}; this build reads only \"sydra 1\" and changes nothing in a directory of another format", path.display())]
    UnsupportedFormat {
        /// The FORMAT file.
        path: PathBuf,
        /// Its first line.
        found: String,
    },
    /// A filesystem operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A series key refused (an empty or unrepresentable part, a duplicate
    /// tag).
    #[error("invalid series key: {0}")]
    SeriesKey(#[from] crate::series::KeyError),
    /// A selector that does not parse (the column is in the message).
    #[error("invalid selector: {0}")]
    Selector(#[from] crate::series::SelectorError),
    /// A time-series write refused: a type mismatch, a string value, an
    /// unknown series ref.
    #[error("{0}")]
    Series(String),
    /// A segment or series-index blob in a commit's tree that does not
    /// verify.
    #[error("{path}: {reason}")]
    Segment {
        /// Its path in the tree.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A series record in the WAL that does not decode or contradicts the
    /// records before it.
    #[error("WAL record {seq}: {reason}")]
    SeriesRecord {
        /// Its seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// From the WAL.
    #[error(transparent)]
    Wal(#[from] crate::wal::WalError),
    /// Another process holds the directory lock.
    #[error("{} is locked by another process{}; only one writer may open it", dir.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The pid recorded in `LOCK`, if readable.
        pid: Option<u32>,
    },
    /// An earlier sync failure: the engine refuses writes until reopened.
    #[error("the engine is poisoned by an earlier failure ({reason}); reopen it to recover")]
    Poisoned {
        /// The first failure.
        reason: String,
    },
    /// An operation that needs a checkpoint before any exists.
    #[error("{0}: there is no checkpoint on refs/heads/main yet")]
    NoHead(&'static str),
    /// A checkpoint argument out of range.
    #[error("cannot checkpoint with applied seq {applied}: {reason}")]
    AppliedSeq {
        /// The requested applied seq.
        applied: u64,
        /// Why it is refused.
        reason: String,
    },
    /// A WAL chunk named by a commit does not match the segment bytes.
    #[error("WAL chunk {chunk} does not match {}: {reason}", path.display())]
    ChunkMismatch {
        /// The chunk blob.
        chunk: sydra_objects::ObjectId,
        /// The segment file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A change set touches a path that changed since its base commit.
    #[error("conflict at {path}: it changed since the change set's base commit (head is now {})", head.map(|h| h.to_hex()).unwrap_or_else(|| "empty".into()))]
    Conflict {
        /// The conflicting segment path.
        path: String,
        /// The head the set could not be applied to.
        head: Option<sydra_objects::ObjectId>,
    },
    /// An add of a segment that already exists.
    #[error("segment {path} already exists (use a replace)")]
    SegmentExists {
        /// Its path.
        path: String,
    },
    /// A replace or remove of a segment that does not exist.
    #[error("segment {path} does not exist")]
    MissingSegment {
        /// Its path.
        path: String,
    },
    /// A change set that is malformed.
    #[error("invalid change set: {0}")]
    InvalidChange(String),
    /// A symbolic link where the data directory must hold real files.
    #[error("{} is a symbolic link; a sydra data directory must not contain links (remove it, or copy the real file in its place)", .0.display())]
    Symlink(PathBuf),
    /// A revision that does not parse or does not resolve.
    #[error("bad revision {rev:?}: {reason}")]
    Revision {
        /// The revision as given.
        rev: String,
        /// Why it failed.
        reason: String,
    },
}

impl Error {
    /// Whether this failure means earlier writes may not be durable (a failed
    /// fsync anywhere), so the engine must poison itself.
    pub fn is_sync_failure(&self) -> bool {
        match self {
            Error::Objects(e) => e.is_sync_failure(),
            Error::Refs(e) => e.is_sync_failure(),
            Error::Gc(e) => e.is_sync_failure(),
            Error::Wal(
                crate::wal::WalError::Sync { .. } | crate::wal::WalError::Poisoned { .. },
            ) => true,
            _ => false,
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    pub(crate) fn revision(rev: &str, reason: impl Into<String>) -> Error {
        Error::Revision {
            rev: rev.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;
