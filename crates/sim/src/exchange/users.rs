//! `Get-User` (one identity, or the whole tenant paged like Get-CASMailbox, with `ResultSize` and
//! the one `Filter` Microsoft's docs use for authentication policies) and
//! `Set-User -AuthenticationPolicy`.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{
    ExchangeCall, bad_request, exchange_guid, identity_of, not_found, ok, parameter, select, unknown_parameter,
};
use crate::Service;
use crate::reply::Reply;
use crate::stats::bump;
use crate::tenant::Tenant;

/// "The default value is 1000" (Get-User, ResultSize).
const DEFAULT_RESULT_SIZE: usize = 1000;
pub(super) const MORE_RESULTS: &str = "There are more results available than are currently displayed. To view them, increase the value for the ResultSize parameter.";

/// Which users a `-Filter` keeps.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum UserFilter {
    All,
    /// `AuthenticationPolicy -eq '<DN>'` (lower case), or `-eq $null` with `None`.
    PolicyIs(Option<String>),
    /// `AuthenticationPolicy -ne …`.
    PolicyIsNot(Option<String>),
}

/// The refusal Exchange gives a filter it cannot read ("Invalid filter syntax. For a description
/// of the filter parameter syntax see the command help. "…" at position N.", as PowerShell shows
/// it), in the admin API's `Ex…|Type|Message` detail.
fn bad_filter(text: &str, position: usize) -> Reply {
    let detail = format!(
        "Ex5E1C4A|System.Management.Automation.ParameterBindingException|Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": \"Invalid filter syntax. For a description of the filter parameter syntax see the command help.\n\"{text}\" at position {position}.\""
    );
    Reply::exchange_error(StatusCode::BAD_REQUEST, "BadRequest", &detail)
}

fn unknown_property(property: &str) -> Reply {
    let detail = format!(
        "Ex5E1C4A|System.Management.Automation.ParameterBindingException|Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": \"\"{property}\" is not a recognized filterable property. Valid property names are: AuthenticationPolicy.\""
    );
    Reply::exchange_error(StatusCode::BAD_REQUEST, "BadRequest", &detail)
}

/// Reads `AuthenticationPolicy -eq '<value>'` (filter-properties.md's example), `-ne`, and
/// `$null` for the value. Anything else is refused as Exchange refuses a filter it cannot parse;
/// other filterable properties are not served (the simulator is strict, not helpful).
pub(super) fn parse_filter(text: &str) -> Result<UserFilter, Reply> {
    let trimmed = text.trim();
    // Positions count from 1, at the start of the part that could not be read; every part is
    // the end of `trimmed` (an absent value is its empty end).
    let lead = text.len() - text.trim_start().len();
    let at = |part: &str| lead + trimmed.len().saturating_sub(part.len()) + 1;
    let property_end = trimmed.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(trimmed.len());
    let (property, rest) = trimmed.split_at(property_end);
    if property.is_empty() {
        return Err(bad_filter(text, at(trimmed)));
    }
    let rest = rest.trim_start();
    let (operator, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let negate = match operator.to_ascii_lowercase().as_str() {
        "-eq" => false,
        "-ne" => true,
        _ => return Err(bad_filter(text, at(rest))),
    };
    let value = value.trim_start();
    let wanted = if value.eq_ignore_ascii_case("$null") {
        None
    } else {
        match crate::graph::string_literal(value) {
            Some((literal, "")) => Some(literal.to_lowercase()),
            _ => return Err(bad_filter(text, at(value))),
        }
    };
    if !property.eq_ignore_ascii_case("AuthenticationPolicy") {
        return Err(unknown_property(property));
    }
    Ok(if negate { UserFilter::PolicyIsNot(wanted) } else { UserFilter::PolicyIs(wanted) })
}

impl UserFilter {
    fn keeps(&self, tenant: &Tenant, user: usize) -> bool {
        let policies = &tenant.auth_policies;
        let assigned = policies.assigned(user).map(|p| policies.distinguished_name(p).to_lowercase());
        match self {
            UserFilter::All => true,
            UserFilter::PolicyIs(wanted) => assigned == *wanted,
            UserFilter::PolicyIsNot(wanted) => assigned != *wanted,
        }
    }
}

/// One user as Get-User returns it. `AuthenticationPolicy` is the policy's DN: the property is
/// the link attribute msExchAuthPolicyLink (filter-properties.md), and the documented filter
/// compares it with a DN; null when the user has no policy of its own.
fn user_json(tenant: &Tenant, index: usize) -> Value {
    let user = &tenant.users[index];
    let name = user.upn.split('@').next().unwrap_or(&user.upn);
    let (recipient_type, details) = match (user.guest, user.has_mailbox(), user.licensed) {
        (true, _, _) => ("MailUser", "GuestMailUser"),
        (false, false, _) => ("User", "User"),
        (false, true, true) => ("UserMailbox", "UserMailbox"),
        (false, true, false) if user.upn.starts_with("room.") => ("UserMailbox", "RoomMailbox"),
        (false, true, false) if user.upn.starts_with("equipment.") => ("UserMailbox", "EquipmentMailbox"),
        (false, true, false) => ("UserMailbox", "SharedMailbox"),
    };
    json!({
        "Identity": name,
        "Name": name,
        "DisplayName": name,
        "UserPrincipalName": &*user.upn,
        "WindowsEmailAddress": if user.has_mailbox() || user.guest { user.mail() } else { "" },
        "ExternalDirectoryObjectId": user.id.to_string(),
        "Guid": exchange_guid(user.id).to_string(),
        "RecipientType": recipient_type,
        "RecipientTypeDetails": details,
        "AccountDisabled": !user.account_enabled,
        "AuthenticationPolicy": tenant.auth_policies.user_value(index),
    })
}

/// `-Identity` of Get-User and Set-User: UPN, an address, the directory id or the Exchange Guid.
fn find(tenant: &Tenant, identity: &str) -> Option<usize> {
    tenant.find_recipient(identity).or_else(|| {
        let guid = uuid::Uuid::parse_str(identity).ok()?;
        tenant.find_user(&exchange_guid(guid).to_string())
    })
}

/// `ResultSize`: "Unlimited" (no limit) or a number; 1000 when absent.
pub(super) fn result_size(parameters: &Map<String, Value>) -> Result<Option<usize>, Reply> {
    match parameter(parameters, "ResultSize") {
        None => Ok(Some(DEFAULT_RESULT_SIZE)),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("Unlimited") => Ok(None),
        Some(Value::String(text)) => text.parse().map(Some).map_err(|_| result_size_error(text)),
        Some(Value::Number(n)) => n.as_u64().map(|n| Some(n as usize)).ok_or_else(|| result_size_error(&n.to_string())),
        Some(other) => Err(result_size_error(&other.to_string())),
    }
}

fn result_size_error(text: &str) -> Reply {
    bad_request(&format!(
        "Cannot process argument transformation on parameter 'ResultSize'. Cannot convert value \"{text}\" to type \"Microsoft.Exchange.Data.Unlimited`1[System.UInt32]\"."
    ))
}

pub(super) fn get_user(
    service: &Service,
    tenant: &Tenant,
    call: &ExchangeCall,
    path_tenant: &str,
    context: &str,
) -> Reply {
    if let Some(reply) = unknown_parameter(&call.cmdlet, &call.parameters, &["Identity", "ResultSize", "Filter"]) {
        return reply;
    }
    if let Some(identity) = identity_of(&call.parameters) {
        if parameter(&call.parameters, "Filter").is_some() {
            return bad_request(
                "Parameter set cannot be resolved using the specified named parameters. One or more parameters issued cannot be used together or an insufficient number of parameters were provided.",
            );
        }
        return match find(tenant, identity) {
            Some(i) => ok(vec![select(user_json(tenant, i), call.select.as_deref())], vec![], context),
            None => not_found(identity),
        };
    }
    let filter = match parameter(&call.parameters, "Filter") {
        None => UserFilter::All,
        Some(Value::String(text)) => match parse_filter(text) {
            Ok(filter) => filter,
            Err(reply) => return reply,
        },
        Some(other) => return bad_filter(&other.to_string(), 1),
    };
    let limit = match result_size(&call.parameters) {
        Ok(limit) => limit,
        Err(reply) => return reply,
    };
    let kept = |i: &usize| filter.keeps(tenant, *i);
    // With a limit, the users already listed on earlier pages count towards it.
    let earlier = limit.map_or(0, |_| (0..call.skip.min(tenant.users.len())).filter(kept).count());
    let (mut page, mut next, mut truncated) = (Vec::new(), None, false);
    for index in (call.skip..tenant.users.len()).filter(kept) {
        if limit.is_some_and(|limit| earlier + page.len() >= limit) {
            truncated = true;
            break;
        }
        if page.len() == call.page_size {
            next = Some(index);
            break;
        }
        page.push(select(user_json(tenant, index), call.select.as_deref()));
    }
    let warnings = if truncated { vec![MORE_RESULTS.to_string()] } else { vec![] };
    let mut reply = ok(page, warnings, context);
    if let (Some(index), Some(body)) = (next, reply.body.as_mut()) {
        body["@odata.nextLink"] = super::next_link(service, call, path_tenant, index).into();
    }
    reply
}

/// `Set-User -Identity X -AuthenticationPolicy <Name | DN | GUID | $null>` ("To remove the policy
/// assignment for the user, use the value $null", Set-User).
pub(super) fn set_user(service: &Service, tenant: &mut Tenant, call: &ExchangeCall, context: &str) -> Reply {
    if let Some(reply) = unknown_parameter(&call.cmdlet, &call.parameters, &["Identity", "AuthenticationPolicy"]) {
        return reply;
    }
    let Some(identity) = identity_of(&call.parameters) else {
        return bad_request("Cannot bind argument to parameter 'Identity' because it is null.");
    };
    let wanted = match parameter(&call.parameters, "AuthenticationPolicy") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(name)) => match tenant.auth_policies.find(name) {
            Some(policy) => Some(Some(policy)),
            None => return not_found(name),
        },
        Some(other) => {
            return bad_request(&format!(
                "Cannot process argument transformation on parameter 'AuthenticationPolicy'. Cannot convert value \"{other}\" to type \"System.String\"."
            ));
        }
    };
    let Some(user) = find(tenant, identity) else {
        return not_found(identity);
    };
    service.count_write();
    tenant.users[user].writes += 1;
    let mut warnings = Vec::new();
    match wanted {
        Some(policy) if policy != tenant.auth_policies.assigned(user) => {
            let users = tenant.users.len();
            tenant.auth_policies.assign(user, policy, users);
        }
        _ => {
            bump(&service.stats.noop_writes);
            warnings.push(format!(
                "The command completed successfully but no settings of '{identity}' have been modified."
            ));
        }
    }
    ok(vec![], warnings, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> String {
        let reply = parse_filter(text).expect_err("refused");
        reply.body.map(|b| b["error"]["details"][0]["message"].to_string()).unwrap_or_default()
    }

    #[test]
    fn the_documented_filter_reads_and_everything_else_is_refused_without_panicking() {
        let dn = "CN=Block Basic Auth,CN=Auth Policies,CN=Configuration,CN=contoso.onmicrosoft.com";
        let wanted = Some(dn.to_lowercase());
        assert_eq!(parse_filter(&format!("AuthenticationPolicy -eq '{dn}'")).ok(), Some(UserFilter::PolicyIs(wanted)));
        assert_eq!(parse_filter("  authenticationpolicy -EQ $null ").ok(), Some(UserFilter::PolicyIs(None)));
        assert_eq!(parse_filter("AuthenticationPolicy -ne $null").ok(), Some(UserFilter::PolicyIsNot(None)));
        assert_eq!(
            parse_filter("AuthenticationPolicy -eq 'O''Brien policy'").ok(),
            Some(UserFilter::PolicyIs(Some("o'brien policy".into())))
        );
        assert!(
            refusal("AuthenticationPolicy -eq").contains("at position 25"),
            "{}",
            refusal("AuthenticationPolicy -eq")
        );
        assert!(refusal("AuthenticationPolicy").contains("at position 21"));
        assert!(refusal("AuthenticationPolicy -like 'x*'").contains("at position 22"));
        assert!(refusal(" AuthenticationPolicy -eq 'a' -or Name -eq 'b'").contains("Invalid filter syntax"));
        assert!(refusal("Department -eq 'Sales'").contains("is not a recognized filterable property"));
        for text in
            ["", "   ", "é -eq 'x'", "AuthenticationPolicy -eq 'é", "(AuthenticationPolicy -eq $null)", "-eq 'x'"]
        {
            assert!(parse_filter(text).is_err(), "{text:?}");
        }
    }
}
