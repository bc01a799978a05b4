//! The workload run under each fault, and the checks after reopening.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use std::num::NonZeroU64;
use sydra_engine::compaction::{ChangeSet, SegmentChange};
use sydra_engine::objects::fault::{self, Fault};
use sydra_engine::objects::{Kind, ObjectId};
use sydra_engine::refs::{PreviousValue, RefName};
use sydra_engine::section::KvSection;
use sydra_engine::wal::{SyncMode, WalOptions, list_segments, record::segment_file_name};

use sydra_engine::gc::{GcOptions, Keep};
use sydra_engine::{Engine, Error, Options};

pub struct Report {
    pub injected: u64,
    pub hits: BTreeSet<&'static str>,
}

#[derive(Default)]
struct Model {
    records: BTreeMap<u64, Vec<u8>>,
    main: Option<ObjectId>,
    snapshots: BTreeMap<String, ObjectId>,
    /// Per key: the acknowledged value, then values of failed later puts.
    section: BTreeMap<String, (Vec<u8>, Vec<Vec<u8>>)>,
}

fn opts() -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Always,
            segment_size: 4096,
            max_record: 1024,
            ..WalOptions::default()
        },
        ..Options::default()
    }
}

fn open(dir: &Path) -> Result<Engine, Error> {
    Engine::open(dir, opts())
}

fn create(dir: &Path) -> Result<Engine, Error> {
    Engine::create(dir, opts())
}

fn scratch() -> tempfile::TempDir {
    // The fault logic does not need a real disk; tmpfs keeps syncs cheap.
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("sydra-faults")
            .tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().unwrap()
}

fn record(i: u64) -> Vec<u8> {
    format!("rec-{i}-{}", "r".repeat((i % 40) as usize)).into_bytes()
}

/// Record an operation's outcome: an error must carry the injected OS
/// error or say the engine is poisoned; a sync failure must poison the
/// engine.
fn check_err(point: &str, what: &str, e: &Error, engine: Option<&Engine>) {
    let msg = e.to_string();
    assert!(
        msg.contains("Input/output error")
            || msg.contains("No space left")
            || msg.contains("poisoned"),
        "{point}: {what} failed without the injected error: {msg}"
    );
    if e.is_sync_failure()
        && let Some(eng) = engine
    {
        assert!(
            eng.poisoned().is_some(),
            "{point}: {what} hit a sync failure but the engine is not poisoned: {msg}"
        );
        let again = eng.append(b"after poison").unwrap_err();
        assert!(
            matches!(again, Error::Poisoned { .. }),
            "{point}: a poisoned engine accepted an append: {again}"
        );
    }
}

pub fn run(point: &'static str, fault: Fault) -> Report {
    fault::reset();
    let base = scratch();
    let dir = base.path().join("d");
    let mut m = Model::default();
    let mut n: u64 = 0;

    // Phase 1, no faults: a store with history.
    {
        let e = create(&dir).unwrap();
        for _ in 0..5 {
            n += 1;
            m.records.insert(e.append(&record(n)).unwrap(), record(n));
        }
        m.main = Some(e.checkpoint(None, "phase 1").unwrap().commit);
        let (name, id) = e.snapshot(Some("p1")).unwrap();
        m.snapshots.insert(name.as_str().into(), id);
        let set = ChangeSet {
            changes: vec![SegmentChange::Add(super::support::segment(
                "cpu",
                "h0",
                &[1],
            ))],
            applied_seq: None,
            message: "add".into(),
        };
        m.main = Some(
            e.commit_compaction(e.head().unwrap(), &set)
                .unwrap()
                .checkpoint
                .commit,
        );
        e.section("docs").unwrap().put("k0", b"v0").unwrap();
        m.section.insert("k0".into(), (b"v0".to_vec(), Vec::new()));
    }

    // Phase 2, with the fault armed.
    fault::arm(point, fault);
    let mut engine = match open(&dir) {
        Ok(e) => Some(e),
        Err(err) => {
            check_err(point, "open", &err, None);
            None
        }
    };
    if let Some(e) = engine.as_ref() {
        for _ in 0..10 {
            n += 1;
            match e.append(&record(n)) {
                Ok(seq) => {
                    m.records.insert(seq, record(n));
                }
                Err(err) => check_err(point, "append", &err, Some(e)),
            }
        }
        match e.repo().objects().put(Kind::Blob, b"a single durable put") {
            Ok(_) => {}
            Err(err) => check_err(point, "put", &err.into(), None),
        }
        let docs = e.section("docs").unwrap();
        let big = vec![7u8; 70 * 1024];
        for (key, value) in [
            ("big", big.clone()),
            ("k1", b"v1".to_vec()),
            ("k1", b"v1".to_vec()),
        ] {
            match docs.put(key, &value) {
                Ok(_) => {
                    m.section.insert(key.into(), (value, Vec::new()));
                }
                Err(err) => {
                    check_err(point, "section put", &err, Some(e));
                    if let Some(entry) = m.section.get_mut(key) {
                        entry.1.push(value);
                    }
                }
            }
        }
        if let Err(err) = docs.get("big", None) {
            check_err(point, "section get", &err, None);
        }
        match e.checkpoint(None, "phase 2") {
            Ok(c) => m.main = Some(c.commit),
            Err(err) => check_err(point, "checkpoint", &err, Some(e)),
        }
        match e.snapshot(Some("deep/p2")) {
            Ok((name, id)) => {
                m.snapshots.insert(name.as_str().into(), id);
            }
            Err(err) => check_err(point, "snapshot", &err, Some(e)),
        }
        match e.branch("b1", "main") {
            Ok((name, _)) => {
                if let Err(err) = e.repo().refs().delete(&name, PreviousValue::Any, "delete") {
                    check_err(point, "delete branch", &err.into(), None);
                }
            }
            Err(err) => check_err(point, "branch", &err, Some(e)),
        }
        let set = ChangeSet {
            changes: vec![SegmentChange::Replace(super::support::segment(
                "cpu",
                "h0",
                &[2],
            ))],
            applied_seq: None,
            message: "replace".into(),
        };
        match e.commit_compaction(e.head().unwrap(), &set) {
            Ok(c) => m.main = Some(c.checkpoint.commit),
            Err(err) => check_err(point, "compaction", &err, Some(e)),
        }
        let now = sydra_engine::now_ns() / 1_000_000_000 + 1;
        for round in 0..2 {
            if let Err(err) = e.repo().resolve(&format!("main@{{{now}}}")) {
                check_err(point, "time travel", &err, None);
            }
            if round == 0 {
                match e.checkpoint(None, "for the history index") {
                    Ok(c) => m.main = Some(c.commit),
                    Err(err) => check_err(point, "checkpoint", &err, Some(e)),
                }
            }
        }
        if let Err(err) = e.replay_head().and_then(|mut r| {
            while let Some(x) = r.next_record() {
                x?;
            }
            Ok(())
        }) {
            check_err(point, "replay", &err, None);
        }
    }
    // Close, leave the debris of a crash, reopen: recovery work under the fault.
    drop(engine.take());
    plant_crash_debris(&dir);
    engine = match open(&dir) {
        Ok(e) => Some(e),
        Err(err) => {
            check_err(point, "reopen", &err, None);
            None
        }
    };
    if let Some(e) = engine.as_ref() {
        for _ in 0..40 {
            n += 1;
            match e.append(&vec![b'x'; 200 + (n % 7) as usize]) {
                Ok(seq) => {
                    m.records.insert(seq, vec![b'x'; 200 + (n % 7) as usize]);
                }
                Err(err) => check_err(point, "append (rotating)", &err, Some(e)),
            }
        }
    }
    if let Some(e) = engine.as_ref() {
        // Apply everything, so GC may reclaim sealed WAL segments; leave a
        // stale temp file and an old empty shard directory for it too.
        match e.sync().and_then(|d| e.checkpoint(Some(d), "apply all")) {
            Ok(c) => m.main = Some(c.commit),
            Err(err) => check_err(point, "checkpoint (apply)", &err, Some(e)),
        }
        std::fs::write(dir.join("objects/tmp/obj-4000000001-9.tmp"), b"stale").unwrap();
        // A shard no object of this run landed in (ids depend on commit
        // times, so a fixed name would sometimes be taken and recent).
        let shard = (0..=255u8)
            .map(|b| dir.join(format!("objects/{b:02x}")))
            .find(|p| !p.exists())
            .expect("a free shard name among 256");
        std::fs::create_dir(&shard).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::open(&shard)
            .unwrap()
            .set_modified(old)
            .unwrap();
        if let Err(err) = e.retain(Keep::Commits(NonZeroU64::new(1000).unwrap())) {
            check_err(point, "retain", &err, Some(e));
        }
        let opts = GcOptions {
            grace: std::time::Duration::ZERO,
            ..GcOptions::default()
        };
        if let Err(err) = e.gc(&opts) {
            check_err(point, "gc", &err, Some(e));
        }
        // A repack of everything, loose objects included, under the fault.
        let repack = sydra_engine::objects::RepackOptions {
            all: true,
            loose: true,
            wait: true,
            ..Default::default()
        };
        if let Err(err) = e.repo().objects().repack(&repack) {
            check_err(point, "repack", &err.into(), None);
        }
    }
    // Replication under the fault: a clone (objects, refs, WAL ranges, the
    // remote record), then a GC of the clone after its refs are gone (its
    // stored ranges are no longer needed).
    let cloned = base.path().join("clone");
    match sydra_engine::remote::clone(dir.to_str().unwrap(), &cloned) {
        Ok(_) => {
            if let Ok(c) = open(&cloned) {
                for (name, _) in c.repo().refs().list("refs/").unwrap_or_default() {
                    let _ = c.repo().refs().delete(&name, PreviousValue::Any, "drop");
                }
                let opts = GcOptions {
                    grace: std::time::Duration::ZERO,
                    reflog_expiry: std::time::Duration::ZERO,
                    ..GcOptions::default()
                };
                if let Err(err) = c.gc(&opts) {
                    check_err(point, "gc of the clone", &err, Some(&c));
                }
            }
        }
        Err(err) => check_err(point, "clone", &err, None),
    }
    drop(engine.take());
    // A brand-new directory under the fault.
    match create(&base.path().join("fresh")) {
        Ok(e) => drop(e),
        Err(err) => check_err(point, "init", &err, None),
    }

    let injected = fault::injected();
    let hits = fault::hits();
    fault::reset();
    verify(point, &dir, &m);
    Report { injected, hits }
}

/// What a crash leaves: a torn record at the end of the last segment, an
/// empty segment file created just before the crash, and a temp object file
/// of a process that no longer exists.
fn plant_crash_debris(dir: &Path) {
    let wal = dir.join("wal");
    let segs = list_segments(&wal).unwrap();
    if let Some(&last) = segs.last() {
        let p = wal.join(segment_file_name(last));
        let mut b = std::fs::read(&p).unwrap();
        b.extend_from_slice(&[9, 0, 0, 0, 1, 2, 3]);
        std::fs::write(&p, b).unwrap();
        std::fs::write(wal.join(segment_file_name(u64::MAX / 2)), b"").unwrap();
    }
    std::fs::write(dir.join("objects/tmp/obj-4000000000-1.tmp"), b"partial").unwrap();
    // A crash between a pack's two renames (its index missing), and one
    // while a repack removed a pack (an index left alone).
    let packs = dir.join("objects/pack");
    if let Some(idx) = std::fs::read_dir(&packs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "idx"))
    {
        std::fs::remove_file(idx).unwrap();
    }
    std::fs::write(
        packs.join(format!("pack-{}.idx", "ab".repeat(32))),
        b"orphan",
    )
    .unwrap();
}

fn replay_applied(e: &Engine) -> u64 {
    let Some(h) = e.head().unwrap() else { return 0 };
    e.repo()
        .objects()
        .get(&h)
        .unwrap()
        .commit()
        .unwrap()
        .meta_u64("wal.applied_seq")
        .unwrap_or(0)
}

fn verify(point: &str, dir: &Path, m: &Model) {
    let e = open(dir).unwrap_or_else(|err| panic!("{point}: reopen without faults failed: {err}"));
    let replayed = super::support::replay_all(&e).unwrap_or_else(|err| panic!("{point}: {err}"));
    // Records at or below the head's applied seq are reflected in segments
    // (a landed checkpoint said so), not replayed.
    let applied = replay_applied(&e);
    for (seq, data) in m.records.range(applied + 1..) {
        assert_eq!(
            replayed.get(seq),
            Some(data),
            "{point}: acknowledged record {seq} lost or changed"
        );
    }
    assert!(
        super::support::on_main(&e, m.main.unwrap()).unwrap(),
        "{point}: acknowledged commit is no longer on main"
    );
    for (name, id) in &m.snapshots {
        let got = e
            .repo()
            .refs()
            .resolve(&RefName::new(name).unwrap())
            .unwrap();
        assert_eq!(got, Some(*id), "{point}: snapshot {name} changed");
    }
    let docs = e.section("docs").unwrap();
    for (key, (acked, later)) in &m.section {
        let got = docs.get(key, None).unwrap().unwrap_or_default();
        assert!(
            got == *acked || later.contains(&got),
            "{point}: section key {key} lost its acknowledged value"
        );
    }
    super::support::check_objects(&e).unwrap_or_else(|err| panic!("{point}: {err}"));
}
