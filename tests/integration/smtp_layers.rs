//! Can this device send? `diagnose` against the simulated tenant's own answer as a device would
//! get it (`POST /_sim/smtp-submit`, computed by the simulator's evaluation, written apart from the
//! client's), on a tenant seeded with every kind of blocker, alone and combined, and look-alikes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::StreamExt;
use remediate_sim::{Population, SimConfig, Simulator};
use serde_json::{Value, json};

use crate::support::{connection_args, run, scratch, start, state};

/// Inside the seeded "Head office" named location, and outside it.
const INSIDE: &str = "198.51.100.10";
const OUTSIDE: &str = "203.0.113.10";

pub(crate) fn blocked_tenant(count: usize) -> SimConfig {
    SimConfig {
        population: Population::Generated { count },
        smtp_blockers: 0.2,
        // A tenant that uses Conditional Access has security defaults off: the two are never on
        // together, and with them on nothing else is seen.
        security_defaults: false,
        throttle: false,
        ..SimConfig::default()
    }
}

/// What a device signing in as `upn` hears, from `address` (none: an address no policy names).
pub(crate) async fn submit(
    http: &reqwest::Client,
    sim: &Simulator,
    upn: &str,
    auth: &str,
    address: Option<&str>,
) -> Value {
    let mut body = json!({"userPrincipalName": upn, "auth": auth});
    if let Some(address) = address {
        body["clientIp"] = address.into();
    }
    let answer = http.post(format!("{}/_sim/smtp-submit", sim.url())).json(&body).send().await;
    answer.unwrap().json().await.unwrap()
}

/// The simulator's names of a refusing layer, as diagnose names them.
fn ours(layer: &str) -> &str {
    match layer {
        "smtp-auth-tenant" | "smtp-auth-mailbox" => "smtp-auth-switch",
        "no-mailbox" => "mailbox",
        "basic-auth-retired" => "basic-authentication",
        other => other,
    }
}

fn diagnosis_rows(report: &std::path::Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(report.join("smtp-auth-diagnosis.csv")).unwrap();
    reader.deserialize().map(|row| row.unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_agrees_with_what_each_device_hears() {
    let sim = start(blocked_tenant(5000)).await;
    let dir = scratch();
    let report = dir.path().join("diagnosis");
    let mut args = vec!["diagnose".to_string(), "--all-mailboxes".into(), "--report-dir".into()];
    args.push(report.display().to_string());
    args.extend(connection_args(&sim, dir.path()));
    let code = run(&args).await;
    assert!(code == 3 || code == 1, "some devices are blocked, some depend on their address: {code}");
    let upn_of: HashMap<String, String> = state(&sim)["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u["userPrincipalName"].as_str().unwrap().to_string()))
        .collect();
    let rows = diagnosis_rows(&report);
    assert!(rows.len() > 4000, "every mailbox: {}", rows.len());
    let mut tables: BTreeMap<&str, BTreeMap<(String, &str), u32>> = BTreeMap::new();
    let mut blocked_layers = BTreeSet::new();
    let http = reqwest::Client::new();
    for (client, verdict_column, layers_column) in
        [("basic", "basic", "basic_blocked_by"), ("oauth", "oauth", "oauth_blocked_by")]
    {
        let checks = futures_util::stream::iter(&rows)
            .map(|row| {
                let upn = upn_of[&row["user_id"]].clone();
                let (sim, http) = (&sim, &http);
                async move {
                    let inside = submit(http, sim, &upn, client, Some(INSIDE)).await;
                    // Only a verdict that depends on the device's address can differ outside.
                    let outside = if row[verdict_column] == "unknown" {
                        submit(http, sim, &upn, client, Some(OUTSIDE)).await
                    } else {
                        inside.clone()
                    };
                    (row, upn, inside, outside)
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
        for (row, upn, inside, outside) in checks {
            let verdict = row[verdict_column].as_str();
            let heard = match (inside["accepted"].as_bool().unwrap(), outside["accepted"].as_bool().unwrap()) {
                (true, true) => "accepted",
                (false, false) => "refused",
                (true, false) => "accepted only inside",
                (false, true) => "accepted only outside",
            };
            *tables.entry(client).or_default().entry((verdict.to_string(), heard)).or_default() += 1;
            let expected = match verdict {
                "can-send" => "accepted",
                "blocked" => "refused",
                _ => "accepted only inside",
            };
            assert_eq!(
                heard, expected,
                "{client} {upn}: diagnose says {verdict}, the device hears {inside} / {outside}"
            );
            if verdict == "blocked" {
                let said: BTreeSet<&str> = row[layers_column].split_whitespace().collect();
                let heard: BTreeSet<&str> =
                    inside["layers"].as_array().unwrap().iter().map(|l| ours(l.as_str().unwrap())).collect();
                assert_eq!(said, heard, "{client} {upn}: the layers that refuse");
                blocked_layers.extend(said.iter().map(|l| format!("{client}:{l}")));
            }
        }
    }
    for (client, table) in &tables {
        println!("{client}: diagnose verdict × what the device hears (inside / outside the head office)");
        for ((verdict, heard), count) in table {
            println!("  {verdict:10} {heard:22} {count}");
        }
    }
    // (A user without a mailbox is no mailbox of the tenant's listing: --all-mailboxes never names one.)
    for layer in ["smtp-auth-switch", "authentication-policy", "conditional-access", "per-user-mfa", "sign-in-blocked"]
    {
        assert!(
            blocked_layers.contains(&format!("basic:{layer}")),
            "no mailbox blocked by {layer}: {blocked_layers:?}"
        );
    }
    assert!(blocked_layers.contains("oauth:conditional-access"), "a policy that blocks modern clients too");
}

/// Every group's members and every user's authentication policy: what the opt-in steps change.
fn layers_of(state: &Value) -> (Value, Vec<(Value, Value)>) {
    let groups = state["groups"].clone();
    let users = state["users"].as_array().unwrap().iter().map(|u| (u["id"].clone(), u["AuthenticationPolicy"].clone()));
    (groups, users.collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fix_is_done_only_where_the_device_can_send_and_its_steps_roll_back() {
    // Security defaults on, as on a tenant the fix is first run on: the fix turns them off, and
    // from then the Conditional Access policies are in force.
    let sim = start(SimConfig { security_defaults: true, ..blocked_tenant(1500) }).await;
    let initial = state(&sim);
    let dir = scratch();
    let report = dir.path().join("fix");
    let mut args: Vec<String> =
        ["apply", "--all-mailboxes", "--profile", "smtp-auth-fix", "--yes"].map(String::from).to_vec();
    args.extend(
        ["--basic-auth-policy", "Allow Basic SMTP", "--ca-exclusion-group", "CA exclusion - legacy authentication"]
            .map(String::from),
    );
    args.extend(["--report-dir".to_string(), report.display().to_string()]);
    args.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&args).await, 1, "some devices still cannot send: the fix is not done");

    let rows = crate::support::results(&report);
    let verdicts: Vec<_> = rows.iter().filter(|r| r["setting"] == "smtp-auth-effective").collect();
    let steps = |setting: &str| rows.iter().filter(|r| r["setting"] == setting && r["outcome"] == "changed").count();
    assert!(steps("authentication-policy") > 0 && steps("ca-exclusion") > 0, "both steps were taken somewhere");
    let upn_of: HashMap<String, String> = initial["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u["userPrincipalName"].as_str().unwrap().to_string()))
        .collect();
    let http = reqwest::Client::new();
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for row in verdicts.iter().filter(|r| !r["user_id"].is_empty()) {
        let upn = &upn_of[&row["user_id"]];
        let inside = submit(&http, &sim, upn, "basic", Some(INSIDE)).await;
        let heard: Vec<&str> = inside["layers"].as_array().unwrap().iter().map(|l| ours(l.as_str().unwrap())).collect();
        match row["outcome"].as_str() {
            "compliant" => assert_eq!(inside["accepted"], true, "{upn} is done, and the device hears {inside}"),
            "blocked" => assert!(
                heard.contains(&row["error_code"].as_str()),
                "{upn}: {} but the device hears {inside}",
                row["error_code"]
            ),
            "failed" => {
                assert_eq!(row["error_code"], "VerdictUnknown", "{row:?}");
                let outside = submit(&http, &sim, upn, "basic", Some(OUTSIDE)).await;
                assert_eq!(
                    (inside["accepted"].as_bool(), outside["accepted"].as_bool()),
                    (Some(true), Some(false)),
                    "{upn}"
                );
            }
            "skipped" => {}
            other => panic!("{upn}: a verdict row {other}: {row:?}"),
        }
        *counts.entry(format!("{} {}", row["outcome"], row["error_code"])).or_default() += 1;
    }
    println!("smtp-auth-effective after the fix: {counts:?}");
    assert!(counts.keys().any(|k| k.starts_with("compliant")) && counts.keys().any(|k| k.starts_with("blocked")));

    let mut rollback =
        vec!["rollback".to_string(), report.display().to_string(), "--yes".into(), "--report-dir".into()];
    rollback.push(dir.path().join("rollback").display().to_string());
    rollback.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&rollback).await, 0);
    let after = state(&sim);
    assert_eq!(layers_of(&after), layers_of(&initial), "group memberships and policy assignments as they were");
    assert_eq!(crate::support::settings_of(&after), crate::support::settings_of(&initial), "every setting as it was");
}

/// The README's fix and lockdown pair: its commands, continuation lines joined, comments left out.
fn readme_pair() -> Vec<String> {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("Then act on the answer.").nth(1).expect("the pair's section");
    let block = section.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    let joined = block.replace("\\\n", " ");
    joined.lines().map(str::trim).filter(|l| l.starts_with("remediate ")).map(str::to_string).collect()
}

/// The README's pair on one night: the targeted fix records what it turned on, the lockdown holds
/// it there; every device the fix made able to send still can, and no other can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_pair_never_undoes_itself() {
    let sim = start(SimConfig { smtp_sign_ins: 0.3, security_defaults: true, ..blocked_tenant(600) }).await;
    let dir = scratch();
    let root = dir.path();
    for folder in ["bin", "lib", "etc", "log"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
    }
    let pair = readme_pair();
    assert_eq!(pair.len(), 3, "the fix, the lockdown and its audit: {pair:?}");
    // The README's expiry is a real day; the test's must stay ahead of the calendar.
    let next_year = time::OffsetDateTime::now_utc().date().year() + 1;
    let fix = pair[0].replace("--expires 2027-06-30", &format!("--expires {next_year}-12-31"));
    let in_dir = |command: &str, name: &str| format!("{command} --report-dir {}", root.join(name).display());
    let night = |script: String| {
        let root = root.to_path_buf();
        let sim = &sim;
        async move { tokio::task::block_in_place(|| crate::readme_cron::run(&script, &root, "2026-12-04", sim)) }
    };
    let fixed = night(in_dir(&fix, "fix")).await;
    assert!(fixed == 0 || fixed == 1, "the fix ran: {fixed}");
    assert_eq!(night(in_dir(&pair[1], "lockdown")).await, 0, "the lockdown ran");
    assert_eq!(night(in_dir(&pair[2], "audit")).await, 0, "and left nothing to drift");

    // Able to send: done, or (a location condition) able from inside the head office.
    let able: BTreeSet<String> = crate::support::results(&root.join("fix"))
        .into_iter()
        .filter(|r| r["setting"] == "smtp-auth-effective")
        .filter(|r| r["outcome"] == "compliant" || r["error_code"] == "VerdictUnknown")
        .map(|r| r["user_id"].clone())
        .collect();
    assert!(!able.is_empty(), "the fix made some devices able to send");
    let http = reqwest::Client::new();
    let now = state(&sim);
    for user in now["users"].as_array().unwrap().iter().filter(|u| u["hasMailbox"] == true) {
        let upn = user["userPrincipalName"].as_str().unwrap();
        let heard = submit(&http, &sim, upn, "basic", Some(INSIDE)).await;
        let expected = able.contains(user["id"].as_str().unwrap());
        assert_eq!(heard["accepted"].as_bool(), Some(expected), "{upn}: {heard}");
    }
    let exceptions = std::fs::read_to_string(root.join("etc/smtp-exceptions.csv")).unwrap();
    assert!(
        exceptions.starts_with("identity,setting,value,owner,reason,expires") && exceptions.contains("Facilities IT")
    );
}
