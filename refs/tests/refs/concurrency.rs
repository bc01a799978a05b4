use std::sync::{Barrier, Mutex};
use std::thread;

use sydra_objects::ObjectId;
use sydra_refs::{Error, PreviousValue, RefName};

use crate::common::Fixture;

const THREADS: usize = 8;
const ROUNDS: usize = 25;

/// Every round, all threads read the same current value, then all try to
/// swap it for their own commit. Exactly one may win; the others see the
/// lock held (Locked, retried) and finally the winner's value (Mismatch).
#[test]
fn compare_and_swap_race_has_one_winner_per_round() {
    let f = Fixture::new();
    let main = RefName::main_branch();
    let seed = f.commit("seed");
    f.refs
        .update(&main, seed, PreviousValue::MustNotExist, "seed")
        .unwrap();
    let commits: Vec<Vec<ObjectId>> = (0..THREADS)
        .map(|t| {
            (0..ROUNDS)
                .map(|r| f.commit(&format!("t{t} r{r}")))
                .collect()
        })
        .collect();

    let barrier = Barrier::new(THREADS);
    // Per round: the winning commit(s) and the number of losers.
    let winners: Mutex<Vec<Vec<ObjectId>>> = Mutex::new(vec![Vec::new(); ROUNDS]);
    let losers: Mutex<Vec<usize>> = Mutex::new(vec![0; ROUNDS]);
    thread::scope(|s| {
        for mine in &commits {
            let (f, main, barrier, winners, losers) = (&f, &main, &barrier, &winners, &losers);
            s.spawn(move || {
                for (round, &new) in mine.iter().enumerate() {
                    barrier.wait();
                    let current = f.refs.resolve(main).unwrap().unwrap();
                    // Nobody updates before everyone has read.
                    barrier.wait();
                    // Locked is retried, as a caller's CAS loop would: the
                    // retry must then see the winner's value and fail, or
                    // the winner's update would be lost.
                    loop {
                        match f.refs.update(
                            main,
                            new,
                            PreviousValue::MustExistAndMatch(current),
                            "race",
                        ) {
                            Ok(()) => winners.lock().unwrap()[round].push(new),
                            Err(Error::Mismatch { .. }) => losers.lock().unwrap()[round] += 1,
                            Err(Error::Locked { .. }) => {
                                thread::yield_now();
                                continue;
                            }
                            Err(e) => panic!("unexpected error: {e}"),
                        }
                        break;
                    }
                }
            });
        }
    });

    let winners = winners.into_inner().unwrap();
    let losers = losers.into_inner().unwrap();
    for round in 0..ROUNDS {
        assert_eq!(
            winners[round].len(),
            1,
            "round {round}: winners {:?}",
            winners[round]
        );
        assert_eq!(losers[round], THREADS - 1, "round {round}");
    }
    // No lost update: the ref holds the last winner, and the reflog is the
    // unbroken chain of every winning swap.
    let last = winners[ROUNDS - 1][0];
    assert_eq!(f.refs.resolve(&main).unwrap(), Some(last));
    let log = f.refs.reflog(&main).unwrap();
    assert_eq!(log.len(), 1 + ROUNDS);
    assert_eq!(log[0].new, Some(seed));
    for (round, entry) in log[1..].iter().enumerate() {
        assert_eq!(entry.new, Some(winners[round][0]), "round {round}");
        assert_eq!(
            entry.old, log[round].new,
            "round {round}: reflog chain broken"
        );
    }
    assert!(
        log.windows(2)
            .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns)
    );
    assert!(f.lock_files().is_empty());
}

/// Threads creating and deleting sibling refs in a shared directory, which
/// deletes prune when empty: no update fails for a vanished directory.
#[test]
fn concurrent_creates_and_deletes_in_one_directory() {
    let f = Fixture::new();
    let a = f.commit("a");
    thread::scope(|s| {
        for t in 0..4 {
            let f = &f;
            s.spawn(move || {
                let r = RefName::new(&format!("refs/heads/shared/dir/t{t}")).unwrap();
                for _ in 0..30 {
                    f.refs
                        .update(&r, a, PreviousValue::MustNotExist, "c")
                        .unwrap();
                    f.refs
                        .delete(&r, PreviousValue::MustExistAndMatch(a), "d")
                        .unwrap();
                }
            });
        }
    });
    assert!(f.refs.list("refs/heads/").unwrap().is_empty());
    assert!(f.lock_files().is_empty());
}
