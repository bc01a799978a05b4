//! A garbage collection session: the GC lock, the in-process protection of
//! the object store, then roots, mark and sweep.
//!
//! Order matters (docs/ARCHITECTURE.md, "GC beside a live writer"):
//! 1. take `gc.lock` (one GC per data directory, across processes);
//! 2. [`Store::begin_gc`]: from here on every id a writer of this process
//!    registers is protected, and the ids pinned right now become roots;
//! 3. note the start time (the grace cutoff is measured from it);
//! 4. read refs and reflogs *after* 2, so a ref moved by an in-process
//!    writer is either seen here or its objects were pinned or protected;
//! 5. mark; 6. sweep, refusing if the mark found damage.
//!
//! [`Store::begin_gc`]: sydra_objects::Store::begin_gc

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sydra_objects::GcGuard;
use sydra_refs::RefStore;

use crate::duration::Keep;
use crate::error::{Error, Result};
use crate::horizon::Horizon;
use crate::lock::GcLock;
use crate::mark::{self, Mark, MarkOptions, Reached, Visitor};
use crate::progress::Progress;
use crate::roots::{Origin, Roots};
use crate::sweep::{self, DIR_MARGIN, SweepOptions, Swept};

/// The default grace period: unreachable objects modified within it are
/// kept, which is what protects the writes of *other* processes.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);
/// The default reflog expiry: reflog entries younger than this are roots.
pub const DEFAULT_REFLOG_EXPIRY: Duration = Duration::from_secs(90 * 86_400);

/// GC settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcOptions {
    /// Unreachable objects and temp files modified less than this long
    /// before the GC began are kept (default one hour; zero is allowed).
    pub grace: Duration,
    /// Reflog entries younger than this are roots (default 90 days).
    pub reflog_expiry: Duration,
    /// Report what would be deleted; delete nothing, write nothing.
    pub dry_run: bool,
    /// Set a new retention horizon first (see [`Horizon::compute`]).
    pub retain: Option<Keep>,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: DEFAULT_GRACE,
            reflog_expiry: DEFAULT_REFLOG_EXPIRY,
            dry_run: false,
            retain: None,
        }
    }
}

/// What a collection found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Whether nothing was deleted on purpose.
    pub dry_run: bool,
    /// Root entries (refs, reflog ids, pinned ids).
    pub roots: u64,
    /// Reachable objects by kind and their bytes.
    pub reachable: Reached,
    /// Boundary commits of the horizon that were reached.
    pub boundaries_reached: u64,
    /// The horizon in force (after `retain`, if asked).
    pub horizon: Horizon,
    /// Whether this collection set a new horizon (dry run: computed it).
    pub retained: bool,
    /// The disk was full: the reflog cutoff could not be recorded, so this
    /// collection kept every reflog entry the recorded horizon keeps as a
    /// root (it reclaimed less than it would have, never more). The next
    /// GC with space records it.
    pub reflog_cutoff_deferred: bool,
    /// The sweep of loose objects.
    pub swept: Swept,
    /// The pack phase: packs rewritten without their unreachable objects,
    /// reachable loose objects packed, small packs merged.
    pub packs: sydra_objects::RepackReport,
}

pub(crate) use sydra_refs::clock::ns_since_epoch as ns_of;

pub(crate) fn ns_len(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A running collection. Holds the GC lock and the store's GC session until
/// dropped.
#[derive(Debug)]
pub struct Session {
    refs: RefStore,
    guard: GcGuard,
    _lock: GcLock,
    started: SystemTime,
}

impl Session {
    /// Take the GC lock of `refs`' data directory and begin protecting
    /// in-process writes. A second session (this process or another) gets
    /// [`Error::Running`].
    pub fn begin(refs: &RefStore) -> Result<Session> {
        let lock = GcLock::acquire(refs.dir())?;
        let guard = refs.objects().begin_gc().map_err(|e| match e {
            sydra_objects::Error::GcRunning => Error::Running {
                dir: refs.dir().to_path_buf(),
                pid: Some(std::process::id()),
            },
            other => Error::Objects(other),
        })?;
        Ok(Session {
            refs: refs.clone(),
            guard,
            _lock: lock,
            started: SystemTime::now(),
        })
    }

    /// When the session began.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// The store's GC guard (protection and pinned roots).
    pub fn guard(&self) -> &GcGuard {
        &self.guard
    }

    /// The refs.
    pub fn refs(&self) -> &RefStore {
        &self.refs
    }

    /// The recorded horizon.
    pub fn horizon(&self) -> Result<Horizon> {
        Horizon::read(self.refs.dir())
    }

    /// Compute a new horizon keeping `keep` (as of the session's start);
    /// with `write`, record it durably.
    pub fn retain(&self, keep: Keep, reflog_expiry: Duration, write: bool) -> Result<Horizon> {
        let previous = self.horizon()?;
        let h = Horizon::compute(
            &self.refs,
            keep,
            ns_of(self.started),
            ns_len(reflog_expiry),
            &previous,
        )?;
        if write {
            h.write(self.refs.dir())?;
        }
        Ok(h)
    }

    /// Every root: refs, reflog entries (per expiry and horizon), and the
    /// ids pinned when the session began.
    pub fn roots(&self, horizon: &Horizon, reflog_expiry: Duration) -> Result<Roots> {
        let mut roots = Roots::from_refs(
            &self.refs,
            horizon,
            ns_of(self.started),
            ns_len(reflog_expiry),
        )?;
        roots.push(Origin::Pinned, self.guard.pinned_roots().iter().copied());
        Ok(roots)
    }

    /// Mark from `roots`.
    pub fn mark(
        &self,
        roots: &Roots,
        horizon: &Horizon,
        visitor: &mut dyn Visitor,
        progress: &dyn Progress,
    ) -> Result<Mark> {
        mark::mark(
            self.refs.objects(),
            roots,
            horizon,
            &MarkOptions::default(),
            visitor,
            progress,
        )
    }

    /// Sweep what `mark` did not reach. Refuses ([`Error::Damaged`]) when
    /// the mark found missing or unreadable objects: the reachable set is
    /// then unknown.
    pub fn sweep(
        &self,
        mark: &Mark,
        options: &GcOptions,
        progress: &dyn Progress,
    ) -> Result<Swept> {
        if !mark.problems.is_empty() {
            return Err(Error::Damaged {
                problems: mark.problems.clone(),
            });
        }
        let cutoff = self
            .started
            .checked_sub(options.grace)
            .unwrap_or(UNIX_EPOCH);
        let dir_cutoff = self
            .started
            .checked_sub(options.grace.max(DIR_MARGIN))
            .unwrap_or(UNIX_EPOCH);
        sweep::sweep(
            self.refs.objects(),
            &self.guard,
            mark,
            &SweepOptions {
                cutoff,
                dir_cutoff,
                dry_run: options.dry_run,
                verify_hash: true,
                threads: sweep::default_threads(),
            },
            progress,
        )
    }

    /// The pack phase after the sweep (see [`GcGuard::repack`]): packs
    /// older than the grace period that hold unreachable objects are
    /// rewritten without them, reachable loose objects are packed, the
    /// smallest packs are merged. Refuses, as the sweep does, after a mark
    /// that found damage.
    ///
    /// [`GcGuard::repack`]: sydra_objects::GcGuard::repack
    pub fn repack(
        &self,
        mark: &Mark,
        options: &GcOptions,
        progress: &dyn Progress,
    ) -> Result<sydra_objects::RepackReport> {
        if !mark.problems.is_empty() {
            return Err(Error::Damaged {
                problems: mark.problems.clone(),
            });
        }
        let cutoff = self
            .started
            .checked_sub(options.grace)
            .unwrap_or(UNIX_EPOCH);
        progress.phase("repacking", "packs", None);
        let r = self.guard.repack(
            &|id| mark.contains(id),
            &sydra_objects::store::PackSweep {
                cutoff,
                dry_run: options.dry_run,
            },
        )?;
        progress.finish();
        Ok(r)
    }

    /// The whole collection: retention (if asked), roots, mark, sweep.
    pub fn run(
        &self,
        options: &GcOptions,
        visitor: &mut dyn Visitor,
        progress: &dyn Progress,
    ) -> Result<(GcReport, Mark)> {
        let mut horizon = match options.retain {
            Some(keep) => self.retain(keep, options.reflog_expiry, false)?,
            None => self.horizon()?,
        };
        // Record the reflog cutoff before anything it no longer protects is
        // deleted (see `Horizon::advance_since`).
        let cutoff = crate::roots::reflog_cutoff(
            &horizon,
            ns_of(self.started),
            ns_len(options.reflog_expiry),
        );
        let recorded = horizon.clone();
        let moved = horizon.advance_since(cutoff);
        let mut reflog_expiry = options.reflog_expiry;
        let mut cutoff_deferred = false;
        if !options.dry_run && (moved || options.retain.is_some()) {
            match horizon.write(self.refs.dir()) {
                Ok(()) => {}
                // A full disk (the usual reason to collect). The new cutoff
                // is not on record, so reflog entries between the recorded
                // cutoff and the new one may not stop being roots: fsck and
                // later GCs would still count them. Collect with the
                // recorded horizon and every reflog entry it keeps: less is
                // reclaimed, never anything a later reader expects. The old
                // `shallow` is intact (the rename is the last step).
                // `retain` asked for a new horizon: not recording it is an
                // error.
                Err(e) if e.is_no_space() && options.retain.is_none() => {
                    horizon = recorded;
                    reflog_expiry = Duration::MAX;
                    cutoff_deferred = true;
                }
                Err(e) => return Err(e),
            }
        }
        let roots = self.roots(&horizon, reflog_expiry)?;
        let mark = self.mark(&roots, &horizon, visitor, progress)?;
        let swept = self.sweep(&mark, options, progress)?;
        let packs = self.repack(&mark, options, progress)?;
        Ok((
            GcReport {
                dry_run: options.dry_run,
                roots: roots.len() as u64,
                reachable: mark.reached,
                boundaries_reached: mark.boundaries_reached,
                horizon,
                retained: options.retain.is_some(),
                reflog_cutoff_deferred: cutoff_deferred,
                swept,
                packs,
            },
            mark,
        ))
    }
}

/// Collect garbage in `refs`' data directory: take the GC lock, begin a
/// session, and run it.
pub fn collect(refs: &RefStore, options: &GcOptions, progress: &dyn Progress) -> Result<GcReport> {
    let session = Session::begin(refs)?;
    let (report, _) = session.run(options, &mut mark::NoVisitor, progress)?;
    Ok(report)
}
