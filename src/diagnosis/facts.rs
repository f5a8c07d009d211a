//! What the tenant and each mailbox say, as read: each fact is [`Known`], or [`Unreadable`] with
//! the permission that would make it readable.

use std::collections::{HashMap, HashSet};

use super::conditional_access::{Membership, Policy};
use crate::settings::Value;

/// A fact that could not be read: what, why, and the permission or role that would let the app
/// read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unreadable {
    pub what: &'static str,
    pub permission: &'static str,
    pub error: String,
}

impl Unreadable {
    pub(crate) fn describe(&self) -> String {
        format!("{} could not be read ({}); reading it needs {}", self.what, self.error, self.permission)
    }
}

pub(super) type Known<T> = Result<T, Unreadable>;

/// An Exchange authentication policy, as `Get-AuthenticationPolicy` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AuthPolicy {
    pub name: String,
    pub distinguished_name: String,
    pub guid: String,
    pub allow_basic_smtp: bool,
}

impl AuthPolicy {
    /// Whether `reference` (a name, DN or GUID, as Exchange hands them out) names this policy.
    pub(crate) fn is_named(&self, reference: &str) -> bool {
        let reference = reference.trim();
        [&self.name, &self.distinguished_name, &self.guid]
            .iter()
            .any(|own| !own.is_empty() && own.eq_ignore_ascii_case(reference))
    }
}

/// The tenant's Basic authentication for SMTP AUTH: Microsoft turns it off by default for
/// existing tenants at the end of December 2026, and administrators can turn it back on for a
/// time (Exchange Team blog, "Updated Exchange Online SMTP AUTH Basic Authentication Deprecation
/// Timeline", January 2026). No cmdlet or Graph property documents it, so an app cannot read it:
/// it is known from the date, or from what the administrator tells the tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BasicSmtp {
    On(String),
    Off(String),
    Unknown(String),
}

/// Group members (transitive) and role holders, as far as the Conditional Access policies name
/// them; ids lower case.
#[derive(Clone, Debug, Default)]
pub(crate) struct Memberships {
    pub groups: HashMap<String, HashSet<String>>,
    pub roles: HashMap<String, HashSet<String>>,
    /// Each named group's display name, for the reports.
    pub group_names: HashMap<String, String>,
}

impl Memberships {
    pub(crate) fn group_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.group_names.get(&id.to_lowercase()).map_or(id, String::as_str)
    }
}

impl Membership for Memberships {
    fn in_group(&self, user_id: &str, group_id: &str) -> bool {
        self.groups.get(&group_id.to_lowercase()).is_some_and(|members| members.contains(&user_id.to_lowercase()))
    }

    fn in_role(&self, user_id: &str, role_template_id: &str) -> bool {
        self.roles
            .get(&role_template_id.to_lowercase())
            .is_some_and(|holders| holders.contains(&user_id.to_lowercase()))
    }
}

/// What the tenant says, read once.
#[derive(Clone, Debug)]
pub(crate) struct TenantFacts {
    /// `Get-TransportConfig`'s `SmtpClientAuthenticationDisabled`.
    pub organisation_smtp_disabled: Known<bool>,
    /// `Get-OrganizationConfig`'s `DefaultAuthenticationPolicy` (a name, DN or GUID), if any.
    pub default_policy: Known<Option<String>>,
    /// `Get-AuthenticationPolicy`.
    pub policies: Known<Vec<AuthPolicy>>,
    /// Each user (by directory object id, lower case) with an authentication policy of their own:
    /// the policy's reference as `Get-User` gives it.
    pub assignments: Known<HashMap<String, String>>,
    pub security_defaults: Known<bool>,
    pub conditional_access: Known<Vec<Policy>>,
    pub memberships: Known<Memberships>,
    pub basic_smtp: BasicSmtp,
}

/// What one mailbox says.
#[derive(Clone, Debug)]
pub(crate) struct MailboxFacts {
    pub user_id: String,
    /// The mailbox's `SmtpClientAuthenticationDisabled` as a value; `None` when Exchange holds no
    /// mailbox for the user.
    pub mailbox: Known<Option<Value>>,
    pub account_enabled: Known<bool>,
    pub per_user_mfa: Known<Value>,
    /// The authentication policy this run gave the user (the empty name for none), in place of
    /// what the tenant's listing said.
    pub own_policy: Option<String>,
    /// Groups this run added the user to, beside those the tenant's listings hold.
    pub groups_joined: Vec<String>,
}

/// A user's memberships with the groups a run added them to.
pub(super) struct Joined<'a> {
    pub base: &'a Memberships,
    pub user_id: &'a str,
    pub groups: &'a [String],
}

impl Membership for Joined<'_> {
    fn in_group(&self, user_id: &str, group_id: &str) -> bool {
        (user_id.eq_ignore_ascii_case(self.user_id) && self.groups.iter().any(|g| g.eq_ignore_ascii_case(group_id)))
            || self.base.in_group(user_id, group_id)
    }

    fn in_role(&self, user_id: &str, role_template_id: &str) -> bool {
        self.base.in_role(user_id, role_template_id)
    }
}
