//! The WAL index in a checkpoint's tree: `wal/index/<segment first seq>/
//! <chunk first seq>` (both 20 digits) name chunk blobs.

use sydra_objects::{Kind, ObjectId, Store};

use crate::error::{Error, Result};
use crate::wal::Chunk;
use crate::wal::record::parse_seq_name;

/// The tree path of the index.
pub const INDEX_DIR: &str = "wal/index";

/// The tree path of one chunk.
pub fn chunk_path(segment: u64, first_seq: u64) -> String {
    format!("{INDEX_DIR}/{segment:020}/{first_seq:020}")
}

/// The tree path of one segment's chunks.
pub fn segment_path(segment: u64) -> String {
    format!("{INDEX_DIR}/{segment:020}")
}

/// Walk `root` down `path`; `None` when a component is missing.
pub fn tree_at(store: &Store, root: ObjectId, path: &str) -> Result<Option<ObjectId>> {
    let mut cur = root;
    for comp in path.split('/') {
        let obj = store.get(&cur)?;
        let tree = obj.tree()?;
        match tree.find(comp) {
            Some(e) if e.kind == Kind::Tree => cur = e.id,
            _ => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// Segment first seqs present in the index of `root`, ascending.
pub fn segments(store: &Store, root: ObjectId) -> Result<Vec<u64>> {
    let Some(index) = tree_at(store, root, INDEX_DIR)? else {
        return Ok(Vec::new());
    };
    let obj = store.get(&index)?;
    let mut out: Vec<u64> = obj
        .tree()?
        .entries
        .iter()
        .filter_map(|e| parse_seq_name(e.name))
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Every chunk in the index of `root`, ordered by first seq, with its blob id.
pub fn chunks(store: &Store, root: ObjectId) -> Result<Vec<(ObjectId, Chunk)>> {
    let Some(index) = tree_at(store, root, INDEX_DIR)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let idx_obj = store.get(&index)?;
    for seg in idx_obj.tree()?.entries {
        let Some(seg_seq) = parse_seq_name(seg.name) else {
            return Err(Error::revision(
                INDEX_DIR,
                format!("unexpected index entry {:?} in tree {index}", seg.name),
            ));
        };
        let seg_obj = store.get(&seg.id)?;
        for e in seg_obj.tree()?.entries {
            let blob = store.get(&e.id)?;
            blob.expect(Kind::Blob)?;
            let chunk = Chunk::decode(&blob.data)
                .map_err(|source| sydra_objects::Error::Decode { id: e.id, source })?;
            if chunk.segment != seg_seq || parse_seq_name(e.name) != Some(chunk.first_seq) {
                return Err(Error::ChunkMismatch {
                    chunk: e.id,
                    path: format!("{INDEX_DIR}/{}/{}", seg.name, e.name).into(),
                    reason: format!(
                        "chunk describes segment {} seq {}, its path disagrees",
                        chunk.segment, chunk.first_seq
                    ),
                });
            }
            out.push((e.id, chunk));
        }
    }
    out.sort_by_key(|(_, c)| c.first_seq);
    Ok(out)
}
