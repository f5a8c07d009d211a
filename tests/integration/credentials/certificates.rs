//! Certificates: a client assertion as the identity platform takes it (its lifetime, its x5c
//! chain), a PFX and an encrypted PEM key opened with their password, and a chain sent with the
//! key's own certificate first.

use remediate_sim::Simulator;

use super::{fixture, plan_signed_in_by, tenant_with_certificate};
use crate::support::scratch;

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
