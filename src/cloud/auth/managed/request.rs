//! The request for a token, as each managed identity source documents it, and its retries: a
//! request that meets a 404, 410, 429 or 5xx answer, or no answer, is tried again with
//! exponential backoff, as Microsoft's guidance for the instance metadata service ("Error
//! handling" in "How to use managed identities for Azure resources on an Azure VM to acquire an
//! access token") and azure-identity's retry policy for every managed identity source do.

use std::time::Duration;

use super::{ManagedSource, check_https, service_fabric};
use crate::error::Error;

/// The most a token answer may hold.
const ANSWER_CAP: usize = 64 * 1024;

/// The client for `source`'s endpoint, never through a proxy (the endpoint is local to the host)
/// nor a redirect; for Service Fabric, one that trusts only the pinned certificate, and the pin.
pub(super) fn http_client(
    source: &ManagedSource,
) -> Result<(reqwest::Client, Option<std::sync::Arc<service_fabric::Pin>>), Error> {
    if let ManagedSource::ServiceFabric { thumbprint, endpoint, .. } = source {
        check_https(endpoint).map_err(|e| Error::Auth(e.to_string()))?;
        let (http, pin) = service_fabric::pinned_client(*thumbprint)?;
        return Ok((http, Some(pin)));
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Auth(format!("cannot build an HTTP client for the managed identity: {e}")))?;
    Ok((http, None))
}

/// The request each source documents; `proof` is Arc's key, once its challenge is answered.
pub(super) fn build(
    http: &reqwest::Client,
    source: &ManagedSource,
    client_id: Option<&str>,
    resource: &str,
    proof: Option<&str>,
) -> Result<reqwest::RequestBuilder, Error> {
    let url = |endpoint: &str, query: &[(&str, &str)]| {
        url::Url::parse_with_params(endpoint, query)
            .map_err(|e| Error::Auth(format!("the managed identity endpoint {endpoint} is not a URL: {e}")))
    };
    let mut query = vec![("resource", resource)];
    let request = match source {
        ManagedSource::AppService { endpoint, header } => {
            query.extend([("api-version", "2019-08-01")].into_iter().chain(client_id.map(|id| ("client_id", id))));
            http.get(url(endpoint, &query)?).header("X-IDENTITY-HEADER", header.expose())
        }
        ManagedSource::Imds { .. } => {
            query.extend([("api-version", "2018-02-01")].into_iter().chain(client_id.map(|id| ("client_id", id))));
            http.get(url(&source.endpoint(), &query)?).header("Metadata", "true")
        }
        ManagedSource::Arc { endpoint, .. } => {
            query.push(("api-version", "2020-06-01"));
            let request = http.get(url(endpoint, &query)?).header("Metadata", "true");
            match proof {
                Some(key) => request.header("Authorization", format!("Basic {key}")),
                None => request,
            }
        }
        ManagedSource::MachineLearning { endpoint, secret } => {
            query.extend([("api-version", "2017-09-01")].into_iter().chain(client_id.map(|id| ("clientid", id))));
            http.get(url(endpoint, &query)?).header("secret", secret.expose())
        }
        ManagedSource::ServiceFabric { endpoint, header, .. } => {
            query.push(("api-version", "2019-07-01-preview"));
            http.get(url(endpoint, &query)?).header("Secret", header.expose())
        }
        ManagedSource::CloudShell { endpoint } => {
            let form: String =
                url::form_urlencoded::Serializer::new(String::new()).append_pair("resource", resource).finish();
            http.post(endpoint.as_str())
                .header("Metadata", "true")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form)
        }
    };
    Ok(request)
}

/// Waits before each further try: 1, 2, 4 and 8 seconds.
const BACKOFF: [Duration; 4] =
    [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4), Duration::from_secs(8)];

/// Whether an answer with this status is worth another try: the ones Microsoft's IMDS guidance
/// and azure-identity retry (404 while the identity is being set up, 410 during an update, 429,
/// and the service's own failures).
fn worth_retrying(status: u16) -> bool {
    matches!(status, 404 | 410 | 429) || status >= 500
}

pub(super) async fn send_with_retries(
    request: &(dyn Fn(Option<&str>) -> Result<reqwest::RequestBuilder, Error> + Sync),
    proof: Option<&str>,
    endpoint: &str,
    pin: Option<&service_fabric::Pin>,
) -> Result<crate::cloud::RawAnswer, Error> {
    let mut waits = BACKOFF.iter();
    loop {
        let outcome = crate::cloud::receive_at_most(request(proof)?, ANSWER_CAP).await;
        // A certificate that is not the pinned one will not become it: said at once, by name.
        if let (Err(_), Some(refusal)) = (&outcome, pin.and_then(service_fabric::Pin::refusal)) {
            return Err(Error::Auth(format!("the managed identity endpoint {endpoint} is not trusted: {refusal}")));
        }
        let wait = waits.next();
        match (outcome, wait) {
            (Ok(answer), Some(wait)) if worth_retrying(answer.status) => {
                tracing::debug!(status = answer.status, ?wait, "the managed identity endpoint asks for another try");
                tokio::time::sleep(*wait).await;
            }
            (Ok(answer), _) => return Ok(answer),
            (Err(failure), Some(wait)) => {
                tracing::debug!(problem = %failure.message, ?wait, "the managed identity endpoint did not answer");
                tokio::time::sleep(*wait).await;
            }
            (Err(failure), None) => {
                return Err(Error::Auth(format!(
                    "cannot reach the managed identity endpoint {endpoint}: {}",
                    failure.message
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answers_worth_another_try_are_the_documented_ones() {
        for status in [404, 410, 429, 500, 503, 504] {
            assert!(worth_retrying(status), "{status}");
        }
        for status in [200, 400, 401, 403] {
            assert!(!worth_retrying(status), "{status}");
        }
    }
}
