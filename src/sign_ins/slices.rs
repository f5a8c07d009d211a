//! The sign-in log read a slice of time at a time. A filtered query over a month of a large
//! tenant's log takes minutes a page (msgraph-sdk-powershell issues 2941 and 3146), and Microsoft's
//! throttling guidance for the reports asks for narrow `createdDateTime` ranges read in turn
//! ("Identity and access reports service limits", learn.microsoft.com/graph/throttling-limits).
//! So a window is read first as one query with the ordinary timeout; a log that fits one page
//! (most tenants' SMTP AUTH sign-ins) is done in one request. Otherwise it is read as days, a few
//! at once inside the reports budget (the client's reports pacer), each page given minutes; a day
//! that cannot be read is split into halves down to an hour and read again alone, and one that
//! still fails makes the whole read fail, naming it: a partial log is never taken for the whole.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use time::OffsetDateTime;

use crate::cloud::CallError;

/// Days read at once. The reports budget limits how often a request may start (five per 10
/// seconds, kept by the client's pacer), not how many may be under way: ten slow pages at once
/// start one every few seconds, inside it, and a month of a large log reads in a tenth of the
/// time one query takes.
const AT_ONCE: usize = 10;

/// How long a page of one slice may take: real tenants' filtered pages take minutes.
pub(super) const PAGE_TIMEOUT: Duration = Duration::from_secs(300);

/// No slice is split below this.
const SHORTEST: Duration = Duration::from_secs(3600);

/// Tries of a slice that can no longer be split.
const TRIES: u32 = 2;

/// A span of the log: `createdDateTime ge start and createdDateTime lt end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slice {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    /// Tries so far of this very span.
    tries: u32,
}

impl Slice {
    pub(super) fn new(start: OffsetDateTime, end: OffsetDateTime) -> Slice {
        Slice { start, end, tries: 0 }
    }

    /// The window cut into days (the last one shorter).
    pub(super) fn days(self) -> Vec<Slice> {
        let day = time::Duration::days(1);
        let mut slices = Vec::new();
        let mut start = self.start;
        while start < self.end {
            let end = (start + day).min(self.end);
            slices.push(Slice::new(start, end));
            start = end;
        }
        slices
    }

    /// What to read after this slice failed: its halves while it is longer than an hour, else
    /// itself once more, else nothing (it failed for good).
    pub(super) fn after_failure(self) -> Vec<Slice> {
        let length = self.end - self.start;
        if length > SHORTEST {
            let middle = self.start + length / 2;
            return vec![Slice::new(self.start, middle), Slice::new(middle, self.end)];
        }
        if self.tries + 1 < TRIES { vec![Slice { tries: self.tries + 1, ..self }] } else { Vec::new() }
    }

    /// The filter that selects it.
    pub(super) fn filter(&self, client_app: &str) -> String {
        format!(
            "clientAppUsed eq '{client_app}' and createdDateTime ge {} and createdDateTime lt {}",
            crate::support::timestamp::rfc3339(self.start),
            crate::support::timestamp::rfc3339(self.end)
        )
    }

    /// Its days, for a message (`YYYY-MM-DD`).
    pub(super) fn day(&self) -> String {
        crate::support::timestamp::rfc3339(self.start).get(..10).unwrap_or_default().to_string()
    }
}

/// Whether a failure is one that another try cannot mend: a refusal of the app or the tenant.
pub(super) fn lasting(error: &CallError) -> bool {
    matches!(error, CallError::Refused { status: 401 | 403, .. })
}

/// Reads every slice with `read` (a few at once), splitting and retrying those that fail; gives
/// each finished slice to `done` with what it read. Fails on a lasting refusal at once, or once
/// every slice that can be read was, naming the days that could not.
pub(super) async fn read_all<T, F, Fut>(
    slices: Vec<Slice>,
    read: F,
    mut done: impl FnMut(Slice, T),
) -> Result<(), SlicesFailed>
where
    F: Fn(Slice) -> Fut,
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    let mut pending: VecDeque<Slice> = slices.into();
    let mut running = FuturesUnordered::new();
    let mut failed: Vec<(Slice, CallError)> = Vec::new();
    loop {
        while running.len() < AT_ONCE
            && let Some(slice) = pending.pop_front()
        {
            let reading = read(slice);
            running.push(async move { (slice, reading.await) });
        }
        let Some((slice, outcome)) = running.next().await else { break };
        match outcome {
            Ok(part) => done(slice, part),
            Err(error) if lasting(&error) => return Err(SlicesFailed::Refused(error)),
            Err(error) => {
                let again = slice.after_failure();
                tracing::debug!(from = %crate::support::timestamp::rfc3339(slice.start), %error, "a slice of the sign-in log failed: reading it again in {} part(s)", again.len());
                if again.is_empty() {
                    failed.push((slice, error));
                }
                pending.extend(again);
            }
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(SlicesFailed::Days(failed)) }
}

/// Why the slices could not all be read.
#[derive(Debug)]
pub(super) enum SlicesFailed {
    /// The app or the tenant was refused: no slice will do better.
    Refused(CallError),
    /// These slices failed after every try, each with its last error.
    Days(Vec<(Slice, CallError)>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_window_is_cut_into_days_and_a_failing_day_into_halves_down_to_an_hour() {
        let window = Slice::new(datetime!(2026-11-01 10:30 UTC), datetime!(2026-11-04 08:00 UTC));
        let days = window.days();
        assert_eq!(days.len(), 3);
        assert_eq!(days[0], Slice::new(datetime!(2026-11-01 10:30 UTC), datetime!(2026-11-02 10:30 UTC)));
        assert_eq!(days[2].end, datetime!(2026-11-04 08:00 UTC), "the last day is shorter");
        assert!(days.windows(2).all(|pair| pair[0].end == pair[1].start), "no gap, no overlap");

        let halves = days[0].after_failure();
        assert_eq!(halves.len(), 2);
        assert_eq!(
            (halves[0].end, halves[1].start),
            (datetime!(2026-11-01 22:30 UTC), datetime!(2026-11-01 22:30 UTC))
        );
        let mut slice = days[0];
        let mut splits = 0;
        while slice.end - slice.start > SHORTEST {
            slice = slice.after_failure()[0];
            splits += 1;
        }
        assert_eq!(splits, 5, "24 h, 12, 6, 3, 1.5, 0.75 h");
        let again = slice.after_failure();
        assert_eq!(again.len(), 1, "an hour is tried once more");
        assert!(again[0].after_failure().is_empty(), "then it has failed for good");
    }

    #[test]
    fn a_slice_filters_its_own_span_only() {
        let slice = Slice::new(datetime!(2026-11-01 00:00 UTC), datetime!(2026-11-02 00:00 UTC));
        assert_eq!(
            slice.filter("Authenticated SMTP"),
            "clientAppUsed eq 'Authenticated SMTP' and createdDateTime ge 2026-11-01T00:00:00Z and createdDateTime lt 2026-11-02T00:00:00Z"
        );
        assert_eq!(slice.day(), "2026-11-01");
    }

    /// A day that keeps failing is split, each part tried, and named at the end; every other
    /// day is read once; a refusal stops everything at once.
    #[tokio::test]
    async fn a_day_that_keeps_failing_is_split_retried_and_named() {
        let window = Slice::new(datetime!(2026-11-01 00:00 UTC), datetime!(2026-11-04 00:00 UTC));
        let bad = datetime!(2026-11-02 05:30 UTC);
        let asked = std::sync::Mutex::new(Vec::new());
        let mut read_back = Vec::new();
        let outcome = read_all(
            window.days(),
            |slice| {
                asked.lock().unwrap().push(slice);
                async move {
                    if slice.start <= bad && bad < slice.end {
                        Err(CallError::Exhausted { last: "timed out".into(), ids: Default::default(), attempts: 1 })
                    } else {
                        Ok(slice.end - slice.start)
                    }
                }
            },
            |_, length| read_back.push(length),
        )
        .await;
        let Err(SlicesFailed::Days(failed)) = outcome else { panic!("the bad day is not taken as read") };
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0.day(), "2026-11-02");
        let read: time::Duration = read_back.iter().copied().sum();
        assert_eq!(
            read,
            time::Duration::days(3) - (failed[0].0.end - failed[0].0.start),
            "everything else was read once"
        );
        assert_eq!(
            asked.lock().unwrap().iter().filter(|s| s.start <= bad && bad < s.end).count(),
            7,
            "24, 12, 6, 3, 1.5, 0.75 h, and once more"
        );

        let refused = read_all(
            window.days(),
            |_| async {
                Err::<(), _>(CallError::Refused {
                    status: 403,
                    code: "Authorization_RequestDenied".into(),
                    message: "no".into(),
                    ids: Default::default(),
                    attempts: 1,
                })
            },
            |_, ()| {},
        )
        .await;
        assert!(matches!(refused, Err(SlicesFailed::Refused(_))));
    }
}
