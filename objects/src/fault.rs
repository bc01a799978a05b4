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

use parking_lot::{Condvar, Mutex};

/// What an armed point does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fail with EIO the next time the point is reached, then disarm.
    EioOnce,
    /// Fail with EIO every time until disarmed.
    EioAlways,
    /// Fail with ENOSPC every time until disarmed.
    Enospc,
    /// Block the thread that reaches the point, once, until [`resume`] is
    /// called, then continue without an error: a test holds an operation
    /// in its middle (a ref lock taken, its value not yet written) while
    /// another process looks at the store.
    Pause,
}

#[derive(Default)]
struct State {
    armed: BTreeMap<&'static str, Fault>,
    hits: BTreeSet<&'static str>,
    injected: u64,
    /// Points a thread is paused at.
    paused: BTreeSet<&'static str>,
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<State> = Mutex::new(State {
    armed: BTreeMap::new(),
    hits: BTreeSet::new(),
    injected: 0,
    paused: BTreeSet::new(),
});
/// Signalled when a thread pauses or is resumed.
static PAUSE: Condvar = Condvar::new();

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
    if fault == Fault::Pause {
        st.armed.remove(name);
        st.paused.insert(name);
        PAUSE.notify_all();
        while st.paused.contains(name) {
            PAUSE.wait(&mut st);
        }
        return Ok(());
    }
    if fault == Fault::EioOnce {
        st.armed.remove(name);
    }
    st.injected += 1;
    Err(match fault {
        Fault::EioOnce | Fault::EioAlways => {
            io::Error::from_raw_os_error(5) // EIO
        }
        // (Pause returned above.)
        Fault::Enospc | Fault::Pause => io::Error::from_raw_os_error(28), // ENOSPC
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
    // A paused thread continues.
    st.paused.clear();
    PAUSE.notify_all();
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

/// Wait until a thread is paused at `name` (armed with [`Fault::Pause`]).
pub fn wait_paused(name: &'static str) {
    let mut st = STATE.lock();
    while !st.paused.contains(name) {
        PAUSE.wait(&mut st);
    }
}

/// Let the thread paused at `name` continue.
pub fn resume(name: &'static str) {
    STATE.lock().paused.remove(name);
    PAUSE.notify_all();
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
    "objects.freshen",
    "objects.delete",
    "objects.map",
    "objects.create.mkdir",
    "objects.shard.rmdir",
    "pack.write",
    "pack.sync",
    "pack.idx.write",
    "pack.idx.sync",
    "pack.mkdir",
    "pack.rename",
    "pack.idx.rename",
    "pack.dir.sync",
    "pack.unlink",
    "pack.idx.unlink",
];
