//! Can this device send? `diagnose` against the simulated tenant's own answer as a device would
//! get it (`POST /_sim/smtp-submit`, computed by the simulator's evaluation, written apart from the
//! client's), on a tenant seeded with every kind of blocker, alone and combined, and look-alikes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::StreamExt;
use remediate::sim::{Population, SimConfig, Simulator};
use serde_json::{Value, json};

use crate::support::{connection_args, run, scratch, start, state};

/// Inside the seeded "Head office" named location, and outside it.
const INSIDE: &str = "198.51.100.10";
const OUTSIDE: &str = "203.0.113.10";

pub fn blocked_tenant(count: usize) -> SimConfig {
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
pub async fn submit(sim: &Simulator, upn: &str, auth: &str, address: Option<&str>) -> Value {
    let mut body = json!({"userPrincipalName": upn, "auth": auth});
    if let Some(address) = address {
        body["clientIp"] = address.into();
    }
    let answer = reqwest::Client::new().post(format!("{}/_sim/smtp-submit", sim.url())).json(&body).send().await;
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
    for (client, verdict_column, layers_column) in [("basic", "basic", "basic_blocked_by"), ("oauth", "oauth", "oauth_blocked_by")] {
        let checks = futures_util::stream::iter(&rows)
            .map(|row| {
                let upn = upn_of[&row["user_id"]].clone();
                let sim = &sim;
                async move {
                    let inside = submit(sim, &upn, client, Some(INSIDE)).await;
                    let outside = submit(sim, &upn, client, Some(OUTSIDE)).await;
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
            assert_eq!(heard, expected, "{client} {upn}: diagnose says {verdict}, the device hears {inside} / {outside}");
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
    for layer in ["mailbox", "smtp-auth-switch", "authentication-policy", "conditional-access", "per-user-mfa", "sign-in-blocked"] {
        assert!(blocked_layers.contains(&format!("basic:{layer}")), "no mailbox blocked by {layer}: {blocked_layers:?}");
    }
    assert!(blocked_layers.contains("oauth:conditional-access"), "a policy that blocks modern clients too");
}
