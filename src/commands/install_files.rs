//! The files a package installs beside the binary: shell completions and manual pages. They are
//! made from the command line's own definition, so they never disagree with `--help`.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::error::{Error, Result, exit};

/// `completions SHELL`: the shell's completion script on stdout.
pub(crate) fn completions(args: CompletionsArgs) -> Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "remediate", &mut script);
    print_all(&script)
}

/// `man`: the manual page on stdout, or with `--dir` a page for every command written there
/// (`remediate.1`, `remediate-apply.1`, …), as a package installs them.
pub(crate) fn manual(args: ManArgs) -> Result<u8> {
    let Some(directory) = args.dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command()).render(&mut page).map_err(Error::io("render the manual page"))?;
        return print_all(&page);
    };
    std::fs::create_dir_all(&directory).map_err(Error::io(format!("create {}", directory.display())))?;
    clap_mangen::generate_to(Cli::command(), &directory)
        .map_err(Error::io(format!("write the manual pages to {}", directory.display())))?;
    out!("wrote the manual pages to {}", directory.display());
    Ok(exit::SUCCESS)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error worth a message.
fn print_all(text: &[u8]) -> Result<u8> {
    match std::io::stdout().lock().write_all(text) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("write to stdout")(error)),
        _ => Ok(exit::SUCCESS),
    }
}
