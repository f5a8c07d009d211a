//! How fast and how hard a run works: the library's own copy of the tuning flags (the command
//! line converts into it), kept in `run.json` so a resume works at the pace its run began with.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cloud::{Pacing, RetryPolicy};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tuning {
    /// Targets worked on at once.
    pub concurrency: u32,
    /// Ceilings on each API's rate, in requests a second.
    pub graph_rps: f64,
    pub graph_write_rps: f64,
    pub exchange_rps: f64,
    /// Exchange admin API requests in flight at once.
    pub exchange_inflight: u32,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub request_timeout: Duration,
    /// Every Graph request on its own, not in `$batch` requests.
    pub no_batch: bool,
    /// The configured rates throughout: no warm-up and no slowing down.
    pub fixed_rate: bool,
    pub bulk_read: BulkRead,
}

/// When SMTP AUTH is read for the whole tenant in pages instead of once per target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum BulkRead {
    Auto,
    Always,
    Never,
}

impl Tuning {
    pub(crate) fn pacing(&self) -> Pacing {
        Pacing {
            graph_rps: self.graph_rps,
            graph_write_rps: self.graph_write_rps,
            exchange_rps: self.exchange_rps,
            exchange_inflight: self.exchange_inflight,
            adaptive: !self.fixed_rate,
            batch: !self.no_batch,
        }
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { max_attempts: self.max_attempts, timeout: self.request_timeout }
    }
}
