//! Why a row ended as it did, beyond its outcome: the report's `error_code` column. The tool's own
//! reasons are words of ours, one variant each, so that code compares variants rather than strings;
//! a refusal keeps the service's code as the service sent it (Graph's `Request_ResourceNotFound`,
//! Exchange's `NotFound`, or the HTTP status when the answer named none).

use std::fmt;

use crate::cloud::CallError;
use crate::diagnosis::Layer;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Reason {
    /// Nothing to say: the row changed, was compliant, or would change.
    #[default]
    None,
    /// The target is in the run's exclusions (`--exclude`).
    Excluded,
    /// The directory holds no user for the target (by UPN, mail or proxy address).
    NotFound,
    /// A guest account: guests have no mailbox in the tenant.
    Guest,
    /// The user has no Exchange Online mailbox.
    NoMailbox,
    /// A setting of shared, room and equipment mailboxes, and the user has none.
    NoSharedMailbox,
    /// Two rows of the CSV name the same user with different values.
    ConflictingRows,
    /// Another row of the CSV already names the same directory user.
    SameUser,
    /// `--only-smtp-auth-users`: the user has no SMTP AUTH sign-in in the window.
    NoSmtpAuthSignIn,
    /// `--spare-smtp-auth-users`: the user signs in with SMTP AUTH.
    SmtpAuthInUse,
    /// An opt-in step (a policy, a group) that would not open the layer that blocks the user.
    NotEnough,
    /// An opt-in step whose layer could not be read.
    LayerUnreadable,
    /// An opt-in step the user does not need: the layer it opens does not block them.
    NotNeeded,
    /// Rollback: the value is no longer what the run set, so it was left alone.
    Conflict,
    /// Held at the value of an owned, unexpired exception.
    Excepted,
    /// `smtp-auth-effective`: the device cannot send, and this layer is the first that stops it.
    BlockedBy(Layer),
    /// `smtp-auth-effective`: the device cannot send, for want of a layer not named.
    Blocked,
    /// `smtp-auth-effective`: a layer could not be read, so whether the device can send is unknown.
    VerdictUnknown,
    /// `smtp-auth-effective` in a lockdown: the device can still send.
    StillCanSend,
    /// No token was accepted.
    AuthenticationFailed,
    /// Every attempt the retry policy allows was spent on answers worth retrying.
    RetriesExhausted,
    /// A write whose outcome the service never told: it is read back before anything else.
    OutcomeUnknown,
    /// Nothing was sent: the request could not be made here (its code says why).
    Local(&'static str),
    /// The service's own code, as it sent it.
    Service(String),
}

/// The reasons of ours that are one word, as the report spells them.
const WORDS: [(Reason, &str); 20] = [
    (Reason::Excluded, "Excluded"),
    (Reason::NotFound, "NotFound"),
    (Reason::Guest, "Guest"),
    (Reason::NoMailbox, "NoMailbox"),
    (Reason::NoSharedMailbox, "NoSharedMailbox"),
    (Reason::ConflictingRows, "ConflictingRows"),
    (Reason::SameUser, "SameUser"),
    (Reason::NoSmtpAuthSignIn, "NoSmtpAuthSignIn"),
    (Reason::SmtpAuthInUse, "SmtpAuthInUse"),
    (Reason::NotEnough, "NotEnough"),
    (Reason::LayerUnreadable, "LayerUnreadable"),
    (Reason::NotNeeded, "NotNeeded"),
    (Reason::Conflict, "Conflict"),
    (Reason::Excepted, "Excepted"),
    (Reason::Blocked, "Blocked"),
    (Reason::VerdictUnknown, "VerdictUnknown"),
    (Reason::StillCanSend, "StillCanSend"),
    (Reason::AuthenticationFailed, "AuthenticationFailed"),
    (Reason::RetriesExhausted, "RetriesExhausted"),
    (Reason::OutcomeUnknown, "OutcomeUnknown"),
];

/// The codes of requests that were never sent (`CallError::Local`), which a report read back
/// turns into the same variant.
const LOCAL: [&str; 4] = [crate::cloud::NOT_RECORDED, "NoTarget", "NoExclusionGroup", "NotASetting"];

impl Reason {
    /// Why a call failed, as its row says it.
    pub(crate) fn of(error: &CallError) -> Reason {
        match error {
            CallError::Refused { status, code, .. } if code.is_empty() => Reason::Service(status.to_string()),
            CallError::Refused { code, .. } => Reason::Service(code.clone()),
            CallError::Exhausted { .. } => Reason::RetriesExhausted,
            CallError::Unknown { .. } => Reason::OutcomeUnknown,
            CallError::Auth(_) => Reason::AuthenticationFailed,
            CallError::Local { code, .. } => Reason::Local(code),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Reason::None => "",
            Reason::BlockedBy(layer) => layer.name(),
            Reason::Local(code) => code,
            Reason::Service(code) => code,
            word => WORDS.iter().find(|(reason, _)| reason == word).map_or("", |(_, text)| text),
        }
    }

    /// The reason a report cell spells: ours where it is one of ours, else the service's code.
    pub(crate) fn parse(text: &str) -> Reason {
        if text.is_empty() {
            return Reason::None;
        }
        if let Some((reason, _)) = WORDS.iter().find(|(_, word)| *word == text) {
            return reason.clone();
        }
        if let Some(layer) = Layer::ALL.into_iter().find(|layer| layer.name() == text) {
            return Reason::BlockedBy(layer);
        }
        match LOCAL.into_iter().find(|code| *code == text) {
            Some(code) => Reason::Local(code),
            None => Reason::Service(text.to_string()),
        }
    }

    /// The service refused for want of a permission (Graph's and Exchange's codes for it).
    pub(crate) fn is_permission_refusal(&self) -> bool {
        matches!(self, Reason::Service(code) if matches!(code.as_str(), "Authorization_RequestDenied" | "Forbidden" | "403" | "AccessDenied"))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Reason, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Reason::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_as_itself() {
        let mut all: Vec<Reason> = WORDS.iter().map(|(reason, _)| reason.clone()).collect();
        all.extend(Layer::ALL.map(Reason::BlockedBy));
        all.extend(LOCAL.map(Reason::Local));
        all.extend([Reason::None, Reason::Service("Request_ResourceNotFound".into())]);
        for reason in all {
            assert_eq!(Reason::parse(reason.as_str()), reason, "{reason:?}");
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), reason, "{json}");
        }
    }

    #[test]
    fn a_service_code_that_looks_like_ours_is_ours_and_others_are_the_services() {
        assert_eq!(Reason::parse("NotFound"), Reason::NotFound);
        assert_eq!(Reason::parse("ErrorMailboxNotFound"), Reason::Service("ErrorMailboxNotFound".into()));
        assert!(Reason::parse("Authorization_RequestDenied").is_permission_refusal());
        assert!(Reason::parse("403").is_permission_refusal());
        assert!(!Reason::Excluded.is_permission_refusal());
    }
}
