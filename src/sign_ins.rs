//! Who signs in with SMTP AUTH: the Entra sign-in log's entries for SMTP client submission over a
//! window, read for the whole tenant (never once per mailbox; a large log a day at a time, see
//! [`slices`]) and folded into one record per user as the pages arrive.
//!
//! Graph `GET /v1.0/auditLogs/signIns` with `$filter=clientAppUsed eq 'Authenticated SMTP' and
//! createdDateTime ge …`, paged with `@odata.nextLink` ("List signIns",
//! learn.microsoft.com/graph/api/signin-list; "Authenticated SMTP" is the value public clients
//! such as CIPP filter on against real tenants). Reading it needs AuditLog.Read.All and a tenant
//! with Entra ID P1 or P2, and the reports API has a budget of its own: five requests per 10
//! seconds per app and tenant ("Identity and access reports service limits",
//! learn.microsoft.com/graph/throttling-limits), which the client paces apart (`Call::reports`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::cloud::paths::query_pair;
use crate::cloud::{CallError, CloudClient, graph};

mod slices;

use slices::{Slice, SlicesFailed};

/// The `clientAppUsed` of an SMTP AUTH sign-in.
pub(crate) const SMTP_CLIENT_APP: &str = "Authenticated SMTP";

/// Where an administrator reads about the ways off Basic authentication for SMTP AUTH.
pub(crate) const WAY_OUT: &str =
    "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission";

/// One user's SMTP AUTH sign-ins in the window.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct UserUsage {
    pub upn: String,
    pub user_id: String,
    pub sign_ins: u64,
    pub failures: u64,
    /// The newest sign-in (RFC 3339), its error code (0 for a success) and failure reason.
    pub last_seen: String,
    pub last_error_code: u32,
    pub last_result: String,
    /// The newest successful sign-in, if any.
    pub last_success: Option<String>,
    /// The Conditional Access policies the newest sign-in says it met, with their result
    /// (`appliedConditionalAccessPolicies`; those not applied are left out).
    pub last_policies: Vec<String>,
    /// The addresses the sign-ins came from (the first few).
    pub addresses: BTreeSet<String>,
}

/// What the sign-in log says of SMTP AUTH in a window.
#[derive(Clone, Debug, Default)]
pub(crate) struct Usage {
    /// The window's start (RFC 3339) and its length in days.
    pub since: String,
    pub days: u64,
    /// By user id (lower case).
    pub users: BTreeMap<String, UserUsage>,
    /// By day (`YYYY-MM-DD`): successful and failed sign-ins.
    pub per_day: BTreeMap<String, (u64, u64)>,
    /// Entries read and the requests (pages) it took.
    pub entries: u64,
    pub requests: u64,
}

/// Addresses kept per user: enough to find the device, not a log of its own.
const ADDRESSES_KEPT: usize = 5;

/// Why the sign-in log could not be read, in words that say what to do.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the sign-in log: {0}")]
pub struct SignInLogError(pub String);

impl Usage {
    fn add_page(&mut self, body: &Value) {
        for entry in body["value"].as_array().into_iter().flatten() {
            self.add(entry);
        }
    }

    /// Adds what another slice of the log read: slices never overlap, so counts add up.
    fn merge(&mut self, part: Usage) {
        self.entries += part.entries;
        self.requests += part.requests;
        for (day, (successes, failures)) in part.per_day {
            let counts = self.per_day.entry(day).or_default();
            counts.0 += successes;
            counts.1 += failures;
        }
        for (id, other) in part.users {
            let user = self.users.entry(id).or_default();
            user.user_id.clone_from(&other.user_id);
            user.sign_ins += other.sign_ins;
            user.failures += other.failures;
            if other.last_seen > user.last_seen {
                user.last_seen = other.last_seen;
                user.last_error_code = other.last_error_code;
                user.last_result = other.last_result;
                user.upn = other.upn;
                user.last_policies = other.last_policies;
            }
            if other.last_success > user.last_success {
                user.last_success = other.last_success;
            }
            let room = ADDRESSES_KEPT.saturating_sub(user.addresses.len());
            user.addresses.extend(other.addresses.into_iter().take(room));
        }
    }

    fn add(&mut self, entry: &Value) {
        let (Some(user_id), Some(at)) = (entry["userId"].as_str(), entry["createdDateTime"].as_str()) else {
            return;
        };
        let code = entry["status"]["errorCode"].as_u64().unwrap_or(0) as u32;
        self.entries += 1;
        let day = self.per_day.entry(at.get(..10).unwrap_or(at).to_string()).or_default();
        if code == 0 {
            day.0 += 1
        } else {
            day.1 += 1
        }
        let user = self.users.entry(user_id.to_lowercase()).or_default();
        user.user_id = user_id.to_lowercase();
        user.sign_ins += 1;
        user.failures += u64::from(code != 0);
        // The log comes newest first, but nothing promises it: the latest wins by its time.
        if at > user.last_seen.as_str() {
            user.last_seen = at.to_string();
            user.last_error_code = code;
            user.last_result = entry["status"]["failureReason"].as_str().unwrap_or_default().to_string();
            user.upn = entry["userPrincipalName"].as_str().unwrap_or_default().to_string();
            user.last_policies = applied_policies(entry);
        }
        if code == 0 && user.last_success.as_deref().is_none_or(|last| at > last) {
            user.last_success = Some(at.to_string());
        }
        if let Some(address) = entry["ipAddress"].as_str()
            && user.addresses.len() < ADDRESSES_KEPT
        {
            user.addresses.insert(address.to_string());
        }
    }

    /// Users with any SMTP AUTH sign-in, failed ones included.
    pub(crate) fn seen(&self, user_id: &str) -> Option<&UserUsage> {
        self.users.get(&user_id.to_lowercase())
    }

    /// Users with failures only (a device that is trying and cannot): the fix's first customers.
    pub(crate) fn failing(&self) -> usize {
        self.users.values().filter(|u| u.last_success.is_none()).count()
    }
}

/// The Conditional Access policies a sign-in met: `appliedConditionalAccessPolicies`, whose
/// `result` is one of success, failure, notApplied, notEnabled, reportOnly… ("signIn resource
/// type", appliedConditionalAccessPolicy); the ones not applied or not enabled are left out.
fn applied_policies(entry: &Value) -> Vec<String> {
    let applied = entry["appliedConditionalAccessPolicies"].as_array().into_iter().flatten();
    applied
        .filter_map(|policy| {
            let result = policy["result"].as_str()?;
            let skipped =
                ["notApplied", "notEnabled", "reportOnlyNotApplied"].iter().any(|r| r.eq_ignore_ascii_case(result));
            let name = policy["displayName"].as_str().or_else(|| policy["id"].as_str())?;
            (!skipped).then(|| format!("{name} ({result})"))
        })
        .collect()
}

/// Reads the SMTP AUTH sign-ins of the last `window` (whole days, rounded up): as one query when
/// the log fits one page, else a day at a time (see [`slices`]).
pub(crate) async fn read(client: &CloudClient, window: Duration) -> Result<Usage, SignInLogError> {
    let days = window.as_secs().div_ceil(86_400).max(1);
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let whole = Slice::new(now - window, now);
    let since = crate::support::timestamp::rfc3339(whole.start);
    let mut usage = Usage { since, days, ..Usage::default() };
    // The whole window once, given about one request timeout: a slow first page is not waited
    // out or asked again, for the days will be read instead.
    let patience = client.request_timeout() * 2;
    match tokio::time::timeout(patience, read_slice(client, whole, Pages::One)).await {
        Ok(Ok(Some(part))) => {
            usage.merge(part);
            return Ok(usage);
        }
        Ok(Ok(None)) => tracing::info!("sign-in log: more than a page in {days} days; reading it a day at a time"),
        Ok(Err(error)) if slices::lasting(&error) => return Err(explain(error)),
        Ok(Err(error)) => tracing::info!(%error, "sign-in log: the whole window failed; reading it a day at a time"),
        Err(_) => tracing::info!(
            "sign-in log: no answer for the whole window within {patience:?}; reading it a day at a time"
        ),
    }
    // The look at the whole window was a request, whatever came of it.
    usage.requests += 1;
    let slices = whole.days();
    let (total, mut read_days, mut last_said) = (slices.len(), 0usize, tokio::time::Instant::now());
    let outcome = slices::read_all(
        slices,
        |slice| async move { read_slice(client, slice, Pages::All).await.map(Option::unwrap_or_default) },
        |slice, part| {
            usage.merge(part);
            // A split day counts when its last part is in; a progress line every few seconds.
            if slice.end.time() == whole.start.time() || slice.end == whole.end {
                read_days += 1;
            }
            if last_said.elapsed() >= Duration::from_secs(5) || read_days == total {
                last_said = tokio::time::Instant::now();
                tracing::info!("sign-in log: {read_days} of {total} days read, {} sign-ins so far", usage.entries);
            }
        },
    )
    .await;
    match outcome {
        Ok(()) => Ok(usage),
        Err(SlicesFailed::Refused(error)) => Err(explain(error)),
        Err(SlicesFailed::Days(failed)) => {
            let days: std::collections::BTreeSet<String> = failed.iter().map(|(slice, _)| slice.day()).collect();
            let last = failed.last().map(|(_, error)| error.to_string()).unwrap_or_default();
            Err(SignInLogError(format!(
                "the days {} could not be read after every try ({last}). The rest was read, but a partial log is never taken for the whole: run again later, or give a shorter window (--days)",
                days.into_iter().collect::<Vec<_>>().join(", ")
            )))
        }
    }
}

/// How much of a slice to read.
#[derive(Clone, Copy, PartialEq)]
enum Pages {
    /// The first page only, with the ordinary timeout: `None` when there is more.
    One,
    /// Every page, each given [`slices::PAGE_TIMEOUT`].
    All,
}

/// The sign-ins of one slice, at the documented largest page ("The maximum and default page size
/// is 1,000 objects", List signIns).
async fn read_slice(client: &CloudClient, slice: Slice, pages: Pages) -> Result<Option<Usage>, CallError> {
    let filter = slice.filter(SMTP_CLIENT_APP);
    let mut call =
        graph::get(format!("v1.0/auditLogs/signIns?{}&{}", query_pair("$filter", &filter), query_pair("$top", "1000")));
    call.reports = true;
    let mut part = Usage::default();
    if pages == Pages::One {
        call.page = true;
        let answer = client.send(&call).await?;
        part.requests = 1;
        if answer.body.get("@odata.nextLink").is_some_and(|link| !link.is_null()) {
            return Ok(None);
        }
        part.add_page(&answer.body);
        return Ok(Some(part));
    }
    call.timeout = Some(slices::PAGE_TIMEOUT);
    part.requests = client.pages(call, |answer| part.add_page(&answer.body)).await?;
    Ok(Some(part))
}

/// The refusals an administrator can act on, said with the action.
fn explain(error: CallError) -> SignInLogError {
    let text = match error.code().as_str() {
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant" => "the tenant has no Microsoft Entra ID P1 or P2 licence, which Graph needs to hand out sign-in logs (403 Authentication_RequestFromNonPremiumTenantOrB2CTenant). Assign Entra ID P1 (in Microsoft 365 E3, Business Premium and EMS E3) to at least one user, or find the devices another way (Exchange's SMTP AUTH clients report in the admin center)".to_string(),
        "Authorization_RequestDenied" => "the app may not read it (403 Authorization_RequestDenied): grant it AuditLog.Read.All (Microsoft Graph, application) with admin consent".to_string(),
        _ => error.to_string(),
    };
    SignInLogError(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(user: &str, at: &str, code: u32, address: &str) -> Value {
        json!({"userId": user, "userPrincipalName": format!("{user}@contoso.com"), "createdDateTime": at,
               "ipAddress": address, "status": {"errorCode": code, "failureReason": if code == 0 { "Other." } else { "Error validating credentials due to invalid username or password." }}})
    }

    #[test]
    fn entries_fold_into_one_record_a_user_whatever_their_order() {
        let mut usage = Usage::default();
        usage.add(&entry("A", "2026-11-20T10:00:00Z", 0, "203.0.113.5"));
        usage.add(&entry("a", "2026-11-27T10:00:00Z", 50126, "203.0.113.6"));
        usage.add(&entry("b", "2026-11-21T10:00:00Z", 50126, "203.0.113.9"));
        let mut blocked = entry("c", "2026-11-22T10:00:00Z", 53003, "203.0.113.10");
        blocked["appliedConditionalAccessPolicies"] = json!([
            {"id": "p1", "displayName": "Block legacy authentication", "result": "failure", "enforcedGrantControls": ["Block"]},
            {"id": "p2", "displayName": "Require MFA", "result": "notApplied"},
            {"id": "p3", "displayName": "Report only", "result": "reportOnlyFailure"}
        ]);
        usage.add(&blocked);
        assert_eq!(
            usage.seen("c").unwrap().last_policies,
            ["Block legacy authentication (failure)", "Report only (reportOnlyFailure)"]
        );
        let a = usage.seen("A").unwrap();
        assert_eq!((a.sign_ins, a.failures, a.last_error_code), (2, 1, 50126));
        assert_eq!(a.last_seen, "2026-11-27T10:00:00Z");
        assert_eq!(a.last_success.as_deref(), Some("2026-11-20T10:00:00Z"));
        assert_eq!(a.addresses.len(), 2);
        assert_eq!(usage.failing(), 2, "b and c only ever failed");
        assert_eq!(usage.per_day["2026-11-21"], (0, 1));
        assert_eq!(usage.entries, 4);
    }

    /// Slices read apart and merged say what one read of the whole says.
    #[test]
    fn slices_merged_equal_the_whole_read_at_once() {
        let entries = [
            entry("a", "2026-11-20T10:00:00Z", 0, "203.0.113.1"),
            entry("a", "2026-11-21T10:00:00Z", 50126, "203.0.113.2"),
            entry("b", "2026-11-21T11:00:00Z", 0, "203.0.113.3"),
            entry("a", "2026-11-22T09:00:00Z", 0, "203.0.113.4"),
        ];
        let mut whole = Usage::default();
        entries.iter().for_each(|e| whole.add(e));
        let (mut first, mut second) = (Usage::default(), Usage::default());
        entries[..2].iter().for_each(|e| first.add(e));
        entries[2..].iter().for_each(|e| second.add(e));
        let mut merged = Usage::default();
        merged.merge(second);
        merged.merge(first);
        assert_eq!(merged.users, whole.users);
        assert_eq!(merged.per_day, whole.per_day);
        assert_eq!(merged.entries, whole.entries);
    }
}
