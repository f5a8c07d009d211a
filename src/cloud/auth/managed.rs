//! Tokens without an app credential of our own: a managed identity, found the way azure-identity's
//! `ManagedIdentityCredential` finds it (its `_managed_identity_client` order): Service Fabric
//! (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER` and `IDENTITY_SERVER_THUMBPRINT`: HTTPS whose
//! certificate is pinned by that thumbprint, see [`service_fabric`]), App Service and Functions
//! (`IDENTITY_ENDPOINT` and `IDENTITY_HEADER`), Azure Arc (`IDENTITY_ENDPOINT` and `IMDS_ENDPOINT`:
//! a challenge that names a key file, see [`arc`]), Azure Machine Learning (`MSI_ENDPOINT` and
//! `MSI_SECRET`), Cloud Shell (`MSI_ENDPOINT` alone), else a virtual machine's instance metadata
//! service. It answers with a token for a resource (the scope without `/.default`).
//!
//! An endpoint is held to the rule every endpoint is (HTTPS, or plain HTTP on this machine), with
//! one more place plain HTTP may go: the link-local network 169.254.0.0/16, never routed off the
//! host's link, where Azure serves these endpoints: the instance metadata service at
//! 169.254.169.254, and App Service on Linux at addresses such as 169.254.129.2:8081 (App Service
//! on Windows uses 127.0.0.1:41564, Azure Arc localhost:40342, Cloud Shell localhost:50342, as
//! MSAL's and azure-identity's tests and Microsoft's Arc documentation show). The identity
//! header, a secret, goes with the request to that endpoint only: no redirect is followed.
//!
//! The request each source documents, and its retries, are in `request.rs`.

use std::time::Duration;

use serde_json::Value;

use crate::error::Error;
use crate::support::secret::SecretString;

pub mod arc;
mod request;
pub(crate) mod service_fabric;

use request::{build, http_client, send_with_retries};
use service_fabric::Thumbprint;

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
    /// Azure Arc's hybrid metadata service: `GET {IDENTITY_ENDPOINT}?api-version=2020-06-01&
    /// resource=…` with `Metadata: true`, answered 401 with a challenge naming a key file under
    /// `tokens` that the caller reads and sends back ("Authenticate against Azure resources with
    /// Azure Arc-enabled servers", learn.microsoft.com/azure/azure-arc/servers/managed-identity-
    /// authentication). Only the system-assigned identity exists there.
    Arc { endpoint: String, tokens: std::path::PathBuf },
    /// Azure Machine Learning: `GET {MSI_ENDPOINT}?api-version=2017-09-01&resource=…&clientid=…`
    /// with the `secret` header (azure-identity's `azure_ml.py`).
    MachineLearning { endpoint: String, secret: SecretString },
    /// Cloud Shell: `POST {MSI_ENDPOINT}` with the form `resource=…` and `Metadata: true`
    /// (azure-identity's `cloud_shell.py`); only the signed-in user's identity exists there.
    CloudShell { endpoint: String },
    /// Service Fabric: `GET {IDENTITY_ENDPOINT}?api-version=2019-07-01-preview&resource=…` with
    /// the `Secret` header, over HTTPS whose certificate is pinned by `IDENTITY_SERVER_THUMBPRINT`
    /// ("How to leverage a Service Fabric application's managed identity to access Azure
    /// services", learn.microsoft.com/azure/service-fabric/how-to-managed-identity-service-fabric-
    /// app-code). The identity is the one the application's manifest assigns: azure-identity for
    /// Python refuses a client id there ("not supported by the Service Fabric managed identity
    /// environment"), and so does this client.
    ServiceFabric { endpoint: String, header: SecretString, thumbprint: Thumbprint },
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

    /// Azure Arc's endpoint, whose challenges must name a key file in Arc's own directory.
    pub fn arc(endpoint: String) -> Result<ManagedSource, Error> {
        check_endpoint("IDENTITY_ENDPOINT", &endpoint)?;
        Ok(ManagedSource::Arc { endpoint, tokens: arc::tokens_directory() })
    }

    /// Azure Machine Learning's endpoint and secret.
    pub fn machine_learning(endpoint: String, secret: SecretString) -> Result<ManagedSource, Error> {
        check_endpoint("MSI_ENDPOINT", &endpoint)?;
        Ok(ManagedSource::MachineLearning { endpoint, secret })
    }

    /// Service Fabric's endpoint, which must be HTTPS (its certificate is what is pinned), and
    /// the thumbprint that pins it.
    pub fn service_fabric(endpoint: String, header: SecretString, thumbprint: &str) -> Result<ManagedSource, Error> {
        check_endpoint("IDENTITY_ENDPOINT", &endpoint)?;
        check_https(&endpoint)?;
        let thumbprint = Thumbprint::parse(thumbprint).ok_or_else(|| {
            Error::Usage(format!(
                "{} {thumbprint}: not a SHA-1 thumbprint (40 hex digits, colons and spaces allowed); unset it or give the one Service Fabric set",
                service_fabric::SETTING
            ))
        })?;
        Ok(ManagedSource::ServiceFabric { endpoint, header, thumbprint })
    }

    /// Cloud Shell's endpoint.
    pub fn cloud_shell(endpoint: String) -> Result<ManagedSource, Error> {
        check_endpoint("MSI_ENDPOINT", &endpoint)?;
        Ok(ManagedSource::CloudShell { endpoint })
    }

    /// What the log calls it.
    pub fn name(&self) -> &'static str {
        match self {
            ManagedSource::AppService { .. } => "a managed identity (App Service endpoint)",
            ManagedSource::Imds { .. } => "a managed identity (instance metadata service)",
            ManagedSource::Arc { .. } => "a managed identity (Azure Arc)",
            ManagedSource::MachineLearning { .. } => "a managed identity (Azure Machine Learning)",
            ManagedSource::CloudShell { .. } => "a managed identity (Cloud Shell)",
            ManagedSource::ServiceFabric { .. } => "a managed identity (Service Fabric)",
        }
    }

    /// The endpoint requests go to, for messages.
    fn endpoint(&self) -> String {
        match self {
            ManagedSource::AppService { endpoint, .. }
            | ManagedSource::Arc { endpoint, .. }
            | ManagedSource::MachineLearning { endpoint, .. }
            | ManagedSource::CloudShell { endpoint }
            | ManagedSource::ServiceFabric { endpoint, .. } => endpoint.clone(),
            ManagedSource::Imds { host } => format!("{}/metadata/identity/oauth2/token", host.trim_end_matches('/')),
        }
    }

    /// The setting the endpoint came from, for messages.
    fn setting(&self) -> &'static str {
        match self {
            ManagedSource::AppService { .. } | ManagedSource::Arc { .. } | ManagedSource::ServiceFabric { .. } => {
                "IDENTITY_ENDPOINT"
            }
            ManagedSource::MachineLearning { .. } | ManagedSource::CloudShell { .. } => "MSI_ENDPOINT",
            ManagedSource::Imds { .. } => "the instance metadata service",
        }
    }
}

/// HTTPS anywhere; plain HTTP only to this machine (`localhost`, 127.0.0.0/8, ::1) or the
/// link-local network Azure serves managed identities on (169.254.0.0/16). `setting` names
/// where the URL came from.
pub(crate) fn check_endpoint(setting: &str, endpoint: &str) -> Result<(), Error> {
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

/// Service Fabric's endpoint is HTTPS, even on this machine: the pinned certificate is what
/// proves it is Service Fabric's.
fn check_https(endpoint: &str) -> Result<(), Error> {
    match url::Url::parse(endpoint) {
        Ok(url) if url.scheme() == "https" => Ok(()),
        _ => Err(Error::Usage(format!(
            "IDENTITY_ENDPOINT {endpoint}: beside {}, the endpoint must be https:// (Service Fabric's is), for its certificate is what the thumbprint pins. Unset IDENTITY_SERVER_THUMBPRINT, or point IDENTITY_ENDPOINT at the endpoint Service Fabric set",
            service_fabric::SETTING
        ))),
    }
}

/// The default host of the instance metadata service.
pub(crate) const IMDS_HOST: &str = "http://169.254.169.254";

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
    // Checked when the source was made; again here, for what goes with the request is a secret.
    let endpoint = source.endpoint();
    check_endpoint(source.setting(), &endpoint).map_err(|e| Error::Auth(e.to_string()))?;
    let refuse = |why: &str| {
        Err(Error::Auth(format!("{} {why}: unset AZURE_CLIENT_ID (or --client-id) to use it", source.name())))
    };
    match (client_id, source) {
        (Some(_), ManagedSource::Arc { .. } | ManagedSource::CloudShell { .. }) => {
            return refuse("has only its system-assigned identity");
        }
        (Some(_), ManagedSource::ServiceFabric { .. }) => {
            return refuse("is the identity the application's manifest assigns, not one picked by a client id");
        }
        _ => {}
    }
    let (http, pin) = http_client(source)?;
    let request =
        |proof: Option<&str>| build(&http, source, client_id, resource(scope), proof).map(|r| r.timeout(timeout));
    let mut answer = send_with_retries(&request, None, &endpoint, pin.as_deref()).await?;
    if let (401, ManagedSource::Arc { tokens, .. }) = (answer.status, source) {
        let key = arc::answer_challenge(&answer.headers, tokens)?;
        answer = send_with_retries(&request, Some(key.expose()), &endpoint, None).await?;
    }
    if !(200..300).contains(&answer.status) {
        let message = crate::cloud::service_error::parse(&answer.body);
        return Err(Error::Auth(format!(
            "the managed identity endpoint {endpoint} answered {} ({}: {}); check that the identity exists here and, for a user-assigned one, AZURE_CLIENT_ID",
            answer.status, message.code, message.message
        )));
    }
    token_of(&answer.body, "access_token", "the managed identity endpoint")
}

/// The token named `field` and its lifetime: `expires_on` (a Unix time) or `expires_in` (seconds),
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
    // `expires_on` first, then `expires_in`, as azure-identity reads them
    // (`_internal/managed_identity_client.py`: `content.get("expires_on") or … expires_in`):
    // azure-identity's own Cloud Shell test answers carry `expires_in: 0` beside `expires_on`.
    let expires_on = seconds("expires_on").filter(|at| *at != 0).map(|at| at - now);
    let lifetime = expires_on.or_else(|| seconds("expires_in")).unwrap_or(300);
    Ok((SecretString::new(token), Duration::from_secs(lifetime.max(1) as u64)))
}

#[cfg(test)]
mod tests;
