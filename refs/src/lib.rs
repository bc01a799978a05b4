//! # sydra-refs
//!
//! Named pointers into the object store, kept as plain files the way git
//! keeps loose refs: validated full names ([`RefName`]), ref files holding
//! `<64 hex>\n` or `ref: <name>\n` ([`Target`]), updates by lock file and
//! compare-and-swap ([`PreviousValue`], [`Transaction`]), and one reflog
//! per ref ([`ReflogEntry`]).
//!
//! Guarantees (details in [`transaction`]):
//! - A ref file is always whole: new values are written to `<ref>.lock`,
//!   fsynced, and renamed over the ref; the directory is then fsynced.
//! - A ref never points at a missing object, and a branch (`refs/heads/*`)
//!   only at a commit: targets are checked under the lock, before the
//!   rename.
//! - A compare-and-swap reads the current value under the lock, so of any
//!   number of concurrent updates expecting the same value, at most one
//!   succeeds.
//! - A transaction that fails before its first rename changes nothing.
//!
//! Layout of the data directory: see [`store`]. Dependencies: this crate
//! uses `sydra-objects` to check targets and knows nothing of the WAL or the
//! engine.

#![forbid(unsafe_code)]

pub mod clock;
mod error;
mod fs;
mod lock;
pub mod name;
pub mod reflog;
pub mod store;
pub mod target;
pub mod transaction;

pub use clock::now_ns;
pub use error::{Error, Result};
pub use name::{NameError, RefName};
pub use reflog::{ParseReflogError, ReflogEntry};
pub use store::{LOGS_DIR, MAX_SYMBOLIC_DEPTH, REFS_DIR, RefStore};
pub use target::{MAX_REF_FILE_LEN, ParseRefError, Target, parse_ref_file};
pub use transaction::{PreviousValue, Transaction};

/// The fault points of this crate (see `sydra_objects::fault`).
pub const FAULT_POINTS: &[&str] = &[
    "refs.dir.sync",
    "refs.mkdir",
    "refs.lock.create",
    "refs.lock.write",
    "refs.lock.sync",
    "refs.rename",
    "refs.lock.remove",
    "refs.reflog.write",
    "refs.reflog.sync",
    "refs.delete",
];
