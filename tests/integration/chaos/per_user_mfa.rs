//! The MFA phases some mixes go on to after the fix: per-user MFA enabled, then enforced, then
//! that apply rolled back under the same trouble.

use std::path::Path;

use remediate_sim::Simulator;

use super::drive::{drive, phase};
use super::mix::{Mix, Strike};
use crate::support::{results, settings_of, state, stats};

/// Per-user MFA enabled on 200 of the mailboxes (the tenant enforces it where a method is
/// registered), then enforced, then that apply rolled back, the last two killed once each: the
/// rollback puts back `enabled` where it finds `enforced`, and the tenant is as it was before the
/// enforcing.
pub(super) async fn enforce_then_roll_back(
    sim: &Simulator,
    dir: &Path,
    csv: &Path,
    mix: &Mix,
    rng: &mut fastrand::Rng,
) {
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
