use super::*;

#[test]
fn lifetimes_come_as_numbers_or_strings() {
    let (_, life) = token_of(br#"{"access_token":"t","expires_in":"3599"}"#, "access_token", "x").unwrap();
    assert_eq!(life, Duration::from_secs(3599));
    let at = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
    let body = format!(r#"{{"accessToken":"t","expires_on":{at}}}"#);
    let (_, life) = token_of(body.as_bytes(), "accessToken", "x").unwrap();
    assert!(life.as_secs() > 590 && life.as_secs() <= 600, "{life:?}");
    assert!(token_of(br#"{"access_token":""}"#, "access_token", "x").is_err());
    let body = format!(r#"{{"access_token":"t","expires_in":0,"expires_on":"{at}"}}"#);
    let (_, life) = token_of(body.as_bytes(), "access_token", "x").unwrap();
    assert!(life.as_secs() > 590, "expires_on wins over a zero expires_in: {life:?}");
}

#[test]
fn plain_http_goes_only_to_this_machine_or_azures_link_local_endpoints() {
    for endpoint in [
        "http://127.0.0.1:41564/msi/token",
        "http://localhost:40342/metadata/identity/oauth2/token",
        "http://[::1]:8081/msi/token",
        "http://169.254.129.2:8081/msi/token",
        "http://169.254.169.254",
        "https://identity.example.com/msi/token",
    ] {
        assert!(check_endpoint("IDENTITY_ENDPOINT", endpoint).is_ok(), "{endpoint}");
    }
    for endpoint in [
        "http://identity.example.com/msi/token",
        "http://10.0.0.4:8081/msi/token",
        "http://169.255.0.1/msi/token",
        "http://localhost.example.com/msi/token",
        "ftp://127.0.0.1/msi/token",
    ] {
        let refused = check_endpoint("IDENTITY_ENDPOINT", endpoint).expect_err(endpoint).to_string();
        assert!(refused.starts_with(&format!("IDENTITY_ENDPOINT {endpoint}: a managed identity")), "{refused}");
        assert!(refused.contains("Unset it, or point it at the endpoint Azure set"), "{refused}");
    }
    let header = || SecretString::new("s3cret");
    assert!(ManagedSource::app_service("http://attacker.example/".into(), header()).is_err());
    let refused = ManagedSource::imds("http://metadata.example".into(), "AZURE_POD_IDENTITY_AUTHORITY_HOST");
    assert!(refused.is_err_and(|e| e.to_string().starts_with("AZURE_POD_IDENTITY_AUTHORITY_HOST")));
    // Service Fabric's endpoint is HTTPS even on this machine, and its thumbprint a SHA-1.
    let pinned = "3D:B2:56:D9:C2:24:68:FC:34:33:46:D1:B1:4C:7F:96:3B:27:92:80";
    let fabric =
        |endpoint: &str, thumbprint: &str| ManagedSource::service_fabric(endpoint.into(), header(), thumbprint);
    assert!(fabric("https://10.0.0.4:2377/metadata/identity/oauth2/token", pinned).is_ok());
    let refused = fabric("http://127.0.0.1:2377/metadata/identity/oauth2/token", pinned);
    assert!(refused.is_err_and(|e| e.to_string().contains("must be https://")));
    let refused = fabric("https://127.0.0.1:2377/metadata/identity/oauth2/token", "0123456789abcdef");
    assert!(refused.is_err_and(|e| e.to_string().starts_with("IDENTITY_SERVER_THUMBPRINT 0123456789abcdef")));
}

/// A source made without its checks (as a later change might) still never sends the header.
/// 0.0.0.0 is not loopback, so it is refused; were it not, the request would stay on this
/// machine (a closed port), never reach a network.
#[tokio::test]
async fn the_identity_header_never_leaves_for_another_host() {
    let source =
        ManagedSource::AppService { endpoint: "http://0.0.0.0:9/msi/token".into(), header: SecretString::new("s") };
    let refused = managed_identity(&source, None, "https://graph.microsoft.com/.default", Duration::from_secs(1))
        .await
        .expect_err("refused before any request");
    assert!(refused.to_string().contains("IDENTITY_ENDPOINT http://0.0.0.0:9/msi/token"), "{refused}");
}

/// The whole of Arc's exchange against the simulator's hybrid metadata service: the
/// challenge, the key file, the token; and a key named outside the directory the client
/// trusts is never read.
#[cfg(feature = "simulator")]
#[tokio::test]
async fn azure_arc_answers_its_challenge_with_the_key_it_names() {
    let tokens = tempfile::tempdir().unwrap();
    let config = remediate_sim::SimConfig { azure_arc: Some(tokens.path().to_path_buf()), ..Default::default() };
    let sim = remediate_sim::Simulator::start(config).await.unwrap();
    let endpoint = format!("{}/metadata/identity/oauth2/token", sim.url());
    let scope = "https://graph.microsoft.com/.default";
    let wait = Duration::from_secs(5);
    let arc = |tokens: &std::path::Path| ManagedSource::Arc { endpoint: endpoint.clone(), tokens: tokens.into() };
    let (token, _) = managed_identity(&arc(tokens.path()), None, scope, wait).await.unwrap();
    assert!(!token.expose().is_empty());

    let elsewhere = tempfile::tempdir().unwrap();
    let refused = managed_identity(&arc(elsewhere.path()), None, scope, wait).await.expect_err("not Arc's directory");
    assert!(refused.to_string().contains("is not a .key file in"), "{refused}");
    let refused = managed_identity(&arc(tokens.path()), Some("a-user-assigned-id"), scope, wait).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("only its system-assigned identity")));
}
