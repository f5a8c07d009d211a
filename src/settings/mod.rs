//! The remediable settings, their values, and what "compliant" means for each.
//!
//! A setting knows how to read and write itself through the cloud clients (one file each), but
//! nothing of retries, throttling or CSV files.

pub mod authentication_policy;
pub mod ca_exclusion;
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

/// A setting's value, as users write it on the command line and in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Enabled,
    Disabled,
    /// SMTP AUTH follows the organisation's transport config.
    Inherit,
    /// Per-user MFA enforced (a user who registered a method turns `enabled` into this).
    Enforced,
    /// A member of the group, or not.
    Member,
    NotMember,
    /// Whether a device can send with SMTP AUTH.
    CanSend,
    Blocked,
    /// A layer could not be read.
    Unknown,
    /// An authentication policy by its name; the empty name is no policy of the user's own.
    Named(Name),
}

/// A name a service hands out (an authentication policy's), kept once for the whole process: a
/// tenant has a handful, and a value stays small and `Copy` (a row holds three).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name(u32);

/// Every name met, in the order met, and where each is.
#[derive(Default)]
struct Names {
    texts: Vec<&'static str>,
    positions: std::collections::HashMap<&'static str, u32>,
}

fn names() -> std::sync::MutexGuard<'static, Names> {
    static NAMES: std::sync::OnceLock<std::sync::Mutex<Names>> = std::sync::OnceLock::new();
    NAMES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

impl Name {
    pub fn new(text: &str) -> Name {
        let mut names = names();
        if let Some(&position) = names.positions.get(text) {
            return Name(position);
        }
        let kept: &'static str = Box::leak(text.to_string().into_boxed_str());
        let position = names.texts.len() as u32;
        names.texts.push(kept);
        names.positions.insert(kept, position);
        Name(position)
    }

    pub fn as_str(self) -> &'static str {
        names().texts.get(self.0 as usize).copied().unwrap_or_default()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The values that are words of ours, in the order `from_name` tries them.
const WORDS: [Value; 9] = [
    Value::Enabled,
    Value::Disabled,
    Value::Inherit,
    Value::Enforced,
    Value::Member,
    Value::NotMember,
    Value::CanSend,
    Value::Blocked,
    Value::Unknown,
];

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
}

impl Value {
    pub fn name(self) -> &'static str {
        match self {
            Value::Enabled => "enabled",
            Value::Disabled => "disabled",
            Value::Inherit => "inherit",
            Value::Enforced => "enforced",
            Value::Member => "member",
            Value::NotMember => "not-member",
            Value::CanSend => "can-send",
            Value::Blocked => "blocked",
            Value::Unknown => "unknown",
            Value::Named(name) => name.as_str(),
        }
    }

    /// One of our words, as a user types it (any letter case).
    pub fn from_name(text: &str) -> Option<Value> {
        WORDS.into_iter().find(|v| v.name().eq_ignore_ascii_case(text.trim()))
    }

    /// A value as the journal and the report keep it: one of our words exactly, else a name.
    pub fn stored(text: &str) -> Value {
        WORDS.into_iter().find(|v| v.name() == text).unwrap_or_else(|| Value::Named(Name::new(text)))
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Value::stored(&text))
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
            return Err(format!("--set {assignment}: unknown setting '{}': use {}", name.trim(), Setting::settable()));
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

/// What reads and writes may lean on besides the service: the run's bulk SMTP AUTH listing, the
/// tenant's authentication policies (to name the one a user has), the exclusion group.
#[derive(Clone, Copy, Default)]
pub struct Sources<'a> {
    pub smtp_index: Option<&'a mailbox_index::PendingIndex>,
    pub policies: &'a [crate::diagnosis::AuthPolicy],
    pub exclusion_group: Option<&'a str>,
}

impl Sources<'_> {
    /// The same, but asking the service itself: for a read that must see a write's effect.
    pub fn fresh(self) -> Self {
        Sources { smtp_index: None, ..self }
    }
}

fn no_target() -> CallError {
    CallError::Local { code: "NoTarget", message: "a per-target setting needs a target".into() }
}

fn no_group() -> CallError {
    CallError::Local { code: "NoExclusionGroup", message: "ca-exclusion needs --ca-exclusion-group".into() }
}

/// Reads `setting` for `user` (tenant-wide settings need none); SMTP AUTH from the bulk listing
/// when the run reads every mailbox at once and the listing can say.
pub async fn read(
    setting: Setting,
    client: &CloudClient,
    user: Option<&DirectoryUser>,
    sources: Sources<'_>,
) -> Result<Reading, CallError> {
    let listed = match (setting, user, sources.smtp_index) {
        (Setting::SmtpAuth, Some(user), Some(index)) => index.lookup(&user.id).await,
        _ => None,
    };
    match (setting, user) {
        (Setting::SecurityDefaults, _) => security_defaults::read(client).await,
        (Setting::OrganisationSmtpAuth, _) => smtp_auth::read_organisation(client).await,
        (Setting::SmtpAuth, Some(_)) if let Some(known) = listed => {
            Ok(Reading { value: known, attempts: 0, ids: RequestIds::default() })
        }
        (Setting::SmtpAuth, Some(user)) => smtp_auth::read(client, &user.upn).await,
        (Setting::PerUserMfa, Some(user)) => per_user_mfa::read(client, &user.id).await,
        (Setting::AuthenticationPolicy, Some(user)) => {
            authentication_policy::read(client, &user.upn, sources.policies).await
        }
        (Setting::CaExclusion, Some(user)) => {
            ca_exclusion::read(client, &user.id, sources.exclusion_group.ok_or_else(no_group)?).await
        }
        (Setting::SmtpAuthEffective, _) => {
            Err(CallError::Local { code: "NotASetting", message: "smtp-auth-effective is a verdict, not read".into() })
        }
        (_, None) => Ok(Reading { value: None, attempts: 0, ids: RequestIds::default() }),
    }
}

impl Setting {
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

/// Writes `value` to `setting` for `user`; `sent` is told each attempt's request id as it goes out.
pub async fn write(
    setting: Setting,
    client: &CloudClient,
    user: Option<&DirectoryUser>,
    value: Value,
    sources: Sources<'_>,
    sent: std::sync::Arc<tokio::sync::watch::Sender<Option<crate::cloud::Sent>>>,
    gate: crate::cloud::Gate,
) -> Result<Answer, CallError> {
    let tenant = &client.tenant_id;
    let mut call = match (setting, user) {
        (Setting::SecurityDefaults, _) => security_defaults::write(value),
        (Setting::OrganisationSmtpAuth, _) => smtp_auth::write_organisation(tenant, value),
        (Setting::SmtpAuth, Some(user)) => smtp_auth::write(tenant, &user.upn, value),
        (Setting::PerUserMfa, Some(user)) => per_user_mfa::write(&user.id, value),
        (Setting::AuthenticationPolicy, Some(user)) => authentication_policy::write(tenant, &user.upn, value),
        (Setting::CaExclusion, Some(user)) => {
            let group = sources.exclusion_group.ok_or_else(no_group)?;
            ca_exclusion::write(client.base_url(crate::cloud::Api::Graph), &user.id, group, value)
        }
        (Setting::SmtpAuthEffective, _) | (_, None) => return Err(no_target()),
    };
    call.sent = Some(sent);
    call.gate = Some(gate);
    match client.send(&call).await {
        Err(error) if setting == Setting::CaExclusion => ca_exclusion::already_so(value, &error).ok_or(error),
        answer => answer,
    }
}
