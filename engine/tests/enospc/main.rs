//! A full disk: a small tmpfs, mounted inside a private mount namespace
//! (`unshare --mount`), filled to 100+ levels of free space; at each level
//! a workload runs until the disk is full. Every failing operation must
//! return a clear error, the store must stay readable, and once space is
//! freed it must reopen clean (every acknowledged item intact, every object
//! valid, temp files collected) and accept writes again.
//!
//! And a GC on a disk full from the start (before the engine is even
//! opened) must reclaim space: on a real full tmpfs, and, without root,
//! with ENOSPC injected at every point that would allocate.
//!
//! `SYDRA_ENOSPC_LEVELS=N` (default 120). The tmpfs tests need root and
//! `unshare` (util-linux); they print why they are skipped otherwise, and
//! fail under `CI=true` (`support/capability.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use sydra_engine::objects::ObjectId;
use sydra_engine::section::KvSection;
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Error, Options};

use support::capability;

const CHILD_ENV: &str = "SYDRA_ENOSPC_CHILD";
const PAGE: u64 = 4096;

fn opts() -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Always,
            segment_size: 64 << 10,
            max_record: 4096,
            ..WalOptions::default()
        },
        ..Options::default()
    }
}

/// Root and a working `unshare --mount` (util-linux) for a private tmpfs;
/// `mount` runs inside it.
fn private_tmpfs_capable() -> Result<(), String> {
    capability::root()
        .and_then(|()| {
            capability::tools(&["unshare", "mount"], "util-linux and mount provide them")
        })
        .and_then(|()| {
            capability::works("unshare", &["--mount", "--propagation", "private", "true"])
        })
}

#[test]
fn writes_fail_cleanly_on_a_full_disk_and_resume_after() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let capable = private_tmpfs_capable();
    if !capability::runs(
        "writes_fail_cleanly_on_a_full_disk_and_resume_after",
        capable,
    ) {
        return;
    }
    let (stdout, stderr) = run_child_in_private_mount("enospc_child", "the ENOSPC child");
    let summary = stdout
        .lines()
        .chain(stderr.lines())
        .find_map(|l| l.find("enospc:").map(|i| &l[i..]))
        .unwrap_or("no summary");
    eprintln!("{summary}");
    assert!(
        summary.contains("levels"),
        "the child did not run: {stdout}"
    );
}

/// Run this binary's test `child` (with [`CHILD_ENV`] set) in a private
/// mount namespace; assert it passed and return its stdout and stderr.
fn run_child_in_private_mount(child: &str, what: &str) -> (String, String) {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", child, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// A fresh tmpfs of `size` (mount(8) syntax) on a temp directory, inside
/// the child's private mount namespace.
fn mount_tmpfs(size: &str) -> tempfile::TempDir {
    let mnt = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(ok.success(), "mount tmpfs failed");
    mnt
}

#[test]
fn enospc_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let levels: u64 = std::env::var("SYDRA_ENOSPC_LEVELS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let mnt = mount_tmpfs("24m");
    let (mut failures, mut acked_total) = (0u64, 0u64);
    for level in 0..levels {
        let (f, a) = one_level(mnt.path(), level * PAGE);
        failures += f;
        acked_total += a;
    }
    let _ = Command::new("umount").arg(mnt.path()).status();
    println!(
        "enospc: {levels} levels of free space (0 to {} KiB), {failures} operations failed with ENOSPC, {acked_total} acknowledged items verified after freeing space",
        levels * PAGE / 1024
    );
    assert!(
        failures >= levels,
        "the disk was never full: {failures} failures in {levels} levels"
    );
}

fn fill(path: &Path, leave_free: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xEEu8; 64 << 10];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(_) => break,
        }
    }
    f.sync_all().ok();
    f.set_len(written.saturating_sub(leave_free)).unwrap();
}

fn check_err(level: u64, what: &str, e: &Error) {
    let msg = e.to_string();
    assert!(
        msg.contains("No space left") || msg.contains("poisoned"),
        "level {level}: {what} failed without naming the cause: {msg}"
    );
}

/// Returns (failed operations, acknowledged items verified).
fn one_level(mnt: &Path, free: u64) -> (u64, u64) {
    let dir = mnt.join("store");
    let filler = mnt.join("filler");
    let mut records = BTreeMap::new();
    let mut values: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut main: Option<ObjectId>;
    {
        let e = Engine::create(&dir, opts()).unwrap();
        for i in 0..20u64 {
            let p = format!("base-{i}").into_bytes();
            records.insert(e.append(&p).unwrap(), p);
        }
        main = Some(e.checkpoint(None, "base").unwrap().commit);
        e.section("kv").unwrap().put("base", b"v").unwrap();
        values.insert("base".into(), b"v".to_vec());
    }
    fill(&filler, free);
    let mut failures = 0u64;
    match Engine::open(&dir, opts()) {
        Err(err) => {
            check_err(free, "open", &err);
            failures += 1;
        }
        Ok(e) => {
            let kv = e.section("kv").unwrap();
            'work: for round in 0..200u64 {
                for i in 0..8u64 {
                    let p = vec![b'a' + (i as u8); 300 + (round % 50) as usize];
                    match e.append(&p) {
                        Ok(seq) => {
                            records.insert(seq, p);
                        }
                        Err(err) => {
                            check_err(free, "append", &err);
                            failures += 1;
                            break 'work;
                        }
                    }
                }
                match e.checkpoint(None, "full-disk round") {
                    Ok(c) => main = Some(c.commit),
                    Err(err) => {
                        check_err(free, "checkpoint", &err);
                        failures += 1;
                        break;
                    }
                }
                let key = format!("k{}", round % 7);
                let value = vec![round as u8; 2000];
                match kv.put(&key, &value) {
                    Ok(_) => {
                        values.insert(key, value);
                    }
                    Err(err) => {
                        check_err(free, "section put", &err);
                        failures += 1;
                        break;
                    }
                }
            }
            // Still readable while full.
            support::replay_all(&e)
                .unwrap_or_else(|err| panic!("level {free}: unreadable while full: {err}"));
        }
    }
    std::fs::remove_file(&filler).unwrap();
    // Space is back: reopen clean, everything acknowledged intact, writes resume.
    let e = Engine::open(&dir, opts())
        .unwrap_or_else(|err| panic!("free {free}: reopen after freeing space failed: {err}"));
    let replayed = support::replay_all(&e).unwrap();
    for (seq, p) in &records {
        assert_eq!(
            replayed.get(seq),
            Some(p),
            "free {free}: acknowledged record {seq} lost"
        );
    }
    assert!(
        support::on_main(&e, main.unwrap()).unwrap(),
        "free {free}: acknowledged commit lost"
    );
    let kv = e.section("kv").unwrap();
    for (k, v) in &values {
        assert_eq!(
            kv.get(k, None).unwrap().as_ref(),
            Some(v),
            "free {free}: section value {k} lost"
        );
    }
    support::check_objects(&e).unwrap_or_else(|err| panic!("free {free}: {err}"));
    let leftovers = std::fs::read_dir(dir.join("objects/tmp")).unwrap().count();
    assert_eq!(leftovers, 0, "free {free}: temp files left after reopen");
    e.append(b"resumed").unwrap();
    e.checkpoint(None, "resumed").unwrap();
    drop(e);
    std::fs::remove_dir_all(&dir).unwrap();
    (failures, (records.len() + values.len()) as u64 + 1)
}

/// Fault points of operations that need new space: creating a file,
/// writing, appending. A GC reclaiming space on a full disk must get
/// through with every one of them failing. (`mkdir` points are left out:
/// they guard `create_dir_all` of directories a store already has, which
/// needs no space; the tmpfs test below covers them for real.)
fn allocating_points() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    v.extend_from_slice(sydra_engine::objects::fault::POINTS);
    v.extend_from_slice(sydra_engine::refs::FAULT_POINTS);
    v.extend_from_slice(sydra_engine::gc::FAULT_POINTS);
    v.extend_from_slice(sydra_engine::FAULT_POINTS);
    v.retain(|p| p.contains("write") || (p.contains("create") && !p.contains("mkdir")));
    v
}

/// A store with history and garbage: `blobs` unreachable blobs of 64 KiB
/// and a WAL several segments long, all applied, so a GC with zero grace
/// has objects and segments to delete. Returns the garbage ids.
fn store_with_garbage(dir: &Path, blobs: u8) -> Vec<ObjectId> {
    let e = Engine::create(dir, opts()).unwrap();
    for i in 0..300u64 {
        e.append(format!("record {i} {}", "p".repeat(300)).as_bytes())
            .unwrap();
    }
    let durable = e.sync().unwrap();
    e.checkpoint(Some(durable), "all applied").unwrap();
    e.append(b"after").unwrap();
    e.checkpoint(None, "head").unwrap();
    (0..blobs)
        .map(|i| {
            e.repo()
                .objects()
                .put(sydra_engine::objects::Kind::Blob, &vec![i; 64 << 10])
                .unwrap()
        })
        .collect()
}

fn zero_grace() -> sydra_engine::gc::GcOptions {
    sydra_engine::gc::GcOptions {
        grace: std::time::Duration::ZERO,
        ..sydra_engine::gc::GcOptions::default()
    }
}

/// Without root: every operation that would need new space fails with
/// ENOSPC (injected), from the engine's open through the end of the GC.
/// The GC must still run and delete the garbage: it is how a full disk is
/// freed. (The child-process test below shows the same on a real full
/// tmpfs.)
#[test]
fn a_first_gc_reclaims_space_when_nothing_can_be_allocated() {
    use sydra_engine::objects::fault::{self, Fault};
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    use sydra_engine::objects::{Commit, Kind};
    use sydra_engine::refs::{PreviousValue, RefName};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let garbage = store_with_garbage(&dir, 8);
    // A commit only a deleted branch's reflog still names.
    let logged = {
        let e = Engine::open(&dir, opts()).unwrap();
        let c = Commit {
            tree: e.repo().peel_to_tree(e.head().unwrap().unwrap()).unwrap(),
            message: "only in a reflog".into(),
            ..Commit::default()
        };
        let id = e
            .repo()
            .objects()
            .put(Kind::Commit, &c.encode().unwrap())
            .unwrap();
        let name = RefName::new("refs/heads/gone").unwrap();
        let refs = e.repo().refs();
        refs.update(&name, id, PreviousValue::MustNotExist, "make")
            .unwrap();
        refs.delete(&name, PreviousValue::Any, "drop").unwrap();
        id
    };
    // Reflog entries expire at once: a GC that can record that drops them.
    let options = sydra_engine::gc::GcOptions {
        reflog_expiry: std::time::Duration::ZERO,
        ..zero_grace()
    };
    for p in allocating_points() {
        fault::arm(p, Fault::Enospc);
    }
    let result = Engine::open(&dir, opts()).and_then(|e| {
        let summary = e.gc(&options)?;
        Ok((e, summary))
    });
    fault::reset();
    let (e, summary) = result.unwrap_or_else(|err| panic!("a GC on a full disk failed: {err}"));
    assert!(
        summary.objects.swept.deleted >= garbage.len() as u64,
        "{summary:?}"
    );
    assert!(!summary.wal.deleted.is_empty(), "{summary:?}");
    for id in &garbage {
        assert!(!e.repo().objects().contains(id).unwrap(), "{id} kept");
    }
    // The new reflog cutoff could not be recorded, so the reflog entry
    // stayed a root: fsck and later GCs still count it.
    assert!(summary.objects.reflog_cutoff_deferred, "{summary:?}");
    assert!(e.repo().objects().contains(&logged).unwrap());
    support::check_objects(&e).unwrap();
    // With space, the next GC records the cutoff and collects it.
    let summary = e.gc(&options).unwrap();
    assert!(!summary.objects.reflog_cutoff_deferred);
    assert!(!e.repo().objects().contains(&logged).unwrap());
    assert!(!dir.join("shallow.tmp").exists());
}

/// With root: a real tmpfs, filled to the last byte before the first GC
/// (and before the engine is even opened). The GC must reclaim the
/// garbage, and writes work again afterwards.
#[test]
fn a_first_gc_on_a_disk_full_from_the_start_reclaims_space() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    if !capability::runs(
        "a_first_gc_on_a_disk_full_from_the_start_reclaims_space",
        private_tmpfs_capable(),
    ) {
        return;
    }
    let (stdout, _) = run_child_in_private_mount("full_disk_gc_child", "the full-disk GC child");
    assert!(
        stdout.contains("full-disk gc:"),
        "the child did not run: {stdout}"
    );
}

#[test]
fn full_disk_gc_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let mnt = mount_tmpfs("8m");
    let dir = mnt.path().join("store");
    let garbage = store_with_garbage(&dir, 16);
    fill(&mnt.path().join("filler"), 0);
    // Full: not even an empty file's first page fits.
    let probe = std::fs::write(mnt.path().join("probe"), b"x");
    assert!(probe.is_err(), "the disk is not full");
    let e = Engine::open(&dir, opts())
        .unwrap_or_else(|err| panic!("open on a full disk failed: {err}"));
    let summary = e
        .gc(&zero_grace())
        .unwrap_or_else(|err| panic!("a GC on a full disk failed: {err}"));
    for id in &garbage {
        assert!(!e.repo().objects().contains(id).unwrap(), "{id} kept");
    }
    // Space is back without removing the filler: writes work.
    e.append(b"after the gc").unwrap();
    e.checkpoint(None, "after the gc").unwrap();
    support::check_objects(&e).unwrap();
    drop(e);
    let _ = Command::new("umount").arg(mnt.path()).status();
    println!(
        "full-disk gc: {} objects and {} WAL segments deleted ({} bytes)",
        summary.objects.swept.deleted,
        summary.wal.deleted.len(),
        summary.objects.swept.bytes_freed + summary.wal.bytes_freed
    );
}
