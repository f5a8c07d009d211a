//! `security-defaults`: the tenant's security defaults policy (Graph v1.0,
//! `identitySecurityDefaultsEnforcementPolicy`). Read needs Policy.Read.All; write needs
//! Policy.ReadWrite.SecurityDefaults.

use serde_json::json;

use super::spec::{Access, Advice, Pending, Scope, Spec};
use super::{Reading, Value};
use crate::cloud::{Api, Call, CallError, CloudClient, graph};

pub(crate) const SPEC: Spec = Spec {
    name: "security-defaults",
    scope: Scope::Tenant,
    values: &[Value::Enabled, Value::Disabled],
    api: Api::Graph,
    permission: "Policy.ReadWrite.SecurityDefaults",
    document: "https://learn.microsoft.com/entra/fundamentals/security-defaults",
    access: Access::Tenant { read: read_boxed, write: |_, value| write(value) },
    // Turning security defaults off lifts MFA for every user of the tenant.
    weakening: &[Value::Disabled],
    advice: Advice {
        read_only: "grant the app Policy.Read.All (Microsoft Graph, application) and admin consent",
        changing: "grant the app Policy.Read.All and Policy.ReadWrite.SecurityDefaults (Microsoft Graph, application) and admin consent",
    },
    ..Spec::PLAIN
};

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

fn read_boxed(client: &CloudClient) -> Pending<'_> {
    Box::pin(read(client))
}

pub(crate) fn write(value: Value) -> Call {
    graph::patch(PATH.into(), json!({"isEnabled": value == Value::Enabled}))
}
