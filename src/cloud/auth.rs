//! Access tokens by the client-credentials flow: with a secret, a certificate (a signed JWT client
//! assertion) or a workload identity token file; or from a managed identity or the Azure CLI
//! ([`managed`]). One token per resource (Graph, Exchange), renewed a little before it expires
//! and once after a 401. Tokens live in memory only.
//!
//! We write the flows ourselves rather than use `azure_identity`: its credentials take the
//! authority host but not an arbitrary token URL with a path, and it pulls in a large dependency
//! tree; the three flows are one form POST each.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::service_error;
use crate::error::Error;
use crate::secret::SecretString;

pub mod azure_cli;
pub mod managed;

pub use managed::ManagedSource;

/// The credentials `--credential` names, in the order they are tried without it (as
/// azure-identity's `DefaultAzureCredential` does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// A client secret: `--client-secret-file` or `AZURE_CLIENT_SECRET`.
    Secret,
    /// A certificate: `AZURE_CLIENT_CERTIFICATE_PATH`.
    Certificate,
    /// Kubernetes workload identity: `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
    /// A managed identity: App Service and Functions (`IDENTITY_ENDPOINT`), else the VM's
    /// instance metadata service; `AZURE_CLIENT_ID` picks a user-assigned one.
    ManagedIdentity,
    /// The Azure CLI's signed-in account (`az login`).
    AzureCli,
}

/// How the app proves who it is.
pub enum Credential {
    Secret(SecretString),
    /// An RSA key and the certificate's SHA-256 thumbprint (`x5t#S256`).
    Certificate {
        key: jsonwebtoken::EncodingKey,
        thumbprint: String,
    },
    /// A file holding a federated token (Kubernetes workload identity), read at each request
    /// because the kubelet rotates it.
    Federated(PathBuf),
    /// A managed identity; `client_id` picks a user-assigned one.
    ManagedIdentity {
        source: ManagedSource,
        client_id: Option<String>,
    },
    /// The Azure CLI's signed-in account.
    AzureCli,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret((redacted))"),
            Credential::Certificate { thumbprint, .. } => {
                write!(f, "Certificate(x5t#S256={thumbprint})")
            }
            Credential::Federated(path) => write!(f, "Federated({})", path.display()),
            Credential::ManagedIdentity { .. } | Credential::AzureCli => f.write_str(self.name()),
        }
    }
}

/// A certificate credential that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("AZURE_CLIENT_CERTIFICATE_PATH {}: {problem}", .path.display())]
pub struct CertificateError {
    pub path: std::path::PathBuf,
    pub problem: String,
}

impl Credential {
    /// What the log calls it.
    pub fn name(&self) -> &'static str {
        match self {
            Credential::Secret(_) => "a client secret",
            Credential::Certificate { .. } => "a certificate",
            Credential::Federated(_) => "workload identity (a federated token)",
            Credential::ManagedIdentity { source, .. } => source.name(),
            Credential::AzureCli => "the Azure CLI's account",
        }
    }

    /// Reads the certificate and its private key: a PEM file holding both, or a PKCS#12 file
    /// (`.pfx`/`.p12`, as Windows, Key Vault and the Entra portal's tooling export it) opened with
    /// `password`, which azure-identity's EnvironmentCredential reads from
    /// AZURE_CLIENT_CERTIFICATE_PASSWORD.
    pub fn from_certificate_file(path: &Path, password: Option<&SecretString>) -> Result<Credential, CertificateError> {
        let problem = |problem: String| CertificateError { path: path.to_path_buf(), problem };
        let bytes = crate::files::read_capped(path, crate::files::cap::SMALL)
            .map_err(|e| problem(format!("cannot read it: {e}")))?;
        // A PEM file is text that holds "-----BEGIN"; PKCS#12 is DER, a SEQUENCE (0x30) first.
        if !bytes.windows(10).any(|w| w == b"-----BEGIN") && bytes.first() == Some(&0x30) {
            return Self::from_pkcs12(&bytes, password).map_err(problem);
        }
        Self::from_pem(&bytes).map_err(problem)
    }

    fn from_pem(text: &[u8]) -> Result<Credential, String> {
        let blocks = pem::parse_many(text).map_err(|e| format!("not a PEM file: {e}"))?;
        let certificate = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or("no CERTIFICATE block; the file must hold the certificate and its private key (or be a .pfx)")?;
        let key = blocks
            .iter()
            .find(|b| b.tag().ends_with("PRIVATE KEY"))
            .ok_or("no PRIVATE KEY block; the file must hold the certificate and its private key (unencrypted)")?;
        Self::certificate(key, certificate.contents())
    }

    /// The first private key of a PKCS#12 file and the certificate it belongs to.
    fn from_pkcs12(der: &[u8], password: Option<&SecretString>) -> Result<Credential, String> {
        // An export without a password is protected by the empty one.
        let password = password.map_or("", SecretString::expose);
        let store = p12_keystore::KeyStore::from_pkcs12(der, password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
            .map_err(|e| match password {
                "" => format!(
                    "cannot open this PKCS#12 file ({e}); if it has a password, set AZURE_CLIENT_CERTIFICATE_PASSWORD"
                ),
                _ => format!(
                    "cannot open this PKCS#12 file with AZURE_CLIENT_CERTIFICATE_PASSWORD ({e}); check the password"
                ),
            })?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or("the PKCS#12 file holds no private key; export the certificate with its private key")?;
        let certificate =
            chain.certs().first().ok_or("the PKCS#12 file holds a private key but not its certificate")?;
        let key = pem::Pem::new("PRIVATE KEY", chain.key().as_der().to_vec());
        Self::certificate(&key, certificate.as_der())
    }

    fn certificate(key: &pem::Pem, certificate_der: &[u8]) -> Result<Credential, String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem::encode(key).as_bytes())
            .map_err(|e| format!("the private key is not a usable RSA key: {e}"))?;
        Ok(Credential::Certificate { key, thumbprint: sha256_thumbprint(certificate_der) })
    }
}

/// The certificate's `x5t#S256`: the SHA-256 of its DER encoding, base64url without padding
/// (RFC 7515 section 4.1.8; "Microsoft identity platform application authentication certificate
/// credentials" lists it for PS256 assertions).
pub fn sha256_thumbprint(certificate_der: &[u8]) -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, certificate_der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

struct Cached {
    token: SecretString,
    renew_at: Instant,
}

/// Tokens for one tenant and app.
pub struct TokenSource {
    http: reqwest::Client,
    tenant_id: String,
    token_url: String,
    client_id: String,
    credential: Credential,
    timeout: Duration,
    cache: [Mutex<Option<Cached>>; 2],
}

/// The resources we need tokens for, by their index in the cache.
#[derive(Clone, Copy, Debug)]
pub struct Resource<'a> {
    pub slot: usize,
    pub scope: &'a str,
}

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        login_url: &str,
        tenant_id: &str,
        client_id: &str,
        credential: Credential,
        timeout: Duration,
    ) -> TokenSource {
        let tenant = percent_encoding::utf8_percent_encode(tenant_id, super::paths::SEGMENT).to_string();
        TokenSource {
            http,
            tenant_id: tenant_id.to_string(),
            token_url: format!("{}/{tenant}/oauth2/v2.0/token", login_url.trim_end_matches('/')),
            client_id: client_id.to_string(),
            credential,
            timeout,
            cache: [Mutex::new(None), Mutex::new(None)],
        }
    }

    /// A valid token for `resource`, fetched only if the cached one is near its end. Concurrent
    /// callers wait for one fetch instead of each starting their own.
    pub async fn token(&self, resource: Resource<'_>) -> Result<SecretString, Error> {
        let mut cached = self.cache[resource.slot].lock().await;
        if let Some(entry) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(entry.token.clone());
        }
        let (token, lifetime) = self.fetch(resource.scope).await?;
        // Renew a few minutes early, or a quarter of the lifetime early for short-lived tokens.
        let margin = (lifetime / 4).min(Duration::from_secs(300));
        *cached = Some(Cached { token: token.clone(), renew_at: Instant::now() + lifetime - margin });
        Ok(token)
    }

    /// Forgets `token` after the service refused it, so the next call fetches a new one.
    pub async fn invalidate(&self, resource: Resource<'_>, token: &SecretString) {
        let mut cached = self.cache[resource.slot].lock().await;
        if cached.as_ref().is_some_and(|c| &c.token == token) {
            *cached = None;
        }
    }

    async fn fetch(&self, scope: &str) -> Result<(SecretString, Duration), Error> {
        match &self.credential {
            Credential::ManagedIdentity { source, client_id } => {
                return managed::managed_identity(source, client_id.as_deref(), scope, self.timeout).await;
            }
            Credential::AzureCli => return azure_cli::azure_cli(&self.tenant_id, scope).await,
            _ => {}
        }
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.client_id.clone()),
            ("scope", scope.to_string()),
        ];
        match &self.credential {
            Credential::Secret(secret) => form.push(("client_secret", secret.expose().to_string())),
            Credential::Certificate { key, thumbprint } => {
                form.push(("client_assertion_type", ASSERTION_TYPE.to_string()));
                form.push(("client_assertion", self.signed_assertion(key, thumbprint)?));
            }
            Credential::Federated(path) => {
                let token = crate::files::read_text_capped(path, crate::files::cap::SMALL).map_err(|e| {
                    Error::Auth(format!("AZURE_FEDERATED_TOKEN_FILE {}: cannot read it: {e}", path.display()))
                })?;
                form.push(("client_assertion_type", ASSERTION_TYPE.to_string()));
                form.push(("client_assertion", token.trim().to_string()));
            }
            Credential::ManagedIdentity { .. } | Credential::AzureCli => {}
        }
        let secrets: Vec<&str> = form
            .iter()
            .filter(|(name, _)| matches!(*name, "client_secret" | "client_assertion"))
            .map(|(_, value)| value.as_str())
            .collect();
        let mut last_problem = String::new();
        for attempt in 1..=4u32 {
            let request = self.http.post(&self.token_url).form(&form).timeout(self.timeout);
            let (status, body) = match super::receive_at_most(request, IDENTITY_ANSWER_CAP).await {
                Ok(answer) => (reqwest::StatusCode::from_u16(answer.status).unwrap_or_default(), answer.body),
                Err(failure) => {
                    last_problem = format!("cannot reach the token endpoint {}: {}", self.token_url, failure.message);
                    pause(attempt).await;
                    continue;
                }
            };
            if status.is_success() {
                let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
                    Error::Auth(format!("the token endpoint {} answered without a usable token: {e}", self.token_url))
                })?;
                return Ok((SecretString::new(answer.access_token), Duration::from_secs(answer.expires_in.max(1))));
            }
            if status.is_server_error() || status.as_u16() == 429 {
                last_problem = format!("the token endpoint answered {status}");
                pause(attempt).await;
                continue;
            }
            let message = service_error::parse(&body);
            // An endpoint (or a proxy in front of it) may echo what was posted: never repeat it.
            let text = redact(&message.message, &secrets);
            return Err(Error::Auth(format!(
                "the identity platform refused the app's credentials ({}): {}. Check AZURE_TENANT_ID, AZURE_CLIENT_ID and the secret or certificate, and that the app has admin consent in this tenant.",
                redact(&message.code, &secrets),
                text.trim_end_matches('.')
            )));
        }
        Err(Error::Auth(last_problem))
    }

    fn signed_assertion(&self, key: &jsonwebtoken::EncodingKey, thumbprint: &str) -> Result<String, Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        header.x5t_s256 = Some(thumbprint.to_string());
        let claims = serde_json::json!({
            "aud": self.token_url,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        jsonwebtoken::encode(&header, &claims, key)
            .map_err(|e| Error::Auth(format!("cannot sign the client assertion with the certificate's key: {e}")))
    }
}

/// The tenant's id (a GUID) for `tenant`, which may be the id or one of its domains
/// (`contoso.onmicrosoft.com`): a domain is looked up in the tenant's OpenID Connect metadata,
/// whose `token_endpoint` names the tenant by its id
/// (learn.microsoft.com/entra/identity-platform/v2-protocols-oidc, "Find your app's OpenID
/// configuration document URI"). Locks and run records key on the id, so that two names of one
/// tenant are one tenant.
pub async fn tenant_id_of(
    http: &reqwest::Client,
    login_url: &str,
    tenant: &str,
    timeout: Duration,
) -> Result<String, Error> {
    if let Ok(id) = uuid::Uuid::parse_str(tenant) {
        return Ok(id.hyphenated().to_string());
    }
    let name = percent_encoding::utf8_percent_encode(tenant, super::paths::SEGMENT).to_string();
    let url = format!("{}/{name}/v2.0/.well-known/openid-configuration", login_url.trim_end_matches('/'));
    let mut last_problem = String::new();
    for attempt in 1..=4u32 {
        let answer = match super::receive_at_most(http.get(&url).timeout(timeout), IDENTITY_ANSWER_CAP).await {
            Ok(answer) => answer,
            Err(failure) => {
                last_problem = format!("cannot reach the identity platform at {url}: {}", failure.message);
                pause(attempt).await;
                continue;
            }
        };
        if answer.status == 429 || answer.status >= 500 {
            last_problem = format!("the identity platform answered {} for {url}", answer.status);
            pause(attempt).await;
            continue;
        }
        if answer.status != 200 {
            let message = service_error::parse(&answer.body);
            return Err(Error::Auth(format!(
                "tenant '{tenant}' is not known to the identity platform ({}: {}); check AZURE_TENANT_ID (the tenant's id, or a domain of it such as contoso.onmicrosoft.com) and --cloud",
                message.code,
                message.message.trim_end_matches('.')
            )));
        }
        let metadata: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        let endpoint = metadata["token_endpoint"].as_str().unwrap_or_default();
        let id = endpoint.split('/').find_map(|segment| uuid::Uuid::parse_str(segment).ok());
        return id.map(|id| id.hyphenated().to_string()).ok_or_else(|| {
            Error::Auth(format!("the OpenID metadata at {url} names no tenant id in its token_endpoint ({endpoint})"))
        });
    }
    Err(Error::Auth(last_problem))
}

/// `text` with every secret in it, raw or form-encoded, and every value of a field that carries
/// one (`client_secret=…`, `"access_token":"…"`), replaced by `(redacted)`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        text = text.replace(*secret, "(redacted)").replace(&encoded, "(redacted)");
    }
    for field in ["client_secret", "client_assertion", "access_token", "refresh_token", "id_token", "assertion"] {
        let mut from = 0;
        while let Some(found) = text[from..].find(field) {
            let after = from + found + field.len();
            let value_start = text[after..]
                .find(|c: char| !matches!(c, '=' | ':' | '"' | ' '))
                .map_or(text.len(), |i| after + i)
                .max(after);
            let separators = &text[after..value_start];
            if separators.contains('=') || separators.contains(':') {
                let value_end =
                    text[value_start..].find(['&', '"', ',', ' ', '}', '\n']).map_or(text.len(), |i| value_start + i);
                if value_end > value_start && &text[value_start..value_end] != "(redacted)" {
                    text.replace_range(value_start..value_end, "(redacted)");
                }
            }
            from = after;
        }
    }
    text
}

/// The wait before asking the token endpoint again.
async fn pause(attempt: u32) {
    tokio::time::sleep(super::retry_after::backoff(attempt, Duration::from_millis(500), Duration::from_secs(5))).await;
}

/// The identity platform's answers (a token, an error, OpenID metadata) are a few kilobytes.
const IDENTITY_ANSWER_CAP: usize = 1024 * 1024;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[cfg(test)]
mod tests {
    use super::{redact, sha256_thumbprint};

    #[test]
    fn the_thumbprint_is_the_one_openssl_computes() {
        // openssl x509 -in tests/fixtures/app.crt -noout -fingerprint -sha256
        // 2F:5F:05:24:74:1A:9A:92:73:9A:F1:16:3B:B5:19:99:1C:CF:E8:7F:40:F6:52:34:15:85:A0:7F:F3:77:DA:65,
        // which is this in base64url without padding.
        let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/app.crt")).unwrap();
        let der = pem::parse(pem).unwrap();
        assert_eq!(sha256_thumbprint(der.contents()), "L18FJHQampJzmvEWO7UZmRzP6H9A9lI0FYWgf_N32mU");
    }

    #[test]
    fn echoed_secrets_and_token_fields_are_redacted() {
        let echoed = "bad request: grant_type=client_credentials&client_id=abc&client_secret=s3cr%2Bt%3D&scope=x";
        let text = redact(echoed, &["s3cr+t="]);
        assert!(!text.contains("s3cr"), "{text}");
        assert!(text.contains("client_id=abc") && text.contains("scope=x"), "{text}");
        let json = r#"{"access_token":"eyJabc.def","client_assertion": "eyJxyz"}"#;
        let text = redact(json, &[]);
        assert!(!text.contains("eyJ"), "{text}");
        assert_eq!(redact("plain words about a client_secret", &[]), "plain words about a client_secret");
    }
}
