//! The one door from the commands to the simulated tenant: `--simulate` (a tenant in process,
//! which yields endpoints and a credential for [`super::connection::build`]) and `remediate sim`
//! (serve one until Ctrl-C, after printing the `export` lines that point the runner at it).
//! A build without the `simulator` feature has neither, and says so.

#[cfg(feature = "simulator")]
pub(crate) use with_simulator::*;
#[cfg(not(feature = "simulator"))]
pub(super) use without_simulator::*;

#[cfg(not(feature = "simulator"))]
mod without_simulator {
    use super::super::Connection;
    use crate::error::{Error, Result};
    use crate::run::tuning::Tuning;

    /// Nothing: this build has no simulated tenant.
    pub(crate) enum SimulatedTenant {}

    fn absent() -> Error {
        Error::Usage("--simulate: this build of remediate has no simulated tenant (it was built without the `simulator` feature)".into())
    }

    pub(crate) async fn simulate(_identities: Vec<String>, _tuning: &Tuning) -> Result<Connection> {
        Err(absent())
    }

    pub(crate) async fn simulate_generated(_tuning: &Tuning) -> Result<Connection> {
        Err(absent())
    }
}

#[cfg(feature = "simulator")]
mod with_simulator {
    use std::io::Write;
    use std::sync::Arc;

    use super::super::Connection;
    use super::super::connection::build;
    use crate::cli::{ManagedIdentityForm, SimArgs};
    use crate::cloud::Endpoints;
    use crate::cloud::auth::Credential;
    use crate::error::{Error, Result, exit};
    use crate::run::tuning::Tuning;
    use crate::support::secret::SecretString;
    use remediate_sim::{Population, SimConfig, Simulator};

    /// A simulated tenant serving in this process; dropping it stops it.
    pub(crate) struct SimulatedTenant(
        #[expect(dead_code, reason = "held, never read: dropping it stops the simulated tenant")] Simulator,
    );

    /// Starts an in-process simulated tenant holding a mailbox for each identity, and connects to it.
    pub(crate) async fn simulate(identities: Vec<String>, tuning: &Tuning) -> Result<Connection> {
        simulate_population(Population::Identities(Arc::new(identities)), tuning).await
    }

    /// `--simulate` without a CSV (`--all-mailboxes`): a seeded tenant of 1,000 users.
    pub(crate) async fn simulate_generated(tuning: &Tuning) -> Result<Connection> {
        simulate_population(Population::Generated { count: 1000 }, tuning).await
    }

    async fn simulate_population(population: Population, tuning: &Tuning) -> Result<Connection> {
        let config = SimConfig { population, ..SimConfig::default() };
        let simulator = Simulator::start(config)
            .await
            .map_err(|e| Error::Usage(format!("--simulate: cannot start the simulated tenant: {e}")))?;
        let url = simulator.url();
        let app = simulator.app().clone();
        let endpoints = Endpoints {
            login: url.clone(),
            graph: url.clone(),
            exchange: url,
            ..Endpoints::of(crate::cloud::CloudName::Global)
        };
        let credential = Credential::Secret(SecretString::new(app.client_secret));
        let mut connection = build(endpoints, app.tenant_id, app.client_id, credential, tuning)?;
        connection.simulated = Some(SimulatedTenant(simulator));
        Ok(connection)
    }

    fn config_from_args(args: &SimArgs, identities: Option<Vec<String>>) -> Result<SimConfig> {
        let mut config = SimConfig {
            listen: args.listen,
            population: match identities {
                Some(identities) => Population::Identities(Arc::new(identities)),
                None => Population::Generated { count: args.mailboxes },
            },
            seed: args.seed,
            throttle: !args.no_throttle,
            graph_rate: args.graph_rate,
            graph_write_rate: args.graph_write_rate,
            exchange_rate: args.exchange_rate,
            exchange_inflight: args.exchange_inflight,
            limit_percentage_header: !args.no_limit_percentage,
            deny_permissions: args.deny_permission.clone(),
            smtp_sign_ins: args.smtp_sign_ins,
            premium: !args.no_premium,
            smtp_blockers: args.smtp_blockers,
            basic_smtp_off: args.basic_smtp_off,
            security_defaults: !args.no_security_defaults,
            latency: std::time::Duration::from_millis(args.latency),
            fault_rate: args.fault_rate,
            slow_reply: args.slow_reply,
            late_landing: args.late_landing,
            azure_arc: args.azure_arc.clone(),
            service_fabric: args.managed_identity == Some(ManagedIdentityForm::ServiceFabric),
            sign_in_latency: args.sign_in_latency.unwrap_or_default(),
            token_lifetime: args.token_lifetime,
            ..SimConfig::default()
        };
        if let Some(window) = args.throttle_window {
            config.graph_window = window;
            config.graph_write_window = window;
            config.exchange_window = window;
        }
        config.uniform.share = args.set_all_share;
        for assignment in &args.set_all {
            match assignment.split_once('=').map(|(s, v)| (s.trim(), v.trim())) {
                Some(("smtp-auth", "enabled")) => config.uniform.smtp_auth_disabled = Some(Some(false)),
                Some(("smtp-auth", "disabled")) => config.uniform.smtp_auth_disabled = Some(Some(true)),
                Some(("smtp-auth", "inherit")) => config.uniform.smtp_auth_disabled = Some(None),
                Some(("per-user-mfa", value)) if remediate_sim::MfaState::parse(value).is_some() => {
                    config.uniform.mfa = remediate_sim::MfaState::parse(value);
                }
                _ => {
                    return Err(Error::Usage(format!(
                        "--set-all {assignment}: use smtp-auth=enabled|disabled|inherit or per-user-mfa=disabled|enabled|enforced"
                    )));
                }
            }
        }
        if let Some(path) = &args.client_certificate {
            config.load_client_certificate(path).map_err(|e| Error::Usage(format!("--client-certificate: {e}")))?;
        }
        if let Some(path) = &args.federated_token_file {
            let token = std::fs::read_to_string(path)
                .map_err(|e| Error::Usage(format!("--federated-token-file {}: {e}", path.display())))?;
            config.federated_token = Some(token.trim().to_string());
        }
        Ok(config)
    }

    /// The valid identities of a CSV, in order (what a simulated tenant is seeded from).
    fn identities(path: &std::path::Path, column: Option<&str>) -> Result<Vec<String>> {
        let entries = crate::targets::open(path, column)?;
        Ok(entries.filter_map(crate::targets::Entry::into_target).map(|t| t.identity).collect())
    }

    pub(crate) async fn serve(args: SimArgs) -> Result<u8> {
        let identities = args.from.as_deref().map(|path| identities(path, args.column.as_deref())).transpose()?;
        let config = config_from_args(&args, identities)?;
        let simulator = Simulator::start(config)
            .await
            .map_err(|e| Error::Usage(format!("--listen {}: cannot listen there: {e}", args.listen)))?;
        let mut stdout = std::io::stdout().lock();
        let lines = match args.managed_identity {
            None => simulator.environment_lines(),
            Some(ManagedIdentityForm::MachineLearning) => simulator.machine_learning_lines(),
            Some(ManagedIdentityForm::CloudShell) => simulator.cloud_shell_lines(),
            Some(ManagedIdentityForm::AppService) => simulator.managed_identity_lines(),
            Some(ManagedIdentityForm::ServiceFabric) => simulator
                .service_fabric_lines()
                .ok_or_else(|| Error::Usage("--managed-identity=service-fabric: the endpoint did not start".into()))?,
        };
        let announced = writeln!(stdout, "{lines}listening on {}", simulator.url()).and_then(|_| stdout.flush());
        drop(stdout);
        announced.map_err(Error::io("stdout"))?;
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping the simulated tenant");
        simulator.stop().await;
        Ok(exit::SUCCESS)
    }
}
