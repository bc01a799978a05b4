//! Shared helpers of the `sydra` command: error classes and output.

use std::borrow::Cow;
use std::fmt;
use std::io;

/// A usage error (exit status 2): the command line itself is wrong (a
/// missing or contradictory argument, a value that does not parse), as
/// opposed to a well-formed request that failed (exit status 1). Argument
/// values are validated by clap's value parsers where possible, which exit 2
/// on their own; this type covers the checks clap cannot express.
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Build a usage error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(msg.into()))
}

/// The exit status for an error: 2 when a [`Usage`] error is anywhere in the
/// chain (a context added on the way up must not turn it into a failure),
/// else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<Usage>()) {
        2
    } else {
        1
    }
}

/// The error and its causes as one sentence, without repeating a cause the
/// message already contains.
pub fn sentence(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

/// Whether the error is a closed stdout (e.g. piped into `head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// A path as git prints it (`quote_c_style`): unchanged unless it holds a
/// control character, `"` or `\`; then in double quotes with `\a \b \t
/// \n \v \f \r \" \\` and three octal digits for other control
/// bytes. So one entry is always one line, and a name that starts and ends
/// with `"` cannot pass for a quoted one. Non-ASCII UTF-8 is printed as is
/// (git's `core.quotePath=false`): tree entry names are UTF-8 by rule.
pub fn quote_path(path: &str) -> Cow<'_, str> {
    let needs = |c: char| c.is_ascii_control() || c == '"' || c == '\\';
    if !path.chars().any(needs) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    out.push('"');
    for c in path.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // ASCII control characters are single bytes below 0o200.
            c if c.is_ascii_control() => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// A byte count: digits with an optional binary suffix (`K`, `M`, `G`,
/// `T`, each optionally followed by `iB` or `B`): `512M`, `2GiB`, `4096`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (n, unit) = t.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a byte count (like 512M or 2G)"))?;
    let shift = match unit.trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{s:?}: unknown unit (K, M, G or T)")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_as_git_quotes_them() {
        for (raw, shown) in [
            ("plain/name.txt", "plain/name.txt"),
            ("caf\u{e9} \u{1f600}", "caf\u{e9} \u{1f600}"),
            ("a\nb", "\"a\\nb\""),
            ("tab\there", "\"tab\\there\""),
            ("q\"uote", "\"q\\\"uote\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("\u{1}\u{1b}\u{7f}", "\"\\001\\033\\177\""),
            ("bell\u{7}\u{8}\u{b}\u{c}\r", "\"bell\\a\\b\\v\\f\\r\""),
        ] {
            assert_eq!(quote_path(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn byte_counts_take_binary_suffixes_and_refuse_the_rest() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("16K"), Ok(16 << 10));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert!(parse_bytes("1.5G").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("G").unwrap_err().contains("not a byte count"));
        assert!(
            parse_bytes("99999999999T")
                .unwrap_err()
                .contains("too large")
        );
    }
}
