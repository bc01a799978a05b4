//! Reflogs: one append-only text file per ref, `logs/<refname>`.
//!
//! ```text
//! <old> SP <new> SP <timestamp> SP <message> LF
//!
//! old, new    64 lowercase hex digits; 64 zeros for "did not exist"
//! timestamp   nanoseconds since the Unix epoch (UTC), decimal i64, canonical:
//!             optional '-', no leading zeros, no '+', "0" for zero
//! message     UTF-8 without LF or CR (the writer turns both into spaces); may be empty
//! ```
//!
//! Lines are oldest first. A line is part of the log once its LF is written:
//! a last line without LF is an append in progress or one torn by a crash,
//! and readers ignore it; the next append truncates it away before writing.
//! Any other line that does not parse is corruption, reported with the file
//! and line number.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use sydra_objects::ObjectId;

use crate::error::{Error, Result};
use crate::target::parse_lower_hex_id;

/// The id written for "no value" (ref did not exist / was deleted).
const ZERO_HEX: [u8; ObjectId::HEX_LEN] = [b'0'; ObjectId::HEX_LEN];

/// One reflog line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReflogEntry {
    /// The value before the change; `None` when the ref did not exist (or was
    /// an unborn symbolic ref).
    pub old: Option<ObjectId>,
    /// The value after the change; `None` for a delete.
    pub new: Option<ObjectId>,
    /// When, in nanoseconds since the Unix epoch (UTC).
    pub timestamp_ns: i64,
    /// Why. Written with every LF and CR replaced by a space.
    pub message: String,
}

/// Why a line is not a reflog entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseReflogError {
    reason: String,
}

impl ParseReflogError {
    fn new(reason: impl Into<String>) -> Self {
        ParseReflogError {
            reason: reason.into(),
        }
    }

    /// What is wrong with the line.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl ReflogEntry {
    /// Parse one line, with or without its terminating LF. Strict: the
    /// inverse of [`Display`](fmt::Display), so `parse(line).to_string() ==
    /// line` for every accepted line.
    pub fn parse(line: &str) -> Result<ReflogEntry, ParseReflogError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let mut fields = line.splitn(4, ' ');
        let old = parse_id(fields.next(), "old id")?;
        let new = parse_id(fields.next(), "new id")?;
        let ts = fields
            .next()
            .ok_or_else(|| ParseReflogError::new("missing timestamp"))?;
        let timestamp_ns = parse_timestamp(ts)?;
        let message = fields
            .next()
            .ok_or_else(|| ParseReflogError::new("missing space between timestamp and message"))?;
        if let Some(pos) = message.find(['\n', '\r']) {
            return Err(ParseReflogError::new(format!(
                "message has a line break at byte {pos}"
            )));
        }
        Ok(ReflogEntry {
            old,
            new,
            timestamp_ns,
            message: message.to_owned(),
        })
    }
}

fn parse_id(field: Option<&str>, what: &str) -> Result<Option<ObjectId>, ParseReflogError> {
    let field = field.ok_or_else(|| ParseReflogError::new(format!("missing {what}")))?;
    if field.as_bytes() == ZERO_HEX {
        return Ok(None);
    }
    parse_lower_hex_id(field.as_bytes())
        .map(Some)
        .ok_or_else(|| {
            ParseReflogError::new(format!("{what} {field:?} is not 64 lowercase hex digits"))
        })
}

fn parse_timestamp(s: &str) -> Result<i64, ParseReflogError> {
    let bad = || ParseReflogError::new(format!("timestamp {s:?} is not a canonical decimal i64"));
    let digits = s.strip_prefix('-').unwrap_or(s);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0";
    if !canonical {
        return Err(bad());
    }
    s.parse::<i64>().map_err(|_| bad())
}

impl fmt::Display for ReflogEntry {
    /// The line without its LF; LF and CR in the message become spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = |v: &Option<ObjectId>| v.map(|i| i.hex_bytes()).unwrap_or(ZERO_HEX);
        let old = id(&self.old);
        let new = id(&self.new);
        // Both are ASCII hex digits.
        let old = std::str::from_utf8(&old).map_err(|_| fmt::Error)?;
        let new = std::str::from_utf8(&new).map_err(|_| fmt::Error)?;
        write!(
            f,
            "{old} {new} {} {}",
            self.timestamp_ns,
            self.message.replace(['\n', '\r'], " ")
        )
    }
}

/// Read every complete entry of the reflog at `path`, oldest first. A
/// missing file is an empty log.
pub(crate) fn read(path: &Path) -> Result<Vec<ReflogEntry>> {
    let mut bytes = Vec::new();
    match sydra_objects::fs::open_regular(path) {
        Ok(mut f) => f
            .read_to_end(&mut bytes)
            .map_err(Error::io("read reflog", path))?,
        Err(e) if is_absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("open reflog", path)(e)),
    };
    // Everything after the last LF is an unfinished append (see module doc).
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => return Ok(Vec::new()),
    };
    complete
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            let corrupt = |source| Error::CorruptReflog {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            };
            let text = std::str::from_utf8(line).map_err(|e| {
                corrupt(ParseReflogError::new(format!(
                    "not UTF-8 after byte {}",
                    e.valid_up_to()
                )))
            })?;
            ReflogEntry::parse(text).map_err(corrupt)
        })
        .collect()
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Append `entry` to the reflog at `path` and fsync it. The parent
/// directory must exist; when `path` is created here, its directory is
/// fsynced too.
///
/// Callers serialize appends to one file (a ref's line is appended while
/// its lock file is held; see `transaction`), so the torn-tail repair
/// below never cuts a concurrent append short.
pub(crate) fn append(path: &Path, entry: &ReflogEntry) -> Result<()> {
    let existed = match fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io("stat reflog", path)(e)),
    };
    let mut file = sydra_objects::fs::open_regular_with(
        path,
        OpenOptions::new().read(true).append(true).create(true),
    )
    .map_err(Error::io("open reflog", path))?;
    drop_torn_tail(&file, path)?;
    let mut line = entry.to_string();
    line.push('\n');
    // One write call: with O_APPEND the line lands whole at the end or, on a
    // crash, as a prefix without LF that readers ignore.
    sydra_objects::fault::point("refs.reflog.write")
        .and_then(|()| file.write_all(line.as_bytes()))
        .map_err(Error::io("append to reflog", path))?;
    sydra_objects::fault::point("refs.reflog.sync")
        .and_then(|()| file.sync_data())
        .map_err(Error::sync(path))?;
    if !existed && let Some(dir) = path.parent() {
        crate::fs::sync_dir(dir)?;
    }
    Ok(())
}

/// Truncate a last line that lacks its LF (left by a crash mid-append), so
/// the next line does not get glued onto it.
fn drop_torn_tail(file: &File, path: &Path) -> Result<()> {
    let len = file
        .metadata()
        .map_err(Error::io("stat reflog", path))?
        .len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)
        .map_err(Error::io("read reflog", path))?;
    if last[0] == b'\n' {
        return Ok(());
    }
    // Scan backwards for the last LF, a block at a time.
    const BLOCK: u64 = 4096;
    let mut buf = vec![0u8; BLOCK as usize];
    let mut end = len;
    let keep = loop {
        let start = end.saturating_sub(BLOCK);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)
            .map_err(Error::io("read reflog", path))?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            break start + i as u64 + 1;
        }
        if start == 0 {
            break 0;
        }
        end = start;
    };
    file.set_len(keep)
        .map_err(Error::io("truncate torn tail of reflog", path))
}

#[cfg(test)]
mod tests {
    use sydra_objects::Kind;

    use super::*;

    fn id(s: &[u8]) -> ObjectId {
        ObjectId::compute(Kind::Commit, s)
    }

    #[test]
    fn formats_and_parses() {
        let e = ReflogEntry {
            old: None,
            new: Some(id(b"a")),
            timestamp_ns: 1_700_000_000_123_456_789,
            message: "init".into(),
        };
        let line = e.to_string();
        assert_eq!(
            line,
            format!("{} {} 1700000000123456789 init", "0".repeat(64), id(b"a"))
        );
        assert_eq!(ReflogEntry::parse(&line), Ok(e.clone()));
        assert_eq!(ReflogEntry::parse(&format!("{line}\n")), Ok(e));
    }

    #[test]
    fn message_line_breaks_become_spaces_and_empty_message_works() {
        let e = ReflogEntry {
            old: Some(id(b"a")),
            new: None,
            timestamp_ns: -5,
            message: "a\nb\r\nc".into(),
        };
        let parsed = ReflogEntry::parse(&e.to_string()).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(parsed.message, "a b  c");
        let empty = ReflogEntry {
            old: None,
            new: None,
            timestamp_ns: 0,
            message: String::new(),
        };
        assert!(empty.to_string().ends_with(" 0 "));
        assert_eq!(ReflogEntry::parse(&empty.to_string()), Ok(empty));
    }

    #[test]
    fn rejects_garbage() {
        let z = "0".repeat(64);
        let h = id(b"a").to_hex();
        for bad in [
            String::new(),
            "garbage".into(),
            format!("{z} {h}"),
            format!("{z} {h} 12"),
            format!("{z} {h} 012 m"),
            format!("{z} {h} +12 m"),
            format!("{z} {h} -0 m"),
            format!("{z} {h} - m"),
            format!("{z} {h} 1.5 m"),
            format!("{z} {h} 99999999999999999999 m"),
            format!("{z} {} 1 m", h.to_uppercase()),
            format!("{z}  {h} 1 m"),
            format!("{z} {h} 1 a\rb"),
            format!("{z} {h} 1 a\nb"),
            format!("{z} {h}\t1 m"),
        ] {
            assert!(ReflogEntry::parse(&bad).is_err(), "accepted {bad:?}");
        }
        assert!(ReflogEntry::parse(&format!("{z} {h} {} m", i64::MIN)).is_ok());
        assert!(ReflogEntry::parse(&format!("{z} {h} {} m", i64::MAX)).is_ok());
    }

    #[test]
    fn append_read_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("log");
        assert_eq!(read(&path).ok(), Some(Vec::new()));
        let a = ReflogEntry {
            old: None,
            new: Some(id(b"a")),
            timestamp_ns: 1,
            message: "one".into(),
        };
        let b = ReflogEntry {
            old: Some(id(b"a")),
            new: Some(id(b"b")),
            timestamp_ns: 2,
            message: "two".into(),
        };
        append(&path, &a).unwrap_or_else(|e| panic!("{e}"));
        // A crash mid-append leaves a prefix without LF: invisible to readers.
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        f.write_all(&b.to_string().as_bytes()[..70])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&path).ok(), Some(vec![a.clone()]));
        append(&path, &b).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&path).ok(), Some(vec![a, b]));
    }

    #[test]
    fn corrupt_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("log");
        let a = ReflogEntry {
            old: None,
            new: Some(id(b"a")),
            timestamp_ns: 1,
            message: "one".into(),
        };
        fs::write(&path, format!("{a}\nnot a line\n{a}\n")).unwrap_or_else(|e| panic!("{e}"));
        match read(&path) {
            Err(Error::CorruptReflog {
                path: p, line: 2, ..
            }) => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
        fs::write(&path, b"\xff\n").unwrap_or_else(|e| panic!("{e}"));
        let msg = read(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("line 1") && msg.contains("not UTF-8"), "{msg}");
    }

    #[test]
    fn torn_tail_without_any_newline_is_dropped() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("log");
        fs::write(&path, vec![b'x'; 10_000]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&path).ok(), Some(Vec::new()));
        let a = ReflogEntry {
            old: None,
            new: None,
            timestamp_ns: 1,
            message: "m".into(),
        };
        append(&path, &a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&path).ok(), Some(vec![a]));
    }
}
