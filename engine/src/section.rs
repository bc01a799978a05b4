//! Key/value sections: a small versioned map on its own ref,
//! `refs/sections/<name>`, where every write is a commit. Keys are
//! `/`-separated paths in the section's tree; versions are commit ids.
//!
//! [`KvSection`] is the contract; [`Section`] is the object-store
//! implementation and [`MemorySection`] a plain in-memory one.
//! [`contract::check`] is the test suite every implementation must pass.

use std::collections::BTreeMap;

use sydra_objects::{Batch, Bump, Commit, Durability, Kind, ObjectId, TreeBuilder};
use sydra_refs::{PreviousValue, RefName};

use crate::diff::path_history_until;
use sydra_refs::now_ns;

use crate::engine::Poison;
use crate::error::{Error, Result};
use crate::index::tree_at;
use crate::repo::Repository;

/// A versioned key/value map.
pub trait KvSection {
    /// Store `value` under `key`; returns the new version.
    fn put(&self, key: &str, value: &[u8]) -> Result<ObjectId>;
    /// The value of `key` at `version` (default: the latest).
    fn get(&self, key: &str, version: Option<ObjectId>) -> Result<Option<Vec<u8>>>;
    /// Remove `key`; returns the new version, or `None` if it was absent.
    fn delete(&self, key: &str) -> Result<Option<ObjectId>>;
    /// Every key, sorted.
    fn list(&self) -> Result<Vec<String>>;
    /// The versions where `key` was written or deleted, newest first.
    fn history(&self, key: &str) -> Result<Vec<ObjectId>>;
}

/// A section stored as commits on `refs/sections/<name>`.
#[derive(Debug, Clone)]
pub struct Section {
    repo: Repository,
    name: RefName,
    poison: Poison,
}

/// How often a write retries when another process moved the ref.
const CAS_RETRIES: usize = 64;

/// Writers of one section in this process take turns (optimistic retries
/// alone livelock when every attempt costs a durable batch). Other
/// processes are handled by compare-and-swap and retry.
fn writer_lock(path: std::path::PathBuf) -> std::sync::Arc<parking_lot::Mutex<()>> {
    use std::collections::HashMap;
    use std::sync::{Arc, OnceLock};
    static LOCKS: OnceLock<
        parking_lot::Mutex<HashMap<std::path::PathBuf, Arc<parking_lot::Mutex<()>>>>,
    > = OnceLock::new();
    let mut table = LOCKS.get_or_init(Default::default).lock();
    Arc::clone(table.entry(path).or_default())
}

impl Section {
    /// The section `name` (created on first write).
    pub fn open(repo: Repository, name: &str) -> Result<Section> {
        let name =
            RefName::new(&format!("refs/sections/{name}")).map_err(sydra_refs::Error::from)?;
        Ok(Section {
            repo,
            name,
            poison: Poison::default(),
        })
    }

    /// A section of a live engine: a sync failure here poisons the engine,
    /// and a poisoned engine refuses section writes.
    pub(crate) fn open_with_poison(
        repo: Repository,
        name: &str,
        poison: Poison,
    ) -> Result<Section> {
        let mut s = Section::open(repo, name)?;
        s.poison = poison;
        Ok(s)
    }

    /// The ref holding the section.
    pub fn ref_name(&self) -> &RefName {
        &self.name
    }

    /// The latest version.
    pub fn head(&self) -> Result<Option<ObjectId>> {
        Ok(self.repo.refs().resolve(&self.name)?)
    }

    fn tree_of(&self, version: ObjectId) -> Result<ObjectId> {
        Ok(self.repo.objects().get(&version)?.commit()?.tree)
    }

    /// Apply `edit` to the latest tree and commit it; retried when another
    /// writer moved the ref in between. `Ok(None)` when `edit` made no change.
    fn write(
        &self,
        message: &str,
        edit: impl Fn(&mut TreeBuilder<'_>, &mut Batch) -> Result<bool>,
    ) -> Result<Option<ObjectId>> {
        self.poison.check()?;
        self.poison.note(self.write_unchecked(message, edit))
    }

    fn write_unchecked(
        &self,
        message: &str,
        edit: impl Fn(&mut TreeBuilder<'_>, &mut Batch) -> Result<bool>,
    ) -> Result<Option<ObjectId>> {
        let store = self.repo.objects();
        let lock = writer_lock(self.repo.refs().path_of(&self.name));
        let _turn = lock.lock();
        for attempt in 0..CAS_RETRIES {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(1 << attempt.min(6)));
            }
            let head = self.head()?;
            let (base, parent_ts) = match head {
                Some(h) => {
                    let obj = store.get(&h)?;
                    let c = obj.commit()?;
                    (Some(c.tree), c.timestamp)
                }
                None => (None, i64::MIN),
            };
            let arena = Bump::new();
            let mut b = TreeBuilder::new(store, &arena, base)?;
            // Values are written through the same pinned batch as the trees
            // and the commit, so a concurrent GC cannot collect them before
            // the ref reaches them.
            let mut batch = store.batch(Durability::Batch);
            if !edit(&mut b, &mut batch)? {
                return Ok(None);
            }
            let tree = b.write(&mut batch)?;
            let commit = Commit {
                tree,
                parents: head.into_iter().collect(),
                timestamp: now_ns().max(parent_ts),
                author: "sydra".into(),
                message: message.to_owned(),
                branch: self.name.as_str().to_owned(),
                ..Commit::default()
            };
            let id = batch.put(
                Kind::Commit,
                &commit.encode().map_err(sydra_objects::Error::from)?,
            )?;
            let (pins, _) = batch.commit()?;
            let prev = head.map_or(
                PreviousValue::MustNotExist,
                PreviousValue::MustExistAndMatch,
            );
            match self.repo.refs().update(&self.name, id, prev, message) {
                Ok(()) => {
                    drop(pins);
                    return Ok(Some(id));
                }
                Err(e) if e.is_mismatch() || e.is_locked() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::InvalidChange(format!(
            "{} kept moving under {CAS_RETRIES} attempts to write it",
            self.name
        )))
    }
}

impl KvSection for Section {
    fn put(&self, key: &str, value: &[u8]) -> Result<ObjectId> {
        let v = self.write(&format!("put {key}"), |b, batch| {
            let id = batch.put(Kind::Blob, value)?;
            b.upsert(key, Kind::Blob, id)?;
            Ok(true)
        })?;
        v.ok_or_else(|| Error::InvalidChange(format!("put of {key} made no commit")))
    }

    fn get(&self, key: &str, version: Option<ObjectId>) -> Result<Option<Vec<u8>>> {
        let Some(v) = version.map_or_else(|| self.head(), |v| Ok(Some(v)))? else {
            return Ok(None);
        };
        let (dir, leaf) = match key.rsplit_once('/') {
            Some((d, l)) => (Some(d), l),
            None => (None, key),
        };
        let root = self.tree_of(v)?;
        let parent = match dir {
            Some(d) => match tree_at(self.repo.objects(), root, d)? {
                Some(t) => t,
                None => return Ok(None),
            },
            None => root,
        };
        let obj = self.repo.objects().get(&parent)?;
        let Some(e) = obj
            .tree()?
            .find(leaf)
            .filter(|e| e.kind == Kind::Blob)
            .map(|e| e.id)
        else {
            return Ok(None);
        };
        Ok(Some(self.repo.objects().get(&e)?.data.to_vec()))
    }

    fn delete(&self, key: &str) -> Result<Option<ObjectId>> {
        self.write(&format!("delete {key}"), |b, _| Ok(b.remove(key)?))
    }

    fn list(&self) -> Result<Vec<String>> {
        let Some(h) = self.head()? else {
            return Ok(Vec::new());
        };
        let root = self.tree_of(h)?;
        Ok(
            crate::diff::diff_trees(self.repo.objects(), None, Some(root))?
                .into_iter()
                .map(|c| c.path)
                .collect(),
        )
    }

    fn history(&self, key: &str) -> Result<Vec<ObjectId>> {
        let Some(h) = self.head()? else {
            return Ok(Vec::new());
        };
        let horizon = self.repo.history_horizon()?;
        Ok(
            path_history_until(self.repo.objects(), h, key, &|id| horizon.is_boundary(id))?
                .into_iter()
                .map(|c| c.commit)
                .collect(),
        )
    }
}

/// A plain in-memory section: the reference model of the contract.
#[derive(Debug, Default)]
pub struct MemorySection {
    state: parking_lot::Mutex<MemState>,
}

#[derive(Debug, Default)]
struct MemState {
    versions: Vec<(ObjectId, BTreeMap<String, Vec<u8>>)>,
    history: BTreeMap<String, Vec<ObjectId>>,
}

impl MemorySection {
    fn commit(&self, key: &str, value: Option<&[u8]>) -> Option<ObjectId> {
        let mut st = self.state.lock();
        let mut map = st.versions.last().map(|v| v.1.clone()).unwrap_or_default();
        let changed = match value {
            Some(v) => {
                map.insert(key.to_owned(), v.to_vec());
                true
            }
            None => map.remove(key).is_some(),
        };
        if !changed {
            return None;
        }
        let id = ObjectId::compute(Kind::Commit, &(st.versions.len() as u64).to_le_bytes());
        st.versions.push((id, map));
        st.history.entry(key.to_owned()).or_default().insert(0, id);
        Some(id)
    }
}

impl KvSection for MemorySection {
    fn put(&self, key: &str, value: &[u8]) -> Result<ObjectId> {
        self.commit(key, Some(value))
            .ok_or_else(|| Error::InvalidChange("unreachable".into()))
    }
    fn get(&self, key: &str, version: Option<ObjectId>) -> Result<Option<Vec<u8>>> {
        let st = self.state.lock();
        let map = match version {
            Some(v) => st.versions.iter().find(|x| x.0 == v).map(|x| &x.1),
            None => st.versions.last().map(|x| &x.1),
        };
        Ok(map.and_then(|m| m.get(key).cloned()))
    }
    fn delete(&self, key: &str) -> Result<Option<ObjectId>> {
        Ok(self.commit(key, None))
    }
    fn list(&self) -> Result<Vec<String>> {
        Ok(self
            .state
            .lock()
            .versions
            .last()
            .map(|v| v.1.keys().cloned().collect())
            .unwrap_or_default())
    }
    fn history(&self, key: &str) -> Result<Vec<ObjectId>> {
        Ok(self
            .state
            .lock()
            .history
            .get(key)
            .cloned()
            .unwrap_or_default())
    }
}

/// The contract every [`KvSection`] must satisfy.
pub mod contract {
    use super::KvSection;
    use crate::error::Result;

    fn ensure(cond: bool, what: &str) -> Result<()> {
        if cond {
            Ok(())
        } else {
            Err(crate::Error::InvalidChange(format!(
                "contract violated: {what}"
            )))
        }
    }

    /// Run the contract against a fresh, empty section.
    pub fn check(s: &dyn KvSection) -> Result<()> {
        ensure(s.list()?.is_empty(), "a new section is empty")?;
        ensure(s.get("a", None)?.is_none(), "a missing key reads as None")?;
        ensure(s.history("a")?.is_empty(), "a missing key has no history")?;
        // Version history.
        let v1 = s.put("docs/a.json", b"one")?;
        let v2 = s.put("docs/a.json", b"two")?;
        let v3 = s.put("docs/b.json", b"bee")?;
        ensure(v1 != v2 && v2 != v3, "every write is a new version")?;
        ensure(
            s.get("docs/a.json", None)?.as_deref() == Some(&b"two"[..]),
            "get returns the latest value",
        )?;
        ensure(
            s.history("docs/a.json")? == vec![v2, v1],
            "history lists a key's versions newest first",
        )?;
        ensure(
            s.history("docs/b.json")? == vec![v3],
            "history ignores other keys' writes",
        )?;
        // Get at an old version.
        ensure(
            s.get("docs/a.json", Some(v1))?.as_deref() == Some(&b"one"[..]),
            "get at an old version",
        )?;
        ensure(
            s.get("docs/b.json", Some(v1))?.is_none(),
            "a key written later is absent at an old version",
        )?;
        ensure(
            s.list()? == vec!["docs/a.json".to_owned(), "docs/b.json".to_owned()],
            "list is sorted and complete",
        )?;
        // Delete, then history.
        let v4 = s.delete("docs/a.json")?;
        ensure(v4.is_some(), "delete of a present key is a version")?;
        ensure(
            s.delete("docs/a.json")?.is_none(),
            "delete of an absent key changes nothing",
        )?;
        ensure(
            s.get("docs/a.json", None)?.is_none(),
            "a deleted key reads as None",
        )?;
        ensure(
            s.get("docs/a.json", Some(v2))?.as_deref() == Some(&b"two"[..]),
            "old versions survive a delete",
        )?;
        ensure(
            s.history("docs/a.json")? == vec![v4.unwrap_or(v2), v2, v1],
            "history includes the delete",
        )?;
        ensure(
            s.list()? == vec!["docs/b.json".to_owned()],
            "list omits deleted keys",
        )?;
        // Writing a value back after delete.
        let v5 = s.put("docs/a.json", b"again")?;
        ensure(
            s.history("docs/a.json")?.first() == Some(&v5),
            "a re-put is the newest version",
        )?;
        Ok(())
    }
}
