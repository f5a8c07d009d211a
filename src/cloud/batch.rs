//! Graph JSON batching: single Graph requests from many workers are gathered into `$batch`
//! requests of up to 20 and their answers handed back one by one, so each still goes through the
//! request loop (pacing, retries, token renewal) as if it had been sent alone. Only the items that
//! failed are retried, because only their callers see a failure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::body_budget::Body;
use super::deadline::Latencies;
use super::{Api, RawAnswer, RequestCounts, Transport};
use crate::support::secret::SecretString;

/// The most requests Graph takes in one batch.
pub(crate) const BATCH_LIMIT: usize = 20;
/// How long a batch waits for company once its first request is in, at least and at most.
/// Requests come paced (800 a second at most for a large tenant), so a short wait sends batches
/// of two or three. A batch waits as long as its requests, coming at the pace they have come,
/// take to fill it: each batch sent and answered is a wake-up for the runner, and on a throttled
/// run, where requests wait their turn anyway, fuller batches cost no time. At the shortest wait,
/// a run's first requests (before any pace is known) and a fast stream go without delay.
const LINGER: Duration = Duration::from_millis(50);
const LONGEST_LINGER: Duration = Duration::from_millis(400);

/// The time between requests, averaged over the last few dozen: how long a batch takes to fill.
struct Pace {
    gap: Option<Duration>,
    last: Option<tokio::time::Instant>,
}

impl Pace {
    fn arrived(&mut self, now: tokio::time::Instant) {
        if let Some(last) = self.last {
            let gap = now.duration_since(last).min(LONGEST_LINGER);
            self.gap = Some(self.gap.map_or(gap, |average| average.mul_f64(0.95) + gap.mul_f64(0.05)));
        }
        self.last = Some(now);
    }

    /// How long a batch just begun waits for company: twice what filling it takes at the
    /// average pace, for requests come in groups (the pacer's turns), not evenly.
    fn linger(&self) -> Duration {
        self.gap.map_or(LINGER, |gap| (gap * 2 * (BATCH_LIMIT as u32 - 1)).clamp(LINGER, LONGEST_LINGER))
    }
}

/// A `$batch` answer: the items' answers, each body kept as the bytes it came as. Every field but
/// the body is read loosely (any JSON type, or missing), as the old `Value` reading did: one odd
/// item must not make the whole answer unreadable.
#[derive(Deserialize)]
struct BatchAnswer {
    responses: Vec<ItemAnswer>,
}

#[derive(Deserialize)]
struct ItemAnswer {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    status: Value,
    #[serde(default)]
    headers: Value,
    #[serde(default)]
    body: Option<Box<RawValue>>,
}

/// Each item's answer by its id; `None` when the body holds no item answers (a batch throttled or
/// failed whole), which is then every item's answer.
fn item_answers(envelope: &Body, request_id: Option<&str>) -> Option<HashMap<String, RawAnswer>> {
    let BatchAnswer { responses } = serde_json::from_slice(envelope).ok()?;
    let answers = responses.into_iter().map(|response| {
        let id = match response.id {
            Value::String(id) => id,
            other => other.to_string(),
        };
        let mut headers: Vec<(String, String)> = response
            .headers
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.to_lowercase(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect();
        headers.extend(request_id.map(|id| ("request-id".to_string(), id.to_string())));
        // The bodies stay the bytes they came as (`RawValue`): each caller parses its own, and
        // each holds the batch's share of the answers' budget until every item is let go.
        let body = match response.body {
            Some(item) if item.get() != "null" => envelope.part_of(item.get().as_bytes().to_vec()),
            _ => envelope.part_of(Vec::new()),
        };
        (id, RawAnswer { status: response.status.as_u64().unwrap_or(0) as u16, headers, body })
    });
    Some(answers.collect())
}

pub(crate) struct Item {
    /// A read of one object, safe to ask again after a short deadline (see [`super::deadline`]).
    pub quick: bool,
    pub method: Method,
    /// Path and query after the version, starting with `/`.
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub token: SecretString,
    pub answer: oneshot::Sender<Result<RawAnswer, Transport>>,
}

/// Queues for `v1.0` and `beta` (a batch holds requests of one version).
pub(crate) struct Batcher {
    queues: [mpsc::UnboundedSender<Item>; 2],
}

struct Sender {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
    counts: Arc<RequestCounts>,
    latencies: Arc<Latencies>,
}

impl Batcher {
    pub(crate) fn start(
        http: reqwest::Client,
        graph_base: &str,
        timeout: Duration,
        counts: Arc<RequestCounts>,
        latencies: Arc<Latencies>,
    ) -> Batcher {
        let queue = |version: &str| {
            let (sender, receiver) = mpsc::unbounded_channel();
            let target = Arc::new(Sender {
                http: http.clone(),
                base: format!("{}/{version}/$batch", graph_base.trim_end_matches('/')),
                timeout,
                counts: counts.clone(),
                latencies: latencies.clone(),
            });
            tokio::spawn(gather(receiver, target));
            sender
        };
        Batcher { queues: [queue("v1.0"), queue("beta")] }
    }

    /// Queues a request for `version` ("v1.0" or "beta"); false when the batcher has stopped.
    pub(crate) fn submit(&self, version: &str, item: Item) -> bool {
        let queue = if version == "beta" { &self.queues[1] } else { &self.queues[0] };
        queue.send(item).is_ok()
    }
}

async fn gather(mut receiver: mpsc::UnboundedReceiver<Item>, sender: Arc<Sender>) {
    let mut pace = Pace { gap: None, last: None };
    while let Some(first) = receiver.recv().await {
        let now = tokio::time::Instant::now();
        pace.arrived(now);
        let mut items = vec![first];
        // A quick read's deadline runs while its batch waits: a short request timeout keeps the
        // wait short too.
        let deadline = now + pace.linger().min(LINGER.max(sender.timeout / 4));
        while items.len() < BATCH_LIMIT {
            tokio::select! {
                item = receiver.recv() => match item {
                    Some(item) => {
                        pace.arrived(tokio::time::Instant::now());
                        items.push(item);
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        tokio::spawn(send(sender.clone(), items));
    }
}

async fn send(sender: Arc<Sender>, items: Vec<Item>) {
    let requests: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let headers: serde_json::Map<String, Value> =
                item.headers.iter().map(|(k, v)| (k.to_string(), Value::from(v.clone()))).collect();
            let mut request =
                json!({"id": i.to_string(), "method": item.method.as_str(), "url": item.url, "headers": headers});
            if let Some(body) = &item.body {
                request["body"] = body.clone();
                request["headers"]["Content-Type"] = "application/json".into();
            }
            request
        })
        .collect();
    let token = items[0].token.clone();
    let request = sender
        .http
        .post(&sender.base)
        .bearer_auth(token.expose())
        .header("client-request-id", super::new_request_id())
        .json(&json!({"requests": requests}));
    // A batch of quick reads is itself quick: asked again rather than waited on for long.
    let quick = items.iter().all(|item| item.quick);
    let latency = &sender.latencies.graph_batch;
    let request = request.timeout(sender.timeout);
    let sent_at = tokio::time::Instant::now();
    let answer = super::receive(request);
    let answer = if quick {
        super::deadline::within(answer, sent_at, || latency.deadline(sender.timeout)).await
    } else {
        answer.await
    };
    let envelope = match answer {
        Ok(envelope) => envelope,
        Err(failure) => {
            sender.counts.add(Api::Graph, 0);
            for item in items {
                let _ = item.answer.send(Err(failure.clone()));
            }
            return;
        }
    };
    sender.counts.add(Api::Graph, envelope.status);
    if matches!(envelope.status, 200 | 424) {
        let took = sent_at.elapsed();
        if quick {
            latency.observe(took);
        }
        // Each write waited this long for its answer.
        for _ in items.iter().filter(|item| item.method != Method::GET) {
            sender.latencies.graph_writes.observe(took);
        }
    }
    // A batch with a throttled item "itself fails with a status code of 424 (Failed Dependency)"
    // while its body still holds every item's answer ("Throttling and batching",
    // learn.microsoft.com/graph/throttling; microsoft-graph-docs-contrib concepts/throttling.md):
    // each item's own answer counts whenever the body has them, whatever the envelope's status.
    // Only an envelope without item answers (throttled whole, a 5xx) is every item's answer.
    let request_id = envelope.headers.iter().find(|(k, _)| k == "request-id").map(|(_, v)| v.as_str());
    let Some(mut by_id) = item_answers(&envelope.body, request_id) else {
        for item in items {
            let _ = item.answer.send(Ok(envelope.clone()));
        }
        return;
    };
    for (i, item) in items.into_iter().enumerate() {
        let answer = by_id
            .remove(&i.to_string())
            .ok_or_else(|| Transport { sent: true, message: "the batch answer left this request out".into() });
        let _ = item.answer.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_read_loosely_and_their_bodies_kept_as_sent() {
        let body = br#"{"responses": [
            {"id": "0", "status": 200, "headers": {"Content-Type": "application/json"}, "body": {"perUserMfaState": "enforced"}},
            {"id": 1, "status": 429, "headers": null, "body": {"error": {"code": "TooManyRequests"}}},
            {"id": "2", "status": 204, "body": null}
        ]}"#;
        let answers = item_answers(&Body::from(body.to_vec()), Some("req-1")).expect("a batch answer");
        assert_eq!(answers["0"].status, 200);
        assert_eq!(answers["0"].body, br#"{"perUserMfaState": "enforced"}"#.to_vec(), "the bytes as sent");
        assert!(answers["0"].headers.contains(&("content-type".into(), "application/json".into())));
        assert!(answers["0"].headers.contains(&("request-id".into(), "req-1".into())));
        assert_eq!(answers["1"].status, 429, "a numeric id and null headers do not spoil the answer");
        assert!(answers["2"].body.is_empty());
        let whole = Body::from(br#"{"error": {"code": "TooManyRequests"}}"#.to_vec());
        assert!(item_answers(&whole, None).is_none(), "throttled whole");
    }
}
