//! Where a request waits for its turn at a pacer: past any pause, in line for the rate (or
//! ahead of the line), and for an in-flight slot.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::SemaphorePermit;
use tokio::time::Instant;

use super::{Pacer, rate};

/// Where a request waits for the rate.
#[derive(Clone, Copy)]
enum Line {
    Wait,
    GoAhead,
}

impl Pacer {
    /// Waits until a request may go: past any pause, within the rate, with an in-flight slot.
    /// A pause that began while the request waited for its slot is waited out too: the requests
    /// queued for slots would otherwise go one by one as the throttled answers free them, each
    /// into the same 429.
    pub(crate) async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.acquire_in(Line::Wait).await
    }

    /// As [`acquire`](Self::acquire), but ahead of the requests waiting in line: for the pages
    /// of a listing that many targets wait on, which would otherwise each wait behind a line
    /// those targets' own requests keep full.
    pub(crate) async fn acquire_ahead(&self) -> Option<SemaphorePermit<'_>> {
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

    /// Holds every worker for `wait`, without changing the rate.
    pub(crate) fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }
}
