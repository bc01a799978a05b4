//! `sydra query`: points or aggregates of the selected series in a time
//! range, live or as of a revision, as a table, CSV, JSON, line protocol or
//! a terminal chart.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use sydra_engine::series::{Agg, SeriesKey, Value, WHOLE_RANGE, lineproto};
use sydra_engine::time::format_rfc3339;
use sydra_engine::wal::SyncMode;

use crate::engine_cmds::open_engine_reading;

/// The most points `--format chart` holds (it needs them all to scale).
const CHART_MAX_POINTS: usize = 4_000_000;
/// The most series `--format chart` draws.
const CHART_MAX_SERIES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// `series,field,time,value` (time in ns).
    Csv,
    /// One JSON object per series, one per line.
    Json,
    /// InfluxDB line protocol (`sydra write` reads it back).
    Lp,
    /// A terminal line chart per series.
    Chart,
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Which series: `cpu`, `cpu{host="a",_field="usage"}`,
    /// `{region=~"eu-.*"}`, `{}` for all (docs/OPERATIONS.md).
    selector: String,
    /// Data time, inclusive: RFC 3339, Unix seconds, or integer ns with an
    /// `ns` suffix. [default: the beginning]
    #[arg(long, value_name = "T", value_parser = query_time, allow_hyphen_values = true)]
    from: Option<i64>,
    /// Data time, inclusive (as --from). [default: the end]
    #[arg(long, value_name = "T", value_parser = query_time, allow_hyphen_values = true)]
    to: Option<i64>,
    /// Transaction time: read the data as of this revision (ref, commit,
    /// snapshot, REV@{TIME}). Without it: every acknowledged point,
    /// compacted or not.
    #[arg(long, value_name = "REV")]
    as_of: Option<String>,
    /// Aggregate per bucket of DUR (`10s`, `1m`, `1h`, `500ms`), aligned to
    /// multiples of DUR since the Unix epoch; needs --agg.
    #[arg(long, value_name = "DUR", value_parser = step, requires = "agg")]
    step: Option<i64>,
    /// count, sum, min, max, mean, first or last; without --step, one
    /// bucket over the whole range.
    #[arg(long, value_name = "FN", value_parser = agg)]
    agg: Option<Agg>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Aggregate every point: no segment statistics or rollups (to verify
    /// them, or to see what they save).
    #[arg(long, requires = "agg")]
    raw: bool,
    /// Print what the query read (series, segments decoded, answered from
    /// statistics, pruned; head points) on standard error.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    replica: ReplicaArgs,
}

/// `--remote` and its cache, for the commands that read a replica.
#[derive(Debug, clap::Args)]
pub struct ReplicaArgs {
    /// Read from an S3 remote (`s3://BUCKET/PREFIX`, or the name of a
    /// recorded remote) as a read replica: no clone, each object or WAL
    /// range fetched once into a local cache. Without --as-of, the
    /// remote's `main`. What it cost goes to standard error.
    #[arg(long, value_name = "URL|NAME")]
    remote: Option<String>,
    /// The replica's cache directory [default:
    /// $XDG_CACHE_HOME/sydra/replica-<hash of the URL>, else
    /// ~/.cache/sydra/…].
    #[arg(long, value_name = "DIR", requires = "remote")]
    cache: Option<std::path::PathBuf>,
    /// Bytes of fetched data the cache keeps (`512M`, `2G`; oldest first
    /// out).
    #[arg(long, value_name = "BYTES", value_parser = crate::util::parse_bytes, requires = "remote", default_value = "1G")]
    cache_max_bytes: u64,
}

/// The replica `--remote` names, with its cache opened (`None` without
/// `--remote`).
pub fn replica(
    dir: &Path,
    a: &ReplicaArgs,
) -> anyhow::Result<Option<sydra_engine::remote::Replica>> {
    match &a.remote {
        Some(r) => open_replica(dir, a, r).map(Some),
        None => Ok(None),
    }
}

/// Say on standard error what a replica's reads cost.
pub fn report_replica(r: &sydra_engine::remote::Replica) {
    let s = r.stats();
    eprintln!(
        "sydra: replica: {} request(s), {} byte(s) downloaded ({} object(s), {} WAL range(s)); cache holds {} byte(s), {} evicted",
        s.requests, s.bytes, s.objects, s.ranges, s.cache_bytes, s.evicted
    );
}

/// The replica `--remote` names, with its cache opened.
fn open_replica(
    dir: &Path,
    a: &ReplicaArgs,
    remote: &str,
) -> anyhow::Result<sydra_engine::remote::Replica> {
    let url = if remote.starts_with("s3://") {
        remote.to_owned()
    } else {
        let repo = sydra_engine::Repository::open(dir).map_err(|e| {
            crate::util::usage(format!(
                "--remote takes s3://BUCKET/PREFIX or the name of a remote recorded in the data directory ({e})"
            ))
        })?;
        let (_, url) = sydra_engine::remote::resolve_remote(&repo, remote)?;
        url.to_string()
    };
    if !url.starts_with("s3://") {
        return Err(crate::util::usage(
            "--remote reads S3 remotes (s3://BUCKET/PREFIX); clone or fetch a path or an HTTP remote",
        ));
    }
    let cache = match &a.cache {
        Some(c) => c.clone(),
        None => {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
                .ok_or_else(|| crate::util::usage("no XDG_CACHE_HOME or HOME: give --cache DIR"))?;
            let h = blake3::hash(url.as_bytes()).to_hex();
            base.join("sydra").join(format!("replica-{}", &h[..16]))
        }
    };
    let options = sydra_engine::remote::ReplicaOptions {
        cache_max_bytes: a.cache_max_bytes,
        engine: sydra_engine::Options {
            wal: sydra_engine::wal::WalOptions {
                sync: SyncMode::Never,
                ..Default::default()
            },
            ..Default::default()
        },
    };
    Ok(sydra_engine::Engine::open_remote(&url, &cache, options)?)
}

/// A query time: `…ns` for integer nanoseconds, else RFC 3339 or Unix
/// seconds.
pub fn query_time(s: &str) -> Result<i64, String> {
    sydra_engine::time::parse_query_time(s)
}

fn step(s: &str) -> Result<i64, String> {
    sydra_engine::time::parse_step(s)
}

fn agg(s: &str) -> Result<Agg, String> {
    s.parse()
}

/// A value as text: floats in Rust's shortest round-trip form, integers
/// and booleans plainly.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::F64(x) => format!("{x}"),
        Value::I64(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Str(s) => s.clone(),
        _ => String::new(),
    }
}

pub fn value_json(v: &Value) -> serde_json::Value {
    v.to_json()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn as_f64(v: &Value) -> f64 {
    v.as_f64()
}

/// One series to chart: its key and points as floats.
type Panel = (Arc<SeriesKey>, Vec<(i64, f64)>);

/// Writes rows as they come, series by series.
struct Sink<W: Write> {
    out: W,
    format: Format,
    /// The series of the open JSON object / chart panel.
    open: Option<Arc<SeriesKey>>,
    /// Width of the series column (table).
    width: usize,
    chart: Vec<Panel>,
    chart_points: usize,
    chart_dropped: usize,
    rows: u64,
    line: String,
}

impl<W: Write> Sink<W> {
    fn start(&mut self) -> io::Result<()> {
        match self.format {
            Format::Table => writeln!(
                self.out,
                "{:w$}  {:30}  value",
                "series",
                "time",
                w = self.width
            ),
            Format::Csv => writeln!(self.out, "series,field,time,value"),
            _ => Ok(()),
        }
    }

    fn close_json(&mut self) -> io::Result<()> {
        if self.format == Format::Json && self.open.take().is_some() {
            writeln!(self.out, "]}}")?;
        }
        Ok(())
    }

    fn rows(&mut self, key: &Arc<SeriesKey>, points: &[(i64, Value)]) -> anyhow::Result<()> {
        self.rows += points.len() as u64;
        match self.format {
            Format::Table => {
                let name = key.to_string();
                for (t, v) in points {
                    writeln!(
                        self.out,
                        "{name:w$}  {:30}  {}",
                        format_rfc3339(*t),
                        value_text(v),
                        w = self.width
                    )?;
                }
            }
            Format::Csv => {
                let series = csv_field(&key.series_string());
                let field = csv_field(key.field());
                for (t, v) in points {
                    writeln!(self.out, "{series},{field},{t},{}", value_text(v))?;
                }
            }
            Format::Lp => {
                for (t, v) in points {
                    self.line.clear();
                    lineproto::write_point(&mut self.line, key, *t, v)?;
                    self.out.write_all(self.line.as_bytes())?;
                }
            }
            Format::Json => {
                let mut first = true;
                if self.open.as_ref() != Some(key) {
                    self.close_json()?;
                    let head = serde_json::json!({
                        "series": key.series_string(),
                        "field": key.field(),
                    })
                    .to_string();
                    // Open the object and its points array; rows follow.
                    write!(self.out, "{},\"points\":[", &head[..head.len() - 1])?;
                    self.open = Some(key.clone());
                } else {
                    first = false;
                }
                for (t, v) in points {
                    if !first {
                        self.out.write_all(b",")?;
                    }
                    first = false;
                    write!(self.out, "[{t},{}]", value_json(v))?;
                }
            }
            Format::Chart => {
                if self.open.as_ref() != Some(key) {
                    self.open = Some(key.clone());
                    if self.chart.len() < CHART_MAX_SERIES {
                        self.chart.push((key.clone(), Vec::new()));
                    } else {
                        self.chart_dropped += 1;
                        return Ok(());
                    }
                }
                let Some((k, pts)) = self.chart.last_mut() else {
                    return Ok(());
                };
                if k != key {
                    return Ok(());
                }
                self.chart_points += points.len();
                if self.chart_points > CHART_MAX_POINTS {
                    anyhow::bail!(
                        "more than {CHART_MAX_POINTS} points to chart; aggregate them \
                         (--step DUR --agg mean) or narrow --from/--to"
                    );
                }
                pts.extend(points.iter().map(|(t, v)| (*t, as_f64(v))));
            }
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<u64> {
        self.close_json()?;
        if self.format == Format::Chart {
            for (key, pts) in &self.chart {
                let p = crate::chart::panel(&key.to_string(), pts, format_rfc3339);
                self.out.write_all(p.as_bytes())?;
            }
            if self.chart_dropped > 0 {
                writeln!(
                    self.out,
                    "({} more series not drawn; narrow the selector)",
                    self.chart_dropped
                )?;
            }
        }
        self.out.flush()?;
        Ok(self.rows)
    }
}

pub fn query(dir: &Path, a: QueryArgs) -> anyhow::Result<u8> {
    let sel = crate::series_cmds::selector(Some(&a.selector))?;
    let (from, to) = (a.from.unwrap_or(i64::MIN), a.to.unwrap_or(i64::MAX));
    if from > to {
        return Err(crate::util::usage("--from is after --to"));
    }
    let replica = replica(dir, &a.replica)?;
    let engine = match replica {
        Some(_) => None,
        None => Some(open_engine_reading(dir, a.as_of.as_deref())?),
    };
    let view = match (&replica, &engine) {
        (Some(r), _) => r.view(a.as_of.as_deref())?,
        (None, Some(e)) => e.view(a.as_of.as_deref())?,
        (None, None) => unreachable!("one of the two is opened above"),
    };
    let width = view
        .select(&sel)?
        .iter()
        .map(|(k, _)| k.to_string().chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 80);
    let mut sink = Sink {
        out: io::BufWriter::new(io::stdout().lock()),
        format: a.format,
        open: None,
        width,
        chart: Vec::new(),
        chart_points: 0,
        chart_dropped: 0,
        rows: 0,
        line: String::new(),
    };
    sink.start()?;
    let stats = match a.agg {
        Some(f) => {
            // Without --step, one bucket: the whole range, labelled by
            // --from (or the epoch when unbounded).
            let step = a.step.unwrap_or(WHOLE_RANGE);
            let mut it = view.aggregate(&sel, from, to, step, f)?;
            if a.raw {
                it = it.raw();
            }
            for r in it.by_ref() {
                let (key, mut buckets) = r?;
                if a.step.is_none() && from == i64::MIN {
                    buckets.iter_mut().for_each(|b| b.0 = 0);
                }
                sink.rows(&key, &buckets)?;
            }
            it.stats()
        }
        None => {
            let mut it = view.query(&sel, from, to)?;
            for b in it.by_ref() {
                let b = b?;
                sink.rows(&b.key, &b.points)?;
            }
            it.stats()
        }
    };
    let rows = sink.finish()?;
    if a.stats {
        eprintln!(
            "sydra: {rows} row(s) from {} series; segments: {} decoded, {} cached, {} from statistics, {} from rollups, {} pruned; {} head point(s)",
            stats.series,
            stats.segments_decoded,
            stats.segments_cached,
            stats.segments_from_stats,
            stats.segments_from_rollups,
            stats.segments_pruned,
            stats.head_points
        );
    }
    if let Some(r) = &replica {
        report_replica(r);
    }
    Ok(0)
}
