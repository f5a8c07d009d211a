//! The remediable settings: their names, the values each takes, and what "compliant" means for
//! each.

use std::fmt;

use super::Value;

/// One remediable property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Setting {
    /// Tenant-wide: the security defaults policy.
    SecurityDefaults,
    /// Tenant-wide: the organisation's `SmtpClientAuthenticationDisabled` (Get-/Set-TransportConfig).
    OrganisationSmtpAuth,
    /// Per mailbox: `SmtpClientAuthenticationDisabled` (Exchange).
    SmtpAuth,
    /// Per user: legacy per-user MFA (Graph beta).
    PerUserMfa,
    /// Per user: the Exchange authentication policy assigned (`apply --basic-auth-policy`).
    AuthenticationPolicy,
    /// Per user: membership of a group the blocking Conditional Access policies exclude
    /// (`apply --ca-exclusion-group`).
    CaExclusion,
    /// Per target, read only: whether the device can send with SMTP AUTH once every layer is
    /// counted (see [`crate::diagnosis`]); the fix is done only when it can.
    SmtpAuthEffective,
}

impl Setting {
    pub const ALL: [Setting; 7] = [
        Setting::SecurityDefaults,
        Setting::OrganisationSmtpAuth,
        Setting::SmtpAuth,
        Setting::PerUserMfa,
        Setting::AuthenticationPolicy,
        Setting::CaExclusion,
        Setting::SmtpAuthEffective,
    ];
    /// The tenant-wide settings, in the order they are worked on.
    pub const TENANT: [Setting; 2] = [Setting::OrganisationSmtpAuth, Setting::SecurityDefaults];
    /// The settings a CSV row may give its own value for (a column named after it).
    pub const PER_ROW: [Setting; 2] = [Setting::SmtpAuth, Setting::PerUserMfa];
    /// The settings that belong to each target, in the order they are worked on (the verdict of
    /// `smtp-auth-effective` comes after them all).
    pub const PER_TARGET: [Setting; 4] =
        [Setting::SmtpAuth, Setting::PerUserMfa, Setting::AuthenticationPolicy, Setting::CaExclusion];

    pub fn name(self) -> &'static str {
        match self {
            Setting::SecurityDefaults => "security-defaults",
            Setting::OrganisationSmtpAuth => "organisation-smtp-auth",
            Setting::SmtpAuth => "smtp-auth",
            Setting::PerUserMfa => "per-user-mfa",
            Setting::AuthenticationPolicy => "authentication-policy",
            Setting::CaExclusion => "ca-exclusion",
            Setting::SmtpAuthEffective => "smtp-auth-effective",
        }
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
        match self {
            Setting::SecurityDefaults | Setting::OrganisationSmtpAuth => &[Value::Enabled, Value::Disabled],
            Setting::SmtpAuth => &[Value::Enabled, Value::Disabled, Value::Inherit],
            Setting::PerUserMfa => &[Value::Disabled, Value::Enabled, Value::Enforced],
            Setting::AuthenticationPolicy | Setting::CaExclusion | Setting::SmtpAuthEffective => &[],
        }
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

    /// Whether `current` already satisfies `desired` when applying a desired state: "enforced"
    /// MFA satisfies "enabled", since enabling MFA for a user who registered a method makes it
    /// enforced by itself. A rollback asks for the exact value instead ([`Setting::restored`]).
    pub fn satisfies(self, current: Value, desired: Value) -> bool {
        current == desired || (self == Setting::PerUserMfa && desired == Value::Enabled && current == Value::Enforced)
    }

    /// Whether `current` is exactly the value a rollback puts back: the value it found, not one
    /// that "satisfies" it.
    pub fn restored(self, current: Value, found: Value) -> bool {
        current == found
    }

    pub fn is_tenant_wide(self) -> bool {
        Setting::TENANT.contains(&self)
    }

    /// The API that reads and writes it.
    pub fn api(self) -> crate::cloud::Api {
        match self {
            Setting::SmtpAuth | Setting::OrganisationSmtpAuth | Setting::AuthenticationPolicy => {
                crate::cloud::Api::Exchange
            }
            Setting::SecurityDefaults | Setting::PerUserMfa | Setting::CaExclusion | Setting::SmtpAuthEffective => {
                crate::cloud::Api::Graph
            }
        }
    }
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
}
