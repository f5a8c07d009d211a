//! Tokens without an app credential of our own: a managed identity (App Service and Functions
//! through `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, virtual machines through the instance
//! metadata service). It answers with a token for a resource (the scope without `/.default`).
//!
//! An endpoint is held to the rule every endpoint is (HTTPS, or plain HTTP on this machine), with
//! one more place plain HTTP may go: the link-local network 169.254.0.0/16, never routed off the
//! host's link, where Azure serves these endpoints: the instance metadata service at
//! 169.254.169.254, and App Service on Linux at addresses such as 169.254.129.2:8081 (App Service
//! on Windows uses 127.0.0.1:41564, Azure Arc localhost:40342, as MSAL's and azure-identity's
//! tests and Microsoft's Arc documentation show). The identity header, a secret, goes with the
//! request to that endpoint only: no redirect is followed.

use std::time::Duration;

use serde_json::Value;

use crate::error::Error;
use crate::secret::SecretString;

/// Where a managed identity's tokens come from.
pub enum ManagedSource {
    /// App Service and Functions: `GET {IDENTITY_ENDPOINT}?resource=…&api-version=2019-08-01`
    /// with the `X-IDENTITY-HEADER` secret ("REST endpoint reference",
    /// learn.microsoft.com/azure/app-service/overview-managed-identity).
    AppService { endpoint: String, header: SecretString },
    /// A virtual machine's instance metadata service: `GET {host}/metadata/identity/oauth2/token?
    /// api-version=2018-02-01&resource=…` with `Metadata: true` (learn.microsoft.com/entra/identity/
    /// managed-identities-azure-resources/how-to-use-vm-token). The host is 169.254.169.254 unless
    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST` names another, as azure-identity reads it.
    Imds { host: String },
}

impl ManagedSource {
    /// App Service's endpoint and header, once the endpoint passes [`check_endpoint`].
    pub fn app_service(endpoint: String, header: SecretString) -> Result<ManagedSource, Error> {
        check_endpoint("IDENTITY_ENDPOINT", &endpoint)?;
        Ok(ManagedSource::AppService { endpoint, header })
    }

    /// The instance metadata service at `host`, once it passes [`check_endpoint`].
    pub fn imds(host: String, setting: &str) -> Result<ManagedSource, Error> {
        check_endpoint(setting, &host)?;
        Ok(ManagedSource::Imds { host })
    }
}

/// HTTPS anywhere; plain HTTP only to this machine (`localhost`, 127.0.0.0/8, ::1) or the
/// link-local network Azure serves managed identities on (169.254.0.0/16). `setting` names
/// where the URL came from.
pub fn check_endpoint(setting: &str, endpoint: &str) -> Result<(), Error> {
    let url = url::Url::parse(endpoint).map_err(|e| {
        Error::Usage(format!("{setting} {endpoint}: not a URL ({e}); unset it or give the endpoint Azure set"))
    })?;
    let link_local = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_link_local());
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::cloud::is_loopback(&url) || link_local => Ok(()),
        _ => Err(Error::Usage(format!(
            "{setting} {endpoint}: a managed identity endpoint must be https://, or http:// on this machine (localhost, 127.0.0.0/8, ::1) or Azure's link-local 169.254.0.0/16; the identity header and the tokens would cross the network in clear. Unset it, or point it at the endpoint Azure set"
        ))),
    }
}

/// The most a token answer may hold.
const ANSWER_CAP: usize = 64 * 1024;

/// The default host of the instance metadata service.
pub const IMDS_HOST: &str = "http://169.254.169.254";

pub(super) fn resource(scope: &str) -> &str {
    scope.strip_suffix("/.default").unwrap_or(scope)
}

/// A token for `scope` from a managed identity (`client_id`: a user-assigned one).
pub async fn managed_identity(
    source: &ManagedSource,
    client_id: Option<&str>,
    scope: &str,
    timeout: Duration,
) -> Result<(SecretString, Duration), Error> {
    // Never through a proxy: the endpoint is local to the host.
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Auth(format!("cannot build an HTTP client for the managed identity: {e}")))?;
    let mut query = vec![("resource", resource(scope))];
    if let Some(id) = client_id {
        query.push(("client_id", id));
    }
    let (endpoint, header) = match source {
        ManagedSource::AppService { endpoint, header } => {
            // Checked when the source was made; again here, for the header is a secret.
            check_endpoint("IDENTITY_ENDPOINT", endpoint).map_err(|e| Error::Auth(e.to_string()))?;
            query.push(("api-version", "2019-08-01"));
            (endpoint.clone(), ("X-IDENTITY-HEADER", header.expose()))
        }
        ManagedSource::Imds { host } => {
            check_endpoint("the instance metadata service", host).map_err(|e| Error::Auth(e.to_string()))?;
            query.push(("api-version", "2018-02-01"));
            (format!("{}/metadata/identity/oauth2/token", host.trim_end_matches('/')), ("Metadata", "true"))
        }
    };
    let url = url::Url::parse_with_params(&endpoint, &query)
        .map_err(|e| Error::Auth(format!("the managed identity endpoint {endpoint} is not a URL: {e}")))?;
    let request = http.get(url).header(header.0, header.1).timeout(timeout);
    let answer = crate::cloud::receive_at_most(request, ANSWER_CAP).await.map_err(|failure| {
        Error::Auth(format!("cannot reach the managed identity endpoint {endpoint}: {}", failure.message))
    })?;
    if !(200..300).contains(&answer.status) {
        let message = crate::cloud::service_error::parse(&answer.body);
        return Err(Error::Auth(format!(
            "the managed identity endpoint {endpoint} answered {} ({}: {}); check that the identity exists here and, for a user-assigned one, AZURE_CLIENT_ID",
            answer.status, message.code, message.message
        )));
    }
    token_of(&answer.body, "access_token", "the managed identity endpoint")
}

/// The token named `field` and its lifetime: `expires_in` (seconds) or `expires_on` (a Unix time),
/// each a number or a string as the sources differ; five minutes when neither says.
pub(super) fn token_of(body: &[u8], field: &str, from: &str) -> Result<(SecretString, Duration), Error> {
    let answer: Value = serde_json::from_slice(body)
        .map_err(|e| Error::Auth(format!("{from} answered without a usable token: {e}")))?;
    let token = answer[field]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Auth(format!("{from} answered without a token")))?;
    let seconds = |name: &str| match &answer[name] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let lifetime = seconds("expires_in").or_else(|| seconds("expires_on").map(|at| at - now)).unwrap_or(300);
    Ok((SecretString::new(token), Duration::from_secs(lifetime.max(1) as u64)))
}

#[cfg(test)]
mod tests {
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
}
