//! fsck: verify every object, every ref and reflog, the retention file,
//! and connectivity from the roots; list leftover temp and lock files.
//!
//! Read-only (it writes only its pid into `gc.lock`), safe beside a live
//! writer and beside GC in any process:
//! - fsck holds the GC lock (`gc.lock`, [`GcLock`]) for the whole check,
//!   waiting while a GC holds it, so no GC sweeps objects or WAL segments
//!   or moves the retention horizon under its walk; a GC that starts
//!   meanwhile is refused as "already running". When the lock cannot be
//!   taken at all (a read-only directory), fsck runs anyway and says so in
//!   a note.
//! - Objects are never changed in place, and objects written during the
//!   pass are unreachable until a ref moves; a ref moves only after the
//!   objects it reaches are durable. Refs are read once.
//! - A ref update in another process may fall between reading a ref and
//!   its reflog; the engine's check that reflogs end at their refs reads
//!   a disagreeing pair again before reporting it.
//!
//! Passes:
//! 1. **objects**: every file under `objects/<2>/` is read in full:
//!    framing, lengths, id in header vs path, CRC32, BLAKE3 recomputed;
//!    trees and commits must also decode canonically. Files that are not
//!    objects are notes.
//! 2. **refs**: every ref file parses, symbolic chains end, direct targets
//!    exist, branches point at commits.
//! 3. **reflogs**: every reflog parses; entries that are roots (younger
//!    than the expiry, not older than the horizon) are marked from.
//! 4. **retention**: the `shallow` file parses.
//! 5. **connectivity**: the mark from refs and reflog roots; a missing,
//!    unreadable, corrupt or wrongly-kinded reachable object is reported with
//!    the path by which it is reached.
//! 6. **leftovers**: temp and lock files, listed as notes.
//!
//! Problems make the report unclean (the command exits 1); notes do not.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use sydra_objects::store::header::MIN_FILE_LEN;
use sydra_objects::store::id_from_path;
use sydra_objects::{Kind, ObjectId, Store};
use sydra_refs::{REFS_DIR, RefName, RefStore, Target};

use crate::error::{Error, Result};
use crate::horizon::Horizon;
use crate::leftovers::{self, LeftoverKind};
use crate::lock::{GC_LOCK_FILE, GcLock};
use crate::mark::{self, Defect, MarkOptions, Reached, Visitor};
use crate::progress::Progress;
use crate::roots::{self, Origin, Roots};
use crate::session::DEFAULT_REFLOG_EXPIRY;
use crate::stats::Tally;
use crate::sweep::shard_names;

/// fsck settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsckOptions {
    /// Reflog entries younger than this are roots, as for GC (default 90
    /// days). Older entries may name objects GC has since deleted; they are
    /// not checked.
    pub reflog_expiry: Duration,
}

impl Default for FsckOptions {
    fn default() -> Self {
        FsckOptions {
            reflog_expiry: DEFAULT_REFLOG_EXPIRY,
        }
    }
}

/// One thing fsck found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which check: `object`, `ref`, `reflog`, `retention`,
    /// `connectivity`, `store`, `leftover` (the engine adds `wal`).
    pub check: &'static str,
    /// The object concerned, if any.
    pub id: Option<ObjectId>,
    /// The file concerned, or the path by which an object is reached.
    pub path: Option<String>,
    /// One sentence.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.check, self.message)
    }
}

impl Finding {
    /// A finding.
    pub fn new(
        check: &'static str,
        id: Option<ObjectId>,
        path: Option<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            id,
            path,
            message: message.into(),
        }
    }
}

/// What fsck checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Blobs in the store.
    pub blobs: Tally,
    /// Trees in the store.
    pub trees: Tally,
    /// Commits in the store.
    pub commits: Tally,
    /// Object files that failed verification.
    pub corrupt: u64,
    /// Packs verified (objects in them are counted in the tallies above;
    /// an object both loose and packed counts once per copy).
    pub packs: u64,
    /// Refs checked (HEAD included).
    pub refs: u64,
    /// Reflogs checked.
    pub reflogs: u64,
    /// Reachable objects that exist.
    pub reachable: Reached,
    /// Damage: each makes the report unclean.
    pub problems: Vec<Finding>,
    /// Informational: leftovers, stray files, expired retention entries.
    pub notes: Vec<Finding>,
}

impl FsckReport {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Objects in the store (sound ones), all kinds.
    pub fn objects(&self) -> Tally {
        self.blobs + self.trees + self.commits
    }
}

fn display(p: &Path) -> Option<String> {
    Some(p.display().to_string())
}

/// fsck's hold on the GC lock: no garbage collection (in any process)
/// starts while it lives. Released on drop.
#[derive(Debug)]
pub struct GcExclusion {
    lock: Option<GcLock>,
    /// Why the lock could not be taken, when it could not.
    note: Option<Finding>,
}

impl GcExclusion {
    /// Whether the GC lock is held (`false` when it could not be taken and
    /// fsck runs without it).
    pub fn holds_lock(&self) -> bool {
        self.lock.is_some()
    }
}

/// How often fsck tries again for the GC lock while a GC holds it.
const GC_LOCK_POLL: Duration = Duration::from_millis(50);

/// Take the GC lock of the data directory `dir` for a check, waiting while
/// a GC holds it (shown as a progress phase). A lock that cannot be taken
/// for any other reason (no write access to `dir`) is not an error: the
/// check runs without it, and a note in its report says so.
pub fn exclude_gc(dir: &Path, progress: &dyn Progress) -> Result<GcExclusion> {
    let mut waiting = false;
    let result = loop {
        match GcLock::acquire(dir) {
            Ok(lock) => {
                break GcExclusion {
                    lock: Some(lock),
                    note: None,
                };
            }
            Err(e) if e.is_running() => {
                if !waiting {
                    progress.phase("waiting for a running garbage collection", "polls", None);
                    waiting = true;
                }
                progress.advance(1);
                std::thread::sleep(GC_LOCK_POLL);
            }
            Err(e) => {
                let path = dir.join(GC_LOCK_FILE);
                break GcExclusion {
                    lock: None,
                    note: Some(Finding::new(
                        "store",
                        None,
                        display(&path),
                        format!(
                            "fsck ran without the GC lock ({e}): a garbage collection running meanwhile may show here as missing objects or segments; rerun when none runs"
                        ),
                    )),
                };
            }
        }
    };
    if waiting {
        progress.finish();
    }
    Ok(result)
}

/// Check the data directory of `refs`, holding the GC lock (see
/// [`exclude_gc`]). `visitor` sees every reachable commit (the engine
/// checks WAL chunks from it).
pub fn fsck(
    refs: &RefStore,
    options: &FsckOptions,
    visitor: &mut dyn Visitor,
    progress: &dyn Progress,
) -> Result<FsckReport> {
    let exclusion = exclude_gc(refs.dir(), progress)?;
    fsck_excluding(&exclusion, refs, options, visitor, progress)
}

/// [`fsck`] for a caller that already took `exclusion` (the engine, which
/// checks the WAL under the same exclusion afterwards).
pub fn fsck_excluding(
    exclusion: &GcExclusion,
    refs: &RefStore,
    options: &FsckOptions,
    visitor: &mut dyn Visitor,
    progress: &dyn Progress,
) -> Result<FsckReport> {
    let now_ns = crate::session::ns_of(SystemTime::now());
    let store = refs.objects();
    let mut report = FsckReport::default();
    report.notes.extend(exclusion.note.clone());
    let bad = check_objects(store, &mut report, progress)?;
    let mut roots = Roots::new();
    check_refs(refs, &mut report, &mut roots)?;
    let horizon = match Horizon::read(refs.dir()) {
        Ok(h) => h,
        Err(e @ Error::CorruptHorizon { .. }) => {
            report.problems.push(Finding::new(
                "retention",
                None,
                display(&Horizon::path(refs.dir())),
                e.to_string(),
            ));
            Horizon::none()
        }
        Err(e) => return Err(e),
    };
    for b in horizon.boundaries() {
        if !store.contains(b)? {
            report.notes.push(Finding::new(
                "retention",
                Some(*b),
                display(&Horizon::path(refs.dir())),
                format!("boundary commit {b} no longer exists; the next retention update drops it"),
            ));
        }
    }
    let cutoff = roots::reflog_cutoff(
        &horizon,
        now_ns,
        i64::try_from(options.reflog_expiry.as_nanos()).unwrap_or(i64::MAX),
    );
    check_reflogs(refs, cutoff, &mut report, &mut roots)?;
    let m = mark::mark(
        store,
        &roots,
        &horizon,
        &MarkOptions {
            verify_hash: false,
            blob_headers: true,
            known_bad: Some(&bad),
            size_hint: 0,
        },
        visitor,
        progress,
    )?;
    report.reachable = m.reached;
    for p in m.problems {
        let merged = matches!(p.defect, Defect::Corrupt(_))
            && bad.contains_key(&p.id)
            && report
                .problems
                .iter_mut()
                .find(|f| f.check == "object" && f.id == Some(p.id))
                .map(|f| {
                    f.message.push_str("; reached by ");
                    f.message.push_str(&p.chain);
                })
                .is_some();
        if !merged {
            report.problems.push(Finding::new(
                "connectivity",
                Some(p.id),
                Some(p.chain.clone()),
                p.to_string(),
            ));
        }
    }
    list_leftovers(refs, &mut report)?;
    Ok(report)
}

/// Pass 1. Returns the corrupt ids with their reasons.
fn check_objects(
    store: &Store,
    report: &mut FsckReport,
    progress: &dyn Progress,
) -> Result<HashMap<ObjectId, String>> {
    let mut bad = HashMap::new();
    let dir = store.dir();
    let rd = fs::read_dir(dir).map_err(Error::io("list", dir))?;
    for entry in rd {
        let entry = entry.map_err(Error::io("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_shard =
            name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let is_dir = entry
            .file_type()
            .map_err(Error::io("stat", entry.path()))?
            .is_dir();
        if !(is_dir
            && (is_shard
                || name == sydra_objects::store::TMP_DIR
                || name == sydra_objects::pack::PACK_DIR))
        {
            report.notes.push(Finding::new(
                "store",
                None,
                display(&entry.path()),
                format!(
                    "{} is not an object shard directory",
                    entry.path().display()
                ),
            ));
        }
    }
    let shards = shard_names(store)?;
    progress.phase("verifying objects", "shards", Some(shards.len() as u64));
    for shard in shards {
        let sdir = dir.join(&shard);
        let rd = match fs::read_dir(&sdir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("list", &sdir)(e)),
        };
        for entry in rd {
            let entry = entry.map_err(Error::io("list", &sdir))?;
            let path = entry.path();
            let Some(id) = id_from_path(&path) else {
                report.notes.push(Finding::new(
                    "store",
                    None,
                    display(&path),
                    format!("{} is not named like an object", path.display()),
                ));
                continue;
            };
            match verify_object(store, &id) {
                Ok(Some((kind, bytes))) => {
                    let t = match kind {
                        Kind::Blob => &mut report.blobs,
                        Kind::Tree => &mut report.trees,
                        Kind::Commit => &mut report.commits,
                    };
                    t.count += 1;
                    t.bytes += bytes;
                }
                Ok(None) => {}
                Err(reason) => {
                    report.corrupt += 1;
                    report.problems.push(Finding::new(
                        "object",
                        Some(id),
                        display(&path),
                        format!("object {id} ({}) is corrupt: {reason}", path.display()),
                    ));
                    bad.insert(id, reason);
                }
            }
        }
        progress.advance(1);
    }
    progress.finish();
    check_packs(store, report)?;
    Ok(bad)
}

/// Pass 1b: every file under `objects/pack/`: each pack verified whole
/// with its index (every entry's framing, CRC, BLAKE3, decoding; count,
/// trailer, name; the index agrees with the pack); anything else is a note.
fn check_packs(store: &Store, report: &mut FsckReport) -> Result<()> {
    let dir = store.pack_dir();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    let mut names: Vec<std::path::PathBuf> = Vec::new();
    for entry in rd {
        names.push(entry.map_err(Error::io("list", dir))?.path());
    }
    names.sort();
    // Shared by every pair: many leftovers wait once, not each in turn.
    let mut settle = PACK_PAIR_SETTLE;
    for path in names {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match sydra_objects::pack::parse_file_name(name) {
            Some((hash, "pack")) => {
                let idx = dir.join(sydra_objects::pack::file_name(&hash, "idx"));
                // Caught between the two renames of a publication or the
                // two unlinks of a removal: let it settle first.
                if !idx.exists() && settled_pair(&path, &idx, &mut settle) == (false, false) {
                    continue;
                }
            }
            Some((hash, "idx")) => {
                let pack = dir.join(sydra_objects::pack::file_name(&hash, "pack"));
                if !pack.exists() && settled_pair(&pack, &path, &mut settle) == (false, true) {
                    report.problems.push(Finding::new(
                        "pack",
                        None,
                        display(&path),
                        format!("{} has no pack beside it", path.display()),
                    ));
                }
                continue;
            }
            _ => {
                report.notes.push(Finding::new(
                    "store",
                    None,
                    display(&path),
                    format!("{} is not a pack or pack index", path.display()),
                ));
                continue;
            }
        }
        let mut decode =
            |e: &sydra_objects::pack::Entry, payload: &[u8]| -> std::result::Result<(), String> {
                let r = match e.kind {
                    Kind::Tree => sydra_objects::TreeRef::decode(payload).map(|_| ()),
                    Kind::Commit => sydra_objects::CommitRef::decode(payload).map(|_| ()),
                    Kind::Blob => Ok(()),
                };
                r.map_err(|d| format!("its payload does not decode as a {}: {d}", e.kind))
            };
        let v = match sydra_objects::pack::verify_pack(&path, &mut decode) {
            Ok(v) => v,
            // Removed by a repack in another process meanwhile.
            Err(e)
                if e.io_error()
                    .is_some_and(|e| e.kind() == io::ErrorKind::NotFound) =>
            {
                continue;
            }
            Err(e) => return Err(Error::Objects(e)),
        };
        // Removed by a repack while it was read: what it held was merged
        // into a pack of its own (checked when listed, and by the mark).
        if !v.is_clean() && !path.exists() {
            continue;
        }
        for (k, t) in [
            (0, &mut report.blobs),
            (1, &mut report.trees),
            (2, &mut report.commits),
        ] {
            t.count += v.kinds[k].0;
            t.bytes += v.kinds[k].1;
        }
        report.packs += 1;
        for p in v.problems {
            report
                .problems
                .push(Finding::new("pack", None, display(&path), p));
        }
    }
    Ok(())
}

/// How long fsck waits, in all, for packs and their indexes to both be
/// there or both be gone before it reports one without the other.
const PACK_PAIR_SETTLE: Duration = Duration::from_millis(500);

/// Whether (`pack`, `idx`) exist, once they agree or when `settle` (what
/// is left of [`PACK_PAIR_SETTLE`]) has run out. A pack is published by renaming the pack and
/// then its index, and removed by unlinking the pack and then its index;
/// batches and automatic repacks do this without the GC lock, so a pack
/// without its index, or the reverse, is a moment in another process's
/// work as often as a crash's leftover. Only one that lasts is reported.
fn settled_pair(pack: &Path, idx: &Path, settle: &mut Duration) -> (bool, bool) {
    let start = std::time::Instant::now();
    loop {
        let now = (pack.exists(), idx.exists());
        let waited = start.elapsed();
        if now.0 == now.1 || waited >= *settle {
            *settle = settle.saturating_sub(waited);
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Read and verify one object; `Ok(None)` when it vanished meanwhile.
fn verify_object(store: &Store, id: &ObjectId) -> std::result::Result<Option<(Kind, u64)>, String> {
    let obj = match store.get_loose(id, true) {
        Ok(o) => o,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(sydra_objects::Error::Corrupt { reason, .. }) => return Err(reason),
        Err(e) => return Err(e.to_string()),
    };
    let decoded = match obj.kind {
        Kind::Tree => obj.tree().map(|_| ()),
        Kind::Commit => obj.commit().map(|_| ()),
        Kind::Blob => Ok(()),
    };
    if let Err(e) = decoded {
        return Err(match e {
            sydra_objects::Error::Decode { source, .. } => {
                format!("its payload does not decode as a {}: {source}", obj.kind)
            }
            other => other.to_string(),
        });
    }
    Ok(Some((obj.kind, (obj.data.len() + MIN_FILE_LEN) as u64)))
}

/// Pass 2: HEAD and every file under `refs/`.
fn check_refs(refs: &RefStore, report: &mut FsckReport, roots: &mut Roots) -> Result<()> {
    let mut names: Vec<(RefName, String)> = vec![(RefName::head(), "HEAD".to_owned())];
    walk_refs(&refs.dir().join(REFS_DIR), REFS_DIR, report, &mut names)?;
    for (name, path) in names {
        let target = match refs.read(&name) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                report.refs += 1;
                report
                    .problems
                    .push(Finding::new("ref", None, Some(path), e.to_string()));
                continue;
            }
        };
        report.refs += 1;
        match target {
            Target::Object(id) => {
                check_ref_target(refs.objects(), &name, id, &path, report);
                roots.push(Origin::Ref(name), [id]);
            }
            Target::Symbolic(_) => {
                if let Err(e) = refs.resolve(&name) {
                    report
                        .problems
                        .push(Finding::new("ref", None, Some(path), e.to_string()));
                }
            }
        }
    }
    Ok(())
}

fn check_ref_target(
    store: &Store,
    name: &RefName,
    id: ObjectId,
    path: &str,
    report: &mut FsckReport,
) {
    match store.stat(&id) {
        Ok(st) if name.is_branch() && st.kind != Kind::Commit => {
            report.problems.push(Finding::new(
                "ref",
                Some(id),
                Some(path.to_owned()),
                format!("branch {name} points at {id}, a {}, not a commit", st.kind),
            ));
        }
        Ok(_) => {}
        Err(e) if e.is_not_found() => {
            report.problems.push(Finding::new(
                "ref",
                Some(id),
                Some(path.to_owned()),
                format!("ref {name} points at missing object {id}"),
            ));
        }
        // A corrupt target is reported by the object pass, with this ref
        // in its reach path.
        Err(_) => {}
    }
}

fn walk_refs(
    dir: &Path,
    rel: &str,
    report: &mut FsckReport,
    out: &mut Vec<(RefName, String)>,
) -> Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    let mut entries = Vec::new();
    for entry in rd {
        entries.push(entry.map_err(Error::io("list", dir))?);
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let shown = path.display().to_string();
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            report.problems.push(Finding::new(
                "ref",
                None,
                Some(shown.clone()),
                format!("{shown} is not a ref: its name is not UTF-8"),
            ));
            continue;
        };
        let full = format!("{rel}/{file_name}");
        let ty = entry.file_type().map_err(Error::io("stat", &path))?;
        if ty.is_dir() {
            walk_refs(&path, &full, report, out)?;
            continue;
        }
        if file_name.ends_with(".lock") {
            continue;
        }
        match RefName::new(&full) {
            Ok(name) if ty.is_file() => out.push((name, shown)),
            Ok(_) => report.problems.push(Finding::new(
                "ref",
                None,
                Some(shown.clone()),
                format!("{shown} is not a ref: not a regular file"),
            )),
            Err(e) => report.problems.push(Finding::new(
                "ref",
                None,
                Some(shown.clone()),
                format!("{shown} is not a ref: {e}"),
            )),
        }
    }
    Ok(())
}

/// Pass 3: every reflog parses; entries at or after `cutoff` are roots.
fn check_reflogs(
    refs: &RefStore,
    cutoff: i64,
    report: &mut FsckReport,
    roots: &mut Roots,
) -> Result<()> {
    for f in roots::log_files(refs)? {
        let shown = f.path.display().to_string();
        let name = match f.name {
            Ok(n) => n,
            Err(reason) => {
                report.notes.push(Finding::new(
                    "reflog",
                    None,
                    Some(shown.clone()),
                    format!("{shown} is not a reflog: {reason}"),
                ));
                continue;
            }
        };
        report.reflogs += 1;
        match refs.reflog(&name) {
            Ok(entries) => {
                let mut ids: Vec<ObjectId> = entries
                    .iter()
                    .filter(|e| e.timestamp_ns >= cutoff)
                    .flat_map(|e| e.old.into_iter().chain(e.new))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                roots.push(Origin::Reflog(name), ids);
            }
            Err(e) => {
                report
                    .problems
                    .push(Finding::new("reflog", None, Some(shown), e.to_string()))
            }
        }
    }
    Ok(())
}

/// Pass 6.
fn list_leftovers(refs: &RefStore, report: &mut FsckReport) -> Result<()> {
    let mut all = leftovers::object_temp_files(refs.objects().tmp_dir())?;
    all.extend(leftovers::ref_locks_and_dir_temps(refs.dir())?);
    for l in all {
        let shown = l.path.display().to_string();
        let message = match (l.kind, l.orphaned) {
            (LeftoverKind::ObjectTemp, true) => format!(
                "orphaned temp file {shown} ({} bytes): its writer is gone; gc or the next engine open removes it",
                l.bytes
            ),
            (LeftoverKind::ObjectTemp, false) => {
                format!("temp file {shown}: a write in progress (its process is alive)")
            }
            (LeftoverKind::RefLock, _) => format!(
                "lock file {shown}: a ref update in progress, or left by a crash (the next engine open removes it)"
            ),
            (_, _) => format!(
                "temp file {shown}: left by an interrupted write of the data directory; it is overwritten by the next one"
            ),
        };
        report
            .notes
            .push(Finding::new("leftover", None, Some(shown), message));
    }
    Ok(())
}
