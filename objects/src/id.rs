//! Object ids: BLAKE3-256 over `kind || payload_len (u64 LE) || payload`.

use std::fmt;
use std::str::FromStr;

use crate::Kind;

/// A 32-byte BLAKE3 object id. Displayed as 64 lowercase hex digits.
///
/// Ordered by its bytes. Compared and ordered as four 64-bit words, and
/// hashed by its first eight bytes only (its bytes are a cryptographic
/// hash already, uniform to every hasher): the walks over millions of
/// ids (GC marks, transfer plans) spend their time in set lookups, and a
/// byte-wise compare is a call to `memcmp` each time.
#[derive(Clone, Copy)]
pub struct ObjectId([u8; 32]);

impl ObjectId {
    #[inline]
    fn words(&self) -> [u64; 4] {
        let w = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.0[i * 8..i * 8 + 8]);
            u64::from_be_bytes(b)
        };
        [w(0), w(1), w(2), w(3)]
    }
}

impl PartialEq for ObjectId {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        // Equality needs no byte order: compare the bytes as they are.
        self.0 == other.0
    }
}

impl Eq for ObjectId {}

impl PartialOrd for ObjectId {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ObjectId {
    /// Byte order: big-endian words compare as their bytes do.
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.words().cmp(&other.words())
    }
}

impl std::hash::Hash for ObjectId {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.words()[0]);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl ObjectId {
    /// Length in bytes.
    pub const LEN: usize = 32;
    /// Length of the hex form.
    pub const HEX_LEN: usize = 64;
    /// The shortest prefix the command line accepts.
    pub const MIN_PREFIX_LEN: usize = 4;

    /// Wrap raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        ObjectId(bytes)
    }

    /// Wrap a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(ObjectId)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The id of an object of `kind` with this payload.
    pub fn compute(kind: Kind, payload: &[u8]) -> Self {
        let mut h = IdHasher::new(kind, payload.len() as u64);
        h.update(payload);
        h.finalize()
    }

    /// The 64-digit lowercase hex form, written into a stack buffer.
    pub fn hex_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
        }
        out
    }

    /// The 64-digit lowercase hex form.
    pub fn to_hex(&self) -> String {
        let bytes = self.hex_bytes();
        // Hex digits are ASCII, so this never fails.
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The first `n` hex digits (for short display).
    pub fn short(&self, n: usize) -> String {
        let mut s = self.to_hex();
        s.truncate(n.min(Self::HEX_LEN));
        s
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.hex_bytes();
        f.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// Why a string is not an object id or id prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseIdError {
    /// Wrong number of hex digits.
    #[error("{input:?} is not an object id: expected {expected} hex digits, found {found}")]
    Length {
        /// The rejected input.
        input: String,
        /// What was required (e.g. "64" or "4 to 64").
        expected: &'static str,
        /// How many characters were given.
        found: usize,
    },
    /// A character that is not a hex digit.
    #[error("{input:?} is not an object id: {ch:?} at position {pos} is not a hex digit")]
    NotHex {
        /// The rejected input.
        input: String,
        /// The offending character.
        ch: char,
        /// Its index.
        pos: usize,
    },
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn check_hex(s: &str) -> Result<(), ParseIdError> {
    for (pos, ch) in s.char_indices() {
        if !ch.is_ascii_hexdigit() {
            return Err(ParseIdError::NotHex {
                input: s.to_owned(),
                ch,
                pos,
            });
        }
    }
    Ok(())
}

impl FromStr for ObjectId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_hex(s)?;
        if s.len() != Self::HEX_LEN {
            return Err(ParseIdError::Length {
                input: s.to_owned(),
                expected: "64",
                found: s.len(),
            });
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0]).unwrap_or(0);
            let lo = hex_val(pair[1]).unwrap_or(0);
            out[i] = (hi << 4) | lo;
        }
        Ok(ObjectId(out))
    }
}

/// A prefix of an id's hex form, 4 to 64 digits, used to look objects up by
/// abbreviation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Prefix {
    hex: String,
}

impl Prefix {
    /// The prefix in lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.hex
    }

    /// The two-digit shard directory every match lives in.
    pub fn shard(&self) -> &str {
        &self.hex[..2]
    }

    /// Whether `id` starts with this prefix.
    pub fn matches(&self, id: &ObjectId) -> bool {
        let hex = id.hex_bytes();
        hex.starts_with(self.hex.as_bytes())
    }

    /// The full id when the prefix is all 64 digits.
    pub fn as_full(&self) -> Option<ObjectId> {
        self.hex.parse().ok()
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prefix({})", self.hex)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex)
    }
}

impl FromStr for Prefix {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_hex(s)?;
        if s.len() < ObjectId::MIN_PREFIX_LEN || s.len() > ObjectId::HEX_LEN {
            return Err(ParseIdError::Length {
                input: s.to_owned(),
                expected: "4 to 64",
                found: s.len(),
            });
        }
        Ok(Prefix {
            hex: s.to_ascii_lowercase(),
        })
    }
}

/// Incremental id computation for payloads that arrive in pieces. The
/// payload length is part of the hashed prefix, so it must be known up front.
#[derive(Debug, Clone)]
pub struct IdHasher {
    inner: blake3::Hasher,
}

impl IdHasher {
    /// Start hashing an object of `kind` whose payload is `len` bytes.
    pub fn new(kind: Kind, len: u64) -> Self {
        let mut inner = blake3::Hasher::new();
        inner.update(&[kind.code()]);
        inner.update(&len.to_le_bytes());
        IdHasher { inner }
    }

    /// Feed payload bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// The id. The caller is responsible for having fed exactly `len` bytes.
    pub fn finalize(&self) -> ObjectId {
        ObjectId(*self.inner.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_case() {
        let id = ObjectId::compute(Kind::Blob, b"hello");
        let hex = id.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex.parse::<ObjectId>(), Ok(id));
        assert_eq!(hex.to_uppercase().parse::<ObjectId>(), Ok(id));
        assert_eq!(format!("{id}"), hex);
    }

    #[test]
    fn id_mixes_kind_and_length() {
        assert_ne!(
            ObjectId::compute(Kind::Blob, b"x"),
            ObjectId::compute(Kind::Tree, b"x")
        );
        let mut h = blake3::Hasher::new();
        h.update(&[1]);
        h.update(&5u64.to_le_bytes());
        h.update(b"hello");
        assert_eq!(
            ObjectId::compute(Kind::Blob, b"hello").as_bytes(),
            h.finalize().as_bytes()
        );
    }

    #[test]
    fn bad_ids_are_rejected_with_reason() {
        assert!(matches!(
            "abc".parse::<ObjectId>(),
            Err(ParseIdError::Length { .. })
        ));
        let e = "zz".repeat(32).parse::<ObjectId>();
        assert!(matches!(e, Err(ParseIdError::NotHex { pos: 0, .. })));
        assert!("abc".parse::<Prefix>().is_err());
        assert!("abcd".parse::<Prefix>().is_ok());
        assert!("é000".parse::<Prefix>().is_err());
    }

    #[test]
    fn prefix_matches() {
        let id = ObjectId::compute(Kind::Blob, b"hello");
        let p: Prefix = id.to_hex()[..7]
            .to_uppercase()
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.matches(&id));
        assert_eq!(p.shard(), &id.to_hex()[..2]);
        assert!(
            !"0000000".parse::<Prefix>().is_ok_and(|p| p.matches(&id))
                || id.to_hex().starts_with("0000000")
        );
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ids_compare_as_their_bytes(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), i in 0usize..32) {
            let (x, y) = (ObjectId(a), ObjectId(b));
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(x == y, a == b);
            // Equal up to byte i, then different there.
            let mut c = a;
            c[i] = c[i].wrapping_add(1);
            prop_assert_eq!(ObjectId(a).cmp(&ObjectId(c)), a.cmp(&c));
        }
    }
}
