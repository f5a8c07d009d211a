//! The bulk listing as it fills in the background: targets wait only for the page that holds
//! their mailbox, and read on their own if the listing fails.

use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::{MailboxIndex, key_of, property, read_pages};
use crate::cloud::{CallError, CloudClient};
use crate::settings::mailbox_property::Cmdlet;
use crate::settings::{Setting, Value};

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

    /// An empty listing of `wanted`, and the side that fills it.
    pub(super) fn filling(wanted: &[Setting]) -> (PendingIndex, Filler) {
        let (tell, progress) = watch::channel(Progress::Reading);
        let index = Arc::new(RwLock::new(MailboxIndex::new(wanted)));
        (PendingIndex { index: index.clone(), progress }, Filler { index, tell })
    }

    /// Starts reading the listing of `wanted`; `finished` is told how it ended, with the sealed
    /// index.
    pub(crate) fn spawn(
        client: Arc<CloudClient>,
        wanted: Vec<Setting>,
        finished: impl FnOnce(Result<&MailboxIndex, CallError>) + Send + 'static,
    ) -> PendingIndex {
        let (pending, filler) = PendingIndex::filling(&wanted);
        tokio::spawn(async move {
            match read_pages(&client, &wanted, false, |page| filler.add(page)).await {
                Ok(lost) => finished(Ok(&filler.seal_without(lost))),
                Err(error) => {
                    filler.failed();
                    finished(Err(error));
                }
            }
        });
        pending
    }

    /// The service's refusal of the listing that holds `setting` (see [`MailboxIndex::refusal`]).
    pub(crate) fn refusal(&self, setting: Setting) -> Option<CallError> {
        self.read().refusal(setting)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, MailboxIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// What the listing says of a user's `setting` (as [`MailboxIndex::lookup`]), once the page
    /// that holds the user's mailbox is in, or the whole listing for a user it does not name;
    /// `None` (read the mailbox on its own) when the listing failed.
    pub(crate) async fn lookup(&self, user_id: &str, setting: Setting) -> Option<Option<Value>> {
        let key = key_of(user_id, property(setting)?.cmdlet)?;
        if !self.read().wanted.contains(&setting) {
            return None;
        }
        let mut progress = self.progress.clone();
        let mut searched = 0;
        loop {
            // Marked seen before the search: a page that lands during it wakes the wait below.
            let now = *progress.borrow_and_update();
            let (found, runs) = self.read().find_from(key, searched);
            searched = runs;
            match (found, now) {
                (Some(found), _) => return Some(Some(self.read().value_in(found, setting)?)),
                (None, Progress::Failed) => return None,
                (None, Progress::Done) => return self.read().lookup(user_id, setting),
                (None, Progress::Reading) => {
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
pub(super) struct Filler {
    index: Arc<RwLock<MailboxIndex>>,
    tell: watch::Sender<Progress>,
}

impl Filler {
    pub(super) fn add(&self, page: MailboxIndex) {
        self.index.write().unwrap_or_else(|e| e.into_inner()).append(page);
        self.tell.send_replace(Progress::Reading);
    }

    /// Every page is in: the runs become one, and every waiter gets its answer.
    #[cfg(test)]
    pub(super) fn seal(&self) -> std::sync::RwLockReadGuard<'_, MailboxIndex> {
        self.seal_without(Vec::new())
    }

    /// Every page is in, the `lost` listings' settings left to be read one by one: the runs
    /// become one, and every waiter gets its answer.
    pub(super) fn seal_without(&self, lost: Vec<(Cmdlet, CallError)>) -> std::sync::RwLockReadGuard<'_, MailboxIndex> {
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        index.lost = lost;
        index.seal();
        drop(index);
        self.tell.send_replace(Progress::Done);
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn failed(&self) {
        self.tell.send_replace(Progress::Failed);
    }
}
