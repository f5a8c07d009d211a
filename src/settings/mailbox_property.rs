//! The settings that are properties of a mailbox as Exchange lists it: `Get-CASMailbox` and
//! `Set-CASMailbox` for its client access ("Set-CASMailbox", learn.microsoft.com/powershell/module/
//! exchange/set-casmailbox), `Get-Mailbox` and `Set-Mailbox` for auditing and forwarding
//! ("Set-Mailbox", learn.microsoft.com/powershell/module/exchange/set-mailbox), and
//! `Get-`/`Set-MailboxAuditBypassAssociation` for audit bypass (learn.microsoft.com/powershell/
//! module/exchange/set-mailboxauditbypassassociation), each cmdlet taking the properties it lists
//! as parameters of the same name. A setting of this kind declares its
//! property and how the service writes its values ([`MailboxProperty`]); reading one mailbox,
//! writing it, and reading every mailbox at once in the run's bulk listing
//! ([`super::mailbox_index`]) are the same for all of them, here.

use serde_json::{Map, json};

use super::spec::{Access, RECIPIENT_ADMINISTRATOR, Scope, Spec};
use super::{Name, Reading, Value};
use crate::cloud::exchange::{self, anchor, identity};
use crate::cloud::{Api, Call, CallError, CloudClient};

/// Which pair of cmdlets lists and sets a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Cmdlet {
    /// `Get-`/`Set-CASMailbox`: the protocol switches and SMTP AUTH.
    CasMailbox,
    /// `Get-`/`Set-Mailbox`: auditing, forwarding, the kind of mailbox.
    Mailbox,
    /// `Get-`/`Set-MailboxAuditBypassAssociation`: audit bypass, the account's. Its listing names
    /// every account by its Exchange `Guid` and carries no directory id, so the bulk listing joins
    /// it to `Get-Mailbox`'s `Guid` ([`super::mailbox_index`]).
    AuditBypass,
}

impl Cmdlet {
    pub(crate) const ALL: [Cmdlet; 3] = [Cmdlet::CasMailbox, Cmdlet::Mailbox, Cmdlet::AuditBypass];

    pub(crate) const fn get(self) -> &'static str {
        match self {
            Cmdlet::CasMailbox => "Get-CASMailbox",
            Cmdlet::Mailbox => "Get-Mailbox",
            Cmdlet::AuditBypass => "Get-MailboxAuditBypassAssociation",
        }
    }

    const fn set(self) -> &'static str {
        match self {
            Cmdlet::CasMailbox => "Set-CASMailbox",
            Cmdlet::Mailbox => "Set-Mailbox",
            Cmdlet::AuditBypass => "Set-MailboxAuditBypassAssociation",
        }
    }
}

/// One property a `Get-` cmdlet lists and its `Set-` cmdlet takes, and its values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MailboxProperty {
    pub cmdlet: Cmdlet,
    /// As the service names both the property and the parameter.
    pub name: &'static str,
    pub kind: Kind,
}

/// How the service writes a property's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A `Boolean` switch that allows something: `$true` enabled, `$false` disabled, never
    /// `$null` (`PopEnabled`, `ImapEnabled`, `ActiveSyncEnabled`, `MAPIEnabled`, `OWAEnabled`,
    /// `AuditEnabled`, and `AuditBypassEnabled`, where enabled is the weaker value).
    Allows,
    /// A nullable switch that allows it, where `$null` follows the organisation's (`EWSEnabled`).
    AllowsOrInherits,
    /// A nullable switch that forbids it, where `$null` follows the organisation's
    /// (`SmtpClientAuthenticationDisabled`: `$false` is on).
    ForbidsOrInherits,
    /// Forwarding, three properties as one value: `ForwardingAddress`, `ForwardingSmtpAddress`
    /// (blank, `$null`, by default) and `DeliverToMailboxAndForward` (`$false` by default), per
    /// Set-Mailbox. `none` is all three at their defaults; anything else is kept whole, as the
    /// JSON of the properties that are not, so that a rollback puts back exactly what it found.
    Forwarding,
    /// `RecipientTypeDetails`, read only: whether the mailbox is a shared, room or equipment
    /// mailbox ([`Value::Member`] of those kinds) or not ([`Value::NotMember`]).
    SharedMailbox,
}

/// The forwarding properties that name a recipient, blank by default.
const FORWARDING_TO: [&str; 2] = ["ForwardingAddress", "ForwardingSmtpAddress"];
const DELIVER_AND_FORWARD: &str = "DeliverToMailboxAndForward";

/// The `RecipientTypeDetails` of the mailboxes nobody signs in to.
const SHARED_KINDS: [&str; 3] = ["SharedMailbox", "RoomMailbox", "EquipmentMailbox"];

impl MailboxProperty {
    /// The properties a listing selects for it.
    pub(crate) fn fields(self) -> Vec<&'static str> {
        match self.kind {
            Kind::Forwarding => vec![FORWARDING_TO[0], FORWARDING_TO[1], DELIVER_AND_FORWARD],
            _ => vec![self.name],
        }
    }

    /// A listed or read mailbox's value; `None` when it is not one the kind allows.
    pub(crate) fn decode(self, mailbox: &serde_json::Value) -> Option<Value> {
        use serde_json::Value::{Bool, Null, String};
        let listed = mailbox.get(self.name)?;
        match (self.kind, listed) {
            (Kind::Forwarding, _) => forwarding(mailbox),
            (Kind::SharedMailbox, String(kind)) => {
                Some(if SHARED_KINDS.contains(&kind.as_str()) { Value::Member } else { Value::NotMember })
            }
            (Kind::AllowsOrInherits | Kind::ForbidsOrInherits, Null) => Some(Value::Inherit),
            (Kind::Allows | Kind::AllowsOrInherits, Bool(allows)) => Some(on_or_off(*allows)),
            (Kind::ForbidsOrInherits, Bool(forbids)) => Some(on_or_off(!*forbids)),
            _ => None,
        }
    }

    /// A value as the parameters that write it; `inherit` only where the kind has `$null`.
    pub(crate) fn encode(self, value: Value) -> Option<Map<String, serde_json::Value>> {
        let single = match (self.kind, value) {
            (Kind::Forwarding, _) => return forwarding_parameters(value),
            (Kind::SharedMailbox, _) => return None,
            (Kind::AllowsOrInherits | Kind::ForbidsOrInherits, Value::Inherit) => serde_json::Value::Null,
            (Kind::Allows | Kind::AllowsOrInherits, Value::Enabled | Value::Disabled) => json!(value == Value::Enabled),
            (Kind::ForbidsOrInherits, Value::Enabled | Value::Disabled) => json!(value == Value::Disabled),
            _ => return None,
        };
        Some(Map::from_iter([(self.name.to_string(), single)]))
    }
}

/// A mailbox's forwarding: `none`, or the JSON of what is set.
fn forwarding(mailbox: &serde_json::Value) -> Option<Value> {
    let mut set = Map::new();
    for field in FORWARDING_TO {
        match mailbox.get(field)? {
            serde_json::Value::Null => {}
            serde_json::Value::String(text) if text.is_empty() => {}
            serde_json::Value::String(text) => _ = set.insert(field.into(), json!(text)),
            _ => return None,
        }
    }
    match mailbox.get(DELIVER_AND_FORWARD)? {
        serde_json::Value::Bool(true) => _ = set.insert(DELIVER_AND_FORWARD.into(), json!(true)),
        serde_json::Value::Bool(false) | serde_json::Value::Null => {}
        _ => return None,
    }
    if set.is_empty() {
        return Some(Value::Nothing);
    }
    Some(Value::Named(Name::new(&serde_json::Value::Object(set).to_string())))
}

/// The Set-Mailbox parameters that give a mailbox the forwarding `value`: every one of the three,
/// so what the value does not set goes back to its default.
fn forwarding_parameters(value: Value) -> Option<Map<String, serde_json::Value>> {
    let set = match value {
        Value::Nothing => Map::new(),
        Value::Named(name) => match serde_json::from_str(name.as_str()).ok()? {
            serde_json::Value::Object(set) => set,
            _ => return None,
        },
        _ => return None,
    };
    let known = |key: &String| FORWARDING_TO.contains(&key.as_str()) || key == DELIVER_AND_FORWARD;
    if !set.keys().all(known) {
        return None;
    }
    let mut parameters = Map::new();
    for field in FORWARDING_TO {
        parameters.insert(field.into(), set.get(field).cloned().unwrap_or(serde_json::Value::Null));
    }
    parameters.insert(DELIVER_AND_FORWARD.into(), set.get(DELIVER_AND_FORWARD).cloned().unwrap_or(json!(false)));
    Some(parameters)
}

/// The spec of a Boolean switch of `cmdlet`: a `property` that allows something, each mailbox's,
/// written with the Recipient Administrator role, following `document`.
pub(crate) const fn switch(name: &'static str, property: MailboxProperty, document: &'static str) -> Spec {
    Spec {
        name,
        scope: Scope::Mailbox,
        values: &[Value::Enabled, Value::Disabled],
        api: Api::Exchange,
        permission: "Exchange.ManageAsApp and Exchange Recipient Administrator",
        document,
        access: Access::Mailbox(property),
        advice: RECIPIENT_ADMINISTRATOR,
        ..Spec::PLAIN
    }
}

/// The spec of a protocol switch of Set-CASMailbox: a Boolean `property`, `$true` by default.
pub(crate) const fn protocol_switch(name: &'static str, property: &'static str) -> Spec {
    let property = MailboxProperty { cmdlet: Cmdlet::CasMailbox, name: property, kind: Kind::Allows };
    switch(name, property, "https://learn.microsoft.com/powershell/module/exchange/set-casmailbox")
}

fn on_or_off(on: bool) -> Value {
    if on { Value::Enabled } else { Value::Disabled }
}

/// One mailbox's `property`; `None` for a user without an Exchange Online mailbox.
pub(crate) async fn read(client: &CloudClient, upn: &str, property: MailboxProperty) -> Result<Reading, CallError> {
    let mut call = exchange::invoke(&client.tenant_id, property.cmdlet.get(), identity(upn), anchor(upn));
    call.path.push_str(&format!("?$select=Identity,PrimarySmtpAddress,{}", property.fields().join(",")));
    let answer = match client.send(&call).await {
        Ok(answer) => answer,
        Err(error) if error.is_not_found() => {
            return Ok(Reading { value: None, attempts: error.attempts(), ids: error.ids() });
        }
        Err(error) => return Err(error),
    };
    match property.decode(&answer.body["value"][0]) {
        Some(value) => Ok(Reading::of(Some(value), &answer)),
        None => Err(super::unexpected(&answer, property.name)),
    }
}

/// `Set-<cmdlet> -Identity upn -<property> value`.
pub(crate) fn write(tenant_id: &str, upn: &str, property: MailboxProperty, value: Value) -> Result<Call, CallError> {
    let Some(encoded) = property.encode(value) else {
        return Err(CallError::Local {
            code: "NotAValue",
            message: format!("{value} is not a value of {}", property.name),
        });
    };
    let mut parameters = identity(upn);
    parameters.extend(encoded);
    Ok(exchange::invoke(tenant_id, property.cmdlet.set(), parameters, anchor(upn)))
}

#[cfg(test)]
mod tests;
