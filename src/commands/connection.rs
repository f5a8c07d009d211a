//! From the command line and the environment to a [`CloudClient`]: which tenant, which app,
//! which credential, which hosts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::simulate::SimulatedTenant;
use crate::cli::ConnectionArgs;
use crate::cloud::auth::managed::IMDS_HOST;
use crate::cloud::auth::{Credential, CredentialKind, ManagedSource, TokenSource};
use crate::cloud::{CloudClient, Endpoints, http_client};
use crate::error::{Error, Result};
use crate::run::tuning::Tuning;
use crate::support::secret::SecretString;

/// A connected client, and the simulated tenant behind it when simulating (it lives as long as
/// the connection, and stops when dropped).
pub(crate) struct Connection {
    pub client: Arc<CloudClient>,
    pub simulated: Option<SimulatedTenant>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Warns when a file holding a secret or a key can be read by other users.
fn warn_if_readable_by_others(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(path)
            && metadata.permissions().mode() & 0o077 != 0
        {
            tracing::warn!("{what} {} can be read by other users; run: chmod 600 {}", path.display(), path.display());
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}

/// A client secret from `--client-secret-file` or `AZURE_CLIENT_SECRET`.
fn secret(args: &ConnectionArgs) -> Result<Option<Credential>> {
    if let Some(path) = &args.client_secret_file {
        warn_if_readable_by_others(path, "--client-secret-file");
        let secret = crate::support::files::read_text_capped(path, crate::support::files::cap::SMALL)
            .map_err(|e| Error::Usage(format!("--client-secret-file {}: cannot read it: {e}", path.display())))?;
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(Error::Usage(format!("--client-secret-file {}: the file is empty", path.display())));
        }
        return Ok(Some(Credential::Secret(SecretString::new(secret))));
    }
    Ok(env("AZURE_CLIENT_SECRET").map(|secret| Credential::Secret(SecretString::new(secret.trim()))))
}

fn certificate() -> Result<Option<Credential>> {
    let Some(path) = env("AZURE_CLIENT_CERTIFICATE_PATH").map(PathBuf::from) else { return Ok(None) };
    warn_if_readable_by_others(&path, "AZURE_CLIENT_CERTIFICATE_PATH");
    let password = env("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(SecretString::new);
    let send_chain = crate::cloud::auth::send_certificate_chain(env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN").as_deref());
    Ok(Some(Credential::from_certificate_file(&path, password.as_ref(), send_chain)?))
}

/// The managed identity the environment names, in azure-identity's order: Service Fabric
/// (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER` and `IDENTITY_SERVER_THUMBPRINT`, its endpoint's
/// certificate pinned by that thumbprint), App Service and Functions (`IDENTITY_ENDPOINT` and
/// `IDENTITY_HEADER`), Azure Arc (`IDENTITY_ENDPOINT` and `IMDS_ENDPOINT`), Azure Machine Learning
/// (`MSI_ENDPOINT` and `MSI_SECRET`), Cloud Shell (`MSI_ENDPOINT`); else a VM's instance metadata
/// service (not probed unless asked: off Azure, a probe only waits).
fn managed_identity(args: &ConnectionArgs, asked: bool) -> Result<Option<Credential>> {
    let client_id = args.client_id.clone();
    let source = match (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER"), env("MSI_ENDPOINT")) {
        // Never taken for App Service: its header would go to an endpoint whose certificate is
        // unchecked (azure-identity's `ServiceFabricCredential` is tried before App Service's).
        (Some(endpoint), Some(header), _) => match env("IDENTITY_SERVER_THUMBPRINT") {
            Some(thumbprint) => ManagedSource::service_fabric(endpoint, SecretString::new(header), &thumbprint)?,
            None => ManagedSource::app_service(endpoint, SecretString::new(header))?,
        },
        (Some(endpoint), None, _) if env("IMDS_ENDPOINT").is_some() => ManagedSource::arc(endpoint)?,
        (_, _, Some(endpoint)) => match env("MSI_SECRET") {
            Some(secret) => ManagedSource::machine_learning(endpoint, SecretString::new(secret))?,
            None => ManagedSource::cloud_shell(endpoint)?,
        },
        _ => match env("AZURE_POD_IDENTITY_AUTHORITY_HOST") {
            Some(host) => ManagedSource::imds(host, "AZURE_POD_IDENTITY_AUTHORITY_HOST")?,
            None if asked => ManagedSource::Imds { host: IMDS_HOST.to_string() },
            None => return Ok(None),
        },
    };
    Ok(Some(Credential::ManagedIdentity { source, client_id }))
}

/// Whether `az` is on the PATH.
fn azure_cli_installed() -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("az").is_file()))
}

/// The credential `--credential` names, or the first that is set up (never an argument).
fn credential(args: &ConnectionArgs) -> Result<Credential> {
    let missing = |what: &str| Error::Usage(format!("--credential: {what}"));
    match args.credential {
        Some(CredentialKind::Secret) => {
            return secret(args)?.ok_or_else(|| missing("secret needs --client-secret-file or AZURE_CLIENT_SECRET"));
        }
        Some(CredentialKind::Certificate) => {
            return certificate()?.ok_or_else(|| missing("certificate needs AZURE_CLIENT_CERTIFICATE_PATH"));
        }
        Some(CredentialKind::WorkloadIdentity) => {
            let path = env("AZURE_FEDERATED_TOKEN_FILE")
                .ok_or_else(|| missing("workload-identity needs AZURE_FEDERATED_TOKEN_FILE"))?;
            return Ok(Credential::Federated(PathBuf::from(path)));
        }
        Some(CredentialKind::ManagedIdentity) => {
            return managed_identity(args, true)?.ok_or_else(|| missing("managed-identity found no endpoint"));
        }
        Some(CredentialKind::AzureCli) => return Ok(Credential::AzureCli),
        None => {}
    }
    if let Some(credential) = secret(args)? {
        return Ok(credential);
    }
    if let Some(credential) = certificate()? {
        return Ok(credential);
    }
    if let Some(path) = env("AZURE_FEDERATED_TOKEN_FILE") {
        return Ok(Credential::Federated(PathBuf::from(path)));
    }
    if let Some(credential) = managed_identity(args, false)? {
        return Ok(credential);
    }
    if azure_cli_installed() {
        return Ok(Credential::AzureCli);
    }
    Err(Error::Usage(
        "no credential: set AZURE_CLIENT_SECRET, or --client-secret-file FILE, or AZURE_CLIENT_CERTIFICATE_PATH (a PEM with the certificate and its key, or a .pfx), or AZURE_FEDERATED_TOKEN_FILE (workload identity); on an Azure VM pass --credential managed-identity; at a laptop, `az login`; or try --simulate".into(),
    ))
}

/// HTTPS only, except for loopback addresses (the simulator).
pub(super) fn check_base_url(setting: &str, url: &str) -> Result<String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::Usage(format!("{setting} {url}: not a URL ({e})")))?;
    let loopback = crate::cloud::is_loopback(&parsed);
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(Error::Usage(format!(
                "{setting} {url}: only https:// URLs are allowed (http:// only for localhost)"
            )));
        }
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Connects to the tenant the arguments name.
pub(super) fn connect(args: &ConnectionArgs, tuning: &Tuning) -> Result<Connection> {
    let tenant_id = args.tenant_id.clone().ok_or_else(|| {
        Error::Usage(
            "no tenant: set AZURE_TENANT_ID or --tenant-id (the tenant's GUID or initial domain); or try --simulate"
                .into(),
        )
    })?;
    connect_to(args, tuning, tenant_id)
}

/// Connects to `tenant_id` with the app and credential the arguments name (a partner's app
/// registration consented in each customer tenant).
pub(super) fn connect_to(args: &ConnectionArgs, tuning: &Tuning, tenant_id: String) -> Result<Connection> {
    let credential = credential(args)?;
    // A managed identity or the Azure CLI's account is its own app; AZURE_CLIENT_ID, if set,
    // picks a user-assigned identity.
    let own_app = matches!(credential, Credential::ManagedIdentity { .. } | Credential::AzureCli);
    let client_id = match args.client_id.clone() {
        Some(id) => id,
        None if own_app => String::new(),
        None => {
            return Err(Error::Usage(
                "no app: set AZURE_CLIENT_ID or --client-id (the app registration's application id); or try --simulate"
                    .into(),
            ));
        }
    };
    tracing::info!(tenant = %tenant_id, "signing in with {}", credential.name());
    let mut endpoints = Endpoints::of(args.cloud);
    if let Some(url) = &args.login_url {
        endpoints.login = check_base_url("--login-url (REMEDIATE_LOGIN_URL)", url)?;
    } else if let Some(url) = &args.authority_host {
        endpoints.login = check_base_url("AZURE_AUTHORITY_HOST", url)?;
    }
    if let Some(url) = &args.graph_url {
        endpoints.graph = check_base_url("--graph-url (REMEDIATE_GRAPH_URL)", url)?;
    }
    if let Some(url) = &args.exchange_url {
        endpoints.exchange = check_base_url("--exchange-url (REMEDIATE_EXCHANGE_URL)", url)?;
    }
    build(endpoints, tenant_id, client_id, credential, tuning)
}

pub(super) fn build(
    endpoints: Endpoints,
    tenant_id: String,
    client_id: String,
    credential: Credential,
    tuning: &Tuning,
) -> Result<Connection> {
    let http = http_client(tuning.request_timeout).map_err(Error::Usage)?;
    let tokens =
        TokenSource::new(http.clone(), &endpoints.login, &tenant_id, &client_id, credential, tuning.request_timeout);
    let client = CloudClient::new(http, endpoints, tenant_id, tokens, tuning.pacing(), tuning.retry_policy());
    Ok(Connection { client: Arc::new(client), simulated: None })
}
