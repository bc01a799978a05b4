//! The loose object file: a 56-byte header, the stored payload, a CRC32.
//!
//! ```text
//! offset size field
//!      0    4 magic "SYOB"
//!      4    1 format version = 1
//!      5    1 kind (1 blob, 2 tree, 3 commit)
//!      6    1 codec (0 = raw; others reserved)
//!      7    1 reserved = 0
//!      8    8 payload length, u64 LE (logical)
//!     16   32 object id
//!     48    8 stored length, u64 LE (= payload length for codec 0)
//!     56    n stored payload
//!   56+n    4 CRC32 (IEEE) of bytes [0, 56+n), u32 LE
//! ```

use std::ops::Range;

use crate::{Kind, ObjectId};

/// File magic.
pub const MAGIC: [u8; 4] = *b"SYOB";
/// Format version written and accepted.
pub const VERSION: u8 = 1;
/// The only codec of format v1: bytes stored as they are.
pub const CODEC_RAW: u8 = 0;

const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = OFF_MAGIC + MAGIC.len();
const OFF_KIND: usize = OFF_VERSION + 1;
const OFF_CODEC: usize = OFF_KIND + 1;
const OFF_RESERVED: usize = OFF_CODEC + 1;
const OFF_PAYLOAD_LEN: usize = OFF_RESERVED + 1;
const OFF_ID: usize = OFF_PAYLOAD_LEN + size_of::<u64>();
const OFF_STORED_LEN: usize = OFF_ID + ObjectId::LEN;
/// Header length: 56.
pub const HEADER_LEN: usize = OFF_STORED_LEN + size_of::<u64>();
/// Trailer length (the CRC32): 4.
pub const TRAILER_LEN: usize = size_of::<u32>();
/// The smallest valid file: an empty payload.
pub const MIN_FILE_LEN: usize = HEADER_LEN + TRAILER_LEN;

/// A decoded, validated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Object kind.
    pub kind: Kind,
    /// Logical payload length.
    pub payload_len: u64,
    /// The id recorded in the file.
    pub id: ObjectId,
    /// Bytes stored after the header (= payload length for codec 0).
    pub stored_len: u64,
}

impl Header {
    /// A raw-codec header for a payload of `len` bytes.
    pub fn raw(kind: Kind, len: u64, id: ObjectId) -> Self {
        Header {
            kind,
            payload_len: len,
            id,
            stored_len: len,
        }
    }

    /// The 56 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[OFF_MAGIC..OFF_VERSION].copy_from_slice(&MAGIC);
        h[OFF_VERSION] = VERSION;
        h[OFF_KIND] = self.kind.code();
        h[OFF_CODEC] = CODEC_RAW;
        h[OFF_RESERVED] = 0;
        h[OFF_PAYLOAD_LEN..OFF_ID].copy_from_slice(&self.payload_len.to_le_bytes());
        h[OFF_ID..OFF_STORED_LEN].copy_from_slice(self.id.as_bytes());
        h[OFF_STORED_LEN..HEADER_LEN].copy_from_slice(&self.stored_len.to_le_bytes());
        h
    }

    /// Parse and validate the fixed fields. The reason string says which
    /// check failed.
    pub fn decode(h: &[u8; HEADER_LEN]) -> Result<Header, String> {
        if h[OFF_MAGIC..OFF_VERSION] != MAGIC {
            return Err(format!("bad magic {:02x?} (expected \"SYOB\")", &h[..4]));
        }
        if h[OFF_VERSION] != VERSION {
            return Err(format!("unsupported format version {}", h[OFF_VERSION]));
        }
        let kind = Kind::from_code(h[OFF_KIND])
            .ok_or_else(|| format!("unknown kind byte {}", h[OFF_KIND]))?;
        if h[OFF_CODEC] != CODEC_RAW {
            return Err(format!("unknown codec {}", h[OFF_CODEC]));
        }
        if h[OFF_RESERVED] != 0 {
            return Err(format!("reserved byte is {}, not 0", h[OFF_RESERVED]));
        }
        let payload_len = read_u64(&h[OFF_PAYLOAD_LEN..OFF_ID]);
        let stored_len = read_u64(&h[OFF_STORED_LEN..HEADER_LEN]);
        if stored_len != payload_len {
            return Err(format!(
                "stored length {stored_len} differs from payload length {payload_len} for the raw codec"
            ));
        }
        let id = ObjectId::from_slice(&h[OFF_ID..OFF_STORED_LEN])
            .ok_or_else(|| "header id field has the wrong size".to_owned())?;
        Ok(Header {
            kind,
            payload_len,
            id,
            stored_len,
        })
    }

    /// The exact length of a file holding this header; `None` on overflow.
    pub fn file_len(&self) -> Option<u64> {
        self.stored_len
            .checked_add((HEADER_LEN + TRAILER_LEN) as u64)
    }

    /// Check the header against the id the file is stored under and the
    /// file's actual length.
    pub fn check(&self, expected: &ObjectId, actual_len: u64) -> Result<(), String> {
        if self.id != *expected {
            return Err(format!(
                "header names object {} but the file is stored as {expected}",
                self.id
            ));
        }
        match self.file_len() {
            Some(l) if l == actual_len => Ok(()),
            Some(l) => Err(format!(
                "file is {actual_len} bytes but its header implies {l} (torn or truncated write)"
            )),
            None => Err(format!("stored length {} overflows", self.stored_len)),
        }
    }
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Parse a whole loose object file held in memory: header, lengths, id,
/// CRC. Returns the header and the payload's byte range. Does not recompute
/// BLAKE3.
pub fn parse_file(
    bytes: &[u8],
    expected: Option<&ObjectId>,
) -> Result<(Header, Range<usize>), String> {
    if bytes.len() < MIN_FILE_LEN {
        return Err(format!(
            "file is {} bytes, shorter than the {MIN_FILE_LEN}-byte minimum",
            bytes.len()
        ));
    }
    let mut h = [0u8; HEADER_LEN];
    h.copy_from_slice(&bytes[..HEADER_LEN]);
    let header = Header::decode(&h)?;
    header.check(expected.unwrap_or(&header.id), bytes.len() as u64)?;
    let end = bytes.len() - TRAILER_LEN;
    let mut crc = [0u8; TRAILER_LEN];
    crc.copy_from_slice(&bytes[end..]);
    let stored = u32::from_le_bytes(crc);
    let actual = crc32fast::hash(&bytes[..end]);
    if stored != actual {
        return Err(format!(
            "CRC mismatch: stored {stored:08x}, computed {actual:08x}"
        ));
    }
    Ok((header, HEADER_LEN..end))
}

/// Encode a complete raw-codec file (for small objects written in one go).
pub fn encode_file(kind: Kind, id: ObjectId, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MIN_FILE_LEN + payload.len());
    encode_file_into(&mut out, kind, id, payload);
    out
}

/// [`encode_file`] appended to `out`.
pub fn encode_file_into(out: &mut Vec<u8>, kind: Kind, id: ObjectId, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&Header::raw(kind, payload.len() as u64, id).encode());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(HEADER_LEN, 56);
        assert_eq!(OFF_ID, 16);
        assert_eq!(OFF_STORED_LEN, 48);
        let id = ObjectId::compute(Kind::Blob, b"abc");
        let f = encode_file(Kind::Blob, id, b"abc");
        assert_eq!(&f[..4], b"SYOB");
        assert_eq!(f.len(), 63);
        let (h, r) = parse_file(&f, Some(&id)).unwrap();
        assert_eq!(h.kind, Kind::Blob);
        assert_eq!(&f[r], b"abc");
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x40;
            assert!(parse_file(&g, Some(&id)).is_err(), "flip at {i} undetected");
        }
    }
}
