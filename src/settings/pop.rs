//! `pop`: whether a mailbox may be read with POP3, its `PopEnabled` (Get-/Set-CASMailbox, through
//! the Exchange admin API). `$true` (the default) is enabled, `$false` disabled; the parameter is a
//! Boolean, so there is no inherit ("Set-CASMailbox", learn.microsoft.com/powershell/module/
//! exchange/set-casmailbox: "PopEnabled ... Valid values are: $true ... $false").

use super::mailbox_property::protocol_switch;
use super::spec::Spec;

pub(crate) const SPEC: Spec = protocol_switch("pop", "PopEnabled");
