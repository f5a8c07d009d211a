//! The tenant-wide objects `--smtp-blockers` seeds: authentication policies (and the
//! organisation's default), security groups (some nested, one role-assignable), role assignments,
//! a named location and the Conditional Access policies that use them.

use base64::Engine;
use serde_json::json;
use uuid::Uuid;

use crate::auth_policy::AuthenticationPolicy;
use crate::conditional_access::shape::{Draft, Users, ip_named_location};
use crate::conditional_access::{ConditionalAccess, EXCHANGE_ONLINE};
use crate::directory::{EXCHANGE_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, Group, Member, RoleAssignment};
use crate::tenant::{Tenant, seeded_uuid};

/// SharePoint Online's appId: a policy for it alone does not cover Exchange Online.
const SHAREPOINT_ONLINE: &str = "00000003-0000-0ff1-ce00-000000000000";
/// The "Block legacy authentication" template (policy-block-legacy-authentication; the live
/// capture's `templateId`).
const BLOCK_LEGACY_TEMPLATE: &str = "0b2282f9-2862-4178-88b5-d79340b36cb8";
/// The head office's addresses (a documentation range): the location policy spares them.
pub(super) const HEAD_OFFICE_RANGE: &str = "198.51.100.0/24";

/// The seeded groups, by index in the directory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Groups {
    pub legacy_blocked: u32,
    pub scanners_a: u32,
    pub scanners_b: u32,
    pub exclusions: u32,
    pub service_accounts: u32,
    pub relay: u32,
    pub exchange_admins: u32,
    pub report_only: u32,
    pub disabled_pilot: u32,
    pub sharepoint: u32,
    pub kiosks: u32,
    pub contractors: u32,
    pub warehouse: u32,
}

/// Everything the per-user seeding refers to.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub groups: Groups,
    pub block_basic: u8,
    pub allow_smtp: u8,
    pub allow_legacy_apps: u8,
    office: Uuid,
    policy_ids: Vec<Uuid>,
}

/// (display name, description, role-assignable) of each seeded group, in [`Groups`] order.
const GROUPS: [(&str, &str, bool); 13] = [
    ("Legacy authentication blocked", "Users whose legacy sign-ins Conditional Access blocks", false),
    ("Scanners - Building A", "Multifunction devices, building A", false),
    ("Scanners - Building B", "Multifunction devices, building B", false),
    ("CA exclusion - legacy authentication", "Excluded from 'Block legacy authentication'", false),
    ("CA exclusion - service accounts", "Service accounts excluded from legacy authentication blocking", false),
    ("SMTP relay devices", "Printers and scanners that send mail (no policy uses this group)", false),
    ("Exchange administrators", "Holds the Exchange Administrator role", true),
    ("Legacy auth block pilot", "Pilot of a report-only legacy authentication block", false),
    ("Legacy auth block (retired pilot)", "Members of a pilot whose policy is off", false),
    ("SharePoint restricted users", "Users blocked from SharePoint on unmanaged clients", false),
    ("Kiosk users", "Shared kiosks: no browser sign-ins", false),
    ("Contractors", "No desktop or mobile apps", false),
    ("Warehouse scanners", "Devices that may sign in with legacy authentication from the head office only", false),
];

impl Plan {
    /// Creates the policies, groups (with their nesting) and named location in `tenant`.
    pub(crate) fn create(tenant: &mut Tenant, rng: &mut fastrand::Rng) -> Plan {
        let policies = &mut tenant.auth_policies;
        // "By default, Basic authentication is blocked for the protocol": the names list what a
        // policy allows.
        let block_basic = policies.add(AuthenticationPolicy::new("Block Basic Auth", seeded_uuid(rng), &[]));
        let allow_smtp = policies.add(AuthenticationPolicy::new("Allow Basic SMTP", seeded_uuid(rng), &["Smtp"]));
        let default = AuthenticationPolicy::new(
            "Block Basic Auth - organization default",
            seeded_uuid(rng),
            &["Autodiscover", "OfflineAddressBook"],
        );
        policies.default = Some(policies.add(default));
        let legacy =
            AuthenticationPolicy::new("Allow Basic Auth - legacy apps", seeded_uuid(rng), &["Smtp", "Imap", "Pop"]);
        let allow_legacy_apps = policies.add(legacy);
        let mut indices = GROUPS.iter().map(|(name, description, assignable)| {
            tenant.directory.add_group(Group {
                id: seeded_uuid(rng),
                display_name: name.to_string(),
                description: description.to_string(),
                assignable_to_role: *assignable,
            })
        });
        let mut next = || indices.next().unwrap_or_default();
        let groups = Groups {
            legacy_blocked: next(),
            scanners_a: next(),
            scanners_b: next(),
            exclusions: next(),
            service_accounts: next(),
            relay: next(),
            exchange_admins: next(),
            report_only: next(),
            disabled_pilot: next(),
            sharepoint: next(),
            kiosks: next(),
            contractors: next(),
            warehouse: next(),
        };
        // Nesting two levels deep on the blocked side, one on the excluded side.
        tenant.directory.add_member(groups.legacy_blocked, Member::Group(groups.scanners_a));
        tenant.directory.add_member(groups.scanners_a, Member::Group(groups.scanners_b));
        tenant.directory.add_member(groups.exclusions, Member::Group(groups.service_accounts));
        let plan = Plan {
            groups,
            block_basic,
            allow_smtp,
            allow_legacy_apps,
            office: seeded_uuid(rng),
            policy_ids: (0..9).map(|_| seeded_uuid(rng)).collect(),
        };
        plan.assign_role(tenant, rng, EXCHANGE_ADMINISTRATOR, Member::Group(groups.exchange_admins));
        plan
    }

    /// An active assignment at the tenant's scope, with an id in the service's form.
    pub(crate) fn assign_role(
        &self,
        tenant: &mut Tenant,
        rng: &mut fastrand::Rng,
        role: &'static str,
        principal: Member,
    ) {
        let bytes: Vec<u8> = (0..32).map(|_| rng.u8(..)).collect();
        let id = format!("{}-1", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
        tenant.directory.role_assignments.push(RoleAssignment { id, role_definition_id: role, principal });
    }

    fn group_id(&self, tenant: &Tenant, group: u32) -> String {
        tenant.directory.groups[group as usize].id.to_string()
    }

    /// The Conditional Access policies, once the users excluded by id are known.
    pub(crate) fn conditional_access(&self, tenant: &Tenant, excluded_users: Vec<String>) -> ConditionalAccess {
        let g = |group| vec![self.group_id(tenant, group)];
        let block = Some(vec!["block"]);
        let legacy = vec!["exchangeActiveSync", "other"];
        let id = |n: usize| self.policy_ids[n];
        let mut drafts = Vec::new();

        let mut blocking = Draft::new(id(0), "Block legacy authentication", "enabled");
        blocking.template_id = Some(BLOCK_LEGACY_TEMPLATE);
        blocking.users = Users {
            include_groups: g(self.groups.legacy_blocked),
            exclude_groups: g(self.groups.exclusions),
            exclude_users: excluded_users,
            exclude_roles: vec![GLOBAL_ADMINISTRATOR.into()],
            ..Users::default()
        };
        blocking.client_app_types = legacy.clone();
        blocking.built_in_controls = block.clone();
        drafts.push(blocking);

        let mut admins = Draft::new(id(1), "Require multifactor authentication for Exchange administrators", "enabled");
        admins.users.include_roles = vec![EXCHANGE_ADMINISTRATOR.into()];
        admins.built_in_controls = Some(vec!["mfa"]);
        drafts.push(admins);

        let mut pilot = Draft::new(id(2), "Block legacy authentication - pilot", "enabledForReportingButNotEnforced");
        pilot.users.include_groups = g(self.groups.report_only);
        pilot.client_app_types = legacy.clone();
        pilot.built_in_controls = block.clone();
        drafts.push(pilot);

        let mut retired = Draft::new(id(3), "Block legacy authentication - retired pilot", "disabled");
        retired.users.include_groups = g(self.groups.disabled_pilot);
        retired.client_app_types = legacy;
        retired.built_in_controls = block.clone();
        drafts.push(retired);

        let mut sharepoint = Draft::new(id(4), "Block SharePoint on unmanaged clients", "enabled");
        sharepoint.users.include_groups = g(self.groups.sharepoint);
        sharepoint.include_applications = vec![SHAREPOINT_ONLINE.into()];
        sharepoint.built_in_controls = block.clone();
        drafts.push(sharepoint);

        let mut kiosks = Draft::new(id(5), "Block browser sign-ins on kiosks", "enabled");
        kiosks.users.include_groups = g(self.groups.kiosks);
        kiosks.client_app_types = vec!["browser"];
        kiosks.built_in_controls = block.clone();
        drafts.push(kiosks);

        let mut contractors = Draft::new(id(6), "Block desktop and mobile apps for contractors", "enabled");
        contractors.users.include_groups = g(self.groups.contractors);
        contractors.include_applications = vec!["Office365".into()];
        contractors.client_app_types = vec!["mobileAppsAndDesktopClients"];
        contractors.built_in_controls = block.clone();
        drafts.push(contractors);

        let mut frequency = Draft::new(id(7), "Sign-in frequency every 12 hours", "enabled");
        frequency.users.include_users = vec!["All".into()];
        frequency.session_controls = json!({
            "applicationEnforcedRestrictions": null, "cloudAppSecurity": null, "disableResilienceDefaults": null,
            "persistentBrowser": null, "secureSignInSession": null,
            "signInFrequency": {"value": 12, "type": "hours", "authenticationType": "primaryAndSecondaryAuthentication", "frequencyInterval": "timeBased", "isEnabled": true},
        });
        drafts.push(frequency);

        let mut office = Draft::new(id(8), "Block legacy authentication outside the head office", "enabled");
        office.users.include_groups = g(self.groups.warehouse);
        office.include_applications = vec![EXCHANGE_ONLINE.into()];
        office.client_app_types = vec!["other"];
        office.locations = Some((vec!["All".into()], vec![self.office.to_string()]));
        office.built_in_controls = block;
        drafts.push(office);

        ConditionalAccess {
            policies: drafts.iter().map(Draft::json).collect(),
            named_locations: vec![ip_named_location(self.office, "Head office", true, &[HEAD_OFFICE_RANGE])],
        }
    }
}
