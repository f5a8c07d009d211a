//! `authentication-policy`: the Exchange authentication policy assigned to a user, through the
//! Exchange admin API (`Get-User` / `Set-User -AuthenticationPolicy`). "You can use any value that
//! uniquely identifies the policy: Name, Distinguished name (DN), GUID. To remove the policy
//! assignment for the user, use the value $null" (Set-User). What `Get-User` hands back is kept as
//! the policy's name where the tenant's policies say which it is, so that the value a run found is
//! the value a rollback writes back, and compares equal to what it set.

use serde_json::json;

use super::spec::{Access, Pending, RECIPIENT_ADMINISTRATOR, Scope, Spec};
use super::{Reading, Sources, Value};
use crate::cloud::graph::DirectoryUser;
use crate::cloud::{Api, Call, CallError, CloudClient, exchange};
use crate::diagnosis::AuthPolicy;

pub(crate) const SPEC: Spec = Spec {
    name: "authentication-policy",
    scope: Scope::Mailbox,
    // Only `--basic-auth-policy` sets it: the value is a policy of the tenant's.
    api: Api::Exchange,
    permission: "Exchange.ManageAsApp and Exchange Recipient Administrator",
    document: "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/disable-basic-authentication-in-exchange-online",
    access: Access::Target {
        read: read_target,
        write: |client, user, _, value| Ok(write(&client.tenant_id, &user.upn, value)),
    },
    // Taken only for a user whose authentication policy blocks SMTP AUTH.
    opt_in: true,
    needs_policies: true,
    advice: RECIPIENT_ADMINISTRATOR,
    ..Spec::PLAIN
};

/// The value of "no policy of the user's own" (the organisation's default applies).
pub(crate) fn none() -> Value {
    Value::Named(super::Name::new(""))
}

/// A policy reference (name, DN or GUID) as the value of the policy it names.
pub(crate) fn value_of(reference: &str, policies: &[AuthPolicy]) -> Value {
    let name = policies.iter().find(|p| p.is_named(reference)).map_or(reference, |p| p.name.as_str());
    Value::Named(super::Name::new(name))
}

pub(crate) async fn read(client: &CloudClient, upn: &str, policies: &[AuthPolicy]) -> Result<Reading, CallError> {
    let mut call = exchange::invoke(&client.tenant_id, "Get-User", exchange::identity(upn), exchange::anchor(upn));
    call.path.push_str("?$select=Identity,AuthenticationPolicy");
    let answer = match client.send(&call).await {
        Ok(answer) => answer,
        Err(error) if error.is_not_found() => {
            return Ok(Reading { value: None, attempts: error.attempts(), ids: error.ids() });
        }
        Err(error) => return Err(error),
    };
    let user = &answer.body["value"][0];
    let value = match user.get("AuthenticationPolicy") {
        Some(serde_json::Value::Null) => none(),
        Some(serde_json::Value::String(reference)) if reference.is_empty() => none(),
        Some(serde_json::Value::String(reference)) => value_of(reference, policies),
        _ => return Err(super::unexpected(&answer, "AuthenticationPolicy")),
    };
    Ok(Reading::of(Some(value), &answer))
}

fn read_target<'a>(client: &'a CloudClient, user: &'a DirectoryUser, sources: Sources<'a>) -> Pending<'a> {
    Box::pin(read(client, &user.upn, sources.policies))
}

pub(crate) fn write(tenant_id: &str, upn: &str, value: Value) -> Call {
    let mut parameters = exchange::identity(upn);
    let policy = match value {
        Value::Named(name) if !name.as_str().is_empty() => json!(name.as_str()),
        _ => serde_json::Value::Null,
    };
    parameters.insert("AuthenticationPolicy".into(), policy);
    exchange::invoke(tenant_id, "Set-User", parameters, exchange::anchor(upn))
}
