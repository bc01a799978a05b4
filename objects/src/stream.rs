//! Reading a tree or commit payload from an untrusted stream (a file or
//! standard input given to `hash-object`): exactly as many bytes as the
//! payload's own count and length fields say, each piece checked against a
//! maximum before it is read, and with growth bounded by the bytes that
//! actually arrive. Memory is bounded by the object (and the maximum),
//! never by a length the input claims or by how much input there is.
//!
//! Only the framing is checked here; the caller decodes the result
//! ([`TreeRef::decode`](crate::TreeRef::decode),
//! [`CommitRef::decode`](crate::CommitRef::decode)) for everything else.

use std::io::{self, Read};

use crate::{Kind, ObjectId};

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The bytes read so far and the limit on them.
struct Taker<'r> {
    r: &'r mut dyn Read,
    buf: Vec<u8>,
    max: u64,
    kind: Kind,
}

impl Taker<'_> {
    /// Append the next `n` bytes (`what`, for errors); returns where they
    /// start.
    fn need(&mut self, n: u64, what: &str) -> io::Result<usize> {
        let start = self.buf.len();
        if start as u64 + n > self.max {
            return Err(invalid(format!(
                "the {what} at offset {start} ({n} bytes) would make the {} longer than {} bytes",
                self.kind, self.max
            )));
        }
        // `take` + `read_to_end` grows the buffer with the data that
        // arrives, never reserving `n` up front.
        (&mut *self.r).take(n).read_to_end(&mut self.buf)?;
        if ((self.buf.len() - start) as u64) < n {
            return Err(invalid(format!(
                "the input ends at offset {} inside the {what} of a {}",
                self.buf.len(),
                self.kind
            )));
        }
        Ok(start)
    }

    fn uint<const N: usize>(&mut self, what: &str) -> io::Result<u64> {
        let at = self.need(N as u64, what)?;
        let mut le = [0u8; 8];
        le[..N].copy_from_slice(&self.buf[at..at + N]);
        Ok(u64::from_le_bytes(le))
    }
}

/// Read one `kind` payload (tree or commit) from `r`, at most `max` bytes,
/// and require the input to end there. A blob has no framing: reading one
/// here is an error.
pub fn read_payload(kind: Kind, r: &mut dyn Read, max: u64) -> io::Result<Vec<u8>> {
    let mut t = Taker {
        r,
        buf: Vec::new(),
        max,
        kind,
    };
    let id = ObjectId::LEN as u64;
    match kind {
        Kind::Blob => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a blob has no framing to read by",
            ));
        }
        Kind::Tree => {
            let count = t.uint::<4>("entry count")?;
            for _ in 0..count {
                let at = t.need(2, "entry kind and name length")?;
                // Checked as it streams, so garbage stops at its first
                // entry rather than at the maximum.
                if Kind::from_code(t.buf[at]).is_none_or(|k| k == Kind::Commit) {
                    return Err(invalid(format!(
                        "the entry kind at offset {at} is {}, not 1 (blob) or 2 (tree)",
                        t.buf[at]
                    )));
                }
                let name_len = u64::from(t.buf[at + 1]);
                t.need(name_len + id, "entry name and id")?;
            }
        }
        Kind::Commit => {
            t.need(id, "tree id")?;
            let parents = t.uint::<4>("parent count")?;
            t.need(parents * id, "parent ids")?;
            t.need(8, "timestamp")?;
            for field in ["author", "message", "branch"] {
                let len = t.uint::<4>(field)?;
                t.need(len, field)?;
            }
            let pairs = t.uint::<4>("meta count")?;
            for _ in 0..pairs {
                let key = t.uint::<2>("meta key length")?;
                t.need(key, "meta key")?;
                let value = t.uint::<4>("meta value length")?;
                t.need(value, "meta value")?;
            }
        }
    }
    let end = t.buf.len();
    let mut one = [0u8; 1];
    loop {
        match t.r.read(&mut one) {
            Ok(0) => return Ok(t.buf),
            Ok(_) => {
                return Err(invalid(format!(
                    "the input continues past the end of the {kind} at offset {end}"
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Commit, Entry, Tree};

    #[test]
    fn reads_exactly_a_tree_or_commit() {
        let blob = ObjectId::compute(Kind::Blob, b"x");
        let tree = Tree::from_entries(vec![Entry {
            kind: Kind::Blob,
            name: "a".repeat(255),
            id: blob,
        }])
        .unwrap()
        .encode();
        assert_eq!(
            read_payload(Kind::Tree, &mut &tree[..], 1 << 20).unwrap(),
            tree
        );
        let mut c = Commit {
            tree: blob,
            parents: vec![blob, blob],
            timestamp: 5,
            author: "a".into(),
            message: "m".into(),
            branch: "b".into(),
            meta: Default::default(),
        };
        c.set_meta("k", 7);
        let commit = c.encode().unwrap();
        assert_eq!(
            read_payload(Kind::Commit, &mut &commit[..], 1 << 20).unwrap(),
            commit
        );
        // Trailing bytes, a short input, a claim past the maximum.
        let mut long = tree.clone();
        long.push(0);
        assert!(read_payload(Kind::Tree, &mut &long[..], 1 << 20).is_err());
        assert!(read_payload(Kind::Tree, &mut &tree[..tree.len() - 1], 1 << 20).is_err());
        assert!(read_payload(Kind::Tree, &mut &tree[..], 100).is_err());
        let mut huge = vec![0u8; 32];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let e = read_payload(Kind::Commit, &mut &huge[..], 1 << 20).unwrap_err();
        assert!(e.to_string().contains("parent ids at offset 36"), "{e}");
    }

    #[test]
    fn an_endless_input_is_read_no_further_than_the_structure() {
        // Zeros: a tree of 0 entries, then more input.
        let mut zeros = std::io::repeat(0).take(1 << 40);
        let e = read_payload(Kind::Tree, &mut zeros, 1 << 28).unwrap_err();
        assert!(e.to_string().contains("continues past the end"), "{e}");
        // 0xff: a tree claiming u32::MAX entries stops at its first entry.
        let mut ones = std::io::repeat(0xff).take(1 << 40);
        let e = read_payload(Kind::Tree, &mut ones, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("entry kind at offset 4"), "{e}");
        // Well-formed entries claimed without end stop at the maximum.
        let mut entries = std::io::repeat(1).take(1 << 40);
        let e = read_payload(Kind::Tree, &mut entries, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("longer than 1048576 bytes"), "{e}");
    }
}
