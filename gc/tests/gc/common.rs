use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sydra_gc::GcOptions;
use sydra_objects::{Commit, Durability, Entry, Kind, ObjectId, Options, Store, Tree};
use sydra_refs::{PreviousValue, RefName, RefStore};
use tempfile::TempDir;

/// A data directory with objects, refs and HEAD.
pub struct Fixture {
    pub dir: TempDir,
    pub refs: RefStore,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            durability: Durability::None,
            ..Options::default()
        };
        let objects = Store::create(dir.path().join("objects"), opts).unwrap();
        let refs = RefStore::create(dir.path(), objects).unwrap();
        refs.init().unwrap();
        Fixture { dir, refs }
    }

    pub fn store(&self) -> &Store {
        self.refs.objects()
    }

    pub fn blob(&self, data: &[u8]) -> ObjectId {
        self.store().put(Kind::Blob, data).unwrap()
    }

    pub fn tree(&self, entries: &[(&str, Kind, ObjectId)]) -> ObjectId {
        let t = Tree::from_entries(
            entries
                .iter()
                .map(|(n, k, id)| Entry {
                    kind: *k,
                    name: (*n).to_owned(),
                    id: *id,
                })
                .collect(),
        )
        .unwrap();
        self.store().put(Kind::Tree, &t.encode()).unwrap()
    }

    pub fn commit_at(&self, tree: ObjectId, parents: &[ObjectId], msg: &str, ts: i64) -> ObjectId {
        let c = Commit {
            tree,
            parents: parents.to_vec(),
            timestamp: ts,
            author: "test".into(),
            message: msg.into(),
            ..Commit::default()
        };
        self.store()
            .put(Kind::Commit, &c.encode().unwrap())
            .unwrap()
    }

    pub fn commit(&self, tree: ObjectId, parents: &[ObjectId], msg: &str) -> ObjectId {
        self.commit_at(tree, parents, msg, now_ns())
    }

    /// A commit whose tree holds one blob `data` under `dir/file`.
    pub fn simple_commit(&self, parents: &[ObjectId], data: &str) -> ObjectId {
        let b = self.blob(data.as_bytes());
        let sub = self.tree(&[("file", Kind::Blob, b)]);
        let root = self.tree(&[("dir", Kind::Tree, sub)]);
        self.commit(root, parents, data)
    }

    pub fn set_ref(&self, name: &str, id: ObjectId) {
        self.refs
            .update(&RefName::new(name).unwrap(), id, PreviousValue::Any, "test")
            .unwrap();
    }

    pub fn delete_ref(&self, name: &str) {
        self.refs
            .delete(&RefName::new(name).unwrap(), PreviousValue::Any, "test")
            .unwrap();
    }

    pub fn objects(&self) -> BTreeSet<ObjectId> {
        self.store().all_ids().unwrap().into_iter().collect()
    }

    pub fn path_of(&self, id: &ObjectId) -> PathBuf {
        self.store().path_of(id)
    }

    /// Age every file under objects/ by `by` (so a grace period passes).
    pub fn age_objects(&self, by: Duration) {
        let then = SystemTime::now() - by;
        let loose = self
            .store()
            .iter()
            .unwrap()
            .map(|id| self.path_of(&id.unwrap()));
        let packs: Vec<PathBuf> = self
            .store()
            .packs()
            .iter()
            .map(|p| p.path().to_path_buf())
            .collect();
        for path in loose.chain(packs) {
            let f = fs::File::options().write(true).open(path).unwrap();
            f.set_modified(then).unwrap();
        }
    }
}

pub use sydra_refs::now_ns;

/// Zero grace, no reflog roots: what is unreachable from refs goes.
pub fn eager() -> GcOptions {
    GcOptions {
        grace: Duration::ZERO,
        reflog_expiry: Duration::ZERO,
        ..GcOptions::default()
    }
}

/// Every id reachable from `ids` by walking trees and all parents, stopping
/// at `boundaries` (independent of the crate's mark).
pub fn closure(store: &Store, ids: &[ObjectId], boundaries: &[ObjectId]) -> BTreeSet<ObjectId> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<ObjectId> = ids.to_vec();
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
