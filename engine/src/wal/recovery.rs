//! Open-time recovery: drop a torn last segment header, truncate a torn
//! tail of the last segment, verify and hash every record not yet covered
//! by a committed chunk.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use sydra_objects::map::map_file;

use super::WalError;
use super::chunk::ChunkHasher;
use super::reader::list_segments;
use super::record::{
    SEGMENT_HEADER_LEN, SEGMENT_VERSION, Step, parse_record, parse_segment_header_version,
    segment_file_name, segment_header, valid_record_after,
};
use super::writer::{Active, Position, State};

/// What recovery changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments whose torn tail was cut: (file, new length, bytes dropped, why).
    pub truncated: Vec<(PathBuf, u64, u64, String)>,
    /// Empty or header-torn last segments that were removed.
    pub removed: Vec<PathBuf>,
    /// Records verified (not yet covered by a committed chunk).
    pub records_scanned: u64,
    /// The last segment, fdatasynced before open reported its records
    /// durable (a crash in `Never`/`Interval` mode leaves written records
    /// that no fdatasync covered).
    pub tail_synced: Option<PathBuf>,
}

impl RecoveryReport {
    /// Whether anything was repaired.
    pub fn repaired(&self) -> bool {
        !self.truncated.is_empty() || !self.removed.is_empty()
    }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> WalError {
    WalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// The reason for refusing bad bytes that valid records follow.
pub(crate) fn not_torn(reason: &str, at: usize, seq: u64) -> String {
    format!(
        "{reason}; a valid record (seq {seq}) follows at offset {at}, so this is damage to \
         acknowledged records, not a torn tail (nothing was changed; `sydra wal repair` can cut \
         the log here, giving up the records from this one on)"
    )
}

pub(crate) fn recover(
    dir: &Path,
    chunked_through: u64,
) -> Result<(State, RecoveryReport), WalError> {
    let mut report = RecoveryReport::default();
    let mut segs = list_segments(dir)?;
    // A crash while creating a segment leaves it empty or with a partial
    // header; nothing in it was ever acknowledged.
    while let Some(&last) = segs.last() {
        let path = dir.join(segment_file_name(last));
        if !is_torn_creation(&path, last)? {
            break;
        }
        sydra_objects::fault::point("wal.recovery.remove")
            .and_then(|()| fs::remove_file(&path))
            .map_err(WalError::io("remove", &path))?;
        sync_dir(dir)?;
        report.removed.push(path);
        segs.pop();
    }
    let Some(&last_seg) = segs.last() else {
        return Ok((State::new(chunked_through + 1), report));
    };
    // Scan from the segment holding the first record not yet chunked.
    let resume = chunked_through + 1;
    let start_idx = match segs.iter().rposition(|&s| s <= resume) {
        Some(i) => i,
        None => {
            let path = dir.join(segment_file_name(segs[0]));
            return Err(corrupt(
                &path,
                0,
                format!(
                    "the WAL starts at seq {} but records from seq {resume} on are not covered by any checkpoint",
                    segs[0]
                ),
            ));
        }
    };
    let mut state = State::new(1);
    let mut expect = segs[start_idx];
    for (i, &seg) in segs.iter().enumerate().skip(start_idx) {
        let path = dir.join(segment_file_name(seg));
        let is_last = seg == last_seg;
        if seg != expect {
            return Err(corrupt(
                &path,
                0,
                format!(
                    "segment starts at seq {seg} but the previous segment ends at seq {}",
                    expect - 1
                ),
            ));
        }
        // Seqs start at 1; a segment named 0 is not one Sydra wrote (and
        // `expect - 1` below relies on it).
        if seg == 0 {
            return Err(corrupt(
                &path,
                0,
                "the file name says first seq 0, but seqs start at 1",
            ));
        }
        if seg >= u64::MAX / 2 {
            return Err(corrupt(
                &path,
                0,
                "the file name claims an impossible first seq",
            ));
        }
        let file = sydra_objects::fs::open_regular(&path).map_err(WalError::io("open", &path))?;
        let map = sydra_objects::fault::point("wal.map")
            .and_then(|()| map_file(&file))
            .map_err(WalError::io("map", &path))?;
        let (found, version) =
            parse_segment_header_version(&map).map_err(|r| corrupt(&path, 0, r))?;
        if found != seg {
            return Err(corrupt(
                &path,
                8,
                format!("header says first seq {found}, the file name says {seg}"),
            ));
        }
        let mut off = SEGMENT_HEADER_LEN;
        let mut hash_from: Option<(usize, u64)> = None;
        let mut torn: Option<String> = None;
        loop {
            match parse_record(&map, off, Some(expect), true, version) {
                Step::Record(r) => {
                    if r.last > chunked_through && hash_from.is_none() {
                        hash_from = Some((off, r.seq));
                    }
                    if r.last > chunked_through {
                        report.records_scanned += 1;
                    }
                    off = r.end;
                    // A gap record stands for every seq it gave up.
                    expect = r.last + 1;
                }
                Step::End => break,
                Step::Bad(reason) if is_last => {
                    // Only damage that runs to the end of the file is a torn
                    // tail; anything else is refused before a byte changes.
                    if let Some((at, seq)) = valid_record_after(&map, off, expect, version) {
                        return Err(corrupt(&path, off as u64, not_torn(&reason, at, seq)));
                    }
                    torn = Some(reason);
                    break;
                }
                Step::Bad(reason) => return Err(corrupt(&path, off as u64, reason)),
            }
        }
        let last_seq = expect - 1;
        if last_seq < chunked_through
            && (is_last || segs.get(i + 1).is_some_and(|&n| n > chunked_through + 1))
        {
            return Err(corrupt(
                &path,
                off as u64,
                format!(
                    "the WAL ends at seq {last_seq} but the head checkpoint covers records through seq {chunked_through}"
                ),
            ));
        }
        let mut hasher = ChunkHasher::new(seg, off as u64);
        if let Some((from, first)) = hash_from {
            hasher = ChunkHasher::new(seg, from as u64);
            hasher.update(&map[from..off], first, last_seq);
        }
        let file_len = map.len();
        drop(map);
        if !is_last {
            state.sealed.extend(hasher.cut());
            continue;
        }
        let file = sydra_objects::fs::open_regular_with(&path, OpenOptions::new().append(true))
            .map_err(WalError::io("open", &path))?;
        if torn.is_some() {
            sydra_objects::fault::point("wal.recovery.truncate")
                .and_then(|()| file.set_len(off as u64))
                .map_err(WalError::io("truncate", &path))?;
        }
        // Records are never appended to a segment of an older version. One
        // that holds none (a crash right after an old writer created it) is
        // upgraded in place: only the version byte changes, one byte of one
        // sector, so a crash leaves the old header or the new one. One that
        // holds records is sealed: the next append starts a new segment.
        let mut seal = version != SEGMENT_VERSION;
        if seal && off == SEGMENT_HEADER_LEN {
            use std::os::unix::fs::FileExt;
            sydra_objects::fault::point("wal.segment.write")
                .and_then(|()| {
                    sydra_objects::fs::open_regular_with(&path, OpenOptions::new().write(true))
                })
                .and_then(|f| f.write_all_at(&segment_header(seg), 0))
                .map_err(WalError::io("upgrade the header of", &path))?;
            seal = false;
        }
        // Everything kept is reported durable from here on (and a checkpoint
        // may commit chunks over it at once), but a crash in `Never` or
        // `Interval` mode leaves records that were written and never
        // fdatasynced: sync them (and a truncation) first. A failure here
        // leaves the file as it was or truncated, and open fails.
        sydra_objects::fault::point("wal.recovery.sync")
            .and_then(|()| file.sync_all())
            .map_err(WalError::sync(&path))?;
        report.tail_synced = Some(path.clone());
        if let Some(reason) = torn {
            let dropped = (file_len - off) as u64;
            report
                .truncated
                .push((path.clone(), off as u64, dropped, reason));
        }
        state.next_seq = expect;
        state.seg_first = seg;
        state.seg_len = off as u64;
        state.written = Position {
            segment: seg,
            offset: off as u64,
            last_seq,
        };
        state.durable_seq = last_seq;
        state.active = Some(Active {
            first_seq: seg,
            path,
            file,
            len: off as u64,
        });
        state.resume = Some(hasher);
        state.seal_active = seal;
    }
    Ok((state, report))
}

/// Whether a segment file is what a crash during [`create_segment`] leaves:
/// shorter than its header and a prefix of it, or all zeros.
///
/// [`create_segment`]: super::writer
fn is_torn_creation(path: &Path, first_seq: u64) -> Result<bool, WalError> {
    let mut f = sydra_objects::fs::open_regular(path).map_err(WalError::io("open", path))?;
    let len = f.metadata().map_err(WalError::io("stat", path))?.len();
    let mut head = Vec::with_capacity(SEGMENT_HEADER_LEN);
    (&mut f)
        .take(SEGMENT_HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(WalError::io("read", path))?;
    if (len as usize) < SEGMENT_HEADER_LEN && segment_header(first_seq).starts_with(&head) {
        return Ok(true);
    }
    if head.iter().any(|b| *b != 0) {
        return Ok(false);
    }
    // Streamed in bounded pieces: the file may be any length.
    let mut piece = [0u8; 8192];
    loop {
        let n = f.read(&mut piece).map_err(WalError::io("read", path))?;
        if n == 0 {
            return Ok(true);
        }
        if piece[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    Ok(sydra_objects::fs::sync_dir(dir, || {
        sydra_objects::fault::point("wal.dir.sync")
    })?)
}
