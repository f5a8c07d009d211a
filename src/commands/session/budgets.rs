//! Each tenant's throttling budget across runs and shards: a run starts from what the last one
//! measured, a shard's share follows its siblings at work, and a whole run keeps what it measured
//! for the next.

use std::sync::Arc;

use super::Job;
use crate::cloud::CloudClient;
use crate::run::budgets::Budgets;
use crate::run::lock;

/// Starts each lane's rates from the budgets an earlier run measured for its tenant (a shard from
/// its share of them), unless the rates are fixed.
pub(super) fn start_from_remembered_budgets(job: &Job, tenant_ids: &[String]) {
    if job.tuning.fixed_rate {
        return;
    }
    let share = job.decided.shard.map_or(1.0, |shard| 1.0 / f64::from(shard.count()));
    for (lane, tenant) in job.decided.lanes.iter().zip(tenant_ids) {
        if let Some(budgets) = Budgets::load(&job.state_dir, tenant) {
            tracing::info!(tenant = %tenant, "starting from the budgets measured on {}", budgets.measured_at);
            lane.connection.client.start_from(budgets.as_array(), share);
        }
    }
}

/// How often a shard reads its siblings' lock files.
const SIBLING_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Follows the other shards of this run on each tenant: as they end (or come back), this shard's
/// share of the tenant's budget grows (or shrinks). Shards end apart (the targets split by hash,
/// not by cost), and the last one at work would otherwise spend a third of the budget alone for
/// as long as a minute (`shards-3x10k`, README).
pub(super) fn follow_sibling_shards(job: &Job, locks: &[lock::TenantLock], tenant_ids: &[String]) -> Following {
    let mut tasks = Vec::new();
    for (lane, tenant) in job.decided.lanes.iter().zip(tenant_ids) {
        let siblings = locks.iter().find(|lock| lock.tenant == *tenant).and_then(lock::TenantLock::siblings);
        let Some(siblings) = siblings.filter(|_| !job.tuning.fixed_rate) else {
            continue;
        };
        let client = lane.connection.client.clone();
        tasks.push(tokio::spawn(async move {
            let mut at_work = siblings.shards();
            let mut check = tokio::time::interval(SIBLING_CHECK);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                check.tick().await;
                // Two small files a second, read on the runtime's thread: a blocking-pool hop
                // would cost more than the reads.
                let now = siblings.at_work();
                if now != at_work {
                    tracing::info!(
                        "{now} of {} shards at work on this tenant: this one's share of its budget is now 1/{now}",
                        siblings.shards()
                    );
                    client.reshare(f64::from(at_work) / f64::from(now));
                    at_work = now;
                }
            }
        }));
    }
    Following(tasks)
}

/// The tasks following sibling shards, stopped with the run.
pub(super) struct Following(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// Keeps the budgets each tenant's run measured for the next run (a shard measured only its
/// share, and keeps nothing).
pub(super) fn remember_budgets(job: &Job, clients: &[Arc<CloudClient>], tenant_ids: &[String]) {
    if job.tuning.fixed_rate || job.decided.shard.is_some() {
        return;
    }
    for (client, tenant) in clients.iter().zip(tenant_ids) {
        if let Some(budgets) = Budgets::updated(Budgets::load(&job.state_dir, tenant), &client.pacing()) {
            budgets.save(&job.state_dir, tenant);
        }
    }
}
