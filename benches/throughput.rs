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
//! Scenarios run by default (about 20 minutes on 2 cores):
//! - `quickstart`: the README's first command (`--simulate`, the sample CSV), wall time.
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

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use remediate_sim::{MfaState, Population, Tenant, Uniform};

#[path = "throughput/plain.rs"]
mod plain;
use serde_json::Value;

const SEED: u64 = 11;

/// A field of `/proc/PID/status` in megabytes (its value is in kB), if present.
fn proc_status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

/// User + system CPU time of a process, in seconds (a zombie keeps its times until reaped).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

fn is_zombie(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').is_none_or(|(_, rest)| rest.trim_start().starts_with('Z'))
}

fn identity(i: usize) -> String {
    format!("user{i}@contoso.com")
}

fn write_csv(path: &Path, count: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(file, "UserPrincipalName").unwrap();
    for i in 0..count {
        writeln!(file, "{}", identity(i)).unwrap();
    }
}

struct Sim {
    child: Child,
    url: String,
    env: Vec<(String, String)>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim(csv: &Path, args: &[String]) -> Sim {
    let mut child = Command::new(env!("CARGO_BIN_EXE_remediate"))
        .args(["-q", "sim", "--listen", "127.0.0.1:0", "--seed", &SEED.to_string(), "--from"])
        .arg(csv)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("remediate sim starts");
    let mut env = Vec::new();
    let mut url = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("export ") {
            let (name, value) = rest.split_once('=').unwrap();
            env.push((name.to_string(), value.to_string()));
        }
        if let Some(address) = line.strip_prefix("listening on ") {
            url = address.to_string();
            break;
        }
    }
    Sim { child, url, env }
}

async fn sim_json(sim: &Sim, path: &str) -> Value {
    reqwest::get(format!("{}{path}", sim.url)).await.unwrap().json().await.unwrap()
}

/// What the floor formula needs: the work that cannot be avoided.
struct Work {
    graph_units: f64,
    graph_writes: f64,
    exchange_requests: f64,
}

/// The work of the fix on `count` mailboxes of which half already have it (`HALF_FIXED`): the
/// simulator's tenant is built here as `remediate sim` builds it, to count what differs.
fn fix_work(count: usize) -> Work {
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

struct Budgets {
    graph_rate: f64,
    graph_write_rate: f64,
    exchange_rate: f64,
    /// One window for every bucket (`--throttle-window`), or the simulator's real ones.
    window_s: Option<f64>,
}

impl Budgets {
    /// The simulator's defaults: a large tenant's documented Graph budgets, 25 Exchange requests
    /// a second; windows of 10 s (units), 150 s (writes) and 10 s (Exchange).
    const DEFAULT: Budgets = Budgets { graph_rate: 800.0, graph_write_rate: 20.0, exchange_rate: 25.0, window_s: None };

    fn windows(&self) -> [f64; 3] {
        self.window_s.map_or([10.0, 150.0, 10.0], |window| [window; 3])
    }
}

fn floor_seconds(work: &Work, budgets: &Budgets) -> f64 {
    let [units, writes, exchange] = budgets.windows();
    let one = |needed: f64, rate: f64, window: f64| ((needed - rate * window).max(0.0)) / rate;
    one(work.graph_units, budgets.graph_rate, units)
        .max(one(work.graph_writes, budgets.graph_write_rate, writes))
        .max(one(work.exchange_requests, budgets.exchange_rate, exchange))
}

fn sim_budget_args(budgets: &Budgets) -> Vec<String> {
    let mut args: Vec<(&str, f64)> = vec![
        ("--graph-rate", budgets.graph_rate),
        ("--graph-write-rate", budgets.graph_write_rate),
        ("--exchange-rate", budgets.exchange_rate),
    ];
    args.extend(budgets.window_s.map(|window| ("--throttle-window", window)));
    args.iter().flat_map(|(flag, value)| [flag.to_string(), format!("{value:.3}")]).collect()
}

const FAULTY: [&str; 8] =
    ["--latency", "50", "--fault-rate", "0.02", "--slow-reply", "10s", "--token-lifetime", "3599s"];

struct Measured {
    wall_s: f64,
    cpu_s: f64,
    peak_rss_mb: f64,
    failed: u64,
    /// The runner's `summary.json`.
    summary: Value,
}

/// Runs `remediate ARGS CSV` in its own process, as users run it, against `sim`; its peak RSS
/// and CPU time are read from /proc while it runs and once it has exited (before it is reaped).
fn run_runner(sim: &Sim, csv: &Path, report: &Path, args: &[&str]) -> Measured {
    // The runtime's other tasks (a scenario running alongside) go on while this thread waits.
    tokio::task::block_in_place(|| measure(runner(sim, csv, report, &report.with_extension("state"), args), report))
}

/// The runner's command line against `sim`, quiet, with its own report and the given state.
fn runner(sim: &Sim, csv: &Path, report: &Path, state: &Path, args: &[&str]) -> Command {
    let env = |name: &str| sim.env.iter().find(|(k, _)| k == name).unwrap().1.clone();
    let secret = report.with_extension("secret");
    std::fs::write(&secret, env("AZURE_CLIENT_SECRET")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_remediate"));
    command.arg("-q").args(args).arg(csv);
    for (flag, name) in [("--tenant-id", "AZURE_TENANT_ID"), ("--client-id", "AZURE_CLIENT_ID")] {
        command.args([flag.to_string(), env(name)]);
    }
    command.arg("--client-secret-file").arg(&secret);
    for flag in ["--login-url", "--graph-url", "--exchange-url"] {
        command.args([flag, &sim.url]);
    }
    command.arg("--report-dir").arg(report).arg("--state-dir").arg(state);
    command.env_remove("AZURE_CLIENT_SECRET").stdout(Stdio::null()).stderr(Stdio::null());
    command
}

/// Runs `command` to its end, sampling its memory and CPU; the run's summary from `report`.
fn measure(mut command: Command, report: &Path) -> Measured {
    let started = Instant::now();
    let mut child = command.spawn().expect("the runner starts");
    let pid = child.id();
    let (mut peak_rss_mb, mut cpu_s) = (0.0_f64, 0.0);
    while !is_zombie(pid) {
        peak_rss_mb = peak_rss_mb.max(proc_status_mb(pid, "VmHWM:").unwrap_or(0.0));
        cpu_s = cpu_seconds(pid).unwrap_or(cpu_s);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cpu_s = cpu_seconds(pid).unwrap_or(cpu_s);
    let status = child.wait().unwrap();
    let wall_s = started.elapsed().as_secs_f64();
    // 1 is a finished run with failed rows (a naive baseline can give up on some): reported below.
    assert!(matches!(status.code(), Some(0 | 1 | 3)), "the run exited {status}");
    // `diagnose` leaves diagnosis.json, `usage` usage.json; the runs of the engine, summary.json.
    let file =
        ["summary.json", "diagnosis.json", "usage.json"].into_iter().map(|name| report.join(name)).find(|f| f.exists());
    let summary: Value = serde_json::from_slice(&std::fs::read(file.expect("a summary")).unwrap()).unwrap();
    let failed = summary["counts"]["failed"].as_u64().unwrap_or(0);
    Measured { wall_s, cpu_s, peak_rss_mb, failed, summary }
}

async fn print_result(name: &str, mailboxes: usize, floor_s: f64, measured: &Measured, sim: &Sim) -> Value {
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

/// What a fix scenario runs: the tool, the tool against a service that never sends the
/// `x-ms-throttle-limit-percentage` warning (pacing from 429s alone), or the baseline.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Tool,
    NoWarning,
    Baseline,
}

/// Half the mailboxes already have the fix; the rest keep the seeded mix.
const HALF_FIXED: [&str; 6] =
    ["--set-all", "smtp-auth=enabled", "--set-all", "per-user-mfa=disabled", "--set-all-share", "0.5"];

/// The fix on `n` mailboxes against the simulator's default budgets and windows times `scale`,
/// with no flags but the ceilings the scale needs; its wall time.
async fn fix_defaults(dir: &Path, name: &str, n: usize, scale: f64) -> f64 {
    let csv = dir.join(format!("{name}.csv"));
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
    let measured = run_runner(&sim, &csv, &dir.join(name), &args);
    let stats = print_result(name, n, floor_seconds(&work, &budgets), &measured, &sim).await;
    let pacing = measured.summary["pacing"].as_object().and_then(|tenants| tenants.values().next().cloned());
    println!(
        "DETAIL scenario={name} requests_by_api={} pacing={}",
        stats["requests_by_api"],
        pacing.unwrap_or_default()
    );
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
async fn shards(dir: &Path) {
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
async fn plain(dir: &Path) -> f64 {
    const N: usize = 10_000;
    let csv = dir.join("plain.csv");
    write_csv(&csv, N);
    let work = fix_work(N);
    let sim = start_sim(&csv, &defaults_sim_args(&Budgets::DEFAULT, 1.0));
    let started = Instant::now();
    let script = plain::Plain::connect(&sim.url, &sim.env).await;
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
fn quickstart(dir: &Path) {
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

async fn fix(dir: &Path, name: &str, variant: Variant) -> f64 {
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

async fn sweep(dir: &Path) {
    const N: usize = 50_000;
    let csv = dir.join("sweep.csv");
    write_csv(&csv, N);
    let mut sim_args: Vec<String> = FAULTY.map(String::from).to_vec();
    sim_args.extend(["--set-all", "smtp-auth=disabled", "--set-all", "per-user-mfa=enforced"].map(String::from));
    let sim = start_sim(&csv, &sim_args);
    let budgets = Budgets::DEFAULT;
    // A lookup a target; the verdict of a mailbox whose SMTP AUTH is off needs nothing more.
    let work = Work { graph_units: N as f64, graph_writes: 0.0, exchange_requests: (N as f64 / 1000.0).ceil() };
    let args = ["plan", "--profile", "smtp-auth-lockdown"];
    let measured = run_runner(&sim, &csv, &dir.join("sweep"), &args);
    let stats = print_result("sweep-compliant-50k", N, floor_seconds(&work, &budgets), &measured, &sim).await;
    assert_eq!(stats["writes_total"], 0, "a compliant sweep writes nothing");
}

/// `diagnose-100k`: the audit, then the diagnosis, of the same 100,000 mailboxes on one tenant.
async fn diagnose(dir: &Path) {
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
async fn usage_slow_log(dir: &Path) {
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

async fn memory(dir: &Path, n: usize, name: &str) -> f64 {
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

fn main() {
    let only = std::env::var("THROUGHPUT_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|n| n == name);
    let scratch = tempfile::Builder::new().prefix("remediate-throughput-").tempdir().unwrap();
    let dir: PathBuf = scratch.path().to_path_buf();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let named = |name: &str| only.split(',').any(|n| n == name);
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
        let mut defaults_wall = None;
        if wanted("fix-10k-defaults") {
            defaults_wall = Some(fix_defaults(&dir, "fix-10k-defaults", 10_000, 1.0).await);
        }
        if wanted("shards-3x10k") {
            shards(&dir).await;
        }
        if wanted("fix-100k") {
            fix_defaults(&dir, "fix-100k", 100_000, 10.0).await;
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
        if wanted("sweep-compliant-50k") {
            sweep(&dir).await;
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
    });
    drop(scratch);
}
