//! `activesync`: whether a mailbox may be reached with Exchange ActiveSync (the mail apps of
//! phones), its `ActiveSyncEnabled` (Get-/Set-CASMailbox, through the Exchange admin API). A
//! Boolean, so there is no inherit: `$true` (the default) is enabled, `$false` disabled
//! ("Set-CASMailbox", learn.microsoft.com/powershell/module/exchange/set-casmailbox:
//! "ActiveSyncEnabled ... $true: Access to the mailbox using ActiveSync is enabled. This value is
//! the default").

use super::mailbox_property::protocol_switch;
use super::spec::Spec;

pub(crate) const SPEC: Spec = protocol_switch("activesync", "ActiveSyncEnabled");
