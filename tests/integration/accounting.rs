//! Exit 0 means done: every (target, setting) has its final row, whatever happens to the run.
//! One regression test per way a run used to drop, hide or repeat work (issue "Exit 0 means
//! done"): a slow service at the end of a run, a damaged journal, a resume that forgot what chose
//! its targets, two rows naming one user, a rollback of writes whose outcome was never recorded,
//! the tenant lock, an interrupt while signing in, pipes and broken files, exit codes after local
//! failures, and the cost of bad rows.

use std::collections::HashMap;
use std::path::Path;

use remediate_sim::{Population, SimConfig};
use serde_json::Value;

use crate::support::{
    TUNING, assert_every_row_once, connection_args, fix_args, interrupt, results, resume_args, roomy, run, scratch,
    settings_of, spawn, start, state, stats, summary, targets_in, upns, write_csv,
};

fn with(mut args: Vec<String>, more: &[&str]) -> Vec<String> {
    args.extend(more.iter().map(|s| s.to_string()));
    args
}

/// The fix on `csv` against `sim`, with the fast test tuning.
fn fix_on(sim: &remediate_sim::Simulator, dir: &Path, csv: &Path, report: &Path) -> Vec<String> {
    let mut args = fix_args(csv, report);
    args.extend(connection_args(sim, dir));
    args.extend(TUNING.map(String::from));
    args
}

/// Rows of results.csv by (line, setting).
fn rows_by_key(report: &Path) -> HashMap<(String, String), HashMap<String, String>> {
    results(report).into_iter().map(|r| ((r["line"].clone(), r["setting"].clone()), r)).collect()
}

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

/// Copies a finished run's record and journal into a new directory, for damaging.
fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["run.json", "journal.jsonl"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_journal_loses_no_intact_row_and_repeats_no_write() {
    let dir = scratch();
    let mut config = roomy(40, 1);
    config.population =
        Population::Identities(std::sync::Arc::new((0..40).map(|i| format!("zoë.ñúñez{i}@contoso.com")).collect()));
    let sim = start(config).await;
    let initial = state(&sim);
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&initial));
    let report = dir.path().join("report");
    assert_eq!(run(&fix_on(&sim, dir.path(), &csv, &report)).await, 0);
    let pristine = std::fs::read(report.join("journal.jsonl")).unwrap();
    let original = rows_by_key(&report);
    let changed: Vec<_> = original.iter().filter(|(_, r)| r["outcome"] == "changed").map(|(k, _)| k.clone()).collect();

    // A flipped byte inside a multi-byte character of a middle record, and a line of garbage.
    let middle = pristine.len() / 2;
    let at = middle + pristine[middle..].windows(2).position(|w| w == "ñ".as_bytes()).unwrap();
    let mut damaged = pristine.clone();
    damaged[at + 1] ^= 0x40;
    damaged.splice(middle..middle, b"\xff\xfe not a record\n".iter().copied());
    let mut rng = fastrand::Rng::with_seed(11);
    let mut cases = vec![("flip and garbage".to_string(), damaged)];
    for _ in 0..12 {
        let offset = rng.usize(1..pristine.len());
        let mut flipped = pristine.clone();
        flipped[offset] ^= 1 << rng.u8(0..8);
        cases.push((format!("flip at {offset}"), flipped));
        let cut = rng.usize(1..pristine.len());
        cases.push((format!("cut at {cut}"), pristine[..cut].to_vec()));
    }
    let writes = stats(&sim)["writes_total"].clone();
    for (i, (case, journal)) in cases.into_iter().enumerate() {
        let copy = dir.path().join(format!("damaged-{i}"));
        copy_run(&report, &copy);
        std::fs::write(copy.join("journal.jsonl"), &journal).unwrap();
        let mut resume = resume_args(&copy);
        resume.extend(connection_args(&sim, dir.path()));
        assert_eq!(run(&resume).await, 0, "{case}");
        assert_every_row_once(&copy, 40);
        assert_eq!(stats(&sim)["noop_writes"], 0, "{case}: no write repeated");
        assert_eq!(stats(&sim)["writes_total"], writes, "{case}: every value was already as wanted");
        let now = rows_by_key(&copy);
        if !case.starts_with("cut") {
            for key in &changed {
                assert_eq!(now[key]["outcome"], "changed", "{case}: the change to {key:?} is still reported");
                assert_eq!(now[key]["before"], original[key]["before"], "{case}: {key:?}");
            }
        }
    }
    // Rollback from the first damaged copy restores every change (its resume recorded them again),
    // but cannot claim so: what the damaged places held is unknown.
    let mut rollback = vec!["rollback".to_string(), dir.path().join("damaged-0").display().to_string(), "--yes".into()];
    rollback.extend(["--report-dir".into(), dir.path().join("rollback").display().to_string()]);
    rollback.extend(connection_args(&sim, dir.path()));
    rollback.extend(TUNING.map(String::from));
    assert_eq!(run(&rollback).await, 1, "a rollback of a damaged journal never claims it restored everything");
    let said = crate::support::summary(&dir.path().join("rollback"))["unfinished"].to_string();
    assert!(said.contains("damaged places"), "{said}");
    assert_eq!(settings_of(&state(&sim)), settings_of(&initial), "every change undone");
}

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
async fn rollback_undoes_writes_whose_outcome_was_never_recorded() {
    let dir = scratch();
    let sim = start(roomy(60, 1)).await;
    let initial = state(&sim);
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&initial));
    let report = dir.path().join("apply");
    assert_eq!(run(&fix_on(&sim, dir.path(), &csv, &report)).await, 0);
    // As if the run had been killed right after five writes: their intents stay, their rows go.
    let journal = std::fs::read_to_string(report.join("journal.jsonl")).unwrap();
    let mut dropped = 0;
    let kept: Vec<&str> = journal
        .lines()
        .filter(|line| {
            let drop = dropped < 5 && line.contains(r#""record":"row""#) && line.contains(r#""outcome":"changed""#);
            dropped += usize::from(drop);
            !drop
        })
        .collect();
    std::fs::write(report.join("journal.jsonl"), kept.join("\n") + "\n").unwrap();
    let mut rollback =
        vec!["rollback".to_string(), report.display().to_string(), "--yes".into(), "--report-dir".into()];
    rollback.push(dir.path().join("rollback").display().to_string());
    rollback.extend(connection_args(&sim, dir.path()));
    rollback.extend(TUNING.map(String::from));
    assert_eq!(run(&rollback).await, 0);
    assert_eq!(settings_of(&state(&sim)), settings_of(&initial), "the five unrecorded writes were undone too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_lock_holds_whatever_name_the_tenant_is_given() {
    let dir = scratch();
    let sim = start(roomy(10, 1)).await;
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let held =
        remediate::testing::acquire_lock(&dir.path().join("state"), &sim.app().tenant_id, "apply", None).unwrap();
    let by_domain = |report: &str| {
        let mut args = fix_on(&sim, dir.path(), &csv, &dir.path().join(report));
        let tenant = args.iter().position(|a| a == "--tenant-id").unwrap() + 1;
        args[tenant] = sim.app().domain.to_uppercase();
        args
    };
    assert_eq!(run(&by_domain("report")).await, 2, "the domain names the tenant whose id is locked");
    assert_eq!(stats(&sim)["writes_total"], 0);
    assert!(!dir.path().join("report").exists(), "a refused run leaves no empty report directory");
    drop(held);
    assert_eq!(run(&by_domain("again")).await, 0);
    assert_eq!(summary(&dir.path().join("again"))["tenant_id"], sim.app().domain.to_uppercase());
    let record: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("again").join("run.json")).unwrap()).unwrap();
    assert_eq!(record["tenant_id"], sim.app().tenant_id, "the run record keeps the tenant's id");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_answer_is_not_waited_for_once_a_read_shows_the_write_took_effect() {
    // Faults hold some answers for a minute after the work is done, and the timeout is longer
    // still: a run that waited on its writes' answers would end with none abandoned (quick reads
    // are given up on by their deadline, so they are not counted).
    let dir = scratch();
    let config = SimConfig { fault_rate: 0.1, slow_reply: std::time::Duration::from_secs(60), ..roomy(300, 2) };
    let sim = start(config).await;
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let report = dir.path().join("report");
    let args = with(fix_on(&sim, dir.path(), &csv, &report), &["--request-timeout", "120s"]);
    assert_eq!(run(&args).await, 0);
    assert_every_row_once(&report, targets_in(&csv));
    let stats = stats(&sim);
    assert!(stats["held_writes_abandoned"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["noop_writes"], 0, "no write was sent twice: {stats}");
    let (_, settings) = settings_of(&state(&sim));
    let rows = results(&report);
    for row in rows.iter().filter(|r| r["outcome"] == "changed" && r["setting"] == "smtp-auth") {
        let (smtp_auth, _) = &settings[&row["identity"]];
        assert_eq!(smtp_auth, &serde_json::json!(false), "{row:?}: reported changed, and so it is");
    }
}
