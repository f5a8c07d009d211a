//! Throttling as the service does it: token buckets per app and tenant, and a cap on Exchange
//! requests in flight.
//!
//! A request over budget is still charged (the bucket goes into debt, down to one window's worth),
//! because the real service keeps counting usage while a client is throttled: a client that ignores
//! `Retry-After` digs itself deeper.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A token bucket: `rate` units a second, holding at most `rate × window` units.
#[derive(Debug)]
pub(crate) struct Bucket {
    rate: f64,
    capacity: f64,
    state: Mutex<(f64, Instant)>,
}

/// What the bucket said about one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Allowed; the share of the window's budget now in use (0.0 to 1.0).
    Allowed { used: f64 },
    /// Over budget: come back after this long.
    Throttled { retry_after: Duration },
}

impl Bucket {
    pub(crate) fn new(rate: f64, window: Duration) -> Bucket {
        let capacity = (rate * window.as_secs_f64()).max(1.0);
        Bucket { rate, capacity, state: Mutex::new((capacity, Instant::now())) }
    }

    pub(crate) fn take(&self, cost: f64) -> Verdict {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, last) = &mut *state;
        *tokens = (*tokens + self.rate * now.duration_since(*last).as_secs_f64()).min(self.capacity);
        *last = now;
        if *tokens >= cost {
            *tokens -= cost;
            return Verdict::Allowed { used: 1.0 - *tokens / self.capacity };
        }
        *tokens = (*tokens - cost).max(-self.capacity);
        let wait = (cost - *tokens) / self.rate;
        Verdict::Throttled { retry_after: whole_seconds(wait) }
    }
}

/// The service answers in whole seconds, at least one: time enough for the bucket to refill
/// well past the one request, so a client that waits it out is not throttled again at once.
fn whole_seconds(seconds: f64) -> Duration {
    Duration::from_secs(seconds.ceil().max(1.0) as u64)
}

/// Counts requests in flight; a slot is given back when the guard drops.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
}

pub(crate) struct InFlightGuard<'a>(&'a AtomicUsize);

impl InFlight {
    /// Takes a slot if fewer than `cap` are in use.
    pub(crate) fn enter(&self, cap: usize) -> Option<InFlightGuard<'_>> {
        let previous = self.count.fetch_add(1, Ordering::SeqCst);
        let guard = InFlightGuard(&self.count);
        (previous < cap).then_some(guard)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Every budget of one simulated tenant's app.
#[derive(Debug)]
pub(crate) struct Budgets {
    pub enabled: bool,
    pub graph_units: Bucket,
    pub graph_writes: Bucket,
    pub exchange_requests: Bucket,
    pub exchange_inflight_cap: usize,
    pub exchange_inflight: InFlight,
    /// The sign-in log's own budget (Graph's identity and access reports).
    pub reports: Bucket,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_capacity_then_throttles_with_a_retry_after() {
        let bucket = Bucket::new(10.0, Duration::from_secs(1));
        for _ in 0..10 {
            assert!(matches!(bucket.take(1.0), Verdict::Allowed { .. }));
        }
        match bucket.take(1.0) {
            Verdict::Throttled { retry_after } => {
                assert_eq!(retry_after, Duration::from_secs(1));
            }
            other => panic!("expected throttling, got {other:?}"),
        }
    }

    #[test]
    fn throttled_requests_keep_counting() {
        let bucket = Bucket::new(1.0, Duration::from_secs(10));
        bucket.take(10.0);
        let first = bucket.take(1.0);
        for _ in 0..5 {
            bucket.take(1.0);
        }
        let later = bucket.take(1.0);
        let wait = |v: Verdict| match v {
            Verdict::Throttled { retry_after } => retry_after,
            Verdict::Allowed { .. } => Duration::ZERO,
        };
        assert!(wait(later) > wait(first), "hammering must lengthen the wait");
    }

    #[test]
    fn in_flight_slots_are_capped_and_returned() {
        let inflight = InFlight::default();
        let a = inflight.enter(2);
        let b = inflight.enter(2);
        assert!(a.is_some() && b.is_some());
        assert!(inflight.enter(2).is_none());
        drop(a);
        assert!(inflight.enter(2).is_some());
    }
}
