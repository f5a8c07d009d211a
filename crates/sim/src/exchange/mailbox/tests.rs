use super::*;
use crate::SimConfig;
use crate::exchange::{MAX_PAGE_SIZE, execute};
use crate::tenant::Population;

fn service(count: usize) -> Service {
    let config = SimConfig { population: Population::Generated { count }, ..SimConfig::default() };
    Service::new(config, "http://127.0.0.1:1".into())
}

fn call(cmdlet: &str, parameters: Value) -> ExchangeCall {
    let parameters = parameters.as_object().cloned().unwrap_or_default();
    ExchangeCall { cmdlet: cmdlet.into(), parameters, select: None, skip: 0, page_size: MAX_PAGE_SIZE }
}

fn run(service: &Service, cmdlet: &str, parameters: Value) -> Reply {
    execute(service, &call(cmdlet, parameters), "contoso.onmicrosoft.com")
}

fn warnings(reply: &Reply) -> usize {
    reply.body.as_ref().map_or(0, |b| b["@adminapi.warnings"].as_array().map_or(0, Vec::len))
}

/// What Set-Mailbox reads of `parameters` (AuditEnabled, ForwardingSmtpAddress, ForwardingAddress),
/// or `None` where it refuses them.
type Given = (Option<bool>, Option<Option<Box<str>>>, Option<Option<String>>);

fn given(parameters: Value) -> Option<Given> {
    let parameters = parameters.as_object().cloned().unwrap_or_default();
    let changes = changes_given(&parameters).ok()?;
    let forwarding_address = changes.forwarding_address.map(|a| a.map(str::to_string));
    Some((changes.audit_enabled, changes.forwarding_smtp_address, forwarding_address))
}

#[test]
fn audit_enabled_refuses_null_and_the_forwarding_fields_take_it() {
    assert_eq!(given(json!({"auditenabled": null})), None, "AuditEnabled is a System.Boolean");
    assert_eq!(given(json!({"AuditEnabled": false})), Some((Some(false), None, None)));
    assert_eq!(given(json!({"DeliverToMailboxAndForward": "yes"})), None);
    assert_eq!(given(json!({"ForwardingSmtpAddress": "nobody"})), None, "no @");
    assert_eq!(given(json!({"ForwardingSmtpAddress": 5})), None);
    let cleared = given(json!({"ForwardingSmtpAddress": null, "ForwardingAddress": null}));
    assert_eq!(cleared, Some((None, Some(None), Some(None))), "null clears both forwarding fields");
    let bare = given(json!({"ForwardingSmtpAddress": "a@fabrikam.com"}));
    assert_eq!(bare, Some((None, Some(Some("smtp:a@fabrikam.com".into())), None)), "stored with its prefix");
}

#[test]
fn set_mailbox_forwards_and_clears_through_the_service() {
    let service = service(50);
    let upn = service.tenant().users.iter().find(|u| u.has_mailbox()).map(|u| u.upn.to_string()).unwrap();
    let set = json!({"Identity": upn, "ForwardingSmtpAddress": "SMTP:x@fabrikam.com", "AuditEnabled": false});
    assert_eq!(run(&service, "Set-Mailbox", set).status, 200);
    let listed = run(&service, "Get-Mailbox", json!({"Identity": upn})).body.unwrap()["value"][0].clone();
    assert_eq!(listed["ForwardingSmtpAddress"], "smtp:x@fabrikam.com");
    assert_eq!(listed["AuditEnabled"], false);
    let clear = json!({"Identity": upn, "ForwardingSmtpAddress": null, "AuditEnabled": null});
    assert_eq!(run(&service, "Set-Mailbox", clear).status, 400, "AuditEnabled null is refused");
    let clear = json!({"Identity": upn, "ForwardingSmtpAddress": null});
    assert_eq!(run(&service, "Set-Mailbox", clear).status, 200);
    let listed = run(&service, "Get-Mailbox", json!({"Identity": upn})).body.unwrap()["value"][0].clone();
    assert_eq!(listed["ForwardingSmtpAddress"], Value::Null);
    let ghost = json!({"Identity": upn, "ForwardingAddress": "nobody.here"});
    assert!([404, 500].contains(&run(&service, "Set-Mailbox", ghost).status.as_u16()), "an unknown recipient");
}

#[test]
fn writing_back_what_get_mailbox_listed_changes_nothing() {
    let service = service(2000);
    let listing = run(&service, "Get-Mailbox", json!({"ResultSize": "Unlimited"})).body.unwrap();
    let mailboxes = listing["value"].as_array().unwrap().clone();
    let internal = mailboxes.iter().find(|m| m["ForwardingAddress"].is_string()).expect("one forwards inside");
    let external = mailboxes.iter().find(|m| m["ForwardingSmtpAddress"].is_string()).expect("one forwards out");
    for mailbox in [internal, external] {
        let before = service.tenant().snapshot();
        let writes = service.stats.noop_writes.load(std::sync::atomic::Ordering::Relaxed);
        let mut parameters = json!({"Identity": mailbox["PrimarySmtpAddress"]});
        for name in ["AuditEnabled", "ForwardingSmtpAddress", "ForwardingAddress", "DeliverToMailboxAndForward"] {
            parameters[name] = mailbox[name].clone();
        }
        let reply = run(&service, "Set-Mailbox", parameters);
        assert_eq!((reply.status.as_u16(), warnings(&reply)), (200, 1), "{:?}", reply.body);
        assert_eq!(service.stats.noop_writes.load(std::sync::atomic::Ordering::Relaxed), writes + 1);
        let mut after = service.tenant().snapshot();
        let user =
            after["users"].as_array_mut().unwrap().iter_mut().find(|u| u["id"] == mailbox["ExternalDirectoryObjectId"]);
        user.map(|u| u["writes"] = json!(0)).unwrap();
        assert_eq!(before, after, "{mailbox}");
    }
    let name = internal["ForwardingAddress"].as_str().unwrap();
    assert!(mailboxes.iter().any(|m| m["Name"] == name), "the recipient is a mailbox of the tenant");
}

#[test]
fn the_seeded_mix_has_each_case_somewhere_among_2000_users() {
    let tenant = Tenant::build(&Population::Generated { count: 2000 }, 7);
    let mailboxes: Vec<&User> = tenant.users.iter().filter(|u| u.has_mailbox()).collect();
    let properties =
        |test: &dyn Fn(&MailboxProperties) -> bool| mailboxes.iter().filter(|u| test(&u.mailbox_properties)).count();
    assert!(properties(&|p| !p.audit_enabled) > 20, "about 4% without auditing");
    assert!(properties(&|p| p.forwarding_smtp_address.is_some()) > 10, "about 2% forwarding out");
    assert!(properties(&|p| p.forwarding_address.is_some()) > 3, "about 1% forwarding inside");
    assert!(properties(&|p| p.deliver_to_mailbox_and_forward) > 3, "some keep a copy");
    let plain =
        properties(&|p| p.audit_enabled && p.forwarding_smtp_address.is_none() && p.forwarding_address.is_none());
    assert!(plain > mailboxes.len() * 9 / 10, "most are plain: {plain}");
    for kind in
        [RecipientTypeDetails::SharedMailbox, RecipientTypeDetails::RoomMailbox, RecipientTypeDetails::EquipmentMailbox]
    {
        let of_kind = mailboxes.iter().filter(|u| u.mailbox_properties.recipient_type == kind);
        assert!(of_kind.clone().all(|u| u.upn.starts_with(&kind.as_str().to_lowercase().replace("mailbox", "."))));
        let enabled = of_kind.clone().filter(|u| u.account_enabled).count();
        let count = of_kind.count();
        assert!(count > 0);
        let expected = if kind == RecipientTypeDetails::SharedMailbox { count.div_ceil(3) } else { 0 };
        assert_eq!(enabled, expected, "{kind:?}: {enabled} of {count} may sign in");
    }
    assert!(properties(&|p| p.forwarding_smtp_address.is_some() && p.forwarding_address.is_some()) == 0);
}

#[test]
fn get_mailbox_filters_by_kind_and_refuses_what_it_does_not_know() {
    let service = service(500);
    let listing = run(&service, "Get-Mailbox", json!({"RecipientTypeDetails": "roommailbox, EquipmentMailbox"}));
    let kinds: Vec<Value> =
        listing.body.unwrap()["value"].as_array().unwrap().iter().map(|m| m["RecipientTypeDetails"].clone()).collect();
    assert!(!kinds.is_empty() && kinds.iter().all(|k| k == "RoomMailbox" || k == "EquipmentMailbox"), "{kinds:?}");
    assert_eq!(run(&service, "Get-Mailbox", json!({"RecipientTypeDetails": "Mailbox"})).status, 400);
    assert_eq!(run(&service, "Get-Mailbox", json!({"Filter": "x"})).status, 400);
}
