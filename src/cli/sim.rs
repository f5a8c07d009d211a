//! `remediate sim`'s options: the simulated tenant's size, budgets, latency and faults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{parse_duration, positive_rate};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on (loopback only unless you mean it).
    #[arg(long, default_value = "127.0.0.1:8400", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Generate this many users with a realistic mix of kinds and settings.
    #[arg(long, default_value_t = 1000, conflicts_with = "from")]
    pub mailboxes: usize,

    /// Make one mailbox for every row of this target CSV instead (#EXT# rows become guests).
    #[arg(long, value_name = "CSV")]
    pub from: Option<PathBuf>,

    /// The column of --from that names each mailbox.
    #[arg(long, value_name = "NAME", requires = "from")]
    pub column: Option<String>,

    /// Seed for the tenant, the app's credentials, latency and faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Turn all throttling off.
    #[arg(long)]
    pub no_throttle: bool,

    /// Graph identity resource units per second (8,000 per 10 s for a large tenant).
    #[arg(long, default_value_t = 800.0, value_parser = positive_rate)]
    pub graph_rate: f64,

    /// Graph writes per second (3,000 per 150 s).
    #[arg(long, default_value_t = 20.0, value_parser = positive_rate)]
    pub graph_write_rate: f64,

    /// The most Exchange admin API requests a second.
    #[arg(long, default_value_t = 25.0, value_parser = positive_rate)]
    pub exchange_rate: f64,

    /// Exchange admin API requests in flight per tenant.
    #[arg(long, default_value_t = 5)]
    pub exchange_inflight: usize,

    /// Never send `x-ms-throttle-limit-percentage` (documented, but public clients report never
    /// seeing it): rehearse pacing from 429s alone.
    #[arg(long)]
    pub no_limit_percentage: bool,

    /// Length of every throttling window (default: 10 s for Graph units, 150 s for writes, 10 s for
    /// Exchange): a short one makes throttling bite in a short rehearsal.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub throttle_window: Option<Duration>,

    /// Mean latency of every answer in milliseconds (each waits 50–150 % of it).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency: u64,

    /// Share of requests that fail transiently (0.0 to 1.0): 503, 504, dropped, too slow.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub fault_rate: f64,

    /// How long a "slow" fault holds its reply.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub slow_reply: Duration,

    /// With --fault-rate, some writes also lose their connection at once and are carried out this
    /// long after (keep it under the client's --request-timeout): a rehearsal of a write whose
    /// answer never came but which landed all the same.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub late_landing: Option<Duration>,

    /// How long each page of the sign-in log takes (on top of --latency), as a large tenant's
    /// filtered pages do (minutes): rehearses the day-by-day reading of `usage` and `diagnose`.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub sign_in_latency: Option<Duration>,

    /// Serve the instance metadata path as Azure Arc's hybrid metadata service: a token request
    /// is answered 401 with a challenge naming a key file written in DIR, and the request sent
    /// again with that key gets the token.
    #[arg(long, value_name = "DIR")]
    pub azure_arc: Option<PathBuf>,

    /// Lifetime of the access tokens handed out.
    #[arg(long, default_value = "3599s", value_parser = parse_duration)]
    pub token_lifetime: Duration,

    /// A PEM certificate registered on the app, so client assertions signed with its key work.
    #[arg(long, value_name = "PEM")]
    pub client_certificate: Option<PathBuf>,

    /// A file holding a workload identity token the app trusts.
    #[arg(long, value_name = "FILE")]
    pub federated_token_file: Option<PathBuf>,

    /// Print the export lines of the tenant's managed identity endpoints instead of a client
    /// secret: App Service's IDENTITY_ENDPOINT and IDENTITY_HEADER and the instance metadata
    /// service's host; or, with =machine-learning, Azure Machine Learning's MSI_ENDPOINT and
    /// MSI_SECRET; or, with =cloud-shell, Cloud Shell's MSI_ENDPOINT; or, with =service-fabric,
    /// Service Fabric's IDENTITY_ENDPOINT (HTTPS on a second port), IDENTITY_HEADER and
    /// IDENTITY_SERVER_THUMBPRINT (each unsetting what would take precedence over it).
    #[arg(
        long,
        value_enum,
        value_name = "FORM",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "app-service"
    )]
    pub managed_identity: Option<ManagedIdentityForm>,

    /// A permission the app was not granted (e.g. Policy.ReadWrite.SecurityDefaults); repeatable.
    #[arg(long, value_name = "NAME")]
    pub deny_permission: Vec<String>,

    /// Start every mailbox with this value instead of the seeded mix, e.g. smtp-auth=disabled or
    /// per-user-mfa=enforced (an already compliant tenant); repeatable.
    #[arg(long, value_name = "SETTING=VALUE")]
    pub set_all: Vec<String>,

    /// The share of mailboxes --set-all applies to, chosen at random from the seed and spread over
    /// the tenant (the rest keep the seeded mix).
    #[arg(long, default_value_t = 1.0, value_parser = fraction)]
    pub set_all_share: f64,

    /// The share of mailboxes whose device signed in with SMTP AUTH over the last 30 days (some
    /// failing), served by GET /auditLogs/signIns.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, value_name = "SHARE")]
    pub smtp_sign_ins: f64,

    /// Answer as a tenant without Entra ID P1 or P2: the sign-in log is refused with 403.
    #[arg(long)]
    pub no_premium: bool,

    /// The share of mailboxes seeded with what stops a device sending with SMTP AUTH, alone and
    /// combined (SMTP AUTH off, authentication policies, Conditional Access, sign-in blocked,
    /// per-user MFA), and with look-alikes that must not (report-only and disabled policies,
    /// exclusions, other apps and client types); POST /_sim/smtp-submit answers as the device
    /// would. 0 leaves the tenant as it always was.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, value_name = "SHARE")]
    pub smtp_blockers: f64,

    /// Start as an existing tenant after the end of December 2026, with Basic authentication for
    /// SMTP AUTH off by default (no API shows it; devices get 550 5.7.30).
    #[arg(long)]
    pub basic_smtp_off: bool,

    /// Start with security defaults off (a tenant that enforces Conditional Access instead), so
    /// that the sign-in log seeded with --smtp-sign-ins shows the policies --smtp-blockers seeds.
    #[arg(long)]
    pub no_security_defaults: bool,
}

fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("'{text}' is not a number from 0.0 to 1.0")),
    }
}

/// Which managed identity endpoints `remediate sim --managed-identity` points the runner at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ManagedIdentityForm {
    /// App Service's IDENTITY_ENDPOINT and IDENTITY_HEADER, and the instance metadata service.
    AppService,
    /// Azure Machine Learning's MSI_ENDPOINT and MSI_SECRET.
    MachineLearning,
    /// Cloud Shell's MSI_ENDPOINT.
    CloudShell,
    /// Service Fabric's IDENTITY_ENDPOINT, IDENTITY_HEADER and IDENTITY_SERVER_THUMBPRINT, served
    /// over HTTPS with a self-signed certificate on a second port.
    ServiceFabric,
}
