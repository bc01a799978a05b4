//! S3 remotes against a real local S3 server: moto (`moto_server` on
//! `PATH`; `.ci/run` installs it in a venv), one per test on a free
//! loopback port, driven through the `sydra` command with the `AWS_*`
//! variables a user would set. A small proxy in front of moto strips
//! conditional headers (a server that does not honour them), drops
//! connections or delays requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sydra_engine::Engine;
use sydra_engine::series::{CompactOptions, SeriesKey, Value};
use sydra_engine::wal::SyncMode;

use super::capability;
use super::common::opts;

/// A moto server; killed on drop.
struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto server with `bucket`, or `None` (skipped) where moto is missing
/// outside CI.
fn moto(test: &str, bucket: &str) -> Option<Moto> {
    if !capability::runs(
        test,
        capability::tools(
            &["moto_server"],
            "python3 -m venv V && V/bin/pip install 'moto[server]>=5.1,<6' and put V/bin on PATH (.ci/run does)",
        ),
    ) {
        return None;
    }
    // Port 0: the server binds a free port itself and prints it. (A port
    // picked here and handed over could be taken by a parallel test's
    // server first.)
    let mut child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent
                && let Some(port) = line
                    .split("http://127.0.0.1:")
                    .nth(1)
                    .and_then(|p| p.trim().parse::<u16>().ok())
            {
                let _ = tx.send(port);
                sent = true;
            }
        }
    });
    let m = Moto {
        child,
        addr: "127.0.0.1:0".parse().unwrap(),
    };
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("moto_server did not say which port it listens on");
    let mut m = m;
    m.addr = format!("127.0.0.1:{port}").parse().unwrap();
    let addr = m.addr;
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Buckets are made outside Sydra (as an operator would).
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "cannot create the bucket: {answer}"
    );
    Some(m)
}

/// `sydra ARGS` against the S3 endpoint `endpoint`.
fn sydra(endpoint: SocketAddr, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sydra"));
    c.args(args)
        .env("AWS_ENDPOINT_URL", format!("http://{endpoint}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1");
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: &Output, what: &str) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{what}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn json(o: &Output, what: &str) -> serde_json::Value {
    serde_json::from_str(&ok(o, what)).unwrap()
}

fn d(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Points `from..to` seconds for 4 series, then a compaction: history with
/// segments, and WAL points past it when `tail` adds more.
fn grow(dir: &Path, from: i64, to: i64, tail: i64) {
    let e = if dir.exists() {
        Engine::open(dir, opts(SyncMode::Never, 1 << 20)).unwrap()
    } else {
        Engine::create(dir, opts(SyncMode::Never, 1 << 20)).unwrap()
    };
    let keys: Vec<_> = (0..4)
        .map(|h| {
            e.series(&SeriesKey::new("cpu", [("host".into(), format!("h{h}"))], "usage").unwrap())
                .unwrap()
        })
        .collect();
    let put = |a: i64, b: i64| {
        for t in a..b {
            let mut app = e.appender();
            for (h, k) in keys.iter().enumerate() {
                app.append(*k, t * 1_000_000_000, Value::F64((t * 4 + h as i64) as f64))
                    .unwrap();
            }
            app.commit().unwrap();
        }
    };
    put(from, to);
    e.compact(CompactOptions::default()).unwrap();
    e.checkpoint(None, "after compaction").unwrap();
    put(to, to + tail);
    e.checkpoint(None, "tail").unwrap();
    e.wal().sync().unwrap();
}

fn export(dir: &Path, rev: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_sydra"))
        .args(["--dir", d(dir), "export", "--as-of", rev])
        .output()
        .unwrap();
    ok(&o, "export")
}

fn fsck_clean(dir: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_sydra"))
        .args(["--dir", d(dir), "fsck"])
        .output()
        .unwrap();
    ok(&o, "fsck");
}

#[test]
fn s3_push_clone_fetch_round_trip_at_a_few_requests_each() {
    let Some(m) = moto(
        "s3_push_clone_fetch_round_trip_at_a_few_requests_each",
        "sydra-b1",
    ) else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    grow(&src, 0, 7300, 50);
    let a = m.addr;
    ok(
        &sydra(
            a,
            &[
                "--dir",
                d(&src),
                "remote",
                "add",
                "backup",
                "s3://sydra-b1/team/sydra",
            ],
            &[],
        ),
        "remote add",
    );
    let first = json(
        &sydra(a, &["--dir", d(&src), "push", "backup", "--json"], &[]),
        "push",
    );
    assert_eq!(first["refs"][0]["status"], "created", "{first}");
    assert!(
        first["wal_ranges"].as_u64().unwrap() > 0,
        "the WAL past the compaction travels: {first}"
    );

    let cloned = json(
        &sydra(
            a,
            &["clone", "s3://sydra-b1/team/sydra", d(&dst), "--json"],
            &[],
        ),
        "clone",
    );
    assert_eq!(cloned["objects"], first["objects"], "{cloned}");
    fsck_clean(&dst);
    assert_eq!(export(&dst, "main"), export(&src, "main"));

    // One more compaction: its push is GET manifest, PUT pack, PUT its
    // index, PUT manifest (the probe passed before), and the fetch
    // downloads only that pack.
    grow(&src, 7350, 11000, 20);
    let second = json(
        &sydra(a, &["--dir", d(&src), "push", "backup", "--json"], &[]),
        "push",
    );
    assert_eq!(second["refs"][0]["status"], "fast-forward", "{second}");
    assert!(second["requests"].as_u64().unwrap() <= 4, "{second}");
    let f = json(
        &sydra(a, &["--dir", d(&dst), "fetch", "--json"], &[]),
        "fetch",
    );
    assert!(f["requests"].as_u64().unwrap() <= 2, "{f}");
    assert_eq!(f["objects"], second["objects"], "only the new pack: {f}");
    assert!(f["objects"].as_u64().unwrap() < first["objects"].as_u64().unwrap());
    fsck_clean(&dst);
    assert_eq!(
        export(&dst, "remotes/origin/heads/main"),
        export(&src, "main")
    );
    // Nothing new: the push changes nothing and uploads nothing.
    let again = json(
        &sydra(a, &["--dir", d(&src), "push", "backup", "--json"], &[]),
        "push",
    );
    assert_eq!(again["refs"][0]["status"], "up-to-date", "{again}");
    assert_eq!(again["objects"], 0);

    // A large transfer goes up in parts.
    let big = t.path().join("big");
    grow(&big, 0, 3600 * 6, 0);
    let mp = sydra(
        a,
        &["--dir", d(&big), "push", "s3://sydra-b1/multi", "--json"],
        &[("SYDRA_S3_MULTIPART_OVER", "100000")],
    );
    let mp = json(&mp, "multipart push");
    assert_eq!(mp["refs"][0]["status"], "created", "{mp}");
    let big2 = t.path().join("big2");
    ok(
        &sydra(a, &["clone", "s3://sydra-b1/multi", d(&big2)], &[]),
        "clone multipart",
    );
    assert_eq!(export(&big2, "main"), export(&big, "main"));

    // GC: an unlisted pack past the grace period goes; listed ones stay.
    let gc = json(
        &sydra(
            a,
            &[
                "--dir",
                d(&src),
                "gc",
                "--remote",
                "backup",
                "--no-repack",
                "--grace",
                "0",
                "--json",
            ],
            &[],
        ),
        "gc --remote",
    );
    assert_eq!(gc["packs_listed"], 2, "{gc}");
    assert_eq!(gc["deleted"], 0, "{gc}");
    let dst2 = t.path().join("dst2");
    ok(
        &sydra(a, &["clone", "s3://sydra-b1/team/sydra", d(&dst2)], &[]),
        "clone after gc",
    );
    assert_eq!(export(&dst2, "main"), export(&src, "main"));

    // A clone of the two packs streams the second while the first is
    // verified (its GET sent ahead): a damaged byte in either is refused,
    // naming the pack, without a hang; and the untouched pair clones
    // again.
    let packs: Vec<String> = pack_keys(a, "sydra-b1", "team/sydra")
        .into_iter()
        .filter(|k| k.ends_with(".sytx"))
        .collect();
    assert_eq!(packs.len(), 2, "{packs:?}");
    for (i, key) in packs.iter().enumerate() {
        let path = format!("/sydra-b1/{key}");
        let (status, good) = moto_http(a, "GET", &path, b"");
        assert_eq!(status, 200);
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x01;
        assert_eq!(moto_http(a, "PUT", &path, &bad).0, 200);
        let out = t.path().join(format!("damaged{i}"));
        let o = sydra(a, &["clone", "s3://sydra-b1/team/sydra", d(&out)], &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "pack {i}: a damaged pack was cloned");
        assert!(err.contains("bad transfer"), "pack {i}: {err}");
        assert!(err.contains(key.as_str()), "pack {i} is named: {err}");
        assert_eq!(moto_http(a, "PUT", &path, &good).0, 200);
    }
    let dst3 = t.path().join("dst3");
    ok(
        &sydra(a, &["clone", "s3://sydra-b1/team/sydra", d(&dst3)], &[]),
        "clone of the restored packs",
    );
    assert_eq!(export(&dst3, "main"), export(&src, "main"));
}

#[test]
fn concurrent_s3_pushes_lose_nothing_and_one_main_wins_each_round() {
    let Some(m) = moto(
        "concurrent_s3_pushes_lose_nothing_and_one_main_wins_each_round",
        "sydra-b2",
    ) else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let url = "s3://sydra-b2/shared";
    let stores: Vec<_> = (0..4).map(|i| t.path().join(format!("w{i}"))).collect();
    let mut snapshots = Vec::new();
    for round in 0..3i64 {
        for (i, s) in stores.iter().enumerate() {
            let base = round * 8000 + i as i64 * 10;
            grow(s, base, base + 3700, 5);
            let e = Engine::open(s, opts(SyncMode::Never, 1 << 20)).unwrap();
            let name = format!("w{i}-r{round}");
            e.snapshot(Some(&name)).unwrap();
            snapshots.push(format!("refs/snapshots/{name}"));
        }
        let pushes: Vec<_> = stores
            .iter()
            .map(|s| {
                let s = s.clone();
                let a = m.addr;
                std::thread::spawn(move || {
                    // A push with a rejected ref exits 1: its report is
                    // still the answer.
                    let o = sydra(a, &["--dir", d(&s), "push", url, "--json"], &[]);
                    serde_json::from_slice::<serde_json::Value>(&o.stdout)
                        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
                })
            })
            .collect();
        let results: Vec<serde_json::Value> =
            pushes.into_iter().map(|p| p.join().unwrap()).collect();
        let main_moves = results
            .iter()
            .flat_map(|r| r["refs"].as_array().unwrap().clone())
            .filter(|u| u["to"] == "refs/heads/main")
            .filter(|u| u["status"] != "rejected")
            .count();
        assert_eq!(
            main_moves, 1,
            "exactly one main wins round {round}: {results:?}"
        );
        for r in &results {
            for u in r["refs"].as_array().unwrap() {
                if u["to"] == "refs/heads/main" && u["status"] == "rejected" {
                    assert!(
                        u["reason"].as_str().unwrap().contains("fast-forward"),
                        "{u}"
                    );
                }
            }
        }
    }
    // Every snapshot of every store and round is on the remote.
    let c = t.path().join("check");
    ok(&sydra(m.addr, &["clone", url, d(&c)], &[]), "clone");
    let repo = sydra_engine::Repository::open(&c).unwrap();
    let refs: Vec<String> = repo
        .refs()
        .list("refs/snapshots/")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n.as_str().to_owned())
        .collect();
    for s in &snapshots {
        assert!(refs.contains(s), "{s} lost; the remote has {refs:?}");
    }
    fsck_clean(&c);
}

#[test]
fn a_push_killed_at_any_moment_leaves_the_remote_old_or_new() {
    let Some(m) = moto(
        "a_push_killed_at_any_moment_leaves_the_remote_old_or_new",
        "sydra-b3",
    ) else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    grow(&src, 0, 3600 * 3, 10);
    let url = "s3://sydra-b3/k";
    let rounds = std::env::var("SYDRA_S3_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6u64);
    for round in 0..rounds {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sydra"))
            .args(["--dir", d(&src), "push", url])
            .env("AWS_ENDPOINT_URL", format!("http://{}", m.addr))
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(40 + round * 60));
        let _ = child.kill();
        child.wait().unwrap();
        // Old or new: a clone either finds no refs yet or a complete main.
        let c = t.path().join(format!("c{round}"));
        let o = sydra(m.addr, &["clone", url, d(&c)], &[]);
        if o.status.success() {
            fsck_clean(&c);
            let repo = sydra_engine::Repository::open(&c).unwrap();
            if repo.resolve("main").is_ok() {
                assert_eq!(export(&c, "main"), export(&src, "main"), "round {round}");
                // A listed pack has its index: a replica reads it too.
                let cache = t.path().join(format!("r{round}"));
                let (out, _, _) = replica_query(m.addr, url, &cache, &["{}"]);
                assert_eq!(
                    out,
                    local_query(&src, &["{}", "--as-of", "main"]),
                    "round {round}"
                );
            }
        } else {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                !err.contains("cannot download") && !err.contains("bad transfer"),
                "round {round}: the manifest names a pack that is not whole: {err}"
            );
        }
    }
    // Running it again completes the push.
    ok(
        &sydra(m.addr, &["--dir", d(&src), "push", url], &[]),
        "push after kills",
    );
    // Packs of killed pushes are not listed: GC keeps them through the
    // grace period (a push in flight has uploaded but not listed its
    // pack), then deletes them; the remote stays whole.
    let gc = |grace: &str| {
        json(
            &sydra(
                m.addr,
                &[
                    "--dir",
                    d(&src),
                    "gc",
                    "--remote",
                    url,
                    "--no-repack",
                    "--grace",
                    grace,
                    "--json",
                ],
                &[],
            ),
            "gc --remote",
        )
    };
    let kept = gc("1h");
    assert_eq!(kept["deleted"], 0, "{kept}");
    let swept = gc("0");
    assert_eq!(swept["deleted"], kept["kept_within_grace"], "{swept}");
    let c = t.path().join("final");
    ok(&sydra(m.addr, &["clone", url, d(&c)], &[]), "final clone");
    assert_eq!(export(&c, "main"), export(&src, "main"));
}

/// What the proxy does to requests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mischief {
    /// Remove `If-None-Match` and `If-Match`: a server without
    /// conditional writes.
    StripConditions,
    /// Close every third connection without an answer.
    Drop,
    /// Wait 150 ms before each request.
    Delay,
}

/// An HTTP proxy to `upstream` on a free port: one request per
/// connection (it answers with `Connection: close`).
fn proxy(upstream: SocketAddr, how: Mischief) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let n = n.clone();
            std::thread::spawn(move || {
                let _ = relay(c, upstream, how, n.fetch_add(1, Ordering::Relaxed));
            });
        }
    });
    addr
}

fn relay(c: TcpStream, upstream: SocketAddr, how: Mischief, n: u64) -> std::io::Result<()> {
    let mut r = BufReader::new(c.try_clone()?);
    let mut head = Vec::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        let conditional = lower.starts_with("if-none-match:") || lower.starts_with("if-match:");
        if lower.starts_with("connection:") || (how == Mischief::StripConditions && conditional) {
            continue;
        }
        head.extend_from_slice(line.as_bytes());
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    match how {
        Mischief::Drop if n % 3 == 2 => return Ok(()),
        Mischief::Delay => std::thread::sleep(Duration::from_millis(150)),
        _ => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&head)?;
    up.write_all(&body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    // Tell the client, too, that this connection ends here.
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
    let text = String::from_utf8_lossy(&resp[..split]).into_owned();
    let mut out: Vec<u8> = text
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect();
    out.extend_from_slice(b"Connection: close\r\n");
    out.extend_from_slice(&resp[split + 2..]);
    let mut c = c;
    c.write_all(&out)?;
    Ok(())
}

#[test]
fn a_server_without_conditional_writes_is_refused_and_flaky_ones_work() {
    let Some(m) = moto(
        "a_server_without_conditional_writes_is_refused_and_flaky_ones_work",
        "sydra-b4",
    ) else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    grow(&src, 0, 3700, 5);

    let naive = proxy(m.addr, Mischief::StripConditions);
    let o = sydra(
        naive,
        &["--dir", d(&src), "push", "s3://sydra-b4/naive"],
        &[],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("does not honour conditional writes"), "{err}");
    // Nothing was pushed: a clone through moto itself finds no manifest.
    let c = t.path().join("c0");
    let o = sydra(m.addr, &["clone", "s3://sydra-b4/naive", d(&c)], &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("refs/heads/main"), "{out}");

    // Fetch and clone write nothing, so they never probe: a clone through
    // the same server works.
    ok(
        &sydra(
            m.addr,
            &["--dir", d(&src), "push", "s3://sydra-b4/direct"],
            &[],
        ),
        "push to moto itself",
    );
    let c = t.path().join("through-naive");
    ok(
        &sydra(naive, &["clone", "s3://sydra-b4/direct", d(&c)], &[]),
        "clone through a server without conditional writes",
    );
    assert_eq!(export(&c, "main"), export(&src, "main"));

    for (i, how) in [Mischief::Drop, Mischief::Delay].into_iter().enumerate() {
        let p = proxy(m.addr, how);
        let url = format!("s3://sydra-b4/flaky{i}");
        ok(
            &sydra(p, &["--dir", d(&src), "push", &url], &[]),
            &format!("push through {how:?}"),
        );
        let c = t.path().join(format!("c{}", i + 1));
        ok(
            &sydra(p, &["clone", &url, d(&c)], &[]),
            &format!("clone through {how:?}"),
        );
        assert_eq!(export(&c, "main"), export(&src, "main"), "{how:?}");
    }
}

/// `sydra query --remote … ARGS` with its cache in `cache`: (stdout, the
/// requests the replica reported, the number of objects it fetched).
fn replica_query(a: SocketAddr, url: &str, cache: &Path, args: &[&str]) -> (String, u64, u64) {
    let mut all = vec![
        "query",
        "--remote",
        url,
        "--cache",
        d(cache),
        "--format",
        "csv",
    ];
    all.extend_from_slice(args);
    let o = sydra(a, &all, &[]);
    let out = ok(&o, "query --remote");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let num = |after: &str| -> u64 {
        let line = err
            .lines()
            .find(|l| l.contains("replica:"))
            .unwrap_or_else(|| panic!("no replica line: {err}"));
        let at = line
            .find(after)
            .unwrap_or_else(|| panic!("{after} in {line}"));
        line[..at]
            .split_whitespace()
            .last()
            .unwrap()
            .trim_start_matches('(')
            .parse()
            .unwrap()
    };
    (out, num(" request(s)"), num(" object(s)"))
}

fn local_query(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["--dir", d(dir), "query", "--format", "csv"];
    all.extend_from_slice(args);
    let o = Command::new(env!("CARGO_BIN_EXE_sydra"))
        .args(&all)
        .output()
        .unwrap();
    ok(&o, "query")
}

#[test]
fn a_read_replica_answers_from_the_bucket_like_the_source_through_a_bounded_cache() {
    let Some(m) = moto(
        "a_read_replica_answers_from_the_bucket_like_the_source_through_a_bounded_cache",
        "sydra-rep",
    ) else {
        return;
    };
    let a = m.addr;
    let url = "s3://sydra-rep/metrics";
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    // Two pushes: the first version, a snapshot of it, then more data with
    // WAL points past the last compaction (the replica fetches those
    // ranges too).
    grow(&src, 0, 7300, 50);
    ok(
        &sydra(a, &["--dir", d(&src), "snapshot", "first"], &[]),
        "snapshot",
    );
    ok(
        &sydra(a, &["--dir", d(&src), "remote", "add", "rep", url], &[]),
        "remote add",
    );
    json(
        &sydra(a, &["--dir", d(&src), "push", "rep", "--json"], &[]),
        "push",
    );
    grow(&src, 7350, 11000, 40);
    let p = json(
        &sydra(a, &["--dir", d(&src), "push", "rep", "--json"], &[]),
        "push",
    );
    assert_eq!(
        p["requests"].as_u64().unwrap(),
        4,
        "GET manifest, PUT pack, PUT its index, PUT manifest: {p}"
    );

    let cache = t.path().join("cache");
    for (rev, args) in [
        (None, vec!["{}"]),
        (Some("snapshots/first"), vec!["{}"]),
        (
            Some("main~1"),
            vec!["cpu{host=\"h2\"}", "--from", "3000", "--to", "7390"],
        ),
        (
            None,
            vec!["{host=~\"h[13]\"}", "--step", "10m", "--agg", "mean"],
        ),
    ] {
        let mut r = args.clone();
        let mut l = args.clone();
        if let Some(rev) = rev {
            r.extend(["--as-of", rev]);
        }
        l.extend(["--as-of", rev.unwrap_or("main")]);
        let (out, requests, _) = replica_query(a, url, &cache, &r);
        assert!(out.lines().count() > 10, "{rev:?} {args:?}: {out}");
        assert_eq!(out, local_query(&src, &l), "{rev:?} {args:?}");
        assert!(requests > 0);
    }
    // `sydra series --remote` lists the series of a version the same way.
    let o = sydra(
        a,
        &[
            "series",
            "--remote",
            url,
            "--cache",
            d(&cache),
            "--as-of",
            "snapshots/first",
        ],
        &[],
    );
    let listed = ok(&o, "series --remote");
    let local = Command::new(env!("CARGO_BIN_EXE_sydra"))
        .args(["--dir", d(&src), "series", "--as-of", "snapshots/first"])
        .output()
        .unwrap();
    assert_eq!(listed, ok(&local, "series"));
    assert_eq!(listed.lines().count(), 4, "{listed}");

    // Everything is cached now: a repeated query reads the manifest only.
    let (out, requests, objects) = replica_query(a, url, &cache, &["{}"]);
    assert_eq!(out, local_query(&src, &["{}", "--as-of", "main"]));
    assert_eq!(
        (requests, objects),
        (1, 0),
        "a warm cache costs the manifest only"
    );

    // A tiny cache still answers right; it evicts instead of growing.
    let small = t.path().join("small");
    let o = sydra(
        a,
        &[
            "query",
            "--remote",
            url,
            "--cache",
            d(&small),
            "--cache-max-bytes",
            "16K",
            "--format",
            "csv",
            "{}",
        ],
        &[],
    );
    assert_eq!(
        ok(&o, "small cache"),
        local_query(&src, &["{}", "--as-of", "main"])
    );
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err.lines().find(|l| l.contains("replica:")).unwrap();
    assert!(!line.contains(" 0 evicted"), "{line}");
    let held: u64 =
        walk_bytes(&small.join("store/objects")) + walk_bytes(&small.join("store/walchunks"));
    assert!(
        held < 16 * 1024 + 4 * 1024 * 1024,
        "the cache holds {held} bytes"
    );

    // A store cut by retention: its push carries the boundary, so a walk
    // back in time on the replica ends there ("no commit"), as on a clone.
    ok(
        &sydra(
            a,
            &["--dir", d(&src), "gc", "--retain", "1", "--grace", "0"],
            &[],
        ),
        "gc --retain",
    );
    let cut_cache = t.path().join("cut");
    let cut = "s3://sydra-rep/cut";
    json(
        &sydra(a, &["--dir", d(&src), "push", cut, "--json"], &[]),
        "push",
    );
    let old = ["query", "--remote", cut, "--cache", d(&cut_cache), "{}"];
    let o = sydra(
        a,
        &[&old[..], &["--as-of", "main@{1970-01-02T00:00:00Z}"]].concat(),
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("main@{1970") && err.contains("no commit at or before"),
        "{err}"
    );
    let o = sydra(a, &[&old[..], &["--format", "csv"]].concat(), &[]);
    assert_eq!(
        ok(&o, "cut replica"),
        local_query(&src, &["{}", "--as-of", "main"])
    );

    // Damaged entries in the bucket: the replica refuses them, naming the
    // object and where it came from; it never answers with them.
    json(
        &sydra(
            a,
            &["--dir", d(&src), "push", "s3://sydra-rep/bad", "--json"],
            &[],
        ),
        "push",
    );
    damage_every_entry(a, "sydra-rep", "bad");
    let bad_cache = t.path().join("bad");
    let o = sydra(
        a,
        &[
            "query",
            "--remote",
            "s3://sydra-rep/bad",
            "--cache",
            d(&bad_cache),
            "{}",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("is corrupt")
            && err.contains("CRC mismatch")
            && err.contains("s3://sydra-rep/bad/packs/pack-"),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "no answer from damaged data");

    // A real data directory is never taken for a cache (a replica evicts
    // files from its cache), nor one remote's cache for another's.
    let o = sydra(
        a,
        &["query", "--remote", url, "--cache", d(&src), "{}"],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("not a replica cache"),
        "{err}"
    );
    fsck_clean(&src);
    let o = sydra(
        a,
        &["query", "--remote", cut, "--cache", d(&cache), "{}"],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("cache of another remote"),
        "{err}"
    );

    // An unknown ref is refused naming it; nothing is fetched for it.
    let o = sydra(
        a,
        &[
            "query",
            "--remote",
            url,
            "--cache",
            d(&cache),
            "{}",
            "--as-of",
            "nightly",
        ],
        &[],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("nightly") && err.contains("has no ref"),
        "{err}"
    );

    // A pack pushed before indexes existed (its index removed here) is
    // downloaded once and indexed locally.
    // (A remote GC keeps the indexes of listed packs.)
    let gc = sydra(
        a,
        &[
            "--dir",
            d(&src),
            "gc",
            "--remote",
            "rep",
            "--grace",
            "0",
            "--json",
        ],
        &[],
    );
    let gc = json(&gc, "gc");
    assert_eq!(
        (gc["packs_listed"].as_u64(), gc["deleted"].as_u64()),
        (Some(2), Some(0)),
        "{gc}"
    );
    // The two packs would merge, but this store's history was cut by
    // retention above: sent again from here they would lack objects the
    // remote holds, so the repack's check refuses and changes nothing.
    let why = gc["repacked"]["skipped"].as_str().unwrap_or_default();
    assert!(
        why.contains("would lack") && why.contains("retention"),
        "{gc}"
    );
    let fresh = t.path().join("fresh");
    delete_indexes(a, "sydra-rep", "metrics");
    let (out, _, _) = replica_query(a, url, &fresh, &["{}"]);
    assert_eq!(out, local_query(&src, &["{}", "--as-of", "main"]));
}

fn walk_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                if e.file_name() == "tmp" || e.file_name() == "pack" {
                    0
                } else {
                    walk_bytes(&e.path())
                }
            } else {
                m.len()
            }
        })
        .sum()
}

/// One plain HTTP request to moto: (status, body). moto refuses anonymous
/// reads and writes of objects but does not check signatures, so a
/// made-up one does.
fn moto_http(a: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(a).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {a}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20261207/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..at]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, out[at + 4..].to_vec())
}

/// The keys under `prefix/packs/` of `bucket`.
fn pack_keys(a: SocketAddr, bucket: &str, prefix: &str) -> Vec<String> {
    let (status, listing) = moto_http(
        a,
        "GET",
        &format!("/{bucket}?list-type=2&prefix={prefix}/packs/"),
        b"",
    );
    assert_eq!(status, 200);
    let listing = String::from_utf8(listing).unwrap();
    listing
        .split("<Key>")
        .skip(1)
        .map(|part| part[..part.find("</Key>").unwrap()].to_owned())
        .collect()
}

/// Delete every `.syti` under `prefix/packs/` of `bucket`.
fn delete_indexes(a: SocketAddr, bucket: &str, prefix: &str) {
    let mut n = 0;
    for key in pack_keys(a, bucket, prefix) {
        if key.ends_with(".syti") {
            let (status, _) = moto_http(a, "DELETE", &format!("/{bucket}/{key}"), b"");
            assert_eq!(status, 204, "{key}");
            n += 1;
        }
    }
    assert_eq!(n, 2);
}

/// Flip the last byte (in its CRC) of every object entry of every pack
/// under `prefix/packs/`, found through the packs' indexes.
fn damage_every_entry(a: SocketAddr, bucket: &str, prefix: &str) {
    for key in pack_keys(a, bucket, prefix) {
        let Some(stem) = key.strip_suffix(".syti") else {
            continue;
        };
        let (_, index) = moto_http(a, "GET", &format!("/{bucket}/{key}"), b"");
        let pack_key = format!("{stem}.sytx");
        let (status, mut pack) = moto_http(a, "GET", &format!("/{bucket}/{pack_key}"), b"");
        assert_eq!(status, 200);
        let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        for i in 0..u64_at(&index, 40) as usize {
            let row = 64 + 48 * i;
            let (off, len) = (u64_at(&index, row + 32), u64_at(&index, row + 40));
            pack[(off + len - 1) as usize] ^= 0xff;
        }
        let (status, _) = moto_http(a, "PUT", &format!("/{bucket}/{pack_key}"), &pack);
        assert_eq!(status, 200);
    }
}

/// Every point of `view`, one line each (`key time value-bits`).
fn all_points(view: &sydra_engine::series::View<'_>) -> Vec<String> {
    let sel = sydra_engine::series::Selector::parse("{}").unwrap();
    let mut out = Vec::new();
    for b in view.query(&sel, i64::MIN, i64::MAX).unwrap() {
        let b = b.unwrap();
        for (t, v) in &b.points {
            let bits = match v {
                Value::F64(x) => x.to_bits(),
                other => panic!("not a float: {other:?}"),
            };
            out.push(format!("{} {t} {bits:x}", b.key));
        }
    }
    out
}

/// The variable that makes the test below its own child process: the
/// replica API reads the `AWS_*` variables of its process, and a test may
/// not set them in its own (the crate forbids `unsafe`), so the test runs
/// itself again with them set.
const REFRESH_CHILD: &str = "SYDRA_TEST_REFRESH_ENDPOINT";

#[test]
fn a_replica_refresh_reads_what_was_pushed_since_it_opened() {
    const NAME: &str = "a_replica_refresh_reads_what_was_pushed_since_it_opened";
    if let Some(endpoint) = std::env::var_os(REFRESH_CHILD) {
        refresh_child(endpoint.to_str().unwrap().parse().unwrap());
        return;
    }
    let Some(m) = moto(NAME, "sydra-refresh") else {
        return;
    };
    let o = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &format!("s3::{NAME}"), "--nocapture"])
        .env(REFRESH_CHILD, m.addr.to_string())
        .env("AWS_ENDPOINT_URL", format!("http://{}", m.addr))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the child ran no test: {text}");
}

fn refresh_child(a: SocketAddr) {
    let url = "s3://sydra-refresh/r";
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    grow(&src, 0, 3700, 30);
    ok(
        &sydra(a, &["--dir", d(&src), "remote", "add", "r", url], &[]),
        "remote add",
    );
    json(
        &sydra(a, &["--dir", d(&src), "push", "r", "--json"], &[]),
        "push",
    );
    let first = {
        let e = Engine::open(&src, Default::default()).unwrap();
        all_points(&e.view(Some("main")).unwrap())
    };
    let rep = Engine::open_remote(url, t.path().join("cache"), Default::default()).unwrap();
    assert!(!rep.refresh().unwrap(), "nothing was pushed since open");
    assert_eq!(all_points(&rep.view(None).unwrap()), first);

    grow(&src, 3730, 7400, 20);
    json(
        &sydra(a, &["--dir", d(&src), "push", "r", "--json"], &[]),
        "push",
    );
    let second = {
        let e = Engine::open(&src, Default::default()).unwrap();
        all_points(&e.view(Some("main")).unwrap())
    };
    assert!(second.len() > first.len());
    // Until it refreshes, the replica answers as of what it read at open.
    assert_eq!(all_points(&rep.view(None).unwrap()), first);
    let main_before = rep.resolve(None).unwrap();
    let before = rep.stats().requests;
    assert!(rep.refresh().unwrap(), "a push moved the manifest");
    assert_ne!(rep.resolve(None).unwrap(), main_before);
    assert_eq!(all_points(&rep.view(None).unwrap()), second);
    // The version read at open is still there, by its id.
    assert_eq!(all_points(&rep.view(Some(&main_before)).unwrap()), first);
    assert!(!rep.refresh().unwrap());
    assert!(rep.stats().requests > before);
}

#[test]
fn gc_remote_merges_the_newest_small_packs_and_deletes_them_only_after_the_grace() {
    let Some(m) = moto(
        "gc_remote_merges_the_newest_small_packs_and_deletes_them_only_after_the_grace",
        "sydra-b9",
    ) else {
        return;
    };
    let a = m.addr;
    let t = tempfile::tempdir().unwrap();
    let (src, early, stranger) = (
        t.path().join("src"),
        t.path().join("early"),
        t.path().join("stranger"),
    );
    let url = "s3://sydra-b9/gc";
    // One large push, then four small ones.
    grow(&src, 0, 3600 * 4, 30);
    ok(
        &sydra(a, &["--dir", d(&src), "remote", "add", "backup", url], &[]),
        "remote add",
    );
    ok(
        &sydra(a, &["--dir", d(&src), "push", "backup"], &[]),
        "push",
    );
    let mut at = 3600 * 4 + 30;
    for i in 0..4 {
        grow(&src, at, at + 200, 10);
        at += 210;
        ok(
            &sydra(a, &["--dir", d(&src), "push", "backup"], &[]),
            "push",
        );
        if i == 1 {
            // A clone that has the first three packs only.
            ok(&sydra(a, &["clone", url, d(&early)], &[]), "early clone");
        }
    }
    let gc = |dir: &Path, grace: &str| {
        json(
            &sydra(
                a,
                &[
                    "--dir",
                    d(dir),
                    "gc",
                    "--remote",
                    url,
                    "--grace",
                    grace,
                    "--json",
                ],
                &[],
            ),
            "gc --remote",
        )
    };
    // A store that lacks the packs' commits cannot send them again: it
    // says so, changes nothing, and still collects.
    grow(&stranger, 0, 10, 0);
    let g = gc(&stranger, "1h");
    let why = g["repacked"]["skipped"].as_str().unwrap_or_default();
    assert!(why.contains("lacks") && why.contains("fetch"), "{g}");
    assert_eq!(g["packs_listed"], 5, "{g}");

    // From the source: the four small packs merge into one. The old ones
    // were uploaded more than the grace period ago, but they stay: their
    // grace runs from the retiring, for readers of the manifest before.
    std::thread::sleep(Duration::from_secs(3));
    let g = gc(&src, "2s");
    assert_eq!(g["repacked"]["packs"], 4, "{g}");
    assert_eq!(g["deleted"], 0, "{g}");
    assert_eq!(
        g["kept_within_grace"], 8,
        "four packs and their indexes: {g}"
    );
    let again = gc(&src, "1h");
    assert!(
        again["repacked"].is_null(),
        "a second gc merges nothing: {again}"
    );
    assert_eq!(again["packs_listed"], 6, "{again}");

    // A clone from the merged manifest, and a fetch into the clone that
    // had three packs, both equal the source at every ref and pass fsck.
    let after = t.path().join("after");
    ok(
        &sydra(a, &["clone", url, d(&after)], &[]),
        "clone after repack",
    );
    fsck_clean(&after);
    assert_eq!(export(&after, "main"), export(&src, "main"));
    ok(
        &sydra(a, &["--dir", d(&early), "fetch"], &[]),
        "fetch after repack",
    );
    fsck_clean(&early);
    assert_eq!(
        export(&early, "remotes/origin/heads/main"),
        export(&src, "main")
    );

    // Past the grace, the retired packs, their indexes and markers go;
    // the manifest's two packs stay and still clone to the same data.
    let g = gc(&src, "0");
    assert_eq!(g["deleted"], 12, "{g}");
    let g = gc(&src, "0");
    assert_eq!(
        (g["deleted"].as_u64(), g["packs_listed"].as_u64()),
        (Some(0), Some(2)),
        "{g}"
    );
    let last = t.path().join("last");
    ok(&sydra(a, &["clone", url, d(&last)], &[]), "clone after gc");
    fsck_clean(&last);
    assert_eq!(export(&last, "main"), export(&src, "main"));
}
