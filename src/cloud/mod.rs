//! Talking to Microsoft: the endpoints of each cloud, tokens, pacing, and the one request loop
//! that retries what is transient and reports the rest.
//!
//! Nothing here knows about CSV files or settings; the settings call [`CloudClient::send`] with a
//! [`Call`] and get an [`Answer`] or a [`CallError`].

pub mod auth;
pub mod batch;
pub mod exchange;
pub mod graph;
pub mod pacer;
pub mod paths;
pub mod retry_after;
pub mod service_error;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde_json::Value;

use auth::{Resource, TokenSource};
use pacer::Pacer;

use crate::secret::SecretString;

/// A Microsoft cloud: global, US Government (GCC High), US Government DoD, or China (21Vianet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CloudName {
    Global,
    Usgov,
    UsgovDod,
    China,
}

/// The hosts of one Microsoft cloud.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub login: String,
    pub graph: String,
    pub exchange: String,
    /// The resources tokens are asked for (scope = resource + "/.default").
    pub graph_resource: String,
    pub exchange_resource: String,
}

impl Endpoints {
    /// The hosts of each cloud, from Microsoft's published endpoint lists ("Office 365 URLs and IP
    /// address ranges" for Worldwide, U.S. Government GCC High and DoD, and 21Vianet; "National
    /// cloud deployments" for Graph): Exchange Online is `outlook.office365.us` in GCC High,
    /// `webmail.apps.mil` in DoD and `partner.outlook.cn` in China, the hosts public Exchange
    /// clients connect to and ask tokens for.
    pub fn of(cloud: CloudName) -> Endpoints {
        let (login, graph, exchange) = match cloud {
            CloudName::Global => {
                ("https://login.microsoftonline.com", "https://graph.microsoft.com", "https://outlook.office365.com")
            }
            CloudName::Usgov => {
                ("https://login.microsoftonline.us", "https://graph.microsoft.us", "https://outlook.office365.us")
            }
            CloudName::UsgovDod => {
                ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us", "https://webmail.apps.mil")
            }
            CloudName::China => (
                "https://login.partner.microsoftonline.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                "https://partner.outlook.cn",
            ),
        };
        Endpoints {
            login: login.into(),
            graph: graph.into(),
            exchange: exchange.into(),
            graph_resource: graph.into(),
            exchange_resource: exchange.into(),
        }
    }
}

/// Which service a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Api {
    Graph,
    Exchange,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::Graph => "graph",
            Api::Exchange => "exchange",
        }
    }
}

/// One request to make.
#[derive(Clone, Debug)]
pub struct Call {
    pub api: Api,
    pub method: Method,
    /// Path and query after the API's base URL, already encoded (see [`paths`]).
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    /// A write: if its fate is unknown (a timeout, a 504, a dropped connection) it is not simply
    /// sent again; the caller re-reads first.
    pub write: bool,
}

/// A successful answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub ids: RequestIds,
    pub attempts: u32,
}

/// The identifiers support cases need: ours and the one the service returned.
#[derive(Clone, Debug, Default)]
pub struct RequestIds {
    pub client_request_id: String,
    pub request_id: String,
}

/// Why a call did not succeed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CallError {
    /// The service said no, and asking again would not help (400, 403, 404, 405, 409…).
    #[error("{status} {code}: {message}")]
    Refused { status: u16, code: String, message: String, ids: RequestIds, attempts: u32 },
    /// Transient failures until the attempts ran out.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted { last: String, ids: RequestIds, attempts: u32 },
    /// A write that may or may not have happened: the caller must re-read before writing again.
    #[error("the outcome of this write is unknown: {last}")]
    Unknown { last: String, ids: RequestIds, attempts: u32 },
    /// No token could be had: nothing else will work either.
    #[error("{0}")]
    Auth(String),
}

impl CallError {
    /// The `error_code` of a row that failed because no token was accepted.
    pub const AUTH_CODE: &'static str = "AuthenticationFailed";

    pub fn attempts(&self) -> u32 {
        match self {
            CallError::Refused { attempts, .. }
            | CallError::Exhausted { attempts, .. }
            | CallError::Unknown { attempts, .. } => *attempts,
            CallError::Auth(_) => 1,
        }
    }

    pub fn ids(&self) -> RequestIds {
        match self {
            CallError::Refused { ids, .. } | CallError::Exhausted { ids, .. } | CallError::Unknown { ids, .. } => {
                ids.clone()
            }
            CallError::Auth(_) => RequestIds::default(),
        }
    }

    pub fn code(&self) -> String {
        match self {
            CallError::Refused { status, code, .. } if code.is_empty() => status.to_string(),
            CallError::Refused { code, .. } => code.clone(),
            CallError::Exhausted { .. } => "RetriesExhausted".into(),
            CallError::Unknown { .. } => "OutcomeUnknown".into(),
            CallError::Auth(_) => CallError::AUTH_CODE.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, CallError::Refused { status: 404, .. })
    }
}

/// How hard to try.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub timeout: Duration,
}

/// Rates and caps for each API.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    pub graph_rps: f64,
    pub graph_write_rps: f64,
    pub exchange_rps: f64,
    pub exchange_inflight: u32,
    pub adaptive: bool,
    /// Gather Graph requests into `$batch` requests of up to 20.
    pub batch: bool,
}

/// Requests made, by API and status (0 for no answer), for the summary.
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: Mutex<BTreeMap<(Api, u16), u64>>,
}

impl RequestCounts {
    pub fn add(&self, api: Api, status: u16) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()).entry((api, status)).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<(Api, u16), u64> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cloud_has_its_published_hosts() {
        let hosts = |cloud| {
            let e = Endpoints::of(cloud);
            (e.login, e.graph, e.exchange, e.exchange_resource)
        };
        assert_eq!(
            hosts(CloudName::Global),
            (
                "https://login.microsoftonline.com".into(),
                "https://graph.microsoft.com".into(),
                "https://outlook.office365.com".into(),
                "https://outlook.office365.com".into()
            )
        );
        assert_eq!(
            hosts(CloudName::Usgov),
            (
                "https://login.microsoftonline.us".into(),
                "https://graph.microsoft.us".into(),
                "https://outlook.office365.us".into(),
                "https://outlook.office365.us".into()
            )
        );
        assert_eq!(
            hosts(CloudName::UsgovDod),
            (
                "https://login.microsoftonline.us".into(),
                "https://dod-graph.microsoft.us".into(),
                "https://webmail.apps.mil".into(),
                "https://webmail.apps.mil".into()
            )
        );
        assert_eq!(
            hosts(CloudName::China),
            (
                "https://login.partner.microsoftonline.cn".into(),
                "https://microsoftgraph.chinacloudapi.cn".into(),
                "https://partner.outlook.cn".into(),
                "https://partner.outlook.cn".into()
            )
        );
    }

    #[test]
    fn the_limit_header_is_a_fraction() {
        assert_eq!(limit_fraction("0.85"), Some(0.85));
        assert_eq!(limit_fraction("1.8"), Some(1.8));
        assert_eq!(limit_fraction("85"), Some(0.85), "a percentage, should one come");
        assert_eq!(limit_fraction("x"), None);
    }
}

/// A client for one tenant: its tokens, its pacers, its request loop.
pub struct CloudClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    pub tenant_id: String,
    tokens: TokenSource,
    graph_pacer: Pacer,
    graph_write_pacer: Pacer,
    exchange_pacer: Pacer,
    policy: RetryPolicy,
    graph_scope: String,
    exchange_scope: String,
    batcher: Option<batch::Batcher>,
    pub requests: Arc<RequestCounts>,
    /// The tenant's id, once looked up.
    tenant_guid: tokio::sync::OnceCell<String>,
}

/// Builds the HTTP client: rustls, certificate checks always on, no redirects (a redirect must
/// never carry our bearer token to another host).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(64)
        .user_agent(concat!("remediate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up HTTPS: {e}"))
}

/// Words for a transport error, without the URL's query (which may name a mailbox).
pub fn describe_transport(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the connection broke while reading the answer"
    } else if error.is_request() {
        "the request failed"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() { kind.to_string() } else { format!("{kind} ({detail})") }
}

/// An HTTP answer, whether it came alone or as an item of a `$batch`.
#[derive(Clone, Debug)]
pub struct RawAnswer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// No answer: the connection failed, timed out or broke. `sent` says whether the service may
/// have received (and acted on) the request.
#[derive(Clone, Debug)]
pub struct Transport {
    pub sent: bool,
    pub message: String,
}

/// The largest answer accepted from Graph or Exchange: a page of 1,000 mailboxes is well under
/// a megabyte; anything near this is not an answer we asked for.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Reads an answer's body, giving up (as a broken answer) past `cap` bytes, so a hostile or
/// broken endpoint cannot take the memory.
pub async fn read_body(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, Transport> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    let message = format!("the answer was larger than {} MiB; not read further", cap / (1024 * 1024));
                    return Err(Transport { sent: true, message });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(error) => return Err(Transport { sent: true, message: describe_transport(&error) }),
        }
    }
}

/// `x-ms-throttle-limit-percentage` as the share of the limit used. Microsoft documents a fraction
/// from 0.8 to 1.8 ("Identity and access service limits", learn.microsoft.com/graph/
/// throttling-limits); a value over 2 can only be a percentage, and is read as one.
pub fn limit_fraction(header: &str) -> Option<f64> {
    let value: f64 = header.trim().trim_end_matches('%').parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some(if value > 2.0 { value / 100.0 } else { value })
}

/// How long to hold Exchange requests after it throttled without a `Retry-After`: public clients
/// that run on real tenants wait 3 s times the attempt (ExoHelper's Invoke-ExoCommand); a
/// quarter of jitter keeps the workers that were refused together from returning together.
pub fn exchange_backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(3) * attempt.clamp(1, 10);
    base.mul_f64(0.75 + fastrand::f64() * 0.5)
}

/// Sends a request and reads its whole answer (at most [`MAX_BODY`]).
pub async fn receive(request: reqwest::RequestBuilder) -> Result<RawAnswer, Transport> {
    receive_at_most(request, MAX_BODY).await
}

/// Sends a request and reads its whole answer, giving up past `cap` bytes.
pub async fn receive_at_most(request: reqwest::RequestBuilder, cap: usize) -> Result<RawAnswer, Transport> {
    let response = request
        .send()
        .await
        .map_err(|error| Transport { sent: !error.is_connect(), message: describe_transport(&error) })?;
    let status = response.status().as_u16();
    let headers = header_pairs(response.headers());
    let body = read_body(response, cap).await?;
    Ok(RawAnswer { status, headers, body })
}

pub fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers.iter().filter_map(|(k, v)| Some((k.as_str().to_lowercase(), v.to_str().ok()?.to_string()))).collect()
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
        let http_for_batch = http.clone();
        let graph_base = endpoints.graph.clone();
        CloudClient {
            http,
            graph_scope: format!("{}/.default", endpoints.graph_resource.trim_end_matches('/')),
            exchange_scope: format!("{}/.default", endpoints.exchange_resource.trim_end_matches('/')),
            endpoints,
            tenant_id,
            tokens,
            graph_pacer: Pacer::new("graph", pacing.graph_rps, None, pacing.adaptive),
            graph_write_pacer: Pacer::new("graph-writes", pacing.graph_write_rps, None, pacing.adaptive),
            exchange_pacer: Pacer::new(
                "exchange",
                pacing.exchange_rps,
                Some(pacing.exchange_inflight),
                pacing.adaptive,
            ),
            policy,
            batcher: pacing
                .batch
                .then(|| batch::Batcher::start(http_for_batch, &graph_base, policy.timeout, requests.clone())),
            requests,
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

    /// Each pacer's rate and measured budget: graph, graph writes, exchange.
    pub fn pacing(&self) -> [pacer::PacerState; 3] {
        [self.graph_pacer.state(), self.graph_write_pacer.state(), self.exchange_pacer.state()]
    }

    pub fn throttled_count(&self) -> u64 {
        self.graph_pacer.throttled_count()
            + self.graph_write_pacer.throttled_count()
            + self.exchange_pacer.throttled_count()
    }

    fn resource(&self, api: Api) -> (Resource<'_>, &str) {
        match api {
            Api::Graph => (Resource { slot: 0, scope: &self.graph_scope }, &self.endpoints.graph),
            Api::Exchange => (Resource { slot: 1, scope: &self.exchange_scope }, &self.endpoints.exchange),
        }
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
        if let (Api::Graph, Some(batcher)) = (call.api, &self.batcher) {
            let (version, url) = call.path.split_once('/').unwrap_or(("v1.0", &call.path));
            let (answer, wait) = tokio::sync::oneshot::channel();
            let mut headers = call.headers.clone();
            headers.push(("client-request-id", client_request_id.to_string()));
            let item = batch::Item {
                method: call.method.clone(),
                url: format!("/{url}"),
                headers,
                body: call.body.clone(),
                token: token.clone(),
                answer,
            };
            if batcher.submit(version, item) {
                return wait
                    .await
                    .unwrap_or_else(|_| Err(Transport { sent: true, message: "the batch was dropped".into() }));
            }
        }
        let mut request = self
            .http
            .request(call.method.clone(), format!("{}/{}", base.trim_end_matches('/'), call.path))
            .bearer_auth(token.expose())
            .header("client-request-id", client_request_id)
            .header("return-client-request-id", "true")
            .timeout(self.policy.timeout);
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let result = receive(request).await;
        self.requests.add(call.api, result.as_ref().map_or(0, |answer| answer.status));
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
            Api::Graph => &self.graph_pacer,
            Api::Exchange => &self.exchange_pacer,
        };
        if call.write && call.api == Api::Graph {
            self.graph_write_pacer.acquire().await;
        }
        let slot = pacer.acquire().await;
        let (resource, base) = self.resource(call.api);
        let token = self.tokens.token(resource).await.map_err(|e| CallError::Auth(e.to_string()))?;
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let started = tokio::time::Instant::now();
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
