//! Managed identity endpoints: tokens for the app as the identity of the host it runs on.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::json;
use std::time::Instant;

use super::{TokenIssuer, audience_of_scope, new_token};
use crate::sim::reply::Reply;

/// What a managed identity request showed to prove it runs on the host.
#[derive(Clone, Copy, Debug)]
pub enum IdentityProof<'a> {
    /// App Service and Functions: the `X-IDENTITY-HEADER` it sent.
    AppServiceHeader(Option<&'a str>),
    /// A VM's instance metadata service: the `Metadata` header it sent.
    MetadataHeader(Option<&'a str>),
    /// Azure Arc: the `Metadata` header it sent, its challenge key already checked.
    ArcKey(Option<&'a str>),
}

impl TokenIssuer {
    /// A token from a managed identity endpoint, the app being the identity: App Service's
    /// (`X-IDENTITY-HEADER`, api-version 2019-08-01: `expires_on` as a Unix time string) or a VM's
    /// instance metadata service (`Metadata: true`, api-version 2018-02-01: `expires_in` and
    /// `expires_on` as strings), per "REST endpoint reference" (learn.microsoft.com/azure/
    /// app-service/overview-managed-identity) and learn.microsoft.com/entra/identity/
    /// managed-identities-azure-resources/how-to-use-vm-token. Errors come as
    /// `{"error", "error_description"}`.
    pub fn issue_for_identity(&self, query: &HashMap<String, String>, proof: IdentityProof) -> Reply {
        let error =
            |status, code: &str, text: &str| Reply::json(status, json!({"error": code, "error_description": text}));
        let field = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
        let (proven, version) = match proof {
            IdentityProof::AppServiceHeader(header) => {
                (header == Some(self.app.identity_header.as_str()), "2019-08-01")
            }
            IdentityProof::MetadataHeader(metadata) => (metadata == Some("true"), "2018-02-01"),
            IdentityProof::ArcKey(metadata) => (metadata == Some("true"), "2020-06-01"),
        };
        if !proven {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required metadata header not specified or not correct",
            );
        }
        if field("api-version") != version {
            return error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid api-version specified");
        }
        if !field("client_id").is_empty() && field("client_id") != self.app.client_id {
            return error(StatusCode::BAD_REQUEST, "invalid_request", "Identity not found");
        }
        let Some(audience) = audience_of_scope(&format!("{}/.default", field("resource"))) else {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_resource",
                "AADSTS500011: The resource principal was not found",
            );
        };
        let token = new_token();
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), (audience, Instant::now() + self.lifetime));
        let seconds = self.lifetime.as_secs();
        let expires_on = (time::OffsetDateTime::now_utc().unix_timestamp() + seconds as i64).to_string();
        let mut body = json!({"access_token": token, "expires_on": expires_on, "resource": field("resource"), "token_type": "Bearer", "client_id": self.app.client_id});
        if matches!(proof, IdentityProof::MetadataHeader(_) | IdentityProof::ArcKey(_)) {
            body["expires_in"] = seconds.to_string().into();
        }
        Reply::json(StatusCode::OK, body)
    }
}
