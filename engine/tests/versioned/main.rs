//! Integration tests for versioned data: compaction commits, revisions,
//! time travel, diff, path history and key/value sections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Column codecs: round-trips and canonical decoding.
mod codec;
/// Segment manifests and change sets, shared builders.
mod common;
/// Compaction commits: re-apply on a moved head, conflicts, structural sharing.
mod compaction;
/// Diff against a flatten-and-compare; path history.
mod diff;
/// The revision grammar end to end.
mod revisions;
/// The key/value section contract.
mod sections;
/// `REV@{TIME}` against a brute-force walk; index deleted or corrupted.
mod time_travel;
