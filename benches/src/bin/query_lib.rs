//! Library-call timings of the read path for `benches/query.sh`: one query
//! repeated on an open engine, its median, as one JSON line.
//!
//! ```text
//! query_lib DIR points SELECTOR [--as-of REV] [--range FROM_NS TO_NS] [--columns]
//! query_lib DIR agg SELECTOR STEP_NS FN [--raw] [--as-of REV] [--range FROM_NS TO_NS]
//! ```
//!
//! `--range` limits the data time (both inclusive; default everything);
//! `--columns` reads the points as columns (`Points::next_columns`).
//!
//! Each run includes making the view (for `--as-of`, rebuilding that
//! version's head), resolving the selector and reading every row; runs
//! repeat for at least a second (at least 5, at most 2,000).

use std::time::{Duration, Instant};

use sydra_engine::series::{Agg, Selector};
use sydra_engine::{Engine, Options};

fn usage() -> ! {
    eprintln!(
        "usage: query_lib DIR points SELECTOR [--as-of REV] [--range FROM_NS TO_NS] [--columns] | \
         query_lib DIR agg SELECTOR STEP_NS FN [--raw] [--as-of REV] [--range FROM_NS TO_NS]"
    );
    std::process::exit(2)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        usage();
    }
    let (dir, mode, sel_text) = (&args[0], args[1].as_str(), &args[2]);
    let as_of = args
        .iter()
        .position(|a| a == "--as-of")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let raw = args.iter().any(|a| a == "--raw");
    let columns = args.iter().any(|a| a == "--columns");
    let (from, to) = match args.iter().position(|a| a == "--range") {
        Some(i) => (
            args.get(i + 1).unwrap_or_else(|| usage()).parse::<i64>()?,
            args.get(i + 2).unwrap_or_else(|| usage()).parse::<i64>()?,
        ),
        None => (i64::MIN, i64::MAX),
    };
    let sel = Selector::parse(sel_text)?;
    let engine = Engine::open(dir, Options::default())?;
    let agg = match mode {
        "points" => None,
        "agg" => {
            let step: i64 = args.get(3).unwrap_or_else(|| usage()).parse()?;
            let f: Agg = args.get(4).unwrap_or_else(|| usage()).parse()?;
            Some((step, f))
        }
        _ => usage(),
    };
    let run = || -> Result<u64, Box<dyn std::error::Error>> {
        let view = engine.view(as_of.as_deref())?;
        let mut rows = 0u64;
        match agg {
            None if columns => {
                let mut it = view.query(&sel, from, to)?;
                while let Some(b) = it.next_columns() {
                    rows += b?.timestamps.len() as u64;
                }
            }
            None => {
                for b in view.query(&sel, from, to)? {
                    rows += b?.points.len() as u64;
                }
            }
            Some((step, f)) => {
                let mut it = view.aggregate(&sel, from, to, step, f)?;
                if raw {
                    it = it.raw();
                }
                for s in it {
                    rows += s?.1.len() as u64;
                }
            }
        }
        Ok(rows)
    };
    let rows = run()?; // warm-up
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < 2000 && (times.len() < 5 || started.elapsed() < Duration::from_secs(1)) {
        let t = Instant::now();
        let n = run()?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        if n != rows {
            return Err(format!("a run read {n} rows, the first {rows}").into());
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{{\"median_us\": {:.2}, \"min_us\": {:.2}, \"runs\": {}, \"rows\": {rows}}}",
        times[times.len() / 2],
        times[0],
        times.len()
    );
    Ok(())
}
