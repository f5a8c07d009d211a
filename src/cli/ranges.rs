//! The ranges numeric flags are held to, each refusal naming its flag: nothing a user types
//! reaches code that cannot use it (a rate ceiling under the pacer's floor made `f64::clamp`
//! panic at the first 429).

use std::ops::RangeInclusive;
use std::time::Duration;

/// Rate ceilings, in requests a second: from the pacer's floor (half a request a second, the
/// slowest it ever goes) to far past any budget Microsoft publishes (Graph's largest is 8,000
/// resource units per 10 s) and what a local rehearsal serves (the simulator, 24,000 a second).
pub(super) const RATES: RangeInclusive<f64> = 0.5..=100_000.0;

/// How long a request may take (`--request-timeout`) or requests in flight may finish after a
/// signal (`--grace`): a millisecond (a grace that abandons at once, which the chaos test uses)
/// to an hour.
pub(super) const WAITS: RangeInclusive<Duration> = Duration::from_millis(1)..=Duration::from_secs(3600);

/// A parser for the rate ceiling `flag`.
pub(super) fn rate(flag: &'static str) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |text: &str| match text.trim().parse::<f64>() {
        // NaN and the infinities parse, and fall outside the range.
        Ok(rate) if RATES.contains(&rate) => Ok(rate),
        _ => Err(format!(
            "{flag} '{text}': give requests a second from {} to {}, e.g. {flag} 20",
            RATES.start(),
            RATES.end()
        )),
    }
}

/// A parser for the duration `flag` (`30`, `30s`, `500ms`, `2m`), within [`WAITS`].
pub(super) fn wait(flag: &'static str) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let duration = super::parse_duration(text).map_err(|problem| format!("{flag}: {problem}"))?;
        if !WAITS.contains(&duration) {
            return Err(format!("{flag} '{text}': give a duration from 1ms to 1h, e.g. {flag} 30s"));
        }
        Ok(duration)
    }
}
