//! Helpers shared by the integration tests: a simulated tenant, credentials in files, CSVs, the
//! runner called in process, and readers for the report and the simulator's observability routes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use remediate::sim::{SimConfig, Simulator};
use serde_json::Value;

pub async fn start(config: SimConfig) -> Simulator {
    Simulator::start(config).await.expect("the simulator starts")
}

/// A scratch directory for one test, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

pub fn write_csv(dir: &Path, name: &str, header: &str, identities: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut text = format!("{header}\n");
    for identity in identities {
        text.push_str(identity);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// The connection arguments that point the runner at `sim`, with the secret in a file.
pub fn connection_args(sim: &Simulator, dir: &Path) -> Vec<String> {
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, &sim.app().client_secret).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let url = sim.url();
    vec![
        "--tenant-id".into(),
        sim.app().tenant_id.clone(),
        "--client-id".into(),
        sim.app().client_id.clone(),
        "--client-secret-file".into(),
        secret.display().to_string(),
        "--login-url".into(),
        url.clone(),
        "--graph-url".into(),
        url.clone(),
        "--exchange-url".into(),
        url,
        "--state-dir".into(),
        dir.join("state").display().to_string(),
    ]
}

/// Runs `remediate ARGS…` in process and returns its exit code (errors mapped as main does).
pub async fn run(args: &[String]) -> u8 {
    let mut argv = vec!["remediate".to_string(), "-q".to_string()];
    argv.extend(args.iter().cloned());
    let cli = remediate::cli::Cli::try_parse_from(&argv).expect("valid arguments");
    match remediate::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            error.exit_code()
        }
    }
}

pub fn results(dir: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(dir.join("results.csv")).expect("results.csv exists");
    reader.deserialize().map(|row| row.expect("a well-formed row")).collect()
}

pub fn summary(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).expect("summary.json exists")).unwrap()
}

pub fn stats(sim: &Simulator) -> Value {
    sim.service().stats_json()
}

pub fn state(sim: &Simulator) -> Value {
    sim.service().state_json()
}

/// Users in the simulator's state, by lower-case UPN and by lower-case mail.
pub fn users_by_address(state: &Value) -> HashMap<String, Value> {
    let mut map = HashMap::new();
    for user in state["users"].as_array().unwrap() {
        map.insert(user["userPrincipalName"].as_str().unwrap().to_lowercase(), user.clone());
        map.insert(user["mail"].as_str().unwrap().to_lowercase(), user.clone());
    }
    map
}

/// A token for `scope` from the simulator's token endpoint.
pub async fn token(sim: &Simulator, scope: &str) -> String {
    sim.client_token(&reqwest::Client::new(), scope).await.expect("a token")
}

pub const GRAPH: &str = "https://graph.microsoft.com/.default";
pub const EXCHANGE: &str = "https://outlook.office365.com/.default";

/// Changes a mailbox's SMTP AUTH directly, as another admin would behind the tool's back.
pub async fn change_behind_our_back(sim: &Simulator, upn: &str, disabled: bool) {
    let bearer = token(sim, EXCHANGE).await;
    let url = format!("{}/adminapi/beta/{}/InvokeCommand", sim.url(), sim.app().tenant_id);
    let body = serde_json::json!({"CmdletInput": {"CmdletName": "Set-CASMailbox", "Parameters": {"Identity": upn, "SmtpClientAuthenticationDisabled": disabled}}});
    let answer = reqwest::Client::new().post(url).bearer_auth(bearer).json(&body).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
}

/// `apply CSV --profile smtp-auth-fix --yes --report-dir REPORT`.
pub fn fix_args(csv: &Path, report: &Path) -> Vec<String> {
    [
        "apply",
        &csv.display().to_string(),
        "--profile",
        "smtp-auth-fix",
        "--yes",
        "--report-dir",
        &report.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}
