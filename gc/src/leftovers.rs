//! Files a crash or an in-flight operation leaves behind: object temp files
//! (`objects/tmp/obj-<pid>-<n>.tmp`), ref lock files (`*.lock` under `refs/`
//! and `logs/`, `HEAD.lock`), and the data directory's own temp files
//! (`FORMAT.tmp`, `shallow.tmp`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sydra_refs::{LOGS_DIR, REFS_DIR};

use crate::error::{Error, Result};
use crate::horizon::HORIZON_TEMP_FILE;

/// What kind of leftover a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeftoverKind {
    /// An object temp file.
    ObjectTemp,
    /// A ref or reflog lock file.
    RefLock,
    /// A temp file of the data directory (`FORMAT.tmp`, `shallow.tmp`).
    DirTemp,
}

impl LeftoverKind {
    /// A short name (`object-temp`, `ref-lock`, `dir-temp`).
    pub fn as_str(self) -> &'static str {
        match self {
            LeftoverKind::ObjectTemp => "object-temp",
            LeftoverKind::RefLock => "ref-lock",
            LeftoverKind::DirTemp => "dir-temp",
        }
    }
}

/// One leftover file.
#[derive(Debug, Clone)]
pub struct Leftover {
    /// The file.
    pub path: PathBuf,
    /// What it is.
    pub kind: LeftoverKind,
    /// Its size.
    pub bytes: u64,
    /// Its modification time.
    pub modified: Option<SystemTime>,
    /// Whether its owner is known to be gone: a temp file whose process no
    /// longer runs. `false` when the owner is alive or cannot be told (lock
    /// files record no owner).
    pub orphaned: bool,
}

/// The pid in an object temp file's name (`obj-<pid>-<n>.tmp`).
pub fn temp_file_pid(name: &str) -> Option<u32> {
    name.strip_prefix("obj-")?
        .strip_suffix(".tmp")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Whether process `pid` is alive (as far as this platform can tell;
/// without `/proc` every other process counts as alive).
pub fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

fn leftover(path: PathBuf, kind: LeftoverKind, orphaned: bool) -> Result<Option<Leftover>> {
    match fs::symlink_metadata(&path) {
        Ok(m) => Ok(Some(Leftover {
            bytes: m.len(),
            modified: m.modified().ok(),
            path,
            kind,
            orphaned,
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("stat", &path)(e)),
    }
}

/// Temp files in an object store's temp directory.
pub fn object_temp_files(tmp_dir: &Path) -> Result<Vec<Leftover>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(tmp_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("list", tmp_dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(Error::io("list", tmp_dir))?;
        let name = entry.file_name();
        let orphaned = match name.to_str().and_then(temp_file_pid) {
            Some(pid) => !process_alive(pid),
            None => false,
        };
        out.extend(leftover(entry.path(), LeftoverKind::ObjectTemp, orphaned)?);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Lock files of refs and reflogs, and the data directory's temp files.
pub fn ref_locks_and_dir_temps(dir: &Path) -> Result<Vec<Leftover>> {
    let mut out = Vec::new();
    for top in [REFS_DIR, LOGS_DIR] {
        locks_under(&dir.join(top), &mut out)?;
    }
    out.extend(leftover(
        dir.join("HEAD.lock"),
        LeftoverKind::RefLock,
        false,
    )?);
    for name in ["FORMAT.tmp", HORIZON_TEMP_FILE] {
        out.extend(leftover(dir.join(name), LeftoverKind::DirTemp, false)?);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn locks_under(dir: &Path, out: &mut Vec<Leftover>) -> Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(Error::io("list", dir))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(Error::io("stat", &path))?;
        if ty.is_dir() {
            locks_under(&path, out)?;
        } else if entry.file_name().as_encoded_bytes().ends_with(b".lock") {
            out.extend(leftover(path, LeftoverKind::RefLock, false)?);
        }
    }
    Ok(())
}
