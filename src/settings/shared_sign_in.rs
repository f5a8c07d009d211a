//! `shared-sign-in`: whether anyone can sign in as a shared, room or equipment mailbox, the
//! directory user's `accountEnabled` (Microsoft Graph, "Update user", learn.microsoft.com/graph/
//! api/user-update: `PATCH /users/{id}` with `{"accountEnabled": false}`). People reach such a
//! mailbox through their own delegated access, so its own account needs no sign-in; CIS Microsoft
//! 365 Foundations 1.2.2 ("Ensure sign-in to shared mailboxes is blocked") finds the shared ones
//! with `Get-Mailbox -RecipientTypeDetails SharedMailbox` and checks `accountEnabled` through
//! Graph, joined on `ExternalDirectoryObjectId`; the issue adds rooms and equipment, which have no
//! use for a sign-in either. A user's own mailbox is not this setting's: it reads as not applying.
//!
//! The kind of mailbox comes from the run's bulk `Get-Mailbox` listing when there is one, and the
//! account from the directory user the run resolved; a read that must see a write's effect asks
//! both services.

use serde_json::json;

use super::mailbox_property::{self, Cmdlet, Kind, MailboxProperty};
use super::spec::{Absent, Access, Advice, Pending, Scope, Spec};
use super::{Reading, Setting, Sources, Value};
use crate::cloud::graph::DirectoryUser;
use crate::cloud::{Api, CallError, CloudClient, RequestIds, graph, paths};

/// The listed property that says whether the setting applies.
const KIND: MailboxProperty =
    MailboxProperty { cmdlet: Cmdlet::Mailbox, name: "RecipientTypeDetails", kind: Kind::SharedMailbox };

pub(crate) const SPEC: Spec = Spec {
    name: "shared-sign-in",
    scope: Scope::Mailbox,
    values: &[Value::Enabled, Value::Disabled],
    api: Api::Graph,
    permission: "User.EnableDisableAccount.All and User.Read.All",
    document: "https://learn.microsoft.com/graph/api/user-update",
    access: Access::Target {
        read: |client, user, sources| Box::pin(read(client, user, sources)) as Pending<'_>,
        write: |_, user, _, value| {
            Ok(graph::patch(
                format!("v1.0/{}", paths::user(&user.id)),
                json!({"accountEnabled": value == Value::Enabled}),
            ))
        },
    },
    listed: Some(KIND),
    absent: Absent::NoSharedMailbox,
    // Letting a shared mailbox be signed in to again opens an account nobody owns.
    weakening: &[Value::Enabled],
    advice: Advice {
        read_only: "grant the app User.Read.All (Microsoft Graph, application) and Exchange.ManageAsApp with the Exchange Recipient Administrator role",
        changing: "grant the app User.EnableDisableAccount.All and User.Read.All (Microsoft Graph, application) and Exchange.ManageAsApp with the Exchange Recipient Administrator role",
    },
    ..Spec::PLAIN
};

/// Whether the user's account may sign in, where the mailbox is shared, a room or equipment;
/// `None` for any other mailbox, or none.
async fn read(client: &CloudClient, user: &DirectoryUser, sources: Sources<'_>) -> Result<Reading, CallError> {
    let listed = match sources.mailbox_index {
        Some(index) => index.lookup(&user.id, Setting::SharedSignIn).await,
        None => None,
    };
    let (kind, account_enabled) = match listed {
        Some(kind) => (Reading { value: kind, attempts: 0, ids: RequestIds::default() }, Some(user.account_enabled)),
        None => (mailbox_property::read(client, &user.upn, KIND).await?, None),
    };
    if kind.value != Some(Value::Member) {
        return Ok(Reading { value: None, ..kind });
    }
    let mut reading = Reading { value: None, ..kind };
    let enabled = match account_enabled {
        Some(enabled) => enabled,
        None => {
            let answer =
                client.send(&graph::get(format!("v1.0/{}?$select=accountEnabled", paths::user(&user.id)))).await?;
            reading.attempts += answer.attempts;
            answer.body["accountEnabled"].as_bool().ok_or_else(|| super::unexpected(&answer, "accountEnabled"))?
        }
    };
    reading.value = Some(if enabled { Value::Enabled } else { Value::Disabled });
    Ok(reading)
}
