//! A mailbox protocol switch as a setting of its own (`pop`, Set-CASMailbox's `PopEnabled`): the
//! first setting added as one file and a line of the catalog. Applied, audited and rolled back on
//! the simulated tenant, and checked there under the service's own name, not by the runner's
//! reading.

use std::sync::Arc;

use remediate_sim::{Population, SimConfig, Simulator};

use crate::support::{TUNING, connection_args, results, run, scratch, start, state, write_csv};

fn pop_of(sim: &Simulator) -> Vec<bool> {
    state(sim)["users"].as_array().unwrap().iter().map(|u| u["popEnabled"].as_bool().unwrap()).collect()
}

fn command(verb: &str, input: &str, report: &std::path::Path, sim: &Simulator, dir: &std::path::Path) -> Vec<String> {
    let mut args = vec![verb.to_string(), input.to_string()];
    if verb != "rollback" {
        args.extend(["--set".into(), "pop=disabled".into()]);
    }
    if verb != "audit" {
        args.push("--yes".into());
    }
    args.extend(["--report-dir".into(), report.display().to_string()]);
    args.extend(connection_args(sim, dir));
    args.extend(TUNING.map(String::from));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop_is_turned_off_audited_and_rolled_back_exactly() {
    let identities: Vec<String> = (0..4).map(|i| format!("pop{i}@contoso.com")).collect();
    let population = Population::Identities(Arc::new(identities.clone()));
    let sim = start(SimConfig { population, ..SimConfig::default() }).await;
    assert!(pop_of(&sim).iter().all(|on| *on), "POP is on by default");
    let dir = scratch();
    let csv = write_csv(dir.path(), "pop.csv", "UserPrincipalName", &identities);
    let csv = csv.display().to_string();

    let applied = dir.path().join("apply");
    assert_eq!(run(&command("apply", &csv, &applied, &sim, dir.path())).await, 0);
    assert!(pop_of(&sim).iter().all(|on| !*on), "off on every mailbox: {:?}", pop_of(&sim));
    let rows = results(&applied);
    assert_eq!(rows.len(), identities.len(), "one pop row a mailbox: {rows:?}");
    assert!(rows.iter().all(|r| r["setting"] == "pop" && r["before"] == "enabled" && r["after"] == "disabled"));

    let audited = dir.path().join("audit");
    assert_eq!(run(&command("audit", &csv, &audited, &sim, dir.path())).await, 0, "a second look finds nothing to do");
    assert!(results(&audited).iter().all(|r| r["outcome"] == "compliant"));

    let rolled_back = dir.path().join("rollback");
    let source = applied.display().to_string();
    assert_eq!(run(&command("rollback", &source, &rolled_back, &sim, dir.path())).await, 0);
    assert!(pop_of(&sim).iter().all(|on| *on), "put back as found: {:?}", pop_of(&sim));
}
