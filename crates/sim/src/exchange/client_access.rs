//! A mailbox's client access as Exchange keeps it and `Get-`/`Set-CASMailbox` serve it: the
//! protocol switches and `SmtpClientAuthenticationDisabled`, one identity or every mailbox a
//! page at a time (the listing is `exchange.rs`'s, shared with Get-Mailbox) ("Set-CASMailbox",
//! learn.microsoft.com/powershell/module/exchange/set-casmailbox; property names as the
//! `Get-EXOCasMailbox` "Minimum" property set lists them,
//! learn.microsoft.com/powershell/exchange/cmdlet-property-sets).

use serde_json::{Map, Value, json};

use super::super::Service;
use super::super::reply::Reply;
use super::super::tenant::{Tenant, User};
use super::{ExchangeCall, bad_request, mailbox_identity, mailbox_to_set, mailbox_written, not_boolean};

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
        let mut mailbox = mailbox_identity(self);
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
            (other, Typed::Boolean) => return Err(not_boolean(name, other)),
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

/// `Set-CASMailbox -Identity X [-<switch> <value>]...`: what is given is set; a call that
/// changes nothing is answered with Exchange's warning.
pub(super) fn set_cas_mailbox(service: &Service, tenant: &mut Tenant, call: &ExchangeCall, context: &str) -> Reply {
    let known: Vec<&str> = std::iter::once("Identity").chain(SWITCHES.iter().map(|(name, _)| *name)).collect();
    let (i, identity, given) = match mailbox_to_set(tenant, call, &known, switches_given) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let user = &mut tenant.users[i];
    let mut changed = false;
    for (name, value) in given {
        changed |= user.set_switch(name, value);
    }
    mailbox_written(service, user, identity, changed, context)
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
