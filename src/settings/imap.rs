//! `imap`: whether a mailbox may be reached with IMAP4, its `ImapEnabled` (Get-/Set-CASMailbox,
//! through the Exchange admin API). A Boolean, so there is no inherit: `$true` (the default) is
//! enabled, `$false` disabled ("Set-CASMailbox", learn.microsoft.com/powershell/module/exchange/
//! set-casmailbox: "ImapEnabled ... $true: Access to the mailbox using IMAP4 is enabled. This value
//! is the default").

use super::mailbox_property::protocol_switch;
use super::spec::Spec;

pub(crate) const SPEC: Spec = protocol_switch("imap", "ImapEnabled");
