//! One attempt at a call: its turn at the pacers, its gate and token, the request, and what the
//! answer tells the pacers and the retry loop.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::SemaphorePermit;

use super::CloudClient;
use crate::cloud::pacer::Pacer;
use crate::cloud::service_error::{self, ServiceMessage};
use crate::cloud::{
    Answer, Api, Call, CallError, RawAnswer, RequestIds, Transport, exchange_backoff, limit_fraction, retry_after,
};

/// What one attempt came to.
pub(super) enum Attempt {
    Done(Answer),
    /// Try again after this long (None: backoff); `sent` says whether the service may have acted.
    Again {
        wait: Option<Duration>,
        last: String,
        sent: bool,
        ids: RequestIds,
    },
    Refused(CallError),
    TokenRejected {
        ids: RequestIds,
        message: String,
    },
}

/// An answer with an error status, as read: the service's message, its `Retry-After`, and
/// whether it refused the request for too many in flight.
struct Failure {
    status: u16,
    message: ServiceMessage,
    retry_after: Option<Duration>,
    /// Which budget ran out, when Graph says (`x-ms-throttle-information`).
    throttle_information: Option<String>,
    concurrency: bool,
    /// The status, code and message, for the error the call ends with.
    last: String,
    ids: RequestIds,
    attempt: u32,
}

impl CloudClient {
    /// The pacer a call takes its turn at.
    fn pacer_for(&self, call: &Call) -> &Pacer {
        match call.api {
            _ if call.reports => &self.reports_pacer,
            Api::Graph => &self.graph_pacer,
            Api::Exchange => &self.exchange_pacer,
        }
    }

    pub(super) async fn attempt(&self, call: &Call, attempt: u32) -> Result<Attempt, CallError> {
        let pacer = self.pacer_for(call);
        if call.write && call.api == Api::Graph {
            self.graph_write_pacer.acquire().await;
        }
        let slot = if call.page { pacer.acquire_ahead().await } else { pacer.acquire().await };
        if let Some(gate) = &call.gate {
            (gate.0)().await.map_err(|message| CallError::Local { code: crate::cloud::NOT_RECORDED, message })?;
        }
        let (resource, base) = self.resource(call.api);
        let token = self.tokens.token(resource).await.map_err(|e| CallError::Auth(e.to_string()))?;
        let client_request_id = crate::cloud::new_request_id();
        let started = tokio::time::Instant::now();
        if let Some(sent) = &call.sent {
            sent.send_replace(Some(crate::cloud::Sent {
                client_request_id: client_request_id.clone(),
                at: tokio::time::Instant::now(),
            }));
        }
        let result = self.transmit(call, base, &token, &client_request_id).await;
        self.count_against_budget(call, pacer, &result);
        let mut ids = RequestIds { client_request_id, request_id: String::new() };
        let RawAnswer { status, headers, body } = match result {
            Ok(answer) => answer,
            Err(Transport { sent, message: last }) => {
                tracing::debug!(api = call.api.name(), attempt, elapsed_ms = started.elapsed().as_millis() as u64, %last, "request failed");
                return Ok(Attempt::Again { wait: None, last, sent, ids });
            }
        };
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        ids.request_id = header("request-id").unwrap_or_default().to_string();
        if (200..300).contains(&status) {
            self.succeeded(call, pacer, header("x-ms-throttle-limit-percentage").and_then(limit_fraction));
            let body = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
            return Ok(Attempt::Done(Answer { status, body, ids, attempts: attempt }));
        }
        let failure = Failure::read(status, &body, header, ids, attempt);
        tracing::debug!(api = call.api.name(), attempt, status, code = %failure.message.code, "service answered with an error");
        if call.api == Api::Exchange && service_error::is_exchange_not_found(&failure.message) {
            // No such mailbox, whatever the status (404 on real tenants, 500 in public fixtures):
            // never retried, and read as "no mailbox" by the caller.
            return Ok(Attempt::Refused(CallError::Refused {
                status: 404,
                code: "ManagementObjectNotFoundException".into(),
                message: failure.message.message,
                ids: failure.ids,
                attempts: attempt,
            }));
        }
        // A refused token is dropped here, where it is at hand; a refusal for too many requests
        // in flight is the pacers' whatever its status, as in `retry_or_refuse`.
        if status == 401 && !failure.concurrency {
            self.tokens.invalidate(resource, &token).await;
            return Ok(Attempt::TokenRejected { ids: failure.ids, message: failure.message.message });
        }
        Ok(self.retry_or_refuse(call, pacer, slot, failure))
    }

    /// A success: the pacer that paced it hears of the service's limit percentage, if sent.
    fn succeeded(&self, call: &Call, pacer: &Pacer, percentage: Option<f64>) {
        if call.write && call.api == Api::Graph {
            // A write's percentage is that of whichever budget (units or writes) is fuller:
            // it cannot tell either pacer which one it is, so only 429s steer writes.
            self.graph_write_pacer.succeeded(None);
        } else {
            pacer.succeeded(percentage);
        }
    }

    /// What an error answer calls for: a pause and another try (the pacers told of a spent
    /// budget), or a refusal the caller sees.
    fn retry_or_refuse(
        &self,
        call: &Call,
        pacer: &Pacer,
        slot: Option<SemaphorePermit<'_>>,
        failure: Failure,
    ) -> Attempt {
        let Failure { status, message, retry_after, last, ids, attempt, .. } = failure;
        match status {
            429 if call.reports => {
                pacer.throttled(retry_after.unwrap_or(Duration::from_secs(2)));
                Attempt::Again { wait: Some(Duration::ZERO), last, sent: false, ids }
            }
            429 if call.api == Api::Graph => {
                let wait = retry_after.unwrap_or(Duration::from_secs(1));
                self.graph_throttled(call, pacer, wait, failure.throttle_information.as_deref());
                Attempt::Again { wait: Some(Duration::ZERO), last, sent: false, ids }
            }
            _ if failure.concurrency => {
                if pacer.refused_for_concurrency(retry_after.unwrap_or_else(|| exchange_backoff(attempt)))
                    && let Some(slot) = slot
                {
                    slot.forget();
                }
                Attempt::Again { wait: Some(Duration::ZERO), last, sent: false, ids }
            }
            429 => {
                pacer.throttled(retry_after.unwrap_or_else(|| exchange_backoff(attempt)));
                Attempt::Again { wait: Some(Duration::ZERO), last, sent: false, ids }
            }
            503 => Attempt::Again { wait: retry_after, last, sent: false, ids },
            500 | 502 | 504 => Attempt::Again { wait: retry_after, last, sent: true, ids },
            409 if message.code == "Directory_ConcurrencyViolation" => {
                Attempt::Again { wait: retry_after, last, sent: false, ids }
            }
            _ => Attempt::Refused(CallError::Refused {
                status,
                code: message.code,
                message: message.message,
                ids,
                attempts: attempt,
            }),
        }
    }

    /// A Graph 429: the pacer of the budget that ran out slows down.
    fn graph_throttled(&self, call: &Call, pacer: &Pacer, wait: Duration, information: Option<&str>) {
        // `x-ms-throttle-information` says which budget ran out ("Identity and access
        // service limits", throttled responses).
        match (call.write, information) {
            // The writes budget: slow writes down; reads have a budget of their own.
            (true, Some("WriteLimitExceeded")) => self.graph_write_pacer.throttled(wait),
            // The units budget, which writes draw on too: their own measure is disturbed.
            (false, _) | (true, Some("ResourceUnitLimitExceeded")) => {
                pacer.throttled(wait);
                self.graph_write_pacer.disturbed();
            }
            // A write, and no word of which budget: slow writes, hold reads for the
            // Retry-After without cutting their rate.
            (true, _) => {
                self.graph_write_pacer.throttled(wait);
                pacer.pause(wait);
                pacer.disturbed();
            }
        }
    }
}

impl Failure {
    fn read<'h>(
        status: u16,
        body: &[u8],
        header: impl Fn(&str) -> Option<&'h str>,
        ids: RequestIds,
        attempt: u32,
    ) -> Failure {
        let mut message = service_error::parse(body);
        if message.exception.is_none() {
            // The Exchange admin API also names the exception in a header (ExoHelper reads it).
            message.exception = header("x-exceptiontype").map(str::to_string);
        }
        let retry_after = header("retry-after").and_then(|v| retry_after::parse(v, SystemTime::now()));
        // Exchange throttles with 429, or with another status and this text as a plain body
        // (ExoHelper's Invoke-ExoCommand and CIPP retry on either).
        let concurrency = message.message.contains("maximum number of concurrent requests");
        let last = format!("{status} {}: {}", message.code, message.message);
        let throttle_information = header("x-ms-throttle-information").map(str::to_string);
        Failure { status, message, retry_after, throttle_information, concurrency, last, ids, attempt }
    }
}
