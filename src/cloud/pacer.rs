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

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use rate::{CEILING_MOST, FLOOR, Mark, Rate, limiter, sent_rate, set, starting_limiter};

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
pub struct PacerState {
    pub name: &'static str,
    pub ceiling: f64,
    pub start: f64,
    pub rate: f64,
    pub remembered: Option<f64>,
    pub budget: Option<f64>,
    pub throttled: u64,
}

/// Where a request waits for the rate.
#[derive(Clone, Copy)]
enum Line {
    Wait,
    GoAhead,
}

pub struct Pacer {
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
    pub fn new(name: &'static str, ceiling: f64, start: f64, inflight: Option<u32>, adaptive: bool) -> Pacer {
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

    /// Waits until a request may go: past any pause, within the rate, with an in-flight slot.
    /// A pause that began while the request waited for its slot is waited out too: the requests
    /// queued for slots would otherwise go one by one as the throttled answers free them, each
    /// into the same 429.
    pub async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.acquire_in(Line::Wait).await
    }

    /// As [`acquire`](Self::acquire), but ahead of the requests waiting in line: for the pages
    /// of a listing that many targets wait on, which would otherwise each wait behind a line
    /// those targets' own requests keep full.
    pub async fn acquire_ahead(&self) -> Option<SemaphorePermit<'_>> {
        self.acquire_in(Line::GoAhead).await
    }

    async fn acquire_in(&self, line: Line) -> Option<SemaphorePermit<'_>> {
        loop {
            self.wait_for_rate(line).await;
            let permit = match &self.inflight {
                Some(semaphore) => semaphore.acquire().await.ok(),
                None => None,
            };
            if !self.is_paused() {
                self.sent.fetch_add(1, Ordering::Relaxed);
                return permit;
            }
        }
    }

    /// Waits past any pause and within the rate.
    async fn wait_for_rate(&self, line: Line) {
        loop {
            self.wait_out_pause().await;
            // One waiter at a time on the limiter, the rest in line: waiting on it together, every
            // one of them would wake for every free slot, and only one would get it.
            let place = match line {
                Line::Wait => Some(self.line.lock().await),
                Line::GoAhead => None,
            };
            let turn = self.limiter_turn.lock().await;
            let (limiter, group) = {
                let rate = self.lock();
                (rate.limiter.clone(), rate::group_wait(rate.current))
            };
            // On the runtime's own timer: governor's `until_ready` sleeps on a timer thread of its
            // own, and every wake-up from it is a switch between threads. Once the head of the line
            // has to wait, it waits until a few turns are due, and those behind it go at once.
            while let Err(not_until) = limiter.check() {
                tokio::time::sleep(not_until.wait_time_from(governor::clock::Clock::now(&self.clock)) + group).await;
            }
            drop(turn);
            drop(place);
            // A rate change replaces the limiter: whoever waited on the old one waits again on
            // the new, or both would let requests through side by side.
            let current = std::sync::Arc::ptr_eq(&limiter, &self.lock().limiter);
            if current && !self.is_paused() {
                return;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rate> {
        self.rate.lock().unwrap_or_else(|e| e.into_inner())
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

    /// The service answered (any status but a 503 it refused unread, throttled answers too): it
    /// counted the request against its budget.
    pub fn answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// A 429 (or the service's "too many concurrent requests"): hold everyone for `retry_after`
    /// and slow down to what the budget allows.
    pub fn throttled(&self, retry_after: Duration) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.pause(retry_after);
        if self.adaptive {
            self.adapt_to_429(retry_after);
        }
        tracing::debug!(
            api = self.name,
            retry_after_ms = retry_after.as_millis() as u64,
            "throttled: pausing this API"
        );
    }

    fn adapt_to_429(&self, retry_after: Duration) {
        let now = Instant::now();
        let mut rate = self.lock();
        // Requests in flight when the budget ran out all come back 429 together: one signal.
        if rate.last_429.is_some_and(|mark| now.duration_since(mark.at) < retry_after.max(STEP)) {
            return;
        }
        let mark = self.mark(now, 1.0);
        let previous = rate.last_429.replace(mark);
        self.budget_spent(&mut rate, previous, mark, SHORTEST_MEASURE, BLIND_CUT);
        tracing::debug!(api = self.name, rate = rate.current, budget = rate.budget, "throttled: rate set");
    }

    fn mark(&self, at: Instant, used: f64) -> Mark {
        Mark { at, answered: self.answered.load(Ordering::Relaxed), used }
    }

    /// The budget is spent (a 429) or nearly (a warning) now, as it was at `previous`: the answers
    /// counted between measure the budget. The rate goes just under it, or, with no measure yet,
    /// to half of what was sent.
    fn budget_spent(&self, rate: &mut Rate, previous: Option<Mark>, now: Mark, shortest: Duration, blind_cut: f64) {
        let (answered, now_used, now) = (now.answered, now.used, now.at);
        let sent = self.sent.load(Ordering::Relaxed);
        if let Some(mark) = previous
            && now.duration_since(mark.at) >= shortest
        {
            // A bucket found fuller than at the mark took that share of a window's budget more
            // than the budget itself paid for.
            let span = now.duration_since(mark.at).as_secs_f64();
            let used_up = (WARNING_WINDOW * (now_used - mark.used)).clamp(-0.5 * span, 4.0 * span);
            let measured = answered.saturating_sub(mark.answered) as f64 / (span + used_up);
            rate.budget = match (rate.budget, rate.saturated) {
                (_, true) => Some(measured),
                (Some(earlier), false) => Some(earlier.max(measured)),
                // A first measure across a disturbed spell says too little: wait for a clean one.
                (None, false) => None,
            };
        }
        rate.saturated = true;
        let next = match rate.budget {
            Some(budget) => budget * HOLD,
            None => blind_cut * rate.current.min(sent_rate(rate, sent, now)),
        };
        rate.last_step = now;
        rate.sent_at_step = sent;
        set(self.name, rate, next.clamp(FLOOR, self.ceiling));
    }

    /// The service refused a request for too many in flight at once (Exchange's "maximum number
    /// of concurrent requests per tenant"): hold every worker for `wait`, and keep one request
    /// fewer in flight from now on. That is not a spent budget, so the rate stays. Returns whether
    /// the caller's in-flight slot is to be given up for good.
    pub fn refused_for_concurrency(&self, wait: Duration) -> bool {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.pause(wait);
        let shrunk = self.inflight.is_some()
            && self
                .inflight_cap
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cap| (cap > 1).then(|| cap - 1))
                .is_ok();
        tracing::debug!(api = self.name, shrunk, "too many requests in flight: pausing this API");
        shrunk
    }

    /// Another budget held this API's requests back (a pause for a 429 of the units budget on
    /// writes, or of the writes budget on reads): the answers counted until the next mark are
    /// fewer than this budget allowed, so the next measure can only raise the estimate.
    pub fn disturbed(&self) {
        self.lock().saturated = false;
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
    /// The first warning of an episode is a mark (see the module). Within one, from 0.9 the rate
    /// comes down a twentieth, from 0.8 it holds. Without warnings it climbs: quickly up to the
    /// measured budget, then slowly, to find out whether the budget grew.
    pub fn succeeded(&self, limit_percentage: Option<f64>) {
        if !self.adaptive {
            return;
        }
        let now = Instant::now();
        let sent = self.sent.load(Ordering::Relaxed);
        let paused_until = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        let mut rate = self.lock();
        let warned = limit_percentage.unwrap_or(0.0);
        // The first warning in a while marks the budget nearly spent, as a 429 marks it spent:
        // from the second on, the rate is set from a measure, without waiting for a 429.
        if warned >= WARNING && rate.last_warning.is_none_or(|mark| now.duration_since(mark.at) >= WARNING_EPISODE) {
            let mark = self.mark(now, warned);
            let previous = rate.last_warning.replace(mark);
            // The first push back after the climb: the rate doubled for seconds before the
            // bucket ran low, so it is likely twice the budget or more.
            let cut = if previous.is_none() && rate.last_429.is_none() { BLIND_CUT } else { WARNED_CUT };
            self.budget_spent(&mut rate, previous, mark, WARNING_EPISODE, cut);
            tracing::debug!(
                api = self.name,
                rate = rate.current,
                budget = rate.budget,
                "budget nearly spent: rate set"
            );
            return;
        }
        if now.duration_since(rate.last_step) < STEP {
            return;
        }
        let used = sent_rate(&rate, sent, now);
        // A second spent below the rate, other than in a 429's pause, may have let the bucket
        // fill and overflow: the next measure can only say the budget is at least that much.
        if used < SATURATED * rate.current && paused_until.is_none_or(|until| until <= rate.last_step) {
            rate.saturated = false;
        }
        rate.last_step = now;
        rate.sent_at_step = sent;
        let next = match warned {
            _ if warned >= WARNING_HIGH => rate.current * 0.95,
            _ if warned >= WARNING => rate.current,
            // Nobody is waiting on the rate: raising it proves nothing and overshoots later.
            _ if used < BUSY * rate.current => rate.current,
            // The service's bucket starts full: until it first pushes back, spend what it holds,
            // known budget or not; the first warning or 429 brings the rate back under it.
            _ if rate.spend_burst && rate.last_429.is_none() && rate.last_warning.is_none() => rate.current * CLIMB,
            _ => match rate.budget {
                Some(budget) if rate.current < budget * HOLD => (rate.current * 1.1 + 0.5).min(budget * HOLD),
                // At the measure: hold. Every probe past a right measure ends in a 429 for all
                // in flight, so only after a quiet spell does it climb past it, to learn whether
                // the budget grew or was measured low. A rate sent with no push back is within
                // the budget, so the estimate rises with it.
                Some(_) if rate.quiet_since(now) < QUIET_BEFORE_PROBE => rate.current,
                Some(budget) => {
                    rate.budget = Some(budget.max(rate.current));
                    rate.current * PROBE
                }
                None => rate.current * 1.1 + 0.5,
            },
        };
        set(self.name, &mut rate, next.clamp(FLOOR, self.ceiling));
    }

    /// Starts from a budget an earlier run measured (or, `shared`, this run's share of it): just
    /// under it. Until the service first pushes back a whole run climbs as from any start (the
    /// bucket starts full); the first warning or 429 brings it straight back under the budget,
    /// with no blind cut and no second mark needed. A shard holds its share. A fixed pacer
    /// ignores it.
    pub fn start_from(&self, budget: f64, shared: bool) {
        if !self.adaptive || !budget.is_finite() || budget <= 0.0 {
            return;
        }
        let mut rate = self.lock();
        rate.budget = Some(budget);
        rate.spend_burst = !shared;
        rate.told_at = Instant::now();
        let start = (budget * HOLD).clamp(FLOOR, self.ceiling);
        set(self.name, &mut rate, start);
        *self.start.lock().unwrap_or_else(|e| e.into_inner()) = (start, Some(budget));
    }

    /// This run's share of a budget it spends with others grew or shrank by `factor` (shards
    /// that ended, or one that came back): the budget scales with it and the rate goes just under
    /// the new share at once, then holds for a quiet spell as after a budget told. Without a
    /// measure yet, the rate alone scales.
    pub fn reshare(&self, factor: f64) {
        if !self.adaptive || !factor.is_finite() || factor <= 0.0 {
            return;
        }
        let mut rate = self.lock();
        rate.budget = rate.budget.map(|budget| budget * factor);
        let next = rate.budget.map_or(rate.current * factor, |budget| budget * HOLD);
        rate.told_at = Instant::now();
        tracing::debug!(api = self.name, factor, budget = rate.budget, "share of the budget changed");
        set(self.name, &mut rate, next.clamp(FLOOR, self.ceiling));
    }

    #[cfg(test)]
    pub fn current_rate(&self) -> f64 {
        self.lock().current
    }

    /// Where the pacer stands, for the report.
    pub fn state(&self) -> PacerState {
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

    pub fn throttled_count(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
}

mod rate;
#[cfg(test)]
mod tests;
