//! Exchange Online authentication policies: the policies (`Get-AuthenticationPolicy`), the
//! organisation's `DefaultAuthenticationPolicy` (`Get-OrganizationConfig`) and each user's
//! assignment (`Get-User`'s `AuthenticationPolicy`, set with `Set-User -AuthenticationPolicy`).
//!
//! "The default authentication policy is assigned to all users who don't already have a specific
//! policy assigned to them. Note that the authentication policies assigned to users take precedence
//! over the default policy." ("Disable Basic authentication in Exchange Online"). In Exchange Online
//! only the `AllowBasicAuth*` switches apply (`-BlockLegacyAuth*`/`-BlockModernAuth*` are
//! "available only in on-premises Exchange", New-AuthenticationPolicy).
//!
//! Assignments are one byte per user, allocated only once a policy is assigned to someone.

use serde_json::{Value, json};
use uuid::Uuid;

/// The protocols of the `AllowBasicAuth*` switches, in the order the cmdlet documents them.
pub(crate) const PROTOCOLS: [&str; 12] = [
    "ActiveSync",
    "Autodiscover",
    "Imap",
    "Mapi",
    "OfflineAddressBook",
    "OutlookService",
    "Pop",
    "Powershell",
    "ReportingWebServices",
    "Rpc",
    "Smtp",
    "WebServices",
];

const SMTP: u16 = 1 << 10;

/// One authentication policy. "By default, Basic authentication is blocked for the protocol"
/// (New-AuthenticationPolicy, every AllowBasicAuth* switch): a bit set here allows it.
#[derive(Clone, Debug)]
pub struct AuthenticationPolicy {
    pub name: String,
    pub guid: Uuid,
    /// One bit per entry of [`PROTOCOLS`].
    pub allowed: u16,
}

impl AuthenticationPolicy {
    pub fn new(name: &str, guid: Uuid, allowed: &[&str]) -> AuthenticationPolicy {
        let allowed = PROTOCOLS.iter().enumerate().filter(|(_, p)| allowed.contains(p)).map(|(i, _)| 1 << i).sum();
        AuthenticationPolicy { name: name.into(), guid, allowed }
    }

    pub fn allows_basic_smtp(&self) -> bool {
        self.allowed & SMTP != 0
    }
}

#[derive(Clone, Debug, Default)]
pub struct AuthenticationPolicies {
    pub policies: Vec<AuthenticationPolicy>,
    /// The organisation's `DefaultAuthenticationPolicy`, an index into `policies`.
    pub default: Option<u8>,
    /// Each user's policy plus one (0: none); empty while nobody has one.
    assigned: Vec<u8>,
    /// What follows `CN=<name>,CN=Auth Policies,` in every policy's distinguished name.
    pub configuration_unit: String,
}

impl AuthenticationPolicies {
    /// The configuration unit of a tenant's policies, in the form of Microsoft's example DN
    /// (`CN=Block Basic Auth,CN=Auth Policies,CN=Configuration,CN=contoso.onmicrosoft.com,
    /// CN=ConfigurationUnits,DC=NAMPR11B009,DC=PROD,DC=OUTLOOK,DC=COM`, filter-properties.md).
    pub fn configuration_unit_of(domain: &str) -> String {
        format!("CN=Configuration,CN={domain},CN=ConfigurationUnits,DC=EURPR01A001,DC=PROD,DC=OUTLOOK,DC=COM")
    }

    pub fn add(&mut self, policy: AuthenticationPolicy) -> u8 {
        self.policies.push(policy);
        (self.policies.len() - 1) as u8
    }

    pub fn distinguished_name(&self, policy: u8) -> String {
        let name = self.policies.get(policy as usize).map_or("", |p| p.name.as_str());
        format!("CN={name},CN=Auth Policies,{}", self.configuration_unit)
    }

    /// `AuthPolicyIdParameter`: "Name, Distinguished name (DN), GUID" (Set-AuthenticationPolicy).
    pub fn find(&self, identity: &str) -> Option<u8> {
        let guid = Uuid::parse_str(identity).ok();
        (0..self.policies.len()).map(|i| i as u8).find(|&i| {
            let policy = &self.policies[i as usize];
            Some(policy.guid) == guid
                || policy.name.eq_ignore_ascii_case(identity)
                || self.distinguished_name(i).eq_ignore_ascii_case(identity)
        })
    }

    /// The policy assigned to the user itself (not the organisation's default).
    pub fn assigned(&self, user: usize) -> Option<u8> {
        self.assigned.get(user).and_then(|&p| p.checked_sub(1))
    }

    pub fn assign(&mut self, user: usize, policy: Option<u8>, users: usize) {
        if policy.is_none() && self.assigned.is_empty() {
            return;
        }
        self.assigned.resize(users.max(self.assigned.len()), 0);
        self.assigned[user] = policy.map_or(0, |p| p + 1);
    }

    /// Assigns `policy` to every one of `users` users at once.
    pub fn assign_all(&mut self, policy: Option<u8>, users: usize) {
        self.assigned = vec![policy.map_or(0, |p| p + 1); users];
    }

    /// The policy that applies: the user's own, else the organisation's default, else none.
    pub fn effective(&self, user: usize) -> Option<u8> {
        self.assigned(user).or(self.default)
    }

    /// Whether Exchange refuses Basic authentication for SMTP to this user before Entra is asked
    /// ("blocked at the first pre-authentication step", disable-basic-authentication). No policy
    /// at all blocks nothing.
    pub fn blocks_basic_smtp(&self, user: usize) -> bool {
        self.effective(user).is_some_and(|p| !self.policies[p as usize].allows_basic_smtp())
    }

    /// A user's `AuthenticationPolicy` as Get-User returns it: the policy's DN, since the
    /// property is the link attribute msExchAuthPolicyLink (filter-properties.md), or null.
    /// (Microsoft documents no returned value; the DN is our reading.)
    pub fn user_value(&self, user: usize) -> Value {
        self.assigned(user).map_or(Value::Null, |p| self.distinguished_name(p).into())
    }

    pub fn default_value(&self) -> Value {
        self.default.map_or(Value::Null, |p| self.distinguished_name(p).into())
    }

    /// One policy as Get-AuthenticationPolicy returns it: Name, DistinguishedName and the
    /// AllowBasicAuth* booleans named as the switches are (the cmdlet documents no output list;
    /// the disable-basic-auth page reads these, as public clients do).
    pub fn policy_json(&self, policy: u8) -> Value {
        let entry = &self.policies[policy as usize];
        let mut object = json!({
            "Identity": entry.name,
            "Name": entry.name,
            "DistinguishedName": self.distinguished_name(policy),
            "Guid": entry.guid.to_string(),
            "Id": entry.name,
            "ExchangeObjectId": entry.guid.to_string(),
            "IsValid": true,
            "ObjectState": "Unchanged",
            "WhenCreatedUTC": "2025-02-11T08:30:12Z",
            "WhenChangedUTC": "2025-02-11T08:30:12Z",
        });
        for (i, protocol) in PROTOCOLS.iter().enumerate() {
            object[format!("AllowBasicAuth{protocol}")] = (entry.allowed & (1 << i) != 0).into();
        }
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_policy_wins_over_the_default_and_no_policy_blocks_nothing() {
        let mut policies = AuthenticationPolicies {
            configuration_unit: AuthenticationPolicies::configuration_unit_of("contoso.onmicrosoft.com"),
            ..Default::default()
        };
        assert!(!policies.blocks_basic_smtp(0), "no policy at all");
        let block = policies.add(AuthenticationPolicy::new("Block Basic Auth", Uuid::from_u128(1), &[]));
        let allow = policies.add(AuthenticationPolicy::new("Allow SMTP", Uuid::from_u128(2), &["Smtp"]));
        policies.default = Some(block);
        assert!(policies.blocks_basic_smtp(0), "the default applies to a user without a policy");
        policies.assign(0, Some(allow), 3);
        assert!(!policies.blocks_basic_smtp(0), "the user's own policy wins");
        assert_eq!(policies.user_value(1), Value::Null);
        let dn = policies.distinguished_name(allow);
        assert!(dn.starts_with("CN=Allow SMTP,CN=Auth Policies,CN=Configuration,CN=contoso.onmicrosoft.com,"));
        assert_eq!(policies.find(&dn.to_lowercase()), Some(allow));
        assert_eq!(policies.find("allow smtp"), Some(allow));
        assert_eq!(policies.find(&Uuid::from_u128(1).to_string()), Some(block));
        assert_eq!(policies.find("nothing"), None);
        assert_eq!(policies.policy_json(allow)["AllowBasicAuthSmtp"], true);
        assert_eq!(policies.policy_json(allow)["AllowBasicAuthImap"], false);
    }
}
