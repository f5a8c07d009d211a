//! `GET /_sim/state`: the tenant as the simulator holds it, under the service's own property
//! names, so that tests can check a tenant without the tool's own reading of it.

use serde_json::{Value, json};

use super::blockers::Seeded;
use super::directory::Member;
use super::tenant::Tenant;

impl Tenant {
    /// A directory object as a reference: `@odata.type` and `id`.
    pub fn member_reference(&self, member: Member) -> Value {
        match member {
            Member::User(u) => {
                json!({"@odata.type": "#microsoft.graph.user", "id": self.users[u as usize].id.to_string()})
            }
            Member::Group(g) => {
                json!({"@odata.type": "#microsoft.graph.group", "id": self.directory.groups[g as usize].id.to_string()})
            }
        }
    }

    fn users_snapshot(&self) -> Vec<Value> {
        let users = self.users.iter().enumerate().map(|(index, user)| {
            json!({
                "id": user.id.to_string(),
                "userPrincipalName": &*user.upn,
                "mail": user.mail(),
                "userType": if user.guest { "Guest" } else { "Member" },
                "licensed": user.licensed,
                "hasMailbox": user.has_mailbox(),
                "smtpClientAuthenticationDisabled": user.smtp_auth_disabled,
                "casMailbox": user.has_mailbox().then(|| user.cas_mailbox_json()),
                "mailbox": user.has_mailbox().then(|| user.mailbox_properties.json()),
                "auditBypassAssociation": {"AuditBypassEnabled": user.mailbox_properties.audit_bypass},
                "perUserMfaState": user.mfa.as_str(),
                "hasRegisteredMethod": user.has_method,
                "writes": user.writes,
                "accountEnabled": user.account_enabled,
                "AuthenticationPolicy": self.auth_policies.user_value(index),
            })
        });
        users.collect()
    }

    fn directory_snapshot(&self) -> (Vec<Value>, Vec<Value>) {
        let groups = (0..self.directory.groups.len() as u32).map(|g| {
            let group = &self.directory.groups[g as usize];
            let members: Vec<Value> = self.directory.direct_members(g).map(|m| self.member_reference(m)).collect();
            json!({
                "id": group.id.to_string(),
                "displayName": group.display_name,
                "isAssignableToRole": group.assignable_to_role,
                "members": members,
            })
        });
        let assignments = self.directory.role_assignments.iter().map(|a| {
            json!({
                "id": a.id,
                "roleDefinitionId": a.role_definition_id,
                "principalId": self.member_reference(a.principal)["id"],
                "directoryScopeId": "/",
            })
        });
        (groups.collect(), assignments.collect())
    }

    fn seeded_snapshot(&self) -> Vec<Value> {
        let entries = self.seeded_blockers.iter().map(|&(user, bits)| {
            let (blockers, look_alikes): (Vec<Seeded>, Vec<Seeded>) =
                Seeded::ALL.iter().copied().filter(|s| bits & s.bit() != 0).partition(|s| s.blocks_basic());
            json!({
                "userPrincipalName": &*self.users[user as usize].upn,
                "blockers": blockers.iter().map(|s| s.name()).collect::<Vec<_>>(),
                "lookAlikes": look_alikes.iter().map(|s| s.name()).collect::<Vec<_>>(),
            })
        });
        entries.collect()
    }

    pub fn snapshot(&self) -> Value {
        let policies = &self.auth_policies;
        let (groups, role_assignments) = self.directory_snapshot();
        json!({
            "securityDefaultsEnabled": self.security_defaults_enabled,
            "transportConfig": {"SmtpClientAuthenticationDisabled": self.transport_smtp_auth_disabled},
            "organizationConfig": {"DefaultAuthenticationPolicy": policies.default_value()},
            "authenticationPolicies": (0..policies.policies.len()).map(|p| policies.policy_json(p as u8)).collect::<Vec<_>>(),
            "groups": groups,
            "roleAssignments": role_assignments,
            "conditionalAccessPolicies": self.conditional_access.policies,
            "namedLocations": self.conditional_access.named_locations,
            // No Microsoft API exposes this switch (research §2.2): only the simulator shows it.
            "simulatorOnly": {"basicAuthenticationForSmtpAuth": self.basic_smtp_auth_enabled},
            "seededSmtpBlockers": self.seeded_snapshot(),
            "users": self.users_snapshot(),
        })
    }
}
