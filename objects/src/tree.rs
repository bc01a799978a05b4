//! Tree payloads.
//!
//! ```text
//! u32 LE count
//! count x { u8 kind (1 blob, 2 tree) | u8 name_len (1..=255) | name | 32-byte id }
//! ```
//! Entries are strictly ascending by name bytes; names obey
//! [`validate_name`](crate::validate_name).

use crate::decode::{Cursor, DecodeError, What};
use crate::name::{NameError, validate_name};
use crate::{Kind, ObjectId};

/// Smallest encoded entry: kind + name length + 1-byte name + id.
const MIN_ENTRY: usize = 1 + 1 + 1 + ObjectId::LEN;

/// One borrowed tree entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// [`Kind::Blob`] or [`Kind::Tree`].
    pub kind: Kind,
    /// The entry name (validated).
    pub name: &'a str,
    /// The object it names.
    pub id: ObjectId,
}

/// A decoded tree borrowing from its payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeRef<'a> {
    /// Entries in canonical (ascending name byte) order.
    pub entries: Vec<EntryRef<'a>>,
}

/// A tree entry as [`TreeRef::raw_entries`] reads it: the name unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEntry<'a> {
    /// Blob or tree.
    pub kind: Kind,
    /// The name's bytes (valid only if the tree also `decode`s).
    pub name: &'a [u8],
    /// The entry's object.
    pub id: ObjectId,
}

/// One owned tree entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// [`Kind::Blob`] or [`Kind::Tree`].
    pub kind: Kind,
    /// The entry name.
    pub name: String,
    /// The object it names.
    pub id: ObjectId,
}

/// An owned tree whose entries are valid and in canonical order by
/// construction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    entries: Vec<Entry>,
}

/// Why a tree could not be built from entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// An entry name is not allowed.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Two entries share a name.
    #[error("tree has two entries named {0:?}")]
    Duplicate(String),
    /// Trees hold blobs and trees only.
    #[error("tree entry {name:?} has kind {kind}; trees hold only blobs and trees")]
    BadKind {
        /// The entry.
        name: String,
        /// Its kind.
        kind: Kind,
    },
}

/// Read entry `i`'s framing (kind, name length and bytes, id): the entry
/// and the offset of its name.
#[inline]
fn read_entry<'a>(c: &mut Cursor<'a>, i: usize) -> Result<(RawEntry<'a>, usize), DecodeError> {
    let at = c.pos();
    let code = c.u8("entry kind")?;
    let kind = match Kind::from_code(code) {
        Some(k @ (Kind::Blob | Kind::Tree)) => k,
        _ => return Err(c.err_at(at, format!("entry {i} has invalid kind byte {code}"))),
    };
    let name_len = usize::from(c.u8("name length")?);
    let name_at = c.pos();
    let name = c.take(name_len, "entry name")?;
    let id = c.id("entry id")?;
    Ok((RawEntry { kind, name, id }, name_at))
}

impl<'a> TreeRef<'a> {
    /// Decode a tree payload, refusing anything non-canonical.
    pub fn decode(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(payload, What::Tree);
        let count = c.count("entry count", MIN_ENTRY)?;
        let mut entries = Vec::with_capacity(count);
        let mut prev: Option<&'a str> = None;
        for i in 0..count {
            let (e, name_at) = read_entry(&mut c, i)?;
            let name = validate_name(e.name)
                .map_err(|err| c.err_at(name_at, format!("entry {i}: {err}")))?;
            if let Some(p) = prev
                && p.as_bytes() >= name.as_bytes()
            {
                return Err(c.err_at(
                    name_at,
                    format!("entry {name:?} is not strictly after {p:?}"),
                ));
            }
            entries.push(EntryRef {
                kind: e.kind,
                name,
                id: e.id,
            });
            prev = Some(name);
        }
        c.finish()?;
        Ok(TreeRef { entries })
    }

    /// The entries' kinds, raw names and ids with the framing checked
    /// (count, lengths, kinds, nothing after the last entry) but not the
    /// names' syntax or order: what a reachability walk needs, at about
    /// two thirds of [`TreeRef::decode`]'s cost. A tree that passes this
    /// may still fail `decode`; fsck decodes every tree canonically.
    pub fn raw_entries(payload: &'a [u8]) -> Result<Vec<RawEntry<'a>>, DecodeError> {
        let mut c = Cursor::new(payload, What::Tree);
        let count = c.count("entry count", MIN_ENTRY)?;
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            entries.push(read_entry(&mut c, i)?.0);
        }
        c.finish()?;
        Ok(entries)
    }

    /// Binary-search an entry by name.
    pub fn find(&self, name: &str) -> Option<&EntryRef<'a>> {
        self.entries
            .binary_search_by(|e| e.name.as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Encode (canonical: equals the input of a successful `decode`).
    pub fn encode(&self) -> Vec<u8> {
        encode_entries(
            self.entries.iter().map(|e| (e.kind, e.name, e.id)),
            self.entries.len(),
        )
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Tree {
        Tree {
            entries: self
                .entries
                .iter()
                .map(|e| Entry {
                    kind: e.kind,
                    name: e.name.to_owned(),
                    id: e.id,
                })
                .collect(),
        }
    }
}

/// Encode entries already known to be valid and sorted.
pub(crate) fn encode_entries<'n>(
    entries: impl Iterator<Item = (Kind, &'n str, ObjectId)>,
    count: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + count * (2 + 16 + ObjectId::LEN));
    out.extend_from_slice(&(count as u32).to_le_bytes());
    for (kind, name, id) in entries {
        out.push(kind.code());
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(id.as_bytes());
    }
    out
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Tree::default()
    }

    /// Build from entries in any order; names are validated, duplicates refused.
    pub fn from_entries(mut entries: Vec<Entry>) -> Result<Self, TreeError> {
        for e in &entries {
            validate_name(e.name.as_bytes())?;
            if e.kind == Kind::Commit {
                return Err(TreeError::BadKind {
                    name: e.name.clone(),
                    kind: e.kind,
                });
            }
        }
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        if let Some(w) = entries.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(TreeError::Duplicate(w[0].name.clone()));
        }
        Ok(Tree { entries })
    }

    /// The entries in canonical order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode_entries(
            self.entries.iter().map(|e| (e.kind, e.name.as_str(), e.id)),
            self.entries.len(),
        )
    }

    /// The id this tree has when stored.
    pub fn id(&self) -> ObjectId {
        ObjectId::compute(Kind::Tree, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, kind: Kind) -> Entry {
        Entry {
            kind,
            name: name.into(),
            id: ObjectId::compute(Kind::Blob, name.as_bytes()),
        }
    }

    #[test]
    fn round_trip_and_order() {
        let t = Tree::from_entries(vec![e("b", Kind::Blob), e("a", Kind::Tree)]).unwrap();
        assert_eq!(t.entries()[0].name, "a");
        let bytes = t.encode();
        let d = TreeRef::decode(&bytes).unwrap();
        assert_eq!(d.to_owned(), t);
        assert_eq!(d.encode(), bytes);
        assert_eq!(d.find("b").map(|e| e.kind), Some(Kind::Blob));
        assert!(d.find("c").is_none());
    }

    #[test]
    fn raw_entries_check_the_framing_and_leave_names_to_decode() {
        let good = Tree::from_entries(vec![e("a", Kind::Blob), e("b", Kind::Tree)]).unwrap();
        let bytes = good.encode();
        let raw = TreeRef::raw_entries(&bytes).unwrap();
        let full = TreeRef::decode(&bytes).unwrap();
        assert_eq!(raw.len(), 2);
        for (r, f) in raw.iter().zip(&full.entries) {
            assert_eq!((r.kind, r.name, r.id), (f.kind, f.name.as_bytes(), f.id));
        }
        // Out of order, or a name with a slash: framing is fine, decode
        // refuses, raw_entries reads it.
        let one = 2 + 1 + 32;
        let mut swapped = bytes[..4].to_vec();
        swapped.extend_from_slice(&bytes[4 + one..]);
        swapped.extend_from_slice(&bytes[4..4 + one]);
        assert!(TreeRef::decode(&swapped).is_err());
        assert_eq!(TreeRef::raw_entries(&swapped).unwrap()[0].name, b"b");
        let mut slash = bytes.clone();
        slash[6] = b'/';
        assert!(TreeRef::decode(&slash).is_err());
        assert_eq!(TreeRef::raw_entries(&slash).unwrap()[0].name, b"/");
        // Framing damage is refused by both.
        let mut kind = bytes.clone();
        kind[4] = 9;
        assert!(TreeRef::raw_entries(&kind).is_err());
        assert!(TreeRef::raw_entries(&bytes[..bytes.len() - 1]).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(TreeRef::raw_entries(&trailing).is_err());
        let mut count = bytes.clone();
        count[0] = 200;
        assert!(TreeRef::raw_entries(&count).is_err());
    }

    #[test]
    fn rejects_non_canonical() {
        let good = Tree::from_entries(vec![e("a", Kind::Blob), e("b", Kind::Blob)]).unwrap();
        let bytes = good.encode();
        // swap the two entries
        let one = 2 + 1 + 32;
        let mut swapped = bytes[..4].to_vec();
        swapped.extend_from_slice(&bytes[4 + one..]);
        swapped.extend_from_slice(&bytes[4..4 + one]);
        assert!(TreeRef::decode(&swapped).is_err());
        // duplicate
        let mut dup = bytes[..4].to_vec();
        dup.extend_from_slice(&bytes[4..4 + one]);
        dup.extend_from_slice(&bytes[4..4 + one]);
        assert!(TreeRef::decode(&dup).is_err());
        // trailing byte
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(TreeRef::decode(&trailing).is_err());
        // commit kind
        let mut k = bytes.clone();
        k[4] = 3;
        assert!(TreeRef::decode(&k).is_err());
        // huge count does not allocate
        let err = TreeRef::decode(&u32::MAX.to_le_bytes()).unwrap_err();
        assert!(err.reason.contains("cannot fit"), "{err}");
        assert!(Tree::from_entries(vec![e("a", Kind::Blob), e("a", Kind::Tree)]).is_err());
        assert!(Tree::from_entries(vec![e("x", Kind::Commit)]).is_err());
    }
}
