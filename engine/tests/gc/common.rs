use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use sydra_engine::gc::GcOptions;
use sydra_engine::index;
use sydra_engine::maintenance::{FsckOptions, FsckReport, NoProgress};
use sydra_engine::objects::{Kind, ObjectId, Store};
use sydra_engine::wal::{SyncMode, WalOptions, list_segments};
use sydra_engine::{Engine, Options, Replay, Repository};

pub fn opts(segment_size: u64) -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            segment_size,
            max_record: 512,
            ..WalOptions::default()
        },
        ..Options::default()
    }
}

pub fn open(dir: &Path, segment_size: u64) -> Engine {
    Engine::create(dir, opts(segment_size)).unwrap()
}

/// Zero grace, no reflog roots.
pub fn eager() -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        reflog_expiry: Duration::ZERO,
        ..GcOptions::default()
    }
}

pub fn objects(store: &Store) -> BTreeSet<ObjectId> {
    store.all_ids().unwrap().into_iter().collect()
}

pub fn segments(dir: &Path) -> Vec<u64> {
    list_segments(&dir.join("wal")).unwrap()
}

pub fn ref_tips(repo: &Repository) -> Vec<ObjectId> {
    repo.refs()
        .list("")
        .unwrap()
        .into_iter()
        .filter_map(|(_, t)| t.object())
        .collect()
}

/// Everything reachable from `tips`, walking trees and every parent except
/// those of `boundaries`. Written independently of the gc crate's mark.
pub fn closure(
    store: &Store,
    tips: &[ObjectId],
    boundaries: &BTreeSet<ObjectId>,
) -> BTreeSet<ObjectId> {
    let mut seen = BTreeSet::new();
    let mut todo = tips.to_vec();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        let obj = store.get(&id).unwrap();
        match obj.kind {
            Kind::Commit => {
                let c = obj.commit().unwrap();
                todo.push(c.tree);
                if !boundaries.contains(&id) {
                    todo.extend(c.parents.iter().copied());
                }
            }
            Kind::Tree => todo.extend(obj.tree().unwrap().entries.iter().map(|e| e.id)),
            Kind::Blob => {}
        }
    }
    seen
}

/// Segments the commits in `reachable` need for replay (a chunk with
/// last seq above the commit's applied seq).
pub fn needed_segments(store: &Store, reachable: &BTreeSet<ObjectId>) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for id in reachable {
        let obj = store.get(id).unwrap();
        if obj.kind != Kind::Commit {
            continue;
        }
        let c = obj.commit().unwrap();
        let applied = c.meta_u64("wal.applied_seq").unwrap_or(0);
        for (_, chunk) in index::chunks(store, c.tree).unwrap() {
            if chunk.last_seq > applied {
                out.insert(chunk.segment);
            }
        }
    }
    out
}

/// The segments a GC must delete: sealed, wholly at or below `applied`,
/// needed by no reachable commit.
pub fn deletable_segments(segs: &[u64], applied: u64, needed: &BTreeSet<u64>) -> Vec<u64> {
    segs.windows(2)
        .filter(|w| w[1] <= applied + 1 && !needed.contains(&w[0]))
        .map(|w| w[0])
        .collect()
}

pub fn head_applied(e: &Engine) -> u64 {
    match e.head().unwrap() {
        Some(h) => e
            .repo()
            .objects()
            .get(&h)
            .unwrap()
            .commit()
            .unwrap()
            .meta_u64("wal.applied_seq")
            .unwrap_or(0),
        None => 0,
    }
}

pub fn fsck(repo: &Repository) -> FsckReport {
    sydra_engine::maintenance::fsck(repo, &FsckOptions::default(), &NoProgress).unwrap()
}

pub fn collect(mut r: Replay) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(x) = r.next_record() {
        let (s, d) = x.unwrap();
        out.push((s, d.to_vec()));
    }
    out
}

pub fn payload(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "x".repeat((i % 41) as usize)).into_bytes()
}

/// A deterministic xorshift generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
