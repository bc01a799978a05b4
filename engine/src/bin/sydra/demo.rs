//! `sydra demo`: an embedded time-series workload run end to end through
//! the public API, the way a server embedding Sydra would use it:
//! several writer threads ingest points into the WAL with group commit;
//! each finished hour is compacted into per-series segments (delta-of-delta
//! timestamps, Gorilla XOR values) committed with `wal.applied_seq`
//! advanced; a snapshot is taken part-way; at the end the demo replays from
//! the head and the snapshot, reads one series as of the snapshot, applies
//! retention, collects garbage and checks the store.

use std::fs;
use std::io::IsTerminal;
use std::num::NonZeroU64;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use sydra_engine::codec::{decode_timestamps, encode_f64, encode_timestamps};
use sydra_engine::compaction::{ChangeSet, SegmentChange, SegmentData};
use sydra_engine::gc::{FsckOptions, GcOptions, Keep, NoProgress};
use sydra_engine::manifest::{Codec, ColumnStats, ColumnType, SegmentManifest};
use sydra_engine::objects::ObjectId;
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options, Repository, maintenance};

/// Marks a directory as created by the demo (and so safe to reset).
const MARKER: &str = ".sydra-demo";
/// Seconds between points of a series.
const INTERVAL_S: i64 = 10;
/// Points per series per hour.
const PER_HOUR: u32 = 360;
/// 2023-11-14T22:13:20Z, a fixed start so runs are reproducible.
const START_S: i64 = 1_700_000_000 - 1_700_000_000 % 3600;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    // Ranges are checked by clap, so an out-of-range value is a usage error
    // (exit 2) reported before anything is touched. The demo snapshots half
    // way, which needs at least two hours.
    /// Number of series (at least 1).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    series: u32,
    /// Hours of data per series (at least 2; 360 points each, one every 10 s).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(2..))]
    hours: u32,
    /// Writer threads (at least 1; their appends share fdatasyncs: group
    /// commit).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    writers: u32,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// A point record in the WAL: series id, timestamp (ns), value.
fn encode_point(series: u32, ts: i64, value: f64) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[..4].copy_from_slice(&series.to_le_bytes());
    b[4..12].copy_from_slice(&ts.to_le_bytes());
    b[12..].copy_from_slice(&value.to_le_bytes());
    b
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Whether series `s` has a point at step `i` (about 2% gaps).
fn present(s: u32, i: u32) -> bool {
    !mix(u64::from(s) << 32 | u64::from(i)).is_multiple_of(50)
}

/// A temperature-like signal (even series: slow drift and small noise,
/// quantised to the sensor's 0.1 °C) or a CPU-like one (odd series: busier,
/// whole percent).
fn value(s: u32, i: u32) -> f64 {
    let noise = (mix(u64::from(s) << 32 | u64::from(i) | 1 << 63) % 1000) as f64 / 1000.0 - 0.5;
    let t = f64::from(i) / f64::from(PER_HOUR);
    if s.is_multiple_of(2) {
        let v = 20.0 + 4.0 * (t * 0.26 + f64::from(s)).sin() + 0.08 * noise;
        (v * 10.0).round() / 10.0
    } else {
        (35.0 + 25.0 * (t * 1.3 + f64::from(s)).sin() + 6.0 * noise)
            .clamp(0.0, 100.0)
            .round()
    }
}

fn ts_of(i: u32) -> i64 {
    (START_S + i64::from(i) * INTERVAL_S) * 1_000_000_000
}

fn series_name(s: u32) -> String {
    format!("s{s:05}")
}

fn hour_name(h: u32) -> String {
    sydra_engine::time::format_rfc3339(ts_of(h * PER_HOUR))[..13].to_owned()
}

/// Make the demo's own data directory: reset one an earlier demo made
/// (it carries `MARKER`), refuse any other non-empty directory, then create
/// the store explicitly (the engine never creates one on open) and mark it.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        if dir.join(MARKER).exists() {
            fs::remove_dir_all(dir)
                .with_context(|| format!("cannot reset demo directory {}", dir.display()))?;
        } else if fs::read_dir(dir)?.next().is_some() {
            bail!(
                "{} exists, is not empty and was not created by `sydra demo`; choose another --dir",
                dir.display()
            );
        }
    }
    Repository::init(dir)?;
    fs::write(dir.join(MARKER), b"created by sydra demo; safe to delete\n")?;
    Ok(())
}

/// Ingest steps `from..to` for every series with `writers` threads.
fn ingest(
    engine: &Arc<Engine>,
    series: u32,
    writers: u32,
    from: u32,
    to: u32,
) -> anyhow::Result<u64> {
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let engine = Arc::clone(engine);
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let mut n = 0;
                for i in from..to {
                    let batch: Vec<[u8; 20]> = (w..series)
                        .step_by(writers as usize)
                        .filter(|&s| present(s, i))
                        .map(|s| encode_point(s, ts_of(i), value(s, i)))
                        .collect();
                    if !batch.is_empty() {
                        engine.append_batch(&batch)?;
                        n += batch.len() as u64;
                    }
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for t in threads {
        total += t
            .join()
            .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
    }
    Ok(total)
}

/// The segment of series `s` for hour `h`, as a compactor would build it
/// from its in-memory buffer.
fn segment(s: u32, h: u32) -> anyhow::Result<SegmentData> {
    let steps: Vec<u32> = (h * PER_HOUR..(h + 1) * PER_HOUR)
        .filter(|&i| present(s, i))
        .collect();
    let ts: Vec<i64> = steps.iter().map(|&i| ts_of(i)).collect();
    let vals: Vec<f64> = steps.iter().map(|&i| value(s, i)).collect();
    let (ts_col, val_col) = (encode_timestamps(&ts), encode_f64(&vals));
    let fmin = vals.iter().copied().fold(f64::INFINITY, f64::min);
    let fmax = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (first, last) = (
        ts.first().copied().unwrap_or(0),
        ts.last().copied().unwrap_or(0),
    );
    let n = ts.len() as u64;
    let manifest = SegmentManifest {
        series: series_name(s),
        rollup: "raw".into(),
        segment: hour_name(h),
        min_ts: first,
        max_ts: last,
        row_count: n,
        columns: vec![
            ColumnStats {
                name: "ts".into(),
                ty: ColumnType::Timestamp,
                codec: Codec::DeltaOfDelta,
                value_count: n,
                null_count: 0,
                min: first.to_le_bytes().to_vec(),
                max: last.to_le_bytes().to_vec(),
                stored_bytes: ts_col.len() as u64,
            },
            ColumnStats {
                name: "value".into(),
                ty: ColumnType::F64,
                codec: Codec::GorillaXor,
                value_count: n,
                null_count: 0,
                min: fmin.to_le_bytes().to_vec(),
                max: fmax.to_le_bytes().to_vec(),
                stored_bytes: val_col.len() as u64,
            },
        ],
        meta: [(
            "unit".to_owned(),
            if s.is_multiple_of(2) {
                b"celsius".to_vec()
            } else {
                b"percent".to_vec()
            },
        )]
        .into_iter()
        .collect(),
    };
    manifest.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(SegmentData {
        manifest,
        columns: vec![("ts".into(), ts_col), ("value".into(), val_col)],
    })
}

/// Points of one series readable at `rev` (all its segments' ts columns).
fn points_at(repo: &Repository, rev: &str, series: &str) -> anyhow::Result<u64> {
    let dir = repo.resolve(&format!("{rev}:series/{series}/raw"))?;
    let mut n = 0;
    for seg in repo.objects().get(&dir)?.tree()?.entries {
        let ts = repo.resolve(&format!(
            "{rev}:series/{series}/raw/{}/columns/ts",
            seg.name
        ))?;
        n += decode_timestamps(&repo.objects().get(&ts)?.data)?.len() as u64;
    }
    Ok(n)
}

struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(len: u64) -> Bar {
        Bar(std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(len);
            let style = indicatif::ProgressStyle::with_template(
                "{spinner} {msg:24} [{bar:30}] {pos}/{len} hours",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            b.set_style(style);
            b
        }))
    }
    fn step(&self, msg: &str) {
        if let Some(b) = &self.0 {
            b.set_message(msg.to_owned());
            b.inc(1);
        }
    }
    fn done(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

pub fn demo(dir: &Path, a: DemoArgs) -> anyhow::Result<u8> {
    prepare_dir(dir)?;
    let wal = WalOptions {
        sync: SyncMode::Always,
        segment_size: 4 << 20,
        max_record: 1 << 20,
        ..WalOptions::default()
    };
    let engine = Arc::new(Engine::open(
        dir,
        Options {
            wal,
            ..Options::default()
        },
    )?);
    let bar = Bar::new(u64::from(a.hours));
    let started = Instant::now();
    let (mut points, mut compacted_points, mut column_bytes, mut commits) =
        (0u64, 0u64, 0u64, 0u64);
    let snap_hour = a.hours / 2;
    let mut snapshot = None;
    for h in 0..a.hours {
        let (from, to) = (h * PER_HOUR, (h + 1) * PER_HOUR);
        if h == snap_hour {
            // Half an hour in, checkpoint and snapshot: the snapshot commits
            // the half hour still only in the WAL.
            let half = ingest(&engine, a.series, a.writers, from, from + PER_HOUR / 2)?;
            points += half;
            engine.checkpoint(None, "demo: checkpoint before snapshot")?;
            commits += 1;
            let (name, id) = engine.snapshot(Some("demo-half"))?;
            snapshot = Some((name, id, half));
            points += ingest(&engine, a.series, a.writers, from + PER_HOUR / 2, to)?;
        } else {
            points += ingest(&engine, a.series, a.writers, from, to)?;
        }
        bar.step(&format!("ingested {}", hour_name(h)));
        if h + 1 == a.hours {
            break; // the last hour stays in the WAL, for replay
        }
        let applied = engine.sync()?;
        let mut changes = Vec::with_capacity(a.series as usize);
        for s in 0..a.series {
            let seg = segment(s, h)?;
            compacted_points += seg.manifest.row_count;
            column_bytes += seg.columns.iter().map(|c| c.1.len() as u64).sum::<u64>();
            changes.push(SegmentChange::Add(seg));
        }
        let set = ChangeSet {
            changes,
            applied_seq: Some(applied),
            message: format!("compact hour {}", hour_name(h)),
        };
        engine.commit_compaction(engine.head()?, &set)?;
        commits += 1;
    }
    bar.done();
    let ingest_secs = started.elapsed().as_secs_f64();
    let repo = engine.repo().clone();

    // Replay from the head: exactly the last hour, still only in the WAL.
    let t = Instant::now();
    let (mut head_records, mut head_bytes) = (0u64, 0u64);
    let mut r = engine.replay_head()?;
    while let Some(rec) = r.next_record() {
        head_bytes += rec?.1.len() as u64;
        head_records += 1;
    }
    let replay_secs = t.elapsed().as_secs_f64().max(1e-9);
    let last_hour: u64 = (0..a.series)
        .map(|s| {
            ((a.hours - 1) * PER_HOUR..a.hours * PER_HOUR)
                .filter(|&i| present(s, i))
                .count() as u64
        })
        .sum();
    ensure!(
        head_records == last_hour,
        "replay from head yielded {head_records} records; {last_hour} were written after the last compaction"
    );

    // Replay from the snapshot: exactly the half hour it committed.
    let (snap_name, snap_id, snap_half) = snapshot.context("the demo took no snapshot")?;
    let mut snap_records = 0u64;
    let mut r = engine.replay(snap_name.as_str())?;
    while let Some(rec) = r.next_record() {
        rec?;
        snap_records += 1;
    }
    ensure!(
        snap_records == snap_half,
        "replay from {snap_name} yielded {snap_records} records; it committed {snap_half}"
    );

    // Time travel: series 0 as of the snapshot, by name and by time.
    let snap_time = repo.objects().get(&snap_id)?.commit()?.timestamp;
    let s0 = series_name(0);
    let as_of_snapshot = points_at(&repo, snap_name.as_str(), &s0)?;
    let by_time = points_at(
        &repo,
        &format!("main@{{{}}}", sydra_engine::time::format_rfc3339(snap_time)),
        &s0,
    )?;
    let expected: u64 = (0..snap_hour * PER_HOUR).filter(|&i| present(0, i)).count() as u64;
    ensure!(
        as_of_snapshot == expected && by_time == expected,
        "series {s0} as of the snapshot has {as_of_snapshot} points ({by_time} by time); expected {expected}"
    );
    let now_points = points_at(&repo, "main", &s0)?;

    // Retention: keep the last few commits of main; snapshots keep what they
    // reach. Then collect, with no grace period (nothing else writes here).
    let objects_before_gc = repo.objects().iter()?.count() as u64;
    let keep = Keep::Commits(NonZeroU64::new(3).context("retention count")?);
    let gc = engine.gc(&GcOptions {
        grace: Duration::ZERO,
        retain: Some(keep),
        ..GcOptions::default()
    })?;
    // The snapshot still replays after retention and GC.
    let mut again = 0u64;
    let mut r = engine.replay(snap_name.as_str())?;
    while let Some(rec) = r.next_record() {
        rec?;
        again += 1;
    }
    ensure!(
        again == snap_half,
        "after gc, replay from {snap_name} yielded {again} records; expected {snap_half}"
    );
    let fsck = maintenance::fsck(&repo, &FsckOptions::default(), &NoProgress)?;
    ensure!(
        fsck.is_clean(),
        "fsck found {} problem(s), first: {:?}",
        fsck.problems.len(),
        fsck.problems.first()
    );

    let objects = repo.objects().iter()?.count() as u64;
    let bytes = dir_size(dir)?;
    let summary = serde_json::json!({
        "dir": dir.display().to_string(),
        "series": a.series,
        "points": points,
        "ingest_seconds": ingest_secs,
        "points_per_second": points as f64 / ingest_secs,
        "bytes_on_disk": bytes,
        "compacted_points": compacted_points,
        "column_bytes": column_bytes,
        "compression_ratio_vs_16_bytes_per_point": (compacted_points * 16) as f64 / column_bytes.max(1) as f64,
        "objects": objects,
        "commits": commits,
        "head": engine.head()?.map(|h: ObjectId| h.to_hex()),
        "replay_records": head_records,
        "replay_records_per_second": head_records as f64 / replay_secs,
        "replay_mb_per_second": head_bytes as f64 / replay_secs / 1e6,
        "objects_before_gc": objects_before_gc,
        "gc_objects_deleted": gc.objects.swept.deleted,
        "gc_bytes_freed": gc.objects.swept.bytes_freed,
        "gc_wal_segments_deleted": gc.wal.deleted.len(),
        "gc_wal_bytes_freed": gc.wal.bytes_freed,
        "fsck_clean": fsck.is_clean(),
        "fsck_objects_checked": fsck.objects().count,
        "snapshot": snap_name.as_str(),
        "snapshot_replay_records": snap_records,
        "series0_points_as_of_snapshot": as_of_snapshot,
        "series0_points_now": now_points,
    });
    if a.json {
        println!("{summary}");
    } else {
        println!(
            "sydra demo — {} series × {} hours in {}",
            a.series,
            a.hours,
            dir.display()
        );
        println!(
            "  ingest       {points} points in {ingest_secs:.1} s: {:.0} points/s, every append durable ({} writer threads, group commit)",
            points as f64 / ingest_secs,
            a.writers
        );
        println!(
            "  compaction   {commits} commits; {compacted_points} points in {column_bytes} column bytes: {:.1}x smaller than 16 B/point",
            (compacted_points * 16) as f64 / column_bytes.max(1) as f64
        );
        println!(
            "  on disk      {:.1} MB in {objects} objects + WAL",
            bytes as f64 / 1e6
        );
        println!(
            "  replay       {head_records} records from the head at {:.0} records/s ({:.0} MB/s), verified",
            head_records as f64 / replay_secs,
            head_bytes as f64 / replay_secs / 1e6
        );
        println!(
            "  snapshot     {snap_name}: replayed {snap_records} records; {s0} had {as_of_snapshot} points then (by name and by time), {now_points} now"
        );
        println!(
            "  retention    kept 3 commits of main; gc reclaimed {} objects ({:.1} MB) and {} WAL segments ({:.1} MB)",
            gc.objects.swept.deleted,
            gc.objects.swept.bytes_freed as f64 / 1e6,
            gc.wal.deleted.len(),
            gc.wal.bytes_freed as f64 / 1e6
        );
        println!(
            "  fsck         clean: {} objects verified (BLAKE3 recomputed), every reachable WAL chunk checked",
            fsck.objects().count
        );
    }
    Ok(0)
}

fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
