//! Ad-hoc measurement of the mark's memory per reachable object.
//!
//! ```text
//! cargo run --release -p sydra-gc --example mark_memory -- build DIR 1000000
//! cargo run --release -p sydra-gc --example mark_memory -- mark DIR
//! cargo run --release -p sydra-gc --example mark_memory -- idset 1000000
//! cargo run --release -p sydra-gc --example mark_memory -- gc DIR
//! ```
//! `build` writes one commit whose tree holds N blobs in subtrees of 1000;
//! `mark` marks it and prints the growth of the process's peak RSS
//! (VmHWM, Linux) per reachable object; `idset` does the same for the
//! visited set alone; `gc` runs a whole collection (dry) and reports its
//! time and peak RSS growth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Instant;

use sydra_gc::{Horizon, IdSet, MarkOptions, NoProgress, NoVisitor, Origin, Roots, mark};
use sydra_objects::{Commit, Durability, Entry, Kind, ObjectId, Options, Store, Tree};
use sydra_refs::{PreviousValue, RefName, RefStore};

fn hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn open(dir: &Path) -> RefStore {
    let opts = Options {
        durability: Durability::None,
        ..Options::default()
    };
    let store = Store::create(dir.join("objects"), opts).unwrap();
    RefStore::open(dir, store).unwrap()
}

fn build(dir: &Path, n: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let refs = open(dir);
    let store = refs.objects();
    let t = Instant::now();
    let mut subtrees = Vec::new();
    let mut i = 0;
    while i < n {
        let mut batch = store.batch(Durability::None);
        let mut entries = Vec::new();
        for _ in 0..1000.min(n - i) {
            let id = batch
                .put(Kind::Blob, format!("blob {i}").as_bytes())
                .unwrap();
            entries.push(Entry {
                kind: Kind::Blob,
                name: format!("{i:08}"),
                id,
            });
            i += 1;
        }
        let tree = Tree::from_entries(entries).unwrap();
        let id = batch.put(Kind::Tree, &tree.encode()).unwrap();
        drop(batch.commit().unwrap());
        subtrees.push(Entry {
            kind: Kind::Tree,
            name: format!("d{:06}", subtrees.len()),
            id,
        });
    }
    let root = store
        .put(Kind::Tree, &Tree::from_entries(subtrees).unwrap().encode())
        .unwrap();
    let c = Commit {
        tree: root,
        message: "all".into(),
        ..Commit::default()
    };
    let id = store.put(Kind::Commit, &c.encode().unwrap()).unwrap();
    refs.update(&RefName::main_branch(), id, PreviousValue::Any, "build")
        .unwrap();
    println!("built {n} blobs in {:?}", t.elapsed());
}

fn run_mark(dir: &Path) {
    let refs = open(dir);
    let tip = refs.resolve(&RefName::main_branch()).unwrap().unwrap();
    let mut roots = Roots::new();
    roots.push(Origin::Ref(RefName::main_branch()), [tip]);
    let before = hwm_kib();
    let t = Instant::now();
    let m = mark(
        refs.objects(),
        &roots,
        &Horizon::none(),
        &MarkOptions::default(),
        &mut NoVisitor,
        &NoProgress,
    )
    .unwrap();
    let after = hwm_kib();
    let n = m.reached.objects();
    println!(
        "marked {n} objects in {:?}; VmHWM {before} -> {after} KiB: {:.1} bytes per object (visited set {:.1} bytes per object)",
        t.elapsed(),
        (after - before) as f64 * 1024.0 / n as f64,
        m.set_bytes() as f64 / n as f64
    );
}

fn run_idset(n: u64) {
    let before = hwm_kib();
    let mut s = IdSet::new();
    for i in 0..n {
        s.insert(ObjectId::compute(Kind::Blob, &i.to_le_bytes()))
            .unwrap();
    }
    let after = hwm_kib();
    println!(
        "{n} ids: VmHWM {before} -> {after} KiB: {:.1} bytes per id (heap {:.1})",
        (after - before) as f64 * 1024.0 / n as f64,
        s.heap_bytes() as f64 / n as f64
    );
}

fn run_gc(dir: &Path) {
    let refs = open(dir);
    let before = hwm_kib();
    let t = Instant::now();
    let opts = sydra_gc::GcOptions {
        dry_run: true,
        grace: std::time::Duration::ZERO,
        ..sydra_gc::GcOptions::default()
    };
    let r = sydra_gc::collect(&refs, &opts, &NoProgress).unwrap();
    let after = hwm_kib();
    let n = r.reachable.objects();
    println!(
        "gc (dry) over {n} reachable, {} unreachable objects in {:?}; VmHWM {before} -> {after} KiB: {:.1} bytes per reachable object",
        r.swept.unreachable,
        t.elapsed(),
        (after - before) as f64 * 1024.0 / n as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("build") => build(Path::new(&args[2]), args[3].parse().unwrap()),
        Some("mark") => run_mark(Path::new(&args[2])),
        Some("idset") => run_idset(args[2].parse().unwrap()),
        Some("gc") => run_gc(Path::new(&args[2])),
        _ => eprintln!("usage: mark_memory (build DIR N | mark DIR | idset N | gc DIR)"),
    }
}
