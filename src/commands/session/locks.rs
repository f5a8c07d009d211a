//! Signing in to each tenant of a run and locking it, before anything is listed or read.

use super::super::Connection;
use super::Job;
use crate::error::{Error, Result};
use crate::run::lock;
use crate::run::record::RunKind;
use crate::run::stop::Stop;

/// Signs in to every lane's tenant and locks it by its id; stops with exit 130 if interrupted
/// meanwhile (nothing was changed yet).
pub(super) async fn sign_in_and_lock(job: &Job) -> Result<Locked> {
    let connections: Vec<&Connection> = job.decided.lanes.iter().map(|lane| &lane.connection).collect();
    lock_tenants(&connections, &job.stop, &job.state_dir, job.kind, job.decided.shard).await
}

/// The tenants' locks, and their ids in the order of the connections.
pub(crate) type Locked = (Vec<lock::TenantLock>, Vec<String>);

/// Signs in to each connection's tenant and locks it: before anything is listed or read, so that
/// a run that will be refused as busy is refused at once.
pub(crate) async fn lock_tenants(
    connections: &[&Connection],
    stop: &Stop,
    state_dir: &std::path::Path,
    kind: RunKind,
    shard: Option<crate::run::shard::Shard>,
) -> Result<Locked> {
    let mut locks = Vec::new();
    let mut ids = Vec::new();
    for connection in connections {
        let client = &connection.client;
        let signed_in = async {
            client.check_credentials().await?;
            client.tenant_guid().await
        };
        let id = stop
            .within_grace(signed_in)
            .await
            .ok_or_else(|| Error::Interrupted("interrupted while signing in; nothing was changed".into()))??;
        // A simulated tenant lives in this process alone: two rehearsals never share one.
        if connection.simulated.is_none() {
            locks.push(lock::acquire(state_dir, &id, kind.name(), shard)?);
        }
        ids.push(id);
    }
    Ok((locks, ids))
}
