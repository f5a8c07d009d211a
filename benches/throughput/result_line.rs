//! A scenario's `RESULT` line (its fields are in the bench's header), from what the runner
//! measured and what the simulated tenant counted.

use serde_json::Value;

use crate::runner::Measured;
use crate::simulator::{Sim, sim_json};

pub(crate) async fn print_result(name: &str, mailboxes: usize, floor_s: f64, measured: &Measured, sim: &Sim) -> Value {
    let stats = sim_json(sim, "/_sim/stats").await;
    // HTTP requests the runner sent (a $batch is one, whatever it holds), tokens included.
    let requests = stats["http_requests_total"].as_u64().unwrap_or(0);
    let utilization = if floor_s > 0.0 { floor_s / measured.wall_s } else { 0.0 };
    println!(
        "RESULT scenario={name} mailboxes={mailboxes} wall_s={:.1} floor_s={floor_s:.1} utilization={utilization:.2} requests={requests} requests_per_mailbox={:.3} throttled={} failed={} peak_rss_mb={:.0} cpu_us_per_mailbox={:.0}",
        measured.wall_s,
        requests as f64 / mailboxes as f64,
        stats["throttled_total"],
        measured.failed,
        measured.peak_rss_mb,
        measured.cpu_s * 1e6 / mailboxes as f64,
    );
    stats
}
