//! The full v1.0 `conditionalAccessPolicy` object, every property present as Graph lists it (the
//! live capture in rknightion/graph2otel's conditionalaccess collector test, 2026-07-17, and the
//! v1.0 CSDL): unset conditions are `null`, unset lists `[]`.

use serde_json::{Value, json};
use uuid::Uuid;

/// `conditions.users` (conditionalAccessUsers).
#[derive(Clone, Debug, Default)]
pub(crate) struct Users {
    pub include_users: Vec<String>,
    pub exclude_users: Vec<String>,
    pub include_groups: Vec<String>,
    pub exclude_groups: Vec<String>,
    pub include_roles: Vec<String>,
    pub exclude_roles: Vec<String>,
}

/// What a seeded policy says; [`Draft::json`] writes it out in full.
#[derive(Clone, Debug)]
pub(crate) struct Draft {
    pub id: Uuid,
    pub display_name: String,
    /// enabled | disabled | enabledForReportingButNotEnforced
    pub state: &'static str,
    pub template_id: Option<&'static str>,
    pub users: Users,
    pub include_applications: Vec<String>,
    pub exclude_applications: Vec<String>,
    pub client_app_types: Vec<&'static str>,
    /// (includeLocations, excludeLocations), or no locations condition.
    pub locations: Option<(Vec<String>, Vec<String>)>,
    /// builtInControls (operator OR); `None` with no strength is `grantControls: null`.
    pub built_in_controls: Option<Vec<&'static str>>,
    /// Require Microsoft's built-in "Multifactor authentication" strength instead.
    pub mfa_strength: bool,
    pub session_controls: Value,
}

impl Draft {
    pub(crate) fn new(id: Uuid, display_name: &str, state: &'static str) -> Draft {
        Draft {
            id,
            display_name: display_name.into(),
            state,
            template_id: None,
            users: Users::default(),
            include_applications: vec!["All".into()],
            exclude_applications: Vec::new(),
            client_app_types: vec!["all"],
            locations: None,
            built_in_controls: None,
            mfa_strength: false,
            session_controls: Value::Null,
        }
    }

    fn grant_json(&self) -> Value {
        if self.built_in_controls.is_none() && !self.mfa_strength {
            return Value::Null;
        }
        let strength = if self.mfa_strength {
            json!({
                "id": "00000000-0000-0000-0000-000000000002",
                "createdDateTime": "2021-12-01T08:00:00Z",
                "modifiedDateTime": "2021-12-01T08:00:00Z",
                "displayName": "Multifactor authentication",
                "description": "Combinations of methods that satisfy strong authentication, such as a password + SMS",
                "policyType": "builtIn",
                "requirementsSatisfied": "mfa",
                "allowedCombinations": ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush", "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse", "password,microsoftAuthenticatorPush", "password,softwareOath", "password,hardwareOath", "password,sms", "password,voice"],
            })
        } else {
            Value::Null
        };
        json!({
            "authenticationStrength": strength,
            "authenticationStrength@odata.context": format!(
                "https://graph.microsoft.com/v1.0/$metadata#identity/conditionalAccess/policies('{}')/grantControls/authenticationStrength/$entity",
                self.id
            ),
            "builtInControls": self.built_in_controls.clone().unwrap_or_default(),
            "customAuthenticationFactors": [],
            "operator": "OR",
            "termsOfUse": [],
        })
    }

    pub(crate) fn json(&self) -> Value {
        let users = &self.users;
        let locations = match &self.locations {
            Some((include, exclude)) => json!({"includeLocations": include, "excludeLocations": exclude}),
            None => Value::Null,
        };
        json!({
            "id": self.id.to_string(),
            "templateId": self.template_id,
            "displayName": self.display_name,
            "createdDateTime": "2025-09-24T12:59:05.2884951Z",
            "modifiedDateTime": "2025-10-05T16:20:33.7922016Z",
            "deletedDateTime": null,
            "state": self.state,
            "sessionControls": self.session_controls,
            "conditions": {
                "userRiskLevels": [],
                "signInRiskLevels": [],
                "clientAppTypes": self.client_app_types,
                "servicePrincipalRiskLevels": [],
                "insiderRiskLevels": null,
                "authenticationFlows": null,
                "platforms": null,
                "locations": locations,
                "devices": null,
                "clientApplications": null,
                "applications": {
                    "includeApplications": self.include_applications,
                    "excludeApplications": self.exclude_applications,
                    "includeUserActions": [],
                    "includeAuthenticationContextClassReferences": [],
                    "applicationFilter": null,
                },
                "users": {
                    "includeUsers": users.include_users,
                    "excludeUsers": users.exclude_users,
                    "includeGroups": users.include_groups,
                    "excludeGroups": users.exclude_groups,
                    "includeRoles": users.include_roles,
                    "excludeRoles": users.exclude_roles,
                    "includeGuestsOrExternalUsers": null,
                    "excludeGuestsOrExternalUsers": null,
                },
            },
            "grantControls": self.grant_json(),
        })
    }
}

/// An IP named location (ipNamedLocation) with IPv4 ranges.
pub(crate) fn ip_named_location(id: Uuid, display_name: &str, trusted: bool, ranges: &[&str]) -> Value {
    let ranges: Vec<Value> =
        ranges.iter().map(|r| json!({"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": r})).collect();
    json!({
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "id": id.to_string(),
        "displayName": display_name,
        "createdDateTime": "2025-09-24T12:40:10.1234567Z",
        "modifiedDateTime": "2025-09-24T12:40:10.1234567Z",
        "isTrusted": trusted,
        "ipRanges": ranges,
    })
}
