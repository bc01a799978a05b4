//! Object store benches: Sydra beside a raw-syscall baseline and, with the
//! `peers` feature, libgit2 (git2) and gitoxide (gix); plus the `sydra`
//! command beside the `git` command for a durable import.
//!
//! Groups (criterion ids `<group>/<function>/<parameter>`):
//! - `objects/hash`: BLAKE3 alone, Sydra's id, git's SHA-1 (git2, gix).
//! - `objects/put_durable`: `Durability::Each` vs temp + write + fdatasync +
//!   rename + directory fsync.
//! - `objects/put_nosync`: `Durability::None` vs create + write + rename, and
//!   git2 `Odb::write` / gix `write_blob` (neither syncs by default).
//! - `objects/get`: verified reads (CRC; and CRC + BLAKE3) vs `fs::read`,
//!   git2 `Odb::read` (SHA-1 verified, object cache off), gix `find_blob`.
//! - `objects/batch_put`: 10k 1 KiB blobs through a `Durability::Batch`
//!   batch vs one-by-one `Durability::Each` puts (per object; the one-by-one
//!   rows time 250 puts per iteration to keep the run short), each beside its
//!   raw equivalent.
//! - `objects/tree_build`: 10k paths `series/<i/100>/raw/<i%100>` with the
//!   arena `TreeBuilder` vs git2 `TreeBuilder` and gix's tree editor, and a
//!   hand-rolled encoder for this fixed shape as the raw baseline.
//! - `objects/cli_import`: `sydra hash-object -w --stdin-paths` vs
//!   `git -c core.fsync=loose-object -c core.fsyncMethod=batch hash-object
//!   -w --stdin-paths` on the same 3,000 files of 1 KiB, fresh store each
//!   time. The `sydra` binary comes from `$SYDRA_BIN`, else
//!   `<target dir>/release/sydra`; without it the group is skipped.
//!
//! Every store starts with its 256 shard directories present (as a store in
//! use has them), and every fresh store is set up, and `syncfs`ed, outside
//! the timed region.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use sydra_benches::raw::RawDir;
use sydra_benches::{payload, precreate_shards, scratch, stamp, syncfs};
use sydra_objects::{Bump, Durability, Kind, ObjectId, Options, Store, TreeBuilder};

const SIZES: [(&str, usize); 2] = [("1KiB", 1 << 10), ("1MiB", 1 << 20)];
const BATCH: usize = 10_000;
const ONE_BY_ONE: usize = 250;
const TREE_PATHS: usize = 10_000;
const CLI_FILES: usize = 3_000;

fn cheap<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let (warm, measure) = sydra_benches::timing_cheap();
    let mut g = c.benchmark_group(name);
    g.warm_up_time(warm).measurement_time(measure);
    if sydra_benches::quick() {
        g.sample_size(10);
    }
    g
}

fn heavy<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let (warm, measure) = sydra_benches::timing_heavy();
    let mut g = c.benchmark_group(name);
    g.warm_up_time(warm)
        .measurement_time(measure)
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    g
}

/// A fresh Sydra object store (shards present, synced) in its own dir.
fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = scratch("sydra-");
    let store = Store::create(dir.path().join("objects"), Options::default()).unwrap();
    precreate_shards(store.dir());
    syncfs(dir.path());
    (dir, store)
}

fn fresh_raw() -> (tempfile::TempDir, RawDir) {
    let dir = scratch("raw-");
    let raw = RawDir::create(dir.path());
    (dir, raw)
}

/// Time `iters` calls of `op` against state made by `setup`; setup and
/// teardown are not timed.
fn per_sample<S>(iters: u64, setup: impl FnOnce() -> S, mut op: impl FnMut(&S, u64)) -> Duration {
    let state = setup();
    let start = Instant::now();
    for i in 0..iters {
        op(&state, i);
    }
    let elapsed = start.elapsed();
    drop(state);
    elapsed
}

fn bench_hash(c: &mut Criterion) {
    let mut g = cheap(c, "objects/hash");
    for (label, size) in SIZES {
        let data = payload(size, 1);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("raw_blake3", label), &data, |b, d| {
            b.iter(|| blake3::hash(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("sydra_id", label), &data, |b, d| {
            b.iter(|| ObjectId::compute(Kind::Blob, black_box(d)))
        });
        #[cfg(feature = "peers")]
        {
            g.bench_with_input(BenchmarkId::new("git2_sha1", label), &data, |b, d| {
                b.iter(|| git2::Oid::hash_object(git2::ObjectType::Blob, black_box(d)).unwrap())
            });
            g.bench_with_input(BenchmarkId::new("gix_sha1", label), &data, |b, d| {
                b.iter(|| {
                    gix::objs::compute_hash(
                        gix::hash::Kind::Sha1,
                        gix::objs::Kind::Blob,
                        black_box(d),
                    )
                    .unwrap()
                })
            });
        }
    }
    g.finish();
}

fn bench_put_durable(c: &mut Criterion) {
    let mut g = heavy(c, "objects/put_durable");
    g.throughput(Throughput::Elements(1));
    for (label, size) in SIZES {
        let base = payload(size, 2);
        g.bench_function(BenchmarkId::new("sydra_each", label), |b| {
            let mut buf = base.clone();
            b.iter_custom(|iters| {
                per_sample(iters, fresh_store, |(_, store), i| {
                    stamp(&mut buf, i);
                    store.put_with(Kind::Blob, &buf, Durability::Each).unwrap();
                })
            })
        });
        g.bench_function(BenchmarkId::new("raw_fsync", label), |b| {
            let mut buf = base.clone();
            b.iter_custom(|iters| {
                per_sample(iters, fresh_raw, |(_, raw), i| {
                    stamp(&mut buf, i);
                    raw.put(i, &buf, true);
                })
            })
        });
    }
    g.finish();
}

#[cfg(feature = "peers")]
mod peers {
    use super::*;

    /// A fresh bare git repository for git2, loose-object shards present.
    pub fn git2_repo() -> (tempfile::TempDir, git2::Repository) {
        // Like for like with Sydra: no object cache on reads, and trees may
        // name objects that were never written (Sydra does not check).
        git2::opts::enable_caching(false);
        git2::opts::strict_object_creation(false);
        let dir = scratch("git2-");
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        precreate_shards(&dir.path().join("objects"));
        syncfs(dir.path());
        (dir, repo)
    }

    /// A fresh bare git repository for gix, loose-object shards present.
    pub fn gix_repo() -> (tempfile::TempDir, gix::Repository) {
        let dir = scratch("gix-");
        let repo = gix::init_bare(dir.path()).unwrap();
        precreate_shards(&dir.path().join("objects"));
        syncfs(dir.path());
        (dir, repo)
    }
}

fn bench_put_nosync(c: &mut Criterion) {
    let mut g = cheap(c, "objects/put_nosync");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    for (label, size) in SIZES {
        let base = payload(size, 3);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("sydra_none", label), |b| {
            let mut buf = base.clone();
            b.iter_custom(|iters| {
                per_sample(iters, fresh_store, |(_, store), i| {
                    stamp(&mut buf, i);
                    store.put_with(Kind::Blob, &buf, Durability::None).unwrap();
                })
            })
        });
        g.bench_function(BenchmarkId::new("raw_nosync", label), |b| {
            let mut buf = base.clone();
            b.iter_custom(|iters| {
                per_sample(iters, fresh_raw, |(_, raw), i| {
                    stamp(&mut buf, i);
                    raw.put(i, &buf, false);
                })
            })
        });
        #[cfg(feature = "peers")]
        {
            g.bench_function(BenchmarkId::new("git2_odb_write", label), |b| {
                let mut buf = base.clone();
                b.iter_custom(|iters| {
                    per_sample(iters, peers::git2_repo, |(_, repo), i| {
                        stamp(&mut buf, i);
                        repo.odb()
                            .unwrap()
                            .write(git2::ObjectType::Blob, &buf)
                            .unwrap();
                    })
                })
            });
            g.bench_function(BenchmarkId::new("gix_write_blob", label), |b| {
                let mut buf = base.clone();
                b.iter_custom(|iters| {
                    per_sample(iters, peers::gix_repo, |(_, repo), i| {
                        stamp(&mut buf, i);
                        repo.write_blob(&buf).unwrap();
                    })
                })
            });
        }
    }
    g.finish();
}

fn bench_get(c: &mut Criterion) {
    let mut g = cheap(c, "objects/get");
    for (label, size) in SIZES {
        // Enough distinct objects that reads are not all of one hot file.
        let n: u64 = if size <= 4096 { 1024 } else { 64 };
        let mut buf = payload(size, 4);
        let (_sd, store) = fresh_store();
        let (_rd, raw) = fresh_raw();
        let mut ids = Vec::new();
        for i in 0..n {
            stamp(&mut buf, i);
            ids.push(store.put_with(Kind::Blob, &buf, Durability::None).unwrap());
            raw.put(i, &buf, false);
        }
        #[cfg(feature = "peers")]
        let (_gd, git2_repo) = peers::git2_repo();
        #[cfg(feature = "peers")]
        let (_xd, gix_repo) = peers::gix_repo();
        #[cfg(feature = "peers")]
        let (git2_ids, gix_ids) = {
            let odb = git2_repo.odb().unwrap();
            let (mut a, mut x) = (Vec::new(), Vec::new());
            for i in 0..n {
                stamp(&mut buf, i);
                a.push(odb.write(git2::ObjectType::Blob, &buf).unwrap());
                x.push(gix_repo.write_blob(&buf).unwrap().detach());
            }
            (a, x)
        };
        syncfs(_sd.path());
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("sydra_get", label), |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) % ids.len();
                let obj = store.get(&ids[i]).unwrap();
                black_box(obj.data.len())
            })
        });
        g.bench_function(BenchmarkId::new("sydra_get_verified", label), |b| {
            let mut i = 0usize;
            b.iter(|| {
                i = (i + 1) % ids.len();
                let obj = store.get_verified(&ids[i]).unwrap();
                black_box(obj.data.len())
            })
        });
        g.bench_function(BenchmarkId::new("raw_read", label), |b| {
            let mut i = 0u64;
            b.iter(|| {
                i = (i + 1) % n;
                black_box(raw.get(i).len())
            })
        });
        #[cfg(feature = "peers")]
        {
            let odb = git2_repo.odb().unwrap();
            g.bench_function(BenchmarkId::new("git2_odb_read", label), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    i = (i + 1) % git2_ids.len();
                    black_box(odb.read(git2_ids[i]).unwrap().data().len())
                })
            });
            g.bench_function(BenchmarkId::new("gix_find_blob", label), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    i = (i + 1) % gix_ids.len();
                    black_box(gix_repo.find_blob(gix_ids[i]).unwrap().data.len())
                })
            });
        }
    }
    g.finish();
}

fn bench_batch_put(c: &mut Criterion) {
    let mut g = heavy(c, "objects/batch_put");
    let payloads: Vec<Vec<u8>> = (0..BATCH as u64)
        .map(|i| payload(1024, 1_000 + i))
        .collect();
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function(BenchmarkId::new("sydra_batch", "10k_1KiB"), |b| {
        b.iter_batched(
            fresh_store,
            |(dir, store)| {
                let mut batch = store.batch(Durability::Batch);
                for p in &payloads {
                    batch.put(Kind::Blob, p).unwrap();
                }
                let (pins, stats) = batch.commit().unwrap();
                assert_eq!(stats.written, BATCH);
                (dir, store, pins)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function(BenchmarkId::new("raw_batch_syncfs", "10k_1KiB"), |b| {
        b.iter_batched(
            fresh_raw,
            |(dir, raw)| {
                raw.put_batch(0, &payloads);
                (dir, raw)
            },
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(ONE_BY_ONE as u64));
    g.bench_function(BenchmarkId::new("sydra_each_one_by_one", "250_1KiB"), |b| {
        b.iter_batched(
            fresh_store,
            |(dir, store)| {
                for p in &payloads[..ONE_BY_ONE] {
                    store.put_with(Kind::Blob, p, Durability::Each).unwrap();
                }
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function(BenchmarkId::new("raw_each_fsync", "250_1KiB"), |b| {
        b.iter_batched(
            fresh_raw,
            |(dir, raw)| {
                for (i, p) in payloads[..ONE_BY_ONE].iter().enumerate() {
                    raw.put(i as u64, p, true);
                }
                (dir, raw)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The tree-build fixture: 10k paths and the blob ids they point at (never
/// written: none of the builders checks that entries exist).
struct TreeFixture {
    paths: Vec<String>,
    /// `0`..`99` as names, in byte order (the order trees store them).
    sorted_names: Vec<String>,
    sydra_ids: Vec<ObjectId>,
}

impl TreeFixture {
    fn new() -> Self {
        let paths = (0..TREE_PATHS)
            .map(|i| format!("series/{}/raw/{}", i / 100, i % 100))
            .collect();
        let mut sorted_names: Vec<String> = (0..100).map(|j| j.to_string()).collect();
        sorted_names.sort();
        let sydra_ids = (0..TREE_PATHS as u64)
            .map(|i| ObjectId::compute(Kind::Blob, &payload(64, i)))
            .collect();
        TreeFixture {
            paths,
            sorted_names,
            sydra_ids,
        }
    }
}

/// The raw baseline for the tree build: encode this fixed shape in Sydra's
/// tree format by hand (entries already sorted), hash each tree with BLAKE3
/// and write each to a file (create + write + rename, no sync).
fn raw_tree_build(raw: &RawDir, fx: &TreeFixture) -> [u8; 32] {
    fn encode(entries: &[(u8, &str, [u8; 32])]) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + entries.len() * 40);
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (kind, name, id) in entries {
            out.push(*kind);
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(id);
        }
        out
    }
    let mut n = 0u64;
    let mut put = |bytes: Vec<u8>| -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(&[2]);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
        raw.put(n, &bytes, false);
        n += 1;
        *h.finalize().as_bytes()
    };
    let mut series: Vec<(u8, &str, [u8; 32])> = Vec::with_capacity(100);
    for k_name in &fx.sorted_names {
        let k: usize = k_name.parse().unwrap();
        let leaves: Vec<(u8, &str, [u8; 32])> = fx
            .sorted_names
            .iter()
            .map(|j| {
                let j_idx: usize = j.parse().unwrap();
                (1, j.as_str(), *fx.sydra_ids[k * 100 + j_idx].as_bytes())
            })
            .collect();
        let raw_id = put(encode(&leaves));
        let sk = put(encode(&[(2, "raw", raw_id)]));
        series.push((2, k_name.as_str(), sk));
    }
    let series_id = put(encode(&series));
    put(encode(&[(2, "series", series_id)]))
}

fn bench_tree_build(c: &mut Criterion) {
    let mut g = cheap(c, "objects/tree_build");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(TREE_PATHS as u64));
    let fx = TreeFixture::new();
    for (name, durability) in [
        ("sydra_arena_none", Durability::None),
        ("sydra_arena_batch", Durability::Batch),
    ] {
        g.bench_function(BenchmarkId::new(name, "10k_paths"), |b| {
            b.iter_batched(
                fresh_store,
                |(dir, store)| {
                    let arena = Bump::new();
                    let mut tb = TreeBuilder::new(&store, &arena, None).unwrap();
                    for (p, id) in fx.paths.iter().zip(&fx.sydra_ids) {
                        tb.upsert(p, Kind::Blob, *id).unwrap();
                    }
                    let (root, pins) = tb.write_durable(durability).unwrap();
                    drop(pins);
                    (dir, store, root)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function(BenchmarkId::new("raw_hand_encoded", "10k_paths"), |b| {
        b.iter_batched(
            fresh_raw,
            |(dir, raw)| {
                let root = raw_tree_build(&raw, &fx);
                (dir, raw, root)
            },
            BatchSize::PerIteration,
        )
    });
    #[cfg(feature = "peers")]
    {
        let git2_ids: Vec<git2::Oid> = (0..TREE_PATHS as u64)
            .map(|i| git2::Oid::hash_object(git2::ObjectType::Blob, &payload(64, i)).unwrap())
            .collect();
        let gix_ids: Vec<gix::ObjectId> = (0..TREE_PATHS as u64)
            .map(|i| {
                gix::objs::compute_hash(
                    gix::hash::Kind::Sha1,
                    gix::objs::Kind::Blob,
                    &payload(64, i),
                )
                .unwrap()
            })
            .collect();
        let names: Vec<String> = (0..100).map(|j| j.to_string()).collect();
        g.bench_function(BenchmarkId::new("git2_treebuilder", "10k_paths"), |b| {
            // git2 has no path-based builder: build each level explicitly
            // (which spares it the path parsing the others do).
            b.iter_batched(
                peers::git2_repo,
                |(dir, repo)| {
                    let mut series = repo.treebuilder(None).unwrap();
                    for k in 0..100 {
                        let mut leaves = repo.treebuilder(None).unwrap();
                        for j in 0..100 {
                            leaves
                                .insert(&names[j], git2_ids[k * 100 + j], 0o100644)
                                .unwrap();
                        }
                        let leaves_id = leaves.write().unwrap();
                        let mut sk = repo.treebuilder(None).unwrap();
                        sk.insert("raw", leaves_id, 0o040000).unwrap();
                        series
                            .insert(&names[k], sk.write().unwrap(), 0o040000)
                            .unwrap();
                    }
                    let series_id = series.write().unwrap();
                    let mut root = repo.treebuilder(None).unwrap();
                    root.insert("series", series_id, 0o040000).unwrap();
                    let root_id = root.write().unwrap();
                    (dir, root_id)
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(BenchmarkId::new("gix_tree_editor", "10k_paths"), |b| {
            // The plumbing editor: the same edits as `Repository::edit_tree`
            // without its existence check of every entry (Sydra does none).
            b.iter_batched(
                peers::gix_repo,
                |(dir, repo)| {
                    let mut ed = gix::objs::tree::Editor::new(
                        gix::objs::Tree::default(),
                        &repo.objects,
                        gix::hash::Kind::Sha1,
                    );
                    for (p, id) in fx.paths.iter().zip(&gix_ids) {
                        ed.upsert(p.split('/'), gix::objs::tree::EntryKind::Blob, *id)
                            .unwrap();
                    }
                    let root = ed
                        .write(|tree| repo.write_object(tree).map(|id| id.detach()))
                        .unwrap();
                    (dir, root)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// The `sydra` binary: `$SYDRA_BIN`, else `<target dir>/release/sydra`.
fn sydra_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("SYDRA_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("SYDRA_BIN={} is not a file", p.display()))
        };
    }
    let p = sydra_benches::target_dir().join("release").join("sydra");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "no sydra binary at {} and SYDRA_BIN is not set; build it with \
             `cargo build --release -p sydra-engine --bin sydra` (benches/run.sh does)",
            p.display()
        ))
    }
}

fn run_ok(cmd: &mut Command, stdin: &[u8]) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bench_cli_import(c: &mut Criterion) {
    let sydra = match sydra_bin() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("objects/cli_import skipped: {why}");
            return;
        }
    };
    if Command::new("git").arg("--version").output().is_err() {
        eprintln!("objects/cli_import skipped: no `git` on PATH");
        return;
    }
    let inputs = scratch("cli-inputs-");
    let mut list = String::new();
    for i in 0..CLI_FILES {
        let p = inputs.path().join(format!("f{i:05}"));
        std::fs::write(&p, payload(1024, 50_000 + i as u64)).unwrap();
        list.push_str(p.to_str().unwrap());
        list.push('\n');
    }
    syncfs(inputs.path());
    let list = list.into_bytes();

    let mut g = heavy(c, "objects/cli_import");
    g.throughput(Throughput::Elements(CLI_FILES as u64));
    let fresh = |init: &dyn Fn(&Path)| {
        let d = scratch("cli-");
        init(d.path());
        syncfs(d.path());
        d
    };
    g.bench_function(BenchmarkId::new("sydra_hash_object", "3000_1KiB"), |b| {
        b.iter_batched(
            || {
                fresh(&|d| {
                    let st = Command::new(&sydra)
                        .arg("--dir")
                        .arg(d)
                        .arg("init")
                        .stdout(Stdio::null())
                        .status()
                        .unwrap();
                    assert!(st.success(), "sydra init failed");
                })
            },
            |d| {
                run_ok(
                    Command::new(&sydra).arg("--dir").arg(d.path()).args([
                        "hash-object",
                        "-w",
                        "--stdin-paths",
                    ]),
                    &list,
                );
                d
            },
            BatchSize::PerIteration,
        )
    });
    for (name, fsync) in [
        ("git_hash_object_batch_fsync", "loose-object"),
        ("git_hash_object_no_fsync", "none"),
    ] {
        g.bench_function(BenchmarkId::new(name, "3000_1KiB"), |b| {
            b.iter_batched(
                || {
                    fresh(&|d| {
                        let st = Command::new("git")
                            .args(["init", "--bare", "-q"])
                            .arg(d)
                            .status()
                            .unwrap();
                        assert!(st.success(), "git init failed");
                    })
                },
                |d| {
                    run_ok(
                        Command::new("git")
                            .arg(format!("--git-dir={}", d.path().display()))
                            .args(["-c", &format!("core.fsync={fsync}")])
                            .args(["-c", "core.fsyncMethod=batch"])
                            .args(["hash-object", "-w", "--stdin-paths"]),
                        &list,
                    );
                    d
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = objects;
    config = Criterion::default().without_plots();
    targets = bench_hash, bench_put_durable, bench_put_nosync, bench_get, bench_batch_put,
        bench_tree_build, bench_cli_import
}
criterion_main!(objects);
