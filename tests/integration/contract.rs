//! The contract corpus (`tests/contract`): request and response examples from Microsoft's
//! documentation and from public clients that run on real tenants, each naming its source. The
//! client's parsers and classifiers read every example as the example says they must, and the
//! simulator's answer to the same request has at least the example's shape (every key the
//! example has, with a value of the same JSON type), so neither can drift from the documents
//! on its own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use remediate::cloud::{limit_fraction, retry_after, service_error};
use remediate::sim::{Population, SimConfig, Simulator};
use serde_json::{Value, json};

use crate::support::{EXCHANGE, GRAPH, start, state, token};

fn examples() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/contract");
    let mut all: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let example: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            assert!(example["source"].as_str().is_some_and(|s| s.len() > 20), "{} names its source", path.display());
            (path.file_name().unwrap().to_string_lossy().into_owned(), example)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(all.len() >= 12, "the corpus holds every kind of answer");
    all
}

fn body_bytes(example: &Value) -> Vec<u8> {
    match example["text"].as_str() {
        Some(text) => text.as_bytes().to_vec(),
        None => example["body"].to_string().into_bytes(),
    }
}

fn header<'a>(example: &'a Value, name: &str) -> Option<&'a str> {
    example["headers"].as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?.1.as_str()
}

#[test]
fn the_client_reads_every_example_as_documented() {
    for (name, example) in examples() {
        let expect = &example["expect"];
        let kind = example["kind"].as_str().unwrap();
        if let Some(ms) = expect["retry_after_ms"].as_u64() {
            let wait = retry_after::parse(header(&example, "retry-after").unwrap(), SystemTime::now());
            assert_eq!(wait, Some(Duration::from_millis(ms)), "{name}");
        }
        match kind {
            "graph-error" | "exchange-error" | "identity-error" => {
                let parsed = service_error::parse(&body_bytes(&example));
                if let Some(code) = expect["code"].as_str() {
                    assert_eq!(parsed.code, code, "{name}");
                }
                if let Some(message) = expect["message"].as_str() {
                    assert_eq!(parsed.message, message, "{name}: the message, not the raw detail");
                }
                if let Some(exception) = expect["exception"].as_str() {
                    assert_eq!(parsed.exception.as_deref(), Some(exception), "{name}");
                }
                if let Some(not_found) = expect["not_found"].as_bool() {
                    assert_eq!(service_error::is_exchange_not_found(&parsed), not_found, "{name}");
                }
                if let Some(concurrency) = expect["concurrency"].as_bool() {
                    assert_eq!(parsed.message.contains("maximum number of concurrent requests"), concurrency, "{name}");
                }
            }
            "throttle-headers" => {
                if let Some(fraction) = expect["limit_fraction"].as_f64() {
                    let read = limit_fraction(header(&example, "x-ms-throttle-limit-percentage").unwrap());
                    assert_eq!(read, Some(fraction), "{name}");
                }
                if let Some(parts) = expect["scope_parts"].as_array() {
                    let scope: Vec<&str> = header(&example, "x-ms-throttle-scope").unwrap().split('/').collect();
                    assert_eq!(scope.len(), 4, "{name}: <Scope>/<Limit>/<ApplicationId>/<TenantId>");
                    assert_eq!(scope[0], parts[0], "{name}");
                    assert_eq!(scope[1], parts[1], "{name}");
                }
            }
            "batch-answer" => {
                let responses = example["body"]["responses"].as_array().unwrap();
                assert_eq!(responses.len() as u64, expect["items"].as_u64().unwrap(), "{name}");
                let throttled = responses.iter().filter(|r| r["status"] == 429).count() as u64;
                assert_eq!(throttled, expect["throttled_items"].as_u64().unwrap(), "{name}");
                assert!(responses.iter().all(|r| r["id"].is_string() && r["status"].is_u64()), "{name}");
            }
            "shape" => {}
            other => panic!("{name}: unknown kind {other}"),
        }
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

async fn send(request: reqwest::RequestBuilder) -> (u16, BTreeMap<String, String>, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_lowercase(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, headers, body)
}

fn invoke(cmdlet: &str, parameters: Value) -> Value {
    json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}})
}

/// The id of a group of a tenant seeded with `--smtp-blockers`, and its direct user members.
fn seeded_group(sim: &Simulator, name: &str) -> (String, Vec<String>) {
    let snapshot = state(sim);
    let group = snapshot["groups"].as_array().unwrap().iter().find(|g| g["displayName"] == name).unwrap().clone();
    let members = group["members"].as_array().unwrap().iter();
    let users =
        members.filter(|m| m["@odata.type"] == "#microsoft.graph.user").map(|m| m["id"].as_str().unwrap().to_string());
    (group["id"].as_str().unwrap().to_string(), users.collect())
}

/// The answers about the layers that decide SMTP AUTH, from a tenant seeded with them.
async fn simulated_layers(which: &str, layers: &Simulator) -> (u16, BTreeMap<String, String>, Value) {
    let http = reqwest::Client::new();
    let graph = token(layers, GRAPH).await;
    let exchange_url = format!("{}/adminapi/beta/{}/InvokeCommand", layers.url(), layers.app().tenant_id);
    let exchange = token(layers, EXCHANGE).await;
    let invoke_layers = |body: Value| http.post(&exchange_url).bearer_auth(&exchange).json(&body);
    match which {
        "graph-ca-policies" => {
            let url = format!("{}/v1.0/identity/conditionalAccess/policies?$top=2", layers.url());
            send(http.get(url).bearer_auth(&graph)).await
        }
        "graph-transitive-members" => {
            let (group, _) = seeded_group(layers, "Legacy authentication blocked");
            let url = format!("{}/v1.0/groups/{group}/transitiveMembers?$top=2", layers.url());
            send(http.get(url).bearer_auth(&graph)).await
        }
        "graph-member-exists" => {
            let (group, users) = seeded_group(layers, "Legacy authentication blocked");
            let reference =
                json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", users[0])});
            let url = format!("{}/v1.0/groups/{group}/members/$ref", layers.url());
            send(http.post(url).bearer_auth(&graph).json(&reference)).await
        }
        "exchange-organization-config" => send(invoke_layers(invoke("Get-OrganizationConfig", json!({})))).await,
        "exchange-authentication-policy" => {
            send(invoke_layers(invoke("Get-AuthenticationPolicy", json!({"Identity": "Block Basic Auth"})))).await
        }
        "exchange-get-user" => {
            let dn = state(layers)["authenticationPolicies"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["Name"] == "Block Basic Auth")
                .unwrap()["DistinguishedName"]
                .clone();
            let filter = format!("AuthenticationPolicy -eq '{}'", dn.as_str().unwrap());
            send(invoke_layers(invoke("Get-User", json!({"Filter": filter, "ResultSize": "Unlimited"})))).await
        }
        other => panic!("no simulated counterpart named {other}"),
    }
}

/// The simulator's answer to the request an example answers.
async fn simulated(
    which: &str,
    sim: &Simulator,
    tight: &Simulator,
    writes: &Simulator,
) -> (u16, BTreeMap<String, String>, Value) {
    let http = reqwest::Client::new();
    let graph = token(sim, GRAPH).await;
    let exchange_url = format!("{}/adminapi/beta/{}/InvokeCommand", sim.url(), sim.app().tenant_id);
    let exchange = || async { http.post(&exchange_url).bearer_auth(token(sim, EXCHANGE).await) };
    let users = state(sim)["users"].as_array().unwrap().clone();
    match which {
        "graph-not-found" => {
            send(http.get(format!("{}/v1.0/users/nobody@contoso.com", sim.url())).bearer_auth(&graph)).await
        }
        "graph-throttled" | "graph-write-throttled" => {
            let target = if which == "graph-throttled" { tight } else { writes };
            let bearer = token(target, GRAPH).await;
            let user = state(target)["users"][0]["id"].as_str().unwrap().to_string();
            let url = format!("{}/beta/users/{user}/authentication/requirements", target.url());
            for _ in 0..50 {
                let request = if which == "graph-throttled" {
                    http.get(&url).bearer_auth(&bearer)
                } else {
                    http.patch(&url).bearer_auth(&bearer).json(&json!({"perUserMfaState": "enforced"}))
                };
                let answer = send(request).await;
                if answer.0 == 429 {
                    return answer;
                }
            }
            panic!("the tight tenant never throttled");
        }
        "graph-batch-424" => {
            let bearer = token(tight, GRAPH).await;
            let user = state(tight)["users"][1]["id"].as_str().unwrap().to_string();
            let requests: Vec<Value> = (0..20)
                .map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/users/{user}/authentication/requirements")}))
                .collect();
            send(
                http.post(format!("{}/beta/$batch", tight.url()))
                    .bearer_auth(&bearer)
                    .json(&json!({"requests": requests})),
            )
            .await
        }
        "exchange-not-found" => {
            send(exchange().await.json(&invoke("Get-CASMailbox", json!({"Identity": "ghost@contoso.com"})))).await
        }
        "exchange-concurrency" => {
            let bearer = token(tight, EXCHANGE).await;
            let url = format!("{}/adminapi/beta/{}/InvokeCommand", tight.url(), tight.app().tenant_id);
            let body = invoke("Get-TransportConfig", json!({}));
            let answers =
                futures_util::future::join_all((0..3).map(|_| send(http.post(&url).bearer_auth(&bearer).json(&body))))
                    .await;
            answers.into_iter().find(|a| a.0 == 500).expect("the plain-text refusal")
        }
        "exchange-casmailbox-page" => {
            let request = exchange()
                .await
                .header("Prefer", "odata.maxpagesize=2")
                .json(&invoke("Get-CASMailbox", json!({"ResultSize": "Unlimited"})));
            send(request).await
        }
        "token-answer" | "token-error" => {
            let app = sim.app();
            let secret = if which == "token-answer" { app.client_secret.clone() } else { "wrong".into() };
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", app.client_id.as_str()),
                ("client_secret", secret.as_str()),
                ("scope", GRAPH),
            ];
            send(http.post(format!("{}/{}/oauth2/v2.0/token", sim.url(), app.tenant_id)).form(&form)).await
        }
        "security-defaults" => {
            send(
                http.get(format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", sim.url()))
                    .bearer_auth(&graph),
            )
            .await
        }
        "mfa-requirements" => {
            let id = users[0]["id"].as_str().unwrap();
            send(http.get(format!("{}/beta/users/{id}/authentication/requirements", sim.url())).bearer_auth(&graph))
                .await
        }
        "graph-sign-ins" => {
            let query = "$filter=clientAppUsed%20eq%20%27Authenticated%20SMTP%27&$top=1";
            let url = format!("{}/v1.0/auditLogs/signIns?{query}", sim.url());
            send(http.get(url).bearer_auth(&graph)).await
        }
        "graph-not-premium" => {
            let basic = start(SimConfig {
                population: Population::Generated { count: 5 },
                premium: false,
                ..SimConfig::default()
            })
            .await;
            let bearer = token(&basic, GRAPH).await;
            send(http.get(format!("{}/v1.0/auditLogs/signIns", basic.url())).bearer_auth(&bearer)).await
        }
        "openid-configuration" => {
            send(http.get(format!("{}/{}/v2.0/.well-known/openid-configuration", sim.url(), sim.app().domain))).await
        }
        other => panic!("no simulated counterpart named {other}"),
    }
}

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
    for (name, example) in examples() {
        let Some(which) = example["sim"].as_str() else { continue };
        let (status, headers, body) = if LAYER_EXAMPLES.contains(&which) {
            simulated_layers(which, &layers).await
        } else {
            simulated(which, &sim, &tight, &writes).await
        };
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
        if which == "graph-batch-424" {
            let throttled = body["responses"].as_array().unwrap().iter().filter(|r| r["status"] == 429).count();
            assert!(throttled > 0, "{name}: a 424 means an item was throttled");
        }
    }
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
