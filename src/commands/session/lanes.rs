//! The tenants' lanes of a run, side by side: each with its own client (tokens, rates), the client
//! access settings of its mailboxes when read in bulk, and its share of the targets.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::Connection;
use super::{Job, Lane};
use crate::cloud::CloudClient;
use crate::commands::simulate::SimulatedTenant;
use crate::engine::events::{Event, EventSink};
use crate::engine::journal::{Done, Journal};
use crate::engine::{self, Context, Ledger};
use crate::error::{Error, Result};
use crate::report::Report;
use crate::run::record::RunKind;
use crate::run::tuning::BulkRead;
use crate::settings::Setting;
use crate::settings::mailbox_index::{self, MailboxIndex, PendingIndex};
use crate::targets::Entry;

/// Says so when the bulk listing held mailboxes it could not read, or the service refused one of
/// its listings (those are read one by one).
fn warn_if_unreadable(index: &MailboxIndex, sink: &dyn EventSink) {
    for (cmdlet, error) in &index.lost {
        sink.emit(Event::Warning(format!(
            "could not read {} for every mailbox at once ({error}); {}",
            cmdlet.get(),
            if matches!(error, crate::cloud::CallError::Refused { .. }) {
                "its settings are reported failed with that refusal, without asking each mailbox"
            } else {
                "its settings are read one mailbox at a time"
            }
        )));
    }
    if index.unreadable() > 0 {
        sink.emit(Event::Warning(format!(
            "{} mailboxes of the mailbox listings had no readable directory id or Guid, or an unreadable value; those were read one by one",
            index.unreadable()
        )));
    }
}

/// Reads the client access settings the run wants for the whole tenant in pages of 1,000 when
/// that costs fewer requests than a read per target, in the background while the run starts. The
/// tenant's size is unknown up front; from 1,000 targets on, the pages cost fewer requests than
/// per-target reads for any tenant up to a million mailboxes.
fn bulk_listing(client: &Arc<CloudClient>, job: &Job, sink: Arc<dyn EventSink>) -> Option<PendingIndex> {
    let wanted = match job.tuning.bulk_read {
        BulkRead::Never => false,
        BulkRead::Always => true,
        BulkRead::Auto => job.decided.total.unwrap_or(0) >= 1000,
    };
    let listed = mailbox_index::listable(job.desired.iter().map(|(setting, _)| setting));
    if !wanted || listed.is_empty() || job.kind == RunKind::Rollback {
        return None;
    }
    Some(PendingIndex::spawn(client.clone(), listed, move |read| match read {
        Ok(index) => {
            tracing::info!("read the listed settings of {} mailboxes in bulk", index.len());
            warn_if_unreadable(index, sink.as_ref());
        }
        Err(error) => {
            let message =
                format!("could not read every mailbox at once ({error}); reading the rest one by one instead");
            sink.emit(Event::Warning(message));
        }
    }))
}

/// The lanes at work, and what must outlive them until the report is written.
pub(super) struct Running {
    runs: tokio::task::JoinSet<engine::Ending>,
    /// Each lane's client, for the budgets it measured and the report's request counts.
    pub clients: Vec<Arc<CloudClient>>,
    /// The simulated tenants behind the lanes, served until the run is done.
    pub simulated_tenants: Vec<SimulatedTenant>,
}

/// Starts every lane of `job` (taking them from it), each writing to the one report and journal.
/// `earlier_users` are the users an earlier session claimed, owed by the first lane.
pub(super) fn start(
    job: &mut Job,
    report: &Arc<Report>,
    journal: &Arc<Journal>,
    done: &Arc<Done>,
    earlier_users: HashMap<u64, u64>,
) -> Running {
    let mut earlier_users = Some(earlier_users);
    let per_target = job.kind == RunKind::Rollback || Setting::PER_TARGET.iter().any(|s| job.desired.get(*s).is_some());
    let exclusions = job.decided.exclusions.clone();
    let run_wants = Setting::PER_ROW.map(|setting| job.desired.get(setting));

    let mut clients = Vec::new();
    let mut simulated_tenants = Vec::new();
    let mut runs = tokio::task::JoinSet::new();
    // Tenants run side by side, each with its own client (tokens, rates) and share of the work.
    for lane in std::mem::take(&mut job.decided.lanes) {
        let Lane { connection: Connection { client, simulated }, entries, mailbox_index } = lane;
        let mailbox_index = match mailbox_index {
            Some(index) => {
                warn_if_unreadable(&index, report.as_ref());
                Some(PendingIndex::ready(index))
            }
            None => bulk_listing(&client, job, report.clone()),
        };
        let context = Arc::new(Context {
            mailbox_index,
            exclusions: exclusions.clone(),
            sign_in_scope: job.decided.sign_in_scope.clone(),
            client: client.clone(),
            desired: job.desired.clone(),
            tenant_expect: job.decided.tenant_expect.clone(),
            layers: job.decided.layers.as_ref().map(|layers| Arc::new(layers.for_tenant())),
            exceptions: job.decided.exceptions.clone(),
            today: time::OffsetDateTime::now_utc().date(),
            mode: job.kind.mode(),
            sink: report.clone(),
            journal: journal.clone(),
            done: done.clone(),
            stop: job.stop.clone(),
            // Each tenant's lane owes its own rows (a lane that ends first must not record
            // another's as unfinished); a resume has one lane, which gets what was claimed.
            ledger: Arc::new(Ledger::new(earlier_users.take().unwrap_or_default(), run_wants)),
        });
        let entries: Box<dyn Iterator<Item = Entry> + Send> =
            if per_target { entries } else { Box::new(std::iter::empty()) };
        runs.spawn(engine::run(context, entries, job.tuning.concurrency as usize));
        clients.push(client);
        simulated_tenants.extend(simulated);
    }
    Running { runs, clients, simulated_tenants }
}

impl Running {
    /// Waits for every lane to end; the targets none of them started.
    pub(super) async fn ending(&mut self) -> Result<engine::Ending> {
        let mut ending = engine::Ending::default();
        while let Some(lane_ending) = self.runs.join_next().await {
            let lane_ending =
                lane_ending.map_err(|e| Error::Fatal(format!("a tenant's run stopped unexpectedly: {e}")))?;
            ending.not_started += lane_ending.not_started;
        }
        Ok(ending)
    }
}
