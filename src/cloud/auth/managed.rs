//! Tokens without an app credential of our own: a managed identity (App Service and Functions
//! through `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, virtual machines through the instance
//! metadata service) and the Azure CLI's signed-in account, for an administrator at a laptop.
//! Each answers with a token for a resource (the scope without `/.default`).

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

/// The most a token answer may hold.
const ANSWER_CAP: usize = 64 * 1024;

/// The default host of the instance metadata service.
pub const IMDS_HOST: &str = "http://169.254.169.254";

fn resource(scope: &str) -> &str {
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
            query.push(("api-version", "2019-08-01"));
            (endpoint.clone(), ("X-IDENTITY-HEADER", header.expose()))
        }
        ManagedSource::Imds { host } => {
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

/// A token for `scope` from the Azure CLI's signed-in account in `tenant`
/// (`az account get-access-token`, learn.microsoft.com/cli/azure/account).
pub async fn azure_cli(tenant: &str, scope: &str) -> Result<(SecretString, Duration), Error> {
    let arguments =
        ["account", "get-access-token", "--output", "json", "--resource", resource(scope), "--tenant", tenant]
            .map(str::to_string);
    let output = tokio::task::spawn_blocking(move || std::process::Command::new("az").args(arguments).output())
        .await
        .map_err(|e| Error::Auth(format!("the Azure CLI could not be run: {e}")))?
        .map_err(|e| Error::Auth(format!("the Azure CLI (az) could not be run: {e}; install it and run `az login`")))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        return Err(Error::Auth(format!(
            "the Azure CLI gave no token ({}); run `az login --tenant {tenant}`",
            said.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim()
        )));
    }
    token_of(&output.stdout, "accessToken", "the Azure CLI")
}

/// The token named `field` and its lifetime: `expires_in` (seconds) or `expires_on` (a Unix time),
/// each a number or a string as the sources differ; five minutes when neither says.
fn token_of(body: &[u8], field: &str, from: &str) -> Result<(SecretString, Duration), Error> {
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
}
