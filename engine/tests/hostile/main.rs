//! Hostile input: names that try to escape, trees with forbidden entries,
//! objects claiming huge lengths, symbolic links planted in the data
//! directory. Each is refused or handled without leaving the directory and
//! without allocating what the input claims.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Forged self-referencing commits and trees: walkers stop with an error.
mod cycles;
/// A 2,000-level tree through fsck, stats and gc: memory bounded.
mod deep;
/// FIFOs planted under every kind of store file: errors, never hangs.
mod fifo;
/// Untrusted lengths: a 100 GiB sparse file as a tree or commit.
mod lengths;

use std::os::unix::fs::symlink;
use std::process::Command;

use sydra_engine::objects::store::header::{Header, encode_file};
use sydra_engine::objects::{CommitRef, Kind, ObjectId, TreeRef};
use sydra_engine::refs::RefName;
use sydra_engine::{Engine, Error, Options, Repository};

fn sydra(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sydra"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

/// `sydra --dir DIR ARGS...`, not yet run.
fn sydra_cmd(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sydra"));
    c.arg("--dir").arg(dir).args(args);
    c
}

/// How long a command on a tiny store may take before the test calls it a
/// hang: generous (the machine may be loaded), and finite.
/// `SYDRA_TEST_DEADLINE_SECS` shortens it to watch a pre-fix build hang.
fn deadline() -> std::time::Duration {
    let secs = std::env::var("SYDRA_TEST_DEADLINE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    std::time::Duration::from_secs(secs)
}

/// Output kept per stream; the rest is read and dropped, so a command that
/// prints without end cannot exhaust the test's memory before it is killed.
const KEEP_OUTPUT: usize = 1 << 20;

/// Run `cmd` to completion, or kill it after [`deadline`] and fail the
/// test: a command that blocks or loops forever must not hang the test too.
fn run_with_deadline(cmd: Command) -> std::process::Output {
    run_measured(cmd, std::process::Stdio::null()).0
}

/// [`run_with_deadline`] with `stdin`, also returning the command's peak
/// RSS in bytes.
///
/// Linux folds the high-water mark of the memory a process had before
/// `exec` into the `ru_maxrss` it reports after, and a child spawned from
/// this test process starts from this process's memory (std spawns with
/// `vfork`): measured directly, every command would weigh at least as much
/// as the test binary's peak, which other tests running in parallel raise.
/// So the command is spawned by a small wrapper — this test binary run
/// again as [`measure_wrapper`], a fresh process whose memory is the
/// harness's few MiB — which reaps it with `wait4` and reports its status
/// and peak through files.
fn run_measured(cmd: Command, stdin: std::process::Stdio) -> (std::process::Output, u64) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::ExitStatusExt;
    let work = tempfile::tempdir().unwrap();
    let mut spec = Vec::new();
    spec.extend_from_slice(cmd.get_program().as_bytes());
    for a in cmd.get_args() {
        spec.push(0);
        spec.extend_from_slice(a.as_bytes());
    }
    std::fs::write(work.path().join("spec"), &spec).unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "measure_wrapper", "--test-threads=1", "-q"])
        .env(MEASURE_ENV, work.path())
        .stdin(stdin)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    let result = std::fs::read_to_string(work.path().join("result"))
        .unwrap_or_else(|e| panic!("the measuring wrapper ({status}) left no result: {e}"));
    let read = |name: &str| std::fs::read(work.path().join(name)).unwrap_or_default();
    let mut fields = result.split_whitespace();
    match (fields.next(), fields.next(), fields.next()) {
        (Some("exit"), Some(raw), Some(rss)) => (
            std::process::Output {
                status: std::process::ExitStatus::from_raw(raw.parse().unwrap()),
                stdout: read("stdout"),
                stderr: read("stderr"),
            },
            rss.parse().unwrap(),
        ),
        _ => panic!("{cmd:?}: {result}"),
    }
}

/// Where [`run_measured`] tells [`measure_wrapper`] its work directory.
const MEASURE_ENV: &str = "SYDRA_TEST_MEASURE_DIR";

/// Not a test of its own: the wrapper [`run_measured`] runs (a no-op
/// otherwise). Spawns the command in `spec` with this process's stdin,
/// keeps at most [`KEEP_OUTPUT`] of each output stream, kills it after
/// [`deadline`], and writes `exit <raw status> <peak RSS bytes>` (or why
/// not) to `result`.
#[test]
#[allow(unsafe_code)]
fn measure_wrapper() {
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    use std::process::Stdio;
    let Some(work) = std::env::var_os(MEASURE_ENV) else {
        return;
    };
    let work = std::path::PathBuf::from(work);
    let spec = std::fs::read(work.join("spec")).unwrap();
    let mut parts = spec.split(|&b| b == 0).map(std::ffi::OsStr::from_bytes);
    let mut cmd = Command::new(parts.next().unwrap());
    cmd.args(parts);
    #[expect(clippy::zombie_processes, reason = "reaped by wait4 below")]
    let mut child = cmd
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained on threads so a chatty child never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let mut piece = [0u8; 8192];
            while let Ok(n) = r.read(&mut piece) {
                if n == 0 {
                    break;
                }
                let room = KEEP_OUTPUT.saturating_sub(v.len()).min(n);
                v.extend_from_slice(&piece[..room]);
            }
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id() as libc::pid_t;
    let start = std::time::Instant::now();
    let deadline = deadline();
    let result = loop {
        let mut status: libc::c_int = 0;
        // SAFETY: plain-old-data out parameter, zero-initialised.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our unreaped child; the pointers are valid for
        // the call. WNOHANG: returns 0 while it runs.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(r >= 0, "wait4: {}", std::io::Error::last_os_error());
        if r == pid {
            // ru_maxrss is in KiB on Linux.
            break format!("exit {status} {}", usage.ru_maxrss as u64 * 1024);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break format!("did not finish within {deadline:?} (hung); killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::fs::write(work.join("stdout"), out.join().unwrap()).unwrap();
    std::fs::write(work.join("stderr"), err.join().unwrap()).unwrap();
    std::fs::write(work.join("result"), result).unwrap();
}

#[test]
fn ref_names_that_try_to_escape_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let (repo, _) = Repository::init(&data).unwrap();
    let blob = repo.objects().put(Kind::Blob, b"x").unwrap();
    let long = format!("refs/heads/{}", "a".repeat(5000));
    for bad in [
        "refs/../../etc/passwd",
        "refs/heads/../../../outside",
        "/etc/passwd",
        "refs/heads/a\u{1}b",
        "refs/heads/tab\there",
        "refs/heads/x.lock",
        "refs/heads/.hidden",
        "refs/heads/a//b",
        "refs/heads/",
        long.as_str(),
        "refs/heads/nul\0byte",
    ] {
        assert!(RefName::new(bad).is_err(), "{bad:?} accepted");
        if bad.contains('\0') {
            continue; // cannot be an argv string
        }
        let out = sydra(&data, &["update-ref", bad, &blob.to_hex()]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
    assert!(!dir.path().join("outside").exists() && !dir.path().join("etc").exists());
    // Nothing but the normal layout appeared.
    let mut names: Vec<String> = std::fs::read_dir(data.join("refs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["heads"]);
}

#[test]
fn trees_with_forbidden_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    Repository::init(&data).unwrap();
    for name in [&b".."[..], b".", b"a/b", b"", b"nul\0"] {
        let mut t = 1u32.to_le_bytes().to_vec();
        t.push(1);
        t.push(name.len() as u8);
        t.extend_from_slice(name);
        t.extend_from_slice(&[0; 32]);
        assert!(TreeRef::decode(&t).is_err(), "{name:?}");
        let f = dir.path().join("tree.bin");
        std::fs::write(&f, &t).unwrap();
        let out = sydra(
            &data,
            &["hash-object", "-w", "-t", "tree", f.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1), "{name:?} accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid tree"));
    }
}

#[test]
fn huge_claimed_lengths_are_errors_not_allocations() {
    // Payload counts.
    let mut t = u32::MAX.to_le_bytes().to_vec();
    t.extend_from_slice(&[1, 1, b'a']);
    assert!(TreeRef::decode(&t).is_err());
    let mut c = vec![0u8; 32];
    c.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(CommitRef::decode(&c).is_err());
    // A loose object whose header claims an exabyte.
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(dir.path().join("d")).unwrap();
    let id = ObjectId::compute(Kind::Blob, b"tiny");
    let mut bytes = encode_file(Kind::Blob, id, b"tiny");
    let huge = Header::raw(Kind::Blob, 1 << 60, id).encode();
    bytes[..huge.len()].copy_from_slice(&huge);
    let path = repo.objects().path_of(&id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let err = repo.objects().get(&id).unwrap_err().to_string();
    assert!(err.contains(&id.to_hex()), "{err}");
    assert!(repo.objects().stat(&id).is_err());
    // A WAL record claiming 4 GiB.
    let mut seg = sydra_engine::wal::record::segment_header(1).to_vec();
    seg.extend_from_slice(&u32::MAX.to_le_bytes());
    seg.extend_from_slice(&[0; 12]);
    assert!(matches!(
        sydra_engine::wal::record::parse_record(
            &seg,
            16,
            Some(1),
            true,
            sydra_engine::wal::record::SEGMENT_VERSION
        ),
        sydra_engine::wal::record::Step::Bad(_)
    ));
}

fn engine_err(dir: &std::path::Path) -> String {
    match Engine::open(dir, Options::default()) {
        Ok(_) => panic!("opened a directory with a planted symlink"),
        Err(e) => {
            assert!(matches!(e, Error::Symlink(_)), "{e}");
            e.to_string()
        }
    }
}

#[test]
fn symlinks_planted_in_the_data_directory_are_refused_or_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"do not read me").unwrap();
    let make = || {
        let d = tempfile::tempdir().unwrap();
        let e = Engine::create(d.path(), Options::default()).unwrap();
        e.append(b"r").unwrap();
        e.checkpoint(None, "c").unwrap();
        drop(e);
        d
    };
    // A shard directory pointing outside.
    let d = make();
    symlink(outside.path(), d.path().join("objects/zz")).unwrap();
    assert!(engine_err(d.path()).contains("objects/zz"));
    // A ref that is a link.
    let d = make();
    symlink(
        outside.path().join("secret"),
        d.path().join("refs/heads/evil"),
    )
    .unwrap();
    assert!(engine_err(d.path()).contains("refs/heads/evil"));
    // A refs subdirectory that is a link.
    let d = make();
    symlink(outside.path(), d.path().join("refs/snapshots")).unwrap();
    assert!(engine_err(d.path()).contains("refs/snapshots"));
    // A WAL segment that is a link.
    let d = make();
    symlink(
        outside.path().join("secret"),
        d.path().join("wal/00000000000000000099.wal"),
    )
    .unwrap();
    assert!(engine_err(d.path()).contains(".wal"));
    // The wal directory itself.
    let d = make();
    std::fs::rename(d.path().join("wal"), d.path().join("wal.real")).unwrap();
    symlink(d.path().join("wal.real"), d.path().join("wal")).unwrap();
    assert!(engine_err(d.path()).contains("wal"));
    // An object file replaced by a link: reads refuse to follow it, and a
    // re-put replaces the link itself, leaving the target untouched.
    let d = make();
    let repo = Repository::open(d.path()).unwrap();
    let id = repo.objects().put(Kind::Blob, b"victim").unwrap();
    let path = repo.objects().path_of(&id);
    std::fs::remove_file(&path).unwrap();
    symlink(outside.path().join("secret"), &path).unwrap();
    let err = repo.objects().get(&id).unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(repo.objects().put(Kind::Blob, b"victim").unwrap(), id);
    assert!(
        !std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read(outside.path().join("secret")).unwrap(),
        b"do not read me"
    );
    assert_eq!(&*repo.objects().get(&id).unwrap().data, b"victim");
}

#[test]
fn impossible_seqs_are_refused_not_overflowed() {
    let d = tempfile::tempdir().unwrap();
    drop(Engine::create(d.path(), Options::default()).unwrap());
    let seg = u64::MAX - 1;
    let mut bytes = sydra_engine::wal::record::segment_header(seg).to_vec();
    sydra_engine::wal::record::encode_record(&mut bytes, seg, b"x");
    std::fs::write(
        d.path()
            .join("wal")
            .join(sydra_engine::wal::record::segment_file_name(seg)),
        bytes,
    )
    .unwrap();
    let err = Engine::open(d.path(), Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&sydra_engine::wal::record::segment_file_name(seg)),
        "{err}"
    );
}
