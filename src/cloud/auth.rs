//! Access tokens by the client-credentials flow: with a secret, a certificate (a signed JWT client
//! assertion) or a workload identity token file. One token per resource (Graph, Exchange), renewed
//! a little before it expires and once after a 401. Tokens live in memory only.
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
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret((redacted))"),
            Credential::Certificate { thumbprint, .. } => {
                write!(f, "Certificate(x5t#S256={thumbprint})")
            }
            Credential::Federated(path) => write!(f, "Federated({})", path.display()),
        }
    }
}

impl Credential {
    /// Reads a PEM file holding a certificate and its private key.
    pub fn from_certificate_file(path: &Path) -> Result<Credential, Error> {
        let text = std::fs::read(path).map_err(|e| {
            Error::Config(format!("AZURE_CLIENT_CERTIFICATE_PATH {}: cannot read it: {e}", path.display()))
        })?;
        let blocks = pem::parse_many(&text).map_err(|e| {
            Error::Config(format!("AZURE_CLIENT_CERTIFICATE_PATH {}: not a PEM file: {e}", path.display()))
        })?;
        let certificate = blocks.iter().find(|b| b.tag() == "CERTIFICATE").ok_or_else(|| {
            Error::Config(format!("AZURE_CLIENT_CERTIFICATE_PATH {}: no CERTIFICATE block; the file must hold the certificate and its private key", path.display()))
        })?;
        let key = blocks.iter().find(|b| b.tag().ends_with("PRIVATE KEY")).ok_or_else(|| {
            Error::Config(format!("AZURE_CLIENT_CERTIFICATE_PATH {}: no PRIVATE KEY block; the file must hold the certificate and its private key (unencrypted)", path.display()))
        })?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem::encode(key).as_bytes()).map_err(|e| {
            Error::Config(format!(
                "AZURE_CLIENT_CERTIFICATE_PATH {}: the private key is not a usable RSA key: {e}",
                path.display()
            ))
        })?;
        let thumbprint = crate::sim::thumbprint(certificate.contents(), true);
        Ok(Credential::Certificate { key, thumbprint })
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
pub struct TokenSource {
    http: reqwest::Client,
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
                let token = std::fs::read_to_string(path).map_err(|e| {
                    Error::Auth(format!("AZURE_FEDERATED_TOKEN_FILE {}: cannot read it: {e}", path.display()))
                })?;
                form.push(("client_assertion_type", ASSERTION_TYPE.to_string()));
                form.push(("client_assertion", token.trim().to_string()));
            }
        }
        let mut last_problem = String::new();
        for attempt in 1..=4u32 {
            let sent = self.http.post(&self.token_url).form(&form).timeout(self.timeout).send().await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    last_problem = format!(
                        "cannot reach the token endpoint {}: {}",
                        self.token_url,
                        super::describe_transport(&error)
                    );
                    pause(attempt).await;
                    continue;
                }
            };
            let status = response.status();
            let body = response.bytes().await.unwrap_or_default();
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
            return Err(Error::Auth(format!(
                "the identity platform refused the app's credentials ({}): {}. Check AZURE_TENANT_ID, AZURE_CLIENT_ID and the secret or certificate, and that the app has admin consent in this tenant.",
                message.code,
                message.message.trim_end_matches('.')
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

/// The wait before asking the token endpoint again.
async fn pause(attempt: u32) {
    tokio::time::sleep(super::retry_after::backoff(attempt, Duration::from_millis(500), Duration::from_secs(5))).await;
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
