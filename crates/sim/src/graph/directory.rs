//! Groups, their members and directory role assignments as Graph v1.0 serves them: `groups`
//! (`$filter=displayName eq '…'`), `groups/{id}`, `groups/{id}/members` and `…/transitiveMembers`
//! (directory objects carrying `@odata.type`; default page 100, `$top` up to 999), adding and
//! removing a member with `$ref`, `checkMemberGroups`, and
//! `roleManagement/directory/roleAssignments` with `$expand=principal`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::paging::{Listing, select_typed};
use super::{GraphCall, Route, context_url, not_found, select, string_literal};
use crate::Service;
use crate::directory::{Member, RoleAssignment};
use crate::reply::{Reply, RequestIds};
use crate::tenant::Tenant;

/// "The default and maximum page sizes are 100 and 999 objects respectively" (the directory's
/// listings of directory objects, e.g. user-list-transitivememberof).
const PAGE: usize = 100;
/// "You can check up to a maximum of 20 groups per request" (directoryObject: checkMemberGroups).
const CHECK_LIMIT: usize = 20;

fn bad_request(code: &str, message: &str, ids: &RequestIds) -> Reply {
    Reply::graph_error(StatusCode::BAD_REQUEST, code, message, ids)
}

fn unsupported_filter(ids: &RequestIds) -> Reply {
    bad_request("Request_UnsupportedQuery", "Invalid filter clause: the expression is not supported.", ids)
}

/// A group by the id in the path: 400 for what is not an object id, 404 for an unknown one.
fn group_of(tenant: &Tenant, key: &str, ids: &RequestIds) -> Result<u32, Reply> {
    if uuid::Uuid::parse_str(key).is_err() {
        return Err(bad_request("Request_BadRequest", &format!("Invalid object identifier '{key}'."), ids));
    }
    tenant.directory.find_group(key).ok_or_else(|| not_found(key, ids))
}

/// A user or a group by object id.
fn object_of(tenant: &Tenant, id: &str) -> Option<Member> {
    uuid::Uuid::parse_str(id).ok()?;
    let user = tenant.find_user(id).map(|u| Member::User(u as u32));
    user.or_else(|| tenant.directory.find_group(id).map(Member::Group))
}

/// A directory object in full, as a collection of directory objects lists it.
fn object_json(tenant: &Tenant, member: Member) -> Value {
    let (mut object, kind) = match member {
        Member::User(u) => (tenant.users[u as usize].graph_json(), "#microsoft.graph.user"),
        Member::Group(g) => (tenant.directory.groups[g as usize].graph_json(), "#microsoft.graph.group"),
    };
    object["@odata.type"] = kind.into();
    object
}

pub(super) fn execute(service: &Service, tenant: &mut Tenant, call: &GraphCall, ids: &RequestIds) -> Reply {
    match &call.route {
        Route::Groups => list_groups(service, tenant, call, ids),
        Route::Group(key) => match group_of(tenant, key, ids) {
            Ok(g) => {
                let mut group = select(tenant.directory.groups[g as usize].graph_json(), call.select.as_deref());
                group["@odata.context"] = context_url(service, call, "groups/$entity").into();
                Reply::json(StatusCode::OK, group)
            }
            Err(reply) => reply,
        },
        Route::GroupMembers { group, transitive } => list_members(service, tenant, call, ids, group, *transitive),
        Route::AddMember(group) => add_member(service, tenant, call, ids, group),
        Route::RemoveMember { group, member } => remove_member(service, tenant, ids, group, member),
        Route::CheckMemberGroups { key, directory_object } => {
            check_member_groups(service, tenant, call, ids, key, *directory_object)
        }
        _ => not_found(call.method.as_str(), ids),
    }
}

/// `GET /groups`, all of them or `$filter=displayName eq '…'` (a default filter: no
/// `ConsistencyLevel` needed); any other filter is refused.
fn list_groups(service: &Service, tenant: &Tenant, call: &GraphCall, ids: &RequestIds) -> Reply {
    let chosen: Vec<u32> = match call.filter.as_deref().map(str::trim) {
        None => (0..tenant.directory.groups.len() as u32).collect(),
        Some(filter) => {
            let literal = filter.strip_prefix("displayName eq ").and_then(|rest| string_literal(rest.trim_start()));
            match literal {
                Some((name, tail)) if tail.trim().is_empty() => tenant.directory.groups_named(&name),
                _ => return unsupported_filter(ids),
            }
        }
    };
    let listing = Listing {
        call,
        base: service.base_url(),
        path: "groups".into(),
        context: context_url(service, call, "groups"),
        default_page: PAGE,
    };
    listing.reply(&chosen, |&g| select(tenant.directory.groups[g as usize].graph_json(), call.select.as_deref()))
}

fn list_members(
    service: &Service,
    tenant: &Tenant,
    call: &GraphCall,
    ids: &RequestIds,
    key: &str,
    transitive: bool,
) -> Reply {
    let group = match group_of(tenant, key, ids) {
        Ok(group) => group,
        Err(reply) => return reply,
    };
    if call.filter.is_some() {
        // Filtering members needs advanced queries (ConsistencyLevel and $count): not served.
        return unsupported_filter(ids);
    }
    let members: Vec<Member> = if transitive {
        tenant.directory.transitive_members(group)
    } else {
        tenant.directory.direct_members(group).collect()
    };
    let relation = if transitive { "transitiveMembers" } else { "members" };
    let listing = Listing {
        call,
        base: service.base_url(),
        path: format!("groups/{}/{relation}", tenant.directory.groups[group as usize].id),
        context: context_url(service, call, "directoryObjects"),
        default_page: PAGE,
    };
    listing.reply(&members, |&m| select_typed(object_json(tenant, m), call.select.as_deref()))
}

/// The object an `@odata.id` names: `…/directoryObjects/{id}` (or `…/users/{id}`, `…/groups/{id}`).
fn referenced_id(call: &GraphCall) -> Option<String> {
    let link = call.body.as_ref()?.get("@odata.id")?.as_str()?;
    let (collection, id) = link.trim_end_matches('/').rsplit_once('/')?;
    let collection = collection.rsplit('/').next()?;
    ["directoryObjects", "users", "groups"].contains(&collection).then(|| id.to_string())
}

/// `POST /groups/{id}/members/$ref` (group-post-members): 204; "400 Bad Request … when the object
/// is already a member of the group"; "404 Not Found … when the object being added doesn't exist".
fn add_member(service: &Service, tenant: &mut Tenant, call: &GraphCall, ids: &RequestIds, key: &str) -> Reply {
    let group = match group_of(tenant, key, ids) {
        Ok(group) => group,
        Err(reply) => return reply,
    };
    let Some(id) = referenced_id(call) else {
        return bad_request("BadRequest", "Invalid URL format specified in @odata.id for members.", ids);
    };
    let Some(member) = object_of(tenant, &id) else {
        return not_found(&id, ids);
    };
    if !tenant.directory.add_member(group, member) {
        // The text public clients match on (n8n's Microsoft Entra node, among others).
        return bad_request(
            "Request_BadRequest",
            "One or more added object references already exist for the following modified properties: 'members'.",
            ids,
        );
    }
    service.count_write();
    Reply::empty(StatusCode::NO_CONTENT)
}

/// `DELETE /groups/{id}/members/{id}/$ref` (group-delete-members): 204, or 404 for a non-member.
fn remove_member(service: &Service, tenant: &mut Tenant, ids: &RequestIds, key: &str, member_id: &str) -> Reply {
    let group = match group_of(tenant, key, ids) {
        Ok(group) => group,
        Err(reply) => return reply,
    };
    let removed = object_of(tenant, member_id).is_some_and(|member| tenant.directory.remove_member(group, member));
    if !removed {
        return not_found(member_id, ids);
    }
    service.count_write();
    Reply::empty(StatusCode::NO_CONTENT)
}

/// `checkMemberGroups`: "return from that list those groups … of which the specified … directory
/// object is a member. This function is transitive."
fn check_member_groups(
    service: &Service,
    tenant: &Tenant,
    call: &GraphCall,
    ids: &RequestIds,
    key: &str,
    directory_object: bool,
) -> Reply {
    let object =
        if directory_object { object_of(tenant, key) } else { tenant.find_user(key).map(|u| Member::User(u as u32)) };
    let Some(object) = object else {
        return not_found(key, ids);
    };
    let wanted = call.body.as_ref().and_then(|b| b.get("groupIds")).and_then(Value::as_array);
    let Some(wanted) = wanted.filter(|list| list.iter().all(Value::is_string)) else {
        return bad_request("Request_BadRequest", "The groupIds parameter must be a collection of strings.", ids);
    };
    if wanted.len() > CHECK_LIMIT {
        let text = format!("Too many groupIds: at most {CHECK_LIMIT} groups may be checked per request.");
        return bad_request("Request_BadRequest", &text, ids);
    }
    let groups = tenant.directory.groups_of(object);
    let found: Vec<&Value> = wanted
        .iter()
        .filter(|id| id.as_str().and_then(|id| tenant.directory.find_group(id)).is_some_and(|g| groups.contains(&g)))
        .collect();
    Reply::json(
        StatusCode::OK,
        json!({"@odata.context": context_url(service, call, "Collection(Edm.String)"), "value": found}),
    )
}

/// `GET /roleManagement/directory/roleAssignments` with an optional `$filter` on `roleDefinitionId`
/// or `principalId` (eq) and `$expand=principal` (rbacapplication-list-roleassignments).
pub(super) fn role_assignments(service: &Service, tenant: &Tenant, call: &GraphCall, ids: &RequestIds) -> Reply {
    if call.expand.as_deref().is_some_and(|e| !e.trim().eq_ignore_ascii_case("principal")) {
        return bad_request("BadRequest", "Only $expand=principal is supported on role assignments.", ids);
    }
    let principal_id = |a: &RoleAssignment| tenant.member_reference(a.principal)["id"].as_str().map(str::to_string);
    let filter = match call.filter.as_deref().map(str::trim) {
        None => None,
        Some(text) => {
            let clause = ["roleDefinitionId eq ", "principalId eq "].iter().find_map(|p| {
                let (value, tail) = string_literal(text.strip_prefix(p)?.trim_start())?;
                tail.trim().is_empty().then(|| (p.starts_with("role"), value))
            });
            match clause {
                Some(clause) => Some(clause),
                None => return unsupported_filter(ids),
            }
        }
    };
    let chosen: Vec<&RoleAssignment> = tenant
        .directory
        .role_assignments
        .iter()
        .filter(|a| match &filter {
            None => true,
            Some((true, role)) => a.role_definition_id.eq_ignore_ascii_case(role),
            Some((false, principal)) => principal_id(a).is_some_and(|p| p.eq_ignore_ascii_case(principal)),
        })
        .collect();
    let expanded = call.expand.is_some();
    let fragment = if expanded {
        "roleManagement/directory/roleAssignments(principal())"
    } else {
        "roleManagement/directory/roleAssignments"
    };
    let listing = Listing {
        call,
        base: service.base_url(),
        path: "roleManagement/directory/roleAssignments".into(),
        context: context_url(service, call, fragment),
        default_page: PAGE,
    };
    listing.reply(&chosen, |a| {
        let mut object = json!({
            "id": a.id,
            "principalId": principal_id(a),
            "directoryScopeId": "/",
            "roleDefinitionId": a.role_definition_id,
        });
        if expanded {
            object["principal"] = object_json(tenant, a.principal);
        }
        select(object, call.select.as_deref())
    })
}
