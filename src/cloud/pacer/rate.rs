//! A pacer's adaptive state: its rate and the limiter that enforces it, the marks the service
//! left (the last 429 and the last warning), and the budget measured between them.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

pub(super) struct Rate {
    pub(super) current: f64,
    pub(super) limiter: std::sync::Arc<DefaultDirectRateLimiter>,
    /// The last time the rate moved, or was held by a warning: the rate steps at most once a
    /// second, so a burst of answers counts as one signal, not one step each.
    pub(super) last_step: Instant,
    /// Requests let through by the time of `last_step`: the rate actually used since.
    pub(super) sent_at_step: u64,
    /// The first 429 of the last burst.
    pub(super) last_429: Option<Mark>,
    /// The first warning (`x-ms-throttle-limit-percentage` of [`WARNING`] or more) of the last
    /// episode.
    pub(super) last_warning: Option<Mark>,
    /// The budget measured between the last two marks of one kind, in requests a second.
    pub(super) budget: Option<f64>,
    /// Every second since the last mark used the rate (pauses for a 429 aside): the bucket
    /// cannot have overflowed, so the next measure is the budget, not a lower bound.
    pub(super) saturated: bool,
    /// Until the service first pushes back, double (the bucket starts full); a shard that knows
    /// its share of a budget spent with others does not, for the others spend the same bucket.
    pub(super) spend_burst: bool,
    /// When the rate was created or told a remembered budget: a budget told is held for a quiet
    /// spell before it is probed past, as a measured one is.
    pub(super) told_at: Instant,
}

impl Rate {
    /// How long since the service last pushed back (a 429 or a warning).
    pub(super) fn quiet_since(&self, now: Instant) -> Duration {
        let marks = [self.last_429, self.last_warning].into_iter().flatten().map(|mark| mark.at);
        now.duration_since(marks.chain([self.told_at]).max().unwrap_or(self.told_at))
    }
}

/// A moment the budget was spent, or nearly, the answers the service had counted by then, and
/// the share of the bucket it said was used (1 for a 429: all of it).
#[derive(Clone, Copy)]
pub(super) struct Mark {
    pub(super) at: Instant,
    pub(super) answered: u64,
    pub(super) used: f64,
}

/// The slowest we go, so a long pause never leaves the rate at nothing.
pub(super) const FLOOR: f64 = 0.5;

/// The fastest a ceiling may be: a million requests a second, past anything a service allows,
/// so that a limiter's period (its inverse) stays a usable duration.
pub(super) const CEILING_MOST: f64 = 1_000_000.0;

pub(super) fn limiter(rate: f64) -> std::sync::Arc<DefaultDirectRateLimiter> {
    // A burst of a tenth of a second's worth keeps many workers busy without bunching requests.
    limiter_with_burst(rate, burst(rate))
}

/// The burst a running limiter allows: a tenth of a second's worth of turns, at least one; from
/// 20 a second (Exchange's 25, Graph's 20 writes) up to a quarter of a second's worth, five turns
/// at most, so that its turns come in groups (see [`group_wait`]). Below that (a shard's share of
/// a budget, a rate cut by 429s) turns go one by one, as they always did.
pub(super) fn burst(rate: f64) -> f64 {
    let tenth = (rate / 10.0).ceil().max(1.0);
    if rate < 20.0 { tenth } else { tenth.max((rate / 4.0).ceil().min(5.0)) }
}

/// How much longer than its own turn the head of a line waits, so that the turns of those behind
/// it are due when it wakes and they go at once: one wake-up of the runner for several requests
/// (on a throttled run, a wake-up is most of what a request costs). It leaves one turn of the
/// limiter's burst unused, so a late wake-up loses none of the rate.
pub(super) fn group_wait(rate: f64) -> Duration {
    let burst = burst(rate);
    if burst < 3.0 { Duration::ZERO } else { Duration::from_secs_f64((burst - 2.0) / rate.max(FLOOR)) }
}

/// The limiter a pacer starts with: it lets a whole second's worth of its start rate go at once.
/// The service's buckets start full and hold ten seconds of budget or more (Graph's are per 10 s
/// and per 2 min 30 s, "Identity and access service limits", learn.microsoft.com/graph/
/// throttling-limits), and the start rate is what the smallest tenants allow, so that second is
/// within any tenant's budget; a small run (the quick start's 30 mailboxes) is then done in about
/// the time its requests take, not in the time a cold rate takes to climb.
pub(super) fn starting_limiter(rate: f64) -> std::sync::Arc<DefaultDirectRateLimiter> {
    limiter_with_burst(rate, rate)
}

fn limiter_with_burst(rate: f64, burst: f64) -> std::sync::Arc<DefaultDirectRateLimiter> {
    let period = Duration::from_secs_f64(1.0 / rate.max(FLOOR));
    let burst = NonZeroU32::new(burst.ceil().max(1.0) as u32).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst);
    std::sync::Arc::new(RateLimiter::direct(quota))
}

/// Requests a second let through since the last step; the rate itself when that is too short
/// a time to tell.
pub(super) fn sent_rate(rate: &Rate, sent: u64, now: Instant) -> f64 {
    let span = now.duration_since(rate.last_step).as_secs_f64();
    if span < 0.25 { rate.current } else { sent.saturating_sub(rate.sent_at_step) as f64 / span }
}

pub(super) fn set(name: &str, rate: &mut Rate, next: f64) {
    if (next - rate.current).abs() > f64::EPSILON {
        tracing::trace!(api = name, from = rate.current, to = next, "rate changed");
        rate.current = next;
        rate.limiter = limiter(next);
    }
}
