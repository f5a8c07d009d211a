//! Seeded latency and transient faults.
//!
//! A fault either happens before the request is carried out (503: nothing changed) or after it
//! (504, a dropped connection, a reply slower than any sane timeout: a write did happen). The
//! simulator counts the second kind so tests can tell a client that re-reads from one that
//! blindly writes again. With `late_landing` set, a write can also land *after* its connection
//! dropped: the harshest reading of HTTP's own semantics (RFC 9110, 9.2.2: a communication
//! failure before the response is read says nothing about whether the server carried the
//! request out), and what a front end that gives up on a back end that goes on does.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// 503 with `Retry-After`; nothing was done.
    UnavailableRetryAfter,
    /// 503 without `Retry-After`; nothing was done.
    Unavailable,
    /// 504 after the work was done.
    GatewayTimeout,
    /// The connection drops after the work was done.
    Dropped,
    /// The reply comes after `slow_reply`; the work was done.
    Slow,
    /// The connection drops at once, before the work; the work is done `late_landing` later.
    /// Drawn only when `late_landing` is set.
    LandsLate,
}

impl Fault {
    pub(crate) fn after_work(self) -> bool {
        matches!(self, Fault::GatewayTimeout | Fault::Dropped | Fault::Slow)
    }
}

#[derive(Debug)]
pub(crate) struct Faults {
    rate: f64,
    latency: Duration,
    rng: Mutex<fastrand::Rng>,
    /// The outage is over: no more faults (latency stays).
    calm: AtomicBool,
    /// How long after its connection dropped a write that lands late lands; `None`: never.
    late_landing: Option<Duration>,
}

impl Faults {
    pub(crate) fn new(rate: f64, latency: Duration, seed: u64, late_landing: Option<Duration>) -> Faults {
        Faults {
            rate,
            latency,
            rng: Mutex::new(fastrand::Rng::with_seed(seed ^ 0x5eed_fa17)),
            calm: AtomicBool::new(false),
            late_landing,
        }
    }

    /// How long after its connection dropped a write that lands late is carried out.
    pub(crate) fn late_landing(&self) -> Duration {
        self.late_landing.unwrap_or_default()
    }

    /// Ends the faults from now on, as when a service's bad hour is over.
    pub(crate) fn calm_down(&self) {
        self.calm.store(true, Ordering::Relaxed);
    }

    /// The delay before this request is answered: uniform around the mean (±50 %).
    pub(crate) fn latency(&self) -> Duration {
        if self.latency.is_zero() {
            return Duration::ZERO;
        }
        let factor = 0.5 + self.rng.lock().unwrap_or_else(|e| e.into_inner()).f64();
        self.latency.mul_f64(factor)
    }

    pub(crate) fn draw(&self) -> Option<Fault> {
        if self.rate <= 0.0 || self.calm.load(Ordering::Relaxed) {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if rng.f64() >= self.rate {
            return None;
        }
        // Without late landings the draw is the one it always was, so seeded runs replay.
        let kinds = if self.late_landing.is_some() { 6 } else { 5 };
        Some(match rng.u8(0..kinds) {
            0 => Fault::UnavailableRetryAfter,
            1 => Fault::Unavailable,
            2 => Fault::GatewayTimeout,
            3 => Fault::Dropped,
            4 => Fault::Slow,
            _ => Fault::LandsLate,
        })
    }
}
