//! The README's cron block, run as written on two nights in a row against a simulated tenant:
//! the audit finds drift on night one (exit 3, never 2 for want of a baseline), the nightly apply
//! fixes it, and night two's audit, with night one's report as its baseline, exits 0.

use std::path::Path;
use std::process::Command;

use remediate_sim::Simulator;

use crate::support::{environment, roomy, scratch, start, write_executable};

/// The README's first ```sh block under the cron heading, and the command of its ```cron line.
fn cron_block() -> (String, String) {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("## Compliance sweeps from cron").nth(1).expect("the cron section");
    let block = |fence: &str| {
        let start = section.find(fence).unwrap_or_else(|| panic!("a {fence} block")) + fence.len();
        section[start..].split("```").next().unwrap().trim().to_string()
    };
    let audit = block("```sh\n");
    // A crontab line: five time fields, then the command, where cron turns `\%` into `%`.
    let line = block("```cron\n");
    let command = line.splitn(6, ' ').nth(5).expect("a crontab line").replace("\\%", "%");
    (audit, command)
}

/// Runs `script` in bash as cron would, with `remediate` and a `date` that says `night` on PATH,
/// the README's paths under `root`, and the tenant's credentials in the environment.
pub fn run(script: &str, root: &Path, night: &str, sim: &Simulator) -> i32 {
    let script = script.replace("/var/lib/remediate", &root.join("lib").display().to_string());
    let script = script.replace("/etc/remediate", &root.join("etc").display().to_string());
    let script = script.replace("/var/log", &root.join("log").display().to_string());
    let bin = root.join("bin");
    write_executable(&bin.join("date"), &format!("#!/bin/sh\necho {night}\n"));
    let remediate = assert_cmd::cargo::cargo_bin("remediate");
    let path =
        format!("{}:{}:{}", bin.display(), remediate.parent().unwrap().display(), std::env::var("PATH").unwrap());
    let status = Command::new("bash")
        .args(["-euc", &script])
        .current_dir(root)
        .env("PATH", path)
        .env("HOME", root)
        .env("XDG_CACHE_HOME", root.join("cache"))
        .envs(environment(sim))
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    status.code().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_cron_block_runs_as_written_on_night_one_and_night_two() {
    let sim = start(roomy(40, 0)).await;
    let dir = scratch();
    let root = dir.path();
    for folder in ["bin", "lib", "etc", "log"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
    }
    std::fs::write(root.join("etc/exclude.txt"), "# service accounts that still send with SMTP AUTH\n").unwrap();
    // The fix's --record-exceptions makes it; a tenant that never ran the fix starts it empty.
    std::fs::write(root.join("etc/smtp-exceptions.csv"), "identity,setting,value,owner,reason,expires\n").unwrap();
    let (audit, apply) = cron_block();
    let sim_ref = &sim;
    let night = |script: String, date: &'static str| {
        let root = root.to_path_buf();
        async move { tokio::task::block_in_place(|| run(&script, &root, date, sim_ref)) }
    };

    assert_eq!(night(audit.clone(), "20261128T023000").await, 3, "night one: drift, and no baseline yet");
    assert_eq!(night(apply.clone(), "2026-11-28").await, 0, "night one's apply fixes it");
    assert_eq!(
        night(audit.clone(), "20261129T023000").await,
        0,
        "night two: compliant, with night one as its baseline"
    );
    let baseline_of = |night: &str| {
        let summary = std::fs::read_to_string(root.join(format!("lib/audit/{night}/summary.json"))).unwrap();
        let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
        summary["drift"]["baseline"].as_str().unwrap_or_default().to_string()
    };
    assert!(baseline_of("20261129T023000").ends_with("20261128T023000"), "night two compared itself with night one");
    // Night three Graph is out of reach: no user can be read, and the report says it did not finish.
    let failing = format!("{} --graph-url http://127.0.0.1:9 --max-attempts 1", audit.trim());
    assert_eq!(night(failing, "20261130T023000").await, 1, "night three could not read the tenant");
    assert_eq!(night(audit, "20261201T023000").await, 0, "night four");
    assert!(
        baseline_of("20261201T023000").ends_with("20261129T023000"),
        "the failed night is never the baseline: {}",
        baseline_of("20261201T023000")
    );
    let log = std::fs::read_to_string(root.join("log/remediate.log")).unwrap();
    for line in log.lines() {
        assert!(serde_json::from_str::<serde_json::Value>(line).is_ok(), "a log line that is not JSON: {line}");
    }
}
