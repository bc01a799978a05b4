//! The sweep: delete unreachable objects older than the grace period, then
//! stale temp files and empty shard directories.
//!
//! Per unreachable object, in this order:
//! 1. protected (written or freshened since the GC began in this process)
//!    or modified after the cutoff: kept;
//! 2. read back in full (framing, CRC, BLAKE3): a corrupt file is kept and
//!    reported, never deleted — it is evidence, and fsck names it;
//! 3. [`GcGuard::delete_if_unprotected`] re-checks protection and mtime and
//!    unlinks under the shard lock writers take for their dedup check, so a
//!    writer either finds the file gone (and writes it again) or the sweep
//!    sees its registration.
//!
//! A shard directory is removed only when empty and unmodified for longer
//! than both the grace period and [`DIR_MARGIN`]: `rmdir` fails on a
//! non-empty directory, and the margin keeps it from removing a directory a
//! writer has just created and is about to rename into (a writer that finds
//! its shard gone creates it again).

use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sydra_objects::{GcGuard, ObjectId, Store, SweepOutcome};

use crate::error::{Error, Result};
use crate::leftovers::{self, process_alive, temp_file_pid};
use crate::mark::Mark;
use crate::progress::Progress;

/// Shard directories younger than this are never removed, whatever the
/// grace period.
pub const DIR_MARGIN: Duration = Duration::from_secs(60);

/// Sweep settings.
#[derive(Debug, Clone, Copy)]
pub struct SweepOptions {
    /// Objects and temp files modified at or after this are kept.
    pub cutoff: SystemTime,
    /// Shard directories modified at or after this are kept.
    pub dir_cutoff: SystemTime,
    /// Count what would be deleted, delete nothing.
    pub dry_run: bool,
}

/// An unreachable object the sweep kept because it failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptObject {
    /// The id it is stored under.
    pub id: ObjectId,
    /// Its file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// What the sweep did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Objects in the store that were not reached.
    pub unreachable: u64,
    /// Their bytes.
    pub unreachable_bytes: u64,
    /// Objects deleted (dry run: that would be).
    pub deleted: u64,
    /// Bytes freed by that.
    pub bytes_freed: u64,
    /// Unreachable objects kept because modified within the grace period.
    pub kept_recent: u64,
    /// Unreachable objects kept because written or reused since the GC
    /// began (in-process writers).
    pub kept_protected: u64,
    /// Unreachable objects kept because they are corrupt.
    pub kept_corrupt: Vec<CorruptObject>,
    /// Temp files removed (dry run: that would be).
    pub temp_files_removed: u64,
    /// Their bytes.
    pub temp_bytes_freed: u64,
    /// Empty shard directories removed (not counted in a dry run).
    pub shard_dirs_removed: u64,
}

/// Shard directory names (`00`..`ff`) present in the store, sorted.
pub(crate) fn shard_names(store: &Store) -> Result<Vec<String>> {
    let dir = store.dir();
    let rd = fs::read_dir(dir).map_err(Error::io("list", dir))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(Error::io("list", dir))?;
        if let Some(name) = entry.file_name().to_str()
            && name.len() == 2
            && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            out.push(name.to_owned());
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn mtime(path: &std::path::Path) -> Result<Option<(SystemTime, u64)>> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some((
            m.modified().map_err(Error::io("read mtime of", path))?,
            m.len(),
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("stat", path)(e)),
    }
}

/// Sweep `store` of everything `mark` did not reach.
pub fn sweep(
    store: &Store,
    guard: &GcGuard,
    mark: &Mark,
    options: &SweepOptions,
    progress: &dyn Progress,
) -> Result<Swept> {
    let mut out = Swept::default();
    let shards = shard_names(store)?;
    progress.phase("sweeping", "shards", Some(shards.len() as u64));
    for shard in &shards {
        for id in store.list_shard(shard)? {
            if mark.contains(&id) {
                continue;
            }
            sweep_one(store, guard, &id, options, &mut out)?;
        }
        if !options.dry_run {
            remove_empty_shard(store, shard, options, &mut out)?;
        }
        progress.advance(1);
    }
    progress.finish();
    sweep_temp_files(store, options, &mut out)?;
    Ok(out)
}

fn sweep_one(
    store: &Store,
    guard: &GcGuard,
    id: &ObjectId,
    options: &SweepOptions,
    out: &mut Swept,
) -> Result<()> {
    let path = store.path_of(id);
    let Some((modified, len)) = mtime(&path)? else {
        return Ok(());
    };
    out.unreachable += 1;
    out.unreachable_bytes += len;
    if guard.is_protected(id) {
        out.kept_protected += 1;
        return Ok(());
    }
    if modified >= options.cutoff {
        out.kept_recent += 1;
        return Ok(());
    }
    match store.get_verified(id) {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => {
            let reason = match e {
                sydra_objects::Error::Corrupt { reason, .. } => reason,
                other => other.to_string(),
            };
            out.kept_corrupt.push(CorruptObject {
                id: *id,
                path,
                reason,
            });
            return Ok(());
        }
    }
    if options.dry_run {
        out.deleted += 1;
        out.bytes_freed += len;
        return Ok(());
    }
    match guard.delete_if_unprotected(id, options.cutoff)? {
        SweepOutcome::Deleted(n) => {
            out.deleted += 1;
            out.bytes_freed += n;
        }
        SweepOutcome::Protected => out.kept_protected += 1,
        SweepOutcome::Recent => out.kept_recent += 1,
        SweepOutcome::Missing => {}
    }
    Ok(())
}

fn remove_empty_shard(
    store: &Store,
    shard: &str,
    options: &SweepOptions,
    out: &mut Swept,
) -> Result<()> {
    let dir = store.dir().join(shard);
    let Some((modified, _)) = mtime(&dir)? else {
        return Ok(());
    };
    if modified >= options.dir_cutoff {
        return Ok(());
    }
    match sydra_objects::fault::point("gc.shard.rmdir").and_then(|()| fs::remove_dir(&dir)) {
        Ok(()) => out.shard_dirs_removed += 1,
        // Not empty (a file, or a writer's new object): keep it. POSIX lets
        // rmdir report that as ENOTEMPTY or EEXIST.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::DirectoryNotEmpty
                    | io::ErrorKind::AlreadyExists
                    | io::ErrorKind::NotFound
            ) => {}
        Err(e) => return Err(Error::io("remove empty shard directory", &dir)(e)),
    }
    Ok(())
}

/// Temp files older than the cutoff whose writer is gone (never this
/// process's own: its writes may be in flight).
fn sweep_temp_files(store: &Store, options: &SweepOptions, out: &mut Swept) -> Result<()> {
    for t in leftovers::object_temp_files(store.tmp_dir())? {
        let name = t.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if temp_file_pid(name).is_some_and(process_alive) {
            continue;
        }
        if t.modified.is_none_or(|m| m >= options.cutoff) {
            continue;
        }
        if options.dry_run {
            out.temp_files_removed += 1;
            out.temp_bytes_freed += t.bytes;
            continue;
        }
        match sydra_objects::fault::point("gc.tmp.remove").and_then(|()| fs::remove_file(&t.path)) {
            Ok(()) => {
                out.temp_files_removed += 1;
                out.temp_bytes_freed += t.bytes;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove temp file", &t.path)(e)),
        }
    }
    Ok(())
}
