//! Series selectors (DESIGN.md §10): which series a query reads.
//!
//! ```text
//! cpu                                   every series of measurement cpu
//! cpu{host="a", _field="usage"}         … with tag host = a, field usage
//! {region=~"eu-.*", host!~"test.*"}     any measurement
//! {}                                    every series
//! ```
//!
//! Matchers follow Prometheus's semantics: `=` and `!=` compare the whole
//! value; `=~` and `!~` take a regular expression (the `regex` crate's
//! syntax: linear time, no backreferences) anchored at both ends; a tag a
//! series does not carry has the value `""`, so `{dc=""}` selects the series
//! without a `dc` tag; a series may carry tags the selector does not name.
//! `_field` names the field and `__name__` (or `_measurement`) the
//! measurement, as pseudo-tags. Values are double- or single-quoted strings
//! with the escapes `\"`, `\'`, `\\`, `\n` and `\t`. A measurement before
//! the braces is a bare word (letters, digits and `_ : . - /`) or a quoted
//! string.
//!
//! A bad selector is refused with the column (1-based, in characters) where
//! it goes wrong.

use std::fmt;

use regex::Regex;

use super::key::{FIELD_TAG, SeriesKey};

/// The most bytes a selector may hold.
pub const MAX_SELECTOR_LEN: usize = 64 * 1024;
/// The most memory one compiled regex may take.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a selector was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("selector column {column}: {message}")]
pub struct SelectorError {
    /// 1-based column, in characters, of the offending text.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// What a matcher compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// The measurement (`__name__`, `_measurement`, or the word before the
    /// braces).
    Measurement,
    /// The field (`_field`).
    Field,
    /// A tag.
    Tag(String),
}

/// A matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Re,
    /// `!~`
    NotRe,
}

/// One `label op "value"`.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// What it compares.
    pub label: Label,
    /// How.
    pub op: Op,
    /// The value or regex source as written (unescaped).
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    /// A matcher; a regex operator compiles `value` (anchored).
    pub fn new(label: Label, op: Op, value: &str) -> Result<Matcher, String> {
        let re = match op {
            Op::Re | Op::NotRe => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| format!("bad regular expression {value:?}: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            label,
            op,
            value: value.to_owned(),
            re,
        })
    }

    /// Does `key` satisfy this matcher?
    pub fn matches(&self, key: &SeriesKey) -> bool {
        let v = match &self.label {
            Label::Measurement => key.measurement(),
            Label::Field => key.field(),
            Label::Tag(t) => key.tag(t).unwrap_or(""),
        };
        match (self.op, &self.re) {
            (Op::Eq, _) => v == self.value,
            (Op::Ne, _) => v != self.value,
            (Op::Re, Some(re)) => re.is_match(v),
            (Op::NotRe, Some(re)) => !re.is_match(v),
            // `new` compiles a regex for both regex operators.
            (Op::Re | Op::NotRe, None) => false,
        }
    }
}

/// A parsed selector: every matcher must hold.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// The matchers, in the order written (the measurement first when it
    /// was written before the braces).
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// The measurement an `=` matcher requires, if one does: only that
    /// measurement's series need be looked at.
    pub fn measurement_eq(&self) -> Option<&str> {
        self.matchers
            .iter()
            .find(|m| m.label == Label::Measurement && m.op == Op::Eq)
            .map(|m| m.value.as_str())
    }

    /// The (tag, value) pairs every selected key holds: its equality
    /// matchers on tags with a non-empty value (`tag=""` selects keys
    /// without the tag, so it names no value to look up).
    pub fn tags_eq(&self) -> Vec<(&str, &str)> {
        self.matchers
            .iter()
            .filter_map(|m| match (&m.label, m.op) {
                (Label::Tag(t), Op::Eq) if !m.value.is_empty() => {
                    Some((t.as_str(), m.value.as_str()))
                }
                _ => None,
            })
            .collect()
    }

    /// The selector of every series.
    pub fn all() -> Selector {
        Selector::default()
    }

    /// Parse a selector (the grammar in the module docs).
    pub fn parse(s: &str) -> Result<Selector, SelectorError> {
        if s.len() > MAX_SELECTOR_LEN {
            return Err(SelectorError {
                column: 1,
                message: format!(
                    "{} bytes; a selector may hold at most {MAX_SELECTOR_LEN}",
                    s.len()
                ),
            });
        }
        Parser {
            chars: s.char_indices().collect(),
            pos: 0,
        }
        .selector()
    }

    /// Does `key` satisfy every matcher?
    pub fn matches(&self, key: &SeriesKey) -> bool {
        self.matchers.iter().all(|m| m.matches(key))
    }

    /// The measurement every selected series has, when an `=` matcher
    /// fixes it.
    pub fn measurement(&self) -> Option<&str> {
        self.matchers
            .iter()
            .find(|m| m.label == Label::Measurement && m.op == Op::Eq)
            .map(|m| m.value.as_str())
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Selector, SelectorError> {
        Selector::parse(s)
    }
}

impl fmt::Display for Selector {
    /// The canonical form: `{label op "value", …}`, which parses back to
    /// the same selector.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match &m.label {
                Label::Measurement => f.write_str("__name__")?,
                Label::Field => f.write_str(FIELD_TAG)?,
                Label::Tag(t) if is_word(t) => f.write_str(t)?,
                Label::Tag(t) => write_quoted(f, t)?,
            }
            f.write_str(match m.op {
                Op::Eq => "=",
                Op::Ne => "!=",
                Op::Re => "=~",
                Op::NotRe => "!~",
            })?;
            write_quoted(f, &m.value)?;
        }
        f.write_str("}")
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | ':' | '.' | '-' | '/')
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_word_char)
}

struct Parser {
    chars: Vec<(usize, char)>,
    /// Index into `chars`.
    pos: usize,
}

impl Parser {
    fn err<T>(&self, at: usize, message: impl Into<String>) -> Result<T, SelectorError> {
        Err(SelectorError {
            column: at + 1,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn blanks(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            Some(c) => format!("{c:?}"),
            None => "the end".into(),
        }
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut sel = Selector::default();
        self.blanks();
        if self.peek().is_none() {
            return self.err(0, "empty; use {} for every series");
        }
        if self.peek() != Some('{') {
            let at = self.pos;
            let name = self.name("a measurement")?;
            let m = Matcher::new(Label::Measurement, Op::Eq, &name).or_else(|e| self.err(at, e))?;
            sel.matchers.push(m);
            self.blanks();
        }
        if self.peek() == Some('{') {
            self.pos += 1;
            loop {
                self.blanks();
                if self.peek() == Some('}') {
                    self.pos += 1;
                    break;
                }
                sel.matchers.push(self.matcher()?);
                self.blanks();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some('}') => {}
                    _ => {
                        return self.err(
                            self.pos,
                            format!(
                                "expected ',' or '}}' after a matcher, found {}",
                                self.describe()
                            ),
                        );
                    }
                }
            }
            self.blanks();
        }
        if self.peek().is_some() {
            return self.err(
                self.pos,
                format!("unexpected {} after the selector", self.describe()),
            );
        }
        Ok(sel)
    }

    /// A bare word or a quoted string.
    fn name(&mut self, what: &str) -> Result<String, SelectorError> {
        match self.peek() {
            Some('"' | '\'') => self.quoted(),
            Some(c) if is_word_char(c) => {
                let mut s = String::new();
                while let Some(c) = self.peek().filter(|&c| is_word_char(c)) {
                    s.push(c);
                    self.pos += 1;
                }
                Ok(s)
            }
            _ => self.err(
                self.pos,
                format!("expected {what}, found {}", self.describe()),
            ),
        }
    }

    fn quoted(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        let Some(q) = self.peek() else {
            return self.err(self.pos, "expected a quoted string, found the end");
        };
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return self.err(start, "this string is not closed"),
                Some(c) if c == q => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some('\\') => {
                    self.pos += 1;
                    let c = match self.peek() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some(c @ ('\\' | '"' | '\'')) => c,
                        // A regex escape (`\d`, `\.`) passes through.
                        Some(c) => {
                            s.push('\\');
                            c
                        }
                        None => return self.err(start, "this string is not closed"),
                    };
                    s.push(c);
                    self.pos += 1;
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn matcher(&mut self) -> Result<Matcher, SelectorError> {
        let at = self.pos;
        let name = self.name("a tag name")?;
        let label = match name.as_str() {
            "__name__" | "_measurement" => Label::Measurement,
            FIELD_TAG => Label::Field,
            _ => Label::Tag(name),
        };
        self.blanks();
        let op_at = self.pos;
        let op = match (self.peek(), self.chars.get(self.pos + 1).map(|&(_, c)| c)) {
            (Some('='), Some('~')) => Op::Re,
            (Some('!'), Some('=')) => Op::Ne,
            (Some('!'), Some('~')) => Op::NotRe,
            (Some('='), _) => Op::Eq,
            _ => {
                return self.err(
                    op_at,
                    format!("expected =, !=, =~ or !~, found {}", self.describe()),
                );
            }
        };
        self.pos += if op == Op::Eq { 1 } else { 2 };
        self.blanks();
        let value_at = self.pos;
        if !matches!(self.peek(), Some('"' | '\'')) {
            return self.err(
                value_at,
                format!("expected a quoted value, found {}", self.describe()),
            );
        }
        let value = self.quoted()?;
        Matcher::new(label, op, &value)
            .or_else(|e| self.err(if at < value_at { value_at } else { at }, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(m: &str, tags: &[(&str, &str)], f: &str) -> SeriesKey {
        SeriesKey::new(
            m,
            tags.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            f,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn matching_follows_prometheus() {
        let a = key("cpu", &[("host", "a"), ("dc", "eu-1")], "usage");
        let b = key("cpu", &[("host", "b")], "idle");
        let c = key("mem", &[("host", "a")], "used");
        let pick = |s: &str| -> Vec<bool> {
            let q = sel(s);
            [&a, &b, &c].iter().map(|k| q.matches(k)).collect()
        };
        assert_eq!(pick("cpu"), [true, true, false]);
        assert_eq!(pick("{}"), [true, true, true]);
        assert_eq!(pick(r#"{host="a"}"#), [true, false, true]);
        assert_eq!(pick(r#"cpu{host!="a"}"#), [false, true, false]);
        assert_eq!(pick(r#"{dc=""}"#), [false, true, true]);
        assert_eq!(pick(r#"{dc=~"eu-.*"}"#), [true, false, false]);
        // Anchored: "eu" alone does not match "eu-1".
        assert_eq!(pick(r#"{dc=~"eu"}"#), [false, false, false]);
        assert_eq!(pick(r#"{dc!~"eu-.*"}"#), [false, true, true]);
        assert_eq!(pick(r#"{_field="idle"}"#), [false, true, false]);
        assert_eq!(
            pick(r#"{__name__=~"cpu|mem", _field!="idle"}"#),
            [true, false, true]
        );
        assert_eq!(pick(r#"{_measurement='mem'}"#), [false, false, true]);
        assert_eq!(pick(r#"  cpu { host = "a" , } "#), [true, false, false]);
    }

    #[test]
    fn display_parses_back() {
        for s in [
            r#"cpu{host="a\"b", dc=~"eu\\.\d+"}"#,
            r#"{"odd key"!~"x", _field="f"}"#,
            "\"my measurement\"",
            "{}",
        ] {
            let q = sel(s);
            let again = sel(&q.to_string());
            assert_eq!(q.to_string(), again.to_string(), "{s}");
            assert_eq!(q.matchers.len(), again.matchers.len());
        }
        let q = sel(r#"cpu{host="a\"b"}"#);
        assert_eq!(q.matchers[1].value, "a\"b");
        assert_eq!(q.measurement(), Some("cpu"));
    }

    #[test]
    fn errors_name_the_column() {
        for (s, column, words) in [
            ("", 1, "empty"),
            ("cpu{host}", 9, "expected =, !=, =~ or !~"),
            ("cpu{host=a}", 10, "expected a quoted value"),
            ("cpu{host=\"a}", 10, "not closed"),
            ("cpu{host=\"a\" dc=\"b\"}", 14, "expected ',' or '}'"),
            ("cpu{host=~\"(\"}", 11, "bad regular expression"),
            ("cpu}", 4, "unexpected '}'"),
            ("{=\"a\"}", 2, "expected a tag name"),
            ("cpu{a=\"b\"", 10, "expected ',' or '}'"),
        ] {
            match Selector::parse(s) {
                Ok(q) => panic!("{s:?} parsed as {q}"),
                Err(e) => {
                    assert_eq!(e.column, column, "{s:?}: {e}");
                    assert!(e.message.contains(words), "{s:?}: {e}");
                }
            }
        }
    }

    #[test]
    fn huge_regex_is_refused_not_built() {
        let s = format!("{{a=~\"{}\"}}", "(a{1000}){1000}");
        let e = Selector::parse(&s).err();
        assert!(e.is_some_and(|e| e.message.contains("bad regular expression")));
    }
}
