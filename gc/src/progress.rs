//! Progress reporting for long passes. The library only counts; the
//! command line draws bars (on a TTY).

/// Receives progress from mark, sweep, fsck and stats. Implementations must
/// be cheap: `advance` is called once per object.
pub trait Progress {
    /// A new phase begins (`"marking"`, `"sweeping"`, ...), with the number
    /// of steps when known. The unit of the steps is given too (`"objects"`,
    /// `"shards"`).
    fn phase(&self, name: &str, unit: &'static str, total: Option<u64>);
    /// `n` more steps of the current phase are done.
    fn advance(&self, n: u64);
    /// The current phase is over.
    fn finish(&self);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _name: &str, _unit: &'static str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}
