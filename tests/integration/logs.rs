//! What a log shipper reads: with `--log-format json`, every line the binary writes to stderr is
//! one JSON object, warnings, errors, what is left to do and the recap included.

use remediate_sim::{Population, SimConfig};
use serde_json::Value;

use crate::support::{command, scratch, start, state, upns, write_csv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stderr_line_of_a_json_run_is_one_json_object() {
    // A permission the app lacks fails rows; the fix weakens the tenant (a warning); the run
    // ends with a recap and the command that finishes it.
    let sim = start(SimConfig {
        population: Population::Generated { count: 20 },
        deny_permissions: vec!["Policy.ReadWrite.AuthenticationMethod".into()],
        ..SimConfig::default()
    })
    .await;
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("apply");
    let args: Vec<String> = ["--log-format", "json", "apply", &csv.display().to_string(), "--profile", "smtp-auth-fix"]
        .into_iter()
        .chain(["--yes", "--output", "json", "--report-dir", &report.display().to_string()])
        .map(String::from)
        .collect();
    let mut command = command(&sim, dir.path(), &args);
    let output = command.stdout(std::process::Stdio::piped()).output().await.unwrap();
    assert_eq!(output.status.code(), Some(1), "rows failed");
    let stderr = String::from_utf8(output.stderr).unwrap();
    let events: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{stderr}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["warning", "to finish", "recap"] {
        assert!(kinds.contains(&kind), "a '{kind}' event: {kinds:?}");
    }
    let recap = events.iter().find(|e| e["kind"] == "recap").unwrap();
    assert_eq!(recap["exit_code"], 1);
    assert!(recap["counts"].is_object(), "typed, not JSON in a string: {recap}");
    assert!(recap["counts"]["failed"].as_u64().unwrap() > 0 && recap["finish_command"].is_string(), "{recap}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes in a pipe");

    // --output json: stdout is the summary alone, one object a script reads.
    let stdout = String::from_utf8(output.stdout).unwrap();
    let [line] = stdout.lines().collect::<Vec<_>>()[..] else { panic!("one line on stdout: {stdout}") };
    let summary: Value = serde_json::from_str(line).unwrap();
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(summary["report_dir"], report.display().to_string());
    assert!(summary["counts"]["failed"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["finish_command"].as_str().unwrap().contains("--retry-failed"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_run_refused_before_it_starts_still_answers_on_stdout() {
    // A cron night after the client secret was rotated: nothing runs, and the script that reads
    // stdout learns the exit code and why, as one object, not an empty line.
    let sim = start(SimConfig { population: Population::Generated { count: 3 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let args: Vec<String> =
        ["audit", &csv.display().to_string(), "--profile", "smtp-auth-lockdown", "--output", "json"]
            .into_iter()
            .map(String::from)
            .collect();
    let mut command = command(&sim, dir.path(), &args);
    std::fs::write(dir.path().join("secret.txt"), "not-the-secret").unwrap();
    let output = command.stdout(std::process::Stdio::piped()).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let [line] = stdout.lines().collect::<Vec<_>>()[..] else { panic!("one line on stdout: {stdout}") };
    let answer: Value = serde_json::from_str(line).unwrap();
    assert_eq!(answer["exit_code"], 2);
    assert!(answer["error"].as_str().unwrap().contains("invalid_client"), "{answer}");
    assert!(!stdout.contains("not-the-secret"), "the secret never reaches stdout");
}
