//! After the power comes back: every acknowledged item must be there.

use std::collections::BTreeMap;
use std::path::Path;

use sydra_engine::objects::ObjectId;
use sydra_engine::refs::RefName;
use sydra_engine::{Engine, Replay, Repository, Tail};

use super::child::{Ack, options, payload, point_value, series_key};

#[derive(Debug, Default)]
pub struct Acked {
    records: BTreeMap<u64, Vec<u8>>,
    acked_in: BTreeMap<u64, u32>,
    pub cycle: u32,
    last_commit: Option<ObjectId>,
    commits: u64,
    snapshots: BTreeMap<String, ObjectId>,
    /// Per cycle seed: the last acknowledged timestamp of its series.
    points: BTreeMap<u64, i64>,
    /// The last acknowledged fetch: the ref it set and its commit.
    fetched: Option<(String, ObjectId)>,
    pub fetches: u64,
}

impl Acked {
    pub fn absorb(&mut self, acks: Vec<Ack>) {
        for a in acks {
            match a {
                Ack::Record(seq, t, c) => {
                    self.records.insert(seq, payload(t, c));
                    self.acked_in.insert(seq, self.cycle);
                }
                Ack::Commit(id) => {
                    self.last_commit = Some(id);
                    self.commits += 1;
                }
                Ack::Snapshot(name, id) => {
                    self.snapshots.insert(name, id);
                }
                Ack::Points(seed, ts) => {
                    let last = self.points.entry(seed).or_insert(ts);
                    *last = (*last).max(ts);
                }
                Ack::Fetch(name, id) => {
                    self.fetched = Some((name, id));
                    self.fetches += 1;
                }
                Ack::Idle => {}
            }
        }
    }
}

/// The records a replay of `commit` yields in `repo`.
fn replay_at(repo: &Repository, commit: ObjectId) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let mut r = Replay::new(
        repo.objects(),
        repo.layout().wal(),
        Some(commit),
        Tail::None,
    )
    .map_err(|e| format!("replay of {commit}: {e}"))?;
    let mut out = Vec::new();
    while let Some(x) = r.next_record() {
        let (seq, data) = x.map_err(|e| format!("replay of {commit}: {e}"))?;
        out.push((seq, data.to_vec()));
    }
    Ok(out)
}

/// Check everything acknowledged so far (the last fetch against
/// `source`); returns (records, commits, snapshots, points).
pub fn verify(dir: &Path, acked: &Acked, source: &Path) -> Result<(u64, u64, u64, u64), String> {
    let e = Engine::open(dir, options()).map_err(|e| format!("reopen failed: {e}"))?;
    // The last acknowledged fetch: its ref is there, and what it brought
    // (objects and WAL ranges) replays as at the source.
    if let Some((name, want)) = &acked.fetched {
        let got = e
            .repo()
            .resolve(name)
            .map_err(|x| format!("acknowledged fetch of {name}: the ref is gone: {x}"))?;
        if got != *want {
            return Err(format!(
                "acknowledged fetch of {name}: {got}, expected {want}"
            ));
        }
        let src = Repository::open(source).map_err(|x| x.to_string())?;
        let (here, there) = (replay_at(e.repo(), *want)?, replay_at(&src, *want)?);
        if here != there || here.is_empty() {
            return Err(format!(
                "acknowledged fetch of {name}: {} records replay here, {} at the source",
                here.len(),
                there.len()
            ));
        }
    }
    let replayed = super::support::replay_all(&e)?;
    for (seq, data) in &acked.records {
        if replayed.get(seq) != Some(data) {
            let segs = sydra_engine::wal::list_segments(&dir.join("wal")).unwrap_or_default();
            let sizes: Vec<String> = segs
                .iter()
                .map(|s| {
                    let p = dir
                        .join("wal")
                        .join(sydra_engine::wal::record::segment_file_name(*s));
                    format!("{s}:{}", std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
                })
                .collect();
            return Err(format!(
                "acknowledged record {seq} (acked in cycle {:?}; last acked {:?}) lost or changed ({} records replayed; recovery: {:?}; segments {sizes:?}; head {:?})",
                acked.acked_in.get(seq),
                acked.records.keys().next_back(),
                replayed.len(),
                e.open_report().wal,
                e.head()
                    .ok()
                    .flatten()
                    .and_then(|h| e.repo().objects().get(&h).ok())
                    .map(|o| o
                        .commit()
                        .map(|c| (c.meta_u64("wal.applied_seq"), c.meta_u64("wal.last_seq")))
                        .ok()),
            ));
        }
    }
    let seqs: Vec<u64> = replayed.keys().copied().collect();
    if let (Some(f), Some(l)) = (seqs.first(), seqs.last())
        && (l - f + 1) as usize != seqs.len()
    {
        return Err("replayed seqs are not contiguous".into());
    }
    if let Some(want) = acked.last_commit
        && !super::support::on_main(&e, want)?
    {
        return Err(format!(
            "acknowledged commit {want} is not on refs/heads/main"
        ));
    }
    for (name, id) in &acked.snapshots {
        let got = e
            .repo()
            .refs()
            .resolve(&RefName::new(name).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        if got != Some(*id) {
            return Err(format!(
                "acknowledged snapshot {name} is {got:?}, expected {id}"
            ));
        }
    }
    // Every acknowledged point is in the head rebuilt from the WAL, once,
    // with its value; nothing was applied twice.
    if let Some(why) = &e.open_report().head_error {
        return Err(format!("the head could not be rebuilt: {why}"));
    }
    let mut distinct = 0u64;
    let view = e.view(None).map_err(|e| e.to_string())?;
    for (seed, last) in &acked.points {
        let s = e
            .find_series(&series_key(*seed))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("series of cycle {seed} lost (acknowledged up to {last})"))?;
        distinct += e.head_points(s).map_err(|e| e.to_string())?.len() as u64;
        // Segments and head together.
        let points = view.points(&series_key(*seed)).map_err(|e| e.to_string())?;
        if points.last().map_or(-1, |p| p.0) < *last {
            return Err(format!(
                "cycle {seed}: points acknowledged up to {last}, the head has {}",
                points.len()
            ));
        }
        for (i, (ts, v)) in points.iter().enumerate() {
            if *ts != i as i64 || *v != point_value(*ts) {
                return Err(format!("cycle {seed}: point {i} is ({ts}, {v:?})"));
            }
        }
    }
    let series_total: u64 = e
        .head_series()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|(_, r, _, _)| e.head_points(*r).map(|p| p.len() as u64).unwrap_or(0))
        .sum();
    let (_, raw, _) = e.head_stats();
    if raw != series_total || distinct > series_total {
        return Err(format!(
            "a point was applied twice: {raw} appended, {series_total} distinct"
        ));
    }
    super::support::check_objects(&e).map_err(|e| format!("after the power cut: {e}"))?;
    Ok((
        acked.records.len() as u64,
        acked.commits,
        acked.snapshots.len() as u64,
        acked.points.values().map(|l| (l + 1) as u64).sum(),
    ))
}
