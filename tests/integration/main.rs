//! Integration tests: the simulated tenant over HTTP, and the runner (in process and as the real
//! binary) against it.

mod accounting;
mod apply;
mod benchmark_profiles;
mod chaos;
mod cli_errors;
mod contract;
mod credentials;
mod csv_corpus;
mod faithful;
mod hostile;
mod install_files;
mod logs;
mod promises;
mod protocols;
pub mod readme_cron;
mod rollback_exact;
mod sim_endpoints;
mod sim_layers;
mod sim_throttling;
mod smtp_layers;
mod smtp_usage;
mod support;
mod survival;
mod sweeps;
mod tenants;
