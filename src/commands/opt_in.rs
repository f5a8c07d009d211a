//! The SMTP AUTH layers a run opens or judges: the fix's opt-in steps (`--basic-auth-policy`,
//! `--ca-exclusion-group`), checked against the tenant before anything is changed, and the
//! `smtp-auth-effective` verdict every target of an SMTP AUTH run gets.

use super::Connection;
use crate::cli::{RunArgs, Switch};
use crate::diagnosis::read;
use crate::engine::layers::Layers;
use crate::error::{Error, Result};
use crate::run::record::SmtpLayers;
use crate::settings::{DesiredState, Name, Setting, Value};

/// The flags of a new run, checked against its tenant: the policy must exist and allow Basic
/// SMTP AUTH, and the group must exist and be excluded by an enforced Conditional Access policy.
pub(super) async fn checked(args: &RunArgs, connections: &[(Option<String>, Connection)]) -> Result<SmtpLayers> {
    let mut layers = SmtpLayers {
        basic_auth_smtp: args.basic_auth_smtp.map(|switch| switch == Switch::On),
        ..SmtpLayers::default()
    };
    if args.basic_auth_policy.is_none() && args.ca_exclusion_group.is_none() {
        return Ok(layers);
    }
    let [(_, connection)] = connections else {
        return Err(Error::Usage(
            "--basic-auth-policy and --ca-exclusion-group name one tenant's policy or group; run each tenant on its own".into(),
        ));
    };
    let client = &connection.client;
    if let Some(name) = &args.basic_auth_policy {
        let refused = |e: crate::cloud::CallError| {
            Error::Usage(format!(
                "--basic-auth-policy {name}: cannot read the tenant's authentication policies ({e}); the app needs Exchange.ManageAsApp and the Global Reader role"
            ))
        };
        let policy = read::find_policy(client, name).await.map_err(refused)?;
        match policy {
            Some(policy) if policy.allow_basic_smtp => layers.basic_auth_policy = Some(policy.name),
            Some(policy) => {
                return Err(Error::Usage(format!(
                    "--basic-auth-policy {name}: the policy '{}' does not allow Basic SMTP AUTH (AllowBasicAuthSmtp is False): name one that does, or make one with New-AuthenticationPolicy -Name 'Allow Basic SMTP' -AllowBasicAuthSmtp",
                    policy.name
                )));
            }
            None => {
                let names = read::policy_names(client).await.map_err(refused)?;
                return Err(Error::Usage(format!(
                    "--basic-auth-policy {name}: no authentication policy of that name in the tenant (there are: {})",
                    if names.is_empty() { "none".into() } else { names.join(", ") }
                )));
            }
        }
    }
    if let Some(group) = &args.ca_exclusion_group {
        layers.ca_exclusion_group = Some(exclusion_group(connection, group).await?);
    }
    Ok(layers)
}

/// The group's id, once it is known to be one group that an enforced policy excludes.
async fn exclusion_group(connection: &Connection, group: &str) -> Result<String> {
    let client = &connection.client;
    let flag = format!("--ca-exclusion-group {group}");
    let found = read::find_groups(client, group).await.map_err(|e| {
        Error::Usage(format!("{flag}: cannot look the group up ({e}); the app needs GroupMember.Read.All"))
    })?;
    let (id, name) = match found.as_slice() {
        [one] => one.clone(),
        [] => return Err(Error::Usage(format!("{flag}: no group of that name or id in the tenant"))),
        _ => return Err(Error::Usage(format!("{flag}: {} groups have that name; give the group's id", found.len()))),
    };
    let excluding =
        read::policies_excluding(client, &id).await.map_err(|e| Error::Usage(format!("{flag}: {}", e.describe())))?;
    if excluding.is_empty() {
        return Err(Error::Usage(format!(
            "{flag}: no enforced Conditional Access policy excludes the group '{name}', so adding members would unblock nobody; name the group your blocking policy excludes (the tool never edits Conditional Access policies)"
        )));
    }
    tracing::info!("the group '{name}' is excluded by {}", excluding.join(", "));
    Ok(id)
}

/// Before an apply enables or enforces per-user MFA, the role-holding accounts among its targets
/// (break-glass and admin accounts) are named and a typed yes is asked: Microsoft advises against
/// per-user MFA where Conditional Access is in use, and a locked-out break-glass account is the
/// worst way to learn it.
pub(super) async fn confirm_mfa_on_admins(
    desired: &DesiredState,
    connections: &[(Option<String>, Connection)],
    identities: Option<&std::collections::HashSet<String>>,
    yes: bool,
) -> Result<()> {
    if !matches!(desired.get(Setting::PerUserMfa), Some(Value::Enabled | Value::Enforced)) {
        return Ok(());
    }
    let mut admins = Vec::new();
    for (_, connection) in connections {
        match read::role_holding_users(&connection.client).await {
            Ok(users) => {
                admins.extend(users.into_iter().filter(|(_, upn)| identities.is_none_or(|wanted| wanted.contains(upn))))
            }
            Err(error) => tracing::warn!(
                "cannot tell which targets hold admin roles ({error}); grant RoleManagement.Read.Directory"
            ),
        }
    }
    if admins.is_empty() {
        return Ok(());
    }
    let named: Vec<String> =
        admins.iter().take(10).map(|(id, upn)| if upn.is_empty() { id.clone() } else { upn.clone() }).collect();
    let warning = format!(
        "per-user MFA would be {} on {} accounts that hold admin roles ({}{}); Microsoft advises against per-user MFA where Conditional Access is used, and a break-glass account must never be locked out",
        desired.get(Setting::PerUserMfa).map_or("", |v| v.name()),
        admins.len(),
        named.join(", "),
        if admins.len() > 10 { ", …" } else { "" }
    );
    crate::logging::say(crate::logging::Loudness::Warning, "warning", &warning);
    super::confirm("apply would change per-user MFA on accounts that hold admin roles", yes)
}

/// Adds the opt-in steps to the desired state.
pub(super) fn add_steps(desired: &mut DesiredState, layers: &SmtpLayers) {
    if let Some(policy) = &layers.basic_auth_policy {
        desired.set(Setting::AuthenticationPolicy, Value::Named(Name::new(policy)));
    }
    if layers.ca_exclusion_group.is_some() {
        desired.set(Setting::CaExclusion, Value::Member);
    }
}

/// The layers a run judges: a verdict row for every target when SMTP AUTH is set (the fix wants
/// the device able to send, the lockdown unable), and what the opt-in steps need.
pub(super) fn layers(desired: &DesiredState, recorded: &SmtpLayers) -> Option<Layers> {
    let verdict = match desired.get(Setting::SmtpAuth) {
        Some(Value::Enabled) => Some(Value::CanSend),
        Some(Value::Disabled) => Some(Value::Blocked),
        _ => None,
    };
    let steps = desired.get(Setting::AuthenticationPolicy).is_some() || desired.get(Setting::CaExclusion).is_some();
    if verdict.is_none() && !steps {
        return None;
    }
    let basic = read::basic_smtp(recorded.basic_auth_smtp, time::OffsetDateTime::now_utc().date());
    Some(Layers::new(verdict, basic, recorded.ca_exclusion_group.clone()))
}
