//! Durations as operators type them (`0`, `30s`, `15m`, `1h`, `7d`, `1h30m`)
//! and the retention amount [`Keep`] (a duration or a commit count).

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;
use std::time::Duration;

/// Why a string is not a duration or retention amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a {what}: {reason}")]
pub struct ParseDurationError {
    input: String,
    what: &'static str,
    reason: String,
}

impl ParseDurationError {
    fn new(input: &str, what: &'static str, reason: impl Into<String>) -> Self {
        ParseDurationError {
            input: input.to_owned(),
            what,
            reason: reason.into(),
        }
    }
}

const UNITS: [(char, u64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3600),
    ('m', 60),
    ('s', 1),
];

/// Parse `0` or one or more `<number><unit>` groups with units `s`, `m`,
/// `h`, `d`, `w` (`30s`, `15m`, `1h`, `7d`, `1h30m`). A bare number other
/// than `0` is refused: its unit would be a guess.
pub fn parse_duration(s: &str) -> Result<Duration, ParseDurationError> {
    const WHAT: &str = "duration";
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(ParseDurationError::new(s, WHAT, "it is empty"));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let Some(&(_, secs)) = UNITS.iter().find(|(u, _)| *u == ch) else {
            return Err(ParseDurationError::new(
                s,
                WHAT,
                format!("unknown unit {ch:?} (use s, m, h, d or w)"),
            ));
        };
        if digits.is_empty() {
            return Err(ParseDurationError::new(
                s,
                WHAT,
                format!("unit {ch:?} has no number before it"),
            ));
        }
        let n: u64 = digits
            .parse()
            .map_err(|_| ParseDurationError::new(s, WHAT, "number too large"))?;
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| ParseDurationError::new(s, WHAT, "too large"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(ParseDurationError::new(
            s,
            WHAT,
            "a number needs a unit (s, m, h, d or w); only 0 may stand alone",
        ));
    }
    Ok(Duration::from_secs(total))
}

/// The shortest exact form [`parse_duration`] reads back (`0`, `90s`, `1h`,
/// `7d`, `1h30m`); sub-second parts are dropped.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        if secs >= size {
            out.push_str(&(secs / size).to_string());
            out.push(unit);
            secs %= size;
        }
    }
    out
}

/// How much history a retention horizon keeps on each ref's first-parent
/// chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The tip and its first parents, this many commits in all.
    Commits(NonZeroU64),
    /// The tip and every first parent whose timestamp is within this long
    /// before the retention is set.
    Within(Duration),
}

impl FromStr for Keep {
    type Err = ParseDurationError;
    /// A bare positive integer is a commit count (`10`); anything else is a
    /// duration (`7d`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const WHAT: &str = "retention (a commit count like 10, or a duration like 7d)";
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let n: u64 = s
                .parse()
                .map_err(|_| ParseDurationError::new(s, WHAT, "number too large"))?;
            return NonZeroU64::new(n).map(Keep::Commits).ok_or_else(|| {
                ParseDurationError::new(s, WHAT, "keep at least 1 commit (the tip is always kept)")
            });
        }
        parse_duration(s)
            .map(Keep::Within)
            .map_err(|e| ParseDurationError::new(s, WHAT, e.reason))
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::Commits(n) => write!(f, "{n} commit(s)"),
            Keep::Within(d) => write!(f, "{}", format_duration(*d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_round_trip() {
        for (s, secs) in [
            ("0", 0),
            ("30s", 30),
            ("15m", 900),
            ("1h", 3600),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1h30m", 5400),
        ] {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(secs)), "{s}");
            assert_eq!(
                parse_duration(&format_duration(Duration::from_secs(secs))),
                Ok(Duration::from_secs(secs))
            );
        }
        for bad in ["", "30", "h", "1x", "-1h", "1.5h", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn keep_is_a_count_or_a_duration() {
        assert_eq!(
            "10".parse::<Keep>(),
            Ok(Keep::Commits(NonZeroU64::MIN.saturating_add(9)))
        );
        assert_eq!(
            "7d".parse::<Keep>(),
            Ok(Keep::Within(Duration::from_secs(604_800)))
        );
        assert_eq!("0s".parse::<Keep>(), Ok(Keep::Within(Duration::ZERO)));
        let e = "0".parse::<Keep>().unwrap_err().to_string();
        assert!(e.contains("at least 1"), "{e}");
        assert!("x".parse::<Keep>().is_err());
    }
}
