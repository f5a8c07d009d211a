//! The simulator's throttling math: over budget means 429 with `Retry-After` and the Graph error
//! body; a client that honours `Retry-After` gets nearly the whole budget through.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use remediate_sim::{Population, SimConfig};
use serde_json::Value;

use crate::support::{GRAPH, start, token};

const RATE: f64 = 100.0;

fn tight() -> SimConfig {
    SimConfig {
        population: Population::Generated { count: 10 },
        graph_rate: RATE,
        graph_window: Duration::from_secs(1),
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twice_the_budget_gets_429_with_retry_after_and_the_graph_body() {
    let sim = start(tight()).await;
    let bearer = token(&sim, GRAPH).await;
    let url = format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", sim.url());
    let http = reqwest::Client::new();
    let mut throttled = None;
    // 2 × budget: the bucket's whole window at once, then twice the refill.
    for _ in 0..(RATE as usize * 2) {
        let response = http.get(&url).bearer_auth(&bearer).send().await.unwrap();
        if response.status().as_u16() == 429 {
            let retry_after = response.headers()["retry-after"].to_str().unwrap().to_string();
            let body: Value = response.json().await.unwrap();
            throttled = Some((retry_after, body));
            break;
        }
    }
    let (retry_after, body) = throttled.expect("twice the budget must be throttled");
    let seconds: f64 = retry_after.parse().expect("Retry-After in seconds");
    assert!(seconds > 0.0 && seconds <= 2.0, "{seconds}");
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert!(body["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_waits_retry_after_gets_ninety_percent_of_the_budget() {
    let sim = start(tight()).await;
    let bearer = Arc::new(token(&sim, GRAPH).await);
    let url = Arc::new(format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", sim.url()));
    let http = reqwest::Client::new();
    let succeeded = Arc::new(AtomicU64::new(0));
    let run_for = Duration::from_secs(3);
    let started = Instant::now();
    let last_success = Arc::new(std::sync::Mutex::new(started));
    // One polite client: it sends as fast as it can, but sleeps out every Retry-After.
    let worker = {
        let (http, url, bearer, succeeded, last_success) =
            (http.clone(), url.clone(), bearer.clone(), succeeded.clone(), last_success.clone());
        tokio::spawn(async move {
            while started.elapsed() < run_for {
                let response = http.get(url.as_str()).bearer_auth(bearer.as_str()).send().await.unwrap();
                if response.status().as_u16() == 429 {
                    let wait: f64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                } else {
                    succeeded.fetch_add(1, Ordering::Relaxed);
                    *last_success.lock().unwrap() = Instant::now();
                }
            }
        })
    };
    worker.await.unwrap();
    // The budget up to the last answer (a final Retry-After sleep past the deadline is not use).
    let elapsed = last_success.lock().unwrap().duration_since(started).as_secs_f64();
    // What the budget allows in that time: one full window to start, then the refill rate.
    let budget = RATE * 1.0 + RATE * elapsed;
    let got = succeeded.load(Ordering::Relaxed) as f64;
    assert!(got >= 0.9 * budget, "got {got} of a budget of {budget:.0}");
    assert!(got <= budget + 1.0, "got {got}, more than the budget of {budget:.0}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exchange_refuses_requests_over_its_in_flight_cap() {
    let config = SimConfig {
        population: Population::Generated { count: 10 },
        exchange_inflight: 1,
        latency: Duration::from_millis(300),
        ..SimConfig::default()
    };
    let sim = start(config).await;
    let bearer = token(&sim, crate::support::EXCHANGE).await;
    let url = format!("{}/adminapi/beta/{}/InvokeCommand", sim.url(), sim.app().tenant_id);
    let body = serde_json::json!({"CmdletInput": {"CmdletName": "Get-TransportConfig", "Parameters": {}}});
    let http = reqwest::Client::new();
    let requests = (0..4).map(|_| http.post(&url).bearer_auth(&bearer).json(&body).send());
    let answers = futures_util::future::join_all(requests).await;
    let mut refused = 0;
    let mut plain = 0;
    for answer in answers {
        let answer = answer.unwrap();
        match answer.status().as_u16() {
            429 => {
                assert!(answer.headers().contains_key("retry-after"));
                let body: Value = answer.json().await.unwrap();
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.contains("maximum number of concurrent requests per tenant"));
                refused += 1;
            }
            500 => {
                // The other form: a plain body, no Retry-After, only the text says it.
                assert!(!answer.headers().contains_key("retry-after"));
                let text = answer.text().await.unwrap();
                assert!(text.starts_with("You have reached the maximum number of concurrent requests per tenant"));
                refused += 1;
                plain += 1;
            }
            _ => {}
        }
    }
    assert_eq!(refused, 3, "one slot, four requests at once");
    assert!(plain >= 1, "both forms of the refusal come");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_fault_happens_and_writes_are_accounted_for() {
    let config = SimConfig {
        population: Population::Generated { count: 10 },
        throttle: false,
        fault_rate: 1.0,
        slow_reply: Duration::from_millis(1500),
        ..SimConfig::default()
    };
    let sim = start(config).await;
    let bearer = token(&sim, GRAPH).await;
    let url = format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", sim.url());
    let http = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for i in 0..60 {
        let request = http.patch(&url).bearer_auth(&bearer).json(&serde_json::json!({"isEnabled": i % 2 == 0}));
        let kind = match request.send().await {
            Err(error) if error.is_timeout() => "slow".to_string(),
            Err(_) => "dropped".to_string(),
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response.headers().contains_key("retry-after");
                match response.bytes().await {
                    Err(_) => "dropped".to_string(),
                    Ok(_) => format!("{status}{}", if retry_after { "+retry-after" } else { "" }),
                }
            }
        };
        kinds.insert(kind);
    }
    let expected: std::collections::BTreeSet<String> =
        ["503+retry-after", "503", "504", "dropped", "slow"].map(String::from).into();
    assert_eq!(kinds, expected);
    let stats = crate::support::stats(&sim);
    assert_eq!(stats["faults_total"], 60);
    let applied = stats["faulted_writes_applied"].as_u64().unwrap();
    assert_eq!(stats["writes_total"].as_u64().unwrap(), applied, "only faults after the work change anything");
}
