//! The chunk hasher thread: CRC32 and BLAKE3 of every written WAL byte,
//! computed off the appending threads.
//!
//! The I/O holder writes a piece of the log, then hands the piece's buffer
//! (already in memory: nothing is read back) to this thread, which feeds
//! the active segment's [`ChunkHasher`] and returns the emptied buffer for
//! reuse. Jobs are processed in the order they were sent, and only the I/O
//! holder sends bytes, so the hasher sees exactly the bytes of the segment
//! in file order. At most [`QUEUE`] jobs wait; a writer faster than the
//! hasher blocks on the queue rather than buffering without bound.
//!
//! Hashing a MiB of records costs about as much as framing it, so on the
//! appending thread it was most of the gap between `Wal::append` and a raw
//! buffered write (docs/BENCHMARKS.md). The CPU work is the same; it just
//! no longer delays appends.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use parking_lot::Mutex;

use super::chunk::{Chunk, ChunkHasher};

/// Jobs that may wait for the hasher.
const QUEUE: usize = 4;

/// Emptied buffers kept for reuse (a round usually fills one).
const SPARE_BUFFERS: usize = 2;

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
    spare: Arc<Mutex<Vec<Vec<u8>>>>,
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
        let spare = Arc::new(Mutex::new(Vec::new()));
        let pool = Arc::clone(&spare);
        std::thread::Builder::new()
            .name("sydra-wal-hash".into())
            .spawn(move || run(&rx, &pool, max_spare))?;
        Ok(Hasher { jobs, spare })
    }

    /// Hash into `h` from now on.
    pub(crate) fn adopt(&self, h: ChunkHasher) -> Result<(), Stopped> {
        self.jobs.send(Job::Adopt(Box::new(h))).map_err(|_| Stopped)
    }

    /// Hash `bytes` (records `first..=last`).
    pub(crate) fn bytes(&self, bytes: Vec<u8>, first: u64, last: u64) -> Result<(), Stopped> {
        self.jobs
            .send(Job::Bytes { bytes, first, last })
            .map_err(|_| Stopped)
    }

    /// Wait for every job sent so far; return the chunks sealed since the
    /// last cut and the active range so far, oldest first.
    pub(crate) fn cut(&self) -> Result<Vec<Chunk>, Stopped> {
        let (tx, rx) = sync_channel(1);
        self.jobs.send(Job::Cut(tx)).map_err(|_| Stopped)?;
        rx.recv().map_err(|_| Stopped)
    }

    /// An emptied buffer to encode records into, if one is waiting.
    pub(crate) fn spare(&self) -> Option<Vec<u8>> {
        self.spare.lock().pop()
    }
}

fn run(jobs: &Receiver<Job>, spare: &Mutex<Vec<Vec<u8>>>, max_spare: usize) {
    let mut active: Option<ChunkHasher> = None;
    let mut sealed: Vec<Chunk> = Vec::new();
    for job in jobs {
        match job {
            Job::Adopt(h) => {
                if let Some(mut old) = active.replace(*h) {
                    sealed.extend(old.cut());
                }
            }
            Job::Bytes {
                mut bytes,
                first,
                last,
            } => {
                if let Some(h) = active.as_mut() {
                    h.update(&bytes, first, last);
                }
                bytes.clear();
                let mut pool = spare.lock();
                if pool.len() < SPARE_BUFFERS && bytes.capacity() <= max_spare {
                    pool.push(bytes);
                }
            }
            Job::Cut(reply) => {
                let mut out = std::mem::take(&mut sealed);
                out.extend(active.as_mut().and_then(ChunkHasher::cut));
                // The caller may have given up (it cannot: it waits); a
                // failed send loses nothing it still wanted.
                let _ = reply.send(out);
            }
        }
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
}
