//! Every mailbox's SMTP AUTH at once: the tenant-wide `Get-CASMailbox` listing, read in pages of
//! 1,000, for runs where that costs far fewer requests than a read per target. The listing fills
//! the index page by page while the run goes on, and a target waits only for the page that holds
//! its mailbox (or, for a mailbox the listing never names, for the end of the listing): the
//! service's budget is not left idle for the seconds a large tenant's listing takes.

use std::sync::{Arc, RwLock};

use serde_json::{Map, json};
use tokio::sync::watch;

use super::Value;
use super::smtp_auth::value_of;
use crate::cloud::{CallError, CloudClient, exchange};

/// The SMTP AUTH value of every mailbox listed so far, by directory object id.
///
/// Eight bytes a mailbox: the low 64 bits of the object id (random GUIDs do not collide there)
/// with the value in the lowest two, in sorted runs (one a page while the listing is read, one
/// once it is sealed) searched by halves. A million mailboxes take 8 MB, where a hash map took
/// over 30.
#[derive(Debug, Default)]
pub(crate) struct MailboxIndex {
    keys: Vec<u64>,
    /// Where each sorted run of `keys` starts: one a page until the index is sealed.
    runs: Vec<usize>,
    /// Every mailbox's primary SMTP address, when asked for (`--all-mailboxes`).
    pub addresses: Vec<String>,
    /// Mailboxes whose id was readable but not their SMTP AUTH value: read one by one.
    unreadable_keys: Vec<u64>,
    /// Mailboxes the listing held without a usable directory object id. While there are any,
    /// a user missing from the index may still have a mailbox: Exchange is asked.
    anonymous: u64,
    sealed: bool,
}

const VALUE_BITS: u64 = 0b11;
const CODES: [Value; 3] = [Value::Inherit, Value::Disabled, Value::Enabled];

fn key_of(user_id: &str) -> Option<u64> {
    uuid::Uuid::parse_str(user_id).ok().map(|id| id.as_u128() as u64 & !VALUE_BITS)
}

/// What the index says of one mailbox so far.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Found {
    Value(Value),
    /// Listed, but its value could not be read: Exchange is asked for it alone.
    Unreadable,
    /// Not in the runs searched.
    NotYet,
}

impl MailboxIndex {
    fn push(&mut self, key: u64, value: Value) {
        let code = CODES.iter().position(|c| *c == value).unwrap_or(0) as u64;
        self.keys.push(key | code);
    }

    /// Takes in one page's index as a sorted run of its own.
    fn append(&mut self, mut page: MailboxIndex) {
        page.keys.sort_unstable();
        self.runs.push(self.keys.len());
        self.keys.append(&mut page.keys);
        self.addresses.append(&mut page.addresses);
        self.unreadable_keys.append(&mut page.unreadable_keys);
        self.anonymous += page.anonymous;
    }

    /// Merges the runs into one once every page is in.
    fn seal(&mut self) {
        self.keys.sort_unstable();
        self.keys.shrink_to_fit();
        self.runs = vec![0];
        self.unreadable_keys.sort_unstable();
        self.sealed = true;
    }

    fn run(&self, at: usize) -> &[u64] {
        let end = self.runs.get(at + 1).copied().unwrap_or(self.keys.len());
        &self.keys[self.runs[at]..end]
    }

    /// Searches the runs from `first` on; also says how many runs there are now, so that a
    /// caller waiting for more pages searches only the new ones.
    fn find_from(&self, key: u64, first: usize) -> (Found, usize) {
        for at in first..self.runs.len() {
            let run = self.run(at);
            let position = run.partition_point(|k| k & !VALUE_BITS < key);
            if let Some(found) = run.get(position).filter(|k| *k & !VALUE_BITS == key)
                && let Some(value) = CODES.get((found & VALUE_BITS) as usize)
            {
                return (Found::Value(*value), self.runs.len());
            }
        }
        let unreadable = if self.sealed {
            self.unreadable_keys.binary_search(&key).is_ok()
        } else {
            self.unreadable_keys.contains(&key)
        };
        (if unreadable { Found::Unreadable } else { Found::NotYet }, self.runs.len())
    }

    /// What the whole listing says of a user: `Some(Some(value))`, `Some(None)` for no mailbox,
    /// and `None` when it cannot say (the mailbox's entry could not be read, or some entry had no
    /// id): then the mailbox is read on its own.
    pub(crate) fn lookup(&self, user_id: &str) -> Option<Option<Value>> {
        let key = key_of(user_id)?;
        match self.find_from(key, 0).0 {
            Found::Value(value) => Some(Some(value)),
            Found::Unreadable => None,
            Found::NotYet => (self.anonymous == 0).then_some(None),
        }
    }

    /// Mailboxes of the listing it could not read, which are read one by one instead.
    pub(crate) fn unreadable(&self) -> u64 {
        self.unreadable_keys.len() as u64 + self.anonymous
    }

    /// One page of the listing.
    fn of_page(page: &serde_json::Value, with_addresses: bool) -> MailboxIndex {
        let mut index = MailboxIndex::default();
        for mailbox in page["value"].as_array().into_iter().flatten() {
            let key = mailbox["ExternalDirectoryObjectId"].as_str().and_then(key_of);
            let value = mailbox.get("SmtpClientAuthenticationDisabled").and_then(value_of);
            match (key, value) {
                (Some(key), Some(value)) => index.push(key, value),
                (Some(key), None) => index.unreadable_keys.push(key),
                (None, _) => index.anonymous += 1,
            }
            if let Some(address) = mailbox["PrimarySmtpAddress"].as_str().filter(|_| with_addresses) {
                index.addresses.push(address.to_string());
            }
        }
        index
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Reads the whole listing, handing each page's index to `page` as it arrives, and returns the
/// sealed index.
/// The tenant-wide `Get-CASMailbox` listing of `fields`, in pages of 1,000.
pub(crate) fn listing(client: &CloudClient, fields: &str) -> crate::cloud::Call {
    let mut parameters = Map::new();
    parameters.insert("ResultSize".into(), json!("Unlimited"));
    let mut call = exchange::invoke(&client.tenant_id, "Get-CASMailbox", parameters, None);
    call.path.push_str(&format!("?$select={fields}"));
    call.headers.push(("Prefer", "odata.maxpagesize=1000".into()));
    call
}

async fn read_pages(
    client: &CloudClient,
    with_addresses: bool,
    mut page: impl FnMut(MailboxIndex),
) -> Result<(), CallError> {
    let fields = if with_addresses { ",PrimarySmtpAddress" } else { "" };
    let call = listing(client, &format!("ExternalDirectoryObjectId,SmtpClientAuthenticationDisabled{fields}"));
    client.pages(call, |answer| page(MailboxIndex::of_page(&answer.body, with_addresses))).await?;
    Ok(())
}

/// The whole listing, read before anything else goes on (`--all-mailboxes` needs its addresses).
pub(crate) async fn read_all(client: &CloudClient, with_addresses: bool) -> Result<MailboxIndex, CallError> {
    let mut index = MailboxIndex::default();
    read_pages(client, with_addresses, |page| index.append(page)).await?;
    index.seal();
    Ok(index)
}

/// How far the background listing is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Progress {
    Reading,
    Done,
    /// The listing failed: every target not found so far is read on its own.
    Failed,
}

/// The listing as it fills in the background, shared by every target of a run.
#[derive(Clone)]
pub(crate) struct PendingIndex {
    index: Arc<RwLock<MailboxIndex>>,
    progress: watch::Receiver<Progress>,
}

impl PendingIndex {
    /// A listing already read whole.
    pub(crate) fn ready(index: MailboxIndex) -> PendingIndex {
        let (_, progress) = watch::channel(Progress::Done);
        PendingIndex { index: Arc::new(RwLock::new(index)), progress }
    }

    /// An empty listing, and the side that fills it.
    fn filling() -> (PendingIndex, Filler) {
        let (tell, progress) = watch::channel(Progress::Reading);
        let index = Arc::new(RwLock::new(MailboxIndex::default()));
        (PendingIndex { index: index.clone(), progress }, Filler { index, tell })
    }

    /// Starts reading the listing; `finished` is told how it ended, with the sealed index.
    pub(crate) fn spawn(
        client: Arc<CloudClient>,
        finished: impl FnOnce(Result<&MailboxIndex, CallError>) + Send + 'static,
    ) -> PendingIndex {
        let (pending, filler) = PendingIndex::filling();
        tokio::spawn(async move {
            match read_pages(&client, false, |page| filler.add(page)).await {
                Ok(()) => finished(Ok(&filler.seal())),
                Err(error) => {
                    filler.failed();
                    finished(Err(error));
                }
            }
        });
        pending
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, MailboxIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// What the listing says of a user (as [`MailboxIndex::lookup`]), once the page that holds
    /// the user's mailbox is in, or the whole listing for a user it does not name; `None` (read
    /// the mailbox on its own) when the listing failed.
    pub(crate) async fn lookup(&self, user_id: &str) -> Option<Option<Value>> {
        let key = key_of(user_id)?;
        let mut progress = self.progress.clone();
        let mut searched = 0;
        loop {
            // Marked seen before the search: a page that lands during it wakes the wait below.
            let now = *progress.borrow_and_update();
            let (found, runs) = self.read().find_from(key, searched);
            searched = runs;
            match (found, now) {
                (Found::Value(value), _) => return Some(Some(value)),
                (Found::Unreadable, _) | (_, Progress::Failed) => return None,
                (Found::NotYet, Progress::Done) => return self.read().lookup(user_id),
                (Found::NotYet, Progress::Reading) => {
                    if progress.changed().await.is_err() {
                        // The listing's task ended without a word (it panicked): ask Exchange.
                        return None;
                    }
                }
            }
        }
    }
}

/// The listing's side of a [`PendingIndex`]: adds pages, and says when it is done.
struct Filler {
    index: Arc<RwLock<MailboxIndex>>,
    tell: watch::Sender<Progress>,
}

impl Filler {
    fn add(&self, page: MailboxIndex) {
        self.index.write().unwrap_or_else(|e| e.into_inner()).append(page);
        self.tell.send_replace(Progress::Reading);
    }

    /// Every page is in: the runs become one, and every waiter gets its answer.
    fn seal(&self) -> std::sync::RwLockReadGuard<'_, MailboxIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner()).seal();
        self.tell.send_replace(Progress::Done);
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn failed(&self) {
        self.tell.send_replace(Progress::Failed);
    }
}

#[cfg(test)]
mod tests;
