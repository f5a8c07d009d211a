//! The input: two rows naming one user are one target, a pipe is read once and kept for the
//! resume, a file the reader cannot get through stops the run before anything, and bad rows cost
//! no sync and few log lines.

use serde_json::Value;

use super::fix_on;
use crate::support::{
    assert_every_row_once, connection_args, fix_args, results, resume_args, roomy, run, scratch, spawn, start, state,
    stats, summary, targets_in, upns, write_csv,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rows_naming_one_user_are_one_target() {
    let dir = scratch();
    let sim = start(roomy(200, 1)).await;
    let users = state(&sim);
    let aliased: Vec<&Value> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["hasMailbox"] == true && u["mail"] != u["userPrincipalName"])
        .take(2)
        .collect();
    assert_eq!(aliased.len(), 2, "the seeded tenant has users with an alias");
    let (a, b) = (aliased[0], aliased[1]);
    let text = format!(
        "UserPrincipalName,smtp-auth\n{},\n{},\n{},enabled\n{},disabled\n",
        a["userPrincipalName"].as_str().unwrap(),
        a["mail"].as_str().unwrap(),
        b["userPrincipalName"].as_str().unwrap(),
        b["mail"].as_str().unwrap()
    );
    let csv = dir.path().join("m.csv");
    std::fs::write(&csv, text).unwrap();
    let report = dir.path().join("report");
    assert_eq!(run(&fix_on(&sim, dir.path(), &csv, &report)).await, 1, "the rows that disagree need a look");
    let rows = results(&report);
    let of_line = |line: &str| rows.iter().filter(|r| r["line"] == line).collect::<Vec<_>>();
    let a_rows: Vec<_> = of_line("2").into_iter().chain(of_line("3")).collect();
    let same: Vec<_> = a_rows.iter().filter(|r| r["error_code"] == "SameUser").collect();
    assert_eq!(
        same.len(),
        3,
        "one of A's two rows is worked on, the other names it (each setting and the verdict): {a_rows:?}"
    );
    let conflicting: Vec<_> = rows.iter().filter(|r| r["error_code"] == "ConflictingRows").collect();
    assert!(!conflicting.is_empty(), "{rows:?}");
    assert!(conflicting.iter().all(|r| r["outcome"] == "failed" && r["error_message"].contains("line")));
    assert_eq!(stats(&sim)["noop_writes"], 0, "nothing written twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_is_read_once_and_kept_for_the_resume() {
    let dir = scratch();
    let sim = start(roomy(30, 1)).await;
    let everyone = upns(&state(&sim));
    let fifo = dir.path().join("input.fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let text = format!("UserPrincipalName\n{}\n", everyone.join("\n"));
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
    };
    let report = dir.path().join("report");
    assert_eq!(run(&fix_on(&sim, dir.path(), &fifo, &report)).await, 0);
    writer.join().unwrap();
    assert_every_row_once(&report, targets_in(&report.join("input.csv")));
    let record: Value = serde_json::from_slice(&std::fs::read(report.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["input"], report.join("input.csv").canonicalize().unwrap().display().to_string());
    let mut resume = resume_args(&report);
    resume.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&resume).await, 0, "the resume reads the kept copy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_reader_cannot_get_through_stops_the_run_before_anything() {
    let dir = scratch();
    let sim = start(roomy(5, 1)).await;
    let everyone = upns(&state(&sim));
    for (name, broken) in [("long.csv", "x".repeat(70 * 1024)), ("quote.csv", "\"unclosed,".to_string())] {
        let csv = dir.path().join(name);
        std::fs::write(
            &csv,
            format!("UserPrincipalName,Note\n{},ok\n{},{broken}\n{},ok\n", everyone[0], everyone[1], everyone[2]),
        )
        .unwrap();
        let report = dir.path().join(format!("report-{name}"));
        assert_eq!(run(&fix_on(&sim, dir.path(), &csv, &report)).await, 2, "{name}");
        assert!(!report.join("journal.jsonl").exists(), "{name}: nothing began");
    }
    assert_eq!(stats(&sim)["writes_total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_rows_cost_no_sync_and_few_log_lines() {
    let dir = scratch();
    let sim = start(roomy(5, 1)).await;
    let five = upns(&state(&sim));
    let rows: Vec<String> = (0..2000).map(|i| five[i % 5].to_uppercase()).chain(five.iter().cloned()).collect();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &rows);
    let report = dir.path().join("report");
    let output = spawn(&sim, dir.path(), &fix_args(&csv, &report)).wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let logged = stderr.lines().filter(|l| l.contains("row skipped")).count();
    assert!(logged <= 10, "{logged} bad rows logged one by one");
    let totals = summary(&report);
    assert_eq!(totals["rejected_rows"], 2000);
    assert!(totals["journal"]["syncs"].as_u64().unwrap() < 50, "{}", totals["journal"]);
}
