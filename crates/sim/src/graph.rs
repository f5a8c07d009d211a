//! Microsoft Graph as the simulated tenant serves it: the security defaults policy, users (by id,
//! by UPN, by `$filter`; `accountEnabled` written by PATCH), beta `authentication/requirements` for legacy per-user MFA, the sign-in
//! log, and what decides whether a device may send with SMTP AUTH: Conditional Access policies,
//! groups with their (transitive) members, and directory role assignments.
//!
//! A request is first parsed into a [`GraphCall`] (so the throttling cost is known before anything
//! is done), then carried out. Direct requests and `$batch` items go through the same two steps.

use axum::http::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::Service;
use super::reply::{Reply, RequestIds};
use super::stats::bump;
use super::tenant::{MfaState, Tenant};

mod directory;
mod paging;
mod policies;
mod routes;
mod users;

use routes::route_of;
pub(crate) use routes::{Route, is_write};

#[cfg(test)]
use users::{Filter, parse_filter};

const POLICY_ID: &str = "00000000-0000-0000-0000-000000000005";

#[derive(Clone, Debug)]
pub(crate) struct GraphCall {
    pub method: Method,
    pub beta: bool,
    pub route: Route,
    pub select: Option<Vec<String>>,
    pub filter: Option<String>,
    pub count: bool,
    pub body: Option<Value>,
    /// `$top` (page size, at most 999) and `$skiptoken` (where a listing resumes).
    pub top: Option<usize>,
    pub skip: usize,
    /// `$expand` (only role assignments' `principal` is served).
    pub expand: Option<String>,
    /// A `$top` outside 1–999, which the routes added with the SMTP AUTH layers refuse.
    pub bad_top: Option<String>,
}

/// Why a request could not be parsed: the reply to send, and whether no route matched at all.
pub(crate) struct Refusal {
    pub reply: Reply,
    pub unmatched: bool,
}

impl GraphCall {
    /// Resource units this request costs, and whether it is also a write (see [`routes::cost`]).
    pub(crate) fn cost(&self) -> (f64, bool) {
        routes::cost(self)
    }
}

/// Parses `path` (raw, after `/v1.0` or `/beta`), its query string and body. (No header changes
/// what the service does for these calls: `ConsistencyLevel` is not needed by the default filters.)
pub(crate) fn parse(
    method: Method,
    beta: bool,
    path: &str,
    query: &str,
    body: &[u8],
    ids: &RequestIds,
) -> Result<GraphCall, Refusal> {
    let refuse = |status, code: &str, message: &str, unmatched| Refusal {
        reply: Reply::graph_error(status, code, message, ids),
        unmatched,
    };
    let mut segments = Vec::new();
    for raw in path.trim_start_matches('/').split('/') {
        match percent_decode_str(raw).decode_utf8() {
            Ok(text) => segments.push(text.into_owned()),
            Err(_) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The request URI is not valid UTF-8.",
                    false,
                ));
            }
        }
    }
    let route = match route_of(&segments, beta) {
        Ok(route) => route,
        Err(segment) => {
            let text = format!("Resource not found for the segment '{segment}'.");
            return Err(refuse(StatusCode::BAD_REQUEST, "BadRequest", &text, true));
        }
    };
    if !route.allows(&method) {
        return Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
            false,
        ));
    }
    let mut call = GraphCall {
        method,
        beta,
        route,
        select: None,
        filter: None,
        count: false,
        body: None,
        top: None,
        skip: 0,
        expand: None,
        bad_top: None,
    };
    read_query(&mut call, query).map_err(|text| refuse(StatusCode::BAD_REQUEST, "BadRequest", &text, false))?;
    if call.method == Method::PATCH || call.method == Method::POST {
        match serde_json::from_slice::<Value>(body) {
            Ok(value @ Value::Object(_)) => call.body = Some(value),
            _ => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
                    false,
                ));
            }
        }
    }
    Ok(call)
}

/// The OData query options a call may carry; the text of Graph's 400 for any other.
fn read_query(call: &mut GraphCall, query: &str) -> Result<(), String> {
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "$select" => call.select = Some(value.split(',').map(|s| s.trim().to_string()).collect()),
            "$filter" => call.filter = Some(value.into_owned()),
            "$count" => call.count = value == "true",
            "$top" => {
                call.top = value.parse::<usize>().ok().filter(|t| (1..=999).contains(t));
                call.bad_top = call.top.is_none().then(|| value.into_owned());
            }
            "$expand" => call.expand = Some(value.into_owned()),
            "$skiptoken" => call.skip = value.parse().unwrap_or(0),
            other => {
                return Err(format!(
                    "Query option '{other}' is not allowed. Make sure that it is supported by the resource."
                ));
            }
        }
    }
    match &call.expand {
        Some(expand) if call.route != Route::RoleAssignments => Err(format!(
            "Parsing OData Select and Expand failed: Could not find a property named '{expand}' on type 'microsoft.graph.directoryObject'."
        )),
        _ => Ok(()),
    }
}

/// A missing permission (any one alternative allows the call), or a page size the routes added
/// with the SMTP AUTH layers refuse.
fn refused(service: &Service, call: &GraphCall, ids: &RequestIds) -> Option<Reply> {
    let permitted = routes::permissions_for(call).iter().any(|all| all.iter().all(|p| !service.denied(p)));
    if !permitted {
        return Some(Reply::graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
            ids,
        ));
    }
    let top = call.bad_top.as_ref().filter(|_| call.route.is_directory())?;
    let text = format!("Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.");
    Some(Reply::graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", &text, ids))
}

/// Carries out a parsed call against the tenant.
pub(crate) fn execute(service: &Service, call: &GraphCall, ids: &RequestIds) -> Reply {
    if let Some(refusal) = refused(service, call, ids) {
        return refusal;
    }
    let context = |fragment: &str| context_url(service, call, fragment);
    let mut tenant = service.tenant();
    match (&call.route, call.method == Method::PATCH) {
        (Route::SecurityDefaults, false) => Reply::json(
            StatusCode::OK,
            json!({
                "@odata.context": context("policies/identitySecurityDefaultsEnforcementPolicy/$entity"),
                "id": POLICY_ID,
                "displayName": "Security Defaults",
                "description": "Security defaults is a set of basic identity security mechanisms recommended by Microsoft. When enabled, these recommendations will be automatically enforced in your organization. Administrators and users will be better protected from common identity related attacks.",
                "isEnabled": tenant.security_defaults_enabled,
            }),
        ),
        (Route::SecurityDefaults, true) => write_security_defaults(service, &mut tenant, call, ids),
        (Route::User(key), false) => match tenant.find_user(key) {
            Some(i) => {
                let mut user = select(tenant.users[i].graph_json(), call.select.as_deref());
                user["@odata.context"] = context("users/$entity").into();
                Reply::json(StatusCode::OK, user)
            }
            None => not_found(key, ids),
        },
        (Route::User(key), true) => users::write_account_enabled(service, &mut tenant, key, call, ids),
        (Route::Users, _) => users::list_users(&tenant, call, ids, context("users"), service.base_url()),
        (Route::SignIns, _) => users::list_sign_ins(service, &tenant, call, ids, context("auditLogs/signIns")),
        (Route::ConditionalAccessPolicies | Route::NamedLocations, _) => policies::list(service, &tenant, call, ids),
        (Route::RoleAssignments, _) => directory::role_assignments(service, &tenant, call, ids),
        (Route::Requirements(key), false) => match tenant.find_user(key) {
            Some(i) => Reply::json(
                StatusCode::OK,
                json!({
                    "@odata.context": context(&format!("users('{}')/authentication/requirements", tenant.users[i].id)),
                    "perUserMfaState": tenant.users[i].mfa.as_str(),
                }),
            ),
            None => not_found(key, ids),
        },
        (Route::Requirements(key), true) => write_requirements(service, &mut tenant, key, call, ids),
        (_, _) => directory::execute(service, &mut tenant, call, ids),
    }
}

/// `PATCH policies/identitySecurityDefaultsEnforcementPolicy`: `isEnabled` is the one writable field.
fn write_security_defaults(service: &Service, tenant: &mut Tenant, call: &GraphCall, ids: &RequestIds) -> Reply {
    let body = call.body.as_ref().and_then(Value::as_object);
    let Some(enabled) = body.and_then(|b| b.get("isEnabled")).and_then(Value::as_bool) else {
        return Reply::graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid value specified for property 'isEnabled' of resource 'IdentitySecurityDefaultsEnforcementPolicy'.",
            ids,
        );
    };
    service.count_write();
    bump(&service.stats.security_defaults_writes);
    if tenant.security_defaults_enabled == enabled {
        bump(&service.stats.noop_writes);
    }
    tenant.security_defaults_enabled = enabled;
    Reply::empty(StatusCode::NO_CONTENT)
}

/// `PATCH users/{id}/authentication/requirements`: `enabled` for a user who has registered a method
/// is stored as `enforced` (see `User::has_method`).
fn write_requirements(service: &Service, tenant: &mut Tenant, key: &str, call: &GraphCall, ids: &RequestIds) -> Reply {
    let wanted = call.body.as_ref().and_then(|b| b.get("perUserMfaState")).and_then(Value::as_str);
    let Some(wanted) = wanted.and_then(MfaState::parse) else {
        return Reply::graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid value specified for property 'perUserMfaState' of resource 'StrongAuthenticationRequirements'.",
            ids,
        );
    };
    let Some(i) = tenant.find_user(key) else {
        return not_found(key, ids);
    };
    let user = &mut tenant.users[i];
    let effective = if wanted == MfaState::Enabled && user.has_method { MfaState::Enforced } else { wanted };
    service.count_write();
    if user.mfa == effective {
        bump(&service.stats.noop_writes);
    }
    user.mfa = effective;
    user.writes += 1;
    Reply::empty(StatusCode::NO_CONTENT)
}

/// `@odata.context` of an answer: `{base}/{version}/$metadata#{fragment}`.
fn context_url(service: &Service, call: &GraphCall, fragment: &str) -> String {
    let version = if call.beta { "beta" } else { "v1.0" };
    format!("{}/{version}/$metadata#{fragment}", service.base_url())
}

fn not_found(key: &str, ids: &RequestIds) -> Reply {
    let text =
        format!("Resource '{key}' does not exist or one of its queried reference-property objects are not present.");
    Reply::graph_error(StatusCode::NOT_FOUND, "Request_ResourceNotFound", &text, ids)
}

fn select(mut object: Value, fields: Option<&[String]>) -> Value {
    if let (Some(fields), Value::Object(map)) = (fields, &mut object) {
        map.retain(|key, _| fields.iter().any(|f| f.eq_ignore_ascii_case(key)));
    }
    object
}

/// Reads an OData string literal at the start of `text`: `'…'` with `''` for a quote. Returns the
/// value and what follows the closing quote.
pub(super) fn string_literal(text: &str) -> Option<(String, &str)> {
    let mut rest = text.strip_prefix('\'')?;
    let mut value = String::new();
    loop {
        let end = rest.find('\'')?;
        value.push_str(&rest[..end]);
        rest = &rest[end + 1..];
        match rest.strip_prefix('\'') {
            Some(after) => {
                value.push('\'');
                rest = after;
            }
            None => return Some((value, rest)),
        }
    }
}

#[cfg(test)]
mod tests;
