//! The replication issue's goals, each measured beside a baseline timed in
//! the same run, one JSON line per mode (also written to
//! `<target dir>/sydra-bench-results/remote_<mode>.json`).
//! `benches/remote.sh` runs them all; `docs/BENCHMARKS-REMOTE.md` holds the
//! results.
//!
//! ```text
//! remote_bench build       --dir D [--series 1000] [--hours 24 | --mb 1024] [--interval 10]
//! remote_bench incremental --store D [--reps 3]
//! remote_bench clone       --store D --git G [--reps 3]
//! remote_bench concurrent  --store D [--clients 100] [--op fetch|clone] [--retry 0|1]
//! ```
//!
//! - `build`: a synthetic monitoring store made with the engine's own write
//!   path: `--series` series (100 hosts × 10 metrics: byte and request
//!   counters, float gauges at full precision and rounded to 0.1, integer
//!   gauges, a CPU-seconds float counter, a constant, an up flag, a step
//!   function), one point per series every `--interval` seconds (a host's
//!   10 series share a timestamp, 0 to 24 ms of scrape jitter, whole ms), one appender commit per scrape (1,000 points,
//!   as a scraper would write), and one compaction per hour of data (the
//!   points of the hour before the newest move into segments, as
//!   `Engine::maintain` does). `--hours` hours, or with `--mb` hours until
//!   the packs plus the WAL reach that many MB. Leaves `built.json` with
//!   the counts; an existing store with it is reused.
//! - `incremental`: `sydra serve --read-only` on the store (a child
//!   process), a replica cloned from it (library `remote::clone`, untimed),
//!   then per repetition: one more hour appended to the store and one
//!   compaction, and the replica's `remote::fetch` (in process), timed. The
//!   same fetch into an identical copy of the replica goes through a
//!   counting TCP proxy: the HTTP bytes both ways (request and response
//!   lines, headers and bodies, both requests of a fetch). The new bytes on
//!   the receiver are the files the fetch created: its new pack (`.pack`),
//!   that pack's index, and the stored WAL ranges. The baselines: `cp` of
//!   exactly those files (a process, warm page cache, no sync) and one HTTP
//!   round trip to the server (`GET /api/v1/health` on a new connection,
//!   median of 30). Also timed apart: the server's share (`remote::send`
//!   in this process on the same store, with the same haves).
//! - `clone`: `sydra clone http://…` (the CLI, a process) of the store from
//!   a `sydra serve --read-only` child, beside `git clone --bare
//!   file://G` of a bare repository holding the same bytes (every blob,
//!   the same tree paths, the commits with their parents, and the WAL
//!   ranges as blobs under `refs/heads/wal-ranges`; `git fast-import`,
//!   then `git repack -a -d -b`: one pack with a bitmap), taking turns,
//!   `syncfs` before each. The first sydra clone is checked: `sydra fsck`
//!   exits 0 and its refs equal the source's. Also: the transfer alone (a
//!   raw `POST /api/v1/fetch` with no haves, the body counted and
//!   dropped), with the time to its first byte.
//! - `concurrent`: `--clients` threads, each fetching (an up-to-date
//!   replica, one per client, `objects/` and `walchunks/` hard-linked from
//!   one clone, fetching one new compaction) or cloning, all released at once
//!   against one `sydra serve --read-only` child, whose RSS is sampled
//!   every 5 ms (and its `VmHWM` read at the end), with the bytes in its
//!   `objects/tmp/`. `--retry 1` retries a client whose error says `HTTP
//!   503`, with a capped exponential backoff (the library does not retry).
//!
//! The `sydra` binary is `$SYDRA_BIN`, else `<target dir>/release/sydra`.
//! Scratch on disk goes under `$SYDRA_BENCH_TMP` (else `<target
//! dir>/sydra-bench-tmp`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use sydra_benches::args::Args;

use sydra_benches::synth::{
    Built, Rng, Writer, advance, append_hours, du, engine_options, store_bytes,
};
use sydra_benches::{scratch, syncfs, target_dir, write_result};
use sydra_engine::objects::{Kind, ObjectId, Store};
use sydra_engine::remote;
use sydra_engine::wal::{Chunk, SegmentView};
use sydra_engine::{Engine, Repository};

// ---------------------------------------------------------------- helpers

/// One JSON object, built field by field.
#[derive(Default)]
struct Json(String);

impl Json {
    fn field(&mut self, k: &str, v: &str) -> &mut Self {
        if !self.0.is_empty() {
            self.0.push_str(", ");
        }
        let _ = write!(self.0, "\"{k}\": {v}");
        self
    }
    fn num(&mut self, k: &str, v: impl std::fmt::Display) -> &mut Self {
        self.field(k, &v.to_string())
    }
    fn f(&mut self, k: &str, v: f64) -> &mut Self {
        let s = if v.is_finite() {
            format!("{v:.6}")
        } else {
            "null".into()
        };
        self.field(k, &s)
    }
    fn s(&mut self, k: &str, v: &str) -> &mut Self {
        self.field(k, &json_str(v))
    }
    fn finish(&self) -> String {
        format!("{{{}}}", self.0)
    }
}

fn json_str(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn f64_list(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:.6}")).collect();
    format!("[{}]", items.join(", "))
}

fn emit(mode: &str, j: &Json) {
    let line = j.finish();
    println!("{line}");
    write_result(&format!("remote_{mode}"), &format!("{line}\n"));
}

fn sydra_bin() -> PathBuf {
    std::env::var_os("SYDRA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("release").join("sydra"))
}

/// Every regular file under `p` with its size.
fn files(p: &Path, out: &mut BTreeMap<PathBuf, u64>) {
    let Ok(rd) = fs::read_dir(p) else {
        return;
    };
    for e in rd.flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            files(&e.path(), out);
        } else if ft.is_file() {
            out.insert(e.path(), e.metadata().map(|m| m.len()).unwrap_or(0));
        }
    }
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn cp_a(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// A copy of a replica that shares its immutable files: `objects/` and
/// `walchunks/` hard-linked (packs, indexes and stored ranges are never
/// written in place), everything else (refs, reflogs, remotes) copied.
fn copy_replica(from: &Path, to: &Path) {
    fs::create_dir(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let name = e.file_name();
        let link = name == "objects" || name == "walchunks";
        run(Command::new("cp")
            .arg(if link { "-al" } else { "-a" })
            .arg(e.path())
            .arg(to.join(&name)));
    }
}

fn kib(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let rest = l.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().strip_suffix("kB")?.trim().parse().ok()
            })
        })
        .unwrap_or(0)
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------- the store

fn mode_build(a: &Args) {
    let dir = a.path("dir");
    if let Some(b) = Built::read(&dir) {
        let mut j = Json::default();
        j.s("mode", "build")
            .s("dir", &dir.display().to_string())
            .num("reused", "true")
            .num("series", b.series)
            .num("hours", b.hours)
            .num("points", b.points)
            .num("store_bytes", store_bytes(&dir))
            .num("objects_bytes", du(&dir.join("objects")))
            .num("wal_bytes", du(&dir.join("wal")));
        emit("build", &j);
        return;
    }
    let series: u64 = a.get("series", 1000);
    let interval: u64 = a.get("interval", 10);
    let hours: u64 = a.get("hours", 0);
    let mb: u64 = a.get("mb", 0);
    assert!(
        (hours > 0) != (mb > 0),
        "give --hours or --mb (one of them)"
    );
    let t = Instant::now();
    let e = Engine::create(&dir, engine_options()).unwrap();
    let mut w = Writer::new(&e, series, interval);
    let (mut points, mut compactions, mut h) = (0, 0, 0);
    loop {
        let (p, c) = append_hours(&e, &mut w, h, h + 1);
        points += p;
        compactions += c;
        h += 1;
        if (hours > 0 && h >= hours) || (mb > 0 && store_bytes(&dir) >= mb * 1_000_000) {
            break;
        }
    }
    drop(e);
    let secs = t.elapsed().as_secs_f64();
    Built {
        series,
        hours: h,
        interval,
        points,
    }
    .write(&dir);
    let mut j = Json::default();
    j.s("mode", "build")
        .s("dir", &dir.display().to_string())
        .num("reused", "false")
        .num("series", series)
        .num("hours", h)
        .num("interval_s", interval)
        .num("points", points)
        .num("compactions", compactions)
        .f("build_s", secs)
        .num("store_bytes", store_bytes(&dir))
        .num("objects_bytes", du(&dir.join("objects")))
        .num("wal_bytes", du(&dir.join("wal")))
        .f(
            "store_bytes_per_point",
            store_bytes(&dir) as f64 / points as f64,
        );
    emit("build", &j);
}

// ---------------------------------------------------------------- server, HTTP

/// A `sydra serve --read-only` child process, killed on drop.
struct ServerProc {
    child: Child,
    port: u16,
}

impl ServerProc {
    fn start(dir: &Path) -> ServerProc {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new(sydra_bin())
            .arg("--dir")
            .arg(dir)
            .args(["serve", "--read-only", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let s = ServerProc { child, port };
        let t = Instant::now();
        loop {
            if let Ok(r) = http(&s.addr(), "GET", "/api/v1/health", b"", |_| {})
                && r.status == 200
            {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "sydra serve did not answer"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct HttpResult {
    status: u16,
    /// Body bytes (after the head).
    body: u64,
    /// Time to the first byte of the answer.
    ttfb: f64,
    /// Time to the last byte.
    total: f64,
}

/// One request on a new connection (`Connection: close`), the answer read
/// to its end; `sink` gets the body's bytes (possibly with part of the
/// head in the first call: only lengths matter here).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    mut sink: impl FnMut(&[u8]),
) -> std::io::Result<HttpResult> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    let mut ttfb = None;
    let mut head_len = None;
    let mut total = 0u64;
    let mut content_length: Option<u64> = None;
    loop {
        if let (Some(h), Some(c)) = (head_len, content_length)
            && total >= h + c
        {
            break;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ttfb.get_or_insert_with(|| t.elapsed().as_secs_f64());
        total += n as u64;
        if head_len.is_none() {
            head.extend_from_slice(&buf[..n]);
            if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                head_len = Some(p as u64 + 4);
                content_length = String::from_utf8_lossy(&head[..p]).lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())
                        .flatten()
                });
            }
        }
        sink(&buf[..n]);
    }
    let head_s = String::from_utf8_lossy(&head);
    let status = head_s
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok(HttpResult {
        status,
        body: total - head_len.unwrap_or(total),
        ttfb: ttfb.unwrap_or(f64::NAN),
        total: t.elapsed().as_secs_f64(),
    })
}

/// Median time of `n` `GET /api/v1/health`, each on a new connection.
fn round_trip(addr: &str, n: usize) -> f64 {
    let v: Vec<f64> = (0..n)
        .map(|_| {
            let r = http(addr, "GET", "/api/v1/health", b"", |_| {}).unwrap();
            assert_eq!(r.status, 200);
            r.total
        })
        .collect();
    median(&v)
}

/// A TCP proxy on loopback counting the bytes each way.
struct Proxy {
    port: u16,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let up = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (u, d, c) = (up.clone(), down.clone(), connections.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                c.fetch_add(1, Ordering::Relaxed);
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let pipe = |mut from: TcpStream, mut to: TcpStream, n: Arc<AtomicU64>| {
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 1 << 16];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(k) => {
                                    n.fetch_add(k as u64, Ordering::Relaxed);
                                    if to.write_all(&buf[..k]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(Shutdown::Write);
                    });
                };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    u.clone(),
                );
                pipe(server, client, d.clone());
            }
        });
        Proxy {
            port,
            up,
            down,
            connections,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn reset(&self) {
        self.up.store(0, Ordering::SeqCst);
        self.down.store(0, Ordering::SeqCst);
        self.connections.store(0, Ordering::SeqCst);
    }
}

/// The tips of every ref of `repo` (what the HTTP client sends as haves).
fn ref_tips(repo: &Repository) -> Vec<ObjectId> {
    repo.refs()
        .list("")
        .unwrap()
        .into_iter()
        .filter_map(|(_, t)| t.object())
        .collect()
}

/// The refs a server offers: name → id (no `refs/remotes/`).
fn offered(repo: &Repository) -> BTreeMap<String, ObjectId> {
    repo.refs()
        .list("refs/")
        .unwrap()
        .into_iter()
        .filter(|(n, _)| !n.as_str().starts_with("refs/remotes/"))
        .filter_map(|(n, t)| t.object().map(|id| (n.as_str().to_owned(), id)))
        .collect()
}

/// Commits reachable from `from` (as the server computes its haves).
fn closure(store: &Store, from: &[ObjectId]) -> HashSet<ObjectId> {
    let mut have = HashSet::new();
    let mut todo = from.to_vec();
    while let Some(id) = todo.pop() {
        if have.contains(&id) {
            continue;
        }
        if let Ok(o) = store.get(&id)
            && o.kind == Kind::Commit
        {
            have.insert(id);
            todo.extend(o.commit().unwrap().parents.iter().copied());
        }
    }
    have
}

// ---------------------------------------------------------------- incremental

fn mode_incremental(a: &Args) {
    let store = a.path("store");
    let reps: usize = a.get("reps", 3);
    let built = Built::read(&store).expect("the store has no built.json: run build first");
    let work = scratch("remote-inc-");
    let server = ServerProc::start(&store);
    let proxy = Proxy::start(server.addr());
    let rx = work.path().join("rx");
    let t = Instant::now();
    let (_, first) = remote::clone(&server.url(), &rx).unwrap();
    let clone_s = t.elapsed().as_secs_f64();
    // The proxied fetches go to a copy whose `origin` is the proxy.
    let rx_p = work.path().join("rx-proxied");
    cp_a(&rx, &rx_p);
    fs::write(
        rx_p.join("remotes").join("origin"),
        format!("url = {}\n", proxy.url()),
    )
    .unwrap();
    let rtt = round_trip(&server.addr(), 30);
    let mut rows = Vec::new();
    let hours_before = built.hours;
    let mut built = built;
    let mut writer = None;
    for rep in 0..reps {
        let (points, c) = advance(&store, &mut built, &mut writer);
        let src = Repository::open(&store).unwrap();
        syncfs(&store);

        // The server's share, in this process: plan + transfer file.
        let repo_rx = Repository::open(&rx).unwrap();
        let haves = ref_tips(&repo_rx);
        let wants: Vec<ObjectId> = offered(&src).into_values().collect();
        let t = Instant::now();
        let have = closure(src.objects(), &haves);
        let file = remote::send(
            &src,
            &wants,
            &have,
            &|id| Ok(have.contains(id)),
            src.objects(),
            None,
        )
        .unwrap();
        let send_s = t.elapsed().as_secs_f64();
        let transfer_file_bytes = fs::metadata(&file.path).unwrap().len();
        let sent = file.counts.clone();
        drop(file);

        // The timed fetch (direct).
        let mut before = BTreeMap::new();
        files(&rx, &mut before);
        syncfs(&rx);
        let t = Instant::now();
        let sync = remote::fetch(&repo_rx, "origin", &[]).unwrap();
        let fetch_s = t.elapsed().as_secs_f64();
        let mut after = BTreeMap::new();
        files(&rx, &mut after);
        let new: Vec<(PathBuf, u64)> = after
            .iter()
            .filter(|(p, _)| !before.contains_key(*p))
            .filter(|(p, _)| {
                let s = p.to_string_lossy();
                (s.contains("/objects/") && !s.contains("/objects/tmp/"))
                    || s.contains("/walchunks/")
            })
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        let sum = |pred: &dyn Fn(&str) -> bool| -> u64 {
            new.iter()
                .filter(|(p, _)| pred(&p.to_string_lossy()))
                .map(|(_, n)| n)
                .sum()
        };
        let pack_bytes = sum(&|s| s.ends_with(".pack"));
        let ranges_bytes = sum(&|s| s.contains("/walchunks/"));
        let index_bytes = sum(&|s| s.contains("/objects/") && !s.ends_with(".pack"));
        let new_bytes = pack_bytes + ranges_bytes + index_bytes;

        // Baseline: cp of exactly those files (warm cache).
        let dst = work.path().join(format!("cp-{rep}"));
        fs::create_dir(&dst).unwrap();
        let mut cp = Command::new("cp");
        // Range files are named by the rest of their hex id: distinct.
        for (p, _) in &new {
            cp.arg(p);
        }
        cp.arg(&dst);
        let t = Instant::now();
        run(&mut cp);
        let cp_s = t.elapsed().as_secs_f64();
        // The floor of any durable, verifying receiver of these bytes:
        // the copy made durable (each file and the directory synced), and
        // every byte hashed once (BLAKE3, one thread, warm cache).
        let t = Instant::now();
        for e in fs::read_dir(&dst).unwrap() {
            fs::File::open(e.unwrap().path())
                .unwrap()
                .sync_all()
                .unwrap();
        }
        fs::File::open(&dst).unwrap().sync_all().unwrap();
        let sync_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (p, _) in &new {
            std::hint::black_box(blake3::hash(&fs::read(p).unwrap()));
        }
        let hash_s = t.elapsed().as_secs_f64();
        let floor_s = cp_s + sync_s + hash_s + rtt;
        fs::remove_dir_all(&dst).unwrap();

        // The same fetch through the counting proxy, into the copy.
        proxy.reset();
        let repo_p = Repository::open(&rx_p).unwrap();
        let sync_p = remote::fetch(&repo_p, "origin", &[]).unwrap();
        assert_eq!(sync_p.transfer.objects, sync.transfer.objects);
        let up = proxy.up.load(Ordering::SeqCst);
        let down = proxy.down.load(Ordering::SeqCst);
        let conns = proxy.connections.load(Ordering::SeqCst);
        let resent = (sent.range_bytes - sync.transfer.range_bytes)
            + (sent.ranges - sync.transfer.ranges) * (32 + 8 + 16);
        let mut j = Json::default();
        j.num("rep", rep)
            .num("points_added", points)
            .num("compaction_points", c.points)
            .num("segments_added", c.segments_added)
            .num("segments_merged", c.segments_merged)
            .num("objects", sync.transfer.objects)
            .num("commits", sync.transfer.commits)
            .num("payload_bytes", sync.transfer.bytes)
            .num("ranges", sync.transfer.ranges)
            .num("range_bytes", sync.transfer.range_bytes)
            .num("transfer_file_bytes", transfer_file_bytes)
            .num("sent_objects", sent.objects)
            .num("sent_payload_bytes", sent.bytes)
            .num("sent_ranges", sent.ranges)
            .num("sent_range_bytes", sent.range_bytes)
            .num("http_down_bytes", down)
            .num("http_up_bytes", up)
            .num("http_connections", conns)
            .num("new_files", new.len())
            .num("new_pack_bytes", pack_bytes)
            .num("new_index_bytes", index_bytes)
            .num("new_range_file_bytes", ranges_bytes)
            .num("new_bytes", new_bytes)
            .f("http_bytes_over_new", (up + down) as f64 / new_bytes as f64)
            .f(
                "http_bytes_over_new_without_index",
                (up + down) as f64 / (pack_bytes + ranges_bytes) as f64,
            )
            // The ranges the receiver already held and skipped (each framed
            // with a 32-byte id, an 8-byte length and a 16-byte header).
            .num("resent_range_bytes", resent)
            .f(
                "http_bytes_over_new_if_not_resent",
                (up + down - resent) as f64 / new_bytes as f64,
            )
            .f("fetch_s", fetch_s)
            .f("send_s", send_s)
            .f("cp_s", cp_s)
            .f("sync_s", sync_s)
            .f("hash_s", hash_s)
            .f("rtt_s", rtt)
            .f("fetch_over_cp_plus_rtt", fetch_s / (cp_s + rtt))
            .f("floor_over_cp_plus_rtt", floor_s / (cp_s + rtt))
            .f("fetch_over_floor", fetch_s / floor_s);
        rows.push((
            j,
            fetch_s,
            cp_s,
            (up + down) as f64 / new_bytes as f64,
            floor_s,
        ));
    }
    drop(server);
    let mut j = Json::default();
    let fetch: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let cps: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let ratios: Vec<f64> = rows.iter().map(|r| r.3).collect();
    let time_ratios: Vec<f64> = rows.iter().map(|r| r.1 / (r.2 + rtt)).collect();
    let floors: Vec<f64> = rows.iter().map(|r| r.4).collect();
    let floor_ratios: Vec<f64> = rows.iter().map(|r| r.4 / (r.2 + rtt)).collect();
    let over_floor: Vec<f64> = rows.iter().map(|r| r.1 / r.4).collect();
    j.s("mode", "incremental")
        .num("series", built.series)
        .num("hours_before", hours_before)
        .num("reps", reps)
        .num("clone_objects", first.transfer.objects)
        .f("clone_s", clone_s)
        .f("rtt_s", rtt)
        .f("fetch_median_s", median(&fetch))
        .f("cp_median_s", median(&cps))
        .f("bytes_ratio_median", median(&ratios))
        .f(
            "bytes_ratio_max",
            ratios.iter().copied().fold(0.0, f64::max),
        )
        .f("time_ratio_median", median(&time_ratios))
        .f("floor_median_s", median(&floors))
        .f("floor_ratio_median", median(&floor_ratios))
        .f("fetch_over_floor_median", median(&over_floor))
        .field("fetch_s", &f64_list(&fetch))
        .field("time_ratios", &f64_list(&time_ratios))
        .field(
            "rows",
            &format!(
                "[{}]",
                rows.iter()
                    .map(|r| r.0.finish())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .s("load_at_end", &loadavg());
    emit("incremental", &j);
}

// ---------------------------------------------------------------- git import

/// The files `new` has that `old` (the first parent's tree) lacks or holds
/// differently: (path, blob id); and the paths gone.
fn diff_tree(
    store: &Store,
    old: Option<ObjectId>,
    new: ObjectId,
    prefix: &str,
    changed: &mut Vec<(String, ObjectId)>,
    gone: &mut Vec<String>,
) {
    if Some(new) == old {
        return;
    }
    let new_obj = store.get(&new).unwrap();
    let new_t = new_obj.tree().unwrap();
    let old_obj = old.map(|o| store.get(&o).unwrap());
    let old_t = old_obj.as_ref().map(|o| o.tree().unwrap());
    let path = |name: &str| {
        assert!(
            !name.contains(['\n', '"']) && !name.starts_with(' '),
            "a tree entry name git fast-import would need quoted: {name:?}"
        );
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        }
    };
    for e in &new_t.entries {
        let before = old_t
            .as_ref()
            .and_then(|t| t.find(e.name))
            .map(|b| (b.kind, b.id));
        if before == Some((e.kind, e.id)) {
            continue;
        }
        let p = path(e.name);
        match e.kind {
            Kind::Tree => {
                let old_sub = match before {
                    Some((Kind::Tree, id)) => Some(id),
                    Some(_) => {
                        gone.push(p.clone());
                        None
                    }
                    None => None,
                };
                diff_tree(store, old_sub, e.id, &p, changed, gone);
            }
            _ => {
                if matches!(before, Some((Kind::Tree, _))) {
                    gone.push(p.clone());
                }
                changed.push((p, e.id));
            }
        }
    }
    if let Some(t) = &old_t {
        for e in &t.entries {
            if new_t.find(e.name).is_none() {
                gone.push(path(e.name));
            }
        }
    }
}

/// Commits reachable from `tips`, parents before children.
fn topo(store: &Store, tips: &[ObjectId]) -> Vec<ObjectId> {
    let mut out = Vec::new();
    let mut done = HashSet::new();
    let mut stack: Vec<(ObjectId, bool)> = tips.iter().map(|t| (*t, false)).collect();
    while let Some((c, expanded)) = stack.pop() {
        if expanded {
            out.push(c);
            continue;
        }
        if !done.insert(c) {
            continue;
        }
        let Ok(obj) = store.get(&c) else { continue };
        let commit = obj.commit().unwrap();
        stack.push((c, true));
        for p in commit.parents.iter().rev() {
            if !done.contains(p) && store.contains(p).unwrap() {
                stack.push((*p, false));
            }
        }
    }
    out
}

/// Build a bare git repository at `git_dir` holding the store's bytes:
/// every commit (same parents, first-parent diffs of the same paths, the
/// same blob bytes), every ref, and the WAL ranges a clone carries as
/// blobs on `refs/heads/wal-ranges`. One pack with a bitmap.
fn build_git(store_dir: &Path, git_dir: &Path) -> (f64, u64) {
    let t = Instant::now();
    run(Command::new("git")
        .args(["init", "--bare", "-q"])
        .arg(git_dir));
    let repo = Repository::open(store_dir).unwrap();
    let store = repo.objects();
    let refs = offered(&repo);
    let tips: Vec<ObjectId> = refs.values().copied().collect();
    let order = topo(store, &tips);
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = BufWriter::with_capacity(1 << 20, child.stdin.take().unwrap());
    let mut mark = 0u64;
    let mut blob_marks: HashMap<ObjectId, u64> = HashMap::new();
    let mut commit_marks: HashMap<ObjectId, u64> = HashMap::new();
    let mut blob = |w: &mut BufWriter<_>, id: ObjectId, marks: &mut HashMap<ObjectId, u64>| {
        if let Some(m) = marks.get(&id) {
            return *m;
        }
        mark += 1;
        let o = store.get(&id).unwrap();
        write!(w, "blob\nmark :{mark}\ndata {}\n", o.data.len()).unwrap();
        w.write_all(&o.data).unwrap();
        w.write_all(b"\n").unwrap();
        marks.insert(id, mark);
        mark
    };
    let mut commit_mark = 1u64 << 40;
    for c in &order {
        let obj = store.get(c).unwrap();
        let commit = obj.commit().unwrap();
        let first = commit
            .parents
            .first()
            .filter(|p| commit_marks.contains_key(p))
            .copied();
        let base = first.map(|p| store.get(&p).unwrap().commit().unwrap().tree);
        let (mut changed, mut gone) = (Vec::new(), Vec::new());
        diff_tree(store, base, commit.tree, "", &mut changed, &mut gone);
        let ops: Vec<(String, u64)> = changed
            .into_iter()
            .map(|(p, id)| {
                let m = blob(&mut w, id, &mut blob_marks);
                (p, m)
            })
            .collect();
        commit_mark += 1;
        let secs = commit.timestamp.div_euclid(1_000_000_000);
        write!(
            w,
            "commit refs/heads/import\nmark :{commit_mark}\ncommitter bench <bench@localhost> {secs} +0000\ndata {}\n{}\n",
            commit.message.len(),
            commit.message
        )
        .unwrap();
        if let Some(p) = first {
            writeln!(w, "from :{}", commit_marks[&p]).unwrap();
        }
        for p in commit.parents.iter().skip(1) {
            if let Some(m) = commit_marks.get(p) {
                writeln!(w, "merge :{m}").unwrap();
            }
        }
        for p in gone {
            writeln!(w, "D {p}").unwrap();
        }
        for (p, m) in ops {
            writeln!(w, "M 100644 :{m} {p}").unwrap();
        }
        w.write_all(b"\n").unwrap();
        commit_marks.insert(*c, commit_mark);
    }
    // The WAL ranges a clone carries (segment header + chunk bytes, as a
    // stored range file holds them).
    let wal_dir = repo.layout().wal();
    let mut seen = HashSet::new();
    let mut range_ops = Vec::new();
    let mut range_bytes = 0u64;
    for c in &order {
        let obj = store.get(c).unwrap();
        let commit = obj.commit().unwrap();
        let applied = commit.meta_u64("wal.applied_seq").unwrap_or(0);
        for (id, chunk) in sydra_engine::index::chunks(store, commit.tree).unwrap() {
            if chunk.last_seq <= applied || !seen.insert(id) {
                continue;
            }
            let bytes = range_of(&wal_dir, &chunk);
            mark += 1;
            write!(w, "blob\nmark :{mark}\ndata {}\n", bytes.len()).unwrap();
            w.write_all(&bytes).unwrap();
            w.write_all(b"\n").unwrap();
            range_bytes += bytes.len() as u64;
            range_ops.push((id, mark));
        }
    }
    if !range_ops.is_empty() {
        commit_mark += 1;
        write!(
            w,
            "commit refs/heads/wal-ranges\nmark :{commit_mark}\ncommitter bench <bench@localhost> 1700000000 +0000\ndata 10\nwal ranges\n"
        )
        .unwrap();
        for (id, m) in &range_ops {
            writeln!(w, "M 100644 :{m} ranges/{}", id.to_hex()).unwrap();
        }
        w.write_all(b"\n").unwrap();
    }
    for (name, id) in &refs {
        writeln!(w, "reset {name}\nfrom :{}\n", commit_marks[id]).unwrap();
    }
    w.write_all(
        b"reset refs/heads/import\nfrom 0000000000000000000000000000000000000000\n\ndone\n",
    )
    .unwrap();
    w.flush().unwrap();
    drop(w);
    assert!(child.wait().unwrap().success(), "git fast-import failed");
    run(Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["repack", "-a", "-d", "-b", "-q"]));
    run(Command::new("git").arg("--git-dir").arg(git_dir).args([
        "commit-graph",
        "write",
        "--reachable",
    ]));
    (t.elapsed().as_secs_f64(), range_bytes)
}

/// A chunk's stored-range bytes: the segment's header and the chunk's range.
fn range_of(wal_dir: &Path, chunk: &Chunk) -> Vec<u8> {
    let v = SegmentView::open(wal_dir, chunk.segment).unwrap();
    let b = v.bytes();
    let mut out = b[..16].to_vec();
    out.extend_from_slice(&b[chunk.start as usize..chunk.end as usize]);
    out
}

// ---------------------------------------------------------------- clone

fn git_objects(git_dir: &Path) -> (u64, u64) {
    let out = run(Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["count-objects", "-v"]));
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |k: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (get("in-pack:"), get("size-pack:") * 1024)
}

/// Write the body of the raw HTTP response in `raw` to `out`, undoing a
/// chunked transfer encoding (tiny_http chunks answers over 32 KiB).
/// Returns the body's length.
fn dechunk(raw: &Path, out: &Path) -> u64 {
    use std::io::BufRead;
    let mut r = std::io::BufReader::with_capacity(1 << 20, fs::File::open(raw).unwrap());
    let mut w = BufWriter::with_capacity(1 << 20, fs::File::create(out).unwrap());
    let mut chunked = false;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            chunked = true;
        }
    }
    let n = if chunked {
        let mut n = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap(), 16).unwrap();
            if size == 0 {
                break;
            }
            std::io::copy(&mut (&mut r).take(size), &mut w).unwrap();
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).unwrap();
            n += size;
        }
        n
    } else {
        std::io::copy(&mut r, &mut w).unwrap()
    };
    w.flush().unwrap();
    n
}

fn count_packs(store: &Path) -> usize {
    let mut all = BTreeMap::new();
    files(&store.join("objects"), &mut all);
    all.keys()
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .count()
}

fn mode_clone(a: &Args) {
    let store = a.path("store");
    let git_dir = a.path("git");
    let reps: usize = a.get("reps", 3);
    let built = Built::read(&store).expect("the store has no built.json: run build first");
    let (git_build_s, git_range_bytes) = if git_dir.join("HEAD").is_file() {
        (f64::NAN, 0)
    } else {
        build_git(&store, &git_dir)
    };
    let (git_objects_n, git_pack_bytes) = git_objects(&git_dir);
    let work = scratch("remote-clone-");
    let server = ServerProc::start(&store);
    let src = Repository::open(&store).unwrap();
    let src_refs = offered(&src);
    let rtt = round_trip(&server.addr(), 30);

    // The transfer alone: the body counted and dropped.
    let wants: Vec<String> = src_refs
        .values()
        .map(|i| format!("\"{}\"", i.to_hex()))
        .collect();
    let body = format!("{{\"wants\": [{}], \"haves\": []}}", wants.join(", "));
    syncfs(&store);
    let raw = http(
        &server.addr(),
        "POST",
        "/api/v1/fetch",
        body.as_bytes(),
        |_| {},
    )
    .unwrap();
    assert_eq!(raw.status, 200, "POST /api/v1/fetch");
    let wire_body_bytes = raw.body;

    // The receiver's share alone: the same transfer downloaded into a new
    // store's temp directory (untimed), then `remote::receive`, timed.
    let (receive_s, receive_objects, transfer_bytes) = {
        let d = work.path().join("receive-only");
        let (repo, _) = Repository::init(&d).unwrap();
        let path = repo.objects().tmp_dir().join("obj-bench-rx.tmp");
        let raw_path = work.path().join("response.raw");
        let mut f = BufWriter::with_capacity(1 << 20, fs::File::create(&raw_path).unwrap());
        http(
            &server.addr(),
            "POST",
            "/api/v1/fetch",
            body.as_bytes(),
            |b| {
                f.write_all(b).unwrap();
            },
        )
        .unwrap();
        f.flush().unwrap();
        drop(f);
        let transfer_file_bytes = dechunk(&raw_path, &path);
        fs::remove_file(&raw_path).unwrap();
        syncfs(&d);
        let file = remote::TransferFile {
            path,
            counts: remote::Transfer::default(),
        };
        let t = Instant::now();
        let (got, _pins) = remote::receive(&repo, &file, "bench").unwrap();
        let secs = t.elapsed().as_secs_f64();
        drop(file);
        drop(repo);
        fs::remove_dir_all(&d).unwrap();
        (secs, got.objects, transfer_file_bytes)
    };

    let mut sydra_s = Vec::new();
    let mut git_s = Vec::new();
    let mut raw_write_s = Vec::new();
    let mut sydra_json = String::new();
    let mut clone_bytes = 0;
    let mut fsck_ok = None;
    let mut server_hwm = 0;
    let stop = Arc::new(AtomicBool::new(false));
    let anon_sampler = {
        let stop = stop.clone();
        let pid = server.pid();
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(kib(pid, "RssAnon"));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    for rep in 0..reps {
        let c = work.path().join(format!("sydra-{rep}"));
        syncfs(work.path());
        let t = Instant::now();
        let out = run(Command::new(sydra_bin())
            .args(["clone", "--json"])
            .arg(server.url())
            .arg(&c));
        sydra_s.push(t.elapsed().as_secs_f64());
        server_hwm = server_hwm.max(kib(server.pid(), "VmHWM"));
        if rep == 0 {
            sydra_json = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            clone_bytes = store_bytes(&c);
            let cloned = Repository::open(&c).unwrap();
            let got: BTreeMap<String, ObjectId> = offered(&cloned)
                .into_iter()
                .filter(|(n, _)| !n.starts_with("refs/remotes/"))
                .collect();
            assert_eq!(got, src_refs, "the clone's refs differ from the source's");
            let fsck = Command::new(sydra_bin())
                .arg("--dir")
                .arg(&c)
                .arg("fsck")
                .output()
                .unwrap();
            fsck_ok = Some(fsck.status.success());
            assert!(
                fsck.status.success(),
                "fsck of the clone failed: {}",
                String::from_utf8_lossy(&fsck.stdout)
            );
        }
        fs::remove_dir_all(&c).unwrap();

        let g = work.path().join(format!("git-{rep}.git"));
        syncfs(work.path());
        let mut url = std::ffi::OsString::from("file://");
        url.push(git_dir.canonicalize().unwrap());
        let t = Instant::now();
        run(Command::new("git")
            .args(["clone", "--bare", "-q"])
            .arg(&url)
            .arg(&g));
        git_s.push(t.elapsed().as_secs_f64());
        fs::remove_dir_all(&g).unwrap();

        // The machine's own ceiling for these bytes: write as many into a
        // new file, 1 MiB per write(2), and fsync it (what `dd
        // conv=fdatasync` does), in the same conditions as each clone.
        let w = work.path().join(format!("raw-{rep}"));
        syncfs(work.path());
        raw_write_s.push(raw_write(&w, transfer_bytes));
        fs::remove_file(&w).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let server_peak_anon = anon_sampler.join().unwrap();
    drop(server);
    let (sm, gm) = (median(&sydra_s), median(&git_s));
    let mut j = Json::default();
    j.s("mode", "clone")
        .num("series", built.series)
        .num("hours", built.hours)
        .num("points", built.points)
        .num("store_bytes", store_bytes(&store))
        .num("transfer_bytes", transfer_bytes)
        .num("wire_body_bytes", wire_body_bytes)
        .num("clone_store_bytes", clone_bytes)
        .field(
            "sydra_clone",
            if sydra_json.is_empty() {
                "null"
            } else {
                &sydra_json
            },
        )
        .num("git_objects", git_objects_n)
        .num("git_pack_bytes", git_pack_bytes)
        .num("git_range_bytes", git_range_bytes)
        .f("git_build_s", git_build_s)
        .f("rtt_s", rtt)
        .s("label", &a.get("label", String::new()))
        .f("receive_only_s", receive_s)
        .num("receive_only_objects", receive_objects)
        .num("source_packs", count_packs(&store))
        .f("download_only_s", raw.total)
        .f("download_only_ttfb_s", raw.ttfb)
        .f(
            "download_only_mb_per_s",
            transfer_bytes as f64 / raw.total / 1e6,
        )
        .field("sydra_s", &f64_list(&sydra_s))
        .field("git_s", &f64_list(&git_s))
        .f("sydra_median_s", sm)
        .f("git_median_s", gm)
        .f("sydra_mb_per_s", transfer_bytes as f64 / sm / 1e6)
        .f(
            "sydra_store_mb_per_s",
            store_bytes(&store) as f64 / sm / 1e6,
        )
        .f(
            "git_mb_per_s_of_sydra_bytes",
            transfer_bytes as f64 / gm / 1e6,
        )
        .f("sydra_over_git", sm / gm)
        .field("raw_write_s", &f64_list(&raw_write_s))
        .f(
            "raw_write_mb_per_s",
            transfer_bytes as f64 / median(&raw_write_s) / 1e6,
        )
        .f("sydra_over_raw_write", sm / median(&raw_write_s))
        .num("fsck_ok", fsck_ok.unwrap_or(false))
        .num("server_peak_rss_kib", server_hwm)
        .num("server_peak_anon_kib_during_clones", server_peak_anon)
        .s("load_at_end", &loadavg());
    emit("clone", &j);
}

/// Seconds to write `bytes` (incompressible, 1 MiB per `write`) into the
/// new file `path` and fsync it.
fn raw_write(path: &Path, bytes: u64) -> f64 {
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
    }
    let t = Instant::now();
    let mut f = fs::File::create(path).unwrap();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    f.sync_all().unwrap();
    t.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------- concurrent

struct ClientResult {
    ok: bool,
    tries: u32,
    secs: f64,
    error: String,
    objects: u64,
}

fn mode_concurrent(a: &Args) {
    let store = a.path("store");
    let clients: usize = a.get("clients", 100);
    let retry: u32 = a.get("retry", 0);
    let op: String = a.get("op", "fetch".to_string());
    let mut built = Built::read(&store).expect("the store has no built.json: run build first");
    let work = scratch("remote-conc-");
    let server = ServerProc::start(&store);
    let url = server.url();
    let mut dirs = Vec::new();
    if op == "fetch" {
        // An up-to-date replica, copied; then the store moves one compaction.
        let base = work.path().join("base");
        remote::clone(&url, &base).unwrap();
        for i in 0..clients {
            let d = work.path().join(format!("c{i:03}"));
            copy_replica(&base, &d);
            dirs.push(d);
        }
        advance(&store, &mut built, &mut None);
    } else {
        for i in 0..clients {
            dirs.push(work.path().join(format!("c{i:03}")));
        }
    }
    syncfs(work.path());
    let pid = server.pid();
    let idle_rss = kib(pid, "VmRSS");
    let idle_anon = kib(pid, "RssAnon");
    let tmp_dir = store.join("objects").join("tmp");
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let tmp_dir = tmp_dir.clone();
        std::thread::spawn(move || {
            let (mut peak_rss, mut peak_tmp, mut peak_threads) = (0u64, 0u64, 0u64);
            let mut peak_anon = 0u64;
            while !stop.load(Ordering::Relaxed) {
                peak_rss = peak_rss.max(kib(pid, "VmRSS"));
                peak_anon = peak_anon.max(kib(pid, "RssAnon"));
                peak_threads = peak_threads.max(kib_plain(pid, "Threads"));
                peak_tmp = peak_tmp.max(du(&tmp_dir));
                std::thread::sleep(Duration::from_millis(5));
            }
            (peak_rss, peak_anon, peak_tmp, peak_threads)
        })
    };
    let barrier = Arc::new(Barrier::new(clients));
    let results = Arc::new(Mutex::new(Vec::new()));
    let t = Instant::now();
    let handles: Vec<_> = dirs
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let barrier = barrier.clone();
            let results = results.clone();
            let url = url.clone();
            let op = op.clone();
            std::thread::Builder::new()
                .stack_size(1 << 20)
                .spawn(move || {
                    barrier.wait();
                    let t = Instant::now();
                    let mut tries = 0;
                    let mut rng = Rng(0x1234_5678 + i as u64);
                    let r = loop {
                        tries += 1;
                        let r = if op == "fetch" {
                            Repository::open(&d)
                                .and_then(|repo| remote::fetch(&repo, "origin", &[]))
                                .map(|s| s.transfer.objects)
                        } else {
                            let _ = fs::remove_dir_all(&d);
                            remote::clone(&url, &d).map(|(_, s)| s.transfer.objects)
                        };
                        match r {
                            Err(e)
                                if retry > 0
                                    && e.to_string().contains("HTTP 503")
                                    && tries < 200 =>
                            {
                                let cap = 10u64 << tries.min(7);
                                std::thread::sleep(Duration::from_millis(
                                    cap / 2 + rng.next_u64() % (cap / 2 + 1),
                                ));
                            }
                            r => break r,
                        }
                    };
                    let res = ClientResult {
                        ok: r.is_ok(),
                        tries,
                        secs: t.elapsed().as_secs_f64(),
                        error: r.as_ref().err().map(|e| e.to_string()).unwrap_or_default(),
                        objects: r.unwrap_or(0),
                    };
                    results.lock().unwrap().push(res);
                    if op == "clone" {
                        let _ = fs::remove_dir_all(&d);
                    }
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let wall = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (peak_rss, peak_anon, peak_tmp, peak_threads) = sampler.join().unwrap();
    let hwm = kib(pid, "VmHWM");
    // Refs check on successes: each replica now has the server's main.
    drop(server);
    let results = results.lock().unwrap();
    let ok = results.iter().filter(|r| r.ok).count();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for r in results.iter().filter(|r| !r.ok) {
        // The error without its varying URL and port.
        let e = r.error.replace(&url, "URL");
        *errors.entry(e).or_default() += 1;
    }
    let secs: Vec<f64> = results.iter().filter(|r| r.ok).map(|r| r.secs).collect();
    let tries: Vec<f64> = results.iter().map(|r| f64::from(r.tries)).collect();
    let objects: BTreeMap<u64, usize> =
        results
            .iter()
            .filter(|r| r.ok)
            .fold(BTreeMap::new(), |mut m, r| {
                *m.entry(r.objects).or_default() += 1;
                m
            });
    let mut j = Json::default();
    j.s("mode", "concurrent")
        .s("op", &op)
        .num("retry_on_503", retry)
        .num("clients", clients)
        .num("succeeded", ok)
        .num("failed", clients - ok)
        .field(
            "errors",
            &format!(
                "{{{}}}",
                errors
                    .iter()
                    .map(|(e, n)| format!("{}: {n}", json_str(e)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .field(
            "objects_per_success",
            &format!(
                "{{{}}}",
                objects
                    .iter()
                    .map(|(o, n)| format!("\"{o}\": {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .f("wall_s", wall)
        .f("success_median_s", median(&secs))
        .f("success_max_s", secs.iter().copied().fold(0.0, f64::max))
        .f("tries_mean", tries.iter().sum::<f64>() / tries.len() as f64)
        .f("tries_max", tries.iter().copied().fold(0.0, f64::max))
        .num("server_idle_rss_kib", idle_rss)
        .num("server_peak_rss_sampled_kib", peak_rss)
        .num("server_peak_anon_sampled_kib", peak_anon)
        .num("server_idle_anon_kib", idle_anon)
        .num("server_vmhwm_kib", hwm)
        .num("server_peak_threads", peak_threads)
        .num("server_peak_tmp_bytes", peak_tmp)
        .num("store_bytes", store_bytes(&store))
        .s("load_at_end", &loadavg());
    emit(&format!("concurrent_{op}_retry{retry}"), &j);
}

fn kib_plain(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args.first() else {
        eprintln!("usage: remote_bench build|incremental|clone|concurrent [--NAME VALUE]...");
        std::process::exit(2);
    };
    let a = Args::parse(&args[1..]);
    match mode.as_str() {
        "build" => mode_build(&a),
        "incremental" => mode_incremental(&a),
        "clone" => mode_clone(&a),
        "concurrent" => mode_concurrent(&a),
        m => {
            eprintln!("unknown mode {m}");
            std::process::exit(2);
        }
    }
}
