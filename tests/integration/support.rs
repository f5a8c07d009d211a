//! Helpers shared by the integration tests: a simulated tenant, credentials in files, CSVs, the
//! runner called in process, and readers for the report and the simulator's observability routes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::Parser;
use remediate_sim::{Population, SimConfig, Simulator};
use serde_json::Value;
use tokio::process::{Child, Command};

pub(crate) async fn start(config: SimConfig) -> Simulator {
    Simulator::start(config).await.expect("the simulator starts")
}

/// A scratch directory for one test, removed when dropped.
pub(crate) fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

pub(crate) fn write_csv(dir: &Path, name: &str, header: &str, identities: &[String]) -> PathBuf {
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
pub(crate) fn connection_args(sim: &Simulator, dir: &Path) -> Vec<String> {
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
pub(crate) async fn run(args: &[String]) -> u8 {
    let mut argv = vec!["remediate".to_string(), "-q".to_string()];
    argv.extend(args.iter().cloned());
    let cli = remediate::cli::Cli::try_parse_from(&argv).expect("valid arguments");
    remediate::exit_code(remediate::run(cli).await)
}

pub(crate) fn results(dir: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(dir.join("results.csv")).expect("results.csv exists");
    reader.deserialize().map(|row| row.expect("a well-formed row")).collect()
}

pub(crate) fn summary(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).expect("summary.json exists")).unwrap()
}

pub(crate) fn stats(sim: &Simulator) -> Value {
    sim.service().stats_json()
}

pub(crate) fn state(sim: &Simulator) -> Value {
    sim.service().state_json()
}

/// Users in the simulator's state, by lower-case UPN and by lower-case mail.
pub(crate) fn users_by_address(state: &Value) -> HashMap<String, Value> {
    let mut map = HashMap::new();
    for user in state["users"].as_array().unwrap() {
        map.insert(user["userPrincipalName"].as_str().unwrap().to_lowercase(), user.clone());
        map.insert(user["mail"].as_str().unwrap().to_lowercase(), user.clone());
    }
    map
}

/// A token for `scope` from the simulator's token endpoint.
pub(crate) async fn token(sim: &Simulator, scope: &str) -> String {
    sim.client_token(&reqwest::Client::new(), scope).await.expect("a token")
}

pub(crate) const GRAPH: &str = "https://graph.microsoft.com/.default";
pub(crate) const EXCHANGE: &str = "https://outlook.office365.com/.default";

/// Changes a mailbox's SMTP AUTH directly, as another admin would behind the tool's back.
pub(crate) async fn change_behind_our_back(sim: &Simulator, upn: &str, disabled: bool) {
    let bearer = token(sim, EXCHANGE).await;
    let url = format!("{}/adminapi/beta/{}/InvokeCommand", sim.url(), sim.app().tenant_id);
    let body = serde_json::json!({"CmdletInput": {"CmdletName": "Set-CASMailbox", "Parameters": {"Identity": upn, "SmtpClientAuthenticationDisabled": disabled}}});
    let answer = reqwest::Client::new().post(url).bearer_auth(bearer).json(&body).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
}

/// `apply CSV --profile smtp-auth-fix --yes --report-dir REPORT`.
pub(crate) fn fix_args(csv: &Path, report: &Path) -> Vec<String> {
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

pub(crate) fn roomy(count: usize, latency_ms: u64) -> SimConfig {
    SimConfig {
        population: Population::Generated { count },
        seed: 7,
        graph_rate: 4000.0,
        graph_window: Duration::from_secs(1),
        graph_write_rate: 1000.0,
        graph_write_window: Duration::from_secs(1),
        exchange_rate: 1000.0,
        exchange_window: Duration::from_secs(1),
        exchange_inflight: 12,
        latency: Duration::from_millis(latency_ms),
        ..SimConfig::default()
    }
}

/// `args` run against `sim` at the tests' tuning: with `--yes` for a verb that changes, the report
/// directory, the connection and [`TUNING`].
pub(crate) fn against(mut args: Vec<String>, report: &Path, sim: &Simulator, dir: &Path) -> Vec<String> {
    if !matches!(args.first().map(String::as_str), Some("audit" | "plan")) {
        args.push("--yes".into());
    }
    args.extend(["--report-dir".into(), report.display().to_string()]);
    args.extend(connection_args(sim, dir));
    args.extend(TUNING.map(String::from));
    args
}

pub(crate) const TUNING: [&str; 10] = [
    "--graph-rps",
    "3000",
    "--graph-write-rps",
    "800",
    "--exchange-rps",
    "800",
    "--exchange-inflight",
    "10",
    "--concurrency",
    "32",
];

/// The UPNs of the tenant's users whose device can sign in at all (a shared mailbox's sign-in is
/// blocked, and the fix's smtp-auth-effective verdict then rightly says the run is not done):
/// the targets of a fix that must end with exit 0.
pub(crate) fn upns(state: &Value) -> Vec<String> {
    state["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["accountEnabled"] != false)
        .map(|u| u["userPrincipalName"].as_str().unwrap().to_string())
        .collect()
}

/// The six variables `remediate sim` prints: the app's credentials and the three base URLs.
pub(crate) fn environment(sim: &Simulator) -> Vec<(&'static str, String)> {
    let (app, url) = (sim.app(), sim.url());
    vec![
        ("AZURE_TENANT_ID", app.tenant_id.clone()),
        ("AZURE_CLIENT_ID", app.client_id.clone()),
        ("AZURE_CLIENT_SECRET", app.client_secret.clone()),
        ("REMEDIATE_LOGIN_URL", url.clone()),
        ("REMEDIATE_GRAPH_URL", url.clone()),
        ("REMEDIATE_EXCHANGE_URL", url),
    ]
}

/// Writes a script a test puts on PATH in place of a real program.
pub(crate) fn write_executable(path: &Path, script: &str) {
    std::fs::write(path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// `remediate ARGS…` as a child process pointed at `sim`, stderr piped, stdout dropped.
pub(crate) fn spawn(sim: &Simulator, dir: &Path, args: &[String]) -> Child {
    command(sim, dir, args).spawn().expect("the binary starts")
}

/// The command `spawn` starts, for a test that wants stdout too.
pub(crate) fn command(sim: &Simulator, dir: &Path, args: &[String]) -> Command {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("remediate"));
    command.args(args).args(connection_args(sim, dir)).args(TUNING);
    command.env_remove("RUST_LOG").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    command.kill_on_drop(true);
    command
}

/// The settings of every user (SMTP AUTH, per-user MFA, and the properties of `Get-CASMailbox`
/// and `Get-Mailbox`), and the tenant's security defaults: what "the tenant's state" is.
pub(crate) fn settings_of(state: &Value) -> (Value, HashMap<String, (Value, Value, Value)>) {
    let users = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let key = u["userPrincipalName"].as_str().unwrap().to_string();
            let listed = [u["casMailbox"].clone(), u["mailbox"].clone()];
            (key, (u["smtpClientAuthenticationDisabled"].clone(), u["perUserMfaState"].clone(), listed.into()))
        })
        .collect();
    (state["securityDefaultsEnabled"].clone(), users)
}

/// The mailboxes a one-column CSV names: its lines but the header.
pub(crate) fn targets_in(csv: &Path) -> usize {
    std::fs::read_to_string(csv).unwrap().lines().skip(1).filter(|l| !l.trim().is_empty()).count()
}

/// Every (target, setting) of the run has exactly one row: the tenant's settings one each, and
/// each of `targets` targets one per setting the run works on (smtp-auth, per-user-mfa and the
/// smtp-auth-effective verdict, for the fix).
pub(crate) fn assert_every_row_once(report: &Path, targets: usize) {
    let rows = results(report);
    let mut seen = HashMap::new();
    for row in &rows {
        *seen.entry((row["line"].clone(), row["setting"].clone())).or_insert(0) += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "rows reported more than once: {repeated:?}");
    let settings = |tenant: bool| {
        let names: std::collections::HashSet<&String> =
            rows.iter().filter(|r| (r["line"] == "0") == tenant).map(|r| &r["setting"]).collect();
        names.len()
    };
    let mut per_line: HashMap<&String, Vec<&String>> = HashMap::new();
    for row in rows.iter().filter(|r| r["line"] != "0") {
        per_line.entry(&row["line"]).or_default().push(&row["setting"]);
    }
    let short: Vec<_> = per_line.iter().filter(|(_, s)| s.len() < settings(false)).take(3).collect();
    assert_eq!(
        rows.len(),
        settings(true) + settings(false) * targets,
        "a row per tenant setting and per target setting; short: {short:?}"
    );
}

pub(crate) fn resume_args(report: &Path) -> Vec<String> {
    vec!["apply".into(), "--resume".into(), report.display().to_string(), "--yes".into()]
}

/// Sends SIGINT, as Ctrl-C does.
pub(crate) fn interrupt(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(status.success());
}
