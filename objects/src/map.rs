//! The one place in Sydra that maps files into memory (and so the one place
//! with `unsafe`). Other crates map WAL segments through here too.

use std::fs::File;
use std::io;

pub use memmap2::Mmap;

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
