//! When the mount was last used, for `sealfs mount --idle-timeout`: every
//! request marks the time (one clock read and a relaxed store).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds from `epoch()` to the last request.
static LAST: AtomicU64 = AtomicU64::new(0);

/// Marks a request now.
pub(crate) fn mark() {
    let ms = epoch().elapsed().as_millis() as u64;
    LAST.store(ms, Ordering::Relaxed);
}

/// How long since the last request (or since the first call, if none came yet).
pub fn idle_for() -> Duration {
    let now = epoch().elapsed().as_millis() as u64;
    Duration::from_millis(now.saturating_sub(LAST.load(Ordering::Relaxed)))
}
