//! The explicit repair of damaged acknowledged records (`sydra wal repair`):
//! cut the log at the first bad record and give up every seq from it to the
//! highest one still readable after it, recording them in a gap record so
//! that they are never assigned again.
//!
//! Open never does this by itself: bad bytes followed by a valid record are
//! corruption of acknowledged data, and open refuses them (recovery.rs).
//! Only an operator who accepts the loss runs this, after reading the plan.
//!
//! What is written, in order (each step durable before the next):
//! 1. the gap segment `wal/<first lost seq>.wal`: a version-2 header and one
//!    gap record for `first..=last` lost seqs, written to a temp name,
//!    fsynced, renamed, and the directory fsynced;
//! 2. the damaged segment truncated at the bad record and fsynced.
//!
//! A crash between 1 and 2 leaves the damaged segment before the gap
//! segment: open refuses it (damage in a sealed segment) and a second
//! repair finds the gap segment already there and does step 2 only. When
//! the bad record is the first of its segment, the gap segment has the
//! same name, and step 1 replaces the damaged segment in one rename.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sydra_objects::map::map_file;

use super::WalError;
use super::reader::list_segments;
use super::record::{
    SEGMENT_HEADER_LEN, Step, encode_gap, parse_record, parse_segment_header_version,
    segment_file_name, segment_header, valid_record_after,
};

/// The cut a repair makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairPlan {
    /// The damaged segment.
    pub segment: PathBuf,
    /// Offset of the first bad record: the segment keeps the bytes before it.
    pub offset: u64,
    /// Bytes of the segment from `offset` on, which the cut drops.
    pub bytes_dropped: u64,
    /// First seq given up (the bad record's).
    pub first_lost: u64,
    /// Last seq given up: the highest seq readable after the damage. The
    /// log continues at the seq after it.
    pub last_lost: u64,
    /// What is wrong at `offset`.
    pub reason: String,
    /// Step 1 was done by an earlier, interrupted repair.
    pub resumed: bool,
}

impl RepairPlan {
    /// Number of seqs given up.
    pub fn seqs_lost(&self) -> u64 {
        self.last_lost - self.first_lost + 1
    }
}

/// What [`plan`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// Every record is whole: nothing to repair.
    Clean,
    /// Only a torn tail (damage running to the end of the last segment),
    /// which the next open truncates by itself.
    TornTail {
        /// The segment.
        segment: PathBuf,
        /// Where its valid records end.
        offset: u64,
    },
    /// Damage to acknowledged records that a repair can cut off.
    Damaged(RepairPlan),
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> WalError {
    WalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

struct Scanned {
    path: PathBuf,
    len: u64,
    /// First bad offset, the seq expected there, why, and the segment's
    /// version.
    bad: Option<(usize, u64, String, u8)>,
    /// The seq after the last record (or where the walk stopped).
    next: u64,
    /// Highest seq of any valid record from the bad offset on.
    highest_after: Option<u64>,
    /// The segment is exactly one gap record.
    gap_only: Option<(u64, u64)>,
}

fn scan(dir: &Path, seg: u64, expect: u64) -> Result<Scanned, WalError> {
    let path = dir.join(segment_file_name(seg));
    let file = sydra_objects::fs::open_regular(&path).map_err(WalError::io("open", &path))?;
    let map = sydra_objects::fault::point("wal.map")
        .and_then(|()| map_file(&file))
        .map_err(WalError::io("map", &path))?;
    let (found, version) = parse_segment_header_version(&map).map_err(|r| corrupt(&path, 0, r))?;
    if found != seg {
        return Err(corrupt(
            &path,
            8,
            format!("header says first seq {found}, the file name says {seg}"),
        ));
    }
    let mut off = SEGMENT_HEADER_LEN;
    let mut next = expect;
    let mut bad = None;
    let mut records = Vec::new();
    loop {
        match parse_record(&map, off, Some(next), true, version) {
            Step::Record(r) => {
                records.push((r.seq, r.last, r.gap));
                off = r.end;
                next = r.last + 1;
            }
            Step::End => break,
            Step::Bad(reason) => {
                bad = Some((off, next, reason, version));
                break;
            }
        }
    }
    let mut highest_after = None;
    if let Some((at, want, _, _)) = &bad {
        // Every valid record after the damage, in order: each found one is
        // followed sequentially, and the scan resumes past any new damage.
        let (mut pos, mut exp) = (*at, *want);
        while let Some((o, _)) = valid_record_after(&map, pos, exp, version) {
            let Step::Record(r) = parse_record(&map, o, None, true, version) else {
                break;
            };
            highest_after = Some(highest_after.map_or(r.last, |h: u64| h.max(r.last)));
            pos = r.end;
            exp = r.last + 1;
        }
    }
    let gap_only = match (records.as_slice(), &bad) {
        ([(first, last, true)], None) => Some((*first, *last)),
        _ => None,
    };
    Ok(Scanned {
        path,
        len: map.len() as u64,
        bad,
        next,
        highest_after,
        gap_only,
    })
}

/// Find what a repair of the log in `dir` would cut. Records through
/// `chunked_through` are committed by the head checkpoint's chunks: damage
/// there is refused (cutting would orphan committed chunks; restore the
/// segment instead), as is damage in a segment that is neither the last
/// nor followed only by the gap segment of an interrupted repair.
pub fn plan(dir: &Path, chunked_through: u64) -> Result<Diagnosis, WalError> {
    let segs = list_segments(dir)?;
    let resume = chunked_through.saturating_add(1);
    let Some(start) = segs.iter().rposition(|&s| s <= resume) else {
        return Ok(Diagnosis::Clean);
    };
    let mut expect = segs[start];
    for (i, &seg) in segs.iter().enumerate().skip(start) {
        let s = scan(dir, seg, expect)?;
        let Some((off, want, reason, _version)) = s.bad.clone() else {
            expect = s.next;
            continue;
        };
        let rest = &segs[i + 1..];
        if let [g] = rest
            && *g == want
            && let Some((first, last)) = scan(dir, *g, want)?.gap_only
            && first == want
        {
            // An interrupted repair: the gap segment for exactly this damage
            // is already the last segment; only the cut is left to do.
            return finish(s, off, want, last, reason, chunked_through, true);
        }
        if !rest.is_empty() {
            return Err(corrupt(
                &s.path,
                off as u64,
                format!(
                    "{reason}; the damage is in a sealed segment, {} later segment(s) follow: \
                     restore this segment from a replica or backup (a repair cuts only the last \
                     segment)",
                    rest.len()
                ),
            ));
        }
        let Some(highest) = s.highest_after else {
            return Ok(Diagnosis::TornTail {
                segment: s.path,
                offset: off as u64,
            });
        };
        return finish(
            s,
            off,
            want,
            highest.max(want),
            reason,
            chunked_through,
            false,
        );
    }
    Ok(Diagnosis::Clean)
}

fn finish(
    s: Scanned,
    off: usize,
    first_lost: u64,
    last_lost: u64,
    reason: String,
    chunked_through: u64,
    resumed: bool,
) -> Result<Diagnosis, WalError> {
    if first_lost <= chunked_through {
        return Err(corrupt(
            &s.path,
            off as u64,
            format!(
                "{reason}; the damaged record (seq {first_lost}) is covered by the head \
                 checkpoint, which commits records through seq {chunked_through}: restore the \
                 segment from a replica or backup (a repair never cuts committed records)"
            ),
        ));
    }
    Ok(Diagnosis::Damaged(RepairPlan {
        bytes_dropped: s.len - off as u64,
        segment: s.path,
        offset: off as u64,
        first_lost,
        last_lost,
        reason,
        resumed,
    }))
}

/// Carry out `plan` (from [`plan`], under the writer lock, nothing changed
/// since). See the module docs for the order of writes.
pub fn apply(dir: &Path, plan: &RepairPlan) -> Result<(), WalError> {
    let gap_path = dir.join(segment_file_name(plan.first_lost));
    if !plan.resumed {
        let tmp = dir.join(format!("{}.repair-tmp", segment_file_name(plan.first_lost)));
        let mut bytes = segment_header(plan.first_lost).to_vec();
        encode_gap(&mut bytes, plan.first_lost, plan.last_lost);
        let mut f = sydra_objects::fault::point("wal.segment.create")
            .and_then(|()| {
                sydra_objects::fs::open_regular_with(
                    &tmp,
                    OpenOptions::new().write(true).create(true).truncate(true),
                )
            })
            .map_err(WalError::io("create", &tmp))?;
        sydra_objects::fault::point("wal.segment.write")
            .and_then(|()| f.write_all(&bytes))
            .map_err(WalError::io("write", &tmp))?;
        sydra_objects::fault::point("wal.segment.sync")
            .and_then(|()| f.sync_all())
            .map_err(WalError::sync(&tmp))?;
        drop(f);
        // The gap is durable before any byte of the damaged segment goes:
        // a crash from here on can lose no seq's record of having existed.
        sydra_objects::fault::point("wal.segment.create")
            .and_then(|()| fs::rename(&tmp, &gap_path))
            .map_err(WalError::io("rename into place", &gap_path))?;
        super::recovery::sync_dir(dir)?;
    }
    if gap_path != plan.segment {
        let f = sydra_objects::fs::open_regular_with(&plan.segment, OpenOptions::new().write(true))
            .map_err(WalError::io("open", &plan.segment))?;
        sydra_objects::fault::point("wal.recovery.truncate")
            .and_then(|()| f.set_len(plan.offset))
            .map_err(WalError::io("truncate", &plan.segment))?;
        sydra_objects::fault::point("wal.recovery.sync")
            .and_then(|()| f.sync_all())
            .map_err(WalError::sync(&plan.segment))?;
    }
    Ok(())
}

/// Remove a temp file an interrupted repair left (it never holds anything
/// the log needs: the rename is what publishes it).
pub fn remove_leftovers(dir: &Path) -> Result<(), WalError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(WalError::io("list", dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(WalError::io("list", dir))?;
        if entry.file_name().to_string_lossy().ends_with(".repair-tmp") {
            let p = entry.path();
            sydra_objects::fault::point("wal.recovery.remove")
                .and_then(|()| fs::remove_file(&p))
                .map_err(WalError::io("remove", &p))?;
        }
    }
    Ok(())
}
