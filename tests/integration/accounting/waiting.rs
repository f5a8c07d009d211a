//! Waiting on the service: a slow one is waited for at the end of a run, a held write answer is
//! not once a read shows the write took effect, and an interrupt while signing in stops within
//! the grace.

use remediate_sim::SimConfig;

use super::{fix_on, with};
use crate::support::{
    assert_every_row_once, fix_args, interrupt, results, roomy, run, scratch, settings_of, spawn, start, state, stats,
    summary, targets_in, upns, write_csv,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_service_is_waited_for_at_the_end_of_a_run() {
    // Every answer takes longer than --grace: a run nobody stopped must still wait for them.
    let dir = scratch();
    let sim = start(roomy(20, 400)).await;
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("report");
    let args = with(fix_on(&sim, dir.path(), &csv, &report), &["--grace", "100ms"]);
    assert_eq!(run(&args).await, 0);
    assert_every_row_once(&report, targets_in(&csv));
    assert_eq!(summary(&report)["counts"]["unfinished"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_while_signing_in_stops_within_the_grace() {
    let dir = scratch();
    let sim = start(SimConfig { latency: std::time::Duration::from_secs(40), ..roomy(10, 0) }).await;
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let mut arrivals = sim.service().arrivals();
    let child = spawn(&sim, dir.path(), &with(fix_args(&csv, &dir.path().join("report")), &["--grace", "1s"]));
    arrivals.wait_for(|&n| n >= 1).await.unwrap();
    interrupt(&child);
    let guard = std::time::Duration::from_secs(30);
    let output = tokio::time::timeout(guard, child.wait_with_output()).await.expect("stops long before the answer");
    let output = output.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_answer_is_not_waited_for_once_a_read_shows_the_write_took_effect() {
    // Faults hold some answers for five minutes after the work is done, and the timeout is longer
    // still: a run that waited on its writes' answers would end with none abandoned (quick reads
    // are given up on by their deadline, so they are not counted). Held for one minute, a run
    // slowed by a loaded machine could see an answer arrive before its read-back had ended.
    // Faults are drawn per request in the order requests arrive, which a run does not fix: on 300
    // mailboxes about ten answers were held, and in one CI run of many none of them was a write's.
    // On 600 mailboxes some twenty are, and all of them missing the writes is about a thousandth.
    let dir = scratch();
    let config = SimConfig { fault_rate: 0.1, slow_reply: std::time::Duration::from_secs(300), ..roomy(600, 2) };
    let sim = start(config).await;
    let mut abandoned = sim.service().abandoned_writes();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("report");
    let args = with(fix_on(&sim, dir.path(), &csv, &report), &["--request-timeout", "400s"]);
    assert_eq!(run(&args).await, 0);
    assert_every_row_once(&report, targets_in(&csv));
    // The server learns that the client gave up on an answer when it sees the connection close,
    // which may come after the run has returned: waited for, with a bound far past that.
    let seen = tokio::time::timeout(std::time::Duration::from_secs(60), abandoned.wait_for(|n| *n > 0)).await;
    let stats = stats(&sim);
    assert!(seen.is_ok() && stats["held_writes_abandoned"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["noop_writes"], 0, "no write was sent twice: {stats}");
    let (_, settings) = settings_of(&state(&sim));
    let rows = results(&report);
    for row in rows.iter().filter(|r| r["outcome"] == "changed" && r["setting"] == "smtp-auth") {
        let (smtp_auth, _, _) = &settings[&row["identity"]];
        assert_eq!(smtp_auth, &serde_json::json!(false), "{row:?}: reported changed, and so it is");
    }
}
