use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroU64;

use sydra_engine::gc::{GcOptions, Keep};
use sydra_engine::objects::{Bump, Commit, Durability, Kind, ObjectId, TreeBuilder};
use sydra_engine::refs::{PreviousValue, RefName};
use sydra_engine::{Engine, main_ref};

use super::common::{
    Rng, closure, collect, deletable_segments, eager, fsck, head_applied, needed_segments, objects,
    open, payload, ref_tips, segments,
};

struct Model {
    dir: tempfile::TempDir,
    e: Engine,
    rng: Rng,
    seq: u64,
    names: u64,
    branches: Vec<String>,
    snapshots: Vec<String>,
    /// The horizon as this test computes it.
    boundaries: BTreeSet<ObjectId>,
    /// Contents written before, for dedup of old (possibly unreachable) objects.
    pool: Vec<Vec<u8>>,
    gcs: u64,
}

impl Model {
    fn new(seed: u64) -> Model {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path(), 1024);
        Model {
            dir,
            e,
            rng: Rng::new(seed),
            seq: 0,
            names: 0,
            branches: Vec::new(),
            snapshots: Vec::new(),
            boundaries: BTreeSet::new(),
            pool: Vec::new(),
            gcs: 0,
        }
    }

    fn name(&mut self, prefix: &str) -> String {
        self.names += 1;
        format!("{prefix}{}", self.names)
    }

    fn content(&mut self) -> Vec<u8> {
        if !self.pool.is_empty() && self.rng.chance(40) {
            let i = self.rng.below(self.pool.len() as u64) as usize;
            return self.pool[i].clone();
        }
        let c = format!("content {}", self.rng.next()).into_bytes();
        self.pool.push(c.clone());
        c
    }

    fn step(&mut self) {
        let has_head = self.e.head().unwrap().is_some();
        match self.rng.below(100) {
            0..=29 => {
                for _ in 0..=self.rng.below(20) {
                    self.seq = self.e.append(&payload(self.seq + 1)).unwrap();
                }
            }
            30..=44 => {
                let durable = self.e.sync().unwrap();
                let prev = head_applied(&self.e);
                let applied = prev + self.rng.below(durable - prev + 1);
                self.e.checkpoint(Some(applied), "cp").unwrap();
            }
            45..=51 if has_head => {
                let n = self.name("snap-");
                self.e.snapshot(Some(&n)).unwrap();
                self.snapshots.push(format!("refs/snapshots/{n}"));
            }
            52..=58 if has_head => {
                let n = self.name("b");
                self.e.branch(&n, "refs/heads/main").unwrap();
                self.branches.push(format!("refs/heads/{n}"));
            }
            59..=71 if !self.branches.is_empty() => self.branch_commit(),
            72..=79 => self.delete_some_ref(),
            80..=89 => self.garbage(),
            _ => self.gc(),
        }
    }

    /// A commit on a branch that adds a blob, written like the engine
    /// writes: one pinned batch, then compare-and-swap.
    fn branch_commit(&mut self) {
        let i = self.rng.below(self.branches.len() as u64) as usize;
        let name = RefName::new(&self.branches[i]).unwrap();
        let store = self.e.repo().objects().clone();
        let tip = self.e.repo().refs().resolve(&name).unwrap().unwrap();
        let parent = store.get(&tip).unwrap().commit().unwrap().to_owned();
        let arena = Bump::new();
        let mut b = TreeBuilder::new(&store, &arena, Some(parent.tree)).unwrap();
        let mut batch = store.batch(Durability::Batch);
        let content = self.content();
        let blob = batch.put(Kind::Blob, &content).unwrap();
        let path = format!("data/{}", self.rng.below(8));
        b.upsert(&path, Kind::Blob, blob).unwrap();
        let tree = b.write(&mut batch).unwrap();
        let commit = Commit {
            tree,
            parents: vec![tip],
            timestamp: parent.timestamp + 1,
            author: "model".into(),
            message: format!("put {path}"),
            branch: String::new(),
            meta: parent.meta.clone(),
        };
        let id = batch.put(Kind::Commit, &commit.encode().unwrap()).unwrap();
        let (pins, _) = batch.commit().unwrap();
        self.e
            .repo()
            .refs()
            .update(&name, id, PreviousValue::MustExistAndMatch(tip), "model")
            .unwrap();
        drop(pins);
    }

    fn delete_some_ref(&mut self) {
        let list = if self.rng.chance(50) {
            &mut self.branches
        } else {
            &mut self.snapshots
        };
        if list.is_empty() {
            return;
        }
        let i = self.rng.below(list.len() as u64) as usize;
        let name = list.swap_remove(i);
        self.e
            .repo()
            .refs()
            .delete(&RefName::new(&name).unwrap(), PreviousValue::Any, "model")
            .unwrap();
    }

    fn garbage(&mut self) {
        let store = self.e.repo().objects().clone();
        let mut batch = store.batch(Durability::None);
        let mut entries = Vec::new();
        for k in 0..=self.rng.below(3) {
            let c = self.content();
            let id = batch.put(Kind::Blob, &c).unwrap();
            entries.push(sydra_engine::objects::Entry {
                kind: Kind::Blob,
                name: format!("g{k}"),
                id,
            });
        }
        let t = sydra_engine::objects::Tree::from_entries(entries).unwrap();
        batch.put(Kind::Tree, &t.encode()).unwrap();
        drop(batch.commit().unwrap());
    }

    /// The horizon `keep` commits per ref gives, by this test's own walk.
    fn model_horizon(&self, keep: u64) -> BTreeSet<ObjectId> {
        let store = self.e.repo().objects();
        let mut kept: HashMap<ObjectId, Option<ObjectId>> = HashMap::new();
        for tip in ref_tips(self.e.repo()) {
            let mut cur = tip;
            let mut n = 1;
            loop {
                let c = store.get(&cur).unwrap().commit().unwrap().to_owned();
                kept.insert(cur, c.parents.first().copied());
                if self.boundaries.contains(&cur) || n == keep {
                    break;
                }
                let Some(p) = c.parents.first().copied() else {
                    break;
                };
                cur = p;
                n += 1;
            }
        }
        let mut b: BTreeSet<ObjectId> = kept
            .iter()
            .filter(|(_, p)| p.is_some_and(|p| !kept.contains_key(&p)))
            .map(|(c, _)| *c)
            .collect();
        b.extend(
            self.boundaries
                .iter()
                .filter(|x| store.contains(x).unwrap())
                .copied(),
        );
        b
    }

    fn gc(&mut self) {
        self.gcs += 1;
        let store = self.e.repo().objects().clone();
        let retain = self.rng.chance(35).then(|| 1 + self.rng.below(4));
        let boundaries = match retain {
            Some(k) => self.model_horizon(k),
            None => self.boundaries.clone(),
        };
        let expected = closure(&store, &ref_tips(self.e.repo()), &boundaries);
        let segs = segments(self.dir.path());
        let expected_wal = deletable_segments(
            &segs,
            head_applied(&self.e),
            &needed_segments(&store, &expected),
        );
        let before = objects(&store);
        let horizon_before = std::fs::read(self.dir.path().join("shallow")).ok();
        let options = GcOptions {
            retain: retain.map(|k| Keep::Commits(NonZeroU64::new(k).unwrap())),
            ..eager()
        };
        let dry = self
            .e
            .gc(&GcOptions {
                dry_run: true,
                ..options.clone()
            })
            .unwrap();
        assert_eq!(objects(&store), before, "a dry run deletes nothing");
        assert_eq!(segments(self.dir.path()), segs);
        assert_eq!(
            std::fs::read(self.dir.path().join("shallow")).ok(),
            horizon_before
        );

        let done = self.e.gc(&options).unwrap();
        assert_eq!(
            done.objects.horizon.boundaries(),
            boundaries.iter().copied().collect::<Vec<_>>().as_slice()
        );
        self.boundaries = boundaries;
        let after = objects(&store);
        assert_eq!(after, expected, "gc {} (retain {retain:?})", self.gcs);
        assert_eq!(
            (done.objects.swept.deleted + done.objects.packs.objects_dropped) as usize,
            before.len() - after.len()
        );
        assert_eq!(done.objects.reachable.objects() as usize, expected.len());
        assert_eq!(
            dry.objects.swept, done.objects.swept,
            "dry run reports the same"
        );
        assert_eq!(dry.objects.reachable, done.objects.reachable);
        assert_eq!(done.wal.deleted, expected_wal);
        assert_eq!(dry.wal, done.wal);
        let left: Vec<u64> = segs
            .iter()
            .copied()
            .filter(|s| !expected_wal.contains(s))
            .collect();
        assert_eq!(segments(self.dir.path()), left);

        let report = fsck(self.e.repo());
        assert!(report.is_clean(), "gc {}: {:#?}", self.gcs, report.problems);
        // Every ref and the head still replay.
        for (name, target) in self.e.repo().refs().list("refs/").unwrap() {
            if target.object().is_some() {
                collect(self.e.replay(name.as_str()).unwrap());
            }
        }
        let applied = head_applied(&self.e);
        let tail = collect(self.e.replay_head().unwrap());
        let want: Vec<(u64, Vec<u8>)> = (applied + 1..=self.seq).map(|s| (s, payload(s))).collect();
        assert_eq!(tail, want);
    }
}

#[test]
fn gc_leaves_exactly_what_a_model_of_the_history_reaches() {
    for seed in 1..=4 {
        let mut m = Model::new(seed);
        for _ in 0..120 {
            m.step();
        }
        m.gc();
        assert!(m.gcs >= 5, "seed {seed}: only {} gcs", m.gcs);
        // Reopen: the horizon and everything else survive.
        let boundaries = m.boundaries.clone();
        let dir = m.dir;
        drop(m.e);
        let e = open(dir.path(), 1024);
        assert_eq!(
            e.horizon().unwrap().boundaries(),
            boundaries.iter().copied().collect::<Vec<_>>().as_slice()
        );
        assert!(fsck(e.repo()).is_clean());
        assert!(e.repo().refs().resolve(&main_ref()).unwrap().is_some() || m.seq == 0);
    }
}
