//! One answer of the simulated service, shared by direct requests and `$batch` items, plus the
//! error bodies each service sends.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// Status, extra headers and an optional JSON body (or, with `plain`, a text body: the string).
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub plain: bool,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, body: Value) -> Reply {
        Reply { status, headers: Vec::new(), body: Some(body), plain: false }
    }

    /// A body that is not JSON at all: sent as `text/plain`, as the string itself.
    pub(crate) fn text(status: StatusCode, text: &str) -> Reply {
        Reply { status, headers: Vec::new(), body: Some(Value::String(text.into())), plain: true }
    }

    pub(crate) fn empty(status: StatusCode) -> Reply {
        Reply { status, headers: Vec::new(), body: None, plain: false }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// Graph's error body: `{"error":{"code","message","innerError":{request-id,date,client-request-id}}}`.
    pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str, ids: &RequestIds) -> Reply {
        Reply::json(
            status,
            json!({"error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": now_rfc3339(),
                    "request-id": ids.request_id,
                    "client-request-id": ids.client_request_id,
                }
            }}),
        )
    }

    /// The Exchange admin API's error body, with the useful text in `details[0].message`.
    pub(crate) fn exchange_error(status: StatusCode, code: &str, detail: &str) -> Reply {
        Reply::json(
            status,
            json!({"error": {
                "code": code,
                "message": "Error executing cmdlet",
                "details": [{"code": "Context", "target": "", "message": detail}],
                "innererror": {
                    "message": detail,
                    "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                    "stacktrace": "",
                }
            }}),
        )
    }

    pub(crate) fn throttled(retry_after: std::time::Duration, message: &str, ids: &RequestIds) -> Reply {
        Reply::graph_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message, ids)
            .with_header("retry-after", format_seconds(retry_after))
    }
}

/// The identifiers every answer carries: ours (`request-id`) and the client's echo.
#[derive(Clone, Debug)]
pub(crate) struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    pub(crate) fn new(client_request_id: Option<&str>) -> RequestIds {
        RequestIds {
            request_id: uuid::Uuid::new_v4().to_string(),
            client_request_id: client_request_id.unwrap_or_default().to_string(),
        }
    }
}

/// `Retry-After` in seconds: whole where whole, else with one decimal (the service sends both).
pub(crate) fn format_seconds(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds.fract() == 0.0 { format!("{seconds:.0}") } else { format!("{seconds:.1}") }
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
