//! Issue 16's goals for S3 remotes, measured against a local S3 server
//! (moto on loopback) beside plain `object_store` requests of the same
//! bytes in the same run. One JSON line per mode (also written to
//! `<target dir>/sydra-bench-results/s3_<mode>[_<label>].json`).
//! `benches/s3.sh` starts moto and runs them all; `docs/BENCHMARKS-S3.md`
//! holds the results.
//!
//! ```text
//! s3_bench requests --store D --bucket B --prefix P [--reps 3]
//! s3_bench push     --store D --bucket B --prefix P [--reps 3]
//! s3_bench stage    --store D --bucket B --prefix P [--stages 6]
//! s3_bench clone    --bucket B --prefix P --scratch S [--reps 3] [--label L]
//! s3_bench slowlink --store D --bucket B --prefix P [--mb-per-s 1] [--aws-timeout 600s]
//!                   [--multipart-over BYTES] [--label L]
//! s3_bench replica  --store D --bucket B --prefix P --scratch S [--reps 5] [--series-index 7]
//! ```
//!
//! Every mode also takes `--moto-pid PID` (its CPU time is read from
//! `/proc/PID/stat` around every timed step) and `--moto-log FILE` (moto's
//! access log: each request it served is one line, so requests are counted
//! on the server's side too, by method and key). The S3 settings are the
//! `AWS_*` variables, as for `sydra` (`AWS_ENDPOINT_URL` must be set).
//!
//! - `requests`: a named remote (`sydra remote add bench s3://B/P`) on the
//!   store `D` (a small one), its first push (the probe: 4 requests), then
//!   per repetition one more hour of scrapes and the one compaction it
//!   triggers (the synthetic store of `sydra_benches::synth`), and `sydra
//!   push bench --json`, timed. Beside each push: the same requests made
//!   with plain `object_store` (GET of the manifest, PUT of copies of the
//!   pack's and its index's bytes, PUT of a copy of the manifest), and the push's local
//!   share (`remote::send` in this process, with the same haves).
//! - `push`: `sydra push s3://B/P-<rep> --json` of the whole store `D` (one
//!   transfer file: multipart above 64 MiB), timed, beside a plain
//!   `object_store` multipart upload of the same bytes from a file on the
//!   same disk (16 MiB parts, 4 in flight: what `sydra` uses), and
//!   `remote::send` of the store alone (the transfer file sydra writes
//!   before its upload). Only the last repetition's prefix is kept (`P`
//!   itself), for `clone`.
//! - `stage`: the store pushed to `s3://B/P` in `--stages` pushes, as a
//!   nightly backup would (a branch `s3-stage` moved along main's
//!   first-parent history, then every head), so its manifest lists
//!   several packs.
//! - `clone`: `sydra clone s3://B/P DIR --json` (the CLI, a process) timed,
//!   beside, in turn: plain `object_store` GETs of the packs the manifest
//!   lists, streamed into a file on the same disk (as `sydra` downloads;
//!   then an fsync of those files, timed apart) and into memory; `curl` GETs into a file and into /dev/null; and
//!   `remote::receive` of the downloaded packs into a fresh store (the
//!   clone's work after its download, alone). `syncfs` before each. The first
//!   clone is checked: its refs equal the manifest's and `sydra fsck`
//!   passes. MB/s is the bytes of the packs the manifest lists over the
//!   wall time.
//! - `slowlink`: `sydra push s3://B/P --json` of the whole store `D`
//!   through a TCP proxy on loopback that paces both directions to
//!   `--mb-per-s` (a slow uplink), with `object_store`'s default request
//!   timeout (30 s for a whole request, body included) or `AWS_TIMEOUT`
//!   set to `--aws-timeout`: whether the push succeeds, its time and error.
//!   `--multipart-over` lowers the size above which the transfer goes in
//!   parts (`SYDRA_S3_MULTIPART_OVER`), to try the multipart path.
//! - `replica`: `sydra push s3://B/P` of the store `D`, then one series
//!   (`synth::Writer::key(--series-index)`) over the last day of its data
//!   read through `sydra query --remote s3://B/P --cache S/cache --stats`:
//!   once cold (an empty cache: requests, bytes, objects and WAL ranges
//!   fetched, segments decoded, what moto served), then `--reps` times
//!   warm, each beside the same query on the local store, live and `--as-of
//!   main` (what the replica reads). Every answer is checked equal to the
//!   local one. Times are whole processes (open, query, output).
//!
//! The `sydra` binary is `$SYDRA_BIN`, else `<target dir>/release/sydra`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sydra_benches::args::Args;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde_json::{Value, json};
use sydra_benches::synth::{Built, advance, du};
use sydra_benches::{syncfs, target_dir, write_result};
use sydra_engine::Repository;
use sydra_engine::objects::ObjectId;
use sydra_engine::remote::{self, Manifest, Transfer, TransferFile};

/// The part size and parts in flight of `sydra`'s multipart uploads
/// (`engine/src/remote/s3.rs`), used for the plain uploads too.
const PART_BYTES: usize = 16 << 20;
const PARTS_IN_FLIGHT: usize = 4;

// ---------------------------------------------------------------- helpers

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn mb_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

fn emit(name: &str, v: &Value) {
    let line = v.to_string();
    println!("{line}");
    write_result(&format!("s3_{name}"), &format!("{line}\n"));
}

fn sydra_bin() -> PathBuf {
    std::env::var_os("SYDRA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("release").join("sydra"))
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn sydra() -> Command {
    Command::new(sydra_bin())
}

/// Run a `sydra … --json` command, timed; its JSON, its wall time and the
/// CPU seconds it used (user, system).
fn sydra_json(cmd: &mut Command) -> (Value, f64, (f64, f64)) {
    let before = children_cpu();
    let t = Instant::now();
    let out = run(cmd);
    let wall = t.elapsed().as_secs_f64();
    let after = children_cpu();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{cmd:?}: not JSON ({e}): {:?}", out.stdout));
    (v, wall, (after.0 - before.0, after.1 - before.1))
}

// ---------------------------------------------------------------- CPU

fn ticks() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// Fields of `/proc/<pid>/stat` after the command name: index 0 is field 3
/// (state), so field N (1-based, proc(5)) is index N - 3.
fn stat_fields(pid: &str) -> Vec<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect()
}

/// (user, system) CPU seconds of a process (all its threads).
fn proc_cpu(pid: &str) -> (f64, f64) {
    let f = stat_fields(pid);
    if f.len() < 13 {
        return (0.0, 0.0);
    }
    (f[11] as f64 / ticks(), f[12] as f64 / ticks())
}

/// (user, system) CPU seconds of this process.
fn self_cpu() -> (f64, f64) {
    proc_cpu("self")
}

/// (user, system) CPU seconds of this process's waited-for children.
fn children_cpu() -> (f64, f64) {
    let f = stat_fields("self");
    (f[13] as f64 / ticks(), f[14] as f64 / ticks())
}

/// The S3 server (moto): its CPU and its access log.
struct Server {
    pid: Option<String>,
    log: Option<PathBuf>,
}

/// What the server did during one step.
struct ServerMark {
    cpu: (f64, f64),
    log_at: u64,
}

impl Server {
    fn from_args(a: &Args) -> Server {
        Server {
            pid: a.opt("moto-pid").map(str::to_owned),
            log: a.opt("moto-log").map(PathBuf::from),
        }
    }

    fn mark(&self) -> ServerMark {
        ServerMark {
            cpu: self.pid.as_deref().map_or((0.0, 0.0), proc_cpu),
            log_at: self
                .log
                .as_deref()
                .and_then(|p| fs::metadata(p).ok())
                .map_or(0, |m| m.len()),
        }
    }

    /// The server's CPU seconds since `m`, and the requests it logged
    /// since, counted by what they did.
    fn since(&self, m: &ServerMark) -> (f64, BTreeMap<String, u64>) {
        let cpu = self.pid.as_deref().map_or((0.0, 0.0), proc_cpu);
        let used = (cpu.0 - m.cpu.0) + (cpu.1 - m.cpu.1);
        let mut kinds = BTreeMap::new();
        if let Some(p) = &self.log {
            // moto logs a request when it answers; give the last line a
            // moment to land.
            std::thread::sleep(Duration::from_millis(50));
            let mut f = fs::File::open(p).unwrap();
            f.seek(SeekFrom::Start(m.log_at)).unwrap();
            let mut s = String::new();
            f.read_to_string(&mut s).unwrap();
            for line in s.lines() {
                if let Some(k) = request_kind(line) {
                    *kinds.entry(k).or_insert(0) += 1;
                }
            }
        }
        (used, kinds)
    }
}

/// A werkzeug access-log line (`… "PUT /b/p/manifest HTTP/1.1" 200 -`,
/// ANSI colours on errors) as "METHOD what status", where `what` is
/// manifest, pack, index (a pack's `.syti`), part (of a multipart upload), multipart-create,
/// multipart-complete, probe, delete (a `POST ?delete`, as `object_store`
/// deletes), bucket or other.
fn request_kind(line: &str) -> Option<String> {
    let clean: String = {
        let mut out = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    let start = clean.find('"')? + 1;
    let end = clean[start..].find(" HTTP/")? + start;
    let (method, target) = clean[start..end].split_once(' ')?;
    let status = clean[end..]
        .split('"')
        .nth(1)?
        .split_whitespace()
        .next()
        .unwrap_or("?");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let what = if method == "POST" && query.starts_with("delete") {
        "delete"
    } else if query.contains("partNumber=") {
        "part"
    } else if query.starts_with("uploads") {
        "multipart-create"
    } else if query.contains("uploadId=") && method == "POST" {
        "multipart-complete"
    } else if path.ends_with("/manifest") {
        "manifest"
    } else if path.ends_with(".syti") {
        "index"
    } else if path.contains("/packs/") {
        "pack"
    } else if path.contains("/probe/") {
        "probe"
    } else if path.contains("/ceiling/") {
        "ceiling"
    } else if path.matches('/').count() == 1 {
        "bucket"
    } else {
        "other"
    };
    Some(format!("{method} {what} {status}"))
}

fn total(kinds: &BTreeMap<String, u64>) -> u64 {
    kinds.values().sum()
}

// ---------------------------------------------------------------- plain object_store

/// A plain `object_store` client for the bucket, configured as `sydra`'s
/// (the `AWS_*` variables), on a current-thread runtime as `sydra`'s.
struct Plain {
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    bucket: String,
}

impl Plain {
    fn new(bucket: &str) -> Plain {
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Plain {
            store: Arc::new(store),
            rt,
            bucket: bucket.to_owned(),
        }
    }

    fn get_bytes(&self, key: &str) -> Vec<u8> {
        self.rt
            .block_on(async { self.store.get(&Key::from(key)).await?.bytes().await })
            .unwrap()
            .to_vec()
    }

    fn manifest(&self, prefix: &str) -> Manifest {
        Manifest::parse(&self.get_bytes(&format!("{prefix}/manifest"))).unwrap()
    }

    /// GET `key` streamed into a new file `out`, one write per chunk (as
    /// `sydra` downloads); (bytes, chunks).
    fn get_to_file(&self, key: &str, out: &Path) -> (u64, u64) {
        let mut f = fs::File::create(out).unwrap();
        self.rt
            .block_on(async {
                let mut s = self.store.get(&Key::from(key)).await?.into_stream();
                let (mut n, mut chunks) = (0u64, 0u64);
                while let Some(c) = s.next().await {
                    let c = c?;
                    f.write_all(&c).unwrap();
                    n += c.len() as u64;
                    chunks += 1;
                }
                Ok::<_, object_store::Error>((n, chunks))
            })
            .unwrap()
    }

    /// GET `key` into memory (the chunks kept until the end); bytes.
    fn get_to_memory(&self, key: &str) -> u64 {
        self.rt
            .block_on(async {
                let mut s = self.store.get(&Key::from(key)).await?.into_stream();
                let mut kept = Vec::new();
                while let Some(c) = s.next().await {
                    kept.push(c?);
                }
                Ok::<_, object_store::Error>(kept.iter().map(|c| c.len() as u64).sum())
            })
            .unwrap()
    }

    /// One PUT of `bytes`.
    fn put(&self, key: &str, bytes: Vec<u8>) {
        self.rt
            .block_on(self.store.put(&Key::from(key), PutPayload::from(bytes)))
            .unwrap();
    }

    /// A multipart upload of the file `from` (read 1 MiB at a time,
    /// `PART_BYTES` parts, `PARTS_IN_FLIGHT` in flight); its parts.
    fn put_multipart_file(&self, key: &str, from: &Path) -> u64 {
        let mut f = fs::File::open(from).unwrap();
        let len = f.metadata().unwrap().len();
        self.rt
            .block_on(async {
                let upload = self.store.put_multipart(&Key::from(key)).await?;
                let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = f.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    w.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                    w.write(&buf[..n]);
                }
                w.finish().await
            })
            .unwrap();
        len.div_ceil(PART_BYTES as u64)
    }

    fn delete(&self, key: &str) {
        let _ = self.rt.block_on(self.store.delete(&Key::from(key)));
    }

    /// Delete every key under `prefix`.
    fn delete_prefix(&self, prefix: &str) -> u64 {
        let keys: Vec<Key> = self
            .rt
            .block_on(async {
                let mut out = Vec::new();
                let p = Key::from(prefix);
                let mut s = self.store.list(Some(&p));
                while let Some(m) = s.next().await {
                    out.push(m?.location);
                }
                Ok::<_, object_store::Error>(out)
            })
            .unwrap();
        for k in &keys {
            let _ = self.rt.block_on(self.store.delete(k));
        }
        keys.len() as u64
    }

    /// `curl` GET of `key` (SigV4-signed by curl) into `out`; (bytes,
    /// seconds to the first byte, seconds in all, CPU of curl).
    fn curl(&self, key: &str, out: &str) -> (u64, f64, f64, f64) {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
        let id = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default();
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default();
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
        let before = children_cpu();
        let o = run(Command::new("curl")
            .args(["-sS", "--fail", "--aws-sigv4"])
            .arg(format!("aws:amz:{region}:s3"))
            .arg("--user")
            .arg(format!("{id}:{secret}"))
            .args([
                "-o",
                out,
                "-w",
                "%{size_download} %{time_starttransfer} %{time_total}",
            ])
            .arg(format!(
                "{}/{}/{key}",
                endpoint.trim_end_matches('/'),
                self.bucket
            )));
        let after = children_cpu();
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        let v: Vec<&str> = s.split_whitespace().collect();
        (
            v[0].parse().unwrap(),
            v[1].parse().unwrap(),
            v[2].parse().unwrap(),
            (after.0 - before.0) + (after.1 - before.1),
        )
    }
}

fn pack_key(prefix: &str, name: &str) -> String {
    format!("{prefix}/packs/{name}")
}

/// `refs/heads/*` and `refs/snapshots/*` of a store (what a push sends).
fn heads(dir: &Path) -> BTreeMap<String, ObjectId> {
    let repo = Repository::open(dir).unwrap();
    repo.refs()
        .list("")
        .unwrap()
        .into_iter()
        .filter(|(n, _)| {
            n.as_str().starts_with("refs/heads/") || n.as_str().starts_with("refs/snapshots/")
        })
        .filter_map(|(n, t)| Some((n.as_str().to_owned(), t.object()?)))
        .collect()
}

/// The local share of a push: `remote::send` of `tips` to a receiver that
/// has the commits reachable from `known`, into a temp file (removed).
/// (seconds, bytes).
fn send_alone(dir: &Path, tips: &[ObjectId], known: &[ObjectId]) -> (f64, u64) {
    let repo = Repository::open(dir).unwrap();
    syncfs(dir);
    let t = Instant::now();
    let have = remote::commits_from(&repo, known).unwrap();
    let file = remote::send(
        &repo,
        tips,
        &have,
        &|id| Ok(have.contains(id)),
        repo.objects(),
        None,
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let bytes = fs::metadata(&file.path).unwrap().len();
    drop(file);
    (secs, bytes)
}

fn url(bucket: &str, prefix: &str) -> String {
    format!("s3://{bucket}/{prefix}")
}

// ---------------------------------------------------------------- requests

fn mode_requests(a: &Args) {
    let store = a.path("store");
    let bucket = a.req("bucket").to_owned();
    let prefix = a.req("prefix").to_owned();
    let reps: usize = a.get("reps", 3);
    let server = Server::from_args(a);
    let plain = Plain::new(&bucket);
    let d = store.to_str().unwrap();

    // A named remote, probed on its first use.
    let _ = sydra()
        .args(["--dir", d, "remote", "remove", "bench"])
        .output();
    let _ = fs::remove_file(store.join("remotes").join("bench.probed"));
    run(sydra().args(["--dir", d, "remote", "add", "bench", &url(&bucket, &prefix)]));

    let mut built = Built::read(&store).expect("the store has no built.json (remote_bench build)");
    let mut writer = None;
    let mut rows = Vec::new();
    for rep in 0..=reps {
        let before = heads(&store);
        let mut compaction = json!(null);
        if rep > 0 {
            let (points, c) = advance(&store, &mut built, &mut writer);
            compaction = json!({
                "points": points,
                "segments_added": c.segments_added,
                "segments_replaced": c.segments_replaced,
            });
        }
        let after = heads(&store);
        syncfs(&store);
        let m = server.mark();
        let (out, wall, cpu) = sydra_json(sydra().args(["--dir", d, "push", "bench", "--json"]));
        let (server_cpu, kinds) = server.since(&m);
        let manifest = plain.manifest(&prefix);
        let pack = manifest.packs.last().unwrap();
        // The same requests with plain object_store: GET the manifest,
        // PUT a copy of the pack's bytes and of its index, PUT a copy of
        // the manifest.
        let bytes = plain.get_bytes(&pack_key(&prefix, &pack.name));
        let index_name = format!("{}.syti", pack.name.trim_end_matches(".sytx"));
        let index = plain.get_bytes(&pack_key(&prefix, &index_name));
        let manifest_bytes = manifest.to_json();
        let pm = server.mark();
        let t = Instant::now();
        let _ = plain.get_bytes(&format!("{prefix}/manifest"));
        if bytes.len() > 64 << 20 {
            let tmp = store.join("objects").join("tmp").join("s3-bench-copy");
            fs::write(&tmp, &bytes).unwrap();
            plain.put_multipart_file(&format!("{prefix}/ceiling/pack"), &tmp);
            fs::remove_file(&tmp).unwrap();
        } else {
            plain.put(&format!("{prefix}/ceiling/pack"), bytes.clone());
        }
        plain.put(&format!("{prefix}/ceiling/index"), index);
        plain.put(&format!("{prefix}/ceiling/manifest"), manifest_bytes);
        let plain_s = t.elapsed().as_secs_f64();
        let (plain_server_cpu, _) = server.since(&pm);
        plain.delete(&format!("{prefix}/ceiling/pack"));
        plain.delete(&format!("{prefix}/ceiling/index"));
        plain.delete(&format!("{prefix}/ceiling/manifest"));
        // The local share: the transfer file alone.
        let tips: Vec<ObjectId> = after.values().copied().collect();
        let known: Vec<ObjectId> = before.values().copied().collect();
        let (send_s, send_bytes) = if rep == 0 {
            send_alone(&store, &tips, &[])
        } else {
            send_alone(&store, &tips, &known)
        };
        let row = json!({
            "rep": rep,
            "first_use": rep == 0,
            "compaction": compaction,
            "sydra_requests": out["requests"],
            "server_requests": total(&kinds),
            "server_requests_by_kind": kinds,
            "pack_bytes": pack.bytes,
            "objects": out["objects"],
            "wal_ranges": out["wal_ranges"],
            "wal_range_bytes": out["wal_range_bytes"],
            "push_s": wall,
            "push_cpu_user_s": cpu.0,
            "push_cpu_sys_s": cpu.1,
            "server_cpu_s": server_cpu,
            "plain_requests_s": plain_s,
            "plain_server_cpu_s": plain_server_cpu,
            "send_alone_s": send_s,
            "send_alone_bytes": send_bytes,
        });
        eprintln!("{row}");
        rows.push(row);
    }
    let later: Vec<&Value> = rows.iter().skip(1).collect();
    let max_later = later
        .iter()
        .filter_map(|r| r["sydra_requests"].as_u64())
        .max()
        .unwrap_or(0);
    let max_later_server = later
        .iter()
        .filter_map(|r| r["server_requests"].as_u64())
        .max()
        .unwrap_or(0);
    let push_s: Vec<f64> = later.iter().filter_map(|r| r["push_s"].as_f64()).collect();
    let plain_s: Vec<f64> = later
        .iter()
        .filter_map(|r| r["plain_requests_s"].as_f64())
        .collect();
    emit(
        "requests",
        &json!({
            "mode": "requests",
            "store": store.display().to_string(),
            "url": url(&bucket, &prefix),
            "rows": rows,
            "first_push_requests": rows[0]["sydra_requests"],
            "first_push_server_requests": rows[0]["server_requests"],
            "later_push_requests_max": max_later,
            "later_push_server_requests_max": max_later_server,
            "later_push_median_s": median(&push_s),
            "later_plain_median_s": median(&plain_s),
            "load_at_end": loadavg(),
        }),
    );
}

// ---------------------------------------------------------------- push

fn mode_push(a: &Args) {
    let store = a.path("store");
    let bucket = a.req("bucket").to_owned();
    let prefix = a.req("prefix").to_owned();
    let reps: usize = a.get("reps", 3);
    let server = Server::from_args(a);
    let plain = Plain::new(&bucket);
    let d = store.to_str().unwrap();
    let copy = store.join("objects").join("tmp").join("s3-bench-pack");

    let mut rows = Vec::new();
    for rep in 0..reps {
        let last = rep + 1 == reps;
        let p = if last {
            prefix.clone()
        } else {
            format!("{prefix}-{rep}")
        };
        plain.delete_prefix(&p);
        // sydra push of the whole store (a bare URL: probed, 4 requests).
        syncfs(&store);
        let m = server.mark();
        let (out, wall, cpu) =
            sydra_json(sydra().args(["--dir", d, "push", &url(&bucket, &p), "--json"]));
        let (server_cpu, kinds) = server.since(&m);
        let manifest = plain.manifest(&p);
        assert_eq!(manifest.packs.len(), 1, "one push, one pack");
        let pack = &manifest.packs[0];
        // The same bytes, plain: a multipart upload from a file on the
        // same disk (the pack downloaded first, untimed).
        plain.get_to_file(&pack_key(&p, &pack.name), &copy);
        syncfs(&store);
        let pm = server.mark();
        let c0 = self_cpu();
        let t = Instant::now();
        let parts = plain.put_multipart_file(&format!("{p}/ceiling/put"), &copy);
        let plain_s = t.elapsed().as_secs_f64();
        let c1 = self_cpu();
        let (plain_server_cpu, plain_kinds) = server.since(&pm);
        plain.delete(&format!("{p}/ceiling/put"));
        fs::remove_file(&copy).unwrap();
        // The local share: the transfer file alone.
        let tips: Vec<ObjectId> = heads(&store).values().copied().collect();
        let (send_s, send_bytes) = send_alone(&store, &tips, &[]);
        let row = json!({
            "rep": rep,
            "prefix": p,
            "pack_bytes": pack.bytes,
            "objects": out["objects"],
            "wal_ranges": out["wal_ranges"],
            "wal_range_bytes": out["wal_range_bytes"],
            "sydra_requests": out["requests"],
            "server_requests": total(&kinds),
            "server_requests_by_kind": kinds,
            "push_s": wall,
            "push_mb_per_s": mb_s(pack.bytes, wall),
            "push_cpu_user_s": cpu.0,
            "push_cpu_sys_s": cpu.1,
            "server_cpu_s": server_cpu,
            "plain_put_s": plain_s,
            "plain_put_mb_per_s": mb_s(pack.bytes, plain_s),
            "plain_parts": parts,
            "plain_server_requests": total(&plain_kinds),
            "plain_client_cpu_s": (c1.0 - c0.0) + (c1.1 - c0.1),
            "plain_server_cpu_s": plain_server_cpu,
            "send_alone_s": send_s,
            "send_alone_bytes": send_bytes,
        });
        eprintln!("{row}");
        rows.push(row);
        if !last {
            plain.delete_prefix(&p);
        }
    }
    let col = |k: &str| -> Vec<f64> { rows.iter().filter_map(|r| r[k].as_f64()).collect() };
    let bytes = rows[0]["pack_bytes"].as_u64().unwrap();
    let (push, put, send) = (
        median(&col("push_s")),
        median(&col("plain_put_s")),
        median(&col("send_alone_s")),
    );
    emit(
        "push",
        &json!({
            "mode": "push",
            "store": store.display().to_string(),
            "store_bytes": du(&store.join("objects")) + du(&store.join("wal")),
            "pack_bytes": bytes,
            "rows": rows,
            "push_median_s": push,
            "push_mb_per_s": mb_s(bytes, push),
            "plain_put_median_s": put,
            "plain_put_mb_per_s": mb_s(bytes, put),
            "push_over_plain": push / put,
            "send_alone_median_s": send,
            "upload_share_s": push - send,
            "load_at_end": loadavg(),
        }),
    );
}

// ---------------------------------------------------------------- stage

fn mode_stage(a: &Args) {
    let store = a.path("store");
    let bucket = a.req("bucket").to_owned();
    let prefix = a.req("prefix").to_owned();
    let stages: usize = a.get("stages", 6);
    let server = Server::from_args(a);
    let plain = Plain::new(&bucket);
    let d = store.to_str().unwrap();
    plain.delete_prefix(&prefix);

    // main's first-parent history, oldest first.
    let chain: Vec<String> = {
        let o = run(sydra().args(["--dir", d, "log", "refs/heads/main"]));
        let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("commit ").map(str::to_owned))
            .collect();
        v.reverse();
        v
    };
    assert!(chain.len() >= stages, "{} commits", chain.len());
    let u = url(&bucket, &prefix);
    let mut rows = Vec::new();
    for s in 1..=stages {
        let what: Vec<&str> = if s < stages {
            let at = &chain[chain.len() * s / stages - 1];
            run(sydra().args(["--dir", d, "update-ref", "refs/heads/s3-stage", at]));
            vec!["refs/heads/s3-stage"]
        } else {
            vec![]
        };
        let m = server.mark();
        let (out, wall, _) = sydra_json(
            sydra()
                .args(["--dir", d, "push", &u])
                .args(&what)
                .arg("--json"),
        );
        let (server_cpu, kinds) = server.since(&m);
        let manifest = plain.manifest(&prefix);
        let pack = manifest.packs.last().unwrap();
        let row = json!({
            "stage": s,
            "pack_bytes": pack.bytes,
            "objects": out["objects"],
            "wal_ranges": out["wal_ranges"],
            "wal_range_bytes": out["wal_range_bytes"],
            "sydra_requests": out["requests"],
            "server_requests": total(&kinds),
            "push_s": wall,
            "push_mb_per_s": mb_s(pack.bytes, wall),
            "server_cpu_s": server_cpu,
        });
        eprintln!("{row}");
        rows.push(row);
    }
    // The store as it was (the remote keeps its refs/heads/s3-stage).
    run(sydra().args(["--dir", d, "update-ref", "-d", "refs/heads/s3-stage"]));
    let manifest = plain.manifest(&prefix);
    emit(
        "stage",
        &json!({
            "mode": "stage",
            "store": store.display().to_string(),
            "url": u,
            "stages": stages,
            "packs": manifest.packs.len(),
            "pack_bytes": manifest.packs.iter().map(|p| p.bytes).sum::<u64>(),
            "rows": rows,
            "load_at_end": loadavg(),
        }),
    );
}

// ---------------------------------------------------------------- clone

fn mode_clone(a: &Args) {
    let bucket = a.req("bucket").to_owned();
    let prefix = a.req("prefix").to_owned();
    let scratch = a.path("scratch");
    let reps: usize = a.get("reps", 3);
    let label = a
        .opt("label")
        .map(str::to_owned)
        .unwrap_or_else(|| prefix.clone());
    let server = Server::from_args(a);
    let plain = Plain::new(&bucket);
    fs::create_dir_all(&scratch).unwrap();
    let manifest = plain.manifest(&prefix);
    let keys: Vec<(String, u64)> = manifest
        .packs
        .iter()
        .map(|p| (pack_key(&prefix, &p.name), p.bytes))
        .collect();
    let bytes: u64 = keys.iter().map(|k| k.1).sum();
    let u = url(&bucket, &prefix);
    let dst = scratch.join("clone");
    let files: Vec<PathBuf> = (0..keys.len())
        .map(|i| scratch.join(format!("get-{i}.sytx")))
        .collect();

    let mut clone_s = Vec::new();
    let mut rows = Vec::new();
    let mut receive = json!(null);
    let mut receive_s = Vec::new();
    let mut checked = json!(null);
    for rep in 0..reps {
        // sydra clone (the CLI).
        let _ = fs::remove_dir_all(&dst);
        syncfs(&scratch);
        let m = server.mark();
        let (out, wall, cpu) = sydra_json(sydra().arg("clone").arg(&u).arg(&dst).arg("--json"));
        let (server_cpu, kinds) = server.since(&m);
        clone_s.push(wall);
        if rep == 0 {
            let got = heads(&dst);
            let want: BTreeMap<String, ObjectId> = manifest.refs.clone().into_iter().collect();
            let fsck = sydra().arg("--dir").arg(&dst).arg("fsck").output().unwrap();
            checked = json!({
                "refs_equal_manifest": got == want,
                "fsck_ok": fsck.status.success(),
                "clone_bytes_on_disk": du(&dst.join("objects")) + du(&dst.join("walchunks")),
                "objects": out["objects"],
                "wal_ranges": out["wal_ranges"],
                "wal_range_bytes": out["wal_range_bytes"],
            });
        }
        fs::remove_dir_all(&dst).unwrap();
        let sydra_row = json!({
            "s": wall,
            "mb_per_s": mb_s(bytes, wall),
            "requests": out["requests"],
            "server_requests": total(&kinds),
            "server_requests_by_kind": kinds,
            "client_cpu_user_s": cpu.0,
            "client_cpu_sys_s": cpu.1,
            "server_cpu_s": server_cpu,
        });

        // Plain GETs into files on the same disk.
        syncfs(&scratch);
        let m = server.mark();
        let c0 = self_cpu();
        let t = Instant::now();
        let mut chunks = 0;
        for ((k, n), f) in keys.iter().zip(&files) {
            let (got, c) = plain.get_to_file(k, f);
            assert_eq!(got, *n);
            chunks += c;
        }
        let file_s = t.elapsed().as_secs_f64();
        let c1 = self_cpu();
        let (file_server_cpu, _) = server.since(&m);
        // What making them durable would add (a clone syncs what it keeps).
        let t = Instant::now();
        for f in &files {
            fs::File::open(f).unwrap().sync_all().unwrap();
        }
        let sync_s = t.elapsed().as_secs_f64();
        let get_file = json!({
            "s": file_s,
            "mb_per_s": mb_s(bytes, file_s),
            "then_fsync_s": sync_s,
            "synced_mb_per_s": mb_s(bytes, file_s + sync_s),
            "chunks": chunks,
            "client_cpu_s": (c1.0 - c0.0) + (c1.1 - c0.1),
            "server_cpu_s": file_server_cpu,
        });

        // The clone's work after its download, alone.
        {
            let rdir = scratch.join("receive");
            let _ = fs::remove_dir_all(&rdir);
            let (repo, _) = Repository::init(&rdir).unwrap();
            // receive() takes the file as a TransferFile (removed on drop):
            // hand it a hard link.
            let links: Vec<PathBuf> = files
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let l = repo.objects().tmp_dir().join(format!("s3-bench-{i}.tmp"));
                    fs::hard_link(f, &l).unwrap();
                    l
                })
                .collect();
            syncfs(&scratch);
            let c0 = self_cpu();
            let t = Instant::now();
            let mut pins = Vec::new();
            for l in links {
                let tf = TransferFile {
                    path: l,
                    counts: Transfer::default(),
                };
                let (_, pin) = remote::receive(&repo, &tf, "bench").unwrap();
                pins.push(pin);
            }
            let s = t.elapsed().as_secs_f64();
            let c1 = self_cpu();
            drop(pins);
            drop(repo);
            fs::remove_dir_all(&rdir).unwrap();
            receive = json!({
                "s": s,
                "mb_per_s": mb_s(bytes, s),
                "cpu_s": (c1.0 - c0.0) + (c1.1 - c0.1),
            });
            receive_s.push(s);
        }
        for f in &files {
            fs::remove_file(f).unwrap();
        }

        // Plain GETs into memory.
        let m = server.mark();
        let c0 = self_cpu();
        let t = Instant::now();
        for (k, n) in &keys {
            assert_eq!(plain.get_to_memory(k), *n);
        }
        let mem_s = t.elapsed().as_secs_f64();
        let c1 = self_cpu();
        let (mem_server_cpu, _) = server.since(&m);
        let get_memory = json!({
            "s": mem_s,
            "mb_per_s": mb_s(bytes, mem_s),
            "client_cpu_s": (c1.0 - c0.0) + (c1.1 - c0.1),
            "server_cpu_s": mem_server_cpu,
        });

        // curl, into a file and into /dev/null.
        let mut curl_rows = Vec::new();
        for to_file in [true, false] {
            syncfs(&scratch);
            let m = server.mark();
            let t = Instant::now();
            let (mut ttfb, mut cpu) = (0.0, 0.0);
            for ((k, n), f) in keys.iter().zip(&files) {
                let out = if to_file {
                    f.to_str().unwrap().to_owned()
                } else {
                    "/dev/null".to_owned()
                };
                let (got, first, _, c) = plain.curl(k, &out);
                assert_eq!(got, *n);
                ttfb += first;
                cpu += c;
            }
            let s = t.elapsed().as_secs_f64();
            let (server_cpu, _) = server.since(&m);
            for f in &files {
                let _ = fs::remove_file(f);
            }
            curl_rows.push(json!({
                "to": if to_file { "file" } else { "/dev/null" },
                "s": s,
                "mb_per_s": mb_s(bytes, s),
                "first_byte_s_sum": ttfb,
                "client_cpu_s": cpu,
                "server_cpu_s": server_cpu,
            }));
        }
        let row = json!({
            "rep": rep,
            "sydra_clone": sydra_row,
            "get_to_file": get_file,
            "receive_alone": receive,
            "get_to_memory": get_memory,
            "curl_to_file": curl_rows[0],
            "curl_to_null": curl_rows[1],
        });
        eprintln!("{row}");
        rows.push(row);
    }
    let col = |a: &str, b: &str| -> f64 {
        median(
            &rows
                .iter()
                .filter_map(|r| r[a][b].as_f64())
                .collect::<Vec<_>>(),
        )
    };
    let clone = median(&clone_s);
    let file = col("get_to_file", "s");
    let mem = col("get_to_memory", "s");
    emit(
        &format!("clone_{label}"),
        &json!({
            "mode": "clone",
            "label": label,
            "url": u,
            "packs": keys.len(),
            "pack_bytes": bytes,
            "checked": checked,
            "rows": rows,
            "clone_median_s": clone,
            "clone_mb_per_s": mb_s(bytes, clone),
            "get_to_file_median_s": file,
            "get_to_file_mb_per_s": mb_s(bytes, file),
            "get_to_file_then_fsync_median_s": col("get_to_file", "then_fsync_s"),
            "get_to_file_synced_mb_per_s": mb_s(bytes, file + col("get_to_file", "then_fsync_s")),
            "get_to_memory_median_s": mem,
            "get_to_memory_mb_per_s": mb_s(bytes, mem),
            "curl_to_file_mb_per_s": mb_s(bytes, col("curl_to_file", "s")),
            "curl_to_null_mb_per_s": mb_s(bytes, col("curl_to_null", "s")),
            "clone_over_get_to_file": file / clone,
            "clone_over_get_to_memory": mem / clone,
            "receive_alone_median_s": median(&receive_s),
            "receive_alone_mb_per_s": mb_s(bytes, median(&receive_s)),
            "clone_client_cpu_median_s": col("sydra_clone", "client_cpu_user_s")
                + col("sydra_clone", "client_cpu_sys_s"),
            "clone_server_cpu_median_s": col("sydra_clone", "server_cpu_s"),
            "load_at_end": loadavg(),
        }),
    );
}

// ---------------------------------------------------------------- slow link

/// One direction of a link of `rate` bytes/s shared by every connection:
/// each chunk waits for its slot.
struct Pace {
    rate: f64,
    next: Mutex<Instant>,
}

impl Pace {
    fn take(&self, n: usize) {
        let until = {
            let mut next = self.next.lock().unwrap();
            let now = Instant::now();
            if *next < now {
                *next = now;
            }
            *next += Duration::from_secs_f64(n as f64 / self.rate);
            *next
        };
        let now = Instant::now();
        if until > now {
            std::thread::sleep(until - now);
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, pace: Arc<Pace>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    pace.take(n);
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// A TCP proxy on loopback in front of `upstream` that paces both
/// directions to `rate` bytes/s (a slow link); lives until the process
/// exits.
fn slow_proxy(upstream: SocketAddr, rate: f64) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let pace = || {
        Arc::new(Pace {
            rate,
            next: Mutex::new(Instant::now()),
        })
    };
    let (up, down) = (pace(), pace());
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let Ok(s) = TcpStream::connect(upstream) else {
                continue;
            };
            pump(c.try_clone().unwrap(), s.try_clone().unwrap(), up.clone());
            pump(s, c, down.clone());
        }
    });
    addr
}

fn mode_slowlink(a: &Args) {
    let store = a.path("store");
    let bucket = a.req("bucket").to_owned();
    let prefix = a.req("prefix").to_owned();
    let rate_mb: f64 = a.get("mb-per-s", 1.0);
    let timeout = a.opt("aws-timeout").map(str::to_owned);
    let label = a
        .opt("label")
        .map(str::to_owned)
        .unwrap_or_else(|| prefix.clone());
    let server = Server::from_args(a);
    let plain = Plain::new(&bucket);
    plain.delete_prefix(&prefix);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let upstream: SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("AWS_ENDPOINT_URL is http://IP:PORT");
    let proxy = slow_proxy(upstream, rate_mb * 1e6);
    let tips: Vec<ObjectId> = heads(&store).values().copied().collect();
    let (_, transfer_bytes) = send_alone(&store, &tips, &[]);
    let mut cmd = sydra();
    cmd.args(["--dir", store.to_str().unwrap(), "push"])
        .arg(url(&bucket, &prefix))
        .arg("--json")
        .env("AWS_ENDPOINT_URL", format!("http://{proxy}"));
    if let Some(t) = &timeout {
        cmd.env("AWS_TIMEOUT", t);
    }
    let multipart_over: u64 = a.get("multipart-over", 64 << 20);
    cmd.env("SYDRA_S3_MULTIPART_OVER", multipart_over.to_string());
    let m = server.mark();
    let t = Instant::now();
    let out = cmd.output().unwrap();
    let wall = t.elapsed().as_secs_f64();
    let (_, kinds) = server.since(&m);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    emit(
        &format!("slowlink_{label}"),
        &json!({
            "mode": "slowlink",
            "label": label,
            "link_mb_per_s": rate_mb,
            "aws_timeout": timeout,
            "transfer_bytes": transfer_bytes,
            "multipart": transfer_bytes > multipart_over,
            "succeeded": out.status.success(),
            "push_s": wall,
            "error": stderr.trim(),
            "server_requests": total(&kinds),
            "server_requests_by_kind": kinds,
            "load_at_end": loadavg(),
        }),
    );
}

// ---------------------------------------------------------------- replica

/// Run `cmd` (a `sydra query … --stats`), timed: stdout, stderr, seconds.
fn query_run(cmd: &mut Command) -> (String, String, f64) {
    let t = Instant::now();
    let out = run(cmd);
    let secs = t.elapsed().as_secs_f64();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        secs,
    )
}

/// The number before `after` on the line of `err` that holds `line`.
fn number_before(err: &str, line: &str, after: &str) -> u64 {
    let l = err
        .lines()
        .find(|l| l.contains(line))
        .unwrap_or_else(|| panic!("no {line:?} line in {err}"));
    let at = l
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} in {l}"));
    l[..at]
        .split_whitespace()
        .last()
        .unwrap()
        .trim_start_matches('(')
        .parse()
        .unwrap()
}

fn mode_replica(a: &Args) {
    let store = a.path("store");
    let bucket = a.req("bucket").to_owned();
    let prefix = a.req("prefix").to_owned();
    let reps: usize = a.get("reps", 5);
    let series: u64 = a.get("series-index", 7);
    let server = Server::from_args(a);
    let scratch = a.path("scratch");
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).unwrap();
    let d = store.to_str().unwrap();
    let u = url(&bucket, &prefix);

    let (pushed, push_s, _) = sydra_json(sydra().args(["--dir", d, "push", &u, "--json"]));

    // One series, its last day of data.
    let key = sydra_benches::synth::Writer::key(series);
    let last = {
        let e = sydra_engine::Engine::open(&store, sydra_benches::synth::engine_options()).unwrap();
        let v = e.view(Some("main")).unwrap();
        v.points(&key)
            .unwrap()
            .last()
            .expect("the series has points")
            .0
    };
    let (from, to) = (last - 86_400_000_000_000 + 1, last);
    let mut sel = format!("{}{{", key.measurement());
    for (k, v) in key.tags() {
        sel.push_str(&format!("{k}=\"{v}\","));
    }
    sel.push_str(&format!("_field=\"{}\"}}", key.field()));
    let (from_s, to_s) = (format!("{from}ns"), format!("{to}ns"));
    let cache = scratch.join("cache");
    let c = cache.to_str().unwrap().to_owned();
    // `sydra [--dir D] query SEL --from --to --format csv --stats EXTRA`.
    let query = |extra: &[&str]| {
        let mut cmd = sydra();
        cmd.args(["--dir", d, "query", &sel, "--from", &from_s, "--to", &to_s])
            .args(["--format", "csv", "--stats"])
            .args(extra);
        cmd
    };
    let replica_cmd = || query(&["--remote", &u, "--cache", &c]);
    let local_cmd = |asof: bool| query(if asof { &["--as-of", "main"] } else { &[] });

    // Cold: an empty cache.
    syncfs(&store);
    let m = server.mark();
    let (cold_out, cold_err, cold_s) = query_run(&mut replica_cmd());
    let (cold_server_cpu, kinds) = server.since(&m);
    let (local_out, local_err, _) = query_run(&mut local_cmd(true));
    assert_eq!(cold_out, local_out, "the replica answers differently");
    let rows = cold_out.lines().count() as u64 - 1;
    let cold = json!({
        "s": cold_s,
        "requests": number_before(&cold_err, "replica:", " request(s)"),
        "server_requests": total(&kinds),
        "server_requests_by_kind": kinds,
        "bytes": number_before(&cold_err, "replica:", " byte(s) downloaded"),
        "objects": number_before(&cold_err, "replica:", " object(s)"),
        "wal_ranges": number_before(&cold_err, "replica:", " WAL range(s)"),
        "segments_decoded": number_before(&cold_err, "segments:", " decoded"),
        "segments_pruned": number_before(&cold_err, "segments:", " pruned"),
        "server_cpu_s": cold_server_cpu,
    });
    eprintln!("cold {cold}");
    let _ = local_err;

    // Warm: the same query again, beside the same query on the local
    // store (live, and as of main as the replica reads).
    let (mut warm, mut live, mut asof, mut warm_requests) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let (o, e, s) = query_run(&mut replica_cmd());
        assert_eq!(o, local_out);
        warm.push(s);
        warm_requests.push(number_before(&e, "replica:", " request(s)"));
        let (o, _, s) = query_run(&mut local_cmd(false));
        assert_eq!(o.lines().count(), local_out.lines().count());
        live.push(s);
        let (_, _, s) = query_run(&mut local_cmd(true));
        asof.push(s);
    }
    let (w, l, x) = (median(&warm), median(&live), median(&asof));
    emit(
        "replica",
        &json!({
            "mode": "replica",
            "store": store.display().to_string(),
            "store_bytes": du(&store),
            "url": u,
            "pushed_bytes": pushed["bytes"],
            "push_s": push_s,
            "selector": sel,
            "from_ns": from,
            "to_ns": to,
            "rows": rows,
            "cold": cold,
            "warm_s": warm,
            "warm_requests": warm_requests,
            "local_live_s": live,
            "local_asof_s": asof,
            "warm_median_s": w,
            "local_live_median_s": l,
            "local_asof_median_s": x,
            "warm_over_local_live": w / l,
            "warm_over_local_asof": w / x,
            "cache_bytes": du(&cache),
            "load_at_end": loadavg(),
        }),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args.first() else {
        eprintln!("usage: s3_bench requests|push|stage|clone|slowlink|replica [--NAME VALUE]...");
        std::process::exit(2);
    };
    let a = Args::parse(&args[1..]);
    match mode.as_str() {
        "requests" => mode_requests(&a),
        "push" => mode_push(&a),
        "stage" => mode_stage(&a),
        "clone" => mode_clone(&a),
        "slowlink" => mode_slowlink(&a),
        "replica" => mode_replica(&a),
        m => {
            eprintln!("unknown mode {m}");
            std::process::exit(2);
        }
    }
}
