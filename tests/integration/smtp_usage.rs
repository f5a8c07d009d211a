//! Who signs in with SMTP AUTH: `usage` against the simulated sign-in log, targeting runs with
//! `--only-smtp-auth-seen` and `--spare-smtp-auth-seen`, and a tenant without Entra ID P1.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use remediate_sim::{Population, SimConfig, Simulator};
use serde_json::Value;

use crate::support::{connection_args, results, roomy, run, scratch, start, state, summary};

/// Roomy budgets, but faults: 503s, 504s after the work, dropped connections, slow replies.
fn with_sign_ins(count: usize, share: f64) -> SimConfig {
    SimConfig { smtp_sign_ins: share, fault_rate: 0.03, slow_reply: Duration::from_secs(2), ..roomy(count, 2) }
}

/// The simulator's own account of each user's SMTP AUTH sign-ins, by user id.
fn seeded(sim: &Simulator) -> HashMap<String, Value> {
    let state = state(sim);
    let entries = state["smtpSignIns"].as_array().unwrap();
    entries.iter().map(|e| (e["userId"].as_str().unwrap().to_string(), e.clone())).collect()
}

fn args(words: &[&str], sim: &Simulator, dir: &std::path::Path) -> Vec<String> {
    let mut args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    args.extend(connection_args(sim, dir));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_lists_exactly_the_seeded_users_in_requests_that_grow_with_the_sign_ins() {
    // The documented budgets, the reports API's five requests per 10 seconds included.
    let sim = start(SimConfig {
        population: Population::Generated { count: 5000 },
        smtp_sign_ins: 0.05,
        fault_rate: 0.02,
        slow_reply: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await;
    let seeded = seeded(&sim);
    let dir = scratch();
    let report = dir.path().join("usage");
    // Two SMTP AUTH exceptions: one a device signs in with, one nobody used in the window.
    let users = state(&sim)["users"].as_array().unwrap().clone();
    let upn_of = |used: bool| {
        let user = users.iter().find(|u| seeded.contains_key(u["id"].as_str().unwrap()) == used).unwrap();
        user["userPrincipalName"].as_str().unwrap().to_string()
    };
    let (used, unused) = (upn_of(true), upn_of(false));
    let exceptions = dir.path().join("exceptions.csv");
    std::fs::write(
        &exceptions,
        format!("identity,setting,value,owner,reason,expires\n{used},smtp-auth,enabled,Facilities,copier,2099-01-01\n{unused},smtp-auth,enabled,IT,old scanner,2099-01-01\n"),
    )
    .unwrap();
    let words = ["usage", "--all-mailboxes", "--exceptions", exceptions.to_str().unwrap(), "--report-dir"];
    let code = run(&args(&[&words[..], &[report.to_str().unwrap()]].concat(), &sim, dir.path())).await;
    assert_eq!(code, 0);
    let mut reader = csv::Reader::from_path(report.join("smtp-auth-usage.csv")).unwrap();
    let rows: Vec<HashMap<String, String>> = reader.deserialize().map(Result::unwrap).collect();
    let listed: HashSet<&str> = rows.iter().map(|r| r["user_id"].as_str()).collect();
    let expected: HashSet<&str> = seeded.keys().map(String::as_str).collect();
    assert_eq!(listed, expected, "exactly the seeded users");
    for row in &rows {
        let truth = &seeded[&row["user_id"]];
        assert_eq!(row["sign_ins"], truth["signIns"].to_string(), "{row:?}");
        assert_eq!(row["failures"], truth["failures"].to_string(), "{row:?}");
        assert_eq!(row["last_error_code"], truth["lastErrorCode"].to_string(), "{row:?}");
        assert!(!row["client_ips"].is_empty() && !row["smtp_auth"].is_empty(), "{row:?}");
    }
    let record: Value = serde_json::from_slice(&std::fs::read(report.join("usage.json")).unwrap()).unwrap();
    let unused_listed: Vec<&str> =
        record["unused_exceptions"].as_array().unwrap().iter().map(|e| e["identity"].as_str().unwrap()).collect();
    assert_eq!(unused_listed, [unused.as_str()], "only the exception nobody signed in with is unused");
    let usage = &record["smtp_auth_usage"];
    let entries = usage["sign_ins"].as_u64().unwrap();
    let requests = usage["requests"].as_u64().unwrap();
    println!("{} users, {entries} sign-ins read in {requests} requests", rows.len());
    // More than a page: one look at the whole window, then each of the 30 days' pages.
    assert!(entries > 1000, "{entries}");
    assert!(requests > 30 && requests <= 1 + 30 + entries.div_ceil(1000), "none a mailbox: {requests}");
    let stats = crate::support::stats(&sim);
    assert_eq!(stats["throttled_total"], 0, "the reports budget is kept to: {stats}");
    assert_eq!(stats["writes_total"], 0, "usage changes nothing");
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("id=\"sign-ins\"") && html.contains("id=\"readiness\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fix_goes_where_devices_sign_in_and_the_lockdown_spares_them() {
    let sim = start(with_sign_ins(600, 0.05)).await;
    let seeded = seeded(&sim);
    let before = state(&sim);
    let dir = scratch();
    let path = |name: &str| dir.path().join(name).display().to_string();

    let fix = ["apply", "--all-mailboxes", "--profile", "smtp-auth-fix", "--yes", "--only-smtp-auth-seen", "30d"];
    let only = path("only");
    assert_eq!(run(&args(&[&fix[..], &["--report-dir", &only]].concat(), &sim, dir.path())).await, 0);
    let after = state(&sim);
    for (old, new) in before["users"].as_array().unwrap().iter().zip(after["users"].as_array().unwrap()) {
        let id = new["id"].as_str().unwrap();
        let smtp = &new["smtpClientAuthenticationDisabled"];
        if seeded.contains_key(id) {
            assert_eq!(smtp, &Value::Bool(false), "a device signs in as {id}: SMTP AUTH on");
        } else {
            assert_eq!(smtp, &old["smtpClientAuthenticationDisabled"], "no device signs in as {id}: untouched");
        }
    }
    let fixed = summary(std::path::Path::new(&only));
    assert_eq!(fixed["smtp_auth_usage"]["targeting"], "--only-smtp-auth-seen 30d");

    let lockdown =
        ["apply", "--all-mailboxes", "--profile", "smtp-auth-lockdown", "--yes", "--spare-smtp-auth-seen", "30d"];
    let spare = path("spare");
    assert_eq!(run(&args(&[&lockdown[..], &["--report-dir", &spare]].concat(), &sim, dir.path())).await, 0);
    let succeeded: HashSet<&str> =
        seeded.iter().filter(|(_, e)| !e["lastSuccess"].is_null()).map(|(id, _)| id.as_str()).collect();
    assert!(!succeeded.is_empty() && succeeded.len() < seeded.len(), "some devices never get in");
    for user in state(&sim)["users"].as_array().unwrap().iter().filter(|u| u["hasMailbox"] == true) {
        let id = user["id"].as_str().unwrap();
        let expected = !succeeded.contains(id);
        assert_eq!(user["smtpClientAuthenticationDisabled"], Value::Bool(expected), "{user}");
    }
    let spared: Vec<_> = results(std::path::Path::new(&spare))
        .into_iter()
        .filter(|row| row["error_code"] == "SmtpAuthInUse" && row["setting"] == "smtp-auth")
        .collect();
    assert_eq!(spared.len(), succeeded.len());
    assert!(spared.iter().all(|row| row["error_message"].starts_with("signed in with SMTP AUTH on 20")), "{spared:?}");

    // A resume works on the set the run began with, kept in its report directory: the log is not
    // read again.
    let log_reads = || {
        let received = sim.service().received_json();
        received.as_array().unwrap().iter().filter(|r| r["target"].as_str().unwrap().contains("auditLogs")).count()
    };
    let reads_before = log_reads();
    let resume = ["apply", "--resume", &spare, "--yes"];
    assert_eq!(run(&args(&resume, &sim, dir.path())).await, 0);
    assert_eq!(log_reads(), reads_before, "the resume used the recorded set");
    let resumed = summary(std::path::Path::new(&spare));
    assert_eq!(resumed["smtp_auth_usage"]["targeting"], "--spare-smtp-auth-seen 30d", "{resumed}");

    let audit = ["audit", "--all-mailboxes", "--profile", "smtp-auth-lockdown", "--spare-smtp-auth-seen", "30d"];
    let audited = path("audit");
    assert_eq!(run(&args(&[&audit[..], &["--report-dir", &audited]].concat(), &sim, dir.path())).await, 0);
    let stats = crate::support::stats(&sim);
    assert!(stats["faults_total"].as_u64().unwrap() > 0, "the service misbehaved: {stats}");
    assert_eq!(stats["noop_writes"], 0, "no write sent twice, faults or not: {stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_without_entra_id_p1_is_told_which_licence_is_missing() {
    let sim = start(SimConfig { premium: false, ..with_sign_ins(50, 0.1) }).await;
    let dir = scratch();
    let mut command = assert_cmd::Command::cargo_bin("remediate").unwrap();
    command.args(args(&["usage", "--all-mailboxes"], &sim, dir.path())).current_dir(dir.path());
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Entra ID P1 or P2"), "{stderr}");
    let plan = ["plan", "--all-mailboxes", "--set", "smtp-auth=disabled", "--only-smtp-auth-seen", "7d"];
    let code = run(&args(
        &[&plan[..], &["--report-dir", &dir.path().join("plan").display().to_string()]].concat(),
        &sim,
        dir.path(),
    ))
    .await;
    assert_eq!(code, 2, "no targets are guessed when the log cannot be read");
}

/// A large tenant's sign-in log answers a filtered page in minutes, far past the ordinary request
/// timeout: the window is read a day at a time, each page given minutes, and the result is the
/// whole log. (The whole window as one query with the ordinary timeout failed here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_log_slower_than_the_request_timeout_is_read_a_day_at_a_time() {
    let sim = start(SimConfig { sign_in_latency: Duration::from_secs(3), ..with_sign_ins(300, 0.2) }).await;
    let dir = scratch();
    let report = dir.path().join("usage");
    let words = ["usage", "--all-mailboxes", "--days", "3", "--request-timeout", "2s", "--report-dir"];
    let mut command: Vec<&str> = words.to_vec();
    command.push(report.to_str().unwrap());
    let three_days_before = || sim.service().sign_ins_since(time::OffsetDateTime::now_utc() - time::Duration::days(3));
    // The window starts when the command does: between these two counts.
    let at_most = three_days_before();
    assert_eq!(run(&args(&command, &sim, dir.path())).await, 0);
    let at_least = three_days_before();
    let record: Value = serde_json::from_slice(&std::fs::read(report.join("usage.json")).unwrap()).unwrap();
    let usage = &record["smtp_auth_usage"];
    let read = usage["sign_ins"].as_u64().unwrap();
    assert!(
        at_least > 0 && (at_least..=at_most).contains(&read),
        "every sign-in of the window once: {read} of {at_least}..={at_most}"
    );
    assert!(usage["requests"].as_u64().unwrap() >= 3, "a request a day at least: {usage}");
}
