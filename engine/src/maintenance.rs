//! Maintenance of a data directory: garbage collection with the WAL
//! segment sweep, the retention horizon, fsck with WAL chunk verification,
//! and stats. The object-level work is the `sydra-gc` crate's; this module
//! adds what needs the WAL.
//!
//! ## Which WAL segments GC deletes
//!
//! A segment `wal/<S>.wal` is deleted when all of:
//! 1. it is not the newest segment (the writer may have it open);
//! 2. it is *wholly applied*: its successor starts at or below
//!    `head.applied_seq + 1`, with the head read before the GC began
//!    (`applied_seq` never decreases along the first-parent chain, so an
//!    older head is the conservative choice);
//! 3. no reachable commit *needs* it: commit C needs segment S when C's
//!    tree has a chunk of S under `wal/index/<S>/` with
//!    `last_seq > C.applied_seq` — exactly the chunks replaying C reads.
//!    A segment named by no reachable commit is, in particular, needed by
//!    none.
//!
//! Rule 3 is what makes a swept segment safe to find still *named* by a
//! reachable commit: a checkpoint that applies everything through the end
//! of the then-newest segment keeps that segment's index entry (the newest
//! is never dropped), but its replay skips every chunk at or below its
//! applied seq and never opens the file. fsck follows the same rule: a
//! missing segment is a problem only when some reachable commit needs it,
//! and otherwise a note.
//!
//! In-process writers are safe: a checkpoint racing the GC descends from
//! the head the GC read, so its applied seq is at least as high and it
//! needs no wholly applied segment; a segment it names and needs has
//! records above that head's applied seq and fails rule 2.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use sydra_gc::{
    Finding, FsckOptions, FsckReport, GcOptions, GcReport, Horizon, Keep, NoProgress, Progress,
    Stats, StatsOptions,
};
use sydra_gc::{Session, Via, Visitor};
use sydra_objects::{CommitRef, Kind, ObjectId, Store};

use crate::engine::{Engine, main_ref};
use crate::error::{Error, Result};
use crate::index::{INDEX_DIR, tree_at};
use crate::replay::{Replay, Tail};
use crate::repo::Repository;
use crate::wal::record::{parse_segment_file_name, parse_seq_name, segment_file_name};
use crate::wal::{Chunk, SegmentView, WalError, list_segments};

/// What [`Engine::gc`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcSummary {
    /// The object collection.
    pub objects: GcReport,
    /// The WAL segment sweep.
    pub wal: WalSweep,
}

/// What the WAL segment sweep did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalSweep {
    /// The head's applied seq the sweep used.
    pub head_applied_seq: u64,
    /// Segments present when the sweep looked.
    pub segments: u64,
    /// First seqs of the segments deleted (dry run: that would be).
    pub deleted: Vec<u64>,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Wholly applied segments kept because a reachable commit needs them.
    pub kept_needed: u64,
    /// Stored WAL ranges (fetched from another store) no reachable commit
    /// needs, deleted (dry run: that would be).
    pub ranges_deleted: u64,
    /// Their bytes.
    pub range_bytes_freed: u64,
    /// Unneeded stored ranges kept because they are younger than the grace
    /// period (a fetch in another process may not have moved its ref yet).
    pub ranges_kept_recent: u64,
}

/// Statistics of a data directory: objects and refs, and the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoStats {
    /// Objects, refs, reachability.
    pub objects: Stats,
    /// The WAL.
    pub wal: WalUsage,
}

/// WAL files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalUsage {
    /// Segment files.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
    /// First seq of the oldest segment.
    pub first_seq: Option<u64>,
    /// First seq of the newest segment.
    pub newest_segment: Option<u64>,
    /// `wal.applied_seq` of `refs/heads/main` (0 without a checkpoint).
    pub head_applied_seq: u64,
    /// Sealed segments wholly at or below the head's applied seq: what a GC
    /// may delete once no reachable commit needs them.
    pub wholly_applied: u64,
}

/// For each reachable root tree: the lowest applied seq of the commits
/// that have it, one such commit, and how it was reached.
#[derive(Debug, Default)]
struct Commits {
    by_tree: HashMap<ObjectId, Reacher>,
    /// Keep the reach path (fsck's messages); GC does not need it.
    with_paths: bool,
}

#[derive(Debug, Clone)]
struct Reacher {
    applied: u64,
    commit: ObjectId,
    via: String,
}

impl Visitor for Commits {
    fn commit(&mut self, id: &ObjectId, commit: &CommitRef<'_>, via: Via<'_>) {
        let applied = commit.meta_u64("wal.applied_seq").unwrap_or(0);
        let with_paths = self.with_paths;
        let make = || Reacher {
            applied,
            commit: *id,
            via: if with_paths {
                via.to_string()
            } else {
                String::new()
            },
        };
        self.by_tree
            .entry(commit.tree)
            .and_modify(|r| {
                if applied < r.applied {
                    *r = make();
                }
            })
            .or_insert_with(make);
    }
}

/// The `wal/index` trees of the reachable commits, each with its lowest
/// applied seq.
fn index_trees(store: &Store, commits: &Commits) -> Result<HashMap<ObjectId, Reacher>> {
    let mut out: HashMap<ObjectId, Reacher> = HashMap::new();
    for (root, r) in &commits.by_tree {
        let idx = match tree_at(store, *root, INDEX_DIR) {
            Ok(Some(idx)) => idx,
            Ok(None) => continue,
            // Only a commit reached through an id pinned by an in-flight
            // batch can lack its tree (the mark stops the GC on any other
            // missing object); such a commit descends from the head and
            // needs no wholly applied segment.
            Err(Error::Objects(e)) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        out.entry(idx)
            .and_modify(|cur| {
                if r.applied < cur.applied {
                    *cur = r.clone();
                }
            })
            .or_insert_with(|| r.clone());
    }
    Ok(out)
}

/// Segments some reachable commit needs for its replay, and the stored
/// ranges (chunks fetched from another store, `walchunks/`) one needs. A
/// chunk with a stored range never makes this store's segment of the same
/// number needed.
fn needed_segments(
    store: &Store,
    wal_dir: &Path,
    commits: &Commits,
) -> Result<(BTreeMap<u64, ObjectId>, HashSet<ObjectId>)> {
    let mut needed = BTreeMap::new();
    let mut needed_ranges = HashSet::new();
    // Per segment subtree (shared by many commits): its chunks' ids and
    // last seqs, and whether each has a stored range.
    let mut cache: HashMap<ObjectId, Vec<(ObjectId, u64, bool)>> = HashMap::new();
    for (idx, r) in index_trees(store, commits)? {
        let obj = match store.get(&idx) {
            Ok(o) => o,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        for e in obj.tree()?.entries {
            let Some(seg) = parse_seq_name(e.name) else {
                continue;
            };
            let chunks = cache
                .entry(e.id)
                .or_insert_with(|| segment_chunks(store, wal_dir, e.id));
            for &(id, last, stored) in chunks.iter() {
                if last <= r.applied {
                    continue;
                }
                if stored {
                    needed_ranges.insert(id);
                } else {
                    needed.entry(seg).or_insert(r.commit);
                }
            }
        }
    }
    Ok((needed, needed_ranges))
}

/// The chunks of a segment subtree: id, last seq, whether a stored range
/// holds it. Anything that cannot be read or decoded (an in-flight object
/// not yet promoted) counts as needed: last seq `u64::MAX`, not stored.
fn segment_chunks(store: &Store, wal_dir: &Path, seg_tree: ObjectId) -> Vec<(ObjectId, u64, bool)> {
    let Ok(obj) = store.get(&seg_tree) else {
        return vec![(seg_tree, u64::MAX, false)];
    };
    let Ok(tree) = obj.tree() else {
        return vec![(seg_tree, u64::MAX, false)];
    };
    tree.entries
        .iter()
        .map(|e| {
            let last = match store.get(&e.id) {
                Ok(blob) if blob.kind == Kind::Blob => {
                    Chunk::decode(&blob.data).map_or(u64::MAX, |c| c.last_seq)
                }
                _ => u64::MAX,
            };
            (e.id, last, crate::wal::ranges::exists(wal_dir, &e.id))
        })
        .collect()
}

fn head_applied(repo: &Repository) -> Result<u64> {
    Ok(match repo.refs().resolve(&main_ref())? {
        Some(h) => repo
            .objects()
            .get(&h)?
            .commit()?
            .meta_u64("wal.applied_seq")
            .unwrap_or(0),
        None => 0,
    })
}

fn sync_dir(dir: &Path) -> Result<()> {
    sydra_objects::fs::sync_dir(dir, || sydra_objects::fault::point("wal.dir.sync"))
        .map_err(|e| Error::Wal(e.into()))
}

/// Delete sealed, wholly applied segments no reachable commit needs.
fn sweep_wal(
    store: &Store,
    wal_dir: &Path,
    head_applied_seq: u64,
    commits: &Commits,
    cutoff: std::time::SystemTime,
    dry_run: bool,
) -> Result<WalSweep> {
    let (needed, needed_ranges) = needed_segments(store, wal_dir, commits)?;
    let segs = list_segments(wal_dir)?;
    let mut out = WalSweep {
        head_applied_seq,
        segments: segs.len() as u64,
        ..WalSweep::default()
    };
    sweep_ranges(wal_dir, &needed_ranges, cutoff, dry_run, &mut out)?;
    for w in segs.windows(2) {
        let (seg, next) = (w[0], w[1]);
        if next > head_applied_seq.saturating_add(1) {
            continue;
        }
        if needed.contains_key(&seg) {
            out.kept_needed += 1;
            continue;
        }
        let path = wal_dir.join(segment_file_name(seg));
        let len = match fs::symlink_metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("stat", &path)(e)),
        };
        if !dry_run {
            match sydra_objects::fault::point("wal.segment.remove")
                .and_then(|()| fs::remove_file(&path))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("remove WAL segment", &path)(e)),
            }
        }
        out.deleted.push(seg);
        out.bytes_freed += len;
    }
    if !dry_run && !out.deleted.is_empty() {
        // Not needed for safety (a segment that reappears after a crash is
        // wholly applied and ignored), but a GC's report should be durable.
        sync_dir(wal_dir)?;
    }
    Ok(out)
}

/// Delete stored WAL ranges no reachable commit needs and older than
/// `cutoff`.
fn sweep_ranges(
    wal_dir: &Path,
    needed: &HashSet<ObjectId>,
    cutoff: std::time::SystemTime,
    dry_run: bool,
    out: &mut WalSweep,
) -> Result<()> {
    for (id, path) in crate::wal::ranges::list(wal_dir)? {
        if needed.contains(&id) {
            continue;
        }
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("stat", &path)(e)),
        };
        if meta.modified().map_or(true, |m| m >= cutoff) {
            out.ranges_kept_recent += 1;
            continue;
        }
        if !dry_run {
            match sydra_objects::fault::point("walchunks.remove")
                .and_then(|()| fs::remove_file(&path))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("remove stored WAL range", &path)(e)),
            }
        }
        out.ranges_deleted += 1;
        out.range_bytes_freed += meta.len();
    }
    Ok(())
}

impl Engine {
    /// Collect garbage beside this engine's live writers: objects (see
    /// `sydra_gc`), then WAL segments (see the [module docs](self)). Only
    /// one GC runs at a time per data directory.
    pub fn gc(&self, options: &GcOptions) -> Result<GcSummary> {
        self.gc_with_progress(options, &NoProgress)
    }

    /// [`Engine::gc`], reporting progress.
    pub fn gc_with_progress(
        &self,
        options: &GcOptions,
        progress: &dyn Progress,
    ) -> Result<GcSummary> {
        self.check_poison()?;
        let r = (|| {
            // Before the session: an older head is the conservative choice.
            let applied = head_applied(self.repo())?;
            let cutoff = std::time::SystemTime::now()
                .checked_sub(options.grace)
                .unwrap_or(std::time::UNIX_EPOCH);
            let session = Session::begin(self.repo().refs())?;
            let mut commits = Commits::default();
            let (objects, mark) = session.run(options, &mut commits, progress)?;
            drop(mark);
            let wal = sweep_wal(
                self.repo().objects(),
                &self.repo().layout().wal(),
                applied,
                &commits,
                cutoff,
                options.dry_run,
            )?;
            drop(session);
            Ok(GcSummary { objects, wal })
        })();
        self.note(r)
    }

    /// Set the retention horizon: keep `keep` on every ref's first-parent
    /// chain; GC then treats the oldest kept commits as parentless and
    /// reclaims the history (objects and WAL) only older commits reached.
    /// Recorded durably in `<dir>/shallow`. Takes the GC lock.
    pub fn retain(&self, keep: Keep) -> Result<Horizon> {
        self.check_poison()?;
        let r = (|| {
            let session = Session::begin(self.repo().refs())?;
            Ok(session.retain(keep, sydra_gc::DEFAULT_REFLOG_EXPIRY, true)?)
        })();
        self.note(r)
    }

    /// The retention horizon in force.
    pub fn horizon(&self) -> Result<Horizon> {
        Ok(Horizon::read(self.repo().layout().root())?)
    }
}

/// Check a data directory (read-only; no writer lock): everything
/// `sydra_gc::fsck` checks, plus every reachable WAL chunk against the
/// segment bytes. Holds the GC lock throughout, waiting while a GC runs
/// (see `sydra_gc::exclude_gc`), so no GC deletes objects or segments, or
/// moves the horizon, under the check.
pub fn fsck(
    repo: &Repository,
    options: &FsckOptions,
    progress: &dyn Progress,
) -> Result<FsckReport> {
    let exclusion = sydra_gc::exclude_gc(repo.layout().root(), progress)?;
    let mut commits = Commits {
        with_paths: true,
        ..Commits::default()
    };
    let mut report =
        sydra_gc::fsck_excluding(&exclusion, repo.refs(), options, &mut commits, progress)?;
    check_head(repo, &mut report)?;
    check_reflog_ends(repo, &mut report)?;
    check_wal(repo, &commits, &mut report, progress)?;
    drop(exclusion);
    Ok(report)
}

/// One chunk blob of a reachable commit.
struct ChunkUse {
    blob: ObjectId,
    chunk: Chunk,
    /// `wal/index/<segment>/<chunk>`.
    path: String,
    /// A commit whose replay reads it, if any.
    needed_by: Option<Reacher>,
    /// Any commit that names it (for messages).
    named_by: Reacher,
}

fn chain(r: &Reacher, seg: &str, blob: &ObjectId) -> String {
    format!(
        "{} -> commit {} -> tree {INDEX_DIR}/{seg} -> blob {blob}",
        r.via, r.commit
    )
}

fn check_wal(
    repo: &Repository,
    commits: &Commits,
    report: &mut FsckReport,
    progress: &dyn Progress,
) -> Result<()> {
    let store = repo.objects();
    let wal_dir = repo.layout().wal();
    let mut by_segment: BTreeMap<u64, Vec<ChunkUse>> = BTreeMap::new();
    let mut seen: HashMap<ObjectId, (u64, usize)> = HashMap::new();
    // Index trees that cannot be read were reported by connectivity.
    let mut indexes: Vec<(ObjectId, Reacher)> = Vec::new();
    for (root, r) in &commits.by_tree {
        if let Ok(Some(idx)) = tree_at(store, *root, INDEX_DIR) {
            indexes.push((idx, r.clone()));
        }
    }
    indexes.sort_by_key(|(id, r)| (*id, r.applied));
    for (idx, r) in indexes {
        let Ok(obj) = store.get(&idx) else { continue };
        let Ok(tree) = obj.tree() else { continue };
        for seg_entry in &tree.entries {
            let Some(seg) = parse_seq_name(seg_entry.name).filter(|_| seg_entry.kind == Kind::Tree)
            else {
                report.problems.push(Finding::new(
                    "wal",
                    Some(seg_entry.id),
                    Some(format!("{} -> commit {} -> tree {INDEX_DIR}", r.via, r.commit)),
                    format!(
                        "unexpected entry {:?} in the WAL index of commit {} (expected 20-digit segment trees)",
                        seg_entry.name, r.commit
                    ),
                ));
                continue;
            };
            let Ok(seg_obj) = store.get(&seg_entry.id) else {
                continue;
            };
            let Ok(seg_tree) = seg_obj.tree() else {
                continue;
            };
            for e in &seg_tree.entries {
                let path = format!("{INDEX_DIR}/{}/{}", seg_entry.name, e.name);
                if let Some(&(s, i)) = seen.get(&e.id) {
                    // Shared by several commits: needed if any needs it.
                    if let Some(u) = by_segment.get_mut(&s).and_then(|v| v.get_mut(i))
                        && u.needed_by.is_none()
                        && u.chunk.last_seq > r.applied
                    {
                        u.needed_by = Some(r.clone());
                    }
                    continue;
                }
                let Ok(blob) = store.get(&e.id) else { continue };
                let chunk = match Chunk::decode(&blob.data) {
                    Ok(c) if blob.kind == Kind::Blob => c,
                    Ok(_) => continue,
                    Err(err) => {
                        report.problems.push(Finding::new(
                            "wal",
                            Some(e.id),
                            Some(chain(&r, seg_entry.name, &e.id)),
                            format!("WAL chunk blob {} at {path} does not decode: {err}", e.id),
                        ));
                        continue;
                    }
                };
                if chunk.segment != seg || parse_seq_name(e.name) != Some(chunk.first_seq) {
                    report.problems.push(Finding::new(
                        "wal",
                        Some(e.id),
                        Some(chain(&r, seg_entry.name, &e.id)),
                        format!(
                            "WAL chunk {} at {path} describes segment {} from seq {}; its path disagrees",
                            e.id, chunk.segment, chunk.first_seq
                        ),
                    ));
                    continue;
                }
                // A range fetched from another store: verified on its own,
                // never against this store's segment of the same number.
                if crate::wal::ranges::exists(&wal_dir, &e.id) {
                    if let Err(err) = crate::wal::ranges::open(&wal_dir, &e.id, &chunk) {
                        report.problems.push(Finding::new(
                            "wal",
                            Some(e.id),
                            Some(chain(&r, seg_entry.name, &e.id)),
                            format!(
                                "the stored WAL range of chunk {} ({path}) is damaged: {err}",
                                e.id
                            ),
                        ));
                    }
                    continue;
                }
                let list = by_segment.entry(seg).or_default();
                seen.insert(e.id, (seg, list.len()));
                list.push(ChunkUse {
                    blob: e.id,
                    chunk,
                    path,
                    needed_by: (chunk.last_seq > r.applied).then(|| r.clone()),
                    named_by: r.clone(),
                });
            }
        }
    }
    progress.phase(
        "verifying WAL chunks",
        "segments",
        Some(by_segment.len() as u64),
    );
    for (seg, uses) in &by_segment {
        verify_segment(&wal_dir, *seg, uses, report);
        progress.advance(1);
    }
    progress.finish();
    check_tail(repo, report)?;
    wal_strays(&wal_dir, report)?;
    Ok(())
}

/// HEAD is symbolic to `refs/heads/main` (which may not exist yet); a HEAD
/// naming any other ref that does not exist has been damaged.
fn check_head(repo: &Repository, report: &mut FsckReport) -> Result<()> {
    let head = sydra_refs::RefName::head();
    if let Ok(Some(sydra_refs::Target::Symbolic(to))) = repo.refs().read(&head)
        && to != crate::main_ref()
        && repo.refs().read(&to)?.is_none()
    {
        report.problems.push(Finding::new(
            "refs",
            None,
            Some("HEAD".into()),
            format!("HEAD points at {to}, which does not exist (sydra keeps HEAD at ref: refs/heads/main)"),
        ));
    }
    // Other damage to HEAD is reported by the ref checks.
    Ok(())
}

/// What one read of a ref and the end of its reflog saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReflogEnd {
    value: ObjectId,
    last: Option<sydra_refs::ReflogEntry>,
}

impl ReflogEnd {
    fn consistent(&self) -> bool {
        self.last.as_ref().is_none_or(|l| l.new == Some(self.value))
    }

    /// The last line records a change away from the ref's value that did
    /// not land: an update writes its reflog line before renaming its lock
    /// over the ref, so a crash (or a failed rename) in between leaves
    /// exactly this.
    fn interrupted(&self) -> bool {
        self.last
            .as_ref()
            .is_some_and(|l| l.old == Some(self.value) && l.new != Some(self.value))
    }
}

/// The ref's value and its reflog's last line, read together; `None` when
/// the ref is gone, symbolic or unreadable, or its reflog is unreadable
/// (reported by the ref and reflog checks).
fn read_reflog_end(repo: &Repository, name: &sydra_refs::RefName) -> Option<ReflogEnd> {
    // Holds off this process's ref commits; other processes' are caught by
    // reading again (see `check_reflog_ends`).
    let _guard = repo.refs().consistent_read();
    let value = repo.refs().read(name).ok()??.object()?;
    let log = repo.refs().reflog(name).ok()?;
    Some(ReflogEnd {
        value,
        last: log.last().cloned(),
    })
}

/// How often `check_reflog_ends` reads a disagreeing ref and reflog again
/// before believing them, and how long it waits in between.
const REFLOG_END_READS: u32 = 50;
const REFLOG_END_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Each ref's reflog ends at the ref's value. A last line that records a
/// change away from the value is an update interrupted between its reflog
/// line and its rename (a note). Any other mismatch means a reflog line was
/// lost or merged into another (damage), or a crash fell between a rename
/// and its reflog line in a store written before reflog lines came first;
/// either way the log no longer tells the ref's history.
///
/// A ref update in another process may fall between reading the ref and
/// reading its log, so a disagreement is only reported once two reads in a
/// row see the same state with no update of the ref in progress (no lock
/// file), or after `REFLOG_END_READS` reads.
fn check_reflog_ends(repo: &Repository, report: &mut FsckReport) -> Result<()> {
    for (name, _) in repo.refs().list("refs/")? {
        let lock = {
            let mut p = repo.refs().path_of(&name).into_os_string();
            p.push(".lock");
            PathBuf::from(p)
        };
        let mut previous: Option<ReflogEnd> = None;
        for read in 1..=REFLOG_END_READS {
            let Some(end) = read_reflog_end(repo, &name) else {
                break;
            };
            if end.consistent() {
                break;
            }
            let settled = previous.as_ref() == Some(&end) && !lock.exists();
            if !settled && read < REFLOG_END_READS {
                previous = Some(end);
                std::thread::sleep(REFLOG_END_PAUSE);
                continue;
            }
            report_reflog_end(&name, &end, report);
            break;
        }
    }
    Ok(())
}

fn report_reflog_end(name: &sydra_refs::RefName, end: &ReflogEnd, report: &mut FsckReport) {
    let value = end.value;
    let Some(last) = &end.last else { return };
    let shown = |id: Option<ObjectId>| id.map_or_else(|| "a deletion".to_owned(), |id| id.to_hex());
    if end.interrupted() {
        report.notes.push(Finding::new(
            "refs",
            Some(value),
            Some(format!("logs/{name}")),
            format!(
                "the last reflog line of {name} records a change from {value} to {} that did not land: an update was interrupted after its reflog line and before its rename (a crash, or its rename failed); {name} still points at {value}, and its next update continues the log",
                shown(last.new)
            ),
        ));
    } else {
        report.problems.push(Finding::new(
            "refs",
            Some(value),
            Some(format!("logs/{name}")),
            format!(
                "the reflog of {name} ends at {} but {name} points at {value}: a reflog line was lost or damaged (OPERATIONS.md says what to do)",
                shown(last.new)
            ),
        ));
    }
}

/// Every record past the head's last chunk: CRC, framing and contiguous
/// seqs. A damaged or torn tail is a problem: the next open of the engine
/// truncates the log at the first bad record.
fn check_tail(repo: &Repository, report: &mut FsckReport) -> Result<()> {
    let head = repo.refs().resolve(&crate::main_ref())?;
    let Ok(replay) = Replay::new(repo.objects(), repo.layout().wal(), head, Tail::ToEndStrict)
    else {
        // An unreadable head commit or index was reported by connectivity.
        return Ok(());
    };
    let mut tail = replay.tail_only();
    while let Some(r) = tail.next_record() {
        if let Err(e) = r {
            report.problems.push(Finding::new(
                "wal",
                None,
                None,
                format!(
                    "the WAL past the last checkpoint is damaged: {e}; the next open of the engine truncates the log there, dropping the records after it"
                ),
            ));
            break;
        }
    }
    Ok(())
}

fn verify_segment(wal_dir: &Path, seg: u64, uses: &[ChunkUse], report: &mut FsckReport) {
    let seg_name = format!("{seg:020}");
    let file = wal_dir.join(segment_file_name(seg));
    let view = match SegmentView::open(wal_dir, seg) {
        Ok(v) => v,
        Err(WalError::Missing { .. }) => {
            for u in uses {
                match &u.needed_by {
                    Some(r) => report.problems.push(Finding::new(
                        "wal",
                        Some(u.blob),
                        Some(chain(r, &seg_name, &u.blob)),
                        format!(
                            "WAL segment {} is missing, but commit {} (applied through seq {}) needs records {}..={} of chunk {} ({}) to replay",
                            file.display(),
                            r.commit,
                            r.applied,
                            u.chunk.first_seq,
                            u.chunk.last_seq,
                            u.blob,
                            u.path
                        ),
                    )),
                    None => report.notes.push(Finding::new(
                        "wal",
                        Some(u.blob),
                        Some(chain(&u.named_by, &seg_name, &u.blob)),
                        format!(
                            "WAL segment {} was removed after being wholly applied; chunk {} ({}, seqs {}..={}) is at or below the applied seq of every reachable commit naming it, so no replay reads it",
                            file.display(),
                            u.blob,
                            u.path,
                            u.chunk.first_seq,
                            u.chunk.last_seq
                        ),
                    )),
                }
            }
            return;
        }
        Err(e) => {
            report.problems.push(Finding::new(
                "wal",
                None,
                Some(file.display().to_string()),
                e.to_string(),
            ));
            return;
        }
    };
    let bytes = view.bytes();
    for u in uses {
        let range = usize::try_from(u.chunk.start)
            .ok()
            .zip(usize::try_from(u.chunk.end).ok())
            .filter(|(s, e)| s < e && *e <= bytes.len());
        let verdict = match range {
            Some((s, e)) => u.chunk.verify(&bytes[s..e]),
            None => Err(format!(
                "range {}..{} is outside the {}-byte segment",
                u.chunk.start,
                u.chunk.end,
                bytes.len()
            )),
        };
        if let Err(reason) = verdict {
            let r = u.needed_by.as_ref().unwrap_or(&u.named_by);
            report.problems.push(Finding::new(
                "wal",
                Some(u.blob),
                Some(chain(r, &seg_name, &u.blob)),
                format!(
                    "WAL chunk {} ({}) does not match {}: {reason}",
                    u.blob,
                    u.path,
                    file.display()
                ),
            ));
        }
    }
}

/// Files in `wal/` that are not segments (notes).
fn wal_strays(wal_dir: &Path, report: &mut FsckReport) -> Result<()> {
    let rd = match fs::read_dir(wal_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", wal_dir)(e)),
    };
    let mut strays: Vec<PathBuf> = Vec::new();
    for entry in rd {
        let entry = entry.map_err(Error::io("list", wal_dir))?;
        let ok = entry
            .file_name()
            .to_str()
            .and_then(parse_segment_file_name)
            .is_some();
        if !ok {
            strays.push(entry.path());
        }
    }
    strays.sort();
    for p in strays {
        report.notes.push(Finding::new(
            "wal",
            None,
            Some(p.display().to_string()),
            format!("{} is not a WAL segment", p.display()),
        ));
    }
    Ok(())
}

/// Statistics of a data directory (read-only, no lock).
pub fn stats(
    repo: &Repository,
    options: &StatsOptions,
    progress: &dyn Progress,
) -> Result<RepoStats> {
    let objects = sydra_gc::stats(repo.refs(), options, progress)?;
    let wal_dir = repo.layout().wal();
    let segs = list_segments(&wal_dir)?;
    let applied = head_applied(repo)?;
    let mut wal = WalUsage {
        segments: segs.len() as u64,
        first_seq: segs.first().copied(),
        newest_segment: segs.last().copied(),
        head_applied_seq: applied,
        ..WalUsage::default()
    };
    for s in &segs {
        let path = wal_dir.join(segment_file_name(*s));
        match fs::symlink_metadata(&path) {
            Ok(m) => wal.bytes += m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("stat", &path)(e)),
        }
    }
    wal.wholly_applied = segs
        .windows(2)
        .filter(|w| w[1] <= applied.saturating_add(1))
        .count() as u64;
    Ok(RepoStats { objects, wal })
}
