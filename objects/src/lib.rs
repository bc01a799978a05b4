//! # sydra-objects
//!
//! The content-addressed layer of Sydra: BLAKE3 object ids, the canonical
//! encodings of blobs, trees and commits, the loose object store with
//! durable publish and verified reads, the batch writer, and the arena tree
//! builder. It knows nothing about refs, the WAL or time series.
//!
//! Byte layouts are specified in `docs/FORMAT.md`; this crate is their
//! implementation.

pub mod builder;
pub mod commit;
pub mod decode;
mod error;
pub mod fault;
pub mod fs;
pub mod id;
mod kind;
#[allow(unsafe_code)]
mod lanes;
#[allow(unsafe_code)]
pub mod map;
mod name;
pub mod pack;
pub mod store;
pub mod stream;
pub mod tree;

pub use builder::{Lookup, TreeBuilder};

/// The largest tree or commit payload a writer accepts as input
/// (`hash-object -t tree|commit`), 256 MiB: such input is parsed whole, so
/// it is refused before reading when declared larger, and read no further
/// than this otherwise ([`stream::read_payload`]). See docs/FORMAT.md. (A 256 MiB tree holds about
/// 900,000 entries with 255-byte names, millions with short ones.)
pub const MAX_TREE_OR_COMMIT_LEN: u64 = 256 << 20;
pub use bumpalo::Bump;
pub use commit::{Commit, CommitRef};
pub use decode::DecodeError;
pub use error::{Error, Result};
pub use id::{IdHasher, ObjectId, ParseIdError, Prefix};
pub use kind::{Kind, ParseKindError};
pub use name::{MAX_NAME_LEN, NameError, validate_name};
pub use store::{
    Batch, BatchStats, Durability, Fallback, GcGuard, Object, Options, Pinned, RepackOptions,
    RepackReport, Stat, Store, SweepCheck, SweepOutcome,
};
pub use tree::{Entry, EntryRef, RawEntry, Tree, TreeRef};
