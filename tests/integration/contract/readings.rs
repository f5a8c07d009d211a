//! The client's readings of the corpus: every example's error body, throttling headers, `$batch`
//! answer, Azure Arc challenge and cloud host table, read by the client's own parsers and
//! classifiers as the example says they must be.

use std::time::{Duration, SystemTime};

use remediate::testing::managed::arc;
use remediate::testing::{CloudName, Endpoints, limit_fraction, retry_after, service_error};
use serde_json::Value;

use super::examples;

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
            "graph-error" | "exchange-error" | "identity-error" => read_service_error(&name, &example),
            "throttle-headers" => read_throttle_headers(&name, &example),
            "batch-answer" => read_batch_answer(&name, &example),
            "arc-challenge" => read_arc_challenge(&name, &example),
            "cloud-hosts" => read_cloud_hosts(&name, &example),
            // Read through the client's own requests in the test below.
            "managed-identity-answer" => {}
            "shape" => {}
            other => panic!("{name}: unknown kind {other}"),
        }
    }
}

/// Holds the client to the error codes and messages the client takes from an error body.
fn read_service_error(name: &str, example: &Value) {
    let expect = &example["expect"];
    let parsed = service_error::parse(&body_bytes(example));
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

/// Holds the client to the throttling headers the client reads.
fn read_throttle_headers(name: &str, example: &Value) {
    let expect = &example["expect"];
    if let Some(fraction) = expect["limit_fraction"].as_f64() {
        let read = limit_fraction(header(example, "x-ms-throttle-limit-percentage").unwrap());
        assert_eq!(read, Some(fraction), "{name}");
    }
    if let Some(parts) = expect["scope_parts"].as_array() {
        let scope: Vec<&str> = header(example, "x-ms-throttle-scope").unwrap().split('/').collect();
        assert_eq!(scope.len(), 4, "{name}: <Scope>/<Limit>/<ApplicationId>/<TenantId>");
        assert_eq!(scope[0], parts[0], "{name}");
        assert_eq!(scope[1], parts[1], "{name}");
    }
}

/// Holds the client to a `$batch` answer as the client counts it.
fn read_batch_answer(name: &str, example: &Value) {
    let expect = &example["expect"];
    let responses = example["body"]["responses"].as_array().unwrap();
    assert_eq!(responses.len() as u64, expect["items"].as_u64().unwrap(), "{name}");
    let throttled = responses.iter().filter(|r| r["status"] == 429).count() as u64;
    assert_eq!(throttled, expect["throttled_items"].as_u64().unwrap(), "{name}");
    assert!(responses.iter().all(|r| r["id"].is_string() && r["status"].is_u64()), "{name}");
}

/// Holds the client to Azure Arc's challenge, answered only from its tokens directory.
fn read_arc_challenge(name: &str, example: &Value) {
    let expect = &example["expect"];
    // The realm names a key file in Arc's tokens directory: the client reads it there,
    // and only there (a temporary directory stands in for the documented one).
    let directory = expect["tokens_directory"].as_str().unwrap();
    #[cfg(target_os = "linux")]
    assert_eq!(arc::tokens_directory(), std::path::Path::new(directory), "{name}");
    let challenge = header(example, "www-authenticate").unwrap();
    let tokens = tempfile::tempdir().unwrap();
    let moved = challenge.replace(directory, &tokens.path().display().to_string());
    let key_file = moved.split_once("realm=").unwrap().1;
    std::fs::write(key_file, "the-key\n").unwrap();
    let headers = [("www-authenticate".to_string(), moved.clone())];
    let key = arc::answer_challenge(&headers, tokens.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(key.expose(), "the-key", "{name}");
    let elsewhere = tempfile::tempdir().unwrap();
    assert!(arc::answer_challenge(&headers, elsewhere.path()).is_err(), "{name}: outside the directory");
}

/// Holds the client to every national cloud's hosts and audiences, as documented.
fn read_cloud_hosts(name: &str, example: &Value) {
    let clouds = example["clouds"].as_object().unwrap();
    for cloud in <CloudName as clap::ValueEnum>::value_variants() {
        let key = serde_json::to_value(cloud).unwrap();
        let hosts = &clouds[key.as_str().unwrap()];
        assert!(hosts.is_object(), "{name}: no example for {key}");
        let resolved = Endpoints::of(*cloud);
        let documented = |field: &str| hosts[field].as_str().unwrap_or_else(|| panic!("{name}: {key}.{field}"));
        assert_eq!(resolved.login, documented("login"), "{name}: {key}");
        assert_eq!(resolved.graph, documented("graph"), "{name}: {key}");
        assert_eq!(resolved.exchange, documented("exchange"), "{name}: {key}");
        assert_eq!(resolved.graph_resource, documented("graph_audience"), "{name}: {key}");
        assert_eq!(resolved.exchange_resource, documented("exchange_audience"), "{name}: {key}");
    }
    assert_eq!(clouds.len(), <CloudName as clap::ValueEnum>::value_variants().len(), "{name}");
}
