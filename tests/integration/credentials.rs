//! Every credential type against the simulated identity platform, and the promise that no secret,
//! key or token reaches stdout, stderr, the most verbose log, or the report directory.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use remediate_sim::{Population, SimConfig, Simulator};

use crate::support::{scratch, start};

/// Every access token the simulator issues starts with this (a JWT-looking header).
const TOKEN_PREFIX: &str = "eyJ0eXAiOiJKV1QiLCJzaW0iOjF9";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

async fn tenant_with_certificate(certificate: &str) -> Simulator {
    let mut config = SimConfig { population: Population::Generated { count: 40 }, ..SimConfig::default() };
    config.load_client_certificate(&fixture(certificate)).unwrap();
    config.federated_token = Some("kubernetes-projected-service-account-token".into());
    start(config).await
}

/// `remediate apply` as a subprocess against `sim`, with `RUST_LOG=trace`; returns the exit
/// code and everything it wrote (stdout, stderr, every file of the report).
async fn apply_with(sim: &Simulator, credential: (&'static str, String), report: PathBuf) -> (i32, String) {
    let mut command = Command::cargo_bin("remediate").unwrap();
    for name in ["AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE"] {
        command.env_remove(name);
    }
    let url = sim.url();
    command
        .env("AZURE_TENANT_ID", &sim.app().tenant_id)
        .env("AZURE_CLIENT_ID", &sim.app().client_id)
        .env(credential.0, credential.1)
        .env("REMEDIATE_LOGIN_URL", &url)
        .env("REMEDIATE_GRAPH_URL", &url)
        .env("REMEDIATE_EXCHANGE_URL", &url)
        .env("RUST_LOG", "trace")
        .write_stdin("")
        .args(["apply", &format!("{}/samples/mailboxes.csv", env!("CARGO_MANIFEST_DIR"))])
        // The sample's mailboxes are not this tenant's: every row is skipped, and that is allowed.
        .args(["--set", "smtp-auth=disabled", "--yes", "-vv", "--max-not-found", "1", "--state-dir"])
        .arg(report.with_extension("state"))
        .arg("--report-dir")
        .arg(&report);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let mut everything = String::from_utf8_lossy(&output.stdout).into_owned();
    everything.push_str(&String::from_utf8_lossy(&output.stderr));
    if let Ok(entries) = std::fs::read_dir(&report) {
        for entry in entries {
            everything.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
        }
    }
    (output.status.code().unwrap_or(-1), everything)
}

fn private_key_lines(pem: &str) -> Vec<String> {
    let key = pem.split("-----BEGIN PRIVATE KEY-----").nth(1).unwrap();
    key.lines().filter(|l| l.len() > 40).map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_signs_the_assertion_and_nothing_secret_leaks() {
    let sim = tenant_with_certificate("app.crt").await;
    let dir = scratch();
    let pem = fixture("app.pem");
    let (code, everything) =
        apply_with(&sim, ("AZURE_CLIENT_CERTIFICATE_PATH", pem.display().to_string()), dir.path().join("r")).await;
    assert_eq!(code, 0, "{everything}");
    assert!(everything.contains("apply finished"));
    let key = std::fs::read_to_string(&pem).unwrap();
    for line in private_key_lines(&key) {
        assert!(!everything.contains(&line), "a line of the private key leaked");
    }
    assert!(!everything.contains(TOKEN_PREFIX), "an access token leaked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_the_app_does_not_know_is_refused_with_exit_2() {
    let sim = tenant_with_certificate("app.crt").await;
    let dir = scratch();
    let other = fixture("other.pem").display().to_string();
    let (code, everything) = apply_with(&sim, ("AZURE_CLIENT_CERTIFICATE_PATH", other), dir.path().join("r")).await;
    assert_eq!(code, 2, "{everything}");
    assert!(everything.contains("AADSTS700027"), "{everything}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_never_reaches_output_logs_or_report() {
    let sim = tenant_with_certificate("app.crt").await;
    let dir = scratch();
    let secret = sim.app().client_secret.clone();
    let (code, everything) = apply_with(&sim, ("AZURE_CLIENT_SECRET", secret.clone()), dir.path().join("r")).await;
    assert_eq!(code, 0, "{everything}");
    assert!(everything.contains("TRACE") || everything.contains("DEBUG"), "the log ran at its most verbose");
    assert!(!everything.contains(&secret), "the secret leaked");
    assert!(!everything.contains(TOKEN_PREFIX), "an access token leaked");
}

#[tokio::test(flavor = "multi_thread")]
async fn workload_identity_reads_the_federated_token_file() {
    let sim = tenant_with_certificate("app.crt").await;
    let dir = scratch();
    let file = dir.path().join("token");
    std::fs::write(&file, "kubernetes-projected-service-account-token\n").unwrap();
    let (code, everything) =
        apply_with(&sim, ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()), dir.path().join("r")).await;
    assert_eq!(code, 0, "{everything}");
    assert!(!everything.contains("kubernetes-projected-service-account-token"), "the federated token leaked");
}

/// Posts a client assertion for app.crt signed with app.pem's key, with `header` (x5t#S256
/// is set here) and valid for `lifetime` seconds; the token endpoint's status and body.
async fn post_assertion(sim: &Simulator, mut header: jsonwebtoken::Header, lifetime: i64) -> (u16, String) {
    let pem = std::fs::read(fixture("app.pem")).unwrap();
    let key = pem::parse_many(&pem).unwrap().into_iter().find(|b| b.tag().ends_with("PRIVATE KEY")).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem::encode(&key).as_bytes()).unwrap();
    header.x5t_s256 = Some(remediate::testing::sha256_thumbprint(&certificate_der("app.crt")));
    let token_url = format!("{}/{}/oauth2/v2.0/token", sim.url(), sim.app().tenant_id);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = serde_json::json!({
        "aud": token_url, "iss": sim.app().client_id, "sub": sim.app().client_id,
        "jti": uuid::Uuid::new_v4().to_string(), "nbf": now, "iat": now, "exp": now + lifetime,
    });
    let assertion = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", sim.app().client_id.as_str()),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let answer = reqwest::Client::new().post(&token_url).form(&form).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

fn certificate_der(name: &str) -> Vec<u8> {
    pem::parse_many(std::fs::read(fixture(name)).unwrap()).unwrap().remove(0).into_contents()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_assertion_valid_for_an_hour_is_taken_as_entra_takes_it() {
    // The identity platform sets no limit on how far a client assertion's `exp` lies ahead.
    let sim = tenant_with_certificate("app.crt").await;
    let (status, body) = post_assertion(&sim, jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256), 3600).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_takes_an_x5c_chain_only_if_it_starts_with_the_apps_certificate() {
    use base64::Engine;
    let sim = tenant_with_certificate("app.crt").await;
    let encode = |name: &str| base64::engine::general_purpose::STANDARD.encode(certificate_der(name));
    let with_chain = |chain: Vec<String>| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        header.x5c = Some(chain);
        header
    };
    let (status, body) = post_assertion(&sim, with_chain(vec![encode("app.crt"), encode("other.crt")]), 600).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_assertion(&sim, with_chain(vec![encode("other.crt"), encode("app.crt")]), 600).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("AADSTS700027") && body.contains("x5c"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_authority_host_is_the_login_host_unless_login_url_says_otherwise() {
    let sim = start(SimConfig { population: Population::Generated { count: 5 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let mut command = Command::cargo_bin("remediate").unwrap();
    for name in ["AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "REMEDIATE_LOGIN_URL"] {
        command.env_remove(name);
    }
    let url = sim.url();
    command
        .env("AZURE_TENANT_ID", &sim.app().tenant_id)
        .env("AZURE_CLIENT_ID", &sim.app().client_id)
        .env("AZURE_CLIENT_SECRET", &sim.app().client_secret)
        .env("AZURE_AUTHORITY_HOST", &url)
        .env("REMEDIATE_GRAPH_URL", &url)
        .env("REMEDIATE_EXCHANGE_URL", &url)
        .write_stdin("")
        .args(["plan", &format!("{}/samples/mailboxes.csv", env!("CARGO_MANIFEST_DIR")), "--set", "smtp-auth=disabled"])
        .args(["--max-not-found", "1"])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--report-dir")
        .arg(dir.path().join("report"));
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}

/// `remediate plan` as a subprocess with only `env` for credentials; exit code and stderr.
async fn plan_signed_in_by(sim: &Simulator, dir: &Path, env: Vec<(String, String)>, args: &[&str]) -> (i32, String) {
    let users = crate::support::upns(&crate::support::state(sim));
    plan_against(&sim.url(), &sim.app().tenant_id, &users, dir, env, args).await
}

/// `remediate plan` of `users` against the simulated tenant at `url`, every credential setting
/// of the environment removed and `env` set; exit code and stderr.
async fn plan_against(
    url: &str,
    tenant: &str,
    users: &[String],
    dir: &Path,
    env: Vec<(String, String)>,
    args: &[&str],
) -> (i32, String) {
    let csv = crate::support::write_csv(dir, "m.csv", "UserPrincipalName", users);
    let mut command = Command::cargo_bin("remediate").unwrap();
    for name in [
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
        "AZURE_FEDERATED_TOKEN_FILE",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "IDENTITY_SERVER_THUMBPRINT",
        "IMDS_ENDPOINT",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    for name in ["REMEDIATE_LOGIN_URL", "REMEDIATE_GRAPH_URL", "REMEDIATE_EXCHANGE_URL"] {
        command.env(name, url);
    }
    command.env("AZURE_TENANT_ID", tenant).envs(env).write_stdin("");
    command.args(["plan", csv.to_str().unwrap(), "--set", "smtp-auth=disabled"]).args(args);
    command.arg("--state-dir").arg(dir.join("state")).arg("--report-dir").arg(dir.join("plan"));
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_identity_signs_in_through_app_service_or_the_metadata_service() {
    let sim = start(SimConfig { population: Population::Generated { count: 10 }, ..SimConfig::default() }).await;
    let header = sim.app().identity_header.clone();
    let app_service = vec![
        ("IDENTITY_ENDPOINT".to_string(), format!("{}/msi/token", sim.url())),
        ("IDENTITY_HEADER".to_string(), header.clone()),
    ];
    let dir = scratch();
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), app_service, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("signing in with a managed identity (App Service endpoint)"), "{stderr}");
    assert!(!stderr.contains(&header), "the identity header is a secret");

    let imds = vec![("AZURE_POD_IDENTITY_AUTHORITY_HOST".to_string(), sim.url())];
    let dir = scratch();
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), imds, &["--credential", "managed-identity"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("signing in with a managed identity (instance metadata service)"), "{stderr}");

    let stranger = vec![
        ("IDENTITY_ENDPOINT".to_string(), format!("{}/msi/token", sim.url())),
        ("IDENTITY_HEADER".to_string(), "not-the-header".to_string()),
    ];
    let dir = scratch();
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), stranger, &[]).await;
    assert_eq!(code, 2, "a refused identity changes nothing: {stderr}");
    assert!(stderr.contains("managed identity endpoint"), "{stderr}");

    // Service Fabric sets App Service's pair and a certificate thumbprint: never taken for App
    // Service, whose header would then go to an endpoint whose certificate nobody checked. Its
    // endpoint is HTTPS, so App Service's plain one is refused before any request.
    let fabric = vec![
        ("IDENTITY_ENDPOINT".to_string(), format!("{}/msi/token", sim.url())),
        ("IDENTITY_HEADER".to_string(), header.clone()),
        ("IDENTITY_SERVER_THUMBPRINT".to_string(), "3DB256D9C22468FC343346D1B14C7F963B279280".to_string()),
    ];
    let dir = scratch();
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), fabric, &[]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the endpoint must be https:// (Service Fabric's is)"), "{stderr}");
}

/// Service Fabric's form (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`, `IDENTITY_SERVER_THUMBPRINT`:
/// `GET` with the `Secret` header over HTTPS whose certificate is pinned by the thumbprint)
/// through the real client, against the simulator's TLS endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_identity_signs_in_through_service_fabric_with_its_certificate_pinned() {
    let config =
        SimConfig { population: Population::Generated { count: 10 }, service_fabric: true, ..SimConfig::default() };
    let sim = start(config).await;
    let (endpoint, thumbprint) = sim.service_fabric_endpoint().unwrap();
    let header = sim.app().identity_header.clone();
    let fabric = |thumbprint: &str| {
        pairs(&[
            ("IDENTITY_ENDPOINT", &endpoint),
            ("IDENTITY_HEADER", &header),
            ("IDENTITY_SERVER_THUMBPRINT", thumbprint),
        ])
    };
    // Written as `openssl x509 -fingerprint` writes it: colons, and here lower case.
    let pairs_of_digits: Vec<String> =
        thumbprint.as_bytes().chunks(2).map(|p| String::from_utf8_lossy(p).to_lowercase()).collect();
    let dir = scratch();
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), fabric(&pairs_of_digits.join(":")), &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("signing in with a managed identity (Service Fabric)"), "{stderr}");
    assert!(!stderr.contains(&header), "IDENTITY_HEADER is a secret: {stderr}");
    assert!(!stderr.contains(TOKEN_PREFIX), "an access token leaked");

    // Another thumbprint: refused at the handshake, by name (a retried one would end "cannot
    // reach the managed identity endpoint"), and the endpoint never reached, so no token was asked
    // for.
    let arrived = *sim.service().arrivals().borrow();
    let issued = crate::support::stats(&sim)["tokens_issued"].clone();
    let other: String = thumbprint.chars().rev().collect();
    let dir = scratch();
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), fabric(&other), &[]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("the managed identity endpoint {endpoint} is not trusted")), "{stderr}");
    assert!(
        stderr.contains(&format!("SHA-1 thumbprint is {thumbprint}, not IDENTITY_SERVER_THUMBPRINT {other}")),
        "{stderr}"
    );
    assert!(!stderr.contains("cannot reach"), "{stderr}");
    assert_eq!(*sim.service().arrivals().borrow(), arrived, "the endpoint was never reached");
    assert_eq!(crate::support::stats(&sim)["tokens_issued"], issued);

    // Service Fabric's identity is the manifest's: a client id is refused before any request.
    let mut assigned = fabric(&thumbprint);
    assigned.push(("AZURE_CLIENT_ID".to_string(), sim.app().client_id.clone()));
    let dir = scratch();
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), assigned, &[]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("(Service Fabric) is the identity the application's manifest assigns"), "{stderr}");
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
}

/// Azure Machine Learning's form (`MSI_ENDPOINT` and `MSI_SECRET`: `GET`, api-version
/// 2017-09-01, the `secret` header, a user-assigned identity named by `clientid`, `expires_on`
/// an integer) through the real client, against the simulator's route for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_identity_signs_in_through_azure_machine_learning() {
    let sim = start(SimConfig { population: Population::Generated { count: 10 }, ..SimConfig::default() }).await;
    let secret = sim.app().identity_header.clone();
    let endpoint = format!("{}/MSI/auth", sim.url());
    let asked = ["--credential", "managed-identity"];
    let dir = scratch();
    let (code, stderr) =
        plan_signed_in_by(&sim, dir.path(), pairs(&[("MSI_ENDPOINT", &endpoint), ("MSI_SECRET", &secret)]), &asked)
            .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("signing in with a managed identity (Azure Machine Learning)"), "{stderr}");
    assert!(!stderr.contains(&secret), "MSI_SECRET is a secret: {stderr}");
    assert!(!stderr.contains(TOKEN_PREFIX), "an access token leaked");

    // A user-assigned identity, named by its client id: the simulator takes it only as `clientid`.
    let client_id = sim.app().client_id.clone();
    let assigned = pairs(&[("MSI_ENDPOINT", &endpoint), ("MSI_SECRET", &secret), ("AZURE_CLIENT_ID", &client_id)]);
    let dir = scratch();
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), assigned, &asked).await;
    assert_eq!(code, 0, "{stderr}");

    // A secret that is not this host's is refused, and the refusal says which endpoint and why.
    let dir = scratch();
    let wrong = pairs(&[("MSI_ENDPOINT", &endpoint), ("MSI_SECRET", "not-the-secret")]);
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), wrong, &asked).await;
    assert_eq!(code, 2, "a refused identity changes nothing: {stderr}");
    assert!(stderr.contains(&format!("the managed identity endpoint {endpoint} answered 400")), "{stderr}");
    assert!(stderr.contains("Required secret header not specified or not correct"), "{stderr}");
    assert!(!stderr.contains("not-the-secret"), "{stderr}");

    // An identity the host does not have.
    let dir = scratch();
    let stranger = pairs(&[("MSI_ENDPOINT", &endpoint), ("MSI_SECRET", &secret), ("AZURE_CLIENT_ID", "someone-else")]);
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), stranger, &asked).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("Identity not found"), "{stderr}");
}

/// Cloud Shell's form (`MSI_ENDPOINT` alone: `POST` of the form `resource=…` with `Metadata:
/// true`) through the real client, against the simulator's route for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_identity_signs_in_through_cloud_shell() {
    let sim = start(SimConfig { population: Population::Generated { count: 10 }, ..SimConfig::default() }).await;
    let endpoint = format!("{}/oauth2/token", sim.url());
    let asked = ["--credential", "managed-identity"];
    let dir = scratch();
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), pairs(&[("MSI_ENDPOINT", &endpoint)]), &asked).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("signing in with a managed identity (Cloud Shell)"), "{stderr}");
    assert!(!stderr.contains(TOKEN_PREFIX), "an access token leaked");

    // Cloud Shell has only the signed-in user's identity: a user-assigned one is refused by name
    // before any request.
    let dir = scratch();
    let assigned = pairs(&[("MSI_ENDPOINT", &endpoint), ("AZURE_CLIENT_ID", &sim.app().client_id)]);
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), assigned, &asked).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("(Cloud Shell) has only its system-assigned identity"), "{stderr}");

    // The endpoint itself refuses a request without `Metadata: true`, in Cloud Shell's error form,
    // and an audience off its list.
    let http = reqwest::Client::new();
    let form = [("resource", "https://graph.microsoft.com")];
    let answer = http.post(&endpoint).form(&form).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("metadata header")), "{body}");
    let answer = http.post(&endpoint).header("Metadata", "false").form(&form).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 400, "the header must say true");
    let elsewhere = [("resource", "https://newservice.azure.com/")];
    let answer = http.post(&endpoint).header("Metadata", "true").form(&elsewhere).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AudienceNotSupported", "{body}");
}

/// `remediate sim --managed-identity[=FORM]` prints lines that, set in the environment (as
/// `eval` would), make the runner sign in with that form and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_managed_identity_lines_sign_in_with_their_form() {
    use std::io::{BufRead, BufReader};
    for (flag, form) in [
        ("--managed-identity", "App Service endpoint"),
        ("--managed-identity=machine-learning", "Azure Machine Learning"),
        ("--managed-identity=cloud-shell", "Cloud Shell"),
        ("--managed-identity=service-fabric", "Service Fabric"),
    ] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("remediate"))
            .args(["sim", "--listen", "127.0.0.1:0", "--mailboxes", "10", flag])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let printed = tokio::task::spawn_blocking(move || {
            let mut printed = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                let done = line.starts_with("listening on ");
                printed.push(line);
                if done {
                    break;
                }
            }
            printed
        })
        .await
        .unwrap();
        let Some(url) = printed.last().and_then(|l| l.strip_prefix("listening on ")).map(str::to_string) else {
            child.kill().ok();
            let output = child.wait_with_output().unwrap();
            panic!("{flag}: `remediate sim` did not start: {}", String::from_utf8_lossy(&output.stderr));
        };
        let env: Vec<(String, String)> = printed
            .iter()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let unset: Vec<&str> =
            printed.iter().filter_map(|l| l.strip_prefix("unset ")).flat_map(|l| l.split_whitespace()).collect();
        let exported = |name: &str| env.iter().any(|(n, _)| n == name);
        match form {
            "App Service endpoint" => {}
            "Service Fabric" => {
                assert!(exported("IDENTITY_SERVER_THUMBPRINT") && unset.contains(&"AZURE_CLIENT_ID"), "{printed:?}");
            }
            _ => assert!(unset.contains(&"IDENTITY_ENDPOINT") && unset.contains(&"AZURE_CLIENT_ID"), "{printed:?}"),
        }
        let tenant = env.iter().find(|(name, _)| name == "AZURE_TENANT_ID").map(|(_, v)| v.clone());
        let tenant = tenant.unwrap_or_else(|| panic!("{flag}: no AZURE_TENANT_ID in {printed:?}"));
        let state: serde_json::Value = reqwest::get(format!("{url}/_sim/state")).await.unwrap().json().await.unwrap();
        let dir = scratch();
        let (code, stderr) = plan_against(&url, &tenant, &crate::support::upns(&state), dir.path(), env, &[]).await;
        child.kill().ok();
        child.wait().ok();
        assert_eq!(code, 0, "{flag}: {printed:?}\n{stderr}");
        assert!(stderr.contains(&format!("signing in with a managed identity ({form})")), "{flag}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pfx_opens_with_its_password_in_both_encryptions_windows_exports() {
    const PASSWORD: &str = "fixture-pfx-password";
    let sim = tenant_with_certificate("app.crt").await;
    let signed_in_with = |file: &str, password: Option<&str>| {
        let mut env = vec![
            ("AZURE_CLIENT_ID".to_string(), sim.app().client_id.clone()),
            ("AZURE_CLIENT_CERTIFICATE_PATH".to_string(), fixture(file).display().to_string()),
        ];
        env.extend(password.map(|p| ("AZURE_CLIENT_CERTIFICATE_PASSWORD".to_string(), p.to_string())));
        let dir = scratch();
        let sim = &sim;
        async move { plan_signed_in_by(sim, dir.path(), env, &[]).await }
    };
    // AES-256 with PBKDF2 (OpenSSL 3, Windows Server 2019 on) and 3DES with SHA-1 (older exports).
    for file in ["app.pfx", "app-3des.pfx"] {
        let (code, stderr) = signed_in_with(file, Some(PASSWORD)).await;
        assert_eq!(code, 0, "{file}: {stderr}");
        assert!(stderr.contains("signing in with a certificate"), "{stderr}");
        assert!(!stderr.contains(PASSWORD), "the password leaked: {stderr}");
    }
    let (code, stderr) = signed_in_with("app.pfx", Some("not-the-password")).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("app.pfx") && stderr.contains("check the password"), "{stderr}");
    let (code, stderr) = signed_in_with("app.pfx", None).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("set AZURE_CLIENT_CERTIFICATE_PASSWORD"), "{stderr}");
}

/// `remediate plan` signed in with the certificate file `file` of tests/fixtures and `extra`
/// environment (a password, the chain switch); exit code and stderr.
async fn plan_with_certificate(sim: &Simulator, file: &str, extra: &[(&str, &str)]) -> (i32, String) {
    let mut env = vec![
        ("AZURE_CLIENT_ID".to_string(), sim.app().client_id.clone()),
        ("AZURE_CLIENT_CERTIFICATE_PATH".to_string(), fixture(file).display().to_string()),
    ];
    env.extend(extra.iter().map(|(name, value)| (name.to_string(), value.to_string())));
    let dir = scratch();
    plan_signed_in_by(sim, dir.path(), env, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_pem_key_opens_with_its_password() {
    // app.pem's certificate, then its key through `openssl pkcs8 -topk8 -v2 aes-256-cbc` (PBKDF2
    // with HMAC-SHA256) or `-scrypt`, -passout pass:fixture-pem-password.
    const PASSWORD: &str = "fixture-pem-password";
    let sim = tenant_with_certificate("app.crt").await;
    for file in ["app-encrypted.pem", "app-scrypt.pem"] {
        let (code, stderr) =
            plan_with_certificate(&sim, file, &[("AZURE_CLIENT_CERTIFICATE_PASSWORD", PASSWORD)]).await;
        assert_eq!(code, 0, "{file}: {stderr}");
        assert!(stderr.contains("signing in with a certificate"), "{stderr}");
        assert!(!stderr.contains(PASSWORD), "the password leaked: {stderr}");
    }
    let wrong = [("AZURE_CLIENT_CERTIFICATE_PASSWORD", "not-the-password")];
    let (code, stderr) = plan_with_certificate(&sim, "app-encrypted.pem", &wrong).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("app-encrypted.pem") && stderr.contains("check the password"), "{stderr}");
    let (code, stderr) = plan_with_certificate(&sim, "app-encrypted.pem", &[]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("set AZURE_CLIENT_CERTIFICATE_PASSWORD"), "{stderr}");
    // `openssl rsa -aes256 -traditional` writes OpenSSL's legacy form: refused with the conversion.
    let right = [("AZURE_CLIENT_CERTIFICATE_PASSWORD", PASSWORD)];
    let (code, stderr) = plan_with_certificate(&sim, "app-legacy-encrypted.pem", &right).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("openssl pkcs8 -topk8"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_chain_starts_with_the_keys_certificate() {
    // app-chain.pem holds other.crt first, then app.pem's certificate and key: the assertion's
    // x5t#S256 and the first certificate of its x5c must both be app.crt's, or the simulator refuses.
    let sim = tenant_with_certificate("app.crt").await;
    let (code, stderr) =
        plan_with_certificate(&sim, "app-chain.pem", &[("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "True")]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("signing in with a certificate"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_at_a_laptop_signs_in_with_the_azure_cli() {
    let sim = start(SimConfig { population: Population::Generated { count: 10 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let http = reqwest::Client::new();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, scope) in
        [("graph", "https://graph.microsoft.com/.default"), ("exchange", "https://outlook.office365.com/.default")]
    {
        std::fs::write(dir.path().join(name), sim.client_token(&http, scope).await.unwrap()).unwrap();
    }
    // A stand-in for `az account get-access-token --resource R --tenant T --output json`.
    let stub = format!(
        "#!/bin/sh\ncase \"$*\" in\n  *get-access-token*graph.microsoft.com*) f={0}/graph ;;\n  *get-access-token*outlook.office365.com*) f={0}/exchange ;;\n  *) echo 'ERROR: unexpected arguments' >&2; exit 1 ;;\nesac\nprintf '{{\"accessToken\": \"%s\", \"expires_on\": %s, \"tokenType\": \"Bearer\"}}' \"$(cat $f)\" \"$(( $(date +%s) + 3000 ))\"\n",
        dir.path().display()
    );
    let az = bin.join("az");
    crate::support::write_executable(&az, &stub);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), vec![("PATH".to_string(), path)], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("signing in with the Azure CLI's account"), "{stderr}");
}
