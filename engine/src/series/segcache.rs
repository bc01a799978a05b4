//! Decoded segments kept for the next read. A segment is named by the ids
//! of its timestamp and value blobs, and objects never change, so an entry
//! is never stale: no invalidation, only eviction. Bounded by the decoded
//! bytes (`Options::segment_cache_bytes`; 0 turns it off); the oldest
//! entry goes first. A dashboard or a Prometheus `remote_read` that asks
//! for the last hour again and again then reads no blob and decodes
//! nothing for the part already compacted, as it does for the head.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use sydra_objects::ObjectId;

use super::segment::Segment;

/// The key: (timestamps blob, values blob, block start). The block is part
/// of it because decoding checks the timestamps against the block: the
/// same blobs under another block (a damaged tree) must be decoded, and
/// refused, there.
type Key = (ObjectId, ObjectId, i64);

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct SegmentCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: ahash::AHashMap<Key, (Arc<Segment>, usize)>,
    /// Keys in the order they came in.
    order: VecDeque<Key>,
    bytes: usize,
}

/// What a decoded segment holds in memory, about: its columns (every
/// stored type is 8 bytes a value or less), and the entry's own share of
/// the map and the queue.
fn weight(seg: &Segment) -> usize {
    256 + seg.timestamps.capacity() * 8 + seg.timestamps.len() * 8
}

impl SegmentCache {
    pub(crate) fn new(max_bytes: usize) -> SegmentCache {
        SegmentCache {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(crate) fn get(&self, ts: &ObjectId, values: &ObjectId, block: i64) -> Option<Arc<Segment>> {
        if self.max_bytes == 0 {
            return None;
        }
        self.inner
            .lock()
            .map
            .get(&(*ts, *values, block))
            .map(|(s, _)| s.clone())
    }

    /// Keep `seg`, dropping the oldest entries past the bound; a segment
    /// larger than a quarter of it is not kept.
    pub(crate) fn put(&self, ts: ObjectId, values: ObjectId, block: i64, seg: Arc<Segment>) {
        let w = weight(&seg);
        if w > self.max_bytes / 4 {
            return;
        }
        let key = (ts, values, block);
        // Freed after the lock is let go.
        let mut evicted = Vec::new();
        {
            let mut g = self.inner.lock();
            let inner = &mut *g;
            if inner.map.insert(key, (seg, w)).is_some() {
                // Another reader decoded it too: the weight is counted once.
                return;
            }
            inner.order.push_back(key);
            inner.bytes += w;
            while inner.bytes > self.max_bytes {
                let Some(k) = inner.order.pop_front() else {
                    break;
                };
                if let Some((s, w)) = inner.map.remove(&k) {
                    inner.bytes -= w;
                    evicted.push(s);
                }
            }
        }
        drop(evicted);
    }

    /// Entries and their bytes (for tests and stats).
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let g = self.inner.lock();
        (g.map.len(), g.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::head::Column;
    use crate::series::segment;

    fn seg(n: usize) -> Arc<Segment> {
        let ts: Vec<i64> = (0..n as i64).collect();
        let (t, v) = segment::encode(3_600_000_000_000, &ts, &Column::F64(vec![0.5; n])).unwrap();
        Arc::new(segment::decode(0, &t, &v).unwrap())
    }

    fn id(i: u8) -> ObjectId {
        ObjectId::from_bytes([i; 32])
    }

    #[test]
    fn bounded_by_bytes_oldest_first() {
        let one = weight(&seg(1000));
        let c = SegmentCache::new(one * 4);
        for i in 0..6 {
            c.put(id(i), id(i + 100), 0, seg(1000));
            assert!(c.held().1 <= one * 4);
        }
        assert_eq!(c.held().0, 4);
        assert!(
            c.get(&id(0), &id(100), 0).is_none(),
            "the oldest went first"
        );
        assert!(c.get(&id(5), &id(105), 0).is_some());
        // The ids and the block are the key: the same timestamps with
        // other values, or the same blobs under another block, miss.
        assert!(c.get(&id(5), &id(104), 0).is_none());
        assert!(c.get(&id(5), &id(105), 60).is_none());
        // Too large for a quarter of the bound: not kept.
        c.put(id(50), id(150), 0, seg(1300));
        assert!(c.get(&id(50), &id(150), 0).is_none());
        // Turned off.
        let off = SegmentCache::new(0);
        off.put(id(1), id(2), 0, seg(1));
        assert!(off.get(&id(1), &id(2), 0).is_none());
    }
}
