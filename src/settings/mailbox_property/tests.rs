use super::*;

const POP: MailboxProperty = MailboxProperty { cmdlet: Cmdlet::CasMailbox, name: "PopEnabled", kind: Kind::Allows };
const EWS: MailboxProperty =
    MailboxProperty { cmdlet: Cmdlet::CasMailbox, name: "EwsEnabled", kind: Kind::AllowsOrInherits };
const SMTP: MailboxProperty = MailboxProperty {
    cmdlet: Cmdlet::CasMailbox,
    name: "SmtpClientAuthenticationDisabled",
    kind: Kind::ForbidsOrInherits,
};
const FORWARDING: MailboxProperty =
    MailboxProperty { cmdlet: Cmdlet::Mailbox, name: "ForwardingSmtpAddress", kind: Kind::Forwarding };

/// A listed mailbox with one property.
fn listed(property: MailboxProperty, value: serde_json::Value) -> serde_json::Value {
    json!({ property.name: value })
}

#[test]
fn each_kind_reads_and_writes_its_own_values() {
    assert_eq!(POP.decode(&listed(POP, json!(false))), Some(Value::Disabled));
    assert_eq!(POP.decode(&listed(POP, serde_json::Value::Null)), None, "a Boolean is never $null");
    assert_eq!(POP.decode(&json!({})), None, "not listed is not a value");
    assert_eq!(POP.encode(Value::Inherit), None);
    assert_eq!(EWS.decode(&listed(EWS, serde_json::Value::Null)), Some(Value::Inherit));
    assert_eq!(EWS.encode(Value::Enabled), Some(Map::from_iter([("EwsEnabled".into(), json!(true))])));
    assert_eq!(SMTP.decode(&listed(SMTP, json!(false))), Some(Value::Enabled), "not disabled is on");
    assert_eq!(SMTP.decode(&listed(SMTP, json!("false"))), None, "a string is not a Boolean");
}

#[test]
fn every_value_written_reads_back_as_itself() {
    for property in [POP, EWS, SMTP] {
        for value in [Value::Enabled, Value::Disabled, Value::Inherit] {
            if let Some(encoded) = property.encode(value) {
                assert_eq!(property.decode(&serde_json::Value::Object(encoded)), Some(value), "{property:?} {value}");
            }
        }
    }
}

#[test]
fn forwarding_is_kept_whole_and_written_back_exactly() {
    let none = json!({"ForwardingAddress": null, "ForwardingSmtpAddress": null, "DeliverToMailboxAndForward": false});
    assert_eq!(FORWARDING.decode(&none), Some(Value::Nothing));
    let external = json!({"ForwardingAddress": null, "ForwardingSmtpAddress": "smtp:a@fabrikam.com", "DeliverToMailboxAndForward": true});
    let found = FORWARDING.decode(&external).unwrap();
    assert!(found.name().contains("smtp:a@fabrikam.com"), "{found}");
    // Written back, every property gets what it had, the blank one included.
    assert_eq!(FORWARDING.encode(found).map(serde_json::Value::Object), Some(external));
    assert_eq!(FORWARDING.encode(Value::Nothing).map(serde_json::Value::Object), Some(none));
    assert_eq!(FORWARDING.encode(Value::Named(Name::new(r#"{"Identity":"x"}"#))), None, "only its own properties");
    assert_eq!(FORWARDING.decode(&json!({"ForwardingSmtpAddress": null})), None, "a listing without them all");
}

#[test]
fn the_kind_of_mailbox_says_shared_or_not_and_is_never_written() {
    let kind = MailboxProperty { cmdlet: Cmdlet::Mailbox, name: "RecipientTypeDetails", kind: Kind::SharedMailbox };
    assert_eq!(kind.decode(&listed(kind, json!("RoomMailbox"))), Some(Value::Member));
    assert_eq!(kind.decode(&listed(kind, json!("UserMailbox"))), Some(Value::NotMember));
    assert_eq!(kind.encode(Value::Member), None);
}
