//! Tree entry names: the only path components a tree can hold.

/// Why a tree entry name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Zero bytes.
    #[error("tree entry name is empty")]
    Empty,
    /// Longer than 255 bytes (the length is stored in one byte).
    #[error("tree entry name is {0} bytes long; the limit is 255")]
    TooLong(usize),
    /// `.` or `..`, which would make paths ambiguous.
    #[error("tree entry name {0:?} is reserved")]
    Reserved(String),
    /// Contains `/` (the path separator) or NUL.
    #[error("tree entry name {name:?} contains {ch:?}")]
    BadChar {
        /// The name (lossy if not UTF-8).
        name: String,
        /// The refused character.
        ch: char,
    },
    /// Not valid UTF-8.
    #[error("tree entry name is not valid UTF-8")]
    NotUtf8,
}

/// The longest entry name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Check that `name` may be a tree entry name: 1..=255 bytes of UTF-8, no
/// `/`, no NUL, and not `.` or `..`.
pub fn validate_name(name: &[u8]) -> Result<&str, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    let s = std::str::from_utf8(name).map_err(|_| NameError::NotUtf8)?;
    if s == "." || s == ".." {
        return Err(NameError::Reserved(s.to_owned()));
    }
    // Both are ASCII, and no byte of a multi-byte UTF-8 sequence is
    // ASCII: a byte search finds them.
    if let Some(&b) = name.iter().find(|&&b| b == b'/' || b == 0) {
        return Err(NameError::BadChar {
            name: s.to_owned(),
            ch: char::from(b),
        });
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name(b"a").is_ok());
        assert!(validate_name(b".hidden").is_ok());
        assert!(validate_name("ünïcode".as_bytes()).is_ok());
        assert_eq!(validate_name(b""), Err(NameError::Empty));
        assert!(matches!(validate_name(b"."), Err(NameError::Reserved(_))));
        assert!(matches!(validate_name(b".."), Err(NameError::Reserved(_))));
        assert!(matches!(
            validate_name(b"a/b"),
            Err(NameError::BadChar { ch: '/', .. })
        ));
        assert!(matches!(
            validate_name(b"a\0b"),
            Err(NameError::BadChar { ch: '\0', .. })
        ));
        assert_eq!(validate_name(&[0xff]), Err(NameError::NotUtf8));
        assert!(validate_name(&[b'x'; 255]).is_ok());
        assert_eq!(validate_name(&[b'x'; 256]), Err(NameError::TooLong(256)));
    }
}
