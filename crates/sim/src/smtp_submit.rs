//! What a device hears when it authenticates to SMTP AUTH (smtp.office365.com:587) as a mailbox,
//! from the simulator's own reading of Microsoft's documents: `POST /_sim/smtp-submit`.
//!
//! The order is the one the service meets the layers in, as far as the documents tell it:
//! 1. Exchange's pre-authentication, Basic only: the retirement of Basic authentication for client
//!    submission (a protocol gate, whoever the user), then authentication policies, which block
//!    "at the first pre-authentication step … before the request reaches Azure Active Directory"
//!    (disable-basic-authentication-in-exchange-online);
//! 2. Entra (a sign-in log entry exists from here on): the user must exist, sign-in must be
//!    allowed (AADSTS50057), security defaults block legacy authentication (530035, Basic only),
//!    then Conditional Access, "enforced after first-factor authentication is completed"
//!    (53003), then legacy per-user MFA (50076, Basic only). A modern client meets these when it
//!    obtains its token, before it ever connects;
//! 3. Exchange after authentication: the mailbox must exist, and SMTP AUTH must be on for it (the
//!    mailbox's `SmtpClientAuthenticationDisabled` when it is `$true` or `$false`, the
//!    organisation's when it is `$null`), for Basic and OAuth alike.
//!
//! Placing the SMTP AUTH switch after Entra is our reading, not a documented fact: for OAuth the
//! switch is certainly checked on the authenticated mailbox (research §9: OAuth attempts get the
//! "disabled for the Tenant/Mailbox" texts), and Entra's sign-in log keeps "Authenticated SMTP"
//! successes for devices whose SMTP AUTH is off. Per-user MFA after Conditional Access is also our
//! reading. Every layer that refuses is listed (`layers`); the device hears the first.
//!
//! The request is `{"userPrincipalName", "auth": "basic" | "oauth", "clientIp"?}`: `clientIp` is
//! the device's IPv4 address, which Conditional Access policies with a `locations` condition judge
//! (the seeded "Block legacy authentication outside the head office" spares 198.51.100.0/24, the
//! trusted named location "Head office"). Without it the device is in no named location, so such a
//! policy applies: the harsher reading. The answer is `{"accepted", "reply", "layer", "layers"}`;
//! a body the route cannot read is a 400 with `{"error"}`.
//!
//! The reply texts are the ones devices report (research §1): Microsoft publishes no table of the
//! 5.7.139 texts, so the mapping of some of them to a layer is community-derived (marked below).
//! Each reply ends with a front-end server tag, as real replies do, so a client must not compare
//! whole lines.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::conditional_access::{self, Client};
use super::tenant::{MfaState, Tenant};

const ACCEPTED: &str = "235 2.7.0 Authentication successful";
/// Exchange Team blog, "Exchange Online to retire Basic auth for Client Submission (SMTP AUTH)".
const RETIRED: &str = "550 5.7.30 Basic authentication is not supported for Client Submission.";
/// Observed (mailR issue #107); its tie to authentication policies is our inference.
const BASIC_DISABLED: &str = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.";
/// Observed (email-bomber issue #1): Entra refused the credentials (here: no such user).
const CREDENTIALS: &str = "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.";
/// Observed (2024-10-04); that it means a disabled account is our inference.
const ACCOUNT_ISSUE: &str =
    "535 5.7.139 Authentication unsuccessful, account has an issue. Contact your administrator.";
/// Observed in several projects; Entra's AADSTS530035 BlockedBySecurityDefaults.
const SECURITY_DEFAULTS: &str = "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator.";
/// Observed (nodemailer #1617); community mappings point at Conditional Access or per-user MFA.
const CRITERIA: &str = "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator.";
/// Observed with its full server tag (email-oauth2-proxy #193).
const TENANT_OFF: &str = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.";
/// Observed (Patch My PC's SMTP AUTH article).
const MAILBOX_OFF: &str = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.";
/// The XOAUTH2 failure of "Authenticate an IMAP, POP or SMTP connection using OAuth", and the
/// first of the printers page's errors: what a device hears without a usable token or mailbox.
const UNSUCCESSFUL: &str = "535 5.7.3 Authentication unsuccessful";

/// A layer that can stop a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layer {
    BasicRetired,
    AuthenticationPolicy,
    UnknownUser,
    SignInBlocked,
    SecurityDefaults,
    ConditionalAccess,
    PerUserMfa,
    NoMailbox,
    SmtpAuthTenant,
    SmtpAuthMailbox,
}

impl Layer {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Layer::BasicRetired => "basic-auth-retired",
            Layer::AuthenticationPolicy => "authentication-policy",
            Layer::UnknownUser => "unknown-user",
            Layer::SignInBlocked => "sign-in-blocked",
            Layer::SecurityDefaults => "security-defaults",
            Layer::ConditionalAccess => "conditional-access",
            Layer::PerUserMfa => "per-user-mfa",
            Layer::NoMailbox => "no-mailbox",
            Layer::SmtpAuthTenant => "smtp-auth-tenant",
            Layer::SmtpAuthMailbox => "smtp-auth-mailbox",
        }
    }

    /// Whether Exchange refuses before Entra sees the sign-in (no sign-in log entry).
    pub(crate) fn before_entra(self) -> bool {
        matches!(self, Layer::BasicRetired | Layer::AuthenticationPolicy)
    }
}

/// One layer's refusal: the reply line and, when Entra refused, its AADSTS code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub layer: Layer,
    pub reply: &'static str,
    pub error_code: Option<u32>,
}

/// Every refusal, in the order the service meets them; none means accepted.
#[derive(Clone, Debug, Default)]
pub(crate) struct Verdict {
    pub refusals: Vec<Refusal>,
}

impl Verdict {
    pub(crate) fn first(&self) -> Option<&Refusal> {
        self.refusals.first()
    }

    fn refuse(&mut self, layer: Layer, reply: &'static str, error_code: Option<u32>) {
        self.refusals.push(Refusal { layer, reply, error_code });
    }
}

/// The AADSTS code for the grant control a client could not satisfy (reference-error-codes):
/// 53003 BlockedByConditionalAccess, 50076 for MFA, 53000/53001 for device state.
fn conditional_access_code(unmet: &str) -> u32 {
    match unmet {
        "mfa" | "authenticationStrength" => 50076,
        "compliantDevice" => 53000,
        "domainJoinedDevice" => 53001,
        _ => 53003,
    }
}

/// Entra's layers for `user`, in order (see the module's notes).
fn entra(tenant: &Tenant, user: usize, client: Client, address: Option<Ipv4Addr>, verdict: &mut Verdict) {
    let record = &tenant.users[user];
    let modern = client == Client::Modern;
    if !record.account_enabled {
        verdict.refuse(Layer::SignInBlocked, if modern { UNSUCCESSFUL } else { ACCOUNT_ISSUE }, Some(50057));
    }
    // security-defaults.md: "all authentication requests made by an older protocol will be
    // blocked"; a modern client answers the MFA it may ask for.
    if !modern && tenant.security_defaults_enabled {
        verdict.refuse(Layer::SecurityDefaults, SECURITY_DEFAULTS, Some(530035));
    }
    let applied = conditional_access::evaluate(tenant, user, client, address);
    if let Some(unmet) = conditional_access::blocking(&applied).and_then(|a| a.unmet.as_deref()) {
        let reply = if modern { UNSUCCESSFUL } else { CRITERIA };
        verdict.refuse(Layer::ConditionalAccess, reply, Some(conditional_access_code(unmet)));
    }
    // howto-mfa-userstates, "Legacy authentication affected": Enforced "Yes. Apps require app
    // passwords."; Enabled "No. Legacy authentication continues to work until the registration
    // process is completed". The device here sends the user's own password, not an app password.
    if !modern && record.mfa == MfaState::Enforced {
        verdict.refuse(Layer::PerUserMfa, CRITERIA, Some(50076));
    }
}

/// Exchange after authentication: the mailbox and its SMTP AUTH switch.
/// The switch governs the protocol, whatever the authentication (research §9).
fn mailbox(tenant: &Tenant, user: usize, verdict: &mut Verdict) {
    let record = &tenant.users[user];
    if !record.has_mailbox() {
        verdict.refuse(Layer::NoMailbox, UNSUCCESSFUL, None);
        return;
    }
    match record.smtp_auth_disabled {
        Some(true) => verdict.refuse(Layer::SmtpAuthMailbox, MAILBOX_OFF, None),
        Some(false) => {}
        None if tenant.transport_smtp_auth_disabled => verdict.refuse(Layer::SmtpAuthTenant, TENANT_OFF, None),
        None => {}
    }
}

/// Every layer's answer to `user` (None: no such user) authenticating with `client` from `address`.
pub(crate) fn evaluate(tenant: &Tenant, user: Option<usize>, client: Client, address: Option<Ipv4Addr>) -> Verdict {
    let mut verdict = Verdict::default();
    if client == Client::Basic {
        if !tenant.basic_smtp_auth_enabled {
            verdict.refuse(Layer::BasicRetired, RETIRED, None);
        }
        // "Exchange Online can only block Basic authentication requests for users that exist in
        // the cloud organization": no user, no policy.
        if user.is_some_and(|u| tenant.auth_policies.blocks_basic_smtp(u)) {
            verdict.refuse(Layer::AuthenticationPolicy, BASIC_DISABLED, None);
        }
    }
    let Some(user) = user else {
        let reply = if client == Client::Modern { UNSUCCESSFUL } else { CREDENTIALS };
        verdict.refuse(Layer::UnknownUser, reply, Some(50034));
        return verdict;
    };
    entra(tenant, user, client, address, &mut verdict);
    mailbox(tenant, user, &mut verdict);
    verdict
}

/// A front-end server tag in the form real replies carry, fixed per user.
fn server_tag(user: Option<usize>) -> String {
    let n = user.map_or(0, |u| u.wrapping_mul(2_654_435_761) % 10_000);
    format!("[AM{}PR{:02}CA{n:04}.eurprd{:02}.prod.outlook.com]", n % 9, n % 97, n % 13)
}

/// Answers `POST /_sim/smtp-submit`: `{"userPrincipalName", "auth": "basic"|"oauth", "clientIp"?}`.
pub(crate) fn answer(tenant: &Tenant, body: &[u8]) -> Result<Value, String> {
    let request: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
    let upn = request["userPrincipalName"].as_str().ok_or("userPrincipalName (a string) is required")?;
    let client = match request["auth"].as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("basic") => Client::Basic,
        Some("oauth") => Client::Modern,
        _ => return Err("auth must be \"basic\" or \"oauth\"".into()),
    };
    let address = match &request["clientIp"] {
        Value::Null => None,
        Value::String(text) => Some(text.parse::<Ipv4Addr>().map_err(|_| format!("clientIp '{text}' is not IPv4"))?),
        _ => return Err("clientIp must be a string".into()),
    };
    // A device signs in with its user principal name, never an object id.
    let user = tenant.find_user(upn).filter(|_| uuid::Uuid::parse_str(upn).is_err());
    let verdict = evaluate(tenant, user, client, address);
    let layers: Vec<&str> = verdict.refusals.iter().map(|r| r.layer.name()).collect();
    Ok(match verdict.first() {
        None => json!({"accepted": true, "reply": ACCEPTED, "layer": null, "layers": layers}),
        Some(refusal) => json!({
            "accepted": false,
            "reply": format!("{} {}", refusal.reply, server_tag(user)),
            "layer": refusal.layer.name(),
            "layers": layers,
        }),
    })
}

#[cfg(test)]
mod tests;
