//! Preparing a transaction: validate, lock in name order, check previous
//! values and targets under the locks, write the lock files. Every error
//! here drops the held locks (removing their files) and changes no ref.

use std::collections::BTreeSet;
use std::path::PathBuf;

use sydra_objects::{Error as ObjectError, Kind, ObjectId};

use super::{Change, Edit, PreviousValue};
use crate::error::{Error, Result};
use crate::fs::{Slot, file_ancestor, read_ref_file, slot};
use crate::lock::LockFile;
use crate::store::{LOGS_DIR, RefStore};
use crate::target::Target;

/// One locked, checked edit whose lock file holds the new content.
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) edit: Edit,
    pub(super) lock: LockFile,
    pub(super) ref_path: PathBuf,
    /// Empty directories where the ref file goes, to remove before the
    /// rename.
    pub(super) ref_empty_dirs: bool,
    pub(super) log_path: PathBuf,
    /// Empty directories where the reflog goes.
    pub(super) log_empty_dirs: bool,
    /// The value under the lock (`None` if absent, or corrupt and
    /// overwritten with `PreviousValue::Any`).
    pub(super) old: Option<Target>,
    /// Resolved ids for the reflog line.
    pub(super) old_id: Option<ObjectId>,
    pub(super) new_id: Option<ObjectId>,
}

impl Prepared {
    /// A delete of a ref that does not exist: nothing to do but unlock.
    pub(super) fn is_noop(&self) -> bool {
        self.edit.change == Change::Delete && self.old.is_none()
    }
}

pub(super) fn prepare(store: &RefStore, mut edits: Vec<Edit>) -> Result<Vec<Prepared>> {
    validate(&mut edits)?;

    // Lock everything first, in name order (the edits are sorted), so the
    // checks below see values no other writer can change.
    let mut locks = Vec::with_capacity(edits.len());
    for edit in &edits {
        locks.push(LockFile::acquire(store.dir(), &edit.name)?);
    }

    let mut prepared = Vec::with_capacity(edits.len());
    for (edit, lock) in edits.into_iter().zip(locks) {
        prepared.push(check(store, edit, lock)?);
    }

    // Only now, with every check passed, write the new values. A crash from
    // here to the first rename leaves complete lock files and unchanged refs.
    for p in &mut prepared {
        match &p.edit.change {
            Change::Update(id) => p.lock.write(&Target::Object(*id).to_file_content())?,
            Change::Symbolic(target) => p
                .lock
                .write(&Target::Symbolic(target.clone()).to_file_content())?,
            Change::Delete => {}
        }
    }
    Ok(prepared)
}

/// Sort by name and refuse edits that cannot be applied whatever the refs
/// hold.
fn validate(edits: &mut [Edit]) -> Result<()> {
    for edit in edits.iter() {
        match &edit.change {
            Change::Update(_) if edit.name.is_head() => {
                return Err(Error::HeadMustBeSymbolic { op: "update" });
            }
            Change::Delete if edit.name.is_head() => {
                return Err(Error::HeadMustBeSymbolic { op: "delete" });
            }
            Change::Symbolic(target) if target.is_head() || *target == edit.name => {
                return Err(Error::BadSymbolicTarget {
                    name: edit.name.clone(),
                    target: target.clone(),
                });
            }
            _ => {}
        }
    }
    edits.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = edits.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::DuplicateEdit {
            name: pair[0].name.clone(),
        });
    }
    let names: BTreeSet<&str> = edits.iter().map(|e| e.name.as_str()).collect();
    for edit in edits.iter() {
        if let Some(above) = edit.name.ancestors().find(|a| names.contains(a)) {
            let above = crate::name::RefName::new(above)?;
            return Err(Error::NestedEdits {
                name: above,
                other: edit.name.clone(),
            });
        }
    }
    Ok(())
}

/// Check one locked edit: previous value, path clashes, new target.
fn check(store: &RefStore, edit: Edit, lock: LockFile) -> Result<Prepared> {
    let name = &edit.name;
    let ref_path = store.path_of(name);
    let ref_slot = slot(&ref_path, name)?;
    let current = match ref_slot {
        Slot::File => read_ref_file(&ref_path),
        Slot::Free | Slot::EmptyDirs => Ok(None),
    };
    let old = match (current, edit.prev) {
        (Ok(value), _) => value,
        // An unconditional change may overwrite a corrupt ref: that is how
        // one is repaired.
        (Err(Error::CorruptRef { .. }), PreviousValue::Any) => None,
        (Err(e), _) => return Err(e),
    };
    let matches = match edit.prev {
        PreviousValue::Any => true,
        PreviousValue::MustNotExist => old.is_none(),
        PreviousValue::MustExistAndMatch(id) => old == Some(Target::Object(id)),
    };
    if !matches {
        return Err(Error::Mismatch {
            name: name.clone(),
            expected: edit.prev,
            actual: old,
        });
    }

    let logs = store.dir().join(LOGS_DIR);
    let log_path = store.reflog_path_of(name);
    let mut log_empty_dirs = false;
    if edit.message.is_some() {
        if let Some(path) = file_ancestor(&logs, name)? {
            return Err(Error::Conflict {
                name: name.clone(),
                path,
            });
        }
        log_empty_dirs = slot(&log_path, name)? == Slot::EmptyDirs;
    }

    let new_id = match &edit.change {
        Change::Update(id) => {
            check_object(store, name, *id)?;
            Some(*id)
        }
        Change::Delete => None,
        Change::Symbolic(target) => store.follow(vec![name.clone(), target.clone()])?,
    };
    let old_id = match &old {
        None => None,
        Some(Target::Object(id)) => Some(*id),
        // For the reflog only: a broken chain behind the old value must not
        // block replacing it.
        Some(Target::Symbolic(target)) => store.resolve(target).ok().flatten(),
    };

    Ok(Prepared {
        ref_path,
        ref_empty_dirs: ref_slot == Slot::EmptyDirs,
        log_path,
        log_empty_dirs,
        old,
        old_id,
        new_id,
        lock,
        edit,
    })
}

/// The object must exist, and a branch may only point at a commit.
fn check_object(store: &RefStore, name: &crate::name::RefName, id: ObjectId) -> Result<()> {
    match store.objects().stat(&id) {
        Ok(stat) if name.is_branch() && stat.kind != Kind::Commit => Err(Error::NotACommit {
            name: name.clone(),
            id,
            kind: stat.kind,
        }),
        Ok(_) => Ok(()),
        Err(ObjectError::NotFound(_)) => Err(Error::MissingTarget {
            name: name.clone(),
            id,
        }),
        Err(source) => Err(Error::Object {
            name: name.clone(),
            id,
            source: Box::new(source),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::RefName;

    fn edit(name: &str, change: Change) -> Edit {
        Edit {
            name: RefName::new(name).unwrap(),
            change,
            prev: PreviousValue::Any,
            message: None,
        }
    }

    #[test]
    fn validate_sorts_and_refuses_bad_sets() {
        let id = ObjectId::from_bytes([1; 32]);
        let mut ok = vec![
            edit("refs/b", Change::Delete),
            edit("refs/a", Change::Update(id)),
        ];
        validate(&mut ok).unwrap();
        assert_eq!(ok[0].name.as_str(), "refs/a");

        let mut dup = vec![
            edit("refs/a", Change::Delete),
            edit("refs/a", Change::Update(id)),
        ];
        assert!(matches!(
            validate(&mut dup),
            Err(Error::DuplicateEdit { .. })
        ));

        // "refs/a-b" sorts between "refs/a" and "refs/a/b": nesting is found
        // by ancestry, not adjacency.
        let mut nested = vec![
            edit("refs/a/b", Change::Delete),
            edit("refs/a-b", Change::Delete),
            edit("refs/a", Change::Delete),
        ];
        match validate(&mut nested) {
            Err(Error::NestedEdits { name, other }) => {
                assert_eq!((name.as_str(), other.as_str()), ("refs/a", "refs/a/b"));
            }
            other => panic!("{other:?}"),
        }

        let mut head = vec![edit("HEAD", Change::Update(id))];
        assert!(matches!(
            validate(&mut head),
            Err(Error::HeadMustBeSymbolic { op: "update" })
        ));
        let mut head = vec![edit("HEAD", Change::Delete)];
        assert!(matches!(
            validate(&mut head),
            Err(Error::HeadMustBeSymbolic { op: "delete" })
        ));
        let mut to_head = vec![edit("refs/x", Change::Symbolic(RefName::head()))];
        assert!(matches!(
            validate(&mut to_head),
            Err(Error::BadSymbolicTarget { .. })
        ));
        let mut to_self = vec![edit(
            "refs/x",
            Change::Symbolic(RefName::new("refs/x").unwrap()),
        )];
        assert!(matches!(
            validate(&mut to_self),
            Err(Error::BadSymbolicTarget { .. })
        ));
    }
}
