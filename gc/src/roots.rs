//! GC roots: every ref (HEAD included), reflog entries younger than the
//! expiry (and not older than a retention horizon), ids pinned by in-flight
//! writes, and any extra ids a caller names.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sydra_objects::ObjectId;
use sydra_refs::{LOGS_DIR, RefName, RefStore};

use crate::error::{Error, Result};
use crate::horizon::Horizon;

/// Where a root came from; used to name the path by which a damaged object
/// is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A ref's current value.
    Ref(RefName),
    /// An entry (old or new value) of a ref's reflog.
    Reflog(RefName),
    /// An id pinned by an in-flight write of this process when the GC began.
    Pinned,
    /// An extra root named by the caller.
    Named(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Ref(n) => write!(f, "{n}"),
            Origin::Reflog(n) => write!(f, "reflog of {n}"),
            Origin::Pinned => f.write_str("pinned by an in-flight write"),
            Origin::Named(s) => f.write_str(s),
        }
    }
}

/// A set of roots, in the order the mark visits them: refs, reflogs, extra
/// roots, pinned ids. (Pinned ids come last because an in-flight object may
/// legitimately be missing; anything a ref or reflog reaches is visited, and
/// its damage reported, first.)
#[derive(Debug, Clone, Default)]
pub struct Roots {
    origins: Vec<Origin>,
    roots: Vec<(ObjectId, usize)>,
}

impl Roots {
    /// No roots.
    pub fn new() -> Roots {
        Roots::default()
    }

    /// Add `ids` reached from `origin` (duplicates are harmless).
    pub fn push(&mut self, origin: Origin, ids: impl IntoIterator<Item = ObjectId>) {
        let at = self.origins.len();
        let before = self.roots.len();
        self.roots.extend(ids.into_iter().map(|id| (id, at)));
        if self.roots.len() > before {
            self.origins.push(origin);
        }
    }

    /// Number of root entries.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The roots with their origin, in visiting order.
    pub fn iter(&self) -> impl Iterator<Item = (ObjectId, &Origin)> {
        self.roots
            .iter()
            .filter_map(|(id, o)| Some((*id, self.origins.get(*o)?)))
    }

    /// The distinct root ids, sorted.
    pub fn ids(&self) -> Vec<ObjectId> {
        let mut v: Vec<ObjectId> = self.roots.iter().map(|(id, _)| *id).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    pub(crate) fn origins(&self) -> &[Origin] {
        &self.origins
    }

    pub(crate) fn entries(&self) -> &[(ObjectId, usize)] {
        &self.roots
    }

    /// Refs and reflog entries of `refs` as of `now_ns`: every ref that
    /// points at an object, and the old and new ids of every reflog entry
    /// written at or after `now_ns - reflog_expiry_ns` and at or after the
    /// horizon's `since`.
    pub fn from_refs(
        refs: &RefStore,
        horizon: &Horizon,
        now_ns: i64,
        reflog_expiry_ns: i64,
    ) -> Result<Roots> {
        // No ref commit may fall between reading the refs and reading the
        // reflogs: it renames first and logs after, and a snapshot taken in
        // between would hold neither the value it replaced nor its log line.
        let _snapshot = refs.consistent_read();
        let mut roots = Roots::new();
        for (name, target) in refs.list("")? {
            roots.push(Origin::Ref(name), target.object());
        }
        let from = reflog_cutoff(horizon, now_ns, reflog_expiry_ns);
        for name in reflog_names(refs)? {
            let mut ids: Vec<ObjectId> = Vec::new();
            for e in refs.reflog(&name)? {
                if e.timestamp_ns >= from {
                    ids.extend(e.old);
                    ids.extend(e.new);
                }
            }
            ids.sort_unstable();
            ids.dedup();
            roots.push(Origin::Reflog(name), ids);
        }
        Ok(roots)
    }
}

/// The oldest reflog timestamp that is still a root.
pub fn reflog_cutoff(horizon: &Horizon, now_ns: i64, reflog_expiry_ns: i64) -> i64 {
    let expiry = now_ns.saturating_sub(reflog_expiry_ns);
    horizon.since_ns().map_or(expiry, |s| s.max(expiry))
}

/// A file found under `logs/`: its path and, when it is one, the name of the
/// ref whose reflog it is.
#[derive(Debug, Clone)]
pub struct LogFile {
    /// The file.
    pub path: PathBuf,
    /// The ref name, or why the file is not a reflog.
    pub name: std::result::Result<RefName, String>,
}

/// Every file under `logs/` (lock files excluded), sorted by path.
pub fn log_files(refs: &RefStore) -> Result<Vec<LogFile>> {
    let root = refs.dir().join(LOGS_DIR);
    let mut out = Vec::new();
    walk(&root, "", &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Names of every ref that has a reflog (deleted refs included).
pub fn reflog_names(refs: &RefStore) -> Result<Vec<RefName>> {
    Ok(log_files(refs)?
        .into_iter()
        .filter_map(|f| f.name.ok())
        .collect())
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<LogFile>) -> Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(Error::io("list", dir))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(Error::io("stat", &path))?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            out.push(LogFile {
                path,
                name: Err("its name is not UTF-8".into()),
            });
            continue;
        };
        let full = if rel.is_empty() {
            file_name.clone()
        } else {
            format!("{rel}/{file_name}")
        };
        if ty.is_dir() {
            walk(&path, &full, out)?;
            continue;
        }
        if file_name.ends_with(".lock") {
            continue;
        }
        let name = if ty.is_file() {
            RefName::new(&full).map_err(|e| e.to_string())
        } else {
            Err("not a regular file".into())
        };
        out.push(LogFile { path, name });
    }
    Ok(())
}
