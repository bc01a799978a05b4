//! The three object kinds and their one-byte codes.

use std::fmt;
use std::str::FromStr;

/// What an object is. The discriminant is the byte stored on disk and mixed
/// into the id; no other values exist in format v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// Opaque bytes.
    Blob = 1,
    /// A sorted directory of named blobs and trees.
    Tree = 2,
    /// A point in history: a root tree, parents and metadata.
    Commit = 3,
}

impl Kind {
    /// The on-disk byte.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// Parse the on-disk byte; `None` for any value format v1 does not define.
    pub const fn from_code(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::Blob),
            2 => Some(Kind::Tree),
            3 => Some(Kind::Commit),
            _ => None,
        }
    }

    /// The lowercase name used by the command line (`blob`, `tree`, `commit`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Tree => "tree",
            Kind::Commit => "commit",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a kind name that is not `blob`, `tree` or `commit`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown object kind {0:?} (expected blob, tree or commit)")]
pub struct ParseKindError(pub String);

impl FromStr for Kind {
    type Err = ParseKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "blob" => Ok(Kind::Blob),
            "tree" => Ok(Kind::Tree),
            "commit" => Ok(Kind::Commit),
            other => Err(ParseKindError(other.to_owned())),
        }
    }
}
