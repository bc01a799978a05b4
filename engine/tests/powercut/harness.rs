//! Filesystem images, loop devices, mounts and the cut itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::child::{Ack, CHILD_ENV, SOURCE_ENV, SOURCE_STEPS, source_snapshot};
use super::support::capability;
use super::verify::{Acked, verify};

fn sh(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Why the test cannot run here, if it cannot.
pub fn prerequisites(fss: &str) -> Result<(), String> {
    capability::root().map_err(|e| format!("{e}: loop devices and mount need it"))?;
    capability::tools(
        &["losetup", "mount", "umount"],
        "util-linux and mount provide them",
    )?;
    // The cut itself is `xfs_io -x -c shutdown`, on ext4 as on XFS.
    capability::tools(&["xfs_io"], "xfsprogs provides it")?;
    for fs in fss.split(',').filter(|s| !s.is_empty()) {
        let hint = match fs {
            "ext4" => "e2fsprogs provides it",
            "xfs" => "xfsprogs provides it",
            _ => "a package for that filesystem",
        };
        capability::tools(&[&format!("mkfs.{fs}")], hint)?;
    }
    // A loop device must actually be attachable.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let img = dir.path().join("probe.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).map_err(|e| e.to_string())?;
    let dev = sh(
        "losetup",
        &["-f", "--show", img.to_str().unwrap_or_default()],
    )
    .map_err(|e| format!("no loop device support: {e}"))?;
    let _ = sh("losetup", &["-d", &dev]);
    Ok(())
}

struct Mounted {
    dev: String,
    mnt: PathBuf,
}

impl Mounted {
    fn mount(img: &Path, mnt: &Path) -> Mounted {
        let dev = sh("losetup", &["-f", "--show", img.to_str().unwrap()]).unwrap();
        sh("mount", &[&dev, mnt.to_str().unwrap()]).unwrap();
        Mounted {
            dev,
            mnt: mnt.to_path_buf(),
        }
    }

    fn unmount(self) {
        for attempt in 0..50 {
            match sh("umount", &[self.mnt.to_str().unwrap()]) {
                Ok(_) => break,
                Err(e) if attempt == 49 => panic!("{e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let _ = sh("losetup", &["-d", &self.dev]);
        std::mem::forget(self);
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = sh("umount", &["-l", self.mnt.to_str().unwrap_or_default()]);
        let _ = sh("losetup", &["-d", &self.dev]);
    }
}

/// SIGSTOP `pid` and wait until all its threads are stopped.
fn freeze(pid: u32) {
    sh("kill", &["-STOP", &pid.to_string()]).unwrap();
    let tasks = PathBuf::from(format!("/proc/{pid}/task"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all_stopped = std::fs::read_dir(&tasks).map(|rd| {
            rd.filter_map(Result::ok).all(|t| {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                // The state follows the parenthesised command name.
                let state = stat
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next())
                    .unwrap_or("");
                matches!(state, "T" | "t" | "Z" | "X" | "")
            })
        });
        match all_stopped {
            Ok(true) | Err(_) => return,
            Ok(false) if Instant::now() > deadline => {
                panic!("child {pid} did not stop within 30 s")
            }
            Ok(false) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Add to the source the child fetches from (off the cut filesystem) a
/// snapshot per step: points for a few series and a checkpoint (once a
/// compaction first), so each of the cycle's fetches brings a pack and
/// WAL ranges.
fn grow_source(dir: &Path, cycle: u32) {
    use sydra_engine::series::{CompactOptions, SeriesKey, Value};
    use sydra_engine::wal::{SyncMode, WalOptions};
    let opts = sydra_engine::Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            segment_size: 256 << 10,
            max_record: 4096,
            ..WalOptions::default()
        },
        ..sydra_engine::Options::default()
    };
    let e = if cycle == 0 {
        sydra_engine::Engine::create(dir, opts).unwrap()
    } else {
        sydra_engine::Engine::open(dir, opts).unwrap()
    };
    let series: Vec<_> = (0..4)
        .map(|h| {
            let k = SeriesKey::new("fetched", [("h".to_string(), h.to_string())], "v").unwrap();
            e.series(&k).unwrap()
        })
        .collect();
    for step in 0..SOURCE_STEPS {
        let base = (u64::from(cycle) * SOURCE_STEPS + step) as i64 * 500;
        for t in base..base + 500 {
            let mut a = e.appender();
            for (h, s) in series.iter().enumerate() {
                let v = (t * 31 + h as i64) as f64 * 1.5;
                a.append(*s, t * 1_000_000_000, Value::F64(v)).unwrap();
            }
            a.commit().unwrap();
        }
        if step == 3 {
            e.compact(CompactOptions::default()).unwrap();
        }
        e.checkpoint(None, "source").unwrap();
        e.snapshot(Some(&source_snapshot(u64::from(cycle), step)))
            .unwrap();
    }
}

/// Totals of one run.
#[derive(Debug, Default)]
pub struct Totals {
    pub cycles: u32,
    pub records: u64,
    pub commits: u64,
    pub snapshots: u64,
    pub points: u64,
    pub fetches: u64,
}

pub fn run(fs: &str, cycles: u32) -> Totals {
    let work = tempfile::tempdir().unwrap();
    let img = work.path().join(format!("{fs}.img"));
    let mnt = work.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    std::fs::File::create(&img)
        .unwrap()
        .set_len(320 << 20)
        .unwrap();
    let force = if fs == "xfs" { "-f" } else { "-F" };
    sh(&format!("mkfs.{fs}"), &["-q", force, img.to_str().unwrap()]).unwrap();
    let mut acked = Acked::default();
    let mut totals = Totals::default();
    let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(cycles);
    let source = work.path().join("source");
    for cycle in 0..cycles {
        grow_source(&source, cycle);
        let m = Mounted::mount(&img, &mnt);
        let data = mnt.join("data");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "power_cut_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &data)
            .env("SYDRA_POWERCUT_SEED", format!("{cycle}"))
            .env(SOURCE_ENV, &source)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| Ack::parse(&l))
                .collect::<Vec<_>>()
        });
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let cut_after = Duration::from_millis(150 + rng % 900);
        let start = Instant::now();
        while start.elapsed() < cut_after {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // The power cut. First freeze the child and wait until every thread
        // has stopped: a real power cut ends the process at the same moment
        // as the disk, so no acknowledgment may be printed after the cut. (A
        // thread inside fdatasync stops when the call returns; an ack printed
        // before the freeze is for a sync that completed before the cut.)
        freeze(child.id());
        // Then the filesystem stops accepting I/O and its log is not
        // flushed, as if the machine lost power now.
        sh("xfs_io", &["-x", "-c", "shutdown", mnt.to_str().unwrap()]).unwrap();
        let _ = child.kill();
        child.wait().unwrap();
        acked.cycle = cycle;
        acked.absorb(reader.join().unwrap());
        m.unmount();
        // Power back: mount replays the journal.
        let m = Mounted::mount(&img, &mnt);
        let counts = verify(&mnt.join("data"), &acked, &source)
            .unwrap_or_else(|e| panic!("{fs} cycle {cycle}: {e}"));
        totals.fetches = acked.fetches;
        totals.records = counts.0;
        totals.commits = counts.1;
        totals.snapshots = counts.2;
        totals.points = counts.3;
        m.unmount();
        totals.cycles += 1;
    }
    totals
}
