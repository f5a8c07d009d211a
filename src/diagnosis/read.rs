//! Reading what the tenant says of each layer, once per tenant: never once per mailbox. The
//! authentication policies' users come from one `Get-User` listing per policy, group members
//! from one listing per group a Conditional Access policy names, role holders from one listing
//! per role it names.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::conditional_access::Policy;
use super::facts::{AuthPolicy, BasicSmtp, Known, Memberships, TenantFacts, Unreadable};
use crate::cloud::paths::{SEGMENT, odata_string, query_pair};
use crate::cloud::{Answer, Call, CallError, CloudClient, exchange, graph};
use crate::settings::{Value as SettingValue, security_defaults, smtp_auth};

/// What reading Exchange's organisation-wide settings needs: the app role and a directory role
/// that may read them (Get-OrganizationConfig answers 403 to less than Global Reader, as public
/// clients measured on real tenants: rknightion/graph2otel).
const EXCHANGE_READ: &str = "Exchange.ManageAsApp and the Global Reader (or an Exchange administrator) role";

fn unreadable(what: &'static str, permission: &'static str) -> impl Fn(CallError) -> Unreadable {
    move |error| Unreadable { what, permission, error: error.to_string() }
}

/// Reads every tenant-wide layer, side by side.
pub(crate) async fn read_tenant(client: &CloudClient, basic_smtp: BasicSmtp) -> TenantFacts {
    let transport = async {
        smtp_auth::organisation_disabled(client)
            .await
            .map_err(unreadable("the organisation's SMTP AUTH switch (Get-TransportConfig)", EXCHANGE_READ))
    };
    let defaults = async {
        security_defaults::read(client)
            .await
            .map(|reading| reading.value == Some(SettingValue::Enabled))
            .map_err(unreadable("security defaults", "Policy.Read.All"))
    };
    let policies = async {
        let policies = conditional_access_policies(client).await?;
        let members = memberships(client, &policies).await;
        Ok::<_, Unreadable>((policies, members))
    };
    let ((default_policy, policies_read, assignments), organisation_smtp_disabled, security_defaults, access) =
        tokio::join!(authentication_policies(client), transport, defaults, policies);
    let (conditional_access, memberships) = match access {
        Ok((policies, members)) => (Ok(policies), members),
        Err(error) => (Err(error.clone()), Err(error)),
    };
    TenantFacts {
        organisation_smtp_disabled,
        default_policy,
        policies: policies_read,
        assignments,
        security_defaults,
        conditional_access,
        memberships,
        basic_smtp,
    }
}

/// The last day before Microsoft turns Basic authentication for SMTP AUTH off by default for
/// existing tenants ("End of December 2026", Exchange Team blog, January 2026).
pub(crate) const BASIC_SMTP_UNCHANGED_UNTIL: time::Date = time::macros::date!(2026 - 12 - 30);

/// What is known of the tenant's Basic authentication for SMTP AUTH: what the administrator told
/// the tool (`--basic-auth-smtp`), else what Microsoft's timeline says for `today`.
pub(crate) fn basic_smtp(told: Option<bool>, today: time::Date) -> BasicSmtp {
    match told {
        Some(true) => BasicSmtp::On("Basic authentication for SMTP AUTH is on (as the administrator said, --basic-auth-smtp on)".into()),
        Some(false) => BasicSmtp::Off("Basic authentication for SMTP AUTH is off (as the administrator said, --basic-auth-smtp off)".into()),
        None if today <= BASIC_SMTP_UNCHANGED_UNTIL => BasicSmtp::On(
            "Basic authentication for SMTP AUTH is unchanged until the end of December 2026 (Microsoft's timeline)".into(),
        ),
        None => BasicSmtp::Unknown(
            "Basic authentication for SMTP AUTH is off by default for existing tenants since the end of December 2026 unless an administrator turned it back on, and no API shows which: say --basic-auth-smtp on or off".into(),
        ),
    }
}

/// Every page of a Graph listing, its objects gathered.
async fn graph_listing(client: &CloudClient, path: String) -> Result<Vec<Value>, CallError> {
    let mut items = Vec::new();
    client.pages(graph::get(path), |answer| collect(&mut items, answer)).await?;
    Ok(items)
}

fn collect(items: &mut Vec<Value>, answer: &Answer) {
    if let Some(page) = answer.body["value"].as_array() {
        items.extend(page.iter().cloned());
    }
}

async fn conditional_access_policies(client: &CloudClient) -> Known<Vec<Policy>> {
    let listed = graph_listing(client, "v1.0/identity/conditionalAccess/policies".into())
        .await
        .map_err(unreadable("Conditional Access policies", "Policy.Read.All"))?;
    Ok(listed.iter().filter_map(Policy::from_json).collect())
}

/// The members of every group and the holders of every role the enforced policies name.
async fn memberships(client: &CloudClient, policies: &[Policy]) -> Known<Memberships> {
    let enforced = || policies.iter().filter(|p| p.is_enforced());
    let groups: HashSet<String> = enforced().flat_map(Policy::named_groups).map(|g| g.to_lowercase()).collect();
    let roles: HashSet<String> = enforced().flat_map(Policy::named_roles).map(|r| r.to_lowercase()).collect();
    let mut members = Memberships::default();
    let failed = unreadable(
        "the members of the groups and roles Conditional Access names",
        "GroupMember.Read.All and RoleManagement.Read.Directory",
    );
    for group in groups {
        let (name, users) = tokio::join!(group_name(client, &group), transitive_users(client, &group));
        members.group_names.insert(group.clone(), name.map_err(&failed)?);
        members.groups.insert(group, users.map_err(&failed)?);
    }
    for role in roles {
        let holders = role_holders(client, &role).await.map_err(&failed)?;
        members.roles.insert(role, holders);
    }
    Ok(members)
}

async fn group_name(client: &CloudClient, group: &str) -> Result<String, CallError> {
    let path = format!("v1.0/groups/{}?$select=id,displayName", percent_encoding::utf8_percent_encode(group, SEGMENT));
    let answer = client.send(&graph::get(path)).await?;
    Ok(answer.body["displayName"].as_str().unwrap_or(group).to_string())
}

/// Every user in a group, nested groups included (`transitiveMembers`), ids lower case.
pub(crate) async fn transitive_users(client: &CloudClient, group: &str) -> Result<HashSet<String>, CallError> {
    let group = percent_encoding::utf8_percent_encode(group, SEGMENT);
    let listed = graph_listing(client, format!("v1.0/groups/{group}/transitiveMembers?$select=id&$top=999")).await?;
    Ok(listed.iter().filter(|m| is_user(m)).filter_map(|m| m["id"].as_str()).map(str::to_lowercase).collect())
}

fn is_user(object: &Value) -> bool {
    object["@odata.type"].as_str().is_none_or(|kind| kind.eq_ignore_ascii_case("#microsoft.graph.user"))
}

/// The users that hold a directory role (by its template id, which is the role definition's id
/// for built-in roles), directly or through a role-assignable group.
async fn role_holders(client: &CloudClient, role: &str) -> Result<HashSet<String>, CallError> {
    let filter = query_pair("$filter", &format!("roleDefinitionId eq {}", odata_string(role)));
    let assignments =
        graph_listing(client, format!("v1.0/roleManagement/directory/roleAssignments?{filter}&$expand=principal"))
            .await?;
    let mut holders = HashSet::new();
    for principal in assignments.iter().map(|a| &a["principal"]) {
        let Some(id) = principal["id"].as_str() else { continue };
        if principal["@odata.type"].as_str().is_some_and(|kind| kind.eq_ignore_ascii_case("#microsoft.graph.group")) {
            holders.extend(transitive_users(client, id).await?);
        } else if is_user(principal) {
            holders.insert(id.to_lowercase());
        }
    }
    Ok(holders)
}

/// Every user that holds a directory role, directly or through a role-assignable group, as
/// (object id, UPN when the assignment's principal says it), ids lower case.
pub(crate) async fn role_holding_users(client: &CloudClient) -> Result<Vec<(String, String)>, CallError> {
    let assignments =
        graph_listing(client, "v1.0/roleManagement/directory/roleAssignments?$expand=principal".into()).await?;
    let mut users = Vec::new();
    for principal in assignments.iter().map(|a| &a["principal"]) {
        let Some(id) = principal["id"].as_str() else { continue };
        if principal["@odata.type"].as_str().is_some_and(|kind| kind.eq_ignore_ascii_case("#microsoft.graph.group")) {
            users.extend(transitive_users(client, id).await?.into_iter().map(|id| (id, String::new())));
        } else if is_user(principal) {
            let upn = principal["userPrincipalName"].as_str().unwrap_or_default().to_lowercase();
            users.push((id.to_lowercase(), upn));
        }
    }
    users.sort();
    users.dedup();
    Ok(users)
}

/// The organisation's default policy, every policy, and every user with one of their own.
async fn authentication_policies(
    client: &CloudClient,
) -> (Known<Option<String>>, Known<Vec<AuthPolicy>>, Known<HashMap<String, String>>) {
    let failed = unreadable(
        "authentication policies (Get-OrganizationConfig, Get-AuthenticationPolicy, Get-User)",
        EXCHANGE_READ,
    );
    let default = organisation_default(client).await.map_err(&failed);
    let policies = match listed_policies(client).await {
        Ok(policies) => policies,
        Err(error) => {
            let error = failed(error);
            return (default, Err(error.clone()), Err(error));
        }
    };
    let mut assignments = HashMap::new();
    for policy in &policies {
        if let Err(error) = users_of(client, policy, &mut assignments).await {
            return (default, Ok(policies), Err(failed(error)));
        }
    }
    (default, Ok(policies), Ok(assignments))
}

fn cmdlet(client: &CloudClient, name: &str, parameters: Map<String, Value>) -> Call {
    exchange::invoke(&client.tenant_id, name, parameters, None)
}

async fn organisation_default(client: &CloudClient) -> Result<Option<String>, CallError> {
    let answer = client.send(&cmdlet(client, "Get-OrganizationConfig", Map::new())).await?;
    Ok(answer.body["value"][0]["DefaultAuthenticationPolicy"].as_str().filter(|p| !p.is_empty()).map(str::to_string))
}

async fn listed_policies(client: &CloudClient) -> Result<Vec<AuthPolicy>, CallError> {
    let mut policies = Vec::new();
    client
        .pages(cmdlet(client, "Get-AuthenticationPolicy", Map::new()), |answer| {
            for policy in answer.body["value"].as_array().into_iter().flatten() {
                let text = |field: &str| policy[field].as_str().unwrap_or_default().to_string();
                policies.push(AuthPolicy {
                    name: text("Name"),
                    distinguished_name: text("DistinguishedName"),
                    guid: text("Guid"),
                    // "By default, Basic authentication is blocked for the protocol" (New-AuthenticationPolicy).
                    allow_basic_smtp: policy["AllowBasicAuthSmtp"].as_bool().unwrap_or(false),
                });
            }
        })
        .await?;
    Ok(policies)
}

/// The users assigned `policy`: `Get-User -Filter "AuthenticationPolicy -eq '<DN>'"`, as
/// "Disable Basic authentication in Exchange Online" finds them (the filter takes the DN).
async fn users_of(
    client: &CloudClient,
    policy: &AuthPolicy,
    into: &mut HashMap<String, String>,
) -> Result<(), CallError> {
    let key = if policy.distinguished_name.is_empty() { &policy.name } else { &policy.distinguished_name };
    let mut parameters = Map::new();
    parameters.insert("Filter".into(), json!(format!("AuthenticationPolicy -eq '{}'", key.replace('\'', "''"))));
    parameters.insert("ResultSize".into(), json!("Unlimited"));
    let mut call = cmdlet(client, "Get-User", parameters);
    call.path.push_str("?$select=ExternalDirectoryObjectId,AuthenticationPolicy");
    call.headers.push(("Prefer", "odata.maxpagesize=1000".into()));
    client
        .pages(call, |answer| {
            for user in answer.body["value"].as_array().into_iter().flatten() {
                if let Some(id) = user["ExternalDirectoryObjectId"].as_str().filter(|id| !id.is_empty()) {
                    into.insert(id.to_lowercase(), policy.name.clone());
                }
            }
        })
        .await?;
    Ok(())
}

/// The authentication policy named `name`, as `Get-AuthenticationPolicy` lists it.
pub(crate) async fn find_policy(client: &CloudClient, name: &str) -> Result<Option<AuthPolicy>, CallError> {
    Ok(listed_policies(client).await?.into_iter().find(|policy| policy.is_named(name)))
}

/// The names of the tenant's authentication policies, for a message.
pub(crate) async fn policy_names(client: &CloudClient) -> Result<Vec<String>, CallError> {
    Ok(listed_policies(client).await?.into_iter().map(|policy| policy.name).collect())
}

/// A group by its id or its display name: `(id, display name)`, or every group of that name.
pub(crate) async fn find_groups(client: &CloudClient, name_or_id: &str) -> Result<Vec<(String, String)>, CallError> {
    if uuid::Uuid::parse_str(name_or_id).is_ok() {
        return match group_name(client, name_or_id).await {
            Ok(name) => Ok(vec![(name_or_id.to_lowercase(), name)]),
            Err(error) if error.is_not_found() => Ok(Vec::new()),
            Err(error) => Err(error),
        };
    }
    let filter = query_pair("$filter", &format!("displayName eq {}", odata_string(name_or_id)));
    let listed = graph_listing(client, format!("v1.0/groups?{filter}&$select=id,displayName")).await?;
    Ok(listed
        .iter()
        .filter_map(|g| {
            Some((g["id"].as_str()?.to_lowercase(), g["displayName"].as_str().unwrap_or_default().to_string()))
        })
        .collect())
}

/// The enforced Conditional Access policies that exclude `group`, by name.
pub(crate) async fn policies_excluding(client: &CloudClient, group: &str) -> Known<Vec<String>> {
    let policies = conditional_access_policies(client).await?;
    Ok(policies
        .iter()
        .filter(|p| p.is_enforced() && p.named_exclusions().any(|g| g.eq_ignore_ascii_case(group)))
        .map(|p| p.display_name.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_basic_switch_is_known_until_the_end_of_december_and_then_only_when_told() {
        let december = time::macros::date!(2026 - 12 - 04);
        let january = time::macros::date!(2027 - 01 - 15);
        assert!(matches!(basic_smtp(None, december), BasicSmtp::On(_)));
        assert!(matches!(basic_smtp(None, january), BasicSmtp::Unknown(text) if text.contains("--basic-auth-smtp")));
        assert!(matches!(basic_smtp(Some(false), december), BasicSmtp::Off(_)));
        assert!(matches!(basic_smtp(Some(true), january), BasicSmtp::On(_)));
    }
}
