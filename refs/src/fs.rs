//! Filesystem helpers shared by the store, the transaction and the reflog:
//! directory fsync, durable directory creation, and the file/directory
//! clash checks that refs and reflogs both need.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::name::RefName;
use crate::target::{MAX_REF_FILE_LEN, Target, parse_ref_file};

/// fsync a directory so entries created, renamed or removed in it are
/// durable (the workspace's one [`sydra_objects::fs::sync_dir`]).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    Ok(sydra_objects::fs::sync_dir(dir, || {
        sydra_objects::fault::point("refs.dir.sync")
    })?)
}

/// Create `dir` if missing; when created, fsync its parent so the new entry
/// is durable. Returns whether it was created.
pub(crate) fn create_dir_synced(dir: &Path) -> Result<bool> {
    match sydra_objects::fault::point("refs.mkdir").and_then(|()| fs::create_dir(dir)) {
        Ok(()) => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io("create directory", dir)(e)),
    }
}

/// Make sure every ancestor directory of `name` exists under `root`
/// (`root/refs/heads` for `refs/heads/main`), creating missing ones durably.
/// An ancestor that is a file (a ref, or a reflog of a deleted ref) is a
/// [`Error::Conflict`].
///
/// A crash here leaves at most empty directories, which are harmless: reads
/// treat them as absent refs and a later update of that name removes them.
pub(crate) fn ensure_parent_dirs(root: &Path, name: &RefName) -> Result<()> {
    for ancestor in name.ancestors() {
        let dir = root.join(ancestor);
        match sydra_objects::fault::point("refs.mkdir").and_then(|()| fs::create_dir(&dir)) {
            Ok(()) => {
                if let Some(parent) = dir.parent() {
                    sync_dir(parent)?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let meta = fs::symlink_metadata(&dir).map_err(Error::io("stat", &dir))?;
                if !meta.is_dir() {
                    return Err(Error::Conflict {
                        name: name.clone(),
                        path: dir,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                // An earlier ancestor turned into a file after we passed it.
                return Err(Error::Conflict {
                    name: name.clone(),
                    path: dir,
                });
            }
            Err(e) => return Err(Error::io("create directory", &dir)(e)),
        }
    }
    Ok(())
}

/// An ancestor of `name` under `root` that exists and is not a directory
/// (checks only, creates nothing).
pub(crate) fn file_ancestor(root: &Path, name: &RefName) -> Result<Option<PathBuf>> {
    for ancestor in name.ancestors() {
        let path = root.join(ancestor);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(Some(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("stat", &path)(e)),
        }
    }
    Ok(None)
}

/// What is at the path where a ref file or reflog should go.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Nothing: the file can be created.
    Free,
    /// A regular file (the current ref or reflog).
    File,
    /// A directory tree holding no files (left by a crash or a delete); it
    /// must be removed before the file can be created.
    EmptyDirs,
}

/// Inspect `path`: a directory containing any non-directory entry is a
/// [`Error::Conflict`] naming that entry.
pub(crate) fn slot(path: &Path, name: &RefName) -> Result<Slot> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            if let Some(file) = first_file_under(path)? {
                return Err(Error::Conflict {
                    name: name.clone(),
                    path: file,
                });
            }
            Ok(Slot::EmptyDirs)
        }
        Ok(_) => Ok(Slot::File),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(Slot::Free)
        }
        Err(e) => Err(Error::io("stat", path)(e)),
    }
}

fn first_file_under(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(Error::io("list", dir))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(Error::io("stat", &path))?;
        if !ty.is_dir() {
            return Ok(Some(path));
        }
        if let Some(found) = first_file_under(&path)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Remove a tree of empty directories. Fails (without removing anything
/// that holds a file) if a file appeared in it meanwhile.
pub(crate) fn remove_empty_dirs(dir: &Path, name: &RefName) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(Error::io("list", dir))?;
        let path = entry.path();
        if !entry
            .file_type()
            .map_err(Error::io("stat", &path))?
            .is_dir()
        {
            return Err(Error::Conflict {
                name: name.clone(),
                path,
            });
        }
        remove_empty_dirs(&path, name)?;
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::NotADirectory
            ) =>
        {
            Err(Error::Conflict {
                name: name.clone(),
                path: dir.to_path_buf(),
            })
        }
        Err(e) => Err(Error::io("remove directory", dir)(e)),
    }
}

/// After a delete, remove the ref's now-empty parent directories, stopping
/// below `keep_depth` components (so `refs/` and `refs/heads/` stay).
/// Best effort: a directory that is not empty, or any error, stops the walk;
/// leftover empty directories are harmless.
pub(crate) fn prune_empty_parents(root: &Path, name: &RefName, keep_depth: usize) {
    let ancestors: Vec<&str> = name.ancestors().collect();
    for ancestor in ancestors.iter().skip(keep_depth).rev() {
        if fs::remove_dir(root.join(ancestor)).is_err() {
            break;
        }
    }
}

/// Read and parse the ref file at `path`. A missing file, a directory (a
/// namespace of other refs) or a path through a file is `None`.
pub(crate) fn read_ref_file(path: &Path) -> Result<Option<Target>> {
    // Never blocks: a FIFO or device under a ref name is refused (and a
    // directory, a namespace of other refs, reads as absent).
    let file = match sydra_objects::fs::open_regular(path) {
        Ok(f) => f,
        Err(e) if absent(&e) => return Ok(None),
        Err(e) if sydra_objects::fs::is_not_regular_error(&e) && path.is_dir() => return Ok(None),
        Err(e) => return Err(Error::io("open ref", path)(e)),
    };
    let mut bytes = Vec::with_capacity(80);
    // Bounded: a ref file is never longer than MAX_REF_FILE_LEN, so one byte
    // more is enough to report an oversized file without reading it all.
    match file
        .take(MAX_REF_FILE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => return Ok(None),
        Err(e) => return Err(Error::io("read ref", path)(e)),
    }
    parse_ref_file(&bytes)
        .map(Some)
        .map_err(|source| Error::CorruptRef {
            path: path.to_path_buf(),
            source,
        })
}

fn absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> RefName {
        RefName::new(s).unwrap()
    }

    #[test]
    fn parent_dirs_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        ensure_parent_dirs(root, &name("refs/heads/a/b/c")).unwrap();
        assert!(root.join("refs/heads/a/b").is_dir());
        fs::write(root.join("refs/heads/x"), b"").unwrap();
        match ensure_parent_dirs(root, &name("refs/heads/x/y")) {
            Err(Error::Conflict { path, .. }) => assert_eq!(path, root.join("refs/heads/x")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            file_ancestor(root, &name("refs/heads/x/y/z")).unwrap(),
            Some(root.join("refs/heads/x"))
        );
        assert_eq!(file_ancestor(root, &name("refs/heads/a/q")).unwrap(), None);
    }

    #[test]
    fn slots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let n = name("refs/heads/a");
        assert_eq!(slot(&root.join("refs/heads/a"), &n).unwrap(), Slot::Free);
        fs::create_dir_all(root.join("refs/heads/a/b/c")).unwrap();
        assert_eq!(
            slot(&root.join("refs/heads/a"), &n).unwrap(),
            Slot::EmptyDirs
        );
        fs::write(root.join("refs/heads/a/b/c/d"), b"").unwrap();
        assert!(matches!(
            slot(&root.join("refs/heads/a"), &n),
            Err(Error::Conflict { .. })
        ));
        assert!(matches!(
            remove_empty_dirs(&root.join("refs/heads/a"), &n),
            Err(Error::Conflict { .. })
        ));
        assert!(root.join("refs/heads/a/b/c/d").is_file());
        fs::remove_file(root.join("refs/heads/a/b/c/d")).unwrap();
        remove_empty_dirs(&root.join("refs/heads/a"), &n).unwrap();
        assert!(!root.join("refs/heads/a").exists());
        assert_eq!(slot(&root.join("refs/heads"), &n).unwrap(), Slot::EmptyDirs);
    }

    #[test]
    fn prune_keeps_top_levels() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("refs/heads/a/b")).unwrap();
        fs::create_dir_all(root.join("refs/heads/k")).unwrap();
        prune_empty_parents(root, &name("refs/heads/a/b/c"), 2);
        assert!(!root.join("refs/heads/a").exists());
        assert!(root.join("refs/heads/k").is_dir());
        prune_empty_parents(root, &name("refs/heads/k/x"), 2);
        assert!(root.join("refs/heads").is_dir());
    }

    #[test]
    fn read_ref_file_cases() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r");
        assert_eq!(read_ref_file(&p).unwrap(), None);
        assert_eq!(read_ref_file(&p.join("below")).unwrap(), None);
        fs::write(&p, vec![b'x'; 1 << 20]).unwrap();
        match read_ref_file(&p) {
            Err(Error::CorruptRef { path, .. }) => assert_eq!(path, p),
            other => panic!("{other:?}"),
        }
        assert_eq!(read_ref_file(dir.path()).unwrap(), None);
    }
}
