use std::fs;

use sydra_refs::{Error, PreviousValue, RefName};

use crate::common::{Fixture, name};

#[test]
fn records_every_change_oldest_first() {
    let f = Fixture::new();
    let r = name("refs/heads/logged");
    let (a, b) = (f.commit("a"), f.commit("b"));
    assert!(f.refs.reflog(&r).unwrap().is_empty());
    f.refs
        .update(&r, a, PreviousValue::MustNotExist, "create")
        .unwrap();
    f.refs
        .update(
            &r,
            b,
            PreviousValue::MustExistAndMatch(a),
            "advance\r\nwith newline",
        )
        .unwrap();
    f.refs
        .delete(&r, PreviousValue::MustExistAndMatch(b), "delete")
        .unwrap();
    f.refs
        .update(&r, a, PreviousValue::MustNotExist, "")
        .unwrap();

    let log = f.refs.reflog(&r).unwrap();
    let got: Vec<_> = log
        .iter()
        .map(|e| (e.old, e.new, e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (None, Some(a), "create"),
            (Some(a), Some(b), "advance  with newline"),
            (Some(b), None, "delete"),
            (None, Some(a), ""),
        ]
    );
    assert!(
        log.windows(2)
            .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns)
    );

    // The file is exactly the formatted lines.
    let text = fs::read_to_string(f.path("logs/refs/heads/logged")).unwrap();
    let expected: String = log.iter().map(|e| format!("{e}\n")).collect();
    assert_eq!(text, expected);
    assert!(text.starts_with(&format!("{} {a} ", "0".repeat(64))));
}

#[test]
fn corrupt_line_is_an_error_naming_file_and_line() {
    let f = Fixture::new();
    let main = RefName::main_branch();
    let a = f.commit("a");
    f.refs.update(&main, a, PreviousValue::Any, "one").unwrap();
    f.refs.update(&main, a, PreviousValue::Any, "two").unwrap();
    let path = f.path("logs/refs/heads/main");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("this is not a reflog line\n");
    fs::write(&path, &text).unwrap();
    match f.refs.reflog(&main) {
        Err(e @ Error::CorruptReflog { line: 3, .. }) => {
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            assert!(e.to_string().contains("line 3"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn torn_last_line_is_ignored_then_replaced() {
    let f = Fixture::new();
    let main = RefName::main_branch();
    let (a, b) = (f.commit("a"), f.commit("b"));
    f.refs.update(&main, a, PreviousValue::Any, "one").unwrap();
    let path = f.path("logs/refs/heads/main");
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&bytes.clone()[..40]);
    fs::write(&path, &bytes).unwrap();
    assert_eq!(f.refs.reflog(&main).unwrap().len(), 1);
    f.refs.update(&main, b, PreviousValue::Any, "two").unwrap();
    let log = f.refs.reflog(&main).unwrap();
    assert_eq!(
        log.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
}
