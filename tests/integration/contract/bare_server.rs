//! A bare HTTP or HTTPS server on a loopback port: it gives canned answers in turn and keeps the
//! requests it saw, so that the client is held to a managed identity example with nothing of the
//! simulator in between.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer a bare HTTP server gives: status, headers, body.
type Canned = (u16, Vec<(String, String)>, String);

/// One request as a bare HTTP server saw it.
pub(super) struct Seen {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) headers: BTreeMap<String, String>,
    pub(super) body: String,
}

/// A certificate and key of the tests' own (tests/fixtures/service-fabric-endpoint.pem, made with
/// `openssl req -x509 -newkey ec`), for a bare HTTPS server, and the certificate's SHA-1 in hex.
pub(super) fn bare_tls() -> (tokio_rustls::TlsAcceptor, String) {
    use tokio_rustls::rustls;
    let pem =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/service-fabric-endpoint.pem"));
    let blocks = pem::parse_many(pem.unwrap()).unwrap();
    let certificate = blocks[0].contents().to_vec();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(blocks[1].contents().to_vec());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &certificate);
    let thumbprint: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let config = rustls::ServerConfig::builder_with_provider(rustls::crypto::aws_lc_rs::default_provider().into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.into()], key.into())
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)), thumbprint)
}

/// Serves `answers` (status, headers, body) in turn, one connection each, on a loopback port,
/// over TLS with `tls`: nothing of the simulator, only what an example documents. Returns the
/// base URL and, once every answer is given, the requests seen.
pub(super) async fn serve_answers(
    answers: Vec<Canned>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (String, tokio::task::JoinHandle<Vec<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let served = tokio::spawn(async move {
        let mut seen = Vec::new();
        for answer in answers {
            let (stream, _) = listener.accept().await.unwrap();
            seen.push(match &tls {
                Some(tls) => answer_one(tls.accept(stream).await.unwrap(), answer).await,
                None => answer_one(stream, answer).await,
            });
        }
        seen
    });
    (url, served)
}

/// Reads one request from `stream` and gives it `answer`.
async fn answer_one<S>(mut stream: S, (status, headers, body): Canned) -> Seen
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed mid-request");
        bytes.extend_from_slice(&chunk[..n]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap().split_whitespace();
    let (method, target) = (first.next().unwrap().to_string(), first.next().unwrap().to_string());
    let request_headers: BTreeMap<String, String> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string())).collect();
    let length: usize = request_headers.get("content-length").map_or(0, |l| l.parse().unwrap());
    while bytes.len() < end + 4 + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed mid-body");
        bytes.extend_from_slice(&chunk[..n]);
    }
    let request_body = String::from_utf8_lossy(&bytes[end + 4..end + 4 + length]).into_owned();
    let mut answer = format!("HTTP/1.1 {status} Answer\r\nContent-Type: application/json\r\n");
    for (name, value) in headers {
        answer.push_str(&format!("{name}: {value}\r\n"));
    }
    answer.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    stream.write_all(answer.as_bytes()).await.unwrap();
    stream.shutdown().await.ok();
    Seen { method, target, headers: request_headers, body: request_body }
}
