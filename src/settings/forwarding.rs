//! `forwarding`: where a mailbox forwards its mail, its `ForwardingAddress`,
//! `ForwardingSmtpAddress` and `DeliverToMailboxAndForward` (Get-/Set-Mailbox, through the Exchange
//! admin API). The one value a run asks for is `none`: both addresses blank (`$null`, "which means
//! no forwarding … is configured") and `DeliverToMailboxAndForward` at its default `$false`
//! ("Set-Mailbox", learn.microsoft.com/powershell/module/exchange/set-mailbox). Whatever a mailbox
//! forwards to is kept whole in the journal, so a rollback sets all three back exactly as found.

use super::Value;
use super::mailbox_property::{Cmdlet, Kind, MailboxProperty};
use super::spec::{Access, RECIPIENT_ADMINISTRATOR, Scope, Spec};
use crate::cloud::Api;

pub(crate) const SPEC: Spec = Spec {
    name: "forwarding",
    scope: Scope::Mailbox,
    values: &[Value::Nothing],
    api: Api::Exchange,
    permission: "Exchange.ManageAsApp and Exchange Recipient Administrator",
    document: "https://learn.microsoft.com/powershell/module/exchange/set-mailbox",
    access: Access::Mailbox(MailboxProperty {
        cmdlet: Cmdlet::Mailbox,
        name: "ForwardingSmtpAddress",
        kind: Kind::Forwarding,
    }),
    advice: RECIPIENT_ADMINISTRATOR,
    ..Spec::PLAIN
};
