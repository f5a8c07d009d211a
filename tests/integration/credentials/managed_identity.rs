//! Managed identities through the real client against the simulator's routes: App Service, the
//! instance metadata service, Service Fabric with its certificate pinned, Azure Machine Learning
//! and Cloud Shell, each refusal saying why, and the lines `remediate sim --managed-identity`
//! prints signing in with their form.

use remediate_sim::{Population, SimConfig};

use super::{TOKEN_PREFIX, pairs, plan_against, plan_signed_in_by};
use crate::support::{scratch, start};

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
