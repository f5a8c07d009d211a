//! `smtp-auth`: a mailbox's `SmtpClientAuthenticationDisabled`, through the Exchange admin API.
//! `null` follows the organisation's setting (inherit), `false` is on (enabled), `true` is off
//! ("Set-CASMailbox", learn.microsoft.com/powershell/module/exchange/set-casmailbox:
//! "SmtpClientAuthenticationDisabled ... $null (blank): The setting isn't configured. The mailbox
//! uses the setting for authenticated SMTP from the Set-TransportConfig cmdlet").

use super::mailbox_property::{self, Cmdlet, Kind, MailboxProperty};
use super::spec::{Access, RECIPIENT_ADMINISTRATOR, Scope, Spec};
use super::{Reading, Value};
use crate::cloud::{Api, CallError, CloudClient};

// The organisation's switch is a setting of its own; what reads a mailbox's often wants it too.
pub(crate) use super::organisation_smtp_auth::organisation_disabled;

pub(crate) const PROPERTY: MailboxProperty = MailboxProperty {
    cmdlet: Cmdlet::CasMailbox,
    name: "SmtpClientAuthenticationDisabled",
    kind: Kind::ForbidsOrInherits,
};

pub(crate) const SPEC: Spec = Spec {
    name: "smtp-auth",
    scope: Scope::Mailbox,
    values: &[Value::Enabled, Value::Disabled, Value::Inherit],
    per_row: true,
    api: Api::Exchange,
    permission: "Exchange.ManageAsApp and Exchange Recipient Administrator",
    document: "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission",
    access: Access::Mailbox(PROPERTY),
    advice: RECIPIENT_ADMINISTRATOR,
    ..Spec::PLAIN
};

/// One mailbox's SMTP AUTH, asked of Exchange.
pub(crate) async fn read(client: &CloudClient, upn: &str) -> Result<Reading, CallError> {
    mailbox_property::read(client, upn, PROPERTY).await
}

/// A listed mailbox's `SmtpClientAuthenticationDisabled` as a value: `null` inherits, `false` is on.
pub(crate) fn value_of(mailbox: &serde_json::Value) -> Option<Value> {
    PROPERTY.decode(mailbox)
}
