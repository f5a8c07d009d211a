//! Chaos: the fix on 1,000 mailboxes through seeded mixes of slow answers (slower than
//! `--grace`), transient faults up to half of all requests, replies slower than the timeout,
//! SIGKILL and SIGINT at random moments, a journal damaged after a kill or while the run goes,
//! writes that land after their connection dropped, a rival run of another shard count started
//! beside it, a profile file edited between a kill and the resume, aliases of one user in the
//! input, an exclusion file and a shard; then resumes until the run exits 0. Whatever happened, a
//! run that exits 0 has every (target, setting) exactly once, leaves the tenant as one undisturbed
//! run leaves it, and wrote nothing twice; a run that exits otherwise says what is left and how to
//! finish it. Some mixes go on: per-user MFA enabled (the tenant enforces it where a method is
//! registered), then enforced, then that apply rolled back under the same trouble; the rollback
//! must put back `enabled` where it finds `enforced`.
//!
//! The seed is printed; `CHAOS_SEED=N cargo test chaos` replays a failing one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use remediate_sim::{SimConfig, Simulator};
use serde_json::Value;

use crate::support::{
    TUNING, connection_args, fix_args, results, roomy, run, scratch, settings_of, start, state, stats,
};

const MAILBOXES: usize = 1000;
const MIXES: u64 = 20;
/// Mixes run side by side: they wait on their simulated tenants, not on the CPU.
const AT_ONCE: usize = 4;

/// One seeded mix of trouble.
#[derive(Debug, Clone)]
struct Mix {
    seed: u64,
    latency_ms: u64,
    grace_ms: u64,
    fault_rate: f64,
    /// For each disturbed session: kill it (SIGKILL) or interrupt it (SIGINT) after this many
    /// more writes.
    strikes: Vec<(Strike, u64)>,
    damage_journal: bool,
    aliases: usize,
    excluded_every: Option<usize>,
    shard: Option<(u32, u32)>,
    /// Some writes lose their connection at once and land 300 ms later (the client's request
    /// timeout is 1 s).
    late_landing: bool,
    /// The desired state comes from a profile file, which is edited after the first session that
    /// dies: the resume must refuse it until it is put back.
    profile_file: bool,
    /// After the fix: per-user MFA enabled, enforced, and that rolled back.
    enforce_then_rollback: bool,
}

/// What befalls a session after some number of further writes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Strike {
    /// SIGKILL.
    Kill,
    /// SIGINT.
    Interrupt,
    /// The journal is cut short or replaced while the run goes on.
    DamageJournal,
    /// A run of another shard count starts on the same tenant while this one holds it.
    RivalShard,
}

impl Mix {
    fn draw(seed: u64) -> Mix {
        let mut rng = fastrand::Rng::with_seed(seed);
        let latency_ms = [1, 5, 20, 100][rng.usize(..4)];
        let kinds = [Strike::Kill, Strike::Interrupt, Strike::DamageJournal, Strike::RivalShard];
        let strikes = (0..rng.usize(0..3)).map(|_| (kinds[rng.usize(..4)], rng.u64(1..300))).collect();
        Mix {
            seed,
            latency_ms,
            // Above the latency or below it: in-flight work finishes, or is abandoned unfinished.
            grace_ms: if rng.bool() { latency_ms / 2 + 1 } else { 5_000 },
            fault_rate: [0.0, 0.05, 0.2, 0.5][rng.usize(..4)],
            strikes,
            damage_journal: rng.bool(),
            aliases: [0, 25][rng.usize(..2)],
            excluded_every: [None, Some(17)][rng.usize(..2)],
            shard: [None, Some((0, 2)), Some((2, 3))][rng.usize(..3)],
            late_landing: rng.bool(),
            profile_file: rng.bool(),
            enforce_then_rollback: rng.usize(..3) == 0,
        }
    }

    fn config(&self) -> SimConfig {
        SimConfig {
            fault_rate: self.fault_rate,
            slow_reply: Duration::from_millis(1500),
            late_landing: self.late_landing.then_some(Duration::from_millis(300)),
            seed: 7,
            ..roomy(MAILBOXES, self.latency_ms)
        }
    }
}

/// The CSV of a mix (UPNs, then the aliases of some users) and its exclusion file.
fn inputs(mix: &Mix, users: &Value, dir: &Path) -> (PathBuf, Option<PathBuf>) {
    let users = users["users"].as_array().unwrap();
    // Mailboxes whose sign-in is allowed: the fix ends done only where the device can send.
    let users: Vec<&Value> = users.iter().filter(|u| u["accountEnabled"] != false).collect();
    let mut rows: Vec<String> = users.iter().map(|u| u["userPrincipalName"].as_str().unwrap().to_string()).collect();
    let aliases = users.iter().filter(|u| u["mail"] != u["userPrincipalName"]).take(mix.aliases);
    rows.extend(aliases.map(|u| u["mail"].as_str().unwrap().to_string()));
    let csv = crate::support::write_csv(dir, "mailboxes.csv", "UserPrincipalName", &rows);
    let exclude = mix.excluded_every.map(|every| {
        let path = dir.join("exclude.txt");
        let excluded: Vec<String> = rows.iter().step_by(every).cloned().collect();
        std::fs::write(&path, format!("# chaos\n{}\n", excluded.join("\n"))).unwrap();
        path
    });
    (csv, exclude)
}

/// The fix as a profile file, the same settings as the built-in `smtp-auth-fix`.
const FIX_PROFILE: &str = "description = \"the fix, as a file\"\n[settings]\nsecurity-defaults = \"disabled\"\nsmtp-auth = \"enabled\"\nper-user-mfa = \"disabled\"\n";

fn new_run_args(mix: &Mix, csv: &Path, exclude: Option<&Path>, report: &Path) -> Vec<String> {
    let mut args = fix_args(csv, report);
    if mix.profile_file {
        let profile = profile_path(csv);
        std::fs::write(&profile, FIX_PROFILE).unwrap();
        let at = args.iter().position(|a| a == "smtp-auth-fix").unwrap();
        args[at] = profile.display().to_string();
    }
    if let Some(exclude) = exclude {
        args.extend(["--exclude".into(), exclude.display().to_string()]);
    }
    if let Some((k, n)) = mix.shard {
        args.extend(["--shard".into(), format!("{k}/{n}")]);
    }
    args.extend(["--grace".into(), format!("{}ms", mix.grace_ms), "--request-timeout".into(), "1s".into()]);
    args
}

fn profile_path(csv: &Path) -> PathBuf {
    csv.with_file_name("fix.toml")
}

/// A row's (line, setting).
type Key = (String, String);

/// The (line, setting) of every row, and those that came twice.
fn row_keys(report: &Path) -> (BTreeSet<Key>, Vec<Key>) {
    let mut keys = BTreeSet::new();
    let mut twice = Vec::new();
    for row in results(report) {
        let key = (row["line"].clone(), row["setting"].clone());
        if !keys.insert(key.clone()) {
            twice.push(key);
        }
    }
    (keys, twice)
}

struct Session {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the real binary; strikes it after `strike`'s number of further writes, if it lasts.
async fn session(
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

/// How a run is driven to its end: its first command, the command that resumes it, and the
/// trouble it meets on the way.
struct Drive<'a> {
    report: &'a Path,
    args: Vec<String>,
    resume: Vec<String>,
    strikes: Vec<(Strike, u64)>,
    /// Flip a byte or cut the journal after a session that was killed.
    damage_after_kill: bool,
    /// A profile file to edit after the first session that ends short of done.
    profile: Option<PathBuf>,
}

/// Runs the first command, then resumes until a session exits 0; checks that every session that
/// ends otherwise says what is left and how to finish it. Returns the last session's context.
async fn drive(sim: &Simulator, dir: &Path, mix: &Mix, run: Drive<'_>, rng: &mut fastrand::Rng) -> String {
    let Drive { report, mut args, resume, strikes, damage_after_kill, mut profile } = run;
    let mut strikes = strikes.into_iter();
    for attempt in 0..=5 {
        if attempt == 3 {
            // The service's bad hour is over: later resumes meet a calm tenant.
            sim.service().calm_down();
        }
        let ran = session(sim, dir, &args, report, strikes.next(), mix).await;
        let context =
            format!("{mix:?}, {args:?}, session {attempt}: exit {:?}\n{}\n{}", ran.code, ran.stdout, ran.stderr);
        println!("mix {} session {attempt}: exit {:?}", mix.seed, ran.code);
        match ran.code {
            Some(0) => return context,
            Some(code) => {
                assert!(report.join("summary.json").exists(), "no summary\n{context}");
                let summary = crate::support::summary(report);
                let unfinished = summary["unfinished"].as_array().map_or(0, Vec::len);
                assert!(
                    unfinished > 0 && summary["finish_command"].is_string(),
                    "the summary says what is left\n{context}"
                );
                assert!(
                    ran.stdout.contains("not done:") && ran.stdout.contains("to finish:"),
                    "the recap too\n{context}"
                );
                assert!([1, 130].contains(&code), "{context}");
            }
            None if damage_after_kill => damage(report, rng),
            None => {}
        }
        // A killed first session may have died before its record was kept: start it again then.
        if report.join("run.json").exists() {
            args = resume.clone();
            if let Some(profile) = profile.take() {
                an_edited_profile_is_refused(sim, dir, &args, &profile, &context).await;
            }
        }
    }
    panic!("{mix:?}: not done after five resumes");
}

/// The profile file edited between a session and its resume: the resume is refused (exit 2,
/// naming the profile) and changes nothing; put back, the resume goes on.
async fn an_edited_profile_is_refused(sim: &Simulator, dir: &Path, resume: &[String], profile: &Path, context: &str) {
    // Writes of the killed session that lost their connection land late: count from after them.
    sim.service().late_writes_landed().await;
    let writes = *sim.service().writes().borrow();
    std::fs::write(profile, FIX_PROFILE.replace("as a file", "as a file, edited")).unwrap();
    let mut command = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("remediate"));
    command.args(resume).args(connection_args(sim, dir)).args(TUNING).env_remove("RUST_LOG");
    let output = command.stdin(Stdio::null()).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "an edited profile: {stderr}\n{context}");
    assert!(stderr.contains("profile"), "the refusal names the profile: {stderr}");
    assert_eq!(*sim.service().writes().borrow(), writes, "a refused resume writes nothing");
    std::fs::write(profile, FIX_PROFILE).unwrap();
}

/// Flips a byte or cuts the journal short, as a full disk or a failing one would.
fn damage(report: &Path, rng: &mut fastrand::Rng) {
    let path = report.join("journal.jsonl");
    let Ok(mut bytes) = std::fs::read(&path) else { return };
    if bytes.len() < 2 {
        return;
    }
    let at = rng.usize(bytes.len() / 2..bytes.len());
    if rng.bool() {
        bytes[at] ^= 1 << rng.u8(0..8);
    } else {
        bytes.truncate(at);
    }
    std::fs::write(&path, bytes).unwrap();
}

/// The tenant and the row keys one undisturbed run of the same inputs leaves.
async fn reference(mix: &Mix, dir: &Path) -> (Value, BTreeSet<Key>) {
    std::fs::create_dir_all(dir).unwrap();
    let sim = start(SimConfig { seed: 7, ..roomy(MAILBOXES, 0) }).await;
    let (csv, exclude) = inputs(mix, &state(&sim), dir);
    let report = dir.join("reference");
    let mut args = new_run_args(mix, &csv, exclude.as_deref(), &report);
    args.extend(connection_args(&sim, dir));
    args.extend(TUNING.map(String::from));
    assert_eq!(run(&args).await, 0, "{mix:?}: the undisturbed run");
    (state(&sim), row_keys(&report).0)
}

/// A run of the MFA phases: no journal damage (a rollback of a damaged journal rightly never
/// claims to be done) and no profile file.
fn phase<'a>(report: &'a Path, args: Vec<String>, command: &str, strikes: Vec<(Strike, u64)>) -> Drive<'a> {
    Drive { report, args, resume: resume_args(command, report), strikes, damage_after_kill: false, profile: None }
}

fn resume_args(command: &str, report: &Path) -> Vec<String> {
    [command, "--resume", &report.display().to_string(), "--yes", "--retry-failed"].map(String::from).to_vec()
}

async fn play(mix: Mix) {
    let dir = scratch();
    let (expected_state, expected_rows) = reference(&mix, &dir.path().join("ref")).await;
    let sim = start(mix.config()).await;
    let (csv, exclude) = inputs(&mix, &state(&sim), dir.path());
    let report = dir.path().join("report");
    let mut rng = fastrand::Rng::with_seed(mix.seed ^ 0xdead);
    let fix = Drive {
        report: &report,
        args: new_run_args(&mix, &csv, exclude.as_deref(), &report),
        resume: resume_args("apply", &report),
        strikes: mix.strikes.clone(),
        damage_after_kill: mix.damage_journal,
        profile: mix.profile_file.then(|| profile_path(&csv)),
    };
    let context = drive(&sim, dir.path(), &mix, fix, &mut rng).await;
    sim.service().late_writes_landed().await;
    let (keys, twice) = row_keys(&report);
    assert!(twice.is_empty(), "rows twice: {twice:?}\n{context}");
    assert_eq!(keys, expected_rows, "every (target, setting) once\n{context}");
    assert_eq!(settings_of(&state(&sim)), settings_of(&expected_state), "the tenant\n{context}");
    let counts = stats(&sim);
    assert_eq!(counts["noop_writes"], 0, "nothing written twice: {counts}\n{context}");
    assert!(counts["security_defaults_writes"].as_u64().unwrap() <= 1, "{counts}\n{context}");
    if mix.enforce_then_rollback {
        enforce_then_roll_back(&sim, dir.path(), &csv, &mix, &mut rng).await;
    }
}

/// Per-user MFA enabled on 200 of the mailboxes (the tenant enforces it where a method is
/// registered), then enforced, then that apply rolled back, the last two killed once each: the
/// rollback puts back `enabled` where it finds `enforced`, and the tenant is as it was before the
/// enforcing.
async fn enforce_then_roll_back(sim: &Simulator, dir: &Path, csv: &Path, mix: &Mix, rng: &mut fastrand::Rng) {
    let identities: Vec<String> =
        std::fs::read_to_string(csv).unwrap().lines().skip(1).take(200).map(String::from).collect();
    let mfa_csv = crate::support::write_csv(dir, "mfa.csv", "UserPrincipalName", &identities);
    let apply = |value: &str, report: &Path| -> Vec<String> {
        let args = ["apply", &mfa_csv.display().to_string(), "--set", &format!("per-user-mfa={value}"), "--yes"];
        let mut args: Vec<String> = args.map(String::from).to_vec();
        args.extend(["--report-dir".into(), report.display().to_string(), "--request-timeout".into(), "1s".into()]);
        args
    };
    let enabled = dir.join("mfa-enabled");
    drive(sim, dir, mix, phase(&enabled, apply("enabled", &enabled), "apply", vec![]), rng).await;
    sim.service().late_writes_landed().await;
    let found = settings_of(&state(sim));

    let enforced = dir.join("mfa-enforced");
    let kill = |rng: &mut fastrand::Rng| vec![(Strike::Kill, rng.u64(1..60))];
    let context = drive(sim, dir, mix, phase(&enforced, apply("enforced", &enforced), "apply", kill(rng)), rng).await;
    let from_enabled =
        results(&enforced).iter().filter(|r| r["before"] == "enabled" && r["outcome"] == "changed").count();
    assert!(from_enabled > 0, "some mailboxes went from enabled to enforced\n{context}");

    let rolled_back = dir.join("mfa-rollback");
    let mut rollback = vec!["rollback".to_string(), enforced.display().to_string(), "--yes".into()];
    rollback.extend([
        "--report-dir".into(),
        rolled_back.display().to_string(),
        "--request-timeout".into(),
        "1s".into(),
    ]);
    let context = drive(sim, dir, mix, phase(&rolled_back, rollback, "rollback", kill(rng)), rng).await;
    sim.service().late_writes_landed().await;
    assert_eq!(settings_of(&state(sim)), found, "the rollback put back what it found\n{context}");
    assert_eq!(stats(sim)["noop_writes"], 0, "nothing written twice\n{context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_never_loses_or_repeats_a_row() {
    let base: u64 = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_127);
    let only_one = std::env::var("CHAOS_SEED").is_ok();
    println!("chaos seed: {base} (replay one mix with CHAOS_SEED={base})");
    let mixes: Vec<Mix> = (0..if only_one { 1 } else { MIXES }).map(|i| Mix::draw(base + i)).collect();
    for chunk in mixes.chunks(AT_ONCE) {
        let plays = chunk.iter().cloned().map(|mix| {
            println!("mix {}: {mix:?}", mix.seed);
            play(mix)
        });
        futures_util::future::join_all(plays).await;
    }
}
