//! Exit 0 means done: every (target, setting) has its final row, whatever happens to the run.
//! One regression test per way a run used to drop, hide or repeat work (issue "Exit 0 means
//! done"): a slow service at the end of a run, a damaged journal, a resume that forgot what chose
//! its targets, two rows naming one user, a rollback of writes whose outcome was never recorded,
//! the tenant lock, an interrupt while signing in, pipes and broken files, exit codes after local
//! failures, and the cost of bad rows.

use std::path::Path;

use crate::support::{TUNING, connection_args, fix_args};

mod input;
mod journal;
mod resume;
mod tenant_lock;
mod waiting;

/// `args` and then `more`.
fn with(mut args: Vec<String>, more: &[&str]) -> Vec<String> {
    args.extend(more.iter().map(|s| s.to_string()));
    args
}

/// The fix on `csv` against `sim`, with the fast test tuning.
fn fix_on(sim: &remediate_sim::Simulator, dir: &Path, csv: &Path, report: &Path) -> Vec<String> {
    let mut args = fix_args(csv, report);
    args.extend(connection_args(sim, dir));
    args.extend(TUNING.map(String::from));
    args
}
