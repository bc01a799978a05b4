//! Bytes per sample of the series column codecs on a line-protocol file,
//! beside the first codecs (`sydra_engine::codec`: byte-varint delta of
//! delta and Gorilla XOR), per series and block, columns only (no keys,
//! manifests or trees: the full on-disk figure comes from the write-path
//! benchmark).
//!
//! ```text
//! cargo run --release -p sydra-benches --bin codec_bytes -- FILE [--precision ms] [--block 2h]
//! ```

use std::collections::HashMap;
use std::time::Instant;

use sydra_engine::series::lineproto::{self, Precision};
use sydra_engine::series::{Value, codec};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut precision = Precision::Nanoseconds;
    let mut block_ns: i64 = 2 * 3600 * 1_000_000_000;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--precision" => {
                let p = args.next().unwrap_or_default();
                precision = p.parse::<Precision>().unwrap_or_else(|e: String| fail(&e));
            }
            "--block" => {
                let b = args.next().unwrap_or_default();
                let hours: i64 = b
                    .strip_suffix('h')
                    .and_then(|h| h.parse().ok())
                    .unwrap_or_else(|| fail("--block takes hours, e.g. 2h"));
                block_ns = hours * 3600 * 1_000_000_000;
            }
            _ => file = Some(a),
        }
    }
    let file =
        file.unwrap_or_else(|| fail("usage: codec_bytes FILE [--precision ms] [--block 2h]"));
    let text = std::fs::read(&file).unwrap_or_else(|e| fail(&format!("{file}: {e}")));
    let started = Instant::now();
    // (series key, block) -> (timestamps, values)
    let mut columns: HashMap<(String, i64), (Vec<i64>, Vec<f64>)> = HashMap::new();
    let mut points = 0u64;
    for line in lineproto::parse(&text, precision) {
        let line = line.unwrap_or_else(|e| fail(&format!("{file}: {e}")));
        for p in line
            .points(0)
            .unwrap_or_else(|e| fail(&format!("{file}: {e}")))
        {
            let Value::F64(v) = p.value else { continue };
            let block = p.timestamp.div_euclid(block_ns);
            let c = columns.entry((p.key.to_string(), block)).or_default();
            c.0.push(p.timestamp);
            c.1.push(v);
            points += 1;
        }
    }
    let parse_s = started.elapsed().as_secs_f64();
    let (mut new_ts, mut new_v, mut old_ts, mut old_v) = (0usize, 0usize, 0usize, 0usize);
    let mut decimal_cols = 0usize;
    let mut distinct_ts: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    let mut dedup_ts = 0usize;
    for (ts, vs) in columns.values_mut() {
        let mut pairs: Vec<(i64, f64)> = ts.iter().copied().zip(vs.iter().copied()).collect();
        pairs.sort_by_key(|p| p.0);
        let ts: Vec<i64> = pairs.iter().map(|p| p.0).collect();
        let vs: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let t = codec::encode_timestamps(&ts);
        let v = codec::encode_f64(&vs);
        if v.get(leb_len(vs.len())) == Some(&1) {
            decimal_cols += 1;
        }
        new_ts += t.len();
        if distinct_ts.insert(t.clone()) {
            dedup_ts += t.len();
        }
        new_v += v.len();
        old_ts += sydra_engine::codec::encode_timestamps(&ts).len();
        old_v += sydra_engine::codec::encode_f64(&vs).len();
    }
    let per = |b: usize| b as f64 / points.max(1) as f64;
    println!("file: {file}");
    println!(
        "points: {points} in {} series-blocks (parsed in {parse_s:.2} s, {:.0} points/s)",
        columns.len(),
        points as f64 / parse_s
    );
    println!(
        "series codecs: timestamps {:.3} + values {:.3} = {:.3} B/sample ({decimal_cols} columns decimal)",
        per(new_ts),
        per(new_v),
        per(new_ts + new_v)
    );
    println!(
        "  timestamp columns stored once per content (as blobs dedupe): {:.3} B/sample, {} distinct of {}",
        per(dedup_ts),
        distinct_ts.len(),
        columns.len()
    );
    println!(
        "first codecs:  timestamps {:.3} + values {:.3} = {:.3} B/sample",
        per(old_ts),
        per(old_v),
        per(old_ts + old_v)
    );
}

fn leb_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn fail(msg: &str) -> ! {
    eprintln!("codec_bytes: {msg}");
    std::process::exit(2)
}
