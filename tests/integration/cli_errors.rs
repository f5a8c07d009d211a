//! The real binary: mistakes a user can make exit 2 with a message that says what to do; the
//! quick start works; `validate` and `sim` behave as documented.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use assert_cmd::Command;
use remediate_sim::{Population, SimConfig};

use crate::support::{scratch, start, stats};

const CREDENTIAL_VARIABLES: [&str; 8] = [
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "REMEDIATE_LOGIN_URL",
    "REMEDIATE_GRAPH_URL",
    "REMEDIATE_EXCHANGE_URL",
];

fn remediate() -> Command {
    let mut command = Command::cargo_bin("remediate").unwrap();
    for name in CREDENTIAL_VARIABLES {
        command.env_remove(name);
    }
    command.env_remove("RUST_LOG").write_stdin("");
    // Each test's runs lock their tenant in a state directory of their own, under target/ (not
    // left behind in the system's temporary directory).
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("remediate-test-{}", uuid::Uuid::new_v4()));
    command.env("XDG_CACHE_HOME", cache);
    command
}

fn sample() -> String {
    format!("{}/samples/mailboxes.csv", env!("CARGO_MANIFEST_DIR"))
}

fn expect_exit_2(command: &mut Command, needle: &str) {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

#[test]
fn user_mistakes_exit_2_and_say_what_to_do() {
    expect_exit_2(
        remediate().args(["plan", "/nonexistent/mailboxes.csv", "--profile", "smtp-auth-fix"]),
        "/nonexistent/mailboxes.csv: cannot open",
    );
    expect_exit_2(
        remediate().args(["plan", &sample(), "--set", "smtp-auth=maybe"]),
        "use one of enabled, disabled, inherit",
    );
    expect_exit_2(remediate().args(["plan", &sample(), "--set", "colour=blue"]), "unknown setting 'colour'");
    expect_exit_2(remediate().args(["plan", &sample()]), "--profile smtp-auth-fix");
    expect_exit_2(remediate().args(["plan", &sample(), "--profile", "nope"]), "no built-in profile");
    expect_exit_2(
        remediate().args(["plan", &sample(), "--profile", "smtp-auth-fix", "--concurrency", "0"]),
        "--concurrency",
    );
    expect_exit_2(remediate().args(["plan", &sample(), "--profile", "smtp-auth-fix"]), "AZURE_TENANT_ID");
    expect_exit_2(
        remediate().args(["plan", &sample(), "--profile", "smtp-auth-fix", "--tenant-id", "t", "--client-id", "c"]),
        "AZURE_CLIENT_SECRET",
    );
    expect_exit_2(
        remediate()
            .args([
                "plan",
                &sample(),
                "--profile",
                "smtp-auth-fix",
                "--tenant-id",
                "t",
                "--client-id",
                "c",
                "--graph-url",
                "http://example.com",
            ])
            .env("AZURE_CLIENT_SECRET", "x"),
        "only https://",
    );
    expect_exit_2(remediate().args(["apply", &sample(), "--client-secret", "x"]), "--client-secret");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_and_a_missing_yes_change_nothing() {
    let sim = start(SimConfig { population: Population::Generated { count: 20 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let url = sim.url();
    let app = sim.app().clone();
    let base = move |secret: &str| {
        let mut command = remediate();
        command
            .env("AZURE_TENANT_ID", &app.tenant_id)
            .env("AZURE_CLIENT_ID", &app.client_id)
            .env("AZURE_CLIENT_SECRET", secret)
            .env("REMEDIATE_LOGIN_URL", &url)
            .env("REMEDIATE_GRAPH_URL", &url)
            .env("REMEDIATE_EXCHANGE_URL", &url);
        command
    };
    let report = dir.path().join("r1").display().to_string();
    let secret = sim.app().client_secret.clone();
    let base_for_secret = base.clone();
    tokio::task::spawn_blocking(move || {
        expect_exit_2(
            base("not-the-secret").args(["plan", &sample(), "--profile", "smtp-auth-fix", "--report-dir", &report]),
            "AADSTS7000215",
        );
        let output = base_for_secret(&secret)
            .args(["apply", &sample(), "--profile", "smtp-auth-fix", "--report-dir", &report])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--yes") && stderr.contains("nothing was changed"), "{stderr}");
        assert!(!stderr.contains(&secret), "the secret never reaches the output");
    })
    .await
    .unwrap();
    assert_eq!(stats(&sim)["writes_total"], 0);
}

#[test]
fn the_quick_start_runs_and_prints_the_recap() {
    let dir = scratch();
    let report = dir.path().join("report");
    let output = remediate()
        .args(["apply", &sample(), "--profile", "smtp-auth-fix", "--simulate", "--yes", "--report-dir"])
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("apply finished") && stdout.contains("smtp-auth") && stdout.contains("report:"),
        "{stdout}"
    );
    assert!(report.join("results.csv").exists() && report.join("summary.json").exists());
}

#[test]
fn validate_lists_bad_rows_with_their_lines() {
    let dir = scratch();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, "UserPrincipalName\nok@contoso.com\nnot an address\nOK@contoso.com\n").unwrap();
    let output = remediate().arg("validate").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("bad.csv:3: 'not an address' is not an address"), "{stdout}");
    assert!(stdout.contains("bad.csv:4:") && stdout.contains("duplicate of line 2"), "{stdout}");
    assert!(stdout.contains("1 valid targets, 2 bad rows"), "{stdout}");
}

#[test]
fn sim_prints_the_environment_then_listens() {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("remediate"))
        .args(["sim", "--listen", "127.0.0.1:0", "--mailboxes", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("listening on ");
        printed.push(line);
        if done {
            break;
        }
    }
    child.kill().ok();
    child.wait().ok();
    let names: Vec<&str> = printed.iter().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(
        names[..6],
        [
            "export AZURE_TENANT_ID",
            "export AZURE_CLIENT_ID",
            "export AZURE_CLIENT_SECRET",
            "export REMEDIATE_LOGIN_URL",
            "export REMEDIATE_GRAPH_URL",
            "export REMEDIATE_EXCHANGE_URL"
        ]
    );
    let url = printed[3].split_once('=').unwrap().1;
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"), "{url}");
    assert_eq!(printed[6], format!("listening on {url}"));
}

#[test]
fn strict_refuses_a_file_with_bad_rows_before_anything_happens() {
    let corpus = format!("{}/tests/corpus/duplicates.csv", env!("CARGO_MANIFEST_DIR"));
    let output =
        remediate().args(["apply", &corpus, "--profile", "smtp-auth-fix", "--strict", "--yes"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--strict: 1 bad rows") && stderr.contains("duplicates.csv:3:"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_file_others_can_read_gets_a_warning() {
    let sim = start(SimConfig { population: Population::Generated { count: 5 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, &sim.app().client_secret).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut command = remediate();
    command
        .args(["plan", &sample(), "--set", "smtp-auth=disabled", "--max-not-found", "1", "--client-secret-file"])
        .arg(&secret)
        .args(["--tenant-id", &sim.app().tenant_id, "--client-id", &sim.app().client_id])
        .args(["--login-url", &sim.url(), "--graph-url", &sim.url(), "--exchange-url", &sim.url(), "--report-dir"])
        .arg(dir.path().join("report"));
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("can be read by other users") && stderr.contains("chmod 600"), "{stderr}");
}

#[test]
fn a_closed_stdout_ends_the_printout_quietly_not_in_a_panic() {
    // The reader is gone before the tool writes a byte, as with `remediate profiles | head -0`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("remediate"))
        .arg("profiles")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
