use super::shape::{Draft, ip_named_location};
use super::*;
use crate::directory::{EXCHANGE_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, Group, RoleAssignment};
use crate::tenant::Population;
use uuid::Uuid;

const OFFICE: u128 = 77;

/// A tenant with one user (index 0) nested two levels down in group "Top", also in "Excluded".
fn tenant() -> Tenant {
    let mut tenant = Tenant::build(&Population::Generated { count: 5 }, 2);
    let directory = &mut tenant.directory;
    let group = |n: u128, name: &str| Group {
        id: Uuid::from_u128(n),
        display_name: name.into(),
        description: String::new(),
        assignable_to_role: false,
    };
    let top = directory.add_group(group(1, "Top"));
    let middle = directory.add_group(group(2, "Middle"));
    let excluded = directory.add_group(group(3, "Excluded"));
    directory.add_member(top, Member::Group(middle));
    directory.add_member(middle, Member::User(0));
    directory.add_member(excluded, Member::User(1));
    directory.role_assignments.push(RoleAssignment {
        id: "r".into(),
        role_definition_id: EXCHANGE_ADMINISTRATOR,
        principal: Member::User(2),
    });
    let office = ip_named_location(Uuid::from_u128(OFFICE), "Office", true, &["198.51.100.0/24"]);
    tenant.conditional_access.named_locations.push(office);
    tenant
}

fn block(name: &str, types: Vec<&'static str>) -> Draft {
    let mut draft = Draft::new(Uuid::from_u128(100 + name.len() as u128), name, "enabled");
    draft.users.include_groups = vec![Uuid::from_u128(1).to_string()];
    draft.client_app_types = types;
    draft.built_in_controls = Some(vec!["block"]);
    draft
}

fn outcome(tenant: &Tenant, user: usize, client: Client, address: Option<Ipv4Addr>) -> Outcome {
    evaluate(tenant, user, client, address)[0].outcome
}

fn with(policy: Draft) -> Tenant {
    let mut tenant = tenant();
    tenant.conditional_access.policies.push(policy.json());
    tenant
}

#[test]
fn a_legacy_block_reaches_nested_members_and_spares_the_excluded() {
    let mut policy = block("Block legacy authentication", vec!["exchangeActiveSync", "other"]);
    let tenant = with(policy.clone());
    assert_eq!(outcome(&tenant, 0, Client::Basic, None), Outcome::Failure, "two levels down");
    assert_eq!(outcome(&tenant, 0, Client::Modern, None), Outcome::NotApplied, "not a legacy client");
    assert_eq!(outcome(&tenant, 3, Client::Basic, None), Outcome::NotApplied, "not in the group");

    policy.users.exclude_groups = vec![Uuid::from_u128(2).to_string()];
    assert_eq!(outcome(&with(policy.clone()), 0, Client::Basic, None), Outcome::NotApplied, "excluded by group");
    policy.users.exclude_groups.clear();
    policy.users.exclude_users = vec![tenant.users[0].id.to_string().to_uppercase()];
    assert_eq!(outcome(&with(policy.clone()), 0, Client::Basic, None), Outcome::NotApplied, "excluded directly");

    let mut roles = block("Block everyone but admins", vec!["other"]);
    roles.users.include_groups.clear();
    roles.users.include_users = vec!["All".into()];
    roles.users.exclude_roles = vec![EXCHANGE_ADMINISTRATOR.into()];
    let tenant = with(roles);
    assert_eq!(outcome(&tenant, 2, Client::Basic, None), Outcome::NotApplied, "excluded by role");
    assert_eq!(outcome(&tenant, 4, Client::Basic, None), Outcome::Failure);
}

#[test]
fn report_only_and_disabled_policies_never_block() {
    let mut policy = block("Pilot", vec!["other"]);
    policy.state = "enabledForReportingButNotEnforced";
    let tenant = with(policy.clone());
    let applied = evaluate(&tenant, 0, Client::Basic, None);
    assert_eq!(applied[0].outcome, Outcome::ReportOnlyFailure);
    assert!(blocking(&applied).is_none());
    assert_eq!(outcome(&tenant, 3, Client::Basic, None), Outcome::ReportOnlyNotApplied);
    policy.state = "disabled";
    assert_eq!(outcome(&with(policy), 0, Client::Basic, None), Outcome::NotEnabled);
}

#[test]
fn only_policies_for_exchange_and_the_clients_type_apply() {
    let mut sharepoint = block("SharePoint", vec!["all"]);
    sharepoint.include_applications = vec!["00000003-0000-0ff1-ce00-000000000000".into()];
    assert_eq!(outcome(&with(sharepoint), 0, Client::Basic, None), Outcome::NotApplied);
    let mut suite = block("Office 365", vec!["all"]);
    suite.include_applications = vec!["Office365".into()];
    assert_eq!(outcome(&with(suite.clone()), 0, Client::Basic, None), Outcome::Failure);
    suite.include_applications = vec!["All".into()];
    suite.exclude_applications = vec!["Office365".into()];
    assert_eq!(outcome(&with(suite), 0, Client::Basic, None), Outcome::NotApplied, "Exchange excluded");

    let browsers = with(block("Browsers", vec!["browser"]));
    assert_eq!(outcome(&browsers, 0, Client::Basic, None), Outcome::NotApplied);
    assert_eq!(outcome(&browsers, 0, Client::Modern, None), Outcome::NotApplied);
    let modern = with(block("Apps", vec!["mobileAppsAndDesktopClients"]));
    assert_eq!(outcome(&modern, 0, Client::Basic, None), Outcome::NotApplied);
    assert_eq!(outcome(&modern, 0, Client::Modern, None), Outcome::Failure, "an OAuth client is blocked");
    let unset = with(block("No client condition", vec![]));
    assert_eq!(outcome(&unset, 0, Client::Basic, None), Outcome::Failure, "an empty list covers all");
}

#[test]
fn a_basic_client_fails_every_grant_and_a_modern_one_only_block() {
    for grant in [vec!["mfa"], vec!["compliantDevice", "domainJoinedDevice"], vec!["approvedApplication"]] {
        let mut policy = block("Grant", vec!["all"]);
        policy.built_in_controls = Some(grant.clone());
        let tenant = with(policy);
        let applied = evaluate(&tenant, 0, Client::Basic, None);
        assert_eq!((applied[0].outcome, applied[0].unmet.as_deref()), (Outcome::Failure, Some(grant[0])));
        assert_eq!(outcome(&tenant, 0, Client::Modern, None), Outcome::Success, "{grant:?}");
    }
    let mut strength = block("Strength", vec!["all"]);
    strength.built_in_controls = Some(vec![]);
    strength.mfa_strength = true;
    let applied = evaluate(&with(strength), 0, Client::Basic, None);
    assert_eq!(applied[0].unmet.as_deref(), Some("authenticationStrength"));

    let mut session = block("Session only", vec!["all"]);
    session.built_in_controls = None;
    session.session_controls = json!({"signInFrequency": {"value": 12, "type": "hours", "isEnabled": true}});
    let tenant = with(session);
    let applied = evaluate(&tenant, 0, Client::Basic, None);
    assert_eq!((applied[0].outcome, status(&applied)), (Outcome::Success, "success"));
    assert_eq!(applied_json(&tenant, &applied)[0]["enforcedSessionControls"], json!(["SignInFrequency"]));
}

#[test]
fn a_location_condition_depends_on_the_devices_address() {
    let mut policy = block("Outside the office", vec!["other"]);
    policy.locations = Some((vec!["All".into()], vec![Uuid::from_u128(OFFICE).to_string()]));
    let tenant = with(policy.clone());
    let inside = Some(Ipv4Addr::new(198, 51, 100, 20));
    let outside = Some(Ipv4Addr::new(203, 0, 113, 9));
    assert_eq!(outcome(&tenant, 0, Client::Basic, inside), Outcome::NotApplied);
    assert_eq!(outcome(&tenant, 0, Client::Basic, outside), Outcome::Failure);
    assert_eq!(outcome(&tenant, 0, Client::Basic, None), Outcome::Failure, "an unknown address is outside");
    policy.locations = Some((vec!["AllTrusted".into()], vec![]));
    assert_eq!(outcome(&with(policy.clone()), 0, Client::Basic, inside), Outcome::Failure);
    assert_eq!(outcome(&with(policy), 0, Client::Basic, outside), Outcome::NotApplied);
    assert!(
        in_range("10.0.0.0/8", Ipv4Addr::new(10, 200, 1, 1)) && !in_range("10.0.0.0/8", Ipv4Addr::new(11, 0, 0, 1))
    );
    assert!(in_range("0.0.0.0/0", Ipv4Addr::new(1, 2, 3, 4)) && !in_range("nonsense", Ipv4Addr::new(1, 2, 3, 4)));
}

#[test]
fn the_sign_in_log_names_controls_and_results_as_entra_does() {
    let mut mfa = block("Require MFA for admins", vec!["all"]);
    mfa.users.include_groups.clear();
    mfa.users.include_roles = vec![EXCHANGE_ADMINISTRATOR.into(), GLOBAL_ADMINISTRATOR.into()];
    mfa.built_in_controls = Some(vec!["mfa"]);
    let tenant = with(mfa);
    let applied = evaluate(&tenant, 2, Client::Basic, None);
    let entry = &applied_json(&tenant, &applied)[0];
    assert_eq!(entry["enforcedGrantControls"], json!(["Mfa"]));
    assert_eq!((entry["result"].as_str(), status(&applied)), (Some("failure"), "failure"));
    let skipped = not_evaluated(&tenant);
    assert_eq!((skipped[0].outcome, status(&skipped)), (Outcome::NotApplied, "notApplied"));
    assert!(evaluate(&Tenant::build(&Population::Generated { count: 2 }, 1), 0, Client::Basic, None).is_empty());
}
