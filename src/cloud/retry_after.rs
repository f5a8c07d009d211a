//! `Retry-After`: seconds (whole or fractional) or an HTTP date, and the backoff used when the
//! service gives none.

use std::time::{Duration, SystemTime};

/// The longest wait we accept from a header; anything longer is taken as this.
const LONGEST: Duration = Duration::from_secs(300);

/// Parses a `Retry-After` value; `None` for anything that is neither seconds nor an HTTP date.
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(LONGEST.as_secs_f64())));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO).min(LONGEST))
}

/// Exponential backoff with full jitter: attempt 1 waits up to `base`, doubling up to `cap`.
pub(crate) fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(cap);
    ceiling.mul_f64(0.5 + fastrand::f64() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seconds_fractions_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse("0.5", now), Some(Duration::from_millis(500)));
        assert_eq!(parse(&httpdate::fmt_http_date(now + Duration::from_secs(7)), now), Some(Duration::from_secs(7)));
        assert_eq!(parse(&httpdate::fmt_http_date(now - Duration::from_secs(7)), now), Some(Duration::ZERO));
        assert_eq!(parse("-1", now), None);
        assert_eq!(parse("soon", now), None);
        assert_eq!(parse("1e9", now), Some(LONGEST));
    }

    #[test]
    fn backoff_grows_and_stays_capped() {
        let cap = Duration::from_secs(10);
        assert!(backoff(1, Duration::from_millis(200), cap) <= Duration::from_millis(200));
        assert!(backoff(40, Duration::from_millis(200), cap) <= cap);
        assert!(backoff(40, Duration::from_millis(200), cap) >= cap / 2);
    }

    proptest! {
        #[test]
        fn any_header_value_parses_without_panicking(value in ".*") {
            let _ = parse(&value, SystemTime::now());
        }
    }
}
