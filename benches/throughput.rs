//! Throughput at the service's limit. `cargo bench --bench throughput` runs each scenario against
//! a simulated tenant in its own process (`remediate sim`, 50 ms mean latency, 2 % faults) and the
//! runner in another, as users run it (its peak RSS and CPU time read from /proc), then prints,
//! last thing per scenario:
//!
//! `RESULT scenario=NAME mailboxes=N wall_s=W floor_s=F utilization=U requests=R
//!  requests_per_mailbox=Q throttled=T failed=X peak_rss_mb=M cpu_us_per_mailbox=C`
//!
//! **The floor** is the least time the simulator's budgets allow for the work that cannot be
//! avoided, with each API working in parallel:
//!
//! `floor_s = max over Graph units, Graph writes and Exchange requests of (needed − burst) / rate`
//!
//! where the needed Graph units are one per user lookup (`GET users` costs 2, `$select` takes 1
//! off), one per MFA read and one per MFA write; the needed Graph writes are the MFA writes and
//! the security-defaults write; the needed Exchange requests are one per 1,000 mailboxes (bulk
//! read) plus one per SMTP AUTH write; and `burst` is what each bucket holds at the start
//! (rate × window). `utilization = floor_s / wall_s`.
//!
//! The scenarios whose figures are noisy (`fix-2k-first-run`, `fix-10k-defaults`, `fix-100k`, the
//! sweeps) run `THROUGHPUT_RUNS` times (3 unless set), each as a first run with no budgets
//! remembered, and the bench ends with a `MEDIAN scenario=NAME runs=N` line for each, giving every
//! noisy figure as `median[lowest..highest]`. The first run of each fix scenario also prints a
//! `TIMELINE` line: the tenant's answers per API and their 429s, second by second.
//!
//! Scenarios run by default (about 50 minutes on 2 cores; `THROUGHPUT_RUNS=1`, about 20):
//! - `quickstart`: the README's first command (`--simulate`, the sample CSV), wall time.
//! - `fix-2k-first-run`: the fix on 2,000 mailboxes with no flags and no remembered budgets, at
//!   the simulator's default budgets: the first run every new user and migration wave sees.
//! - `fix-10k-defaults`: the fix on 10,000 mailboxes with no rate flags at all, against the
//!   simulator's default budgets and real windows (10 s units, 150 s writes, 10 s Exchange).
//! - `plain-10k`: the same tenant driven the way a plain script does it (`throughput/plain.rs`),
//!   and `ratio = plain wall / fix-10k-defaults wall`. It runs alongside
//!   `fix-10k-defaults`, `shards-3x10k` and `fix-100k`.
//! - `shards-3x10k`: the fix on 10,000 mailboxes as three `--shard K/3` runs at once on one tenant
//!   and one state directory, from the budgets `fix-10k-defaults` measured: combined utilization.
//! - `fix-100k`: 100,000 mailboxes, every budget ×10, default flags but the ceilings the scale
//!   needs (rates, in-flight Exchange requests, targets at once).
//! - `sweep-compliant-50k`: a compliant tenant at the documented large-tenant budgets, no flags.
//! - `sweep-cis-100k` (by name): the nightly `audit --profile cis-exchange` of 100,000 compliant
//!   mailboxes, no flags.
//! - `diagnose-100k`: `diagnose` of 100,000 mailboxes (a fifth with a blocker of some layer) at
//!   the simulator's default budgets, and an `audit` of the same mailboxes on the same tenant:
//!   requests a mailbox of each, their ratio, and the diagnosis's utilization of its floor (one
//!   per-user MFA read a mailbox, the listings a page per 1,000).
//!
//! Run only when named: `fix-10k` (budgets scaled so the floor is about 60 s with 1 s windows,
//! ceilings 5× too high), `fix-10k-no-warning` (the same against a service that never sends
//! `x-ms-throttle-limit-percentage`: pacing from 429s alone), `baseline-10k` (`fix-10k` without
//! bulk reads, batching or adaptive rates), `memory-1m` (plan of 100,000 and 1,000,000 rows against
//! an unthrottled simulator, for peak memory and CPU), `usage-100k-slow-log` (`usage --days 30` of
//! 100,000 mailboxes whose sign-in pages take 45 s each: wall time against the time one query
//! would take, about 6 minutes). `THROUGHPUT_ONLY=name,name` picks.

use std::io::Write;
use std::path::{Path, PathBuf};

#[path = "throughput/floor.rs"]
mod floor;
#[path = "throughput/plain.rs"]
mod plain;
#[path = "throughput/result_line.rs"]
mod result_line;
#[path = "throughput/runner.rs"]
mod runner;
#[path = "throughput/scenarios.rs"]
mod scenarios;
#[path = "throughput/simulator.rs"]
mod simulator;

use scenarios::{Variant, diagnose, fix, fix_defaults, memory, plain, quickstart, shards, sweep, usage_slow_log};

/// The seed of every simulated tenant, so that `fix_work` builds the tenant `remediate sim` does.
pub(crate) const SEED: u64 = 11;

/// The UPN of the `i`th mailbox of a scenario's CSV (and of its simulated tenant).
pub(crate) fn identity(i: usize) -> String {
    format!("user{i}@contoso.com")
}

/// A scenario's CSV: the header, then `count` mailboxes from `identity(0)` on.
pub(crate) fn write_csv(path: &Path, count: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(file, "UserPrincipalName").unwrap();
    for i in 0..count {
        writeln!(file, "{}", identity(i)).unwrap();
    }
}

fn main() {
    let only = std::env::var("THROUGHPUT_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|n| n == name);
    let scratch = tempfile::Builder::new().prefix("remediate-throughput-").tempdir().unwrap();
    let dir: PathBuf = scratch.path().to_path_buf();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let named = |name: &str| only.split(',').any(|n| n == name);
    // The scenarios whose figures are noisy run this many times each, each as a first run, and
    // their medians and spreads are printed at the end.
    let runs: usize = std::env::var("THROUGHPUT_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(3).max(1);
    runtime.block_on(async {
        if wanted("quickstart") {
            quickstart(&dir);
        }
        // The plain script takes many times longer than the tool and barely uses the CPU: it runs
        // alongside the two 10,000-mailbox scenarios and fix-100k, each against its own simulated
        // tenant, so that the whole bench fits in its 25 minutes.
        let plain_run = wanted("plain-10k").then(|| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
                runtime.block_on(plain(&dir))
            })
        });
        for run in 1..=runs {
            if wanted("fix-2k-first-run") {
                fix_defaults(&dir, "fix-2k-first-run", run, 2_000, 1.0).await;
            }
        }
        let mut defaults_wall = None;
        for run in 1..=runs {
            if wanted("fix-10k-defaults") {
                defaults_wall.get_or_insert(fix_defaults(&dir, "fix-10k-defaults", run, 10_000, 1.0).await);
            }
        }
        if wanted("shards-3x10k") {
            shards(&dir).await;
        }
        for run in 1..=runs {
            if wanted("fix-100k") {
                fix_defaults(&dir, "fix-100k", run, 100_000, 10.0).await;
            }
        }
        if let Some(plain_run) = plain_run {
            let plain_wall = tokio::task::block_in_place(|| plain_run.join().unwrap());
            if let Some(fix_wall) = defaults_wall {
                println!("RESULT scenario=plain-vs-fix-10k-defaults ratio={:.2}", plain_wall / fix_wall);
            }
        }
        let mut fix_wall = None;
        if named("fix-10k") {
            fix_wall = Some(fix(&dir, "fix-10k", Variant::Tool).await);
        }
        if named("fix-10k-no-warning") {
            fix(&dir, "fix-10k-no-warning", Variant::NoWarning).await;
        }
        for run in 1..=runs {
            if wanted("sweep-compliant-50k") {
                sweep(&dir, "sweep-compliant-50k", run, 50_000, "plan", "smtp-auth-lockdown").await;
            }
            if named("sweep-cis-100k") {
                sweep(&dir, "sweep-cis-100k", run, 100_000, "audit", "cis-exchange").await;
            }
        }
        if wanted("diagnose-100k") {
            diagnose(&dir).await;
        }
        if named("usage-100k-slow-log") {
            usage_slow_log(&dir).await;
        }
        if named("memory-1m") {
            let small = memory(&dir, 100_000, "memory-100k").await;
            let large = memory(&dir, 1_000_000, "memory-1m").await;
            println!("RESULT scenario=memory-1m-vs-100k rss_ratio={:.2}", large / small);
        }
        // Last: without bulk reads, batching and adaptive rates it takes many times longer.
        if named("baseline-10k") {
            let baseline = fix(&dir, "baseline-10k", Variant::Baseline).await;
            if let Some(fix_wall) = fix_wall {
                println!("RESULT scenario=baseline-vs-fix wall_ratio={:.2}", baseline / fix_wall);
            }
        }
        result_line::print_medians();
    });
    drop(scratch);
}
