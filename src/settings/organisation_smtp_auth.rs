//! `organisation-smtp-auth`: the organisation's `SmtpClientAuthenticationDisabled`, through the
//! Exchange admin API (`Get-TransportConfig` / `Set-TransportConfig`): what a mailbox whose own
//! switch inherits gets. Changing it needs the Exchange Administrator role.

use serde_json::{Map, json};

use super::spec::{Access, Advice, Pending, Scope, Spec};
use super::{Reading, Value};
use crate::cloud::{Api, Call, CallError, CloudClient, exchange};

pub(crate) const SPEC: Spec = Spec {
    name: "organisation-smtp-auth",
    scope: Scope::Tenant,
    values: &[Value::Enabled, Value::Disabled],
    api: Api::Exchange,
    permission: "Exchange.ManageAsApp and Exchange Administrator",
    document: "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission",
    access: Access::Tenant { read: read_boxed, write: |client, value| write(&client.tenant_id, value) },
    advice: Advice {
        read_only: "grant the app Exchange.ManageAsApp (Office 365 Exchange Online) and assign it the Exchange Administrator role (Set-TransportConfig needs it)",
        changing: "grant the app Exchange.ManageAsApp (Office 365 Exchange Online) and assign it the Exchange Administrator role (Set-TransportConfig needs it)",
    },
    ..Spec::PLAIN
};

/// The organisation's `SmtpClientAuthenticationDisabled` (Get-TransportConfig): what a mailbox
/// that inherits gets.
pub(crate) async fn organisation_disabled(client: &CloudClient) -> Result<bool, CallError> {
    Ok(read(client).await?.value != Some(Value::Enabled))
}

/// The organisation's switch as a value of `organisation-smtp-auth`.
pub(crate) async fn read(client: &CloudClient) -> Result<Reading, CallError> {
    let call = exchange::invoke(&client.tenant_id, "Get-TransportConfig", Map::new(), None);
    let answer = client.send(&call).await?;
    match answer.body["value"][0]["SmtpClientAuthenticationDisabled"].as_bool() {
        Some(disabled) => Ok(Reading::of(Some(if disabled { Value::Disabled } else { Value::Enabled }), &answer)),
        None => Err(super::unexpected(&answer, "SmtpClientAuthenticationDisabled")),
    }
}

fn read_boxed(client: &CloudClient) -> Pending<'_> {
    Box::pin(read(client))
}

/// `Set-TransportConfig -SmtpClientAuthenticationDisabled` (needs the Exchange Administrator role).
pub(crate) fn write(tenant_id: &str, value: Value) -> Call {
    let mut parameters = Map::new();
    parameters.insert("SmtpClientAuthenticationDisabled".into(), json!(value != Value::Enabled));
    exchange::invoke(tenant_id, "Set-TransportConfig", parameters, None)
}
