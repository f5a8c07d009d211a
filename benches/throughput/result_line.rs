//! A scenario's `RESULT` line (its fields are in the bench's header), from what the runner
//! measured and what the simulated tenant counted.

use std::sync::Mutex;

use serde_json::Value;

use crate::runner::Measured;
use crate::simulator::{Sim, sim_json};

/// The noisy figures of one `RESULT` line: utilization, CPU µs a mailbox, wall seconds, the
/// share of requests throttled (%), and failed rows.
type Figures = [f64; 5];
const FIGURES: [&str; 5] = ["utilization", "cpu_us_per_mailbox", "wall_s", "throttled_pct", "failed"];

/// Every `RESULT` line's figures so far, by scenario, for [`print_medians`].
static RESULTS: Mutex<Vec<(String, Figures)>> = Mutex::new(Vec::new());

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
    let throttled = stats["throttled_total"].as_f64().unwrap_or(0.0);
    let answered = stats["requests_total"].as_f64().unwrap_or(0.0).max(1.0);
    let figures = [
        utilization,
        measured.cpu_s * 1e6 / mailboxes as f64,
        measured.wall_s,
        100.0 * throttled / answered,
        measured.failed as f64,
    ];
    RESULTS.lock().unwrap().push((name.to_string(), figures));
    stats
}

/// For each scenario that ran more than once: each noisy figure's median and its spread (the
/// lowest and highest), as `MEDIAN scenario=NAME runs=N utilization=M[LO..HI] …`.
pub(crate) fn print_medians() {
    let results = RESULTS.lock().unwrap();
    let mut names: Vec<&String> = results.iter().map(|(name, _)| name).collect();
    names.dedup();
    for name in names {
        let runs: Vec<&Figures> = results.iter().filter(|(n, _)| n == name).map(|(_, f)| f).collect();
        if runs.len() < 2 {
            continue;
        }
        let mut line = format!("MEDIAN scenario={name} runs={}", runs.len());
        for (at, figure) in FIGURES.iter().enumerate() {
            let mut values: Vec<f64> = runs.iter().map(|f| f[at]).collect();
            values.sort_by(f64::total_cmp);
            let (low, median, high) = (values[0], values[values.len() / 2], values[values.len() - 1]);
            line.push_str(&format!(" {figure}={median:.2}[{low:.2}..{high:.2}]"));
        }
        println!("{line}");
    }
}

/// Each second's answers of the run just measured, per API, and the 429s among them: where its
/// time went (`/_sim/timeline`).
pub(crate) async fn print_timeline(name: &str, sim: &Sim) {
    let seconds = sim_json(sim, "/_sim/timeline").await;
    let column = |at: usize| {
        let counts =
            seconds.as_array().into_iter().flatten().map(|second| second[at].as_u64().unwrap_or(0).to_string());
        counts.collect::<Vec<_>>().join(",")
    };
    println!(
        "TIMELINE scenario={name} graph=[{}] graph_429=[{}] exchange=[{}] exchange_429=[{}]",
        column(0),
        column(1),
        column(2),
        column(3)
    );
}
