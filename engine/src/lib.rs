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
pub mod manifest;
pub mod replay;
mod repo;
pub mod revision;
pub mod section;
pub mod time;
pub mod wal;

pub use engine::{Checkpoint, Engine, OpenReport, Options, main_ref, now_ns, snapshot_name};
pub use error::{Error, Result};
pub use layout::Layout;
pub use replay::{Record, Replay, Tail};
pub use repo::Repository;
pub use sydra_objects as objects;
pub use sydra_refs as refs;
