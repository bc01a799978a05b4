//! Parse-only rate of Sydra's line-protocol reader on a file: what
//! `sydra write`'s parsing thread does before it touches the store, with
//! nothing appended. As there, a line whose measurement and tags are
//! spelled as in an earlier line has only its fields and timestamp parsed;
//! any other line is parsed whole and its series keys are built.
//!
//! ```text
//! cargo run --release -p sydra-benches --bin lp_parse -- FILE [--precision ms]
//! ```
//!
//! The file is read into memory first; the time covers parsing only. Prints
//! one JSON object: `{"lines", "points", "seconds", "points_per_s"}`.

use std::time::Instant;

use sydra_engine::series::lineproto::{self, Precision};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut precision = Precision::Nanoseconds;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--precision" => {
                let p = args.next().unwrap_or_default();
                precision = p.parse::<Precision>().unwrap_or_else(|e: String| fail(&e));
            }
            _ => file = Some(a),
        }
    }
    let file = file.unwrap_or_else(|| fail("usage: lp_parse FILE [--precision ms]"));
    let text = std::fs::read(&file).unwrap_or_else(|e| fail(&format!("{file}: {e}")));
    let started = Instant::now();
    let (mut lines, mut points) = (0u64, 0u64);
    let mut seen = std::collections::HashSet::new();
    let mut fields = Vec::new();
    let mut raw_lines = lineproto::parse(&text, precision);
    while let Some(raw) = raw_lines.next_raw() {
        let raw = raw.unwrap_or_else(|e| fail(&format!("{file}: {e}")));
        lines += 1;
        if raw.raw_series().is_some_and(|s| seen.contains(s)) {
            fields.clear();
            raw.fields_into(precision, &mut fields)
                .unwrap_or_else(|e| fail(&format!("{file}: {e}")));
            points += fields.len() as u64;
            continue;
        }
        let line = raw
            .parse(precision)
            .unwrap_or_else(|e| fail(&format!("{file}: {e}")));
        let p = line
            .points(0)
            .unwrap_or_else(|e| fail(&format!("{file}: {e}")));
        seen.insert(line.raw_series);
        points += p.len() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"lines\": {lines}, \"points\": {points}, \"seconds\": {seconds:.6}, \"points_per_s\": {:.0}}}",
        points as f64 / seconds.max(1e-9)
    );
}

fn fail(msg: &str) -> ! {
    eprintln!("lp_parse: {msg}");
    std::process::exit(2)
}
