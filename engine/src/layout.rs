//! The data directory layout (DESIGN.md §5) and its creation.
//!
//! ```text
//! <dir>/LOCK           held by the one writer process
//! <dir>/FORMAT         "sydra 1\n"
//! <dir>/HEAD           "ref: refs/heads/main\n"
//! <dir>/objects/       loose objects, objects/tmp/
//! <dir>/refs/          refs/heads/main, refs/snapshots/<name>, ...
//! <dir>/logs/          reflogs
//! <dir>/wal/           WAL segments
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The first line of `FORMAT`.
pub const FORMAT_LINE: &str = "sydra 1\n";

/// Paths inside a data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout rooted at `dir` (nothing is checked).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Layout { root: dir.into() }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `objects/`.
    pub fn objects(&self) -> PathBuf {
        self.root.join("objects")
    }
    /// `wal/`.
    pub fn wal(&self) -> PathBuf {
        self.root.join("wal")
    }
    /// `FORMAT`.
    pub fn format_file(&self) -> PathBuf {
        self.root.join("FORMAT")
    }
    /// `LOCK`.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("LOCK")
    }

    /// Fail unless the directory holds a `FORMAT` file this build reads.
    pub fn check(&self) -> Result<()> {
        let path = self.format_file();
        match read_format(&path) {
            Ok(b) if b == FORMAT_LINE.as_bytes() => Ok(()),
            Ok(b) => Err(Error::UnsupportedFormat {
                path,
                found: String::from_utf8_lossy(&b)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotARepository(self.root.clone()))
            }
            Err(e) => Err(Error::io("read", path)(e)),
        }
    }

    /// Create the directories and `FORMAT` if missing. Returns whether the
    /// directory was newly initialised. `FORMAT` is written last (temp file,
    /// fsync, rename, directory fsync), so a crash part-way leaves a
    /// directory that is simply initialised again.
    pub fn create(&self) -> Result<bool> {
        if self.check().is_ok() {
            return Ok(false);
        }
        for d in [self.root.clone(), self.wal(), self.root.join("refs/heads")] {
            sydra_objects::fault::point("layout.mkdir")
                .and_then(|()| fs::create_dir_all(&d))
                .map_err(Error::io("create directory", &d))?;
        }
        let tmp = self.root.join("FORMAT.tmp");
        let mut f = fs::File::create(&tmp).map_err(Error::io("create", &tmp))?;
        sydra_objects::fault::point("layout.format.write")
            .and_then(|()| f.write_all(FORMAT_LINE.as_bytes()))
            .map_err(Error::io("write", &tmp))?;
        sydra_objects::fault::point("layout.format.sync")
            .and_then(|()| f.sync_all())
            .map_err(Error::io("sync", &tmp))?;
        sydra_objects::fault::point("layout.format.rename")
            .and_then(|()| fs::rename(&tmp, self.format_file()))
            .map_err(Error::io("rename", self.format_file()))?;
        sync_dir(&self.root)?;
        Ok(true)
    }
}

impl Layout {
    /// Refuse a data directory with symbolic links where Sydra keeps its
    /// files: the top level, `objects/` and its shard directories, every
    /// level of `refs/`, `logs/` and `index/`, and `wal/`. A link planted
    /// there could make reads or writes leave the directory. Object files
    /// themselves are opened without following links (checked per read,
    /// not listed here, so opening does not cost a walk of every object).
    pub fn refuse_symlinks(&self) -> Result<()> {
        let root = &self.root;
        check_entries(root, false)?;
        check_entries(&self.objects(), false)?;
        check_entries(&self.wal(), false)?;
        for tree in ["refs", "logs", "index"] {
            check_entries(&root.join(tree), true)?;
        }
        Ok(())
    }
}

fn check_entries(dir: &Path, recursive: bool) -> Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(Error::io("list", dir))?;
        let ty = entry.file_type().map_err(Error::io("stat", entry.path()))?;
        if ty.is_symlink() {
            return Err(Error::Symlink(entry.path()));
        }
        if recursive && ty.is_dir() {
            check_entries(&entry.path(), true)?;
        }
    }
    Ok(())
}

/// Read `FORMAT`: never blocking (a FIFO or device in its place is
/// refused, naming it) and never more than a few KiB, whatever its length.
fn read_format(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    sydra_objects::fs::open_regular(path)?
        .take(4096)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// fsync a directory.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    sydra_objects::fs::sync_dir(dir, || sydra_objects::fault::point("layout.dir.sync"))
        .map_err(|e| Error::Objects(e.into()))
}
