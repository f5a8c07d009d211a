//! Managed identity endpoints: tokens for the app as the identity of the host it runs on, in each
//! form a host serves them. What each form asks of a request and answers is written here from
//! Microsoft's pages and azure-identity's sources, never from the client's own code:
//!
//! - App Service and Functions: "REST endpoint reference" and "REST protocol examples"
//!   (learn.microsoft.com/azure/app-service/overview-managed-identity): `GET` with the
//!   `X-IDENTITY-HEADER` secret, api-version 2019-08-01, a user-assigned identity named by
//!   `client_id`; `expires_on` and `not_before` as Unix times in strings.
//! - A VM's instance metadata service: "Get a token using HTTP"
//!   (learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token):
//!   `GET` with `Metadata: true`, api-version 2018-02-01, `client_id`; `expires_in`,
//!   `expires_on` and `not_before` as strings, and an empty `refresh_token`.
//! - Azure Arc: the same request and answer, api-version 2020-06-01, once its challenge is met
//!   (see [`super::arc`]).
//! - Azure Machine Learning: azure-identity's `_credentials/azure_ml.py`: `GET` with the `secret`
//!   header, api-version 2017-09-01, a user-assigned identity named by `clientid` (MSAL for
//!   Python's `managed_identity.py` calls `client_id` there "a known bug in Azure ML 2017 API");
//!   and, as that file's `_parse_app_service_expires_on` says, `expires_on` as an integer, not
//!   App Service's string.
//! - Cloud Shell: "Acquire a token in Azure Cloud Shell" (learn.microsoft.com/azure/cloud-shell/
//!   msi-authorization) and azure-identity's `_credentials/cloud_shell.py`: `POST` of the form
//!   `resource=…` with `Metadata: true`, no api-version, and only the signed-in user's identity.
//!   The answer is the one the same request to the same address (`localhost:50342/oauth2/token`)
//!   gets on a VM's older identity extension ("Use a Linux VM Managed Service Identity to access
//!   Azure Data Lake Store", learn.microsoft.com/azure/active-directory/msi-tutorial-linux-vm-
//!   access-datalake): the metadata service's fields, as strings. Its one documented error is
//!   `{"error":{"code":"AudienceNotSupported","message":…}}` for a resource off its allowlist, so
//!   its errors come in that form.
//!
//! - Service Fabric: "How to leverage a Service Fabric application's managed identity to access
//!   Azure services" (learn.microsoft.com/azure/service-fabric/how-to-managed-identity-service-
//!   fabric-app-code): `GET` with the `Secret` header, api-version 2019-07-01-preview, over HTTPS
//!   (the simulator's TLS listener); the answer's `expires_on` a Unix time as a number, beside
//!   `token_type`, `access_token` and `resource`. Its errors are `{"error": {"correlationId",
//!   "code", "message"}}` with the page's codes: `SecretHeaderNotFound`, `ManagedIdentityNotFound`
//!   (404, for an unknown secret), `ArgumentNullOrEmpty`, `InvalidApiVersion`, and
//!   `InternalServerError` (500, whose "most likely cause is an incorrect value specified for the
//!   resource"). The identity is the one the application's manifest assigns: a `client_id` is
//!   refused rather than ignored.
//!
//! The other forms' errors come as `{"error", "error_description"}`, the metadata service's.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Instant;

use super::{TokenIssuer, audience_of_scope, new_token};
use crate::reply::Reply;

/// What a managed identity request showed to prove it runs on the host.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IdentityProof<'a> {
    /// App Service and Functions: the `X-IDENTITY-HEADER` it sent.
    AppServiceHeader(Option<&'a str>),
    /// A VM's instance metadata service: the `Metadata` header it sent.
    MetadataHeader(Option<&'a str>),
    /// Azure Arc: the `Metadata` header it sent, its challenge key already checked.
    ArcKey(Option<&'a str>),
    /// Azure Machine Learning: the `secret` header it sent.
    MachineLearningSecret(Option<&'a str>),
    /// Cloud Shell: the `Metadata` header it sent (its parameters come as a form).
    CloudShellMetadata(Option<&'a str>),
}

impl IdentityProof<'_> {
    /// Whether the request showed what its form asks for; `secret` is the host's identity secret
    /// (App Service's `IDENTITY_HEADER`, Azure Machine Learning's `MSI_SECRET`).
    fn proven(self, secret: &str) -> bool {
        match self {
            IdentityProof::AppServiceHeader(sent) | IdentityProof::MachineLearningSecret(sent) => sent == Some(secret),
            IdentityProof::MetadataHeader(sent)
            | IdentityProof::ArcKey(sent)
            | IdentityProof::CloudShellMetadata(sent) => sent == Some("true"),
        }
    }

    /// What a request without the proof is told.
    fn unproven(self) -> &'static str {
        match self {
            IdentityProof::MachineLearningSecret(_) => "Required secret header not specified or not correct",
            _ => "Required metadata header not specified or not correct",
        }
    }

    /// The api-version the form's requests carry; Cloud Shell's carry none.
    fn api_version(self) -> Option<&'static str> {
        match self {
            IdentityProof::AppServiceHeader(_) => Some("2019-08-01"),
            IdentityProof::MetadataHeader(_) => Some("2018-02-01"),
            IdentityProof::ArcKey(_) => Some("2020-06-01"),
            IdentityProof::MachineLearningSecret(_) => Some("2017-09-01"),
            IdentityProof::CloudShellMetadata(_) => None,
        }
    }

    /// The parameter that names a user-assigned identity, and one that is refused: Azure Machine
    /// Learning's name is `clientid`, and a `client_id` there would be ignored (a token for the
    /// wrong identity), so it is refused; Cloud Shell has only the user's identity.
    fn client_id_names(self) -> (Option<&'static str>, Option<&'static str>) {
        match self {
            IdentityProof::MachineLearningSecret(_) => (Some("clientid"), Some("client_id")),
            IdentityProof::CloudShellMetadata(_) => (None, Some("client_id")),
            _ => (Some("client_id"), None),
        }
    }
}

impl TokenIssuer {
    /// A token from a managed identity endpoint, the app being the identity, in the form of
    /// `proof`'s host (see the module's sources); `parameters` are the request's query, or
    /// Cloud Shell's form.
    pub(crate) fn issue_for_identity(&self, parameters: &HashMap<String, String>, proof: IdentityProof) -> Reply {
        let cloud_shell = matches!(proof, IdentityProof::CloudShellMetadata(_));
        let error = |code: &str, text: &str| {
            let body = if cloud_shell {
                json!({"error": {"code": code, "message": text}})
            } else {
                json!({"error": code, "error_description": text})
            };
            Reply::json(StatusCode::BAD_REQUEST, body)
        };
        let field = |name: &str| parameters.get(name).map(String::as_str).unwrap_or_default();
        if !proof.proven(&self.app.identity_header) {
            return error(if cloud_shell { "BadRequest" } else { "invalid_request" }, proof.unproven());
        }
        if let Some(version) = proof.api_version()
            && field("api-version") != version
        {
            return error("invalid_request", "Invalid api-version specified");
        }
        let (client_id, refused) = proof.client_id_names();
        if let Some(not_that) = refused
            && !field(not_that).is_empty()
        {
            let text = match client_id {
                Some(name) => format!("A user-assigned identity is named by {name} here, not {not_that}"),
                None => "Cloud Shell has only the signed-in user's identity".to_string(),
            };
            return error(if cloud_shell { "BadRequest" } else { "invalid_request" }, &text);
        }
        if let Some(name) = client_id
            && !field(name).is_empty()
            && field(name) != self.app.client_id
        {
            return error("invalid_request", "Identity not found");
        }
        let resource = field("resource");
        let Some(audience) = audience_of_scope(&format!("{}/.default", resource)) else {
            return if cloud_shell {
                let text = format!("Audience {resource} isn't a supported MSI token audience.");
                error("AudienceNotSupported", &text)
            } else {
                error("invalid_resource", "AADSTS500011: The resource principal was not found")
            };
        };
        let token = self.mint(audience);
        let seconds = self.lifetime.as_secs();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let expires_on = now + seconds as i64;
        let body = match proof {
            IdentityProof::AppServiceHeader(_) => json!({
                "access_token": token, "expires_on": expires_on.to_string(), "not_before": now.to_string(),
                "resource": resource, "token_type": "Bearer", "client_id": self.app.client_id,
            }),
            IdentityProof::MetadataHeader(_) | IdentityProof::ArcKey(_) => {
                let mut body = metadata_service_answer(&token, seconds, now, resource);
                body["client_id"] = self.app.client_id.clone().into();
                body
            }
            IdentityProof::MachineLearningSecret(_) => json!({
                "access_token": token, "expires_on": expires_on, "resource": resource, "token_type": "Bearer",
            }),
            IdentityProof::CloudShellMetadata(_) => metadata_service_answer(&token, seconds, now, resource),
        };
        Reply::json(StatusCode::OK, body)
    }
}

impl TokenIssuer {
    /// A new token for `audience`, known to Graph and Exchange until it expires.
    fn mint(&self, audience: super::Audience) -> String {
        let token = new_token();
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), (audience, Instant::now() + self.lifetime));
        token
    }

    /// A token from Service Fabric's endpoint for the request's `parameters` (its query) and
    /// `secret` (its `Secret` header), in Service Fabric's own answer and error forms (see the
    /// module's sources).
    pub(crate) fn issue_for_service_fabric(&self, parameters: &HashMap<String, String>, secret: Option<&str>) -> Reply {
        let error = |status: StatusCode, code: &str, message: &str| {
            let correlation = uuid::Uuid::new_v4().to_string();
            Reply::json(status, json!({"error": {"correlationId": correlation, "code": code, "message": message}}))
        };
        let field = |name: &str| parameters.get(name).map(String::as_str).unwrap_or_default();
        let version = field("api-version");
        match secret {
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "SecretHeaderNotFound",
                    "Secret is not found in the request headers.",
                );
            }
            Some(sent) if sent != self.app.identity_header => {
                let text = "Managed identity not found for the specified application host.";
                return error(StatusCode::NOT_FOUND, "ManagedIdentityNotFound", text);
            }
            Some(_) if version != "2019-07-01-preview" => {
                let text =
                    format!("The api-version '{version}' is not supported. Supported version is '2019-07-01-preview'.");
                return error(StatusCode::BAD_REQUEST, "InvalidApiVersion", &text);
            }
            Some(_) => {}
        }
        let resource = field("resource");
        if resource.is_empty() {
            let text = "The parameter 'resource' should not be null or empty string.";
            return error(StatusCode::BAD_REQUEST, "ArgumentNullOrEmpty", text);
        }
        if !field("client_id").is_empty() {
            let text = "The identity is the one the application's manifest assigns; client_id is not supported.";
            return error(StatusCode::BAD_REQUEST, "ArgumentNotSupported", text);
        }
        let Some(audience) = audience_of_scope(&format!("{resource}/.default")) else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "An error occurred.");
        };
        let expires_on = time::OffsetDateTime::now_utc().unix_timestamp() + self.lifetime.as_secs() as i64;
        let token = self.mint(audience);
        Reply::json(
            StatusCode::OK,
            json!({"token_type": "Bearer", "access_token": token, "expires_on": expires_on, "resource": resource}),
        )
    }
}

/// The instance metadata service's answer: every time a string, `refresh_token` empty.
fn metadata_service_answer(token: &str, seconds: u64, now: i64, resource: &str) -> Value {
    json!({
        "access_token": token, "refresh_token": "", "expires_in": seconds.to_string(),
        "expires_on": (now + seconds as i64).to_string(), "not_before": now.to_string(),
        "resource": resource, "token_type": "Bearer",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(SimConfig::default().app_registration(), std::time::Duration::from_secs(3599))
    }

    fn parameters(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const GRAPH: &str = "https://graph.microsoft.com";

    #[test]
    fn azure_machine_learning_wants_its_secret_its_version_and_clientid() {
        let issuer = issuer();
        let secret = issuer.app.identity_header.clone();
        let asked = parameters(&[("api-version", "2017-09-01"), ("resource", GRAPH)]);
        let reply = issuer.issue_for_identity(&asked, IdentityProof::MachineLearningSecret(Some(&secret)));
        assert_eq!(reply.status, StatusCode::OK);
        let body = reply.body.unwrap_or_default();
        assert!(body["expires_on"].is_i64(), "an integer, not App Service's string: {body}");
        assert!(body.get("expires_in").is_none(), "{body}");

        for (proof, asked, why) in [
            (IdentityProof::MachineLearningSecret(None), asked.clone(), "secret"),
            (IdentityProof::MachineLearningSecret(Some("wrong")), asked.clone(), "secret"),
            (
                IdentityProof::MachineLearningSecret(Some(&secret)),
                parameters(&[("api-version", "2019-08-01"), ("resource", GRAPH)]),
                "api-version",
            ),
            (
                IdentityProof::MachineLearningSecret(Some(&secret)),
                parameters(&[("api-version", "2017-09-01"), ("resource", GRAPH), ("client_id", "x")]),
                "clientid",
            ),
            (
                IdentityProof::MachineLearningSecret(Some(&secret)),
                parameters(&[("api-version", "2017-09-01"), ("resource", GRAPH), ("clientid", "someone-else")]),
                "Identity not found",
            ),
        ] {
            let reply = issuer.issue_for_identity(&asked, proof);
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{why}");
            let body = reply.body.unwrap_or_default();
            assert!(body["error_description"].as_str().is_some_and(|d| d.contains(why)), "{why}: {body}");
        }
        let mine =
            parameters(&[("api-version", "2017-09-01"), ("resource", GRAPH), ("clientid", &issuer.app.client_id)]);
        let reply = issuer.issue_for_identity(&mine, IdentityProof::MachineLearningSecret(Some(&secret)));
        assert_eq!(reply.status, StatusCode::OK);
    }

    #[test]
    fn service_fabric_wants_its_secret_and_version_and_answers_in_its_own_forms() {
        let issuer = issuer();
        let secret = issuer.app.identity_header.clone();
        let asked = parameters(&[("api-version", "2019-07-01-preview"), ("resource", GRAPH)]);
        let reply = issuer.issue_for_service_fabric(&asked, Some(&secret));
        assert_eq!(reply.status, StatusCode::OK);
        let body = reply.body.unwrap_or_default();
        assert!(body["expires_on"].is_i64() && body["token_type"] == "Bearer", "{body}");
        assert!(issuer.knows(body["access_token"].as_str().unwrap_or_default()), "{body}");

        let old = parameters(&[("api-version", "2019-08-01"), ("resource", GRAPH)]);
        let unknown = parameters(&[("api-version", "2019-07-01-preview"), ("resource", "https://vault.azure.net")]);
        let assigned = parameters(&[("api-version", "2019-07-01-preview"), ("resource", GRAPH), ("client_id", "x")]);
        for (asked, sent, status, code) in [
            (&asked, None, StatusCode::BAD_REQUEST, "SecretHeaderNotFound"),
            (&asked, Some("wrong"), StatusCode::NOT_FOUND, "ManagedIdentityNotFound"),
            (&old, Some(secret.as_str()), StatusCode::BAD_REQUEST, "InvalidApiVersion"),
            (&unknown, Some(secret.as_str()), StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
            (&assigned, Some(secret.as_str()), StatusCode::BAD_REQUEST, "ArgumentNotSupported"),
        ] {
            let reply = issuer.issue_for_service_fabric(asked, sent);
            assert_eq!(reply.status, status, "{code}");
            let body = reply.body.unwrap_or_default();
            assert_eq!(body["error"]["code"], code, "{body}");
            assert!(body["error"]["correlationId"].is_string(), "{body}");
        }
    }

    #[test]
    fn cloud_shell_wants_metadata_and_a_known_audience_and_answers_in_its_own_error_form() {
        let issuer = issuer();
        let asked = parameters(&[("resource", GRAPH)]);
        let reply = issuer.issue_for_identity(&asked, IdentityProof::CloudShellMetadata(Some("true")));
        assert_eq!(reply.status, StatusCode::OK);
        let body = reply.body.unwrap_or_default();
        assert!(body["expires_in"].is_string() && body["expires_on"].is_string(), "{body}");

        let reply = issuer.issue_for_identity(&asked, IdentityProof::CloudShellMetadata(None));
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        let body = reply.body.unwrap_or_default();
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("metadata header")), "{body}");

        let elsewhere = parameters(&[("resource", "https://newservice.azure.com/")]);
        let reply = issuer.issue_for_identity(&elsewhere, IdentityProof::CloudShellMetadata(Some("true")));
        let body = reply.body.unwrap_or_default();
        assert_eq!(body["error"]["code"], "AudienceNotSupported", "{body}");

        let assigned = parameters(&[("resource", GRAPH), ("client_id", &issuer.app.client_id)]);
        let reply = issuer.issue_for_identity(&assigned, IdentityProof::CloudShellMetadata(Some("true")));
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "only the user's identity");
    }
}
