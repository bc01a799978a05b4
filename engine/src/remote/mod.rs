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

use sydra_objects::{Kind, ObjectId, Pinned, Store};
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
    /// Requests made to an S3 remote (multipart parts included); 0 for
    /// other remotes.
    pub requests: u64,
}

/// Commits reachable from every ref of `repo` (commit graph only; parents
/// the store lacks, below a retention horizon, end the walk).
fn have_commits(repo: &Repository) -> Result<HashSet<ObjectId>> {
    let tips: Vec<ObjectId> = repo
        .refs()
        .list("")?
        .into_iter()
        .filter_map(|(_, t)| t.object())
        .collect();
    commits_from(repo, &tips)
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
    /// Every commit walked (not reachable from the receiver's refs): their
    /// WAL ranges travel even when the receiver already has the commit
    /// objects (a fetch killed after publishing its pack, say).
    walked: Vec<ObjectId>,
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
        walked: Vec::new(),
        commits: Vec::new(),
        objects: Vec::new(),
        shallow: Vec::new(),
    };
    let mut queued = sydra_objects::store::PackIds::default();
    let mut blobs = Blobs::default();
    let mut todo: VecDeque<ObjectId> = tips.iter().copied().filter(|t| !have.contains(t)).collect();
    let mut seen_commits = HashSet::new();
    // A clone's walk: the tree last walked at each path (a newer commit's,
    // whose entries are all queued), held mapped.
    let mut last_at: std::collections::HashMap<String, sydra_objects::Object> =
        std::collections::HashMap::new();
    while let Some(c) = todo.pop_front() {
        if !seen_commits.insert(c) {
            continue;
        }
        let obj = src.get_verified(&c)?;
        obj.expect(Kind::Commit)?;
        let commit = obj.commit()?;
        p.walked.push(c);
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
            // Each commit's tree is walked against its first parent's, so
            // a chain of new commits stops at what the receiver holds
            // where it starts. A receiver that holds no commit (a clone)
            // needs no parent diff: what a commit shares with its parent
            // is queued once, whichever meets it first, and the diff would
            // cost a lookup of every base tree (on a 72-commit, 72-pack
            // store: 1.3 s before the first byte against 0.75 s without).
            // A clone's walk diffs each tree against the one it walked last
            // at the same path instead (held, so nothing is looked up):
            // a series directory gains a few entries per commit, and the
            // rest need no set lookup.
            if i == 0 && !have.is_empty() {
                base = Some(src.get(parent)?.commit()?.tree);
            }
            if !have.contains(parent) {
                todo.push_back(*parent);
            }
        }
        walk_tree(
            src,
            has,
            commit.tree,
            base,
            if have.is_empty() {
                Some(&mut last_at)
            } else {
                None
            },
            &mut queued,
            &mut p.objects,
            &mut blobs,
        )?;
    }
    // Blobs by directory (each where the walk first met it): a series
    // directory's segments and rollups, of every commit sent, lie together
    // in the transfer, so a read replica reads one series' history with
    // one ranged GET (docs/DECISIONS.md 61). Trees stay before blobs.
    let mut order: Vec<u32> = (0..blobs.dirs.len() as u32).collect();
    order.sort_by(|a, b| blobs.dirs[*a as usize].cmp(&blobs.dirs[*b as usize]));
    let mut rank = vec![0u32; order.len()];
    for (r, d) in order.into_iter().enumerate() {
        rank[d as usize] = r as u32;
    }
    // Stable: within a directory, the walk's order (by commit, then name).
    blobs.ids.sort_by_key(|(d, _)| rank[*d as usize]);
    p.objects.extend(blobs.ids.into_iter().map(|(_, id)| id));
    Ok(p)
}

/// Blobs a walk found, each with the directory it was first found in.
#[derive(Default)]
struct Blobs {
    /// Directory paths, by index.
    dirs: Vec<String>,
    index: std::collections::HashMap<String, u32>,
    ids: Vec<(u32, ObjectId)>,
}

impl Blobs {
    fn dir(&mut self, path: &str) -> u32 {
        if let Some(&i) = self.index.get(path) {
            return i;
        }
        let i = self.dirs.len() as u32;
        self.dirs.push(path.to_owned());
        self.index.insert(path.to_owned(), i);
        i
    }
}

/// Add what `dst` lacks of tree `t`, trees to `out` and blobs with their
/// directories to `blobs`, skipping every subtree equal to the one at the same
/// path in `base` (the first parent's: complete on the receiver, or part
/// of this transfer).
#[allow(clippy::too_many_arguments)]
fn walk_tree(
    src: &Store,
    has: &dyn Fn(&ObjectId) -> Result<bool>,
    t: ObjectId,
    base: Option<ObjectId>,
    mut last_at: Option<&mut std::collections::HashMap<String, sydra_objects::Object>>,
    queued: &mut sydra_objects::store::PackIds,
    out: &mut Vec<ObjectId>,
    blobs: &mut Blobs,
) -> Result<()> {
    let mut stack = vec![(t, base, String::new())];
    while let Some((t, base, path)) = stack.pop() {
        if Some(t) == base || !queued.insert(t) {
            continue;
        }
        if !has(&t)? {
            out.push(t);
        }
        // A reachability walk reads the trees' framing, not their names'
        // syntax (as the GC's mark does, DECISIONS 62): the receiver
        // decodes every tree canonically before anything is published.
        let obj = src.get(&t)?;
        // A clone walks newer commits first, and a series directory only
        // gains entries (sorted by block time) from one to the next: an
        // older version's entries are then a byte prefix of the newer
        // one's (after each tree's 4-byte count), all queued already.
        // Checked with one comparison instead of reading every entry.
        if let Some(newer) = last_at.as_deref().and_then(|m| m.get(&path))
            && newer.kind == Kind::Tree
            && obj.data.len() >= 4
            && newer
                .data
                .get(4..)
                .is_some_and(|b| b.starts_with(&obj.data[4..]))
        {
            continue;
        }
        let mut dir = None;
        // Without a base (a clone), the tree walked last at this path
        // stands in: everything it names is queued already.
        let base_obj = match base {
            Some(b) => Some(src.get(&b)?),
            None => last_at.as_deref().and_then(|m| m.get(&path).cloned()),
        };
        // An incremental walk meets the same growth against its base: a
        // series directory gains a few entries from one commit to the
        // next, sorted last. Where the base's entries are a byte prefix of
        // this tree's, only the entries after them are read.
        let tail = base_obj
            .as_ref()
            .filter(|b| base.is_some() && b.kind == Kind::Tree && obj.kind == Kind::Tree)
            .and_then(|b| new_entries(&obj.data, &b.data));
        let tree = match &tail {
            Some(bytes) => sydra_objects::TreeRef::raw_entries(bytes)
                .map_err(|source| sydra_objects::Error::Decode { id: t, source })?,
            None => obj.raw_tree()?,
        };
        let base_tree = match &base_obj {
            Some(o) if o.kind == Kind::Tree && tail.is_none() => Some(o.raw_tree()?),
            _ => None,
        };
        // Both trees are in name order: one pass over the two.
        let mut at = 0;
        for e in &tree {
            let old = base_tree.as_ref().and_then(|b| {
                while at < b.len() && b[at].name < e.name {
                    at += 1;
                }
                b.get(at)
                    .filter(|x| x.name == e.name)
                    .map(|x| (x.kind, x.id))
            });
            if old == Some((e.kind, e.id)) {
                continue;
            }
            match e.kind {
                Kind::Tree => {
                    // A clone's walk finds a subtree's base in `last_at`,
                    // held; a base id would have to be looked up.
                    let old_tree = old
                        .filter(|(k, _)| *k == Kind::Tree && last_at.is_none())
                        .map(|(_, id)| id);
                    let name = String::from_utf8_lossy(e.name);
                    stack.push((e.id, old_tree, format!("{path}{name}/")));
                }
                _ => {
                    if queued.insert(e.id) && !has(&e.id)? {
                        let d = *dir.get_or_insert_with(|| blobs.dir(&path));
                        blobs.ids.push((d, e.id));
                    }
                }
            }
        }
        drop(tree);
        if let Some(m) = last_at.as_deref_mut() {
            m.insert(path, obj);
        }
    }
    Ok(())
}

/// When the entries of tree payload `base` are a byte prefix of those of
/// tree payload `t` (after each one's 4-byte count), the entries of `t`
/// after them, framed as a tree of their own; otherwise `None`.
pub(crate) fn new_entries(t: &[u8], base: &[u8]) -> Option<Vec<u8>> {
    let count = |b: &[u8]| Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?));
    let added = count(t)?.checked_sub(count(base)?)?;
    if t.len() < base.len() || !t[4..].starts_with(&base[4..]) {
        return None;
    }
    let mut out = added.to_le_bytes().to_vec();
    out.extend_from_slice(&t[base.len()..]);
    Some(out)
}

/// Read chunk `id`'s range from `wal_dir`'s store: a stored range, or the
/// local segment (verified). Returns the segment header and the bytes.
/// Only the CRC is checked: the receiver recomputes the BLAKE3
/// (DECISIONS 63).
fn read_range(wal_dir: &Path, id: &ObjectId, chunk: &Chunk) -> Result<(Vec<u8>, Vec<u8>)> {
    if let Some(r) = ranges::open_crc(wal_dir, id, chunk)? {
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
        .verify_crc(&bytes[s..e])
        .map_err(|reason| Error::ChunkMismatch {
            chunk: *id,
            path: view.path.clone(),
            reason,
        })?;
    Ok((bytes[..16].to_vec(), bytes[s..e].to_vec()))
}

/// [`has_range`] when the receiver's WAL directory is known (a path).
fn has_range_at(wal_dir: Option<&Path>, id: &ObjectId, chunk: &Chunk) -> bool {
    wal_dir.is_some_and(|w| has_range(w, id, chunk))
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
    let dst_wal = dst.layout().wal();
    // The sender writes into a pipe on its own thread; the receiver reads
    // as it comes: nothing is written to disk but the result.
    let (w, mut r) = receive::pipe();
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let mut w = w;
            send_to(
                src,
                tips,
                &have,
                &|id| Ok(dst.objects().contains(id)?),
                Some(&dst_wal),
                &mut w,
                Path::new("(the transfer pipe)"),
            )
        });
        let got = receive::receive_blocks(dst, &mut r, u64::MAX, remote);
        // A receiver that stopped early unblocks the sender.
        drop(r);
        let sent = sender
            .join()
            .map_err(|_| remote_err(remote, "the sending thread panicked"))?;
        // The sender's error explains a transfer cut short.
        let counts = sent?;
        let (mut t, pins) = got?;
        t.commits = counts.commits.max(t.commits);
        Ok((t, pins))
    })
}

/// Bytes of pack entries a sender gathers before hashing and writing them.
const SEND_BLOCK: usize = 1 << 20;

/// Magic of a transfer file.
pub const TRANSFER_MAGIC: [u8; 4] = *b"SYTX";
/// The transfer version a sender writes. Version 2's trailer hashes the
/// framing, the pack's own hash and the shallow list, not the pack's or
/// the ranges' bytes (each is verified against its own hash); version 1's
/// hashes every byte. Both are read (docs/FORMAT.md §21).
pub const TRANSFER_VERSION: u8 = 2;
/// Magic of a fetch answer that carries the server's error (UTF-8 text
/// after it) instead of a transfer: the server failed before its first
/// byte, after the 200 had gone out (the answer is streamed).
pub const TRANSFER_ERROR_MAGIC: [u8; 4] = *b"SYER";

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
    receiver_wal: Option<&Path>,
) -> Result<TransferFile> {
    let path = tmp_path(scratch, "tx");
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(Error::io("create", &path))?;
    let mut file = TransferFile {
        path: path.clone(),
        counts: Transfer::default(),
    };
    let mut out = io::BufWriter::with_capacity(1 << 20, f);
    file.counts = send_to(src, tips, have, has, receiver_wal, &mut out, &path)?;
    out.flush().map_err(Error::io("write", &path))?;
    Ok(file)
}

/// [`send`] streamed into `out` (a response body, a pipe): every length is
/// known before its section is written, so nothing is spooled; `label`
/// names the destination in errors. A failure part way leaves a stream the
/// receiver refuses (its trailer never comes).
pub fn send_to(
    src: &Repository,
    tips: &[ObjectId],
    have: &HashSet<ObjectId>,
    has: &dyn Fn(&ObjectId) -> Result<bool>,
    receiver_wal: Option<&Path>,
    out: &mut dyn Write,
    label: &Path,
) -> Result<Transfer> {
    let p = plan(src.objects(), has, tips, have)?;
    let mut counts = Transfer {
        commits: p.commits.len() as u64,
        shallow: p.shallow.clone(),
        ..Transfer::default()
    };
    let mut w = Hashed {
        out,
        hasher: blake3::Hasher::new(),
        path: label.to_path_buf(),
    };
    let objects: Vec<ObjectId> = p.commits.iter().chain(&p.objects).copied().collect();
    // Where each object is packed, found once for both passes below.
    let located = src.objects().locate_packed(&objects);
    // The pack: its length first, so compute it from the headers (loose
    // objects are stat'ed, several threads at a time).
    let mut loose = Vec::new();
    let mut packed_len = 0u64;
    for (id, at) in objects.iter().zip(&located) {
        match at {
            Some(_) => packed_len += src.objects().stat_located(id, at.as_ref())?.file_len,
            None => loose.push(*id),
        }
    }
    let pack_len = (sydra_objects::pack::HEADER + sydra_objects::pack::TRAILER) as u64
        + packed_len
        + files_len(src.objects(), &loose)?;
    w.put(&TRANSFER_MAGIC)?;
    w.put(&[TRANSFER_VERSION, 0, 0, 0])?;
    w.put(&(if objects.is_empty() { 0 } else { pack_len }).to_le_bytes())?;
    if !objects.is_empty() {
        // Entries are gathered into blocks before they are hashed and
        // written: BLAKE3 hashes a large input many chunks at a time, a
        // small one block by block (several times slower).
        let mut ph = blake3::Hasher::new();
        let mut block: Vec<u8> = Vec::with_capacity(SEND_BLOCK + (64 << 10));
        let mut head = [0u8; sydra_objects::pack::HEADER];
        head[..4].copy_from_slice(&sydra_objects::pack::MAGIC);
        head[4] = sydra_objects::pack::VERSION;
        head[8..16].copy_from_slice(&(objects.len() as u64).to_le_bytes());
        block.extend_from_slice(&head);
        for (id, at) in objects.iter().zip(&located) {
            // CRC-checked; the receiver recomputes every BLAKE3 and refuses
            // an object that does not hash to its id (DECISIONS 63).
            let obj = src.objects().get_located(id, at.as_ref())?;
            sydra_objects::store::header::encode_file_into(&mut block, obj.kind, *id, &obj.data);
            counts.objects += 1;
            counts.bytes += obj.data.len() as u64;
            if block.len() >= SEND_BLOCK {
                ph.update(&block);
                w.put_body(&block)?;
                block.clear();
            }
        }
        ph.update(&block);
        w.put_body(&block)?;
        // The trailer covers the pack through its hash.
        w.put(ph.finalize().as_bytes())?;
    }
    // The WAL ranges the new commits' replay reads, less those the
    // receiver holds already: the unapplied chunks of the commits it has
    // where the new history starts (it holds those commits completely).
    let src_wal = src.layout().wal();
    let mut held: HashSet<ObjectId> = HashSet::new();
    let mut boundary: HashSet<ObjectId> = HashSet::new();
    for c in &p.walked {
        for parent in src.objects().get(c)?.commit()?.parents.iter() {
            if have.contains(parent) {
                boundary.insert(*parent);
            }
        }
    }
    for b in boundary {
        // A commit the receiver has and this store no longer does (cut
        // here by retention): its chunks are unknown here, so the ranges
        // it would have spared are sent.
        let obj = match src.objects().get(&b) {
            Ok(o) => o,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        let commit = obj.commit()?;
        let applied = commit.meta_u64("wal.applied_seq").unwrap_or(0);
        for (id, chunk) in crate::index::chunks(src.objects(), commit.tree)? {
            if chunk.last_seq > applied {
                held.insert(id);
            }
        }
    }
    let mut wanted: Vec<(ObjectId, Chunk)> = Vec::new();
    let mut done: HashSet<ObjectId> = HashSet::new();
    for c in &p.walked {
        let obj = src.objects().get(c)?;
        let commit = obj.commit()?;
        let applied = commit.meta_u64("wal.applied_seq").unwrap_or(0);
        for (id, chunk) in crate::index::chunks(src.objects(), commit.tree)? {
            if chunk.last_seq <= applied
                || !done.insert(id)
                || held.contains(&id)
                || has_range_at(receiver_wal, &id, &chunk)
            {
                continue;
            }
            wanted.push((id, chunk));
        }
    }
    // One range in memory at a time.
    w.put(&(wanted.len() as u64).to_le_bytes())?;
    for (id, chunk) in &wanted {
        let (header, bytes) = read_range(&src_wal, id, chunk)?;
        counts.ranges += 1;
        counts.range_bytes += bytes.len() as u64;
        // The trailer covers a range through its chunk (its length, CRC
        // and BLAKE3), which is in the pack or already on the receiver.
        w.put(id.as_bytes())?;
        w.put(&((header.len() + bytes.len()) as u64).to_le_bytes())?;
        w.put_body(&header)?;
        w.put_body(&bytes)?;
    }
    w.put(&(p.shallow.len() as u64).to_le_bytes())?;
    for c in &p.shallow {
        w.put(c.as_bytes())?;
    }
    let trailer = w.hasher.finalize();
    w.out
        .write_all(trailer.as_bytes())
        .and_then(|()| w.out.flush())
        .map_err(Error::io("write", label))?;
    Ok(counts)
}

/// The summed object file lengths of `ids`: one index lookup each, across
/// every pack, so split over up to four threads (the receiver waits for
/// this before its first byte).
fn files_len(store: &Store, ids: &[ObjectId]) -> Result<u64> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    if threads == 1 || ids.len() < 10_000 {
        return ids
            .iter()
            .try_fold(0, |n, id| Ok(n + store.stat(id)?.file_len));
    }
    std::thread::scope(|scope| {
        let parts: Vec<_> = ids
            .chunks(ids.len().div_ceil(threads))
            .map(|part| {
                scope.spawn(move || -> Result<u64> {
                    part.iter()
                        .try_fold(0, |n, id| Ok(n + store.stat(id)?.file_len))
                })
            })
            .collect();
        parts.into_iter().try_fold(0, |n, p| {
            let part = p.join().map_err(|_| Error::Io {
                op: "stat",
                path: PathBuf::from("(a planning thread)"),
                source: io::Error::other("the thread panicked"),
            })??;
            Ok(n + part)
        })
    })
}

struct Hashed<'w> {
    out: &'w mut dyn Write,
    hasher: blake3::Hasher,
    path: PathBuf,
}

impl Hashed<'_> {
    /// Write bytes the trailer covers.
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.hasher.update(b);
        self.put_body(b)
    }

    /// Write bytes the trailer does not cover (a pack's entries, a range's
    /// bytes: each has a hash of its own).
    fn put_body(&mut self, b: &[u8]) -> Result<()> {
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

/// A transfer file's sections (docs/FORMAT.md §21), framing checked.
#[derive(Debug)]
pub struct TransferView<'a> {
    /// Its version (1 or 2).
    pub version: u8,
    /// The pack (empty: no objects).
    pub pack: &'a [u8],
    /// Stored ranges: chunk id and the range file's bytes.
    pub ranges: Vec<(ObjectId, &'a [u8])>,
    /// Commits whose parents the sender lacks.
    pub shallow: Vec<ObjectId>,
}

/// Check a transfer file's magic, version, trailer and framing (every
/// length inside the file, nothing after the last section). Memory does not
/// depend on declared counts (each entry consumes input).
pub fn parse_transfer(b: &[u8]) -> std::result::Result<TransferView<'_>, String> {
    let view = transfer_sections(b)?;
    let body = b.len() - 32;
    let expected = if view.version == 1 {
        blake3::hash(&b[..body])
    } else {
        trailer_v2(&view)
    };
    if expected.as_bytes()[..] != b[body..] {
        return Err("its trailer does not match its content (damaged or cut short)".into());
    }
    Ok(view)
}

/// A version 2 trailer (docs/FORMAT.md §21): the hash of the framing, the
/// pack's own trailer, each range's id and length, and the shallow list.
fn trailer_v2(v: &TransferView<'_>) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(&TRANSFER_MAGIC);
    h.update(&[2, 0, 0, 0]);
    h.update(&(v.pack.len() as u64).to_le_bytes());
    if let Some(t) = v.pack.len().checked_sub(32).map(|at| &v.pack[at..]) {
        h.update(t);
    }
    h.update(&(v.ranges.len() as u64).to_le_bytes());
    for (id, r) in &v.ranges {
        h.update(id.as_bytes());
        h.update(&(r.len() as u64).to_le_bytes());
    }
    h.update(&(v.shallow.len() as u64).to_le_bytes());
    for c in &v.shallow {
        h.update(c.as_bytes());
    }
    h.finalize()
}

/// [`parse_transfer`] without the trailer check: the framing only, for a
/// transfer this process wrote (the trailer is its own hash).
pub fn transfer_sections(b: &[u8]) -> std::result::Result<TransferView<'_>, String> {
    if b.len() < 8 + 8 + 8 + 8 + 32
        || b[..4] != TRANSFER_MAGIC
        || !matches!(b[4], 1 | 2)
        || b[5..8] != [0; 3]
    {
        return Err("not a version 1 or 2 Sydra transfer".into());
    }
    let version = b[4];
    let body = b.len() - 32;
    let b = &b[..body];
    let mut at = 8;
    let pack_len = u64_at(b, &mut at, "the pack length")?;
    let pack = take(b, &mut at, pack_len, "the pack")?;
    let n_ranges = u64_at(b, &mut at, "the range count")?;
    let mut ranges = Vec::new();
    for _ in 0..n_ranges {
        let id = ObjectId::from_slice(take(b, &mut at, 32, "a range id")?).unwrap_or_default();
        let len = u64_at(b, &mut at, "a range length")?;
        ranges.push((id, take(b, &mut at, len, "a range")?));
    }
    let n_shallow = u64_at(b, &mut at, "the shallow count")?;
    let mut shallow = Vec::new();
    for _ in 0..n_shallow {
        shallow
            .push(ObjectId::from_slice(take(b, &mut at, 32, "a shallow id")?).unwrap_or_default());
    }
    if at != b.len() {
        return Err(format!("{} bytes follow the last section", b.len() - at));
    }
    Ok(TransferView {
        version,
        pack,
        ranges,
        shallow,
    })
}

/// Record `boundaries` in the receiver's retention horizon (its history
/// ends there, like the source's), under the GC lock.
pub(crate) fn add_boundaries(dst: &Repository, boundaries: &[ObjectId]) -> Result<()> {
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
    let src = Endpoint::open(&url, repo, name.as_deref(), false)?;
    let name = name.unwrap_or_else(|| "fetch".to_owned());
    // A fetch killed in the middle of a ref update leaves its lock file;
    // removed only when no ref update of any process is running.
    repo.refs().remove_stale_locks()?;
    let wanted = select(src.refs()?, refs, remote)?;
    let tips: Vec<ObjectId> = wanted.iter().map(|(_, id)| *id).collect();
    let (transfer, pinned) = src.fetch_into(repo, &tips, remote)?;
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
        requests: src.requests(),
    })
}

/// The other side of a transfer.
enum Endpoint {
    /// A data directory on this machine.
    Dir(Repository),
    /// A `sydra serve`.
    #[cfg(feature = "http")]
    Http(http::Client),
    /// An S3-compatible bucket.
    #[cfg(feature = "s3")]
    S3(Box<s3::S3Remote>),
}

impl Endpoint {
    /// Connect to `url` to read from it or (`writes`) to push to it;
    /// `name` is the remote's name in `repo`, if it has one (an S3 remote
    /// then remembers its passed probe there).
    fn open(
        url: &RemoteUrl,
        repo: &Repository,
        name: Option<&str>,
        writes: bool,
    ) -> Result<Endpoint> {
        #[cfg(not(feature = "s3"))]
        let _ = (repo, name, writes);
        match url {
            RemoteUrl::Path(p) => Ok(Endpoint::Dir(Repository::open(p)?)),
            #[cfg(feature = "http")]
            RemoteUrl::Http(u) => Ok(Endpoint::Http(http::Client::new(u))),
            #[cfg(feature = "s3")]
            RemoteUrl::S3(u) => {
                let marker = name.map(|n| s3::probed_marker(repo, n));
                Ok(Endpoint::S3(Box::new(s3::open(
                    u,
                    marker.as_deref(),
                    writes,
                )?)))
            }
            #[allow(unreachable_patterns)]
            other => Err(remote_err(
                &other.to_string(),
                "this build has no transport for this URL (built without the http or s3 feature)",
            )),
        }
    }

    /// Requests made to an S3 remote.
    fn requests(&self) -> u64 {
        match self {
            #[cfg(feature = "s3")]
            Endpoint::S3(s) => s.requests(),
            _ => 0,
        }
    }

    /// The refs it offers.
    fn refs(&self) -> Result<Vec<(RefName, ObjectId)>> {
        match self {
            Endpoint::Dir(r) => offered(r),
            #[cfg(feature = "http")]
            Endpoint::Http(c) => c.refs(),
            #[cfg(feature = "s3")]
            Endpoint::S3(s) => s.refs(),
        }
    }

    /// Bring what `dst` lacks to hold `tips` into it.
    fn fetch_into(
        &self,
        dst: &Repository,
        tips: &[ObjectId],
        remote: &str,
    ) -> Result<(Transfer, Vec<Pinned>)> {
        match self {
            Endpoint::Dir(src) => {
                transfer(src, dst, tips, remote).map(|(t, p)| (t, p.into_iter().collect()))
            }
            #[cfg(feature = "http")]
            Endpoint::Http(c) => {
                let haves: Vec<ObjectId> = dst
                    .refs()
                    .list("")?
                    .into_iter()
                    .filter_map(|(_, t)| t.object())
                    .collect();
                c.fetch(tips, &haves, dst, remote)
                    .map(|(t, p)| (t, p.into_iter().collect()))
            }
            #[cfg(feature = "s3")]
            Endpoint::S3(s) => {
                let _ = tips;
                s.fetch_into(dst, remote)
            }
        }
    }
}

/// Apply pushed ref updates to `dst` (whose store already holds everything
/// they reach): each ref moves by compare-and-swap, only forward unless
/// `force`; one that moved meanwhile is judged again against its new value
/// (a lost race is retried while still a fast-forward). The `main` of a
/// store writing its own WAL is never moved (DECISIONS 49). Used by a push
/// to a path and by `sydra serve`.
pub fn apply_updates(
    dst: &Repository,
    updates: &[(String, Option<ObjectId>, ObjectId)],
    force: bool,
) -> Result<Vec<(String, Outcome)>> {
    let own_wal = !crate::wal::list_segments(&dst.layout().wal())?.is_empty();
    let mut out = Vec::new();
    for (name, _seen, new) in updates {
        let n = match RefName::new(name) {
            Ok(n)
                if n.as_str().starts_with("refs/") && !n.as_str().starts_with("refs/remotes/") =>
            {
                n
            }
            _ => {
                out.push((
                    name.clone(),
                    Outcome::Rejected(format!("{name} is not a ref a push may set")),
                ));
                continue;
            }
        };
        if !dst.objects().contains(new)? {
            out.push((
                name.clone(),
                Outcome::Rejected(format!("{new} did not arrive")),
            ));
            continue;
        }
        let mut tries = 0;
        let outcome = loop {
            let cur = dst.refs().resolve(&n)?;
            let mut o = judge_on(dst.objects(), cur, *new, force)?;
            if n == crate::main_ref() && own_wal && o != Outcome::UpToDate {
                o = Outcome::Rejected(format!(
                    "{} writes its own WAL, so its main moves only by its own checkpoints; push main to a replica (made by clone or init and never written to), push under another name, or fetch from it",
                    dst.layout().root().display()
                ));
            }
            if !matches!(o, Outcome::Created | Outcome::FastForward | Outcome::Forced) {
                break o;
            }
            match dst.refs().update(&n, *new, prev(cur), "push") {
                Ok(()) => break o,
                Err(e) if e.is_mismatch() && tries < 3 => tries += 1,
                // Another push is updating the same ref right now: wait for
                // it (its lock is held for milliseconds), then judge again.
                Err(e) if e.is_locked() && tries < 200 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) if e.is_mismatch() => {
                    break Outcome::Rejected(format!("{name} kept moving during the push"));
                }
                Err(e) => return Err(e.into()),
            }
        };
        out.push((name.clone(), outcome));
    }
    Ok(out)
}

fn judge_on(store: &Store, old: Option<ObjectId>, new: ObjectId, force: bool) -> Result<Outcome> {
    Ok(match old {
        None => Outcome::Created,
        Some(o) if o == new => Outcome::UpToDate,
        Some(o) if store.contains(&o)? && is_ancestor(store, o, new)? => Outcome::FastForward,
        Some(_) if force => Outcome::Forced,
        Some(o) => Outcome::Rejected(format!(
            "not a fast-forward: the remote is at {}, which is not an ancestor of {} (fetch and merge, or push --force)",
            o.short(12),
            new.short(12)
        )),
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
/// `repo` to a remote (a path or `sydra serve`), with the bearer token
/// from `$SYDRA_TOKEN` if set. Each remote ref moves by compare-and-swap,
/// only forward unless `force` (see [`apply_updates`]). A push to a path
/// holds that directory's writer lock for the whole push: a directory an
/// engine has open is refused.
pub fn push(repo: &Repository, remote: &str, refs: &[String], force: bool) -> Result<Sync> {
    let token = std::env::var("SYDRA_TOKEN").ok();
    push_with_token(repo, remote, refs, force, token.as_deref())
}

/// [`push`] with an explicit bearer token (for `sydra serve --token-file`).
pub fn push_with_token(
    repo: &Repository,
    remote: &str,
    refs: &[String],
    force: bool,
    token: Option<&str>,
) -> Result<Sync> {
    #[cfg(not(feature = "http"))]
    let _ = token;
    let (name, url) = resolve_remote(repo, remote)?;
    let dst = Endpoint::open(&url, repo, name.as_deref(), true)?;
    let _lock = match &dst {
        Endpoint::Dir(d) => {
            let l = crate::engine::take_lock(&d.layout().lock_file(), d.layout().root())?;
            d.refs().remove_stale_locks()?;
            Some(l)
        }
        #[allow(unreachable_patterns)]
        _ => None,
    };
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
    let theirs = dst.refs()?;
    let mut updates = Vec::new();
    let mut tips = Vec::new();
    let mut sent = Vec::new();
    for (n, id) in &mine {
        let old = theirs.iter().find(|(t, _)| t == n).map(|(_, id)| *id);
        // Judged here first (ancestry in this store), so rejected refs'
        // objects are not sent; the receiver judges again.
        let outcome = judge(repo, old, *id, force)?;
        if matches!(
            outcome,
            Outcome::Created | Outcome::FastForward | Outcome::Forced
        ) {
            tips.push(*id);
            sent.push((n.as_str().to_owned(), old, *id));
        }
        updates.push(RefUpdate {
            from: n.as_str().to_owned(),
            to: n.as_str().to_owned(),
            old,
            new: *id,
            outcome,
        });
    }
    let (transfer, results) = match &dst {
        Endpoint::Dir(d) => {
            let (t, pinned) = transfer(repo, d, &tips, remote)?;
            let r = apply_updates(d, &sent, force)?;
            drop(pinned);
            (t, r)
        }
        #[cfg(feature = "http")]
        Endpoint::Http(c) => {
            let have = remote_has(repo, theirs.iter().map(|(_, id)| *id))?;
            let file = send_beyond(repo, &tips, &have)?;
            let t = file.counts.clone();
            (t, c.push(&sent, &file, force, token)?)
        }
        #[cfg(feature = "s3")]
        Endpoint::S3(s) => s.push(repo, &sent, force)?,
    };
    for (ref_name_s, outcome) in results {
        if let Some(u) = updates.iter_mut().find(|u| u.to == ref_name_s) {
            u.outcome = outcome;
        }
    }
    if let Some(remote_name) = &name {
        for u in &updates {
            if matches!(u.outcome, Outcome::Rejected(_)) {
                continue;
            }
            let local = tracking_name(remote_name, &ref_name(&u.to)?)?;
            let cur = repo.refs().resolve(&local)?;
            if cur != Some(u.new) {
                repo.refs()
                    .update(&local, u.new, prev(cur), &format!("push {remote_name}"))?;
            }
        }
    }
    Ok(Sync {
        remote: name.unwrap_or_else(|| url.to_string()),
        transfer,
        updates,
        requests: dst.requests(),
    })
}

/// What a remote whose refs point at `tips` has, as far as `repo` can
/// tell: the commits reachable from the tips `repo` holds too.
#[cfg(any(feature = "http", feature = "s3"))]
fn remote_has(
    repo: &Repository,
    tips: impl IntoIterator<Item = ObjectId>,
) -> Result<HashSet<ObjectId>> {
    let known: Vec<ObjectId> = tips
        .into_iter()
        .filter(|id| repo.objects().contains(id).unwrap_or(false))
        .collect();
    commits_from(repo, &known)
}

/// The transfer a remote that has the commits `have` lacks to hold `tips`
/// (for a remote that cannot be asked about single objects: HTTP, S3).
#[cfg(any(feature = "http", feature = "s3"))]
fn send_beyond(
    repo: &Repository,
    tips: &[ObjectId],
    have: &HashSet<ObjectId>,
) -> Result<TransferFile> {
    send(
        repo,
        tips,
        have,
        &|id| Ok(have.contains(id)),
        repo.objects(),
        None,
    )
}

/// Commits reachable from `from` in `repo` (those it has; parents it
/// lacks, below a retention horizon, end the walk; non-commits are
/// skipped).
pub fn commits_from(repo: &Repository, from: &[ObjectId]) -> Result<HashSet<ObjectId>> {
    let mut have = HashSet::new();
    let mut todo: Vec<ObjectId> = from.to_vec();
    while let Some(id) = todo.pop() {
        if have.contains(&id) {
            continue;
        }
        match repo.objects().get(&id) {
            Ok(o) if o.kind == Kind::Commit => {
                have.insert(id);
                todo.extend(o.commit()?.parents.iter().copied());
            }
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(have)
}

fn judge(repo: &Repository, old: Option<ObjectId>, new: ObjectId, force: bool) -> Result<Outcome> {
    judge_on(repo.objects(), old, new, force)
}

mod receive;
#[cfg(feature = "s3")]
mod replica;
#[cfg(feature = "s3")]
mod s3;
pub mod tindex;
pub use receive::{receive, receive_bytes, receive_chunks, receive_from};
#[cfg(feature = "s3")]
pub use replica::{Replica, ReplicaOptions, ReplicaStats};
#[cfg(feature = "s3")]
pub use s3::{MANIFEST_FORMAT, Manifest, PackEntry, Repack};

/// What `sydra gc --remote` did.
#[cfg(feature = "s3")]
#[derive(Debug, Clone)]
pub struct RemoteGc {
    /// The repack's outcome, when one was asked for.
    pub repack: Option<Repack>,
    /// Packs in the bucket before deleting.
    pub listed: u64,
    /// Objects deleted (packs, their indexes, retirement markers, probes).
    pub deleted: u64,
    /// Unlisted objects kept because younger than the grace period.
    pub young: u64,
    /// Requests made.
    pub requests: u64,
}

/// `sydra gc --remote`: on an S3 remote, first (with `repack`) merge the
/// newest packs into one sent again from `repo`, then delete the packs
/// its manifest no longer lists once `grace` has passed since they were
/// uploaded or retired (see `s3.rs`).
#[cfg(feature = "s3")]
pub fn gc_remote(
    repo: &Repository,
    remote: &str,
    grace: std::time::Duration,
    repack: bool,
) -> Result<RemoteGc> {
    let (name, url) = resolve_remote(repo, remote)?;
    let RemoteUrl::S3(u) = &url else {
        return Err(remote_err(
            &url.to_string(),
            "gc --remote collects S3 remotes; a data directory or a `sydra serve` runs its own `sydra gc`",
        ));
    };
    let marker = name.as_deref().map(|n| s3::probed_marker(repo, n));
    let r = s3::open(u, marker.as_deref(), true)?;
    // A repack that fails leaves the remote as it was; the deletion below
    // still runs.
    let repack = repack.then(|| {
        r.repack(repo).unwrap_or_else(|e| {
            s3::Repack::Skipped(format!(
                "{e} (nothing was changed; --no-repack skips the merge)"
            ))
        })
    });
    let (listed, deleted, young) = r.gc(grace)?;
    Ok(RemoteGc {
        repack,
        listed,
        deleted,
        young,
        requests: r.requests(),
    })
}

/// The HTTP transport: a client of `sydra serve` (crate::serve).
#[cfg(feature = "http")]
mod http {
    use std::io::Read;

    use serde_json::{Value, json};
    use sydra_objects::{ObjectId, Pinned};
    use sydra_refs::RefName;

    use super::{Outcome, TransferFile, remote_err};
    use crate::error::{Error, Result};
    use crate::repo::Repository;

    /// The largest transfer a fetch accepts (the server's push limit is
    /// its own).
    const MAX_FETCH_BYTES: u64 = 64 << 30;

    pub(super) struct Client {
        base: String,
        agent: ureq::Agent,
    }

    impl Client {
        pub(super) fn new(url: &str) -> Client {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            Client {
                base: url.trim_end_matches('/').to_owned(),
                agent,
            }
        }

        fn err(&self, reason: impl Into<String>) -> Error {
            remote_err(&self.base, reason)
        }

        /// Send a request (made anew for each try) until the server is not
        /// busy: a 503 (more than its concurrent requests) or a connection
        /// it dropped while busy is retried with backoff, up to ~30 s.
        fn retrying(
            &self,
            what: &str,
            mut send: impl FnMut() -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        ) -> Result<ureq::http::Response<ureq::Body>> {
            let mut wait = std::time::Duration::from_millis(20);
            let mut waited = std::time::Duration::ZERO;
            loop {
                let last_try = waited > std::time::Duration::from_secs(30);
                match send() {
                    Ok(r) if r.status().as_u16() == 503 && !last_try => {}
                    Ok(r) => return Ok(r),
                    // Dropped mid-request (a busy server answers 503 and
                    // closes before reading the body); a refused
                    // connection is not retried.
                    Err(ureq::Error::Io(e))
                        if !last_try
                            && matches!(
                                e.kind(),
                                std::io::ErrorKind::ConnectionReset
                                    | std::io::ErrorKind::BrokenPipe
                            ) => {}
                    Err(e) => return Err(self.err(format!("{what}: {e}"))),
                }
                std::thread::sleep(wait);
                waited += wait;
                wait = (wait * 2).min(std::time::Duration::from_secs(1));
            }
        }

        /// The JSON body of a 200 answer.
        fn json(&self, resp: &mut ureq::http::Response<ureq::Body>, what: &str) -> Result<Value> {
            self.check(resp, what)?;
            let text = resp
                .body_mut()
                .read_to_string()
                .map_err(|e| self.err(format!("{what}: reading the answer: {e}")))?;
            serde_json::from_str(&text)
                .map_err(|e| self.err(format!("{what}: the answer is not JSON: {e}")))
        }

        fn check(&self, resp: &mut ureq::http::Response<ureq::Body>, what: &str) -> Result<()> {
            let code = resp.status().as_u16();
            if code == 200 {
                return Ok(());
            }
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            Err(self.err(format!("{what}: HTTP {code}: {}", body.trim())))
        }

        pub(super) fn refs(&self) -> Result<Vec<(RefName, ObjectId)>> {
            let url = format!("{}/api/v1/refs", self.base);
            let mut resp = self.retrying("listing refs", || self.agent.get(&url).call())?;
            let v = self.json(&mut resp, "listing refs")?;
            let mut out = Vec::new();
            for r in v
                .get("refs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
                let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
                let (Ok(n), Ok(i)) = (RefName::new(name), id.parse::<ObjectId>()) else {
                    return Err(self.err(format!("bad ref entry {r}")));
                };
                out.push((n, i));
            }
            Ok(out)
        }

        pub(super) fn fetch(
            &self,
            wants: &[ObjectId],
            haves: &[ObjectId],
            dst: &Repository,
            remote: &str,
        ) -> Result<(super::Transfer, Option<Pinned>)> {
            let body = json!({
                "wants": wants.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
                "haves": haves.iter().map(|i| i.to_hex()).collect::<Vec<_>>(),
            })
            .to_string();
            let url = format!("{}/api/v1/fetch", self.base);
            let mut resp = self.retrying("fetch", || {
                self.agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(body.as_bytes())
            })?;
            self.check(&mut resp, "fetch")?;
            // Streamed into the store as it arrives. A server that failed
            // after its 200 went out sends its error instead.
            let mut body = resp.body_mut().as_reader();
            let mut head = [0u8; 8];
            let mut got = 0;
            while got < head.len() {
                match body.read(&mut head[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.err(format!("fetch cut short: {e}"))),
                }
            }
            if got >= 4 && head[..4] == super::TRANSFER_ERROR_MAGIC {
                let mut text = head[4..got].to_vec();
                let _ = (&mut body).take(64 << 10).read_to_end(&mut text);
                return Err(self.err(format!(
                    "the server could not build the transfer: {}",
                    String::from_utf8_lossy(&text)
                )));
            }
            let mut stream = (&head[..got]).chain(body);
            super::receive_from(dst, &mut stream, MAX_FETCH_BYTES, remote)
        }

        pub(super) fn push(
            &self,
            updates: &[(String, Option<ObjectId>, ObjectId)],
            file: &TransferFile,
            force: bool,
            token: Option<&str>,
        ) -> Result<Vec<(String, Outcome)>> {
            let head = json!({
                "updates": updates.iter().map(|(n, o, id)| json!({
                    "name": n,
                    "old": o.map(|o| o.to_hex()),
                    "new": id.to_hex(),
                })).collect::<Vec<_>>(),
            })
            .to_string();
            // Ask first: a refused push must not send its pack for nothing.
            let bearer = token.map(|t| format!("Bearer {t}"));
            let probe_url = format!("{}/api/v1/push", self.base);
            let mut resp = self.retrying("push", || {
                let mut probe = self.agent.get(&probe_url);
                if let Some(b) = &bearer {
                    probe = probe.header("Authorization", b);
                }
                probe.call()
            })?;
            self.check(&mut resp, "push")?;
            let mut prefix = (head.len() as u32).to_le_bytes().to_vec();
            prefix.extend_from_slice(head.as_bytes());
            let push_url = format!(
                "{}/api/v1/push{}",
                self.base,
                if force { "?force=1" } else { "" }
            );
            // Retried whole when the server was busy: ref updates are
            // compare-and-swaps judged again on the server, so a push that
            // landed before its answer was lost reports up-to-date.
            let mut resp = self.retrying("push", || {
                let f = std::fs::File::open(&file.path).map_err(ureq::Error::Io)?;
                let body = std::io::Cursor::new(prefix.clone()).chain(f);
                let mut req = self
                    .agent
                    .post(&push_url)
                    .header("Content-Type", "application/octet-stream");
                if let Some(b) = &bearer {
                    req = req.header("Authorization", b);
                }
                req.send(ureq::SendBody::from_owned_reader(body))
            })?;
            let v = self.json(&mut resp, "push")?;
            let mut out = Vec::new();
            for r in v
                .get("refs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = r
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let reason = r
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let o = match r.get("status").and_then(Value::as_str) {
                    Some("created") => Outcome::Created,
                    Some("fast-forward") => Outcome::FastForward,
                    Some("forced") => Outcome::Forced,
                    Some("up-to-date") => Outcome::UpToDate,
                    _ => Outcome::Rejected(reason),
                };
                out.push((name, o));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sydra_objects::tree::{Entry, Tree};
    use sydra_objects::{Kind, ObjectId};

    fn tree(names: &[&str]) -> Vec<u8> {
        let entries = names
            .iter()
            .map(|n| Entry {
                kind: Kind::Blob,
                name: (*n).to_owned(),
                id: ObjectId::from_slice(blake3::hash(n.as_bytes()).as_bytes()).unwrap(),
            })
            .collect();
        Tree::from_entries(entries).unwrap().encode()
    }

    #[test]
    fn a_grown_tree_yields_only_its_new_entries() {
        let base = tree(&["a.t", "a.v", "b.t"]);
        let grown = tree(&["a.t", "a.v", "b.t", "b.v", "c.t"]);
        let tail = super::new_entries(&grown, &base).unwrap();
        let got: Vec<&[u8]> = sydra_objects::TreeRef::raw_entries(&tail)
            .unwrap()
            .iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(got, vec![&b"b.v"[..], b"c.t"]);
        // Not a prefix: an entry changed, or one was inserted before the
        // end, or the tree shrank.
        assert!(super::new_entries(&tree(&["a.t", "a.x", "b.t", "b.v"]), &base).is_none());
        assert!(super::new_entries(&tree(&["0", "a.t", "a.v", "b.t"]), &base).is_none());
        assert!(super::new_entries(&tree(&["a.t"]), &base).is_none());
        assert!(super::new_entries(&base[..3], &base).is_none());
        // The same tree: nothing new.
        let none = super::new_entries(&base, &base).unwrap();
        assert!(
            sydra_objects::TreeRef::raw_entries(&none)
                .unwrap()
                .is_empty()
        );
    }
}
