use std::time::Duration;

use sydra_gc::{GcOptions, NoProgress, NoVisitor, Session, collect};
use sydra_objects::{Commit, Durability, Entry, Kind, ObjectId, Tree};

use super::common::{Fixture, closure, eager};

/// One batch (one pack): `n` blobs tagged `tag`, a tree, a commit on
/// `parents`. Returns the commit and every id.
fn packed_commit(
    f: &Fixture,
    tag: &str,
    n: usize,
    parents: &[ObjectId],
) -> (ObjectId, Vec<ObjectId>) {
    let mut b = f.store().batch(Durability::None);
    let mut ids = Vec::new();
    let mut entries = Vec::new();
    for i in 0..n {
        let id = b.put(Kind::Blob, format!("{tag} {i}").as_bytes()).unwrap();
        entries.push(Entry {
            kind: Kind::Blob,
            name: format!("b{i}"),
            id,
        });
        ids.push(id);
    }
    let t = b
        .put(Kind::Tree, &Tree::from_entries(entries).unwrap().encode())
        .unwrap();
    let c = Commit {
        tree: t,
        parents: parents.to_vec(),
        message: tag.into(),
        timestamp: super::common::now_ns(),
        ..Commit::default()
    };
    let c = b.put(Kind::Commit, &c.encode().unwrap()).unwrap();
    ids.extend([t, c]);
    let (_, stats) = b.commit().unwrap();
    assert!(stats.pack.is_some());
    (c, ids)
}

#[test]
fn gc_rewrites_old_packs_without_their_garbage_and_keeps_young_ones_whole() {
    let f = Fixture::new();
    let (a, _) = packed_commit(&f, "kept", 20, &[]);
    let (b, _) = packed_commit(&f, "kept too", 20, &[a]);
    f.set_ref("refs/heads/main", b);
    // A pack holding some reachable objects and some garbage.
    let (_, garbage) = packed_commit(&f, "kept", 25, &[]);
    let loose_garbage = f.blob(b"loose garbage");
    let expected = closure(f.store(), &[b], &[]);
    let all = f.objects();
    assert!(garbage.iter().any(|g| !expected.contains(g)));

    // Default grace: the packs are young, nothing is dropped, but the
    // reachable state is unchanged and nothing is lost.
    let opts = GcOptions {
        reflog_expiry: Duration::ZERO,
        ..GcOptions::default()
    };
    let r = collect(&f.refs, &opts, &NoProgress).unwrap();
    assert_eq!(r.packs.objects_dropped, 0);
    // Young packs are kept, or merged whole.
    assert_eq!(
        r.packs.packs_kept_recent + r.packs.packs_removed,
        3,
        "{:?}",
        r.packs
    );
    assert_eq!(f.objects(), all);

    // Past the grace period: exactly the reachable objects remain.
    f.age_objects(Duration::from_secs(2 * 3600));
    let r = collect(&f.refs, &opts, &NoProgress).unwrap();
    assert_eq!(f.objects(), expected.iter().copied().collect());
    assert!(!f.store().contains(&loose_garbage).unwrap());
    assert_eq!(
        r.packs.objects_dropped as usize + r.swept.deleted as usize,
        all.len() - expected.len()
    );
    for id in &expected {
        f.store().get_verified(id).unwrap();
    }
    // Idempotent; and a dry run after changes nothing.
    let r2 = collect(&f.refs, &eager(), &NoProgress).unwrap();
    assert_eq!(r2.packs.objects_dropped, 0);
    assert_eq!(f.objects(), expected.iter().copied().collect());
}

#[test]
fn a_writer_reusing_packed_garbage_during_a_gc_keeps_it() {
    let f = Fixture::new();
    let (main, _) = packed_commit(&f, "main", 5, &[]);
    f.set_ref("refs/heads/main", main);
    let (_, garbage) = packed_commit(&f, "garbage", 5, &[]);
    f.age_objects(Duration::from_secs(7200));
    let session = Session::begin(&f.refs).unwrap();
    let horizon = session.horizon().unwrap();
    let roots = session.roots(&horizon, Duration::ZERO).unwrap();
    let mark = session
        .mark(&roots, &horizon, &mut NoVisitor, &NoProgress)
        .unwrap();
    assert!(!mark.contains(&garbage[0]));
    // After the mark, a writer of this process reuses a garbage blob (a
    // dedup hit on the packed copy) and will reference it.
    let mut b = f.store().batch(Durability::None);
    b.put(Kind::Blob, b"garbage 0").unwrap();
    let (pinned, stats) = b.commit().unwrap();
    assert_eq!(stats.deduped, 1);
    let r = session.repack(&mark, &eager(), &NoProgress).unwrap();
    drop(session);
    // The dedup hit freshened the pack: it is young again, so nothing of
    // it goes (and the reused blob was protected besides).
    assert_eq!(r.objects_dropped, 0, "{r:?}");
    for id in &garbage {
        f.store().get_verified(id).unwrap();
    }
    drop(pinned);
    // Once the writer let go and the grace period passed, it all goes.
    f.age_objects(Duration::from_secs(7200));
    collect(&f.refs, &eager(), &NoProgress).unwrap();
    for id in &garbage {
        assert!(!f.store().contains(id).unwrap());
    }
}
