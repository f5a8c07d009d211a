use super::*;

fn page_of(entries: &[(&str, serde_json::Value)]) -> MailboxIndex {
    let value: Vec<_> = entries
        .iter()
        .map(|(id, disabled)| json!({"ExternalDirectoryObjectId": id, "SmtpClientAuthenticationDisabled": disabled}))
        .collect();
    MailboxIndex::of_page(&json!({ "value": value }), false)
}

#[test]
fn the_index_finds_every_value_and_nothing_else() {
    let ids: Vec<String> = (0..1000).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut index = MailboxIndex::default();
    for chunk in ids.chunks(300).enumerate() {
        let (c, chunk) = chunk;
        let mut page = MailboxIndex::default();
        for (i, id) in chunk.iter().enumerate() {
            page.push(key_of(id).unwrap(), CODES[(c * 300 + i) % 3]);
        }
        index.append(page);
    }
    for sealed in [false, true] {
        if sealed {
            index.seal();
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(index.lookup(id), Some(Some(CODES[i % 3])), "{id}, sealed: {sealed}");
        }
        assert_eq!(index.lookup(&uuid::Uuid::new_v4().to_string()), Some(None), "not listed: no mailbox");
        assert_eq!(index.lookup("not-a-guid"), None, "not a directory id: ask Exchange");
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
    let mut index = MailboxIndex::default();
    index.append(MailboxIndex::of_page(&page, true));
    index.seal();
    assert_eq!(index.lookup(good), Some(Some(Value::Disabled)));
    assert_eq!(index.lookup(odd), None, "its value could not be read: ask Exchange");
    assert_eq!(index.lookup(absent), Some(None), "not listed: no mailbox");
    assert_eq!(index.addresses, ["a@contoso.com", "b@contoso.com"], "still a target of --all-mailboxes");
    index.append(MailboxIndex::of_page(
        &json!({"value": [{"PrimarySmtpAddress": "c@contoso.com", "SmtpClientAuthenticationDisabled": null}]}),
        true,
    ));
    assert_eq!(index.lookup(absent), None, "an entry without an id: a missing user may be that mailbox");
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
    let (pending, filler) = PendingIndex::filling();
    let (first, second, odd, absent) =
        (pending.lookup(FIRST), pending.lookup(SECOND), pending.lookup(ODD), pending.lookup(ABSENT));
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
    assert_eq!(poll_once(Box::pin(pending.lookup(FIRST)).as_mut()), Ok(Some(Some(Value::Enabled))));
}

#[test]
fn when_the_listing_fails_the_targets_not_yet_found_are_read_on_their_own() {
    let (pending, filler) = PendingIndex::filling();
    filler.add(page_of(&[(FIRST, json!(true))]));
    let mut absent = Box::pin(pending.lookup(ABSENT));
    assert!(poll_once(absent.as_mut()).is_err());
    filler.failed();
    assert_eq!(poll_once(absent.as_mut()), Ok(None));
    assert_eq!(
        poll_once(Box::pin(pending.lookup(FIRST)).as_mut()),
        Ok(Some(Some(Value::Disabled))),
        "what was read stands"
    );
    drop(filler);
    assert_eq!(poll_once(Box::pin(pending.lookup(SECOND)).as_mut()), Ok(None), "a listing that vanished says nothing");
}
