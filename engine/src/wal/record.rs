//! WAL segment and record framing.
//!
//! Segment header (16 bytes):
//! ```text
//! offset size field
//!      0    4 magic "SYWL"
//!      4    1 version = 1
//!      5    3 reserved, 0
//!      8    8 first seq, u64 LE (equals the number in the file name)
//! ```
//! Record (16-byte header + payload):
//! ```text
//! offset size field
//!      0    4 payload length, u32 LE
//!      4    4 CRC32 (IEEE) of (seq as u64 LE || payload), u32 LE
//!      8    8 seq, u64 LE
//!     16    n payload
//! ```

/// Segment magic.
pub const SEGMENT_MAGIC: [u8; 4] = *b"SYWL";
/// Segment format version.
pub const SEGMENT_VERSION: u8 = 1;
const SEG_OFF_VERSION: usize = SEGMENT_MAGIC.len();
const SEG_OFF_RESERVED: usize = SEG_OFF_VERSION + 1;
const SEG_OFF_FIRST_SEQ: usize = SEG_OFF_RESERVED + 3;
/// Segment header length: 16.
pub const SEGMENT_HEADER_LEN: usize = SEG_OFF_FIRST_SEQ + size_of::<u64>();

const REC_OFF_CRC: usize = size_of::<u32>();
const REC_OFF_SEQ: usize = REC_OFF_CRC + size_of::<u32>();
/// Record header length: 16.
pub const RECORD_HEADER_LEN: usize = REC_OFF_SEQ + size_of::<u64>();

/// The 16 header bytes of a segment starting at `first_seq`.
pub fn segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..SEG_OFF_VERSION].copy_from_slice(&SEGMENT_MAGIC);
    h[SEG_OFF_VERSION] = SEGMENT_VERSION;
    h[SEG_OFF_FIRST_SEQ..].copy_from_slice(&first_seq.to_le_bytes());
    h
}

/// Parse a segment header; returns its first seq.
pub fn parse_segment_header(b: &[u8]) -> Result<u64, String> {
    if b.len() < SEGMENT_HEADER_LEN {
        return Err(format!(
            "segment is {} bytes, shorter than its {SEGMENT_HEADER_LEN}-byte header",
            b.len()
        ));
    }
    if b[..SEG_OFF_VERSION] != SEGMENT_MAGIC {
        return Err(format!("bad segment magic {:02x?}", &b[..4]));
    }
    if b[SEG_OFF_VERSION] != SEGMENT_VERSION {
        return Err(format!(
            "unsupported segment version {}",
            b[SEG_OFF_VERSION]
        ));
    }
    if b[SEG_OFF_RESERVED..SEG_OFF_FIRST_SEQ] != [0, 0, 0] {
        return Err("reserved header bytes are not zero".into());
    }
    Ok(u64_at(b, SEG_OFF_FIRST_SEQ))
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

/// CRC32 of `seq LE || payload`.
pub fn record_crc(seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Append one framed record to `out`.
pub fn encode_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&record_crc(seq, payload).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// The framed size of a payload of `len` bytes.
pub fn framed_len(len: usize) -> usize {
    RECORD_HEADER_LEN + len
}

/// One record parsed from a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// Its seq.
    pub seq: u64,
    /// Its payload.
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

/// Parse the record at `off`. `expect_seq` checks contiguity; `verify_crc`
/// may be false when the bytes were already verified as a whole (a chunk).
pub fn parse_record(buf: &[u8], off: usize, expect_seq: Option<u64>, verify_crc: bool) -> Step<'_> {
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
    let len = u32_at(rest, 0) as usize;
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
        let actual = record_crc(seq, payload);
        if actual != crc {
            return Step::Bad(format!(
                "record seq {seq}: CRC mismatch (stored {crc:08x}, computed {actual:08x})"
            ));
        }
    }
    Step::Record(Parsed {
        seq,
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
pub fn valid_record_after(buf: &[u8], from: usize, expect: u64) -> Option<(usize, u64)> {
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
        if let Step::Record(r) = parse_record(buf, off, None, true) {
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
    let digits = name.strip_suffix(".wal")?;
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
        let Step::Record(r) = parse_record(&buf, 0, Some(7), true) else {
            panic!()
        };
        assert_eq!((r.seq, r.payload, r.end), (7, &b"hello"[..], 21));
        let Step::Record(r2) = parse_record(&buf, r.end, Some(8), true) else {
            panic!()
        };
        assert_eq!(parse_record(&buf, r2.end, Some(9), true), Step::End);
        assert!(matches!(parse_record(&buf, 0, Some(6), true), Step::Bad(_)));
        for i in 0..21 {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            assert!(
                !matches!(parse_record(&b, 0, Some(7), true), Step::Record(p) if p.payload == b"hello" && p.end == 21),
                "flip {i}"
            );
        }
        assert!(matches!(
            parse_record(&buf[..20], 0, None, true),
            Step::Bad(_)
        ));
        assert_eq!(segment_file_name(42), "00000000000000000042.wal");
        assert_eq!(
            parse_segment_file_name("00000000000000000042.wal"),
            Some(42)
        );
        assert_eq!(parse_segment_file_name("42.wal"), None);
        assert_eq!(parse_segment_header(&segment_header(9)), Ok(9));
    }
}
