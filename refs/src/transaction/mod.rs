//! Ref transactions: several ref changes checked together and applied with
//! one lock-check-write-rename protocol.
//!
//! # Protocol and guarantees
//!
//! Preparing (`prepare.rs`), in this order:
//! 1. The edits are validated: no ref twice, no ref together with a ref
//!    below it, `HEAD` only ever symbolic.
//! 2. Every ref is locked by creating `<ref>.lock` with `O_CREAT | O_EXCL`,
//!    in ascending name order. An existing lock file is [`Error::Locked`](crate::Error::Locked).
//! 3. Under the locks, every ref's current value is read and compared with
//!    the edit's [`PreviousValue`] ([`Error::Mismatch`](crate::Error::Mismatch) on a difference), and
//!    the ref's path and reflog path are checked for file/directory clashes.
//! 4. Every new target is checked: an object must exist in the object store
//!    ([`Error::MissingTarget`](crate::Error::MissingTarget)), a branch (`refs/heads/*`) may only point
//!    at a commit ([`Error::NotACommit`](crate::Error::NotACommit)), and a symbolic ref must not start
//!    a loop or a chain deeper than [`crate::MAX_SYMBOLIC_DEPTH`].
//! 5. The new content is written to every lock file and fsynced.
//!
//! Any failure during preparation is a perfect rollback: the lock files are
//! removed and no ref or reflog has changed (at most, empty directories
//! were created).
//!
//! Committing (`commit.rs`): first one reflog line per change is appended
//! and fsynced, under the locks (git's order); then each lock file is
//! renamed over its ref (or, for a delete, the ref file is removed), in name
//! order; each touched directory is fsynced; then the locks of deletes are
//! removed.
//!
//! - A failure before the first rename changes no ref. Reflog lines already
//!   appended stay: each is one past its ref, its `old` equal to the ref's
//!   value, exactly what a crash between a line and its rename leaves.
//!   fsck recognises that state (a note, not a problem), and the ref's
//!   next update simply appends after it.
//! - A failure after the first rename is [`Error::Committed`](crate::Error::Committed):
//!   it names the refs already changed (their reflog lines are written),
//!   so a caller never takes a change that landed for one that did not. The
//!   rest are unchanged: a transaction is atomic against concurrent writers
//!   (they see every ref locked until it is changed) but not against a
//!   crash in the middle of its renames.
//! - A crash after a rename but before its directory fsync may lose the
//!   rename; the reflog line then stays one past the ref, as above.
//!
//! Reflog lines of one store are appended in commit order: commits of one
//! process are serialized from the first reflog line to the last rename,
//! and a ref's line is appended while its lock is held, so updates of one
//! ref append in order across processes too.
//!
//! The whole transaction, preparing and committing, runs under a shared
//! `flock` on `refs/` (see [`crate::lock`]): that is what tells
//! [`RefStore::remove_stale_locks`] that its lock files are live.

mod commit;
mod prepare;

use std::fmt;

use sydra_objects::ObjectId;

use crate::error::Result;
use crate::lock::WriterGuard;
use crate::name::RefName;
use crate::store::{REFS_DIR, RefStore};

/// What a ref must hold for a change to go ahead (compare-and-swap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PreviousValue {
    /// No requirement: the change is made whatever the ref holds, even if its
    /// file is corrupt (this is how a corrupt ref is repaired).
    Any,
    /// The ref must not exist (create only).
    MustNotExist,
    /// The ref must exist and point directly at this object (a symbolic
    /// ref never matches).
    MustExistAndMatch(ObjectId),
}

impl fmt::Display for PreviousValue {
    /// Phrased to complete "expected ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreviousValue::Any => f.write_str("any value"),
            PreviousValue::MustNotExist => f.write_str("it not to exist"),
            PreviousValue::MustExistAndMatch(id) => write!(f, "it to point at {id}"),
        }
    }
}

/// The change one edit makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Point the ref at an object.
    Update(ObjectId),
    /// Remove the ref.
    Delete,
    /// Make the ref symbolic, pointing at another ref.
    Symbolic(RefName),
}

/// One ref change of a transaction.
#[derive(Clone, Debug)]
pub(crate) struct Edit {
    pub(crate) name: RefName,
    pub(crate) change: Change,
    pub(crate) prev: PreviousValue,
    /// The reflog message; `None` writes no reflog line.
    pub(crate) message: Option<String>,
}

/// A set of ref changes applied together; see the module documentation for
/// the protocol and what a failure leaves behind. Built with
/// [`RefStore::transaction`], applied with [`Transaction::commit`].
#[derive(Debug)]
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction<'s> {
    store: &'s RefStore,
    edits: Vec<Edit>,
}

impl<'s> Transaction<'s> {
    pub(crate) fn new(store: &'s RefStore) -> Self {
        Transaction {
            store,
            edits: Vec::new(),
        }
    }

    pub(crate) fn push(mut self, edit: Edit) -> Self {
        self.edits.push(edit);
        self
    }

    /// Point `name` at the object `new` if it holds `prev`.
    pub fn update(self, name: &RefName, new: ObjectId, prev: PreviousValue, message: &str) -> Self {
        self.push(Edit {
            name: name.clone(),
            change: Change::Update(new),
            prev,
            message: Some(message.to_owned()),
        })
    }

    /// Delete `name` if it holds `prev`. Deleting a ref that does not exist
    /// (with [`PreviousValue::Any`] or [`PreviousValue::MustNotExist`])
    /// changes nothing and writes no reflog line.
    pub fn delete(self, name: &RefName, prev: PreviousValue, message: &str) -> Self {
        self.push(Edit {
            name: name.clone(),
            change: Change::Delete,
            prev,
            message: Some(message.to_owned()),
        })
    }

    /// Make `name` a symbolic ref to `target` (which need not exist yet).
    pub fn set_symbolic(self, name: &RefName, target: &RefName, message: &str) -> Self {
        self.push(Edit {
            name: name.clone(),
            change: Change::Symbolic(target.clone()),
            prev: PreviousValue::Any,
            message: Some(message.to_owned()),
        })
    }

    /// Number of edits.
    pub fn len(&self) -> usize {
        self.edits.len()
    }

    /// Whether there are no edits (committing does nothing).
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// Lock, check and apply every edit.
    pub fn commit(self) -> Result<()> {
        if self.edits.is_empty() {
            return Ok(());
        }
        // Held from before the first lock file exists until after the last
        // one is renamed or removed (prepared locks are consumed or dropped
        // inside `prepare` and `commit`, before this guard), so a stale-lock
        // sweep never sees one of this transaction's locks (crate::lock).
        let _writing = WriterGuard::shared(&self.store.dir().join(REFS_DIR))?;
        let prepared = prepare::prepare(self.store, self.edits)?;
        commit::commit(self.store, prepared)
    }
}
