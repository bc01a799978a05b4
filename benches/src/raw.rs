//! Raw-syscall baselines: the I/O Sydra does, with nothing on top.
//!
//! - [`RawDir::put`] with `sync`: create a temp file, write, fdatasync,
//!   rename into a shard directory, fsync the shard directory -- the
//!   publish sequence of `Durability::Each` (Sydra also uses fdatasync for
//!   the file and fsync for the directory).
//! - [`RawDir::put`] without `sync`: create, write, rename.
//! - [`RawDir::put_batch`]: write every temp file, `syncfs`, rename all,
//!   `syncfs` -- the sequence of Sydra's `Durability::Batch` on Linux.
//! - [`frame`]: the WAL record bytes (`u32 len`, `u32 CRC32(seq || payload)`,
//!   `u64 seq`, payload), identical to Sydra's framing (a unit test checks).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// WAL record header length (len + CRC + seq).
pub const RECORD_HEADER_LEN: usize = 16;

/// Append one framed WAL record (segment format version 2) to `out`.
pub fn frame(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(&seq.to_le_bytes());
    crc.update(payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// A directory laid out like an object store (`tmp/` and 256 shards), with
/// files named by a counter instead of a hash.
#[derive(Debug)]
pub struct RawDir {
    root: PathBuf,
    tmp: PathBuf,
}

impl RawDir {
    /// Create the layout under `root` (shards pre-created) and sync it.
    pub fn create(root: &Path) -> RawDir {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).unwrap();
        crate::precreate_shards(root);
        crate::syncfs(root);
        RawDir {
            root: root.to_path_buf(),
            tmp,
        }
    }

    /// Where object `n` lives.
    pub fn path_of(&self, n: u64) -> PathBuf {
        self.root
            .join(format!("{:02x}", n % 256))
            .join(format!("{n:016x}"))
    }

    fn temp_of(&self, n: u64) -> PathBuf {
        self.tmp.join(format!("raw-{n}.tmp"))
    }

    fn write_temp(&self, n: u64, bytes: &[u8], sync: bool) -> PathBuf {
        let tmp = self.temp_of(n);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .unwrap();
        f.write_all(bytes).unwrap();
        if sync {
            f.sync_data().unwrap();
        }
        tmp
    }

    /// Publish `bytes` as object `n`; with `sync`, durably (file fdatasync
    /// before the rename, shard directory fsync after).
    pub fn put(&self, n: u64, bytes: &[u8], sync: bool) {
        let tmp = self.write_temp(n, bytes, sync);
        let dst = self.path_of(n);
        fs::rename(&tmp, &dst).unwrap();
        if sync {
            crate::sync_dir(dst.parent().unwrap()).unwrap();
        }
    }

    /// Publish objects `first..first + payloads.len()` together: temp files,
    /// one `syncfs`, renames, one more `syncfs`.
    pub fn put_batch(&self, first: u64, payloads: &[Vec<u8>]) {
        let temps: Vec<PathBuf> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| self.write_temp(first + i as u64, p, false))
            .collect();
        crate::syncfs(&self.tmp);
        for (i, tmp) in temps.iter().enumerate() {
            fs::rename(tmp, self.path_of(first + i as u64)).unwrap();
        }
        crate::syncfs(&self.root);
    }

    /// Read object `n`.
    pub fn get(&self, n: u64) -> Vec<u8> {
        fs::read(self.path_of(n)).unwrap()
    }
}

/// An append-only file for the WAL baselines.
pub fn create_log(path: &Path) -> File {
    OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)
        .unwrap()
}
