//! The arena tree builder: edit a tree by path, starting from a base tree,
//! and write back only the trees on changed paths.
//!
//! Nodes live in a caller-provided [`bumpalo::Bump`], so building a change
//! set costs a few bump allocations per touched directory and everything is
//! freed at once when the arena goes away. Base subtrees are loaded lazily,
//! only along paths that are touched; an untouched subtree is never read and
//! keeps its id. Dropping a builder without calling [`TreeBuilder::write`]
//! is an abort: nothing was written.

use bumpalo::Bump;
use bumpalo::collections::Vec as BVec;

use crate::error::{Error, Result};
use crate::name::validate_name;
use crate::store::{Batch, Durability, Pinned, Store};
use crate::tree::encode_entries;
use crate::{Kind, ObjectId};

/// Paths deeper than this are refused (it bounds recursion when writing).
pub const MAX_DEPTH: usize = 256;

struct Dir<'a> {
    /// The stored tree this directory was loaded from, if any.
    base: Option<ObjectId>,
    /// Changed since loading (or new): must be re-encoded on write.
    dirty: bool,
    /// Sorted by name bytes.
    entries: BVec<'a, Slot<'a>>,
}

struct Slot<'a> {
    name: &'a str,
    node: Node<'a>,
}

enum Node<'a> {
    Blob(ObjectId),
    /// A subtree not loaded (and therefore unchanged).
    Tree(ObjectId),
    /// A loaded subtree, possibly changed.
    Dir(&'a mut Dir<'a>),
}

/// What is at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    /// Blob or tree.
    pub kind: Kind,
    /// Its id; `None` for a subtree changed in this builder (not yet written).
    pub id: Option<ObjectId>,
}

/// Edits a tree by path; see the module docs.
pub struct TreeBuilder<'a> {
    store: &'a Store,
    arena: &'a Bump,
    root: &'a mut Dir<'a>,
}

impl std::fmt::Debug for TreeBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeBuilder")
            .field("base", &self.root.base)
            .finish_non_exhaustive()
    }
}

fn split_path(path: &str) -> Result<Vec<&str>> {
    let bad = |reason: String| Error::Path {
        path: path.to_owned(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("empty path".into()));
    }
    let comps: Vec<&str> = path.split('/').collect();
    if comps.len() > MAX_DEPTH {
        return Err(bad(format!(
            "{} components; at most {MAX_DEPTH} are allowed",
            comps.len()
        )));
    }
    for c in &comps {
        validate_name(c.as_bytes()).map_err(|e| bad(e.to_string()))?;
    }
    Ok(comps)
}

fn find(entries: &[Slot<'_>], name: &str) -> std::result::Result<usize, usize> {
    entries.binary_search_by(|s| s.name.as_bytes().cmp(name.as_bytes()))
}

impl<'a> TreeBuilder<'a> {
    /// Start from `base` (a tree id) or from an empty tree.
    pub fn new(store: &'a Store, arena: &'a Bump, base: Option<ObjectId>) -> Result<Self> {
        let root = match base {
            Some(id) => load(store, arena, id)?,
            None => arena.alloc(Dir {
                base: None,
                dirty: true,
                entries: BVec::new_in(arena),
            }),
        };
        Ok(TreeBuilder { store, arena, root })
    }

    /// Walk to the directory holding the last component. With `create`,
    /// missing directories are made and every directory on the way is
    /// marked dirty.
    fn parent_of(
        &mut self,
        comps: &[&str],
        path: &str,
        create: bool,
    ) -> Result<Option<&mut Dir<'a>>> {
        let (store, arena) = (self.store, self.arena);
        let mut cur: &mut Dir<'a> = &mut *self.root;
        if create {
            cur.dirty = true;
        }
        for (depth, comp) in comps[..comps.len() - 1].iter().enumerate() {
            let idx = match find(&cur.entries, comp) {
                Ok(i) => i,
                Err(_) if !create => return Ok(None),
                Err(i) => {
                    let dir = arena.alloc(Dir {
                        base: None,
                        dirty: true,
                        entries: BVec::new_in(arena),
                    });
                    cur.entries.insert(
                        i,
                        Slot {
                            name: arena.alloc_str(comp),
                            node: Node::Dir(dir),
                        },
                    );
                    i
                }
            };
            let slot = &mut cur.entries[idx];
            if let Node::Tree(id) = slot.node {
                slot.node = Node::Dir(load(store, arena, id)?);
            }
            cur = match &mut slot.node {
                Node::Dir(d) => &mut **d,
                Node::Blob(_) if create => {
                    return Err(Error::Path {
                        path: path.to_owned(),
                        reason: format!("{} is a blob, not a directory", comps[..=depth].join("/")),
                    });
                }
                _ => return Ok(None),
            };
            if create {
                cur.dirty = true;
            }
        }
        Ok(Some(cur))
    }

    /// What is at `path`, if anything.
    pub fn get(&mut self, path: &str) -> Result<Option<Lookup>> {
        let comps = split_path(path)?;
        let Some(dir) = self.parent_of(&comps, path, false)? else {
            return Ok(None);
        };
        let Some(last) = comps.last() else {
            return Ok(None);
        };
        Ok(find(&dir.entries, last)
            .ok()
            .map(|i| match &dir.entries[i].node {
                Node::Blob(id) => Lookup {
                    kind: Kind::Blob,
                    id: Some(*id),
                },
                Node::Tree(id) => Lookup {
                    kind: Kind::Tree,
                    id: Some(*id),
                },
                Node::Dir(d) => Lookup {
                    kind: Kind::Tree,
                    id: if d.dirty { None } else { d.base },
                },
            }))
    }

    /// Put a blob or tree at `path`, creating directories as needed and
    /// replacing whatever was there. Fails if a parent component is a blob.
    pub fn upsert(&mut self, path: &str, kind: Kind, id: ObjectId) -> Result<()> {
        let node = match kind {
            Kind::Blob => Node::Blob(id),
            Kind::Tree => Node::Tree(id),
            Kind::Commit => {
                return Err(Error::Path {
                    path: path.to_owned(),
                    reason: "trees cannot hold commits".into(),
                });
            }
        };
        let comps = split_path(path)?;
        if self.get(path)? == Some(Lookup { kind, id: Some(id) }) {
            return Ok(());
        }
        let arena = self.arena;
        let Some(dir) = self.parent_of(&comps, path, true)? else {
            return Err(Error::Path {
                path: path.to_owned(),
                reason: "parent missing".into(),
            });
        };
        let Some(last) = comps.last() else {
            return Ok(());
        };
        match find(&dir.entries, last) {
            Ok(i) => dir.entries[i].node = node,
            Err(i) => dir.entries.insert(
                i,
                Slot {
                    name: arena.alloc_str(last),
                    node,
                },
            ),
        }
        Ok(())
    }

    /// Remove whatever is at `path`. Returns whether something was there.
    /// Directories left empty disappear from the written tree.
    pub fn remove(&mut self, path: &str) -> Result<bool> {
        let comps = split_path(path)?;
        if self.get(path)?.is_none() {
            return Ok(false);
        }
        let Some(dir) = self.parent_of(&comps, path, true)? else {
            return Ok(false);
        };
        let Some(last) = comps.last() else {
            return Ok(false);
        };
        match find(&dir.entries, last) {
            Ok(i) => {
                dir.entries.remove(i);
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Write every changed tree (bottom-up) into `batch` and return the root
    /// tree id. The root is written even when empty; other empty directories
    /// are dropped.
    pub fn write(self, batch: &mut Batch) -> Result<ObjectId> {
        match write_dir(self.root, batch, true)? {
            Some(id) => Ok(id),
            None => batch.put(Kind::Tree, &encode_entries(std::iter::empty(), 0)),
        }
    }

    /// Write through a fresh batch with `durability`; returns the root id and
    /// the pins that keep the new trees safe from GC until dropped.
    pub fn write_durable(self, durability: Durability) -> Result<(ObjectId, Pinned)> {
        let mut batch = self.store.batch(durability);
        let id = self.write(&mut batch)?;
        let (pins, _) = batch.commit()?;
        Ok((id, pins))
    }
}

fn load<'a>(store: &Store, arena: &'a Bump, id: ObjectId) -> Result<&'a mut Dir<'a>> {
    let obj = store.get(&id)?;
    let tree = obj.tree()?;
    let mut entries = BVec::with_capacity_in(tree.entries.len(), arena);
    for e in &tree.entries {
        let node = if e.kind == Kind::Tree {
            Node::Tree(e.id)
        } else {
            Node::Blob(e.id)
        };
        entries.push(Slot {
            name: arena.alloc_str(e.name),
            node,
        });
    }
    Ok(arena.alloc(Dir {
        base: Some(id),
        dirty: false,
        entries,
    }))
}

fn write_dir(dir: &Dir<'_>, batch: &mut Batch, is_root: bool) -> Result<Option<ObjectId>> {
    if !dir.dirty {
        return Ok(dir.base);
    }
    let mut out: Vec<(Kind, &str, ObjectId)> = Vec::with_capacity(dir.entries.len());
    for slot in dir.entries.iter() {
        match &slot.node {
            Node::Blob(id) => out.push((Kind::Blob, slot.name, *id)),
            Node::Tree(id) => out.push((Kind::Tree, slot.name, *id)),
            Node::Dir(d) => {
                if let Some(id) = write_dir(d, batch, false)? {
                    out.push((Kind::Tree, slot.name, id));
                }
            }
        }
    }
    if out.is_empty() && !is_root {
        return Ok(None);
    }
    let n = out.len();
    let bytes = encode_entries(out.into_iter(), n);
    batch.put(Kind::Tree, &bytes).map(Some)
}
