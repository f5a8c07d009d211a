//! `remediate sim`: serve a simulated tenant until Ctrl-C, after printing the `export` lines that
//! point the runner at it.

use std::io::Write;
use std::sync::Arc;

use crate::cli::SimArgs;
use crate::error::{Error, Result, exit};
use crate::sim::{Population, SimConfig, Simulator};

pub fn config_from_args(args: &SimArgs, identities: Option<Vec<String>>) -> Result<SimConfig> {
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
        latency: std::time::Duration::from_millis(args.latency),
        fault_rate: args.fault_rate,
        slow_reply: args.slow_reply,
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
            Some(("per-user-mfa", value)) if crate::sim::MfaState::parse(value).is_some() => {
                config.uniform.mfa = crate::sim::MfaState::parse(value);
            }
            _ => {
                return Err(Error::Config(format!(
                    "--set-all {assignment}: use smtp-auth=enabled|disabled|inherit or per-user-mfa=disabled|enabled|enforced"
                )));
            }
        }
    }
    if let Some(path) = &args.client_certificate {
        config.load_client_certificate(path).map_err(|e| Error::Config(format!("--client-certificate: {e}")))?;
    }
    if let Some(path) = &args.federated_token_file {
        let token = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("--federated-token-file {}: {e}", path.display())))?;
        config.federated_token = Some(token.trim().to_string());
    }
    Ok(config)
}

pub async fn serve(args: SimArgs) -> Result<u8> {
    let identities =
        args.from.as_deref().map(|path| crate::targets::identities(path, args.column.as_deref())).transpose()?;
    let config = config_from_args(&args, identities)?;
    let simulator = Simulator::start(config)
        .await
        .map_err(|e| Error::Config(format!("--listen {}: cannot listen there: {e}", args.listen)))?;
    let mut stdout = std::io::stdout().lock();
    let announced = writeln!(stdout, "{}listening on {}", simulator.environment_lines(), simulator.url())
        .and_then(|_| stdout.flush());
    drop(stdout);
    announced.map_err(Error::io("stdout"))?;
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping the simulated tenant");
    simulator.stop().await;
    Ok(exit::SUCCESS)
}
