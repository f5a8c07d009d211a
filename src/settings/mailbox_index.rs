//! Every mailbox's listed settings at once: the tenant-wide `Get-CASMailbox` and `Get-Mailbox`
//! listings of the properties the run wants ([`super::mailbox_property`]), each read in pages of
//! 1,000, for runs where that costs far fewer requests than a read per target. The listing fills the index page by page
//! while the run goes on, and a target waits only for the page that holds its mailbox (or, for a
//! mailbox the listing never names, for the end of the listing): the service's budget is not left
//! idle for the seconds a large tenant's listing takes.
//!
//! Audit bypass is listed by `Get-MailboxAuditBypassAssociation`, whose entries name an account by
//! its Exchange `Guid` and carry no directory id: when it is wanted, Get-Mailbox lists each
//! mailbox's `Guid` too, and an entry of either listing waits for its partner in the other (they
//! are read side by side, in no common order) before it joins the index under the directory id.

use serde_json::{Map, json};

mod pending;

pub(crate) use pending::PendingIndex;

use super::mailbox_property::{Cmdlet, MailboxProperty};
use super::spec::Access;
use super::{Setting, Value};
use crate::cloud::{CallError, CloudClient, exchange};

/// The listed values of every mailbox listed so far, by directory object id.
///
/// Sixteen bytes a mailbox and listing: the low 64 bits of the object id but the two the cmdlet
/// takes (60 of them random in a GUID: they do not collide) and the listing's cmdlet ([`key_of`]) above three bits for each setting of the listing
/// ([`slot`]), in sorted runs (one a page while the listings are read, one once they are sealed)
/// searched by halves. A million mailboxes take 16 MB a listing, where a hash map of them took
/// over 30. The few values that are not one of [`CODES`] (where a mailbox forwards to) are kept
/// beside them.
#[derive(Debug, Default)]
pub(crate) struct MailboxIndex {
    entries: Vec<u128>,
    /// Where each sorted run of `entries` starts: one a page until the index is sealed.
    runs: Vec<usize>,
    /// The settings the listing was asked for; the others are read one by one.
    wanted: Vec<Setting>,
    /// Every mailbox's primary SMTP address, when asked for (`--all-mailboxes`).
    pub addresses: Vec<String>,
    /// The values of [`NAMED`] slots, by key and slot.
    named: std::collections::HashMap<(u64, u32), Value>,
    /// Mailboxes of the first listing: each mailbox once, however many listings there are.
    mailboxes: usize,
    /// Mailboxes listed with a value the index could not read: those values are read one by one.
    unreadable: u64,
    /// Mailboxes the listing held without a usable directory object id. While there are any,
    /// a user missing from the index may still have a mailbox: Exchange is asked.
    anonymous: u64,
    /// The audit bypass join ([`Join`]).
    join: Join,
    /// Listings other than the first that the service refused, and why: their settings are read
    /// one by one (audit bypass needs a role the others do not).
    pub lost: Vec<(Cmdlet, CallError)>,
    sealed: bool,
}

/// Audit bypass entries and Get-Mailbox `Guid`s that have not met their partner yet, by `Guid`;
/// in a page, what it brings to the join.
#[derive(Debug, Default)]
struct Join {
    /// A mailbox's `Guid` and its key in the audit bypass listing.
    keys: std::collections::HashMap<u128, u64>,
    /// An account's `Guid` and its listed values. Most never meet a mailbox (system objects).
    codes: std::collections::HashMap<u128, u64>,
}

/// A value's three bits, its place here plus one; 0 is a value the listing did not give or the
/// index could not read, and [`NAMED`] one kept beside the entries.
const CODES: [Value; 6] =
    [Value::Inherit, Value::Disabled, Value::Enabled, Value::Nothing, Value::Member, Value::NotMember];
const NAMED: u64 = 7;
const SLOT_BITS: u32 = 3;

/// A mailbox's key in the listing of `cmdlet`.
fn key_of(user_id: &str, cmdlet: Cmdlet) -> Option<u64> {
    uuid::Uuid::parse_str(user_id).ok().map(|id| tagged(id.as_u128() as u64, cmdlet))
}

/// The low bits of an object id with the cmdlet in its two lowest.
fn tagged(low: u64, cmdlet: Cmdlet) -> u64 {
    (low & !3) | cmdlet as u64
}

/// The entries of `arrived` whose partner is in `partners` (taken out of it), as their value and
/// the partner's; the others wait in `waiting` for theirs.
fn meet<'a>(
    arrived: std::collections::HashMap<u128, u64>,
    partners: &'a mut std::collections::HashMap<u128, u64>,
    waiting: &'a mut std::collections::HashMap<u128, u64>,
) -> impl Iterator<Item = (u64, u64)> + 'a {
    arrived.into_iter().filter_map(move |(guid, value)| match partners.remove(&guid) {
        Some(partner) => Some((value, partner)),
        None => {
            waiting.insert(guid, value);
            None
        }
    })
}

fn guid_of(entry: &serde_json::Value) -> Option<u128> {
    entry["Guid"].as_str().and_then(|guid| uuid::Uuid::parse_str(guid).ok()).map(|guid| guid.as_u128())
}

/// The listed property of a setting the listings can hold: its own, or the one its read leans on.
fn property(setting: Setting) -> Option<MailboxProperty> {
    let spec = setting.spec();
    match spec.access {
        Access::Mailbox(property) => Some(property),
        _ => spec.listed,
    }
}

/// Whether any of `wanted` is listed by `cmdlet`.
fn lists(wanted: &[Setting], cmdlet: Cmdlet) -> bool {
    wanted.iter().any(|s| property(*s).is_some_and(|p| p.cmdlet == cmdlet))
}

/// The cmdlets whose listings hold `wanted`, in the order they are read (Get-Mailbox with audit
/// bypass, whose entries it names); the client access listing alone when nothing is wanted but
/// the mailboxes themselves (`--all-mailboxes`).
fn cmdlets(wanted: &[Setting]) -> Vec<Cmdlet> {
    let bypass = lists(wanted, Cmdlet::AuditBypass);
    let listed: Vec<Cmdlet> =
        Cmdlet::ALL.into_iter().filter(|c| lists(wanted, *c) || (bypass && *c == Cmdlet::Mailbox)).collect();
    if listed.is_empty() { vec![Cmdlet::CasMailbox] } else { listed }
}

/// Where a setting's three bits are: its place among the settings the listing can hold.
fn slot(setting: Setting) -> Option<u32> {
    let position = Setting::ALL.iter().filter(|s| property(**s).is_some()).position(|s| *s == setting)?;
    Some(position as u32 * SLOT_BITS)
}

/// The settings of `desired` that the listing can hold.
pub(crate) fn listable(desired: impl IntoIterator<Item = Setting>) -> Vec<Setting> {
    desired.into_iter().filter(|setting| property(*setting).is_some()).collect()
}

/// What the index says of one mailbox so far: its key and listed values, or nothing yet.
type Found = Option<(u64, u64)>;

impl MailboxIndex {
    fn new(wanted: &[Setting]) -> MailboxIndex {
        MailboxIndex { wanted: wanted.to_vec(), ..MailboxIndex::default() }
    }

    /// Takes in one page's index as a sorted run of its own, with the audit bypass entries whose
    /// partner it brings.
    fn append(&mut self, mut page: MailboxIndex) {
        let keys = std::mem::take(&mut page.join.keys);
        let codes = std::mem::take(&mut page.join.codes);
        let mut met: Vec<(u64, u64)> = meet(keys, &mut self.join.codes, &mut self.join.keys).collect();
        met.extend(meet(codes, &mut self.join.keys, &mut self.join.codes).map(|(codes, key)| (key, codes)));
        for (key, codes) in met {
            page.unreadable += u64::from(codes == 0);
            page.entries.push(u128::from(key) << 64 | u128::from(codes));
        }
        page.entries.sort_unstable();
        self.runs.push(self.entries.len());
        self.entries.append(&mut page.entries);
        self.addresses.append(&mut page.addresses);
        self.named.extend(page.named);
        self.mailboxes += page.mailboxes;
        self.unreadable += page.unreadable;
        self.anonymous += page.anonymous;
    }

    /// Merges the runs into one once every page is in. A mailbox whose audit bypass entry never
    /// came is read one by one ([`MailboxIndex::lookup`]); the accounts of no mailbox are let go.
    fn seal(&mut self) {
        if !self.lost.iter().any(|(cmdlet, _)| *cmdlet == Cmdlet::AuditBypass) {
            self.unreadable += self.join.keys.len() as u64;
        }
        self.join = Join::default();
        self.entries.sort_unstable();
        self.entries.shrink_to_fit();
        self.runs = vec![0];
        self.sealed = true;
    }

    fn run(&self, at: usize) -> &[u128] {
        let end = self.runs.get(at + 1).copied().unwrap_or(self.entries.len());
        &self.entries[self.runs[at]..end]
    }

    /// Searches the runs from `first` on; also says how many runs there are now, so that a
    /// caller waiting for more pages searches only the new ones.
    fn find_from(&self, key: u64, first: usize) -> (Found, usize) {
        for at in first..self.runs.len() {
            let run = self.run(at);
            let position = run.partition_point(|entry| ((entry >> 64) as u64) < key);
            if let Some(found) = run.get(position).filter(|entry| (*entry >> 64) as u64 == key) {
                return (Some((key, *found as u64)), self.runs.len());
            }
        }
        (None, self.runs.len())
    }

    /// A setting's value in a mailbox's listed values: `None` when the listing did not give it
    /// or it could not be read.
    fn value_in(&self, (key, codes): (u64, u64), setting: Setting) -> Option<Value> {
        let slot = slot(setting)?;
        match (codes >> slot) & ((1 << SLOT_BITS) - 1) {
            NAMED => self.named.get(&(key, slot)).copied(),
            code => CODES.get((code as usize).checked_sub(1)?).copied(),
        }
    }

    /// What the whole listing says of a user's `setting`: `Some(Some(value))`, `Some(None)` for
    /// no mailbox, and `None` when it cannot say (the listing was not asked for the setting, its
    /// value could not be read, or some entry had no id): then the mailbox is read on its own.
    /// An account the audit bypass listing did not join to a mailbox is asked on its own: it may
    /// be a mailbox whose entry could not be read, or an account that has none.
    pub(crate) fn lookup(&self, user_id: &str, setting: Setting) -> Option<Option<Value>> {
        let cmdlet = property(setting)?.cmdlet;
        let key = key_of(user_id, cmdlet)?;
        if !self.wanted.contains(&setting) || self.lost.iter().any(|(lost, _)| *lost == cmdlet) {
            return None;
        }
        match self.find_from(key, 0).0 {
            Some(found) => Some(Some(self.value_in(found, setting)?)),
            None => (self.anonymous == 0 && cmdlet != Cmdlet::AuditBypass).then_some(None),
        }
    }

    /// The service's refusal of the listing that holds `setting`, when it refused it outright (a
    /// role the app lacks): asking each mailbox would only be refused the same way, once a mailbox.
    pub(crate) fn refusal(&self, setting: Setting) -> Option<CallError> {
        let cmdlet = property(setting)?.cmdlet;
        let refused = |error: &CallError| matches!(error, CallError::Refused { .. });
        self.lost.iter().find(|(lost, error)| *lost == cmdlet && refused(error)).map(|(_, error)| error.clone())
    }

    /// Whether the whole listing says the user has no mailbox.
    pub(crate) fn lacks_mailbox(&self, user_id: &str) -> bool {
        let first = cmdlets(&self.wanted)[0];
        key_of(user_id, first).is_some_and(|key| self.find_from(key, 0).0.is_none() && self.anonymous == 0)
    }

    /// Mailboxes of the listing it could not read whole, whose values are read one by one.
    pub(crate) fn unreadable(&self) -> u64 {
        self.unreadable + self.anonymous
    }

    /// One page of the listing of `cmdlet`: the first listing's pages (`mailboxes`) count the
    /// mailboxes and give their addresses.
    fn of_page(
        page: &serde_json::Value,
        cmdlet: Cmdlet,
        wanted: &[Setting],
        first: bool,
        with_addresses: bool,
    ) -> MailboxIndex {
        let mut index = MailboxIndex::new(wanted);
        let listed: Vec<_> =
            wanted.iter().filter_map(|s| Some((property(*s).filter(|p| p.cmdlet == cmdlet)?, slot(*s)?))).collect();
        let joins = cmdlet == Cmdlet::Mailbox && lists(wanted, Cmdlet::AuditBypass);
        for mailbox in page["value"].as_array().into_iter().flatten() {
            if cmdlet == Cmdlet::AuditBypass {
                // Keyed by Guid until it meets its mailbox; an entry without one meets none. Its
                // one property is a Boolean, never a value kept beside the entries by key.
                if let Some(guid) = guid_of(mailbox) {
                    let (codes, _) = index.codes_of(mailbox, &listed, 0);
                    index.join.codes.insert(guid, codes);
                }
                continue;
            }
            let id = mailbox["ExternalDirectoryObjectId"].as_str().and_then(|id| uuid::Uuid::parse_str(id).ok());
            let Some(low) = id.map(|id| id.as_u128() as u64) else {
                index.anonymous += 1;
                continue;
            };
            let key = tagged(low, cmdlet);
            let (codes, whole) = index.codes_of(mailbox, &listed, key);
            let guid = guid_of(mailbox).filter(|_| joins);
            if let Some(guid) = guid {
                index.join.keys.insert(guid, tagged(low, Cmdlet::AuditBypass));
            }
            index.unreadable += u64::from(!whole || (joins && guid.is_none()));
            index.entries.push(u128::from(key) << 64 | u128::from(codes));
            index.mailboxes += usize::from(first);
            if let Some(address) = mailbox["PrimarySmtpAddress"].as_str().filter(|_| first && with_addresses) {
                index.addresses.push(address.to_string());
            }
        }
        index
    }

    /// A listed entry's values of `listed` as their codes, and whether every one could be read;
    /// a value that is not one of [`CODES`] is kept beside them under `key`.
    fn codes_of(&mut self, entry: &serde_json::Value, listed: &[(MailboxProperty, u32)], key: u64) -> (u64, bool) {
        let mut codes = 0;
        let mut whole = true;
        for (property, slot) in listed {
            let code = match property.decode(entry) {
                Some(value @ Value::Named(_)) => {
                    self.named.insert((key, *slot), value);
                    NAMED
                }
                Some(value) => CODES.iter().position(|c| *c == value).map_or(0, |code| code as u64 + 1),
                None => 0,
            };
            whole &= code != 0;
            codes |= code << slot;
        }
        (codes, whole)
    }

    /// How many mailboxes the listings hold.
    pub(crate) fn len(&self) -> usize {
        self.mailboxes
    }
}

/// The tenant-wide listing of `cmdlet` (`Get-CASMailbox`, `Get-Mailbox`,
/// `Get-MailboxAuditBypassAssociation`, whose default `ResultSize` is 1,000 too) of `fields`, in
/// pages of 1,000.
pub(crate) fn listing(client: &CloudClient, cmdlet: Cmdlet, fields: &str) -> crate::cloud::Call {
    let mut parameters = Map::new();
    parameters.insert("ResultSize".into(), json!("Unlimited"));
    let mut call = exchange::invoke(&client.tenant_id, cmdlet.get(), parameters, None);
    call.path.push_str(&format!("?$select={fields}"));
    call.headers.push(("Prefer", "odata.maxpagesize=1000".into()));
    call
}

/// Reads the listings of `wanted` side by side, handing each page to `page`. The first listing
/// (the mailboxes themselves) failing fails the whole; another failing is returned with its
/// cmdlet, and the rest go on.
async fn read_pages(
    client: &CloudClient,
    wanted: &[Setting],
    with_addresses: bool,
    page: impl FnMut(MailboxIndex),
) -> Result<Vec<(Cmdlet, CallError)>, CallError> {
    // The listings side by side: a target waits for the pages of each, and one listing's pages
    // follow each other, so one after the other would leave the budget idle.
    let page = std::sync::Mutex::new(page);
    let listings = cmdlets(wanted).into_iter().enumerate().map(|(at, cmdlet)| {
        let first = at == 0;
        // Audit bypass entries have no directory id: they meet Get-Mailbox's on the Guid.
        let mut fields = match cmdlet {
            Cmdlet::AuditBypass => vec!["Guid"],
            Cmdlet::Mailbox if lists(wanted, Cmdlet::AuditBypass) => vec!["ExternalDirectoryObjectId", "Guid"],
            _ => vec!["ExternalDirectoryObjectId"],
        };
        let properties = wanted.iter().filter_map(|setting| property(*setting)).filter(|p| p.cmdlet == cmdlet);
        fields.extend(properties.flat_map(MailboxProperty::fields));
        if first && with_addresses {
            fields.push("PrimarySmtpAddress");
        }
        let call = listing(client, cmdlet, &fields.join(","));
        let page = &page;
        let of_page = move |answer: &crate::cloud::Answer| {
            let index = MailboxIndex::of_page(&answer.body, cmdlet, wanted, first, with_addresses);
            (page.lock().unwrap_or_else(|e| e.into_inner()))(index);
        };
        async move { (cmdlet, client.pages(call, of_page).await) }
    });
    let mut lost = Vec::new();
    for (at, (cmdlet, read)) in futures_util::future::join_all(listings).await.into_iter().enumerate() {
        match read {
            Err(error) if at == 0 => return Err(error),
            Err(error) => lost.push((cmdlet, error)),
            Ok(_) => {}
        }
    }
    Ok(lost)
}

/// The whole listing of `wanted`, read before anything else goes on (`--all-mailboxes` needs its
/// addresses).
pub(crate) async fn read_all(
    client: &CloudClient,
    wanted: &[Setting],
    with_addresses: bool,
) -> Result<MailboxIndex, CallError> {
    let mut index = MailboxIndex::new(wanted);
    let lost = read_pages(client, wanted, with_addresses, |page| index.append(page)).await?;
    index.lost = lost;
    index.seal();
    Ok(index)
}

#[cfg(test)]
mod tests;
