//! The remediable settings, their values, and what "compliant" means for each.
//!
//! A setting knows how to read and write itself through the cloud clients (one file each), but
//! nothing of retries, throttling or CSV files.

pub mod mailbox_index;
pub mod per_user_mfa;
pub mod security_defaults;
pub mod smtp_auth;

use std::fmt;

/// One remediable property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Setting {
    /// Tenant-wide: the security defaults policy.
    SecurityDefaults,
    /// Per mailbox: `SmtpClientAuthenticationDisabled` (Exchange).
    SmtpAuth,
    /// Per user: legacy per-user MFA (Graph beta).
    PerUserMfa,
}

/// A setting's value, as users write it on the command line and in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Value {
    Enabled,
    Disabled,
    /// SMTP AUTH follows the organisation's transport config.
    Inherit,
    /// Per-user MFA enforced (a user who registered a method turns `enabled` into this).
    Enforced,
}

impl Setting {
    pub const ALL: [Setting; 3] = [Setting::SecurityDefaults, Setting::SmtpAuth, Setting::PerUserMfa];
    /// The settings that belong to each target, in the order they are worked on.
    pub const PER_TARGET: [Setting; 2] = [Setting::SmtpAuth, Setting::PerUserMfa];

    pub fn name(self) -> &'static str {
        match self {
            Setting::SecurityDefaults => "security-defaults",
            Setting::SmtpAuth => "smtp-auth",
            Setting::PerUserMfa => "per-user-mfa",
        }
    }

    pub fn from_name(name: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn allowed(self) -> &'static [Value] {
        match self {
            Setting::SecurityDefaults => &[Value::Enabled, Value::Disabled],
            Setting::SmtpAuth => &[Value::Enabled, Value::Disabled, Value::Inherit],
            Setting::PerUserMfa => &[Value::Disabled, Value::Enabled, Value::Enforced],
        }
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

    /// Whether `current` already satisfies `desired`: "enforced" MFA satisfies "enabled", since
    /// enabling MFA for a user who registered a method makes it enforced by itself.
    pub fn satisfies(self, current: Value, desired: Value) -> bool {
        current == desired || (self == Setting::PerUserMfa && desired == Value::Enabled && current == Value::Enforced)
    }

    pub fn is_tenant_wide(self) -> bool {
        self == Setting::SecurityDefaults
    }
}

impl Value {
    pub fn name(self) -> &'static str {
        match self {
            Value::Enabled => "enabled",
            Value::Disabled => "disabled",
            Value::Inherit => "inherit",
            Value::Enforced => "enforced",
        }
    }

    pub fn from_name(text: &str) -> Option<Value> {
        [Value::Enabled, Value::Disabled, Value::Inherit, Value::Enforced]
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(text.trim()))
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The desired value of each setting a run touches; settings not named are left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredState {
    values: Vec<(Setting, Value)>,
}

impl DesiredState {
    pub fn set(&mut self, setting: Setting, value: Value) {
        self.values.retain(|(s, _)| *s != setting);
        self.values.push((setting, value));
        self.values.sort_by_key(|(s, _)| *s);
    }

    pub fn get(&self, setting: Setting) -> Option<Value> {
        self.values.iter().find(|(s, _)| *s == setting).map(|(_, v)| *v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Setting, Value)> + '_ {
        self.values.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Applies one `--set SETTING=VALUE`.
    pub fn apply_assignment(&mut self, assignment: &str) -> Result<(), String> {
        let Some((name, value)) = assignment.split_once('=') else {
            return Err(format!("--set {assignment}: write SETTING=VALUE, e.g. --set smtp-auth=enabled"));
        };
        let Some(setting) = Setting::from_name(name) else {
            return Err(format!(
                "--set {assignment}: unknown setting '{}': use security-defaults, smtp-auth or per-user-mfa",
                name.trim()
            ));
        };
        let value = setting.parse_value(value).map_err(|e| format!("--set {assignment}: {e}"))?;
        self.set(setting, value);
        Ok(())
    }

    /// Settings whose desired value weakens the tenant and so needs an explicit yes.
    pub fn weakening(&self) -> Vec<(Setting, Value)> {
        self.iter()
            .filter(|(s, v)| matches!((s, v), (Setting::SecurityDefaults | Setting::PerUserMfa, Value::Disabled)))
            .collect()
    }

    pub fn describe(&self) -> String {
        self.iter().map(|(s, v)| format!("{s}={v}")).collect::<Vec<_>>().join(" ")
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
    fn assignments_override_and_explain_mistakes() {
        let mut desired = DesiredState::default();
        desired.apply_assignment("smtp-auth=enabled").unwrap();
        desired.apply_assignment("smtp-auth=disabled").unwrap();
        assert_eq!(desired.get(Setting::SmtpAuth), Some(Value::Disabled));
        assert!(desired.apply_assignment("smtp_auth").unwrap_err().contains("SETTING=VALUE"));
        assert!(desired.apply_assignment("colour=blue").unwrap_err().contains("unknown setting 'colour'"));
    }
}

use crate::cloud::graph::DirectoryUser;
use crate::cloud::{Answer, CallError, CloudClient, RequestIds};

/// A setting's current value, or `None` where it does not apply (a user without a mailbox).
#[derive(Clone, Debug)]
pub struct Reading {
    pub value: Option<Value>,
    pub attempts: u32,
    pub ids: RequestIds,
}

impl Reading {
    fn of(value: Option<Value>, answer: &Answer) -> Reading {
        Reading { value, attempts: answer.attempts, ids: answer.ids.clone() }
    }
}

fn unexpected(answer: &Answer, field: &str) -> CallError {
    CallError::Refused {
        status: answer.status,
        code: "UnexpectedAnswer".into(),
        message: format!("the answer has no usable '{field}'"),
        ids: answer.ids.clone(),
        attempts: answer.attempts,
    }
}

/// Reads `setting` for `user` (tenant-wide settings need none); SMTP AUTH from `index` when the
/// run reads every mailbox in bulk and the listing can say.
pub async fn read(
    setting: Setting,
    client: &CloudClient,
    user: Option<&DirectoryUser>,
    index: Option<&mailbox_index::PendingIndex>,
) -> Result<Reading, CallError> {
    let listed = match (setting, user, index) {
        (Setting::SmtpAuth, Some(user), Some(index)) => index.lookup(&user.id).await,
        _ => None,
    };
    match (setting, user) {
        (Setting::SecurityDefaults, _) => security_defaults::read(client).await,
        (Setting::SmtpAuth, Some(_)) if let Some(known) = listed => {
            Ok(Reading { value: known, attempts: 0, ids: RequestIds::default() })
        }
        (Setting::SmtpAuth, Some(user)) => smtp_auth::read(client, &user.upn).await,
        (Setting::PerUserMfa, Some(user)) => per_user_mfa::read(client, &user.id).await,
        (_, None) => Ok(Reading { value: None, attempts: 0, ids: RequestIds::default() }),
    }
}

impl Setting {
    /// The API that reads and writes it.
    pub fn api(self) -> crate::cloud::Api {
        match self {
            Setting::SmtpAuth => crate::cloud::Api::Exchange,
            Setting::SecurityDefaults | Setting::PerUserMfa => crate::cloud::Api::Graph,
        }
    }
}

/// Writes `value` to `setting` for `user`; `sent` is told each attempt's request id as it goes out.
pub async fn write(
    setting: Setting,
    client: &CloudClient,
    user: Option<&DirectoryUser>,
    value: Value,
    sent: std::sync::Arc<tokio::sync::watch::Sender<String>>,
    gate: crate::cloud::Gate,
) -> Result<Answer, CallError> {
    let mut call = match (setting, user) {
        (Setting::SecurityDefaults, _) => security_defaults::write(value),
        (Setting::SmtpAuth, Some(user)) => smtp_auth::write(&client.tenant_id, &user.upn, value),
        (Setting::PerUserMfa, Some(user)) => per_user_mfa::write(&user.id, value),
        (_, None) => {
            return Err(CallError::Local { code: "NoTarget", message: "a per-target setting needs a target".into() });
        }
    };
    call.sent = Some(sent);
    call.gate = Some(gate);
    client.send(&call).await
}
