//! Corruption sweep: build a small store with a workload, then for every
//! object, ref, reflog and WAL segment (chunks are objects) flip bytes one
//! at a time — every byte of the first 64 and of small files, a fixed-seed
//! sample of the rest — and check:
//! - nothing panics (fsck, and reading the damaged item);
//! - fsck reports every flip that changes meaning; the only flips allowed
//!   to pass are in a reflog line's timestamp or message (ids unchanged),
//!   which are proven harmless by re-parsing;
//! - reading the damaged item fails with an error naming the file or id.
//!
//! `SYDRA_CORRUPTION_SAMPLES=N` flips per file beyond the first 64 bytes
//! (default 24; every byte if larger than the file).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use sydra_engine::compaction::{ChangeSet, SegmentChange};
use sydra_engine::gc::{FsckOptions, NoProgress};
use sydra_engine::objects::store::id_from_path;
use sydra_engine::refs::ReflogEntry;
use sydra_engine::section::KvSection;
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options, Replay, Repository, Tail, maintenance};

#[path = "../support/mod.rs"]
mod support;

fn opts() -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            segment_size: 2048,
            max_record: 512,
            ..WalOptions::default()
        },
        ..Options::default()
    }
}

fn build(dir: &Path) {
    let e = Engine::create(dir, opts()).unwrap();
    for i in 0..40u32 {
        e.append(format!("record {i} {}", "x".repeat((i % 9) as usize * 10)).as_bytes())
            .unwrap();
    }
    e.checkpoint(Some(5), "first").unwrap();
    let set = ChangeSet {
        changes: vec![
            SegmentChange::Add(support::segment("cpu", "h0", b"h0")),
            SegmentChange::Add(support::segment("cpu", "h1", b"h1")),
        ],
        applied_seq: Some(20),
        message: "compact".into(),
    };
    e.commit_compaction(e.head().unwrap(), &set).unwrap();
    e.snapshot(Some("snap")).unwrap();
    let kv = e.section("docs").unwrap();
    kv.put("a", b"alpha").unwrap();
    kv.put("b/c", b"gamma").unwrap();
    for i in 40..55u32 {
        e.append(format!("tail {i}").as_bytes()).unwrap();
    }
    e.sync().unwrap();
}

/// The files the sweep damages.
fn targets(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.join("HEAD")];
    let mut stack = vec![
        dir.join("objects"),
        dir.join("refs"),
        dir.join("logs"),
        dir.join("wal"),
    ];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "tmp") {
                    stack.push(p);
                }
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn positions(len: usize, samples: usize, seed: u64) -> Vec<usize> {
    if len <= 64 + samples {
        return (0..len).collect();
    }
    let mut v: Vec<usize> = (0..64).collect();
    let mut x = seed | 1;
    for _ in 0..samples {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(64 + (x % (len as u64 - 64)) as usize);
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Reflog lines parse and keep their ids: the flip touched only a
/// timestamp or a message.
fn reflog_ids_unchanged(before: &[u8], after: &[u8]) -> bool {
    let parse = |b: &[u8]| -> Option<
        Vec<(
            Option<sydra_engine::objects::ObjectId>,
            Option<sydra_engine::objects::ObjectId>,
        )>,
    > {
        let text = std::str::from_utf8(b).ok()?;
        text.lines()
            .map(|l| ReflogEntry::parse(l).ok().map(|e| (e.old, e.new)))
            .collect()
    };
    matches!((parse(before), parse(after)), (Some(a), Some(b)) if a == b)
}

/// Read the damaged item the way a user would; returns the error text, or
/// `None` if the read succeeded.
fn read_back(dir: &Path, file: &Path) -> Option<String> {
    let repo = match Repository::open(dir) {
        Ok(r) => r,
        Err(e) => return Some(e.to_string()),
    };
    if let Some(id) = id_from_path(file) {
        return repo
            .objects()
            .get_verified(&id)
            .err()
            .map(|e| e.to_string());
    }
    if file.extension().is_some_and(|x| x == "wal") {
        let head = match repo.refs().resolve(&sydra_engine::main_ref()) {
            Ok(h) => h,
            Err(e) => return Some(e.to_string()),
        };
        let mut r = match Replay::new(repo.objects(), repo.layout().wal(), head, Tail::ToEndStrict)
        {
            Ok(r) => r,
            Err(e) => return Some(e.to_string()),
        };
        while let Some(x) = r.next_record() {
            if let Err(e) = x {
                return Some(e.to_string());
            }
        }
        return None;
    }
    let mut out = None;
    for (name, _) in repo.refs().list("").unwrap_or_default() {
        if let Err(e) = repo
            .refs()
            .resolve(&name)
            .and_then(|_| repo.refs().reflog(&name))
        {
            out = Some(e.to_string());
        }
    }
    if let Err(e) = repo.refs().list("") {
        out = Some(e.to_string());
    }
    out
}

#[test]
fn every_meaningful_byte_flip_is_detected_and_nothing_panics() {
    let samples: usize = std::env::var("SYDRA_CORRUPTION_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    build(&dir);
    let clean = maintenance::fsck(
        &Repository::open(&dir).unwrap(),
        &FsckOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert!(
        clean.is_clean(),
        "the store is not clean before the sweep: {:?}",
        clean.problems
    );
    let (mut flips, mut detected, mut harmless, mut read_errors) = (0u64, 0u64, 0u64, 0u64);
    let mut undetected = Vec::new();
    for (n, file) in targets(&dir).iter().enumerate() {
        let orig = std::fs::read(file).unwrap();
        let rel = file.strip_prefix(&dir).unwrap().display().to_string();
        for pos in positions(orig.len(), samples, n as u64 + 1) {
            let mut b = orig.clone();
            b[pos] ^= 1 << (pos % 8);
            std::fs::write(file, &b).unwrap();
            flips += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let repo = Repository::open(&dir).map_err(|e| e.to_string())?;
                let report = maintenance::fsck(&repo, &FsckOptions::default(), &NoProgress)
                    .map_err(|e| e.to_string())?;
                Ok::<bool, String>(!report.is_clean())
            }));
            let found = match outcome {
                Ok(Ok(found)) => found,
                // fsck refused to run at all: that is a report too.
                Ok(Err(_)) => true,
                Err(_) => panic!("fsck panicked on {rel} with byte {pos} flipped"),
            };
            let read = catch_unwind(AssertUnwindSafe(|| read_back(&dir, file)))
                .unwrap_or_else(|_| panic!("reading {rel} with byte {pos} flipped panicked"));
            if found {
                detected += 1;
            } else if rel.starts_with("logs/") && reflog_ids_unchanged(&orig, &b) {
                harmless += 1;
            } else {
                undetected.push(format!("{rel} byte {pos}"));
            }
            if let Some(msg) = read {
                read_errors += 1;
                let named = id_from_path(file).is_some_and(|id| msg.contains(&id.to_hex()))
                    || msg.contains(file.file_name().unwrap().to_str().unwrap())
                    || msg.contains(&rel);
                assert!(
                    named,
                    "the error for {rel} byte {pos} does not name it: {msg}"
                );
            }
        }
        std::fs::write(file, &orig).unwrap();
    }
    eprintln!(
        "corruption sweep: {flips} flips over {} files: {detected} detected by fsck, {harmless} proven harmless (reflog timestamp/message), {read_errors} reads failed naming the file, {} undetected",
        targets(&dir).len(),
        undetected.len()
    );
    assert!(
        undetected.is_empty(),
        "flips fsck did not detect: {undetected:?}"
    );
    assert!(detected > flips / 2);
}
