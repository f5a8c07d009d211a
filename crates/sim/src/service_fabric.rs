//! Service Fabric's managed identity endpoint (`remediate sim --managed-identity=service-fabric`):
//! HTTPS on a second localhost port, with a self-signed certificate whose SHA-1 thumbprint the
//! simulator prints as `IDENTITY_SERVER_THUMBPRINT`, as Service Fabric's runtime sets it beside
//! `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` ("How to leverage a Service Fabric application's
//! managed identity to access Azure services", learn.microsoft.com/azure/service-fabric/
//! how-to-managed-identity-service-fabric-app-code). Only Service Fabric's token path is served
//! there (see [`super::server::service_fabric_router`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;

/// The endpoint's certificate and its P-256 key (PKCS#8), made for the simulator with
/// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
/// -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1` and `openssl pkcs8
/// -topk8 -nocrypt`. It guards nothing but the simulated tenant, so it may be public.
const IDENTITY_PEM: &str = include_str!("service_fabric_identity.pem");

/// How long a client may take over its TLS handshake before the listener moves on.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// The TLS configuration that presents the embedded certificate, and that certificate's SHA-1
/// thumbprint in upper-case hex, as Windows' `GetCertHashString()` writes it.
fn identity() -> std::io::Result<(Arc<rustls::ServerConfig>, String)> {
    let invalid = |e: &dyn std::fmt::Display| std::io::Error::other(format!("the simulator's TLS identity: {e}"));
    let blocks = pem::parse_many(IDENTITY_PEM).map_err(|e| invalid(&e))?;
    let block = |tag: &str| blocks.iter().find(|b| b.tag() == tag).ok_or_else(|| invalid(&format!("no {tag}")));
    let certificate = block("CERTIFICATE")?.contents().to_vec();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(block("PRIVATE KEY")?.contents().to_vec());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &certificate);
    let thumbprint: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![certificate.into()], key.into())
        .map_err(|e| invalid(&e))?;
    Ok((Arc::new(config), thumbprint))
}

/// Accepts TCP connections and completes their TLS handshake; a client that fails it (one that
/// refuses the certificate, as a client with the wrong thumbprint must) is dropped, unanswered.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, peer)) = self.tcp.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            match tokio::time::timeout(HANDSHAKE_LIMIT, self.acceptor.accept(stream)).await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(error)) => {
                    tracing::debug!(%error, %peer, "a TLS handshake with Service Fabric's endpoint failed")
                }
                Err(_) => tracing::debug!(%peer, "a TLS handshake with Service Fabric's endpoint took too long"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Service Fabric's endpoint as it serves: its address and the thumbprint of its certificate.
pub(crate) struct Endpoint {
    pub address: SocketAddr,
    pub thumbprint: String,
    pub task: tokio::task::JoinHandle<()>,
}

/// Listens on `ip` (any free port) and serves `router` over TLS until `stop` is cancelled.
pub(crate) async fn serve(
    ip: std::net::IpAddr,
    router: axum::Router,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<Endpoint> {
    let (config, thumbprint) = identity()?;
    let tcp = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
    let address = tcp.local_addr()?;
    let listener = TlsListener { tcp, acceptor: TlsAcceptor::from(config) };
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(error) = serve.await {
            tracing::error!(%error, "the simulated Service Fabric endpoint stopped");
        }
    });
    Ok(Endpoint { address, thumbprint, task })
}
