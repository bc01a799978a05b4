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
