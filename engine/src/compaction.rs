//! Compaction commits: a change set of segment adds, replaces and removes
//! applied to the head tree with the arena tree builder and committed to
//! `refs/heads/main` by compare-and-swap — all of it or none of it.
//!
//! A change set is prepared against a base commit (the head the compactor
//! read). If the head moved on before the commit (a checkpoint or another
//! compaction landed), the set is re-applied onto the new head when none of
//! its segment paths changed between the base and the head, and refused
//! with [`Error::Conflict`] naming the path when one did. Nothing is
//! written to the ref on any error.

use sydra_objects::{Batch, Kind, ObjectId, TreeBuilder, validate_name};

use crate::diff::diff_trees;
use crate::engine::{Checkpoint, Engine};
use crate::error::{Error, Result};
use crate::manifest::{SegmentManifest, segment_path};

/// Identifies one segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentKey {
    /// Series id.
    pub series: String,
    /// Rollup.
    pub rollup: String,
    /// Segment id.
    pub segment: String,
}

impl SegmentKey {
    /// Build a key.
    pub fn new(series: &str, rollup: &str, segment: &str) -> Self {
        SegmentKey {
            series: series.into(),
            rollup: rollup.into(),
            segment: segment.into(),
        }
    }

    /// `series/<series>/<rollup>/<segment>`.
    pub fn path(&self) -> String {
        segment_path(&self.series, &self.rollup, &self.segment)
    }
}

/// A segment's manifest and column blobs.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentData {
    /// The manifest; its series/rollup/segment name the path.
    pub manifest: SegmentManifest,
    /// `(column name, encoded bytes)`; names must equal the manifest's.
    pub columns: Vec<(String, Vec<u8>)>,
}

impl SegmentData {
    fn key(&self) -> SegmentKey {
        SegmentKey::new(
            &self.manifest.series,
            &self.manifest.rollup,
            &self.manifest.segment,
        )
    }
}

/// One change.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentChange {
    /// A new segment; fails if the path exists.
    Add(SegmentData),
    /// Replace an existing segment; fails if it does not exist.
    Replace(SegmentData),
    /// Remove an existing segment; fails if it does not exist.
    Remove(SegmentKey),
}

impl SegmentChange {
    fn key(&self) -> SegmentKey {
        match self {
            SegmentChange::Add(d) | SegmentChange::Replace(d) => d.key(),
            SegmentChange::Remove(k) => k.clone(),
        }
    }
}

/// A set of changes committed together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    /// The changes, applied in order.
    pub changes: Vec<SegmentChange>,
    /// Advance `wal.applied_seq` to this (default: unchanged).
    pub applied_seq: Option<u64>,
    /// Commit message.
    pub message: String,
}

/// The result of a compaction commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionCommit {
    /// The checkpoint that carries the change set.
    pub checkpoint: Checkpoint,
    /// Whether the head had moved and the set was re-applied onto it.
    pub reapplied: bool,
}

fn validate(cs: &ChangeSet) -> Result<Vec<String>> {
    let mut paths = Vec::with_capacity(cs.changes.len());
    for ch in &cs.changes {
        let key = ch.key();
        for (what, n) in [
            ("series", &key.series),
            ("rollup", &key.rollup),
            ("segment", &key.segment),
        ] {
            validate_name(n.as_bytes())
                .map_err(|e| Error::InvalidChange(format!("{what} {n:?}: {e}")))?;
        }
        if let SegmentChange::Add(d) | SegmentChange::Replace(d) = ch {
            d.manifest
                .validate()
                .map_err(|e| Error::InvalidChange(format!("{}: {e}", key.path())))?;
            let mut want: Vec<&str> = d.manifest.columns.iter().map(|c| c.name.as_str()).collect();
            let mut have: Vec<&str> = d.columns.iter().map(|(n, _)| n.as_str()).collect();
            want.sort_unstable();
            have.sort_unstable();
            if want != have {
                return Err(Error::InvalidChange(format!(
                    "{}: column blobs {have:?} do not match the manifest's columns {want:?}",
                    key.path()
                )));
            }
        }
        let p = key.path();
        if paths.contains(&p) {
            return Err(Error::InvalidChange(format!(
                "{p} appears twice in one change set"
            )));
        }
        paths.push(p);
    }
    Ok(paths)
}

fn apply(cs: &ChangeSet, b: &mut TreeBuilder<'_>, batch: &mut Batch) -> Result<()> {
    for ch in &cs.changes {
        let path = ch.key().path();
        let exists = b.get(&path)?.is_some();
        match ch {
            SegmentChange::Add(_) if exists => return Err(Error::SegmentExists { path }),
            SegmentChange::Replace(_) | SegmentChange::Remove(_) if !exists => {
                return Err(Error::MissingSegment { path });
            }
            _ => {}
        }
        if exists {
            b.remove(&path)?;
        }
        if let SegmentChange::Add(d) | SegmentChange::Replace(d) = ch {
            let manifest = d
                .manifest
                .encode()
                .map_err(|e| Error::InvalidChange(e.to_string()))?;
            let id = batch.put(Kind::Blob, &manifest)?;
            b.upsert(&format!("{path}/manifest"), Kind::Blob, id)?;
            for (name, bytes) in &d.columns {
                let id = batch.put(Kind::Blob, bytes)?;
                b.upsert(&format!("{path}/columns/{name}"), Kind::Blob, id)?;
            }
        }
    }
    Ok(())
}

impl Engine {
    /// Commit `changes`, prepared against `base` (the head the compactor
    /// read; `None` if there was none). See the module docs.
    pub fn commit_compaction(
        &self,
        base: Option<ObjectId>,
        changes: &ChangeSet,
    ) -> Result<CompactionCommit> {
        self.check_poison()?;
        let paths = validate(changes)?;
        let _one = self.commit_lock.lock();
        let head = self.head()?;
        let mut reapplied = false;
        if head != base {
            let store = self.repo().objects();
            let tree = |c: Option<ObjectId>| -> Result<Option<ObjectId>> {
                c.map(|id| Ok(store.get(&id)?.commit()?.tree)).transpose()
            };
            for ch in diff_trees(store, tree(base)?, tree(head)?)? {
                if let Some(p) = paths
                    .iter()
                    .find(|p| ch.path == **p || ch.path.starts_with(&format!("{p}/")))
                {
                    return Err(Error::Conflict {
                        path: p.clone(),
                        head,
                    });
                }
            }
            reapplied = true;
        }
        let message = if changes.message.is_empty() {
            "compaction"
        } else {
            &changes.message
        };
        let r = self.checkpoint_locked(changes.applied_seq, message, |b, batch| {
            apply(changes, b, batch).map(|()| crate::engine::Edited::Commit)
        });
        let checkpoint = self
            .note(r)?
            .ok_or(Error::NoHead("the compaction commit was abandoned"))?;
        Ok(CompactionCommit {
            checkpoint,
            reapplied,
        })
    }
}
