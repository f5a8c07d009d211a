//! `security-defaults`: the tenant's security defaults policy (Graph v1.0).
//! Read needs Policy.Read.All; write needs Policy.ReadWrite.SecurityDefaults.

use serde_json::json;

use super::{Reading, Value};
use crate::cloud::{Call, CallError, CloudClient, graph};

const PATH: &str = "v1.0/policies/identitySecurityDefaultsEnforcementPolicy";

pub(crate) async fn read(client: &CloudClient) -> Result<Reading, CallError> {
    let answer = client.send(&graph::get(PATH.into())).await?;
    let value = match answer.body["isEnabled"].as_bool() {
        Some(true) => Value::Enabled,
        Some(false) => Value::Disabled,
        None => return Err(super::unexpected(&answer, "isEnabled")),
    };
    Ok(Reading::of(Some(value), &answer))
}

pub(crate) fn write(value: Value) -> Call {
    graph::patch(PATH.into(), json!({"isEnabled": value == Value::Enabled}))
}
