use std::path::{Path, PathBuf};

use sydra_objects::{Commit, Durability, Kind, ObjectId, Options, Store};
use sydra_refs::{RefName, RefStore};
use tempfile::TempDir;

/// A data directory with `objects/`, `refs/`, `logs/` and `HEAD`.
pub struct Fixture {
    pub dir: TempDir,
    pub refs: RefStore,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        // Objects need not be durable for these tests; refs always fsync.
        let opts = Options {
            durability: Durability::None,
            ..Options::default()
        };
        let objects = Store::create(dir.path().join("objects"), opts).unwrap();
        let refs = RefStore::create(dir.path(), objects).unwrap();
        refs.init().unwrap();
        Fixture { dir, refs }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A new commit, distinct per message.
    pub fn commit(&self, message: &str) -> ObjectId {
        let c = Commit {
            message: message.into(),
            author: "test".into(),
            ..Commit::default()
        };
        self.refs
            .objects()
            .put(Kind::Commit, &c.encode().unwrap())
            .unwrap()
    }

    pub fn blob(&self, data: &[u8]) -> ObjectId {
        self.refs.objects().put(Kind::Blob, data).unwrap()
    }

    /// Every `*.lock` file under the data directory (excluding objects/).
    pub fn lock_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.to_string_lossy().ends_with(".lock") {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.path("refs"), &mut out);
        walk(&self.path("logs"), &mut out);
        if self.path("HEAD.lock").exists() {
            out.push(self.path("HEAD.lock"));
        }
        out
    }
}

pub fn name(s: &str) -> RefName {
    RefName::new(s).unwrap()
}
