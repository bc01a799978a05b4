use std::collections::BTreeMap;

use sydra_engine::compaction::{SegmentChange, SegmentData, SegmentKey};
use sydra_engine::manifest::{Codec, ColumnStats, ColumnType, SegmentManifest};
use sydra_engine::objects::{Commit, Kind, ObjectId, Store};
use sydra_engine::{Engine, Options};

pub fn engine(dir: &std::path::Path) -> Engine {
    let mut o = Options::default();
    o.wal.sync = sydra_engine::wal::SyncMode::Never;
    Engine::create(dir, o).unwrap()
}

pub fn segment(series: &str, seg: &str, version: u8) -> SegmentData {
    let ts = vec![version; 8];
    let val = vec![version.wrapping_add(1); 16];
    SegmentData {
        manifest: SegmentManifest {
            series: series.into(),
            rollup: "raw".into(),
            segment: seg.into(),
            min_ts: 0,
            max_ts: i64::from(version),
            row_count: 2,
            columns: vec![
                ColumnStats {
                    name: "ts".into(),
                    ty: ColumnType::Timestamp,
                    codec: Codec::DeltaOfDelta,
                    value_count: 2,
                    null_count: 0,
                    min: vec![],
                    max: vec![],
                    stored_bytes: ts.len() as u64,
                },
                ColumnStats {
                    name: "value".into(),
                    ty: ColumnType::F64,
                    codec: Codec::GorillaXor,
                    value_count: 2,
                    null_count: 0,
                    min: vec![],
                    max: vec![],
                    stored_bytes: val.len() as u64,
                },
            ],
            meta: BTreeMap::new(),
        },
        columns: vec![("ts".into(), ts), ("value".into(), val)],
    }
}

pub fn add(series: &str, seg: &str, v: u8) -> SegmentChange {
    SegmentChange::Add(segment(series, seg, v))
}

pub fn replace(series: &str, seg: &str, v: u8) -> SegmentChange {
    SegmentChange::Replace(segment(series, seg, v))
}

pub fn remove(series: &str, seg: &str) -> SegmentChange {
    SegmentChange::Remove(SegmentKey::new(series, "raw", seg))
}

/// Every blob path in a tree, with ids.
pub fn flatten(store: &Store, tree: ObjectId) -> BTreeMap<String, ObjectId> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(String::new(), tree)];
    while let Some((prefix, id)) = stack.pop() {
        for e in store.get(&id).unwrap().tree().unwrap().entries {
            let p = if prefix.is_empty() {
                e.name.to_owned()
            } else {
                format!("{prefix}/{}", e.name)
            };
            if e.kind == Kind::Tree {
                stack.push((p, e.id))
            } else {
                out.insert(p, e.id);
            }
        }
    }
    out
}

/// Write a commit with an explicit timestamp.
pub fn commit(store: &Store, tree: ObjectId, parent: Option<ObjectId>, ts: i64) -> ObjectId {
    let c = Commit {
        tree,
        parents: parent.into_iter().collect(),
        timestamp: ts,
        message: format!("t={ts}"),
        ..Commit::default()
    };
    store.put(Kind::Commit, &c.encode().unwrap()).unwrap()
}
