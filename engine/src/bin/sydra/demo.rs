//! `sydra demo`: an embedded time-series workload run end to end through
//! the public API, the way a server embedding Sydra would use it.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options};

/// Marks a directory as created by the demo (and so safe to reset).
const MARKER: &str = ".sydra-demo";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of series.
    #[arg(long, default_value_t = 1000)]
    series: u32,
    /// Points per series.
    #[arg(long, default_value_t = 2000)]
    points: u32,
    /// Writer threads (group commit).
    #[arg(long, default_value_t = 4)]
    writers: u32,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// A point record: series id, timestamp (ms), value.
fn encode_point(series: u32, ts_ms: i64, value: f64) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[..4].copy_from_slice(&series.to_le_bytes());
    b[4..12].copy_from_slice(&ts_ms.to_le_bytes());
    b[12..].copy_from_slice(&value.to_le_bytes());
    b
}

/// Deterministic temperature-like signal with noise.
fn value(series: u32, i: u32) -> f64 {
    let mut x = u64::from(series) << 32 | u64::from(i);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let noise = (x % 1000) as f64 / 1000.0 - 0.5;
    20.0 + 5.0 * (f64::from(i) / 240.0 + f64::from(series)).sin() + noise
}

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
    fs::create_dir_all(dir)?;
    fs::write(dir.join(MARKER), b"created by sydra demo; safe to delete\n")?;
    Ok(())
}

pub fn demo(dir: &Path, a: DemoArgs) -> anyhow::Result<u8> {
    prepare_dir(dir)?;
    let opts = Options {
        wal: WalOptions {
            sync: SyncMode::Always,
            ..WalOptions::default()
        },
        ..Options::default()
    };
    let engine = Arc::new(Engine::open(dir, opts)?);
    let start = Instant::now();
    let total = u64::from(a.series) * u64::from(a.points);
    let written = Arc::new(AtomicU64::new(0));
    let half = a.points / 2;
    let ingest = |from: u32, to: u32| -> anyhow::Result<()> {
        let threads: Vec<_> = (0..a.writers)
            .map(|w| {
                let engine = Arc::clone(&engine);
                let written = Arc::clone(&written);
                let (series, writers) = (a.series, a.writers);
                std::thread::spawn(move || -> anyhow::Result<()> {
                    for i in from..to {
                        let batch: Vec<[u8; 20]> = (0..series)
                            .filter(|s| s % writers == w)
                            .map(|s| {
                                encode_point(
                                    s,
                                    1_700_000_000_000 + i64::from(i) * 10_000,
                                    value(s, i),
                                )
                            })
                            .collect();
                        engine.append_batch(&batch)?;
                        written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        for t in threads {
            t.join()
                .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
        }
        Ok(())
    };
    let mut checkpoints = 0;
    ingest(0, half)?;
    engine.checkpoint(None, "demo: first half")?;
    checkpoints += 1;
    let (snap, _) = engine.snapshot(Some("half"))?;
    ingest(half, a.points)?;
    let ingest_secs = start.elapsed().as_secs_f64();
    let cp = engine.checkpoint(None, "demo: second half")?;
    checkpoints += 1;
    let t = Instant::now();
    let mut head_records = 0u64;
    let mut r = engine.replay_head()?;
    while let Some(rec) = r.next_record() {
        rec?;
        head_records += 1;
    }
    let replay_secs = t.elapsed().as_secs_f64();
    let mut snap_records = 0u64;
    let mut r = engine.replay(snap.as_str())?;
    while let Some(rec) = r.next_record() {
        rec?;
        snap_records += 1;
    }
    let n = written.load(Ordering::Relaxed);
    if n != total || head_records != total || snap_records != u64::from(a.series) * u64::from(half)
    {
        bail!(
            "replay mismatch: wrote {n}, replayed {head_records} from head and {snap_records} from the snapshot"
        );
    }
    let bytes = dir_size(dir)?;
    let summary = serde_json::json!({
        "dir": dir.display().to_string(),
        "points": n,
        "ingest_seconds": ingest_secs,
        "points_per_second": n as f64 / ingest_secs,
        "bytes_on_disk": bytes,
        "raw_bytes_16_per_point": n * 16,
        "checkpoints": checkpoints,
        "head": cp.commit.to_hex(),
        "replayed_from_head": head_records,
        "replayed_from_snapshot": snap_records,
        "replay_records_per_second": head_records as f64 / replay_secs,
    });
    if a.json {
        println!("{summary}");
    } else {
        println!("sydra demo — {}", dir.display());
        println!(
            "  ingested     {n} points from {} writer threads in {ingest_secs:.2} s ({:.0} points/s, every append durable)",
            a.writers,
            n as f64 / ingest_secs
        );
        println!(
            "  on disk      {} bytes ({:.2} x raw 16 B/point)",
            bytes,
            bytes as f64 / (n * 16) as f64
        );
        println!("  checkpoints  {checkpoints}, head {}", cp.commit.short(12));
        println!(
            "  replay       {head_records} records from head ({:.0} records/s), {snap_records} from snapshot {snap}",
            head_records as f64 / replay_secs
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
