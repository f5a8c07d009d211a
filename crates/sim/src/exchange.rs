//! The Exchange Online admin API (`/adminapi/beta/{tenant}/InvokeCommand`) as the simulated tenant
//! serves it: `Get-`/`Set-CASMailbox` (one identity or every mailbox, paged: `client_access.rs`),
//! `Get-`/`Set-Mailbox` (auditing and forwarding, paged the same way: `mailbox.rs`),
//! `Get-`/`Set-MailboxAuditBypassAssociation` (every account, system objects too: `audit_bypass.rs`),
//! `Get-`/`Set-TransportConfig`, and what decides Basic SMTP AUTH per user: `Get-OrganizationConfig`
//! (`DefaultAuthenticationPolicy`), `Get-AuthenticationPolicy`, `Get-User` and
//! `Set-User -AuthenticationPolicy`. The real endpoint is undocumented; the shapes follow what the
//! ExchangeOnlineManagement module and public clients send and receive.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::Service;
use super::reply::Reply;
use super::stats::bump;
use super::tenant::{Tenant, User};

mod audit_bypass;
mod client_access;
mod mailbox;
mod organization;
mod users;

pub use client_access::ClientAccess;
pub(crate) use mailbox::seed_mailbox_mix;
pub use mailbox::{MailboxProperties, RecipientTypeDetails};

pub(crate) const MAX_PAGE_SIZE: usize = 1000;

#[derive(Clone, Debug)]
pub(crate) struct ExchangeCall {
    pub cmdlet: String,
    pub parameters: Map<String, Value>,
    pub select: Option<Vec<String>>,
    /// Where a paged listing resumes (an index into the directory).
    pub skip: usize,
    pub page_size: usize,
}

fn bad_request(detail: &str) -> Reply {
    Reply::exchange_error(StatusCode::BAD_REQUEST, "BadRequest", detail)
}

/// Parses an InvokeCommand request: its query string (`$select`, `$skiptoken`), the `Prefer`
/// header and the JSON body.
pub(crate) fn parse(query: &str, headers: &HeaderMap, body: &[u8]) -> Result<ExchangeCall, Reply> {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return Err(bad_request(
            "The request body is not valid JSON: expected {\"CmdletInput\":{\"CmdletName\":…,\"Parameters\":{…}}}.",
        ));
    };
    let input = &body["CmdletInput"];
    let Some(cmdlet) = input["CmdletName"].as_str() else {
        return Err(bad_request("CmdletInput.CmdletName is required."));
    };
    let parameters = match &input["Parameters"] {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => return Err(bad_request("CmdletInput.Parameters must be an object.")),
    };
    let mut call =
        ExchangeCall { cmdlet: cmdlet.to_string(), parameters, select: None, skip: 0, page_size: MAX_PAGE_SIZE };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "$select" => call.select = Some(value.split(',').map(|s| s.trim().to_string()).collect()),
            "$skiptoken" => call.skip = value.parse().map_err(|_| bad_request("The $skiptoken is not valid."))?,
            _ => {}
        }
    }
    let prefer = headers.get("prefer").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if let Some(size) = prefer.split(',').find_map(|p| p.trim().strip_prefix("odata.maxpagesize=")) {
        call.page_size = size.parse::<usize>().unwrap_or(MAX_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    }
    Ok(call)
}

fn unknown_parameter(cmdlet: &str, parameters: &Map<String, Value>, known: &[&str]) -> Option<Reply> {
    let unknown = parameters.keys().find(|k| !known.iter().any(|n| n.eq_ignore_ascii_case(k)))?;
    Some(bad_request(&format!("A parameter cannot be found that matches parameter name '{unknown}' of {cmdlet}.")))
}

/// "No such mailbox" in the forms the service sends it: 404 `NotFound` with the exception in the
/// `Ex…|Type|Message` detail (real tenants), and, for identities whose hash is odd, 500
/// `InternalServerError` with the detail as a JSON object (public clients' fixtures). Either way
/// only the exception type says what happened.
fn not_found(identity: &str) -> Reply {
    const EXCEPTION: &str = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException";
    let text = format!(
        "The operation couldn't be performed because object '{identity}' couldn't be found on 'AM0PR01A001DC01.EURPR01A001.prod.outlook.com'."
    );
    let odd = identity.bytes().fold(0u32, |sum, b| sum.wrapping_add(u32::from(b))) % 2 == 1;
    if odd {
        let detail = json!({"Message": text, "TypeName": EXCEPTION}).to_string();
        Reply::exchange_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", &detail)
    } else {
        Reply::exchange_error(StatusCode::NOT_FOUND, "NotFound", &format!("Ex6F9304|{EXCEPTION}|{text}"))
    }
}

fn ok(value: Vec<Value>, warnings: Vec<String>, context: &str) -> Reply {
    Reply::json(
        StatusCode::OK,
        json!({
            "@odata.context": context,
            "adminapi.warnings@odata.type": "#Collection(String)",
            "@adminapi.warnings": warnings,
            "value": value,
        }),
    )
}

fn select(mut object: Value, fields: Option<&[String]>) -> Value {
    if let (Some(fields), Value::Object(map)) = (fields, &mut object) {
        map.retain(|key, _| fields.iter().any(|f| f.eq_ignore_ascii_case(key)));
    }
    object
}

/// A value for `SmtpClientAuthenticationDisabled`: `true`, `false` or `null`, nothing else.
fn smtp_value(parameters: &Map<String, Value>) -> Result<Option<Option<bool>>, Reply> {
    let found = parameters.iter().find(|(k, _)| k.eq_ignore_ascii_case("SmtpClientAuthenticationDisabled"));
    match found.map(|(_, v)| v) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Bool(b)) => Ok(Some(Some(*b))),
        Some(other) => Err(bad_request(&format!(
            "Cannot process argument transformation on parameter 'SmtpClientAuthenticationDisabled'. Cannot convert value \"{other}\" to type \"System.Nullable[bool]\"."
        ))),
    }
}

/// A parameter by its name in any letter case, as PowerShell binds them.
fn parameter<'a>(parameters: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    parameters.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn identity_of(parameters: &Map<String, Value>) -> Option<&str> {
    parameter(parameters, "Identity").and_then(Value::as_str)
}

/// PowerShell's refusal of a value other than `$true` or `$false` for a `System.Boolean`
/// parameter (its argument transformation, before the cmdlet runs).
fn not_boolean(name: &str, value: &Value) -> Reply {
    bad_request(&format!(
        "Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{value}\" to type \"System.Boolean\". Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0."
    ))
}

/// How a mailbox names itself in every Exchange answer: `Identity` and `Name` (the mailbox's
/// name, which Get-Mailbox and Get-CASMailbox show as its identity), its primary address, its
/// directory object's id and its Exchange object's `Guid`.
fn mailbox_identity(user: &User) -> Value {
    json!({
        "Identity": user.display_name(),
        "Name": user.display_name(),
        "PrimarySmtpAddress": user.mail(),
        "ExternalDirectoryObjectId": user.id.to_string(),
        "Guid": exchange_guid(user.id).to_string(),
    })
}

/// The Exchange object's own `Guid` (not the directory's id), fixed per user; the same Guid
/// whichever cmdlet shows the object (Get-User, Get-Mailbox, Get-MailboxAuditBypassAssociation).
/// Its own inverse, so a Guid gives back the directory id.
fn exchange_guid(id: uuid::Uuid) -> uuid::Uuid {
    uuid::Uuid::from_u128(id.as_u128() ^ 0x5eed_0000_0000_0000_0000_0000_e8c0_0001)
}

/// The `@odata.nextLink` of a listing that resumes at user `index`: the same `$select`, and the
/// index as the `$skiptoken`.
fn next_link(service: &Service, call: &ExchangeCall, tenant_in_path: &str, index: usize) -> String {
    let mut link = format!("{}/adminapi/beta/{tenant_in_path}/InvokeCommand?$skiptoken={index}", service.base_url());
    if let Some(fields) = &call.select {
        link.push_str(&format!("&$select={}", fields.join(",")));
    }
    link
}

/// How Get-CASMailbox and Get-Mailbox answer: the one mailbox `-Identity` names (if `keeps` keeps
/// it), or every mailbox `keeps` keeps, a page at a time (`Prefer: odata.maxpagesize`, at most
/// [`MAX_PAGE_SIZE`]) from the call's `$skiptoken` on, with an `@odata.nextLink` while more
/// remain; each as `render` writes it.
fn mailboxes(
    service: &Service,
    tenant: &Tenant,
    call: &ExchangeCall,
    tenant_in_path: &str,
    context: &str,
    keeps: impl Fn(&User) -> bool,
    render: impl Fn(&User) -> Value,
) -> Reply {
    if let Some(identity) = identity_of(&call.parameters) {
        return match tenant.find_mailbox(identity).filter(|&i| keeps(&tenant.users[i])) {
            Some(i) => ok(vec![select(render(&tenant.users[i]), call.select.as_deref())], vec![], context),
            None => not_found(identity),
        };
    }
    let mut page = Vec::new();
    let mut next = None;
    for (index, user) in tenant.users.iter().enumerate().skip(call.skip) {
        if !keeps(user) {
            continue;
        }
        if page.len() == call.page_size {
            next = Some(index);
            break;
        }
        page.push(select(render(user), call.select.as_deref()));
    }
    let mut reply = ok(page, vec![], context);
    if let (Some(index), Some(body)) = (next, reply.body.as_mut()) {
        body["@odata.nextLink"] = next_link(service, call, tenant_in_path, index).into();
    }
    reply
}

/// How every `Set-` cmdlet on one mailbox starts: no parameter it does not know, an `-Identity`,
/// the values `read` checks (before the mailbox is looked for, as PowerShell binds parameters
/// before the cmdlet runs), and the mailbox the identity names.
fn mailbox_to_set<'a, T>(
    tenant: &Tenant,
    call: &'a ExchangeCall,
    known: &[&str],
    read: impl FnOnce(&'a Map<String, Value>) -> Result<T, Reply>,
) -> Result<(usize, &'a str, T), Reply> {
    if let Some(reply) = unknown_parameter(&call.cmdlet, &call.parameters, known) {
        return Err(reply);
    }
    let Some(identity) = identity_of(&call.parameters) else {
        return Err(bad_request("Cannot bind argument to parameter 'Identity' because it is null."));
    };
    let given = read(&call.parameters)?;
    let index = tenant.find_mailbox(identity).ok_or_else(|| not_found(identity))?;
    Ok((index, identity, given))
}

/// How every `Set-` cmdlet on one mailbox ends: the write counted, for the service and the
/// mailbox, and Exchange's warning when it changed nothing.
fn mailbox_written(service: &Service, user: &mut User, identity: &str, changed: bool, context: &str) -> Reply {
    service.count_write();
    user.writes += 1;
    let mut warnings = Vec::new();
    if !changed {
        bump(&service.stats.noop_writes);
        warnings
            .push(format!("The command completed successfully but no settings of '{identity}' have been modified."));
    }
    ok(vec![], warnings, context)
}

/// Carries out a parsed call; `tenant` is the tenant named in the path.
pub(crate) fn execute(service: &Service, call: &ExchangeCall, tenant_in_path: &str) -> Reply {
    if service.denied("Exchange.ManageAsApp") {
        return Reply::exchange_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The role assigned to application isn't supported in this scenario. Grant Exchange.ManageAsApp and an Exchange administrator role.",
        );
    }
    let context = format!(
        "{}/adminapi/beta/{tenant_in_path}/$metadata#Collection(Exchange.GenericHashTable)",
        service.base_url()
    );
    let mut tenant = service.tenant();
    match call.cmdlet.as_str() {
        "Get-CASMailbox" => unknown_parameter(&call.cmdlet, &call.parameters, &["Identity", "ResultSize"])
            .unwrap_or_else(|| {
                mailboxes(service, &tenant, call, tenant_in_path, &context, User::has_mailbox, User::cas_mailbox_json)
            }),
        "Set-CASMailbox" => client_access::set_cas_mailbox(service, &mut tenant, call, &context),
        "Get-Mailbox" => match mailbox::kinds_wanted(call) {
            Ok(keeps) => mailboxes(service, &tenant, call, tenant_in_path, &context, keeps, User::mailbox_json),
            Err(reply) => reply,
        },
        "Set-Mailbox" => mailbox::set_mailbox(service, &mut tenant, call, &context),
        "Get-MailboxAuditBypassAssociation" => audit_bypass::get(service, &tenant, call, tenant_in_path, &context),
        "Set-MailboxAuditBypassAssociation" => audit_bypass::set(service, &mut tenant, call, &context),
        "Get-TransportConfig" => ok(
            vec![
                json!({"Identity": "Transport Settings", "SmtpClientAuthenticationDisabled": tenant.transport_smtp_auth_disabled}),
            ],
            vec![],
            &context,
        ),
        "Set-TransportConfig" => {
            if let Some(reply) =
                unknown_parameter(&call.cmdlet, &call.parameters, &["SmtpClientAuthenticationDisabled"])
            {
                return reply;
            }
            match smtp_value(&call.parameters) {
                Ok(Some(Some(value))) => {
                    service.count_write();
                    if tenant.transport_smtp_auth_disabled == value {
                        bump(&service.stats.noop_writes);
                    }
                    tenant.transport_smtp_auth_disabled = value;
                    ok(vec![], vec![], &context)
                }
                Ok(_) => bad_request("Set-TransportConfig needs SmtpClientAuthenticationDisabled as $true or $false."),
                Err(reply) => reply,
            }
        }
        "Get-OrganizationConfig" => organization::get_organization_config(service, &tenant, call, &context),
        "Get-AuthenticationPolicy" => organization::get_authentication_policy(&tenant, call, &context),
        "Get-User" => users::get_user(service, &tenant, call, tenant_in_path, &context),
        "Set-User" => users::set_user(service, &mut tenant, call, &context),
        other => bad_request(&format!(
            "The term '{other}' is not recognized as a name of a cmdlet, function, script file, or executable program."
        )),
    }
}
