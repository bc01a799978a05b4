//! A data directory opened for reading and plumbing: the object store and
//! the refs, without the writer lock or the WAL. Readers in any number of
//! processes may hold one beside a live engine: objects are immutable and
//! refs change by atomic rename.

use std::path::Path;

use sydra_objects::{Kind, ObjectId, Options, Store};
use sydra_refs::{RefName, RefStore};

use crate::error::{Error, Result};
use crate::layout::Layout;

/// Objects + refs of one data directory.
#[derive(Debug, Clone)]
pub struct Repository {
    layout: Layout,
    objects: Store,
    refs: RefStore,
}

impl Repository {
    /// Create the layout if needed (idempotent; what `sydra init` does, see
    /// [`Layout::create`] for what it refuses) and open it. The flag says
    /// whether it was newly created.
    pub fn init(dir: impl AsRef<Path>) -> Result<(Repository, bool)> {
        let layout = Layout::new(dir.as_ref());
        let created = layout.create()?;
        let objects = Store::create(layout.objects(), Options::default())?;
        let refs = RefStore::create(layout.root(), objects.clone())?;
        refs.init()?;
        Ok((
            Repository {
                layout,
                objects,
                refs,
            },
            created,
        ))
    }

    /// Open an existing data directory. Refuses a missing directory, one
    /// without `FORMAT` and one of another format (see [`Layout::check`])
    /// before touching anything.
    pub fn open(dir: impl AsRef<Path>) -> Result<Repository> {
        Repository::open_with(dir, Options::default())
    }

    /// Open with explicit object-store options.
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<Repository> {
        let layout = Layout::new(dir.as_ref());
        layout.check()?;
        layout.refuse_symlinks()?;
        let objects = Store::open(layout.objects(), options)?;
        let refs = RefStore::open(layout.root(), objects.clone())?;
        Ok(Repository {
            layout,
            objects,
            refs,
        })
    }

    /// Paths.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The object store.
    pub fn objects(&self) -> &Store {
        &self.objects
    }

    /// The ref store.
    pub fn refs(&self) -> &RefStore {
        &self.refs
    }

    /// Resolve a revision (see [`crate::revision`]) to an object id.
    pub fn resolve(&self, rev: &str) -> Result<ObjectId> {
        crate::revision::resolve(self, rev)
    }

    /// Resolve `rev@{t}` for a time the caller parsed itself (`t` in ns since
    /// the epoch): errors name `rev` as given, not a revision text the user
    /// never typed.
    pub fn resolve_at(&self, rev: &str, t: i64) -> Result<ObjectId> {
        crate::revision::resolve_at(self, rev, t)
    }

    /// Resolve a ref name given in full (`refs/heads/main`, `HEAD`) or short
    /// (`main`, a snapshot name) to the full name of an existing ref.
    pub fn find_ref(&self, name: &str) -> Result<Option<RefName>> {
        crate::revision::find_ref(self, name)
    }

    /// The retention horizon: commits it names are treated as having no
    /// parents (their history was, or may be, collected by GC). First-parent
    /// walks stop there instead of failing on a deleted parent.
    pub fn history_horizon(&self) -> Result<sydra_gc::Horizon> {
        Ok(sydra_gc::Horizon::read(self.layout.root())?)
    }

    /// The tree of a commit, or the tree itself.
    pub fn peel_to_tree(&self, id: ObjectId) -> Result<ObjectId> {
        let obj = self.objects.get(&id)?;
        match obj.kind {
            Kind::Tree => Ok(id),
            Kind::Commit => Ok(obj.commit()?.tree),
            Kind::Blob => Err(sydra_objects::Error::WrongKind {
                id,
                expected: Kind::Tree,
                actual: Kind::Blob,
            }
            .into()),
        }
    }

    /// Check that `id` is a commit.
    pub fn expect_commit(&self, id: ObjectId) -> Result<()> {
        let st = self.objects.stat(&id)?;
        if st.kind != Kind::Commit {
            return Err(Error::Objects(sydra_objects::Error::WrongKind {
                id,
                expected: Kind::Commit,
                actual: st.kind,
            }));
        }
        Ok(())
    }
}
