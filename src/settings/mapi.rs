//! `mapi`: whether a mailbox may be reached with MAPI (Outlook for Windows), its `MAPIEnabled`
//! (Get-/Set-CASMailbox, through the Exchange admin API). A Boolean, so there is no inherit:
//! `$true` (the default) is enabled, `$false` disabled ("Set-CASMailbox",
//! learn.microsoft.com/powershell/module/exchange/set-casmailbox: "MAPIEnabled ... $true: Access
//! to the mailbox using MAPI clients is enabled. This value is the default").

use super::mailbox_property::protocol_switch;
use super::spec::Spec;

pub(crate) const SPEC: Spec = protocol_switch("mapi", "MAPIEnabled");
