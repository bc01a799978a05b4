//! Replication between data directories: clone, fetch, push.

use std::path::Path;

use sydra_engine::gc::{FsckOptions, GcOptions, NoProgress};
use sydra_engine::remote::{self, Outcome};
use sydra_engine::series::{CompactOptions, SeriesKey, Value};
use sydra_engine::wal::SyncMode;
use sydra_engine::{Engine, Replay, Repository, Tail, maintenance};

use super::common::{collect, http, opts, sydra_with_input};

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
    for round in 0..20 {
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
        std::thread::sleep(std::time::Duration::from_micros(seed % 15_000));
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

/// A GC that keeps the last two commits of every ref and nothing older.
fn keep_two_commits(e: &Engine) {
    e.gc(&GcOptions {
        grace: std::time::Duration::ZERO,
        reflog_expiry: std::time::Duration::ZERO,
        retain: Some(sydra_engine::gc::Keep::Commits(
            std::num::NonZeroU64::new(2).unwrap(),
        )),
        ..GcOptions::default()
    })
    .unwrap();
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
    keep_two_commits(&e);
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

#[test]
fn sydra_serve_clones_fetches_and_takes_authorized_pushes_over_http() {
    use sydra_engine::serve::{ServeOptions, start};
    let d = tempfile::tempdir().unwrap();
    let (src, dst, backup) = (
        d.path().join("src"),
        d.path().join("dst"),
        d.path().join("backup"),
    );
    let e = source(&src);
    // A backup, cloned now (it will fall behind).
    remote::clone(src.to_str().unwrap(), &backup).unwrap();
    // A read-only server beside the live engine: clone and fetch.
    let ro = start(
        &src,
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            read_only: true,
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let url = format!("http://{}", ro.addr());
    let (_, s) = remote::clone(&url, &dst).unwrap();
    assert!(s.transfer.ranges > 0 && s.transfer.objects > 0, "{s:?}");
    fsck_clean(&dst);
    ingest(&e, 4300, 4310);
    e.checkpoint(None, "live").unwrap();
    let repo = Repository::open(&dst).unwrap();
    let f = remote::fetch(&repo, "origin", &["main".into()]).unwrap();
    assert_eq!(f.updates[0].outcome, Outcome::FastForward);
    assert!(
        f.transfer.objects < s.transfer.objects,
        "only what is new: {f:?}"
    );
    drop(e);
    fsck_clean(&dst);
    assert_eq!(
        replay(&dst, "remotes/origin/heads/main"),
        replay(&src, "main")
    );
    assert_eq!(
        as_of(&dst, "remotes/origin/heads/main"),
        as_of(&src, "main")
    );
    // The diagnostic endpoint and hostile requests.
    let head = repo.resolve("remotes/origin/heads/main").unwrap();
    let (code, body) = http(ro.addr(), "GET", &format!("/objects/{head}"), &[], b"");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["kind"], "commit");
    assert_eq!(http(ro.addr(), "GET", "/objects/zz", &[], b"").0, 400);
    assert_eq!(
        http(
            ro.addr(),
            "GET",
            &format!("/objects/{}", "ab".repeat(32)),
            &[],
            b""
        )
        .0,
        404
    );
    assert_eq!(
        http(ro.addr(), "POST", "/api/v1/fetch", &[], b"{not json").0,
        400
    );
    assert_eq!(
        http(
            ro.addr(),
            "POST",
            "/api/v1/fetch",
            &[],
            br#"{"wants": ["x"]}"#
        )
        .0,
        400
    );
    assert_eq!(http(ro.addr(), "GET", "/api/v1/nothing", &[], b"").0, 404);
    assert_eq!(http(ro.addr(), "DELETE", "/api/v1/refs", &[], b"").0, 405);
    assert_eq!(
        http(ro.addr(), "POST", "/api/v1/push", &[], b"\x05\0\0\0{}").0,
        403
    );
    ro.stop();

    // The backup served for pushes, with a token.
    let rw = start(
        &backup,
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            token: Some("s3cret".into()),
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let url = format!("http://{}", rw.addr());
    remote::add_remote(&repo, "backup", &url).unwrap();
    let before = Repository::open(&backup).unwrap().resolve("main").unwrap();
    // dst's main follows the fetched source; push it to the backup.
    repo.refs()
        .update(
            &sydra_engine::refs::RefName::new("refs/heads/main").unwrap(),
            repo.resolve("remotes/origin/heads/main").unwrap(),
            sydra_engine::refs::PreviousValue::Any,
            "follow",
        )
        .unwrap();
    let denied =
        remote::push_with_token(&repo, "backup", &["main".into()], false, None).unwrap_err();
    assert!(denied.to_string().contains("401"), "{denied}");
    let wrong = remote::push_with_token(&repo, "backup", &["main".into()], false, Some("nope"))
        .unwrap_err();
    assert!(wrong.to_string().contains("401"), "{wrong}");
    assert_eq!(
        Repository::open(&backup).unwrap().resolve("main").unwrap(),
        before,
        "nothing moved"
    );
    // A truncated or garbage push body is a 4xx and changes nothing.
    let auth = [("Authorization", "Bearer s3cret")];
    assert_eq!(
        http(rw.addr(), "POST", "/api/v1/push", &auth, b"\x02\0").0,
        400
    );
    assert_eq!(
        http(
            rw.addr(),
            "POST",
            "/api/v1/push",
            &auth,
            b"\x02\0\0\0{}SYTX"
        )
        .0,
        400
    );
    let p =
        remote::push_with_token(&repo, "backup", &["main".into()], false, Some("s3cret")).unwrap();
    assert_eq!(p.updates[0].outcome, Outcome::FastForward, "{p:?}");
    rw.stop();
    fsck_clean(&backup);
    assert_eq!(replay(&backup, "main"), replay(&src, "main"));
    assert_eq!(as_of(&backup, "main"), as_of(&src, "main"));
}

#[test]
fn a_fetch_sends_the_wal_ranges_of_commits_whose_objects_arrived_before() {
    // What a fetch killed after publishing its pack leaves: the objects,
    // no ranges, no ref. The next fetch must still bring the ranges.
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    drop(source(&src));
    let (repo, _) = Repository::init(&dst).unwrap();
    let from = Repository::open(&src).unwrap();
    let mut batch = repo
        .objects()
        .batch(sydra_engine::objects::Durability::Batch);
    for id in from.objects().all_ids().unwrap() {
        let o = from.objects().get(&id).unwrap();
        batch.put(o.kind, &o.data).unwrap();
    }
    batch.commit().unwrap();
    remote::add_remote(&repo, "origin", src.to_str().unwrap()).unwrap();
    let s = remote::fetch(&repo, "origin", &[]).unwrap();
    assert_eq!(s.transfer.objects, 0, "every object was there");
    assert!(s.transfer.ranges > 0, "{s:?}");
    fsck_clean(&dst);
    assert_eq!(
        replay(&dst, "remotes/origin/heads/main"),
        replay(&src, "main")
    );
}

#[test]
fn a_tampered_transfer_is_refused_with_nothing_published() {
    use std::collections::HashSet;
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    drop(source(&src));
    let from = Repository::open(&src).unwrap();
    let (to, _) = Repository::init(&dst).unwrap();
    let tips = vec![from.resolve("main").unwrap()];
    let none = HashSet::new();
    let whole = remote::send(&from, &tips, &none, &|_| Ok(false), from.objects(), None).unwrap();
    let bytes = std::fs::read(&whole.path).unwrap();
    let nothing_published = |to: &Repository| {
        assert!(to.objects().packs().is_empty(), "a pack was published");
        assert!(to.objects().all_ids().unwrap().is_empty());
    };
    // A flipped byte anywhere: the trailer catches it.
    for at in [9, 40, bytes.len() / 2, bytes.len() - 40] {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        let err = remote::receive_bytes(&to, &b, "test").unwrap_err();
        assert!(err.to_string().contains("bad transfer"), "{err}");
        nothing_published(&to);
    }
    // A flipped byte inside the pack, with the outer trailer recomputed:
    // the pack's own checks catch it.
    let reseal = |mut b: Vec<u8>| {
        let n = b.len() - 32;
        let h = blake3::hash(&b[..n]);
        b[n..].copy_from_slice(h.as_bytes());
        b
    };
    let mut b = bytes.clone();
    b[16 + 16 + 56 + 2] ^= 0x01;
    let err = remote::receive_bytes(&to, &reseal(b), "test").unwrap_err();
    assert!(err.to_string().contains("pack"), "{err}");
    nothing_published(&to);
    // An object whose id does not match its bytes (header id changed, CRC
    // and both trailers recomputed).
    let mut b = bytes.clone();
    let entry = 16 + 16;
    b[entry + 16] ^= 0x01;
    let len = u64::from_le_bytes(b[entry + 48..entry + 56].try_into().unwrap()) as usize;
    let crc_at = entry + 56 + len;
    let crc = crc32fast::hash(&b[entry..crc_at]);
    b[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    let pack_len = u64::from_le_bytes(b[8..16].try_into().unwrap()) as usize;
    let pack_end = 16 + pack_len;
    let h = blake3::hash(&b[16..pack_end - 32]);
    b[pack_end - 32..pack_end].copy_from_slice(h.as_bytes());
    let err = remote::receive_bytes(&to, &reseal(b), "test").unwrap_err();
    assert!(err.to_string().contains("hashes to"), "{err}");
    nothing_published(&to);
    // A pack missing objects (the sender claimed the receiver had them):
    // connectivity refuses it.
    let partial = remote::send(
        &from,
        &tips,
        &none,
        &|id| Ok(*id != tips[0]),
        from.objects(),
        None,
    )
    .unwrap();
    let b = std::fs::read(&partial.path).unwrap();
    let err = remote::receive_bytes(&to, &b, "test").unwrap_err();
    assert!(err.to_string().contains("neither side has"), "{err}");
    nothing_published(&to);
    // The untouched transfer is accepted.
    assert_eq!(bytes[4], 2, "a sender writes version 2");
    remote::receive_bytes(&to, &bytes, "test").unwrap();
    assert_eq!(to.objects().packs().len(), 1);
    // Version 1 (its trailer over every byte), as older builds wrote and
    // S3 buckets may hold, is still read.
    let mut v1 = bytes.clone();
    v1[4] = 1;
    let v1 = reseal(v1);
    remote::parse_transfer(&v1).unwrap();
    let (old, _) = Repository::init(d.path().join("old")).unwrap();
    remote::receive_bytes(&old, &v1, "test").unwrap();
    assert_eq!(old.objects().packs().len(), 1);
    // A version 2 trailer still covers the framing and the shallow list:
    // a range length or shallow id changed behind it is refused.
    let v = remote::parse_transfer(&bytes).unwrap();
    assert!(!v.ranges.is_empty(), "the source's transfer carries ranges");
    // A damaged range (its bytes are covered by its chunk, not by the
    // trailer) is refused, and no range is left behind: ranges are placed
    // together once all have arrived. The last is still being written when
    // the transfer ends; the first is checked while later ones are read
    // (a receiver lets two ranges finish writing behind it), and its
    // failure stops the transfer all the same.
    assert!(v.ranges.len() >= 4, "{} ranges", v.ranges.len());
    for (i, which) in [0, v.ranges.len() - 1].into_iter().enumerate() {
        let (id, r) = v.ranges[which];
        let at = r.as_ptr() as usize - bytes.as_ptr() as usize + r.len() - 1;
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        let dir = d.path().join(format!("rng{i}"));
        let (rng, _) = Repository::init(&dir).unwrap();
        let err = remote::receive_bytes(&rng, &b, "test").unwrap_err();
        assert!(
            err.to_string().contains(&id.to_hex()),
            "range {which}: {err}"
        );
        nothing_published(&rng);
        let placed: Vec<_> = walkdir_files(&dir);
        assert!(
            placed
                .iter()
                .all(|p| !p.to_string_lossy().contains("walchunks")),
            "range {which}: ranges left behind: {placed:?}"
        );
    }
    // A range listed twice is stored once, whether its first copy is
    // still being written when the second arrives (next to it) or already
    // verified (at the end). Built as version 1, whose trailer is the
    // BLAKE3 of everything before it.
    for at in [1, v.ranges.len()] {
        let mut ranges = v.ranges.clone();
        ranges.insert(at, v.ranges[0]);
        let mut b = Vec::new();
        b.extend_from_slice(&bytes[..4]);
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&(v.pack.len() as u64).to_le_bytes());
        b.extend_from_slice(v.pack);
        b.extend_from_slice(&(ranges.len() as u64).to_le_bytes());
        for (id, r) in &ranges {
            b.extend_from_slice(id.as_bytes());
            b.extend_from_slice(&(r.len() as u64).to_le_bytes());
            b.extend_from_slice(r);
        }
        b.extend_from_slice(&(v.shallow.len() as u64).to_le_bytes());
        for id in &v.shallow {
            b.extend_from_slice(id.as_bytes());
        }
        let h = blake3::hash(&b);
        b.extend_from_slice(h.as_bytes());
        let dir = d.path().join(format!("twice{at}"));
        let (twice, _) = Repository::init(&dir).unwrap();
        let (t, _) = remote::receive_bytes(&twice, &b, "test").unwrap();
        assert_eq!(t.ranges, v.ranges.len() as u64, "listed twice at {at}");
        let stored = walkdir_files(&dir.join("walchunks"));
        assert_eq!(stored.len(), v.ranges.len(), "{stored:?}");
    }
    let mut b = bytes.clone();
    let n = b.len();
    b[n - 33] ^= 0x01; // the shallow count's last byte
    assert!(remote::parse_transfer(&b).is_err());
    assert!(remote::receive_bytes(&old, &b, "test").is_err());
}

/// `bytes` cut into pieces of the sizes in `pattern`, in turn.
fn pieces_of(bytes: &bytes::Bytes, pattern: &[usize]) -> Vec<std::io::Result<bytes::Bytes>> {
    let mut pieces = Vec::new();
    let mut at = 0;
    for n in pattern.iter().cycle() {
        if at == bytes.len() {
            break;
        }
        let n = (*n).min(bytes.len() - at);
        pieces.push(Ok(bytes.slice(at..at + n)));
        at += n;
    }
    pieces
}

#[test]
fn a_transfer_arriving_in_any_pieces_is_received_the_same() {
    use std::collections::HashSet;
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    // Larger than `source` (values that do not compress): its pack holds
    // pieces of every size below.
    let e = Engine::create(&src, opts(SyncMode::Never, 64 << 10)).unwrap();
    let refs: Vec<_> = (0..5).map(|h| e.series(&key(h)).unwrap()).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for t in 0..20_000i64 {
        let mut a = e.appender();
        for s in &refs {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a.append(*s, t * 1_000_000_000, Value::F64(f64::from_bits(x >> 2)))
                .unwrap();
        }
        a.commit().unwrap();
        if t == 19_000 {
            e.compact(CompactOptions::default()).unwrap();
        }
    }
    e.checkpoint(None, "head").unwrap();
    drop(e);
    let from = Repository::open(&src).unwrap();
    let tips = vec![from.resolve("main").unwrap()];
    let none = HashSet::new();
    let whole = remote::send(&from, &tips, &none, &|_| Ok(false), from.objects(), None).unwrap();
    let bytes = bytes::Bytes::from(std::fs::read(&whole.path).unwrap());
    let v = remote::parse_transfer(&bytes).unwrap();
    // Pieces of 64 KiB and more are written where they are; smaller ones
    // are copied: the pack is large enough for both.
    assert!(v.pack.len() > 256 << 10, "{} bytes", v.pack.len());
    assert!(v.ranges.len() >= 2, "{} ranges", v.ranges.len());
    // Cut exactly at every section's edge too: where the pack and each
    // range start and end.
    let offset = |s: &[u8]| s.as_ptr() as usize - bytes.as_ptr() as usize;
    let mut edges = vec![offset(v.pack), offset(v.pack) + v.pack.len()];
    for (_, r) in &v.ranges {
        edges.extend([offset(r), offset(r) + r.len()]);
    }
    let at_edges: Vec<usize> = std::iter::once(0)
        .chain(edges.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1] - w[0])
        .chain([bytes.len() - edges[edges.len() - 1]])
        .collect();
    let main = replay(&src, "main");
    let patterns: [&[usize]; 5] = [&[1], &[7, 1, 300_000], &[65_536], &[1 << 20, 3], &at_edges];
    for (i, pattern) in patterns.iter().enumerate() {
        let dir = d.path().join(format!("pieces{i}"));
        let (to, _) = Repository::init(&dir).unwrap();
        let (t, _pin) =
            remote::receive_chunks(&to, pieces_of(&bytes, pattern), u64::MAX, "test").unwrap();
        assert_eq!(t.ranges, v.ranges.len() as u64, "pattern {i}");
        assert_eq!(to.objects().packs().len(), 1, "pattern {i}");
        assert_eq!(replay(&dir, &tips[0].to_hex()), main, "pattern {i}");
    }
    // Cut short inside the pack or inside a range, the transfer is
    // refused, naming where.
    for (cut, section) in [
        (offset(v.pack) + v.pack.len() / 2, "the pack"),
        (offset(v.ranges[1].1) + 10, "a range"),
    ] {
        let (to, _) = Repository::init(d.path().join(format!("cut{cut}"))).unwrap();
        let short = bytes.slice(..cut);
        let err = remote::receive_chunks(&to, pieces_of(&short, &[4096]), u64::MAX, "test")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("ends inside {section} (offset {cut})")),
            "{err}"
        );
        assert!(to.objects().packs().is_empty());
    }
    // A reader that fails part way through a block: the error names the
    // offset where it failed, not where the block began.
    struct FailsAt<'a>(&'a [u8]);
    impl std::io::Read for FailsAt<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("the disk went away"));
            }
            let n = out.len().min(self.0.len()).min(4096);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let (to, _) = Repository::init(d.path().join("read-failed")).unwrap();
    let at = offset(v.pack) + 100_000;
    let err = remote::receive_from(&to, &mut FailsAt(&bytes[..at]), u64::MAX, "test")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("at offset {at}: the disk went away")),
        "{err}"
    );
    // A chunk that is an error ends it with that error; more bytes than
    // the limit are refused.
    let (to, _) = Repository::init(d.path().join("failed")).unwrap();
    let mut failing = pieces_of(&bytes.slice(..1000), &[100]);
    failing.push(Err(std::io::Error::other("the connection dropped")));
    let err = remote::receive_chunks(&to, failing, u64::MAX, "test").unwrap_err();
    assert!(
        err.to_string()
            .contains("at offset 1000: the connection dropped"),
        "{err}"
    );
    let err = remote::receive_chunks(
        &to,
        pieces_of(&bytes, &[1 << 16]),
        bytes.len() as u64 - 1,
        "test",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("longer than {} bytes", bytes.len() - 1)),
        "{err}"
    );
    assert!(to.objects().packs().is_empty());
}

#[test]
fn concurrent_pushes_to_one_ref_lose_nothing_over_http() {
    use sydra_engine::serve::{ServeOptions, start};
    let d = tempfile::tempdir().unwrap();
    let (src, backup) = (d.path().join("src"), d.path().join("backup"));
    drop(source(&src));
    remote::clone(src.to_str().unwrap(), &backup).unwrap();
    let srv = start(
        &backup,
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let url = format!("http://{}", srv.addr());
    // Four clones each add their own commit on main and push at once:
    // every round exactly one wins, the others are refused (not a
    // fast-forward any more) and nothing the winner pushed is lost.
    let clones: Vec<_> = (0..4)
        .map(|i| {
            let c = d.path().join(format!("c{i}"));
            remote::clone(src.to_str().unwrap(), &c).unwrap();
            let e = Engine::open(&c, opts(SyncMode::Never, 64 << 10)).unwrap();
            ingest(&e, 6000 + i * 10, 6005 + i * 10);
            e.checkpoint(None, &format!("c{i}")).unwrap();
            c
        })
        .collect();
    let results: Vec<Outcome> = std::thread::scope(|s| {
        let hs: Vec<_> = clones
            .iter()
            .map(|c| {
                let url = url.clone();
                s.spawn(move || {
                    let r = Repository::open(c).unwrap();
                    remote::push_with_token(&r, &url, &["main".into()], false, None)
                        .unwrap()
                        .updates[0]
                        .outcome
                        .clone()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners = results
        .iter()
        .filter(|o| **o == Outcome::FastForward)
        .count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|o| matches!(o, Outcome::FastForward | Outcome::Rejected(_))),
        "{results:?}"
    );
    let at = Repository::open(&backup).unwrap().resolve("main").unwrap();
    let winner = clones
        .iter()
        .zip(&results)
        .find(|(_, o)| **o == Outcome::FastForward)
        .map(|(c, _)| Repository::open(c).unwrap().resolve("main").unwrap())
        .unwrap();
    assert_eq!(at, winner);
    srv.stop();
    fsck_clean(&backup);
}

#[test]
fn hostile_http_requests_get_a_4xx_and_change_nothing() {
    use sydra_engine::serve::{ServeOptions, start};
    let d = tempfile::tempdir().unwrap();
    let (src, backup) = (d.path().join("src"), d.path().join("backup"));
    drop(source(&src));
    remote::clone(src.to_str().unwrap(), &backup).unwrap();
    let before = Repository::open(&backup).unwrap().refs().list("").unwrap();
    let srv = start(
        &backup,
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            max_push_bytes: 1 << 20,
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let a = srv.addr();
    for path in [
        "/objects/../../etc/passwd",
        "/objects/%2e%2e",
        "/objects/",
        "/objects/abcd",
    ] {
        let code = http(a, "GET", path, &[], b"").0;
        assert!((400..500).contains(&code), "{path}: {code}");
    }
    // A push naming refs outside refs/, traversals, remote-tracking refs.
    let head = |name: &str| {
        let j = format!(
            r#"{{"updates":[{{"name":"{name}","new":"{}"}}]}}"#,
            "ab".repeat(32)
        );
        let mut b = (j.len() as u32).to_le_bytes().to_vec();
        b.extend_from_slice(j.as_bytes());
        b
    };
    for name in [
        "HEAD",
        "refs/../../x",
        "refs/remotes/origin/heads/main",
        "../escape",
    ] {
        let mut body = head(name);
        // An empty but valid transfer.
        let mut t = b"SYTX\x01\0\0\0".to_vec();
        t.extend_from_slice(&[0u8; 24]);
        let h = blake3::hash(&t);
        t.extend_from_slice(h.as_bytes());
        body.extend_from_slice(&t);
        let (code, out) = http(a, "POST", "/api/v1/push", &[], &body);
        assert_eq!(code, 200, "{name}");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["refs"][0]["status"], "rejected", "{name}: {v}");
    }
    // Huge declared lengths: the header, the body.
    assert_eq!(
        http(a, "POST", "/api/v1/push", &[], b"\xff\xff\xff\x7f{").0,
        413
    );
    let big = vec![0u8; (1 << 20) + 100];
    let code = http(a, "POST", "/api/v1/push", &[], &big).0;
    assert!((400..500).contains(&code), "{code}");
    let mut lying = head("refs/heads/x");
    lying.extend_from_slice(b"SYTX\x01\0\0\0\xff\xff\xff\xff\xff\xff\xff\x7f");
    assert_eq!(http(a, "POST", "/api/v1/push", &[], &lying).0, 400);
    // Still up, still unchanged.
    assert_eq!(http(a, "GET", "/api/v1/health", &[], b"").0, 200);
    srv.stop();
    assert_eq!(
        Repository::open(&backup).unwrap().refs().list("").unwrap(),
        before
    );
    fsck_clean(&backup);
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn killed_pushers_and_servers_leave_the_remote_clean_and_a_rerun_converges() {
    let d = tempfile::tempdir().unwrap();
    let (src, backup) = (d.path().join("src"), d.path().join("backup"));
    drop(source(&src));
    let out = sydra_with_input(&backup, &["init"], b"");
    assert!(out.status.success());
    let mut seed = 0x2545_f491_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..20 {
        let kill_server = round % 2 == 1;
        let port = free_port();
        let mut server = kill_server.then(|| {
            std::process::Command::new(env!("CARGO_BIN_EXE_sydra"))
                .arg("--dir")
                .arg(&backup)
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        });
        if server.is_some() {
            // Until it answers.
            for _ in 0..200 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        let target = if kill_server {
            format!("http://127.0.0.1:{port}")
        } else {
            backup.to_str().unwrap().to_owned()
        };
        let mut pusher = std::process::Command::new(env!("CARGO_BIN_EXE_sydra"))
            .arg("--dir")
            .arg(&src)
            .args(["push", &target])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(next() % 20_000));
        match server.as_mut() {
            Some(s) => {
                let _ = s.kill();
                let _ = s.wait();
            }
            None => {
                let _ = pusher.kill();
            }
        }
        let _ = pusher.wait();
        if let Some(mut s) = server {
            let _ = s.kill();
            let _ = s.wait();
        }
        fsck_clean(&backup);
        // What a ref shows, it shows whole.
        if let Ok(id) = Repository::open(&backup).unwrap().resolve("main") {
            assert_eq!(
                id,
                Repository::open(&src).unwrap().resolve("main").unwrap(),
                "round {round}"
            );
            assert_eq!(replay(&backup, "main"), replay(&src, "main"));
        }
    }
    let out = sydra_with_input(&src, &["push", backup.to_str().unwrap()], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fsck_clean(&backup);
    assert_eq!(replay(&backup, "main"), replay(&src, "main"));
    assert_eq!(
        replay(&backup, "snapshots/s1"),
        replay(&src, "snapshots/s1")
    );
}

#[test]
fn a_fetch_the_server_cannot_build_reports_the_servers_reason() {
    use std::io::{BufRead, BufReader, Write};
    // A server whose fetch fails before its first byte: it has already
    // answered 200 (the answer is streamed), so the body carries the
    // reason after the error magic.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let head = "0".repeat(64);
    std::thread::spawn(move || {
        for c in l.incoming().take(2) {
            let mut c = c.unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            std::io::Read::read_exact(&mut r, &mut vec![0; len]).unwrap();
            let body = if first.contains("/api/v1/refs") {
                format!("{{\"refs\": [{{\"name\": \"refs/heads/main\", \"id\": \"{head}\"}}]}}")
            } else {
                "SYERobject 1234 is damaged: its BLAKE3 does not match".to_owned()
            };
            write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    let d = tempfile::tempdir().unwrap();
    let err = remote::clone(&format!("http://{addr}"), &d.path().join("c"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("could not build the transfer") && err.contains("object 1234 is damaged"),
        "{err}"
    );
}

#[test]
fn a_sender_failing_part_way_is_reported_and_publishes_nothing() {
    // A path clone streams the transfer from a sender thread into the
    // receiver. The source's newest WAL segment is damaged after the pack
    // has gone out: the sender's error (the chunk that does not verify) is
    // what the clone reports, and the receiver publishes no pack.
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    drop(source(&src));
    let mut segs: Vec<_> = std::fs::read_dir(src.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segs.sort();
    let last = segs.last().expect("the source has a WAL segment");
    let mut b = std::fs::read(last).unwrap();
    let at = b.len() - 100;
    b[at] ^= 0x10;
    std::fs::write(last, &b).unwrap();
    let err = remote::clone(src.to_str().unwrap(), &dst)
        .unwrap_err()
        .to_string();
    assert!(err.contains("WAL chunk"), "{err}");
    if dst.exists() {
        let repo = Repository::open(&dst).unwrap();
        assert!(repo.objects().packs().is_empty(), "a pack was published");
        assert!(repo.objects().all_ids().unwrap().is_empty());
    }
}

#[test]
fn a_fetch_answer_is_the_same_transfer_over_http_1_0_and_over_one_kept_alive_1_1_connection() {
    use std::io::{BufRead, BufReader, Read, Write};
    use sydra_engine::serve::{ServeOptions, start};
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    drop(source(&src));
    let head = Repository::open(&src).unwrap().resolve("main").unwrap();
    let srv = start(
        &src,
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            read_only: true,
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let body = format!("{{\"wants\": [\"{}\"]}}", head.to_hex());
    let request = |version: &str| {
        format!(
            "POST /api/v1/fetch {version}\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // HTTP/1.0: no chunks; the body ends when the server closes.
    let mut s = std::net::TcpStream::connect(srv.addr()).unwrap();
    s.write_all(request("HTTP/1.0").as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head10 = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    assert!(head10.contains(" 200 "), "{head10}");
    assert!(!head10.contains("chunked"), "{head10}");
    let plain = out[split + 4..].to_vec();
    remote::parse_transfer(&plain).unwrap();
    // HTTP/1.1: chunked, and the connection serves a second fetch after it.
    let s = std::net::TcpStream::connect(srv.addr()).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    for round in 0..2 {
        w.write_all(request("HTTP/1.1").as_bytes()).unwrap();
        let mut chunked = false;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked")
            {
                chunked = true;
            }
            if line == "\r\n" {
                break;
            }
        }
        assert!(chunked, "round {round}");
        let mut got = Vec::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).unwrap();
            assert_eq!(&chunk[n..], b"\r\n");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, plain, "round {round}: the same transfer");
    }
    // And it is accepted whole.
    let (to, _) = Repository::init(d.path().join("dst")).unwrap();
    let (t, _pins) = remote::receive_bytes(&to, &plain, "test").unwrap();
    assert!(t.objects > 0 && t.ranges > 0, "{t:?}");
    srv.stop();
}

#[test]
fn a_fetch_of_several_new_commits_sends_exactly_the_objects_the_receiver_lacks() {
    // Three commits past what the receiver holds, fetched over HTTP (where
    // the server knows only the receiver's commits, not its objects): the
    // plan walks each against its parent, so nothing the receiver has
    // travels again (a clone, which holds nothing, walks without the diff).
    use sydra_engine::serve::{ServeOptions, start};
    let d = tempfile::tempdir().unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    let e = source(&src);
    remote::clone(src.to_str().unwrap(), &dst).unwrap();
    for (i, t) in [(0, 4300), (1, 4400), (2, 4500)] {
        ingest(&e, t, t + 100);
        e.checkpoint(None, &format!("step {i}")).unwrap();
    }
    e.compact(CompactOptions::default()).unwrap();
    let srv = start(
        &src,
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            read_only: true,
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let src_repo = Repository::open(&src).unwrap();
    let repo = Repository::open(&dst).unwrap();
    remote::add_remote(&repo, "web", &format!("http://{}", srv.addr())).unwrap();
    let before: std::collections::HashSet<_> =
        repo.objects().all_ids().unwrap().into_iter().collect();
    let s = remote::fetch(&repo, "web", &["main".into()]).unwrap();
    srv.stop();
    assert!(s.transfer.commits >= 3, "{s:?}");
    // Every object now reachable on the source that the receiver lacked,
    // and nothing else.
    let tip = src_repo.resolve("main").unwrap();
    let mut lacking = std::collections::HashSet::new();
    let mut todo = vec![tip];
    while let Some(id) = todo.pop() {
        if before.contains(&id) || !lacking.insert(id) {
            continue;
        }
        let obj = src_repo.objects().get(&id).unwrap();
        match obj.kind {
            sydra_engine::objects::Kind::Commit => {
                let c = obj.commit().unwrap();
                todo.push(c.tree);
                todo.extend(c.parents.iter().copied());
            }
            sydra_engine::objects::Kind::Tree => {
                todo.extend(obj.tree().unwrap().entries.iter().map(|x| x.id));
            }
            _ => {}
        }
    }
    assert_eq!(s.transfer.objects, lacking.len() as u64, "{s:?}");
    fsck_clean(&dst);
}

#[test]
fn a_listed_shallow_commit_whose_parent_the_receiver_has_is_no_boundary_there() {
    let d = tempfile::tempdir().unwrap();
    let (full, partial, cut) = (
        d.path().join("full"),
        d.path().join("partial"),
        d.path().join("cut"),
    );
    let e = source(&full);
    ingest(&e, 4300, 4310);
    e.checkpoint(None, "m1").unwrap();
    drop(e);
    // `partial` holds history through m1.
    remote::clone(full.to_str().unwrap(), &partial).unwrap();
    let e = Engine::open(&full, opts(SyncMode::Never, 64 << 10)).unwrap();
    for (i, m) in ["m2", "m3"].iter().enumerate() {
        ingest(&e, 4310 + i as i64 * 10, 4320 + i as i64 * 10);
        e.checkpoint(None, m).unwrap();
    }
    drop(e);
    // `cut` keeps m3 and m2 only: its history stops at m2, whose parent
    // m1 it no longer has.
    remote::clone(full.to_str().unwrap(), &cut).unwrap();
    let c = Engine::open(&cut, opts(SyncMode::Never, 64 << 10)).unwrap();
    for name in ["refs/snapshots/s1", "refs/remotes/origin/snapshots/s1"] {
        let _ = c.repo().refs().delete(
            &sydra_engine::refs::RefName::new(name).unwrap(),
            sydra_engine::refs::PreviousValue::Any,
            "drop",
        );
    }
    keep_two_commits(&c);
    let m3 = c.repo().resolve("main").unwrap();
    let m2 = c
        .repo()
        .objects()
        .get(&m3)
        .unwrap()
        .commit()
        .unwrap()
        .parents[0];
    assert!(c.repo().history_horizon().unwrap().is_boundary(&m2));
    drop(c);
    fsck_clean(&cut);
    // `cut` lists m2 as shallow; `partial` has m1, so m2 is no boundary
    // there (one would let its GC drop m1 and all before it).
    let repo = Repository::open(&partial).unwrap();
    let s = remote::fetch(&repo, cut.to_str().unwrap(), &["main".into()]).unwrap();
    assert!(s.transfer.shallow.is_empty(), "{s:?}");
    assert!(!repo.history_horizon().unwrap().is_boundary(&m2));
    fsck_clean(&partial);
    assert_eq!(replay(&partial, &m3.to_string()), replay(&full, "main"));
}

/// Every file under `dir`, recursively.
fn walkdir_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}
