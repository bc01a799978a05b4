//! The fuzz targets' checks for sydra-refs, run on stable: every seed in
//! `fuzz/seeds/<target>/` (including kept findings, `crash-*`) goes
//! through the same function the fuzz target calls. The checks live in
//! `fuzz/src/refs.rs`; see docs/RELIABILITY.md, "Fuzzing".
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Scratch directories for checks that touch the filesystem.
#[allow(dead_code)]
#[path = "../../fuzz/src/scratch.rs"]
mod scratch;

/// The checks, shared with the fuzz targets.
#[allow(dead_code)]
#[path = "../../fuzz/src/refs.rs"]
mod checks;

/// Seed replay, shared with the other crates' regression tests.
#[path = "../../fuzz/src/seeds.rs"]
mod seeds;

fn replay_seeds(target: &str, check: fn(&[u8])) {
    seeds::replay_seeds(env!("CARGO_MANIFEST_DIR"), target, check);
}

#[test]
fn seeds_ref_file() {
    replay_seeds("ref_file", checks::ref_file);
}

#[test]
fn seeds_ref_name() {
    replay_seeds("ref_name", checks::ref_name);
}

#[test]
fn seeds_reflog_line() {
    replay_seeds("reflog_line", checks::reflog_line);
}
