//! The head's two goals (issue 12), as one JSON line each:
//!
//! ```text
//! head_bench DIR recovery SERIES POINTS   # POINTS per series, then reopen
//! head_bench DIR memory SERIES POINTS     # ingest, RSS, then compact --all
//! ```
//!
//! `recovery`: appends SERIES × POINTS points (10 s apart, commits of
//! 50,000), closes the engine without compacting, and times the reopen,
//! which rebuilds the head from the WAL; the baseline is reading the same
//! WAL files into memory (`std::fs::read`, warm page cache) in the same run.
//! `memory`: the head's own estimate and the process's RSS after ingest,
//! then a full compaction's time and the objects it wrote (skipped with
//! `SYDRA_HEAD_NO_COMPACT=1`).

use std::time::Instant;

use sydra_engine::series::{CompactOptions, SeriesKey, Value};
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options};

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn options() -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            ..WalOptions::default()
        },
        ..Options::default()
    }
}

fn ingest(e: &Engine, series: u64, points: u64) -> Result<u64, Box<dyn std::error::Error>> {
    let t0 = 1_700_000_000_000_000_000i64;
    let mut refs = Vec::with_capacity(series as usize);
    for s in 0..series {
        let key = SeriesKey::new("bench", [("host".to_string(), format!("h{s:07}"))], "value")?;
        refs.push(e.series(&key)?);
    }
    let mut app = e.appender();
    let mut n = 0;
    for p in 0..points {
        for (s, r) in refs.iter().enumerate() {
            // Distinct per series (no two value columns dedupe to one blob).
            let v = s as f64 + p as f64 / 10.0;
            app.append(*r, t0 + p as i64 * 10_000_000_000, Value::F64(v))?;
            n += 1;
            if app.len() >= 50_000 {
                std::mem::replace(&mut app, e.appender()).commit()?;
            }
        }
    }
    app.commit()?;
    e.sync()?;
    Ok(n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, mode, series, points] = args.as_slice() else {
        eprintln!("usage: head_bench DIR recovery|memory SERIES POINTS");
        std::process::exit(2);
    };
    let (series, points): (u64, u64) = (series.parse()?, points.parse()?);
    let e = Engine::create(dir, options())?;
    let t = Instant::now();
    let n = ingest(&e, series, points)?;
    let ingest_s = t.elapsed().as_secs_f64();
    match mode.as_str() {
        "recovery" => {
            drop(e);
            let t = Instant::now();
            let e = Engine::open(dir, options())?;
            let open_s = t.elapsed().as_secs_f64();
            let r = e.open_report();
            if r.head_points != n {
                return Err(format!("the head rebuilt {} points of {n}", r.head_points).into());
            }
            drop(e);
            let t = Instant::now();
            let mut wal_bytes = 0u64;
            for f in std::fs::read_dir(std::path::Path::new(dir).join("wal"))? {
                wal_bytes += std::fs::read(f?.path())?.len() as u64;
            }
            let read_s = t.elapsed().as_secs_f64();
            println!(
                "{{\"mode\": \"recovery\", \"series\": {series}, \"points\": {n}, \"ingest_s\": {ingest_s:.3}, \
                 \"open_s\": {open_s:.3}, \"points_per_s\": {:.0}, \"wal_bytes\": {wal_bytes}, \
                 \"wal_read_s\": {read_s:.4}, \"wal_read_mb_per_s\": {:.0}, \"open_mb_per_s\": {:.0}}}",
                n as f64 / open_s,
                wal_bytes as f64 / read_s / 1e6,
                wal_bytes as f64 / open_s / 1e6
            );
        }
        "memory" => {
            let (_, head_points, head_bytes) = e.head_stats();
            let rss = rss_kib("VmRSS:");
            let t = Instant::now();
            // SYDRA_HEAD_NO_COMPACT=1: the head's memory only.
            let skip = std::env::var_os("SYDRA_HEAD_NO_COMPACT").is_some();
            let r = if skip {
                Default::default()
            } else {
                e.compact(CompactOptions {
                    all: true,
                    ..Default::default()
                })?
            };
            let compact_s = t.elapsed().as_secs_f64();
            let objects = std::fs::read_dir(std::path::Path::new(dir).join("objects"))?
                .filter_map(|d| d.ok())
                .filter_map(|d| std::fs::read_dir(d.path()).ok())
                .map(|d| d.count() as u64)
                .sum::<u64>();
            println!(
                "{{\"mode\": \"memory\", \"series\": {series}, \"points\": {n}, \"ingest_s\": {ingest_s:.3}, \
                 \"head_points\": {head_points}, \"head_point_bytes\": {head_bytes}, \
                 \"rss_after_ingest_kib\": {rss}, \"peak_rss_kib\": {}, \
                 \"bytes_per_point_head\": {:.2}, \"rss_bytes_per_series\": {:.0}, \
                 \"compact_s\": {compact_s:.2}, \"segments\": {}, \"objects\": {objects}}}",
                rss_kib("VmHWM:"),
                head_bytes as f64 / n as f64,
                rss as f64 * 1024.0 / series as f64,
                r.segments_added
            );
        }
        _ => {
            eprintln!("usage: head_bench DIR recovery|memory SERIES POINTS");
            std::process::exit(2);
        }
    }
    Ok(())
}
