//! Ref lock files: `<ref>.lock`, created with `O_CREAT | O_EXCL`.
//!
//! Holding the lock file is holding the ref: every writer creates it before
//! reading the value it compares against, and only the holder may rename it
//! over the ref or remove the ref. The lock file also carries the new
//! content, so committing is one rename.
//!
//! A [`LockFile`] removes its file when dropped unless it was committed
//! (renamed into place) or released; a crash leaves the file behind, which
//! `RefStore::remove_stale_locks` removes at the next engine open.
//!
//! # Telling a stale lock from a live one
//!
//! A lock file records no owner, so its presence alone cannot say whether
//! a writer is still using it, and ref writers run in processes that do
//! not hold the engine's `LOCK` (`sydra update-ref`, readers' sections).
//! So every transaction, from before it creates its first lock file until
//! its last one is renamed or removed, holds a *shared* `flock` on the
//! `refs/` directory itself ([`WriterGuard`]). Removing stale locks takes
//! the same lock *exclusively and without waiting* ([`try_exclusive`]):
//! holding it proves that no transaction of any process is between its
//! first lock file and its last, so every lock file present was left by a
//! dead process. If it cannot be had, a writer is live and nothing is
//! removed; a lock a crash left is then removed at a later open.
//!
//! The lock is taken on the directory, not on a file, so no file has to
//! be created for it: it works on a store made by any release, on a full
//! disk, and opens nothing in a directory that is not a store. The OS
//! drops a `flock` when its holder dies, so a crash never leaves it held.
//! (A writer of a release before this one holds no such lock; run only
//! current releases against a store while one opens it.)

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fs::ensure_parent_dirs;
use crate::name::RefName;

/// Suffix of lock files; no valid ref name component ends with it.
pub(crate) const LOCK_SUFFIX: &str = ".lock";

/// How often lock creation is retried when a concurrent delete prunes the
/// directory it needs between our `mkdir` and our `open`.
const CREATE_ATTEMPTS: usize = 5;

/// A shared `flock` on the `refs/` directory, held for the whole of a
/// transaction (see the module documentation). Released on drop.
#[derive(Debug)]
pub(crate) struct WriterGuard {
    dir: File,
}

impl WriterGuard {
    /// Wait for (at most the duration of a stale-lock sweep) and take the
    /// shared lock on `refs_dir`.
    pub(crate) fn shared(refs_dir: &Path) -> Result<WriterGuard> {
        let dir = File::open(refs_dir).map_err(Error::io("open directory", refs_dir))?;
        dir.lock_shared()
            .map_err(Error::io("take the writers' shared lock on", refs_dir))?;
        Ok(WriterGuard { dir })
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        // Closing releases it too; unlocking first makes the release
        // explicit.
        let _ = self.dir.unlock();
    }
}

/// Take the `refs/` directory's lock exclusively if no ref transaction of
/// any process holds it; `None` if one does. While the returned file is
/// open, no transaction can start or be in progress.
pub(crate) fn try_exclusive(refs_dir: &Path) -> Result<Option<File>> {
    let dir = match File::open(refs_dir) {
        Ok(d) => d,
        Err(e) => return Err(Error::io("open directory", refs_dir)(e)),
    };
    match dir.try_lock() {
        Ok(()) => Ok(Some(dir)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(Error::io("lock", refs_dir)(e)),
    }
}

/// A held ref lock.
#[derive(Debug)]
pub(crate) struct LockFile {
    name: RefName,
    path: PathBuf,
    file: Option<File>,
    /// Whether the file is still ours to remove on drop.
    armed: bool,
}

/// `<ref path>.lock`.
pub(crate) fn lock_path(ref_path: &Path) -> PathBuf {
    let mut os = ref_path.as_os_str().to_owned();
    os.push(LOCK_SUFFIX);
    PathBuf::from(os)
}

impl LockFile {
    /// Create the lock for `name`, whose file is `root/<name>`, creating
    /// parent directories as needed. An existing lock is [`Error::Locked`].
    pub(crate) fn acquire(root: &Path, name: &RefName) -> Result<LockFile> {
        let path = lock_path(&root.join(name.as_str()));
        let mut last_err = None;
        for _ in 0..CREATE_ATTEMPTS {
            let opened = sydra_objects::fault::point("refs.lock.create")
                .and_then(|()| OpenOptions::new().write(true).create_new(true).open(&path));
            match opened {
                Ok(file) => {
                    return Ok(LockFile {
                        name: name.clone(),
                        path,
                        file: Some(file),
                        armed: true,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(Error::Locked {
                        name: name.clone(),
                        lock_path: path,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match ensure_parent_dirs(root, name) {
                        Ok(()) => last_err = Some(Error::io("create lock file", &path)(e)),
                        // A directory we just made was pruned by a concurrent
                        // delete; try again.
                        Err(Error::Io { source, .. })
                            if source.kind() == io::ErrorKind::NotFound =>
                        {
                            last_err = Some(Error::io("create lock file", &path)(source));
                        }
                        Err(other) => return Err(other),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                    // A parent is a file: report which one.
                    return Err(ensure_parent_dirs(root, name)
                        .err()
                        .unwrap_or_else(|| Error::io("create lock file", &path)(e)));
                }
                Err(e) => return Err(Error::io("create lock file", &path)(e)),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            Error::io("create lock file", &path)(io::ErrorKind::NotFound.into())
        }))
    }

    /// The lock file's path.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Write the new ref content into the lock file and fsync it. After
    /// this, a crash leaves a complete lock file and the old ref untouched.
    pub(crate) fn write(&mut self, content: &[u8]) -> Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(Error::io("write lock file", &self.path)(
                io::ErrorKind::BrokenPipe.into(),
            ));
        };
        sydra_objects::fault::point("refs.lock.write")
            .and_then(|()| file.write_all(content))
            .map_err(Error::io("write lock file", &self.path))?;
        sydra_objects::fault::point("refs.lock.sync")
            .and_then(|()| file.sync_all())
            .map_err(Error::sync(&self.path))
    }

    /// Rename the lock file over `target`: the new value becomes visible
    /// atomically and the lock is gone. The caller fsyncs the directory.
    pub(crate) fn commit(mut self, target: &Path) -> Result<()> {
        self.file = None;
        sydra_objects::fault::point("refs.rename")
            .and_then(|()| fs::rename(&self.path, target))
            .map_err(Error::io("rename lock file over", target))?;
        self.armed = false;
        Ok(())
    }

    /// Remove the lock file now, reporting failure (a lock left behind
    /// blocks later updates of the ref until removed).
    pub(crate) fn release(mut self) -> Result<()> {
        self.file = None;
        self.armed = false;
        match sydra_objects::fault::point("refs.lock.remove")
            .and_then(|()| fs::remove_file(&self.path))
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove lock file", &self.path)(e)),
        }
    }

    /// The ref this lock holds.
    pub(crate) fn name(&self) -> &RefName {
        &self.name
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        if self.armed {
            self.file = None;
            // Best effort on an error path: the caller already has the error
            // that matters, and a leftover lock is reported as Locked later
            // and cleared by remove_stale_locks.
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let name = RefName::new("refs/heads/a/b").unwrap();
        let lock = LockFile::acquire(dir.path(), &name).unwrap();
        assert_eq!(lock.path(), dir.path().join("refs/heads/a/b.lock"));
        assert!(lock.path().is_file());
        match LockFile::acquire(dir.path(), &name) {
            Err(Error::Locked { lock_path, .. }) => assert_eq!(lock_path, lock.path()),
            other => panic!("{other:?}"),
        }
        let path = lock.path().to_path_buf();
        drop(lock);
        assert!(!path.exists());
        let lock = LockFile::acquire(dir.path(), &name).unwrap();
        lock.release().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn commit_renames_content_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let name = RefName::new("refs/x").unwrap();
        let mut lock = LockFile::acquire(dir.path(), &name).unwrap();
        lock.write(b"content\n").unwrap();
        let lock_file = lock.path().to_path_buf();
        lock.commit(&dir.path().join("refs/x")).unwrap();
        assert_eq!(fs::read(dir.path().join("refs/x")).unwrap(), b"content\n");
        assert!(!lock_file.exists());
    }

    #[test]
    fn parent_file_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("refs/heads")).unwrap();
        fs::write(dir.path().join("refs/heads/a"), b"").unwrap();
        let name = RefName::new("refs/heads/a/b/c").unwrap();
        match LockFile::acquire(dir.path(), &name) {
            Err(Error::Conflict { path, .. }) => assert_eq!(path, dir.path().join("refs/heads/a")),
            other => panic!("{other:?}"),
        }
    }
}
