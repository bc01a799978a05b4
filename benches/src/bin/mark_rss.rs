//! Peak resident memory of one GC mark, measured in a process of its own so
//! the figure is not inflated by criterion or by other benches; beside it,
//! the peak RSS of `git rev-list --objects --all` over the same history.
//!
//! Builds the history of the `gc/mark` bench (`$SYDRA_BENCH_GC_OBJECTS`
//! objects shaped like a git repository, see `sydra_benches::gitlike`) on
//! tmpfs in a child process (so this process's heap holds nothing the mark
//! could reuse), opens it, resets the kernel's peak-RSS counter (`VmHWM`) through
//! `/proc/self/clear_refs`, marks from the refs with the options GC uses,
//! and reports the growth of the peak over the RSS before the mark per
//! reachable object (the visited set, the walk's stacks and the buffers of
//! the objects it reads). Then imports the same history into git and runs
//! `git rev-list --objects --all` under `/usr/bin/time -f %M` (whole-process
//! peak, pack mappings included). Prints one JSON object, also written to
//! `<target dir>/sydra-bench-results/gc_mark_rss.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use sydra_benches::gitlike::{self, Shape, git_available};
use sydra_benches::{gc_objects, memory_scratch, proc_status_kib, reset_peak_rss, write_result};

/// (peak RSS KiB, seconds, objects listed) of `git rev-list --objects
/// --all`, if `/usr/bin/time` and git are there.
fn git_rev_list_rss(git_dir: &Path) -> Option<(u64, f64, u64)> {
    let time = Path::new("/usr/bin/time");
    if !time.is_file() {
        return None;
    }
    let start = Instant::now();
    let out = Command::new(time)
        .args(["-f", "%M", "git"])
        .arg(format!("--git-dir={}", git_dir.display()))
        .args(["rev-list", "--objects", "--all"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    let seconds = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return None;
    }
    let listed = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib = stderr.lines().last()?.trim().parse().ok()?;
    Some((kib, seconds, listed))
}

fn main() {
    let n = gc_objects();
    let shape = Shape::for_objects(n);
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, dir] = args.as_slice()
        && flag == "--build"
    {
        gitlike::ensure_sydra(Path::new(dir), shape);
        return;
    }
    let (_tmp, root) = match gitlike::shared_dir(shape) {
        Some(d) => (None, d),
        None => {
            let t = memory_scratch("sydra-bench-mark-rss");
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    std::fs::create_dir_all(&root).unwrap();
    let data = root.join("sydra");
    if !gitlike::is_built(&data) {
        // Built by a child process, so this one's heap holds nothing of the
        // build that the mark could reuse (which would hide its growth).
        let st = Command::new(std::env::current_exe().unwrap())
            .arg("--build")
            .arg(&data)
            .status()
            .unwrap();
        assert!(st.success(), "building the history failed");
    }
    let refs = gitlike::open_sydra(&data);

    let reset = reset_peak_rss();
    let rss_before = proc_status_kib("VmRSS").unwrap_or(0);
    let start = Instant::now();
    let m = gitlike::gc_mark(&refs);
    let seconds = start.elapsed().as_secs_f64();
    let peak_mark = proc_status_kib("VmHWM").unwrap_or(0);
    let reached = m.reached.objects();
    assert_eq!(
        reached,
        shape.objects() as u64,
        "the mark must reach every object"
    );
    assert!(m.problems.is_empty());
    let set_bytes = m.set_bytes();
    drop(m);
    let per_object = peak_mark.saturating_sub(rss_before) as f64 * 1024.0 / reached as f64;

    let git = if git_available() {
        let git_dir = root.join("git");
        gitlike::ensure_git(&git_dir, shape);
        git_rev_list_rss(&git_dir)
    } else {
        None
    };
    let git_json = match git {
        Some((kib, secs, listed)) => format!(
            ", \"git_rev_list_peak_rss_kib\": {kib}, \"git_rev_list_seconds\": {secs:.4}, \
             \"git_rev_list_objects\": {listed}, \"git_bytes_per_object\": {:.1}",
            kib as f64 * 1024.0 / listed.max(1) as f64
        ),
        None => String::new(),
    };
    let json = format!(
        "{{\"objects\": {reached}, \"commits\": {}, \"fanout\": {}, \"files_per_leaf\": {}, \
         \"rss_before_kib\": {rss_before}, \"peak_rss_mark_kib\": {peak_mark}, \
         \"peak_reset\": {reset}, \"bytes_per_object\": {per_object:.1}, \
         \"set_bytes_per_object\": {:.1}, \"mark_seconds\": {seconds:.4}{git_json}}}",
        shape.commits(),
        shape.fanout,
        shape.files_per_leaf,
        set_bytes as f64 / reached as f64,
    );
    println!("{json}");
    write_result("gc_mark_rss", &format!("{json}\n"));
}
