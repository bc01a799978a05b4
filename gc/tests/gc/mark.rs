use std::fs;

use sydra_gc::{
    Defect, Error, Horizon, MarkOptions, NoProgress, NoVisitor, Origin, Roots, Session, collect,
    mark,
};
use sydra_objects::Kind;
use sydra_refs::RefName;

use super::common::{Fixture, eager};

#[test]
fn a_long_history_and_a_deep_tree_are_marked_without_recursion() {
    let f = Fixture::new();
    // A tree 2000 levels deep.
    let mut t = f.tree(&[("leaf", Kind::Blob, f.blob(b"leaf"))]);
    for _ in 0..2000 {
        t = f.tree(&[("d", Kind::Tree, t)]);
    }
    // 20 000 commits on one first-parent chain.
    let mut parent = None;
    for i in 0..20_000 {
        let c = f.commit_at(t, parent.as_slice(), &format!("c{i}"), i);
        parent = Some(c);
    }
    f.set_ref("refs/heads/main", parent.unwrap());
    let before = f.objects().len();
    let r = collect(&f.refs, &eager(), &NoProgress).unwrap();
    assert_eq!(r.reachable.commits, 20_000);
    assert_eq!(r.reachable.trees, 2001);
    assert_eq!(r.reachable.blobs, 1);
    assert_eq!(r.swept.deleted, 0);
    assert_eq!(f.objects().len(), before);
}

#[test]
fn damage_is_reported_with_the_path_that_reaches_it_and_stops_the_sweep() {
    let f = Fixture::new();
    let base = f.simple_commit(&[], "base");
    let blob = f.blob(b"payload");
    let index = f.tree(&[("00000000000000000001", Kind::Blob, blob)]);
    let wal = f.tree(&[("index", Kind::Tree, index)]);
    let root = f.tree(&[("wal", Kind::Tree, wal)]);
    let tip = f.commit(root, &[base], "tip");
    f.set_ref("refs/heads/main", tip);
    let garbage = f.blob(b"garbage");
    f.age_objects(std::time::Duration::from_secs(7200));
    fs::remove_file(f.path_of(&blob)).unwrap();
    // The base commit's root tree too, reached one parent down.
    let base_tree = f.store().get(&base).unwrap().commit().unwrap().tree;
    fs::remove_file(f.path_of(&base_tree)).unwrap();

    let err = collect(&f.refs, &eager(), &NoProgress).unwrap_err();
    let Error::Damaged { problems } = &err else {
        panic!("expected Damaged, got {err}");
    };
    assert_eq!(problems.len(), 2, "{problems:#?}");
    let p = problems.iter().find(|p| p.id == blob).unwrap();
    assert_eq!(p.defect, Defect::Missing);
    assert_eq!(
        p.chain,
        format!("refs/heads/main -> commit {tip} -> tree wal/index -> blob {blob}")
    );
    assert_eq!(
        p.tree_path.as_deref(),
        Some("wal/index/00000000000000000001")
    );
    let q = problems.iter().find(|p| p.id == base_tree).unwrap();
    assert_eq!(
        q.chain,
        format!("refs/heads/main~1 -> commit {base} -> tree {base_tree}")
    );
    assert!(err.to_string().contains("deleted nothing"), "{err}");
    // Nothing was swept, not even real garbage.
    assert!(f.store().contains(&garbage).unwrap());
}

#[test]
fn a_corrupt_tree_and_a_wrongly_kinded_entry_are_problems() {
    let f = Fixture::new();
    let sub = f.tree(&[("x", Kind::Blob, f.blob(b"x"))]);
    // An entry that says "blob" but names a tree.
    let root = f.tree(&[("liar", Kind::Blob, sub), ("sub", Kind::Tree, sub)]);
    let c = f.commit(root, &[], "c");
    let mut roots = Roots::new();
    roots.push(Origin::Ref(RefName::main_branch()), [c]);
    let opts = MarkOptions {
        blob_headers: true,
        ..MarkOptions::default()
    };
    let m = mark(
        f.store(),
        &roots,
        &Horizon::none(),
        &opts,
        &mut NoVisitor,
        &NoProgress,
    )
    .unwrap();
    // `sub` is reached first as the blob entry "liar" (entries are sorted).
    assert_eq!(m.problems.len(), 1, "{:#?}", m.problems);
    assert_eq!(
        m.problems[0].defect,
        Defect::WrongKind {
            expected: Kind::Blob,
            actual: Kind::Tree
        }
    );

    // Flip a byte inside the root tree's payload: CRC catches it on read.
    let path = f.path_of(&root);
    let mut bytes = fs::read(&path).unwrap();
    bytes[60] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let m = mark(
        f.store(),
        &roots,
        &Horizon::none(),
        &opts,
        &mut NoVisitor,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(m.problems.len(), 1);
    assert_eq!(m.problems[0].id, root);
    assert!(matches!(&m.problems[0].defect, Defect::Corrupt(r) if r.contains("CRC")));
    assert!(m.contains(&root), "damaged objects stay marked");
}

#[test]
fn a_tree_entry_naming_a_blob_is_a_wrong_kind_with_or_without_blob_headers() {
    // The mark reads trees for their framing only (DECISIONS 62); the
    // object's own kind is still checked before that.
    let f = Fixture::new();
    // Bytes that would frame as an (empty-named) tree: a blob all the same.
    let blob = f.blob(&[0, 0, 0, 0]);
    let root = f.tree(&[("fake", Kind::Tree, blob)]);
    let c = f.commit(root, &[], "c");
    let mut roots = Roots::new();
    roots.push(Origin::Ref(RefName::main_branch()), [c]);
    for blob_headers in [false, true] {
        let opts = MarkOptions {
            blob_headers,
            ..MarkOptions::default()
        };
        let m = mark(
            f.store(),
            &roots,
            &Horizon::none(),
            &opts,
            &mut NoVisitor,
            &NoProgress,
        )
        .unwrap();
        assert_eq!(m.problems.len(), 1, "{:#?}", m.problems);
        assert_eq!(
            m.problems[0].defect,
            Defect::WrongKind {
                expected: Kind::Tree,
                actual: Kind::Blob
            }
        );
        assert_eq!(m.problems[0].tree_path.as_deref(), Some("fake"));
    }
}

#[test]
fn a_boundary_commit_is_kept_but_its_parents_are_not_followed() {
    let f = Fixture::new();
    let a = f.simple_commit(&[], "a");
    let b = f.simple_commit(&[a], "b");
    let c = f.simple_commit(&[b], "c");
    let mut roots = Roots::new();
    roots.push(Origin::Ref(RefName::main_branch()), [c]);
    let h = Horizon::new(0, vec![b]);
    let m = mark(
        f.store(),
        &roots,
        &h,
        &MarkOptions::default(),
        &mut NoVisitor,
        &NoProgress,
    )
    .unwrap();
    assert!(m.contains(&c) && m.contains(&b) && !m.contains(&a));
    assert_eq!(m.boundaries_reached, 1);
    assert_eq!(m.reached.commits, 2);
}

#[test]
fn an_in_flight_batch_is_a_root_even_before_its_ref_moves() {
    let f = Fixture::new();
    let old = f.simple_commit(&[], "old");
    f.set_ref("refs/heads/main", old);
    let mut batch = f.store().batch(sydra_objects::Durability::None);
    let blob = batch.put(Kind::Blob, b"in flight").unwrap();
    let (pinned, _) = batch.commit().unwrap();
    let session = Session::begin(&f.refs).unwrap();
    let h = session.horizon().unwrap();
    let roots = session.roots(&h, std::time::Duration::ZERO).unwrap();
    assert!(roots.ids().contains(&blob));
    let m = session
        .mark(&roots, &h, &mut NoVisitor, &NoProgress)
        .unwrap();
    assert!(m.contains(&blob));
    drop(pinned);
}
