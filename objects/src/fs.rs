//! The filesystem primitives every crate uses to open store files and to
//! make directory entries durable. One copy of each, so the guarantees
//! below hold at every call site.
//!
//! - [`open_regular`] / [`open_regular_with`] / [`open_regular_at`]: a file
//!   the engine reads (or appends to) is opened with `O_NONBLOCK` and
//!   `O_NOFOLLOW`, checked with `fstat` to be a regular file, and only then
//!   switched back to blocking I/O. A FIFO planted under an object, ref,
//!   `FORMAT`, WAL segment or any other store name therefore opens at once
//!   (a non-blocking open of a FIFO does not wait for a writer) and is
//!   refused with [`NotRegular`] instead of blocking the process forever; a
//!   symbolic link fails the open (`ELOOP`, see [`is_symlink_error`]).
//! - [`sync_dir`]: fsync a directory so entries created, renamed or removed
//!   in it are durable, behind a named fault point.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

/// The error inside the [`io::Error`] returned when a store path is not a
/// regular file (kind [`io::ErrorKind::InvalidData`]). Callers wrap it in
/// their own error, which names the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a regular file (found {0})")]
pub struct NotRegular(pub &'static str);

fn describe(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "an unknown file type",
    }
}

/// Whether `e` is the [`NotRegular`] refusal of one of the opens here.
pub fn is_not_regular_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<NotRegular>())
}

/// Whether an open failed because the path is a symbolic link (`ELOOP`
/// under `O_NOFOLLOW`).
pub fn is_symlink_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

/// Open `path` read-only as a regular file: no symlink followed, never
/// blocking on a FIFO or device (see the module documentation).
pub fn open_regular(path: &Path) -> io::Result<File> {
    open_regular_with(path, OpenOptions::new().read(true))
}

/// [`open_regular`] with the caller's access mode (append, write, create):
/// `O_NONBLOCK | O_NOFOLLOW` are added (replacing any custom flags set on
/// `opts`), the opened file is checked to be regular, then made blocking.
///
/// A write-only open of a FIFO with no reader fails at once (`ENXIO`)
/// instead of waiting for one.
pub fn open_regular_with(path: &Path, opts: &mut OpenOptions) -> io::Result<File> {
    let file = opts
        .custom_flags((OFlags::NONBLOCK | OFlags::NOFOLLOW).bits() as i32)
        .open(path)?;
    into_regular(file.into())
}

/// [`open_regular`] relative to an open directory (`openat`), for passes
/// that open many files in one directory.
pub fn open_regular_at<P: rustix::path::Arg>(dir: impl AsFd, name: P) -> io::Result<File> {
    let fd = rustix::fs::openat(dir, name, READ_FLAGS, Mode::empty())?;
    into_regular(fd)
}

/// The flags of a read-only [`open_regular_at`], for callers that map the
/// `openat` errno themselves before [`into_regular`].
pub(crate) const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NONBLOCK);

/// Refuse anything but a regular file, then clear `O_NONBLOCK` (which has
/// no effect on regular files today, but is cleared so no later reader
/// ever sees `EAGAIN` from a file system that honours it).
pub(crate) fn into_regular(fd: OwnedFd) -> io::Result<File> {
    let st = rustix::fs::fstat(&fd)?;
    let t = FileType::from_raw_mode(st.st_mode);
    if t != FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            NotRegular(describe(t)),
        ));
    }
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK)?;
    Ok(File::from(fd))
}

/// Why [`sync_dir`] failed: opening the directory (no durability question)
/// or the fsync itself (durability of earlier writes unknown: callers
/// poison, never retry). Exhaustive on purpose: every crate maps exactly
/// these two outcomes onto its own `Io` and `Sync` errors.
#[derive(Debug, thiserror::Error)]
pub enum SyncDirError {
    /// The directory could not be opened.
    #[error("cannot open directory {}: {source}", path.display())]
    Open {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The fsync failed (or its fault point fired).
    #[error("cannot sync directory {}: {source}", path.display())]
    Sync {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// fsync the directory `dir` so entries created, renamed or removed in it
/// are durable. `fault` is the caller's named fault point
/// (`|| fault::point("wal.dir.sync")`, spelled out at the call site so the
/// fault-point lists can find it); it runs between the open and the fsync
/// and its error is a [`SyncDirError::Sync`]. The directory is opened with
/// `O_DIRECTORY`, so anything else in its place (a FIFO included) fails the
/// open at once; the last component may be a symlink (a data directory
/// given as a link).
pub fn sync_dir(dir: &Path, fault: impl FnOnce() -> io::Result<()>) -> Result<(), SyncDirError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(dir, flags, Mode::empty()).map_err(|e| SyncDirError::Open {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    let f = File::from(fd);
    fault()
        .and_then(|()| f.sync_all())
        .map_err(|source| SyncDirError::Sync {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = open_regular(&p).unwrap_err();
        assert!(is_not_regular_error(&e), "{e}");
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = open_regular_with(&p, OpenOptions::new().append(true)).unwrap_err();
        // No reader: ENXIO at once, or the fstat refusal.
        assert!(
            is_not_regular_error(&e) || e.raw_os_error() == Some(libc_enxio()),
            "{e}"
        );
        let d = rustix::fs::open(dir.path(), OFlags::RDONLY, Mode::empty()).unwrap();
        assert!(is_not_regular_error(
            &open_regular_at(&d, "fifo").unwrap_err()
        ));
        assert!(matches!(
            sync_dir(&p, || Ok(())),
            Err(SyncDirError::Open { .. })
        ));
    }

    fn libc_enxio() -> i32 {
        rustix::io::Errno::NXIO.raw_os_error()
    }

    #[test]
    fn a_regular_file_opens_blocking_and_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let f = open_regular(&p).unwrap();
        let fl = rustix::fs::fcntl_getfl(&f).unwrap();
        assert!(!fl.contains(OFlags::NONBLOCK));
        std::os::unix::fs::symlink(&p, dir.path().join("l")).unwrap();
        assert!(is_symlink_error(
            &open_regular(&dir.path().join("l")).unwrap_err()
        ));
        sync_dir(dir.path(), || Ok(())).unwrap();
    }
}

/// How much a streaming writer lets the kernel hold before it asks for
/// writeback: see [`Writeback`].
pub const WRITEBACK_STEP: u64 = 8 << 20;

/// Steps whose writeback a streaming writer lets run before it waits for
/// the oldest: see [`Writeback`].
const WRITEBACK_DEPTH: usize = 4;

/// Early writeback for a large file written front to back and synced at
/// its end (a received pack, a stored WAL range). Every
/// [`WRITEBACK_STEP`] bytes the kernel is asked to start writing what it
/// holds (Linux's `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does
/// not wait); once more than [`WRITEBACK_DEPTH`] steps are under way, the
/// oldest is waited for and dropped from the page cache
/// (`posix_fadvise(DONTNEED)`). So the disk works while the stream goes
/// on, the final fsync finds little left, and the file occupies at most
/// five steps of page cache instead of its whole size: its pages are
/// recycled while they are warm. (Waiting for each step as the next
/// started, one disk round trip at a time, held a clone's writing thread
/// 0.27 s of 0.9 s: DECISIONS 76.) Allocating fresh page cache
/// is what bounds a large write on a virtual machine whose idle memory the
/// host has reclaimed (docs/BENCHMARKS-REMOTE.md: `dd` of 1 GiB runs at
/// about 300 MB/s there, and at 3.7 GB/s into recycled pages). Best
/// effort where the call is missing or refused (elsewhere than Linux, a
/// file system without it): the fsync does it all. But an I/O error a
/// waiting call reports is returned: Linux reports a writeback error once
/// per open file, so the fsync that follows on the same file would not
/// see it again.
#[derive(Debug, Default)]
pub struct Writeback {
    /// Bytes whose writeback has been started.
    started: u64,
    /// Bytes written back and dropped from the cache.
    dropped: u64,
    /// Where each step started and not yet waited for ends.
    in_flight: std::collections::VecDeque<u64>,
}

impl Writeback {
    /// `written` bytes of `file` have reached the kernel.
    pub fn advance(&mut self, file: &File, written: u64) -> io::Result<()> {
        if written.saturating_sub(self.started) < WRITEBACK_STEP {
            return Ok(());
        }
        writeback(file, self.started, written - self.started, false)?;
        self.started = written;
        self.in_flight.push_back(written);
        while self.in_flight.len() > WRITEBACK_DEPTH {
            let Some(end) = self.in_flight.pop_front() else {
                break;
            };
            writeback(file, self.dropped, end - self.dropped, true)?;
            let _ = rustix::fs::fadvise(
                file,
                self.dropped,
                std::num::NonZeroU64::new(end - self.dropped),
                rustix::fs::Advice::DontNeed,
            );
            self.dropped = end;
        }
        Ok(())
    }

    /// The file is whole at `written` bytes: start writeback of what has
    /// not been started, without waiting.
    pub fn start_rest(&mut self, file: &File, written: u64) -> io::Result<()> {
        if written > self.started {
            writeback(file, self.started, written - self.started, false)?;
            self.started = written;
        }
        Ok(())
    }

    /// The file is whole at `written` bytes: write back what is left,
    /// wait for it, and drop the whole file from the page cache. For many
    /// small files written one after another (a transfer's WAL ranges,
    /// most smaller than a [`WRITEBACK_STEP`]), whose pages would
    /// otherwise all stay cached until their sync: the next file then
    /// reuses these pages instead of allocating fresh ones.
    pub fn settle(&mut self, file: &File, written: u64) -> io::Result<()> {
        if written > self.dropped {
            writeback(file, self.dropped, written - self.dropped, true)?;
            // To the end of the file: its last partial page too.
            let _ = rustix::fs::fadvise(file, self.dropped, None, rustix::fs::Advice::DontNeed);
            self.started = written;
            self.dropped = written;
            self.in_flight.clear();
        }
        Ok(())
    }
}

/// What a [`WriteBehind`]'s thread does once the last block is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtEnd {
    /// Start writeback of the rest ([`Writeback::start_rest`]): the file
    /// is synced soon after by its caller (a received pack).
    StartWriteback,
    /// Write the rest back, wait, and drop the file's pages
    /// ([`Writeback::settle`]): one of many files synced together later.
    Settle,
}

/// Start writeback of `len` bytes of `file` from `offset`; with `wait`,
/// wait for it (and for any already under way) to complete. A file
/// system or kernel without the call is not an error; an I/O error is.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn writeback(file: &File, offset: u64, len: u64, wait: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Ok(());
    };
    let flags = if wait {
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER
    } else {
        libc::SYNC_FILE_RANGE_WRITE
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed;
    // the call only reads its arguments.
    let r = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS | libc::EINVAL | libc::ESPIPE | libc::EOPNOTSUPP) => Ok(()),
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn writeback(_file: &File, _offset: u64, _len: u64, _wait: bool) -> io::Result<()> {
    Ok(())
}

/// Bytes a [`WriteBehind`] hands to its thread at a time.
pub const WRITE_BEHIND_BLOCK: usize = 1 << 20;

/// Blocks a [`WriteBehind::new`] lets wait for its thread: with the one
/// being filled, the one being written and a spare, it holds at most this
/// many plus three. Enough for the caller to go on through a few of the
/// thread's waits for writeback of a large file (four blocks were not:
/// DECISIONS 76).
pub const WRITE_BEHIND_QUEUE: usize = 16;

/// Shared pieces shorter than this are copied into a [`WriteBehind`]'s
/// block rather than handed over alone.
const SHARE_MIN: usize = 64 << 10;

/// What a [`WriteBehind`]'s thread writes next: a block of its own
/// (returned for reuse once written), or a shared buffer written where it
/// is.
enum Piece {
    Block(Vec<u8>),
    Shared(bytes::Bytes),
}

/// What a [`WriteBehind`]'s thread does with each block before writing it:
/// the state, the block's offset in the file, the block.
pub type BlockDigest<S> = Box<dyn FnMut(&mut S, u64, &[u8]) + Send>;

/// A file written front to back by a thread of its own: the caller's
/// bytes are gathered into blocks of [`WRITE_BEHIND_BLOCK`] bytes (the one
/// copy a buffered writer makes too), and a second thread runs `digest`
/// on each block (a received pack's hash), writes it, and asks for early
/// [`Writeback`]. The caller's thread is left to the work only it can do,
/// such as verifying a received pack entry by entry: on two cores a clone
/// from S3 spends a sixth of its main thread in `write(2)` and another
/// tenth in hashing the whole pack. At most 19 blocks of 1 MiB are held
/// (the one filling, 16 queued, one being written, one spare; a shared
/// buffer, at most a block's size from this crate's callers, takes a
/// queued block's place). A write
/// that fails is returned by the next [`WriteBehind::write`] or by
/// [`WriteBehind::finish`]; `fault` names the fault point of each write.
///
/// Bytes the caller already holds in a shared buffer (a download's chunk)
/// are handed over as they are, without the copy
/// ([`WriteBehind::write_shared`]).
pub struct WriteBehind<S: Send + 'static> {
    block: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Piece>>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    worker: Option<std::thread::JoinHandle<io::Result<(File, S)>>>,
}

impl<S: Send + 'static> std::fmt::Debug for WriteBehind<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBehind")
            .field("buffered", &self.block.len())
            .finish()
    }
}

impl<S: Send + 'static> WriteBehind<S> {
    /// Start writing `file` from its current position (new files: from
    /// the start), with `state` handed to `digest` for every block.
    pub fn new(
        file: File,
        state: S,
        digest: BlockDigest<S>,
        fault: &'static str,
    ) -> io::Result<WriteBehind<S>> {
        Self::with_end(
            file,
            state,
            digest,
            fault,
            AtEnd::StartWriteback,
            WRITE_BEHIND_QUEUE,
        )
    }

    /// [`WriteBehind::new`], with `end` saying what the thread does after
    /// the last block, and `queue` blocks (or shared pieces) let wait for
    /// it.
    pub fn with_end(
        mut file: File,
        state: S,
        mut digest: BlockDigest<S>,
        fault: &'static str,
        end: AtEnd,
        queue: usize,
    ) -> io::Result<WriteBehind<S>> {
        use std::io::Write;
        let queue = queue.max(1);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(queue);
        let (back, spare) = std::sync::mpsc::sync_channel::<Vec<u8>>(queue);
        let worker = std::thread::Builder::new()
            .name("sydra-write".into())
            .spawn(move || {
                let mut state = state;
                let mut at = 0u64;
                let mut writeback = Writeback::default();
                for piece in rx {
                    let b: &[u8] = match &piece {
                        Piece::Block(b) => b,
                        Piece::Shared(b) => b,
                    };
                    digest(&mut state, at, b);
                    crate::fault::point(fault).and_then(|()| file.write_all(b))?;
                    at += b.len() as u64;
                    writeback.advance(&file, at)?;
                    if let Piece::Block(mut block) = piece {
                        block.clear();
                        // Kept for reuse when the caller has room for it.
                        let _ = back.try_send(block);
                    }
                }
                // The rest too: a sync that follows later finds it written.
                match end {
                    AtEnd::StartWriteback => writeback.start_rest(&file, at)?,
                    AtEnd::Settle => writeback.settle(&file, at)?,
                }
                Ok((file, state))
            })?;
        Ok(WriteBehind {
            block: Vec::with_capacity(WRITE_BEHIND_BLOCK),
            tx: Some(tx),
            spare,
            worker: Some(worker),
        })
    }

    /// Append `b`.
    pub fn write(&mut self, mut b: &[u8]) -> io::Result<()> {
        while !b.is_empty() {
            let n = (WRITE_BEHIND_BLOCK - self.block.len()).min(b.len());
            self.block.extend_from_slice(&b[..n]);
            b = &b[n..];
            if self.block.len() == WRITE_BEHIND_BLOCK {
                self.hand_over()?;
            }
        }
        Ok(())
    }

    /// Append `b` without copying it, after the bytes written before
    /// (which go first, as a block of their own). A piece shorter than
    /// [`SHARE_MIN`] is copied into the block instead: handed over alone,
    /// it would cost a write of its own.
    pub fn write_shared(&mut self, b: bytes::Bytes) -> io::Result<()> {
        if b.len() < SHARE_MIN {
            return self.write(&b);
        }
        if !self.block.is_empty() {
            self.hand_over()?;
        }
        self.send(Piece::Shared(b))
    }

    fn hand_over(&mut self) -> io::Result<()> {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(WRITE_BEHIND_BLOCK));
        let block = std::mem::replace(&mut self.block, next);
        self.send(Piece::Block(block))
    }

    fn send(&mut self, piece: Piece) -> io::Result<()> {
        if self.tx.as_ref().is_some_and(|tx| tx.send(piece).is_ok()) {
            return Ok(());
        }
        // The thread stopped: at a failed write.
        Err(self
            .join()
            .err()
            .unwrap_or_else(|| io::Error::other("the writing thread stopped before the end")))
    }

    fn join(&mut self) -> io::Result<(File, S)> {
        self.tx = None;
        match self.worker.take() {
            Some(w) => w
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the writing thread panicked"))),
            None => Err(io::Error::other("the writing thread has already stopped")),
        }
    }

    /// Hand the last bytes to the thread and tell it no more come,
    /// without waiting for it: the caller goes on with other work, and
    /// [`WriteBehind::finish`] collects the result later.
    pub fn close(&mut self) -> io::Result<()> {
        if !self.block.is_empty() {
            self.hand_over()?;
        }
        self.tx = None;
        Ok(())
    }

    /// Write what is left, wait for the thread, and return the file
    /// (written, not synced) and the digest's state.
    pub fn finish(mut self) -> io::Result<(File, S)> {
        self.close()?;
        self.join()
    }
}

impl<S: Send + 'static> Drop for WriteBehind<S> {
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod write_behind_tests {
    use super::*;

    #[test]
    fn blocks_are_digested_in_order_and_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let digest: BlockDigest<(blake3::Hasher, Vec<u64>)> = Box::new(|s, at, b| {
            s.0.update(b);
            s.1.push(at);
        });
        let mut w =
            WriteBehind::new(file, (blake3::Hasher::new(), Vec::new()), digest, "t").unwrap();
        let data: Vec<u8> = (0..5 * WRITE_BEHIND_BLOCK / 2 + 7)
            .map(|i| (i % 251) as u8)
            .collect();
        for piece in data.chunks(70_001) {
            w.write(piece).unwrap();
        }
        let (file, (hasher, offsets)) = w.finish().unwrap();
        drop(file);
        assert_eq!(hasher.finalize(), blake3::hash(&data));
        let step = WRITE_BEHIND_BLOCK as u64;
        assert_eq!(offsets, vec![0, step, 2 * step]);
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn closed_early_and_settled_the_file_is_whole() {
        // `close` hands the last, partial block over without waiting;
        // `finish` later returns what the thread made of every byte.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let digest: BlockDigest<blake3::Hasher> = Box::new(|h, _, b| {
            h.update(b);
        });
        let mut w =
            WriteBehind::with_end(file, blake3::Hasher::new(), digest, "t", AtEnd::Settle, 4)
                .unwrap();
        let data: Vec<u8> = (0..3 * WRITE_BEHIND_BLOCK + 12_345)
            .map(|i| (i % 253) as u8)
            .collect();
        w.write(&data).unwrap();
        w.close().unwrap();
        let (file, hasher) = w.finish().unwrap();
        assert_eq!(file.metadata().unwrap().len(), data.len() as u64);
        drop(file);
        assert_eq!(hasher.finalize(), blake3::hash(&data));
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn shared_pieces_are_written_in_order_and_small_ones_gathered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let digest: BlockDigest<(blake3::Hasher, Vec<(u64, usize)>)> = Box::new(|s, at, b| {
            s.0.update(b);
            s.1.push((at, b.len()));
        });
        let mut w =
            WriteBehind::new(file, (blake3::Hasher::new(), Vec::new()), digest, "t").unwrap();
        let data: Vec<u8> = (0..3 * WRITE_BEHIND_BLOCK)
            .map(|i| (i % 247) as u8)
            .collect();
        let shared = bytes::Bytes::from(data.clone());
        // Copied bytes, a small shared piece (gathered with them), a large
        // one (handed over as it is, after them), copied bytes again.
        let cuts = [
            0,
            1000,
            1000 + SHARE_MIN - 1,
            2 * WRITE_BEHIND_BLOCK,
            data.len(),
        ];
        w.write(&data[cuts[0]..cuts[1]]).unwrap();
        w.write_shared(shared.slice(cuts[1]..cuts[2])).unwrap();
        w.write_shared(shared.slice(cuts[2]..cuts[3])).unwrap();
        w.write(&data[cuts[3]..cuts[4]]).unwrap();
        let (file, (hasher, pieces)) = w.finish().unwrap();
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(hasher.finalize(), blake3::hash(&data));
        let (gathered, large) = (cuts[2], cuts[3] - cuts[2]);
        assert_eq!(
            pieces,
            vec![
                (0, gathered),
                (gathered as u64, large),
                (cuts[3] as u64, WRITE_BEHIND_BLOCK)
            ]
        );
    }

    #[test]
    fn writeback_waits_only_for_steps_beyond_its_depth() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = File::create(&path).unwrap();
        let mut wb = Writeback::default();
        let block = vec![7u8; 1 << 20];
        let steps = WRITEBACK_DEPTH as u64 + 3;
        let mut written = 0;
        while written < steps * WRITEBACK_STEP {
            std::io::Write::write_all(&mut file, &block).unwrap();
            written += block.len() as u64;
            wb.advance(&file, written).unwrap();
            // Started up to the last whole step; dropped all but the last
            // `WRITEBACK_DEPTH` steps started.
            assert_eq!(wb.started, written / WRITEBACK_STEP * WRITEBACK_STEP);
            let kept = (wb.started / WRITEBACK_STEP).min(WRITEBACK_DEPTH as u64);
            assert_eq!(
                wb.dropped,
                wb.started - kept * WRITEBACK_STEP,
                "at {written}"
            );
            assert_eq!(wb.in_flight.len() as u64, kept);
        }
        wb.settle(&file, written).unwrap();
        assert_eq!((wb.started, wb.dropped), (written, written));
        assert!(wb.in_flight.is_empty());
        assert_eq!(file.metadata().unwrap().len(), written);
    }

    #[test]
    fn a_failed_write_reaches_the_caller() {
        // A file opened read-only: every write fails.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        let file = File::open(&path).unwrap();
        let digest: BlockDigest<()> = Box::new(|_, _, _| {});
        let mut w = WriteBehind::new(file, (), digest, "t").unwrap();
        let mut failed = None;
        for _ in 0..(WRITE_BEHIND_QUEUE + 3) * 2 {
            if let Err(e) = w.write(&vec![1u8; WRITE_BEHIND_BLOCK / 2]) {
                failed = Some(e);
                break;
            }
        }
        let e = match failed {
            Some(e) => e,
            None => w.finish().unwrap_err(),
        };
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");
    }
}
