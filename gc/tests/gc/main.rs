//! Integration tests for sydra-gc against real object and ref stores, one
//! module per component.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Fixtures: a data directory, object builders, an independent reachability walk.
mod common;
/// fsck: each kind of damage reported with its id and path; a clean store is clean.
mod fsck;
/// The retention horizon: counts, durations, overlapping chains, durability, reflog cutoff.
mod horizon;
/// The visited set against a model.
mod idset;
/// One GC at a time: in-process and across processes.
mod lock;
/// The mark: deep histories, horizon boundaries, damage named by its path.
mod mark;
/// The pack phase: old packs rewritten without garbage, young ones kept,
/// reuse during a GC protected.
mod packs;
/// Roots: every ref namespace, reflogs of live and deleted refs, expiry.
mod roots;
/// The sweep: exactness, dry run, grace, corrupt garbage, in-process protection, temp files, shards.
mod sweep;
