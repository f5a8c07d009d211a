//! One HTTP exchange with a Microsoft endpoint: the client every request goes through, sending,
//! and reading an answer whole but never past a cap.

use std::sync::Arc;
use std::time::Duration;

use super::body_budget::{Body, BodyBudget, Hold};

/// Builds the HTTP client: rustls, certificate checks always on, no redirects (a redirect must
/// never carry our bearer token to another host).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(64)
        .user_agent(concat!("remediate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up HTTPS: {e}"))
}

/// Words for a transport error, without the URL's query (which may name a mailbox).
pub(super) fn describe_transport(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the connection broke while reading the answer"
    } else if error.is_request() {
        "the request failed"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() { kind.to_string() } else { format!("{kind} ({detail})") }
}

/// An HTTP answer, whether it came alone or as an item of a `$batch`.
#[derive(Clone, Debug)]
pub(crate) struct RawAnswer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The bytes, holding their share of the answers' memory budget until dropped.
    pub body: Body,
}

/// No answer: the connection failed, timed out or broke. `sent` says whether the service may
/// have received (and acted on) the request.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    pub sent: bool,
    pub message: String,
}

/// The largest answer accepted from Graph or Exchange: a page of 1,000 mailboxes is well under
/// a megabyte; anything near this is not an answer we asked for.
pub(super) const MAX_BODY: usize = 64 * 1024 * 1024;

/// Reads an answer's body, giving up (as a broken answer) past `cap` bytes, so a hostile or
/// broken endpoint cannot take the memory; every byte is taken from `budget` (the process's budget
/// for all answers held at once, [`BodyBudget::global`], outside tests). An answer that says its length takes it from the budget
/// before reading a byte: waiting while holding nothing, such answers cannot starve each other.
/// One that does not (chunked) takes each piece as it comes; should such answers together fill
/// the budget, each waits until its request's timeout gives its share back.
pub(super) async fn read_body_within(
    mut response: reqwest::Response,
    cap: usize,
    budget: &Arc<BodyBudget>,
) -> Result<Body, Transport> {
    let too_large =
        || Transport { sent: true, message: format!("the answer was larger than {}; not read further", in_units(cap)) };
    let over_budget = |message: String| Transport { sent: true, message };
    let mut hold = Hold::new(budget);
    let mut body = Vec::new();
    if let Some(length) = response.content_length() {
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if length > cap {
            return Err(too_large());
        }
        budget.take(&mut hold, length).await.map_err(over_budget)?;
        body.reserve_exact(length);
    }
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    return Err(too_large());
                }
                let beyond = (body.len() + chunk.len()).saturating_sub(hold.bytes());
                budget.take(&mut hold, beyond).await.map_err(over_budget)?;
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Body::held(body, hold)),
            Err(error) => return Err(Transport { sent: true, message: describe_transport(&error) }),
        }
    }
}

/// A size in MiB, or KiB below one.
pub(super) fn in_units(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB { format!("{} MiB", bytes / MIB) } else { format!("{} KiB", bytes / 1024) }
}

/// Sends a request and reads its whole answer (at most [`MAX_BODY`]).
pub(crate) async fn receive(request: reqwest::RequestBuilder) -> Result<RawAnswer, Transport> {
    receive_at_most(request, MAX_BODY).await
}

/// Sends a request and reads its whole answer, giving up past `cap` bytes.
pub(crate) async fn receive_at_most(request: reqwest::RequestBuilder, cap: usize) -> Result<RawAnswer, Transport> {
    receive_within(request, cap, BodyBudget::global()).await
}

/// [`receive_at_most`] within a given budget for all answers held at once.
pub(super) async fn receive_within(
    request: reqwest::RequestBuilder,
    cap: usize,
    budget: &Arc<BodyBudget>,
) -> Result<RawAnswer, Transport> {
    let response = request
        .send()
        .await
        .map_err(|error| Transport { sent: !error.is_connect(), message: describe_transport(&error) })?;
    let status = response.status().as_u16();
    let headers = header_pairs(response.headers());
    let body = read_body_within(response, cap, budget).await?;
    Ok(RawAnswer { status, headers, body })
}

/// Whether `url`'s host is this machine: `localhost`, 127.0.0.0/8 or ::1. Plain HTTP goes
/// nowhere else.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Header names as they come: `http` keeps every name in lower case already.
pub(super) fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers.iter().filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))).collect()
}
