//! `--smtp-blockers SHARE`: seeds, on that share of the mailboxes, every layer that stops a device
//! sending with Basic SMTP AUTH, each alone and some combined, and look-alikes that must not stop
//! it, deterministically from the seed. Share 0.0 seeds nothing: the tenant is exactly the one
//! the simulator served before these layers existed.
//!
//! The chosen mailboxes go through a fixed cycle (each blocker alone, each look-alike alone, five
//! fixed combinations, one drawn at random), so that any share of a few hundred mailboxes holds
//! every case. A chosen mailbox passes every layer but its own: SMTP AUTH explicitly on, the
//! "Allow Basic SMTP" authentication policy, sign-in allowed, no per-user MFA, no group. Tenant-wide
//! switches stay as they are: the organisation's SMTP AUTH stays off (mailboxes that inherit are
//! refused), security defaults stay on (a test turns them off to see the other layers), and Basic
//! authentication for SMTP AUTH follows `--basic-smtp-off`.
//!
//! The organisation's default authentication policy denies Basic SMTP, so every user outside the
//! share is assigned the allowing policy: a client must let the user's own policy win.

mod plan;

use super::auth_policy::AuthenticationPolicies;
use super::directory::{EXCHANGE_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, Member};
use super::tenant::{MfaState, Tenant};

pub(crate) use plan::Plan;

/// What the seeding did to one user on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seeded {
    // Blockers of a Basic client.
    OrgSmtpAuthOff,
    MailboxSmtpAuthOff,
    UserPolicyDeniesBasic,
    DefaultPolicyDeniesBasic,
    ConditionalAccessBlocksLegacy,
    ConditionalAccessMfaForRole,
    ConditionalAccessOutsideOffice,
    SignInBlocked,
    PerUserMfaEnforced,
    // Look-alikes: they look like blockers and must not stop a Basic client.
    ReportOnlyPolicy,
    DisabledPolicy,
    ExcludedDirectly,
    ExcludedByGroup,
    ExcludedByRole,
    OtherAppPolicy,
    BrowserOnlyPolicy,
    ModernClientsOnlyPolicy,
    AllowingPolicy,
    RelayGroup,
    PerUserMfaEnabled,
}

const BLOCKERS: [Seeded; 9] = [
    Seeded::OrgSmtpAuthOff,
    Seeded::MailboxSmtpAuthOff,
    Seeded::UserPolicyDeniesBasic,
    Seeded::DefaultPolicyDeniesBasic,
    Seeded::ConditionalAccessBlocksLegacy,
    Seeded::ConditionalAccessMfaForRole,
    Seeded::ConditionalAccessOutsideOffice,
    Seeded::SignInBlocked,
    Seeded::PerUserMfaEnforced,
];

const LOOK_ALIKES: [Seeded; 11] = [
    Seeded::ReportOnlyPolicy,
    Seeded::DisabledPolicy,
    Seeded::ExcludedDirectly,
    Seeded::ExcludedByGroup,
    Seeded::ExcludedByRole,
    Seeded::OtherAppPolicy,
    Seeded::BrowserOnlyPolicy,
    Seeded::ModernClientsOnlyPolicy,
    Seeded::AllowingPolicy,
    Seeded::RelayGroup,
    Seeded::PerUserMfaEnabled,
];

const COMBINED: [&[Seeded]; 5] = [
    &[Seeded::MailboxSmtpAuthOff, Seeded::ConditionalAccessBlocksLegacy],
    &[Seeded::UserPolicyDeniesBasic, Seeded::PerUserMfaEnforced, Seeded::ReportOnlyPolicy],
    &[Seeded::SignInBlocked, Seeded::ConditionalAccessMfaForRole],
    &[Seeded::DefaultPolicyDeniesBasic, Seeded::OrgSmtpAuthOff, Seeded::RelayGroup],
    &[Seeded::ConditionalAccessOutsideOffice, Seeded::PerUserMfaEnforced, Seeded::ModernClientsOnlyPolicy],
];

const CYCLE: usize = BLOCKERS.len() + LOOK_ALIKES.len() + COMBINED.len() + 1;

impl Seeded {
    pub(crate) const ALL: [Seeded; 20] = {
        let mut all = [Seeded::OrgSmtpAuthOff; 20];
        let mut i = 0;
        while i < 9 {
            all[i] = BLOCKERS[i];
            i += 1;
        }
        while i < 20 {
            all[i] = LOOK_ALIKES[i - 9];
            i += 1;
        }
        all
    };

    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// Whether it stops a Basic client (the rest are look-alikes).
    pub(crate) fn blocks_basic(self) -> bool {
        BLOCKERS.contains(&self)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Seeded::OrgSmtpAuthOff => "org-smtp-auth-off",
            Seeded::MailboxSmtpAuthOff => "mailbox-smtp-auth-off",
            Seeded::UserPolicyDeniesBasic => "user-authentication-policy-denies-basic-smtp",
            Seeded::DefaultPolicyDeniesBasic => "default-authentication-policy-denies-basic-smtp",
            Seeded::ConditionalAccessBlocksLegacy => "conditional-access-blocks-legacy-authentication",
            Seeded::ConditionalAccessMfaForRole => "conditional-access-requires-mfa-for-role",
            Seeded::ConditionalAccessOutsideOffice => "conditional-access-blocks-outside-head-office",
            Seeded::SignInBlocked => "sign-in-blocked",
            Seeded::PerUserMfaEnforced => "per-user-mfa-enforced",
            Seeded::ReportOnlyPolicy => "report-only-policy",
            Seeded::DisabledPolicy => "disabled-policy",
            Seeded::ExcludedDirectly => "excluded-from-block-directly",
            Seeded::ExcludedByGroup => "excluded-from-block-by-nested-group",
            Seeded::ExcludedByRole => "excluded-from-block-by-role",
            Seeded::OtherAppPolicy => "policy-for-sharepoint-only",
            Seeded::BrowserOnlyPolicy => "policy-for-browsers-only",
            Seeded::ModernClientsOnlyPolicy => "policy-for-mobile-and-desktop-clients-only",
            Seeded::AllowingPolicy => "authentication-policy-allows-basic-smtp",
            Seeded::RelayGroup => "smtp-relay-devices-group",
            Seeded::PerUserMfaEnabled => "per-user-mfa-enabled-not-enforced",
        }
    }

    fn conflicts(self, other: Seeded) -> bool {
        use Seeded::*;
        let pair = |a, b| (self == a && other == b) || (self == b && other == a);
        self == other
            || pair(OrgSmtpAuthOff, MailboxSmtpAuthOff)
            || pair(UserPolicyDeniesBasic, DefaultPolicyDeniesBasic)
    }
}

/// The kinds for the `position`-th chosen mailbox.
fn pattern(position: usize, rng: &mut fastrand::Rng) -> Vec<Seeded> {
    let slot = position % CYCLE;
    let looks = BLOCKERS.len() + LOOK_ALIKES.len();
    if slot < BLOCKERS.len() {
        return vec![BLOCKERS[slot]];
    }
    if slot < looks {
        return vec![LOOK_ALIKES[slot - BLOCKERS.len()]];
    }
    if slot < looks + COMBINED.len() {
        return COMBINED[slot - looks].to_vec();
    }
    let mut drawn = BLOCKERS.to_vec();
    rng.shuffle(&mut drawn);
    let wanted = rng.usize(2..=3);
    let mut kinds: Vec<Seeded> = Vec::new();
    for kind in drawn {
        if kinds.len() < wanted && !kinds.iter().any(|k| k.conflicts(kind)) {
            kinds.push(kind);
        }
    }
    kinds
}

/// Seeds `share` of the mailboxes (see the module's notes); nothing at all for 0.0.
pub(crate) fn seed(tenant: &mut Tenant, share: f64, seed: u64, domain: &str) {
    if share <= 0.0 {
        return;
    }
    let mut rng = fastrand::Rng::with_seed(seed ^ 0xb10c_4e55_5eed_0002);
    tenant.auth_policies.configuration_unit = AuthenticationPolicies::configuration_unit_of(domain);
    let plan = Plan::create(tenant, &mut rng);
    let users = tenant.users.len();
    tenant.auth_policies.assign_all(Some(plan.allow_smtp), users);
    // Real tenants' Global Administrators: the unlicensed admin accounts (they have no mailbox).
    let admins: Vec<usize> = (0..users).filter(|&i| tenant.users[i].upn.starts_with("admin.")).take(3).collect();
    for admin in admins {
        plan.assign_role(tenant, &mut rng, GLOBAL_ADMINISTRATOR, Member::User(admin as u32));
    }
    let mut chooser = fastrand::Rng::with_seed(seed ^ 0x5a1e_b10c_0003);
    let mut excluded = Vec::new();
    let mut position = 0;
    for index in 0..users {
        if !tenant.users[index].has_mailbox() || chooser.f64() >= share {
            continue;
        }
        let kinds = pattern(position, &mut rng);
        let round = position / CYCLE;
        position += 1;
        pass_everything(tenant, &plan, index);
        for &kind in &kinds {
            apply(tenant, &plan, &mut rng, index, kind, round);
            if kind == Seeded::ExcludedDirectly {
                excluded.push(tenant.users[index].id.to_string());
            }
        }
        tenant.seeded_blockers.push((index as u32, kinds.iter().map(|k| k.bit()).sum()));
    }
    tenant.conditional_access = plan.conditional_access(tenant, excluded);
}

/// Every layer a chosen mailbox does not fail on purpose lets it through.
fn pass_everything(tenant: &mut Tenant, plan: &Plan, index: usize) {
    let user = &mut tenant.users[index];
    user.smtp_auth_disabled = Some(false);
    user.account_enabled = true;
    if user.mfa != MfaState::Disabled {
        user.mfa = MfaState::Disabled;
    }
    let users = tenant.users.len();
    tenant.auth_policies.assign(index, Some(plan.allow_smtp), users);
}

fn apply(tenant: &mut Tenant, plan: &Plan, rng: &mut fastrand::Rng, index: usize, kind: Seeded, round: usize) {
    let member = Member::User(index as u32);
    let users = tenant.users.len();
    let directory = &mut tenant.directory;
    let groups = &plan.groups;
    // Rounds alternate how a user is in scope: directly in the group, or one or two levels down.
    let in_block_scope = [groups.legacy_blocked, groups.scanners_a, groups.scanners_b][round % 3];
    match kind {
        Seeded::OrgSmtpAuthOff => tenant.users[index].smtp_auth_disabled = None,
        Seeded::MailboxSmtpAuthOff => tenant.users[index].smtp_auth_disabled = Some(true),
        Seeded::UserPolicyDeniesBasic => tenant.auth_policies.assign(index, Some(plan.block_basic), users),
        Seeded::DefaultPolicyDeniesBasic => tenant.auth_policies.assign(index, None, users),
        Seeded::ConditionalAccessBlocksLegacy => _ = directory.add_member(in_block_scope, member),
        Seeded::ConditionalAccessMfaForRole if round.is_multiple_of(3) => {
            plan.assign_role(tenant, rng, EXCHANGE_ADMINISTRATOR, member)
        }
        Seeded::ConditionalAccessMfaForRole => _ = directory.add_member(groups.exchange_admins, member),
        Seeded::ConditionalAccessOutsideOffice => _ = directory.add_member(groups.warehouse, member),
        Seeded::SignInBlocked => tenant.users[index].account_enabled = false,
        Seeded::PerUserMfaEnforced => {
            tenant.users[index].mfa = MfaState::Enforced;
            tenant.users[index].has_method = true;
        }
        Seeded::ReportOnlyPolicy => _ = directory.add_member(groups.report_only, member),
        Seeded::DisabledPolicy => _ = directory.add_member(groups.disabled_pilot, member),
        Seeded::ExcludedDirectly => _ = directory.add_member(in_block_scope, member),
        Seeded::ExcludedByGroup => {
            directory.add_member(in_block_scope, member);
            let exclusion = if round.is_multiple_of(2) { groups.exclusions } else { groups.service_accounts };
            directory.add_member(exclusion, member);
        }
        Seeded::ExcludedByRole => {
            directory.add_member(in_block_scope, member);
            plan.assign_role(tenant, rng, GLOBAL_ADMINISTRATOR, member);
        }
        Seeded::OtherAppPolicy => _ = directory.add_member(groups.sharepoint, member),
        Seeded::BrowserOnlyPolicy => _ = directory.add_member(groups.kiosks, member),
        Seeded::ModernClientsOnlyPolicy => _ = directory.add_member(groups.contractors, member),
        Seeded::AllowingPolicy => tenant.auth_policies.assign(index, Some(plan.allow_legacy_apps), users),
        Seeded::RelayGroup => _ = directory.add_member(groups.relay, member),
        Seeded::PerUserMfaEnabled => {
            // "enabled" with a registered method turns into "enforced" by itself.
            tenant.users[index].mfa = MfaState::Enabled;
            tenant.users[index].has_method = false;
        }
    }
}

#[cfg(test)]
mod tests;
