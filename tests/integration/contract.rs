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
use std::time::{Duration, SystemTime};

use remediate::testing::managed::{self, ManagedSource, Thumbprint, arc, pinned_client};
use remediate::testing::{CloudName, Endpoints, SecretString, limit_fraction, retry_after, service_error};
use remediate_sim::{Population, SimConfig, Simulator};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// Reads (or writes) one user's MFA requirements on `target` until it answers 429.
async fn throttled_until_429(
    http: &reqwest::Client,
    target: &Simulator,
    write: bool,
) -> (u16, BTreeMap<String, String>, Value) {
    let bearer = token(target, GRAPH).await;
    let user = state(target)["users"][0]["id"].as_str().unwrap().to_string();
    let url = format!("{}/beta/users/{user}/authentication/requirements", target.url());
    for _ in 0..50 {
        let request = if write {
            http.patch(&url).bearer_auth(&bearer).json(&json!({"perUserMfaState": "enforced"}))
        } else {
            http.get(&url).bearer_auth(&bearer)
        };
        let answer = send(request).await;
        if answer.0 == 429 {
            return answer;
        }
    }
    panic!("the tenant never throttled");
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
            throttled_until_429(&http, target, which == "graph-write-throttled").await
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
async fn simulated_identity(which: &str, example: &Value) -> (u16, BTreeMap<String, String>, Value) {
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

/// An answer a bare HTTP server gives: status, headers, body.
type Canned = (u16, Vec<(String, String)>, String);

/// One request as a bare HTTP server saw it.
struct Seen {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A certificate and key of the tests' own (tests/fixtures/service-fabric-endpoint.pem, made with
/// `openssl req -x509 -newkey ec`), for a bare HTTPS server, and the certificate's SHA-1 in hex.
fn bare_tls() -> (tokio_rustls::TlsAcceptor, String) {
    use tokio_rustls::rustls;
    let pem =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/service-fabric-endpoint.pem"));
    let blocks = pem::parse_many(pem.unwrap()).unwrap();
    let certificate = blocks[0].contents().to_vec();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(blocks[1].contents().to_vec());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &certificate);
    let thumbprint: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let config = rustls::ServerConfig::builder_with_provider(rustls::crypto::aws_lc_rs::default_provider().into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.into()], key.into())
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)), thumbprint)
}

/// Serves `answers` (status, headers, body) in turn, one connection each, on a loopback port,
/// over TLS with `tls`: nothing of the simulator, only what an example documents. Returns the
/// base URL and, once every answer is given, the requests seen.
async fn serve_answers(
    answers: Vec<Canned>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (String, tokio::task::JoinHandle<Vec<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let served = tokio::spawn(async move {
        let mut seen = Vec::new();
        for answer in answers {
            let (stream, _) = listener.accept().await.unwrap();
            seen.push(match &tls {
                Some(tls) => answer_one(tls.accept(stream).await.unwrap(), answer).await,
                None => answer_one(stream, answer).await,
            });
        }
        seen
    });
    (url, served)
}

/// Reads one request from `stream` and gives it `answer`.
async fn answer_one<S>(mut stream: S, (status, headers, body): Canned) -> Seen
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed mid-request");
        bytes.extend_from_slice(&chunk[..n]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap().split_whitespace();
    let (method, target) = (first.next().unwrap().to_string(), first.next().unwrap().to_string());
    let request_headers: BTreeMap<String, String> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string())).collect();
    let length: usize = request_headers.get("content-length").map_or(0, |l| l.parse().unwrap());
    while bytes.len() < end + 4 + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed mid-body");
        bytes.extend_from_slice(&chunk[..n]);
    }
    let request_body = String::from_utf8_lossy(&bytes[end + 4..end + 4 + length]).into_owned();
    let mut answer = format!("HTTP/1.1 {status} Answer\r\nContent-Type: application/json\r\n");
    for (name, value) in headers {
        answer.push_str(&format!("{name}: {value}\r\n"));
    }
    answer.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    stream.write_all(answer.as_bytes()).await.unwrap();
    stream.shutdown().await.ok();
    Seen { method, target, headers: request_headers, body: request_body }
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
