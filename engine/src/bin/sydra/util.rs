//! Shared helpers of the `sydra` command: error classes and output.

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
