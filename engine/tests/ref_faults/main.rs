//! Ref updates with a fault injected at each step after the checks: the
//! reflog append and its fsync, the rename, the directory fsync. Checks:
//! - the result says what happened to the ref: an error that is not
//!   "committed" leaves the ref as it was; success, or an error that says
//!   the change was committed, means the ref moved;
//! - a checkpoint never reports a commit that landed as not done, and a
//!   multi-ref transaction that fails after its renames names every ref
//!   it changed;
//! - fsck of the result finds no problem: a fault between the reflog line
//!   and the rename leaves what a kill there leaves, which fsck recognises
//!   (a note), and nothing else may leave the reflog disagreeing.
//!
//! And a transfer that finds its WAL ranges already stored still syncs
//! their directories (a fault there fails it).
//!
//! Faults are process-global: every test here holds `SERIAL`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Mutex;

use sydra_engine::gc::{FsckOptions, NoProgress};
use sydra_engine::maintenance;
use sydra_engine::objects::fault::{self, Fault};
use sydra_engine::objects::{Commit, Kind, ObjectId};
use sydra_engine::refs::{PreviousValue, RefName};
use sydra_engine::{Engine, Error, Repository, remote};

static SERIAL: Mutex<()> = Mutex::new(());

/// The steps of an update from the first write that is not rolled back.
const STEPS: &[&str] = &[
    "refs.reflog.write",
    "refs.reflog.sync",
    "refs.rename",
    "refs.dir.sync",
];

fn commit(repo: &Repository, parent: Option<ObjectId>, msg: &str) -> ObjectId {
    let tree = repo.objects().put(Kind::Tree, &0u32.to_le_bytes()).unwrap();
    let c = Commit {
        tree,
        parents: parent.into_iter().collect(),
        timestamp: sydra_engine::now_ns(),
        message: msg.into(),
        ..Commit::default()
    };
    repo.objects()
        .put(Kind::Commit, &c.encode().unwrap())
        .unwrap()
}

/// fsck's problems and notes.
fn fsck(dir: &Path) -> (Vec<String>, Vec<String>) {
    let repo = Repository::open(dir).unwrap();
    let report = maintenance::fsck(&repo, &FsckOptions::default(), &NoProgress).unwrap();
    let all = |v: &[sydra_engine::gc::Finding]| v.iter().map(|p| p.to_string()).collect();
    (all(&report.problems), all(&report.notes))
}

fn fsck_problems(dir: &Path) -> Vec<String> {
    fsck(dir).0
}

/// Whether the reflog line is written but the rename is not: a kill
/// between the two leaves the same files (and a lock file, which the next
/// engine open removes).
fn stops_between_reflog_and_rename(point: &str) -> bool {
    matches!(point, "refs.reflog.sync" | "refs.rename")
}

/// Whether `e` says the change was made (the ref moved) despite failing.
fn committed(e: &sydra_engine::refs::Error) -> bool {
    e.committed().is_some()
}

#[test]
fn a_failed_step_of_a_ref_update_is_reported_as_what_it_did_to_the_ref() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for &point in STEPS {
        fault::reset();
        let dir = tempfile::tempdir().unwrap();
        let (repo, _) = Repository::init(dir.path()).unwrap();
        let main = RefName::main_branch();
        let a = commit(&repo, None, "a");
        repo.refs()
            .update(&main, a, PreviousValue::MustNotExist, "a")
            .unwrap();
        let b = commit(&repo, Some(a), "b");
        fault::arm(point, Fault::EioOnce);
        let r = repo
            .refs()
            .update(&main, b, PreviousValue::MustExistAndMatch(a), "b");
        assert_eq!(fault::injected(), 1, "{point} not reached");
        fault::reset();
        let now = repo.refs().resolve(&main).unwrap();
        match &r {
            Ok(()) => assert_eq!(now, Some(b), "{point}: Ok but the ref did not move"),
            Err(e) if committed(e) => {
                assert_eq!(now, Some(b), "{point}: '{e}' but the ref did not move")
            }
            Err(e) => assert_eq!(now, Some(a), "{point}: '{e}' but the ref moved"),
        }
        let (problems, notes) = fsck(dir.path());
        assert!(problems.is_empty(), "{point}: fsck found {problems:?}");
        let noted = notes.iter().any(|n| n.contains("did not land"));
        assert_eq!(
            noted,
            stops_between_reflog_and_rename(point),
            "{point}: notes {notes:?}"
        );
        // The next update goes through and fsck stays clean.
        let c = commit(&repo, now, "c");
        repo.refs()
            .update(&main, c, PreviousValue::Any, "c")
            .unwrap();
        let problems = fsck_problems(dir.path());
        assert!(
            problems.is_empty(),
            "{point}, then c: fsck found {problems:?}"
        );
    }
}

#[test]
fn a_checkpoint_whose_commit_landed_is_never_reported_as_not_done() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for &point in STEPS {
        fault::reset();
        let dir = tempfile::tempdir().unwrap();
        Repository::init(dir.path()).unwrap();
        let e = Engine::open(dir.path(), Default::default()).unwrap();
        e.append(b"one").unwrap();
        let first = e.checkpoint(None, "first").unwrap();
        e.append(b"two").unwrap();
        fault::arm(point, Fault::EioOnce);
        let r = e.checkpoint(None, "second");
        assert_eq!(fault::injected(), 1, "{point} not reached");
        fault::reset();
        let head = e.head().unwrap();
        match &r {
            Ok(c) => assert_eq!(head, Some(c.commit), "{point}"),
            Err(Error::Refs(err)) if committed(err) => {
                assert_ne!(
                    head,
                    Some(first.commit),
                    "{point}: '{err}' but main did not move"
                )
            }
            Err(err) => assert_eq!(
                head,
                Some(first.commit),
                "{point}: checkpoint failed ('{err}') but main moved"
            ),
        }
        drop(e);
        let problems = fsck_problems(dir.path());
        assert!(problems.is_empty(), "{point}: fsck found {problems:?}");
    }
}

/// The recognition is exact: a reflog that lost its last line (or a ref
/// moved behind the log's back) is still damage.
#[test]
fn a_reflog_missing_its_last_line_is_still_a_problem() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(dir.path()).unwrap();
    let main = RefName::main_branch();
    let a = commit(&repo, None, "a");
    let b = commit(&repo, Some(a), "b");
    repo.refs()
        .update(&main, a, PreviousValue::Any, "a")
        .unwrap();
    repo.refs()
        .update(&main, b, PreviousValue::Any, "b")
        .unwrap();
    let log = repo.refs().reflog_path_of(&main);
    let text = std::fs::read_to_string(&log).unwrap();
    let first = text.lines().next().unwrap();
    std::fs::write(&log, format!("{first}\n")).unwrap();
    let problems = fsck_problems(dir.path());
    assert!(
        problems.len() == 1 && problems[0].contains("a reflog line was lost"),
        "{problems:?}"
    );
}

/// A failure after the renames of a multi-ref transaction (the directory
/// fsync) names every ref it changed, and each moved with its reflog line.
#[test]
fn a_transaction_that_fails_after_its_renames_names_every_ref_it_changed() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    fault::reset();
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(dir.path()).unwrap();
    let a = commit(&repo, None, "a");
    let (x, y) = (
        RefName::new("refs/heads/x").unwrap(),
        RefName::new("refs/heads/y").unwrap(),
    );
    // The refs and their reflogs exist, so no directory is created (and
    // fsynced) before the renames.
    for name in [&x, &y] {
        repo.refs()
            .update(name, a, PreviousValue::MustNotExist, "create")
            .unwrap();
    }
    let b = commit(&repo, Some(a), "b");
    fault::arm("refs.dir.sync", Fault::EioOnce);
    let r = repo
        .refs()
        .transaction()
        .update(&y, b, PreviousValue::MustExistAndMatch(a), "y")
        .update(&x, b, PreviousValue::MustExistAndMatch(a), "x")
        .commit();
    fault::reset();
    let e = r.unwrap_err();
    assert_eq!(e.committed(), Some(&[x.clone(), y.clone()][..]), "{e}");
    assert!(e.is_sync_failure(), "{e}");
    assert!(
        e.to_string().contains("refs/heads/x, refs/heads/y changed"),
        "{e}"
    );
    for name in [&x, &y] {
        assert_eq!(repo.refs().resolve(name).unwrap(), Some(b));
        assert_eq!(
            repo.refs().reflog(name).unwrap().last().unwrap().new,
            Some(b)
        );
    }
    assert!(fsck_problems(dir.path()).is_empty());
}

/// A transfer whose WAL ranges are all here already (an earlier transfer
/// stored them, or died between storing them and syncing their
/// directories) still makes their directory entries durable before it
/// returns, and so before any ref can depend on them: a failed directory
/// sync fails the transfer.
#[test]
fn a_transfer_that_skips_ranges_it_holds_still_syncs_their_directories() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    fault::reset();
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    Repository::init(&src).unwrap();
    let e = Engine::open(&src, Default::default()).unwrap();
    for i in 0..50u32 {
        e.append(format!("record {i}").as_bytes()).unwrap();
    }
    e.checkpoint(None, "first").unwrap();
    drop(e);
    let from = Repository::open(&src).unwrap();
    let tips = vec![from.resolve("main").unwrap()];
    let none = std::collections::HashSet::new();
    let t = remote::send(&from, &tips, &none, &|_| Ok(false), from.objects(), None).unwrap();
    let bytes = std::fs::read(&t.path).unwrap();
    assert!(
        !remote::parse_transfer(&bytes).unwrap().ranges.is_empty(),
        "the transfer carries WAL ranges"
    );
    let (to, _) = Repository::init(&dst).unwrap();
    remote::receive_bytes(&to, &bytes, "test").unwrap();
    // Every range is held now: the same transfer again skips them all.
    fault::arm("walchunks.dir.sync", Fault::EioAlways);
    let r = remote::receive_bytes(&to, &bytes, "test");
    let injected = fault::injected();
    fault::reset();
    assert!(injected > 0, "no directory of a held range was synced");
    let err = r.expect_err("a failed sync of a held range's directory passed");
    assert!(err.to_string().contains("walchunks"), "{err}");
    remote::receive_bytes(&to, &bytes, "test").unwrap();
}
