//! The remediable settings, their values, and what "compliant" means for each.
//!
//! A setting knows how to read and write itself through the cloud clients (one file each), but
//! nothing of retries, throttling or CSV files. What a setting is lives in `setting.rs`, its
//! values in `value.rs`, a run's desired state in `desired.rs`; reading and writing any setting
//! starts here.

pub(crate) mod authentication_policy;
pub(crate) mod ca_exclusion;
mod desired;
pub(crate) mod mailbox_index;
pub(crate) mod per_user_mfa;
pub(crate) mod security_defaults;
mod setting;
pub(crate) mod smtp_auth;
mod value;

pub(crate) use desired::DesiredState;
pub(crate) use setting::Setting;
pub(crate) use value::{Name, Value};

use crate::cloud::graph::DirectoryUser;
use crate::cloud::{Answer, CallError, CloudClient, RequestIds};

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

/// What reads and writes may lean on besides the service: the run's bulk SMTP AUTH listing, the
/// tenant's authentication policies (to name the one a user has), the exclusion group.
#[derive(Clone, Copy, Default)]
pub(crate) struct Sources<'a> {
    pub smtp_index: Option<&'a mailbox_index::PendingIndex>,
    pub policies: &'a [crate::diagnosis::AuthPolicy],
    pub exclusion_group: Option<&'a str>,
}

impl Sources<'_> {
    /// The same, but asking the service itself: for a read that must see a write's effect.
    pub(crate) fn fresh(self) -> Self {
        Sources { smtp_index: None, ..self }
    }
}

fn no_target() -> CallError {
    CallError::Local { code: "NoTarget", message: "a per-target setting needs a target".into() }
}

fn no_group() -> CallError {
    CallError::Local { code: "NoExclusionGroup", message: "ca-exclusion needs --ca-exclusion-group".into() }
}

/// Reads `setting` for `user` (tenant-wide settings need none); SMTP AUTH from the bulk listing
/// when the run reads every mailbox at once and the listing can say.
pub(crate) async fn read(
    setting: Setting,
    client: &CloudClient,
    user: Option<&DirectoryUser>,
    sources: Sources<'_>,
) -> Result<Reading, CallError> {
    let listed = match (setting, user, sources.smtp_index) {
        (Setting::SmtpAuth, Some(user), Some(index)) => index.lookup(&user.id).await,
        _ => None,
    };
    match (setting, user) {
        (Setting::SecurityDefaults, _) => security_defaults::read(client).await,
        (Setting::OrganisationSmtpAuth, _) => smtp_auth::read_organisation(client).await,
        (Setting::SmtpAuth, Some(_)) if let Some(known) = listed => {
            Ok(Reading { value: known, attempts: 0, ids: RequestIds::default() })
        }
        (Setting::SmtpAuth, Some(user)) => smtp_auth::read(client, &user.upn).await,
        (Setting::PerUserMfa, Some(user)) => per_user_mfa::read(client, &user.id).await,
        (Setting::AuthenticationPolicy, Some(user)) => {
            authentication_policy::read(client, &user.upn, sources.policies).await
        }
        (Setting::CaExclusion, Some(user)) => {
            ca_exclusion::read(client, &user.id, sources.exclusion_group.ok_or_else(no_group)?).await
        }
        (Setting::SmtpAuthEffective, _) => {
            Err(CallError::Local { code: "NotASetting", message: "smtp-auth-effective is a verdict, not read".into() })
        }
        (_, None) => Ok(Reading { value: None, attempts: 0, ids: RequestIds::default() }),
    }
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
    let tenant = &client.tenant_id;
    let mut call = match (setting, user) {
        (Setting::SecurityDefaults, _) => security_defaults::write(value),
        (Setting::OrganisationSmtpAuth, _) => smtp_auth::write_organisation(tenant, value),
        (Setting::SmtpAuth, Some(user)) => smtp_auth::write(tenant, &user.upn, value),
        (Setting::PerUserMfa, Some(user)) => per_user_mfa::write(&user.id, value),
        (Setting::AuthenticationPolicy, Some(user)) => authentication_policy::write(tenant, &user.upn, value),
        (Setting::CaExclusion, Some(user)) => {
            let group = sources.exclusion_group.ok_or_else(no_group)?;
            ca_exclusion::write(client.base_url(crate::cloud::Api::Graph), &user.id, group, value)
        }
        (Setting::SmtpAuthEffective, _) | (_, None) => return Err(no_target()),
    };
    call.sent = Some(sent);
    call.gate = Some(gate);
    match client.send(&call).await {
        Err(error) if setting == Setting::CaExclusion => ca_exclusion::already_so(value, &error).ok_or(error),
        answer => answer,
    }
}
