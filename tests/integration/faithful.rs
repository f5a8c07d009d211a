//! Faithful to the real service: Exchange decides who has a mailbox (not the licence), per-user
//! MFA covers every member user, a `$batch` answered 424 keeps each item's answer, and both of
//! Exchange's ways of refusing too many requests are taken as throttling.

use std::time::Duration;

use remediate_sim::{Population, SimConfig};
use serde_json::Value;

use crate::support::{connection_args, results, run, scratch, start, state, stats, summary, write_csv};

/// Rates well above an unthrottled simulator's, so the tests wait on nothing but the work.
const FAST: [&str; 8] =
    ["--graph-rps", "2000", "--graph-write-rps", "1000", "--exchange-rps", "1000", "--exchange-inflight", "10"];

fn unthrottled(count: usize) -> SimConfig {
    SimConfig {
        population: Population::Generated { count },
        throttle: false,
        exchange_inflight: 12,
        ..SimConfig::default()
    }
}

fn users(state: &Value) -> Vec<Value> {
    state["users"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockdown_sweep_covers_unlicensed_mailboxes_and_leaves_per_user_mfa_alone() {
    let sim = start(unthrottled(600)).await;
    let initial = users(&state(&sim));
    let kinds = |f: &dyn Fn(&Value) -> bool| initial.iter().filter(|u| f(u)).count();
    assert!(kinds(&|u| u["licensed"] == false && u["hasMailbox"] == true) > 0, "shared and room mailboxes");
    assert!(kinds(&|u| u["licensed"] == true && u["hasMailbox"] == false) > 0, "licensed users without Exchange");
    assert!(kinds(&|u| u["licensed"] == false && u["hasMailbox"] == false && u["userType"] == "Member") > 0);
    let dir = scratch();
    let sweep = |command: &str, report: &str| {
        let mut args: Vec<String> = [command, "--all-mailboxes", "--profile", "smtp-auth-lockdown", "--report-dir"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(dir.path().join(report).display().to_string());
        if command == "apply" {
            args.push("--yes".into());
        }
        args.extend(connection_args(&sim, dir.path()));
        args.extend(FAST.map(String::from));
        args
    };
    assert_eq!(run(&sweep("apply", "apply")).await, 0);
    let after = state(&sim);
    assert_eq!(after["transportConfig"]["SmtpClientAuthenticationDisabled"], true, "the organisation's switch is off");
    for (user, before) in users(&after).iter().zip(&initial) {
        let upn = user["userPrincipalName"].as_str().unwrap();
        if user["hasMailbox"] == true {
            assert_eq!(user["smtpClientAuthenticationDisabled"], true, "{upn} keeps SMTP AUTH");
        }
        // CIS 5.1.2.1, and Microsoft where Conditional Access is used: per-user MFA is not the sweep's.
        assert_eq!(user["perUserMfaState"], before["perUserMfaState"], "{upn}'s per-user MFA was changed");
    }
    assert_eq!(run(&sweep("audit", "audit")).await, 0, "nothing left to drift");
    assert_eq!(stats(&sim)["noop_writes"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fix_tells_a_user_without_exchange_after_one_answer() {
    let sim = start(unthrottled(600)).await;
    let everyone = users(&state(&sim));
    let pick = |f: &dyn Fn(&Value) -> bool| {
        everyone
            .iter()
            .filter(|u| f(u))
            .map(|u| u["userPrincipalName"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let without_exchange = pick(&|u| u["licensed"] == true && u["hasMailbox"] == false);
    let shared = pick(&|u| u["licensed"] == false && u["hasMailbox"] == true);
    let targets: Vec<String> = without_exchange.iter().chain(&shared).cloned().collect();
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &targets);
    let report = dir.path().join("fix");
    let mut args = crate::support::fix_args(&csv, &report);
    args.extend(connection_args(&sim, dir.path()));
    args.extend(FAST.map(String::from));
    // A shared mailbox's sign-in is blocked: the fix does its settings and says the device still
    // cannot send, naming the layer.
    assert_eq!(run(&args).await, 1);
    let rows = results(&report);
    let blocked: Vec<_> = rows.iter().filter(|r| r["outcome"] == "blocked").collect();
    assert!(!blocked.is_empty(), "the shared mailboxes' devices cannot send");
    for row in &blocked {
        assert!(shared.contains(&row["identity"]) && row["error_code"] == "sign-in-blocked", "{row:?}");
    }
    for upn in &without_exchange {
        let smtp = rows.iter().find(|r| &r["identity"] == upn && r["setting"] == "smtp-auth").unwrap();
        assert_eq!((smtp["outcome"].as_str(), smtp["error_code"].as_str()), ("skipped", "NoMailbox"), "{smtp:?}");
        assert_eq!(smtp["attempts"], "1", "one Exchange answer, whatever status it came with: {smtp:?}");
        let mfa = rows.iter().find(|r| &r["identity"] == upn && r["setting"] == "per-user-mfa").unwrap();
        assert!(["changed", "compliant"].contains(&mfa["outcome"].as_str()), "MFA is the user's: {mfa:?}");
    }
    for upn in &shared {
        let smtp = rows.iter().find(|r| &r["identity"] == upn && r["setting"] == "smtp-auth").unwrap();
        assert!(
            ["changed", "compliant"].contains(&smtp["outcome"].as_str()),
            "a shared mailbox is worked on: {smtp:?}"
        );
    }
    let answered = summary(&report)["requests"]["exchange"].clone();
    assert!(
        answered["500"].as_u64().unwrap_or(0) + answered["404"].as_u64().unwrap_or(0) >= without_exchange.len() as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answered_424_keeps_every_item_answer_and_exchange_refusals_in_both_forms_are_throttling() {
    // A Graph budget so small that batches come back 424 with throttled items, and one Exchange
    // request in flight for three sent, so its refusals come as plain-text 500s and as 429s, and
    // the client keeps fewer in flight after each.
    let sim = start(SimConfig {
        population: Population::Generated { count: 100 },
        // Twenty units a second: one full batch spends them all, so the next comes back 424.
        graph_rate: 20.0,
        graph_window: Duration::from_secs(1),
        graph_write_rate: 30.0,
        graph_write_window: Duration::from_secs(1),
        exchange_rate: 200.0,
        exchange_window: Duration::from_secs(1),
        exchange_inflight: 1,
        ..SimConfig::default()
    })
    .await;
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &crate::support::upns(&state(&sim)));
    let report = dir.path().join("fix");
    let mut args = crate::support::fix_args(&csv, &report);
    args.extend(connection_args(&sim, dir.path()));
    args.extend(
        ["--graph-rps", "400", "--exchange-rps", "200", "--exchange-inflight", "3", "--max-attempts", "20"]
            .map(String::from),
    );
    assert_eq!(run(&args).await, 0);
    let totals = summary(&report);
    assert!(totals["requests"]["graph"]["424"].as_u64().unwrap_or(0) > 0, "{}", totals["requests"]);
    assert!(totals["requests"]["exchange"]["500"].as_u64().unwrap_or(0) > 0, "{}", totals["requests"]);
    assert!(totals["requests"]["exchange"]["429"].as_u64().unwrap_or(0) > 0, "{}", totals["requests"]);
    assert_eq!(totals["counts"]["failed"], 0);
    assert_eq!(stats(&sim)["noop_writes"], 0, "no applied write was taken for a failure and made again");
}
