//! The sweep: delete unreachable objects older than the grace period, then
//! stale temp files and empty shard directories.
//!
//! Each unreachable object goes through
//! [`ShardSweep::sweep`](sydra_objects::store::ShardSweep): kept when
//! protected (written or freshened since the GC began in this process) or
//! modified after the cutoff; read back and verified, and kept and reported
//! when corrupt — it is evidence, and fsck names it; otherwise unlinked
//! under the shard lock writers take for their dedup check, so a writer
//! either finds the file gone (and writes it again) or the sweep sees its
//! registration.
//!
//! A shard directory is removed only when empty and unmodified for longer
//! than both the grace period and [`DIR_MARGIN`]: `rmdir` fails on a
//! non-empty directory, and the margin keeps it from removing a directory a
//! writer has just created and is about to rename into (a writer that finds
//! its shard gone creates it again).

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use sydra_objects::{GcGuard, ObjectId, Store, SweepCheck, SweepOutcome};

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
    /// Recompute each candidate's BLAKE3 before deleting it (CRC32, framing
    /// and the header id are always checked).
    pub verify_hash: bool,
    /// Worker threads (at least one is used).
    pub threads: usize,
}

/// The default number of sweep threads: the CPUs available, at most 4 (the
/// work is system calls on independent directories; more threads than
/// that mostly contend in the kernel).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
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
///
/// Shards are handed out one at a time to `options.threads` workers (shard
/// directories are independent: each has its own directory lock in the
/// kernel and its own shard lock here). Counts do not depend on the number
/// of threads; corrupt objects are listed sorted by id.
pub fn sweep(
    store: &Store,
    guard: &GcGuard,
    mark: &Mark,
    options: &SweepOptions,
    progress: &dyn Progress,
) -> Result<Swept> {
    let shards = shard_names(store)?;
    progress.phase("sweeping", "shards", Some(shards.len() as u64));
    let threads = options.threads.clamp(1, shards.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut out = Swept::default();
    let mut first_error = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Result<Swept>>();
        for _ in 0..threads {
            let tx = tx.clone();
            let (shards, next, stop) = (&shards, &next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(shard) = shards.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let result = sweep_shard(store, guard, mark, options, shard);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if tx.send(result).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for result in rx {
            match result {
                Ok(part) => out.merge(part),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            progress.advance(1);
        }
    });
    progress.finish();
    if let Some(e) = first_error {
        return Err(e);
    }
    out.kept_corrupt.sort_by_key(|c| c.id);
    sweep_temp_files(store, options, &mut out)?;
    Ok(out)
}

fn sweep_shard(
    store: &Store,
    guard: &GcGuard,
    mark: &Mark,
    options: &SweepOptions,
    shard: &str,
) -> Result<Swept> {
    let mut out = Swept::default();
    let check = SweepCheck {
        cutoff: options.cutoff,
        verify_hash: options.verify_hash,
        dry_run: options.dry_run,
    };
    if let Some(mut dir) = guard.open_shard(shard)? {
        for id in store.list_shard(shard)? {
            if mark.contains(&id) {
                continue;
            }
            let outcome = dir.sweep(&id, &check)?;
            out.count(id, outcome, dir.path());
        }
    }
    if !options.dry_run {
        remove_empty_shard(store, shard, options, &mut out)?;
    }
    Ok(out)
}

impl Swept {
    fn merge(&mut self, other: Swept) {
        self.unreachable += other.unreachable;
        self.unreachable_bytes += other.unreachable_bytes;
        self.deleted += other.deleted;
        self.bytes_freed += other.bytes_freed;
        self.kept_recent += other.kept_recent;
        self.kept_protected += other.kept_protected;
        self.kept_corrupt.extend(other.kept_corrupt);
        self.temp_files_removed += other.temp_files_removed;
        self.temp_bytes_freed += other.temp_bytes_freed;
        self.shard_dirs_removed += other.shard_dirs_removed;
    }

    fn count(&mut self, id: ObjectId, outcome: SweepOutcome, shard_dir: &std::path::Path) {
        let len = match &outcome {
            SweepOutcome::Missing => return,
            SweepOutcome::Deleted(n)
            | SweepOutcome::WouldDelete(n)
            | SweepOutcome::Protected(n)
            | SweepOutcome::Recent(n) => *n,
            SweepOutcome::Corrupt { len, .. } => *len,
        };
        self.unreachable += 1;
        self.unreachable_bytes += len;
        match outcome {
            SweepOutcome::Deleted(n) | SweepOutcome::WouldDelete(n) => {
                self.deleted += 1;
                self.bytes_freed += n;
            }
            SweepOutcome::Protected(_) => self.kept_protected += 1,
            SweepOutcome::Recent(_) => self.kept_recent += 1,
            SweepOutcome::Corrupt { reason, .. } => self.kept_corrupt.push(CorruptObject {
                id,
                path: shard_dir.join(&id.to_hex()[2..]),
                reason,
            }),
            SweepOutcome::Missing => {}
        }
    }
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
