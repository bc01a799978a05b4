//! Full verification of one pack and its index (fsck, `verify-pack`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Entry, IndexView, entry_at, file_name, parse_file_name, scan};
use crate::error::{Error, Result};
use crate::{Kind, ObjectId};

/// What verifying a pack found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackVerify {
    /// The `.pack` file.
    pub path: PathBuf,
    /// Entries that verified.
    pub objects: u64,
    /// Per kind (blob, tree, commit): entries and their bytes.
    pub kinds: [(u64, u64); 3],
    /// Bytes of the pack.
    pub bytes: u64,
    /// Bytes of its index (0 when missing).
    pub idx_bytes: u64,
    /// Everything wrong, each naming the file and offset or id.
    pub problems: Vec<String>,
}

impl PackVerify {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A check of one entry's payload; `Err` says what is wrong.
pub type EntryCheck<'a> = dyn FnMut(&Entry, &[u8]) -> std::result::Result<(), String> + 'a;

/// Verify `pack` (a `pack-<hash>.pack` path) and the index beside it:
/// every entry's framing, CRC and BLAKE3 and `check` on its payload (the
/// caller decodes trees and commits), the count, the trailer and the name;
/// then that the index is well formed, names this pack, and lists exactly
/// the pack's entries at their offsets. I/O errors are errors; damage is
/// reported in the result.
pub fn verify_pack(pack: &Path, check: &mut EntryCheck<'_>) -> Result<PackVerify> {
    let mut out = PackVerify {
        path: pack.to_path_buf(),
        ..PackVerify::default()
    };
    let name = pack.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let named = match parse_file_name(name) {
        Some((h, "pack")) => Some(h),
        _ => {
            out.problems.push(format!(
                "{} is not named pack-<64 hex>.pack",
                pack.display()
            ));
            None
        }
    };
    let file = crate::fs::open_regular(pack).map_err(Error::io("open", pack))?;
    let bytes = crate::map::map_file(&file).map_err(Error::io("map", pack))?;
    out.bytes = bytes.len() as u64;
    let mut entries: HashMap<ObjectId, u64> = HashMap::new();
    let mut dup = None;
    let scanned = scan(&bytes, true, |e| {
        let (_, range) = entry_at(&bytes, e.offset, Some(&e.id), false)?;
        check(&e, &bytes[range.clone()])
            .map_err(|r| format!("entry at offset {} ({} {}): {r}", e.offset, e.kind, e.id))?;
        let k = match e.kind {
            Kind::Blob => 0,
            Kind::Tree => 1,
            Kind::Commit => 2,
        };
        out.kinds[k].0 += 1;
        out.kinds[k].1 += e.len;
        if entries.insert(e.id, e.offset).is_some() && dup.is_none() {
            dup = Some(e.id);
        }
        Ok(())
    });
    let hash = match scanned {
        Ok(h) => Some(h),
        Err(r) => {
            out.problems.push(format!("{}: {r}", pack.display()));
            None
        }
    };
    out.objects = entries.len() as u64;
    if let Some(id) = dup {
        out.problems
            .push(format!("{}: object {id} appears twice", pack.display()));
    }
    if let (Some(h), Some(n)) = (hash, named)
        && h != n
    {
        out.problems.push(format!(
            "{}: trailer {h} does not match the file name",
            pack.display()
        ));
    }
    let Some(name_hash) = named else {
        return Ok(out);
    };
    let idx_path = pack.with_file_name(file_name(&name_hash, "idx"));
    let idx = match std::fs::read(&idx_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.problems
                .push(format!("{}: no index beside it", pack.display()));
            return Ok(out);
        }
        Err(e) => return Err(Error::io("read", &idx_path)(e)),
    };
    out.idx_bytes = idx.len() as u64;
    let bad_idx = |r: String| format!("{}: {r}", idx_path.display());
    let view = match IndexView::parse(&idx).and_then(|v| v.verify().map(|()| v)) {
        Ok(v) => v,
        Err(r) => {
            out.problems.push(bad_idx(r));
            return Ok(out);
        }
    };
    if view.pack_hash() != name_hash {
        out.problems.push(bad_idx(format!(
            "index names pack {}, not {name_hash}",
            view.pack_hash()
        )));
    }
    if hash.is_none() {
        return Ok(out);
    }
    if view.len() != entries.len() {
        out.problems.push(bad_idx(format!(
            "index lists {} objects, the pack holds {}",
            view.len(),
            entries.len()
        )));
    }
    for i in 0..view.len() {
        let id = view.id(i);
        match entries.get(&id) {
            Some(&off) if off == view.offset(i) => {}
            Some(&off) => {
                out.problems.push(bad_idx(format!(
                    "index puts {id} at offset {}, the pack at {off}",
                    view.offset(i)
                )));
                break;
            }
            None => {
                out.problems.push(bad_idx(format!(
                    "index lists {id} at offset {}, which is not in the pack",
                    view.offset(i)
                )));
                break;
            }
        }
    }
    Ok(out)
}
