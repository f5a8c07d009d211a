//! The contract corpus (`tests/contract`): request and response examples from Microsoft's
//! documentation and from public clients that run on real tenants, each naming its source. The
//! client's parsers and classifiers read every example as the example says they must, and the
//! simulator's answer to the same request has at least the example's shape (every key the
//! example has, with a value of the same JSON type), so neither can drift from the documents
//! on its own. A managed identity example also carries the documented request: the client must
//! send it as written (to a bare server that answers with the example, never the simulator), and
//! the simulator must answer it. The cloud host table example must be what `Endpoints::of`
//! resolves for every cloud, and the simulator must take each audience it lists.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

mod bare_server;
mod managed_identity;
mod readings;
mod shapes;
mod simulated;

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
