//! End to end with the real Prometheus (Debian's `prometheus` and
//! `prometheus-node-exporter`, which `.ci/run` installs): Prometheus
//! scrapes node_exporter every second and remote-writes to `sydra serve`;
//! every sample it holds for the window is then read back from Sydra bit
//! for bit, and a second Prometheus with only `remote_read` from Sydra
//! answers PromQL exactly as the first does over its own TSDB.
//!
//! `SYDRA_PROM_E2E_SECONDS` sets how long it scrapes (default 60).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;
use sydra_engine::Engine;
use sydra_engine::serve::prompb::{LabelMatcher, Query, ReadRequest, ReadResponse, STALE_NAN_BITS};
use sydra_engine::serve::{ServeOptions, start};

use super::capability;
use super::common::http;

/// Kills its process when dropped (a failing test leaves nothing running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(cmd: &str, args: &[String], log: &Path) -> Running {
    let log = std::fs::File::create(log).unwrap();
    Running(
        Command::new(cmd)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}")),
    )
}

/// Wait until `GET path` answers 200.
fn wait_ready(addr: SocketAddr, path: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(addr).is_ok() && http(addr, "GET", path, &[], b"").0 == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A Prometheus API query at `time_ms`: its `data.result`.
fn prom_query(addr: SocketAddr, q: &str, time_ms: i64) -> serde_json::Value {
    let path = format!(
        "/api/v1/query?query={}&time={}.{:03}",
        enc(q),
        time_ms / 1000,
        time_ms % 1000
    );
    let (code, body) = http(addr, "GET", &path, &[], b"");
    assert_eq!(code, 200, "{q}: {}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["result"].clone()
}

/// Prometheus's text form of a float, read back exactly (Go's shortest
/// round-trip form, `NaN`, `+Inf`, `-Inf`).
fn prom_float(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}")),
    }
}

type Samples = BTreeMap<Vec<(String, String)>, Vec<(i64, u64)>>;

/// `{job="node"}[w]` at `t1` from Prometheus's own TSDB.
fn prom_samples(addr: SocketAddr, w_ms: i64, t1: i64) -> Samples {
    let mut out = Samples::new();
    for s in prom_query(addr, &format!("{{job=\"node\"}}[{w_ms}ms]"), t1)
        .as_array()
        .unwrap()
    {
        let labels: Vec<(String, String)> = s["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let pts = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (t, prom_float(p[1].as_str().unwrap()).to_bits())
            })
            .collect();
        out.insert(labels, pts);
    }
    out
}

/// A snappy remote read of `{job="node"}` over the window of `w_ms` ending
/// at `t1`, accepting the response types `accept`.
fn read_request(w_ms: i64, t1: i64, accept: Vec<i32>) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(
            &ReadRequest {
                queries: vec![Query {
                    start_timestamp_ms: t1 - w_ms + 1,
                    end_timestamp_ms: t1,
                    matchers: vec![LabelMatcher {
                        r#type: 0,
                        name: "job".into(),
                        value: "node".into(),
                    }],
                }],
                accepted_response_types: accept,
            }
            .encode_to_vec(),
        )
        .unwrap()
}

/// The same window read from Sydra through its remote read endpoint,
/// staleness markers left out (Prometheus's query API never shows them).
fn sydra_samples(addr: SocketAddr, w_ms: i64, t1: i64) -> Samples {
    let body = read_request(w_ms, t1, vec![]);
    let (code, b) = http(addr, "POST", "/api/v1/read", &[], &body);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&b));
    let raw = snap::raw::Decoder::new().decompress_vec(&b).unwrap();
    let r = ReadResponse::decode(raw.as_slice()).unwrap();
    let mut out = Samples::new();
    for ts in &r.results[0].timeseries {
        let labels = ts
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        let pts: Vec<(i64, u64)> = ts
            .samples
            .iter()
            .map(|s| (s.timestamp, s.value.to_bits()))
            .filter(|(_, bits)| *bits != STALE_NAN_BITS)
            .collect();
        if !pts.is_empty() {
            out.insert(labels, pts);
        }
    }
    out
}

/// The same window read through remote read's `STREAMED_XOR_CHUNKS`
/// answer from the server at `addr` (Prometheus or Sydra), staleness
/// markers and samples outside the window left out (a chunk is sent
/// whole). Every chunk must be exactly what Sydra's encoder writes for the
/// samples it holds, and the series must come sorted by their labels.
fn streamed_samples(addr: SocketAddr, w_ms: i64, t1: i64) -> Samples {
    use sydra_engine::serve::chunks::{self, ChunkedReadResponse};
    let body = read_request(w_ms, t1, vec![chunks::RESPONSE_STREAMED_XOR_CHUNKS]);
    let (code, b) = http(addr, "POST", "/api/v1/read", &[], &body);
    assert_eq!(code, 200, "{addr}: {}", String::from_utf8_lossy(&b));
    let mut out = Samples::new();
    let mut order: Vec<Vec<(String, String)>> = Vec::new();
    let mut chunk_count = 0;
    // Chunks that only start with what Sydra writes, by series.
    let mut open_chunks: BTreeMap<usize, usize> = BTreeMap::new();
    for frame in chunks::frames(&b).unwrap_or_else(|e| panic!("{addr}: {e}")) {
        let m = ChunkedReadResponse::decode(frame).unwrap();
        assert_eq!(m.query_index, 0);
        for cs in &m.chunked_series {
            let labels: Vec<(String, String)> = cs
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            if order.last() != Some(&labels) {
                order.push(labels.clone());
            }
            let pts = out.entry(labels).or_default();
            for c in &cs.chunks {
                chunk_count += 1;
                assert_eq!(c.r#type, chunks::ENCODING_XOR);
                let (ts, vs) =
                    chunks::decode_xor(&c.data).unwrap_or_else(|e| panic!("{addr}: {e}"));
                assert_eq!((ts[0], ts[ts.len() - 1]), (c.min_time_ms, c.max_time_ms));
                // Byte for byte, except that Prometheus may send its open
                // head chunk with bits of a sample being appended after
                // the last one its count covers (in the last byte, and
                // beyond): at most one such chunk a series.
                let mine = chunks::encode_xor(&ts, &vs).unwrap();
                if mine != c.data {
                    let k = mine.len() - 1;
                    let pad = (1u8 << mine[k].trailing_zeros().min(7)) - 1;
                    let open = c.data.len() >= mine.len()
                        && c.data[..k] == mine[..k]
                        && (c.data[k] ^ mine[k]) & !pad == 0;
                    let n = open_chunks.entry(order.len()).or_insert(0);
                    *n += 1;
                    assert!(
                        open && *n == 1,
                        "{addr}: a chunk of {} samples from {} is not what Sydra's encoder \
                         writes: {} bytes against {}, first difference at byte {:?}",
                        ts.len(),
                        ts[0],
                        c.data.len(),
                        mine.len(),
                        mine.iter().zip(&c.data).position(|(a, b)| a != b)
                    );
                }
                pts.extend(
                    ts.iter()
                        .zip(&vs)
                        .filter(|(t, v)| {
                            (t1 - w_ms + 1..=t1).contains(*t) && v.to_bits() != STALE_NAN_BITS
                        })
                        .map(|(&t, v)| (t, v.to_bits())),
                );
            }
        }
    }
    assert!(chunk_count > 0, "{addr}: no chunks");
    let mut sorted = order.clone();
    sorted.sort();
    assert!(
        order == sorted,
        "{addr}: the series are not sorted by labels"
    );
    out.retain(|_, v| !v.is_empty());
    out
}

fn count(s: &Samples) -> usize {
    s.values().map(Vec::len).sum()
}

fn now_ms() -> i64 {
    (sydra_engine::now_ns() / 1_000_000) as i64
}

#[test]
fn prometheus_remote_writes_to_sydra_and_answers_promql_by_remote_read_from_it() {
    let test = "prometheus_remote_writes_to_sydra_and_answers_promql_by_remote_read_from_it";
    if !capability::runs(
        test,
        capability::tools(
            &["prometheus", "prometheus-node-exporter"],
            "apt-get install prometheus prometheus-node-exporter",
        ),
    ) {
        return;
    }
    let seconds: i64 = std::env::var("SYDRA_PROM_E2E_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
        .max(20);
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("sydra");
    Engine::create(&dir, Default::default()).unwrap();
    // The recipe of docs/OPERATIONS.md: writes carry the server's token.
    let token_file = d.path().join("token");
    std::fs::write(&token_file, "e2e-token\n").unwrap();
    let server = start(
        &dir,
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            token: Some("e2e-token".into()),
            ..ServeOptions::default()
        },
    )
    .unwrap();
    let sydra = server.addr();

    let node: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _node = spawn(
        "prometheus-node-exporter",
        &[format!("--web.listen-address={node}")],
        &d.path().join("node.log"),
    );
    wait_ready(node, "/metrics", "node_exporter");

    let prom: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = d.path().join("scrape.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['{node}']\n\
             remote_write:\n  - url: http://{sydra}/api/v1/write\n    authorization:\n      credentials_file: {}\n\
             \x20   queue_config:\n      batch_send_deadline: 1s\n",
            token_file.display()
        ),
    )
    .unwrap();
    let _prom = spawn(
        "prometheus",
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", d.path().join("tsdb1").display()),
            format!("--web.listen-address={prom}"),
        ],
        &d.path().join("prometheus1.log"),
    );
    wait_ready(prom, "/-/ready", "prometheus (scraping)");
    let started = now_ms();
    std::thread::sleep(Duration::from_secs(seconds as u64));

    // The window: whole scrapes well before now, so every sample of it has
    // had time to be remote-written.
    let t1 = now_ms() - 5_000;
    let w_ms = t1 - started - 2_000;
    let want = prom_samples(prom, w_ms, t1);
    assert!(
        count(&want) > 1000 && want.len() > 100,
        "Prometheus holds {} samples of {} series: too few to compare",
        count(&want),
        want.len()
    );
    // Remote write lags by its batch deadline and retries: wait for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = sydra_samples(sydra, w_ms, t1);
    while got != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        got = sydra_samples(sydra, w_ms, t1);
    }
    if got != want {
        let missing: Vec<_> = want
            .keys()
            .filter(|k| !got.contains_key(*k))
            .take(3)
            .collect();
        let differ: Vec<_> = want
            .iter()
            .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
            .map(|(k, v)| (k, v.len(), got[k].len()))
            .take(3)
            .collect();
        panic!(
            "Sydra holds {} samples of {} series, Prometheus {} of {}; missing series {missing:?}; \
             differing {differ:?}",
            count(&got),
            got.len(),
            count(&want),
            want.len()
        );
    }

    eprintln!(
        "prometheus e2e: {} samples of {} series over {w_ms} ms equal bit for bit",
        count(&got),
        got.len()
    );
    // The streamed answer: Prometheus's own chunks are what Sydra's encoder
    // writes for their samples, and decode to what its query API returns;
    // Sydra's decode to the same samples.
    assert!(
        streamed_samples(prom, w_ms, t1) == want,
        "Prometheus's chunks"
    );
    assert!(streamed_samples(sydra, w_ms, t1) == want, "Sydra's chunks");
    // A second Prometheus that scrapes nothing and reads from Sydra.
    let prom2: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config2 = d.path().join("read.yml");
    std::fs::write(
        &config2,
        format!("remote_read:\n  - url: http://{sydra}/api/v1/read\n    read_recent: true\n"),
    )
    .unwrap();
    let _prom2 = spawn(
        "prometheus",
        &[
            format!("--config.file={}", config2.display()),
            format!("--storage.tsdb.path={}", d.path().join("tsdb2").display()),
            format!("--web.listen-address={prom2}"),
        ],
        &d.path().join("prometheus2.log"),
    );
    wait_ready(prom2, "/-/ready", "prometheus (remote read)");
    for q in [
        "sort_desc(sum by (mode) (rate(node_cpu_seconds_total[15s])))".to_owned(),
        "node_load1".to_owned(),
        format!("sum(count_over_time(node_cpu_seconds_total[{w_ms}ms]))"),
        "count({job=\"node\"})".to_owned(),
        format!("max_over_time(node_memory_MemFree_bytes[{w_ms}ms])"),
    ] {
        let local = prom_query(prom, &q, t1);
        let remote = prom_query(prom2, &q, t1);
        assert!(
            local.as_array().is_some_and(|a| !a.is_empty()),
            "{q}: no result from the local TSDB"
        );
        let sorted = |v: &serde_json::Value| {
            let mut a: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.to_string())
                .collect();
            a.sort();
            a
        };
        assert_eq!(sorted(&remote), sorted(&local), "{q}");
    }
    server.stop();
}
