//! The Sydra API in one flow: ingest points into the WAL, compact an hour
//! into a segment, snapshot, time-travel, replay.
//!
//! `cargo run -p sydra-engine --example timeseries`

use sydra_engine::codec::{decode_f64, encode_f64, encode_timestamps};
use sydra_engine::compaction::{ChangeSet, SegmentChange, SegmentData};
use sydra_engine::manifest::{Codec, ColumnStats, ColumnType, SegmentManifest};
use sydra_engine::{Engine, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile_dir()?;
    // One writer per directory; SyncMode::Always: an append returns once durable.
    // `create` makes the data directory (`open` would refuse a new one).
    let engine = Engine::create(&dir, Options::default())?;

    // 1. Ingest: one WAL record per point (series, timestamp, value).
    let start_ns: i64 = 1_700_000_000_000_000_000;
    let points: Vec<(i64, f64)> = (0..360)
        .map(|i| (start_ns + i * 10_000_000_000, 20.0 + (i % 7) as f64 / 10.0))
        .collect();
    let records: Vec<Vec<u8>> = points
        .iter()
        .map(|(t, v)| [&t.to_le_bytes()[..], &v.to_le_bytes()].concat())
        .collect();
    let seqs = engine.append_batch(&records)?;
    println!("appended seqs {seqs:?}");

    // 2. Compact the hour into a segment, advancing wal.applied_seq.
    let ts: Vec<i64> = points.iter().map(|p| p.0).collect();
    let vals: Vec<f64> = points.iter().map(|p| p.1).collect();
    let (ts_col, val_col) = (encode_timestamps(&ts), encode_f64(&vals));
    let col = |name: &str, ty, codec, bytes: &[u8]| ColumnStats {
        name: name.into(),
        ty,
        codec,
        value_count: 360,
        null_count: 0,
        min: vec![],
        max: vec![],
        stored_bytes: bytes.len() as u64,
    };
    let manifest = SegmentManifest {
        series: "cpu.host-a".into(),
        rollup: "raw".into(),
        segment: "2023-11-14T22".into(),
        min_ts: ts[0],
        max_ts: ts[359],
        row_count: 360,
        columns: vec![
            col("ts", ColumnType::Timestamp, Codec::DeltaOfDelta, &ts_col),
            col("value", ColumnType::F64, Codec::GorillaXor, &val_col),
        ],
        meta: Default::default(),
    };
    let data = SegmentData {
        manifest,
        columns: vec![("ts".into(), ts_col), ("value".into(), val_col)],
    };
    let set = ChangeSet {
        changes: vec![SegmentChange::Add(data)],
        applied_seq: Some(*seqs.end()),
        message: "compact".into(),
    };
    let commit = engine.commit_compaction(engine.head()?, &set)?;
    println!("compaction commit {}", commit.checkpoint.commit);

    // 3. Snapshot, then more writes that only live in the WAL.
    engine.snapshot(Some("after-first-hour"))?;
    engine.append(b"late point")?;

    // 4. Time travel: read the segment as of the snapshot, by revision.
    let repo = engine.repo();
    let id = repo.resolve("after-first-hour:series/cpu.host-a/raw/2023-11-14T22/columns/value")?;
    let values = decode_f64(&repo.objects().get(&id)?.data)?;
    println!(
        "{} values as of the snapshot, first {}",
        values.len(),
        values[0]
    );

    // 5. Replay what the head has not applied yet: just the late point.
    let mut replay = engine.replay_head()?;
    while let Some(rec) = replay.next_record() {
        let (seq, bytes) = rec?;
        println!("replay seq {seq}: {:?}", String::from_utf8_lossy(bytes));
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("sydra-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
