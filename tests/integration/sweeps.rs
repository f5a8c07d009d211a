//! Compliance sweeps: audit exit codes over the whole tenant, exclusions, per-row desired values,
//! drift against a baseline, shards, and report.html agreeing with summary.json.

use std::collections::HashMap;
use std::path::Path;

use remediate_sim::{Population, SimConfig, Simulator};
use serde_json::Value;

use crate::support::{connection_args, results, run, scratch, start, state, stats, summary, upns, write_csv};

fn tenant() -> SimConfig {
    SimConfig { population: Population::Generated { count: 150 }, seed: 3, ..SimConfig::default() }
}

const FAST: [&str; 6] = ["--graph-rps", "500", "--exchange-rps", "200", "--exchange-inflight", "4"];

async fn remediate(sim: &Simulator, dir: &Path, report: &str, args: &[&str]) -> u8 {
    let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    argv.extend(FAST.map(String::from));
    argv.extend(["--report-dir".into(), dir.join(report).display().to_string()]);
    argv.extend(connection_args(sim, dir));
    run(&argv).await
}

fn user<'a>(state: &'a Value, upn: &str) -> &'a Value {
    state["users"].as_array().unwrap().iter().find(|u| u["userPrincipalName"] == upn).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_apply_audit_over_every_mailbox_with_an_exclusion() {
    let sim = start(tenant()).await;
    let dir = scratch();
    let initial = state(&sim);
    let kept = initial["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["hasMailbox"] == true && u["smtpClientAuthenticationDisabled"] == false)
        .unwrap();
    let kept_upn = kept["userPrincipalName"].as_str().unwrap().to_string();
    let exclude = dir.path().join("exclude.txt");
    std::fs::write(&exclude, format!("# service accounts that keep SMTP AUTH\n{kept_upn}\n*@relay.contoso.com\n"))
        .unwrap();
    let exclude = exclude.display().to_string();
    let lockdown = ["--profile", "smtp-auth-lockdown", "--all-mailboxes", "--exclude", &exclude];

    let mut audit: Vec<&str> = vec!["audit"];
    audit.extend(lockdown);
    assert_eq!(remediate(&sim, dir.path(), "audit-1", &audit).await, 3, "a fresh tenant has drift");
    let mut apply: Vec<&str> = vec!["apply", "--yes"];
    apply.extend(lockdown);
    assert_eq!(remediate(&sim, dir.path(), "apply", &apply).await, 0);
    assert_eq!(remediate(&sim, dir.path(), "audit-2", &audit).await, 0, "compliant after the apply");

    let now = state(&sim);
    assert_eq!(
        user(&now, &kept_upn)["smtpClientAuthenticationDisabled"],
        false,
        "the excluded mailbox kept its setting"
    );
    assert_eq!(user(&now, &kept_upn)["writes"], 0);
    let rows = results(&dir.path().join("apply"));
    let excluded: Vec<_> = rows.iter().filter(|r| r["error_code"] == "Excluded").collect();
    assert_eq!(excluded.len(), 2, "the excluded mailbox's smtp-auth and its verdict: {excluded:?}");
    assert!(excluded.iter().all(|r| r["outcome"] == "skipped" && r["error_message"].contains("exclude.txt")));
    // Every mailbox (the lockdown leaves per-user MFA alone, so no member without one).
    let in_scope = initial["users"].as_array().unwrap().iter().filter(|u| u["hasMailbox"] == true).count();
    assert_eq!(
        summary(&dir.path().join("apply"))["targets"],
        in_scope as u64,
        "--all-mailboxes covers every mailbox and member"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_row_columns_override_the_profile() {
    let sim = start(tenant()).await;
    let dir = scratch();
    let snapshot = state(&sim);
    let mailboxes: Vec<&Value> =
        snapshot["users"].as_array().unwrap().iter().filter(|u| u["hasMailbox"] == true).take(4).collect();
    let rows: Vec<String> = mailboxes
        .iter()
        .enumerate()
        .map(|(i, u)| format!("{},{}", u["userPrincipalName"].as_str().unwrap(), if i == 0 { "enabled" } else { "" }))
        .collect();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName,smtp-auth", &rows);
    let code =
        remediate(&sim, dir.path(), "apply", &["apply", csv.to_str().unwrap(), "--set", "smtp-auth=disabled"]).await;
    assert_eq!(code, 0);
    let now = state(&sim);
    let first = mailboxes[0]["userPrincipalName"].as_str().unwrap();
    assert_eq!(user(&now, first)["smtpClientAuthenticationDisabled"], false, "the row's own value won");
    for other in &mailboxes[1..] {
        assert_eq!(user(&now, other["userPrincipalName"].as_str().unwrap())["smtpClientAuthenticationDisabled"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_shows_a_mailbox_changed_behind_our_back_and_the_html_agrees() {
    let sim = start(tenant()).await;
    let dir = scratch();
    let profile = ["--profile", "smtp-auth-lockdown", "--all-mailboxes"];
    let mut apply = vec!["apply", "--yes"];
    apply.extend(profile);
    assert_eq!(remediate(&sim, dir.path(), "apply", &apply).await, 0);
    let mut audit = vec!["audit"];
    audit.extend(profile);
    assert_eq!(remediate(&sim, dir.path(), "night-1", &audit).await, 0);

    let victim = results(&dir.path().join("night-1"))
        .into_iter()
        .find(|r| r["setting"] == "smtp-auth" && r["outcome"] == "compliant")
        .unwrap();
    crate::support::change_behind_our_back(&sim, &victim["identity"], false).await;
    let baseline = dir.path().join("night-1").display().to_string();
    audit.extend(["--baseline", &baseline]);
    assert_eq!(remediate(&sim, dir.path(), "night-2", &audit).await, 3);
    let night = dir.path().join("night-2");
    let totals = summary(&night);
    assert_eq!(totals["drift"]["newly_non_compliant"], 1, "{}", totals["drift"]);
    assert_eq!(totals["drift"]["fixed"], 0);
    let drift = std::fs::read_to_string(night.join("drift.csv")).unwrap();
    assert!(drift.contains(&format!("newly-non-compliant,{},smtp-auth", victim["identity"].to_lowercase())), "{drift}");

    let html = std::fs::read_to_string(night.join("report.html")).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("src="),
        "the page makes no network requests"
    );
    let card = |name: &str| -> u64 {
        let marker = format!("data-count=\"{name}\"><b>");
        let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} card")) + marker.len();
        html[start..].split('<').next().unwrap().parse().unwrap()
    };
    for outcome in ["changed", "compliant", "would-change", "skipped", "conflict", "failed"] {
        assert_eq!(card(outcome), totals["counts"][outcome].as_u64().unwrap(), "{outcome}");
    }
    assert_eq!(card("targets"), totals["targets"].as_u64().unwrap());
    assert!(html.contains("<svg") && html.contains("Drift since"));
    let rows_in_table = html.matches("<tr data-outcome=").count();
    assert_eq!(rows_in_table, results(&night).len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_cover_every_target_exactly_once() {
    let sim = start(tenant()).await;
    let dir = scratch();
    let upns: Vec<String> = state(&sim)["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap().to_string())
        .collect();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns);
    let mut seen: HashMap<String, u32> = HashMap::new();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let report = format!("shard-{k}");
        assert_eq!(
            remediate(
                &sim,
                dir.path(),
                &report,
                &["plan", csv.to_str().unwrap(), "--set", "smtp-auth=disabled", "--shard", &shard]
            )
            .await,
            0
        );
        for row in results(&dir.path().join(&report)).into_iter().filter(|r| r["setting"] == "smtp-auth") {
            *seen.entry(row["identity"].clone()).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), upns.len(), "every target in some shard");
    assert!(seen.values().all(|&n| n == 1), "no target in two shards");
}

/// The Exchange budget (per 2 s) of the tenant the shards share, as an earlier run measured it.
const SHARED_EXCHANGE_BUDGET: f64 = 30.0;

/// A tenant of 240 mailboxes shaped by `config` past its Exchange budget, and a scratch
/// directory whose state directory (shared, as a volume would be) remembers that budget; with
/// the tenant's id and the budgets file as written.
async fn shared_tenant(config: SimConfig) -> (Simulator, tempfile::TempDir, String, Value) {
    let sim = start(SimConfig {
        population: Population::Generated { count: 240 },
        seed: 5,
        exchange_rate: SHARED_EXCHANGE_BUDGET,
        exchange_window: std::time::Duration::from_secs(2),
        exchange_inflight: 15,
        ..config
    })
    .await;
    let dir = scratch();
    let tenant = sim.app().tenant_id.clone();
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let remembered = serde_json::json!({"graph": null, "graph_writes": null, "exchange": SHARED_EXCHANGE_BUDGET, "measured_at": "2026-11-26T02:00:00Z"});
    std::fs::write(state_dir.join(format!("budgets-{tenant}.json")), remembered.to_string()).unwrap();
    (sim, dir, tenant, remembered)
}

/// The arguments of shard `k` of 3 turning SMTP AUTH off for the mailboxes of `csv`.
fn shard_args(sim: &Simulator, dir: &Path, csv: &str, k: u32) -> Vec<String> {
    let mut args: Vec<String> =
        ["apply", "--yes", csv, "--set", "smtp-auth=disabled", "--bulk-read", "never"].map(String::from).to_vec();
    args.extend(["--shard".to_string(), format!("{k}/3"), "--report-dir".into()]);
    args.push(dir.join(format!("shard-{k}")).display().to_string());
    args.extend(connection_args(sim, dir));
    args
}

/// Three pods of one Indexed Job on one tenant at once (one state directory here, as a shared
/// volume would be): each starts from its share of the budget an earlier run measured, holds it,
/// and together they spend the budget without a 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_at_once_share_the_remembered_budget() {
    let (sim, dir, tenant, remembered) = shared_tenant(SimConfig::default()).await;
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim))).display().to_string();
    let shard = |k: u32| shard_args(&sim, dir.path(), &csv, k);
    let (a, b, c) = (shard(0), shard(1), shard(2));
    let codes = tokio::join!(run(&a), run(&b), run(&c));
    assert_eq!(codes, (0, 0, 0));
    let counts = stats(&sim);
    let throttled = counts["throttled_total"].as_u64().unwrap();
    assert!(throttled * 100 <= counts["requests_total"].as_u64().unwrap(), "at most 1 % throttled: {counts}");
    let mut seen: HashMap<String, u32> = HashMap::new();
    for k in 0..3 {
        let report = dir.path().join(format!("shard-{k}"));
        let exchange = &summary(&report)["pacing"][&tenant]["exchange"];
        let share = SHARED_EXCHANGE_BUDGET / 3.0;
        assert_eq!(exchange["remembered"].as_f64(), Some(share), "shard {k} starts from its share: {exchange}");
        for row in results(&report).into_iter().filter(|r| r["setting"] == "smtp-auth") {
            *seen.entry(row["identity"].clone()).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), upns(&state(&sim)).len(), "every target in some shard");
    assert!(seen.values().all(|&n| n == 1), "no target in two shards");
    let state_dir = dir.path().join("state");
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_dir.join(format!("budgets-{tenant}.json"))).unwrap()).unwrap();
    assert_eq!(kept, remembered, "a shard measured only its share and keeps nothing");
}

/// Shards end apart: when its two siblings end (each given a few targets of its own), the shard
/// still at work takes up the whole budget rather than the third it started with; on a tenant
/// that answers slowly and fails some requests on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_whose_siblings_ended_spends_the_whole_budget() {
    let faulty = SimConfig {
        latency: std::time::Duration::from_millis(20),
        fault_rate: 0.02,
        slow_reply: std::time::Duration::from_secs(3),
        ..SimConfig::default()
    };
    let (sim, dir, tenant, _) = shared_tenant(faulty).await;
    let everyone = upns(&state(&sim));
    let shard = |k: u32, targets: usize| {
        let mine: Vec<String> = everyone
            .iter()
            .filter(|upn| remediate::testing::Shard::new(k, 3).unwrap().holds(upn))
            .take(targets)
            .cloned()
            .collect();
        let csv = write_csv(dir.path(), &format!("shard-{k}.csv"), "UserPrincipalName", &mine).display().to_string();
        shard_args(&sim, dir.path(), &csv, k)
    };
    let (a, b, c) = (shard(0, 70), shard(1, 3), shard(2, 3));
    let codes = tokio::join!(run(&a), run(&b), run(&c));
    assert_eq!(codes, (0, 0, 0));
    let counts = stats(&sim);
    let throttled = counts["throttled_total"].as_u64().unwrap();
    assert!(throttled * 100 <= counts["requests_total"].as_u64().unwrap(), "at most 1 % throttled: {counts}");
    let exchange = &summary(&dir.path().join("shard-0"))["pacing"][&tenant]["exchange"];
    let share = SHARED_EXCHANGE_BUDGET / 3.0;
    assert_eq!(exchange["remembered"].as_f64(), Some(share), "shard 0 starts from its share: {exchange}");
    let rate = exchange["rate"].as_f64().unwrap();
    assert!(rate > 2.0 * share, "alone, shard 0 spends the whole budget, not its third: {exchange}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusion_that_matches_no_target_is_named_at_the_end() {
    let sim = start(tenant()).await;
    let dir = scratch();
    let everyone = upns(&state(&sim));
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &everyone[..10]);
    let exclude = dir.path().join("exclude.txt");
    let entries = format!("{}  # the scanner\nscaner@contoso.com\t# a typo\n*@relay.contoso.com\n", everyone[0]);
    std::fs::write(&exclude, entries).unwrap();
    let report = dir.path().join("plan");
    let args: Vec<String> = ["plan", &csv.display().to_string(), "--set", "smtp-auth=disabled"]
        .into_iter()
        .map(String::from)
        .chain(["--exclude".into(), exclude.display().to_string()])
        .chain(["--report-dir".into(), report.display().to_string()])
        .collect();
    let output = crate::support::command(&sim, dir.path(), &args).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let unused = summary(&report)["unused_exclusions"].clone();
    assert_eq!(unused, serde_json::json!(["scaner@contoso.com", "*@relay.contoso.com"]), "{stderr}");
    let said = format!(
        "warning: 2 exclusion entries of {} matched no target: scaner@contoso.com, *@relay.contoso.com",
        exclude.display()
    );
    assert!(stderr.contains(&said), "{stderr}");
    let rows = results(&report);
    let first = rows.iter().find(|r| r["identity"] == everyone[0]).unwrap();
    assert_eq!(first["error_code"], "Excluded", "the entry with a comment after it excluded its target");
}
