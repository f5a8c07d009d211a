//! The remediable settings, their values, and what "compliant" means for each.
//!
//! A setting is one file that declares everything about it in a [`spec::Spec`]: its name, whose
//! it is, its values, its API and permission, the Microsoft page it follows, how it is read and
//! written through the cloud clients, and what the report advises when it is refused; nothing of
//! retries, throttling or CSV files. The enum that names the settings lives in `setting.rs`, their
//! values in `value.rs`, a run's desired state in `desired.rs`; reading and writing any setting
//! starts here, and goes through its spec.
//!
//! How to add a setting: write its file here (its read and write, and its `pub(crate) const SPEC:
//! Spec`, with the Microsoft page its code follows cited where the code is), declare the module
//! below, and add one line to the catalog in `setting.rs` (its variant, whose kebab-case name is
//! the spec's `name` and what journals and reports keep, and its file); a tenant setting is also
//! put in `Setting::TENANT`, whose order is the order of work. The enum, `ALL`, `spec()` and the
//! per-row and per-target lists follow from the catalog and the specs. Then give the simulated
//! tenant (`crates/sim`) the service's counterpart, so the tests and benches can run it, and test
//! both: its read and write on their own, and a run that changes it and rolls it back.

mod activesync;
mod audit;
mod audit_bypass;
pub(crate) mod authentication_policy;
pub(crate) mod ca_exclusion;
mod desired;
mod ews;
pub(crate) mod exceptions;
mod forwarding;
mod imap;
pub(crate) mod mailbox_index;
pub(crate) mod mailbox_property;
mod mapi;
pub(crate) mod organisation_smtp_auth;
mod owa;
pub(crate) mod per_user_mfa;
mod pop;
pub(crate) mod profile;
pub(crate) mod security_defaults;
mod setting;
mod shared_sign_in;
pub(crate) mod smtp_auth;
mod smtp_auth_effective;
mod spec;
mod value;

pub(crate) use desired::DesiredState;
pub(crate) use setting::Setting;
pub(crate) use spec::{Absent, Scope};
pub(crate) use value::{Name, Value};

use crate::cloud::graph::DirectoryUser;
use crate::cloud::{Answer, CallError, CloudClient, RequestIds};
use spec::Access;

/// A setting's current value, or `None` where it does not apply (a user without a mailbox).
#[derive(Clone, Debug)]
pub(crate) struct Reading {
    pub value: Option<Value>,
    pub attempts: u32,
    pub ids: RequestIds,
}

impl Reading {
    fn of(value: Option<Value>, answer: &Answer) -> Reading {
        Reading { value, attempts: answer.attempts, ids: answer.ids.clone() }
    }
}

fn unexpected(answer: &Answer, field: &str) -> CallError {
    CallError::Refused {
        status: answer.status,
        code: "UnexpectedAnswer".into(),
        message: format!("the answer has no usable '{field}'"),
        ids: answer.ids.clone(),
        attempts: answer.attempts,
    }
}

/// What reads and writes may lean on besides the service: the run's bulk mailbox listing, the
/// tenant's authentication policies (to name the one a user has), the exclusion group.
#[derive(Clone, Copy, Default)]
pub(crate) struct Sources<'a> {
    pub mailbox_index: Option<&'a mailbox_index::PendingIndex>,
    pub policies: &'a [crate::diagnosis::AuthPolicy],
    pub exclusion_group: Option<&'a str>,
}

impl Sources<'_> {
    /// The same, but asking the service itself: for a read that must see a write's effect.
    pub(crate) fn fresh(self) -> Self {
        Sources { mailbox_index: None, ..self }
    }
}

fn no_target() -> CallError {
    CallError::Local { code: "NoTarget", message: "a per-target setting needs a target".into() }
}

/// Reads `setting` for `user` (tenant-wide settings need none), as its spec says.
pub(crate) async fn read(
    setting: Setting,
    client: &CloudClient,
    user: Option<&DirectoryUser>,
    sources: Sources<'_>,
) -> Result<Reading, CallError> {
    match (&setting.spec().access, user) {
        (Access::Tenant { read, .. }, _) => read(client).await,
        (Access::Target { read, .. }, Some(user)) => read(client, user, sources).await,
        (Access::Mailbox(property), Some(user)) => read_listed(client, user, *property, setting, sources).await,
        (Access::Target { .. } | Access::Mailbox(_), None) => {
            Ok(Reading { value: None, attempts: 0, ids: RequestIds::default() })
        }
        (Access::Neither, _) => {
            Err(CallError::Local { code: "NotASetting", message: format!("{setting} is a verdict, not read") })
        }
    }
}

/// A mailbox's property: from the run's bulk listing when it reads every mailbox at once and the
/// listing can say, else from Exchange.
async fn read_listed(
    client: &CloudClient,
    user: &DirectoryUser,
    property: mailbox_property::MailboxProperty,
    setting: Setting,
    sources: Sources<'_>,
) -> Result<Reading, CallError> {
    if let Some(index) = sources.mailbox_index {
        if let Some(known) = index.lookup(&user.id, setting).await {
            return Ok(Reading { value: known, attempts: 0, ids: RequestIds::default() });
        }
        if let Some(refused) = index.refusal(setting) {
            return Err(refused);
        }
    }
    mailbox_property::read(client, &user.upn, property).await
}

/// Writes `value` to `setting` for `user`; `sent` is told each attempt's request id as it goes out.
pub(crate) async fn write(
    setting: Setting,
    client: &CloudClient,
    user: Option<&DirectoryUser>,
    value: Value,
    sources: Sources<'_>,
    sent: std::sync::Arc<tokio::sync::watch::Sender<Option<crate::cloud::Sent>>>,
    gate: crate::cloud::Gate,
) -> Result<Answer, CallError> {
    let spec = setting.spec();
    let mut call = match (&spec.access, user) {
        (Access::Tenant { write, .. }, _) => write(client, value),
        (Access::Target { write, .. }, Some(user)) => write(client, user, sources, value)?,
        (Access::Mailbox(property), Some(user)) => {
            mailbox_property::write(&client.tenant_id, &user.upn, *property, value)?
        }
        (Access::Target { .. } | Access::Mailbox(_) | Access::Neither, _) => return Err(no_target()),
    };
    call.sent = Some(sent);
    call.gate = Some(gate);
    match client.send(&call).await {
        Err(error) if let Some(already_so) = spec.already_so => already_so(value, &error).ok_or(error),
        answer => answer,
    }
}
