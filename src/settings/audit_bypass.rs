//! `audit-bypass`: whether what an account does in any mailbox escapes the mailbox audit log, its
//! `AuditBypassEnabled` (Get-/Set-MailboxAuditBypassAssociation, through the Exchange admin API).
//! A Boolean: `$true` bypassed (enabled), `$false` audited (disabled); the `-Identity` takes a
//! user principal name ("Manage mailbox auditing", learn.microsoft.com/purview/audit-mailboxes:
//! "replace <MailboxIdentity> with the name, email address, alias, or user principal name").
//! CIS Microsoft 365 Foundations 6.1.3 (v5.0.0 to v7.0.0) "Ensure 'AuditBypassEnabled' is not
//! enabled on mailboxes" expects it off for every account.
//!
//! The listing is not Get-Mailbox's: `Get-MailboxAuditBypassAssociation -ResultSize Unlimited`
//! names every account, bypassed or not and mostly system objects (Microsoft's correction of the
//! cmdlet's page, MicrosoftDocs/office-docs-powershell issue 6108), by `Guid` and never by
//! directory id, so the bulk listing joins it to Get-Mailbox's `Guid` (as CIPP's standard does,
//! `-select 'GUID, AuditBypassEnabled, Name'`). An account without a mailbox that a run names (a
//! service account) is read on its own: the bypass is the account's, not its mailbox's.

use super::Value;
use super::mailbox_property::{Cmdlet, Kind, MailboxProperty, switch};
use super::spec::{Advice, Spec};

pub(crate) const SPEC: Spec = Spec {
    permission: "Exchange.ManageAsApp and an Exchange role holding Audit Logs (Compliance Administrator or Exchange Administrator)",
    // Bypassing the audit hides what an account does in every mailbox it opens.
    weakening: &[Value::Enabled],
    // Microsoft365DSC's EXOMailboxAuditBypassAssociation: reading needs View-Only Configuration,
    // writing the Audit Logs role, which Recipient Administrator lacks.
    advice: Advice {
        read_only: "grant the app Exchange.ManageAsApp (Office 365 Exchange Online) and assign it an Exchange role that reads configuration, such as Global Reader or Compliance Administrator",
        changing: "grant the app Exchange.ManageAsApp (Office 365 Exchange Online) and assign it the Compliance Administrator or Exchange Administrator role: Set-MailboxAuditBypassAssociation needs Exchange's Audit Logs role, which Exchange Recipient Administrator lacks",
    },
    ..switch(
        "audit-bypass",
        MailboxProperty { cmdlet: Cmdlet::AuditBypass, name: "AuditBypassEnabled", kind: Kind::Allows },
        "https://learn.microsoft.com/powershell/module/exchange/set-mailboxauditbypassassociation",
    )
};
