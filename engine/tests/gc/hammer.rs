use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use sydra_engine::gc::Keep;
use sydra_engine::objects::{Commit, Durability, Entry, Kind, ObjectId, Tree};
use sydra_engine::refs::{PreviousValue, RefName};

use super::common::{Rng, eager, fsck, open, payload};

/// GC runs the test insists on (override with SYDRA_GC_HAMMER_RUNS for a
/// longer soak); it stops early only at the time limit, which fails it.
fn wanted_runs() -> u64 {
    std::env::var("SYDRA_GC_HAMMER_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

const MIN_RUNS: u64 = 24;

/// One writer: commits on its own branch through pinned batches, reusing
/// contents from a small pool so that old, by now unreachable objects are
/// deduplicated (and freshened) while GCs run; every few commits it starts
/// over without a parent, orphaning its history.
fn writer(e: &sydra_engine::Engine, me: usize, stop: &AtomicBool, commits: &AtomicU64) {
    let store = e.repo().objects().clone();
    let refs = e.repo().refs().clone();
    let name = RefName::new(&format!("refs/heads/w{me}")).unwrap();
    let mut rng = Rng::new(me as u64 + 100);
    let mut tip: Option<ObjectId> = None;
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let mut batch = store.batch(Durability::None);
        let mut entries = Vec::new();
        for k in 0..3 {
            // 40 contents shared by all writers: most exist already, many
            // unreachable since their commit was orphaned.
            let content = format!("pool {}", rng.below(40));
            let id = batch.put(Kind::Blob, content.as_bytes()).unwrap();
            entries.push(Entry {
                kind: Kind::Blob,
                name: format!("v{k}"),
                id,
            });
        }
        let sub = Tree::from_entries(entries).unwrap();
        let sub_id = batch.put(Kind::Tree, &sub.encode()).unwrap();
        let root = Tree::from_entries(vec![Entry {
            kind: Kind::Tree,
            name: format!("w{}", rng.below(3)),
            id: sub_id,
        }])
        .unwrap();
        let root_id = batch.put(Kind::Tree, &root.encode()).unwrap();
        let parent = if n.is_multiple_of(5) { None } else { tip };
        let c = Commit {
            tree: root_id,
            parents: parent.into_iter().collect(),
            timestamp: n as i64,
            author: format!("w{me}"),
            message: format!("{n}"),
            ..Commit::default()
        };
        let id = batch.put(Kind::Commit, &c.encode().unwrap()).unwrap();
        let (pins, _) = batch.commit().unwrap();
        let prev = tip.map_or(
            PreviousValue::MustNotExist,
            PreviousValue::MustExistAndMatch,
        );
        refs.update(&name, id, prev, "hammer").unwrap();
        drop(pins);
        tip = Some(id);
        commits.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn gc_beside_live_writers_never_loses_an_object_a_ref_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(open(dir.path(), 2048));
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for me in 0..2 {
        let (e, stop, commits) = (e.clone(), stop.clone(), commits.clone());
        threads.push(thread::spawn(move || writer(&e, me, &stop, &commits)));
    }
    // The engine's own writer: appends and checkpoints (which reuse the
    // head's subtrees and write chunk blobs through a pinned batch).
    {
        let (e, stop) = (e.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            let mut seq = 0;
            let mut rng = Rng::new(7);
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..10 {
                    seq = e.append(&payload(seq + 1)).unwrap();
                }
                if rng.chance(50) {
                    let applied = e.sync().unwrap().saturating_sub(rng.below(15));
                    let prev = super::common::head_applied(&e);
                    e.checkpoint(Some(applied.max(prev)), "hammer").unwrap();
                }
            }
        }));
    }
    let wanted = wanted_runs();
    let limit = Duration::from_secs(if wanted > 40 { 3600 } else { 25 });
    let started = Instant::now();
    let mut runs = 0u64;
    let mut deleted = 0u64;
    let mut protected = 0u64;
    let mut wal = 0u64;
    let mut retained = 0u64;
    while runs < wanted && started.elapsed() < limit {
        // Every fourth run also moves the retention horizon, beside the
        // writers; it keeps the history (and each GC's cost) bounded.
        let mut options = eager();
        if runs % 4 == 3 {
            options.retain = Some(Keep::Commits(NonZeroU64::new(3).unwrap()));
            retained += 1;
        }
        let s = e.gc(&options).unwrap();
        runs += 1;
        deleted += s.objects.swept.deleted + s.objects.packs.objects_dropped;
        protected += s.objects.swept.kept_protected;
        wal += s.wal.deleted.len() as u64;
        thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let committed = commits.load(Ordering::Relaxed);
    eprintln!(
        "hammer: {runs} gc runs ({retained} with retention) in {:?}, {committed} writer commits, {deleted} objects deleted, {protected} kept as protected, {wal} WAL segments deleted",
        started.elapsed()
    );
    assert!(
        runs >= MIN_RUNS,
        "only {runs} gc runs overlapped the writers"
    );
    assert!(
        committed > runs,
        "the writers were starved ({committed} commits)"
    );
    assert!(deleted > 0, "orphaned history was never collected");
    assert!(wal > 0, "no WAL segment was ever reclaimed");
    let report = fsck(e.repo());
    assert!(report.is_clean(), "{:#?}", report.problems);
    // And once more after a final collection with nothing running.
    e.gc(&eager()).unwrap();
    let report = fsck(e.repo());
    assert!(report.is_clean(), "{:#?}", report.problems);
    super::common::collect(e.replay_head().unwrap());
}
