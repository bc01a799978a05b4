//! Committing a prepared transaction: rename (or remove) in name order,
//! fsync the touched directories, append the reflog lines, unlock deletes.
//! See the module documentation of `transaction` for what a failure or a
//! crash at each step leaves behind.

use std::collections::BTreeSet;
use std::fs;
use std::io;

use super::Change;
use super::prepare::Prepared;
use crate::clock::now_ns;
use crate::error::{Error, Result};
use crate::fs::{ensure_parent_dirs, prune_empty_parents, remove_empty_dirs, sync_dir};
use crate::reflog::{self, ReflogEntry};
use crate::store::{LOGS_DIR, RefStore};

/// Directories below this depth are kept when pruning after a delete
/// (`refs/` and `refs/heads/` stay).
const KEEP_DEPTH: usize = 2;

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

    // Point of no return. From the first rename on, an error leaves earlier
    // refs changed; the locks not yet consumed are removed when dropped.
    let mut dirs = BTreeSet::new();
    let mut delete_locks = Vec::new();
    let mut logged = Vec::new();
    for p in prepared {
        let noop = p.is_noop();
        let Prepared {
            edit,
            lock,
            ref_path,
            old_id,
            new_id,
            log_path,
            ..
        } = p;
        if noop {
            lock.release()?;
            continue;
        }
        match edit.change {
            Change::Update(_) | Change::Symbolic(_) => lock.commit(&ref_path)?,
            Change::Delete => {
                // The lock stays held until the reflog line is written.
                match sydra_objects::fault::point("refs.delete")
                    .and_then(|()| fs::remove_file(&ref_path))
                {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove ref", &ref_path)(e)),
                }
                delete_locks.push(lock);
            }
        }
        if let Some(dir) = ref_path.parent() {
            dirs.insert(dir.to_path_buf());
        }
        if let Some(message) = edit.message {
            let entry = ReflogEntry {
                old: old_id,
                new: new_id,
                timestamp_ns: 0,
                message,
            };
            logged.push((edit.name, log_path, entry));
        }
    }

    // The renames and removals are durable once their directories are.
    for dir in &dirs {
        sync_dir(dir)?;
    }

    // Reflogs: try every line even if one fails, report the first failure.
    let timestamp_ns = now_ns();
    let logs = store.dir().join(LOGS_DIR);
    let mut first_err: Option<Error> = None;
    for (name, path, mut entry) in logged {
        entry.timestamp_ns = timestamp_ns;
        let appended =
            ensure_parent_dirs(&logs, &name).and_then(|()| reflog::append(&path, &entry));
        if let Err(e) = appended {
            first_err.get_or_insert(e);
        }
    }

    for lock in delete_locks {
        let name = lock.name().clone();
        if let Err(e) = lock.release() {
            first_err.get_or_insert(e);
        } else {
            prune_empty_parents(store.dir(), &name, KEEP_DEPTH);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
