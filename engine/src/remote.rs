//! Remotes: clone, fetch and push between data directories (DESIGN.md
//! §11; docs/OPERATIONS.md, "Replication").
//!
//! A transfer copies what the receiver lacks to hold the wanted commits
//! completely: the commits not reachable from any of its refs, the trees
//! and blobs that differ from their first parent's (a tree walk pruned by
//! subtree id, as the tree diff does), and the WAL ranges those commits'
//! replay reads (their chunks past `wal.applied_seq`, kept under
//! `walchunks/`, see [`crate::wal::ranges`]). Every object is read with its
//! BLAKE3 recomputed and written again through one batch, so it arrives as
//! one pack; before that pack is published, every tree and commit is
//! checked to reference only objects in the transfer or already present
//! (connectivity). Ranges are verified against their chunks and made
//! durable; only then do refs move, each by compare-and-swap. A kill at any
//! moment leaves, at worst, an unreferenced pack or range that GC collects;
//! running the command again completes the transfer.

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sydra_objects::{Durability, Kind, ObjectId, Pinned, Store};
use sydra_refs::{PreviousValue, RefName};

use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::wal::{Chunk, SegmentView, ranges};

/// The directory of remote definitions in a data directory.
pub const REMOTES_DIR: &str = "remotes";

/// Where a remote is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteUrl {
    /// Another data directory on this machine.
    Path(PathBuf),
    /// A `sydra serve` (`http://HOST:PORT`).
    Http(String),
    /// An S3-compatible bucket (`s3://BUCKET/PREFIX`).
    S3(String),
}

impl RemoteUrl {
    /// Parse a URL: `http://…`, `https://…`, `s3://…`, `file://PATH`, or a
    /// path.
    pub fn parse(s: &str) -> Result<RemoteUrl> {
        if s.is_empty() {
            return Err(remote_err(s, "an empty URL"));
        }
        Ok(if s.starts_with("http://") || s.starts_with("https://") {
            RemoteUrl::Http(s.to_owned())
        } else if s.starts_with("s3://") {
            RemoteUrl::S3(s.to_owned())
        } else if let Some(p) = s.strip_prefix("file://") {
            RemoteUrl::Path(PathBuf::from(p))
        } else {
            RemoteUrl::Path(PathBuf::from(s))
        })
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteUrl::Path(p) => write!(f, "{}", p.display()),
            RemoteUrl::Http(u) | RemoteUrl::S3(u) => f.write_str(u),
        }
    }
}

fn remote_err(remote: &str, reason: impl Into<String>) -> Error {
    Error::Remote {
        remote: remote.to_owned(),
        reason: reason.into(),
    }
}

/// Whether `name` can name a remote: 1 to 64 of `A-Z a-z 0-9 . _ -`, not
/// starting with `.` or `-`.
pub fn valid_remote_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn remotes_dir(repo: &Repository) -> PathBuf {
    repo.layout().root().join(REMOTES_DIR)
}

/// Record remote `name` at `url` (`remotes/<name>`, one line `url = …`,
/// written durably). Fails if it exists.
pub fn add_remote(repo: &Repository, name: &str, url: &str) -> Result<()> {
    if !valid_remote_name(name) {
        return Err(remote_err(
            name,
            "not a valid remote name (1 to 64 of A-Z a-z 0-9 . _ -, not starting with . or -)",
        ));
    }
    RemoteUrl::parse(url)?;
    if url.contains('\n') {
        return Err(remote_err(name, "a URL cannot contain a line break"));
    }
    let dir = remotes_dir(repo);
    match sydra_objects::fault::point("remote.mkdir").and_then(|()| fs::create_dir(&dir)) {
        Ok(()) => sync_dir(repo.layout().root())?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("create directory", &dir)(e)),
    }
    let path = dir.join(name);
    if path.exists() {
        return Err(remote_err(
            name,
            format!("already exists ({})", path.display()),
        ));
    }
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut f = fs::File::create(&tmp).map_err(Error::io("create", &tmp))?;
        sydra_objects::fault::point("remote.write")
            .and_then(|()| f.write_all(format!("url = {url}\n").as_bytes()))
            .map_err(Error::io("write", &tmp))?;
        sydra_objects::fault::point("remote.sync")
            .and_then(|()| f.sync_data())
            .map_err(Error::io("sync", &tmp))?;
        sydra_objects::fault::point("remote.rename")
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(Error::io("rename into", &path))?;
        sync_dir(&dir)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Forget remote `name` and delete its remote-tracking refs
/// (`refs/remotes/<name>/…`). Returns whether it existed.
pub fn remove_remote(repo: &Repository, name: &str) -> Result<bool> {
    let path = remotes_dir(repo).join(name);
    if !valid_remote_name(name) || !path.is_file() {
        return Ok(false);
    }
    for (r, _) in repo.refs().list(&format!("refs/remotes/{name}/"))? {
        repo.refs()
            .delete(&r, PreviousValue::Any, &format!("remote remove {name}"))?;
    }
    fs::remove_file(&path).map_err(Error::io("delete", &path))?;
    sync_dir(&remotes_dir(repo))?;
    Ok(true)
}

/// Every recorded remote: (name, URL), by name.
pub fn list_remotes(repo: &Repository) -> Result<Vec<(String, String)>> {
    let dir = remotes_dir(repo);
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", &dir)(e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(Error::io("list", &dir))?;
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !valid_remote_name(&name) {
            continue;
        }
        out.push((name.clone(), read_remote(&e.path(), &name)?));
    }
    out.sort();
    Ok(out)
}

fn read_remote(path: &Path, name: &str) -> Result<String> {
    let text = fs::read_to_string(path).map_err(Error::io("read", path))?;
    text.lines()
        .find_map(|l| l.strip_prefix("url = "))
        .map(str::to_owned)
        .ok_or_else(|| remote_err(name, format!("{} has no `url = …` line", path.display())))
}

/// A remote given by name (recorded) or URL: its name, if any, and URL.
pub fn resolve_remote(repo: &Repository, name_or_url: &str) -> Result<(Option<String>, RemoteUrl)> {
    if valid_remote_name(name_or_url) {
        let path = remotes_dir(repo).join(name_or_url);
        if path.is_file() {
            let url = read_remote(&path, name_or_url)?;
            return Ok((Some(name_or_url.to_owned()), RemoteUrl::parse(&url)?));
        }
        if name_or_url == "origin" {
            return Err(remote_err(
                name_or_url,
                "no remote named origin (`sydra remote add origin URL`, or give a URL)",
            ));
        }
    }
    let url = RemoteUrl::parse(name_or_url)?;
    if let RemoteUrl::Path(p) = &url
        && !p.join("FORMAT").is_file()
    {
        return Err(remote_err(
            name_or_url,
            "neither a recorded remote nor a sydra data directory",
        ));
    }
    Ok((None, url))
}

fn open_remote(url: &RemoteUrl) -> Result<Repository> {
    match url {
        RemoteUrl::Path(p) => Repository::open(p),
        other => Err(remote_err(
            &other.to_string(),
            "this build replicates to and from data directories (paths) only; HTTP and S3 remotes are not built yet",
        )),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    sydra_objects::fs::sync_dir(dir, || sydra_objects::fault::point("remote.dir.sync"))
        .map_err(|e| Error::Objects(e.into()))
}

/// What a transfer copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Commits copied.
    pub commits: u64,
    /// Objects copied (commits included).
    pub objects: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// WAL ranges copied.
    pub ranges: u64,
    /// Their bytes.
    pub range_bytes: u64,
    /// The pack the objects arrived in (`None`: nothing, or one loose
    /// object).
    pub pack: Option<ObjectId>,
    /// Commits whose parents the source no longer has (its retention
    /// horizon): recorded as boundaries of the receiver's horizon.
    pub shallow: Vec<ObjectId>,
}

/// How one ref fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist and now does.
    Created,
    /// Moved forward (the old value is an ancestor of the new).
    FastForward,
    /// Moved by `--force` (or a remote-tracking ref rewritten).
    Forced,
    /// Already at the value.
    UpToDate,
    /// Not moved, and why.
    Rejected(String),
}

/// One ref update of a fetch, clone or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// The ref on the sending side.
    pub from: String,
    /// The ref it updates on the receiving side.
    pub to: String,
    /// Its value before.
    pub old: Option<ObjectId>,
    /// The value sent.
    pub new: ObjectId,
    /// What happened.
    pub outcome: Outcome,
}

/// What a fetch, clone or push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sync {
    /// The remote's name (or URL).
    pub remote: String,
    /// The transfer.
    pub transfer: Transfer,
    /// The refs.
    pub updates: Vec<RefUpdate>,
}

/// Commits reachable from every ref of `repo` (commit graph only; parents
/// the store lacks, below a retention horizon, end the walk).
fn have_commits(repo: &Repository) -> Result<HashSet<ObjectId>> {
    let store = repo.objects();
    let mut have = HashSet::new();
    let mut todo: Vec<ObjectId> = repo
        .refs()
        .list("")?
        .into_iter()
        .filter_map(|(_, t)| t.object())
        .collect();
    while let Some(id) = todo.pop() {
        if have.contains(&id) {
            continue;
        }
        let obj = match store.get(&id) {
            Ok(o) => o,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        if obj.kind != Kind::Commit {
            continue;
        }
        have.insert(id);
        todo.extend(obj.commit()?.parents.iter().copied());
    }
    Ok(have)
}

/// Whether `ancestor` is `id` or reachable from it through parents, in
/// `store`.
fn is_ancestor(store: &Store, ancestor: ObjectId, id: ObjectId) -> Result<bool> {
    let mut seen = HashSet::new();
    let mut todo = vec![id];
    while let Some(c) = todo.pop() {
        if c == ancestor {
            return Ok(true);
        }
        if !seen.insert(c) {
            continue;
        }
        match store.get(&c) {
            Ok(o) if o.kind == Kind::Commit => todo.extend(o.commit()?.parents.iter().copied()),
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// The objects `dst` lacks to hold `tips` completely, read from `src`:
/// commits newest first, then trees and blobs; and the commits whose
/// parents `src` lacks.
struct Plan {
    commits: Vec<ObjectId>,
    objects: Vec<ObjectId>,
    shallow: Vec<ObjectId>,
}

fn plan(
    src: &Store,
    has: &dyn Fn(&ObjectId) -> Result<bool>,
    tips: &[ObjectId],
    have: &HashSet<ObjectId>,
) -> Result<Plan> {
    let mut p = Plan {
        commits: Vec::new(),
        objects: Vec::new(),
        shallow: Vec::new(),
    };
    let mut queued: HashSet<ObjectId> = HashSet::new();
    let mut todo: VecDeque<ObjectId> = tips.iter().copied().filter(|t| !have.contains(t)).collect();
    let mut seen_commits = HashSet::new();
    while let Some(c) = todo.pop_front() {
        if !seen_commits.insert(c) {
            continue;
        }
        let obj = src.get_verified(&c)?;
        obj.expect(Kind::Commit)?;
        let commit = obj.commit()?;
        if !has(&c)? {
            p.commits.push(c);
        }
        let mut base = None;
        for (i, parent) in commit.parents.iter().enumerate() {
            if !src.contains(parent)? {
                if i == 0 {
                    p.shallow.push(c);
                }
                continue;
            }
            if i == 0 {
                base = Some(src.get(parent)?.commit()?.tree);
            }
            if !have.contains(parent) {
                todo.push_back(*parent);
            }
        }
        walk_tree(src, has, commit.tree, base, &mut queued, &mut p.objects)?;
    }
    Ok(p)
}

/// Add what `dst` lacks of tree `t` to `out`, skipping every subtree equal
/// to the one at the same path in `base` (the first parent's: complete on
/// the receiver, or part of this transfer).
fn walk_tree(
    src: &Store,
    has: &dyn Fn(&ObjectId) -> Result<bool>,
    t: ObjectId,
    base: Option<ObjectId>,
    queued: &mut HashSet<ObjectId>,
    out: &mut Vec<ObjectId>,
) -> Result<()> {
    let mut stack = vec![(t, base)];
    while let Some((t, base)) = stack.pop() {
        if Some(t) == base || !queued.insert(t) {
            continue;
        }
        if !has(&t)? {
            out.push(t);
        }
        let obj = src.get(&t)?;
        let tree = obj.tree()?;
        let base_obj = match base {
            Some(b) => Some(src.get(&b)?),
            None => None,
        };
        let base_tree = match &base_obj {
            Some(o) if o.kind == Kind::Tree => Some(o.tree()?),
            _ => None,
        };
        for e in &tree.entries {
            let old = base_tree
                .as_ref()
                .and_then(|b| b.find(e.name))
                .map(|b| (b.kind, b.id));
            if old == Some((e.kind, e.id)) {
                continue;
            }
            match e.kind {
                Kind::Tree => {
                    let old_tree = old.filter(|(k, _)| *k == Kind::Tree).map(|(_, id)| id);
                    stack.push((e.id, old_tree));
                }
                _ => {
                    if queued.insert(e.id) && !has(&e.id)? {
                        out.push(e.id);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Read chunk `id`'s range from `wal_dir`'s store: a stored range, or the
/// local segment (verified). Returns the segment header and the bytes.
fn read_range(wal_dir: &Path, id: &ObjectId, chunk: &Chunk) -> Result<(Vec<u8>, Vec<u8>)> {
    if let Some(r) = ranges::open(wal_dir, id, chunk)? {
        return Ok((r.bytes()[..16].to_vec(), r.range().to_vec()));
    }
    let view = SegmentView::open(wal_dir, chunk.segment)?;
    let bytes = view.bytes();
    let (s, e) = (chunk.start as usize, chunk.end as usize);
    if s >= e || e > bytes.len() {
        return Err(Error::ChunkMismatch {
            chunk: *id,
            path: view.path.clone(),
            reason: format!("range {s}..{e} is outside the {}-byte segment", bytes.len()),
        });
    }
    chunk
        .verify(&bytes[s..e])
        .map_err(|reason| Error::ChunkMismatch {
            chunk: *id,
            path: view.path.clone(),
            reason,
        })?;
    Ok((bytes[..16].to_vec(), bytes[s..e].to_vec()))
}

/// Whether `wal_dir`'s store can replay chunk `id` already: a stored
/// range, or a local segment holding exactly its bytes.
fn has_range(wal_dir: &Path, id: &ObjectId, chunk: &Chunk) -> bool {
    if ranges::exists(wal_dir, id) {
        return true;
    }
    let Ok(view) = SegmentView::open(wal_dir, chunk.segment) else {
        return false;
    };
    let bytes = view.bytes();
    let (s, e) = (chunk.start as usize, chunk.end as usize);
    s < e && e <= bytes.len() && chunk.verify(&bytes[s..e]).is_ok()
}

/// Copy into `dst` everything it needs to hold `tips` completely (see the
/// module docs), through the same transfer file the HTTP transport sends.
/// The returned pins keep the new objects from a GC of this process until
/// the caller has moved its refs.
fn transfer(
    src: &Repository,
    dst: &Repository,
    tips: &[ObjectId],
    remote: &str,
) -> Result<(Transfer, Option<Pinned>)> {
    let have = have_commits(dst)?;
    let file = send(
        src,
        tips,
        &have,
        &|id| Ok(dst.objects().contains(id)?),
        dst.objects(),
    )?;
    receive(dst, &file, remote)
}

/// Magic of a transfer file.
pub const TRANSFER_MAGIC: [u8; 4] = *b"SYTX";

/// A transfer file in `objects/tmp/`, removed on drop.
#[derive(Debug)]
pub struct TransferFile {
    /// Its path.
    pub path: PathBuf,
    /// Counts of what it holds.
    pub counts: Transfer,
}

impl Drop for TransferFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn tmp_path(store: &Store, what: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    store
        .tmp_dir()
        .join(format!("obj-{}-{what}{n}.tmp", std::process::id()))
}

/// Write what a receiver needs to hold `tips` (given the commits it has
/// and an oracle for the objects it has) into a transfer file in
/// `scratch`'s temp directory (docs/FORMAT.md §21): one pack, the WAL
/// ranges the new commits replay, the shallow boundaries; BLAKE3 trailer.
pub fn send(
    src: &Repository,
    tips: &[ObjectId],
    have: &HashSet<ObjectId>,
    has: &dyn Fn(&ObjectId) -> Result<bool>,
    scratch: &Store,
) -> Result<TransferFile> {
    let p = plan(src.objects(), has, tips, have)?;
    let path = tmp_path(scratch, "tx");
    let mut file = TransferFile {
        path,
        counts: Transfer {
            commits: p.commits.len() as u64,
            shallow: p.shallow.clone(),
            ..Transfer::default()
        },
    };
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file.path)
        .map_err(Error::io("create", &file.path))?;
    let mut w = Hashed {
        out: io::BufWriter::with_capacity(1 << 20, f),
        hasher: blake3::Hasher::new(),
        path: file.path.clone(),
    };
    let objects: Vec<ObjectId> = p.commits.iter().chain(&p.objects).copied().collect();
    // The pack: its length first, so compute it from the headers.
    let mut pack_len = (sydra_objects::pack::HEADER + sydra_objects::pack::TRAILER) as u64;
    for id in &objects {
        pack_len += src.objects().stat(id)?.file_len;
    }
    w.put(&TRANSFER_MAGIC)?;
    w.put(&[1, 0, 0, 0])?;
    w.put(&(if objects.is_empty() { 0 } else { pack_len }).to_le_bytes())?;
    if !objects.is_empty() {
        let mut ph = blake3::Hasher::new();
        let mut head = [0u8; sydra_objects::pack::HEADER];
        head[..4].copy_from_slice(&sydra_objects::pack::MAGIC);
        head[4] = sydra_objects::pack::VERSION;
        head[8..16].copy_from_slice(&(objects.len() as u64).to_le_bytes());
        ph.update(&head);
        w.put(&head)?;
        for id in &objects {
            // BLAKE3 recomputed: the bytes sent are the object the id names.
            let obj = src.objects().get_verified(id)?;
            let entry = sydra_objects::store::header::encode_file(obj.kind, *id, &obj.data);
            ph.update(&entry);
            w.put(&entry)?;
            file.counts.objects += 1;
            file.counts.bytes += obj.data.len() as u64;
        }
        w.put(ph.finalize().as_bytes())?;
    }
    // The WAL ranges the new commits' replay reads.
    let src_wal = src.layout().wal();
    let mut ranges_out: Vec<(ObjectId, Vec<u8>)> = Vec::new();
    let mut done: HashSet<ObjectId> = HashSet::new();
    for c in &p.commits {
        let obj = src.objects().get(c)?;
        let commit = obj.commit()?;
        let applied = commit.meta_u64("wal.applied_seq").unwrap_or(0);
        for (id, chunk) in crate::index::chunks(src.objects(), commit.tree)? {
            if chunk.last_seq <= applied || !done.insert(id) {
                continue;
            }
            let (header, bytes) = read_range(&src_wal, &id, &chunk)?;
            let mut body = header;
            body.extend_from_slice(&bytes);
            file.counts.ranges += 1;
            file.counts.range_bytes += bytes.len() as u64;
            ranges_out.push((id, body));
        }
    }
    w.put(&(ranges_out.len() as u64).to_le_bytes())?;
    for (id, body) in &ranges_out {
        w.put(id.as_bytes())?;
        w.put(&(body.len() as u64).to_le_bytes())?;
        w.put(body)?;
    }
    w.put(&(p.shallow.len() as u64).to_le_bytes())?;
    for c in &p.shallow {
        w.put(c.as_bytes())?;
    }
    let trailer = w.hasher.finalize();
    w.out
        .write_all(trailer.as_bytes())
        .and_then(|()| w.out.flush())
        .map_err(Error::io("write", &file.path))?;
    Ok(file)
}

struct Hashed {
    out: io::BufWriter<fs::File>,
    hasher: blake3::Hasher,
    path: PathBuf,
}

impl Hashed {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.hasher.update(b);
        self.out
            .write_all(b)
            .map_err(Error::io("write", &self.path))
    }
}

fn take<'a>(
    b: &'a [u8],
    at: &mut usize,
    n: u64,
    what: &str,
) -> std::result::Result<&'a [u8], String> {
    let n = usize::try_from(n).map_err(|_| format!("{what} is too long"))?;
    let end = at
        .checked_add(n)
        .filter(|&e| e <= b.len())
        .ok_or_else(|| format!("the transfer ends inside {what} (offset {at})"))?;
    let s = &b[*at..end];
    *at = end;
    Ok(s)
}

fn u64_at(b: &[u8], at: &mut usize, what: &str) -> std::result::Result<u64, String> {
    let s = take(b, at, 8, what)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

/// Ingest a transfer file into `dst`: check its trailer and framing, check
/// every object (framing, CRC, BLAKE3) and that every tree and commit
/// references only objects in the transfer or already present, publish the
/// pack, store the WAL ranges (each verified against its chunk), record the
/// shallow boundaries. Refs are the caller's to move, while the returned
/// pins live.
pub fn receive(
    dst: &Repository,
    file: &TransferFile,
    remote: &str,
) -> Result<(Transfer, Option<Pinned>)> {
    let f = sydra_objects::fs::open_regular(&file.path).map_err(Error::io("open", &file.path))?;
    let map = sydra_objects::map::map_file(&f).map_err(Error::io("map", &file.path))?;
    let mut t = receive_bytes(dst, &map, remote)?;
    t.0.commits = file.counts.commits.max(t.0.commits);
    Ok(t)
}

/// [`receive`] of transfer bytes already in memory or mapped.
pub fn receive_bytes(
    dst: &Repository,
    b: &[u8],
    remote: &str,
) -> Result<(Transfer, Option<Pinned>)> {
    let bad = |reason: String| remote_err(remote, format!("bad transfer: {reason}"));
    if b.len() < 8 + 8 + 8 + 8 + 32 || b[..4] != TRANSFER_MAGIC || b[4] != 1 || b[5..8] != [0; 3] {
        return Err(bad("not a version 1 Sydra transfer".into()));
    }
    let body = b.len() - 32;
    if blake3::hash(&b[..body]).as_bytes()[..] != b[body..] {
        return Err(bad(
            "its trailer does not match its content (damaged or cut short)".into(),
        ));
    }
    let b = &b[..body];
    let mut at = 8;
    let pack_len = u64_at(b, &mut at, "the pack length").map_err(bad)?;
    let pack = take(b, &mut at, pack_len, "the pack").map_err(bad)?;
    let n_ranges = u64_at(b, &mut at, "the range count").map_err(bad)?;
    let mut ranges_in = Vec::new();
    for _ in 0..n_ranges {
        let id = ObjectId::from_slice(take(b, &mut at, 32, "a range id").map_err(bad)?)
            .unwrap_or_default();
        let len = u64_at(b, &mut at, "a range length").map_err(bad)?;
        ranges_in.push((id, take(b, &mut at, len, "a range").map_err(bad)?));
    }
    let n_shallow = u64_at(b, &mut at, "the shallow count").map_err(bad)?;
    let mut shallow = HashSet::new();
    for _ in 0..n_shallow {
        shallow.insert(
            ObjectId::from_slice(take(b, &mut at, 32, "a shallow id").map_err(bad)?)
                .unwrap_or_default(),
        );
    }
    if at != b.len() {
        return Err(bad(format!(
            "{} bytes follow the last section",
            b.len() - at
        )));
    }
    let mut out = Transfer {
        shallow: shallow.iter().copied().collect(),
        ..Transfer::default()
    };
    let store = dst.objects();
    // Pin what arrives (and what is reused) until the refs move: a GC of
    // this process must not take it first.
    let mut batch = store.batch(Durability::Batch);
    let mut check = |e: &sydra_objects::pack::Entry,
                     payload: &[u8],
                     ids: &HashSet<ObjectId>|
     -> std::result::Result<(), String> {
        let present = |id: &ObjectId| ids.contains(id) || store.contains(id).unwrap_or(false);
        match e.kind {
            Kind::Tree => {
                let t = sydra_objects::TreeRef::decode(payload).map_err(|d| d.to_string())?;
                for x in t.entries {
                    if !present(&x.id) {
                        return Err(format!(
                            "tree {} references {} {}, which neither side has",
                            e.id, x.kind, x.id
                        ));
                    }
                }
            }
            Kind::Commit => {
                let c = sydra_objects::CommitRef::decode(payload).map_err(|d| d.to_string())?;
                if !present(&c.tree) {
                    return Err(format!(
                        "commit {} references tree {}, which neither side has",
                        e.id, c.tree
                    ));
                }
                for p in c.parents {
                    if !shallow.contains(&e.id) && !present(&p) {
                        return Err(format!(
                            "commit {} references parent {p}, which neither side has",
                            e.id
                        ));
                    }
                }
                out.commits += 1;
            }
            Kind::Blob => {}
        }
        out.objects += 1;
        out.bytes += payload.len() as u64;
        Ok(())
    };
    let pack = if pack.is_empty() {
        None
    } else {
        store.ingest_pack(pack, &mut check)?
    };
    out.pack = pack.as_ref().map(|p| p.hash());
    if let Some(p) = &pack {
        let v = p.index();
        for i in 0..v.len() {
            // A dedup hit: registers the id as pinned (the pack is live).
            let o = store.get(&v.id(i))?;
            batch.put(o.kind, &o.data)?;
        }
    }
    let dst_wal = dst.layout().wal();
    for (id, body) in ranges_in {
        let blob = store.get(&id).map_err(|e| {
            remote_err(
                remote,
                format!("WAL range {id}: its chunk is not here: {e}"),
            )
        })?;
        let chunk = Chunk::decode(&blob.data)
            .map_err(|e| remote_err(remote, format!("chunk {id}: {e}")))?;
        if has_range(&dst_wal, &id, &chunk) {
            continue;
        }
        if body.len() < 16 {
            return Err(bad(format!(
                "WAL range {id} is shorter than a segment header"
            )));
        }
        ranges::write(&dst_wal, &id, &chunk, &body[..16], &body[16..])?;
        out.ranges += 1;
        out.range_bytes += (body.len() - 16) as u64;
    }
    let (pinned, _) = batch.commit()?;
    if !shallow.is_empty() {
        add_boundaries(dst, &out.shallow)?;
    }
    Ok((out, Some(pinned)))
}

/// Record `boundaries` in the receiver's retention horizon (its history
/// ends there, like the source's), under the GC lock.
fn add_boundaries(dst: &Repository, boundaries: &[ObjectId]) -> Result<()> {
    let _lock = sydra_gc::GcLock::acquire(dst.layout().root())?;
    let h = sydra_gc::Horizon::read(dst.layout().root())?;
    let mut all: Vec<ObjectId> = h.boundaries().to_vec();
    all.extend_from_slice(boundaries);
    let since = h.since_ns().unwrap_or(0);
    sydra_gc::Horizon::new(since, all).write(dst.layout().root())?;
    Ok(())
}

/// The refs a remote offers: every ref under `refs/` except its own
/// remote-tracking refs, with direct values.
fn offered(src: &Repository) -> Result<Vec<(RefName, ObjectId)>> {
    Ok(src
        .refs()
        .list("refs/")?
        .into_iter()
        .filter(|(n, _)| !n.as_str().starts_with("refs/remotes/"))
        .filter_map(|(n, t)| t.object().map(|id| (n, id)))
        .collect())
}

/// Pick `wanted` (full names or short ones like `main`) among `refs`; all
/// of them when `wanted` is empty.
fn select(
    refs: Vec<(RefName, ObjectId)>,
    wanted: &[String],
    remote: &str,
) -> Result<Vec<(RefName, ObjectId)>> {
    if wanted.is_empty() {
        return Ok(refs);
    }
    let mut out = Vec::new();
    for w in wanted {
        let hit = refs.iter().find(|(n, _)| {
            let s = n.as_str();
            s == w
                || s == format!("refs/{w}")
                || s == format!("refs/heads/{w}")
                || s == format!("refs/snapshots/{w}")
        });
        match hit {
            Some(r) => out.push(r.clone()),
            None => return Err(remote_err(remote, format!("has no ref {w}"))),
        }
    }
    Ok(out)
}

fn ref_name(s: &str) -> Result<RefName> {
    RefName::new(s).map_err(|e| remote_err(s, format!("not a valid ref name: {e}")))
}

fn tracking_name(remote: &str, name: &RefName) -> Result<RefName> {
    let rest = name.as_str().strip_prefix("refs/").unwrap_or(name.as_str());
    ref_name(&format!("refs/remotes/{remote}/{rest}"))
}

fn prev(old: Option<ObjectId>) -> PreviousValue {
    match old {
        Some(o) => PreviousValue::MustExistAndMatch(o),
        None => PreviousValue::MustNotExist,
    }
}

/// Fetch `refs` (all when empty) of a remote (a recorded name or a URL)
/// into `repo`: objects and WAL ranges, then `refs/remotes/<name>/…` (a
/// URL that is not a recorded remote is fetched under the name `fetch`).
pub fn fetch(repo: &Repository, remote: &str, refs: &[String]) -> Result<Sync> {
    let (name, url) = resolve_remote(repo, remote)?;
    let name = name.unwrap_or_else(|| "fetch".to_owned());
    let src = open_remote(&url)?;
    // A fetch killed in the middle of a ref update leaves its lock file;
    // removed only when no ref update of any process is running.
    repo.refs().remove_stale_locks()?;
    let wanted = select(offered(&src)?, refs, remote)?;
    let tips: Vec<ObjectId> = wanted.iter().map(|(_, id)| *id).collect();
    let (transfer, pinned) = transfer(&src, repo, &tips, remote)?;
    let mut updates = Vec::new();
    for (rname, id) in wanted {
        let local = tracking_name(&name, &rname)?;
        let old = repo.refs().resolve(&local)?;
        let outcome = if old == Some(id) {
            Outcome::UpToDate
        } else {
            let o = match old {
                None => Outcome::Created,
                Some(o) if is_ancestor(repo.objects(), o, id)? => Outcome::FastForward,
                Some(_) => Outcome::Forced,
            };
            repo.refs()
                .update(&local, id, prev(old), &format!("fetch {remote}"))?;
            o
        };
        updates.push(RefUpdate {
            from: rname.as_str().to_owned(),
            to: local.as_str().to_owned(),
            old,
            new: id,
            outcome,
        });
    }
    drop(pinned);
    Ok(Sync {
        remote: name,
        transfer,
        updates,
    })
}

/// Clone `url` into `dir` (which must not exist or be empty): a new data
/// directory holding every ref of the remote (its own refs and
/// `refs/remotes/origin/…`), with the remote recorded as `origin`.
pub fn clone(url: &str, dir: &Path) -> Result<(Repository, Sync)> {
    let parsed = RemoteUrl::parse(url)?;
    let url = match &parsed {
        RemoteUrl::Path(p) => fs::canonicalize(p)
            .map_err(Error::io("find", p))?
            .display()
            .to_string(),
        _ => url.to_owned(),
    };
    let nonempty = match fs::read_dir(dir) {
        Ok(mut rd) => rd.next().is_some(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    if nonempty {
        return Err(remote_err(
            &url,
            format!(
                "cannot clone into {}: it exists and is not empty",
                dir.display()
            ),
        ));
    }
    let (repo, _) = Repository::init(dir)?;
    add_remote(&repo, "origin", &url)?;
    let mut sync = fetch(&repo, "origin", &[])?;
    for u in &mut sync.updates {
        let name = ref_name(&u.from)?;
        repo.refs().update(
            &name,
            u.new,
            PreviousValue::MustNotExist,
            &format!("clone {url}"),
        )?;
    }
    Ok((repo, sync))
}

/// Push `refs` (default: every `refs/heads/*` and `refs/snapshots/*`) of
/// `repo` to a remote data directory. Each remote ref moves by
/// compare-and-swap, only forward unless `force`; a push that loses a race
/// is retried while it is still a fast-forward, and refused naming the ref
/// otherwise. The remote's writer lock is held for the whole push: a
/// directory an engine has open is refused.
pub fn push(repo: &Repository, remote: &str, refs: &[String], force: bool) -> Result<Sync> {
    let (name, url) = resolve_remote(repo, remote)?;
    let dst = open_remote(&url)?;
    let _lock = crate::engine::take_lock(&dst.layout().lock_file(), dst.layout().root())?;
    dst.refs().remove_stale_locks()?;
    let own_wal = !crate::wal::list_segments(&dst.layout().wal())?.is_empty();
    let mine: Vec<(RefName, ObjectId)> = if refs.is_empty() {
        offered(repo)?
            .into_iter()
            .filter(|(n, _)| {
                n.as_str().starts_with("refs/heads/") || n.as_str().starts_with("refs/snapshots/")
            })
            .collect()
    } else {
        select(offered(repo)?, refs, "this store")?
    };
    let mut updates = Vec::new();
    let mut tips = Vec::new();
    for (n, id) in &mine {
        let old = dst.refs().resolve(n)?;
        let mut outcome = judge(repo, old, *id, force)?;
        // The main branch of a store that writes its own WAL advances only
        // by its own checkpoints: a commit from elsewhere names WAL seqs of
        // another log (docs/DECISIONS.md 49).
        if *n == crate::main_ref() && own_wal && outcome != Outcome::UpToDate {
            outcome = Outcome::Rejected(format!(
                "{} writes its own WAL, so its main moves only by its own checkpoints; push main to a replica (made by clone or init and never written to), push under another name, or fetch from it",
                dst.layout().root().display()
            ));
        }
        if matches!(
            outcome,
            Outcome::Created | Outcome::FastForward | Outcome::Forced
        ) {
            tips.push(*id);
        }
        updates.push(RefUpdate {
            from: n.as_str().to_owned(),
            to: n.as_str().to_owned(),
            old,
            new: *id,
            outcome,
        });
    }
    let (transfer, pinned) = transfer(repo, &dst, &tips, remote)?;
    for u in &mut updates {
        if !matches!(
            u.outcome,
            Outcome::Created | Outcome::FastForward | Outcome::Forced
        ) {
            continue;
        }
        let n = ref_name(&u.to)?;
        let mut old = u.old;
        let mut tries = 0;
        loop {
            match dst.refs().update(
                &n,
                u.new,
                prev(old),
                &format!("push from {}", repo.layout().root().display()),
            ) {
                Ok(()) => break,
                Err(e) if e.is_mismatch() && tries < 3 => {
                    tries += 1;
                    let now = dst.refs().resolve(&n)?;
                    match judge(repo, now, u.new, force)? {
                        Outcome::UpToDate => {
                            u.outcome = Outcome::UpToDate;
                            break;
                        }
                        Outcome::Rejected(why) => {
                            u.outcome =
                                Outcome::Rejected(format!("{} moved during the push; {why}", u.to));
                            break;
                        }
                        _ => old = now,
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        u.old = old.or(u.old);
        if let (Some(remote_name), false) = (&name, matches!(u.outcome, Outcome::Rejected(_))) {
            let local = tracking_name(remote_name, &n)?;
            let cur = repo.refs().resolve(&local)?;
            if cur != Some(u.new) {
                repo.refs()
                    .update(&local, u.new, prev(cur), &format!("push {remote_name}"))?;
            }
        }
    }
    drop(pinned);
    Ok(Sync {
        remote: name.unwrap_or_else(|| url.to_string()),
        transfer,
        updates,
    })
}

fn judge(repo: &Repository, old: Option<ObjectId>, new: ObjectId, force: bool) -> Result<Outcome> {
    Ok(match old {
        None => Outcome::Created,
        Some(o) if o == new => Outcome::UpToDate,
        Some(o) if repo.objects().contains(&o)? && is_ancestor(repo.objects(), o, new)? => {
            Outcome::FastForward
        }
        Some(_) if force => Outcome::Forced,
        Some(o) => Outcome::Rejected(format!(
            "not a fast-forward: the remote is at {}, which is not an ancestor of {} (fetch and merge, or push --force)",
            o.short(12),
            new.short(12)
        )),
    })
}
