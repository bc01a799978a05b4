//! # sydra-gc
//!
//! Garbage collection and verification for a Sydra data directory:
//! roots, mark, sweep, the retention horizon, fsck and stats.
//!
//! Dependencies: `sydra-objects` and `sydra-refs` only. This crate takes its
//! roots from refs (or as arguments) and never knows about the WAL; the
//! engine composes it with its WAL sweep and chunk verification (through
//! [`Visitor`], which sees every reachable commit).
//!
//! Guarantees:
//! - **Only unreachable objects are deleted.** Roots are every ref (HEAD
//!   included), reflog entries younger than the reflog expiry (and not
//!   older than the retention horizon), and ids pinned by in-flight writes
//!   of this process.
//! - **Damage is never garbage.** A reachable object that is missing or
//!   unreadable stops the sweep ([`Error::Damaged`]): what it references is
//!   unknown. An unreachable object that fails verification is kept and
//!   reported, not deleted.
//! - **Safe beside a live writer in this process**, whatever the grace
//!   period: an object written or dedup-freshened after the GC began is
//!   protected (see `objects/src/store/pins.rs`). Writers in other processes
//!   are protected by the grace period (default one hour), measured from the
//!   GC's start against the file's mtime, which dedup hits freshen.
//! - **One GC at a time**: `<dir>/gc.lock` across processes, the store's GC
//!   session inside one. A second gets [`Error::Running`].
//! - **The mark is iterative** (no recursion) and its visited set costs
//!   about 50 bytes per reachable object ([`IdSet`]).
//! - **The retention horizon is durable** (`<dir>/shallow`, replaced by
//!   temp + fsync + rename + directory fsync) and survives reopen.
//!
//! Formats: docs/FORMAT.md ("Retention horizon"); operations:
//! docs/OPERATIONS.md.

#![forbid(unsafe_code)]

pub mod duration;
mod error;
pub mod fsck;
pub mod horizon;
pub mod idset;
pub mod leftovers;
pub mod lock;
pub mod mark;
pub mod progress;
pub mod roots;
mod session;
pub mod stats;
pub mod sweep;

pub use duration::{Keep, ParseDurationError, format_duration, parse_duration};
pub use error::{Error, Result};
pub use fsck::{Finding, FsckOptions, FsckReport, GcExclusion, exclude_gc, fsck, fsck_excluding};
pub use horizon::{HORIZON_FILE, Horizon};
pub use idset::IdSet;
pub use lock::{GC_LOCK_FILE, GcLock, PID_RECORD_LEN, pid_record, read_pid, write_pid};
pub use mark::{Defect, Mark, MarkOptions, NoVisitor, Problem, Reached, Via, Visitor, mark};
pub use progress::{NoProgress, Progress};
pub use roots::{Origin, Roots};
pub use session::{DEFAULT_GRACE, DEFAULT_REFLOG_EXPIRY, GcOptions, GcReport, Session, collect};
pub use stats::{Stats, StatsOptions, Tally, stats};
pub use sweep::{CorruptObject, SweepOptions, Swept};

/// The fault points of this crate (see `sydra_objects::fault`).
pub const FAULT_POINTS: &[&str] = &[
    "gc.horizon.write",
    "gc.horizon.sync",
    "gc.horizon.rename",
    "gc.horizon.dir.sync",
    "gc.lock.write",
    "gc.shard.rmdir",
    "gc.tmp.remove",
];
