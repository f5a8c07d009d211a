//! `pop`: whether a mailbox may be read with POP3, its `PopEnabled` (Get-/Set-CASMailbox, through
//! the Exchange admin API). `$true` (the default) is enabled, `$false` disabled; the parameter is
//! a Boolean, so there is no inherit ("Set-CASMailbox", learn.microsoft.com/powershell/module/
//! exchange/set-casmailbox: "PopEnabled ... Valid values are: $true ... $false").

use super::Value;
use super::cas_mailbox::{CasProperty, Kind};
use super::spec::{Access, RECIPIENT_ADMINISTRATOR, Scope, Spec};
use crate::cloud::Api;

pub(crate) const SPEC: Spec = Spec {
    name: "pop",
    scope: Scope::Mailbox,
    values: &[Value::Enabled, Value::Disabled],
    api: Api::Exchange,
    permission: "Exchange.ManageAsApp and Exchange Recipient Administrator",
    document: "https://learn.microsoft.com/powershell/module/exchange/set-casmailbox",
    access: Access::Cas(CasProperty { name: "PopEnabled", kind: Kind::Allows }),
    advice: RECIPIENT_ADMINISTRATOR,
    ..Spec::PLAIN
};
