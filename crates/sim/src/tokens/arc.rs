//! Azure Arc's hybrid metadata service, as Microsoft documents it ("Authenticate against Azure
//! resources with Azure Arc-enabled servers", learn.microsoft.com/azure/azure-arc/servers/
//! managed-identity-authentication): a token request without proof is answered 401 with
//! `WWW-Authenticate: Basic realm=<path>`, a key file just written in the agent's tokens
//! directory; the request sent again with `Authorization: Basic <the file's contents>` gets the
//! token. Each key is good for one answer, as the agent's are short-lived.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use axum::http::StatusCode;
use serde_json::json;

use crate::reply::Reply;

#[derive(Debug)]
pub(crate) struct ArcChallenges {
    directory: PathBuf,
    keys: Mutex<HashSet<String>>,
}

impl ArcChallenges {
    pub(crate) fn new(directory: PathBuf) -> ArcChallenges {
        ArcChallenges { directory, keys: Mutex::new(HashSet::new()) }
    }

    /// Whether `authorization` carries a key this service wrote; the key is spent.
    pub(crate) fn proven(&self, authorization: Option<&str>) -> bool {
        let Some(key) = authorization.and_then(|a| a.strip_prefix("Basic ")) else { return false };
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).remove(key.trim())
    }

    /// A fresh key written to a file of its own, and the 401 that names it.
    pub(crate) fn challenge(&self) -> Reply {
        let key: String = {
            let mut rng = fastrand::Rng::new();
            (0..44).map(|_| rng.alphanumeric()).collect()
        };
        let path = self.directory.join(format!("{}.key", uuid::Uuid::new_v4()));
        if let Err(error) = std::fs::create_dir_all(&self.directory).and_then(|()| std::fs::write(&path, &key)) {
            let text = format!("cannot write the challenge key: {error}");
            return Reply::json(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "server_error", "error_description": text}),
            );
        }
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
        Reply::json(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized_client", "error_description": "N/A"}))
            .with_header("www-authenticate", format!("Basic realm={}", path.display()))
    }
}
