//! A client for one tenant: its tokens, its pacers, and the one request loop that retries what is
//! transient and reports the rest.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::auth::{Resource, TokenSource};
use super::deadline::{self, Latencies};
use super::pacer::Pacer;
use super::{
    Answer, Api, Call, CallError, Endpoints, Pacing, RawAnswer, RequestCounts, RequestIds, RetryPolicy, Transport,
    auth, batch, exchange_backoff, limit_fraction, pacer, receive, retry_after, service_error,
};
use crate::secret::SecretString;

/// Where each rate starts when no earlier run measured the tenant's budget: what the smallest
/// tenants allow, so the first seconds cost no 429s anywhere, and from which the pacer doubles
/// until the service first pushes back. Graph: 3,500 resource units per 10 s for an app in a
/// small tenant, and a request costs at least one; writes: 3,000 per 2 min 30 s, half of it
/// ("Identity and access service limits", learn.microsoft.com/graph/throttling-limits). The
/// Exchange admin API publishes no rate; public clients that run on real tenants send a few
/// requests at a time, one after another.
pub const START_GRAPH: f64 = 350.0;
pub const START_GRAPH_WRITES: f64 = 10.0;
pub const START_EXCHANGE: f64 = 20.0;

/// The identity and access reports' budget is five requests per 10 seconds per app and tenant
/// ("Identity and access reports service limits", learn.microsoft.com/graph/throttling-limits):
/// a fixed pace a little under it, so a request never races the token it waits for.
pub const REPORTS_RATE: f64 = 0.45;

/// A client for one tenant: its tokens, its pacers, its request loop.
pub struct CloudClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    pub tenant_id: String,
    tokens: TokenSource,
    graph_pacer: Pacer,
    graph_write_pacer: Pacer,
    exchange_pacer: Pacer,
    reports_pacer: Pacer,
    policy: RetryPolicy,
    graph_scope: String,
    exchange_scope: String,
    batcher: Option<batch::Batcher>,
    pub requests: Arc<RequestCounts>,
    /// How long quick reads usually take, for their deadlines.
    latencies: Arc<Latencies>,
    /// The tenant's id, once looked up.
    tenant_guid: tokio::sync::OnceCell<String>,
}

/// What one attempt came to.
enum Attempt {
    Done(Answer),
    /// Try again after this long (None: backoff); `sent` says whether the service may have acted.
    Again {
        wait: Option<Duration>,
        last: String,
        sent: bool,
        ids: RequestIds,
    },
    Refused(CallError),
    TokenRejected {
        ids: RequestIds,
        message: String,
    },
}

impl CloudClient {
    pub fn new(
        http: reqwest::Client,
        endpoints: Endpoints,
        tenant_id: String,
        tokens: TokenSource,
        pacing: Pacing,
        policy: RetryPolicy,
    ) -> CloudClient {
        let requests = Arc::new(RequestCounts::default());
        let latencies = Arc::new(Latencies::default());
        let http_for_batch = http.clone();
        let graph_base = endpoints.graph.clone();
        CloudClient {
            http,
            graph_scope: format!("{}/.default", endpoints.graph_resource.trim_end_matches('/')),
            exchange_scope: format!("{}/.default", endpoints.exchange_resource.trim_end_matches('/')),
            endpoints,
            tenant_id,
            tokens,
            graph_pacer: Pacer::new("graph", pacing.graph_rps, START_GRAPH, None, pacing.adaptive),
            graph_write_pacer: Pacer::new(
                "graph-writes",
                pacing.graph_write_rps,
                START_GRAPH_WRITES,
                None,
                pacing.adaptive,
            ),
            exchange_pacer: Pacer::new(
                "exchange",
                pacing.exchange_rps,
                START_EXCHANGE,
                Some(pacing.exchange_inflight),
                pacing.adaptive,
            ),
            reports_pacer: Pacer::new("reports", REPORTS_RATE, REPORTS_RATE, None, false),
            policy,
            batcher: pacing.batch.then(|| {
                batch::Batcher::start(http_for_batch, &graph_base, policy.timeout, requests.clone(), latencies.clone())
            }),
            requests,
            latencies,
            tenant_guid: tokio::sync::OnceCell::new(),
        }
    }

    /// The tenant's id (a GUID), whether it was given as its id or as one of its domains.
    pub async fn tenant_guid(&self) -> Result<String, crate::Error> {
        self.tenant_guid
            .get_or_try_init(|| {
                auth::tenant_id_of(&self.http, &self.endpoints.login, &self.tenant_id, self.policy.timeout)
            })
            .await
            .cloned()
    }

    /// Starts each rate from a budget an earlier run measured (graph, graph writes, Exchange), or
    /// `share` of it when this run is one of several that spend it together (shards).
    pub fn start_from(&self, budgets: [Option<f64>; 3], share: f64) {
        let pacers = [&self.graph_pacer, &self.graph_write_pacer, &self.exchange_pacer];
        for (pacer, budget) in pacers.into_iter().zip(budgets) {
            if let Some(budget) = budget {
                pacer.start_from(budget * share, share < 1.0);
            }
        }
    }

    /// This run's share of the tenant's budget changed by `factor` (see [`Pacer::reshare`]).
    pub fn reshare(&self, factor: f64) {
        for pacer in [&self.graph_pacer, &self.graph_write_pacer, &self.exchange_pacer] {
            pacer.reshare(factor);
        }
    }

    /// Each pacer's rate and measured budget: graph, graph writes, exchange.
    pub fn pacing(&self) -> [pacer::PacerState; 3] {
        [self.graph_pacer.state(), self.graph_write_pacer.state(), self.exchange_pacer.state()]
    }

    pub fn throttled_count(&self) -> u64 {
        self.graph_pacer.throttled_count()
            + self.graph_write_pacer.throttled_count()
            + self.exchange_pacer.throttled_count()
            + self.reports_pacer.throttled_count()
    }

    fn resource(&self, api: Api) -> (Resource<'_>, &str) {
        match api {
            Api::Graph => (Resource { slot: 0, scope: &self.graph_scope }, &self.endpoints.graph),
            Api::Exchange => (Resource { slot: 1, scope: &self.exchange_scope }, &self.endpoints.exchange),
        }
    }

    /// How long a write's answer may take before it counts as held: ten times the usual latency
    /// of the API's writes, at least two seconds; until enough writes were answered, of its quick
    /// reads; until then, the request timeout.
    pub fn slow_write(&self, api: Api) -> Duration {
        let (writes, reads) = match api {
            Api::Graph if self.batcher.is_some() => (&self.latencies.graph_writes, &self.latencies.graph_batch),
            Api::Graph => (&self.latencies.graph_writes, &self.latencies.graph),
            Api::Exchange => (&self.latencies.exchange_writes, &self.latencies.exchange),
        };
        let usual = if writes.known() { writes } else { reads };
        usual.deadline(self.policy.timeout)
    }

    /// How long one request may take (`--request-timeout`).
    pub fn request_timeout(&self) -> Duration {
        self.policy.timeout
    }

    /// The base URL of `api` (a national cloud's host, or the simulator's).
    pub fn base_url(&self, api: Api) -> &str {
        self.resource(api).1
    }

    /// A link the service returned, as a path under our base URL for `api`; `None` when it points
    /// anywhere else.
    pub fn relative_path(&self, api: Api, link: &str) -> Option<String> {
        let base = self.resource(api).1.trim_end_matches('/');
        link.strip_prefix(base)?.strip_prefix('/').map(str::to_string)
    }

    /// The path of the page after `answer` (its `@odata.nextLink`), `Ok(None)` on the last page.
    /// Our token goes only to the host we were given: a link anywhere else is refused.
    pub fn next_page(&self, api: Api, answer: &Answer) -> Result<Option<String>, CallError> {
        let Some(next) = answer.body["@odata.nextLink"].as_str() else { return Ok(None) };
        self.relative_path(api, next).map(Some).ok_or_else(|| CallError::Refused {
            status: answer.status,
            code: "UnexpectedNextLink".into(),
            message: "the next page is on another host; not following it with our token".into(),
            ids: answer.ids.clone(),
            attempts: answer.attempts,
        })
    }

    /// Fetches both tokens up front, so bad credentials stop the run before anything is read.
    pub async fn check_credentials(&self) -> Result<(), crate::Error> {
        for api in [Api::Graph, Api::Exchange] {
            self.tokens.token(self.resource(api).0).await?;
        }
        Ok(())
    }

    /// Sends a call, retrying what is transient, until it succeeds or must be given up.
    pub async fn send(&self, call: &Call) -> Result<Answer, CallError> {
        let mut refreshed_token = false;
        let mut last = String::new();
        let mut ids = RequestIds::default();
        for attempt in 1..=self.policy.max_attempts {
            match self.attempt(call, attempt).await? {
                Attempt::Done(answer) => return Ok(answer),
                Attempt::Refused(error) => return Err(error),
                Attempt::TokenRejected { ids, message } => {
                    // A fresh token refused too: the app's access is gone (consent revoked, app
                    // disabled), and every other request will fail the same way.
                    if refreshed_token {
                        let request = ids.request_id;
                        return Err(CallError::Auth(format!(
                            "{} refused a freshly issued token (401: {message}; request-id {request}): check that the app still has admin consent and its permissions in this tenant",
                            call.api.name()
                        )));
                    }
                    refreshed_token = true;
                }
                Attempt::Again { wait, last: problem, sent, ids: attempt_ids } => {
                    if sent && call.write {
                        return Err(CallError::Unknown { last: problem, ids: attempt_ids, attempts: attempt });
                    }
                    last = problem;
                    ids = attempt_ids;
                    if attempt < self.policy.max_attempts {
                        let pause = wait.unwrap_or_else(|| {
                            retry_after::backoff(attempt, Duration::from_millis(250), Duration::from_secs(20))
                        });
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
        Err(CallError::Exhausted { last, ids, attempts: self.policy.max_attempts })
    }

    /// Sends one attempt: through the Graph batcher when there is one, else on its own.
    async fn transmit(
        &self,
        call: &Call,
        base: &str,
        token: &SecretString,
        client_request_id: &str,
    ) -> Result<RawAnswer, Transport> {
        if let (Api::Graph, Some(batcher), false) = (call.api, &self.batcher, call.reports) {
            let (version, url) = call.path.split_once('/').unwrap_or(("v1.0", &call.path));
            let (answer, wait) = tokio::sync::oneshot::channel();
            let mut headers = call.headers.clone();
            headers.push(("client-request-id", client_request_id.to_string()));
            let quick = !call.write && !call.page;
            let item = batch::Item {
                quick,
                method: call.method.clone(),
                url: format!("/{url}"),
                headers,
                body: call.body.clone(),
                token: token.clone(),
                answer,
            };
            if batcher.submit(version, item) {
                let answer = async {
                    wait.await
                        .unwrap_or_else(|_| Err(Transport { sent: true, message: "the batch was dropped".into() }))
                };
                if !quick {
                    return answer.await;
                }
                // A quick read may share its batch with writes, which the batch waits for in full.
                let latency = &self.latencies.graph_batch;
                let since = tokio::time::Instant::now();
                return deadline::within(answer, since, || latency.deadline(self.policy.timeout)).await;
            }
        }
        let request = self
            .http
            .request(call.method.clone(), format!("{}/{}", base.trim_end_matches('/'), call.path))
            .bearer_auth(token.expose())
            .header("client-request-id", client_request_id)
            .header("return-client-request-id", "true");
        let latency = match call.api {
            Api::Graph => &self.latencies.graph,
            Api::Exchange => &self.latencies.exchange,
        };
        let quick = !call.write && !call.page;
        let timeout = call.timeout.map_or(self.policy.timeout, |longer| longer.max(self.policy.timeout));
        let mut request = request.timeout(timeout);
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let sent_at = tokio::time::Instant::now();
        let result = if quick {
            deadline::within(receive(request), sent_at, || latency.deadline(self.policy.timeout)).await
        } else {
            receive(request).await
        };
        self.requests.add(call.api, result.as_ref().map_or(0, |answer| answer.status));
        let answered = result.as_ref().is_ok_and(|answer| (200..300).contains(&answer.status));
        match (answered, quick, call.write, call.api) {
            (true, true, _, _) => latency.observe(sent_at.elapsed()),
            (true, _, true, Api::Graph) => self.latencies.graph_writes.observe(sent_at.elapsed()),
            (true, _, true, Api::Exchange) => self.latencies.exchange_writes.observe(sent_at.elapsed()),
            _ => {}
        }
        result
    }

    /// Tells the pacers the service counted this attempt against its budget: everything but
    /// what never reached it and a 503 refused unread. They measure the budget from it.
    fn count_against_budget(&self, call: &Call, pacer: &Pacer, result: &Result<RawAnswer, Transport>) {
        let counted = match result {
            Ok(answer) => answer.status != 503,
            Err(transport) => transport.sent,
        };
        if counted {
            pacer.answered();
            if call.write && call.api == Api::Graph {
                self.graph_write_pacer.answered();
            }
        }
    }

    async fn attempt(&self, call: &Call, attempt: u32) -> Result<Attempt, CallError> {
        let pacer = match call.api {
            _ if call.reports => &self.reports_pacer,
            Api::Graph => &self.graph_pacer,
            Api::Exchange => &self.exchange_pacer,
        };
        if call.write && call.api == Api::Graph {
            self.graph_write_pacer.acquire().await;
        }
        let slot = if call.page { pacer.acquire_ahead().await } else { pacer.acquire().await };
        if let Some(gate) = &call.gate {
            (gate.0)().await.map_err(|message| CallError::Local { code: super::NOT_RECORDED, message })?;
        }
        let (resource, base) = self.resource(call.api);
        let token = self.tokens.token(resource).await.map_err(|e| CallError::Auth(e.to_string()))?;
        let client_request_id = super::new_request_id();
        let started = tokio::time::Instant::now();
        if let Some(sent) = &call.sent {
            sent.send_replace(Some(super::Sent {
                client_request_id: client_request_id.clone(),
                at: tokio::time::Instant::now(),
            }));
        }
        let result = self.transmit(call, base, &token, &client_request_id).await;
        self.count_against_budget(call, pacer, &result);
        let mut ids = RequestIds { client_request_id, request_id: String::new() };
        let RawAnswer { status, headers, body } = match result {
            Ok(answer) => answer,
            Err(Transport { sent, message: last }) => {
                tracing::debug!(api = call.api.name(), attempt, elapsed_ms = started.elapsed().as_millis() as u64, %last, "request failed");
                return Ok(Attempt::Again { wait: None, last, sent, ids });
            }
        };
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        ids.request_id = header("request-id").unwrap_or_default().to_string();
        if (200..300).contains(&status) {
            let percentage = header("x-ms-throttle-limit-percentage").and_then(limit_fraction);
            if call.write && call.api == Api::Graph {
                // A write's percentage is that of whichever budget (units or writes) is fuller:
                // it cannot tell either pacer which one it is, so only 429s steer writes.
                self.graph_write_pacer.succeeded(None);
            } else {
                pacer.succeeded(percentage);
            }
            let body = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
            return Ok(Attempt::Done(Answer { status, body, ids, attempts: attempt }));
        }
        let mut message = service_error::parse(&body);
        if message.exception.is_none() {
            // The Exchange admin API also names the exception in a header (ExoHelper reads it).
            message.exception = header("x-exceptiontype").map(str::to_string);
        }
        let retry_after = header("retry-after").and_then(|v| retry_after::parse(v, SystemTime::now()));
        // Exchange throttles with 429, or with another status and this text as a plain body
        // (ExoHelper's Invoke-ExoCommand and CIPP retry on either).
        let concurrency = message.message.contains("maximum number of concurrent requests");
        let last = format!("{status} {}: {}", message.code, message.message);
        tracing::debug!(api = call.api.name(), attempt, status, code = %message.code, "service answered with an error");
        if call.api == Api::Exchange && service_error::is_exchange_not_found(&message) {
            // No such mailbox, whatever the status (404 on real tenants, 500 in public fixtures):
            // never retried, and read as "no mailbox" by the caller.
            return Ok(Attempt::Refused(CallError::Refused {
                status: 404,
                code: "ManagementObjectNotFoundException".into(),
                message: message.message,
                ids,
                attempts: attempt,
            }));
        }
        match status {
            429 if call.reports => {
                pacer.throttled(retry_after.unwrap_or(Duration::from_secs(2)));
                Ok(Attempt::Again { wait: Some(Duration::ZERO), last, sent: false, ids })
            }
            429 if call.api == Api::Graph => {
                let wait = retry_after.unwrap_or(Duration::from_secs(1));
                // `x-ms-throttle-information` says which budget ran out ("Identity and access
                // service limits", throttled responses).
                match (call.write, header("x-ms-throttle-information")) {
                    // The writes budget: slow writes down; reads have a budget of their own.
                    (true, Some("WriteLimitExceeded")) => self.graph_write_pacer.throttled(wait),
                    // The units budget, which writes draw on too: their own measure is disturbed.
                    (false, _) | (true, Some("ResourceUnitLimitExceeded")) => {
                        pacer.throttled(wait);
                        self.graph_write_pacer.disturbed();
                    }
                    // A write, and no word of which budget: slow writes, hold reads for the
                    // Retry-After without cutting their rate.
                    (true, _) => {
                        self.graph_write_pacer.throttled(wait);
                        pacer.pause(wait);
                        pacer.disturbed();
                    }
                }
                Ok(Attempt::Again { wait: Some(Duration::ZERO), last, sent: false, ids })
            }
            _ if concurrency => {
                if pacer.refused_for_concurrency(retry_after.unwrap_or_else(|| exchange_backoff(attempt)))
                    && let Some(slot) = slot
                {
                    slot.forget();
                }
                Ok(Attempt::Again { wait: Some(Duration::ZERO), last, sent: false, ids })
            }
            429 => {
                pacer.throttled(retry_after.unwrap_or_else(|| exchange_backoff(attempt)));
                Ok(Attempt::Again { wait: Some(Duration::ZERO), last, sent: false, ids })
            }
            401 => {
                self.tokens.invalidate(resource, &token).await;
                Ok(Attempt::TokenRejected { ids, message: message.message })
            }
            503 => Ok(Attempt::Again { wait: retry_after, last, sent: false, ids }),
            500 | 502 | 504 => Ok(Attempt::Again { wait: retry_after, last, sent: true, ids }),
            409 if message.code == "Directory_ConcurrencyViolation" => {
                Ok(Attempt::Again { wait: retry_after, last, sent: false, ids })
            }
            _ => Ok(Attempt::Refused(CallError::Refused {
                status,
                code: message.code,
                message: message.message,
                ids,
                attempts: attempt,
            })),
        }
    }
}
