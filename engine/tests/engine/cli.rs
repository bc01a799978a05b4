//! The `sydra` command's contract: exit status (0 success, 1 a failed check
//! or operation, 2 a usage error) and how it prints what it is given.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn sydra(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sydra"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        stderr(o)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A store with one checkpoint of three records.
fn store_with_a_checkpoint(dir: &Path) {
    ok(&sydra(dir, &["init"]));
    ok(&super::common::sydra_with_input(
        dir,
        &["wal", "append"],
        b"a\nb\nc\n",
    ));
    ok(&sydra(dir, &["checkpoint"]));
}

#[test]
fn log_of_an_empty_store_is_a_failed_operation_not_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    ok(&sydra(dir.path(), &["init"]));
    let out = sydra(dir.path(), &["log"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no commits yet"), "{}", stderr(&out));
}

#[test]
fn demo_arguments_out_of_range_are_usage_errors_and_touch_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    for args in [
        ["--hours", "2"],
        ["--hours", "1"],
        ["--hours", "0"],
        ["--series", "0"],
        ["--writers", "0"],
    ] {
        let mut all = vec!["demo"];
        all.extend(args);
        let out = sydra(&demo, &all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(args[0]), "{args:?}: {}", stderr(&out));
        assert!(!demo.exists(), "{args:?} created the demo directory");
    }
}

#[test]
fn replay_at_a_bad_time_is_a_usage_error_naming_what_was_typed() {
    let dir = tempfile::tempdir().unwrap();
    store_with_a_checkpoint(dir.path());
    for bad in [
        "notatime",
        "2026-11-21",
        "2026-02-31T00:00:00Z",
        "2026-11-21T10:30:00+99:99",
        "9999-01-01T00:00:00Z",
    ] {
        let out = sydra(dir.path(), &["replay", "--at", bad]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains(bad), "{bad}: {err}");
        assert!(
            !err.contains("@{"),
            "{bad}: names a revision never typed: {err}"
        );
    }
    // A well-formed time before the first commit is a failed operation that
    // names the ref, not a made-up `ref@{time}`.
    let out = sydra(dir.path(), &["replay", "--at", "1000"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refs/heads/main"), "{err}");
    assert!(!err.contains("@{"), "{err}");
    // And a time after it replays that checkpoint: it applied nothing, so
    // all three records.
    let out = ok(&sydra(dir.path(), &["replay", "--at", "4000000000"]));
    assert_eq!(out, "1\ta\n2\tb\n3\tc\n");
}

#[test]
fn names_with_control_characters_are_quoted_as_git_quotes_them() {
    use sydra_engine::Repository;
    use sydra_engine::objects::{Entry, Kind, Tree};
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(dir.path()).unwrap();
    let blob = repo.objects().put(Kind::Blob, b"x").unwrap();
    let blob2 = repo.objects().put(Kind::Blob, b"y").unwrap();
    let entry = |name: &str, id| Entry {
        kind: Kind::Blob,
        name: name.into(),
        id,
    };
    let tree = |entries| {
        let t = Tree::from_entries(entries).unwrap();
        repo.objects().put(Kind::Tree, &t.encode()).unwrap()
    };
    // A name with a newline could otherwise pass for two entries.
    let forged =
        "evil\nblob 0000000000000000000000000000000000000000000000000000000000000000\tfake";
    let inner = tree(vec![entry("a\tb", blob), entry("q\"\\", blob)]);
    let old = tree(vec![
        entry(forged, blob),
        entry("plain", blob),
        Entry {
            kind: Kind::Tree,
            name: "dir\u{1}".into(),
            id: inner,
        },
    ]);
    let new = tree(vec![entry(forged, blob2), entry("plain", blob)]);
    let quoted_forged =
        "\"evil\\nblob 0000000000000000000000000000000000000000000000000000000000000000\\tfake\"";

    let top = ok(&sydra(dir.path(), &["ls-tree", &old.to_hex()]));
    assert_eq!(top.lines().count(), 3, "{top}");
    assert!(top.contains(&format!("\t{quoted_forged}\n")), "{top}");
    assert!(top.contains("\tplain\n"), "{top}");
    assert!(top.contains("\t\"dir\\001\"\n"), "{top}");

    let all = ok(&sydra(dir.path(), &["ls-tree", "-r", &old.to_hex()]));
    assert_eq!(all.lines().count(), 4, "{all}");
    assert!(all.contains("\t\"dir\\001/a\\tb\"\n"), "{all}");
    assert!(all.contains("\t\"dir\\001/q\\\"\\\\\"\n"), "{all}");

    let cat = ok(&sydra(dir.path(), &["cat-file", "-p", &old.to_hex()]));
    assert_eq!(cat, top);

    let diff = ok(&sydra(dir.path(), &["diff", &old.to_hex(), &new.to_hex()]));
    assert_eq!(diff.lines().count(), 3, "{diff}");
    assert!(diff.contains(&format!("\t{quoted_forged}\n")), "{diff}");
    assert!(diff.contains("\t\"dir\\001/a\\tb\"\n"), "{diff}");
}

#[test]
fn fsck_summarises_thousands_of_leftovers_and_json_lists_them_all() {
    let dir = tempfile::tempdir().unwrap();
    store_with_a_checkpoint(dir.path());
    // What an interrupted bulk write leaves: temp files of a process that is
    // gone (pid_max is at most 2^22, so this pid cannot be running).
    let tmp = dir.path().join("objects").join("tmp");
    for n in 0..2000 {
        std::fs::write(tmp.join(format!("obj-4194305-{n}.tmp")), b"partial").unwrap();
    }
    let out = sydra(dir.path(), &["fsck"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "leftovers are notes: {}",
        stderr(&out)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let leftover_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("note: leftover:"))
        .collect();
    assert_eq!(leftover_lines.len(), 4, "{text}");
    assert!(
        leftover_lines[3].contains("1997 more")
            && leftover_lines[3].contains("2000 leftover notes in all"),
        "{text}"
    );
    assert!(
        text.lines().last().unwrap().starts_with("checked "),
        "{text}"
    );

    let out = sydra(dir.path(), &["fsck", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes = v["notes"].as_array().unwrap();
    assert_eq!(
        notes.iter().filter(|n| n["check"] == "leftover").count(),
        2000
    );
}
