//! The arguments every run against a tenant shares: the connection (which tenant, which
//! credential, which cloud), the tuning (how fast), and where the report and state go.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{BulkRead, CloudName, CredentialKind, OutputFormat, ranges};
use crate::run::tuning::Tuning;

/// What every run against a tenant takes: where, how fast, where the report and state go.
#[derive(Debug, Args)]
pub struct SessionArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub tuning: TuningArgs,

    /// Where the report goes (default: ./remediate-<command>-<UTC timestamp>/).
    #[arg(help_heading = "Output", long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,

    /// Where the per-tenant locks and the budgets measured live (default: ~/.cache/remediate).
    #[arg(help_heading = "Output", long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// What stdout gets at the end: the story and the recap as text, or the summary (as in
    /// summary.json, with `report_dir`) as one JSON object for a script to read.
    #[arg(help_heading = "Output", long, value_enum, default_value_t = OutputFormat::Text, value_name = "FORMAT")]
    pub output: OutputFormat,

    /// After Ctrl-C or SIGTERM, how long requests in flight may take before they are abandoned.
    #[arg(help_heading = "Safety", long, default_value = "30s", value_parser = ranges::wait("--grace"), value_name = "DURATION")]
    pub grace: Duration,
}

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectionArgs {
    /// The tenant's id (a GUID) or its initial domain.
    #[arg(long, env = "AZURE_TENANT_ID", value_name = "ID")]
    pub tenant_id: Option<String>,

    /// The app registration's application (client) id. The secret comes from AZURE_CLIENT_SECRET
    /// or --client-secret-file, a certificate from AZURE_CLIENT_CERTIFICATE_PATH, workload identity
    /// from AZURE_FEDERATED_TOKEN_FILE; never from an argument.
    #[arg(long, env = "AZURE_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,

    /// A file holding the client secret (keep it readable by you alone).
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,

    /// The credential to sign in with (default: the first that is set up, in this order: secret,
    /// certificate, workload identity, managed identity of App Service or Functions, the Azure
    /// CLI's account; a VM's managed identity only when named). The log says which was used.
    #[arg(long, value_enum, value_name = "KIND")]
    pub credential: Option<CredentialKind>,

    /// The Microsoft cloud: sets the default login, Graph and Exchange hosts.
    #[arg(long, value_enum, default_value_t = CloudName::Global)]
    pub cloud: CloudName,

    /// Token endpoint base URL (default: AZURE_AUTHORITY_HOST, else the cloud's login host).
    #[arg(long, env = "REMEDIATE_LOGIN_URL", value_name = "URL")]
    pub login_url: Option<String>,

    /// The identity platform's host, as azure-identity reads it (the AKS workload-identity
    /// webhook sets it); --login-url wins.
    #[arg(long, env = "AZURE_AUTHORITY_HOST", value_name = "URL")]
    pub authority_host: Option<String>,

    /// Microsoft Graph base URL (default: the cloud's Graph host).
    #[arg(long, env = "REMEDIATE_GRAPH_URL", value_name = "URL")]
    pub graph_url: Option<String>,

    /// Exchange Online base URL (default: the cloud's Exchange host).
    #[arg(long, env = "REMEDIATE_EXCHANGE_URL", value_name = "URL")]
    pub exchange_url: Option<String>,
}

#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Tuning")]
pub struct TuningArgs {
    /// Targets worked on at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096), value_name = "N")]
    pub concurrency: u32,

    /// A safety ceiling on Graph requests a second. The rate itself needs no flag: it starts from
    /// the budget the last run on this tenant measured (else from what the smallest tenants allow),
    /// and settles just under the budget the service's answers show (350–800 resource units a
    /// second; a read costs 1–2).
    #[arg(long, default_value_t = 2000.0, value_parser = ranges::rate("--graph-rps"), value_name = "PER_SECOND")]
    pub graph_rps: f64,

    /// A safety ceiling on Graph writes a second (the service allows about 20 per app and tenant).
    #[arg(long, default_value_t = 100.0, value_parser = ranges::rate("--graph-write-rps"), value_name = "PER_SECOND")]
    pub graph_write_rps: f64,

    /// A safety ceiling on Exchange admin API requests a second.
    #[arg(long, default_value_t = 100.0, value_parser = ranges::rate("--exchange-rps"), value_name = "PER_SECOND")]
    pub exchange_rps: f64,

    /// Exchange admin API requests in flight at once (the service allows a few per tenant).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64), value_name = "N")]
    pub exchange_inflight: u32,

    /// Attempts per request, the first included, before a transient error counts as a failure.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100), value_name = "N")]
    pub max_attempts: u32,

    /// How long one request may take: 30, 30s, 500ms, 2m.
    #[arg(long, default_value = "30s", value_parser = ranges::wait("--request-timeout"), value_name = "DURATION")]
    pub request_timeout: Duration,

    /// Send every Graph request on its own instead of in `$batch` requests of up to 20.
    #[arg(long)]
    pub no_batch: bool,

    /// Send at the ceilings throughout: no warm-up, no remembered budgets, no slowing down on 429
    /// or a nearly spent budget (a 429 still pauses every worker until its Retry-After).
    #[arg(long)]
    pub fixed_rate: bool,

    /// Read SMTP AUTH for every mailbox of the tenant in pages of 1,000 instead of one request per
    /// target: `auto` does so from 1,000 targets on.
    #[arg(long, value_enum, default_value_t = BulkRead::Auto, value_name = "WHEN")]
    pub bulk_read: BulkRead,
}

impl From<&TuningArgs> for Tuning {
    fn from(args: &TuningArgs) -> Tuning {
        Tuning {
            concurrency: args.concurrency,
            graph_rps: args.graph_rps,
            graph_write_rps: args.graph_write_rps,
            exchange_rps: args.exchange_rps,
            exchange_inflight: args.exchange_inflight,
            max_attempts: args.max_attempts,
            request_timeout: args.request_timeout,
            no_batch: args.no_batch,
            fixed_rate: args.fixed_rate,
            bulk_read: args.bulk_read,
        }
    }
}
