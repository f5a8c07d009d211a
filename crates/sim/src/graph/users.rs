//! Users as Graph lists them (`$filter` on mail, UPN, proxy addresses, or every member page by
//! page), a user's `accountEnabled` as PATCH writes it, and the sign-in log's listing.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{GraphCall, select, string_literal};
use crate::Service;
use crate::reply::{Reply, RequestIds};
use crate::stats::bump;
use crate::tenant::Tenant;

pub(super) fn list_sign_ins(
    service: &Service,
    tenant: &Tenant,
    call: &GraphCall,
    ids: &RequestIds,
    context: String,
) -> Reply {
    if !service.config.premium {
        return crate::sign_ins::not_premium(ids);
    }
    let filter = match call.filter.as_deref().map(crate::sign_ins::Filter::parse) {
        None => crate::sign_ins::Filter::default(),
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
    // "The maximum and default page size is 1,000 objects" (List signIns), one more than the
    // directory's 999, which the common parser holds `$top` to.
    let top = call.top.or_else(|| call.bad_top.as_deref().filter(|t| *t == "1000").map(|_| 1000));
    if top.is_none() && call.bad_top.is_some() {
        let text = "Invalid page size specified. Must be between 1 and 1000 inclusive.";
        return Reply::graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", text, ids);
    }
    let (page, next) = service.sign_ins.page(&filter, call.skip, top, tenant);
    let mut body = json!({"@odata.context": context, "value": page});
    if let Some(next) = next {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(filter) = &call.filter {
            query.append_pair("$filter", filter);
        }
        if let Some(top) = top {
            query.append_pair("$top", &top.to_string());
        }
        query.append_pair("$skiptoken", &next.to_string());
        let version = if call.beta { "beta" } else { "v1.0" };
        body["@odata.nextLink"] =
            format!("{}/{version}/auditLogs/signIns?{}", service.base_url(), query.finish()).into();
    }
    Reply::json(StatusCode::OK, body)
}

#[derive(Debug, PartialEq)]
pub(super) enum Filter {
    Mail(String),
    Upn(String),
    Proxy(String),
    /// `userType eq 'Member'`: every member user, paged.
    Members,
}

/// Lists users a page at a time (100 unless `$top` says, at most 999; `@odata.nextLink` carries
/// the same query and a `$skiptoken`), as Graph pages a users listing ("List users": "$top ...
/// 1 and 999"; "Paging Microsoft Graph data in your app"): every user, or the members only.
fn list_paged(users: &[&crate::tenant::User], call: &GraphCall, context: String, base: &str) -> Reply {
    let listing = super::paging::Listing { call, base, path: "users".into(), context, default_page: 100 };
    listing.reply(users, |u| select(u.graph_json(), call.select.as_deref()))
}

pub(super) fn list_users(tenant: &Tenant, call: &GraphCall, ids: &RequestIds, context: String, base: &str) -> Reply {
    let Some(filter_text) = &call.filter else {
        return list_paged(&tenant.users.iter().collect::<Vec<_>>(), call, context, base);
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
        Filter::Members => {
            let members: Vec<&crate::tenant::User> = tenant.users.iter().filter(|u| !u.guest).collect();
            return list_paged(&members, call, context, base);
        }
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

pub(super) fn parse_filter(filter: &str) -> Option<Filter> {
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

/// `PATCH users/{id | userPrincipalName}` with `{"accountEnabled": true | false}`: sign-in allowed
/// or blocked, 204 No Content ("Update user", learn.microsoft.com/graph/api/user-update). The
/// simulated tenant writes no other property of a user, so a body with any other, or without a
/// Boolean `accountEnabled`, is refused as Graph refuses a value it cannot take, rather than
/// answered 204 with nothing done.
pub(super) fn write_account_enabled(
    service: &Service,
    tenant: &mut Tenant,
    key: &str,
    call: &GraphCall,
    ids: &RequestIds,
) -> Reply {
    let body = call.body.as_ref().and_then(Value::as_object);
    let other = body.and_then(|b| b.keys().find(|k| *k != "accountEnabled"));
    let wanted = body.and_then(|b| b.get("accountEnabled"));
    let enabled = match (other, wanted) {
        (None, Some(Value::Bool(enabled))) => *enabled,
        (Some(property), _) => {
            let text = format!("Invalid value specified for property '{property}' of resource 'User'.");
            return Reply::graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", &text, ids);
        }
        _ => {
            let text = "Invalid value specified for property 'accountEnabled' of resource 'User'.";
            return Reply::graph_error(StatusCode::BAD_REQUEST, "Request_BadRequest", text, ids);
        }
    };
    let Some(i) = tenant.find_user(key) else {
        return super::not_found(key, ids);
    };
    service.count_write();
    let user = &mut tenant.users[i];
    if user.account_enabled == enabled {
        bump(&service.stats.noop_writes);
    }
    user.account_enabled = enabled;
    user.writes += 1;
    Reply::empty(StatusCode::NO_CONTENT)
}
