//! One GC at a time across processes: `<dir>/gc.lock`, held with
//! `File::try_lock` for the whole collection (and while a retention horizon
//! is rewritten).
//!
//! The file is created by `sydra init` (and by an engine opening a store
//! made before that), so a GC never has to create a file to start: a GC is
//! how space is reclaimed, and it must be able to run on a full disk. For a
//! store that still lacks it, the first GC creates it.
//!
//! The file is never removed: unlinking a lock file that another process
//! has open and is about to lock would let two holders lock two different
//! inodes. It holds the holder's pid (informational, for the error
//! message) as a fixed-width record ([`pid_record`]) written over the bytes
//! already there, so recording it allocates nothing; failing to record it
//! (a full copy-on-write disk) does not stop the GC. The lock is the
//! `flock`, which the OS releases when the process dies, so a crash never
//! leaves a stale GC lock. Locks of two opens of the same file conflict
//! even inside one process.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The GC lock file's name in the data directory.
pub const GC_LOCK_FILE: &str = "gc.lock";

/// Length of a [`pid_record`]: `u32::MAX` has 10 digits, plus `\n`.
pub const PID_RECORD_LEN: usize = 11;

/// The content of a pid lock file (`gc.lock`, the engine's `LOCK`): the
/// holder's pid in decimal, padded with spaces to 10 characters, then `\n`;
/// all spaces when there is no holder yet (as init writes it).
pub fn pid_record(pid: Option<u32>) -> [u8; PID_RECORD_LEN] {
    let mut out = [b' '; PID_RECORD_LEN];
    if let Some(pid) = pid {
        let digits = pid.to_string();
        out[..digits.len()].copy_from_slice(digits.as_bytes());
    }
    out[PID_RECORD_LEN - 1] = b'\n';
    out
}

/// Record this process's pid in a held pid lock file, in place: the record
/// overwrites the file's first bytes (the blank record init wrote, or an
/// older holder's) and the file is cut to its length, which never needs a
/// new block. The caller decides what a failure means; the pid is only
/// ever informational.
pub fn write_pid(file: &File, point: &'static str) -> io::Result<()> {
    sydra_objects::fault::point(point)?;
    file.write_all_at(&pid_record(Some(std::process::id())), 0)?;
    if file.metadata()?.len() > PID_RECORD_LEN as u64 {
        file.set_len(PID_RECORD_LEN as u64)?;
    }
    Ok(())
}

/// The pid recorded in a pid lock file, if it holds one.
pub fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.take(64).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

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
        // `create` only matters for a store made before init created the
        // file; on any other store the open creates nothing.
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
                return Err(Error::Running {
                    dir: dir.to_path_buf(),
                    pid: read_pid(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path)(e)),
        }
        // Informational only: a GC that could not say who it is still holds
        // the lock, and must still run (it may be what frees the disk).
        let _ = write_pid(&file, "gc.lock.write");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_records_are_fixed_width_and_read_back() {
        assert_eq!(&pid_record(None), b"          \n");
        assert_eq!(&pid_record(Some(42)), b"42        \n");
        assert_eq!(&pid_record(Some(u32::MAX)), b"4294967295\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        // A longer record of an older release is cut to the new length.
        std::fs::write(&path, b"123456789012345\n").unwrap();
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        // Too large for a pid: no pid.
        assert_eq!(read_pid(&mut f), None);
        write_pid(&f, "gc.lock.write").unwrap();
        assert_eq!(read_pid(&mut f), Some(std::process::id()));
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            PID_RECORD_LEN as u64
        );
    }
}
