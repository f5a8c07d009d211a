//! The HTTP face of the simulated tenant: routes, the pipeline every request goes through
//! (latency, token check, throttling, faults) and `$batch` for Graph. (The Exchange admin API's
//! `$batch`, which public tools such as CIPP use, is not served: `remediate` never sends one.)

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::Value;

use super::Service;
use super::budget::Verdict;
use super::faults::Fault;
use super::graph::{self, GraphCall};
use super::reply::{Reply, RequestIds};
use super::stats::{Api, bump};
use super::tokens::Audience;

mod batch;
mod exchange_route;
mod identity;

use batch::graph_batch;
use exchange_route::exchange_invoke;
pub(crate) use identity::{
    APP_SERVICE_PATH, CLOUD_SHELL_PATH, MACHINE_LEARNING_PATH, METADATA_PATH, service_fabric_router,
};
use identity::{managed_identity, openid_configuration, token};

type Shared = State<Arc<Tenants>>;

/// Every tenant one simulator serves. Like the real service, they share the hosts: the token
/// endpoint and the Exchange API name the tenant in the path, Graph knows it from the token.
pub(crate) struct Tenants {
    pub all: Vec<Arc<Service>>,
}

impl Tenants {
    fn first(&self) -> &Arc<Service> {
        &self.all[0]
    }

    fn by_id(&self, tenant: &str) -> &Arc<Service> {
        self.all.iter().find(|s| s.tokens.app.is_named(tenant)).unwrap_or(self.first())
    }

    fn by_token(&self, headers: &HeaderMap) -> &Arc<Service> {
        let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        token.and_then(|t| self.all.iter().find(|s| s.tokens.knows(t))).unwrap_or(self.first())
    }

    /// `?tenant=ID` on the observability routes; the first tenant without it.
    fn named_in_query(&self, query: Option<&str>) -> &Arc<Service> {
        let wanted = query.and_then(|q| {
            form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "tenant").map(|(_, v)| v.into_owned())
        });
        wanted.map_or(self.first(), |id| self.by_id(&id))
    }
}

pub(crate) fn router(tenants: Arc<Tenants>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(openid_configuration))
        .route(APP_SERVICE_PATH, get(managed_identity))
        .route(METADATA_PATH, get(managed_identity))
        .route(MACHINE_LEARNING_PATH, get(managed_identity))
        .route(CLOUD_SHELL_PATH, post(managed_identity))
        .route("/v1.0/{*rest}", any(graph_entry))
        .route("/beta/{*rest}", any(graph_entry))
        .route("/adminapi/beta/{tenant}/InvokeCommand", any(exchange_invoke))
        .route(
            "/_sim/stats",
            get(|State(t): Shared, uri: Uri| async move { axum::Json(t.named_in_query(uri.query()).stats_json()) }),
        )
        .route(
            "/_sim/timeline",
            get(|State(t): Shared, uri: Uri| async move { axum::Json(t.named_in_query(uri.query()).timeline_json()) }),
        )
        .route(
            "/_sim/state",
            get(|State(t): Shared, uri: Uri| async move { axum::Json(t.named_in_query(uri.query()).state_json()) }),
        )
        .route(
            "/_sim/requests",
            get(|State(t): Shared, uri: Uri| async move { axum::Json(t.named_in_query(uri.query()).received_json()) }),
        )
        .route("/_sim/smtp-submit", post(smtp_submit))
        .route(
            "/_sim/reset",
            post(|State(t): Shared| async move {
                t.all.iter().for_each(|s| s.reset());
                StatusCode::NO_CONTENT
            }),
        )
        .fallback(unmatched)
        .with_state(tenants)
}

/// `POST /_sim/smtp-submit`: what a device hears from SMTP AUTH (see [`super::smtp_submit`]).
async fn smtp_submit(State(tenants): Shared, uri: Uri, body: Bytes) -> Response {
    let service = tenants.named_in_query(uri.query()).clone();
    let answer = super::smtp_submit::answer(&service.tenant(), &body);
    match answer {
        Ok(value) => (StatusCode::OK, axum::Json(value)).into_response(),
        Err(problem) => (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": problem}))).into_response(),
    }
}

fn client_request_id(headers: &HeaderMap) -> Option<&str> {
    headers.get("client-request-id").and_then(|v| v.to_str().ok())
}

fn target_of(uri: &Uri) -> &str {
    uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
}

fn respond(service: &Service, api: Api, reply: Reply, ids: &RequestIds) -> Response {
    service.stats.answered(api, reply.status.as_u16());
    let mut response = match &reply.body {
        Some(Value::String(text)) if reply.plain => {
            (reply.status, [("content-type", "text/plain; charset=utf-8")], text.clone()).into_response()
        }
        Some(body) => (reply.status, [("content-type", "application/json; odata.metadata=minimal")], body.to_string())
            .into_response(),
        None => reply.status.into_response(),
    };
    let headers = response.headers_mut();
    for (name, value) in &reply.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(*name, value);
        }
    }
    if api != Api::Token {
        for (name, value) in [("request-id", &ids.request_id), ("client-request-id", &ids.client_request_id)] {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        }
    }
    response
}

async fn unmatched(State(tenants): Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let service = tenants.first().clone();
    service.record(method.as_str(), target_of(&uri), &body);
    bump(&service.stats.unmatched_requests);
    let ids = RequestIds::new(client_request_id(&headers));
    let reply =
        Reply::graph_error(StatusCode::NOT_FOUND, "NotFound", &format!("No route matches '{}'.", uri.path()), &ids);
    respond(&service, Api::Graph, reply, &ids)
}

/// Latency, then the token check shared by every Graph and Exchange request.
async fn admit(service: &Service, headers: &HeaderMap, audience: Audience, ids: &RequestIds) -> Result<(), Reply> {
    service.count_arrival();
    tokio::time::sleep(service.faults.latency()).await;
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    service.tokens.check(authorization, audience).map_err(|problem| {
        Reply::graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", problem.message(), ids)
            .with_header("www-authenticate", "Bearer realm=\"\", error=\"invalid_token\"")
    })
}

/// Carries out `work` unless a fault says otherwise, then answers (or drops the connection).
/// `work` owns what it needs: a write that lands late is carried out after its request is gone.
async fn finish_with_faults(
    service: &Arc<Service>,
    api: Api,
    ids: &RequestIds,
    writes: bool,
    work: impl FnOnce() -> Reply + Send + 'static,
) -> Response {
    let fault = service.faults.draw();
    if fault.is_some() {
        bump(&service.stats.faults_total);
    }
    let unavailable = || {
        Reply::graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "Service unavailable. Please try again later.",
            ids,
        )
    };
    match fault {
        Some(Fault::UnavailableRetryAfter) => {
            return respond(service, api, unavailable().with_header("retry-after", "1"), ids);
        }
        Some(Fault::Unavailable) => return respond(service, api, unavailable(), ids),
        Some(Fault::LandsLate) if writes => {
            let late = service.clone();
            late.landing_late.send_modify(|n| *n += 1);
            tokio::spawn(async move {
                tokio::time::sleep(late.faults.late_landing()).await;
                if work().status.is_success() {
                    bump(&late.stats.faulted_writes_applied);
                    bump(&late.stats.writes_landed_late);
                }
                late.landing_late.send_modify(|n| *n -= 1);
            });
            return dropped(service, api);
        }
        _ => {}
    }
    let reply = work();
    let Some(fault) = fault.filter(|f| f.after_work()) else {
        return respond(service, api, reply, ids);
    };
    if writes && reply.status.is_success() {
        bump(&service.stats.faulted_writes_applied);
    }
    match fault {
        Fault::GatewayTimeout => {
            let timeout = Reply::graph_error(
                StatusCode::GATEWAY_TIMEOUT,
                "UnknownError",
                "The gateway did not receive a response from the service in time.",
                ids,
            );
            respond(service, api, timeout, ids)
        }
        Fault::Dropped | Fault::LandsLate => dropped(service, api),
        _ => {
            // A held write is counted as abandoned unless the hold runs out: a client that gives
            // up drops the connection, and with it this future.
            let abandoned = writes.then(|| count_if_dropped(service));
            tokio::time::sleep(service.config.slow_reply).await;
            std::mem::forget(abandoned);
            respond(service, api, reply, ids)
        }
    }
}

/// A connection that breaks before the answer's body: the client learns nothing of the outcome.
fn dropped(service: &Service, api: Api) -> Response {
    service.stats.answered(api, 0);
    let broken = futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
    });
    Response::builder().status(StatusCode::OK).body(Body::from_stream(broken)).unwrap_or_default()
}

impl Service {
    /// Charges a Graph call to the budgets: Ok with the headers to add, or a 429 reply.
    fn charge_graph(&self, call: &GraphCall, ids: &RequestIds) -> Result<Vec<(&'static str, String)>, Reply> {
        let (cost, write) = call.cost();
        self.stats.graph_resource_units.fetch_add(cost as u64, std::sync::atomic::Ordering::Relaxed);
        let mut headers = vec![("x-ms-resource-unit", format!("{cost}"))];
        if !self.budgets.enabled {
            return Ok(headers);
        }
        // The headers as "Identity and access service limits" documents them
        // (learn.microsoft.com/graph/throttling-limits, "Additional headers"): a regular answer
        // past 0.8 of the limit carries `x-ms-throttle-limit-percentage` as a fraction from 0.8
        // to 1.8; a throttled one carries `x-ms-throttle-scope`
        // (`<Scope>/<Limit>/<ApplicationId>/<TenantId>`) and `x-ms-throttle-information`, which
        // says which budget ran out.
        if call.route == super::graph::Route::SignIns
            && let Verdict::Throttled { retry_after } = self.budgets.reports.take(1.0)
        {
            return Err(Reply::throttled(
                retry_after,
                "Too many requests. The application has exceeded the reports API's throttling limit; retry after the interval in Retry-After.",
                ids,
            ));
        }
        let units = self.budgets.graph_units.take(cost);
        let writes = write.then(|| self.budgets.graph_writes.take(1.0));
        let mut used: f64 = 0.0;
        let mut wait: Option<std::time::Duration> = None;
        let mut exceeded = None;
        for (verdict, information, limit) in [
            (Some(units), "ResourceUnitLimitExceeded", if write { "ReadWrite" } else { "Read" }),
            (writes, "WriteLimitExceeded", "Write"),
        ] {
            match verdict {
                Some(Verdict::Allowed { used: share }) => used = used.max(share),
                Some(Verdict::Throttled { retry_after }) => {
                    wait = Some(wait.map_or(retry_after, |w| w.max(retry_after)));
                    exceeded.get_or_insert((information, limit));
                }
                None => {}
            }
        }
        if let (Some(wait), Some((information, limit))) = (wait, exceeded) {
            let app = &self.tokens.app;
            let scope = format!("Tenant_Application/{limit}/{}/{}", app.client_id, app.tenant_id);
            let reply = Reply::throttled(
                wait,
                "Too many requests. The application or tenant has exceeded its throttling limit; retry after the interval in Retry-After.",
                ids,
            );
            return Err(reply
                .with_header("x-ms-throttle-scope", scope)
                .with_header("x-ms-throttle-information", information));
        }
        if used >= 0.8 && self.config.limit_percentage_header {
            headers.push(("x-ms-throttle-limit-percentage", format!("{used:.2}")));
        }
        Ok(headers)
    }

    fn charge_exchange(&self, ids: &RequestIds) -> Result<(), Reply> {
        if !self.budgets.enabled {
            return Ok(());
        }
        match self.budgets.exchange_requests.take(1.0) {
            Verdict::Allowed { .. } => Ok(()),
            Verdict::Throttled { retry_after } => Err(Reply::throttled(
                retry_after,
                "The request was throttled: too many requests for this tenant. Retry after the interval in Retry-After.",
                ids,
            )),
        }
    }

    /// One Graph call, parsed, charged and carried out (used by direct requests and batch items).
    fn graph_call(&self, method: Method, beta: bool, target: &str, body: &[u8], ids: &RequestIds) -> Reply {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let call = match graph::parse(method, beta, path, query, body, ids) {
            Ok(call) => call,
            Err(refusal) => {
                if refusal.unmatched {
                    bump(&self.stats.unmatched_requests);
                }
                return refusal.reply;
            }
        };
        match self.charge_graph(&call, ids) {
            Ok(extra) => {
                let mut reply = graph::execute(self, &call, ids);
                reply.headers.extend(extra);
                reply
            }
            Err(throttled) => throttled,
        }
    }
}

async fn graph_entry(State(tenants): Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let service = tenants.by_token(&headers).clone();
    let target = target_of(&uri);
    service.record(method.as_str(), target, &body);
    let ids = RequestIds::new(client_request_id(&headers));
    if let Err(reply) = admit(&service, &headers, Audience::Graph, &ids).await {
        return respond(&service, Api::Graph, reply, &ids);
    }
    let (beta, rest) = match target.strip_prefix("/beta") {
        Some(rest) => (true, rest),
        None => (false, target.strip_prefix("/v1.0").unwrap_or(target)),
    };
    if rest.split('?').next() == Some("/$batch") && method == Method::POST {
        return graph_batch(&service, beta, &body, &ids).await;
    }
    // A filtered page of a large tenant's sign-in log takes minutes (msgraph-sdk-powershell
    // issues 2941 and 3146); `--sign-in-latency` holds each page that long.
    if rest.split('?').next().is_some_and(|path| path.eq_ignore_ascii_case("/auditLogs/signIns")) {
        tokio::time::sleep(service.config.sign_in_latency).await;
    }
    // Parsing and charging happen inside the work, so a fault before the work changes nothing.
    let is_write = graph::is_write(&method, rest);
    let (work_service, rest, work_ids) = (service.clone(), rest.to_string(), ids.clone());
    let work = move || work_service.graph_call(method, beta, &rest, &body, &work_ids);
    finish_with_faults(&service, Api::Graph, &ids, is_write, work).await
}

/// Bumps `counter` when dropped: for what happens only if a future is dropped part-way.
fn count_if_dropped(service: &Service) -> impl Drop + '_ {
    struct Bump<'a>(&'a Service);
    impl Drop for Bump<'_> {
        fn drop(&mut self) {
            self.0.count_abandoned();
        }
    }
    Bump(service)
}
