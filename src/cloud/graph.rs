//! Microsoft Graph: the request shapes, and finding the directory user behind a target address.

use reqwest::Method;
use serde_json::Value;

use super::paths::{odata_string, query_pair, user};
use super::{Api, Call, CallError, CloudClient};

/// The fields a lookup asks for: `$select` makes a users GET one resource unit cheaper.
/// (No `assignedLicenses`: a licence says nothing of a mailbox; Exchange decides.)
const USER_FIELDS: &str = "id,userPrincipalName,mail,userType,accountEnabled";

pub(crate) fn get(path: String) -> Call {
    request(Method::GET, path, None)
}

pub(crate) fn patch(path: String, body: Value) -> Call {
    request(Method::PATCH, path, Some(body))
}

/// A POST that changes something (adding a group member); a POST that only reads (an action such
/// as `checkMemberGroups`) is a [`request`] with `write` left false.
pub(crate) fn post(path: String, body: Value) -> Call {
    request(Method::POST, path, Some(body))
}

pub(crate) fn delete(path: String) -> Call {
    request(Method::DELETE, path, None)
}

/// A Graph call; every method but GET writes.
pub(crate) fn request(method: Method, path: String, body: Option<Value>) -> Call {
    Call {
        api: Api::Graph,
        write: method != Method::GET,
        method,
        path,
        headers: Vec::new(),
        body,
        page: false,
        reports: false,
        timeout: None,
        sent: None,
        gate: None,
    }
}

/// A directory user, as far as remediation cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DirectoryUser {
    pub id: String,
    pub upn: String,
    pub mail: Option<String>,
    pub guest: bool,
    pub account_enabled: bool,
}

impl DirectoryUser {
    fn from_json(value: &Value) -> Option<DirectoryUser> {
        Some(DirectoryUser {
            id: value["id"].as_str()?.to_string(),
            upn: value["userPrincipalName"].as_str()?.to_string(),
            mail: value["mail"].as_str().map(str::to_string),
            guest: value["userType"].as_str() == Some("Guest"),
            account_enabled: value["accountEnabled"].as_bool().unwrap_or(true),
        })
    }
}

/// What a lookup found.
pub(crate) struct Lookup {
    pub user: Option<DirectoryUser>,
}

impl CloudClient {
    /// Every member user of the tenant, in pages of 999 (`userType eq 'Member'` is a default
    /// filter; the listing costs one resource unit a page with `$select`).
    pub(crate) async fn member_users(&self) -> Result<Vec<DirectoryUser>, CallError> {
        let filter = query_pair("$filter", "userType eq 'Member'");
        let call = get(format!("v1.0/users?{filter}&$select={USER_FIELDS}&$top=999"));
        let mut members = Vec::new();
        self.pages(call, |answer| {
            members.extend(answer.body["value"].as_array().into_iter().flatten().filter_map(DirectoryUser::from_json));
        })
        .await?;
        Ok(members)
    }

    /// Finds the user behind an address: by UPN first, then by `mail`, then by any proxy address.
    pub(crate) async fn find_user(&self, identity: &str) -> Result<Lookup, CallError> {
        let by_upn = get(format!("v1.0/{}?$select={USER_FIELDS}", user(identity)));
        match self.send(&by_upn).await {
            Ok(answer) => return Ok(found(&answer.body)),
            Err(error) if error.is_not_found() => {}
            Err(error) => return Err(error),
        }
        let by_mail = format!("mail eq {}", odata_string(identity));
        let answer =
            self.send(&get(format!("v1.0/users?{}&$select={USER_FIELDS}", query_pair("$filter", &by_mail)))).await?;
        if let Some(first) = answer.body["value"].get(0) {
            return Ok(found(first));
        }
        // `proxyAddresses/any(x:x eq …)` is a default filter on users (the user resource lists `eq`
        // among proxyAddresses' default filters; only the advanced operators need
        // `ConsistencyLevel: eventual` and `$count`, "Advanced query capabilities on Microsoft
        // Entra ID objects"): asking for the eventually consistent index would only make a user
        // created a moment ago invisible.
        let by_proxy = format!("proxyAddresses/any(x:x eq {})", odata_string(&format!("smtp:{identity}")));
        let call = get(format!("v1.0/users?{}&$select={USER_FIELDS}", query_pair("$filter", &by_proxy)));
        let answer = self.send(&call).await?;
        Ok(Lookup { user: answer.body["value"].get(0).and_then(DirectoryUser::from_json) })
    }
}

fn found(value: &Value) -> Lookup {
    Lookup { user: DirectoryUser::from_json(value) }
}
