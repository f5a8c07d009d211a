//! Tokens from the Azure CLI's signed-in account (`az account get-access-token`,
//! learn.microsoft.com/cli/azure/account), for an administrator at a laptop.
//!
//! The CLI is a program of the machine, not ours: it is given azure-identity's ten seconds
//! (`AzureCliCredential`'s `process_timeout` defaults to 10), nothing on its standard input, the
//! system's directory to run in (as azure-identity does, so no `az` planted in the working
//! directory is run), and no more than a mebibyte of output is read from it.

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::Error;
use crate::support::secret::SecretString;

/// How long the CLI may take: azure-identity's `process_timeout` default.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The most output read from it: a token answer is a few kilobytes.
pub(crate) const OUTPUT_CAP: usize = 1024 * 1024;

/// A token for `scope` from the Azure CLI's signed-in account in `tenant`.
pub(crate) async fn azure_cli(tenant: &str, scope: &str) -> Result<(SecretString, Duration), Error> {
    run(OsStr::new("az"), tenant, scope, TIMEOUT).await
}

/// Runs `program` as the Azure CLI, giving up after `timeout`.
pub(super) async fn run(
    program: &OsStr,
    tenant: &str,
    scope: &str,
    timeout: Duration,
) -> Result<(SecretString, Duration), Error> {
    let resource = super::managed::resource(scope);
    let mut command = tokio::process::Command::new(program);
    command
        .args(["account", "get-access-token", "--output", "json", "--resource", resource, "--tenant", tenant])
        .env("AZURE_CORE_NO_COLOR", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A CLI that runs past its time is stopped, not left behind.
        .kill_on_drop(true);
    if cfg!(unix) {
        command.current_dir("/bin");
    }
    let mut child = command
        .spawn()
        .map_err(|e| Error::Auth(format!("the Azure CLI (az) could not be run: {e}; install it and run `az login`")))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let finished = async {
        let (out, err) = tokio::join!(read_capped(stdout), read_capped(stderr));
        let status = child.wait().await;
        (out, err, status)
    };
    let (out, err, status) = tokio::time::timeout(timeout, finished).await.map_err(|_| {
        Error::Auth(format!(
            "the Azure CLI gave no token within {} s (stopped); check that `az account get-access-token --tenant {tenant}` answers at once, or use another --credential",
            timeout.as_secs_f64()
        ))
    })?;
    let status = status.map_err(|e| Error::Auth(format!("the Azure CLI could not be waited for: {e}")))?;
    let too_much = |what: &str| {
        Error::Auth(format!(
            "the Azure CLI wrote more than {} MiB to its {what}; not a token answer",
            OUTPUT_CAP / (1024 * 1024)
        ))
    };
    // A flood is said first: a CLI cut off mid-write also fails (a broken pipe).
    let out = out.ok_or_else(|| too_much("standard output"))?;
    let err = err.ok_or_else(|| too_much("standard error"))?;
    if !status.success() {
        let said = String::from_utf8_lossy(&err);
        let first = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim();
        return Err(Error::Auth(format!(
            "the Azure CLI gave no token ({}); run `az login --tenant {tenant}`",
            crate::logging::printable(first)
        )));
    }
    super::managed::token_of(&out, "accessToken", "the Azure CLI")
}

/// Everything `pipe` says, or `None` past [`OUTPUT_CAP`] (the rest is left unread: the process
/// is stopped by its timeout or when dropped).
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let Some(pipe) = pipe else { return Some(bytes) };
    let read = pipe.take(OUTPUT_CAP as u64 + 1).read_to_end(&mut bytes).await;
    (read.is_ok() && bytes.len() <= OUTPUT_CAP).then_some(bytes)
}

#[cfg(all(test, unix))]
mod tests;
