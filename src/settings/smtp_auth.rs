//! `smtp-auth`: a mailbox's `SmtpClientAuthenticationDisabled`, through the Exchange admin API.
//! `null` follows the organisation's setting (inherit), `false` is on (enabled), `true` is off.

use serde_json::{Map, json};

use super::spec::{Access, Pending, RECIPIENT_ADMINISTRATOR, Scope, Spec};
use super::{Reading, Sources, Value};
use crate::cloud::graph::DirectoryUser;
use crate::cloud::{Api, Call, CallError, CloudClient, RequestIds, exchange};

// The organisation's switch is a setting of its own; what reads a mailbox's often wants it too.
pub(crate) use super::organisation_smtp_auth::organisation_disabled;

pub(crate) const SPEC: Spec = Spec {
    name: "smtp-auth",
    scope: Scope::Mailbox,
    values: &[Value::Enabled, Value::Disabled, Value::Inherit],
    per_row: true,
    api: Api::Exchange,
    permission: "Exchange.ManageAsApp and Exchange Recipient Administrator",
    document: "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission",
    access: Access::Target {
        read: read_target,
        write: |client, user, _, value| Ok(write(&client.tenant_id, &user.upn, value)),
    },
    advice: RECIPIENT_ADMINISTRATOR,
    ..Spec::PLAIN
};

/// The parameters that name one recipient to an Exchange cmdlet.
pub(super) fn parameters(identity: &str) -> Map<String, serde_json::Value> {
    let mut parameters = Map::new();
    parameters.insert("Identity".into(), json!(identity));
    parameters
}

/// Only a plain ASCII UPN can travel in the `X-AnchorMailbox` header.
pub(super) fn anchor(upn: &str) -> Option<&str> {
    upn.bytes().all(|b| b.is_ascii_graphic()).then_some(upn)
}

pub(crate) async fn read(client: &CloudClient, upn: &str) -> Result<Reading, CallError> {
    let mut call = exchange::invoke(&client.tenant_id, "Get-CASMailbox", parameters(upn), anchor(upn));
    call.path.push_str("?$select=Identity,PrimarySmtpAddress,SmtpClientAuthenticationDisabled");
    let answer = match client.send(&call).await {
        Ok(answer) => answer,
        Err(error) if error.is_not_found() => {
            return Ok(Reading { value: None, attempts: error.attempts(), ids: error.ids() });
        }
        Err(error) => return Err(error),
    };
    let mailbox = &answer.body["value"][0];
    let Some(value) = mailbox.get("SmtpClientAuthenticationDisabled").and_then(value_of) else {
        return Err(super::unexpected(&answer, "SmtpClientAuthenticationDisabled"));
    };
    Ok(Reading::of(Some(value), &answer))
}

/// A mailbox's value from the run's bulk listing when it reads every mailbox at once and the
/// listing can say, else from Exchange.
fn read_target<'a>(client: &'a CloudClient, user: &'a DirectoryUser, sources: Sources<'a>) -> Pending<'a> {
    Box::pin(async move {
        if let Some(index) = sources.smtp_index
            && let Some(known) = index.lookup(&user.id).await
        {
            return Ok(Reading { value: known, attempts: 0, ids: RequestIds::default() });
        }
        read(client, &user.upn).await
    })
}

pub(crate) fn write(tenant_id: &str, upn: &str, value: Value) -> Call {
    let mut parameters = parameters(upn);
    let disabled = match value {
        Value::Enabled => json!(false),
        Value::Disabled => json!(true),
        _ => serde_json::Value::Null,
    };
    parameters.insert("SmtpClientAuthenticationDisabled".into(), disabled);
    exchange::invoke(tenant_id, "Set-CASMailbox", parameters, anchor(upn))
}

/// A listed `SmtpClientAuthenticationDisabled` as a value: `null` inherits, `false` is on.
pub(crate) fn value_of(disabled: &serde_json::Value) -> Option<Value> {
    match disabled {
        serde_json::Value::Null => Some(Value::Inherit),
        serde_json::Value::Bool(true) => Some(Value::Disabled),
        serde_json::Value::Bool(false) => Some(Value::Enabled),
        _ => None,
    }
}
