//! The promises a hostile review and a new administrator's first week broke, one test each: a
//! resume refuses a changed desired state.

use remediate_sim::{Population, SimConfig};

use crate::support::{TUNING, connection_args, run, scratch, start, state, upns, write_csv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_refuses_a_profile_that_changed_since_the_run_began() {
    let sim = start(SimConfig { population: Population::Generated { count: 6 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let profile = dir.path().join("sweep.toml");
    std::fs::write(&profile, "description = \"nightly\"\n[settings]\nsmtp-auth = \"disabled\"\n").unwrap();
    let report = dir.path().join("report");
    let mut apply = vec!["apply".to_string(), csv.display().to_string(), "--profile".into()];
    apply.extend([profile.display().to_string(), "--yes".into(), "--report-dir".into(), report.display().to_string()]);
    apply.extend(connection_args(&sim, dir.path()));
    apply.extend(TUNING.map(String::from));
    assert_eq!(run(&apply).await, 0);

    let mut resume = vec!["apply".to_string(), "--resume".into(), report.display().to_string(), "--yes".into()];
    resume.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&resume).await, 0, "the same profile resumes");
    std::fs::write(&profile, "description = \"nightly\"\n[settings]\nsmtp-auth = \"enabled\"\n").unwrap();
    assert_eq!(run(&resume).await, 2, "an edited profile is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_targets_are_mostly_missing_is_not_green() {
    let present = vec!["here@contoso.com".to_string()];
    let sim = start(SimConfig {
        population: Population::Identities(std::sync::Arc::new(present.clone())),
        ..SimConfig::default()
    })
    .await;
    let dir = scratch();
    let mut listed = present.clone();
    listed.extend((0..3).map(|i| format!("elsewhere{i}@fabrikam.com")));
    let csv = write_csv(dir.path(), "wrong-tenant.csv", "UserPrincipalName", &listed);
    let audit = |report: &str, extra: &[&str]| {
        let mut args =
            vec!["audit".to_string(), csv.display().to_string(), "--set".into(), "per-user-mfa=disabled".into()];
        args.extend(["--report-dir".into(), dir.path().join(report).display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(connection_args(&sim, dir.path()));
        args
    };
    let code = run(&audit("strict", &[])).await;
    assert_eq!(code, 1, "three of four targets missing is a wrong tenant or file, not a clean audit");
    let summary = crate::support::summary(&dir.path().join("strict"));
    assert_eq!(summary["not_found"], 3);
    assert!(summary["unfinished"].to_string().contains("not in the tenant's directory"), "{summary}");
    let code = run(&audit("lenient", &["--max-not-found", "0.8"])).await;
    assert_ne!(code, 1, "below the share asked for, missing targets are skipped rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_is_quiet_when_the_night_went_well() {
    let sim = start(SimConfig { population: Population::Generated { count: 8 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("night");
    let args: Vec<String> = ["-q", "apply", &csv.display().to_string(), "--profile", "smtp-auth-lockdown", "--yes"]
        .into_iter()
        .map(String::from)
        .chain(["--report-dir".to_string(), report.display().to_string()])
        .collect();
    let mut command = crate::support::command(&sim, dir.path(), &args);
    command.stdout(std::process::Stdio::piped());
    let output = command.output().await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "", "nothing for cron to mail");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    let summary = crate::support::summary(&report);
    assert!(summary["notes"].to_string().contains("InvokeCommand"), "the standing note is kept: {summary}");
}

/// The command an interrupted run prints to finish it, run as printed: from another directory,
/// with none of the connection flags or variables the run was started with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_finish_command_works_as_printed() {
    let dir = scratch();
    let sim = start(crate::support::roomy(300, 20)).await;
    let csv = write_csv(dir.path(), "mailboxes.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("night");
    let mut writes = sim.service().writes();
    let args: Vec<String> = ["apply", &csv.display().to_string(), "--set", "smtp-auth=disabled", "--yes"]
        .into_iter()
        .map(String::from)
        .chain(["--report-dir".to_string(), report.display().to_string(), "--grace".into(), "10s".into()])
        .collect();
    let child = crate::support::spawn(&sim, dir.path(), &args);
    writes.wait_for(|&n| n >= 20).await.unwrap();
    crate::support::interrupt(&child);
    let output = child.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(130));
    let printed = crate::support::summary(&report)["finish_command"].as_str().unwrap().to_string();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let remediate = assert_cmd::cargo::cargo_bin("remediate");
    let path = format!("{}:/usr/bin:/bin", remediate.parent().unwrap().display());
    let finished = tokio::process::Command::new("bash")
        .args(["-c", &printed])
        .current_dir(&elsewhere)
        .env_clear()
        .env("PATH", path)
        .env("HOME", &elsewhere)
        .output()
        .await
        .unwrap();
    assert_eq!(finished.status.code(), Some(0), "`{printed}`: {}", String::from_utf8_lossy(&finished.stderr));
    assert!(!elsewhere.join(".cache").exists(), "the run's own state directory was used, not the default");
    assert!(crate::support::results(&report).iter().all(|r| r["outcome"] != "unfinished"));
}

/// One tenant named three ways in the tenant column (its id in capitals, its id, its initial
/// domain) is one lane and one lock: the run does not lock itself out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_however_the_tenant_column_spells_it() {
    let sim = start(SimConfig { population: Population::Generated { count: 12 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let app = sim.app();
    let spellings = [app.tenant_id.to_uppercase(), app.tenant_id.clone(), app.domain.clone()];
    let rows: Vec<String> = upns(&state(&sim))
        .iter()
        .enumerate()
        .map(|(i, upn)| format!("{upn},{}", spellings[i % spellings.len()]))
        .collect();
    let csv = write_csv(dir.path(), "tenants.csv", "UserPrincipalName,tenant", &rows);
    let report = dir.path().join("report");
    let mut args = vec!["apply".to_string(), csv.display().to_string(), "--set".into(), "smtp-auth=disabled".into()];
    args.extend(["--yes".into(), "--report-dir".into(), report.display().to_string()]);
    args.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&args).await, 0, "one lane, one lock");
    let summary = crate::support::summary(&report);
    assert_eq!(summary["by_tenant"].as_object().unwrap().len(), 1, "{summary}");
    assert_eq!(summary["targets"], rows.len() as u64);
}

/// A run that will be refused as busy is refused before it reads anything: the lock comes before
/// the listing, which on a large tenant takes minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_tenant_is_refused_before_anything_is_listed() {
    let sim = start(SimConfig { population: Population::Generated { count: 30 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let held =
        remediate::testing::acquire_lock(&dir.path().join("state"), &sim.app().tenant_id, "apply", None).unwrap();
    let mut args: Vec<String> =
        ["apply", "--all-mailboxes", "--set", "smtp-auth=disabled", "--yes"].map(String::from).to_vec();
    args.extend(["--report-dir".into(), dir.path().join("report").display().to_string()]);
    args.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&args).await, 2, "busy");
    let received = sim.service().received_json().to_string();
    assert!(!received.contains("Get-CASMailbox"), "nothing was listed before the refusal");
    drop(held);
}

/// The exit code comes from what the run did, not only from the file it reads back: a journal
/// replaced or cut short while the run goes is said, and the run is not green.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_changed_under_the_run_is_said_and_not_green() {
    for damage in ["replaced", "cut"] {
        let dir = scratch();
        let sim = start(crate::support::roomy(200, 20)).await;
        let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
        let report = dir.path().join("report");
        let mut writes = sim.service().writes();
        let args: Vec<String> = ["apply", &csv.display().to_string(), "--set", "smtp-auth=disabled", "--yes"]
            .into_iter()
            .map(String::from)
            .chain(["--report-dir".to_string(), report.display().to_string()])
            .collect();
        let child = crate::support::spawn(&sim, dir.path(), &args);
        writes.wait_for(|&n| n >= 20).await.unwrap();
        let journal = report.join("journal.jsonl");
        let text = std::fs::read(&journal).unwrap();
        match damage {
            "replaced" => {
                let planted = report.join("planted");
                std::fs::write(&planted, &text[..text.len() / 2]).unwrap();
                std::fs::rename(&planted, &journal).unwrap();
            }
            _ => {
                let file = std::fs::OpenOptions::new().write(true).open(&journal).unwrap();
                file.set_len(text.len() as u64 / 2).unwrap();
            }
        }
        let output = child.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{damage}: {stderr}");
        assert!(stderr.contains("journal"), "{damage}: said: {stderr}");
        let summary = crate::support::summary(&report);
        assert!(summary["unfinished"].to_string().contains("journal changed under the run"), "{damage}: {summary}");
        assert_eq!(summary["complete"], false);
        let finish = summary["finish_command"].as_str().unwrap_or_default();
        assert!(finish.contains("apply --resume"), "{damage}: the resume finishes it: {summary}");
    }
}

/// A write whose answer never came is not sent again before it could have landed, so a late
/// first copy neither counts as a second write nor undoes the rollback that follows. The
/// simulator drops the connection of some writes at once and carries them out 400 ms later,
/// well inside the client's 1 s request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_lands_after_its_connection_dropped_is_never_sent_again() {
    let config = SimConfig {
        fault_rate: 0.3,
        late_landing: Some(std::time::Duration::from_millis(400)),
        ..crate::support::roomy(120, 5)
    };
    let sim = start(config).await;
    let found = crate::support::settings_of(&state(&sim));
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("apply");
    let timeout = ["--request-timeout".to_string(), "1s".into()];
    let mut apply: Vec<String> = ["apply", &csv.display().to_string(), "--set", "smtp-auth=disabled", "--yes"]
        .into_iter()
        .map(String::from)
        .collect();
    apply.extend(["--report-dir".into(), report.display().to_string()]);
    apply.extend(connection_args(&sim, dir.path()).into_iter().chain(timeout.clone()));
    apply.extend(TUNING.map(String::from));
    assert_eq!(run(&apply).await, 0);
    let counts = crate::support::stats(&sim);
    assert!(counts["writes_landed_late"].as_u64().unwrap() > 0, "the fault happened: {counts}");
    assert_eq!(counts["noop_writes"], 0, "no write was sent again before it could land: {counts}");

    let mut rollback = vec!["rollback".to_string(), report.display().to_string(), "--yes".into()];
    rollback.extend(["--report-dir".into(), dir.path().join("rollback").display().to_string()]);
    rollback.extend(connection_args(&sim, dir.path()).into_iter().chain(timeout));
    rollback.extend(TUNING.map(String::from));
    assert_eq!(run(&rollback).await, 0);
    sim.service().late_writes_landed().await;
    assert_eq!(crate::support::settings_of(&state(&sim)), found, "no late copy undid the rollback");
    assert_eq!(crate::support::stats(&sim)["noop_writes"], 0);
}
