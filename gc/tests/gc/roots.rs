use std::time::Duration;

use sydra_gc::{GcOptions, Horizon, NoProgress, Roots, collect};
use sydra_objects::Kind;

use super::common::{Fixture, eager, now_ns};

#[test]
fn every_ref_namespace_and_any_object_kind_is_a_root() {
    let f = Fixture::new();
    let main = f.simple_commit(&[], "main");
    let snap = f.simple_commit(&[], "snapshot");
    let section = f.simple_commit(&[], "section");
    let tagged_blob = f.blob(b"tagged blob");
    let tagged_tree = f.tree(&[("t", Kind::Blob, f.blob(b"in tagged tree"))]);
    f.set_ref("refs/heads/main", main);
    f.set_ref("refs/snapshots/2026-01-01T00-00-00Z", snap);
    f.set_ref("refs/sections/config", section);
    f.set_ref("refs/tags/blob", tagged_blob);
    f.set_ref("refs/tags/tree", tagged_tree);
    let garbage = f.blob(b"garbage");
    collect(&f.refs, &eager(), &NoProgress).unwrap();
    for id in [main, snap, section, tagged_blob, tagged_tree] {
        assert!(f.store().contains(&id).unwrap(), "{id}");
    }
    assert!(!f.store().contains(&garbage).unwrap());
}

#[test]
fn reflog_entries_of_deleted_refs_are_roots_until_they_expire() {
    let f = Fixture::new();
    let keep = f.simple_commit(&[], "kept");
    f.set_ref("refs/heads/main", keep);
    let first = f.simple_commit(&[], "first");
    let second = f.simple_commit(&[first], "second");
    f.set_ref("refs/heads/topic", first);
    f.set_ref("refs/heads/topic", second);
    f.delete_ref("refs/heads/topic");
    // Main moved away from an old value: that one is in main's reflog.
    let moved_away = f.simple_commit(&[], "moved away");
    f.set_ref("refs/heads/main", moved_away);
    f.set_ref("refs/heads/main", keep);

    let roots = Roots::from_refs(&f.refs, &Horizon::none(), now_ns(), i64::MAX).unwrap();
    let ids = roots.ids();
    assert!(ids.contains(&second) && ids.contains(&first) && ids.contains(&moved_away));

    let young = GcOptions {
        grace: Duration::ZERO,
        ..GcOptions::default()
    };
    collect(&f.refs, &young, &NoProgress).unwrap();
    for id in [keep, first, second, moved_away] {
        assert!(f.store().contains(&id).unwrap());
    }
    // Expired: only the live ref's history remains.
    collect(&f.refs, &eager(), &NoProgress).unwrap();
    assert!(f.store().contains(&keep).unwrap());
    for id in [first, second, moved_away] {
        assert!(!f.store().contains(&id).unwrap());
    }
}
