//! Reading segments: listing, mapping, and walking records.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sydra_objects::map::{Mmap, map_file};

use super::WalError;
use super::record::{
    SEGMENT_HEADER_LEN, parse_segment_file_name, parse_segment_header_version, segment_file_name,
};

/// First seqs of every segment in `dir`, ascending. Other files are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(WalError::io("list", dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(WalError::io("list", dir))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            out.push(seq);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// A read-only map of one segment, header checked.
#[derive(Debug)]
pub struct SegmentView {
    /// The segment's first seq.
    pub first_seq: u64,
    /// Its file.
    pub path: PathBuf,
    /// Its format version (how its records are framed).
    pub version: u8,
    /// The stored range of this chunk blob (`walchunks/`), not a segment
    /// of this store's WAL.
    pub stored: Option<sydra_objects::ObjectId>,
    map: Mmap,
}

impl SegmentView {
    /// Map `wal/<first_seq>.wal` and check its header.
    pub fn open(dir: &Path, first_seq: u64) -> Result<SegmentView, WalError> {
        let path = dir.join(segment_file_name(first_seq));
        let file = match sydra_objects::fs::open_regular(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(WalError::Missing {
                    seq: first_seq,
                    reason: format!("segment {} does not exist", path.display()),
                });
            }
            Err(e) => return Err(WalError::io("open", &path)(e)),
        };
        let map = sydra_objects::fault::point("wal.map")
            .and_then(|()| map_file(&file))
            .map_err(WalError::io("map", &path))?;
        let (found, version) =
            parse_segment_header_version(&map).map_err(|reason| WalError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason,
            })?;
        if found != first_seq {
            return Err(WalError::Corrupt {
                path,
                offset: 8,
                reason: format!("header says first seq {found}, the file name says {first_seq}"),
            });
        }
        Ok(SegmentView {
            first_seq,
            path,
            version,
            stored: None,
            map,
        })
    }

    /// A view of a stored range (see [`super::ranges`]): the segment
    /// header, then chunk `id`'s bytes from offset 16.
    pub fn stored(
        r: super::ranges::StoredRange,
        first_seq: u64,
        id: sydra_objects::ObjectId,
    ) -> SegmentView {
        let super::ranges::StoredRange { path, version, map } = r;
        SegmentView {
            first_seq,
            path,
            version,
            stored: Some(id),
            map,
        }
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Offset of the first record.
    pub fn data_start(&self) -> usize {
        SEGMENT_HEADER_LEN
    }
}
