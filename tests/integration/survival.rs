//! Runs that survive: SIGKILL at random moments and resume, SIGINT, overlapping runs, rollback.
//! The runner is the real binary; the simulator runs in the test and tells it when the Nth write
//! has happened, which is when the test strikes.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{
    TUNING, assert_every_row_once, connection_args, fix_args, interrupt, results, resume_args, roomy, run, scratch,
    settings_of, spawn, start, state, stats, summary, targets_in, upns, write_csv,
};

/// The state one uninterrupted run leaves, from a second simulator with the same seed.
async fn reference_state(count: usize, dir: &Path) -> Value {
    let sim = start(roomy(count, 1)).await;
    let csv = write_csv(dir, "reference.csv", "UserPrincipalName", &upns(&state(&sim)));
    let mut args = fix_args(&csv, &dir.join("reference"));
    args.extend(connection_args(&sim, dir));
    args.extend(TUNING.map(String::from));
    assert_eq!(run(&args).await, 0);
    state(&sim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_then_resume_loses_nothing_and_repeats_nothing() {
    const MAILBOXES: usize = 1000;
    let dir = scratch();
    let sim = start(roomy(MAILBOXES, 3)).await;
    let csv = write_csv(dir.path(), "mailboxes.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("report");
    let mut writes = sim.service().writes();
    let mut rng = fastrand::Rng::with_seed(2026);
    let mut kills = 0;
    let mut first = true;
    while kills < 10 {
        let args = if first { fix_args(&csv, &report) } else { resume_args(&report) };
        first = false;
        let mut child = spawn(&sim, dir.path(), &args);
        let strike_at = *writes.borrow() + rng.u64(1..40);
        tokio::select! {
            // The Ref that wait_for returns holds the watch's read lock: let it go at once.
            _ = async { writes.wait_for(|&n| n >= strike_at).await.map(|_| ()) } => {
                child.start_kill().unwrap();
                child.wait().await.unwrap();
                kills += 1;
            }
            status = child.wait() => panic!("the run ended ({status:?}) before kill {kills}: make it longer"),
        }
    }
    let finish = spawn(&sim, dir.path(), &resume_args(&report)).wait_with_output().await.unwrap();
    assert_eq!(finish.status.code(), Some(0), "{}", String::from_utf8_lossy(&finish.stderr));
    assert_every_row_once(&report, targets_in(&csv));
    let counts = stats(&sim);
    assert_eq!(counts["noop_writes"], 0, "nothing was written twice: {counts}");
    assert_eq!(counts["security_defaults_writes"], 1);
    let reference = reference_state(MAILBOXES, dir.path()).await;
    assert_eq!(
        settings_of(&state(&sim)),
        settings_of(&reference),
        "the tenant ends as one uninterrupted run leaves it"
    );
    assert_eq!(summary(&report)["resumed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_finishes_in_flight_work_reports_and_resumes() {
    const MAILBOXES: usize = 300;
    let dir = scratch();
    let sim = start(roomy(MAILBOXES, 20)).await;
    let csv = write_csv(dir.path(), "mailboxes.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("report");
    let mut writes = sim.service().writes();
    let mut args = fix_args(&csv, &report);
    args.extend(["--grace".into(), "10s".into()]);
    let child = spawn(&sim, dir.path(), &args);
    writes.wait_for(|&n| n >= 30).await.unwrap();
    interrupt(&child);
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains(&format!("remediate apply --resume {}", report.display())), "{stderr}");
    let partial = summary(&report);
    assert_eq!(partial["interrupted"], true);
    assert_eq!(partial["exit_code"], 130);
    let done = results(&report).len();
    assert!(done > 0 && done < 1 + 2 * MAILBOXES, "{done} rows after an interrupt");
    let intents_left = std::fs::read_to_string(report.join("journal.jsonl")).unwrap();
    let rows = intents_left.lines().filter(|l| l.contains(r#""record":"row""#)).count();
    assert_eq!(rows, done, "the report is the journal's rows");

    let finish = spawn(&sim, dir.path(), &resume_args(&report)).wait_with_output().await.unwrap();
    assert_eq!(finish.status.code(), Some(0), "{}", String::from_utf8_lossy(&finish.stderr));
    assert_every_row_once(&report, targets_in(&csv));
    assert_eq!(stats(&sim)["noop_writes"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_tenant_is_refused_until_the_first_dies() {
    let dir = scratch();
    let sim = start(roomy(300, 20)).await;
    let csv = write_csv(dir.path(), "mailboxes.csv", "UserPrincipalName", &upns(&state(&sim)));
    let mut writes = sim.service().writes();
    let mut first = spawn(&sim, dir.path(), &fix_args(&csv, &dir.path().join("first")));
    writes.wait_for(|&n| n >= 1).await.unwrap();
    let pid = first.id().unwrap();

    let second = spawn(&sim, dir.path(), &fix_args(&csv, &dir.path().join("second"))).wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("pid {pid}")) && stderr.contains("is busy"), "{stderr}");
    assert!(!dir.path().join("second").join("journal.jsonl").exists(), "the refused run did nothing");

    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let third = spawn(&sim, dir.path(), &resume_args(&dir.path().join("first"))).wait_with_output().await.unwrap();
    assert_eq!(third.status.code(), Some(0), "no manual clean-up: {}", String::from_utf8_lossy(&third.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_starting_state_and_leaves_conflicts_alone() {
    let dir = scratch();
    let sim = start(roomy(200, 1)).await;
    let initial = state(&sim);
    let csv = write_csv(dir.path(), "mailboxes.csv", "UserPrincipalName", &upns(&initial));
    let applied = dir.path().join("apply");
    let mut args = fix_args(&csv, &applied);
    args.extend(connection_args(&sim, dir.path()));
    args.extend(TUNING.map(String::from));
    assert_eq!(run(&args).await, 0);

    // Someone turns SMTP AUTH off again on one mailbox the apply had turned on.
    let changed = results(&applied)
        .into_iter()
        .find(|r| r["setting"] == "smtp-auth" && r["outcome"] == "changed" && r["before"] == "inherit")
        .unwrap();
    crate::support::change_behind_our_back(&sim, &changed["identity"], true).await;

    let rolled_back = dir.path().join("rollback");
    let mut args = vec!["rollback".to_string(), applied.display().to_string(), "--yes".into(), "--report-dir".into()];
    args.push(rolled_back.display().to_string());
    args.extend(connection_args(&sim, dir.path()));
    args.extend(TUNING.map(String::from));
    assert_eq!(run(&args).await, 1, "a conflict needs a look");
    let rows = results(&rolled_back);
    let conflicts: Vec<_> = rows.iter().filter(|r| r["outcome"] == "conflict").collect();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0]["identity"], changed["identity"]);
    assert!(rows.iter().all(|r| r["outcome"] == "changed" || r["outcome"] == "conflict"));

    let (defaults_now, mut users_now) = settings_of(&state(&sim));
    let (defaults_then, mut users_then) = settings_of(&initial);
    assert_eq!(defaults_now, defaults_then, "security defaults are back on");
    let (conflicted_now, _, _) = users_now.remove(&changed["identity"]).unwrap();
    users_then.remove(&changed["identity"]);
    assert_eq!(conflicted_now, Value::Bool(true), "the conflicting change was not overwritten");
    assert_eq!(users_now, users_then, "every other value is as it was before the apply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_a_different_input_file() {
    let dir = scratch();
    let sim = start(roomy(20, 1)).await;
    let csv = write_csv(dir.path(), "mailboxes.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("apply");
    let mut args = fix_args(&csv, &report);
    args.extend(connection_args(&sim, dir.path()));
    args.extend(TUNING.map(String::from));
    assert_eq!(run(&args).await, 0);
    std::fs::write(&csv, "UserPrincipalName\nsomeone.else@contoso.com\n").unwrap();
    let mut resume = resume_args(&report);
    resume.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&resume).await, 2);
    let _: PathBuf = report;
}
