//! An honestly hashed tree 2,000 levels deep with 255-byte names: fsck, gc
//! and stats must walk it in memory bounded by the width of the walk, not
//! depth times path length (a path per pending subtree was quadratic:
//! ~0.9 GB for this tree).

use std::collections::BTreeMap;
use std::path::Path;

use sydra_engine::Repository;
use sydra_engine::objects::{Commit, Durability, Entry, Kind, Options, Tree};
use sydra_engine::refs::{PreviousValue, RefName};

use super::{run_measured, sydra_cmd};

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

#[test]
fn deep_trees_are_walked_in_memory_bounded_by_width() {
    let d = tempfile::tempdir().unwrap();
    deep_store(d.path());
    for args in [&["fsck"][..], &["stats"], &["gc", "--grace", "0"]] {
        let (out, rss) = run_measured(sydra_cmd(d.path(), args), std::process::Stdio::null());
        eprintln!("sydra {args:?}: peak RSS {} MiB", rss >> 20);
        assert!(
            out.status.success(),
            "sydra {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            rss < MAX_RSS_BYTES,
            "sydra {args:?} peaked at {} MiB (limit {} MiB)",
            rss >> 20,
            MAX_RSS_BYTES >> 20
        );
    }
}
