//! Engine commands: wal append, checkpoint, snapshot, branch, log, replay.

use std::io::{self, BufRead, BufWriter, IsTerminal, Write};
use std::path::Path;

use base64::Engine as _;
use sydra_engine::objects::ObjectId;
use sydra_engine::time::format_rfc3339;
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options, Replay, Repository, Tail, main_ref};

use crate::util::usage;

fn open_engine(dir: &Path, sync: SyncMode) -> anyhow::Result<Engine> {
    let opts = Options {
        wal: WalOptions {
            sync,
            ..WalOptions::default()
        },
        ..Options::default()
    };
    let engine = Engine::open(dir, opts)?;
    let r = engine.open_report();
    for (path, len, dropped, why) in &r.wal.truncated {
        eprintln!(
            "sydra: repaired WAL: truncated {} to {len} bytes ({dropped} bytes of torn tail dropped: {why})",
            path.display()
        );
    }
    for path in &r.wal.removed {
        eprintln!(
            "sydra: repaired WAL: removed incomplete segment {}",
            path.display()
        );
    }
    if !r.temp_files_removed.is_empty() || !r.stale_locks_removed.is_empty() {
        eprintln!(
            "sydra: removed {} temp file(s) and {} stale ref lock(s) left by an earlier crash",
            r.temp_files_removed.len(),
            r.stale_locks_removed.len()
        );
    }
    if r.ref_writers_active {
        eprintln!(
            "sydra: another process is updating refs; its ref locks were left in place (stale ones are removed at a later open)"
        );
    }
    Ok(engine)
}

#[derive(Debug, clap::Subcommand)]
pub enum WalCommand {
    /// Append one record per line of standard input (newline stripped);
    /// print each seq.
    Append {
        /// Print each seq only once its record is durable (fdatasync, group
        /// committed). Without it, seqs are printed as records are buffered
        /// and everything is synced once at the end.
        #[arg(long)]
        sync: bool,
    },
}

pub fn wal(dir: &Path, cmd: WalCommand) -> anyhow::Result<u8> {
    match cmd {
        WalCommand::Append { sync } => wal_append(dir, sync),
    }
}

fn wal_append(dir: &Path, sync: bool) -> anyhow::Result<u8> {
    let engine = open_engine(
        dir,
        if sync {
            SyncMode::Always
        } else {
            SyncMode::Never
        },
    )?;
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut out = io::stdout().lock();
    let mut carry: Vec<u8> = Vec::new();
    loop {
        // Take every complete line already read: one append_batch (one
        // group-commit round) per read, and seqs printed only after it.
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut start = 0;
        for (i, b) in buf.iter().enumerate() {
            if *b == b'\n' {
                let mut line = std::mem::take(&mut carry);
                line.extend_from_slice(&buf[start..i]);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                lines.push(line);
                start = i + 1;
            }
        }
        carry.extend_from_slice(&buf[start..]);
        input.consume(n);
        if !lines.is_empty() {
            print_seqs(&mut out, engine.append_batch(&lines)?)?;
        }
    }
    if !carry.is_empty() {
        print_seqs(&mut out, engine.append_batch(&[carry])?)?;
    }
    engine.sync()?;
    Ok(0)
}

fn print_seqs(out: &mut impl Write, seqs: std::ops::RangeInclusive<u64>) -> io::Result<()> {
    for s in seqs {
        writeln!(out, "{s}")?;
    }
    out.flush()
}

#[derive(Debug, clap::Args)]
pub struct CheckpointArgs {
    /// Records up to this seq are reflected in segments (default: unchanged).
    #[arg(long)]
    applied_seq: Option<u64>,
    /// Commit message.
    #[arg(short = 'm', default_value = "checkpoint")]
    message: String,
}

pub fn checkpoint(dir: &Path, a: CheckpointArgs) -> anyhow::Result<u8> {
    let engine = open_engine(dir, SyncMode::Always)?;
    let c = engine.checkpoint(a.applied_seq, &a.message)?;
    println!("{}", c.commit);
    Ok(0)
}

pub fn snapshot(dir: &Path, name: Option<String>) -> anyhow::Result<u8> {
    let engine = open_engine(dir, SyncMode::Always)?;
    let (name, id) = engine.snapshot(name.as_deref())?;
    println!("{id} {name}");
    Ok(0)
}

pub fn branch(dir: &Path, name: String, from: Option<String>) -> anyhow::Result<u8> {
    let engine = open_engine(dir, SyncMode::Always)?;
    let (name, id) = engine.branch(&name, from.as_deref().unwrap_or("refs/heads/main"))?;
    println!("{id} {name}");
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// Where to start (default: refs/heads/main).
    rev: Option<String>,
    /// One JSON object per commit, one per line.
    #[arg(long)]
    json: bool,
    /// At most this many commits.
    #[arg(short = 'n', long)]
    max_count: Option<usize>,
    /// Only commits where the object at this path changed (after `--`).
    #[arg(last = true)]
    path: Option<String>,
}

pub fn log(dir: &Path, a: LogArgs) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let start = match &a.rev {
        Some(r) => repo.resolve(r)?,
        None => match repo.refs().resolve(&main_ref())? {
            Some(id) => id,
            None => {
                return Err(usage(
                    "refs/heads/main has no commits yet (run `sydra checkpoint`)",
                ));
            }
        },
    };
    let mut out = BufWriter::new(io::stdout().lock());
    if let Some(path) = &a.path {
        return log_path(&repo, start, path, &a, &mut out);
    }
    let horizon = repo.history_horizon()?;
    let mut next = Some(start);
    let mut shown = 0usize;
    while let Some(id) = next {
        if a.max_count.is_some_and(|n| shown >= n) {
            break;
        }
        let obj = repo.objects().get(&id)?;
        let c = obj.commit()?;
        if a.json {
            let meta: serde_json::Map<String, serde_json::Value> = c
                .meta
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        serde_json::Value::String(String::from_utf8_lossy(v).into_owned()),
                    )
                })
                .collect();
            let v = serde_json::json!({
                "id": id.to_hex(),
                "tree": c.tree.to_hex(),
                "parents": c.parents.iter().map(ObjectId::to_hex).collect::<Vec<_>>(),
                "timestamp_ns": c.timestamp,
                "time": format_rfc3339(c.timestamp),
                "author": c.author,
                "branch": c.branch,
                "message": c.message,
                "meta": meta,
            });
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "commit {id}")?;
            writeln!(out, "Date:   {}", format_rfc3339(c.timestamp))?;
            if let (Some(a), Some(l)) = (c.meta_u64("wal.applied_seq"), c.meta_u64("wal.last_seq"))
            {
                writeln!(out, "WAL:    applied through {a}, chunks through {l}")?;
            }
            writeln!(out)?;
            for line in c.message.lines() {
                writeln!(out, "    {line}")?;
            }
            writeln!(out)?;
        }
        shown += 1;
        next = c.first_parent();
        if next.is_some() && horizon.is_boundary(&id) {
            if !a.json {
                writeln!(out, "(older history was removed by retention)")?;
            }
            break;
        }
    }
    out.flush()?;
    Ok(0)
}

fn log_path(
    repo: &Repository,
    start: ObjectId,
    path: &str,
    a: &LogArgs,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    let horizon = repo.history_horizon()?;
    let changes = sydra_engine::diff::path_history_until(repo.objects(), start, path, &|id| {
        horizon.is_boundary(id)
    })?;
    for ch in changes.iter().take(a.max_count.unwrap_or(usize::MAX)) {
        let obj = repo.objects().get(&ch.commit)?;
        let c = obj.commit()?;
        let what = match (ch.old, ch.new) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ => "modified",
        };
        if a.json {
            let v = serde_json::json!({
                "commit": ch.commit.to_hex(),
                "time": format_rfc3339(c.timestamp),
                "timestamp_ns": c.timestamp,
                "change": what,
                "old": ch.old.map(|i| i.to_hex()),
                "new": ch.new.map(|i| i.to_hex()),
                "message": c.message,
            });
            writeln!(out, "{v}")?;
        } else {
            let first = c.message.lines().next().unwrap_or("");
            writeln!(
                out,
                "{} {what:8} {} {first}",
                ch.commit,
                format_rfc3339(c.timestamp)
            )?;
        }
    }
    out.flush()?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// Old side: a commit or tree (any revision).
    a: String,
    /// New side.
    b: String,
    /// Print a JSON object with the list of changes.
    #[arg(long)]
    json: bool,
}

pub fn diff(dir: &Path, a: DiffArgs) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let ta = repo.peel_to_tree(repo.resolve(&a.a)?)?;
    let tb = repo.peel_to_tree(repo.resolve(&a.b)?)?;
    let changes = sydra_engine::diff::diff_trees(repo.objects(), Some(ta), Some(tb))?;
    let mut out = BufWriter::new(io::stdout().lock());
    let hex = |i: Option<ObjectId>| i.map(|i| i.to_hex());
    if a.json {
        let list: Vec<_> = changes
            .iter()
            .map(|c| {
                serde_json::json!({
                    "path": c.path,
                    "change": match c.kind {
                        sydra_engine::diff::ChangeKind::Added => "added",
                        sydra_engine::diff::ChangeKind::Removed => "removed",
                        sydra_engine::diff::ChangeKind::Modified => "modified",
                    },
                    "old": hex(c.old),
                    "new": hex(c.new),
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({ "a": ta.to_hex(), "b": tb.to_hex(), "changes": list })
        )?;
    } else {
        for c in &changes {
            let id = |i: Option<ObjectId>| i.map_or_else(|| "-".to_owned(), |i| i.short(16));
            writeln!(
                out,
                "{} {} {}\t{}",
                c.kind.code(),
                id(c.old),
                id(c.new),
                c.path
            )?;
        }
    }
    out.flush()?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Replay exactly what this ref or commit committed (default: the head,
    /// followed by the live tail of the WAL).
    #[arg(long)]
    from: Option<String>,
    /// Replay the commit that was current at this time (RFC 3339 or Unix
    /// seconds) on the --from ref (default refs/heads/main).
    #[arg(long)]
    at: Option<String>,
    /// One JSON object per record: {"seq":N,"len":L,"data":"<base64>"}.
    #[arg(long)]
    json: bool,
}

pub fn replay(dir: &Path, a: ReplayArgs) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let from = match (&a.from, &a.at) {
        (Some(f), Some(t)) => Some(format!("{f}@{{{t}}}")),
        (None, Some(t)) => Some(format!("refs/heads/main@{{{t}}}")),
        (f, None) => f.clone(),
    };
    let mut replay = match &from {
        Some(rev) => {
            let id = repo.resolve(rev)?;
            repo.expect_commit(id)?;
            Replay::new(repo.objects(), repo.layout().wal(), Some(id), Tail::None)?
        }
        None => Replay::new(
            repo.objects(),
            repo.layout().wal(),
            repo.refs().resolve(&main_ref())?,
            Tail::ToEnd,
        )?,
    };
    let bar = io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} replayed {human_pos} records ({per_sec})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b
    });
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut n: u64 = 0;
    while let Some(r) = replay.next_record() {
        let (seq, data) = r?;
        if a.json {
            writeln!(
                out,
                "{{\"seq\":{seq},\"len\":{},\"data\":\"{}\"}}",
                data.len(),
                b64.encode(data)
            )?;
        } else {
            out.write_all(seq.to_string().as_bytes())?;
            out.write_all(b"\t")?;
            write_escaped(&mut out, data)?;
            out.write_all(b"\n")?;
        }
        n += 1;
        if let Some(b) = &bar
            && n.is_multiple_of(65_536)
        {
            b.set_position(n);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    out.flush()?;
    Ok(0)
}

/// Printable ASCII and UTF-8 as is; other bytes, tab, newline and backslash
/// escaped, so one record is one line.
fn write_escaped(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    for chunk in data.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '\\' => out.write_all(b"\\\\")?,
                '\n' => out.write_all(b"\\n")?,
                '\t' => out.write_all(b"\\t")?,
                '\r' => out.write_all(b"\\r")?,
                c if c.is_control() => write!(out, "\\u{{{:x}}}", c as u32)?,
                c => write!(out, "{c}")?,
            }
        }
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}")?;
        }
    }
    Ok(())
}
