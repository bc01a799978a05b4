//! One GC at a time across processes: `<dir>/gc.lock`, held with
//! `File::try_lock` for the whole collection (and while a retention horizon
//! is rewritten).
//!
//! The file is never removed: unlinking a lock file that another process
//! has open and is about to lock would let two holders lock two different
//! inodes. It holds the holder's pid (informational, for the error
//! message); the lock is the `flock`, which the OS releases when the process
//! dies, so a crash never leaves a stale GC lock. Locks of two opens of the
//! same file conflict even inside one process.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The GC lock file's name in the data directory.
pub const GC_LOCK_FILE: &str = "gc.lock";

/// A held GC lock; released on drop.
#[derive(Debug)]
pub struct GcLock {
    file: File,
    path: PathBuf,
}

impl GcLock {
    /// Take the GC lock of the data directory `dir`, or fail with
    /// [`Error::Running`] if another GC holds it.
    pub fn acquire(dir: &Path) -> Result<GcLock> {
        let path = dir.join(GC_LOCK_FILE);
        let mut file = sydra_objects::fs::open_regular_with(
            &path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
        .map_err(Error::io("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = file.read_to_string(&mut s);
                return Err(Error::Running {
                    dir: dir.to_path_buf(),
                    pid: s.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path)(e)),
        }
        sydra_objects::fault::point("gc.lock.write")
            .and_then(|()| file.set_len(0))
            .map_err(Error::io("write", &path))?;
        file.rewind().map_err(Error::io("write", &path))?;
        writeln!(file, "{}", std::process::id()).map_err(Error::io("write", &path))?;
        Ok(GcLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for GcLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the
        // release explicit.
        let _ = self.file.unlock();
    }
}
