//! WAL segment and record framing.
//!
//! Segment header (16 bytes):
//! ```text
//! offset size field
//!      0    4 magic "SYWL"
//!      4    1 version: 2 (written), 1 (still read)
//!      5    3 reserved, 0
//!      8    8 first seq, u64 LE (equals the number in the file name)
//! ```
//! Record (16-byte header + payload), version 2:
//! ```text
//! offset size field
//!      0    4 length word, u32 LE: bits 0-30 payload length n,
//!             bit 31 set = a gap record
//!      4    4 CRC32 (IEEE) of (length word LE || seq LE || payload), u32 LE
//!      8    8 seq, u64 LE
//!     16    n payload
//! ```
//! A gap record has an 8-byte payload, the last seq it stands for (u64 LE,
//! at least its own seq): `sydra wal repair` writes one for the seqs it gave
//! up, so that they are never assigned again. It yields no record.
//!
//! Version 1 records have the same layout, but the length word is all
//! length (no gap records) and the CRC covers only (seq LE || payload), so
//! a damaged length field was caught only through the payload it framed.

/// Segment magic.
pub const SEGMENT_MAGIC: [u8; 4] = *b"SYWL";
/// The segment format version written.
pub const SEGMENT_VERSION: u8 = 2;
/// The first segment format version, still read (and appended to never:
/// the writer starts a new segment rather than append to one).
pub const SEGMENT_VERSION_1: u8 = 1;
const SEG_OFF_VERSION: usize = SEGMENT_MAGIC.len();
const SEG_OFF_RESERVED: usize = SEG_OFF_VERSION + 1;
const SEG_OFF_FIRST_SEQ: usize = SEG_OFF_RESERVED + 3;
/// Segment header length: 16.
pub const SEGMENT_HEADER_LEN: usize = SEG_OFF_FIRST_SEQ + size_of::<u64>();

const REC_OFF_CRC: usize = size_of::<u32>();
const REC_OFF_SEQ: usize = REC_OFF_CRC + size_of::<u32>();
/// Record header length: 16.
pub const RECORD_HEADER_LEN: usize = REC_OFF_SEQ + size_of::<u64>();
/// Version 2: the bit of the length word that marks a gap record.
pub const GAP_FLAG: u32 = 1 << 31;
/// Version 2: the largest payload a length word can hold.
pub const MAX_PAYLOAD: usize = (GAP_FLAG - 1) as usize;
/// The payload length of a gap record.
pub const GAP_PAYLOAD_LEN: usize = size_of::<u64>();

/// The 16 header bytes of a segment starting at `first_seq`, in the
/// version written.
pub fn segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    segment_header_version(SEGMENT_VERSION, first_seq)
}

/// The 16 header bytes of a segment of `version` (for tests of old
/// formats; the writer uses [`segment_header`]).
pub fn segment_header_version(version: u8, first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..SEG_OFF_VERSION].copy_from_slice(&SEGMENT_MAGIC);
    h[SEG_OFF_VERSION] = version;
    h[SEG_OFF_FIRST_SEQ..].copy_from_slice(&first_seq.to_le_bytes());
    h
}

/// Parse a segment header; returns its first seq.
pub fn parse_segment_header(b: &[u8]) -> Result<u64, String> {
    parse_segment_header_version(b).map(|(first, _)| first)
}

/// Parse a segment header; returns its first seq and its version.
pub fn parse_segment_header_version(b: &[u8]) -> Result<(u64, u8), String> {
    if b.len() < SEGMENT_HEADER_LEN {
        return Err(format!(
            "segment is {} bytes, shorter than its {SEGMENT_HEADER_LEN}-byte header",
            b.len()
        ));
    }
    if b[..SEG_OFF_VERSION] != SEGMENT_MAGIC {
        return Err(format!("bad segment magic {:02x?}", &b[..4]));
    }
    let version = b[SEG_OFF_VERSION];
    if version != SEGMENT_VERSION && version != SEGMENT_VERSION_1 {
        return Err(format!(
            "unsupported segment version {version} (this build reads 1 and 2)"
        ));
    }
    if b[SEG_OFF_RESERVED..SEG_OFF_FIRST_SEQ] != [0, 0, 0] {
        return Err("reserved header bytes are not zero".into());
    }
    Ok((u64_at(b, SEG_OFF_FIRST_SEQ), version))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

/// The CRC a record of `version` stores: version 2 covers the length word,
/// the seq and the payload; version 1 the seq and the payload.
pub fn record_crc(version: u8, len_word: u32, seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    if version != SEGMENT_VERSION_1 {
        h.update(&len_word.to_le_bytes());
    }
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn encode_framed(out: &mut Vec<u8>, version: u8, len_word: u32, seq: u64, payload: &[u8]) {
    out.extend_from_slice(&len_word.to_le_bytes());
    out.extend_from_slice(&record_crc(version, len_word, seq, payload).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Append one framed record (version 2) to `out`. The payload must be at
/// most [`MAX_PAYLOAD`] bytes (the writer refuses larger ones first).
pub fn encode_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX) & !GAP_FLAG;
    encode_framed(out, SEGMENT_VERSION, len, seq, payload);
}

/// Append one framed record of `version` (for tests of old formats and for
/// re-encoding what was parsed).
pub fn encode_record_version(out: &mut Vec<u8>, version: u8, seq: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let len = if version == SEGMENT_VERSION_1 {
        len
    } else {
        len & !GAP_FLAG
    };
    encode_framed(out, version, len, seq, payload);
}

/// Append a gap record (version 2) standing for seqs `first..=last`.
pub fn encode_gap(out: &mut Vec<u8>, first: u64, last: u64) {
    let len = GAP_FLAG | GAP_PAYLOAD_LEN as u32;
    encode_framed(out, SEGMENT_VERSION, len, first, &last.to_le_bytes());
}

/// The framed size of a payload of `len` bytes.
pub fn framed_len(len: usize) -> usize {
    RECORD_HEADER_LEN + len
}

/// One record parsed from a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// Its seq (a gap record's first seq).
    pub seq: u64,
    /// The last seq it stands for: `seq`, or a gap record's last.
    pub last: u64,
    /// A gap record: seqs `seq..=last` were given up; nothing to yield.
    pub gap: bool,
    /// Its payload (a gap record's: the last seq, LE).
    pub payload: &'a [u8],
    /// Offset just past it.
    pub end: usize,
}

/// Outcome of parsing at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'a> {
    /// A valid record.
    Record(Parsed<'a>),
    /// Exactly at the end of the bytes.
    End,
    /// Not a valid record here (the reason says why).
    Bad(String),
}

/// Parse the record at `off` of a segment of `version`. `expect_seq`
/// checks contiguity; `verify_crc` may be false when the bytes were already
/// verified as a whole (a chunk).
pub fn parse_record(
    buf: &[u8],
    off: usize,
    expect_seq: Option<u64>,
    verify_crc: bool,
    version: u8,
) -> Step<'_> {
    if off == buf.len() {
        return Step::End;
    }
    let Some(rest) = buf.get(off..) else {
        return Step::Bad(format!("offset {off} is past the end ({})", buf.len()));
    };
    if rest.len() < RECORD_HEADER_LEN {
        return Step::Bad(format!(
            "{} bytes left, less than a record header",
            rest.len()
        ));
    }
    let len_word = u32_at(rest, 0);
    let gap = version != SEGMENT_VERSION_1 && len_word & GAP_FLAG != 0;
    let len = if version == SEGMENT_VERSION_1 {
        len_word
    } else {
        len_word & !GAP_FLAG
    } as usize;
    let crc = u32_at(rest, REC_OFF_CRC);
    let seq = u64_at(rest, REC_OFF_SEQ);
    if let Some(want) = expect_seq
        && seq != want
    {
        return Step::Bad(format!("record has seq {seq}, expected {want}"));
    }
    let Some(payload) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) else {
        return Step::Bad(format!(
            "record seq {seq} claims {len} payload bytes but only {} remain",
            rest.len() - RECORD_HEADER_LEN
        ));
    };
    if verify_crc {
        let actual = record_crc(version, len_word, seq, payload);
        if actual != crc {
            return Step::Bad(format!(
                "record seq {seq}: CRC mismatch (stored {crc:08x}, computed {actual:08x})"
            ));
        }
    }
    let mut last = seq;
    if gap {
        if payload.len() != GAP_PAYLOAD_LEN {
            return Step::Bad(format!(
                "gap record seq {seq} has a {}-byte payload, not {GAP_PAYLOAD_LEN}",
                payload.len()
            ));
        }
        last = u64_at(payload, 0);
        // Seqs are counted up from 1 and never near the top of u64.
        if last < seq || last >= u64::MAX / 2 {
            return Step::Bad(format!("gap record seq {seq} claims to end at seq {last}"));
        }
    }
    Step::Record(Parsed {
        seq,
        last,
        gap,
        payload,
        end: off + RECORD_HEADER_LEN + len,
    })
}

/// The first whole, CRC-valid record at or after `from` that could belong
/// to this log: its offset and seq. `from` is where parsing failed while
/// expecting seq `expect`.
///
/// This is what tells a torn tail from corruption. A crash can only tear the
/// end of the log: every byte from the first bad one to the end of the file
/// is a partial record, garbage or zeros, so no valid record can follow.
/// A valid record after bad bytes means acknowledged records were damaged.
///
/// A candidate at `from` itself may have any seq but 0 (a whole, CRC-valid
/// record with the wrong seq is not something a crash writes); a candidate
/// further on needs a seq from `expect` up to what the bytes in between
/// could hold (every record takes at least a header), which keeps payload
/// bytes that merely look like a header from counting.
pub fn valid_record_after(
    buf: &[u8],
    from: usize,
    expect: u64,
    version: u8,
) -> Option<(usize, u64)> {
    let last = buf.len().checked_sub(RECORD_HEADER_LEN)?;
    for off in from..=last {
        let seq = u64_at(buf, off + REC_OFF_SEQ);
        let plausible = if off == from {
            seq != 0
        } else {
            let room = ((off - from) / RECORD_HEADER_LEN) as u64;
            seq >= expect && seq <= expect.saturating_add(room)
        };
        if !plausible {
            continue;
        }
        if let Step::Record(r) = parse_record(buf, off, None, true, version) {
            return Some((off, r.seq));
        }
    }
    None
}

/// The file name of the segment whose first record is `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

/// Parse a segment file name back to its first seq.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    parse_seq_name(name.strip_suffix(".wal")?)
}

/// Parse the 20-digit decimal form a seq takes in every name (segment
/// files, `wal/index/<segment>/<chunk>` tree entries): exactly 20 ASCII
/// digits, so each seq has one name and `+1`, ` 1` or a shorter spelling
/// is not a seq.
pub fn parse_seq_name(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_damage() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, b"hello");
        encode_record(&mut buf, 8, b"");
        let v = SEGMENT_VERSION;
        let Step::Record(r) = parse_record(&buf, 0, Some(7), true, v) else {
            panic!()
        };
        assert_eq!((r.seq, r.payload, r.end), (7, &b"hello"[..], 21));
        let Step::Record(r2) = parse_record(&buf, r.end, Some(8), true, v) else {
            panic!()
        };
        assert_eq!(parse_record(&buf, r2.end, Some(9), true, v), Step::End);
        assert!(matches!(
            parse_record(&buf, 0, Some(6), true, v),
            Step::Bad(_)
        ));
        for i in 0..21 {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            assert!(
                !matches!(parse_record(&b, 0, Some(7), true, v), Step::Record(p) if p.payload == b"hello" && p.end == 21),
                "flip {i}"
            );
        }
        assert!(matches!(
            parse_record(&buf[..20], 0, None, true, v),
            Step::Bad(_)
        ));
        assert_eq!(segment_file_name(42), "00000000000000000042.wal");
        assert_eq!(
            parse_segment_file_name("00000000000000000042.wal"),
            Some(42)
        );
        assert_eq!(parse_segment_file_name("42.wal"), None);
        assert_eq!(parse_segment_header(&segment_header(9)), Ok(9));
        assert_eq!(
            parse_segment_header_version(&segment_header_version(1, 9)),
            Ok((9, 1))
        );
        assert!(parse_segment_header(&segment_header_version(3, 9)).is_err());
    }

    #[test]
    fn version_2_crc_covers_the_length_word_and_gap_records_round_trip() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, b"hello");
        // Every single-bit flip of the length word is caught by the CRC (or
        // the framing), never read as another record.
        for bit in 0..32 {
            let mut b = buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(
                    parse_record(&b, 0, None, true, SEGMENT_VERSION),
                    Step::Record(_)
                ),
                "bit {bit}"
            );
        }
        let mut gap = Vec::new();
        encode_gap(&mut gap, 150, 1100);
        let Step::Record(g) = parse_record(&gap, 0, Some(150), true, SEGMENT_VERSION) else {
            panic!()
        };
        assert!(g.gap && g.seq == 150 && g.last == 1100 && g.end == gap.len());
        // In a version 1 segment the same bytes are a (bad) 2 GiB record.
        assert!(matches!(
            parse_record(&gap, 0, Some(150), true, SEGMENT_VERSION_1),
            Step::Bad(_)
        ));
        // A version 1 record reads back under version 1 only.
        let mut v1 = Vec::new();
        encode_record_version(&mut v1, SEGMENT_VERSION_1, 3, b"old");
        assert!(matches!(
            parse_record(&v1, 0, Some(3), true, SEGMENT_VERSION_1),
            Step::Record(p) if p.payload == b"old" && !p.gap
        ));
        assert!(matches!(
            parse_record(&v1, 0, Some(3), true, SEGMENT_VERSION),
            Step::Bad(_)
        ));
    }
}
