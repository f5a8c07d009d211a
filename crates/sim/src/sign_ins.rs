//! The Entra sign-in log's SMTP AUTH entries, served as Graph's `GET /auditLogs/signIns`
//! (learn.microsoft.com/graph/api/signin-list): newest first, `$filter` on `clientAppUsed`
//! ("Authenticated SMTP", the value CIPP's SMTP AUTH alert filters on against real tenants),
//! `createdDateTime`, `status/errorCode`, `userId` and `userPrincipalName`, paged with
//! `@odata.nextLink`.
//!
//! The log costs what the documents say it costs: "You must have a Microsoft Entra ID P1 or P2
//! license to download sign-in logs using the Microsoft Graph API" (signIn resource type), and a
//! tenant without one gets 403 `Authentication_RequestFromNonPremiumTenantOrB2CTenant` (as public
//! clients that run against real tenants handle it); reading needs AuditLog.Read.All; and the
//! "Identity and access reports service limits" (learn.microsoft.com/graph/throttling-limits)
//! allow five requests per 10 seconds per app and tenant, a budget of its own.

use axum::http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::conditional_access::{self, Applied, Client};
use super::reply::{Reply, RequestIds};
use super::smtp_submit;
use super::tenant::Tenant;

/// What Entra calls a sign-in by SMTP client submission.
pub(crate) const SMTP_CLIENT_APP: &str = "Authenticated SMTP";

/// Office 365 Exchange Online, the resource an SMTP AUTH sign-in is for.
const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";

/// The page size when `$top` does not say.
const PAGE: usize = 1000;

/// Why a device's SMTP AUTH sign-in fails now and then, as Entra words it (AADSTS codes of
/// "Microsoft Entra authentication and authorization error codes"): a wrong or expired password,
/// an account locked out by the retries, Conditional Access, and MFA that a Basic-authentication
/// client cannot do. A tenant without the seeded SMTP AUTH layers draws from all four.
const FAILURES: [(u32, &str); 4] = [
    (50126, "Error validating credentials due to invalid username or password."),
    (50053, "The account is locked, you've tried to sign in too many times with an incorrect user ID or password."),
    (53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."),
    (
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000002-0000-0ff1-ce00-000000000000'.",
    ),
];

/// The failures a layer decides (same page), for a tenant whose layers are seeded.
const LAYER_FAILURES: [(u32, &str); 4] = [
    (50057, "The user account is disabled."),
    (
        530035,
        "Access has been blocked by security defaults. This is due to the request using legacy auth or being deemed unsafe by security defaults policies.",
    ),
    (
        53000,
        "Device is not in required device state: compliant. Conditional Access policy requires a compliant device, and the device is not compliant.",
    ),
    (
        53001,
        "Device is not in required device state: domainJoined. Conditional Access policy requires a domain joined device, and the device is not domain joined.",
    ),
];

/// Failures that end a sign-in before Conditional Access is evaluated ("Conditional Access
/// policies are enforced after first-factor authentication is completed").
const BEFORE_CONDITIONAL_ACCESS: [u32; 5] = [50126, 50053, 50057, 530035, 50034];

/// What a tenant's layers make of one device's sign-ins.
enum Fate {
    /// Refused by Exchange before Entra is asked: no sign-in at all.
    Unseen,
    /// Refused by Entra, every time, with this code.
    Refused(u32),
    /// Entra lets it in: only a wrong password or a lockout fails it now and then.
    Mixed,
}

fn fate_of(tenant: &Tenant, user: usize, address: u8) -> Fate {
    let ip = Ipv4Addr::new(203, 0, 113, address);
    let verdict = smtp_submit::evaluate(tenant, Some(user), Client::Basic, Some(ip));
    if verdict.first().is_some_and(|r| r.layer.before_entra()) {
        return Fate::Unseen;
    }
    verdict.refusals.iter().find_map(|r| r.error_code).map_or(Fate::Mixed, Fate::Refused)
}

/// One sign-in of the log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SignIn {
    /// The user's index in the tenant.
    pub user: u32,
    /// Unix seconds.
    pub at: i64,
    /// 0 for a success, else the AADSTS code.
    pub error_code: u32,
    /// The device's address, 203.0.113.x (a documentation range).
    pub address: u8,
}

/// The SMTP AUTH sign-ins of the last 30 days, newest first.
#[derive(Debug, Default)]
pub(crate) struct SignInLog {
    entries: Vec<SignIn>,
    /// Each device's Conditional Access verdicts when the log was seeded (only in a tenant with
    /// policies): history keeps what applied then, whatever changed since.
    applied: HashMap<u32, Vec<Applied>>,
}

impl SignInLog {
    /// Seeds `share` of the mailboxes with a device that signs in with SMTP AUTH: most days, a few
    /// times a day, from one to three addresses. One in seven has a dead password and never gets
    /// in, one in four fails most of the time, the others fail now and then. Every entry is under
    /// 29 days old at `now`.
    ///
    /// With `consistent` (a tenant with its SMTP AUTH layers seeded), each device's sign-ins agree
    /// with the layers: a device Exchange refuses before Entra (Basic retired, authentication
    /// policy) never appears, one Entra refuses fails every time with that layer's code, and the
    /// others fail only with a wrong password or a lockout.
    pub(crate) fn seed(tenant: &Tenant, share: f64, seed: u64, now: i64, consistent: bool) -> SignInLog {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x51a9_11e5_5a7e_0001);
        let mut log = SignInLog::default();
        for (index, user) in tenant.users.iter().enumerate() {
            if share <= 0.0 || !user.has_mailbox() || rng.f64() >= share {
                continue;
            }
            let kind = rng.f64();
            let failing = if kind < 0.15 {
                1.0
            } else if kind < 0.4 {
                0.8
            } else {
                0.05
            };
            let (first_address, addresses) = (rng.u8(1..=200), rng.u8(1..=3));
            let fate = if consistent { fate_of(tenant, index, first_address) } else { Fate::Mixed };
            if consistent && !tenant.conditional_access.policies.is_empty() {
                let ip = Ipv4Addr::new(203, 0, 113, first_address);
                log.applied.insert(index as u32, conditional_access::evaluate(tenant, index, Client::Basic, Some(ip)));
            }
            let mut days: Vec<i64> = (0..28).filter(|_| rng.f64() < 0.75).collect();
            if days.is_empty() {
                days.push(0);
            }
            for day in days {
                for _ in 0..rng.u32(1..=4) {
                    // The draws come in the order they always did, so that a tenant without the
                    // layers keeps exactly the log it had.
                    let failed = rng.f64() < failing;
                    let at = now - day * 86_400 - rng.i64(60..86_400);
                    let error_code = match fate {
                        Fate::Unseen => None,
                        Fate::Refused(code) => Some(code),
                        Fate::Mixed if !failed => Some(0),
                        Fate::Mixed => {
                            let drawn = FAILURES[rng.usize(..FAILURES.len())].0;
                            Some(if consistent { [50126, 50053][usize::from(drawn % 2 == 1)] } else { drawn })
                        }
                    };
                    let address = first_address + rng.u8(0..addresses);
                    if let Some(error_code) = error_code {
                        log.entries.push(SignIn { user: index as u32, at, error_code, address });
                    }
                }
            }
        }
        log.entries.sort_by_key(|entry| std::cmp::Reverse(entry.at));
        log
    }

    /// Every entry of one user, newest first.
    pub(crate) fn of_user(&self, user: u32) -> impl Iterator<Item = &SignIn> {
        self.entries.iter().filter(move |entry| entry.user == user)
    }

    /// Per user with any sign-in: (user index, sign-ins, failures, last one).
    pub(crate) fn by_user(&self) -> Vec<(u32, u64, u64, SignIn)> {
        let mut seen: std::collections::BTreeMap<u32, (u64, u64, SignIn)> = Default::default();
        for entry in &self.entries {
            let slot = seen.entry(entry.user).or_insert((0, 0, *entry));
            slot.0 += 1;
            slot.1 += u64::from(entry.error_code != 0);
        }
        seen.into_iter().map(|(user, (count, failures, last))| (user, count, failures, last)).collect()
    }

    /// How many sign-ins the log holds from `since` on, for tests that check a reading of it.
    pub(crate) fn count_since(&self, since: OffsetDateTime) -> u64 {
        self.entries.iter().filter(|entry| entry.at >= since.unix_timestamp()).count() as u64
    }

    /// One page of the entries `filter` keeps, from `skip`, and the skip of the next page.
    pub(crate) fn page(
        &self,
        filter: &Filter,
        skip: usize,
        top: Option<usize>,
        tenant: &Tenant,
    ) -> (Vec<Value>, Option<usize>) {
        let size = top.unwrap_or(PAGE);
        let mut kept = self.entries.iter().filter(|entry| filter.keeps(entry, tenant)).skip(skip);
        let page: Vec<Value> = kept.by_ref().take(size).map(|entry| self.json_of(entry, tenant)).collect();
        let more = kept.next().is_some();
        (page, more.then_some(skip + size))
    }
}

impl SignInLog {
    /// `conditionalAccessStatus` and `appliedConditionalAccessPolicies` of one entry: every policy
    /// as it judged the device (not evaluated when the sign-in failed before Conditional Access).
    fn conditional_access_of(&self, entry: &SignIn, tenant: &Tenant) -> (&'static str, Vec<Value>) {
        if tenant.conditional_access.policies.is_empty() {
            return (if entry.error_code == 53003 { "failure" } else { "notApplied" }, Vec::new());
        }
        let applied = if BEFORE_CONDITIONAL_ACCESS.contains(&entry.error_code) {
            conditional_access::not_evaluated(tenant)
        } else if let Some(applied) = self.applied.get(&entry.user) {
            applied.clone()
        } else {
            let ip = Ipv4Addr::new(203, 0, 113, entry.address);
            conditional_access::evaluate(tenant, entry.user as usize, Client::Basic, Some(ip))
        };
        (conditional_access::status(&applied), conditional_access::applied_json(tenant, &applied))
    }

    fn json_of(&self, entry: &SignIn, tenant: &Tenant) -> Value {
        let user = &tenant.users[entry.user as usize];
        let id = uuid::Uuid::from_u128(u128::from(entry.user) << 64 | entry.at as u64 as u128);
        let when = OffsetDateTime::from_unix_timestamp(entry.at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let reason = FAILURES
            .iter()
            .chain(&LAYER_FAILURES)
            .find(|(code, _)| *code == entry.error_code)
            .map_or("Other.", |(_, text)| text);
        let (status, applied) = self.conditional_access_of(entry, tenant);
        json!({
            "id": id.to_string(),
            "createdDateTime": when.replace_nanosecond(0).unwrap_or(when).format(&Rfc3339).unwrap_or_default(),
            "userDisplayName": user.upn.split('@').next().unwrap_or_default(),
            "userPrincipalName": &*user.upn,
            "userId": user.id.to_string(),
            "appId": EXCHANGE_APP_ID,
            "appDisplayName": "Office 365 Exchange Online",
            "ipAddress": format!("203.0.113.{}", entry.address),
            "clientAppUsed": SMTP_CLIENT_APP,
            "correlationId": uuid::Uuid::from_u128(id.as_u128().rotate_left(17)).to_string(),
            "conditionalAccessStatus": status,
            // v1.0 lists "sign-ins that are interactive in nature (where a username/password is
            // passed as part of auth token)" (List signIns): a Basic SMTP AUTH client's are.
            "isInteractive": true,
            "resourceDisplayName": "Office 365 Exchange Online",
            "resourceId": EXCHANGE_APP_ID,
            "riskDetail": "none",
            "riskLevelAggregated": "none",
            "riskLevelDuringSignIn": "none",
            "riskState": "none",
            "riskEventTypes_v2": [],
            "status": {"errorCode": entry.error_code, "failureReason": reason, "additionalDetails": null},
            "deviceDetail": {"deviceId": "", "displayName": "", "operatingSystem": "", "browser": "", "isCompliant": false, "isManaged": false, "trustType": ""},
            "location": {"city": "Redmond", "state": "Washington", "countryOrRegion": "US", "geoCoordinates": {"altitude": null, "latitude": 47.674, "longitude": -122.1215}},
            "appliedConditionalAccessPolicies": applied,
        })
    }
}

/// What a `$filter` on the sign-in log keeps: clauses joined by `and`.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    client_app: Option<String>,
    after: Option<(i64, bool)>,
    before: Option<(i64, bool)>,
    error_code: Option<u32>,
    user_id: Option<String>,
    upn: Option<String>,
}

impl Filter {
    /// Parses the clauses this log answers; `None` for anything else (Graph's 400).
    pub(crate) fn parse(text: &str) -> Option<Filter> {
        let mut filter = Filter::default();
        for clause in split_and(text)? {
            let (property, rest) = clause.split_once(' ')?;
            let (operator, value) = rest.trim_start().split_once(' ')?;
            let value = value.trim();
            let text_value = || super::graph::string_literal(value).filter(|(_, tail)| tail.trim().is_empty());
            match (property, operator) {
                ("clientAppUsed", "eq") => filter.client_app = Some(text_value()?.0),
                ("userId", "eq") => filter.user_id = Some(text_value()?.0.to_lowercase()),
                ("userPrincipalName", "eq") => filter.upn = Some(text_value()?.0.to_lowercase()),
                ("status/errorCode", "eq") => filter.error_code = Some(value.parse().ok()?),
                ("createdDateTime", "ge" | "gt" | "le" | "lt") => {
                    let at = OffsetDateTime::parse(value, &Rfc3339).ok()?.unix_timestamp();
                    match operator {
                        "ge" => filter.after = Some((at, true)),
                        "gt" => filter.after = Some((at, false)),
                        "le" => filter.before = Some((at, true)),
                        _ => filter.before = Some((at, false)),
                    }
                }
                _ => return None,
            }
        }
        Some(filter)
    }

    fn keeps(&self, entry: &SignIn, tenant: &Tenant) -> bool {
        let user = &tenant.users[entry.user as usize];
        self.client_app.as_deref().is_none_or(|app| app == SMTP_CLIENT_APP)
            && self.after.is_none_or(|(at, equal)| entry.at > at || (equal && entry.at == at))
            && self.before.is_none_or(|(at, equal)| entry.at < at || (equal && entry.at == at))
            && self.error_code.is_none_or(|code| code == entry.error_code)
            && self.user_id.as_deref().is_none_or(|id| id == user.id.to_string())
            && self.upn.as_deref().is_none_or(|upn| upn == user.upn.to_lowercase())
    }
}

/// The clauses of `a and b and c`, outside quotes.
fn split_and(text: &str) -> Option<Vec<String>> {
    let mut clauses = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let words: Vec<&str> = text.split(' ').collect();
    for word in words {
        if !quoted && word.eq_ignore_ascii_case("and") {
            clauses.push(std::mem::take(&mut current).trim().to_string());
            continue;
        }
        quoted ^= word.matches('\'').count() % 2 == 1;
        current.push_str(word);
        current.push(' ');
    }
    clauses.push(current.trim().to_string());
    clauses.iter().all(|clause| !clause.is_empty()).then_some(clauses)
}

/// The answer to a tenant without Entra ID P1 or P2.
pub(crate) fn not_premium(ids: &RequestIds) -> Reply {
    Reply::graph_error(
        StatusCode::FORBIDDEN,
        "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
        "Neither tenant is B2C or tenant doesn't have premium license",
        ids,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::Population;

    #[test]
    fn a_filter_keeps_the_window_and_the_client_app() {
        let filter = Filter::parse(
            "clientAppUsed eq 'Authenticated SMTP' and createdDateTime ge 2026-11-01T00:00:00Z and status/errorCode eq 0",
        )
        .unwrap();
        assert_eq!(filter.client_app.as_deref(), Some(SMTP_CLIENT_APP));
        assert_eq!(filter.error_code, Some(0));
        assert!(filter.after.is_some());
        assert!(Filter::parse("appDisplayName eq 'x'").is_none(), "a clause the log does not answer");
        assert!(Filter::parse("clientAppUsed eq 'Authenticated SMTP' and").is_none());
    }

    #[test]
    fn seeding_gives_a_share_of_the_mailboxes_a_device_each() {
        let tenant = Tenant::build(&Population::Generated { count: 2000 }, 3);
        let now = 1_800_000_000;
        let log = SignInLog::seed(&tenant, 0.05, 3, now, false);
        let users = log.by_user();
        assert!((60..=140).contains(&users.len()), "about 5 % of 2,000: {}", users.len());
        assert!(log.entries.iter().all(|e| now - e.at < 29 * 86_400 && e.at < now));
        assert!(log.entries.iter().any(|e| e.error_code != 0) && log.entries.iter().any(|e| e.error_code == 0));
        let (page, next) = log.page(&Filter::default(), 0, Some(10), &tenant);
        assert_eq!((page.len(), next), (10, Some(10)));
    }
}
