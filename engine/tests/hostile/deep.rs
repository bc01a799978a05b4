//! An honestly hashed tree 2,000 levels deep with 255-byte names: fsck, gc
//! and stats must walk it in memory bounded by the width of the walk, not
//! depth times path length (a path per pending subtree was quadratic:
//! ~0.9 GB for this tree).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sydra_engine::Repository;
use sydra_engine::objects::{Commit, Durability, Entry, Kind, Options, Tree};
use sydra_engine::refs::{PreviousValue, RefName};

use super::deadline;

const LEVELS: usize = 2_000;
/// Peak RSS allowed per command. The walk itself needs a few MB here; the
/// quadratic walk needed ~0.9 GB.
const MAX_RSS_BYTES: u64 = 200 << 20;

/// Level i holds a sibling subtree `c…c` (distinct per level, so it is
/// pending while the deep child `d…d` is walked) and the deep child.
fn deep_store(dir: &Path) {
    let repo = Repository::init(dir).unwrap().0;
    drop(repo);
    let repo = Repository::open_with(
        dir,
        Options {
            durability: Durability::None,
            ..Options::default()
        },
    )
    .unwrap();
    let store = repo.objects();
    let blob = store.put(Kind::Blob, b"leaf").unwrap();
    let sib_name = "c".repeat(255);
    let deep_name = "d".repeat(255);
    let mut below = store.put(Kind::Tree, &Tree::new().encode()).unwrap();
    for level in 0..LEVELS {
        let sibling = Tree::from_entries(vec![Entry {
            kind: Kind::Blob,
            name: format!("{level}"),
            id: blob,
        }])
        .unwrap();
        let sibling = store.put(Kind::Tree, &sibling.encode()).unwrap();
        let t = Tree::from_entries(vec![
            Entry {
                kind: Kind::Tree,
                name: sib_name.clone(),
                id: sibling,
            },
            Entry {
                kind: Kind::Tree,
                name: deep_name.clone(),
                id: below,
            },
        ])
        .unwrap();
        below = store.put(Kind::Tree, &t.encode()).unwrap();
    }
    let c = Commit {
        tree: below,
        parents: vec![],
        timestamp: 1,
        author: "x".into(),
        message: "deep".into(),
        branch: String::new(),
        meta: BTreeMap::new(),
    };
    let commit = store.put(Kind::Commit, &c.encode().unwrap()).unwrap();
    repo.refs()
        .update(
            &RefName::new("refs/heads/main").unwrap(),
            commit,
            PreviousValue::Any,
            "deep",
        )
        .unwrap();
}

/// Run `sydra --dir DIR ARGS` to completion (killed after the deadline)
/// and return its exit status and peak RSS in bytes, from `wait4`.
#[allow(unsafe_code)]
fn run_measured(dir: &Path, args: &[&str]) -> (i32, u64) {
    use std::process::Stdio;
    #[expect(clippy::zombie_processes, reason = "reaped by wait4 below")]
    let mut child = Command::new(env!("CARGO_BIN_EXE_sydra"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let start = std::time::Instant::now();
    let deadline = deadline();
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: plain-old-data out parameters, zero-initialised.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our unreaped child; the pointers are valid for
        // the call. WNOHANG: returns 0 while it runs.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(r >= 0, "wait4: {}", std::io::Error::last_os_error());
        if r == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            };
            // ru_maxrss is in KiB on Linux.
            return (code, usage.ru_maxrss as u64 * 1024);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sydra {args:?} did not finish within {deadline:?}; killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn deep_trees_are_walked_in_memory_bounded_by_width() {
    let d = tempfile::tempdir().unwrap();
    deep_store(d.path());
    for args in [&["fsck"][..], &["stats"], &["gc", "--grace", "0"]] {
        let (code, rss) = run_measured(d.path(), args);
        eprintln!("sydra {args:?}: peak RSS {} MiB", rss >> 20);
        assert_eq!(code, 0, "sydra {args:?} failed");
        assert!(
            rss < MAX_RSS_BYTES,
            "sydra {args:?} peaked at {} MiB (limit {} MiB)",
            rss >> 20,
            MAX_RSS_BYTES >> 20
        );
    }
}
