use super::*;
use crate::SimConfig;
use crate::exchange::{MAX_PAGE_SIZE, execute};
use crate::tenant::Population;

fn service(count: usize) -> Service {
    let config = SimConfig { population: Population::Generated { count }, ..SimConfig::default() };
    Service::new(config, "http://127.0.0.1:1".into())
}

fn call(cmdlet: &str, parameters: Value, skip: usize) -> ExchangeCall {
    let parameters = parameters.as_object().cloned().unwrap_or_default();
    ExchangeCall { cmdlet: cmdlet.into(), parameters, select: None, skip, page_size: MAX_PAGE_SIZE }
}

fn run(service: &Service, cmdlet: &str, parameters: Value) -> Reply {
    execute(service, &call(cmdlet, parameters, 0), "contoso.onmicrosoft.com")
}

/// Every entry of the listing with `parameters`, page after page, and the last page's warnings.
fn listing(service: &Service, parameters: Value) -> (Vec<Value>, Vec<Value>) {
    let (mut entries, mut skip) = (Vec::new(), 0);
    loop {
        let reply = execute(service, &call("Get-MailboxAuditBypassAssociation", parameters.clone(), skip), "t");
        let body = reply.body.unwrap();
        entries.extend(body["value"].as_array().unwrap().iter().cloned());
        let Some(next) = body["@odata.nextLink"].as_str() else {
            return (entries, body["@adminapi.warnings"].as_array().unwrap().clone());
        };
        skip = next.split("$skiptoken=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
    }
}

#[test]
fn the_listing_names_every_account_by_guid_and_system_objects_first() {
    let service = service(1500);
    let (all, warnings) = listing(&service, json!({"ResultSize": "Unlimited"}));
    assert_eq!(all.len(), SYSTEM.len() + 1500, "every user, mailbox or not, and the system objects");
    assert!(warnings.is_empty());
    assert!(all[0]["Name"].as_str().unwrap().starts_with("DiscoverySearchMailbox"));
    assert!(all.iter().all(|e| e.get("ExternalDirectoryObjectId").is_none()), "no directory id");
    let tenant = service.tenant();
    let user = &tenant.users[7];
    let listed = &all[SYSTEM.len() + 7];
    assert_eq!(listed["Guid"], exchange_guid(user.id).to_string());
    assert_eq!(listed["AuditBypassEnabled"], user.mailbox_properties.audit_bypass);
    let bypassed = tenant.users.iter().filter(|u| u.mailbox_properties.audit_bypass).count();
    assert!((3..=40).contains(&bypassed), "about 1% of a seeded tenant: {bypassed}");
    drop(tenant);

    let (cut, warnings) = listing(&service, json!({}));
    assert_eq!(cut.len(), 1000, "ResultSize is 1,000 unless given");
    assert_eq!(warnings.len(), 1, "and says there are more");
}

#[test]
fn set_takes_a_boolean_by_upn_or_guid_and_says_when_nothing_changed() {
    let service = service(20);
    let (upn, guid) = {
        let tenant = service.tenant();
        (tenant.users[3].upn.to_string(), exchange_guid(tenant.users[3].id).to_string())
    };
    let set = |identity: &str, value: Value| {
        run(&service, "Set-MailboxAuditBypassAssociation", json!({"Identity": identity, "AuditBypassEnabled": value}))
    };
    assert_eq!(set(&upn, json!("yes")).status, 400, "a System.Boolean");
    assert_eq!(run(&service, "Set-MailboxAuditBypassAssociation", json!({"Identity": upn})).status, 400);
    let missing = set("nobody@contoso.com", json!(true)).status;
    assert!(missing == 404 || missing == 500, "not found, in either of its forms: {missing}");
    assert_eq!(set(&upn, json!(true)).status, 200);
    let read = |identity: &str| {
        run(&service, "Get-MailboxAuditBypassAssociation", json!({"Identity": identity})).body.unwrap()["value"][0]
            ["AuditBypassEnabled"]
            .clone()
    };
    assert_eq!(read(&guid), true);
    let unchanged = set(&guid, json!(true)).body.unwrap();
    assert_eq!(unchanged["@adminapi.warnings"].as_array().unwrap().len(), 1, "no settings modified");
    assert_eq!(set(&upn, json!(false)).status, 200);
    assert_eq!(read(&upn), false);
    assert_eq!(service.tenant().snapshot()["users"][3]["auditBypassAssociation"]["AuditBypassEnabled"], false);
}
