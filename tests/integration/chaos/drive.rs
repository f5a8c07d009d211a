//! Driving a run to its end: sessions resumed until one exits 0, every other one saying what is
//! left and how to finish it, with the journal damaged after a kill and the profile file edited
//! before a resume.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use remediate_sim::Simulator;

use super::mix::{FIX_PROFILE, Mix, Strike};
use super::session::session;
use crate::support::{TUNING, connection_args};

/// How a run is driven to its end: its first command, the command that resumes it, and the
/// trouble it meets on the way.
pub(super) struct Drive<'a> {
    pub(super) report: &'a Path,
    pub(super) args: Vec<String>,
    pub(super) resume: Vec<String>,
    pub(super) strikes: Vec<(Strike, u64)>,
    /// Flip a byte or cut the journal after a session that was killed.
    pub(super) damage_after_kill: bool,
    /// A profile file to edit after the first session that ends short of done.
    pub(super) profile: Option<PathBuf>,
}

/// Runs the first command, then resumes until a session exits 0; checks that every session that
/// ends otherwise says what is left and how to finish it. Returns the last session's context.
pub(super) async fn drive(sim: &Simulator, dir: &Path, mix: &Mix, run: Drive<'_>, rng: &mut fastrand::Rng) -> String {
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

/// A run of the MFA phases: no journal damage (a rollback of a damaged journal rightly never
/// claims to be done) and no profile file.
pub(super) fn phase<'a>(report: &'a Path, args: Vec<String>, command: &str, strikes: Vec<(Strike, u64)>) -> Drive<'a> {
    Drive { report, args, resume: resume_args(command, report), strikes, damage_after_kill: false, profile: None }
}

pub(super) fn resume_args(command: &str, report: &Path) -> Vec<String> {
    [command, "--resume", &report.display().to_string(), "--yes", "--retry-failed"].map(String::from).to_vec()
}
