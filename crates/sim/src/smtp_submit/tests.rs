use super::*;
use crate::auth_policy::AuthenticationPolicy;
use crate::conditional_access::shape::Draft;
use crate::tenant::Population;

/// A tenant where every layer lets `user` through, and that user.
fn open_tenant() -> (Tenant, usize) {
    let mut tenant = Tenant::build(&Population::Generated { count: 50 }, 4);
    tenant.security_defaults_enabled = false;
    let user = tenant.users.iter().position(|u| u.has_mailbox() && u.licensed).unwrap();
    let record = &mut tenant.users[user];
    record.smtp_auth_disabled = Some(false);
    record.mfa = MfaState::Disabled;
    record.account_enabled = true;
    (tenant, user)
}

fn layers(tenant: &Tenant, user: Option<usize>, client: Client) -> Vec<Layer> {
    evaluate(tenant, user, client, None).refusals.iter().map(|r| r.layer).collect()
}

/// Every layer refusing at once: the Basic client hears them in the service's order.
fn everything_refuses(tenant: &mut Tenant, user: usize) {
    tenant.basic_smtp_auth_enabled = false;
    let policy = tenant.auth_policies.add(AuthenticationPolicy::new("Block", uuid::Uuid::from_u128(9), &[]));
    let users = tenant.users.len();
    tenant.auth_policies.assign(user, Some(policy), users);
    tenant.security_defaults_enabled = true;
    let mut block = Draft::new(uuid::Uuid::from_u128(1), "Block everything", "enabled");
    block.users.include_users = vec!["All".into()];
    block.built_in_controls = Some(vec!["block"]);
    tenant.conditional_access.policies.push(block.json());
    let record = &mut tenant.users[user];
    record.account_enabled = false;
    record.mfa = MfaState::Enforced;
    record.smtp_auth_disabled = Some(true);
}

#[test]
fn a_user_every_layer_lets_through_is_accepted_by_both_clients() {
    let (tenant, user) = open_tenant();
    assert_eq!(layers(&tenant, Some(user), Client::Basic), []);
    assert_eq!(layers(&tenant, Some(user), Client::Modern), []);
}

#[test]
fn a_basic_client_meets_exchange_pre_authentication_then_entra_then_the_mailbox() {
    let (mut tenant, user) = open_tenant();
    everything_refuses(&mut tenant, user);
    assert_eq!(
        layers(&tenant, Some(user), Client::Basic),
        [
            Layer::BasicRetired,
            Layer::AuthenticationPolicy,
            Layer::SignInBlocked,
            Layer::SecurityDefaults,
            Layer::ConditionalAccess,
            Layer::PerUserMfa,
            Layer::SmtpAuthMailbox,
        ]
    );
    let verdict = evaluate(&tenant, Some(user), Client::Basic, None);
    assert_eq!(verdict.first().map(|r| r.reply), Some(RETIRED));
    let codes: Vec<Option<u32>> = verdict.refusals.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [None, None, Some(50057), Some(530035), Some(53003), Some(50076), None]);
}

#[test]
fn an_oauth_client_skips_the_basic_only_layers() {
    let (mut tenant, user) = open_tenant();
    everything_refuses(&mut tenant, user);
    assert_eq!(
        layers(&tenant, Some(user), Client::Modern),
        [Layer::SignInBlocked, Layer::ConditionalAccess, Layer::SmtpAuthMailbox]
    );
    tenant.users[user].account_enabled = true;
    tenant.conditional_access.policies.clear();
    let verdict = evaluate(&tenant, Some(user), Client::Modern, None);
    assert_eq!(verdict.first().map(|r| r.reply), Some(MAILBOX_OFF), "the switch governs OAuth too");
}

#[test]
fn the_mailbox_switch_overrides_the_organisation_only_when_set() {
    let (mut tenant, user) = open_tenant();
    tenant.transport_smtp_auth_disabled = true;
    tenant.users[user].smtp_auth_disabled = None;
    assert_eq!(layers(&tenant, Some(user), Client::Basic), [Layer::SmtpAuthTenant]);
    assert_eq!(layers(&tenant, Some(user), Client::Modern), [Layer::SmtpAuthTenant]);
    tenant.users[user].smtp_auth_disabled = Some(false);
    assert_eq!(layers(&tenant, Some(user), Client::Basic), [], "explicitly on beats the organisation");
    tenant.transport_smtp_auth_disabled = false;
    tenant.users[user].smtp_auth_disabled = Some(true);
    assert_eq!(layers(&tenant, Some(user), Client::Basic), [Layer::SmtpAuthMailbox]);
}

#[test]
fn per_user_mfa_stops_basic_only_when_enforced() {
    let (mut tenant, user) = open_tenant();
    tenant.users[user].mfa = MfaState::Enabled;
    assert_eq!(layers(&tenant, Some(user), Client::Basic), [], "enabled: legacy continues to work");
    tenant.users[user].mfa = MfaState::Enforced;
    assert_eq!(layers(&tenant, Some(user), Client::Basic), [Layer::PerUserMfa]);
    assert_eq!(layers(&tenant, Some(user), Client::Modern), []);
}

#[test]
fn the_users_policy_wins_and_no_policy_blocks_nothing() {
    let (mut tenant, user) = open_tenant();
    let deny = tenant.auth_policies.add(AuthenticationPolicy::new("Deny", uuid::Uuid::from_u128(1), &[]));
    let allow = tenant.auth_policies.add(AuthenticationPolicy::new("Allow", uuid::Uuid::from_u128(2), &["Smtp"]));
    assert_eq!(layers(&tenant, Some(user), Client::Basic), []);
    tenant.auth_policies.default = Some(deny);
    assert_eq!(layers(&tenant, Some(user), Client::Basic), [Layer::AuthenticationPolicy]);
    assert_eq!(layers(&tenant, Some(user), Client::Modern), [], "policies govern Basic only");
    let users = tenant.users.len();
    tenant.auth_policies.assign(user, Some(allow), users);
    assert_eq!(layers(&tenant, Some(user), Client::Basic), []);
}

#[test]
fn unknown_users_and_users_without_a_mailbox_fail_for_both_clients() {
    let (mut tenant, _) = open_tenant();
    assert_eq!(layers(&tenant, None, Client::Basic), [Layer::UnknownUser]);
    assert_eq!(layers(&tenant, None, Client::Modern), [Layer::UnknownUser]);
    tenant.basic_smtp_auth_enabled = false;
    assert_eq!(layers(&tenant, None, Client::Basic), [Layer::BasicRetired, Layer::UnknownUser]);
    let (mut tenant, user) = open_tenant();
    tenant.users[user].mailbox = false;
    assert_eq!(layers(&tenant, Some(user), Client::Modern), [Layer::NoMailbox]);
    assert_eq!(layers(&tenant, Some(user), Client::Basic), [Layer::NoMailbox]);
}

#[test]
fn the_answer_carries_the_reply_line_its_layer_and_a_server_tag() {
    let (mut tenant, user) = open_tenant();
    let upn = tenant.users[user].upn.to_string();
    let body = |auth: &str| json!({"userPrincipalName": upn, "auth": auth}).to_string();
    let accepted = answer(&tenant, body("basic").as_bytes()).unwrap();
    assert_eq!(accepted, json!({"accepted": true, "reply": ACCEPTED, "layer": null, "layers": []}));
    tenant.security_defaults_enabled = true;
    let refused = answer(&tenant, body("Basic").as_bytes()).unwrap();
    assert_eq!(refused["layer"], "security-defaults");
    let reply = refused["reply"].as_str().unwrap();
    assert!(reply.starts_with(SECURITY_DEFAULTS) && reply.ends_with(".prod.outlook.com]"), "{reply}");
    assert_eq!(answer(&tenant, body("oauth").as_bytes()).unwrap()["accepted"], true);
    let by_id = json!({"userPrincipalName": tenant.users[user].id.to_string(), "auth": "basic"}).to_string();
    assert_eq!(answer(&tenant, by_id.as_bytes()).unwrap()["layer"], "unknown-user", "devices sign in by UPN");
    assert!(answer(&tenant, b"{").is_err());
    assert!(answer(&tenant, json!({"userPrincipalName": upn, "auth": "ntlm"}).to_string().as_bytes()).is_err());
    let bad_ip = json!({"userPrincipalName": upn, "auth": "basic", "clientIp": "300.1.1.1"}).to_string();
    assert!(answer(&tenant, bad_ip.as_bytes()).is_err());
}
