//! Replication commands: `clone`, `fetch`, `push`, `remote`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use sydra_engine::Repository;
use sydra_engine::remote::{self, Outcome, RefUpdate, Sync};

#[derive(Debug, clap::Args)]
pub struct CloneArgs {
    /// The source: a data directory (path), later `http://…` or `s3://…`.
    url: String,
    /// The new data directory (must not exist, or be empty).
    dir: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// A recorded remote's name, or a URL.
    #[arg(default_value = "origin")]
    remote: String,
    /// Refs to fetch (full names, or `main`, `heads/main`, a snapshot
    /// name); all when none.
    refs: Vec<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// A recorded remote's name, or a URL.
    #[arg(default_value = "origin")]
    remote: String,
    /// Refs to push; every `refs/heads/*` and `refs/snapshots/*` when none.
    refs: Vec<String>,
    /// Move remote refs even when that is not a fast-forward (history the
    /// remote has and this store does not is then no longer reachable
    /// there).
    #[arg(long)]
    force: bool,
    /// A file holding the bearer token an HTTP remote wants for pushes
    /// [default: $SYDRA_TOKEN].
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum RemoteCommand {
    /// Record a remote.
    Add {
        /// Its name (`origin`, `backup`, …).
        name: String,
        /// Its URL: a data directory (path), `http://…` or `s3://…`.
        url: String,
    },
    /// Forget a remote and delete its remote-tracking refs.
    Remove {
        /// Its name.
        name: String,
    },
    /// List the recorded remotes: name and URL.
    List,
}

fn outcome(o: &Outcome) -> (&'static str, Option<&str>) {
    match o {
        Outcome::Created => ("created", None),
        Outcome::FastForward => ("fast-forward", None),
        Outcome::Forced => ("forced", None),
        Outcome::UpToDate => ("up-to-date", None),
        Outcome::Rejected(why) => ("rejected", Some(why.as_str())),
    }
}

fn update_json(u: &RefUpdate) -> serde_json::Value {
    let (status, reason) = outcome(&u.outcome);
    json!({
        "from": u.from,
        "to": u.to,
        "old": u.old.map(|o| o.to_hex()),
        "new": u.new.to_hex(),
        "status": status,
        "reason": reason,
    })
}

fn print(s: &Sync, as_json: bool) -> anyhow::Result<u8> {
    let out = &mut io::stdout().lock();
    let rejected = s
        .updates
        .iter()
        .any(|u| matches!(u.outcome, Outcome::Rejected(_)));
    let t = &s.transfer;
    if as_json {
        writeln!(
            out,
            "{}",
            json!({
                "remote": s.remote,
                "commits": t.commits,
                "objects": t.objects,
                "bytes": t.bytes,
                "wal_ranges": t.ranges,
                "wal_range_bytes": t.range_bytes,
                "pack": t.pack.map(|p| p.to_hex()),
                "shallow": t.shallow.iter().map(|c| c.to_hex()).collect::<Vec<_>>(),
                "refs": s.updates.iter().map(update_json).collect::<Vec<_>>(),
                "requests": s.requests,
            })
        )?;
    } else {
        writeln!(
            out,
            "{}: {} commit(s), {} object(s) ({} B), {} WAL range(s) ({} B){}",
            s.remote,
            t.commits,
            t.objects,
            t.bytes,
            t.ranges,
            t.range_bytes,
            if s.requests > 0 {
                format!("; {} request(s)", s.requests)
            } else {
                String::new()
            }
        )?;
        for u in &s.updates {
            let (status, reason) = outcome(&u.outcome);
            let old = u.old.map_or("(none)".to_owned(), |o| o.short(12));
            write!(
                out,
                "  {status:<12} {old} -> {}  {} -> {}",
                u.new.short(12),
                u.from,
                u.to
            )?;
            if let Some(r) = reason {
                write!(out, ": {r}")?;
            }
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if rejected { 1 } else { 0 })
}

pub fn clone(a: CloneArgs) -> anyhow::Result<u8> {
    let (_, s) = remote::clone(&a.url, &a.dir)?;
    print(&s, a.json)
}

pub fn fetch(dir: &Path, a: FetchArgs) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let s = remote::fetch(&repo, &a.remote, &a.refs)?;
    print(&s, a.json)
}

pub fn push(dir: &Path, a: PushArgs) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let token = match &a.token_file {
        Some(f) => Some(read_token(f)?),
        None => std::env::var("SYDRA_TOKEN").ok(),
    };
    let s = remote::push_with_token(&repo, &a.remote, &a.refs, a.force, token.as_deref())?;
    print(&s, a.json)
}

fn read_token(f: &Path) -> anyhow::Result<String> {
    let t = std::fs::read_to_string(f)
        .map_err(|e| anyhow::anyhow!("cannot read the token file {}: {e}", f.display()))?;
    let t = t.trim().to_owned();
    if t.is_empty() {
        anyhow::bail!("the token file {} is empty", f.display());
    }
    Ok(t)
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: String,
    /// Serve fetches and clones only: refuse pushes and writes, take no
    /// lock (the directory's engine keeps running). Without it the server
    /// opens the engine: Prometheus remote write/read, InfluxDB `/write`
    /// and queries over HTTP.
    #[arg(long)]
    read_only: bool,
    /// A file holding the bearer token pushes and writes must present.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The largest push accepted, in bytes.
    #[arg(long, default_value_t = 16 << 30)]
    max_push_bytes: u64,
    /// Bytes of points the in-memory head may hold before the whole head
    /// is compacted; writes get 503 (retry) at twice this.
    #[arg(long, default_value_t = 1 << 30)]
    head_max_bytes: usize,
}

pub fn serve(dir: &Path, a: ServeArgs) -> anyhow::Result<u8> {
    let token = match &a.token_file {
        Some(f) => Some(read_token(f)?),
        None => None,
    };
    let server = sydra_engine::serve::start(
        dir,
        sydra_engine::serve::ServeOptions {
            listen: a.listen,
            read_only: a.read_only,
            token,
            max_push_bytes: a.max_push_bytes,
            engine: sydra_engine::Options {
                series_head_max_bytes: a.head_max_bytes,
                ..sydra_engine::Options::default()
            },
            ..sydra_engine::serve::ServeOptions::default()
        },
    )?;
    if let Some(engine) = server.engine() {
        crate::engine_cmds::report_open(&engine);
    }
    eprintln!(
        "sydra: serving {} on http://{}{}",
        dir.display(),
        server.addr(),
        if a.read_only { " (read-only)" } else { "" }
    );
    server.wait();
    Ok(0)
}

pub fn remote_cmd(dir: &Path, c: RemoteCommand) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    match c {
        RemoteCommand::Add { name, url } => remote::add_remote(&repo, &name, &url)?,
        RemoteCommand::Remove { name } => {
            if !remote::remove_remote(&repo, &name)? {
                anyhow::bail!("no remote named {name}");
            }
        }
        RemoteCommand::List => {
            let out = &mut io::stdout().lock();
            for (name, url) in remote::list_remotes(&repo)? {
                writeln!(out, "{name}\t{url}")?;
            }
        }
    }
    Ok(0)
}
