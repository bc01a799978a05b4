//! Only `sydra init` and `Engine::create` make a data directory. Every other
//! command, `Engine::open` and `Repository::open` refuse a missing
//! directory, a directory without `FORMAT` and a `FORMAT` they do not read,
//! and change nothing there (DESIGN.md §5).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use sydra_engine::{Engine, Error, Options, Repository};

/// Every path under `dir` (relative) with its content (`None` for a
/// directory): a listing that changes if anything is created, removed or
/// rewritten.
fn listing(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// A user's directory that is not a data directory.
fn foreign(dir: &Path) {
    std::fs::write(dir.join("notes.txt"), b"my notes\n").unwrap();
    std::fs::create_dir(dir.join("photos")).unwrap();
    std::fs::write(dir.join("photos/cat.jpg"), b"\xff\xd8").unwrap();
}

/// A data directory written by a newer release.
fn newer(dir: &Path) {
    let (repo, _) = Repository::init(dir).unwrap();
    drop(repo);
    std::fs::write(dir.join("FORMAT"), b"sydra 2\n").unwrap();
}

const ID: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every command that takes `--dir`, except `init` and `demo` (which make
/// their directory), with the arguments and input it needs to get going.
fn commands() -> Vec<(Vec<&'static str>, &'static str)> {
    vec![
        (vec!["hash-object", "-w", "--stdin"], "blob\n"),
        (vec!["cat-file", "-t", ID], ""),
        (vec!["ls-tree", "main"], ""),
        (vec!["update-ref", "refs/heads/x", ID], ""),
        (vec!["show-ref"], ""),
        (vec!["wal", "append"], "a record\n"),
        (vec!["wal", "append", "--sync"], "a record\n"),
        (vec!["checkpoint"], ""),
        (vec!["snapshot", "s1"], ""),
        (vec!["branch", "b", "main"], ""),
        (vec!["log"], ""),
        (vec!["replay"], ""),
        (vec!["diff", "main", "main"], ""),
        (vec!["gc"], ""),
        (vec!["fsck"], ""),
        (vec!["stats"], ""),
    ]
}

fn sydra(dir: &Path, args: &[&str], input: &str) -> Output {
    super::common::sydra_with_input(dir, args, input.as_bytes())
}

fn refused(out: &Output, args: &[&str], want: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "`sydra {}` did not fail: {err}",
        args.join(" ")
    );
    assert!(
        err.contains(want),
        "`sydra {}` said {err:?}, expected it to mention {want:?}",
        args.join(" ")
    );
}

#[test]
fn engine_open_refuses_a_missing_directory_and_creates_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("typo");
    let err = Engine::open(&dir, Options::default()).unwrap_err();
    assert!(
        matches!(err, Error::NoSuchDirectory(ref p) if *p == dir),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("sydra init"), "{msg}");
    assert!(!dir.exists(), "open created {}", dir.display());
    assert!(Repository::open(&dir).is_err());
    assert!(!dir.exists(), "Repository::open created {}", dir.display());
}

#[test]
fn engine_open_refuses_a_foreign_directory_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    foreign(dir.path());
    let before = listing(dir.path());
    let err = Engine::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, Error::NotARepository(_)), "{err}");
    assert!(err.to_string().contains("sydra init"), "{err}");
    assert!(Repository::open(dir.path()).is_err());
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn engine_open_refuses_a_newer_format_and_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    newer(dir.path());
    let before = listing(dir.path());
    let err = Engine::open(dir.path(), Options::default()).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedFormat { ref found, .. } if found == "sydra 2"),
        "{err}"
    );
    assert!(Repository::open(dir.path()).is_err());
    assert!(Engine::create(dir.path(), Options::default()).is_err());
    assert!(Repository::init(dir.path()).is_err());
    assert_eq!(listing(dir.path()), before);
    assert_eq!(
        std::fs::read(dir.path().join("FORMAT")).unwrap(),
        b"sydra 2\n"
    );
}

#[test]
fn engine_create_makes_a_store_once_and_then_opens_it() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("new");
    let e = Engine::create(&dir, Options::default()).unwrap();
    assert!(e.open_report().created);
    e.append(b"x").unwrap();
    drop(e);
    let e = Engine::create(&dir, Options::default()).unwrap();
    assert!(!e.open_report().created);
    drop(e);
    let e = Engine::open(&dir, Options::default()).unwrap();
    assert!(!e.open_report().created);
}

#[test]
fn engine_create_refuses_a_foreign_non_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    foreign(dir.path());
    let before = listing(dir.path());
    let err = Engine::create(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, Error::NotEmpty { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn every_command_but_init_refuses_a_missing_directory_and_creates_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("typo");
    for (args, input) in commands() {
        let out = sydra(&dir, &args, input);
        refused(&out, &args, &dir.display().to_string());
        refused(&out, &args, "sydra init");
        assert!(
            !dir.exists(),
            "`sydra {}` created the directory",
            args.join(" ")
        );
    }
}

#[test]
fn every_command_but_init_refuses_a_foreign_directory_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    foreign(dir.path());
    let before = listing(dir.path());
    for (args, input) in commands() {
        let out = sydra(dir.path(), &args, input);
        refused(&out, &args, "not a sydra data directory");
        assert_eq!(
            listing(dir.path()),
            before,
            "`sydra {}` changed the directory",
            args.join(" ")
        );
    }
}

#[test]
fn every_command_refuses_a_newer_format_and_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    newer(dir.path());
    let before = listing(dir.path());
    let mut all = commands();
    all.push((vec!["init"], ""));
    for (args, input) in all {
        let out = sydra(dir.path(), &args, input);
        refused(&out, &args, "\"sydra 2\"");
        assert_eq!(
            listing(dir.path()),
            before,
            "`sydra {}` changed the directory",
            args.join(" ")
        );
    }
    assert_eq!(
        std::fs::read(dir.path().join("FORMAT")).unwrap(),
        b"sydra 2\n"
    );
}

#[test]
fn init_creates_then_reinitializes_and_refuses_a_foreign_directory() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    let out = sydra(&dir, &["init"], "");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Initialized empty"));
    let made = listing(&dir);
    let out = sydra(&dir, &["init"], "");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Reinitialized"));
    assert_eq!(listing(&dir), made);
    // Now every command works on it.
    let out = sydra(&dir, &["wal", "append"], "r\n");
    assert!(out.status.success(), "{out:?}");

    let user = tempfile::tempdir().unwrap();
    foreign(user.path());
    let before = listing(user.path());
    let out = sydra(user.path(), &["init"], "");
    refused(&out, &["init"], "not empty");
    assert_eq!(listing(user.path()), before);

    // An empty directory is fine: that is where `mkdir x && sydra init` lands.
    let empty = tempfile::tempdir().unwrap();
    let out = sydra(empty.path(), &["init"], "");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn init_finishes_a_directory_an_interrupted_init_left() {
    // Layout::create makes the directories first and writes FORMAT last; a
    // crash between leaves only names init itself creates.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    std::fs::create_dir_all(dir.join("refs/heads")).unwrap();
    std::fs::write(dir.join("FORMAT.tmp"), b"sydra").unwrap();
    let out = sydra(&dir, &["init"], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(dir.join("FORMAT")).unwrap(), b"sydra 1\n");
    Engine::open(&dir, Options::default()).unwrap();
}

#[test]
fn a_store_made_before_init_wrote_lock_files_still_opens_and_collects() {
    let dir = tempfile::tempdir().unwrap();
    drop(Engine::create(dir.path(), Options::default()).unwrap());
    // What an older release's init left: no LOCK (the engine made it on
    // first open) and no gc.lock (the first GC made it).
    std::fs::remove_file(dir.path().join("LOCK")).unwrap();
    std::fs::remove_file(dir.path().join("gc.lock")).unwrap();
    let e = Engine::open(dir.path(), Options::default()).unwrap();
    assert!(dir.path().join("LOCK").is_file());
    assert!(dir.path().join("gc.lock").is_file());
    std::fs::remove_file(dir.path().join("gc.lock")).unwrap();
    e.gc(&sydra_engine::gc::GcOptions::default()).unwrap();
    assert!(dir.path().join("gc.lock").is_file());
    drop(e);
    // An older release wrote "<pid>\n" into LOCK: still read, then
    // overwritten in place with the fixed-width record.
    std::fs::write(dir.path().join("LOCK"), b"12345\n").unwrap();
    let e = Engine::open(dir.path(), Options::default()).unwrap();
    let pid = std::fs::read_to_string(dir.path().join("LOCK")).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
    assert_eq!(pid.len(), 11);
    drop(e);
}
