//! The promises a hostile review and a new administrator's first week broke, one test each: a
//! resume refuses a changed desired state.

use remediate::sim::{Population, SimConfig};

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
