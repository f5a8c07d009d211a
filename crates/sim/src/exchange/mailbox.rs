//! A mailbox's own settings as Exchange keeps them and `Get-`/`Set-Mailbox` serve them: what kind
//! of mailbox it is (`RecipientTypeDetails`), mailbox auditing (`AuditEnabled`) and forwarding
//! (`ForwardingSmtpAddress`, `ForwardingAddress`, `DeliverToMailboxAndForward`), one identity or
//! every mailbox a page at a time, as Get-CASMailbox pages ("Get-Mailbox" and "Set-Mailbox",
//! learn.microsoft.com/powershell/module/exchangepowershell/get-mailbox and …/set-mailbox).

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::super::Service;
use super::super::reply::Reply;
use super::super::tenant::{Tenant, User};
use super::{
    ExchangeCall, bad_request, mailbox_identity, mailbox_to_set, mailbox_written, not_boolean, not_found, parameter,
    unknown_parameter,
};

/// The kinds of mailbox the simulated tenant holds, named as `RecipientTypeDetails` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipientTypeDetails {
    UserMailbox,
    SharedMailbox,
    RoomMailbox,
    EquipmentMailbox,
}

impl RecipientTypeDetails {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientTypeDetails::UserMailbox => "UserMailbox",
            RecipientTypeDetails::SharedMailbox => "SharedMailbox",
            RecipientTypeDetails::RoomMailbox => "RoomMailbox",
            RecipientTypeDetails::EquipmentMailbox => "EquipmentMailbox",
        }
    }
}

/// Every value Get-Mailbox's `-RecipientTypeDetails` takes (its help lists them); the kinds the
/// simulated tenant has no mailbox of are taken and match nothing.
const RECIPIENT_TYPES: [&str; 11] = [
    "DiscoveryMailbox",
    "EquipmentMailbox",
    "GroupMailbox",
    "LegacyMailbox",
    "LinkedMailbox",
    "LinkedRoomMailbox",
    "RoomMailbox",
    "SchedulingMailbox",
    "SharedMailbox",
    "TeamMailbox",
    "UserMailbox",
];

/// A mailbox's kind, auditing and forwarding. Set-Mailbox: `AuditEnabled` is on by default in
/// Exchange Online since January 2019 (learn.microsoft.com/purview/audit-mailboxes);
/// `ForwardingSmtpAddress` is a ProxyAddress the service hands back with its prefix
/// (`smtp:user@fabrikam.com`); `ForwardingAddress` names an internal recipient, kept here as
/// the Name Get-Mailbox shows for it so that writing back what was read finds it again; both
/// blank and `DeliverToMailboxAndForward` `$false` by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxProperties {
    pub recipient_type: RecipientTypeDetails,
    pub audit_enabled: bool,
    pub forwarding_smtp_address: Option<Box<str>>,
    pub forwarding_address: Option<Box<str>>,
    pub deliver_to_mailbox_and_forward: bool,
    /// `AuditBypassEnabled`, the account's (Set-MailboxAuditBypassAssociation; `$false` unless
    /// set): kept here for every user, mailbox or not, and not among Get-Mailbox's properties.
    pub audit_bypass: bool,
}

impl Default for MailboxProperties {
    fn default() -> Self {
        MailboxProperties {
            recipient_type: RecipientTypeDetails::UserMailbox,
            audit_enabled: true,
            forwarding_smtp_address: None,
            forwarding_address: None,
            deliver_to_mailbox_and_forward: false,
            audit_bypass: false,
        }
    }
}

/// The bits of a mailbox's id its seeded mix draws from: bits 100 to 127, all random in a seeded
/// id, and apart from the low 64 bits `ClientAccess::seeded` reads most of its mix from.
fn mix_bits(id: Uuid) -> u32 {
    (id.as_u128() >> 100) as u32
}

/// How a seeded mailbox forwards: about 2% to an external address, 1% to another mailbox.
#[derive(PartialEq)]
enum Forwarding {
    Not,
    External,
    Internal,
}

fn forwarding(bits: u32) -> Forwarding {
    match (bits / 25) % 100 {
        0 | 1 => Forwarding::External,
        2 => Forwarding::Internal,
        _ => Forwarding::Not,
    }
}

impl MailboxProperties {
    /// A tenant's mix, drawn from the mailbox's id so that the rest of the seeded tenant stays as
    /// it was: about 4% with auditing turned off, 2% forwarding outside, 1% forwarding to another
    /// mailbox (its name is filled in by [`seed_mailbox_mix`] once every user exists),
    /// half of the forwarding ones keeping a copy, and about 1% whose account bypasses auditing.
    pub fn seeded(id: Uuid) -> MailboxProperties {
        let bits = mix_bits(id);
        let external = forwarding(bits) == Forwarding::External;
        MailboxProperties {
            audit_enabled: !bits.is_multiple_of(25),
            forwarding_smtp_address: external.then(|| format!("smtp:archive.{bits:07x}@fabrikam.com").into()),
            deliver_to_mailbox_and_forward: forwarding(bits) != Forwarding::Not && (bits / 2500) % 2 == 1,
            audit_bypass: (bits / 5000).is_multiple_of(100),
            ..MailboxProperties::default()
        }
    }

    /// The settings under Get-Mailbox's names, null where blank.
    pub fn json(&self) -> Value {
        json!({
            "RecipientTypeDetails": self.recipient_type.as_str(),
            "AuditEnabled": self.audit_enabled,
            "ForwardingSmtpAddress": self.forwarding_smtp_address.as_deref(),
            "ForwardingAddress": self.forwarding_address.as_deref(),
            "DeliverToMailboxAndForward": self.deliver_to_mailbox_and_forward,
        })
    }
}

/// What of the seeded mix needs the whole tenant: the seeded mailboxes that forward to another
/// mailbox get their recipient, the next mailbox after them (round the end) by its Name (a
/// tenant with one mailbox has nowhere to forward to); and the first shared mailbox and every
/// third after it in the tenant's order allow sign-in, the finding of CIS Microsoft 365
/// benchmark 1.2.2 ("Ensure sign-in to shared mailboxes is blocked"; Microsoft's advice: "Block
/// sign-in for the shared mailbox account", learn.microsoft.com/microsoft-365/admin/email/
/// about-shared-mailboxes). Every tenant with a shared mailbox has one to find.
pub(crate) fn seed_mailbox_mix(mut users: Vec<User>) -> Vec<User> {
    let count = users.len();
    let mut shared = 0;
    for i in 0..count {
        if users[i].mailbox_properties.recipient_type == RecipientTypeDetails::SharedMailbox {
            users[i].account_enabled = shared % 3 == 0;
            shared += 1;
        }
        if !users[i].has_mailbox() || forwarding(mix_bits(users[i].id)) != Forwarding::Internal {
            continue;
        }
        let target = (1..count).map(|step| (i + step) % count).find(|&j| users[j].has_mailbox());
        let name: Option<Box<str>> = target.map(|j| users[j].display_name().into());
        let properties = &mut users[i].mailbox_properties;
        properties.deliver_to_mailbox_and_forward &= name.is_some();
        properties.forwarding_address = name;
    }
    users
}

impl User {
    /// Makes a seeded user a shared, room or equipment mailbox (`which` 0, 1 or 2, as its UPN's
    /// prefix says), with sign-in blocked (some shared ones allow it: [`seed_mailbox_mix`]).
    pub(crate) fn seed_resource_mailbox(&mut self, which: usize) {
        use RecipientTypeDetails::{EquipmentMailbox, RoomMailbox, SharedMailbox};
        self.mailbox_properties.recipient_type = [SharedMailbox, RoomMailbox, EquipmentMailbox][which % 3];
        self.account_enabled = false;
    }

    /// One mailbox as Get-Mailbox lists it.
    pub fn mailbox_json(&self) -> Value {
        let mut mailbox = mailbox_identity(self);
        if let (Value::Object(map), Value::Object(properties)) = (&mut mailbox, self.mailbox_properties.json()) {
            map.extend(properties);
        }
        mailbox
    }
}

/// `-RecipientTypeDetails`: one value, several separated by commas, or an array; each must be
/// one of [`RECIPIENT_TYPES`] (any letter case), as PowerShell converts it to the enumeration.
fn recipient_types(parameters: &Map<String, Value>) -> Result<Option<Vec<&'static str>>, Reply> {
    let Some(value) = parameter(parameters, "RecipientTypeDetails") else { return Ok(None) };
    let refusal = |text: &str, name: &str| {
        bad_request(&format!(
            "Cannot process argument transformation on parameter 'RecipientTypeDetails'. Cannot convert value \"{text}\" to type \"Microsoft.Exchange.Data.Directory.Recipient.RecipientTypeDetails[]\". Error: \"Unable to match the identifier name {name} to a valid enumerator name. Specify one of the following enumerator names and try again: {}\"",
            RECIPIENT_TYPES.join(", ")
        ))
    };
    let names: Vec<&str> = match value {
        Value::String(text) => text.split(',').map(str::trim).collect(),
        Value::Array(items) => items.iter().map(|v| v.as_str().unwrap_or_default()).collect(),
        other => return Err(refusal(&other.to_string(), &other.to_string())),
    };
    let text = value.as_str().map_or_else(|| value.to_string(), str::to_string);
    let canonical = |name: &str| RECIPIENT_TYPES.iter().copied().find(|t| t.eq_ignore_ascii_case(name));
    names.iter().map(|name| canonical(name).ok_or_else(|| refusal(&text, name))).collect::<Result<_, _>>().map(Some)
}

/// Which mailboxes a `Get-Mailbox` call lists (see [`super::mailboxes`]): every one, or only the
/// kinds `-RecipientTypeDetails` names (one identity of another kind is not found).
pub(super) fn kinds_wanted(call: &ExchangeCall) -> Result<impl Fn(&User) -> bool, Reply> {
    let known = ["Identity", "ResultSize", "RecipientTypeDetails"];
    if let Some(reply) = unknown_parameter(&call.cmdlet, &call.parameters, &known) {
        return Err(reply);
    }
    let wanted = recipient_types(&call.parameters)?;
    Ok(move |user: &User| {
        let kind = user.mailbox_properties.recipient_type.as_str();
        user.has_mailbox() && wanted.as_ref().is_none_or(|types| types.contains(&kind))
    })
}

/// What a Set-Mailbox call asks for (`None`: not given), each value checked as PowerShell's
/// parameter binding checks it. `ForwardingAddress` is still the text given: it is resolved
/// once the mailbox is found.
struct Changes<'a> {
    audit_enabled: Option<bool>,
    forwarding_smtp_address: Option<Option<Box<str>>>,
    forwarding_address: Option<Option<&'a str>>,
    deliver_to_mailbox_and_forward: Option<bool>,
}

fn boolean(parameters: &Map<String, Value>, name: &str) -> Result<Option<bool>, Reply> {
    match parameter(parameters, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(not_boolean(name, other)),
    }
}

/// `-ForwardingSmtpAddress`: `$null` clears it; an SMTP address, with or without its `smtp:`
/// prefix, is kept with it. Anything else is refused as PowerShell refuses a value it cannot
/// convert to a ProxyAddress.
fn smtp_address(parameters: &Map<String, Value>) -> Result<Option<Option<Box<str>>>, Reply> {
    let text = match parameter(parameters, "ForwardingSmtpAddress") {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(None)),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    let prefixed = text.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("smtp:"));
    let address = if prefixed { &text[5..] } else { text.as_str() };
    let valid = match address.split_once('@') {
        Some((local, domain)) => {
            let dotted = domain.split('.').count() > 1 && domain.split('.').all(|label| !label.is_empty());
            !local.is_empty() && dotted && !domain.contains('@')
        }
        None => false,
    };
    if !valid || address.contains(|c: char| c.is_whitespace() || c == ':') {
        return Err(bad_request(&format!(
            "Cannot process argument transformation on parameter 'ForwardingSmtpAddress'. Cannot convert value \"{text}\" to type \"Microsoft.Exchange.Data.ProxyAddress\". Error: \"The address '{address}' is invalid: \"{address}\" isn't a valid SMTP address. The domain name can't contain spaces and it has to have a prefix and a suffix, such as example.com.\""
        )));
    }
    Ok(Some(Some(format!("smtp:{address}").into())))
}

fn changes_given(parameters: &Map<String, Value>) -> Result<Changes<'_>, Reply> {
    let forwarding_address = match parameter(parameters, "ForwardingAddress") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(text)) => Some(Some(text.as_str())),
        Some(other) => {
            return Err(bad_request(&format!(
                "Cannot process argument transformation on parameter 'ForwardingAddress'. Cannot convert value \"{other}\" to type \"Microsoft.Exchange.Configuration.Tasks.RecipientIdParameter\"."
            )));
        }
    };
    Ok(Changes {
        audit_enabled: boolean(parameters, "AuditEnabled")?,
        forwarding_smtp_address: smtp_address(parameters)?,
        forwarding_address,
        deliver_to_mailbox_and_forward: boolean(parameters, "DeliverToMailboxAndForward")?,
    })
}

/// `-ForwardingAddress`: a mailbox of the tenant by its Name, UPN, an address or its id (a
/// RecipientIdParameter). A Name is the UPN's local part here, so the mailbox of that name in
/// the same domain as `beside` is looked up first; any other takes a scan.
fn forwarding_target(tenant: &Tenant, beside: usize, text: &str) -> Option<usize> {
    if let Some(found) = tenant.find_mailbox(text) {
        return Some(found);
    }
    let named = |i: &usize| tenant.users[*i].display_name().eq_ignore_ascii_case(text);
    let domain = tenant.users[beside].upn.rsplit_once('@').map_or("", |(_, domain)| domain);
    tenant
        .find_mailbox(&format!("{text}@{domain}"))
        .filter(named)
        .or_else(|| (0..tenant.users.len()).filter(|&i| tenant.users[i].has_mailbox()).find(named))
}

/// `Set-Mailbox -Identity X` with any of `AuditEnabled`, `ForwardingSmtpAddress`,
/// `ForwardingAddress` and `DeliverToMailboxAndForward`: what is given is set; a call that
/// changes nothing is answered with Exchange's warning, as Set-CASMailbox's is.
pub(super) fn set_mailbox(service: &Service, tenant: &mut Tenant, call: &ExchangeCall, context: &str) -> Reply {
    let known =
        ["Identity", "AuditEnabled", "ForwardingSmtpAddress", "ForwardingAddress", "DeliverToMailboxAndForward"];
    let (i, identity, changes) = match mailbox_to_set(tenant, call, &known, changes_given) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let forwarding_address: Option<Option<Box<str>>> = match changes.forwarding_address {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => match forwarding_target(tenant, i, text) {
            Some(target) => Some(Some(tenant.users[target].display_name().into())),
            None => return not_found(text),
        },
    };
    let user = &mut tenant.users[i];
    let before = user.mailbox_properties.clone();
    let properties = &mut user.mailbox_properties;
    properties.audit_enabled = changes.audit_enabled.unwrap_or(properties.audit_enabled);
    if let Some(address) = changes.forwarding_smtp_address {
        properties.forwarding_smtp_address = address;
    }
    if let Some(name) = forwarding_address {
        properties.forwarding_address = name;
    }
    properties.deliver_to_mailbox_and_forward =
        changes.deliver_to_mailbox_and_forward.unwrap_or(properties.deliver_to_mailbox_and_forward);
    let changed = before != user.mailbox_properties;
    mailbox_written(service, user, identity, changed, context)
}

#[cfg(test)]
mod tests;
