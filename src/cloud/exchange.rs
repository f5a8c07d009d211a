//! The Exchange Online admin API's `InvokeCommand` endpoint. Microsoft does not support or
//! document it; the ExchangeOnlineManagement v3 module calls it, and so do we, because Exchange
//! has no other REST interface for SMTP AUTH. Parameters travel as JSON values, never as text
//! built by hand.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::paths::SEGMENT;
use super::{Api, Call};

/// Warned once per run that touches Exchange.
pub(crate) const UNSUPPORTED_NOTE: &str = "SMTP AUTH is read and changed through the Exchange Online admin API (InvokeCommand), the undocumented endpoint the ExchangeOnlineManagement module itself uses; Microsoft does not support calling it directly.";

/// One cmdlet call. `anchor` is the mailbox's UPN when there is one (routes the request to the
/// mailbox's server), else the tenant's system mailbox.
pub(crate) fn invoke(tenant_id: &str, cmdlet: &str, parameters: Map<String, Value>, anchor: Option<&str>) -> Call {
    let tenant = percent_encoding::utf8_percent_encode(tenant_id, SEGMENT);
    let anchor = match anchor {
        Some(upn) => format!("UPN:{upn}"),
        None => format!("APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{tenant_id}"),
    };
    Call {
        api: Api::Exchange,
        method: Method::POST,
        path: format!("adminapi/beta/{tenant}/InvokeCommand"),
        headers: vec![("X-CmdletName", cmdlet.to_string()), ("X-AnchorMailbox", anchor)],
        body: Some(json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}})),
        write: cmdlet.starts_with("Set-"),
        page: false,
        reports: false,
        timeout: None,
        sent: None,
        gate: None,
    }
}

/// The parameters that name one recipient to a cmdlet.
pub(crate) fn identity(identity: &str) -> Map<String, Value> {
    let mut parameters = Map::new();
    parameters.insert("Identity".into(), json!(identity));
    parameters
}

/// A UPN as the `X-AnchorMailbox` header carries it: only a plain ASCII one can travel there.
pub(crate) fn anchor(upn: &str) -> Option<&str> {
    upn.bytes().all(|b| b.is_ascii_graphic()).then_some(upn)
}
