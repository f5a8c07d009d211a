//! From the facts to a diagnosis: each layer's state for each client, with its evidence. Pure: the
//! same facts always give the same diagnosis, whoever read them.

use super::conditional_access::Effect;
use super::facts::{BasicSmtp, Joined, Known, MailboxFacts, TenantFacts, Unreadable};
use super::{ClientKind, Diagnosis, Finding, Layer, State};
use crate::settings::Value;

fn finding(layer: Layer, basic: State, oauth: State, evidence: impl Into<String>) -> Finding {
    Finding { layer, basic, oauth, evidence: evidence.into() }
}

/// The same state for both clients.
fn both(layer: Layer, state: State, evidence: impl Into<String>) -> Finding {
    finding(layer, state.clone(), state, evidence)
}

/// A layer only a Basic client meets.
fn basic_only(layer: Layer, state: State, evidence: impl Into<String>) -> Finding {
    finding(layer, state, State::NotApplicable, evidence)
}

fn unread(error: &Unreadable) -> State {
    State::Unknown(error.describe())
}

/// Every layer's finding for one mailbox.
pub(crate) fn evaluate(tenant: &TenantFacts, mailbox: &MailboxFacts) -> Diagnosis {
    let mut diagnosis = Diagnosis::default();
    diagnosis.findings.push(mailbox_exists(mailbox));
    diagnosis.findings.push(smtp_auth_switch(tenant, mailbox));
    diagnosis.findings.push(authentication_policy(tenant, mailbox));
    diagnosis.findings.push(basic_authentication(&tenant.basic_smtp));
    diagnosis.findings.push(security_defaults(&tenant.security_defaults));
    let (conditional_access, exclusion_groups) = conditional_access(tenant, mailbox);
    diagnosis.findings.push(conditional_access);
    diagnosis.exclusion_groups = exclusion_groups;
    diagnosis.findings.push(per_user_mfa(&mailbox.per_user_mfa));
    diagnosis.findings.push(sign_in(&mailbox.account_enabled));
    diagnosis
}

fn mailbox_exists(mailbox: &MailboxFacts) -> Finding {
    match &mailbox.mailbox {
        Ok(Some(_)) => both(Layer::Mailbox, State::Allows, "an Exchange Online mailbox (Get-CASMailbox)"),
        Ok(None) => both(Layer::Mailbox, State::Blocks, "no Exchange Online mailbox for this user (Get-CASMailbox)"),
        Err(error) => both(Layer::Mailbox, unread(error), error.describe()),
    }
}

/// The mailbox's own value wins when it is `$true` or `$false`; `$null` follows the
/// organisation's (Set-CASMailbox and Set-TransportConfig, `SmtpClientAuthenticationDisabled`).
/// It switches the protocol, for OAuth as for Basic.
fn smtp_auth_switch(tenant: &TenantFacts, mailbox: &MailboxFacts) -> Finding {
    let layer = Layer::SmtpAuthSwitch;
    let value = match &mailbox.mailbox {
        Ok(Some(value)) => *value,
        Ok(None) => return both(layer, State::NotApplicable, "no mailbox"),
        Err(error) => return both(layer, unread(error), error.describe()),
    };
    match (value, &tenant.organisation_smtp_disabled) {
        (Value::Enabled, _) => both(
            layer,
            State::Allows,
            "the mailbox's SmtpClientAuthenticationDisabled is False (Get-CASMailbox): on for this mailbox whatever the organisation says",
        ),
        (Value::Disabled, _) => {
            both(layer, State::Blocks, "the mailbox's SmtpClientAuthenticationDisabled is True (Get-CASMailbox)")
        }
        (_, Ok(disabled)) => both(
            layer,
            if *disabled { State::Blocks } else { State::Allows },
            format!(
                "the mailbox follows the organisation ($null, Get-CASMailbox), whose SmtpClientAuthenticationDisabled is {} (Get-TransportConfig)",
                if *disabled { "True" } else { "False" }
            ),
        ),
        (_, Err(error)) => {
            both(layer, unread(error), format!("the mailbox follows the organisation ($null); {}", error.describe()))
        }
    }
}

/// The user's own policy, else the organisation's default; with neither, nothing blocks Basic
/// here ("Disable Basic authentication in Exchange Online": the default policy is assigned to
/// every user without one of their own, and a user's own takes precedence).
fn authentication_policy(tenant: &TenantFacts, mailbox: &MailboxFacts) -> Finding {
    let layer = Layer::AuthenticationPolicy;
    let user_id = &mailbox.user_id;
    let read = || -> Result<_, &Unreadable> {
        Ok((tenant.policies.as_ref()?, tenant.assignments.as_ref()?, tenant.default_policy.as_ref()?))
    };
    let (policies, assignments, default) = match read() {
        Ok(read) => read,
        Err(error) => return basic_only(layer, unread(error), error.describe()),
    };
    let own = mailbox.own_policy.as_ref().or_else(|| assignments.get(&user_id.to_lowercase()));
    let (reference, whose) = match own.filter(|own| !own.is_empty()) {
        Some(own) => (own.as_str(), "the user's own"),
        None => match default {
            Some(default) => (default.as_str(), "the organisation's default"),
            None => {
                return basic_only(
                    layer,
                    State::Allows,
                    "no authentication policy applies (none assigned, no organisation default: Get-User, Get-OrganizationConfig)",
                );
            }
        },
    };
    let Some(policy) = policies.iter().find(|p| p.is_named(reference)) else {
        let why =
            format!("{whose} authentication policy '{reference}' is not among those Get-AuthenticationPolicy lists");
        return basic_only(layer, State::Unknown(why.clone()), why);
    };
    let allowed = if policy.allow_basic_smtp { "True" } else { "False" };
    basic_only(
        layer,
        if policy.allow_basic_smtp { State::Allows } else { State::Blocks },
        format!(
            "{whose} authentication policy '{}' has AllowBasicAuthSmtp {allowed} (Get-AuthenticationPolicy)",
            policy.name
        ),
    )
}

fn basic_authentication(basic: &BasicSmtp) -> Finding {
    let layer = Layer::BasicAuthentication;
    match basic {
        BasicSmtp::On(why) => basic_only(layer, State::Allows, why.clone()),
        BasicSmtp::Off(why) => basic_only(layer, State::Blocks, why.clone()),
        BasicSmtp::Unknown(why) => basic_only(layer, State::Unknown(why.clone()), why.clone()),
    }
}

/// "After security defaults are enabled in your tenant, all authentication requests made by an
/// older protocol will be blocked" (Entra, "Security defaults").
fn security_defaults(enabled: &Known<bool>) -> Finding {
    let layer = Layer::SecurityDefaults;
    match enabled {
        Ok(true) => {
            basic_only(layer, State::Blocks, "security defaults are on (identitySecurityDefaultsEnforcementPolicy)")
        }
        Ok(false) => {
            basic_only(layer, State::Allows, "security defaults are off (identitySecurityDefaultsEnforcementPolicy)")
        }
        Err(error) => basic_only(layer, unread(error), error.describe()),
    }
}

/// Each enforced policy's effect on each client; and the groups that every policy blocking the
/// Basic client excludes.
fn conditional_access(tenant: &TenantFacts, mailbox: &MailboxFacts) -> (Finding, Vec<String>) {
    let layer = Layer::ConditionalAccess;
    let user_id = mailbox.user_id.as_str();
    // "Organizations that choose to implement Conditional Access policies that replace security
    // defaults must disable security defaults" (Entra, "Security defaults"): the two are never in
    // force together, and while security defaults are on, they decide.
    if tenant.security_defaults == Ok(true) {
        let evidence = "no Conditional Access policy is in force while security defaults are on";
        return (both(layer, State::Allows, evidence), Vec::new());
    }
    let read = || -> Result<_, &Unreadable> { Ok((tenant.conditional_access.as_ref()?, tenant.memberships.as_ref()?)) };
    let (policies, base) = match read() {
        Ok(read) => read,
        Err(error) => return (both(layer, unread(error), error.describe()), Vec::new()),
    };
    let members = &Joined { base, user_id, groups: &mailbox.groups_joined };
    let mut evidence = Vec::new();
    let mut states = [State::Allows, State::Allows];
    for (slot, client) in ClientKind::BOTH.into_iter().enumerate() {
        for policy in policies {
            match policy.effect(user_id, client, members) {
                Effect::None => {}
                Effect::Blocks(text) => {
                    states[slot] = State::Blocks;
                    evidence.push(format!("{}: {text}", client.name()));
                }
                Effect::Depends(text) => {
                    if states[slot] == State::Allows {
                        states[slot] = State::Unknown(text.clone());
                    }
                    evidence.push(format!("{}: {text}", client.name()));
                }
            }
        }
    }
    let blocking: Vec<_> = policies
        .iter()
        .filter(|p| matches!(p.effect(user_id, ClientKind::Basic, members), Effect::Blocks(_)))
        .collect();
    let mut groups: Vec<String> =
        blocking.first().map_or_else(Vec::new, |first| first.named_exclusions().cloned().collect());
    groups.retain(|group| blocking.iter().all(|p| p.named_exclusions().any(|g| g.eq_ignore_ascii_case(group))));
    if evidence.is_empty() {
        let enforced = policies.iter().filter(|p| p.is_enforced()).count();
        evidence.push(format!(
            "{enforced} enforced Conditional Access policies, none covering this user's SMTP client with a grant it cannot meet (report-only ones never block)"
        ));
    }
    let [basic, oauth] = states;
    (finding(layer, basic, oauth, evidence.join("; ")), groups)
}

/// "Enforced: legacy authentication affected: yes, apps require app passwords"; "Enabled: no,
/// legacy authentication continues to work until the registration process is completed"
/// (Entra, "Enable per-user Microsoft Entra multifactor authentication", the user states table).
/// An OAuth client meets MFA when it gets its token.
fn per_user_mfa(state: &Known<Value>) -> Finding {
    let layer = Layer::PerUserMfa;
    match state {
        Ok(Value::Enforced) => basic_only(
            layer,
            State::Blocks,
            "per-user MFA is enforced (authentication/requirements): a client with a password cannot answer MFA (only an app password would do, where no authentication policy blocks Basic)",
        ),
        Ok(value) => basic_only(
            layer,
            State::Allows,
            format!("per-user MFA is {value} (authentication/requirements): legacy clients work until it is enforced"),
        ),
        Err(error) => basic_only(layer, unread(error), error.describe()),
    }
}

fn sign_in(enabled: &Known<bool>) -> Finding {
    match enabled {
        Ok(true) => both(Layer::SignIn, State::Allows, "sign-in is allowed (accountEnabled true)"),
        Ok(false) => both(Layer::SignIn, State::Blocks, "sign-in is blocked for this account (accountEnabled false)"),
        Err(error) => both(Layer::SignIn, unread(error), error.describe()),
    }
}

#[cfg(test)]
mod tests;
