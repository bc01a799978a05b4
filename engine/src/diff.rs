//! Tree diff and path history, both pruned by subtree id: a subtree whose
//! id is the same on both sides is never read, so the cost follows the
//! size of the change, not the size of the tree.

use sydra_objects::{Kind, ObjectId, Store};

use crate::error::Result;

/// How a path changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Only on the new side.
    Added,
    /// Only on the old side.
    Removed,
    /// On both sides with different ids.
    Modified,
}

impl ChangeKind {
    /// One-letter code: `A`, `D`, `M`.
    pub fn code(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Removed => 'D',
            ChangeKind::Modified => 'M',
        }
    }
}

/// One changed leaf (blob) path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `/`-separated path from the root.
    pub path: String,
    /// What happened.
    pub kind: ChangeKind,
    /// Kind and id before (None when added).
    pub old: Option<ObjectId>,
    /// Kind and id after (None when removed).
    pub new: Option<ObjectId>,
}

type Entries = Vec<(String, Kind, ObjectId)>;

fn entries(store: &Store, tree: Option<ObjectId>) -> Result<Entries> {
    let Some(id) = tree else {
        return Ok(Vec::new());
    };
    // Verified: a forged tree that contains itself would otherwise be
    // descended forever (see `path_history_until`).
    let obj = store.get_verified(&id)?;
    Ok(obj
        .tree()?
        .entries
        .iter()
        .map(|e| (e.name.to_owned(), e.kind, e.id))
        .collect())
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The blob-level changes from tree `a` to tree `b` (either may be absent,
/// meaning empty), sorted by path.
pub fn diff_trees(store: &Store, a: Option<ObjectId>, b: Option<ObjectId>) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    // Explicit stack: (path prefix, old subtree, new subtree).
    let mut stack = vec![(String::new(), a, b)];
    while let Some((prefix, a, b)) = stack.pop() {
        if a == b {
            continue;
        }
        let (ea, eb) = (entries(store, a)?, entries(store, b)?);
        let (mut i, mut j) = (0, 0);
        while i < ea.len() || j < eb.len() {
            let ord = match (ea.get(i), eb.get(j)) {
                (Some(x), Some(y)) => x.0.as_bytes().cmp(y.0.as_bytes()),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            let (old, new) = match ord {
                std::cmp::Ordering::Less => {
                    i += 1;
                    (Some(&ea[i - 1]), None)
                }
                std::cmp::Ordering::Greater => {
                    j += 1;
                    (None, Some(&eb[j - 1]))
                }
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                    (Some(&ea[i - 1]), Some(&eb[j - 1]))
                }
            };
            let name = old.or(new).map(|e| e.0.as_str()).unwrap_or_default();
            let path = join(&prefix, name);
            let tree_of =
                |e: Option<&(String, Kind, ObjectId)>| e.filter(|e| e.1 == Kind::Tree).map(|e| e.2);
            let blob_of =
                |e: Option<&(String, Kind, ObjectId)>| e.filter(|e| e.1 == Kind::Blob).map(|e| e.2);
            let (ot, nt) = (tree_of(old), tree_of(new));
            if ot != nt && (ot.is_some() || nt.is_some()) {
                stack.push((path.clone(), ot, nt));
            }
            let (ob, nb) = (blob_of(old), blob_of(new));
            let kind = match (ob, nb) {
                (Some(x), Some(y)) if x == y => continue,
                (Some(_), Some(_)) => ChangeKind::Modified,
                (Some(_), None) => ChangeKind::Removed,
                (None, Some(_)) => ChangeKind::Added,
                (None, None) => continue,
            };
            out.push(Change {
                path,
                kind,
                old: ob,
                new: nb,
            });
        }
    }
    out.sort_by(|x, y| x.path.cmp(&y.path));
    Ok(out)
}

/// Ids along `comps` from `root`: index 0 is the root tree, index k the
/// object at the first k components. Stops early (shorter result) when a
/// component is missing. When `other` is given and the id at some level
/// equals `other`'s id at that level, the rest is copied from `other`
/// without reading anything (same subtree, same contents).
fn trail(
    store: &Store,
    root: ObjectId,
    comps: &[&str],
    other: Option<&[Option<ObjectId>]>,
) -> Result<Vec<Option<ObjectId>>> {
    let mut out = vec![Some(root)];
    let mut cur = root;
    for (depth, comp) in comps.iter().enumerate() {
        if let Some(o) = other
            && o.get(depth) == Some(&Some(cur))
        {
            out.truncate(depth);
            out.extend_from_slice(&o[depth..]);
            return Ok(out);
        }
        let obj = store.get(&cur)?;
        if obj.kind != Kind::Tree {
            out.push(None);
            return Ok(out);
        }
        match obj.tree()?.find(comp) {
            Some(e) => {
                cur = e.id;
                out.push(Some(e.id));
            }
            None => {
                out.push(None);
                return Ok(out);
            }
        }
    }
    Ok(out)
}

fn leaf(t: &[Option<ObjectId>], comps: usize) -> Option<ObjectId> {
    if t.len() == comps + 1 { t[comps] } else { None }
}

/// One commit where the object at a path changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathChange {
    /// The commit that made the change.
    pub commit: ObjectId,
    /// The object before (in its first parent), if any.
    pub old: Option<ObjectId>,
    /// The object after, if any.
    pub new: Option<ObjectId>,
}

/// The commits on the first-parent chain from `start` where the object at
/// `path` appeared, changed id or disappeared, newest first.
pub fn path_history(store: &Store, start: ObjectId, path: &str) -> Result<Vec<PathChange>> {
    path_history_until(store, start, path, &|_| false)
}

/// [`path_history`], treating commits for which `is_boundary` holds as
/// having no parent (a retention horizon).
pub fn path_history_until(
    store: &Store,
    start: ObjectId,
    path: &str,
    is_boundary: &dyn Fn(&ObjectId) -> bool,
) -> Result<Vec<PathChange>> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let mut out = Vec::new();
    // Verified (BLAKE3 recomputed): walkers never trust the graph to be
    // acyclic. An honest id cannot name an object that reaches itself, so
    // a cycle needs a forged object, and the hash check stops the walk on
    // it with an error naming it; memory stays what the walk needs.
    let obj = store.get_verified(&start)?;
    let c = obj.commit()?;
    let parent_of = |id: ObjectId, p: Option<ObjectId>| if is_boundary(&id) { None } else { p };
    let mut cur = (
        start,
        trail(store, c.tree, &comps, None)?,
        parent_of(start, c.first_parent()),
    );
    loop {
        let (id, t, parent) = cur;
        let now = leaf(&t, comps.len());
        let Some(p) = parent else {
            if now.is_some() {
                out.push(PathChange {
                    commit: id,
                    old: None,
                    new: now,
                });
            }
            return Ok(out);
        };
        let pobj = store.get_verified(&p)?;
        let pc = pobj.commit()?;
        let pt = trail(store, pc.tree, &comps, Some(&t))?;
        let before = leaf(&pt, comps.len());
        if before != now {
            out.push(PathChange {
                commit: id,
                old: before,
                new: now,
            });
        }
        cur = (p, pt, parent_of(p, pc.first_parent()));
    }
}
