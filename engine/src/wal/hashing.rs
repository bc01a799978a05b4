//! The chunk hasher thread: CRC32 and BLAKE3 of every written WAL byte,
//! computed off the appending threads.
//!
//! The I/O holder writes a piece of the log, then hands the piece's buffer
//! (already in memory: nothing is read back) to this thread, which feeds
//! the active segment's [`ChunkHasher`] and returns the emptied buffer for
//! reuse. Jobs are processed in the order they were sent, and only the I/O
//! holder sends bytes, so the hasher sees exactly the bytes of the segment
//! in file order. At most [`QUEUE`] jobs wait; a writer faster than the
//! hasher blocks on the queue rather than buffering without bound. A small
//! piece (a round of durable appends) is hashed by the holder itself when
//! the thread has nothing queued: waking a thread would cost more.
//!
//! Hashing a MiB of records costs about as much as framing it, so on the
//! appending thread it was most of the gap between `Wal::append` and a raw
//! buffered write (docs/BENCHMARKS.md). The CPU work is the same; it just
//! no longer delays appends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use parking_lot::Mutex;

use super::chunk::{Chunk, ChunkHasher};

/// Jobs that may wait for the hasher.
const QUEUE: usize = 4;

/// Emptied buffers kept for reuse (a round usually fills one).
const SPARE_BUFFERS: usize = 2;

/// Pieces up to this size are hashed by the I/O holder itself when the
/// thread is idle.
const INLINE_MAX: usize = 64 * 1024;

enum Job {
    /// From now on, hash into this (a new segment, or the one recovery
    /// reopened). The previous segment's remainder becomes a sealed chunk.
    Adopt(Box<ChunkHasher>),
    /// Records `first..=last`, framed, just written at the segment's end.
    Bytes {
        bytes: Vec<u8>,
        first: u64,
        last: u64,
    },
    /// Every chunk sealed since the last cut, then the active segment's
    /// range so far (restarting after it).
    Cut(SyncSender<Vec<Chunk>>),
}

/// The handle the log keeps; dropping it ends the thread once its queue is
/// drained.
pub(crate) struct Hasher {
    jobs: SyncSender<Job>,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<HashState>,
    /// Jobs sent and not yet finished by the thread.
    queued: AtomicUsize,
    spare: Mutex<Vec<Vec<u8>>>,
    max_spare: usize,
}

#[derive(Default)]
struct HashState {
    active: Option<ChunkHasher>,
    sealed: Vec<Chunk>,
}

impl HashState {
    fn apply(&mut self, job: Job, shared: &Shared) {
        match job {
            Job::Adopt(h) => {
                if let Some(mut old) = self.active.replace(*h) {
                    self.sealed.extend(old.cut());
                }
            }
            Job::Bytes { bytes, first, last } => {
                if let Some(h) = self.active.as_mut() {
                    h.update(&bytes, first, last);
                }
                shared.recycle(bytes);
            }
            Job::Cut(reply) => {
                let mut out = std::mem::take(&mut self.sealed);
                out.extend(self.active.as_mut().and_then(ChunkHasher::cut));
                // The caller waits for this reply; if it is gone, nothing
                // it still wanted is lost.
                let _ = reply.send(out);
            }
        }
    }
}

impl Shared {
    fn recycle(&self, mut bytes: Vec<u8>) {
        bytes.clear();
        let mut pool = self.spare.lock();
        if pool.len() < SPARE_BUFFERS && bytes.capacity() <= self.max_spare {
            pool.push(bytes);
        }
    }
}

/// The hasher thread has stopped (it panicked): no further chunk can be
/// trusted to cover the bytes written.
#[derive(Debug)]
pub(crate) struct Stopped;

impl Hasher {
    /// Start the thread. `max_spare` caps the capacity of a buffer kept for
    /// reuse.
    pub(crate) fn start(max_spare: usize) -> std::io::Result<Hasher> {
        let (jobs, rx) = sync_channel(QUEUE);
        let shared = Arc::new(Shared {
            state: Mutex::new(HashState::default()),
            queued: AtomicUsize::new(0),
            spare: Mutex::new(Vec::new()),
            max_spare,
        });
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("sydra-wal-hash".into())
            .spawn(move || run(&rx, &worker))?;
        Ok(Hasher { jobs, shared })
    }

    /// Apply `job` here when the thread is idle and the job is small (a
    /// round of durable appends: a thread hop would cost more than the
    /// hashing), else queue it. Only the I/O holder sends jobs, so nothing
    /// can be queued between the idle check and the update.
    fn submit(&self, job: Job, small: bool) -> Result<(), Stopped> {
        if small && self.shared.queued.load(Ordering::Acquire) == 0 {
            self.shared.state.lock().apply(job, &self.shared);
            return Ok(());
        }
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        self.jobs.send(job).map_err(|_| Stopped)
    }

    /// Hash into `h` from now on.
    pub(crate) fn adopt(&self, h: ChunkHasher) -> Result<(), Stopped> {
        self.submit(Job::Adopt(Box::new(h)), true)
    }

    /// Hash `bytes` (records `first..=last`).
    pub(crate) fn bytes(&self, bytes: Vec<u8>, first: u64, last: u64) -> Result<(), Stopped> {
        let small = bytes.len() <= INLINE_MAX;
        self.submit(Job::Bytes { bytes, first, last }, small)
    }

    /// Wait for every job sent so far; return the chunks sealed since the
    /// last cut and the active range so far, oldest first.
    pub(crate) fn cut(&self) -> Result<Vec<Chunk>, Stopped> {
        let (tx, rx) = sync_channel(1);
        self.submit(Job::Cut(tx), true)?;
        rx.recv().map_err(|_| Stopped)
    }

    /// An emptied buffer to encode records into, if one is waiting.
    pub(crate) fn spare(&self) -> Option<Vec<u8>> {
        self.shared.spare.lock().pop()
    }
}

fn run(jobs: &Receiver<Job>, shared: &Shared) {
    for job in jobs {
        shared.state.lock().apply(job, shared);
        shared.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_exactly_the_bytes_sent_in_order() {
        let h = Hasher::start(1 << 20).unwrap();
        h.adopt(ChunkHasher::new(1, 16)).unwrap();
        h.bytes(b"abcd".to_vec(), 1, 2).unwrap();
        h.bytes(b"ef".to_vec(), 3, 3).unwrap();
        // Rotation: the rest of segment 1 is sealed.
        h.adopt(ChunkHasher::new(4, 16)).unwrap();
        h.bytes(b"gh".to_vec(), 4, 4).unwrap();
        let chunks = h.cut().unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            (
                chunks[0].segment,
                chunks[0].start,
                chunks[0].end,
                chunks[0].count
            ),
            (1, 16, 22, 3)
        );
        assert!(chunks[0].verify(b"abcdef").is_ok());
        assert_eq!((chunks[1].segment, chunks[1].first_seq), (4, 4));
        assert!(chunks[1].verify(b"gh").is_ok());
        // A cut restarts after what it covered.
        h.bytes(b"ij".to_vec(), 5, 5).unwrap();
        let next = h.cut().unwrap();
        assert_eq!((next[0].start, next[0].end), (18, 20));
        assert!(h.cut().unwrap().is_empty());
        assert!(h.spare().is_some_and(|b| b.is_empty()));
    }

    #[test]
    fn queued_and_inline_pieces_are_hashed_in_the_order_sent() {
        let h = Hasher::start(1 << 20).unwrap();
        h.adopt(ChunkHasher::new(1, 16)).unwrap();
        let mut all = Vec::new();
        // Large pieces go to the thread; small ones are hashed inline only
        // when nothing is queued, so order must hold either way.
        let lens = [100_000usize, 10, 70_000, 3, 5, 200_000, 1];
        for (seq, (i, len)) in (1u64..).zip(lens.into_iter().enumerate()) {
            let piece: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            all.extend_from_slice(&piece);
            h.bytes(piece, seq, seq).unwrap();
        }
        let chunks = h.cut().unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].count, 7);
        assert!(chunks[0].verify(&all).is_ok());
    }
}
