//! `sydra write` and `sydra export` end to end: generated line protocol
//! (escapes, every value type, several fields per line, duplicates whose
//! last write wins, out-of-order times, comments, CRLF) written, exported,
//! parsed again and compared with a model of what the input says.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use sydra_engine::series::Value;
use sydra_engine::series::lineproto::{self, Precision};

use super::common::Rng;

type Model = BTreeMap<(String, String), BTreeMap<i64, Value>>;

pub(crate) fn sydra(
    dir: &std::path::Path,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sydra"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        c.stdin.take().unwrap().write_all(input).unwrap();
    }
    c.wait_with_output().unwrap()
}

/// Generated input (seconds precision) and the model of what it says.
fn generate(seed: u64, lines: usize) -> (String, Model) {
    let mut rng = Rng(seed);
    let measurements = ["cpu", "disk io", "net,if", "a=b", "temp\\c"];
    let hosts = ["a", "b c", "d,e", "f=g", "h\\i"];
    // field name, type: 0 float, 1 integer, 2 boolean
    let fields = [
        ("usage", 0),
        ("count", 1),
        ("up", 2),
        ("x y", 0),
        ("n=1", 1),
    ];
    let esc = |s: &str, measurement: bool| {
        let mut o = String::new();
        for c in s.chars() {
            if matches!(c, ',' | ' ' | '\\') || (c == '=' && !measurement) {
                o.push('\\');
            }
            o.push(c);
        }
        o
    };
    let mut text = String::from("# generated\n\n");
    let mut model = Model::new();
    for _ in 0..lines {
        let m = measurements[rng.below(5) as usize];
        let h = hosts[rng.below(5) as usize];
        let ts = rng.below(40) as i64 - 5; // out of order, duplicates, negatives
        let mut line = format!("{},host={}", esc(m, true), esc(h, false));
        if rng.below(3) == 0 {
            line.push_str(",dc=eu");
        }
        let series = line.clone();
        line.push(' ');
        let mut first = true;
        for (f, t) in fields {
            if rng.below(2) == 0 && !(first && f == "n=1") {
                continue;
            }
            if !first {
                line.push(',');
            }
            first = false;
            let (text_v, v) = match t {
                0 => {
                    let x = (rng.below(100_000) as f64 - 50_000.0) / 64.0;
                    (format!("{x:?}"), Value::F64(x))
                }
                1 => {
                    let x = rng.next() as i64;
                    (format!("{x}i"), Value::I64(x))
                }
                _ => {
                    let b = rng.below(2) == 0;
                    ((if b { "T" } else { "false" }).to_string(), Value::Bool(b))
                }
            };
            line.push_str(&format!("{}={text_v}", esc(f, false)));
            model
                .entry((series.clone(), esc(f, false)))
                .or_default()
                .insert(ts * 1_000_000_000, v);
        }
        if first {
            continue; // no field chosen: skip the line
        }
        line.push_str(&format!(" {ts}"));
        line.push_str(if rng.below(4) == 0 { "\r\n" } else { "\n" });
        text.push_str(&line);
    }
    (text, model)
}

/// Canonical series strings sort tags; the model was keyed by the input's
/// spelling, which puts `dc` after `host`: normalise through the parser.
fn model_of_export(out: &[u8]) -> Model {
    let mut m = Model::new();
    for line in lineproto::parse(out, Precision::Nanoseconds) {
        let line = line.unwrap();
        for p in line.points(0).unwrap() {
            let mut field = String::new();
            lineproto::escape_into(&mut field, p.key.field(), false);
            m.entry((p.key.series_string(), field))
                .or_default()
                .insert(p.timestamp, p.value);
        }
    }
    m
}

fn normalise(model: Model) -> Model {
    let mut out = Model::new();
    for ((series, field), points) in model {
        let text = format!("{series} {field}=1 0\n");
        let line = lineproto::parse(text.as_bytes(), Precision::Nanoseconds)
            .next()
            .unwrap()
            .unwrap();
        let key = line.points(0).unwrap().remove(0).key;
        out.entry((key.series_string(), field))
            .or_default()
            .extend(points);
    }
    out
}

#[test]
fn write_then_export_gives_back_every_point_last_write_winning() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d");
    assert!(sydra(&data, &["init"], None).status.success());
    let (a, model_a) = generate(0x1234_5678_9abc_def1, 400);
    let (b, model_b) = generate(0x0fed_cba9_8765_4321, 400);
    let file = d.path().join("a.lp");
    std::fs::write(&file, &a).unwrap();
    let out = sydra(
        &data,
        &["write", "--precision", "s", file.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("durable"));
    // The second input on stdin: its writes come later and win.
    let out = sydra(
        &data,
        &["write", "--precision", "s", "-"],
        Some(b.as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut model = normalise(model_a);
    for (k, pts) in normalise(model_b) {
        model.entry(k).or_default().extend(pts);
    }
    let exported = sydra(&data, &["export"], None);
    assert!(exported.status.success());
    let got = model_of_export(&exported.stdout);
    assert_eq!(got, model);
    // The export is canonical: writing it into a new store exports the same.
    let data2 = d.path().join("d2");
    assert!(sydra(&data2, &["init"], None).status.success());
    let out = sydra(&data2, &["write"], Some(&exported.stdout));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sydra(&data2, &["export"], None).stdout, exported.stdout);
}

#[test]
fn a_bad_line_stops_the_write_naming_it_and_keeps_the_lines_before() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d");
    assert!(sydra(&data, &["init"], None).status.success());
    let mut text = String::new();
    for i in 0..56 {
        text.push_str(&format!("m,k=v f={i} {i}\n"));
    }
    text.push_str("m,k=v f=1i,g=2 57\n"); // line 57: f is a float series
    text.push_str("m,k=v f=58 58\n");
    let out = sydra(&data, &["write"], Some(text.as_bytes()));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 57") && err.contains("56 point(s)"),
        "{err}"
    );
    let exported = sydra(&data, &["export"], None);
    let n = String::from_utf8_lossy(&exported.stdout).lines().count();
    assert_eq!(
        n, 56,
        "exactly the lines before the bad one, none of line 57"
    );
    let out = sydra(&data, &["write"], Some(b"m f=oops 1\n"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1, column 5"), "{err}");
}

/// `sydra query` end to end: every format, a range, an aggregate, a late
/// correction seen live but not as of the snapshot before it, and selector
/// errors naming the column (exit 2).
#[test]
fn query_reads_ranges_aggregates_and_earlier_versions_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let mut lp = String::new();
    for i in 0..7200i64 {
        lp.push_str(&format!(
            "cpu,host=a usage={} {}\ncpu,host=b usage={} {}\n",
            i % 100,
            i * 1_000_000_000,
            i,
            i * 1_000_000_000
        ));
    }
    ok(sydra(d, &["init"], None));
    ok(sydra(d, &["write"], Some(lp.as_bytes())));
    ok(sydra(d, &["compact", "--all"], None));
    ok(sydra(d, &["snapshot", "before"], None));
    // A late correction of a compacted point.
    ok(sydra(
        d,
        &["write"],
        Some(b"cpu,host=a usage=-1 10000000000\n"),
    ));

    let q = |args: &[&str]| ok(sydra(d, &[&["query"], args].concat(), None));
    let csv = q(&[
        "cpu{host=\"a\"}",
        "--from",
        "8",
        "--to",
        "11",
        "--format",
        "csv",
    ]);
    assert_eq!(
        csv,
        "series,field,time,value\n\
         \"cpu,host=a\",usage,8000000000,8\n\
         \"cpu,host=a\",usage,9000000000,9\n\
         \"cpu,host=a\",usage,10000000000,-1\n\
         \"cpu,host=a\",usage,11000000000,11\n"
    );
    let before = q(&[
        "cpu{host=\"a\"}",
        "--from",
        "10000000000ns",
        "--to",
        "10",
        "--as-of",
        "snapshots/before",
        "--format",
        "lp",
    ]);
    assert_eq!(before, "cpu,host=a usage=10 10000000000\n");
    // Mean per hour of host b: 0..3599 and 3600..7199.
    let json = q(&[
        "cpu{host=~\"b\"}",
        "--step",
        "1h",
        "--agg",
        "mean",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["series"], "cpu,host=b");
    assert_eq!(
        v["points"],
        serde_json::json!([[0, 1799.5], [3_600_000_000_000i64, 5399.5]])
    );
    let count = q(&["{}", "--agg", "count", "--format", "csv"]);
    assert_eq!(
        count,
        "series,field,time,value\n\"cpu,host=a\",usage,0,7200\n\"cpu,host=b\",usage,0,7200\n"
    );
    let table = q(&["cpu{host=\"b\"}", "--to", "1"]);
    assert_eq!(
        table,
        "series            time                            value\n\
         cpu,host=b usage  1970-01-01T00:00:00.000000000Z  0\n\
         cpu,host=b usage  1970-01-01T00:00:01.000000000Z  1\n"
    );
    let chart = q(&["cpu{host=\"b\"}", "--format", "chart"]);
    assert!(chart.contains("7200 point(s), min 0, max 7199"), "{chart}");

    let bad = sydra(d, &["query", "cpu{host=a}"], None);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("column 10") && err.contains("quoted value"),
        "{err}"
    );
    let bad = sydra(d, &["query", "cpu", "--from", "yesterday"], None);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
