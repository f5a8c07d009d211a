//! What a resume keeps and finishes: the exclusions and the shard it began with, the listing an
//! all-mailboxes run took, the work left by a local failure, and failed rows only when asked.

use remediate_sim::SimConfig;

use super::{fix_on, with};
use crate::support::{
    assert_every_row_once, connection_args, fix_args, interrupt, results, resume_args, roomy, run, scratch, spawn,
    start, state, stats, summary, targets_in, upns, write_csv,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_keeps_the_exclusions_and_the_shard_it_began_with() {
    const MAILBOXES: usize = 300;
    let dir = scratch();
    let sim = start(roomy(MAILBOXES, 20)).await;
    let everyone = upns(&state(&sim));
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &everyone);
    let excluded: Vec<String> = everyone.iter().step_by(4).cloned().collect();
    let exclude = dir.path().join("exclude.txt");
    std::fs::write(&exclude, excluded.join("\n")).unwrap();
    let report = dir.path().join("report");
    let args = with(fix_args(&csv, &report), &["--exclude", exclude.to_str().unwrap(), "--shard", "0/2"]);
    let mut writes = sim.service().writes();
    let child = spawn(&sim, dir.path(), &args);
    writes.wait_for(|&n| n >= 20).await.unwrap();
    interrupt(&child);
    assert_eq!(child.wait_with_output().await.unwrap().status.code(), Some(130));

    // The exclusion file changed since: the resume is refused, nothing is touched.
    std::fs::write(&exclude, "someone@contoso.com\n").unwrap();
    let refused = spawn(&sim, dir.path(), &resume_args(&report)).wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("changed since the run began"), "{stderr}");
    std::fs::write(&exclude, excluded.join("\n")).unwrap();
    let finish = spawn(&sim, dir.path(), &resume_args(&report)).wait_with_output().await.unwrap();
    assert_eq!(finish.status.code(), Some(0), "{}", String::from_utf8_lossy(&finish.stderr));

    let users = state(&sim);
    for user in users["users"].as_array().unwrap() {
        let upn = user["userPrincipalName"].as_str().unwrap();
        let out_of_scope =
            excluded.iter().any(|e| e == upn) || !remediate::testing::Shard::new(0, 2).unwrap().holds(upn);
        if out_of_scope {
            assert_eq!(user["writes"], 0, "{upn} is excluded or in the other shard, and was written");
        }
    }
    let rows = results(&report);
    let in_shard = everyone.iter().filter(|u| remediate::testing::Shard::new(0, 2).unwrap().holds(u)).count();
    assert_eq!(
        rows.len(),
        1 + 3 * in_shard,
        "every target of the shard once (smtp-auth, per-user-mfa and its verdict), nothing else"
    );
    assert_eq!(stats(&sim)["noop_writes"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_mailboxes_run_resumes_on_the_listing_it_took() {
    let dir = scratch();
    let sim = start(roomy(300, 20)).await;
    let report = dir.path().join("report");
    let args: Vec<String> = ["apply", "--all-mailboxes", "--profile", "smtp-auth-lockdown", "--yes", "--report-dir"]
        .iter()
        .map(|s| s.to_string())
        .chain([report.display().to_string()])
        .collect();
    let mut writes = sim.service().writes();
    let child = spawn(&sim, dir.path(), &args);
    writes.wait_for(|&n| n >= 20).await.unwrap();
    interrupt(&child);
    assert_eq!(child.wait_with_output().await.unwrap().status.code(), Some(130));
    let finish = spawn(&sim, dir.path(), &resume_args(&report)).wait_with_output().await.unwrap();
    assert_eq!(finish.status.code(), Some(0), "{}", String::from_utf8_lossy(&finish.stderr));
    let listed = std::fs::read_to_string(report.join("mailboxes.csv")).unwrap().lines().count() - 1;
    let rows = results(&report);
    // The lockdown: the organisation's switch, then a mailbox's own and its verdict.
    assert_eq!(rows.len(), 1 + 2 * listed, "two rows for every listed mailbox, once");
    assert_eq!(stats(&sim)["noop_writes"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_failure_after_writes_exits_1_and_the_resume_finishes() {
    let dir = scratch();
    let sim = start(roomy(20, 1)).await;
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("report");
    // Something in the way of the report (as a full disk would be): the writes happen first.
    std::fs::create_dir_all(report.join("results.csv.partial").join("x")).unwrap();
    assert_eq!(run(&fix_on(&sim, dir.path(), &csv, &report)).await, 1, "not 2: the tenant was changed");
    assert!(stats(&sim)["writes_total"].as_u64().unwrap() > 0);
    std::fs::remove_dir_all(report.join("results.csv.partial")).unwrap();
    let mut resume = resume_args(&report);
    resume.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&resume).await, 0);
    assert_every_row_once(&report, targets_in(&csv));
    assert_eq!(stats(&sim)["noop_writes"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_rows_are_retried_only_when_asked() {
    let dir = scratch();
    let sim =
        start(SimConfig { fault_rate: 0.3, slow_reply: std::time::Duration::from_millis(300), ..roomy(60, 1) }).await;
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("report");
    let args = with(fix_on(&sim, dir.path(), &csv, &report), &["--max-attempts", "1", "--request-timeout", "200ms"]);
    assert_eq!(run(&args).await, 1);
    let first = summary(&report);
    let failed = first["counts"]["failed"].as_u64().unwrap();
    assert!(failed > 0, "{first}");
    let command = first["finish_command"].as_str().unwrap();
    assert!(command.ends_with(&format!("--resume {} --retry-failed", report.display())), "{command}");

    sim.service().calm_down();
    let mut resume = resume_args(&report);
    resume.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&resume).await, 1, "a plain resume leaves failed rows as they are");
    assert_eq!(summary(&report)["counts"]["failed"], failed);
    resume.push("--retry-failed".into());
    assert_eq!(run(&resume).await, 0);
    assert_every_row_once(&report, targets_in(&csv));
    assert_eq!(summary(&report)["counts"]["failed"], 0);
    assert_eq!(stats(&sim)["noop_writes"], 0);
}
