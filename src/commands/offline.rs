//! The commands that contact no service: `validate` and `profiles`.

use crate::cli::ValidateArgs;
use crate::error::{Result, exit};
use crate::settings::profile;
use crate::targets::{self, Entry};

/// `validate`: every bad row with its line; exit 0 when clean, 1 when some rows are bad.
pub(crate) fn validate(args: ValidateArgs) -> Result<u8> {
    let reader = targets::open_to_list(&args.input, args.column.as_deref())?;
    out!("{}: identity column '{}'", args.input.display(), reader.column_name());
    if let Some(note) = reader.note() {
        out!("{}: {note}", args.input.display());
    }
    let (mut good, mut bad) = (0u64, 0u64);
    for entry in reader {
        match entry {
            Entry::Target(_) => good += 1,
            Entry::Problem(problem) => {
                bad += 1;
                out!("{}:{}: {}", args.input.display(), problem.line, problem.message);
            }
        }
    }
    out!("{good} valid targets, {bad} bad rows");
    if good == 0 && bad == 0 {
        out!("the file has a header but no rows");
    }
    Ok(if bad == 0 { exit::SUCCESS } else { exit::TARGETS_FAILED })
}

/// `profiles`: the built-in profiles and their settings.
/// One setting as `remediate profiles` lists it, from its spec.
fn describe_setting(setting: crate::settings::Setting) -> String {
    let spec = setting.spec();
    let values = match spec.values {
        [] if spec.scope == crate::settings::Scope::Verdict => String::new(),
        [] => "; set by a flag of its own".to_string(),
        values => format!("; {}", values.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")),
    };
    let grant = if spec.permission.is_empty() { String::new() } else { format!("  write needs {}\n", spec.permission) };
    format!("{} ({}{values})\n{grant}  {}\n", spec.name, spec.scope.describe(), spec.document)
}

pub(crate) fn profiles() -> Result<u8> {
    for profile in profile::builtins() {
        out!("{}\n  {}\n  {}", profile.name, profile.description, profile.desired.describe());
        for (setting, control) in &profile.controls {
            out!("  {setting}: {control}");
        }
        out!();
    }
    out!(
        "A profile can also be a TOML file: see samples/profiles/smtp-auth-fix.toml and samples/profiles/migration-wave.toml\n"
    );
    out!("The settings, whose each is, what a write needs granted, and the page each follows:\n");
    for setting in crate::settings::Setting::ALL {
        out!("{}", describe_setting(setting));
    }
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use crate::settings::{Scope, Setting};

    #[test]
    fn every_setting_says_what_its_write_needs_and_where_it_is_documented() {
        for setting in Setting::ALL {
            let listed = super::describe_setting(setting);
            assert!(listed.starts_with(setting.name()), "{listed}");
            assert!(listed.contains("https://learn.microsoft.com/"), "{listed}");
            let written = setting.spec().scope != Scope::Verdict;
            assert_eq!(listed.contains("write needs "), written, "{listed}");
        }
    }
}
