//! Checks shared by the durability test binaries (included with `#[path]`).
#![allow(dead_code)]

/// Root, loop devices and tools: SKIPPED by hand, a failure under CI=true.
pub mod capability;

use std::collections::{BTreeMap, BTreeSet};

use sydra_engine::Engine;
use sydra_engine::compaction::SegmentData;
use sydra_engine::manifest::{Codec, ColumnStats, ColumnType, SegmentManifest};
use sydra_engine::objects::{Kind, ObjectId};

/// Every record the head replays, by seq.
pub fn replay_all(e: &Engine) -> Result<BTreeMap<u64, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut r = e.replay_head().map_err(|e| format!("replay failed: {e}"))?;
    while let Some(x) = r.next_record() {
        let (seq, data) = x.map_err(|e| format!("replay failed: {e}"))?;
        out.insert(seq, data.to_vec());
    }
    Ok(out)
}

/// Every object verifies (BLAKE3 recomputed) and every object reachable
/// from a ref exists.
pub fn check_objects(e: &Engine) -> Result<usize, String> {
    let store = e.repo().objects();
    let mut n = 0;
    for id in store.iter().map_err(|e| e.to_string())? {
        let id = id.map_err(|e| e.to_string())?;
        store
            .get_loose(&id, true)
            .map_err(|e| format!("corrupt object: {e}"))?;
        n += 1;
    }
    // Every pack, whole: entries, trailer, index.
    store.rescan_packs().map_err(|e| e.to_string())?;
    for p in store.packs().iter() {
        let v = sydra_engine::objects::pack::verify_pack(p.path(), &mut |_, _| Ok(()))
            .map_err(|e| e.to_string())?;
        if !v.is_clean() {
            return Err(format!("damaged pack: {:?}", v.problems));
        }
        n += v.objects as usize;
    }
    let refs = e.repo().refs().list("refs/").map_err(|e| e.to_string())?;
    let mut stack: Vec<ObjectId> = refs.into_iter().filter_map(|(_, t)| t.object()).collect();
    let mut seen = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let obj = store
            .get(&id)
            .map_err(|e| format!("reachable object missing: {e}"))?;
        match obj.kind {
            Kind::Commit => {
                let c = obj.commit().map_err(|e| e.to_string())?;
                stack.push(c.tree);
                stack.extend(c.parents.iter().copied());
            }
            Kind::Tree => stack.extend(
                obj.tree()
                    .map_err(|e| e.to_string())?
                    .entries
                    .iter()
                    .map(|x| x.id),
            ),
            Kind::Blob => {}
        }
    }
    Ok(n)
}

/// Whether `want` is on the first-parent chain of refs/heads/main.
pub fn on_main(e: &Engine, want: ObjectId) -> Result<bool, String> {
    let mut cur = e.head().map_err(|e| e.to_string())?;
    while let Some(id) = cur {
        if id == want {
            return Ok(true);
        }
        cur = e
            .repo()
            .objects()
            .get(&id)
            .map_err(|e| e.to_string())?
            .commit()
            .map_err(|e| e.to_string())?
            .first_parent();
    }
    Ok(false)
}

/// A one-row segment `series/<series>/raw/<name>` whose `ts` and `value`
/// columns both hold `bytes`.
pub fn segment(series: &str, name: &str, bytes: &[u8]) -> SegmentData {
    let col = |n: &str| ColumnStats {
        name: n.into(),
        ty: ColumnType::Bytes,
        codec: Codec::Raw,
        value_count: 1,
        null_count: 0,
        min: vec![],
        max: vec![],
        stored_bytes: bytes.len() as u64,
    };
    SegmentData {
        manifest: SegmentManifest {
            series: series.into(),
            rollup: "raw".into(),
            segment: name.into(),
            min_ts: 0,
            max_ts: 0,
            row_count: 1,
            columns: vec![col("ts"), col("value")],
            meta: BTreeMap::new(),
        },
        columns: vec![
            ("ts".into(), bytes.to_vec()),
            ("value".into(), bytes.to_vec()),
        ],
    }
}
