use std::fs;

use sydra_refs::{Error, PreviousValue, RefName, Target};

use crate::common::{Fixture, name};

fn names(v: &[(RefName, Target)]) -> Vec<&str> {
    v.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn lists_by_prefix_sorted() {
    let f = Fixture::new();
    let a = f.commit("a");
    for r in [
        "refs/heads/main",
        "refs/heads/zeta",
        "refs/heads/a/b",
        "refs/heads/a-b",
        "refs/snapshots/s1",
        "refs/tags/t",
    ] {
        f.refs.update(&name(r), a, PreviousValue::Any, "m").unwrap();
    }
    f.refs
        .set_symbolic(&name("refs/heads/alias"), &name("refs/heads/main"), "m")
        .unwrap();

    let heads = f.refs.list("refs/heads/").unwrap();
    assert_eq!(
        names(&heads),
        [
            "refs/heads/a-b",
            "refs/heads/a/b",
            "refs/heads/alias",
            "refs/heads/main",
            "refs/heads/zeta"
        ]
    );
    assert_eq!(heads[2].1, Target::Symbolic(name("refs/heads/main")));
    assert_eq!(heads[3].1, Target::Object(a));

    assert_eq!(
        names(&f.refs.list("refs/heads/a").unwrap()),
        ["refs/heads/a-b", "refs/heads/a/b", "refs/heads/alias"]
    );
    assert_eq!(
        names(&f.refs.list("refs/heads/a/").unwrap()),
        ["refs/heads/a/b"]
    );
    assert_eq!(
        names(&f.refs.list("refs/s").unwrap()),
        ["refs/snapshots/s1"]
    );
    assert_eq!(f.refs.list("refs/").unwrap().len(), 7);
    assert_eq!(f.refs.list("refs").unwrap().len(), 7);
    let all = f.refs.list("").unwrap();
    assert_eq!(all.len(), 8);
    assert_eq!(
        all[0],
        (RefName::head(), Target::Symbolic(RefName::main_branch()))
    );
    assert_eq!(names(&f.refs.list("HEAD").unwrap()), ["HEAD"]);
    for nothing in [
        "refs/nope/",
        "refs/heads/main/",
        "refs/heads/mainx",
        "x",
        "refs/../",
        "refs/heads/../../",
        "/",
    ] {
        assert!(f.refs.list(nothing).unwrap().is_empty(), "{nothing}");
    }
}

#[test]
fn lock_files_are_skipped_and_stray_files_reported() {
    let f = Fixture::new();
    let a = f.commit("a");
    f.refs
        .update(&name("refs/heads/main"), a, PreviousValue::Any, "m")
        .unwrap();
    fs::write(f.path("refs/heads/other.lock"), b"").unwrap();
    assert_eq!(names(&f.refs.list("refs/").unwrap()), ["refs/heads/main"]);

    fs::write(f.path("refs/heads/bad name"), format!("{a}\n")).unwrap();
    match f.refs.list("refs/") {
        Err(e @ Error::StrayFile { .. }) => assert!(e.to_string().contains("bad name"), "{e}"),
        other => panic!("{other:?}"),
    }
    // Outside the prefix, it is not looked at.
    assert_eq!(f.refs.list("refs/heads/m").unwrap().len(), 1);
    fs::remove_file(f.path("refs/heads/bad name")).unwrap();

    fs::write(f.path("refs/heads/corrupt"), b"nonsense\n").unwrap();
    assert!(matches!(
        f.refs.list("refs/"),
        Err(Error::CorruptRef { .. })
    ));
}
