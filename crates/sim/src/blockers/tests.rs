use super::*;
use crate::conditional_access::Client;
use crate::smtp_submit::{Layer, evaluate};
use crate::tenant::Population;

fn seeded(count: usize, share: f64) -> Tenant {
    let mut tenant = Tenant::build(&Population::Generated { count }, 11);
    seed(&mut tenant, share, 11, "contoso1234.onmicrosoft.com");
    tenant
}

fn expected_layer(kind: Seeded) -> Layer {
    match kind {
        Seeded::OrgSmtpAuthOff => Layer::SmtpAuthTenant,
        Seeded::MailboxSmtpAuthOff => Layer::SmtpAuthMailbox,
        Seeded::UserPolicyDeniesBasic | Seeded::DefaultPolicyDeniesBasic => Layer::AuthenticationPolicy,
        Seeded::SignInBlocked => Layer::SignInBlocked,
        Seeded::PerUserMfaEnforced => Layer::PerUserMfa,
        _ => Layer::ConditionalAccess,
    }
}

#[test]
fn share_zero_seeds_nothing() {
    let plain = Tenant::build(&Population::Generated { count: 300 }, 11);
    let tenant = seeded(300, 0.0);
    assert!(tenant.directory.is_empty() && tenant.conditional_access.policies.is_empty());
    assert!(tenant.auth_policies.policies.is_empty() && tenant.seeded_blockers.is_empty());
    assert_eq!(tenant.snapshot()["users"], plain.snapshot()["users"]);
}

#[test]
fn each_blocker_alone_stops_basic_at_its_own_layer_and_look_alikes_stop_nothing() {
    let mut tenant = seeded(2000, 0.2);
    // Security defaults stay on as seeded; off, the other layers show.
    tenant.security_defaults_enabled = false;
    let mut alone = std::collections::BTreeMap::new();
    for &(user, bits) in &tenant.seeded_blockers {
        let kinds: Vec<Seeded> = Seeded::ALL.iter().copied().filter(|k| bits & k.bit() != 0).collect();
        let verdict = evaluate(&tenant, Some(user as usize), Client::Basic, None);
        let layers: Vec<Layer> = verdict.refusals.iter().map(|r| r.layer).collect();
        match kinds.as_slice() {
            [kind] if kind.blocks_basic() => {
                assert_eq!(layers, [expected_layer(*kind)], "{kind:?}");
                *alone.entry(kind.name()).or_insert(0) += 1;
            }
            [look_alike] => {
                assert_eq!(layers, [], "{look_alike:?} must not stop a Basic client");
                *alone.entry(look_alike.name()).or_insert(0) += 1;
            }
            several => {
                let blockers: Vec<Layer> =
                    several.iter().filter(|k| k.blocks_basic()).map(|k| expected_layer(*k)).collect();
                assert!(blockers.iter().all(|b| layers.contains(b)), "{several:?}: {layers:?}");
            }
        }
    }
    assert_eq!(alone.len(), Seeded::ALL.len(), "every kind alone at least once: {alone:?}");
}

#[test]
fn the_outside_office_blocker_spares_the_head_office_and_modern_clients_meet_their_own_block() {
    let mut tenant = seeded(2000, 0.2);
    tenant.security_defaults_enabled = false;
    let user_with = |kind: Seeded| {
        tenant.seeded_blockers.iter().find(|(_, bits)| *bits == kind.bit()).map(|(u, _)| *u as usize).unwrap()
    };
    let warehouse = user_with(Seeded::ConditionalAccessOutsideOffice);
    let office = Some(std::net::Ipv4Addr::new(198, 51, 100, 7));
    assert!(evaluate(&tenant, Some(warehouse), Client::Basic, office).refusals.is_empty());
    let contractor = user_with(Seeded::ModernClientsOnlyPolicy);
    let layers: Vec<Layer> =
        evaluate(&tenant, Some(contractor), Client::Modern, None).refusals.iter().map(|r| r.layer).collect();
    assert_eq!(layers, [Layer::ConditionalAccess]);
    let admin = user_with(Seeded::ConditionalAccessMfaForRole);
    assert!(evaluate(&tenant, Some(admin), Client::Modern, None).refusals.is_empty(), "OAuth answers MFA");
    let nothing = evaluate(&tenant, Some(user_with(Seeded::UserPolicyDeniesBasic)), Client::Modern, None);
    assert!(nothing.refusals.is_empty(), "policies are Basic only");
}

#[test]
fn seeding_is_deterministic_and_outsiders_get_the_allowing_policy() {
    let (a, b) = (seeded(800, 0.3), seeded(800, 0.3));
    assert_eq!(a.snapshot(), b.snapshot());
    let chosen: std::collections::BTreeSet<u32> = a.seeded_blockers.iter().map(|(u, _)| *u).collect();
    let outsider = (0..a.users.len()).find(|u| !chosen.contains(&(*u as u32))).unwrap();
    let policy = a.auth_policies.assigned(outsider).map(|p| a.auth_policies.policies[p as usize].name.clone());
    assert_eq!(policy.as_deref(), Some("Allow Basic SMTP"));
    assert!(a.auth_policies.default.is_some());
    let relay = a.directory.groups_named("SMTP relay devices");
    assert_eq!(relay.len(), 1);
    let exclusion = a.directory.groups_named("CA exclusion - legacy authentication")[0];
    let blocking = &a.conditional_access.policies[0];
    assert_eq!(
        blocking["conditions"]["users"]["excludeGroups"][0],
        a.directory.groups[exclusion as usize].id.to_string()
    );
}
