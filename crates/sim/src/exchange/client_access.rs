//! A mailbox's client access as Exchange keeps it and `Get-`/`Set-CASMailbox` serve it: the
//! protocol switches and `SmtpClientAuthenticationDisabled`, one identity or every mailbox a
//! page at a time ("Set-CASMailbox", learn.microsoft.com/powershell/module/exchange/
//! set-casmailbox; property names as the `Get-EXOCasMailbox` "Minimum" property set lists them,
//! learn.microsoft.com/powershell/exchange/cmdlet-property-sets).

use serde_json::{Map, Value, json};

use super::super::Service;
use super::super::reply::Reply;
use super::super::stats::bump;
use super::super::tenant::{Tenant, User};
use super::{ExchangeCall, bad_request, identity_of, not_found, ok, select, unknown_parameter};

/// The protocol switches of one mailbox. Each is `$true` by default ("This value is the
/// default"); `EwsEnabled` may also be blank (`$null`), leaving the mailbox to the
/// organisation's `EwsEnabled`, as the Exchange team's table of the EWS rules shows ("<null>" at
/// user level: techcommunity.microsoft.com/blog/exchange/4383083).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAccess {
    pub pop: bool,
    pub imap: bool,
    pub ews: Option<bool>,
    pub active_sync: bool,
    pub mapi: bool,
    pub owa: bool,
}

impl Default for ClientAccess {
    fn default() -> Self {
        ClientAccess { pop: true, imap: true, ews: None, active_sync: true, mapi: true, owa: true }
    }
}

/// How a parameter's value is typed: `System.Boolean` or `System.Nullable[bool]`.
#[derive(Clone, Copy, PartialEq)]
enum Typed {
    Boolean,
    Nullable,
}

/// The switches by their parameter names, as Set-CASMailbox takes them.
const SWITCHES: [(&str, Typed); 7] = [
    ("SmtpClientAuthenticationDisabled", Typed::Nullable),
    ("PopEnabled", Typed::Boolean),
    ("ImapEnabled", Typed::Boolean),
    ("EwsEnabled", Typed::Nullable),
    ("ActiveSyncEnabled", Typed::Boolean),
    ("MAPIEnabled", Typed::Boolean),
    ("OWAEnabled", Typed::Boolean),
];

impl ClientAccess {
    /// A tenant's mix, drawn from the mailbox's id so that the rest of the seeded tenant stays
    /// as it was: most mailboxes keep the defaults; some administrators have turned POP, IMAP
    /// or EWS off already, or set EWS on explicitly.
    pub fn seeded(id: uuid::Uuid) -> ClientAccess {
        let bits = (id.as_u128() >> 64) as u64;
        ClientAccess {
            pop: bits % 10 >= 3,
            imap: (bits / 10) % 10 >= 2,
            ews: [None, None, Some(true), Some(false)][((bits / 100) % 4) as usize],
            active_sync: !(bits / 400).is_multiple_of(20),
            ..ClientAccess::default()
        }
    }
}

impl User {
    /// One switch by its parameter name: `Some(Value::Bool)`, or `Value::Null` where blank.
    fn switch(&self, name: &str) -> Value {
        let access = &self.access;
        match name {
            "SmtpClientAuthenticationDisabled" => json!(self.smtp_auth_disabled),
            "PopEnabled" => json!(access.pop),
            "ImapEnabled" => json!(access.imap),
            "EwsEnabled" => json!(access.ews),
            "ActiveSyncEnabled" => json!(access.active_sync),
            "MAPIEnabled" => json!(access.mapi),
            _ => json!(access.owa),
        }
    }

    /// Sets one switch; says whether it changed.
    fn set_switch(&mut self, name: &str, value: Option<bool>) -> bool {
        let before = self.switch(name);
        let access = &mut self.access;
        let on = value.unwrap_or_default();
        match name {
            "SmtpClientAuthenticationDisabled" => self.smtp_auth_disabled = value,
            "PopEnabled" => access.pop = on,
            "ImapEnabled" => access.imap = on,
            "EwsEnabled" => access.ews = value,
            "ActiveSyncEnabled" => access.active_sync = on,
            "MAPIEnabled" => access.mapi = on,
            _ => access.owa = on,
        }
        before != self.switch(name)
    }

    pub fn cas_mailbox_json(&self) -> Value {
        let mut mailbox = json!({
            "Identity": self.display_name(),
            "Name": self.display_name(),
            "PrimarySmtpAddress": self.mail(),
            "ExternalDirectoryObjectId": self.id.to_string(),
        });
        for (name, _) in SWITCHES {
            mailbox[name] = self.switch(name);
        }
        mailbox
    }
}

/// The switches a Set-CASMailbox call gives, by their canonical names, each checked against its
/// type as PowerShell's parameter binding does.
fn switches_given(parameters: &Map<String, Value>) -> Result<Vec<(&'static str, Option<bool>)>, Reply> {
    let mut given = Vec::new();
    for (key, value) in parameters {
        let Some((name, typed)) = SWITCHES.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)) else { continue };
        let value = match (value, typed) {
            (Value::Bool(b), _) => Some(*b),
            (Value::Null, Typed::Nullable) => None,
            (other, Typed::Boolean) => {
                return Err(bad_request(&format!(
                    "Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{other}\" to type \"System.Boolean\". Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0."
                )));
            }
            (other, Typed::Nullable) => {
                return Err(bad_request(&format!(
                    "Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{other}\" to type \"System.Nullable[bool]\"."
                )));
            }
        };
        given.push((*name, value));
    }
    Ok(given)
}

/// `Get-CASMailbox`: one identity, or every mailbox a page at a time.
pub(super) fn get_cas_mailbox(
    service: &Service,
    tenant: &Tenant,
    call: &ExchangeCall,
    tenant_in_path: &str,
    context: &str,
) -> Reply {
    if let Some(reply) = unknown_parameter(&call.cmdlet, &call.parameters, &["Identity", "ResultSize"]) {
        return reply;
    }
    if let Some(identity) = identity_of(&call.parameters) {
        return match tenant.find_mailbox(identity) {
            Some(i) => ok(vec![select(tenant.users[i].cas_mailbox_json(), call.select.as_deref())], vec![], context),
            None => not_found(identity),
        };
    }
    let mut page = Vec::new();
    let mut next = None;
    for (index, user) in tenant.users.iter().enumerate().skip(call.skip) {
        if !user.has_mailbox() {
            continue;
        }
        if page.len() == call.page_size {
            next = Some(index);
            break;
        }
        page.push(select(user.cas_mailbox_json(), call.select.as_deref()));
    }
    let mut reply = ok(page, vec![], context);
    if let (Some(index), Some(body)) = (next, reply.body.as_mut()) {
        let mut link =
            format!("{}/adminapi/beta/{tenant_in_path}/InvokeCommand?$skiptoken={index}", service.base_url());
        if let Some(fields) = &call.select {
            link.push_str(&format!("&$select={}", fields.join(",")));
        }
        body["@odata.nextLink"] = link.into();
    }
    reply
}

/// `Set-CASMailbox -Identity X [-<switch> <value>]...`: what is given is set; a call that
/// changes nothing is answered with Exchange's warning.
pub(super) fn set_cas_mailbox(service: &Service, tenant: &mut Tenant, call: &ExchangeCall, context: &str) -> Reply {
    let known: Vec<&str> = std::iter::once("Identity").chain(SWITCHES.iter().map(|(name, _)| *name)).collect();
    if let Some(reply) = unknown_parameter(&call.cmdlet, &call.parameters, &known) {
        return reply;
    }
    let Some(identity) = identity_of(&call.parameters) else {
        return bad_request("Cannot bind argument to parameter 'Identity' because it is null.");
    };
    let given = match switches_given(&call.parameters) {
        Ok(given) => given,
        Err(reply) => return reply,
    };
    let Some(i) = tenant.find_mailbox(identity) else {
        return not_found(identity);
    };
    let mut warnings = Vec::new();
    service.count_write();
    let user = &mut tenant.users[i];
    user.writes += 1;
    let mut changed = false;
    for (name, value) in given {
        changed |= user.set_switch(name, value);
    }
    if !changed {
        bump(&service.stats.noop_writes);
        warnings
            .push(format!("The command completed successfully but no settings of '{identity}' have been modified."));
    }
    ok(vec![], warnings, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boolean_switch_refuses_null_and_a_nullable_one_takes_it() {
        let mut parameters = Map::new();
        parameters.insert("popenabled".into(), Value::Null);
        assert!(switches_given(&parameters).is_err(), "PopEnabled is a Boolean");
        let mut parameters = Map::new();
        parameters.insert("EWSEnabled".into(), Value::Null);
        assert_eq!(switches_given(&parameters).ok(), Some(vec![("EwsEnabled", None)]), "names match in any case");
    }

    #[test]
    fn the_seeded_mix_has_each_value_somewhere() {
        let mixes: Vec<ClientAccess> =
            (0..2000u128).map(|n| ClientAccess::seeded(uuid::Uuid::from_u128(n << 64))).collect();
        assert!(mixes.iter().any(|a| !a.pop) && mixes.iter().any(|a| a.pop));
        assert!([None, Some(true), Some(false)].iter().all(|ews| mixes.iter().any(|a| a.ews == *ews)));
    }
}
