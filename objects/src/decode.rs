//! A bounds-checked cursor shared by every payload decoder, and the error it
//! produces. Decoders never index past the input and never allocate more
//! than the remaining input could justify.

use std::fmt;

use crate::ObjectId;

/// Which structure a decode error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum What {
    /// A tree payload.
    Tree,
    /// A commit payload.
    Commit,
    /// Some other encoded structure, named.
    Other(&'static str),
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            What::Tree => f.write_str("tree"),
            What::Commit => f.write_str("commit"),
            What::Other(s) => f.write_str(s),
        }
    }
}

/// A payload that does not decode, with the byte offset where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} payload at byte {offset}: {reason}")]
pub struct DecodeError {
    /// The structure being decoded.
    pub what: What,
    /// Offset into the payload.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

/// Cursor over a payload.
#[derive(Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    what: What,
}

impl<'a> Cursor<'a> {
    /// Start at offset 0.
    pub fn new(buf: &'a [u8], what: What) -> Self {
        Cursor { buf, pos: 0, what }
    }

    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// An error at the current offset.
    pub fn err(&self, reason: impl Into<String>) -> DecodeError {
        self.err_at(self.pos, reason)
    }

    /// An error at `offset`.
    pub fn err_at(&self, offset: usize, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            what: self.what,
            offset,
            reason: reason.into(),
        }
    }

    /// Take `n` bytes.
    pub fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "{field} needs {n} bytes but only {} remain",
                self.remaining()
            )));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Take a fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, field: &str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// u16 LE.
    pub fn u16(&mut self, field: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    /// u32 LE.
    pub fn u32(&mut self, field: &str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    /// u64 LE.
    pub fn u64(&mut self, field: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// i64 LE.
    pub fn i64(&mut self, field: &str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(field)?))
    }

    /// A 32-byte object id.
    pub fn id(&mut self, field: &str) -> Result<ObjectId, DecodeError> {
        Ok(ObjectId::from_bytes(self.array(field)?))
    }

    /// A count of items each at least `min_item` bytes long; refused when the
    /// remaining input cannot hold that many, so callers may pre-allocate it.
    pub fn count(&mut self, field: &str, min_item: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = self.u32(field)? as usize;
        if n.saturating_mul(min_item.max(1)) > self.remaining() {
            return Err(self.err_at(
                at,
                format!(
                    "{field} {n} cannot fit in the {} remaining bytes",
                    self.remaining()
                ),
            ));
        }
        Ok(n)
    }

    /// `u32 LE len` + UTF-8 text.
    pub fn str32(&mut self, field: &str) -> Result<&'a str, DecodeError> {
        let len = self.u32(field)? as usize;
        let at = self.pos;
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes)
            .map_err(|e| self.err_at(at + e.valid_up_to(), format!("{field} is not valid UTF-8")))
    }

    /// Fail unless every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(self.err(format!("{} trailing bytes", self.remaining())));
        }
        Ok(())
    }
}
