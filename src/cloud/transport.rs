//! One HTTP exchange with a Microsoft endpoint: the client every request goes through, sending,
//! and reading an answer whole but never past a cap.

use std::time::Duration;

/// Builds the HTTP client: rustls, certificate checks always on, no redirects (a redirect must
/// never carry our bearer token to another host).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(64)
        .user_agent(concat!("remediate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up HTTPS: {e}"))
}

/// Words for a transport error, without the URL's query (which may name a mailbox).
pub fn describe_transport(error: &reqwest::Error) -> String {
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
pub struct RawAnswer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// No answer: the connection failed, timed out or broke. `sent` says whether the service may
/// have received (and acted on) the request.
#[derive(Clone, Debug)]
pub struct Transport {
    pub sent: bool,
    pub message: String,
}

/// The largest answer accepted from Graph or Exchange: a page of 1,000 mailboxes is well under
/// a megabyte; anything near this is not an answer we asked for.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Reads an answer's body, giving up (as a broken answer) past `cap` bytes, so a hostile or
/// broken endpoint cannot take the memory.
pub async fn read_body(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, Transport> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    let message = format!("the answer was larger than {} MiB; not read further", cap / (1024 * 1024));
                    return Err(Transport { sent: true, message });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(error) => return Err(Transport { sent: true, message: describe_transport(&error) }),
        }
    }
}

/// Sends a request and reads its whole answer (at most [`MAX_BODY`]).
pub async fn receive(request: reqwest::RequestBuilder) -> Result<RawAnswer, Transport> {
    receive_at_most(request, MAX_BODY).await
}

/// Sends a request and reads its whole answer, giving up past `cap` bytes.
pub async fn receive_at_most(request: reqwest::RequestBuilder, cap: usize) -> Result<RawAnswer, Transport> {
    let response = request
        .send()
        .await
        .map_err(|error| Transport { sent: !error.is_connect(), message: describe_transport(&error) })?;
    let status = response.status().as_u16();
    let headers = header_pairs(response.headers());
    let body = read_body(response, cap).await?;
    Ok(RawAnswer { status, headers, body })
}

/// Header names as they come: `http` keeps every name in lower case already.
pub fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers.iter().filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))).collect()
}
