//! The fuzz targets' checks for sydra-refs, run on stable: every seed in
//! `fuzz/seeds/<target>/` (including kept findings, `crash-*`) goes
//! through the same function the fuzz target calls. The checks live in
//! `fuzz/src/refs.rs`; see docs/RELIABILITY.md, "Fuzzing".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

/// Scratch directories for checks that touch the filesystem.
#[allow(dead_code)]
#[path = "../../fuzz/src/scratch.rs"]
mod scratch;

/// The checks, shared with the fuzz targets.
#[allow(dead_code)]
#[path = "../../fuzz/src/refs.rs"]
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
