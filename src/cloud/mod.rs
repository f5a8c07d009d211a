//! Talking to Microsoft: the endpoints of each cloud, tokens, pacing, and the one request loop
//! that retries what is transient and reports the rest.
//!
//! Nothing here knows about CSV files or settings; the settings call [`CloudClient::send`] with a
//! [`Call`] and get an [`Answer`] or a [`CallError`].

pub(crate) mod auth;
pub(crate) mod batch;
pub(crate) mod body_budget;
mod client;
pub(crate) mod deadline;
pub(crate) mod exchange;
pub(crate) mod graph;
pub(crate) mod pacer;
mod pages;
pub(crate) mod paths;
pub(crate) mod retry_after;
pub(crate) mod service_error;
mod transport;

pub(crate) use client::CloudClient;
pub(crate) use transport::{RawAnswer, Transport, http_client, is_loopback, receive, receive_at_most};

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// A Microsoft cloud: global, US Government (GCC High), US Government DoD, or China (21Vianet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloudName {
    #[default]
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
    /// The hosts of each cloud, each from the Microsoft page that documents it:
    /// - the token service: "Microsoft Graph national cloud deployments", "App registration and
    ///   token service root endpoints" (learn.microsoft.com/graph/deployments):
    ///   `login.microsoftonline.us` for both US Government clouds, `login.chinacloudapi.cn` for
    ///   21Vianet;
    /// - Graph: the same page, "Microsoft Graph and Graph Explorer service root endpoints";
    /// - Exchange: "Get started with the Exchange Online Admin API", "Supported environments and
    ///   base URLs" (learn.microsoft.com/exchange/reference/admin-api-get-started):
    ///   `outlook.office365.us` for GCC High, `outlook-dod.office365.us` for DoD and
    ///   `outlook.office365.cn` for 21Vianet. (The ExchangeOnlineManagement module's older
    ///   `webmail.apps.mil` and `partner.outlook.cn` are the PowerShell hosts, not the API's.)
    ///
    /// A token is asked for each API's base URL (`<base>/.default`): Graph's SDK page on national
    /// clouds says a scope "MUST use the domain of the Microsoft Graph service root endpoint for
    /// the national cloud deployment", and the Admin API's own pages name its base URL as the
    /// resource.
    pub fn of(cloud: CloudName) -> Endpoints {
        let (login, graph, exchange) = match cloud {
            CloudName::Global => {
                ("https://login.microsoftonline.com", "https://graph.microsoft.com", "https://outlook.office365.com")
            }
            CloudName::Usgov => {
                ("https://login.microsoftonline.us", "https://graph.microsoft.us", "https://outlook.office365.us")
            }
            CloudName::UsgovDod => (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
                "https://outlook-dod.office365.us",
            ),
            CloudName::China => (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                "https://outlook.office365.cn",
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
pub(crate) struct Call {
    pub api: Api,
    pub method: Method,
    /// Path and query after the API's base URL, already encoded (see [`paths`]).
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    /// A write: if its fate is unknown (a timeout, a 504, a dropped connection) it is not simply
    /// sent again; the caller re-reads first.
    pub write: bool,
    /// A read of a page of many objects: slow by nature, so it keeps the full request timeout
    /// (see [`deadline`]); and what others wait on, so it goes ahead of the pacer's line.
    pub page: bool,
    /// A read of Graph's identity and access reports (the sign-in log): a budget of its own, paced
    /// apart from the directory's so its 429s never slow the run's other reads, and sent on its
    /// own rather than in a `$batch`.
    pub reports: bool,
    /// How long one attempt may take when that must be longer than `--request-timeout`: a page
    /// of a large tenant's sign-in log takes minutes.
    pub timeout: Option<std::time::Duration>,
    /// Told each attempt's `client-request-id` as it goes out, past the pacer's line: whoever
    /// watches how long the answer takes counts from there, not from the wait for its turn, and
    /// knows which request to name.
    pub sent: Option<std::sync::Arc<tokio::sync::watch::Sender<Option<Sent>>>>,
    /// Waited on once the call's turn at the pacer has come, before each attempt goes out.
    pub gate: Option<Gate>,
}

/// An attempt as it went out: its `client-request-id`, and when.
#[derive(Clone, Debug)]
pub(crate) struct Sent {
    pub client_request_id: String,
    pub at: tokio::time::Instant,
}

/// What a write waits for between its turn at the pacer and going out: its intent on disk (the
/// engine's journal). The intent is appended before the write joins the pacer's line, so by its
/// turn a sync has usually covered it, and one sync covers the many intents in line. An error
/// keeps the write from going out: [`CallError::Local`] with the code [`NOT_RECORDED`].
#[derive(Clone)]
pub(crate) struct Gate(
    pub std::sync::Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, Result<(), String>> + Send + Sync>,
);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

/// The code of a call kept from going out because its gate did not open.
pub(crate) const NOT_RECORDED: &str = "NotRecorded";

/// A successful answer.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
    pub ids: RequestIds,
    pub attempts: u32,
}

/// The identifiers support cases need: ours and the one the service returned.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestIds {
    pub client_request_id: String,
    pub request_id: String,
}

/// Why a call did not succeed.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum CallError {
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
    /// Nothing was sent: the request could not be made here (never a service's answer).
    #[error("{message}")]
    Local { code: &'static str, message: String },
}

impl CallError {
    /// The `error_code` of a row that failed because no token was accepted.
    pub(crate) const AUTH_CODE: &'static str = "AuthenticationFailed";

    pub(crate) fn attempts(&self) -> u32 {
        match self {
            CallError::Refused { attempts, .. }
            | CallError::Exhausted { attempts, .. }
            | CallError::Unknown { attempts, .. } => *attempts,
            CallError::Auth(_) => 1,
            CallError::Local { .. } => 0,
        }
    }

    pub(crate) fn ids(&self) -> RequestIds {
        match self {
            CallError::Refused { ids, .. } | CallError::Exhausted { ids, .. } | CallError::Unknown { ids, .. } => {
                ids.clone()
            }
            CallError::Auth(_) | CallError::Local { .. } => RequestIds::default(),
        }
    }

    pub(crate) fn code(&self) -> String {
        match self {
            CallError::Refused { status, code, .. } if code.is_empty() => status.to_string(),
            CallError::Refused { code, .. } => code.clone(),
            CallError::Exhausted { .. } => "RetriesExhausted".into(),
            CallError::Unknown { .. } => "OutcomeUnknown".into(),
            CallError::Auth(_) => CallError::AUTH_CODE.into(),
            CallError::Local { code, .. } => (*code).into(),
        }
    }

    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, CallError::Refused { status: 404, .. })
    }
}

/// How hard to try.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    pub max_attempts: u32,
    pub timeout: Duration,
}

/// Rates and caps for each API.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacing {
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
pub(crate) struct RequestCounts {
    counts: Mutex<BTreeMap<(Api, u16), u64>>,
}

impl RequestCounts {
    pub(crate) fn add(&self, api: Api, status: u16) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()).entry((api, status)).or_default() += 1;
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<(Api, u16), u64> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

#[cfg(test)]
mod tests;

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
pub(crate) fn exchange_backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(3) * attempt.clamp(1, 10);
    base.mul_f64(0.75 + fastrand::f64() * 0.5)
}

/// A new `client-request-id`: a random (version 4) GUID, which is what the services ask for
/// ("client-request-id", learn.microsoft.com/graph/best-practices-concept). It only has to be
/// unique, not secret, so it comes from a fast generator rather than a system call per request.
pub(crate) fn new_request_id() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid().to_string()
}
