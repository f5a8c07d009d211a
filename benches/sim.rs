//! How fast the simulated tenant answers, and what a million mailboxes cost it.
//!
//! `cargo bench --bench sim` prints one `RESULT` line per measurement:
//! - `requests_per_s`: Graph user lookups and Exchange reads from 64 concurrent clients, unthrottled,
//!   zero latency, for a few seconds; it must stay above 10,000/s on a 2-core machine so the
//!   simulator never limits a benchmark of the runner (the client shares those cores);
//! - `start_s` and `rss_mb` for a 1,000,000-mailbox tenant (must be under 10 s and 1 GiB).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use remediate_sim::{Population, SimConfig, Simulator};
use serde_json::json;

fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

async fn throughput() {
    let config =
        SimConfig { population: Population::Generated { count: 10_000 }, throttle: false, ..SimConfig::default() };
    let sim = Simulator::start(config).await.unwrap();
    let http = reqwest::Client::builder().pool_max_idle_per_host(128).build().unwrap();
    let graph = Arc::new(sim.client_token(&http, "https://graph.microsoft.com/.default").await.unwrap());
    let exchange = Arc::new(sim.client_token(&http, "https://outlook.office365.com/.default").await.unwrap());
    let upns: Arc<Vec<String>> = Arc::new(
        sim.service().state_json()["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userPrincipalName"].as_str().unwrap().to_string())
            .collect(),
    );
    let answered = Arc::new(AtomicU64::new(0));
    let run_for = Duration::from_secs(4);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..64usize {
        let (http, graph, exchange, upns, answered) =
            (http.clone(), graph.clone(), exchange.clone(), upns.clone(), answered.clone());
        let base = sim.url();
        let invoke = format!("{}/adminapi/beta/{}/InvokeCommand", sim.url(), sim.app().tenant_id);
        workers.push(tokio::spawn(async move {
            let mut i = worker;
            while started.elapsed() < run_for {
                let upn = &upns[i % upns.len()];
                let response = if i % 2 == 0 {
                    let url =
                        format!("{base}/v1.0/users/{}?$select=id,mail", upn.replace('#', "%23").replace('\'', "%27"));
                    http.get(url).bearer_auth(graph.as_str()).send().await
                } else {
                    let body =
                        json!({"CmdletInput": {"CmdletName": "Get-CASMailbox", "Parameters": {"Identity": upn}}});
                    http.post(&invoke).bearer_auth(exchange.as_str()).json(&body).send().await
                };
                if let Ok(response) = response {
                    let _ = response.bytes().await;
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                i += 64;
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = answered.load(Ordering::Relaxed);
    println!(
        "RESULT scenario=sim-throughput clients=64 requests={total} wall_s={elapsed:.2} requests_per_s={:.0}",
        total as f64 / elapsed
    );
    sim.stop().await;
}

async fn million() {
    let before = rss_mb("VmRSS:");
    let started = Instant::now();
    let config = SimConfig { population: Population::Generated { count: 1_000_000 }, ..SimConfig::default() };
    let sim = Simulator::start(config).await.unwrap();
    let start_s = started.elapsed().as_secs_f64();
    let after = rss_mb("VmRSS:");
    println!(
        "RESULT scenario=sim-1m mailboxes=1000000 start_s={start_s:.2} rss_mb={:.0} tenant_mb={:.0}",
        after,
        after - before
    );
    sim.stop().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(throughput());
    runtime.block_on(million());
}
