//! `smtp-auth`: a mailbox's `SmtpClientAuthenticationDisabled`, through the Exchange admin API.
//! `null` follows the organisation's setting (inherit), `false` is on (enabled), `true` is off.

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use serde_json::{Map, json};

use super::{Reading, Value};
use crate::cloud::{Answer, CallError, CloudClient, exchange};

fn parameters(identity: &str) -> Map<String, serde_json::Value> {
    let mut parameters = Map::new();
    parameters.insert("Identity".into(), json!(identity));
    parameters
}

/// Only a plain ASCII UPN can travel in the `X-AnchorMailbox` header.
fn anchor(upn: &str) -> Option<&str> {
    upn.bytes().all(|b| b.is_ascii_graphic()).then_some(upn)
}

pub async fn read(client: &CloudClient, upn: &str) -> Result<Reading, CallError> {
    let mut call = exchange::invoke(&client.tenant_id, "Get-CASMailbox", parameters(upn), anchor(upn));
    call.path.push_str("?$select=Identity,PrimarySmtpAddress,SmtpClientAuthenticationDisabled");
    let answer = match client.send(&call).await {
        Ok(answer) => answer,
        Err(error) if error.is_not_found() => {
            return Ok(Reading { value: None, attempts: error.attempts(), ids: error.ids() });
        }
        Err(error) => return Err(error),
    };
    let mailbox = &answer.body["value"][0];
    let value = match mailbox.get("SmtpClientAuthenticationDisabled") {
        Some(serde_json::Value::Null) => Value::Inherit,
        Some(serde_json::Value::Bool(true)) => Value::Disabled,
        Some(serde_json::Value::Bool(false)) => Value::Enabled,
        _ => {
            return Err(super::unexpected(&answer, "SmtpClientAuthenticationDisabled"));
        }
    };
    Ok(Reading::of(Some(value), &answer))
}

pub async fn write(client: &CloudClient, upn: &str, value: Value) -> Result<Answer, CallError> {
    let mut parameters = parameters(upn);
    let disabled = match value {
        Value::Enabled => json!(false),
        Value::Disabled => json!(true),
        _ => serde_json::Value::Null,
    };
    parameters.insert("SmtpClientAuthenticationDisabled".into(), disabled);
    client.send(&exchange::invoke(&client.tenant_id, "Set-CASMailbox", parameters, anchor(upn))).await
}

/// The organisation's `SmtpClientAuthenticationDisabled` (Get-TransportConfig): what a mailbox
/// that inherits gets.
pub async fn organisation_disabled(client: &CloudClient) -> Result<bool, CallError> {
    let call = exchange::invoke(&client.tenant_id, "Get-TransportConfig", Map::new(), None);
    let answer = client.send(&call).await?;
    answer.body["value"][0]["SmtpClientAuthenticationDisabled"]
        .as_bool()
        .ok_or_else(|| super::unexpected(&answer, "SmtpClientAuthenticationDisabled"))
}

/// Every mailbox's SMTP AUTH value by directory object id, read in pages of 1,000: for many
/// targets, far fewer requests than one read each.
///
/// Eight bytes a mailbox: the low 64 bits of the object id (random GUIDs do not collide there)
/// with the value in the lowest two, in a sorted vector searched by halves. A million mailboxes
/// take 8 MB, where a hash map took over 30.
#[derive(Debug, Default)]
pub struct MailboxIndex {
    keys: Vec<u64>,
    /// Every mailbox's primary SMTP address, when asked for (`--all-mailboxes`).
    pub addresses: Vec<String>,
    /// Mailboxes whose id was readable but not their SMTP AUTH value: read one by one.
    unreadable_keys: Vec<u64>,
    /// Mailboxes the listing held without a usable directory object id. While there are any,
    /// a user missing from the index may still have a mailbox: Exchange is asked.
    anonymous: u64,
}

/// The bulk read, under way in the background so that the targets' Graph work need not wait for
/// it; every target's SMTP AUTH waits for the one read. `None` when it failed (targets are then
/// read one by one).
#[derive(Clone)]
pub struct PendingIndex(Shared<BoxFuture<'static, Option<Arc<MailboxIndex>>>>);

impl PendingIndex {
    pub fn ready(index: Arc<MailboxIndex>) -> PendingIndex {
        PendingIndex(futures_util::future::ready(Some(index)).boxed().shared())
    }

    pub fn spawn(read: impl Future<Output = Option<Arc<MailboxIndex>>> + Send + 'static) -> PendingIndex {
        let task = tokio::spawn(read);
        PendingIndex(async move { task.await.ok().flatten() }.boxed().shared())
    }

    pub async fn get(&self) -> Option<Arc<MailboxIndex>> {
        self.0.clone().await
    }
}

const VALUE_BITS: u64 = 0b11;
const CODES: [Value; 3] = [Value::Inherit, Value::Disabled, Value::Enabled];

fn key_of(user_id: &str) -> Option<u64> {
    uuid::Uuid::parse_str(user_id).ok().map(|id| id.as_u128() as u64 & !VALUE_BITS)
}

impl MailboxIndex {
    fn push(&mut self, key: u64, value: Value) {
        let code = CODES.iter().position(|c| *c == value).unwrap_or(0) as u64;
        self.keys.push(key | code);
    }

    /// Sorts the keys once every page is in.
    fn seal(&mut self) {
        self.keys.sort_unstable();
        self.keys.shrink_to_fit();
        self.unreadable_keys.sort_unstable();
    }

    /// The value for a user, or `None` when the user has no mailbox.
    pub fn get(&self, user_id: &str) -> Option<Value> {
        let key = key_of(user_id)?;
        let at = self.keys.partition_point(|k| k & !VALUE_BITS < key);
        let found = *self.keys.get(at).filter(|k| *k & !VALUE_BITS == key)?;
        CODES.get((found & VALUE_BITS) as usize).copied()
    }

    /// What the listing says of a user: `Some(Some(value))`, `Some(None)` for no mailbox, and
    /// `None` when it cannot say (the mailbox's entry could not be read, or some entry had no
    /// id): then the mailbox is read on its own.
    pub fn lookup(&self, user_id: &str) -> Option<Option<Value>> {
        let found = self.get(user_id);
        if found.is_some() {
            return Some(found);
        }
        let key = key_of(user_id)?;
        let unreadable = self.unreadable_keys.binary_search(&key).is_ok();
        (!unreadable && self.anonymous == 0).then_some(None)
    }

    /// Mailboxes of the listing it could not read, which are read one by one instead.
    pub fn unreadable(&self) -> u64 {
        self.unreadable_keys.len() as u64 + self.anonymous
    }

    /// Adds one page of the listing.
    fn add_page(&mut self, page: &serde_json::Value, with_addresses: bool) {
        for mailbox in page["value"].as_array().into_iter().flatten() {
            let key = mailbox["ExternalDirectoryObjectId"].as_str().and_then(key_of);
            let value = mailbox.get("SmtpClientAuthenticationDisabled").and_then(value_of);
            match (key, value) {
                (Some(key), Some(value)) => self.push(key, value),
                (Some(key), None) => self.unreadable_keys.push(key),
                (None, _) => self.anonymous += 1,
            }
            if let Some(address) = mailbox["PrimarySmtpAddress"].as_str().filter(|_| with_addresses) {
                self.addresses.push(address.to_string());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn value_of(disabled: &serde_json::Value) -> Option<Value> {
    match disabled {
        serde_json::Value::Null => Some(Value::Inherit),
        serde_json::Value::Bool(true) => Some(Value::Disabled),
        serde_json::Value::Bool(false) => Some(Value::Enabled),
        _ => None,
    }
}

pub async fn read_all(client: &CloudClient, with_addresses: bool) -> Result<MailboxIndex, CallError> {
    let mut parameters = Map::new();
    parameters.insert("ResultSize".into(), json!("Unlimited"));
    let mut call = exchange::invoke(&client.tenant_id, "Get-CASMailbox", parameters, None);
    let fields = if with_addresses { ",PrimarySmtpAddress" } else { "" };
    call.path.push_str(&format!("?$select=ExternalDirectoryObjectId,SmtpClientAuthenticationDisabled{fields}"));
    call.headers.push(("Prefer", "odata.maxpagesize=1000".into()));
    call.page = true;
    let mut index = MailboxIndex::default();
    loop {
        let answer = client.send(&call).await?;
        index.add_page(&answer.body, with_addresses);
        match client.next_page(crate::cloud::Api::Exchange, &answer)? {
            Some(next) => call.path = next,
            None => {
                index.seal();
                return Ok(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_finds_every_value_and_nothing_else() {
        let ids: Vec<String> = (0..1000).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        let mut index = MailboxIndex::default();
        for (i, id) in ids.iter().enumerate() {
            index.push(key_of(id).unwrap(), CODES[i % 3]);
        }
        index.seal();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(index.get(id), Some(CODES[i % 3]), "{id}");
        }
        assert_eq!(index.get(&uuid::Uuid::new_v4().to_string()), None);
        assert_eq!(index.get("not-a-guid"), None);
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
        index.add_page(&page, true);
        index.seal();
        assert_eq!(index.lookup(good), Some(Some(Value::Disabled)));
        assert_eq!(index.lookup(odd), None, "its value could not be read: ask Exchange");
        assert_eq!(index.lookup(absent), Some(None), "not listed: no mailbox");
        assert_eq!(index.addresses, ["a@contoso.com", "b@contoso.com"], "still a target of --all-mailboxes");
        index.add_page(
            &json!({"value": [{"PrimarySmtpAddress": "c@contoso.com", "SmtpClientAuthenticationDisabled": null}]}),
            true,
        );
        assert_eq!(index.lookup(absent), None, "an entry without an id: a missing user may be that mailbox");
        assert_eq!(index.unreadable(), 2);
    }
}
