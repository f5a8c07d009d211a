//! Counters the tests and benchmarks read from `GET /_sim/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// Which service a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Api {
    Token,
    Graph,
    Exchange,
}

impl Api {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Api::Token => "token",
            Api::Graph => "graph",
            Api::Exchange => "exchange",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub requests_total: AtomicU64,
    pub throttled_total: AtomicU64,
    pub writes_total: AtomicU64,
    pub noop_writes: AtomicU64,
    pub unmatched_requests: AtomicU64,
    pub faults_total: AtomicU64,
    /// Writes carried out although the client was told the request failed.
    pub faulted_writes_applied: AtomicU64,
    /// Write answers a "slow" fault held back that the client stopped waiting for (it closed the
    /// connection before they went out).
    pub held_writes_abandoned: AtomicU64,
    /// Writes carried out after their connection had dropped (`Fault::LandsLate`).
    pub writes_landed_late: AtomicU64,
    pub security_defaults_writes: AtomicU64,
    pub graph_resource_units: AtomicU64,
    pub tokens_issued: AtomicU64,
    /// `$batch` items, also counted in `requests_total`.
    pub batch_items: AtomicU64,
    by_status: Mutex<BTreeMap<(Api, u16), u64>>,
    timeline: Mutex<Timeline>,
}

/// Answers a second, from the first request on: where a run's time goes, for the benches.
#[derive(Debug, Default)]
struct Timeline {
    started: Option<std::time::Instant>,
    /// Each second's Graph answers, of them 429s, Exchange answers, of them 429s.
    seconds: Vec<[u32; 4]>,
}

impl Timeline {
    fn add(&mut self, api: Api, status: u16) {
        let column = match api {
            Api::Graph => 0,
            Api::Exchange => 2,
            Api::Token => return,
        };
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        let second = started.elapsed().as_secs() as usize;
        if self.seconds.len() <= second {
            self.seconds.resize(second + 1, [0; 4]);
        }
        self.seconds[second][column] += 1;
        self.seconds[second][column + 1] += u32::from(status == 429);
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    /// Counts one answered request (a `$batch` item counts as a request of its own).
    pub(crate) fn answered(&self, api: Api, status: u16) {
        bump(&self.requests_total);
        if status == 429 {
            bump(&self.throttled_total);
        }
        let mut by_status = self.by_status.lock().unwrap_or_else(|e| e.into_inner());
        *by_status.entry((api, status)).or_default() += 1;
        self.timeline.lock().unwrap_or_else(|e| e.into_inner()).add(api, status);
    }

    /// Each second's answers from the first request on: `[graph, graph 429s, exchange, exchange
    /// 429s]`.
    pub(crate) fn timeline_json(&self) -> Value {
        json!(self.timeline.lock().unwrap_or_else(|e| e.into_inner()).seconds)
    }

    pub(crate) fn to_json(&self, max_writes_per_mailbox: u32) -> Value {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut by_api: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
        for ((api, status), count) in self.by_status.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            by_api.entry(api.name()).or_default().insert(status.to_string(), *count);
        }
        json!({
            "requests_total": load(&self.requests_total),
            "requests_by_api": by_api,
            "throttled_total": load(&self.throttled_total),
            "writes_total": load(&self.writes_total),
            "noop_writes": load(&self.noop_writes),
            "max_writes_per_mailbox": max_writes_per_mailbox,
            "unmatched_requests": load(&self.unmatched_requests),
            "faults_total": load(&self.faults_total),
            "faulted_writes_applied": load(&self.faulted_writes_applied),
            "held_writes_abandoned": load(&self.held_writes_abandoned),
            "writes_landed_late": load(&self.writes_landed_late),
            "security_defaults_writes": load(&self.security_defaults_writes),
            "graph_resource_units": load(&self.graph_resource_units),
            "tokens_issued": load(&self.tokens_issued),
            "batch_items_total": load(&self.batch_items),
            "http_requests_total": load(&self.requests_total) - load(&self.batch_items),
        })
    }
}

impl Stats {
    pub(crate) fn clear(&self) {
        for counter in [
            &self.requests_total,
            &self.throttled_total,
            &self.writes_total,
            &self.noop_writes,
            &self.unmatched_requests,
            &self.faults_total,
            &self.faulted_writes_applied,
            &self.held_writes_abandoned,
            &self.writes_landed_late,
            &self.security_defaults_writes,
            &self.graph_resource_units,
            &self.tokens_issued,
            &self.batch_items,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.by_status.lock().unwrap_or_else(|e| e.into_inner()).clear();
        *self.timeline.lock().unwrap_or_else(|e| e.into_inner()) = Timeline::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_counts_each_api_and_its_429s_in_the_second_they_came() {
        // As if the first request came two and a half seconds ago: every answer now lands in a
        // later second, and the seconds before it stay empty.
        let started = std::time::Instant::now().checked_sub(std::time::Duration::from_millis(2500));
        let mut timeline = Timeline { started, ..Timeline::default() };
        for (api, status) in [(Api::Graph, 200), (Api::Graph, 429), (Api::Exchange, 200), (Api::Token, 200)] {
            timeline.add(api, status);
        }
        timeline.add(Api::Exchange, 429);
        let busy: Vec<usize> = (0..timeline.seconds.len()).filter(|&s| timeline.seconds[s] != [0; 4]).collect();
        assert_eq!(busy.len(), 1, "{:?}", timeline.seconds);
        assert!(busy[0] >= 2, "{:?}", timeline.seconds);
        // Graph answers, of them 429s, Exchange answers, of them 429s; the token endpoint's not at all.
        assert_eq!(timeline.seconds[busy[0]], [2, 1, 2, 1]);
    }

    #[test]
    fn clearing_the_stats_starts_the_timeline_again() {
        let stats = Stats::default();
        stats.answered(Api::Exchange, 200);
        assert_eq!(stats.timeline_json(), json!([[0, 0, 1, 0]]));
        stats.clear();
        assert_eq!(stats.timeline_json(), json!([]));
    }
}
