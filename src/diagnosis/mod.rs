//! Can this device send? Every layer that decides whether a client submitting mail with SMTP AUTH
//! as a mailbox gets through, evaluated for a client with a password (Basic) and one with OAuth.
//!
//! The layers, in the order a support engineer checks them, are [`Layer`]s; what the tenant says
//! of each is read once per tenant ([`TenantFacts`], [`read`]) and per mailbox ([`MailboxFacts`]);
//! [`evaluate`] turns them into a [`Diagnosis`]: each layer's state for each client, the evidence,
//! and a verdict. `remediate diagnose` reports it, and `apply` carries the SMTP AUTH fix through to
//! it (a target whose device still cannot send is not done). A layer the app may not read makes
//! the verdict `unknown`, naming the permission: the tool never guesses.

pub(crate) mod conditional_access;
mod evaluate;
mod facts;
mod layers;
pub(crate) mod population;
pub(crate) mod read;
pub(crate) mod sign_in_codes;

pub(crate) use evaluate::evaluate;
pub(crate) use facts::{AuthPolicy, BasicSmtp, MailboxFacts, TenantFacts, Unreadable};
pub(crate) use layers::{Layer, State};
pub(crate) use read::read_tenant;

/// A client that submits mail with SMTP AUTH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// A username and a password (Basic authentication): printers, scanners, old applications.
    Basic,
    /// OAuth (XOAUTH2): the way Microsoft recommends once Basic authentication for SMTP AUTH ends.
    Oauth,
}

impl ClientKind {
    pub const BOTH: [ClientKind; 2] = [ClientKind::Basic, ClientKind::Oauth];

    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Basic => "basic",
            ClientKind::Oauth => "oauth",
        }
    }
}

/// Whether a client can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Verdict {
    CanSend,
    Blocked,
    /// A layer could not be read, or its answer depends on what the tool cannot see.
    Unknown,
}

impl Verdict {
    /// As the value of a `smtp-auth-effective` row.
    pub(crate) fn value(self) -> crate::settings::Value {
        match self {
            Verdict::CanSend => crate::settings::Value::CanSend,
            Verdict::Blocked => crate::settings::Value::Blocked,
            Verdict::Unknown => crate::settings::Value::Unknown,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Verdict::CanSend => "can-send",
            Verdict::Blocked => "blocked",
            Verdict::Unknown => "unknown",
        }
    }
}

/// What one layer says of one mailbox, for each client.
#[derive(Clone, Debug)]
pub(crate) struct Finding {
    pub layer: Layer,
    pub basic: State,
    pub oauth: State,
    /// The layer's value and where it came from.
    pub evidence: String,
}

impl Finding {
    pub(crate) fn state(&self, client: ClientKind) -> &State {
        match client {
            ClientKind::Basic => &self.basic,
            ClientKind::Oauth => &self.oauth,
        }
    }
}

/// Every layer's finding for one mailbox, in the order they are checked.
#[derive(Clone, Debug, Default)]
pub(crate) struct Diagnosis {
    pub findings: Vec<Finding>,
    /// Groups that every Conditional Access policy blocking the Basic client already excludes:
    /// adding the user to one of them removes that block (`apply --ca-exclusion-group`).
    pub exclusion_groups: Vec<String>,
}

impl Diagnosis {
    /// Blocked when any layer blocks; else unknown when any layer could not be read or depends
    /// on the device; else the client can send.
    pub(crate) fn verdict(&self, client: ClientKind) -> Verdict {
        let states = || self.findings.iter().map(|f| f.state(client));
        if states().any(|s| matches!(s, State::Blocks)) {
            Verdict::Blocked
        } else if states().any(|s| matches!(s, State::Unknown(_))) {
            Verdict::Unknown
        } else {
            Verdict::CanSend
        }
    }

    /// The layers that block `client`, in order.
    pub(crate) fn blocking(&self, client: ClientKind) -> Vec<Layer> {
        self.findings.iter().filter(|f| matches!(f.state(client), State::Blocks)).map(|f| f.layer).collect()
    }

    /// Why the verdict for `client` is unknown: each layer's reason.
    pub(crate) fn unknowns(&self, client: ClientKind) -> Vec<(Layer, &str)> {
        self.findings
            .iter()
            .filter_map(|f| match f.state(client) {
                State::Unknown(why) => Some((f.layer, why.as_str())),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn finding(&self, layer: Layer) -> Option<&Finding> {
        self.findings.iter().find(|f| f.layer == layer)
    }
}
