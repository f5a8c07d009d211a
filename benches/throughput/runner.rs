//! The runner in its own process, as users run it, against a simulated tenant: its command line,
//! and its peak RSS and CPU time read from /proc while it runs and once it has exited.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use crate::simulator::Sim;

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

pub(crate) struct Measured {
    pub(crate) wall_s: f64,
    pub(crate) cpu_s: f64,
    pub(crate) peak_rss_mb: f64,
    pub(crate) failed: u64,
    /// The runner's `summary.json`.
    pub(crate) summary: Value,
}

/// Runs `remediate ARGS CSV` in its own process, as users run it, against `sim`; its peak RSS
/// and CPU time are read from /proc while it runs and once it has exited (before it is reaped).
pub(crate) fn run_runner(sim: &Sim, csv: &Path, report: &Path, args: &[&str]) -> Measured {
    // The runtime's other tasks (a scenario running alongside) go on while this thread waits.
    tokio::task::block_in_place(|| measure(runner(sim, csv, report, &report.with_extension("state"), args), report))
}

/// The runner's command line against `sim`, quiet, with its own report and the given state.
pub(crate) fn runner(sim: &Sim, csv: &Path, report: &Path, state: &Path, args: &[&str]) -> Command {
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
pub(crate) fn measure(mut command: Command, report: &Path) -> Measured {
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
