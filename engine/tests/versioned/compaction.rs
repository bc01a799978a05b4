use sydra_engine::Error;
use sydra_engine::compaction::ChangeSet;
use sydra_engine::objects::Kind;

use super::common::{add, engine, flatten, remove, replace};

fn set(changes: Vec<sydra_engine::compaction::SegmentChange>) -> ChangeSet {
    ChangeSet {
        changes,
        applied_seq: None,
        message: "compact".into(),
    }
}

#[test]
fn disjoint_change_sets_are_reapplied_onto_a_moved_head() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let c0 = e
        .commit_compaction(None, &set(vec![add("a", "h0", 1), add("b", "h0", 1)]))
        .unwrap();
    let base = Some(c0.checkpoint.commit);
    // Another compaction lands first, touching series a.
    let c1 = e
        .commit_compaction(base, &set(vec![replace("a", "h0", 2)]))
        .unwrap();
    assert!(!c1.reapplied);
    // A checkpoint lands too (WAL index paths only).
    e.append(b"x").unwrap();
    e.checkpoint(None, "cp").unwrap();
    // Ours was prepared against `base` and touches only series b.
    let c2 = e
        .commit_compaction(base, &set(vec![replace("b", "h0", 3), add("b", "h1", 3)]))
        .unwrap();
    assert!(c2.reapplied);
    let tree = e
        .repo()
        .objects()
        .get(&c2.checkpoint.commit)
        .unwrap()
        .commit()
        .unwrap()
        .tree;
    let flat = flatten(e.repo().objects(), tree);
    let blob = |p: &str| e.repo().objects().get(&flat[p]).unwrap().data.to_vec();
    assert_eq!(
        blob("series/a/raw/h0/columns/ts"),
        vec![2; 8],
        "the other commit's change is kept"
    );
    assert_eq!(
        blob("series/b/raw/h0/columns/ts"),
        vec![3; 8],
        "ours is applied"
    );
    assert!(flat.contains_key("series/b/raw/h1/manifest"));
    assert!(
        flat.keys().any(|k| k.starts_with("wal/index/")),
        "the checkpoint's index is kept"
    );
}

#[test]
fn a_change_set_on_a_moved_path_is_a_conflict_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let c0 = e
        .commit_compaction(None, &set(vec![add("a", "h0", 1)]))
        .unwrap();
    let base = Some(c0.checkpoint.commit);
    let c1 = e
        .commit_compaction(base, &set(vec![replace("a", "h0", 2)]))
        .unwrap();
    let reflog_before = e
        .repo()
        .refs()
        .reflog(&sydra_engine::main_ref())
        .unwrap()
        .len();
    for ours in [replace("a", "h0", 9), remove("a", "h0")] {
        let err = e
            .commit_compaction(base, &set(vec![add("z", "h0", 1), ours]))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Conflict { path, .. } if path == "series/a/raw/h0"),
            "{err}"
        );
        assert!(err.to_string().contains("series/a/raw/h0"), "{err}");
    }
    assert_eq!(
        e.head().unwrap(),
        Some(c1.checkpoint.commit),
        "nothing was written to the ref"
    );
    assert_eq!(
        e.repo()
            .refs()
            .reflog(&sydra_engine::main_ref())
            .unwrap()
            .len(),
        reflog_before
    );
}

#[test]
fn adds_of_existing_and_changes_of_missing_segments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let c0 = e
        .commit_compaction(None, &set(vec![add("a", "h0", 1)]))
        .unwrap();
    let head = Some(c0.checkpoint.commit);
    let err = e
        .commit_compaction(head, &set(vec![add("a", "h0", 2)]))
        .unwrap_err();
    assert!(matches!(err, Error::SegmentExists { .. }), "{err}");
    let err = e
        .commit_compaction(head, &set(vec![replace("a", "nope", 2)]))
        .unwrap_err();
    assert!(
        matches!(&err, Error::MissingSegment { path } if path == "series/a/raw/nope"),
        "{err}"
    );
    let err = e
        .commit_compaction(head, &set(vec![add("b", "h0", 1), remove("a", "nope")]))
        .unwrap_err();
    assert!(matches!(err, Error::MissingSegment { .. }), "{err}");
    // The whole set or none of it: b was not added.
    let tree = e
        .repo()
        .objects()
        .get(&e.head().unwrap().unwrap())
        .unwrap()
        .commit()
        .unwrap()
        .tree;
    assert!(
        !flatten(e.repo().objects(), tree)
            .keys()
            .any(|k| k.starts_with("series/b"))
    );
    let mut bad = super::common::segment("a/../x", "h0", 1);
    bad.manifest.series = "a/../x".into();
    assert!(matches!(
        e.commit_compaction(
            head,
            &set(vec![sydra_engine::compaction::SegmentChange::Add(bad)])
        ),
        Err(Error::InvalidChange(_))
    ));
    assert_eq!(e.head().unwrap(), head);
}

#[test]
fn replacing_one_segment_of_ten_thousand_writes_one_tree_per_level() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let changes = (0..100)
        .flat_map(|s| (0..100).map(move |g| add(&format!("s{s}"), &format!("g{g}"), 1)))
        .collect();
    let c0 = e.commit_compaction(None, &set(changes)).unwrap();
    let store = e.repo().objects();
    let before: std::collections::HashSet<_> = store.all_ids().unwrap().into_iter().collect();
    e.commit_compaction(
        Some(c0.checkpoint.commit),
        &set(vec![replace("s42", "g7", 2)]),
    )
    .unwrap();
    let new_trees = store
        .all_ids()
        .unwrap()
        .into_iter()
        .filter(|id| !before.contains(id))
        .filter(|id| store.stat(id).unwrap().kind == Kind::Tree)
        .count();
    // root, series, s42, raw, g7, columns: the directories on the path.
    assert_eq!(new_trees, 6);
}
