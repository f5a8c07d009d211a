//! Managed identity forms: the client sends each form's documented request (to a bare server that
//! answers with the example, never the simulator) and reads the answer as documented, and the
//! simulator answers the example's own request on its route for the form.

use std::collections::BTreeMap;
use std::time::Duration;

use remediate::testing::SecretString;
use remediate::testing::managed::{self, ManagedSource, Thumbprint, pinned_client};
use remediate_sim::{Population, SimConfig};
use serde_json::{Value, json};

use super::bare_server::{Seen, bare_tls, serve_answers};
use super::{examples, send};
use crate::support::start;

/// The simulator's route for each managed identity form, and the resource it knows that stands
/// in for the example's (a token for Azure Resource Manager or Key Vault is none of its business).
fn identity_route(which: &str) -> &'static str {
    match which {
        "managed-identity-app-service" => "/msi/token",
        "managed-identity-azure-ml" => "/MSI/auth",
        "managed-identity-cloud-shell" => "/oauth2/token",
        "managed-identity-imds"
        | "managed-identity-arc-challenge"
        | "managed-identity-arc-token"
        | "managed-identity-service-fabric" => "/metadata/identity/oauth2/token",
        other => panic!("no managed identity route named {other}"),
    }
}

const KNOWN_RESOURCE: &str = "https://graph.microsoft.com";

/// The example's own request (method, query or form, headers) sent to the simulator's route for
/// its form: the resource one the simulator knows, a documented secret replaced by this host's,
/// and Arc's key read from the file its challenge names.
pub(super) async fn simulated_identity(which: &str, example: &Value) -> (u16, BTreeMap<String, String>, Value) {
    let tokens = tempfile::tempdir().unwrap();
    let arc = which.starts_with("managed-identity-arc");
    let sim = start(SimConfig {
        population: Population::Generated { count: 5 },
        azure_arc: arc.then(|| tokens.path().to_path_buf()),
        service_fabric: which == "managed-identity-service-fabric",
        ..SimConfig::default()
    })
    .await;
    let request = &example["request"];
    let pairs = |field: &str| -> Vec<(String, String)> {
        let all = request[field].as_object().into_iter().flatten();
        all.map(|(k, v)| {
            let value = if k == "resource" { KNOWN_RESOURCE } else { v.as_str().unwrap() };
            (k.clone(), value.to_string())
        })
        .collect()
    };
    // Service Fabric's endpoint is the simulator's TLS one, reached with its certificate pinned.
    let (url, http) = match sim.service_fabric_endpoint() {
        Some((endpoint, thumbprint)) => (endpoint, pinned_client(Thumbprint::parse(&thumbprint).unwrap()).unwrap().0),
        None => (format!("{}{}", sim.url(), identity_route(which)), reqwest::Client::new()),
    };
    let url = url::Url::parse_with_params(&url, pairs("query")).unwrap();
    let build = |key: Option<&str>| {
        let method = reqwest::Method::from_bytes(request["method"].as_str().unwrap().as_bytes()).unwrap();
        let mut builder = http.request(method, url.clone());
        if request["form"].is_object() {
            builder = builder.form(&pairs("form"));
        }
        for (name, value) in pairs("headers") {
            let value = match name.to_lowercase().as_str() {
                "x-identity-header" | "secret" => sim.app().identity_header.clone(),
                "authorization" => format!("Basic {}", key.unwrap_or_default()),
                _ => value,
            };
            builder = builder.header(name, value);
        }
        builder
    };
    if which == "managed-identity-arc-challenge" {
        let answer = send(build(None)).await;
        let realm = answer.1.get("www-authenticate").and_then(|c| c.strip_prefix("Basic realm="));
        let written = realm.is_some_and(|path| std::path::Path::new(path).parent() == Some(tokens.path()));
        assert!(written && realm.is_some_and(|path| std::path::Path::new(path).is_file()), "{which}: {answer:?}");
        return answer;
    }
    if which != "managed-identity-arc-token" {
        return send(build(None)).await;
    }
    let (status, headers, _) = send(http.get(url.clone()).header("Metadata", "true")).await;
    assert_eq!(status, 401, "the first request is challenged");
    let realm = headers["www-authenticate"].strip_prefix("Basic realm=").unwrap().to_string();
    let key = std::fs::read_to_string(realm).unwrap();
    send(build(Some(key.trim()))).await
}

/// The example's answer with `expires_on`, if it has one, moved to 20 minutes from now in the
/// same JSON type (a number or a string), so that a lifetime read from it can be checked.
fn answer_expiring_soon(example: &Value) -> String {
    let mut body = example["body"].clone();
    let at = time::OffsetDateTime::now_utc().unix_timestamp() + 1200;
    match &body["expires_on"] {
        Value::Number(_) => body["expires_on"] = json!(at),
        Value::String(_) => body["expires_on"] = json!(at.to_string()),
        _ => {}
    }
    body.to_string()
}

/// Whether the request the client sent is the one the example documents: its method, every
/// query or form parameter (the resource aside, which is the client's to choose, and a secret's
/// value), every header.
fn sent_as_documented(name: &str, example: &Value, seen: &Seen, secret: &str) {
    let request = &example["request"];
    assert_eq!(seen.method, request["method"].as_str().unwrap(), "{name}");
    let query = seen.target.split_once('?').map_or("", |(_, q)| q);
    let sent_query: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let sent_form: BTreeMap<String, String> = url::form_urlencoded::parse(seen.body.as_bytes()).into_owned().collect();
    for (field, sent) in [("query", &sent_query), ("form", &sent_form)] {
        for (key, value) in request[field].as_object().into_iter().flatten() {
            let have = sent.get(key).unwrap_or_else(|| panic!("{name}: no {key} in the {field}: {sent:?}"));
            if key != "resource" {
                assert_eq!(have, value.as_str().unwrap(), "{name}: {key}");
            }
        }
        let documented = request[field].as_object().map_or(0, |o| o.len());
        assert_eq!(sent.len(), documented, "{name}: only the documented {field} parameters: {sent:?}");
    }
    for (header, value) in request["headers"].as_object().into_iter().flatten() {
        let have = seen.headers.get(&header.to_lowercase());
        let have = have.unwrap_or_else(|| panic!("{name}: no {header} header in {:?}", seen.headers.keys()));
        match header.to_lowercase().as_str() {
            "x-identity-header" | "secret" => assert_eq!(have, secret, "{name}: {header}"),
            "authorization" => assert!(have.starts_with("Basic "), "{name}: {have}"),
            _ => assert_eq!(have, value.as_str().unwrap(), "{name}: {header}"),
        }
    }
}

/// The client sends each managed identity form's documented request and reads the documented
/// answer as the example says: its token, and its lifetime from `expires_in` or `expires_on`
/// in the example's own JSON type. Served by a bare server, never the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_asks_and_reads_each_managed_identity_form_as_documented() {
    let all = examples();
    let scope = "https://graph.microsoft.com/.default";
    let wait = Duration::from_secs(5);
    let mut read = Vec::new();
    for (name, example) in all.iter().filter(|(_, e)| e["kind"] == "managed-identity-answer") {
        let which = example["sim"].as_str().unwrap();
        let answer = (200, Vec::new(), answer_expiring_soon(example));
        let secret = "documented-secret";
        let tokens = tempfile::tempdir().unwrap();
        let mut answers = vec![answer];
        if which == "managed-identity-arc-token" {
            // Arc's challenge first, naming a key file in the directory the client is told is Arc's.
            let key_file = tokens.path().join("f3b6c0a4.key");
            std::fs::write(&key_file, "the-key").unwrap();
            let challenge = ("WWW-Authenticate".to_string(), format!("Basic realm={}", key_file.display()));
            answers.insert(0, (401, vec![challenge], "{}".to_string()));
        }
        // Service Fabric's endpoint is HTTPS with a certificate of its own, pinned by thumbprint.
        let (tls, thumbprint) = bare_tls();
        let fabric = which == "managed-identity-service-fabric";
        let (url, served) = serve_answers(answers, fabric.then_some(tls)).await;
        let endpoint = format!("{url}{}", identity_route(which));
        let source = match which {
            "managed-identity-imds" => ManagedSource::imds(url.clone(), "AZURE_POD_IDENTITY_AUTHORITY_HOST"),
            "managed-identity-app-service" => ManagedSource::app_service(endpoint, SecretString::new(secret)),
            "managed-identity-azure-ml" => ManagedSource::machine_learning(endpoint, SecretString::new(secret)),
            "managed-identity-cloud-shell" => ManagedSource::cloud_shell(endpoint),
            "managed-identity-service-fabric" => {
                ManagedSource::service_fabric(endpoint, SecretString::new(secret), &thumbprint)
            }
            "managed-identity-arc-token" => Ok(ManagedSource::Arc { endpoint, tokens: tokens.path().to_path_buf() }),
            other => panic!("{name}: no managed identity source named {other}"),
        }
        .unwrap();
        let (token, lifetime) =
            managed::managed_identity(&source, None, scope, wait).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let seen = served.await.unwrap();
        assert_eq!(token.expose(), example["expect"]["token"].as_str().unwrap(), "{name}");
        match example["expect"]["lifetime_from"].as_str().unwrap() {
            "expires_in" => {
                let seconds: u64 = example["body"]["expires_in"].as_str().unwrap().parse().unwrap();
                assert_eq!(lifetime, Duration::from_secs(seconds), "{name}");
            }
            "expires_on" => assert!((1190..=1200).contains(&lifetime.as_secs()), "{name}: {lifetime:?}"),
            other => panic!("{name}: unknown lifetime_from {other}"),
        }
        let last = seen.last().unwrap();
        sent_as_documented(name, example, last, secret);
        if which == "managed-identity-arc-token" {
            assert_eq!(seen[0].headers.get("authorization"), None, "{name}: the first request carries no key");
            assert_eq!(last.headers["authorization"], "Basic the-key", "{name}: the key the challenge named");
        }
        read.push(which.to_string());
    }
    read.sort();
    let forms = ["app-service", "arc-token", "azure-ml", "cloud-shell", "imds", "service-fabric"];
    assert_eq!(read, forms.map(|f| format!("managed-identity-{f}")), "an example of every managed identity form");
}
