//! # sydra-engine
//!
//! The Sydra engine on top of the object and ref layers: the data
//! directory layout, revisions, and (in later modules) the WAL,
//! checkpoints, replay and history. The `sydra` admin command lives in
//! `src/bin/sydra` behind the default `cli` feature.

pub mod codec;
pub mod compaction;
pub mod diff;
mod engine;
mod error;
pub mod history;
pub mod index;
pub mod layout;
pub mod maintenance;
pub mod manifest;
pub mod remote;
pub mod replay;
mod repo;
pub mod revision;
pub mod section;
pub mod series;
#[cfg(feature = "http")]
pub mod serve;
pub mod time;
mod varint;
pub mod wal;

pub use engine::{Checkpoint, Engine, OpenReport, Options, main_ref, snapshot_name};
pub use error::{Error, Result};
pub use layout::Layout;
pub use replay::{Record, Replay, Tail};
pub use repo::Repository;
pub use sydra_gc as gc;
pub use sydra_objects as objects;
pub use sydra_refs as refs;
pub use sydra_refs::now_ns;

/// The fault points of this crate (see `sydra_objects::fault`).
pub const FAULT_POINTS: &[&str] = &[
    "history.map",
    "history.rename",
    "history.write",
    "layout.dir.sync",
    "layout.format.rename",
    "layout.format.sync",
    "layout.format.write",
    "layout.lock.write",
    "layout.mkdir",
    "lock.write",
    "remote.dir.sync",
    "remote.mkdir",
    "remote.rename",
    "remote.sync",
    "remote.write",
    "tmp.cleanup",
    "wal.dir.sync",
    "wal.map",
    "wal.mkdir",
    "wal.recovery.remove",
    "wal.recovery.sync",
    "wal.recovery.truncate",
    "wal.segment.create",
    "wal.segment.remove",
    "wal.segment.sync",
    "wal.segment.write",
    "wal.sync",
    "wal.write",
    "walchunks.dir.sync",
    "walchunks.mkdir",
    "walchunks.remove",
    "walchunks.rename",
    "walchunks.sync",
    "walchunks.write",
];
