//! The floor: the least time the simulator's budgets allow for the work that cannot be avoided
//! (the formula is in the bench's header), and the simulator's flags for those budgets.

use std::sync::Arc;

use remediate_sim::{MfaState, Population, Tenant, Uniform};

use crate::{SEED, identity};

/// What the floor formula needs: the work that cannot be avoided.
pub(crate) struct Work {
    pub(crate) graph_units: f64,
    pub(crate) graph_writes: f64,
    pub(crate) exchange_requests: f64,
}

/// The work of the fix on `count` mailboxes of which half already have it (`HALF_FIXED`): the
/// simulator's tenant is built here as `remediate sim` builds it, to count what differs.
pub(crate) fn fix_work(count: usize) -> Work {
    let identities = Arc::new((0..count).map(identity).collect());
    let half_fixed = Uniform { smtp_auth_disabled: Some(Some(false)), mfa: Some(MfaState::Disabled), share: 0.5 };
    let tenant = Tenant::build_with(&Population::Identities(identities), SEED, &half_fixed);
    let n = tenant.users.len() as f64;
    let mfa_writes = tenant.users.iter().filter(|u| u.mfa != MfaState::Disabled).count() as f64;
    let smtp_writes = tenant.users.iter().filter(|u| u.smtp_auth_disabled != Some(false)).count() as f64;
    Work {
        graph_units: 1.0 + 2.0 * n + mfa_writes,
        graph_writes: 1.0 + mfa_writes,
        exchange_requests: (n / 1000.0).ceil() + smtp_writes,
    }
}

pub(crate) struct Budgets {
    pub(crate) graph_rate: f64,
    pub(crate) graph_write_rate: f64,
    pub(crate) exchange_rate: f64,
    /// One window for every bucket (`--throttle-window`), or the simulator's real ones.
    pub(crate) window_s: Option<f64>,
}

impl Budgets {
    /// The simulator's defaults: a large tenant's documented Graph budgets, 25 Exchange requests
    /// a second; windows of 10 s (units), 150 s (writes) and 10 s (Exchange).
    pub(crate) const DEFAULT: Budgets =
        Budgets { graph_rate: 800.0, graph_write_rate: 20.0, exchange_rate: 25.0, window_s: None };

    fn windows(&self) -> [f64; 3] {
        self.window_s.map_or([10.0, 150.0, 10.0], |window| [window; 3])
    }
}

pub(crate) fn floor_seconds(work: &Work, budgets: &Budgets) -> f64 {
    let [units, writes, exchange] = budgets.windows();
    let one = |needed: f64, rate: f64, window: f64| ((needed - rate * window).max(0.0)) / rate;
    one(work.graph_units, budgets.graph_rate, units)
        .max(one(work.graph_writes, budgets.graph_write_rate, writes))
        .max(one(work.exchange_requests, budgets.exchange_rate, exchange))
}

pub(crate) fn sim_budget_args(budgets: &Budgets) -> Vec<String> {
    let mut args: Vec<(&str, f64)> = vec![
        ("--graph-rate", budgets.graph_rate),
        ("--graph-write-rate", budgets.graph_write_rate),
        ("--exchange-rate", budgets.exchange_rate),
    ];
    args.extend(budgets.window_s.map(|window| ("--throttle-window", window)));
    args.iter().flat_map(|(flag, value)| [flag.to_string(), format!("{value:.3}")]).collect()
}
