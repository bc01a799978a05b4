//! `sydra`: the admin command for a Sydra data directory.
//!
//! Exit status: 0 success; 1 a failed check (fsck problems, an invalid ref
//! name, a missing object for `cat-file -e`) or an operation that failed;
//! 2 a usage error. Errors are one sentence on stderr.

mod admin;
mod chart;
mod demo;
mod engine_cmds;
mod pack_cmds;
mod plumbing;
mod query_cmd;
mod remote_cmds;
mod series_cmds;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sydra: a content-addressed, versioned storage engine for time series.
#[derive(Debug, Parser)]
#[command(name = "sydra", version, about, propagate_version = true)]
struct Cli {
    /// The data directory [default: $SYDRA_DIR, else ./sydra-data; for
    /// `demo`, ./sydra-demo].
    #[arg(long, global = true, env = "SYDRA_DIR", hide_env_values = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a data directory (idempotent).
    Init,
    /// Compute object ids, and with -w store the objects.
    HashObject(plumbing::HashObject),
    /// Show an object's kind, size or content, or test that it exists.
    CatFile(plumbing::CatFile),
    /// List a tree (given as a tree, commit or ref).
    LsTree(plumbing::LsTree),
    /// Set or delete a ref, optionally only if it has an expected value.
    UpdateRef(plumbing::UpdateRef),
    /// List refs as "<id> <refname>".
    ShowRef,
    /// Check that a name is a valid full ref name (exit 0) or not (exit 1).
    CheckRefFormat(plumbing::CheckRefFormat),
    /// Write-ahead log commands.
    #[command(subcommand)]
    Wal(engine_cmds::WalCommand),
    /// Commit the WAL's durable ranges to refs/heads/main; print the commit id.
    Checkpoint(engine_cmds::CheckpointArgs),
    /// Point refs/snapshots/NAME at the head (default NAME: the UTC time).
    Snapshot {
        /// Snapshot name.
        name: Option<String>,
    },
    /// Create refs/heads/NAME at FROM (default: refs/heads/main).
    Branch {
        /// Branch name.
        name: String,
        /// A ref or commit.
        from: Option<String>,
    },
    /// Show the first-parent history of a ref or commit.
    Log(engine_cmds::LogArgs),
    /// Stream WAL records not yet applied, in seq order.
    Replay(engine_cmds::ReplayArgs),
    /// Show the blob paths added, removed and modified between two trees,
    /// or with --series the points added, changed and removed per series.
    Diff(engine_cmds::DiffArgs),
    /// Delete unreachable objects and WAL segments (optionally setting a
    /// retention horizon first).
    Gc(admin::GcArgs),
    /// Verify every object, ref, reflog, reachable WAL chunk and
    /// connectivity; exit 1 when problems exist.
    Fsck(admin::FsckArgs),
    /// Objects by kind, loose and packed, refs, WAL, reachable vs
    /// unreachable.
    Stats(admin::StatsArgs),
    /// Fold loose objects and packs into one new pack (keeping every
    /// object), then delete what it replaced.
    Repack(pack_cmds::RepackArgs),
    /// Verify a pack and its index: every entry's framing, CRC, BLAKE3 and
    /// decoding, the trailer, and that the index agrees; exit 1 on damage.
    VerifyPack(pack_cmds::VerifyPackArgs),
    /// Write InfluxDB line protocol (files or standard input); exit 0 only
    /// when every point is durable.
    Write(series_cmds::WriteArgs),
    /// Print every point (or those of a revision, --as-of) as canonical
    /// line protocol (one field per line, tags sorted, ns timestamps),
    /// sorted by series and time.
    Export(series_cmds::ExportArgs),
    /// Points or aggregates of the selected series in a time range, live or
    /// as of a revision (--as-of), as a table, CSV, JSON, line protocol or a
    /// chart.
    Query(query_cmd::QueryArgs),
    /// List the series (or those of a revision, --as-of): key and type.
    Series(series_cmds::SeriesArgs),
    /// Move the head's points older than the newest block into segments
    /// (--all: every point) in one compaction commit.
    Compact(series_cmds::CompactArgs),
    /// Delete the selected series' points in a time range (default: all
    /// time) in one commit; earlier revisions keep them until GC.
    Delete(series_cmds::DeleteArgs),
    /// Copy a data directory (its objects, refs and the WAL ranges its
    /// commits replay) into a new one, recording the source as `origin`.
    Clone(remote_cmds::CloneArgs),
    /// Bring a remote's refs (all, or those named) and everything they
    /// need into refs/remotes/<name>/.
    Fetch(remote_cmds::FetchArgs),
    /// Send refs and everything they need to a remote; remote refs move by
    /// compare-and-swap, only forward unless --force.
    Push(remote_cmds::PushArgs),
    /// Record, forget and list remotes.
    #[command(subcommand)]
    Remote(remote_cmds::RemoteCommand),
    /// Serve this data directory over HTTP for fetch, clone and push (and
    /// GET /objects/<id>), until killed.
    Serve(remote_cmds::ServeArgs),
    /// The main job: an embedded time-series workload, end to end.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if util::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("sydra: {}", util::sentence(&e));
            ExitCode::from(util::exit_code(&e))
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Command::Clone(a) = cli.command {
        return remote_cmds::clone(a);
    }
    if let Command::Demo(a) = cli.command {
        return demo::demo(&cli.dir.unwrap_or_else(|| PathBuf::from("sydra-demo")), a);
    }
    let dir = cli.dir.unwrap_or_else(|| PathBuf::from("sydra-data"));
    match cli.command {
        Command::Init => plumbing::init(&dir),
        Command::HashObject(a) => plumbing::hash_object(&dir, a),
        Command::CatFile(a) => plumbing::cat_file(&dir, a),
        Command::LsTree(a) => plumbing::ls_tree(&dir, a),
        Command::UpdateRef(a) => plumbing::update_ref(&dir, a),
        Command::ShowRef => plumbing::show_ref(&dir),
        Command::CheckRefFormat(a) => plumbing::check_ref_format(a),
        Command::Wal(c) => engine_cmds::wal(&dir, c),
        Command::Checkpoint(a) => engine_cmds::checkpoint(&dir, a),
        Command::Snapshot { name } => engine_cmds::snapshot(&dir, name),
        Command::Branch { name, from } => engine_cmds::branch(&dir, name, from),
        Command::Log(a) => engine_cmds::log(&dir, a),
        Command::Replay(a) => engine_cmds::replay(&dir, a),
        Command::Diff(a) => engine_cmds::diff(&dir, a),
        Command::Gc(a) => admin::gc(&dir, a),
        Command::Fsck(a) => admin::fsck(&dir, a),
        Command::Stats(a) => admin::stats(&dir, a),
        Command::Repack(a) => pack_cmds::repack(&dir, a),
        Command::VerifyPack(a) => pack_cmds::verify_pack_cmd(&dir, a),
        Command::Write(a) => series_cmds::write(&dir, a),
        Command::Export(a) => series_cmds::export(&dir, a),
        Command::Compact(a) => series_cmds::compact(&dir, a),
        Command::Series(a) => series_cmds::series(&dir, a),
        Command::Delete(a) => series_cmds::delete(&dir, a),
        Command::Query(a) => query_cmd::query(&dir, a),
        Command::Fetch(a) => remote_cmds::fetch(&dir, a),
        Command::Push(a) => remote_cmds::push(&dir, a),
        Command::Remote(c) => remote_cmds::remote_cmd(&dir, c),
        Command::Serve(a) => remote_cmds::serve(&dir, a),
        Command::Demo(_) | Command::Clone(_) => Ok(0),
    }
}
