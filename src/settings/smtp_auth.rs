//! `smtp-auth`: a mailbox's `SmtpClientAuthenticationDisabled`, through the Exchange admin API.
//! `null` follows the organisation's setting (inherit), `false` is on (enabled), `true` is off.

use serde_json::{Map, json};

use super::{Reading, Value};
use crate::cloud::{Call, CallError, CloudClient, exchange};

fn parameters(identity: &str) -> Map<String, serde_json::Value> {
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

/// The organisation's `SmtpClientAuthenticationDisabled` (Get-TransportConfig): what a mailbox
/// that inherits gets.
pub(crate) async fn organisation_disabled(client: &CloudClient) -> Result<bool, CallError> {
    Ok(read_organisation(client).await?.value != Some(Value::Enabled))
}

/// The organisation's switch as a value of `organisation-smtp-auth`.
pub(crate) async fn read_organisation(client: &CloudClient) -> Result<Reading, CallError> {
    let call = exchange::invoke(&client.tenant_id, "Get-TransportConfig", Map::new(), None);
    let answer = client.send(&call).await?;
    match answer.body["value"][0]["SmtpClientAuthenticationDisabled"].as_bool() {
        Some(disabled) => Ok(Reading::of(Some(if disabled { Value::Disabled } else { Value::Enabled }), &answer)),
        None => Err(super::unexpected(&answer, "SmtpClientAuthenticationDisabled")),
    }
}

/// `Set-TransportConfig -SmtpClientAuthenticationDisabled` (needs the Exchange Administrator role).
pub(crate) fn write_organisation(tenant_id: &str, value: Value) -> Call {
    let mut parameters = Map::new();
    parameters.insert("SmtpClientAuthenticationDisabled".into(), json!(value != Value::Enabled));
    exchange::invoke(tenant_id, "Set-TransportConfig", parameters, None)
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
