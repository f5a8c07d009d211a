//! `Get-`/`Set-MailboxAuditBypassAssociation`: whether what an account does in mailboxes escapes
//! the mailbox audit log (`AuditBypassEnabled`), as Exchange Online serves it.
//!
//! - The listing names every account, bypassed or not, and mostly system objects: Microsoft
//!   corrected the cmdlet's page to say so (MicrosoftDocs/office-docs-powershell issue 6108). Here
//!   the organisation's system mailboxes come first, then every directory user, mailbox or not:
//!   rows that name no mailbox of the run's, as a real tenant's do.
//! - An entry names its object by `Name` (also its `Identity` and `ObjectId`), `Guid` and
//!   `ExchangeObjectId`, with `DistinguishedName` and `AuditBypassEnabled`, and carries no
//!   `ExternalDirectoryObjectId` (a captured record, rknightion/graph2otel; CIPP's standard selects
//!   `GUID, AuditBypassEnabled, Name` and writes by Guid). Names are not unique; the Guid is.
//! - `-ResultSize` is 1,000 unless given, as Get-User's, with the same warning when it cuts the
//!   listing short ("Get-MailboxAuditBypassAssociation", learn.microsoft.com/powershell/module/
//!   exchange/get-mailboxauditbypassassociation: `[-ResultSize <Unlimited>]`).
//! - Both cmdlets belong to Exchange's Audit Logs role (reading to View-Only Configuration too:
//!   Microsoft365DSC's EXOMailboxAuditBypassAssociation), which Recipient Administrator lacks. An
//!   app without it (`deny_permissions` naming "Audit Logs") is not given the cmdlets at all, and is
//!   answered as for a cmdlet Exchange does not know: role-based access control leaves out of a
//!   session the cmdlets its roles do not hold ("Find the permissions required to run any Exchange
//!   cmdlet", learn.microsoft.com/powershell/exchange/find-exchange-cmdlet-permissions).
//! - `-Identity` takes a user principal name, an address, the Guid or a system object's name
//!   ("Manage mailbox auditing", learn.microsoft.com/purview/audit-mailboxes: "the name, email
//!   address, alias, or user principal name"). `Set-` takes `-AuditBypassEnabled`, a Boolean it
//!   cannot do without; the system objects are listed but not set here.

use serde_json::{Value, json};
use uuid::Uuid;

use super::users::{MORE_RESULTS, result_size};
use super::{
    ExchangeCall, bad_request, exchange_guid, identity_of, mailbox_written, next_link, not_boolean, not_found, ok,
    parameter, select, unknown_parameter,
};
use crate::Service;
use crate::reply::Reply;
use crate::tenant::{Tenant, User};

/// The organisation's own objects every tenant lists first, by their well-known names.
const SYSTEM: [&str; 6] = [
    "DiscoverySearchMailbox{D919BA05-46A6-415f-80AD-7E09334BB852}",
    "Migration.8f3e7716-2011-43e4-96b1-aba62d229136",
    "FederatedEmail.4c1f4d8b-8179-4148-93bf-00a95fa1e042",
    "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}",
    "SystemMailbox{e0dc1c29-89c3-4034-b678-e6c29d823ed9}",
    "SystemMailbox{D0E409A0-AF9B-4720-92FE-AAC869B0D201}",
];

/// A system object's Guid, fixed by its name.
fn system_guid(name: &str) -> Uuid {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    Uuid::from_u128((u128::from(hash) << 64) | u128::from(hash.rotate_left(17)))
}

/// One entry as the cmdlet lists it.
fn entry(name: &str, guid: Uuid, bypass: bool) -> Value {
    json!({
        "Identity": name,
        "Name": name,
        "ObjectId": name,
        "Guid": guid.to_string(),
        "ExchangeObjectId": guid.to_string(),
        "DistinguishedName": format!("CN={name},OU=contoso.onmicrosoft.com,OU=Microsoft Exchange Hosted Organizations,DC=EURPR01A001,DC=PROD,DC=OUTLOOK,DC=COM"),
        "AuditBypassEnabled": bypass,
        "IsValid": true,
        "ObjectClass": ["top", "person", "organizationalPerson", "user"],
    })
}

fn user_entry(user: &User) -> Value {
    entry(user.display_name(), exchange_guid(user.id), user.mailbox_properties.audit_bypass)
}

/// The row at `at` of the listing: the system objects, then the users.
fn row(tenant: &Tenant, at: usize) -> Value {
    match SYSTEM.get(at) {
        Some(name) => entry(name, system_guid(name), false),
        None => tenant.users.get(at - SYSTEM.len()).map(user_entry).unwrap_or_default(),
    }
}

/// A user `-Identity` names: UPN, an address, the directory id, or the Exchange Guid.
fn find(tenant: &Tenant, identity: &str) -> Option<usize> {
    tenant.find_recipient(identity).or_else(|| {
        let guid = Uuid::parse_str(identity).ok()?;
        tenant.find_user(&exchange_guid(guid).to_string())
    })
}

/// The answer to an app whose roles do not hold the cmdlets (see the module).
fn not_granted(service: &Service, cmdlet: &str) -> Option<Reply> {
    service.denied("Audit Logs").then(|| {
        bad_request(&format!(
            "The term '{cmdlet}' is not recognized as a name of a cmdlet, function, script file, or executable program."
        ))
    })
}

pub(super) fn get(service: &Service, tenant: &Tenant, call: &ExchangeCall, path_tenant: &str, context: &str) -> Reply {
    if let Some(reply) = not_granted(service, &call.cmdlet) {
        return reply;
    }
    if let Some(reply) = unknown_parameter(&call.cmdlet, &call.parameters, &["Identity", "ResultSize"]) {
        return reply;
    }
    if let Some(identity) = identity_of(&call.parameters) {
        let system = SYSTEM.iter().position(|name| name.eq_ignore_ascii_case(identity));
        let found = system.or_else(|| find(tenant, identity).map(|user| SYSTEM.len() + user));
        return match found {
            Some(at) => ok(vec![select(row(tenant, at), call.select.as_deref())], vec![], context),
            None => not_found(identity),
        };
    }
    let limit = match result_size(&call.parameters) {
        Ok(limit) => limit.unwrap_or(usize::MAX),
        Err(reply) => return reply,
    };
    let total = SYSTEM.len() + tenant.users.len();
    let end = total.min(limit).min(call.skip.saturating_add(call.page_size));
    let page = (call.skip.min(end)..end).map(|at| select(row(tenant, at), call.select.as_deref())).collect();
    let warnings = if limit < total && end == limit { vec![MORE_RESULTS.to_string()] } else { vec![] };
    let mut reply = ok(page, warnings, context);
    if let (true, Some(body)) = (end < total.min(limit), reply.body.as_mut()) {
        body["@odata.nextLink"] = next_link(service, call, path_tenant, end).into();
    }
    reply
}

/// `Set-MailboxAuditBypassAssociation -Identity X -AuditBypassEnabled <Boolean>`.
pub(super) fn set(service: &Service, tenant: &mut Tenant, call: &ExchangeCall, context: &str) -> Reply {
    if let Some(reply) = not_granted(service, &call.cmdlet) {
        return reply;
    }
    if let Some(reply) = unknown_parameter(&call.cmdlet, &call.parameters, &["Identity", "AuditBypassEnabled"]) {
        return reply;
    }
    let Some(identity) = identity_of(&call.parameters) else {
        return bad_request("Cannot bind argument to parameter 'Identity' because it is null.");
    };
    let bypass = match parameter(&call.parameters, "AuditBypassEnabled") {
        Some(Value::Bool(bypass)) => *bypass,
        Some(other) => return not_boolean("AuditBypassEnabled", other),
        None => {
            return bad_request(
                "Cannot process command because of one or more missing mandatory parameters: AuditBypassEnabled.",
            );
        }
    };
    let Some(user) = find(tenant, identity).and_then(|index| tenant.users.get_mut(index)) else {
        return not_found(identity);
    };
    let changed = user.mailbox_properties.audit_bypass != bypass;
    user.mailbox_properties.audit_bypass = bypass;
    mailbox_written(service, user, identity, changed, context)
}

#[cfg(test)]
mod tests;
