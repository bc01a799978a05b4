//! The protocol goals of issue 17, each beside a baseline measured in the
//! same run, one JSON line per mode (also written to
//! `<target dir>/sydra-bench-results/protocols_<mode>.json`).
//! `benches/protocols.sh` starts the peers and runs every mode;
//! `docs/BENCHMARKS-PROTOCOLS.md` holds the results.
//!
//! ```text
//! protocols_bench record --node-exporter HOST:PORT --out D [--requests 36] [--series 1000] [--samples 100] [--seed 1]
//! protocols_bench ingest --data D --system sydra|influx|prometheus [--addr HOST:PORT] [--pid PID] [--clients 1] [--label L]
//! protocols_bench read   --data D --prometheus HOST:PORT [--reps 30] [--warmup 5]
//! protocols_bench phases --data D [--threads 1] [--sync always|never]
//! ```
//!
//! - `record`: one real scrape of node_exporter (`GET /metrics`), parsed
//!   (metric names, labels, `# TYPE`), becomes `--series` series (the
//!   scraped series, repeated with another `instance` label when there are
//!   fewer; every series gets `job="node"` and `instance="node-K:9100"`, as
//!   Prometheus adds them). Each starts from its scraped value and moves
//!   each second: counters increase at the rate their value implies over
//!   the host's uptime (integer counters by whole steps, CPU seconds by
//!   0.01), gauges wander in their own precision (whole numbers, pages of
//!   4096, or 1 to 3 decimals; info-like gauges and gauges at 0 or 1 stay
//!   put), `node_time_seconds` follows the clock. One scrape per second
//!   (0 to 2 ms of jitter, shared by all series of the scrape), ending a
//!   second before now. Request `r` holds every series' samples of scrapes
//!   `r*samples .. (r+1)*samples`: `--requests` requests of `--series` ×
//!   `--samples` samples (36 = one hour of 1000 series at 1 s). Every
//!   request is encoded (`prometheus.WriteRequest`, snappy block) here,
//!   before anything is timed, into `D/requests.bin`, with `D/meta.json`.
//! - `ingest`: the recorded requests sent by `--clients` concurrent
//!   clients (one keep-alive connection each, taking the next request in
//!   order), timed from their release to the last answer; every answer
//!   must be 204. `sydra`: `sydra serve` in this process on a fresh data
//!   directory under `$SYDRA_BENCH_TMP` (defaults: WAL `SyncMode::Always`,
//!   so a 204 means durable), `POST /api/v1/write`. `prometheus`: the same
//!   bodies to `--addr`'s `/api/v1/write` (a Prometheus started with
//!   `--web.enable-remote-write-receiver`). `influx`: the same samples as
//!   line protocol (measurement `__name__`, tags the other labels, field
//!   `value`, ms timestamps), one `POST /write?db=bench&precision=ms` per
//!   request, built from the decoded requests before timing. Afterwards
//!   every system is asked how many samples it holds (Sydra: its engine;
//!   InfluxDB: `SELECT count(value)`; Prometheus: `count_over_time`), which
//!   must be all of them. `--pid` names the server process whose CPU time
//!   (`/proc/PID/stat`) is reported; for Sydra it is this process (the
//!   clients' share included). Sydra is also timed compacting everything
//!   it took (`CompactOptions { all: true }`, untimed in the rate): the work
//!   its compaction thread does later, reported as a rate with it added.
//! - `read`: one series (node_cpu_seconds_total{cpu="0",mode="user"} of
//!   `node-0`) over the last hour of the data. Sydra (in this process, a
//!   fresh directory loaded with every request) answers `POST
//!   /api/v1/read` (one query: an `=` matcher for `__name__` and for each
//!   label, start and end the hour, both inclusive); the Prometheus at
//!   `--prometheus` (loaded by `ingest` with the same requests) answers
//!   `GET /api/v1/query?query=metric{labels}[1h]&time=END`, and, as an
//!   extra, the same remote read. Each is timed from the request's first
//!   byte sent to the response's last byte received, on a keep-alive
//!   connection, after `--warmup` untimed requests, taking turns for
//!   `--reps` rounds; medians are reported. Every answer is checked
//!   against the recorded samples (count, timestamps and value bits).
//!   Sydra is measured three times: with every point in its head (no
//!   compaction yet), after `Engine::maintain` (what the server's
//!   compaction thread runs: blocks before the newest move to segments),
//!   and after a compaction of everything (`CompactOptions { all: true }`).
//!   Beside each: the handler's steps timed in this process (view, query,
//!   protobuf, snappy), a `GET` of each server's health endpoint on the
//!   same kind of connection (the fixed cost of a request), and every
//!   probe once more in blocks of `--reps` requests in a row instead of
//!   taking turns (each server then answers with its own working set in
//!   the caches; the turns are the result, the blocks show how much of
//!   it the other server's requests in between cost).
//! - `phases`: where Sydra's remote-write time goes, without HTTP: the
//!   handler's steps (snappy, protobuf decode, series keys and handles,
//!   appends, commit) run in this process on a fresh engine over the
//!   recorded requests, each step timed, by `--threads` threads.
//!
//! Everything is on 127.0.0.1. Scratch goes under `$SYDRA_BENCH_TMP`
//! (else `<target dir>/sydra-bench-tmp`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};
use sydra_benches::args::Args;

use prost::Message;
use serde_json::{Value as Json, json};
use sydra_benches::{scratch, scratch_root, syncfs, write_result};
use sydra_engine::Engine;
use sydra_engine::series::{Column, CompactOptions, Selector, SeriesKey, Value};
use sydra_engine::serve::prompb::{
    Label, LabelMatcher, Query, ReadRequest, ReadResponse, ReadSeries, Sample, TimeSeries,
    WriteRequest,
};
use sydra_engine::serve::{ServeOptions, start};
use sydra_engine::wal::{SyncMode, WalOptions};

// ---------------------------------------------------------------- helpers

/// Print the mode's JSON line and keep it in the results directory.
fn emit(mode: &str, mut v: Json) {
    v["mode"] = json!(mode);
    let line = v.to_string();
    println!("{line}");
    let name = match v.get("label").and_then(Json::as_str) {
        Some(l) => format!("protocols_{mode}_{l}"),
        None => format!("protocols_{mode}"),
    };
    write_result(&name, &line);
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let i = ((s.len() - 1) as f64 * p).round() as usize;
    s[i]
}

fn now_ms() -> i64 {
    (sydra_engine::now_ns() / 1_000_000) as i64
}

/// xorshift64*: deterministic, seeded per series.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// CPU seconds (user + system) of a process so far, from `/proc/PID/stat`
/// (USER_HZ is 100 on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn dir_bytes(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                n += dir_bytes(&e.path());
            } else {
                n += md.len();
            }
        }
    }
    n
}

// ----------------------------------------------------------- HTTP client

/// An HTTP/1.1 response.
struct Resp {
    status: u16,
    body: Vec<u8>,
}

/// One keep-alive HTTP/1.1 connection (reopened when the server closes
/// it), with `Content-Length` and chunked bodies.
struct Conn {
    addr: SocketAddr,
    r: Option<BufReader<TcpStream>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn { addr, r: None }
    }

    fn connect(&mut self) -> io::Result<()> {
        if self.r.is_none() {
            let s = TcpStream::connect(self.addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(600)))?;
            self.r = Some(BufReader::with_capacity(256 << 10, s));
        }
        Ok(())
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Resp> {
        let reused = self.r.is_some();
        match self.try_request(method, path, headers, body) {
            // A kept-alive connection the server closed meanwhile: once
            // more on a new one.
            Err(e)
                if reused
                    && matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::ConnectionAborted
                    ) =>
            {
                self.r = None;
                self.try_request(method, path, headers, body)
            }
            r => r,
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Resp> {
        let result = self.exchange(method, path, headers, body);
        if result.is_err() {
            self.r = None;
        }
        result
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Resp> {
        self.connect()?;
        let addr = self.addr;
        let r = self.r.as_mut().expect("connected");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
        if method != "GET" || !body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let w = r.get_mut();
        if body.len() < 64 << 10 {
            let mut all = head.into_bytes();
            all.extend_from_slice(body);
            w.write_all(&all)?;
        } else {
            w.write_all(head.as_bytes())?;
            w.write_all(body)?;
        }
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                match k.as_str() {
                    "content-length" => length = v.parse::<usize>().ok(),
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    "connection" => close = v.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        } else if chunked {
            loop {
                line.clear();
                r.read_line(&mut line)?;
                let size = line.trim_end().split(';').next().unwrap_or("");
                let n = usize::from_str_radix(size.trim(), 16)
                    .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
                if n == 0 {
                    // Trailers, then the blank line.
                    loop {
                        line.clear();
                        if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = out.len();
                out.resize(start + n, 0);
                r.read_exact(&mut out[start..])?;
                let mut crlf = [0u8; 2];
                r.read_exact(&mut crlf)?;
            }
        } else if let Some(n) = length {
            out.resize(n, 0);
            r.read_exact(&mut out)?;
        } else {
            r.read_to_end(&mut out)?;
            close = true;
        }
        if close {
            self.r = None;
        }
        Ok(Resp { status, body: out })
    }
}

/// Percent-encode a URL query value.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn get_json(addr: SocketAddr, path: &str) -> Json {
    let r = Conn::new(addr).request("GET", path, &[], b"").unwrap();
    assert_eq!(
        r.status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    serde_json::from_slice(&r.body).unwrap()
}

const PROTO_HEADERS: [(&str, &str); 4] = [
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
    ("User-Agent", "sydra-protocols-bench"),
];

const READ_HEADERS: [(&str, &str); 3] = [
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Read-Version", "0.1.0"),
];

fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(bytes).unwrap()
}

fn unsnappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Decoder::new().decompress_vec(bytes).unwrap()
}

// ------------------------------------------------------ the exposition

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Counter,
    Gauge,
}

/// One sample line of a scrape.
#[derive(Debug)]
struct Scraped {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parse a text exposition (format 0.0.4): sample lines and `# TYPE`.
fn parse_exposition(text: &str) -> (Vec<Scraped>, HashMap<String, String>) {
    let mut types = HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(n), Some(t)) = (it.next(), it.next()) {
                types.insert(n.to_owned(), t.to_owned());
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = parse_sample(line) {
            out.push(s);
        }
    }
    (out, types)
}

fn parse_sample(line: &str) -> Option<Scraped> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let end = line.find(|c: char| !is_name(c)).unwrap_or(line.len());
    let name = line[..end].to_owned();
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        loop {
            while chars.next_if(|(_, c)| *c == ',' || *c == ' ').is_some() {}
            let (i, c) = chars.next()?;
            if c == '}' {
                rest = &r[i + 1..];
                break;
            }
            let mut lname = String::from(c);
            while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=') {
                lname.push(c);
            }
            chars.next()?; // '='
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut v = String::new();
            loop {
                match chars.next()?.1 {
                    '\\' => match chars.next()?.1 {
                        'n' => v.push('\n'),
                        c => v.push(c),
                    },
                    '"' => break,
                    c => v.push(c),
                }
            }
            labels.push((lname.trim().to_owned(), v));
        }
    }
    let token = rest.split_whitespace().next()?;
    let value = match token {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        t => t.parse().ok()?,
    };
    Some(Scraped {
        name,
        labels,
        value,
    })
}

/// Counter or gauge, from `# TYPE` (summaries' and histograms' `_sum`,
/// `_count` and `_bucket` are counters, quantiles gauges). Untyped
/// `node_vmstat_*` and `node_netstat_*` are the kernel's cumulative
/// counters (but `CurrEstab`).
fn kind_of(s: &Scraped, types: &HashMap<String, String>) -> Kind {
    let family = |t: &str| match t {
        "counter" => Some(Kind::Counter),
        "gauge" => Some(Kind::Gauge),
        "summary" | "histogram" => Some(if s.labels.iter().any(|(k, _)| k == "quantile") {
            Kind::Gauge
        } else {
            Kind::Counter
        }),
        _ => None,
    };
    if let Some(k) = types.get(&s.name).and_then(|t| family(t)) {
        return k;
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = s.name.strip_suffix(suffix)
            && let Some(t) = types.get(base)
            && (t == "summary" || t == "histogram")
        {
            return Kind::Counter;
        }
    }
    let cumulative = (s.name.starts_with("node_vmstat_") || s.name.starts_with("node_netstat_"))
        && !s.name.contains("CurrEstab");
    if cumulative || s.name.ends_with("_total") {
        Kind::Counter
    } else {
        Kind::Gauge
    }
}

/// The precision a value is kept in.
#[derive(Clone, Copy, Debug)]
enum Quantum {
    /// Multiples of this whole number.
    Whole(f64),
    /// This many decimals.
    Decimals(i32),
    /// Full f64 precision.
    Full,
}

impl Quantum {
    fn of(v: f64) -> Quantum {
        if v.fract() == 0.0 {
            if v != 0.0 && (v % 4096.0) == 0.0 {
                return Quantum::Whole(4096.0);
            }
            return Quantum::Whole(1.0);
        }
        for d in 1..=3 {
            let p = 10f64.powi(d);
            let x = v * p;
            if (x.round() - x).abs() <= 1e-9 * x.abs().max(1.0) {
                return Quantum::Decimals(d);
            }
        }
        Quantum::Full
    }

    fn step(self) -> f64 {
        match self {
            Quantum::Whole(q) => q,
            Quantum::Decimals(d) => 10f64.powi(-d),
            Quantum::Full => 0.0,
        }
    }

    fn apply(self, v: f64) -> f64 {
        match self {
            Quantum::Whole(q) => (v / q).round() * q,
            Quantum::Decimals(d) => {
                let p = 10f64.powi(d);
                (v * p).round() / p
            }
            Quantum::Full => v,
        }
    }
}

/// How one series moves from its scraped value.
struct Walker {
    value: f64,
    kind: Kind,
    quantum: Quantum,
    /// Counters: mean increase per second; gauges: the largest step.
    rate: f64,
    /// Gauges: the chance of a change in a second.
    change: f64,
    constant: bool,
    clock: bool,
    rng: Rng,
}

impl Walker {
    fn new(s: &Scraped, kind: Kind, uptime_s: f64, seed: u64) -> Walker {
        let mut rng = Rng::new(seed);
        let v = s.value;
        let quantum = match s.name.as_str() {
            // USER_HZ ticks.
            n if n.ends_with("_seconds_total") && kind == Kind::Counter => Quantum::Decimals(2),
            _ => Quantum::of(v),
        };
        let info = s.name.ends_with("_info")
            || s.name.contains("boot_time")
            || s.name.contains("start_time")
            || s.name.contains("size_bytes")
            || s.name.contains("MemTotal")
            || s.name.ends_with("_max")
            || s.name.contains("limit");
        let (rate, change, constant) = match kind {
            Kind::Counter => {
                let rate = if v == 0.0 {
                    // Mostly error counters that stay at zero.
                    if rng.unit() < 0.7 { 0.0 } else { 0.02 }
                } else {
                    v / uptime_s.max(1.0)
                };
                (rate, 1.0, rate == 0.0)
            }
            Kind::Gauge => {
                let constant = info || v == 0.0 || v == 1.0 || rng.unit() < 0.2;
                let rate = (v.abs() * 0.002).max(quantum.step());
                (rate, 0.3 + 0.7 * rng.unit(), constant)
            }
        };
        Walker {
            value: v,
            kind,
            quantum,
            rate,
            change,
            constant,
            clock: s.name == "node_time_seconds",
            rng,
        }
    }

    fn next(&mut self, ts_ms: i64) -> f64 {
        if self.clock {
            // Scraped a few hundred microseconds into the scrape.
            return ts_ms as f64 / 1000.0 + 0.000_3 + self.rng.unit() * 0.000_2;
        }
        if self.constant {
            return self.value;
        }
        match self.kind {
            Kind::Counter => {
                let inc = match self.quantum {
                    Quantum::Whole(q) if self.rate < q => {
                        if self.rng.unit() < self.rate / q {
                            q
                        } else {
                            0.0
                        }
                    }
                    _ => self.rate * (0.5 + self.rng.unit()),
                };
                self.value = self.quantum.apply(self.value + inc);
            }
            Kind::Gauge => {
                if self.rng.unit() < self.change {
                    let was = self.value;
                    let mut v = self
                        .quantum
                        .apply(was + self.rate * (2.0 * self.rng.unit() - 1.0));
                    if was >= 0.0 && v < 0.0 {
                        v = self.quantum.apply(-v);
                    }
                    self.value = v;
                }
            }
        }
        self.value
    }
}

// ---------------------------------------------------------------- record

/// What `record` made (`D/meta.json`).
#[derive(Debug, Clone)]
struct Meta {
    requests: usize,
    series: usize,
    samples: usize,
    /// First and last sample time, ms.
    first_ms: i64,
    last_ms: i64,
    total_samples: u64,
    /// The series the read goal reads, labels sorted by name.
    read_labels: Vec<(String, String)>,
}

impl Meta {
    fn load(dir: &Path) -> Meta {
        let v: Json = serde_json::from_slice(&fs::read(dir.join("meta.json")).unwrap()).unwrap();
        let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("meta.json: {k}"));
        Meta {
            requests: n("requests") as usize,
            series: n("series") as usize,
            samples: n("samples_per_series") as usize,
            first_ms: v["first_ms"].as_i64().unwrap(),
            last_ms: v["last_ms"].as_i64().unwrap(),
            total_samples: n("total_samples"),
            read_labels: v["read_series"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect(),
        }
    }
}

/// The recorded request bodies (snappy `WriteRequest`s).
fn load_requests(dir: &Path) -> Vec<Vec<u8>> {
    let bytes = fs::read(dir.join("requests.bin")).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(bytes[at + 4..at + 4 + n].to_vec());
        at += 4 + n;
    }
    out
}

fn record(a: &Args) {
    let exporter = a.addr("node-exporter");
    let out = a.path("out");
    let requests: usize = a.get("requests", 36);
    let want: usize = a.get("series", 1000);
    let samples: usize = a.get("samples", 100);
    let seed: u64 = a.get("seed", 1);
    fs::create_dir_all(&out).unwrap();

    let r = Conn::new(exporter)
        .request("GET", "/metrics", &[], b"")
        .unwrap();
    assert_eq!(r.status, 200, "GET /metrics on {exporter}");
    let text = String::from_utf8(r.body).unwrap();
    fs::write(out.join("scrape.txt"), &text).unwrap();
    let (scraped, types) = parse_exposition(&text);
    let value_of = |n: &str| scraped.iter().find(|s| s.name == n).map(|s| s.value);
    let uptime_s = match (
        value_of("node_time_seconds"),
        value_of("node_boot_time_seconds"),
    ) {
        (Some(now), Some(boot)) if now > boot => now - boot,
        _ => 86_400.0,
    };
    // What InfluxDB's line protocol and Prometheus both take: finite
    // values, no backslash or newline in a label value (line protocol
    // escapes neither), no label called `time`. Labels with an empty value
    // are left out, as Prometheus does when it scrapes (InfluxDB refuses
    // empty tags).
    let usable: Vec<Scraped> = scraped
        .iter()
        .filter(|s| {
            s.value.is_finite()
                && s.labels.iter().all(|(k, v)| {
                    k != "time" && k != "job" && k != "instance" && !v.contains(['\\', '\n'])
                })
        })
        .map(|s| Scraped {
            name: s.name.clone(),
            labels: s
                .labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .cloned()
                .collect(),
            value: s.value,
        })
        .collect();
    assert!(
        !usable.is_empty(),
        "the scrape of {exporter} holds no usable series"
    );
    let copies = want.div_ceil(usable.len());
    let mut labels: Vec<Vec<Label>> = Vec::with_capacity(want);
    let mut walkers = Vec::with_capacity(want);
    let mut counters = 0;
    'outer: for copy in 0..copies {
        for s in &usable {
            if labels.len() == want {
                break 'outer;
            }
            let mut l: Vec<(String, String)> = s.labels.clone();
            l.push(("__name__".into(), s.name.clone()));
            l.push(("job".into(), "node".into()));
            l.push(("instance".into(), format!("node-{copy}:9100")));
            l.sort();
            let key = format!("{l:?}");
            let kind = kind_of(s, &types);
            counters += usize::from(kind == Kind::Counter);
            walkers.push(Walker::new(s, kind, uptime_s, fnv(&key) ^ seed));
            labels.push(
                l.into_iter()
                    .map(|(name, value)| Label { name, value })
                    .collect(),
            );
        }
    }
    let series = labels.len();
    let read_series = labels
        .iter()
        .find(|l| {
            let has = |k: &str, v: &str| l.iter().any(|x| x.name == k && x.value == v);
            has("__name__", "node_cpu_seconds_total")
                && has("cpu", "0")
                && has("mode", "user")
                && has("instance", "node-0:9100")
        })
        .or_else(|| labels.first())
        .unwrap()
        .clone();

    // Scrape k at t0 + k s (+ 0..=2 ms), the last a second before now.
    let scrapes = requests * samples;
    let t0 = (now_ms() / 1000) * 1000 - scrapes as i64 * 1000;
    let mut jitter = Rng::new(seed ^ 0x5eed);
    let times: Vec<i64> = (0..scrapes)
        .map(|k| t0 + k as i64 * 1000 + (jitter.next_u64() % 3) as i64)
        .collect();

    let started = Instant::now();
    let mut file = io::BufWriter::new(fs::File::create(out.join("requests.bin")).unwrap());
    let (mut raw_bytes, mut wire_bytes) = (0u64, 0u64);
    for r in 0..requests {
        let ks = r * samples..(r + 1) * samples;
        let wr = WriteRequest {
            timeseries: labels
                .iter()
                .zip(walkers.iter_mut())
                .map(|(l, w)| TimeSeries {
                    labels: l.clone(),
                    samples: ks
                        .clone()
                        .map(|k| Sample {
                            value: w.next(times[k]),
                            timestamp: times[k],
                        })
                        .collect(),
                    ..TimeSeries::default()
                })
                .collect(),
            ..WriteRequest::default()
        };
        let raw = wr.encode_to_vec();
        let body = snappy(&raw);
        raw_bytes += raw.len() as u64;
        wire_bytes += body.len() as u64;
        file.write_all(&(body.len() as u32).to_le_bytes()).unwrap();
        file.write_all(&body).unwrap();
    }
    file.flush().unwrap();
    let total = (requests * series * samples) as u64;
    let read_map: serde_json::Map<String, Json> = read_series
        .iter()
        .map(|l| (l.name.clone(), json!(l.value)))
        .collect();
    let meta = json!({
        "requests": requests,
        "series": series,
        "samples_per_series": samples,
        "samples_per_request": series * samples,
        "total_samples": total,
        "first_ms": times[0],
        "last_ms": times[scrapes - 1],
        "scraped_series": scraped.len(),
        "usable_series": usable.len(),
        "copies": copies,
        "counters": counters,
        "uptime_s": uptime_s,
        "read_series": read_map,
        "protobuf_bytes": raw_bytes,
        "snappy_bytes": wire_bytes,
        "encode_s": started.elapsed().as_secs_f64(),
    });
    fs::write(out.join("meta.json"), meta.to_string()).unwrap();
    emit("record", meta);
}

// ---------------------------------------------------------------- ingest

/// What sending every request did.
struct Sent {
    wall_s: f64,
    latencies: Vec<f64>,
    statuses: BTreeMap<u16, usize>,
    failures: Vec<String>,
}

/// Send `bodies` to `path` from `clients` concurrent keep-alive
/// connections, each taking the next body in order; timed from their
/// release to the last answer.
fn send_all(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    bodies: &[Vec<u8>],
    clients: usize,
) -> Sent {
    let next = AtomicUsize::new(0);
    let barrier = Barrier::new(clients + 1);
    let out = Mutex::new((Vec::new(), BTreeMap::new(), Vec::new()));
    let wall = std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| {
                let mut conn = Conn::new(addr);
                conn.connect().unwrap();
                let mut lat = Vec::new();
                let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
                let mut fails = Vec::new();
                barrier.wait();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() {
                        break;
                    }
                    let t = Instant::now();
                    match conn.request("POST", path, headers, &bodies[i]) {
                        Ok(r) => {
                            lat.push(t.elapsed().as_secs_f64());
                            *codes.entry(r.status).or_default() += 1;
                            if r.status != 204 {
                                fails.push(format!(
                                    "request {i}: HTTP {}: {}",
                                    r.status,
                                    String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
                                ));
                            }
                        }
                        Err(e) => fails.push(format!("request {i}: {e}")),
                    }
                }
                let mut o = out.lock().unwrap();
                o.0.extend(lat);
                for (c, n) in codes {
                    *o.1.entry(c).or_default() += n;
                }
                o.2.extend(fails);
            });
        }
        barrier.wait();
        let t = Instant::now();
        // The scope joins every client before returning.
        t
    });
    let wall_s = wall.elapsed().as_secs_f64();
    let (latencies, statuses, failures) = out.into_inner().unwrap();
    Sent {
        wall_s,
        latencies,
        statuses,
        failures,
    }
}

/// Line protocol of one decoded request: measurement `__name__`, tags the
/// other labels, field `value`, ms timestamps.
fn line_protocol(wr: &WriteRequest) -> Vec<u8> {
    fn esc(out: &mut String, s: &str, also_eq: bool) {
        for c in s.chars() {
            if c == ',' || c == ' ' || (also_eq && c == '=') {
                out.push('\\');
            }
            out.push(c);
        }
    }
    let mut out = String::with_capacity(wr.timeseries.len() * 100 * 120);
    for ts in &wr.timeseries {
        let mut prefix = String::new();
        let name = ts
            .labels
            .iter()
            .find(|l| l.name == "__name__")
            .map(|l| l.value.as_str())
            .unwrap_or("unnamed");
        esc(&mut prefix, name, false);
        for l in ts.labels.iter().filter(|l| l.name != "__name__") {
            prefix.push(',');
            esc(&mut prefix, &l.name, true);
            prefix.push('=');
            esc(&mut prefix, &l.value, true);
        }
        prefix.push_str(" value=");
        for s in &ts.samples {
            out.push_str(&prefix);
            // Rust's shortest round-trip form; no `i`: a float field.
            out.push_str(&format!("{} {}\n", s.value, s.timestamp));
        }
    }
    out.into_bytes()
}

fn ingest(a: &Args) {
    let data = a.path("data");
    let meta = Meta::load(&data);
    let bodies = load_requests(&data);
    let system = a.req("system").to_owned();
    let clients: usize = a.get("clients", 1);
    let label = a.get("label", format!("{system}_c{clients}"));
    let per_request = (meta.series * meta.samples) as u64;
    let total = meta.total_samples;
    assert_eq!(bodies.len(), meta.requests);

    let mut extra = json!({});
    let (sent, cpu_s, stored) = match system.as_str() {
        "sydra" => {
            let dir = scratch("protocols-sydra-");
            let data_dir = dir.path().join("data");
            drop(Engine::create(&data_dir, Default::default()).unwrap());
            let server = start(
                &data_dir,
                ServeOptions {
                    listen: "127.0.0.1:0".into(),
                    ..Default::default()
                },
            )
            .unwrap();
            syncfs(&scratch_root());
            let me = std::process::id();
            let cpu0 = cpu_seconds(me);
            let sent = send_all(
                server.addr(),
                "/api/v1/write",
                &PROTO_HEADERS,
                &bodies,
                clients,
            );
            let cpu = cpu0.zip(cpu_seconds(me)).map(|(a, b)| b - a);
            let engine = server.engine().unwrap();
            let view = engine.view(None).unwrap();
            let mut stored = 0u64;
            for b in view.query(&Selector::all(), i64::MIN, i64::MAX).unwrap() {
                stored += b.unwrap().points.len() as u64;
            }
            let (head_series, head_points, head_bytes) = engine.head_stats();
            drop(view);
            // The work the writes left for later: moving every point into
            // segments (the compaction thread does it a block at a time).
            let wal_bytes = dir_bytes(&data_dir.join("wal"));
            let t = Instant::now();
            let report = engine
                .compact(CompactOptions {
                    all: true,
                    ..Default::default()
                })
                .unwrap();
            let compact_s = t.elapsed().as_secs_f64();
            extra = json!({
                "head_series": head_series,
                "head_points": head_points,
                "head_bytes": head_bytes,
                "wal_bytes": wal_bytes,
                "compact_all_s": compact_s,
                "compacted_points": report.points,
                "dir_bytes_after_compaction": dir_bytes(&data_dir),
                "samples_per_s_with_compaction": total as f64 / (sent.wall_s + compact_s),
            });
            drop(engine);
            server.stop();
            (sent, cpu, stored)
        }
        "prometheus" => {
            let addr = a.addr("addr");
            let pid: Option<u32> = a.opt("pid").map(|p| p.parse().unwrap());
            syncfs(&scratch_root());
            let cpu0 = pid.and_then(cpu_seconds);
            let sent = send_all(addr, "/api/v1/write", &PROTO_HEADERS, &bodies, clients);
            let cpu = cpu0.zip(pid.and_then(cpu_seconds)).map(|(a, b)| b - a);
            // count_over_time drops the metric name, so one query per
            // name (series of one name differ in their other labels).
            let span_s = (meta.last_ms - meta.first_ms) / 1000 + 60;
            let t = meta.last_ms + 1;
            let first = WriteRequest::decode(unsnappy(&bodies[0]).as_slice()).unwrap();
            let mut names: Vec<&str> = first
                .timeseries
                .iter()
                .flat_map(|ts| ts.labels.iter())
                .filter(|l| l.name == "__name__")
                .map(|l| l.value.as_str())
                .collect();
            names.sort_unstable();
            names.dedup();
            let mut conn = Conn::new(addr);
            let mut stored = 0u64;
            for name in names {
                let q = format!("sum(count_over_time({{__name__=\"{name}\"}}[{span_s}s]))");
                let path = format!(
                    "/api/v1/query?query={}&time={}.{:03}",
                    enc(&q),
                    t / 1000,
                    t % 1000
                );
                let r = conn.request("GET", &path, &[], b"").unwrap();
                assert_eq!(r.status, 200, "{q}: {}", String::from_utf8_lossy(&r.body));
                let v: Json = serde_json::from_slice(&r.body).unwrap();
                stored += v["data"]["result"][0]["value"][1]
                    .as_str()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0) as u64;
            }
            (sent, cpu, stored)
        }
        "influx" => {
            let addr = a.addr("addr");
            let pid: Option<u32> = a.opt("pid").map(|p| p.parse().unwrap());
            let db = a.get("db", "bench".to_string());
            let t = Instant::now();
            let lines: Vec<Vec<u8>> = bodies
                .iter()
                .map(|b| line_protocol(&WriteRequest::decode(unsnappy(b).as_slice()).unwrap()))
                .collect();
            let lp_bytes: usize = lines.iter().map(Vec::len).sum();
            extra = json!({"line_protocol_bytes": lp_bytes, "line_protocol_build_s": t.elapsed().as_secs_f64()});
            let r = Conn::new(addr)
                .request(
                    "POST",
                    &format!("/query?q={}", enc(&format!("CREATE DATABASE {db}"))),
                    &[],
                    b"",
                )
                .unwrap();
            assert_eq!(r.status, 200, "CREATE DATABASE");
            syncfs(&scratch_root());
            let cpu0 = pid.and_then(cpu_seconds);
            let sent = send_all(
                addr,
                &format!("/write?db={db}&precision=ms"),
                &[("Content-Type", "text/plain; charset=utf-8")],
                &lines,
                clients,
            );
            let cpu = cpu0.zip(pid.and_then(cpu_seconds)).map(|(a, b)| b - a);
            let v = get_json(
                addr,
                &format!("/query?db={db}&q={}", enc("SELECT count(value) FROM /.*/")),
            );
            let mut stored = 0u64;
            if let Some(series) = v["results"][0]["series"].as_array() {
                for s in series {
                    stored += s["values"][0][1].as_u64().unwrap_or(0);
                }
            }
            (sent, cpu, stored)
        }
        other => panic!("--system {other}: sydra, influx or prometheus"),
    };
    let ok = sent.failures.is_empty() && stored == total;
    for f in sent.failures.iter().take(5) {
        eprintln!("protocols_bench ingest {label}: {f}");
    }
    if stored != total {
        eprintln!("protocols_bench ingest {label}: {stored} of {total} samples stored");
    }
    let sps = total as f64 / sent.wall_s;
    let mut v = json!({
        "label": label,
        "system": system,
        "clients": clients,
        "requests": bodies.len(),
        "samples_per_request": per_request,
        "samples": total,
        "wall_s": sent.wall_s,
        "samples_per_s": sps,
        "request_median_s": median(&sent.latencies),
        "request_p90_s": percentile(&sent.latencies, 0.9),
        "request_max_s": percentile(&sent.latencies, 1.0),
        "statuses": sent.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "failures": sent.failures.len(),
        "first_failure": sent.failures.first(),
        "stored_samples": stored,
        "ok": ok,
        "server_cpu_s": cpu_s,
        "server_cpu_per_wall": cpu_s.map(|c| c / sent.wall_s),
        "server_cpu_us_per_sample": cpu_s.map(|c| c * 1e6 / total as f64),
        "load_avg": fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    });
    if let (Json::Object(m), Json::Object(x)) = (&mut v, extra) {
        m.extend(x);
    }
    emit("ingest", v);
}

// ------------------------------------------------------------------ read

/// The samples of the read series in the window, from the recorded
/// requests.
fn expected_samples(
    bodies: &[Vec<u8>],
    labels: &[(String, String)],
    from: i64,
    to: i64,
) -> Vec<(i64, u64)> {
    let mut out = Vec::new();
    for b in bodies {
        let wr = WriteRequest::decode(unsnappy(b).as_slice()).unwrap();
        for ts in &wr.timeseries {
            let same = ts.labels.len() == labels.len()
                && ts
                    .labels
                    .iter()
                    .zip(labels)
                    .all(|(l, (k, v))| &l.name == k && &l.value == v);
            if same {
                out.extend(
                    ts.samples
                        .iter()
                        .filter(|s| (from..=to).contains(&s.timestamp))
                        .map(|s| (s.timestamp, s.value.to_bits())),
                );
            }
        }
    }
    out
}

/// A remote read of one series; `accept` is the response type (0 for
/// samples, 1 for streamed XOR chunks).
fn read_request_body(labels: &[(String, String)], from: i64, to: i64, accept: i32) -> Vec<u8> {
    snappy(
        &ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: from,
                end_timestamp_ms: to,
                matchers: labels
                    .iter()
                    .map(|(k, v)| LabelMatcher {
                        r#type: 0,
                        name: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
            }],
            accepted_response_types: vec![accept],
        }
        .encode_to_vec(),
    )
}

/// A streamed answer's samples, in the query's range only (chunks are
/// sent whole). Checks every frame's CRC.
fn decode_chunks(body: &[u8], from: i64, to: i64) -> Vec<(i64, u64)> {
    use sydra_engine::serve::chunks::{ChunkedReadResponse, decode_xor, frames};
    let mut out = Vec::new();
    for f in frames(body).unwrap() {
        let m = ChunkedReadResponse::decode(f).unwrap();
        for cs in &m.chunked_series {
            for c in &cs.chunks {
                let (ts, vs) = decode_xor(&c.data).unwrap();
                out.extend(
                    ts.iter()
                        .zip(&vs)
                        .filter(|(t, _)| (from..=to).contains(*t))
                        .map(|(&t, v)| (t, v.to_bits())),
                );
            }
        }
    }
    out
}

fn decode_read(body: &[u8]) -> Vec<(i64, u64)> {
    let r = ReadResponse::decode(unsnappy(body).as_slice()).unwrap();
    r.results
        .iter()
        .flat_map(|q| q.timeseries.iter())
        .flat_map(|ts| ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())))
        .collect()
}

fn prom_float(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap(),
    }
}

fn decode_prom_matrix(body: &[u8]) -> Vec<(i64, u64)> {
    let v: Json = serde_json::from_slice(body).unwrap();
    assert_eq!(v["status"], "success", "{v}");
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        for p in s["values"].as_array().unwrap() {
            let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            out.push((t, prom_float(p[1].as_str().unwrap()).to_bits()));
        }
    }
    out
}

/// One timed kind of request.
struct Probe {
    name: &'static str,
    conn: Conn,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    decode: fn(&[u8]) -> Vec<(i64, u64)>,
    times: Vec<f64>,
    bytes: usize,
}

impl Probe {
    fn new(
        name: &'static str,
        addr: SocketAddr,
        method: &'static str,
        path: String,
        headers: Vec<(&'static str, &'static str)>,
        body: Vec<u8>,
        decode: fn(&[u8]) -> Vec<(i64, u64)>,
    ) -> Probe {
        Probe {
            name,
            conn: Conn::new(addr),
            method,
            path,
            headers,
            body,
            decode,
            times: vec![],
            bytes: 0,
        }
    }

    /// A remote read of `body`.
    fn read(
        name: &'static str,
        addr: SocketAddr,
        body: &[u8],
        decode: fn(&[u8]) -> Vec<(i64, u64)>,
    ) -> Probe {
        let headers = READ_HEADERS.to_vec();
        Probe::new(
            name,
            addr,
            "POST",
            "/api/v1/read".into(),
            headers,
            body.to_vec(),
            decode,
        )
    }

    /// A bodiless GET whose answer is not checked.
    fn get(name: &'static str, addr: SocketAddr, path: &str) -> Probe {
        Probe::new(name, addr, "GET", path.into(), vec![], vec![], |_| {
            Vec::new()
        })
    }

    fn once(&mut self) -> (f64, Vec<u8>) {
        let t = Instant::now();
        let r = self
            .conn
            .request(self.method, &self.path, &self.headers, &self.body)
            .unwrap();
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(
            r.status,
            200,
            "{}: {}",
            self.name,
            String::from_utf8_lossy(&r.body[..r.body.len().min(500)])
        );
        (dt, r.body)
    }

    fn check(&mut self, want: &[(i64, u64)]) -> usize {
        let (_, body) = self.once();
        self.bytes = body.len();
        let got = (self.decode)(&body);
        assert_eq!(
            got.len(),
            want.len(),
            "{}: {} samples, the recorded data has {}",
            self.name,
            got.len(),
            want.len()
        );
        assert!(
            got == want,
            "{}: the samples differ from the recorded ones",
            self.name
        );
        got.len()
    }
}

/// Time `probes` in turns: `warmup` untimed rounds, then `reps` rounds.
fn rounds(probes: &mut [&mut Probe], warmup: usize, reps: usize) {
    for _ in 0..warmup {
        for p in probes.iter_mut() {
            p.once();
        }
    }
    for _ in 0..reps {
        for p in probes.iter_mut() {
            let (dt, _) = p.once();
            p.times.push(dt);
        }
    }
}

/// Time `probes` one after another: `reps` requests of each in a row,
/// so each server answers with its own working set in the caches; the
/// medians, by probe name, in seconds.
fn blocked_medians(probes: &mut [&mut Probe], reps: usize) -> Json {
    let mut out = serde_json::Map::new();
    for p in probes.iter_mut() {
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            times.push(p.once().0);
        }
        out.insert(p.name.to_string(), json!(median(&times)));
    }
    Json::Object(out)
}

fn summary(p: &Probe) -> Json {
    json!({
        "median_s": median(&p.times),
        "p10_s": percentile(&p.times, 0.1),
        "p90_s": percentile(&p.times, 0.9),
        "min_s": percentile(&p.times, 0.0),
        "reps": p.times.len(),
        "response_bytes": p.bytes,
    })
}

/// The remote-read handler's steps over the engine, in this process (as
/// `serve::tsdb::prom_read` does them: a live view, the query, the
/// protobuf answer, snappy), each the median of `reps` runs, in seconds.
fn read_phases(
    engine: &Engine,
    labels: &[(String, String)],
    from: i64,
    to: i64,
    reps: usize,
) -> Json {
    use sydra_engine::series::selector::{Label as SelLabel, Matcher, Op};
    let mut sel = Selector::all();
    for (k, v) in labels {
        let l = if k == "__name__" {
            SelLabel::Measurement
        } else {
            SelLabel::Tag(k.clone())
        };
        sel.matchers.push(Matcher::new(l, Op::Eq, v).unwrap());
    }
    sel.matchers
        .push(Matcher::new(SelLabel::Field, Op::Eq, "value").unwrap());
    let (mut tv, mut tq, mut te, mut ts, mut tall) = (vec![], vec![], vec![], vec![], vec![]);
    let mut tc = vec![];
    for _ in 0..reps + 3 {
        let t0 = Instant::now();
        let view = engine.view(None).unwrap();
        let t1 = Instant::now();
        // As the handler does: columns in, samples out, encoded by hand.
        let mut series: Vec<ReadSeries> = Vec::new();
        let mut it = view
            .query(&sel, from * 1_000_000, to * 1_000_000 + 999_999)
            .unwrap();
        while let Some(b) = it.next_columns() {
            let b = b.unwrap();
            if series.is_empty() {
                series.push(ReadSeries {
                    labels: labels
                        .iter()
                        .map(|(k, v)| Label {
                            name: k.clone(),
                            value: v.clone(),
                        })
                        .collect(),
                    ..ReadSeries::default()
                });
            }
            let last = series.last_mut().unwrap();
            let Column::F64(vals) = &b.values else {
                panic!("the read series is not of floats")
            };
            last.timestamps
                .extend(b.timestamps.iter().map(|t| t.div_euclid(1_000_000)));
            last.values.extend_from_slice(vals);
        }
        let t2 = Instant::now();
        let results = [series];
        let encoded = sydra_engine::serve::prompb::encode_read_response(&results);
        let t3 = Instant::now();
        let compressed = snappy(&encoded);
        let t4 = Instant::now();
        std::hint::black_box(compressed);
        let streamed = sydra_engine::serve::chunks::encode_streamed(&results).unwrap();
        tc.push(t4.elapsed().as_secs_f64());
        std::hint::black_box(streamed);
        tv.push((t1 - t0).as_secs_f64());
        tq.push((t2 - t1).as_secs_f64());
        te.push((t3 - t2).as_secs_f64());
        ts.push((t4 - t3).as_secs_f64());
        tall.push((t4 - t0).as_secs_f64());
    }
    json!({
        "view_s": median(&tv[3..]),
        "query_s": median(&tq[3..]),
        "encode_s": median(&te[3..]),
        "snappy_s": median(&ts[3..]),
        "total_s": median(&tall[3..]),
        "chunks_encode_s": median(&tc[3..]),
    })
}

fn read(a: &Args) {
    let data = a.path("data");
    let meta = Meta::load(&data);
    let bodies = load_requests(&data);
    let prom = a.addr("prometheus");
    let reps: usize = a.get("reps", 30);
    let warmup: usize = a.get("warmup", 5);
    let to = meta.last_ms;
    let from = to - 3_600_000;
    let labels = meta.read_labels.clone();
    let want = expected_samples(&bodies, &labels, from, to);
    assert!(
        !want.is_empty(),
        "the read series has no samples in the hour"
    );

    // PromQL: metric{label="value", …}[1h] at the last sample's time.
    let name = labels
        .iter()
        .find(|(k, _)| k == "__name__")
        .map(|(_, v)| v.clone())
        .unwrap();
    let sel: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    let promql = format!("{name}{{{}}}[1h]", sel.join(","));
    let read_body = read_request_body(&labels, from, to, 0);
    let chunks_body = read_request_body(&labels, from, to, 1);
    let mut prom_query = Probe::new(
        "prometheus /api/v1/query",
        prom,
        "GET",
        format!(
            "/api/v1/query?query={}&time={}.{:03}",
            enc(&promql),
            to / 1000,
            to % 1000
        ),
        vec![],
        vec![],
        decode_prom_matrix,
    );
    let mut prom_read = Probe::read("prometheus /api/v1/read", prom, &read_body, decode_read);
    let mut prom_chunks = Probe::read(
        "prometheus /api/v1/read (chunks)",
        prom,
        &chunks_body,
        |_| Vec::new(),
    );
    prom_query.check(&want);
    prom_read.check(&want);
    let (_, b) = prom_chunks.once();
    assert!(
        decode_chunks(&b, from, to) == want,
        "prometheus's streamed answer differs from the recorded samples"
    );

    // Sydra: a fresh directory loaded with every request; no compaction
    // until asked (the compaction thread waits a day).
    let dir = scratch("protocols-read-");
    let data_dir = dir.path().join("data");
    drop(Engine::create(&data_dir, Default::default()).unwrap());
    let server = start(
        &data_dir,
        ServeOptions {
            listen: "127.0.0.1:0".into(),
            maintain_every: Duration::from_secs(86_400),
            ..Default::default()
        },
    )
    .unwrap();
    let load = send_all(server.addr(), "/api/v1/write", &PROTO_HEADERS, &bodies, 2);
    assert!(
        load.failures.is_empty(),
        "loading Sydra: {:?}",
        load.failures.first()
    );
    let engine = server.engine().unwrap();

    let mut states = Vec::new();
    for state in ["head", "after_maintain", "after_compact_all"] {
        let mut report = json!(null);
        match state {
            "after_maintain" => {
                let t = Instant::now();
                let r = engine.maintain().unwrap();
                report = json!({
                    "compact_s": t.elapsed().as_secs_f64(),
                    "points_moved": r.as_ref().map(|r| r.points),
                    "segments_added": r.as_ref().map(|r| r.segments_added),
                });
            }
            "after_compact_all" => {
                let t = Instant::now();
                let r = engine
                    .compact(CompactOptions {
                        all: true,
                        ..Default::default()
                    })
                    .unwrap();
                report = json!({
                    "compact_s": t.elapsed().as_secs_f64(),
                    "points_moved": r.points,
                    "segments_added": r.segments_added,
                });
            }
            _ => {}
        }
        let (_, head_points, _) = engine.head_stats();
        let mut sydra = Probe::read("sydra /api/v1/read", server.addr(), &read_body, decode_read);
        let n = sydra.check(&want);
        let mut sydra_chunks = Probe::read(
            "sydra /api/v1/read (chunks)",
            server.addr(),
            &chunks_body,
            |_| Vec::new(),
        );
        let (_, b) = sydra_chunks.once();
        sydra_chunks.bytes = b.len();
        prom_chunks.bytes = prom_chunks.once().1.len();
        assert!(
            decode_chunks(&b, from, to) == want,
            "sydra's streamed answer differs from the recorded samples"
        );
        // The fixed cost of one request on each server: a tiny GET on the
        // same kind of connection.
        let mut sydra_health = Probe::get("sydra /api/v1/health", server.addr(), "/api/v1/health");
        let mut prom_health = Probe::get("prometheus /-/healthy", prom, "/-/healthy");
        prom_query.times.clear();
        prom_read.times.clear();
        prom_chunks.times.clear();
        // Sydra's read, Prometheus's query and remote read, then the two
        // health checks: in turns, then in blocks.
        let mut probes = [
            &mut sydra,
            &mut prom_query,
            &mut prom_read,
            &mut sydra_chunks,
            &mut prom_chunks,
            &mut sydra_health,
            &mut prom_health,
        ];
        rounds(&mut probes, warmup, reps);
        let s = median(&probes[0].times);
        let q = median(&probes[1].times);
        let r = median(&probes[2].times);
        let sc = median(&probes[3].times);
        let rc = median(&probes[4].times);
        eprintln!(
            "read ({state}): sydra {:.3} ms (chunks {:.3}), prometheus query {:.3} ms, prometheus remote read {:.3} ms (chunks {:.3}): {:.2}x, chunks {:.2}x",
            s * 1e3,
            sc * 1e3,
            q * 1e3,
            r * 1e3,
            rc * 1e3,
            s / q,
            sc / q
        );
        let phases = read_phases(&engine, &labels, from, to, reps);
        let blocked = blocked_medians(&mut probes, reps);
        states.push(json!({
            "state": state,
            "blocked_median_s": blocked,
            "sydra_in_process": phases,
            "compaction": report,
            "head_points": head_points,
            "samples": n,
            "sydra_read": summary(&sydra),
            "prometheus_query": summary(&prom_query),
            "prometheus_remote_read": summary(&prom_read),
            "sydra_read_chunks": summary(&sydra_chunks),
            "prometheus_remote_read_chunks": summary(&prom_chunks),
            "sydra_chunks_over_prometheus_query": sc / q,
            "sydra_chunks_over_prometheus_remote_read_chunks": sc / rc,
            "sydra_health": summary(&sydra_health),
            "prometheus_health": summary(&prom_health),
            "sydra_over_prometheus_query": s / q,
            "sydra_over_prometheus_remote_read": s / r,
        }));
    }
    drop(engine);
    server.stop();
    emit(
        "read",
        json!({
            "series": labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "promql": promql,
            "from_ms": from,
            "to_ms": to,
            "samples": want.len(),
            "reps": reps,
            "warmup": warmup,
            "states": states,
            "load_avg": fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        }),
    );
}

// ---------------------------------------------------------------- phases

/// Seconds spent in each step of the remote-write handler.
#[derive(Default, Clone, Copy)]
struct Phases {
    unsnappy: f64,
    decode: f64,
    keys: f64,
    append: f64,
    commit: f64,
}

fn phases(a: &Args) {
    let data = a.path("data");
    let meta = Meta::load(&data);
    let bodies = load_requests(&data);
    let threads: usize = a.get("threads", 1);
    let sync = a.get("sync", "always".to_string());
    let dir = scratch("protocols-phases-");
    let options = sydra_engine::Options {
        wal: WalOptions {
            sync: match sync.as_str() {
                "always" => SyncMode::Always,
                "never" => SyncMode::Never,
                s => panic!("--sync {s}: always or never"),
            },
            ..WalOptions::default()
        },
        ..Default::default()
    };
    let engine = Engine::create(dir.path().join("data"), options).unwrap();
    syncfs(&scratch_root());
    let next = AtomicUsize::new(0);
    let total = Mutex::new(Phases::default());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut p = Phases::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() {
                        break;
                    }
                    // As `serve::tsdb::prom_write` does it.
                    let t = Instant::now();
                    let raw = unsnappy(&bodies[i]);
                    p.unsnappy += t.elapsed().as_secs_f64();
                    let t = Instant::now();
                    let wr = WriteRequest::decode(raw.as_slice()).unwrap();
                    p.decode += t.elapsed().as_secs_f64();
                    let t = Instant::now();
                    let refs: Vec<_> = wr
                        .timeseries
                        .iter()
                        .map(|ts| {
                            let mut name = "";
                            let mut tags = Vec::with_capacity(ts.labels.len());
                            for l in &ts.labels {
                                if l.name == "__name__" {
                                    name = &l.value;
                                } else if !l.value.is_empty() {
                                    tags.push((l.name.clone(), l.value.clone()));
                                }
                            }
                            let key = SeriesKey::new(name, tags, "value").unwrap();
                            engine.series(&key).unwrap()
                        })
                        .collect();
                    p.keys += t.elapsed().as_secs_f64();
                    let t = Instant::now();
                    let mut app = engine.appender();
                    for (ts, r) in wr.timeseries.iter().zip(&refs) {
                        for s in &ts.samples {
                            app.append(*r, s.timestamp * 1_000_000, Value::F64(s.value))
                                .unwrap();
                        }
                    }
                    p.append += t.elapsed().as_secs_f64();
                    let t = Instant::now();
                    app.commit().unwrap();
                    p.commit += t.elapsed().as_secs_f64();
                }
                let mut tot = total.lock().unwrap();
                tot.unsnappy += p.unsnappy;
                tot.decode += p.decode;
                tot.keys += p.keys;
                tot.append += p.append;
                tot.commit += p.commit;
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let p = *total.lock().unwrap();
    let n = meta.total_samples as f64;
    let per = |x: f64| x / bodies.len() as f64;
    emit(
        "phases",
        json!({
            "label": format!("t{threads}_{sync}"),
            "threads": threads,
            "sync": sync,
            "requests": bodies.len(),
            "samples": meta.total_samples,
            "wall_s": wall,
            "samples_per_s": n / wall,
            "per_request_ms": {
                "unsnappy": per(p.unsnappy) * 1e3,
                "decode": per(p.decode) * 1e3,
                "keys": per(p.keys) * 1e3,
                "append": per(p.append) * 1e3,
                "commit": per(p.commit) * 1e3,
            },
            "share": {
                "unsnappy": p.unsnappy / (p.unsnappy + p.decode + p.keys + p.append + p.commit),
                "decode": p.decode / (p.unsnappy + p.decode + p.keys + p.append + p.commit),
                "keys": p.keys / (p.unsnappy + p.decode + p.keys + p.append + p.commit),
                "append": p.append / (p.unsnappy + p.decode + p.keys + p.append + p.commit),
                "commit": p.commit / (p.unsnappy + p.decode + p.keys + p.append + p.commit),
            },
            "wal_bytes": dir_bytes(&dir.path().join("data").join("wal")),
        }),
    );
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let mode = argv.get(1).map(String::as_str).unwrap_or("");
    let args = Args::parse(argv.get(2..).unwrap_or(&[]));
    match mode {
        "record" => record(&args),
        "ingest" => ingest(&args),
        "read" => read(&args),
        "phases" => phases(&args),
        _ => {
            eprintln!(
                "usage: protocols_bench record|ingest|read|phases --… (see the head of the source)"
            );
            std::process::exit(2);
        }
    }
}
