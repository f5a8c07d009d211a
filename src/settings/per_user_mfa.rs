//! `per-user-mfa`: legacy per-user MFA, through Graph beta's `authentication/requirements`.
//! Read needs Policy.Read.All; write needs Policy.ReadWrite.AuthenticationMethod.

use serde_json::json;

use super::spec::{Access, Advice, Pending, Scope, Spec};
use super::{Reading, Value};
use crate::cloud::graph::DirectoryUser;
use crate::cloud::{Api, Call, CallError, CloudClient, graph, paths};

pub(crate) const SPEC: Spec = Spec {
    name: "per-user-mfa",
    scope: Scope::User,
    values: &[Value::Disabled, Value::Enabled, Value::Enforced],
    per_row: true,
    api: Api::Graph,
    permission: "Policy.ReadWrite.AuthenticationMethod",
    document: "https://learn.microsoft.com/entra/identity/authentication/howto-mfa-userstates",
    satisfies,
    access: Access::Target {
        read: |client, user, _| read_boxed(client, user),
        write: |_, user, _, value| Ok(write(&user.id, value)),
    },
    // Enabling MFA for a user with a registered method makes it enforced: read it back.
    read_back: &[Value::Enabled],
    // Turning MFA off for a user lifts it.
    weakening: &[Value::Disabled],
    advice: Advice {
        read_only: "grant the app Policy.Read.All (Microsoft Graph, application) and admin consent",
        changing: "grant the app Policy.Read.All and Policy.ReadWrite.AuthenticationMethod (Microsoft Graph, application) and admin consent",
    },
    ..Spec::PLAIN
};

/// "Enforced" MFA satisfies "enabled", since enabling MFA for a user who registered a method
/// makes it enforced by itself.
fn satisfies(current: Value, desired: Value) -> bool {
    current == desired || (desired == Value::Enabled && current == Value::Enforced)
}

fn path(user_id: &str) -> String {
    format!("beta/{}/authentication/requirements", paths::user(user_id))
}

pub(crate) async fn read(client: &CloudClient, user_id: &str) -> Result<Reading, CallError> {
    let answer = client.send(&graph::get(path(user_id))).await?;
    let state = answer.body["perUserMfaState"].as_str().and_then(Value::from_name);
    match state.filter(|v| SPEC.values.contains(v)) {
        Some(value) => Ok(Reading::of(Some(value), &answer)),
        None => Err(super::unexpected(&answer, "perUserMfaState")),
    }
}

fn read_boxed<'a>(client: &'a CloudClient, user: &'a DirectoryUser) -> Pending<'a> {
    Box::pin(read(client, &user.id))
}

pub(crate) fn write(user_id: &str, value: Value) -> Call {
    graph::patch(path(user_id), json!({"perUserMfaState": value.name()}))
}
