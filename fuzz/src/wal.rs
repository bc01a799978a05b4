//! Properties of the WAL decoders and of open-time recovery, checked on
//! arbitrary bytes.
//!
//! Shared by the fuzz targets and by `engine/tests/fuzz_regressions.rs`
//! (included there with `#[path]`, with `scratch.rs`). Only `std`, the
//! sydra crates and `tempfile` may be used here.
//!
//! The segment and recovery checks read a flag byte first. Flags can
//! rewrite the header, each record's seq and each record's CRC to valid
//! values, so that the fuzzer reaches the logic behind those checks instead
//! of spending its time on forging CRC32s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sydra_engine::objects::{Durability, Store};
use sydra_engine::wal::chunk::CHUNK_LEN;
use sydra_engine::wal::record::{
    GAP_FLAG, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SEGMENT_VERSION, SEGMENT_VERSION_1, Step,
    encode_gap, encode_record_version, framed_len, parse_record, parse_segment_header, record_crc,
    segment_file_name, segment_header, segment_header_version, valid_record_after,
};
use sydra_engine::wal::{Chunk, SyncMode, WalOptions, list_segments};
use sydra_engine::{Engine, Error, Options, Replay, Tail};

/// A chunk descriptor: `Chunk::decode(b)` ok => `encode() == b` and the
/// documented range invariants hold; `verify` never panics.
pub fn chunk(data: &[u8]) {
    let Ok(c) = Chunk::decode(data) else { return };
    assert_eq!(data.len(), CHUNK_LEN);
    assert_eq!(c.encode(), data, "chunk round trip");
    assert!(c.start < c.end, "{c:?}");
    assert!(
        c.first_seq <= c.last_seq && c.first_seq >= c.segment,
        "{c:?}"
    );
    assert_eq!(
        c.last_seq
            .checked_sub(c.first_seq)
            .and_then(|d| d.checked_add(1)),
        Some(c.count)
    );
    // Any bytes may be handed to verify; it must say no, not panic.
    let _ = c.verify(data);
    let _ = c.verify(&[]);
}

const FIX_HEADER: u8 = 1;
const FIX_SEQS: u8 = 2;
const FIX_CRCS: u8 = 4;

/// Rewrite `seg` in place per `flags`: a valid header for `first_seq`;
/// contiguous seqs from `first_seq`; correct CRCs. Only whole records (as
/// their length fields frame them) are touched.
fn fix_up(seg: &mut [u8], flags: u8, first_seq: u64) {
    if flags & FIX_HEADER != 0 && seg.len() >= SEGMENT_HEADER_LEN {
        seg[..SEGMENT_HEADER_LEN].copy_from_slice(&segment_header(first_seq));
    }
    if flags & (FIX_SEQS | FIX_CRCS) == 0 {
        return;
    }
    let version = version_of(seg);
    let mut off = SEGMENT_HEADER_LEN;
    let mut seq = first_seq;
    while off + RECORD_HEADER_LEN <= seg.len() {
        let word = u32::from_le_bytes([seg[off], seg[off + 1], seg[off + 2], seg[off + 3]]);
        let len = if version == SEGMENT_VERSION_1 {
            word
        } else {
            word & !GAP_FLAG
        };
        let Some(end) = (off + RECORD_HEADER_LEN).checked_add(len as usize) else {
            break;
        };
        if end > seg.len() {
            break;
        }
        if flags & FIX_SEQS != 0 {
            seg[off + 8..off + 16].copy_from_slice(&seq.to_le_bytes());
        }
        let mut s = [0u8; 8];
        s.copy_from_slice(&seg[off + 8..off + 16]);
        let this = u64::from_le_bytes(s);
        if flags & FIX_CRCS != 0 {
            let crc = record_crc(version, word, this, &seg[off + RECORD_HEADER_LEN..end]);
            seg[off + 4..off + 8].copy_from_slice(&crc.to_le_bytes());
        }
        seq = this.wrapping_add(1);
        // A gap record stands for seqs up to its payload.
        if let Step::Record(r) = parse_record(seg, off, Some(this), true, version) {
            seq = r.last.wrapping_add(1);
        }
        off = end;
    }
}

/// The version byte of a segment's header (the current one if too short).
fn version_of(seg: &[u8]) -> u8 {
    seg.get(4).copied().unwrap_or(SEGMENT_VERSION)
}

/// A record as walked: seq, last seq it stands for, gap, payload.
type Walked = (u64, u64, bool, Vec<u8>);

/// Walk every record from the header on; each accepted record re-encodes
/// to its bytes and lies inside the buffer. Returns the records and the
/// offset of the bad bytes that ended the walk, if any.
fn walk(seg: &[u8], verify_crc: bool) -> (Vec<Walked>, Option<usize>) {
    let version = version_of(seg);
    let mut out = Vec::new();
    let mut off = SEGMENT_HEADER_LEN.min(seg.len());
    loop {
        match parse_record(seg, off, None, verify_crc, version) {
            Step::Record(r) => {
                assert!(
                    r.end > off && r.end <= seg.len(),
                    "record end {} at {off}",
                    r.end
                );
                assert_eq!(r.end - off, framed_len(r.payload.len()));
                if verify_crc {
                    let mut again = Vec::new();
                    if r.gap {
                        encode_gap(&mut again, r.seq, r.last);
                    } else {
                        encode_record_version(&mut again, version, r.seq, r.payload);
                    }
                    assert_eq!(again, &seg[off..r.end], "record re-encodes differently");
                }
                assert!(r.last >= r.seq && (r.gap || r.last == r.seq), "{r:?}");
                out.push((r.seq, r.last, r.gap, r.payload.to_vec()));
                off = r.end;
            }
            Step::End => {
                assert_eq!(off, seg.len());
                return (out, None);
            }
            Step::Bad(_) => return (out, Some(off)),
        }
    }
}

thread_local! {
    static SCAN: std::cell::RefCell<Option<(tempfile::TempDir, Store)>> =
        const { std::cell::RefCell::new(None) };
}

/// A WAL segment: the header parses back to what `segment_header` writes;
/// records walk from the header with `parse_record` (with and without CRC
/// checks, and from arbitrary offsets) without panicking; and a reader
/// replaying the file as the last segment of a live WAL (`Tail::ToEnd`)
/// yields exactly the valid, contiguous prefix from seq 1.
///
/// Input: one flag byte (see [`fix_up`]), then the segment.
pub fn wal_segment(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut seg = rest.to_vec();
    fix_up(&mut seg, flags, 1);
    let first = parse_segment_header(&seg);
    if let Ok(first) = first {
        assert_eq!(
            segment_header_version(version_of(&seg), first),
            seg[..SEGMENT_HEADER_LEN]
        );
    }
    let (valid, bad_at) = walk(&seg, true);
    let _ = walk(&seg, false);
    for off in [0, 1, 7, seg.len() / 2, seg.len(), seg.len() + 1, usize::MAX] {
        for v in [SEGMENT_VERSION_1, SEGMENT_VERSION] {
            let _ = parse_record(&seg, off, Some(1), true, v);
            let _ = parse_record(&seg, off, None, false, v);
        }
    }
    let Ok(first) = first else { return };
    SCAN.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (dir, store) = slot.get_or_insert_with(|| {
            let dir = super::scratch::tempdir("segment");
            let options = sydra_engine::objects::Options {
                durability: Durability::None,
                ..Default::default()
            };
            let store = Store::create(dir.path().join("objects"), options)
                .unwrap_or_else(|e| panic!("scratch store: {e}"));
            std::fs::create_dir_all(dir.path().join("wal")).unwrap_or_else(|e| panic!("{e}"));
            (dir, store)
        });
        let wal = dir.path().join("wal");
        let path = wal.join(segment_file_name(first));
        std::fs::write(&path, &seg).unwrap_or_else(|e| panic!("{e}"));
        // The reader's rules: records before the next expected seq are
        // skipped, a gap is an error, bad bytes end the last segment unless
        // a valid record follows them (then they are damage, an error).
        let mut want = Vec::new();
        let mut gap = false;
        let mut expect = 1u64;
        for (seq, last, is_gap, payload) in valid {
            if last < expect {
                continue;
            }
            if is_gap && seq <= expect {
                expect = last + 1;
                continue;
            }
            if seq != expect {
                gap = true;
                break;
            }
            want.push((seq, payload));
            expect += 1;
        }
        let damaged = !gap
            && bad_at
                .is_some_and(|at| valid_record_after(&seg, at, expect, version_of(&seg)).is_some());
        let replay = Replay::new(store, wal.clone(), None, Tail::ToEnd)
            .unwrap_or_else(|e| panic!("replay of no commit: {e}"));
        let (got, err) = drain(replay);
        assert_eq!(got, want, "ToEnd replay of a lone segment");
        assert_eq!(err.is_some(), gap || damaged, "replay error {err:?}");
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
    });
}

/// Every record a replay yields, and the error that ended it, if any.
fn drain(mut r: Replay) -> (Vec<(u64, Vec<u8>)>, Option<Error>) {
    let mut out = Vec::new();
    while let Some(x) = r.next_record() {
        match x {
            Ok((seq, p)) => out.push((seq, p.to_vec())),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

fn recovery_options() -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            segment_size: 4096,
            max_record: 1024,
            ..WalOptions::default()
        },
        objects: sydra_engine::objects::Options {
            durability: Durability::None,
            ..Default::default()
        },
        ..Options::default()
    }
}

/// A data directory captured as (relative path, bytes), so that each check
/// writes a fresh copy and no directory outlives the build.
#[derive(Debug, Clone)]
struct Template {
    files: Vec<(PathBuf, Vec<u8>)>,
    /// The first seq a segment after the template's own would start at.
    next: u64,
    /// Segment 1's bytes as the head's chunk committed them, if it has one.
    committed: Option<Vec<u8>>,
}

fn capture(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let rd = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{e}"));
    for entry in rd {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let path = entry.path();
        let ft = entry.file_type().unwrap_or_else(|e| panic!("{e}"));
        if ft.is_dir() {
            capture(root, &path, out);
        } else if path.file_name().is_some_and(|n| n != "LOCK") {
            let rel = path.strip_prefix(root).unwrap_or_else(|e| panic!("{e}"));
            out.push((
                rel.to_path_buf(),
                std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")),
            ));
        }
    }
}

/// Payload of record `seq` in the templates.
pub fn template_payload(seq: u64) -> Vec<u8> {
    format!("template record {seq} {}", "#".repeat((seq % 11) as usize)).into_bytes()
}

/// A: a fresh engine, no segment. B: segment 1 holding records 1..=5, no
/// checkpoint. C: B plus a checkpoint (applied 2, chunked through 5).
/// D: C without its segment file.
fn templates() -> &'static [Template; 4] {
    static T: OnceLock<[Template; 4]> = OnceLock::new();
    T.get_or_init(|| {
        let tmp = super::scratch::tempdir("templates");
        let build = |name: &str, records: u64, checkpoint: bool| {
            let dir = tmp.path().join(name);
            let e = Engine::create(&dir, recovery_options())
                .unwrap_or_else(|e| panic!("template open: {e}"));
            for seq in 1..=records {
                let got = e
                    .append(&template_payload(seq))
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(got, seq);
            }
            e.sync().unwrap_or_else(|e| panic!("{e}"));
            if checkpoint {
                e.checkpoint(Some(2), "template")
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            drop(e);
            let mut files = Vec::new();
            capture(&dir, &dir, &mut files);
            files.sort();
            files
        };
        let a = build("a", 0, false);
        let b = build("b", 5, false);
        let c = build("c", 5, true);
        let seg1 = PathBuf::from("wal").join(segment_file_name(1));
        let committed = c.iter().find(|(p, _)| *p == seg1).map(|(_, b)| b.clone());
        assert!(committed.is_some(), "template C has no segment 1");
        let d: Vec<_> = c.iter().filter(|(p, _)| *p != seg1).cloned().collect();
        [
            Template {
                files: a,
                next: 1,
                committed: None,
            },
            Template {
                files: b,
                next: 6,
                committed: None,
            },
            Template {
                files: c,
                next: 6,
                committed: committed.clone(),
            },
            Template {
                files: d,
                next: 1,
                committed,
            },
        ]
    })
}

/// The first seq the file name of the fuzzed segment says, per 3 bits.
fn pick_name(choice: u8, next: u64, seg: &[u8]) -> u64 {
    let from_header = || {
        seg.get(8..16)
            .map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_le_bytes(a)
            })
            .unwrap_or(next)
    };
    match choice & 7 {
        0 | 1 => next,
        2 => from_header(),
        3 => 0,
        4 => next + 1,
        5 => next.saturating_sub(1),
        6 => u64::MAX,
        _ => u64::MAX - 1,
    }
}

/// Records of every segment recovery is responsible for (from the one
/// holding `chunked_through + 1`), walked with CRC checks; after a
/// successful open they must be whole, with contiguous seqs, and the
/// segments must follow one another.
/// Also returns the seq after the last record (a gap record's last), if
/// any segment was walked.
fn walk_recovered(wal: &Path, chunked_through: u64) -> (BTreeMap<u64, Vec<u8>>, Option<u64>) {
    let segs = list_segments(wal).unwrap_or_else(|e| panic!("{e}"));
    let mut out = BTreeMap::new();
    let Some(start) = segs
        .iter()
        .rposition(|&s| s <= chunked_through.saturating_add(1))
    else {
        assert!(
            segs.is_empty(),
            "open accepted segments {segs:?} that start after the checkpoint"
        );
        return (out, None);
    };
    let mut expect = segs[start];
    for &seg in &segs[start..] {
        assert_eq!(seg, expect, "open accepted a gap before segment {seg}");
        let bytes =
            std::fs::read(wal.join(segment_file_name(seg))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            parse_segment_header(&bytes),
            Ok(seg),
            "segment {seg} header after open"
        );
        let mut off = SEGMENT_HEADER_LEN;
        let version = version_of(&bytes);
        loop {
            match parse_record(&bytes, off, Some(expect), true, version) {
                Step::Record(r) => {
                    if !r.gap {
                        out.insert(r.seq, r.payload.to_vec());
                    }
                    off = r.end;
                    expect = r
                        .last
                        .checked_add(1)
                        .unwrap_or_else(|| panic!("open accepted a record with seq u64::MAX"));
                }
                Step::End => break,
                Step::Bad(why) => panic!("segment {seg} still bad at {off} after open: {why}"),
            }
        }
    }
    (out, Some(expect))
}

fn head_meta(e: &Engine) -> (u64, u64) {
    let Some(head) = e.head().unwrap_or_else(|err| panic!("head: {err}")) else {
        return (0, 0);
    };
    let obj = e
        .repo()
        .objects()
        .get(&head)
        .unwrap_or_else(|err| panic!("{err}"));
    let c = obj.commit().unwrap_or_else(|err| panic!("{err}"));
    let applied = c.meta_u64("wal.applied_seq").unwrap_or(0);
    (applied, c.meta_u64("wal.last_seq").unwrap_or(applied))
}

/// WAL recovery: a data directory from one of four templates gets the
/// fuzzed bytes as a segment file (normally its last), then `Engine::open`
/// either fails cleanly or succeeds; on success the WAL is whole from the
/// head's chunks on, `replay_head` yields exactly the records after the
/// head's applied seq with their exact bytes (an error is allowed only when
/// the bytes under the head's chunk were really changed or removed), the
/// log continues at the next seq, and a second open finds nothing to
/// repair.
///
/// Input: flags (bits 0-1 template, 2-4 file name, 5-7 fix-ups), then the
/// segment bytes.
pub fn wal_recovery(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let template = &templates()[usize::from(flags & 3)];
    let mut seg = rest.to_vec();
    let name = pick_name(flags >> 2, template.next, &seg);
    fix_up(&mut seg, flags >> 5, name);

    let tmp = super::scratch::tempdir("recovery");
    let dir = tmp.path();
    for (rel, bytes) in &template.files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    let wal = dir.join("wal");
    std::fs::create_dir_all(&wal).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(wal.join(segment_file_name(name)), &seg).unwrap_or_else(|e| panic!("{e}"));

    let Ok(engine) = Engine::open(dir, recovery_options()) else {
        return;
    };
    let (applied, chunked_through) = head_meta(&engine);
    let (on_disk, next_on_disk) = walk_recovered(&wal, chunked_through);
    // Replay reads records up to the head's `wal.last_seq` through its
    // chunks (so, in the templates with a checkpoint, the template's own
    // records) and the rest from the segments.
    let want: Vec<(u64, Vec<u8>)> = if template.committed.is_some() {
        (applied + 1..=chunked_through)
            .map(|s| (s, template_payload(s)))
            .chain(
                on_disk
                    .range(chunked_through + 1..)
                    .map(|(s, p)| (*s, p.clone())),
            )
            .collect()
    } else {
        on_disk
            .range(applied + 1..)
            .map(|(s, p)| (*s, p.clone()))
            .collect()
    };
    let committed_intact = template.committed.as_ref().is_none_or(|c| {
        std::fs::read(wal.join(segment_file_name(1)))
            .is_ok_and(|now| now.len() >= c.len() && now[..c.len()] == c[..])
    });
    let replay = engine
        .replay_head()
        .unwrap_or_else(|e| panic!("replay_head after a successful open: {e}"));
    let (got, err) = drain(replay);
    if let Some(e) = err {
        assert!(
            !committed_intact && matches!(e, Error::ChunkMismatch { .. } | Error::Wal(_)),
            "replay_head failed after a successful open: {e}"
        );
        return;
    }
    // Seqs increase from the head's applied seq; they are contiguous but
    // for seqs a gap record gave up.
    let mut prev = applied;
    for (seq, _) in &got {
        assert!(
            *seq > prev,
            "replay seqs do not increase: {seq} after {prev}"
        );
        prev = *seq;
    }
    // Even when segment 1 was replaced: a replay that succeeds verified the
    // chunk's BLAKE3, so it read the committed bytes.
    assert_eq!(got, want, "replay_head differs from the recovered segments");
    let next = engine.wal().next_seq();
    let last = got.last().map_or(applied, |(s, _)| *s);
    assert_eq!(
        next,
        next_on_disk.unwrap_or(last + 1).max(last + 1),
        "the log does not continue after its last record (or gap)"
    );

    // The repaired log takes appends and reopens without further repair.
    let Ok(seq) = engine.append(b"after recovery") else {
        // Only the end of the seq space refuses an append.
        assert!(next >= u64::MAX - 1, "append refused at seq {next}");
        return;
    };
    assert_eq!(seq, next);
    engine.sync().unwrap_or_else(|e| panic!("sync: {e}"));
    drop(engine);
    let again = Engine::open(dir, recovery_options())
        .unwrap_or_else(|e| panic!("second open after a successful one: {e}"));
    assert!(
        !again.open_report().repaired(),
        "second open repaired again: {:?}",
        again.open_report()
    );
    let (got2, err2) = drain(
        again
            .replay_head()
            .unwrap_or_else(|e| panic!("replay_head after reopen: {e}")),
    );
    assert!(err2.is_none(), "replay after reopen: {err2:?}");
    let mut expected2 = got;
    expected2.push((seq, b"after recovery".to_vec()));
    assert_eq!(got2, expected2, "replay after append and reopen");
}
