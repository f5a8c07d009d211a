//! Conditional Access as Entra evaluates it for one SMTP AUTH sign-in to Exchange Online: which
//! policies apply (state, users with groups taken transitively and directory roles, cloud apps,
//! client app types, locations) and whether the client can satisfy what they grant.
//!
//! The policies are kept as the v1.0 `conditionalAccessPolicy` objects Graph lists, and read from
//! those objects here, so what a client reads is exactly what decides. Conditions that no seeded
//! policy uses (platforms, devices, risk levels, service principals, authentication flows) are not
//! evaluated: a policy that sets them is judged on the others.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::directory::Member;
use super::tenant::Tenant;

pub(crate) mod shape;

/// Office 365 Exchange Online's appId ("Verify first-party Microsoft applications in sign-in
/// reports"); the `Office365` suite includes it ("Apps included in Conditional Access Office 365
/// app suite").
pub(crate) const EXCHANGE_ONLINE: &str = "00000002-0000-0ff1-ce00-000000000000";

#[derive(Clone, Debug, Default)]
pub struct ConditionalAccess {
    /// v1.0 `conditionalAccessPolicy` objects, as Graph lists them.
    pub policies: Vec<Value>,
    /// v1.0 `ipNamedLocation` objects the policies' `locations` name.
    pub named_locations: Vec<Value>,
}

/// How the device authenticates to SMTP AUTH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Client {
    /// Username and password: a legacy client ("Other clients … SMTP - Used by POP and IMAP
    /// client's to send email messages", concept-conditional-access-conditions).
    Basic,
    /// XOAUTH2 with a token obtained from Entra by a modern client ("Mobile apps and desktop
    /// clients"), which can answer MFA when the token is obtained.
    Modern,
}

/// What one policy did to one sign-in: the values of `appliedConditionalAccessPolicyResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    NotApplied,
    NotEnabled,
    ReportOnlySuccess,
    ReportOnlyFailure,
    ReportOnlyNotApplied,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::NotApplied => "notApplied",
            Outcome::NotEnabled => "notEnabled",
            Outcome::ReportOnlySuccess => "reportOnlySuccess",
            Outcome::ReportOnlyFailure => "reportOnlyFailure",
            Outcome::ReportOnlyNotApplied => "reportOnlyNotApplied",
        }
    }
}

/// One policy's verdict, with the grant control the client could not satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Applied {
    pub policy: usize,
    pub outcome: Outcome,
    pub unmet: Option<String>,
}

/// Who signs in, as the conditions see them.
struct Subject {
    id: String,
    guest: bool,
    groups: BTreeSet<String>,
    roles: BTreeSet<&'static str>,
}

fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn subject(tenant: &Tenant, user: usize) -> Subject {
    let record = &tenant.users[user];
    let groups = tenant.directory.groups_of(Member::User(user as u32));
    Subject {
        id: record.id.to_string(),
        guest: record.guest,
        groups: groups.into_iter().map(|g| tenant.directory.groups[g as usize].id.to_string()).collect(),
        roles: tenant.directory.roles_of(user as u32),
    }
}

/// `conditions.users`: included by id, `All`, a group (transitively) or a role, and not excluded
/// the same ways (conditionalaccessusers: "User IDs in scope of policy unless explicitly excluded").
fn users_match(users: &Value, who: &Subject) -> bool {
    let named = |list: &Value| {
        strings(list).any(|u| {
            u.eq_ignore_ascii_case(&who.id)
                || u.eq_ignore_ascii_case("All")
                || (u.eq_ignore_ascii_case("GuestsOrExternalUsers") && who.guest)
        })
    };
    let in_group = |list: &Value| strings(list).any(|g| who.groups.contains(&g.to_lowercase()));
    let has_role = |list: &Value| strings(list).any(|r| who.roles.iter().any(|held| held.eq_ignore_ascii_case(r)));
    let excluded_user = strings(&users["excludeUsers"])
        .any(|u| u.eq_ignore_ascii_case(&who.id) || (u.eq_ignore_ascii_case("GuestsOrExternalUsers") && who.guest));
    let included =
        named(&users["includeUsers"]) || in_group(&users["includeGroups"]) || has_role(&users["includeRoles"]);
    included && !excluded_user && !in_group(&users["excludeGroups"]) && !has_role(&users["excludeRoles"])
}

/// `conditions.applications`: `All`, `Office365` or Exchange Online's appId, minus exclusions.
/// A policy for user actions only (`includeUserActions`) covers no app.
fn applications_match(applications: &Value) -> bool {
    let covers = |list: &Value| {
        strings(list).any(|a| {
            a.eq_ignore_ascii_case(EXCHANGE_ONLINE)
                || a.eq_ignore_ascii_case("Office365")
                || a.eq_ignore_ascii_case("All")
        })
    };
    covers(&applications["includeApplications"]) && !covers(&applications["excludeApplications"])
}

/// `conditions.clientAppTypes`. "By default, all newly created Conditional Access policies apply
/// to all client app types even if the client apps condition isn't configured", so an empty list
/// covers everything. Basic SMTP is `other`; a modern client is `mobileAppsAndDesktopClients`.
fn client_matches(types: &Value, client: Client) -> bool {
    let wanted = match client {
        Client::Basic => "other",
        Client::Modern => "mobileAppsAndDesktopClients",
    };
    let mut types = strings(types).peekable();
    types.peek().is_none() || types.any(|t| t.eq_ignore_ascii_case("all") || t.eq_ignore_ascii_case(wanted))
}

/// Whether `address` falls in an IPv4 `a.b.c.d/n` range.
fn in_range(cidr: &str, address: Ipv4Addr) -> bool {
    let Some((base, bits)) = cidr.split_once('/') else { return false };
    let (Ok(base), Ok(bits)) = (base.parse::<Ipv4Addr>(), bits.parse::<u32>()) else { return false };
    let mask = if bits == 0 { 0 } else { u32::MAX.checked_shl(32 - bits.min(32)).unwrap_or(0) };
    u32::from(base) & mask == u32::from(address) & mask
}

fn in_location(named: &[Value], id: &str, address: Option<Ipv4Addr>) -> bool {
    if id.eq_ignore_ascii_case("All") {
        return true;
    }
    // An unknown address is in no named location: the harsher reading for a device whose
    // address the test did not give.
    let Some(address) = address else { return false };
    named.iter().any(|location| {
        let chosen = if id.eq_ignore_ascii_case("AllTrusted") {
            location["isTrusted"] == true
        } else {
            location["id"].as_str().is_some_and(|l| l.eq_ignore_ascii_case(id))
        };
        chosen
            && location["ipRanges"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["cidrAddress"].as_str().is_some_and(|c| in_range(c, address)))
    })
}

/// `conditions.locations`: null means anywhere.
fn locations_match(locations: &Value, named: &[Value], address: Option<Ipv4Addr>) -> bool {
    if locations.is_null() {
        return true;
    }
    strings(&locations["includeLocations"]).any(|l| in_location(named, l, address))
        && !strings(&locations["excludeLocations"]).any(|l| in_location(named, l, address))
}

/// The grant control this client cannot satisfy, if any. "Sign-ins from legacy authentication
/// clients don't support multifactor authentication (MFA) and don't pass device state information,
/// so they are blocked by Conditional Access grant controls, like requiring MFA or compliant
/// devices" (concept-conditional-access-conditions): a Basic client fails every control. A modern
/// client answers MFA (and anything else) when its token is obtained; only `block` stops it.
/// `grantControls: null` is a session-controls-only policy: nothing to satisfy.
fn unmet_control(grant: &Value, client: Client) -> Option<String> {
    if grant.is_null() {
        return None;
    }
    let mut controls: Vec<String> = strings(&grant["builtInControls"]).map(str::to_string).collect();
    // "Treat a non-null authenticationStrength as an MFA-type grant" (the live capture's policy
    // requires MFA through a strength and lists no built-in control).
    if !grant["authenticationStrength"].is_null() {
        controls.push("authenticationStrength".into());
    }
    for extra in ["termsOfUse", "customAuthenticationFactors"] {
        if strings(&grant[extra]).next().is_some() {
            controls.push(extra.into());
        }
    }
    if let Some(block) = controls.iter().find(|c| c.eq_ignore_ascii_case("block")) {
        return Some(block.clone());
    }
    match client {
        Client::Modern => None,
        Client::Basic => controls.into_iter().next(),
    }
}

/// Every policy's verdict on a sign-in of `user` to Exchange Online by `client` from `address`.
pub(crate) fn evaluate(tenant: &Tenant, user: usize, client: Client, address: Option<Ipv4Addr>) -> Vec<Applied> {
    let ca = &tenant.conditional_access;
    if ca.policies.is_empty() {
        return Vec::new();
    }
    let who = subject(tenant, user);
    let verdicts = ca.policies.iter().enumerate().map(|(index, policy)| {
        let conditions = &policy["conditions"];
        let applies = users_match(&conditions["users"], &who)
            && applications_match(&conditions["applications"])
            && client_matches(&conditions["clientAppTypes"], client)
            && locations_match(&conditions["locations"], &ca.named_locations, address);
        let unmet = if applies { unmet_control(&policy["grantControls"], client) } else { None };
        let outcome = match (policy["state"].as_str().unwrap_or_default(), applies, unmet.is_some()) {
            ("enabled", false, _) => Outcome::NotApplied,
            ("enabled", true, false) => Outcome::Success,
            ("enabled", true, true) => Outcome::Failure,
            ("enabledForReportingButNotEnforced", false, _) => Outcome::ReportOnlyNotApplied,
            ("enabledForReportingButNotEnforced", true, false) => Outcome::ReportOnlySuccess,
            ("enabledForReportingButNotEnforced", true, true) => Outcome::ReportOnlyFailure,
            _ => Outcome::NotEnabled,
        };
        Applied { policy: index, outcome, unmet }
    });
    verdicts.collect()
}

/// The verdicts of a sign-in that failed before Conditional Access was reached: "Conditional
/// Access policies are enforced after first-factor authentication is completed".
pub(crate) fn not_evaluated(tenant: &Tenant) -> Vec<Applied> {
    let policies = tenant.conditional_access.policies.iter().enumerate();
    let verdicts = policies.map(|(index, policy)| {
        let outcome = match policy["state"].as_str().unwrap_or_default() {
            "enabled" => Outcome::NotApplied,
            "enabledForReportingButNotEnforced" => Outcome::ReportOnlyNotApplied,
            _ => Outcome::NotEnabled,
        };
        Applied { policy: index, outcome, unmet: None }
    });
    verdicts.collect()
}

/// The enforced policy that stops the sign-in, if one does.
pub(crate) fn blocking(applied: &[Applied]) -> Option<&Applied> {
    applied.iter().find(|a| a.outcome == Outcome::Failure)
}

/// `conditionalAccessStatus` of the sign-in (success | failure | notApplied).
pub(crate) fn status(applied: &[Applied]) -> &'static str {
    if applied.iter().any(|a| a.outcome == Outcome::Failure) {
        "failure"
    } else if applied.iter().any(|a| a.outcome == Outcome::Success) {
        "success"
    } else {
        "notApplied"
    }
}

/// The sign-in log's names for grant controls. The live capture (graph2otel) shows `Block` and
/// `Mfa`; the others follow the same pattern and are our reading.
fn grant_name(control: &str) -> String {
    match control {
        "block" => "Block".into(),
        "mfa" => "Mfa".into(),
        "compliantDevice" => "RequireCompliantDevice".into(),
        "domainJoinedDevice" => "RequireDomainJoinedDevice".into(),
        "approvedApplication" => "RequireApprovedApp".into(),
        "compliantApplication" => "RequireCompliantApp".into(),
        "passwordChange" => "RequirePasswordChange".into(),
        "authenticationStrength" => "RequireAuthenticationStrength".into(),
        other => other.to_string(),
    }
}

fn session_names(session: &Value) -> Vec<&'static str> {
    let names = [
        ("signInFrequency", "SignInFrequency"),
        ("persistentBrowser", "PersistentBrowserSessionMode"),
        ("cloudAppSecurity", "CloudAppSecurity"),
        ("applicationEnforcedRestrictions", "AppEnforcedRestrictions"),
        ("disableResilienceDefaults", "DisableResilienceDefaults"),
        ("secureSignInSession", "SecureSignInSession"),
    ];
    names.iter().filter(|(key, _)| !session[*key].is_null() && session[*key] != false).map(|(_, n)| *n).collect()
}

/// `appliedConditionalAccessPolicies` of a sign-in: every policy, with its controls and result.
pub(crate) fn applied_json(tenant: &Tenant, applied: &[Applied]) -> Vec<Value> {
    let policies = &tenant.conditional_access.policies;
    let entry = |a: &Applied| {
        let policy = &policies[a.policy];
        let grant = &policy["grantControls"];
        let mut controls: Vec<String> = strings(&grant["builtInControls"]).map(grant_name).collect();
        if !grant["authenticationStrength"].is_null() {
            controls.push(grant_name("authenticationStrength"));
        }
        json!({
            "id": policy["id"],
            "displayName": policy["displayName"],
            "enforcedGrantControls": controls,
            "enforcedSessionControls": session_names(&policy["sessionControls"]),
            "result": a.outcome.as_str(),
        })
    };
    applied.iter().map(entry).collect()
}

#[cfg(test)]
mod tests;
