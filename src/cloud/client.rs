//! A client for one tenant: its tokens, its pacers, and the one request loop that retries what is
//! transient and reports the rest.
//!
//! One attempt, from its turn at the pacers to what its answer calls for, is in [`attempt`]; how
//! it goes over the wire (alone or in a Graph `$batch`), in [`transmit`].

mod attempt;
mod transmit;

use std::sync::Arc;
use std::time::Duration;

use super::auth::{Resource, TokenSource};
use super::deadline::Latencies;
use super::pacer::Pacer;
use super::{
    Answer, Api, Call, CallError, Endpoints, Pacing, RequestCounts, RequestIds, RetryPolicy, auth, batch, pacer,
    retry_after,
};
use attempt::Attempt;

/// Where each rate starts when no earlier run measured the tenant's budget: what the smallest
/// tenants allow, so the first seconds cost no 429s anywhere, and from which the pacer doubles
/// until the service first pushes back. Graph: 3,500 resource units per 10 s for an app in a
/// small tenant, and a request costs at least one; writes: 3,000 per 2 min 30 s, half of it
/// ("Identity and access service limits", learn.microsoft.com/graph/throttling-limits). The
/// Exchange admin API publishes no rate; public clients that run on real tenants send a few
/// requests at a time, one after another.
pub(super) const START_GRAPH: f64 = 350.0;
pub(super) const START_GRAPH_WRITES: f64 = 10.0;
pub(super) const START_EXCHANGE: f64 = 20.0;

/// The identity and access reports' budget is five requests per 10 seconds per app and tenant
/// ("Identity and access reports service limits", learn.microsoft.com/graph/throttling-limits):
/// a fixed pace a little under it, so a request never races the token it waits for.
pub(super) const REPORTS_RATE: f64 = 0.45;

/// A client for one tenant: its tokens, its pacers, its request loop.
pub(crate) struct CloudClient {
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

impl CloudClient {
    pub(crate) fn new(
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
    pub(crate) async fn tenant_guid(&self) -> Result<String, crate::Error> {
        self.tenant_guid
            .get_or_try_init(|| {
                auth::tenant_id_of(&self.http, &self.endpoints.login, &self.tenant_id, self.policy.timeout)
            })
            .await
            .cloned()
    }

    /// Starts each rate from a budget an earlier run measured (graph, graph writes, Exchange), or
    /// `share` of it when this run is one of several that spend it together (shards).
    pub(crate) fn start_from(&self, budgets: [Option<f64>; 3], share: f64) {
        let pacers = [&self.graph_pacer, &self.graph_write_pacer, &self.exchange_pacer];
        for (pacer, budget) in pacers.into_iter().zip(budgets) {
            if let Some(budget) = budget {
                pacer.start_from(budget * share, share < 1.0);
            }
        }
    }

    /// This run's share of the tenant's budget changed by `factor` (see [`Pacer::reshare`]).
    pub(crate) fn reshare(&self, factor: f64) {
        for pacer in [&self.graph_pacer, &self.graph_write_pacer, &self.exchange_pacer] {
            pacer.reshare(factor);
        }
    }

    /// Each pacer's rate and measured budget: graph, graph writes, exchange.
    pub(crate) fn pacing(&self) -> [pacer::PacerState; 3] {
        [self.graph_pacer.state(), self.graph_write_pacer.state(), self.exchange_pacer.state()]
    }

    pub(crate) fn throttled_count(&self) -> u64 {
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
    pub(crate) fn slow_write(&self, api: Api) -> Duration {
        let (writes, reads) = match api {
            Api::Graph if self.batcher.is_some() => (&self.latencies.graph_writes, &self.latencies.graph_batch),
            Api::Graph => (&self.latencies.graph_writes, &self.latencies.graph),
            Api::Exchange => (&self.latencies.exchange_writes, &self.latencies.exchange),
        };
        let usual = if writes.known() { writes } else { reads };
        usual.deadline(self.policy.timeout)
    }

    /// How long one request may take (`--request-timeout`).
    pub(crate) fn request_timeout(&self) -> Duration {
        self.policy.timeout
    }

    /// The base URL of `api` (a national cloud's host, or the simulator's).
    pub(crate) fn base_url(&self, api: Api) -> &str {
        self.resource(api).1
    }

    /// A link the service returned, as a path under our base URL for `api`; `None` when it points
    /// anywhere else.
    pub(crate) fn relative_path(&self, api: Api, link: &str) -> Option<String> {
        let base = self.resource(api).1.trim_end_matches('/');
        link.strip_prefix(base)?.strip_prefix('/').map(str::to_string)
    }

    /// The path of the page after `answer` (its `@odata.nextLink`), `Ok(None)` on the last page.
    /// Our token goes only to the host we were given: a link anywhere else is refused.
    pub(crate) fn next_page(&self, api: Api, answer: &Answer) -> Result<Option<String>, CallError> {
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
    pub(crate) async fn check_credentials(&self) -> Result<(), crate::Error> {
        for api in [Api::Graph, Api::Exchange] {
            self.tokens.token(self.resource(api).0).await?;
        }
        Ok(())
    }

    /// Sends a call, retrying what is transient, until it succeeds or must be given up.
    pub(crate) async fn send(&self, call: &Call) -> Result<Answer, CallError> {
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
}
