//! The time-series endpoints of `sydra serve`: Prometheus remote write and
//! read, InfluxDB `/write`, and the query endpoints.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use prost::Message;
use sydra_engine::Engine;
use sydra_engine::series::{CompactOptions, Value};
use sydra_engine::serve::prompb::{
    Label, LabelMatcher, Query, ReadRequest, ReadResponse, STALE_NAN_BITS, Sample, TimeSeries,
    WriteRequest,
};
use sydra_engine::serve::{ServeOptions, Server, start};

use super::common::http;

fn serve(dir: &Path, token: Option<&str>) -> Server {
    Engine::create(dir, Default::default()).unwrap();
    start(
        dir,
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            token: token.map(str::to_owned),
            ..ServeOptions::default()
        },
    )
    .unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(n, v)| Label {
            name: (*n).into(),
            value: (*v).into(),
        })
        .collect()
}

fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels(pairs),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..TimeSeries::default()
    }
}

fn snappy(m: &impl Message) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&m.encode_to_vec())
        .unwrap()
}

const PROTO: [(&str, &str); 2] = [
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
];

fn write(addr: SocketAddr, ts: Vec<TimeSeries>) -> (u16, String) {
    let body = snappy(&WriteRequest {
        timeseries: ts,
        ..WriteRequest::default()
    });
    let (code, b) = http(addr, "POST", "/api/v1/write", &PROTO, &body);
    (code, String::from_utf8_lossy(&b).into_owned())
}

/// One query's answer: each series' labels and samples (time, value bits).
type Answer = Vec<(Vec<(String, String)>, Vec<(i64, u64)>)>;

/// A remote read answered with samples. The same read is asked again for
/// streamed XOR chunks, and must hold the same series (those with
/// samples), sorted by labels, with the same samples bit for bit.
fn read(addr: SocketAddr, queries: Vec<Query>) -> ReadResponse {
    let body = snappy(&ReadRequest {
        queries: queries.clone(),
        accepted_response_types: vec![0, 1],
    });
    let (code, b) = http(addr, "POST", "/api/v1/read", &PROTO, &body);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&b));
    let raw = snap::raw::Decoder::new().decompress_vec(&b).unwrap();
    let answer = ReadResponse::decode(raw.as_slice()).unwrap();
    let n = queries.len();
    let streamed = read_chunks(addr, queries);
    let mut want: Vec<Answer> = vec![Vec::new(); n];
    for (q, r) in answer.results.iter().enumerate() {
        for ts in r.timeseries.iter().filter(|ts| !ts.samples.is_empty()) {
            want[q].push((
                ts.labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect(),
                ts.samples
                    .iter()
                    .map(|s| (s.timestamp, s.value.to_bits()))
                    .collect(),
            ));
        }
        want[q].sort();
    }
    assert_eq!(
        streamed, want,
        "the streamed answer differs from the samples"
    );
    answer
}

/// A remote read answered with streamed XOR chunks: per query, each
/// series' labels and samples, in the order they came.
fn read_chunks(addr: SocketAddr, queries: Vec<Query>) -> Vec<Answer> {
    use sydra_engine::serve::chunks::{self, ChunkedReadResponse};
    let n = queries.len();
    let body = snappy(&ReadRequest {
        queries,
        accepted_response_types: vec![1, 0],
    });
    let (code, b) = http(addr, "POST", "/api/v1/read", &PROTO, &body);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&b));
    let mut out = vec![Vec::new(); n];
    for f in chunks::frames(&b).unwrap() {
        let m = ChunkedReadResponse::decode(f).unwrap();
        assert_eq!(m.chunked_series.len(), 1, "one series a frame");
        let q: &mut Answer = &mut out[m.query_index as usize];
        for cs in m.chunked_series {
            let labels: Vec<(String, String)> =
                cs.labels.into_iter().map(|l| (l.name, l.value)).collect();
            if q.last().map(|(l, _)| l) != Some(&labels) {
                q.push((labels, Vec::new()));
            }
            let samples = &mut q.last_mut().unwrap().1;
            for c in cs.chunks {
                assert_eq!(c.r#type, chunks::ENCODING_XOR);
                let (ts, vs) = chunks::decode_xor(&c.data).unwrap();
                assert!(ts.len() <= chunks::SAMPLES_PER_CHUNK && !ts.is_empty());
                assert_eq!((c.min_time_ms, c.max_time_ms), (ts[0], ts[ts.len() - 1]));
                samples.extend(ts.into_iter().zip(vs.iter().map(|v| v.to_bits())));
            }
        }
    }
    out
}

fn matcher(t: i32, name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: t,
        name: name.into(),
        value: value.into(),
    }
}

/// Every point of the live data, by series string and field.
fn points(s: &Server) -> Vec<(String, Vec<(i64, u64)>)> {
    let e = s.engine().unwrap();
    let v = e.view(None).unwrap();
    v.series()
        .unwrap()
        .into_iter()
        .map(|(k, _)| {
            let pts = v
                .points(&k)
                .unwrap()
                .into_iter()
                .map(|(t, v)| {
                    let bits = match v {
                        Value::F64(x) => x.to_bits(),
                        Value::I64(x) => x as u64,
                        Value::Bool(b) => u64::from(b),
                        _ => u64::MAX,
                    };
                    (t, bits)
                })
                .collect();
            (k.to_string(), pts)
        })
        .collect()
}

#[test]
fn remote_write_then_remote_read_round_trips_every_sample_bit_for_bit() {
    let d = tempfile::tempdir().unwrap();
    let s = serve(d.path(), None);
    let stale = f64::from_bits(STALE_NAN_BITS);
    let (code, msg) = write(
        s.addr(),
        vec![
            series(
                &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
                &[(1_000, 1.0), (2_000, -0.0), (3_000, stale)],
            ),
            series(
                &[("__name__", "up"), ("job", "node"), ("instance", "b:9100")],
                &[(1_000, f64::NAN), (2_000, 1e300), (2_500, f64::INFINITY)],
            ),
            series(
                &[("__name__", "temp"), ("job", "x"), ("empty", "")],
                &[(5_000, 21.5)],
            ),
        ],
    );
    assert_eq!(code, 204, "{msg}");
    // Out of order and a rewrite of a timestamp: last write wins.
    let (code, msg) = write(
        s.addr(),
        vec![series(
            &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
            &[(500, 7.0), (2_000, 3.0)],
        )],
    );
    assert_eq!(code, 204, "{msg}");
    let stored = points(&s);
    let up_a = stored
        .iter()
        .find(|(k, _)| k.contains("a:9100"))
        .map(|(_, p)| p.clone())
        .unwrap();
    assert_eq!(
        up_a,
        vec![
            (500_000_000, 7.0f64.to_bits()),
            (1_000_000_000, 1.0f64.to_bits()),
            (2_000_000_000, 3.0f64.to_bits()),
            (3_000_000_000, STALE_NAN_BITS),
        ]
    );
    // The empty label is an absent one.
    assert!(
        stored.iter().any(|(k, _)| k == "temp,job=x value"),
        "{stored:?}"
    );

    let r = read(
        s.addr(),
        vec![
            Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: 10_000,
                matchers: vec![matcher(0, "__name__", "up"), matcher(2, "instance", "b:.*")],
            },
            Query {
                start_timestamp_ms: 1_000,
                end_timestamp_ms: 2_000,
                matchers: vec![
                    matcher(1, "__name__", "temp"),
                    matcher(3, "instance", "b.*"),
                ],
            },
            Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: 10_000,
                matchers: vec![matcher(0, "__name__", "nothing")],
            },
        ],
    );
    assert_eq!(r.results.len(), 3);
    let b = &r.results[0].timeseries;
    assert_eq!(b.len(), 1);
    assert_eq!(
        b[0].labels,
        labels(&[("__name__", "up"), ("instance", "b:9100"), ("job", "node")]),
        "sorted by name"
    );
    let bits: Vec<(i64, u64)> = b[0]
        .samples
        .iter()
        .map(|s| (s.timestamp, s.value.to_bits()))
        .collect();
    assert_eq!(
        bits,
        vec![
            (1_000, f64::NAN.to_bits()),
            (2_000, 1e300f64.to_bits()),
            (2_500, f64::INFINITY.to_bits())
        ]
    );
    // Not temp, not instance b: only up of a, within [1000, 2000] ms.
    let a = &r.results[1].timeseries;
    assert_eq!(a.len(), 1);
    let got: Vec<(i64, f64)> = a[0]
        .samples
        .iter()
        .map(|s| (s.timestamp, s.value))
        .collect();
    assert_eq!(got, vec![(1_000, 1.0), (2_000, 3.0)]);
    assert!(r.results[2].timeseries.is_empty());
    // The answer goes out whole in one write with its length: a kept-alive
    // connection takes read after read, then any other request.
    let body = snappy(&ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: 10_000,
            matchers: vec![matcher(0, "__name__", "up")],
        }],
        accepted_response_types: vec![],
    });
    let mut conn = std::io::BufReader::new(std::net::TcpStream::connect(s.addr()).unwrap());
    let mut answers = Vec::new();
    for path in ["/api/v1/read", "/api/v1/read", "/api/v1/health"] {
        let (method, body) = if path == "/api/v1/health" {
            ("GET", &[][..])
        } else {
            ("POST", body.as_slice())
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let w = conn.get_mut();
        w.write_all(head.as_bytes()).unwrap();
        w.write_all(body).unwrap();
        answers.push(keep_alive_answer(&mut conn));
    }
    assert_eq!(answers[0], answers[1]);
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&answers[0].1)
        .unwrap();
    let r = ReadResponse::decode(raw.as_slice()).unwrap();
    assert_eq!(r.results[0].timeseries.len(), 2);
    assert_eq!(answers[2], (200, b"ok\n".to_vec()));
    s.stop();
}

/// One answer on a kept-alive connection: its status and body, framed by
/// `Content-Length`.
fn keep_alive_answer(conn: &mut std::io::BufReader<std::net::TcpStream>) -> (u16, Vec<u8>) {
    use std::io::{BufRead, Read};
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut len = None;
    loop {
        line.clear();
        conn.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len.expect("a Content-Length")];
    conn.read_exact(&mut body).unwrap();
    (status, body)
}

#[test]
fn bad_remote_writes_get_4xx_and_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    let s = serve(d.path(), None);
    let a = s.addr();
    let good = series(&[("__name__", "m"), ("k", "v")], &[(1_000, 1.0)]);
    assert_eq!(write(a, vec![good.clone()]).0, 204);
    let before = points(&s);

    // Not snappy; snappy of something that is not a WriteRequest.
    assert_eq!(
        http(a, "POST", "/api/v1/write", &PROTO, b"plain text").0,
        400
    );
    let junk = snap::raw::Encoder::new().compress_vec(&[0xff; 64]).unwrap();
    let (code, body) = http(a, "POST", "/api/v1/write", &PROTO, &junk);
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));
    // A snappy header claiming a huge decoded length.
    let mut huge = Vec::new();
    let mut n: u64 = 1 << 31;
    while n >= 0x80 {
        huge.push((n as u8) | 0x80);
        n >>= 7;
    }
    huge.push(n as u8);
    huge.extend_from_slice(&[0; 16]);
    assert_eq!(http(a, "POST", "/api/v1/write", &PROTO, &huge).0, 413);
    // A body over the limit, by its declared length (never sent).
    assert_eq!(claiming(a, sydra_engine::serve::MAX_WRITE_BYTES + 1), 413);
    // The second series is bad: the first is not written either.
    let more = series(&[("__name__", "m"), ("k", "w")], &[(2_000, 2.0)]);
    let (code, msg) = write(a, vec![more.clone(), series(&[("job", "x")], &[(1, 1.0)])]);
    assert_eq!(code, 400);
    assert!(msg.contains("no __name__"), "{msg}");
    let mut hist = more.clone();
    hist.histograms.push(vec![8, 1]);
    let (code, msg) = write(a, vec![more.clone(), hist]);
    assert_eq!(code, 400);
    assert!(msg.contains("native histograms"), "{msg}");
    let (code, msg) = write(
        a,
        vec![
            more.clone(),
            series(&[("__name__", "m")], &[(i64::MAX / 2, 1.0)]),
        ],
    );
    assert_eq!(code, 400, "{msg}");
    // A series written as integers through /write refuses floats.
    let (code, b) = http(a, "POST", "/write?db=p", &[], b"ints value=3i 1000000000\n");
    assert_eq!(code, 204, "{}", String::from_utf8_lossy(&b));
    let with_ints = points(&s);
    let (code, msg) = write(
        a,
        vec![
            more.clone(),
            series(&[("__name__", "ints"), ("db", "p")], &[(5, 1.5)]),
        ],
    );
    assert_eq!(code, 400);
    assert!(msg.contains("ints"), "{msg}");
    assert_eq!(points(&s), with_ints, "nothing of a refused request");
    assert_eq!(
        with_ints
            .iter()
            .filter(|(k, _)| k.starts_with("m,"))
            .collect::<Vec<_>>(),
        before.iter().collect::<Vec<_>>()
    );
    // Wrong methods and a read of a bad matcher.
    assert_eq!(http(a, "GET", "/api/v1/write", &[], b"").0, 405);
    let bad = snappy(&ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: 1,
            matchers: vec![matcher(2, "k", "(")],
        }],
        accepted_response_types: vec![],
    });
    assert_eq!(http(a, "POST", "/api/v1/read", &PROTO, &bad).0, 400);
    let unknown_only = snappy(&ReadRequest {
        queries: vec![],
        accepted_response_types: vec![7, 9],
    });
    let (code, msg) = http(a, "POST", "/api/v1/read", &PROTO, &unknown_only);
    assert_eq!(code, 400);
    assert!(String::from_utf8_lossy(&msg).contains("[7, 9]"));
    s.stop();
}

#[test]
fn writes_need_the_token_and_a_read_only_server_takes_none() {
    let d = tempfile::tempdir().unwrap();
    let s = serve(d.path(), Some("s3cret"));
    let a = s.addr();
    let body = snappy(&WriteRequest {
        timeseries: vec![series(&[("__name__", "m")], &[(1, 1.0)])],
        ..WriteRequest::default()
    });
    assert_eq!(http(a, "POST", "/api/v1/write", &PROTO, &body).0, 401);
    let wrong = [("Authorization", "Bearer nope")];
    assert_eq!(http(a, "POST", "/api/v1/write", &wrong, &body).0, 401);
    let bearer = [("Authorization", "Bearer s3cret")];
    assert_eq!(http(a, "POST", "/api/v1/write", &bearer, &body).0, 204);
    // Basic with the token as the password (base64 of "prom:s3cret").
    let basic = [("Authorization", "Basic cHJvbTpzM2NyZXQ=")];
    assert_eq!(http(a, "POST", "/api/v1/write", &basic, &body).0, 204);
    let line = b"cpu v=1 1\n";
    assert_eq!(http(a, "POST", "/write?db=x", &[], line).0, 401);
    assert_eq!(
        http(a, "POST", "/write?db=x&u=me&p=s3cret", &[], line).0,
        204
    );
    let token = [("Authorization", "Token s3cret")];
    assert_eq!(http(a, "POST", "/write?db=x", &token, line).0, 204);
    // Reads need no token.
    assert_eq!(http(a, "GET", "/api/v1/series", &[], b"").0, 200);
    s.stop();

    let ro = start(
        d.path(),
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            read_only: true,
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let a = ro.addr();
    assert_eq!(http(a, "POST", "/api/v1/write", &bearer, &body).0, 403);
    assert_eq!(http(a, "POST", "/write?db=x", &[], line).0, 403);
    let (code, msg) = http(a, "GET", "/api/v1/query?selector=cpu", &[], b"");
    assert_eq!(code, 501);
    assert!(String::from_utf8_lossy(&msg).contains("read-only"));
    ro.stop();
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (code, body) = http(addr, "GET", path, &[], b"");
    assert_eq!(code, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn influx_write_takes_gzip_precisions_and_many_fields_and_names_bad_lines() {
    let d = tempfile::tempdir().unwrap();
    let s = serve(d.path(), None);
    let a = s.addr();
    assert_eq!(http(a, "GET", "/ping", &[], b"").0, 204);
    let (code, _) = http(
        a,
        "POST",
        "/query?q=CREATE+DATABASE+%22telegraf%22",
        &[],
        b"",
    );
    assert_eq!(code, 200);
    assert_eq!(
        http(a, "POST", "/query?q=SELECT+*+FROM+cpu", &[], b"").0,
        400
    );

    let body = b"# telegraf\ncpu,host=a usage_idle=98.5,usage_user=1i,up=true 1700000000\n\
                 cpu,host=b usage_idle=97 1700000001\n";
    let gz = gzip(body);
    let (code, b) = http(
        a,
        "POST",
        "/write?db=telegraf&precision=s&rp=autogen",
        &[("Content-Encoding", "gzip")],
        &gz,
    );
    assert_eq!(code, 204, "{}", String::from_utf8_lossy(&b));
    for (p, ts) in [
        ("ms", 1_700_000_002_000i64),
        ("m", 28_333_334),
        ("h", 472_223),
        ("u", 1_700_000_003_000_000),
    ] {
        let line = format!("cpu,host=a usage_idle=1 {ts}\n");
        let (code, b) = http(
            a,
            "POST",
            &format!("/write?db=telegraf&precision={p}"),
            &[],
            line.as_bytes(),
        );
        assert_eq!(code, 204, "{p}: {}", String::from_utf8_lossy(&b));
    }
    let v = json(a, "/api/v1/series?selector=cpu%7Bdb%3D%22telegraf%22%7D");
    let names: Vec<String> = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| format!("{} {} {}", x["series"], x["field"], x["type"]))
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names.iter().any(|n| n.contains("cpu,db=telegraf,host=a")
            && n.contains("usage_user")
            && n.contains("integer")),
        "{names:?}"
    );
    let q = json(
        a,
        "/api/v1/query?selector=cpu%7Bhost%3D%22a%22%2C_field%3D%22usage_idle%22%7D",
    );
    let pts = q["series"][0]["points"].as_array().unwrap();
    let times: Vec<i64> = pts.iter().map(|p| p[0].as_i64().unwrap()).collect();
    assert_eq!(
        times,
        vec![
            1_700_000_000_000_000_000,
            1_700_000_002_000_000_000,
            1_700_000_003_000_000_000,
            1_700_000_040_000_000_000,
            1_700_002_800_000_000_000,
        ]
    );

    let before = points(&s);
    // Errors: each names the line, and nothing of the body is written.
    let cases: [(&str, &[u8], u16, &str); 6] = [
        ("/write", b"cpu v=1 1\n", 400, "database is required"),
        ("/write?db=t", b"cpu v=1 1\ncpu v= 2\n", 400, "line 2"),
        (
            "/write?db=t",
            b"cpu v=1 1\ncpu v=\"text\" 2\n",
            400,
            "line 2",
        ),
        ("/write?db=t", b"cpu v=1 1\ncpu,db=x v=1 2\n", 400, "line 2"),
        ("/write?db=t", b"cpu v=1 1\ncpu v=1i 2\n", 400, "line 2"),
        ("/write?db=t&precision=d", b"cpu v=1 1\n", 400, "precision"),
    ];
    for (path, body, want, says) in cases {
        let (code, b) = http(a, "POST", path, &[], body);
        let msg = String::from_utf8_lossy(&b);
        assert_eq!(code, want, "{path} {msg}");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert!(v["error"].as_str().unwrap().contains(says), "{msg}");
    }
    let (code, _) = http(
        a,
        "POST",
        "/write?db=t",
        &[("Content-Encoding", "gzip")],
        b"not gzip",
    );
    assert_eq!(code, 400);
    assert_eq!(points(&s), before, "a refused body writes nothing");
    s.stop();
}

#[test]
fn the_query_endpoint_answers_as_of_any_version_and_aggregates() {
    let d = tempfile::tempdir().unwrap();
    let s = serve(d.path(), None);
    let a = s.addr();
    let lines: String = (0..120)
        .map(|i| format!("temp,room=a v={} {}\n", i as f64, i * 1_000_000_000i64))
        .collect();
    assert_eq!(
        http(a, "POST", "/write?db=home", &[], lines.as_bytes()).0,
        204
    );
    let e = s.engine().unwrap();
    e.compact(CompactOptions {
        all: true,
        ..CompactOptions::default()
    })
    .unwrap();
    let (snap, _) = e.snapshot(Some("before-fix")).unwrap();
    drop(e);
    // A late correction of t = 10 s.
    assert_eq!(
        http(
            a,
            "POST",
            "/write?db=home",
            &[],
            b"temp,room=a v=-1 10000000000\n"
        )
        .0,
        204
    );

    let sel = "selector=temp%7Broom%3D%22a%22%7D";
    let at = |q: &str| {
        json(
            a,
            &format!("/api/v1/query?{sel}&from=10000000000ns&to=10000000000ns{q}"),
        )
    };
    assert_eq!(at("")["series"][0]["points"][0][1], -1.0);
    assert_eq!(at("")["as_of"], serde_json::Value::Null);
    let old = at(&format!("&as_of={}", snap.as_str()));
    assert_eq!(old["series"][0]["points"][0][1], 10.0);
    assert_eq!(old["as_of"].as_str().unwrap().len(), 64);

    // Minute means: [0, 60) then [60, 120) seconds.
    let m = json(a, &format!("/api/v1/query?{sel}&step=1m&agg=mean"));
    let p = m["series"][0]["points"].as_array().unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(p[0][0], 0);
    let want = (0..60)
        .map(|i| if i == 10 { -1.0 } else { i as f64 })
        .sum::<f64>()
        / 60.0;
    assert!((p[0][1].as_f64().unwrap() - want).abs() < 1e-9, "{p:?}");
    assert_eq!(p[1][1], (60..120).sum::<i32>() as f64 / 60.0);
    let c = json(
        a,
        &format!("/api/v1/query?{sel}&agg=count&as_of=before-fix"),
    );
    assert_eq!(c["series"][0]["points"][0][1], 120);
    let none = json(a, "/api/v1/query?selector=nothing");
    assert_eq!(none["series"].as_array().unwrap().len(), 0);
    let sv = json(a, &format!("/api/v1/series?{sel}&as_of=before-fix"));
    assert_eq!(sv["series"][0]["series"], "temp,db=home,room=a");

    for (q, code, says) in [
        ("selector=temp%7Broom%3D", 400, "column"),
        ("selector=temp&as_of=no-such-ref", 404, "no-such-ref"),
        ("selector=temp&from=yesterday", 400, "from"),
        ("selector=temp&step=1m", 400, "agg"),
        ("selector=temp&agg=median", 400, "median"),
    ] {
        let (c, b) = http(a, "GET", &format!("/api/v1/query?{q}"), &[], b"");
        let msg = String::from_utf8_lossy(&b);
        assert_eq!(c, code, "{q}: {msg}");
        assert!(msg.contains(says), "{q}: {msg}");
    }
    s.stop();
}

/// `sydra serve` as a child process, and its address (from its banner).
#[allow(clippy::zombie_processes)] // the caller kills and waits for it
fn spawn_serve(dir: &Path) -> (std::process::Child, SocketAddr) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sydra"))
        .arg("--dir")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "serve exited");
        if let Some(at) = line.find("http://") {
            let addr = line[at + 7..].split_whitespace().next().unwrap();
            let addr = addr.parse().unwrap();
            // Keep draining its stderr so it never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut sink = String::new();
                while err.read_line(&mut sink).unwrap_or(0) > 0 {
                    sink.clear();
                }
            });
            return (child, addr);
        }
    }
}

#[test]
fn kill_9_of_serve_during_remote_writes_loses_no_acknowledged_sample() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("data");
    Engine::create(&dir, Default::default()).unwrap();
    let rounds = std::env::var("SYDRA_SERVE_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3u32);
    // (series label, ms timestamp) of every acknowledged sample.
    let mut acked: Vec<(String, i64)> = Vec::new();
    let mut next = 0i64;
    for round in 0..rounds {
        let (mut child, addr) = spawn_serve(&dir);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let stop = stop.clone();
                let base = next + i64::from(w) * 1_000_000;
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    let mut t = base;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let ts: Vec<TimeSeries> = (0..20)
                            .map(|i| {
                                series(
                                    &[
                                        ("__name__", "k"),
                                        ("w", &w.to_string()),
                                        ("i", &i.to_string()),
                                    ],
                                    &[(t, t as f64), (t + 1, (t + 1) as f64)],
                                )
                            })
                            .collect();
                        let body = snappy(&WriteRequest {
                            timeseries: ts,
                            ..WriteRequest::default()
                        });
                        // A connection the kill cuts is not acknowledged.
                        let r = std::panic::catch_unwind(|| {
                            http(addr, "POST", "/api/v1/write", &PROTO, &body).0
                        });
                        match r {
                            Ok(204) => {
                                for i in 0..20 {
                                    mine.push((format!("{w}/{i}"), t));
                                    mine.push((format!("{w}/{i}"), t + 1));
                                }
                            }
                            _ => break,
                        }
                        t += 2;
                    }
                    mine
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(
            300 + 200 * u64::from(round),
        ));
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            acked.extend(w.join().unwrap());
        }
        next += 10_000_000;
    }
    assert!(!acked.is_empty(), "no write was acknowledged");
    let e = Engine::open(&dir, Default::default()).unwrap();
    let v = e.view(None).unwrap();
    let mut have = std::collections::HashSet::new();
    for (k, _) in v.series().unwrap() {
        let label = format!("{}/{}", k.tag("w").unwrap(), k.tag("i").unwrap());
        for (t, val) in v.points(&k).unwrap() {
            assert_eq!(val, Value::F64((t / 1_000_000) as f64), "{k} at {t}");
            have.insert((label.clone(), t / 1_000_000));
        }
    }
    let lost: Vec<_> = acked.iter().filter(|x| !have.contains(*x)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged samples lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

/// A remote write that declares `len` bytes of body and sends none: the
/// status.
fn claiming(addr: SocketAddr, len: u64) -> u16 {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let head = String::from_utf8_lossy(&out);
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_influxdb_cli_writes_through_the_write_api_unchanged() {
    let test = "the_influxdb_cli_writes_through_the_write_api_unchanged";
    if !super::capability::runs(
        test,
        super::capability::tools(&["influx"], "apt-get install influxdb-client"),
    ) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = serve(&d.path().join("data"), None);
    let port = s.addr().port().to_string();
    let influx = |args: &[&str]| {
        let out = std::process::Command::new("influx")
            .args(["-host", "127.0.0.1", "-port", &port])
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "influx {args:?}: {text}");
        text
    };
    influx(&[
        "-database",
        "telegraf",
        "-precision",
        "s",
        "-execute",
        "INSERT cpu,host=a usage_idle=97.5,usage_user=2i 1700000000",
    ]);
    // `influx -import` of a gzip file: CREATE DATABASE, then /write with
    // the file's lines in batches.
    let lines: String = (0..500)
        .map(|i| format!("mem,host=b free={i}i {}\n", 1_700_000_000 + i))
        .collect();
    let file = d.path().join("import.txt.gz");
    std::fs::write(
        &file,
        gzip(
            format!(
                "# DDL\nCREATE DATABASE telegraf\n# DML\n# CONTEXT-DATABASE: telegraf\n{lines}"
            )
            .as_bytes(),
        ),
    )
    .unwrap();
    let out = influx(&[
        "-import",
        "-path",
        file.to_str().unwrap(),
        "-compressed",
        "-precision",
        "s",
    ]);
    assert!(out.contains("Failed 0 inserts"), "{out}");
    let e = s.engine().unwrap();
    let v = e.view(None).unwrap();
    let keys: Vec<String> = v
        .series()
        .unwrap()
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(
        keys,
        [
            "cpu,db=telegraf,host=a usage_idle",
            "cpu,db=telegraf,host=a usage_user",
            "mem,db=telegraf,host=b free"
        ]
    );
    let mem = sydra_engine::series::SeriesKey::new(
        "mem",
        [
            ("db".to_string(), "telegraf".to_string()),
            ("host".to_string(), "b".to_string()),
        ],
        "free",
    )
    .unwrap();
    let pts = v.points(&mem).unwrap();
    assert_eq!(pts.len(), 500);
    assert_eq!(pts[499], (1_700_000_499_000_000_000, Value::I64(499)));
    drop(v);
    drop(e);
    s.stop();
}

mod model {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use proptest::prelude::*;

    use super::*;

    /// Generated remote writes, read back through remote read, equal a
    /// model of last-write-wins per (series, ms), bit for bit.
    /// One request: per series (its `instance` number), (ms, value bits).
    type Request = Vec<(u8, Vec<(i64, u64)>)>;

    fn check(requests: Vec<Request>, s: &Server) {
        static CASE: AtomicUsize = AtomicUsize::new(0);
        let name = format!("gen{}", CASE.fetch_add(1, Ordering::Relaxed));
        let mut model: BTreeMap<(u8, i64), u64> = BTreeMap::new();
        for req in &requests {
            let ts = req
                .iter()
                .map(|(i, samples)| {
                    let pts: Vec<(i64, f64)> = samples
                        .iter()
                        .map(|&(t, b)| (t, f64::from_bits(b)))
                        .collect();
                    let inst = format!("host-{i}");
                    series(&[("__name__", &name), ("instance", &inst)], &pts)
                })
                .collect();
            let (code, msg) = write(s.addr(), ts);
            assert_eq!(code, 204, "{msg}");
            for (i, samples) in req {
                for &(t, b) in samples {
                    // proto3 leaves a zero double out of the message, so a
                    // -0 travels as 0 (Prometheus's encoder does the same).
                    let b = if b == (-0.0f64).to_bits() { 0 } else { b };
                    model.insert((*i, t), b);
                }
            }
        }
        let r = read(
            s.addr(),
            vec![Query {
                start_timestamp_ms: i64::MIN / 2_000_000,
                end_timestamp_ms: i64::MAX / 2_000_000,
                matchers: vec![matcher(0, "__name__", &name)],
            }],
        );
        let mut got: BTreeMap<(u8, i64), u64> = BTreeMap::new();
        for ts in &r.results[0].timeseries {
            let inst = ts.labels.iter().find(|l| l.name == "instance").unwrap();
            let i: u8 = inst.value["host-".len()..].parse().unwrap();
            let mut last = i64::MIN;
            for smp in &ts.samples {
                assert!(smp.timestamp > last, "samples sorted and unique");
                last = smp.timestamp;
                got.insert((i, smp.timestamp), smp.value.to_bits());
            }
        }
        assert_eq!(got, model);
    }

    fn value_bits() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            Just(STALE_NAN_BITS),
            Just((-0.0f64).to_bits()),
            (-1000i32..1000).prop_map(|x| f64::from(x).to_bits()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn generated_remote_writes_read_back_as_the_model(
            requests in prop::collection::vec(
                prop::collection::vec(
                    (0u8..4, prop::collection::vec((-5_000i64..5_000, value_bits()), 0..20)),
                    1..5,
                ),
                1..4,
            )
        ) {
            static SERVER: std::sync::OnceLock<(tempfile::TempDir, Server)> = std::sync::OnceLock::new();
            let (_, s) = SERVER.get_or_init(|| {
                let d = tempfile::tempdir().unwrap();
                let s = serve(d.path(), None);
                (d, s)
            });
            // One request may name a series twice: Prometheus never does,
            // and the model (last sample wins) still holds.
            check(requests, s);
        }
    }
}
