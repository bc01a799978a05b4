//! A compact set of object ids for the mark phase.
//!
//! A `HashSet<ObjectId>` costs 40+ bytes per id plus growth slack, and its
//! doubling copies everything at once. This set keeps:
//!
//! - the ids themselves, 32 bytes each, appended to fixed-size blocks of
//!   [`BLOCK`] ids (a block is allocated once at its final size, so growing
//!   never copies ids and wastes at most one partly filled block);
//! - an open-addressing table (linear probing) of `u64` slots, each packing
//!   the id's index (+1, so 0 means empty) in the low 40 bits and a 24-bit
//!   tag taken from the id in the high bits, so most probes are decided
//!   without touching the id blocks.
//!
//! Ids are BLAKE3 outputs, uniformly distributed, so the first 8 bytes are
//! used directly as the hash. The table grows (doubling) when it would pass
//! 80% load, so it costs 10 to 20 bytes per id: 42 to 52 bytes per id in
//! all. A resize rebuilds the table from the id blocks, so the old table is
//! freed before the new one is allocated and the peak is no higher.

use sydra_objects::ObjectId;

use crate::error::{Error, Result};

/// Ids per block.
pub const BLOCK: usize = 1 << 12;
const INDEX_BITS: u32 = 40;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// The most ids a set holds (the index field's range, minus the empty
/// marker). Memory runs out long before.
pub const MAX_IDS: u64 = INDEX_MASK - 1;
const MIN_SLOTS: usize = 1024;

/// A set of object ids, about 50 bytes per id. See the module docs.
#[derive(Debug, Clone)]
pub struct IdSet {
    blocks: Vec<Vec<ObjectId>>,
    len: usize,
    slots: Vec<u64>,
}

impl Default for IdSet {
    fn default() -> Self {
        IdSet::new()
    }
}

fn hash(id: &ObjectId) -> u64 {
    let b = id.as_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

fn tag(id: &ObjectId) -> u64 {
    let b = id.as_bytes();
    u64::from(b[8]) | u64::from(b[9]) << 8 | u64::from(b[10]) << 16
}

fn slots_for(n: usize) -> usize {
    // Keep the load at or below 80%.
    (n.saturating_mul(5) / 4 + 1)
        .max(MIN_SLOTS)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX / 2 + 1)
}

impl IdSet {
    /// An empty set.
    pub fn new() -> Self {
        IdSet::with_capacity(0)
    }

    /// An empty set sized for `n` ids without resizing.
    pub fn with_capacity(n: usize) -> Self {
        IdSet {
            blocks: Vec::new(),
            len: 0,
            slots: vec![0; slots_for(n)],
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held (ids, blocks and table).
    pub fn heap_bytes(&self) -> usize {
        self.blocks.len() * BLOCK * size_of::<ObjectId>()
            + self.blocks.capacity() * size_of::<Vec<ObjectId>>()
            + self.slots.len() * size_of::<u64>()
    }

    fn id_at(&self, index: usize) -> Option<&ObjectId> {
        self.blocks.get(index / BLOCK)?.get(index % BLOCK)
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &ObjectId) -> bool {
        let mask = self.slots.len() - 1;
        let t = tag(id);
        let mut pos = hash(id) as usize & mask;
        loop {
            let s = self.slots[pos];
            if s == 0 {
                return false;
            }
            if s >> INDEX_BITS == t && self.id_at(((s & INDEX_MASK) - 1) as usize) == Some(id) {
                return true;
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Add `id`; returns whether it was new. Fails only past [`MAX_IDS`].
    pub fn insert(&mut self, id: ObjectId) -> Result<bool> {
        if (self.len + 1).saturating_mul(5) > self.slots.len().saturating_mul(4) {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let t = tag(&id);
        let mut pos = hash(&id) as usize & mask;
        loop {
            let s = self.slots[pos];
            if s == 0 {
                break;
            }
            if s >> INDEX_BITS == t && self.id_at(((s & INDEX_MASK) - 1) as usize) == Some(&id) {
                return Ok(false);
            }
            pos = (pos + 1) & mask;
        }
        if self.len as u64 >= MAX_IDS {
            return Err(Error::TooManyObjects { max: MAX_IDS });
        }
        if self.len.is_multiple_of(BLOCK) {
            self.blocks.push(Vec::with_capacity(BLOCK));
        }
        if let Some(block) = self.blocks.last_mut() {
            block.push(id);
        }
        self.slots[pos] = t << INDEX_BITS | (self.len as u64 + 1);
        self.len += 1;
        Ok(true)
    }

    /// Insert every id of `ids` in order, pushing onto `new` whether each
    /// was new (as [`IdSet::insert`] would return it, duplicates within
    /// `ids` included).
    ///
    /// Faster than one `insert` after another when most ids are already
    /// present (the mark's case: most entries of a rewritten tree were seen
    /// in its previous version). Ids are looked up in groups: first every
    /// home slot of the group is loaded, then every id a slot points at is
    /// compared, so the cache misses of a group overlap instead of coming
    /// one after another. Only what a home slot does not settle goes through
    /// `insert`.
    pub fn insert_all(&mut self, ids: &[ObjectId], new: &mut Vec<bool>) -> Result<()> {
        const GROUP: usize = 16;
        new.reserve(ids.len());
        for group in ids.chunks(GROUP) {
            let mask = self.slots.len() - 1;
            let mut home = [0u64; GROUP];
            for (slot, id) in home.iter_mut().zip(group) {
                *slot = self.slots[hash(id) as usize & mask];
            }
            let mut present = [false; GROUP];
            for ((p, &s), id) in present.iter_mut().zip(&home).zip(group) {
                *p = s != 0
                    && s >> INDEX_BITS == tag(id)
                    && self.id_at(((s & INDEX_MASK) - 1) as usize) == Some(id);
            }
            for (&p, id) in present.iter().zip(group) {
                // Present stays present (growth only moves slots), so only
                // the unsettled ones need the full insert.
                new.push(!p && self.insert(*id)?);
            }
        }
        Ok(())
    }

    fn grow(&mut self) {
        let new_len = self.slots.len().saturating_mul(2);
        // The new table is rebuilt from the id blocks, so the old one can be
        // freed first: the two never coexist.
        self.slots = Vec::new();
        let mut slots = vec![0u64; new_len];
        let mask = new_len - 1;
        for (i, id) in self.iter().enumerate() {
            let mut pos = hash(id) as usize & mask;
            while slots[pos] != 0 {
                pos = (pos + 1) & mask;
            }
            slots[pos] = tag(id) << INDEX_BITS | (i as u64 + 1);
        }
        self.slots = slots;
    }

    /// The ids, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &ObjectId> {
        self.blocks.iter().flat_map(|b| b.iter())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use sydra_objects::Kind;

    use super::*;

    fn id(i: u64) -> ObjectId {
        ObjectId::compute(Kind::Blob, &i.to_le_bytes())
    }

    #[test]
    fn behaves_like_a_hash_set_across_resizes() {
        let mut s = IdSet::new();
        let mut model = HashSet::new();
        for i in 0..20_000u64 {
            let x = id(i % 15_000);
            assert_eq!(s.insert(x).unwrap(), model.insert(x));
        }
        assert_eq!(s.len(), model.len());
        for i in 0..30_000u64 {
            assert_eq!(s.contains(&id(i)), model.contains(&id(i)), "{i}");
        }
        let listed: HashSet<ObjectId> = s.iter().copied().collect();
        assert_eq!(listed, model);
    }

    #[test]
    fn insert_all_agrees_with_one_insert_after_another() {
        let mut one = IdSet::new();
        let mut all = IdSet::new();
        let mut new = Vec::new();
        // Overlapping groups, duplicates inside a group, growth mid-group.
        for round in 0..60u64 {
            let ids: Vec<ObjectId> = (0..37u64)
                .map(|i| id((round * 23 + i * 7) % 1_500))
                .collect();
            new.clear();
            all.insert_all(&ids, &mut new).unwrap();
            let expected: Vec<bool> = ids.iter().map(|x| one.insert(*x).unwrap()).collect();
            assert_eq!(new, expected, "round {round}");
        }
        assert_eq!(all.len(), one.len());
        let a: HashSet<ObjectId> = all.iter().copied().collect();
        let b: HashSet<ObjectId> = one.iter().copied().collect();
        assert_eq!(a, b);
    }

    #[test]
    fn ids_sharing_hash_and_tag_are_still_distinct() {
        // Same first 11 bytes: same home slot and tag; only the full compare
        // tells them apart.
        let mut s = IdSet::new();
        let mut a = [7u8; 32];
        let mut b = [7u8; 32];
        a[31] = 1;
        b[31] = 2;
        let (a, b) = (ObjectId::from_bytes(a), ObjectId::from_bytes(b));
        assert!(s.insert(a).unwrap());
        assert!(!s.contains(&b));
        assert!(s.insert(b).unwrap());
        assert!(!s.insert(a).unwrap());
        assert!(s.contains(&a) && s.contains(&b));
        // The all-zero id is an ordinary member.
        let z = ObjectId::from_bytes([0; 32]);
        assert!(!s.contains(&z));
        assert!(s.insert(z).unwrap());
        assert!(s.contains(&z));
    }

    #[test]
    fn memory_stays_under_64_bytes_per_id() {
        let mut s = IdSet::new();
        for i in 0..200_000u64 {
            s.insert(id(i)).unwrap();
            if i > 10_000 && i % 997 == 0 {
                let per = s.heap_bytes() as f64 / s.len() as f64;
                assert!(per < 64.0, "{per} bytes per id at {i}");
            }
        }
    }
}
