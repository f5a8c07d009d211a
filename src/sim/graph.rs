//! Microsoft Graph as the simulated tenant serves it: the security defaults policy, users (by id,
//! by UPN, by `$filter`), and beta `authentication/requirements` for legacy per-user MFA.
//!
//! A request is first parsed into a [`GraphCall`] (so the throttling cost is known before anything
//! is done), then carried out. Direct requests and `$batch` items go through the same two steps.

use axum::http::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::Service;
use super::reply::{Reply, RequestIds};
use super::stats::bump;
use super::tenant::MfaState;

const POLICY_ID: &str = "00000000-0000-0000-0000-000000000005";

#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    SecurityDefaults,
    Users,
    User(String),
    Requirements(String),
    /// `auditLogs/signIns`: the sign-in log (see [`super::sign_ins`]).
    SignIns,
}

#[derive(Clone, Debug)]
pub struct GraphCall {
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
}

/// Why a request could not be parsed: the reply to send, and whether no route matched at all.
pub struct Refusal {
    pub reply: Reply,
    pub unmatched: bool,
}

impl GraphCall {
    /// Resource units this request costs, and whether it is also a write.
    /// Resource units and whether it is a write, from the cost table of "Identity and access
    /// service limits" (learn.microsoft.com/graph/throttling-limits): listing `users` costs 2,
    /// any other identity GET (`users/{id}` included) 1, a PATCH 1 unit and 1 write; `$select`
    /// takes 1 off, never below 1.
    pub fn cost(&self) -> (f64, bool) {
        if self.method == Method::PATCH {
            return (1.0, true);
        }
        let base: f64 = match self.route {
            Route::Users => 2.0,
            _ => 1.0,
        };
        let discount = if self.select.is_some() { 1.0 } else { 0.0 };
        ((base - discount).max(1.0), false)
    }
}

/// Parses `path` (raw, after `/v1.0` or `/beta`), its query string and body. (No header changes
/// what the service does for these calls: `ConsistencyLevel` is not needed by the default filters.)
pub fn parse(
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
    let allowed = match route {
        Route::SecurityDefaults | Route::Requirements(_) => [Method::GET, Method::PATCH].contains(&method),
        Route::Users | Route::User(_) | Route::SignIns => method == Method::GET,
    };
    if !allowed {
        return Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
            false,
        ));
    }
    let mut call =
        GraphCall { method, beta, route, select: None, filter: None, count: false, body: None, top: None, skip: 0 };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "$select" => call.select = Some(value.split(',').map(|s| s.trim().to_string()).collect()),
            "$filter" => call.filter = Some(value.into_owned()),
            "$count" => call.count = value == "true",
            "$top" => call.top = value.parse::<usize>().ok().filter(|t| (1..=999).contains(t)),
            "$skiptoken" => call.skip = value.parse().unwrap_or(0),
            other => {
                let text =
                    format!("Query option '{other}' is not allowed. Make sure that it is supported by the resource.");
                return Err(refuse(StatusCode::BAD_REQUEST, "BadRequest", &text, false));
            }
        }
    }
    if call.method == Method::PATCH {
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

fn route_of(segments: &[String], beta: bool) -> Result<Route, String> {
    let first = segments.first().map(String::as_str).unwrap_or_default();
    // `users('$x@contoso.com')` is how Graph addresses a UPN that starts with '$'.
    if let Some(inner) = first.strip_prefix("users('").and_then(|s| s.strip_suffix("')")) {
        let key = inner.replace("''", "'");
        return user_route(key, &segments[1..], beta);
    }
    match segments {
        [p, s] if p == "policies" && s == "identitySecurityDefaultsEnforcementPolicy" => Ok(Route::SecurityDefaults),
        [u] if u == "users" => Ok(Route::Users),
        [a, s] if a == "auditLogs" && s == "signIns" => Ok(Route::SignIns),
        [u, key, rest @ ..] if u == "users" && !key.is_empty() => user_route(key.clone(), rest, beta),
        _ => Err(segments.last().cloned().unwrap_or_default()),
    }
}

fn user_route(key: String, rest: &[String], beta: bool) -> Result<Route, String> {
    match rest {
        [] => Ok(Route::User(key)),
        [a, r] if a == "authentication" && r == "requirements" && beta => Ok(Route::Requirements(key)),
        _ => Err(rest.last().cloned().unwrap_or_default()),
    }
}

/// The application permissions any one of which allows a call ("Update
/// identitySecurityDefaultsEnforcementPolicy" lists Policy.ReadWrite.ConditionalAccess beside
/// Policy.ReadWrite.SecurityDefaults; the user and requirements pages list the others).
fn permissions_for(call: &GraphCall) -> &'static [&'static str] {
    match (&call.route, call.method == Method::PATCH) {
        (Route::SecurityDefaults, true) => &["Policy.ReadWrite.SecurityDefaults", "Policy.ReadWrite.ConditionalAccess"],
        (Route::Requirements(_), true) => &["Policy.ReadWrite.AuthenticationMethod"],
        (Route::SecurityDefaults | Route::Requirements(_), false) => &["Policy.Read.All"],
        // "List signIns": AuditLog.Read.All (the page also lists Directory.Read.All beside it).
        (Route::SignIns, _) => &["AuditLog.Read.All"],
        _ => &["User.Read.All"],
    }
}

/// Carries out a parsed call against the tenant.
pub fn execute(service: &Service, call: &GraphCall, ids: &RequestIds) -> Reply {
    if permissions_for(call).iter().all(|permission| service.denied(permission)) {
        return Reply::graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
            ids,
        );
    }
    let version = if call.beta { "beta" } else { "v1.0" };
    let context = |fragment: &str| format!("{}/{version}/$metadata#{fragment}", service.base_url());
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
        (Route::SecurityDefaults, true) => {
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
        (Route::User(key), _) => match tenant.find_user(key) {
            Some(i) => {
                let mut user = select(tenant.users[i].graph_json(), call.select.as_deref());
                user["@odata.context"] = context("users/$entity").into();
                Reply::json(StatusCode::OK, user)
            }
            None => not_found(key, ids),
        },
        (Route::Users, _) => list_users(&tenant, call, ids, context("users"), service.base_url()),
        (Route::SignIns, _) => list_sign_ins(service, &tenant, call, ids, context("auditLogs/signIns")),
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
        (Route::Requirements(key), true) => {
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
    }
}

fn list_sign_ins(
    service: &Service,
    tenant: &super::tenant::Tenant,
    call: &GraphCall,
    ids: &RequestIds,
    context: String,
) -> Reply {
    if !service.config.premium {
        return super::sign_ins::not_premium(ids);
    }
    let filter = match call.filter.as_deref().map(super::sign_ins::Filter::parse) {
        None => super::sign_ins::Filter::default(),
        Some(Some(filter)) => filter,
        Some(None) => {
            return Reply::graph_error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Invalid filter clause: the expression is not supported.",
                ids,
            );
        }
    };
    let (page, next) = service.sign_ins.page(&filter, call.skip, call.top, tenant);
    let mut body = json!({"@odata.context": context, "value": page});
    if let Some(next) = next {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(filter) = &call.filter {
            query.append_pair("$filter", filter);
        }
        if let Some(top) = call.top {
            query.append_pair("$top", &top.to_string());
        }
        query.append_pair("$skiptoken", &next.to_string());
        let version = if call.beta { "beta" } else { "v1.0" };
        body["@odata.nextLink"] =
            format!("{}/{version}/auditLogs/signIns?{}", service.base_url(), query.finish()).into();
    }
    Reply::json(StatusCode::OK, body)
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

#[derive(Debug, PartialEq)]
enum Filter {
    Mail(String),
    Upn(String),
    Proxy(String),
    /// `userType eq 'Member'`: every member user, paged.
    Members,
}

/// Lists member users a page at a time (`$top`, at most 999; `@odata.nextLink` carries a
/// `$skiptoken`), as Graph pages a users listing ("Paging Microsoft Graph data in your app").
fn list_members(tenant: &super::tenant::Tenant, call: &GraphCall, context: String, base: &str) -> Reply {
    let page = call.top.unwrap_or(100);
    let members: Vec<&super::tenant::User> = tenant.users.iter().filter(|u| !u.guest).collect();
    let users: Vec<Value> =
        members.iter().skip(call.skip).take(page).map(|u| select(u.graph_json(), call.select.as_deref())).collect();
    let mut body = json!({"@odata.context": context, "value": users});
    if call.skip + page < members.len() {
        let version = if call.beta { "beta" } else { "v1.0" };
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("$filter", "userType eq 'Member'");
        if let Some(fields) = &call.select {
            query.append_pair("$select", &fields.join(","));
        }
        query.append_pair("$top", &page.to_string());
        query.append_pair("$skiptoken", &(call.skip + page).to_string());
        body["@odata.nextLink"] = format!("{base}/{version}/users?{}", query.finish()).into();
    }
    Reply::json(StatusCode::OK, body)
}

fn list_users(
    tenant: &super::tenant::Tenant,
    call: &GraphCall,
    ids: &RequestIds,
    context: String,
    base: &str,
) -> Reply {
    let Some(filter_text) = &call.filter else {
        let users: Vec<Value> =
            tenant.users.iter().take(100).map(|u| select(u.graph_json(), call.select.as_deref())).collect();
        return Reply::json(StatusCode::OK, json!({"@odata.context": context, "value": users}));
    };
    let invalid = || {
        Reply::graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Invalid filter clause: the expression is not supported.",
            ids,
        )
    };
    let Some(filter) = parse_filter(filter_text) else {
        return invalid();
    };
    let found = match &filter {
        Filter::Members => return list_members(tenant, call, context, base),
        Filter::Mail(mail) => tenant.find_by_mail(mail),
        Filter::Upn(upn) => tenant.find_user(upn).filter(|_| uuid::Uuid::parse_str(upn).is_err()),
        // A default filter: no `ConsistencyLevel` or `$count` needed (the user resource's
        // proxyAddresses: "Supports $filter (eq, …)"; "Advanced query capabilities on Microsoft
        // Entra ID objects" lists what does need them).
        Filter::Proxy(address) => {
            let lower = address.to_lowercase();
            lower.strip_prefix("smtp:").and_then(|a| tenant.find_by_mail(a).or_else(|| tenant.find_mailbox(a)))
        }
    };
    let users: Vec<Value> =
        found.into_iter().map(|i| select(tenant.users[i].graph_json(), call.select.as_deref())).collect();
    let mut body = json!({"@odata.context": context});
    if call.count {
        body["@odata.count"] = users.len().into();
    }
    body["value"] = users.into();
    Reply::json(StatusCode::OK, body)
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

fn parse_filter(filter: &str) -> Option<Filter> {
    let filter = filter.trim();
    if let Some(rest) = filter.strip_prefix("userType eq ") {
        let (value, tail) = string_literal(rest.trim_start())?;
        return (tail.trim().is_empty() && value == "Member").then_some(Filter::Members);
    }
    for (property, make) in [("mail eq ", Filter::Mail as fn(String) -> Filter), ("userPrincipalName eq ", Filter::Upn)]
    {
        if let Some(rest) = filter.strip_prefix(property) {
            let (value, tail) = string_literal(rest.trim_start())?;
            return tail.trim().is_empty().then(|| make(value));
        }
    }
    let lambda = filter.strip_prefix("proxyAddresses/any(")?;
    let (variable, body) = lambda.split_once(':')?;
    let rest = body.trim_start().strip_prefix(variable.trim())?.trim_start().strip_prefix("eq ")?;
    let (value, tail) = string_literal(rest.trim_start())?;
    (tail.trim() == ")").then_some(Filter::Proxy(value))
}

#[cfg(test)]
mod tests;
