//! Scratch directories for checks that touch the filesystem.
//!
//! They live under `/dev/shm/sydra-fuzz/` when tmpfs is there (fsync is
//! free on tmpfs, so a check costs what its logic costs), else under the
//! system temp dir. libFuzzer leaves by `exit()`, which runs no
//! destructors, so a process's directories are named `<pid>-...` and the
//! first call in each process removes those of processes that are gone.

use std::path::{Path, PathBuf};
use std::sync::Once;

fn root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join("sydra-fuzz")
}

fn sweep_dead(root: &Path) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for entry in rd.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A new, empty directory, removed when the value is dropped.
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    static SWEEP: Once = Once::new();
    let root = root();
    SWEEP.call_once(|| sweep_dead(&root));
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("create {}: {e}", root.display()));
    tempfile::Builder::new()
        .prefix(&format!("{}-{tag}-", std::process::id()))
        .tempdir_in(&root)
        .unwrap_or_else(|e| panic!("scratch dir in {}: {e}", root.display()))
}
