//! The mark: every object reachable from the roots, found iteratively (an
//! explicit stack of commits and, per commit, of trees; no recursion, so no
//! depth limit), recorded in a compact [`IdSet`].
//!
//! Reachability is structural: commits name their tree and parents, trees
//! name their entries; blobs are never parsed. A tree is read for its
//! framing and ids only (`TreeRef::raw_entries`): its names' syntax and
//! order are fsck's object pass's to check (DECISIONS 62). Blobs are looked
//! up a tree's worth at a time (`Reader::file_lens`). A commit on the
//! retention [`Horizon`] is treated as parentless.
//!
//! A reachable object that is missing, unreadable, corrupt or of the wrong
//! kind is a [`Problem`], named with the path by which it was reached
//! (`refs/heads/main -> commit X -> tree wal/index/… -> blob Y`). It is never
//! treated as garbage: it stays in the set, and when a tree or commit cannot
//! be read, nothing below it is known, so a GC refuses to sweep at all
//! (see [`crate::Session::sweep`]).

use std::collections::HashMap;
use std::fmt;

use sydra_objects::store::header::MIN_FILE_LEN;
use sydra_objects::store::{Payload, Reader};
use sydra_objects::{CommitRef, Error as ObjectError, Kind, ObjectId, Store, TreeRef};

use crate::error::Result;
use crate::horizon::Horizon;
use crate::idset::IdSet;
use crate::progress::Progress;
use crate::roots::{Origin, Roots};

/// What the mark checks beyond reachability.
#[derive(Debug, Clone, Default)]
pub struct MarkOptions<'a> {
    /// Recompute BLAKE3 of the trees and commits it reads (their CRC and
    /// framing are always checked).
    pub verify_hash: bool,
    /// Read each blob's header (and check its kind) rather than only its
    /// file metadata.
    pub blob_headers: bool,
    /// Objects already known to be corrupt (id and reason), reported as
    /// problems with their path when reached (fsck's object pass fills it).
    pub known_bad: Option<&'a HashMap<ObjectId, String>>,
    /// Expected number of reachable objects: sizes the visited set up
    /// front (0: the number of packed objects).
    pub size_hint: usize,
}

/// How a commit was reached: from which root, how many parent steps below
/// it.
#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    /// The root.
    pub origin: &'a Origin,
    /// Parent steps from the root's commit (0: the root itself).
    pub depth: u32,
}

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.depth == 0 {
            write!(f, "{}", self.origin)
        } else {
            write!(f, "{}~{}", self.origin, self.depth)
        }
    }
}

/// Sees every reachable commit once, as the mark decodes it (the engine
/// uses it to find the WAL index of each reachable commit).
pub trait Visitor {
    /// A reachable commit.
    fn commit(&mut self, id: &ObjectId, commit: &CommitRef<'_>, via: Via<'_>);
}

/// A visitor that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVisitor;

impl Visitor for NoVisitor {
    fn commit(&mut self, _id: &ObjectId, _commit: &CommitRef<'_>, _via: Via<'_>) {}
}

/// What is wrong with a reachable object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Defect {
    /// No file.
    Missing,
    /// The file fails a check (framing, CRC, BLAKE3, decoding).
    Corrupt(String),
    /// The file cannot be read (an I/O error).
    Unreadable(String),
    /// The object is of another kind than the one that names it expects.
    WrongKind {
        /// What the referrer expects.
        expected: Kind,
        /// What the object is.
        actual: Kind,
    },
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Defect::Missing => f.write_str("is missing"),
            Defect::Corrupt(r) => write!(f, "is corrupt ({r})"),
            Defect::Unreadable(r) => write!(f, "cannot be read ({r})"),
            Defect::WrongKind { expected, actual } => {
                write!(f, "is a {actual} where a {expected} is expected")
            }
        }
    }
}

/// A reachable object that is not sound, and how it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The object.
    pub id: ObjectId,
    /// Its kind as named by what reaches it (`None` for a root of unknown
    /// kind).
    pub kind: Option<Kind>,
    /// What is wrong.
    pub defect: Defect,
    /// The path by which it is reached, ending with the object itself:
    /// `refs/heads/main~2 -> commit X -> tree wal/index/… -> blob Y`.
    pub chain: String,
    /// Its path inside the tree of the commit (or tree) that reaches it;
    /// `Some("")` for that root tree itself, `None` for commits.
    pub tree_path: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.map_or("object", Kind::as_str);
        write!(f, "{kind} {} {}: {}", self.id, self.defect, self.chain)
    }
}

/// Counts of reachable objects that exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reached {
    /// Commits.
    pub commits: u64,
    /// Trees.
    pub trees: u64,
    /// Blobs.
    pub blobs: u64,
    /// File bytes of all of them.
    pub bytes: u64,
}

impl Reached {
    /// Objects of every kind.
    pub fn objects(&self) -> u64 {
        self.commits + self.trees + self.blobs
    }
}

/// The result of a mark.
#[derive(Debug, Clone)]
pub struct Mark {
    set: IdSet,
    /// Reachable objects that exist, by kind, and their bytes.
    pub reached: Reached,
    /// Boundary commits reached (their parents were not followed).
    pub boundaries_reached: u64,
    /// Damage found on the way.
    pub problems: Vec<Problem>,
}

impl Mark {
    /// Whether `id` was reached (damaged objects included).
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.set.contains(id)
    }

    /// Every id reached (damaged ones included), in visiting order.
    pub fn ids(&self) -> impl Iterator<Item = &ObjectId> {
        self.set.iter()
    }

    /// Heap bytes of the visited set.
    pub fn set_bytes(&self) -> usize {
        self.set.heap_bytes()
    }
}

/// Mark everything reachable from `roots`.
pub fn mark(
    store: &Store,
    roots: &Roots,
    horizon: &Horizon,
    options: &MarkOptions<'_>,
    visitor: &mut dyn Visitor,
    progress: &dyn Progress,
) -> Result<Mark> {
    progress.phase("marking", "objects", None);
    let mut m = Marker {
        store,
        horizon,
        options,
        progress,
        visitor,
        reader: store.reader(),
        // Without a hint, the packed objects bound what can be reached
        // (give or take loose ones): sizing the set for them up front
        // saves its rebuilds while it doubles.
        set: IdSet::with_capacity(if options.size_hint > 0 {
            options.size_hint
        } else {
            usize::try_from(store.pack_stats().objects).unwrap_or(0)
        }),
        ids: Vec::new(),
        fresh: Vec::new(),
        lens: Vec::new(),
        reached: Reached::default(),
        boundaries: 0,
        problems: Vec::new(),
        commits: Vec::new(),
    };
    let origins = roots.origins();
    for &(id, o) in roots.entries() {
        let Some(origin) = origins.get(o) else {
            continue;
        };
        if !m.set.insert(id)? {
            continue;
        }
        m.root(id, o, origin)?;
        while let Some(p) = m.commits.pop() {
            let origin = origins.get(p.origin).unwrap_or(origin);
            m.commit(p, origin)?;
        }
    }
    progress.finish();
    Ok(Mark {
        set: m.set,
        reached: m.reached,
        boundaries_reached: m.boundaries,
        problems: m.problems,
    })
}

/// A commit waiting on the stack.
struct Pending {
    id: ObjectId,
    origin: usize,
    depth: u32,
}

/// Where a tree walk started, for naming paths.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    origin: &'a Origin,
    depth: u32,
    commit: Option<ObjectId>,
}

impl Ctx<'_> {
    fn prefix(&self) -> String {
        let via = Via {
            origin: self.origin,
            depth: self.depth,
        };
        match self.commit {
            Some(c) => format!("{via} -> commit {c}"),
            None => via.to_string(),
        }
    }
}

struct Marker<'a, 'o> {
    store: &'a Store,
    horizon: &'a Horizon,
    options: &'a MarkOptions<'o>,
    progress: &'a dyn Progress,
    visitor: &'a mut dyn Visitor,
    reader: Reader,
    set: IdSet,
    /// Scratch for one tree's entry ids and whether each was new, and
    /// for its fresh blobs' lengths.
    ids: Vec<ObjectId>,
    fresh: Vec<bool>,
    lens: Vec<sydra_objects::Result<u64>>,
    reached: Reached,
    boundaries: u64,
    problems: Vec<Problem>,
    commits: Vec<Pending>,
}

fn defect_of(e: ObjectError) -> Defect {
    match e {
        ObjectError::NotFound(_) => Defect::Missing,
        ObjectError::Corrupt { reason, .. } => Defect::Corrupt(reason),
        ObjectError::Decode { source, .. } => Defect::Corrupt(source.to_string()),
        ObjectError::WrongKind {
            expected, actual, ..
        } => Defect::WrongKind { expected, actual },
        other => Defect::Unreadable(other.to_string()),
    }
}

impl Marker<'_, '_> {
    fn report(
        &mut self,
        origin: &Origin,
        id: ObjectId,
        kind: Option<Kind>,
        defect: Defect,
        chain: impl FnOnce() -> String,
        tree_path: Option<String>,
    ) {
        // An in-flight write may not have promoted every object yet; its
        // other objects are pinned or protected, so nothing is lost by not
        // knowing what a missing one would reference.
        if *origin == Origin::Pinned && defect == Defect::Missing {
            return;
        }
        self.problems.push(Problem {
            id,
            kind,
            defect,
            chain: chain(),
            tree_path,
        });
    }

    fn known_bad(&self, id: &ObjectId) -> Option<String> {
        self.options.known_bad.and_then(|m| m.get(id).cloned())
    }

    fn read(&mut self, id: &ObjectId) -> std::result::Result<Payload, Defect> {
        self.reader
            .read(id, self.options.verify_hash)
            .map_err(defect_of)
    }

    fn root(&mut self, id: ObjectId, origin_index: usize, origin: &Origin) -> Result<()> {
        self.progress.advance(1);
        let stat = match self.store.stat(&id) {
            Ok(s) => s,
            Err(e) => {
                let defect = defect_of(e);
                self.report(
                    origin,
                    id,
                    None,
                    defect,
                    || format!("{origin} -> object {id}"),
                    None,
                );
                return Ok(());
            }
        };
        match stat.kind {
            Kind::Commit => {
                // Its own `root` call counted it already.
                self.commits.push(Pending {
                    id,
                    origin: origin_index,
                    depth: 0,
                });
            }
            Kind::Tree => {
                let ctx = Ctx {
                    origin,
                    depth: 0,
                    commit: None,
                };
                self.walk_tree(id, ctx)?;
            }
            Kind::Blob => {
                self.reached.blobs += 1;
                self.reached.bytes += stat.file_len;
                if let Some(r) = self.known_bad(&id) {
                    self.report(
                        origin,
                        id,
                        Some(Kind::Blob),
                        Defect::Corrupt(r),
                        || format!("{origin} -> blob {id}"),
                        None,
                    );
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self, p: Pending, origin: &Origin) -> Result<()> {
        let id = p.id;
        let via = Via {
            origin,
            depth: p.depth,
        };
        if p.depth > 0 {
            self.progress.advance(1);
        }
        let chain = || format!("{via} -> commit {id}");
        let obj = match self.read(&id) {
            Ok(o) => o,
            Err(d) => {
                self.report(origin, id, Some(Kind::Commit), d, chain, None);
                return Ok(());
            }
        };
        let c = match obj.commit() {
            Ok(c) => c,
            Err(e) => {
                self.report(origin, id, Some(Kind::Commit), defect_of(e), chain, None);
                return Ok(());
            }
        };
        self.reached.commits += 1;
        self.reached.bytes += (obj.len() + MIN_FILE_LEN) as u64;
        if let Some(r) = self.known_bad(&id) {
            self.report(
                origin,
                id,
                Some(Kind::Commit),
                Defect::Corrupt(r),
                chain,
                None,
            );
        }
        self.visitor.commit(&id, &c, via);
        if self.set.insert(c.tree)? {
            let ctx = Ctx {
                origin,
                depth: p.depth,
                commit: Some(id),
            };
            self.walk_tree(c.tree, ctx)?;
        }
        if self.horizon.is_boundary(&id) {
            self.boundaries += 1;
            return Ok(());
        }
        // Reverse, so the first parent is popped (and its chain walked)
        // first.
        for parent in c.parents.iter().rev() {
            if self.set.insert(*parent)? {
                self.commits.push(Pending {
                    id: *parent,
                    origin: p.origin,
                    depth: p.depth.saturating_add(1),
                });
            }
        }
        drop(c);
        self.reader.recycle(obj);
        Ok(())
    }

    /// Walk the tree `root` (already in the set) and everything below it.
    ///
    /// Depth first over a stack of [`Frame`]s, one per directory on the
    /// current path, each holding the subtrees of that directory still to
    /// walk and only their names: memory is the width of the walk (pending
    /// siblings along one path) times a name, never depth times path
    /// length. A path is spelled out only when something is reported.
    fn walk_tree(&mut self, root: ObjectId, ctx: Ctx<'_>) -> Result<()> {
        let mut frames: Vec<Frame> = Vec::new();
        let mut next = Some((root, Box::<str>::default()));
        loop {
            if let Some((tid, name)) = next.take() {
                let pending = self.walk_one(tid, &frames, &name, &ctx)?;
                frames.push(Frame { name, pending });
            }
            let Some(top) = frames.last_mut() else {
                return Ok(());
            };
            match top.pending.pop() {
                Some(child) => next = Some(child),
                None => {
                    frames.pop();
                }
            }
        }
    }

    /// Read the tree `tid`, named `name` in the directory `frames` spell
    /// out: count it, check its blobs, and return its subtrees not yet in
    /// the set (in the order they are to be popped).
    fn walk_one(
        &mut self,
        tid: ObjectId,
        frames: &[Frame],
        name: &str,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<(ObjectId, Box<str>)>> {
        self.progress.advance(1);
        // Every defect of this tree is reported the same way: by the path
        // that reaches it.
        let flag = |me: &mut Self, d: Defect| {
            let path = frame_path(frames, name);
            let chain = || tree_chain(ctx, &path, Kind::Tree, &tid);
            me.report(
                ctx.origin,
                tid,
                Some(Kind::Tree),
                d,
                chain,
                Some(path.clone()),
            );
        };
        let obj = match self.read(&tid) {
            Ok(o) => o,
            Err(d) => {
                flag(self, d);
                return Ok(Vec::new());
            }
        };
        if obj.kind() != Kind::Tree {
            flag(
                self,
                Defect::WrongKind {
                    expected: Kind::Tree,
                    actual: obj.kind(),
                },
            );
            return Ok(Vec::new());
        }
        // Framing only (lengths, kinds): names matter to paths, not to
        // reachability, and fsck decodes every tree canonically.
        let entries = match TreeRef::raw_entries(&obj) {
            Ok(t) => t,
            Err(e) => {
                flag(self, Defect::Corrupt(e.to_string()));
                return Ok(Vec::new());
            }
        };
        self.reached.trees += 1;
        self.reached.bytes += (obj.len() + MIN_FILE_LEN) as u64;
        if let Some(r) = self.known_bad(&tid) {
            flag(self, Defect::Corrupt(r));
        }
        self.ids.clear();
        self.ids.extend(entries.iter().map(|e| e.id));
        let mut new = std::mem::take(&mut self.fresh);
        new.clear();
        self.set.insert_all(&self.ids, &mut new)?;
        let mut subtrees = Vec::new();
        // Fresh blobs are looked up together (their cache misses overlap),
        // unless each header is to be read whole.
        let batched = !self.options.blob_headers;
        self.ids.clear();
        for (e, &fresh) in entries.iter().zip(&new) {
            if !fresh {
                continue;
            }
            match e.kind {
                Kind::Tree => subtrees.push((e.id, name_of(e.name))),
                _ if batched => self.ids.push(e.id),
                _ => {
                    let found = self.blob_len(&e.id);
                    self.blob(e.id, found, ctx, || frame_path(frames, name), e.name);
                }
            }
        }
        if batched && !self.ids.is_empty() {
            let mut lens = std::mem::take(&mut self.lens);
            lens.clear();
            self.reader.file_lens(&self.ids, &mut lens);
            let blobs = entries
                .iter()
                .zip(&new)
                .filter(|(e, fresh)| **fresh && e.kind != Kind::Tree);
            for ((e, _), len) in blobs.zip(lens.drain(..)) {
                let found = len.map_err(defect_of);
                self.blob(e.id, found, ctx, || frame_path(frames, name), e.name);
            }
            self.lens = lens;
        }
        self.fresh = new;
        drop(entries);
        self.reader.recycle(obj);
        Ok(subtrees)
    }

    /// A blob's file length: its header read whole (kind checked) with
    /// `blob_headers`, else the reader's existence check.
    fn blob_len(&mut self, id: &ObjectId) -> std::result::Result<u64, Defect> {
        if self.options.blob_headers {
            match self.store.stat(id) {
                Ok(st) if st.kind == Kind::Blob => Ok(st.file_len),
                Ok(st) => Err(Defect::WrongKind {
                    expected: Kind::Blob,
                    actual: st.kind,
                }),
                Err(e) => Err(defect_of(e)),
            }
        } else {
            self.reader.file_len(id).map_err(defect_of)
        }
    }

    /// A blob named `name` in the tree at `dir()`, and what looking it up
    /// found: counted, or reported; its path is only spelled out when
    /// something is wrong.
    fn blob(
        &mut self,
        id: ObjectId,
        found: std::result::Result<u64, Defect>,
        ctx: &Ctx<'_>,
        dir: impl FnOnce() -> String,
        name: &[u8],
    ) {
        self.progress.advance(1);
        let defect = match found {
            Ok(len) => {
                self.reached.blobs += 1;
                self.reached.bytes += len;
                self.known_bad(&id).map(Defect::Corrupt)
            }
            Err(d) => Some(d),
        };
        if let Some(d) = defect {
            let path = join(&dir(), &name_of(name));
            let chain = || tree_chain(ctx, &path, Kind::Blob, &id);
            self.report(
                ctx.origin,
                id,
                Some(Kind::Blob),
                d,
                chain,
                Some(path.clone()),
            );
        }
    }
}

/// A directory on the current path of a tree walk: its name in its parent
/// (empty for the walk's root) and its subtrees still to walk.
struct Frame {
    name: Box<str>,
    pending: Vec<(ObjectId, Box<str>)>,
}

/// The path of the entry `name` in the directory `frames` lead to
/// (`frames[0]` is the walk's root, whose name is empty). Built only for
/// reports.
fn frame_path(frames: &[Frame], name: &str) -> String {
    let mut path = String::new();
    for f in frames.iter().skip(1).map(|f| &*f.name).chain([name]) {
        if f.is_empty() {
            continue;
        }
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(f);
    }
    path
}

/// An entry name as read unchecked (not decoded: see `walk_one`), for
/// paths in reports; invalid UTF-8 shows as U+FFFD.
fn name_of(raw: &[u8]) -> Box<str> {
    String::from_utf8_lossy(raw).into()
}

/// `dir/name`, or `name` at the top.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// `prefix -> tree <dir> -> <kind> <id>`, or `prefix -> tree <id>` for the
/// walk's root tree.
fn tree_chain(ctx: &Ctx<'_>, path: &str, kind: Kind, id: &ObjectId) -> String {
    let prefix = ctx.prefix();
    if path.is_empty() {
        return format!("{prefix} -> tree {id}");
    }
    let dir = path.rsplit_once('/').map_or("/", |(d, _)| d);
    format!("{prefix} -> tree {dir} -> {kind} {id}")
}
