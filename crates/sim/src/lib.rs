//! The simulated tenant: Microsoft Graph, the Exchange Online admin API and the token endpoint on
//! localhost, with the service's paths, JSON shapes, error bodies, tokens, throttling and faults.
//!
//! Every test and benchmark of the runner talks to it, `--simulate` runs on it, and `remediate sim`
//! serves it to users who want to rehearse a run. It is only useful while it is as strict as the
//! real service (each behaviour cites the Microsoft page or public client it follows, and
//! `tests/contract` holds it to their examples): being kinder would make every test a lie.

mod auth_policy;
mod blockers;
mod budget;
mod conditional_access;
mod config;
mod directory;
mod exchange;
mod exports;
mod faults;
mod graph;
mod reply;
mod server;
mod service_fabric;
mod sign_ins;
mod smtp_submit;
mod snapshot;
mod stats;
pub mod tenant;
mod tokens;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use config::SimConfig;

pub use exchange::{ClientAccess, MailboxProperties, RecipientTypeDetails};
pub use tenant::{MfaState, Population, Tenant, Uniform};
pub use tokens::{AppRegistration, rsa_public_key, thumbprint};

use budget::{Bucket, Budgets, InFlight};
use faults::Faults;
use stats::Stats;
use tokens::TokenIssuer;

/// A request as the simulator received it, for tests that check exactly what was sent.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReceivedRequest {
    pub method: String,
    /// The raw path and query, as sent (still percent-encoded).
    pub target: String,
    pub body: String,
}

const REQUEST_LOG_SIZE: usize = 10_000;

/// The state behind the HTTP routes.
pub struct Service {
    config: SimConfig,
    base_url: String,
    tenant: Mutex<Tenant>,
    /// The SMTP AUTH sign-ins of the last 30 days, seeded at start.
    sign_ins: sign_ins::SignInLog,
    tokens: TokenIssuer,
    budgets: Budgets,
    faults: Faults,
    stats: Stats,
    received: Mutex<VecDeque<ReceivedRequest>>,
    /// Writes so far, for tests that act after the Nth write (no polling, no sleeps).
    writes: tokio::sync::watch::Sender<u64>,
    /// Requests received so far (token requests included), for tests that act once a client is
    /// talking to the tenant.
    arrivals: tokio::sync::watch::Sender<u64>,
    /// Writes whose connection dropped and which have yet to land (see `Fault::LandsLate`).
    landing_late: tokio::sync::watch::Sender<u64>,
    /// Held write answers the client gave up on so far (`held_writes_abandoned`): the client's
    /// side of a connection closes before the server's side learns of it, so a test waits here.
    abandoned: tokio::sync::watch::Sender<u64>,
    /// Azure Arc's challenges, when the metadata path is Arc's (`--azure-arc`).
    arc: Option<tokens::arc::ArcChallenges>,
    /// Exchange requests refused for concurrency so far (the two forms of refusal take turns).
    concurrency_refusals: std::sync::atomic::AtomicU64,
}

impl Service {
    fn new(config: SimConfig, base_url: String) -> Service {
        let budgets = Budgets {
            enabled: config.throttle,
            graph_units: Bucket::new(config.graph_rate, config.graph_window),
            graph_writes: Bucket::new(config.graph_write_rate, config.graph_write_window),
            exchange_requests: Bucket::new(config.exchange_rate, config.exchange_window),
            exchange_inflight_cap: config.exchange_inflight,
            exchange_inflight: InFlight::default(),
            // "Identity and access reports service limits": five requests per 10 seconds.
            reports: Bucket::new(0.5, Duration::from_secs(10)),
        };
        let tenant = build_tenant(&config);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // With the SMTP AUTH layers seeded, the log agrees with them (see SignInLog::seed).
        let consistent = config.smtp_blockers > 0.0;
        Service {
            sign_ins: sign_ins::SignInLog::seed(&tenant, config.smtp_sign_ins, config.seed, now, consistent),
            tenant: Mutex::new(tenant),
            tokens: TokenIssuer::new(config.app_registration(), config.token_lifetime),
            faults: Faults::new(config.fault_rate, config.latency, config.seed, config.late_landing),
            budgets,
            stats: Stats::default(),
            received: Mutex::new(VecDeque::new()),
            writes: tokio::sync::watch::Sender::new(0),
            arrivals: tokio::sync::watch::Sender::new(0),
            landing_late: tokio::sync::watch::Sender::new(0),
            abandoned: tokio::sync::watch::Sender::new(0),
            arc: config.azure_arc.clone().map(tokens::arc::ArcChallenges::new),
            concurrency_refusals: Default::default(),
            base_url,
            config,
        }
    }

    fn tenant(&self) -> MutexGuard<'_, Tenant> {
        self.tenant.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn denied(&self, permission: &str) -> bool {
        self.config.deny_permissions.iter().any(|p| p.eq_ignore_ascii_case(permission))
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn record(&self, method: &str, target: &str, body: &[u8]) {
        let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
        if received.len() == REQUEST_LOG_SIZE {
            received.pop_front();
        }
        let body = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
        received.push_back(ReceivedRequest { method: method.to_string(), target: target.to_string(), body });
    }

    fn count_write(&self) {
        stats::bump(&self.stats.writes_total);
        self.writes.send_modify(|n| *n += 1);
    }

    /// Watches the number of writes carried out.
    pub fn writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writes.subscribe()
    }

    /// How many SMTP AUTH sign-ins the seeded log holds from `since` on.
    pub fn sign_ins_since(&self, since: time::OffsetDateTime) -> u64 {
        self.sign_ins.count_since(since)
    }

    /// Waits until every write that lost its connection to land late has landed: a test's
    /// event, so that what it checks next already includes them.
    pub async fn late_writes_landed(&self) {
        let mut pending = self.landing_late.subscribe();
        let _ = pending.wait_for(|&n| n == 0).await;
    }

    fn count_arrival(&self) {
        self.arrivals.send_modify(|n| *n += 1);
    }

    /// Watches the number of requests received.
    pub fn arrivals(&self) -> tokio::sync::watch::Receiver<u64> {
        self.arrivals.subscribe()
    }

    /// A held write answer the client gave up on (its connection dropped this request).
    fn count_abandoned(&self) {
        stats::bump(&self.stats.held_writes_abandoned);
        self.abandoned.send_modify(|n| *n += 1);
    }

    /// Watches the number of held write answers the client gave up on.
    pub fn abandoned_writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.abandoned.subscribe()
    }

    /// No more transient faults from now on (latency stays): the service's bad hour is over.
    pub fn calm_down(&self) {
        self.faults.calm_down();
    }

    /// From now on every access token is refused with 401, freshly issued ones too, as when an
    /// app is disabled or its credentials are cut while a run is under way.
    pub fn reject_every_token(&self) {
        self.tokens.rejecting.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn stats_json(&self) -> Value {
        let max_writes = self.tenant().users.iter().map(|u| u.writes).max().unwrap_or(0);
        self.stats.to_json(max_writes)
    }

    /// Each second's answers from the first request on, `[graph, graph 429s, exchange, exchange
    /// 429s]`: where a run's time went.
    pub fn timeline_json(&self) -> Value {
        self.stats.timeline_json()
    }

    /// The tenant's users and settings, and each user's SMTP AUTH sign-ins (counts, the last
    /// one and its result), so a test can check what a run targeted.
    pub fn state_json(&self) -> Value {
        let tenant = self.tenant();
        let mut state = tenant.snapshot();
        let sign_ins: Vec<Value> = self
            .sign_ins
            .by_user()
            .into_iter()
            .map(|(user, count, failures, last)| {
                let user_record = &tenant.users[user as usize];
                let last_success = self.sign_ins.of_user(user).find(|s| s.error_code == 0).map(|s| s.at);
                json!({
                    "userPrincipalName": &*user_record.upn,
                    "userId": user_record.id.to_string(),
                    "signIns": count,
                    "failures": failures,
                    "lastSeen": last.at,
                    "lastErrorCode": last.error_code,
                    "lastSuccess": last_success,
                })
            })
            .collect();
        state["smtpSignIns"] = sign_ins.into();
        state
    }

    pub fn received_json(&self) -> Value {
        json!(self.received.lock().unwrap_or_else(|e| e.into_inner()).iter().collect::<Vec<_>>())
    }

    /// Restores the seeded tenant and clears the counters and the request log.
    pub fn reset(&self) {
        *self.tenant() = build_tenant(&self.config);
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.stats.clear();
    }
}

/// The tenant a config describes: the seeded directory, then the layers that decide whether a
/// device may send with SMTP AUTH.
fn build_tenant(config: &SimConfig) -> Tenant {
    let mut tenant = Tenant::build_with(&config.population, config.seed, &config.uniform);
    tenant.basic_smtp_auth_enabled = !config.basic_smtp_off;
    tenant.security_defaults_enabled = config.security_defaults;
    blockers::seed(&mut tenant, config.smtp_blockers, config.seed, &config.app_registration().domain);
    tenant
}

/// A running simulated tenant.
pub struct Simulator {
    address: SocketAddr,
    tenants: Arc<server::Tenants>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// Service Fabric's endpoint, when the first config asks for it.
    service_fabric: Option<service_fabric::Endpoint>,
}

impl Simulator {
    /// Binds `config.listen` (use port 0 for any free port) and starts serving.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        Simulator::start_many(vec![config]).await
    }

    /// Serves several tenants (give each its own seed) on one address, as the service does: the
    /// first config's `listen` is used.
    pub async fn start_many(configs: Vec<SimConfig>) -> std::io::Result<Simulator> {
        let first = configs.first().ok_or_else(|| std::io::Error::other("no tenant to serve"))?;
        let (listen, fabric) = (first.listen, first.service_fabric);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let all =
            configs.into_iter().map(|config| Arc::new(Service::new(config, format!("http://{address}")))).collect();
        let tenants = Arc::new(server::Tenants { all });
        let shutdown = CancellationToken::new();
        let router = server::router(tenants.clone());
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(error) = serve.await {
                tracing::error!(%error, "simulated tenant stopped");
            }
        });
        let service_fabric = if fabric {
            let router = server::service_fabric_router(tenants.clone());
            Some(service_fabric::serve(address.ip(), router, shutdown.clone()).await?)
        } else {
            None
        };
        Ok(Simulator { address, tenants, shutdown, task, service_fabric })
    }

    /// Service Fabric's token endpoint (`https://127.0.0.1:PORT/metadata/identity/oauth2/token`)
    /// and the SHA-1 thumbprint of its certificate in hex, when `SimConfig::service_fabric` is set.
    pub fn service_fabric_endpoint(&self) -> Option<(String, String)> {
        let endpoint = self.service_fabric.as_ref()?;
        Some((format!("https://{}{}", endpoint.address, server::METADATA_PATH), endpoint.thumbprint.clone()))
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`: the login, Graph and Exchange base URL all at once.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The (first) tenant's app registration.
    pub fn app(&self) -> &AppRegistration {
        &self.tenants.all[0].tokens.app
    }

    /// The (first) tenant.
    pub fn service(&self) -> &Service {
        &self.tenants.all[0]
    }

    /// Every tenant served, in the order given.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.tenants.all.iter().map(|s| s.as_ref())
    }

    /// A token for `scope` from the token endpoint, fetched as a client holding the (first)
    /// tenant's app secret: for tests and benchmarks that call the endpoints by hand.
    pub async fn client_token(&self, http: &reqwest::Client, scope: &str) -> Result<String, String> {
        let app = self.app();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.as_str()),
            ("scope", scope),
        ];
        let url = format!("{}/{}/oauth2/v2.0/token", self.url(), app.tenant_id);
        let answer: Value = async { http.post(url).form(&form).send().await?.json().await }
            .await
            .map_err(|e| format!("the token endpoint did not answer: {e}"))?;
        answer["access_token"].as_str().map(str::to_string).ok_or_else(|| format!("no token in {answer}"))
    }

    /// Stops serving; replies still held back by a "slow" fault are cut after a second.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if tokio::time::timeout(Duration::from_secs(1), &mut self.task).await.is_err() {
            self.task.abort();
        }
        if let Some(endpoint) = &self.service_fabric {
            endpoint.task.abort();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(endpoint) = &self.service_fabric {
            endpoint.task.abort();
        }
    }
}
