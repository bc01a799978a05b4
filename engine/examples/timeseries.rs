//! The time-series API in one flow: ingest through the appender, let the
//! engine compact, snapshot, correct a compacted hour late, then query the
//! data now and as of the snapshot, with an aggregate.
//!
//! `cargo run -p sydra-engine --example timeseries`

use sydra_engine::series::{Agg, CompactOptions, Selector, SeriesKey, Value};
use sydra_engine::{Engine, Options};

const SECOND: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SECOND;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("sydra-example-{}", std::process::id()));
    // `create` makes the data directory (`open` refuses a missing one).
    // SyncMode::Always: a commit returns once durable.
    let engine = Engine::create(&dir, Options::default())?;

    // 1. Series handles once, then an appender per batch: three hours of
    //    one point every 10 s for two hosts.
    let start = 1_700_000_000 / 3600 * HOUR;
    let hosts = ["a", "b"];
    let mut refs = Vec::new();
    for h in hosts {
        let key = SeriesKey::new("cpu", [("host".into(), h.into())], "usage")?;
        refs.push(engine.series(&key)?);
    }
    for minute in 0..180 {
        let mut app = engine.appender();
        for i in 0..6 {
            let t = start + (minute * 6 + i) * 10 * SECOND;
            for (n, r) in refs.iter().enumerate() {
                app.append(*r, t, Value::F64((minute % 60) as f64 + n as f64))?;
            }
        }
        app.commit()?; // one group-committed WAL record set, durable
        // The embedder's maintenance call: compacts each finished hour.
        if let Some(c) = engine.maintain()? {
            let (p, n) = (c.points, c.series_indexed);
            println!(
                "compacted {p} points, indexed {n} new series: commit {:?}",
                c.commit
            );
        }
    }

    // 2. A snapshot, then a late correction of the first (compacted) hour.
    engine.checkpoint(None, "before the correction")?;
    engine.snapshot(Some("before-fix"))?;
    let mut app = engine.appender();
    app.append(refs[0], start + 60 * SECOND, Value::F64(-1.0))?;
    app.commit()?;
    let r = engine.compact(CompactOptions::default())?;
    println!(
        "{} segment(s) replaced by the late point",
        r.segments_replaced
    );

    // 3. The same range now and as of the snapshot (bitemporal).
    let sel = Selector::parse(r#"cpu{host="a"}"#)?;
    for as_of in [None, Some("snapshots/before-fix")] {
        let view = engine.view(as_of)?;
        for batch in view.query(&sel, start + 50 * SECOND, start + 70 * SECOND)? {
            let b = batch?;
            println!("{as_of:?}: {} {:?}", b.key, b.points);
        }
    }

    // 4. Mean per hour of both hosts: whole segments answer from their
    //    statistics, without decoding.
    {
        let view = engine.view(None)?;
        let cpu = Selector::parse("cpu")?;
        let mut buckets = view.aggregate(&cpu, i64::MIN, i64::MAX, HOUR, Agg::Mean)?;
        for series in buckets.by_ref() {
            let (key, v) = series?;
            println!(
                "{key}: hourly means {:?}",
                v.iter().map(|b| &b.1).collect::<Vec<_>>()
            );
        }
        println!("read: {:?}", buckets.stats());
    }
    drop(engine);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
