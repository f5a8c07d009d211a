//! `pop`: whether a mailbox may be read with POP3, its `PopEnabled` (Get-/Set-CASMailbox, through
//! the Exchange admin API). `$true` (the default) is enabled, `$false` disabled; the parameter is
//! a Boolean, so there is no inherit ("Set-CASMailbox", learn.microsoft.com/powershell/module/
//! exchange/set-casmailbox: "PopEnabled ... Valid values are: $true ... $false"). CIS Microsoft
//! 365 Foundations and CISA SCuBA ask for it off where it is not used.

use serde_json::json;

use super::smtp_auth::{anchor, parameters};
use super::spec::{Access, Pending, RECIPIENT_ADMINISTRATOR, Scope, Spec};
use super::{Reading, Sources, Value};
use crate::cloud::graph::DirectoryUser;
use crate::cloud::{Api, Call, CallError, CloudClient, exchange};

pub(crate) const SPEC: Spec = Spec {
    name: "pop",
    scope: Scope::Mailbox,
    values: &[Value::Enabled, Value::Disabled],
    api: Api::Exchange,
    permission: "Exchange.ManageAsApp and Exchange Recipient Administrator",
    document: "https://learn.microsoft.com/powershell/module/exchange/set-casmailbox",
    access: Access::Target {
        read: read_target,
        write: |client, user, _, value| Ok(write(&client.tenant_id, &user.upn, value)),
    },
    advice: RECIPIENT_ADMINISTRATOR,
    ..Spec::PLAIN
};

/// A mailbox's `PopEnabled`; `None` for a user without an Exchange Online mailbox.
pub(crate) async fn read(client: &CloudClient, upn: &str) -> Result<Reading, CallError> {
    let mut call = exchange::invoke(&client.tenant_id, "Get-CASMailbox", parameters(upn), anchor(upn));
    call.path.push_str("?$select=Identity,PrimarySmtpAddress,PopEnabled");
    let answer = match client.send(&call).await {
        Ok(answer) => answer,
        Err(error) if error.is_not_found() => {
            return Ok(Reading { value: None, attempts: error.attempts(), ids: error.ids() });
        }
        Err(error) => return Err(error),
    };
    let value = match answer.body["value"][0].get("PopEnabled").and_then(serde_json::Value::as_bool) {
        Some(true) => Value::Enabled,
        Some(false) => Value::Disabled,
        None => return Err(super::unexpected(&answer, "PopEnabled")),
    };
    Ok(Reading::of(Some(value), &answer))
}

fn read_target<'a>(client: &'a CloudClient, user: &'a DirectoryUser, _: Sources<'a>) -> Pending<'a> {
    Box::pin(read(client, &user.upn))
}

pub(crate) fn write(tenant_id: &str, upn: &str, value: Value) -> Call {
    let mut parameters = parameters(upn);
    parameters.insert("PopEnabled".into(), json!(value == Value::Enabled));
    exchange::invoke(tenant_id, "Set-CASMailbox", parameters, anchor(upn))
}
