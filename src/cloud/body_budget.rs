//! One budget for the bytes of every answer held at once.
//!
//! Each answer has a cap of its own ([`super::MAX_BODY`]), but a run has many requests in flight:
//! a hostile or broken endpoint answering every one of them with just under that cap could take
//! gigabytes. Every byte read is taken from this budget first and given back when the answer is
//! dropped (its caller parses it and lets it go), so all the answers held together never pass it.
//! When the budget is spent, reading waits for answers to be given back; only an answer that alone
//! is larger than the whole budget fails, since no wait could let it through.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bytes of all answers held at once: four answers at the per-answer cap (64 MiB), or
/// thousands of ordinary ones (a page of 1,000 mailboxes is under a megabyte), so a legitimate
/// run never waits on it, while a container of half a gigabyte still has room for everything else.
pub(crate) const DEFAULT_BUDGET: usize = 256 * 1024 * 1024;

/// A budget of bytes shared by the answers being read and held.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    capacity: usize,
    bytes: Arc<Semaphore>,
    /// Bytes held right now and the most ever held at once: measured by the holds themselves,
    /// not read back from the semaphore, so a test sees what was really held.
    held: AtomicUsize,
    peak: AtomicUsize,
    /// Reads waiting for bytes to be given back.
    waiting: AtomicUsize,
}

impl BodyBudget {
    /// A budget of `capacity` bytes (at most what a semaphore can count, 2^32 - 1 a request).
    pub(crate) fn new(capacity: usize) -> Arc<BodyBudget> {
        let capacity = capacity.clamp(1, (u32::MAX as usize).min(Semaphore::MAX_PERMITS));
        let bytes = Arc::new(Semaphore::new(capacity));
        let zero = || AtomicUsize::new(0);
        Arc::new(BodyBudget { capacity, bytes, held: zero(), peak: zero(), waiting: zero() })
    }

    /// The process's budget, which every request to Microsoft reads its answer within.
    pub(crate) fn global() -> &'static Arc<BodyBudget> {
        static GLOBAL: OnceLock<Arc<BodyBudget>> = OnceLock::new();
        GLOBAL.get_or_init(|| BodyBudget::new(DEFAULT_BUDGET))
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes of answers held right now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// The most bytes of answers ever held at once.
    #[cfg(test)]
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Reads waiting for bytes to be given back right now.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Takes `bytes` more for `hold`, waiting until that many are given back if need be.
    /// `Err` when the hold would be larger than the whole budget: waiting could never end.
    pub(super) async fn take(self: &Arc<Self>, hold: &mut Hold, bytes: usize) -> Result<(), String> {
        if bytes == 0 {
            return Ok(());
        }
        let total = hold.bytes.saturating_add(bytes);
        if total > self.capacity {
            return Err(format!(
                "the answer was larger than the {} that all answers in flight may hold together; not read further",
                super::transport::in_units(self.capacity)
            ));
        }
        // `total` fits the capacity, which fits a u32 (see `new`).
        let wanted = u32::try_from(bytes).map_err(|_| "the answer was too large to read".to_string())?;
        let permit = match Arc::clone(&self.bytes).try_acquire_many_owned(wanted) {
            Ok(permit) => permit,
            Err(_) => {
                let _waiting = Waiting::on(&self.waiting);
                let permit = Arc::clone(&self.bytes).acquire_many_owned(wanted).await;
                permit.map_err(|_| "the memory budget for answers was closed".to_string())?
            }
        };
        match &mut hold.permit {
            Some(held) => held.merge(permit),
            None => hold.permit = Some(permit),
        }
        hold.bytes = total;
        let now = self.held.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Ok(())
    }
}

/// Counts a read as waiting until it is done waiting, or dropped while it waits (a deadline).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn on(count: &'a AtomicUsize) -> Waiting<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The bytes one answer holds of a budget, given back when it is dropped.
#[derive(Debug)]
pub(crate) struct Hold {
    budget: Arc<BodyBudget>,
    bytes: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl Hold {
    pub(super) fn new(budget: &Arc<BodyBudget>) -> Hold {
        Hold { budget: Arc::clone(budget), bytes: 0, permit: None }
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // The count goes down before the permit goes back (dropped after this body), as it went
        // up only after the permit was taken: it never counts more than the semaphore handed out.
        self.budget.held.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// An answer's body: its bytes and the share of the budget they hold. Clones (a `$batch` answer
/// given to each of its items) share both, and the budget is given back when the last one goes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Body {
    bytes: Arc<Vec<u8>>,
    hold: Option<Arc<Hold>>,
}

impl Body {
    pub(super) fn held(bytes: Vec<u8>, hold: Hold) -> Body {
        Body { bytes: Arc::new(bytes), hold: Some(Arc::new(hold)) }
    }

    /// Bytes cut from a larger body (an item of a `$batch`): they keep its share of the budget.
    pub(crate) fn part_of(&self, bytes: Vec<u8>) -> Body {
        Body { bytes: Arc::new(bytes), hold: self.hold.clone() }
    }
}

impl From<Vec<u8>> for Body {
    /// Bytes that hold no budget (made here, not read from the network).
    fn from(bytes: Vec<u8>) -> Body {
        Body { bytes: Arc::new(bytes), hold: None }
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl PartialEq<Vec<u8>> for Body {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.bytes.as_slice() == other.as_slice()
    }
}

#[cfg(test)]
mod tests;
