//! Integration tests of garbage collection, retention, fsck and stats at
//! the engine level, one module per scenario family.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The `sydra gc`, `fsck` and `stats` commands: output and exit codes.
mod cli;
/// Shared helpers: engines in temp dirs, an independent reachability walk,
/// the WAL segments a set of commits needs.
mod common;
/// GC beside live writers: writers commit (reusing old unreachable content)
/// while GC runs repeatedly with zero grace; no ref ever loses an object.
mod hammer;
/// GC against a model: random histories, branches, deletions, snapshots,
/// retention; the remaining objects and segments equal the model's.
mod model;
/// Retention: old history and WAL reclaimed, head and old snapshots still replay.
mod retention;
/// fsck of the WAL: chunk bytes verified, needed vs legitimately swept segments.
mod wal_fsck;
