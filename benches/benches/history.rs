//! Versioned-data benches: time travel, compaction commits and diff, each
//! beside the brute-force way of answering the same question.
//!
//! Groups:
//! - `history/at`: `main@{TIME}` on a first-parent chain of
//!   `SYDRA_BENCH_COMMITS` commits (default 1,000,000; 100,000 in quick
//!   mode): the history index (mmap + binary search + verification against
//!   the objects) vs a first-parent walk from the tip. Random times.
//! - `history/compaction_commit`: replace 1 segment in a tree of
//!   `SYDRA_BENCH_SEGMENTS` segments (default 100,000) with
//!   `Engine::commit_compaction` (a durable commit) vs building the whole
//!   tree again with the arena builder. Objects written by each are counted
//!   once and stored in `history_objects.json`.
//! - `history/diff`: diff of two trees of that many segments differing in
//!   10 segments (pruned by subtree id) vs flattening both trees and
//!   comparing.
//!
//! Stores live on tmpfs (`/dev/shm`) when it exists: these benches measure
//! lookups and tree work, and a million loose commits would otherwise cost
//! minutes of setup on disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sydra_engine::compaction::{ChangeSet, SegmentChange, SegmentData};
use sydra_engine::diff::diff_trees;
use sydra_engine::history;
use sydra_engine::manifest::{Codec, ColumnStats, ColumnType, SegmentManifest};
use sydra_engine::objects::{Bump, Commit, Durability, Kind, ObjectId, Store, TreeBuilder};
use sydra_engine::refs::{PreviousValue, RefName};
use sydra_engine::wal::SyncMode;
use sydra_engine::{Engine, Repository};

fn env_usize(name: &str, default: usize, quick: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(if sydra_benches::quick() {
            quick
        } else {
            default
        })
}

fn memory_scratch(prefix: &str) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        return tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(shm)
            .unwrap();
    }
    sydra_benches::scratch(prefix)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const T0: i64 = 1_700_000_000_000_000_000;
const STEP: i64 = 60_000_000_000;

fn time_travel(c: &mut Criterion) {
    let n = env_usize("SYDRA_BENCH_COMMITS", 1_000_000, 100_000);
    let dir = memory_scratch("sydra-bench-history");
    let (repo, _) = Repository::init(dir.path()).unwrap();
    let store = sydra_benches::unsynced_store(&repo.layout().objects());
    let tree = store.put(Kind::Tree, &0u32.to_le_bytes()).unwrap();
    let mut tip = None;
    for i in 0..n as i64 {
        let commit = Commit {
            tree,
            parents: tip.into_iter().collect(),
            timestamp: T0 + i * STEP,
            message: "c".into(),
            ..Commit::default()
        };
        tip = Some(store.put(Kind::Commit, &commit.encode().unwrap()).unwrap());
    }
    let main = RefName::main_branch();
    repo.refs()
        .update(&main, tip.unwrap(), PreviousValue::Any, "bench")
        .unwrap();
    // Build the index once, outside the measurement.
    history::at(&repo, &main, T0).unwrap();
    let span = n as i64 * STEP;
    let mut g = c.benchmark_group("history/at");
    let (warm, measure) = sydra_benches::timing_cheap();
    g.warm_up_time(warm).measurement_time(measure);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    g.bench_function(format!("index/{n}"), |b| {
        b.iter(|| {
            let t = T0 + (rng.next() % span as u64) as i64;
            black_box(history::at(&repo, &main, t).unwrap())
        })
    });
    g.sample_size(10);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    g.bench_function(format!("walk/{n}"), |b| {
        b.iter(|| {
            let t = T0 + (rng.next() % span as u64) as i64;
            black_box(history::at_by_walk(&repo, tip.unwrap(), t).unwrap())
        })
    });
    g.finish();
}

fn segment(s: usize, version: u8) -> SegmentData {
    let col = |name: &str| ColumnStats {
        name: name.into(),
        ty: ColumnType::Bytes,
        codec: Codec::Raw,
        value_count: 1,
        null_count: 0,
        min: vec![],
        max: vec![],
        stored_bytes: 8,
    };
    SegmentData {
        manifest: SegmentManifest {
            series: format!("s{:04}", s / 100),
            rollup: "raw".into(),
            segment: format!("g{:03}", s % 100),
            min_ts: 0,
            max_ts: i64::from(version),
            row_count: 1,
            columns: vec![col("ts"), col("value")],
            meta: BTreeMap::new(),
        },
        columns: vec![
            ("ts".into(), vec![version; 8]),
            ("value".into(), vec![version; 8]),
        ],
    }
}

fn count(store: &Store) -> usize {
    store.iter().unwrap().count()
}

fn trees(c: &mut Criterion) {
    let n = env_usize("SYDRA_BENCH_SEGMENTS", 100_000, 20_000);
    let dir = memory_scratch("sydra-bench-segments");
    let mut opts = sydra_engine::Options::default();
    opts.wal.sync = SyncMode::Never;
    let engine = Engine::create(dir.path(), opts).unwrap();
    let all = ChangeSet {
        changes: (0..n).map(|s| SegmentChange::Add(segment(s, 1))).collect(),
        applied_seq: None,
        message: "all".into(),
    };
    engine.commit_compaction(None, &all).unwrap();
    let store = engine.repo().objects().clone();
    let base_commit = engine.head().unwrap().unwrap();
    let base_tree = store.get(&base_commit).unwrap().commit().unwrap().tree;

    // Objects written by one replace, and by one full rebuild, counted once.
    let before = count(&store);
    let one = ChangeSet {
        changes: vec![SegmentChange::Replace(segment(n / 2, 2))],
        applied_seq: None,
        message: "one".into(),
    };
    engine
        .commit_compaction(engine.head().unwrap(), &one)
        .unwrap();
    let replace_objects = count(&store) - before;
    let rebuild = |store: &Store| -> (ObjectId, usize) {
        let arena = Bump::new();
        let mut b = TreeBuilder::new(store, &arena, None).unwrap();
        let (ts, value) = (
            store.put(Kind::Blob, &[1; 8]).unwrap(),
            store.put(Kind::Blob, &[2; 8]).unwrap(),
        );
        for s in 0..n {
            let p = format!("series/s{:04}/raw/g{:03}", s / 100, s % 100);
            // Every segment has its own manifest (as real ones do), so the
            // rebuilt segment trees are all distinct; the blobs themselves
            // already exist and are not part of the rebuild.
            let manifest = ObjectId::compute(Kind::Blob, p.as_bytes());
            b.upsert(&format!("{p}/manifest"), Kind::Blob, manifest)
                .unwrap();
            b.upsert(&format!("{p}/columns/ts"), Kind::Blob, ts)
                .unwrap();
            b.upsert(&format!("{p}/columns/value"), Kind::Blob, value)
                .unwrap();
        }
        let mut batch = store.batch(Durability::None);
        let id = b.write(&mut batch).unwrap();
        let staged = batch.staged();
        batch.commit().unwrap();
        (id, staged)
    };
    let fresh = memory_scratch("sydra-bench-rebuild");
    let rebuild_store = sydra_benches::unsynced_store(&fresh.path().join("objects"));
    let (_, rebuild_trees) = rebuild(&rebuild_store);
    let rebuild_objects = count(&rebuild_store);
    sydra_benches::write_result(
        "history_objects",
        &format!(
            "{{\"segments\":{n},\"replace_one_objects_written\":{replace_objects},\"rebuild_objects_written\":{rebuild_objects},\"rebuild_trees_encoded\":{rebuild_trees}}}"
        ),
    );

    let mut g = c.benchmark_group("history/compaction_commit");
    let (warm, measure) = sydra_benches::timing_heavy();
    g.warm_up_time(warm)
        .measurement_time(measure)
        .sample_size(10);
    let mut version = 3u8;
    g.bench_function(format!("replace_one/{n}"), |b| {
        b.iter(|| {
            version = version.wrapping_add(1).max(3);
            let set = ChangeSet {
                changes: vec![SegmentChange::Replace(segment(n / 3, version))],
                applied_seq: None,
                message: "bench".into(),
            };
            black_box(
                engine
                    .commit_compaction(engine.head().unwrap(), &set)
                    .unwrap(),
            )
        })
    });
    g.bench_function(format!("rebuild_all/{n}"), |b| {
        b.iter_batched(
            || {
                sydra_benches::unsynced_store(
                    &memory_scratch("sydra-bench-rb").keep().join("objects"),
                )
            },
            |s| {
                let r = rebuild(&s);
                let _ = std::fs::remove_dir_all(s.dir().parent().unwrap());
                black_box(r)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    // Two trees differing in 10 segments.
    let arena = Bump::new();
    let mut b = TreeBuilder::new(&store, &arena, Some(base_tree)).unwrap();
    let x = store.put(Kind::Blob, b"changed").unwrap();
    for k in 0..10 {
        let s = k * (n / 10) + 7;
        b.upsert(
            &format!("series/s{:04}/raw/g{:03}/columns/ts", s / 100, s % 100),
            Kind::Blob,
            x,
        )
        .unwrap();
    }
    let (other, _pins) = b.write_durable(Durability::None).unwrap();
    let mut g = c.benchmark_group("history/diff");
    let (warm, measure) = sydra_benches::timing_cheap();
    g.warm_up_time(warm)
        .measurement_time(measure)
        .sample_size(10);
    g.bench_function(format!("pruned/{n}"), |bn| {
        bn.iter(|| black_box(diff_trees(&store, Some(base_tree), Some(other)).unwrap()))
    });
    g.bench_function(format!("flatten_compare/{n}"), |bn| {
        bn.iter(|| {
            let (fa, fb) = (flatten(&store, base_tree), flatten(&store, other));
            black_box(
                fa.iter().filter(|(p, id)| fb.get(*p) != Some(id)).count()
                    + fb.keys().filter(|p| !fa.contains_key(*p)).count(),
            )
        })
    });
    g.finish();
}

fn flatten(store: &Store, tree: ObjectId) -> BTreeMap<String, ObjectId> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(String::new(), tree)];
    while let Some((prefix, id)) = stack.pop() {
        for e in store.get(&id).unwrap().tree().unwrap().entries {
            let p = if prefix.is_empty() {
                e.name.to_owned()
            } else {
                format!("{prefix}/{}", e.name)
            };
            if e.kind == Kind::Tree {
                stack.push((p, e.id));
            } else {
                out.insert(p, e.id);
            }
        }
    }
    out
}

criterion_group!(benches, time_travel, trees);
criterion_main!(benches);
