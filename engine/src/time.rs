//! Times as commands and revisions take them, and as the engine prints them.
//!
//! Two forms are accepted, and nothing else:
//!
//! - **RFC 3339** (`2026-11-21T10:30:00Z`, `2026-11-21T12:30:00.5+02:00`):
//!   parsed by the `time` crate's strict RFC 3339 parser, so the date must
//!   exist (no 31 February), the offset must be a real one (hours < 24,
//!   minutes < 60), and an offset (`Z` or `±HH:MM`) is required. Fractional
//!   seconds past nine digits are dropped.
//! - **Unix seconds** (`1700000000`, `-1`, `1700000000.25`), at most nine
//!   fractional digits.
//!
//! Either must fall within what an `i64` of nanoseconds since the epoch
//! holds (1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z);
//! later years are refused, not wrapped.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why a string is not a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a time ({reason}; use RFC 3339, e.g. 2026-11-21T10:30:00Z, or Unix seconds)"
)]
#[non_exhaustive]
pub struct ParseTimeError {
    /// The text as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ParseTimeError {
    fn new(input: &str, reason: impl Into<String>) -> ParseTimeError {
        ParseTimeError {
            input: input.to_owned(),
            reason: reason.into(),
        }
    }
}

const OUT_OF_RANGE: &str = "outside 1677-09-21 .. 2262-04-11, the range of i64 nanoseconds";

/// Nanoseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (always
/// nine fractional digits, always UTC), which [`parse_time`] reads back.
pub fn format_rfc3339(ns: i64) -> String {
    // Every i64 of nanoseconds is within the `time` crate's range (years
    // -9999..=9999), so the conversion cannot fail; the fallback keeps this
    // function total without a panic path.
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)) else {
        return format!("{ns}ns");
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Parse a time (the forms in the module docs) to nanoseconds since the
/// epoch.
pub fn parse_time(s: &str) -> Result<i64, ParseTimeError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ParseTimeError::new(s, "it is empty"));
    }
    if s.bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && !s[1..].contains('-')
    {
        return parse_unix(s);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| ParseTimeError::new(s, format!("not RFC 3339: {e}")))?;
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| ParseTimeError::new(s, OUT_OF_RANGE))
}

/// `[-]DIGITS[.DIGITS]` seconds since the epoch.
fn parse_unix(s: &str) -> Result<i64, ParseTimeError> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseTimeError::new(
            s,
            "Unix seconds need digits before any '.'",
        ));
    }
    let mut nanos: i64 = 0;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseTimeError::new(
                s,
                "a fraction of a second has 1 to 9 digits",
            ));
        }
        // At most nine digits, right-padded: always fits.
        for (i, b) in f.bytes().enumerate() {
            nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
        }
    }
    let v = int
        .parse::<i64>()
        .ok()
        .and_then(|secs| secs.checked_mul(1_000_000_000))
        .and_then(|v| v.checked_add(nanos))
        .ok_or_else(|| ParseTimeError::new(s, OUT_OF_RANGE))?;
    Ok(if neg { -v } else { v })
}

/// A query bound as `sydra query --from/--to` and the HTTP query endpoint
/// take it: integer nanoseconds with an `ns` suffix, else [`parse_time`]'s
/// forms (RFC 3339, Unix seconds).
pub fn parse_query_time(s: &str) -> Result<i64, String> {
    if let Some(n) = s.strip_suffix("ns") {
        return n
            .parse::<i64>()
            .map_err(|e| format!("{s:?} is not an integer of nanoseconds: {e}"));
    }
    parse_time(s).map_err(|e| e.to_string())
}

/// An aggregation step in nanoseconds: `ns`, `us` or `ms` suffixed
/// integers, else a duration as `sydra gc --grace` takes it (`10s`, `5m`,
/// `1h`, `1d`). Always positive.
pub fn parse_step(s: &str) -> Result<i64, String> {
    let units: [(&str, i64); 3] = [("ns", 1), ("us", 1_000), ("ms", 1_000_000)];
    let ns = match units.iter().find(|(u, _)| s.ends_with(u)) {
        Some((u, mul)) => s[..s.len() - u.len()]
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(*mul))
            .ok_or_else(|| format!("{s:?} is not a duration"))?,
        None => {
            let d = sydra_gc::parse_duration(s).map_err(|e| e.to_string())?;
            i64::try_from(d.as_nanos()).map_err(|_| format!("{s:?} is too long"))?
        }
    };
    if ns <= 0 {
        return Err(format!("the step {s:?} must be positive"));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            parse_time("2026-11-21T10:30:00Z"),
            parse_time("2026-11-21T12:30:00+02:00")
        );
        assert_eq!(
            parse_time("2026-11-21t10:30:00z"),
            parse_time("2026-11-21T10:30:00Z")
        );
        assert_eq!(
            parse_time("2026-11-21T10:30:00Z"),
            parse_time("2026-11-21T05:00:00-05:30")
        );
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_time("1700000000.5"), Ok(1_700_000_000_500_000_000));
        assert_eq!(parse_time("-1.25"), Ok(-1_250_000_000));
        assert_eq!(parse_time(" 0 "), Ok(0));
        assert_eq!(
            parse_time("2000-02-29T00:00:00Z"),
            Ok(951_782_400_000_000_000)
        );
        assert_eq!(
            parse_time("2026-11-21T10:30:00.123456789Z"),
            Ok(1_795_257_000_123_456_789)
        );
        // RFC 3339 allows any number of fractional digits; past nine they
        // are below a nanosecond and dropped.
        assert_eq!(
            parse_time("2026-11-21T10:30:00.1234567899Z"),
            Ok(1_795_257_000_123_456_789)
        );
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "",
            "abc",
            "2026-02-31T00:00:00Z",      // no 31 February
            "2026-02-29T00:00:00Z",      // not a leap year
            "1900-02-29T00:00:00Z",      // a century that is not a leap year
            "2026-04-31T00:00:00Z",      // April has 30 days
            "2026-13-01T00:00:00Z",      // month 13
            "2026-11-21T24:00:00Z",      // hour 24
            "2026-11-21T10:60:00Z",      // minute 60
            "2026-11-21T10:30:00+99:99", // no such offset
            "2026-11-21T10:30:00+24:00", // offsets stay under a day
            "2026-11-21T10:30:00+02:60",
            "2026-11-21T10:30:00+0200", // RFC 3339 offsets have a colon
            "2026-11-21",               // a date is not a time
            "2026-11-21T10:30:00",      // no offset: whose 10:30?
            "2026-11-21T10:30Z",        // seconds are required
            "2026-11-21T10:30:00.Z",
            "2026-11-21T10:30:00Z[Europe/Paris]",
            "1.",
            ".5",
            "-",
            "1-2",
            "1.1234567890",
            "99999999999999999999",
            "9223372037", // seconds past i64 ns
            "-9223372037",
            "2263-01-01T00:00:00Z", // past i64 ns
            "1677-01-01T00:00:00Z", // before it
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
        ] {
            let e = parse_time(bad);
            assert!(e.is_err(), "{bad:?} parsed as {e:?}");
        }
        let e = parse_time("2026-02-31T00:00:00Z").unwrap_err().to_string();
        assert!(e.contains("2026-02-31"), "{e}");
        let e = parse_time("2263-01-01T00:00:00Z").unwrap_err().to_string();
        assert!(e.contains("2262"), "{e}");
    }

    #[test]
    fn formatted_times_parse_back_exactly() {
        for ns in [
            i64::MIN,
            i64::MIN + 1,
            -1_000_000_001,
            -1,
            0,
            1,
            951_782_400_000_000_000,
            1_763_721_000_123_456_789,
            i64::MAX,
        ] {
            let s = format_rfc3339(ns);
            assert_eq!(parse_time(&s), Ok(ns), "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_instant_round_trips(ns in proptest::num::i64::ANY) {
            let s = format_rfc3339(ns);
            proptest::prop_assert_eq!(parse_time(&s), Ok(ns));
        }

        #[test]
        fn no_input_panics(s in "\\PC{0,40}") {
            let _ = parse_time(&s);
        }
    }
}
