//! Transfer indexes (`.syti`, docs/FORMAT.md §22): where each object and
//! each WAL range sits inside a transfer file, so a read replica fetches
//! one entry with one ranged request instead of downloading the file.
//!
//! ```text
//! 0    4   magic SYTI
//! 4    1   version 1
//! 5    3   reserved, 0
//! 8    32  the transfer file's trailer (its name)
//! 40   8   object count n
//! 48   8   range count r
//! 56   8   shallow count s
//! 64   n × (id 32, offset u64, length u64)   ids strictly ascending
//! …    r × (id 32, offset u64, length u64)   chunk ids strictly ascending
//! …    s × id 32                             the transfer's shallow commits
//! end−32   BLAKE3 of every preceding byte
//! ```
//!
//! Offsets are from the start of the transfer file; an object's bytes are
//! its whole loose file (§3), a range's its stored-range file (§20).

use sydra_objects::ObjectId;

use super::transfer_sections;

/// Magic of a transfer index.
pub const INDEX_MAGIC: [u8; 4] = *b"SYTI";
const FIXED: usize = 64;
const ROW: usize = 48;

/// Where one item sits in a transfer file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Offset from the start of the transfer file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// A decoded transfer index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferIndex {
    /// The transfer file's trailer.
    pub transfer: ObjectId,
    /// Objects by id, ascending.
    pub objects: Vec<(ObjectId, Span)>,
    /// Stored WAL ranges by chunk id, ascending.
    pub ranges: Vec<(ObjectId, Span)>,
    /// The transfer's shallow commits (whose parents it lacks: its
    /// history ends there), as the transfer lists them.
    pub shallow: Vec<ObjectId>,
}

impl TransferIndex {
    /// Index the transfer file `b`: its framing and the pack's header are
    /// checked; its trailer and the entries' CRCs are not (the sender made
    /// them, and a reader verifies every entry it fetches).
    pub fn build(b: &[u8]) -> Result<TransferIndex, String> {
        let view = transfer_sections(b)?;
        let base = b.as_ptr() as usize;
        let at = |s: &[u8]| (s.as_ptr() as usize - base) as u64;
        let mut objects = Vec::new();
        if !view.pack.is_empty() {
            let pack_at = at(view.pack);
            sydra_objects::pack::parse_header(view.pack)?;
            let body = view
                .pack
                .len()
                .checked_sub(sydra_objects::pack::TRAILER)
                .ok_or("the pack is shorter than its trailer")?;
            let mut off = sydra_objects::pack::HEADER as u64;
            while (off as usize) < body {
                let (e, next) = sydra_objects::pack::entry_header(view.pack, off)?;
                objects.push((
                    e.id,
                    Span {
                        offset: pack_at + off,
                        len: e.len,
                    },
                ));
                off = next;
            }
        }
        let mut ranges: Vec<(ObjectId, Span)> = view
            .ranges
            .iter()
            .map(|(id, r)| {
                (
                    *id,
                    Span {
                        offset: at(r),
                        len: r.len() as u64,
                    },
                )
            })
            .collect();
        objects.sort_by_key(|(id, _)| *id);
        objects.dedup_by_key(|(id, _)| *id);
        ranges.sort_by_key(|(id, _)| *id);
        ranges.dedup_by_key(|(id, _)| *id);
        let transfer = ObjectId::from_slice(&b[b.len() - 32..]).unwrap_or_default();
        Ok(TransferIndex {
            transfer,
            objects,
            ranges,
            shallow: view.shallow,
        })
    }

    /// The index's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            FIXED + ROW * (self.objects.len() + self.ranges.len()) + 32 * self.shallow.len() + 32,
        );
        out.extend_from_slice(&INDEX_MAGIC);
        out.extend_from_slice(&[1, 0, 0, 0]);
        out.extend_from_slice(self.transfer.as_bytes());
        out.extend_from_slice(&(self.objects.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.ranges.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.shallow.len() as u64).to_le_bytes());
        for (id, s) in self.objects.iter().chain(&self.ranges) {
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(&s.offset.to_le_bytes());
            out.extend_from_slice(&s.len.to_le_bytes());
        }
        for id in &self.shallow {
            out.extend_from_slice(id.as_bytes());
        }
        let h = blake3::hash(&out);
        out.extend_from_slice(h.as_bytes());
        out
    }

    /// Decode and check an index: magic, version, trailer, that it
    /// belongs to `transfer` (a file of `transfer_len` bytes), that ids
    /// ascend and every span lies inside the file before its trailer.
    pub fn parse(
        b: &[u8],
        transfer: &ObjectId,
        transfer_len: u64,
    ) -> Result<TransferIndex, String> {
        if b.len() < FIXED + 32 || b[..4] != INDEX_MAGIC || b[4] != 1 || b[5..8] != [0; 3] {
            return Err("not a version 1 Sydra transfer index".into());
        }
        let body = b.len() - 32;
        if blake3::hash(&b[..body]).as_bytes()[..] != b[body..] {
            return Err("its trailer does not match its content (damaged or cut short)".into());
        }
        let id_at = |at: usize| ObjectId::from_slice(&b[at..at + 32]).unwrap_or_default();
        let u64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(a)
        };
        let of = id_at(8);
        if of != *transfer {
            return Err(format!("it indexes transfer {of}, not {transfer}"));
        }
        let (n, r, sh) = (u64_at(40), u64_at(48), u64_at(56));
        n.checked_add(r)
            .and_then(|t| t.checked_mul(ROW as u64))
            .and_then(|t| t.checked_add(sh.checked_mul(32)?))
            .filter(|&t| t == (body - FIXED) as u64)
            .ok_or_else(|| {
                format!(
                    "it declares {n} objects, {r} ranges and {sh} shallow commits, which do not fill its {} bytes",
                    b.len()
                )
            })?;
        let limit = transfer_len.saturating_sub(32);
        let read = |count: u64, start: usize, what: &str| {
            let mut out: Vec<(ObjectId, Span)> = Vec::with_capacity(count as usize);
            for i in 0..count as usize {
                let at = start + i * ROW;
                let id = id_at(at);
                let s = Span {
                    offset: u64_at(at + 32),
                    len: u64_at(at + 40),
                };
                if s.offset.checked_add(s.len).is_none_or(|e| e > limit) || s.offset < 16 {
                    return Err(format!(
                        "{what} {id} at {}+{} lies outside the {transfer_len}-byte transfer",
                        s.offset, s.len
                    ));
                }
                if out.last().is_some_and(|(p, _)| *p >= id) {
                    return Err(format!("{what} ids are not strictly ascending at {id}"));
                }
                out.push((id, s));
            }
            Ok(out)
        };
        let objects = read(n, FIXED, "object")?;
        let ranges = read(r, FIXED + n as usize * ROW, "range")?;
        let at = FIXED + (n + r) as usize * ROW;
        let shallow = (0..sh as usize).map(|i| id_at(at + 32 * i)).collect();
        Ok(TransferIndex {
            transfer: *transfer,
            objects,
            ranges,
            shallow,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_slice(&[n; 32]).unwrap()
    }

    /// A framed transfer around `pack` with no ranges or shallow commits.
    fn transfer_with_pack(pack: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&crate::remote::TRANSFER_MAGIC);
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&(pack.len() as u64).to_le_bytes());
        b.extend_from_slice(pack);
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        let h = blake3::hash(&b);
        b.extend_from_slice(h.as_bytes());
        b
    }

    #[test]
    fn a_transfer_whose_pack_is_cut_short_is_refused_not_a_panic() {
        // Found by the `transfer` fuzz target: a one-byte pack.
        for pack in [&b"x"[..], &[0u8; 20], b"SYPK\x01\0\0\0\x05\0\0\0\0\0\0\0"] {
            assert!(
                TransferIndex::build(&transfer_with_pack(pack)).is_err(),
                "{pack:?}"
            );
        }
    }

    #[test]
    fn an_index_reads_back_and_damage_is_refused_naming_what() {
        let t = TransferIndex {
            transfer: id(9),
            objects: vec![
                (
                    id(1),
                    Span {
                        offset: 16,
                        len: 40,
                    },
                ),
                (
                    id(2),
                    Span {
                        offset: 56,
                        len: 50,
                    },
                ),
            ],
            ranges: vec![(
                id(3),
                Span {
                    offset: 130,
                    len: 20,
                },
            )],
            shallow: vec![id(4)],
        };
        let b = t.encode();
        assert_eq!(TransferIndex::parse(&b, &id(9), 400).unwrap(), t);
        let e = TransferIndex::parse(&b, &id(8), 400).unwrap_err();
        assert!(e.contains("indexes transfer"), "{e}");
        let e = TransferIndex::parse(&b, &id(9), 100).unwrap_err();
        assert!(e.contains("lies outside"), "{e}");
        let mut bad = b.clone();
        bad[60] ^= 1;
        assert!(
            TransferIndex::parse(&bad, &id(9), 400)
                .unwrap_err()
                .contains("trailer")
        );
        assert!(TransferIndex::parse(&b[..b.len() - 1], &id(9), 400).is_err());
        let swapped = TransferIndex {
            objects: vec![t.objects[1], t.objects[0]],
            ..t.clone()
        };
        let e = TransferIndex::parse(&swapped.encode(), &id(9), 400).unwrap_err();
        assert!(e.contains("ascending"), "{e}");
    }
}
