//! Conditional Access, as far as SMTP AUTH cares: which enabled policies cover a user's SMTP
//! client, and whether their grant is one that client can satisfy.
//!
//! Read from Graph's `conditionalAccessPolicy` (v1.0, `GET identity/conditionalAccess/policies`,
//! Policy.Read.All; "conditionalAccessPolicy resource type" and its condition types,
//! learn.microsoft.com/graph/api/resources/conditionalaccesspolicy). What the conditions mean for
//! a legacy client comes from Entra's "Conditions in Conditional Access policy" page: "Other
//! clients" are the Basic protocols SMTP among them, and "sign-ins from legacy authentication
//! clients don't support multifactor authentication (MFA) and don't pass device state
//! information, so they are blocked by Conditional Access grant controls, like requiring MFA or
//! compliant devices"; a policy whose client apps condition is not configured applies to every
//! client app type.

use serde::Deserialize;
use serde_json::Value;

use super::ClientKind;

/// Exchange Online's application id ("Verify first-party Microsoft applications in sign-in
/// reports"); `Office365` names the suite that holds it ("Apps included in Conditional Access
/// Office 365 app suite").
pub(crate) const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";

/// One policy, with only the parts that decide SMTP AUTH.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Policy {
    pub id: String,
    pub display_name: String,
    pub state: String,
    pub conditions: Conditions,
    pub grant_controls: Option<GrantControls>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Conditions {
    pub users: Option<Users>,
    pub applications: Option<Applications>,
    pub client_app_types: Vec<String>,
    pub locations: Option<Value>,
    pub platforms: Option<Value>,
    pub devices: Option<Value>,
    pub sign_in_risk_levels: Vec<String>,
    pub user_risk_levels: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Users {
    pub include_users: Vec<String>,
    pub exclude_users: Vec<String>,
    pub include_groups: Vec<String>,
    pub exclude_groups: Vec<String>,
    pub include_roles: Vec<String>,
    pub exclude_roles: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Applications {
    pub include_applications: Vec<String>,
    pub exclude_applications: Vec<String>,
    pub application_filter: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct GrantControls {
    pub built_in_controls: Vec<String>,
    pub authentication_strength: Option<Value>,
    pub terms_of_use: Vec<String>,
    pub custom_authentication_factors: Vec<String>,
}

/// Who a user is, for a policy's users condition: their id, and the groups (transitively) and
/// directory roles (by role template id) they hold, all lower case.
pub(crate) trait Membership {
    fn in_group(&self, user_id: &str, group_id: &str) -> bool;
    fn in_role(&self, user_id: &str, role_template_id: &str) -> bool;
}

/// What one policy does to one user's SMTP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// It does not apply, or applies with nothing this client cannot do.
    None,
    /// It blocks the client; the words say how.
    Blocks(String),
    /// It blocks the client only under a condition the tool cannot see (the device's address).
    Depends(String),
}

fn contains(list: &[String], wanted: &str) -> bool {
    list.iter().any(|item| item.eq_ignore_ascii_case(wanted))
}

impl Policy {
    /// Reads one policy of a listing page; `None` for an entry that is not one.
    pub(crate) fn from_json(value: &Value) -> Option<Policy> {
        serde_json::from_value(value.clone()).ok().filter(|p: &Policy| !p.id.is_empty())
    }

    /// Enforced: report-only (`enabledForReportingButNotEnforced`) and disabled policies never block.
    pub(crate) fn is_enforced(&self) -> bool {
        self.state.eq_ignore_ascii_case("enabled")
    }

    /// The groups and roles its users condition names, for reading their members once.
    pub(crate) fn named_groups(&self) -> impl Iterator<Item = &String> {
        self.conditions.users.iter().flat_map(|u| u.include_groups.iter().chain(&u.exclude_groups))
    }

    /// The groups its users condition excludes.
    pub(crate) fn named_exclusions(&self) -> impl Iterator<Item = &String> {
        self.conditions.users.iter().flat_map(|u| u.exclude_groups.iter())
    }

    pub(crate) fn named_roles(&self) -> impl Iterator<Item = &String> {
        self.conditions.users.iter().flat_map(|u| u.include_roles.iter().chain(&u.exclude_roles))
    }

    /// Whether the users condition takes in `user_id`: included directly, by group or by role,
    /// and not excluded any of those ways (exclusions win, "Users and groups" in "Conditional
    /// Access: Users, groups, agents, and workload identities").
    pub(crate) fn covers_user(&self, user_id: &str, members: &dyn Membership) -> bool {
        let Some(users) = &self.conditions.users else { return false };
        let named = |ids: &[String]| ids.iter().any(|id| id.eq_ignore_ascii_case(user_id));
        let grouped = |ids: &[String]| ids.iter().any(|id| members.in_group(user_id, id));
        let roled = |ids: &[String]| ids.iter().any(|id| members.in_role(user_id, id));
        let included = contains(&users.include_users, "All")
            || named(&users.include_users)
            || grouped(&users.include_groups)
            || roled(&users.include_roles);
        let excluded = named(&users.exclude_users) || grouped(&users.exclude_groups) || roled(&users.exclude_roles);
        included && !excluded
    }

    /// Whether the applications condition takes in Exchange Online.
    fn covers_exchange(&self) -> bool {
        let Some(apps) = &self.conditions.applications else { return false };
        let names_exchange = |list: &[String]| contains(list, EXCHANGE_APP_ID) || contains(list, "Office365");
        (contains(&apps.include_applications, "All") || names_exchange(&apps.include_applications))
            && !names_exchange(&apps.exclude_applications)
    }

    /// Whether the client app types condition takes in this client. An SMTP client with a
    /// password is an "other" (legacy) client; one with OAuth is a mobile or desktop client.
    fn covers_client(&self, client: ClientKind) -> bool {
        let types = &self.conditions.client_app_types;
        if types.is_empty() || contains(types, "all") {
            return true;
        }
        match client {
            ClientKind::Basic => contains(types, "other"),
            ClientKind::Oauth => contains(types, "mobileAppsAndDesktopClients"),
        }
    }

    /// What the grant asks that this client cannot give. A Basic client can give nothing: MFA,
    /// a compliant or joined device, an approved app, terms of use. An OAuth client gets its token
    /// interactively once and can satisfy MFA then; only `block` stops it for certain.
    fn refuses(&self, client: ClientKind) -> Option<String> {
        let grant = self.grant_controls.as_ref()?;
        if contains(&grant.built_in_controls, "block") {
            return Some("blocks access".into());
        }
        if client == ClientKind::Oauth {
            return None;
        }
        let mut asks: Vec<String> = grant.built_in_controls.clone();
        if grant.authentication_strength.as_ref().is_some_and(|s| !s.is_null()) {
            asks.push("an authentication strength".into());
        }
        if !grant.terms_of_use.is_empty() {
            asks.push("terms of use".into());
        }
        if !grant.custom_authentication_factors.is_empty() {
            asks.push("a custom authentication factor".into());
        }
        (!asks.is_empty())
            .then(|| format!("requires {}, which a client with a password cannot give", asks.join(" or ")))
    }

    /// Conditions the tool cannot evaluate for a device it has never seen.
    fn unseen_condition(&self) -> Option<&'static str> {
        let present = |value: &Option<Value>| value.as_ref().is_some_and(|v| !v.is_null());
        let conditions = &self.conditions;
        if present(&conditions.locations) {
            Some("the device's network location")
        } else if present(&conditions.platforms) {
            Some("the device's platform")
        } else if present(&conditions.devices) {
            Some("a device filter")
        } else if !conditions.sign_in_risk_levels.is_empty() || !conditions.user_risk_levels.is_empty() {
            Some("the sign-in's or the user's risk")
        } else if conditions.applications.as_ref().is_some_and(|a| present(&a.application_filter)) {
            Some("an application filter")
        } else {
            None
        }
    }

    /// What this policy does to `user_id`'s SMTP client of kind `client`.
    pub(crate) fn effect(&self, user_id: &str, client: ClientKind, members: &dyn Membership) -> Effect {
        if !self.is_enforced()
            || !self.covers_exchange()
            || !self.covers_client(client)
            || !self.covers_user(user_id, members)
        {
            return Effect::None;
        }
        let Some(refusal) = self.refuses(client) else { return Effect::None };
        let text = format!("policy '{}' ({}) {refusal}", self.display_name, self.id);
        match self.unseen_condition() {
            Some(condition) => Effect::Depends(format!("{text}, depending on {condition}")),
            None => Effect::Blocks(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Members;
    impl Membership for Members {
        fn in_group(&self, user: &str, group: &str) -> bool {
            (user, group) == ("u1", "devices") || (user, group) == ("u2", "break-glass")
        }
        fn in_role(&self, user: &str, role: &str) -> bool {
            (user, role) == ("u3", "62e90394-69f5-4237-9190-012177145e10")
        }
    }

    /// The "Block legacy authentication" policy as Graph returns it (a live capture published by
    /// rknightion/graph2otel), for all users but a break-glass group.
    fn block_legacy(state: &str) -> Policy {
        Policy::from_json(&json!({
            "id": "738ad89e-6820-4164-84f1-53d295360d42", "displayName": "Block legacy authentication",
            "state": state, "templateId": "0b2282f9-2862-4178-88b5-d79340b36cb8",
            "conditions": {
                "applications": {"includeApplications": ["All"], "excludeApplications": [], "applicationFilter": null},
                "clientAppTypes": ["exchangeActiveSync", "other"], "locations": null, "platforms": null,
                "signInRiskLevels": [], "userRiskLevels": [],
                "users": {"includeUsers": ["All"], "excludeUsers": [], "includeGroups": [], "excludeGroups": ["break-glass"],
                          "includeRoles": [], "excludeRoles": []}
            },
            "grantControls": {"operator": "OR", "builtInControls": ["block"], "authenticationStrength": null,
                              "customAuthenticationFactors": [], "termsOfUse": []},
            "sessionControls": null
        }))
        .unwrap()
    }

    #[test]
    fn block_legacy_blocks_basic_only_and_spares_its_exclusions() {
        let policy = block_legacy("enabled");
        assert!(matches!(policy.effect("u1", ClientKind::Basic, &Members), Effect::Blocks(_)));
        assert_eq!(policy.effect("u1", ClientKind::Oauth, &Members), Effect::None, "legacy clients only");
        assert_eq!(policy.effect("u2", ClientKind::Basic, &Members), Effect::None, "excluded by group");
        assert_eq!(
            block_legacy("enabledForReportingButNotEnforced").effect("u1", ClientKind::Basic, &Members),
            Effect::None
        );
        assert_eq!(block_legacy("disabled").effect("u1", ClientKind::Basic, &Members), Effect::None);
    }

    #[test]
    fn mfa_for_all_client_apps_stops_basic_but_not_oauth() {
        let mut policy = block_legacy("enabled");
        policy.conditions.client_app_types = vec!["all".into()];
        policy.conditions.users =
            Some(Users { include_roles: vec!["62e90394-69f5-4237-9190-012177145e10".into()], ..Users::default() });
        policy.grant_controls = Some(GrantControls { built_in_controls: vec!["mfa".into()], ..Default::default() });
        assert!(
            matches!(policy.effect("u3", ClientKind::Basic, &Members), Effect::Blocks(text) if text.contains("requires mfa"))
        );
        assert_eq!(
            policy.effect("u3", ClientKind::Oauth, &Members),
            Effect::None,
            "MFA is given when the token is got"
        );
        assert_eq!(policy.effect("u1", ClientKind::Basic, &Members), Effect::None, "not in the role");
    }

    #[test]
    fn look_alikes_do_not_block() {
        let mut other_app = block_legacy("enabled");
        other_app.conditions.applications.as_mut().unwrap().include_applications =
            vec!["00000003-0000-0ff1-ce00-000000000000".into()];
        assert_eq!(other_app.effect("u1", ClientKind::Basic, &Members), Effect::None, "SharePoint only");
        let mut browser = block_legacy("enabled");
        browser.conditions.client_app_types = vec!["browser".into()];
        assert_eq!(browser.effect("u1", ClientKind::Basic, &Members), Effect::None);
        let mut session_only = block_legacy("enabled");
        session_only.grant_controls = None;
        assert_eq!(session_only.effect("u1", ClientKind::Basic, &Members), Effect::None);
        let mut excluded_exchange = block_legacy("enabled");
        excluded_exchange.conditions.applications.as_mut().unwrap().exclude_applications = vec!["Office365".into()];
        assert_eq!(excluded_exchange.effect("u1", ClientKind::Basic, &Members), Effect::None);
    }

    #[test]
    fn a_location_condition_makes_the_verdict_depend_on_the_device() {
        let mut policy = block_legacy("enabled");
        policy.conditions.locations = Some(json!({"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}));
        assert!(
            matches!(policy.effect("u1", ClientKind::Basic, &Members), Effect::Depends(text) if text.contains("network location"))
        );
    }
}
