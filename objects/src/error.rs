//! The error type of the object layer.

use std::io;
use std::path::PathBuf;

use crate::decode::DecodeError;
use crate::{Kind, ObjectId};

/// Everything that can go wrong reading or writing objects. Every variant
/// names the object, file or input concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "rename", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An fsync/fdatasync/syncfs failed. Data the kernel held may be lost;
    /// callers must not retry the sync and should stop acknowledging writes.
    #[error("cannot sync {}: {source}", path.display())]
    Sync {
        /// The file, directory or filesystem being synced.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// No object has this id.
    #[error("object {0} not found")]
    NotFound(ObjectId),
    /// The object's file exists but fails a check.
    #[error("object {id} is corrupt ({}): {reason}", path.display())]
    Corrupt {
        /// The id the file is stored under.
        id: ObjectId,
        /// The file.
        path: PathBuf,
        /// Which check failed.
        reason: String,
    },
    /// The object's payload does not decode as its kind.
    #[error("object {id} is corrupt: {source}")]
    Decode {
        /// The object.
        id: ObjectId,
        /// What the decoder found.
        #[source]
        source: DecodeError,
    },
    /// The object exists but is of another kind.
    #[error("object {id} is a {actual}, not a {expected}")]
    WrongKind {
        /// The object.
        id: ObjectId,
        /// What the caller needed.
        expected: Kind,
        /// What it is.
        actual: Kind,
    },
    /// No object id starts with this prefix.
    #[error("no object id starts with {0}")]
    PrefixNotFound(String),
    /// More than one object id starts with this prefix.
    #[error(
        "object id prefix {prefix} is ambiguous; candidates: {}",
        list(candidates)
    )]
    Ambiguous {
        /// The prefix.
        prefix: String,
        /// Up to a few of the matching ids.
        candidates: Vec<ObjectId>,
    },
    /// A tree path or entry that cannot be used.
    #[error("invalid tree path {path:?}: {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A streamed payload did not have the declared length.
    #[error("input for a {kind} of declared length {expected} ended after {actual} bytes")]
    LengthMismatch {
        /// The kind being written.
        kind: Kind,
        /// Declared length.
        expected: u64,
        /// Bytes actually read (at most `expected + 1`).
        actual: u64,
    },
    /// The directory is not an object store.
    #[error("{} is not a sydra object directory (run `sydra init` first)", .0.display())]
    NotAStore(PathBuf),
    /// A commit field too large to encode.
    #[error(transparent)]
    Encode(#[from] crate::commit::EncodeError),
    /// A pack or pack index fails a structural check.
    #[error("pack file {} is damaged: {reason}", path.display())]
    BadPack {
        /// The `.pack` or `.idx` file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A second garbage collection in the same process.
    #[error("a garbage collection is already running on this object store")]
    GcRunning,
    /// A store's fallback (a read replica's remote) could not deliver an
    /// object it lists.
    #[error("cannot fetch object {id} from {from}: {reason}")]
    Fetch {
        /// The object (the first of a batch).
        id: ObjectId,
        /// Where from (a URL, a pack and an offset).
        from: String,
        /// What failed.
        reason: String,
    },
}

impl From<crate::fs::SyncDirError> for Error {
    fn from(e: crate::fs::SyncDirError) -> Error {
        match e {
            crate::fs::SyncDirError::Open { path, source } => Error::Io {
                op: "open directory",
                path,
                source,
            },
            crate::fs::SyncDirError::Sync { path, source } => Error::Sync { path, source },
        }
    }
}

fn list(ids: &[ObjectId]) -> String {
    ids.iter()
        .map(|i| i.to_hex())
        .collect::<Vec<_>>()
        .join(", ")
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

    /// Whether this error means durability of earlier writes is unknown
    /// (a failed sync), so an engine must poison itself.
    pub fn is_sync_failure(&self) -> bool {
        matches!(self, Error::Sync { .. })
    }

    /// Whether this is a plain "no such object".
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }

    /// The OS error behind an I/O or sync failure, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } | Error::Sync { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
