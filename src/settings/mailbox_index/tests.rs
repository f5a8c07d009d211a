use super::*;

const SMTP: [Setting; 1] = [Setting::SmtpAuth];
const CAS: Cmdlet = Cmdlet::CasMailbox;

fn page_of(entries: &[(&str, serde_json::Value)]) -> MailboxIndex {
    let value: Vec<_> = entries
        .iter()
        .map(|(id, disabled)| json!({"ExternalDirectoryObjectId": id, "SmtpClientAuthenticationDisabled": disabled}))
        .collect();
    MailboxIndex::of_page(&json!({ "value": value }), CAS, &SMTP, true, false)
}

#[test]
fn the_index_finds_every_value_and_nothing_else() {
    let ids: Vec<String> = (0..1000).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let listed = [Setting::SmtpAuth, Setting::Pop];
    let mut index = MailboxIndex::new(&listed);
    let smtp = [json!(null), json!(true), json!(false)];
    for chunk in ids.chunks(300).enumerate() {
        let (c, chunk) = chunk;
        let entries = chunk.iter().enumerate().map(|(i, id)| {
            let n = c * 300 + i;
            json!({"ExternalDirectoryObjectId": id, "SmtpClientAuthenticationDisabled": smtp[n % 3], "PopEnabled": n % 2 == 0})
        });
        index.append(MailboxIndex::of_page(&json!({"value": entries.collect::<Vec<_>>()}), CAS, &listed, true, false));
    }
    for sealed in [false, true] {
        if sealed {
            index.seal();
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(index.lookup(id, Setting::SmtpAuth), Some(Some(CODES[i % 3])), "{id}, sealed: {sealed}");
            let pop = if i % 2 == 0 { Value::Enabled } else { Value::Disabled };
            assert_eq!(index.lookup(id, Setting::Pop), Some(Some(pop)), "{id}, sealed: {sealed}");
        }
        let absent = uuid::Uuid::new_v4().to_string();
        assert_eq!(index.lookup(&absent, Setting::Pop), Some(None), "not listed: no mailbox");
        assert!(index.lacks_mailbox(&absent));
        assert_eq!(index.lookup("not-a-guid", Setting::SmtpAuth), None, "not a directory id: ask Exchange");
        assert_eq!(index.lookup(&ids[0], Setting::PerUserMfa), None, "not listed: ask its own way");
    }
    assert_eq!(index.len(), 1000);
}

#[test]
fn what_the_listing_cannot_read_is_read_one_by_one_not_taken_for_no_mailbox() {
    let (good, odd, absent) = (
        "11111111-1111-1111-1111-111111111111",
        "22222222-2222-2222-2222-222222222222",
        "33333333-3333-3333-3333-333333333333",
    );
    let page = json!({"value": [
        {"ExternalDirectoryObjectId": good, "SmtpClientAuthenticationDisabled": true, "PrimarySmtpAddress": "a@contoso.com"},
        {"ExternalDirectoryObjectId": odd, "SmtpClientAuthenticationDisabled": "True", "PrimarySmtpAddress": "b@contoso.com"},
    ]});
    let mut index = MailboxIndex::new(&SMTP);
    index.append(MailboxIndex::of_page(&page, CAS, &SMTP, true, true));
    index.seal();
    assert_eq!(index.lookup(good, Setting::SmtpAuth), Some(Some(Value::Disabled)));
    assert_eq!(index.lookup(odd, Setting::SmtpAuth), None, "its value could not be read: ask Exchange");
    assert!(!index.lacks_mailbox(odd), "it has a mailbox all the same");
    assert_eq!(index.lookup(absent, Setting::SmtpAuth), Some(None), "not listed: no mailbox");
    assert_eq!(index.addresses, ["a@contoso.com", "b@contoso.com"], "still a target of --all-mailboxes");
    index.append(MailboxIndex::of_page(
        &json!({"value": [{"PrimarySmtpAddress": "c@contoso.com", "SmtpClientAuthenticationDisabled": null}]}),
        CAS,
        &SMTP,
        true,
        true,
    ));
    assert_eq!(
        index.lookup(absent, Setting::SmtpAuth),
        None,
        "an entry without an id: a missing user may be that mailbox"
    );
    assert_eq!(index.unreadable(), 2);
}

const FIRST: &str = "11111111-1111-1111-1111-111111111111";
const SECOND: &str = "22222222-2222-2222-2222-222222222222";
const ODD: &str = "44444444-4444-4444-4444-444444444444";
const ABSENT: &str = "33333333-3333-3333-3333-333333333333";

/// Polls a lookup once: its answer, or `Err` while it still waits.
fn poll_once<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> Result<F::Output, ()> {
    let waker = futures_util::task::noop_waker();
    match future.poll(&mut std::task::Context::from_waker(&waker)) {
        std::task::Poll::Ready(answer) => Ok(answer),
        std::task::Poll::Pending => Err(()),
    }
}

#[test]
fn a_target_waits_only_for_the_page_that_holds_its_mailbox() {
    let (pending, filler) = PendingIndex::filling(&SMTP);
    let lookup = |id| pending.lookup(id, Setting::SmtpAuth);
    let (first, second, odd, absent) = (lookup(FIRST), lookup(SECOND), lookup(ODD), lookup(ABSENT));
    let (mut first, mut second, mut odd, mut absent) =
        (Box::pin(first), Box::pin(second), Box::pin(odd), Box::pin(absent));
    assert!(poll_once(first.as_mut()).is_err(), "nothing is listed yet");
    filler.add(page_of(&[(FIRST, json!(false)), (ODD, json!("False"))]));
    assert_eq!(poll_once(first.as_mut()), Ok(Some(Some(Value::Enabled))), "its page is in");
    assert_eq!(poll_once(odd.as_mut()), Ok(None), "listed but unreadable: read on its own at once");
    assert!(poll_once(second.as_mut()).is_err(), "its page is not in yet");
    assert!(poll_once(absent.as_mut()).is_err());
    filler.add(page_of(&[(SECOND, json!(null))]));
    assert_eq!(poll_once(second.as_mut()), Ok(Some(Some(Value::Inherit))));
    assert!(poll_once(absent.as_mut()).is_err(), "a mailbox may still be on a later page");
    drop(filler.seal());
    assert_eq!(poll_once(absent.as_mut()), Ok(Some(None)), "the whole listing lacks it: no mailbox");
    assert_eq!(poll_once(Box::pin(lookup(FIRST)).as_mut()), Ok(Some(Some(Value::Enabled))));
}

#[test]
fn when_the_listing_fails_the_targets_not_yet_found_are_read_on_their_own() {
    let (pending, filler) = PendingIndex::filling(&SMTP);
    let lookup = |id| pending.lookup(id, Setting::SmtpAuth);
    filler.add(page_of(&[(FIRST, json!(true))]));
    let mut absent = Box::pin(lookup(ABSENT));
    assert!(poll_once(absent.as_mut()).is_err());
    filler.failed();
    assert_eq!(poll_once(absent.as_mut()), Ok(None));
    assert_eq!(poll_once(Box::pin(lookup(FIRST)).as_mut()), Ok(Some(Some(Value::Disabled))), "what was read stands");
    drop(filler);
    assert_eq!(poll_once(Box::pin(lookup(SECOND)).as_mut()), Ok(None), "a listing that vanished says nothing");
}

#[test]
fn two_listings_keep_their_values_apart_and_forwarding_whole() {
    let wanted = [Setting::Pop, Setting::Forwarding, Setting::SharedSignIn];
    let mut index = MailboxIndex::new(&wanted);
    let cas = json!({"value": [
        {"ExternalDirectoryObjectId": FIRST, "PopEnabled": false, "PrimarySmtpAddress": "a@contoso.com"},
        {"ExternalDirectoryObjectId": SECOND, "PopEnabled": true, "PrimarySmtpAddress": "b@contoso.com"},
    ]});
    let blank = json!(null);
    let mailbox = json!({"value": [
        {"ExternalDirectoryObjectId": FIRST, "RecipientTypeDetails": "SharedMailbox", "ForwardingAddress": blank,
         "ForwardingSmtpAddress": "smtp:x@fabrikam.com", "DeliverToMailboxAndForward": false},
        {"ExternalDirectoryObjectId": SECOND, "RecipientTypeDetails": "UserMailbox", "ForwardingAddress": blank,
         "ForwardingSmtpAddress": blank, "DeliverToMailboxAndForward": false},
    ]});
    index.append(MailboxIndex::of_page(&cas, Cmdlet::CasMailbox, &wanted, true, true));
    index.append(MailboxIndex::of_page(&mailbox, Cmdlet::Mailbox, &wanted, false, true));
    index.seal();
    assert_eq!(index.lookup(FIRST, Setting::Pop), Some(Some(Value::Disabled)));
    assert_eq!(index.lookup(SECOND, Setting::Pop), Some(Some(Value::Enabled)));
    assert_eq!(index.lookup(FIRST, Setting::SharedSignIn), Some(Some(Value::Member)));
    assert_eq!(index.lookup(SECOND, Setting::SharedSignIn), Some(Some(Value::NotMember)));
    assert_eq!(index.lookup(SECOND, Setting::Forwarding), Some(Some(Value::Nothing)));
    let forwards = index.lookup(FIRST, Setting::Forwarding).flatten().map(|v| v.name().to_string());
    assert_eq!(forwards.as_deref(), Some(r#"{"ForwardingSmtpAddress":"smtp:x@fabrikam.com"}"#));
    assert_eq!((index.len(), index.addresses.len(), index.unreadable()), (2, 2, 0), "each mailbox once");
    assert!(!index.lacks_mailbox(FIRST) && index.lacks_mailbox(ABSENT));
}

/// A page of `Get-Mailbox` entries (directory id, Guid) for the audit bypass join.
fn mailbox_page(entries: &[(&str, Option<&str>)], wanted: &[Setting]) -> MailboxIndex {
    let value: Vec<_> = entries
        .iter()
        .map(|(id, guid)| json!({"ExternalDirectoryObjectId": id, "Guid": guid, "AuditEnabled": true}))
        .collect();
    MailboxIndex::of_page(&json!({ "value": value }), Cmdlet::Mailbox, wanted, true, false)
}

/// A page of `Get-MailboxAuditBypassAssociation` entries (Guid, AuditBypassEnabled): no directory id.
fn bypass_page(entries: &[(&str, serde_json::Value)], wanted: &[Setting]) -> MailboxIndex {
    let value: Vec<_> = entries
        .iter()
        .map(|(guid, bypass)| json!({"Guid": guid, "Name": "reception", "AuditBypassEnabled": bypass}))
        .collect();
    MailboxIndex::of_page(&json!({ "value": value }), Cmdlet::AuditBypass, wanted, false, false)
}

#[test]
fn audit_bypass_entries_meet_their_mailbox_by_guid_in_either_order() {
    let wanted = [Setting::Audit, Setting::AuditBypass];
    assert_eq!(cmdlets(&wanted), [Cmdlet::Mailbox, Cmdlet::AuditBypass]);
    assert_eq!(cmdlets(&[Setting::AuditBypass]), [Cmdlet::Mailbox, Cmdlet::AuditBypass], "Get-Mailbox names them");
    let (g1, g2, g3, system) = (
        "aaaaaaaa-0000-0000-0000-000000000001",
        "aaaaaaaa-0000-0000-0000-000000000002",
        "aaaaaaaa-0000-0000-0000-000000000003",
        "aaaaaaaa-0000-0000-0000-0000000000ff",
    );
    let (pending, filler) = PendingIndex::filling(&wanted);
    let lookup = |id| pending.lookup(id, Setting::AuditBypass);
    let (mut first, mut second) = (Box::pin(lookup(FIRST)), Box::pin(lookup(SECOND)));
    // The bypass listing's first page comes before the mailbox it names, then the other way round.
    filler.add(bypass_page(&[(system, json!(true)), (g1, json!(true))], &wanted));
    assert!(poll_once(first.as_mut()).is_err(), "its mailbox is not listed yet");
    filler.add(mailbox_page(&[(FIRST, Some(g1)), (SECOND, Some(g2)), (ODD, Some(g3)), (ABSENT, None)], &wanted));
    assert_eq!(poll_once(first.as_mut()), Ok(Some(Some(Value::Enabled))), "met: bypassed");
    assert!(poll_once(second.as_mut()).is_err(), "its bypass entry is not listed yet");
    filler.add(bypass_page(&[(g2, json!(false)), (g3, json!("True"))], &wanted));
    assert_eq!(poll_once(second.as_mut()), Ok(Some(Some(Value::Disabled))));
    assert_eq!(poll_once(Box::pin(lookup(ODD)).as_mut()), Ok(None), "unreadable: asked on its own");
    assert_eq!(
        poll_once(Box::pin(pending.lookup(FIRST, Setting::Audit)).as_mut()),
        Ok(Some(Some(Value::Enabled))),
        "Get-Mailbox's own values stand beside the join"
    );
    let index = filler.seal();
    assert_eq!(index.lookup(ABSENT, Setting::AuditBypass), None, "no Guid, no entry: asked on its own");
    let stranger = uuid::Uuid::new_v4().to_string();
    assert_eq!(index.lookup(&stranger, Setting::AuditBypass), None, "an account of no mailbox: asked on its own");
    assert_eq!(index.lookup(&stranger, Setting::Audit), Some(None), "but Get-Mailbox's settings: no mailbox");
    assert_eq!((index.len(), index.unreadable()), (4, 2), "ODD's value and ABSENT's Guid");
    assert!(index.join.keys.is_empty() && index.join.codes.is_empty(), "the strays are let go");
}
