//! The fuzz targets' checks for sydra-objects, run on stable: every seed in
//! `fuzz/seeds/<target>/` (including kept findings, `crash-*`) goes
//! through the same function the fuzz target calls. The checks live in
//! `fuzz/src/objects.rs`; see docs/RELIABILITY.md, "Fuzzing".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

/// Scratch directories for checks that touch the filesystem.
#[allow(dead_code)]
#[path = "../../fuzz/src/scratch.rs"]
mod scratch;

/// The checks, shared with the fuzz targets.
#[allow(dead_code)]
#[path = "../../fuzz/src/objects.rs"]
mod checks;

/// Run `check` on every file in `fuzz/seeds/<target>/`.
fn replay_seeds(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("seed {} fails the {target} check", path.display());
        }
    }
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
