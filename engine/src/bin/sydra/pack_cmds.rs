//! Pack commands: `repack` and `verify-pack`.
//!
//! `repack` keeps every object (reachability is the GC's business): it
//! folds loose objects into one new pack and merges packs, then deletes
//! what the new pack replaced. It runs beside a live writer (the repack
//! lock is a `flock` on `objects/pack/`, and readers keep the packs they
//! have mapped).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;
use sydra_engine::Repository;
use sydra_engine::objects::pack::{self, Entry, verify_pack};
use sydra_engine::objects::{CommitRef, Kind, RepackOptions, TreeRef};

use crate::admin::{human, repack_json};

#[derive(Debug, clap::Args)]
pub struct RepackArgs {
    /// Merge only the smallest packs (so pack sizes form a geometric
    /// progression) instead of every pack into one.
    #[arg(long)]
    geometric: bool,
    /// Leave loose objects loose.
    #[arg(long)]
    no_loose: bool,
    /// Report what would be done; write and delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn repack(dir: &Path, a: RepackArgs) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let r = repo.objects().repack(&RepackOptions {
        all: !a.geometric,
        loose: !a.no_loose,
        dry_run: a.dry_run,
        wait: true,
    })?;
    let out = &mut io::stdout().lock();
    if a.json {
        let mut v = repack_json(&r);
        v["dry_run"] = json!(a.dry_run);
        writeln!(out, "{v}")?;
    } else {
        let verb = if a.dry_run { "would write" } else { "wrote" };
        match r.new_pack {
            Some(h) => writeln!(
                out,
                "{verb} pack-{} ({} objects, {}): {} loose object(s) packed, {} pack(s) merged",
                h.to_hex(),
                r.objects_written,
                human(r.bytes_written),
                r.loose_packed,
                r.packs_removed
            )?,
            None if a.dry_run && r.objects_written > 0 => writeln!(
                out,
                "{verb} one pack of {} objects: {} loose object(s), {} pack(s) merged",
                r.objects_written, r.loose_packed, r.packs_removed
            )?,
            None => writeln!(out, "nothing to repack")?,
        }
        writeln!(
            out,
            "packs: {} before, {} after; {} freed",
            r.packs_before,
            r.packs_after,
            human(r.bytes_freed.max(0) as u64)
        )?;
        if r.loose_corrupt > 0 {
            writeln!(
                out,
                "{} loose object(s) failed verification and were left alone; run `sydra fsck`",
                r.loose_corrupt
            )?;
        }
    }
    out.flush()?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct VerifyPackArgs {
    /// A pack file (`…/pack-<hash>.pack`), or the hash (or a unique
    /// prefix of it) of a pack in the data directory.
    pack: String,
    /// List every entry: id, kind, payload size, offset.
    #[arg(short, long)]
    verbose: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn find_pack(dir: &Path, arg: &str) -> anyhow::Result<PathBuf> {
    let p = PathBuf::from(arg);
    if p.is_file() {
        return Ok(p);
    }
    let packs = dir.join("objects").join(pack::PACK_DIR);
    let want = arg.trim_start_matches("pack-").trim_end_matches(".pack");
    let mut found = Vec::new();
    if want.len() >= 4 && want.bytes().all(|b| b.is_ascii_hexdigit()) {
        let rd = std::fs::read_dir(&packs)
            .with_context(|| format!("cannot list {}", packs.display()))?;
        for e in rd {
            let path = e?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some((h, "pack")) = pack::parse_file_name(name)
                && h.to_hex().starts_with(&want.to_ascii_lowercase())
            {
                found.push(path);
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => anyhow::bail!(
            "no pack file {arg} (neither a file nor a pack hash in {})",
            packs.display()
        ),
        n => anyhow::bail!("pack prefix {arg} is ambiguous ({n} packs)"),
    }
}

fn decode(e: &Entry, payload: &[u8]) -> Result<(), String> {
    let r = match e.kind {
        Kind::Tree => TreeRef::decode(payload).map(|_| ()),
        Kind::Commit => CommitRef::decode(payload).map(|_| ()),
        Kind::Blob => Ok(()),
    };
    r.map_err(|d| format!("its payload does not decode as a {}: {d}", e.kind))
}

pub fn verify_pack_cmd(dir: &Path, a: VerifyPackArgs) -> anyhow::Result<u8> {
    let path = find_pack(dir, &a.pack)?;
    let mut entries = Vec::new();
    let mut check = |e: &Entry, payload: &[u8]| {
        decode(e, payload)?;
        if a.verbose {
            entries.push((*e, payload.len()));
        }
        Ok(())
    };
    let v = verify_pack(&path, &mut check)?;
    let out = &mut io::stdout().lock();
    if a.json {
        writeln!(
            out,
            "{}",
            json!({
                "pack": path.display().to_string(),
                "clean": v.is_clean(),
                "objects": v.objects,
                "blobs": v.kinds[0].0,
                "trees": v.kinds[1].0,
                "commits": v.kinds[2].0,
                "bytes": v.bytes,
                "index_bytes": v.idx_bytes,
                "problems": v.problems,
                "entries": entries.iter().map(|(e, size)| json!({
                    "id": e.id.to_hex(),
                    "kind": e.kind.as_str(),
                    "size": size,
                    "offset": e.offset,
                })).collect::<Vec<_>>(),
            })
        )?;
    } else {
        for (e, size) in &entries {
            writeln!(
                out,
                "{} {:<6} {size:>10} {:>12}",
                e.id,
                e.kind.as_str(),
                e.offset
            )?;
        }
        for p in &v.problems {
            writeln!(out, "problem: {p}")?;
        }
        writeln!(
            out,
            "{}: {} objects ({} blobs, {} trees, {} commits), {} + {} index: {}",
            path.display(),
            v.objects,
            v.kinds[0].0,
            v.kinds[1].0,
            v.kinds[2].0,
            human(v.bytes),
            human(v.idx_bytes),
            if v.is_clean() { "ok" } else { "DAMAGED" }
        )?;
    }
    out.flush()?;
    Ok(if v.is_clean() { 0 } else { 1 })
}
