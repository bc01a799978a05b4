use std::fs;

use sydra_objects::{Kind, ObjectId};
use sydra_refs::{Error, PreviousValue, RefName, Target};

use crate::common::{Fixture, name};

/// Snapshot of every ref and reflog, to prove "nothing changed".
fn state(f: &Fixture) -> (Vec<(RefName, Target)>, Vec<usize>) {
    let refs = f.refs.list("").unwrap();
    let logs = refs
        .iter()
        .map(|(n, _)| f.refs.reflog(n).unwrap().len())
        .collect();
    (refs, logs)
}

#[test]
fn applies_every_edit() {
    let f = Fixture::new();
    let (a, b) = (f.commit("a"), f.commit("b"));
    f.refs
        .update(&name("refs/heads/old"), a, PreviousValue::Any, "m")
        .unwrap();
    f.refs
        .transaction()
        .update(
            &name("refs/heads/one"),
            a,
            PreviousValue::MustNotExist,
            "one",
        )
        .update(
            &name("refs/snapshots/s"),
            b,
            PreviousValue::MustNotExist,
            "snap",
        )
        .delete(
            &name("refs/heads/old"),
            PreviousValue::MustExistAndMatch(a),
            "drop",
        )
        .commit()
        .unwrap();
    assert_eq!(f.refs.resolve(&name("refs/heads/one")).unwrap(), Some(a));
    assert_eq!(f.refs.resolve(&name("refs/snapshots/s")).unwrap(), Some(b));
    assert_eq!(f.refs.read(&name("refs/heads/old")).unwrap(), None);
    let old_log = f.refs.reflog(&name("refs/heads/old")).unwrap();
    assert_eq!(
        old_log.last().map(|e| (e.old, e.new)),
        Some((Some(a), None))
    );
    // All lines of one transaction carry the same timestamp.
    let t1 = f.refs.reflog(&name("refs/heads/one")).unwrap()[0].timestamp_ns;
    let t2 = f.refs.reflog(&name("refs/snapshots/s")).unwrap()[0].timestamp_ns;
    assert_eq!(t1, t2);
    assert!(f.lock_files().is_empty());
}

#[test]
fn one_mismatch_changes_nothing() {
    let f = Fixture::new();
    let (a, b, c) = (f.commit("a"), f.commit("b"), f.commit("c"));
    for r in ["refs/heads/a", "refs/heads/b", "refs/heads/c"] {
        f.refs
            .update(&name(r), a, PreviousValue::Any, "init")
            .unwrap();
    }
    let before = state(&f);
    let result = f
        .refs
        .transaction()
        .update(
            &name("refs/heads/a"),
            b,
            PreviousValue::MustExistAndMatch(a),
            "ok",
        )
        .update(
            &name("refs/heads/b"),
            b,
            PreviousValue::MustExistAndMatch(c),
            "stale",
        )
        .update(
            &name("refs/heads/c"),
            b,
            PreviousValue::MustExistAndMatch(a),
            "ok",
        )
        .delete(&name("refs/heads/a2"), PreviousValue::Any, "noop")
        .update(
            &name("refs/heads/new"),
            b,
            PreviousValue::MustNotExist,
            "ok",
        )
        .commit();
    match result {
        Err(Error::Mismatch { name: n, .. }) => assert_eq!(n, name("refs/heads/b")),
        other => panic!("{other:?}"),
    }
    assert_eq!(state(&f), before);
    assert!(f.lock_files().is_empty(), "{:?}", f.lock_files());
    assert!(!f.path("refs/heads/new").exists());
}

#[test]
fn a_bad_target_in_the_last_edit_changes_nothing() {
    let f = Fixture::new();
    let a = f.commit("a");
    f.refs
        .update(&name("refs/heads/a"), a, PreviousValue::Any, "init")
        .unwrap();
    let before = state(&f);
    let ghost = ObjectId::compute(Kind::Commit, b"ghost");
    let blob = f.blob(b"blob");
    for (target, what) in [(ghost, "missing"), (blob, "not a commit")] {
        let result = f
            .refs
            .transaction()
            .delete(&name("refs/heads/a"), PreviousValue::Any, "drop")
            .update(&name("refs/heads/zzz"), target, PreviousValue::Any, "bad")
            .commit();
        assert!(
            matches!(
                result,
                Err(Error::MissingTarget { .. } | Error::NotACommit { .. })
            ),
            "{what}: {result:?}"
        );
        assert_eq!(state(&f), before, "{what}");
        assert!(f.lock_files().is_empty(), "{what}");
    }
}

#[test]
fn a_foreign_lock_aborts_and_is_left_alone() {
    let f = Fixture::new();
    let a = f.commit("a");
    fs::create_dir_all(f.path("refs/heads")).unwrap();
    fs::write(f.path("refs/heads/m.lock"), b"someone else's").unwrap();
    let result = f
        .refs
        .transaction()
        .update(&name("refs/heads/a"), a, PreviousValue::Any, "m")
        .update(&name("refs/heads/m"), a, PreviousValue::Any, "m")
        .update(&name("refs/heads/z"), a, PreviousValue::Any, "m")
        .commit();
    assert!(result.unwrap_err().is_locked());
    // Our locks on a (taken before m, in name order) are gone; theirs stays.
    assert_eq!(f.lock_files(), vec![f.path("refs/heads/m.lock")]);
    assert_eq!(
        fs::read(f.path("refs/heads/m.lock")).unwrap(),
        b"someone else's"
    );
    assert_eq!(f.refs.read(&name("refs/heads/a")).unwrap(), None);
}

#[test]
fn duplicate_and_nested_edits_are_refused_before_locking() {
    let f = Fixture::new();
    let a = f.commit("a");
    let dup = f
        .refs
        .transaction()
        .update(&name("refs/heads/a"), a, PreviousValue::Any, "m")
        .delete(&name("refs/heads/a"), PreviousValue::Any, "m")
        .commit();
    assert!(matches!(dup, Err(Error::DuplicateEdit { .. })), "{dup:?}");
    let nested = f
        .refs
        .transaction()
        .update(&name("refs/heads/a/b"), a, PreviousValue::Any, "m")
        .update(&name("refs/heads/a"), a, PreviousValue::Any, "m")
        .commit();
    assert!(
        matches!(nested, Err(Error::NestedEdits { .. })),
        "{nested:?}"
    );
    assert!(f.refs.list("refs/").unwrap().is_empty());
    assert!(f.lock_files().is_empty());
}

#[test]
fn empty_transaction_is_a_no_op() {
    let f = Fixture::new();
    let tx = f.refs.transaction();
    assert!(tx.is_empty());
    tx.commit().unwrap();
}
