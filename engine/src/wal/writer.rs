//! The appending side: record assignment under a mutex, I/O by one holder
//! at a time, group commit by waiting on a condition variable.
//!
//! Appenders only encode records into in-memory *pieces* (one per target
//! segment) under the lock. Whoever needs I/O (an `Always` appender whose
//! record is not yet durable, a full buffer, `sync`, a checkpoint) becomes
//! the I/O holder: it takes the pieces and the active segment out of the
//! state, writes and fdatasyncs without the lock, then publishes the new
//! written/durable positions and wakes the waiters. Records appended while
//! it works wait for the next round, which is what makes group commit.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::chunk::{Chunk, ChunkHasher};
use super::hashing::{Hasher, Stopped};
use super::record::{
    MAX_PAYLOAD, SEGMENT_HEADER_LEN, encode_record, framed_len, segment_file_name, segment_header,
};
use super::recovery::{RecoveryReport, recover};
use super::{SyncMode, WalError, WalOptions};

/// Where the written log ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// First seq of the segment holding the last written record (0: none).
    pub segment: u64,
    /// End offset of the written bytes in that segment.
    pub offset: u64,
    /// Last written seq (0: none).
    pub last_seq: u64,
}

/// Counters, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended since open.
    pub appends: u64,
    /// write(2) rounds.
    pub writes: u64,
    /// fdatasync calls on segment files (recovery's sync of the kept tail
    /// at open included).
    pub syncs: u64,
    /// Records appended but not yet taken by a write round.
    pub queued: usize,
}

pub(crate) struct Active {
    pub(crate) first_seq: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) len: u64,
}

struct Piece {
    segment: u64,
    first_seq: u64,
    last_seq: u64,
    bytes: Vec<u8>,
}

pub(crate) struct State {
    pub(crate) next_seq: u64,
    /// Records appended since open.
    appends: u64,
    pieces: Vec<Piece>,
    pending_bytes: usize,
    /// Segment that new records go to (0 before the first) and its logical
    /// length including pending bytes.
    pub(crate) seg_first: u64,
    pub(crate) seg_len: u64,
    /// Records in `pieces`.
    pending_records: usize,
    /// The next record starts a new segment (the active one is of an older
    /// format version, which is read but never appended to).
    pub(crate) seal_active: bool,
    io_busy: bool,
    pub(crate) active: Option<Active>,
    pub(crate) written: Position,
    pub(crate) durable_seq: u64,
    pub(crate) sealed: Vec<Chunk>,
    /// Appenders parked until the round in flight ends.
    waiters: Vec<std::thread::Thread>,
    /// An appender is gathering records for the next round.
    gathering: bool,
    /// The active segment's hasher as recovery left it, until the hasher
    /// thread adopts it.
    pub(crate) resume: Option<ChunkHasher>,
    poisoned: Option<String>,
}

impl State {
    pub(crate) fn new(next_seq: u64) -> Self {
        State {
            next_seq,
            appends: 0,
            pieces: Vec::new(),
            pending_bytes: 0,
            pending_records: 0,
            seal_active: false,
            seg_first: 0,
            seg_len: 0,
            io_busy: false,
            active: None,
            written: Position {
                segment: 0,
                offset: 0,
                last_seq: next_seq - 1,
            },
            durable_seq: next_seq - 1,
            sealed: Vec::new(),
            waiters: Vec::new(),
            gathering: false,
            resume: None,
            poisoned: None,
        }
    }
}

struct Inner {
    dir: PathBuf,
    opts: WalOptions,
    state: Mutex<State>,
    cond: Condvar,
    /// Wakes an I/O holder that is gathering records (see `wait_durable`).
    gather: Condvar,
    /// Threads inside a durable (`Always`) append, pushed or about to push.
    appenders: AtomicUsize,
    /// `State::pending_records`, readable without the lock.
    pending: AtomicUsize,
    /// An I/O holder is waiting on `gather`.
    gathering: AtomicBool,
    /// `State::durable_seq`, readable without the lock.
    durable: AtomicU64,
    /// Set with `State::poisoned`, so appenders can check without the lock.
    poisoned: AtomicBool,
    writes: AtomicU64,
    syncs: AtomicU64,
    stop: AtomicBool,
    /// A test's [`IoHold`] is armed (one relaxed load per round otherwise).
    hold_armed: AtomicBool,
    hold: Mutex<Option<Arc<HoldState>>>,
    /// CRC32 and BLAKE3 of the written bytes, on a thread of its own.
    hasher: Hasher,
}

/// The write-ahead log. `Send + Sync`: share it by reference or `Arc`.
pub struct Wal {
    inner: Arc<Inner>,
    ticker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.inner.dir)
            .field("opts", &self.inner.opts)
            .finish()
    }
}

struct IoOut {
    written: Option<Position>,
    synced: bool,
}

impl Wal {
    /// Open (or create) the log in `dir`, repairing a torn tail. Records
    /// through `chunked_through` are already covered by committed chunks;
    /// hashing for the next chunk resumes after it.
    pub fn open(
        dir: &Path,
        opts: WalOptions,
        chunked_through: u64,
    ) -> Result<(Wal, RecoveryReport), WalError> {
        let overhead = (SEGMENT_HEADER_LEN + framed_len(0)) as u64;
        if opts.max_record > MAX_PAYLOAD {
            return Err(WalError::Config(format!(
                "max_record ({}) exceeds the {MAX_PAYLOAD} bytes a record's length field holds",
                opts.max_record
            )));
        }
        if opts.segment_size <= overhead || opts.max_record as u64 > opts.segment_size - overhead {
            return Err(WalError::Config(format!(
                "max_record ({}) must fit in a segment ({} bytes, of which {overhead} are headers)",
                opts.max_record, opts.segment_size
            )));
        }
        sydra_objects::fault::point("wal.mkdir")
            .and_then(|()| std::fs::create_dir_all(dir))
            .map_err(WalError::io("create directory", dir))?;
        // Seqs are counted up from 1 and never near the top of u64; a head
        // claiming otherwise was tampered with (and seq arithmetic would
        // overflow).
        if chunked_through >= u64::MAX / 2 {
            return Err(WalError::Missing {
                seq: chunked_through,
                reason:
                    "the head checkpoint claims an impossible WAL seq (wal.last_seq is corrupt)"
                        .into(),
            });
        }
        let (mut state, report) = recover(dir, chunked_through)?;
        let durable_at_open = state.durable_seq;
        let hasher = Hasher::start(opts.buffer_size.saturating_mul(4))
            .map_err(WalError::io("start chunk hasher thread for", dir))?;
        if let Some(h) = state.resume.take() {
            hasher
                .adopt(h)
                .map_err(|_| WalError::io("start chunk hasher thread for", dir)(stopped_error()))?;
        }
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            opts,
            state: Mutex::new(state),
            cond: Condvar::new(),
            gather: Condvar::new(),
            appenders: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            gathering: AtomicBool::new(false),
            durable: AtomicU64::new(durable_at_open),
            poisoned: AtomicBool::new(false),
            writes: AtomicU64::new(0),
            // Recovery's fdatasync of the kept tail counts.
            syncs: AtomicU64::new(u64::from(report.tail_synced.is_some())),
            stop: AtomicBool::new(false),
            hold_armed: AtomicBool::new(false),
            hold: Mutex::new(None),
            hasher,
        });
        let ticker = match opts.sync {
            SyncMode::Interval(every) => {
                let weak: Weak<Inner> = Arc::downgrade(&inner);
                Some(
                    std::thread::Builder::new()
                        .name("sydra-wal-sync".into())
                        .spawn(move || {
                            loop {
                                std::thread::park_timeout(every);
                                let Some(inner) = weak.upgrade() else { return };
                                if inner.stop.load(Ordering::Acquire) {
                                    return;
                                }
                                // A failure poisons the log; appenders see it.
                                let _ = inner.sync();
                            }
                        })
                        .map_err(WalError::io("start sync thread for", dir))?,
                )
            }
            _ => None,
        };
        Ok((Wal { inner, ticker }, report))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Settings.
    pub fn options(&self) -> WalOptions {
        self.inner.opts
    }

    /// Append one record; returns its seq once acknowledged per the sync mode.
    pub fn append(&self, payload: &[u8]) -> Result<u64, WalError> {
        let r = self.append_batch(&[payload])?;
        Ok(*r.start())
    }

    /// Append records with contiguous seqs; acknowledged together.
    pub fn append_batch<P: AsRef<[u8]>>(
        &self,
        payloads: &[P],
    ) -> Result<std::ops::RangeInclusive<u64>, WalError> {
        self.append_batch_then(payloads, |_| ()).map(|(r, ())| r)
    }

    /// [`append_batch`](Wal::append_batch), running `then` with the seqs
    /// once the records are queued and before waiting for them to be
    /// acknowledged. `then` runs under the log's state lock, so what it does
    /// is ordered exactly as the records are in the log (the time-series
    /// head applies points this way, so its last write is the log's). It
    /// must be short and must not append. Its result is returned with the
    /// seqs; it does not run when the batch is refused.
    pub fn append_batch_then<P: AsRef<[u8]>, R>(
        &self,
        payloads: &[P],
        then: impl FnOnce(std::ops::RangeInclusive<u64>) -> R,
    ) -> Result<(std::ops::RangeInclusive<u64>, R), WalError> {
        let max = self.inner.opts.max_record;
        if let Some(p) = payloads.iter().find(|p| p.as_ref().len() > max) {
            return Err(WalError::RecordTooLarge {
                len: p.as_ref().len(),
                max,
            });
        }
        let inner = &self.inner;
        let durable = inner.opts.sync == SyncMode::Always && !payloads.is_empty();
        let _turn = durable.then(|| Appender::enter(inner));
        let mut st = inner.state.lock();
        inner.check_poison(&st)?;
        let first = st.next_seq;
        for p in payloads {
            inner.push(&mut st, p.as_ref());
        }
        let last = st.next_seq - 1;
        // Counted under the lock the append holds anyway (an atomic here
        // would be one more read-modify-write per record), and before
        // `then`, so the count covers what was queued whatever it does.
        st.appends += payloads.len() as u64;
        st.pending_records += payloads.len();
        let out = then(first..=last);
        if payloads.is_empty() {
            return Ok((first..=last, out));
        }
        if durable {
            // Read by a leaving appender to decide whether to wake the
            // gatherer (only durable appends gather).
            inner.pending.store(st.pending_records, Ordering::Relaxed);
        }
        match inner.opts.sync {
            SyncMode::Always => inner.wait_durable(st, last)?,
            SyncMode::Interval(_) | SyncMode::Never => {
                if st.pending_bytes >= inner.opts.buffer_size && !st.io_busy {
                    drop(inner.run_io(st, false)?);
                }
            }
        }
        Ok((first..=last, out))
    }

    /// Make every appended record durable; returns the last durable seq.
    pub fn sync(&self) -> Result<u64, WalError> {
        self.inner.sync()
    }

    /// Write every buffered record to the OS (no fdatasync); returns where
    /// the written log ends.
    pub fn flush(&self) -> Result<Position, WalError> {
        let inner = &self.inner;
        let mut st = inner.wait_idle()?;
        if !st.pieces.is_empty() {
            st = inner.run_io(st, false)?;
        }
        Ok(st.written)
    }

    /// Sync everything, then take the chunks describing every durable range
    /// not handed out before. Returns them with the last durable seq. If the
    /// caller fails to commit them it must hand them back with
    /// [`Wal::restore_chunks`].
    pub fn cut_chunks(&self) -> Result<(Vec<Chunk>, u64), WalError> {
        let inner = &self.inner;
        let mut st = inner.wait_idle()?;
        st = inner.run_io(st, true)?;
        // Recovered or restored chunks first (older), then what the hasher
        // sealed and the active range.
        let mut chunks = std::mem::take(&mut st.sealed);
        match inner.hasher.cut() {
            Ok(more) => chunks.extend(more),
            Err(Stopped) => return Err(inner.poison(&mut st, inner.hasher_stopped())),
        }
        Ok((chunks, st.durable_seq))
    }

    /// Give back chunks from [`Wal::cut_chunks`] that were not committed.
    pub fn restore_chunks(&self, mut chunks: Vec<Chunk>) {
        let mut st = self.inner.state.lock();
        chunks.append(&mut st.sealed);
        st.sealed = chunks;
    }

    /// The next seq to be assigned.
    pub fn next_seq(&self) -> u64 {
        self.inner.state.lock().next_seq
    }

    /// The last durable seq.
    pub fn durable_seq(&self) -> u64 {
        self.inner.state.lock().durable_seq
    }

    /// Where the written log ends (records buffered in memory excluded).
    pub fn written(&self) -> Position {
        self.inner.state.lock().written
    }

    /// Whether an earlier failure poisoned the log, and why.
    pub fn poisoned(&self) -> Option<String> {
        if !self.inner.poisoned.load(Ordering::Acquire) {
            return None;
        }
        self.inner.state.lock().poisoned.clone()
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        let (appends, queued) = {
            let st = self.inner.state.lock();
            (st.appends, st.pending_records)
        };
        WalStats {
            appends,
            writes: self.inner.writes.load(Ordering::Relaxed),
            syncs: self.inner.syncs.load(Ordering::Relaxed),
            queued,
        }
    }

    /// For tests of group commit: the next write round stops after taking
    /// its records (with the state unlocked, as during a slow write) and
    /// waits until the returned guard is dropped. Lets a test queue appends
    /// behind a round in flight without depending on timing.
    #[doc(hidden)]
    pub fn hold_next_io(&self) -> IoHold {
        let state = Arc::new(HoldState::default());
        *self.inner.hold.lock() = Some(Arc::clone(&state));
        self.inner.hold_armed.store(true, Ordering::Release);
        IoHold {
            inner: Arc::clone(&self.inner),
            state,
        }
    }

    /// The first seq of the segment currently being appended to (0: none).
    pub fn active_segment(&self) -> u64 {
        self.inner.state.lock().seg_first
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        if let Some(t) = self.ticker.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        // Hand buffered records to the OS (not synced: see SyncMode::Never).
        let _ = self.flush();
    }
}

fn stopped_error() -> std::io::Error {
    std::io::Error::other("the chunk hasher thread stopped")
}

impl Inner {
    /// The hasher thread is gone: chunks can no longer cover what is
    /// written, so the log is poisoned.
    fn hasher_stopped(&self) -> WalError {
        WalError::io("hash chunks of", &self.dir)(stopped_error())
    }

    /// Refuse every later write because of `e` (until reopen), wake
    /// everyone waiting so they see it, and hand `e` back.
    fn poison(&self, st: &mut State, e: WalError) -> WalError {
        st.poisoned = Some(e.to_string());
        self.poisoned.store(true, Ordering::Release);
        self.wake(st);
        e
    }

    fn check_poison(&self, st: &State) -> Result<(), WalError> {
        match &st.poisoned {
            Some(reason) => Err(WalError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn push(&self, st: &mut State, payload: &[u8]) {
        let seq = st.next_seq;
        st.next_seq += 1;
        let framed = framed_len(payload.len()) as u64;
        let header = SEGMENT_HEADER_LEN as u64;
        if st.seg_first == 0
            || st.seal_active
            || (st.seg_len + framed > self.opts.segment_size && st.seg_len > header)
        {
            st.seg_first = seq;
            st.seg_len = header;
            st.seal_active = false;
        }
        let seg = st.seg_first;
        let piece = match st.pieces.last_mut() {
            Some(p) if p.segment == seg => p,
            _ => {
                let bytes = self.hasher.spare().unwrap_or_default();
                st.pieces.push(Piece {
                    segment: seg,
                    first_seq: seq,
                    last_seq: seq,
                    bytes,
                });
                let n = st.pieces.len() - 1;
                &mut st.pieces[n]
            }
        };
        encode_record(&mut piece.bytes, seq, payload);
        piece.last_seq = seq;
        st.seg_len += framed;
        st.pending_bytes += framed as usize;
    }

    fn wait_idle(&self) -> Result<MutexGuard<'_, State>, WalError> {
        let mut st = self.state.lock();
        loop {
            self.check_poison(&st)?;
            if !st.io_busy {
                return Ok(st);
            }
            self.cond.wait(&mut st);
        }
    }

    fn wait_durable<'a>(&'a self, mut st: MutexGuard<'a, State>, seq: u64) -> Result<(), WalError> {
        loop {
            if st.durable_seq >= seq {
                return Ok(());
            }
            self.check_poison(&st)?;
            let complete = st.pending_records >= self.appenders.load(Ordering::Acquire);
            if !st.io_busy && complete {
                // Every thread inside a durable append has pushed: this one
                // (typically the last to push) starts the round at once,
                // rather than waking a gathering holder to do it.
                st = self.run_io(st, true)?;
                continue;
            }
            if st.io_busy || st.gathering {
                // Park until the round in flight (or being gathered) ends.
                // Its holder unparks every waiter directly, so they wake
                // together instead of one after another through the state
                // mutex, and a waiter the round made durable returns
                // without taking the mutex.
                st.waiters.push(std::thread::current());
                drop(st);
                loop {
                    std::thread::park();
                    if self.durable.load(Ordering::Acquire) >= seq {
                        return Ok(());
                    }
                    if self.poisoned.load(Ordering::Acquire) || !self.waiting(seq) {
                        break;
                    }
                }
                st = self.state.lock();
                continue;
            }
            // About to start a round, but appenders already inside `append`
            // (typically the ones the previous round just released, about
            // to append again) would miss it and wait a whole round. Gather:
            // wait briefly for them; the last to push starts the round
            // itself (above), and an appender leaving wakes this one if that
            // completes the set. A lone appender never gets here.
            let deadline = Instant::now() + GATHER_WAIT;
            st.gathering = true;
            self.gathering.store(true, Ordering::Release);
            while st.pending_records < self.appenders.load(Ordering::Acquire)
                && !st.io_busy
                && st.durable_seq < seq
                && !self.gather.wait_until(&mut st, deadline).timed_out()
            {}
            st.gathering = false;
            self.gathering.store(false, Ordering::Release);
            if st.io_busy {
                // Another appender started the round; wait for it (above).
                continue;
            }
            if st.durable_seq >= seq {
                // A round finished while gathering. Appenders that parked
                // because this one was gathering must not wait for a round
                // nobody will start.
                self.wake(&mut st);
                return Ok(());
            }
            st = self.run_io(st, true)?;
        }
    }

    /// Whether a parked appender of `seq` should keep waiting: its record
    /// is in the round in flight (a wakeup that finds that is spurious).
    fn waiting(&self, seq: u64) -> bool {
        let st = self.state.lock();
        (st.io_busy || st.gathering)
            && st.durable_seq < seq
            && st
                .waiters
                .iter()
                .any(|t| t.id() == std::thread::current().id())
    }

    fn sync(&self) -> Result<u64, WalError> {
        let st = self.wait_idle()?;
        let st = self.run_io(st, true)?;
        Ok(st.durable_seq)
    }

    /// After a round: every parked appender wakes (those it made durable
    /// return; the others re-check and one becomes the next holder), and
    /// so do a gatherer and anyone waiting for the I/O to be idle.
    fn wake(&self, st: &mut State) {
        for t in st.waiters.drain(..) {
            t.unpark();
        }
        self.cond.notify_all();
        // A gatherer whose round another appender ran.
        self.gather.notify_all();
    }

    /// Become the I/O holder: write every pending piece (and fdatasync if
    /// `sync`) without the lock, then publish the result.
    fn run_io<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        sync: bool,
    ) -> Result<MutexGuard<'a, State>, WalError> {
        debug_assert!(!st.io_busy);
        let pieces = std::mem::take(&mut st.pieces);
        st.pending_records = 0;
        self.pending.store(0, Ordering::Relaxed);
        let needs_sync = sync && (st.written.last_seq > st.durable_seq || !pieces.is_empty());
        if pieces.is_empty() && !needs_sync {
            self.wake(&mut st);
            return Ok(st);
        }
        st.pending_bytes = 0;
        st.io_busy = true;
        let mut active = st.active.take();
        let result = MutexGuard::unlocked(&mut st, || {
            self.pass_hold();
            self.do_io(&mut active, pieces, needs_sync)
        });
        st.active = active;
        st.io_busy = false;
        let out = match result {
            Ok(out) => out,
            Err(e) => return Err(self.poison(&mut st, e)),
        };
        if let Some(w) = out.written {
            st.written = w;
        }
        if out.synced {
            st.durable_seq = st.written.last_seq;
            self.durable.store(st.durable_seq, Ordering::Release);
        }
        self.wake(&mut st);
        Ok(st)
    }

    fn do_io(
        &self,
        active: &mut Option<Active>,
        pieces: Vec<Piece>,
        sync: bool,
    ) -> Result<IoOut, WalError> {
        let mut out = IoOut {
            written: None,
            synced: false,
        };
        for p in pieces {
            if active.as_ref().map(|a| a.first_seq) != Some(p.segment) {
                if let Some(old) = active.take() {
                    // The old segment must be complete on disk before a newer
                    // one exists: only the last segment may ever be torn.
                    sydra_objects::fault::point("wal.sync")
                        .and_then(|()| old.file.sync_data())
                        .map_err(WalError::sync(&old.path))?;
                    self.syncs.fetch_add(1, Ordering::Relaxed);
                }
                *active = Some(create_segment(&self.dir, p.segment)?);
                // Seals what the hasher holds of the old segment.
                self.hasher
                    .adopt(ChunkHasher::new(p.segment, SEGMENT_HEADER_LEN as u64))
                    .map_err(|_| self.hasher_stopped())?;
            }
            let Some(a) = active.as_mut() else { continue };
            sydra_objects::fault::point("wal.write")
                .and_then(|()| a.file.write_all(&p.bytes))
                .map_err(WalError::io("write", &a.path))?;
            self.writes.fetch_add(1, Ordering::Relaxed);
            a.len += p.bytes.len() as u64;
            out.written = Some(Position {
                segment: a.first_seq,
                offset: a.len,
                last_seq: p.last_seq,
            });
            self.hasher
                .bytes(p.bytes, p.first_seq, p.last_seq)
                .map_err(|_| self.hasher_stopped())?;
        }
        if sync && let Some(a) = active.as_ref() {
            sydra_objects::fault::point("wal.sync")
                .and_then(|()| a.file.sync_data())
                .map_err(WalError::sync(&a.path))?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
            out.synced = true;
        }
        Ok(out)
    }
}

#[derive(Debug, Default)]
struct HoldState {
    /// (a round is held, the guard was dropped)
    flags: Mutex<(bool, bool)>,
    cond: Condvar,
}

/// A write round held by [`Wal::hold_next_io`]; dropping it releases the
/// round (or disarms the hold if no round started).
#[doc(hidden)]
pub struct IoHold {
    inner: Arc<Inner>,
    state: Arc<HoldState>,
}

impl std::fmt::Debug for IoHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoHold").finish_non_exhaustive()
    }
}

impl IoHold {
    /// Block until a write round is held.
    pub fn wait_entered(&self) {
        let mut f = self.state.flags.lock();
        while !f.0 {
            self.state.cond.wait(&mut f);
        }
    }
}

impl Drop for IoHold {
    fn drop(&mut self) {
        self.inner.hold_armed.store(false, Ordering::Release);
        self.inner.hold.lock().take();
        self.state.flags.lock().1 = true;
        self.state.cond.notify_all();
    }
}

impl Inner {
    /// Where a test's [`IoHold`] stops a round: after it took its records,
    /// before any write.
    fn pass_hold(&self) {
        if !self.hold_armed.load(Ordering::Acquire) {
            return;
        }
        let Some(h) = self.hold.lock().take() else {
            return;
        };
        self.hold_armed.store(false, Ordering::Release);
        let mut f = h.flags.lock();
        f.0 = true;
        h.cond.notify_all();
        while !f.1 {
            h.cond.wait(&mut f);
        }
    }
}

/// How long an I/O holder waits for appenders already inside `append` to
/// push their records before it starts a round (a fraction of one fdatasync).
const GATHER_WAIT: Duration = Duration::from_micros(200);

/// Counts a thread as inside a durable append for as long as it lives.
struct Appender<'a>(&'a Inner);

impl<'a> Appender<'a> {
    fn enter(inner: &'a Inner) -> Self {
        inner.appenders.fetch_add(1, Ordering::AcqRel);
        Appender(inner)
    }
}

impl Drop for Appender<'_> {
    fn drop(&mut self) {
        let inner = self.0;
        let left = inner.appenders.fetch_sub(1, Ordering::AcqRel) - 1;
        // A gathering holder waits for `pending >= appenders`; one fewer
        // appender may complete that. Checked without the state lock, so a
        // wakeup can be missed when the holder is between its check and its
        // wait: it then starts the round at GATHER_WAIT, no later.
        if inner.gathering.load(Ordering::Acquire) && inner.pending.load(Ordering::Relaxed) >= left
        {
            inner.gather.notify_one();
        }
    }
}

/// Create a segment file durably: header written and synced, directory
/// entry synced. A crash part-way leaves an empty or header-only last
/// segment, which recovery removes.
fn create_segment(dir: &Path, first_seq: u64) -> Result<Active, WalError> {
    let path = dir.join(segment_file_name(first_seq));
    let mut file = sydra_objects::fault::point("wal.segment.create")
        .and_then(|()| OpenOptions::new().create_new(true).append(true).open(&path))
        .map_err(WalError::io("create segment", &path))?;
    sydra_objects::fault::point("wal.segment.write")
        .and_then(|()| file.write_all(&segment_header(first_seq)))
        .map_err(WalError::io("write", &path))?;
    sydra_objects::fault::point("wal.segment.sync")
        .and_then(|()| file.sync_all())
        .map_err(WalError::sync(&path))?;
    sydra_objects::fs::sync_dir(dir, || sydra_objects::fault::point("wal.dir.sync"))?;
    Ok(Active {
        first_seq,
        path,
        file,
        len: SEGMENT_HEADER_LEN as u64,
    })
}
