//! Committing a prepared transaction: append the reflog lines, then
//! rename (or remove) in name order, fsync the touched directories, unlock
//! deletes. See the module documentation of `transaction` for what a
//! failure or a crash at each step leaves behind.

use std::collections::BTreeSet;
use std::fs;
use std::io;

use super::Change;
use super::prepare::Prepared;
use crate::clock::now_ns;
use crate::error::{Error, Result};
use crate::fs::{ensure_parent_dirs, prune_empty_parents, remove_empty_dirs, sync_dir};
use crate::name::RefName;
use crate::reflog::{self, ReflogEntry};
use crate::store::{LOGS_DIR, RefStore};

/// Directories below this depth are kept when pruning after a delete
/// (`refs/` and `refs/heads/` stay).
const KEEP_DEPTH: usize = 2;

/// `e`, marked as happening after the changes to `done` were made.
fn after(done: &[RefName], e: Error) -> Error {
    if done.is_empty() {
        e
    } else {
        Error::Committed {
            committed: done.to_vec(),
            source: Box::new(e),
        }
    }
}

pub(super) fn commit(store: &RefStore, prepared: Vec<Prepared>) -> Result<()> {
    // Serializes commits of this process from the first rename to the last
    // reflog line, so reflog lines follow the order of the changes even
    // though an update's lock is gone as soon as it is renamed.
    let _order = store.commit_guard();

    // Clear leftover empty directories before the first rename: failing here
    // still changes no ref (the prepared locks are dropped and removed).
    for p in &prepared {
        if p.ref_empty_dirs {
            remove_empty_dirs(&p.ref_path, &p.edit.name)?;
        }
        if p.log_empty_dirs {
            remove_empty_dirs(&p.log_path, &p.edit.name)?;
        }
    }

    // Reflog lines first, while every ref is still locked (which also
    // serializes appends to one reflog across processes). A failure here
    // changes no ref; lines already appended for this transaction stay, one
    // past their ref's value with `old` equal to it: exactly what a crash
    // between a line and its rename leaves, and what fsck recognises.
    let timestamp_ns = now_ns();
    let logs = store.dir().join(LOGS_DIR);
    for p in &prepared {
        let Some(message) = p.edit.message.as_ref().filter(|_| !p.is_noop()) else {
            continue;
        };
        let entry = ReflogEntry {
            old: p.old_id,
            new: p.new_id,
            timestamp_ns,
            message: message.clone(),
        };
        ensure_parent_dirs(&logs, &p.edit.name)
            .and_then(|()| reflog::append(&p.log_path, &entry))?;
    }

    // Point of no return. From the first rename on, the refs renamed are
    // changed (their reflog lines are already written) and every error says
    // so (`Error::Committed`); the locks not yet consumed are removed when
    // dropped, leaving their refs unchanged.
    let mut done: Vec<RefName> = Vec::new();
    let mut dirs = BTreeSet::new();
    let mut delete_locks = Vec::new();
    for p in prepared {
        let noop = p.is_noop();
        let Prepared {
            edit,
            lock,
            ref_path,
            ..
        } = p;
        if noop {
            lock.release().map_err(|e| after(&done, e))?;
            continue;
        }
        match edit.change {
            Change::Update(_) | Change::Symbolic(_) => {
                lock.commit(&ref_path).map_err(|e| after(&done, e))?;
            }
            Change::Delete => {
                match sydra_objects::fault::point("refs.delete")
                    .and_then(|()| fs::remove_file(&ref_path))
                {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(after(&done, Error::io("remove ref", &ref_path)(e))),
                }
                // Held until the removal is durable.
                delete_locks.push(lock);
            }
        }
        done.push(edit.name);
        if let Some(dir) = ref_path.parent() {
            dirs.insert(dir.to_path_buf());
        }
    }

    // The renames and removals are durable once their directories are.
    for dir in &dirs {
        sync_dir(dir).map_err(|e| after(&done, e))?;
    }

    let mut first_err: Option<Error> = None;
    for lock in delete_locks {
        let name = lock.name().clone();
        if let Err(e) = lock.release() {
            first_err.get_or_insert(e);
        } else {
            prune_empty_parents(store.dir(), &name, KEEP_DEPTH);
        }
    }
    match first_err {
        Some(e) => Err(after(&done, e)),
        None => Ok(()),
    }
}
