//! Azure Arc's challenge: the hybrid metadata service answers a token request 401 with
//! `WWW-Authenticate: Basic realm=<path>`, a key file it just wrote; the caller proves it runs on
//! the machine, with the rights of Arc's group, by reading the file and sending its contents back
//! as `Authorization: Basic <key>` ("Authenticate against Azure resources with Azure Arc-enabled
//! servers", learn.microsoft.com/azure/azure-arc/servers/managed-identity-authentication).
//!
//! A server that is not Arc's could name any file and have its contents sent to it, so the file
//! is held to the checks azure-identity's `azure_arc.py` makes: in Arc's tokens directory
//! (`/var/opt/azcmagent/tokens`, or `%ProgramData%\AzureConnectedMachineAgent\Tokens` on
//! Windows), named `*.key`, at most 4,096 bytes. The path is resolved first, so neither `..` nor
//! a link leads out of the directory.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::support::secret::SecretString;

/// The largest key file azure-identity accepts.
const KEY_CAP: u64 = 4096;

/// Where Arc's agent writes its challenge keys on this system.
pub fn tokens_directory() -> PathBuf {
    if cfg!(windows) {
        let data = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        PathBuf::from(data).join("AzureConnectedMachineAgent").join("Tokens")
    } else {
        PathBuf::from("/var/opt/azcmagent/tokens")
    }
}

/// The key a 401 challenge asks for, read from the file it names once that file passes the
/// checks; `tokens` is Arc's tokens directory.
pub fn answer_challenge(headers: &[(String, String)], tokens: &Path) -> Result<SecretString, Error> {
    let refuse = |why: String| {
        Error::Auth(format!(
            "Azure Arc's identity endpoint {why}; is IDENTITY_ENDPOINT Arc's own (http://localhost:40342)?"
        ))
    };
    let challenge = headers
        .iter()
        .find(|(name, _)| name == "www-authenticate")
        .map(|(_, value)| value.trim())
        .ok_or_else(|| refuse("answered 401 without a challenge (WWW-Authenticate)".into()))?;
    let realm = challenge
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, rest)| rest.trim().strip_prefix("realm="))
        .map(|path| path.trim_matches('"'))
        .filter(|path| !path.is_empty())
        .ok_or_else(|| refuse(format!("answered with a challenge that names no key file ({challenge:?})")))?;
    let named = Path::new(realm);
    let outside = || {
        refuse(format!("named {} as its key file, which is not a .key file in {}", named.display(), tokens.display()))
    };
    let (Ok(file), Ok(directory)) = (std::fs::canonicalize(named), std::fs::canonicalize(tokens)) else {
        return Err(outside());
    };
    if !file.starts_with(&directory) || file.extension().is_none_or(|e| e != "key") {
        return Err(outside());
    }
    let size = std::fs::metadata(&file)
        .map_err(|e| refuse(format!("named {}, which cannot be read ({e})", file.display())))?;
    if !size.is_file() || size.len() > KEY_CAP {
        return Err(refuse(format!("named {}, which is not a file of at most {KEY_CAP} bytes", file.display())));
    }
    let key = std::fs::read_to_string(&file).map_err(|e| {
        refuse(format!("named {}, which cannot be read ({e}): add this account to the himds group", file.display()))
    })?;
    Ok(SecretString::new(key.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(path: &Path) -> Vec<(String, String)> {
        vec![("www-authenticate".into(), format!("Basic realm={}", path.display()))]
    }

    #[test]
    fn a_key_in_the_tokens_directory_is_read() {
        let tokens = tempfile::tempdir().unwrap();
        let key = tokens.path().join("8c9d.key");
        std::fs::write(&key, "s3cret-key\n").unwrap();
        assert_eq!(answer_challenge(&challenge(&key), tokens.path()).unwrap().expose(), "s3cret-key");
        let quoted = vec![("www-authenticate".into(), format!("basic realm=\"{}\"", key.display()))];
        assert!(answer_challenge(&quoted, tokens.path()).is_ok());
    }

    #[test]
    fn a_file_elsewhere_or_of_another_kind_is_never_read() {
        let tokens = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let secret = elsewhere.path().join("secret.key");
        std::fs::write(&secret, "not for the server").unwrap();
        let escaping = tokens.path().join("..").join(elsewhere.path().file_name().unwrap()).join("secret.key");
        let not_a_key = tokens.path().join("passwd");
        std::fs::write(&not_a_key, "x").unwrap();
        let large = tokens.path().join("large.key");
        std::fs::write(&large, vec![b'k'; 5000]).unwrap();
        let mut cases = vec![secret.clone(), escaping, not_a_key, large, tokens.path().join("missing.key")];
        #[cfg(unix)]
        {
            let link = tokens.path().join("link.key");
            std::os::unix::fs::symlink(&secret, &link).unwrap();
            cases.push(link);
        }
        for path in cases {
            let refused = answer_challenge(&challenge(&path), tokens.path()).expect_err(&path.display().to_string());
            assert!(refused.to_string().contains("Azure Arc's identity endpoint"), "{refused}");
            assert!(!refused.to_string().contains("not for the server"), "{refused}");
        }
        assert!(answer_challenge(&[], tokens.path()).is_err());
        let bearer = vec![("www-authenticate".into(), "Bearer realm=x".into())];
        assert!(answer_challenge(&bearer, tokens.path()).is_err());
    }
}
