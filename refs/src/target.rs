//! What a ref holds, and the strict parser for ref files.
//!
//! ```text
//! direct ref:    <64 lowercase hex digits>\n          (65 bytes)
//! symbolic ref:  ref: <full ref name, not HEAD>\n     (at most 6 + RefName::MAX_LEN bytes)
//! ```
//!
//! Nothing else is accepted: no uppercase hex, no missing or doubled
//! newline, no surrounding whitespace, no `\r`.

use std::fmt;

use sydra_objects::ObjectId;

use crate::name::{NameError, RefName};

/// The value of a ref.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Points at an object.
    Object(ObjectId),
    /// Points at another ref (`ref: refs/heads/main`).
    Symbolic(RefName),
}

/// Prefix of a symbolic ref file.
const SYMBOLIC_PREFIX: &[u8] = b"ref: ";

/// The largest valid ref file: `ref: ` + the longest name + `\n`.
pub const MAX_REF_FILE_LEN: usize = SYMBOLIC_PREFIX.len() + RefName::MAX_LEN + 1;

impl Target {
    /// The exact file content for this target.
    pub fn to_file_content(&self) -> Vec<u8> {
        match self {
            Target::Object(id) => {
                let mut out = Vec::with_capacity(ObjectId::HEX_LEN + 1);
                out.extend_from_slice(&id.hex_bytes());
                out.push(b'\n');
                out
            }
            Target::Symbolic(name) => {
                let mut out = Vec::with_capacity(SYMBOLIC_PREFIX.len() + name.as_str().len() + 1);
                out.extend_from_slice(SYMBOLIC_PREFIX);
                out.extend_from_slice(name.as_str().as_bytes());
                out.push(b'\n');
                out
            }
        }
    }

    /// The object id, for a direct ref.
    pub fn object(&self) -> Option<ObjectId> {
        match self {
            Target::Object(id) => Some(*id),
            Target::Symbolic(_) => None,
        }
    }

    /// The ref pointed at, for a symbolic ref.
    pub fn symbolic(&self) -> Option<&RefName> {
        match self {
            Target::Object(_) => None,
            Target::Symbolic(name) => Some(name),
        }
    }
}

impl fmt::Display for Target {
    /// `<hex>` or `ref: <name>` (the file content without its newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Object(id) => write!(f, "{id}"),
            Target::Symbolic(name) => write!(f, "ref: {name}"),
        }
    }
}

/// Why bytes are not a valid ref file. The store wraps it with the file's
/// path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseRefError {
    /// Zero bytes.
    #[error("the file is empty")]
    Empty,
    /// More bytes than any valid ref file has.
    #[error(
        "the file is {len} bytes or more, longer than any valid ref ({MAX_REF_FILE_LEN} bytes)"
    )]
    TooLong {
        /// The length seen (reading stops just past the maximum).
        len: usize,
    },
    /// The last byte is not `\n`.
    #[error("the content does not end in a newline")]
    MissingNewline,
    /// 64 characters that are not all lowercase hex digits.
    #[error("byte {pos} ({byte:?}) of the object id is not a lowercase hex digit")]
    BadHex {
        /// Offset in the file.
        pos: usize,
        /// The offending byte, as a char for display.
        byte: char,
    },
    /// `ref: ` followed by bytes that are not UTF-8.
    #[error("the symbolic target is not valid UTF-8")]
    NotUtf8,
    /// `ref: ` followed by an invalid name.
    #[error("the symbolic target is invalid: {0}")]
    BadSymbolic(NameError),
    /// `ref: HEAD`: only names under `refs/` may be pointed at.
    #[error("a symbolic ref cannot point at HEAD")]
    SymbolicHead,
    /// Neither form.
    #[error("{len} bytes that are neither \"<64 lowercase hex>\\n\" nor \"ref: <name>\\n\"")]
    Unrecognized {
        /// File length.
        len: usize,
    },
}

/// Parse the content of a ref file. Strict: exactly `<64 lowercase hex>\n`
/// or `ref: <refs/... name>\n`.
pub fn parse_ref_file(bytes: &[u8]) -> Result<Target, ParseRefError> {
    if bytes.is_empty() {
        return Err(ParseRefError::Empty);
    }
    if bytes.len() > MAX_REF_FILE_LEN {
        return Err(ParseRefError::TooLong { len: bytes.len() });
    }
    let Some(body) = bytes.strip_suffix(b"\n") else {
        return Err(ParseRefError::MissingNewline);
    };
    if let Some(rest) = body.strip_prefix(SYMBOLIC_PREFIX) {
        let text = std::str::from_utf8(rest).map_err(|_| ParseRefError::NotUtf8)?;
        // RefName rejects control characters, so a second newline or a `\r`
        // inside the name is refused here.
        let name = RefName::new(text).map_err(ParseRefError::BadSymbolic)?;
        if name.is_head() {
            return Err(ParseRefError::SymbolicHead);
        }
        return Ok(Target::Symbolic(name));
    }
    if body.len() != ObjectId::HEX_LEN {
        return Err(ParseRefError::Unrecognized { len: bytes.len() });
    }
    let mut raw = [0u8; ObjectId::LEN];
    for (i, pair) in body.chunks_exact(2).enumerate() {
        let hi = lower_hex(pair[0]).ok_or(ParseRefError::BadHex {
            pos: 2 * i,
            byte: char::from(pair[0]),
        })?;
        let lo = lower_hex(pair[1]).ok_or(ParseRefError::BadHex {
            pos: 2 * i + 1,
            byte: char::from(pair[1]),
        })?;
        raw[i] = (hi << 4) | lo;
    }
    Ok(Target::Object(ObjectId::from_bytes(raw)))
}

/// The value of one lowercase hex digit.
pub(crate) fn lower_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Parse exactly 64 lowercase hex digits.
pub(crate) fn parse_lower_hex_id(s: &[u8]) -> Option<ObjectId> {
    if s.len() != ObjectId::HEX_LEN {
        return None;
    }
    let mut raw = [0u8; ObjectId::LEN];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        raw[i] = (lower_hex(pair[0])? << 4) | lower_hex(pair[1])?;
    }
    Some(ObjectId::from_bytes(raw))
}

#[cfg(test)]
mod tests {
    use sydra_objects::Kind;

    use super::*;

    fn id() -> ObjectId {
        ObjectId::compute(Kind::Blob, b"x")
    }

    #[test]
    fn round_trips_both_forms() {
        let direct = Target::Object(id());
        assert_eq!(
            parse_ref_file(&direct.to_file_content()),
            Ok(direct.clone())
        );
        assert_eq!(direct.to_file_content().len(), 65);
        let sym = Target::Symbolic(RefName::main_branch());
        assert_eq!(sym.to_file_content(), b"ref: refs/heads/main\n");
        assert_eq!(parse_ref_file(b"ref: refs/heads/main\n"), Ok(sym));
    }

    #[test]
    fn rejects_near_misses() {
        let hex = id().to_hex();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "empty"),
            (hex.clone().into_bytes(), "no newline"),
            (format!("{hex}\n\n").into_bytes(), "two newlines"),
            (format!("{hex}\r\n").into_bytes(), "crlf"),
            (format!(" {hex}\n").into_bytes(), "leading space"),
            (
                format!("{}\n", hex.to_uppercase()).into_bytes(),
                "uppercase",
            ),
            (format!("{}\n", &hex[..63]).into_bytes(), "short"),
            (format!("{hex}0\n").into_bytes(), "long"),
            (b"ref: HEAD\n".to_vec(), "HEAD target"),
            (b"ref:refs/heads/main\n".to_vec(), "no space"),
            (b"ref: refs/heads/main \n".to_vec(), "trailing space"),
            (b"ref: refs/heads/main\r\n".to_vec(), "crlf symbolic"),
            (b"ref: heads/main\n".to_vec(), "short name"),
            (b"ref: refs/heads/\xff\n".to_vec(), "non-utf8"),
            (b"ref: \n".to_vec(), "empty target"),
            (vec![b'a'; MAX_REF_FILE_LEN + 1], "too long"),
        ];
        for (bytes, what) in cases {
            assert!(parse_ref_file(&bytes).is_err(), "{what} accepted");
        }
        assert_eq!(
            parse_ref_file(b"ref: HEAD\n"),
            Err(ParseRefError::SymbolicHead)
        );
        let mut bad = format!("{hex}\n").into_bytes();
        bad[10] = b'g';
        assert_eq!(
            parse_ref_file(&bad),
            Err(ParseRefError::BadHex { pos: 10, byte: 'g' })
        );
    }

    #[test]
    fn longest_symbolic_ref_fits() {
        let name = RefName::new(&format!("refs/{}", "a".repeat(RefName::MAX_LEN - 5)))
            .unwrap_or_else(|e| panic!("{e}"));
        let content = Target::Symbolic(name.clone()).to_file_content();
        assert_eq!(content.len(), MAX_REF_FILE_LEN);
        assert_eq!(parse_ref_file(&content), Ok(Target::Symbolic(name)));
    }

    #[test]
    fn lower_hex_id() {
        let hex = id().to_hex();
        assert_eq!(parse_lower_hex_id(hex.as_bytes()), Some(id()));
        assert_eq!(parse_lower_hex_id(hex.to_uppercase().as_bytes()), None);
        assert_eq!(parse_lower_hex_id(&hex.as_bytes()[1..]), None);
    }
}
