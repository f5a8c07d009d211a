//! `Get-OrganizationConfig` and `Get-AuthenticationPolicy`.

use serde_json::{Value, json};

use super::{ExchangeCall, identity_of, not_found, ok, select, unknown_parameter};
use crate::Service;
use crate::reply::Reply;
use crate::tenant::Tenant;

/// The organisation's configuration. The keys and values follow a live capture over the admin
/// API (rknightion/graph2otel's exchangeorgconfig test, 2026-07-23): `"DefaultAuthenticationPolicy":
/// null` when none is set, tri-state nulls, `PublicFoldersEnabled` a string. The value when a
/// default is set is not documented; the policy's DN is our reading (the same link attribute as
/// Get-User's `AuthenticationPolicy`).
pub(super) fn get_organization_config(service: &Service, tenant: &Tenant, call: &ExchangeCall, context: &str) -> Reply {
    if let Some(reply) = unknown_parameter(&call.cmdlet, &call.parameters, &[]) {
        return reply;
    }
    let domain = &service.tokens.app.domain;
    let guid = uuid::Uuid::from_u128(tenant_number(&service.tokens.app.tenant_id) ^ 0x0e8c_0f19);
    let config = json!({
        "Identity": domain,
        "Name": domain,
        "DisplayName": domain.split('.').next().unwrap_or(domain),
        "Guid": guid.to_string(),
        "OAuth2ClientProfileEnabled": true,
        "DefaultAuthenticationPolicy": tenant.auth_policies.default_value(),
        "PublicFoldersEnabled": "Local",
        "AuditDisabled": false,
        "IsDehydrated": false,
        "SendFromAliasEnabled": false,
        "ActivityBasedAuthenticationTimeoutEnabled": true,
        "EwsEnabled": null,
        "EwsAllowOutlook": null,
        "MailTipsAllTipsEnabled": true,
        "AutoExpandingArchive": false,
    });
    ok(vec![select(config, call.select.as_deref())], vec![], context)
}

fn tenant_number(tenant_id: &str) -> u128 {
    uuid::Uuid::parse_str(tenant_id).map_or(0, |id| id.as_u128())
}

/// "You can use the Get-AuthenticationPolicy cmdlet to see the current status of the
/// AllowBasicAuth* switches in the policy": all of them, or one by Name, DN or GUID.
pub(super) fn get_authentication_policy(tenant: &Tenant, call: &ExchangeCall, context: &str) -> Reply {
    if let Some(reply) = unknown_parameter(&call.cmdlet, &call.parameters, &["Identity"]) {
        return reply;
    }
    let policies = &tenant.auth_policies;
    let chosen: Vec<u8> = match identity_of(&call.parameters) {
        Some(identity) => match policies.find(identity) {
            Some(policy) => vec![policy],
            None => return not_found(identity),
        },
        None => (0..policies.policies.len() as u8).collect(),
    };
    let value: Vec<Value> =
        chosen.into_iter().map(|p| select(policies.policy_json(p), call.select.as_deref())).collect();
    ok(value, vec![], context)
}
