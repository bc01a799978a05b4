//! Replication between data directories: clone, fetch, push.

use std::path::Path;

use sydra_engine::gc::{FsckOptions, GcOptions, NoProgress};
use sydra_engine::remote::{self, Outcome};
use sydra_engine::series::{CompactOptions, SeriesKey, Value};
use sydra_engine::wal::SyncMode;
use sydra_engine::{Engine, Replay, Repository, Tail, maintenance};

use super::common::{collect, opts, sydra_with_input};

fn key(host: u32) -> SeriesKey {
    SeriesKey::new("cpu", [("host".to_string(), format!("h{host}"))], "usage").unwrap()
}

/// Points `from..to` (seconds) for 5 series, one appender commit each
/// second.
fn ingest(e: &Engine, from: i64, to: i64) {
    let refs: Vec<_> = (0..5).map(|h| e.series(&key(h)).unwrap()).collect();
    for t in from..to {
        let mut a = e.appender();
        for (h, s) in refs.iter().enumerate() {
            a.append(
                *s,
                t * 1_000_000_000,
                Value::F64((t * 10 + h as i64) as f64),
            )
            .unwrap();
        }
        a.commit().unwrap();
    }
}

/// A source with compacted history, a snapshot, and points past the last
/// compaction (so its commits' replay reads WAL ranges).
fn source(dir: &Path) -> Engine {
    let e = Engine::create(dir, opts(SyncMode::Never, 64 << 10)).unwrap();
    ingest(&e, 0, 4000);
    e.compact(CompactOptions::default()).unwrap();
    ingest(&e, 4000, 4200);
    e.checkpoint(None, "more").unwrap();
    e.snapshot(Some("s1")).unwrap();
    ingest(&e, 4200, 4300);
    e.checkpoint(None, "head").unwrap();
    e
}

fn fsck_clean(dir: &Path) {
    let repo = Repository::open(dir).unwrap();
    let r = maintenance::fsck(&repo, &FsckOptions::default(), &NoProgress).unwrap();
    assert!(r.is_clean(), "{}: {:#?}", dir.display(), r.problems);
}

fn replay(dir: &Path, rev: &str) -> Vec<(u64, Vec<u8>)> {
    let repo = Repository::open(dir).unwrap();
    let id = repo.resolve(rev).unwrap();
    collect(Replay::new(repo.objects(), repo.layout().wal(), Some(id), Tail::None).unwrap())
}

fn as_of(dir: &Path, rev: &str) -> Vec<Vec<(i64, Value)>> {
    let e = Engine::open(dir, opts(SyncMode::Never, 64 << 10)).unwrap();
    let v = e.view(Some(rev)).unwrap();
    (0..5).map(|h| v.points(&key(h)).unwrap()).collect()
}

#[test]
fn a_clone_replays_and_answers_as_of_every_ref_exactly_as_its_source() {
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    drop(source(&src));
    let (_, s) = remote::clone(src.to_str().unwrap(), &dst).unwrap();
    assert!(
        s.transfer.ranges > 0,
        "the head's replay reads WAL ranges: {s:?}"
    );
    assert!(s.transfer.pack.is_some());
    assert!(s.updates.iter().all(|u| u.outcome == Outcome::Created));
    fsck_clean(&dst);
    for rev in ["main", "snapshots/s1"] {
        assert_eq!(replay(&dst, rev), replay(&src, rev), "replay --from {rev}");
        assert!(!replay(&dst, rev).is_empty());
        assert_eq!(as_of(&dst, rev), as_of(&src, rev), "as of {rev}");
    }
    // The live view: the clone's head is rebuilt from the stored ranges.
    let live = as_of(&dst, "main");
    assert_eq!(live[0].len(), 4300);
    // The clone is a store of its own: it ingests, compacts and collects,
    // and its GC keeps the ranges its history still needs.
    let e = Engine::open(&dst, opts(SyncMode::Never, 64 << 10)).unwrap();
    ingest(&e, 4300, 4400);
    e.compact(CompactOptions {
        all: true,
        ..Default::default()
    })
    .unwrap();
    let g = e
        .gc(&GcOptions {
            grace: std::time::Duration::ZERO,
            ..GcOptions::default()
        })
        .unwrap();
    assert_eq!(
        g.wal.ranges_deleted, 0,
        "the snapshot's replay still needs them"
    );
    drop(e);
    fsck_clean(&dst);
    assert_eq!(replay(&dst, "snapshots/s1"), replay(&src, "snapshots/s1"));
    assert_eq!(as_of(&dst, "main")[2].len(), 4400);
    // `sydra remote list` names the source.
    let out = sydra_with_input(&dst, &["remote", "list"], b"");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("origin\t"));
}

#[test]
fn a_fetch_after_one_compaction_transfers_only_that_compaction() {
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    let e = source(&src);
    let (_, first) = remote::clone(src.to_str().unwrap(), &dst).unwrap();
    let repo = Repository::open(&dst).unwrap();
    let again = remote::fetch(&repo, "origin", &[]).unwrap();
    assert_eq!((again.transfer.objects, again.transfer.ranges), (0, 0));
    assert!(again.updates.iter().all(|u| u.outcome == Outcome::UpToDate));
    // Late points for one series in an hour already compacted: the
    // compaction replaces one segment.
    let h0 = e.series(&key(0)).unwrap();
    let mut app = e.appender();
    app.append(h0, 7_000_000_000, Value::F64(-1.0)).unwrap();
    app.commit().unwrap();
    e.compact(CompactOptions::default()).unwrap();
    let s = remote::fetch(&repo, "origin", &["main".into()]).unwrap();
    assert_eq!(s.updates.len(), 1);
    assert_eq!(s.updates[0].outcome, Outcome::FastForward);
    assert_eq!(s.updates[0].to, "refs/remotes/origin/heads/main");
    assert!(s.transfer.commits >= 1);
    assert!(
        s.transfer.objects * 3 < first.transfer.objects,
        "{} objects for one compaction, {} for the clone",
        s.transfer.objects,
        first.transfer.objects
    );
    fsck_clean(&dst);
    assert_eq!(as_of(&dst, "remotes/origin/heads/main"), {
        drop(e);
        as_of(&src, "main")
    });
}

#[test]
fn push_moves_refs_forward_only_unless_forced_and_refuses_a_live_writer() {
    let d = tempfile::tempdir().unwrap();
    let (src, backup, a, b) = (
        d.path().join("src"),
        d.path().join("backup"),
        d.path().join("a"),
        d.path().join("b"),
    );
    drop(source(&src));
    // A backup: a replica that never writes a WAL of its own.
    remote::clone(src.to_str().unwrap(), &backup).unwrap();
    remote::clone(src.to_str().unwrap(), &a).unwrap();
    remote::clone(src.to_str().unwrap(), &b).unwrap();
    for dir in [&a, &b] {
        let r = Repository::open(dir).unwrap();
        remote::add_remote(&r, "backup", backup.to_str().unwrap()).unwrap();
    }
    // a moves on and pushes: a fast-forward, replayed and queried on the
    // backup exactly as on a.
    let ea = Engine::open(&a, opts(SyncMode::Never, 64 << 10)).unwrap();
    ingest(&ea, 4300, 4350);
    ea.checkpoint(None, "a").unwrap();
    drop(ea);
    let ra = Repository::open(&a).unwrap();
    let s = remote::push(&ra, "backup", &["main".into()], false).unwrap();
    assert_eq!(s.updates[0].outcome, Outcome::FastForward, "{s:?}");
    assert!(s.transfer.ranges > 0);
    fsck_clean(&backup);
    assert_eq!(replay(&backup, "main"), replay(&a, "main"));
    assert_eq!(as_of(&backup, "main"), as_of(&a, "main"));
    assert_eq!(
        ra.resolve("remotes/backup/heads/main").unwrap(),
        ra.resolve("main").unwrap(),
        "the tracking ref follows the push"
    );
    // b diverged: its push is refused, naming the ref; with --force it lands.
    let eb = Engine::open(&b, opts(SyncMode::Never, 64 << 10)).unwrap();
    ingest(&eb, 5000, 5010);
    eb.checkpoint(None, "b").unwrap();
    drop(eb);
    let rb = Repository::open(&b).unwrap();
    let s = remote::push(&rb, "backup", &["main".into()], false).unwrap();
    match &s.updates[0].outcome {
        Outcome::Rejected(why) => assert!(why.contains("not a fast-forward"), "{why}"),
        other => panic!("{other:?}"),
    }
    let at = || Repository::open(&backup).unwrap().resolve("main").unwrap();
    assert_eq!(
        at(),
        ra.resolve("main").unwrap(),
        "a rejected push moves nothing"
    );
    let out = sydra_with_input(&b, &["push", "backup", "main"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rejected"));
    let s = remote::push(&rb, "backup", &["main".into()], true).unwrap();
    assert_eq!(s.updates[0].outcome, Outcome::Forced);
    assert_eq!(at(), rb.resolve("main").unwrap());
    fsck_clean(&backup);
    assert_eq!(as_of(&backup, "main"), as_of(&b, "main"));
    // The source writes its own WAL: its main is not pushed to; a snapshot
    // is.
    let s = remote::push(&ra, "origin", &[], false).unwrap();
    let main = s
        .updates
        .iter()
        .find(|u| u.to == "refs/heads/main")
        .unwrap();
    assert!(
        matches!(&main.outcome, Outcome::Rejected(w) if w.contains("own WAL")),
        "{main:?}"
    );
    // A data directory an engine has open is not pushed to at all.
    let live = Engine::open(&backup, opts(SyncMode::Never, 64 << 10)).unwrap();
    let err = remote::push(&ra, "backup", &[], true).unwrap_err();
    assert!(err.to_string().contains("locked"), "{err}");
    drop(live);
}

#[test]
fn a_killed_fetch_leaves_the_receiver_clean_and_a_rerun_completes_it() {
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    drop(source(&src));
    let out = sydra_with_input(&dst, &["init"], b"");
    assert!(out.status.success());
    let out = sydra_with_input(
        &dst,
        &["remote", "add", "origin", src.to_str().unwrap()],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seed = 0x9e37_79b9_u64;
    for round in 0..12 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sydra"))
            .arg("--dir")
            .arg(&dst)
            .args(["fetch", "origin"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_micros(seed % 40_000));
        let _ = child.kill();
        let _ = child.wait();
        fsck_clean(&dst);
        // Nothing half-visible: a tracking ref, when there, reads whole.
        let repo = Repository::open(&dst).unwrap();
        if let Ok(id) = repo.resolve("remotes/origin/heads/main") {
            assert_eq!(
                id,
                Repository::open(&src).unwrap().resolve("main").unwrap(),
                "round {round}"
            );
            assert_eq!(
                replay(&dst, "remotes/origin/heads/main"),
                replay(&src, "main")
            );
        }
    }
    let out = sydra_with_input(&dst, &["fetch", "--json"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fsck_clean(&dst);
    assert_eq!(
        replay(&dst, "remotes/origin/heads/main"),
        replay(&src, "main")
    );
    assert_eq!(
        replay(&dst, "remotes/origin/snapshots/s1"),
        replay(&src, "snapshots/s1")
    );
}

#[test]
fn remotes_are_named_recorded_and_removed_with_their_tracking_refs() {
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    drop(source(&src));
    remote::clone(src.to_str().unwrap(), &dst).unwrap();
    let repo = Repository::open(&dst).unwrap();
    assert!(
        remote::add_remote(&repo, "origin", "/elsewhere").is_err(),
        "exists"
    );
    assert!(
        remote::add_remote(&repo, "../x", "/elsewhere").is_err(),
        "bad name"
    );
    remote::add_remote(&repo, "backup", "/elsewhere").unwrap();
    let names: Vec<String> = remote::list_remotes(&repo)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["backup", "origin"]);
    assert!(
        remote::fetch(&repo, "backup", &[]).is_err(),
        "no data directory there"
    );
    assert!(remote::remove_remote(&repo, "origin").unwrap());
    assert!(repo.refs().list("refs/remotes/origin/").unwrap().is_empty());
    assert!(!remote::remove_remote(&repo, "origin").unwrap());
    let err = remote::clone(src.to_str().unwrap(), &dst).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}

#[test]
fn a_clone_of_a_store_cut_by_retention_keeps_its_horizon() {
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    let e = source(&src);
    for i in 0..3 {
        ingest(&e, 4300 + i * 10, 4310 + i * 10);
        e.checkpoint(None, "more").unwrap();
    }
    e.repo()
        .refs()
        .delete(
            &sydra_engine::refs::RefName::new("refs/snapshots/s1").unwrap(),
            sydra_engine::refs::PreviousValue::Any,
            "drop",
        )
        .unwrap();
    e.gc(&GcOptions {
        grace: std::time::Duration::ZERO,
        reflog_expiry: std::time::Duration::ZERO,
        retain: Some(sydra_engine::gc::Keep::Commits(
            std::num::NonZeroU64::new(2).unwrap(),
        )),
        ..GcOptions::default()
    })
    .unwrap();
    drop(e);
    fsck_clean(&src);
    let (repo, s) = remote::clone(src.to_str().unwrap(), &dst).unwrap();
    assert!(!s.transfer.shallow.is_empty(), "{s:?}");
    let h = repo.history_horizon().unwrap();
    for b in &s.transfer.shallow {
        assert!(h.is_boundary(b));
    }
    fsck_clean(&dst);
    assert_eq!(replay(&dst, "main"), replay(&src, "main"));
    assert_eq!(as_of(&dst, "main"), as_of(&src, "main"));
}
