//! `owa`: whether a mailbox may be reached with Outlook on the web and the new Outlook for Windows,
//! its `OWAEnabled` (Get-/Set-CASMailbox, through the Exchange admin API). A Boolean, so there is
//! no inherit: `$true` (the default) is enabled, `$false` disabled ("Set-CASMailbox",
//! learn.microsoft.com/powershell/module/exchange/set-casmailbox: "OWAEnabled ... $true: Access to
//! the mailbox using Outlook on the web and the new Outlook for Windows is enabled. This value is
//! the default").

use super::mailbox_property::protocol_switch;
use super::spec::Spec;

pub(crate) const SPEC: Spec = protocol_switch("owa", "OWAEnabled");
