//! The engine: one writer process per data directory, the WAL, checkpoint
//! commits on `refs/heads/main`, snapshots, branches and replay.
//!
//! Guarantees:
//! - Only one process opens a directory as an engine (`LOCK`, held with
//!   `File::lock`); a second gets [`Error::Locked`] naming the holder's pid.
//! - Open removes temp files left by dead processes and stale ref locks
//!   (only when no ref writer of any process is mid-transaction: see
//!   `sydra_refs`' lock module), repairs a torn WAL tail, and says what it
//!   did in [`OpenReport`].
//! - A checkpoint's objects (chunk blobs, trees, the commit) are durable
//!   (one batch) before `refs/heads/main` moves, by compare-and-swap.
//! - A failed sync anywhere poisons the engine: later writes fail with
//!   [`Error::Poisoned`] until the directory is reopened, because after a
//!   failed fsync the kernel may have dropped the data it was asked to
//!   write, and retrying would report success for lost bytes.
//! - Readers (replay, revisions, snapshots of a commit) never take the
//!   writer's locks, except a brief one to learn where the live WAL ends.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use sydra_objects::{Batch, Bump, Commit, Durability, Kind, ObjectId, TreeBuilder};
use sydra_refs::{PreviousValue, RefName, now_ns};

use crate::error::{Error, Result};
use crate::index;
use crate::replay::{Replay, Tail};
use crate::repo::Repository;
use crate::wal::{RecoveryReport, Wal, WalOptions, list_segments};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// WAL settings (sync mode, segment size, record limit).
    pub wal: WalOptions,
    /// Object store settings.
    pub objects: sydra_objects::Options,
    /// Author recorded in commits.
    pub author: String,
    /// Length of a time-series block in ns: compaction cuts segments at
    /// multiples of it since the epoch (default one hour). A store keeps
    /// the length its first compaction used (commit meta `series.block`).
    /// A whole number of seconds, at most 100 days.
    pub series_block_ns: i64,
    /// Bytes of point data the head may hold before [`Engine::maintain`]
    /// compacts all of it (not only the blocks before the newest); default
    /// 1 GiB.
    pub series_head_max_bytes: usize,
    /// Build the time-series head from the WAL when something first needs
    /// it (a series read or write at the head, a compaction, a checkpoint,
    /// an append) instead of at open; default `false`. A process that only
    /// reads as of a commit (`sydra query --as-of`) then never replays the
    /// live head. The head fields of [`OpenReport`] stay empty, and a head
    /// that cannot be rebuilt is reported by the first operation that needs
    /// it.
    pub defer_head: bool,
    /// Bytes of decoded segments kept for the next read (a repeated query
    /// over compacted data decodes nothing it read before); default
    /// 64 MiB, 0 turns it off.
    pub segment_cache_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wal: WalOptions::default(),
            objects: sydra_objects::Options::default(),
            author: "sydra".into(),
            series_block_ns: 3_600_000_000_000,
            series_head_max_bytes: 1 << 30,
            defer_head: false,
            segment_cache_bytes: 64 << 20,
        }
    }
}

/// What open found and repaired.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Whether [`Engine::create`] made the data directory (always `false`
    /// from [`Engine::open`], which never creates one).
    pub created: bool,
    /// WAL repairs.
    pub wal: RecoveryReport,
    /// Temp files of dead writers removed from `objects/tmp/`.
    pub temp_files_removed: Vec<PathBuf>,
    /// Stale `.lock` files removed from refs.
    pub stale_locks_removed: Vec<PathBuf>,
    /// A ref writer of another process (`sydra update-ref`, a section) was
    /// in the middle of a transaction, so its lock files were live and none
    /// was removed; one a crash left is removed at a later open.
    pub ref_writers_active: bool,
    /// Series the head was rebuilt with from the WAL.
    pub head_series: usize,
    /// Points the head was rebuilt with from the WAL.
    pub head_points: u64,
    /// Why the head could not be rebuilt (series operations then refuse).
    pub head_error: Option<String>,
}

impl OpenReport {
    /// Whether open had to repair anything.
    pub fn repaired(&self) -> bool {
        self.wal.repaired()
            || !self.temp_files_removed.is_empty()
            || !self.stale_locks_removed.is_empty()
    }
}

/// The result of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The new commit on `refs/heads/main`.
    pub commit: ObjectId,
    /// Records up to this seq are reflected in segments.
    pub applied_seq: u64,
    /// Records up to this seq are covered by chunks.
    pub last_seq: u64,
    /// Chunks added by this checkpoint.
    pub chunks: usize,
}

/// The engine. `Send + Sync`.
#[derive(Debug)]
pub struct Engine {
    repo: Repository,
    wal: Wal,
    lock: File,
    options: Options,
    pub(crate) commit_lock: Mutex<()>,
    poisoned: Poison,
    pub(crate) report: OpenReport,
    /// The time-series head (series/head.rs): points not yet compacted.
    pub(crate) head: Mutex<crate::series::head::Head>,
    /// Set while the head is still to be rebuilt (`Options::defer_head`):
    /// [`Engine::ensure_head`] builds it under the head's lock.
    pub(crate) head_pending: std::sync::atomic::AtomicBool,
    /// The lowest seq of a series record the head holds points or
    /// definitions from (`u64::MAX`: none): no checkpoint may apply it.
    pub(crate) series_floor: std::sync::atomic::AtomicU64,
    /// One time-series compaction at a time.
    pub(crate) compact_lock: Mutex<()>,
    /// Seqs of raw records ([`Engine::append`]) after the head commit's
    /// applied seq, ascending: a time-series compaction never applies them
    /// (only the caller's own checkpoints do).
    pub(crate) raw_pending: Mutex<std::collections::VecDeque<u64>>,
    /// The head commit's `series.cut_ts` and block length (as
    /// [`Engine::maintain`] reads them without touching the store).
    pub(crate) series_cut: std::sync::atomic::AtomicI64,
    pub(crate) series_block: std::sync::atomic::AtomicI64,
    /// The heads of the last few commits read as of (`Engine::view`):
    /// a commit's data never changes, so a repeated as-of read skips the
    /// rebuild.
    pub(crate) series_asof: Mutex<Vec<(ObjectId, Arc<crate::series::head::Head>)>>,
    /// Decoded segments, by their blobs' ids.
    pub(crate) segments: crate::series::segcache::SegmentCache,
    /// A read replica's remote: where replays fetch the WAL ranges of
    /// chunks this store lacks.
    pub(crate) range_source: std::sync::OnceLock<Arc<dyn crate::replay::RangeSource>>,
}

/// Note raw records' seqs as pending (kept ascending).
pub(crate) fn note_raw(
    pending: &Mutex<std::collections::VecDeque<u64>>,
    seqs: impl Iterator<Item = u64>,
) {
    let mut p = pending.lock();
    for seq in seqs {
        let at = p.partition_point(|&s| s < seq);
        if p.get(at) != Some(&seq) {
            p.insert(at, seq);
        }
    }
}

/// What a checkpoint's tree edit asks of the commit.
pub(crate) enum Edited {
    /// Commit with the applied seq the caller gave.
    Commit,
    /// Commit with this applied seq and these extra meta entries (a
    /// time-series compaction, which owns the series floor).
    CommitWith {
        applied: u64,
        meta: Vec<(String, String)>,
    },
    /// Nothing to commit.
    Abandon,
}

/// The engine's poison flag, shared with the sections it hands out: the
/// first sync failure anywhere is recorded, and every later write checks it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Poison(std::sync::Arc<PoisonState>);

#[derive(Debug, Default)]
pub(crate) struct PoisonState {
    /// Set once `reason` is; lets every write check without a lock.
    flag: std::sync::atomic::AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Poison {
    pub(crate) fn get(&self) -> Option<String> {
        if !self.0.flag.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        self.0.reason.lock().clone()
    }

    pub(crate) fn check(&self) -> Result<()> {
        match self.get() {
            Some(reason) => Err(Error::Poisoned { reason }),
            None => Ok(()),
        }
    }

    /// Record a sync failure; pass the result through.
    pub(crate) fn note<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r
            && e.is_sync_failure()
        {
            let mut p = self.0.reason.lock();
            if p.is_none() {
                *p = Some(e.to_string());
                self.0
                    .flag
                    .store(true, std::sync::atomic::Ordering::Release);
            }
        }
        r
    }
}

/// The ref checkpoints advance.
pub fn main_ref() -> RefName {
    RefName::main_branch()
}

impl Engine {
    /// Open the existing data directory `dir` as the one writer.
    ///
    /// Refuses, creating and changing nothing, a missing directory
    /// ([`Error::NoSuchDirectory`]), a directory without `FORMAT`
    /// ([`Error::NotARepository`]) and a `FORMAT` of another version
    /// ([`Error::UnsupportedFormat`]): a mistyped path must not become an
    /// empty store. Use [`Engine::create`] (or `sydra init`) to make one.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Engine> {
        let dir = dir.as_ref();
        let repo = Repository::open_with(dir, options.objects)?;
        let lock = take_lock(&repo.layout().lock_file(), dir)?;
        // A store made before init created `gc.lock` gets it now, while
        // there is space, so a later GC on a full disk need not create it.
        // Best effort: without it, the GC creates it as it always did.
        let _ = repo.layout().create_lock_files();
        let stale_locks = repo.refs().remove_stale_locks()?;
        let mut report = OpenReport {
            temp_files_removed: {
                let mut removed = remove_dead_temp_files(repo.objects().tmp_dir(), "obj-")?;
                removed.extend(remove_dead_temp_files(
                    &crate::history::temp_dir(&repo),
                    "history-",
                )?);
                removed
            },
            ref_writers_active: stale_locks.is_none(),
            stale_locks_removed: stale_locks.unwrap_or_default(),
            ..OpenReport::default()
        };
        let chunked_through = head_chunked_through(&repo)?;
        let (wal, wal_report) = Wal::open(&repo.layout().wal(), options.wal, chunked_through)?;
        report.wal = wal_report;
        let block = options.series_block_ns;
        let defer_head = options.defer_head;
        let segment_cache_bytes = options.segment_cache_bytes;
        let mut engine = Engine {
            repo,
            wal,
            lock,
            options,
            commit_lock: Mutex::new(()),
            poisoned: Poison::default(),
            report,
            head: Mutex::new(crate::series::head::Head::new(1)),
            head_pending: std::sync::atomic::AtomicBool::new(defer_head),
            series_floor: std::sync::atomic::AtomicU64::new(u64::MAX),
            compact_lock: Mutex::new(()),
            raw_pending: Mutex::new(std::collections::VecDeque::new()),
            series_cut: std::sync::atomic::AtomicI64::new(i64::MIN),
            series_block: std::sync::atomic::AtomicI64::new(block),
            series_asof: Mutex::new(Vec::new()),
            segments: crate::series::segcache::SegmentCache::new(segment_cache_bytes),
            range_source: std::sync::OnceLock::new(),
        };
        if !defer_head {
            engine.rebuild_head();
        }
        Ok(engine)
    }

    /// `sydra wal repair`: look for damage to acknowledged WAL records
    /// (which open refuses). With `confirmed`, the plan an operator accepted,
    /// cut the log at the first bad record if what is found now is exactly
    /// that plan, giving up the seqs it names; they are never assigned again
    /// (wal/repair.rs). Returns what was found and whether it was cut. Holds
    /// the writer lock throughout, so no engine is open while it works.
    /// Damage under the head checkpoint's chunks or in a sealed segment is
    /// an error, not a plan.
    pub fn repair_wal(
        dir: impl AsRef<Path>,
        confirmed: Option<&crate::wal::repair::RepairPlan>,
    ) -> Result<(crate::wal::repair::Diagnosis, bool)> {
        use crate::wal::repair::{self, Diagnosis};
        let dir = dir.as_ref();
        let repo = Repository::open(dir)?;
        let _lock = take_lock(&repo.layout().lock_file(), dir)?;
        let wal = repo.layout().wal();
        let chunked_through = head_chunked_through(&repo)?;
        let found = repair::plan(&wal, chunked_through)?;
        let mut cut = false;
        if let (Diagnosis::Damaged(plan), Some(accepted)) = (&found, confirmed)
            && plan == accepted
        {
            repair::remove_leftovers(&wal)?;
            repair::apply(&wal, plan)?;
            cut = true;
        }
        Ok((found, cut))
    }

    /// Make `dir` a data directory if it is not one yet (what `sydra init`
    /// does: see [`crate::Layout::create`] for what it refuses), then
    /// [`open`](Engine::open) it. [`OpenReport::created`] says whether it
    /// was created. The only engine call that creates anything where there
    /// was no data directory.
    pub fn create(dir: impl AsRef<Path>, options: Options) -> Result<Engine> {
        let dir = dir.as_ref();
        let (_, created) = Repository::init(dir)?;
        let mut engine = Engine::open(dir, options)?;
        engine.report.created = created;
        Ok(engine)
    }

    /// What open repaired.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Objects and refs.
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// The WAL itself: stats, options, and appends below the engine's
    /// checks (no poison check, no refusal of the series records' magic:
    /// use [`Engine::append`] for records of your own).
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Settings.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Why the engine is poisoned, if it is.
    pub fn poisoned(&self) -> Option<String> {
        self.poisoned.get().or_else(|| self.wal.poisoned())
    }

    pub(crate) fn check_poison(&self) -> Result<()> {
        match self.poisoned() {
            Some(reason) => Err(Error::Poisoned { reason }),
            None => Ok(()),
        }
    }

    /// Record a sync failure; pass the error through.
    pub(crate) fn note<T>(&self, r: Result<T>) -> Result<T> {
        self.poisoned.note(r)
    }

    /// Append a record; returns its seq once acknowledged per the sync mode.
    ///
    /// A payload starting with the series records' magic (`FF 'S' 'Y' 'T'`,
    /// FORMAT §17) is refused: the head would read it as one of its own.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        self.check_poison()?;
        refuse_series_magic(&[payload])?;
        self.ensure_head();
        let seq = self.note(self.wal.append(payload).map_err(Error::from))?;
        note_raw(&self.raw_pending, std::iter::once(seq));
        Ok(seq)
    }

    /// Append records with contiguous seqs.
    pub fn append_batch<P: AsRef<[u8]>>(
        &self,
        payloads: &[P],
    ) -> Result<std::ops::RangeInclusive<u64>> {
        self.check_poison()?;
        refuse_series_magic(payloads)?;
        self.ensure_head();
        let seqs = self.note(self.wal.append_batch(payloads).map_err(Error::from))?;
        note_raw(&self.raw_pending, seqs.clone());
        Ok(seqs)
    }

    /// Make every appended record durable; returns the last durable seq.
    pub fn sync(&self) -> Result<u64> {
        self.check_poison()?;
        self.note(self.wal.sync().map_err(Error::from))
    }

    /// The commit `refs/heads/main` points at.
    pub fn head(&self) -> Result<Option<ObjectId>> {
        Ok(self.repo.refs().resolve(&main_ref())?)
    }

    /// Commit the WAL's new durable ranges and the current tree to
    /// `refs/heads/main`. `applied_seq` (default: unchanged) says which
    /// records are reflected in segments; index entries of segments wholly
    /// at or below it leave the new tree.
    pub fn checkpoint(&self, applied_seq: Option<u64>, message: &str) -> Result<Checkpoint> {
        self.check_poison()?;
        let _one = self.commit_lock.lock();
        let r = self.checkpoint_locked(applied_seq, message, |_, _| Ok(Edited::Commit));
        self.note(r)?
            .ok_or(Error::NoHead("the checkpoint was abandoned"))
    }

    /// A checkpoint that also applies `edit` to the tree, writing any new
    /// objects through the same batch (used by compaction commits). The
    /// caller holds `commit_lock`.
    pub(crate) fn checkpoint_locked(
        &self,
        applied_seq: Option<u64>,
        message: &str,
        edit: impl FnOnce(&mut TreeBuilder<'_>, &mut Batch) -> Result<Edited>,
    ) -> Result<Option<Checkpoint>> {
        // The series floor below must be the rebuilt head's.
        self.ensure_head();
        let store = self.repo.objects();
        let head = self.head()?;
        let mut carried: Vec<(String, Vec<u8>)> = Vec::new();
        let (base_tree, prev_applied, parent_ts) = match head {
            Some(h) => {
                let obj = store.get(&h)?;
                let c = obj.commit()?;
                // The time-series cut (series/compact.rs) holds until the
                // next compaction moves it.
                carried.extend(
                    c.meta
                        .iter()
                        .filter(|(k, _)| k.starts_with("series."))
                        .map(|(k, v)| ((*k).to_owned(), v.to_vec())),
                );
                (
                    Some(c.tree),
                    c.meta_u64("wal.applied_seq").unwrap_or(0),
                    c.timestamp,
                )
            }
            None => (None, 0, i64::MIN),
        };
        let (chunks, durable) = self.wal.cut_chunks()?;
        let result = (|| {
            let arena = Bump::new();
            let mut builder = TreeBuilder::new(store, &arena, base_tree)?;
            let mut batch = store.batch(Durability::Batch);
            for c in &chunks {
                let id = batch.put(Kind::Blob, &c.encode())?;
                builder.upsert(&index::chunk_path(c.segment, c.first_seq), Kind::Blob, id)?;
            }
            let (applied, meta) = match edit(&mut builder, &mut batch)? {
                Edited::Abandon => return Ok(None),
                Edited::Commit => (applied_seq.unwrap_or(prev_applied), Vec::new()),
                Edited::CommitWith { applied, meta } => (applied.max(prev_applied), meta),
            };
            if applied < prev_applied {
                return Err(Error::AppliedSeq {
                    applied,
                    reason: format!("the head already applied through seq {prev_applied}"),
                });
            }
            if applied > durable {
                return Err(Error::AppliedSeq {
                    applied,
                    reason: format!("the WAL is durable only through seq {durable}"),
                });
            }
            // The head is rebuilt only from records after the applied seq;
            // only a compaction (which moves points into segments and says
            // so with its own applied seq) may apply series records.
            let floor = self.series_floor.load(std::sync::atomic::Ordering::Acquire);
            if meta.is_empty() && applied > prev_applied && applied >= floor {
                return Err(Error::AppliedSeq {
                    applied,
                    reason: format!(
                        "series records from seq {floor} on are not compacted into segments; \
                         applying them would take their points out of the head"
                    ),
                });
            }
            // A segment is wholly applied when its successor starts at or
            // below applied + 1. The newest segment is never dropped.
            let mut segs = match base_tree {
                Some(t) => index::segments(store, t)?,
                None => Vec::new(),
            };
            segs.extend(chunks.iter().map(|c| c.segment));
            segs.extend(list_segments(&self.repo.layout().wal())?);
            segs.sort_unstable();
            segs.dedup();
            for w in segs.windows(2) {
                if w[1] <= applied.saturating_add(1) {
                    builder.remove(&index::segment_path(w[0]))?;
                }
            }
            let tree = builder.write(&mut batch)?;
            let mut commit = Commit {
                tree,
                parents: head.into_iter().collect(),
                timestamp: now_ns().max(parent_ts),
                author: self.options.author.clone(),
                message: message.to_owned(),
                branch: "main".into(),
                ..Commit::default()
            };
            for (k, v) in carried {
                commit.meta.insert(k, v);
            }
            commit.set_meta("wal.applied_seq", applied);
            commit.set_meta("wal.last_seq", durable);
            for (k, v) in meta {
                commit.set_meta(&k, v);
            }
            let id = batch.put(
                Kind::Commit,
                &commit.encode().map_err(sydra_objects::Error::from)?,
            )?;
            let (pins, _) = batch.commit()?;
            let prev = head.map_or(
                PreviousValue::MustNotExist,
                PreviousValue::MustExistAndMatch,
            );
            self.repo
                .refs()
                .update(&main_ref(), id, prev, &format!("checkpoint: {message}"))?;
            drop(pins);
            {
                let mut p = self.raw_pending.lock();
                while p.front().is_some_and(|&s| s <= applied) {
                    p.pop_front();
                }
            }
            Ok(Some(Checkpoint {
                commit: id,
                applied_seq: applied,
                last_seq: durable,
                chunks: chunks.len(),
            }))
        })();
        // A failure after the ref moved (`Committed`, e.g. a failed directory
        // fsync) is still an error, but the commit landed with these chunks:
        // handing them back would commit them twice.
        let landed = matches!(&result, Err(Error::Refs(e)) if e.committed().is_some());
        if matches!(result, Ok(None)) || (result.is_err() && !landed) {
            self.wal.restore_chunks(chunks);
        }
        result
    }

    /// Point `refs/snapshots/<name>` at the head commit. The default name is
    /// the UTC time, e.g. `2026-11-21T10-30-00.123456789Z`.
    pub fn snapshot(&self, name: Option<&str>) -> Result<(RefName, ObjectId)> {
        self.check_poison()?;
        let head = self
            .head()?
            .ok_or(Error::NoHead("cannot take a snapshot"))?;
        let name = match name {
            Some(n) => n.to_owned(),
            None => snapshot_name(now_ns()),
        };
        let full =
            RefName::new(&format!("refs/snapshots/{name}")).map_err(sydra_refs::Error::from)?;
        let r = self
            .repo
            .refs()
            .update(&full, head, PreviousValue::MustNotExist, "snapshot")
            .map_err(Error::from);
        self.note(r)?;
        Ok((full, head))
    }

    /// Create `refs/heads/<name>` at the commit `from` resolves to.
    pub fn branch(&self, name: &str, from: &str) -> Result<(RefName, ObjectId)> {
        self.check_poison()?;
        let id = self.repo.resolve(from)?;
        self.repo.expect_commit(id)?;
        let full = RefName::new(&format!("refs/heads/{name}")).map_err(sydra_refs::Error::from)?;
        let r = self.repo.refs().update(
            &full,
            id,
            PreviousValue::MustNotExist,
            &format!("branch: from {from}"),
        );
        self.note(r.map_err(Error::from))?;
        Ok((full, id))
    }

    /// The key/value section `name` on `refs/sections/<name>`.
    pub fn section(&self, name: &str) -> Result<crate::section::Section> {
        crate::section::Section::open_with_poison(self.repo.clone(), name, self.poisoned.clone())
    }

    /// Replay from the head: every record after the head's applied seq,
    /// through its chunks and then the live tail, including records still
    /// buffered (they are written to the OS first).
    pub fn replay_head(&self) -> Result<Replay> {
        let until = self.wal.flush()?;
        Replay::new(
            self.repo.objects(),
            self.repo.layout().wal(),
            self.head()?,
            Tail::UpTo(until),
        )
    }

    /// Replay exactly what the commit `rev` resolves to had committed.
    pub fn replay(&self, rev: &str) -> Result<Replay> {
        let id = self.repo.resolve(rev)?;
        self.repo.expect_commit(id)?;
        Replay::new(
            self.repo.objects(),
            self.repo.layout().wal(),
            Some(id),
            Tail::None,
        )?
        .fetching(self.range_source.get().cloned())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The OS releases the lock when the file closes; unlocking first
        // makes the release explicit for readers of this code.
        let _ = self.lock.unlock();
    }
}

/// A valid ref-name component for a time: `YYYY-MM-DDTHH-MM-SS.nnnnnnnnnZ`.
pub fn snapshot_name(ns: i64) -> String {
    crate::time::format_rfc3339(ns).replace(':', "-")
}

/// The last WAL seq the head checkpoint's chunks cover (0: no checkpoint).
fn head_chunked_through(repo: &Repository) -> Result<u64> {
    Ok(match repo.refs().resolve(&main_ref())? {
        Some(head) => repo
            .objects()
            .get(&head)?
            .commit()?
            .meta_u64("wal.last_seq")
            .unwrap_or(0),
        None => 0,
    })
}

fn refuse_series_magic<P: AsRef<[u8]>>(payloads: &[P]) -> Result<()> {
    if payloads
        .iter()
        .any(|p| crate::series::record::is_series_record(p.as_ref()))
    {
        return Err(Error::Series(
            "a raw WAL record may not start with the bytes FF 53 59 54 (\\xFFSYT), \
             which mark the engine's own series records"
                .into(),
        ));
    }
    Ok(())
}

/// Take the writer lock. `LOCK` exists in every store `init` made; it is
/// created here only for a store an older release made without it (the
/// directory has passed the `FORMAT` check by now).
pub(crate) fn take_lock(path: &Path, dir: &Path) -> Result<File> {
    let mut f = sydra_objects::fs::open_regular_with(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
    .map_err(Error::io("open", path))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(Error::Locked {
                dir: dir.to_path_buf(),
                pid: sydra_gc::read_pid(&mut f),
            });
        }
        Err(TryLockError::Error(e)) => return Err(Error::io("lock", path)(e)),
    }
    // The pid is informational (for the error above); the lock is the flock.
    // It is written in place over the record init left, so it needs no new
    // block, and a failure to write it (a full copy-on-write disk) must not
    // keep the writer, or a GC freeing the disk, from starting.
    let _ = sydra_gc::write_pid(&f, "lock.write");
    Ok(f)
}

/// Remove temp files whose writer process is gone: `obj-<pid>-<n>.tmp` in
/// `objects/tmp/`, `history-<pid>-<n>.tmp` in `index/tmp/` (history indexes
/// are also built by readers that hold no lock, so a live pid's file is in
/// use). A file of a live process is left alone; any other name is removed.
fn remove_dead_temp_files(tmp: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let rd = match fs::read_dir(tmp) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(Error::io("list", tmp)(e)),
    };
    let me = std::process::id();
    for entry in rd {
        let entry = entry.map_err(Error::io("list", tmp))?;
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let alive = match pid {
            Some(p) if p == me => false,
            Some(p) => Path::new(&format!("/proc/{p}")).exists(),
            None => false,
        };
        if !alive {
            let path = entry.path();
            match sydra_objects::fault::point("tmp.cleanup").and_then(|()| fs::remove_file(&path)) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path)(e)),
            }
        }
    }
    Ok(removed)
}
