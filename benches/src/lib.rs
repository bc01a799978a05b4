//! Shared helpers for the Sydra benches: run settings (quick mode, sizes),
//! where scratch directories live, deterministic payloads, peak-RSS probes,
//! the raw-syscall baselines that Sydra is measured against ([`raw`]), and
//! the git-shaped history the GC benches mark ([`gitlike`]).
//!
//! The baselines do the same I/O as Sydra with nothing else: no header, no
//! CRC, no dedup check, no pins. The ratio Sydra / baseline is therefore the
//! cost of Sydra's format and bookkeeping on top of the syscalls it cannot
//! avoid.
//!
//! Scratch directories go under `$SYDRA_BENCH_TMP`, else
//! `<cargo target dir>/sydra-bench-tmp`, so the durable benches run on the
//! filesystem the report names (never a tmpfs `/tmp`, where fsync is free).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod args;
pub mod gitlike;
pub mod raw;
pub mod synth;

/// An object store in `dir` (created if missing) that does not sync: for
/// fixtures and for benches that measure lookups and tree work, not
/// durability.
pub fn unsynced_store(dir: &Path) -> sydra_objects::Store {
    sydra_objects::Store::create(
        dir,
        sydra_objects::Options {
            durability: sydra_objects::Durability::None,
            ..sydra_objects::Options::default()
        },
    )
    .unwrap()
}

/// Whether `SYDRA_BENCH_QUICK` asks for a smoke run (short measurement).
pub fn quick() -> bool {
    std::env::var("SYDRA_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Warm-up and measurement time for cheap (in-memory or page-cache) benches.
pub fn timing_cheap() -> (Duration, Duration) {
    if quick() {
        (Duration::from_millis(200), Duration::from_millis(500))
    } else {
        (Duration::from_secs(1), Duration::from_secs(3))
    }
}

/// Warm-up and measurement time for fsync-heavy benches (sample size 10).
pub fn timing_heavy() -> (Duration, Duration) {
    if quick() {
        (Duration::from_millis(200), Duration::from_secs(1))
    } else {
        (Duration::from_secs(1), Duration::from_secs(5))
    }
}

/// MiB of WAL records for the replay bench: `SYDRA_BENCH_REPLAY_MB`,
/// default 1024 (64 in quick mode).
pub fn replay_mb() -> u64 {
    std::env::var("SYDRA_BENCH_REPLAY_MB")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&mb| mb > 0)
        .unwrap_or(if quick() { 64 } else { 1024 })
}

/// Payload bytes per record for the replay bench:
/// `SYDRA_BENCH_REPLAY_RECORD`, default 100 (as in the append bench).
pub fn replay_record_len() -> usize {
    std::env::var("SYDRA_BENCH_REPLAY_RECORD")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100)
}

/// Objects in the history the `gc/mark` bench and `mark_rss` build:
/// `SYDRA_BENCH_GC_OBJECTS`, default 1,000,000 (100,000 in quick mode).
pub fn gc_objects() -> usize {
    std::env::var("SYDRA_BENCH_GC_OBJECTS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(if quick() { 100_000 } else { 1_000_000 })
}

/// A fresh directory on tmpfs (`/dev/shm`) when there is one, else a
/// [`scratch`] directory; removed on drop. For benches of lookups and tree
/// work, where building a million loose files on disk would cost minutes
/// of setup and the disk's noise would drown what is measured.
pub fn memory_scratch(prefix: &str) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        return tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(shm)
            .unwrap();
    }
    scratch(prefix)
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else the ancestor of
/// this executable that holds cargo's `CACHEDIR.TAG`.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            if dir.join("CACHEDIR.TAG").is_file() {
                return dir.to_path_buf();
            }
        }
    }
    std::env::temp_dir()
}

/// Root of the scratch directories (created if missing).
pub fn scratch_root() -> PathBuf {
    let root = std::env::var_os("SYDRA_BENCH_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("sydra-bench-tmp"));
    fs::create_dir_all(&root).unwrap();
    root
}

/// A fresh scratch directory, removed on drop.
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(scratch_root())
        .unwrap()
}

/// `len` pseudo-random (incompressible) bytes, the same for the same seed.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Make `buf` distinct for each `n` by writing `n` into its first 8 bytes
/// (so every put writes a new object instead of deduplicating).
pub fn stamp(buf: &mut [u8], n: u64) {
    let k = buf.len().min(8);
    buf[..k].copy_from_slice(&n.to_le_bytes()[..k]);
}

/// Flush the whole filesystem holding `path` (Linux `syncfs`). Used in
/// untimed setup so writeback of earlier work does not land in a timed
/// fsync, and by the raw batch baseline.
pub fn syncfs(path: &Path) {
    let f = File::open(path).unwrap();
    rustix::fs::syncfs(&f).unwrap();
}

/// fsync a directory: the workspace's one directory fsync (the same open
/// and fsync syscalls as a hand-written baseline), with no fault point.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    sydra_objects::fs::sync_dir(path, || Ok(())).map_err(|e| match e {
        sydra_objects::fs::SyncDirError::Open { source, .. }
        | sydra_objects::fs::SyncDirError::Sync { source, .. } => source,
    })
}

/// Create the 256 shard directories `00`..`ff` under `dir`, as a store
/// that has been in use has them (so a timed put never pays for creating
/// one).
pub fn precreate_shards(dir: &Path) {
    for i in 0..256u32 {
        let d = dir.join(format!("{i:02x}"));
        match fs::create_dir(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("cannot create {}: {e}", d.display()),
        }
    }
}

/// Where the benches leave figures criterion does not record (group-commit
/// counters, fixture sizes, peak RSS) for the report:
/// `<target dir>/sydra-bench-results/`.
pub fn results_dir() -> PathBuf {
    let d = target_dir().join("sydra-bench-results");
    fs::create_dir_all(&d).unwrap();
    d
}

/// Write `<results dir>/<name>.json`.
pub fn write_result(name: &str, json: &str) {
    fs::write(results_dir().join(format!("{name}.json")), json).unwrap();
}

/// A value from `/proc/self/status` in KiB (`VmHWM`, `VmRSS`, ...).
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Reset the peak-RSS counter (`VmHWM`) to the current RSS (Linux >= 4.0,
/// `echo 5 > /proc/self/clear_refs`). Returns whether it worked.
pub fn reset_peak_rss() -> bool {
    OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
        .and_then(|mut f| f.write_all(b"5"))
        .is_ok()
}

/// A WAL built for the replay bench: a checkpointed engine whose head
/// commit covers every record with chunks.
#[derive(Debug)]
pub struct ReplayFixture {
    /// The engine (kept open: `replay_head` needs it).
    pub engine: sydra_engine::Engine,
    /// Records appended.
    pub records: u64,
    /// Payload bytes appended.
    pub payload_bytes: u64,
    /// Bytes of record data in the segments (headers + payloads).
    pub framed_bytes: u64,
    /// The segment files, oldest first.
    pub segments: Vec<PathBuf>,
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
}

/// Append `mb` MiB of framed records of `record_len` payload bytes with
/// `SyncMode::Never`, then checkpoint so the head commit's chunks cover
/// them all (replay then verifies each chunk's CRC32 and BLAKE3).
pub fn build_replay_fixture(mb: u64, record_len: usize) -> ReplayFixture {
    use sydra_engine::wal::{SyncMode, WalOptions};
    let dir = scratch("replay-");
    let options = sydra_engine::Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            ..WalOptions::default()
        },
        ..sydra_engine::Options::default()
    };
    let engine = sydra_engine::Engine::create(dir.path().join("data"), options).unwrap();
    let framed = (raw::RECORD_HEADER_LEN + record_len) as u64;
    let target = mb << 20;
    let mut records = 0u64;
    let mut batch: Vec<Vec<u8>> = (0..1024)
        .map(|i| payload(record_len, 0xAB00 + i as u64))
        .collect();
    while records * framed < target {
        for (i, p) in batch.iter_mut().enumerate() {
            stamp(p, records + i as u64);
        }
        engine.append_batch(&batch).unwrap();
        records += batch.len() as u64;
    }
    engine.checkpoint(None, "bench: replay fixture").unwrap();
    let wal_dir = dir.path().join("data").join("wal");
    let mut segments: Vec<PathBuf> = fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segments.sort();
    ReplayFixture {
        engine,
        records,
        payload_bytes: records * record_len as u64,
        framed_bytes: records * framed,
        segments,
        dir,
    }
}

/// Replay everything from the head, touching each payload; returns
/// (records, payload bytes).
pub fn replay_all(engine: &sydra_engine::Engine) -> (u64, u64) {
    let mut replay = engine.replay_head().unwrap();
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(r) = replay.next_record() {
        let (_seq, data) = r.unwrap();
        n += 1;
        bytes += data.len() as u64;
    }
    (n, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_deterministic_and_distinct() {
        assert_eq!(payload(100, 1), payload(100, 1));
        assert_ne!(payload(100, 1), payload(100, 2));
        let mut a = payload(16, 3);
        let mut b = a.clone();
        stamp(&mut a, 1);
        stamp(&mut b, 2);
        assert_ne!(a, b);
    }

    #[test]
    fn raw_frame_matches_sydra_record_bytes() {
        let mut ours = Vec::new();
        raw::frame(&mut ours, 42, b"hello");
        let mut theirs = Vec::new();
        sydra_engine::wal::record::encode_record(&mut theirs, 42, b"hello");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn proc_status_is_readable() {
        assert!(proc_status_kib("VmHWM").is_some_and(|k| k > 0));
    }
}
