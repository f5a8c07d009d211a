//! How a pacer's rate follows a budget it is never told (see the parent module): each answer the
//! service counts, each 429 and each warning moves or holds the rate; a budget remembered from an
//! earlier run, or a changed share of it, sets it directly.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::rate::{FLOOR, Mark, Rate, sent_rate, set};
use super::{
    BLIND_CUT, BUSY, CLIMB, HOLD, PROBE, Pacer, QUIET_BEFORE_PROBE, SATURATED, SHORTEST_MEASURE, STEP, WARNED_CUT,
    WARNING, WARNING_EPISODE, WARNING_HIGH, WARNING_WINDOW,
};

impl Pacer {
    /// The service answered (any status but a 503 it refused unread, throttled answers too): it
    /// counted the request against its budget.
    pub(crate) fn answered(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// A 429 (or the service's "too many concurrent requests"): hold everyone for `retry_after`
    /// and slow down to what the budget allows.
    pub(crate) fn throttled(&self, retry_after: Duration) {
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
    pub(crate) fn refused_for_concurrency(&self, wait: Duration) -> bool {
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
    pub(crate) fn disturbed(&self) {
        self.lock().saturated = false;
    }

    /// A success; `limit_percentage` is the service's `x-ms-throttle-limit-percentage`, if sent.
    /// The first warning of an episode is a mark (see the module). Within one, from 0.9 the rate
    /// comes down a twentieth, from 0.8 it holds. Without warnings it climbs: quickly up to the
    /// measured budget, then slowly, to find out whether the budget grew.
    pub(crate) fn succeeded(&self, limit_percentage: Option<f64>) {
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
    pub(crate) fn start_from(&self, budget: f64, shared: bool) {
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
    pub(crate) fn reshare(&self, factor: f64) {
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
}
