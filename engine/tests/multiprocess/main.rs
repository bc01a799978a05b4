//! Multi-process safety: while this process writes (appends, checkpoints,
//! compaction commits, snapshots) and collects garbage with zero grace and
//! retention, a reader process opens the same directory without the lock,
//! resolves `main`, verifies every object of the commit's tree and replays
//! it. Each attempt must either see a whole, consistent commit or fail with
//! a clean not-found for collected history — never a torn or corrupt
//! object. A second writer process is refused with a clear error.
//!
//! And fsck, run again and again beside a process that checkpoints and
//! collects with a retention horizon and processes that move refs, finds
//! no problem: every finding there would be a race, not damage.
//!
//! `SYDRA_MP_SECONDS=N` runs the writer longer (default 4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::num::NonZeroU64;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sydra_engine::compaction::{ChangeSet, SegmentChange, SegmentData};
use sydra_engine::gc::{GcOptions, Keep};
use sydra_engine::objects::{Kind, ObjectId};
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Error, Options, Replay, Repository, Tail};

#[path = "../support/mod.rs"]
mod support;

const READER_ENV: &str = "SYDRA_MP_READER_DIR";

fn seg(series: u32, v: u32) -> SegmentData {
    support::segment(
        &format!("s{series}"),
        "h0",
        format!("{series:04}{v:04}").as_bytes(),
    )
}

/// What one read attempt saw.
enum Seen {
    Whole,
    Collected,
}

fn is_not_found(e: &Error) -> bool {
    match e {
        Error::Objects(o) => o.is_not_found(),
        Error::Wal(sydra_engine::wal::WalError::Missing { .. }) => true,
        Error::Revision { reason, .. } => {
            reason.contains("no such object") || reason.contains("does not point")
        }
        _ => false,
    }
}

fn read_once(dir: &std::path::Path, n: u64) -> Result<Seen, String> {
    let repo = Repository::open(dir).map_err(|e| e.to_string())?;
    // Alternate between the head and an older commit that retention and
    // GC keep collecting underneath the reader.
    let rev = if n.is_multiple_of(2) {
        "main"
    } else {
        "main~4"
    };
    let attempt = || -> Result<(), Error> {
        let head = match repo.resolve(rev) {
            Ok(h) => h,
            Err(Error::Revision { reason, .. }) if reason.contains("ancestor") => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut stack: Vec<ObjectId> = vec![head];
        while let Some(id) = stack.pop() {
            let obj = repo.objects().get_verified(&id)?;
            match obj.kind {
                Kind::Commit => stack.push(obj.commit()?.tree),
                Kind::Tree => stack.extend(obj.tree()?.entries.iter().map(|e| e.id)),
                Kind::Blob => {}
            }
        }
        let mut r = Replay::new(repo.objects(), repo.layout().wal(), Some(head), Tail::None)?;
        while let Some(x) = r.next_record() {
            x?;
        }
        Ok(())
    };
    match attempt() {
        Ok(()) => Ok(Seen::Whole),
        Err(e) if is_not_found(&e) => Ok(Seen::Collected),
        Err(e) => Err(format!("torn or inconsistent read: {e}")),
    }
}

#[test]
fn reader_process() {
    let Ok(dir) = std::env::var(READER_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    // A second writer is refused, clearly.
    match Engine::open(&dir, Options::default()) {
        Err(Error::Locked { .. }) => println!("LOCKED-OK"),
        Err(e) => panic!("second writer failed with the wrong error: {e}"),
        Ok(_) => panic!("a second writer opened a locked directory"),
    }
    let (mut whole, mut collected) = (0u64, 0u64);
    let stop = dir.join("STOP-READER");
    while !stop.exists() {
        match read_once(&dir, whole + collected) {
            Ok(Seen::Whole) => whole += 1,
            Ok(Seen::Collected) => collected += 1,
            Err(e) => panic!("{e}"),
        }
    }
    println!("READS {whole} {collected}");
}

#[test]
fn a_reader_process_never_sees_a_torn_commit_while_the_writer_commits_and_collects() {
    if std::env::var(READER_ENV).is_ok() {
        return;
    }
    let seconds: u64 = std::env::var("SYDRA_MP_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let opts = Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            segment_size: 4096,
            max_record: 1024,
            ..WalOptions::default()
        },
        ..Options::default()
    };
    let e = Engine::create(&dir, opts).unwrap();
    e.append(b"first").unwrap();
    e.checkpoint(None, "first").unwrap();
    let mut reader = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "reader_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(READER_ENV, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let (mut commits, mut gcs, mut deleted) = (0u64, 0u64, 0u64);
    let mut v = 0u32;
    while start.elapsed() < Duration::from_secs(seconds) {
        for i in 0..20 {
            e.append(format!("rec {v} {i} {}", "z".repeat(i * 5)).as_bytes())
                .unwrap();
        }
        v += 1;
        let durable = e.sync().unwrap();
        let series = v % 7;
        let exists = e
            .repo()
            .resolve(&format!("main:series/s{series}/raw/h0"))
            .is_ok();
        let change = if exists {
            SegmentChange::Replace(seg(series, v))
        } else {
            SegmentChange::Add(seg(series, v))
        };
        let set = ChangeSet {
            changes: vec![change],
            applied_seq: Some(durable.saturating_sub(10)),
            message: format!("v{v}"),
        };
        e.commit_compaction(e.head().unwrap(), &set).unwrap();
        commits += 1;
        if v.is_multiple_of(5) {
            e.snapshot(Some(&format!("s{v}"))).unwrap();
        }
        if v.is_multiple_of(3) {
            let keep = Keep::Commits(NonZeroU64::new(3).unwrap());
            let g = e
                .gc(&GcOptions {
                    grace: Duration::ZERO,
                    reflog_expiry: Duration::ZERO,
                    retain: Some(keep),
                    ..GcOptions::default()
                })
                .unwrap();
            deleted += g.objects.swept.deleted
                + g.objects.packs.objects_dropped
                + g.wal.deleted.len() as u64;
            gcs += 1;
        }
    }
    std::fs::write(dir.join("STOP-READER"), b"").unwrap();
    let status = reader.wait().unwrap();
    let mut out = String::new();
    reader
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    reader
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "the reader failed:\n{out}\n{err}");
    assert!(
        out.contains("LOCKED-OK"),
        "the second writer check did not run: {out}"
    );
    let reads = out
        .lines()
        .find_map(|l| l.find("READS ").map(|i| l[i + 6..].to_owned()))
        .unwrap_or_default();
    let nums: Vec<u64> = reads
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    eprintln!(
        "multi-process: {commits} commits, {gcs} zero-grace GCs deleting {deleted} objects/segments; reader: {} whole reads, {} clean not-found",
        nums.first().unwrap_or(&0),
        nums.get(1).unwrap_or(&0)
    );
    assert!(
        nums.first().is_some_and(|&w| w > 0),
        "the reader never completed a read: {out}"
    );
    assert!(
        gcs > 0 && deleted > 0,
        "the writer never collected anything"
    );
}

/// Runs `sydra --dir DIR ARGS`; whether it succeeded.
fn sydra(dir: &std::path::Path, args: &[&str]) -> bool {
    Command::new(env!("CARGO_BIN_EXE_sydra"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

const GC_WRITER_ENV: &str = "SYDRA_MP_GC_WRITER_DIR";

/// The other process of the fsck test: commits, snapshots and collects
/// with zero grace, zero reflog expiry and a horizon of 2 commits, until
/// told to stop.
#[test]
fn gc_writer_process() {
    let Ok(dir) = std::env::var(GC_WRITER_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let e = Engine::open(&dir, Options::default()).unwrap();
    let stop = dir.join("STOP-GC-WRITER");
    let (mut commits, mut gcs) = (0u64, 0u64);
    while !stop.exists() {
        for i in 0..5 {
            e.append(format!("rec {commits} {i}").as_bytes()).unwrap();
        }
        e.checkpoint(None, "more").unwrap();
        commits += 1;
        if commits.is_multiple_of(4) {
            e.snapshot(Some(&format!("s{commits}"))).unwrap();
        }
        if commits.is_multiple_of(2) {
            let keep = Keep::Commits(NonZeroU64::new(2).unwrap());
            // Refused while fsck holds the GC lock: try again in its next
            // pause, so collections keep happening between fsck runs.
            while !stop.exists() {
                match e.gc(&GcOptions {
                    grace: Duration::ZERO,
                    reflog_expiry: Duration::ZERO,
                    retain: Some(keep),
                    ..GcOptions::default()
                }) {
                    Ok(_) => {
                        gcs += 1;
                        break;
                    }
                    Err(Error::Gc(g)) if g.is_running() => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(err) => panic!("gc: {err}"),
                }
            }
        }
    }
    println!("GC-WRITER {commits} {gcs}");
}

/// fsck beside other processes that commit, move refs and collect with
/// zero grace and a retention horizon: every finding would be a race (the
/// store is sound throughout), so fsck must report none. Before fsck took
/// the GC lock and re-read disagreeing reflogs, a GC cutting history under
/// its walk showed as missing commits, and an update between reading a ref
/// and its reflog as a reflog that does not end at its ref.
#[test]
fn fsck_beside_gc_retain_and_ref_updates_in_other_processes_finds_no_problem() {
    if std::env::var(READER_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    assert!(sydra(&dir, &["init"]));
    assert!(sydra(&dir, &["checkpoint", "-m", "first"]));
    assert!(sydra(&dir, &["branch", "side"]));
    let writer = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "gc_writer_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(GC_WRITER_ENV, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let moves = std::sync::atomic::AtomicU64::new(0);
    let mut problems: Vec<String> = Vec::new();
    let mut runs = 0u32;
    std::thread::scope(|s| {
        let (dir, stop, moves) = (&dir, &stop, &moves);
        // A third process at a time moves another ref after main, with
        // reflog lines of its own.
        s.spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if sydra(dir, &["update-ref", "refs/heads/side", "refs/heads/main"]) {
                    moves.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        for _ in 0..60 {
            runs += 1;
            let repo = Repository::open(dir).unwrap();
            let report = sydra_engine::maintenance::fsck(
                &repo,
                &sydra_engine::gc::FsckOptions::default(),
                &sydra_engine::gc::NoProgress,
            )
            .unwrap();
            problems.extend(report.problems.iter().map(|p| format!("run {runs}: {p}")));
            // Room for a GC between two runs.
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    std::fs::write(dir.join("STOP-GC-WRITER"), b"").unwrap();
    let out = writer.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the writer failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nums: Vec<u64> = stdout
        .lines()
        .find_map(|l| l.find("GC-WRITER ").map(|i| l[i + 10..].to_owned()))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let moves = moves.into_inner();
    eprintln!(
        "fsck beside gc: {runs} fsck runs; writer: {nums:?} (checkpoints, GCs); {moves} update-ref processes"
    );
    assert!(
        nums.len() == 2 && nums[0] > 0 && nums[1] > 0 && moves > 0,
        "the other processes did nothing: {nums:?}, {moves} ref moves"
    );
    assert!(
        problems.is_empty(),
        "{} problems: {problems:#?}",
        problems.len()
    );
}
