//! Service Fabric's managed identity endpoint, reached over HTTPS whose certificate is pinned.
//!
//! Service Fabric sets `IDENTITY_ENDPOINT`, `IDENTITY_HEADER` and `IDENTITY_SERVER_THUMBPRINT`
//! ("How to leverage a Service Fabric application's managed identity to access Azure services",
//! learn.microsoft.com/azure/service-fabric/how-to-managed-identity-service-fabric-app-code): the
//! endpoint serves HTTPS with a certificate no public authority signed, and the client is told to
//! add "appropriate server certificate validation logic". azure-identity for .NET
//! (`ServiceFabricManagedIdentitySource.ValidateMsiServerCertificate`) and the page's own sample
//! take the certificate when its `GetCertHashString()` (the SHA-1 of its DER, in hex) equals
//! `IDENTITY_SERVER_THUMBPRINT`, compared case-insensitively; azure-identity for Python
//! (`_credentials/service_fabric.py`) turns verification off (`connection_verify=False`). This
//! client pins, never turns verification off: the server's end-entity certificate is taken only
//! when its SHA-1 thumbprint is the one Service Fabric set, and the handshake's signatures are
//! verified against that certificate's key with aws-lc-rs's algorithms, so only the holder of the
//! pinned certificate's key can answer. The name in the certificate and its dates are not checked,
//! as .NET's pin does not check them: a pin is exact, and Service Fabric's endpoint is node-local.
//!
//! A certificate that is not the pinned one ends the handshake before any request, so the
//! identity header (a secret) never leaves; the refusal is kept here so that the caller reports it
//! by name instead of retrying a connection that will never be trusted.

use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::Error;

/// The setting the thumbprint comes from, for messages.
pub(crate) const SETTING: &str = "IDENTITY_SERVER_THUMBPRINT";

/// A certificate's SHA-1 thumbprint: 20 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Thumbprint([u8; 20]);

impl Thumbprint {
    /// `text` as hex, in either case, with any colons and spaces left out (as Windows' certificate
    /// dialog and `openssl x509 -fingerprint` write it); `None` unless it is 40 hex digits.
    pub fn parse(text: &str) -> Option<Thumbprint> {
        let digits: Vec<u8> = text.bytes().filter(|b| *b != b':' && !b.is_ascii_whitespace()).collect();
        // Hex digits only: `from_str_radix` alone would also take a sign ("+D").
        if digits.len() != 40 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut bytes = [0u8; 20];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(Thumbprint(bytes))
    }

    /// The SHA-1 of a DER certificate, as `GetCertHashString()` computes it.
    pub fn of_certificate(der: &[u8]) -> Thumbprint {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
        let mut bytes = [0u8; 20];
        bytes.copy_from_slice(digest.as_ref());
        Thumbprint(bytes)
    }
}

/// Upper-case hex without separators, as `GetCertHashString()` writes it.
impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({self})")
    }
}

/// The pinned thumbprint, and the certificate refused for not having it, if one was.
#[derive(Debug)]
pub struct Pin {
    expected: Thumbprint,
    refused: Mutex<Option<Thumbprint>>,
}

impl Pin {
    /// Why the endpoint was not trusted, if its certificate was refused.
    pub fn refusal(&self) -> Option<String> {
        let presented = (*self.refused.lock().unwrap_or_else(|e| e.into_inner()))?;
        Some(format!(
            "it presented a certificate whose SHA-1 thumbprint is {presented}, not {SETTING} {}; nothing was sent to it. Set {SETTING} to the thumbprint Service Fabric set beside IDENTITY_ENDPOINT, or check that IDENTITY_ENDPOINT is Service Fabric's endpoint",
            self.expected
        ))
    }
}

/// Takes the end-entity certificate whose thumbprint is pinned, and verifies the handshake's
/// signatures with the crypto provider's algorithms (`rustls::crypto::verify_tls1x_signature`).
#[derive(Debug)]
struct PinnedVerifier {
    pin: Arc<Pin>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Thumbprint::of_certificate(end_entity.as_ref());
        if presented == self.pin.expected {
            return Ok(ServerCertVerified::assertion());
        }
        *self.pin.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(presented);
        Err(rustls::Error::General(format!("the certificate's SHA-1 thumbprint is not {SETTING}")))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// An HTTP client that trusts only the certificate `expected` pins (no proxy, no redirect, HTTPS
/// only), and the pin, to ask why a connection failed. reqwest 0.13 takes a rustls `ClientConfig`
/// of its own rustls version through `tls_backend_preconfigured` (`use_preconfigured_tls` before).
pub fn pinned_client(expected: Thumbprint) -> Result<(reqwest::Client, Arc<Pin>), Error> {
    let failed = |e: &dyn fmt::Display| Error::Auth(format!("cannot set up the pinned TLS for {SETTING}: {e}"));
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let pin = Arc::new(Pin { expected, refused: Mutex::new(None) });
    let verifier = PinnedVerifier { pin: pin.clone(), algorithms: provider.signature_verification_algorithms };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
        .tls_backend_preconfigured(config)
        .build()
        .map_err(|e| failed(&e))?;
    Ok((http, pin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thumbprint_is_forty_hex_digits_in_either_case_with_separators_ignored() {
        let plain = Thumbprint::parse("3DB256D9C22468FC343346D1B14C7F963B279280").unwrap();
        for written in [
            "3db256d9c22468fc343346d1b14c7f963b279280",
            "3D:B2:56:D9:C2:24:68:FC:34:33:46:D1:B1:4C:7F:96:3B:27:92:80",
            " 3d b2 56 d9 c2 24 68 fc 34 33 46 d1 b1 4c 7f 96 3b 27 92 80\n",
        ] {
            assert_eq!(Thumbprint::parse(written), Some(plain), "{written:?}");
        }
        assert_eq!(plain.to_string(), "3DB256D9C22468FC343346D1B14C7F963B279280");
        for refused in [
            "",
            "0123456789abcdef",
            "3DB256D9C22468FC343346D1B14C7F963B2792",
            "3DB256D9C22468FC343346D1B14C7F963B27928000",
            "3DB256D9C22468FC343346D1B14C7F963B27928G",
            "+DB256D9C22468FC343346D1B14C7F963B279280",
            "3DB256D9C22468FC343346D1B14C7F963B27928é",
        ] {
            assert_eq!(Thumbprint::parse(refused), None, "{refused:?}");
        }
        assert_ne!(Thumbprint::parse(&"0".repeat(40)), Some(plain), "compared byte for byte");
    }

    #[test]
    fn a_certificate_is_taken_only_with_the_pinned_thumbprint() {
        let der = b"not really a certificate, but hashed all the same";
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let verifier = |expected| PinnedVerifier {
            pin: Arc::new(Pin { expected, refused: Mutex::new(None) }),
            algorithms: provider.signature_verification_algorithms,
        };
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let check = |v: &PinnedVerifier| {
            v.verify_server_cert(&CertificateDer::from(&der[..]), &[], &name, &[], UnixTime::now())
        };
        let pinned = verifier(Thumbprint::of_certificate(der));
        assert!(check(&pinned).is_ok());
        assert_eq!(pinned.pin.refusal(), None);
        let other = verifier(Thumbprint::parse(&"AB".repeat(20)).unwrap());
        assert!(check(&other).is_err());
        let refusal = other.pin.refusal().unwrap();
        assert!(refusal.contains(SETTING) && refusal.contains(&"AB".repeat(20)), "{refusal}");
        assert!(refusal.contains(&Thumbprint::of_certificate(der).to_string()), "{refusal}");
    }
}
