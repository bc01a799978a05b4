//! InfluxDB line protocol v1: the parser behind `sydra write` and the
//! writer behind `sydra export`.
//!
//! ```text
//! measurement[,tag=value...] field=value[,field=value...] [timestamp]
//! ```
//!
//! Rules, as InfluxDB 1.x reads them (where InfluxDB is lenient or silent,
//! the choice made here is stated):
//!
//! - Lines end at `\n`; one `\r` before it is dropped. Blank lines and lines
//!   whose first non-blank byte is `#` are skipped. Leading spaces and tabs
//!   are skipped. Input must be UTF-8; a line that is not is an error.
//! - Measurement, tag keys, tag values and field keys end at an unescaped
//!   `,`, ` ` (and `=` where a key ends). `\,` `\ ` `\=` and `\\` stand
//!   for the second byte; a backslash before any other byte is itself. A
//!   tag value may not hold an unescaped `=`.
//! - Field values: a float (`1`, `-1.5`, `1e3`, `.5`; finite only: no
//!   `NaN`/`inf`), an integer `12i`, a boolean (`t T true True TRUE`,
//!   `f F false False FALSE`) or a string `"…"` in which `\"` and `\\` are
//!   escapes. Unsigned `12u` (InfluxDB 2) is refused with a message saying
//!   so, not guessed at.
//! - Where this differs from InfluxDB 1.x, on purpose: 1.x unescapes only
//!   `\,` and `\ ` in a measurement and never `\\` in keys; here `\=` and
//!   `\\` are escapes everywhere (as InfluxDB 2's documentation describes),
//!   so every byte string round-trips through the canonical writer. A key
//!   exported as `a\\b` reads back as `a\b` here, as `a\\b` in 1.x.
//! - Keys may not repeat within a line (a tag or a field twice is an error,
//!   not a silent "last one wins").
//! - The timestamp is an optional signed integer in the precision unit
//!   (default ns); converting it to ns must not overflow an i64. A line
//!   without one takes the time the caller supplies (the write's "now").
//!
//! Every error names the line (1-based), the byte column (1-based) and what
//! is wrong. Memory: a line borrows from the input; only escaped parts are
//! copied.
//!
//! The writer emits the canonical form: one field per line, tags sorted,
//! every byte that needs it escaped, floats in their shortest form that
//! reads back to the same bits, integers with `i`, booleans as
//! `true`/`false`, and the timestamp in ns. Parsing the canonical line gives
//! back the same key, value and time.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use super::key::{KeyError, SeriesKey, Value};

/// The unit of the timestamps in the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Nanoseconds (`ns`, also `n`): the default.
    #[default]
    Nanoseconds,
    /// Microseconds (`us`, also `u`).
    Microseconds,
    /// Milliseconds (`ms`).
    Milliseconds,
    /// Seconds (`s`).
    Seconds,
    /// Minutes (`m`, as InfluxDB 1.x's `/write` takes it).
    Minutes,
    /// Hours (`h`).
    Hours,
}

impl Precision {
    /// Nanoseconds per unit.
    pub fn factor(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
            Precision::Minutes => 60_000_000_000,
            Precision::Hours => 3_600_000_000_000,
        }
    }

    /// The name `--precision` takes.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Nanoseconds => "ns",
            Precision::Microseconds => "us",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
            Precision::Minutes => "m",
            Precision::Hours => "h",
        }
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Precision, String> {
        match s {
            "ns" | "n" => Ok(Precision::Nanoseconds),
            "us" | "u" | "µ" => Ok(Precision::Microseconds),
            "ms" => Ok(Precision::Milliseconds),
            "s" => Ok(Precision::Seconds),
            "m" => Ok(Precision::Minutes),
            "h" => Ok(Precision::Hours),
            _ => Err(format!(
                "unknown precision {s:?} (expected ns, us, ms, s, m or h)"
            )),
        }
    }
}

/// A line that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based line number in the input.
    pub line: usize,
    /// 1-based byte column in that line.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// One parsed line: a measurement, its tags and at least one field.
#[derive(Clone, Debug, PartialEq)]
pub struct Line<'a> {
    /// 1-based line number in the input.
    pub line: usize,
    /// The measurement, unescaped.
    pub measurement: Cow<'a, str>,
    /// The tags as written (unescaped; keys unique, not yet sorted).
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The measurement and tags exactly as the input spells them (escaped,
    /// tags in input order): equal spellings are the same series, so a
    /// writer can cache series handles by it without building keys.
    pub raw_series: &'a str,
    /// The fields as written (keys unique).
    pub fields: Vec<(Cow<'a, str>, Value)>,
    /// The timestamp in ns, if the line has one.
    pub timestamp: Option<i64>,
}

/// One point of a line: a series, a time and a value.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// The series.
    pub key: SeriesKey,
    /// ns since the Unix epoch.
    pub timestamp: i64,
    /// The value.
    pub value: Value,
}

impl Line<'_> {
    /// The line's points, one per field, stamped `now` when the line has no
    /// timestamp. Fails (naming the line) when a key is not one the store
    /// can hold (see [`SeriesKey`]).
    pub fn points(&self, now: i64) -> Result<Vec<Point>, ParseError> {
        let ts = self.timestamp.unwrap_or(now);
        let tags: Vec<(String, String)> = self
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.fields
            .iter()
            .map(|(field, value)| {
                let key = SeriesKey::new(self.measurement.as_ref(), tags.clone(), field.as_ref())
                    .map_err(|e: KeyError| ParseError {
                    line: self.line,
                    column: 1,
                    message: e.to_string(),
                })?;
                Ok(Point {
                    key,
                    timestamp: ts,
                    value: value.clone(),
                })
            })
            .collect()
    }
}

/// The lines of an input, in order: an iterator of parsed lines or errors.
/// It goes on after an error (the next call reads the next line), so a
/// caller may stop at the first error or collect them all.
#[derive(Debug)]
pub struct Lines<'a> {
    input: &'a [u8],
    /// The whole input as text when it is valid UTF-8 (checked once, so
    /// lines are sliced from it rather than each validated again).
    text: Option<&'a str>,
    pos: usize,
    line: usize,
    precision: Precision,
}

/// Parse `input` as line protocol with timestamps in `precision`.
pub fn parse(input: &[u8], precision: Precision) -> Lines<'_> {
    Lines {
        input,
        text: std::str::from_utf8(input).ok(),
        pos: 0,
        line: 0,
        precision,
    }
}

impl<'a> Lines<'a> {
    /// The next line that is not blank or a comment, checked as UTF-8 but
    /// not parsed: a writer that caches series handles by the series'
    /// spelling ([`RawLine::raw_series`]) parses only the fields of a line
    /// whose series it has seen ([`RawLine::fields_into`]).
    pub fn next_raw(&mut self) -> Option<Result<RawLine<'a>, ParseError>> {
        while self.pos < self.input.len() {
            let rest = &self.input[self.pos..];
            let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let mut raw = &rest[..len];
            self.pos += len + 1;
            self.line += 1;
            if let [head @ .., b'\r'] = raw {
                raw = head;
            }
            let start = self.pos - len - 1;
            let whole = self.text.and_then(|t| t.get(start..start + raw.len()));
            let text = match whole.map_or_else(|| std::str::from_utf8(raw), Ok) {
                Ok(t) => t,
                Err(e) => {
                    return Some(Err(ParseError {
                        line: self.line,
                        column: e.valid_up_to() + 1,
                        message: "invalid UTF-8".into(),
                    }));
                }
            };
            let body = text.trim_start_matches([' ', '\t']);
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            return Some(Ok(RawLine {
                line: self.line,
                text,
            }));
        }
        None
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Line<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let precision = self.precision;
        self.next_raw().map(|r| r.and_then(|l| l.parse(precision)))
    }
}

/// One line of input, not yet parsed (no line break, not blank, not a
/// comment).
#[derive(Clone, Copy, Debug)]
pub struct RawLine<'a> {
    /// 1-based line number in the input.
    pub line: usize,
    /// The line's text.
    pub text: &'a str,
}

impl<'a> RawLine<'a> {
    /// The measurement and tags as spelled, up to the first unescaped
    /// space, or `None` when the line has no such space (it then has no
    /// fields and [`RawLine::parse`] says why). Whether the series part of
    /// a line is valid depends on these bytes alone, and in a valid line
    /// they are exactly [`Line::raw_series`]: so a spelling that parsed
    /// once without error names the same series whenever it comes again.
    pub fn raw_series(&self) -> Option<&'a str> {
        let start = self.series_start();
        let b = self.text.as_bytes();
        let mut from = start;
        while let Some(i) = memchr::memchr(b' ', &b[from..]) {
            let at = from + i;
            // Backslashes pair up from the left, so a space is escaped
            // exactly when an odd run of them stands before it.
            let run = b[start..at]
                .iter()
                .rev()
                .take_while(|&&c| c == b'\\')
                .count();
            if run % 2 == 0 {
                return Some(&self.text[start..at]);
            }
            from = at + 1;
        }
        None
    }

    fn series_start(&self) -> usize {
        self.text.len() - self.text.trim_start_matches([' ', '\t']).len()
    }

    /// Parse the whole line.
    pub fn parse(&self, precision: Precision) -> Result<Line<'a>, ParseError> {
        parse_line(self.text, self.line, precision)
    }

    /// Parse only the fields (appended to `fields`) and the timestamp, for
    /// a line whose [`RawLine::raw_series`] is `Some` and was seen before
    /// in a line that parsed whole: the errors are those [`RawLine::parse`]
    /// would give, since its series part then parses without one.
    pub fn fields_into(
        &self,
        precision: Precision,
        fields: &mut Vec<(Cow<'a, str>, Value)>,
    ) -> Result<Option<i64>, ParseError> {
        let pos = self
            .raw_series()
            .map_or(self.text.len(), |s| self.series_start() + s.len());
        let mut p = LineParser {
            text: self.text,
            line: self.line,
            pos,
        };
        p.fields_and_time(precision, fields)
    }
}

/// Parse one line (no line break in it) with line number `line`.
pub fn parse_line(text: &str, line: usize, precision: Precision) -> Result<Line<'_>, ParseError> {
    let mut p = LineParser { text, line, pos: 0 };
    p.parse(precision)
}

struct LineParser<'a> {
    text: &'a str,
    line: usize,
    pos: usize,
}

/// `table[b]`: whether `b` is one of `bytes` or a backslash.
const fn special_table(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    t[b'\\' as usize] = true;
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

/// What ends or escapes a measurement.
static SPECIAL_IN_MEASUREMENT: [bool; 256] = special_table(b", ");
/// What ends or escapes a tag key or value or a field key.
static SPECIAL_IN_KEY: [bool; 256] = special_table(b",= ");

/// Bytes a backslash escapes in measurements, tag keys and values and
/// field keys.
fn escapable(b: u8) -> bool {
    matches!(b, b',' | b' ' | b'=' | b'\\')
}

impl<'a> LineParser<'a> {
    fn err<T>(&self, column_pos: usize, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            line: self.line,
            column: column_pos + 1,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Scan an identifier from `pos` to the first unescaped byte in `stops`
    /// (or the end), returning it unescaped.
    fn ident(&mut self, stops: &[u8]) -> Cow<'a, str> {
        let b = self.text.as_bytes();
        let start = self.pos;
        let mut escaped = false;
        // Bytes that end or escape an identifier: everything else is
        // skipped by one table lookup per byte.
        let special = if stops.contains(&b'=') {
            &SPECIAL_IN_KEY
        } else {
            &SPECIAL_IN_MEASUREMENT
        };
        while let Some(&c) = b.get(self.pos) {
            if !special[usize::from(c)] {
                self.pos += 1;
                continue;
            }
            if c == b'\\' && b.get(self.pos + 1).is_some_and(|&n| escapable(n)) {
                escaped = true;
                self.pos += 2;
                continue;
            }
            if stops.contains(&c) {
                break;
            }
            self.pos += 1;
        }
        let raw = &self.text[start..self.pos];
        if !escaped {
            return Cow::Borrowed(raw);
        }
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\'
                && let Some(&n) = chars.peek()
                && n.is_ascii()
                && escapable(n as u8)
            {
                out.push(n);
                chars.next();
                continue;
            }
            out.push(c);
        }
        Cow::Owned(out)
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn parse(&mut self, precision: Precision) -> Result<Line<'a>, ParseError> {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        let at = self.pos;
        let series_start = at;
        let measurement = self.ident(b", ");
        if measurement.is_empty() {
            return self.err(at, "missing measurement");
        }
        let mut tags: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        while self.peek() == Some(b',') {
            self.pos += 1;
            let at = self.pos;
            let key = self.ident(b",= ");
            if key.is_empty() {
                return self.err(at, "empty tag key");
            }
            if self.peek() != Some(b'=') {
                return self.err(self.pos, format!("tag key {key:?} has no '=' and value"));
            }
            self.pos += 1;
            let at = self.pos;
            let value = self.ident(b",= ");
            if self.peek() == Some(b'=') {
                return self.err(
                    self.pos,
                    format!("unescaped '=' in the value of tag {key:?} (write it as \\=)"),
                );
            }
            if value.is_empty() {
                return self.err(at, format!("tag {key:?} has an empty value"));
            }
            if tags.iter().any(|(k, _)| *k == key) {
                return self.err(at, format!("tag key {key:?} appears twice"));
            }
            tags.push((key, value));
        }
        let raw_series = &self.text[series_start..self.pos];
        let mut fields = Vec::new();
        let timestamp = self.fields_and_time(precision, &mut fields)?;
        Ok(Line {
            line: self.line,
            measurement,
            tags,
            raw_series,
            fields,
            timestamp,
        })
    }

    /// From the end of the series part: the space, the fields (appended to
    /// `fields`) and the optional timestamp.
    fn fields_and_time(
        &mut self,
        precision: Precision,
        fields: &mut Vec<(Cow<'a, str>, Value)>,
    ) -> Result<Option<i64>, ParseError> {
        if self.peek() != Some(b' ') {
            return self.err(
                self.pos,
                "missing fields (expected a space, then field=value)",
            );
        }
        self.skip_spaces();
        if self.peek().is_none() {
            return self.err(self.pos, "missing fields (expected field=value)");
        }
        let first = fields.len();
        loop {
            let at = self.pos;
            let key = self.ident(b",= ");
            if key.is_empty() {
                return self.err(at, "empty field key");
            }
            if self.peek() != Some(b'=') {
                return self.err(self.pos, format!("field {key:?} has no '=' and value"));
            }
            self.pos += 1;
            let value = self.field_value(&key)?;
            if fields[first..].iter().any(|(k, _)| *k == key) {
                return self.err(at, format!("field {key:?} appears twice"));
            }
            fields.push((key, value));
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => break,
            }
        }
        match self.peek() {
            None => Ok(None),
            Some(b' ') => {
                self.skip_spaces();
                self.timestamp(precision)
            }
            Some(_) => self.err(self.pos, "unexpected text after the fields"),
        }
    }

    fn field_value(&mut self, key: &str) -> Result<Value, ParseError> {
        let b = self.text.as_bytes();
        let at = self.pos;
        if self.peek() == Some(b'"') {
            self.pos += 1;
            let start = self.pos;
            let mut escaped = false;
            loop {
                match b.get(self.pos) {
                    None => {
                        return self.err(at, format!("unterminated string value of field {key:?}"));
                    }
                    Some(b'\\') if matches!(b.get(self.pos + 1), Some(b'"' | b'\\')) => {
                        escaped = true;
                        self.pos += 2;
                    }
                    Some(b'"') => break,
                    Some(_) => self.pos += 1,
                }
            }
            let raw = &self.text[start..self.pos];
            self.pos += 1;
            let s = if escaped {
                let mut out = String::with_capacity(raw.len());
                let mut chars = raw.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '\\' && matches!(chars.peek(), Some('"' | '\\')) {
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                        continue;
                    }
                    out.push(c);
                }
                out
            } else {
                raw.to_owned()
            };
            return Ok(Value::Str(s));
        }
        while let Some(&c) = b.get(self.pos) {
            if c == b',' || c == b' ' {
                break;
            }
            self.pos += 1;
        }
        let tok = &self.text[at..self.pos];
        if tok.is_empty() {
            return self.err(at, format!("field {key:?} has no value"));
        }
        match tok {
            "t" | "T" | "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
            "f" | "F" | "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
            _ => {}
        }
        if let Some(digits) = tok.strip_suffix('i') {
            return match digits.parse::<i64>() {
                Ok(v) if is_integer_literal(digits) => Ok(Value::I64(v)),
                _ => self.err(
                    at,
                    format!(
                        "integer value {tok:?} of field {key:?} is not a 64-bit signed integer"
                    ),
                ),
            };
        }
        if tok.ends_with('u') {
            return self.err(
                at,
                format!(
                    "unsigned value {tok:?} of field {key:?}: unsigned integers are not supported \
                     (write it as an integer with 'i' or as a float)"
                ),
            );
        }
        if is_float_literal(tok)
            && let Ok(v) = tok.parse::<f64>()
        {
            if v.is_finite() {
                return Ok(Value::F64(v));
            }
            return self.err(
                at,
                format!("float value {tok:?} of field {key:?} is out of range"),
            );
        }
        self.err(
            at,
            format!(
                "invalid value {tok:?} of field {key:?} (expected a number, an integer like 3i, \
                 a boolean or a quoted string)"
            ),
        )
    }

    fn timestamp(&mut self, precision: Precision) -> Result<Option<i64>, ParseError> {
        let at = self.pos;
        let b = self.text.as_bytes();
        while b.get(self.pos).is_some_and(|&c| c != b' ') {
            self.pos += 1;
        }
        let tok = &self.text[at..self.pos];
        self.skip_spaces();
        if self.peek().is_some() {
            return self.err(self.pos, "unexpected text after the timestamp");
        }
        if tok.is_empty() {
            return Ok(None);
        }
        let v = match tok.parse::<i64>() {
            Ok(v) if is_integer_literal(tok) => v,
            _ => {
                return self.err(
                    at,
                    format!("invalid timestamp {tok:?} (expected an integer)"),
                );
            }
        };
        match v.checked_mul(precision.factor()) {
            Some(ns) => Ok(Some(ns)),
            None => self.err(
                at,
                format!(
                    "timestamp {tok} at precision {} is out of range for nanoseconds in an i64",
                    precision.name()
                ),
            ),
        }
    }
}

/// `-?[0-9]+`: what Rust's integer parse accepts less a leading `+`.
fn is_integer_literal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal float literal: digits, one `.`, an exponent; no `inf`/`nan`
/// spellings (Rust's parse accepts those, line protocol does not).
fn is_float_literal(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
}

/// A value line protocol cannot carry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unrepresentable(pub String);

/// Append `s` escaped for line protocol: `,` ` ` `\` always, and `=` unless
/// it is a measurement (where `=` needs no escape).
pub fn escape_into(out: &mut String, s: &str, measurement: bool) {
    for c in s.chars() {
        if matches!(c, ',' | ' ' | '\\') || (c == '=' && !measurement) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Append the series part of a canonical line: `measurement,k=v,...`.
pub fn write_series(out: &mut String, key: &SeriesKey) {
    escape_into(out, key.measurement(), true);
    for (k, v) in key.tags() {
        out.push(',');
        escape_into(out, k, false);
        out.push('=');
        escape_into(out, v, false);
    }
}

/// Append a value in canonical form.
pub fn write_value(out: &mut String, value: &Value) -> Result<(), Unrepresentable> {
    use fmt::Write as _;
    match value {
        Value::F64(v) if !v.is_finite() => {
            return Err(Unrepresentable(format!(
                "the float {v} has no line-protocol form"
            )));
        }
        Value::F64(v) => {
            let a = v.abs();
            // Shortest digits that read back to the same bits; exponent form
            // outside [1e-5, 1e16) so 1e300 is not 301 characters.
            let _ = if a != 0.0 && !(1e-5..1e16).contains(&a) {
                write!(out, "{v:e}")
            } else {
                write!(out, "{v}")
            };
        }
        Value::I64(v) => {
            let _ = write!(out, "{v}i");
        }
        Value::Bool(v) => out.push_str(if *v { "true" } else { "false" }),
        Value::Str(s) => {
            if s.contains(['\n', '\r']) {
                return Err(Unrepresentable(
                    "a string value with a line break has no line-protocol form here".into(),
                ));
            }
            out.push('"');
            for c in s.chars() {
                if matches!(c, '"' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
    Ok(())
}

/// Append one canonical line (with its `\n`): `series field=value ts`.
pub fn write_point(
    out: &mut String,
    key: &SeriesKey,
    timestamp: i64,
    value: &Value,
) -> Result<(), Unrepresentable> {
    use fmt::Write as _;
    let mark = out.len();
    write_series(out, key);
    out.push(' ');
    escape_into(out, key.field(), false);
    out.push('=');
    if let Err(e) = write_value(out, value) {
        out.truncate(mark);
        return Err(e);
    }
    let _ = writeln!(out, " {timestamp}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Result<Line<'_>, ParseError> {
        match parse(s.as_bytes(), Precision::Nanoseconds).next() {
            Some(r) => r,
            None => panic!("no line in {s:?}"),
        }
    }

    fn ok(s: &str) -> Line<'_> {
        one(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> String {
        match one(s) {
            Ok(l) => panic!("{s:?} parsed as {l:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_full_line_with_escapes_and_every_type() {
        let l = ok(
            r#"my\ cpu,host=a\,b,dc\=x=eu\ 1 u=1.5,n=-3i,ok=t,s="say \"hi\" \\o/" 1700000000000000000"#,
        );
        assert_eq!(l.measurement, "my cpu");
        assert_eq!(
            l.tags,
            vec![
                ("host".into(), "a,b".into()),
                ("dc=x".into(), "eu 1".into())
            ]
        );
        assert_eq!(
            l.fields,
            vec![
                ("u".into(), Value::F64(1.5)),
                ("n".into(), Value::I64(-3)),
                ("ok".into(), Value::Bool(true)),
                ("s".into(), Value::Str(r#"say "hi" \o/"#.into())),
            ]
        );
        assert_eq!(l.timestamp, Some(1_700_000_000_000_000_000));
    }

    #[test]
    fn backslashes_before_other_bytes_are_literal_and_doubled_ones_escape() {
        let l = ok(r"m\x,t=a\\b f\y=1");
        assert_eq!(l.measurement, r"m\x");
        assert_eq!(l.tags[0].1, r"a\b");
        assert_eq!(l.fields[0].0, r"f\y");
    }

    #[test]
    fn comments_blank_lines_crlf_and_line_numbers() {
        let input = b"# header\n\n  \r\nm f=1 5\r\n\t# indented comment\nm f=2\n";
        let lines: Vec<_> = parse(input, Precision::Seconds).collect();
        assert_eq!(lines.len(), 2);
        let a = lines[0].clone().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((a.line, a.timestamp), (4, Some(5_000_000_000)));
        let b = lines[1].clone().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((b.line, b.timestamp), (6, None));
    }

    #[test]
    fn errors_name_line_column_and_problem() {
        let input = b"m f=1\nm f=abc\n";
        let errs: Vec<_> = parse(input, Precision::Nanoseconds)
            .filter_map(|r| r.err())
            .collect();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 2);
        assert_eq!(errs[0].column, 5);
        assert!(errs[0].message.contains("\"abc\""), "{}", errs[0]);

        assert!(err("m").contains("missing fields"));
        assert!(err("m ").contains("missing fields"));
        assert!(err(",t=1 f=1").contains("missing measurement"));
        assert!(err("m,t f=1").contains("has no '='"));
        assert!(err("m,t= f=1").contains("empty value"));
        assert!(err("m,t=a=b f=1").contains("unescaped '='"));
        assert!(err("m,t=1,t=2 f=1").contains("appears twice"));
        assert!(err("m f=1,f=2").contains("appears twice"));
        assert!(err("m f=").contains("has no value"));
        assert!(err("m f=\"open").contains("unterminated"));
        assert!(err("m f=1u").contains("unsigned"));
        assert!(err("m f=NaN").contains("invalid value"));
        assert!(err("m f=inf").contains("invalid value"));
        assert!(err("m f=1e999").contains("out of range"));
        assert!(err("m f=99999999999999999999i").contains("64-bit"));
        assert!(err("m f=1 12x").contains("invalid timestamp"));
        assert!(err("m f=1 12 13").contains("after the timestamp"));
        assert!(err("m f=1\"x\"").contains("invalid value"));
        let e = parse(b"m f=1 9223372036854775807", Precision::Seconds).next();
        assert!(matches!(e, Some(Err(e)) if e.message.contains("out of range")));
        let e = parse(b"m f=1\n\xff f=1\n", Precision::Nanoseconds).nth(1);
        assert!(matches!(e, Some(Err(e)) if e.line == 2 && e.message.contains("UTF-8")));
    }

    #[test]
    fn canonical_lines_read_back_to_the_same_points() {
        let key = SeriesKey::new(
            "m ,=\\x",
            vec![("k ,=\\".to_string(), "v =,\\\"".to_string())],
            "f =,\\",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for value in [
            Value::F64(-0.0),
            Value::F64(1e300),
            Value::F64(1.2345678901234567e-7),
            Value::F64(2.0),
            Value::I64(i64::MIN),
            Value::Bool(false),
            Value::Str("a \"q\" \\ b,=".into()),
        ] {
            let mut s = String::new();
            write_point(&mut s, &key, -42, &value).unwrap_or_else(|e| panic!("{e}"));
            let line = ok(s.trim_end_matches('\n'));
            let points = line.points(0).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(points.len(), 1, "{s}");
            assert_eq!(points[0].key, key, "{s}");
            assert_eq!(points[0].timestamp, -42, "{s}");
            assert!(
                points[0].value.same_bits(&value),
                "{s}: {:?}",
                points[0].value
            );
        }
        let mut s = String::new();
        assert!(write_point(&mut s, &key, 0, &Value::F64(f64::NAN)).is_err());
        assert!(s.is_empty());
    }
}
