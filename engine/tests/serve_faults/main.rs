//! `sydra serve` when a write fails underneath it (a full disk, an I/O
//! error): the client gets a 5xx (Prometheus retries it), the poisoned
//! engine is reopened, and the retry succeeds once the cause is gone —
//! with every acknowledged sample still there. Fault injection is global
//! to the process, so this suite has a test binary of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::SocketAddr;

use prost::Message;
use sydra_engine::Engine;
use sydra_engine::objects::fault::{self, Fault};
use sydra_engine::series::{SeriesKey, Value};
use sydra_engine::serve::prompb::{Label, Sample, TimeSeries, WriteRequest};
use sydra_engine::serve::{ServeOptions, start};

fn post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text.split(' ').nth(1).unwrap().parse().unwrap();
    (code, text)
}

/// A remote write of one sample at `ms` (value `ms`) for 3 series.
fn write_at(addr: SocketAddr, ms: i64) -> (u16, String) {
    let ts = (0..3)
        .map(|i| TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "disk".into(),
                },
                Label {
                    name: "i".into(),
                    value: i.to_string(),
                },
            ],
            samples: vec![Sample {
                value: ms as f64,
                timestamp: ms,
            }],
            ..TimeSeries::default()
        })
        .collect();
    let body = snap::raw::Encoder::new()
        .compress_vec(
            &WriteRequest {
                timeseries: ts,
                ..WriteRequest::default()
            }
            .encode_to_vec(),
        )
        .unwrap();
    post(addr, "/api/v1/write", &body)
}

#[test]
fn a_full_disk_under_serve_is_a_5xx_and_writes_resume_once_space_is_back() {
    let d = tempfile::tempdir().unwrap();
    Engine::create(d.path(), Default::default()).unwrap();
    let s = start(
        d.path(),
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let a = s.addr();
    let mut acked = Vec::new();
    for ms in 1..=5 {
        assert_eq!(write_at(a, ms).0, 204);
        acked.push(ms);
    }
    for point in ["wal.write", "wal.sync"] {
        fault::arm(point, Fault::Enospc);
        for ms in 100..103 {
            let (code, text) = write_at(a, ms);
            assert!(code == 500 || code == 503, "{point}: {text}");
            assert!(
                text.contains("No space left")
                    || text.contains("poisoned")
                    || text.contains("closed"),
                "{point}: {text}"
            );
        }
        fault::disarm_all();
        // The retry succeeds (after at most a few 503s while reopening).
        let base = if point == "wal.write" { 200 } else { 300 };
        for ms in base..base + 5 {
            let mut tries = 0;
            loop {
                let (code, text) = write_at(a, ms);
                if code == 204 {
                    acked.push(ms);
                    break;
                }
                tries += 1;
                assert!(code == 503 && tries < 50, "{point}: a retry got {text}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
    fault::reset();
    s.stop();
    // Everything acknowledged is there after a plain reopen.
    let e = Engine::open(d.path(), Default::default()).unwrap();
    let v = e.view(None).unwrap();
    for i in 0..3 {
        let key = SeriesKey::new("disk", [("i".to_string(), i.to_string())], "value").unwrap();
        let pts = v.points(&key).unwrap();
        for ms in &acked {
            assert!(
                pts.contains(&(ms * 1_000_000, Value::F64(*ms as f64))),
                "series {i}: acknowledged sample at {ms} ms lost: {pts:?}"
            );
        }
    }
}
