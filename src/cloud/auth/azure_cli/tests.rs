//! The Azure CLI as a stand-in script: what a slow, a flooding or a failing `az` does to a run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{OUTPUT_CAP, run};

fn stand_in(dir: &Path, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("az");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("the stand-in");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("executable");
    path
}

async fn token_from(script: &str, timeout: Duration) -> Result<String, String> {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let az = stand_in(dir.path(), script);
    run(az.as_os_str(), "contoso.com", "https://graph.microsoft.com/.default", timeout)
        .await
        .map(|(token, _)| token.expose().to_string())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_token_answer_is_read() {
    let answer = r#"printf '{"accessToken": "t0k3n", "expires_on": "%s"}' "$(( $(date +%s) + 3000 ))""#;
    assert_eq!(token_from(answer, Duration::from_secs(10)).await, Ok("t0k3n".into()));
}

#[tokio::test]
async fn a_cli_that_hangs_is_stopped_at_its_timeout() {
    // `exec`: the shell becomes the sleep, so stopping the child stops it.
    let error = token_from("exec sleep 600", Duration::from_millis(300)).await.expect_err("no token");
    assert!(error.contains("gave no token within 0.3 s (stopped)"), "{error}");
}

#[tokio::test]
async fn a_cli_that_floods_its_output_is_not_read_whole() {
    let flood = format!("head -c {} /dev/zero", 2 * OUTPUT_CAP);
    let error = token_from(&flood, Duration::from_secs(10)).await.expect_err("no token");
    assert!(error.contains("more than 1 MiB to its standard output"), "{error}");
}

#[tokio::test]
async fn a_refusal_says_what_the_cli_said_and_how_to_sign_in() {
    let refusal = "printf 'ERROR: Please run \\033[31maz login\\r\\n' >&2; exit 1";
    let error = token_from(refusal, Duration::from_secs(10)).await.expect_err("no token");
    assert!(error.contains("(ERROR: Please run \\x1b[31maz login)"), "{error}");
    assert!(error.contains("run `az login --tenant contoso.com`"), "{error}");
}

#[test]
fn the_timeout_is_azure_identitys() {
    assert_eq!(super::TIMEOUT, Duration::from_secs(10));
}
