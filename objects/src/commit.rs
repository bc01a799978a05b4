//! Commit payloads.
//!
//! ```text
//! 32-byte tree id
//! u32 LE parent count, then parent ids (32 bytes each)
//! i64 LE timestamp (ns since the Unix epoch, UTC)
//! u32 LE len + UTF-8 author
//! u32 LE len + UTF-8 message
//! u32 LE len + UTF-8 branch (empty = none)
//! u32 LE meta count, then per pair, strictly ascending by key bytes:
//!     u16 LE len + UTF-8 key, u32 LE len + value bytes
//! ```

use std::collections::BTreeMap;

use crate::ObjectId;
use crate::decode::{Cursor, DecodeError, What};

/// A decoded commit borrowing from its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRef<'a> {
    /// Root tree.
    pub tree: ObjectId,
    /// Parents; the first is the first-parent chain.
    pub parents: Vec<ObjectId>,
    /// Nanoseconds since the Unix epoch, UTC.
    pub timestamp: i64,
    /// Who made it.
    pub author: &'a str,
    /// Why.
    pub message: &'a str,
    /// Branch hint; empty for none.
    pub branch: &'a str,
    /// Metadata pairs in ascending key order.
    pub meta: Vec<(&'a str, &'a [u8])>,
}

/// An owned commit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Commit {
    /// Root tree.
    pub tree: ObjectId,
    /// Parents; the first is the first-parent chain.
    pub parents: Vec<ObjectId>,
    /// Nanoseconds since the Unix epoch, UTC.
    pub timestamp: i64,
    /// Who made it.
    pub author: String,
    /// Why.
    pub message: String,
    /// Branch hint; empty for none.
    pub branch: String,
    /// Metadata; a map, so keys are unique and ordered.
    pub meta: BTreeMap<String, Vec<u8>>,
}

impl Default for ObjectId {
    fn default() -> Self {
        ObjectId::from_bytes([0; 32])
    }
}

/// A field too large for its length prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("commit {field} is {len} bytes, more than its length field can hold ({max})")]
pub struct EncodeError {
    /// Which field.
    pub field: &'static str,
    /// Its length.
    pub len: usize,
    /// The most the format allows.
    pub max: u64,
}

impl<'a> CommitRef<'a> {
    /// Decode a commit payload, refusing anything non-canonical.
    pub fn decode(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(payload, What::Commit);
        let tree = c.id("tree id")?;
        let n = c.count("parent count", ObjectId::LEN)?;
        let mut parents = Vec::with_capacity(n);
        for _ in 0..n {
            parents.push(c.id("parent id")?);
        }
        let timestamp = c.i64("timestamp")?;
        let author = c.str32("author")?;
        let message = c.str32("message")?;
        let branch = c.str32("branch")?;
        let n = c.count("meta count", 2 + 4)?;
        let mut meta: Vec<(&'a str, &'a [u8])> = Vec::with_capacity(n);
        for _ in 0..n {
            let key_len = usize::from(c.u16("meta key length")?);
            let at = c.pos();
            let key = c.take(key_len, "meta key")?;
            let key = std::str::from_utf8(key)
                .map_err(|_| c.err_at(at, "meta key is not valid UTF-8"))?;
            if let Some((prev, _)) = meta.last()
                && prev.as_bytes() >= key.as_bytes()
            {
                return Err(c.err_at(
                    at,
                    format!("meta key {key:?} is not strictly after {prev:?}"),
                ));
            }
            let len = c.u32("meta value length")? as usize;
            let value = c.take(len, "meta value")?;
            meta.push((key, value));
        }
        c.finish()?;
        Ok(CommitRef {
            tree,
            parents,
            timestamp,
            author,
            message,
            branch,
            meta,
        })
    }

    /// Look up a metadata value.
    pub fn meta(&self, key: &str) -> Option<&'a [u8]> {
        self.meta
            .binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes()))
            .ok()
            .map(|i| self.meta[i].1)
    }

    /// A metadata value parsed as a decimal u64 (e.g. `wal.applied_seq`).
    pub fn meta_u64(&self, key: &str) -> Option<u64> {
        std::str::from_utf8(self.meta(key)?).ok()?.parse().ok()
    }

    /// The first parent, if any.
    pub fn first_parent(&self) -> Option<ObjectId> {
        self.parents.first().copied()
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Commit {
        Commit {
            tree: self.tree,
            parents: self.parents.clone(),
            timestamp: self.timestamp,
            author: self.author.to_owned(),
            message: self.message.to_owned(),
            branch: self.branch.to_owned(),
            meta: self
                .meta
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                .collect(),
        }
    }

    /// Canonical encoding. Cannot fail: every field came from a valid payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Lengths were read from u16/u32 fields, so they fit them again.
        encode_into(
            &mut out,
            self.tree,
            &self.parents,
            self.timestamp,
            [self.author, self.message, self.branch],
            self.meta.iter().map(|(k, v)| (*k, *v)),
        );
        out
    }
}

fn check(field: &'static str, len: usize, max: u64) -> Result<(), EncodeError> {
    if len as u64 > max {
        Err(EncodeError { field, len, max })
    } else {
        Ok(())
    }
}

fn encode_into<'m>(
    out: &mut Vec<u8>,
    tree: ObjectId,
    parents: &[ObjectId],
    timestamp: i64,
    texts: [&str; 3],
    meta: impl ExactSizeIterator<Item = (&'m str, &'m [u8])>,
) {
    out.extend_from_slice(tree.as_bytes());
    out.extend_from_slice(&(parents.len() as u32).to_le_bytes());
    for p in parents {
        out.extend_from_slice(p.as_bytes());
    }
    out.extend_from_slice(&timestamp.to_le_bytes());
    for t in texts {
        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    for (k, v) in meta {
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
}

impl Commit {
    /// Canonical encoding; fails only when a field exceeds its length prefix.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let max32 = u64::from(u32::MAX);
        check("parent list", self.parents.len(), max32)?;
        check("author", self.author.len(), max32)?;
        check("message", self.message.len(), max32)?;
        check("branch", self.branch.len(), max32)?;
        check("meta map", self.meta.len(), max32)?;
        for (k, v) in &self.meta {
            check("meta key", k.len(), u64::from(u16::MAX))?;
            check("meta value", v.len(), max32)?;
        }
        let mut out = Vec::with_capacity(
            32 + 4 + 32 * self.parents.len() + 8 + 16 + self.message.len() + self.author.len(),
        );
        encode_into(
            &mut out,
            self.tree,
            &self.parents,
            self.timestamp,
            [&self.author, &self.message, &self.branch],
            self.meta.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
        );
        Ok(out)
    }

    /// A borrowed view.
    pub fn as_ref(&self) -> CommitRef<'_> {
        CommitRef {
            tree: self.tree,
            parents: self.parents.clone(),
            timestamp: self.timestamp,
            author: &self.author,
            message: &self.message,
            branch: &self.branch,
            meta: self
                .meta
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect(),
        }
    }

    /// Set a metadata value from its text form.
    pub fn set_meta(&mut self, key: &str, value: impl ToString) {
        self.meta
            .insert(key.to_owned(), value.to_string().into_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    #[test]
    fn round_trip() {
        let mut c = Commit {
            tree: ObjectId::compute(Kind::Tree, b""),
            parents: vec![ObjectId::compute(Kind::Commit, b"p")],
            timestamp: -5,
            author: "me".into(),
            message: "msg\nline".into(),
            branch: "main".into(),
            meta: BTreeMap::new(),
        };
        c.set_meta("wal.last_seq", 42);
        c.set_meta("a", "x");
        let bytes = c.encode().unwrap();
        let d = CommitRef::decode(&bytes).unwrap();
        assert_eq!(d.to_owned(), c);
        assert_eq!(d.encode(), bytes);
        assert_eq!(d.meta_u64("wal.last_seq"), Some(42));
        assert_eq!(d.meta("a"), Some(&b"x"[..]));
        assert_eq!(d.meta("zz"), None);
    }

    #[test]
    fn rejects_unsorted_meta_and_trailing() {
        let mut c = Commit::default();
        c.set_meta("a", 1);
        c.set_meta("b", 2);
        let bytes = c.encode().unwrap();
        let mut t = bytes.clone();
        t.push(9);
        assert!(CommitRef::decode(&t).is_err());
        // Rewrite key "b" to "a": duplicates are refused.
        let pos = bytes.len() - 1 - 4 - 1;
        let mut dup = bytes.clone();
        assert_eq!(dup[pos], b'b');
        dup[pos] = b'a';
        assert!(CommitRef::decode(&dup).is_err());
        let mut huge = vec![0u8; 32];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(CommitRef::decode(&huge).is_err());
    }
}
