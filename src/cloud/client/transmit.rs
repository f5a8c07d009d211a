//! One attempt on the wire: through the Graph `$batch` when the run batches, else on its own,
//! each quick read within its deadline; and what the attempt tells the latencies and the pacers.

use super::CloudClient;
use crate::cloud::deadline;
use crate::cloud::pacer::Pacer;
use crate::cloud::{Api, Call, RawAnswer, Transport, batch, receive};
use crate::support::secret::SecretString;

impl CloudClient {
    /// Sends one attempt: through the Graph batcher when there is one, else on its own.
    pub(super) async fn transmit(
        &self,
        call: &Call,
        base: &str,
        token: &SecretString,
        client_request_id: &str,
    ) -> Result<RawAnswer, Transport> {
        if let (Api::Graph, Some(batcher), false) = (call.api, &self.batcher, call.reports) {
            let (version, url) = call.path.split_once('/').unwrap_or(("v1.0", &call.path));
            let (answer, wait) = tokio::sync::oneshot::channel();
            let mut headers = call.headers.clone();
            headers.push(("client-request-id", client_request_id.to_string()));
            let quick = !call.write && !call.page;
            let item = batch::Item {
                quick,
                method: call.method.clone(),
                url: format!("/{url}"),
                headers,
                body: call.body.clone(),
                token: token.clone(),
                answer,
            };
            if batcher.submit(version, item) {
                let answer = async {
                    wait.await
                        .unwrap_or_else(|_| Err(Transport { sent: true, message: "the batch was dropped".into() }))
                };
                if !quick {
                    return answer.await;
                }
                // A quick read may share its batch with writes, which the batch waits for in full.
                let latency = &self.latencies.graph_batch;
                let since = tokio::time::Instant::now();
                return deadline::within(answer, since, || latency.deadline(self.policy.timeout)).await;
            }
        }
        let request = self
            .http
            .request(call.method.clone(), format!("{}/{}", base.trim_end_matches('/'), call.path))
            .bearer_auth(token.expose())
            .header("client-request-id", client_request_id)
            .header("return-client-request-id", "true");
        let latency = match call.api {
            Api::Graph => &self.latencies.graph,
            Api::Exchange => &self.latencies.exchange,
        };
        let quick = !call.write && !call.page;
        let timeout = call.timeout.map_or(self.policy.timeout, |longer| longer.max(self.policy.timeout));
        let mut request = request.timeout(timeout);
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let sent_at = tokio::time::Instant::now();
        let result = if quick {
            deadline::within(receive(request), sent_at, || latency.deadline(self.policy.timeout)).await
        } else {
            receive(request).await
        };
        self.requests.add(call.api, result.as_ref().map_or(0, |answer| answer.status));
        let answered = result.as_ref().is_ok_and(|answer| (200..300).contains(&answer.status));
        match (answered, quick, call.write, call.api) {
            (true, true, _, _) => latency.observe(sent_at.elapsed()),
            (true, _, true, Api::Graph) => self.latencies.graph_writes.observe(sent_at.elapsed()),
            (true, _, true, Api::Exchange) => self.latencies.exchange_writes.observe(sent_at.elapsed()),
            _ => {}
        }
        result
    }

    /// Tells the pacers the service counted this attempt against its budget: everything but
    /// what never reached it and a 503 refused unread. They measure the budget from it.
    pub(super) fn count_against_budget(&self, call: &Call, pacer: &Pacer, result: &Result<RawAnswer, Transport>) {
        let counted = match result {
            Ok(answer) => answer.status != 503,
            Err(transport) => transport.sent,
        };
        if counted {
            pacer.answered();
            if call.write && call.api == Api::Graph {
                self.graph_write_pacer.answered();
            }
        }
    }
}
