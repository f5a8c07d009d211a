//! The SMTP AUTH fix end to end against the simulator at its harshest: a tight budget, faults,
//! latency and tokens that expire every two seconds.

use std::collections::HashMap;
use std::time::Duration;

use remediate_sim::{Population, SimConfig};

use crate::support::{
    connection_args, results, run, scratch, start, state, stats, summary, users_by_address, write_csv,
};

fn harsh(count: usize) -> SimConfig {
    SimConfig {
        population: Population::Generated { count },
        seed: 42,
        graph_rate: 300.0,
        graph_window: Duration::from_secs(1),
        graph_write_rate: 60.0,
        graph_write_window: Duration::from_secs(1),
        exchange_rate: 120.0,
        exchange_window: Duration::from_secs(1),
        exchange_inflight: 5,
        latency: Duration::from_millis(4),
        fault_rate: 0.05,
        slow_reply: Duration::from_secs(30),
        token_lifetime: Duration::from_secs(2),
        ..SimConfig::default()
    }
}

/// Rates far above the simulator's budgets, so the adaptive pacing has to find them.
fn eager_tuning() -> Vec<String> {
    [
        "--graph-rps",
        "1000",
        "--graph-write-rps",
        "300",
        "--exchange-rps",
        "600",
        "--exchange-inflight",
        "4",
        "--request-timeout",
        "1s",
        "--concurrency",
        "32",
    ]
    .map(String::from)
    .to_vec()
}

/// Every mailbox of the tenant by UPN, plus each aliased one by its mail address (but those
/// whose sign-in is blocked: the fix's verdict says their device cannot send).
fn targets_of(state: &serde_json::Value) -> Vec<String> {
    state["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["accountEnabled"] != false)
        .map(|u| {
            let upn = u["userPrincipalName"].as_str().unwrap();
            let mail = u["mail"].as_str().unwrap();
            if mail != upn && u["hasMailbox"] == true { mail.to_string() } else { upn.to_string() }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fix_on_500_mailboxes_under_throttling_and_faults() {
    let sim = start(harsh(500)).await;
    let dir = scratch();
    let initial = state(&sim);
    let csv = write_csv(dir.path(), "mailboxes.csv", "UserPrincipalName", &targets_of(&initial));
    let report = dir.path().join("apply");
    let mut args = crate::support::fix_args(&csv, &report);
    args.extend(connection_args(&sim, dir.path()));
    args.extend(eager_tuning());
    assert_eq!(
        run(&args).await,
        0,
        "apply must succeed: {}",
        std::fs::read_to_string(report.join("summary.json")).unwrap_or_default()
    );

    let rows = results(&report);
    let counts = stats(&sim);
    assert_eq!(counts["noop_writes"], 0, "no write may set a value that was already there: {counts}");
    assert_eq!(counts["security_defaults_writes"], 1);
    assert_eq!(counts["unmatched_requests"], 0);
    assert!(counts["faults_total"].as_u64().unwrap() > 0, "the run must have met faults: {counts}");
    assert!(counts["tokens_issued"].as_u64().unwrap() > 2, "short-lived tokens must have been renewed: {counts}");
    assert!(
        rows.iter().all(|r| r["outcome"] != "failed"),
        "no row may fail: {:?}",
        rows.iter().find(|r| r["outcome"] == "failed")
    );
    for row in rows.iter().filter(|r| r["outcome"] == "skipped") {
        assert!(!row["error_message"].is_empty(), "a skipped row says why: {row:?}");
    }

    // Exactly one row per (target, setting), and the tenant row once.
    let mut keys = HashMap::new();
    for row in &rows {
        *keys.entry((row["identity"].clone(), row["setting"].clone())).or_insert(0) += 1;
    }
    assert!(keys.values().all(|&n| n == 1));
    let targets = targets_of(&initial).len();
    assert_eq!(rows.len(), 1 + 3 * targets, "smtp-auth, per-user-mfa and the verdict a target");
    let verdicts = rows.iter().filter(|r| r["setting"] == "smtp-auth-effective");
    assert!(verdicts.clone().all(|r| r["outcome"] != "blocked"), "every device the fix reached can send");

    // before/after agree with the tenant's state.
    let now = state(&sim);
    let before = users_by_address(&initial);
    let after = users_by_address(&now);
    assert_eq!(now["securityDefaultsEnabled"], false);
    let settings = rows.iter().filter(|r| r["setting"] != "smtp-auth-effective");
    for row in settings.filter(|r| r["outcome"] == "changed" || r["outcome"] == "compliant") {
        let key = row["identity"].to_lowercase();
        let (field, render): (&str, fn(&serde_json::Value) -> &str) = match row["setting"].as_str() {
            "smtp-auth" => ("smtpClientAuthenticationDisabled", |v| match v.as_bool() {
                None => "inherit",
                Some(true) => "disabled",
                Some(false) => "enabled",
            }),
            "per-user-mfa" => ("perUserMfaState", |v| v.as_str().unwrap()),
            _ => continue,
        };
        assert_eq!(render(&before[&key][field]), row["before"], "{row:?}");
        assert_eq!(render(&after[&key][field]), row["after"], "{row:?}");
    }
    let total = summary(&report);
    assert_eq!(total["exit_code"], 0);
    assert_eq!(total["counts"]["failed"], 0);
    assert_eq!(total["by_setting"]["security-defaults"]["changed"], 1);

    // Right after, a plan finds nothing left to change.
    let mut plan = vec![
        "plan".to_string(),
        csv.display().to_string(),
        "--profile".into(),
        "smtp-auth-fix".into(),
        "--detailed-exitcode".into(),
    ];
    plan.extend(connection_args(&sim, dir.path()));
    plan.extend(eager_tuning());
    plan.extend(["--report-dir".to_string(), dir.path().join("plan").display().to_string()]);
    let writes_before = stats(&sim)["writes_total"].clone();
    assert_eq!(run(&plan).await, 0);
    assert_eq!(stats(&sim)["writes_total"], writes_before, "plan never writes");
}

/// Configured rates five times the simulator's budgets, with faults: the runner must measure the
/// budgets it is bound by and stay under them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_5x_too_high_find_the_budgets_without_a_storm_of_429s() {
    let budgets = SimConfig {
        graph_rate: 150.0,
        graph_write_rate: 12.0,
        exchange_rate: 15.0,
        latency: Duration::from_millis(10),
        fault_rate: 0.02,
        slow_reply: Duration::from_secs(2),
        ..harsh(300)
    };
    let (graph, writes, exchange) = (budgets.graph_rate, budgets.graph_write_rate, budgets.exchange_rate);
    let sim = start(budgets).await;
    let dir = scratch();
    let csv = write_csv(dir.path(), "mailboxes.csv", "UserPrincipalName", &targets_of(&state(&sim)));
    let report = dir.path().join("apply");
    let mut args = crate::support::fix_args(&csv, &report);
    args.extend(connection_args(&sim, dir.path()));
    let rates = [graph, writes, exchange].map(|rate| format!("{}", rate * 5.0));
    for (flag, rate) in ["--graph-rps", "--graph-write-rps", "--exchange-rps"].iter().zip(&rates) {
        args.extend([flag.to_string(), rate.clone()]);
    }
    args.extend(["--request-timeout", "1s", "--concurrency", "64", "--bulk-read", "always"].map(String::from));
    assert_eq!(run(&args).await, 0);
    let total = summary(&report);
    let counts = stats(&sim);
    let pacing = &total["pacing"][&sim.app().tenant_id];
    // The APIs this run is bound by measured their budgets; none was overestimated.
    for (api, budget) in [("graph-writes", writes), ("exchange", exchange)] {
        let measured = pacing[api]["budget"].as_f64().unwrap_or_else(|| panic!("{api} measured nothing: {pacing}"));
        assert!((0.7 * budget..=1.15 * budget).contains(&measured), "{api}: {measured} for {budget}: {pacing}");
    }
    if let Some(measured) = pacing["graph"]["budget"].as_f64() {
        assert!(measured <= 1.15 * graph, "graph: {measured} for {graph}");
    }
    let throttled = counts["throttled_total"].as_u64().unwrap();
    assert!(throttled * 50 <= counts["requests_total"].as_u64().unwrap(), "under 2 % throttled: {counts}");
    assert_eq!(counts["noop_writes"], 0);

    // The next run on this tenant starts from the budgets this one measured, kept in the state
    // directory, with no flag.
    let plan = dir.path().join("plan");
    let mut args = ["plan", &csv.display().to_string(), "--profile", "smtp-auth-fix", "--bulk-read", "always"]
        .map(String::from)
        .to_vec();
    args.extend(["--report-dir".to_string(), plan.display().to_string()]);
    args.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&args).await, 0, "everything was fixed");
    let next = &summary(&plan)["pacing"][&sim.app().tenant_id];
    for api in ["graph-writes", "exchange"] {
        let measured = pacing[api]["budget"].as_f64().unwrap();
        assert_eq!(next[api]["remembered"].as_f64(), Some(measured), "{api}: {next}");
        let start = next[api]["start"].as_f64().unwrap();
        assert!((start - measured * 0.97).abs() < 0.02, "{api} starts just under the budget: {next}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_reports_pending_changes_with_exit_3_and_changes_nothing() {
    let sim = start(SimConfig { population: Population::Generated { count: 300 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "Mail", &targets_of(&state(&sim)));
    let report = dir.path().join("plan");
    let mut args = vec![
        "plan".to_string(),
        csv.display().to_string(),
        "--set".into(),
        "smtp-auth=disabled".into(),
        "--detailed-exitcode".into(),
    ];
    args.extend(connection_args(&sim, dir.path()));
    args.extend(["--report-dir".to_string(), report.display().to_string()]);
    assert_eq!(run(&args).await, 3);
    assert_eq!(stats(&sim)["writes_total"], 0);
    let rows = results(&report);
    assert!(rows.iter().any(|r| r["outcome"] == "would-change"));
    let named = ["smtp-auth", "smtp-auth-effective"];
    assert!(rows.iter().all(|r| named.contains(&r["setting"].as_str())), "only named settings are touched");
    assert!(rows.iter().any(|r| r["outcome"] == "skipped" && r["error_code"] == "Guest"));
    // A licence is not a mailbox: Exchange says which users have none, after one answer each.
    assert!(rows.iter().all(|r| r["error_code"] != "Unlicensed"));
    let no_mailbox: Vec<_> = rows.iter().filter(|r| r["error_code"] == "NoMailbox").collect();
    let answers = |r: &&std::collections::HashMap<String, String>| r["attempts"].parse::<u32>().unwrap();
    assert!(!no_mailbox.is_empty() && no_mailbox.iter().all(|r| answers(r) <= 2), "{no_mailbox:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_permission_before_anything_changed_exits_2_and_still_reports() {
    let config = SimConfig {
        population: Population::Generated { count: 30 },
        deny_permissions: vec!["Policy.ReadWrite.AuthenticationMethod".into()],
        ..SimConfig::default()
    };
    let sim = start(config).await;
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UPN", &targets_of(&state(&sim)));
    let report = dir.path().join("apply");
    let mut args = vec!["apply".to_string(), csv.display().to_string(), "--set".into(), "per-user-mfa=enforced".into()];
    args.extend(connection_args(&sim, dir.path()));
    args.extend(["--report-dir".to_string(), report.display().to_string()]);
    assert_eq!(run(&args).await, 2, "nothing changed, every failure a missing permission: a configuration problem");
    assert_eq!(crate::support::summary(&report)["exit_code"], 2, "the summary is written all the same");
    let failed: Vec<_> = results(&report).into_iter().filter(|r| r["outcome"] == "failed").collect();
    assert!(!failed.is_empty());
    assert!(
        failed.iter().all(|r| r["error_code"] == "Authorization_RequestDenied" && r["attempts"] == "2"),
        "403 is not retried: {:?}",
        failed[0]
    );
    assert!(failed.iter().all(|r| !r["client_request_id"].is_empty() && !r["request_id"].is_empty()));
}
