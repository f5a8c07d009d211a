//! Pacing for one API: a rate limit (governor) awaited before every attempt, retries included; a
//! pause that holds every worker of the API after a 429 until its `Retry-After` has passed; and an
//! optional cap on requests in flight.
//!
//! The rate adapts: a 429 halves it, a response saying the budget is nearly spent
//! (`x-ms-throttle-limit-percentage`) trims it, and a clean stretch raises it slowly back towards
//! the configured rate. So a configured rate that is too high costs a few 429s, not a run.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

struct Rate {
    current: f64,
    limiter: std::sync::Arc<DefaultDirectRateLimiter>,
    /// The last time the rate moved, or was held by a warning: the rate steps at most once a
    /// second, so a burst of answers counts as one signal, not one step each.
    last_step: Instant,
    /// The last cut for a 429; cuts within a Retry-After of it are the same signal.
    last_cut: Option<Instant>,
    /// The rate the last 429 came at: climbing back, the rate slows down as it nears it.
    throttled_at: Option<f64>,
}

/// How often the rate may change.
const STEP: Duration = Duration::from_secs(1);

/// What a 429 leaves of the rate. Not a half: the Retry-After pause already sheds the excess,
/// and the climb back is slow near the rate that was throttled.
const CUT: f64 = 0.7;

pub struct Pacer {
    name: &'static str,
    ceiling: f64,
    adaptive: bool,
    rate: Mutex<Rate>,
    paused_until: Mutex<Option<Instant>>,
    inflight: Option<Semaphore>,
    throttled: AtomicU64,
}

/// The slowest we go, so a long pause never leaves the rate at nothing.
const FLOOR: f64 = 0.5;

fn limiter(rate: f64) -> std::sync::Arc<DefaultDirectRateLimiter> {
    let period = Duration::from_secs_f64(1.0 / rate.max(FLOOR));
    // A burst of a tenth of a second's worth keeps many workers busy without bunching requests.
    let burst = NonZeroU32::new((rate / 10.0).ceil().max(1.0) as u32).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst);
    std::sync::Arc::new(RateLimiter::direct(quota))
}

impl Pacer {
    pub fn new(name: &'static str, rate: f64, inflight: Option<u32>, adaptive: bool) -> Pacer {
        Pacer {
            name,
            ceiling: rate,
            adaptive,
            rate: Mutex::new(Rate {
                current: rate,
                limiter: limiter(rate),
                last_step: Instant::now(),
                last_cut: None,
                throttled_at: None,
            }),
            paused_until: Mutex::new(None),
            inflight: inflight.map(|n| Semaphore::new(n as usize)),
            throttled: AtomicU64::new(0),
        }
    }

    /// Waits until a request may go: past any pause, within the rate, with an in-flight slot.
    pub async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        loop {
            self.wait_out_pause().await;
            let limiter = self.rate.lock().unwrap_or_else(|e| e.into_inner()).limiter.clone();
            limiter.until_ready().await;
            if !self.is_paused() {
                break;
            }
        }
        match &self.inflight {
            Some(semaphore) => semaphore.acquire().await.ok(),
            None => None,
        }
    }

    async fn wait_out_pause(&self) {
        loop {
            let until = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => return,
            }
        }
    }

    fn is_paused(&self) -> bool {
        self.paused_until.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|until| until > Instant::now())
    }

    /// A 429 (or the service's "too many concurrent requests"): hold everyone for `retry_after`
    /// and cut the rate.
    pub fn throttled(&self, retry_after: Duration) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.pause(retry_after);
        if self.adaptive {
            // Requests already in flight when the budget ran out all come back 429 together:
            // they are one signal, or the rate would collapse to the floor.
            let now = Instant::now();
            let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
            if rate.last_cut.is_none_or(|at| now.duration_since(at) >= retry_after.max(STEP)) {
                rate.last_cut = Some(now);
                rate.last_step = now;
                rate.throttled_at = Some(rate.current);
                rate.current = (rate.current * CUT).clamp(FLOOR, self.ceiling);
                rate.limiter = limiter(rate.current);
            }
        }
        tracing::debug!(
            api = self.name,
            retry_after_ms = retry_after.as_millis() as u64,
            "throttled: pausing this API"
        );
    }

    /// Holds every worker for `wait`, without changing the rate.
    pub fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    /// A success; `limit_percentage` is the service's `x-ms-throttle-limit-percentage`, if sent.
    /// From 90 % the rate comes down a tenth; from 80 % it holds; below, it climbs a tenth a
    /// second back towards the configured rate.
    pub fn succeeded(&self, limit_percentage: Option<f64>) {
        if !self.adaptive {
            return;
        }
        let near_the_last_429 = {
            let rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
            rate.throttled_at.is_some_and(|at| rate.current >= 0.9 * at)
        };
        match limit_percentage {
            Some(used) if used >= 90.0 => self.step(STEP, |rate| rate * 0.95),
            Some(used) if used >= 80.0 => self.step(STEP, |rate| rate),
            _ if near_the_last_429 => self.step(STEP, |rate| rate * 1.02 + 0.1),
            _ => self.step(STEP, |rate| rate * 1.1 + 0.5),
        }
    }

    /// Changes the rate, unless it changed less than `interval` ago.
    fn step(&self, interval: Duration, change: impl FnOnce(f64) -> f64) {
        let now = Instant::now();
        let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        if now.duration_since(rate.last_step) < interval {
            return;
        }
        rate.last_step = now;
        let next = change(rate.current).clamp(FLOOR, self.ceiling);
        if (next - rate.current).abs() > f64::EPSILON {
            rate.current = next;
            rate.limiter = limiter(next);
        }
    }

    pub fn current_rate(&self) -> f64 {
        self.rate.lock().unwrap_or_else(|e| e.into_inner()).current
    }

    pub fn throttled_count(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_every_worker_until_retry_after() {
        let pacer = Pacer::new("graph", 1000.0, None, true);
        pacer.acquire().await;
        tokio::time::advance(STEP).await;
        pacer.throttled(Duration::from_secs(3));
        pacer.throttled(Duration::from_secs(3));
        let start = Instant::now();
        pacer.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(3), "{:?}", start.elapsed());
        assert_eq!(pacer.current_rate(), 1000.0 * CUT, "one burst of 429s cuts the rate once");
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_recovers_a_step_a_second_and_never_passes_the_ceiling() {
        let pacer = Pacer::new("graph", 100.0, None, true);
        tokio::time::advance(STEP).await;
        pacer.throttled(Duration::from_millis(1));
        assert_eq!(pacer.current_rate(), 100.0 * CUT);
        for _ in 0..1000 {
            pacer.succeeded(None);
        }
        assert_eq!(pacer.current_rate(), 100.0 * CUT, "a burst of answers within a second is one signal");
        for _ in 0..60 {
            tokio::time::advance(STEP).await;
            pacer.succeeded(None);
        }
        assert_eq!(pacer.current_rate(), 100.0, "back to the configured rate, slowly near where the 429 came");
        tokio::time::advance(STEP).await;
        pacer.succeeded(Some(95.0));
        assert_eq!(pacer.current_rate(), 95.0, "a nearly spent budget slows it down");
        tokio::time::advance(STEP).await;
        pacer.succeeded(Some(85.0));
        assert_eq!(pacer.current_rate(), 95.0, "between 80 and 90 % it holds");
    }

    #[tokio::test(start_paused = true)]
    async fn the_in_flight_cap_holds() {
        let pacer = Pacer::new("exchange", 1000.0, Some(2), false);
        let a = pacer.acquire().await;
        let _b = pacer.acquire().await;
        let third = tokio::time::timeout(Duration::from_secs(1), pacer.acquire()).await;
        assert!(third.is_err(), "a third request must wait for a slot");
        drop(a);
        assert!(tokio::time::timeout(Duration::from_secs(1), pacer.acquire()).await.is_ok());
    }
}
