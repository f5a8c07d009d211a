//! One session of the real binary and the trouble that strikes it after some number of further
//! writes: SIGKILL, SIGINT, a journal damaged while the run goes on, or a rival run of another
//! shard count on the same tenant.

use std::path::Path;
use std::process::Stdio;

use remediate_sim::Simulator;

use super::mix::{Mix, Strike};
use crate::support::{TUNING, connection_args, fix_args};

pub(super) struct Session {
    pub(super) code: Option<i32>,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

/// Runs the real binary; strikes it after `strike`'s number of further writes, if it lasts.
pub(super) async fn session(
    sim: &Simulator,
    dir: &Path,
    args: &[String],
    report: &Path,
    strike: Option<(Strike, u64)>,
    mix: &Mix,
) -> Session {
    let mut command = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("remediate"));
    command.args(args).args(connection_args(sim, dir)).args(TUNING.iter().map(|a| if *a == "32" { "128" } else { a }));
    command.env_remove("RUST_LOG").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.kill_on_drop(true).spawn().expect("the binary starts");
    if let Some((how, after)) = strike {
        let mut writes = sim.service().writes();
        let at = *writes.borrow() + after;
        let reached = async { writes.wait_for(|&n| n >= at).await.map(|_| ()) };
        tokio::select! {
            _ = reached => match how {
                Strike::Kill => child.start_kill().unwrap(),
                Strike::Interrupt => crate::support::interrupt(&child),
                Strike::DamageJournal => damage_while_running(report, mix.seed),
                Strike::RivalShard => rival(sim, dir, mix, &mut child).await,
            },
            _ = child.wait() => {}
        }
    }
    let output = child.wait_with_output().await.unwrap();
    Session {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Cuts the journal to half, or replaces it with a file holding its first half, while the run
/// that writes it goes on.
fn damage_while_running(report: &Path, seed: u64) {
    let journal = report.join("journal.jsonl");
    let Ok(text) = std::fs::read(&journal) else { return };
    if seed.is_multiple_of(2) {
        let planted = report.join("planted");
        std::fs::write(&planted, &text[..text.len() / 2]).unwrap();
        std::fs::rename(&planted, &journal).unwrap();
    } else if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&journal) {
        file.set_len(text.len() as u64 / 2).unwrap();
    }
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

/// While the run is stopped (SIGSTOP, so it surely holds the tenant), a run of another shard
/// count starts on the same tenant: it must be refused as busy. Its mailboxes do not exist, so
/// it would change nothing if the run had ended just before.
async fn rival(sim: &Simulator, dir: &Path, mix: &Mix, child: &mut tokio::process::Child) {
    let Some(pid) = child.id() else { return };
    signal(pid, "STOP");
    let count = mix.shard.map_or(2, |(_, n)| n + 1);
    let csv = crate::support::write_csv(dir, "rival.csv", "UserPrincipalName", &["absent@rival.invalid".into()]);
    let mut args = fix_args(&csv, &dir.join(format!("rival-{pid}")));
    args.extend(["--shard".into(), format!("0/{count}")]);
    let mut command = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("remediate"));
    command.args(&args).args(connection_args(sim, dir)).args(TUNING).env_remove("RUST_LOG");
    // A run stopped between giving up its lock and exiting holds nothing: the rival may go.
    let held = matches!(child.try_wait(), Ok(None)) && tenant_locked(sim, dir);
    let output = command.stdin(Stdio::null()).output().await.unwrap();
    signal(pid, "CONT");
    if held {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{mix:?}: a rival of {count} shards: {stderr}");
        assert!(stderr.contains("busy"), "{mix:?}: the rival is told why: {stderr}");
    }
}

/// Whether some run holds the tenant's lock (exclusive, or shared by shards): taking it
/// exclusively fails. Ours is let go at once.
fn tenant_locked(sim: &Simulator, dir: &Path) -> bool {
    let path = dir.join("state").join(format!("tenant-{}.lock", sim.app().tenant_id.to_lowercase()));
    let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(&path) else { return false };
    let locked = matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock));
    drop(file);
    locked
}
