use std::fs;

use sydra_refs::{Error, MAX_SYMBOLIC_DEPTH, PreviousValue, RefName, Target};

use crate::common::{Fixture, name};

#[test]
fn head_follows_its_branch() {
    let f = Fixture::new();
    let head = RefName::head();
    assert_eq!(fs::read(f.path("HEAD")).unwrap(), b"ref: refs/heads/main\n");
    assert_eq!(
        f.refs.read(&head).unwrap(),
        Some(Target::Symbolic(RefName::main_branch()))
    );
    // Unborn branch.
    assert_eq!(f.refs.resolve(&head).unwrap(), None);

    let (a, b) = (f.commit("a"), f.commit("b"));
    f.refs
        .update(&RefName::main_branch(), a, PreviousValue::MustNotExist, "m")
        .unwrap();
    assert_eq!(f.refs.resolve(&head).unwrap(), Some(a));

    let dev = name("refs/heads/dev");
    f.refs
        .update(&dev, b, PreviousValue::MustNotExist, "m")
        .unwrap();
    f.refs.set_symbolic(&head, &dev, "switch to dev").unwrap();
    assert_eq!(fs::read(f.path("HEAD")).unwrap(), b"ref: refs/heads/dev\n");
    assert_eq!(f.refs.resolve(&head).unwrap(), Some(b));
    let log = f.refs.reflog(&head).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].old, log[0].new, log[0].message.as_str()),
        (Some(a), Some(b), "switch to dev")
    );
}

#[test]
fn symbolic_refs_may_chain_up_to_the_depth_limit() {
    let f = Fixture::new();
    let a = f.commit("a");
    let names: Vec<RefName> = (0..=MAX_SYMBOLIC_DEPTH + 1)
        .map(|i| name(&format!("refs/chain/{i}")))
        .collect();
    f.refs
        .update(&names[0], a, PreviousValue::Any, "m")
        .unwrap();
    for i in 1..=MAX_SYMBOLIC_DEPTH {
        f.refs.set_symbolic(&names[i], &names[i - 1], "m").unwrap();
    }
    assert_eq!(f.refs.resolve(&names[MAX_SYMBOLIC_DEPTH]).unwrap(), Some(a));
    // One more hop is refused when set, and when found on disk.
    let e = f
        .refs
        .set_symbolic(
            &names[MAX_SYMBOLIC_DEPTH + 1],
            &names[MAX_SYMBOLIC_DEPTH],
            "m",
        )
        .unwrap_err();
    assert!(matches!(e, Error::SymbolicTooDeep { .. }), "{e}");
    assert_eq!(f.refs.read(&names[MAX_SYMBOLIC_DEPTH + 1]).unwrap(), None);
    let deepest = &names[MAX_SYMBOLIC_DEPTH + 1];
    fs::write(
        f.refs.path_of(deepest),
        format!("ref: {}\n", names[MAX_SYMBOLIC_DEPTH]),
    )
    .unwrap();
    assert!(matches!(
        f.refs.resolve(deepest),
        Err(Error::SymbolicTooDeep { .. })
    ));
}

#[test]
fn loops_are_errors() {
    let f = Fixture::new();
    let (x, y) = (name("refs/x"), name("refs/y"));
    f.refs.set_symbolic(&y, &x, "m").unwrap();
    // x -> y -> x would loop: refused, nothing written.
    match f.refs.set_symbolic(&x, &y, "m") {
        Err(e @ Error::SymbolicLoop { .. }) => assert_eq!(
            e.to_string(),
            "symbolic refs loop: refs/x -> refs/y -> refs/x"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.refs.read(&x).unwrap(), None);
    // A loop made behind our back is reported, not followed forever.
    fs::write(f.refs.path_of(&x), b"ref: refs/y\n").unwrap();
    assert!(matches!(
        f.refs.resolve(&x),
        Err(Error::SymbolicLoop { .. })
    ));
    assert!(matches!(f.refs.resolve(&RefName::head()), Ok(None)));
}

#[test]
fn bad_symbolic_targets_are_refused() {
    let f = Fixture::new();
    let x = name("refs/x");
    assert!(matches!(
        f.refs.set_symbolic(&x, &x, "m"),
        Err(Error::BadSymbolicTarget { .. })
    ));
    assert!(matches!(
        f.refs.set_symbolic(&x, &RefName::head(), "m"),
        Err(Error::BadSymbolicTarget { .. })
    ));
    // On disk, `ref: HEAD` is a corrupt file.
    fs::write(f.refs.path_of(&x), b"ref: HEAD\n").unwrap();
    assert!(matches!(f.refs.read(&x), Err(Error::CorruptRef { .. })));
}

#[test]
fn updating_a_symbolic_ref_replaces_it() {
    // Updates do not dereference: the symbolic ref itself becomes direct.
    let f = Fixture::new();
    let a = f.commit("a");
    let (sym, real) = (name("refs/sym"), name("refs/real"));
    f.refs.update(&real, a, PreviousValue::Any, "m").unwrap();
    f.refs.set_symbolic(&sym, &real, "m").unwrap();
    // A symbolic ref never matches an object id.
    assert!(
        f.refs
            .update(&sym, a, PreviousValue::MustExistAndMatch(a), "m")
            .unwrap_err()
            .is_mismatch()
    );
    f.refs.update(&sym, a, PreviousValue::Any, "m").unwrap();
    assert_eq!(f.refs.read(&sym).unwrap(), Some(Target::Object(a)));
    assert_eq!(f.refs.read(&real).unwrap(), Some(Target::Object(a)));
}
