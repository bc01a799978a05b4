//! `sydra demo`: an embedded time-series workload run end to end through
//! the public API, the way a server embedding Sydra uses it — and then
//! checked, not just timed:
//!
//! 1. writer threads ingest points through the appender (series handles,
//!    one durable group-committed WAL record set per commit), and call
//!    [`Engine::maintain`] after their commits: compaction of each finished
//!    hour from the head is the engine's decision, not demo code;
//! 2. half-way through, a checkpoint and a snapshot;
//! 3. late corrections arrive for an hour already compacted (a changed
//!    value and a new point), so that hour's segment is replaced;
//! 4. the engine is closed and reopened: the head is rebuilt from the WAL;
//! 5. every point is read back by `query` and compared with what was
//!    ingested; the same query as of the snapshot shows exactly the earlier
//!    state; hourly aggregates equal the same aggregates computed from the
//!    raw points; retention and GC reclaim; fsck is clean.

use std::fs;
use std::io::IsTerminal;
use std::num::NonZeroU64;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use sydra_engine::gc::{FsckOptions, GcOptions, Keep, NoProgress};
use sydra_engine::series::{Agg, CompactOptions, Selector, SeriesKey, Value};
use sydra_engine::time::format_rfc3339;
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options, Repository, maintenance};

/// Marks a directory as created by the demo (and so safe to reset).
const MARKER: &str = ".sydra-demo";
/// Seconds between points of a series.
const INTERVAL_S: i64 = 10;
/// Points per series per hour.
const PER_HOUR: u32 = 360;
/// 2023-11-14T22:00:00Z, a fixed start so runs are reproducible.
const START_S: i64 = 1_700_000_000 - 1_700_000_000 % 3600;
const HOUR_NS: i64 = 3_600_000_000_000;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    // Ranges are checked by clap, so an out-of-range value is a usage error
    // (exit 2) reported before anything is touched. The demo snapshots half
    // way and expires the two hours before the first midnight (the data
    // starts at 22:00 UTC), which needs at least three hours.
    /// Number of series (at least 1).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    series: u32,
    /// Hours of data per series (at least 3; 360 points each, one every 10 s).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(3..))]
    hours: u32,
    /// Writer threads (at least 1; their commits share fdatasyncs: group
    /// commit).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    writers: u32,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
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

fn series_key(s: u32) -> anyhow::Result<SeriesKey> {
    let k = if s.is_multiple_of(2) {
        SeriesKey::new(
            "temperature",
            [("sensor".into(), format!("s{s:05}"))],
            "celsius",
        )
    } else {
        SeriesKey::new("cpu", [("host".into(), format!("h{s:05}"))], "usage")
    };
    Ok(k?)
}

/// Series with a late correction: every tenth.
fn corrected(s: u32) -> bool {
    s.is_multiple_of(10)
}
/// The step whose value the late correction changes (in the second hour,
/// compacted by the time the corrections arrive), and the new value.
fn correction_step() -> u32 {
    PER_HOUR + 17
}
fn corrected_value(s: u32) -> f64 {
    value(s, correction_step()) + 1000.0
}
/// A late point between two regular ones (5 s after `correction_step`).
fn late_ts() -> i64 {
    ts_of(correction_step()) + 5_000_000_000
}
fn late_value(s: u32) -> f64 {
    f64::from(s) / 2.0
}

/// The points of series `s` the store should hold after ingesting steps
/// `0..steps`, with the late corrections when `late`, from `from_ts` on.
fn expected(s: u32, steps: u32, late: bool, from_ts: i64) -> Vec<(i64, Value)> {
    let mut v: Vec<(i64, Value)> = (0..steps)
        .filter(|&i| present(s, i))
        .map(|i| {
            let x = if late && corrected(s) && i == correction_step() {
                corrected_value(s)
            } else {
                value(s, i)
            };
            (ts_of(i), Value::F64(x))
        })
        .collect();
    if late && corrected(s) {
        let at = v.partition_point(|p| p.0 < late_ts());
        v.insert(at, (late_ts(), Value::F64(late_value(s))));
    }
    v.retain(|p| p.0 >= from_ts);
    v
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

/// What the writers did.
#[derive(Default)]
struct Ingested {
    points: u64,
    commits: u64,
    compactions: u64,
    segments: u64,
    replaced: u64,
}

/// Ingest steps `from..to` for every series with `writers` threads, one
/// appender commit per thread per step; each thread calls `maintain` after
/// its commits, as an embedder does.
fn ingest(
    engine: &Arc<Engine>,
    series: u32,
    writers: u32,
    from: u32,
    to: u32,
) -> anyhow::Result<Ingested> {
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let engine = Arc::clone(engine);
            std::thread::spawn(move || -> anyhow::Result<Ingested> {
                let mut got = Ingested::default();
                // Handles once: no key is parsed or hashed per point.
                let refs = (w..series)
                    .step_by(writers as usize)
                    .map(|s| Ok((s, engine.series(&series_key(s)?)?)))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                for i in from..to {
                    let mut app = engine.appender();
                    for &(s, r) in &refs {
                        if present(s, i) {
                            app.append(r, ts_of(i), Value::F64(value(s, i)))?;
                        }
                    }
                    got.points += app.commit()?.points;
                    got.commits += 1;
                    if let Some(c) = engine.maintain()?
                        && c.commit.is_some()
                    {
                        got.compactions += 1;
                        got.segments += c.segments_added;
                        got.replaced += c.segments_replaced;
                    }
                }
                Ok(got)
            })
        })
        .collect();
    let mut total = Ingested::default();
    for t in threads {
        let g = t
            .join()
            .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
        total.points += g.points;
        total.commits += g.commits;
        total.compactions += g.compactions;
        total.segments += g.segments;
        total.replaced += g.replaced;
    }
    Ok(total)
}

/// Every point `view` holds from `from_ts` on, compared with [`expected`];
/// returns the points read.
fn check_all(
    view: &sydra_engine::series::View<'_>,
    series: u32,
    steps: u32,
    late: bool,
    from_ts: i64,
    what: &str,
) -> anyhow::Result<u64> {
    let mut by_key: std::collections::BTreeMap<SeriesKey, u32> = Default::default();
    for s in 0..series {
        by_key.insert(series_key(s)?, s);
    }
    let mut got: std::collections::BTreeMap<u32, Vec<(i64, Value)>> = Default::default();
    let mut n = 0u64;
    for b in view.query(&Selector::all(), from_ts, i64::MAX)? {
        let b = b?;
        let s = *by_key
            .get(&*b.key)
            .with_context(|| format!("{what}: a series nobody wrote: {}", b.key))?;
        n += b.points.len() as u64;
        got.entry(s).or_default().extend(b.points);
    }
    for s in 0..series {
        let want = expected(s, steps, late, from_ts);
        let have = got.remove(&s).unwrap_or_default();
        ensure!(
            have == want,
            "{what}: series {} reads back {} points, {} were ingested{}",
            series_key(s)?,
            have.len(),
            want.len(),
            match have.iter().zip(&want).find(|(a, b)| a != b) {
                Some((a, b)) => format!("; first difference: read {a:?}, ingested {b:?}"),
                None => String::new(),
            }
        );
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
    let options = Options {
        wal: WalOptions {
            sync: SyncMode::Always,
            segment_size: 4 << 20,
            max_record: 1 << 20,
            ..WalOptions::default()
        },
        ..Options::default()
    };
    let mut engine = Arc::new(Engine::open(dir, options.clone())?);
    let bar = Bar::new(u64::from(a.hours));
    let started = Instant::now();
    let mut ing = Ingested::default();
    let add = |ing: &mut Ingested, g: Ingested| {
        ing.points += g.points;
        ing.commits += g.commits;
        ing.compactions += g.compactions;
        ing.segments += g.segments;
        ing.replaced += g.replaced;
    };
    let snap_hour = a.hours / 2;
    let snap_step = snap_hour * PER_HOUR + PER_HOUR / 2;
    for h in 0..a.hours {
        let (from, to) = (h * PER_HOUR, (h + 1) * PER_HOUR);
        if h == snap_hour {
            // Half an hour in: a checkpoint commits the half hour still only
            // in the WAL, and a snapshot names it.
            add(
                &mut ing,
                ingest(&engine, a.series, a.writers, from, snap_step)?,
            );
            engine.checkpoint(None, "demo: checkpoint before snapshot")?;
            engine.snapshot(Some("demo-half"))?;
            add(
                &mut ing,
                ingest(&engine, a.series, a.writers, snap_step, to)?,
            );
        } else {
            add(&mut ing, ingest(&engine, a.series, a.writers, from, to)?);
        }
        bar.step(&format!("ingested {}", &format_rfc3339(ts_of(from))[..13]));
    }
    bar.done();
    let ingest_secs = started.elapsed().as_secs_f64();

    // Late corrections for the second hour, compacted long ago: one changed
    // value and one new point per tenth series; the next compaction
    // replaces that hour's segments (the snapshot keeps the old ones).
    let mut app = engine.appender();
    let mut late_points = 0u64;
    for s in (0..a.series).filter(|&s| corrected(s)) {
        let r = engine.series(&series_key(s)?)?;
        if present(s, correction_step()) {
            app.append(r, ts_of(correction_step()), Value::F64(corrected_value(s)))?;
            late_points += 1;
        }
        app.append(r, late_ts(), Value::F64(late_value(s)))?;
        late_points += 1;
    }
    app.commit()?;
    let late = engine.compact(CompactOptions::default())?;
    ing.replaced += late.segments_replaced;
    if late.commit.is_some() {
        ing.compactions += 1;
    }

    // Close and reopen: the head (the last hour, never compacted) is
    // rebuilt from the WAL.
    drop(engine);
    let t = Instant::now();
    engine = Arc::new(Engine::open(dir, options)?);
    let reopen_secs = t.elapsed().as_secs_f64();
    let (_, head_points, _) = engine.head_stats();
    if let Some(e) = &engine.open_report().head_error {
        bail!("the head could not be rebuilt at open: {e}");
    }

    // 1. Every point reads back exactly as ingested, corrections included.
    let steps = a.hours * PER_HOUR;
    let view = engine.view(None)?;
    let t = Instant::now();
    let read = check_all(&view, a.series, steps, true, i64::MIN, "query")?;
    let query_secs = t.elapsed().as_secs_f64().max(1e-9);
    ensure!(
        read == ing.points + (0..a.series).filter(|&s| corrected(s)).count() as u64,
        "query read {read} points; {} were ingested plus one late point per corrected series",
        ing.points
    );

    // 2. As of the snapshot: exactly the earlier state, no corrections.
    let snap = "snapshots/demo-half";
    let then = engine.view(Some(snap))?;
    let read_then = check_all(
        &then,
        a.series,
        snap_step,
        false,
        i64::MIN,
        "as of the snapshot",
    )?;

    // 3. Hourly aggregates of one measurement equal the same aggregates
    //    computed from the raw points.
    let cpu = Selector::parse("cpu").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut agg_checked = 0u64;
    let mut agg_stats = sydra_engine::series::QueryStats::default();
    for f in [Agg::Count, Agg::Max, Agg::Mean] {
        let mut it = view.aggregate(&cpu, i64::MIN, i64::MAX, HOUR_NS, f)?;
        for r in it.by_ref() {
            let (key, buckets) = r?;
            let s = (0..a.series)
                .find(|&s| series_key(s).is_ok_and(|k| k == *key))
                .context("an aggregate of a series nobody wrote")?;
            let raw = expected(s, steps, true, i64::MIN);
            for (start, v) in &buckets {
                let xs: Vec<f64> = raw
                    .iter()
                    .filter(|p| p.0.div_euclid(HOUR_NS) * HOUR_NS == *start)
                    .filter_map(|p| match p.1 {
                        Value::F64(x) => Some(x),
                        _ => None,
                    })
                    .collect();
                let want = match f {
                    Agg::Count => xs.len() as f64,
                    Agg::Max => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    _ => xs.iter().sum::<f64>() / xs.len() as f64,
                };
                let have = match v {
                    Value::F64(x) => *x,
                    Value::I64(x) => *x as f64,
                    _ => f64::NAN,
                };
                ensure!(
                    (have - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{f:?} of {key} at {}: {have}, the raw points give {want}",
                    format_rfc3339(*start)
                );
                agg_checked += 1;
            }
        }
        let st = it.stats();
        agg_stats.segments_from_stats += st.segments_from_stats;
        agg_stats.segments_decoded += st.segments_decoded;
    }

    // A chart of one series: mean per 5 minutes.
    let one = Selector::parse(&format!("cpu{{host=\"h{:05}\"}}", 1.min(a.series - 1)))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = String::new();
    for r in view.aggregate(&one, i64::MIN, i64::MAX, 300_000_000_000, Agg::Mean)? {
        let (key, buckets) = r?;
        let pts: Vec<(i64, f64)> = buckets
            .iter()
            .filter_map(|(t, v)| match v {
                Value::F64(x) => Some((*t, *x)),
                _ => None,
            })
            .collect();
        chart = crate::chart::panel(&format!("{key}, mean per 5 min"), &pts, |t| {
            format_rfc3339(t)[..16].to_owned()
        });
    }
    drop(view);
    drop(then);

    // 4. Retention by data time: the two hours before midnight leave the
    //    head tree (retention removes whole segments, and by now those hours
    //    may have merged into one day segment); the snapshot still holds them
    //    until GC's history horizon lets them go.
    let horizon = ts_of(2 * PER_HOUR);
    let ret = engine.compact(CompactOptions {
        retention_before: Some(horizon),
        ..CompactOptions::default()
    })?;
    let after = engine.view(None)?;
    check_all(&after, a.series, steps, true, i64::MIN, "after retention")
        .err()
        .context("retention kept the hours before the horizon")?;
    check_all(&after, a.series, steps, true, horizon, "after retention")?;
    drop(after);
    let repo = engine.repo().clone();
    let objects_before_gc = repo.objects().all_ids()?.len() as u64;
    let gc = engine.gc(&GcOptions {
        grace: Duration::ZERO,
        retain: Some(Keep::Commits(
            NonZeroU64::new(3).context("retention count")?,
        )),
        ..GcOptions::default()
    })?;
    // The snapshot still reads the same after GC.
    let then = engine.view(Some(snap))?;
    let again = check_all(
        &then,
        a.series,
        snap_step,
        false,
        i64::MIN,
        "as of the snapshot after gc",
    )?;
    ensure!(again == read_then, "the snapshot changed under GC");
    drop(then);

    // 5. fsck.
    let fsck = maintenance::fsck(&repo, &FsckOptions::default(), &NoProgress)?;
    ensure!(
        fsck.is_clean(),
        "fsck found {} problem(s), first: {:?}",
        fsck.problems.len(),
        fsck.problems.first()
    );

    let objects = repo.objects().all_ids()?.len() as u64;
    let packs = repo.objects().pack_stats();
    let gc_deleted = gc.objects.swept.deleted + gc.objects.packs.objects_dropped;
    let gc_freed = gc.objects.swept.bytes_freed + gc.objects.packs.bytes_freed.max(0) as u64;
    let object_bytes: u64 = fs::read_dir(dir.join("objects"))
        .map(|_| dir_size(&dir.join("objects")))
        .unwrap_or(Ok(0))?;
    let bytes = dir_size(dir)?;
    let summary = serde_json::json!({
        "dir": dir.display().to_string(),
        "series": a.series,
        "points": ing.points,
        "ingest_seconds": ingest_secs,
        "points_per_second": ing.points as f64 / ingest_secs,
        "appender_commits": ing.commits,
        "compactions": ing.compactions,
        "segments_written": ing.segments,
        "segments_replaced": ing.replaced,
        "late_points": late_points,
        "reopen_seconds": reopen_secs,
        "head_points_rebuilt": head_points,
        "query_points": read,
        "query_points_per_second": read as f64 / query_secs,
        "snapshot": snap,
        "snapshot_points": read_then,
        "aggregates_checked": agg_checked,
        "aggregate_segments_from_stats": agg_stats.segments_from_stats,
        "aggregate_segments_decoded": agg_stats.segments_decoded,
        "retention_segments_expired": ret.segments_expired,
        "objects_before_gc": objects_before_gc,
        "gc_objects_deleted": gc_deleted,
        "gc_bytes_freed": gc_freed,
        "packs": packs.packs,
        "gc_wal_segments_deleted": gc.wal.deleted.len(),
        "gc_wal_bytes_freed": gc.wal.bytes_freed,
        "fsck_clean": fsck.is_clean(),
        "fsck_objects_checked": fsck.objects().count,
        "objects": objects,
        "object_bytes": object_bytes,
        "bytes_on_disk": bytes,
        "head": engine.head()?.map(|h| h.to_hex()),
    });
    if a.json {
        println!("{summary}");
        return Ok(0);
    }
    println!(
        "sydra demo — {} series × {} hours in {}",
        a.series,
        a.hours,
        dir.display()
    );
    println!(
        "  ingest       {} points in {ingest_secs:.1} s: {:.0} points/s through the appender, \
         every commit durable ({} writer threads, {} group-committed appender commits)",
        ing.points,
        ing.points as f64 / ingest_secs,
        a.writers,
        ing.commits
    );
    println!(
        "  compaction   {} compactions chosen by maintain(): {} segments written, {} replaced \
         by {late_points} late points for an hour already compacted",
        ing.compactions, ing.segments, ing.replaced
    );
    println!(
        "  recovery     reopened in {:.0} ms: {head_points} head points rebuilt from the WAL",
        reopen_secs * 1e3
    );
    println!(
        "  query        {read} points read back in {:.2} s ({:.1} M points/s): every one equals \
         what was ingested, corrections included",
        query_secs,
        read as f64 / query_secs / 1e6
    );
    println!(
        "  as of        {snap}: exactly the {read_then} points ingested before it, \
         without the later corrections"
    );
    println!(
        "  aggregates   {agg_checked} hourly count/max/mean buckets of cpu equal the raw points' \
         ({} segments answered from their statistics, {} decoded)",
        agg_stats.segments_from_stats, agg_stats.segments_decoded
    );
    println!(
        "  retention    the day before midnight left the head tree ({} segments); gc keeping 3 commits \
         reclaimed {} objects ({:.1} MB) and {} WAL segments ({:.1} MB); the snapshot still reads the same",
        ret.segments_expired,
        gc_deleted,
        gc_freed as f64 / 1e6,
        gc.wal.deleted.len(),
        gc.wal.bytes_freed as f64 / 1e6
    );
    println!(
        "  on disk      {:.1} MB ({objects} objects in {} pack(s) and {} loose file(s), {:.1} MB of them) + WAL",
        bytes as f64 / 1e6,
        packs.packs,
        objects.saturating_sub(packs.objects),
        object_bytes as f64 / 1e6
    );
    println!(
        "  fsck         clean: {} objects verified (BLAKE3 recomputed), every reachable WAL chunk checked",
        fsck.objects().count
    );
    println!();
    print!("{chart}");
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
