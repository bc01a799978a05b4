//! Garbage collection and verification benches: the mark, the sweep and
//! fsck, each beside the raw I/O it cannot avoid and the git command that
//! does the same job.
//!
//! Groups (criterion ids `<group>/<function>/<parameter>`):
//! - `gc/mark`: the GC's mark (roots from refs and reflogs, then
//!   [`sydra_gc::mark`] with the options GC uses) over a history of
//!   `SYDRA_BENCH_GC_OBJECTS` objects (default 1,000,000; 100,000 in quick
//!   mode) shaped like a git repository (see `sydra_benches::gitlike`),
//!   beside `git rev-list --objects --all` on the same history imported
//!   with `git fast-import` (one pack, commit-graph written), and beside the
//!   raw I/O of the mark: read every commit and tree file, `lstat` every
//!   blob file, in the mark's order, paths computed beforehand (for a
//!   packed object: its index lookup, and a copy of a tree's or commit's
//!   entry out of the mapped pack). Both stores
//!   live on tmpfs (`/dev/shm`). Peak memory of the mark is measured apart,
//!   in its own process, by `src/bin/mark_rss.rs`.
//! - `gc/sweep`: a whole collection (`sydra_gc::collect`, grace period zero)
//!   of a store holding `SYDRA_BENCH_SWEEP_OBJECTS` (default 100,000; 20,000
//!   in quick mode) unreachable 1 KiB blobs, beside listing every shard
//!   directory and unlinking every file of a directory of as many files of
//!   the same length, and beside `git prune --expire=now` on a repository
//!   holding as many unreachable loose blobs (unpacked with `git
//!   unpack-objects`). A fresh store per iteration, built outside the
//!   timed region. On tmpfs, so the figures are CPU and VFS work: on a disk
//!   shared with other jobs, unlink latency swings too much to compare.
//! - `gc/fsck`: `maintenance::fsck` (what `sydra fsck` runs) over a store of
//!   100,000 blobs of 1 KiB, and of 256 blobs of 1 MiB, in trees under one
//!   commit, beside reading every object file and hashing it with BLAKE3
//!   (a packed object: reading its pack once and hashing each entry),
//!   BLAKE3 alone over the same bytes already in memory, and `git fsck` on
//!   the same blobs imported with `git fast-import`. Throughput counts the
//!   bytes of Sydra's object files. On tmpfs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use sydra_benches::gitlike::{self, Shape, git, git_available};
use sydra_benches::raw::RawDir;
use sydra_benches::{gc_objects, memory_scratch, payload, precreate_shards, stamp, syncfs};
use sydra_engine::Repository;
use sydra_engine::gc::{FsckOptions, GcOptions, NoProgress};
use sydra_engine::maintenance;
use sydra_engine::objects::{Commit, Durability, Entry, Kind, Tree};
use sydra_engine::refs::{PreviousValue, RefName, RefStore};

/// Payload bytes of each unreachable blob in the sweep bench.
const SWEEP_PAYLOAD: usize = 1024;

fn sweep_objects() -> usize {
    std::env::var("SYDRA_BENCH_SWEEP_OBJECTS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(if sydra_benches::quick() {
            20_000
        } else {
            100_000
        })
}

/// A group whose iterations take seconds: ten samples, each of as few
/// iterations as criterion allows (one, when an iteration is longer than a
/// tenth of the measurement time), and a single warm-up iteration.
fn long<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(if sydra_benches::quick() {
            1
        } else {
            3
        }))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    g
}

/// Time `iters` runs of `op`, each on fresh state from `setup`; setup and
/// teardown are not timed.
fn fresh_each<S>(iters: u64, mut setup: impl FnMut() -> S, mut op: impl FnMut(&mut S)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut state = setup();
        let start = Instant::now();
        op(&mut state);
        total += start.elapsed();
        drop(state);
    }
    total
}

/// Roots from refs and reflogs, then the mark with GC's options; returns
/// the objects reached.
fn gc_mark(refs: &RefStore) -> u64 {
    let m = gitlike::gc_mark(refs);
    assert!(m.problems.is_empty());
    m.reached.objects()
}

/// Run a command to completion with stdout discarded; panics on failure.
fn run_quiet(cmd: &mut Command) {
    let st = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "{cmd:?} failed");
}

fn git_cmd(git_dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg(format!("--git-dir={}", git_dir.display()));
    cmd
}

fn bench_mark(c: &mut Criterion) {
    let shape = Shape::for_objects(gc_objects());
    let (_tmp, root) = match gitlike::shared_dir(shape) {
        Some(d) => (None, d),
        None => {
            let t = memory_scratch("sydra-bench-gc-mark");
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    fs::create_dir_all(&root).unwrap();
    let started = Instant::now();
    if gitlike::ensure_sydra(&root.join("sydra"), shape) {
        eprintln!(
            "gc/mark: built {} Sydra objects ({} commits) in {:.1?}",
            shape.objects(),
            shape.changes + 1,
            started.elapsed()
        );
    }
    let refs = gitlike::open_sydra(&root.join("sydra"));
    let reached = gc_mark(&refs);
    assert_eq!(reached, shape.objects() as u64);
    sydra_benches::write_result("gc_mark", &shape.to_json());

    // The raw walk: what the mark reads, in the order it visits it. A
    // loose object is a file (read whole; a blob only `lstat`ed); a packed
    // one is a lookup in its pack's index (all a blob needs) and, for a
    // tree or commit, a copy of its entry's bytes out of the mapped pack.
    let packs = refs.objects().packs();
    let order: Vec<RawStep> = {
        let m = gitlike::gc_mark(&refs);
        m.ids()
            .map(|id| {
                let blob = refs.objects().stat(id).unwrap().kind == Kind::Blob;
                match packs.iter().position(|p| p.find(id).is_some()) {
                    Some(pack) => RawStep::Packed {
                        pack,
                        id: *id,
                        blob,
                    },
                    None => RawStep::Loose {
                        path: refs.objects().path_of(id),
                        blob,
                    },
                }
            })
            .collect()
    };

    let git_dir = root.join("git");
    let with_git = git_available();
    if with_git {
        let started = Instant::now();
        if gitlike::ensure_git(&git_dir, shape) {
            eprintln!(
                "gc/mark: imported the same history into git in {:.1?}",
                started.elapsed()
            );
        }
        let listed = git(&git_dir, &["rev-list", "--objects", "--all"], None)
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert_eq!(listed as u64, reached, "git must list the same objects");
    }

    let mut g = long(c, "gc/mark");
    g.throughput(Throughput::Elements(reached));
    let value = reached.to_string();
    g.bench_function(BenchmarkId::new("sydra_mark", &value), |b| {
        b.iter(|| black_box(gc_mark(&refs)))
    });
    g.bench_function(BenchmarkId::new("raw_read_lstat", &value), |b| {
        b.iter(|| {
            let mut bytes = 0u64;
            for step in &order {
                bytes += match step {
                    RawStep::Loose { path, blob: true } => {
                        fs::symlink_metadata(path).unwrap().len()
                    }
                    RawStep::Loose { path, blob: false } => fs::read(path).unwrap().len() as u64,
                    RawStep::Packed { pack, id, blob } => {
                        let p = &packs[*pack];
                        let at = p.find(id).unwrap();
                        if *blob {
                            at
                        } else {
                            let (_, range) = p.entry(id, at, false).unwrap();
                            p.bytes()[range].to_vec().len() as u64
                        }
                    }
                };
            }
            black_box(bytes)
        })
    });
    if with_git {
        g.bench_function(BenchmarkId::new("git_rev_list", &value), |b| {
            b.iter(|| run_quiet(git_cmd(&git_dir).args(["rev-list", "--objects", "--all"])))
        });
    }
    g.finish();
}

/// One object of the mark's raw baseline (see `gc/mark`).
enum RawStep {
    Loose {
        path: PathBuf,
        blob: bool,
    },
    Packed {
        pack: usize,
        id: sydra_engine::objects::ObjectId,
        blob: bool,
    },
}

/// A data directory whose store holds `n` unreachable blobs (shards
/// present, synced).
fn garbage_store(n: usize) -> (tempfile::TempDir, RefStore) {
    let dir = memory_scratch("sydra-gc-");
    let store = sydra_benches::unsynced_store(&dir.path().join("objects"));
    precreate_shards(store.dir());
    let refs = RefStore::create(dir.path(), store.clone()).unwrap();
    let mut buf = payload(SWEEP_PAYLOAD, 0x5EE9);
    // One put each: loose files, which the sweep unlinks one by one (a
    // batch would write them into a pack, which GC drops whole).
    for i in 0..n {
        stamp(&mut buf, i as u64);
        store.put(Kind::Blob, &buf).unwrap();
    }
    assert_eq!(store.packs().len(), 0, "the sweep's garbage is loose");
    syncfs(dir.path());
    (dir, refs)
}

/// A directory laid out like a store holding `n` files of `len` bytes.
fn garbage_raw(n: usize, len: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = memory_scratch("raw-gc-");
    let raw = RawDir::create(dir.path());
    let mut buf = payload(len, 0x5EE9);
    for i in 0..n as u64 {
        stamp(&mut buf, i);
        raw.put(i, &buf, false);
    }
    syncfs(dir.path());
    let root = dir.path().to_path_buf();
    (dir, root)
}

/// List one shard directory and unlink what is in it.
fn unlink_shard(root: &Path, shard: u32) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(root.join(format!("{shard:02x}"))).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
        n += 1;
    }
    n
}

/// Every shard directory, one after another.
fn raw_sweep(root: &Path) -> u64 {
    (0..256u32).map(|shard| unlink_shard(root, shard)).sum()
}

/// [`raw_sweep`] with the shards handed out to `threads` threads, as the
/// sweep hands them out to its workers.
fn raw_sweep_threads(root: &Path, threads: usize) -> u64 {
    let next = AtomicU32::new(0);
    let total = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let shard = next.fetch_add(1, Ordering::Relaxed);
                    if shard >= 256 {
                        break;
                    }
                    total.fetch_add(unlink_shard(root, shard), Ordering::Relaxed);
                }
            });
        }
    });
    total.into_inner()
}

/// A pack of `n` blobs (the sweep's payloads), built once with `git
/// fast-import`, to be unpacked into loose objects per iteration.
fn garbage_pack(n: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = memory_scratch("git-pack-");
    let git_dir = dir.path().join("repo.git");
    run_quiet(
        Command::new("git")
            .args(["init", "--bare", "-q", "--initial-branch=main"])
            .arg(&git_dir),
    );
    let mut stream = Vec::with_capacity(n * (SWEEP_PAYLOAD + 16));
    let mut buf = payload(SWEEP_PAYLOAD, 0x5EE9);
    for i in 0..n as u64 {
        stamp(&mut buf, i);
        writeln!(stream, "blob\ndata {}", buf.len()).unwrap();
        stream.extend_from_slice(&buf);
        stream.push(b'\n');
    }
    git(&git_dir, &["fast-import", "--quiet"], Some(&stream));
    let pack = fs::read_dir(git_dir.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .expect("fast-import wrote no pack");
    (dir, pack)
}

/// A bare repository holding the pack's objects as loose, unreachable
/// objects (synced).
fn garbage_git(pack: &Path) -> tempfile::TempDir {
    let dir = memory_scratch("git-gc-");
    run_quiet(
        Command::new("git")
            .args(["init", "--bare", "-q", "--initial-branch=main"])
            .arg(dir.path()),
    );
    let st = git_cmd(dir.path())
        .args(["unpack-objects", "-q"])
        .stdin(fs::File::open(pack).unwrap())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "git unpack-objects failed");
    syncfs(dir.path());
    dir
}

fn bench_sweep(c: &mut Criterion) {
    let n = sweep_objects();
    let value = format!("{}k_1KiB", n / 1000);
    let file_len = {
        let (_d, refs) = garbage_store(1);
        let id = refs.objects().iter().unwrap().next().unwrap().unwrap();
        refs.objects().stat(&id).unwrap().file_len as usize
    };
    let mut g = long(c, "gc/sweep");
    g.throughput(Throughput::Elements(n as u64));
    let options = GcOptions {
        grace: Duration::ZERO,
        ..GcOptions::default()
    };
    g.bench_function(BenchmarkId::new("sydra_gc", &value), |b| {
        b.iter_custom(|iters| {
            fresh_each(
                iters,
                || garbage_store(n),
                |(_, refs)| {
                    let r = sydra_engine::gc::collect(refs, &options, &NoProgress).unwrap();
                    assert_eq!(r.swept.deleted, n as u64);
                },
            )
        })
    });
    g.bench_function(BenchmarkId::new("raw_unlink", &value), |b| {
        b.iter_custom(|iters| {
            fresh_each(
                iters,
                || garbage_raw(n, file_len),
                |(_, root)| assert_eq!(raw_sweep(root), n as u64),
            )
        })
    });
    let threads = sydra_engine::gc::sweep::default_threads();
    g.bench_function(
        BenchmarkId::new(format!("raw_unlink_{threads}_threads"), &value),
        |b| {
            b.iter_custom(|iters| {
                fresh_each(
                    iters,
                    || garbage_raw(n, file_len),
                    |(_, root)| assert_eq!(raw_sweep_threads(root, threads), n as u64),
                )
            })
        },
    );
    if git_available() {
        let (_pack_dir, pack) = garbage_pack(n);
        g.bench_function(BenchmarkId::new("git_prune", &value), |b| {
            b.iter_custom(|iters| {
                fresh_each(
                    iters,
                    || garbage_git(&pack),
                    |dir| run_quiet(git_cmd(dir.path()).args(["prune", "--expire=now"])),
                )
            })
        });
    }
    g.finish();
}

/// A data directory with `count` blobs of `size` bytes in trees of up to
/// 1,000 entries under one commit on `refs/heads/main`; also returns where
/// every object is stored (its file, or its pack's entry) and the bytes
/// of those files.
fn fsck_store(count: usize, size: usize) -> (tempfile::TempDir, Repository, Vec<ObjectFile>, u64) {
    let dir = memory_scratch("sydra-bench-fsck");
    let (repo, _) = Repository::init(dir.path()).unwrap();
    let store = sydra_benches::unsynced_store(&repo.layout().objects());
    let mut buf = payload(size, 0xF5C4);
    let mut ids = Vec::with_capacity(count + count / 1000 + 2);
    let mut dirs = Vec::new();
    for chunk in 0..count.div_ceil(1000) {
        let mut batch = store.batch(Durability::None);
        let mut entries = Vec::new();
        for i in chunk * 1000..((chunk + 1) * 1000).min(count) {
            stamp(&mut buf, i as u64);
            let id = batch.put(Kind::Blob, &buf).unwrap();
            ids.push(id);
            entries.push(Entry {
                kind: Kind::Blob,
                name: format!("f{i:06}"),
                id,
            });
        }
        let tree = batch
            .put(Kind::Tree, &Tree::from_entries(entries).unwrap().encode())
            .unwrap();
        ids.push(tree);
        dirs.push(Entry {
            kind: Kind::Tree,
            name: format!("d{chunk:04}"),
            id: tree,
        });
        drop(batch.commit().unwrap());
    }
    let root = store
        .put(Kind::Tree, &Tree::from_entries(dirs).unwrap().encode())
        .unwrap();
    let commit = Commit {
        tree: root,
        timestamp: sydra_engine::now_ns(),
        message: "fsck fixture".into(),
        ..Commit::default()
    };
    let tip = store.put(Kind::Commit, &commit.encode().unwrap()).unwrap();
    ids.extend([root, tip]);
    repo.refs()
        .update(&RefName::main_branch(), tip, PreviousValue::Any, "bench")
        .unwrap();
    // Each object's bytes as stored: a loose file whole, or its entry in
    // a pack (the batches above write packs), grouped by file.
    let packs = store.packs();
    let mut in_pack: Vec<Vec<std::ops::Range<usize>>> = vec![Vec::new(); packs.len()];
    let mut files: Vec<ObjectFile> = Vec::new();
    for id in &ids {
        match packs
            .iter()
            .enumerate()
            .find_map(|(i, p)| Some((i, p.find(id)?)))
        {
            Some((i, at)) => {
                let (e, _) = packs[i].entry(id, at, false).unwrap();
                in_pack[i].push(e.offset as usize..(e.offset + e.len) as usize);
            }
            None => {
                let path = store.path_of(id);
                let len = fs::metadata(&path).unwrap().len() as usize;
                files.push(ObjectFile {
                    path,
                    objects: std::iter::once(0..len).collect(),
                })
            }
        }
    }
    for (p, objects) in packs.iter().zip(in_pack) {
        if !objects.is_empty() {
            files.push(ObjectFile {
                path: p.path().to_path_buf(),
                objects,
            });
        }
    }
    let bytes = files
        .iter()
        .map(|f| fs::metadata(&f.path).unwrap().len())
        .sum();
    (dir, repo, files, bytes)
}

/// A file of the fsck fixture and where its objects lie in it (a loose
/// object's file whole; a pack's entries).
struct ObjectFile {
    path: PathBuf,
    objects: Vec<std::ops::Range<usize>>,
}

/// The same blobs in the same layout, imported into a bare git repository.
fn fsck_git(git_dir: &Path, count: usize, size: usize) {
    run_quiet(
        Command::new("git")
            .args(["init", "--bare", "-q", "--initial-branch=main"])
            .arg(git_dir),
    );
    let mut s = Vec::with_capacity(count * (size + 64));
    writeln!(
        s,
        "commit refs/heads/main\ncommitter bench <bench@example.invalid> 1700000000 +0000\ndata 12\nfsck fixture"
    )
    .unwrap();
    let mut buf = payload(size, 0xF5C4);
    for i in 0..count {
        stamp(&mut buf, i as u64);
        writeln!(
            s,
            "M 100644 inline d{:04}/f{i:06}\ndata {}",
            i / 1000,
            buf.len()
        )
        .unwrap();
        s.extend_from_slice(&buf);
        s.push(b'\n');
    }
    s.push(b'\n');
    git(git_dir, &["fast-import", "--quiet"], Some(&s));
}

fn bench_fsck(c: &mut Criterion) {
    let mut g = long(c, "gc/fsck");
    for (label, count, size) in [("100k_1KiB", 100_000, 1 << 10), ("256_1MiB", 256, 1 << 20)] {
        let (_dir, repo, files, bytes) = fsck_store(count, size);
        let git_dir = memory_scratch("git-bench-fsck");
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(BenchmarkId::new("sydra_fsck", label), |b| {
            b.iter(|| {
                let r = maintenance::fsck(&repo, &FsckOptions::default(), &NoProgress).unwrap();
                assert!(r.is_clean(), "{:?}", r.problems);
                black_box(r.objects().bytes)
            })
        });
        g.bench_function(BenchmarkId::new("raw_read_blake3", label), |b| {
            b.iter(|| {
                for f in &files {
                    let data = fs::read(&f.path).unwrap();
                    for r in &f.objects {
                        black_box(blake3::hash(&data[r.clone()]));
                    }
                }
            })
        });
        let contents: Vec<Vec<u8>> = files.iter().map(|f| fs::read(&f.path).unwrap()).collect();
        g.bench_function(BenchmarkId::new("raw_blake3", label), |b| {
            b.iter(|| {
                for (data, f) in contents.iter().zip(&files) {
                    for r in &f.objects {
                        black_box(blake3::hash(&data[r.clone()]));
                    }
                }
            })
        });
        drop(contents);
        if git_available() {
            let git_dir = git_dir.path();
            fsck_git(git_dir, count, size);
            g.bench_function(BenchmarkId::new("git_fsck", label), |b| {
                b.iter(|| run_quiet(git_cmd(git_dir).args(["fsck", "--no-progress"])))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_mark, bench_sweep, bench_fsck);
criterion_main!(benches);
