//! The Exchange admin API's `InvokeCommand` route: the in-flight limit per tenant (refused in both
//! forms the service uses), the token and tenant checks, then the cmdlet.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use super::{Shared, admit, client_request_id, finish_with_faults, respond, target_of};
use crate::Service;
use crate::exchange::{self, ExchangeCall};
use crate::reply::{Reply, RequestIds};
use crate::stats::Api;
use crate::tokens::Audience;

const CONCURRENCY_MESSAGE: &str = "The request was throttled because the maximum number of concurrent requests per tenant was exceeded. Please retry after some time.";
/// The plain-text form of the same refusal, with no `Retry-After`, which public clients that run
/// on real tenants match by its text whatever the status (ExoHelper's Invoke-ExoCommand, CIPP).
const CONCURRENCY_TEXT: &str =
    "You have reached the maximum number of concurrent requests per tenant. Please wait and try again";

fn exchange_tenant_ok(service: &Service, tenant: &str) -> Result<(), Reply> {
    if tenant.eq_ignore_ascii_case(&service.tokens.app.tenant_id) {
        Ok(())
    } else {
        Err(Reply::exchange_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("The tenant '{tenant}' in the request URL is not the tenant of this token."),
        ))
    }
}

fn exchange_call(
    service: &Service,
    tenant: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    ids: &RequestIds,
) -> Reply {
    let call: ExchangeCall = match exchange::parse(query, headers, body) {
        Ok(call) => call,
        Err(reply) => return reply,
    };
    if let Err(reply) = service.charge_exchange(ids) {
        return reply;
    }
    exchange::execute(service, &call, tenant)
}

/// The checks every Exchange request passes first: a free in-flight slot, a valid token for
/// Exchange, and our tenant in the path. The slot is held until the answer is sent.
async fn exchange_admit<'a>(
    service: &'a Service,
    tenant: &str,
    headers: &HeaderMap,
    ids: &RequestIds,
) -> Result<Option<crate::budget::InFlightGuard<'a>>, Response> {
    let Some(slot) = exchange_slot(service) else {
        // Both forms the service uses, in turn: a 500 whose plain body is the only sign of
        // throttling, and a 429 with Retry-After.
        let refusals = service.concurrency_refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reply = if refusals.is_multiple_of(2) {
            Reply::text(StatusCode::INTERNAL_SERVER_ERROR, CONCURRENCY_TEXT)
        } else {
            Reply::throttled(std::time::Duration::from_secs(1), CONCURRENCY_MESSAGE, ids)
        };
        return Err(respond(service, Api::Exchange, reply, ids));
    };
    if let Err(reply) = admit(service, headers, Audience::Exchange, ids).await {
        return Err(respond(service, Api::Exchange, reply, ids));
    }
    if let Err(reply) = exchange_tenant_ok(service, tenant) {
        return Err(respond(service, Api::Exchange, reply, ids));
    }
    Ok(slot)
}

pub(super) async fn exchange_invoke(
    State(tenants): Shared,
    Path(tenant): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let service = tenants.by_id(&tenant).clone();
    service.record(method.as_str(), target_of(&uri), &body);
    let ids = RequestIds::new(client_request_id(&headers));
    let _slot = match exchange_admit(&service, &tenant, &headers, &ids).await {
        Ok(slot) => slot,
        Err(response) => return response,
    };
    if method != Method::POST {
        let reply = Reply::exchange_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "InvokeCommand accepts POST only.",
        );
        return respond(&service, Api::Exchange, reply, &ids);
    }
    let query = uri.query().unwrap_or_default();
    let writes = body.windows(4).any(|w| w == b"Set-");
    let (work_service, query, work_ids) = (service.clone(), query.to_string(), ids.clone());
    let work = move || exchange_call(&work_service, &tenant, &query, &headers, &body, &work_ids);
    finish_with_faults(&service, Api::Exchange, &ids, writes, work).await
}

fn exchange_slot(service: &Service) -> Option<Option<crate::budget::InFlightGuard<'_>>> {
    if !service.budgets.enabled {
        return Some(None);
    }
    service.budgets.exchange_inflight.enter(service.budgets.exchange_inflight_cap).map(Some)
}
