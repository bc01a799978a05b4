use proptest::prelude::*;
use sydra_engine::Repository;
use sydra_engine::history;
use sydra_engine::objects::{Kind, ObjectId};
use sydra_engine::refs::{PreviousValue, RefName};

use super::common::commit;

/// A chain of commits with these timestamps on refs/heads/main.
fn chain(repo: &Repository, stamps: &[i64]) -> Vec<ObjectId> {
    let tree = repo.objects().put(Kind::Tree, &0u32.to_le_bytes()).unwrap();
    let mut ids: Vec<ObjectId> = Vec::new();
    for &ts in stamps {
        ids.push(commit(repo.objects(), tree, ids.last().copied(), ts));
    }
    let main = RefName::main_branch();
    repo.refs()
        .update(&main, *ids.last().unwrap(), PreviousValue::Any, "test")
        .unwrap();
    ids
}

fn check_all(repo: &Repository, tip: ObjectId, queries: &[i64]) {
    let main = RefName::main_branch();
    for &t in queries {
        let want = history::at_by_walk(repo, tip, t).unwrap();
        assert_eq!(history::at(repo, &main, t).unwrap(), want, "t={t}");
        let rev = format!(
            "main@{{{}.{:09}}}",
            t.div_euclid(1_000_000_000),
            t.rem_euclid(1_000_000_000)
        );
        match want {
            Some(id) => assert_eq!(repo.resolve(&rev).unwrap(), id),
            None => assert!(
                repo.resolve(&rev)
                    .unwrap_err()
                    .to_string()
                    .contains("no commit at or before")
            ),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn at_matches_a_first_parent_walk(
        mut steps in proptest::collection::vec(0i64..5_000_000_000, 1..60),
        monotonic in any::<bool>(),
        extra in proptest::collection::vec(0i64..5_000_000_000, 0..20),
        queries in proptest::collection::vec(-1_000_000_000i64..400_000_000_000, 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (repo, _) = Repository::init(dir.path()).unwrap();
        if monotonic {
            let mut acc = 1_000_000_000i64;
            for s in &mut steps { acc += *s; *s = acc; }
        } else {
            for s in &mut steps { *s += 1_000_000_000; }
        }
        let ids = chain(&repo, &steps);
        let mut qs = queries.clone();
        qs.extend(steps.iter().copied());
        qs.push(steps.iter().copied().min().unwrap() - 1);
        qs.push(i64::MAX);
        check_all(&repo, *ids.last().unwrap(), &qs);
        // Commits land: the index is extended, not rebuilt, and stays right.
        let tree = repo.objects().put(Kind::Tree, &0u32.to_le_bytes()).unwrap();
        let mut tip = *ids.last().unwrap();
        let mut last = *steps.last().unwrap();
        for e in extra {
            last += e;
            tip = commit(repo.objects(), tree, Some(tip), last);
        }
        repo.refs().update(&RefName::main_branch(), tip, PreviousValue::Any, "more").unwrap();
        history::clear_cache();
        check_all(&repo, tip, &qs);
        // Deleted index: rebuilt, same answers.
        let path = history::index_path(&repo, &RefName::main_branch());
        std::fs::remove_file(&path).unwrap();
        history::clear_cache();
        check_all(&repo, tip, &qs);
        // Corrupted index (header and entries): rebuilt, same answers.
        let mut b = std::fs::read(&path).unwrap();
        let n = b.len();
        for i in [5usize, 20, 70, n - 3, n / 2] { b[i.min(n - 1)] ^= 0x5a; }
        std::fs::write(&path, &b).unwrap();
        history::clear_cache();
        check_all(&repo, tip, &qs);
        // Truncated index.
        let b = std::fs::read(&path).unwrap();
        std::fs::write(&path, &b[..b.len() - 17]).unwrap();
        history::clear_cache();
        check_all(&repo, tip, &qs);
    }
}

#[test]
fn a_time_before_the_first_commit_is_no_such_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(dir.path()).unwrap();
    chain(&repo, &[10_000_000_000, 20_000_000_000]);
    let err = repo.resolve("main@{5}").unwrap_err().to_string();
    assert!(err.contains("no commit at or before"), "{err}");
    assert!(repo.resolve("main@{10}").is_ok());
}

/// Commits with these timestamps (seconds) on `name`, each with a message
/// naming the ref, so two refs never share a commit.
fn chain_on(repo: &Repository, name: &RefName, secs: &[i64]) -> Vec<ObjectId> {
    let tree = repo.objects().put(Kind::Tree, &0u32.to_le_bytes()).unwrap();
    let mut ids: Vec<ObjectId> = Vec::new();
    for &s in secs {
        let c = sydra_engine::objects::Commit {
            tree,
            parents: ids.last().copied().into_iter().collect(),
            timestamp: s * 1_000_000_000,
            message: format!("{name} at {s}"),
            ..Default::default()
        };
        ids.push(
            repo.objects()
                .put(Kind::Commit, &c.encode().unwrap())
                .unwrap(),
        );
    }
    repo.refs()
        .update(name, *ids.last().unwrap(), PreviousValue::Any, "test")
        .unwrap();
    ids
}

/// `refs/heads/x`'s index was once written through a temp file at
/// `index/history/refs/heads/x.tmp`: the live index of `refs/heads/x.tmp`,
/// truncated and overwritten while a lookup of that ref had it mapped (a
/// SIGBUS when the new content is shorter, a wrong answer otherwise).
#[test]
fn building_one_refs_history_index_never_touches_another_refs_index() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(dir.path()).unwrap();
    let x = RefName::new("refs/heads/x").unwrap();
    let x_tmp = RefName::new("refs/heads/x.tmp").unwrap();
    let xs = chain_on(&repo, &x, &[10, 20, 30]);
    let ts = chain_on(&repo, &x_tmp, &[11, 21, 31]);
    let at25 = 25 * 1_000_000_000;
    // x.tmp's index is built and kept mapped by this process first.
    assert_eq!(history::at(&repo, &x_tmp, at25).unwrap(), Some(ts[1]));
    assert_eq!(history::at(&repo, &x, at25).unwrap(), Some(xs[1]));
    assert_eq!(history::at(&repo, &x_tmp, at25).unwrap(), Some(ts[1]));
    // And as another process would find the files.
    history::clear_cache();
    assert_eq!(history::at(&repo, &x_tmp, at25).unwrap(), Some(ts[1]));
    assert_eq!(history::at(&repo, &x, at25).unwrap(), Some(xs[1]));
    let on_disk = std::fs::read(history::index_path(&repo, &x_tmp)).unwrap();
    assert_eq!(on_disk.len(), 64 + 3 * 40);
    assert_eq!(&on_disk[16..48], ts[2].as_bytes());
}

/// Rebuilds and extensions of indexes racing lookups of the same and of
/// neighbouring refs (`v1.2` and `v1.3` once shared the temp file
/// `v1.tmp`), each thread with its own `Repository`: no lookup may fail or
/// answer wrongly because another one rewrote an index.
#[test]
fn concurrent_index_rebuilds_never_fail_a_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(dir.path()).unwrap();
    let names = [
        RefName::new("refs/tags/v1.2").unwrap(),
        RefName::new("refs/tags/v1.3").unwrap(),
    ];
    let secs: Vec<i64> = (1..=60).map(|i| i * 10).collect();
    let chains: Vec<Vec<ObjectId>> = names.iter().map(|n| chain_on(&repo, n, &secs)).collect();
    let root = dir.path().to_path_buf();
    let failures = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // Moves both refs forward: every lookup after it extends an index.
        s.spawn(|| {
            let repo = Repository::open(&root).unwrap();
            let tree = repo.objects().put(Kind::Tree, &0u32.to_le_bytes()).unwrap();
            let mut tips: Vec<ObjectId> = chains.iter().map(|c| *c.last().unwrap()).collect();
            for i in 0..150i64 {
                for (name, tip) in names.iter().zip(tips.iter_mut()) {
                    let c = sydra_engine::objects::Commit {
                        tree,
                        parents: vec![*tip],
                        timestamp: (1_000 + i) * 1_000_000_000,
                        message: format!("{name} more {i}"),
                        ..Default::default()
                    };
                    let id = repo
                        .objects()
                        .put(Kind::Commit, &c.encode().unwrap())
                        .unwrap();
                    repo.refs()
                        .update(name, id, PreviousValue::MustExistAndMatch(*tip), "more")
                        .unwrap();
                    *tip = id;
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        // Throws the indexes away, forcing rebuilds.
        s.spawn(|| {
            let repo = Repository::open(&root).unwrap();
            for i in 0..300 {
                let name = &names[i % 2];
                let _ = std::fs::remove_file(history::index_path(&repo, name));
                history::clear_cache();
                if history::at(&repo, name, 255 * 1_000_000_000).is_err() {
                    failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        for r in 0..2usize {
            let (names, chains, failures, secs) = (&names, &chains, &failures, &secs);
            let root = &root;
            s.spawn(move || {
                let repo = Repository::open(root).unwrap();
                for i in 0..300usize {
                    let k = (i + r) % 2;
                    // Answers inside the first 60 commits never change as
                    // the refs grow.
                    let j = (i * 7 + r) % 60;
                    let t = secs[j] * 1_000_000_000 + 5;
                    match history::at(&repo, &names[k], t) {
                        Ok(got) => assert_eq!(got, Some(chains[k][j]), "{} at {t}", names[k]),
                        Err(e) => {
                            eprintln!("lookup of {} failed: {e}", names[k]);
                            failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(failures.into_inner(), 0);
}

#[test]
fn opening_the_engine_removes_history_temp_files_of_dead_processes_only() {
    let d = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(d.path()).unwrap();
    let tmp = history::temp_dir(&repo);
    std::fs::create_dir_all(&tmp).unwrap();
    // No pid reaches 10^9 (Linux's pid_max is at most 2^22).
    let dead = tmp.join("history-999999999-1.tmp");
    // A reader in another live process may be writing this one right now.
    let reader = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let live_other = tmp.join(format!("history-{}-1.tmp", reader.id()));
    for p in [&dead, &live_other] {
        std::fs::write(p, b"partial").unwrap();
    }
    drop(repo);
    let e = sydra_engine::Engine::open(d.path(), Default::default()).unwrap();
    assert!(e.open_report().temp_files_removed.contains(&dead));
    assert!(!dead.exists());
    assert!(
        live_other.exists(),
        "a live process's temp file was removed"
    );
    drop(e);
    let mut reader = reader;
    let _ = reader.kill();
    let _ = reader.wait();
}
