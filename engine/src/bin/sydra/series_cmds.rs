//! Time-series commands: write (line protocol in), export (canonical line
//! protocol out), series (what the head holds).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use sydra_engine::series::lineproto::{self, Precision};
use sydra_engine::series::{SeriesKey, SeriesRef};
use sydra_engine::wal::SyncMode;
use sydra_engine::{Engine, now_ns};

use crate::engine_cmds::open_engine;

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

#[derive(Debug, clap::Args)]
pub struct SeriesArgs {
    /// One JSON object per series.
    #[arg(long)]
    json: bool,
}

struct Point {
    timestamp: i64,
    value: sydra_engine::series::Value,
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

/// Where the points of one input came from, for error messages.
struct Source<'a> {
    name: &'a str,
    line_base: usize,
}

struct Writer<'e> {
    engine: &'e Engine,
    /// Handles by the input's spelling of measurement and tags, then by
    /// field: a line of a known series builds no key at all.
    refs: HashMap<Box<str>, Vec<(Box<str>, SeriesRef)>>,
    app: Option<sydra_engine::series::Appender<'e>>,
    points: u64,
    new_series: u64,
    lines: u64,
    now: i64,
}

impl<'e> Writer<'e> {
    fn commit(&mut self) -> anyhow::Result<()> {
        if let Some(app) = self.app.take() {
            let done = app.commit()?;
            self.points += done.points;
            self.new_series += done.new_series;
        }
        Ok(())
    }

    /// Parse and append the complete lines of `chunk`.
    fn feed(&mut self, chunk: &[u8], precision: Precision, src: &Source<'_>) -> anyhow::Result<()> {
        for line in lineproto::parse(chunk, precision) {
            let line = line.map_err(|e| {
                anyhow::anyhow!(
                    "{}: line {}, column {}: {}",
                    src.name,
                    e.line + src.line_base,
                    e.column,
                    e.message
                )
            })?;
            let at = line.line + src.line_base;
            let ts = line.timestamp.unwrap_or(self.now);
            // The whole line is checked before any of its points is added:
            // a refused line adds nothing.
            let mut refs = Vec::with_capacity(line.fields.len());
            for (field, value) in &line.fields {
                let known = self
                    .refs
                    .get(line.raw_series)
                    .and_then(|fs| fs.iter().find(|(f, _)| **f == **field))
                    .map(|(_, r)| *r);
                let r = match known {
                    Some(r) => r,
                    None => {
                        let key = line_key(&line, field)
                            .map_err(|e| anyhow::anyhow!("{}: line {at}: {e}", src.name))?;
                        let r = self.engine.series(&key)?;
                        self.refs
                            .entry(line.raw_series.into())
                            .or_default()
                            .push((field.as_ref().into(), r));
                        r
                    }
                };
                let app = self.app.get_or_insert_with(|| self.engine.appender());
                app.check(r, value)
                    .map_err(|e| anyhow::anyhow!("{}: line {at}: {e}", src.name))?;
                refs.push(r);
            }
            let points = line.fields.into_iter().map(|(_, v)| Point {
                timestamp: ts,
                value: v,
            });
            let app = self.app.get_or_insert_with(|| self.engine.appender());
            for (p, r) in points.zip(refs) {
                app.append(r, p.timestamp, p.value)
                    .map_err(|e| anyhow::anyhow!("{}: line {at}: {e}", src.name))?;
            }
            self.lines += 1;
            if self.app.as_ref().is_some_and(|a| a.len() >= COMMIT_POINTS) {
                self.commit()?;
            }
        }
        Ok(())
    }

    /// Read `input` in blocks, feeding complete lines; a line longer than
    /// [`MAX_LINE`] is refused naming it.
    fn read(
        &mut self,
        name: &str,
        mut input: impl Read,
        precision: Precision,
    ) -> anyhow::Result<()> {
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
                let src = Source { name, line_base };
                return self.feed(&carry, precision, &src);
            }
            carry.extend_from_slice(&block[..n]);
            if let Some(last) = carry.iter().rposition(|&b| b == b'\n') {
                let src = Source { name, line_base };
                self.feed(&carry[..=last], precision, &src)?;
                line_base += carry[..=last].iter().filter(|&&b| b == b'\n').count();
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

pub fn write(dir: &Path, a: WriteArgs) -> anyhow::Result<u8> {
    let precision: Precision = a
        .precision
        .parse()
        .map_err(|e: String| crate::util::usage(format!("--precision: {e}")))?;
    let engine = open_engine(dir, SyncMode::Never)?;
    let started = Instant::now();
    let mut w = Writer {
        engine: &engine,
        refs: HashMap::new(),
        app: None,
        points: 0,
        new_series: 0,
        lines: 0,
        now: now_ns(),
    };
    let files = if a.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        a.files
    };
    let mut result = Ok(());
    for f in &files {
        result = if f.as_os_str() == "-" {
            w.read("standard input", io::stdin().lock(), precision)
        } else {
            let name = f.display().to_string();
            match std::fs::File::open(f) {
                Ok(file) => w.read(&name, file, precision),
                Err(e) => Err(anyhow::anyhow!("cannot open {name}: {e}")),
            }
        };
        if result.is_err() {
            break;
        }
    }
    // Every line before an error is committed and made durable too, so
    // the count reported is exactly what the store keeps.
    let committed = w.commit();
    engine.sync()?;
    let secs = started.elapsed().as_secs_f64();
    match result.and(committed) {
        Ok(()) => {
            eprintln!(
                "sydra: wrote {} points ({} new series) from {} lines in {secs:.2} s ({:.0} points/s), durable",
                w.points,
                w.new_series,
                w.lines,
                w.points as f64 / secs.max(1e-9)
            );
            Ok(0)
        }
        Err(e) => Err(anyhow::anyhow!(
            "{e:#}; the {} point(s) before it were written and are durable",
            w.points
        )),
    }
}

pub fn export(dir: &Path) -> anyhow::Result<u8> {
    let engine = open_engine(dir, SyncMode::Never)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut line = String::new();
    for (key, r, _, _) in engine.head_series() {
        for (ts, v) in engine.head_points(r)? {
            line.clear();
            lineproto::write_point(&mut line, &key, ts, &v)?;
            out.write_all(line.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(0)
}

pub fn series(dir: &Path, a: SeriesArgs) -> anyhow::Result<u8> {
    let engine = open_engine(dir, SyncMode::Never)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    for (key, r, t, n) in engine.head_series() {
        if a.json {
            let v = serde_json::json!({
                "series": key.series_string(),
                "field": key.field(),
                "type": t.to_string(),
                "ref": r.id(),
                "points": n,
            });
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{key}\t{t}\t{n}")?;
        }
    }
    out.flush()?;
    Ok(0)
}
