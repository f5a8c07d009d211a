//! Why and when a run stops early: a signal (Ctrl-C, SIGTERM), a journal that can no longer be
//! written, or credentials the service stopped taking. From that moment no new work starts, and
//! work under way gets `--grace` to finish, in every phase of the run (sign-in, the tenant step,
//! the targets); a run that was never stopped waits for all of its work, however slow.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::exit;

/// Why a run stopped before its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Ctrl-C or SIGTERM.
    Signal,
    /// The journal could not be written (a full disk): nothing more can be recorded.
    Journal(String),
    /// The service refused the app's token even after a fresh one.
    Auth(String),
}

/// Shared by everything in a run: ask it to stop, or wait for the end of the grace period.
#[derive(Clone, Debug)]
pub(crate) struct Stop {
    token: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
    grace: Duration,
}

impl Stop {
    pub(crate) fn new(grace: Duration) -> Stop {
        Stop { token: CancellationToken::new(), reason: Arc::default(), grace }
    }

    /// Stops the run; the first reason given is the one kept.
    pub(crate) fn request(&self, reason: StopReason) {
        let mut kept = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if kept.is_none() {
            *kept = Some(reason);
        }
        self.token.cancel();
    }

    pub(crate) fn reason(&self) -> Option<StopReason> {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when the run is asked to stop.
    pub(crate) async fn stopped(&self) {
        self.token.cancelled().await;
    }

    /// Resolves when the grace period after a stop is over; never, if the run is not stopped.
    pub(crate) async fn deadline(&self) {
        self.token.cancelled().await;
        tokio::time::sleep(self.grace).await;
    }

    /// Runs `work` until it ends, or until the grace period after a stop is over (`None`).
    pub(crate) async fn within_grace<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            done = work => Some(done),
            _ = self.deadline() => None,
        }
    }

    /// Stops the run at the first Ctrl-C or SIGTERM; a second one ends the process at once (the
    /// journal stays consistent: every record in it is whole or detectably damaged).
    pub(crate) fn watch_signals(&self) {
        let stop = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::warn!(
                "interrupted: finishing the requests in flight (at most --grace {:?}), then writing the report (interrupt again to stop at once)",
                stop.grace
            );
            stop.request(StopReason::Signal);
            wait_for_signal().await;
            crate::logging::say(
                crate::logging::Loudness::Warning,
                "stopped",
                "at once, on a second signal; the journal is consistent and --resume carries on",
            );
            std::process::exit(i32::from(exit::INTERRUPTED));
        });
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slow_work_is_waited_for_until_a_stop_then_only_for_the_grace() {
        let stop = Stop::new(Duration::from_secs(30));
        let slow = tokio::time::sleep(Duration::from_secs(3600));
        assert_eq!(stop.within_grace(slow).await, Some(()), "no stop: an hour is waited for");
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            stopper.request(StopReason::Signal);
            stopper.request(StopReason::Auth("later".into()));
        });
        let started = tokio::time::Instant::now();
        assert_eq!(stop.within_grace(tokio::time::sleep(Duration::from_secs(3600))).await, None);
        assert_eq!(started.elapsed().as_secs(), 35, "stopped at 5 s, then 30 s of grace");
        assert_eq!(stop.reason(), Some(StopReason::Signal), "the first reason is kept");
    }
}
