//! The settings that are one property of a mailbox's client access: `Get-CASMailbox` lists them
//! and `Set-CASMailbox` takes them as parameters of the same name ("Set-CASMailbox",
//! learn.microsoft.com/powershell/module/exchange/set-casmailbox). A setting of this kind declares
//! its property and how the service writes its values ([`CasProperty`]); reading one mailbox,
//! writing it, and reading every mailbox at once in the run's bulk listing
//! ([`super::mailbox_index`]) are the same for all of them, here.

use serde_json::json;

use super::spec::{Access, RECIPIENT_ADMINISTRATOR, Scope, Spec};
use super::{Reading, Value};
use crate::cloud::exchange::{self, anchor, identity};
use crate::cloud::{Api, Call, CallError, CloudClient};

/// One property of `Get-CASMailbox` / parameter of `Set-CASMailbox`, and its values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CasProperty {
    /// As the service names both the property and the parameter.
    pub name: &'static str,
    pub kind: Kind,
}

/// How the service writes a property's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A `Boolean` switch that allows the protocol: `$true` enabled, `$false` disabled, never
    /// `$null` (`PopEnabled`, `ImapEnabled`, `ActiveSyncEnabled`, `MAPIEnabled`, `OWAEnabled`).
    Allows,
    /// A nullable switch that allows it, where `$null` follows the organisation's (`EWSEnabled`).
    AllowsOrInherits,
    /// A nullable switch that forbids it, where `$null` follows the organisation's
    /// (`SmtpClientAuthenticationDisabled`: `$false` is on).
    ForbidsOrInherits,
}

impl CasProperty {
    /// A listed or read value as a setting's value; `None` when it is not one the kind allows.
    pub(crate) fn decode(self, listed: &serde_json::Value) -> Option<Value> {
        use serde_json::Value::{Bool, Null};
        match (self.kind, listed) {
            (Kind::AllowsOrInherits | Kind::ForbidsOrInherits, Null) => Some(Value::Inherit),
            (Kind::Allows | Kind::AllowsOrInherits, Bool(allows)) => Some(on_or_off(*allows)),
            (Kind::ForbidsOrInherits, Bool(forbids)) => Some(on_or_off(!*forbids)),
            _ => None,
        }
    }

    /// A value as the parameter takes it; `inherit` only where the kind has `$null`.
    pub(crate) fn encode(self, value: Value) -> Option<serde_json::Value> {
        match (self.kind, value) {
            (Kind::AllowsOrInherits | Kind::ForbidsOrInherits, Value::Inherit) => Some(serde_json::Value::Null),
            (Kind::Allows | Kind::AllowsOrInherits, Value::Enabled | Value::Disabled) => {
                Some(json!(value == Value::Enabled))
            }
            (Kind::ForbidsOrInherits, Value::Enabled | Value::Disabled) => Some(json!(value == Value::Disabled)),
            _ => None,
        }
    }
}

/// The spec of a protocol switch of Set-CASMailbox: a Boolean `property` that allows the
/// protocol, `$true` by default, each mailbox's, written with the Recipient Administrator role.
pub(crate) const fn protocol_switch(name: &'static str, property: &'static str) -> Spec {
    Spec {
        name,
        scope: Scope::Mailbox,
        values: &[Value::Enabled, Value::Disabled],
        api: Api::Exchange,
        permission: "Exchange.ManageAsApp and Exchange Recipient Administrator",
        document: "https://learn.microsoft.com/powershell/module/exchange/set-casmailbox",
        access: Access::Cas(CasProperty { name: property, kind: Kind::Allows }),
        advice: RECIPIENT_ADMINISTRATOR,
        ..Spec::PLAIN
    }
}

fn on_or_off(on: bool) -> Value {
    if on { Value::Enabled } else { Value::Disabled }
}

/// One mailbox's `property`; `None` for a user without an Exchange Online mailbox.
pub(crate) async fn read(client: &CloudClient, upn: &str, property: CasProperty) -> Result<Reading, CallError> {
    let mut call = exchange::invoke(&client.tenant_id, "Get-CASMailbox", identity(upn), anchor(upn));
    call.path.push_str(&format!("?$select=Identity,PrimarySmtpAddress,{}", property.name));
    let answer = match client.send(&call).await {
        Ok(answer) => answer,
        Err(error) if error.is_not_found() => {
            return Ok(Reading { value: None, attempts: error.attempts(), ids: error.ids() });
        }
        Err(error) => return Err(error),
    };
    match answer.body["value"][0].get(property.name).and_then(|listed| property.decode(listed)) {
        Some(value) => Ok(Reading::of(Some(value), &answer)),
        None => Err(super::unexpected(&answer, property.name)),
    }
}

/// `Set-CASMailbox -Identity upn -<property> value`.
pub(crate) fn write(tenant_id: &str, upn: &str, property: CasProperty, value: Value) -> Result<Call, CallError> {
    let Some(encoded) = property.encode(value) else {
        return Err(CallError::Local {
            code: "NotAValue",
            message: format!("{value} is not a value of {}", property.name),
        });
    };
    let mut parameters = identity(upn);
    parameters.insert(property.name.into(), encoded);
    Ok(exchange::invoke(tenant_id, "Set-CASMailbox", parameters, anchor(upn)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POP: CasProperty = CasProperty { name: "PopEnabled", kind: Kind::Allows };
    const EWS: CasProperty = CasProperty { name: "EWSEnabled", kind: Kind::AllowsOrInherits };
    const SMTP: CasProperty = CasProperty { name: "SmtpClientAuthenticationDisabled", kind: Kind::ForbidsOrInherits };

    #[test]
    fn each_kind_reads_and_writes_its_own_values() {
        assert_eq!(POP.decode(&json!(false)), Some(Value::Disabled));
        assert_eq!(POP.decode(&serde_json::Value::Null), None, "a Boolean is never $null");
        assert_eq!(POP.encode(Value::Inherit), None);
        assert_eq!(EWS.decode(&serde_json::Value::Null), Some(Value::Inherit));
        assert_eq!(EWS.encode(Value::Enabled), Some(json!(true)));
        assert_eq!(SMTP.decode(&json!(false)), Some(Value::Enabled), "not disabled is on");
        assert_eq!(SMTP.encode(Value::Disabled), Some(json!(true)));
        assert_eq!(SMTP.decode(&json!("false")), None, "a string is not a Boolean");
    }

    #[test]
    fn every_value_written_reads_back_as_itself() {
        for property in [POP, EWS, SMTP] {
            for value in [Value::Enabled, Value::Disabled, Value::Inherit] {
                if let Some(encoded) = property.encode(value) {
                    assert_eq!(property.decode(&encoded), Some(value), "{property:?} {value}");
                }
            }
        }
    }
}
