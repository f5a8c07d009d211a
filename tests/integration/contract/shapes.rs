//! The simulator's shapes: its answer to the request of every example has at least the example's
//! shape, it takes every audience of the cloud host table, and its throttling warning is the
//! documented fraction.

use std::collections::BTreeMap;
use std::time::Duration;

use remediate_sim::{Population, SimConfig, Simulator};
use serde_json::{Value, json};

use super::managed_identity::simulated_identity;
use super::simulated::{simulated, simulated_layers};
use super::{examples, invoke, send};
use crate::support::{GRAPH, start, token};

/// The examples answered by the tenant seeded with the SMTP AUTH layers.
const LAYER_EXAMPLES: [&str; 6] = [
    "graph-ca-policies",
    "graph-transitive-members",
    "graph-member-exists",
    "exchange-organization-config",
    "exchange-authentication-policy",
    "exchange-get-user",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_answers_with_every_documented_shape() {
    let [sim, tight, writes, layers] = shape_tenants().await;
    for (name, example) in examples() {
        let Some(which) = example["sim"].as_str() else { continue };
        let (status, headers, body) = if which.starts_with("managed-identity") {
            simulated_identity(which, &example).await
        } else if LAYER_EXAMPLES.contains(&which) {
            simulated_layers(which, &layers).await
        } else {
            simulated(which, &sim, &tight, &writes).await
        };
        check_shape(&name, which, &example, (status, headers, body), &writes);
    }
}

/// The tenants the shape test asks: a plain one, one whose reads and Exchange calls throttle at
/// once, one whose writes do, and one seeded with every SMTP AUTH layer.
async fn shape_tenants() -> [Simulator; 4] {
    let sim = start(SimConfig {
        population: Population::Generated { count: 20 },
        throttle: false,
        smtp_sign_ins: 1.0,
        ..SimConfig::default()
    })
    .await;
    let tight = start(SimConfig {
        population: Population::Generated { count: 20 },
        graph_rate: 2.0,
        graph_window: Duration::from_secs(5),
        graph_write_rate: 1.0,
        graph_write_window: Duration::from_secs(5),
        exchange_inflight: 1,
        // Answers that take a while, so requests sent together are in flight together.
        latency: Duration::from_millis(50),
        seed: 2,
        ..SimConfig::default()
    })
    .await;
    // Reads aplenty, one write in five seconds: the write budget runs out first.
    let writes = start(SimConfig {
        population: Population::Generated { count: 20 },
        graph_write_rate: 0.2,
        graph_write_window: Duration::from_secs(5),
        seed: 3,
        ..SimConfig::default()
    })
    .await;
    // Every layer that decides SMTP AUTH, seeded on half the mailboxes.
    let layers = start(SimConfig {
        population: Population::Generated { count: 60 },
        throttle: false,
        smtp_blockers: 0.5,
        seed: 4,
        ..SimConfig::default()
    })
    .await;
    [sim, tight, writes, layers]
}

/// Holds one simulated answer to its example: the status, the body's shape or text, the headers,
/// and what some examples say beyond their shape.
fn check_shape(
    name: &str,
    which: &str,
    example: &Value,
    answer: (u16, BTreeMap<String, String>, Value),
    writes: &Simulator,
) {
    let (status, headers, body) = answer;
    if LAYER_EXAMPLES.contains(&which) && example["body"]["value"].is_array() {
        let items = body["value"].as_array().map_or(0, Vec::len);
        assert!(items > 0, "{name}: an empty list would match any shape: {body}");
    }
    let expected_status = example["status"].as_u64().unwrap() as u16;
    let same_kind_of_status =
        status == expected_status || (which == "exchange-not-found" && [404, 500].contains(&status));
    assert!(same_kind_of_status, "{name}: the simulator answered {status}: {body}");
    match example["text"].as_str() {
        Some(text) => assert!(body.as_str().is_some_and(|b| b.starts_with(&text[..40])), "{name}: {body}"),
        None if which != "exchange-not-found" || status == expected_status => {
            let mut problems = Vec::new();
            has_shape(&example["body"], &body, "body", &mut problems);
            assert!(problems.is_empty(), "{name}: {problems:?}\n{body}");
        }
        None => {}
    }
    for (wanted, _) in example["headers"].as_object().into_iter().flatten() {
        let wanted = wanted.to_lowercase();
        if wanted != "content-type" && wanted != "x-ms-throttle-limit-percentage" {
            assert!(headers.contains_key(&wanted), "{name}: no {wanted} header in {headers:?}");
        }
    }
    if which == "graph-write-throttled" {
        let scope: Vec<&str> = headers["x-ms-throttle-scope"].split('/').collect();
        assert_eq!(scope, ["Tenant_Application", "Write", &writes.app().client_id, &writes.app().tenant_id]);
        assert_eq!(headers["x-ms-throttle-information"], "WriteLimitExceeded", "{name}");
    }
    if which == "managed-identity-arc-challenge" {
        let realm = headers["www-authenticate"].strip_prefix("Basic realm=").unwrap_or_default();
        assert!(realm.ends_with(".key"), "{name}: {headers:?}");
    }
    if which == "graph-batch-424" {
        let throttled = body["responses"].as_array().unwrap().iter().filter(|r| r["status"] == 429).count();
        assert!(throttled > 0, "{name}: a 424 means an item was throttled");
    }
}

/// Whether `actual` has every key of `wanted`, recursively, with values of the same JSON type.
fn has_shape(wanted: &Value, actual: &Value, path: &str, problems: &mut Vec<String>) {
    match (wanted, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                match have.get(key) {
                    Some(found) => has_shape(value, found, &format!("{path}.{key}"), problems),
                    None => problems.push(format!("{path}.{key} is missing")),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if let (Some(first), Some(found)) = (want.first(), have.first()) {
                has_shape(first, found, &format!("{path}[0]"), problems);
            }
        }
        // A null in an example stands for "null or a value" (SmtpClientAuthenticationDisabled).
        (Value::Null, _) => {}
        (want, have) if std::mem::discriminant(want) != std::mem::discriminant(have) => {
            problems.push(format!("{path} is {have}, the example has {want}"));
        }
        _ => {}
    }
}

/// Each cloud's token audiences in the host table example are ones the simulator issues tokens
/// for, and its Graph and Exchange take them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_accepts_every_documented_audience() {
    let sim = start(SimConfig { population: Population::Generated { count: 5 }, ..SimConfig::default() }).await;
    let http = reqwest::Client::new();
    let mut checked = 0;
    for (name, example) in examples().into_iter().filter(|(_, e)| e["kind"] == "cloud-hosts") {
        for (cloud, hosts) in example["clouds"].as_object().unwrap() {
            let graph =
                sim.client_token(&http, &format!("{}/.default", hosts["graph_audience"].as_str().unwrap())).await;
            let graph = graph.unwrap_or_else(|e| panic!("{name}: {cloud}'s Graph audience: {e}"));
            let url = format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", sim.url());
            let (status, _, body) = send(http.get(url).bearer_auth(&graph)).await;
            assert_eq!(status, 200, "{name}: {cloud}'s Graph token: {body}");
            let audience = hosts["exchange_audience"].as_str().unwrap();
            let exchange = sim.client_token(&http, &format!("{audience}/.default")).await;
            let exchange = exchange.unwrap_or_else(|e| panic!("{name}: {cloud}'s Exchange audience: {e}"));
            let url = format!("{}/adminapi/beta/{}/InvokeCommand", sim.url(), sim.app().tenant_id);
            let body = invoke("Get-OrganizationConfig", json!({}));
            let (status, _, answer) = send(http.post(url).bearer_auth(&exchange).json(&body)).await;
            assert_eq!(status, 200, "{name}: {cloud}'s Exchange token: {answer}");
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "every cloud of the host table");
}

#[test]
fn a_pacer_warning_comes_as_a_fraction_from_the_simulator() {
    // The simulator's warning header is the documented fraction (0.8 to 1.8), not a percentage.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let sim = start(SimConfig {
            population: Population::Generated { count: 5 },
            graph_rate: 10.0,
            graph_window: Duration::from_secs(10),
            ..SimConfig::default()
        })
        .await;
        let bearer = token(&sim, GRAPH).await;
        let url = format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", sim.url());
        let http = reqwest::Client::new();
        let mut warned = None;
        for _ in 0..100 {
            let (status, headers, _) = send(http.get(&url).bearer_auth(&bearer)).await;
            if let Some(value) = headers.get("x-ms-throttle-limit-percentage") {
                warned = Some(value.clone());
                break;
            }
            assert_eq!(status, 200, "warned before throttled");
        }
        let value: f64 = warned.expect("a warning past 0.8").parse().unwrap();
        assert!((0.8..=1.8).contains(&value), "{value}");
    });
}
