//! The token endpoints: the Microsoft identity platform's (`/{tenant}/oauth2/v2.0/token` and its
//! OpenID configuration) and every managed identity endpoint, each on the path the client's
//! environment names.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;

use super::{Shared, Tenants, client_request_id, respond};
use crate::Service;
use crate::reply::{Reply, RequestIds};
use crate::stats::{Api, bump};
use crate::tokens::IdentityProof;

pub(super) async fn token(
    State(tenants): Shared,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let service = tenants.by_id(&tenant).clone();
    service.count_arrival();
    tokio::time::sleep(service.faults.latency()).await;
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let token_url = format!("{}/{tenant}/oauth2/v2.0/token", service.base_url);
    let reply = service.tokens.issue(&tenant, &form, &token_url);
    answer_token(&service, reply, &headers)
}

/// App Service's managed identity endpoint (what `IDENTITY_ENDPOINT` names there).
pub(crate) const APP_SERVICE_PATH: &str = "/msi/token";
/// The VM's instance metadata service's token path, which Azure Arc's agent serves too.
pub(crate) const METADATA_PATH: &str = "/metadata/identity/oauth2/token";
/// Azure Machine Learning's endpoint (what `MSI_ENDPOINT` names there, beside `MSI_SECRET`):
/// Microsoft documents no path for it, so it has one of its own.
pub(crate) const MACHINE_LEARNING_PATH: &str = "/MSI/auth";
/// Cloud Shell's endpoint, the path of `http://localhost:50342/oauth2/token` ("Acquire a token in
/// Azure Cloud Shell", learn.microsoft.com/azure/cloud-shell/msi-authorization).
pub(crate) const CLOUD_SHELL_PATH: &str = "/oauth2/token";

/// Service Fabric's endpoint, alone on the simulator's TLS listener (see [`crate::service_fabric`]):
/// its token path, the metadata path of the page's sample request
/// (`https://localhost:2377/metadata/identity/oauth2/token`), and nothing else.
pub(crate) fn service_fabric_router(tenants: Arc<Tenants>) -> Router {
    Router::new().route(METADATA_PATH, get(service_fabric_identity)).with_state(tenants)
}

/// Service Fabric's token request: the `Secret` header and the query, answered in its form by
/// [`crate::tokens::TokenIssuer::issue_for_service_fabric`]. The first tenant's app is the identity.
async fn service_fabric_identity(State(tenants): Shared, uri: Uri, headers: HeaderMap) -> Response {
    let service = tenants.first().clone();
    service.count_arrival();
    tokio::time::sleep(service.faults.latency()).await;
    let query = uri.query().unwrap_or_default().as_bytes();
    let parameters: HashMap<String, String> = form_urlencoded::parse(query).into_owned().collect();
    let secret = headers.get("secret").and_then(|v| v.to_str().ok());
    let reply = service.tokens.issue_for_service_fabric(&parameters, secret);
    answer_token(&service, reply, &headers)
}

/// Every managed identity endpoint, each on its own path so the client's environment picks it:
/// App Service's, the VM's instance metadata service (Azure Arc's with `--azure-arc`), Azure
/// Machine Learning's and Cloud Shell's (whose parameters come as a form). The first tenant's app
/// is the identity; what each asks and answers is in [`crate::tokens::IdentityProof`]'s module.
pub(super) async fn managed_identity(State(tenants): Shared, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let service = tenants.first().clone();
    service.count_arrival();
    tokio::time::sleep(service.faults.latency()).await;
    let path = uri.path();
    let sent = if path == CLOUD_SHELL_PATH { body.as_ref() } else { uri.query().unwrap_or_default().as_bytes() };
    let parameters: HashMap<String, String> = form_urlencoded::parse(sent).into_owned().collect();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let proof = match path {
        APP_SERVICE_PATH => IdentityProof::AppServiceHeader(header("x-identity-header")),
        MACHINE_LEARNING_PATH => IdentityProof::MachineLearningSecret(header("secret")),
        CLOUD_SHELL_PATH => IdentityProof::CloudShellMetadata(header("metadata")),
        _ => match &service.arc {
            Some(arc) if !arc.proven(header("authorization")) => {
                return respond(&service, Api::Token, arc.challenge(), &RequestIds::new(client_request_id(&headers)));
            }
            Some(_) => IdentityProof::ArcKey(header("metadata")),
            None => IdentityProof::MetadataHeader(header("metadata")),
        },
    };
    let reply = service.tokens.issue_for_identity(&parameters, proof);
    answer_token(&service, reply, &headers)
}

pub(super) async fn openid_configuration(
    State(tenants): Shared,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let service = tenants.by_id(&tenant).clone();
    tokio::time::sleep(service.faults.latency()).await;
    let reply = crate::tokens::openid_configuration(&service.tokens.app, &tenant, &service.base_url);
    respond(&service, Api::Token, reply, &RequestIds::new(client_request_id(&headers)))
}

/// A token endpoint's answer, counted when it issued one.
fn answer_token(service: &Service, reply: Reply, headers: &HeaderMap) -> Response {
    if reply.status.is_success() {
        bump(&service.stats.tokens_issued);
    }
    respond(service, Api::Token, reply, &RequestIds::new(client_request_id(headers)))
}
