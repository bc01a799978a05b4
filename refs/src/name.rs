//! Validated full ref names.
//!
//! A [`RefName`] is either the special name `HEAD` or a full name under
//! `refs/` that follows git's `check-ref-format` rules:
//!
//! - it starts with `refs/` and has no empty component (no `//`, no
//!   trailing `/`);
//! - no component starts with `.` or ends in `.lock`;
//! - it contains no `..`, no `@{`, no ASCII control character (bytes below
//!   0x20, and 0x7f), no space and none of `~ ^ : ? * [ \`;
//! - it does not end in `.` and is not `@`.
//!
//! Sydra adds a length limit of [`RefName::MAX_LEN`] bytes (git has none).
//!
//! Invariant relied on by the store: a valid name, joined to a data
//! directory, names a path strictly inside that directory's `refs/` (or the
//! directory's `HEAD`): every component is non-empty, none is `.` or `..`
//! (both start with `.`), and no separator other than `/` can appear (`\` is
//! forbidden). Path traversal is impossible by construction.

use std::fmt;
use std::str::FromStr;

/// A validated full ref name (`HEAD` or `refs/...`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefName(String);

/// The prefix every name except `HEAD` starts with.
const REFS_PREFIX: &str = "refs/";
/// The prefix of branches, which may only point at commits.
const BRANCH_PREFIX: &str = "refs/heads/";
/// The special symbolic name.
const HEAD: &str = "HEAD";

impl RefName {
    /// The longest accepted name, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Validate `name`.
    pub fn new(name: &str) -> Result<RefName, NameError> {
        match check(name) {
            Ok(()) => Ok(RefName(name.to_owned())),
            Err(reason) => Err(NameError::new(name, reason)),
        }
    }

    /// `HEAD`.
    pub fn head() -> RefName {
        RefName(HEAD.to_owned())
    }

    /// `refs/heads/main`, the branch `HEAD` points at in a new store.
    pub fn main_branch() -> RefName {
        RefName("refs/heads/main".to_owned())
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is `HEAD`.
    pub fn is_head(&self) -> bool {
        self.0 == HEAD
    }

    /// Whether this is a branch (`refs/heads/*`); branches only point at
    /// commits.
    pub fn is_branch(&self) -> bool {
        self.0.starts_with(BRANCH_PREFIX)
    }

    /// The path components (`["refs", "heads", "main"]`).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Every proper ancestor directory name, shortest first (`refs`,
    /// `refs/heads` for `refs/heads/main`).
    pub(crate) fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(i, _)| &self.0[..i])
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefName({:?})", self.0)
    }
}

impl FromStr for RefName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RefName::new(s)
    }
}

impl AsRef<str> for RefName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for RefName {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        RefName::new(s)
    }
}

/// Why a string is not a valid ref name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The empty string.
    Empty,
    /// Longer than [`RefName::MAX_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Neither `HEAD` nor under `refs/`.
    NotUnderRefs,
    /// An ASCII control character (including NUL and DEL).
    ControlChar {
        /// Its byte value.
        byte: u8,
        /// Its byte offset.
        pos: usize,
    },
    /// A space or one of `~ ^ : ? * [ \`.
    ForbiddenChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        pos: usize,
    },
    /// Contains `..`.
    DoubleDot,
    /// Contains `@{`.
    AtBrace,
    /// Ends in `/`.
    TrailingSlash,
    /// Ends in `.`.
    TrailingDot,
    /// Contains `//`.
    EmptyComponent,
    /// A component starts with `.`.
    LeadingDot {
        /// The component.
        component: String,
    },
    /// A component ends in `.lock`.
    LockSuffix {
        /// The component.
        component: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Empty => f.write_str("it is empty"),
            Reason::TooLong { len } => {
                write!(
                    f,
                    "it is {len} bytes long, more than the {} allowed",
                    RefName::MAX_LEN
                )
            }
            Reason::NotUnderRefs => f.write_str("it must be HEAD or start with refs/"),
            Reason::ControlChar { byte, pos } => {
                write!(f, "control character 0x{byte:02x} at byte {pos}")
            }
            Reason::ForbiddenChar { ch, pos } => {
                write!(f, "forbidden character {ch:?} at byte {pos}")
            }
            Reason::DoubleDot => f.write_str("it contains \"..\""),
            Reason::AtBrace => f.write_str("it contains \"@{\""),
            Reason::TrailingSlash => f.write_str("it ends in \"/\""),
            Reason::TrailingDot => f.write_str("it ends in \".\""),
            Reason::EmptyComponent => f.write_str("it contains \"//\" (an empty component)"),
            Reason::LeadingDot { component } => {
                write!(f, "component {component:?} starts with \".\"")
            }
            Reason::LockSuffix { component } => write!(f, "component {component:?} ends in .lock"),
        }
    }
}

/// A rejected ref name and the first rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ref name {name:?}: {reason}")]
pub struct NameError {
    /// The rejected input (cut short if it was over-long).
    name: String,
    reason: Reason,
}

impl NameError {
    fn new(name: &str, reason: Reason) -> NameError {
        // An over-long input is kept only as a prefix: the message must stay
        // readable and the error small whatever the caller passed.
        const SHOWN: usize = 64;
        let name = if name.len() > RefName::MAX_LEN {
            let mut end = SHOWN;
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}...", &name[..end])
        } else {
            name.to_owned()
        };
        NameError { name, reason }
    }

    /// The rejected input (the first 64 bytes followed by `...` when it was
    /// longer than [`RefName::MAX_LEN`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rule it breaks.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }
}

/// Check `name` against every rule, reporting the first one broken.
fn check(name: &str) -> Result<(), Reason> {
    if name.is_empty() {
        return Err(Reason::Empty);
    }
    if name.len() > RefName::MAX_LEN {
        return Err(Reason::TooLong { len: name.len() });
    }
    // Characters first, so that control characters are reported as such even
    // in a name that is not under refs/.
    for (pos, &byte) in name.as_bytes().iter().enumerate() {
        match byte {
            0..=0x1f | 0x7f => return Err(Reason::ControlChar { byte, pos }),
            b' ' | b'~' | b'^' | b':' | b'?' | b'*' | b'[' | b'\\' => {
                return Err(Reason::ForbiddenChar {
                    ch: char::from(byte),
                    pos,
                });
            }
            _ => {}
        }
    }
    if name == HEAD {
        return Ok(());
    }
    if !name.starts_with(REFS_PREFIX) {
        return Err(Reason::NotUnderRefs);
    }
    if name.contains("..") {
        return Err(Reason::DoubleDot);
    }
    if name.contains("@{") {
        return Err(Reason::AtBrace);
    }
    if name.ends_with('/') {
        return Err(Reason::TrailingSlash);
    }
    if name.ends_with('.') {
        return Err(Reason::TrailingDot);
    }
    for component in name.split('/') {
        if component.is_empty() {
            return Err(Reason::EmptyComponent);
        }
        if component.starts_with('.') {
            return Err(Reason::LeadingDot {
                component: component.to_owned(),
            });
        }
        if component.ends_with(".lock") {
            return Err(Reason::LockSuffix {
                component: component.to_owned(),
            });
        }
    }
    // `@` alone is rejected by git; it cannot start with refs/, so the
    // prefix check above already covers it.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> Reason {
        match RefName::new(name) {
            Ok(n) => panic!("{n} was accepted"),
            Err(e) => e.reason().clone(),
        }
    }

    #[test]
    fn accepts_ordinary_names() {
        for n in [
            "HEAD",
            "refs/heads/main",
            "refs/snapshots/2024-01-01T00:00:00Z"
                .replace(':', "-")
                .as_str(),
            "refs/heads/a/b/c",
            "refs/heads/x.y",
            "refs/heads/@",
            "refs/heads/a@b",
            "refs/tags/v1.0",
            "refs/heads/ünï/çødé",
            "refs/heads/x.LOCK",
            "refs/heads/lock",
            "refs/heads/-",
        ] {
            let r = RefName::new(n).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.as_str(), n);
            assert_eq!(r.to_string(), n);
            assert_eq!(n.parse::<RefName>().ok(), Some(r));
        }
    }

    #[test]
    fn rejects_each_rule_with_its_reason() {
        assert_eq!(reason(""), Reason::Empty);
        assert_eq!(reason("@"), Reason::NotUnderRefs);
        assert_eq!(reason("heads/main"), Reason::NotUnderRefs);
        assert_eq!(reason("refs"), Reason::NotUnderRefs);
        assert_eq!(reason("HEAD/x"), Reason::NotUnderRefs);
        assert_eq!(reason("refs/a\0b"), Reason::ControlChar { byte: 0, pos: 6 });
        assert_eq!(
            reason("refs/a\x7f"),
            Reason::ControlChar { byte: 0x7f, pos: 6 }
        );
        assert_eq!(
            reason("refs/a b"),
            Reason::ForbiddenChar { ch: ' ', pos: 6 }
        );
        for c in ['~', '^', ':', '?', '*', '[', '\\'] {
            assert_eq!(
                reason(&format!("refs/x{c}")),
                Reason::ForbiddenChar { ch: c, pos: 6 }
            );
        }
        assert_eq!(reason("refs/a..b"), Reason::DoubleDot);
        assert_eq!(reason("refs/a@{b"), Reason::AtBrace);
        assert_eq!(reason("refs/a/"), Reason::TrailingSlash);
        assert_eq!(reason("refs/"), Reason::TrailingSlash);
        assert_eq!(reason("refs/a."), Reason::TrailingDot);
        assert_eq!(reason("refs//a"), Reason::EmptyComponent);
        assert_eq!(
            reason("refs/.a"),
            Reason::LeadingDot {
                component: ".a".into()
            }
        );
        assert_eq!(
            reason("refs/a/./b"),
            Reason::LeadingDot {
                component: ".".into()
            }
        );
        assert_eq!(
            reason("refs/x.lock/y"),
            Reason::LockSuffix {
                component: "x.lock".into()
            }
        );
        assert_eq!(
            reason("refs/heads/main.lock"),
            Reason::LockSuffix {
                component: "main.lock".into()
            }
        );
        let long = format!("refs/{}", "a".repeat(RefName::MAX_LEN));
        assert_eq!(reason(&long), Reason::TooLong { len: long.len() });
    }

    #[test]
    fn messages_name_the_input_and_rule() {
        let e = RefName::new("refs/heads/x.lock")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("invalid ref name \"refs/heads/x.lock\": component \"x.lock\" ends in .lock")
        );
        let long = "é".repeat(2000);
        let e = RefName::new(&long)
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert!(e.name().len() < 80, "{}", e.name());
        assert!(e.name().ends_with("..."));
    }

    #[test]
    fn max_len_is_inclusive() {
        let exact = format!("refs/{}", "a".repeat(RefName::MAX_LEN - 5));
        assert_eq!(exact.len(), RefName::MAX_LEN);
        assert!(RefName::new(&exact).is_ok());
    }

    #[test]
    fn helpers() {
        let main = RefName::main_branch();
        assert!(main.is_branch());
        assert!(!main.is_head());
        assert!(RefName::head().is_head());
        assert!(!RefName::head().is_branch());
        let heads = RefName::new("refs/headsx/a").unwrap_or_else(|e| panic!("{e}"));
        assert!(!heads.is_branch());
        assert_eq!(main.ancestors().collect::<Vec<_>>(), ["refs", "refs/heads"]);
        assert_eq!(
            main.components().collect::<Vec<_>>(),
            ["refs", "heads", "main"]
        );
        assert_eq!(RefName::head().ancestors().count(), 0);
    }
}
