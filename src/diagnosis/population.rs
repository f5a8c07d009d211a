//! The mailboxes a diagnosis covers, each with its own facts. A large set is read from the
//! tenant's listings (every mailbox's SMTP AUTH in pages of 1,000, every member user's sign-in
//! state in pages of 999) rather than a read per mailbox; per-user MFA has no listing and is read
//! per user (Graph batches those twenty at a time).

use std::collections::HashMap;

use futures_util::StreamExt;

use super::facts::{MailboxFacts, Unreadable};
use crate::cloud::graph::DirectoryUser;
use crate::cloud::{CallError, CloudClient};
use crate::settings::mailbox_property::Cmdlet;
use crate::settings::{Value, mailbox_index, per_user_mfa, smtp_auth};
use crate::targets::Target;

/// From this many targets on, the tenant's listings cost fewer requests than a read per target.
pub(crate) const LISTING_FROM: usize = 1000;

/// One mailbox to diagnose: the row that named it, and its facts, or why there are none.
pub(crate) struct Subject {
    pub line: u64,
    pub identity: String,
    pub facts: Result<MailboxFacts, Missing>,
}

/// Why a row has no mailbox facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// It names no mailbox (no such user, a guest, a mailbox with no directory user).
    NoMailbox(String),
    /// Its user could not be looked up.
    Unread(String),
}

/// A mailbox of the `Get-CASMailbox` listing.
struct Listed {
    user_id: String,
    address: String,
    value: Result<Value, String>,
}

/// Every mailbox and every member user of the tenant, read side by side.
async fn listings(client: &CloudClient) -> Result<(Vec<Listed>, Vec<DirectoryUser>), CallError> {
    let mailboxes = async {
        let mut listed = Vec::new();
        let call = mailbox_index::listing(
            client,
            Cmdlet::CasMailbox,
            "ExternalDirectoryObjectId,PrimarySmtpAddress,SmtpClientAuthenticationDisabled",
        );
        client
            .pages(call, |answer| {
                for mailbox in answer.body["value"].as_array().into_iter().flatten() {
                    let text = |field: &str| mailbox[field].as_str().unwrap_or_default().to_string();
                    let value = smtp_auth::value_of(mailbox);
                    listed.push(Listed {
                        user_id: text("ExternalDirectoryObjectId").to_lowercase(),
                        address: text("PrimarySmtpAddress"),
                        value: value
                            .ok_or_else(|| "its SmtpClientAuthenticationDisabled is not true, false or null".into()),
                    });
                }
            })
            .await?;
        Ok(listed)
    };
    tokio::try_join!(mailboxes, client.member_users())
}

fn facts_of(user: &DirectoryUser, mailbox: Result<Option<Value>, String>) -> MailboxFacts {
    MailboxFacts {
        user_id: user.id.clone(),
        mailbox: mailbox.map_err(|error| Unreadable {
            what: "the mailbox's SMTP AUTH",
            permission: "Exchange.ManageAsApp",
            error,
        }),
        account_enabled: Ok(user.account_enabled),
        per_user_mfa: Err(Unreadable {
            what: "per-user MFA",
            permission: "Policy.Read.All",
            error: "not read yet".into(),
        }),
        own_policy: None,
        groups_joined: Vec::new(),
    }
}

/// Every mailbox of the tenant.
pub(crate) async fn every_mailbox(client: &CloudClient) -> Result<Vec<Subject>, CallError> {
    let (mailboxes, users) = listings(client).await?;
    let users: HashMap<String, DirectoryUser> = users.into_iter().map(|u| (u.id.to_lowercase(), u)).collect();
    Ok(mailboxes
        .into_iter()
        .enumerate()
        .map(|(index, mailbox)| {
            let facts = match users.get(&mailbox.user_id) {
                Some(user) => Ok(facts_of(user, mailbox.value.map(Some))),
                None => Err(Missing::NoMailbox(
                    "the mailbox has no member user in the directory (Graph users listing)".into(),
                )),
            };
            Subject { line: index as u64 + 1, identity: mailbox.address, facts }
        })
        .collect())
}

/// The CSV's targets: from the listings when there are many, else one lookup each.
pub(crate) async fn of_targets(
    client: &CloudClient,
    targets: Vec<Target>,
    concurrency: usize,
) -> Result<Vec<Subject>, CallError> {
    let listed = if targets.len() >= LISTING_FROM { Some(listings(client).await?) } else { None };
    let index = listed.map(|(mailboxes, users)| ListingIndex::new(mailboxes, users));
    let index = index.as_ref();
    let subjects = futures_util::stream::iter(targets)
        .map(|target| async move {
            let facts = match index.and_then(|index| index.find(&target.identity)) {
                Some(facts) => Ok(facts),
                None => look_up(client, &target.identity).await,
            };
            Subject { line: target.line, identity: target.identity, facts }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    Ok(subjects)
}

/// The listings, searchable by any address the CSV may name a mailbox by.
struct ListingIndex {
    users: Vec<DirectoryUser>,
    by_address: HashMap<String, usize>,
    mailboxes: HashMap<String, Result<Value, String>>,
}

impl ListingIndex {
    fn new(mailboxes: Vec<Listed>, users: Vec<DirectoryUser>) -> ListingIndex {
        let mut by_address = HashMap::new();
        for (position, user) in users.iter().enumerate() {
            by_address.insert(user.upn.to_lowercase(), position);
            if let Some(mail) = &user.mail {
                by_address.entry(mail.to_lowercase()).or_insert(position);
            }
        }
        let by_id: HashMap<String, usize> = users.iter().enumerate().map(|(i, u)| (u.id.to_lowercase(), i)).collect();
        for mailbox in &mailboxes {
            if let Some(&position) = by_id.get(&mailbox.user_id) {
                by_address.entry(mailbox.address.to_lowercase()).or_insert(position);
            }
        }
        let mailboxes = mailboxes.into_iter().map(|m| (m.user_id, m.value)).collect();
        ListingIndex { users, by_address, mailboxes }
    }

    /// The facts of the user an address names, if the listings hold it (an alias they do not
    /// hold is looked up on its own).
    fn find(&self, identity: &str) -> Option<MailboxFacts> {
        let user = &self.users[*self.by_address.get(&identity.to_lowercase())?];
        let mailbox = self.mailboxes.get(&user.id.to_lowercase()).cloned().transpose();
        Some(facts_of(user, mailbox))
    }
}

/// One target looked up on its own: its user, then its mailbox.
async fn look_up(client: &CloudClient, identity: &str) -> Result<MailboxFacts, Missing> {
    let lookup = client
        .find_user(identity)
        .await
        .map_err(|e| Missing::Unread(format!("the user could not be looked up: {e}")))?;
    let user = lookup.user.ok_or_else(|| {
        Missing::NoMailbox(
            "no user with this address in the directory (looked up by UPN, mail and proxy addresses)".into(),
        )
    })?;
    if user.guest {
        return Err(Missing::NoMailbox("a guest account: guests have no mailbox in this tenant".into()));
    }
    let mailbox = smtp_auth::read(client, &user.upn).await.map(|reading| reading.value).map_err(|e| e.to_string());
    Ok(facts_of(&user, mailbox))
}

/// Reads per-user MFA for every subject with a mailbox, `concurrency` at a time.
pub(crate) async fn read_mfa(client: &CloudClient, subjects: &mut [Subject], concurrency: usize) {
    let reads = subjects.iter_mut().filter_map(|s| s.facts.as_mut().ok()).filter(|f| matches!(f.mailbox, Ok(Some(_))));
    futures_util::stream::iter(reads)
        .for_each_concurrent(concurrency, |facts| async move {
            facts.per_user_mfa = per_user_mfa::read(client, &facts.user_id)
                .await
                .map_err(|e| Unreadable { what: "per-user MFA", permission: "Policy.Read.All", error: e.to_string() })
                .and_then(|reading| {
                    reading.value.ok_or(Unreadable {
                        what: "per-user MFA",
                        permission: "Policy.Read.All",
                        error: "no state in the answer".into(),
                    })
                });
        })
        .await;
}
