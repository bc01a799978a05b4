use std::fs;

use sydra_refs::{Error, PreviousValue, RefName, Target};

use crate::common::{Fixture, name};

#[test]
fn existing_lock_file_gives_locked() {
    let f = Fixture::new();
    let main = RefName::main_branch();
    let (a, b) = (f.commit("a"), f.commit("b"));
    f.refs.update(&main, a, PreviousValue::Any, "m").unwrap();
    // As left by a crashed or concurrent writer.
    fs::write(f.path("refs/heads/main.lock"), b"partial").unwrap();
    match f.refs.update(&main, b, PreviousValue::Any, "m") {
        Err(e @ Error::Locked { .. }) => {
            let lock = f.path("refs/heads/main.lock");
            assert_eq!(
                e.to_string(),
                format!(
                    "ref refs/heads/main is locked by another update ({} exists)",
                    lock.display()
                )
            );
            assert!(matches!(e, Error::Locked { ref lock_path, .. } if *lock_path == lock));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        f.refs
            .delete(&main, PreviousValue::Any, "m")
            .unwrap_err()
            .is_locked()
    );
    // The other writer's lock is not ours to remove.
    assert_eq!(
        fs::read(f.path("refs/heads/main.lock")).unwrap(),
        b"partial"
    );
    assert_eq!(f.refs.resolve(&main).unwrap(), Some(a));
    // Readers are not blocked by locks.
    assert_eq!(f.refs.read(&main).unwrap(), Some(Target::Object(a)));
    assert_eq!(f.refs.list("refs/").unwrap().len(), 1);
}

#[test]
fn remove_stale_locks_clears_every_lock_and_nothing_else() {
    let f = Fixture::new();
    let main = RefName::main_branch();
    let a = f.commit("a");
    f.refs.update(&main, a, PreviousValue::Any, "m").unwrap();
    fs::create_dir_all(f.path("refs/tags/deep")).unwrap();
    let stale = [
        f.path("HEAD.lock"),
        f.path("logs/refs/heads/main.lock"),
        f.path("refs/heads/main.lock"),
        f.path("refs/tags/deep/x.lock"),
    ];
    for p in &stale {
        fs::write(p, b"").unwrap();
    }
    assert!(
        f.refs
            .set_symbolic(&RefName::head(), &name("refs/heads/other"), "m")
            .unwrap_err()
            .is_locked()
    );

    let removed = f.refs.remove_stale_locks().unwrap().unwrap();
    assert_eq!(removed, stale.to_vec());
    assert!(f.lock_files().is_empty());
    assert_eq!(f.refs.resolve(&main).unwrap(), Some(a));
    assert_eq!(f.refs.reflog(&main).unwrap().len(), 1);
    assert!(f.path("HEAD").is_file());

    f.refs
        .update(&main, a, PreviousValue::MustExistAndMatch(a), "after")
        .unwrap();
    f.refs
        .set_symbolic(&RefName::head(), &name("refs/heads/other"), "m")
        .unwrap();
    assert_eq!(
        f.refs.remove_stale_locks().unwrap(),
        Some(Vec::<std::path::PathBuf>::new())
    );
}
