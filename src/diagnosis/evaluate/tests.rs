use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::*;
use crate::diagnosis::conditional_access::Policy;
use crate::diagnosis::facts::Memberships;
use crate::diagnosis::{AuthPolicy, Verdict};

fn open_tenant() -> TenantFacts {
    TenantFacts {
        organisation_smtp_disabled: Ok(true),
        default_policy: Ok(None),
        policies: Ok(Vec::new()),
        assignments: Ok(HashMap::new()),
        security_defaults: Ok(false),
        conditional_access: Ok(Vec::new()),
        memberships: Ok(Memberships::default()),
        basic_smtp: BasicSmtp::On("unchanged until the end of December 2026".into()),
    }
}

fn mailbox(value: Option<Value>) -> MailboxFacts {
    MailboxFacts {
        user_id: "u1".into(),
        mailbox: Ok(value),
        account_enabled: Ok(true),
        per_user_mfa: Ok(Value::Disabled),
        own_policy: None,
        groups_joined: Vec::new(),
    }
}

fn policy(name: &str, allow: bool) -> AuthPolicy {
    AuthPolicy {
        name: name.into(),
        distinguished_name: format!("CN={name},CN=Auth Policies,CN=Configuration"),
        guid: format!("guid-{name}"),
        allow_basic_smtp: allow,
    }
}

#[test]
fn the_mailbox_switch_overrides_the_organisation_only_when_set() {
    let tenant = open_tenant();
    let enabled = evaluate(&tenant, &mailbox(Some(Value::Enabled)));
    assert_eq!(enabled.verdict(ClientKind::Basic), Verdict::CanSend);
    assert_eq!(enabled.verdict(ClientKind::Oauth), Verdict::CanSend);
    let inherits = evaluate(&tenant, &mailbox(Some(Value::Inherit)));
    assert_eq!(inherits.blocking(ClientKind::Basic), vec![Layer::SmtpAuthSwitch]);
    assert_eq!(inherits.blocking(ClientKind::Oauth), vec![Layer::SmtpAuthSwitch], "the switch is the protocol's");
    let no_mailbox = evaluate(&tenant, &mailbox(None));
    assert_eq!(no_mailbox.blocking(ClientKind::Oauth), vec![Layer::Mailbox]);
}

#[test]
fn basic_only_layers_leave_oauth_alone_and_come_in_order() {
    let mut tenant = open_tenant();
    tenant.security_defaults = Ok(true);
    tenant.default_policy = Ok(Some("CN=Block Basic,CN=Auth Policies,CN=Configuration".into()));
    tenant.policies = Ok(vec![policy("Block Basic", false), policy("Allow SMTP", true)]);
    let mut facts = mailbox(Some(Value::Enabled));
    facts.per_user_mfa = Ok(Value::Enforced);
    let diagnosis = evaluate(&tenant, &facts);
    assert_eq!(
        diagnosis.blocking(ClientKind::Basic),
        vec![Layer::AuthenticationPolicy, Layer::SecurityDefaults, Layer::PerUserMfa]
    );
    assert_eq!(diagnosis.verdict(ClientKind::Oauth), Verdict::CanSend);
    tenant.assignments = Ok(HashMap::from([("u1".to_string(), "guid-Allow SMTP".to_string())]));
    let own = evaluate(&tenant, &facts);
    assert!(!own.blocking(ClientKind::Basic).contains(&Layer::AuthenticationPolicy), "the user's own policy wins");
    facts.own_policy = Some("Allow SMTP".into());
    tenant.assignments = Ok(HashMap::new());
    let given = evaluate(&tenant, &facts);
    assert!(!given.blocking(ClientKind::Basic).contains(&Layer::AuthenticationPolicy), "as the run assigned it");
}

#[test]
fn enabled_per_user_mfa_does_not_yet_stop_legacy_clients() {
    let mut facts = mailbox(Some(Value::Enabled));
    facts.per_user_mfa = Ok(Value::Enabled);
    assert_eq!(evaluate(&open_tenant(), &facts).verdict(ClientKind::Basic), Verdict::CanSend);
}

#[test]
fn what_cannot_be_read_makes_the_verdict_unknown_and_names_the_permission() {
    let mut tenant = open_tenant();
    tenant.conditional_access =
        Err(Unreadable { what: "Conditional Access policies", permission: "Policy.Read.All", error: "403".into() });
    let diagnosis = evaluate(&tenant, &mailbox(Some(Value::Enabled)));
    assert_eq!(diagnosis.verdict(ClientKind::Basic), Verdict::Unknown);
    let unknowns = diagnosis.unknowns(ClientKind::Basic);
    assert_eq!(unknowns[0].0, Layer::ConditionalAccess);
    assert!(unknowns[0].1.contains("Policy.Read.All"));
    tenant.security_defaults = Ok(true);
    assert_eq!(
        evaluate(&tenant, &mailbox(Some(Value::Enabled))).verdict(ClientKind::Basic),
        Verdict::Blocked,
        "a layer that surely blocks wins over one that cannot be read"
    );
}

#[test]
fn the_basic_authentication_switch_is_unknown_unless_told() {
    let mut tenant = open_tenant();
    tenant.basic_smtp = BasicSmtp::Unknown("no API shows it".into());
    let diagnosis = evaluate(&tenant, &mailbox(Some(Value::Enabled)));
    assert_eq!(diagnosis.verdict(ClientKind::Basic), Verdict::Unknown);
    assert_eq!(diagnosis.verdict(ClientKind::Oauth), Verdict::CanSend);
    tenant.basic_smtp = BasicSmtp::Off("the administrator says so".into());
    assert_eq!(
        evaluate(&tenant, &mailbox(Some(Value::Enabled))).blocking(ClientKind::Basic),
        vec![Layer::BasicAuthentication]
    );
}

#[test]
fn a_blocking_policy_names_the_groups_it_already_excludes() {
    let mut tenant = open_tenant();
    let block = |id: &str, excluded: &[&str]| {
        Policy::from_json(&json!({
            "id": id, "displayName": id, "state": "enabled",
            "conditions": {"applications": {"includeApplications": ["All"]}, "clientAppTypes": ["other"],
                           "users": {"includeUsers": ["All"], "excludeGroups": excluded}},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }))
        .unwrap()
    };
    tenant.conditional_access = Ok(vec![block("legacy", &["devices", "admins"]), block("other", &["devices"])]);
    let mut members = Memberships::default();
    members.groups.insert("admins".into(), HashSet::from(["u9".to_string()]));
    tenant.memberships = Ok(members);
    let diagnosis = evaluate(&tenant, &mailbox(Some(Value::Enabled)));
    assert_eq!(diagnosis.blocking(ClientKind::Basic), vec![Layer::ConditionalAccess]);
    assert_eq!(diagnosis.exclusion_groups, vec!["devices".to_string()]);
    assert!(diagnosis.finding(Layer::ConditionalAccess).unwrap().evidence.contains("policy 'legacy'"));
    let mut joined = mailbox(Some(Value::Enabled));
    joined.groups_joined = vec!["devices".into()];
    assert_eq!(evaluate(&tenant, &joined).verdict(ClientKind::Basic), Verdict::CanSend, "added to the exclusion group");
}

#[test]
fn a_blocked_sign_in_stops_both_clients() {
    let mut facts = mailbox(Some(Value::Enabled));
    facts.account_enabled = Ok(false);
    let diagnosis = evaluate(&open_tenant(), &facts);
    assert_eq!(diagnosis.blocking(ClientKind::Basic), vec![Layer::SignIn]);
    assert_eq!(diagnosis.blocking(ClientKind::Oauth), vec![Layer::SignIn]);
}
