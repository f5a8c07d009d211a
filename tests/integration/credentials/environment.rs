//! The credentials of the environment (a client secret, a certificate file, a federated token
//! file, `AZURE_AUTHORITY_HOST`) through the real binary: each signs in, and no secret, key or
//! token reaches stdout, stderr, the most verbose log, or the report directory.

use std::path::PathBuf;

use assert_cmd::Command;
use remediate_sim::{Population, SimConfig, Simulator};

use super::{TOKEN_PREFIX, fixture, tenant_with_certificate};
use crate::support::{scratch, start};

/// `remediate apply` as a subprocess against `sim`, with `RUST_LOG=trace`; returns the exit
/// code and everything it wrote (stdout, stderr, every file of the report).
async fn apply_with(sim: &Simulator, credential: (&'static str, String), report: PathBuf) -> (i32, String) {
    let mut command = Command::cargo_bin("remediate").unwrap();
    for name in ["AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE"] {
        command.env_remove(name);
    }
    let url = sim.url();
    command
        .env("AZURE_TENANT_ID", &sim.app().tenant_id)
        .env("AZURE_CLIENT_ID", &sim.app().client_id)
        .env(credential.0, credential.1)
        .env("REMEDIATE_LOGIN_URL", &url)
        .env("REMEDIATE_GRAPH_URL", &url)
        .env("REMEDIATE_EXCHANGE_URL", &url)
        .env("RUST_LOG", "trace")
        .write_stdin("")
        .args(["apply", &format!("{}/samples/mailboxes.csv", env!("CARGO_MANIFEST_DIR"))])
        // The sample's mailboxes are not this tenant's: every row is skipped, and that is allowed.
        .args(["--set", "smtp-auth=disabled", "--yes", "-vv", "--max-not-found", "1", "--state-dir"])
        .arg(report.with_extension("state"))
        .arg("--report-dir")
        .arg(&report);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let mut everything = String::from_utf8_lossy(&output.stdout).into_owned();
    everything.push_str(&String::from_utf8_lossy(&output.stderr));
    if let Ok(entries) = std::fs::read_dir(&report) {
        for entry in entries {
            everything.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
        }
    }
    (output.status.code().unwrap_or(-1), everything)
}

fn private_key_lines(pem: &str) -> Vec<String> {
    let key = pem.split("-----BEGIN PRIVATE KEY-----").nth(1).unwrap();
    key.lines().filter(|l| l.len() > 40).map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_signs_the_assertion_and_nothing_secret_leaks() {
    let sim = tenant_with_certificate("app.crt").await;
    let dir = scratch();
    let pem = fixture("app.pem");
    let (code, everything) =
        apply_with(&sim, ("AZURE_CLIENT_CERTIFICATE_PATH", pem.display().to_string()), dir.path().join("r")).await;
    assert_eq!(code, 0, "{everything}");
    assert!(everything.contains("apply finished"));
    let key = std::fs::read_to_string(&pem).unwrap();
    for line in private_key_lines(&key) {
        assert!(!everything.contains(&line), "a line of the private key leaked");
    }
    assert!(!everything.contains(TOKEN_PREFIX), "an access token leaked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_the_app_does_not_know_is_refused_with_exit_2() {
    let sim = tenant_with_certificate("app.crt").await;
    let dir = scratch();
    let other = fixture("other.pem").display().to_string();
    let (code, everything) = apply_with(&sim, ("AZURE_CLIENT_CERTIFICATE_PATH", other), dir.path().join("r")).await;
    assert_eq!(code, 2, "{everything}");
    assert!(everything.contains("AADSTS700027"), "{everything}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_never_reaches_output_logs_or_report() {
    let sim = tenant_with_certificate("app.crt").await;
    let dir = scratch();
    let secret = sim.app().client_secret.clone();
    let (code, everything) = apply_with(&sim, ("AZURE_CLIENT_SECRET", secret.clone()), dir.path().join("r")).await;
    assert_eq!(code, 0, "{everything}");
    assert!(everything.contains("TRACE") || everything.contains("DEBUG"), "the log ran at its most verbose");
    assert!(!everything.contains(&secret), "the secret leaked");
    assert!(!everything.contains(TOKEN_PREFIX), "an access token leaked");
}

#[tokio::test(flavor = "multi_thread")]
async fn workload_identity_reads_the_federated_token_file() {
    let sim = tenant_with_certificate("app.crt").await;
    let dir = scratch();
    let file = dir.path().join("token");
    std::fs::write(&file, "kubernetes-projected-service-account-token\n").unwrap();
    let (code, everything) =
        apply_with(&sim, ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()), dir.path().join("r")).await;
    assert_eq!(code, 0, "{everything}");
    assert!(!everything.contains("kubernetes-projected-service-account-token"), "the federated token leaked");
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_authority_host_is_the_login_host_unless_login_url_says_otherwise() {
    let sim = start(SimConfig { population: Population::Generated { count: 5 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let mut command = Command::cargo_bin("remediate").unwrap();
    for name in ["AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "REMEDIATE_LOGIN_URL"] {
        command.env_remove(name);
    }
    let url = sim.url();
    command
        .env("AZURE_TENANT_ID", &sim.app().tenant_id)
        .env("AZURE_CLIENT_ID", &sim.app().client_id)
        .env("AZURE_CLIENT_SECRET", &sim.app().client_secret)
        .env("AZURE_AUTHORITY_HOST", &url)
        .env("REMEDIATE_GRAPH_URL", &url)
        .env("REMEDIATE_EXCHANGE_URL", &url)
        .write_stdin("")
        .args(["plan", &format!("{}/samples/mailboxes.csv", env!("CARGO_MANIFEST_DIR")), "--set", "smtp-auth=disabled"])
        .args(["--max-not-found", "1"])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--report-dir")
        .arg(dir.path().join("report"));
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}
