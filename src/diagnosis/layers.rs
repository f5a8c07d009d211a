//! The layers, each with the SMTP reply a device sees when it is the one that refuses, and the
//! way out: a command of this tool where one exists, else the manual step and where it is
//! documented.
//!
//! The replies: `535 5.7.3`, `5.7.57` and `550 5.7.30` are Microsoft's own texts ("Fix issues with
//! printers, scanners, and LOB applications that send email using Microsoft 365"; "Exchange Online
//! to retire Basic auth for Client Submission (SMTP AUTH)", Exchange Team blog). Microsoft
//! publishes no table of the `5.7.139` texts; the ones here are those real tenants answered, as
//! public clients' issues quote them (email-oauth2-proxy #193 for the tenant's switch, Patch My
//! PC's guide for the mailbox's, mailR #107 for Basic refused, nodemailer #1617 for a policy's
//! criteria), each mapped to the layer its words name. A device that carries on after a refused
//! `AUTH` gets `530 5.7.57 Client not authenticated to send mail` to `MAIL FROM`, with the refusal
//! after `Error:`: the layer is in that text.

/// One layer that decides whether a client can send with SMTP AUTH as a mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Layer {
    /// The mailbox exists in Exchange Online.
    Mailbox,
    /// `SmtpClientAuthenticationDisabled`: the mailbox's, or the organisation's where the
    /// mailbox's is `$null`. Both clients.
    SmtpAuthSwitch,
    /// The user's authentication policy, else the organisation's default: `AllowBasicAuthSmtp`.
    /// Basic only.
    AuthenticationPolicy,
    /// Basic authentication for SMTP AUTH, off by default for existing tenants from the end of
    /// December 2026. Basic only.
    BasicAuthentication,
    /// Security defaults block legacy authentication. Basic only.
    SecurityDefaults,
    /// Conditional Access policies that cover the user and the client.
    ConditionalAccess,
    /// Legacy per-user MFA, enforced. Basic only.
    PerUserMfa,
    /// The directory user's sign-in is blocked (`accountEnabled` false). Both clients.
    SignIn,
}

/// What one layer does to one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Allows,
    Blocks,
    /// Could not be read (the words name the permission), or depends on what the tool cannot see.
    Unknown(String),
    /// The layer does not concern this client.
    NotApplicable,
}

impl State {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            State::Allows => "allows",
            State::Blocks => "blocks",
            State::Unknown(_) => "unknown",
            State::NotApplicable => "n/a",
        }
    }
}

/// Where the ways off Basic authentication are documented.
pub(super) const SMTP_AUTH_PAGE: &str =
    "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission";

impl Layer {
    pub(crate) const ALL: [Layer; 8] = [
        Layer::Mailbox,
        Layer::SmtpAuthSwitch,
        Layer::AuthenticationPolicy,
        Layer::BasicAuthentication,
        Layer::SecurityDefaults,
        Layer::ConditionalAccess,
        Layer::PerUserMfa,
        Layer::SignIn,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Layer::Mailbox => "mailbox",
            Layer::SmtpAuthSwitch => "smtp-auth-switch",
            Layer::AuthenticationPolicy => "authentication-policy",
            Layer::BasicAuthentication => "basic-authentication",
            Layer::SecurityDefaults => "security-defaults",
            Layer::ConditionalAccess => "conditional-access",
            Layer::PerUserMfa => "per-user-mfa",
            Layer::SignIn => "sign-in-blocked",
        }
    }

    /// The reply a device gets when this layer is the one that refuses it.
    pub(crate) fn reply(self) -> &'static str {
        match self {
            Layer::Mailbox => "535 5.7.3 Authentication unsuccessful",
            Layer::SmtpAuthSwitch => {
                "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox (or: for the Tenant)"
            }
            Layer::AuthenticationPolicy => "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
            Layer::BasicAuthentication => "550 5.7.30 Basic authentication is not supported for Client Submission.",
            Layer::SecurityDefaults => {
                "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator."
            }
            Layer::ConditionalAccess | Layer::PerUserMfa => {
                "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator."
            }
            Layer::SignIn => {
                "535 5.7.3 Authentication unsuccessful (the sign-in log says 50057: the user account is disabled)"
            }
        }
    }

    /// The way out of this layer's block: this tool's command (to be given the mailboxes), or the
    /// manual step; and the permission the tool's way needs.
    pub(crate) fn fix(self) -> (&'static str, &'static str) {
        match self {
            Layer::Mailbox => {
                ("manual: the device must sign in as a mailbox; give it a user or shared mailbox of its own", "")
            }
            Layer::SmtpAuthSwitch => (
                "remediate apply FILE --set smtp-auth=enabled",
                "Exchange.ManageAsApp and Exchange Recipient Administrator",
            ),
            Layer::AuthenticationPolicy => (
                "remediate apply FILE --profile smtp-auth-fix --basic-auth-policy NAME (a policy with AllowBasicAuthSmtp; it takes up to 24 hours to apply)",
                "Exchange.ManageAsApp and Exchange Recipient Administrator",
            ),
            Layer::BasicAuthentication => (
                "manual: turn Basic authentication for SMTP AUTH back on in the Exchange admin center while Microsoft allows it, or move the device to OAuth, High Volume Email, Azure Communication Services Email or a connector (see the SMTP AUTH page)",
                "",
            ),
            Layer::SecurityDefaults => {
                ("remediate apply FILE --profile smtp-auth-fix", "Policy.ReadWrite.SecurityDefaults")
            }
            Layer::ConditionalAccess => (
                "remediate apply FILE --profile smtp-auth-fix --ca-exclusion-group GROUP (a group the blocking policies already exclude); else exclude the mailbox in the Entra admin center: the tool never edits Conditional Access policies",
                "GroupMember.ReadWrite.All",
            ),
            Layer::PerUserMfa => {
                ("remediate apply FILE --profile smtp-auth-fix", "Policy.ReadWrite.AuthenticationMethod")
            }
            Layer::SignIn => (
                "manual: allow sign-in for the account in the Entra admin center (CIS advises against it for shared mailboxes), or send through a connector instead",
                "",
            ),
        }
    }

    /// Where Microsoft documents the layer.
    pub(crate) fn link(self) -> &'static str {
        match self {
            Layer::Mailbox | Layer::SmtpAuthSwitch => SMTP_AUTH_PAGE,
            Layer::AuthenticationPolicy => {
                "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/disable-basic-authentication-in-exchange-online"
            }
            Layer::BasicAuthentication => {
                "https://techcommunity.microsoft.com/blog/exchange/updated-exchange-online-smtp-auth-basic-authentication-deprecation-timeline/4489835"
            }
            Layer::SecurityDefaults => "https://learn.microsoft.com/entra/fundamentals/security-defaults",
            Layer::ConditionalAccess => {
                "https://learn.microsoft.com/entra/identity/conditional-access/policy-block-legacy-authentication"
            }
            Layer::PerUserMfa => "https://learn.microsoft.com/entra/identity/authentication/howto-mfa-userstates",
            Layer::SignIn => "https://learn.microsoft.com/microsoft-365/admin/email/about-shared-mailboxes",
        }
    }
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
