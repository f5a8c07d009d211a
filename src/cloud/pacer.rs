//! Pacing for one API: a rate limit (governor) awaited before every attempt, retries included; a
//! pause that holds every worker of the API after a 429 until its `Retry-After` has passed; and an
//! optional cap on requests in flight.
//!
//! The rate adapts to a budget it is never told. The service counts every request it answers,
//! throttled or not, against a token bucket. A 429 says the bucket is empty; the service's first
//! `x-ms-throttle-limit-percentage` (sent from 0.8 of the limit) says it is nearly so. Between two such marks of
//! one kind the bucket is at the same level, so the requests answered between them, divided by
//! the time between, is the budget: from the second mark on, the rate holds just under that
//! measure, and a steady run sees warnings, not 429s. Before any measure, a mark cuts the rate
//! actually sent (a 429 by half). The rate starts from a budget remembered from an earlier run,
//! else from a modest start that the smallest tenants allow, and until the service first pushes
//! back it doubles every second, but only while it is what holds the work back: a rate nobody
//! uses proves nothing. The service's buckets start full and hold seconds of budget, so the
//! first warning or 429 comes while there is still room to slow down.
//!
//! The tunables of that adaptation are here; the waiting is in `turn.rs`, the adapting in
//! `adapt.rs`, and the rate's state in `rate.rs`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use rate::{CEILING_MOST, FLOOR, Rate, limiter, starting_limiter};

/// The window a warning's share of the bucket is a share of: Graph's identity budgets are "per
/// 10 seconds" ("Identity and access service limits", learn.microsoft.com/graph/throttling-limits).
/// Two warnings at different levels differ by that share of the window's worth of budget.
const WARNING_WINDOW: f64 = 10.0;

/// The `x-ms-throttle-limit-percentage` that marks the budget nearly spent. The service sends
/// the header past 0.8 of the limit, as a fraction from 0.8 to 1.8 ("Identity and access service
/// limits", learn.microsoft.com/graph/throttling-limits); a batch of 20 can take a tenth of a
/// small budget at once, so the mark is the first header, not a later one.
const WARNING: f64 = 0.8;

/// From this share of the limit a warning cuts the rate a little instead of holding it.
const WARNING_HIGH: f64 = 0.9;

/// Warnings closer together than this are one episode; it is also the shortest time between
/// two warnings that measures the budget (the bucket is only roughly at the same level).
const WARNING_EPISODE: Duration = Duration::from_secs(2);

/// How often the rate may change.
const STEP: Duration = Duration::from_secs(1);

/// The share of the measured budget to hold: what is left absorbs the error of the measure.
const HOLD: f64 = 0.97;

/// Before the budget is measured, a 429 leaves this share of the rate actually sent, and a
/// warning (some budget is still left) this one.
const BLIND_CUT: f64 = 0.5;
const WARNED_CUT: f64 = 0.7;

/// Until the service first pushes back, the rate grows by this factor a second: a budget ten
/// times the start is found in under four seconds.
const CLIMB: f64 = 2.0;

/// How long a rate holds at a measured budget, without warnings or 429s, before it probes past it,
/// and how much a second it then climbs: a right measure is overrun slowly (the bucket holds
/// seconds of budget, so the 429 that ends the probe comes half a minute later), a low one is
/// left behind in seconds.
const QUIET_BEFORE_PROBE: Duration = Duration::from_secs(10);
const PROBE: f64 = 1.02;

/// Two 429s closer than this measure too few answers to say what the budget is.
const SHORTEST_MEASURE: Duration = Duration::from_millis(800);

/// The rate climbs only when it was this nearly used over the last step.
const BUSY: f64 = 0.8;

/// Below this share of the rate over a step, the bucket may have filled up.
const SATURATED: f64 = 0.9;

/// A pacer's ceiling, the rate it started at and has now, the budget it was told at the start
/// (remembered from an earlier run) and the one it measured, in requests a second.
#[derive(Clone, Debug)]
pub(crate) struct PacerState {
    pub name: &'static str,
    pub ceiling: f64,
    pub start: f64,
    pub rate: f64,
    pub remembered: Option<f64>,
    pub budget: Option<f64>,
    pub throttled: u64,
}

pub(crate) struct Pacer {
    name: &'static str,
    clock: governor::clock::DefaultClock,
    ceiling: f64,
    adaptive: bool,
    /// The rate it started at, and the budget remembered from an earlier run, if any.
    start: Mutex<(f64, Option<f64>)>,
    rate: Mutex<Rate>,
    paused_until: Mutex<Option<Instant>>,
    /// Requests waiting for the rate, first come first served.
    line: tokio::sync::Mutex<()>,
    /// The turn at the limiter: the head of the line waits here, and so does a request that
    /// goes ahead of the line (a page of a listing that a run's targets wait on), behind at most
    /// that one.
    limiter_turn: tokio::sync::Mutex<()>,
    inflight: Option<Semaphore>,
    /// Requests allowed in flight now: lowered by one each time the service refuses one for too
    /// many at once, never below one.
    inflight_cap: std::sync::atomic::AtomicU32,
    throttled: AtomicU64,
    /// Requests let through.
    sent: AtomicU64,
    /// Answers the service counted against its budget (everything but a 503 it refused unread).
    answered: AtomicU64,
}

impl Pacer {
    /// A pacer that never goes past `ceiling`; an adaptive one starts at `start` (or the ceiling,
    /// if lower), a fixed one at the ceiling.
    pub(crate) fn new(name: &'static str, ceiling: f64, start: f64, inflight: Option<u32>, adaptive: bool) -> Pacer {
        // The command line holds ceilings to its range; a run.json edited by hand is not, and a
        // ceiling under the floor (or NaN) would make every later `clamp(FLOOR, ceiling)` panic.
        let ceiling = if ceiling.is_nan() { FLOOR } else { ceiling.clamp(FLOOR, CEILING_MOST) };
        let start = if adaptive { start.min(ceiling).max(FLOOR) } else { ceiling };
        Pacer {
            name,
            clock: governor::clock::DefaultClock::default(),
            ceiling,
            adaptive,
            start: Mutex::new((start, None)),
            rate: Mutex::new(Rate {
                current: start,
                limiter: if adaptive { starting_limiter(start) } else { limiter(start) },
                last_step: Instant::now(),
                sent_at_step: 0,
                last_429: None,
                last_warning: None,
                budget: None,
                saturated: true,
                spend_burst: true,
                told_at: Instant::now(),
            }),
            paused_until: Mutex::new(None),
            line: tokio::sync::Mutex::new(()),
            limiter_turn: tokio::sync::Mutex::new(()),
            inflight: inflight.map(|n| Semaphore::new(n as usize)),
            inflight_cap: std::sync::atomic::AtomicU32::new(inflight.unwrap_or(0)),
            throttled: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            answered: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rate> {
        self.rate.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn current_rate(&self) -> f64 {
        self.lock().current
    }

    /// Where the pacer stands, for the report.
    pub(crate) fn state(&self) -> PacerState {
        let (start, remembered) = *self.start.lock().unwrap_or_else(|e| e.into_inner());
        let rate = self.lock();
        PacerState {
            name: self.name,
            ceiling: self.ceiling,
            start,
            rate: rate.current,
            remembered,
            // A remembered budget this run did not measure again is not a measure of this run.
            budget: rate.budget.filter(|budget| Some(*budget) != remembered),
            throttled: self.throttled_count(),
        }
    }

    pub(crate) fn throttled_count(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
}

mod adapt;
mod rate;
#[cfg(test)]
mod tests;
mod turn;
