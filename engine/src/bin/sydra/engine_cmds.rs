//! Engine commands: wal append, checkpoint, snapshot, branch, log, replay.

use std::io::{self, BufRead, BufWriter, IsTerminal, Write};
use std::path::Path;

use base64::Engine as _;
use sydra_engine::objects::ObjectId;
use sydra_engine::time::format_rfc3339;
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options, Replay, Repository, Tail, main_ref};

use crate::util::quote_path;

pub(crate) fn open_engine(dir: &Path, sync: SyncMode) -> anyhow::Result<Engine> {
    open_engine_with(dir, sync, false)
}

/// [`open_engine`] for a command that reads: as of a revision (`Some`), the
/// live head is not rebuilt unless something asks for it
/// (`Options::defer_head`), since that version's own head is built instead.
pub(crate) fn open_engine_reading(dir: &Path, as_of: Option<&str>) -> anyhow::Result<Engine> {
    open_engine_with(dir, SyncMode::Never, as_of.is_some())
}

fn open_engine_with(dir: &Path, sync: SyncMode, defer_head: bool) -> anyhow::Result<Engine> {
    let opts = Options {
        wal: WalOptions {
            sync,
            ..WalOptions::default()
        },
        defer_head,
        ..Options::default()
    };
    let engine = Engine::open(dir, opts)?;
    report_open(&engine);
    Ok(engine)
}

/// Say on standard error what opening the engine repaired.
pub(crate) fn report_open(engine: &Engine) {
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
    if let Some(why) = &r.head_error {
        eprintln!("sydra: warning: the time-series head could not be rebuilt: {why}");
    }
    if r.ref_writers_active {
        eprintln!(
            "sydra: another process is updating refs; its ref locks were left in place (stale ones are removed at a later open)"
        );
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum WalCommand {
    /// Append one record per line of standard input; print each seq.
    ///
    /// A line ends at "\n" or "\r\n", and exactly that terminator is
    /// stripped; any other "\r" is data, including at the end of a last line
    /// that has no terminator. A line longer than the record limit (16 MiB)
    /// is refused, naming its line number, as soon as it is read that far;
    /// the lines before it are appended and synced.
    Append {
        /// Print each seq only once its record is durable (fdatasync, group
        /// committed). Without it, seqs are printed as records are buffered
        /// and everything is synced once at the end.
        #[arg(long)]
        sync: bool,
    },
    /// Cut the log at damaged acknowledged records, giving up their seqs.
    ///
    /// Open and replay refuse a bad record that valid records follow (it is
    /// not a torn tail). This prints which seqs a cut there gives up (from
    /// the bad record to the highest seq readable after it) and, only with
    /// --yes, cuts: the seqs are recorded as given up and never assigned
    /// again; the log continues after them. Exit 0 when repaired or when
    /// nothing needs it, 1 when refused (no --yes, or damage under the head
    /// checkpoint or in a sealed segment, which a restore must fix).
    Repair {
        /// Accept the loss and cut.
        #[arg(long)]
        yes: bool,
    },
}

pub fn wal(dir: &Path, cmd: WalCommand) -> anyhow::Result<u8> {
    match cmd {
        WalCommand::Append { sync } => wal_append(dir, sync),
        WalCommand::Repair { yes } => wal_repair(dir, yes),
    }
}

fn wal_repair(dir: &Path, yes: bool) -> anyhow::Result<u8> {
    use sydra_engine::wal::repair::{Diagnosis, RepairPlan};
    let describe = |p: &RepairPlan| {
        format!(
            "seqs {}..={} ({} seq(s)): {} is cut at offset {} ({} byte(s) dropped) because {}",
            p.first_lost,
            p.last_lost,
            p.seqs_lost(),
            p.segment.display(),
            p.offset,
            p.bytes_dropped,
            p.reason
        )
    };
    let mut out = io::stdout().lock();
    let plan = match Engine::repair_wal(dir, None)?.0 {
        Diagnosis::Clean => {
            writeln!(out, "the WAL has no damaged records; nothing to repair")?;
            return Ok(0);
        }
        Diagnosis::TornTail { segment, offset } => {
            writeln!(
                out,
                "only a torn tail at offset {offset} of {}, which the next open truncates; nothing to repair",
                segment.display()
            )?;
            return Ok(0);
        }
        Diagnosis::Damaged(plan) => plan,
    };
    if !yes {
        writeln!(out, "would give up {}", describe(&plan))?;
        writeln!(
            out,
            "the log would continue at seq {}; nothing was changed",
            plan.last_lost + 1
        )?;
        out.flush()?;
        eprintln!("sydra: refusing to cut the WAL without --yes");
        return Ok(1);
    }
    writeln!(out, "giving up {}", describe(&plan))?;
    out.flush()?;
    if !Engine::repair_wal(dir, Some(&plan))?.1 {
        anyhow::bail!(
            "the WAL changed between planning and cutting; nothing was cut, run the repair again"
        );
    }
    writeln!(
        out,
        "repaired: seqs {}..={} are recorded as given up; the log continues at seq {}",
        plan.first_lost,
        plan.last_lost,
        plan.last_lost + 1
    )?;
    Ok(0)
}

/// Splits standard input into records without ever holding more than one
/// record limit (plus one read) of a line.
struct Lines {
    /// The start of a line whose end has not been read yet.
    carry: Vec<u8>,
    /// Number of the line `carry` belongs to (1-based).
    line_no: u64,
    max: usize,
}

/// A line longer than the record limit.
#[derive(Debug)]
struct Overlong {
    line_no: u64,
}

impl Lines {
    /// The record of a complete line: its terminator ("\n" or "\r\n")
    /// stripped, nothing else.
    fn record(mut line: Vec<u8>) -> Vec<u8> {
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        line
    }

    /// Take the complete lines of `buf` into `out`; keep the start of an
    /// unfinished one. Stops at the first line that cannot fit a record.
    fn feed(&mut self, buf: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), Overlong> {
        let mut start = 0;
        while let Some(i) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + i + 1;
            let mut line = std::mem::take(&mut self.carry);
            line.extend_from_slice(&buf[start..end]);
            let record = Lines::record(line);
            if record.len() > self.max {
                return Err(Overlong {
                    line_no: self.line_no,
                });
            }
            out.push(record);
            self.line_no += 1;
            start = end;
        }
        let rest = &buf[start..];
        // An unfinished line may still end in "\r\n": one byte more than a
        // record may be kept, never more.
        if self.carry.len() + rest.len() > self.max + 1 {
            return Err(Overlong {
                line_no: self.line_no,
            });
        }
        self.carry.extend_from_slice(rest);
        Ok(())
    }

    /// The last line, which had no terminator.
    fn finish(&mut self) -> Result<Option<Vec<u8>>, Overlong> {
        if self.carry.is_empty() {
            return Ok(None);
        }
        if self.carry.len() > self.max {
            return Err(Overlong {
                line_no: self.line_no,
            });
        }
        Ok(Some(std::mem::take(&mut self.carry)))
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
    let max = engine.wal().options().max_record;
    let mut lines = Lines {
        carry: Vec::new(),
        line_no: 1,
        max,
    };
    let mut appended: u64 = 0;
    let mut refused = None;
    loop {
        // Take every complete line already read: one append_batch (one
        // group-commit round) per read, and seqs printed only after it.
        let buf = input.fill_buf()?;
        let n = buf.len();
        let mut batch = Vec::new();
        let fed = if n == 0 {
            lines.finish().map(|last| batch.extend(last))
        } else {
            lines.feed(buf, &mut batch)
        };
        input.consume(n);
        if !batch.is_empty() {
            appended += batch.len() as u64;
            print_seqs(&mut out, engine.append_batch(&batch)?)?;
        }
        if let Err(e) = fed {
            refused = Some(e);
            break;
        }
        if n == 0 {
            break;
        }
    }
    // The lines before a refused one are appended: make them durable before
    // saying so.
    engine.sync()?;
    if let Some(Overlong { line_no }) = refused {
        anyhow::bail!(
            "line {line_no} of standard input is longer than the WAL record limit of {max} bytes; \
             refused without reading the rest ({appended} earlier line(s) appended and synced)"
        );
    }
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
                // A well-formed request on a store without history: a failed
                // operation (exit 1), not a usage error.
                anyhow::bail!("refs/heads/main has no commits yet (run `sydra checkpoint`)");
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
        // Verified: a forged commit naming itself as parent must end the
        // walk with an error, not loop (see `sydra_engine::revision`).
        let obj = repo.objects().get_verified(&id)?;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// One line per change.
    Table,
    /// JSON: one object (paths), or one object per series (--series).
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// Old side: a commit or tree (any revision).
    pub a: String,
    /// New side.
    pub b: String,
    /// Compare the series data instead of the paths: per series the
    /// selector picks in either version (default: all), the points added
    /// (+), changed (~ old -> new) and removed (-). Give SELECTOR after
    /// the revisions (or as --series=SELECTOR).
    #[arg(long, value_name = "SELECTOR", num_args = 0..=1, default_missing_value = "{}")]
    pub series: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: DiffFormat,
    /// Print a JSON object with the list of changes (as --format json).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// With --series: print what the diff read (series and segments
    /// skipped by id, segments decoded, head points) on standard error.
    #[arg(long, requires = "series")]
    pub stats: bool,
}

pub fn diff(dir: &Path, a: DiffArgs) -> anyhow::Result<u8> {
    if a.series.is_some() {
        return crate::series_cmds::diff(dir, a);
    }
    let repo = Repository::open(dir)?;
    let ta = repo.peel_to_tree(repo.resolve(&a.a)?)?;
    let tb = repo.peel_to_tree(repo.resolve(&a.b)?)?;
    let changes = sydra_engine::diff::diff_trees(repo.objects(), Some(ta), Some(tb))?;
    let mut out = BufWriter::new(io::stdout().lock());
    let hex = |i: Option<ObjectId>| i.map(|i| i.to_hex());
    if a.json || a.format == DiffFormat::Json {
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
                quote_path(&c.path)
            )?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// A time argument (clap value parser: a bad one is a usage error, exit 2).
fn time_arg(s: &str) -> Result<i64, String> {
    sydra_engine::time::parse_time(s).map_err(|e| e.to_string())
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Replay exactly what this ref or commit committed (default: the head,
    /// followed by the live tail of the WAL).
    #[arg(long)]
    from: Option<String>,
    /// Replay the commit that was current at this time (RFC 3339 or Unix
    /// seconds) on the --from ref (default refs/heads/main).
    #[arg(long, value_name = "TIME", value_parser = time_arg)]
    at: Option<i64>,
    /// One JSON object per record: {"seq":N,"len":L,"data":"<base64>"}.
    #[arg(long)]
    json: bool,
}

pub fn replay(dir: &Path, a: ReplayArgs) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let start = match (&a.from, a.at) {
        (from, Some(t)) => Some(repo.resolve_at(from.as_deref().unwrap_or("refs/heads/main"), t)?),
        (Some(from), None) => Some(repo.resolve(from)?),
        (None, None) => None,
    };
    let mut replay = match start {
        Some(id) => {
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
