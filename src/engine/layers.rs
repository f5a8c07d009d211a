//! The SMTP AUTH layers as a run sees them (see [`crate::diagnosis`]): the tenant's facts, read
//! once when a target first needs them (after the tenant step, so they say what the run left),
//! and from them whether an opt-in step is needed for a target, and the `smtp-auth-effective`
//! row of a target whose settings are done: the fix is done when the device can send, not when
//! a switch was flipped.

use std::sync::Mutex;

use tokio::sync::OnceCell;

use super::events::{Outcome, Row};
use super::{Context, Reason};
use crate::cloud::CloudClient;
use crate::cloud::graph::DirectoryUser;
use crate::diagnosis::{
    self, AuthPolicy, BasicSmtp, ClientKind, Diagnosis, Layer, MailboxFacts, State, TenantFacts, Unreadable, Verdict,
};
use crate::settings::{self, Setting, Value};

pub(crate) struct Layers {
    /// What the run wants of the device: `can-send` (the fix), `blocked` (the lockdown), or no
    /// verdict row at all.
    pub desired: Option<Value>,
    pub client: ClientKind,
    basic_smtp: BasicSmtp,
    /// The group `--ca-exclusion-group` named, by id.
    pub exclusion_group: Option<String>,
    facts: OnceCell<TenantFacts>,
    /// Tenant settings as this run leaves them (for a plan, as it would).
    tenant: Mutex<Vec<(Setting, Value)>>,
}

impl Layers {
    pub(crate) fn new(desired: Option<Value>, basic_smtp: BasicSmtp, exclusion_group: Option<String>) -> Layers {
        Layers {
            desired,
            client: ClientKind::Basic,
            basic_smtp,
            exclusion_group,
            facts: OnceCell::new(),
            tenant: Mutex::new(Vec::new()),
        }
    }

    /// The same run's layers for another tenant: nothing read yet.
    pub(crate) fn for_tenant(&self) -> Layers {
        Layers::new(self.desired, self.basic_smtp.clone(), self.exclusion_group.clone())
    }

    /// Says what a tenant setting is (or would be) once the tenant step is done.
    pub(crate) fn tenant_left(&self, setting: Setting, value: Value) {
        self.tenant.lock().unwrap_or_else(|e| e.into_inner()).push((setting, value));
    }

    /// The tenant's facts, read once, with the tenant settings as the run left them.
    pub(crate) async fn facts(&self, client: &CloudClient) -> &TenantFacts {
        self.facts
            .get_or_init(|| async {
                let mut facts = diagnosis::read_tenant(client, self.basic_smtp.clone()).await;
                for (setting, value) in self.tenant.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    match setting {
                        Setting::SecurityDefaults => facts.security_defaults = Ok(*value == Value::Enabled),
                        Setting::OrganisationSmtpAuth => {
                            facts.organisation_smtp_disabled = Ok(*value != Value::Enabled)
                        }
                        _ => {}
                    }
                }
                facts
            })
            .await
    }

    /// The tenant's authentication policies, once read (to name the one a user has).
    pub(crate) fn policies(&self) -> &[AuthPolicy] {
        self.facts.get().and_then(|facts| facts.policies.as_deref().ok()).unwrap_or_default()
    }

    /// Why an opt-in step is not wanted for `user`, if it is not: the layer it would open does not
    /// block the user, or opening it would not be enough.
    pub(crate) async fn not_needed(
        &self,
        client: &CloudClient,
        setting: Setting,
        user: &DirectoryUser,
    ) -> Option<(Reason, String)> {
        let facts = self.facts(client).await;
        let mut mailbox = mailbox_facts(user);
        mailbox.mailbox = Ok(Some(Value::Enabled));
        mailbox.per_user_mfa = Ok(Value::Disabled);
        let diagnosis = diagnosis::evaluate(facts, &mailbox);
        let layer = match setting {
            Setting::AuthenticationPolicy => Layer::AuthenticationPolicy,
            Setting::CaExclusion => Layer::ConditionalAccess,
            _ => return None,
        };
        let finding = diagnosis.finding(layer)?;
        match &finding.basic {
            State::Blocks if setting == Setting::CaExclusion => {
                let group = self.exclusion_group.as_deref().unwrap_or_default();
                let enough = diagnosis.exclusion_groups.iter().any(|g| g.eq_ignore_ascii_case(group));
                (!enough).then(|| {
                    (Reason::NotEnough, format!("{}; not every blocking policy excludes group {group}, so adding the user would not unblock it: exclude the mailbox in the Entra admin center", finding.evidence))
                })
            }
            State::Blocks => None,
            State::Unknown(why) => Some((Reason::LayerUnreadable, why.clone())),
            State::Allows | State::NotApplicable => {
                Some((Reason::NotNeeded, format!("not needed: {}", finding.evidence)))
            }
        }
    }

    /// The `smtp-auth-effective` row of a target whose other rows are `rows`: the verdict before
    /// the run's changes and after them (for a plan, as they would be).
    pub(crate) async fn verdict(&self, context: &Context, mut row: Row, rows: &[Row], user: &DirectoryUser) -> Row {
        let Some(desired) = self.desired else { return row };
        let facts = self.facts(&context.client).await;
        let (mut before, mut after) = (mailbox_facts(user), mailbox_facts(user));
        if !rows.iter().any(|done| done.setting == Setting::SmtpAuth) {
            // Finished by an earlier session of the run: as it is now.
            let read = settings::read(Setting::SmtpAuth, &context.client, Some(user), context.sources()).await;
            let value = read.map(|r| r.value).map_err(|e| Unreadable {
                what: "the mailbox's SMTP AUTH",
                permission: "Exchange.ManageAsApp",
                error: e.to_string(),
            });
            if let Ok(None) = value {
                // As that session's smtp-auth row said: no mailbox, so no device to carry to.
                row.outcome = Outcome::Skipped;
                row.error_code = Reason::NoMailbox;
                row.error_message = "no Exchange Online mailbox for this user".into();
                return row;
            }
            (before.mailbox, after.mailbox) = (value.clone(), value);
        }
        for done in rows {
            apply_row(done, &mut before, &mut after, self.exclusion_group.as_deref());
        }
        let mut judged = diagnosis::evaluate(facts, &after);
        if judged.verdict(self.client) != Verdict::Blocked && after.per_user_mfa.is_err() {
            // Per-user MFA matters only when nothing earlier blocks: read then, not for every target.
            let read =
                settings::read(Setting::PerUserMfa, &context.client, Some(user), settings::Sources::default()).await;
            let mfa = read.map_err(|e| e.to_string()).and_then(|r| r.value.ok_or_else(|| "no state".to_string()));
            let mfa = mfa.map_err(|error| Unreadable { what: "per-user MFA", permission: "Policy.Read.All", error });
            (before.per_user_mfa, after.per_user_mfa) = (mfa.clone(), mfa);
            judged = diagnosis::evaluate(facts, &after);
        }
        let then = diagnosis::evaluate(facts, &before).verdict(self.client);
        let now = judged.verdict(self.client);
        row.before = Some(then.value());
        row.after = Some(now.value());
        conclude(row, desired, then, now, &judged, self.client, context.mode == super::Mode::Plan)
    }
}

/// A user's facts before anything of theirs is read.
fn mailbox_facts(user: &DirectoryUser) -> MailboxFacts {
    let not_read = Unreadable { what: "per-user MFA", permission: "Policy.Read.All", error: "not read".into() };
    MailboxFacts {
        user_id: user.id.clone(),
        mailbox: Ok(Some(Value::Inherit)),
        account_enabled: Ok(user.account_enabled),
        per_user_mfa: Err(not_read),
        own_policy: None,
        groups_joined: Vec::new(),
    }
}

/// What one finished row says of the user before and after the run's change (a plan's row: as
/// it would be after).
fn apply_row(row: &Row, before: &mut MailboxFacts, after: &mut MailboxFacts, group: Option<&str>) {
    let unread =
        |what| Unreadable { what, permission: "", error: format!("{}: {}", row.error_code, row.error_message) };
    let end = match row.outcome {
        Outcome::Changed | Outcome::Compliant => row.after,
        Outcome::WouldChange => Some(row.desired),
        _ => row.before,
    };
    match row.setting {
        Setting::SmtpAuth => {
            let value = |value: Option<Value>| match (row.outcome, value) {
                (Outcome::Skipped, _) if row.error_code == Reason::NoMailbox => Ok(None),
                (_, Some(value)) => Ok(Some(value)),
                (_, None) => Err(unread("the mailbox's SMTP AUTH")),
            };
            (before.mailbox, after.mailbox) = (value(row.before), value(end));
        }
        Setting::PerUserMfa => {
            let value = |value: Option<Value>| value.ok_or_else(|| unread("per-user MFA"));
            (before.per_user_mfa, after.per_user_mfa) = (value(row.before), value(end));
        }
        Setting::AuthenticationPolicy => {
            before.own_policy = row.before.map(|v| v.name().to_string());
            after.own_policy = end.map(|v| v.name().to_string());
        }
        Setting::CaExclusion if end == Some(Value::Member) => after.groups_joined.extend(group.map(str::to_string)),
        _ => {}
    }
}

/// The verdict row's outcome: done when the device is where the run wants it; `blocked` when it
/// is not, and a layer the run's settings do not reach decides (the fix leaves the device unable
/// to send: the layers and their fixes are in the message; or the lockdown leaves it able to);
/// failed when a layer could not be read.
fn conclude(
    mut row: Row,
    desired: Value,
    then: Verdict,
    now: Verdict,
    judged: &Diagnosis,
    client: ClientKind,
    plan: bool,
) -> Row {
    if now.value() == desired {
        row.outcome = if plan && then != now { Outcome::WouldChange } else { Outcome::Compliant };
        return row;
    }
    match now {
        Verdict::Blocked => {
            let layers = judged.blocking(client);
            row.outcome = Outcome::Blocked;
            row.error_code = layers.first().map_or(Reason::Blocked, |layer| Reason::BlockedBy(*layer));
            row.error_message = layers
                .iter()
                .filter_map(|layer| {
                    judged.finding(*layer).map(|f| format!("{layer}: {} (fix: {})", f.evidence, layer.fix().0))
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
        Verdict::Unknown => {
            row.outcome = Outcome::Failed;
            row.error_code = Reason::VerdictUnknown;
            row.error_message = judged
                .unknowns(client)
                .iter()
                .map(|(layer, why)| format!("{layer}: {why}"))
                .collect::<Vec<_>>()
                .join("; ");
        }
        Verdict::CanSend => {
            row.outcome = Outcome::Blocked;
            row.error_code = Reason::StillCanSend;
            row.error_message = "the device can still send with SMTP AUTH: every layer lets it through".into();
        }
    }
    row
}
