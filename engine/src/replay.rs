//! Replay: stream the WAL records a commit has not yet applied, in seq
//! order, zero-copy from memory-mapped segments.
//!
//! First the commit's chunks (each verified against its CRC32 and BLAKE3
//! before any of its records is yielded), then optionally the live tail
//! past the last chunk. One segment is mapped at a time, so memory does not
//! grow with the size of the WAL.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use sydra_objects::{ObjectId, Store};

use crate::error::{Error, Result};
use crate::index;
use crate::wal::record::SEGMENT_HEADER_LEN;
use crate::wal::record::{Step, parse_record, valid_record_after};
use crate::wal::{Chunk, Position, SegmentView, WalError, list_segments, ranges};

/// How far past the commit's chunks to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Only what the commit committed.
    None,
    /// Up to a known written position (a live engine's).
    UpTo(Position),
    /// To the end of the files; an invalid record in the last segment ends
    /// the tail (a writer may be mid-append there).
    ToEnd,
    /// To the end of the files, and any invalid record, in the last segment
    /// too, is an error naming the file and offset (fsck's view: a torn or
    /// damaged tail is something to report).
    ToEndStrict,
}

struct Cur {
    view: Arc<SegmentView>,
    off: usize,
    end: usize,
    verify_crc: bool,
    /// In the last tail segment of a `ToEnd` replay: bad bytes mean "end".
    lenient_end: bool,
}

/// A replay in progress. Use [`Replay::next_record`] for zero-copy access,
/// or iterate for owned records.
pub struct Replay {
    wal_dir: PathBuf,
    applied: u64,
    committed_through: u64,
    chunks: VecDeque<(ObjectId, Chunk)>,
    tail: Tail,
    tail_segments: Option<VecDeque<u64>>,
    /// Where the last verified chunk ended: the tail resumes there rather
    /// than re-reading the segment from its start.
    last_chunk_end: Option<(u64, usize)>,
    cur: Option<Cur>,
    expect: u64,
    done: bool,
    records: u64,
    bytes: u64,
    /// Where a chunk's range comes from when it is neither stored nor in
    /// `wal/` here (a read replica's remote).
    source: Option<Arc<dyn RangeSource>>,
}

/// Where a replay gets the stored range (docs/FORMAT.md §20) of a chunk
/// this store lacks: a read replica's remote.
pub(crate) trait RangeSource: Send + Sync + std::fmt::Debug {
    /// The stored-range file bytes of chunk `id`, `None` when the source
    /// does not hold them. The replay verifies them against the chunk.
    fn fetch_range(&self, id: &ObjectId) -> Result<Option<Vec<u8>>>;
    /// Hand `sink` the stored-range file bytes of those of `ids` the
    /// source holds, fetched together (a bounded batch at a time).
    fn fetch_ranges(
        &self,
        ids: &[ObjectId],
        sink: &mut dyn FnMut(ObjectId, Vec<u8>) -> Result<()>,
    ) -> Result<()>;
    /// A fetched range of `len` bytes is now kept at `path`.
    fn kept_range(&self, path: &std::path::Path, len: u64);
    /// Where chunk `id`'s range comes from, for errors.
    fn range_origin(&self, id: &ObjectId) -> String;
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("applied", &self.applied)
            .field("next_seq", &self.expect)
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

impl Replay {
    /// Replay what `commit` has not applied (`None`: no checkpoint yet, so
    /// everything from seq 1), then the tail as asked.
    pub fn new(
        store: &Store,
        wal_dir: PathBuf,
        commit: Option<ObjectId>,
        tail: Tail,
    ) -> Result<Replay> {
        let (applied, committed_through, chunks) = match commit {
            None => (0, 0, Vec::new()),
            Some(id) => {
                let obj = store.get(&id)?;
                let c = obj.commit()?;
                let applied = c.meta_u64("wal.applied_seq").unwrap_or(0);
                let last = c.meta_u64("wal.last_seq").unwrap_or(applied);
                let chunks = index::chunks(store, c.tree)?;
                (applied, last, chunks)
            }
        };
        let chunks: VecDeque<_> = chunks
            .into_iter()
            .filter(|(_, c)| c.last_seq > applied)
            .collect();
        Ok(Replay {
            wal_dir,
            applied,
            committed_through,
            chunks,
            tail,
            tail_segments: None,
            last_chunk_end: None,
            cur: None,
            expect: applied + 1,
            done: false,
            records: 0,
            bytes: 0,
            source: None,
        })
    }

    /// Fetch missing ranges from `source` (stored here once verified):
    /// every range the replay will read that is neither stored nor in
    /// `wal/`, at once, so the source can fetch them together.
    pub(crate) fn fetching(mut self, source: Option<Arc<dyn RangeSource>>) -> Result<Replay> {
        if let Some(src) = &source {
            let missing: Vec<ObjectId> = self
                .chunks
                .iter()
                .filter(|(id, _)| !ranges::exists(&self.wal_dir, id))
                .map(|(id, _)| *id)
                .collect();
            if !missing.is_empty() {
                let by_id: std::collections::HashMap<ObjectId, &Chunk> =
                    self.chunks.iter().map(|(id, c)| (*id, c)).collect();
                src.fetch_ranges(&missing, &mut |id, body| {
                    if let Some(chunk) = by_id.get(&id) {
                        self.keep_range(src.as_ref(), &id, chunk, &body)?;
                    }
                    Ok(())
                })?;
            }
        }
        self.source = source;
        Ok(self)
    }

    /// Verify fetched range bytes against `chunk` and store them.
    fn keep_range(
        &self,
        src: &dyn RangeSource,
        id: &ObjectId,
        chunk: &Chunk,
        body: &[u8],
    ) -> Result<()> {
        let header = body.get(..SEGMENT_HEADER_LEN).unwrap_or(body);
        let rest = body.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
        // A range that fails its chunk's check is named where it came from.
        ranges::write(&self.wal_dir, id, chunk, header, rest).map_err(|e| match e {
            Error::ChunkMismatch { chunk, reason, .. } => Error::ChunkMismatch {
                chunk,
                path: src.range_origin(id).into(),
                reason,
            },
            e => e,
        })?;
        let path = ranges::range_path(&ranges::ranges_dir(&self.wal_dir), id);
        src.kept_range(&path, body.len() as u64);
        Ok(())
    }

    /// Skip the commit's chunks: start with the first record they do not
    /// cover (for checking the live tail alone).
    pub fn tail_only(mut self) -> Replay {
        self.chunks.clear();
        self.expect = self.applied.max(self.committed_through) + 1;
        self
    }

    /// The commit's applied seq: replay yields records after it.
    pub fn applied_seq(&self) -> u64 {
        self.applied
    }

    /// Records and payload bytes yielded so far.
    pub fn progress(&self) -> (u64, u64) {
        (self.records, self.bytes)
    }

    fn corrupt(&self, view: &SegmentView, off: usize, reason: String) -> Error {
        Error::Wal(WalError::Corrupt {
            path: view.path.clone(),
            offset: off as u64,
            reason,
        })
    }

    /// The next record as `(seq, payload)` borrowed from the mapped segment.
    pub fn next_record(&mut self) -> Option<Result<(u64, &[u8])>> {
        match self.advance() {
            Ok(Some((seq, a, b))) => {
                let cur = self.cur.as_ref()?;
                Some(Ok((seq, &cur.view.bytes()[a..b])))
            }
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// Move to the next record to yield; returns its seq and payload range
    /// in the current view.
    fn advance(&mut self) -> Result<Option<(u64, usize, usize)>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if let Some(cur) = self.cur.as_mut() {
                let bytes = &cur.view.bytes()[..cur.end];
                let version = cur.view.version;
                match parse_record(bytes, cur.off, None, cur.verify_crc, version) {
                    Step::Record(r) => {
                        let start = r.end - r.payload.len();
                        let (seq, end) = (r.seq, r.end);
                        cur.off = end;
                        if r.last < self.expect {
                            continue;
                        }
                        if r.gap && seq <= self.expect {
                            // Seqs given up by `sydra wal repair`: nothing
                            // to yield, and the log goes on after them.
                            self.expect = r.last + 1;
                            continue;
                        }
                        if seq != self.expect {
                            let view = cur.view.clone();
                            return Err(self.corrupt(
                                &view,
                                start,
                                format!("expected seq {}, found {seq}", self.expect),
                            ));
                        }
                        self.expect += 1;
                        self.records += 1;
                        self.bytes += (end - start) as u64;
                        return Ok(Some((seq, start, end)));
                    }
                    Step::End => self.cur = None,
                    Step::Bad(reason) => {
                        // A writer may be mid-append at the end of the last
                        // segment: bad bytes there end the tail, but only if
                        // no valid record follows them (else it is damage).
                        let later = valid_record_after(bytes, cur.off, self.expect, version);
                        if cur.lenient_end && later.is_none() {
                            self.cur = None;
                            self.tail_segments = Some(VecDeque::new());
                            continue;
                        }
                        let reason = match later {
                            Some((at, seq)) => crate::wal::not_torn(&reason, at, seq),
                            None => reason,
                        };
                        let (view, off) = (cur.view.clone(), cur.off);
                        return Err(self.corrupt(&view, off, reason));
                    }
                }
                continue;
            }
            if let Some((id, chunk)) = self.chunks.pop_front() {
                self.open_chunk(id, chunk)?;
                continue;
            }
            if self.tail == Tail::None {
                self.done = true;
                if self.expect <= self.committed_through {
                    return Err(Error::Wal(WalError::Missing {
                        seq: self.expect,
                        reason: format!(
                            "the commit covers records through seq {} but its chunks end earlier",
                            self.committed_through
                        ),
                    }));
                }
                return Ok(None);
            }
            if !self.next_tail_segment()? {
                self.done = true;
                if let Tail::UpTo(pos) = self.tail
                    && self.expect <= pos.last_seq
                {
                    return Err(Error::Wal(WalError::Missing {
                        seq: self.expect,
                        reason: format!(
                            "the WAL was written through seq {} but its files end earlier",
                            pos.last_seq
                        ),
                    }));
                }
                return Ok(None);
            }
        }
    }

    fn open_chunk(&mut self, id: ObjectId, chunk: Chunk) -> Result<()> {
        // A range fetched from another store (verified as it is opened)
        // comes first: its segment numbers are not this store's.
        let mut stored = ranges::open(&self.wal_dir, &id, &chunk)?;
        if stored.is_none()
            && let Some(src) = &self.source
        {
            // A replica has no WAL of the remote's: its ranges come from
            // the remote, verified against the chunk before they are kept.
            let missing = || Error::ChunkMismatch {
                chunk: id,
                path: src.range_origin(&id).into(),
                reason: "no pack of the remote holds this WAL range".into(),
            };
            let body = src.fetch_range(&id)?.ok_or_else(missing)?;
            self.keep_range(src.as_ref(), &id, &chunk, &body)?;
            stored = ranges::open(&self.wal_dir, &id, &chunk)?;
            if stored.is_none() {
                // Evicted at once by another reader: fetch it again.
                let body = src.fetch_range(&id)?.ok_or_else(missing)?;
                self.keep_range(src.as_ref(), &id, &chunk, &body)?;
                stored = ranges::open(&self.wal_dir, &id, &chunk)?;
            }
        }
        if let Some(r) = stored {
            let view = Arc::new(SegmentView::stored(r, chunk.segment, id));
            let end = view.bytes().len();
            self.cur = Some(Cur {
                view,
                off: SEGMENT_HEADER_LEN,
                end,
                verify_crc: false,
                lenient_end: false,
            });
            return Ok(());
        }
        let view = match self.cur.take() {
            Some(c) if c.view.stored.is_none() && c.view.first_seq == chunk.segment => c.view,
            _ => Arc::new(SegmentView::open(&self.wal_dir, chunk.segment)?),
        };
        let bytes = view.bytes();
        let range = usize::try_from(chunk.start)
            .ok()
            .zip(usize::try_from(chunk.end).ok());
        let Some((start, end)) = range.filter(|(s, e)| s < e && *e <= bytes.len()) else {
            return Err(Error::ChunkMismatch {
                chunk: id,
                path: view.path.clone(),
                reason: format!(
                    "range {}..{} is outside the {}-byte segment",
                    chunk.start,
                    chunk.end,
                    bytes.len()
                ),
            });
        };
        chunk
            .verify(&bytes[start..end])
            .map_err(|reason| Error::ChunkMismatch {
                chunk: id,
                path: view.path.clone(),
                reason,
            })?;
        self.last_chunk_end = Some((chunk.segment, end));
        // Verified as a whole: per-record CRCs add nothing.
        self.cur = Some(Cur {
            view,
            off: start,
            end,
            verify_crc: false,
            lenient_end: false,
        });
        Ok(())
    }

    fn next_tail_segment(&mut self) -> Result<bool> {
        if self.tail_segments.is_none() {
            let all = list_segments(&self.wal_dir)?;
            let first = all.iter().rposition(|&s| s <= self.expect).unwrap_or(0);
            let mut segs: VecDeque<u64> = all.into_iter().skip(first).collect();
            if let Tail::UpTo(pos) = self.tail {
                segs.retain(|&s| s <= pos.segment);
                if pos.segment == 0 {
                    segs.clear();
                }
            }
            self.tail_segments = Some(segs);
        }
        let Some(seg) = self.tail_segments.as_mut().and_then(VecDeque::pop_front) else {
            return Ok(false);
        };
        let is_last = self.tail_segments.as_ref().is_some_and(VecDeque::is_empty);
        let view = Arc::new(SegmentView::open(&self.wal_dir, seg)?);
        let len = view.bytes().len();
        let (end, lenient_end) = match self.tail {
            Tail::UpTo(pos) if seg == pos.segment => (
                usize::try_from(pos.offset).unwrap_or(usize::MAX).min(len),
                false,
            ),
            Tail::ToEnd => (len, is_last),
            Tail::ToEndStrict => (len, false),
            _ => (len, false),
        };
        let off = match self.last_chunk_end {
            Some((s, end)) if s == seg && end <= len => end,
            _ => view.data_start(),
        };
        self.cur = Some(Cur {
            view,
            off,
            end,
            verify_crc: true,
            lenient_end,
        });
        Ok(true)
    }
}

/// An owned record from iterating a [`Replay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its seq.
    pub seq: u64,
    /// Its payload.
    pub data: Vec<u8>,
}

impl Iterator for Replay {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().map(|r| {
            r.map(|(seq, d)| Record {
                seq,
                data: d.to_vec(),
            })
        })
    }
}
