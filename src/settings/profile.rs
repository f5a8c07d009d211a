//! Profiles: named sets of desired values. Two are built in; any other is a TOML file:
//!
//! ```toml
//! description = "Microsoft's fix for SMTP AUTH failures"
//! [settings]
//! security-defaults = "disabled"
//! smtp-auth = "enabled"
//! per-user-mfa = "disabled"
//! exclude = ["scanner@contoso.com", "*@relay.contoso.com"]   # optional, top level
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::Error;
use crate::settings::{DesiredState, Setting, Value};

#[derive(Clone, Debug)]
pub(crate) struct Profile {
    pub name: String,
    pub description: String,
    pub desired: DesiredState,
    /// Addresses or `*@domain` patterns this profile never touches.
    pub exclude: Vec<String>,
    /// The benchmark controls each setting implements, for a profile named after them.
    pub controls: Vec<(Setting, &'static str)>,
}

fn builtin(name: &str, description: &str, values: &[(Setting, Value)]) -> Profile {
    let mut desired = DesiredState::default();
    for (setting, value) in values {
        desired.set(*setting, *value);
    }
    Profile { name: name.into(), description: description.into(), desired, exclude: Vec::new(), controls: Vec::new() }
}

/// A profile that implements a benchmark's controls: each setting with its value and control id.
fn benchmark(name: &str, description: &str, values: &[(Setting, Value, &'static str)]) -> Profile {
    let mut profile = builtin(name, description, &[]);
    for (setting, value, control) in values {
        profile.desired.set_for_control(*setting, *value, control);
        profile.controls.push((*setting, control));
    }
    profile
}

/// The profiles that ship with the tool.
pub(crate) fn builtins() -> Vec<Profile> {
    vec![
        builtin(
            "smtp-auth-fix",
            "Microsoft's fix for SMTP AUTH failures (5.7.57, 5.7.3, 5.7.139): security defaults off, SMTP AUTH on, legacy per-user MFA off",
            &[
                (Setting::SecurityDefaults, Value::Disabled),
                (Setting::SmtpAuth, Value::Enabled),
                (Setting::PerUserMfa, Value::Disabled),
            ],
        ),
        // CIS Microsoft 365 Foundations 6.5.4 and CISA SCuBA MS.EXO.5.1 ask for SMTP AUTH off; CIS
        // 5.1.2.1 asks for per-user MFA to be disabled, and Microsoft advises against enabling or
        // enforcing it where Conditional Access is used: the lockdown leaves it alone.
        builtin(
            "smtp-auth-lockdown",
            "Compliance sweep: SMTP AUTH off for the organisation and on every mailbox (CIS 6.5.4, SCuBA MS.EXO.5.1); per-user MFA and security defaults untouched",
            &[(Setting::OrganisationSmtpAuth, Value::Disabled), (Setting::SmtpAuth, Value::Disabled)],
        ),
        // CIS Microsoft 365 Foundations Benchmark (ids unchanged from v5.0.0 to v7.0.0): 6.5.4
        // "Ensure SMTP AUTH is disabled", held per mailbox too, since a mailbox's own `$false`
        // overrides the organisation's switch; 1.2.2 "Ensure sign-in to shared mailboxes is
        // blocked"; 6.1.2 "Ensure mailbox audit actions are configured", of which the tool holds
        // `AuditEnabled`, not the lists of actions; 6.1.3 "Ensure 'AuditBypassEnabled' is not
        // enabled on mailboxes" (6.1.4 in v3 and v4). CIS has no per-mailbox control for POP, IMAP
        // or EWS.
        benchmark(
            "cis-exchange",
            "CIS Microsoft 365 Foundations, the Exchange Online controls the tool holds: SMTP AUTH off for the organisation and every mailbox (6.5.4), sign-in blocked for shared mailboxes (1.2.2), mailbox auditing on (6.1.2) and not bypassed (6.1.3)",
            &[
                (Setting::OrganisationSmtpAuth, Value::Disabled, "CIS 6.5.4"),
                (Setting::SmtpAuth, Value::Disabled, "CIS 6.5.4"),
                (Setting::SharedSignIn, Value::Disabled, "CIS 1.2.2"),
                (Setting::Audit, Value::Enabled, "CIS 6.1.2 (AuditEnabled)"),
                (Setting::AuditBypass, Value::Disabled, "CIS 6.1.3"),
            ],
        ),
        // CISA SCuBA Exchange Online baseline (github.com/cisagov/ScubaGear, baselines/exo.md):
        // MS.EXO.5.1v1 "SMTP AUTH SHALL be disabled". Its forwarding (MS.EXO.1.1v2) and auditing
        // (MS.EXO.13.1v1) policies are the organisation's, checked by ScubaGear, not per mailbox.
        benchmark(
            "scuba-exo",
            "CISA SCuBA Exchange Online baseline, the per-mailbox policy: SMTP AUTH off for the organisation and every mailbox (MS.EXO.5.1v1)",
            &[
                (Setting::OrganisationSmtpAuth, Value::Disabled, "MS.EXO.5.1v1"),
                (Setting::SmtpAuth, Value::Disabled, "MS.EXO.5.1v1"),
            ],
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    description: String,
    #[serde(default)]
    settings: BTreeMap<String, String>,
    #[serde(default)]
    exclude: Vec<String>,
}

/// A profile that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("--profile {profile}: {problem}")]
pub struct ProfileError {
    pub profile: String,
    pub problem: String,
}

/// Whether `name_or_path` names a file rather than a built-in profile.
pub(crate) fn is_file(name_or_path: &str) -> bool {
    !builtins().iter().any(|p| p.name == name_or_path)
}

/// A built-in profile by name, or a TOML file by path.
pub(crate) fn load(name_or_path: &str) -> Result<Profile, Error> {
    if let Some(profile) = builtins().into_iter().find(|p| p.name == name_or_path) {
        return Ok(profile);
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        let names = builtins().iter().map(|p| p.name.clone()).collect::<Vec<_>>().join(", ");
        return Err(ProfileError {
            profile: name_or_path.into(),
            problem: format!("no built-in profile of that name ({names}) and no such file"),
        }
        .into());
    }
    let problem = |problem: String| ProfileError { profile: name_or_path.into(), problem };
    let text = crate::support::files::read_text_capped(path, crate::support::files::cap::SMALL)
        .map_err(|e| problem(format!("cannot read it: {e}")))?;
    let file: ProfileFile = toml::from_str(&text).map_err(|e| problem(e.to_string().trim().to_string()))?;
    let mut desired = DesiredState::default();
    for (name, value) in &file.settings {
        let setting = Setting::from_name(name)
            .ok_or_else(|| problem(format!("unknown setting '{name}' in [settings]; use {}", Setting::settable())))?;
        let value = setting.parse_value(value).map_err(problem)?;
        desired.set(setting, value);
    }
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Profile { name, description: file.description, desired, exclude: file.exclude, controls: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_profile_loads() {
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/profiles");
        let mut loaded = 0;
        for entry in std::fs::read_dir(samples).unwrap() {
            let path = entry.unwrap().path();
            let profile = load(&path.display().to_string()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!profile.desired.is_empty() && !profile.description.is_empty(), "{}", path.display());
            loaded += 1;
        }
        assert!(loaded >= 2);
    }

    #[test]
    fn a_benchmark_profile_names_a_control_for_each_of_its_settings() {
        for profile in builtins().into_iter().filter(|p| !p.controls.is_empty()) {
            for (setting, value) in profile.desired.iter() {
                assert!(!profile.desired.control_of(setting, value).is_empty(), "{}: {setting}", profile.name);
            }
        }
        let mut cis = load("cis-exchange").unwrap().desired;
        assert_eq!(cis.control_of(Setting::SmtpAuth, Value::Disabled), "CIS 6.5.4");
        assert_eq!(cis.control_of(Setting::SmtpAuth, Value::Enabled), "", "a row's own value is not the control's");
        cis.set(Setting::SmtpAuth, Value::Enabled);
        assert_eq!(cis.control_of(Setting::SmtpAuth, Value::Enabled), "", "--set over the profile");
    }
}
