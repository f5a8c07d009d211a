//! Rollback is exact: it puts back the value it found, not one that "satisfies" it. "Enforced
//! satisfies enabled" is a rule for applying a desired state; a rollback that finds `enforced`
//! where the run started from `enabled` must write `enabled`.

use std::sync::Arc;

use remediate_sim::{MfaState, Population, SimConfig, Uniform};

use crate::support::{TUNING, connection_args, results, run, scratch, start, state, write_csv};

fn mfa_of(sim: &remediate_sim::Simulator) -> Vec<String> {
    state(sim)["users"].as_array().unwrap().iter().map(|u| u["perUserMfaState"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_puts_back_enabled_where_it_finds_enforced() {
    let identities: Vec<String> = (0..3).map(|i| format!("mfa{i}@contoso.com")).collect();
    // Per-user MFA "enabled" and no method registered: enabling stays enabled, enforcing enforces.
    let uniform = Uniform { mfa: Some(MfaState::Enabled), ..Uniform::default() };
    let sim = start(SimConfig {
        population: Population::Identities(Arc::new(identities.clone())),
        uniform,
        ..SimConfig::default()
    })
    .await;
    assert!(mfa_of(&sim).iter().all(|m| m == "enabled"));
    let dir = scratch();
    let csv = write_csv(dir.path(), "mfa.csv", "UserPrincipalName", &identities);
    let applied = dir.path().join("apply");
    let mut apply =
        vec!["apply".to_string(), csv.display().to_string(), "--set".into(), "per-user-mfa=enforced".into()];
    apply.extend(["--yes".into(), "--report-dir".into(), applied.display().to_string()]);
    apply.extend(connection_args(&sim, dir.path()));
    apply.extend(TUNING.map(String::from));
    assert_eq!(run(&apply).await, 0);
    assert!(mfa_of(&sim).iter().all(|m| m == "enforced"));

    let mut rollback =
        vec!["rollback".to_string(), applied.display().to_string(), "--yes".into(), "--report-dir".into()];
    rollback.push(dir.path().join("rollback").display().to_string());
    rollback.extend(connection_args(&sim, dir.path()));
    rollback.extend(TUNING.map(String::from));
    assert_eq!(run(&rollback).await, 0);
    assert!(mfa_of(&sim).iter().all(|m| m == "enabled"), "put back as found: {:?}", mfa_of(&sim));
    let rows = results(&dir.path().join("rollback"));
    assert!(
        rows.iter()
            .filter(|r| r["setting"] == "per-user-mfa")
            .all(|r| r["outcome"] == "changed" && r["after"] == "enabled")
    );
}
