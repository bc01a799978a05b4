use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn sydra(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sydra"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn sydra_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sydra"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// A data directory with a checkpoint, a snapshot and one garbage blob;
/// returns the garbage blob's id.
fn setup(dir: &Path) -> String {
    ok(&sydra(dir, &["init"]));
    let lines: String = (1..=40).map(|i| format!("record {i}\n")).collect();
    ok(&sydra_stdin(dir, &["wal", "append"], &lines));
    ok(&sydra(dir, &["checkpoint", "--applied-seq", "3"]));
    ok(&sydra(dir, &["snapshot", "s1"]));
    ok(&sydra_stdin(
        dir,
        &["hash-object", "-w", "--stdin"],
        "garbage\n",
    ))
    .trim()
    .to_owned()
}

fn object_path(dir: &Path, id: &str) -> std::path::PathBuf {
    dir.join("objects").join(&id[..2]).join(&id[2..])
}

/// The file holding object `id` and the offset of its first byte there: its
/// loose file, or the pack whose entry header names it.
fn object_home(dir: &Path, id: &str) -> (std::path::PathBuf, usize) {
    let loose = object_path(dir, id);
    if loose.exists() {
        return (loose, 0);
    }
    for e in fs::read_dir(dir.join("objects/pack")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "pack") {
            continue;
        }
        // Walk the entries: each is a loose object file (56-byte header
        // with the id at 16 and the stored length at 48, payload, CRC).
        let b = fs::read(&p).unwrap();
        let mut at = 16;
        while at + 56 <= b.len() - 32 {
            let hex: String = b[at + 16..at + 48]
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect();
            if hex == id {
                return (p, at);
            }
            let len = u64::from_le_bytes(b[at + 48..at + 56].try_into().unwrap()) as usize;
            at += 56 + len + 4;
        }
    }
    panic!("object {id} is neither loose nor packed");
}

#[test]
fn gc_fsck_and_stats_report_in_json_and_exit_0_on_a_sound_store() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let garbage = setup(dir);
    let f = sydra(dir, &["fsck", "--json"]);
    let v = json(&f);
    assert_eq!(f.status.code(), Some(0));
    assert_eq!(v["clean"], true);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);

    let s = json(&sydra(dir, &["stats", "--json"]));
    assert_eq!(s["unreachable"]["count"], 1);
    assert!(s["objects"]["count"].as_u64().unwrap() > 1);
    assert!(s["wal"]["segments"].as_u64().unwrap() >= 1);
    assert_eq!(s["refs"], 3);

    let dry = sydra(dir, &["gc", "--dry-run", "--grace", "0", "--json"]);
    assert_eq!(dry.status.code(), Some(0));
    let dry = json(&dry);
    assert!(object_path(dir, &garbage).exists());
    let real = json(&sydra(dir, &["gc", "--grace", "0", "--json"]));
    for key in [
        "reachable",
        "deleted",
        "bytes_freed",
        "kept_recent",
        "wal_segments_deleted",
    ] {
        assert_eq!(dry[key], real[key], "{key}");
    }
    assert_eq!(
        (dry["dry_run"].clone(), real["dry_run"].clone()),
        (Value::Bool(true), Value::Bool(false))
    );
    assert_eq!(real["deleted"], 1);
    assert!(!object_path(dir, &garbage).exists());
    // Default grace: a fresh garbage object is kept as recent.
    ok(&sydra_stdin(
        dir,
        &["hash-object", "-w", "--stdin"],
        "fresh garbage\n",
    ));
    let v = json(&sydra(dir, &["gc", "--json"]));
    assert_eq!(
        (v["deleted"].clone(), v["kept_recent"].clone()),
        (Value::from(0), Value::from(1))
    );
    // Two more commits on main: keeping one per ref cuts main's chain
    // (the snapshot keeps the first commit itself).
    ok(&sydra(dir, &["checkpoint"]));
    ok(&sydra(dir, &["checkpoint"]));
    let text = ok(&sydra(dir, &["gc", "--dry-run", "--retain", "1"]));
    assert!(text.contains("retention: 1 boundary commit"), "{text}");
    assert!(text.contains("would delete"), "{text}");
}

#[test]
fn fsck_names_damage_and_exits_1_and_gc_refuses_to_sweep_a_damaged_graph() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    setup(dir);
    let head = ok(&sydra(dir, &["show-ref"]))
        .lines()
        .find(|l| l.ends_with("refs/heads/main"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let tree = ok(&sydra(dir, &["ls-tree", &head]));
    // The `wal` subtree of the head commit.
    let wal_tree = tree
        .lines()
        .find(|l| l.ends_with("\twal"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    // Flip one byte of a reachable object (in the pack the checkpoint
    // wrote): fsck names it; gc keeps it.
    let (p, at) = object_home(dir, &wal_tree);
    let mut bytes = fs::read(&p).unwrap();
    bytes[at + 58] ^= 0x10;
    fs::write(&p, &bytes).unwrap();
    let out = sydra(dir, &["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&wal_tree), "{text}");
    let v = json(&sydra(dir, &["fsck", "--json"]));
    assert_eq!(v["clean"], false);
    let problems = v["problems"].as_array().unwrap();
    let file = p.file_name().unwrap().to_str().unwrap();
    assert!(
        problems
            .iter()
            .any(|q| q["path"].as_str().unwrap().contains(file)
                && q["message"].as_str().unwrap().contains(&wal_tree)),
        "{problems:?}"
    );
    let reached = problems
        .iter()
        .find(|q| q["id"] == wal_tree.as_str())
        .unwrap();
    assert!(
        reached["message"]
            .as_str()
            .unwrap()
            .contains("refs/heads/main -> commit")
            || reached["path"]
                .as_str()
                .unwrap()
                .contains("refs/heads/main -> commit"),
        "{reached}"
    );
    let gc = sydra(dir, &["gc", "--grace", "0"]);
    assert_eq!(
        gc.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    let err = String::from_utf8(gc.stderr).unwrap();
    assert!(err.contains("deleted nothing"), "{err}");
    assert_eq!(err.lines().count(), 1, "one sentence: {err}");
    assert!(p.exists());
    // Remove its pack entirely: the head commit, packed with it, is now
    // missing, named by the ref that reaches it.
    fs::remove_file(&p).unwrap();
    let idx = p.with_extension("idx");
    if idx.exists() {
        fs::remove_file(idx).unwrap();
    }
    let v = json(&sydra(dir, &["fsck", "--json"]));
    let problems = v["problems"].as_array().unwrap();
    let problem = problems
        .iter()
        .find(|q| q["check"] == "connectivity" && q["id"] == head.as_str())
        .unwrap_or_else(|| panic!("{problems:?}"));
    assert_eq!(
        problem["path"],
        format!("refs/heads/main -> object {head}").as_str()
    );
}

#[test]
fn a_corrupt_unreachable_object_is_kept_and_gc_exits_1() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let garbage = setup(dir);
    let p = object_path(dir, &garbage);
    let mut bytes = fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 7] ^= 0x01;
    fs::write(&p, &bytes).unwrap();
    let out = sydra(dir, &["gc", "--grace", "0", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["kept_corrupt"][0]["id"], garbage.as_str());
    assert!(p.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
    assert_eq!(sydra(dir, &["fsck"]).status.code(), Some(1));
}

#[test]
fn bad_durations_and_retention_are_usage_errors() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    ok(&sydra(dir, &["init"]));
    for args in [
        &["gc", "--grace", "5"][..],
        &["gc", "--grace", "1y"],
        &["gc", "--retain", "0"],
        &["gc", "--retain", "x"],
        &["fsck", "--reflog-expiry", "soon"],
    ] {
        let o = sydra(dir, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
    let o = sydra(&dir.join("nowhere"), &["fsck"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.join("nowhere").exists(), "fsck creates nothing");
    let o = sydra(&dir.join("nowhere"), &["gc"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.join("nowhere").exists(), "gc creates nothing");
}

#[test]
fn gc_needs_the_writer_lock_but_fsck_and_stats_run_beside_a_writer() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    setup(dir);
    let engine = sydra_engine::Engine::open(dir, sydra_engine::Options::default()).unwrap();
    let o = sydra(dir, &["gc"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("locked by another process"));
    ok(&sydra(dir, &["fsck"]));
    ok(&sydra(dir, &["stats"]));
    drop(engine);
    ok(&sydra(dir, &["gc"]));
}

#[test]
fn repack_folds_everything_into_one_pack_and_verify_pack_checks_it() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let garbage = setup(dir);
    ok(&sydra(dir, &["checkpoint"]));
    let before = json(&sydra(dir, &["stats", "--json"]));
    assert!(before["loose"]["count"].as_u64().unwrap() >= 1);
    let objects = before["objects"]["count"].as_u64().unwrap();

    let dry = json(&sydra(dir, &["repack", "--dry-run", "--json"]));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        json(&sydra(dir, &["stats", "--json"]))["loose"],
        before["loose"]
    );
    let r = json(&sydra(dir, &["repack", "--json"]));
    assert_eq!(r["packs_after"], 1, "{r}");
    assert_eq!(r["objects_written"], dry["objects_written"]);
    let after = json(&sydra(dir, &["stats", "--json"]));
    assert_eq!(after["loose"]["count"], 0);
    assert_eq!(after["packs"]["count"], 1);
    assert!(after["packed"]["count"].as_u64().unwrap() >= objects - 1);
    // Everything still reads, the garbage too (repack keeps every object).
    assert_eq!(
        ok(&sydra_stdin(dir, &["cat-file", "-p", &garbage], "")),
        "garbage\n"
    );
    assert_eq!(sydra(dir, &["fsck"]).status.code(), Some(0));

    let hash = r["new_pack"].as_str().unwrap().to_owned();
    let v = json(&sydra(dir, &["verify-pack", &hash[..10], "-v", "--json"]));
    assert_eq!(v["clean"], true);
    assert_eq!(
        v["entries"].as_array().unwrap().len() as u64,
        v["objects"].as_u64().unwrap()
    );
    let pack = dir.join(format!("objects/pack/pack-{hash}.pack"));
    let text = ok(&sydra(dir, &["verify-pack", pack.to_str().unwrap()]));
    assert!(text.ends_with("ok\n"), "{text}");
    // One flipped payload byte: verify-pack and fsck name the pack, exit 1.
    let mut bytes = fs::read(&pack).unwrap();
    let at = 16 + 56 + 3;
    bytes[at] ^= 0x40;
    fs::write(&pack, &bytes).unwrap();
    let bad = sydra(dir, &["verify-pack", &hash]);
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8(bad.stdout).unwrap();
    assert!(text.contains("entry at offset 16"), "{text}");
    let f = sydra(dir, &["fsck"]);
    assert_eq!(f.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&f.stdout).contains(&hash),
        "fsck names the pack"
    );
    // Unknown packs are one-sentence errors.
    let none = sydra(dir, &["verify-pack", "ffffffffff"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no pack file"));
}
