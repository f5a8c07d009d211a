//! `--all-mailboxes`: the tenant's own listing as the run's targets, kept in the report directory
//! so a resume works on the same set.

use std::path::{Path, PathBuf};

use super::Connection;
use crate::cloud::CloudClient;
use crate::error::{Error, Result};
use crate::report;
use crate::run::stop::Stop;
use crate::settings::Setting;
use crate::settings::mailbox_index::{self, MailboxIndex};

/// The file `--all-mailboxes` keeps the tenant's listing in, in the report directory: the run's
/// input from then on, so a resume works on the same targets.
pub(super) const LISTING: &str = "mailboxes.csv";

/// Every mailbox of a tenant, and (when per-user MFA is wanted) every member user without one:
/// per-user MFA belongs to the directory user, mailbox or not.
async fn list_tenant(
    client: &CloudClient,
    members_too: bool,
    listed: &[Setting],
) -> Result<(MailboxIndex, Vec<String>)> {
    client.check_credentials().await?;
    let failed = |e: crate::cloud::CallError| {
        Error::Fatal(format!("--all-mailboxes: cannot list the mailboxes of tenant {}: {e}", client.tenant_id))
    };
    let index = mailbox_index::read_all(client, listed, true).await.map_err(failed)?;
    let mut targets = index.addresses.clone();
    if members_too {
        let members = client.member_users().await.map_err(failed)?;
        targets.extend(members.into_iter().filter(|user| index.lacks_mailbox(&user.id)).map(|user| user.upn));
    }
    Ok((index, targets))
}

/// Lists every mailbox of each tenant into the report directory's listing (with a tenant column
/// when there are several), and keeps each tenant's index of the `listed` settings from it.
pub(super) async fn list_mailboxes(
    connections: &[(Option<String>, Connection)],
    directory: &Path,
    stop: &Stop,
    members_too: bool,
    listed: &[Setting],
) -> Result<(PathBuf, Vec<Option<MailboxIndex>>)> {
    report::ensure_directory(directory)?;
    let several = connections.len() > 1;
    let header: &[&str] = if several { &["PrimarySmtpAddress", "tenant"] } else { &["PrimarySmtpAddress"] };
    let mut writer = report::create_csv(directory, LISTING, header)?;
    let io = |e: csv::Error| Error::Io { context: format!("cannot write {LISTING}"), source: e.into() };
    let mut indexes = Vec::new();
    for (tenant, connection) in connections {
        let client = &connection.client;
        let (index, listed) =
            stop.within_grace(list_tenant(client, members_too, listed)).await.ok_or_else(|| {
                Error::Interrupted("interrupted while listing the mailboxes; nothing was changed".into())
            })??;
        tracing::info!(
            tenant = %client.tenant_id,
            "{} mailboxes in the tenant; {} targets with the member users that have none",
            index.addresses.len(),
            listed.len()
        );
        for address in &listed {
            let row = if several {
                vec![address.as_str(), tenant.as_deref().unwrap_or_default()]
            } else {
                vec![address.as_str()]
            };
            writer.write_record(row).map_err(io)?;
        }
        indexes.push(Some(index));
    }
    report::close_csv(directory, LISTING, writer)?;
    Ok((directory.join(LISTING), indexes))
}
