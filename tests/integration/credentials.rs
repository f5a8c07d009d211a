//! Every credential type against the simulated identity platform, and the promise that no secret,
//! key or token reaches stdout, stderr, the most verbose log, or the report directory.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use remediate_sim::{Population, SimConfig, Simulator};

use crate::support::start;

mod azure_cli;
mod certificates;
mod environment;
mod managed_identity;

/// Every access token the simulator issues starts with this (a JWT-looking header).
const TOKEN_PREFIX: &str = "eyJ0eXAiOiJKV1QiLCJzaW0iOjF9";

/// A file of tests/fixtures.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A tenant whose app takes the certificate `certificate` of tests/fixtures, and the federated
/// token `workload_identity_reads_the_federated_token_file` writes.
async fn tenant_with_certificate(certificate: &str) -> Simulator {
    let mut config = SimConfig { population: Population::Generated { count: 40 }, ..SimConfig::default() };
    config.load_client_certificate(&fixture(certificate)).unwrap();
    config.federated_token = Some("kubernetes-projected-service-account-token".into());
    start(config).await
}

/// `remediate plan` as a subprocess with only `env` for credentials; exit code and stderr.
async fn plan_signed_in_by(sim: &Simulator, dir: &Path, env: Vec<(String, String)>, args: &[&str]) -> (i32, String) {
    let users = crate::support::upns(&crate::support::state(sim));
    plan_against(&sim.url(), &sim.app().tenant_id, &users, dir, env, args).await
}

/// `remediate plan` of `users` against the simulated tenant at `url`, every credential setting
/// of the environment removed and `env` set; exit code and stderr.
async fn plan_against(
    url: &str,
    tenant: &str,
    users: &[String],
    dir: &Path,
    env: Vec<(String, String)>,
    args: &[&str],
) -> (i32, String) {
    let csv = crate::support::write_csv(dir, "m.csv", "UserPrincipalName", users);
    let mut command = Command::cargo_bin("remediate").unwrap();
    for name in [
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
        "AZURE_FEDERATED_TOKEN_FILE",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "IDENTITY_SERVER_THUMBPRINT",
        "IMDS_ENDPOINT",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    for name in ["REMEDIATE_LOGIN_URL", "REMEDIATE_GRAPH_URL", "REMEDIATE_EXCHANGE_URL"] {
        command.env(name, url);
    }
    command.env("AZURE_TENANT_ID", tenant).envs(env).write_stdin("");
    command.args(["plan", csv.to_str().unwrap(), "--set", "smtp-auth=disabled"]).args(args);
    command.arg("--state-dir").arg(dir.join("state")).arg("--report-dir").arg(dir.join("plan"));
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Name and value pairs, as the environment of `plan_signed_in_by` takes them.
fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
}
