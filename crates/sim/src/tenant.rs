//! The simulated tenant's directory: users, their mailboxes and the settings `remediate` changes.
//!
//! Everything is generated from a seed (or from a target CSV) so that a run can be repeated and a
//! reset restores exactly the starting state. The layout is compact on purpose: a million mailboxes
//! must fit in well under a gigabyte.

use std::collections::HashMap;

use serde_json::{Value, json};
use uuid::Uuid;

use super::auth_policy::AuthenticationPolicies;
use super::conditional_access::ConditionalAccess;
use super::directory::Directory;
use super::exchange::{ClientAccess, MailboxProperties};

/// Legacy per-user MFA state as Graph's beta `authentication/requirements` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MfaState {
    Disabled,
    Enabled,
    Enforced,
}

impl MfaState {
    pub fn as_str(self) -> &'static str {
        match self {
            MfaState::Disabled => "disabled",
            MfaState::Enabled => "enabled",
            MfaState::Enforced => "enforced",
        }
    }

    pub fn parse(text: &str) -> Option<MfaState> {
        match text {
            "disabled" => Some(MfaState::Disabled),
            "enabled" => Some(MfaState::Enabled),
            "enforced" => Some(MfaState::Enforced),
            _ => None,
        }
    }
}

/// One directory user, with the mailbox settings the tool cares about.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub upn: Box<str>,
    /// `None` means the mail address equals the UPN (the common case, kept small).
    pub mail: Option<Box<str>>,
    pub guest: bool,
    pub licensed: bool,
    /// Whether Exchange Online holds a mailbox for the user. A licence is not a mailbox: shared,
    /// room and equipment mailboxes usually have none (Microsoft 365 docs, "Remove a license from
    /// a shared mailbox"), and a licence may carry no Exchange Online plan.
    pub mailbox: bool,
    pub account_enabled: bool,
    /// `SmtpClientAuthenticationDisabled`: `None` follows the organisation's setting.
    pub smtp_auth_disabled: Option<bool>,
    /// The mailbox's protocol switches (Set-CASMailbox).
    pub access: ClientAccess,
    /// The mailbox's kind, auditing and forwarding (Set-Mailbox).
    pub mailbox_properties: MailboxProperties,
    pub mfa: MfaState,
    /// Whether the user has registered an MFA method (turns `enabled` into `enforced`).
    pub has_method: bool,
    pub writes: u32,
}

impl User {
    pub fn mail(&self) -> &str {
        self.mail.as_deref().unwrap_or(&self.upn)
    }

    /// Whether Exchange Online holds a mailbox for this user (guests have none here).
    pub fn has_mailbox(&self) -> bool {
        self.mailbox && !self.guest
    }

    /// Proxy addresses in Exchange's notation: `SMTP:` marks the primary one.
    pub fn proxy_addresses(&self) -> Vec<String> {
        let mut addresses = vec![format!("SMTP:{}", self.mail())];
        if self.mail.is_some() {
            addresses.push(format!("smtp:{}", self.upn));
        }
        addresses
    }

    pub fn graph_json(&self) -> Value {
        let licenses: Vec<Value> = if self.licensed {
            vec![json!({"disabledPlans": [], "skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"})]
        } else {
            Vec::new()
        };
        json!({
            "id": self.id.to_string(),
            "userPrincipalName": &*self.upn,
            "displayName": display_name(&self.upn),
            "mail": if self.guest || self.mailbox { Value::from(self.mail()) } else { Value::Null },
            "userType": if self.guest { "Guest" } else { "Member" },
            "accountEnabled": self.account_enabled,
            "assignedLicenses": licenses,
            "proxyAddresses": self.proxy_addresses(),
        })
    }

    pub fn display_name(&self) -> &str {
        display_name(&self.upn)
    }
}

fn display_name(upn: &str) -> &str {
    upn.split('@').next().unwrap_or(upn)
}

/// Values every user (of the first `share` of them) starts with instead of the seeded mix: an
/// already compliant tenant for a nightly sweep, or one where half the work is done.
#[derive(Clone, Debug)]
pub struct Uniform {
    pub smtp_auth_disabled: Option<Option<bool>>,
    pub mfa: Option<MfaState>,
    pub share: f64,
}

impl Default for Uniform {
    fn default() -> Uniform {
        Uniform { smtp_auth_disabled: None, mfa: None, share: 1.0 }
    }
}

/// How the tenant's users come into being; kept so that a reset can rebuild the same tenant.
#[derive(Clone, Debug)]
pub enum Population {
    /// `count` users with a realistic mix of kinds and settings.
    Generated { count: usize },
    /// One mailbox per identity (a target CSV's rows); `#EXT#` identities become guests.
    Identities(std::sync::Arc<Vec<String>>),
}

/// The whole directory plus tenant-wide settings.
pub struct Tenant {
    pub users: Vec<User>,
    by_id: HashMap<u128, u32>,
    by_upn: HashMap<Box<str>, u32>,
    /// Mail and proxy addresses (lower case) that differ from the UPN.
    by_address: HashMap<Box<str>, u32>,
    pub security_defaults_enabled: bool,
    pub transport_smtp_auth_disabled: bool,
    /// Groups and directory role assignments (empty unless `--smtp-blockers` seeds them).
    pub directory: Directory,
    /// Exchange authentication policies, the organisation's default and users' assignments.
    pub auth_policies: AuthenticationPolicies,
    /// Conditional Access policies and the named locations they use.
    pub conditional_access: ConditionalAccess,
    /// Basic authentication for SMTP AUTH (off in a tenant started with `--basic-smtp-off`).
    /// Microsoft documents no cmdlet or property for it, so no route reads it.
    pub basic_smtp_auth_enabled: bool,
    /// What `--smtp-blockers` seeded on purpose: (user, bits of [`super::blockers::Seeded`]).
    pub seeded_blockers: Vec<(u32, u32)>,
}

const FIRST: [&str; 16] = [
    "adele", "alex", "bianca", "chen", "diego", "emma", "farah", "grady", "hana", "isaiah", "joni", "lee", "megan",
    "nestor", "patti", "zoe",
];
const LAST: [&str; 12] =
    ["vance", "wilber", "kim", "garcia", "bowen", "lynch", "cole", "fischer", "ito", "larsen", "novak", "silva"];
const DOMAIN: &str = "contoso.com";

impl Tenant {
    pub fn build(population: &Population, seed: u64) -> Tenant {
        Tenant::build_with(population, seed, &Uniform::default())
    }

    /// Like [`Tenant::build`], then `uniform`'s values for its share of the users.
    pub fn build_with(population: &Population, seed: u64, uniform: &Uniform) -> Tenant {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut users: Vec<User> = match population {
            Population::Generated { count } => {
                super::exchange::seed_mailbox_mix((0..*count).map(|index| generated_user(&mut rng, index)).collect())
            }
            Population::Identities(identities) => {
                identities.iter().map(|identity| user_for_identity(&mut rng, identity)).collect()
            }
        };
        // The share is scattered over the tenant, as it is in a real one: the users already
        // compliant do not all come first in a CSV.
        let mut chooser = fastrand::Rng::with_seed(seed ^ 0x5eed_5ca7);
        let share = uniform.share.clamp(0.0, 1.0);
        for user in users.iter_mut().filter(|_| chooser.f64() < share) {
            if let Some(value) = uniform.smtp_auth_disabled {
                user.smtp_auth_disabled = value;
            }
            if let Some(mfa) = uniform.mfa {
                user.mfa = mfa;
                user.has_method = user.has_method && mfa != MfaState::Enabled;
            }
        }
        Tenant::index(users)
    }

    fn index(mut users: Vec<User>) -> Tenant {
        let mut by_id = HashMap::with_capacity(users.len());
        let mut by_upn = HashMap::with_capacity(users.len());
        let mut by_address = HashMap::new();
        let mut unique = Vec::with_capacity(users.len());
        for user in users.drain(..) {
            let upn_key: Box<str> = user.upn.to_lowercase().into();
            if by_upn.contains_key(&upn_key) {
                continue; // the same identity twice in a CSV is one user
            }
            let position = unique.len() as u32;
            by_upn.insert(upn_key, position);
            by_id.insert(user.id.as_u128(), position);
            if let Some(mail) = &user.mail {
                by_address.insert(mail.to_lowercase().into(), position);
            }
            unique.push(user);
        }
        Tenant {
            users: unique,
            by_id,
            by_upn,
            by_address,
            security_defaults_enabled: true,
            transport_smtp_auth_disabled: true,
            directory: Directory::default(),
            auth_policies: AuthenticationPolicies::default(),
            conditional_access: ConditionalAccess::default(),
            basic_smtp_auth_enabled: true,
            seeded_blockers: Vec::new(),
        }
    }

    /// Graph's `users/{id | userPrincipalName}`: an object id or the UPN, never the mail.
    pub fn find_user(&self, key: &str) -> Option<usize> {
        if let Ok(id) = Uuid::parse_str(key) {
            return self.by_id.get(&id.as_u128()).map(|&i| i as usize);
        }
        self.by_upn.get(key.to_lowercase().as_str()).map(|&i| i as usize)
    }

    pub fn find_by_mail(&self, mail: &str) -> Option<usize> {
        let key = mail.to_lowercase();
        if let Some(&i) = self.by_address.get(key.as_str()) {
            return Some(i as usize);
        }
        // A user whose mail equals the UPN is only in the UPN index.
        let i = *self.by_upn.get(key.as_str())? as usize;
        (self.users[i].mail.is_none() && (self.users[i].mailbox || self.users[i].guest)).then_some(i)
    }

    /// Exchange's `-Identity`: UPN, primary SMTP address or any proxy address, any letter case.
    pub fn find_mailbox(&self, identity: &str) -> Option<usize> {
        self.find_recipient(identity).filter(|&i| self.users[i].has_mailbox())
    }

    /// Exchange's `-Identity` for any user, with a mailbox or not (Get-User, Set-User).
    pub fn find_recipient(&self, identity: &str) -> Option<usize> {
        let key = identity.strip_prefix("smtp:").or_else(|| identity.strip_prefix("SMTP:"));
        let key = key.unwrap_or(identity).to_lowercase();
        self.by_upn
            .get(key.as_str())
            .or_else(|| self.by_address.get(key.as_str()))
            .map(|&i| i as usize)
            .or_else(|| self.find_user(identity))
    }
}

pub(super) fn seeded_uuid(rng: &mut fastrand::Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes()).into_uuid()
}

fn random_settings(rng: &mut fastrand::Rng) -> (Option<bool>, MfaState, bool) {
    let smtp = match rng.u8(0..4) {
        0 | 1 => None,
        2 => Some(true),
        _ => Some(false),
    };
    let mfa = match rng.u8(0..10) {
        0..=3 => MfaState::Disabled,
        4..=6 => MfaState::Enabled,
        _ => MfaState::Enforced,
    };
    // "enabled" for a user with a registered method turns into "enforced" by itself, so a user
    // who is still "enabled" has registered none.
    let has_method = rng.u8(0..10) < 6 && mfa != MfaState::Enabled;
    (smtp, mfa, has_method)
}

fn generated_user(rng: &mut fastrand::Rng, index: usize) -> User {
    let first = FIRST[rng.usize(..FIRST.len())];
    let last = LAST[rng.usize(..LAST.len())];
    let (smtp_auth_disabled, mfa, has_method) = random_settings(rng);
    let id = seeded_uuid(rng);
    let kind = rng.u16(0..1000);
    let local = match index % 97 {
        13 => format!("{first}+{last}{index}"),
        29 => format!("o'{last}{index}"),
        41 => format!("{first}-{last}{index}"),
        _ => format!("{first}.{last}{index}"),
    };
    let mut user = User {
        id,
        upn: format!("{local}@{DOMAIN}").into(),
        mail: None,
        guest: false,
        licensed: true,
        mailbox: true,
        account_enabled: true,
        smtp_auth_disabled,
        access: ClientAccess::seeded(id),
        mailbox_properties: MailboxProperties::seeded(id),
        mfa,
        has_method,
        writes: 0,
    };
    match kind {
        0..=9 => {
            user.guest = true;
            user.licensed = false;
            user.mailbox = false;
            user.upn = format!("{first}{index}_fabrikam.com#EXT#@contoso.onmicrosoft.com").into();
            user.mail = Some(format!("{first}{index}@fabrikam.com").into());
        }
        // Shared, room and equipment mailboxes: a mailbox without a licence.
        10..=19 => {
            let kind = ["shared", "room", "equipment"][index % 3];
            user.upn = format!("{kind}.{last}{index}@{DOMAIN}").into();
            user.licensed = false;
            user.seed_resource_mailbox(index % 3);
        }
        // A licence without an Exchange Online plan: no mailbox.
        20..=24 => user.mailbox = false,
        // Unlicensed admin and break-glass accounts: no mailbox, MFA enforced.
        25..=29 => {
            user.upn = format!("admin.{first}{index}@{DOMAIN}").into();
            user.licensed = false;
            user.mailbox = false;
            user.mfa = MfaState::Enforced;
            user.has_method = true;
        }
        30..=79 => user.mail = Some(format!("{first}.{last}{index}@mail.{DOMAIN}").into()),
        80..=84 => user.account_enabled = false,
        _ => {}
    }
    user
}

fn user_for_identity(rng: &mut fastrand::Rng, identity: &str) -> User {
    let (smtp_auth_disabled, mfa, has_method) = random_settings(rng);
    let guest = identity.to_ascii_uppercase().contains("#EXT#");
    User {
        id: seeded_uuid(rng),
        upn: identity.into(),
        mail: None,
        guest,
        licensed: !guest,
        mailbox: !guest,
        account_enabled: true,
        smtp_auth_disabled,
        access: ClientAccess::default(),
        mailbox_properties: MailboxProperties::default(),
        mfa,
        has_method,
        writes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_mixed() {
        let a = Tenant::build(&Population::Generated { count: 2000 }, 7);
        let b = Tenant::build(&Population::Generated { count: 2000 }, 7);
        assert_eq!(a.users.len(), 2000);
        assert!(a.users.iter().zip(&b.users).all(|(x, y)| x.id == y.id && x.upn == y.upn));
        assert!(a.users.iter().any(|u| u.guest));
        assert!(a.users.iter().any(|u| !u.licensed && !u.guest && u.has_mailbox()), "shared and room mailboxes");
        assert!(a.users.iter().any(|u| u.licensed && !u.has_mailbox()), "a licence without Exchange");
        assert!(a.users.iter().any(|u| !u.licensed && !u.has_mailbox() && u.mfa == MfaState::Enforced), "admins");
        assert!(a.users.iter().any(|u| u.mail.is_some() && !u.guest));
        assert!(a.users.iter().any(|u| u.upn.contains('\'')));
        assert!(a.users.iter().any(|u| u.upn.contains('+')));
        assert!(a.users.iter().any(|u| u.smtp_auth_disabled.is_none()));
    }

    #[test]
    fn mailbox_identity_resolves_by_any_address_in_any_case() {
        let tenant = Tenant::build(&Population::Generated { count: 500 }, 1);
        let aliased = tenant.users.iter().position(|u| u.mail.is_some() && u.has_mailbox()).unwrap();
        let user = &tenant.users[aliased];
        assert_eq!(tenant.find_mailbox(&user.mail().to_uppercase()), Some(aliased));
        assert_eq!(tenant.find_mailbox(&user.upn.to_uppercase()), Some(aliased));
        assert_eq!(tenant.find_mailbox(&format!("smtp:{}", user.upn)), Some(aliased));
        assert_eq!(tenant.find_user(user.mail()), None, "Graph finds users by UPN only");
    }
}
