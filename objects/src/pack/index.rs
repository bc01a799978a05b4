//! The pack index (`pack-<hash>.idx`): derived from its pack, rebuildable
//! from it alone, mapped and searched in place.
//!
//! ```text
//! offset        size   field
//!      0           4   magic "SYPX"
//!      4           1   version = 1
//!      5           3   reserved, 0
//!      8           8   object count n, u64 LE
//!     16          32   the pack's trailer hash (its name)
//!     48        1024   fanout: 256 x u32 LE; fanout[b] = ids whose first byte <= b
//!   1072        32 n   ids, ascending, no duplicates
//!   1072+32n     8 n   entry offsets in the pack, u64 LE, in id order
//!   1072+40n      32   BLAKE3 of every preceding byte
//! ```
//!
//! A lookup reads the fanout slot of the id's first byte, then binary
//! searches at most that bucket of ids: O(log n) cache lines, no system
//! call. Opening an index checks its structure (length, magic, version,
//! fanout monotone and ending at n, the pack hash); the trailer and the
//! order of the ids are checked by [`IndexView::verify`] (fsck,
//! `verify-pack`). A damaged index can make a lookup miss, never return
//! the wrong bytes: the entry it points at is checked against the id.

use std::io;

use crate::ObjectId;

/// Index magic.
pub const MAGIC: [u8; 4] = *b"SYPX";
/// Index format version.
pub const VERSION: u8 = 1;
const OFF_COUNT: usize = 8;
const OFF_PACK: usize = 16;
const OFF_FANOUT: usize = 48;
/// Where the sorted ids begin.
pub const OFF_IDS: usize = OFF_FANOUT + 256 * 4;
const TRAILER: usize = 32;

/// The length of an index of `n` entries, or `None` if it overflows.
pub fn index_len(n: u64) -> Option<u64> {
    n.checked_mul(40)?.checked_add((OFF_IDS + TRAILER) as u64)
}

/// Encode the index of a pack named `pack_hash` whose entries are
/// `entries` (id, offset). Sorts `entries`; duplicate ids are an error.
pub fn encode(pack_hash: &ObjectId, entries: &mut [(ObjectId, u64)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(OFF_IDS + entries.len() * 40 + TRAILER);
    encode_to(&mut out, pack_hash, entries).map_err(|e| e.to_string())?;
    Ok(out)
}

/// [`encode`] streamed into `w` (no copy of the index in memory). A
/// duplicate id or more than `u32::MAX` entries is an `InvalidData` error.
pub fn encode_to(
    w: &mut dyn io::Write,
    pack_hash: &ObjectId,
    entries: &mut [(ObjectId, u64)],
) -> io::Result<()> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    entries.sort_unstable_by_key(|e| e.0);
    if let Some(d) = entries.windows(2).find(|d| d[0].0 == d[1].0) {
        return Err(invalid(format!(
            "object {} appears twice in the pack",
            d[0].0
        )));
    }
    if u32::try_from(entries.len()).is_err() {
        return Err(invalid(format!(
            "{} objects do not fit one pack index (at most {})",
            entries.len(),
            u32::MAX
        )));
    }
    let mut h = Hashing {
        w,
        hasher: blake3::Hasher::new(),
    };
    let mut head = Vec::with_capacity(OFF_IDS);
    head.extend_from_slice(&MAGIC);
    head.push(VERSION);
    head.extend_from_slice(&[0; 3]);
    head.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    head.extend_from_slice(pack_hash.as_bytes());
    let mut fanout = [0u32; 256];
    for (id, _) in entries.iter() {
        fanout[usize::from(id.as_bytes()[0])] += 1;
    }
    let mut total = 0u32;
    for slot in fanout {
        total += slot;
        head.extend_from_slice(&total.to_le_bytes());
    }
    h.put(&head)?;
    for (id, _) in entries.iter() {
        h.put(id.as_bytes())?;
    }
    for (_, off) in entries.iter() {
        h.put(&off.to_le_bytes())?;
    }
    let hash = h.hasher.finalize();
    h.w.write_all(hash.as_bytes())
}

struct Hashing<'w> {
    w: &'w mut dyn io::Write,
    hasher: blake3::Hasher,
}

impl Hashing<'_> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.hasher.update(b);
        self.w.write_all(b)
    }
}

/// A structurally checked index held in memory or mapped.
#[derive(Debug, Clone, Copy)]
pub struct IndexView<'a> {
    bytes: &'a [u8],
    n: usize,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

impl<'a> IndexView<'a> {
    /// A view of bytes [`IndexView::parse`] already accepted with `n`
    /// entries (a live pack's mapped index: checked once, at open).
    pub(crate) fn checked(bytes: &'a [u8], n: usize) -> Self {
        IndexView { bytes, n }
    }

    /// Check the structure: length, magic, version, reserved bytes, the
    /// fanout. O(1) in the number of entries (256 fanout slots).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.len() < OFF_IDS + TRAILER {
            return Err(format!(
                "index is {} bytes, shorter than the {}-byte minimum",
                bytes.len(),
                OFF_IDS + TRAILER
            ));
        }
        if bytes[..4] != MAGIC {
            return Err(format!(
                "bad magic {:02x?} (expected \"SYPX\")",
                &bytes[..4]
            ));
        }
        if bytes[4] != VERSION {
            return Err(format!("unsupported index version {}", bytes[4]));
        }
        if bytes[5..8] != [0; 3] {
            return Err("reserved bytes 5..8 are not zero".into());
        }
        let n = u64_at(bytes, OFF_COUNT);
        if index_len(n) != Some(bytes.len() as u64) {
            return Err(format!(
                "index is {} bytes, but {n} entries need {}",
                bytes.len(),
                index_len(n).map_or("more than 2^64".into(), |l| l.to_string())
            ));
        }
        let mut prev = 0u32;
        for b in 0..256 {
            let f = u32_at(bytes, OFF_FANOUT + 4 * b);
            if f < prev {
                return Err(format!(
                    "fanout slot {b} ({f}) is below slot {} ({prev})",
                    b - 1
                ));
            }
            prev = f;
        }
        if u64::from(prev) != n {
            return Err(format!(
                "fanout ends at {prev}, but the index holds {n} entries"
            ));
        }
        Ok(IndexView {
            bytes,
            n: n as usize,
        })
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The pack hash recorded in the index.
    pub fn pack_hash(&self) -> ObjectId {
        ObjectId::from_slice(&self.bytes[OFF_PACK..OFF_PACK + 32]).unwrap_or_default()
    }

    /// The `i`th id in ascending order.
    pub fn id_bytes(&self, i: usize) -> &'a [u8] {
        let at = OFF_IDS + 32 * i;
        &self.bytes[at..at + 32]
    }

    /// The `i`th id.
    pub fn id(&self, i: usize) -> ObjectId {
        ObjectId::from_slice(self.id_bytes(i)).unwrap_or_default()
    }

    /// The pack offset of the `i`th entry.
    pub fn offset(&self, i: usize) -> u64 {
        u64_at(self.bytes, OFF_IDS + 32 * self.n + 8 * i)
    }

    /// The range of entries whose ids start with byte `b`.
    pub fn bucket(&self, b: u8) -> (usize, usize) {
        if self.n == 0 {
            return (0, 0);
        }
        let hi = u32_at(self.bytes, OFF_FANOUT + 4 * usize::from(b)) as usize;
        let lo = match b {
            0 => 0,
            _ => u32_at(self.bytes, OFF_FANOUT + 4 * (usize::from(b) - 1)) as usize,
        };
        (lo.min(hi), hi)
    }

    /// The position [`IndexView::find`] probes first for `id` (its
    /// interpolated guess within the id's fanout bucket): loading it ahead
    /// lets the cache misses of many lookups overlap.
    pub fn first_probe(&self, id: &ObjectId) -> usize {
        let key = id.as_bytes();
        let (lo, hi) = self.bucket(key[0]);
        if hi <= lo {
            return lo.min(self.n.saturating_sub(1));
        }
        let want = u64::from_be_bytes([
            key[1], key[2], key[3], key[4], key[5], key[6], key[7], key[8],
        ]);
        let at = lo + ((u128::from(want) * (hi - lo) as u128) >> 64) as usize;
        at.clamp(lo, hi - 1)
    }

    /// The position of `id`, if present. Ids are uniformly distributed
    /// hashes, so a few interpolation steps on the next eight bytes bring
    /// the range down to a handful of entries (two or three cache lines
    /// touched in a bucket of thousands), then a binary search finishes.
    /// Every step shrinks the range, so a damaged (unsorted) index still
    /// ends, with a miss at worst.
    pub fn find(&self, id: &ObjectId) -> Option<usize> {
        let key = id.as_bytes().as_slice();
        let (mut lo, mut hi) = self.bucket(key[0]);
        let probe = |i: usize| -> u64 {
            let b = self.id_bytes(i);
            u64::from_be_bytes([b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8]])
        };
        let want = u64::from_be_bytes([
            key[1], key[2], key[3], key[4], key[5], key[6], key[7], key[8],
        ]);
        let (mut lo_k, mut hi_k) = (0u64, u64::MAX);
        for _ in 0..4 {
            if hi - lo <= 16 || want < lo_k || want > hi_k {
                break;
            }
            let span = u128::from(hi_k - lo_k) + 1;
            let at = lo + (u128::from(want - lo_k) * (hi - lo) as u128 / span) as usize;
            let at = at.clamp(lo, hi - 1);
            match self.id_bytes(at).cmp(key) {
                std::cmp::Ordering::Equal => return Some(at),
                std::cmp::Ordering::Less => {
                    lo = at + 1;
                    lo_k = probe(at);
                }
                std::cmp::Ordering::Greater => {
                    hi = at;
                    hi_k = probe(at);
                }
            }
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.id_bytes(mid).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The first position whose id is not below `prefix` (for prefix
    /// lookups); ids in `[at, bucket end)` are candidates in order.
    pub fn lower_bound(&self, first: u8, prefix: &[u8]) -> (usize, usize) {
        let (mut lo, end) = self.bucket(first);
        let mut hi = end;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.id_bytes(mid) < prefix {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo, end)
    }

    /// The full check: the trailer hash, ids strictly ascending and in
    /// their fanout bucket.
    pub fn verify(&self) -> Result<(), String> {
        let body = self.bytes.len() - TRAILER;
        let actual = blake3::hash(&self.bytes[..body]);
        if actual.as_bytes()[..] != self.bytes[body..] {
            return Err("index trailer does not match its content".into());
        }
        for b in 0..=255u8 {
            let (lo, hi) = self.bucket(b);
            for i in lo..hi {
                if self.id_bytes(i)[0] != b {
                    return Err(format!(
                        "entry {i} ({}) is in fanout bucket {b:02x}",
                        self.id(i)
                    ));
                }
            }
        }
        for i in 1..self.n {
            if self.id_bytes(i - 1) >= self.id_bytes(i) {
                return Err(format!("ids are not strictly ascending at entry {i}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    #[test]
    fn round_trip_find_and_damage() {
        let mut entries: Vec<(ObjectId, u64)> = (0..500u64)
            .map(|i| {
                (
                    ObjectId::compute(Kind::Blob, &i.to_le_bytes()),
                    16 + i * 100,
                )
            })
            .collect();
        let want = entries.clone();
        let pack = ObjectId::compute(Kind::Blob, b"pack");
        let bytes = encode(&pack, &mut entries).unwrap();
        let v = IndexView::parse(&bytes).unwrap();
        v.verify().unwrap();
        assert_eq!(v.pack_hash(), pack);
        assert_eq!(v.len(), 500);
        for (id, off) in &want {
            let i = v.find(id).unwrap();
            assert_eq!(v.offset(i), *off);
        }
        assert!(v.find(&ObjectId::compute(Kind::Blob, b"absent")).is_none());
        // A large index: every id found at its place, misses miss.
        let mut big: Vec<(ObjectId, u64)> = (0..200_000u64)
            .map(|i| (ObjectId::compute(Kind::Blob, &i.to_le_bytes()), i))
            .collect();
        let bytes2 = encode(&pack, &mut big).unwrap();
        let v2 = IndexView::parse(&bytes2).unwrap();
        for (i, (id, off)) in big.iter().enumerate().step_by(7) {
            assert_eq!(v2.find(id), Some(i));
            assert_eq!(v2.offset(i), *off);
        }
        for i in 0..20_000u64 {
            let miss = ObjectId::compute(Kind::Tree, &i.to_le_bytes());
            assert!(v2.find(&miss).is_none());
        }
        // Every single-byte flip is caught by parse or verify.
        for at in (0..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[at] ^= 0x10;
            let caught = IndexView::parse(&b).and_then(|v| v.verify()).is_err();
            assert!(caught, "flip at {at} undetected");
        }
        let mut dup = vec![want[0], want[0]];
        assert!(encode(&pack, &mut dup).is_err());
        assert!(IndexView::parse(&bytes[..bytes.len() - 1]).is_err());
    }
}
