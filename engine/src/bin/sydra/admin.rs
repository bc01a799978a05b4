//! Maintenance commands: `gc`, `fsck`, `stats`.
//!
//! `gc` opens the engine (it takes the writer lock, so it never runs beside
//! another process's writer); `fsck` and `stats` are read-only and take no
//! lock. Progress bars go to stderr, only on a TTY and only once a pass has
//! run for a moment (small stores never flash a bar).

use std::cell::RefCell;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use sydra_engine::maintenance::{
    self, Finding, FsckOptions, FsckReport, GcOptions, GcSummary, Keep, Progress, RepoStats,
    StatsOptions,
};
use sydra_engine::{Engine, Options, Repository};

pub fn duration(s: &str) -> Result<Duration, String> {
    sydra_engine::gc::parse_duration(s).map_err(|e| e.to_string())
}

fn keep(s: &str) -> Result<Keep, String> {
    s.parse::<Keep>().map_err(|e| e.to_string())
}

#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Report what would be deleted; delete nothing and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep unreachable objects modified within this long before the GC
    /// began (`0`, `30s`, `15m`, `1h`, `7d`). This is what protects objects
    /// another process is writing right now. [default: 1h]
    #[arg(long, value_name = "DUR", value_parser = duration)]
    grace: Option<Duration>,
    /// First set the retention horizon: keep N commits, or DUR of history,
    /// on every ref's first-parent chain; older history is reclaimed.
    #[arg(long, value_name = "DUR|N", value_parser = keep)]
    retain: Option<Keep>,
    /// Reflog entries younger than this are roots. [default: 90d]
    #[arg(long, value_name = "DUR", value_parser = duration)]
    reflog_expiry: Option<Duration>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Collect an S3 remote instead of this directory: merge its newest
    /// small packs into one (sent again from this store), then delete the
    /// packs its manifest no longer lists once --grace has passed since
    /// they were uploaded or retired (a push uploads its pack before it
    /// lists it; a reader may hold the manifest before a repack).
    #[arg(long, value_name = "NAME|URL", conflicts_with_all = ["dry_run", "retain", "reflog_expiry"])]
    remote: Option<String>,
    /// With --remote: only delete; merge no packs.
    #[arg(long, requires = "remote")]
    no_repack: bool,
}

#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    /// Print one JSON object listing every problem and note.
    #[arg(long)]
    json: bool,
    /// Reflog entries younger than this are roots, as for gc. [default: 90d]
    #[arg(long, value_name = "DUR", value_parser = duration)]
    reflog_expiry: Option<Duration>,
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Progress bars on stderr when it is a TTY, shown only after a phase has
/// run for half a second.
struct Bars {
    enabled: bool,
    bar: RefCell<Option<(ProgressBar, Instant, bool)>>,
}

const SHOW_AFTER: Duration = Duration::from_millis(500);

impl Bars {
    fn new() -> Bars {
        Bars {
            enabled: io::stderr().is_terminal(),
            bar: RefCell::new(None),
        }
    }
}

impl Progress for Bars {
    fn phase(&self, name: &str, unit: &'static str, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
        let template = if total.is_some() {
            format!("{{msg}} [{{bar:40}}] {{pos}}/{{len}} {unit} ({{elapsed}})")
        } else {
            format!("{{spinner}} {{msg}}: {{pos}} {unit} ({{elapsed}})")
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar.set_message(name.to_owned());
        if let Some((old, _, _)) = self.bar.borrow_mut().replace((bar, Instant::now(), false)) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: u64) {
        if let Some((bar, started, shown)) = self.bar.borrow_mut().as_mut() {
            bar.inc(n);
            if !*shown && started.elapsed() >= SHOW_AFTER {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                *shown = true;
            }
        }
    }

    fn finish(&self) {
        if let Some((bar, _, _)) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}

/// `12 B`, `3.4 KiB`, `1.2 GiB`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

pub fn gc(dir: &Path, a: GcArgs) -> anyhow::Result<u8> {
    if let Some(remote) = &a.remote {
        return gc_remote(
            dir,
            remote,
            a.grace.unwrap_or(Duration::from_secs(3600)),
            !a.no_repack,
            a.json,
        );
    }
    // Refuses a directory that is not a data directory, creating nothing.
    let engine = Engine::open(dir, Options::default())?;
    let mut options = GcOptions {
        dry_run: a.dry_run,
        retain: a.retain,
        ..GcOptions::default()
    };
    if let Some(g) = a.grace {
        options.grace = g;
    }
    if let Some(e) = a.reflog_expiry {
        options.reflog_expiry = e;
    }
    let summary = engine.gc_with_progress(&options, &Bars::new())?;
    let out = &mut io::stdout().lock();
    if a.json {
        writeln!(out, "{}", gc_json(&summary))?;
    } else {
        print_gc(out, &summary, &options)?;
    }
    out.flush()?;
    let corrupt = &summary.objects.swept.kept_corrupt;
    if !corrupt.is_empty() {
        eprintln!(
            "sydra: {} unreachable object(s) are corrupt and were kept, not deleted (first: {} at {}); run `sydra fsck`",
            corrupt.len(),
            corrupt[0].id,
            corrupt[0].path.display()
        );
        return Ok(1);
    }
    Ok(0)
}

fn gc_json(s: &GcSummary) -> serde_json::Value {
    let o = &s.objects;
    let w = &o.swept;
    json!({
        "dry_run": o.dry_run,
        "roots": o.roots,
        "reachable": o.reachable.objects(),
        "reachable_bytes": o.reachable.bytes,
        "unreachable": w.unreachable + o.packs.objects_dropped,
        "deleted": w.deleted + o.packs.objects_dropped,
        "bytes_freed": w.bytes_freed,
        "packs": repack_json(&o.packs),
        "kept_recent": w.kept_recent,
        "kept_protected": w.kept_protected,
        "kept_corrupt": w.kept_corrupt.iter().map(|c| json!({
            "id": c.id.to_hex(),
            "path": c.path.display().to_string(),
            "reason": c.reason,
        })).collect::<Vec<_>>(),
        "temp_files_removed": w.temp_files_removed,
        "shard_dirs_removed": w.shard_dirs_removed,
        "wal_segments_deleted": s.wal.deleted.len(),
        "wal_bytes_freed": s.wal.bytes_freed,
        "wal_segments_kept_needed": s.wal.kept_needed,
        "head_applied_seq": s.wal.head_applied_seq,
        "reflog_cutoff_deferred": o.reflog_cutoff_deferred,
        "retention": o.horizon.since_ns().map(|since| json!({
            "since_ns": since,
            "boundaries": o.horizon.boundaries().iter().map(|b| b.to_hex()).collect::<Vec<_>>(),
            "set_now": o.retained,
        })),
    })
}

pub(crate) fn repack_json(r: &sydra_engine::objects::RepackReport) -> serde_json::Value {
    json!({
        "packs_before": r.packs_before,
        "packs_after": r.packs_after,
        "packs_removed": r.packs_removed,
        "loose_packed": r.loose_packed,
        "loose_corrupt": r.loose_corrupt,
        "objects_written": r.objects_written,
        "bytes_written": r.bytes_written,
        "objects_dropped": r.objects_dropped,
        "bytes_freed": r.bytes_freed,
        "packs_kept_recent": r.packs_kept_recent,
        "packs_kept_protected": r.packs_kept_protected,
        "new_pack": r.new_pack.map(|h| h.to_hex()),
        "busy": r.busy,
        "no_space": r.no_space,
    })
}

fn print_gc(out: &mut impl Write, s: &GcSummary, options: &GcOptions) -> io::Result<()> {
    let o = &s.objects;
    let w = &o.swept;
    let would = if o.dry_run { "would delete" } else { "deleted" };
    writeln!(
        out,
        "reachable: {} objects ({}) from {} roots",
        o.reachable.objects(),
        human(o.reachable.bytes),
        o.roots
    )?;
    writeln!(
        out,
        "unreachable: {} objects ({}); {would} {} ({} freed)",
        w.unreachable,
        human(w.unreachable_bytes),
        w.deleted,
        human(w.bytes_freed)
    )?;
    writeln!(
        out,
        "kept: {} within the {} grace period, {} written during the gc, {} corrupt",
        w.kept_recent,
        sydra_engine::gc::format_duration(options.grace),
        w.kept_protected,
        w.kept_corrupt.len()
    )?;
    let p = &o.packs;
    writeln!(
        out,
        "packs: {} of {} rewritten without {} unreachable object(s), {} loose object(s) packed, {} kept within the grace period{}",
        p.packs_removed,
        p.packs_before,
        p.objects_dropped,
        p.loose_packed,
        p.packs_kept_recent,
        if p.packs_kept_protected > 0 {
            format!(
                ", {} kept for objects reused during the gc",
                p.packs_kept_protected
            )
        } else {
            String::new()
        }
    )?;
    writeln!(
        out,
        "wal: {would} {} of {} segments ({}); {} wholly applied segment(s) kept for replay of reachable commits",
        s.wal.deleted.len(),
        s.wal.segments,
        human(s.wal.bytes_freed),
        s.wal.kept_needed
    )?;
    if w.temp_files_removed > 0 || w.shard_dirs_removed > 0 {
        writeln!(
            out,
            "cleanup: {} temp file(s) ({}), {} empty shard director(ies)",
            w.temp_files_removed,
            human(w.temp_bytes_freed),
            w.shard_dirs_removed
        )?;
    }
    if o.reflog_cutoff_deferred {
        writeln!(
            out,
            "note: the disk is full, so the reflog cutoff could not be recorded; reflog entries past it were kept as roots this time (run gc again once there is space)"
        )?;
    }
    if let Some(since) = o
        .horizon
        .since_ns()
        .filter(|_| o.retained || !o.horizon.boundaries().is_empty())
    {
        writeln!(
            out,
            "retention: {} boundary commit(s); reflog entries before {} no longer protect objects{}",
            o.horizon.boundaries().len(),
            sydra_engine::time::format_rfc3339(since),
            if o.retained {
                if o.dry_run {
                    " (computed, not written)"
                } else {
                    " (set now)"
                }
            } else {
                ""
            }
        )?;
    }
    Ok(())
}

fn finding_json(f: &Finding) -> serde_json::Value {
    json!({
        "check": f.check,
        "id": f.id.map(|i| i.to_hex()),
        "path": f.path,
        "message": f.message,
    })
}

pub fn fsck(dir: &Path, a: FsckArgs) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let mut options = FsckOptions::default();
    if let Some(e) = a.reflog_expiry {
        options.reflog_expiry = e;
    }
    let r = maintenance::fsck(&repo, &options, &Bars::new())?;
    let out = &mut io::stdout().lock();
    if a.json {
        writeln!(out, "{}", fsck_json(&r))?;
    } else {
        print_findings(out, "problem", &r.problems)?;
        print_findings(out, "note", &r.notes)?;
        let objects = r.objects();
        writeln!(
            out,
            "checked {} objects ({}; {} blobs, {} trees, {} commits), {} refs, {} reflogs; {} reachable; {} problem(s)",
            objects.count + r.corrupt,
            human(objects.bytes),
            r.blobs.count,
            r.trees.count,
            r.commits.count,
            r.refs,
            r.reflogs,
            r.reachable.objects(),
            r.problems.len()
        )?;
    }
    out.flush()?;
    Ok(if r.is_clean() { 0 } else { 1 })
}

/// Findings of one check beyond this many are summarised: an interrupted
/// bulk import can leave thousands of temp files, and a line each would bury
/// everything else. `--json` always lists every finding.
const LIST_PER_CHECK: usize = 10;
/// How many of a summarised check's findings are still shown.
const EXAMPLES_PER_CHECK: usize = 3;

/// Print findings grouped by check, in the order each check first appears:
/// a check with at most [`LIST_PER_CHECK`] findings in full, a larger one as
/// [`EXAMPLES_PER_CHECK`] examples and a count.
fn print_findings(out: &mut impl Write, label: &str, findings: &[Finding]) -> io::Result<()> {
    let mut checks: Vec<&str> = Vec::new();
    for f in findings {
        if !checks.contains(&f.check) {
            checks.push(f.check);
        }
    }
    for check in checks {
        let group: Vec<&Finding> = findings.iter().filter(|f| f.check == check).collect();
        let shown = if group.len() > LIST_PER_CHECK {
            EXAMPLES_PER_CHECK
        } else {
            group.len()
        };
        for f in &group[..shown] {
            writeln!(out, "{label}: {f}")?;
        }
        if shown < group.len() {
            writeln!(
                out,
                "{label}: {check}: {} more like these ({} {check} {label}s in all; `sydra fsck --json` lists every one)",
                group.len() - shown,
                group.len()
            )?;
        }
    }
    Ok(())
}

fn fsck_json(r: &FsckReport) -> serde_json::Value {
    let objects = r.objects();
    json!({
        "clean": r.is_clean(),
        "objects": objects.count + r.corrupt,
        "bytes": objects.bytes,
        "blobs": r.blobs.count,
        "trees": r.trees.count,
        "commits": r.commits.count,
        "corrupt": r.corrupt,
        "packs": r.packs,
        "refs": r.refs,
        "reflogs": r.reflogs,
        "reachable": r.reachable.objects(),
        "problems": r.problems.iter().map(finding_json).collect::<Vec<_>>(),
        "notes": r.notes.iter().map(finding_json).collect::<Vec<_>>(),
    })
}

pub fn stats(dir: &Path, a: StatsArgs) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let s = maintenance::stats(&repo, &StatsOptions::default(), &Bars::new())?;
    let out = &mut io::stdout().lock();
    if a.json {
        writeln!(out, "{}", stats_json(&s))?;
    } else {
        print_stats(out, &s)?;
    }
    out.flush()?;
    Ok(0)
}

fn tally(t: sydra_engine::gc::Tally) -> serde_json::Value {
    json!({ "count": t.count, "bytes": t.bytes })
}

fn stats_json(s: &RepoStats) -> serde_json::Value {
    let o = &s.objects;
    json!({
        "objects": tally(o.objects()),
        "blobs": tally(o.blobs),
        "trees": tally(o.trees),
        "commits": tally(o.commits),
        "unreadable": tally(o.unreadable),
        "loose": tally(o.loose),
        "packed": tally(o.packed),
        "packs": { "count": o.packs.count, "bytes": o.packs.bytes, "index_bytes": o.pack_index_bytes },
        "refs": o.refs,
        "reflogs": o.reflogs,
        "temp_files": tally(o.temp_files),
        "retention_boundaries": o.horizon_boundaries,
        "reachable": o.reachable.map(tally),
        "unreachable": o.unreachable.map(tally),
        "damaged_reachable": o.damaged_reachable,
        "wal": {
            "segments": s.wal.segments,
            "bytes": s.wal.bytes,
            "first_seq": s.wal.first_seq,
            "newest_segment": s.wal.newest_segment,
            "head_applied_seq": s.wal.head_applied_seq,
            "wholly_applied_segments": s.wal.wholly_applied,
        },
    })
}

fn print_stats(out: &mut impl Write, s: &RepoStats) -> io::Result<()> {
    let o = &s.objects;
    let row = |out: &mut dyn Write, name: &str, t: sydra_engine::gc::Tally| {
        writeln!(out, "{name:<12} {:>12} {:>12}", t.count, human(t.bytes))
    };
    writeln!(out, "{:<12} {:>12} {:>12}", "objects", "count", "size")?;
    row(out, "  blobs", o.blobs)?;
    row(out, "  trees", o.trees)?;
    row(out, "  commits", o.commits)?;
    if o.unreadable.count > 0 {
        row(out, "  unreadable", o.unreadable)?;
    }
    row(out, "  total", o.objects())?;
    row(out, "  loose", o.loose)?;
    row(out, "  packed", o.packed)?;
    writeln!(
        out,
        "packs        {:>12} {:>12}  (+ {} of indexes)",
        o.packs.count,
        human(o.packs.bytes),
        human(o.pack_index_bytes)
    )?;
    if let (Some(r), Some(u)) = (o.reachable, o.unreachable) {
        row(out, "reachable", r)?;
        row(out, "unreachable", u)?;
    }
    if o.temp_files.count > 0 {
        row(out, "temp files", o.temp_files)?;
    }
    writeln!(out, "refs         {:>12}", o.refs)?;
    writeln!(out, "reflogs      {:>12}", o.reflogs)?;
    if o.horizon_boundaries > 0 {
        writeln!(
            out,
            "retention    {:>12} boundary commit(s)",
            o.horizon_boundaries
        )?;
    }
    writeln!(
        out,
        "wal          {:>12} {:>12}  (head applied through seq {}; {} wholly applied sealed segment(s))",
        s.wal.segments,
        human(s.wal.bytes),
        s.wal.head_applied_seq,
        s.wal.wholly_applied
    )?;
    if o.damaged_reachable > 0 {
        writeln!(
            out,
            "warning: {} reachable object(s) are missing or unreadable; run `sydra fsck`",
            o.damaged_reachable
        )?;
    }
    Ok(())
}

#[cfg(feature = "s3")]
fn gc_remote(
    dir: &Path,
    remote: &str,
    grace: Duration,
    repack: bool,
    json: bool,
) -> anyhow::Result<u8> {
    use sydra_engine::remote::Repack;
    let repo = sydra_engine::Repository::open(dir)?;
    let r = sydra_engine::remote::gc_remote(&repo, remote, grace, repack)?;
    let (merged, note) = match &r.repack {
        Some(Repack::Merged {
            packs,
            bytes_before,
            bytes_after,
            name,
        }) => (
            serde_json::json!({
                "packs": packs,
                "bytes_before": bytes_before,
                "bytes_after": bytes_after,
                "into": name,
            }),
            format!(
                "merged its {packs} newest packs ({bytes_before} bytes) into {name} ({bytes_after} bytes)"
            ),
        ),
        Some(Repack::Skipped(why)) => (
            serde_json::json!({ "skipped": why }),
            format!("did not repack: {why}"),
        ),
        Some(Repack::Nothing) => (
            serde_json::Value::Null,
            "its packs need no merging".to_owned(),
        ),
        None => (serde_json::Value::Null, "repack not asked".to_owned()),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "remote": remote,
                "repacked": merged,
                "packs_listed": r.listed,
                "deleted": r.deleted,
                "kept_within_grace": r.young,
                "requests": r.requests,
            })
        );
    } else {
        println!(
            "{remote}: {note}; {} pack(s) in the bucket; deleted {} object(s) the manifest does not list; kept {} younger than the grace period ({} request(s))",
            r.listed, r.deleted, r.young, r.requests
        );
    }
    Ok(0)
}

#[cfg(not(feature = "s3"))]
fn gc_remote(_: &Path, remote: &str, _: Duration, _: bool, _: bool) -> anyhow::Result<u8> {
    anyhow::bail!("{remote}: this build has no S3 support (the s3 feature)")
}
