//! The ref store: plain files under a data directory.
//!
//! ```text
//! <dir>/HEAD                  "ref: refs/heads/main\n" (only ever symbolic)
//! <dir>/refs/<name...>        "<64 hex>\n" or "ref: <name>\n"
//! <dir>/refs/<name...>.lock   held by an update in progress (or left by a crash)
//! <dir>/logs/refs/<name...>   reflog of each ref (kept when the ref is deleted);
//!                             HEAD, only ever symbolic, has none
//! ```
//!
//! Readers take no lock: a ref changes only by an atomic rename, so a read
//! sees the old or the new value. Writers follow the protocol described in
//! [`crate::transaction`]; a single update is a one-edit transaction, and
//! every transaction holds a shared `flock` on `refs/` (see [`crate::lock`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use sydra_objects::{ObjectId, Store};

use crate::error::{Error, Result};
use crate::fs::{create_dir_synced, read_ref_file};
use crate::lock::LOCK_SUFFIX;
use crate::name::RefName;
use crate::reflog::{self, ReflogEntry};
use crate::target::Target;
use crate::transaction::{Change, Edit, PreviousValue, Transaction};

/// Directory of refs under the data directory.
pub const REFS_DIR: &str = "refs";
/// Directory of reflogs under the data directory.
pub const LOGS_DIR: &str = "logs";

/// The most symbolic hops [`RefStore::resolve`] follows (`HEAD ->
/// refs/heads/main` is one).
pub const MAX_SYMBOLIC_DEPTH: usize = 5;

/// Refs of one data directory. Cheap to clone; clones share the ordering
/// of commits (see [`crate::transaction`]).
#[derive(Debug, Clone)]
pub struct RefStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    objects: Store,
    /// Held from a transaction's first rename to its last reflog line.
    commit_order: Mutex<()>,
}

impl RefStore {
    /// Open the refs of the data directory `dir`, whose object store is
    /// `objects`. Creates nothing: opening is how readers and every writer
    /// start, and must work on a full disk and change nothing in a
    /// directory it was pointed at by mistake. [`RefStore::create`] makes
    /// `refs/` and `logs/`.
    pub fn open(dir: impl AsRef<Path>, objects: Store) -> Result<RefStore> {
        Ok(RefStore {
            inner: Arc::new(Inner {
                dir: dir.as_ref().to_path_buf(),
                objects,
                commit_order: Mutex::new(()),
            }),
        })
    }

    /// Create `refs/` and `logs/` (durably) if missing, and open. `dir`
    /// itself must exist.
    pub fn create(dir: impl AsRef<Path>, objects: Store) -> Result<RefStore> {
        let dir = dir.as_ref();
        create_dir_synced(&dir.join(REFS_DIR))?;
        create_dir_synced(&dir.join(LOGS_DIR))?;
        RefStore::open(dir, objects)
    }

    /// Write `HEAD` = `ref: refs/heads/main` if there is no `HEAD`. Returns
    /// whether it was written. No reflog line is written for it.
    pub fn init(&self) -> Result<bool> {
        if self.read(&RefName::head())?.is_some() {
            return Ok(false);
        }
        let tx = Transaction::new(self).push(Edit {
            name: RefName::head(),
            change: Change::Symbolic(RefName::main_branch()),
            prev: PreviousValue::MustNotExist,
            message: None,
        });
        match tx.commit() {
            Ok(()) => Ok(true),
            // Someone else initialized it meanwhile.
            Err(Error::Mismatch { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The object store targets are checked against.
    pub fn objects(&self) -> &Store {
        &self.inner.objects
    }

    /// The file of ref `name` (whether or not it exists).
    pub fn path_of(&self, name: &RefName) -> PathBuf {
        // Safe by construction: a valid name has no `.`/`..`/empty component
        // and starts with refs/ (or is HEAD).
        self.inner.dir.join(name.as_str())
    }

    /// The reflog file of ref `name` (whether or not it exists).
    pub fn reflog_path_of(&self, name: &RefName) -> PathBuf {
        self.inner.dir.join(LOGS_DIR).join(name.as_str())
    }

    /// The value of `name`, without following symbolic refs. `None` if there
    /// is no such ref.
    pub fn read(&self, name: &RefName) -> Result<Option<Target>> {
        read_ref_file(&self.path_of(name))
    }

    /// The object `name` points at, following symbolic refs (at most
    /// [`MAX_SYMBOLIC_DEPTH`] hops; a loop is an error). `None` if the ref,
    /// or the ref at the end of the chain, does not exist (an unborn branch).
    pub fn resolve(&self, name: &RefName) -> Result<Option<ObjectId>> {
        self.follow(vec![name.clone()])
    }

    /// Follow symbolic refs from the last name of `chain`; the names before
    /// it count as already visited.
    pub(crate) fn follow(&self, mut chain: Vec<RefName>) -> Result<Option<ObjectId>> {
        loop {
            let Some(current) = chain.last() else {
                return Ok(None);
            };
            let next = match self.read(current)? {
                None => return Ok(None),
                Some(Target::Object(id)) => return Ok(Some(id)),
                Some(Target::Symbolic(next)) => next,
            };
            let looped = chain.contains(&next);
            chain.push(next);
            if looped {
                return Err(Error::SymbolicLoop { chain });
            }
            if chain.len() > MAX_SYMBOLIC_DEPTH + 1 {
                return Err(Error::SymbolicTooDeep { chain });
            }
        }
    }

    /// Point `name` at the object `new` if it currently holds `prev`. The
    /// object must exist, and a branch may only point at a commit.
    pub fn update(
        &self,
        name: &RefName,
        new: ObjectId,
        prev: PreviousValue,
        message: &str,
    ) -> Result<()> {
        self.transaction().update(name, new, prev, message).commit()
    }

    /// Delete `name` if it currently holds `prev`. Its reflog is kept and
    /// gets a line with new = zeros.
    pub fn delete(&self, name: &RefName, prev: PreviousValue, message: &str) -> Result<()> {
        self.transaction().delete(name, prev, message).commit()
    }

    /// Make `name` (typically `HEAD`) a symbolic ref to `target`, which need
    /// not exist yet.
    pub fn set_symbolic(&self, name: &RefName, target: &RefName, message: &str) -> Result<()> {
        self.transaction()
            .set_symbolic(name, target, message)
            .commit()
    }

    /// Start a multi-ref transaction.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction::new(self)
    }

    /// Every ref whose full name starts with `prefix` (`"refs/heads/"`,
    /// `"refs/"`; `""` also yields `HEAD`), sorted by name, without following
    /// symbolic refs.
    ///
    /// Lock files are skipped. Any other entry under `refs/` that is not a
    /// valid ref file is an error rather than skipped: a caller collecting
    /// GC roots must not miss a ref.
    pub fn list(&self, prefix: &str) -> Result<Vec<(RefName, Target)>> {
        let mut out = Vec::new();
        let head = RefName::head();
        if head.as_str().starts_with(prefix)
            && let Some(target) = self.read(&head)?
        {
            out.push((head, target));
        }
        let under_refs = prefix.starts_with("refs/") || "refs/".starts_with(prefix);
        if under_refs {
            // Start at the deepest directory the prefix names, when that is a
            // plausible ref directory; otherwise walk all of refs/ and filter.
            let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..i]);
            let start = if dir_part == REFS_DIR || RefName::new(dir_part).is_ok() {
                dir_part
            } else {
                REFS_DIR
            };
            self.walk(start, prefix, &mut out)?;
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Collect refs under the directory named `base` (relative to the data
    /// directory) whose names start with `prefix`.
    fn walk(&self, base: &str, prefix: &str, out: &mut Vec<(RefName, Target)>) -> Result<()> {
        let dir = self.inner.dir.join(base);
        let entries = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            // Missing (never created, or pruned by a concurrent delete) or a
            // ref file where the prefix expected a directory.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(Error::io("list", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io("list", &dir))?;
            let path = entry.path();
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(Error::StrayFile {
                    path,
                    reason: "its name is not UTF-8".into(),
                });
            };
            let full = format!("{base}/{file_name}");
            let ty = entry.file_type().map_err(Error::io("stat", &path))?;
            if ty.is_dir() {
                let as_dir = format!("{full}/");
                if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                    self.walk(&full, prefix, out)?;
                }
                continue;
            }
            if file_name.ends_with(LOCK_SUFFIX) || !full.starts_with(prefix) {
                continue;
            }
            if !ty.is_file() {
                return Err(Error::StrayFile {
                    path,
                    reason: "not a regular file".into(),
                });
            }
            let name = RefName::new(&full).map_err(|e| Error::StrayFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            // Gone since the listing: deleted concurrently.
            if let Some(target) = read_ref_file(&path)? {
                out.push((name, target));
            }
        }
        Ok(())
    }

    /// The reflog of `name`, oldest first (empty if it has none).
    pub fn reflog(&self, name: &RefName) -> Result<Vec<ReflogEntry>> {
        reflog::read(&self.reflog_path_of(name))
    }

    /// Remove every lock file (`*.lock` under `refs/` and `logs/`, and
    /// `HEAD.lock`) if no ref transaction of any process is running,
    /// returning their paths, sorted; `None`, removing nothing, if one is.
    ///
    /// Every transaction holds a shared `flock` on `refs/` from before its
    /// first lock file to after its last (see [`crate::lock`]); this takes
    /// it exclusively, without waiting, and removes only while it holds
    /// it, so a lock file it removes belonged to a process that died in the
    /// middle of an update. The engine calls it at open. The removals are
    /// not fsynced; a lock file that reappears after a crash is removed at
    /// the next open.
    pub fn remove_stale_locks(&self) -> Result<Option<Vec<PathBuf>>> {
        let Some(_sweeping) = crate::lock::try_exclusive(&self.inner.dir.join(REFS_DIR))? else {
            return Ok(None);
        };
        let mut removed = Vec::new();
        for top in [REFS_DIR, LOGS_DIR] {
            remove_locks_under(&self.inner.dir.join(top), &mut removed)?;
        }
        let head_lock = crate::lock::lock_path(&self.path_of(&RefName::head()));
        match fs::remove_file(&head_lock) {
            Ok(()) => removed.push(head_lock),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove stale lock file", &head_lock)(e)),
        }
        removed.sort();
        Ok(Some(removed))
    }

    /// Hold off ref commits of this store (in this process) while the guard
    /// lives: every ref and reflog read under it sees each commit either
    /// wholly (renamed and its reflog line written) or not at all. A GC
    /// takes it to read its roots, so the value a concurrent update
    /// replaces is always in the snapshot: as the ref, or in the reflog.
    pub fn consistent_read(&self) -> MutexGuard<'_, ()> {
        self.commit_guard()
    }

    pub(crate) fn commit_guard(&self) -> MutexGuard<'_, ()> {
        // The guarded data is (); a panic while holding it leaves nothing
        // inconsistent, so a poisoned mutex is used as is.
        self.inner
            .commit_order
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn remove_locks_under(dir: &Path, removed: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(Error::io("list", dir))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(Error::io("stat", &path))?;
        if ty.is_dir() {
            remove_locks_under(&path, removed)?;
        } else if entry
            .file_name()
            .as_encoded_bytes()
            .ends_with(LOCK_SUFFIX.as_bytes())
        {
            match fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove stale lock file", &path)(e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sydra_objects::{Commit, Durability, Kind, Options};

    use super::*;

    fn fixture() -> (tempfile::TempDir, RefStore) {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            durability: Durability::None,
            ..Options::default()
        };
        let objects = Store::create(dir.path().join("objects"), opts).unwrap();
        let refs = RefStore::create(dir.path(), objects).unwrap();
        (dir, refs)
    }

    fn commit(refs: &RefStore, msg: &str) -> ObjectId {
        let c = Commit {
            message: msg.into(),
            ..Commit::default()
        };
        refs.objects()
            .put(Kind::Commit, &c.encode().unwrap())
            .unwrap()
    }

    #[test]
    fn create_makes_layout_and_init_writes_head_once() {
        let (dir, refs) = fixture();
        assert!(dir.path().join("refs").is_dir());
        assert!(dir.path().join("logs").is_dir());
        assert!(refs.init().unwrap());
        assert_eq!(
            fs::read(dir.path().join("HEAD")).unwrap(),
            b"ref: refs/heads/main\n"
        );
        assert!(!refs.init().unwrap());
        assert_eq!(refs.reflog(&RefName::head()).unwrap(), Vec::new());
        assert_eq!(refs.resolve(&RefName::head()).unwrap(), None);
    }

    #[test]
    fn update_writes_exact_file_and_reflog() {
        let (dir, refs) = fixture();
        let main = RefName::main_branch();
        let a = commit(&refs, "a");
        refs.update(&main, a, PreviousValue::MustNotExist, "create\nmain")
            .unwrap();
        assert_eq!(
            fs::read(dir.path().join("refs/heads/main")).unwrap(),
            format!("{a}\n").into_bytes()
        );
        let log = refs.reflog(&main).unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(
            (log[0].old, log[0].new, log[0].message.as_str()),
            (None, Some(a), "create main")
        );
        assert!(log[0].timestamp_ns > 1_600_000_000_000_000_000);
        assert!(!dir.path().join("refs/heads/main.lock").exists());
    }

    #[test]
    fn follow_counts_hops() {
        let (_dir, refs) = fixture();
        let a = commit(&refs, "a");
        let names: Vec<RefName> = (0..=MAX_SYMBOLIC_DEPTH + 1)
            .map(|i| RefName::new(&format!("refs/s{i}")).unwrap())
            .collect();
        // s0 is the object ref; s1 -> s0, s2 -> s1, ...
        refs.update(&names[0], a, PreviousValue::Any, "m").unwrap();
        for i in 1..names.len() {
            let path = refs.path_of(&names[i]);
            fs::write(path, format!("ref: {}\n", names[i - 1])).unwrap();
        }
        assert_eq!(refs.resolve(&names[MAX_SYMBOLIC_DEPTH]).unwrap(), Some(a));
        assert!(matches!(
            refs.resolve(&names[MAX_SYMBOLIC_DEPTH + 1]),
            Err(Error::SymbolicTooDeep { .. })
        ));
    }

    #[test]
    fn locks_are_not_swept_while_a_transaction_holds_the_writers_lock() {
        let (dir, refs) = fixture();
        let lock = dir.path().join("refs/heads/x.lock");
        fs::create_dir_all(lock.parent().unwrap()).unwrap();
        fs::write(&lock, b"").unwrap();
        // A transaction of another process (a separate open of refs/ holds
        // the lock just like one) is between its first lock and its last.
        let writing = crate::lock::WriterGuard::shared(&dir.path().join(REFS_DIR)).unwrap();
        assert_eq!(refs.remove_stale_locks().unwrap(), None);
        assert!(lock.exists());
        drop(writing);
        assert_eq!(refs.remove_stale_locks().unwrap(), Some(vec![lock.clone()]));
        assert!(!lock.exists());
    }
}
