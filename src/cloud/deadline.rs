//! How long a quick read may take before it is asked again. A service that answers most requests
//! in tens of milliseconds sometimes holds one for many seconds; at the end of a run, every worker
//! waits on those few. A read of one object is safe to ask again, so it gets a deadline of ten
//! times the API's usual latency (at least [`SHORTEST`], at most the request timeout), and a slow
//! answer costs one request more instead of seconds of the whole run ("The Tail at Scale", Dean
//! and Barroso, CACM 2013). The deadline is read again while a request waits, so the first
//! requests of a run, sent before any latency was known, get it too. Writes and page reads (a
//! thousand mailboxes at a time) keep the full request timeout: a write's fate must be known (the
//! engine reads a held write's value back meanwhile, by the writes' own usual latency), and a page
//! is slow by nature.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::transport::Transport;

/// No quick read is given up on sooner.
pub(crate) const SHORTEST: Duration = Duration::from_secs(2);

/// Answers seen before the usual latency is trusted.
const WARM_UP: u64 = 20;

/// The deadline is this many times the usual latency.
const FACTOR: f64 = 10.0;

/// The usual latency of each kind of quick read (Graph alone, Graph in `$batch`, Exchange) and
/// of each API's writes, which the engine uses to tell a held write answer (see
/// `engine::target`).
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    pub graph: Latency,
    pub graph_batch: Latency,
    pub exchange: Latency,
    pub graph_writes: Latency,
    pub exchange_writes: Latency,
}

/// The usual latency of one kind of request: a moving average of quick answers.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    average_micros: AtomicU64,
    answers: AtomicU64,
}

impl Latency {
    /// One quick answer, and how long it took.
    pub(crate) fn observe(&self, took: Duration) {
        let took = took.as_micros().min(u128::from(u64::MAX)) as u64;
        let seen = self.answers.fetch_add(1, Ordering::Relaxed);
        let average = self.average_micros.load(Ordering::Relaxed);
        // A racing update may be lost; an average does not need every sample.
        let next = if seen == 0 { took } else { (average as f64 * 0.95 + took as f64 * 0.05) as u64 };
        self.average_micros.store(next, Ordering::Relaxed);
    }

    /// Whether enough answers were seen to trust the average.
    pub(crate) fn known(&self) -> bool {
        self.answers.load(Ordering::Relaxed) >= WARM_UP
    }

    /// How long a quick read may take: `longest` until enough answers were seen.
    pub(crate) fn deadline(&self, longest: Duration) -> Duration {
        if self.answers.load(Ordering::Relaxed) < WARM_UP {
            return longest;
        }
        let usual = Duration::from_micros(self.average_micros.load(Ordering::Relaxed));
        usual.mul_f64(FACTOR).clamp(SHORTEST, longest.max(SHORTEST)).min(longest)
    }
}

/// Returns once `since` plus `deadline()` has passed, reading the deadline again at least every
/// second: the usual latency may become known while a request waits, as it does for the first
/// requests of a run, sent before any answer was in.
pub(crate) async fn passed(since: Instant, deadline: impl Fn() -> Duration) {
    loop {
        let at = since + deadline();
        let now = Instant::now();
        if now >= at {
            return;
        }
        tokio::time::sleep_until(at.min(now + RECHECK)).await;
    }
}

/// How often a pending deadline is read again.
const RECHECK: Duration = Duration::from_secs(1);

/// Answers `answer` unless the deadline passes first (see [`passed`]); then a transport failure
/// that says so (the request may have reached the service).
pub(crate) async fn within<T>(
    answer: impl Future<Output = Result<T, Transport>>,
    since: Instant,
    deadline: impl Fn() -> Duration,
) -> Result<T, Transport> {
    tokio::select! {
        answer = answer => answer,
        () = passed(since, deadline) => {
            Err(Transport { sent: true, message: "timed out (far longer than the usual answer)".into() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_that_becomes_known_while_a_request_waits_is_kept() {
        let latency = Latency::default();
        let since = Instant::now();
        let waiting = passed(since, || latency.deadline(Duration::from_secs(30)));
        tokio::pin!(waiting);
        let early = tokio::time::timeout(Duration::from_millis(1500), &mut waiting).await;
        assert!(early.is_err(), "no latency known yet: the request timeout holds");
        for _ in 0..WARM_UP {
            latency.observe(Duration::from_millis(50));
        }
        tokio::time::timeout(Duration::from_secs(2), &mut waiting).await.expect("the deadline, now known, has passed");
        assert!(since.elapsed() < Duration::from_secs(3), "{:?}", since.elapsed());
    }

    #[test]
    fn the_deadline_follows_the_usual_latency_within_bounds() {
        let latency = Latency::default();
        let longest = Duration::from_secs(30);
        assert_eq!(latency.deadline(longest), longest, "no deadline before the latency is known");
        for _ in 0..WARM_UP {
            latency.observe(Duration::from_millis(50));
        }
        assert_eq!(latency.deadline(longest), SHORTEST, "ten times 50 ms is under the shortest");
        for _ in 0..200 {
            latency.observe(Duration::from_millis(800));
        }
        let deadline = latency.deadline(longest);
        assert!(deadline > Duration::from_secs(7) && deadline <= Duration::from_secs(8), "{deadline:?}");
        assert_eq!(latency.deadline(Duration::from_secs(1)), Duration::from_secs(1), "never past the timeout");
    }
}
