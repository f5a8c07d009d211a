//! `ews`: whether a mailbox may be reached with Exchange Web Services, its `EwsEnabled`
//! (Get-/Set-CASMailbox, through the Exchange admin API). Unlike the other protocol switches it
//! may be blank: `$null` leaves the mailbox to the organisation's `EwsEnabled`
//! (Set-OrganizationConfig), so it takes `inherit` besides `enabled` and `disabled`.
//!
//! Since April 2025 EWS is allowed only where neither switch is `$false` ("EWS will only be
//! allowed if both the organization-level and user-level EWSEnabled flags are true", with blank
//! counting as allowing: Exchange Team Blog, "The way to control EWS usage in Exchange Online is
//! changing", 20 February 2025, techcommunity.microsoft.com/blog/exchange/4383083). Microsoft
//! retires EWS in Exchange Online: tenants left blank are turned off from 1 October 2026, and
//! EWS ends for every tenant on 1 April 2027 (learn.microsoft.com/exchange/clients-and-mobile-in-
//! exchange-online/deprecation-of-ews-exchange-online). A run that turns it on says both.

use super::Value;
use super::mailbox_property::{Cmdlet, Kind, MailboxProperty};
use super::spec::{Access, Notice, RECIPIENT_ADMINISTRATOR, Scope, Spec};
use crate::cloud::Api;

pub(crate) const SPEC: Spec = Spec {
    name: "ews",
    scope: Scope::Mailbox,
    values: &[Value::Enabled, Value::Disabled, Value::Inherit],
    api: Api::Exchange,
    permission: "Exchange.ManageAsApp and Exchange Recipient Administrator",
    document: "https://learn.microsoft.com/powershell/module/exchange/set-casmailbox",
    access: Access::Mailbox(MailboxProperty {
        cmdlet: Cmdlet::CasMailbox,
        name: "EwsEnabled",
        kind: Kind::AllowsOrInherits,
    }),
    notice: Some(Notice {
        when: Value::Enabled,
        text: "ews=enabled allows EWS only where the organisation's EwsEnabled (Set-OrganizationConfig) is not $false, and Exchange Online ends EWS for every tenant on 1 April 2027: move the applications that use it to Microsoft Graph",
    }),
    advice: RECIPIENT_ADMINISTRATOR,
    ..Spec::PLAIN
};
