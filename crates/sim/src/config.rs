//! What shapes a simulated tenant: its size and seed, the service's budgets, latency and faults,
//! the app registration, and the layers that decide whether a device may send with SMTP AUTH.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::tenant::{Population, Uniform};
use super::tokens::{AppRegistration, rsa_public_key};

/// Everything that shapes a simulated tenant. [`SimConfig::default`] has the documented budgets of
/// a large tenant (over 500 users), no latency and no faults.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub population: Population,
    pub seed: u64,
    /// Throttling on or off (`--no-throttle`).
    pub throttle: bool,
    /// Graph identity resource units per second, and the window the bucket holds (8,000 per 10 s).
    pub graph_rate: f64,
    pub graph_window: Duration,
    /// Graph writes per second, and the window (3,000 per 150 s).
    pub graph_write_rate: f64,
    pub graph_write_window: Duration,
    /// Exchange admin API requests per second and window; no published numbers, ours are an
    /// assumption on the safe side.
    pub exchange_rate: f64,
    pub exchange_window: Duration,
    /// Exchange requests in flight per tenant before 429 "maximum number of concurrent requests".
    pub exchange_inflight: usize,
    /// Whether answers past 0.8 of the Graph budget carry `x-ms-throttle-limit-percentage`
    /// (documented; public clients report never seeing it, so pacing must work without it).
    pub limit_percentage_header: bool,
    /// Permissions the app was not granted (403 `Authorization_RequestDenied`), and Exchange roles
    /// it was not assigned ("Audit Logs": its cmdlets are unknown to the app).
    pub deny_permissions: Vec<String>,
    /// Mean latency; each answer waits 50–150 % of it.
    pub latency: Duration,
    /// Share of requests that fail transiently.
    pub fault_rate: f64,
    /// How long a "slow" fault holds its reply (longer than any sane client timeout).
    pub slow_reply: Duration,
    /// With faults on, some writes also lose their connection at once and land this long after
    /// (`--late-landing`); a client must not read them back, or write again, before its own
    /// request timeout has passed. `None`: no write lands late.
    pub late_landing: Option<Duration>,
    pub token_lifetime: Duration,
    /// DER certificate registered on the app, for client assertions.
    pub client_certificate: Option<Vec<u8>>,
    /// A workload identity token the app trusts as a client assertion.
    pub federated_token: Option<String>,
    /// Start (a share of) the users with these values instead of the seeded mix.
    pub uniform: Uniform,
    /// The app's client id and secret, when they must match another tenant's (one multi-tenant
    /// app registration consented in several tenants); derived from the seed otherwise.
    pub client: Option<(String, String)>,
    /// The share of mailboxes whose device signed in with SMTP AUTH over the last 30 days.
    pub smtp_sign_ins: f64,
    /// Whether the tenant has Entra ID P1 or P2 (without it the sign-in log cannot be read).
    pub premium: bool,
    /// The share of mailboxes seeded with the layers that stop a device sending with SMTP AUTH,
    /// alone and combined, and with look-alikes that must not stop it (see [`super::blockers`]).
    /// 0.0 leaves the tenant exactly as it was before those layers were modelled.
    pub smtp_blockers: f64,
    /// Start as an existing tenant after the end of December 2026, when Basic authentication for
    /// SMTP AUTH is off by default (Exchange Team blog, 27 January 2026). Microsoft documents no
    /// cmdlet or property for it, so nothing but a device's SMTP reply shows it.
    pub basic_smtp_off: bool,
    /// Whether security defaults start on (they do in a tenant created since October 2019, and
    /// in the simulator unless told otherwise). Entra enforces Conditional Access policies only
    /// once they are off, so a tenant started without them has a sign-in log in which the seeded
    /// policies show.
    pub security_defaults: bool,
    /// Serve the instance metadata path as Azure Arc's hybrid metadata service does, writing its
    /// challenge keys in this directory (`--azure-arc DIR`).
    pub azure_arc: Option<std::path::PathBuf>,
    /// Also serve Service Fabric's managed identity endpoint, over HTTPS on a second port of the
    /// same address with a self-signed certificate (`--managed-identity=service-fabric`).
    pub service_fabric: bool,
    /// How long each page of the sign-in log takes beyond `latency` (`--sign-in-latency`): on a
    /// large tenant's log, filtered pages take minutes.
    pub sign_in_latency: Duration,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            population: Population::Generated { count: 100 },
            seed: 1,
            throttle: true,
            graph_rate: 800.0,
            graph_window: Duration::from_secs(10),
            graph_write_rate: 20.0,
            graph_write_window: Duration::from_secs(150),
            exchange_rate: 25.0,
            exchange_window: Duration::from_secs(10),
            exchange_inflight: 5,
            limit_percentage_header: true,
            deny_permissions: Vec::new(),
            latency: Duration::ZERO,
            fault_rate: 0.0,
            slow_reply: Duration::from_secs(120),
            late_landing: None,
            token_lifetime: Duration::from_secs(3599),
            client_certificate: None,
            federated_token: None,
            uniform: Uniform::default(),
            client: None,
            smtp_sign_ins: 0.0,
            premium: true,
            smtp_blockers: 0.0,
            basic_smtp_off: false,
            security_defaults: true,
            azure_arc: None,
            service_fabric: false,
            sign_in_latency: Duration::ZERO,
        }
    }
}

impl SimConfig {
    /// The app registration this seed produces: tenant id, client id and secret.
    pub fn app_registration(&self) -> AppRegistration {
        let mut rng = fastrand::Rng::with_seed(self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut uuid = || uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes()).into_uuid().to_string();
        let tenant_id = uuid();
        let client_id = uuid();
        let domain = format!("contoso{}.onmicrosoft.com", &tenant_id[..8]);
        let secret: String = (0..40).map(|_| rng.alphanumeric()).collect();
        let identity_header: String = (0..32).map(|_| rng.alphanumeric()).collect();
        let (client_id, client_secret) = self.client.clone().unwrap_or((client_id, format!("sim~{secret}")));
        AppRegistration {
            tenant_id,
            domain,
            client_id,
            client_secret,
            certificate: self.client_certificate.clone(),
            federated_token: self.federated_token.clone(),
            identity_header,
        }
    }

    /// Reads a PEM file and keeps its first certificate (DER) as the app's registered certificate.
    pub fn load_client_certificate(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let blocks = pem::parse_many(text).map_err(|e| format!("{} is not PEM: {e}", path.display()))?;
        let certificate = blocks
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| format!("{} holds no CERTIFICATE block", path.display()))?;
        if rsa_public_key(certificate.contents()).is_none() {
            return Err(format!("the certificate in {} has no RSA public key", path.display()));
        }
        self.client_certificate = Some(certificate.into_contents());
        Ok(())
    }
}
