//! Plumbing commands: init, hash-object, cat-file, ls-tree, update-ref,
//! show-ref, check-ref-format.

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sydra_engine::Repository;
use sydra_engine::objects::{
    CommitRef, Durability, IdHasher, Kind, MAX_TREE_OR_COMMIT_LEN, ObjectId, TreeRef,
    store::MMAP_THRESHOLD, stream::read_payload,
};
use sydra_engine::refs::{PreviousValue, RefName, Target};

use crate::util::{quote_path, usage};

pub fn init(dir: &Path) -> anyhow::Result<u8> {
    let (_repo, created) = Repository::init(dir)?;
    let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    if created {
        println!(
            "Initialized empty Sydra data directory in {}",
            shown.display()
        );
    } else {
        println!(
            "Reinitialized existing Sydra data directory in {}",
            shown.display()
        );
    }
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct HashObject {
    /// Also write the objects into the store. All of them are durable when
    /// the command exits 0 (one sync pass for the whole batch).
    #[arg(short = 'w')]
    write: bool,
    /// Kind of object to create from the input (trees and commits are
    /// validated).
    #[arg(short = 't', default_value = "blob")]
    kind: Kind,
    /// Read one object from standard input.
    #[arg(long, conflicts_with = "stdin_paths")]
    stdin: bool,
    /// Read file paths from standard input, one per line.
    #[arg(long)]
    stdin_paths: bool,
    /// Files to hash.
    files: Vec<PathBuf>,
}

enum Input {
    Stdin,
    Path(PathBuf),
}

pub fn hash_object(dir: &Path, a: HashObject) -> anyhow::Result<u8> {
    let mut inputs = Vec::new();
    if a.stdin {
        inputs.push(Input::Stdin);
    }
    if a.stdin_paths {
        for line in io::stdin().lock().lines() {
            let line = line.context("cannot read paths from standard input")?;
            if !line.is_empty() {
                inputs.push(Input::Path(PathBuf::from(line)));
            }
        }
    }
    inputs.extend(a.files.into_iter().map(Input::Path));
    if inputs.is_empty() {
        return Err(usage(
            "hash-object needs --stdin, --stdin-paths or at least one FILE",
        ));
    }
    let repo = if a.write {
        Some(Repository::open(dir)?)
    } else {
        None
    };
    let mut batch = repo.as_ref().map(|r| r.objects().batch(Durability::Batch));
    let mut ids = Vec::with_capacity(inputs.len());
    for input in inputs {
        let (name, mut reader, len): (String, Box<dyn Read>, Option<u64>) = match input {
            Input::Stdin if a.kind == Kind::Blob => {
                let (reader, len) = spool_stdin().context("cannot read standard input")?;
                ("standard input".into(), reader, Some(len))
            }
            Input::Stdin => ("standard input".into(), Box::new(io::stdin().lock()), None),
            Input::Path(p) => {
                let f = File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
                let len = f
                    .metadata()
                    .with_context(|| format!("cannot stat {}", p.display()))?
                    .len();
                (p.display().to_string(), Box::new(f), Some(len))
            }
        };
        let small = len.is_none_or(|l| l < MMAP_THRESHOLD) || a.kind != Kind::Blob;
        let id = if small {
            let buf = if a.kind == Kind::Blob {
                // Below the mmap threshold (or standard input): the length
                // only sizes the first allocation, capped.
                let mut buf = Vec::with_capacity(len.unwrap_or(0).min(MMAP_THRESHOLD) as usize);
                reader
                    .read_to_end(&mut buf)
                    .with_context(|| format!("cannot read {name}"))?;
                buf
            } else {
                read_structured(a.kind, len, &mut reader, &name)?
            };
            validate(a.kind, &buf).with_context(|| format!("{name} is not a valid {}", a.kind))?;
            match batch.as_mut() {
                Some(b) => b.put(a.kind, &buf)?,
                None => ObjectId::compute(a.kind, &buf),
            }
        } else {
            let len = len.unwrap_or(0);
            match batch.as_mut() {
                Some(b) => b.put_reader(a.kind, len, reader)?,
                None => hash_stream(a.kind, len, &mut reader)
                    .with_context(|| format!("cannot read {name}"))?,
            }
        };
        ids.push(id);
    }
    if let Some(b) = batch {
        b.commit()?;
    }
    let mut out = BufWriter::new(io::stdout().lock());
    for id in ids {
        writeln!(out, "{id}")?;
    }
    out.flush()?;
    Ok(0)
}

/// Read a tree or commit payload without trusting a length: a file larger
/// than [`MAX_TREE_OR_COMMIT_LEN`] is refused before reading; otherwise
/// the payload is read as far as its own fields say and no further
/// ([`read_payload`]), so neither a sparse 100 GiB file nor an endless
/// standard input is held in memory.
fn read_structured(
    kind: Kind,
    declared: Option<u64>,
    r: &mut dyn Read,
    name: &str,
) -> anyhow::Result<Vec<u8>> {
    if let Some(len) = declared.filter(|&l| l > MAX_TREE_OR_COMMIT_LEN) {
        anyhow::bail!(
            "{name} is not a valid {kind}: it is {len} bytes, and a tree or commit is at most \
             {MAX_TREE_OR_COMMIT_LEN} bytes (docs/FORMAT.md)"
        );
    }
    read_payload(kind, r, MAX_TREE_OR_COMMIT_LEN).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => anyhow::anyhow!("{name} is not a valid {kind}: {e}"),
        _ => anyhow::Error::new(e).context(format!("cannot read {name}")),
    })
}

fn validate(kind: Kind, bytes: &[u8]) -> anyhow::Result<()> {
    match kind {
        Kind::Blob => {}
        Kind::Tree => {
            TreeRef::decode(bytes)?;
        }
        Kind::Commit => {
            CommitRef::decode(bytes)?;
        }
    }
    Ok(())
}

/// Standard input as a blob of known length without holding it whole: an
/// id covers the length before the first byte (FORMAT §2), so input that
/// reaches the mmap threshold is spooled to an unnamed temp file (`O_TMPFILE`
/// in the temp directory, gone when closed) and streamed from there like a
/// file; shorter input stays in memory.
fn spool_stdin() -> io::Result<(Box<dyn Read>, u64)> {
    let mut stdin = io::stdin().lock();
    let mut head = Vec::new();
    (&mut stdin).take(MMAP_THRESHOLD).read_to_end(&mut head)?;
    if (head.len() as u64) < MMAP_THRESHOLD {
        let len = head.len() as u64;
        return Ok((Box::new(io::Cursor::new(head)), len));
    }
    use rustix::fs::{Mode, OFlags};
    let tmp = std::env::temp_dir();
    let fd = rustix::fs::open(
        &tmp,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| {
        io::Error::other(format!(
            "cannot create an unnamed temp file in {} to spool it: {e}",
            tmp.display()
        ))
    })?;
    let mut f = File::from(fd);
    f.write_all(&head)?;
    drop(head);
    io::copy(&mut stdin, &mut f)?;
    let len = io::Seek::stream_position(&mut f)?;
    io::Seek::rewind(&mut f)?;
    Ok((Box::new(f), len))
}

fn hash_stream(kind: Kind, len: u64, r: &mut dyn Read) -> io::Result<ObjectId> {
    let mut h = IdHasher::new(kind, len);
    let mut buf = vec![0u8; 256 * 1024];
    let mut seen = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        seen += n as u64;
        h.update(&buf[..n]);
    }
    if seen != len {
        return Err(io::Error::other(format!(
            "file changed while reading ({len} bytes expected, {seen} read)"
        )));
    }
    Ok(h.finalize())
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["kind", "size", "pretty", "exists"])))]
pub struct CatFile {
    /// Print the kind.
    #[arg(short = 't')]
    kind: bool,
    /// Print the payload size in bytes.
    #[arg(short = 's')]
    size: bool,
    /// Print the content (trees and commits readably).
    #[arg(short = 'p')]
    pretty: bool,
    /// Exit 0 if the object exists and is valid, 1 otherwise; print nothing.
    #[arg(short = 'e')]
    exists: bool,
    /// The object: an id, a unique prefix, or a ref.
    object: String,
}

pub fn cat_file(dir: &Path, a: CatFile) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    if a.exists {
        let Ok(id) = repo.resolve(&a.object) else {
            return Ok(1);
        };
        return match repo.objects().get(&id) {
            Ok(_) => Ok(0),
            Err(e) if e.is_not_found() => Ok(1),
            Err(e) => {
                eprintln!("sydra: {e}");
                Ok(1)
            }
        };
    }
    let id = repo.resolve(&a.object)?;
    let mut out = BufWriter::new(io::stdout().lock());
    if a.kind || a.size {
        let st = repo.objects().stat(&id)?;
        if a.kind {
            writeln!(out, "{}", st.kind)?;
        } else {
            writeln!(out, "{}", st.size)?;
        }
    } else {
        let obj = repo.objects().get(&id)?;
        match obj.kind {
            Kind::Blob => out.write_all(&obj.data)?,
            Kind::Tree => {
                for e in obj.tree()?.entries {
                    writeln!(out, "{} {}\t{}", e.kind, e.id, quote_path(e.name))?;
                }
            }
            Kind::Commit => print_commit(&mut out, &obj.commit()?)?,
        }
    }
    out.flush()?;
    Ok(0)
}

/// A commit in readable form.
pub fn print_commit(out: &mut impl Write, c: &CommitRef<'_>) -> io::Result<()> {
    writeln!(out, "tree {}", c.tree)?;
    for p in &c.parents {
        writeln!(out, "parent {p}")?;
    }
    writeln!(out, "author {}", c.author)?;
    writeln!(
        out,
        "date {} ({} ns)",
        sydra_engine::time::format_rfc3339(c.timestamp),
        c.timestamp
    )?;
    if !c.branch.is_empty() {
        writeln!(out, "branch {}", c.branch)?;
    }
    for (k, v) in &c.meta {
        match std::str::from_utf8(v) {
            Ok(s) if !s.contains('\n') => writeln!(out, "meta {k} {s}")?,
            _ => writeln!(
                out,
                "meta {k} 0x{}",
                v.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )?,
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", c.message)
}

/// One entry to print: kind, full path, id.
type Listed = (Kind, String, ObjectId);

#[derive(Debug, clap::Args)]
pub struct LsTree {
    /// Recurse into subtrees, printing blobs with their full paths.
    #[arg(short = 'r')]
    recursive: bool,
    /// With -r, also print the subtrees themselves.
    #[arg(short = 't')]
    show_trees: bool,
    /// A tree, a commit or a ref.
    tree_ish: String,
}

pub fn ls_tree(dir: &Path, a: LsTree) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let root = repo.peel_to_tree(repo.resolve(&a.tree_ish)?)?;
    let mut out = BufWriter::new(io::stdout().lock());
    // Explicit stack of reversed entry lists, so deep trees cannot overflow.
    let mut stack: Vec<Vec<Listed>> = Vec::new();
    let load = |prefix: &str, id: ObjectId| -> anyhow::Result<Vec<Listed>> {
        // Verified: a forged tree containing itself must end `-r` with an
        // error naming it, not descend forever.
        let obj = repo.objects().get_verified(&id)?;
        let mut v: Vec<_> = obj
            .tree()?
            .entries
            .iter()
            .map(|e| {
                let p = if prefix.is_empty() {
                    e.name.to_owned()
                } else {
                    format!("{prefix}/{}", e.name)
                };
                (e.kind, p, e.id)
            })
            .collect();
        v.reverse();
        Ok(v)
    };
    stack.push(load("", root)?);
    while let Some(entries) = stack.last_mut() {
        let Some((kind, path, id)) = entries.pop() else {
            stack.pop();
            continue;
        };
        if kind == Kind::Tree && a.recursive {
            if a.show_trees {
                writeln!(out, "{kind} {id}\t{}", quote_path(&path))?;
            }
            let children = load(&path, id)?;
            stack.push(children);
        } else {
            writeln!(out, "{kind} {id}\t{}", quote_path(&path))?;
        }
    }
    out.flush()?;
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct UpdateRef {
    /// Delete the ref instead of setting it.
    #[arg(short = 'd')]
    delete: bool,
    /// Reflog message.
    #[arg(short = 'm', default_value = "update-ref")]
    message: String,
    /// Full ref name (refs/...) or HEAD (updates the ref HEAD points to).
    refname: String,
    /// NEW [OLD] when setting; [OLD] when deleting. OLD may be empty or all
    /// zeros to require that the ref does not exist yet.
    #[arg(num_args = 0..=2)]
    values: Vec<String>,
}

fn parse_old(repo: &Repository, old: Option<&String>) -> anyhow::Result<PreviousValue> {
    Ok(match old.map(String::as_str) {
        None => PreviousValue::Any,
        Some("") => PreviousValue::MustNotExist,
        Some(s) if s.bytes().all(|b| b == b'0') => PreviousValue::MustNotExist,
        Some(s) => match s.parse::<ObjectId>() {
            Ok(id) => PreviousValue::MustExistAndMatch(id),
            Err(_) => PreviousValue::MustExistAndMatch(repo.resolve(s)?),
        },
    })
}

pub fn update_ref(dir: &Path, a: UpdateRef) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let mut name = match RefName::new(&a.refname) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("sydra: {e}");
            return Ok(1);
        }
    };
    if let Some(Target::Symbolic(to)) = repo.refs().read(&name)? {
        name = to;
    }
    if a.delete {
        if a.values.len() > 1 {
            return Err(usage("update-ref -d takes REF [OLD]"));
        }
        let prev = parse_old(&repo, a.values.first())?;
        repo.refs().delete(&name, prev, &a.message)?;
    } else {
        let Some(new) = a.values.first() else {
            return Err(usage("update-ref needs REF NEW [OLD]"));
        };
        let new = repo.resolve(new)?;
        let prev = parse_old(&repo, a.values.get(1))?;
        repo.refs().update(&name, new, prev, &a.message)?;
    }
    Ok(0)
}

pub fn show_ref(dir: &Path) -> anyhow::Result<u8> {
    let repo = Repository::open(dir)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let mut any = false;
    for (name, target) in repo.refs().list("refs/")? {
        let id = match target {
            Target::Object(id) => Some(id),
            Target::Symbolic(_) => repo.refs().resolve(&name)?,
        };
        if let Some(id) = id {
            writeln!(out, "{id} {name}")?;
            any = true;
        }
    }
    out.flush()?;
    Ok(if any { 0 } else { 1 })
}

#[derive(Debug, clap::Args)]
pub struct CheckRefFormat {
    /// The full ref name to check.
    refname: String,
}

pub fn check_ref_format(a: CheckRefFormat) -> anyhow::Result<u8> {
    match RefName::new(&a.refname) {
        Ok(_) => Ok(0),
        Err(e) => {
            eprintln!("sydra: {e}");
            Ok(1)
        }
    }
}
