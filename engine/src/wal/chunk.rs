//! Chunk descriptors: a blob that commits to one durable byte range of one
//! WAL segment, so a commit commits to the WAL bytes themselves.
//!
//! Chunk blob payload (92 bytes):
//! ```text
//! offset size field
//!      0    4 magic "SYCK"
//!      4    1 version = 1
//!      5    3 reserved, 0
//!      8    8 segment first seq, u64 LE (names the segment file)
//!     16    8 start offset in the segment, u64 LE (first byte of the first record)
//!     24    8 end offset, u64 LE (one past the last byte of the last record)
//!     32    8 first seq, u64 LE
//!     40    8 last seq, u64 LE
//!     48    8 record count, u64 LE (= last - first + 1)
//!     56    4 CRC32 (IEEE) of segment bytes [start, end), u32 LE
//!     60   32 BLAKE3-256 of segment bytes [start, end)
//! ```

use sydra_objects::decode::{Cursor, DecodeError, What};

const MAGIC: [u8; 4] = *b"SYCK";
const VERSION: u8 = 1;
/// Encoded length.
pub const CHUNK_LEN: usize = 4 + 1 + 3 + 6 * 8 + 4 + 32;

/// One durable range of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// First seq of the segment (its file name).
    pub segment: u64,
    /// Byte range in the segment file.
    pub start: u64,
    /// End of the range (exclusive).
    pub end: u64,
    /// First record's seq.
    pub first_seq: u64,
    /// Last record's seq.
    pub last_seq: u64,
    /// Records in the range.
    pub count: u64,
    /// CRC32 of the range.
    pub crc32: u32,
    /// BLAKE3 of the range.
    pub blake3: [u8; 32],
}

impl Chunk {
    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHUNK_LEN);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&[0, 0, 0]);
        for v in [
            self.segment,
            self.start,
            self.end,
            self.first_seq,
            self.last_seq,
            self.count,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.crc32.to_le_bytes());
        out.extend_from_slice(&self.blake3);
        out
    }

    /// Strict decoding: magic, version, reserved bytes, and consistency of
    /// the ranges (`start < end`, `first <= last`, `count = last - first + 1`,
    /// `first >= segment`).
    pub fn decode(b: &[u8]) -> Result<Chunk, DecodeError> {
        let mut c = Cursor::new(b, What::Other("WAL chunk"));
        if c.array::<4>("magic")? != MAGIC {
            return Err(c.err_at(0, "bad magic (expected \"SYCK\")"));
        }
        let v = c.u8("version")?;
        if v != VERSION {
            return Err(c.err_at(4, format!("unsupported version {v}")));
        }
        if c.array::<3>("reserved")? != [0, 0, 0] {
            return Err(c.err_at(5, "reserved bytes are not zero"));
        }
        let segment = c.u64("segment")?;
        let start = c.u64("start offset")?;
        let end = c.u64("end offset")?;
        let first_seq = c.u64("first seq")?;
        let last_seq = c.u64("last seq")?;
        let count = c.u64("count")?;
        let crc32 = c.u32("crc32")?;
        let blake3 = c.array::<32>("blake3")?;
        c.finish()?;
        let err = |reason: String| DecodeError {
            what: What::Other("WAL chunk"),
            offset: 8,
            reason,
        };
        if start >= end {
            return Err(err(format!("empty or inverted range {start}..{end}")));
        }
        // Checked: `last - first + 1` overflows for first 0, last u64::MAX.
        let span = last_seq
            .checked_sub(first_seq)
            .and_then(|d| d.checked_add(1));
        if first_seq < segment || span != Some(count) {
            return Err(err(format!(
                "inconsistent seqs: segment {segment}, first {first_seq}, last {last_seq}, count {count}"
            )));
        }
        Ok(Chunk {
            segment,
            start,
            end,
            first_seq,
            last_seq,
            count,
            crc32,
            blake3,
        })
    }

    /// Check `bytes` (the segment's [start, end)) against the hashes.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), String> {
        let mut d = RangeDigest::default();
        d.update(bytes);
        self.matches(&d)
    }

    /// Check a digest of the range's bytes (fed as they streamed past)
    /// against the chunk: length, CRC32, BLAKE3.
    pub fn matches(&self, d: &RangeDigest) -> Result<(), String> {
        self.check_len(d.len)?;
        self.check_crc(d.crc.clone().finalize())?;
        if *d.b3.finalize().as_bytes() != self.blake3 {
            return Err(format!("BLAKE3 mismatch over {}..{}", self.start, self.end));
        }
        Ok(())
    }

    /// [`Chunk::verify`] without the BLAKE3: the length and the CRC32, for
    /// a sender whose receiver recomputes the BLAKE3 (DECISIONS 63).
    pub fn verify_crc(&self, bytes: &[u8]) -> Result<(), String> {
        self.check_len(bytes.len() as u64)?;
        self.check_crc(crc32fast::hash(bytes))
    }

    fn check_crc(&self, crc: u32) -> Result<(), String> {
        if crc != self.crc32 {
            return Err(format!(
                "CRC32 mismatch over {}..{} (stored {:08x}, computed {crc:08x})",
                self.start, self.end, self.crc32
            ));
        }
        Ok(())
    }

    fn check_len(&self, len: u64) -> Result<(), String> {
        if len != self.end - self.start {
            return Err(format!(
                "range {}..{} needs {} bytes, the segment holds {len}",
                self.start,
                self.end,
                self.end - self.start,
            ));
        }
        Ok(())
    }
}

/// The length, CRC32 and BLAKE3 of a range's bytes, fed block by block
/// (both hashes while the block is in cache); see [`Chunk::matches`].
#[derive(Debug, Clone, Default)]
pub struct RangeDigest {
    len: u64,
    crc: crc32fast::Hasher,
    b3: blake3::Hasher,
}

impl RangeDigest {
    /// Feed the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for block in bytes.chunks(256 * 1024) {
            self.crc.update(block);
            self.b3.update(block);
        }
        self.len += bytes.len() as u64;
    }
}

/// Hashes a segment's bytes as they are written, from the last cut.
#[derive(Debug, Clone)]
pub struct ChunkHasher {
    segment: u64,
    start: u64,
    end: u64,
    first_seq: u64,
    last_seq: u64,
    count: u64,
    crc: crc32fast::Hasher,
    blake3: blake3::Hasher,
}

impl ChunkHasher {
    /// Start hashing `segment` at byte `offset`.
    pub fn new(segment: u64, offset: u64) -> Self {
        ChunkHasher {
            segment,
            start: offset,
            end: offset,
            first_seq: 0,
            last_seq: 0,
            count: 0,
            crc: crc32fast::Hasher::new(),
            blake3: blake3::Hasher::new(),
        }
    }

    /// The segment hashed.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Feed whole records `first..=last` whose framed bytes are `bytes`,
    /// written at the current end.
    pub fn update(&mut self, bytes: &[u8], first: u64, last: u64) {
        if bytes.is_empty() {
            return;
        }
        if self.count == 0 {
            self.first_seq = first;
        }
        self.last_seq = last;
        self.count += last - first + 1;
        self.end += bytes.len() as u64;
        self.crc.update(bytes);
        self.blake3.update(bytes);
    }

    /// The chunk so far (if any record was fed), restarting at the current end.
    pub fn cut(&mut self) -> Option<Chunk> {
        if self.count == 0 {
            return None;
        }
        let chunk = Chunk {
            segment: self.segment,
            start: self.start,
            end: self.end,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            count: self.count,
            crc32: self.crc.clone().finalize(),
            blake3: *self.blake3.finalize().as_bytes(),
        };
        *self = ChunkHasher::new(self.segment, self.end);
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        let mut h = ChunkHasher::new(5, 16);
        h.update(b"abcdefgh", 5, 6);
        h.update(b"ij", 7, 7);
        let c = h.cut().unwrap();
        assert_eq!(
            (c.start, c.end, c.first_seq, c.last_seq, c.count),
            (16, 26, 5, 7, 3)
        );
        assert!(c.verify(b"abcdefghij").is_ok());
        assert!(c.verify(b"abcdefghiX").is_err());
        let bytes = c.encode();
        assert_eq!(bytes.len(), CHUNK_LEN);
        assert_eq!(Chunk::decode(&bytes).unwrap(), c);
        assert!(h.cut().is_none());
        let mut bad = bytes.clone();
        bad[48] = 9; // count
        assert!(Chunk::decode(&bad).is_err());
        assert!(Chunk::decode(&bytes[..50]).is_err());
    }
}
