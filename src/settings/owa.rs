//! `owa`: whether a mailbox may be reached with Outlook on the web and the new Outlook for Windows, its `OWAEnabled` (Get-/Set-CASMailbox,
//! through the Exchange admin API). A Boolean, so there is no inherit: `$true` (the default) is
//! enabled, `$false` disabled ("Set-CASMailbox", learn.microsoft.com/powershell/module/exchange/
//! set-casmailbox: "OWAEnabled ... $true: Access to the mailbox using Outlook on the web and the new Outlook for Windows is enabled. This value is the default").

use super::Value;
use super::cas_mailbox::{CasProperty, Kind};
use super::spec::{Access, RECIPIENT_ADMINISTRATOR, Scope, Spec};
use crate::cloud::Api;

pub(crate) const SPEC: Spec = Spec {
    name: "owa",
    scope: Scope::Mailbox,
    values: &[Value::Enabled, Value::Disabled],
    api: Api::Exchange,
    permission: "Exchange.ManageAsApp and Exchange Recipient Administrator",
    document: "https://learn.microsoft.com/powershell/module/exchange/set-casmailbox",
    access: Access::Cas(CasProperty { name: "OWAEnabled", kind: Kind::Allows }),
    advice: RECIPIENT_ADMINISTRATOR,
    ..Spec::PLAIN
};
