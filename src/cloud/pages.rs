//! Paged listings: Graph and the Exchange admin API hand a long listing out a page at a time, each
//! answer naming the next in `@odata.nextLink` ("Paging Microsoft Graph data in your app",
//! learn.microsoft.com/graph/paging; the Exchange admin API pages the same way, and public clients
//! that run on real tenants POST the same body to the next link: CIPP's `New-ExoRequest`).
//!
//! One loop for every listing, so every listing ends: a next link seen before (a service that
//! loops) or more pages than any real tenant needs stops it with an error that says so, instead
//! of reading for ever.

use std::collections::HashSet;

use super::{Answer, Call, CallError, CloudClient};

/// More pages than any listing of a real tenant needs: five million objects at a thousand a page
/// (the largest tenants hold a few hundred thousand mailboxes).
pub(super) const MAX_PAGES: u64 = 5_000;

impl CloudClient {
    /// Reads `call` and every page after it, handing each answer to `page` as it arrives, and
    /// returns how many pages there were.
    pub(crate) async fn pages(&self, mut call: Call, mut page: impl FnMut(&Answer)) -> Result<u64, CallError> {
        call.page = true;
        let mut seen = HashSet::new();
        let mut count = 0;
        loop {
            let answer = self.send(&call).await?;
            count += 1;
            page(&answer);
            let Some(next) = self.next_page(call.api, &answer)? else { return Ok(count) };
            if count >= MAX_PAGES {
                return Err(endless(&answer, format!("the listing went on past {MAX_PAGES} pages")));
            }
            if !seen.insert(next.clone()) {
                return Err(endless(&answer, "the service named a page it had already sent as the next one".into()));
            }
            call.path = next;
        }
    }
}

fn endless(answer: &Answer, why: String) -> CallError {
    CallError::Refused {
        status: answer.status,
        code: "EndlessListing".into(),
        message: format!("{why}: stopped reading it, since what it held cannot be trusted whole"),
        ids: answer.ids.clone(),
        attempts: answer.attempts,
    }
}
