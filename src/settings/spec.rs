//! What a setting is, as data: its name, whose it is, the values it takes, the API and the
//! permission its write needs, the Microsoft page it follows, what "compliant" means for it, how
//! it is read and written, and what the report advises when the service refuses it. Each setting's
//! file declares one [`Spec`]; [`super::Setting::spec`] names it, and everything else about a
//! setting (the lists of settings, `--set`, the reads and writes, the engine's special cases, the
//! report's advice) reads it from there, so that a setting is one file rather than a `match` arm
//! in a dozen places.

use std::future::Future;
use std::pin::Pin;

use super::{Reading, Sources, Value};
use crate::cloud::graph::DirectoryUser;
use crate::cloud::{Answer, Api, Call, CallError, CloudClient};

/// Whose a setting is, which says when it is worked on and what it needs to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The tenant's own: worked on once, before the targets.
    Tenant,
    /// A mailbox's: a user without an Exchange Online mailbox has none.
    Mailbox,
    /// A directory user's, mailbox or not.
    User,
    /// Not a setting one writes: a target's verdict, worked out from the other settings.
    Verdict,
}

impl Scope {
    /// Whose it is, in a listing's words.
    pub(crate) const fn describe(self) -> &'static str {
        match self {
            Scope::Tenant => "the tenant's",
            Scope::Mailbox => "each mailbox's",
            Scope::User => "each user's",
            Scope::Verdict => "each target's verdict, judged and never written",
        }
    }

    /// Whether it belongs to each target (a mailbox's or a user's).
    pub(crate) const fn is_per_target(self) -> bool {
        matches!(self, Scope::Mailbox | Scope::User)
    }
}

/// A read under way: boxed, so that every setting's read has one type a spec can hold.
pub(crate) type Pending<'a> = Pin<Box<dyn Future<Output = Result<Reading, CallError>> + Send + 'a>>;

/// How a setting is read and written, by whose it is.
pub(crate) enum Access {
    /// The tenant's: read and written with no user.
    Tenant { read: for<'a> fn(&'a CloudClient) -> Pending<'a>, write: fn(&CloudClient, Value) -> Call },
    /// A target's: read and written for one directory user, leaning on what the run knows
    /// already ([`Sources`]); the write fails when what it needs is missing (an exclusion group).
    Target {
        read: for<'a> fn(&'a CloudClient, &'a DirectoryUser, Sources<'a>) -> Pending<'a>,
        write: fn(&CloudClient, &DirectoryUser, Sources<'_>, Value) -> Result<Call, CallError>,
    },
    /// A mailbox's property of `Get-`/`Set-CASMailbox` or `Get-`/`Set-Mailbox`, read and written
    /// the same way for every such setting, and listed for every mailbox at once in the run's bulk
    /// listing.
    Mailbox(super::mailbox_property::MailboxProperty),
    /// Neither: a verdict is worked out, not read or written.
    Neither,
}

/// What to tell a person whose run the service refused for want of a permission: a read-only run
/// needs the read permission, a run that changes needs both.
pub(crate) struct Advice {
    pub read_only: &'static str,
    pub changing: &'static str,
}

/// Everything about one setting.
pub(crate) struct Spec {
    /// As users write it (`--set`, profiles, CSV columns) and as the journal and reports keep it.
    pub name: &'static str,
    pub scope: Scope,
    /// The values `--set` and profiles may give; empty for the settings only a flag of their own
    /// sets (`--basic-auth-policy`, `--ca-exclusion-group`) and for the verdict.
    pub values: &'static [Value],
    /// Whether a CSV column named after it may give a row's own value.
    pub per_row: bool,
    /// The API that reads and writes it.
    pub api: Api,
    /// What the write needs granted (empty for the verdict, which is not written); `remediate
    /// profiles` lists it.
    pub permission: &'static str,
    /// The Microsoft page it follows; `remediate profiles` lists it.
    pub document: &'static str,
    /// Whether `current` already satisfies `desired` when applying a desired state; a rollback
    /// asks for the exact value instead ([`super::Setting::restored`]).
    pub satisfies: fn(current: Value, desired: Value) -> bool,
    pub access: Access,
    /// An error of the write that says the change was already so, as the answer it stands for.
    pub already_so: Option<fn(Value, &CallError) -> Option<Answer>>,
    /// Values the service may turn into another once written: the value is read back after such
    /// a write, so that the report says what the setting became.
    pub read_back: &'static [Value],
    /// Values that weaken the tenant, and so need an explicit yes.
    pub weakening: &'static [Value],
    /// Whether it is an opt-in step of the SMTP AUTH fix, taken only for a user whose layer it
    /// opens blocks them ([`crate::engine`]'s layers say).
    pub opt_in: bool,
    /// Whether its reading names a value from the tenant's authentication policies, which must
    /// then be read first.
    pub needs_policies: bool,
    /// What a run that sets it to a value is told before it starts.
    pub notice: Option<Notice>,
    /// A property of the bulk mailbox listing that a `Target` setting's read leans on (the kind
    /// of mailbox); a `Mailbox` setting's own property is listed anyway.
    pub listed: Option<super::mailbox_property::MailboxProperty>,
    /// What a reading of no value means for the setting.
    pub absent: Absent,
    /// What the report advises when the service refuses it for want of a permission.
    pub advice: Advice,
}

/// Why a target's reading has no value: the row is skipped, saying so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Absent {
    /// The user has no Exchange Online mailbox.
    NoMailbox,
    /// The user has no shared, room or equipment mailbox (a user's own mailbox, or none).
    NoSharedMailbox,
}

/// Something a person setting a value should know before the run starts: a condition the service
/// puts on it, a retirement date.
pub(crate) struct Notice {
    pub when: Value,
    pub text: &'static str,
}

impl Spec {
    /// What a spec says where it says nothing else: a tenant setting of Graph that only its own
    /// value satisfies, with no special rules. Each setting's file spells out what differs and
    /// takes the rest from here (`..Spec::PLAIN`).
    pub(crate) const PLAIN: Spec = Spec {
        name: "",
        scope: Scope::Tenant,
        values: &[],
        per_row: false,
        api: Api::Graph,
        permission: "",
        document: "",
        satisfies: equal,
        access: Access::Neither,
        already_so: None,
        read_back: &[],
        weakening: &[],
        opt_in: false,
        needs_policies: false,
        notice: None,
        listed: None,
        absent: Absent::NoMailbox,
        advice: Advice { read_only: "", changing: "" },
    };
}

/// The advice for a setting written with Set-CASMailbox or Set-User: the app's Exchange permission
/// and the least role that runs those cmdlets.
pub(crate) const RECIPIENT_ADMINISTRATOR: Advice = Advice {
    read_only: "grant the app Exchange.ManageAsApp (Office 365 Exchange Online) and assign it the Exchange Recipient Administrator role",
    changing: "grant the app Exchange.ManageAsApp (Office 365 Exchange Online) and assign it the Exchange Recipient Administrator role",
};

/// The default [`Spec::satisfies`]: only the value itself.
pub(crate) fn equal(current: Value, desired: Value) -> bool {
    current == desired
}
