//! `ca-exclusion`: whether a user is in a group that the blocking Conditional Access policies
//! already exclude (`apply --ca-exclusion-group`). The tool never creates or edits a Conditional
//! Access policy; it adds the user to a group an administrator made an exclusion of.
//!
//! Read with `checkMemberGroups` (transitive, as Conditional Access counts membership; a read
//! action sent as a POST: "directoryObject: checkMemberGroups"); written by adding a member
//! (`POST groups/{id}/members/$ref`, 204; 400 when the user already is one) and removed by
//! `DELETE groups/{id}/members/{id}/$ref` ("Add members", "Remove member", Graph v1.0;
//! GroupMember.ReadWrite.All).

use serde_json::json;

use super::spec::{Access, Advice, Pending, Scope, Spec};
use super::{Reading, Sources, Value};
use crate::cloud::graph::DirectoryUser;
use crate::cloud::paths::SEGMENT;
use crate::cloud::{Answer, Api, Call, CallError, CloudClient, graph};

pub(crate) const SPEC: Spec = Spec {
    name: "ca-exclusion",
    scope: Scope::User,
    api: Api::Graph,
    // Only `--ca-exclusion-group` sets it.
    permission: "GroupMember.ReadWrite.All",
    document: "https://learn.microsoft.com/graph/api/group-post-members",
    access: Access::Target { read: read_target, write: write_target },
    already_so: Some(already_so),
    // Taken only for a user whom a Conditional Access policy blocks, and whom the group unblocks.
    opt_in: true,
    advice: Advice {
        read_only: "grant the app GroupMember.ReadWrite.All (Microsoft Graph, application) and admin consent",
        changing: "grant the app GroupMember.ReadWrite.All (Microsoft Graph, application) and admin consent",
    },
    ..Spec::PLAIN
};

fn no_group() -> CallError {
    CallError::Local { code: "NoExclusionGroup", message: "ca-exclusion needs --ca-exclusion-group".into() }
}

fn segment(id: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(id, SEGMENT)
}

pub(crate) async fn read(client: &CloudClient, user_id: &str, group: &str) -> Result<Reading, CallError> {
    let mut call =
        graph::post(format!("v1.0/users/{}/checkMemberGroups", segment(user_id)), json!({"groupIds": [group]}));
    call.write = false;
    let answer = client.send(&call).await?;
    let Some(groups) = answer.body["value"].as_array() else {
        return Err(super::unexpected(&answer, "value"));
    };
    let member = groups.iter().filter_map(|g| g.as_str()).any(|g| g.eq_ignore_ascii_case(group));
    Ok(Reading::of(Some(if member { Value::Member } else { Value::NotMember }), &answer))
}

fn read_target<'a>(client: &'a CloudClient, user: &'a DirectoryUser, sources: Sources<'a>) -> Pending<'a> {
    Box::pin(async move { read(client, &user.id, sources.exclusion_group.ok_or_else(no_group)?).await })
}

fn write_target(
    client: &CloudClient,
    user: &DirectoryUser,
    sources: Sources<'_>,
    value: Value,
) -> Result<Call, CallError> {
    let group = sources.exclusion_group.ok_or_else(no_group)?;
    Ok(write(client.base_url(Api::Graph), &user.id, group, value))
}

/// Adds or removes the user; `graph` is the base URL of the cloud's Graph, which names the member.
pub(crate) fn write(graph_base: &str, user_id: &str, group: &str, value: Value) -> Call {
    match value {
        Value::Member => graph::post(
            format!("v1.0/groups/{}/members/$ref", segment(group)),
            json!({"@odata.id": format!("{}/v1.0/directoryObjects/{user_id}", graph_base.trim_end_matches('/'))}),
        ),
        _ => graph::delete(format!("v1.0/groups/{}/members/{}/$ref", segment(group), segment(user_id))),
    }
}

/// An answer that says the change was already so counts as done: adding a member answers 400
/// "One or more added object references already exist" (the text public clients match on, e.g.
/// n8n's Entra node), and removing one who is not a member answers 404.
pub(crate) fn already_so(value: Value, error: &CallError) -> Option<Answer> {
    let CallError::Refused { status, message, ids, attempts, .. } = error else { return None };
    let already = match value {
        Value::Member => *status == 400 && message.contains("already exist"),
        _ => *status == 404,
    };
    already.then(|| Answer { status: *status, body: serde_json::Value::Null, ids: ids.clone(), attempts: *attempts })
}
