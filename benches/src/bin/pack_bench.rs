//! The goals of the packs issue, each measured beside a baseline timed in
//! the same run, one JSON line per mode (also written to
//! `<target dir>/sydra-bench-results/packs_<mode>.json`). `benches/packs.sh`
//! runs them all; `docs/BENCHMARKS-PACKS.md` holds the results.
//!
//! ```text
//! pack_bench batch  [--objects 10000] [--size 1024] [--each 250] [--reps 5]
//! pack_bench cli    [--files 3000] [--size 1024] [--reps 5]
//! pack_bench lookup [--objects 1000000] [--size 32] [--lookups 1000000]
//! pack_bench mark   [--objects 1000000] [--reps 3]
//! pack_bench demo
//! pack_bench repack [--objects 1000000] [--size 64]
//! ```
//!
//! - `batch`: a `Durability::Batch` batch of `--objects` new blobs (one
//!   pack: temp pack + fsync, temp index + fsync, two renames, directory
//!   fsync) beside one-by-one `Durability::Each` puts (`--each` of them:
//!   an `Each` put costs the same whatever the count, so per-object times
//!   compare), the loose batch Sydra had before packs, emulated with raw
//!   system calls (per object: BLAKE3 id, `lstat` of the final name as the
//!   dedup check, the object file (Sydra's header, payload, CRC32) created
//!   in `objects/tmp`; one `syncfs`; a `renameat` per object into
//!   `objects/<2 hex>/<62 hex>`; one more `syncfs`), and the pack sequence
//!   itself done raw (the same bytes, the same syncs and renames, no dedup
//!   check, no pins, no arena). Fresh store per repetition, `syncfs`ed
//!   before the clock starts; the variants take turns within each
//!   repetition, so disk noise spreads over all of them.
//! - `cli`: `sydra hash-object -w --stdin-paths` beside `git -c
//!   core.fsync=loose-object -c core.fsyncMethod=batch hash-object -w
//!   --stdin-paths` (the method of `objects/cli_import` in
//!   `benches/benches/objects.rs`) and git without fsync, on the same
//!   files, fresh store or bare repository per repetition, process start
//!   included. The `sydra` binary is `$SYDRA_BIN`, else
//!   `<target dir>/release/sydra`.
//! - `lookup`: a store of `--objects` packed blobs in one pack (one batch,
//!   on tmpfs): `contains_packed` (index only) and `contains` (a packed miss
//!   also `lstat`s the loose name and checks `pack/`'s mtime) for present
//!   and absent ids in random order, beside the same fanout + binary search
//!   hand-written over the same mapped index bytes. Then the same objects
//!   written as batches of 1,000 with the default automatic merging, to
//!   show lookups over the packs that leaves.
//! - `mark`: the history of `gc/mark` (`sydra_benches::gitlike`), built as
//!   it is now (batches of 1,000, each a pack, merged automatically), then
//!   `repack` with `all` and `loose`; the GC's mark beside `git rev-list
//!   --objects --all` on the same history (one pack, commit-graph), taking
//!   turns. Memory as `mark_rss` measures it, in a child process: the
//!   growth of `VmHWM` during the mark per reachable object, with the
//!   anonymous and file/shmem parts of the RSS (mapped pack pages count as
//!   the latter). tmpfs (`$SYDRA_BENCH_FIXTURES`, else `/dev/shm`).
//! - `demo`: `sydra --dir D demo --json` with its default size, then
//!   `du -sk D/objects` against the apparent bytes of the files under
//!   `objects/`, and the number of files there.
//! - `repack`: `--objects` loose blobs (on tmpfs) repacked into one pack
//!   (`all` and `loose`) by a child process that reports its wall time,
//!   its peak RSS (`VmHWM`, what `getrusage` calls `ru_maxrss`) and the
//!   peaks of its anonymous and file/shmem RSS sampled every 2 ms.
//!
//! Scratch on disk goes under `$SYDRA_BENCH_TMP` (else
//! `<target dir>/sydra-bench-tmp`): durable modes need a real filesystem.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use sydra_benches::args::Args;

use rustix::fs::{AtFlags, Mode, OFlags};
use sydra_benches::gitlike::{self, Shape, git_available};
use sydra_benches::{
    memory_scratch, payload, precreate_shards, proc_status_kib, reset_peak_rss, scratch, stamp,
    syncfs, write_result,
};
use sydra_objects::store::header::encode_file;
use sydra_objects::{Durability, Kind, ObjectId, Options, RepackOptions, Store};

// ---------------------------------------------------------------- helpers

/// One JSON object, built field by field.
#[derive(Default)]
struct Json(String);

impl Json {
    fn field(&mut self, k: &str, v: &str) -> &mut Self {
        if !self.0.is_empty() {
            self.0.push_str(", ");
        }
        let _ = write!(self.0, "\"{k}\": {v}");
        self
    }
    fn num(&mut self, k: &str, v: impl std::fmt::Display) -> &mut Self {
        self.field(k, &v.to_string())
    }
    fn f(&mut self, k: &str, v: f64) -> &mut Self {
        let s = if v.is_finite() {
            format!("{v:.6}")
        } else {
            "null".into()
        };
        self.field(k, &s)
    }
    fn s(&mut self, k: &str, v: &str) -> &mut Self {
        let esc: String = v
            .chars()
            .flat_map(|c| match c {
                '"' => vec!['\\', '"'],
                '\\' => vec!['\\', '\\'],
                '\n' => vec!['\\', 'n'],
                c if (c as u32) < 0x20 => vec![' '],
                c => vec![c],
            })
            .collect();
        self.field(k, &format!("\"{esc}\""))
    }
    fn finish(&self) -> String {
        format!("{{{}}}", self.0)
    }
}

/// Mean, median, min, max of seconds.
#[derive(Debug, Clone, Copy)]
struct Summary {
    mean: f64,
    median: f64,
    min: f64,
    max: f64,
}

fn summary(v: &[f64]) -> Summary {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Summary {
        mean: s.iter().sum::<f64>() / n as f64,
        median,
        min: s[0],
        max: s[n - 1],
    }
}

fn put_summary(j: &mut Json, prefix: &str, s: Summary, per: f64) {
    j.f(&format!("{prefix}_mean_s"), s.mean)
        .f(&format!("{prefix}_median_s"), s.median)
        .f(&format!("{prefix}_min_s"), s.min)
        .f(&format!("{prefix}_max_s"), s.max)
        .f(&format!("{prefix}_per_object_mean_us"), s.mean / per * 1e6)
        .f(
            &format!("{prefix}_per_object_median_us"),
            s.median / per * 1e6,
        );
}

fn fmt_s(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else if s >= 1e-6 {
        format!("{:.2} µs", s * 1e6)
    } else {
        format!("{:.1} ns", s * 1e9)
    }
}

fn emit(mode: &str, j: &Json) {
    let line = j.finish();
    println!("{line}");
    write_result(&format!("packs_{mode}"), &format!("{line}\n"));
}

fn fs_type(p: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(p)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn open_dir(p: &Path) -> OwnedFd {
    rustix::fs::open(
        p,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

fn write_all(fd: &OwnedFd, mut b: &[u8]) {
    while !b.is_empty() {
        let n = rustix::io::write(fd, b).unwrap();
        b = &b[n..];
    }
}

/// RSS fields of this process in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Rss {
    total: u64,
    anon: u64,
    file: u64,
    shmem: u64,
}

fn rss_now() -> Rss {
    Rss {
        total: proc_status_kib("VmRSS").unwrap_or(0),
        anon: proc_status_kib("RssAnon").unwrap_or(0),
        file: proc_status_kib("RssFile").unwrap_or(0),
        shmem: proc_status_kib("RssShmem").unwrap_or(0),
    }
}

/// Samples the RSS every 2 ms until stopped; returns the peaks of each
/// field.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Rss>,
}

impl Sampler {
    fn start() -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = Rss::default();
            loop {
                let r = rss_now();
                peak.total = peak.total.max(r.total);
                peak.anon = peak.anon.max(r.anon);
                peak.file = peak.file.max(r.file);
                peak.shmem = peak.shmem.max(r.shmem);
                if s.load(Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Sampler { stop, handle }
    }

    fn finish(self) -> Rss {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

fn sydra_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SYDRA_BIN") {
        return PathBuf::from(p);
    }
    sydra_benches::target_dir().join("release").join("sydra")
}

/// A fresh store (shards present, as in a store in use) in its own scratch
/// directory, synced.
fn fresh_store(prefix: &str) -> (tempfile::TempDir, Store) {
    let dir = scratch(prefix);
    let store = Store::create(dir.path().join("objects"), Options::default()).unwrap();
    precreate_shards(store.dir());
    fs::create_dir_all(store.pack_dir()).unwrap();
    syncfs(dir.path());
    (dir, store)
}

fn distinct_payloads(n: usize, size: usize, seed: u64) -> Vec<Vec<u8>> {
    let base = payload(size, seed);
    (0..n as u64)
        .map(|i| {
            let mut p = base.clone();
            stamp(&mut p, seed.wrapping_mul(1_000_003) ^ i);
            p
        })
        .collect()
}

fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

// ------------------------------------------------------------------ batch

/// The loose batch Sydra published before packs, with raw system calls:
/// per object its id (BLAKE3), an `lstat` of the final name (the dedup
/// check), its file (header, payload, CRC32) created in `tmp/`; one
/// `syncfs`; a rename per object into its shard; one more `syncfs`.
fn raw_loose_batch(objects: &Path, payloads: &[Vec<u8>]) {
    let root = open_dir(objects);
    let tmp = open_dir(&objects.join("tmp"));
    let mut staged = Vec::with_capacity(payloads.len());
    for (i, p) in payloads.iter().enumerate() {
        let id = ObjectId::compute(Kind::Blob, p);
        let hex = id.to_hex();
        let name = format!("{}/{}", &hex[..2], &hex[2..]);
        match rustix::fs::statat(&root, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => {}
            other => panic!("{name} exists or cannot be checked: {other:?}"),
        }
        let tmp_name = format!("loose-{i}.tmp");
        let fd = rustix::fs::openat(
            &tmp,
            &tmp_name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        write_all(&fd, &encode_file(Kind::Blob, id, p));
        drop(fd);
        staged.push((tmp_name, name));
    }
    rustix::fs::syncfs(&tmp).unwrap();
    for (t, n) in &staged {
        rustix::fs::renameat(&tmp, t, &root, n).unwrap();
    }
    rustix::fs::syncfs(&root).unwrap();
}

/// The pack publish sequence with raw system calls: every object file
/// (header, payload, CRC32) appended to a temp pack behind the 16-byte
/// header, the BLAKE3 trailer, fdatasync; the index (Sydra's encoder) to a
/// temp file, fdatasync; both renamed into `pack/`; `pack/` fsynced.
fn raw_pack(objects: &Path, payloads: &[Vec<u8>]) {
    let tmp = open_dir(&objects.join("tmp"));
    let pack_dir = open_dir(&objects.join("pack"));
    let mut body = Vec::with_capacity(payloads.len() * (payloads[0].len() + 64) + 64);
    body.extend_from_slice(b"SYPK\x01\0\0\0");
    body.extend_from_slice(&(payloads.len() as u64).to_le_bytes());
    let mut entries = Vec::with_capacity(payloads.len());
    for p in payloads {
        let id = ObjectId::compute(Kind::Blob, p);
        entries.push((id, body.len() as u64));
        body.extend_from_slice(&encode_file(Kind::Blob, id, p));
    }
    let hash = ObjectId::from_bytes(*blake3::hash(&body).as_bytes());
    body.extend_from_slice(hash.as_bytes());
    let idx = sydra_objects::pack::index::encode(&hash, &mut entries).unwrap();
    let create = |name: &str| {
        rustix::fs::openat(
            &tmp,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .unwrap()
    };
    let f = create("raw.pack");
    write_all(&f, &body);
    rustix::fs::fdatasync(&f).unwrap();
    drop(f);
    let f = create("raw.idx");
    write_all(&f, &idx);
    rustix::fs::fdatasync(&f).unwrap();
    drop(f);
    let name = |ext: &str| format!("pack-{}.{ext}", hash.to_hex());
    rustix::fs::renameat(&tmp, "raw.pack", &pack_dir, name("pack")).unwrap();
    rustix::fs::renameat(&tmp, "raw.idx", &pack_dir, name("idx")).unwrap();
    rustix::fs::fsync(&pack_dir).unwrap();
}

fn mode_batch(a: &Args) {
    let n: usize = a.get("objects", 10_000);
    let size: usize = a.get("size", 1024);
    let each_n: usize = a.get("each", 250);
    let reps: usize = a.get("reps", 5);
    let payloads = distinct_payloads(n, size, 1_000);
    let each_payloads = distinct_payloads(each_n, size, 2_000);
    let mut t: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut commit_only = Vec::new();
    let mut put_only = Vec::new();
    let fs_name = fs_type(&sydra_benches::scratch_root());
    eprintln!("batch: {n} x {size} B, {each_n} one-by-one, {reps} reps, on {fs_name}");
    for rep in 0..reps {
        // Sydra batch (one pack).
        {
            let (_d, store) = fresh_store("pk-batch-");
            let start = Instant::now();
            let mut batch = store.batch(Durability::Batch);
            for p in &payloads {
                batch.put(Kind::Blob, p).unwrap();
            }
            let staged = start.elapsed();
            let (pins, stats) = batch.commit().unwrap();
            let total = start.elapsed();
            assert_eq!(stats.written, n);
            assert!(stats.pack.is_some() || n < 2);
            drop(pins);
            t.entry("sydra_batch")
                .or_default()
                .push(total.as_secs_f64());
            put_only.push(staged.as_secs_f64());
            commit_only.push((total - staged).as_secs_f64());
        }
        // The old loose batch, raw.
        {
            let (d, _store) = fresh_store("pk-loose-");
            let start = Instant::now();
            raw_loose_batch(&d.path().join("objects"), &payloads);
            t.entry("raw_loose_batch")
                .or_default()
                .push(start.elapsed().as_secs_f64());
        }
        // The pack sequence, raw.
        {
            let (d, _store) = fresh_store("pk-rawpack-");
            let start = Instant::now();
            raw_pack(&d.path().join("objects"), &payloads);
            t.entry("raw_pack")
                .or_default()
                .push(start.elapsed().as_secs_f64());
        }
        // One by one, Each.
        {
            let (_d, store) = fresh_store("pk-each-");
            let start = Instant::now();
            for p in &each_payloads {
                store.put_with(Kind::Blob, p, Durability::Each).unwrap();
            }
            t.entry("sydra_each")
                .or_default()
                .push(start.elapsed().as_secs_f64());
        }
        eprintln!(
            "  rep {rep}: batch {} loose {} raw_pack {} each x{each_n} {}",
            fmt_s(*t["sydra_batch"].last().unwrap()),
            fmt_s(*t["raw_loose_batch"].last().unwrap()),
            fmt_s(*t["raw_pack"].last().unwrap()),
            fmt_s(*t["sydra_each"].last().unwrap()),
        );
    }
    let mut j = Json::default();
    j.s("mode", "batch")
        .num("objects", n)
        .num("size", size)
        .num("each_objects", each_n)
        .num("reps", reps)
        .s("filesystem", &fs_name);
    let per = |k: &str| -> f64 { (if k == "sydra_each" { each_n } else { n }) as f64 };
    for (k, v) in &t {
        put_summary(&mut j, k, summary(v), per(k));
    }
    put_summary(&mut j, "sydra_batch_puts", summary(&put_only), n as f64);
    put_summary(
        &mut j,
        "sydra_batch_commit",
        summary(&commit_only),
        n as f64,
    );
    let pm = |k: &str| summary(&t[k]).mean / per(k);
    let pmed = |k: &str| summary(&t[k]).median / per(k);
    let b = pm("sydra_batch");
    let bm = pmed("sydra_batch");
    j.f("each_over_batch_mean", pm("sydra_each") / b)
        .f("each_over_batch_median", pmed("sydra_each") / bm)
        .f("loose_over_batch_mean", pm("raw_loose_batch") / b)
        .f("loose_over_batch_median", pmed("raw_loose_batch") / bm)
        .f("batch_over_raw_pack_mean", b / pm("raw_pack"))
        .f("batch_over_raw_pack_median", bm / pmed("raw_pack"));
    eprintln!(
        "batch per object: {} (each {}, old loose {}, raw pack {}); each/batch {:.1}x, loose/batch {:.1}x",
        fmt_s(b),
        fmt_s(pm("sydra_each")),
        fmt_s(pm("raw_loose_batch")),
        fmt_s(pm("raw_pack")),
        pm("sydra_each") / b,
        pm("raw_loose_batch") / b
    );
    emit("batch", &j);
}

// -------------------------------------------------------------------- cli

fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Duration {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn mode_cli(a: &Args) {
    let files: usize = a.get("files", 3_000);
    let size: usize = a.get("size", 1024);
    let reps: usize = a.get("reps", 5);
    let sydra = sydra_bin();
    assert!(
        sydra.is_file(),
        "no sydra binary at {} (set SYDRA_BIN)",
        sydra.display()
    );
    assert!(git_available(), "cli needs git on PATH");
    let inputs = scratch("pk-cli-inputs-");
    let mut list = String::new();
    for i in 0..files {
        let p = inputs.path().join(format!("f{i:05}"));
        fs::write(&p, payload(size, 50_000 + i as u64)).unwrap();
        list.push_str(p.to_str().unwrap());
        list.push('\n');
    }
    syncfs(inputs.path());
    let list = list.into_bytes();
    let fs_name = fs_type(inputs.path());
    eprintln!("cli: {files} files of {size} B, {reps} reps, on {fs_name}");
    let mut t: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut packs = 0u64;
    for rep in 0..reps {
        {
            let d = scratch("pk-cli-sydra-");
            let st = Command::new(&sydra)
                .arg("--dir")
                .arg(d.path())
                .arg("init")
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "sydra init failed");
            syncfs(d.path());
            let took = run_with_stdin(
                Command::new(&sydra).arg("--dir").arg(d.path()).args([
                    "hash-object",
                    "-w",
                    "--stdin-paths",
                ]),
                &list,
            );
            t.entry("sydra_hash_object")
                .or_default()
                .push(took.as_secs_f64());
            let pd = d.path().join("objects").join("pack");
            packs = fs::read_dir(&pd)
                .map(|r| {
                    r.filter(|e| {
                        e.as_ref()
                            .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".pack"))
                    })
                    .count() as u64
                })
                .unwrap_or(0);
        }
        for (name, fsync) in [
            ("git_batch_fsync", "loose-object"),
            ("git_no_fsync", "none"),
        ] {
            let d = scratch("pk-cli-git-");
            let st = Command::new("git")
                .args(["init", "--bare", "-q"])
                .arg(d.path())
                .status()
                .unwrap();
            assert!(st.success(), "git init failed");
            syncfs(d.path());
            let took = run_with_stdin(
                Command::new("git")
                    .arg(format!("--git-dir={}", d.path().display()))
                    .args(["-c", &format!("core.fsync={fsync}")])
                    .args(["-c", "core.fsyncMethod=batch"])
                    .args(["hash-object", "-w", "--stdin-paths"]),
                &list,
            );
            t.entry(name).or_default().push(took.as_secs_f64());
        }
        eprintln!(
            "  rep {rep}: sydra {} git batch fsync {} git no fsync {}",
            fmt_s(*t["sydra_hash_object"].last().unwrap()),
            fmt_s(*t["git_batch_fsync"].last().unwrap()),
            fmt_s(*t["git_no_fsync"].last().unwrap()),
        );
    }
    let mut j = Json::default();
    j.s("mode", "cli")
        .num("files", files)
        .num("size", size)
        .num("reps", reps)
        .s("filesystem", &fs_name)
        .num("sydra_packs_written", packs);
    for (k, v) in &t {
        put_summary(&mut j, k, summary(v), files as f64);
    }
    let s = summary(&t["sydra_hash_object"]);
    let g = summary(&t["git_batch_fsync"]);
    j.f("sydra_over_git_mean", s.mean / g.mean)
        .f("sydra_over_git_median", s.median / g.median)
        .f("sydra_max_over_git_min", s.max / g.min);
    eprintln!(
        "cli: sydra {} vs git batch fsync {} (mean): {:.3}x",
        fmt_s(s.mean),
        fmt_s(g.mean),
        s.mean / g.mean
    );
    emit("cli", &j);
}

// ----------------------------------------------------------------- lookup

/// Fanout + binary search over index bytes, as the index format defines
/// it (docs/FORMAT.md): the baseline for `contains_packed`.
fn raw_find(idx: &[u8], key: &[u8; 32]) -> bool {
    const FANOUT: usize = 48;
    const IDS: usize = FANOUT + 1024;
    let slot = |b: usize| {
        u32::from_le_bytes(idx[FANOUT + 4 * b..FANOUT + 4 * b + 4].try_into().unwrap()) as usize
    };
    let b = usize::from(key[0]);
    let mut hi = slot(b);
    let mut lo = if b == 0 { 0 } else { slot(b - 1) };
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match idx[IDS + 32 * mid..IDS + 32 * mid + 32].cmp(&key[..]) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// The same lookup with interpolation instead of bisection inside the
/// fanout bucket (ids are uniformly distributed hashes, so the first 8
/// bytes predict the position): each probe's value narrows the key range,
/// and the last few candidates are scanned. Not what Sydra does: a
/// measure of what the index format allows.
fn raw_find_interp(idx: &[u8], key: &[u8; 32]) -> bool {
    const FANOUT: usize = 48;
    const IDS: usize = FANOUT + 1024;
    let slot = |b: usize| {
        u32::from_le_bytes(idx[FANOUT + 4 * b..FANOUT + 4 * b + 4].try_into().unwrap()) as usize
    };
    let id_at = |i: usize| &idx[IDS + 32 * i..IDS + 32 * i + 32];
    let k64 = |b: &[u8]| u64::from_be_bytes(b[..8].try_into().unwrap());
    let b = usize::from(key[0]);
    let mut hi = slot(b);
    let mut lo = if b == 0 { 0 } else { slot(b - 1) };
    let k = k64(key);
    let mut klo = (b as u64) << 56;
    let mut khi = klo | 0x00FF_FFFF_FFFF_FFFF;
    while hi - lo > 4 {
        if k < klo || k > khi {
            return false;
        }
        let span = (hi - lo) as u128;
        let off = (u128::from(k - klo) * span / (u128::from(khi - klo) + 1)) as usize;
        let pos = lo + off.min(hi - lo - 1);
        let probe = id_at(pos);
        match probe.cmp(&key[..]) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => {
                lo = pos + 1;
                klo = k64(probe);
            }
            std::cmp::Ordering::Greater => {
                hi = pos;
                khi = k64(probe);
            }
        }
    }
    (lo..hi).any(|i| id_at(i) == &key[..])
}

/// Seconds per call of `f` over `ids`, best of `passes` passes.
fn per_lookup(ids: &[ObjectId], passes: usize, mut f: impl FnMut(&ObjectId) -> bool) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..passes {
        let start = Instant::now();
        let mut hits = 0usize;
        for id in ids {
            hits += usize::from(f(black_box(id)));
        }
        black_box(hits);
        best = best.min(start.elapsed().as_secs_f64() / ids.len() as f64);
    }
    best
}

fn lookup_rows(store: &Store, hits: &[ObjectId], misses: &[ObjectId], j: &mut Json, p: &str) {
    let packs = store.packs();
    assert!(hits.iter().take(1000).all(|id| store.contains_packed(id)));
    assert!(
        misses
            .iter()
            .take(1000)
            .all(|id| !store.contains_packed(id))
    );
    let raw_hit = per_lookup(hits, 3, |id| {
        packs
            .iter()
            .any(|pk| raw_find(pk.idx_bytes(), id.as_bytes()))
    });
    let raw_miss = per_lookup(misses, 3, |id| {
        packs
            .iter()
            .any(|pk| raw_find(pk.idx_bytes(), id.as_bytes()))
    });
    let interp_hit = per_lookup(hits, 3, |id| {
        packs
            .iter()
            .any(|pk| raw_find_interp(pk.idx_bytes(), id.as_bytes()))
    });
    let interp_miss = per_lookup(misses, 3, |id| {
        packs
            .iter()
            .any(|pk| raw_find_interp(pk.idx_bytes(), id.as_bytes()))
    });
    assert!(hits.iter().take(10_000).all(|id| {
        packs
            .iter()
            .any(|pk| raw_find_interp(pk.idx_bytes(), id.as_bytes()))
    }));
    let packed_hit = per_lookup(hits, 3, |id| store.contains_packed(id));
    let packed_miss = per_lookup(misses, 3, |id| store.contains_packed(id));
    let contains_hit = per_lookup(hits, 3, |id| store.contains(id).unwrap());
    // `contains` on a miss lists `pack/` again while its mtime is under two
    // seconds old: wait that out so the figure is the steady state.
    std::thread::sleep(Duration::from_millis(2_100));
    let few = &misses[..misses.len().min(200_000)];
    let contains_miss = per_lookup(few, 1, |id| store.contains(id).unwrap());
    j.num(&format!("{p}_packs"), packs.len())
        .f(&format!("{p}_raw_hit_ns"), raw_hit * 1e9)
        .f(&format!("{p}_raw_miss_ns"), raw_miss * 1e9)
        .f(&format!("{p}_interp_hit_ns"), interp_hit * 1e9)
        .f(&format!("{p}_interp_miss_ns"), interp_miss * 1e9)
        .f(&format!("{p}_contains_packed_hit_ns"), packed_hit * 1e9)
        .f(&format!("{p}_contains_packed_miss_ns"), packed_miss * 1e9)
        .f(&format!("{p}_contains_hit_ns"), contains_hit * 1e9)
        .f(&format!("{p}_contains_miss_ns"), contains_miss * 1e9);
    eprintln!(
        "lookup [{p}, {} packs]: contains_packed hit {} miss {}; raw search hit {} miss {}; interpolation hit {} miss {}; contains hit {} miss {}",
        packs.len(),
        fmt_s(packed_hit),
        fmt_s(packed_miss),
        fmt_s(raw_hit),
        fmt_s(raw_miss),
        fmt_s(interp_hit),
        fmt_s(interp_miss),
        fmt_s(contains_hit),
        fmt_s(contains_miss)
    );
}

fn mode_lookup(a: &Args) {
    let n: usize = a.get("objects", 1_000_000);
    let size: usize = a.get("size", 32);
    let q: usize = a.get("lookups", 1_000_000);
    let tmp = memory_scratch("pk-lookup-");
    let fs_name = fs_type(tmp.path());
    let payloads = distinct_payloads(n, size.max(8), 3_000);
    let mut j = Json::default();
    j.s("mode", "lookup")
        .num("objects", n)
        .num("size", size)
        .num("lookups", q)
        .s("filesystem", &fs_name);
    let mut ids: Vec<ObjectId> = Vec::new();
    let misses: Vec<ObjectId> = (0..q as u64)
        .map(|i| ObjectId::compute(Kind::Blob, &i.to_le_bytes()))
        .collect();
    {
        let dir = tmp.path().join("one");
        let store = Store::create(
            &dir,
            Options {
                durability: Durability::None,
                ..Options::default()
            },
        )
        .unwrap();
        let start = Instant::now();
        let mut b = store.batch(Durability::None);
        for p in &payloads {
            ids.push(b.put(Kind::Blob, p).unwrap());
        }
        b.commit().unwrap();
        j.f("one_pack_build_s", start.elapsed().as_secs_f64());
        let store = Store::open(&dir, Options::default()).unwrap();
        let mut hits: Vec<ObjectId> = (0..q).map(|i| ids[i % n]).collect();
        shuffle(&mut hits, 0x5eed);
        // Right after a publish `pack/` is listed again on every miss.
        let few = &misses[..misses.len().min(2_000)];
        let recent = per_lookup(few, 1, |id| store.contains(id).unwrap());
        j.f("one_contains_miss_recent_pack_dir_ns", recent * 1e9);
        lookup_rows(&store, &hits, &misses, &mut j, "one");
    }
    {
        let dir = tmp.path().join("batches");
        let store = Store::create(
            &dir,
            Options {
                durability: Durability::None,
                ..Options::default()
            },
        )
        .unwrap();
        let start = Instant::now();
        for chunk in payloads.chunks(1000) {
            let mut b = store.batch(Durability::None);
            for p in chunk {
                b.put(Kind::Blob, p).unwrap();
            }
            b.commit().unwrap();
        }
        j.f("batches_build_s", start.elapsed().as_secs_f64());
        let store = Store::open(&dir, Options::default()).unwrap();
        let mut hits: Vec<ObjectId> = (0..q).map(|i| ids[i % n]).collect();
        shuffle(&mut hits, 0x5eed);
        lookup_rows(&store, &hits, &misses, &mut j, "batches");
    }
    emit("lookup", &j);
}

// ------------------------------------------------------------------- mark

/// (peak RSS KiB, seconds, objects listed) of `git rev-list --objects
/// --all` under `/usr/bin/time -f %M`.
fn git_rev_list_rss(git_dir: &Path) -> Option<(u64, f64, u64)> {
    let time = Path::new("/usr/bin/time");
    if !time.is_file() {
        return None;
    }
    let start = Instant::now();
    let out = Command::new(time)
        .args(["-f", "%M", "git"])
        .arg(format!("--git-dir={}", git_dir.display()))
        .args(["rev-list", "--objects", "--all"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    let seconds = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return None;
    }
    let listed = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib = stderr.lines().last()?.trim().parse().ok()?;
    Some((kib, seconds, listed))
}

fn git_rev_list(git_dir: &Path) -> f64 {
    let start = Instant::now();
    let st = Command::new("git")
        .arg(format!("--git-dir={}", git_dir.display()))
        .args(["rev-list", "--objects", "--all"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    start.elapsed().as_secs_f64()
}

fn loose_count(store: &Store) -> u64 {
    store.iter().unwrap().count() as u64
}

/// Child: the mark's memory over the (already packed) history in `dir`.
fn mode_mark_rss(a: &Args) {
    let dir = a.path("dir");
    let expect: u64 = a.get("expect", 0);
    let refs = gitlike::open_sydra(&dir);
    // No pack page is mapped into this process yet: every page the mark
    // touches shows up in the growth (as shmem on tmpfs, file pages on disk).
    let reset = reset_peak_rss();
    let before = rss_now();
    let start = Instant::now();
    let m = gitlike::gc_mark(&refs);
    let seconds = start.elapsed().as_secs_f64();
    let peak = proc_status_kib("VmHWM").unwrap_or(0);
    let after = rss_now();
    let reached = m.reached.objects();
    assert!(m.problems.is_empty());
    assert!(expect == 0 || reached == expect, "reached {reached}");
    let set = m.set_bytes();
    drop(m);
    let per = |kib: u64| kib as f64 * 1024.0 / reached as f64;
    let mut j = Json::default();
    j.num("objects", reached)
        .num("peak_reset", reset)
        .num("rss_before_kib", before.total)
        .num("anon_before_kib", before.anon)
        .num("file_before_kib", before.file)
        .num("shmem_before_kib", before.shmem)
        .num("peak_rss_kib", peak)
        .num("anon_after_kib", after.anon)
        .num("file_after_kib", after.file)
        .num("shmem_after_kib", after.shmem)
        .f("bytes_per_object", per(peak.saturating_sub(before.total)))
        .f(
            "anon_bytes_per_object",
            per(after.anon.saturating_sub(before.anon)),
        )
        .f(
            "mapped_bytes_per_object",
            per((after.file + after.shmem).saturating_sub(before.file + before.shmem)),
        )
        .f("set_bytes_per_object", set as f64 / reached as f64)
        .f("mark_seconds", seconds);
    println!("{}", j.finish());
}

/// `--reps` marks over the history in `--dir` in one process (the first
/// maps the pack's pages; the rest are warm), one time per line: for A/B
/// runs of library changes.
fn mode_mark_time(a: &Args) {
    let dir = a.path("dir");
    let reps: usize = a.get("reps", 5);
    let refs = gitlike::open_sydra(&dir);
    for _ in 0..reps {
        let start = Instant::now();
        let m = gitlike::gc_mark(&refs);
        println!(
            "{:.4} s, {} objects",
            start.elapsed().as_secs_f64(),
            m.reached.objects()
        );
    }
}

fn mode_mark(a: &Args) {
    let n: usize = a.get("objects", sydra_benches::gc_objects());
    let reps: usize = a.get("reps", 3);
    let shape = Shape::for_objects(n);
    let (_tmp, root) = match gitlike::shared_dir(shape) {
        Some(d) => (None, d),
        None => {
            let t = memory_scratch("pk-mark-");
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    fs::create_dir_all(&root).unwrap();
    // A copy of its own: the repack below changes the store.
    let data = root.join("sydra-packs");
    let fs_name = fs_type(&root);
    let mut j = Json::default();
    j.s("mode", "mark")
        .num("objects", shape.objects())
        .num("commits", shape.commits())
        .num("reps", reps)
        .s("filesystem", &fs_name);
    if data.exists() {
        fs::remove_dir_all(&data).unwrap();
    }
    let start = Instant::now();
    gitlike::build_sydra(&data, shape);
    j.f("build_s", start.elapsed().as_secs_f64());
    eprintln!(
        "mark: built {} objects in {:.1?} on {fs_name}",
        shape.objects(),
        start.elapsed()
    );
    let git_dir = root.join("git");
    let with_git = git_available();
    if with_git {
        let start = Instant::now();
        gitlike::ensure_git(&git_dir, shape);
        j.f("git_import_s", start.elapsed().as_secs_f64());
    }
    let refs = gitlike::open_sydra(&data);
    let store = refs.objects().clone();
    let st = store.pack_stats();
    j.num("built_packs", st.packs)
        .num("built_packed_objects", st.objects)
        .num("built_loose", loose_count(&store));
    // The mark over the packs as built (one pass), for scale.
    let start = Instant::now();
    let reached = gitlike::gc_mark(&refs).reached.objects();
    assert_eq!(reached, shape.objects() as u64);
    j.f("mark_as_built_s", start.elapsed().as_secs_f64());

    let start = Instant::now();
    let r = store
        .repack(&RepackOptions {
            all: true,
            loose: true,
            dry_run: false,
            wait: true,
        })
        .unwrap();
    j.f("repack_s", start.elapsed().as_secs_f64())
        .num("repack_objects_written", r.objects_written)
        .num("repack_bytes_written", r.bytes_written);
    let st = store.pack_stats();
    assert_eq!(st.packs, 1);
    j.num("packs", st.packs)
        .num("packed_objects", st.objects)
        .num("pack_bytes", st.bytes)
        .num("idx_bytes", st.idx_bytes)
        .num("loose", loose_count(&store));
    drop(refs);
    let refs = gitlike::open_sydra(&data);
    // Warm-up: the page cache (tmpfs) and this process's mappings.
    assert_eq!(gitlike::gc_mark(&refs).reached.objects(), reached);
    if with_git {
        git_rev_list(&git_dir);
    }
    let (mut ts, mut tg) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let start = Instant::now();
        let m = gitlike::gc_mark(&refs);
        ts.push(start.elapsed().as_secs_f64());
        assert_eq!(m.reached.objects(), reached);
        drop(m);
        if with_git {
            tg.push(git_rev_list(&git_dir));
        }
        eprintln!(
            "  rep {rep}: sydra mark {} git rev-list {}",
            fmt_s(*ts.last().unwrap()),
            tg.last().map_or("-".into(), |&t| fmt_s(t))
        );
    }
    let s = summary(&ts);
    put_summary(&mut j, "sydra_mark", s, reached as f64);
    if with_git {
        let g = summary(&tg);
        put_summary(&mut j, "git_rev_list", g, reached as f64);
        j.f("git_over_sydra_mean", g.mean / s.mean)
            .f("git_over_sydra_median", g.median / s.median)
            .f("git_min_over_sydra_max", g.min / s.max);
        eprintln!(
            "mark: sydra {} git {}: git takes {:.2}x Sydra's time",
            fmt_s(s.mean),
            fmt_s(g.mean),
            g.mean / s.mean
        );
    }
    drop(refs);
    // Memory, mark_rss style, in a child process.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["mark-rss", "--dir"])
        .arg(&data)
        .args(["--expect", &reached.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "mark-rss child failed");
    let child = String::from_utf8_lossy(&out.stdout).trim().to_string();
    eprintln!("mark rss: {child}");
    j.field("rss", &child);
    if with_git && let Some((kib, secs, listed)) = git_rev_list_rss(&git_dir) {
        j.num("git_peak_rss_kib", kib)
            .f("git_rss_seconds", secs)
            .f("git_bytes_per_object", kib as f64 * 1024.0 / listed as f64);
    }
    emit("mark", &j);
}

// ------------------------------------------------------------------- demo

#[derive(Debug, Default)]
struct Tally {
    files: u64,
    dirs: u64,
    apparent: u64,
    allocated: u64,
    by_kind: BTreeMap<&'static str, (u64, u64)>,
}

fn tally(dir: &Path, t: &mut Tally) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.path().symlink_metadata().unwrap();
        if m.is_dir() {
            t.dirs += 1;
            tally(&e.path(), t);
            continue;
        }
        t.files += 1;
        t.apparent += m.len();
        t.allocated += m.blocks() * 512;
        let name = e.file_name().to_string_lossy().to_string();
        let kind = if name.ends_with(".pack") {
            "pack"
        } else if name.ends_with(".idx") {
            "idx"
        } else if dir.file_name().is_some_and(|d| d == "tmp") {
            "tmp"
        } else {
            "loose"
        };
        let k = t.by_kind.entry(kind).or_default();
        k.0 += 1;
        k.1 += m.len();
    }
}

fn du_k(args: &[&str], p: &Path) -> u64 {
    let out = Command::new("du").args(args).arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn mode_demo(_a: &Args) {
    let sydra = sydra_bin();
    assert!(sydra.is_file(), "no sydra binary at {}", sydra.display());
    let tmp = scratch("pk-demo-");
    let dir = tmp.path().join("demo");
    let fs_name = fs_type(tmp.path());
    let mut j = Json::default();
    j.s("mode", "demo").s("filesystem", &fs_name);
    let time = Path::new("/usr/bin/time");
    let timing = tmp.path().join("time.txt");
    let mut cmd = if time.is_file() {
        let mut c = Command::new(time);
        c.arg("-f").arg("%M %e").arg("-o").arg(&timing).arg(&sydra);
        c
    } else {
        Command::new(&sydra)
    };
    let start = Instant::now();
    let out = cmd
        .arg("--dir")
        .arg(&dir)
        .args(["demo", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    j.f("wall_s", start.elapsed().as_secs_f64())
        .num("exit_code", out.status.code().unwrap_or(-1));
    if let Ok(s) = fs::read_to_string(&timing)
        && let Some(kib) = s.split_whitespace().next()
    {
        j.field("max_rss_kib", kib);
    }
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        eprintln!("demo FAILED ({}):\n{tail}", out.status);
        j.s("stderr_tail", &tail);
    } else {
        let summary = String::from_utf8_lossy(&out.stdout).trim().to_string();
        j.field("summary", &summary);
    }
    let objects = dir.join("objects");
    if objects.is_dir() {
        let mut t = Tally::default();
        tally(&objects, &mut t);
        let du = du_k(&["-sk"], &objects);
        let du_apparent = du_k(&["-sk", "--apparent-size"], &objects);
        j.num("files", t.files)
            .num("dirs", t.dirs)
            .num("apparent_file_bytes", t.apparent)
            .num("allocated_file_bytes", t.allocated)
            .num("du_sk", du)
            .num("du_sk_apparent", du_apparent)
            .f(
                "du_over_apparent_files",
                du as f64 * 1024.0 / t.apparent.max(1) as f64,
            )
            .f(
                "allocated_over_apparent_files",
                t.allocated as f64 / t.apparent.max(1) as f64,
            )
            .f("du_over_du_apparent", du as f64 / du_apparent.max(1) as f64);
        for (k, (count, bytes)) in &t.by_kind {
            j.num(&format!("{k}_files"), count)
                .num(&format!("{k}_bytes"), bytes);
        }
        eprintln!(
            "demo: {} files under objects/ ({} dirs), du -sk {du} KiB, apparent files {} KiB (du --apparent-size {du_apparent} KiB): {:.3}x; {:?}",
            t.files,
            t.dirs,
            t.apparent / 1024,
            du as f64 * 1024.0 / t.apparent.max(1) as f64,
            t.by_kind
        );
    }
    emit("demo", &j);
}

// ----------------------------------------------------------------- repack

/// Child: repack the store in `--dir` (all packs, all loose objects).
fn mode_repack_child(a: &Args) {
    let dir = a.path("dir");
    let start = Instant::now();
    let store = Store::open(&dir, Options::default()).unwrap();
    let open_s = start.elapsed().as_secs_f64();
    let reset = reset_peak_rss();
    let before = rss_now();
    let sampler = Sampler::start();
    let start = Instant::now();
    let r = store
        .repack(&RepackOptions {
            all: true,
            loose: true,
            dry_run: false,
            wait: true,
        })
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let peak = sampler.finish();
    let hwm = proc_status_kib("VmHWM").unwrap_or(0);
    let n = r.objects_written.max(1);
    let per = |kib: u64| kib as f64 * 1024.0 / n as f64;
    let st = store.pack_stats();
    let mut j = Json::default();
    j.f("open_s", open_s)
        .f("repack_s", secs)
        .num("peak_reset", reset)
        .num("objects_written", r.objects_written)
        .num("loose_packed", r.loose_packed)
        .num("bytes_written", r.bytes_written)
        .num("packs_after", st.packs)
        .num("idx_bytes", st.idx_bytes)
        .num("rss_before_kib", before.total)
        .num("anon_before_kib", before.anon)
        .num("vm_hwm_kib", hwm)
        .num("peak_anon_kib", peak.anon)
        .num("peak_file_kib", peak.file)
        .num("peak_shmem_kib", peak.shmem)
        .f("hwm_growth_bytes_per_object", per(hwm - before.total))
        .f(
            "anon_growth_bytes_per_object",
            per(peak.anon.saturating_sub(before.anon)),
        );
    println!("{}", j.finish());
}

fn mode_repack(a: &Args) {
    let n: usize = a.get("objects", 1_000_000);
    let size: usize = a.get("size", 64);
    let tmp = match a.opt("dir").map(std::path::PathBuf::from) {
        Some(d) => tempfile::Builder::new()
            .prefix("pk-repack-")
            .tempdir_in(d)
            .unwrap(),
        None => memory_scratch("pk-repack-"),
    };
    let dir = tmp.path().join("objects");
    let fs_name = fs_type(tmp.path());
    let store = Store::create(
        &dir,
        Options {
            durability: Durability::None,
            ..Options::default()
        },
    )
    .unwrap();
    precreate_shards(store.dir());
    let start = Instant::now();
    let base = payload(size.max(8), 4_000);
    let mut p = base.clone();
    for i in 0..n as u64 {
        stamp(&mut p, i);
        store.put_with(Kind::Blob, &p, Durability::None).unwrap();
    }
    let build_s = start.elapsed().as_secs_f64();
    assert_eq!(loose_count(&store), n as u64);
    drop(store);
    eprintln!("repack: {n} loose objects of {size} B written in {build_s:.1} s on {fs_name}");
    let time = Path::new("/usr/bin/time");
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if time.is_file() {
        let mut c = Command::new(time);
        c.args(["-f", "%M %e"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let out = cmd
        .args(["repack-child", "--dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "repack child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let time_line = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    let mut tw = time_line.split_whitespace();
    let store = Store::open(&dir, Options::default()).unwrap();
    let st = store.pack_stats();
    assert_eq!(st.objects, n as u64);
    assert_eq!(loose_count(&store), 0);
    let mut j = Json::default();
    j.s("mode", "repack")
        .num("objects", n)
        .num("size", size)
        .s("filesystem", &fs_name)
        .f("build_s", build_s)
        .num("pack_bytes", st.bytes)
        .num("idx_bytes", st.idx_bytes)
        .field("child", &child);
    if let (Some(kib), Some(wall)) = (tw.next(), tw.next()) {
        j.field("time_max_rss_kib", kib).field("time_wall_s", wall);
    }
    eprintln!("repack child: {child} (/usr/bin/time: {time_line})");
    emit("repack", &j);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(mode) = args.get(1) else {
        eprintln!(
            "usage: pack_bench batch|cli|lookup|mark|demo|repack [--NAME VALUE ...] (see the source)"
        );
        std::process::exit(2);
    };
    let a = Args::parse(&args[2..]);
    match mode.as_str() {
        "batch" => mode_batch(&a),
        "cli" => mode_cli(&a),
        "lookup" => mode_lookup(&a),
        "mark" => mode_mark(&a),
        "mark-rss" => mode_mark_rss(&a),
        "mark-time" => mode_mark_time(&a),
        "demo" => mode_demo(&a),
        "repack" => mode_repack(&a),
        "repack-child" => mode_repack_child(&a),
        other => {
            eprintln!("unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}
