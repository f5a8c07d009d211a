//! The desired state of a run: the value wanted of each setting it touches.

use super::{Setting, Value};

/// The desired value of each setting a run touches; settings not named are left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DesiredState {
    values: Vec<(Setting, Value)>,
    /// The benchmark control each value implements, when a profile named after one gave it.
    controls: Vec<(Setting, &'static str)>,
}

impl DesiredState {
    pub(crate) fn set(&mut self, setting: Setting, value: Value) {
        // A value set over a profile's is no longer the profile's control.
        self.controls.retain(|(s, _)| *s != setting);
        self.values.retain(|(s, _)| *s != setting);
        self.values.push((setting, value));
        self.values.sort_by_key(|(s, _)| *s);
    }

    pub(crate) fn get(&self, setting: Setting) -> Option<Value> {
        self.values.iter().find(|(s, _)| *s == setting).map(|(_, v)| *v)
    }

    /// Sets a value that implements a benchmark control.
    pub(crate) fn set_for_control(&mut self, setting: Setting, value: Value, control: &'static str) {
        self.set(setting, value);
        self.controls.push((setting, control));
    }

    /// The control `value` of `setting` implements in this desired state; empty where none does
    /// (another value, a row's own, a setting no profile named).
    pub(crate) fn control_of(&self, setting: Setting, value: Value) -> &'static str {
        match self.controls.iter().find(|(s, _)| *s == setting) {
            Some((_, control)) if self.get(setting) == Some(value) => control,
            _ => "",
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Setting, Value)> + '_ {
        self.values.iter().copied()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Applies one `--set SETTING=VALUE`.
    pub(crate) fn apply_assignment(&mut self, assignment: &str) -> Result<(), String> {
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
    pub(crate) fn weakening(&self) -> Vec<(Setting, Value)> {
        self.iter().filter(|(setting, value)| setting.spec().weakening.contains(value)).collect()
    }

    pub(crate) fn describe(&self) -> String {
        self.iter().map(|(s, v)| format!("{s}={v}")).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
