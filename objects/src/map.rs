//! The one place in Sydra that maps files into memory (and so the one place
//! with `unsafe`). Other crates map WAL segments through here too.

use std::fs::File;
use std::io;

pub use memmap2::Mmap;

/// Open a file for reading without following a symbolic link in its last
/// component (`O_NOFOLLOW`): a symlink planted in a data directory makes
/// the open fail (ELOOP) instead of reading whatever it points at.
pub fn open_nofollow(path: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Whether an open failed because the path is a symbolic link.
pub fn is_symlink_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

/// Map a whole file read-only.
///
/// Callers must only map files that are never modified in place while
/// mapped: loose objects (immutable once published; GC unlinks, which keeps
/// existing mappings valid) and sealed or append-only WAL segments (only the
/// writer appends past the mapped length; truncation happens at open, under
/// the directory lock, before any mapping exists in this process).
pub fn map_file(file: &File) -> io::Result<Mmap> {
    // SAFETY: the mapping is read-only and the files passed here are never
    // truncated or rewritten in place while mapped (see above), so the bytes
    // behind the returned slice stay valid for the mapping's lifetime.
    unsafe { Mmap::map(file) }
}
