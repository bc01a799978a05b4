//! The data directory layout (DESIGN.md §5) and its creation.
//!
//! ```text
//! <dir>/LOCK           held (flock) by the one writer process
//! <dir>/gc.lock        held (flock) by the one running GC
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

    /// `gc.lock`.
    pub fn gc_lock_file(&self) -> PathBuf {
        self.root.join(sydra_gc::GC_LOCK_FILE)
    }

    /// Fail unless the directory holds a `FORMAT` file this build reads.
    /// Reads only: a missing directory, a directory without `FORMAT` and a
    /// `FORMAT` of another version are refused without creating or
    /// changing anything (DESIGN.md §5). Every open goes through here
    /// before it touches the directory.
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
                match fs::symlink_metadata(&self.root) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Err(Error::NoSuchDirectory(self.root.clone()))
                    }
                    _ => Err(Error::NotARepository(self.root.clone())),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                Err(Error::NotARepository(self.root.clone()))
            }
            Err(e) => Err(Error::io("read", path)(e)),
        }
    }

    /// Make `dir` a data directory, or finish one: the only creator (behind
    /// `sydra init`, [`crate::Repository::init`] and
    /// [`crate::Engine::create`]). Returns whether the directory was newly
    /// initialised.
    ///
    /// - A data directory this build reads is left as it is, except that
    ///   missing lock files (`LOCK`, `gc.lock`; stores made by older
    ///   releases lack `gc.lock`) are created.
    /// - A `FORMAT` of another version is refused ([`Error::UnsupportedFormat`])
    ///   and nothing is changed.
    /// - A directory without `FORMAT` is initialised only if it is missing,
    ///   empty, or holds nothing but names this function creates (what an
    ///   interrupted init leaves); anything else is the user's and is
    ///   refused ([`Error::NotEmpty`]) without a change.
    ///
    /// `FORMAT` is written last (temp file, fsync, rename, directory fsync),
    /// so a crash part-way leaves a directory without `FORMAT`, holding
    /// only init's own names, that the next init simply finishes.
    pub fn create(&self) -> Result<bool> {
        match self.check() {
            Ok(()) => {
                self.create_lock_files()?;
                return Ok(false);
            }
            Err(Error::NotARepository(_) | Error::NoSuchDirectory(_)) => {}
            Err(e) => return Err(e),
        }
        self.refuse_foreign_entries()?;
        for d in [
            self.root.clone(),
            self.objects(),
            self.wal(),
            self.root.join("refs/heads"),
            self.root.join(sydra_refs::LOGS_DIR),
        ] {
            sydra_objects::fault::point("layout.mkdir")
                .and_then(|()| fs::create_dir_all(&d))
                .map_err(Error::io("create directory", &d))?;
        }
        self.create_lock_files()?;
        let tmp = self.root.join(FORMAT_TEMP_FILE);
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
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(true)
    }

    /// Refuse a directory holding anything init would not have created.
    fn refuse_foreign_entries(&self) -> Result<()> {
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io("list", &self.root)(e)),
        };
        let mut foreign = Vec::new();
        for entry in rd {
            let entry = entry.map_err(Error::io("list", &self.root))?;
            let name = entry.file_name();
            if !name.to_str().is_some_and(|n| INIT_NAMES.contains(&n)) {
                foreign.push(entry.path());
            }
        }
        foreign.sort();
        match foreign.into_iter().next() {
            None => Ok(()),
            Some(entry) => Err(Error::NotEmpty {
                dir: self.root.clone(),
                entry,
            }),
        }
    }

    /// Create `LOCK` and `gc.lock` where missing, each holding a blank pid
    /// record, so that neither the writer nor a GC ever has to create a file
    /// to start (a GC must be able to run on a full disk) and a holder
    /// writes its pid over bytes the file already has. A crash leaves at
    /// most an empty lock file, which works as well: the lock is the
    /// `flock`, the content is informational.
    pub(crate) fn create_lock_files(&self) -> Result<()> {
        let mut made = false;
        for path in [self.lock_file(), self.gc_lock_file()] {
            let mut f = match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create", &path)(e)),
            };
            sydra_objects::fault::point("layout.lock.write")
                .and_then(|()| f.write_all(&sydra_gc::pid_record(None)))
                .and_then(|()| f.sync_all())
                .map_err(Error::io("write", &path))?;
            made = true;
        }
        if made {
            sync_dir(&self.root)?;
        }
        Ok(())
    }
}

/// `FORMAT`'s temp file during init.
pub const FORMAT_TEMP_FILE: &str = "FORMAT.tmp";

/// Every name init creates at the top of a data directory: a directory
/// holding only these is one an interrupted init left, and init finishes it.
const INIT_NAMES: &[&str] = &[
    "objects",
    "refs",
    "logs",
    "wal",
    "HEAD",
    "HEAD.lock",
    "LOCK",
    sydra_gc::GC_LOCK_FILE,
    FORMAT_TEMP_FILE,
];

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
