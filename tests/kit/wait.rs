//! Bounded waits: they poll a condition and fail the test (with what was awaited) only when it
//! does not come true within a generous limit. They never measure anything.

use std::time::{Duration, Instant};

/// The default limit: long enough for a loaded 2-core build machine.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `limit`.
pub async fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "gave up waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The blocking twin of [`until`], for threads outside a runtime.
pub fn until_blocking(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "gave up waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
