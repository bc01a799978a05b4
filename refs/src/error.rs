//! The error type of the ref layer.

use std::fmt;
use std::io;
use std::path::PathBuf;

use sydra_objects::{Error as ObjectError, Kind, ObjectId};

use crate::name::{NameError, RefName};
use crate::reflog::ParseReflogError;
use crate::target::{ParseRefError, Target};
use crate::transaction::PreviousValue;

/// Everything that can go wrong reading or changing refs. Every variant
/// names the ref or file concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Some changes of a transaction were made before a later step failed:
    /// the refs in `committed` moved and their reflog lines are written (the
    /// failure came after, e.g. a directory fsync). Callers must treat those
    /// changes as done; the other refs of the transaction are unchanged.
    #[error("{} changed, but then: {source}", Names(committed))]
    Committed {
        /// The refs whose change landed.
        committed: Vec<RefName>,
        /// What failed afterwards.
        #[source]
        source: Box<Error>,
    },
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
    /// An fsync failed. Whether earlier writes reached the disk is unknown;
    /// callers must not retry the sync and should stop acknowledging writes
    /// (an engine poisons itself).
    #[error("cannot sync {}: {source}", path.display())]
    Sync {
        /// The file or directory being synced.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A name that is not a valid ref name.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Another update holds the ref's lock file.
    #[error("ref {name} is locked by another update ({} exists)", lock_path.display())]
    Locked {
        /// The ref.
        name: RefName,
        /// Its lock file.
        lock_path: PathBuf,
    },
    /// The ref's current value is not the expected previous value.
    #[error(
        "ref {name} was not changed: expected {expected}, but {}",
        Actual(actual)
    )]
    Mismatch {
        /// The ref.
        name: RefName,
        /// What the caller required.
        expected: PreviousValue,
        /// What the ref held, read under its lock.
        actual: Option<Target>,
    },
    /// A ref file whose content is not a valid ref.
    #[error("ref file {} is corrupt: {source}", path.display())]
    CorruptRef {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: ParseRefError,
    },
    /// An entry under `refs/` that is not a ref file (bad name, not a
    /// regular file).
    #[error("{} is not a ref: {reason}", path.display())]
    StrayFile {
        /// The entry.
        path: PathBuf,
        /// Why it is not a ref.
        reason: String,
    },
    /// The new target is not in the object store.
    #[error("cannot point {name} at {id}: no such object")]
    MissingTarget {
        /// The ref.
        name: RefName,
        /// The missing object.
        id: ObjectId,
    },
    /// A branch (`refs/heads/*`) may only point at a commit.
    #[error(
        "cannot point branch {name} at {id}: it is a {kind}, and branches only point at commits"
    )]
    NotACommit {
        /// The ref.
        name: RefName,
        /// The object.
        id: ObjectId,
        /// Its kind.
        kind: Kind,
    },
    /// The object store failed while the new target was checked.
    #[error("cannot check target {id} of {name}: {source}")]
    Object {
        /// The ref.
        name: RefName,
        /// The object.
        id: ObjectId,
        /// What the store reported (boxed: it is large and rare).
        #[source]
        source: Box<ObjectError>,
    },
    /// A file/directory clash: a ref cannot be both a file and a directory of
    /// refs (`refs/heads/a` and `refs/heads/a/b`), and reflogs mirror refs.
    #[error(
        "cannot write {name}: {} is in the way (a ref cannot also be a directory of refs)",
        path.display()
    )]
    Conflict {
        /// The ref being written.
        name: RefName,
        /// The file or non-empty directory in the way.
        path: PathBuf,
    },
    /// One transaction edits the same ref twice.
    #[error("transaction edits {name} more than once")]
    DuplicateEdit {
        /// The ref.
        name: RefName,
    },
    /// One transaction edits a ref and a ref below it.
    #[error("transaction edits both {name} and {other}; a ref cannot also be a directory of refs")]
    NestedEdits {
        /// The shorter name.
        name: RefName,
        /// The name below it.
        other: RefName,
    },
    /// `HEAD` only ever holds a symbolic ref.
    #[error("HEAD can only be a symbolic ref; {op} the branch it points at instead")]
    HeadMustBeSymbolic {
        /// What was attempted ("update", "delete").
        op: &'static str,
    },
    /// A symbolic ref pointing at itself or at `HEAD`.
    #[error("symbolic ref {name} cannot point at {target}")]
    BadSymbolicTarget {
        /// The symbolic ref.
        name: RefName,
        /// The refused target.
        target: RefName,
    },
    /// Following symbolic refs came back to a ref already visited.
    #[error("symbolic refs loop: {}", Chain(chain))]
    SymbolicLoop {
        /// The refs followed, the repeated one last.
        chain: Vec<RefName>,
    },
    /// Following symbolic refs took more than [`crate::MAX_SYMBOLIC_DEPTH`]
    /// hops.
    #[error(
        "symbolic refs nest more than {} deep: {}",
        crate::MAX_SYMBOLIC_DEPTH,
        Chain(chain)
    )]
    SymbolicTooDeep {
        /// The refs followed.
        chain: Vec<RefName>,
    },
    /// A reflog line that does not parse.
    #[error("reflog {} line {line} is corrupt: {source}", path.display())]
    CorruptReflog {
        /// The reflog file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        #[source]
        source: ParseReflogError,
    },
}

struct Actual<'a>(&'a Option<Target>);

impl fmt::Display for Actual<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("it does not exist"),
            Some(Target::Object(id)) => write!(f, "it points at {id}"),
            Some(Target::Symbolic(name)) => write!(f, "it is a symbolic ref to {name}"),
        }
    }
}

struct Names<'a>(&'a [RefName]);

impl fmt::Display for Names<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}")?;
        }
        Ok(())
    }
}

struct Chain<'a>(&'a [RefName]);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            write!(f, "{name}")?;
        }
        Ok(())
    }
}

impl From<sydra_objects::fs::SyncDirError> for Error {
    fn from(e: sydra_objects::fs::SyncDirError) -> Error {
        use sydra_objects::fs::SyncDirError as E;
        match e {
            E::Open { path, source } => Error::Io {
                op: "open directory",
                path,
                source,
            },
            E::Sync { path, source } => Error::Sync { path, source },
        }
    }
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
            Error::Committed { source, .. } => source.is_sync_failure(),
            _ => matches!(self, Error::Sync { .. }),
        }
    }

    /// The refs a failed transaction changed nonetheless (see
    /// [`Error::Committed`]); `None` when the failure changed no ref.
    pub fn committed(&self) -> Option<&[RefName]> {
        match self {
            Error::Committed { committed, .. } => Some(committed),
            _ => None,
        }
    }

    /// Whether the ref was locked by another update (retrying may succeed).
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Locked { .. })
    }

    /// Whether the compare-and-swap failed because the ref had another value.
    pub fn is_mismatch(&self) -> bool {
        matches!(self, Error::Mismatch { .. })
    }

    /// The OS error behind an I/O or sync failure, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } | Error::Sync { source, .. } => Some(source),
            Error::Committed { source, .. } => source.io_error(),
            _ => None,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> RefName {
        RefName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn messages_name_the_ref() {
        let main = RefName::main_branch();
        let e = Error::Locked {
            name: main.clone(),
            lock_path: "refs/heads/main.lock".into(),
        };
        assert_eq!(
            e.to_string(),
            "ref refs/heads/main is locked by another update (refs/heads/main.lock exists)"
        );
        let id = ObjectId::from_bytes([0xab; 32]);
        let e = Error::Mismatch {
            name: main.clone(),
            expected: PreviousValue::MustNotExist,
            actual: Some(Target::Object(id)),
        };
        assert_eq!(
            e.to_string(),
            format!(
                "ref refs/heads/main was not changed: expected it not to exist, but it points at {id}"
            )
        );
        let e = Error::Mismatch {
            name: main.clone(),
            expected: PreviousValue::MustExistAndMatch(id),
            actual: None,
        };
        assert_eq!(
            e.to_string(),
            format!(
                "ref refs/heads/main was not changed: expected it to point at {id}, but it does not exist"
            )
        );
        let e = Error::SymbolicLoop {
            chain: vec![name("refs/a"), name("refs/b"), name("refs/a")],
        };
        assert_eq!(
            e.to_string(),
            "symbolic refs loop: refs/a -> refs/b -> refs/a"
        );
    }
}
