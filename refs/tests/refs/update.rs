use std::fs;

use sydra_objects::Kind;
use sydra_refs::{Error, PreviousValue, RefName, Target};

use crate::common::{Fixture, name};

#[test]
fn create_then_compare_and_swap() {
    let f = Fixture::new();
    let main = RefName::main_branch();
    let (a, b, c) = (f.commit("a"), f.commit("b"), f.commit("c"));

    f.refs
        .update(&main, a, PreviousValue::MustNotExist, "create")
        .unwrap();
    assert_eq!(f.refs.read(&main).unwrap(), Some(Target::Object(a)));
    assert_eq!(
        fs::read_to_string(f.path("refs/heads/main")).unwrap(),
        format!("{a}\n")
    );

    f.refs
        .update(&main, b, PreviousValue::MustExistAndMatch(a), "advance")
        .unwrap();
    assert_eq!(f.refs.resolve(&main).unwrap(), Some(b));

    // A stale expectation loses and changes nothing.
    match f
        .refs
        .update(&main, c, PreviousValue::MustExistAndMatch(a), "stale")
    {
        Err(Error::Mismatch {
            name,
            expected,
            actual,
        }) => {
            assert_eq!(name, main);
            assert_eq!(expected, PreviousValue::MustExistAndMatch(a));
            assert_eq!(actual, Some(Target::Object(b)));
        }
        other => panic!("{other:?}"),
    }
    match f
        .refs
        .update(&main, c, PreviousValue::MustNotExist, "again")
    {
        Err(e @ Error::Mismatch { .. }) => {
            assert_eq!(
                e.to_string(),
                format!(
                    "ref refs/heads/main was not changed: expected it not to exist, but it points at {b}"
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.refs.resolve(&main).unwrap(), Some(b));
    assert_eq!(f.refs.reflog(&main).unwrap().len(), 2);
    assert!(f.lock_files().is_empty());

    f.refs
        .update(&main, c, PreviousValue::Any, "force")
        .unwrap();
    assert_eq!(f.refs.resolve(&main).unwrap(), Some(c));
}

#[test]
fn must_exist_on_missing_ref_is_a_mismatch() {
    let f = Fixture::new();
    let a = f.commit("a");
    let r = name("refs/heads/x");
    match f
        .refs
        .update(&r, a, PreviousValue::MustExistAndMatch(a), "m")
    {
        Err(Error::Mismatch { actual: None, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(f.refs.read(&r).unwrap(), None);
    assert!(f.lock_files().is_empty());
}

#[test]
fn missing_target_is_refused() {
    let f = Fixture::new();
    let main = RefName::main_branch();
    let a = f.commit("a");
    f.refs
        .update(&main, a, PreviousValue::Any, "create")
        .unwrap();
    let ghost = sydra_objects::ObjectId::compute(Kind::Commit, b"never stored");
    match f.refs.update(&main, ghost, PreviousValue::Any, "ghost") {
        Err(e @ Error::MissingTarget { .. }) => {
            assert_eq!(
                e.to_string(),
                format!("cannot point refs/heads/main at {ghost}: no such object")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.refs.resolve(&main).unwrap(), Some(a));
    assert_eq!(f.refs.reflog(&main).unwrap().len(), 1);
    assert!(f.lock_files().is_empty());
}

#[test]
fn branches_only_point_at_commits() {
    let f = Fixture::new();
    let blob = f.blob(b"not a commit");
    let branch = name("refs/heads/data");
    match f.refs.update(&branch, blob, PreviousValue::Any, "m") {
        Err(Error::NotACommit {
            kind: Kind::Blob,
            id,
            name,
        }) => {
            assert_eq!((id, name), (blob, branch.clone()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.refs.read(&branch).unwrap(), None);
    // Outside refs/heads/, any kind may be pointed at.
    let tag = name("refs/tags/data");
    f.refs
        .update(&tag, blob, PreviousValue::MustNotExist, "m")
        .unwrap();
    assert_eq!(f.refs.resolve(&tag).unwrap(), Some(blob));
}

#[test]
fn delete_checks_previous_value() {
    let f = Fixture::new();
    let r = name("refs/heads/topic/one");
    let (a, b) = (f.commit("a"), f.commit("b"));
    f.refs
        .update(&r, a, PreviousValue::MustNotExist, "create")
        .unwrap();

    assert!(
        f.refs
            .delete(&r, PreviousValue::MustExistAndMatch(b), "wrong")
            .unwrap_err()
            .is_mismatch()
    );
    assert!(
        f.refs
            .delete(&r, PreviousValue::MustNotExist, "wrong")
            .unwrap_err()
            .is_mismatch()
    );
    assert_eq!(f.refs.resolve(&r).unwrap(), Some(a));

    f.refs
        .delete(&r, PreviousValue::MustExistAndMatch(a), "gone")
        .unwrap();
    assert_eq!(f.refs.read(&r).unwrap(), None);
    assert!(!f.path("refs/heads/topic/one").exists());
    // The emptied directory is pruned; refs/heads stays.
    assert!(!f.path("refs/heads/topic").exists());
    assert!(f.path("refs/heads").is_dir());
    let log = f.refs.reflog(&r).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[1].old, log[1].new, log[1].message.as_str()),
        (Some(a), None, "gone")
    );
    assert!(f.lock_files().is_empty());

    // Deleting what does not exist: Any is a no-op, MustExistAndMatch fails.
    f.refs.delete(&r, PreviousValue::Any, "noop").unwrap();
    assert_eq!(f.refs.reflog(&r).unwrap().len(), 2);
    assert!(
        f.refs
            .delete(&r, PreviousValue::MustExistAndMatch(a), "x")
            .unwrap_err()
            .is_mismatch()
    );
}

#[test]
fn head_cannot_hold_an_object() {
    let f = Fixture::new();
    let a = f.commit("a");
    let e = f
        .refs
        .update(&RefName::head(), a, PreviousValue::Any, "m")
        .unwrap_err();
    assert!(
        matches!(e, Error::HeadMustBeSymbolic { op: "update" }),
        "{e}"
    );
    let e = f
        .refs
        .delete(&RefName::head(), PreviousValue::Any, "m")
        .unwrap_err();
    assert!(
        matches!(e, Error::HeadMustBeSymbolic { op: "delete" }),
        "{e}"
    );
    assert_eq!(
        f.refs.read(&RefName::head()).unwrap(),
        Some(Target::Symbolic(RefName::main_branch()))
    );
}

#[test]
fn file_directory_clashes_are_refused_clearly() {
    let f = Fixture::new();
    let a = f.commit("a");
    f.refs
        .update(&name("refs/heads/a"), a, PreviousValue::Any, "m")
        .unwrap();
    // A ref cannot live below another ref...
    match f
        .refs
        .update(&name("refs/heads/a/b"), a, PreviousValue::Any, "m")
    {
        Err(e @ Error::Conflict { .. }) => {
            assert!(e.to_string().contains("refs/heads/a/b"), "{e}");
            assert!(
                e.to_string()
                    .contains(&f.path("refs/heads/a").display().to_string()),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    // ...nor where a directory of refs is.
    f.refs
        .update(&name("refs/heads/x/y"), a, PreviousValue::Any, "m")
        .unwrap();
    match f
        .refs
        .update(&name("refs/heads/x"), a, PreviousValue::Any, "m")
    {
        Err(Error::Conflict { path, .. }) => assert_eq!(path, f.path("refs/heads/x/y")),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.refs.resolve(&name("refs/heads/x/y")).unwrap(), Some(a));
    assert!(f.lock_files().is_empty());
}

#[test]
fn deleted_refs_reflog_blocks_a_nested_ref() {
    // Reflogs outlive their refs, and mirror the ref tree: the kept reflog
    // of a deleted refs/heads/a is in the way of refs/heads/a/b's reflog.
    // This is refused before anything changes.
    let f = Fixture::new();
    let a = f.commit("a");
    f.refs
        .update(&name("refs/heads/a"), a, PreviousValue::Any, "m")
        .unwrap();
    f.refs
        .delete(&name("refs/heads/a"), PreviousValue::Any, "m")
        .unwrap();
    match f
        .refs
        .update(&name("refs/heads/a/b"), a, PreviousValue::Any, "m")
    {
        Err(Error::Conflict { path, .. }) => assert_eq!(path, f.path("logs/refs/heads/a")),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.refs.read(&name("refs/heads/a/b")).unwrap(), None);
    assert!(f.lock_files().is_empty());
}

#[test]
fn empty_directories_left_behind_do_not_block_a_ref() {
    let f = Fixture::new();
    let a = f.commit("a");
    fs::create_dir_all(f.path("refs/heads/x/y/z")).unwrap();
    fs::create_dir_all(f.path("logs/refs/heads/x/q")).unwrap();
    assert_eq!(f.refs.read(&name("refs/heads/x")).unwrap(), None);
    f.refs
        .update(&name("refs/heads/x"), a, PreviousValue::MustNotExist, "m")
        .unwrap();
    assert_eq!(f.refs.resolve(&name("refs/heads/x")).unwrap(), Some(a));
    assert_eq!(f.refs.reflog(&name("refs/heads/x")).unwrap().len(), 1);
}

#[test]
fn corrupt_ref_is_reported_and_repaired_only_unconditionally() {
    let f = Fixture::new();
    let main = RefName::main_branch();
    let a = f.commit("a");
    fs::create_dir_all(f.path("refs/heads")).unwrap();
    fs::write(f.path("refs/heads/main"), b"garbage").unwrap();
    match f.refs.read(&main) {
        Err(e @ Error::CorruptRef { .. }) => {
            assert!(
                e.to_string()
                    .contains(&f.path("refs/heads/main").display().to_string()),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        f.refs.resolve(&RefName::head()),
        Err(Error::CorruptRef { .. })
    ));
    assert!(matches!(
        f.refs.update(&main, a, PreviousValue::MustNotExist, "m"),
        Err(Error::CorruptRef { .. })
    ));
    assert!(matches!(
        f.refs
            .update(&main, a, PreviousValue::MustExistAndMatch(a), "m"),
        Err(Error::CorruptRef { .. })
    ));
    f.refs
        .update(&main, a, PreviousValue::Any, "repair")
        .unwrap();
    assert_eq!(f.refs.resolve(&RefName::head()).unwrap(), Some(a));
    let log = f.refs.reflog(&main).unwrap();
    assert_eq!((log.len(), log[0].old), (1, None));
}

#[test]
fn same_value_update_is_still_logged() {
    let f = Fixture::new();
    let r = name("refs/heads/same");
    let a = f.commit("a");
    f.refs.update(&r, a, PreviousValue::Any, "one").unwrap();
    f.refs
        .update(&r, a, PreviousValue::MustExistAndMatch(a), "two")
        .unwrap();
    let log = f.refs.reflog(&r).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!((log[1].old, log[1].new), (Some(a), Some(a)));
}
