//! `audit`: whether Exchange keeps a mailbox's audit log, its `AuditEnabled` (Get-/Set-Mailbox,
//! through the Exchange admin API). A Boolean: `$true` enabled, `$false` disabled. Exchange Online
//! has turned mailbox auditing on by default for every organisation since January 2019, but a
//! mailbox may still be set off one by one ("Set-Mailbox", learn.microsoft.com/powershell/module/
//! exchange/set-mailbox, AuditEnabled; learn.microsoft.com/purview/audit-mailboxes). CIS Microsoft
//! 365 Foundations 6.1.2 ("Ensure mailbox audit actions are configured") expects it on for every
//! user mailbox; its lists of audited actions are not held here.

use super::mailbox_property::{Cmdlet, Kind, MailboxProperty, switch};
use super::spec::Spec;

pub(crate) const SPEC: Spec = switch(
    "audit",
    MailboxProperty { cmdlet: Cmdlet::Mailbox, name: "AuditEnabled", kind: Kind::Allows },
    "https://learn.microsoft.com/powershell/module/exchange/set-mailbox",
);
