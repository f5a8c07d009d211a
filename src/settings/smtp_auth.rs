//! `smtp-auth`: a mailbox's `SmtpClientAuthenticationDisabled`, through the Exchange admin API.
//! `null` follows the organisation's setting (inherit), `false` is on (enabled), `true` is off.

use serde_json::{Map, json};

use super::{Reading, Value};
use crate::cloud::{Answer, CallError, CloudClient, exchange};

fn parameters(identity: &str) -> Map<String, serde_json::Value> {
    let mut parameters = Map::new();
    parameters.insert("Identity".into(), json!(identity));
    parameters
}

/// Only a plain ASCII UPN can travel in the `X-AnchorMailbox` header.
fn anchor(upn: &str) -> Option<&str> {
    upn.bytes().all(|b| b.is_ascii_graphic()).then_some(upn)
}

pub async fn read(client: &CloudClient, upn: &str) -> Result<Reading, CallError> {
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
    let value = match mailbox.get("SmtpClientAuthenticationDisabled") {
        Some(serde_json::Value::Null) => Value::Inherit,
        Some(serde_json::Value::Bool(true)) => Value::Disabled,
        Some(serde_json::Value::Bool(false)) => Value::Enabled,
        _ => {
            return Err(super::unexpected(&answer, "SmtpClientAuthenticationDisabled"));
        }
    };
    Ok(Reading::of(Some(value), &answer))
}

pub async fn write(client: &CloudClient, upn: &str, value: Value) -> Result<Answer, CallError> {
    let mut parameters = parameters(upn);
    let disabled = match value {
        Value::Enabled => json!(false),
        Value::Disabled => json!(true),
        _ => serde_json::Value::Null,
    };
    parameters.insert("SmtpClientAuthenticationDisabled".into(), disabled);
    client.send(&exchange::invoke(&client.tenant_id, "Set-CASMailbox", parameters, anchor(upn))).await
}
