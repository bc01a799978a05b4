//! The wall clock as the store records it: nanoseconds since the Unix
//! epoch in an `i64` (reflog lines, commit timestamps, GC cutoffs). The one
//! place a `SystemTime` becomes that number.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` in nanoseconds since the Unix epoch, negative before it, saturating
/// at the ends of `i64` (years 1677 and 2262) instead of wrapping.
pub fn ns_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// Now, in nanoseconds since the Unix epoch (see [`ns_since_epoch`]).
pub fn now_ns() -> i64 {
    ns_since_epoch(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn now_is_after_2020() {
        assert!(now_ns() > 1_577_836_800_000_000_000);
    }

    #[test]
    fn before_the_epoch_is_negative_and_the_ends_saturate() {
        assert_eq!(ns_since_epoch(UNIX_EPOCH), 0);
        assert_eq!(
            ns_since_epoch(UNIX_EPOCH - Duration::from_nanos(1_500)),
            -1_500
        );
        assert_eq!(
            ns_since_epoch(UNIX_EPOCH + Duration::from_secs(1 << 40)),
            i64::MAX
        );
        assert_eq!(
            ns_since_epoch(UNIX_EPOCH - Duration::from_secs(1 << 40)),
            i64::MIN
        );
    }
}
