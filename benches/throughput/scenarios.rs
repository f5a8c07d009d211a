//! The scenarios: each writes its CSV, starts its simulated tenant, runs the runner (or the plain
//! script) against it and prints its `RESULT` line, with a `DETAIL` line where the pacing is
//! worth seeing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use crate::floor::{Budgets, Work, fix_work, floor_seconds, sim_budget_args};
use crate::plain::Plain;
use crate::result_line::{print_result, print_timeline};
use crate::runner::{Measured, measure, run_runner, runner};
use crate::simulator::{sim_json, start_sim};
use crate::{identity, write_csv};

const FAULTY: [&str; 8] =
    ["--latency", "50", "--fault-rate", "0.02", "--slow-reply", "10s", "--token-lifetime", "3599s"];

/// What a fix scenario runs: the tool, the tool against a service that never sends the
/// `x-ms-throttle-limit-percentage` warning (pacing from 429s alone), or the baseline.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Variant {
    Tool,
    NoWarning,
    Baseline,
}

/// Half the mailboxes already have the fix; the rest keep the seeded mix.
const HALF_FIXED: [&str; 6] =
    ["--set-all", "smtp-auth=enabled", "--set-all", "per-user-mfa=disabled", "--set-all-share", "0.5"];

/// Where the `run`th run of a scenario keeps its files: the first under the scenario's name (a
/// later scenario may read its state), the others beside it, each with a state of its own, so
/// every run is a first run.
fn run_tag(name: &str, run: usize) -> String {
    if run <= 1 { name.to_string() } else { format!("{name}.run{run}") }
}

/// The `run`th run of the fix on `n` mailboxes against the simulator's default budgets and
/// windows times `scale`, with no flags but the ceilings the scale needs, and no budgets
/// remembered; its wall time. The first run prints where its time went, second by second.
pub(crate) async fn fix_defaults(dir: &Path, name: &str, run: usize, n: usize, scale: f64) -> f64 {
    let tag = run_tag(name, run);
    let csv = dir.join(format!("{tag}.csv"));
    write_csv(&csv, n);
    let work = fix_work(n);
    let default = Budgets::DEFAULT;
    let budgets = Budgets {
        graph_rate: default.graph_rate * scale,
        graph_write_rate: default.graph_write_rate * scale,
        exchange_rate: default.exchange_rate * scale,
        window_s: None,
    };
    let sim = start_sim(&csv, &defaults_sim_args(&budgets, scale));
    let mut args = vec!["apply", "--profile", "smtp-auth-fix", "--yes"];
    if scale > 1.0 {
        args.extend(["--graph-rps", "20000", "--graph-write-rps", "1000", "--exchange-rps", "1000"]);
        // In-flight Exchange requests scale as the budgets do: the default 4, ×10.
        args.extend(["--exchange-inflight", "40", "--concurrency", "512"]);
    }
    let measured = run_runner(&sim, &csv, &dir.join(&tag), &args);
    let stats = print_result(name, n, floor_seconds(&work, &budgets), &measured, &sim).await;
    let pacing = measured.summary["pacing"].as_object().and_then(|tenants| tenants.values().next().cloned());
    println!(
        "DETAIL scenario={name} requests_by_api={} pacing={}",
        stats["requests_by_api"],
        pacing.unwrap_or_default()
    );
    if run <= 1 {
        print_timeline(name, &sim).await;
    }
    measured.wall_s
}

fn defaults_sim_args(budgets: &Budgets, scale: f64) -> Vec<String> {
    let mut sim_args = sim_budget_args(budgets);
    sim_args.extend(FAULTY.map(String::from));
    sim_args.extend(["--exchange-inflight".into(), format!("{}", (5.0 * scale) as usize)]);
    sim_args.extend(HALF_FIXED.map(String::from));
    sim_args
}

/// `shards-3x10k`: the fix on 10,000 mailboxes as three pods of an Indexed Job run it
/// (`--shard K/3`, one state directory, all at once) against one tenant at the simulator's
/// default budgets, starting from the budgets `fix-10k-defaults` measured on a tenant with the
/// same limits (its budgets file, under this tenant's id), as a second night would.
pub(crate) async fn shards(dir: &Path) {
    const N: usize = 10_000;
    let csv = dir.join("shards.csv");
    write_csv(&csv, N);
    let work = fix_work(N);
    let sim = start_sim(&csv, &defaults_sim_args(&Budgets::DEFAULT, 1.0));
    let state = dir.join("shards.state");
    std::fs::create_dir_all(&state).unwrap();
    let tenant = &sim.env.iter().find(|(k, _)| k == "AZURE_TENANT_ID").unwrap().1;
    let earlier = std::fs::read_dir(dir.join("fix-10k-defaults.state"))
        .ok()
        .and_then(|entries| entries.flatten().map(|e| e.path()).find(|p| p.to_string_lossy().contains("budgets-")));
    let remembered = earlier.and_then(|path| std::fs::read_to_string(path).ok());
    if let Some(text) = &remembered {
        std::fs::write(state.join(format!("budgets-{tenant}.json")), text).unwrap();
    }
    let runs: Vec<Measured> = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let started: Vec<_> = (0..3)
                .map(|k| {
                    let (sim, csv, state) = (&sim, &csv, &state);
                    scope.spawn(move || {
                        let shard = format!("{k}/3");
                        let report = dir.join(format!("shard-{k}"));
                        let args = ["apply", "--profile", "smtp-auth-fix", "--yes", "--shard", &shard];
                        measure(runner(sim, csv, &report, state, &args), &report)
                    })
                })
                .collect();
            started.into_iter().map(|run| run.join().unwrap()).collect()
        })
    });
    let combined = Measured {
        wall_s: runs.iter().map(|r| r.wall_s).fold(0.0, f64::max),
        cpu_s: runs.iter().map(|r| r.cpu_s).sum(),
        peak_rss_mb: runs.iter().map(|r| r.peak_rss_mb).fold(0.0, f64::max),
        failed: runs.iter().map(|r| r.failed).sum(),
        summary: Value::Null,
    };
    print_result("shards-3x10k", N, floor_seconds(&work, &Budgets::DEFAULT), &combined, &sim).await;
    let walls: Vec<String> = runs.iter().map(|r| format!("{:.1}", r.wall_s)).collect();
    let exchange: Vec<String> =
        runs.iter().map(|r| r.summary["pacing"][tenant.as_str()]["exchange"].to_string()).collect();
    println!(
        "DETAIL scenario=shards-3x10k remembered={} walls=[{}] exchange_pacing=[{}]",
        remembered.is_some(),
        walls.join(","),
        exchange.join(",")
    );
}

/// `plain-10k`: the tenant of `fix-10k-defaults`, afresh, driven by a plain script; its wall.
pub(crate) async fn plain(dir: &Path) -> f64 {
    const N: usize = 10_000;
    let csv = dir.join("plain.csv");
    write_csv(&csv, N);
    let work = fix_work(N);
    let sim = start_sim(&csv, &defaults_sim_args(&Budgets::DEFAULT, 1.0));
    let started = Instant::now();
    let script = Plain::connect(&sim.url, &sim.env).await;
    let failed = script.run((0..N).map(identity).collect()).await;
    let wall_s = started.elapsed().as_secs_f64();
    let stats = sim_json(&sim, "/_sim/stats").await;
    let floor_s = floor_seconds(&work, &Budgets::DEFAULT);
    println!(
        "RESULT scenario=plain-10k mailboxes={N} wall_s={wall_s:.1} floor_s={floor_s:.1} utilization={:.2} requests={} requests_per_mailbox={:.3} throttled={} failed={failed}",
        floor_s / wall_s,
        stats["http_requests_total"],
        stats["http_requests_total"].as_f64().unwrap_or(0.0) / N as f64,
        stats["throttled_total"],
    );
    wall_s
}

/// The README's first command, as a user types it.
pub(crate) fn quickstart(dir: &Path) {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/mailboxes.csv");
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_remediate"))
        .args(["-q", "apply"])
        .arg(samples)
        .args(["--profile", "smtp-auth-fix", "--simulate", "--yes", "--report-dir"])
        .arg(dir.join("quickstart"))
        .arg("--state-dir")
        .arg(dir.join("quickstart.state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the quick start runs");
    assert!(status.success(), "the quick start exited {status}");
    println!("RESULT scenario=quickstart mailboxes=30 wall_s={:.2}", started.elapsed().as_secs_f64());
}

pub(crate) async fn fix(dir: &Path, name: &str, variant: Variant) -> f64 {
    let baseline = variant == Variant::Baseline;
    const N: usize = 10_000;
    let csv = dir.join(format!("{name}.csv"));
    write_csv(&csv, N);
    // Half the mailboxes already have the fix; the rest keep the seeded mix.
    let work = fix_work(N);
    let target = 60.0;
    let budgets = Budgets {
        graph_write_rate: work.graph_writes / target,
        graph_rate: work.graph_units / (target * 0.95),
        exchange_rate: work.exchange_requests / (target * 0.95),
        window_s: Some(1.0),
    };
    let mut sim_args = sim_budget_args(&budgets);
    sim_args.extend(FAULTY.map(String::from));
    sim_args.extend(["--exchange-inflight".into(), "10".into()]);
    sim_args.extend(HALF_FIXED.map(String::from));
    if variant == Variant::NoWarning {
        sim_args.push("--no-limit-percentage".into());
    }
    let sim = start_sim(&csv, &sim_args);
    let rates = [
        format!("{:.2}", budgets.graph_rate * 5.0),
        format!("{:.2}", budgets.graph_write_rate * 5.0),
        format!("{:.2}", budgets.exchange_rate * 5.0),
    ];
    let mut args =
        vec!["apply", "--profile", "smtp-auth-fix", "--yes", "--request-timeout", "2s", "--concurrency", "128"];
    args.extend([
        "--graph-rps",
        &rates[0],
        "--graph-write-rps",
        &rates[1],
        "--exchange-rps",
        &rates[2],
        "--exchange-inflight",
        "8",
    ]);
    if baseline {
        args.extend(["--no-batch", "--fixed-rate", "--bulk-read", "never"]);
    }
    let floor = floor_seconds(&work, &budgets);
    let measured = run_runner(&sim, &csv, &dir.join(name), &args);
    let stats = print_result(name, N, floor, &measured, &sim).await;
    let pacing = measured.summary["pacing"].as_object().and_then(|tenants| tenants.values().next().cloned());
    println!(
        "DETAIL scenario={name} requests_by_api={} budgets graph={:.1} graph-writes={:.1} exchange={:.1} pacing={}",
        stats["requests_by_api"],
        budgets.graph_rate,
        budgets.graph_write_rate,
        budgets.exchange_rate,
        pacing.unwrap_or_default()
    );
    measured.wall_s
}

/// The system objects every tenant's audit bypass listing holds beside its accounts.
const SYSTEM_OBJECTS: usize = 6;

/// The `run`th nightly sweep of `n` compliant mailboxes: `command` (plan or audit) with
/// `profile`, no flags.
pub(crate) async fn sweep(dir: &Path, name: &str, run: usize, n: usize, command: &str, profile: &str) {
    let tag = run_tag(name, run);
    let csv = dir.join(format!("{tag}.csv"));
    write_csv(&csv, n);
    let mut sim_args: Vec<String> = FAULTY.map(String::from).to_vec();
    sim_args.extend(["--set-all", "smtp-auth=disabled", "--set-all", "per-user-mfa=enforced"].map(String::from));
    let sim = start_sim(&csv, &sim_args);
    let budgets = Budgets::DEFAULT;
    // A lookup a target; the verdict of a mailbox whose SMTP AUTH is off needs nothing more. A
    // page of 1,000 mailboxes a listing: Get-CASMailbox, and for the profile that holds their
    // settings (cis-exchange) Get-Mailbox (auditing, the kind of mailbox for shared sign-in) and
    // Get-MailboxAuditBypassAssociation (every account, and the tenant's few system objects).
    let pages = |entries: usize| (entries as f64 / 1000.0).ceil();
    let exchange_requests =
        if profile == "cis-exchange" { pages(n) * 2.0 + pages(n + SYSTEM_OBJECTS) } else { pages(n) };
    let work = Work { graph_units: n as f64, graph_writes: 0.0, exchange_requests };
    let measured = run_runner(&sim, &csv, &dir.join(&tag), &[command, "--profile", profile]);
    let stats = print_result(name, n, floor_seconds(&work, &budgets), &measured, &sim).await;
    assert_eq!(stats["writes_total"], 0, "a compliant sweep writes nothing");
}

/// `diagnose-100k`: the audit, then the diagnosis, of the same 100,000 mailboxes on one tenant.
pub(crate) async fn diagnose(dir: &Path) {
    const N: usize = 100_000;
    let csv = dir.join("diagnose.csv");
    write_csv(&csv, N);
    let mut sim_args: Vec<String> = FAULTY.map(String::from).to_vec();
    sim_args.extend(["--smtp-blockers", "0.2"].map(String::from));
    let sim = start_sim(&csv, &sim_args);
    let requests = |stats: &Value| stats["http_requests_total"].as_u64().unwrap_or(0);
    run_runner(&sim, &csv, &dir.join("diagnose-audit"), &["audit", "--profile", "smtp-auth-lockdown"]);
    let audit = requests(&sim_json(&sim, "/_sim/stats").await);
    reqwest::Client::new().post(format!("{}/_sim/reset", sim.url)).send().await.unwrap();
    let measured = run_runner(&sim, &csv, &dir.join("diagnose"), &["diagnose", "--basic-auth-smtp", "on"]);
    let n = N as f64;
    let work = Work { graph_units: n + (n / 999.0).ceil(), graph_writes: 0.0, exchange_requests: (n / 1000.0).ceil() };
    let stats = print_result("diagnose-100k", N, floor_seconds(&work, &Budgets::DEFAULT), &measured, &sim).await;
    let diagnosed = requests(&stats);
    println!(
        "RESULT scenario=diagnose-vs-audit-100k audit_requests={audit} diagnose_requests={diagnosed} ratio={:.2} verdicts={}",
        diagnosed as f64 / audit.max(1) as f64,
        measured.summary["counts"]["verdicts"]
    );
}

/// `usage-100k-slow-log`: `usage --days 30` of 100,000 mailboxes, a hundredth of them with an
/// SMTP AUTH device, on a tenant whose sign-in pages each take 45 s (as large tenants' filtered
/// pages do). One query would read its pages one after the other; the days are read side by side
/// inside the reports budget. Every seeded sign-in is under 29 days old, so the window holds the
/// whole log: what is read must equal it.
pub(crate) async fn usage_slow_log(dir: &Path) {
    const N: usize = 100_000;
    const PAGE_S: f64 = 45.0;
    let csv = dir.join("usage.csv");
    write_csv(&csv, N);
    let sim_args = ["--smtp-sign-ins", "0.01", "--sign-in-latency", "45s"].map(String::from);
    let sim = start_sim(&csv, &sim_args);
    let state = sim_json(&sim, "/_sim/state").await;
    let seeded: u64 = state["smtpSignIns"].as_array().unwrap().iter().map(|u| u["signIns"].as_u64().unwrap()).sum();
    let measured = run_runner(&sim, &csv, &dir.join("usage"), &["usage", "--days", "30"]);
    let usage = &measured.summary["smtp_auth_usage"];
    let read = usage["sign_ins"].as_u64().unwrap_or(0);
    let one_query_s = (read as f64 / 1000.0).ceil() * PAGE_S;
    println!(
        "RESULT scenario=usage-100k-slow-log mailboxes={N} page_s={PAGE_S} wall_s={:.0} one_query_s={one_query_s:.0} speedup={:.1} requests={} sign_ins_read={read} sign_ins_seeded={seeded} throttled={}",
        measured.wall_s,
        one_query_s / measured.wall_s,
        usage["requests"],
        sim_json(&sim, "/_sim/stats").await["throttled_total"],
    );
    assert_eq!(read, seeded, "the whole log, each sign-in once");
}

pub(crate) async fn memory(dir: &Path, n: usize, name: &str) -> f64 {
    let csv = dir.join(format!("{name}.csv"));
    write_csv(&csv, n);
    let sim = start_sim(&csv, &["--no-throttle".to_string()]);
    let args = ["plan", "--set", "smtp-auth=disabled", "--set", "per-user-mfa=enforced", "--concurrency", "256"];
    let fast = [
        "--graph-rps",
        "1000000",
        "--graph-write-rps",
        "1000000",
        "--exchange-rps",
        "1000000",
        "--exchange-inflight",
        "16",
    ];
    let all: Vec<&str> = args.iter().chain(fast.iter()).copied().collect();
    let measured = run_runner(&sim, &csv, &dir.join(name), &all);
    print_result(name, n, 0.0, &measured, &sim).await;
    measured.peak_rss_mb
}
