//! Access tokens by the client-credentials flow: with a secret, a certificate (a signed JWT client
//! assertion, [`certificate`] reads it) or a workload identity token file; or from a managed identity or the Azure CLI
//! ([`managed`]). One token per resource (Graph, Exchange), renewed a little before it expires
//! and once after a 401. Tokens live in memory only.
//!
//! We write the flows ourselves rather than use `azure_identity`: its credentials take the
//! authority host but not an arbitrary token URL with a path, and it pulls in a large dependency
//! tree; the three flows are one form POST each.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::service_error;
use crate::error::Error;
use crate::support::secret::SecretString;

pub(crate) mod azure_cli;
mod certificate;
pub(crate) mod managed;

pub use certificate::sha256_thumbprint;
pub(crate) use certificate::{CertificateError, send_certificate_chain};
pub(crate) use managed::ManagedSource;

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
pub(crate) enum Credential {
    Secret(SecretString),
    /// An RSA key, the certificate's SHA-256 thumbprint (`x5t#S256`) and, when
    /// AZURE_CLIENT_SEND_CERTIFICATE_CHAIN asks for it, the chain for the `x5c` header.
    Certificate {
        key: jsonwebtoken::EncodingKey,
        thumbprint: String,
        x5c: Option<Vec<String>>,
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

impl Credential {
    /// What the log calls it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Credential::Secret(_) => "a client secret",
            Credential::Certificate { .. } => "a certificate",
            Credential::Federated(_) => "workload identity (a federated token)",
            Credential::ManagedIdentity { source, .. } => source.name(),
            Credential::AzureCli => "the Azure CLI's account",
        }
    }
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
pub(crate) struct TokenSource {
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
pub(crate) struct Resource<'a> {
    pub slot: usize,
    pub scope: &'a str,
}

impl TokenSource {
    pub(crate) fn new(
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
    pub(crate) async fn token(&self, resource: Resource<'_>) -> Result<SecretString, Error> {
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
    pub(crate) async fn invalidate(&self, resource: Resource<'_>, token: &SecretString) {
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
            Credential::Certificate { key, thumbprint, x5c } => {
                form.push(("client_assertion_type", ASSERTION_TYPE.to_string()));
                form.push(("client_assertion", self.signed_assertion(key, thumbprint, x5c.as_deref())?));
            }
            Credential::Federated(path) => {
                let token =
                    crate::support::files::read_text_capped(path, crate::support::files::cap::SMALL).map_err(|e| {
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

    fn signed_assertion(
        &self,
        key: &jsonwebtoken::EncodingKey,
        thumbprint: &str,
        x5c: Option<&[String]>,
    ) -> Result<String, Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        header.x5t_s256 = Some(thumbprint.to_string());
        header.x5c = x5c.map(<[String]>::to_vec);
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
pub(crate) async fn tenant_id_of(
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
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
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
    use std::time::Duration;

    use base64::Engine;

    use super::{Credential, TokenSource, redact};

    #[test]
    fn a_sent_chain_is_the_assertions_x5c_in_standard_base64_leaf_first() {
        // app-chain.pem: other.crt, then app.pem's certificate and key.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/app-chain.pem");
        let credential = Credential::from_certificate_file(path.as_ref(), None, true).unwrap();
        let Credential::Certificate { key, thumbprint, x5c } = &credential else { panic!("{credential:?}") };
        // The source's own credential is not used: signed_assertion takes the key it signs with.
        let http = reqwest::Client::new();
        let source =
            TokenSource::new(http, "https://login.test", "t", "c", Credential::AzureCli, Duration::from_secs(1));
        let assertion = source.signed_assertion(key, thumbprint, x5c.as_deref()).unwrap();
        let header = assertion.split('.').next().unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        let x5c = header["x5c"].as_array().unwrap();
        let first = base64::engine::general_purpose::STANDARD.decode(x5c[0].as_str().unwrap()).unwrap();
        let app = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/app.crt")).unwrap();
        assert_eq!(first, pem::parse(app).unwrap().contents());
        assert_eq!(x5c.len(), 2, "the rest of the chain follows");
        assert_eq!(header["x5t#S256"], thumbprint.as_str());
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
