//! Time-series commands: write (line protocol in), export (canonical line
//! protocol out), series (what the head holds).

use ahash::AHashMap as HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use sydra_engine::series::lineproto::{self, Precision};
use sydra_engine::series::{Selector, SeriesKey, SeriesRef, Value};
use sydra_engine::wal::SyncMode;
use sydra_engine::{Engine, now_ns};

use crate::engine_cmds::{open_engine, open_engine_reading};

/// The longest line `write` reads (a line protocol line is a series key of
/// at most a few KiB and its fields).
const MAX_LINE: usize = 4 << 20;
/// Points per appender commit.
const COMMIT_POINTS: u64 = 50_000;

#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// The unit of the timestamps in the input: ns, us, ms or s.
    #[arg(long, default_value = "ns")]
    precision: String,
    /// Files of InfluxDB line protocol; none or "-" reads standard input.
    files: Vec<PathBuf>,
}

/// A selector argument, parsed (a bad one is a usage error naming the
/// column).
pub fn selector(s: Option<&str>) -> anyhow::Result<Selector> {
    match s {
        None => Ok(Selector::all()),
        Some(s) => Selector::parse(s).map_err(|e| crate::util::usage(format!("{s:?}: {e}"))),
    }
}

#[derive(Debug, clap::Args)]
pub struct SeriesArgs {
    /// Only the series this selects (`cpu{host="a"}`; see `sydra query`).
    selector: Option<String>,
    /// One JSON object per series.
    #[arg(long)]
    json: bool,
    /// The series of this revision (ref, commit, snapshot, REV@{TIME})
    /// instead of the live ones.
    #[arg(long)]
    as_of: Option<String>,
    #[command(flatten)]
    replica: crate::query_cmd::ReplicaArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Only the series this selects (`cpu{host="a"}`; see `sydra query`).
    selector: Option<String>,
    /// The data of this revision (ref, commit, snapshot, REV@{TIME}):
    /// its segments and the points its WAL chunks hold beyond them.
    /// Without it: every acknowledged point, compacted or not.
    #[arg(long)]
    as_of: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    /// Move every point of the head, the newest block's too.
    #[arg(long)]
    all: bool,
    /// Retention by data time: drop points older than now - DUR and remove
    /// the segments of blocks that end before it (`90d`, `12h`); history
    /// keeps them until `sydra gc --retain` lets it go.
    #[arg(long, value_name = "DUR", value_parser = crate::admin::duration)]
    retention: Option<std::time::Duration>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Which series: `cpu`, `cpu{host="a"}`, `{region=~"eu-.*"}`, `{}` for
    /// all (as `sydra query`).
    selector: String,
    /// Data time, inclusive: RFC 3339, Unix seconds, or integer ns with an
    /// `ns` suffix. [default: the beginning]
    #[arg(long, value_name = "T", value_parser = crate::query_cmd::query_time, allow_hyphen_values = true)]
    from: Option<i64>,
    /// Data time, inclusive (as --from). [default: the end]
    #[arg(long, value_name = "T", value_parser = crate::query_cmd::query_time, allow_hyphen_values = true)]
    to: Option<i64>,
    /// Confirm a delete of every point of every series (`{}` without
    /// --from or --to).
    #[arg(long)]
    yes: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The key of one field of a parsed line.
fn line_key(
    line: &lineproto::Line<'_>,
    field: &str,
) -> Result<SeriesKey, sydra_engine::series::KeyError> {
    SeriesKey::new(
        line.measurement.as_ref(),
        line.tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        field,
    )
}

/// Parsed lines of one block of input, ready to append: points in input
/// order, and where each line's points end.
struct Parsed {
    /// The input's name, for messages.
    name: std::sync::Arc<str>,
    points: Vec<(SeriesRef, i64, Value)>,
    /// (line number, end index in `points`), one per line.
    lines: Vec<(usize, usize)>,
}

/// What the parsing thread hands the appending one, in input order.
enum Msg {
    Block(Parsed),
    /// The input stops here: the lines before it were all sent.
    Error(anyhow::Error),
}

/// The parsing side: reads the inputs in blocks, parses complete lines and
/// resolves each field's series handle (cached by the input's spelling of
/// measurement and tags, so a known series builds no key).
struct Parser<'e> {
    engine: &'e Engine,
    /// Where the handles of a series spelling are in `handles`.
    index: HashMap<Box<str>, usize>,
    /// Per spelling, its fields' handles.
    handles: Vec<Vec<(Box<str>, SeriesRef)>>,
    precision: Precision,
    now: i64,
    tx: std::sync::mpsc::SyncSender<Msg>,
}

impl Parser<'_> {
    /// Parse the complete lines of `chunk` (numbered from `line_base + 1`)
    /// and send them; on the first bad line, send what came before it and
    /// return the error.
    fn chunk(&mut self, name: &str, chunk: &[u8], line_base: usize) -> anyhow::Result<()> {
        // Lines without a timestamp take the time their block is parsed,
        // as InfluxDB stamps a request's points with its arrival (a stream
        // on stdin does not collapse into one instant).
        self.now = now_ns();
        let mut out = Parsed {
            name: name.into(),
            points: Vec::new(),
            lines: Vec::new(),
        };
        let result = self.lines(name, chunk, line_base, &mut out);
        if !out.lines.is_empty() {
            // A closed channel means the appending side stopped on an
            // error of its own, which it reports.
            let _ = self.tx.send(Msg::Block(out));
        }
        result
    }

    fn lines(
        &mut self,
        name: &str,
        chunk: &[u8],
        line_base: usize,
        out: &mut Parsed,
    ) -> anyhow::Result<()> {
        let precision = self.precision;
        let fail = |e: lineproto::ParseError| {
            anyhow::anyhow!(
                "{name}: line {}, column {}: {}",
                e.line + line_base,
                e.column,
                e.message
            )
        };
        let mut lines = lineproto::parse(chunk, precision);
        let mut fields = Vec::new();
        while let Some(raw) = lines.next_raw() {
            let raw = raw.map_err(fail)?;
            let line_no = raw.line + line_base;
            // A series spelled as before skips the parse of its measurement
            // and tags; anything else is parsed whole.
            let known = raw.raw_series().and_then(|s| self.index.get(s).copied());
            let mut whole = None;
            fields.clear();
            let (i, ts) = match known {
                Some(i) => (i, raw.fields_into(precision, &mut fields).map_err(fail)?),
                None => {
                    let mut line = raw.parse(precision).map_err(fail)?;
                    fields.append(&mut line.fields);
                    let i = self.handles.len();
                    self.index.insert(line.raw_series.into(), i);
                    self.handles.push(Vec::new());
                    let ts = line.timestamp;
                    whole = Some(line);
                    (i, ts)
                }
            };
            let ts = ts.unwrap_or(self.now);
            for (field, value) in fields.drain(..) {
                let found = self.handles[i]
                    .iter()
                    .find(|(f, _)| **f == *field)
                    .map(|(_, r)| *r);
                let r = match found {
                    Some(r) => r,
                    None => {
                        let line = match &mut whole {
                            Some(l) => l,
                            w @ None => w.insert(raw.parse(precision).map_err(fail)?),
                        };
                        let key = line_key(line, &field)
                            .map_err(|e| anyhow::anyhow!("{name}: line {line_no}: {e}"))?;
                        let r = self.engine.series(&key)?;
                        self.handles[i].push((field.as_ref().into(), r));
                        r
                    }
                };
                out.points.push((r, ts, value));
            }
            out.lines.push((line_no, out.points.len()));
        }
        Ok(())
    }

    /// Read `input` in blocks and parse its complete lines; a line longer
    /// than [`MAX_LINE`] is refused naming it.
    fn read(&mut self, name: &str, mut input: impl Read) -> anyhow::Result<()> {
        let mut carry: Vec<u8> = Vec::new();
        let mut block = vec![0u8; 1 << 20];
        let mut line_base = 0usize;
        loop {
            let n = match input.read(&mut block) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {name}")),
            };
            if n == 0 {
                return self.chunk(name, &carry, line_base);
            }
            carry.extend_from_slice(&block[..n]);
            if let Some(last) = memchr::memrchr(b'\n', &carry) {
                self.chunk(name, &carry[..=last], line_base)?;
                line_base += memchr::memchr_iter(b'\n', &carry[..=last]).count();
                carry.drain(..=last);
            }
            if carry.len() > MAX_LINE {
                anyhow::bail!(
                    "{name}: line {} is longer than {} MiB",
                    line_base + 1,
                    MAX_LINE >> 20
                );
            }
        }
    }
}

/// The appending side's tally.
#[derive(Default)]
struct Tally {
    points: u64,
    new_series: u64,
    lines: u64,
}

/// Append what the parser sends, line by line (each line checked whole
/// before any of its points is added), committing every
/// [`COMMIT_POINTS`]; stops at the first error, committing what came
/// before it.
fn append_all(
    engine: &Engine,
    rx: std::sync::mpsc::Receiver<Msg>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let mut app = engine.appender();
    let mut result = Ok(());
    'blocks: for msg in rx {
        let block = match msg {
            Msg::Block(b) => b,
            Msg::Error(e) => {
                result = Err(e);
                break;
            }
        };
        let mut from = 0;
        for &(line_no, end) in &block.lines {
            let line = &block.points[from..end];
            from = end;
            let fail =
                |e: sydra_engine::Error| anyhow::anyhow!("{}: line {line_no}: {e}", block.name);
            if let Some(e) = line.iter().find_map(|(r, _, v)| app.check(*r, v).err()) {
                result = Err(fail(e));
                break 'blocks;
            }
            for (r, ts, v) in line {
                // A clone of a checked value: no string, so no allocation.
                if let Err(e) = app.append(*r, *ts, v.clone()) {
                    result = Err(fail(e));
                    break 'blocks;
                }
            }
            tally.lines += 1;
            if app.len() >= COMMIT_POINTS {
                let done = std::mem::replace(&mut app, engine.appender()).commit()?;
                tally.points += done.points;
                tally.new_series += done.new_series;
                // The head's memory bound: past it, everything moves into
                // segments (blocks are compacted otherwise only when asked:
                // `sydra compact`, or an embedder's `maintain`).
                if engine.head_bytes() > engine.options().series_head_max_bytes {
                    engine.maintain()?;
                }
            }
        }
    }
    // Every line before an error is committed too, so the count reported
    // is exactly what the store keeps.
    let done = app.commit()?;
    tally.points += done.points;
    tally.new_series += done.new_series;
    result
}

pub fn write(dir: &Path, a: WriteArgs) -> anyhow::Result<u8> {
    let precision: Precision = a
        .precision
        .parse()
        .map_err(|e: String| crate::util::usage(format!("--precision: {e}")))?;
    let engine = open_engine(dir, SyncMode::Never)?;
    let started = Instant::now();
    let files = if a.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        a.files
    };
    let mut tally = Tally::default();
    // Two threads, one per core here: one reads, parses and resolves
    // series; the other appends and commits. A few blocks in flight bound
    // the memory between them.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(4);
    let result = std::thread::scope(|scope| {
        let engine = &engine;
        scope.spawn(move || {
            let mut p = Parser {
                engine,
                index: HashMap::new(),
                handles: Vec::new(),
                precision,
                now: now_ns(),
                tx,
            };
            for f in &files {
                let r = if f.as_os_str() == "-" {
                    p.read("standard input", io::stdin().lock())
                } else {
                    let name = f.display().to_string();
                    match std::fs::File::open(f) {
                        Ok(file) => p.read(&name, file),
                        Err(e) => Err(anyhow::anyhow!("cannot open {name}: {e}")),
                    }
                };
                if let Err(e) = r {
                    let _ = p.tx.send(Msg::Error(e));
                    return;
                }
            }
        });
        append_all(engine, rx, &mut tally)
    });
    engine.sync()?;
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            eprintln!(
                "sydra: wrote {} points ({} new series) from {} lines in {secs:.2} s ({:.0} points/s), durable",
                tally.points,
                tally.new_series,
                tally.lines,
                tally.points as f64 / secs.max(1e-9)
            );
            Ok(0)
        }
        Err(e) => Err(anyhow::anyhow!(
            "{e:#}; the {} point(s) before it were written and are durable",
            tally.points
        )),
    }
}

pub fn export(dir: &Path, a: ExportArgs) -> anyhow::Result<u8> {
    let sel = selector(a.selector.as_deref())?;
    let engine = open_engine_reading(dir, a.as_of.as_deref())?;
    let view = engine.view(a.as_of.as_deref())?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut line = String::new();
    for batch in view.query(&sel, i64::MIN, i64::MAX)? {
        let batch = batch?;
        for (ts, v) in &batch.points {
            line.clear();
            lineproto::write_point(&mut line, &batch.key, *ts, v)?;
            out.write_all(line.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(0)
}

pub fn series(dir: &Path, a: SeriesArgs) -> anyhow::Result<u8> {
    let sel = selector(a.selector.as_deref())?;
    let replica = crate::query_cmd::replica(dir, &a.replica)?;
    let engine = match replica {
        Some(_) => None,
        None => Some(open_engine_reading(dir, a.as_of.as_deref())?),
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let view = match (&replica, &engine) {
        (Some(r), _) => r.view(a.as_of.as_deref())?,
        (None, Some(e)) => e.view(a.as_of.as_deref())?,
        (None, None) => unreachable!("one of the two is opened above"),
    };
    for (key, t) in view.select(&sel)? {
        if a.json {
            let v = serde_json::json!({
                "series": key.series_string(),
                "field": key.field(),
                "type": t.to_string(),
            });
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{key}\t{t}")?;
        }
    }
    out.flush()?;
    if let Some(r) = &replica {
        crate::query_cmd::report_replica(r);
    }
    Ok(0)
}

pub fn compact(dir: &Path, a: CompactArgs) -> anyhow::Result<u8> {
    let engine = open_engine(dir, SyncMode::Always)?;
    let started = Instant::now();
    let retention_before = a
        .retention
        .map(|d| now_ns().saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)));
    let r = engine.compact(sydra_engine::series::CompactOptions {
        all: a.all,
        retention_before,
    })?;
    let secs = started.elapsed().as_secs_f64();
    if a.json {
        let v = serde_json::json!({
            "commit": r.commit.map(|c| c.to_string()),
            "points": r.points,
            "segments_added": r.segments_added,
            "segments_replaced": r.segments_replaced,
            "segments_merged": r.segments_merged,
            "segments_expired": r.segments_expired,
            "points_expired": r.points_expired,
            "series_indexed": r.series_indexed,
            "cut": r.cut,
            "applied_seq": r.applied_seq,
            "head_points": r.head_points,
            "seconds": secs,
        });
        println!("{v}");
    } else if let Some(c) = r.commit {
        let before = match r.cut {
            Some(t) => format!("before {}", sydra_engine::time::format_rfc3339(t)),
            None => "(all)".to_string(),
        };
        println!(
            "compacted {} point(s) {before} into {} new and {} replaced segment(s) \
             ({} merged into wider levels), {} new series indexed, {} segment(s) and \
             {} head point(s) expired, in {secs:.2}s\n\
             commit {c}\n{} point(s) left in the head; wal.applied_seq {}",
            r.points,
            r.segments_added,
            r.segments_replaced,
            r.segments_merged,
            r.series_indexed,
            r.segments_expired,
            r.points_expired,
            r.head_points,
            r.applied_seq
        );
    } else {
        println!(
            "nothing to compact ({} point(s) in the head, all in the newest block)",
            r.head_points
        );
    }
    Ok(0)
}

/// `sydra diff A B --series [SELECTOR]`: per series that differs, the
/// points added, changed and removed from A to B.
pub fn diff(dir: &Path, a: crate::engine_cmds::DiffArgs) -> anyhow::Result<u8> {
    use crate::engine_cmds::DiffFormat;
    use crate::query_cmd::{value_json, value_text};
    use sydra_engine::time::format_rfc3339;

    let sel = selector(a.series.as_deref())?;
    let json = a.json || a.format == DiffFormat::Json;
    let engine = open_engine(dir, SyncMode::Never)?;
    let mut diffs = engine.diff_series(&a.a, &a.b, &sel)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut differ = 0u64;
    for d in diffs.by_ref() {
        let d = d?;
        differ += 1;
        if json {
            let pairs = |p: &[(i64, Value)]| -> Vec<serde_json::Value> {
                p.iter()
                    .map(|(t, v)| serde_json::json!([t, value_json(v)]))
                    .collect()
            };
            let changed: Vec<_> = d
                .changed
                .iter()
                .map(|(t, o, n)| serde_json::json!([t, value_json(o), value_json(n)]))
                .collect();
            let obj = serde_json::json!({
                "series": d.key.series_string(),
                "field": d.key.field(),
                "added": pairs(&d.added),
                "changed": changed,
                "removed": pairs(&d.removed),
            });
            writeln!(out, "{obj}")?;
            continue;
        }
        writeln!(out, "{}", d.key)?;
        // One time-ordered list: the three lists hold distinct timestamps.
        let mut rows: Vec<(i64, String)> =
            Vec::with_capacity(d.added.len() + d.changed.len() + d.removed.len());
        let row =
            |mark: char, t: i64, text: String| (t, format!("{mark} {}  {text}", format_rfc3339(t)));
        rows.extend(d.added.iter().map(|(t, v)| row('+', *t, value_text(v))));
        rows.extend(d.removed.iter().map(|(t, v)| row('-', *t, value_text(v))));
        rows.extend(
            d.changed
                .iter()
                .map(|(t, o, n)| row('~', *t, format!("{} -> {}", value_text(o), value_text(n)))),
        );
        rows.sort_by_key(|r| r.0);
        for (_, r) in rows {
            writeln!(out, "{r}")?;
        }
    }
    out.flush()?;
    if a.stats {
        let st = diffs.stats();
        eprintln!(
            "sydra: {differ} of {} series differ ({} skipped by directory id); segments: {} decoded, {} skipped by blob ids; {} head point(s)",
            st.series, st.series_skipped, st.segments_decoded, st.segments_skipped, st.head_points
        );
    }
    Ok(0)
}

pub fn delete(dir: &Path, a: DeleteArgs) -> anyhow::Result<u8> {
    let sel = selector(Some(&a.selector))?;
    let (from, to) = (a.from.unwrap_or(i64::MIN), a.to.unwrap_or(i64::MAX));
    if from > to {
        return Err(crate::util::usage("--from is after --to"));
    }
    if sel.matchers.is_empty() && a.from.is_none() && a.to.is_none() && !a.yes {
        return Err(crate::util::usage(format!(
            "{:?} without --from or --to deletes every point of every series; \
             pass --yes to do that",
            a.selector
        )));
    }
    let engine = open_engine(dir, SyncMode::Always)?;
    let started = Instant::now();
    let r = engine.delete(&sel, from, to)?;
    let secs = started.elapsed().as_secs_f64();
    let c = &r.compaction;
    if a.json {
        let v = serde_json::json!({
            "commit": r.commit.map(|c| c.to_string()),
            "selector": sel.to_string(),
            "from": from,
            "to": to,
            "points_deleted": r.points_deleted,
            "series_matched": r.series_matched,
            "series_affected": r.series_affected,
            "segments_rewritten": r.segments_rewritten,
            "segments_removed": r.segments_removed,
            "points_compacted": c.points,
            "segments_added": c.segments_added,
            "segments_replaced": c.segments_replaced,
            "series_indexed": c.series_indexed,
            "applied_seq": c.applied_seq,
            "head_points": c.head_points,
            "seconds": secs,
        });
        println!("{v}");
    } else if let Some(id) = r.commit {
        println!(
            "deleted {} point(s) of {} series ({} matched): {} segment(s) rewritten, {} removed; \
             compacted {} head point(s) into {} new and {} replaced segment(s), in {secs:.2}s\n\
             commit {id}\n{} point(s) left in the head; wal.applied_seq {}",
            r.points_deleted,
            r.series_affected,
            r.series_matched,
            r.segments_rewritten,
            r.segments_removed,
            c.points,
            c.segments_added,
            c.segments_replaced,
            c.head_points,
            c.applied_seq
        );
    } else {
        println!(
            "nothing to delete: {} series matched, none with a point in the range",
            r.series_matched
        );
    }
    Ok(0)
}
