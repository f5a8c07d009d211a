//! The Graph paths the simulated tenant serves, the methods each allows, the application
//! permissions that open it and what it costs against the identity budget.

use axum::http::Method;

use super::GraphCall;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Route {
    SecurityDefaults,
    Users,
    User(String),
    Requirements(String),
    /// `auditLogs/signIns`: the sign-in log (see [`crate::sign_ins`]).
    SignIns,
    /// `identity/conditionalAccess/policies` and `…/namedLocations`.
    ConditionalAccessPolicies,
    NamedLocations,
    Groups,
    Group(String),
    /// `groups/{id}/members` or, transitive, `groups/{id}/transitiveMembers`.
    GroupMembers {
        group: String,
        transitive: bool,
    },
    /// `POST groups/{id}/members/$ref`.
    AddMember(String),
    /// `DELETE groups/{id}/members/{member}/$ref`.
    RemoveMember {
        group: String,
        member: String,
    },
    /// `POST users/{id | userPrincipalName}/checkMemberGroups`, or on `directoryObjects/{id}`.
    CheckMemberGroups {
        key: String,
        directory_object: bool,
    },
    /// `roleManagement/directory/roleAssignments`.
    RoleAssignments,
}

impl Route {
    /// Routes added with the SMTP AUTH layers (their listing rules are stricter; see `cost`).
    pub(crate) fn is_directory(&self) -> bool {
        !matches!(
            self,
            Route::SecurityDefaults | Route::Users | Route::User(_) | Route::Requirements(_) | Route::SignIns
        )
    }

    pub(crate) fn allows(&self, method: &Method) -> bool {
        match self {
            Route::SecurityDefaults | Route::Requirements(_) | Route::User(_) => {
                [Method::GET, Method::PATCH].contains(method)
            }
            Route::AddMember(_) | Route::CheckMemberGroups { .. } => method == Method::POST,
            Route::RemoveMember { .. } => method == Method::DELETE,
            _ => method == Method::GET,
        }
    }
}

/// The route of decoded path segments, or the segment that matched nothing.
pub(super) fn route_of(segments: &[String], beta: bool) -> Result<Route, String> {
    let first = segments.first().map(String::as_str).unwrap_or_default();
    // `users('$x@contoso.com')` is how Graph addresses a UPN that starts with '$'.
    if let Some(inner) = first.strip_prefix("users('").and_then(|s| s.strip_suffix("')")) {
        let key = inner.replace("''", "'");
        return user_route(key, &segments[1..], beta);
    }
    let words: Vec<&str> = segments.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["policies", "identitySecurityDefaultsEnforcementPolicy"] => Ok(Route::SecurityDefaults),
        ["users"] => Ok(Route::Users),
        ["auditLogs", "signIns"] => Ok(Route::SignIns),
        ["identity", "conditionalAccess", "policies"] => Ok(Route::ConditionalAccessPolicies),
        ["identity", "conditionalAccess", "namedLocations"] => Ok(Route::NamedLocations),
        ["roleManagement", "directory", "roleAssignments"] => Ok(Route::RoleAssignments),
        ["groups"] => Ok(Route::Groups),
        ["groups", id, rest @ ..] if !id.is_empty() => group_route(id, rest),
        ["directoryObjects", id, "checkMemberGroups"] if !id.is_empty() => {
            Ok(Route::CheckMemberGroups { key: id.to_string(), directory_object: true })
        }
        ["users", key, ..] if !key.is_empty() => user_route(key.to_string(), &segments[2..], beta),
        _ => Err(segments.last().cloned().unwrap_or_default()),
    }
}

fn group_route(id: &str, rest: &[&str]) -> Result<Route, String> {
    let group = id.to_string();
    match rest {
        [] => Ok(Route::Group(group)),
        ["members"] => Ok(Route::GroupMembers { group, transitive: false }),
        ["transitiveMembers"] => Ok(Route::GroupMembers { group, transitive: true }),
        ["members", "$ref"] => Ok(Route::AddMember(group)),
        ["members", member, "$ref"] if !member.is_empty() => {
            Ok(Route::RemoveMember { group, member: member.to_string() })
        }
        _ => Err(rest.last().map(|s| s.to_string()).unwrap_or_default()),
    }
}

fn user_route(key: String, rest: &[String], beta: bool) -> Result<Route, String> {
    match rest {
        [] => Ok(Route::User(key)),
        [a, r] if a == "authentication" && r == "requirements" && beta => Ok(Route::Requirements(key)),
        [c] if c == "checkMemberGroups" => Ok(Route::CheckMemberGroups { key, directory_object: false }),
        _ => Err(rest.last().cloned().unwrap_or_default()),
    }
}

/// The application permissions that allow a call: any one of the alternatives, each of which
/// needs all of its permissions. From each API page's permissions table ("Update
/// identitySecurityDefaultsEnforcementPolicy" lists Policy.ReadWrite.ConditionalAccess beside
/// Policy.ReadWrite.SecurityDefaults; "directoryObject: checkMemberGroups" pairs User.Read.All
/// with a group permission).
pub(super) fn permissions_for(call: &GraphCall) -> &'static [&'static [&'static str]] {
    const GROUP_READ: &[&[&str]] = &[
        &["GroupMember.Read.All"],
        &["Group.Read.All"],
        &["Directory.Read.All"],
        &["GroupMember.ReadWrite.All"],
        &["Group.ReadWrite.All"],
        &["Directory.ReadWrite.All"],
    ];
    match (&call.route, call.method == Method::PATCH) {
        (Route::SecurityDefaults, true) => {
            &[&["Policy.ReadWrite.SecurityDefaults"], &["Policy.ReadWrite.ConditionalAccess"]]
        }
        (Route::Requirements(_), true) => &[&["Policy.ReadWrite.AuthenticationMethod"]],
        // "Update user": accountEnabled alone takes User.EnableDisableAccount.All with
        // User.Read.All at least; higher, User.ReadWrite.All or Directory.ReadWrite.All.
        (Route::User(_), true) => &[
            &["User.EnableDisableAccount.All", "User.Read.All"],
            &["User.ReadWrite.All"],
            &["Directory.ReadWrite.All"],
        ],
        (Route::SecurityDefaults | Route::Requirements(_), false) => &[&["Policy.Read.All"]],
        // "List signIns": least privileged AuditLog.Read.All, higher Directory.Read.All.
        (Route::SignIns, _) => &[&["AuditLog.Read.All"], &["Directory.Read.All"]],
        // "List policies": "Least privileged: Policy.Read.All … Higher: Not available".
        (Route::ConditionalAccessPolicies | Route::NamedLocations, _) => &[&["Policy.Read.All"]],
        (Route::Groups | Route::Group(_) | Route::GroupMembers { .. }, _) => GROUP_READ,
        (Route::AddMember(_) | Route::RemoveMember { .. }, _) => {
            &[&["GroupMember.ReadWrite.All"], &["Group.ReadWrite.All"], &["Directory.ReadWrite.All"]]
        }
        (Route::CheckMemberGroups { .. }, _) => {
            &[&["User.Read.All", "GroupMember.Read.All"], &["User.Read.All", "Group.Read.All"], &["Directory.Read.All"]]
        }
        (Route::RoleAssignments, _) => {
            &[&["RoleManagement.Read.Directory"], &["RoleManagement.Read.All"], &["Directory.Read.All"]]
        }
        // "List users" and "Get user": least privileged User.Read.All, higher User.ReadWrite.All,
        // Directory.Read.All, Directory.ReadWrite.All.
        _ => &[&["User.Read.All"], &["User.ReadWrite.All"], &["Directory.Read.All"], &["Directory.ReadWrite.All"]],
    }
}

/// Resource units and whether it is a write, from the cost table of "Identity and access service
/// limits" (learn.microsoft.com/graph/throttling-limits): listing `users` costs 2,
/// `groups/{id}/members` 3, `groups/{id}/transitiveMembers` 5, `checkMemberGroups` 4 (the `me/`
/// rows apply to `users/{id}/`), any other GET 1; any other POST, PATCH, PUT or DELETE 1 unit and
/// a write ("ReadWrite"), which makes `directoryObjects/{id}/checkMemberGroups` a write too, as
/// the table reads. `$select` takes 1 off; on the routes added with the SMTP AUTH layers, `$expand`
/// adds 1 and a `$top` under 20 takes 1 off (the older routes keep the costs their tests know).
/// Never below 1.
pub(super) fn cost(call: &GraphCall) -> (f64, bool) {
    if call.method == Method::PATCH {
        return (1.0, true);
    }
    let (base, write): (f64, bool) = match call.route {
        Route::Users => (2.0, false),
        Route::GroupMembers { transitive: false, .. } => (3.0, false),
        Route::GroupMembers { transitive: true, .. } => (5.0, false),
        Route::CheckMemberGroups { directory_object: false, .. } => (4.0, false),
        Route::CheckMemberGroups { directory_object: true, .. } => (1.0, true),
        Route::AddMember(_) | Route::RemoveMember { .. } => (1.0, true),
        _ => (1.0, false),
    };
    if write {
        return (1.0, true);
    }
    let mut cost = base;
    if call.select.is_some() {
        cost -= 1.0;
    }
    if call.route.is_directory() {
        if call.expand.is_some() {
            cost += 1.0;
        }
        if call.top.is_some_and(|top| top < 20) {
            cost -= 1.0;
        }
    }
    (cost.max(1.0), false)
}

/// Whether a request changes the tenant (for counting writes that a fault hid from the client).
pub(crate) fn is_write(method: &Method, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    *method == Method::PATCH
        || ([Method::POST, Method::DELETE].contains(method) && (path.ends_with("/$ref") || path.ends_with("/%24ref")))
}
