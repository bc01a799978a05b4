//! `sydra serve`: a data directory over HTTP/1.1 for fetch, clone and push
//! (docs/OPERATIONS.md, "Serving over HTTP"; the wire format is
//! docs/FORMAT.md §21).
//!
//! Endpoints:
//! - `GET /api/v1/health`: `ok`.
//! - `GET /api/v1/refs`: `{"refs": [{"name", "id"}]}`, every ref under
//!   `refs/` but `refs/remotes/`.
//! - `POST /api/v1/fetch` with `{"wants": [id], "haves": [id]}`: a transfer
//!   file holding what a store with `haves` lacks to hold `wants`.
//! - `GET /api/v1/push`: 200 when the caller may push (token, not
//!   read-only), else 401 or 403; clients ask before sending a pack.
//! - `POST /api/v1/push[?force=1]`: a u32 LE length, that many bytes of
//!   `{"updates": [{"name", "old", "new"}]}`, then a transfer file. Needs
//!   the bearer token when one is configured; refused by a read-only
//!   server. Answers `{"refs": [{"name", "status", "reason"}]}`.
//! - `GET /objects/<id>`: the ADR's diagnostic endpoint: trees and commits
//!   as JSON, blobs raw.
//!
//! Time series (`tsdb.rs`; not on a read-only server, which opens no
//! engine):
//! - `POST /api/v1/write`: Prometheus remote write (snappy protobuf).
//! - `POST /api/v1/read`: Prometheus remote read (`SAMPLES`).
//! - `POST /write?db=&precision=`: the InfluxDB 1.x write API (line
//!   protocol, gzip accepted; `db` kept as the tag `db`); `GET /ping`,
//!   and `POST /query` for `CREATE DATABASE` only.
//! - `GET /api/v1/query?selector=&from=&to=&as_of=&step=&agg=`: `sydra
//!   query` as JSON; `GET /api/v1/series?selector=&as_of=`.
//!
//! A read-only server takes no lock, so the engine of the directory keeps
//! ingesting while it serves; one that accepts writes opens the engine
//! (which holds the writer lock, `LOCK`, for the server's lifetime),
//! ingests through it, and compacts in a background thread. Request bodies are
//! bounded (a JSON body to 4 MiB, a push to `max_push_bytes`, spooled to a
//! temp file, never held in memory); at most 16 requests run at once (the
//! rest get 503). Malformed, truncated, oversized and hostile requests get
//! a 4xx and change nothing.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use sydra_objects::{Kind, ObjectId};
use tiny_http::{Header, Method, Request, Response, StatusCode};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::remote::{self, Outcome};
use crate::repo::Repository;

pub mod chunks;
pub mod prompb;
mod tsdb;

pub use tsdb::{MAX_DECODED_BYTES, MAX_READ_SAMPLES, MAX_WRITE_BYTES};

/// The most bytes of a JSON request body.
pub const MAX_JSON_BYTES: u64 = 4 << 20;
/// Requests served at once.
pub const MAX_CONCURRENT: usize = 16;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen (default `127.0.0.1:8787`; port 0 picks one).
    pub listen: String,
    /// Refuse pushes, take no lock.
    pub read_only: bool,
    /// The bearer token pushes must present.
    pub token: Option<String>,
    /// The largest push accepted, in bytes.
    pub max_push_bytes: u64,
    /// The engine's settings (a server that is not read-only opens one).
    /// Its WAL's sync mode decides what a 2xx to a write promises: the
    /// default, `SyncMode::Always`, answers once the points are durable.
    pub engine: crate::engine::Options,
    /// How often the background thread looks for a compaction to run
    /// (`Engine::maintain`); it also runs when a write finds the head over
    /// its bound.
    pub maintain_every: std::time::Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: "127.0.0.1:8787".into(),
            read_only: false,
            token: None,
            max_push_bytes: 16 << 30,
            engine: crate::engine::Options::default(),
            maintain_every: std::time::Duration::from_secs(10),
        }
    }
}

/// A running server.
pub struct Server {
    http: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
    ctx: Arc<Ctx>,
    maintenance: Option<std::thread::JoinHandle<()>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Block until the server stops (it runs until the process ends).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stop accepting, end the accept loop and the compaction thread, wait
    /// for the requests in progress to be answered, and close the engine
    /// (its lock is free when this returns).
    pub fn stop(mut self) {
        self.http.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        {
            let mut stop = self.ctx.maintenance.0.lock();
            stop.stop = true;
            self.ctx.maintenance.1.notify_all();
        }
        if let Some(t) = self.maintenance.take() {
            let _ = t.join();
        }
        // The accept loop has ended and dropped the queue's sender, so the
        // workers end once their request is answered; joined, so the
        // engine (and its lock) is released when `stop` returns.
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }

    /// The engine a server that is not read-only opened (held for reading:
    /// while the guard lives, the server cannot reopen it after a failure).
    pub fn engine(&self) -> Option<EngineGuard<'_>> {
        self.ctx.engine().ok()
    }
}

/// What the compaction thread is told.
#[derive(Default)]
struct Maintenance {
    stop: bool,
    wake: bool,
}

/// The server's engine, borrowed for one request.
pub type EngineGuard<'a> = parking_lot::MappedRwLockReadGuard<'a, Engine>;

struct Ctx {
    repo: Repository,
    dir: PathBuf,
    /// `None` when read-only, or while closed after a failure (see
    /// [`Ctx::recover`]).
    engine: parking_lot::RwLock<Option<Engine>>,
    /// Why the engine is closed, while it is.
    closed: parking_lot::Mutex<Option<String>>,
    options: ServeOptions,
    running: AtomicUsize,
    maintenance: (parking_lot::Mutex<Maintenance>, parking_lot::Condvar),
}

impl Ctx {
    /// Ask the compaction thread to look now.
    fn wake_maintenance(&self) {
        self.maintenance.0.lock().wake = true;
        self.maintenance.1.notify_all();
    }

    /// After a write: wake the compactor when the head is past its bound.
    fn note_write(&self, e: &Engine) {
        if e.head_bytes() > e.options().series_head_max_bytes {
            self.wake_maintenance();
        }
    }

    /// The engine, for one request: 501 on a read-only server (which opens
    /// none), 503 while it is closed after a failure.
    fn engine(&self) -> std::result::Result<EngineGuard<'_>, Reject> {
        if self.options.read_only {
            return Err(Reject(
                501,
                "this server is read-only and opened no engine (it takes no lock, so the \
                 directory's own engine may run beside it): time-series reads and writes \
                 need `sydra serve` without --read-only"
                    .into(),
            ));
        }
        parking_lot::RwLockReadGuard::try_map(self.engine.read(), Option::as_ref).map_err(|_| {
            let why = self.closed.lock().clone().unwrap_or_default();
            Reject(
                503,
                format!(
                    "the engine is closed after a failure ({why}); it is being reopened, retry"
                ),
            )
        })
    }

    /// Whether the engine needs [`Ctx::recover`]: poisoned by a failed
    /// write or sync (a full disk, an I/O error), or closed.
    fn needs_recovery(&self) -> bool {
        !self.options.read_only
            && match &*self.engine.read() {
                Some(e) => e.poisoned().is_some(),
                None => true,
            }
    }

    /// Close a poisoned engine and open it again: the WAL is recovered and
    /// the head rebuilt from it, as after a crash, so every acknowledged
    /// point is there and writes resume once the cause (say, a full disk)
    /// is gone. If the open fails the engine stays closed (writes get 503)
    /// and the compaction thread tries again at its next turn. Waits for
    /// the requests using the engine to finish.
    fn recover(&self) {
        let mut slot = self.engine.write();
        let why = match &*slot {
            Some(e) => match e.poisoned() {
                Some(why) => why,
                None => return,
            },
            None => self.closed.lock().clone().unwrap_or_default(),
        };
        // The old engine goes first: it holds the directory's lock.
        *slot = None;
        match Engine::open(&self.dir, self.options.engine.clone()) {
            Ok(e) => {
                eprintln!("sydra serve: reopened the engine after: {why}");
                *slot = Some(e);
                *self.closed.lock() = None;
            }
            Err(e) => {
                eprintln!("sydra serve: cannot reopen the engine (retried): {e}");
                *self.closed.lock() = Some(format!("{why}; reopening failed: {e}"));
            }
        }
    }
}

/// The compaction thread: `Engine::maintain` every `maintain_every`, or
/// when woken, until the server stops. A failure is reported on standard
/// error and retried at the next turn (the data stays in the WAL and the
/// head).
fn maintain_loop(ctx: &Ctx) {
    loop {
        {
            let mut m = ctx.maintenance.0.lock();
            if !m.stop && !m.wake {
                ctx.maintenance
                    .1
                    .wait_for(&mut m, ctx.options.maintain_every);
            }
            if m.stop {
                return;
            }
            m.wake = false;
        }
        if ctx.needs_recovery() {
            ctx.recover();
        }
        let failed = match ctx.engine() {
            Ok(engine) => engine.maintain().err(),
            Err(_) => None,
        };
        if let Some(e) = failed {
            eprintln!("sydra serve: compaction failed (retried later): {e}");
        }
    }
}

/// Serve the data directory `dir` until the returned server is stopped.
pub fn start(dir: &Path, options: ServeOptions) -> Result<Server> {
    let (repo, engine) = if options.read_only {
        (Repository::open(dir)?, None)
    } else {
        let engine = Engine::open(dir, options.engine.clone())?;
        (engine.repo().clone(), Some(engine))
    };
    let listen_err = |e: &dyn std::fmt::Display| Error::Remote {
        remote: options.listen.clone(),
        reason: format!("cannot listen: {e}"),
    };
    let listener =
        std::net::TcpListener::bind(options.listen.as_str()).map_err(|e| listen_err(&e))?;
    // Answers go out as written: tiny_http writes a response's head and
    // body separately, and with Nagle's algorithm the body waits for the
    // client's delayed ACK (about 40 ms on a kept-alive connection).
    // Accepted connections inherit TCP_NODELAY from the listening socket.
    rustix::net::sockopt::set_tcp_nodelay(&listener, true).map_err(|e| listen_err(&e))?;
    let http = tiny_http::Server::from_listener(listener, None).map_err(|e| listen_err(&e))?;
    let addr = http.server_addr().to_ip().ok_or_else(|| Error::Remote {
        remote: options.listen.clone(),
        reason: "not an IP address".into(),
    })?;
    let http = Arc::new(http);
    let ctx = Arc::new(Ctx {
        repo,
        dir: dir.to_path_buf(),
        engine: parking_lot::RwLock::new(engine),
        closed: parking_lot::Mutex::new(None),
        options,
        running: AtomicUsize::new(0),
        maintenance: Default::default(),
    });
    let maintenance = (!ctx.options.read_only).then(|| {
        let c = ctx.clone();
        std::thread::spawn(move || maintain_loop(&c))
    });
    // A fixed pool of MAX_CONCURRENT workers (no thread started per
    // request); the accept loop answers 503 when every one is busy.
    let (work, queue) = std::sync::mpsc::sync_channel::<Request>(MAX_CONCURRENT);
    let queue = Arc::new(parking_lot::Mutex::new(queue));
    let mut workers = Vec::with_capacity(MAX_CONCURRENT);
    for _ in 0..MAX_CONCURRENT {
        let (c, q) = (ctx.clone(), queue.clone());
        workers.push(std::thread::spawn(move || {
            loop {
                let next = q.lock().recv();
                let Ok(req) = next else { return };
                handle(&c, req);
                c.running.fetch_sub(1, Ordering::SeqCst);
            }
        }));
    }
    let accept = http.clone();
    let accept_ctx = ctx.clone();
    let thread = std::thread::spawn(move || {
        let ctx = accept_ctx;
        for req in accept.incoming_requests() {
            if ctx.running.fetch_add(1, Ordering::SeqCst) >= MAX_CONCURRENT {
                ctx.running.fetch_sub(1, Ordering::SeqCst);
                let _ = req.respond(text(503, "busy: too many requests at once; retry"));
                continue;
            }
            if work.send(req).is_err() {
                return;
            }
        }
        // Dropping `work` ends the workers once the queue is drained.
    });
    Ok(Server {
        http,
        addr,
        thread: Some(thread),
        ctx,
        maintenance,
        workers,
    })
}

type Resp = Response<Box<dyn Read + Send>>;

fn boxed<R: Read + Send + 'static>(r: Response<R>) -> Resp {
    r.boxed()
}

fn header(k: &str, v: &str) -> Header {
    Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap_or_else(|()| {
        Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).unwrap_or_else(|()| unreachable_header())
    })
}

#[allow(clippy::unwrap_used)]
fn unreachable_header() -> Header {
    // A constant, valid header.
    "X-Sydra: 1".parse().unwrap()
}

fn text(code: u16, msg: &str) -> Resp {
    boxed(
        Response::from_string(format!("{msg}\n"))
            .with_status_code(StatusCode(code))
            .with_header(header("Content-Type", "text/plain; charset=utf-8")),
    )
}

fn json_resp(code: u16, v: &Value) -> Resp {
    boxed(
        Response::from_string(v.to_string())
            .with_status_code(StatusCode(code))
            .with_header(header("Content-Type", "application/json")),
    )
}

/// An error answer: status and one sentence.
struct Reject(u16, String);

impl From<Error> for Reject {
    fn from(e: Error) -> Self {
        Reject(500, e.to_string())
    }
}

fn handle(ctx: &Arc<Ctx>, mut req: Request) {
    let url = req.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let method = req.method().clone();
    let result: std::result::Result<Reply, Reject> = match (&method, path) {
        (Method::Get, "/api/v1/health") => Ok(text(200, "ok").into()),
        (Method::Get, "/api/v1/refs") => refs(ctx).map(Reply::from),
        (Method::Post, "/api/v1/fetch") => fetch(ctx, &mut req),
        (Method::Post, "/api/v1/push") => push(ctx, &mut req, query).map(Reply::from),
        // A client asks before it sends a large body it may not push.
        (Method::Get, "/api/v1/push") => may_push(ctx, &req).map(|()| text(200, "ok").into()),
        (Method::Get, p) if p.starts_with("/objects/") => {
            object(ctx, &p["/objects/".len()..]).map(Reply::from)
        }
        (Method::Post, "/api/v1/write") => tsdb::prom_write(ctx, &mut req).map(Reply::from),
        (Method::Post, "/api/v1/read") => tsdb::prom_read(ctx, &mut req).map(Reply::Bytes),
        (Method::Post, "/write") => Ok(tsdb::influx_write(ctx, &mut req, query).into()),
        (Method::Post | Method::Get, "/query") => {
            Ok(tsdb::influx_query(ctx, &mut req, query).into())
        }
        (Method::Get | Method::Head, "/ping") => Ok(tsdb::ping().into()),
        (Method::Get, "/api/v1/query") => tsdb::query(ctx, query),
        (Method::Get, "/api/v1/series") => tsdb::series(ctx, query).map(Reply::from),
        (
            _,
            "/api/v1/health" | "/api/v1/refs" | "/api/v1/fetch" | "/api/v1/push" | "/api/v1/write"
            | "/api/v1/read" | "/write" | "/api/v1/query" | "/api/v1/series",
        ) => Err(Reject(405, format!("{method} is not allowed on {path}"))),
        _ => Err(Reject(404, format!("no such endpoint: {path}"))),
    };
    let resp = match result {
        Ok(Reply::Whole(r)) => r,
        Ok(Reply::Streamed(body)) => return body.send(req),
        Ok(Reply::Bytes(body)) => return body.send(req),
        Err(Reject(code, msg)) => text(code, &msg),
    };
    // A write that failed may have poisoned the engine: reopen it before
    // answering, so the client's retry finds a working engine once the
    // cause is gone.
    if resp.status_code().0 >= 500 && ctx.needs_recovery() {
        ctx.recover();
    }
    let _ = req.respond(resp);
}

fn refs(ctx: &Ctx) -> std::result::Result<Resp, Reject> {
    let list: Vec<Value> = ctx
        .repo
        .refs()
        .list("refs/")
        .map_err(Error::from)?
        .into_iter()
        .filter(|(n, _)| !n.as_str().starts_with("refs/remotes/"))
        .filter_map(|(n, t)| {
            t.object()
                .map(|id| json!({"name": n.as_str(), "id": id.to_hex()}))
        })
        .collect();
    Ok(json_resp(200, &json!({ "refs": list })))
}

/// A request body of at most `limit` bytes (413 past it).
fn read_body(req: &mut Request, limit: u64) -> std::result::Result<Vec<u8>, Reject> {
    let over = || Reject(413, format!("the body is over {limit} bytes"));
    if req.body_length().is_some_and(|n| n as u64 > limit) {
        return Err(over());
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| Reject(400, format!("cannot read the body: {e}")))?;
    if body.len() as u64 > limit {
        return Err(over());
    }
    Ok(body)
}

fn read_json(req: &mut Request) -> std::result::Result<Value, Reject> {
    let body = read_body(req, MAX_JSON_BYTES)?;
    serde_json::from_slice(&body).map_err(|e| Reject(400, format!("the body is not JSON: {e}")))
}

fn ids(v: &Value, key: &str) -> std::result::Result<Vec<ObjectId>, Reject> {
    let Some(list) = v.get(key) else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| Reject(400, format!("{key} is not a list")))?;
    list.iter()
        .map(|x| {
            x.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Reject(400, format!("{key} holds {x}, not an object id")))
        })
        .collect()
}

fn fetch(ctx: &Ctx, req: &mut Request) -> std::result::Result<Reply, Reject> {
    let v = read_json(req)?;
    let wants = ids(&v, "wants")?;
    let haves = ids(&v, "haves")?;
    if wants.is_empty() {
        return Err(Reject(400, "nothing wanted".into()));
    }
    if wants.len() > 100_000 || haves.len() > 100_000 {
        return Err(Reject(413, "too many ids".into()));
    }
    for w in &wants {
        if !ctx.repo.objects().contains(w).map_err(Error::from)? {
            return Err(Reject(404, format!("object {w} is not here")));
        }
    }
    let have = remote::commits_from(&ctx.repo, &haves)?;
    // Streamed: a thread writes the transfer into a pipe as it reads the
    // objects, and the response sends what arrives (chunked), so the first
    // byte leaves at once and nothing is spooled. A failure part way ends
    // the stream before its trailer, which the client refuses.
    let repo = ctx.repo.clone();
    streamed("application/octet-stream", move |writer| {
        let mut out = Counting(0, io::BufWriter::with_capacity(1 << 20, writer));
        let label = PathBuf::from("(fetch response)");
        let sent = remote::send_to(
            &repo,
            &wants,
            &have,
            &|id| Ok(have.contains(id)),
            None,
            &mut out,
            &label,
        );
        // A failure before the first byte: the answer carries the reason
        // instead of a transfer (docs/FORMAT.md §21), so the client can
        // say why.
        if let Err(e) = sent
            && out.0 == 0
        {
            let _ = out.1.write_all(&remote::TRANSFER_ERROR_MAGIC);
            let _ = out.1.write_all(e.to_string().as_bytes());
            let _ = out.1.flush();
        }
    })
}

/// What a handler answers: a whole response, or a 200 whose body is
/// written as it is produced.
enum Reply {
    Whole(Resp),
    Streamed(Streamed),
    Bytes(Bytes),
}

/// A 200 whose body is in memory, sent with its head in one write: a
/// `Response` goes out through tiny_http's copy loop in pieces of 8 KiB,
/// each its own segment on a connection without Nagle's delay, which a
/// client waits through.
pub(super) struct Bytes {
    pub(super) headers: &'static [(&'static str, &'static str)],
    pub(super) body: Vec<u8>,
}

impl Bytes {
    fn send(self, req: Request) {
        if req.http_version() != &tiny_http::HTTPVersion(1, 1) {
            let mut r = Response::from_data(self.body);
            for (k, v) in self.headers {
                r.add_header(header(k, v));
            }
            let _ = req.respond(r);
            return;
        }
        let mut out = Vec::with_capacity(self.body.len() + 256);
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        for (k, v) in self.headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        let mut conn = req.into_writer();
        let _ = conn.write_all(&out).and_then(|()| conn.flush());
    }
}

impl From<Resp> for Reply {
    fn from(r: Resp) -> Reply {
        Reply::Whole(r)
    }
}

/// A 200 whose body a producer writes as it goes: the first byte leaves at
/// once and nothing is spooled. A failure part way ends the body early
/// (each streamed format has an end its reader checks for).
struct Streamed {
    content_type: &'static str,
    produce: Producer,
}

/// Writes a streamed body.
type Producer = Box<dyn FnOnce(&mut dyn Write) + Send>;

fn streamed(
    content_type: &'static str,
    produce: impl FnOnce(&mut dyn Write) + Send + 'static,
) -> std::result::Result<Reply, Reject> {
    Ok(Reply::Streamed(Streamed {
        content_type,
        produce: Box::new(produce),
    }))
}

impl Streamed {
    /// Send it. Over HTTP/1.1 the producer writes on this thread straight
    /// into the connection, in chunks of what it writes at once (its own
    /// buffer's size). An HTTP/1.0 client, which knows no chunks, gets the
    /// body through a pipe from a thread of its own, the connection closed
    /// at its end.
    fn send(self, req: Request) {
        if req.http_version() == &tiny_http::HTTPVersion(1, 0) {
            let Ok((reader, mut writer)) = io::pipe() else {
                let _ = req.respond(text(500, "cannot make a pipe"));
                return;
            };
            let produce = self.produce;
            std::thread::spawn(move || produce(&mut writer));
            let _ = req.respond(boxed(Response::new(
                StatusCode(200),
                vec![header("Content-Type", self.content_type)],
                reader,
                None,
                None,
            )));
            return;
        }
        let mut conn = req.into_writer();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
            self.content_type
        );
        if conn.write_all(head.as_bytes()).is_err() {
            return;
        }
        let mut body = Chunked(&mut conn);
        (self.produce)(&mut body);
        // The last chunk, also after a failure: the body ends cleanly and
        // its reader sees the stream cut short.
        let _ = conn.write_all(b"0\r\n\r\n").and_then(|()| conn.flush());
    }
}

/// HTTP/1.1 chunked encoding: each write is one chunk.
struct Chunked<W>(W);

impl<W: Write> Write for Chunked<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        // An empty chunk would end the body.
        if b.is_empty() {
            return Ok(0);
        }
        self.0.write_all(format!("{:x}\r\n", b.len()).as_bytes())?;
        self.0.write_all(b)?;
        self.0.write_all(b"\r\n")?;
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Whether the request carries the server's token (or none is needed):
/// `Authorization: Bearer TOKEN` (Prometheus's `authorization`), `Token
/// TOKEN` (InfluxDB clients), or Basic with the token as the password
/// (Prometheus's `basic_auth`, Telegraf's `username`/`password`).
fn authorized(ctx: &Ctx, req: &Request) -> bool {
    let Some(token) = &ctx.options.token else {
        return true;
    };
    let Some(value) = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().trim())
    else {
        return false;
    };
    let presented = if let Some(t) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("Token "))
    {
        t.trim().as_bytes().to_vec()
    } else if let Some(b) = value.strip_prefix("Basic ") {
        use base64::Engine as _;
        match base64::engine::general_purpose::STANDARD.decode(b.trim()) {
            Ok(pair) => match pair.iter().position(|&c| c == b':') {
                Some(i) => pair[i + 1..].to_vec(),
                None => return false,
            },
            Err(_) => return false,
        }
    } else {
        return false;
    };
    constant_time_eq(&presented, token.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn may_push(ctx: &Ctx, req: &Request) -> std::result::Result<(), Reject> {
    if ctx.options.read_only {
        return Err(Reject(403, "this server is read-only".into()));
    }
    if !authorized(ctx, req) {
        return Err(Reject(401, "a push needs the server's bearer token".into()));
    }
    Ok(())
}

fn push(ctx: &Ctx, req: &mut Request, query: &str) -> std::result::Result<Resp, Reject> {
    may_push(ctx, req)?;
    let force = query
        .split('&')
        .any(|kv| kv == "force=1" || kv == "force=true");
    let limit = ctx.options.max_push_bytes;
    if req.body_length().is_some_and(|n| n as u64 > limit) {
        return Err(Reject(413, format!("the push is over {limit} bytes")));
    }
    let reader = req.as_reader();
    let mut len = [0u8; 4];
    reader
        .read_exact(&mut len)
        .map_err(|e| Reject(400, format!("the push is cut short: {e}")))?;
    let hlen = u64::from(u32::from_le_bytes(len));
    if hlen > MAX_JSON_BYTES {
        return Err(Reject(413, "the push header is too long".into()));
    }
    let mut head = vec![0u8; hlen as usize];
    reader
        .read_exact(&mut head)
        .map_err(|e| Reject(400, format!("the push header is cut short: {e}")))?;
    let head: Value = serde_json::from_slice(&head)
        .map_err(|e| Reject(400, format!("the push header is not JSON: {e}")))?;
    let updates = parse_updates(&head)?;
    // Streamed into the store as it arrives: bounded memory whatever its
    // size, and each byte written once.
    let mut body = CountingReader(0, reader.take(limit + 1));
    let received = remote::receive_from(&ctx.repo, &mut body, u64::MAX, "push");
    if received.is_err() && body.0 > limit {
        return Err(Reject(413, format!("the push is over {limit} bytes")));
    }
    let (_, pinned) = match received {
        Ok(x) => x,
        Err(e @ Error::Remote { .. }) => return Err(Reject(400, e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let results = remote::apply_updates(&ctx.repo, &updates, force)?;
    drop(pinned);
    let refs: Vec<Value> = results
        .iter()
        .map(|(name, o)| {
            let (status, reason) = match o {
                Outcome::Created => ("created", None),
                Outcome::FastForward => ("fast-forward", None),
                Outcome::Forced => ("forced", None),
                Outcome::UpToDate => ("up-to-date", None),
                Outcome::Rejected(w) => ("rejected", Some(w.clone())),
            };
            json!({"name": name, "status": status, "reason": reason})
        })
        .collect();
    Ok(json_resp(200, &json!({ "refs": refs })))
}

fn parse_updates(
    v: &Value,
) -> std::result::Result<Vec<(String, Option<ObjectId>, ObjectId)>, Reject> {
    let list = v
        .get("updates")
        .and_then(Value::as_array)
        .ok_or_else(|| Reject(400, "the push header has no updates list".into()))?;
    if list.len() > 10_000 {
        return Err(Reject(413, "too many ref updates".into()));
    }
    let mut out = Vec::new();
    for u in list {
        let name = u
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Reject(400, format!("an update has no name: {u}")))?;
        let parse = |k: &str| -> std::result::Result<Option<ObjectId>, Reject> {
            match u.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .map(Some)
                    .ok_or_else(|| Reject(400, format!("{k} of {name} is not an object id"))),
            }
        };
        let old = parse("old")?;
        let new = parse("new")?.ok_or_else(|| Reject(400, format!("{name} has no new value")))?;
        out.push((name.to_owned(), old, new));
    }
    Ok(out)
}

/// A writer that counts what passes through it.
struct Counting<W>(u64, W);

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.1.write(b)?;
        self.0 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.1.flush()
    }
}

/// A reader that counts what passes through it.
struct CountingReader<R>(u64, R);

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.1.read(b)?;
        self.0 += n as u64;
        Ok(n)
    }
}

fn object(ctx: &Ctx, hex: &str) -> std::result::Result<Resp, Reject> {
    let id: ObjectId = hex
        .parse()
        .map_err(|e| Reject(400, format!("{hex:?} is not an object id: {e}")))?;
    let obj = match ctx.repo.objects().get_verified(&id) {
        Ok(o) => o,
        Err(e) if e.is_not_found() => return Err(Reject(404, format!("object {id} not found"))),
        Err(e) => return Err(Reject(500, e.to_string())),
    };
    Ok(match obj.kind {
        Kind::Blob => boxed(
            Response::from_data(obj.data.to_vec())
                .with_header(header("Content-Type", "application/octet-stream")),
        ),
        Kind::Tree => {
            let t = obj.tree().map_err(Error::from)?;
            let entries: Vec<Value> = t
                .entries
                .iter()
                .map(|e| json!({"name": e.name, "kind": e.kind.as_str(), "id": e.id.to_hex()}))
                .collect();
            json_resp(
                200,
                &json!({"id": id.to_hex(), "kind": "tree", "entries": entries}),
            )
        }
        Kind::Commit => {
            let c = obj.commit().map_err(Error::from)?;
            let meta: serde_json::Map<String, Value> = c
                .meta
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        Value::String(String::from_utf8_lossy(v).into_owned()),
                    )
                })
                .collect();
            json_resp(
                200,
                &json!({
                    "id": id.to_hex(),
                    "kind": "commit",
                    "tree": c.tree.to_hex(),
                    "parents": c.parents.iter().map(|p| p.to_hex()).collect::<Vec<_>>(),
                    "timestamp": c.timestamp,
                    "author": c.author,
                    "message": c.message,
                    "meta": meta,
                }),
            )
        }
    })
}
