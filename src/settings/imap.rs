//! `imap`: whether a mailbox may be reached with IMAP4, its `ImapEnabled` (Get-/Set-CASMailbox,
//! through the Exchange admin API). A Boolean, so there is no inherit: `$true` (the default) is
//! enabled, `$false` disabled ("Set-CASMailbox", learn.microsoft.com/powershell/module/exchange/
//! set-casmailbox: "ImapEnabled ... $true: Access to the mailbox using IMAP4 is enabled. This value is the default").

use super::Value;
use super::cas_mailbox::{CasProperty, Kind};
use super::spec::{Access, RECIPIENT_ADMINISTRATOR, Scope, Spec};
use crate::cloud::Api;

pub(crate) const SPEC: Spec = Spec {
    name: "imap",
    scope: Scope::Mailbox,
    values: &[Value::Enabled, Value::Disabled],
    api: Api::Exchange,
    permission: "Exchange.ManageAsApp and Exchange Recipient Administrator",
    document: "https://learn.microsoft.com/powershell/module/exchange/set-casmailbox",
    access: Access::Cas(CasProperty { name: "ImapEnabled", kind: Kind::Allows }),
    advice: RECIPIENT_ADMINISTRATOR,
    ..Spec::PLAIN
};
