//! `per-user-mfa`: legacy per-user MFA, through Graph beta's `authentication/requirements`.
//! Read needs Policy.Read.All; write needs Policy.ReadWrite.AuthenticationMethod.

use serde_json::json;

use super::{Reading, Value};
use crate::cloud::{Call, CallError, CloudClient, graph, paths};

fn path(user_id: &str) -> String {
    format!("beta/{}/authentication/requirements", paths::user(user_id))
}

pub(crate) async fn read(client: &CloudClient, user_id: &str) -> Result<Reading, CallError> {
    let answer = client.send(&graph::get(path(user_id))).await?;
    let state = answer.body["perUserMfaState"].as_str().and_then(Value::from_name);
    match state.filter(|v| super::Setting::PerUserMfa.allowed().contains(v)) {
        Some(value) => Ok(Reading::of(Some(value), &answer)),
        None => Err(super::unexpected(&answer, "perUserMfaState")),
    }
}

pub(crate) fn write(user_id: &str, value: Value) -> Call {
    graph::patch(path(user_id), json!({"perUserMfaState": value.name()}))
}
