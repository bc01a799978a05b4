//! Named fault points: every write, sync, rename, unlink, mkdir, directory
//! sync and mmap in Sydra calls [`point`] with a stable name first, so tests
//! can make that exact operation fail (EIO once or persistently, ENOSPC)
//! and check what reaches the caller.
//!
//! Always compiled in: when nothing is armed, a point costs one relaxed
//! atomic load, nothing beside the system call it guards. The registry is
//! process-global; tests that arm faults must not run beside other tests in
//! the same process (the fault test binary serialises itself).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// What an armed point does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fail with EIO the next time the point is reached, then disarm.
    EioOnce,
    /// Fail with EIO every time until disarmed.
    EioAlways,
    /// Fail with ENOSPC every time until disarmed.
    Enospc,
}

#[derive(Default)]
struct State {
    armed: BTreeMap<&'static str, Fault>,
    hits: BTreeSet<&'static str>,
    injected: u64,
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<State> = Mutex::new(State {
    armed: BTreeMap::new(),
    hits: BTreeSet::new(),
    injected: 0,
});

/// Call before the I/O operation named `name`; returns the injected error
/// if the point is armed.
#[inline]
pub fn point(name: &'static str) -> io::Result<()> {
    if !ACTIVE.load(Ordering::Relaxed) {
        return Ok(());
    }
    slow(name)
}

#[cold]
fn slow(name: &'static str) -> io::Result<()> {
    let mut st = STATE.lock();
    st.hits.insert(name);
    let Some(fault) = st.armed.get(name).copied() else {
        return Ok(());
    };
    if fault == Fault::EioOnce {
        st.armed.remove(name);
    }
    st.injected += 1;
    Err(match fault {
        Fault::EioOnce | Fault::EioAlways => {
            io::Error::from_raw_os_error(5) // EIO
        }
        Fault::Enospc => io::Error::from_raw_os_error(28), // ENOSPC
    })
}

/// Start recording hits (and honouring armed faults).
pub fn enable() {
    ACTIVE.store(true, Ordering::SeqCst);
}

/// Stop, disarm everything and forget hits.
pub fn reset() {
    let mut st = STATE.lock();
    st.armed.clear();
    st.hits.clear();
    st.injected = 0;
    ACTIVE.store(false, Ordering::SeqCst);
}

/// Arm `name` with `fault` (and enable recording).
pub fn arm(name: &'static str, fault: Fault) {
    STATE.lock().armed.insert(name, fault);
    enable();
}

/// Disarm every point, keeping the hit record.
pub fn disarm_all() {
    STATE.lock().armed.clear();
}

/// Every point reached since the last reset.
pub fn hits() -> BTreeSet<&'static str> {
    STATE.lock().hits.clone()
}

/// How many errors were injected since the last reset.
pub fn injected() -> u64 {
    STATE.lock().injected
}

/// The fault points of this crate.
pub const POINTS: &[&str] = &[
    "objects.tmp.create",
    "objects.tmp.write",
    "objects.tmp.sync",
    "objects.rename",
    "objects.shard.mkdir",
    "objects.dir.sync",
    "objects.syncfs",
    "objects.freshen",
    "objects.delete",
    "objects.map",
    "objects.create.mkdir",
];
