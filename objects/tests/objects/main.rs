//! Integration tests for sydra-objects, one module per area of the crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The batch writer: visibility, dedup, abort.
mod batch;
/// The arena tree builder: structural sharing, removal, abort, model check.
mod builder;
/// Shared helpers: temp stores and object counting.
mod common;
/// Canonical encodings: proptest round-trips, no panics, non-canonical rejected.
mod encoding;
/// Packs: batches publish one, reads go through them, repairs at open,
/// repack.
mod packs;
/// Pins and GC sessions: protection of in-flight writes.
mod pins;
/// The many-object reader: same verdicts as `get`, stale shard directories.
mod reader;
/// The loose store: write, read, dedup, corruption detection, streaming, prefixes.
mod store;
