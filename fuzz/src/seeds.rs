//! Replaying the seed corpora outside libFuzzer: the crates' regression
//! tests include this file with `#[path]` and run every seed (and every
//! kept finding, `crash-*`) through the same check the fuzz target calls.

use std::path::Path;

/// Run `check` on every file in `fuzz/seeds/<target>/`, from a crate
/// directory one level below the repository root.
pub fn replay_seeds(crate_dir: &str, target: &str, check: fn(&[u8])) {
    let dir = Path::new(crate_dir).join("../fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    for path in files {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("seed {} fails the {target} check", path.display());
        }
    }
}
