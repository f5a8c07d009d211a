//! The tenant lock: it holds whatever name the tenant is given, and a refused run leaves nothing.

use serde_json::Value;

use super::fix_on;
use crate::support::{roomy, run, scratch, start, state, stats, summary, upns, write_csv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_lock_holds_whatever_name_the_tenant_is_given() {
    let dir = scratch();
    let sim = start(roomy(10, 1)).await;
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let held =
        remediate::testing::acquire_lock(&dir.path().join("state"), &sim.app().tenant_id, "apply", None).unwrap();
    let by_domain = |report: &str| {
        let mut args = fix_on(&sim, dir.path(), &csv, &dir.path().join(report));
        let tenant = args.iter().position(|a| a == "--tenant-id").unwrap() + 1;
        args[tenant] = sim.app().domain.to_uppercase();
        args
    };
    assert_eq!(run(&by_domain("report")).await, 2, "the domain names the tenant whose id is locked");
    assert_eq!(stats(&sim)["writes_total"], 0);
    assert!(!dir.path().join("report").exists(), "a refused run leaves no empty report directory");
    drop(held);
    assert_eq!(run(&by_domain("again")).await, 0);
    assert_eq!(summary(&dir.path().join("again"))["tenant_id"], sim.app().domain.to_uppercase());
    let record: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("again").join("run.json")).unwrap()).unwrap();
    assert_eq!(record["tenant_id"], sim.app().tenant_id, "the run record keeps the tenant's id");
}
