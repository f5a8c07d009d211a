//! Progress while a run goes: an indicatif bar when stderr is a terminal, and otherwise (cron,
//! CI, a pipe) a plain log line every few seconds.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

const LOG_EVERY: Duration = Duration::from_secs(5);

pub(super) struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: Option<u64>,
    done: u64,
    changed: u64,
    failed: u64,
    last_log: Option<Instant>,
}

impl Progress {
    pub(super) fn new(quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            crate::logging::set_progress_bar(Some(bar.clone()));
            bar
        });
        Progress { bar, started: Instant::now(), state: Mutex::new(State::default()) }
    }

    pub(super) fn started(&self, total: Option<u64>) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).total = total;
        if let (Some(bar), Some(total)) = (&self.bar, total) {
            bar.set_length(total);
        }
    }

    pub(super) fn row(&self, changed: bool, failed: bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.changed += u64::from(changed);
        state.failed += u64::from(failed);
    }

    /// One target (or one rejected row) is done.
    pub(super) fn advance(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.done += 1;
        if let Some(bar) = &self.bar {
            bar.set_position(state.done);
            bar.set_message(format!("targets · {} changes, {} failures", state.changed, state.failed));
            return;
        }
        let now = Instant::now();
        if state.last_log.is_some_and(|last| now.duration_since(last) < LOG_EVERY) {
            return;
        }
        state.last_log = Some(now);
        let rate = state.done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let (total, share) = match state.total {
            Some(total) if total > 0 => {
                let left = total.saturating_sub(state.done) as f64 / rate.max(0.001);
                (
                    total.to_string(),
                    format!(" ({:.0} %, about {:.0} s left)", 100.0 * state.done as f64 / total as f64, left),
                )
            }
            _ => ("?".to_string(), String::new()),
        };
        tracing::info!(
            "progress: {}/{total} targets{share}, {rate:.1}/s, {} changes, {} failures",
            state.done,
            state.changed,
            state.failed
        );
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            crate::logging::set_progress_bar(None);
        }
    }
}
