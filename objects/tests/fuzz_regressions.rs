//! The fuzz targets' checks for sydra-objects, run on stable: every seed in
//! `fuzz/seeds/<target>/` (including kept findings, `crash-*`) goes
//! through the same function the fuzz target calls. The checks live in
//! `fuzz/src/objects.rs` and `fuzz/src/pack.rs`; see docs/RELIABILITY.md,
//! "Fuzzing".
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Scratch directories for checks that touch the filesystem.
#[allow(dead_code)]
#[path = "../../fuzz/src/scratch.rs"]
mod scratch;

/// The checks, shared with the fuzz targets.
#[allow(dead_code)]
#[path = "../../fuzz/src/objects.rs"]
mod checks;

/// Packs and pack indexes.
#[allow(dead_code)]
#[path = "../../fuzz/src/pack.rs"]
mod pack;

/// Seed replay, shared with the other crates' regression tests.
#[path = "../../fuzz/src/seeds.rs"]
mod seeds;

fn replay_seeds(target: &str, check: fn(&[u8])) {
    seeds::replay_seeds(env!("CARGO_MANIFEST_DIR"), target, check);
}

#[test]
fn seeds_loose_object() {
    replay_seeds("loose_object", checks::loose_object);
}

#[test]
fn seeds_blob() {
    replay_seeds("blob", checks::blob);
}

#[test]
fn seeds_tree() {
    replay_seeds("tree", checks::tree);
}

#[test]
fn seeds_commit() {
    replay_seeds("commit", checks::commit);
}

#[test]
fn seeds_object_id() {
    replay_seeds("object_id", checks::object_id);
}

#[test]
fn seeds_pack_index() {
    replay_seeds("pack_index", pack::pack_index);
}

#[test]
fn seeds_pack_scan() {
    replay_seeds("pack_scan", pack::pack_scan);
}
