//! The remediable settings by name: a small `Copy` enum the journal and the reports keep (its serde
//! names are on disk), whose one `match` names each setting's [`Spec`]; its name, values, API and
//! what "compliant" means are read from there.

use std::fmt;

use super::Value;
use super::spec::{Scope, Spec};

/// The catalog: each setting's variant and the file that declares it, in the order they are listed
/// and worked on. A setting is added with its file and one line here; the enum, `ALL` and the
/// one `match` from a setting to its [`Spec`] are written from this list. A variant's serde name
/// (its name in kebab case) is what journals and reports on disk keep, and is its spec's name (a
/// test holds them equal).
macro_rules! catalog {
    ($($(#[$doc:meta])* $variant:ident => $file:ident,)*) => {
        /// One remediable property.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Setting {
            $($(#[$doc])* $variant,)*
        }

        impl Setting {
            pub const ALL: [Setting; [$(Setting::$variant),*].len()] = [$(Setting::$variant),*];

            /// Everything about the setting: the one place a setting is matched on.
            pub(crate) const fn spec(self) -> &'static Spec {
                match self {
                    $(Setting::$variant => &super::$file::SPEC,)*
                }
            }
        }
    };
}

catalog! {
    /// Tenant-wide: the security defaults policy.
    SecurityDefaults => security_defaults,
    /// Tenant-wide: the organisation's `SmtpClientAuthenticationDisabled` (Get-/Set-TransportConfig).
    OrganisationSmtpAuth => organisation_smtp_auth,
    /// Per mailbox: `SmtpClientAuthenticationDisabled` (Exchange).
    SmtpAuth => smtp_auth,
    /// Per user: legacy per-user MFA (Graph beta).
    PerUserMfa => per_user_mfa,
    /// Per user: the Exchange authentication policy assigned (`apply --basic-auth-policy`).
    AuthenticationPolicy => authentication_policy,
    /// Per user: membership of a group the blocking Conditional Access policies exclude
    /// (`apply --ca-exclusion-group`).
    CaExclusion => ca_exclusion,
    /// Per mailbox: `PopEnabled` (Exchange).
    Pop => pop,
    /// Per mailbox: `ImapEnabled` (Exchange).
    Imap => imap,
    /// Per mailbox: `EwsEnabled` (Exchange), which the organisation's must allow too.
    Ews => ews,
    /// Per mailbox: `ActiveSyncEnabled` (Exchange).
    Activesync => activesync,
    /// Per mailbox: `MAPIEnabled` (Exchange).
    Mapi => mapi,
    /// Per mailbox: `OWAEnabled` (Exchange).
    Owa => owa,
    /// Per mailbox: `AuditEnabled` (Exchange).
    Audit => audit,
    /// Per mailbox: `AuditBypassEnabled` (Exchange), the account's.
    AuditBypass => audit_bypass,
    /// Per mailbox: `ForwardingAddress`, `ForwardingSmtpAddress` and `DeliverToMailboxAndForward`
    /// (Exchange), as one value.
    Forwarding => forwarding,
    /// Per shared, room or equipment mailbox: its directory user's `accountEnabled` (Graph).
    SharedSignIn => shared_sign_in,
    /// Per target, read only: whether the device can send with SMTP AUTH once every layer is
    /// counted (see [`crate::diagnosis`]); the fix is done only when it can.
    SmtpAuthEffective => smtp_auth_effective,
}

impl Setting {
    /// The tenant-wide settings, in the order they are worked on: the organisation's switch
    /// first, unlike `ALL`, so the list is written out (a test checks it against the scopes).
    pub const TENANT: [Setting; 2] = [Setting::OrganisationSmtpAuth, Setting::SecurityDefaults];
    /// The settings a CSV row may give its own value for (a column named after it).
    pub const PER_ROW: [Setting; Setting::count(List::PerRow)] = Setting::chosen(List::PerRow);
    /// The settings that belong to each target, in the order they are worked on (the verdict of
    /// `smtp-auth-effective` comes after them all).
    pub const PER_TARGET: [Setting; Setting::count(List::PerTarget)] = Setting::chosen(List::PerTarget);

    /// How many settings of `ALL` are on `list`.
    const fn count(list: List) -> usize {
        let (mut at, mut found) = (0, 0);
        while at < Setting::ALL.len() {
            found += Setting::ALL[at].is_on(list) as usize;
            at += 1;
        }
        found
    }

    /// The settings of `ALL` on `list`, in `ALL`'s order; `N` is their [`Setting::count`].
    const fn chosen<const N: usize>(list: List) -> [Setting; N] {
        let mut chosen = [Setting::SmtpAuthEffective; N];
        let (mut at, mut found) = (0, 0);
        while at < Setting::ALL.len() && found < N {
            if Setting::ALL[at].is_on(list) {
                chosen[found] = Setting::ALL[at];
                found += 1;
            }
            at += 1;
        }
        chosen
    }

    const fn is_on(self, list: List) -> bool {
        let spec = self.spec();
        match list {
            List::PerRow => spec.per_row,
            List::PerTarget => spec.scope.is_per_target(),
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// A setting a user can name (`--set`, a profile): not the verdict.
    pub fn from_name(name: &str) -> Option<Setting> {
        Setting::ALL
            .into_iter()
            .filter(|s| !s.allowed().is_empty())
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The values `--set` and profiles may give; empty for the settings only a flag of their own
    /// sets (`--basic-auth-policy`, `--ca-exclusion-group`) and for the verdict.
    pub fn allowed(self) -> &'static [Value] {
        self.spec().values
    }

    /// The settings a user may name, for messages.
    pub fn settable() -> String {
        Setting::ALL.iter().filter(|s| !s.allowed().is_empty()).map(|s| s.name()).collect::<Vec<_>>().join(", ")
    }

    pub fn parse_value(self, text: &str) -> Result<Value, String> {
        let value = Value::from_name(text);
        match value.filter(|v| self.allowed().contains(v)) {
            Some(value) => Ok(value),
            None => Err(format!(
                "'{}' is not a value of {}: use one of {}",
                text.trim(),
                self.name(),
                self.allowed().iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// Whether `current` already satisfies `desired` when applying a desired state (the
    /// setting's own rule: "enforced" MFA satisfies "enabled"). A rollback asks for the exact
    /// value instead ([`Setting::restored`]).
    pub fn satisfies(self, current: Value, desired: Value) -> bool {
        (self.spec().satisfies)(current, desired)
    }

    /// Whether `current` is exactly the value a rollback puts back: the value it found, not one
    /// that "satisfies" it.
    pub fn restored(self, current: Value, found: Value) -> bool {
        current == found
    }

    pub fn is_tenant_wide(self) -> bool {
        self.spec().scope == Scope::Tenant
    }

    /// The API that reads and writes it.
    pub fn api(self) -> crate::cloud::Api {
        self.spec().api
    }
}

/// The lists of settings drawn from the specs.
#[derive(Clone, Copy)]
enum List {
    PerRow,
    PerTarget,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_per_setting() {
        assert_eq!(Setting::SmtpAuth.parse_value("Inherit"), Ok(Value::Inherit));
        assert!(Setting::SecurityDefaults.parse_value("inherit").unwrap_err().contains("enabled, disabled"));
        assert!(Setting::PerUserMfa.parse_value("maybe").is_err());
    }

    #[test]
    fn enforced_satisfies_enabled_but_not_the_reverse() {
        assert!(Setting::PerUserMfa.satisfies(Value::Enforced, Value::Enabled));
        assert!(!Setting::PerUserMfa.satisfies(Value::Enabled, Value::Enforced));
        assert!(!Setting::SmtpAuth.satisfies(Value::Inherit, Value::Enabled));
    }

    #[test]
    fn lists_agree_with_the_specs() {
        let tenant: Vec<_> = Setting::ALL.into_iter().filter(|s| s.spec().scope == Scope::Tenant).collect();
        assert_eq!(tenant.len(), Setting::TENANT.len());
        assert!(tenant.iter().all(|s| Setting::TENANT.contains(s)));
        assert_eq!(Setting::PER_ROW, [Setting::SmtpAuth, Setting::PerUserMfa]);
        assert_eq!(
            Setting::PER_TARGET,
            [
                Setting::SmtpAuth,
                Setting::PerUserMfa,
                Setting::AuthenticationPolicy,
                Setting::CaExclusion,
                Setting::Pop,
                Setting::Imap,
                Setting::Ews,
                Setting::Activesync,
                Setting::Mapi,
                Setting::Owa,
                Setting::Audit,
                Setting::AuditBypass,
                Setting::Forwarding,
                Setting::SharedSignIn
            ]
        );
    }

    #[test]
    fn each_spec_is_its_own_and_reads_as_its_scope_says() {
        use super::super::spec::Access;
        for setting in Setting::ALL {
            let spec = setting.spec();
            // The journal and the reports keep the serde name: the spec's must be the same.
            assert_eq!(serde_json::to_value(setting).unwrap(), serde_json::json!(spec.name));
            let fits = match spec.access {
                Access::Tenant { .. } => spec.scope == Scope::Tenant,
                Access::Target { .. } => spec.scope.is_per_target(),
                Access::Mailbox(property) => {
                    // Every value it takes is one the service's property can hold.
                    spec.scope == Scope::Mailbox && spec.values.iter().all(|v| property.encode(*v).is_some())
                }
                Access::Neither => spec.scope == Scope::Verdict,
            };
            assert!(fits, "{setting}'s access does not fit its scope");
        }
    }
}
