//! The budgets measured for a tenant, kept in the state directory so the next run on that tenant
//! starts from them: a nightly sweep reaches speed in its first second instead of climbing to it.
//! A file per tenant (`budgets-<tenant id>.json`), written atomically and readable by the owner
//! alone. A run of one shard reads it (and starts from its share) but does not write it: what a
//! shard measures is its share of a budget it spent alongside the others.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cloud::pacer::PacerState;

/// Requests a second each API allowed, as last measured; `None` where no run measured one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Budgets {
    pub graph: Option<f64>,
    pub graph_writes: Option<f64>,
    pub exchange: Option<f64>,
    /// When they were measured (RFC 3339).
    #[serde(default)]
    pub measured_at: String,
}

fn file_name(tenant: &str) -> String {
    format!("budgets-{}.json", crate::run::lock::safe_tenant(tenant))
}

fn path(state_dir: &Path, tenant: &str) -> PathBuf {
    state_dir.join(file_name(tenant))
}

impl Budgets {
    /// The budgets remembered for `tenant`; none when there is no file or it cannot be read (a run
    /// then finds the budgets as a first run does).
    pub(crate) fn load(state_dir: &Path, tenant: &str) -> Option<Budgets> {
        let path = path(state_dir, tenant);
        let text = crate::support::files::read_text_capped(&path, crate::support::files::cap::SMALL).ok()?;
        match serde_json::from_str(&text) {
            Ok(budgets) => Some(budgets),
            Err(error) => {
                tracing::warn!("{}: not a budgets file ({error}); finding the budgets afresh", path.display());
                None
            }
        }
    }

    /// These budgets, updated with what this run measured ([`PacerState`]s of graph, graph
    /// writes and Exchange, in that order); `None` when the run measured nothing.
    pub(crate) fn updated(earlier: Option<Budgets>, measured: &[PacerState; 3]) -> Option<Budgets> {
        if measured.iter().all(|state| state.budget.is_none()) {
            return None;
        }
        let mut budgets = earlier.unwrap_or_default();
        for (slot, state) in
            [&mut budgets.graph, &mut budgets.graph_writes, &mut budgets.exchange].into_iter().zip(measured)
        {
            if state.budget.is_some() {
                *slot = state.budget;
            }
        }
        budgets.measured_at = crate::support::timestamp::now_rfc3339();
        Some(budgets)
    }

    /// Keeps these budgets for `tenant`; a failure only costs the next run its head start.
    pub(crate) fn save(&self, state_dir: &Path, tenant: &str) {
        let text = serde_json::to_string_pretty(self).unwrap_or_default() + "\n";
        let saved = crate::support::files::create_private_dir(state_dir)
            .and_then(|_| crate::support::files::write_atomic(state_dir, &file_name(tenant), text.as_bytes()));
        if let Err(error) = saved {
            tracing::warn!("cannot keep the measured budgets in {}: {error}", state_dir.display());
        }
    }

    /// As the pacers take them: graph, graph writes, Exchange.
    pub(crate) fn as_array(&self) -> [Option<f64>; 3] {
        [self.graph, self.graph_writes, self.exchange]
    }
}
