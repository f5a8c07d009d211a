//! The simulated Microsoft identity platform: the client-credentials token endpoint, the access
//! tokens it hands out, and the check every Graph and Exchange request goes through.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::reply::Reply;

/// The resource a token was issued for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Audience {
    Graph,
    Exchange,
}

/// Resource hosts of every cloud; a token for any of them is accepted, so `--cloud` works too.
/// Graph's from "Microsoft Graph national cloud deployments" (learn.microsoft.com/graph/
/// deployments); Exchange's from the Admin API's "Supported environments and base URLs"
/// (learn.microsoft.com/exchange/reference/admin-api-get-started).
const GRAPH_RESOURCES: [&str; 4] = [
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
];
const EXCHANGE_RESOURCES: [&str; 4] = [
    "https://outlook.office365.com",
    "https://outlook.office365.us",
    "https://outlook-dod.office365.us",
    "https://outlook.office365.cn",
];

pub(crate) mod arc;
mod managed;

pub(crate) use managed::IdentityProof;

pub(crate) fn audience_of_scope(scope: &str) -> Option<Audience> {
    let resource = scope.strip_suffix("/.default")?.trim_end_matches('/');
    if GRAPH_RESOURCES.contains(&resource) {
        Some(Audience::Graph)
    } else if EXCHANGE_RESOURCES.contains(&resource) {
        Some(Audience::Exchange)
    } else {
        None
    }
}

/// The app registration the simulated tenant knows.
#[derive(Clone, Debug)]
pub struct AppRegistration {
    pub tenant_id: String,
    /// The tenant's initial domain (`….onmicrosoft.com`): the identity platform takes it
    /// wherever it takes the tenant id.
    pub domain: String,
    pub client_id: String,
    pub client_secret: String,
    /// DER of the certificate uploaded to the app, if any.
    pub certificate: Option<Vec<u8>>,
    /// A federated (workload identity) token the app trusts, if any.
    pub federated_token: Option<String>,
    /// The secret App Service puts in `IDENTITY_HEADER` for its managed identity endpoint.
    pub identity_header: String,
}

/// Why a token was refused, in the words the service uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Missing,
    Unknown,
    Expired,
    WrongAudience,
}

impl TokenProblem {
    pub(crate) fn message(self) -> &'static str {
        match self {
            TokenProblem::Missing => "Access token is empty.",
            TokenProblem::Unknown => "IDX14100: JWT is not well formed.",
            TokenProblem::Expired => "Lifetime validation failed, the token is expired.",
            TokenProblem::WrongAudience => "Invalid audience.",
        }
    }
}

pub(crate) struct TokenIssuer {
    pub app: AppRegistration,
    pub lifetime: Duration,
    issued: Mutex<HashMap<String, (Audience, Instant)>>,
    /// Every token is refused (401), fresh ones too: an app whose access was cut mid-run.
    pub rejecting: std::sync::atomic::AtomicBool,
}

fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Reply {
    Reply::json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: {} Correlation ID: {} Timestamp: {}",
                uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), super::reply::now_rfc3339()),
            "error_codes": [code],
            "timestamp": super::reply::now_rfc3339(),
            "trace_id": uuid::Uuid::new_v4().to_string(),
            "correlation_id": uuid::Uuid::new_v4().to_string(),
        }),
    )
}

impl AppRegistration {
    /// Whether `tenant` (an id or the initial domain, any letter case) names this tenant.
    pub fn is_named(&self, tenant: &str) -> bool {
        tenant.eq_ignore_ascii_case(&self.tenant_id) || tenant.eq_ignore_ascii_case(&self.domain)
    }
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: the tenant's OpenID Connect metadata,
/// whose `issuer` and `token_endpoint` name the tenant by its id whichever name was asked for
/// (learn.microsoft.com/entra/identity-platform/v2-protocols-oidc, "Find your app's OpenID
/// configuration document URI" and its sample document). An unknown tenant is answered as the
/// service does: 400 with AADSTS90002.
pub(crate) fn openid_configuration(app: &AppRegistration, tenant: &str, base_url: &str) -> Reply {
    if !app.is_named(tenant) {
        let text = format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        );
        return aad_error(StatusCode::BAD_REQUEST, "invalid_tenant", 90002, &text);
    }
    let id = &app.tenant_id;
    Reply::json(
        StatusCode::OK,
        json!({
            "token_endpoint": format!("{base_url}/{id}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base_url}/{id}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("https://login.microsoftonline.com/{id}/v2.0"),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{base_url}/{id}/oauth2/v2.0/authorize"),
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }),
    )
}

impl TokenIssuer {
    pub(crate) fn new(app: AppRegistration, lifetime: Duration) -> TokenIssuer {
        TokenIssuer { app, lifetime, issued: Mutex::new(HashMap::new()), rejecting: Default::default() }
    }

    /// `POST /{tenant}/oauth2/v2.0/token` with a form body; `token_url` is this endpoint's own URL
    /// (what a client assertion's `aud` must name).
    pub(crate) fn issue(&self, tenant: &str, form: &HashMap<String, String>, token_url: &str) -> Reply {
        if !self.app.is_named(tenant) {
            let text = format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            );
            return aad_error(StatusCode::BAD_REQUEST, "invalid_request", 90002, &text);
        }
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
        if field("grant_type") != "client_credentials" {
            let text = "The provided value for the input parameter 'grant_type' is not valid. Expected values are the following: 'client_credentials'.";
            return aad_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", 70003, text);
        }
        if field("client_id") != self.app.client_id {
            let text = format!(
                "Application with identifier '{}' was not found in the directory '{}'.",
                field("client_id"),
                self.app.tenant_id
            );
            return aad_error(StatusCode::BAD_REQUEST, "unauthorized_client", 700016, &text);
        }
        let Some(audience) = audience_of_scope(field("scope")) else {
            let text = format!(
                "The provided value '{}' for the input parameter 'scope' is not valid. The scope must be a resource followed by '/.default'.",
                field("scope")
            );
            return aad_error(StatusCode::BAD_REQUEST, "invalid_scope", 1002012, &text);
        };
        if let Err(refusal) = self.authenticate(form, token_url) {
            return refusal;
        }
        let token = new_token();
        let expires = Instant::now() + self.lifetime;
        self.issued.lock().unwrap_or_else(|e| e.into_inner()).insert(token.clone(), (audience, expires));
        let seconds = self.lifetime.as_secs();
        Reply::json(
            StatusCode::OK,
            json!({"token_type": "Bearer", "expires_in": seconds, "ext_expires_in": seconds, "access_token": token}),
        )
    }

    fn authenticate(&self, form: &HashMap<String, String>, token_url: &str) -> Result<(), Reply> {
        let invalid_client = |code, text: &str| Err(aad_error(StatusCode::UNAUTHORIZED, "invalid_client", code, text));
        if let Some(secret) = form.get("client_secret") {
            if *secret == self.app.client_secret {
                return Ok(());
            }
            return invalid_client(
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
            );
        }
        let Some(assertion) = form.get("client_assertion") else {
            return invalid_client(
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        };
        if form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return invalid_client(
                700025,
                "Client assertion type is missing or not 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
            );
        }
        if self.app.federated_token.as_deref() == Some(assertion.as_str()) {
            return Ok(());
        }
        match &self.app.certificate {
            Some(certificate) => {
                self.check_assertion(assertion, certificate, token_url).or_else(|text| invalid_client(700027, &text))
            }
            None => invalid_client(
                700027,
                "Client assertion failed signature validation: no certificate is registered for this application.",
            ),
        }
    }

    fn check_assertion(&self, assertion: &str, certificate: &[u8], token_url: &str) -> Result<(), String> {
        let header =
            jsonwebtoken::decode_header(assertion).map_err(|e| format!("Client assertion is not a valid JWT: {e}."))?;
        let thumbprint_matches = match header.alg {
            Algorithm::PS256 => header.x5t_s256.as_deref() == Some(&thumbprint(certificate, true)),
            Algorithm::RS256 => {
                header.x5t.as_deref() == Some(&thumbprint(certificate, false))
                    || header.x5t_s256.as_deref() == Some(&thumbprint(certificate, true))
            }
            other => {
                return Err(format!("Client assertion uses unsupported algorithm {other:?}."));
            }
        };
        if !thumbprint_matches {
            return Err("The certificate thumbprint in the client assertion (x5t / x5t#S256) does not match a certificate of this application.".into());
        }
        if let Some(chain) = &header.x5c {
            check_chain(chain, certificate)?;
        }
        let public_key = rsa_public_key(certificate).ok_or("The registered certificate holds no RSA public key.")?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[token_url]);
        validation.set_issuer(&[&self.app.client_id]);
        validation.sub = Some(self.app.client_id.clone());
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 5;
        // No limit on how far `exp` lies ahead: the certificate-credentials page
        // ("Microsoft identity platform application authentication certificate credentials")
        // asks only that the assertion not be expired.
        jsonwebtoken::decode::<Value>(assertion, &DecodingKey::from_rsa_der(public_key), &validation)
            .map_err(|e| format!("Client assertion contains an invalid signature or claims: {e}."))?;
        Ok(())
    }

    /// Whether this issuer handed out `token`.
    pub(crate) fn knows(&self, token: &str) -> bool {
        self.issued.lock().unwrap_or_else(|e| e.into_inner()).contains_key(token)
    }

    /// Checks a request's `Authorization` header for the given resource.
    pub(crate) fn check(&self, authorization: Option<&str>, wanted: Audience) -> Result<(), TokenProblem> {
        if self.rejecting.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(TokenProblem::Unknown);
        }
        let token = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .filter(|token| !token.is_empty())
            .ok_or(TokenProblem::Missing)?;
        let issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let (audience, expires) = issued.get(token).ok_or(TokenProblem::Unknown)?;
        if Instant::now() >= *expires {
            return Err(TokenProblem::Expired);
        }
        if *audience != wanted {
            return Err(TokenProblem::WrongAudience);
        }
        Ok(())
    }
}

fn new_token() -> String {
    let bytes: Vec<u8> = (0..48).map(|_| fastrand::u8(..)).collect();
    format!("eyJ0eXAiOiJKV1QiLCJzaW0iOjF9.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A chain sent for subject name and issuer authentication (`x5c`: standard base64 DER, the
/// signing certificate first, RFC 7515 section 4.1.6) must start with the registered certificate.
fn check_chain(chain: &[String], certificate: &[u8]) -> Result<(), String> {
    let first = chain.first().ok_or("The x5c header of the client assertion is empty.")?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(first)
        .map_err(|_| "The x5c header of the client assertion is not base64-encoded DER.")?;
    if thumbprint(&der, true) != thumbprint(certificate, true) {
        return Err(
            "The first certificate of the client assertion's x5c chain is not the application's certificate.".into()
        );
    }
    Ok(())
}

/// `x5t` (SHA-1) or `x5t#S256` (SHA-256) of a DER certificate, base64url without padding.
pub fn thumbprint(certificate_der: &[u8], sha256: bool) -> String {
    use aws_lc_rs::digest;
    let algorithm = if sha256 { &digest::SHA256 } else { &digest::SHA1_FOR_LEGACY_USE_ONLY };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest::digest(algorithm, certificate_der))
}

/// The PKCS#1 RSA public key inside an X.509 certificate's subjectPublicKeyInfo.
pub fn rsa_public_key(certificate_der: &[u8]) -> Option<&[u8]> {
    let certificate = der_children(der_element(certificate_der)?.1)?;
    let tbs = der_children(certificate.first()?.1)?;
    // With an explicit version ([0]) first, subjectPublicKeyInfo is the 7th element, else the 6th.
    let skip = usize::from(tbs.first()?.0 == 0xa0);
    let spki = der_children(tbs.get(5 + skip)?.1)?;
    let (tag, bits) = *spki.get(1)?;
    (tag == 0x03 && bits.first() == Some(&0)).then(|| &bits[1..])
}

/// One DER element at the start of `input`: (tag, contents, rest).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

fn der_children(mut input: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut children = Vec::new();
    while !input.is_empty() {
        let (tag, contents, rest) = der_element(input)?;
        children.push((tag, contents));
        input = rest;
    }
    Some(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_map_to_audiences_in_every_cloud() {
        assert_eq!(audience_of_scope("https://graph.microsoft.com/.default"), Some(Audience::Graph));
        assert_eq!(audience_of_scope("https://outlook.office365.us/.default"), Some(Audience::Exchange));
        assert_eq!(audience_of_scope("https://graph.microsoft.com/User.Read"), None);
        assert_eq!(audience_of_scope("https://evil.example/.default"), None);
    }

    #[test]
    fn der_walker_refuses_truncated_input() {
        assert!(rsa_public_key(&[0x30, 0x82, 0x01]).is_none());
        assert!(rsa_public_key(&[]).is_none());
    }
}
