use std::time::{Duration, SystemTime};

use sydra_objects::{Durability, Error, Kind, SweepOutcome};

use super::common::store;

#[test]
fn a_gc_session_never_deletes_pinned_or_newly_written_objects() {
    let (_d, s) = store();
    let old = s.put(Kind::Blob, b"old garbage").unwrap();
    let pinned_batch = {
        let mut b = s.batch(Durability::None);
        b.put(Kind::Blob, b"in flight").unwrap();
        b.commit().unwrap().0
    };
    let in_flight = pinned_batch.ids()[0];
    let gc = s.begin_gc().unwrap();
    assert!(matches!(s.begin_gc(), Err(Error::GcRunning)));
    assert_eq!(gc.pinned_roots(), &[in_flight]);
    let future = SystemTime::now() + Duration::from_secs(3600);
    // Written (or dedup-hit) after the GC began: protected.
    let during = s.put(Kind::Blob, b"written during gc").unwrap();
    assert_eq!(
        gc.delete_if_unprotected(&during, future).unwrap(),
        SweepOutcome::Protected
    );
    assert_eq!(
        gc.delete_if_unprotected(&in_flight, future).unwrap(),
        SweepOutcome::Protected
    );
    // Releasing the pin during the GC does not unprotect it.
    drop(pinned_batch);
    assert_eq!(
        gc.delete_if_unprotected(&in_flight, future).unwrap(),
        SweepOutcome::Protected
    );
    // Grace period: a cutoff in the past keeps recent files.
    let past = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(
        gc.delete_if_unprotected(&old, past).unwrap(),
        SweepOutcome::Recent
    );
    assert!(
        matches!(gc.delete_if_unprotected(&old, future).unwrap(), SweepOutcome::Deleted(n) if n > 0)
    );
    assert_eq!(
        gc.delete_if_unprotected(&old, future).unwrap(),
        SweepOutcome::Missing
    );
    drop(gc);
    // After the session, protection is gone.
    let gc = s.begin_gc().unwrap();
    assert!(gc.pinned_roots().is_empty());
    assert!(matches!(
        gc.delete_if_unprotected(&during, future).unwrap(),
        SweepOutcome::Deleted(_)
    ));
}
