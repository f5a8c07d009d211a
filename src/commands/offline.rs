//! The commands that contact no service: `validate` and `profiles`.

use crate::cli::ValidateArgs;
use crate::error::{Result, exit};
use crate::profile;
use crate::targets::{self, Entry};

/// `validate`: every bad row with its line; exit 0 when clean, 1 when some rows are bad.
pub(crate) fn validate(args: ValidateArgs) -> Result<u8> {
    let reader = targets::open_to_list(&args.input, args.column.as_deref())?;
    println!("{}: identity column '{}'", args.input.display(), reader.column_name());
    if let Some(note) = reader.note() {
        println!("{}: {note}", args.input.display());
    }
    let (mut good, mut bad) = (0u64, 0u64);
    for entry in reader {
        match entry {
            Entry::Target(_) => good += 1,
            Entry::Problem(problem) => {
                bad += 1;
                println!("{}:{}: {}", args.input.display(), problem.line, problem.message);
            }
        }
    }
    println!("{good} valid targets, {bad} bad rows");
    if good == 0 && bad == 0 {
        println!("the file has a header but no rows");
    }
    Ok(if bad == 0 { exit::SUCCESS } else { exit::TARGETS_FAILED })
}

/// `profiles`: the built-in profiles and their settings.
pub(crate) fn profiles() -> Result<u8> {
    for profile in profile::builtins() {
        println!("{}\n  {}\n  {}\n", profile.name, profile.description, profile.desired.describe());
    }
    println!("A profile can also be a TOML file: see samples/profiles/smtp-auth-fix.toml");
    Ok(exit::SUCCESS)
}
