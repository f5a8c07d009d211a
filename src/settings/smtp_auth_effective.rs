//! `smtp-auth-effective`: per target, read only, whether the device can send with SMTP AUTH once
//! every layer is counted (see [`crate::diagnosis`]); the SMTP AUTH fix is done only when it can.
//! A verdict, not a setting one writes: the engine's layers work it out from the others.

use super::spec::{Advice, Scope, Spec};
use crate::cloud::Api;

pub(crate) const SPEC: Spec = Spec {
    name: "smtp-auth-effective",
    scope: Scope::Verdict,
    api: Api::Graph,
    document: "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission",
    advice: Advice {
        read_only: "grant the app Policy.Read.All, GroupMember.Read.All and RoleManagement.Read.Directory (Microsoft Graph) and the Global Reader role, so every layer can be read",
        changing: "grant the app Policy.Read.All, GroupMember.Read.All and RoleManagement.Read.Directory (Microsoft Graph) and the Global Reader role, so every layer can be read",
    },
    ..Spec::PLAIN
};
