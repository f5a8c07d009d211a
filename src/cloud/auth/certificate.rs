//! Certificate credentials as azure-identity's EnvironmentCredential reads them: a PEM file with
//! the certificate (and its chain) and the private key, plain or encrypted (PKCS#8), or a PKCS#12
//! file; the private key opens with AZURE_CLIENT_CERTIFICATE_PASSWORD. With
//! AZURE_CLIENT_SEND_CERTIFICATE_CHAIN the chain goes in the assertion's `x5c` header, for subject
//! name and issuer (SNI) authentication.

use std::path::Path;

use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use pkcs5::der::asn1::{AnyRef, OctetStringRef};
use pkcs5::der::{Decode, Reader, SliceReader};
use pkcs5::pbes2::Kdf;

use super::Credential;
use crate::support::secret::SecretString;

/// A certificate credential that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("AZURE_CLIENT_CERTIFICATE_PATH {}: {problem}", .path.display())]
pub struct CertificateError {
    pub path: std::path::PathBuf,
    pub problem: String,
}

/// Whether AZURE_CLIENT_SEND_CERTIFICATE_CHAIN asks for the chain: "1" or "true" in any letter
/// case, as azure-identity reads it (environment_credential.go's NewEnvironmentCredential,
/// environmentCredential.ts's getSendCertificateChain); anything else, or nothing, is no.
pub(crate) fn send_certificate_chain(value: Option<&str>) -> bool {
    value.is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

const WRONG_PASSWORD: &str =
    "cannot decrypt the private key with AZURE_CLIENT_CERTIFICATE_PASSWORD; check the password";

/// PBKDF2 rounds an encrypted key may ask for. The file names its own cost, so a hostile one
/// could hold a run for hours: OpenSSL writes 2,048 rounds, OWASP (2023) asks 600,000 for SHA-256.
const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// scrypt's work, 128·r·N·p bytes (RFC 7914 section 6), which bounds both its memory and its time;
/// `openssl pkcs8 -scrypt` writes N=16384, r=8, p=1: 16 MiB.
const MAX_SCRYPT_WORK: u128 = 256 * 1024 * 1024;

impl Credential {
    /// Reads the certificate and its private key: a PEM file holding both, or a PKCS#12 file
    /// (`.pfx`/`.p12`, as Windows, Key Vault and the Entra portal's tooling export it), with
    /// `password` for an encrypted key, which azure-identity's EnvironmentCredential reads from
    /// AZURE_CLIENT_CERTIFICATE_PASSWORD; with `send_chain` (AZURE_CLIENT_SEND_CERTIFICATE_CHAIN),
    /// the assertion carries the certificate chain (`x5c`).
    pub(crate) fn from_certificate_file(
        path: &Path,
        password: Option<&SecretString>,
        send_chain: bool,
    ) -> Result<Credential, CertificateError> {
        let problem = |problem: String| CertificateError { path: path.to_path_buf(), problem };
        let bytes = crate::support::files::read_capped(path, crate::support::files::cap::SMALL)
            .map_err(|e| problem(format!("cannot read it: {e}")))?;
        // A PEM file is text that holds "-----BEGIN"; PKCS#12 is DER, a SEQUENCE (0x30) first.
        if !bytes.windows(10).any(|w| w == b"-----BEGIN") && bytes.first() == Some(&0x30) {
            return from_pkcs12(&bytes, password, send_chain).map_err(problem);
        }
        from_pem(&bytes, password, send_chain).map_err(problem)
    }
}

fn from_pem(text: &[u8], password: Option<&SecretString>, send_chain: bool) -> Result<Credential, String> {
    let blocks = pem::parse_many(text).map_err(|e| format!("not a PEM file: {e}"))?;
    let certificates: Vec<&[u8]> = blocks.iter().filter(|b| b.tag() == "CERTIFICATE").map(|b| b.contents()).collect();
    if certificates.is_empty() {
        return Err(
            "no CERTIFICATE block; the file must hold the certificate and its private key (or be a .pfx)".into()
        );
    }
    let key = blocks
        .iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or("no PRIVATE KEY block; the file must hold the certificate and its private key")?;
    certificate(&private_key(key, password)?, certificates, send_chain)
}

/// The private key of a PEM block, decrypted if it is an ENCRYPTED PRIVATE KEY.
fn private_key(block: &pem::Pem, password: Option<&SecretString>) -> Result<pem::Pem, String> {
    if block.tag() == "ENCRYPTED PRIVATE KEY" {
        let password =
            password.ok_or("the private key is encrypted; set AZURE_CLIENT_CERTIFICATE_PASSWORD to its password")?;
        return Ok(pem::Pem::new("PRIVATE KEY", decrypt(block.contents(), password)?));
    }
    // OpenSSL's legacy form (RFC 1421 headers; the key derived by one round of MD5,
    // EVP_BytesToKey) is not read: `openssl pkcs8 -topk8` turns it into the PKCS#8 one.
    if block.headers().get("Proc-Type").is_some_and(|v| v.contains("ENCRYPTED")) {
        return Err("the private key is encrypted in OpenSSL's legacy form (Proc-Type: 4,ENCRYPTED); convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in key.pem -out key-pkcs8.pem` and put the result with the certificate".into());
    }
    Ok(block.clone())
}

/// Decrypts a PKCS#8 EncryptedPrivateKeyInfo (RFC 5958 section 3): SEQUENCE { an RFC 8018
/// encryption scheme, the encrypted key as an OCTET STRING }.
fn decrypt(der: &[u8], password: &SecretString) -> Result<Vec<u8>, String> {
    let unreadable = |e: &dyn std::fmt::Display| {
        format!(
            "the private key's encryption cannot be read ({e}); re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
        )
    };
    let (scheme, ciphertext) = encrypted_private_key_info(der).map_err(|e| unreadable(&e))?;
    within_cost(&scheme)?;
    let plain = scheme.decrypt(password.expose(), ciphertext).map_err(|e| match e {
        pkcs5::Error::DecryptFailed => WRONG_PASSWORD.to_string(),
        other => unreadable(&other),
    })?;
    // A wrong password passes the CBC padding check about once in 256 tries and yields noise,
    // which is not one whole DER element as a PrivateKeyInfo is.
    AnyRef::from_der(&plain).map_err(|_| WRONG_PASSWORD.to_string())?;
    Ok(plain)
}

fn encrypted_private_key_info(der: &[u8]) -> pkcs5::der::Result<(pkcs5::EncryptionScheme, &[u8])> {
    let mut reader = SliceReader::new(der)?;
    let info = reader.sequence(|r| -> pkcs5::der::Result<(pkcs5::EncryptionScheme, &OctetStringRef)> {
        Ok((r.decode()?, r.decode()?))
    })?;
    reader.finish()?;
    Ok((info.0, info.1.as_bytes()))
}

/// Refuses a key whose derivation would take the run's memory or minutes.
fn within_cost(scheme: &pkcs5::EncryptionScheme) -> Result<(), String> {
    let too_costly = |what: String| {
        Err(format!(
            "the private key's encryption asks for {what}, more than this tool spends; re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
        ))
    };
    match scheme.pbes2().map(|parameters| &parameters.kdf) {
        Some(Kdf::Pbkdf2(p)) if p.iteration_count > MAX_PBKDF2_ROUNDS => {
            too_costly(format!("{} PBKDF2 rounds", p.iteration_count))
        }
        Some(Kdf::Scrypt(s)) => {
            let work = 128 * u128::from(s.block_size) * u128::from(s.cost_parameter) * u128::from(s.parallelization);
            if work > MAX_SCRYPT_WORK { too_costly(format!("scrypt work of {work} bytes")) } else { Ok(()) }
        }
        _ => Ok(()),
    }
}

/// The first private key of a PKCS#12 file and its certificate chain.
fn from_pkcs12(der: &[u8], password: Option<&SecretString>, send_chain: bool) -> Result<Credential, String> {
    // An export without a password is protected by the empty one.
    let password = password.map_or("", SecretString::expose);
    let store =
        p12_keystore::KeyStore::from_pkcs12(der, password, p12_keystore::Pkcs12ImportPolicy::Relaxed).map_err(|e| {
            match password {
                "" => format!(
                    "cannot open this PKCS#12 file ({e}); if it has a password, set AZURE_CLIENT_CERTIFICATE_PASSWORD"
                ),
                _ => format!(
                    "cannot open this PKCS#12 file with AZURE_CLIENT_CERTIFICATE_PASSWORD ({e}); check the password"
                ),
            }
        })?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or("the PKCS#12 file holds no private key; export the certificate with its private key")?;
    let certificates: Vec<&[u8]> = chain.certs().iter().map(|c| c.as_der()).collect();
    if certificates.is_empty() {
        return Err("the PKCS#12 file holds a private key but not its certificate".into());
    }
    let key = pem::Pem::new("PRIVATE KEY", chain.key().as_der().to_vec());
    certificate(&key, certificates, send_chain)
}

fn certificate(key: &pem::Pem, certificates: Vec<&[u8]>, send_chain: bool) -> Result<Credential, String> {
    let chain = leaf_first(key.contents(), certificates);
    let leaf = chain.first().ok_or("no certificate")?;
    let thumbprint = sha256_thumbprint(leaf);
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem::encode(key).as_bytes())
        .map_err(|e| format!("the private key is not a usable RSA key: {e}"))?;
    // x5c: each certificate's DER in standard base64 (not base64url), the leaf first (RFC 7515
    // section 4.1.6).
    let x5c =
        send_chain.then(|| chain.iter().map(|der| base64::engine::general_purpose::STANDARD.encode(der)).collect());
    Ok(Credential::Certificate { key, thumbprint, x5c })
}

/// The certificates with the private key's own first, the rest in the file's order. The key's
/// RSAPublicKey (RFC 8017 appendix A.1.1) is the certificate's subjectPublicKey bit string (RFC
/// 5280 section 4.1.2.7), so the certificate's DER holds it. No match: the file's order, whose
/// first certificate azure-identity takes.
fn leaf_first<'a>(key_der: &[u8], mut certificates: Vec<&'a [u8]>) -> Vec<&'a [u8]> {
    let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(key_der).or_else(|_| aws_lc_rs::rsa::KeyPair::from_der(key_der));
    let Ok(key) = key else { return certificates };
    let public = key.public_key().as_ref();
    if let Some(at) = certificates.iter().position(|c| c.windows(public.len()).any(|w| w == public)) {
        let leaf = certificates.remove(at);
        certificates.insert(0, leaf);
    }
    certificates
}

/// The certificate's `x5t#S256`: the SHA-256 of its DER encoding, base64url without padding
/// (RFC 7515 section 4.1.8; "Microsoft identity platform application authentication certificate
/// credentials" lists it for PS256 assertions).
pub fn sha256_thumbprint(certificate_der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, certificate_der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "fixture-pem-password";

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
    }

    fn certificate_der(name: &str) -> Vec<u8> {
        pem::parse(std::fs::read(fixture(name)).unwrap()).unwrap().into_contents()
    }

    fn open(name: &str, password: Option<&str>, send_chain: bool) -> Result<Credential, String> {
        let password = password.map(SecretString::new);
        Credential::from_certificate_file(&fixture(name), password.as_ref(), send_chain).map_err(|e| e.to_string())
    }

    fn parts(credential: Credential) -> (String, Option<Vec<String>>) {
        match credential {
            Credential::Certificate { thumbprint, x5c, .. } => (thumbprint, x5c),
            other => panic!("not a certificate: {other:?}"),
        }
    }

    #[test]
    fn the_thumbprint_is_the_one_openssl_computes() {
        // openssl x509 -in tests/fixtures/app.crt -noout -fingerprint -sha256
        // 2F:5F:05:24:74:1A:9A:92:73:9A:F1:16:3B:B5:19:99:1C:CF:E8:7F:40:F6:52:34:15:85:A0:7F:F3:77:DA:65,
        // which is this in base64url without padding.
        assert_eq!(sha256_thumbprint(&certificate_der("app.crt")), "L18FJHQampJzmvEWO7UZmRzP6H9A9lI0FYWgf_N32mU");
    }

    #[test]
    fn an_encrypted_pem_key_opens_with_its_password_under_pbkdf2_and_scrypt() {
        // app-encrypted.pem: `openssl pkcs8 -topk8 -v2 aes-256-cbc` (PBKDF2-HMAC-SHA256, 2048 rounds);
        // app-scrypt.pem: `openssl pkcs8 -topk8 -scrypt` (N=16384, r=8, p=1, AES-256-CBC); both
        // of app.pem's key with -passout pass:fixture-pem-password, after app.pem's certificate.
        let expected = sha256_thumbprint(&certificate_der("app.crt"));
        for file in ["app-encrypted.pem", "app-scrypt.pem"] {
            let (thumbprint, x5c) = parts(open(file, Some(PASSWORD), false).unwrap());
            assert_eq!(thumbprint, expected, "{file}");
            assert!(x5c.is_none(), "no chain unless asked");
        }
    }

    #[test]
    fn an_encrypted_pem_key_without_or_with_a_wrong_password_says_what_to_do() {
        let missing = open("app-encrypted.pem", None, false).unwrap_err();
        assert!(missing.contains("set AZURE_CLIENT_CERTIFICATE_PASSWORD"), "{missing}");
        for file in ["app-encrypted.pem", "app-scrypt.pem"] {
            let wrong = open(file, Some("not-the-password"), false).unwrap_err();
            assert!(wrong.contains(file) && wrong.contains("check the password"), "{wrong}");
        }
        // `openssl rsa -aes256 -traditional`: the legacy form is refused with the conversion.
        let legacy = open("app-legacy-encrypted.pem", Some(PASSWORD), false).unwrap_err();
        assert!(legacy.contains("openssl pkcs8 -topk8"), "{legacy}");
    }

    #[test]
    fn the_chain_starts_with_the_keys_certificate_whatever_the_files_order() {
        // app-chain.pem: other.crt, then app.pem's certificate and (plain) key.
        let (app, other) = (certificate_der("app.crt"), certificate_der("other.crt"));
        let (thumbprint, x5c) = parts(open("app-chain.pem", None, true).unwrap());
        assert_eq!(thumbprint, sha256_thumbprint(&app));
        let standard = base64::engine::general_purpose::STANDARD;
        assert_eq!(x5c.unwrap(), vec![standard.encode(&app), standard.encode(&other)]);
        let (_, x5c) = parts(open("app.pfx", Some("fixture-pfx-password"), true).unwrap());
        assert_eq!(x5c.unwrap(), vec![standard.encode(&app)]);
    }

    #[test]
    fn send_certificate_chain_reads_one_or_true_in_any_case() {
        for yes in ["1", "true", "TRUE", "True"] {
            assert!(send_certificate_chain(Some(yes)), "{yes}");
        }
        for no in ["0", "false", "yes", "", " true"] {
            assert!(!send_certificate_chain(Some(no)), "{no}");
        }
        assert!(!send_certificate_chain(None));
    }
}
